"""Where one LiVAE training step and one epoch spend their time (pancreas, the setting of train_throughput.py).

The project's preprocessing of resources/pancreas.h5ad, LiVAE at its defaults (NB, latent 10, bottleneck 2,
hidden 128, λ 10), batch 128, 85 % training cells, Adam with gradient clipping, ``--threads`` torch threads.

* **Step**: the engine's minibatch step (``training.train``) taken apart into timed pieces: data slicing,
  forward (encoder, sampling, bottleneck, KL), decoder, the likelihood's rate part and count part, the
  Lorentz term, the loss sum and bookkeeping, backward, gradient clipping, optimizer. The pieces are the
  model's own functions called in ``LiVAE.loss_terms``' order; before timing, the script checks that they
  give bit for bit the terms of ``loss_terms`` (so the table measures the code that trains).
* **Epoch**: the steps, the validation pass (``training._validate``), the log line and the checkpoint
  (``_append_log``, ``_atomic_save``, made every ``checkpoint_seconds`` = 60 s in the default run, so
  once per ~100 epochs on pancreas), and, once per training, the checkpoint fingerprint; the last column
  compares their sum with the epoch time ``training.train`` itself logs.
* ``--ops``: torch.profiler's table of the operators with the most self CPU time over the timed steps.

    python benchmarks/profile_training.py [--threads 2] [--steps 200] [--epochs 6] [--ops]

Times are medians of wall-clock per step (perf_counter, no profiler attached: its overhead per operator
would inflate the Python-heavy pieces); run it on a quiet machine. Not part of the test suite.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "resources" / "pancreas.h5ad"
TRAIN_FRAC = 0.85


def _limit_threads(threads: int) -> None:
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ[var] = str(threads)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=200, help="timed steps (after 20 warm-up steps)")
    parser.add_argument("--epochs", type=int, default=6, help="epochs of the real engine run (first is warm-up)")
    parser.add_argument("--ops", action="store_true", help="also print torch.profiler's operator table")
    args = parser.parse_args()
    _limit_threads(args.threads)

    import anndata as ad
    import torch

    from livaebench import training
    from livaebench.data.preprocess import preprocess
    from livaebench.models import lorentz
    from livaebench.models.livae import LiVAE, LiVAEConfig, count_tensors
    from livaebench.models.regularizers import gaussian_kl

    prep = preprocess(ad.read_h5ad(DATA), dataset="pancreas", modality="rna", label_key="clusters")
    data, cap = count_tensors(prep, "pancreas")
    cfg = training.TrainConfig(epochs=args.epochs, batch_size=128, val_frac=1 - TRAIN_FRAC, patience=0)
    print(f"pancreas: {prep.n_obs} cells x {prep.n_vars} genes, {args.threads} torch threads, batch 128, "
          f"torch {torch.__version__}", flush=True)

    with training.torch_runtime(args.threads, seed=0):
        model = LiVAE(LiVAEConfig(n_input=prep.n_vars, count_cap=cap))
        c = model.config
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = training._make_optimizer(params, cfg)
        n = prep.n_obs
        order = torch.randperm(n, generator=torch.Generator().manual_seed(1))
        n_val = int(round(cfg.val_frac * n))
        val_idx, train_idx = order[:n_val], order[n_val:]
        n_batches = -(-train_idx.numel() // 128)
        gen = torch.Generator().manual_seed(2)
        chunks: list = []

        def next_idx():
            if not chunks:
                chunks.extend(torch.tensor_split(train_idx[torch.randperm(train_idx.numel(), generator=gen)],
                                                 n_batches))
            return chunks.pop(0)

        def pieces(batch, t):
            """LiVAE.loss_terms for the default configuration, one timed piece at a time."""
            t("forward")
            mu, logvar = model.encode(batch["x"])
            std = torch.exp(0.5 * logvar)
            z = mu + std * torch.randn_like(std)
            ld = model.bn_decode(model.bn_encode(z))
            kl = gaussian_kl(mu, logvar).mean()
            t("decoder")
            counts = batch["counts"]
            h = torch.cat([z, ld]).view(2, counts.shape[0], -1)
            log_mu, log_theta, pi_logits = model.decode_params(h, batch["log_lib"])
            t("likelihood: rate part")
            rate = model.likelihood.rate_rowsum(counts, log_mu, log_theta, pi_logits)
            t("likelihood: count part")
            count = model.likelihood.count_total(batch, log_theta, c.count_cap)
            nll = -(rate.mean(-1) + count / counts.shape[0])
            t("Lorentz term")
            geo = lorentz.squared_distance_loss(z, ld, c.max_tangent_norm)
            return {"nll_main": nll[0], "nll_bn": nll[1], "kl": kl, "geo": geo}

        # the pieces must be the model's loss, bit for bit (else the table would time other code)
        batch = {k: v.index_select(0, next_idx()) for k, v in data.items()}
        state = torch.get_rng_state()
        want = model.loss_terms(batch)
        torch.set_rng_state(state)
        got = pieces(batch, lambda name: None)
        if list(got) != list(want) or not all(torch.equal(got[k], want[k]) for k in want):
            sys.exit("profile_training: the timed pieces no longer reproduce LiVAE.loss_terms; update pieces()")

        times: dict[str, list[float]] = {}
        # the engine's own loss sum (older versions of the engine: the plain weighted sum)
        weighted_total = getattr(training, "_weighted_total", None) or (
            lambda terms, weights: sum(weights.get(k, 1.0) * v for k, v in terms.items()))

        def step(record: bool):
            marks: list[tuple[str, float]] = []

            def t(name):
                marks.append((name, time.perf_counter()))

            t("data slicing")
            idx = next_idx()
            batch = {k: v.index_select(0, idx) for k, v in data.items()}
            model.on_step(0)
            terms = pieces(batch, t)
            t("loss sum + bookkeeping")
            total = weighted_total(terms, model.loss_weights)
            kept = torch.stack([v.detach() for v in terms.values()] + [total.detach()])
            t("backward")
            optimizer.zero_grad(set_to_none=True)
            total.backward()
            t("gradient clipping")
            torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip, foreach=True)
            t("optimizer")
            optimizer.step()
            t("end")
            if record:
                for (name, t0), (_, t1) in zip(marks, marks[1:]):
                    times.setdefault(name, []).append(t1 - t0)
                times.setdefault("whole step", []).append(marks[-1][1] - marks[0][1])
            return kept

        for _ in range(20):
            step(False)
        prof = None
        if args.ops:
            from torch.profiler import ProfilerActivity, profile
            prof = profile(activities=[ProfilerActivity.CPU])
            prof.__enter__()
        for _ in range(args.steps):
            step(True)
        if prof is not None:
            prof.__exit__(None, None, None)

        step_ms = {k: 1e3 * statistics.median(v) for k, v in times.items()}
        whole = step_ms.pop("whole step")

        # --- per-epoch pieces
        val_seed = training.derive_seed(0, 3)

        def timed(fn, reps):
            out = []
            for _ in range(reps):
                t0 = time.perf_counter()
                fn()
                out.append(time.perf_counter() - t0)
            return 1e3 * statistics.median(out)

        val_ms = timed(lambda: training._validate(model, data, val_idx, 128, torch.device("cpu"), val_seed), 7)
        with tempfile.TemporaryDirectory() as tmp:
            row = {"epoch": 1, "nll_main": 1.0, "nll_bn": 1.0, "kl": 1.0, "geo": 1.0, "loss": 1.0,
                   "val_loss": 1.0, "seconds": 1.0}
            log_path = Path(tmp) / "train_log.tsv"
            log_ms = timed(lambda: training._append_log(log_path, row, header=False), 7)
            state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                     "best_state": {k: v.detach().clone() for k, v in model.state_dict().items()},
                     "history": [row] * 400, "rng": training._rng_state(torch.device("cpu"), gen)}
            ckpt_ms = timed(lambda: training._atomic_save(state, Path(tmp) / "checkpoint.pt"), 5)
            fp_ms = timed(lambda: training._fingerprint(cfg, 0, data, model.describe()), 3)

            # --- the real engine, for the epoch time it logs
            fresh = LiVAE(LiVAEConfig(n_input=prep.n_vars, count_cap=cap))
            res = training.train(fresh, data, cfg, seed=0, outdir=Path(tmp) / "run", progress=False)
            epoch_s = [r["seconds"] for r in res.history][1:] or [res.history[0]["seconds"]]
            engine_epoch_ms = 1e3 * statistics.median(epoch_s)
            n_train = res.n_train

    steps_ms = whole * n_batches
    rows = [(name, ms, ms * n_batches) for name, ms in step_ms.items()]
    rows.append(("validation pass", None, val_ms))
    rows.append(("log line", None, log_ms))
    epoch_sum = steps_ms + val_ms + log_ms
    print(f"\nOne step = 128 cells; one epoch = {n_batches} steps + validation of {n_val} cells "
          f"({n_train} training cells)")
    print(f"{'piece':<26}{'ms/step':>10}{'ms/epoch':>11}{'% epoch':>9}")
    for name, per_step, per_epoch in rows:
        ps = f"{per_step:10.3f}" if per_step is not None else f"{'':>10}"
        print(f"{name:<26}{ps}{per_epoch:11.1f}{100 * per_epoch / epoch_sum:9.1f}")
    print(f"{'sum':<26}{whole:10.3f}{epoch_sum:11.1f}{100.0:9.1f}")
    print(f"engine's logged epoch time (median of epochs 2-{args.epochs}): {engine_epoch_ms:.1f} ms "
          f"= {n_train / engine_epoch_ms * 1e3:.0f} training cells/s")
    print(f"checkpoint save: {ckpt_ms:.1f} ms (every 60 s and at the end); "
          f"checkpoint fingerprint: {fp_ms:.1f} ms (once per training)")
    if prof is not None:
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=20))


if __name__ == "__main__":
    main()
