"""Faults through the real snakemake command line: a workflow killed during training resumes from its
checkpoint and ends with exactly the numbers of an uninterrupted run."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from workflow_helpers import REPO, shipped_rows, snakemake, write_config, write_registry

TARGET = "results/models/pancreas/livae/seed0/latent.npz"
EPOCHS = 40


def _config(workdir):
    registry = write_registry(workdir / "datasets.tsv", shipped_rows(300)[:1])
    # a checkpoint after every epoch, no early stop: the kill lands in the middle of training
    return write_config(workdir, datasets=str(registry), methods=["livae"], paper_comparisons=[],
                        method_params={"livae": {"epochs": EPOCHS, "checkpoint_seconds": 0.0, "patience": 0}})


def _checkpoint_epoch(path) -> int:
    try:
        return int(torch.load(path, map_location="cpu", weights_only=True)["epoch"])
    except Exception:  # absent or being replaced
        return 0


@pytest.mark.workflow
def test_killed_training_resumes_from_its_checkpoint_and_matches(tmp_path):
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    straight.mkdir(), killed.mkdir()
    result = snakemake(straight, _config(straight), "--cores", "1", TARGET)
    assert result.returncode == 0, result.stderr[-3000:]

    config = _config(killed)
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(killed),
           "--configfile", str(config), "--cores", "1", TARGET]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    checkpoint = killed / "results/models/pancreas/livae/seed0/checkpoint.pt"
    deadline = time.time() + 300
    while _checkpoint_epoch(checkpoint) < 5 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # the whole workflow, as a power cut or a scheduler would
    proc.wait()
    done = _checkpoint_epoch(checkpoint)
    assert 5 <= done < EPOCHS, f"the kill should land mid-training (checkpoint at epoch {done})"
    assert not (killed / TARGET).exists()

    # what a user does after a kill: release the lock, rerun what was incomplete
    assert snakemake(killed, config, "--unlock").returncode == 0
    result = snakemake(killed, config, "--cores", "1", "--rerun-incomplete", TARGET)
    assert result.returncode == 0, result.stderr[-3000:]
    log = (killed / "logs/train/pancreas/livae/seed0.log").read_text()
    assert "resuming from" in log and f"at epoch {_resumed_epoch(log)}" in log and _resumed_epoch(log) >= done
    with np.load(straight / TARGET) as a, np.load(killed / TARGET) as b:
        np.testing.assert_array_equal(a["X_latent"], b["X_latent"])


def _resumed_epoch(log: str) -> int:
    line = next(line for line in log.splitlines() if "resuming from" in line)
    return int(line.split("at epoch ")[1].split()[0])


@pytest.mark.workflow
def test_gpu_requested_on_a_node_without_one_fails_the_job_in_one_line(tmp_path):
    config = _config(tmp_path)
    result = snakemake(tmp_path, config, "--cores", "1", TARGET, "--config", "gpu=1")  # target before --config
    assert result.returncode != 0
    last = (tmp_path / "logs/train/pancreas/livae/seed0.log").read_text().strip().splitlines()[-1]
    assert "GPU(s) requested but CUDA is not available" in last and "Fix:" in last
    assert not (tmp_path / TARGET).exists()


def test_a_crashed_step_ends_its_log_with_what_failed_and_the_fix(tmp_path):
    from livaebench.runtime import step

    log_path = tmp_path / "logs" / "embed" / "pancreas" / "pca" / "seed0.log"
    with pytest.raises(KeyError):
        with step(log_path):
            raise KeyError("X_umap")
    lines = log_path.read_text().strip().splitlines()
    assert "Traceback" in log_path.read_text()
    assert "embed pancreas/pca/seed0: failed (KeyError: 'X_umap'). Fix:" in lines[-1]
