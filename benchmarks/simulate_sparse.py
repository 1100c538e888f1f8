"""Benchmark: the EIE-like sparse array (eie-64pe) on AlexNet and VGG-16 pruned by Han's profile,
numerics included, and golden mode's speed on a small layer.

1. ``prunesim simulate --model M --profile han2015 --hw eie-64pe`` end to end (a subprocess: imports,
   building the dense and the pruned workload, simulating both, numerics checked, files written).
   Goal from issue 6: AlexNet within 5 s, VGG-16 within 30 s on the 2-core machine.
2. The same simulation in process, split: building the workloads, and simulating each variant.
3. Golden mode: LeNet-300-100's fc1, pruned (Han profile), cycle by cycle on eie-64pe, and LeNet-5's
   conv2 on systolic-ws-32x32 (ideal memory): wall time and simulated cycles per wall second, the
   fast model's time for the same layer beside it.

Usage: ``.venv/bin/python benchmarks/simulate_sparse.py [--models alexnet,vgg-16] [--skip-cli]``.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hwmodels.hardware import load_hardware  # noqa: E402
from sim.api import profile_workloads, resolve_profile  # noqa: E402
from sim.golden import golden_eie, golden_systolic  # noqa: E402
from sim.simulate import simulate, simulate_layer  # noqa: E402

GOALS = {"alexnet": 5.0, "vgg-16": 30.0}


def cli_seconds(model: str) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of the simulate command, run as a user would."""
    with tempfile.TemporaryDirectory() as out:
        command = [str(ROOT / ".venv" / "bin" / "prunesim"), "simulate", "--model", model, "--profile", "han2015",
                   "--hw", "eie-64pe", "--quiet", "--out", str(Path(out) / "run")]
        start = time.perf_counter()
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        subprocess.run(command, check=True, capture_output=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
        wall = time.perf_counter() - start
        return wall, max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024


def in_process(model: str) -> dict:
    start = time.perf_counter()
    workloads = profile_workloads(model, resolve_profile(model, "han2015", None), 0)
    out = {"build": time.perf_counter() - start}
    hw = load_hardware("eie-64pe")
    for variant, workload in workloads.items():
        start = time.perf_counter()
        layers = simulate(workload, hw).layers
        out[variant] = time.perf_counter() - start
        assert layers["numerics_exact"].all()
        out[f"{variant}_cycles"] = int(layers["cycles"].sum())
    return out


def golden_rows() -> list[tuple]:
    rows = []
    cases = (("lenet-300-100", "fc1", "eie-64pe"), ("lenet-5", "conv2", "systolic-ws-32x32"))
    for model, name, hw_name in cases:
        layer = profile_workloads(model, resolve_profile(model, "han2015", None), 0)["pruned"].layer(name)
        hw = load_hardware(hw_name)
        start = time.perf_counter()
        fast = simulate_layer(layer, hw, ideal_memory=True, numerics=False, loop_order="auto" if hw_name ==
                              "eie-64pe" else "fold")
        fast_s = time.perf_counter() - start
        start = time.perf_counter()
        cycles = golden_eie(layer, hw).cycles if hw_name == "eie-64pe" else golden_systolic(layer, hw.mac_array).cycles
        golden_s = time.perf_counter() - start
        assert cycles == fast.record["compute_cycles"]
        rows.append((f"{model} {name} (pruned)", hw_name, layer.dense_macs, cycles, golden_s, cycles / golden_s, fast_s))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="alexnet,vgg-16")
    parser.add_argument("--skip-cli", action="store_true")
    args = parser.parse_args()
    models = args.models.split(",")
    print(f"eie-64pe, Han 2015 profile (dense and pruned variants), numerics checked; {os.cpu_count()} CPUs, "
          f"{time.strftime('%Y-%m-%d')}\n")
    if not args.skip_cli:
        print("| command | wall s | goal s | peak RSS MB |")
        print("|---|---|---|---|")
        for model in models:
            wall, rss = cli_seconds(model)
            print(f"| `prunesim simulate --model {model} --profile han2015 --hw eie-64pe` | {wall:.1f} | "
                  f"{GOALS.get(model, float('nan')):.0f} | {rss:,.0f} |")
        print()
    print("| model | build workloads s | simulate dense s | simulate pruned s | pruned cycles | dense cycles |")
    print("|---|---|---|---|---|---|")
    for model in models:
        r = in_process(model)
        print(f"| {model} | {r['build']:.1f} | {r['dense']:.1f} | {r['pruned']:.1f} | {r['pruned_cycles']:,} | "
              f"{r['dense_cycles']:,} |")
    print("\nGolden mode (cycle by cycle) on small layers:\n")
    print("| layer | hardware | dense MACs | cycles | golden s | cycles per golden s | fast s |")
    print("|---|---|---|---|---|---|---|")
    for name, hw_name, macs, cycles, golden_s, rate, fast_s in golden_rows():
        print(f"| {name} | {hw_name} | {macs:,} | {cycles:,} | {golden_s:.2f} | {rate:,.0f} | {fast_s:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
