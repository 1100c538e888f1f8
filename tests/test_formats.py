"""Sparse formats (pruning.formats) against hand calculations, EIE's worked example and exact
round trips.

References: Deep Compression (Han, Mao, Dally, ICLR 2016) §2 — CSR/CSC cost 2a + n + 1 numbers,
relative indices with filler zeros; EIE (Han et al., ISCA 2016) §III-B — column
[0,0,1,2,0×18,3] with 4-bit relative indices stores v = [1,2,0,3], z = [2,0,15,2].
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pruning.formats import (CSC, CSR, Bitmask, RelativeCSC, as_matrix, decode, encode_bitmask,
                             encode_csc, encode_csr, encode_relative_csc, interleaved_entries,
                             relative_index_entries, size_bits, size_bytes)


def column(values) -> np.ndarray:
    return np.asarray(values, dtype=np.float32).reshape(-1, 1)


# --------------------------------------------------------------------------- relative indices

def test_eie_example():
    m = column([0, 0, 1, 2] + [0] * 18 + [3])
    enc = encode_relative_csc(m, index_bits=4)
    assert enc.values.tolist() == [1, 2, 0, 3]
    assert enc.gaps.tolist() == [2, 0, 15, 2]
    assert enc.gaps.dtype == np.uint8
    assert enc.col_ptr.tolist() == [0, 4]
    assert enc.fillers == 1
    assert np.array_equal(decode(enc), m)
    assert relative_index_entries(m != 0, 4) == (3, 1)


@pytest.mark.parametrize("zeros, values, gaps", [
    (15, [5], [15]),                 # 15 zeros fit in 4 bits: no filler
    (16, [0, 5], [15, 0]),           # 16th zero becomes the filler, then gap 0
    (31, [0, 5], [15, 15]),          # one filler, 15 zeros left
    (32, [0, 0, 5], [15, 15, 0]),    # two fillers (32 // 16)
    (0, [5], [0]),
])
def test_filler_zeros_hand_calculation(zeros, values, gaps):
    m = column([0] * zeros + [5] + [0] * 40)       # trailing zeros cost nothing
    enc = encode_relative_csc(m, index_bits=4)
    assert enc.values.tolist() == values
    assert enc.gaps.tolist() == gaps
    assert np.array_equal(decode(enc), m)
    nz, fill = relative_index_entries(m != 0, 4)
    assert (nz, fill) == (1, len(values) - 1)


def test_gaps_restart_in_every_column():
    # Column 0 ends with a non-zero at row 19; column 1 starts with 17 zeros: its gap counts from
    # the column's top (17 -> one filler), not from row 19 of column 0.
    m = np.zeros((20, 3), dtype=np.float32)
    m[19, 0] = 1.0
    m[17, 1] = 2.0
    m[0, 2] = 3.0
    m[16, 2] = 4.0
    enc = encode_relative_csc(m, index_bits=4)
    assert enc.values.tolist() == [0, 1, 0, 2, 3, 4]
    assert enc.gaps.tolist() == [15, 3, 15, 1, 0, 15]
    assert enc.col_ptr.tolist() == [0, 2, 4, 6]
    assert np.array_equal(decode(enc), m)


def test_wide_index_uses_uint16():
    m = column([0] * 300 + [7])
    enc = encode_relative_csc(m, index_bits=9)
    assert enc.gaps.dtype == np.uint16
    assert enc.values.tolist() == [7] and enc.gaps.tolist() == [300]


# --------------------------------------------------------------------------- sizes by hand

# 4 x 5, a = 5 non-zeros.
M45 = np.array([[0, 1, 0, 0, 2],
                [0, 0, 0, 0, 0],
                [3, 0, 0, 0, 0],
                [0, 0, 4, 0, 5]], dtype=np.float32)


def test_csr_by_hand():
    enc = encode_csr(M45)
    assert enc.values.tolist() == [1, 2, 3, 4, 5]
    assert enc.col_index.tolist() == [1, 4, 0, 2, 4]
    assert enc.row_ptr.tolist() == [0, 2, 2, 3, 5]
    assert (enc.index_bits, enc.pointer_bits) == (3, 3)    # ceil(log2 5), ceil(log2 6)
    assert size_bits(enc) == 5 * 32 + 5 * 3 + 5 * 3 == 190
    assert size_bytes(enc) == 24                          # ceil(190 / 8)


def test_csc_by_hand():
    enc = encode_csc(M45)
    assert enc.values.tolist() == [3, 1, 4, 2, 5]
    assert enc.row_index.tolist() == [2, 0, 3, 0, 3]
    assert enc.col_ptr.tolist() == [0, 1, 2, 3, 3, 5]
    assert (enc.index_bits, enc.pointer_bits) == (2, 3)    # ceil(log2 4), ceil(log2 6)
    assert size_bits(enc) == 5 * 32 + 5 * 2 + 6 * 3 == 188


def test_deep_compression_2a_plus_n_plus_1_numbers():
    a = 5
    csr = encode_csr(M45, 32, index_bits=32, pointer_bits=32)
    csc = encode_csc(M45, 32, index_bits=32, pointer_bits=32)
    assert size_bits(csr) == 32 * (2 * a + 4 + 1)
    assert size_bits(csc) == 32 * (2 * a + 5 + 1)
    rng = np.random.default_rng(3)
    m = (rng.random((37, 23)) < 0.2) * rng.standard_normal((37, 23))
    a = int(np.count_nonzero(m))
    assert size_bits(encode_csr(m, 32, index_bits=32, pointer_bits=32)) == 32 * (2 * a + 37 + 1)
    assert size_bits(encode_csc(m, 32, index_bits=32, pointer_bits=32)) == 32 * (2 * a + 23 + 1)
    with pytest.raises(ValueError):
        encode_csr(M45, index_bits=2)                    # 5 columns need 3 bits
    with pytest.raises(ValueError):
        encode_csc(M45, pointer_bits=2)                  # pointers up to 5 need 3 bits


def test_relative_by_hand():
    # index_bits = 1 (gaps 0 or 1): col0 row2 -> gap 2 -> filler; col2 row3 -> gap 3 -> filler
    # + gap 1; col4 rows 0, 3 -> gap 0, then gap 2 -> filler + gap 0.
    enc = encode_relative_csc(M45, index_bits=1)
    assert enc.values.tolist() == [0, 3, 1, 0, 4, 2, 0, 5]
    assert enc.gaps.tolist() == [1, 0, 0, 1, 1, 0, 1, 0]
    assert enc.col_ptr.tolist() == [0, 2, 3, 5, 5, 8]
    assert enc.pointer_bits == 4                          # ceil(log2 9)
    assert size_bits(enc) == 8 * (32 + 1) + 6 * 4 == 288
    # index_bits = 2: every gap (2, 0, 3, 0, 2) fits, no fillers.
    enc2 = encode_relative_csc(M45, index_bits=2, value_bits=8)
    assert enc2.values.tolist() == [3, 1, 4, 2, 5]
    assert enc2.gaps.tolist() == [2, 0, 3, 0, 2]
    assert size_bits(enc2) == 5 * (8 + 2) + 6 * 3 == 68


def test_bitmask_by_hand():
    enc = encode_bitmask(M45)
    assert enc.values.tolist() == [1, 2, 3, 4, 5]
    assert np.unpackbits(enc.mask_bits)[:20].tolist() == (M45 != 0).ravel().astype(int).tolist()
    assert size_bits(enc) == 20 + 5 * 32 == 180
    enc8 = encode_bitmask(M45, value_bits=8)
    assert size_bits(enc8) == 20 + 5 * 8 == 60
    assert size_bytes(enc8) == 8                          # ceil(60 / 8)


# --------------------------------------------------------------------------- round trips

ENCODERS = {
    "csr": lambda m, b: encode_csr(m),
    "csc": lambda m, b: encode_csc(m),
    "relative": lambda m, b: encode_relative_csc(m, b),
    "bitmask": lambda m, b: encode_bitmask(m),
}


def _check_round_trip(m: np.ndarray, index_bits: int) -> None:
    for name, encode in ENCODERS.items():
        enc = encode(m, index_bits)
        out = decode(enc)
        assert out.dtype == m.dtype, name
        assert np.array_equal(out, m), name
        assert size_bits(enc) >= np.count_nonzero(m) * 32, name
    rel = encode_relative_csc(m, index_bits)
    nz, fill = relative_index_entries(m != 0, index_bits)
    assert nz + fill == len(rel.values)
    assert fill == rel.fillers
    assert np.all(rel.gaps < 2 ** index_bits)


@pytest.mark.parametrize("shape", [(1, 1), (1, 50), (50, 1), (7, 13), (300, 4), (0, 5), (5, 0)])
@pytest.mark.parametrize("density", [0.0, 0.01, 0.3, 1.0])
def test_round_trip_grid(shape, density):
    rng = np.random.default_rng(hash((shape, density)) % 2**32)
    m = ((rng.random(shape) < density) * rng.standard_normal(shape)).astype(np.float32)
    for bits in (1, 2, 4, 8):
        _check_round_trip(m, bits)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.integers(0, 70), cols=st.integers(0, 30), density=st.floats(0.0, 1.0),
       bits=st.integers(1, 9), dtype=st.sampled_from([np.float32, np.float64, np.int8]),
       seed=st.integers(0, 2**31))
def test_round_trip_property(rows, cols, density, bits, dtype, seed):
    rng = np.random.default_rng(seed)
    m = ((rng.random((rows, cols)) < density) * rng.integers(-9, 10, (rows, cols))).astype(dtype)
    _check_round_trip(m, bits)


def test_interleaved_entries_by_hand():
    # EIE's column on 2 PEs: PE 0 holds rows 0, 2, ..., 22 (non-zeros at local rows 1 and 11:
    # gaps 1 and 9, no filler), PE 1 rows 1, 3, ... (one non-zero at local row 1).
    m = column([0, 0, 1, 2] + [0] * 18 + [3])
    non_zeros, fillers = interleaved_entries(m, 4, interleave=2)
    assert (non_zeros.tolist(), fillers.tolist()) == ([[2, 1]], [[0, 0]])
    # a 2-bit index on one PE: gaps 2, 0, 18 cost 0 + 0 + 18 // 4 fillers
    assert [t.tolist() for t in interleaved_entries(m, 2)] == [[[3]], [[4]]]
    # 40 rows on 3 PEs: PE 2's rows are 2, 5, ..., 38 (13 of them); one entry at row 38 follows
    # 12 zeros of its share: 3 fillers with a 2-bit index; the other shares are empty.
    m = np.zeros((40, 1))
    m[38] = 1
    non_zeros, fillers = interleaved_entries(m, 2, interleave=3)
    assert (non_zeros.tolist(), fillers.tolist()) == ([[0, 0, 1]], [[0, 0, 3]])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.integers(0, 300), cols=st.integers(0, 12), density=st.sampled_from([0.0, 0.01, 0.05, 0.3, 1.0]),
       bits=st.integers(1, 5), pes=st.integers(1, 9), seed=st.integers(0, 2**31))
def test_interleaved_entries_equal_each_pes_encoding(rows, cols, density, bits, pes, seed):
    # Second implementation: encode every PE's rows (row i on PE i mod N) and count per column.
    rng = np.random.default_rng(seed)
    m = (rng.random((rows, cols)) < density) * rng.integers(1, 9, (rows, cols))
    non_zeros, fillers = interleaved_entries(m, bits, interleave=pes)
    assert non_zeros.shape == fillers.shape == (cols, pes)
    for p in range(pes):
        enc = encode_relative_csc(m[p::pes], bits)
        per_column = np.diff(enc.col_ptr)
        column_of = np.repeat(np.arange(cols), per_column)
        assert np.array_equal(non_zeros[:, p] + fillers[:, p], per_column)
        assert np.array_equal(fillers[:, p], np.bincount(column_of[enc.values == 0], minlength=cols))
    assert (int(non_zeros.sum()), int(fillers.sum())) == relative_index_entries(m != 0, bits, interleave=pes)


def test_conv_weight_via_as_matrix():
    rng = np.random.default_rng(0)
    w = ((rng.random((8, 3, 5, 5)) < 0.2) * rng.standard_normal((8, 3, 5, 5))).astype(np.float32)
    enc = encode_relative_csc(as_matrix(w), 8)
    assert enc.shape == (8, 75)
    assert np.array_equal(decode(enc).reshape(w.shape), w)


def test_malformed_and_invalid_inputs():
    with pytest.raises(ValueError):
        encode_csr(np.zeros((2, 2, 2)))
    with pytest.raises(ValueError):
        encode_relative_csc(M45, index_bits=0)
    enc = encode_relative_csc(M45, 2)
    bad = RelativeCSC(enc.shape, enc.values, enc.gaps + 1, enc.col_ptr, 32, 2, enc.pointer_bits)
    with pytest.raises(ValueError):
        decode(bad)                                      # gap 3 + 1 does not fit in 2 bits
    csr = encode_csr(M45)
    with pytest.raises(ValueError):
        decode(CSR(csr.shape, csr.values, csr.col_index, csr.row_ptr[:-1], 32, 3, 3))
    with pytest.raises(TypeError):
        decode(np.zeros(3))
    assert isinstance(encode_csc(M45), CSC) and isinstance(encode_bitmask(M45), Bitmask)
    with pytest.raises(ValueError):
        encode_csr(M45).values[0] = 9                    # arrays of a frozen format are read-only


def test_alexnet_fc1_encodes_fast():
    # AlexNet fc1 (EIE's Alex-6: 9216 inputs x 4096 outputs, 9% dense), 4-bit relative indices.
    rng = np.random.default_rng(1)
    m = (rng.random((4096, 9216), dtype=np.float32) < 0.09).astype(np.float32)
    start = time.perf_counter()
    enc = encode_relative_csc(m, 4)
    elapsed = time.perf_counter() - start
    assert elapsed < 5.0, f"encoding took {elapsed:.2f} s"
    nz = int(np.count_nonzero(m))
    assert len(enc.values) - enc.fillers == nz
    # Mean gap ~ 10 zeros with 16 positions: a sizeable share of fillers.
    assert 0.1 * nz < enc.fillers < 0.5 * nz
    assert int(enc.col_ptr[-1]) == len(enc.values)
