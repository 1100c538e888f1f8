"""The dense systolic array: dataflows, cycles per fold, MAC classes, and its SimPy unit.

A layer reaches the array as matrix products ``Y_g = W_g · X_g`` (M × K times K × N, one per
group; :mod:`sim.reference` lowers convolutions with im2col). Following SCALE-Sim (Samajdar et
al., "SCALE-Sim: Systolic CNN Accelerator Simulator", arXiv:1811.02883, Sec. II-III), each
dataflow maps two GEMM dimensions onto the array (``Sr`` on its R rows, ``Sc`` on its C columns)
and streams the third in time (``T``); the operand indexed by (Sr, Sc) stays in the PEs:

=========  ======  ======  =====  ==================  ==================  =======================
dataflow   Sr      Sc      T      stationary          enters at the left   top/bottom edge
=========  ======  ======  =====  ==================  ==================  =======================
``ws``     K       M       N      weights W[k, m]     inputs X[k, n]       partial sums out
``os``     N       M       K      outputs Y[n, m]     inputs X[k, n]       weights in (top)
``is``     K       N       M      inputs X[k, n]      weights W[m, k]      partial sums out
=========  ======  ======  =====  ==================  ==================  =======================

A GEMM takes ``ceil(Sr/R) · ceil(Sc/C)`` folds (per group); in WS and IS the reduction K lies on
the rows, so the row folds of one column fold produce partial sums that are added up across folds
(:mod:`sim.mapping` keeps them on chip or spills them; :mod:`sim.numerics` adds them in the
accumulator format). In OS the reduction runs in time inside each PE.

Cycles of one fold (SCALE-Sim's runtime, arXiv:1811.02883 Eq. 1, ``τ = 2·Sr + Sc + T − 2`` for
a fold that fills the array), with R × C the *array* dimensions, also for a fold that uses only
part of the array: SCALE-Sim v2 pads such folds with null requests, because operands still enter
at one edge and results still leave at the opposite one::

    fold_cycles(R, C, T) = 2·R + C + T − 2

derived per dataflow (cycles counted from the first operand entering the array to the last
result leaving it; operands are skewed by one cycle per row/column):

* **OS.** Input row i and weight column j enter skewed by i and j cycles; PE (i, j) gets its last
  operand pair (t = T−1) at cycle T−1+i+j, so the last MAC (i = R−1, j = C−1) is in cycle
  R+C+T−3: ``R + C + T − 2`` cycles of compute. The finished outputs then shift out of the
  array one row per cycle: ``R`` more. Total ``2R + C + T − 2``.
* **WS.** The weight tile is shifted in from the top one row per cycle: ``R`` cycles (SCALE-Sim
  v2's ``inter_fold_gap_prefix = arr_row``). Input vector t enters row i at cycle t+i and its
  partial sum leaves the bottom of column j after R rows, at cycle t+(R−1)+j+1; the last one
  (t = T−1, j = C−1) leaves at ``T + R + C − 2``. Total ``2R + C + T − 2``.
* **IS.** WS with the roles of inputs and weights swapped: the input tile is preloaded (R
  cycles), the M weight vectors stream (T = M). Total ``2R + C + T − 2``.

The overhead ``2R + C − 2`` (fill and drain) is paid once per fold; the T cycles of a fold may be
split into chunks whose data arrive at different times (:mod:`sim.mapping`), which leaves the sum
unchanged and lets stalls fall between chunks.

Zeros: the array is dense, so a MAC with a zero operand takes its cycle. With ``execute`` it also
costs its energy; with ``gate`` the multiplier and the PE's operand registers are clock-gated
(no MAC or register-file energy). ``skip`` of zero weights, in WS only, compacts each column of
the stationary tile (:mod:`sim.compaction`: passes instead of row folds, same fold formula);
``skip`` of zero activations is rejected by the hardware description.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable

import numpy as np

from hwmodels.hardware import MacArray
from sim.workload import Layer

if TYPE_CHECKING:
    import simpy

__all__ = [
    "ROLES", "ArrayUnit", "GemmShape", "MacCounts", "Roles", "compute_cycles", "count_macs",
    "fold_cycles", "fold_overhead", "gemm_shape", "spatial_dims",
]


@dataclass(frozen=True)
class Roles:
    """Which GEMM dimension sits on the rows, the columns and in time, and which data kind
    (``weights``, ``inputs``, ``outputs``) is stationary, enters at the left edge (row stream)
    and moves along the columns (column stream)."""

    rows: str
    cols: str
    time: str
    stationary: str
    row_stream: str
    col_stream: str

    @property
    def reduction_on_rows(self) -> bool:
        """True when folds produce partial sums that must be added across row folds (WS, IS)."""
        return self.rows == "K"


ROLES: dict[str, Roles] = {
    "ws": Roles(rows="K", cols="M", time="N", stationary="weights", row_stream="inputs", col_stream="outputs"),
    "os": Roles(rows="N", cols="M", time="K", stationary="outputs", row_stream="inputs", col_stream="weights"),
    "is": Roles(rows="K", cols="N", time="M", stationary="inputs", row_stream="weights", col_stream="outputs"),
}


@dataclass(frozen=True)
class GemmShape:
    """``groups`` independent products of M × K by K × N (one sample).

    ``input_fraction``: distinct input activations per element of the im2col'd input X (≤ 1). The
    im2col matrix repeats an input pixel in up to kh·kw columns and adds padding zeros; the
    hardware keeps activations in its input buffer as they are and forms the patches on the way
    to the array, so one pass over X fetches ``K·N·input_fraction`` activations from DRAM.
    """

    groups: int
    m: int
    k: int
    n: int
    input_fraction: float = 1.0

    @property
    def macs(self) -> int:
        return self.groups * self.m * self.k * self.n

    def dim(self, name: str) -> int:
        return {"M": self.m, "K": self.k, "N": self.n}[name]


def gemm_shape(layer: Layer) -> GemmShape:
    """The matrix-product shape of a Linear or Conv2d layer (see :mod:`sim.reference`)."""
    if layer.kind == "linear":
        rows = math.prod(layer.input_shape) // layer.in_channels
        return GemmShape(1, layer.out_channels, layer.in_channels, rows)
    if layer.kind == "conv2d":
        kh, kw = layer.kernel_size
        k = layer.in_channels // layer.groups * kh * kw
        used = [_used_positions(size, out, kernel, stride, pad, dilation) for size, out, kernel, stride, pad, dilation
                in zip(layer.input_shape[1:], layer.output_shape[1:], layer.kernel_size, layer.stride,
                       layer.padding, layer.dilation)]
        distinct = layer.in_channels // layer.groups * used[0] * used[1]
        return GemmShape(layer.groups, layer.out_channels // layer.groups, k, layer.output_positions,
                         distinct / (k * layer.output_positions))
    raise ValueError(f"layer '{layer.name}' of kind '{layer.kind}' has no matrix-product form")


def _used_positions(size: int, out: int, kernel: int, stride: int, pad: int, dilation: int) -> int:
    """How many of an input axis's ``size`` positions some output's window reads (padding aside)."""
    positions = (np.arange(out)[:, None] * stride + np.arange(kernel)[None, :] * dilation - pad).ravel()
    return int(np.unique(positions[(positions >= 0) & (positions < size)]).size)


def spatial_dims(shape: GemmShape, dataflow: str) -> tuple[int, int, int]:
    """(Sr, Sc, T) of ``shape`` under ``dataflow``."""
    roles = ROLES[dataflow]
    return shape.dim(roles.rows), shape.dim(roles.cols), shape.dim(roles.time)


def fold_overhead(rows: int, cols: int) -> int:
    """Fill and drain cycles of one fold: ``2R + C − 2`` (see the module docstring)."""
    return 2 * rows + cols - 2


def fold_cycles(rows: int, cols: int, t: int) -> int:
    """Cycles of one fold of an R × C array streaming T: ``2R + C + T − 2`` (SCALE-Sim Eq. 1)."""
    return fold_overhead(rows, cols) + t


def compute_cycles(shape: GemmShape, array: MacArray) -> int:
    """Cycles of the whole layer with operands always ready: groups × folds × fold_cycles."""
    sr, sc, t = spatial_dims(shape, array.dataflow)
    folds = shape.groups * math.ceil(sr / array.rows) * math.ceil(sc / array.cols)
    return folds * fold_cycles(array.rows, array.cols, t)


@dataclass(frozen=True)
class MacCounts:
    """MACs of one layer split by what the array does with them (executed + gated + skipped =
    ``dense``); ``effectual`` of them have two non-zero operands (the work a sparse design needs)."""

    dense: int
    executed: int
    gated: int
    skipped: int = 0
    effectual: int = 0


def count_macs(operands: Iterable[tuple[np.ndarray, np.ndarray]], array: MacArray) -> MacCounts:
    """Exact MAC classes of the products ``W_g · X_g`` as the array sees them.

    Reduction index k pairs column k of W (M values) with row k of X (N values), so with
    ``w_k`` = non-zero weights in column k and ``x_k`` = non-zero inputs in row k, the MACs with
    both operands non-zero number ``Σ_k w_k·x_k``; the other three classes likewise. A MAC is
    gated when an operand it has is zero and the array gates that kind of zero.
    """
    dense = executed = effectual = 0
    gate_w = array.zero_weights == "gate"
    gate_a = array.zero_activations == "gate"
    for w_g, x_g in operands:
        m, n = w_g.shape[0], x_g.shape[1]
        w_k = np.count_nonzero(w_g, axis=0).astype(np.int64)
        x_k = np.count_nonzero(x_g, axis=1).astype(np.int64)
        counts = {
            (True, True): int(w_k @ x_k),
            (False, True): int((m - w_k) @ x_k),
            (True, False): int(w_k @ (n - x_k)),
            (False, False): int((m - w_k) @ (n - x_k)),
        }
        dense += m * n * w_g.shape[1]
        effectual += counts[(True, True)]
        executed += sum(count for (w_nonzero, a_nonzero), count in counts.items()
                        if (w_nonzero or not gate_w) and (a_nonzero or not gate_a))
    return MacCounts(dense=dense, executed=executed, gated=dense - executed, effectual=effectual)


class ArrayUnit:
    """The array as a SimPy unit: computes step after step, each when its operands have arrived
    and an output slot is free; records the cycles it waited, by cause.

    ``ready(i)`` gives step i's (cause, event) pairs in the order they are waited on; ``done[i]``
    is triggered when step i's compute ends. Waiting time is attributed to the cause waited on:
    the first cause gets the time until its data arrived, the next the further time, and so on.
    """

    def __init__(self, env: "simpy.Environment", cycles: np.ndarray):
        self.env = env
        self.cycles = cycles
        self.stalls: dict[str, int] = {}
        self.busy = 0

    def run(self, ready, done):
        env = self.env
        for i, cycles in enumerate(self.cycles.tolist()):
            for cause, event in ready(i):
                if not event.triggered:
                    start = env.now
                    yield event
                    self.stalls[cause] = self.stalls.get(cause, 0) + (env.now - start)
            if cycles:
                yield env.timeout(cycles)
            self.busy += cycles
            done[i].succeed()
