"""NN relief at 98–99% sparsity: the options of :class:`pruning.methods.relief.NNRelief` against
its defaults, with global magnitude pruning beside them, on a short LeNet-300-100 run.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/relief_high_sparsity.py

One dense network (first ``--limit`` MNIST training images, a fifth held out for validation,
``--epochs`` dense epochs); every variant prunes a copy up the ladder 90 → 95 → 98 → 99% with
``--rounds`` geometric rounds per rung and ``--retrain-epochs`` after every round (the
``prunesim compare`` schedule). Prints and writes ``benchmarks/results/relief-high-sparsity.md``
(``--out``):
test accuracy per rung, and at each rung the per-layer densities and the hidden neurons left.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import pandas as pd
import torch

from pruning.datasets import load_dataset
from pruning.han import copy_model, find_dead_neurons
from pruning.magnitude import prunable_layers, weight_density
from pruning.methods import make_method
from pruning.pipeline import MethodSchedule, run_method
from pruning.train import evaluate, train
from pruning.zoo import build_model
from sim.jobs import PruneSettings
from sim.report import to_markdown, write_files

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"
LADDER = (0.9, 0.95, 0.98, 0.99)
VARIANTS = {
    # "relief": the recorded runs' settings, from before backward pruning became the default.
    "relief": ("relief", {"backward": False}),
    "relief alpha_out=1": ("relief", {"alpha_out": 1.0, "backward": False}),
    "relief backward": ("relief", {"backward": True}),
    "relief alpha_out=1 backward": ("relief", {"alpha_out": 1.0, "backward": True}),
    "magnitude": ("magnitude", {}),
}


def _hidden_alive(model) -> int:
    """Hidden neurons with both an input and an output left."""
    layers = list(prunable_layers(model).items())[:-1]
    dead = {d.layer: set(d.no_inputs) | set(d.no_outputs) for d in find_dead_neurons(model)}
    return sum(m.weight.shape[0] - len(dead.get(name, ())) for name, m in layers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=10000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--retrain-epochs", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated names of VARIANTS")
    parser.add_argument("--out", default="relief-high-sparsity.md", help="file name under benchmarks/results/")
    args = parser.parse_args()
    torch.set_num_threads(1)
    started = time.perf_counter()
    data = load_dataset("mnist", seed=args.seed, limit=args.limit, val_size=args.limit // 5)
    settings = PruneSettings(model="lenet-300-100", epochs=args.epochs, retrain_epochs=args.retrain_epochs,
                             seed=args.seed)
    dense = build_model("lenet-300-100", seed=args.seed)
    train(dense, data, settings.train_config(), seed=args.seed, progress=False)
    rows = [{"variant": "dense", "sparsity": 0.0, "test_acc": evaluate(dense, data.test)[1]}]
    for label in args.variants.split(","):
        name, options = VARIANTS[label]
        model, method = copy_model(dense), make_method(name, seed=args.seed, **options)
        for sparsity in LADDER:
            schedule = MethodSchedule(target_density=1 - sparsity, rounds=args.rounds,
                                      train=dataclasses.replace(settings.train_config(), epochs=0),
                                      retrain=settings.retrain_config(), seed=args.seed)
            run_method(method, model, data, schedule, progress=False)
            densities = {n: weight_density(m) for n, m in prunable_layers(model).items()}
            row = {"variant": label, "sparsity": sparsity, "test_acc": evaluate(model, data.test)[1],
                   **{f"density_{n}": d for n, d in densities.items()}, "hidden_alive": _hidden_alive(model)}
            rows.append(row)
            print(", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()),
                  flush=True)
    table = pd.DataFrame(rows)
    wide = table[table["variant"] != "dense"].pivot(index="sparsity", columns="variant", values="test_acc")
    wall = time.perf_counter() - started
    command = "OMP_NUM_THREADS=1 .venv/bin/python benchmarks/relief_high_sparsity.py " + " ".join(sys.argv[1:])
    text = "\n".join([
        "# NN relief at high sparsity, LeNet-300-100 (short run)", "", f"`{command}` — wall {wall:.0f} s; "
        f"dense test accuracy {rows[0]['test_acc']:.4f}", "", "## Test accuracy", "",
        to_markdown(wide[[c for c in args.variants.split(",")]].reset_index()), "## Every rung", "",
        to_markdown(table)])
    write_files(RESULTS, {args.out: text})
    print(text)


if __name__ == "__main__":
    main()
