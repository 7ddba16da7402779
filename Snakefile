# LiVAE benchmark workflow: dataset -> preprocessed -> trained model -> embedding -> metrics -> statistics
# -> figures/report. Every stage is a file a user can ask for by name (see README.md).
from snakemake.utils import min_version

min_version("9.0")


report: "workflow/report/workflow.rst"


configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/download.smk"
include: "workflow/rules/inspect.smk"
include: "workflow/rules/preprocess.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/embed.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/compare.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/summary.smk"
include: "workflow/rules/site.smk"
include: "workflow/rules/claims.smk"
include: "workflow/rules/analyses_interpret.smk"
include: "workflow/rules/analyses_unicoord.smk"
include: "workflow/rules/analyses_diffvae.smk"
include: "workflow/rules/forecast.smk"  # the cost forecast (`forecast`), never part of `all`
include: "workflow/rules/targets.smk"  # summary, figures, stats, metrics, embeddings_{dataset}


rule all:
    """Everything of the configured run: embeddings, metrics, statistics, figures, summary, site, analyses."""
    default_target: True
    input:
        "results/metrics/all.tsv",  # every embedding is upstream of it
        "results/metrics/convergence.tsv",  # how every neural training ended
        "results/stats/fairness.tsv",  # each method's budget against its original's
        comparison_targets(),
        figure_targets(),
        summary_targets(),  # the ranked summary per modality, controls as rows
        ANALYSIS_TARGETS,
        "results/benchmarks/rules.tsv",
        site_targets(),  # the results site (results/site/index.html) and its zip
        claims_targets(),  # the paper's claims checked (results/claims/), with config claims: true
