# Analyses of DiffVAE and Graph-DiffVAE models (docs/methods.md §6.2-6.3). The models are the registered
# methods `diffvae` and `graph_diffvae`, trained by the train rule (so their latents also go through the
# metric panel); these rules read their model.pt. Outputs: results/analyses/{diffvae,graph_diffvae}/{dataset}/.
#   diffvae_celltypes     K-means of μ on its t-SNE, extreme cells per dimension, marker dimensions, high-weight genes
#   diffvae_perturbation  shift source cells along the target's marker dimensions, decode, classify
#   graph_diffvae_links   predicted links, node embedding, link fractions between cell types (input vs predicted)

DIFFVAE = analysis_settings("diffvae")
DIFFVAE_DATASETS = list(DIFFVAE.get("datasets", []))
GRAPH_DIFFVAE_DATASETS = list(DIFFVAE.get("graph_datasets", []))
DIFFVAE_SEED = DIFFVAE.get("seed") if DIFFVAE.get("seed") is not None else config["seeds"][0]
DIFFVAE_OUT = "results/analyses/diffvae/{dataset}"
GRAPH_DIFFVAE_OUT = "results/analyses/graph_diffvae/{dataset}"


def _check_diffvae_config():
    """One-line errors while the workflow is planned: unknown datasets, methods not configured, no pair."""
    for key, method, datasets in (("datasets", "diffvae", DIFFVAE_DATASETS),
                                  ("graph_datasets", "graph_diffvae", GRAPH_DIFFVAE_DATASETS)):
        where = f"config: key 'analyses.diffvae.{key}'"
        unknown = [d for d in datasets if d not in DATASETS.index]
        if unknown:
            raise WorkflowError(f"{where}: '{unknown[0]}' is not in the dataset registry. "
                                f"Fix: use one of: {', '.join(DATASETS.index)}")
        if datasets and method not in METHODS:
            raise WorkflowError(f"{where}: the analysis needs the method '{method}', which is not in methods. "
                                f"Fix: add {method} to methods (e.g. --config 'methods=[...,{method}]') "
                                f"or empty analyses.diffvae.{key}")
        other = [d for d in datasets if method not in methods_for(d)]
        if other:
            raise WorkflowError(f"{where}: method '{method}' does not run on dataset '{other[0]}' (modality "
                                f"{DATASETS.loc[other[0], 'modality']}). Fix: remove the dataset")
    if (DIFFVAE_DATASETS or GRAPH_DIFFVAE_DATASETS) and DIFFVAE_SEED not in config["seeds"]:
        raise WorkflowError(f"config: key 'analyses.diffvae.seed': {DIFFVAE_SEED} is not among seeds. "
                            f"Fix: use one of {config['seeds']}")
    pert = DIFFVAE.get("perturbation", {})
    if DIFFVAE_DATASETS and not (pert.get("source") and pert.get("target")):
        raise WorkflowError("config: key 'analyses.diffvae.perturbation': source and target cell types are not set. "
                            "Fix: name them, e.g. {source: Pre-endocrine, target: Beta}")


_check_diffvae_config()


def diffvae_path(name):
    return f"{DIFFVAE_OUT}/{name}"


def graph_diffvae_path(name):
    return f"{GRAPH_DIFFVAE_OUT}/{name}"


def diffvae_report(name, caption, out=diffvae_path, category="DiffVAE"):
    return report(out(name), caption=f"../report/{caption}.rst", category=category, subcategory="{dataset}")


rule diffvae_celltypes:
    input:
        model=model_dir(method="diffvae", seed=DIFFVAE_SEED) + "/model.pt",
        latent=model_dir(method="diffvae", seed=DIFFVAE_SEED) + "/latent.npz",
        embedding=embedding_path("{dataset}", "diffvae", DIFFVAE_SEED),
        data="results/data/{dataset}/preprocessed.h5ad",
    output:
        clusters=diffvae_path("clusters.tsv"),
        shares=diffvae_path("dimension_shares.tsv"),
        markers=diffvae_path("marker_dimensions.tsv"),
        genes=diffvae_path("high_weight_genes.tsv"),
        png=diffvae_report("celltypes.png", "diffvae_celltypes"),
        pdf=diffvae_path("celltypes.pdf"),
    params:
        seed=DIFFVAE_SEED,
        n_clusters=DIFFVAE.get("n_clusters"),
        n_dims=DIFFVAE.get("n_dims", 5),
        n_genes=DIFFVAE.get("n_genes", 10),
    log:
        "logs/diffvae/{dataset}/celltypes.log",
    benchmark:
        "results/benchmarks/diffvae_celltypes/{dataset}.tsv"
    conda:
        CONDA_ENV
    script:
        "../../scripts/diffvae_celltypes.py"


rule diffvae_perturbation:
    input:
        model=model_dir(method="diffvae", seed=DIFFVAE_SEED) + "/model.pt",
        latent=model_dir(method="diffvae", seed=DIFFVAE_SEED) + "/latent.npz",
        embedding=embedding_path("{dataset}", "diffvae", DIFFVAE_SEED),
        data="results/data/{dataset}/preprocessed.h5ad",
        clusters=rules.diffvae_celltypes.output.clusters,
        markers=rules.diffvae_celltypes.output.markers,
    output:
        conversions=diffvae_path("perturbation.tsv"),
        genes=diffvae_path("perturbation_genes.tsv"),
        png=diffvae_report("perturbation.png", "diffvae_perturbation"),
        pdf=diffvae_path("perturbation.pdf"),
    params:
        seed=DIFFVAE_SEED,
        n_dims=DIFFVAE.get("n_dims", 5),
        perturbation=DIFFVAE.get("perturbation", {}),
    log:
        "logs/diffvae/{dataset}/perturbation.log",
    benchmark:
        "results/benchmarks/diffvae_perturbation/{dataset}.tsv"
    conda:
        CONDA_ENV
    script:
        "../../scripts/diffvae_perturbation.py"


rule graph_diffvae_links:
    input:
        model=model_dir(method="graph_diffvae", seed=DIFFVAE_SEED) + "/model.pt",
        data="results/data/{dataset}/preprocessed.h5ad",
    output:
        predicted=graph_diffvae_path("predicted_links.npz"),
        input_links=graph_diffvae_path("input_links.npz"),
        embedding=graph_diffvae_path("node_embedding.npz"),
        fractions=graph_diffvae_path("link_fractions.tsv"),
        summary=graph_diffvae_path("link_summary.tsv"),
        png=diffvae_report("link_fractions.png", "graph_diffvae_links", graph_diffvae_path, "Graph-DiffVAE"),
        pdf=graph_diffvae_path("link_fractions.pdf"),
    params:
        k=DIFFVAE.get("graph", {}).get("k", 10),
    log:
        "logs/graph_diffvae/{dataset}/links.log",
    benchmark:
        "results/benchmarks/graph_diffvae_links/{dataset}.tsv"
    conda:
        CONDA_ENV
    script:
        "../../scripts/diffvae_graph.py"


ANALYSIS_TARGETS.extend(
    expand(diffvae_path("{name}"), dataset=DIFFVAE_DATASETS, name=["celltypes.png", "perturbation.png"])
    + expand(graph_diffvae_path("link_fractions.png"), dataset=GRAPH_DIFFVAE_DATASETS)
)
ANALYSIS_BENCHMARKS.extend(
    expand("results/benchmarks/{rule}/{dataset}.tsv", rule=["diffvae_celltypes", "diffvae_perturbation"],
           dataset=DIFFVAE_DATASETS)
    + expand("results/benchmarks/graph_diffvae_links/{dataset}.tsv", dataset=GRAPH_DIFFVAE_DATASETS)
)
