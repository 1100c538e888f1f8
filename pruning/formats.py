"""Sparse storage formats of a pruned weight matrix, with numpy only (no torch, no hardware).

A layer's weight is viewed as a matrix of ``rows = outputs`` by ``columns = inputs`` (a conv's
C_out × (C_in/groups · K_h · K_w)), and stored column by column as EIE does (Han et al., ISCA
2016, §III-B): compressed sparse column with *relative* row indices.

Relative indexing (Han, Mao, Dally, ICLR 2016, Deep Compression §2, Fig. 2): each stored entry
carries, in ``index_bits`` bits, the number of zeros since the previous entry of its column. A gap
longer than ``2**index_bits - 1`` cannot be encoded, so a *filler zero* is stored after
``2**index_bits - 1`` zeros and counting restarts; a gap of ``g`` zeros therefore costs
``g // 2**index_bits`` fillers. Zeros after a column's last entry cost nothing (the column pointer
ends the column).
"""

from __future__ import annotations

import numpy as np

__all__ = ["as_matrix", "relative_index_entries"]


def as_matrix(weight_or_mask: np.ndarray) -> np.ndarray:
    """The 2-D view used by every format: (outputs, everything else)."""
    return weight_or_mask.reshape(weight_or_mask.shape[0], -1)


def relative_index_entries(mask: np.ndarray, index_bits: int, interleave: int = 1) -> tuple[int, int]:
    """Count the entries a relative-index CSC encoding of ``mask`` stores.

    ``interleave = N`` splits the rows over N processing elements as EIE does (row i goes to PE
    i mod N), so gaps are counted within each PE's rows. Returns ``(non_zeros, filler_zeros)``;
    the stored entries are their sum.
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
