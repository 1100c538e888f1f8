"""Huffman coding, Deep Compression's third stage (Han, Mao, Dally, ICLR 2016, §4).

"A Huffman code is an optimal prefix code commonly used for lossless data compression. It uses
variable-length codewords to encode source symbols" (§4): the weight-sharing indices and the
relative indices of a pruned, shared layer are far from uniform (Fig. 5), so coding each with a
code built from its own symbol frequencies saves 20–30% of the storage in the paper.

* :func:`code_lengths`: Huffman's algorithm (Huffman 1952; Cormen et al., *Introduction to
  Algorithms*, §16.3): repeatedly merge the two least frequent trees; a symbol's code length is
  its leaf's depth. Ties are broken by creation order (leaves in the order of the frequency
  mapping first), so the same frequencies always give the same lengths. Every symbol of a code
  of two or more symbols satisfies Kraft's equality Σ 2^−l = 1 (the tree is full). A
  one-symbol alphabet gets a 0-bit code (the count of symbols, known from the format's
  pointers, says how many there are); an empty one has no code.
* :class:`HuffmanCode`: the canonical code of those lengths (codes assigned in order of
  (length, symbol position), as DEFLATE does, so a decoder needs only the lengths):
  :meth:`~HuffmanCode.encode` a sequence into packed bytes and its exact bit count,
  :meth:`~HuffmanCode.decode` it back exactly, :meth:`~HuffmanCode.table_bits` — the cost of
  sending the code itself: one :data:`LENGTH_FIELD_BITS`-bit length per symbol of the alphabet.

Sizes are exact bit counts; nothing is rounded to bytes except the packed buffer itself.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["LENGTH_FIELD_BITS", "HuffmanCode", "build_code", "code_lengths", "coded_bits"]

# Bits that carry one code length in the stored table (lengths up to 255 bits).
LENGTH_FIELD_BITS = 8


def code_lengths(frequencies: Mapping[Hashable, int]) -> dict[Hashable, int]:
    """{symbol: Huffman code length in bits} for positive integer ``frequencies`` (module
    docstring: ties, one-symbol alphabets). ValueError for a frequency that is not a
    positive integer."""
    for symbol, count in frequencies.items():
        if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count <= 0:
            raise ValueError(f"frequency of {symbol!r} must be a positive integer, got {count!r}")
    symbols = list(frequencies)
    if len(symbols) <= 1:
        return {symbol: 0 for symbol in symbols}
    # Heap entries: (weight, creation order, leaf indices under this tree).
    heap = [(int(frequencies[s]), order, (order,)) for order, s in enumerate(symbols)]
    heapq.heapify(heap)
    depth = [0] * len(symbols)
    created = len(symbols)
    while len(heap) > 1:
        w1, _, leaves1 = heapq.heappop(heap)
        w2, _, leaves2 = heapq.heappop(heap)
        for leaf in leaves1 + leaves2:
            depth[leaf] += 1
        heapq.heappush(heap, (w1 + w2, created, leaves1 + leaves2))
        created += 1
    return {symbol: depth[i] for i, symbol in enumerate(symbols)}


@dataclass(frozen=True)
class HuffmanCode:
    """A canonical prefix code: ``symbols`` in alphabet order, each with its code ``lengths``
    and ``codes`` (the code's bits, most significant first, as an int)."""

    symbols: tuple[Hashable, ...]
    lengths: tuple[int, ...]
    codes: tuple[int, ...]

    def __post_init__(self) -> None:
        if len(self.symbols) > 1 and sum(2.0 ** -length for length in self.lengths) > 1 + 1e-12:
            raise ValueError("code lengths violate Kraft's inequality: no prefix code has them")

    def table_bits(self) -> int:
        """Bits to send the code: one LENGTH_FIELD_BITS-bit code length per alphabet symbol."""
        return len(self.symbols) * LENGTH_FIELD_BITS

    def encode(self, sequence: Iterable[Hashable]) -> tuple[bytes, int]:
        """(the concatenated codes packed into bytes, most significant bit first; the exact
        number of bits). KeyError naming a symbol outside the alphabet."""
        table = {s: (code, length) for s, code, length in zip(self.symbols, self.codes, self.lengths)}
        bits: list[int] = []
        for symbol in sequence:
            if symbol not in table:
                raise KeyError(f"symbol {symbol!r} is not in the code's alphabet")
            code, length = table[symbol]
            bits.extend((code >> shift) & 1 for shift in range(length - 1, -1, -1))
        return np.packbits(np.array(bits, dtype=np.uint8)).tobytes(), len(bits)

    def decode(self, data: bytes, bit_count: int, count: int) -> list[Hashable]:
        """The ``count`` symbols of :meth:`encode`'s output (``bit_count`` bits of ``data``).
        ValueError when the bits do not decode to exactly ``count`` symbols."""
        bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8), count=bit_count).tolist() \
            if bit_count else []
        if len(self.symbols) == 1 and self.lengths[0] == 0:
            if bit_count:
                raise ValueError("a one-symbol code has no bits to decode")
            return [self.symbols[0]] * count
        lookup = {(length, code): s for s, code, length in zip(self.symbols, self.codes, self.lengths)}
        longest = max(self.lengths, default=0)
        out: list[Hashable] = []
        code = length = 0
        for bit in bits:
            code, length = (code << 1) | bit, length + 1
            if (length, code) in lookup:
                out.append(lookup[(length, code)])
                code = length = 0
            elif length >= longest:
                raise ValueError("bits that are no codeword of this code")
        if length or len(out) != count:
            raise ValueError(f"the bits decode to {len(out)} whole symbols, expected {count}")
        return out


def build_code(frequencies: Mapping[Hashable, int]) -> HuffmanCode:
    """The canonical Huffman code of ``frequencies`` (module docstring): codes in order of
    (length, position of the symbol in ``frequencies``)."""
    lengths = code_lengths(frequencies)
    symbols = list(frequencies)
    order = sorted(range(len(symbols)), key=lambda i: (lengths[symbols[i]], i))
    codes = [0] * len(symbols)
    code, previous = 0, None
    for rank, i in enumerate(order):
        length = lengths[symbols[i]]
        if rank:
            code = (code + 1) << (length - previous)
        codes[i] = code
        previous = length
    return HuffmanCode(tuple(symbols), tuple(lengths[s] for s in symbols), tuple(codes))


def coded_bits(sequence: Sequence[Hashable] | np.ndarray) -> tuple[int, int]:
    """(payload bits, table bits) of ``sequence`` Huffman-coded with its own frequencies,
    without encoding it: Σ count × length, and :meth:`HuffmanCode.table_bits`. The alphabet is
    np.unique's sorted values for an array, else the symbols in order of first appearance."""
    if isinstance(sequence, np.ndarray):
        values, counts = np.unique(sequence, return_counts=True)
        frequencies = dict(zip(values.tolist(), counts.tolist()))
    else:
        frequencies = dict(Counter(sequence))
    code = build_code(frequencies)
    payload = sum(frequencies[s] * length for s, length in zip(code.symbols, code.lengths))
    return payload, code.table_bits()
