"""The analytical estimator: what each layer costs if the hardware is perfectly fed.

It counts actions per layer (MACs, register-file, SRAM and DRAM reads and writes, in bits of a
stated width); :func:`hwmodels.pricing.price` prices them. The cycle-level engine refines the same
counts with real tiling, stalls and reuse; this model is its lower bound and its quick first look.

The model, stated once:

* **MACs.** A layer's dense MACs split into four classes by which operands are zero. Weight
  density is exact (from the mask); activation density is the measured or profiled fraction, taken
  independent of the weights, so the effectual MACs are ``dense × w × a`` — the relation behind
  Han et al. 2015's FLOP% column (Tables 2–5). Each class with a zero operand is executed, gated or
  skipped as the array says; with both operands zero the stronger handling wins
  (skip > gate > execute). Executed and gated MACs take cycles; only executed MACs cost energy
  (gating removes the dynamic energy of the multiplier and of the operand reads).
* **Register file.** Each executed MAC reads a weight, an activation and a partial sum and writes
  the partial sum: 3 reads + 1 write (Chen et al., Eyeriss, ISCA 2016, §I); operands at the data
  width, partial sums at the accumulator width.
* **SRAM and DRAM: perfect reuse.** Every datum crosses each level boundary once per layer: stored
  weights are read once from their buffer; input activations are read once and outputs written
  once (dense, at the data width). Weights come from DRAM (and are written into their buffer)
  unless the whole model's stored weights fit in the weight buffer (Han 2015 §1: on-chip SRAM
  when the model fits, DRAM otherwise). A layer whose input and output activations together
  exceed the room left in the activation buffer reads its input from and writes its output to
  DRAM. The network's input is read from DRAM, its output written there. Layers without weights
  (ReLU, pooling) are taken as fused with their producer and cost nothing here.
* **Stored weights.** Dense: every weight at the data width. When the array skips zero weights,
  the relative-index format of the description: (non-zeros + filler zeros) × (data + index bits).
  A layer that declares a stored width (shared-weight indices, Deep Compression §3) uses it in
  place of the data width and adds its codebook (entries × data width).
* **Cycles.** Compute cycles = (executed + gated MACs) / MAC units; memory cycles = DRAM bits /
  bandwidth at the clock; the layer takes the larger (perfect overlap, a roofline).
"""

from __future__ import annotations

import math

import pandas as pd

from hwmodels.hardware import Accelerator, Buffer
from hwmodels.pricing import ACTION_COLUMNS, LEVELS, price
from pruning.formats import relative_index_entries
from sim.workload import Layer, Workload

__all__ = ["count_actions", "estimate", "totals", "weight_storage_bits", "RESULT_COLUMNS"]

_STRENGTH = {"execute": 0, "gate": 1, "skip": 2}

RESULT_COLUMNS = (
    "model", "hardware", "layer", "kind", "weights", "nonzero_weights", "weight_density",
    "input_density", "dense_macs", "executed_macs", "gated_macs", "skipped_macs", "dense_flops",
    "flops", "flop_pct", "weight_storage_bits", "weights_resident", "dram_read_bits",
    "dram_write_bits", "sram_read_bits", "sram_write_bits", "rf_read_bits", "rf_write_bits",
    "energy_mac_pj", "energy_rf_pj", "energy_sram_pj", "energy_dram_pj", "energy_pj",
    "compute_cycles", "memory_cycles", "cycles", "latency_us",
)


def _index_bits(layer: Layer, hw: Accelerator) -> int:
    fmt = hw.weight_format
    return fmt.index_bits_conv if layer.kind == "conv2d" else fmt.index_bits_linear


def weight_storage_bits(layer: Layer, hw: Accelerator) -> int:
    """Bits of ``layer``'s weights as the hardware stores them (see module docstring), each
    weight at ``layer.weight_bits`` when the layer declares a width (quantised or shared
    weights), plus ``layer.codebook_entries`` shared values at the data width."""
    bits = layer.weight_bits or hw.mac_array.precision.bits
    codebook = layer.codebook_entries * hw.mac_array.precision.bits
    if hw.mac_array.zero_weights != "skip":
        return layer.weight_count * bits + codebook
    non_zeros, fillers = relative_index_entries(layer.mask, _index_bits(layer, hw))
    return (non_zeros + fillers) * (bits + _index_bits(layer, hw)) + codebook


def mac_classes(layer: Layer, hw: Accelerator) -> dict[str, float]:
    """Expected executed, gated and skipped MACs of one sample (they sum to the dense MACs)."""
    array = hw.mac_array
    dense = layer.dense_macs
    w, a = layer.weight_density, layer.input_density
    stronger = max(array.zero_weights, array.zero_activations, key=_STRENGTH.__getitem__)
    classes = {"execute": dense * w * a, "gate": 0.0, "skip": 0.0}
    classes[array.zero_weights] += dense * (1 - w) * a
    classes[array.zero_activations] += dense * w * (1 - a)
    classes[stronger] += dense * (1 - w) * (1 - a)
    return {"executed": classes["execute"], "gated": classes["gate"], "skipped": classes["skip"]}


def _row(layer: str, level: str, component: str, action: str, width: int, count: float) -> tuple:
    return (layer, level, component, action, width, float(count))


def _layer_actions(layer: Layer, hw: Accelerator, weights_resident: bool, act_room_bits: float,
                   first: bool, last: bool) -> list[tuple]:
    precision = hw.mac_array.precision
    bits, acc_bits = precision.bits, precision.accumulator_bits
    macs = mac_classes(layer, hw)
    executed = macs["executed"]
    weight_buffer, input_buffer = hw.buffer_for("weights"), hw.buffer_for("inputs")
    output_buffer = hw.buffer_for("outputs")
    stored = weight_storage_bits(layer, hw)
    in_bits = math.prod(layer.input_shape) * bits
    out_bits = math.prod(layer.output_shape) * bits
    spill = in_bits + out_bits > act_room_bits

    def accesses(buffer: Buffer, total_bits: float) -> float:
        return total_bits / buffer.width_bits

    rows = [
        _row(layer.name, "mac", "mac", "mac", bits, executed),
        _row(layer.name, "rf", "rf", "read", bits, 2 * executed),
        _row(layer.name, "rf", "rf", "read", acc_bits, executed),
        _row(layer.name, "rf", "rf", "write", acc_bits, executed),
        _row(layer.name, "sram", weight_buffer.name, "read", weight_buffer.width_bits,
             accesses(weight_buffer, stored)),
        _row(layer.name, "sram", input_buffer.name, "read", input_buffer.width_bits,
             accesses(input_buffer, in_bits)),
        _row(layer.name, "sram", output_buffer.name, "write", output_buffer.width_bits,
             accesses(output_buffer, out_bits)),
    ]
    dram_width = hw.dram.burst_bytes * 8
    if not weights_resident:
        rows.append(_row(layer.name, "dram", "dram", "read", dram_width, stored / dram_width))
        rows.append(_row(layer.name, "sram", weight_buffer.name, "write", weight_buffer.width_bits,
                         accesses(weight_buffer, stored)))
    if spill or first:
        rows.append(_row(layer.name, "dram", "dram", "read", dram_width, in_bits / dram_width))
        rows.append(_row(layer.name, "sram", input_buffer.name, "write", input_buffer.width_bits,
                         accesses(input_buffer, in_bits)))
    if spill or last:
        rows.append(_row(layer.name, "dram", "dram", "write", dram_width, out_bits / dram_width))
        rows.append(_row(layer.name, "sram", output_buffer.name, "read", output_buffer.width_bits,
                         accesses(output_buffer, out_bits)))
    return rows


def _residency(workload: Workload, hw: Accelerator) -> tuple[bool, float, dict[str, int]]:
    """Whether all stored weights fit in the weight buffer, and the room left for activations."""
    stored = {layer.name: weight_storage_bits(layer, hw) for layer in workload.compute_layers}
    weight_buffer, input_buffer = hw.buffer_for("weights"), hw.buffer_for("inputs")
    resident = sum(stored.values()) <= weight_buffer.capacity_bytes * 8
    room = input_buffer.capacity_bytes * 8
    if resident and input_buffer is weight_buffer:
        room -= sum(stored.values())
    return resident, room, stored


def count_actions(workload: Workload, hw: Accelerator) -> pd.DataFrame:
    """Action rows (see :mod:`hwmodels.pricing`) of every compute layer of ``workload``."""
    layers = workload.compute_layers
    if not layers:
        raise ValueError(f"workload '{workload.model}' has no Linear or Conv2d layer")
    resident, room, _ = _residency(workload, hw)
    rows = []
    for index, layer in enumerate(layers):
        rows += _layer_actions(layer, hw, resident, room, index == 0, index == len(layers) - 1)
    return pd.DataFrame(rows, columns=list(ACTION_COLUMNS))


def estimate(workload: Workload, hw: Accelerator, actions: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per-layer results (columns :data:`RESULT_COLUMNS`) of ``workload`` on ``hw``.

    Energies are in pJ, traffic in bits, latency in µs, for one sample.
    """
    if actions is None:
        actions = count_actions(workload, hw)
    actions = actions.assign(energy_pj=price(actions, hw), bits=actions["width_bits"] * actions["count"])
    energy = actions.pivot_table(index="layer", columns="level", values="energy_pj", aggfunc="sum")
    energy = energy.reindex(columns=list(LEVELS), fill_value=0.0).fillna(0.0)
    traffic = actions[actions["level"] != "mac"].pivot_table(
        index="layer", columns=["level", "action"], values="bits", aggfunc="sum"
    ).fillna(0.0)
    resident, _, stored = _residency(workload, hw)
    clock_hz = hw.clock_mhz * 1e6
    dram_bits_per_cycle = hw.dram.bandwidth_gbs * 1e9 * 8 / clock_hz
    records = []
    for layer in workload.compute_layers:
        macs = mac_classes(layer, hw)

        def moved(level: str, action: str) -> float:
            key = (level, action)
            return float(traffic.at[layer.name, key]) if key in traffic.columns else 0.0

        dram_bits = moved("dram", "read") + moved("dram", "write")
        compute_cycles = math.ceil((macs["executed"] + macs["gated"]) / hw.mac_array.macs_per_cycle)
        memory_cycles = math.ceil(dram_bits / dram_bits_per_cycle)
        cycles = max(compute_cycles, memory_cycles)
        layer_energy = energy.loc[layer.name]
        records.append({
            "model": workload.model,
            "hardware": hw.name,
            "layer": layer.name,
            "kind": layer.kind,
            "weights": layer.weight_count,
            "nonzero_weights": layer.nonzero_weights,
            "weight_density": layer.weight_density,
            "input_density": layer.input_density,
            "dense_macs": layer.dense_macs,
            "executed_macs": macs["executed"],
            "gated_macs": macs["gated"],
            "skipped_macs": macs["skipped"],
            "dense_flops": 2 * layer.dense_macs,
            "flops": 2 * macs["executed"],
            "flop_pct": 100.0 * macs["executed"] / layer.dense_macs,
            "weight_storage_bits": stored[layer.name],
            "weights_resident": resident,
            "dram_read_bits": moved("dram", "read"),
            "dram_write_bits": moved("dram", "write"),
            "sram_read_bits": moved("sram", "read"),
            "sram_write_bits": moved("sram", "write"),
            "rf_read_bits": moved("rf", "read"),
            "rf_write_bits": moved("rf", "write"),
            "energy_mac_pj": layer_energy["mac"],
            "energy_rf_pj": layer_energy["rf"],
            "energy_sram_pj": layer_energy["sram"],
            "energy_dram_pj": layer_energy["dram"],
            "energy_pj": float(layer_energy.sum()),
            "compute_cycles": compute_cycles,
            "memory_cycles": memory_cycles,
            "cycles": cycles,
            "latency_us": cycles / clock_hz * 1e6,
        })
    return pd.DataFrame.from_records(records, columns=list(RESULT_COLUMNS))


_SUMMED = [
    "weights", "nonzero_weights", "dense_macs", "executed_macs", "gated_macs", "skipped_macs",
    "dense_flops", "flops", "weight_storage_bits", "dram_read_bits", "dram_write_bits",
    "sram_read_bits", "sram_write_bits", "rf_read_bits", "rf_write_bits", "energy_mac_pj",
    "energy_rf_pj", "energy_sram_pj", "energy_dram_pj", "energy_pj", "compute_cycles",
    "memory_cycles", "cycles", "latency_us",
]


def totals(results: pd.DataFrame, by: list[str] | None = None) -> pd.DataFrame:
    """Network totals of per-layer results, one row per group of ``by`` (default: model, hardware
    and, when present, variant). Densities and FLOP% are recomputed from the summed counts."""
    by = by or [c for c in ("model", "hardware", "variant") if c in results.columns]
    summed = results.groupby(by, sort=False)[_SUMMED].sum().reset_index()
    summed["weight_density"] = summed["nonzero_weights"] / summed["weights"]
    summed["flop_pct"] = 100.0 * summed["executed_macs"] / summed["dense_macs"]
    summed["layer"] = "total"
    return summed
