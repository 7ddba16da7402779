"""Planning cost of the workflow at the scale of the study: ``snakemake -n`` on big configs.

    python benchmarks/dag_scale.py [--only paper|synthetic] [--datasets 500] [--methods 40]
                                   [--profile DIR] [--timeout 1800]

Two configs, each planned by ``python -m snakemake -n --quiet rules`` (the per-job listing is not printed)
in a fresh, empty working directory (so every job of the study is planned, as on the first run; no
--forceall needed):

- ``paper``: config/paper.yaml with its registry config/paper_datasets.tsv (the path made absolute);
- ``synthetic``: ``--datasets`` scRNA-seq GEO rows (made-up accessions GSE9000001...; nothing is
  downloaded by a dry run; every other row has ``batch_key: sample``, so the multi-batch family is
  planned too) x ``--methods`` registered methods (the RNA methods of the paper's figures, then other
  registered RNA methods up to the number asked for), every paper comparison; written to a temporary
  directory.

Printed per config: datasets, methods, (dataset, method) runs, jobs planned (Snakemake's "total" line),
wall seconds of the whole command (start-up, parsing and DAG building), its CPU seconds (user + system;
on a shared machine the wall time grows with the load, the CPU time much less), and the peak RSS of the
snakemake process (``ru_maxrss`` from ``os.wait4`` of that child; this script imports nothing heavy, so
what a child inherits from it across fork/exec is a few MB). Goal: at most 60 s each on the
2-core development machine. The machine is shared: the load average is printed before and after.

``--profile DIR`` runs each config a second time under cProfile (``DIR/{config}.prof``) and prints the
functions that dominate: by own time overall, and the workflow's own functions (Snakefile, *.smk,
livaebench) by cumulative time. Profiled runs are slower and are not the timed ones.

The last line is machine-readable: ``dag_paper_seconds=<x> dag_synthetic_seconds=<y>``.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
GOAL_SECONDS = 60.0


def load_methods() -> dict:
    sys.path.insert(0, str(REPO / "workflow" / "lib"))
    from livaebench.comparisons import paper_comparisons
    from livaebench.methods import all_methods

    registered = all_methods()
    used = []
    for spec in paper_comparisons().values():
        for name in [spec["reference"], *spec["baselines"]]:
            if name not in used:
                used.append(name)
    return {"registered": registered, "paper": used}


def paper_config(work: Path) -> tuple[Path, dict]:
    config = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
    config["datasets"] = str(REPO / config["datasets"])
    path = work / "paper.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path, config


def synthetic_config(work: Path, n_datasets: int, n_methods: int) -> tuple[Path, dict]:
    methods = load_methods()
    rna = [m for m in methods["paper"] if "rna" in methods["registered"][m].modalities]
    rna += [m for m in sorted(methods["registered"]) if m not in rna and "rna" in methods["registered"][m].modalities]
    if n_methods > len(rna):
        raise SystemExit(f"only {len(rna)} registered methods support scRNA-seq; ask for at most that many")
    columns = ["dataset", "modality", "source", "accession", "label_key", "batch_key", "pattern"]
    lines = ["\t".join(columns)]
    for i in range(n_datasets):
        lines.append("\t".join([f"syn{i:04d}", "rna", "geo", f"GSE{9000001 + i}", "",
                                "sample" if i % 2 else "", r"_RAW\.tar$"]))
    registry = work / "synthetic_datasets.tsv"
    registry.write_text("\n".join(lines) + "\n")
    config = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
    config.update(datasets=str(registry), methods=rna[:n_methods])
    path = work / "synthetic.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path, config


def count_runs(config: dict) -> int:
    methods = load_methods()["registered"]
    import csv

    with open(config["datasets"]) as fh:
        rows = [r for r in csv.DictReader((l for l in fh if not l.startswith("#")), delimiter="\t")]
    return sum(1 for r in rows for m in config["methods"] if r["modality"] in methods[m].modalities)


def snakemake_cmd(configfile: Path, workdir: Path, profile: Path | None = None) -> list[str]:
    prefix = [sys.executable] + (["-m", "cProfile", "-o", str(profile)] if profile else [])
    return prefix + ["-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
                     "--configfile", str(configfile), "-n", "--quiet", "rules"]


def plan(configfile: Path, workdir: Path, logs: Path, timeout: float, profile: Path | None = None) -> dict:
    """Run one dry run; wall seconds, peak RSS (MB), jobs planned."""
    workdir.mkdir(parents=True, exist_ok=True)
    out, err = logs.with_suffix(".out"), logs.with_suffix(".err")
    start = time.perf_counter()
    with open(out, "w") as fo, open(err, "w") as fe:
        proc = subprocess.Popen(snakemake_cmd(configfile, workdir, profile), stdout=fo, stderr=fe, cwd=REPO)
        deadline = start + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.05)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    text = out.read_text() + err.read_text()
    totals = re.findall(r"^total\s+(\d+)\s*$", text, re.M)
    if proc.returncode != 0 or not totals:
        tail = "\n".join(text.strip().splitlines()[-15:])
        raise SystemExit(f"snakemake -n failed (exit {proc.returncode}, {wall:.0f} s):\n{tail}")
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "rss_mb": usage.ru_maxrss / 1024,
            "jobs": int(totals[-1])}


def print_profile(path: Path, top: int = 15) -> None:
    import pstats

    stats = pstats.Stats(str(path))
    print(f"\n--- {path.name}: top {top} by own time")
    stats.sort_stats("tottime").print_stats(top)
    print(f"--- {path.name}: the workflow's own functions by cumulative time")
    stats.sort_stats("cumulative").print_stats(r"Snakefile|\.smk|livaebench", top)


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=["paper", "synthetic"])
    parser.add_argument("--datasets", type=int, default=500)
    parser.add_argument("--methods", type=int, default=40)
    parser.add_argument("--profile", type=Path, help="also profile each dry run; .prof files go here")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds before a dry run is stopped")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="dag_scale_") as tmp:
        work = Path(tmp)
        configs = {}
        if args.only in (None, "paper"):
            configs["paper"] = paper_config(work)
        if args.only in (None, "synthetic"):
            configs["synthetic"] = synthetic_config(work, args.datasets, args.methods)
        print(f"snakemake -n in a fresh directory; {os.cpu_count()} CPUs; load average before: {loadavg()}")
        results = {}
        for name, (configfile, config) in configs.items():
            rows = [l for l in Path(config["datasets"]).read_text().splitlines() if l.strip() and not l.startswith("#")]
            n_datasets = len(rows) - 1  # the header
            res = plan(configfile, work / f"run_{name}", work / name, args.timeout)
            res.update(datasets=n_datasets, methods=len(config["methods"]), runs=count_runs(config))
            results[name] = res
            print(f"  {name}: {res['wall']:.1f} s, {res['jobs']} jobs", flush=True)
            if args.profile:
                args.profile.mkdir(parents=True, exist_ok=True)
                prof = args.profile.resolve() / f"{name}.prof"
                plan(configfile, work / f"prof_{name}", work / f"{name}_prof", args.timeout * 3, prof)
                print_profile(prof)
        print(f"load average after: {loadavg()}\n")
        header = f"{'config':<10} {'datasets':>8} {'methods':>7} {'runs':>6} {'jobs':>6} {'wall s':>7} {'CPU s':>6} " \
                 f"{'wall s/1k jobs':>14} {'peak RSS MB':>11} {'goal':>6}"
        print(header)
        print("-" * len(header))
        for name, r in results.items():
            verdict = "ok" if r["wall"] <= GOAL_SECONDS else "SLOW"
            print(f"{name:<10} {r['datasets']:>8} {r['methods']:>7} {r['runs']:>6} {r['jobs']:>6} {r['wall']:>7.1f} "
                  f"{r['cpu']:>6.1f} {1000 * r['wall'] / r['jobs']:>14.2f} {r['rss_mb']:>11.0f} {verdict:>6}")
        print(f"(goal: at most {GOAL_SECONDS:.0f} s wall each; CPU s = user + system time of the snakemake process, "
              "which a busy machine inflates less than the wall time)")
    fmt = {name: f"{results[name]['wall']:.1f}" if name in results else "NA" for name in ("paper", "synthetic")}
    print(f"dag_paper_seconds={fmt['paper']} dag_synthetic_seconds={fmt['synthetic']}")


if __name__ == "__main__":
    main()
