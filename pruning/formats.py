"""Sparse storage formats of a pruned weight matrix, with numpy only (no torch, no hardware).

A layer's weight is viewed as a matrix of ``rows = outputs`` by ``columns = inputs`` (a conv's
C_out × (C_in/groups · K_h · K_w)), see :func:`as_matrix`, and stored column by column as EIE does
(Han et al., ISCA 2016, §III-B): compressed sparse column with *relative* row indices.

Relative indexing (Han, Mao, Dally, ICLR 2016, Deep Compression §2, Fig. 2): each stored entry
carries, in ``index_bits`` bits, the number of zeros since the previous entry of its column. A gap
longer than ``2**index_bits - 1`` cannot be encoded, so a *filler zero* is stored after
``2**index_bits - 1`` zeros and counting restarts; a gap of ``g`` zeros therefore costs
``g // 2**index_bits`` fillers. Zeros after a column's last entry cost nothing (the column pointer
ends the column).

Exact encoders and decoders
---------------------------
Four formats, each a frozen dataclass holding numpy arrays (made read-only) and its bit widths:

* :class:`CSR` / :class:`CSC` — absolute indices. Deep Compression (ICLR 2016, §2) counts them as
  ``2a + n + 1`` numbers for ``a`` non-zeros and ``n`` rows (CSR) or columns (CSC): ``a`` values,
  ``a`` indices and ``n + 1`` pointers. Here each kind of number has its own width:
  ``value_bits`` per value, ``index_bits = ceil(log2(dimension indexed))`` per index (at least 1)
  and ``pointer_bits = ceil(log2(a + 1))`` per pointer (at least 1; a pointer takes values
  0..a). With all three widths set to 32 the size is exactly ``32 · (2a + n + 1)`` bits.
* :class:`RelativeCSC` — EIE's / Deep Compression's format (ICLR 2016 §2 and §4 "4-bit relative
  indices"; EIE ISCA 2016 §III-B, Fig. 3 v/z/p arrays): ``entries × (value_bits + index_bits) +
  (n_cols + 1) × pointer_bits`` with entries = non-zeros + filler zeros and
  ``pointer_bits = ceil(log2(entries + 1))`` (at least 1).
* :class:`Bitmask` — one bit per matrix entry plus ``a × value_bits``.

``decode(encode_*(m))`` returns ``m`` exactly (same dtype; a negative zero comes back as +0).
``size_bits`` gives the exact storage of a format in bits, ``size_bytes`` rounds it up to bytes.
The ``*_size_bits`` helpers give the same numbers from counts alone, without encoding (used for
storage tables of whole networks).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "as_matrix", "interleaved_entries", "relative_index_entries",
    "CSR", "CSC", "RelativeCSC", "Bitmask",
    "encode_csr", "encode_csc", "encode_relative_csc", "encode_bitmask",
    "decode", "relative_rows", "size_bits", "size_bytes",
    "index_width", "pointer_width",
    "csr_size_bits", "csc_size_bits", "relative_csc_size_bits", "bitmask_size_bits",
]


def as_matrix(weight_or_mask: np.ndarray) -> np.ndarray:
    """The 2-D view used by every format: (outputs, everything else).

    (An explicit column count rather than ``-1`` so that empty tensors reshape too.)"""
    shape = weight_or_mask.shape
    return weight_or_mask.reshape(shape[0], math.prod(shape[1:]))


def relative_index_entries(mask: np.ndarray, index_bits: int, interleave: int = 1) -> tuple[int, int]:
    """Count the entries a relative-index CSC encoding of ``mask`` stores.

    ``interleave = N`` splits the rows over N processing elements as EIE does (row i goes to PE
    i mod N), so gaps are counted within each PE's rows. Returns ``(non_zeros, filler_zeros)``;
    the stored entries are their sum. With ``interleave = 1`` the sum equals
    ``len(encode_relative_csc(mask, index_bits).values)``.
    """
    if index_bits <= 0:
        raise ValueError(f"index_bits must be positive, got {index_bits}")
    if interleave <= 0:
        raise ValueError(f"interleave must be positive, got {interleave}")
    matrix = as_matrix(np.asarray(mask, dtype=bool))
    rows, cols = matrix.shape
    non_zeros = int(np.count_nonzero(matrix))
    fillers = 0
    span = 1 << index_bits
    for pe in range(min(interleave, rows)):
        # Column-major order of this PE's rows: entries of one column are contiguous.
        part = np.ascontiguousarray(matrix[pe::interleave].T)
        local_rows = part.shape[1]
        positions = np.flatnonzero(part)
        if positions.size == 0:
            continue
        column, row = np.divmod(positions, local_rows)
        previous = np.empty_like(row)
        previous[0] = -1
        previous[1:] = np.where(column[1:] == column[:-1], row[:-1], -1)
        gaps = row - previous - 1
        fillers += int(np.sum(gaps // span))
    return non_zeros, fillers


def interleaved_entries(matrix: np.ndarray, index_bits: int, interleave: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Per column and PE, what relative-index CSC stores when the rows of ``matrix`` are split
    over ``interleave`` PEs (row i on PE i mod N, as EIE does): ``(non_zeros, fillers)``, two
    int64 tables of shape (cols, N). Column j of PE p stores ``non_zeros[j, p] + fillers[j, p]``
    entries, as ``encode_relative_csc(matrix[p::N], index_bits)`` does for its column j.

    Vectorised over PEs and columns (:func:`relative_index_entries` counts the same, PE by PE):
    the matrix is viewed as a grid ``[local row r, PE p, column j]`` and walked down r, keeping
    each share's latest entry, so an entry at r follows ``r − latest − 1`` zeros. A filler needs
    a run of ``2**index_bits`` zeros before an entry, so a matrix none of whose shares has that
    many zeros (a dense one, or one of at most ``2**index_bits`` rows per PE) has none.
    """
    if index_bits <= 0:
        raise ValueError(f"index_bits must be positive, got {index_bits}")
    if interleave <= 0:
        raise ValueError(f"interleave must be positive, got {interleave}")
    nonzero = _as_2d(matrix) != 0
    rows, cols = nonzero.shape
    local = -(-rows // interleave)  # rows per PE; missing rows of the last PEs are zero
    if local * interleave != rows:
        nonzero = np.concatenate([nonzero, np.zeros((local * interleave - rows, cols), dtype=bool)])
    grid = nonzero.reshape(local, interleave, cols)  # grid[r, p, j] = nonzero[r·N + p, j]
    count_type = np.int16 if local < 2 ** 15 else np.int64
    non_zeros = grid.sum(axis=0, dtype=count_type).T.astype(np.int64)
    span = 1 << index_bits
    if local <= span or not (local - non_zeros >= span).any():
        return non_zeros, np.zeros((cols, interleave), dtype=np.int64)
    rank_type = np.int8 if local < 2 ** 7 else count_type  # holds −1 .. local − 1
    latest = np.full((interleave, cols), -1, dtype=rank_type)
    fillers = np.zeros((interleave, cols), dtype=count_type)
    for r in range(local):
        here = grid[r]
        if r >= span:  # above row span no gap can reach span zeros
            gaps = rank_type(r - 1) - latest  # zeros before an entry at r
            gaps >>= index_bits
            gaps *= here
            fillers += gaps
        np.copyto(latest, rank_type(r), where=here)
    return non_zeros, fillers.T.astype(np.int64)


# ---------------------------------------------------------------------------------------------
# Bit widths and sizes from counts
# ---------------------------------------------------------------------------------------------

def index_width(dimension: int) -> int:
    """Bits of an absolute index into ``dimension`` positions: ``ceil(log2(dimension))``, min 1."""
    return max(1, (int(dimension) - 1).bit_length())


def pointer_width(entries: int) -> int:
    """Bits of a pointer taking values ``0..entries``: ``ceil(log2(entries + 1))``, min 1."""
    return max(1, int(entries).bit_length())


def _check_bits(name: str, bits: int, maximum: int = 64) -> int:
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or not 1 <= bits <= maximum:
        raise ValueError(f"{name} must be an integer in [1, {maximum}], got {bits!r}")
    return int(bits)


def csr_size_bits(shape: tuple[int, int], nonzeros: int, value_bits: int = 32,
                  index_bits: int | None = None, pointer_bits: int | None = None) -> int:
    """CSR storage (Deep Compression §2, "2a + n + 1 numbers"): ``a·value_bits + a·index_bits +
    (rows + 1)·pointer_bits``; default widths ``index_width(cols)``, ``pointer_width(a)``."""
    rows, cols = shape
    ib = index_width(cols) if index_bits is None else index_bits
    pb = pointer_width(nonzeros) if pointer_bits is None else pointer_bits
    return nonzeros * (value_bits + ib) + (rows + 1) * pb


def csc_size_bits(shape: tuple[int, int], nonzeros: int, value_bits: int = 32,
                  index_bits: int | None = None, pointer_bits: int | None = None) -> int:
    """CSC storage: ``a·value_bits + a·index_bits + (cols + 1)·pointer_bits``; default widths
    ``index_width(rows)``, ``pointer_width(a)``."""
    rows, cols = shape
    ib = index_width(rows) if index_bits is None else index_bits
    pb = pointer_width(nonzeros) if pointer_bits is None else pointer_bits
    return nonzeros * (value_bits + ib) + (cols + 1) * pb


def relative_csc_size_bits(shape: tuple[int, int], entries: int, index_bits: int,
                           value_bits: int = 32, pointer_bits: int | None = None) -> int:
    """Relative-index CSC storage (Deep Compression §2; EIE §III-B): ``entries·(value_bits +
    index_bits) + (cols + 1)·pointer_bits``, entries = non-zeros + filler zeros, default
    ``pointer_bits = pointer_width(entries)``."""
    _, cols = shape
    pb = pointer_width(entries) if pointer_bits is None else pointer_bits
    return entries * (value_bits + index_bits) + (cols + 1) * pb


def bitmask_size_bits(shape: tuple[int, int], nonzeros: int, value_bits: int = 32) -> int:
    """Bitmask storage: one bit per matrix entry plus ``a·value_bits``."""
    rows, cols = shape
    return rows * cols + nonzeros * value_bits


# ---------------------------------------------------------------------------------------------
# Formats
# ---------------------------------------------------------------------------------------------

def _frozen(array: np.ndarray) -> np.ndarray:
    array = np.ascontiguousarray(array)
    array.setflags(write=False)
    return array


@dataclass(frozen=True, eq=False)
class CSR:
    """Compressed sparse row: row ``i``'s entries are ``values[row_ptr[i]:row_ptr[i+1]]`` at
    columns ``col_index[...]`` (ascending). Size: see :func:`csr_size_bits`."""
    shape: tuple[int, int]
    values: np.ndarray
    col_index: np.ndarray
    row_ptr: np.ndarray
    value_bits: int
    index_bits: int
    pointer_bits: int


@dataclass(frozen=True, eq=False)
class CSC:
    """Compressed sparse column: column ``j``'s entries are ``values[col_ptr[j]:col_ptr[j+1]]``
    at rows ``row_index[...]`` (ascending). Size: see :func:`csc_size_bits`."""
    shape: tuple[int, int]
    values: np.ndarray
    row_index: np.ndarray
    col_ptr: np.ndarray
    value_bits: int
    index_bits: int
    pointer_bits: int


@dataclass(frozen=True, eq=False)
class RelativeCSC:
    """EIE / Deep Compression relative-index CSC (EIE's v, z, p arrays).

    Column ``j`` holds entries ``col_ptr[j]:col_ptr[j+1]`` of ``values`` (non-zeros and filler
    zeros) and ``gaps`` (the number of zeros before each entry since the previous entry of the
    column, or since the column's start; each ``< 2**index_bits``). Size: see
    :func:`relative_csc_size_bits`.
    """
    shape: tuple[int, int]
    values: np.ndarray
    gaps: np.ndarray
    col_ptr: np.ndarray
    value_bits: int
    index_bits: int
    pointer_bits: int

    @property
    def fillers(self) -> int:
        """Number of filler zeros stored (entries whose value is an encoder-inserted zero)."""
        return int(len(self.values)) - int(np.count_nonzero(self.values))


@dataclass(frozen=True, eq=False)
class Bitmask:
    """One bit per matrix entry (``np.packbits`` of the row-major mask) and the non-zero values
    in row-major order. Size: see :func:`bitmask_size_bits`."""
    shape: tuple[int, int]
    values: np.ndarray
    mask_bits: np.ndarray
    value_bits: int


def _as_2d(matrix: np.ndarray) -> np.ndarray:
    array = np.asarray(matrix)
    if array.ndim != 2:
        raise ValueError(f"expected a 2-D matrix (use as_matrix first), got shape {array.shape}")
    return array


def _compressed(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row-major compression of ``matrix``: (values, minor indices, major pointers)."""
    rows, cols = matrix.shape
    flat = matrix.reshape(-1)
    positions = np.flatnonzero(flat)
    values = flat[positions]
    major, minor = np.divmod(positions, cols) if cols else (positions, positions)
    pointers = np.zeros(rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(major, minlength=rows), out=pointers[1:])
    return values, minor.astype(np.int64), pointers


def _widths(dimension: int, nonzeros: int, index_bits: int | None,
            pointer_bits: int | None) -> tuple[int, int]:
    need_i, need_p = index_width(dimension), pointer_width(nonzeros)
    ib = need_i if index_bits is None else _check_bits("index_bits", index_bits)
    pb = need_p if pointer_bits is None else _check_bits("pointer_bits", pointer_bits)
    if ib < need_i:
        raise ValueError(f"index_bits={ib} cannot address {dimension} positions (need {need_i})")
    if pb < need_p:
        raise ValueError(f"pointer_bits={pb} cannot count {nonzeros} entries (need {need_p})")
    return ib, pb


def encode_csr(matrix: np.ndarray, value_bits: int = 32, *, index_bits: int | None = None,
               pointer_bits: int | None = None) -> CSR:
    """Encode a 2-D matrix as CSR. ``index_bits``/``pointer_bits`` default to the minimal widths
    (``ceil(log2(cols))`` and ``ceil(log2(a + 1))``, min 1); a wider nominal width may be given
    (e.g. 32 to count Deep Compression's "2a + n + 1 numbers"), a too narrow one raises."""
    m = _as_2d(matrix)
    vb = _check_bits("value_bits", value_bits)
    values, col_index, row_ptr = _compressed(m)
    ib, pb = _widths(m.shape[1], len(values), index_bits, pointer_bits)
    return CSR(tuple(m.shape), _frozen(values), _frozen(col_index), _frozen(row_ptr), vb, ib, pb)


def encode_csc(matrix: np.ndarray, value_bits: int = 32, *, index_bits: int | None = None,
               pointer_bits: int | None = None) -> CSC:
    """Encode a 2-D matrix as CSC (column-major CSR of the transpose); widths as in
    :func:`encode_csr` with ``ceil(log2(rows))`` index bits."""
    m = _as_2d(matrix)
    vb = _check_bits("value_bits", value_bits)
    values, row_index, col_ptr = _compressed(np.ascontiguousarray(m.T))
    ib, pb = _widths(m.shape[0], len(values), index_bits, pointer_bits)
    return CSC(tuple(m.shape), _frozen(values), _frozen(row_index), _frozen(col_ptr), vb, ib, pb)


def _gap_dtype(index_bits: int) -> type:
    if index_bits <= 8:
        return np.uint8
    if index_bits <= 16:
        return np.uint16
    return np.uint32


def encode_relative_csc(matrix: np.ndarray, index_bits: int, value_bits: int = 32, *,
                        pointer_bits: int | None = None) -> RelativeCSC:
    """Encode a 2-D matrix in relative-index CSC with filler zeros (Deep Compression §2, Fig. 2;
    EIE §III-B).

    Per column, each non-zero is preceded by ``g`` zeros (counted from the previous non-zero of the
    column, or from the column's top). With ``span = 2**index_bits`` the non-zero is stored after
    ``g // span`` filler zeros, each with gap ``span - 1`` (it stands on the ``span``-th zero), and
    carries gap ``g % span``. EIE's example, index_bits = 4: column [0,0,1,2,0×18,3] gives
    values [1,2,0,3], gaps [2,0,15,2]. Fully vectorised (no per-column Python loop).
    """
    m = _as_2d(matrix)
    ib = _check_bits("index_bits", index_bits, maximum=32)
    vb = _check_bits("value_bits", value_bits)
    rows, cols = m.shape
    span = 1 << ib
    nz_values, row, col_ptr_nz = _compressed(np.ascontiguousarray(m.T))
    per_column = np.diff(col_ptr_nz)
    previous = np.full_like(row, -1)                                # -1: top of the column
    previous[1:] = row[:-1]
    previous[col_ptr_nz[:-1][per_column > 0]] = -1                  # first non-zero of a column
    gaps = row - previous - 1
    fillers, remainder = np.divmod(gaps, span)
    counts = fillers + 1                                            # entries per non-zero
    ends = np.cumsum(counts)
    total = int(ends[-1]) if len(ends) else 0
    values = np.zeros(total, dtype=m.dtype)
    out_gaps = np.full(total, span - 1, dtype=_gap_dtype(ib))
    values[ends - 1] = nz_values
    out_gaps[ends - 1] = remainder
    col_ptr = np.zeros(cols + 1, dtype=np.int64)
    if len(ends):
        # Entries up to column j's end = ends[last non-zero up to column j], 0 before any.
        nz_before = col_ptr_nz[1:]
        col_ptr[1:] = np.where(nz_before > 0, ends[np.maximum(nz_before - 1, 0)], 0)
    pb = pointer_width(total) if pointer_bits is None else _check_bits("pointer_bits", pointer_bits)
    if pb < pointer_width(total):
        raise ValueError(f"pointer_bits={pb} cannot count {total} entries")
    return RelativeCSC((rows, cols), _frozen(values), _frozen(out_gaps), _frozen(col_ptr), vb, ib, pb)


def encode_bitmask(matrix: np.ndarray, value_bits: int = 32) -> Bitmask:
    """Encode a 2-D matrix as a packed bitmask (row-major, ``np.packbits``) plus the non-zero
    values in row-major order."""
    m = _as_2d(matrix)
    vb = _check_bits("value_bits", value_bits)
    mask = m.reshape(-1) != 0
    return Bitmask(tuple(m.shape), _frozen(m.reshape(-1)[mask]), _frozen(np.packbits(mask)), vb)


# ---------------------------------------------------------------------------------------------
# Decoding and sizes
# ---------------------------------------------------------------------------------------------

def _check_pointers(pointers: np.ndarray, length: int, entries: int, what: str) -> np.ndarray:
    pointers = np.asarray(pointers, dtype=np.int64)
    if (pointers.shape != (length + 1,) or pointers[0] != 0 or pointers[-1] != entries
            or np.any(np.diff(pointers) < 0)):
        raise ValueError(f"malformed {what} pointers")
    return pointers


def _decode_compressed(shape, values, minor, pointers, transpose: bool) -> np.ndarray:
    rows, cols = shape
    major_n, minor_n = (cols, rows) if transpose else (rows, cols)
    values = np.asarray(values)
    minor = np.asarray(minor, dtype=np.int64)
    if minor.shape != values.shape:
        raise ValueError("values and indices differ in length")
    pointers = _check_pointers(pointers, major_n, len(values), "CSC" if transpose else "CSR")
    if len(minor) and (minor.min() < 0 or minor.max() >= minor_n):
        raise ValueError("index out of range")
    dense = np.zeros((major_n, minor_n), dtype=values.dtype)
    major = np.repeat(np.arange(major_n), np.diff(pointers))
    dense[major, minor] = values
    return dense.T.copy() if transpose else dense


def relative_rows(fmt: RelativeCSC) -> np.ndarray:
    """The absolute row of every stored entry of a relative-index CSC (filler zeros included),
    in storage order: the running sum of ``gap + 1`` within each column, as EIE's PEs form the
    address of each entry (ISCA 2016 §III-C). Validates the format (ValueError)."""
    rows, cols = fmt.shape
    values = np.asarray(fmt.values)
    gaps = np.asarray(fmt.gaps, dtype=np.int64)
    if gaps.shape != values.shape:
        raise ValueError("values and gaps differ in length")
    if len(gaps) and gaps.max() >= (1 << fmt.index_bits):
        raise ValueError(f"a gap does not fit in {fmt.index_bits} bits")
    pointers = _check_pointers(fmt.col_ptr, cols, len(values), "RelativeCSC")
    steps = np.cumsum(gaps + 1)                       # 1-based position counting every column
    per_column = np.diff(pointers)
    before = np.concatenate(([0], steps))[pointers[:-1]]     # steps used by earlier columns
    row = steps - np.repeat(before, per_column) - 1
    if len(row) and row.max() >= rows:
        raise ValueError("relative indices run past the end of a column")
    return row


def _decode_relative(fmt: RelativeCSC) -> np.ndarray:
    rows, cols = fmt.shape
    values = np.asarray(fmt.values)
    row = relative_rows(fmt)
    dense = np.zeros((rows, cols), dtype=values.dtype)
    column = np.repeat(np.arange(cols), np.diff(np.asarray(fmt.col_ptr, dtype=np.int64)))
    dense[row, column] = values                        # fillers write their zero: harmless
    return dense


def decode(fmt: CSR | CSC | RelativeCSC | Bitmask) -> np.ndarray:
    """The dense 2-D matrix a format encodes, exactly (dtype of its values)."""
    if isinstance(fmt, CSR):
        return _decode_compressed(fmt.shape, fmt.values, fmt.col_index, fmt.row_ptr, False)
    if isinstance(fmt, CSC):
        return _decode_compressed(fmt.shape, fmt.values, fmt.row_index, fmt.col_ptr, True)
    if isinstance(fmt, RelativeCSC):
        return _decode_relative(fmt)
    if isinstance(fmt, Bitmask):
        rows, cols = fmt.shape
        mask = np.unpackbits(np.asarray(fmt.mask_bits, dtype=np.uint8), count=rows * cols).astype(bool)
        if int(mask.sum()) != len(fmt.values):
            raise ValueError("bitmask and values disagree on the number of non-zeros")
        dense = np.zeros(rows * cols, dtype=np.asarray(fmt.values).dtype)
        dense[mask] = fmt.values
        return dense.reshape(rows, cols)
    raise TypeError(f"not a sparse format: {type(fmt).__name__}")


def size_bits(fmt: CSR | CSC | RelativeCSC | Bitmask) -> int:
    """Exact storage of ``fmt`` in bits (values, indices/mask, pointers at the format's widths):

    * CSR/CSC: ``a·value_bits + a·index_bits + (n + 1)·pointer_bits`` — Deep Compression's
      "2a + n + 1 numbers" (Han, Mao, Dally, ICLR 2016 §2);
    * RelativeCSC: ``entries·(value_bits + index_bits) + (cols + 1)·pointer_bits``, entries
      including filler zeros (ICLR 2016 §2 and §4; EIE, ISCA 2016 §III-B);
    * Bitmask: ``rows·cols + a·value_bits``.
    """
    if isinstance(fmt, CSR):
        return csr_size_bits(fmt.shape, len(fmt.values), fmt.value_bits, fmt.index_bits, fmt.pointer_bits)
    if isinstance(fmt, CSC):
        return csc_size_bits(fmt.shape, len(fmt.values), fmt.value_bits, fmt.index_bits, fmt.pointer_bits)
    if isinstance(fmt, RelativeCSC):
        return relative_csc_size_bits(fmt.shape, len(fmt.values), fmt.index_bits, fmt.value_bits,
                                      fmt.pointer_bits)
    if isinstance(fmt, Bitmask):
        return bitmask_size_bits(fmt.shape, len(fmt.values), fmt.value_bits)
    raise TypeError(f"not a sparse format: {type(fmt).__name__}")


def size_bytes(fmt: CSR | CSC | RelativeCSC | Bitmask) -> int:
    """``ceil(size_bits(fmt) / 8)``."""
    return math.ceil(size_bits(fmt) / 8)
