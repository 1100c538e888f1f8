"""The sparse option of the weight-stationary systolic array: zero weights compacted out of each
column of the stationary tile and skipped (``mac_array.zero_weights: skip`` with a ``bitmask`` or
``relative_index`` ``weight_format``; :mod:`hwmodels.hardware` accepts it for ``ws`` only).

Layout. In WS (:mod:`sim.systolic`) the stationary operand is ``W_g^T`` (K × M): array column j
of column fold f holds output ``m = f·C + j`` and its weights along the reduction k. The
hardware stores each output's weights compressed, in :mod:`pruning.formats`'s formats:

* ``bitmask``: :func:`pruning.formats.encode_bitmask` of ``W_g`` (row-major: output m's K mask
  bits in a row) and the non-zero values; output m stores ``e_m`` = its non-zeros.
* ``relative_index``: :func:`pruning.formats.encode_relative_csc` of ``W_g^T`` (column m =
  output m, ``index_bits`` from ``weight_format``): ``e_m`` = non-zeros + filler zeros, a filler
  wherever a run of zeros is longer than the index can count (Deep Compression, ICLR 2016 §2;
  EIE, ISCA 2016 §III-B).

Compaction and passes (cycles). Entry r (0-based, in k order) of output m is loaded, in *pass*
``p = r // R``, into PE row ``r mod R`` of m's array column. A column fold runs

    P_f = max(1, max_j ceil(e_{m_j} / R))          (j over the fold's C columns)

passes, each a fold of the dense array (weights shifted in over R cycles, the N input vectors
streamed, partial sums out at the bottom): ``fold_cycles(R, C, N) = 2R + C + N − 2`` cycles each
(SCALE-Sim's Eq. 1, :func:`sim.systolic.fold_cycles`). The dense array runs ``ceil(K/R)`` row
folds per column fold; since a filler stands on a zero, ``e_m ≤ K`` and ``P_f ≤ ceil(K/R)``:
skipping is never slower in compute cycles. Cycles fall with the *densest* column of each fold,
not with the mean: in the later passes the PEs of sparser columns hold no weight and idle
(load imbalance, from the real masks). A fold with no stored entry still runs its one pass.

Input delivery. PE (i, j) of pass p holds the entry at reduction index ``k_{p,i,j}``, different
from column to column, so it cannot take its input from a row lane shared by the whole row as
the dense array does. As in Cambricon-X (Zhang et al., "Cambricon-X: An Accelerator for Sparse
Neural Networks", MICRO 2016, §IV: the buffer controller's indexing module selects, by the
weights' indices, the input neurons each PE needs), a selection network hands every PE
``x[k_{p,i,j}, n]`` with input vector n, in the dense array's skew. The input buffer is read once
per distinct reduction index of the pass and input vector: ``u_p`` values per vector, where
``u_p`` = the number of distinct ``k_{p,i,j}`` (up to R·C; the dense array reads R). Assumption,
stated: the input buffer and the network deliver those ``u_p`` values every cycle without
stalling the array (Cambricon-X sizes its neuron buffer's bandwidth for its PEs); the reads are
counted and priced, the network's wires are not. Results report the mean ``u_p / R``
(``input_fanout``), the input bandwidth this takes relative to the dense array.

Metadata (moves with the weights: fetched from DRAM whenever their tile is, written into and read
from the weight buffer; counted apart as ``index_read``/``index_write`` actions and priced as
accesses of the same memories):

* ``bitmask``: the loader scans output m's K mask bits in order; pass p reads from where pass
  p − 1 stopped through its last entry's bit, the last pass of a column through the column's
  end, and a column with no entry has its K bits read in pass 0. One load of a group's weights
  reads exactly ``M·K`` bits: :func:`pruning.formats.bitmask_size_bits` less the values.
* ``relative_index``: every loaded entry's ``index_bits``; a column's start pointer with its
  first pass, and the group's end pointer with its last column fold (the end of a column is the
  next one's start), each ``pointer_width(entries of the group)`` bits (the formats' minimal
  width). One load reads exactly ``entries·index_bits + (M + 1)·pointer_bits``:
  :func:`pruning.formats.relative_csc_size_bits` less the values.

MACs. Every stored entry meets each of the N input vectors once: ``Σ e_m · N`` MAC slots. A slot
whose input is zero is gated when ``zero_activations`` is ``gate``, else executed; filler zeros
are executed (their slot is taken, as in EIE). Weights not stored cost nothing: skipped MACs =
dense − slots.

Numerics. Pass p of output m adds up the products of its entries of that pass (at most R) into a
partial sum in the accumulator format; partial sums are added across passes in the accumulator
format, as the dense array's row folds are (:mod:`sim.numerics`): int exact (a partial sum that
saturated before the output's last pass is counted and exempt), fp within the tolerance. Folds
whose columns store all K weights have the dense row folds as their passes and go through
:func:`sim.numerics.array_products`; the others are computed from the compacted entries with
``scipy.sparse`` (one row per output and pass).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse

from hwmodels.hardware import Accelerator, MacArray
from pruning.formats import encode_relative_csc, pointer_width, relative_rows
from sim.mapping import SimulationError
from sim.numerics import NumericsReport, Operands, apply_overflow, array_products, check, reference_products
from sim.reference import COLUMN_BLOCK_ELEMENTS
from sim.systolic import MacCounts

__all__ = ["Compaction", "compact", "compacted_macs", "compacted_numerics"]

_BLOCK_WEIGHTS = 1 << 22  # weight positions (outputs × K) compacted together: tens of MB of temporaries


@dataclass(frozen=True, eq=False)
class _Entries:
    """The stored entries of a group's outputs that are not fully dense, in storage order
    (output, then k): output row, reduction index, pass and value (fillers left out: they add 0)."""

    row: np.ndarray
    k: np.ndarray
    passes: np.ndarray
    value: np.ndarray


@dataclass(frozen=True, eq=False)
class Compaction:
    """A layer's weights as the sparse WS array holds them (module docstring), per group g,
    column fold f and pass p (tables padded with zeros to ``max_passes``):

    ``passes[g, f]``: passes the fold runs; ``loaded[g, f, p]``: entries loaded into the PEs;
    ``union[g, f, p]``: distinct reduction indices the pass's PEs hold (input-buffer reads per
    input vector); ``metadata[g, f, p]``: metadata bits read with the pass's tile;
    ``entries_at[g, k]`` / ``fillers_at[g, k]``: stored entries / filler zeros at reduction
    index k. ``value_bits``: bits of a stored value (the array's operand width).
    """

    format: str
    rows: int
    cols: int
    value_bits: int
    passes: np.ndarray
    loaded: np.ndarray
    union: np.ndarray
    metadata: np.ndarray
    entries_at: np.ndarray
    fillers_at: np.ndarray
    dense_rows: tuple[np.ndarray, ...]  # per group: outputs storing all K weights
    sparse: tuple[_Entries, ...]  # per group: the other outputs' entries

    @property
    def max_passes(self) -> int:
        return int(self.passes.max(initial=1))

    @property
    def total_passes(self) -> int:
        return int(self.passes.sum())

    @property
    def entries(self) -> int:
        return int(self.entries_at.sum())

    @property
    def metadata_bits(self) -> int:
        """Metadata of one load of the whole layer (see the module docstring for its size)."""
        return int(self.metadata.sum())

    @property
    def storage_bits(self) -> int:
        """Values and metadata of the layer as stored."""
        return self.entries * self.value_bits + self.metadata_bits

    def tile_bits(self) -> np.ndarray:
        """Bits of each pass's tile, values and metadata (groups, folds, max_passes)."""
        return self.loaded * self.value_bits + self.metadata


def _metadata_bits_per_entry(hw: Accelerator, conv: bool) -> int:
    """Metadata bits a stored entry carries in ``hw``'s format: the relative index's width, or 1
    mask bit (a bitmask's other bits belong to the zeros)."""
    fmt = hw.weight_format
    if fmt.kind == "bitmask":
        return 1
    return fmt.index_bits_conv if conv else fmt.index_bits_linear


def _stored(block: np.ndarray, kind: str, index_bits: int, value_bits: int
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The entries of a block of outputs (rows of W_g) in storage order: per-output entry counts,
    each entry's output (local row), reduction index, and whether it is a filler zero."""
    if kind == "relative_index":
        fmt = encode_relative_csc(block.T, index_bits, value_bits)
        counts = np.diff(fmt.col_ptr)
        k = relative_rows(fmt)
        filler = np.asarray(fmt.values) == 0
    else:
        _, k = np.nonzero(block)  # row-major: output by output, k ascending (the bitmask's order)
        counts = np.count_nonzero(block, axis=1)
        filler = np.zeros(k.shape, dtype=bool)
    row = np.repeat(np.arange(block.shape[0]), counts)
    return counts.astype(np.int64), row, k.astype(np.int64), filler


def compact(weights: list[np.ndarray], hw: Accelerator, conv: bool) -> Compaction:
    """The :class:`Compaction` of a layer's weight matrices ``weights`` (``W_g``, M × K, in the
    array's number format: a weight is stored iff it is non-zero there) on ``hw``."""
    array = hw.mac_array
    fmt = hw.weight_format
    if array.zero_weights != "skip" or fmt.kind not in ("bitmask", "relative_index"):
        raise SimulationError(f"hardware '{hw.name}' does not skip zero weights in a compressed format")
    rows, cols = array.rows, array.cols
    index_bits = _metadata_bits_per_entry(hw, conv)
    m, k = weights[0].shape
    folds, bound = math.ceil(m / cols), math.ceil(k / rows)
    groups = len(weights)
    passes = np.ones((groups, folds), dtype=np.int64)
    loaded, union, metadata = (np.zeros((groups, folds, bound), dtype=np.int64) for _ in range(3))
    entries_at, fillers_at = np.zeros((groups, k), dtype=np.int64), np.zeros((groups, k), dtype=np.int64)
    width = np.minimum(cols, m - np.arange(folds) * cols)  # outputs in each fold
    per_pass = np.minimum(rows, k - np.arange(bound) * rows)  # entries of a dense column in each pass
    dense_rows, sparse = [], []
    for g, w_g in enumerate(weights):
        # Outputs that store all K weights: entry r is at k = r, so pass p holds k = pR.. of them
        # (every row of the pass's range); they need no encoding, whatever the format.
        full = np.count_nonzero(w_g, axis=1) == k
        dense_rows.append(np.flatnonzero(full))
        dense_cols = np.bincount(dense_rows[-1] // cols, minlength=folds)  # per fold
        has_dense = dense_cols > 0
        passes[g, has_dense] = bound
        loaded[g] = dense_cols[:, None] * per_pass
        union[g] = has_dense[:, None] * per_pass
        metadata[g] = loaded[g] * index_bits  # a dense column's bitmask: one bit per entry
        entries_at[g] += len(dense_rows[-1])
        sparse_outputs = np.flatnonzero(~full)
        sparse_folds = np.unique(sparse_outputs // cols)
        step = max(1, _BLOCK_WEIGHTS // max(1, cols * k))  # whole folds at a time: their union needs them all
        parts = []
        for start in range(0, len(sparse_folds), step):
            ids = sparse_folds[start:start + step]
            outputs = sparse_outputs[np.isin(sparse_outputs // cols, ids)]
            block = _compact_block(w_g[outputs], outputs // cols, rows, bound, fmt.kind, index_bits,
                                   array.precision.bits, has_dense)
            passes[g, ids] = np.maximum(passes[g, ids], block.passes[ids])
            loaded[g] += block.loaded
            union[g] += block.union
            metadata[g] += block.metadata
            entries_at[g] += block.entries_at
            fillers_at[g] += block.fillers_at
            parts.append(_Entries(outputs[block.local], block.k, block.passes_of, block.value))
        sparse.append(_Entries(*(np.concatenate([getattr(e, name) for e in parts]) if parts else np.zeros(0, np.int64)
                                 for name in ("row", "k", "passes", "value"))))
        if fmt.kind == "relative_index":  # start pointers with each column's first pass, end pointer once
            pointer = pointer_width(int(entries_at[g].sum()))
            metadata[g, :, 0] += width * pointer
            metadata[g, folds - 1, 0] += pointer
    used = int(passes.max(initial=1))
    return Compaction(fmt.kind, rows, cols, array.precision.bits, passes, loaded[..., :used], union[..., :used],
                      metadata[..., :used], entries_at, fillers_at, tuple(dense_rows), tuple(sparse))


@dataclass(frozen=True, eq=False)
class _Block:
    """The contribution of some outputs (not fully dense) of one group: tables over all the
    group's folds, and their non-filler entries (output as a position in the block, k, pass,
    value)."""

    passes: np.ndarray
    loaded: np.ndarray
    union: np.ndarray
    metadata: np.ndarray
    entries_at: np.ndarray
    fillers_at: np.ndarray
    local: np.ndarray
    k: np.ndarray
    passes_of: np.ndarray
    value: np.ndarray


def _compact_block(block: np.ndarray, fold_of: np.ndarray, rows: int, bound: int, kind: str, index_bits: int,
                   value_bits: int, has_dense: np.ndarray) -> _Block:
    """Compaction of the outputs ``block`` (rows of W_g, whole folds of them; ``fold_of``: each
    one's fold). A fold with a dense column already reads the whole k-range of each pass
    (``has_dense``), so only entries outside it add to the pass's distinct inputs."""
    k = block.shape[1]
    folds = len(has_dense)
    counts, local, k_pos, filler = _stored(block, kind, index_bits, value_bits)
    starts = np.concatenate(([0], np.cumsum(counts)))
    rank = np.arange(len(local)) - starts[local]
    p = rank // rows
    key = fold_of[local] * bound + p
    size = folds * bound
    loaded = np.bincount(key, minlength=size)
    new = ~has_dense[fold_of[local]] | (k_pos < p * rows) | (k_pos >= (p + 1) * rows)
    pairs = np.sort(key[new] * k + k_pos[new])  # np.unique's hashing is slow on these keys
    distinct = pairs[np.concatenate(([True], pairs[1:] != pairs[:-1]))] if len(pairs) else pairs
    union = np.bincount(distinct // k, minlength=size)
    column_passes = -(-counts // rows)
    passes = np.ones(folds, dtype=np.int64)
    np.maximum.at(passes, fold_of, column_passes)
    if kind == "relative_index":
        metadata = loaded * index_bits  # the pointers are added per group
    else:
        # Mask bits scanned: pass p of a column stops after its last entry's bit, its last pass at K.
        ends = (rank % rows == rows - 1) & (p < column_passes[local] - 1)
        stop = k_pos[ends] + 1
        metadata = np.bincount(key[ends], weights=stop, minlength=size)
        metadata -= np.bincount(key[ends] + 1, weights=stop, minlength=size + 1)[:size]
        metadata += np.bincount(fold_of * bound + np.maximum(column_passes - 1, 0), minlength=size) * k
        metadata = np.rint(metadata).astype(np.int64)
    keep = ~filler
    return _Block(passes, loaded.reshape(folds, bound), union.reshape(folds, bound), metadata.reshape(folds, bound),
                  np.bincount(k_pos, minlength=k), np.bincount(k_pos[filler], minlength=k),
                  local[keep], k_pos[keep], p[keep], block[local[keep], k_pos[keep]])


def compacted_macs(operands: Operands, compaction: Compaction, array: MacArray) -> tuple[MacCounts, int]:
    """MAC classes of the layer on the sparse array (module docstring) and the filler-zero MACs
    executed."""
    dense = executed = slots = effectual = fillers = 0
    gate_a = array.zero_activations == "gate"
    for g, (w_g, x_g) in enumerate(operands.groups):
        n = x_g.shape[1]
        x_k = np.count_nonzero(x_g, axis=1).astype(np.int64)
        e_k, f_k = compaction.entries_at[g], compaction.fillers_at[g]
        w_k = e_k - f_k  # the non-zero weights at each k: the stored entries but the fillers
        dense += w_g.shape[0] * w_g.shape[1] * n
        slots += int(e_k.sum()) * n
        effectual += int(w_k @ x_k)
        executed += int(e_k @ x_k) if gate_a else int(e_k.sum()) * n
        fillers += int(f_k @ x_k) if gate_a else int(f_k.sum()) * n
    return MacCounts(dense=dense, executed=executed, gated=slots - executed, skipped=dense - slots,
                     effectual=effectual), fillers


def _sparse_products(entries: _Entries, x_g: np.ndarray, max_passes: int, array: MacArray
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Outputs (and midway-saturation mask) of the outputs with compacted entries, accumulated
    pass by pass; returns (rows, outputs, midway)."""
    precision = array.precision
    is_int = precision.dtype == "int"
    acc = np.float64 if is_int else x_g.dtype.type
    rows, local = np.unique(entries.row, return_inverse=True)
    n = x_g.shape[1]
    last = np.zeros(len(rows), dtype=np.int64)
    np.maximum.at(last, local, entries.passes)
    matrix = scipy.sparse.csr_array((entries.value.astype(acc), (local * max_passes + entries.passes, entries.k)),
                                    shape=(len(rows) * max_passes, x_g.shape[0]))
    out = np.empty((len(rows), n), dtype=np.int64 if is_int else acc)
    midway = np.zeros(out.shape, dtype=bool)
    width = max(1, COLUMN_BLOCK_ELEMENTS // max(1, len(rows) * max_passes))
    for start in range(0, n, width):
        block = slice(start, min(n, start + width))
        partials = (matrix @ x_g[:, block].astype(acc, copy=False)).reshape(len(rows), max_passes, -1)
        if is_int:
            partials = np.rint(partials).astype(np.int64)
        running = partials[:, 0]
        for f in range(1, max_passes):
            if is_int:
                raw, running = running, apply_overflow(running, precision)
                if precision.overflow_mode == "saturate":
                    midway[:, block] |= (raw != running) & (f <= last)[:, None]
            running = running + partials[:, f]
        out[:, block] = apply_overflow(running, precision) if is_int else running
    return rows, out, midway


def compacted_numerics(layer_name: str, operands: Operands, compaction: Compaction, array: MacArray
                       ) -> NumericsReport:
    """The layer's outputs through the compacted passes (module docstring), checked against
    :func:`sim.numerics.reference_products`."""
    precision = array.precision
    if precision.dtype == "int" and precision.accumulator_bits > 62:
        raise SimulationError(f"layer '{layer_name}': int numerics support accumulators of at most 62 bits; "
                              "run without numerics")
    outputs, masks = [], []
    for g, (w_g, x_g) in enumerate(operands.groups):
        out = np.zeros((w_g.shape[0], x_g.shape[1]), dtype=np.int64 if precision.dtype == "int" else x_g.dtype)
        midway = np.zeros(out.shape, dtype=bool)
        dense = compaction.dense_rows[g]
        if len(dense):
            out[dense], midway[dense] = array_products(Operands([(w_g[dense], x_g)]), array, layer_name)
        if len(compaction.sparse[g].row):
            rows, values, early = _sparse_products(compaction.sparse[g], x_g, compaction.max_passes, array)
            out[rows], midway[rows] = values, early
        outputs.append(out)
        masks.append(midway)
    simulated, midway = np.concatenate(outputs), np.concatenate(masks)
    return check(layer_name, simulated, reference_products(operands, precision), precision, midway)
