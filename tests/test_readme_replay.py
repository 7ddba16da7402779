"""The README's quick start, replayed as a new user pastes it: the first block of "## Quick start", line by line
in one fresh bash, in a copy of this checkout under a temporary folder (so its `.venv` is a new virtual
environment there, installing the whole lock).

Three lines may be replaced, each replacement printed: the CPU-torch line by `pip install torch==<locked>` from
the configured package index when PyTorch's index cannot be reached (a CI machine that sees only a package
mirror); the default run by its dry run (`snakemake -n`: the run itself takes 22 minutes); the test suite by a
quick subset (the full suite inside the suite would double CI time)."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
import urllib.request

import pytest

from conftest import REPO
from quickstart import RUN_COMMAND, TEST_COMMAND, quickstart_blocks

pytestmark = pytest.mark.replay

PYTORCH_INDEX = "https://download.pytorch.org/whl/cpu"
QUICK_TESTS = "python -m pytest tests/test_config.py -q"
STEP = re.compile(r"^@@ step (\d+) exit (\d+)$", flags=re.M)


def _reachable(url: str, timeout: float = 5.0) -> bool:
    try:
        urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout)
        return True
    except Exception:  # DNS, refused, timeout, HTTP error: not usable for an install either way
        return False


def _locked_torch() -> str:
    return re.search(r"^torch==(\S+)", (REPO / "envs" / "requirements.lock").read_text(), flags=re.M).group(1)


def replayed_lines(block: list[str], torch_index_reachable: bool) -> tuple[list[str], list[str]]:
    """The block's lines as the replay runs them, and a note for each line it replaced."""
    lines, notes = [], []
    for line in block:
        new = line
        if "--index-url https://download.pytorch.org/" in line and not torch_index_reachable:
            new = f"pip install torch=={_locked_torch()}"
        elif RUN_COMMAND.search(line):
            new = RUN_COMMAND.sub(r"\1snakemake -n", line)
        elif TEST_COMMAND.search(line):
            new = re.sub(r"python -m pytest tests\b.*$", QUICK_TESTS, line)
        if new != line:
            notes.append(f"replay: '{line}' replaced by '{new}'")
        lines.append(new)
    return lines, notes


def test_replacements_keep_the_install_parts():
    block = ["python3 -m venv .venv && . .venv/bin/activate",
             f"pip install torch==2.13.0 --index-url {PYTORCH_INDEX}",
             "pip install -c envs/requirements.lock -e . && snakemake --cores 2",
             'pip install -c envs/requirements.lock -e ".[test]" && python -m pytest tests -q -n auto --dist loadfile']
    lines, notes = replayed_lines(block, torch_index_reachable=False)
    assert lines == [block[0], f"pip install torch=={_locked_torch()}",
                     "pip install -c envs/requirements.lock -e . && snakemake -n",
                     f'pip install -c envs/requirements.lock -e ".[test]" && {QUICK_TESTS}']
    assert len(notes) == 3
    assert replayed_lines(block, torch_index_reachable=True)[0][1] == block[1]


def _copy_checkout(dest):
    """The files of this checkout a clone would have (tracked, plus new files git does not ignore); without git
    (an unpacked archive), the tree less what a run or an install makes."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, capture_output=True)
    if listed.returncode != 0:
        shutil.copytree(REPO, dest, ignore=shutil.ignore_patterns(
            ".git", ".venv", ".snakemake", "results", "logs", "__pycache__", "*.egg-info", ".pytest_cache"))
        return
    files = listed.stdout.decode().split("\0")
    for name in filter(None, files):
        src = REPO / name
        if src.is_file():  # a file deleted in the work tree but still tracked is not copied
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)


def _new_shell_env() -> dict[str, str]:
    """This process's environment less what the test session set up (its virtualenv, PYTHONPATH of the
    workflow library, pytest's variables); the package-index settings (PIP_*) stay."""
    drop = ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "PYTEST_", "CONDA_PREFIX")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    if os.environ.get("VIRTUAL_ENV"):
        env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep)
                                      if not p.startswith(os.environ["VIRTUAL_ENV"]))
    return env


def test_readme_quickstart_replays_in_a_fresh_venv(tmp_path):
    block = quickstart_blocks()[0]
    reachable = _reachable(PYTORCH_INDEX)
    lines, notes = replayed_lines(block, reachable)
    if not reachable:
        notes.insert(0, f"replay: {PYTORCH_INDEX} cannot be reached (5 s HEAD request)")
    for note in notes:
        print(note)
    work = tmp_path / "livaebench"
    _copy_checkout(work)

    # one shell for the whole block (the venv's activation carries over); stop at the first failing line
    script = "".join(f"{{ {line}\n}}; rc=$?; echo \"@@ step {i} exit $rc\"; [ $rc -eq 0 ] || exit $rc\n"
                     for i, line in enumerate(lines))
    started = time.monotonic()
    # PIP_NO_COMPILE: pip skips byte-compiling the ~2 GB it installs (a third of the replay's time on 2 cores);
    # Python compiles what the replay then imports, so what the block installs and runs is unchanged
    proc = subprocess.run(["bash", "--noprofile", "--norc", "-c", script], cwd=work,
                          env={**_new_shell_env(), "PIP_NO_COMPILE": "1"}, capture_output=True, text=True, timeout=3600)
    print(f"replay: {len(lines)} lines in {time.monotonic() - started:.0f} s")
    output = proc.stdout + proc.stderr
    steps = {int(i): int(rc) for i, rc in STEP.findall(proc.stdout)}
    for i, line in enumerate(lines):
        assert i in steps, f"line {i + 1} never ran: '{line}'\n{output[-5000:]}"
        assert steps[i] == 0, f"line {i + 1} '{line}' exited {steps[i]}\n{output[-5000:]}"

    venv_python = work / ".venv" / "bin" / "python"
    assert venv_python.exists(), "the block made no .venv"
    # the venv runs the locked torch release, installed in the venv itself (not borrowed from this interpreter)
    probe = subprocess.run([str(venv_python), "-c", "import torch, sys; print(torch.__version__, torch.__file__)"],
                           capture_output=True, text=True, env=_new_shell_env(), check=True).stdout.split()
    assert probe[0].split("+")[0] == _locked_torch()
    assert probe[1].startswith(str(work / ".venv")), probe
    assert re.search(r"\d+ passed", proc.stdout), proc.stdout[-2000:]  # the quick tests ran and passed
    assert "This was a dry-run" in output and re.search(r"^total +\d+$", output, flags=re.M)  # the default plan
