"""Issue 3's figures: Han's method on real data, run as a user runs it (the ``prunesim`` CLI).

    .venv/bin/python benchmarks/han_mnist.py [--only NAME ...] [--out benchmarks/runs]

Each entry is one ``prunesim prune`` command; its ``report/summary.json`` (test errors,
compression, energy, wall time) becomes one row of ``benchmarks/results/han_mnist.md``, which
BENCHMARKS.md quotes with the machine and date. Finished runs are reused (``--resume``), so an
interrupted benchmark continues where it stopped.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# name: (prunesim prune arguments, what it shows)
RUNS = {
    "lenet-300-100-mnist-12x": (
        ["--model", "lenet-300-100", "--data", "mnist", "--target", "12x", "--iterations", "5",
         "--retrain-epochs", "20", "--retrain-lr", "0.05"],
        "Han Table 1: ≥12× with test error ≤ 1.60% (Han: 1.59%)"),
    "lenet-5-mnist-12x": (
        ["--model", "lenet-5", "--data", "mnist", "--target", "12x", "--iterations", "4",
         "--retrain-epochs", "10", "--retrain-lr", "0.01"],
        "Han Table 1: ≥12× with test error ≤ 0.80% (Han: 0.77%)"),
    "lenet-5-mnist-12x-seed1": (
        ["--model", "lenet-5", "--data", "mnist", "--target", "12x", "--iterations", "4",
         "--retrain-epochs", "10", "--retrain-lr", "0.01", "--seed", "1"],
        "seed spread of the LeNet-5 figure"),
    "lenet-5-mnist-12x-seed2": (
        ["--model", "lenet-5", "--data", "mnist", "--target", "12x", "--iterations", "4",
         "--retrain-epochs", "10", "--retrain-lr", "0.01", "--seed", "2"],
        "seed spread of the LeNet-5 figure"),
    **{f"lenet-5-mnist-12x-shift2{'' if seed == 0 else f'-seed{seed}'}": (
        ["--model", "lenet-5", "--data", "mnist", "--target", "12x", "--iterations", "4",
         "--retrain-epochs", "10", "--retrain-lr", "0.01", "--augment-shift", "2",
         *(["--seed", str(seed)] if seed else [])],
        "the LeNet-5 figure with training images shifted by up to 2 pixels (Han: no augmentation)")
       for seed in (0, 1, 2)},
    "lenet-300-100-fashion-12x": (
        ["--model", "lenet-300-100", "--data", "fashion-mnist", "--target", "12x", "--iterations", "5",
         "--retrain-epochs", "20", "--retrain-lr", "0.05"],
        "Fashion-MNIST, no paper figure"),
    "lenet-5-fashion-12x": (
        ["--model", "lenet-5", "--data", "fashion-mnist", "--target", "12x", "--iterations", "4",
         "--retrain-epochs", "10", "--retrain-lr", "0.01"],
        "Fashion-MNIST, no paper figure"),
    "lenet-5-fashion-12x-shift2": (
        ["--model", "lenet-5", "--data", "fashion-mnist", "--target", "12x", "--iterations", "4",
         "--retrain-epochs", "10", "--retrain-lr", "0.01", "--augment-shift", "2"],
        "Fashion-MNIST with training images shifted by up to 2 pixels"),
    "lenet-300-100-mnist-50x-oneshot": (
        ["--model", "lenet-300-100", "--data", "mnist", "--target", "50x", "--iterations", "1",
         "--retrain-epochs", "100", "--retrain-lr", "0.05"],
        "one-shot to 50×, 100 retraining epochs"),
    "lenet-300-100-mnist-50x-iterative": (
        ["--model", "lenet-300-100", "--data", "mnist", "--target", "50x", "--iterations", "5",
         "--retrain-epochs", "20", "--retrain-lr", "0.05"],
        "iterative to 50×: 5 rounds × 20 epochs, the same 100 retraining epochs"),
}


def run(name: str, out: Path) -> dict:
    arguments, _ = RUNS[name]
    run_dir = out / name
    command = [str(ROOT / ".venv" / "bin" / "prunesim"), "prune", *arguments, "--run-dir", str(run_dir), "--quiet"]
    if (run_dir / "settings.json").exists():
        command.append("--resume")
    summary_path = run_dir / "report" / "summary.json"
    # A finished run resumed only re-reports: its wall time is that of the original run.
    finished_wall_s = json.loads(summary_path.read_text())["wall_s"] if summary_path.exists() else None
    print("$", " ".join(command), flush=True)
    subprocess.run(command, check=True, cwd=ROOT)
    summary = json.loads(summary_path.read_text())
    if finished_wall_s is not None:
        summary["wall_s"] = finished_wall_s
    summary["command"] = "prunesim prune " + " ".join(arguments)
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", choices=list(RUNS), help="run these entries only")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "runs"), help="run folders")
    args = parser.parse_args()
    names = args.only or list(RUNS)
    results_path = ROOT / "benchmarks" / "results" / "han_mnist.json"
    for name in names:
        summary = run(name, Path(args.out))
        summary["machine"] = f"{platform.node()} ({os.cpu_count()} cores, {platform.machine()})"
        summary["date"] = datetime.date.today().isoformat()
        # Re-read before writing: several benchmark processes may share this file.
        results = json.loads(results_path.read_text()) if results_path.exists() else {}
        results[name] = summary
        results_path.parent.mkdir(parents=True, exist_ok=True)
        results_path.write_text(json.dumps(results, indent=2) + "\n")
    results = json.loads(results_path.read_text())
    lines = ["| run | what it shows | test error dense → pruned | weights kept | compression | FLOP left | "
             "energy saving (han45nm) | wall time | command |", "|---|---|---|---|---|---|---|---|---|"]
    for name, summary in results.items():
        lines.append(
            f"| {name} | {RUNS.get(name, ('', '?'))[1]} | {summary['dense_test_error_pct']:.2f}% → "
            f"{summary['pruned_test_error_pct']:.2f}% | {summary['kept_weights']:,} / {summary['weights']:,} | "
            f"{summary['compression']:.1f}× | {summary['flop_pct']:.1f}% | {summary['energy_saving']:.1f}× | "
            f"{summary['wall_s']:.0f} s | `{summary['command']}` |")
    (ROOT / "benchmarks" / "results" / "han_mnist.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
