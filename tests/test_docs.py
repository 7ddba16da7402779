"""The docs agree with the code: every config key of the schema is documented in config/README.md (and every
documented key exists, with the schema's default), every path docs/output-contract.md and README.md name is
a file some rule makes, every rule's log is in the contract's log table, every benchmark file is filed
under its rule's name, and the profiles print no shell commands for script rules."""
from __future__ import annotations

import itertools
import json
import re
import subprocess
import sys

import pytest
import yaml

from conftest import REPO
from livaebench import stats
from livaebench.methods import all_methods

SCHEMA = yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())
CONFIG_README = REPO / "config" / "README.md"
CONTRACT = REPO / "docs" / "output-contract.md"
NOTE = re.compile(r"\(config\.yaml: (.*)\)\s*$")


# ------------------------------------------------------------------------------------------ config keys
def schema_keys(node: dict, prefix: str = ""):
    """(dotted key, its schema) for every key the schema allows; '*' stands for a user-chosen name."""
    for name, sub in (node.get("properties") or {}).items():
        yield prefix + name, sub
        yield from schema_keys(sub, f"{prefix}{name}.")
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        yield prefix + "*", extra
        yield from schema_keys(extra, f"{prefix}*.")
    for alternative in node.get("oneOf", []) + node.get("anyOf", []):
        yield from schema_keys(alternative, prefix)


def _cells(line: str) -> list[str]:
    return [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))]


def documented_keys() -> dict[str, tuple[str, str]]:
    """dotted key ('*' for `{name}` placeholders) -> (its default text, its whole row), from the key tables of
    config/README.md (the first table's keys are top-level; a `### \\`analyses.x\\`` section's are under it).
    A key cell `a.b` / `.c` / `d` names a.b, a.c and a.d."""
    keys, prefix, in_table = {}, "", False
    for line in CONFIG_README.read_text().splitlines():
        heading = re.match(r"^#+ (.*)", line)
        if heading:
            section = re.match(r"`([\w.]+)`", heading.group(1))
            prefix = f"{section.group(1)}." if section else ""
            in_table = False
            continue
        if not line.startswith("|"):
            in_table = False
            continue
        cells = _cells(line)
        if cells[:2] == ["key", "default"]:
            in_table = True
            continue
        if not in_table or set(cells[0]) <= set("-"):
            continue
        parts = [re.sub(r"\{\w+\}", "*", p) for p in re.findall(r"`([^`]+)`", cells[0])]
        first = parts[0]
        stem = first.rpartition(".")[0]
        names = [first] + [p if "." in p.lstrip(".") else (f"{stem}.{p.lstrip('.')}" if stem else p.lstrip("."))
                           for p in parts[1:]]
        for name in names:
            assert prefix + name not in keys, f"config/README.md documents '{prefix}{name}' twice"
            keys[prefix + name] = (cells[1], line)
    return keys


def _is_documented(key: str, docs: dict) -> bool:
    if key in docs or any(d.startswith(key + ".") for d in docs):  # the key, or an object with documented keys
        return True
    if key.endswith(".*"):  # the entries of a documented mapping
        return _is_documented(key[:-2], docs)
    parts = key.split(".")
    ancestors = [".".join(parts[:i]) for i in range(1, len(parts))]
    named = re.compile(rf"`[^`]*\b{re.escape(parts[-1])}\b[^`]*`")  # in code in its parent's row
    return any(a in docs and named.search(docs[a][1]) for a in ancestors)


def test_every_schema_key_is_documented_and_every_documented_key_exists():
    schema = dict(schema_keys(SCHEMA))
    docs = documented_keys()
    assert len(docs) > 60 and "analyses.unicoord.reference.drop_genes" in docs and "comparisons.*" in docs
    undocumented = sorted(k for k in schema if not _is_documented(k, docs))
    assert undocumented == [], f"schema keys without a row (or a mention in their parent's row) in config/README.md"
    unknown = sorted(set(docs) - set(schema))
    assert unknown == [], "config/README.md documents keys the schema does not have"


def _schema_node(key: str) -> tuple[dict, bool]:
    """(the schema of a dotted key, whether its parent requires it)."""
    node, required = SCHEMA, False
    for part in key.split("."):
        required = part in node.get("required", [])
        if part == "*":
            node = node["additionalProperties"]
        else:
            props = dict(node.get("properties") or {})
            for alternative in node.get("oneOf", []):
                props.update(alternative.get("properties") or {})
            node = props[part]
    return node, required


def _values(text: str) -> list:
    """The values a default cell gives, one per ' / '-separated part: the first `code` of the part."""
    values = []
    for part in text.split(" / "):
        code = re.findall(r"`([^`]*)`", part)
        values.append(yaml.safe_load(code[0]) if code else part.strip())
    return values


def _config_value(key: str):
    value = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    for part in key.split("."):
        value = (value or {}).get(part)
    return value


def test_documented_defaults_are_the_schemas_and_config_yamls():
    docs = documented_keys()
    rows: dict[str, list[str]] = {}
    for key, (default, row) in docs.items():
        rows.setdefault(row, []).append(key)
    for row, keys in rows.items():
        default = docs[keys[0]][0]
        note = NOTE.search(default)
        main = default[:note.start()].strip() if note else default
        if all(_schema_node(k)[1] for k in keys):
            assert main == "required", f"{keys}: the schema requires it, config/README.md gives a default ({main})"
        else:
            each = main.endswith(" each")  # `x` each: every key of the object defaults to x
            values = _values(main.removesuffix(" each"))
            assert len(values) == len(keys), f"{keys}: {len(values)} defaults in config/README.md ({main})"
            for key, value in zip(keys, values):
                real = key.split(".*")[0]  # a mapping of user-chosen names: the mapping's default
                node, _ = _schema_node(real)
                if each:
                    assert {p["default"] for p in node["properties"].values()} == {value}, key
                else:
                    assert "default" in node and node["default"] == value, \
                        f"{key}: config/README.md says {value!r}, the schema {node.get('default', 'no default')!r}"
        if note:  # what config/config.yaml sets, where it differs from the default
            shown = note.group(1).split(" / ")
            if all(re.fullmatch(r"`[^`]*`", s.strip()) for s in shown):
                assert len(shown) == len(keys)
                for key, value in zip(keys, shown):
                    assert _config_value(key) == yaml.safe_load(value.strip().strip("`")), \
                        f"{key}: config/README.md says config.yaml sets {value}, it sets {_config_value(key)!r}"


# ------------------------------------------------------------------------------------- rule outputs
RULES_SCRIPT = """
import json, sys
from pathlib import Path
from snakemake.api import SnakemakeApi
from snakemake.settings.types import ConfigSettings, OutputSettings, Quietness, ResourceSettings

repo, configfile = Path(sys.argv[1]), Path(sys.argv[2])
with SnakemakeApi(OutputSettings(quiet={Quietness.ALL})) as api:
    workflow = api.workflow(resource_settings=ResourceSettings(), snakefile=repo / "Snakefile", workdir=repo,
                            config_settings=ConfigSettings(configfiles=[configfile]))._workflow
    rules = {rule.name: {"output": [str(f) for f in rule.output], "log": [str(f) for f in rule.log],
                         "benchmark": str(rule.benchmark) if rule.benchmark else None,
                         "shell": rule.shellcmd is not None} for rule in workflow.rules}
    # the benchmark files rule_benchmarks reads (common.smk), beside the rules
    print(json.dumps({"rules": rules, "benchmark_targets": workflow.globals["benchmark_targets"]()}))
"""


@pytest.fixture(scope="module")
def parsed(tmp_path_factory):
    """Every rule of the workflow as snakemake parses it (no plan), with every registered method configured
    so that every train rule exists: name -> output, log and benchmark patterns."""
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["methods"] = [name for name, m in all_methods().items() if m.family != "control"]
    path = tmp_path_factory.mktemp("rules") / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    result = subprocess.run([sys.executable, "-c", RULES_SCRIPT, str(REPO), str(path)], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def rules(parsed):
    return parsed["rules"]


def _plain(pattern: str) -> str:
    """A rule pattern without its wildcard constraints: {dataset,a|b} -> {dataset}."""
    return re.sub(r"\{(\w+),[^{}]*(?:\{[^{}]*\}[^{}]*)*\}", r"{\1}", pattern)


def _regex(pattern: str, constrained: bool = False) -> str:
    """A rule pattern as a regex; its wildcards match any name unless ``constrained`` (the constraints
    depend on the config: the registry's datasets, the configured methods)."""
    out, pos = "", 0
    for m in re.finditer(r"\{(\w+)(?:,((?:[^{}]|\{[^{}]*\})*))?\}", pattern):
        out += re.escape(pattern[pos:m.start()]) + (f"(?:{m.group(2)})" if constrained and m.group(2) else "[^/]+")
        pos = m.end()
    return out + re.escape(pattern[pos:])


def _made(rules) -> tuple[list[str], list[str]]:
    """(regexes of the files rules make, regexes of the folders they fill): outputs, logs, benchmarks."""
    files, folders = [], []
    for rule in rules.values():
        for pattern in rule["output"] + rule["log"] + ([rule["benchmark"]] if rule["benchmark"] else []):
            parts = pattern.split("/")
            files.append(_regex(pattern))
            folders += [_regex("/".join(parts[:i]) + "/") for i in range(1, len(parts) + 1)]
    return files, folders


def _documented_paths(text: str) -> list[str]:
    paths = re.findall(r"(?<![\w./{-])((?:results|logs)/(?:[^\s`'\"(),;|{}]|\{[^{}]*\})*)", text)
    return [p.rstrip(".:") if not p.endswith(("...", "…")) else p for p in paths]


def _instances(path: str, rules) -> list[str]:
    """The doc path with its alternatives ({png,pdf}) expanded and its wildcards set to example values."""
    examples = {"dataset": ["pancreas"], "method": ["livae", "pca"], "seed": ["0"], "modality": ["rna"],
                "comparison": ["fig3_livae_vs_classical"], "rule": list(rules), "variant": ["split"]}
    fields = re.findall(r"\{([^{}]*)\}", path)
    options = [f.split(",") if "," in f else examples[f] for f in fields]
    template = re.sub(r"\{[^{}]*\}", "{}", path)
    return [template.format(*combo) for combo in itertools.product(*options)]


@pytest.mark.parametrize("doc", [CONTRACT, REPO / "README.md"], ids=lambda p: p.name)
def test_every_documented_output_path_is_made_by_a_rule(doc, rules):
    files, folders = _made(rules)
    paths = _documented_paths(doc.read_text())
    assert len(paths) > 20
    missing = []
    for path in paths:
        prefix = path.endswith(("/", "...", "…"))
        wanted = path.rstrip(".…") if prefix else path
        if prefix and not wanted.endswith("/"):  # `results/figures/...`: that folder
            wanted = wanted.rpartition("/")[0] + "/"
        found = any(re.fullmatch(r, instance) for instance in _instances(wanted, rules)
                    for r in (folders if prefix else files))
        if not found:
            missing.append(path)
    assert missing == [], f"{doc.name} names paths that no rule makes"


def test_every_rule_log_is_in_the_contracts_log_table_and_only_those(rules):
    section = CONTRACT.read_text().split("## Logs", 1)[1]
    documented = set(re.findall(r"^\| `(logs/[^`]+)` \|", section, re.M))
    made = {_plain(log) for rule in rules.values() for log in rule["log"]}
    assert made - documented == set(), "logs missing from docs/output-contract.md's log table"
    assert documented - made == set(), "docs/output-contract.md lists logs no rule writes"


def test_benchmark_files_are_filed_under_their_rule(rules):
    """results/benchmarks/rules.tsv names a job's rule after the folder (or file) under results/benchmarks/."""
    for name, rule in rules.items():
        if rule["benchmark"]:
            under = rule["benchmark"].removeprefix("results/benchmarks/").split("/")[0].removesuffix(".tsv")
            assert under == name, f"rule {name} writes its benchmark under results/benchmarks/{under}"


def test_rules_tsv_reads_the_benchmark_files_the_rules_write(parsed, rules):
    written = [_regex(rule["benchmark"], constrained=True) for rule in rules.values() if rule["benchmark"]]
    targets = parsed["benchmark_targets"]
    assert any("/train_model/" in t for t in targets) and any("/train/" in t for t in targets)
    assert [t for t in targets if not any(re.fullmatch(r, t) for r in written)] == []


def test_profiles_print_shell_commands_only_for_shell_rules(rules):
    shell_rules = [name for name, rule in rules.items() if rule["shell"]]
    for profile in (REPO / "workflow" / "profiles").glob("*/config.yaml"):
        settings = yaml.safe_load(profile.read_text())
        if not shell_rules:  # every rule runs a script: printshellcmds would print "Shell command: None"
            assert not settings.get("printshellcmds"), profile


def test_the_documented_test_labels_are_those_the_workflow_writes():
    row = next(line for line in CONTRACT.read_text().splitlines() if line.startswith("| `test` |"))
    labels = set(re.findall(r"`([^`]+)`", row)) - {"test"}
    assert labels == {stats.PATH_PARAMETRIC, stats.PATH_FRIEDMAN, stats.PATH_WILCOXON, "none", "insufficient: …"}
    # the independent-groups Tukey is a library option the workflow never sets
    assert "tukey" not in (REPO / "scripts" / "compare.py").read_text()
