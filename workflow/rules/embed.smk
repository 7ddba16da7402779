# UMAP and t-SNE of each latent, written with the latent and the cell annotations as one AnnData.


rule embed:
    input:
        latent=f"{model_dir()}/latent.npz",
        data=rules.preprocess.output[0],
    output:
        "results/embeddings/{dataset}/{method}/seed{seed}.h5ad",
    params:
        options=config["embedding"],
    threads: config["threads"]["embed"]
    log:
        "logs/embed/{dataset}/{method}/seed{seed}.log",
    benchmark:
        "results/benchmarks/embed/{dataset}/{method}/seed{seed}.tsv",
    conda:
        CONDA_ENV
    script:
        "../../scripts/embed.py"
