"""Cycle-level simulation API: a workload and a systolic or EIE-like accelerator in, pandas
DataFrames out.

Dispatch by ``mac_array.kind``: ``systolic`` arrays run the steps below; ``eie`` arrays run
:func:`sim.eie.run_eie` (real masks and activations: filler zeros, activation queues, load balance,
index and pointer traffic; its extra columns are :meth:`sim.eie.EieRun.record`'s). With
``golden=True`` each layer is also run cycle by cycle (:mod:`sim.golden`) and must agree.

For every compute layer (Linear, Conv2d) of a workload, in order:

1. :mod:`sim.numerics` puts the layer's operands (weights with their mask, the layer's measured
   ``input_sample``) into the array's number format; :func:`sim.systolic.count_macs` splits its
   MACs into executed and gated ones from the zeros the array actually sees (an array that skips
   zero weights: :mod:`sim.compaction` compacts them, per column, in its weight format, and
   counts executed, gated and skipped MACs);
2. :mod:`sim.mapping` tiles it onto the buffers and the array, :mod:`sim.engine` runs the tiles
   (cycles, stalls by cause);
3. optionally (``numerics=True``) :mod:`sim.numerics` (or :mod:`sim.compaction`, through the
   compacted passes) computes its output through the dataflow and checks it against
   :mod:`sim.reference` (a mismatch raises ``NumericsError``);
4. the actions it performed (MACs, register-file, per-buffer SRAM and DRAM accesses, and the
   compressed weights' metadata as ``index_read``/``index_write`` actions) become rows priced by
   :func:`hwmodels.pricing.price`, as the analytical estimator's are.

Layers run one after another, each reading its input and weights from DRAM and writing its
output there; ReLU, pooling and the bias are done outside the array and cost nothing here.
Activation zeros are those of the layer's input sample (one seeded random input through the
network, see :func:`sim.workload.extract_workload`), not a profile's densities; the
``input_density`` column reports the sample's measured density.

Register file (as in :mod:`sim.estimator`, Eyeriss's convention): every executed MAC reads a
weight and an activation at the data width and a partial sum at the accumulator width, and writes
the partial sum; gated MACs cost none of it.

Results have the estimator's columns (:data:`sim.estimator.RESULT_COLUMNS`, so
:func:`sim.estimator.totals` and the report helpers apply) plus :data:`EXTRA_COLUMNS` and, per
buffer ``B``, ``sram_B_read_bits``, ``sram_B_write_bits`` and ``energy_B_pj``. Units: cycles of
the array clock, bits, pJ, µs; one sample.
"""

from __future__ import annotations

import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from hwmodels.hardware import Accelerator
from hwmodels.pricing import ACTION_COLUMNS, LEVELS, price
from sim.buffers import accesses
from sim.compaction import compact, compacted_macs, compacted_numerics
from sim.dram import DramTiming
from sim.eie import EieRun, run_eie
from sim.golden import check_eie, check_systolic
from sim.golden_engine import check_engine
from sim.engine import STALL_CAUSES, EngineResult, run_schedule
from hwmodels.area import area_breakdown
from sim.estimator import RESULT_COLUMNS, area_columns, edp_pj_s
from sim.estimator import totals as estimator_totals
from sim.mapping import Mapping, Schedule, SimulationError, build_schedule, map_layer, require_systolic
from sim.numerics import NumericsError, NumericsReport, prepare, simulate_numerics
from sim.report import AREA_EDP_NOTE, area_edp_table, plot_energy, to_markdown
from sim.systolic import MacCounts, count_macs, gemm_shape
from sim.workload import Layer, Workload

__all__ = [
    "EXTRA_COLUMNS", "LayerRun", "NumericsError", "Simulation", "SimulationError", "checkpoint_workload",
    "render_files", "simulate", "simulate_layer", "simulate_network", "simulate_workloads", "summary_table",
    "totals",
]

EXTRA_COLUMNS = (
    "dataflow", "array_pes", "mapping", "folds", "steps", "effectual_macs", *(f"stall_{cause}_cycles" for cause in STALL_CAUSES),
    "stall_cycles", "utilisation", "compute_utilisation", "psum_dram_read_bits", "psum_dram_write_bits",
    "dram_busy_cycles", "ideal_memory", "numerics_checked", "numerics_rel_error", "numerics_exact",
    "filler_macs", "index_read_bits", "index_write_bits", "index_dram_read_bits", "energy_index_pj",
    "energy_index_dram_pj", "energy_filler_pj", "input_fanout",
)
_SUMMED_EXTRA = ("folds", "steps", "effectual_macs", *(f"stall_{cause}_cycles" for cause in STALL_CAUSES), "stall_cycles",
                 "psum_dram_read_bits", "psum_dram_write_bits", "dram_busy_cycles", "filler_macs", "index_read_bits",
                 "index_write_bits", "index_dram_read_bits", "pointer_read_bits")


@dataclass(frozen=True)
class LayerRun:
    """Everything simulated about one layer."""

    layer: Layer
    mapping: Mapping | None  # systolic arrays only (None on eie)
    schedule: Schedule | None
    engine: EngineResult | None
    macs: MacCounts
    numerics: NumericsReport | None
    actions: pd.DataFrame  # ACTION_COLUMNS rows of this layer
    record: dict  # its row of Simulation.layers
    eie: EieRun | None = None  # eie arrays only


@dataclass(frozen=True)
class Simulation:
    """Per-layer results (``layers``) and the priced action rows (``actions``: ACTION_COLUMNS plus
    ``energy_pj``, and ``variant`` when several workloads ran)."""

    layers: pd.DataFrame
    actions: pd.DataFrame

    def totals(self) -> pd.DataFrame:
        return totals(self.layers)


def _actions(layer: Layer, hw: Accelerator, macs: MacCounts, schedule: Schedule) -> pd.DataFrame:
    precision = hw.mac_array.precision
    bits, acc = precision.bits, precision.accumulator_bits
    burst = hw.dram.burst_bytes * 8
    rows = [
        ("mac", "mac", "mac", bits, macs.executed),
        ("rf", "rf", "read", bits, 2 * macs.executed),
        ("rf", "rf", "read", acc, macs.executed),
        ("rf", "rf", "write", acc, macs.executed),
    ]
    for buffer in accesses(hw, schedule.sram_read_bits, schedule.sram_write_bits):
        rows += [("sram", buffer.name, "read", buffer.width_bits, buffer.reads),
                 ("sram", buffer.name, "write", buffer.width_bits, buffer.writes)]
    read_bits = sum(schedule.dram_read_bits.values())
    write_bits = schedule.dram_write_bits + schedule.psum_write_bits
    rows += [("dram", "dram", "read", burst, read_bits / burst), ("dram", "dram", "write", burst, write_bits / burst)]
    if schedule.mapping.compaction is not None:  # metadata of the compressed weights, apart (sim.compaction)
        for buffer in accesses(hw, {"weights": schedule.index_sram_read_bits}, {"weights": schedule.index_sram_write_bits}):
            if buffer.read_bits or buffer.write_bits:
                rows += [("sram", buffer.name, "index_read", buffer.width_bits, buffer.reads),
                         ("sram", buffer.name, "index_write", buffer.width_bits, buffer.writes)]
        rows.append(("dram", "dram", "index_read", burst, schedule.index_dram_read_bits / burst))
    frame = pd.DataFrame([(layer.name, *row) for row in rows], columns=list(ACTION_COLUMNS))
    frame["count"] = frame["count"].astype(float)
    return frame.assign(energy_pj=price(frame, hw))


def _common_record(workload: Workload, hw: Accelerator, layer: Layer, macs: MacCounts, actions: pd.DataFrame,
                   numerics: NumericsReport | None, cycles: int, compute_cycles: int, ideal: bool) -> dict:
    """The columns every array kind fills: counts, traffic by level and buffer, energy, cycles."""
    array = hw.mac_array
    clock_hz = hw.clock_mhz * 1e6
    # Metadata accesses (``index_read``/``index_write``) are reads and writes of their memory too.
    moved = actions.assign(bits=actions["width_bits"] * actions["count"],
                           action=actions["action"].str.removeprefix("index_"))
    by_level = moved.groupby(["level", "action"])["bits"].sum()
    energy_level = actions.groupby("level")["energy_pj"].sum().reindex(list(LEVELS), fill_value=0.0)
    dram_read = float(by_level.get(("dram", "read"), 0.0))
    dram_write = float(by_level.get(("dram", "write"), 0.0))
    timing = DramTiming.of(hw, ideal)
    sample = layer.input_sample
    record = {
        "model": workload.model, "hardware": hw.name, "layer": layer.name, "kind": layer.kind,
        "weights": layer.weight_count, "nonzero_weights": layer.nonzero_weights,
        "weight_density": layer.weight_density,
        "input_density": float(np.count_nonzero(sample)) / sample.size if sample.size else 0.0,
        "dense_macs": macs.dense, "executed_macs": macs.executed, "gated_macs": macs.gated,
        "skipped_macs": macs.skipped, "dense_flops": 2 * macs.dense, "flops": 2 * macs.executed,
        "flop_pct": 100.0 * macs.executed / macs.dense if macs.dense else 0.0,
        "dram_read_bits": dram_read, "dram_write_bits": dram_write,
        "sram_read_bits": float(by_level.get(("sram", "read"), 0.0)),
        "sram_write_bits": float(by_level.get(("sram", "write"), 0.0)),
        "rf_read_bits": float(by_level.get(("rf", "read"), 0.0)),
        "rf_write_bits": float(by_level.get(("rf", "write"), 0.0)),
        **{f"energy_{level}_pj": float(energy_level[level]) for level in LEVELS},
        "energy_pj": float(actions["energy_pj"].sum()),
        "compute_cycles": compute_cycles, "memory_cycles": timing.busy_cycles(dram_read + dram_write),
        "cycles": cycles, "latency_us": cycles / clock_hz * 1e6,
        "edp_pj_s": edp_pj_s(float(actions["energy_pj"].sum()), cycles / clock_hz * 1e6), **area_columns(hw),
        "dataflow": array.dataflow or array.kind, "array_pes": array.macs_per_cycle, "effectual_macs": macs.effectual,
        "utilisation": macs.dense / (array.macs_per_cycle * cycles) if cycles else 0.0,
        "compute_utilisation": macs.dense / (array.macs_per_cycle * compute_cycles) if compute_cycles else 0.0,
        "ideal_memory": ideal,
        "numerics_checked": numerics is not None,
        "numerics_rel_error": numerics.relative_error if numerics else float("nan"),
        "numerics_exact": bool(numerics.exact) if numerics else False,
    }
    area = area_breakdown(hw)
    for buffer in hw.buffers:
        record[f"area_{buffer.name}_mm2"] = area[buffer.name]
        part = moved[(moved["level"] == "sram") & (moved["component"] == buffer.name)]
        for action in ("read", "write"):
            rows = part[part["action"] == action]
            record[f"sram_{buffer.name}_{action}_bits"] = float((rows["width_bits"] * rows["count"]).sum())
        record[f"energy_{buffer.name}_pj"] = float(part["energy_pj"].sum())
    return record


def _index_record(actions: pd.DataFrame, schedule: Schedule, macs: MacCounts, fillers: int) -> dict:
    """The metadata columns of a systolic layer (the names of the EIE and estimator columns where
    they mean the same): metadata bits read from and written to the buffers and read from DRAM,
    their energy (``energy_index_pj``, of which ``energy_index_dram_pj`` is DRAM: a part of the
    SRAM and DRAM energies, not an addition), the filler zeros' MACs and MAC energy (all zero on a
    dense array), and ``input_fanout``: distinct inputs a pass reads per input vector over the
    array's rows, averaged over passes (sparse arrays only; see :mod:`sim.compaction`)."""
    compaction = schedule.mapping.compaction
    index = actions["action"].str.startswith("index_")
    mac_energy = float(actions.loc[actions["level"] == "mac", "energy_pj"].sum())
    return {
        "filler_macs": fillers, "index_read_bits": schedule.index_sram_read_bits,
        "index_write_bits": schedule.index_sram_write_bits, "index_dram_read_bits": schedule.index_dram_read_bits,
        "energy_index_pj": float(actions.loc[index, "energy_pj"].sum()),
        "energy_index_dram_pj": float(actions.loc[index & (actions["level"] == "dram"), "energy_pj"].sum()),
        "energy_filler_pj": mac_energy * fillers / macs.executed if macs.executed else 0.0,
        "input_fanout": (float(compaction.union.sum()) / (compaction.total_passes * compaction.rows)
                         if compaction is not None else float("nan")),
    }


def _record(workload: Workload, hw: Accelerator, layer: Layer, macs: MacCounts, schedule: Schedule,
            engine: EngineResult, numerics: NumericsReport | None, actions: pd.DataFrame, ideal: bool,
            fillers: int = 0) -> dict:
    record = _common_record(workload, hw, layer, macs, actions, numerics, engine.cycles, engine.compute_cycles, ideal)
    dram_read = sum(schedule.dram_read_bits.values()) + schedule.index_dram_read_bits
    dram_write = schedule.dram_write_bits + schedule.psum_write_bits
    compaction = schedule.mapping.compaction
    stored = layer.weight_count * hw.mac_array.precision.bits if compaction is None else compaction.storage_bits
    record.update({
        "dram_read_bits": dram_read, "dram_write_bits": dram_write,  # exact, not via burst counts
        "memory_cycles": DramTiming.of(hw, ideal).busy_cycles(dram_read + dram_write),
        "weight_storage_bits": stored,
        "weights_resident": schedule.dram_read_bits["weights"] + schedule.index_dram_read_bits <= stored,
        "mapping": schedule.mapping.describe(), "folds": schedule.mapping.folds, "steps": schedule.steps,
        **{f"stall_{cause}_cycles": engine.stalls[cause] for cause in STALL_CAUSES},
        "stall_cycles": engine.stall_cycles,
        "psum_dram_read_bits": schedule.dram_read_bits["psums"], "psum_dram_write_bits": schedule.psum_write_bits,
        "dram_busy_cycles": engine.dram_busy_cycles,
        **_index_record(actions, schedule, macs, fillers),
    })
    return record


def _eie_record(workload: Workload, hw: Accelerator, layer: Layer, run: EieRun, ideal: bool) -> dict:
    record = _common_record(workload, hw, layer, run.macs, run.actions, run.numerics, run.cycles,
                            run.counts.compute_cycles, ideal)
    pes = hw.mac_array.pes
    record.update({
        "weight_storage_bits": int(run.layout.pe_bits().sum()),
        "weights_resident": run.counts.weights_spilled_bits == 0,
        "mapping": f"eie {pes} PEs, {run.counts.rounds} rounds, {run.layout.entry_bits}-bit entries"
                   f"{' (codebook)' if run.layout.codebook is not None else ''}",
        "folds": run.counts.rounds, "steps": run.counts.broadcasts,
        "stall_cycles": run.counts.fifo_stall_cycles + run.cycles - run.counts.compute_cycles,
        "psum_dram_read_bits": 0, "psum_dram_write_bits": 0,
        "dram_busy_cycles": record["memory_cycles"],
        **run.record(),
    })
    return record


def simulate_layer(layer: Layer, hw: Accelerator, ideal_memory: bool = False, numerics: bool = True,
                   workload: Workload | None = None, loop_order: str = "auto", golden: bool = False) -> LayerRun:
    """Simulate one compute layer of ``workload`` on ``hw`` (see the module docstring);
    ``loop_order`` forces a loop nest of :func:`sim.mapping.map_layer`. ``golden``: also run the
    cycle-by-cycle model (:mod:`sim.golden`, small layers) and require it to agree to the cycle
    and on every action count it models (systolic arrays then use the ``fold`` loop order, the
    golden model's, unless another is forced)."""
    if not layer.has_weights:
        raise SimulationError(f"layer '{layer.name}' ({layer.kind}) has no weights to simulate")
    workload = workload or Workload(model="layer", input_shape=layer.input_shape, layers=(layer,))
    array = hw.mac_array
    if array.kind == "eie":
        run = run_eie(layer, hw, ideal_memory, numerics)
        if golden:
            check_eie(layer, hw, run.counts, run.outputs)
        record = {**_eie_record(workload, hw, layer, run, ideal_memory), "golden_checked": golden}
        return LayerRun(layer, None, None, None, run.macs, run.numerics, run.actions, record, eie=run)
    operands = prepare(layer, array.precision)
    compaction, fillers = None, 0
    if array.zero_weights == "skip":  # the sparse WS option (sim.compaction)
        compaction = compact([w for w, _ in operands.groups], hw, layer.kind == "conv2d")
        macs, fillers = compacted_macs(operands, compaction, array)
    else:
        macs = count_macs(operands.groups, array)
    mapping = map_layer(gemm_shape(layer), hw, "fold" if golden and loop_order == "auto" else loop_order, compaction)
    schedule = build_schedule(mapping, hw)
    engine = run_schedule(schedule, hw, ideal_memory)
    report = None
    if numerics:
        report = (simulate_numerics(layer, array, operands) if compaction is None
                  else compacted_numerics(layer.name, operands, compaction, array))
    if golden:
        check_systolic(layer, hw, engine.compute_cycles, macs, schedule, fillers)
        check_engine(layer.name, schedule, hw, engine, ideal_memory)
    actions = _actions(layer, hw, macs, schedule)
    record = {**_record(workload, hw, layer, macs, schedule, engine, report, actions, ideal_memory, fillers),
              "golden_checked": golden}
    return LayerRun(layer, mapping, schedule, engine, macs, report, actions, record)


def _columns(frame: pd.DataFrame) -> list[str]:
    first = [c for c in dict.fromkeys(("variant", *RESULT_COLUMNS, *EXTRA_COLUMNS)) if c in frame.columns]
    return first + [c for c in frame.columns if c not in first]


def simulate_workloads(workloads: dict[str, Workload], hw: Accelerator, ideal_memory: bool = False,
                       numerics: bool = True, progress: bool = False, golden: bool = False,
                       threads: int | None = None) -> Simulation:
    """Simulate every compute layer of each workload (keyed by variant, e.g. dense/pruned).

    Layers are independent, so ``threads`` of them (default: the machine's cores) run at once;
    the heavy parts (numpy, scipy.sparse, torch) release the GIL. The largest layers start
    first (longest-processing-time order: otherwise AlexNet's fc1, the sixth layer, would be the
    last to finish). Results come back in layer order and do not depend on ``threads``.
    """
    jobs = []
    for variant, workload in workloads.items():
        if not workload.compute_layers:
            raise SimulationError(f"workload '{workload.model}' has no Linear or Conv2d layer")
        jobs += [(variant, workload, layer) for layer in workload.compute_layers]
    bar = tqdm(total=len(jobs), desc="simulate", unit="layer", file=sys.stderr, disable=not progress)
    workers = max(1, min(len(jobs), threads or os.cpu_count() or 1))
    # A rough cost for the order only: weight-sized passes (quantising, encoding) plus MAC-sized ones.
    largest_first = sorted(range(len(jobs)), key=lambda i: -(jobs[i][2].weight_count + jobs[i][2].dense_macs / 8))
    runs: list[LayerRun | None] = [None] * len(jobs)
    with bar, ThreadPoolExecutor(max_workers=workers) as executor:
        futures = {executor.submit(simulate_layer, jobs[i][2], hw, ideal_memory, numerics, jobs[i][1],
                                   golden=golden): i for i in largest_first}
        try:
            for future in as_completed(futures):
                index = futures[future]
                runs[index] = future.result()
                bar.set_postfix_str(f"{jobs[index][0]} {jobs[index][2].name}")
                bar.update()
        except BaseException:
            executor.shutdown(wait=True, cancel_futures=True)  # a failing layer: start no other
            raise
    records = [{"variant": variant, **run.record} for (variant, _, _), run in zip(jobs, runs)]
    actions = [run.actions.assign(variant=variant) for (variant, _, _), run in zip(jobs, runs)]
    layers = pd.DataFrame.from_records(records)
    return Simulation(layers[_columns(layers)], pd.concat(actions, ignore_index=True))


def simulate(workload: Workload, hw: Accelerator, ideal_memory: bool = False, numerics: bool = True,
             progress: bool = False) -> Simulation:
    """Simulate one workload (its rows get the variant ``run``)."""
    return simulate_workloads({"run": workload}, hw, ideal_memory, numerics, progress)


def checkpoint_workload(model: str, path: str | Path, seed: int = 0) -> Workload:
    """The workload of zoo network ``model`` loaded from a ``prunesim prune`` output: a checkpoint
    (``rounds/final.pt`` or a round file, via :func:`pruning.runs.load_checkpoint`) or a sparse
    export (``*.npz``, via :func:`pruning.export.load_export`), traced on one seeded random input."""
    from pruning.export import load_export
    from pruning.runs import load_checkpoint
    from pruning.zoo import build_model, input_shape
    from sim.workload import extract_workload

    path = Path(path)
    if not path.is_file():
        raise SimulationError(f"--checkpoint '{path}' does not exist (give rounds/final.pt or a .npz export)")
    network = build_model(model, seed=seed)
    try:
        network = load_export(path, network) if path.suffix == ".npz" else load_checkpoint(network, path)
    except Exception as error:  # torch and numpy fail in many ways on a foreign file; name it once
        raise SimulationError(f"--checkpoint '{path}' does not fit model '{model}': "
                              f"{str(error).splitlines()[0]}") from None
    return extract_workload(network, input_shape(model), name=model, seed=seed)


def simulate_network(model: str, profile: str | None = None, hw: str | Path | Accelerator = "systolic-ws-32x32",
                     seed: int = 0, profile_file: str | Path | None = None, checkpoint: str | Path | None = None,
                     ideal_memory: bool = False, numerics: bool = True, progress: bool = False,
                     golden: bool = False, dense: bool = True, threads: int | None = None) -> Simulation:
    """A zoo network on ``hw``: dense and, with a profile, pruned (``sim.api.profile_workloads``);
    or, with ``checkpoint``, the pruned model of a ``prunesim prune`` run (variant ``checkpoint``).
    ``dense=False`` (a profile only) leaves the dense baseline out. Same arguments and seed, same
    numbers. ``golden``: see :func:`simulate_layer`; ``threads``: see :func:`simulate_workloads`."""
    from sim.api import profile_workloads, resolve_hardware, resolve_profile

    accelerator = resolve_hardware(hw)
    if accelerator.mac_array.kind != "eie":
        require_systolic(accelerator)
    if checkpoint is not None:
        if profile or profile_file:
            raise SimulationError("give --checkpoint or a profile, not both")
        workloads = {"checkpoint": checkpoint_workload(model, checkpoint, seed)}
    else:
        density_profile = resolve_profile(model, profile, profile_file)
        if not dense and density_profile is None:
            raise SimulationError("--no-dense needs --profile or --profile-file: without one the "
                                  "dense network is all there is to simulate")
        workloads = profile_workloads(model, density_profile, seed, dense=dense)
    return simulate_workloads(workloads, accelerator, ideal_memory, numerics, progress, golden, threads)


def totals(results: pd.DataFrame) -> pd.DataFrame:
    """Network totals per variant: :func:`sim.estimator.totals` plus the simulator's summed columns
    (stalls, traffic and energy per buffer); utilisation recomputed from the sums."""
    by = [c for c in ("model", "hardware", "variant") if c in results.columns]
    summed = estimator_totals(results, by)
    extra = [c for c in results.columns if c in _SUMMED_EXTRA
             or (c.startswith("sram_") and c.endswith("_bits") and c not in summed.columns)
             or (c.startswith("energy_") and c.endswith("_pj") and c not in summed.columns)]
    groups = results.groupby(by, sort=False)
    summed = summed.merge(groups[extra].sum().reset_index(), on=by)
    first = ["dataflow", "array_pes", "ideal_memory",  # and the per-buffer areas: the chip's, not summed
             *[c for c in results.columns if c.startswith("area_") and c.endswith("_mm2") and c not in summed.columns]]
    summed = summed.merge(groups[first].first().reset_index(), on=by)
    summed["utilisation"] = summed["dense_macs"] / (summed["array_pes"] * summed["cycles"])
    summed["compute_utilisation"] = summed["dense_macs"] / (summed["array_pes"] * summed["compute_cycles"])
    return summed[_columns(summed)]


def summary_table(results: pd.DataFrame) -> pd.DataFrame:
    """A readable per-layer table with a total row per variant: MACs in millions, cycles in
    thousands, traffic in kbit, energy in µJ (and, where weights are stored compressed, the
    metadata's part of it, ``index µJ``)."""
    frame = pd.concat([results, totals(results)], ignore_index=True)
    table = pd.DataFrame({
        "variant": frame.get("variant", "run"),
        "layer": frame["layer"],
        "MACs M": frame["dense_macs"] / 1e6,
        "effectual %": 100 * frame["effectual_macs"] / frame["dense_macs"],
        "executed %": 100 * frame["executed_macs"] / frame["dense_macs"],
        "kcycles": frame["cycles"] / 1e3,
        "compute kcycles": frame["compute_cycles"] / 1e3,
        "stall %": 100 * frame["stall_cycles"] / frame["cycles"],
        "util %": 100 * frame["utilisation"],
        "DRAM kbit": (frame["dram_read_bits"] + frame["dram_write_bits"]) / 1e3,
        "psum kbit": (frame["psum_dram_read_bits"] + frame["psum_dram_write_bits"]) / 1e3,
        "energy µJ": frame["energy_pj"] / 1e6,
        "latency µs": frame["latency_us"],
        "EDP pJ·s": frame["edp_pj_s"],
    })
    index = frame.get("energy_index_pj")
    if index is not None and index.fillna(0).any():  # compressed weights: their metadata's share of the energy
        table.insert(table.columns.get_loc("energy µJ") + 1, "index µJ", index / 1e6)
    order = {variant: i for i, variant in enumerate(dict.fromkeys(table["variant"]))}
    return table.sort_values("variant", key=lambda s: s.map(order), kind="stable").reset_index(drop=True)


def render_files(simulation: Simulation, meta: dict, title: str) -> dict[str, str | bytes]:
    """The files of one simulation: results.csv (per layer), actions.csv (priced actions),
    totals.csv, results.json, report.md and energy.png."""
    layers = simulation.layers
    summary = totals(layers)
    payload = {"meta": meta, "totals": summary.to_dict(orient="records"), "layers": layers.to_dict(orient="records")}
    mappings = "\n".join(f"- `{row.variant} {row.layer}`: {row.mapping}" for row in layers.itertuples())
    markdown = "\n".join([
        f"# {title}", "",
        "Cycle-level simulation, one inference (batch 1). " + " · ".join(f"{k}: `{v}`" for k, v in meta.items()),
        "", to_markdown(summary_table(layers)), "", "## Area and energy-delay product", "", AREA_EDP_NOTE, "",
        to_markdown(area_edp_table(summary)), "", "## Mappings", "", mappings, "",
        "![energy per layer](energy.png)", "",
    ])
    return {
        "results.csv": layers.to_csv(index=False),
        "actions.csv": simulation.actions.to_csv(index=False),
        "totals.csv": summary.to_csv(index=False),
        "results.json": json.dumps(payload, indent=2, default=str),
        "report.md": markdown,
        "energy.png": plot_energy(layers, title),
    }
