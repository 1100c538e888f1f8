"""The pictures of Han et al. 2015, drawn from our own runs; each returns PNG bytes.

* :func:`mask_picture` — Fig. 4: the sparsity pattern of the first layer's weight matrix.
* :func:`weight_histograms` — Fig. 7: weight distribution before pruning and after retraining.
* :func:`sensitivity_plot` — Fig. 6: accuracy against the fraction pruned, each layer alone.
* :func:`tradeoff_plot` — Fig. 5: accuracy against parameters pruned away, one curve per method.

Each picture writes its key numbers beside the plot, so the figure reads without the table.
"""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

__all__ = ["curves_plot", "mask_picture", "sensitivity_plot", "tradeoff_plot", "weight_histograms"]


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    plt.close(figure)
    return buffer.getvalue()


def _finish(figure, axis, xlabel: str, ylabel: str, title: str, notes: list[str]) -> bytes:
    """Labels, grid, legend and the notes beside the plot of a curves figure; PNG bytes."""
    axis.set_xlabel(xlabel)
    axis.set_ylabel(ylabel)
    axis.set_title(title)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8, loc="lower left")
    axis.text(1.01, 0.5, "\n".join(notes), transform=axis.transAxes, va="center", fontsize=8)
    figure.tight_layout()
    return _png(figure)


def mask_picture(mask: np.ndarray, layer: str) -> bytes:
    """Fig. 4: kept weights of ``layer`` in black, as (outputs × inputs). For LeNet's fc1 the
    inputs are 28×28 pixels, so the band structure shows which pixels the network still reads."""
    matrix = np.asarray(mask, dtype=bool).reshape(mask.shape[0], -1)
    figure, axis = plt.subplots(figsize=(9, 3.6))
    axis.imshow(matrix, cmap="gray_r", aspect="auto", interpolation="nearest")
    axis.set_xlabel("input index")
    axis.set_ylabel("output neuron")
    kept = matrix.mean()
    axis.set_title(f"{layer}: sparsity pattern (black = kept), {100 * kept:.1f}% of "
                   f"{matrix.size:,} weights kept")
    figure.tight_layout()
    return _png(figure)


def weight_histograms(before: np.ndarray, after: np.ndarray, layer: str) -> bytes:
    """Fig. 7: ``layer``'s weights before pruning and the surviving weights after retraining."""
    before = np.asarray(before).ravel()
    after = np.asarray(after).ravel()
    survivors = after[after != 0]
    figure, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharex=True)
    span = float(np.abs(before).max()) if before.size else 1.0
    bins = np.linspace(-span, span, 121)
    axes[0].hist(before, bins=bins, color="#2980b9")
    axes[0].set_title(f"{layer} before pruning ({before.size:,} weights)")
    axes[1].hist(survivors, bins=bins, color="#c0392b")
    axes[1].set_title(f"after pruning and retraining ({survivors.size:,} kept)")
    for axis in axes:
        axis.set_xlabel("weight value")
        axis.set_ylabel("count")
    figure.tight_layout()
    return _png(figure)


def sensitivity_plot(table: pd.DataFrame) -> bytes:
    """Fig. 6: one line per layer, accuracy against the fraction of its weights pruned."""
    figure, axis = plt.subplots(figsize=(7, 4.2))
    for layer, part in table.groupby("layer", sort=False):
        axis.plot(100 * part["pruned_fraction"], 100 * part["accuracy"], marker="o", label=layer)
    axis.set_xlabel("parameters pruned away (%)")
    axis.set_ylabel("accuracy (%)")
    axis.set_title("Sensitivity: each layer pruned alone, no retraining")
    axis.legend(fontsize=8)
    axis.grid(alpha=0.3)
    figure.tight_layout()
    return _png(figure)


def tradeoff_plot(table: pd.DataFrame, title: str) -> bytes:
    """Fig. 5: accuracy loss against parameters pruned away, one curve per ``method``.

    ``table`` has columns method, pruned_fraction, accuracy, and a reference row per method at
    pruned_fraction 0 (the dense accuracy the loss is measured from)."""
    figure, axis = plt.subplots(figsize=(8, 4.6))
    lines = []
    for method, part in table.groupby("method", sort=False):
        part = part.sort_values("pruned_fraction")
        dense = part.loc[part["pruned_fraction"] == 0, "accuracy"]
        reference = float(dense.iloc[0]) if len(dense) else float(part["accuracy"].iloc[0])
        loss = 100 * (part["accuracy"] - reference)
        axis.plot(100 * part["pruned_fraction"], loss, marker="o", label=method)
        last = part.iloc[-1]
        lines.append(f"{method}: {100 * last['accuracy']:.2f}% at {100 * last['pruned_fraction']:.0f}%")
    return _finish(figure, axis, "parameters pruned away (%)", "accuracy change (percentage points)", title,
                   lines)


def curves_plot(table: pd.DataFrame, x: str, y: str, group: str, title: str, xlabel: str,
                ylabel: str, log_x: bool = False) -> bytes:
    """One line per value of ``group`` through the (``x``, ``y``) points of ``table``, sorted by
    ``x``; a group with a single row (e.g. the dense reference) is drawn as a star. The last
    point of each line is written beside the plot."""
    figure, axis = plt.subplots(figsize=(8, 4.6))
    notes = []
    for name, part in table.groupby(group, sort=False):
        part = part.sort_values(x)
        style = {"marker": "*", "markersize": 12, "linestyle": "none"} if len(part) == 1 else {"marker": "o"}
        axis.plot(part[x], part[y], label=str(name), **style)
        last = part.iloc[-1]
        notes.append(f"{name}: {ylabel.split(' (')[0]} {last[y]:.4g} at {last[x]:.4g}")
    if log_x:
        axis.set_xscale("log")
    return _finish(figure, axis, xlabel, ylabel, title, notes)
