# Analyses of UniCoord models (docs/methods.md §6.1): label prediction, in silico reconfiguration,
# interpolation, restoration of a held-out category, reuse as a pretrained reference. The models are
# trained here on the train cells of one seeded split (variant `split`), and without the held-out
# category, supervised by a lineage stage (variant `restore`), so no analysis sees its test cells in
# training; they do not need `unicoord` in `methods:`. Outputs: results/analyses/unicoord/{dataset}/.

UNICOORD = analysis_settings("unicoord")
UNICOORD_DATASETS = [d for d in UNICOORD.get("datasets", [])]
UNICOORD_OUT = "results/analyses/unicoord/{dataset}"
UNICOORD_BENCH = "results/benchmarks/unicoord_{step}/{dataset}.tsv"
UNICOORD_STEPS = ["label_prediction", "reconfiguration", "interpolation", "restoration", "reference"]

if UNICOORD_DATASETS:
    _unknown = [d for d in UNICOORD_DATASETS if d not in DATASETS.index]
    if _unknown:
        raise WorkflowError(f"config: key 'analyses.unicoord.datasets': '{_unknown[0]}' is not in the dataset "
                            f"registry. Fix: use one of: {', '.join(DATASETS.index)}")
    if UNICOORD["restoration"]["key"] and not UNICOORD["restoration"]["heldout"]:
        raise WorkflowError("config: key 'analyses.unicoord.restoration.heldout' is not set. Fix: name the "
                            "category of restoration.key to hold out, with a stage for every category in stages")


def unicoord_model_overrides(wildcards):
    """The registered method's settings on this dataset; the restoration model is supervised by the
    lineage stage only (as the paper restores a time point from a timestamp coordinate)."""
    overrides = method_overrides(config, wildcards.dataset, "unicoord")
    if UNICOORD["epochs"]:
        overrides["epochs"] = UNICOORD["epochs"]
    if wildcards.variant == "restore":
        overrides.update(discrete_keys=[], continuous_keys=["lineage_stage"], parent_keys=None)
    return overrides


def unicoord_path(name):
    return f"{UNICOORD_OUT}/{name}"


rule unicoord_split:
    input:
        "results/data/{dataset}/preprocessed.h5ad",
    output:
        unicoord_path("split.tsv"),
    params:
        seed=UNICOORD.get("seed", 0),
        test_frac=UNICOORD.get("test_frac", 0.2),
    log:
        "logs/unicoord/{dataset}/split.log",
    benchmark:
        "results/benchmarks/unicoord_split/{dataset}.tsv"
    conda:
        CONDA_ENV
    script:
        "../../scripts/unicoord_split.py"


rule unicoord_train:
    input:
        data="results/data/{dataset}/preprocessed.h5ad",
        split=unicoord_path("split.tsv"),
    output:
        unicoord_path("models/{variant}/model.pt"),
    wildcard_constraints:
        variant="split|restore",
    params:
        overrides=unicoord_model_overrides,
        latent_dim=config["latent_dim"],
        seed=UNICOORD.get("seed", 0),
        restoration=UNICOORD.get("restoration", {}),
        gpu_fallback=config["gpu_fallback"],
    threads: config["threads"]["train"]
    resources:
        gpu=config["gpu"],
        gpu_model=config["gpu_model"] if config["gpu"] > 0 else "",
    log:
        "logs/unicoord/{dataset}/train_{variant}.log",
    benchmark:
        "results/benchmarks/unicoord_train/{dataset}/{variant}.tsv"
    conda:
        CONDA_ENV
    script:
        "../../scripts/unicoord_train.py"


rule unicoord_label_prediction:
    input:
        data="results/data/{dataset}/preprocessed.h5ad",
        split=unicoord_path("split.tsv"),
        model=unicoord_path("models/split/model.pt"),
    output:
        table=unicoord_path("label_prediction/accuracy.tsv"),
        predictions=unicoord_path("label_prediction/predictions.tsv"),
        png=report(unicoord_path("label_prediction/accuracy.png"), caption="../report/unicoord_label_prediction.rst",
                   category="UniCoord", subcategory="{dataset}"),
        pdf=unicoord_path("label_prediction/accuracy.pdf"),
    params:
        settings=UNICOORD.get("label_prediction", {}),
        seed=UNICOORD.get("seed", 0),
    log:
        "logs/unicoord/{dataset}/label_prediction.log",
    benchmark:
        UNICOORD_BENCH.format(step="label_prediction", dataset="{dataset}")
    conda:
        CONDA_ENV
    script:
        "../../scripts/unicoord_label_prediction.py"


rule unicoord_reconfiguration:
    input:
        data="results/data/{dataset}/preprocessed.h5ad",
        split=unicoord_path("split.tsv"),
        model=unicoord_path("models/split/model.pt"),
    output:
        cells=unicoord_path("reconfiguration/generated.h5ad"),
        table=unicoord_path("reconfiguration/reconfiguration.tsv"),
        umap=report(unicoord_path("reconfiguration/umap.png"), caption="../report/unicoord_reconfiguration_umap.rst",
                    category="UniCoord", subcategory="{dataset}"),
        umap_pdf=unicoord_path("reconfiguration/umap.pdf"),
        dotplot=report(unicoord_path("reconfiguration/dotplot.png"),
                       caption="../report/unicoord_reconfiguration_dotplot.rst", category="UniCoord",
                       subcategory="{dataset}"),
        dotplot_pdf=unicoord_path("reconfiguration/dotplot.pdf"),
    params:
        settings=UNICOORD.get("reconfiguration", {}),
        seed=UNICOORD.get("seed", 0),
    threads: config["threads"]["embed"]
    log:
        "logs/unicoord/{dataset}/reconfiguration.log",
    benchmark:
        UNICOORD_BENCH.format(step="reconfiguration", dataset="{dataset}")
    conda:
        CONDA_ENV
    script:
        "../../scripts/unicoord_reconfiguration.py"


rule unicoord_interpolation:
    input:
        data="results/data/{dataset}/preprocessed.h5ad",
        split=unicoord_path("split.tsv"),
        model=unicoord_path("models/split/model.pt"),
    output:
        table=unicoord_path("interpolation/trajectory.tsv"),
        png=report(unicoord_path("interpolation/heatmap.png"), caption="../report/unicoord_interpolation.rst",
                   category="UniCoord", subcategory="{dataset}"),
        pdf=unicoord_path("interpolation/heatmap.pdf"),
    params:
        settings=UNICOORD.get("interpolation", {}),
    log:
        "logs/unicoord/{dataset}/interpolation.log",
    benchmark:
        UNICOORD_BENCH.format(step="interpolation", dataset="{dataset}")
    conda:
        CONDA_ENV
    script:
        "../../scripts/unicoord_interpolation.py"


rule unicoord_restoration:
    input:
        data="results/data/{dataset}/preprocessed.h5ad",
        split=unicoord_path("split.tsv"),
        model=unicoord_path("models/restore/model.pt"),
    output:
        table=unicoord_path("restoration/restoration.tsv"),
        png=report(unicoord_path("restoration/restoration.png"), caption="../report/unicoord_restoration.rst",
                   category="UniCoord", subcategory="{dataset}"),
        pdf=unicoord_path("restoration/restoration.pdf"),
    params:
        settings=UNICOORD.get("restoration", {}),
    log:
        "logs/unicoord/{dataset}/restoration.log",
    benchmark:
        UNICOORD_BENCH.format(step="restoration", dataset="{dataset}")
    conda:
        CONDA_ENV
    script:
        "../../scripts/unicoord_restoration.py"


rule unicoord_reference:
    input:
        data="results/data/{dataset}/preprocessed.h5ad",
        split=unicoord_path("split.tsv"),
        model=unicoord_path("models/split/model.pt"),
        query=lambda w: UNICOORD.get("reference", {}).get("query") or [],
    output:
        query=unicoord_path("reference/query.h5ad"),
        predictions=unicoord_path("reference/predictions.tsv"),
        table=unicoord_path("reference/confusion.tsv"),
        png=report(unicoord_path("reference/confusion.png"), caption="../report/unicoord_reference.rst",
                   category="UniCoord", subcategory="{dataset}"),
        pdf=unicoord_path("reference/confusion.pdf"),
    params:
        settings=UNICOORD.get("reference", {}),
        seed=UNICOORD.get("seed", 0),
    log:
        "logs/unicoord/{dataset}/reference.log",
    benchmark:
        UNICOORD_BENCH.format(step="reference", dataset="{dataset}")
    conda:
        CONDA_ENV
    script:
        "../../scripts/unicoord_reference.py"


_UNICOORD_OUTPUTS = {
    "label_prediction": rules.unicoord_label_prediction.output,
    "reconfiguration": rules.unicoord_reconfiguration.output,
    "interpolation": rules.unicoord_interpolation.output,
    "restoration": rules.unicoord_restoration.output,
    "reference": rules.unicoord_reference.output,
}
for _dataset in UNICOORD_DATASETS:
    for _step, _outputs in _UNICOORD_OUTPUTS.items():
        ANALYSIS_TARGETS.extend(str(path).format(dataset=_dataset) for path in _outputs)
        ANALYSIS_BENCHMARKS.append(UNICOORD_BENCH.format(step=_step, dataset=_dataset))
    ANALYSIS_BENCHMARKS.append(f"results/benchmarks/unicoord_split/{_dataset}.tsv")
    ANALYSIS_BENCHMARKS.extend(f"results/benchmarks/unicoord_train/{_dataset}/{v}.tsv" for v in ("split", "restore"))
