"""Trained weight sharing (Han, Mao, Dally, ICLR 2016, Deep Compression §3).

Per layer, the surviving (non-zero) weights are clustered by 1-D k-means into k = 2^b shared
values (b = 2..8); each weight then stores a b-bit index into the layer's codebook.

* Initialisation: linear, k values evenly spaced between the smallest and largest weight
  (§3.2: linear initialisation keeps the rare large weights and works best). Lloyd iterations
  until no assignment changes (or ``iterations``); a centroid left without weights keeps its
  value. Deterministic: no random numbers.
* Fine-tuning (§3.3, Fig. 3): the gradient of a centroid is the sum of the gradients of the
  weights that share it, ∂L/∂C_k = Σ_ij ∂L/∂W_ij · 1(I_ij = k), and the centroid takes an SGD
  step C_k ← C_k − lr·∂L/∂C_k; every weight is then rewritten from the codebook. Biases train
  normally. Pruned weights keep index −1 and stay exactly 0.
* Compression rate (Eq. 1): r = n·b / (n·log2(k) + k·b) for n weights of b bits
  (:func:`sharing_rate`); :func:`compressed_size` prices a whole model with relative indices,
  without and with Huffman coding (§4, :mod:`pruning.huffman`).

A shared layer carries ``stored_weight_bits`` (= b) and ``codebook_entries`` (= 2^b), which
exports and workloads read (:mod:`pruning.export`, :mod:`sim.workload`).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from pruning.formats import as_matrix, encode_relative_csc, size_bits
from pruning.huffman import coded_bits
from pruning.magnitude import _effective_weight, prunable_layers
from pruning.quantise import value_bits_of, weight_bits_of
from pruning.train import StepHooks, TrainConfig, refresh_pruned_weights, train

__all__ = ["SHARED_BITS", "SharedWeights", "compressed_size", "fine_tune_shared", "kmeans_1d", "share_weights",
           "sharing_rate"]

SHARED_BITS = tuple(range(2, 9))


def kmeans_1d(values: torch.Tensor, k: int, iterations: int = 100) -> tuple[torch.Tensor, torch.Tensor]:
    """Lloyd's k-means of a 1-D tensor with linear initialisation: (centroids (k,) float64,
    index of each value's centroid (int64)). Values tie to the lower centroid."""
    x = values.detach().to(torch.float64).reshape(-1)
    if x.numel() == 0:
        return torch.zeros(k, dtype=torch.float64), torch.zeros(0, dtype=torch.int64)
    centroids = torch.linspace(float(x.min()), float(x.max()), k, dtype=torch.float64)
    assign = None
    for _ in range(iterations):
        # Centroids stay sorted (means of ordered intervals), so the nearest one is found by
        # binary search among the midpoints.
        midpoints = (centroids[1:] + centroids[:-1]) / 2
        new = torch.searchsorted(midpoints, x, right=False)
        if assign is not None and torch.equal(new, assign):
            break
        assign = new
        sums = torch.zeros(k, dtype=torch.float64).index_add_(0, assign, x)
        counts = torch.bincount(assign, minlength=k).to(torch.float64)
        centroids = torch.where(counts > 0, sums / counts.clamp(min=1), centroids)
    return centroids, assign


def _weight_param(module: nn.Module) -> nn.Parameter:
    return module.weight_orig if hasattr(module, "weight_orig") else module.weight


class SharedWeights(StepHooks):
    """The codebooks and indices of a shared model, and the centroid fine-tuning hooks.

    ``codebooks[layer]``: (2^b,) float64 centroids. ``indices[layer]``: int64 shaped like the
    weight, −1 for a pruned (zero) weight. ``lr``: the centroid step size.
    """

    def __init__(self, bits: int, codebooks: dict, indices: dict, lr: float = 0.0):
        self.bits, self.codebooks, self.indices, self.lr = bits, codebooks, indices, lr
        self._grads: dict[str, torch.Tensor] = {}

    def write(self, model: nn.Module) -> None:
        """Set every shared layer's weights from its codebook (pruned entries 0)."""
        layers = prunable_layers(model)
        with torch.no_grad():
            for name, index in self.indices.items():
                param = _weight_param(layers[name])
                values = self.codebooks[name][index.clamp(min=0)] * (index >= 0)
                param.copy_(values.to(param.dtype))
        refresh_pruned_weights(model)

    def before_step(self, model: nn.Module) -> None:
        layers = prunable_layers(model)
        for name, index in self.indices.items():
            grad = _weight_param(layers[name]).grad
            if grad is None:
                continue
            alive = index >= 0
            self._grads[name] = torch.zeros_like(self.codebooks[name]).index_add_(
                0, index[alive], grad[alive].to(torch.float64))

    def after_step(self, model: nn.Module) -> None:
        for name, grad in self._grads.items():
            self.codebooks[name] -= self.lr * grad
        self._grads = {}
        self.write(model)


def share_weights(model: nn.Module, bits: int, layers: list[str] | None = None) -> SharedWeights:
    """Cluster each layer's non-zero weights into 2^bits shared values (in place) and return the
    codebooks; marks the layers with ``stored_weight_bits`` and ``codebook_entries``.
    ValueError for bits outside 2..8 or an unknown layer."""
    if isinstance(bits, bool) or bits not in SHARED_BITS:
        raise ValueError(f"bits must be an int in 2..8, got {bits!r}")
    available = prunable_layers(model)
    names = list(available) if layers is None else list(layers)
    unknown = [n for n in names if n not in available]
    if unknown:
        raise ValueError(f"unknown layer(s) {unknown}; prunable layers: {list(available)}")
    codebooks, indices = {}, {}
    for name in names:
        weight = _effective_weight(available[name])
        alive = weight != 0
        centroids, assign = kmeans_1d(weight[alive], 2 ** bits)
        index = torch.full(weight.shape, -1, dtype=torch.int64)
        index[alive] = assign
        codebooks[name], indices[name] = centroids, index
        available[name].stored_weight_bits = bits
        available[name].codebook_entries = 2 ** bits
    shared = SharedWeights(bits, codebooks, indices)
    shared.write(model)
    return shared


def fine_tune_shared(model: nn.Module, shared: SharedWeights, data, config: TrainConfig, seed: int = 0,
                     progress: bool = True) -> list[dict]:
    """Deep Compression §3.3: train the centroids (and biases) with ``config``; the centroid
    step size is ``config.lr`` (constant). Returns train()'s per-epoch rows."""
    shared.lr = config.lr
    rows = train(model, data, config, seed=seed, progress=progress, desc="fine-tune centroids", hooks=shared)
    shared.write(model)
    return rows


def sharing_rate(n: int, bits: int, k: int) -> float:
    """Deep Compression Eq. 1: r = n·b / (n·log2(k) + k·b) (n weights of b bits, k shared values)."""
    return n * bits / (n * math.log2(k) + k * bits)


def compressed_size(model: nn.Module, index_bits_fc: int = 5, index_bits_conv: int = 8,
                    codebook_value_bits: int | None = None) -> list[dict]:
    """Weight storage of ``model`` with relative indices, per layer and a ``total`` row, without
    and with Huffman coding (Deep Compression §2–§4).

    Per layer: ``weights``, ``nonzeros``, ``fillers`` (filler zeros), ``value_bits``
    (``stored_weight_bits`` of a shared layer, ``fixed_point_bits`` of a quantised one, else
    32), ``dense_bits`` (weights × 32), ``sparse_bits`` (relative-index CSC: (non-zeros +
    filler zeros) × (value + index bits) + column pointers,
    :func:`pruning.formats.relative_csc_size_bits`), ``codebook_bits`` (2^b values of
    ``codebook_value_bits`` for a shared layer; None: the layer's value width,
    :func:`pruning.quantise.value_bits_of`, 32 unless quantised), ``compressed_bits`` (their
    sum) and ``ratio`` (dense / compressed).

    With Huffman (:mod:`pruning.huffman`), ``huffman_bits``: the stored entries of the same
    relative-index CSC, in storage order, as two streams each Huffman-coded with its own
    frequencies — the relative indices (gaps, 0..2^index_bits − 1) and, for a layer with a
    finite alphabet (shared or fixed-point weights), the values (each distinct weight value is
    one symbol: a shared-weight index, or a fixed-point layer's integer q_w; filler zeros are one
    more symbol); a float
    layer's values stay at ``value_bits`` — plus each code's table, the same column pointers
    (counting entries, which a sequential decoder needs) and the codebook; ``huffman_ratio`` =
    dense / huffman. Biases are not counted (as in Deep Compression's tables).
    """
    rows = []
    widths = weight_bits_of(model)
    for name, module in prunable_layers(model).items():
        # A fixed-point layer stores its integers q_w (its scales are not counted, like biases).
        weight = (module.integer_weight() if hasattr(module, "integer_weight") else _effective_weight(module))
        weight = weight.cpu().numpy()
        index_bits = index_bits_conv if isinstance(module, nn.Conv2d) else index_bits_fc
        value_bits = widths[name]
        encoded = encode_relative_csc(as_matrix(weight), index_bits, value_bits)
        nonzeros = int(np.count_nonzero(encoded.values))
        sparse = size_bits(encoded)
        codebook = int(getattr(module, "codebook_entries", 0)) * (
            value_bits_of(module) if codebook_value_bits is None else codebook_value_bits)
        pointers = (encoded.shape[1] + 1) * encoded.pointer_bits
        gap_bits = sum(coded_bits(np.asarray(encoded.gaps)))
        finite = hasattr(module, "codebook_entries") or hasattr(module, "fixed_point_bits")
        value_part = sum(coded_bits(np.asarray(encoded.values))) if finite else len(encoded.values) * value_bits
        rows.append({"layer": name, "weights": int(weight.size), "nonzeros": nonzeros,
                     "fillers": len(encoded.values) - nonzeros, "value_bits": value_bits,
                     "dense_bits": int(weight.size) * 32, "sparse_bits": sparse, "codebook_bits": codebook,
                     "compressed_bits": sparse + codebook,
                     "huffman_bits": value_part + gap_bits + pointers + codebook})
    total = {key: sum(r[key] for r in rows) for key in
             ("weights", "nonzeros", "fillers", "dense_bits", "sparse_bits", "codebook_bits", "compressed_bits",
              "huffman_bits")}
    rows.append({"layer": "total", "value_bits": None, **total})
    for row in rows:
        row["ratio"] = row["dense_bits"] / row["compressed_bits"] if row["compressed_bits"] else math.inf
        row["huffman_ratio"] = row["dense_bits"] / row["huffman_bits"] if row["huffman_bits"] else math.inf
    return rows
