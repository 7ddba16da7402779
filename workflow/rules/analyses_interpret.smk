# Interpretability of a trained model's latent components (docs/methods.md §5): Pearson correlation of
# each component with every gene, the top gene per component with UMAP panels, and over-representation
# of each component's top genes in a gene-set collection (GMT). Reads the train and embed rules'
# outputs of the configured method (default livae) and seed. Outputs: results/analyses/interpretability/{dataset}/.

from snakemake.logging import logger

from livaebench.analyses.interpretability import read_gmt
from livaebench.config import has_symbols

INTERPRET = analysis_settings("interpretability")
INTERPRET_METHOD = INTERPRET.get("method", "livae")
INTERPRET_OUT = "results/analyses/interpretability/{dataset}"
INTERPRET_SEED = INTERPRET.get("seed") if INTERPRET.get("seed") is not None else config["seeds"][0]
# The default config asks for this analysis on pancreas: a run whose registry lacks it ignores it (a typo
# of a registered name stops the run, common.smk registered_only), and a run whose methods leave the
# analysed method out (classical methods only) skips it, and says so.
INTERPRET_DATASETS = registered_only("analyses.interpretability.datasets", INTERPRET.get("datasets", []))
_skipped = [d for d in INTERPRET_DATASETS if INTERPRET_METHOD not in methods_for(d)]
if _skipped:
    logger.info(
        f"analyses.interpretability: skipped on {', '.join(_skipped)} (method '{INTERPRET_METHOD}' "
        "is not configured for it)"
    )
    INTERPRET_DATASETS = [d for d in INTERPRET_DATASETS if d not in _skipped]
# gene-set enrichment matches gene symbols: a dataset whose registry row says otherwise is skipped, in one line
_no_symbols = [d for d in INTERPRET_DATASETS if not has_symbols(DATASETS.loc[d])]
if _no_symbols:
    logger.info(
        f"analyses.interpretability: skipped on {', '.join(_no_symbols)} (registry feature_names is not "
        "'symbols': gene sets cannot be matched)"
    )
    INTERPRET_DATASETS = [d for d in INTERPRET_DATASETS if d not in _no_symbols]


# the configured GMT: relative to the working directory, else to the workflow's own folder
INTERPRET_GENE_SETS = Path(INTERPRET.get("gene_sets", ""))
if not INTERPRET_GENE_SETS.is_absolute() and not INTERPRET_GENE_SETS.exists():
    if (Path(workflow.basedir) / INTERPRET_GENE_SETS).exists():
        INTERPRET_GENE_SETS = Path(workflow.basedir) / INTERPRET_GENE_SETS
INTERPRET_LATENT = f"{model_dir(method=INTERPRET_METHOD, seed=INTERPRET_SEED)}/latent.npz"

if INTERPRET_DATASETS:
    if INTERPRET_SEED not in config["seeds"]:
        raise WorkflowError(
            f"config: key 'analyses.interpretability.seed': {INTERPRET_SEED} is not among seeds. "
            f"Fix: use one of {config['seeds']}"
        )
    try:
        read_gmt(INTERPRET_GENE_SETS)
    except InputError as err:
        raise WorkflowError(str(err)) from None


rule interpret_components:
    """The interpretability of one dataset's latent components: gene correlations, top genes, enrichment."""
    input:
        latent=INTERPRET_LATENT,
        embedding=embedding_path("{dataset}", INTERPRET_METHOD, INTERPRET_SEED),
        data="results/data/{dataset}/preprocessed.h5ad",
        gene_sets=str(INTERPRET_GENE_SETS),
    output:
        correlations=f"{INTERPRET_OUT}/correlations.tsv",
        components=f"{INTERPRET_OUT}/components.tsv",
        top_genes=f"{INTERPRET_OUT}/top_genes.tsv",
        enrichment=f"{INTERPRET_OUT}/enrichment.tsv",
        umaps=report(
            f"{INTERPRET_OUT}/component_umaps.png",
            caption="../report/interpret_umaps.rst",
            category="Interpretability",
            subcategory="{dataset}",
        ),
        umaps_pdf=f"{INTERPRET_OUT}/component_umaps.pdf",
        enrichment_png=report(
            f"{INTERPRET_OUT}/enrichment.png",
            caption="../report/interpret_enrichment.rst",
            category="Interpretability",
            subcategory="{dataset}",
        ),
        enrichment_pdf=f"{INTERPRET_OUT}/enrichment.pdf",
    log:
        "logs/interpretability/{dataset}.log",
    benchmark:
        "results/benchmarks/interpret_components/{dataset}.tsv"
    conda:
        LIGHT_ENV
    params:
        method=INTERPRET_METHOD,
        top_genes=INTERPRET.get("top_genes", 50),
        alpha=INTERPRET.get("alpha", 0.05),
    script:
        "../../scripts/interpret_components.py"


ANALYSIS_TARGETS.extend(
    f"results/analyses/interpretability/{d}/{name}"
    for d in INTERPRET_DATASETS
    for name in ("enrichment.tsv", "component_umaps.png", "enrichment.png")
)
ANALYSIS_BENCHMARKS.extend(f"results/benchmarks/interpret_components/{d}.tsv" for d in INTERPRET_DATASETS)
