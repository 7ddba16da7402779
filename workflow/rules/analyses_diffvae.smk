# Analyses of DiffVAE and Graph-DiffVAE models (docs/methods.md §6.2-6.3). The models are the registered
# methods `diffvae` and `graph_diffvae`, trained by the train rule (so their latents also go through the
# metric panel); these rules read their model.pt. Outputs: results/analyses/{diffvae,graph_diffvae}/{dataset}/.
#   diffvae_celltypes     K-means of μ on its t-SNE, extreme cells per dimension, marker dimensions, high-weight genes
#   diffvae_perturbation  shift source cells along the target's marker dimensions, decode, classify
#   graph_diffvae_links   predicted links, node embedding, link fractions between cell types (input vs predicted)

DIFFVAE = analysis_settings("diffvae")
DIFFVAE_DATASETS = registered_only("analyses.diffvae.datasets", DIFFVAE.get("datasets", []))
GRAPH_DIFFVAE_DATASETS = registered_only("analyses.diffvae.graph_datasets", DIFFVAE.get("graph_datasets", []))
DIFFVAE_SEED = DIFFVAE.get("seed") if DIFFVAE.get("seed") is not None else config["seeds"][0]
DIFFVAE_OUT = "results/analyses/diffvae/{dataset}"
GRAPH_DIFFVAE_OUT = "results/analyses/graph_diffvae/{dataset}"


# One-line errors while the workflow is planned: methods not configured, no source/target (a dataset name
# the registry lacks: common.smk registered_only, as for every analysis).
for _key, _method, _datasets in (
    ("datasets", "diffvae", DIFFVAE_DATASETS),
    ("graph_datasets", "graph_diffvae", GRAPH_DIFFVAE_DATASETS),
):
    _where = f"config: key 'analyses.diffvae.{_key}'"
    if _datasets and _method not in METHODS:
        raise WorkflowError(
            f"{_where}: the analysis needs the method '{_method}', which is not in methods. "
            f"Fix: add {_method} to methods (e.g. --config 'methods=[...,{_method}]') "
            f"or empty analyses.diffvae.{_key}"
        )
    _other = [d for d in _datasets if _method not in methods_for(d)]
    if _other:
        raise WorkflowError(
            f"{_where}: method '{_method}' does not run on dataset '{_other[0]}' (modality "
            f"{DATASETS.loc[_other[0], 'modality']}). Fix: remove the dataset"
        )
if (DIFFVAE_DATASETS or GRAPH_DIFFVAE_DATASETS) and DIFFVAE_SEED not in config["seeds"]:
    raise WorkflowError(
        f"config: key 'analyses.diffvae.seed': {DIFFVAE_SEED} is not among seeds. " f"Fix: use one of {config['seeds']}"
    )
if DIFFVAE_DATASETS and not (DIFFVAE["perturbation"]["source"] and DIFFVAE["perturbation"]["target"]):
    raise WorkflowError(
        "config: key 'analyses.diffvae.perturbation': source and target cell types are not set. "
        "Fix: name them, e.g. {source: Pre-endocrine, target: Beta}"
    )

DIFFVAE_MODEL = f"{model_dir(method='diffvae', seed=DIFFVAE_SEED)}/model.pt"
DIFFVAE_LATENT = f"{model_dir(method='diffvae', seed=DIFFVAE_SEED)}/latent.npz"
GRAPH_DIFFVAE_MODEL = f"{model_dir(method='graph_diffvae', seed=DIFFVAE_SEED)}/model.pt"


rule diffvae_celltypes:
    """DiffVAE's latent dimensions against one dataset's cell types: clusters, shares, marker genes."""
    input:
        model=DIFFVAE_MODEL,
        latent=DIFFVAE_LATENT,
        embedding=embedding_path("{dataset}", "diffvae", DIFFVAE_SEED),
        data="results/data/{dataset}/preprocessed.h5ad",
    output:
        clusters=f"{DIFFVAE_OUT}/clusters.tsv",
        shares=f"{DIFFVAE_OUT}/dimension_shares.tsv",
        markers=f"{DIFFVAE_OUT}/marker_dimensions.tsv",
        genes=f"{DIFFVAE_OUT}/high_weight_genes.tsv",
        png=report(
            f"{DIFFVAE_OUT}/celltypes.png",
            caption="../report/diffvae_celltypes.rst",
            category="DiffVAE",
            subcategory="{dataset}",
        ),
        pdf=f"{DIFFVAE_OUT}/celltypes.pdf",
    log:
        "logs/diffvae/{dataset}/celltypes.log",
    benchmark:
        "results/benchmarks/diffvae_celltypes/{dataset}.tsv"
    conda:
        TRAIN_EXTRA_ENV
    params:
        seed=DIFFVAE_SEED,
        n_clusters=DIFFVAE.get("n_clusters"),
        n_dims=DIFFVAE.get("n_dims", 5),
        n_genes=DIFFVAE.get("n_genes", 10),
    script:
        "../../scripts/diffvae_celltypes.py"


rule diffvae_perturbation:
    """DiffVAE's in-silico perturbation of one dataset from its source to its target cell type."""
    input:
        model=DIFFVAE_MODEL,
        latent=DIFFVAE_LATENT,
        embedding=embedding_path("{dataset}", "diffvae", DIFFVAE_SEED),
        data="results/data/{dataset}/preprocessed.h5ad",
        clusters=rules.diffvae_celltypes.output.clusters,
        markers=rules.diffvae_celltypes.output.markers,
    output:
        conversions=f"{DIFFVAE_OUT}/perturbation.tsv",
        genes=f"{DIFFVAE_OUT}/perturbation_genes.tsv",
        png=report(
            f"{DIFFVAE_OUT}/perturbation.png",
            caption="../report/diffvae_perturbation.rst",
            category="DiffVAE",
            subcategory="{dataset}",
        ),
        pdf=f"{DIFFVAE_OUT}/perturbation.pdf",
    log:
        "logs/diffvae/{dataset}/perturbation.log",
    benchmark:
        "results/benchmarks/diffvae_perturbation/{dataset}.tsv"
    conda:
        TRAIN_EXTRA_ENV
    params:
        seed=DIFFVAE_SEED,
        n_dims=DIFFVAE.get("n_dims", 5),
        perturbation=DIFFVAE.get("perturbation", {}),
    script:
        "../../scripts/diffvae_perturbation.py"


rule graph_diffvae_links:
    """Graph-DiffVAE's predicted cell-cell links on one dataset and their fractions by cell type."""
    input:
        model=GRAPH_DIFFVAE_MODEL,
        data="results/data/{dataset}/preprocessed.h5ad",
    output:
        predicted=f"{GRAPH_DIFFVAE_OUT}/predicted_links.npz",
        input_links=f"{GRAPH_DIFFVAE_OUT}/input_links.npz",
        embedding=f"{GRAPH_DIFFVAE_OUT}/node_embedding.npz",
        fractions=f"{GRAPH_DIFFVAE_OUT}/link_fractions.tsv",
        summary=f"{GRAPH_DIFFVAE_OUT}/link_summary.tsv",
        png=report(
            f"{GRAPH_DIFFVAE_OUT}/link_fractions.png",
            caption="../report/graph_diffvae_links.rst",
            category="Graph-DiffVAE",
            subcategory="{dataset}",
        ),
        pdf=f"{GRAPH_DIFFVAE_OUT}/link_fractions.pdf",
    log:
        "logs/graph_diffvae/{dataset}/links.log",
    benchmark:
        "results/benchmarks/graph_diffvae_links/{dataset}.tsv"
    conda:
        TRAIN_EXTRA_ENV
    params:
        k=DIFFVAE.get("graph", {}).get("k", 10),
    script:
        "../../scripts/diffvae_graph.py"


ANALYSIS_TARGETS.extend(
    [f"results/analyses/diffvae/{d}/{name}" for d in DIFFVAE_DATASETS for name in ("celltypes.png", "perturbation.png")]
    + [f"results/analyses/graph_diffvae/{d}/link_fractions.png" for d in GRAPH_DIFFVAE_DATASETS]
)
ANALYSIS_BENCHMARKS.extend(
    [
        f"results/benchmarks/{rule}/{d}.tsv"
        for rule in ("diffvae_celltypes", "diffvae_perturbation")
        for d in DIFFVAE_DATASETS
    ]
    + [f"results/benchmarks/graph_diffvae_links/{d}.tsv" for d in GRAPH_DIFFVAE_DATASETS]
)
