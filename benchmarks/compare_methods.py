"""Issue 4's figures: pruning methods compared, and pruning + quantisation.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/compare_methods.py curves --model lenet-300-100
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/compare_methods.py quant

``curves``: Han, FlipOut, NN relief and global magnitude pruning on one network (MNIST) at 90, 95,
98 and 99% sparsity through :func:`sim.compare.run_compare` (the ``prunesim compare`` job),
written to ``benchmarks/results/compare-MODEL/``. At 99% FlipOut stands beside global magnitude
pruning (Apostol et al. 2020's baseline).

``quant``: LeNet-300-100 (MNIST) dense at 32 bits, pruned with Han's method at 32 bits, the
pruned network in 8-bit fixed point (weights and activations), and the pruned network with
5-bit shared weights (Deep Compression k-means, centroids fine-tuned): test accuracy, bits per
weight, compressed size with 5-bit relative indices (and codebooks), and the energy estimate on
han45nm (int8 MACs for the 8-bit row). Written to ``benchmarks/results/quantisation.{md,csv}``.
Every row quotes the command and the wall time; nothing is downloaded.
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
from pruning.han import copy_model
from pruning.methods import make_method
from pruning.pipeline import MethodSchedule, run_method
from pruning.quantise import quantise_model
from pruning.sharing import compressed_size, fine_tune_shared, share_weights
from pruning.train import evaluate, train
from pruning.zoo import build_model
from sim.api import estimate_workloads, measured_workloads
from sim.compare import CompareSettings, run_compare
from sim.estimator import totals
from sim.jobs import PruneSettings
from sim.report import to_markdown, write_files

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def curves(args: argparse.Namespace) -> None:
    settings = CompareSettings(model=args.model, methods=("han", "flipout", "relief", "magnitude"),
                               sparsities=(0.9, 0.95, 0.98, 0.99), rounds=args.rounds, epochs=args.epochs,
                               retrain_epochs=args.retrain_epochs, retrain_lr=args.retrain_lr, seed=args.seed,
                               limit=args.limit)
    table = run_compare(settings, RESULTS / f"compare-{args.model}", progress=not args.quiet)
    print(table.to_string(index=False))


def _energy(model, sample, name: str) -> float:
    work = measured_workloads({"m": model}, sample, name)
    return float(totals(estimate_workloads(work, "han45nm"))["energy_pj"].iloc[0]) / 1e6


def quant(args: argparse.Namespace) -> None:
    started = time.perf_counter()
    torch.manual_seed(args.seed)
    data = load_dataset("mnist", seed=args.seed, limit=args.limit,
                        val_size=5000 if args.limit is None else args.limit // 5)
    settings = PruneSettings(model="lenet-300-100", epochs=args.epochs, retrain_epochs=args.retrain_epochs,
                             retrain_lr=args.retrain_lr, seed=args.seed)
    sample = data.test.tensors[0][:1000]
    dense = build_model("lenet-300-100", seed=args.seed)
    train(dense, data, settings.train_config(), seed=args.seed, progress=not args.quiet, desc="dense")
    pruned = copy_model(dense)
    schedule = MethodSchedule(target_density=args.density, rounds=args.rounds,
                              train=dataclasses.replace(settings.train_config(), epochs=0),
                              retrain=settings.retrain_config(), seed=args.seed)
    run_method(make_method("han", seed=args.seed), pruned, data, schedule, progress=not args.quiet)
    fixed8 = quantise_model(pruned, 8, data.train.tensors[0][:1000], per_channel=True)
    shared = copy_model(pruned)
    codebooks = share_weights(shared, 5)
    fine_tune_shared(shared, codebooks, data, dataclasses.replace(settings.retrain_config(), epochs=1),
                     seed=args.seed, progress=not args.quiet)
    rows = []
    for label, model, bits in (("dense, 32-bit", dense, "32"), ("pruned, 32-bit", pruned, "32"),
                               ("pruned, 8-bit fixed point (W8A8, per-channel)", fixed8, "8"),
                               ("pruned, 5-bit shared weights", shared, "5 (+codebook)")):
        size = compressed_size(model)[-1]
        if model is dense:   # the dense network is stored dense: 32 bits per weight, no indices
            size = {**size, "compressed_bits": size["dense_bits"], "ratio": 1.0}
        rows.append({"model": label, "test_error_pct": 100 * (1 - evaluate(model, data.test)[1]),
                     "weight_bits": bits, "kept_weights": size["nonzeros"],
                     "compressed_kB": size["compressed_bits"] / 8 / 1000, "compression": size["ratio"],
                     "energy_uj": _energy(model, sample, "lenet-300-100")})
    table = pd.DataFrame(rows)
    wall = time.perf_counter() - started
    command = "OMP_NUM_THREADS=1 .venv/bin/python benchmarks/compare_methods.py " + " ".join(sys.argv[1:])
    text = "\n".join([
        "# LeNet-300-100 on MNIST: pruning + quantisation", "", f"`{command}` — wall {wall:.0f} s", "",
        "Compressed size: weights only, relative-index CSC with 5-bit indices (filler zeros counted), "
        "column pointers, and for shared weights the 32-bit codebook of each layer; dense: 32 bits per weight. "
        "Energy: han45nm analytical estimate per inference (the 8-bit row on int8 MACs).", "",
        to_markdown(table)])
    write_files(RESULTS, {"quantisation.md": text, "quantisation.csv": table.to_csv(index=False)})
    print(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("part", choices=("curves", "quant"))
    parser.add_argument("--model", default="lenet-300-100")
    parser.add_argument("--epochs", type=int, default=10, help="dense training epochs")
    parser.add_argument("--retrain-epochs", type=int, default=2)
    parser.add_argument("--retrain-lr", type=float, help="default: 1/10 of the dense learning rate")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--density", type=float, default=1 / 12, help="quant: density of the pruned model")
    parser.add_argument("--limit", type=int, help="first N images only (quick check)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    (curves if args.part == "curves" else quant)(args)


if __name__ == "__main__":
    main()
