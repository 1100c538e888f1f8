"""Pareto analysis of design points: which points no other point beats, the best point per
objective, and a plot of both. Every objective is minimised (energy, latency, area, EDP).

A row *dominates* another when it is no worse in every objective and strictly better in at least
one. The front is the set of rows no row dominates; rows with equal objectives do not dominate
each other, so both stay. A row with a missing (NaN) objective, e.g. an infeasible design point,
is never on the front and never dominates.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["best_points", "pareto_mask", "plot_pareto"]


def _objective_values(frame: pd.DataFrame, objectives: list[str]) -> np.ndarray:
    if not objectives:
        raise ValueError("give at least one objective")
    missing = [name for name in objectives if name not in frame.columns]
    if missing:
        raise KeyError(f"no column {', '.join(map(repr, missing))}; columns: {', '.join(map(str, frame.columns))}")
    return frame[list(objectives)].to_numpy(dtype=float)


def pareto_mask(frame: pd.DataFrame, objectives: list[str]) -> np.ndarray:
    """Boolean array, one entry per row of ``frame``: True where no other row dominates it in
    ``objectives`` (all minimised; see the module docstring)."""
    values = _objective_values(frame, objectives)
    valid = ~np.isnan(values).any(axis=1)
    candidates = values[valid]
    on_front = np.ones(len(candidates), dtype=bool)
    for index, row in enumerate(candidates):
        no_worse = (candidates <= row).all(axis=1)
        better = (candidates < row).any(axis=1)
        on_front[index] = not (no_worse & better).any()
    mask = np.zeros(len(frame), dtype=bool)
    mask[np.flatnonzero(valid)] = on_front
    return mask


def best_points(frame: pd.DataFrame, objectives: list[str]) -> dict[str, pd.Series]:
    """For each objective, the row with its least value; a tie goes to the least in the other
    objectives, in the order given (then to the first row), so the best point of an objective is
    on the front whenever it has every objective (chips of equal area differ in energy). Rows
    missing the objective are passed over; an objective no row has is left out."""
    _objective_values(frame, objectives)
    best = {}
    for name in objectives:
        rows = frame[frame[name].notna()]
        if len(rows):
            order = [name, *(other for other in objectives if other != name)]
            best[name] = rows.sort_values(order, kind="stable", na_position="last").iloc[0]
    return best


def _number(value: float) -> str:
    return f"{value:.3g}"


def plot_pareto(frame: pd.DataFrame, x: str, y: str, ax=None, label_col: str | None = None):
    """Scatter ``y`` against ``x`` (both minimised) on ``ax`` (a new figure's axes if None) and
    return the axes: dominated points faint, the two-objective front highlighted and joined as a
    staircase, and the best point of each objective annotated with its label (``label_col``, else
    the row index) and its two values. Axes spanning more than 20× are drawn on a log scale."""
    if ax is None:  # a bare Figure: no pyplot state, no window, saves with figure.savefig
        from matplotlib.figure import Figure

        ax = Figure(figsize=(6, 4.5)).subplots()
    values = _objective_values(frame, [x, y])
    front = pareto_mask(frame, [x, y])
    dominated = ~front & ~np.isnan(values).any(axis=1)
    ax.scatter(values[dominated, 0], values[dominated, 1], s=12, color="grey", alpha=0.25,
               label=f"dominated ({int(dominated.sum())})")
    order = np.argsort(values[front, 0], kind="stable")
    ax.step(values[front, 0][order], values[front, 1][order], where="post", color="#c0392b", linewidth=1)
    ax.scatter(values[front, 0], values[front, 1], s=28, color="#c0392b", edgecolor="black", linewidth=0.4,
               zorder=3, label=f"Pareto front ({int(front.sum())})")
    for axis, column in ((0, x), (1, y)):
        finite = values[~np.isnan(values[:, axis]), axis]
        if finite.size and finite.min() > 0 and finite.max() / finite.min() > 20:
            (ax.set_xscale if axis == 0 else ax.set_yscale)("log")
    best: dict = {}  # row index -> (row, objectives it is best in): one note per point
    for objective, row in best_points(frame, [x, y]).items():
        best.setdefault(row.name, (row, []))[1].append(objective)
    ax.autoscale_view()  # settle the limits before placing notes by where points fall
    to_axes = ax.transData + ax.transAxes.inverted()
    for step, (row, names) in enumerate(best.values()):
        label = row[label_col] if label_col else row.name
        across, up = to_axes.transform((row[x], row[y]))
        # Write the note toward the middle of the axes so that it stays inside them, the second
        # note further out than the first so that two near points' notes do not overlap.
        rise = 14 + 40 * step
        ax.annotate(f"best {' & '.join(names)}: {label}\n{x} {_number(row[x])}, {y} {_number(row[y])}",
                    (row[x], row[y]), xytext=(-10 if across > 0.5 else 10, -rise if up > 0.5 else rise),
                    textcoords="offset points", fontsize=7, ha="right" if across > 0.5 else "left",
                    va="top" if up > 0.5 else "bottom", arrowprops={"arrowstyle": "-", "linewidth": 0.5})
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.legend(fontsize=7, loc="upper right")
    return ax
