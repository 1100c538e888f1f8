"""Reference kernels that the simulator's numerics are checked against, and the lowering of a layer
to matrix products that both share.

Lowering (the usual im2col, Chellapilla et al. 2006): a convolution of one sample is, per group
``g``, the product ``Y_g = W_g · X_g`` with

* ``W_g`` (M × K): the group's filters, one per row, ``M = out_channels / groups``,
  ``K = in_channels / groups · kh · kw`` (channel-major, then kernel row, then kernel column:
  the layout of ``weight.reshape(out_channels, -1)``);
* ``X_g`` (K × N): the input patches, one output pixel per column, ``N = H_out · W_out``;
* ``Y_g`` (M × N): the group's output channels.

A linear layer is the case ``groups = 1``, ``K = in_features`` and ``N`` = number of input rows
(1 for one sample). A layer's output matrix stacks the groups' ``Y_g`` (``out_channels × N``).

Two references:

* :func:`sparse_reference`: ``scipy.sparse`` CSR of ``W_g`` times the im2col'd input: the kernel
  the issue names, the same zeros the hardware sees, no dense multiply of pruned weights.
* :func:`dense_reference`: ``torch`` ``conv2d``/``linear`` of the whole layer (bias left out: the
  array computes the products, a post-processing unit adds the bias). It checks the lowering.

:func:`sparse_reference` accumulates in the dtype it is given (float64 by default: exact for
integer operands up to the bounds of :mod:`sim.numerics`); :func:`dense_reference` in float64.
Inputs are numpy arrays; outputs are numpy.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse
import torch
import torch.nn.functional as F

from sim.workload import Layer

__all__ = [
    "COLUMN_BLOCK_ELEMENTS", "column_blocks", "csr", "dense_reference", "gemm_operands", "im2col", "row_blocks",
    "sparse_reference",
]

# Memory bound of a block: the references and sim.numerics process W by rows and X by columns in
# blocks of at most this many elements (8 MiB in float64), so neither VGG-16's conv1_2 (K=576,
# N=50176) nor AlexNet's fc1 (4096 x 9216) needs a several-hundred-MB temporary.
COLUMN_BLOCK_ELEMENTS = 1 << 20


def im2col(x: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int], padding: tuple[int, int],
           dilation: tuple[int, int]) -> np.ndarray:
    """Patches of ``x`` (C × H × W) as a (C·kh·kw) × (H_out·W_out) matrix, zero padding included.

    Row ``c·kh·kw + i·kw + j`` holds input channel ``c`` at kernel offset ``(i, j)``; column
    ``p·W_out + q`` is output pixel ``(p, q)``. A view where numpy allows, a copy otherwise.
    """
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, padding, dilation
    padded = np.pad(x, ((0, 0), (ph, ph), (pw, pw))) if ph or pw else x
    span_h, span_w = dh * (kh - 1) + 1, dw * (kw - 1) + 1
    windows = np.lib.stride_tricks.sliding_window_view(padded, (span_h, span_w), axis=(1, 2))
    windows = windows[:, ::sh, ::sw, ::dh, ::dw]  # (C, H_out, W_out, kh, kw)
    channels, h_out, w_out = windows.shape[:3]
    return windows.transpose(0, 3, 4, 1, 2).reshape(channels * kh * kw, h_out * w_out)


def gemm_operands(layer: Layer, weight: np.ndarray | None = None, sample: np.ndarray | None = None
                  ) -> list[tuple[np.ndarray, np.ndarray]]:
    """``[(W_g, X_g) for each group]`` of ``layer`` (see the module docstring for the layout).

    ``weight`` and ``sample`` default to the layer's effective weight (mask applied) and its
    ``input_sample``; pass others (e.g. quantised copies) to lower those instead.
    """
    weight = layer.weight if weight is None else weight
    sample = layer.input_sample if sample is None else sample
    if weight is None or sample is None:
        raise ValueError(f"layer '{layer.name}' has no weight or no input sample to lower")
    if layer.kind == "linear":
        return [(weight, np.asarray(sample).reshape(-1, weight.shape[1]).T)]
    if layer.kind != "conv2d":
        raise ValueError(f"layer '{layer.name}' of kind '{layer.kind}' has no matrix-product form")
    groups = layer.groups
    channels_per_group = layer.in_channels // groups
    filters_per_group = layer.out_channels // groups
    operands = []
    for g in range(groups):
        w_g = weight[g * filters_per_group:(g + 1) * filters_per_group].reshape(filters_per_group, -1)
        x_g = im2col(sample[g * channels_per_group:(g + 1) * channels_per_group], layer.kernel_size,
                     layer.stride, layer.padding, layer.dilation)
        operands.append((w_g, x_g))
    return operands


def column_blocks(k: int, n: int) -> list[slice]:
    """Slices of the N columns of a K × N operand, each block at most COLUMN_BLOCK_ELEMENTS."""
    width = max(1, COLUMN_BLOCK_ELEMENTS // max(1, k))
    return [slice(start, min(n, start + width)) for start in range(0, n, width)]


def row_blocks(m: int, k: int) -> list[slice]:
    """Slices of the M rows of an M × K operand, each block at most COLUMN_BLOCK_ELEMENTS."""
    return column_blocks(k, m)


def csr(block: np.ndarray, dtype) -> scipy.sparse.csr_array:
    """CSR of a dense 2-D block with its non-zeros in ``dtype`` (which must hold them exactly),
    built directly from the mask of non-zeros (scipy's dense-to-CSR path goes through COO and
    costs several times more)."""
    rows, cols = block.shape
    mask = block != 0
    index = np.int32 if block.size < 2 ** 31 else np.int64  # scipy's own choice; avoids a re-cast
    per_row = np.count_nonzero(mask, axis=1)
    indptr = np.zeros(rows + 1, dtype=index)
    np.cumsum(per_row, out=indptr[1:])
    if 2 * int(indptr[-1]) > block.size:  # mostly non-zero: boolean selection is the faster gather
        columns = np.broadcast_to(np.arange(cols, dtype=index), block.shape)[mask]
        values = block[mask].astype(dtype, copy=False)
    else:  # sparse: the positions once (a random mask makes boolean selection branchy), then gathers
        position = np.flatnonzero(mask)
        values = np.ravel(block)[position].astype(dtype, copy=False)
        position -= cols * np.repeat(np.arange(rows), per_row)
        columns = position.astype(index)
    return scipy.sparse.csr_array((values, columns, indptr), shape=block.shape)


def sparse_reference(w_g: np.ndarray, x_g: np.ndarray, dtype=np.float64) -> np.ndarray:
    """``CSR(W_g) @ X_g`` accumulated in ``dtype`` (float64 by default), shape M × N.

    Blocked over rows of W and columns of X so that no temporary exceeds the memory bound.
    """
    m, k = w_g.shape
    out = np.empty((m, x_g.shape[1]), dtype=dtype)
    columns = column_blocks(k, x_g.shape[1])
    x_whole = x_g.astype(dtype, copy=False) if len(columns) == 1 else None
    for rows in row_blocks(m, k):
        matrix = csr(w_g[rows], dtype)
        for block in columns:
            x_block = x_whole if x_whole is not None else x_g[:, block].astype(dtype, copy=False)
            out[rows, block] = matrix @ x_block
    return out


def dense_reference(layer: Layer, weight: np.ndarray, sample: np.ndarray) -> np.ndarray:
    """The layer's output without bias from ``torch`` (float64), as an out_channels × N matrix."""
    w = torch.from_numpy(np.ascontiguousarray(weight, dtype=np.float64))
    x = torch.from_numpy(np.ascontiguousarray(sample, dtype=np.float64))
    with torch.no_grad():
        if layer.kind == "linear":
            y = F.linear(x.reshape(-1, w.shape[1]), w).T
        else:
            y = F.conv2d(x[None], w, stride=layer.stride, padding=layer.padding, dilation=layer.dilation,
                         groups=layer.groups)[0].reshape(w.shape[0], -1)
    return y.numpy()
