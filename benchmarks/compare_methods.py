"""Issue 4's figures: pruning methods compared, and pruning + quantisation.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/compare_methods.py curves --model lenet-300-100
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/compare_methods.py quant

``curves``: Han, FlipOut, NN relief and global magnitude pruning on one network (MNIST) at 90, 95,
98 and 99% sparsity through :func:`sim.compare.run_compare` (the ``prunesim compare`` job),
written to ``benchmarks/results/compare-MODEL/``. At 99% FlipOut stands beside global magnitude
pruning (Apostol et al. 2020's baseline).

``quant``: LeNet-300-100 (MNIST) dense at 32 bits, pruned with Han's method at 32 bits, the
pruned network in 8-bit fixed point (weights and activations), the pruned network with 5-bit
shared weights (Deep Compression k-means, centroids fine-tuned), and both stacked (5-bit indices
into 8-bit codebooks, EIE's arrangement): test accuracy, bits per weight, compressed size with
5-bit relative indices (and codebooks) without and with Huffman coding (Deep Compression §4),
and the energy estimate on han45nm (int8 MACs for the fixed-point rows). Written to
``benchmarks/results/quantisation.{md,csv}``. Every row quotes the command and the wall time;
nothing is downloaded.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import pandas as pd
import torch

from pruning.compression import Compression, compress
from pruning.datasets import load_dataset
from pruning.han import copy_model
from pruning.methods import make_method
from pruning.pipeline import MethodSchedule, run_method
from pruning.train import evaluate, train
from pruning.zoo import build_model
from sim.api import estimate_workloads, measured_workloads
from sim.compare import CompareSettings, run_compare
from sim.estimator import totals
from sim.jobs import PruneSettings, compression_rows
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
    variants = {"dense, 32-bit": (dense, "32"), "pruned, 32-bit": (pruned, "32")}
    for label, bits, compression in (
            ("pruned, 8-bit fixed point (W8A8, per-channel)", "8", Compression(quantise_bits=8, per_channel=True)),
            ("pruned, 5-bit shared weights", "5 (+codebook)", Compression(share_bits=5)),
            ("pruned, 5-bit shared + 8-bit fixed point (W8A8)", "5 (+8-bit codebook)",
             Compression(share_bits=5, quantise_bits=8))):
        model = compress(pruned, compression, data, settings.retrain_config(), seed=args.seed,
                         progress=not args.quiet)
        variants[label] = (model, bits)
    sizes = compression_rows({label: model for label, (model, _) in variants.items()}).set_index("model")
    rows = []
    for label, (model, bits) in variants.items():
        size = sizes.loc[label]
        dense_kb = size["compressed_kB"] * size["compression"]       # weights × 32 bits
        stored = (dense_kb, 1.0, dense_kb, 1.0) if model is dense else (   # the dense network is stored dense
            size["compressed_kB"], size["compression"], size["huffman_kB"], size["huffman_compression"])
        rows.append({"model": label, "test_error_pct": 100 * (1 - evaluate(model, data.test)[1]),
                     "weight_bits": bits, "kept_weights": int(size["kept_weights"]),
                     "compressed_kB": stored[0], "compression": stored[1],
                     "huffman_kB": stored[2], "huffman_compression": stored[3],
                     "energy_uj": _energy(model, sample, "lenet-300-100")})
    table = pd.DataFrame(rows)
    wall = time.perf_counter() - started
    command = "OMP_NUM_THREADS=1 .venv/bin/python benchmarks/compare_methods.py " + " ".join(sys.argv[1:])
    text = "\n".join([
        "# LeNet-300-100 on MNIST: pruning + quantisation", "", f"`{command}` — wall {wall:.0f} s", "",
        "Compressed size: weights only, relative-index CSC with 5-bit indices (filler zeros counted), "
        "column pointers, and for shared weights the codebook of each layer (32-bit values, 8-bit once "
        "quantised); dense: 32 bits per weight. Huffman: the same entries with the shared/fixed-point values "
        "and the relative indices Huffman-coded with their own frequencies, code tables included (Deep "
        "Compression §4). Energy: han45nm analytical estimate per inference (fixed-point rows: int8 multiply "
        "+ int32 accumulate).", "",
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
