# Analyses of UniCoord models (docs/methods.md §6.1): label prediction, in silico reconfiguration,
# interpolation, restoration of a held-out category, reuse as a pretrained reference. The models are
# trained here on the train cells of one seeded split (variant `split`), and without the held-out
# category, supervised by a lineage stage (variant `restore`), so no analysis sees its test cells in
# training; they do not need `unicoord` in `methods:`. Outputs: results/analyses/unicoord/{dataset}/.

from livaebench.methods.unicoord import analysis_model_overrides

UNICOORD = analysis_settings("unicoord")
UNICOORD_DATASETS = registered_only("analyses.unicoord.datasets", UNICOORD.get("datasets", []))
UNICOORD_OUT = "results/analyses/unicoord/{dataset}"
UNICOORD_BENCH = "results/benchmarks/unicoord_{step}/{dataset}.tsv"

if UNICOORD_DATASETS:
    if UNICOORD["restoration"]["key"] and not UNICOORD["restoration"]["heldout"]:
        raise WorkflowError(
            "config: key 'analyses.unicoord.restoration.heldout' is not set. Fix: name the "
            "category of restoration.key to hold out, with a stage for every category in stages"
        )


rule unicoord_split:
    """One dataset's seeded train/test split of cells for the UniCoord analyses (split.tsv)."""
    input:
        "results/data/{dataset}/preprocessed.h5ad",
    output:
        f"{UNICOORD_OUT}/split.tsv",
    log:
        "logs/unicoord/{dataset}/split.log",
    benchmark:
        "results/benchmarks/unicoord_split/{dataset}.tsv"
    conda:
        TRAIN_ENV
    params:
        seed=UNICOORD.get("seed", 0),
        test_frac=UNICOORD.get("test_frac", 0.2),
    script:
        "../../scripts/unicoord_split.py"


rule unicoord_train:
    """A UniCoord model of one dataset: on the split's train cells, or without the held-out category (variant)."""
    input:
        data="results/data/{dataset}/preprocessed.h5ad",
        split=f"{UNICOORD_OUT}/split.tsv",
    output:
        f"{UNICOORD_OUT}/models/{{variant}}/model.pt",
    log:
        "logs/unicoord/{dataset}/train_{variant}.log",
    benchmark:
        "results/benchmarks/unicoord_train/{dataset}/{variant}.tsv"
    wildcard_constraints:
        variant="split|restore",
    conda:
        gpu_env(TRAIN)
    threads: config["threads"]["train"]
    resources:
        gpu=config["gpu"],
        gpu_model=config["gpu_model"] if config["gpu"] > 0 else "",
    params:
        overrides=lambda w: analysis_model_overrides(
            method_overrides(config, w.dataset, "unicoord"), UNICOORD["epochs"], w.variant
        ),
        seed=UNICOORD.get("seed", 0),
        restoration=UNICOORD.get("restoration", {}),
        gpu_fallback=config["gpu_fallback"],
    script:
        "../../scripts/unicoord_train.py"


rule unicoord_label_prediction:
    """UniCoord's label prediction on one dataset's test cells: accuracy, predictions, figure."""
    input:
        data="results/data/{dataset}/preprocessed.h5ad",
        split=f"{UNICOORD_OUT}/split.tsv",
        model=f"{UNICOORD_OUT}/models/split/model.pt",
    output:
        table=f"{UNICOORD_OUT}/label_prediction/accuracy.tsv",
        predictions=f"{UNICOORD_OUT}/label_prediction/predictions.tsv",
        png=report(
            f"{UNICOORD_OUT}/label_prediction/accuracy.png",
            caption="../report/unicoord_label_prediction.rst",
            category="UniCoord",
            subcategory="{dataset}",
        ),
        pdf=f"{UNICOORD_OUT}/label_prediction/accuracy.pdf",
    log:
        "logs/unicoord/{dataset}/label_prediction.log",
    benchmark:
        UNICOORD_BENCH.format(step="label_prediction", dataset="{dataset}")
    conda:
        TRAIN_ENV
    params:
        settings=UNICOORD.get("label_prediction", {}),
        seed=UNICOORD.get("seed", 0),
    script:
        "../../scripts/unicoord_label_prediction.py"


rule unicoord_reconfiguration:
    """UniCoord's in silico reconfiguration on one dataset: the generated cells, their table and UMAP."""
    input:
        data="results/data/{dataset}/preprocessed.h5ad",
        split=f"{UNICOORD_OUT}/split.tsv",
        model=f"{UNICOORD_OUT}/models/split/model.pt",
    output:
        cells=f"{UNICOORD_OUT}/reconfiguration/generated.h5ad",
        table=f"{UNICOORD_OUT}/reconfiguration/reconfiguration.tsv",
        umap=report(
            f"{UNICOORD_OUT}/reconfiguration/umap.png",
            caption="../report/unicoord_reconfiguration_umap.rst",
            category="UniCoord",
            subcategory="{dataset}",
        ),
        umap_pdf=f"{UNICOORD_OUT}/reconfiguration/umap.pdf",
        dotplot=report(
            f"{UNICOORD_OUT}/reconfiguration/dotplot.png",
            caption="../report/unicoord_reconfiguration_dotplot.rst",
            category="UniCoord",
            subcategory="{dataset}",
        ),
        dotplot_pdf=f"{UNICOORD_OUT}/reconfiguration/dotplot.pdf",
    log:
        "logs/unicoord/{dataset}/reconfiguration.log",
    benchmark:
        UNICOORD_BENCH.format(step="reconfiguration", dataset="{dataset}")
    conda:
        TRAIN_ENV
    threads: config["threads"]["embed"]
    params:
        settings=UNICOORD.get("reconfiguration", {}),
        seed=UNICOORD.get("seed", 0),
    script:
        "../../scripts/unicoord_reconfiguration.py"


rule unicoord_interpolation:
    """UniCoord's interpolation along a continuous coordinate on one dataset: trajectory and heatmap."""
    input:
        data="results/data/{dataset}/preprocessed.h5ad",
        split=f"{UNICOORD_OUT}/split.tsv",
        model=f"{UNICOORD_OUT}/models/split/model.pt",
    output:
        table=f"{UNICOORD_OUT}/interpolation/trajectory.tsv",
        png=report(
            f"{UNICOORD_OUT}/interpolation/heatmap.png",
            caption="../report/unicoord_interpolation.rst",
            category="UniCoord",
            subcategory="{dataset}",
        ),
        pdf=f"{UNICOORD_OUT}/interpolation/heatmap.pdf",
    log:
        "logs/unicoord/{dataset}/interpolation.log",
    benchmark:
        UNICOORD_BENCH.format(step="interpolation", dataset="{dataset}")
    conda:
        TRAIN_ENV
    params:
        settings=UNICOORD.get("interpolation", {}),
        seed=UNICOORD.get("seed", 0),
    script:
        "../../scripts/unicoord_interpolation.py"


rule unicoord_restoration:
    """UniCoord's restoration of a held-out category on one dataset: table and figure."""
    input:
        data="results/data/{dataset}/preprocessed.h5ad",
        split=f"{UNICOORD_OUT}/split.tsv",
        model=f"{UNICOORD_OUT}/models/restore/model.pt",
    output:
        table=f"{UNICOORD_OUT}/restoration/restoration.tsv",
        png=report(
            f"{UNICOORD_OUT}/restoration/restoration.png",
            caption="../report/unicoord_restoration.rst",
            category="UniCoord",
            subcategory="{dataset}",
        ),
        pdf=f"{UNICOORD_OUT}/restoration/restoration.pdf",
    log:
        "logs/unicoord/{dataset}/restoration.log",
    benchmark:
        UNICOORD_BENCH.format(step="restoration", dataset="{dataset}")
    conda:
        TRAIN_ENV
    params:
        settings=UNICOORD.get("restoration", {}),
        seed=UNICOORD.get("seed", 0),
    script:
        "../../scripts/unicoord_restoration.py"


rule unicoord_reference:
    """UniCoord reused as a pretrained reference on one dataset's query cells: predictions and confusion."""
    input:
        data="results/data/{dataset}/preprocessed.h5ad",
        split=f"{UNICOORD_OUT}/split.tsv",
        model=f"{UNICOORD_OUT}/models/split/model.pt",
        query=lambda w: UNICOORD.get("reference", {}).get("query") or [],
    output:
        query=f"{UNICOORD_OUT}/reference/query.h5ad",
        predictions=f"{UNICOORD_OUT}/reference/predictions.tsv",
        table=f"{UNICOORD_OUT}/reference/confusion.tsv",
        png=report(
            f"{UNICOORD_OUT}/reference/confusion.png",
            caption="../report/unicoord_reference.rst",
            category="UniCoord",
            subcategory="{dataset}",
        ),
        pdf=f"{UNICOORD_OUT}/reference/confusion.pdf",
    log:
        "logs/unicoord/{dataset}/reference.log",
    benchmark:
        UNICOORD_BENCH.format(step="reference", dataset="{dataset}")
    conda:
        TRAIN_ENV
    params:
        settings=UNICOORD.get("reference", {}),
        seed=UNICOORD.get("seed", 0),
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
