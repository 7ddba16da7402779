# Configuration, dataset registry and target lists shared by every rule file.
import os
import re
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.logging import logger

LIB_DIR = str(Path(workflow.basedir) / "workflow" / "lib")
# The library is importable without installation: here for the Snakefile, through PYTHONPATH for jobs
# (local, conda or SLURM, which inherit the environment).
sys.path.insert(0, LIB_DIR)
os.environ.update(PYTHONPATH=os.pathsep.join(p for p in [LIB_DIR, os.getenv("PYTHONPATH")] if p))

from livaebench.comparisons import configured_comparisons
from livaebench.config import QC_COLUMNS, load_registry, registered_datasets, runs_on, validate_config
from livaebench.errors import InputError
from livaebench.methods import (
    ARTIFACT_FILES,
    check_dataset_method_params,
    check_method_params,
    get_method,
    method_overrides,
)
from livaebench.methods.controls import CONTROLS, NEEDS_LABELS
from livaebench.resources import train_resources
from livaebench.software_envs import LIGHT, TRAIN, TRAIN_EXTRA, env_file, method_env

SCHEMAS = Path(workflow.basedir) / "workflow" / "schemas"
ENVS = "../../envs"
# Each rule's conda env (--sdm conda) is the smallest that has what its code imports (livaebench.software_envs;
# tests/test_envs.py checks every rule): no torch, torch (CPU build), torch + scvi-tools/scTour/torch-geometric.
LIGHT_ENV = f"{ENVS}/{env_file(LIGHT)}"
TRAIN_ENV = f"{ENVS}/{env_file(TRAIN)}"
TRAIN_EXTRA_ENV = f"{ENVS}/{env_file(TRAIN_EXTRA)}"


def gpu_env(kind):
    """The env of a job that gets the gpu resource: the CUDA build when the config asks for GPUs."""
    return f"{ENVS}/{env_file(kind, gpu=config['gpu'] > 0)}"


# Everything a run can get wrong in its configuration stops it here, before any job starts.
try:
    validate_config(config, SCHEMAS / "config.schema.yaml")
    DATASETS = load_registry(config["datasets"], SCHEMAS / "datasets.schema.yaml")
    # the control methods (the ends of the summary's scale, docs/methods.md §8) run unless summary.controls is off
    CONTROL_METHODS = [m for m in CONTROLS if config["summary"]["controls"] and m not in config["methods"]]
    METHODS = {name: get_method(name) for name in [*config["methods"], *CONTROL_METHODS]}
    check_method_params(config["method_params"])
    check_dataset_method_params(
        {d: v for d, v in config["dataset_method_params"].items() if d in DATASETS.index}, DATASETS.index
    )
    COMPARISONS = configured_comparisons(config)
except InputError as err:
    raise WorkflowError(str(err)) from None


wildcard_constraints:
    dataset="|".join(map(re.escape, DATASETS.index)),
    method="|".join(map(re.escape, METHODS)),
    comparison="|".join(map(re.escape, COMPARISONS)) or "(?!)",
    seed=r"\d+",


# Analyses of trained models (workflow/rules/analyses_*.smk) add the files they produce and the
# benchmark files of their jobs here; `rule all` and the per-rule benchmark table pick them up.
ANALYSIS_TARGETS = []
ANALYSIS_BENCHMARKS = []


def registered_only(key, datasets):
    """The datasets of a per-dataset config entry that this run's registry has. One rule for every such key
    (livaebench.config.registered_datasets): a typo of a registered name stops the run naming the closest
    ones; a dataset of another registry (a shared config may name the shipped pancreas) is ignored, in a
    warning."""
    try:
        kept, ignored = registered_datasets(key, datasets, DATASETS.index)
    except InputError as err:
        raise WorkflowError(str(err)) from None
    if ignored:
        logger.warning(
            f"config: key '{key}' names dataset(s) not in the registry {config['datasets']}: "
            f"{', '.join(ignored)}; ignored for this run"
        )
    return kept


registered_only("dataset_method_params", config["dataset_method_params"])
for _name, _spec in COMPARISONS.items():
    registered_only(f"comparisons.{_name}.datasets", _spec.get("datasets") or [])


def analysis_settings(name):
    """The config block of one analysis (config key `analyses`), {} when it is not configured."""
    return (config.get("analyses") or {}).get(name) or {}


def dataset_row(wildcards):
    row = DATASETS.loc[wildcards.dataset].to_dict()
    # unset per-dataset QC overrides stay out of the params, so adding those columns reran nothing
    return {k: v for k, v in row.items() if v or k not in (*QC_COLUMNS, "feature_names", "samples")}


def methods_for(dataset):
    modality, labelled = DATASETS.loc[dataset, "modality"], bool(DATASETS.loc[dataset, "label_key"])
    return [
        name
        for name, method in METHODS.items()
        if modality in method.modalities and runs_on(config, name, modality) and (labelled or name not in NEEDS_LABELS)
    ]


def counts_source(wildcards):
    """Input of assemble_counts: the GEO download folder or the registry's local path."""
    row = DATASETS.loc[wildcards.dataset]
    if row["source"] == "geo":
        return f"results/downloads/{wildcards.dataset}"
    return row["path"]


def embedding_path(dataset, method, seed):
    return f"results/embeddings/{dataset}/{method}/seed{seed}.h5ad"


def metrics_path(dataset, method, seed):
    return f"results/metrics/{dataset}/{method}/seed{seed}.tsv"


def all_runs():
    """(dataset, method, seed) for every run the config asks for."""
    return [(d, m, s) for d in DATASETS.index for m in methods_for(d) for s in config["seeds"]]


def metric_targets():
    return [metrics_path(*run) for run in all_runs()]


def artifact_groups():
    """Configured methods grouped by the artifacts they declare: one train rule per group."""
    groups = {}
    for name, method in METHODS.items():
        groups.setdefault(method.artifacts, []).append(name)
    return groups


def train_rule_name(artifacts):
    return "_".join(["train", *artifacts])


def model_dir(dataset="{dataset}", method="{method}", seed="{seed}"):
    return f"results/models/{dataset}/{method}/seed{seed}"


def method_conda_env(wildcards):
    return f"{ENVS}/{method_env(METHODS[wildcards.method], config['gpu'])}"


def train_threads(wildcards):
    return METHODS[wildcards.method].resources.threads(config["threads"]["train"])


def train_resource(key):
    """A resource function of the train rules: the method's contract at the dataset's size and attempt."""

    def resource(wildcards, input, attempt):
        max_cells = DATASETS.loc[wildcards.dataset, "max_cells"]
        return train_resources(METHODS[wildcards.method], input[0], attempt, int(max_cells) if max_cells else None)[key]

    return resource


def comparison_spec(name):
    """A comparison family restricted to what this run has: configured methods and matching datasets."""
    spec = dict(COMPARISONS[name])
    modality = spec.get("modality", "any")
    datasets = spec.get("datasets") or [
        d for d in DATASETS.index if modality == "any" or DATASETS.loc[d, "modality"] == modality
    ]
    if spec.get("batch_only"):
        datasets = [d for d in datasets if d in DATASETS.index and DATASETS.loc[d, "batch_key"]]
    spec["datasets"] = [d for d in datasets if d in DATASETS.index and spec["reference"] in methods_for(d)]
    spec["baselines"] = [m for m in spec["baselines"] if m in METHODS]
    return spec


def fairness_overrides():
    """{method: {dataset: its overrides there}} for every configured method that runs on some dataset."""
    runs = {m: {d: method_overrides(config, d, m) for d in DATASETS.index if m in methods_for(d)} for m in METHODS}
    return {m: per_dataset for m, per_dataset in runs.items() if per_dataset}


def active_comparisons():
    """Comparisons whose reference and at least one baseline run on at least one dataset here."""
    active = []
    for name in COMPARISONS:
        spec = comparison_spec(name)
        if spec["reference"] in METHODS and spec["baselines"] and spec["datasets"]:
            active.append(name)
    return active


def comparison_targets():
    return expand("results/stats/{comparison}.tsv", comparison=active_comparisons())


def batch_datasets():
    return [d for d in DATASETS.index if DATASETS.loc[d, "batch_key"]]


def comparison_plots(name):
    """The figures of a comparison family: results/figures/{comparison}/{plot}.png/.pdf."""
    return ["boxplots", "delta"] + (["sensitivity"] if COMPARISONS[name].get("sweep") else [])


def figure_targets():
    targets = []
    for name in active_comparisons():
        targets += expand(
            "results/figures/{comparison}/{plot}.{ext}",
            comparison=name,
            plot=comparison_plots(name),
            ext=["png", "pdf"],
        )
    targets += expand("results/figures/umap/{dataset}.{ext}", dataset=DATASETS.index, ext=["png", "pdf"])
    if batch_datasets():
        targets += expand("results/figures/ilisi_subsample.{ext}", ext=["png", "pdf"])
    return targets


def benchmark_targets():
    """The benchmark file of every job the default target runs (each rule's `benchmark:` path)."""
    bench = "results/benchmarks"
    runs = all_runs()
    targets = [f"{bench}/fetch_geo/{d}.tsv" for d in DATASETS.index if DATASETS.loc[d, "source"] == "geo"]
    targets += [f"{bench}/{step}/{d}.tsv" for step in ("assemble_counts", "preprocess") for d in DATASETS.index]
    targets += [f"{bench}/{train_rule_name(METHODS[m].artifacts)}/{d}/{m}/seed{s}.tsv" for d, m, s in runs]
    targets += [f"{bench}/{step}/{d}/{m}/seed{s}.tsv" for step in ("embed", "evaluate") for d, m, s in runs]
    targets += [f"{bench}/gather_metrics.tsv", f"{bench}/convergence.tsv", f"{bench}/fairness.tsv"]
    for name in active_comparisons():
        targets += [f"{bench}/compare/{name}.tsv", f"{bench}/plot_comparison/{name}.tsv"]
        if COMPARISONS[name].get("sweep"):
            targets.append(f"{bench}/plot_sensitivity/{name}.tsv")
    targets += [f"{bench}/plot_umap_grid/{d}.tsv" for d in DATASETS.index]
    targets += [
        f"{bench}/{step}/{m}.tsv"
        for step in ("summary_table", "summary_figure", "cd_diagram")
        for m in summary_modalities()
    ]
    if batch_datasets():
        targets.append(f"{bench}/plot_ilisi.tsv")
    return targets + ANALYSIS_BENCHMARKS


def summary_modalities():
    """The modalities that get a ranked summary: every modality of the run, when the controls run."""
    if not all(c in METHODS for c in CONTROLS):
        return []  # without the controls there is no scale (summary.controls: false)
    return sorted(set(DATASETS["modality"]))


def modality_datasets(modality):
    return [d for d in DATASETS.index if DATASETS.loc[d, "modality"] == modality]


def summary_families(modality):
    """method -> family of every method run on a dataset of the modality (controls included)."""
    return {m: METHODS[m].family for d in modality_datasets(modality) for m in methods_for(d)}


def summary_targets():
    suffixes = [".tsv", "_scores.tsv", ".png", ".pdf", "_cd.png", "_cd.pdf"]
    return expand("results/summary/{modality}{suffix}", modality=summary_modalities(), suffix=suffixes)


def preprocess_row(wildcards):
    """The registry row; a pseudo-label row (label_key pseudo:kmeans[:K]) also gets the resolved k, seed
    and n_init, so changing latent_dim or the first seed reruns only the datasets whose labels depend on it."""
    from livaebench.labels import pseudo_label_options

    row = dataset_row(wildcards)
    options = pseudo_label_options(row["label_key"], latent_dim=config["latent_dim"], seed=config["seeds"][0])
    return {**row, "pseudo_labels": options} if options else row


def ilisi_reference():
    """The multi-batch family's reference (Fig. 11), drawn in the reference colour, when it is run."""
    reference = COMPARISONS.get("fig11_multibatch", {}).get("reference")
    return reference if reference in METHODS else None


def site_manifest():
    """What the results site reads (the site rule, livaebench.site.build_site), page by page; the summary of
    each modality, each dataset's UMAP grid and preprocessing record, each comparison family's stats table,
    figures and settings, and the tables of the whole run."""
    modalities = {
        m: {
            "table": f"results/summary/{m}.tsv",
            "scores": f"results/summary/{m}_scores.tsv",
            "figure": f"results/summary/{m}.png",
            "cd": f"results/summary/{m}_cd.png",
        }
        for m in summary_modalities()
    }
    datasets = {
        d: {
            "modality": DATASETS.loc[d, "modality"],
            "label_key": DATASETS.loc[d, "label_key"],
            "batch_key": DATASETS.loc[d, "batch_key"],
            "umap": f"results/figures/umap/{d}.png",
            "preprocessed": f"results/data/{d}/preprocessed.h5ad",
        }
        for d in DATASETS.index
    }
    comparisons = {
        c: {
            "stats": f"results/stats/{c}.tsv",
            "spec": comparison_spec(c),
            "figures": {p: f"results/figures/{c}/{p}.png" for p in comparison_plots(c)},
        }
        for c in active_comparisons()
    }
    tables = {
        "metrics": "results/metrics/all.tsv",
        "failures": "results/metrics/failures.tsv",
        "convergence": "results/metrics/convergence.tsv",
        "fairness": "results/stats/fairness.tsv",
        "costs": "results/benchmarks/rules.tsv",
    }
    return {"modalities": modalities, "datasets": datasets, "comparisons": comparisons, "tables": tables}


def site_inputs():
    """Every file of site_manifest()."""
    manifest = site_manifest()
    files = list(manifest["tables"].values())
    for info in manifest["modalities"].values():
        files += info.values()
    for info in manifest["datasets"].values():
        files += [info["umap"], info["preprocessed"]]
    for info in manifest["comparisons"].values():
        files += [info["stats"], *info["figures"].values()]
    return files


def site_targets():
    """The results site and its zip (made by the site rule), part of the default run."""
    return ["results/site/index.html", "results/site.zip"]


def claims_targets():
    """The paper's claims checked against the run (rule claims), when config `claims` is on."""
    return ["results/claims/claims.tsv", "results/claims/claims.md"] if config["claims"] else []


def forecast_listings():
    """dataset -> its GEO listing path, for the GEO rows of the registry (rule forecast)."""
    return {d: f"results/geo_files/{d}.tsv" for d in DATASETS.index if DATASETS.loc[d, "source"] == "geo"}
