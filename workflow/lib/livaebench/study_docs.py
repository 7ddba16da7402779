"""Export a finished study's outcome into the documentation (``docs/results/``), so a reader sees it without running it.

    python -m livaebench.study_docs RESULTS_DIR OUT_DIR [--configfile config/study.yaml] [--commit SHA]
                                    [--machine TEXT] [--wall-time TEXT] [--notes FILE]

From ``RESULTS_DIR`` (a run's ``results/`` folder) it writes into ``OUT_DIR``:

* ``summary_{modality}.png`` and ``cd_{modality}.png`` — the ranked summary figure and the critical-difference
  diagram (``results/summary/{modality}.png``, ``{modality}_cd.png``, rules ``summary_figure`` and ``cd_diagram``),
  and ``summary_{modality}.md``, the leaderboard (``results/summary/{modality}.tsv``) as a table;
* ``tables/fig{N}.md`` — one markdown file per paper figure, one table per comparison family of that figure
  (``results/stats/{family}.tsv``: metric, baseline, Δ, p, stars, test, n); a family of the user's own gets
  ``tables/{family}.md``;
* ``claims.md`` and ``claims.tsv`` — copied from ``results/claims/`` (rule ``claims``), or computed from the
  statistics and summary tables when the run did not make them (config ``claims: false``);
* ``README.md`` — the index: the commit of the results' checkout, the machine, the dates, the command that
  regenerates everything, the per-rule run time (``results/benchmarks/rules.tsv``) and links to the above.

Files of those names that a previous export left and this run does not have are removed (``tables/*.md``,
``summary_*``, ``cd_*``); nothing else in ``OUT_DIR`` is touched except ``README.md``.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .claims import claims_markdown, evaluate_claims, load_evidence, read_stats
from .errors import InputError

STATS_TABLE_COLUMNS = ["metric", "baseline", "Δ", "p", "stars", "test", "n"]
MODALITY_TITLES = {"rna": "scRNA-seq", "atac": "scATAC-seq"}


# ---------------------------------------------------------------------------------------------------------
# Formatting


def fmt_delta(x) -> str:
    x = float(x) if x is not None else np.nan
    if not np.isfinite(x):
        return "NA"
    return f"{x:+.1f}" if abs(x) >= 100 else f"{x:+.3g}"


def fmt_p(p) -> str:
    p = float(p) if p is not None else np.nan
    if not np.isfinite(p):
        return "—"
    if p == 0:
        return "<1e-15"  # scipy's studentized range underflows (docs/methods.md §4.6)
    return f"{p:.2g}" if p < 0.001 else f"{p:.3f}"


def _cell(value) -> str:
    text = "" if value is None or (isinstance(value, float) and not np.isfinite(value)) else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(header: Sequence[str], rows: Sequence[Sequence]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return lines


def stats_table_lines(table: pd.DataFrame) -> list[str]:
    """One family's statistics as a markdown table (``STATS_TABLE_COLUMNS``; n names its replicate when it is
    not the dataset, e.g. the dataset × subsample conditions of Fig. 11)."""
    rows = []
    for _, r in table.iterrows():
        n = str(int(r["n_datasets"]))
        replicate = str(r.get("replicate", "dataset") or "dataset")
        if replicate != "dataset":
            n += f" ({replicate})"
        rows.append([f"`{r['metric']}`", r["baseline"], fmt_delta(r["delta"]), fmt_p(r["p_value"]),
                     r.get("stars", "") or "", r["test"], n])
    return markdown_table(STATS_TABLE_COLUMNS, rows)


# ---------------------------------------------------------------------------------------------------------
# Where things come from


def git_commit(path: Path) -> str:
    """``SHA`` of the checkout holding ``path`` (``SHA (uncommitted changes)`` when its tracked files differ)."""
    def git(*args) -> str:
        return subprocess.run(["git", "-C", str(path), *args], capture_output=True, text=True, check=True,
                              timeout=30).stdout.strip()

    try:
        sha = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return "unknown (not a git checkout: pass --commit)"
    return f"{sha} (with uncommitted changes to tracked files)" if dirty else sha


def machine_description() -> str:
    """CPU model and logical cores (``/proc/cpuinfo``, ``os.cpu_count()``) and memory (``/proc/meminfo``)."""
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = os.cpu_count() or 0
    memory = ""
    try:
        match = re.search(r"^MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text(), re.M)
        if match:
            memory = f", {int(match.group(1)) / 2 ** 20:.0f} GiB memory"
    except OSError:
        pass
    return f"{model}, {cores} logical cores{memory}"


def run_date(results: Path) -> str:
    """When the run finished its metric table (UTC modification time of ``metrics/all.tsv``), if it is there."""
    path = results / "metrics" / "all.tsv"
    if not path.exists():
        return "unknown"
    return dt.datetime.fromtimestamp(path.stat().st_mtime, dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def family_figure(name: str, specs: dict) -> tuple[str, str]:
    """(file stem, title) of the figure file a family belongs to: ``fig{N}`` for the paper's, else the family."""
    from .panels import paper_figure

    spec = specs.get(name)
    figure = paper_figure(spec) if spec else None
    if figure is None:
        return name, f"Comparison family {name}"
    return f"fig{figure.split()[-1]}", f"Paper {spec['figure']}"


def _figure_key(stem: str) -> tuple:
    match = re.fullmatch(r"fig(\d+)", stem)
    return (0, int(match.group(1)), "") if match else (1, 0, stem)


# ---------------------------------------------------------------------------------------------------------
# Export


def _clear_previous(out: Path) -> None:
    for pattern in ("tables/*.md", "summary_*.png", "summary_*.md", "cd_*.png"):
        for path in out.glob(pattern):
            path.unlink()


def export_figure_tables(results: Path, out: Path) -> dict[str, tuple[str, list[str]]]:
    """``tables/fig{N}.md`` per paper figure; returns {stem: (title, families)}."""
    from .comparisons import paper_comparisons

    specs = paper_comparisons()
    stats = {p.stem: read_stats(p) for p in sorted((results / "stats").glob("*.tsv")) if p.stem != "fairness"}
    groups: dict[str, tuple[str, list[str]]] = {}
    for name in stats:
        stem, title = family_figure(name, specs)
        groups.setdefault(stem, (title, []))[1].append(name)
    (out / "tables").mkdir(parents=True, exist_ok=True)
    for stem, (title, names) in groups.items():
        lines = [f"# {title}", "",
                 "Δ = reference − baseline, mean over the datasets (seeds averaged first; DAV: lower is better); p "
                 "adjusted for the family's multiple comparisons (docs/methods.md §4.3); stars * < 0.05, ** < 0.01, "
                 "*** < 0.001; test `none`: Δ only, as the paper; `insufficient: …`: no test could be run, and why; "
                 f"n: datasets (or the replicate named). Source: `results/stats/{{family}}.tsv`.", ""]
        for name in sorted(names, key=lambda n: (specs.get(n, {}).get("panel") or "", n)):
            table, spec = stats[name], specs.get(name, {})
            reference = table["reference"].iloc[0] if len(table) else spec.get("reference", "?")
            baselines = list(dict.fromkeys(table["baseline"])) if len(table) else []
            panel = f" (panel {spec['panel']})" if spec.get("panel") else ""
            lines += [f"## {name}{panel}", "", f"`{reference}` against {', '.join(f'`{b}`' for b in baselines)}.", ""]
            lines += stats_table_lines(table) + [""]
        (out / "tables" / f"{stem}.md").write_text("\n".join(lines).rstrip() + "\n")
    return dict(sorted(groups.items(), key=lambda kv: _figure_key(kv[0])))


def export_summaries(results: Path, out: Path) -> dict[str, dict[str, str]]:
    """The summary figure, CD diagram and leaderboard table of each modality the run has."""
    done: dict[str, dict[str, str]] = {}
    for board_path in sorted((results / "summary").glob("*.tsv")):
        modality = board_path.stem
        if modality.endswith("_scores"):
            continue
        files: dict[str, str] = {}
        for source, target, key in ((f"{modality}.png", f"summary_{modality}.png", "figure"),
                                    (f"{modality}_cd.png", f"cd_{modality}.png", "cd")):
            if (results / "summary" / source).exists():
                shutil.copyfile(results / "summary" / source, out / target)
                files[key] = target
        board = pd.read_csv(board_path, sep="\t", keep_default_na=False, na_values=["NA", ""])
        score_columns = [c for c in board.columns if c.startswith("score_")]
        header = ["rank", "method", "family", "role", "datasets", *[c.removeprefix("score_") for c in score_columns],
                  "overall", "mean rank"]
        rows = []
        for _, r in board.iterrows():
            rank = "" if pd.isna(r["rank"]) else str(int(r["rank"]))
            role = "" if r["control"] == "none" else f"{r['control']} control"
            rows.append([rank, f"`{r['method']}`", r["family"], role, int(r["n_datasets"]),
                         *[("" if pd.isna(r[c]) else f"{r[c]:.3f}") for c in score_columns],
                         "" if pd.isna(r["overall"]) else f"{r['overall']:.3f}",
                         "" if pd.isna(r["mean_rank"]) else f"{r['mean_rank']:.2f}"])
        title = MODALITY_TITLES.get(modality, modality)
        lines = [f"# Ranked summary, {title}", "",
                 "Every metric scaled per dataset between the controls (0 = the better negative, 1 = the better "
                 "positive; clipped), category scores averaged over the datasets, ranks by overall score per dataset "
                 f"(docs/methods.md §8). Source: `results/summary/{modality}.tsv`.", ""]
        lines += markdown_table(header, rows)
        (out / f"summary_{modality}.md").write_text("\n".join(lines) + "\n")
        files["table"] = f"summary_{modality}.md"
        done[modality] = files
    return done


def export_claims(results: Path, out: Path) -> tuple[pd.DataFrame, str]:
    """claims.md and claims.tsv: the run's own (rule claims), else computed here from its tables."""
    made = results / "claims"
    if (made / "claims.md").exists() and (made / "claims.tsv").exists():
        shutil.copyfile(made / "claims.md", out / "claims.md")
        shutil.copyfile(made / "claims.tsv", out / "claims.tsv")
        return pd.read_csv(made / "claims.tsv", sep="\t", keep_default_na=False), "results/claims/ (rule claims)"
    stats, scores = load_evidence(results)
    table = evaluate_claims(stats, scores)
    (out / "claims.md").write_text(claims_markdown(table))
    table.to_csv(out / "claims.tsv", sep="\t", index=False, na_rep="NA")
    return table, "computed by the exporter from results/stats/ and results/summary/ (the run had no results/claims/)"


def run_time_lines(results: Path, wall_time: str | None) -> list[str]:
    lines = ["## Run time", ""]
    if wall_time:
        lines += [f"Wall time of the whole run: {wall_time}.", ""]
    path = results / "benchmarks" / "rules.tsv"
    if not path.exists():
        return lines + ["No per-rule table (`results/benchmarks/rules.tsv`) in this run.", ""]
    table = pd.read_csv(path, sep="\t")
    total = float(table["total_s"].sum())
    lines += [f"Per rule, from every job's benchmark file (`results/benchmarks/rules.tsv`); the sum of the jobs' wall "
              f"times is {total / 60:.1f} min (jobs run side by side, so it exceeds the run's wall time).", ""]
    rows = [[r["rule"], int(r["jobs"]), f"{r['total_s']:.1f}", f"{r['median_s']:.1f}", f"{r['max_s']:.1f}",
             "" if pd.isna(r["max_rss_mb"]) else f"{r['max_rss_mb']:.0f}"] for _, r in table.iterrows()]
    return lines + markdown_table(["rule", "jobs", "total s", "median s", "max s", "max RSS MB"], rows) + [""]


def export(results: str | Path, out: str | Path, *, configfile: str = "config/study.yaml", commit: str | None = None,
           machine: str | None = None, wall_time: str | None = None, notes: str | Path | None = None,
           out_name: str | None = None) -> Path:
    """Write the study's outcome from ``results`` into ``out`` (module doc); returns the index path."""
    results, out = Path(results), Path(out)
    if not (results / "stats").is_dir():
        raise InputError(str(results), "has no stats/ folder (not a finished run's results folder)",
                         "pass the results/ folder of a run that finished, e.g. results")
    out.mkdir(parents=True, exist_ok=True)
    _clear_previous(out)
    figures = export_figure_tables(results, out)
    summaries = export_summaries(results, out)
    claims, claims_source = export_claims(results, out)

    out_name = out_name or out.as_posix()
    lines = ["# Results of the study", ""]
    if notes:
        lines += [Path(notes).read_text().strip(), ""]
    lines += [f"- Commit: `{commit or git_commit(results)}`",
              f"- Configuration: `{configfile}`",
              f"- Machine: {machine or machine_description() + ' (the machine that ran the exporter)'}",
              f"- Run finished: {run_date(results)}; exported {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M UTC}",
              "", "## Regenerate", "", "```sh",
              f"snakemake --configfile {configfile} --cores 2",
              f"python -m livaebench.study_docs {results.as_posix()} {out_name} --configfile {configfile}",
              "```", ""]
    if summaries:
        lines += ["## Ranked summary", ""]
        for modality, files in summaries.items():
            title = MODALITY_TITLES.get(modality, modality)
            lines += [f"### {title}", ""]
            if "figure" in files:
                lines += [f"![Ranked summary, {title}]({files['figure']})", ""]
            if "cd" in files:
                lines += [f"![Critical-difference diagram, {title}]({files['cd']})", ""]
            lines += [f"Leaderboard as a table: [{files['table']}]({files['table']}).", ""]
    counts = claims["verdict"].value_counts()
    lines += ["## The paper's claims", "",
              f"[claims.md](claims.md) ([claims.tsv](claims.tsv)), {claims_source}: "
              + ", ".join(f"{v} {int(c)}" for v, c in counts.items()) + ".", ""]
    lines += ["## Paired tests, one file per paper figure", ""]
    lines += [f"- [{title}](tables/{stem}.md): {', '.join(f'`{n}`' for n in names)}"
              for stem, (title, names) in figures.items()] + [""]
    lines += run_time_lines(results, wall_time)
    index = out / "README.md"
    index.write_text("\n".join(lines).rstrip() + "\n")
    return index


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m livaebench.study_docs", description=__doc__.split("\n\n")[0])
    parser.add_argument("results", help="the run's results/ folder")
    parser.add_argument("out", help="where to write (docs/results)")
    parser.add_argument("--configfile", default="config/study.yaml",
                        help="the config the run used (stated in the index)")
    parser.add_argument("--commit", help="commit of the run's checkout (default: git rev-parse HEAD there)")
    parser.add_argument("--machine", help="the machine that ran the study (default: this machine)")
    parser.add_argument("--wall-time", help="the run's wall time, e.g. '84 min'")
    parser.add_argument("--notes", help="a markdown file whose text opens the index (e.g. the study's reductions)")
    args = parser.parse_args(argv)
    try:
        index = export(args.results, args.out, configfile=args.configfile, commit=args.commit, machine=args.machine,
                       wall_time=args.wall_time, notes=args.notes)
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"wrote {index}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
