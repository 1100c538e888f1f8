"""The EIE-like sparse PE array (Han et al., "EIE", ISCA 2016), fast mode: exact cycles with numpy.

Data layout (EIE §III-B/C). A layer is lowered to matrix products ``Y_g = W_g · X_g`` as for the
systolic arrays (:mod:`sim.reference`); each column ``x`` of ``X_g`` is one *round*, a sparse
matrix × sparse vector product ``y = W_g x`` (a conv has ``groups × H_out·W_out`` rounds, a
linear layer one per input row). Row ``i`` of ``W_g`` lives on PE ``i mod N``; PE ``p`` stores its
rows as relative-index CSC with filler zeros, :func:`pruning.formats.encode_relative_csc`
(``index_bits`` from ``weight_format``); fast mode needs only each column's entries and fillers
per PE, which :func:`pruning.formats.interleaved_entries` counts for all PEs at once. An entry
is a weight *code* of ``code_bits`` into the layer's codebook when the layer has at most
``2^code_bits − 1`` distinct non-zero weights (code 0 is the zero of a filler; EIE's shared
weights, §III), else the ``bits``-bit weight itself (the codebook bypassed; reported as
``codebook = False``). Entry bits: code (or weight) + index.

Timing (EIE §IV). The leading-non-zero detector broadcasts the non-zero activations of a round
one per cycle, in column order. Each PE keeps an activation queue of ``fifo_depth``; at any time
it works on the activation at the head of its queue, which leaves the queue when the PE is done
with it (§IV "Activation Queue and Load Balancing"). Working on column ``j`` takes PE ``p``
``c = max(e, 1)`` cycles for its ``e`` entries of the column (one MAC per cycle, filler zeros
included; a PE with no entries still spends the cycle that reads p_j and p_j+1 from its two
pointer banks). The broadcast waits while any queue is full. With ``b_i`` the broadcast cycle of
the round's i-th activation, ``s_{i,p}`` the cycle PE p starts on it and ``f_{i,p} = s_{i,p} +
c_{i,p}`` the first cycle it is free again, ``F_i = max_p f_{i,p}``::

    b_0 = 0,   b_i = max(b_{i−1} + 1, F_{i−D})          (a slot frees when its activation is done)
    s_{i,p} = max(b_i + 1, f_{i−1,p}),  f_{−1,p} = 0     (usable the cycle after its broadcast)
    round cycles T = F_{L−1}  (0 for a round without non-zero activations)

Rounds run one after another (EIE swaps its source and destination activation register files
between rounds, §IV "Activation Read/Write"), so a layer's compute cycles are ``Σ T``. Per round
``T = L + stalls + drain``: ``L`` broadcasts, ``stalls = Σ (b_i − b_{i−1} − 1)`` cycles in which
a full queue held the broadcast back (``fifo_stall_cycles``), ``drain = T − b_{L−1} − 1``.
:func:`round_cycles` evaluates the recurrence for all rounds at once (vectorised over rounds
and PEs, one numpy step per activation position; a single round, a linear layer's, D positions
per step); :mod:`sim.golden` steps the same machine cycle by cycle, and the two agree to the cycle.

Memory. Weights, pointers and activations live in per-PE SRAMs (buffers ``spmat``, ``pointers``,
``activations``, one bank per PE, see :class:`hwmodels.hardware.EieConfig`). A layer whose PE
shares fit is resident: EIE loads the model once (§IV, I/O mode) and an inference moves no
weights over DRAM. The part of a PE's share beyond its SRAM is read from DRAM in every round
(``weights_spilled_bits``). When a layer's input and output activations exceed the activation
SRAMs, the input is read from DRAM and the output written there, once. Memory cycles are the DRAM
bits at the channel's bandwidth; a layer takes ``max(compute, memory)`` cycles (the spill
streams while the PEs compute; with ``--ideal-memory`` memory cycles are 0). Whether all layers
of a network fit at once is not checked.

Actions per layer (priced by :func:`hwmodels.pricing.price`): a MAC per entry (filler zeros
included), a codebook read per entry (codebook layers), an accumulator read and write per entry,
a queue write and read per PE per broadcast (value + column index), two pointer reads per PE per
broadcast, the 64-bit ``spmat`` words each PE's column spans, every activation of a round read by
the detector and every output written once.

Numerics. Integer only (EIE is fixed point): operands quantised as :func:`sim.numerics.prepare`
does; each output accumulates its products in column order, the accumulator saturating (or
wrapping) after every addition. Exact sums of the weights the entries stand for (decoded through
the codebook), checked exactly against :func:`sim.numerics.reference_products`; outputs whose
running sum saturated before its last term are counted and exempt, as in :mod:`sim.numerics`.
The stored entries themselves are walked by :mod:`sim.golden`, whose outputs must agree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd

from hwmodels.hardware import Accelerator, Precision
from hwmodels.pricing import ACTION_COLUMNS, price
from pruning.formats import RelativeCSC, encode_relative_csc, index_width, interleaved_entries
from sim.dram import DramTiming
from sim.mapping import SimulationError
from sim.numerics import (NumericsReport, Operands, apply_overflow, check, exact_products, prepare,
                          reference_products)
from sim.systolic import MacCounts
from sim.workload import Layer

__all__ = [
    "EieCounts", "EieLayout", "EieRun", "PeShare", "accumulate", "eie_actions", "encode_layer",
    "layer_events", "round_cycles", "run_eie",
]

_BLOCK_ELEMENTS = 1 << 18  # rounds × PEs simulated together: a few MB, stays in cache


# ----------------------------------------------------------------------------- layout


@dataclass(frozen=True, eq=False)
class PeShare:
    """One PE's rows of one group's matrix: its relative-index CSC (values are codes when the
    layer has a codebook, else weights) and, per column, its entries and filler zeros."""

    format: RelativeCSC
    entries: np.ndarray  # (K,) entries of each column (non-zeros + fillers)
    fillers: np.ndarray  # (K,)


@dataclass(frozen=True, eq=False)
class EieLayout:
    """A layer's weights as EIE stores them.

    ``codebook``: value of each code (code 0 is 0), or None when entries hold the weights.
    ``entry_bits``: bits of one stored entry (code or weight, plus index). ``entries``,
    ``fillers`` and ``words`` are (groups·K, PEs) tables: entries, filler zeros and ``spmat``
    words of column k of group g (row ``g·K + k``) on each PE. ``stored``: each group's matrix
    of what the entries hold (codes or weights); ``shares[g][p]``, the encoded format of group g
    on PE p, is built from it on first use (the cycle-by-cycle model walks it; fast mode needs
    the tables only).
    """

    pes: int
    m: int
    k: int
    index_bits: int
    entry_bits: int
    word_bits: int
    pointer_bits: int
    codebook: np.ndarray | None
    stored: tuple[np.ndarray, ...] = field(repr=False)
    entries: np.ndarray = field(repr=False)
    fillers: np.ndarray = field(repr=False)
    words: np.ndarray = field(repr=False)

    @property
    def costs(self) -> np.ndarray:
        """Cycles a PE spends on a column: ``max(entries, 1)`` (int32, (groups·K, PEs))."""
        return np.maximum(self.entries, 1).astype(np.int32)

    def pe_bits(self) -> np.ndarray:
        """``spmat`` bits each PE stores (all groups)."""
        return self.entries.sum(axis=0) * self.entry_bits

    @cached_property
    def shares(self) -> tuple[tuple[PeShare, ...], ...]:
        """``shares[g][p]``: PE p's rows of group g (rows p, p + N, ...) encoded by
        :func:`pruning.formats.encode_relative_csc`, with that PE's columns of the tables."""
        value_bits = self.entry_bits - self.index_bits
        return tuple(
            tuple(PeShare(encode_relative_csc(matrix[p::self.pes], self.index_bits, value_bits),
                          self.entries[g * self.k:(g + 1) * self.k, p], self.fillers[g * self.k:(g + 1) * self.k, p])
                  for p in range(self.pes))
            for g, matrix in enumerate(self.stored))

    def weights(self, g: int) -> np.ndarray:
        """The integer weights group g's entries stand for (codes decoded through the codebook)."""
        return self.codebook[self.stored[g]] if self.codebook is not None else self.stored[g]


_CODEBOOK_PROBE = 4096  # weights looked at before the whole layer is scanned for its distinct values


def _codebook(groups: list[np.ndarray], code_bits: int) -> np.ndarray | None:
    """The layer's codebook ([0, distinct non-zero weights...]) if they fit in 2^code_bits − 1."""
    codes = (1 << code_bits) - 1
    # The first weights of each group usually hold more distinct values than there are codes; a
    # part's distinct values are a lower bound of the whole's, so that settles it without a scan.
    probe = np.unique(np.concatenate([w.flat[:_CODEBOOK_PROBE] for w in groups]))
    if np.count_nonzero(probe) > codes:
        return None
    low = min(int(w.min()) for w in groups)
    present = sum(np.bincount((w - low).ravel(), minlength=max(int(g.max()) for g in groups) - low + 1)
                  for w in groups) > 0
    distinct = np.flatnonzero(present) + low
    distinct = distinct[distinct != 0]
    if distinct.size > codes:
        return None
    return np.concatenate(([0], distinct)).astype(np.int64)


def encode_layer(weights: list[np.ndarray], hw: Accelerator, conv: bool) -> EieLayout:
    """The EIE layout of a layer's integer weight matrices ``weights`` (one per group) on ``hw``:
    per column and PE, entries and fillers from :func:`pruning.formats.interleaved_entries`
    (code 0 stands for weight 0, so codes and weights have the same entries)."""
    array = hw.mac_array
    pes, eie = array.pes, array.eie
    fmt = hw.weight_format
    index_bits = fmt.index_bits_conv if conv else fmt.index_bits_linear
    codebook = _codebook(weights, eie.code_bits)
    value_bits = eie.code_bits if codebook is not None else array.precision.bits
    entry_bits = index_bits + value_bits
    word_bits = next(b for b in hw.buffers if b.name == "spmat").width_bits
    m, k = weights[0].shape
    entries, fillers, pointers = [], [], []
    for w_g in weights:
        non_zeros, filler_zeros = interleaved_entries(w_g, index_bits, pes)
        entries.append(non_zeros + filler_zeros)
        fillers.append(filler_zeros)
        pointers.append(np.cumsum(entries[-1], axis=0) - entries[-1])  # each group's column pointers
    entries_table, pointers = np.concatenate(entries), np.concatenate(pointers)
    start = pointers * entry_bits
    end = (pointers + entries_table) * entry_bits
    words = np.where(entries_table > 0, (end - 1) // word_bits - start // word_bits + 1, 0)
    # code 0 is zero; code c >= 1 is the (c−1)-th distinct non-zero weight (codebook[1:] sorted)
    stored = tuple(np.where(w_g == 0, 0, np.searchsorted(codebook[1:], w_g) + 1) if codebook is not None else w_g
                   for w_g in weights)
    return EieLayout(pes, m, k, index_bits, entry_bits, word_bits, eie.pointer_bits, codebook, stored,
                     entries_table, np.concatenate(fillers), words)


# ----------------------------------------------------------------------------- timing


def layer_events(inputs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The broadcasts of a layer: for round r = g·N + n (group g, column n of X_g), its non-zero
    activations in column order. Returns ``rows`` (row ``g·K + k`` of the layout's tables, per
    broadcast, rounds one after another) and ``starts`` (offsets of each round's broadcasts)."""
    rows, counts = [], []
    for g, x_g in enumerate(inputs):
        k, n = x_g.shape
        # Round by round (a contiguous bool copy of X_gᵀ: nonzero of a transposed view is slow)
        active = np.ascontiguousarray((np.asarray(x_g) != 0).T)
        per_round = np.count_nonzero(active, axis=1)
        position = np.flatnonzero(active)  # n·K + k: sorted by round, then column
        position -= k * np.repeat(np.arange(n) - g, per_round)  # g·K + k
        rows.append(position)
        counts.append(per_round)
    starts = np.zeros(sum(len(c) for c in counts) + 1, dtype=np.int64)
    np.cumsum(np.concatenate(counts), out=starts[1:])
    return np.concatenate(rows), starts


def _critical_pes(costs: np.ndarray) -> np.ndarray:
    """The PEs (columns of ``costs``) that can decide a round's cycles. F is the maximum over
    PEs, and a PE whose cost is at most another PE's on every row of the table finishes every
    activation no later than that PE (f is monotone in c, by induction on the recurrence), so it
    never sets F: equal columns are kept once and those the busiest PE's column dominates are
    dropped (all but one PE of a dense layer, whose shares differ only where a weight quantised
    to zero)."""
    if costs.shape[0]:  # one of each column: unique byte strings (np.unique(axis=1) compares field by field)
        columns = np.ascontiguousarray(costs.T)
        keys = columns.view(np.dtype((np.void, columns.shape[1] * columns.itemsize))).ravel()
        costs = columns[np.unique(keys, return_index=True)[1]].T
    if costs.shape[1] > 1:
        busiest = int(np.argmax(costs.sum(axis=0)))
        keep = ~(costs <= costs[:, [busiest]]).all(axis=0)
        keep[busiest] = True
        costs = costs[:, keep]
    return costs


def _one_round(table: np.ndarray, events: np.ndarray, depth: int) -> tuple[int, int]:
    """Cycles and stall cycles of a single round (a linear layer's), D broadcasts per numpy step.

    F_{j−D} is known for the D broadcasts j = i0 .. i0+D−1 of a step, so unrolling the
    recurrence over them gives, with ``S`` the PE's running sum of costs from i0 (S_{i0−1} = 0),
    ``b_j = j + max(b_{i0−1} + 1 − i0, max_{i0≤l≤j} F_{l−D} − l)`` and
    ``f_{j,p} = S_{j,p} + max(f_{i0−1,p}, max_{i0≤l≤j} b_l + 1 − S_{l−1,p})`` (running maxima).
    """
    steps = np.arange(depth)
    free = np.zeros(table.shape[1], dtype=np.int64)  # f_{i0−1,p}
    done = np.full(depth, np.iinfo(np.int64).min // 4)  # F of the previous step's broadcasts
    last = -1  # b_{i0−1}
    for i0 in range(0, len(events), depth):
        costs = table[events[i0:i0 + depth]]  # (C, P), C <= D
        position = i0 + steps[:len(costs)]
        b = np.maximum.accumulate(np.maximum(done[:len(costs)] - position, last + 1 - i0)) + position
        work = np.cumsum(costs, axis=0)
        f = (b + 1)[:, None] - work + costs
        np.maximum.accumulate(f, axis=0, out=f)
        np.maximum(f, free, out=f)
        f += work
        done, free, last = f.max(axis=1), f[-1], int(b[-1])
    return int(done[-1]), last - (len(events) - 1)


def round_cycles(costs: np.ndarray, rows: np.ndarray, starts: np.ndarray, depth: int
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Cycles and FIFO-full stall cycles of every round (module docstring's recurrence).

    ``costs[r, p]`` (>= 1): cycles PE p spends on table row r; ``rows``/``starts`` as from
    :func:`layer_events`; ``depth``: queue depth D. Rounds are independent, so they are stepped
    together: sorted by length, in blocks, one numpy step per broadcast position, on the PEs of
    :func:`_critical_pes`. A round's stall cycles are ``b_{L−1} − (L − 1)`` (each broadcast
    after the first comes one cycle after the previous one unless held).
    """
    costs = _critical_pes(costs)
    lengths = np.diff(starts)
    rounds, pes = len(lengths), costs.shape[1]
    cycles = np.zeros(rounds, dtype=np.int64)
    stalls = np.zeros(rounds, dtype=np.int64)
    order = np.argsort(-lengths, kind="stable")
    order = order[lengths[order] > 0]
    if not len(order):
        return cycles, stalls
    if len(order) == 1:  # a linear layer's one round: numpy steps of D broadcasts (few PEs per step)
        only = int(order[0])
        table = np.ascontiguousarray(costs, dtype=np.int64)
        cycles[only], stalls[only] = _one_round(table, rows[starts[only]:starts[only + 1]], depth)
        return cycles, stalls
    # A round ends within its broadcasts plus all its work: int32 times when that fits (half
    # the memory traffic of int64 in the steps below).
    longest = int(lengths[order[0]])
    time_type = np.int32 if longest * (int(costs.max()) + 2) + 2 < 2 ** 31 else np.int64
    never = np.iinfo(time_type).min // 4
    table = np.ascontiguousarray(costs, dtype=time_type)  # contiguous rows: np.take copies them whole
    block = max(1, _BLOCK_ELEMENTS // pes)
    for lo in range(0, len(order), block):
        ids = order[lo:lo + block]
        lens = lengths[ids]
        # active[i]: rounds of the block longer than i (the first ones: sorted by length)
        active = np.searchsorted(-lens, -np.arange(int(lens[0]) + 1), side="left").tolist()
        position = starts[ids].copy()  # each round's next broadcast in rows
        free = np.zeros((len(ids), pes), dtype=time_type)  # f_{i−1,p}
        work = np.empty((len(ids), pes), dtype=time_type)
        ready = np.zeros(len(ids), dtype=time_type)  # b_{i−1} + 1
        broadcast = np.empty(len(ids), dtype=time_type)
        ring = np.full((depth, len(ids)), never, dtype=time_type)  # F_{i−D} .. F_{i−1}
        for i in range(int(lens[0])):
            a = active[i]
            b, earliest = broadcast[:a], ready[:a]
            np.maximum(earliest, ring[i % depth, :a], out=b)
            np.add(b, 1, out=earliest)
            f = free[:a]
            np.maximum(f, earliest[:, None], out=f)
            table.take(rows[position[:a]], axis=0, out=work[:a], mode="clip")
            position[:a] += 1
            f += work[:a]
            done = ring[i % depth, :a]
            np.maximum.reduce(f, axis=1, out=done)
            if active[i + 1] < a:  # rounds whose last broadcast this was
                finished = slice(active[i + 1], a)
                cycles[ids[finished]] = done[finished]
                stalls[ids[finished]] = b[finished] - i
    return cycles, stalls


# ----------------------------------------------------------------------------- numerics


def _magnitude(values: np.ndarray) -> int:
    """``max |v|`` (0 when empty) without a temporary of ``|values|``."""
    return max(int(values.max()), -int(values.min())) if values.size else 0


def accumulate(layout: EieLayout, weights: list[np.ndarray], inputs: list[np.ndarray], precision: Precision
               ) -> tuple[np.ndarray, np.ndarray]:
    """Every output as the PEs accumulate it: products in column order, the accumulator's
    overflow rule after every addition. Returns (outputs int64 (groups·M × N), mask of outputs
    whose running sum left the accumulator's range before its last term).

    Exact sums: :func:`sim.numerics.exact_products` of the weights the entries stand for (codes
    decoded through the codebook, :meth:`EieLayout.weights`) and the inputs; the order of the
    products does not change an exact sum. The stored entries themselves (relative indices,
    filler zeros, pointers) are walked by :func:`sim.golden.golden_eie`, which must agree with
    these outputs. An output whose bound ``Σ|w||x|`` stays in range cannot saturate midway; the
    others get their running sums from ``weights`` (cumulative sums, then a sequential saturating
    pass only where a prefix leaves the range).
    """
    high = 2 ** (precision.accumulator_bits - 1) - 1
    outputs, midway = [], []
    for g, x_g in enumerate(inputs):
        w = np.asarray(weights[g])
        peak = _magnitude(w) * _magnitude(x_g) * layout.k
        if peak >= 2 ** 53:
            raise SimulationError(f"int numerics need K·max|w|·max|x| < 2^53 for exact sums (here {peak:.3g}); "
                                  "run without numerics")
        out = apply_overflow(exact_products(layout.weights(g), x_g), precision)
        early = np.zeros(out.shape, dtype=bool)
        if precision.overflow_mode == "saturate" and peak > high:
            risky = np.argwhere(np.abs(w).astype(np.float64) @ np.abs(x_g).astype(np.float64) > high)
            step = max(1, _BLOCK_ELEMENTS // max(1, layout.k))
            for start in range(0, len(risky), step):
                m_idx, n_idx = risky[start:start + step].T
                terms = w[m_idx].astype(np.int64) * x_g.T[n_idx].astype(np.int64)  # (outputs, K), column order
                prefix = np.cumsum(terms, axis=1)
                left = ((prefix > high) | (prefix < -high - 1))[:, :-1].any(axis=1)
                for j in np.flatnonzero(left):
                    running = 0
                    for term in terms[j][terms[j] != 0]:
                        running = min(max(running + int(term), -high - 1), high)
                    out[m_idx[j], n_idx[j]] = running
                    early[m_idx[j], n_idx[j]] = True
        outputs.append(out)
        midway.append(early)
    return np.concatenate(outputs), np.concatenate(midway)


# ----------------------------------------------------------------------------- one layer


@dataclass(frozen=True)
class EieCounts:
    """What one layer did on the array (all counts for one sample)."""

    rounds: int
    broadcasts: int
    compute_cycles: int
    fifo_stall_cycles: int
    drain_cycles: int
    entries: int  # MACs executed: non-zeros × activations plus filler zeros
    filler_macs: int
    effectual_macs: int
    pe_busy: np.ndarray  # (PEs,) busy cycles
    pe_entries: np.ndarray  # (PEs,) entries processed
    spmat_words: int
    pointer_reads: int
    activation_reads: int
    activation_writes: int
    weights_spilled_bits: int  # DRAM bits read for weights beyond the SRAMs (all rounds)
    activation_dram_read_bits: int
    activation_dram_write_bits: int

    @property
    def load_balance(self) -> float:
        """max / mean of the PEs' busy cycles (1: perfectly balanced)."""
        mean = float(self.pe_busy.mean())
        return float(self.pe_busy.max()) / mean if mean else 1.0


def _spill_bits(need_bits: np.ndarray, capacity_bits: float) -> int:
    return int(np.maximum(need_bits - capacity_bits, 0).sum())


def count_layer(layer: Layer, layout: EieLayout, inputs: list[np.ndarray], hw: Accelerator) -> EieCounts:
    """:class:`EieCounts` of a layer's layout and quantised inputs on ``hw`` (fast mode)."""
    array = hw.mac_array
    rows, starts = layer_events(inputs)
    per_row = np.bincount(rows, minlength=layout.entries.shape[0]).astype(np.int64)
    cycles, stalls = round_cycles(layout.costs, rows, starts, array.eie.fifo_depth)
    lengths = np.diff(starts)
    drains = cycles - lengths - stalls
    pe_entries = per_row @ layout.entries
    fillers = int((per_row @ layout.fillers).sum())
    buffers = {b.name: b for b in hw.buffers}
    pes = array.pes
    spmat_capacity = buffers["spmat"].capacity_bytes * 8 / pes
    pointer_capacity = buffers["pointers"].capacity_bytes * 8 / pes
    groups = len(inputs)
    pointer_bits = np.full(pes, groups * (layout.k + 1) * array.eie.pointer_bits)
    used_rounds = int(np.count_nonzero(lengths))
    spilled = (_spill_bits(layout.pe_bits(), spmat_capacity) + _spill_bits(pointer_bits, pointer_capacity))
    bits = array.precision.bits
    in_values, out_values = math.prod(layer.input_shape), math.prod(layer.output_shape)
    act_spill = (in_values + out_values) * bits > buffers["activations"].capacity_bytes * 8
    n = inputs[0].shape[1]
    return EieCounts(
        rounds=len(lengths), broadcasts=int(len(rows)), compute_cycles=int(cycles.sum()),
        fifo_stall_cycles=int(stalls.sum()), drain_cycles=int(drains.sum()),
        entries=int(pe_entries.sum()), filler_macs=fillers, effectual_macs=int(pe_entries.sum()) - fillers,
        pe_busy=per_row @ layout.costs.astype(np.int64), pe_entries=pe_entries,
        spmat_words=int((per_row @ layout.words).sum()), pointer_reads=2 * pes * int(len(rows)),
        activation_reads=groups * layout.k * n, activation_writes=groups * layout.m * n,
        weights_spilled_bits=spilled * used_rounds,
        activation_dram_read_bits=in_values * bits if act_spill else 0,
        activation_dram_write_bits=out_values * bits if act_spill else 0,
    )


def eie_actions(layer_name: str, counts: EieCounts, layout: EieLayout, hw: Accelerator, k: int) -> pd.DataFrame:
    """Priced action rows (:data:`hwmodels.pricing.ACTION_COLUMNS` + ``energy_pj``) of a layer."""
    precision = hw.mac_array.precision
    bits, acc = precision.bits, precision.accumulator_bits
    buffers = {b.name: b for b in hw.buffers}
    queue_bits = bits + index_width(k)  # an activation and its column index j
    queue = counts.broadcasts * hw.mac_array.pes
    burst = hw.dram.burst_bytes * 8
    rows = [
        ("mac", "mac", "mac", bits, counts.entries),
        ("rf", "codebook", "read", bits, counts.entries if layout.codebook is not None else 0),
        ("rf", "accumulator", "read", acc, counts.entries),
        ("rf", "accumulator", "write", acc, counts.entries),
        ("rf", "queue", "write", queue_bits, queue),
        ("rf", "queue", "read", queue_bits, queue),
        ("sram", "spmat", "read", buffers["spmat"].width_bits, counts.spmat_words),
        ("sram", "pointers", "read", buffers["pointers"].width_bits,
         counts.pointer_reads * hw.mac_array.eie.pointer_bits / buffers["pointers"].width_bits),
        ("sram", "activations", "read", buffers["activations"].width_bits,
         counts.activation_reads * bits / buffers["activations"].width_bits),
        ("sram", "activations", "write", buffers["activations"].width_bits,
         counts.activation_writes * bits / buffers["activations"].width_bits),
        ("dram", "dram", "read", burst, (counts.weights_spilled_bits + counts.activation_dram_read_bits) / burst),
        ("dram", "dram", "write", burst, counts.activation_dram_write_bits / burst),
    ]
    frame = pd.DataFrame([(layer_name, *row) for row in rows], columns=list(ACTION_COLUMNS))
    frame["count"] = frame["count"].astype(float)
    return frame.assign(energy_pj=price(frame, hw))


@dataclass(frozen=True)
class EieRun:
    """One layer on the EIE array: counts, cycles with memory, priced actions, numerics."""

    layout: EieLayout
    counts: EieCounts
    macs: MacCounts
    cycles: int
    memory_cycles: int
    actions: pd.DataFrame
    numerics: NumericsReport | None
    outputs: np.ndarray | None  # the simulated outputs (groups·M × N), when numerics ran

    def record(self) -> dict:
        """The EIE columns of the layer's result row (see :mod:`sim.simulate`)."""
        counts, actions, layout = self.counts, self.actions, self.layout
        spmat = actions[actions["component"] == "spmat"]
        pointers = actions[actions["component"] == "pointers"]
        index_share = layout.index_bits / layout.entry_bits
        filler = actions[actions["level"] == "mac"]["energy_pj"].sum() * (
            counts.filler_macs / counts.entries if counts.entries else 0.0)
        return {
            "rounds": counts.rounds, "broadcasts": counts.broadcasts, "filler_macs": counts.filler_macs,
            "fifo_stall_cycles": counts.fifo_stall_cycles, "drain_cycles": counts.drain_cycles,
            "pe_busy_max": int(counts.pe_busy.max()), "pe_busy_mean": float(counts.pe_busy.mean()),
            "load_balance": counts.load_balance, "pe_entries": int(counts.pe_entries.sum()),
            "entry_bits": layout.entry_bits, "codebook": layout.codebook is not None,
            "index_read_bits": counts.spmat_words * layout.word_bits * index_share,
            "pointer_read_bits": counts.pointer_reads * layout.pointer_bits,
            "weights_spilled_bits": counts.weights_spilled_bits,
            "energy_index_pj": float(spmat["energy_pj"].sum() * index_share + pointers["energy_pj"].sum()),
            "energy_filler_pj": float(filler),
        }


def run_eie(layer: Layer, hw: Accelerator, ideal_memory: bool = False, numerics: bool = True,
            operands: Operands | None = None) -> EieRun:
    """Simulate one Linear or Conv2d layer on an ``eie`` array in fast mode (module docstring)."""
    array = hw.mac_array
    if array.kind != "eie":
        raise SimulationError(f"hardware '{hw.name}' has mac_array.kind '{array.kind}', not 'eie'")
    operands = operands or prepare(layer, array.precision)
    weights = [w for w, _ in operands.groups]
    inputs = [x for _, x in operands.groups]
    layout = encode_layer(weights, hw, layer.kind == "conv2d")
    counts = count_layer(layer, layout, inputs, hw)
    timing = DramTiming.of(hw, ideal_memory)
    dram_bits = counts.weights_spilled_bits + counts.activation_dram_read_bits + counts.activation_dram_write_bits
    memory_cycles = timing.busy_cycles(dram_bits)
    dense = sum(w.shape[0] * w.shape[1] * x.shape[1] for w, x in operands.groups)
    macs = MacCounts(dense=dense, executed=counts.entries, gated=0, skipped=dense - counts.effectual_macs,
                     effectual=counts.effectual_macs)
    report, outputs = None, None
    if numerics:
        outputs, midway = accumulate(layout, weights, inputs, array.precision)
        report = check(layer.name, outputs, reference_products(operands, array.precision), array.precision, midway)
    actions = eie_actions(layer.name, counts, layout, hw, layout.k)
    return EieRun(layout, counts, macs, max(counts.compute_cycles, memory_cycles), memory_cycles, actions,
                  report, outputs)
