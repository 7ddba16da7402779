"""The snakemake-workflows conventions (issue 17 §3): the .test/ configuration CI runs, snakefmt-formatted rule
files, a docstring in every rule, the licence and the catalogue file, the named targets, and a console that
leaves the jobs' details to their logs."""
from __future__ import annotations

import re
import subprocess
import sys
import tomllib

import pandas as pd
import pytest
import yaml

from test_workflow import job_counts
from workflow_helpers import REPO, ci_root

RULE_FILES = [REPO / "Snakefile", *sorted((REPO / "workflow" / "rules").glob("*.smk"))]


def test_rule_files_are_snakefmt_formatted():
    # snakefmt reads its line length from pyproject.toml ([tool.snakefmt]); it is in the test extra
    def snakefmt(*args):
        return subprocess.run([sys.executable, "-m", "snakefmt", *args, *map(str, RULE_FILES)], cwd=REPO,
                              capture_output=True, text=True, timeout=120)

    if snakefmt("--check").returncode != 0:
        pytest.fail("run `snakefmt Snakefile workflow/rules` to format:\n" + snakefmt("--compact-diff").stdout[-3000:])


RULE = re.compile(r"^(\s*)rule(?: (\w+))?:[ \t]*\n(?:\s*\n)*(\s*)(.*)$", re.M)


def test_every_rule_has_a_one_line_docstring():
    """What a rule makes, in the line `snakemake --list-rules` shows (rules made in a loop included)."""
    seen, missing = 0, []
    for path in RULE_FILES:
        for match in RULE.finditer(path.read_text()):
            seen += 1
            first = match.group(4).strip()
            name = match.group(2) or "(a rule made in a loop)"
            if not (first.startswith('"""') and first.endswith('"""') and len(first) > 6):
                missing.append(f"{path.relative_to(REPO)}: rule {name}")
    assert seen >= 35  # every rule file parsed (a changed layout would make this test pass vacuously)
    assert not missing, "rules without a one-line docstring (what the rule makes): " + "; ".join(missing)


def test_list_rules_shows_the_docstrings(tmp_path):
    result = subprocess.run([sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
                             "--directory", ".test", "--list-rules"], cwd=ci_root(tmp_path).parent,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    listed = result.stdout
    for name, doc in (("summary", "The ranked summary of each modality"), ("embed", "The UMAP and t-SNE"),
                      ("embeddings_pancreas", "Every configured method's embedding of one dataset")):
        assert re.search(rf"^{name} \({re.escape(doc)}", listed, re.M), listed[:3000]


def test_licence_is_mit_everywhere_and_the_data_keep_their_own():
    licence = (REPO / "LICENSE").read_text()
    assert licence.startswith("MIT License") and "Copyright (c) 2026 the livaebench authors" in licence
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["license"] == {"text": "MIT"}
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## Data and licences"):]
    assert "MIT" in section and "LICENSE" in section and "resources/licenses/" in section
    assert (REPO / "resources" / "licenses").is_dir() and any((REPO / "resources" / "licenses").iterdir())


def test_catalogue_file_states_the_usage():
    usage = yaml.safe_load((REPO / ".snakemake-workflow-catalog.yml").read_text())["usage"]
    assert usage["software-stack-deployment"]["conda"] is True and usage["report"] is True
    flags = usage["mandatory-flags"]
    assert flags["flags"] and flags["desc"]
    # the catalogue's standardized layout: config and its documentation where it looks for them
    assert (REPO / "config" / "config.yaml").is_file() and (REPO / "config" / "README.md").is_file()


def test_ci_config_is_complete_and_tiny(monkeypatch):
    """.test/config/ validates against the schema, and its registry names the shipped files, each reduced to at
    most 250 cells."""
    from livaebench.config import load_registry, validate_config

    monkeypatch.chdir(REPO / ".test")  # where `snakemake --directory .test` reads the registry's paths from

    schemas = REPO / "workflow" / "schemas"
    config = validate_config(yaml.safe_load((REPO / ".test/config/config.yaml").read_text()),
                             schemas / "config.schema.yaml")
    registry = load_registry(REPO / ".test" / config["datasets"], schemas / "datasets.schema.yaml")
    assert len(registry) >= 3 and set(registry["modality"]) == {"rna", "atac"}
    for dataset, row in registry.iterrows():
        assert (REPO / ".test" / row["path"]).resolve().is_file(), dataset
        assert 0 < int(row["max_cells"]) <= 250, dataset
    assert config["summary"]["controls"] and config["analyses"]["interpretability"]["datasets"]
    neural = [m for m in config["methods"] if "epochs" in config["method_params"].get(m, {})]
    assert neural and all(config["method_params"][m]["epochs"] <= 3 for m in neural)


# ------------------------------------------------------------------------------------------- named targets
CHAIN = {"assemble_counts", "preprocess", "train", "train_model", "embed"}
METRICS = CHAIN | {"evaluate", "gather_metrics", "convergence"}
PARTS = {
    "metrics": METRICS,
    "stats": METRICS | {"compare", "fairness"},
    "figures": CHAIN | {"evaluate", "gather_metrics", "compare", "plot_comparison", "plot_sensitivity",
                        "plot_umap_grid", "plot_ilisi"},
    "summary": CHAIN | {"evaluate", "gather_metrics", "summary_table", "summary_figure", "cd_diagram"},
    "embeddings_pancreas": CHAIN | {"plot_umap_grid"},
}


@pytest.fixture(scope="module")
def plans(tmp_path_factory):
    """The dry-run plan of each named target (and of the default target) on the .test configuration."""
    workdir = ci_root(tmp_path_factory.mktemp("targets"))
    plans = {}
    for target in [*PARTS, "site", "all"]:
        result = subprocess.run([sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
                                 "--directory", ".test", "-n", target], cwd=workdir.parent, capture_output=True,
                                text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-2000:]
        plans[target] = (job_counts(result.stdout), result.stdout)
    return plans


@pytest.mark.parametrize("target", list(PARTS))
def test_a_named_target_plans_only_its_part(plans, target):
    counts, _ = plans[target]
    assert set(counts) - {"total", target} == PARTS[target]
    everything, _ = plans["all"]
    if target != "embeddings_pancreas":  # the others build on every run of the configuration
        assert all(counts[rule] == everything[rule] for rule in PARTS[target])


def test_the_dataset_target_plans_one_dataset(plans):
    counts, plan = plans["embeddings_pancreas"]
    registry = pd.read_csv(REPO / ".test/config/datasets.tsv", sep="\t")
    config = yaml.safe_load((REPO / ".test/config/config.yaml").read_text())
    assert counts["preprocess"] == counts["plot_umap_grid"] == 1
    n_runs = len(config["methods"]) + 4  # the four controls run on a labelled dataset
    assert counts["embed"] == counts["train"] + counts["train_model"] == n_runs * len(config["seeds"])
    others = [d for d in registry["dataset"] if d != "pancreas"]
    assert not any(f"results/embeddings/{d}/" in plan for d in others)


def test_the_site_target_is_the_whole_default_run(plans):
    site, _ = plans["site"]
    everything, _ = plans["all"]
    # the site reads every table and figure of the run (rules.tsv, so every benchmarked job, included)
    assert {r: n for r, n in site.items() if r not in ("site", "total")} == \
        {r: n for r, n in everything.items() if r not in ("site", "all", "total")}


# ------------------------------------------------------------------------------------------------- console
def test_job_details_go_to_the_log_and_warnings_and_errors_to_the_console(tmp_path):
    """Inside a job (a step with a log file) stderr gets warnings and errors only, the log everything, and no
    progress bar is drawn; a third-party warning goes to the log."""
    script = f"""
import warnings
from livaebench.runtime import show_progress_bar, step
with step({str(tmp_path / 'job.log')!r}) as log:
    log.info("detail for the log")
    log.warning("a warning for the person")
    warnings.warn("a library's FutureWarning", FutureWarning)
    print("bar:", show_progress_bar())
log.error("an error for the person")
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    log = (tmp_path / "job.log").read_text()
    assert "detail for the log" in log and "a warning for the person" in log and "FutureWarning" in log
    assert "peak RSS" in log
    assert "a warning for the person" in result.stderr and "an error for the person" in result.stderr
    assert "detail for the log" not in result.stderr and "peak RSS" not in result.stderr
    assert "FutureWarning" not in result.stderr
    assert "bar: False" in result.stdout


def test_no_progress_bar_in_a_job_or_off_a_terminal(tmp_path):
    """A training inside a job logs its epochs to the job's log and draws no bar (stderr here is no terminal)."""
    script = f"""
import torch
from livaebench.runtime import step
from livaebench.training import EngineModel, TrainConfig, train

class Mean(EngineModel):
    def __init__(self):
        super().__init__()
        self.mu = torch.nn.Parameter(torch.zeros(3))
    def loss_terms(self, batch):
        return {{"mse": ((batch["x"] - self.mu) ** 2).mean()}}

with step({str(tmp_path / 'train.log')!r}) as log:
    train(Mean(), {{"x": torch.randn(64, 3)}}, TrainConfig(epochs=3, batch_size=16), seed=0, outdir=None,
          log=log, dataset="toy", method="mean")
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    log = (tmp_path / "train.log").read_text()
    assert "toy/mean epoch 1/3" in log and "toy/mean epoch 3/3" in log
    assert "epoch" not in result.stderr and "\r" not in result.stderr, result.stderr
