"""Benchmark: the EIE-like sparse array (eie-64pe) on AlexNet and VGG-16 pruned by Han's profile,
numerics included, and golden mode's speed on a small layer.

1. ``prunesim simulate --model M --profile han2015 --hw eie-64pe --no-dense`` (the pruned network
   alone, as the goal names it) and the same without ``--no-dense`` (the dense baseline as well)
   end to end (a subprocess: imports, building the workloads, simulating, numerics checked, files written):
   wall seconds, user + system CPU seconds, peak RSS, and the machine's load average before the run
   (other jobs share the 2 cores, so wall ≥ CPU when they run). Goal from issue 6: AlexNet within
   5 s, VGG-16 within 30 s on the 2-core machine.
2. Where that time goes: the ``--no-dense`` command once more in a fresh process (``--phases M``), one
   layer at a time (``--threads 1``, so that the CPU seconds of the stages add up), with timers
   around its stages (imports; building the model, tracing, pruning; per layer quantising, encoding,
   the cycle model, the simulated sums, the reference; the records; the report files), CPU seconds.
3. Golden mode: LeNet-300-100's fc1, pruned (Han profile), cycle by cycle on eie-64pe, and LeNet-5's
   conv2 on systolic-ws-32x32 (ideal memory): wall time and simulated cycles per wall second, the
   fast model's time for the same layer beside it.

Usage: ``.venv/bin/python benchmarks/simulate_sparse.py [--models alexnet,vgg-16] [--skip-cli]
[--skip-phases] [--skip-golden]``. Torch runs on one thread (OMP_NUM_THREADS=1), as in the other
benchmarks.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GOALS = {"alexnet": 5.0, "vgg-16": 30.0}
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
# (module, function, stage) timed by --phases; the sim.eie ones run once per layer and variant.
STAGES = (
    ("sim.api", "build_model", "build model"), ("sim.api", "extract_workload", "trace (forward pass)"),
    ("sim.api", "apply_profile", "prune to the profile"),
    ("sim.eie", "prepare", "quantise and lower"), ("sim.eie", "encode_layer", "encode (entries, fillers)"),
    ("sim.eie", "count_layer", "cycle model and counts"), ("sim.eie", "accumulate", "simulated sums"),
    ("sim.eie", "reference_products", "reference (scipy CSR)"), ("sim.eie", "eie_actions", "price actions"),
    ("sim.simulate", "_eie_record", "result records"), ("sim.simulate", "render_files", "report files"),
)


def _simulate_command(model: str, out: str, dense: bool = True, hw: str = "eie-64pe") -> list[str]:
    return ["simulate", "--model", model, "--profile", "han2015", "--hw", hw, "--quiet", "--out", out,
            *([] if dense else ["--no-dense"])]


def cli_run(model: str, dense: bool = True, hw: str = "eie-64pe") -> dict:
    """Wall and CPU seconds, peak RSS (MB) and prior load average of the simulate command."""
    with tempfile.TemporaryDirectory() as out:
        command = [str(ROOT / ".venv" / "bin" / "prunesim"),
                   *_simulate_command(model, str(Path(out) / "run"), dense, hw)]
        load = os.getloadavg()[0]
        start = time.perf_counter()
        child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=ENV)
        _, status, usage = os.wait4(child.pid, 0)  # this child's own CPU time and peak RSS
        wall = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)
        errors = child.stderr.read().decode()
        child.stderr.close()
        if child.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed: {errors[-2000:]}")
        return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "rss": usage.ru_maxrss / 1024, "load": load}


def phases(model: str) -> None:
    """(In a fresh process.) Run the simulate command with CPU timers around its stages; print JSON."""
    start = time.process_time()
    import importlib

    import sim.cli
    import sim.simulate  # noqa: F401  (imported by the command itself; here before timing)

    totals = {"imports": time.process_time() - start}

    def timed(function, stage):
        def wrapper(*args, **kwargs):
            begin = time.process_time()
            try:
                return function(*args, **kwargs)
            finally:
                totals[stage] = totals.get(stage, 0.0) + time.process_time() - begin
        return wrapper

    for module_name, name, stage in STAGES:
        module = importlib.import_module(module_name)
        setattr(module, name, timed(getattr(module, name), stage))
    with tempfile.TemporaryDirectory() as out:
        # One layer at a time: process CPU time is what the timers read, and two threads would count twice.
        sys.argv = ["prunesim", *_simulate_command(model, str(Path(out) / "run"), dense=False), "--threads", "1"]
        with open(os.devnull, "w") as sink:
            stdout, sys.stdout = sys.stdout, sink
            try:
                sim.cli.main()
            finally:
                sys.stdout = stdout
    totals["total"] = time.process_time()  # this process's CPU since it started
    print(json.dumps(totals))


def phase_run(model: str) -> dict:
    result = subprocess.run([sys.executable, __file__, "--phases", model], check=True, capture_output=True,
                            text=True, env=ENV)
    return json.loads(result.stdout.splitlines()[-1])


def golden_rows() -> list[tuple]:
    from hwmodels.hardware import load_hardware
    from sim.api import profile_workloads, resolve_profile
    from sim.golden import golden_eie, golden_systolic
    from sim.simulate import simulate_layer

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
        golden = golden_eie(layer, hw) if hw_name == "eie-64pe" else golden_systolic(layer, hw.mac_array)
        cycles = golden.cycles
        golden_s = time.perf_counter() - start
        assert cycles == fast.record["compute_cycles"]
        rows.append((f"{model} {name} (pruned)", hw_name, layer.dense_macs, cycles, golden_s, cycles / golden_s,
                     fast_s))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="alexnet,vgg-16")
    parser.add_argument("--skip-cli", action="store_true")
    parser.add_argument("--skip-phases", action="store_true")
    parser.add_argument("--skip-golden", action="store_true")
    parser.add_argument("--phases", metavar="MODEL", help=argparse.SUPPRESS)  # the child of step 2
    args = parser.parse_args()
    if args.phases:
        phases(args.phases)
        return 0
    models = args.models.split(",")
    print(f"eie-64pe, Han 2015 profile, numerics checked; {os.cpu_count()} CPUs, "
          f"{time.strftime('%Y-%m-%d')}\n")
    if not args.skip_cli:
        print("| command | wall s | user+sys CPU s | goal s | peak RSS MB | load avg before |")
        print("|---|---|---|---|---|---|")
        for model in models:
            for dense in (False, True):  # the pruned variant alone (the goal's command), then with the dense one
                r = cli_run(model, dense)
                print(f"| `prunesim simulate --model {model} --profile han2015 --hw eie-64pe"
                      f"{'' if dense else ' --no-dense'}` | {r['wall']:.1f} | {r['cpu']:.1f} | "
                      f"{GOALS.get(model, float('nan')):.0f} | {r['rss']:,.0f} | {r['load']:.2f} |")
        print()
    if not args.skip_phases:
        results = {model: phase_run(model) for model in models}
        print("CPU seconds by stage (one run each of the --no-dense command, --threads 1):\n")
        print("| stage | " + " | ".join(models) + " |")
        print("|---|" + "---|" * len(models))
        for stage in ("imports", *(s for _, _, s in STAGES), "total"):
            print(f"| {stage} | " + " | ".join(f"{results[m].get(stage, 0.0):.2f}" for m in models) + " |")
        print()
    if not args.skip_golden:
        print("Golden mode (cycle by cycle) on small layers:\n")
        print("| layer | hardware | dense MACs | cycles | golden s | cycles per golden s | fast s |")
        print("|---|---|---|---|---|---|---|")
        for name, hw_name, macs, cycles, golden_s, rate, fast_s in golden_rows():
            print(f"| {name} | {hw_name} | {macs:,} | {cycles:,} | {golden_s:.2f} | {rate:,.0f} | {fast_s:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
