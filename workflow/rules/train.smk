# Fit one registered method on one dataset with one seed. One train rule per set of declared artifacts
# (most methods: none; neural models: their fitted model), so every file a later rule reads is a
# declared output. Conda env, threads and resources follow the method's contract; torch models get
# the gpu resource.


for _artifacts, _methods in artifact_groups().items():

    rule:
        """Fit one method on one dataset with one seed: its latent (latent.npz) and declared artifacts."""
        name:
            train_rule_name(_artifacts)
        input:
            "results/data/{dataset}/preprocessed.h5ad",
        output:
            **{name: f"{model_dir()}/{ARTIFACT_FILES[name]}" for name in _artifacts},
            latent=f"{model_dir()}/latent.npz",
        log:
            "logs/train/{dataset}/{method}/seed{seed}.log",
        benchmark:  # under the rule's own name: results/benchmarks/rules.tsv reports each train rule apart
            f"results/benchmarks/{train_rule_name(_artifacts)}/{{dataset}}/{{method}}/seed{{seed}}.tsv"
        wildcard_constraints:
            method="|".join(map(re.escape, _methods)),
        # trainings first: the long neural ones are the critical path on many cores; on 2 cores the default
        # run's last training now ends at 432 s of 675 instead of at 632 s, so short jobs fill its end
        priority: 1
        conda:
            method_conda_env
        threads: train_threads
        resources:
            gpu=lambda w: config["gpu"] if METHODS[w.method].uses_gpu else 0,
            # only with gpu > 0: the SLURM plugin turns gpu_model + gpu 0 into --gpus=MODEL:0
            gpu_model=lambda w: config["gpu_model"] if METHODS[w.method].uses_gpu and config["gpu"] > 0 else "",
            mem_mb=train_resource("mem_mb"),
            runtime=train_resource("runtime"),
        params:
            overrides=lambda w: method_overrides(config, w.dataset, w.method),
            latent_dim=config["latent_dim"],
            on_failure=config["on_method_failure"],
            gpu_fallback=config["gpu_fallback"],
        script:
            "../../scripts/train.py"
