"""Benchmark: one set of masks on five designs. AlexNet and VGG-16, dense and pruned by Han's
profile (``--profile han2015``), energy and latency per layer on the dense systolic array
(``systolic-ws-32x32``), the same array with zero operands clock-gated
(``systolic-ws-32x32-gated``) and skipping zero weights (``systolic-ws-32x32-sparse``), the EIE-like
array (``eie-64pe``), all four simulated cycle by cycle (fast mode, numerics off: they are checked
and timed elsewhere), and ``han45nm``, Han 2015's energy argument as an idealised machine, which
only the analytical estimator runs (its ``ideal`` MAC array has no cycle-level model).

Writes ``benchmarks/results/design_table.md`` (per-network totals, then energy and latency per
layer) and ``design_table.csv`` (one row per network, design, variant and layer, with the
metadata columns). Usage:
``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/design_table.py [--models alexnet,vgg-16]``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hwmodels.hardware import load_hardware  # noqa: E402
from sim.api import estimate_workloads, profile_workloads, resolve_profile  # noqa: E402
from sim.report import to_markdown, write_files  # noqa: E402
from sim.simulate import simulate_workloads  # noqa: E402

SIMULATED = ("systolic-ws-32x32", "systolic-ws-32x32-gated", "systolic-ws-32x32-sparse", "eie-64pe")
ESTIMATED = ("han45nm",)
SHORT = {"systolic-ws-32x32": "ws", "systolic-ws-32x32-gated": "ws-gated", "systolic-ws-32x32-sparse": "ws-sparse",
         "eie-64pe": "eie", "han45nm": "han45nm (est.)"}
KEEP = ["model", "design", "method", "variant", "layer", "energy_pj", "latency_us", "cycles", "compute_cycles",
        "executed_macs", "dense_macs", "dram_read_bits", "dram_write_bits", "energy_mac_pj", "energy_rf_pj",
        "energy_sram_pj", "energy_dram_pj", "filler_macs", "index_read_bits", "index_dram_read_bits",
        "energy_index_pj", "energy_filler_pj", "input_fanout"]


def run(models: list[str], seed: int) -> tuple[pd.DataFrame, dict[str, float]]:
    """Per-layer rows of every model × design × variant, and the wall seconds of each run."""
    frames, seconds = [], {}
    for model in models:
        start = time.perf_counter()
        workloads = profile_workloads(model, resolve_profile(model, "han2015", None), seed)
        seconds[f"{model} workloads"] = time.perf_counter() - start
        for name in tqdm([*SIMULATED, *ESTIMATED], desc=model, file=sys.stderr):
            start = time.perf_counter()
            if name in SIMULATED:
                layers = simulate_workloads(workloads, load_hardware(name), numerics=False).layers
                method = "simulated"
            else:
                layers = estimate_workloads(workloads, name)
                method = "estimated"
            seconds[f"{model} {name}"] = time.perf_counter() - start
            frames.append(layers.assign(model=model, design=name, method=method).reindex(columns=KEEP))
    return pd.concat(frames, ignore_index=True), seconds


def _wide(rows: pd.DataFrame, value: str, scale: float) -> pd.DataFrame:
    """Layers down, design × variant across, ``value`` / ``scale``, with a total row."""
    table = rows.pivot_table(index="layer", columns=["design", "variant"], values=value, aggfunc="sum", sort=False)
    table = table.reindex(columns=pd.MultiIndex.from_product([[*SIMULATED, *ESTIMATED], ["dense", "pruned"]]))
    table.loc["total"] = table.sum()
    table.columns = [f"{SHORT[design]} {variant}" for design, variant in table.columns]
    return (table / scale).reset_index()


def totals(rows: pd.DataFrame) -> pd.DataFrame:
    """Per model, design and variant: energy (µJ), latency (µs), index-overhead energy and the
    pruned network's gain over the dense one on the same design."""
    summed = rows.groupby(["model", "design", "variant"], sort=False)[
        ["energy_pj", "latency_us", "energy_index_pj", "dram_read_bits"]].sum().reset_index()
    out = []
    for (model, design), group in summed.groupby(["model", "design"], sort=False):
        dense = group[group.variant == "dense"].iloc[0]
        pruned = group[group.variant == "pruned"].iloc[0]
        out.append({
            "model": model, "design": SHORT[design],
            "dense energy µJ": dense.energy_pj / 1e6, "pruned energy µJ": pruned.energy_pj / 1e6,
            "energy gain": dense.energy_pj / pruned.energy_pj,
            "dense latency µs": dense.latency_us, "pruned latency µs": pruned.latency_us,
            "speed-up": dense.latency_us / pruned.latency_us,
            "pruned index energy µJ": pruned.energy_index_pj / 1e6,
        })
    return pd.DataFrame(out)


def render(rows: pd.DataFrame, seconds: dict[str, float], command: str) -> dict[str, str]:
    parts = [
        "# One set of masks on five designs", "",
        f"`{command}` (seed 0; 2-core x86_64, 24 GiB; 2026-12-02). Han et al. 2015's density profile "
        "(`--profile han2015`): weights magnitude-pruned to its per-layer densities, one seeded input "
        "sample per network. Four designs simulated cycle by cycle (`prunesim simulate`, fast mode, "
        "numerics off), han45nm estimated analytically (`prunesim estimate`: it has no cycle-level "
        "model). One inference, batch 1. Energy in µJ, latency in µs.", "",
        "## Totals", "", to_markdown(totals(rows)), "",
    ]
    for model in dict.fromkeys(rows.model):
        part = rows[rows.model == model]
        parts += [f"## {model}: energy per layer (µJ)", "", to_markdown(_wide(part, "energy_pj", 1e6)), "",
                  f"## {model}: latency per layer (µs)", "", to_markdown(_wide(part, "latency_us", 1.0)), ""]
    parts += ["## Wall time of this script", "",
              to_markdown(pd.DataFrame({"run": list(seconds), "seconds": list(seconds.values())})), ""]
    return {"design_table.md": "\n".join(parts), "design_table.csv": rows.to_csv(index=False)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="alexnet,vgg-16")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = parser.parse_args()
    rows, seconds = run(args.models.split(","), args.seed)
    command = "OMP_NUM_THREADS=1 .venv/bin/python benchmarks/design_table.py" + (
        f" --models {args.models}" if args.models != "alexnet,vgg-16" else "")
    for path in write_files(args.out, render(rows, seconds, command)):
        print(path)
    print(to_markdown(totals(rows)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
