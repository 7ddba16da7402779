"""Wall time of the default run, as a user starts it, in a fresh copy of the checkout.

    python benchmarks/default_run.py [--ref HEAD] [--cores 2] [--workdir DIR] [--keep] [-- EXTRA SNAKEMAKE ARGS]

The committed tree of ``--ref`` (``git archive``: no results, no ``.snakemake``, nothing uncommitted) is
unpacked into a new folder, and the README's run command (``snakemake --cores N``, the default config on the
data in ``resources/``) runs there, with the copy's own library first on ``PYTHONPATH`` so that the code
measured is the ref's, not an installed one. Measure on a quiet machine: a second process slows every
2-thread job many-fold.

Printed: the per-rule table of the run (``results/benchmarks/rules.tsv``, which the workflow writes itself
from every job's ``benchmark:`` file: jobs, total/median/max seconds, peak RSS), then the wall time of the
whole command. The last line is machine-readable: ``default_run_wall_s=<seconds>``; the goal is <= 600 on a
quiet 2-core machine.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]


def fresh_copy(ref: str, dest: Path) -> None:
    """The committed tree of ``ref`` unpacked into ``dest`` (a clean checkout without git metadata)."""
    dest.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", ref], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ref", default="HEAD", help="the commit to measure (default HEAD)")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=None, help="where the copy goes (default: a temp folder)")
    parser.add_argument("--keep", action="store_true", help="keep the copy and its results")
    parser.add_argument("extra", nargs="*", help="more snakemake arguments (after --)")
    args = parser.parse_args(argv)

    root = args.workdir or Path(tempfile.mkdtemp(prefix="livaebench-default-run-"))
    work = root / "checkout"
    fresh_copy(args.ref, work)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(work / "workflow" / "lib"),
                                                                      os.environ.get("PYTHONPATH")])))
    command = [sys.executable, "-m", "snakemake", "--cores", str(args.cores), *args.extra]
    print(f"running `{' '.join(command[1:])}` in {work} (ref {args.ref})", flush=True)
    start = time.perf_counter()
    result = subprocess.run(command, cwd=work, env=env)
    wall = time.perf_counter() - start
    try:
        if result.returncode != 0:
            print(f"the run failed (exit {result.returncode}); its log: {work}/.snakemake/log/", file=sys.stderr)
            return result.returncode
        table = pd.read_csv(work / "results" / "benchmarks" / "rules.tsv", sep="\t")
        print(table.to_string(index=False))
        print(f"jobs with a benchmark file: {int(table['jobs'].sum())}; sum of their wall times "
              f"{table['total_s'].sum():.0f} s on {args.cores} cores")
        print(f"default_run_wall_s={wall:.1f}")
        return 0
    finally:
        if not args.keep and args.workdir is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
