"""Golden mode: the arrays simulated cycle by cycle, one step per clock, each unit's state explicit.

A second, independent implementation of the timing the fast models compute in closed form
(:mod:`sim.eie`'s recurrence, :mod:`sim.systolic`'s fold formula). It shares only the data the
hardware holds (the EIE layout, the quantised operands), never a formula: the cycle counts and the
action counts emerge from stepping the units. For small layers (every MAC is a Python step); the
tests and ``prunesim simulate --golden`` require fast and golden to agree to the cycle and on
every action count.

EIE (:func:`golden_eie`), per round, in each cycle ``t``:

1. *Broadcast unit.* If an activation is left and every PE queue holds fewer than ``fifo_depth``
   entries (as at the start of the cycle), it pushes (j, a_j) into every queue; else, if one is
   left, the cycle is a FIFO-full stall.
2. *Each PE.* If idle and the head of its queue was pushed before ``t``, it starts on it: reads
   p_j and p_j+1 (two pointer banks). A started activation costs the cycle of its pointer read
   when the PE has no entries in column j; otherwise each cycle processes one entry: the
   ``spmat`` words the entry spans that are not yet read are read, the row advances by
   gap + 1 (relative index), the code is decoded through the codebook, and the accumulator of
   that row is read, added to (saturating or wrapping) and written. When the last entry is done
   the activation leaves the queue (end of the cycle).

The round ends when nothing is left; rounds run one after another.

Systolic (:func:`golden_systolic`), ideal memory: every fold of every group is run as a grid of PE
registers: the stationary tile shifted in row by row, the streamed operands skewed into the
edges, each PE multiplying what passes through it, the results shifted out; cycles and MACs
(executed or gated by zero operands) counted as they happen. With real memory the DRAM channel,
the buffers and the array's steps are stepped clock by clock in :mod:`sim.golden_engine`.

Sparse WS (``zero_weights: skip``, :mod:`sim.compaction`'s semantics): the weights are encoded
in the hardware's format (:mod:`pruning.formats`); a loader walks each output's stored entries
(relative indices accumulated entry by entry, or the mask scanned bit by bit) and fills the
passes of a column fold, R entries per column and pass, until every column is empty, counting
the metadata it reads; each pass is then stepped like a dense fold, every PE fetching the input
its entry's index names when an input vector's request reaches it.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from hwmodels.hardware import Accelerator, MacArray
from pruning.formats import encode_bitmask, encode_relative_csc
from sim.eie import encode_layer
from sim.mapping import SimulationError
from sim.numerics import prepare
from sim.systolic import ROLES
from sim.workload import Layer

__all__ = ["GOLDEN_MAX_MACS", "GoldenEie", "GoldenSystolic", "check_eie", "check_systolic", "golden_eie", "golden_systolic"]

GOLDEN_MAX_MACS = 2_000_000
"""Largest layer (dense MACs) golden mode accepts: it steps every MAC in Python."""


def _require_small(layer: Layer) -> None:
    if layer.dense_macs > GOLDEN_MAX_MACS:
        raise SimulationError(f"layer '{layer.name}' has {layer.dense_macs:,} MACs; golden mode steps every "
                              f"cycle in Python and takes layers of at most {GOLDEN_MAX_MACS:,}")


@dataclass
class GoldenEie:
    """What the cycle-by-cycle EIE did on one layer (same meaning as :class:`sim.eie.EieCounts`)."""

    pes: int
    cycles: int = 0
    fifo_stall_cycles: int = 0
    broadcasts: int = 0
    entries: int = 0
    filler_macs: int = 0
    spmat_words: int = 0
    pointer_reads: int = 0
    codebook_reads: int = 0
    queue_writes: int = 0
    queue_reads: int = 0
    pe_busy: np.ndarray = field(default=None)
    pe_entries: np.ndarray = field(default=None)
    outputs: np.ndarray = field(default=None)


@dataclass
class _Job:
    """The activation a PE works on: column, value, next entry, end, row and last word read."""

    column: int
    value: int
    position: int
    end: int
    row: int = -1
    last_word: int = -1


def _saturating(precision):
    bits = precision.accumulator_bits
    low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    if precision.overflow_mode == "wrap":
        return lambda v: (v - low) % (2 ** bits) + low
    return lambda v: min(max(v, low), high)


def golden_eie(layer: Layer, hw: Accelerator) -> GoldenEie:
    """Run ``layer`` on the ``eie`` array of ``hw`` cycle by cycle (module docstring)."""
    _require_small(layer)
    array = hw.mac_array
    pes, depth = array.pes, array.eie.fifo_depth
    operands = prepare(layer, array.precision)
    layout = encode_layer([w for w, _ in operands.groups], hw, layer.kind == "conv2d")
    add = _saturating(array.precision)
    entry_bits, word_bits = layout.entry_bits, layout.word_bits
    state = GoldenEie(pes, pe_busy=np.zeros(pes, np.int64), pe_entries=np.zeros(pes, np.int64))
    outputs = []
    for g, (_, x_g) in enumerate(operands.groups):
        shares = layout.shares[g]
        stored = [(s.format.values.tolist(), s.format.gaps.tolist(), s.format.col_ptr.tolist()) for s in shares]
        y = np.zeros((layout.m, x_g.shape[1]), dtype=np.int64)
        for n in range(x_g.shape[1]):
            column = x_g[:, n]
            events = [(int(j), int(column[j])) for j in np.flatnonzero(column)]
            accumulators = [dict() for _ in range(pes)]
            queues = [deque() for _ in range(pes)]  # (column, value, cycle pushed)
            jobs: list[_Job | None] = [None] * pes
            t, following = 0, 0
            while following < len(events) or any(queues):
                if following < len(events):  # the broadcast unit
                    if all(len(q) < depth for q in queues):
                        for q in queues:
                            q.append((*events[following], t))
                        state.broadcasts += 1
                        state.queue_writes += pes
                        following += 1
                    else:
                        state.fifo_stall_cycles += 1
                for p in range(pes):  # the PEs
                    queue, job = queues[p], jobs[p]
                    if job is None:
                        if not queue or queue[0][2] >= t:
                            continue
                        j, a, _ = queue[0]
                        pointers = stored[p][2]
                        job = jobs[p] = _Job(j, a, pointers[j], pointers[j + 1])
                        state.pointer_reads += 2
                        state.queue_reads += 1
                    state.pe_busy[p] += 1
                    if job.position < job.end:
                        values, gaps, _ = stored[p]
                        first = job.position * entry_bits // word_bits
                        last = ((job.position + 1) * entry_bits - 1) // word_bits
                        state.spmat_words += last - max(first, job.last_word + 1) + 1 if last > job.last_word else 0
                        job.last_word = max(job.last_word, last)
                        job.row += gaps[job.position] + 1
                        code = values[job.position]
                        weight = int(layout.codebook[code]) if layout.codebook is not None else int(code)
                        state.codebook_reads += layout.codebook is not None
                        state.filler_macs += code == 0
                        state.entries += 1
                        state.pe_entries[p] += 1
                        acc = accumulators[p]
                        acc[job.row] = add(acc.get(job.row, 0) + weight * job.value)
                        job.position += 1
                    if job.position >= job.end:
                        queue.popleft()
                        jobs[p] = None
                t += 1
            state.cycles += t
            for p, acc in enumerate(accumulators):
                for row, value in acc.items():
                    y[p + pes * row, n] = value
        outputs.append(y)
    state.outputs = np.concatenate(outputs)
    return state


# ----------------------------------------------------------------------------- systolic


@dataclass
class GoldenSystolic:
    """What the cycle-by-cycle systolic array did on one layer (ideal memory): cycles, folds, MAC
    classes, and the elements of each data kind read by the array at its edges (the stationary
    tiles, the row stream, and the column stream of OS weights); sparse WS also counts the filler
    zeros' executed MACs and the metadata bits the loader read."""

    cycles: int = 0
    folds: int = 0
    executed_macs: int = 0
    gated_macs: int = 0
    effectual_macs: int = 0
    filler_macs: int = 0
    metadata_bits: int = 0
    reads: dict = field(default_factory=lambda: {"weights": 0, "inputs": 0})


def _count_macs(state: GoldenSystolic, meet: np.ndarray, weight: np.ndarray, activation: np.ndarray,
                gate_w: bool, gate_a: bool) -> None:
    """Classify the MACs of one cycle (``meet``: PEs where two real operands meet)."""
    zero_w, zero_a = meet & (weight == 0), meet & (activation == 0)
    gated = (zero_w & gate_w) | (zero_a & gate_a)
    state.gated_macs += int(gated.sum())
    state.executed_macs += int((meet & ~gated).sum())
    state.effectual_macs += int((meet & ~zero_w & ~zero_a).sum())


def _stream(rows: int, cols: int, t_len: int, row_lane, col_lane, on_meet) -> int:
    """The streaming phase of one fold on an R × C grid, one loop turn per cycle.

    Every one of the R row lanes and C column lanes issues T requests (SCALE-Sim's null requests
    in lanes the fold does not fill): row lane i issues request t at cycle t + i and it moves one
    PE right per cycle; column lane j issues request t at cycle t + j and it moves one PE down per
    cycle. ``row_lane(i, t)``/``col_lane(j, t)`` give the value a request carries; ``on_meet(tags,
    row_values, col_values)`` is called every cycle with the PEs' registers (tags: the t of the
    requests held, −1 for none). Returns the cycles until the last column request has left the
    bottom edge."""
    tag_r = np.full((rows, cols), -1)
    tag_c = np.full((rows, cols), -1)
    val_r = np.zeros((rows, cols))
    val_c = np.zeros((rows, cols))
    lane_r, lane_c = np.arange(rows), np.arange(cols)
    left, cycle = t_len * cols, 0
    while left:
        tag_r[:, 1:], val_r[:, 1:] = tag_r[:, :-1].copy(), val_r[:, :-1].copy()
        tag_c[1:], val_c[1:] = tag_c[:-1].copy(), val_c[:-1].copy()
        t_r, t_c = cycle - lane_r, cycle - lane_c
        tag_r[:, 0] = np.where((t_r >= 0) & (t_r < t_len), t_r, -1)
        tag_c[0] = np.where((t_c >= 0) & (t_c < t_len), t_c, -1)
        val_r[:, 0] = [row_lane(i, t) if t >= 0 else 0 for i, t in enumerate(tag_r[:, 0])]
        val_c[0] = [col_lane(j, t) if t >= 0 else 0 for j, t in enumerate(tag_c[0])]
        meet = (tag_r >= 0) & (tag_c >= 0)
        if (tag_r[meet] != tag_c[meet]).any():
            raise AssertionError("systolic skew broken: operands of different steps met")
        val_c[:] = on_meet(meet, val_r, val_c)
        left -= int((tag_c[-1] >= 0).sum())  # leaving the bottom edge at the end of the cycle
        cycle += 1
    return cycle


def _fold(dataflow: str, stationary: np.ndarray, row_stream: np.ndarray, col_stream: np.ndarray | None,
          array: MacArray, state: GoldenSystolic) -> int:
    """One fold, cycle by cycle; returns its cycles. ``stationary`` (r × c) is W^T (ws) or X (is)
    and is shifted in from the top, one array row per cycle (R cycles); ``row_stream`` (r × T)
    enters at the left (X in ws and os, W^T in is); ``col_stream`` (T × c, os only) is the weight
    stream from the top, and the outputs accumulated in the PEs are shifted out at the bottom
    afterwards, one row per cycle (R cycles). In ws and is partial sums start at the top as 0 and
    leave at the bottom."""
    rows, cols = array.rows, array.cols
    r, t_len = row_stream.shape
    c = stationary.shape[1] if col_stream is None else col_stream.shape[1]
    gate_w, gate_a = array.zero_weights == "gate", array.zero_activations == "gate"
    used = np.zeros((rows, cols), dtype=bool)
    used[:r, :c] = True
    registers = np.zeros((rows, cols))
    cycles = 0
    if col_stream is None:
        tile = np.zeros((rows, cols))
        tile[:r, :c] = stationary
        for q in range(rows):  # shift the stationary tile in from the top
            registers[1:] = registers[:-1].copy()
            registers[0] = tile[rows - 1 - q]
            cycles += 1
        state.reads["weights" if dataflow == "ws" else "inputs"] += r * c

    def row_lane(i: int, t: int) -> float:
        return float(row_stream[i, t]) if i < r else 0.0

    def col_lane(j: int, t: int) -> float:
        return float(col_stream[t, j]) if col_stream is not None and j < c else 0.0

    def on_meet(meet, row_values, col_values):
        real = meet & used
        if col_stream is None:  # ws/is: partial sum += stationary × row operand
            weight, activation = (registers, row_values) if dataflow == "ws" else (row_values, registers)
            _count_macs(state, real, weight, activation, gate_w, gate_a)
            return col_values + np.where(real, registers * row_values, 0)
        _count_macs(state, real, col_values, row_values, gate_w, gate_a)  # os: W from the top, X from the left
        registers[...] += np.where(real, row_values * col_values, 0)
        return col_values

    cycles += _stream(rows, cols, t_len, row_lane, col_lane, on_meet)
    state.reads["inputs" if dataflow != "is" else "weights"] += r * t_len
    if col_stream is not None:
        state.reads["weights"] += c * t_len
        for _ in range(rows):  # shift the finished outputs out at the bottom
            registers[1:] = registers[:-1].copy()
            registers[0] = 0
            cycles += 1
    return cycles


class _Loader:
    """Walks the stored entries of one group's outputs in the hardware's format, as the weight
    loader does, counting the metadata bits it reads: ``take(m, count)`` returns output m's next
    ``count`` entries as (k, value) pairs, ``pointers(n)`` reads n column pointers (relative
    index only), ``empty(m)`` says whether output m has nothing left."""

    def __init__(self, w_g: np.ndarray, hw: Accelerator, conv: bool):
        fmt, bits = hw.weight_format, hw.mac_array.precision.bits
        self.relative = fmt.kind == "relative_index"
        self.k = w_g.shape[1]
        self.bits = 0
        if self.relative:
            self.index_bits = fmt.index_bits_conv if conv else fmt.index_bits_linear
            self.stored = encode_relative_csc(w_g.T, self.index_bits, bits)
            self.next = [int(p) for p in self.stored.col_ptr[:-1]]  # next entry of each output
            self.row = [-1] * w_g.shape[0]
        else:
            self.stored = encode_bitmask(w_g, bits)
            self.mask = np.unpackbits(self.stored.mask_bits, count=w_g.size).reshape(w_g.shape)
            self.next = [0] * w_g.shape[0]  # next mask bit of each output
            self.value = [int(v) for v in np.concatenate(([0], np.cumsum(self.mask.sum(axis=1))))[:-1]]

    def pointers(self, count: int) -> None:
        if self.relative:
            self.bits += count * self.stored.pointer_bits

    def empty(self, m: int) -> bool:
        return self.next[m] >= (self.stored.col_ptr[m + 1] if self.relative else self.k)

    def take(self, m: int, count: int) -> list[tuple[int, float]]:
        out = []
        if self.relative:  # the row advances by gap + 1 per entry
            while len(out) < count and not self.empty(m):
                i = self.next[m]
                self.row[m] += int(self.stored.gaps[i]) + 1
                out.append((self.row[m], self.stored.values[i]))
                self.bits += self.index_bits
                self.next[m] += 1
            return out
        mask = self.mask[m]
        while len(out) < count and not self.empty(m):  # scan the mask bit by bit
            if mask[self.next[m]]:
                out.append((self.next[m], self.stored.values[self.value[m]]))
                self.value[m] += 1
            self.next[m] += 1
            self.bits += 1
        if not mask[self.next[m]:].any():  # the column's last pass reads its mask to the end
            self.bits += self.k - self.next[m]
            self.next[m] = self.k
        return out


def _sparse_pass(weights: np.ndarray, index: np.ndarray, present: np.ndarray, x_g: np.ndarray, array: MacArray,
                 state: GoldenSystolic) -> int:
    """One pass of the sparse WS array, cycle by cycle: the R × C tile of entries (``weights``,
    their reduction ``index``, ``present`` where a PE holds one) shifted in from the top (R
    cycles), then the N input vectors' requests skewed in from the left; a PE that holds an entry
    fetches x[index, n] when request n reaches it. Returns the cycles."""
    rows, cols = array.rows, array.cols
    gate_a = array.zero_activations == "gate"
    loaded = np.zeros((rows, cols)), np.zeros((rows, cols), dtype=np.int64), np.zeros((rows, cols), dtype=bool)
    cycles = 0
    for q in range(rows):  # shift the tile in from the top, one row per cycle
        for register, tile in zip(loaded, (weights, index, present)):
            register[1:] = register[:-1].copy()
            register[0] = tile[rows - 1 - q]
        cycles += 1
    held, k_of, holds = loaded
    state.reads["weights"] += int(holds.sum())
    fetched = set()

    def on_meet(meet, row_values, col_values):
        real = meet & holds
        n = row_values.astype(np.int64)
        activation = np.where(real, x_g[k_of, n], 0)
        _count_macs(state, real, held, activation, False, gate_a)
        state.filler_macs += int((real & (held == 0) & ~(gate_a & (activation == 0))).sum())
        fetched.update(zip(k_of[real].tolist(), n[real].tolist()))
        return col_values + np.where(real, held * activation, 0)

    cycles += _stream(rows, cols, x_g.shape[1], lambda i, t: float(t), lambda j, t: 0.0, on_meet)
    state.reads["inputs"] += len(fetched)
    return cycles


def _golden_sparse_ws(operands, hw: Accelerator, conv: bool, state: GoldenSystolic) -> None:
    """Every column fold of every group: passes loaded by :class:`_Loader` until its columns are
    empty (at least one), each stepped by :func:`_sparse_pass`."""
    array = hw.mac_array
    rows, cols = array.rows, array.cols
    for w_g, x_g in operands.groups:
        loader = _Loader(w_g, hw, conv)
        m_total = w_g.shape[0]
        for start in range(0, m_total, cols):
            outputs = range(start, min(m_total, start + cols))
            loader.pointers(len(outputs) + (outputs.stop == m_total))
            first = True
            while first or not all(loader.empty(m) for m in outputs):
                first = False
                weights, index = np.zeros((rows, cols)), np.zeros((rows, cols), dtype=np.int64)
                present = np.zeros((rows, cols), dtype=bool)
                for j, m in enumerate(outputs):
                    for i, (k, value) in enumerate(loader.take(m, rows)):
                        weights[i, j], index[i, j], present[i, j] = value, k, True
                state.cycles += _sparse_pass(weights, index, present, x_g, array, state)
                state.folds += 1
        state.metadata_bits += loader.bits


def golden_systolic(layer: Layer, hw: Accelerator | MacArray) -> GoldenSystolic:
    """Cycles, MAC classes and edge reads of ``layer`` on a systolic array (``hw``, or its
    ``mac_array`` alone for a dense one) with ideal memory, every fold (group → column fold → row
    fold, SCALE-Sim's order; sparse WS: its passes) stepped cycle by cycle."""
    _require_small(layer)
    array = hw.mac_array if isinstance(hw, Accelerator) else hw
    roles = ROLES[array.dataflow]
    operands = prepare(layer, array.precision)
    state = GoldenSystolic()
    if array.zero_weights == "skip":
        if not isinstance(hw, Accelerator):
            raise SimulationError("golden mode of an array that skips zero weights needs the whole hardware "
                                  "description (its weight format)")
        _golden_sparse_ws(operands, hw, layer.kind == "conv2d", state)
        return state
    for w_g, x_g in operands.groups:
        dims = {"M": w_g.shape[0], "K": w_g.shape[1], "N": x_g.shape[1]}
        sr, sc = dims[roles.rows], dims[roles.cols]
        for fc in range(math.ceil(sc / array.cols)):
            cs = slice(fc * array.cols, min(sc, (fc + 1) * array.cols))
            for fr in range(math.ceil(sr / array.rows)):
                rs = slice(fr * array.rows, min(sr, (fr + 1) * array.rows))
                if array.dataflow == "ws":  # W[k, m] stays; X[k, n] streams (T = N)
                    parts = (w_g.T[rs, cs], x_g[rs], None)
                elif array.dataflow == "is":  # X[k, n] stays; W[m, k] streams (T = M)
                    parts = (x_g[rs, cs], w_g.T[rs], None)
                else:  # os: Y[n, m] stays; X[k, n] enters left, W[m, k] from the top (T = K)
                    parts = (np.zeros((rs.stop - rs.start, cs.stop - cs.start)), x_g[:, rs].T, w_g[cs].T)
                state.cycles += _fold(array.dataflow, *parts, array, state)
                state.folds += 1
    return state


# ----------------------------------------------------------------------------- agreement


def _agree(layer: Layer, pairs: dict[str, tuple]) -> None:
    """SimulationError naming the layer and the first quantity where fast and golden differ."""
    for name, (fast, golden) in pairs.items():
        if not np.array_equal(np.asarray(fast), np.asarray(golden)):
            raise SimulationError(f"layer '{layer.name}': golden mode disagrees with the fast model on {name} "
                                  f"(fast {fast}, golden {golden})")


def check_eie(layer: Layer, hw: Accelerator, counts, outputs: np.ndarray | None) -> GoldenEie:
    """Run :func:`golden_eie` and require the fast :class:`sim.eie.EieCounts` (and outputs, when
    given) to equal it."""
    golden = golden_eie(layer, hw)
    pairs = {
        "cycles": (counts.compute_cycles, golden.cycles),
        "FIFO-full stall cycles": (counts.fifo_stall_cycles, golden.fifo_stall_cycles),
        "broadcasts": (counts.broadcasts, golden.broadcasts), "MACs": (counts.entries, golden.entries),
        "filler MACs": (counts.filler_macs, golden.filler_macs), "spmat words": (counts.spmat_words, golden.spmat_words),
        "pointer reads": (counts.pointer_reads, golden.pointer_reads),
        "per-PE busy cycles": (counts.pe_busy, golden.pe_busy), "per-PE entries": (counts.pe_entries, golden.pe_entries),
    }
    if outputs is not None:
        pairs["outputs"] = (outputs, golden.outputs)
    _agree(layer, pairs)
    return golden


def check_systolic(layer: Layer, hw: Accelerator, compute_cycles: int, macs, schedule, fillers: int = 0
                   ) -> GoldenSystolic:
    """Run :func:`golden_systolic` and require the fast model's compute cycles (fold loop order),
    folds, MAC classes, operand reads (a :class:`sim.mapping.Schedule`'s SRAM read bits) and,
    on a sparse array, filler MACs and metadata bits read to equal it."""
    golden = golden_systolic(layer, hw)
    bits = hw.mac_array.precision.bits
    _agree(layer, {
        "compute cycles": (compute_cycles, golden.cycles), "folds": (schedule.mapping.folds, golden.folds),
        "executed MACs": (macs.executed, golden.executed_macs), "gated MACs": (macs.gated, golden.gated_macs),
        "effectual MACs": (macs.effectual, golden.effectual_macs), "filler MACs": (fillers, golden.filler_macs),
        **{f"{kind} read bits": (schedule.sram_read_bits[kind], golden.reads[kind] * bits)
           for kind in ("weights", "inputs")},
        "metadata bits read": (schedule.index_sram_read_bits, golden.metadata_bits),
    })
    return golden
