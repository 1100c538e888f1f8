"""Huffman coding (Deep Compression §4): a textbook example by hand, Kraft's equality, exact
round trips, and the coded streams of a pruned, shared layer."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from pruning.formats import RelativeCSC, as_matrix, decode, encode_relative_csc
from pruning.huffman import LENGTH_FIELD_BITS, build_code, code_lengths, coded_bits
from pruning.magnitude import prune_to_density
from pruning.sharing import compressed_size, share_weights


def test_code_lengths_of_the_textbook_example():
    # Cormen et al., Introduction to Algorithms (3rd ed.), §16.3, Fig. 16.3: frequencies (in
    # thousands) a 45, b 13, c 12, d 16, e 9, f 5 give codeword lengths 1, 3, 3, 3, 4, 4 and
    # 224,000 bits for the 100,000-character file.
    frequencies = {"a": 45, "b": 13, "c": 12, "d": 16, "e": 9, "f": 5}
    lengths = code_lengths(frequencies)
    assert lengths == {"a": 1, "b": 3, "c": 3, "d": 3, "e": 4, "f": 4}
    assert sum(frequencies[s] * lengths[s] for s in frequencies) == 224
    text = "".join(s * n for s, n in frequencies.items())
    assert coded_bits(list(text)) == (224, 6 * LENGTH_FIELD_BITS)
    # Canonical codes (by length, then symbol order): a 0, b 100, c 101, d 110, e 1110, f 1111.
    code = build_code(frequencies)
    assert [format(c, f"0{n}b") for c, n in zip(code.codes, code.lengths)] == \
        ["0", "100", "101", "110", "1110", "1111"]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 10_000), min_size=2, max_size=300))
def test_code_lengths_satisfy_krafts_equality(counts):
    lengths = code_lengths(dict(enumerate(counts)))
    assert sum(2.0 ** -n for n in lengths.values()) == pytest.approx(1.0, abs=1e-12)
    # Optimality's necessary condition: a more frequent symbol never gets a longer code.
    order = sorted(range(len(counts)), key=lambda i: counts[i])
    assert all(lengths[a] >= lengths[b] for a, b in zip(order, order[1:]) if counts[a] < counts[b])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from([-1, 0, 3, 7, 8, 31, 255]), min_size=0, max_size=400))
def test_encode_decode_round_trip_is_exact(sequence):
    frequencies = {s: sequence.count(s) for s in dict.fromkeys(sequence)}
    code = build_code(frequencies)
    data, bits = code.encode(sequence)
    assert bits == sum(frequencies[s] * n for s, n in zip(code.symbols, code.lengths))
    assert bits == coded_bits(sequence)[0] and len(data) == -(-bits // 8)
    assert code.decode(data, bits, len(sequence)) == sequence


def test_one_symbol_alphabet_and_malformed_input():
    code = build_code({"x": 5})
    assert code.lengths == (0,) and code.encode(["x"] * 5) == (b"", 0)
    assert code.decode(b"", 0, 5) == ["x"] * 5
    two = build_code({"a": 3, "b": 1})
    data, bits = two.encode(["a", "b", "a"])
    with pytest.raises(ValueError, match="expected 4"):
        two.decode(data, bits, 4)
    with pytest.raises(KeyError, match="'c'"):
        two.encode(["c"])
    with pytest.raises(ValueError, match="positive integer"):
        code_lengths({"a": 0})


def test_shared_layer_streams_round_trip_and_match_compressed_size():
    """The two streams compressed_size codes (shared-weight values and relative indices) decode
    back to the layer's exact matrix, at the bit counts it reports."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(300, 100, bias=False))
    prune_to_density(model[0], 0.05)
    share_weights(model, 4)
    weight = (model[0].weight_orig * model[0].weight_mask).detach().numpy()
    matrix = as_matrix(weight)
    encoded = encode_relative_csc(matrix, 5, 4)
    assert encoded.fillers > 0                                # gaps over 31 exist: fillers are coded too
    decoded_streams, payload = [], 0
    for stream in (encoded.values, encoded.gaps):
        symbols = np.asarray(stream).tolist()
        code = build_code({s: symbols.count(s) for s in sorted(set(symbols))})
        data, bits = code.encode(symbols)
        decoded_streams.append(np.array(code.decode(data, bits, len(symbols)), dtype=np.asarray(stream).dtype))
        payload += bits + code.table_bits()
    rebuilt = RelativeCSC(encoded.shape, decoded_streams[0], decoded_streams[1], encoded.col_ptr, 4, 5,
                          encoded.pointer_bits)
    assert np.array_equal(decode(rebuilt), matrix)
    row = compressed_size(model)[0]
    pointers = (matrix.shape[1] + 1) * encoded.pointer_bits
    assert row["huffman_bits"] == payload + pointers + 16 * 32
    assert row["huffman_bits"] < row["compressed_bits"]       # non-uniform gaps and indices: a saving
