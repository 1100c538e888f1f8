"""Benchmark: the cycle-level simulator on dense AlexNet (8 compute layers, batch 1).

Runs systolic-os-32x32 and systolic-ws-128x128, each with ideal and with real (LPDDR4) memory,
numerics included (every layer's output computed through the dataflow and checked against the
reference), and prints a Markdown table: wall time, simulated cycles, simulated cycles per
wall-clock second, and memory. Goal: all four runs together within 10 s and 1 GB on 2 cores.

Memory: ``ru_maxrss`` of this process (Linux: KiB), the peak resident set so far, so it includes
building AlexNet and its workload (the torch model and the numpy copies of its 61M weights) before
the first simulation; the table shows it after the build and after each run, and the header the
resident set once the model is freed (what the simulations start from).

Usage: ``.venv/bin/python benchmarks/simulate_alexnet.py [--seed N] [--repeat R]`` (with R > 1 the
table reports the fastest of R runs per configuration).
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hwmodels.hardware import load_hardware  # noqa: E402
from sim.api import profile_workloads  # noqa: E402
from sim.simulate import simulate  # noqa: E402

CONFIGS = (("systolic-os-32x32", True), ("systolic-os-32x32", False),
           ("systolic-ws-128x128", True), ("systolic-ws-128x128", False))


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float | None:
    """Resident set now (Linux /proc), to tell the simulation's own footprint from the build's."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()

    start = time.perf_counter()
    workload = profile_workloads("alexnet", None, args.seed)["dense"]
    build_s = time.perf_counter() - start
    build_rss, resident = peak_rss_mb(), current_rss_mb()
    rows = []
    total_s = 0.0
    for name, ideal in CONFIGS:
        hw = load_hardware(name)
        best = None
        for _ in range(args.repeat):
            start = time.perf_counter()
            results = simulate(workload, hw, ideal_memory=ideal, numerics=True).layers
            wall = time.perf_counter() - start
            best = wall if best is None else min(best, wall)
        assert results["numerics_checked"].all()
        cycles = int(results["cycles"].sum())
        total_s += best
        rows.append((name, "ideal" if ideal else "LPDDR4 25.6 GB/s", best, cycles, cycles / best,
                     float(results["numerics_rel_error"].max()), peak_rss_mb()))

    print(f"Dense AlexNet (8 layers, batch 1), numerics checked; workload built in {build_s:.2f} s, "
          f"peak RSS after the build {build_rss:,.0f} MB"
          + (f" (resident once the torch model is freed: {resident:,.0f} MB)" if resident else "") + ".\n")
    print("| hardware | memory | wall s | simulated cycles | cycles per wall s | max rel. error | peak RSS MB |")
    print("|---|---|---|---|---|---|---|")
    for name, memory, wall, cycles, rate, error, rss in rows:
        print(f"| {name} | {memory} | {wall:.2f} | {cycles:,} | {rate:,.0f} | {error:.1e} | {rss:,.0f} |")
    print(f"| **all four** | | **{total_s:.2f}** | | | | **{peak_rss_mb():,.0f}** |")
    goal = total_s <= 10 and peak_rss_mb() <= 1024
    print(f"\nGoal (all four within 10 s and 1 GB): {'met' if goal else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
