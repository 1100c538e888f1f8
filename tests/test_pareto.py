"""Pareto fronts: against a brute-force definition, a hand example, best points and the plot."""

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.pareto import best_points, pareto_mask, plot_pareto


def dominates(a, b) -> bool:
    return all(x <= y for x, y in zip(a, b)) and any(x < y for x, y in zip(a, b))


def brute_force_front(rows) -> list[bool]:
    usable = [not any(math.isnan(v) for v in row) for row in rows]
    return [usable[i] and not any(usable[j] and dominates(rows[j], rows[i]) for j in range(len(rows)))
            for i in range(len(rows))]


# Small integer values make ties and duplicates common; NaN stands for an infeasible point.
value = st.one_of(st.integers(0, 4).map(float), st.just(float("nan")))


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 3).flatmap(lambda k: st.lists(st.lists(value, min_size=k, max_size=k), max_size=25)))
def test_front_matches_brute_force_and_holds_no_dominated_point(rows):
    k = len(rows[0]) if rows else 2
    names = [f"o{i}" for i in range(k)]
    frame = pd.DataFrame(rows, columns=names, dtype=float)
    mask = pareto_mask(frame, names)
    assert mask.dtype == bool and len(mask) == len(rows)
    assert mask.tolist() == brute_force_front(rows)
    front = frame[mask].to_numpy()
    usable = frame.dropna().to_numpy()
    assert not any(dominates(other, point) for point in front for other in usable)
    # Every usable point off the front is dominated by a point on it.
    off = frame[~mask].dropna().to_numpy()
    assert all(any(dominates(point, rest) for point in front) for rest in off)
    # The best point of an objective is on the front (ties go to the better in the others).
    for name, row in best_points(frame, names).items():
        assert row[name] == frame[name].min()
        assert mask[row.name] or row.isna().any()


def test_hand_example_with_tie_and_infeasible():
    frame = pd.DataFrame({
        "energy": [1.0, 2.0, 3.0, 2.0, 3.0, 1.0, 0.5],
        "latency": [5.0, 2.0, 1.0, 2.0, 3.0, 6.0, float("nan")],
    }, index=list("abcdefg"))
    # a, b, c trade energy for latency; d ties b (neither dominates); e is beaten by b;
    # f is beaten by a; g is infeasible.
    assert pareto_mask(frame, ["energy", "latency"]).tolist() == [True, True, True, True, False, False, False]
    assert pareto_mask(frame, ["energy"]).tolist() == [False] * 6 + [True]  # g: the least energy
    best = best_points(frame, ["energy", "latency"])
    assert best["energy"].name == "g" and best["latency"].name == "c"  # g has an energy, if no latency
    # Equal areas: the best area is the one of them with the least energy, not the first listed.
    chips = pd.DataFrame({"area": [2.0, 1.0, 1.0, 1.0], "energy": [1.0, 5.0, 3.0, 3.0]})
    assert best_points(chips, ["area", "energy"])["area"].name == 2
    assert pareto_mask(chips, ["area", "energy"]).tolist() == [True, False, True, True]
    with pytest.raises(KeyError, match="area"):
        pareto_mask(frame, ["energy", "area"])


def test_plot_draws_front_and_dominated_points():
    frame = pd.DataFrame({"energy_pj": [1.0, 2.0, 3.0, 3.0], "latency_us": [3.0, 2.0, 1.0, 3.0],
                          "point_id": ["p0", "p1", "p2", "p3"]})
    ax = plot_pareto(frame, "latency_us", "energy_pj", label_col="point_id")
    dominated, front = (np.asarray(c.get_offsets()) for c in ax.collections)
    assert dominated.tolist() == [[3.0, 3.0]]
    assert sorted(front.tolist()) == [[1.0, 3.0], [2.0, 2.0], [3.0, 1.0]]
    notes = sorted(text.get_text() for text in ax.texts)
    assert notes == ["best energy_pj: p0\nlatency_us 3, energy_pj 1", "best latency_us: p2\nlatency_us 1, energy_pj 3"]
    assert ax.get_xlabel() == "latency_us" and ax.get_yscale() == "linear"
