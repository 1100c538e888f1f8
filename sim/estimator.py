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
* **Operand widths, per layer** (:func:`operand_widths`). A layer on the hardware's own arithmetic
  uses its precision: weights and activations at ``bits``, partial sums at ``accumulator_bits``,
  and each MAC is one ``mac`` action of the hardware's dtype (the energy table's MAC: multiply +
  add at the operand width, as the cycle-level simulator prices it). A *fixed-point* layer
  (``Layer.fixed_point_bits``, e.g. from :mod:`pruning.quantise`) has its own widths: weights at
  ``fixed_point_bits`` w, input activations at ``activation_bits`` a, and an integer
  accumulator of acc = max(w, a, the hardware's ``accumulator_bits``) bits (han45nm: 32). Its
  w×a-bit MAC is priced as one integer multiply at the wider operand, max(w, a) bits (the
  multiplier must take the wider operand; Horowitz's table has square multipliers only), plus
  one integer add at the accumulator width (the accumulation): two action rows, ``mult`` and
  ``add``, of the ``fixed-point-mac`` component. Exact rows only: a width the energy table
  lacks (horowitz45 has no 16-bit int multiply) is an UnknownEnergyError naming the layer and
  the width (:func:`check_fixed_point_widths`). Layers of different widths may share a network.
  Activations are stored at the width of the layer that reads them: a layer writes its output
  at the next compute layer's activation width (the network's output at its own).
* **Register file.** Each executed MAC reads a weight, an activation and a partial sum and writes
  the partial sum: 3 reads + 1 write (Chen et al., Eyeriss, ISCA 2016, §I); each operand at its
  own width, partial sums at the accumulator width.
* **SRAM and DRAM: perfect reuse.** Every datum crosses each level boundary once per layer: stored
  weights are read once from their buffer; input activations are read once and outputs written
  once (dense, at their activation widths). Weights come from DRAM (and are written into their buffer)
  unless the whole model's stored weights fit in the weight buffer (Han 2015 §1: on-chip SRAM
  when the model fits, DRAM otherwise). A layer whose input and output activations together
  exceed the room left in the activation buffer reads its input from and writes its output to
  DRAM. The network's input is read from DRAM, its output written there. Layers without weights
  (ReLU, pooling) are taken as fused with their producer and cost nothing here.
* **Stored weights.** Dense: every weight at the weight width. When the array skips zero weights,
  the compressed format of the description: relative index, (non-zeros + filler zeros) × (weight
  + index bits); bitmask, non-zeros × weight bits + one bit per weight. A layer that declares a stored width (shared-weight indices, Deep Compression §3) uses
  it in place of the weight width and adds its codebook (entries × weight width). The energy of
  moving the index bits (the same SRAM and DRAM actions as the weights, for the index bits alone)
  is reported as ``energy_index_pj``, of which ``energy_index_dram_pj`` is DRAM: a part of
  ``energy_sram_pj`` + ``energy_dram_pj``, not an addition to them.
* **Cycles.** Compute cycles = (executed + gated MACs) / MAC units; memory cycles = DRAM bits /
  bandwidth at the clock; the layer takes the larger (perfect overlap, a roofline).
* **Area and EDP.** Every row carries the chip's area in mm² (:func:`area_columns`: MAC array,
  register files, SRAM, total; :mod:`hwmodels.area`), the same on every row of a run, and the
  energy-delay product ``edp_pj_s`` = energy (pJ) × latency (s), in pJ·s; a network's EDP is its
  total energy × its total latency (:func:`totals`), not a sum over layers.
"""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass

import pandas as pd

from hwmodels.area import area_breakdown
from hwmodels.hardware import Accelerator, Buffer
from hwmodels.pricing import ACTION_COLUMNS, FIXED_POINT_MAC, LEVELS, check_integer_mac, price
from pruning.formats import relative_index_entries
from sim.workload import Layer, Workload

__all__ = ["AREA_COLUMNS", "OperandWidths", "area_columns", "check_fixed_point_widths", "count_actions",
           "edp_pj_s", "estimate", "index_storage_bits", "operand_widths", "totals",
           "weight_storage_bits", "RESULT_COLUMNS"]

_STRENGTH = {"execute": 0, "gate": 1, "skip": 2}

RESULT_COLUMNS = (
    "model", "hardware", "layer", "kind", "weight_bits", "activation_bits", "weights", "nonzero_weights",
    "weight_density",
    "input_density", "dense_macs", "executed_macs", "gated_macs", "skipped_macs", "dense_flops",
    "flops", "flop_pct", "weight_storage_bits", "weights_resident", "dram_read_bits",
    "dram_write_bits", "sram_read_bits", "sram_write_bits", "rf_read_bits", "rf_write_bits",
    "energy_mac_pj", "energy_rf_pj", "energy_sram_pj", "energy_dram_pj", "energy_pj",
    "energy_index_pj", "energy_index_dram_pj",
    "compute_cycles", "memory_cycles", "cycles", "latency_us", "edp_pj_s",
    "area_mac_mm2", "area_rf_mm2", "area_sram_mm2", "area_mm2",
)
AREA_COLUMNS = ("area_mac_mm2", "area_rf_mm2", "area_sram_mm2", "area_mm2")


def area_columns(hw: Accelerator) -> dict[str, float]:
    """The chip's area as result columns, mm²: MAC array, register files, all SRAM buffers together
    and the total (:func:`hwmodels.area.area_breakdown`; no DRAM, it is off chip)."""
    parts = area_breakdown(hw)
    mac, rf = parts.pop("mac"), parts.pop("rf")
    sram = sum(parts.values())
    return dict(zip(AREA_COLUMNS, (mac, rf, sram, mac + rf + sram)))


def edp_pj_s(energy_pj, latency_us):
    """Energy-delay product in pJ·s: energy in pJ × latency in µs × 1e-6 (numbers or Series)."""
    return energy_pj * latency_us * 1e-6


@dataclass(frozen=True)
class OperandWidths:
    """Bits of one layer's operands on a piece of hardware (module docstring). ``fixed_point``:
    the layer's own integer widths rather than the hardware's precision."""

    weight: int
    activation: int
    accumulator: int
    fixed_point: bool

    @property
    def multiply(self) -> int:
        """Width of the multiplier a MAC uses: the wider operand."""
        return max(self.weight, self.activation)


def operand_widths(layer: Layer, hw: Accelerator) -> OperandWidths:
    """The weight, activation and accumulator widths of ``layer`` on ``hw`` (module docstring)."""
    precision = hw.mac_array.precision
    if layer.fixed_point_bits is None:
        return OperandWidths(precision.bits, precision.bits, precision.accumulator_bits, False)
    weight = layer.fixed_point_bits
    activation = layer.activation_bits or weight
    return OperandWidths(weight, activation, max(weight, activation, precision.accumulator_bits), True)


def check_fixed_point_widths(hw: Accelerator, weight_bits: int, activation_bits: int, where: str = "") -> None:
    """UnknownEnergyError (naming ``where``, the widths and what the table has) unless ``hw``'s
    energy table prices a ``weight_bits`` × ``activation_bits`` fixed-point MAC; usable before
    any training to check a requested quantisation."""
    accumulator = max(weight_bits, activation_bits, hw.mac_array.precision.accumulator_bits)
    check_integer_mac(hw, max(weight_bits, activation_bits), accumulator,
                      f"{where}{weight_bits}-bit weights × {activation_bits}-bit activations")


def _index_bits(layer: Layer, hw: Accelerator) -> int:
    fmt = hw.weight_format
    return fmt.index_bits_conv if layer.kind == "conv2d" else fmt.index_bits_linear


def weight_storage_bits(layer: Layer, hw: Accelerator) -> int:
    """Bits of ``layer``'s weights as the hardware stores them (see module docstring), each
    weight at ``layer.weight_bits`` when the layer declares a width (quantised or shared
    weights), plus ``layer.codebook_entries`` shared values at the weight width."""
    value_bits = operand_widths(layer, hw).weight
    bits = layer.weight_bits or value_bits
    codebook = layer.codebook_entries * value_bits
    if hw.mac_array.zero_weights != "skip":
        return layer.weight_count * bits + codebook
    if hw.weight_format.kind == "bitmask":  # the non-zeros and a bit per weight position
        return layer.nonzero_weights * bits + index_storage_bits(layer, hw) + codebook
    non_zeros, fillers = _stored_entries(layer, _index_bits(layer, hw))
    return (non_zeros + fillers) * (bits + _index_bits(layer, hw)) + codebook


def index_storage_bits(layer: Layer, hw: Accelerator) -> int:
    """The part of :func:`weight_storage_bits` that is metadata when the array skips zero
    weights, else 0: relative indices, (non-zeros + filler zeros) × index bits; a bitmask, one
    bit per weight position (:func:`pruning.formats.bitmask_size_bits` less the values)."""
    if hw.mac_array.zero_weights != "skip":
        return 0
    if hw.weight_format.kind == "bitmask":
        return layer.weight_count
    non_zeros, fillers = _stored_entries(layer, _index_bits(layer, hw))
    return (non_zeros + fillers) * _index_bits(layer, hw)


# Counting filler zeros walks the whole mask (~1 s for AlexNet); a design-space sweep prices the
# same layers on hundreds of hardware points, so the count is kept per layer object and index
# width. Weak keys: the entry goes with the layer. Layers are frozen and their masks never change.
_ENTRIES: weakref.WeakKeyDictionary[Layer, dict[int, tuple[int, int]]] = weakref.WeakKeyDictionary()


def _stored_entries(layer: Layer, index_bits: int) -> tuple[int, int]:
    """:func:`pruning.formats.relative_index_entries` of ``layer.mask``, memoised."""
    known = _ENTRIES.setdefault(layer, {})
    if index_bits not in known:
        known[index_bits] = relative_index_entries(layer.mask, index_bits)
    return known[index_bits]


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


def _mac_rows(layer: Layer, widths: OperandWidths, executed: float) -> list[tuple]:
    """The arithmetic and register-file rows of the executed MACs (module docstring)."""
    if widths.fixed_point:
        rows = [_row(layer.name, "mac", FIXED_POINT_MAC, "mult", widths.multiply, executed),
                _row(layer.name, "mac", FIXED_POINT_MAC, "add", widths.accumulator, executed)]
    else:
        rows = [_row(layer.name, "mac", "mac", "mac", widths.weight, executed)]
    if widths.weight == widths.activation:
        rows.append(_row(layer.name, "rf", "rf", "read", widths.weight, 2 * executed))
    else:
        rows += [_row(layer.name, "rf", "rf", "read", widths.weight, executed),
                 _row(layer.name, "rf", "rf", "read", widths.activation, executed)]
    return rows + [_row(layer.name, "rf", "rf", "read", widths.accumulator, executed),
                   _row(layer.name, "rf", "rf", "write", widths.accumulator, executed)]


def _activation_bits(workload: Workload, hw: Accelerator) -> list[tuple[int, int]]:
    """Per compute layer, the bits per input and per output activation value: inputs at the
    layer's activation width, outputs at the next layer's (the last layer's at its own)."""
    inputs = [operand_widths(layer, hw).activation for layer in workload.compute_layers]
    return list(zip(inputs, inputs[1:] + inputs[-1:]))


def _weight_rows(name: str, hw: Accelerator, stored_bits: float, weights_resident: bool) -> list[tuple]:
    """Moving ``stored_bits`` of a layer's stored weights: read once from the weight buffer and,
    unless the weights are resident, first read from DRAM and written into the buffer."""
    buffer, dram_width = hw.buffer_for("weights"), hw.dram.burst_bytes * 8
    rows = [_row(name, "sram", buffer.name, "read", buffer.width_bits, stored_bits / buffer.width_bits)]
    if not weights_resident:
        rows += [_row(name, "dram", "dram", "read", dram_width, stored_bits / dram_width),
                 _row(name, "sram", buffer.name, "write", buffer.width_bits, stored_bits / buffer.width_bits)]
    return rows


def _layer_actions(layer: Layer, hw: Accelerator, weights_resident: bool, act_room_bits: float,
                   first: bool, last: bool, value_bits: tuple[int, int]) -> list[tuple]:
    """Action rows of one layer; ``value_bits``: bits per input and per output activation."""
    macs = mac_classes(layer, hw)
    executed = macs["executed"]
    input_buffer, output_buffer = hw.buffer_for("inputs"), hw.buffer_for("outputs")
    in_bits = math.prod(layer.input_shape) * value_bits[0]
    out_bits = math.prod(layer.output_shape) * value_bits[1]
    spill = in_bits + out_bits > act_room_bits

    def accesses(buffer: Buffer, total_bits: float) -> float:
        return total_bits / buffer.width_bits

    rows = _mac_rows(layer, operand_widths(layer, hw), executed) + _weight_rows(
        layer.name, hw, weight_storage_bits(layer, hw), weights_resident) + [
        _row(layer.name, "sram", input_buffer.name, "read", input_buffer.width_bits,
             accesses(input_buffer, in_bits)),
        _row(layer.name, "sram", output_buffer.name, "write", output_buffer.width_bits,
             accesses(output_buffer, out_bits)),
    ]
    dram_width = hw.dram.burst_bytes * 8
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
    for layer in layers:
        widths = operand_widths(layer, hw)
        if widths.fixed_point:
            check_fixed_point_widths(hw, widths.weight, widths.activation, f"layer '{layer.name}': ")
    resident, room, _ = _residency(workload, hw)
    rows = []
    for index, (layer, value_bits) in enumerate(zip(layers, _activation_bits(workload, hw))):
        rows += _layer_actions(layer, hw, resident, room, index == 0, index == len(layers) - 1, value_bits)
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
    area = area_columns(hw)
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
        index_rows = pd.DataFrame(_weight_rows(layer.name, hw, index_storage_bits(layer, hw), resident),
                                  columns=list(ACTION_COLUMNS))
        index_energy = price(index_rows, hw)
        records.append({
            "model": workload.model,
            "hardware": hw.name,
            "layer": layer.name,
            "kind": layer.kind,
            "weight_bits": operand_widths(layer, hw).weight,
            "activation_bits": operand_widths(layer, hw).activation,
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
            "energy_index_pj": float(index_energy.sum()),
            "energy_index_dram_pj": float(index_energy[index_rows["level"] == "dram"].sum()),
            "compute_cycles": compute_cycles,
            "memory_cycles": memory_cycles,
            "cycles": cycles,
            "latency_us": cycles / clock_hz * 1e6,
            "edp_pj_s": edp_pj_s(float(layer_energy.sum()), cycles / clock_hz * 1e6),
            **area,
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
    and, when present, variant). Densities and FLOP% are recomputed from the summed counts, EDP
    from the summed energy and latency; area columns are the chip's (not summed)."""
    by = by or [c for c in ("model", "hardware", "variant") if c in results.columns]
    groups = results.groupby(by, sort=False)
    summed = groups[_SUMMED].sum().reset_index()
    area = [c for c in AREA_COLUMNS if c in results.columns]
    if area:
        summed = summed.merge(groups[area].first().reset_index(), on=by)
    summed["weight_density"] = summed["nonzero_weights"] / summed["weights"]
    summed["flop_pct"] = 100.0 * summed["executed_macs"] / summed["dense_macs"]
    summed["edp_pj_s"] = edp_pj_s(summed["energy_pj"], summed["latency_us"])
    summed["layer"] = "total"
    return summed
