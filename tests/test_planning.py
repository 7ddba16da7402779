"""Planning needs only the host's dependencies (pyproject.toml's `host` extra), and the job counts the docs
state are the plan's.

The whole study (config/paper.yaml) is planned by the real snakemake CLI under `python -X importtime`, which
lists every module the process imports: once in this environment (an import audit: no heavy package is
imported, and the library modules the Snakefile imports need nothing outside the host list at module level),
and once in a new virtual environment holding only pyproject's `host` extra, installed from the lock
(marked `replay`, as it installs: the real proof that a lean host plans the study).
"""
from __future__ import annotations

import ast
import importlib.metadata
import re
import subprocess
import sys
import tomllib
import venv

import pytest
from packaging.requirements import Requirement

from conftest import REPO

LIB = REPO / "workflow" / "lib"
# the packages a host must not need: the jobs' stack
HEAVY = ("torch", "scanpy", "anndata", "matplotlib", "seaborn", "scipy", "sklearn", "statsmodels", "umap",
         "numba", "h5py", "gseapy", "openTSNE", "scvi", "sctour", "torch_geometric", "lightning", "jax", "igraph",
         "leidenalg")
PLAN = ["-m", "snakemake", "--configfile", "config/paper.yaml", "-n", "--forceall", "--quiet", "rules"]
# where the docs state the study's size, in the words the test reads
STATED = [REPO / "README.md", REPO / "workflow" / "profiles" / "slurm" / "config.yaml"]
SIZE = re.compile(r"config/paper\.yaml \((\d+) datasets\) plans ([\d,]+) jobs, ([\d,]+) of them trainings")


@pytest.fixture(scope="module")
def study_plan():
    return _plan_output(subprocess.run([sys.executable, "-X", "importtime", *PLAN], cwd=REPO, capture_output=True,
                                       text=True, timeout=300))


@pytest.mark.workflow
def test_planning_the_study_imports_no_heavy_package(study_plan):
    imported, counts = study_plan
    assert counts["total"] > 1000 and "livaebench.config" in imported  # the study was planned, by this process
    heavy = sorted({m for m in imported if m.split(".")[0] in HEAVY})
    assert heavy == [], f"planning imported {heavy[:10]}: move those imports into the functions or scripts"


def _plan_output(result) -> tuple[list[str], dict[str, int]]:
    """The modules a `python -X importtime` plan imported, and its job counts per rule."""
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    imported = [line.rsplit("|", 1)[1].strip() for line in result.stderr.splitlines()
                if line.startswith("import time:") and "|" in line]
    counts = {rule: int(n) for rule, n in re.findall(r"^(\w+)\s+(\d+)\s*$", result.stdout, re.M)}
    return imported, counts


@pytest.mark.replay
def test_a_venv_with_only_the_host_packages_plans_the_study(tmp_path):
    """A new venv (no system packages) with just the `host` extra, pinned by the lock, plans config/paper.yaml
    with the checkout's library on the Snakefile's own path; nothing heavy is installed, so nothing heavy can be
    imported."""
    host = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]["host"]
    env = tmp_path / "host-venv"
    venv.create(env, with_pip=True)
    python = str(env / "bin" / "python")
    install = subprocess.run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
                              "-c", str(REPO / "envs" / "requirements.lock"), *host],
                             capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stderr[-2000:]
    listed = subprocess.run([python, "-m", "pip", "list", "--format=freeze"], capture_output=True, text=True).stdout
    installed = {line.split("==")[0].lower().replace("_", "-") for line in listed.split()}
    assert not installed & {h.lower() for h in HEAVY}, "the host extra pulled in a job package"
    imported, counts = _plan_output(subprocess.run([python, "-X", "importtime", *PLAN], cwd=REPO, capture_output=True,
                                                   text=True, timeout=300))
    assert counts["total"] > 1000 and "livaebench.config" in imported
    assert sorted({m for m in imported if m.split(".")[0] in HEAVY}) == []


def _names(specs) -> set[str]:
    return {re.sub(r"[-_.]+", "-", Requirement(spec).name).lower() for spec in specs}


def _host_imports() -> set[str]:
    """The top-level import names of the host extra's distributions."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    host = _names(project["optional-dependencies"]["host"])
    assert host <= _names(project["dependencies"]), "a host package must also be a dependency (the lock pins it)"
    return {name for name, dists in importlib.metadata.packages_distributions().items()
            if any(re.sub(r"[-_.]+", "-", d).lower() in host for d in dists)}


def _module_level_imports(path) -> set[str]:
    """Top-level package names a module imports when it is imported (not those inside functions or
    TYPE_CHECKING blocks); relative imports are the library's own."""
    names: set[str] = set()

    def visit(body):
        for node in body:
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names.add(node.module.split(".")[0])
            elif isinstance(node, ast.If) and "TYPE_CHECKING" not in ast.unparse(node.test):
                visit(node.body), visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body), visit(node.orelse), visit(node.finalbody)
                for handler in node.handlers:
                    visit(handler.body)

    visit(ast.parse(path.read_text()).body)
    return names


@pytest.mark.workflow
def test_the_modules_planning_imports_need_only_the_host_packages(study_plan):
    imported, _ = study_plan
    modules = sorted({m for m in imported if m == "livaebench" or m.startswith("livaebench.")})
    allowed = _host_imports() | set(sys.stdlib_module_names) | {"livaebench", "__future__"}
    assert {"yaml", "jsonschema", "pandas", "numpy", "snakemake"} <= allowed
    for module in modules:
        path = LIB.joinpath(*module.split("."))
        path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
        outside = _module_level_imports(path) - allowed
        assert not outside, f"{module} imports {sorted(outside)} at module level, outside pyproject's host extra"


@pytest.mark.workflow
def test_the_stated_size_of_the_study_is_the_plan(study_plan):
    _, counts = study_plan
    trainings = sum(n for rule, n in counts.items() if rule == "train" or rule.startswith("train_"))
    for path in STATED:
        stated = SIZE.findall(re.sub(r"\s*\n\s*#?\s*", " ", path.read_text()))  # lines (and comments) joined
        assert stated, f"{path.relative_to(REPO)} does not state the study's size as '{SIZE.pattern}'"
        for datasets, jobs, trained in stated:
            assert (int(datasets), int(jobs.replace(",", "")), int(trained.replace(",", ""))) == \
                (counts["preprocess"], counts["total"], trainings), \
                f"{path.relative_to(REPO)}: plan has {counts['preprocess']} datasets, {counts['total']} jobs, " \
                f"{trainings} trainings (snakemake {' '.join(PLAN[2:])})"


@pytest.mark.workflow
def test_the_slurm_profile_groups_plan_the_default_study(tmp_path):
    """Every group of the SLURM profile is closed (a job outside a group between two of its jobs is an
    error of the plan): the default study, controls, summary and site included, plans with it."""
    from workflow_helpers import shipped_rows, snakemake, write_config, write_registry

    registry = write_registry(tmp_path / "datasets.tsv", shipped_rows(300))
    config = write_config(tmp_path, datasets=str(registry))
    result = snakemake(tmp_path, config, "--workflow-profile", str(REPO / "workflow" / "profiles" / "slurm"),
                       "-n", "--forceall", timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-2000:]
    groups = set(re.findall(r"Group job (\w+)", output))
    assert {"data", "fit_classical", "score", "summary"} <= groups
    block = output[output.index("Group job summary"):].splitlines()[1:]
    block = block[:next((i for i, line in enumerate(block) if line and not line[0].isspace()), len(block))]
    grouped = set(re.findall(r"^\s+rule (\w+):", "\n".join(block), re.M))
    assert {"gather_metrics", "summary_table", "summary_figure", "cd_diagram", "site"} <= grouped
