"""The workflow through `--executor slurm` and the project's SLURM profile, on a real one-node cluster.

The module fixture starts munge, slurmctld and slurmd from the Debian packages (tests/slurm/start_cluster.sh,
no accounting, one fake GPU) and stops exactly those daemons again (tests/slurm/stop_cluster.sh, by their PID
files) whatever the test's outcome. The test runs 200 real pancreas cells through two methods (PCA and a torch
VAE with 3 epochs, GPU-tagged with --config gpu=1; gpu_fallback: true, as the node's GPU is fake) once on SLURM
and once locally with --cores 1, and requires the same latents and metric tables, a GPU request on the training
job only, the logged CPU fallback, and grouped submissions.

Run it with `python -m pytest tests/test_slurm.py -q -m slurm` (root; `apt-get install slurm-wlm munge`).
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from workflow_helpers import REPO, shipped_rows, snakemake, write_config, write_registry

pytestmark = pytest.mark.slurm

HARNESS = REPO / "tests" / "slurm"
PROFILE = REPO / "workflow" / "profiles" / "slurm"
PROGRAMS = ["munged", "munge", "unmunge", "slurmctld", "slurmd", "sbatch", "srun", "squeue", "scontrol", "sinfo",
            "scancel"]
METHODS = ["pca", "vae"]
TARGET = "results/metrics/all.tsv"
HARNESS_MARKER = "# Written by tests/slurm/start_cluster.sh"
# SLURM submissions expected for the two-method study: the plugin logs each under rule_<rule> or
# group_<group>_<rules>; the profile's groups make one of each
SUBMISSIONS = ["group_data", "group_fit_classical", "rule_train_model", "group_score", "group_summary"]
SUBMITTED = re.compile(r"has been submitted with SLURM jobid (\d+) \(log: ([^)]+)\)")


def _which(program: str) -> str | None:
    return shutil.which(program) or shutil.which(program, path="/usr/sbin:/sbin")


def _why_not() -> str | None:
    """Why this machine cannot host the test cluster, or None when it can."""
    missing = [p for p in PROGRAMS if _which(p) is None]
    if missing:
        return (f"SLURM/munge binaries absent ({', '.join(missing)}): apt-get install slurm-wlm munge "
                "(.ci/run does)")
    if os.geteuid() != 0:
        return "the test cluster's daemons must be started as root"
    conf = Path("/etc/slurm/slurm.conf")  # where the harness links its configuration
    if conf.exists() and not (conf.is_symlink() and conf.read_text().startswith(HARNESS_MARKER)):
        return "/etc/slurm/slurm.conf belongs to a real SLURM installation; the test will not replace it"
    try:
        import snakemake_executor_plugin_slurm  # noqa: F401
    except ImportError:
        return "snakemake-executor-plugin-slurm is not installed"
    return None


@pytest.fixture(scope="module")
def slurm_cluster(tmp_path_factory, request):
    """A running single-node cluster (STATE_DIR as value); stopped by PID files in the finalizer."""
    reason = _why_not()
    if reason:
        pytest.skip(reason)
    state = tmp_path_factory.mktemp("slurm")
    # registered before the start, so daemons started by a start that fails halfway are stopped too
    request.addfinalizer(lambda: subprocess.run(["bash", str(HARNESS / "stop_cluster.sh"), str(state)],
                                                capture_output=True, text=True, timeout=120))
    started = subprocess.run(["bash", str(HARNESS / "start_cluster.sh"), str(state)], capture_output=True, text=True,
                             timeout=180, env={**os.environ, "FAKE_GPUS": "1"})
    if started.returncode != 0:
        pytest.fail(f"the test cluster did not start:\n{started.stdout}\n{started.stderr}")
    return state


def _study(workdir: Path) -> Path:
    """Registry and config of the reduced study in ``workdir``: 200 pancreas cells, PCA + a 3-epoch VAE."""
    workdir.mkdir()
    rows = [row for row in shipped_rows(200) if row["dataset"] == "pancreas"]
    registry = write_registry(workdir / "datasets.tsv", rows)
    overrides = dict(
        datasets=str(registry), methods=METHODS, method_params={"vae": {"epochs": 3}},
        # one thread everywhere: the local run (--cores 1) and the SLURM jobs compute the same way
        threads={"train": 1, "embed": 1, "evaluate": 1},
        metrics={"max_cells": 200, "n_clusters": None, "ilisi_subsample_sizes": [100]},
        paper_comparisons=[], comparisons={}, on_method_failure="stop",
        summary={"controls": False},  # the two methods only (the controls are checked in test_workflow.py)
        gpu_fallback=True,  # the node's GPU is a fake GRES: the GPU-tagged training runs on the CPU and says so
    )
    return write_config(workdir, **overrides)


def _run_on_slurm(workdir: Path, config: Path, *args: str, timeout: int) -> subprocess.CompletedProcess:
    """snakemake with the project's SLURM profile, started in ``workdir`` (sbatch -D is the start directory)."""
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
           "--configfile", str(config), "--workflow-profile", str(PROFILE), *args]
    return subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=timeout)


def _job_fields(jobid: str) -> dict[str, str]:
    shown = subprocess.run(["scontrol", "-o", "show", "job", jobid], capture_output=True, text=True, timeout=30)
    assert shown.returncode == 0, shown.stderr
    return dict(item.split("=", 1) for item in shown.stdout.split() if "=" in item)


def test_workflow_on_slurm_equals_local_run(slurm_cluster, tmp_path):
    start = time.monotonic()
    local_dir, slurm_dir = tmp_path / "local", tmp_path / "slurm"
    local_config, slurm_config = _study(local_dir), _study(slurm_dir)

    # the local reference runs meanwhile (one core; the SLURM jobs mostly wait for status rounds)
    with ThreadPoolExecutor(1) as pool:
        local = pool.submit(snakemake, local_dir, local_config, "--cores", "1", TARGET, timeout=900)
        on_slurm = _run_on_slurm(
            slurm_dir, slurm_config, TARGET,  # the target first: --config takes every word after it
            # the node has 2 CPUs; short status rounds (MinJobAge=600 s keeps finished jobs visible to squeue)
            "--cores", "2", "--jobs", "4", "--latency-wait", "10", "--slurm-init-seconds-before-status-checks", "2",
            "--slurm-keep-successful-logs", "--slurm-logdir", str(tmp_path / "slurm_logs"),
            "--config", "gpu=1", timeout=900)
        local = local.result()
    slurm_output = on_slurm.stdout + on_slurm.stderr
    assert local.returncode == 0, local.stderr[-4000:]
    assert on_slurm.returncode == 0, slurm_output[-6000:]

    # --- the same numbers as the local run -------------------------------------------------------------
    for method in METHODS:
        latent_path = f"results/models/pancreas/{method}/seed0/latent.npz"
        with np.load(local_dir / latent_path) as ref, np.load(slurm_dir / latent_path) as got:
            assert sorted(ref.files) == sorted(got.files)
            for key in ref.files:
                assert np.array_equal(ref[key], got[key]), f"{method}: {key} differs between SLURM and local"
        metrics_path = f"results/metrics/pancreas/{method}/seed0.tsv"
        pd.testing.assert_frame_equal(pd.read_csv(slurm_dir / metrics_path, sep="\t"),
                                      pd.read_csv(local_dir / metrics_path, sep="\t"), check_exact=True)
    table = pd.read_csv(slurm_dir / TARGET, sep="\t")
    pd.testing.assert_frame_equal(table, pd.read_csv(local_dir / TARGET, sep="\t"), check_exact=True)
    assert set(table["method"]) == set(METHODS) and (table["status"] == "ok").all()  # not two equal failures

    # --- what reached SLURM -----------------------------------------------------------------------------
    submitted = SUBMITTED.findall(slurm_output)
    kinds: dict[str, list[str]] = {}
    for jobid, log in submitted:
        folder = Path(log).relative_to(tmp_path / "slurm_logs").parts[0]
        kind = next((k for k in SUBMISSIONS if folder == k or folder.startswith(k + "_")), folder)
        kinds.setdefault(kind, []).append(jobid)
    # grouped: one data job, one bundle of classical fits, one training, one embed+evaluate bundle, one summary
    assert {k: len(v) for k, v in kinds.items()} == dict.fromkeys(SUBMISSIONS, 1), submitted
    for kind, jobids in kinds.items():
        for jobid in jobids:
            fields = _job_fields(jobid)
            assert fields["JobState"] == "COMPLETED", (kind, fields)
            tres = fields.get("TresPerJob", "")
            if kind == "rule_train_model":  # the torch method, run with --config gpu=1
                assert "gpu:1" in tres, fields
            else:
                assert "gpu" not in tres, (kind, fields)
    # inside the job the GPU request is seen, CUDA is not (CPU torch, fake GRES): the fallback is logged
    train_log = (slurm_dir / "logs/train/pancreas/vae/seed0.log").read_text()
    assert "1 GPU(s) requested but CUDA is not available" in train_log and "gpu_fallback: true" in train_log
    assert "GPU(s) requested" not in (local_dir / "logs/train/pancreas/vae/seed0.log").read_text()
    print(f"\nSLURM run + local run: {time.monotonic() - start:.0f} s wall, "
          f"{len(submitted)} SLURM submissions for {len(re.findall(r'Finished jobid', slurm_output))} jobs")
