"""Han et al. 2015 Tables 2-5 reproduced by the estimator: FLOP% from Weights% and Act%.

The estimator is run as a user runs it (zoo model pruned by magnitude to the han2015 profile on
han45nm, which skips zero weights and zero activations); its FLOP% must match the paper's printed
column within ±1 point per layer and ±2 points for the network totals.
"""

import pytest

from pruning.profiles import han2015_table
from sim.api import estimate_network
from sim.estimator import totals

PAPER_TOTAL_FLOP_PCT = {"lenet-300-100": 8, "lenet-5": 16, "alexnet": 30, "vgg-16": 21}


@pytest.fixture(scope="module", params=list(PAPER_TOTAL_FLOP_PCT))
def network(request):
    model = request.param
    results = estimate_network(model, profile="han2015", hw="han45nm", seed=0)
    return model, results


def test_every_layer_flop_pct_within_one_point(network):
    model, results = network
    pruned = results[results["variant"] == "pruned"].set_index("layer")
    paper = [row for row in han2015_table(model) if row["layer"] != "total"]
    assert list(pruned.index) == [row["layer"] for row in paper]
    for row in paper:
        ours = pruned.at[row["layer"], "flop_pct"]
        assert ours == pytest.approx(row["flop_pct"], abs=1.0), (model, row["layer"], ours)
        # Weights% is reproduced by the magnitude pruning itself, to the weight.
        kept = pruned.at[row["layer"], "nonzero_weights"]
        assert abs(kept - row["weights_pct"] / 100 * pruned.at[row["layer"], "weights"]) <= 0.5


def test_network_total_flop_pct_within_two_points(network):
    model, results = network
    summary = totals(results).set_index("variant")
    assert summary.at["pruned", "flop_pct"] == pytest.approx(PAPER_TOTAL_FLOP_PCT[model], abs=2.0)
    assert summary.at["dense", "flop_pct"] == pytest.approx(100.0)


def test_dense_flops_match_paper_flop_column(network):
    """Han's FLOP column counts 2 FLOP per MAC: ours, rounded as printed, equals it."""
    model, results = network
    dense = results[results["variant"] == "dense"].set_index("layer")
    scale = {"K": 1e3, "M": 1e6, "B": 1e9}
    for row in han2015_table(model):
        if row["layer"] == "total":
            continue
        printed = row["flop"]
        value = float(printed[:-1]) * scale[printed[-1]]
        ours = dense.at[row["layer"], "dense_flops"]
        digits = printed[:-1]
        unit = scale[printed[-1]] * (10 ** -(len(digits.split(".")[1]) if "." in digits else 0))
        assert abs(ours - value) <= unit, (model, row["layer"], ours, printed)
