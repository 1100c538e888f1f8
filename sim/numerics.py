"""The functional model: each layer's products computed through the modelled dataflow at the
array's precision, and checked against :mod:`sim.reference`.

Number formats (``mac_array.precision``):

* ``fp``: weights and activations rounded to IEEE binary16/32/64 (``bits``; numpy float16,
  float32, float64, round to nearest even); products and sums in the accumulator format
  (``accumulator_bits``). An fp16 × fp16 product is exact in fp32, so with the presets (fp16
  operands, fp32 accumulator) only the additions round.
* ``int``: symmetric per-tensor quantisation, one scale for the layer's weights and one for its
  input activations: ``s = max|x| / (2^(b−1) − 1)`` (1 for an all-zero tensor) and
  ``q = clip(rint(x / s), −(2^(b−1) − 1), 2^(b−1) − 1)`` (``rint`` rounds half to even). The
  array multiplies the integers ``q``; the scales are applied after it, outside this model.
  Accumulators are ``accumulator_bits`` two's-complement integers; a sum outside their range
  saturates (clamped to ``[−2^(a−1), 2^(a−1) − 1]``) or wraps (modulo 2^a), per
  ``precision.overflow``.

Accumulation through the dataflow (:mod:`sim.systolic`):

* WS and IS hold the reduction K on the array rows: a fold adds up at most R products down a
  column, and each fold's partial sum is added to the running partial sum of the earlier row
  folds in the accumulator format: ``s_f = acc(s_{f−1} + p_f)``.
* OS accumulates the whole reduction in time inside one PE: ``s = acc(p)``.

The accumulator's rounding or overflow is applied at fold boundaries, where a partial sum leaves
the array or is stored; within a fold, integer sums are exact and fp sums are formed by a batched GEMM in
the accumulator format (not in the column's exact order: bit-exactness within a fold is not claimed).
With ``wrap`` the result equals the wrapped exact sum (modular addition is associative); with
``saturate`` it equals the clamped exact sum unless a partial sum saturated at an earlier fold
boundary, which is a property of the hardware: such outputs are counted
(``NumericsReport.saturated_midway``) and exempt from the equality.

The check compares with :func:`sim.reference.sparse_reference` of the same operands (rounded or
quantised as above: for the fp16 presets the same fp16-rounded operands), accumulated in float64.
For int that is exact (bounds below). For fp it is a wider accumulation than the array's fp32:
an fp32 CSR sum is itself off by up to 2.4e-6 (relative, as defined below) on AlexNet's fc1
(K = 9216), most of the 1e-5 budget and more for VGG-16's fc6 (K = 25088), whereas the array's
fold-wise fp32 sums stay within 1e-6 of float64 there (measured); so the check measures the
array's rounding alone. Tolerances:

* int: exactly equal;
* fp: relative error ``max|a − b| / max|b|`` (``b`` the reference) at most
  :data:`FP_TOLERANCE` of the accumulator width: 1e-5 for fp32, 1e-12 for fp64, and a loose 1e-2
  for fp16 accumulators (long fp16 sums are inaccurate by nature; such a check may fail on
  layers with a long reduction, an honest result rather than a simulator bug).

Any other outcome raises :class:`NumericsError` naming the layer, never a warning.
Integer limits: products and per-fold sums are formed exactly in float64 (batched GEMM), so
``K · (2^(b−1) − 1)^2 < 2^53`` is required, and accumulators of at most 62 bits (int64 holds the
running sum and the next partial sum); beyond that :class:`sim.mapping.SimulationError`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from hwmodels.hardware import MacArray, Precision
from sim.mapping import SimulationError
from sim.reference import COLUMN_BLOCK_ELEMENTS, column_blocks, gemm_operands, row_blocks, sparse_reference
from sim.systolic import ROLES
from sim.workload import Layer

__all__ = [
    "FP_TOLERANCE", "NumericsError", "NumericsReport", "Operands", "apply_overflow", "array_products", "check",
    "exact_products", "prepare", "quantize", "reference_products", "relative_error", "simulate_numerics",
]

FP_TOLERANCE = {16: 1e-2, 32: 1e-5, 64: 1e-12}
_FLOAT = {16: np.float16, 32: np.float32, 64: np.float64}
_TORCH = {np.float16: torch.float16, np.float32: torch.float32, np.float64: torch.float64}
_EXACT_FLOAT64 = 2 ** 53
_QUANTIZE_PIECE = 1 << 16  # elements quantised at a time


class NumericsError(SimulationError):
    """A layer whose simulated output differs from the reference; the message names the layer."""


@dataclass(frozen=True)
class Operands:
    """A layer's matrix-product operands as the array sees them: ``[(W_g, X_g)]`` per group in the
    array's number format (int32 integers for int; for fp, values rounded to the operand format
    and stored in the accumulator's numpy type, which holds them exactly), and the int scales."""

    groups: list[tuple[np.ndarray, np.ndarray]]
    weight_scale: float = 1.0
    input_scale: float = 1.0


def quantize(x: np.ndarray, bits: int) -> tuple[np.ndarray, float]:
    """Symmetric per-tensor quantisation of ``x`` to ``bits``-bit integers (module docstring)."""
    qmax = 2 ** (bits - 1) - 1
    peak = max(float(np.max(x)), -float(np.min(x))) if x.size else 0.0
    scale = peak / qmax if peak > 0 else 1.0
    flat = np.ascontiguousarray(x).reshape(-1)
    q = np.empty(flat.shape, dtype=np.int32 if bits <= 32 else np.int64)
    # In pieces through one float64 buffer that stays in cache (3x faster than whole-array passes)
    buffer = np.empty(min(_QUANTIZE_PIECE, flat.size), dtype=np.float64)
    for start in range(0, flat.size, _QUANTIZE_PIECE):
        piece = buffer[:min(_QUANTIZE_PIECE, flat.size - start)]
        np.divide(flat[start:start + len(piece)], scale, out=piece, dtype=np.float64)
        np.rint(piece, out=piece)
        np.clip(piece, -qmax, qmax, out=piece)
        q[start:start + len(piece)] = piece
    return q.reshape(np.shape(x)), scale


def prepare(layer: Layer, precision: Precision) -> Operands:
    """The operands of ``layer`` (weight with mask applied, ``input_sample``) in the array's format."""
    if layer.input_sample is None:
        raise SimulationError(f"layer '{layer.name}' has no input sample; extract the workload with "
                              "keep_activations=True")
    if precision.dtype == "fp":
        operand, acc = _FLOAT[precision.bits], _FLOAT[precision.accumulator_bits]

        def rounded(x: np.ndarray) -> np.ndarray:
            flat = np.ascontiguousarray(x).reshape(-1)
            out = np.empty(flat.shape, dtype=acc)
            step = COLUMN_BLOCK_ELEMENTS  # in pieces: no second full-size temporary
            for start in range(0, flat.size, step):
                piece = flat[start:start + step]
                if operand is np.float16:  # torch converts with F16C, numpy ~10x slower; both round to even
                    out[start:start + step] = torch.from_numpy(piece).to(torch.float16).to(_TORCH[acc]).numpy()
                else:
                    out[start:start + step] = piece.astype(operand).astype(acc, copy=False)
            return out.reshape(x.shape)

        return Operands(gemm_operands(layer, rounded(layer.weight), rounded(layer.input_sample)))
    weight, weight_scale = quantize(layer.weight, precision.bits)
    sample, input_scale = quantize(layer.input_sample, precision.bits)
    return Operands(gemm_operands(layer, weight, sample), weight_scale, input_scale)


def _overflow(values: np.ndarray, precision: Precision) -> np.ndarray:
    """int64 ``values`` brought into the accumulator's range (saturate or wrap)."""
    bits = precision.accumulator_bits
    low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    if precision.overflow_mode == "wrap":
        return (values - low) % (2 ** bits) + low
    return np.clip(values, low, high)


apply_overflow = _overflow  # public name, used by the sparse arrays' numerics (sim.eie)


def _check_int_bounds(layer_name: str, k: int, precision: Precision) -> None:
    qmax = 2 ** (precision.bits - 1) - 1
    if precision.accumulator_bits > 62 or k * qmax * qmax >= _EXACT_FLOAT64:
        raise SimulationError(
            f"layer '{layer_name}': int numerics support accumulators of at most 62 bits and "
            f"K·(2^(b−1)−1)^2 < 2^53 (here K={k}, b={precision.bits}, a={precision.accumulator_bits}); "
            "run without numerics")


def _blocks(m: int, k: int, n: int, folds: int) -> tuple[list[slice], list[slice]]:
    """Row blocks of W and column blocks of X keeping W, X and the folds' partial sums
    (folds × rows × columns) each under the memory bound of :mod:`sim.reference`."""
    rows = row_blocks(m, k)
    height = rows[0].stop - rows[0].start
    width = max(1, min(COLUMN_BLOCK_ELEMENTS // max(1, k), COLUMN_BLOCK_ELEMENTS // max(1, folds * height)))
    return rows, [slice(start, min(n, start + width)) for start in range(0, n, width)]


def array_products(operands: Operands, array: MacArray, layer_name: str = "") -> tuple[np.ndarray, np.ndarray]:
    """Each group's ``W_g · X_g`` accumulated as the array does, stacked (out_channels × N).

    The folds' partial sums come from one batched matrix product (K padded with zeros to whole
    folds, which adds nothing; exact for int, in the accumulator format for fp); they are then
    added fold after fold in the accumulator format.
    Returns the outputs (int64 for int, the accumulator's float type for fp) and a mask of the
    outputs whose partial sum saturated at a fold boundary before their last fold (int saturate;
    all False otherwise).
    """
    precision = array.precision
    is_int = precision.dtype == "int"
    acc = np.float64 if is_int else _FLOAT[precision.accumulator_bits]
    outputs, masks = [], []
    for w_g, x_g in operands.groups:
        (m, k), n = w_g.shape, x_g.shape[1]
        if is_int:
            _check_int_bounds(layer_name, k, precision)
        fold_len = array.rows if ROLES[array.dataflow].reduction_on_rows else k
        folds = math.ceil(k / fold_len)
        pad = folds * fold_len - k
        out = np.empty((m, n), dtype=np.int64 if is_int else acc)
        midway = np.zeros(out.shape, dtype=bool)
        row_slices, column_slices = _blocks(m, k, n, folds)
        for rows in row_slices:
            w = np.pad(w_g[rows].astype(acc, copy=False), ((0, 0), (0, pad)))
            w = np.ascontiguousarray(w.reshape(w.shape[0], folds, fold_len).transpose(1, 0, 2))
            for block in column_slices:
                x = np.pad(x_g[:, block].astype(acc, copy=False), ((0, pad), (0, 0)))
                # torch's batched GEMM: numpy's OpenBLAS threads thrash on a loaded 2-core machine.
                partials = torch.bmm(torch.from_numpy(w), torch.from_numpy(x.reshape(folds, fold_len, -1))).numpy()
                if is_int:
                    partials = partials.astype(np.int64)
                running = partials[0]
                for f in range(1, folds + 1):
                    if is_int:
                        raw = running
                        running = _overflow(raw, precision)
                        if f < folds and precision.overflow_mode == "saturate":
                            midway[rows, block] |= raw != running
                    if f < folds:
                        running = running + partials[f]
                out[rows, block] = running
        outputs.append(out)
        masks.append(midway)
    return np.concatenate(outputs, axis=0), np.concatenate(masks, axis=0)


def exact_products(w: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``W · X`` of integer matrices as int64, exactly: float64 GEMMs (torch) over blocks of W's
    rows and X's columns (:func:`sim.reference.row_blocks`, ``column_blocks``). float64 adds
    integers below 2^53 without rounding, in any order, so the sums are exact as long as
    ``K · max|w| · max|x| < 2^53`` (the caller's precondition, as for the int limits above)."""
    (m, k), n = w.shape, x.shape[1]
    out = np.empty((m, n), dtype=np.int64)
    columns = column_blocks(k, n)
    for rows in row_blocks(m, k):
        left = torch.from_numpy(w[rows].astype(np.float64))
        for block in columns:
            right = torch.from_numpy(np.ascontiguousarray(x[:, block], dtype=np.float64))
            out[rows, block] = torch.mm(left, right).numpy()  # integral float64 values: the cast is exact
    return out


def reference_products(operands: Operands, precision: Precision) -> np.ndarray:
    """:func:`sim.reference.sparse_reference` of every group, stacked, accumulated in float64 (see
    the module docstring). Int: the exact sums brought into range by the accumulator's overflow
    rule."""
    out = np.concatenate([sparse_reference(w_g, x_g, np.float64) for w_g, x_g in operands.groups], axis=0)
    if precision.dtype == "int":
        return _overflow(np.rint(out).astype(np.int64), precision)
    return out


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """``max|a − b| / max|b|`` (``b`` the reference); ``max|a|`` when ``b`` is all zero."""
    diff = float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)))) if a.size else 0.0
    scale = float(np.max(np.abs(b))) if b.size else 0.0
    return diff / scale if scale > 0 else diff


@dataclass(frozen=True)
class NumericsReport:
    """Outcome of one layer's check: the relative error (0 when exact) and the number of outputs
    exempted because they saturated before their last fold (int saturate only)."""

    relative_error: float
    saturated_midway: int
    exact: bool


def check(layer_name: str, simulated: np.ndarray, reference: np.ndarray, precision: Precision,
          saturated_midway: np.ndarray | None = None) -> NumericsReport:
    """Raise :class:`NumericsError` unless ``simulated`` matches ``reference`` (module docstring);
    ``saturated_midway`` marks int outputs exempt from equality (see :func:`array_products`)."""
    if simulated.shape != reference.shape:
        raise NumericsError(f"layer '{layer_name}': simulated output has shape {simulated.shape}, "
                            f"the reference {reference.shape}")
    error = relative_error(simulated, reference)
    if precision.dtype == "int":
        exempt = np.zeros(simulated.shape, bool) if saturated_midway is None else saturated_midway
        wrong = (simulated != reference) & ~exempt
        if wrong.any():
            first = tuple(int(i) for i in np.argwhere(wrong)[0])
            raise NumericsError(
                f"layer '{layer_name}': {int(wrong.sum())} of {simulated.size} integer outputs differ "
                f"from the reference (first at {first}: {simulated[first]} vs {reference[first]})")
        return NumericsReport(error, int(exempt.sum()), bool(np.array_equal(simulated, reference)))
    tolerance = FP_TOLERANCE[precision.accumulator_bits]
    if not math.isfinite(error) or error > tolerance:
        raise NumericsError(f"layer '{layer_name}': relative error {error:.3g} (max|a−b|/max|b|) exceeds "
                            f"{tolerance:g} for fp{precision.accumulator_bits} accumulation")
    return NumericsReport(error, 0, error == 0.0)


def simulate_numerics(layer: Layer, array: MacArray, operands: Operands | None = None) -> NumericsReport:
    """Compute ``layer`` through the dataflow of ``array`` and check it against the reference."""
    operands = operands or prepare(layer, array.precision)
    simulated, midway = array_products(operands, array, layer.name)
    return check(layer.name, simulated, reference_products(operands, array.precision), array.precision, midway)
