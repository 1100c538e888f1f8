"""The plots of a comparison report, each returned as PNG bytes (matplotlib, no window).

Every plot draws numbers that :mod:`sim.report_tables` also prints beside it. Per-layer plots put
the variants of one results folder (dense, pruned, quantised...) side by side for each layer,
told apart by hatching; colours stand for the energy component or the stall cause.
"""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")  # reports are files; never open a window
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from sim.report import format_cell  # noqa: E402
from sim.report_tables import COMPONENTS, cycle_breakdown, energy_components  # noqa: E402

__all__ = ["cycles_figure", "energy_layers_figure", "energy_totals_figure", "png", "savings_figure",
           "traffic_figure"]

COMPONENT_COLOURS = {"DRAM": "#c0392b", "SRAM": "#e67e22", "RF": "#2980b9", "MAC": "#27ae60", "index": "#8e44ad"}
_CYCLE_COLOURS = ("#7f8c8d", "#c0392b", "#e67e22", "#f1c40f", "#8e44ad", "#2980b9", "#16a085")
_VARIANT_COLOURS = ("#34495e", "#c0392b", "#27ae60", "#8e44ad", "#e67e22", "#2980b9")
_HATCHES = ("", "//", "xx", "..", "\\\\", "oo")
_OUTSIDE = {"loc": "upper left", "bbox_to_anchor": (1.01, 1.0), "borderaxespad": 0.0}  # legend right of the axes


def png(figure: Figure) -> bytes:
    """The figure as PNG bytes at 100 dpi."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return buffer.getvalue()


def _layer_figure(layer_count: int, height: float = 4.2) -> tuple[Figure, object]:
    figure = Figure(figsize=(min(16.0, max(6.5, 0.55 * layer_count + 3.5)), height))
    return figure, figure.subplots()


def _positions(layer_count: int, variant_count: int, index: int) -> tuple[np.ndarray, float]:
    width = 0.8 / variant_count
    return np.arange(layer_count) + (index - (variant_count - 1) / 2) * width, width


def _stacked_by_variant(ax, frame: pd.DataFrame, parts: pd.DataFrame, colours: dict[str, str],
                        scale: float) -> list[str]:
    """Per layer, one stacked bar per variant of ``parts`` (same index as ``frame``); returns
    the layer names in order."""
    layers = list(dict.fromkeys(frame["layer"]))
    variants = list(dict.fromkeys(frame["variant"]))
    for v_index, variant in enumerate(variants):
        rows = frame["variant"] == variant
        values = parts[rows].set_axis(frame.loc[rows, "layer"]).reindex(layers).fillna(0.0) / scale
        positions, width = _positions(len(layers), len(variants), v_index)
        bottom = np.zeros(len(layers))
        for part in parts.columns:
            ax.bar(positions, values[part].to_numpy(), width, bottom=bottom, color=colours[part],
                   hatch=_HATCHES[v_index % len(_HATCHES)], edgecolor="white", linewidth=0.3)
            bottom += values[part].to_numpy()
    ax.set_xticks(range(len(layers)), layers, rotation=45, ha="right", fontsize=8)
    handles = [Patch(color=colours[part], label=part) for part in parts.columns]
    handles += [Patch(facecolor="#bdc3c7", edgecolor="#555", hatch=_HATCHES[i % len(_HATCHES)], label=variant)
                for i, variant in enumerate(variants)]
    ax.legend(handles=handles, fontsize=7, **_OUTSIDE)
    return layers


def energy_layers_figure(frame: pd.DataFrame, title: str) -> bytes:
    """Per-layer energy (µJ) stacked by component (DRAM, SRAM, RF, MAC, index), one bar per
    variant."""
    figure, ax = _layer_figure(frame["layer"].nunique())
    components = energy_components(frame)
    shown = [c for c in COMPONENTS if c != "index" or components["index"].any()]
    _stacked_by_variant(ax, frame, components[shown], COMPONENT_COLOURS, 1e6)
    ax.set_ylabel("energy per inference (µJ)")
    ax.set_title(title, fontsize=10)
    return png(figure)


def cycles_figure(frame: pd.DataFrame, title: str) -> bytes:
    """Per-layer cycles (thousands) stacked into busy cycles and each stall cause."""
    figure, ax = _layer_figure(frame["layer"].nunique())
    breakdown = cycle_breakdown(frame)
    colours = dict(zip(breakdown.columns, _CYCLE_COLOURS))
    _stacked_by_variant(ax, frame, breakdown, colours, 1e3)
    ax.set_ylabel("cycles (thousands)")
    ax.set_title(title, fontsize=10)
    return png(figure)


def _grouped(ax, labels: list[str], series: dict[str, np.ndarray], log: bool) -> None:
    for index, (name, values) in enumerate(series.items()):
        positions, width = _positions(len(labels), len(series), index)
        ax.bar(positions, values, width, color=_VARIANT_COLOURS[index % len(_VARIANT_COLOURS)],
               hatch=_HATCHES[index % len(_HATCHES)], edgecolor="white", linewidth=0.3, label=name)
    ax.set_xticks(range(len(labels)), labels, rotation=45 if len(labels) > 4 else 0,
                  ha="right" if len(labels) > 4 else "center", fontsize=8)
    positive = np.concatenate([v[v > 0] for v in series.values()])
    if log and positive.size and positive.max() / positive.min() > 20:
        ax.set_yscale("log")


def traffic_figure(frame: pd.DataFrame, title: str) -> bytes:
    """Left: DRAM traffic per layer (read + write, Mbit) per variant. Right: the network's traffic
    at each level (DRAM, SRAM, RF), per variant. Log scales where the values span more than 20×."""
    layers = list(dict.fromkeys(frame["layer"]))
    figure = Figure(figsize=(min(18.0, max(9.0, 0.45 * len(layers) + 7)), 4.2))
    left, right = figure.subplots(1, 2, gridspec_kw={"width_ratios": [max(2, len(layers) / 3), 1.2]})
    dram, levels = {}, {}
    for variant, rows in frame.groupby("variant", sort=False):
        per_layer = (rows["dram_read_bits"] + rows["dram_write_bits"]).set_axis(rows["layer"]).reindex(layers)
        dram[variant] = per_layer.fillna(0.0).to_numpy(dtype=float) / 1e6
        levels[variant] = np.array([(rows[f"{level}_read_bits"] + rows[f"{level}_write_bits"]).sum() / 1e6
                                    for level in ("dram", "sram", "rf")])
    _grouped(left, layers, dram, log=True)
    left.legend(fontsize=7, loc="upper left")
    if not any(values.any() for values in dram.values()):
        left.set_yticks([])
        left.text(0.5, 0.5, "no DRAM traffic:\nweights and activations stay on chip", ha="center", va="center",
                  transform=left.transAxes, fontsize=9, color="#555")
    left.set_ylabel("DRAM traffic (Mbit)")
    left.set_title("DRAM traffic per layer", fontsize=9)
    _grouped(right, ["DRAM", "SRAM", "RF"], levels, log=True)
    right.set_ylabel("traffic, whole network (Mbit)")
    right.set_title("per level", fontsize=9)
    figure.suptitle(title, fontsize=10)
    return png(figure)


def savings_figure(frame: pd.DataFrame, title: str) -> bytes:
    """Per layer and variant: FLOP % left (executed / dense MACs), bars; weights kept %, dots."""
    layers = list(dict.fromkeys(frame["layer"]))
    figure, ax = _layer_figure(len(layers))
    flops, weights = {}, {}
    for variant, rows in frame.groupby("variant", sort=False):
        indexed = rows.set_index("layer").reindex(layers)
        flops[variant] = indexed["flop_pct"].to_numpy(dtype=float)
        weights[variant] = 100 * indexed["weight_density"].to_numpy(dtype=float)
    _grouped(ax, layers, {f"{variant} FLOP %": values for variant, values in flops.items()}, log=False)
    for index, (variant, values) in enumerate(weights.items()):
        positions, _ = _positions(len(layers), len(weights), index)
        ax.scatter(positions, values, marker="D", s=14, color="black", zorder=3,
                   label="weights kept %" if index == 0 else None)
    ax.set_ylim(0, 105)
    ax.set_ylabel("% of dense")
    ax.legend(fontsize=7, **_OUTSIDE)
    ax.set_title(title, fontsize=10)
    return png(figure)


def energy_totals_figure(summary: pd.DataFrame) -> bytes:
    """Whole-network energy per (input, variant) as horizontal bars of each component's share
    (%), the total in µJ written beside each bar (totals differ by orders of magnitude between
    networks, so shares, not lengths, are comparable). ``summary``: columns ``input``,
    ``variant``, ``<component> µJ`` and ``energy µJ``."""
    labels = [f"{row.input} · {row.variant}" for row in summary.itertuples()]
    figure = Figure(figsize=(10, 0.38 * len(labels) + 1.4))
    ax = figure.subplots()
    positions = np.arange(len(labels))[::-1]
    totals = summary["energy µJ"].to_numpy(dtype=float)
    left = np.zeros(len(labels))
    for component in COMPONENTS:
        shares = 100 * summary[f"{component} µJ"].to_numpy(dtype=float) / totals
        if component == "index" and not shares.any():
            continue
        ax.barh(positions, shares, left=left, color=COMPONENT_COLOURS[component], label=component, height=0.7)
        left += shares
    for position, total in zip(positions, totals):
        ax.text(101, position, f"{format_cell(float(total))} µJ", va="center", fontsize=7)
    ax.set_yticks(positions, labels, fontsize=7)
    ax.set_xlim(0, 122)
    ax.set_xticks(range(0, 101, 20))
    ax.set_xlabel("share of the energy per inference (%); total at the right")
    ax.legend(fontsize=7, loc="lower left", bbox_to_anchor=(0, 1.0), ncol=5, frameon=False)
    return png(figure)
