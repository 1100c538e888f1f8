"""Benchmark: the sparse systolic preset (``systolic-ws-32x32-sparse``, sim/compaction.py) on AlexNet
and VGG-16 pruned by Han's profile, numerics included, as issue 6 asks of a sparse systolic design
(AlexNet within 5 s, VGG-16 within 30 s on the 2-core machine); where the time goes; and golden
mode's speed on a small layer.

1. ``prunesim simulate --model M --profile han2015 --hw systolic-ws-32x32-sparse --no-dense`` (the
   pruned network alone, as the goal names it) and without ``--no-dense`` (the dense baseline too)
   end to end (a subprocess, as a user runs it: imports, workloads built, simulated with numerics,
   files written), via :func:`simulate_sparse.cli_run`.
2. In process: building the workloads, then simulating each variant (:func:`in_process`),
   on the sparse preset and, for scale, on the dense ``systolic-ws-32x32`` it derives from.
3. cProfile of the pruned variant's simulation: the functions with the most cumulative time.
4. Golden mode on LeNet-5's conv2 (pruned) on the sparse preset, against the fast model.

Usage: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/simulate_sparse_systolic.py [--models alexnet,vgg-16]
[--skip-cli] [--top 12]``.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from hwmodels.hardware import load_hardware  # noqa: E402
from sim.api import profile_workloads, resolve_profile  # noqa: E402
from sim.golden import golden_systolic  # noqa: E402
from sim.simulate import simulate, simulate_layer  # noqa: E402
from simulate_sparse import GOALS, cli_run  # noqa: E402

HW = "systolic-ws-32x32-sparse"
BASELINE = "systolic-ws-32x32"


def in_process(model: str, hw_name: str) -> dict:
    """Seconds to build both workloads and to simulate each variant (numerics on), and the cycles."""
    start = time.perf_counter()
    workloads = profile_workloads(model, resolve_profile(model, "han2015", None), 0)
    result = {"build": time.perf_counter() - start}
    hw = load_hardware(hw_name)
    for variant, workload in workloads.items():
        start = time.perf_counter()
        layers = simulate(workload, hw).layers
        result[variant] = time.perf_counter() - start
        result[f"{variant}_cycles"] = int(layers["cycles"].sum())
    return result


def profile_pruned(model: str, top: int) -> str:
    """The ``top`` functions by cumulative time while simulating ``model``'s pruned variant."""
    pruned = profile_workloads(model, resolve_profile(model, "han2015", None), 0)["pruned"]
    profiler = cProfile.Profile()
    profiler.enable()
    simulate(pruned, load_hardware(HW))
    profiler.disable()
    stream = io.StringIO()
    pstats.Stats(profiler, stream=stream).sort_stats("cumulative").print_stats(top)
    return stream.getvalue()


def golden_row() -> tuple:
    layer = profile_workloads("lenet-5", resolve_profile("lenet-5", "han2015", None), 0)["pruned"].layer("conv2")
    hw = load_hardware(HW)
    start = time.perf_counter()
    fast = simulate_layer(layer, hw, ideal_memory=True, numerics=False, loop_order="fold")
    fast_s = time.perf_counter() - start
    start = time.perf_counter()
    cycles = golden_systolic(layer, hw).cycles
    golden_s = time.perf_counter() - start
    assert cycles == fast.record["compute_cycles"]
    return layer.dense_macs, cycles, golden_s, fast_s


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="alexnet,vgg-16")
    parser.add_argument("--skip-cli", action="store_true")
    parser.add_argument("--top", type=int, default=12, help="functions of the cProfile listing (0: none)")
    args = parser.parse_args()
    models = args.models.split(",")
    print(f"{HW}, Han 2015 profile, numerics checked; {time.strftime('%Y-%m-%d')}\n")
    if not args.skip_cli:
        print("| command | wall s | user+sys CPU s | goal s | peak RSS MB | load avg before |")
        print("|---|---|---|---|---|---|")
        for model in models:
            for dense in (False, True):
                r = cli_run(model, dense, HW)
                print(f"| `prunesim simulate --model {model} --profile han2015 --hw {HW}"
                      f"{'' if dense else ' --no-dense'}` | {r['wall']:.1f} | {r['cpu']:.1f} | "
                      f"{GOALS.get(model, float('nan')):.0f} | {r['rss']:,.0f} | {r['load']:.2f} |")
        print()
    print("| model | hardware | build workloads s | simulate dense s | simulate pruned s | pruned cycles | dense cycles |")
    print("|---|---|---|---|---|---|---|")
    for model in models:
        for hw in (HW, BASELINE):
            r = in_process(model, hw)
            print(f"| {model} | {hw} | {r['build']:.1f} | {r['dense']:.1f} | {r['pruned']:.1f} | "
                  f"{r['pruned_cycles']:,} | {r['dense_cycles']:,} |")
    if args.top:
        for model in models:
            print(f"\ncProfile, {model} pruned on {HW} (numerics on):\n")
            print(profile_pruned(model, args.top))
    macs, cycles, golden_s, fast_s = golden_row()
    print("\n| layer | hardware | dense MACs | cycles | golden s | cycles per golden s | fast s |")
    print("|---|---|---|---|---|---|---|")
    print(f"| lenet-5 conv2 (pruned) | {HW} | {macs:,} | {cycles:,} | {golden_s:.2f} | {cycles / golden_s:,.0f} | "
          f"{fast_s:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
