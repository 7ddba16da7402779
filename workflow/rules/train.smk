# Fit one registered method on one dataset with one seed. Torch models get the gpu resource.


rule train:
    input:
        rules.preprocess.output,
    output:
        "results/models/{dataset}/{method}/seed{seed}/latent.npz",
    params:
        overrides=lambda w: config["method_params"].get(w.method, {}),
        latent_dim=config["latent_dim"],
    threads: config["threads"]["train"]
    resources:
        gpu=lambda w: config["gpu"] if METHODS[w.method].uses_gpu else 0,
    log:
        "logs/train/{dataset}/{method}/seed{seed}.log",
    conda:
        CONDA_ENV
    script:
        "../../scripts/train.py"
