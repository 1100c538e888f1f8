"""The mapper: how one layer's matrix products are tiled onto the buffers and the array.

Vocabulary (see :mod:`sim.systolic` for the dataflows): a GEMM of shape (Sr, Sc, T) runs as
``ceil(Sr/R) · ceil(Sc/C)`` *folds* per group; the T cycles of a fold stream in *chunks* of
``t_tile``; a *step* (a DRAM tile) is a run of consecutive fold-chunks whose data move between
DRAM and the buffers together. The engine (:mod:`sim.engine`) orders steps, transfers and stalls;
the cycles of every step are computed here exactly.

Loop nests (outer to inner), two of them:

* ``fold`` order, SCALE-Sim's: group → column fold → row fold → chunk. The stationary tile is
  loaded once per fold (one fill and drain per fold). In WS and IS the partial sums of a column
  fold (C × T at the accumulator width) live across its row folds: in the output buffer when they
  fit there, otherwise every row fold but the last writes them to DRAM and every one but the
  first reads them back (counted as ``psums`` traffic).
* ``chunk`` order (WS and IS only): group → column fold → chunk → row fold. The partial sums of
  one chunk (C × t_tile) always stay on chip, at the price of loading the stationary tile once per
  chunk (a fill and drain per fold-chunk) and, unless the column fold's stationary set fits in its
  buffer, fetching it from DRAM once per chunk.

Reuse in both: the operand that enters at the left edge (inputs in WS and OS, weights in IS) is
needed again by every column fold; it is fetched from DRAM once per group when the whole group's
operand fits in its buffer share (``row_resident``), else once per column fold. In OS the
weights of a column fold are needed by each of its row folds: fetched once per column fold when
they fit in a buffer slot (``col_resident``), else once per row fold. Every layer reads its input
and weights from DRAM and writes its output there (layer by layer, like SCALE-Sim). Input
activations cross the DRAM boundary as activations, not as im2col patches: a pass over the
im2col'd X fetches each distinct input activation once (``GemmShape.input_fraction``), which
assumes the input buffer keeps the few feature-map rows a sliding window still needs; the array
still reads every patch element from the buffer.

Capacity: each data kind has a share of its buffer (:func:`sim.buffers.allotments`), split in two
slots when double buffering fits (else one). ``t_tile`` is the largest chunk whose streamed tiles
(R × t of the left-edge operand, C × t of the top-edge operand or partial sums) fit in a slot;
one stationary R × C tile must fit in a slot too (tiles count only the rows and columns the GEMM
fills). In fold order, where chunking costs no cycles, T is also cut so that a layer has about
``TARGET_STEPS`` fold-chunks. A step groups at most as many fold-chunks as fit in a slot, and at
most ``ceil(items / TARGET_STEPS)`` of them (finer steps model the overlap better, coarser ones
simulate faster). Operands kept whole on chip (``row_resident`` and the like) sit outside the
slots. A fold-chunk's data all arrive before it starts; the first chunk of a layer therefore
waits for its whole tile, where hardware could start on its first words.

Sparse WS (``zero_weights: skip``, :mod:`sim.compaction`): the row folds of a column fold become
its *passes* (as many as its densest column needs, ``Compaction.passes``); a pass loads only its
stored entries (``loaded``) and their metadata (``metadata``, fetched and buffered with the
weights, kept apart as ``index_*`` bits), reads ``union`` distinct inputs per input vector (the
left-edge tile is ``union × t``), and the last pass of a column fold, not the last row fold,
finishes its outputs. Resident inputs arrive whole with the first pass of a group's first
column fold.

Choice: among the feasible candidates (double before single buffering; ``fold`` and, for WS and
IS, ``chunk`` order) the mapper takes the one with the least DRAM traffic, then the fewest
compute cycles: off-chip accesses dominate the energy (Horowitz 2014), and the choice does not
depend on DRAM bandwidth, so a slower DRAM changes the timing of a mapping, never the mapping.
Every candidate's traffic only falls as a buffer grows (residency needs more room, never less;
double buffering a buffer twice as large leaves each slot at least as large as before), so a
larger buffer never adds DRAM traffic. The loop order can also be forced (``loop_order``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from hwmodels.hardware import Accelerator
from sim.buffers import KINDS, allotments
from sim.systolic import ROLES, GemmShape, Roles, fold_overhead, spatial_dims

if TYPE_CHECKING:
    from sim.compaction import Compaction

__all__ = [
    "LOOP_ORDERS", "READ_STREAMS", "TARGET_STEPS", "Mapping", "MappingError", "Schedule", "SimulationError",
    "build_schedule", "map_layer", "require_systolic",
]

TARGET_STEPS = 256
READ_STREAMS = ("weights", "inputs", "psums")  # DRAM reads, in the order the array waits on them


class SimulationError(ValueError):
    """A layer or hardware description the simulator cannot run; the message says why."""


class MappingError(SimulationError):
    """No tiling of the layer fits the buffers; the message names the buffer."""


@dataclass(frozen=True)
class Mapping:
    """How one layer runs: loop order, chunk size, buffering and what stays on chip."""

    shape: GemmShape
    dataflow: str
    rows: int
    cols: int
    bits: int
    accumulator_bits: int
    order: str  # "fold" or "chunk"
    t_tile: int
    slots: int
    row_resident: bool
    col_resident: bool
    stationary_resident: bool
    budgets: tuple[tuple[str, int], ...]  # (kind, bits per slot)
    compaction: "Compaction | None" = field(default=None, compare=False, repr=False)  # sparse WS only

    @property
    def roles(self) -> Roles:
        return ROLES[self.dataflow]

    @property
    def dims(self) -> tuple[int, int, int]:
        return spatial_dims(self.shape, self.dataflow)

    @property
    def row_folds(self) -> int:
        """Row folds per column fold; with compaction, the most passes any column fold runs."""
        return self.compaction.max_passes if self.compaction else math.ceil(self.dims[0] / self.rows)

    @property
    def col_folds(self) -> int:
        return math.ceil(self.dims[1] / self.cols)

    @property
    def chunks(self) -> int:
        return math.ceil(self.dims[2] / self.t_tile)

    @property
    def folds(self) -> int:
        """Folds the array runs (with compaction: every column fold's passes)."""
        if self.compaction is not None:
            return self.compaction.total_passes
        return self.shape.groups * self.row_folds * self.col_folds

    @property
    def spills_psums(self) -> bool:
        return self.roles.reduction_on_rows and self.order == "fold" and not self.col_resident

    def describe(self) -> str:
        on_chip = [name for name, flag in (("left operand", self.row_resident),
                                           ("top operand/psums", self.col_resident),
                                           ("stationary set", self.stationary_resident)) if flag]
        compacted = ""
        if self.compaction is not None:
            dense = self.shape.groups * self.col_folds * math.ceil(self.dims[0] / self.rows)
            compacted = f"{self.compaction.format} compacted ({dense} dense folds), "
        return (f"{self.dataflow} {self.order}-order, {compacted}{self.folds} folds x {self.chunks} chunks of "
                f"{self.t_tile}, {'double' if self.slots == 2 else 'single'} buffered, on chip: "
                f"{', '.join(on_chip) or 'nothing reused'}")


@dataclass(frozen=True)
class _Items:
    """Per fold-chunk arrays in loop order: cycles and bits moved."""

    cycles: np.ndarray
    fetch: dict[str, np.ndarray]  # DRAM reads by stream (READ_STREAMS)
    write_final: np.ndarray  # DRAM writes of finished outputs
    write_psums: np.ndarray  # DRAM writes of spilled partial sums
    sram_read: dict[str, np.ndarray]  # by data kind
    sram_write: dict[str, np.ndarray]
    index_fetch: np.ndarray  # metadata bits among fetch["weights"] (compaction only)
    index_sram_read: np.ndarray
    index_sram_write: np.ndarray

    @property
    def dram_bits(self) -> float:
        return float(sum(v.sum() for v in self.fetch.values()) + self.write_final.sum() + self.write_psums.sum())


def _items(m: Mapping) -> _Items:
    """Every fold-chunk of ``m`` with its cycles and traffic (see the module docstring)."""
    sr, sc, t_total = m.dims
    roles, rows, cols = m.roles, m.rows, m.cols
    shape = (m.shape.groups, m.col_folds, m.chunks, m.row_folds) if m.order == "chunk" else \
        (m.shape.groups, m.col_folds, m.row_folds, m.chunks)
    grid = np.indices(shape, dtype=np.int64).reshape(len(shape), -1)
    if m.order == "chunk":
        g, fc, tc, fr = grid
    else:
        g, fc, fr, tc = grid
    comp = m.compaction
    if comp is not None:  # a column fold runs its own number of passes
        keep = fr < comp.passes[g, fc]
        g, fc, fr, tc = g[keep], fc[keep], fr[keep], tc[keep]
    c = np.minimum(cols, sc - fc * cols)
    t = np.minimum(m.t_tile, t_total - tc * m.t_tile)
    if comp is None:
        r = np.minimum(rows, sr - fr * rows)
        tile, left_rows, last, meta = r * c, r, fr == m.row_folds - 1, np.zeros_like(t)
    else:  # entries loaded, distinct inputs read per vector, the column fold's last pass, metadata
        tile, left_rows = comp.loaded[g, fc, fr], comp.union[g, fc, fr]
        last, meta = fr == comp.passes[g, fc] - 1, comp.metadata[g, fc, fr]
    w, a = m.bits, m.accumulator_bits
    zero = np.zeros_like(t)
    fetch = {stream: zero.copy() for stream in READ_STREAMS}
    sram_read = {kind: zero.copy() for kind in KINDS}
    sram_write = {kind: zero.copy() for kind in KINDS}
    write_final, write_psums = zero.copy(), zero.copy()

    # Fill and drain: once per fold in fold order, once per fold-chunk in chunk order.
    starts_fold = np.ones_like(t, dtype=bool) if m.order == "chunk" else tc == 0
    cycles = t + starts_fold * fold_overhead(rows, cols)

    index_fetch, index_read = zero.copy(), zero.copy()
    if roles.stationary == "outputs":  # OS: finished outputs leave after the fold's last chunk
        done = (tc == m.chunks - 1) * tile * w
        sram_write["outputs"] += done
        sram_read["outputs"] += done
        write_final += done
    else:  # WS weights / IS inputs: loaded into the PEs at the start of every fold (or chunk)
        loads, index_read = starts_fold * tile * w, starts_fold * meta
        sram_read[roles.stationary] += loads
        fetched = loads * (tc == 0) if m.stationary_resident else loads
        index_fetch = index_read * (tc == 0) if m.stationary_resident else index_read
        fetch[roles.stationary] += fetched + index_fetch

    left = left_rows * t * w  # left-edge operand: needed by every column fold
    sram_read[roles.row_stream] += left
    if not m.row_resident:
        fetch[roles.row_stream] += left
    elif comp is None:
        fetch[roles.row_stream] += left * (fc == 0)
    else:  # the whole group's inputs, with its first pass
        fetch[roles.row_stream] += sr * t * w * ((fc == 0) & (fr == 0))

    top = c * t
    if roles.col_stream != "outputs":  # OS weights: needed by every row fold of a column fold
        sram_read[roles.col_stream] += top * w
        fetch[roles.col_stream] += top * w * (fr == 0) if m.col_resident else top * w
    else:  # WS/IS partial sums leave at the bottom edge
        first = fr == 0
        psum_in = ~first * top * a
        final, partial = last * top * w, ~last * top * a
        sram_read["outputs"] += psum_in + final  # back into the array; finished ones out to DRAM
        sram_write["outputs"] += final + partial
        write_final += final
        if m.spills_psums:
            fetch["psums"] += psum_in
            sram_write["outputs"] += psum_in
            sram_read["outputs"] += partial
            write_psums += partial
    # Inputs travel as activations, not as im2col patches (GemmShape.input_fraction).
    fetch["inputs"] = fetch["inputs"] * m.shape.input_fraction
    for kind in ("weights", "inputs"):
        sram_write[kind] = sram_write[kind] + fetch[kind]
    sram_write["weights"] = sram_write["weights"] - index_fetch  # the metadata is counted apart
    return _Items(cycles, fetch, write_final, write_psums, sram_read, sram_write, index_fetch, index_read,
                  index_fetch.copy())


def _candidate(shape: GemmShape, hw: Accelerator, order: str, slots: int,
               compaction: "Compaction | None" = None) -> Mapping | None:
    """The mapping of one loop order and buffering, or None when it does not fit (with
    ``compaction``: the largest pass tile, values and metadata, must fit a weight slot, and the
    left-edge tile is as tall as the most distinct inputs a pass reads)."""
    array = hw.mac_array
    roles = ROLES[array.dataflow]
    rows, cols = array.rows, array.cols
    w, a = array.precision.bits, array.precision.accumulator_bits
    sr, sc, t_total = spatial_dims(shape, array.dataflow)
    allot = allotments(hw)
    budget = {kind: bits // slots for kind, bits in allot.items()}
    # Tiles are as large as the operand allows: an edge of the array the GEMM does not fill
    # holds no data.
    edge_r, edge_c = min(rows, sr), min(cols, sc)
    stationary_tile = edge_r * edge_c * w if compaction is None else int(compaction.tile_bits().max())
    if budget[roles.stationary] < stationary_tile:
        return None
    row_folds = math.ceil(sr / rows) if compaction is None else compaction.max_passes
    row_size = sr * t_total * w * (shape.input_fraction if roles.row_stream == "inputs" else 1.0)
    row_resident = row_size <= allot[roles.row_stream]
    limits = [t_total]
    if not row_resident:
        lane = edge_r if compaction is None else max(1, int(compaction.union.max()))
        limits.append(budget[roles.row_stream] // (lane * w))
    stationary_resident = False
    if roles.col_stream != "outputs":
        col_resident = edge_c * t_total * w <= budget[roles.col_stream]
        if not col_resident:
            limits.append(budget[roles.col_stream] // (edge_c * w))
    elif order == "fold":
        col_resident = row_folds == 1 or edge_c * t_total * a <= budget["outputs"]
        if not col_resident:
            limits.append(budget["outputs"] // (edge_c * a))
    else:
        col_resident = True  # a chunk's partial sums stay on chip by construction
        limits.append(budget["outputs"] // (edge_c * a))
        fold_set = sr * edge_c * w if compaction is None else int(compaction.tile_bits().sum(axis=2).max())
        stationary_resident = fold_set <= budget[roles.stationary]
    if order == "fold":
        # Chunks cost nothing in fold order (one fill and drain per fold whatever the chunking), so
        # cut T finer when there are few folds: the first tile's transfer then overlaps compute.
        folds = shape.groups * row_folds * math.ceil(sc / cols) if compaction is None else compaction.total_passes
        limits.append(math.ceil(t_total / math.ceil(TARGET_STEPS / folds)))
    t_tile = min(limits)
    if t_tile < 1:
        return None
    return Mapping(shape, array.dataflow, rows, cols, w, a, order, t_tile, slots, row_resident, col_resident,
                   stationary_resident, tuple(budget.items()), compaction)


def require_systolic(hw: Accelerator) -> None:
    """SimulationError unless ``hw`` has a systolic array (the only kind the engine models)."""
    if not hw.mac_array.is_systolic:
        raise SimulationError(f"hardware '{hw.name}' has mac_array.kind '{hw.mac_array.kind}'; the "
                              "cycle-level simulator needs a systolic array (e.g. systolic-ws-32x32)")


LOOP_ORDERS = ("auto", "fold", "chunk")


def map_layer(shape: GemmShape, hw: Accelerator, loop_order: str = "auto",
              compaction: "Compaction | None" = None) -> Mapping:
    """The mapping of ``shape`` on ``hw`` (see the module docstring for the choice); an array
    that skips zero weights needs the layer's ``compaction`` (:func:`sim.compaction.compact`).

    ``loop_order`` ``fold`` or ``chunk`` forces that loop nest (``fold`` is SCALE-Sim's schedule,
    whose partial sums spill to DRAM when they do not fit; the automatic choice never prefers it
    then, because the output buffer holds at least one R × C tile of partial sums, which makes the
    chunk order's extra stationary traffic no larger than the spill traffic it avoids).
    """
    require_systolic(hw)
    array = hw.mac_array
    if (array.zero_weights == "skip") != (compaction is not None):
        raise SimulationError(f"hardware '{hw.name}': a layer's compaction is needed exactly when the array "
                              "skips zero weights")
    if loop_order not in LOOP_ORDERS:
        raise SimulationError(f"unknown loop order '{loop_order}'; valid: {', '.join(LOOP_ORDERS)}")
    orders = ("fold", "chunk") if ROLES[array.dataflow].reduction_on_rows else ("fold",)
    if loop_order != "auto":
        if loop_order not in orders:
            raise SimulationError(f"loop order '{loop_order}' needs a dataflow with the reduction on the "
                                  f"array rows (ws, is), not '{array.dataflow}'")
        orders = (loop_order,)
    for slots in (2, 1):
        candidates = [m for order in orders if (m := _candidate(shape, hw, order, slots, compaction)) is not None]
        if candidates:
            costs = []
            for index, mapping in enumerate(candidates):
                items = _items(mapping)
                costs.append((items.dram_bits, int(items.cycles.sum()), index))
            return candidates[min(costs)[2]]
    too_small = hw.buffer_for(ROLES[array.dataflow].stationary)
    if compaction is not None:
        raise MappingError(f"hardware '{hw.name}': buffer '{too_small.name}' cannot hold the largest compacted "
                           f"tile ({int(compaction.tile_bits().max())} bits of values and metadata)")
    raise MappingError(f"hardware '{hw.name}': buffer '{too_small.name}' cannot hold one "
                       f"{array.rows}x{array.cols} tile of each operand it holds")


@dataclass(frozen=True)
class Schedule:
    """The steps of one mapped layer, in order, and the layer's traffic.

    Per step (numpy arrays of equal length): ``cycles`` of compute, DRAM bits to read before it
    by stream (``reads``, keys :data:`READ_STREAMS`) and DRAM bits to write after it
    (``writes``). Totals in bits: ``dram_read_bits`` by stream, ``dram_write_bits`` (finished
    outputs) and ``psum_write_bits`` (spilled partial sums), SRAM bits read and written by data
    kind. Input bits may be fractional: a pass over X fetches ``input_fraction`` of its im2col
    size, spread over its tiles in proportion to their size (exact per pass, an average per tile).
    With compaction the weight stream's ``reads`` include the metadata bits;
    ``dram_read_bits["weights"]`` and the SRAM weight bits do not: the metadata is
    ``index_dram_read_bits``, ``index_sram_read_bits`` and ``index_sram_write_bits``.
    """

    mapping: Mapping
    items_per_step: int
    cycles: np.ndarray
    reads: dict[str, np.ndarray]
    writes: np.ndarray
    dram_read_bits: dict[str, int]
    dram_write_bits: int
    psum_write_bits: int
    sram_read_bits: dict[str, int]
    sram_write_bits: dict[str, int]
    index_dram_read_bits: float = 0.0
    index_sram_read_bits: float = 0.0
    index_sram_write_bits: float = 0.0

    @property
    def steps(self) -> int:
        return len(self.cycles)

    @property
    def compute_cycles(self) -> int:
        return int(self.cycles.sum())


def build_schedule(mapping: Mapping, hw: Accelerator) -> Schedule:
    """The steps of ``mapping``: fold-chunks grouped as the module docstring says."""
    items = _items(mapping)
    n = len(items.cycles)
    budget = dict(mapping.budgets)
    slot_bits = {kind: items.fetch[kind] for kind in ("weights", "inputs")}
    resident = {mapping.roles.row_stream: mapping.row_resident,
                mapping.roles.col_stream: mapping.col_resident,
                mapping.roles.stationary: mapping.stationary_resident}
    slot_bits = {kind: bits for kind, bits in slot_bits.items() if not resident.get(kind, False)}
    slot_bits["outputs"] = items.fetch["psums"] + items.write_final + items.write_psums
    fit = [budget[kind] // int(bits.max()) for kind, bits in slot_bits.items() if bits.size and bits.max() > 0]
    per_step = max(1, min([*fit, max(1, math.ceil(n / TARGET_STEPS))]))
    starts = np.arange(0, n, per_step)

    def per_steps(values: np.ndarray) -> np.ndarray:
        return np.add.reduceat(values, starts)

    return Schedule(
        mapping=mapping,
        items_per_step=per_step,
        cycles=per_steps(items.cycles),
        reads={stream: per_steps(items.fetch[stream]) for stream in READ_STREAMS},
        writes=per_steps(items.write_final + items.write_psums),
        dram_read_bits={stream: float(items.fetch[stream].sum())
                        - (float(items.index_fetch.sum()) if stream == "weights" else 0.0) for stream in READ_STREAMS},
        dram_write_bits=float(items.write_final.sum()),
        psum_write_bits=float(items.write_psums.sum()),
        sram_read_bits={kind: float(items.sram_read[kind].sum()) for kind in KINDS},
        sram_write_bits={kind: float(items.sram_write[kind].sum()) for kind in KINDS},
        index_dram_read_bits=float(items.index_fetch.sum()),
        index_sram_read_bits=float(items.index_sram_read.sum()),
        index_sram_write_bits=float(items.index_sram_write.sum()),
    )
