"""Regenerate the project's one lock of resolved versions and the conda env that installs it.

    python envs/lock.py          # needs pip-tools (pip install pip-tools) and access to PyPI

1. ``pip-compile`` resolves ``pyproject.toml`` with the ``test`` extra into ``envs/requirements.lock``
   (every package, transitive ones included, pinned with ``==``). torch is pinned to the CPU build's
   version without its local tag (``2.13.0``, not ``2.13.0+cpu``) so that a CUDA build of the same
   release satisfies the lock on a GPU machine.
2. The conda envs of the rules under ``snakemake --sdm conda`` are rewritten, each installing through pip the
   lock's pins of what it needs (the lock's ``# via`` lines give each package's dependants, so an env is the
   closure of its roots in the lock), nested from small to large:

   * ``light.yaml``: data, embeddings, metrics, statistics, figures, the site, the classical methods: every
     runtime dependency but torch and the baselines' own packages (no torch).
   * ``train-cpu.yaml`` / ``train-cuda.yaml``: light + torch, the CPU build (from PyTorch's CPU index, no
     ``nvidia-*`` wheels) or the CUDA 13 build with the lock's ``nvidia-*`` pins.
   * ``train-extra-cpu.yaml`` / ``train-extra-cuda.yaml``: train + scvi-tools, scTour and torch-geometric.

   None has the test extras (pytest, scib-metrics, jax) or the SLURM plugin (the host's); each has snakemake,
   whose objects a ``script:`` job unpickles. Which rule uses which: ``livaebench.software_envs``.

The README's commands and CI install with ``pip install -c envs/requirements.lock ...``; the tests in
``tests/test_envs.py`` check that the three files agree with each other and with pyproject.toml.
"""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ENVS = Path(__file__).resolve().parent
REPO = ENVS.parent
LOCK = ENVS / "requirements.lock"
TORCH_VERSION = "2.13.0"  # the release CI installs first (a local CPU build here)
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"

# what the job envs leave out of pyproject's dependencies, and what each larger env adds
HOST_ONLY = {"snakemake-executor-plugin-slurm"}  # snakemake's own process submits and polls, never a job
TORCH = {"torch"}
EXTRA = {"scvi-tools", "sctour", "torch-geometric"}  # the baselines that need more than torch
CUDA_ONLY = re.compile(r"^(nvidia-|cuda-|triton$)")  # the CUDA build's wheels (dependencies of torch)

PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


def lock_pins(text: str) -> dict[str, str]:
    """``name -> version`` of every ``name==version`` line of a pip-compile lock."""
    pins = {}
    for line in text.splitlines():
        match = PIN.match(line.strip())
        if match:
            pins[match.group(1)] = match.group(2)
    return pins


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def lock_dependants(text: str) -> dict[str, set[str]]:
    """``name -> the packages that need it`` from the ``# via`` lines of a pip-compile lock (canonical names;
    ``livaebench`` for pyproject.toml)."""
    dependants, current, in_via = {}, None, False
    for line in text.splitlines():
        match = PIN.match(line.strip())
        if match and not line.startswith(" "):
            current, in_via = canonical(match.group(1)), False
            dependants[current] = set()
            continue
        comment = line.strip().removeprefix("#").strip()
        if current is None or not line.startswith("    #"):
            continue
        if comment.startswith("via"):
            in_via = True
            comment = comment.removeprefix("via").strip()
        if in_via and comment:
            dependants[current].add(canonical(comment.split(" (")[0]))
    return dependants


def closure(roots: set[str], dependants: dict[str, set[str]]) -> set[str]:
    """The roots and everything they need, by the lock's resolution."""
    needs = {}
    for name, parents in dependants.items():
        for parent in parents:
            needs.setdefault(parent, set()).add(name)
    found, todo = set(), [canonical(r) for r in roots]
    while todo:
        name = todo.pop()
        if name not in found:
            found.add(name)
            todo += needs.get(name, ())
    return found


def env_packages(dependencies: list[str], dependants: dict[str, set[str]]) -> dict[str, set[str]]:
    """env name (without variant) -> its packages (canonical names), CUDA wheels included."""
    roots = {canonical(re.split(r"[\s\[<>=!~;]", d, maxsplit=1)[0]) for d in dependencies}
    light = roots - HOST_ONLY - TORCH - EXTRA
    envs = {"light": closure(light, dependants), "train": closure(light | TORCH, dependants),
            "train-extra": closure(light | TORCH | EXTRA, dependants)}
    assert not envs["light"] & TORCH, "a light dependency pulls torch"
    return envs


def conda_env(name: str, packages: set[str], pins: dict[str, str], variant: str | None, python: str) -> str:
    """One env file: Python, pip, and the lock's pins of its packages (CPU variant: torch's CPU build)."""
    pins = {canonical(k): v for k, v in pins.items()}
    chosen = sorted(p for p in packages if variant != "cpu" or not CUDA_ONLY.match(p))
    title = f"{name}-{variant}" if variant else name
    lines = [
        f"# {title}: a rule env for `snakemake --sdm conda`. GENERATED by envs/lock.py from envs/requirements.lock",
        "# (do not edit by hand): the lock's pins of what the rules that name it need (livaebench.software_envs).",
        f"name: livaebench-{title}",
        "channels:",
        "  - conda-forge",
        "  - nodefaults",
        "dependencies:",
        f"  - python={python}",
        "  - pip",
        "  - pip:",
    ]
    if variant == "cpu":
        lines.append(f"      - --extra-index-url {TORCH_CPU_INDEX}")
    for package in chosen:
        version = pins[package] + ("+cpu" if package == "torch" and variant == "cpu" else "")
        lines.append(f"      - {package}=={version}")
    return "\n".join(lines) + "\n"


def env_texts(text: str) -> dict[str, str]:
    """file name under envs/ -> its content, for every rule env, from the lock's text."""
    import tomllib

    dependencies = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    pins, texts = lock_pins(text), {}
    # the Python the lock was resolved with (its header), whatever interpreter runs this
    python = re.search(r"autogenerated by pip-compile with Python (\d+\.\d+)", text).group(1)
    for name, packages in env_packages(dependencies, lock_dependants(text)).items():
        for variant in ([None] if name == "light" else ["cpu", "cuda"]):
            texts[f"{name}{'-' + variant if variant else ''}.yaml"] = conda_env(name, packages, pins, variant, python)
    return texts


def write_envs(text: str) -> list[Path]:
    """Every rule env from the lock text; the files written."""
    written = []
    for name, content in env_texts(text).items():
        (ENVS / name).write_text(content)
        written.append(ENVS / name)
    return written


def main() -> None:
    subprocess.run(
        [sys.executable, "-m", "piptools", "compile", "--quiet", "--extra", "test", "--strip-extras",
         "--no-emit-index-url", "--no-emit-find-links", "--no-emit-trusted-host", "--newline", "LF",
         "--output-file", str(LOCK.relative_to(REPO)), "pyproject.toml"],
        cwd=REPO, check=True)
    text = LOCK.read_text()
    # a local CPU wheel resolves as 2.13.0+cpu: pin the release so any build of it satisfies the lock
    text = re.sub(r"^torch==\S+", f"torch=={TORCH_VERSION}", text, flags=re.M)
    LOCK.write_text(text)
    envs = write_envs(text)
    print(f"wrote {LOCK.relative_to(REPO)} ({len(lock_pins(text))} pins) and "
          f"{', '.join(str(p.relative_to(REPO)) for p in envs)}")


if __name__ == "__main__":
    main()
