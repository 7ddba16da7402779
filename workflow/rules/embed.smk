# UMAP and t-SNE of each latent, written with the latent and the cell annotations as one AnnData.


rule embed:
    """The UMAP and t-SNE of one latent, with the latent and the cell annotations, as one AnnData."""
    input:
        latent=f"{model_dir()}/latent.npz",
        data=rules.preprocess.output[0],
    output:
        "results/embeddings/{dataset}/{method}/seed{seed}.h5ad",
    log:
        "logs/embed/{dataset}/{method}/seed{seed}.log",
    benchmark:
        "results/benchmarks/embed/{dataset}/{method}/seed{seed}.tsv"
    conda:
        LIGHT_ENV
    threads: config["threads"]["embed"]
    params:
        options=config["embedding"],
    script:
        "../../scripts/embed.py"
