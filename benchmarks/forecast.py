"""Calibrate the cost forecast on a finished run, and check it leaving one dataset out (docs/forecast.md).

    python benchmarks/forecast.py calibrate --run DIR [--configfile config/baselines.yaml]
                                            [--out resources/cost_model.tsv]
    python benchmarks/forecast.py validate  --run DIR [--configfile config/baselines.yaml] [--out FILE.tsv]
                                            [--subset config/config.yaml]

DIR is a checkout where the run went (its results/benchmarks/ and results/data/*/preprocessed.h5ad are read);
the config file is the one the run used (its method_params set the epoch budgets). `calibrate` writes the
cost model table the `forecast` rule reads. `validate` fits the model on all datasets but one, predicts that
dataset's jobs, and prints per-dataset and whole-run errors of the CPU time (and of the peak memory).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd
import yaml

from livaebench.forecast import (declared_bytes_per_value, families, fit_cost_model, measured_jobs,
                                 predict_jobs)

HEADER = """# Cost model of the forecast rule (docs/forecast.md), fitted on the benchmark files of one run.
# Regenerate: python benchmarks/forecast.py calibrate --run DIR --configfile CONFIG
# {source}
"""


def _jobs(args) -> pd.DataFrame:
    config = yaml.safe_load(Path(args.configfile).read_text())
    jobs = measured_jobs(args.run, config)
    if jobs.empty:
        sys.exit(f"{args.run}: no benchmark files of finished jobs under results/benchmarks/")
    for pair in args.exclude or []:  # a measurement known to be spoiled (say why in docs/forecast.md)
        dataset, _, method = pair.partition("/")
        jobs = jobs[~((jobs["dataset"] == dataset) & (jobs["method"] == method))]
    return jobs


def calibrate(args) -> int:
    jobs = _jobs(args)
    model = fit_cost_model(jobs, declared_bytes_per_value())
    out = Path(args.out)
    counts = jobs["class"].value_counts().to_dict()
    source = (f"Source: {len(jobs)} jobs of `{args.configfile}` on {', '.join(sorted(set(jobs['dataset']) - {''}))} "
              f"({', '.join(f'{k} {v}' for k, v in sorted(counts.items()))}).")
    with out.open("w") as handle:
        handle.write(HEADER.format(source=source))
        model.round(6).to_csv(handle, sep="\t", index=False)
    print(f"wrote {out}: {len(model)} rows from {len(jobs)} jobs")
    return 0


def leave_one_out(jobs: pd.DataFrame) -> pd.DataFrame:
    """Each dataset's jobs predicted by a model fitted on the other datasets' jobs (and the study-wide jobs)."""
    fams, bpv, parts = families(), declared_bytes_per_value(), []
    for held in sorted(set(jobs["dataset"]) - {""}):
        train = jobs[jobs["dataset"] != held]
        test = jobs[jobs["dataset"] == held]
        model = fit_cost_model(train, bpv)
        pred = predict_jobs(model, test[["class", "rule", "method", "cells", "features", "epochs"]], fams)
        parts.append(test.assign(pred_cpu_s=pred["cpu_s"].to_numpy(), pred_rss_mb=pred["rss_mb"].to_numpy(),
                                 source=pred["source"].to_numpy()))
    return pd.concat(parts, ignore_index=True)


def error_table(pred: pd.DataFrame, subsets: dict[str, list[str]] | None = None) -> pd.DataFrame:
    def row(name, part):
        return {"held_out": name, "jobs": len(part), "measured_cpu_h": part["cpu_s"].sum() / 3600,
                "predicted_cpu_h": part["pred_cpu_s"].sum() / 3600,
                "total_error_pct": 100 * (part["pred_cpu_s"].sum() / part["cpu_s"].sum() - 1),
                "median_job_abs_error_pct": 100 * (part["pred_cpu_s"] / part["cpu_s"] - 1).abs().median(),
                "peak_rss_measured_mb": part["rss_mb"].max(), "peak_rss_predicted_mb": part["pred_rss_mb"].max()}

    rows = [row(d, p) for d, p in pred.groupby("dataset")]
    rows += [row(f"class {c}", p) for c, p in pred.groupby("class")]
    rows.append(row("whole run", pred))
    own = pred["source"] == "calibrated"
    rows.append(row("jobs with own coefficients", pred[own]))  # the method measured on another dataset
    rows.append(row("jobs priced by a fallback", pred[~own]))  # measured nowhere else: a close method's
    for name, methods in (subsets or {}).items():  # the jobs another config's run shares with this one
        part = pred[(pred["method"].isin(methods)) | (pred["method"].fillna("") == "")]
        rows.append(row(f"jobs of {name}", part))
    return pd.DataFrame(rows).round(2)


def validate(args) -> int:
    jobs = _jobs(args)
    pred = leave_one_out(jobs)
    subsets = {}
    for path in args.subset or []:
        from livaebench.methods.controls import CONTROLS

        subsets[path] = [*yaml.safe_load(Path(path).read_text())["methods"], *CONTROLS]
    table = error_table(pred, subsets)
    pd.set_option("display.width", 200)
    print(table.to_string(index=False))
    if args.out:
        table.to_csv(args.out, sep="\t", index=False)
        pred.to_csv(Path(args.out).with_suffix(".jobs.tsv"), sep="\t", index=False)
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("calibrate", "validate"):
        p = sub.add_parser(name)
        p.add_argument("--run", required=True, help="the checkout the measured run went to")
        p.add_argument("--configfile", default="config/baselines.yaml", help="the config that run used")
        p.add_argument("--out", default="resources/cost_model.tsv" if name == "calibrate" else None)
        p.add_argument("--exclude", action="append", metavar="DATASET/METHOD",
                       help="leave out the jobs of this run (a spoiled measurement); repeatable")
        if name == "validate":
            p.add_argument("--subset", action="append", metavar="CONFIG",
                           help="also the error on the jobs of this config's methods (and the controls), e.g. "
                                "config/config.yaml for the default run")
    args = parser.parse_args(argv)
    return calibrate(args) if args.command == "calibrate" else validate(args)


if __name__ == "__main__":
    sys.exit(main())
