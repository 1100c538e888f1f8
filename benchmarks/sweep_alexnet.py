"""Benchmark: a 500-point design-space sweep of pruned AlexNet, on the local pool and on Dask.

Runs ``benchmarks/sweeps/alexnet-500.yaml`` (PE count x SRAM size x precision x sparsity support,
500 points drawn with seed 0, AlexNet under Han 2015's profile, analytical mode) twice into fresh
folders: on the local process pool (``--workers``, default the machine's cores) and on a Dask
``LocalCluster`` of 2 single-threaded worker processes; asserts that both give identical tables
(results, totals, Pareto front, and byte-identical results.parquet), and prints a Markdown table:
wall time (worker start-up, each worker building AlexNet once, every point, writing the files),
points per second over that, and points per second once the first point is in (the steady
rate, start-up excluded); writes the table, the Pareto front and its plot to
``benchmarks/results/sweep-alexnet-500.md`` and ``sweep-alexnet-500-pareto.png``.

Usage: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/sweep_alexnet.py [--workers N] [--keep DIR]``
(``--keep DIR``: write the two sweeps under DIR instead of a temporary folder, e.g. to look at
``pareto_alexnet-han2015.png``).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sim.executors import LocalPool, dask_executor  # noqa: E402
from sim.report import to_markdown, write_files  # noqa: E402
from sim.sweep import run_sweep  # noqa: E402
from sim.sweepfile import load_sweep  # noqa: E402

SWEEP = Path(__file__).resolve().parent / "sweeps" / "alexnet-500.yaml"
RESULTS = Path(__file__).resolve().parent / "results"


class Timed:
    """An executor that notes when each point comes back (for the steady rate)."""

    def __init__(self, executor):
        self.executor, self.times = executor, []

    def map_unordered(self, function, context, items):
        for pair in self.executor.map_unordered(function, context, items):
            self.times.append(time.perf_counter())
            yield pair


def timed_run(sweep, out: Path, executor) -> tuple[object, dict]:
    timed = Timed(executor)
    start = time.perf_counter()
    result = run_sweep(sweep, out, timed, progress=True)
    wall = time.perf_counter() - start
    points = len(timed.times)
    steady = (points - 1) / (timed.times[-1] - timed.times[0]) if points > 1 else float("nan")
    return result, {"points": points, "wall_s": wall, "points_per_s": points / wall, "steady_points_per_s": steady,
                    "first_point_s": timed.times[0] - start}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    parser.add_argument("--keep", type=Path, help="write the sweeps under this folder (default: a temporary one)")
    args = parser.parse_args()
    sweep = load_sweep(SWEEP)
    load_before = os.getloadavg()[0]  # the machine is shared: say how busy it was
    with tempfile.TemporaryDirectory() as scratch:
        root = args.keep or Path(scratch)
        for name in ("pool", "dask"):
            if (root / name).exists():
                raise SystemExit(f"{root / name} exists: the benchmark needs fresh folders")
        pool, pool_time = timed_run(sweep, root / "pool", LocalPool(args.workers))
        with dask_executor(local_workers=2) as executor:
            dask, dask_time = timed_run(sweep, root / "dask", executor)
        for table in ("results", "totals", "pareto"):
            pd.testing.assert_frame_equal(getattr(pool, table), getattr(dask, table))
        assert (root / "pool" / "results.parquet").read_bytes() == (root / "dask" / "results.parquet").read_bytes()
        plot = (root / "pool" / "pareto_alexnet-han2015.png").read_bytes()
    feasible = int(pool.totals["feasible"].sum())
    lines = [f"# {len(sweep.points())}-point sweep of pruned AlexNet (benchmarks/sweeps/{SWEEP.name})", "",
             f"{feasible} feasible points, {len(pool.results)} result rows, {len(pool.pareto)} on the Pareto "
             "front (energy, latency, area); pool and Dask results identical. "
             f"{os.cpu_count()} cores; 1-minute load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after.", "",
             "| runner | points | wall s | points/s | steady points/s | first point s |", "|---|---|---|---|---|---|"]
    for name, figures in ((f"local pool, {args.workers} workers", pool_time), ("Dask LocalCluster, 2 workers", dask_time)):
        lines.append(f"| {name} | {figures['points']} | {figures['wall_s']:.1f} | {figures['points_per_s']:.2f} | "
                     f"{figures['steady_points_per_s']:.2f} | {figures['first_point_s']:.1f} |")
    columns = ["best_for", "point_id", *sweep.parameters, "energy_pj", "latency_us", "area_mm2"]
    lines += ["", "Pareto front (energy pJ, latency µs, area mm²; best point per objective named):", "",
              to_markdown(pool.pareto[columns]), "![Pareto fronts](sweep-alexnet-500-pareto.png)", ""]
    text = "\n".join(lines)
    print("\n" + text)
    for path in write_files(RESULTS, {"sweep-alexnet-500.md": text, "sweep-alexnet-500-pareto.png": plot}):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":  # the pool spawns workers that import this file: run only when run
    sys.exit(main())
