# Fit one registered method on one dataset with one seed. One train rule per set of declared artifacts
# (most methods: none; neural models: their fitted model), so every file a later rule reads is a
# declared output. Conda env, threads and resources follow the method's contract; torch models get
# the gpu resource.


for _artifacts, _methods in artifact_groups().items():

    rule:
        name:
            train_rule_name(_artifacts)
        input:
            "results/data/{dataset}/preprocessed.h5ad",
        output:
            latent=f"{model_dir()}/latent.npz",
            **{name: f"{model_dir()}/{ARTIFACT_FILES[name]}" for name in _artifacts},
        wildcard_constraints:
            method="|".join(map(re.escape, _methods)),
        params:
            overrides=lambda w: method_overrides(config, w.dataset, w.method),
            latent_dim=config["latent_dim"],
            on_failure=config["on_method_failure"],
            gpu_fallback=config["gpu_fallback"],
        threads: train_threads
        resources:
            gpu=lambda w: config["gpu"] if METHODS[w.method].uses_gpu else 0,
            # only with gpu > 0: the SLURM plugin turns gpu_model + gpu 0 into --gpus=MODEL:0
            gpu_model=lambda w: config["gpu_model"] if METHODS[w.method].uses_gpu and config["gpu"] > 0 else "",
            mem_mb=train_resource("mem_mb"),
            runtime=train_resource("runtime"),
        log:
            "logs/train/{dataset}/{method}/seed{seed}.log",
        benchmark:
            "results/benchmarks/train/{dataset}/{method}/seed{seed}.tsv",
        conda:
            method_conda_env
        script:
            "../../scripts/train.py"
