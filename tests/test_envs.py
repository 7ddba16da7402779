"""The conda environment parses and pins exactly the runtime dependencies of pyproject.toml."""
from __future__ import annotations

import re
import tomllib
from importlib import metadata

import yaml
from packaging.requirements import Requirement

from conftest import REPO


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _env_pins() -> dict[str, str]:
    env = yaml.safe_load((REPO / "envs" / "livaebench.yaml").read_text())
    pip_section = next(item["pip"] for item in env["dependencies"] if isinstance(item, dict) and "pip" in item)
    pins = {}
    for line in pip_section:
        name, version = line.split("==")
        pins[_canonical(name)] = version
    return pins


def test_env_pins_every_runtime_dependency_within_its_range():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pins = _env_pins()
    for spec in project["dependencies"]:
        requirement = Requirement(spec)
        name = _canonical(requirement.name)
        assert name in pins, f"{name} is a dependency but not pinned in envs/livaebench.yaml"
        assert requirement.specifier.contains(pins[name]), f"{name}=={pins[name]} violates {requirement.specifier}"


def test_env_pins_match_the_installed_versions():
    """The pins are what pip resolved here (torch's local +cpu tag aside)."""
    for name, version in _env_pins().items():
        installed = metadata.version(name).split("+")[0]
        assert installed == version, f"{name}: installed {installed}, envs/livaebench.yaml pins {version}"


def test_every_rule_names_the_env_file():
    rules = (REPO / "workflow" / "rules").glob("*.smk")
    text = "\n".join(p.read_text() for p in rules)
    n_rules = len(re.findall(r"^rule \w+:", text, flags=re.M))
    assert text.count("conda:\n        CONDA_ENV") == n_rules
    assert 'CONDA_ENV = "../../envs/livaebench.yaml"' in text
