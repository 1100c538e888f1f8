"""Han et al. 2015's method (pruning.han) and trustworthy runs (pruning.runs).

Hand calculations for Eq. 2 and the std thresholds, exact checks for dead-neuron removal
(outputs unchanged), and a 3-round run interrupted and resumed to the same bits.
Tiny synthetic data, 1-epoch trainings."""

from __future__ import annotations

import dataclasses
import json
import math
from collections import OrderedDict
from types import SimpleNamespace

import pandas as pd
import pytest
import torch
from torch import nn
from torch.nn.utils import prune

import pruning.han as han
import pruning.train
import pruning.runs as runs
from pruning.han import (DeadNeurons, HanConfig, adjust_dropout, connection_counts,
                         densities_from_sensitivity, dropout_probabilities, dropout_rate,
                         find_dead_neurons, prune_by_threshold, quality_for_density,
                         remove_dead_neurons, sensitivity, std_thresholds)
from pruning.magnitude import prunable_layers, prune_to_density
from pruning.profiles import load_profile
from pruning.runs import han_prune, load_checkpoint
from pruning.train import TrainConfig, evaluate
from pruning.zoo import build_model
from synthetic import blobs






DATA = SimpleNamespace(train=blobs(192, 1), val=blobs(64, 2), test=blobs(64, 3))


def _outputs(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model(x)


# ------------------------------------------------------------------ Eq. 1-2: dropout

def test_dropout_rate_eq2_hand_calculation():
    assert dropout_rate(0.5, 1000, 90) == 0.5 * math.sqrt(0.09)        # = 0.15
    assert dropout_rate(0.5, 1000, 1000) == 0.5
    assert dropout_rate(0.5, 1000, 0) == 0.0
    with pytest.raises(ValueError):
        dropout_rate(0.5, 1000, 1001)
    with pytest.raises(ValueError):
        dropout_rate(1.5, 1000, 10)


def _alexnet_toy() -> nn.Sequential:
    """AlexNet's classifier shape in miniature: fc1 -> relu6 -> drop6 -> fc2 -> ... fc3."""
    torch.manual_seed(0)
    return nn.Sequential(OrderedDict([
        ("flatten", nn.Flatten()),
        ("fc1", nn.Linear(20, 16)), ("relu6", nn.ReLU()), ("drop6", nn.Dropout(0.5)),
        ("fc2", nn.Linear(16, 12)), ("relu7", nn.ReLU()), ("drop7", nn.Dropout(0.4)),
        ("fc3", nn.Linear(12, 4)),
    ]))


def test_adjust_dropout_uses_surviving_connections_of_preceding_fc():
    model = _alexnet_toy()
    originals = connection_counts(model)
    assert originals == {"fc1": 320, "fc2": 192, "fc3": 48}          # Eq. 1: N_i * N_{i-1}
    p0 = dropout_probabilities(model)
    assert p0 == {"drop6": 0.5, "drop7": pytest.approx(0.4)}
    prune_to_density(model.fc1, 0.25)       # 80 of 320 connections survive
    prune_to_density(model.fc2, 0.0625)     # 12 of 192
    prune_to_density(model.fc3, 0.5)        # no dropout after fc3: irrelevant
    for _ in range(2):                      # a second call must not compound
        rates = adjust_dropout(model, originals, p0)
        assert rates == {"drop6": pytest.approx(0.5 * math.sqrt(80 / 320)),    # 0.25
                         "drop7": pytest.approx(0.4 * math.sqrt(12 / 192))}    # 0.1
        assert model.drop6.p == pytest.approx(0.25)
        assert model.drop7.p == pytest.approx(0.1)
    with pytest.raises(ValueError, match="drop7"):
        adjust_dropout(model, originals, {"drop6": 0.5})


# ------------------------------------------------------------------ thresholds

def _known_layer() -> nn.Linear:
    layer = nn.Linear(3, 2)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, -2.0, 3.0], [-4.0, 5.0, -6.0]]))
    return layer


def _population_std(values):
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))


def test_std_thresholds_by_hand():
    model = nn.Sequential(OrderedDict([("fc", _known_layer())]))
    std_all = _population_std([1, -2, 3, -4, 5, -6])                   # sqrt(14.9167) = 3.862
    assert std_thresholds(model, 0.5) == {"fc": pytest.approx(0.5 * std_all, rel=1e-12)}
    assert std_thresholds(model, {"fc": 2.0}) == {"fc": pytest.approx(2.0 * std_all)}
    # after pruning only the survivors count
    prune.custom_from_mask(model.fc, "weight", torch.tensor([[1.0, 1, 1], [0, 1, 0]]))
    std_kept = _population_std([1, -2, 3, 5])
    assert std_thresholds(model, 0.7)["fc"] == pytest.approx(0.7 * std_kept, rel=1e-12)
    with pytest.raises(ValueError):
        std_thresholds(model, {"nope": 1.0})


def test_prune_by_threshold_masks_below_threshold_and_combines():
    model = nn.Sequential(OrderedDict([("fc", _known_layer())]))
    densities = prune_by_threshold(model, {"fc": 2.5})
    assert torch.equal(model.fc.weight_mask, torch.tensor([[0.0, 0, 1], [1, 1, 1]]))
    assert densities == {"fc": 4 / 6}
    prune_by_threshold(model, {"fc": 4.5})                            # drops 3 and -4
    assert torch.equal(model.fc.weight_mask, torch.tensor([[0.0, 0, 0], [0, 1, 1]]))
    prune_by_threshold(model, {"fc": 0.0})                            # never revives
    assert torch.equal(model.fc.weight_mask, torch.tensor([[0.0, 0, 0], [0, 1, 1]]))


@pytest.mark.parametrize("density", [0.5, 1 / 12, 0.01])
def test_quality_for_density_hits_the_density(density):
    model = build_model("lenet-300-100", seed=1)
    total = sum(m.weight.numel() for m in prunable_layers(model).values())  # 266,200
    q = quality_for_density(model, density)
    assert q > 0
    prune_by_threshold(model, std_thresholds(model, q))
    kept = sum(connection_counts(model).values())
    assert abs(kept - round(density * total)) <= 1
    # again, on the pruned model, down to a lower density (masks combine)
    q2 = quality_for_density(model, density / 2)
    prune_by_threshold(model, std_thresholds(model, q2))
    assert abs(sum(connection_counts(model).values()) - round(density / 2 * total)) <= 1
    # asking for more than is left prunes nothing
    assert quality_for_density(model, density) == 0.0


def test_quality_for_density_on_a_subset_of_layers():
    model = build_model("lenet-300-100", seed=2)
    q = quality_for_density(model, 0.2, layers=["fc2", "fc3"])
    prune_by_threshold(model, std_thresholds(model, {"fc2": q, "fc3": q}))
    counts = connection_counts(model)
    assert counts["fc1"] == 784 * 300
    assert abs(counts["fc2"] + counts["fc3"] - round(0.2 * (30000 + 1000))) <= 1


# ------------------------------------------------------------------ dead neurons

def _lenet300_with_dead() -> nn.Module:
    """LeNet-300-100, all masks 1 except fc1 row 7 (fc1 neuron 7 has no inputs) and fc3
    column 42 (fc2 neuron 42 has no outputs); biases non-zero so the fold matters."""
    model = build_model("lenet-300-100", seed=0)
    g = torch.Generator().manual_seed(5)
    for layer in prunable_layers(model).values():
        with torch.no_grad():
            layer.bias.copy_(0.5 * torch.randn(layer.bias.shape, generator=g))
        prune.custom_from_mask(layer, "weight", torch.ones_like(layer.weight))
    model.fc1.bias.data[7] = 0.7                        # relu(0.7) = 0.7 flows into fc2
    model.fc1.weight_mask[7, :] = 0
    model.fc3.weight_mask[:, 42] = 0
    return model


def test_find_dead_neurons_reports_exactly_the_dead_row_and_column():
    model = _lenet300_with_dead()
    assert find_dead_neurons(model) == [DeadNeurons("fc1", (7,), ()),
                                        DeadNeurons("fc2", (), (42,))]
    assert find_dead_neurons(build_model("lenet-300-100")) == []


X = torch.randn(16, 1, 28, 28, generator=torch.Generator().manual_seed(9))


def test_remove_dead_neurons_keeps_outputs_in_place():
    model = _lenet300_with_dead()
    before = _outputs(model, X)
    same, removed = remove_dead_neurons(model)
    assert same is model
    assert removed == [DeadNeurons("fc1", (7,), ()), DeadNeurons("fc2", (), (42,))]
    assert torch.allclose(_outputs(model, X), before, rtol=1e-5, atol=1e-6)
    # the dead neurons' other connections are pruned
    assert not model.fc2.weight_mask[:, 7].any()        # fc1 neuron 7's outgoing weights
    assert not model.fc2.weight_mask[42, :].any()       # fc2 neuron 42's incoming weights
    assert model.fc1.bias[7] == 0 and model.fc2.bias[42] == 0
    assert int(model.fc2.weight_mask.sum()) == 300 * 100 - 100 - 300 + 1

    # the fold is what keeps the outputs: pruning the column without it changes them
    naive = _lenet300_with_dead()
    naive.fc2.weight_mask[:, 7] = 0
    assert not torch.allclose(_outputs(naive, X), before, rtol=1e-5, atol=1e-6)


def test_remove_dead_neurons_shrink_rebuilds_smaller_layers():
    model = _lenet300_with_dead()
    before = _outputs(model, X)
    small, removed = remove_dead_neurons(model, shrink=True)
    assert small is not model and model.fc1.out_features == 300      # input untouched
    assert torch.equal(_outputs(model, X), before)
    assert (small.fc1.out_features, small.fc2.in_features) == (299, 299)
    assert (small.fc2.out_features, small.fc3.in_features) == (99, 99)
    assert small.fc1.weight_mask.shape == (299, 784)                  # masks carried over
    assert torch.allclose(_outputs(small, X), before, rtol=1e-5, atol=1e-6)
    assert find_dead_neurons(small) == []


def test_remove_dead_conv_channels_lenet5():
    """Conv channels: conv1 channel 3 has no filter weights (its bias is folded into
    conv2, which has no padding), conv2 channel 5 feeds no weight of fc1 (features
    80..95 after Flatten)."""
    model = build_model("lenet-5", seed=0)
    g = torch.Generator().manual_seed(6)
    for layer in prunable_layers(model).values():
        with torch.no_grad():
            layer.bias.copy_(0.3 * torch.randn(layer.bias.shape, generator=g))
        prune.custom_from_mask(layer, "weight", torch.ones_like(layer.weight))
    model.conv1.weight_mask[3] = 0
    model.fc1.weight_mask[:, 5 * 16:6 * 16] = 0
    assert find_dead_neurons(model) == [DeadNeurons("conv1", (3,), ()),
                                        DeadNeurons("conv2", (), (5,))]
    before = _outputs(model, X)
    small, removed = remove_dead_neurons(model, shrink=True)
    assert removed == [DeadNeurons("conv1", (3,), ()), DeadNeurons("conv2", (), (5,))]
    assert (small.conv1.out_channels, small.conv2.in_channels) == (19, 19)
    assert (small.conv2.out_channels, small.fc1.in_features) == (49, 784)
    assert torch.allclose(_outputs(small, X), before, rtol=1e-5, atol=1e-5)
    in_place, _ = remove_dead_neurons(model)
    assert torch.allclose(_outputs(in_place, X), before, rtol=1e-5, atol=1e-5)
    assert not in_place.conv2.weight_mask[:, 3].any()


def test_dead_neurons_cascade():
    """Removing fc2 neuron 42's inputs leaves nothing else dead, but pruning all of fc2's
    inputs from fc1 neuron 0 except via neuron 42 must kill fc1 neuron 0 too."""
    model = _lenet300_with_dead()
    model.fc2.weight_mask[:, 0] = 0
    model.fc2.weight_mask[42, 0] = 1      # fc1 neuron 0 is read only by dead neuron 42
    before = _outputs(model, X)
    _, removed = remove_dead_neurons(model)
    assert DeadNeurons("fc1", (7,), (0,)) in removed
    assert torch.allclose(_outputs(model, X), before, rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------ sensitivity (Fig. 6)

def test_sensitivity_one_row_per_layer_and_fraction():
    model = build_model("lenet-300-100", seed=0)
    acc = lambda m: evaluate(m, DATA.val)[1]           # noqa: E731
    fractions = (0.0, 0.5, 0.9)
    table = sensitivity(model, acc, fractions=fractions, progress=False)
    assert list(table.columns) == ["layer", "pruned_fraction", "accuracy"]
    assert len(table) == 9
    assert sorted(zip(table.layer, table.pruned_fraction)) == sorted(
        (layer, f) for layer in ("fc1", "fc2", "fc3") for f in fractions)
    assert (table[table.pruned_fraction == 0.0].accuracy == acc(model)).all()
    assert not hasattr(model.fc1, "weight_mask")        # the model itself is untouched

    # the copies really are pruned, one layer at a time, by the given fraction
    total = 266_200
    kept = lambda m: sum(int(torch.count_nonzero(l.weight)) for l in prunable_layers(m).values())  # noqa: E731,E741
    counts = sensitivity(model, kept, fractions=(0.0, 0.5), layers=["fc2"], progress=False)
    assert counts.accuracy.tolist() == [total, total - 15_000]


def test_densities_from_sensitivity():
    table = pd.DataFrame({
        "layer": ["conv1"] * 3 + ["fc1"] * 3,
        "pruned_fraction": [0.0, 0.5, 0.9] * 2,
        "accuracy": [0.99, 0.97, 0.5, 0.99, 0.985, 0.98],
    })
    assert densities_from_sensitivity(table, 0.011) == {"conv1": 1.0, "fc1": pytest.approx(0.1)}
    assert densities_from_sensitivity(table, 0.03) == {"conv1": 0.5, "fc1": pytest.approx(0.1)}


# ------------------------------------------------------------------ configuration

def test_han_config_normalises_layer_densities():
    config = HanConfig(target_density=1 / 12, layer_densities={"fc1": 0.08, "fc2": 0.09})
    assert config.layer_densities == (("fc1", 0.08), ("fc2", 0.09))
    hash(config)
    profile = HanConfig(1 / 12, layer_densities=load_profile("han2015", "lenet-300-100"))
    assert profile.layer_densities == (("fc1", 0.08), ("fc2", 0.09), ("fc3", 0.26))
    with pytest.raises(ValueError):
        HanConfig(target_density=0.0)
    with pytest.raises(ValueError):
        HanConfig(target_density=0.1, iterations=0)
    with pytest.raises(ValueError):
        HanConfig(target_density=0.1, layer_densities={"fc1": 1.5})


def _config(**kw) -> HanConfig:
    base = dict(target_density=0.2, iterations=3, seed=3,
                train=TrainConfig(epochs=1, lr=0.02, batch_size=32),
                retrain=TrainConfig(epochs=1, lr=0.002, batch_size=32))
    return HanConfig(**{**base, **kw})


def test_per_layer_densities_follow_geometric_schedule():
    model = build_model("lenet-300-100", seed=0)
    config = _config(iterations=2, layer_densities={"fc1": 0.08, "fc2": 0.09, "fc3": 0.26},
                     train=TrainConfig(epochs=0), remove_dead=False)
    originals, p0 = connection_counts(model), dropout_probabilities(model)
    for r in (1, 2):
        result = han.prune_round(model, DATA, config, r, originals, p0, progress=False)
        for name, final in config.layer_densities:
            n = getattr(model, name).weight.numel()
            assert result.densities[name] == round(final ** (r / 2) * n) / n


def test_separate_conv_fc_retrains_conv_then_fc(monkeypatch):
    calls = []
    real = han.train

    def spy(model, data, config, **kw):
        frozen = {n: getattr(m, "weight_orig", m.weight).clone()
                  for n, m in prunable_layers(model).items()
                  if not (config.trainable == "all" or
                          isinstance(m, nn.Conv2d) == (config.trainable == "conv"))}
        history = real(model, data, config, **kw)
        calls.append(config.trainable)
        for n, w in frozen.items():
            layer = getattr(model, n)
            assert torch.equal(getattr(layer, "weight_orig", layer.weight), w), n
        return history

    monkeypatch.setattr(han, "train", spy)
    model = build_model("lenet-5", seed=0)
    config = _config(iterations=1, separate_conv_fc=True, train=TrainConfig(epochs=0))
    originals, p0 = connection_counts(model), dropout_probabilities(model)
    result = han.prune_round(model, DATA, config, 1, originals, p0, progress=False)
    assert calls == ["conv", "fc"]
    kept = sum(connection_counts(model).values())
    # round density 0.2 (one round), minus the rows of fc1 neurons that fc2 no longer
    # reads (fc2 keeps ~20% of its 10 rows per column, so ~10% of fc1's neurons die)
    assert 0.15 * 430_500 <= kept <= round(0.2 * 430_500) + 1
    assert result.dead_neurons and result.dead_neurons[-1].layer == "fc1"
    assert result.quality > 0


# ------------------------------------------------------------------ runs

class _Killed(RuntimeError):
    """Stands in for the run being killed mid-round."""


def _counting(monkeypatch, fail_at: str | None = None) -> list[str]:
    """Replace the training used by runs (round 0) and han (rounds) by a counting
    wrapper; raise when a training's desc starts with ``fail_at`` (a simulated kill)."""
    descs: list[str] = []
    real = pruning.train.train          # not han.train: that may be an earlier wrapper

    def wrapper(model, data, config, seed=0, progress=True, desc="train"):
        if fail_at is not None and desc.startswith(fail_at):
            raise _Killed(f"killed in {desc}")
        descs.append(desc)
        return real(model, data, config, seed=seed, progress=progress, desc=desc)

    monkeypatch.setattr(han, "train", wrapper)
    monkeypatch.setattr(runs, "train", wrapper)
    return descs


def _state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_run_interrupted_and_resumed_matches_uninterrupted(tmp_path, monkeypatch):
    config = _config()
    # uninterrupted reference
    descs = _counting(monkeypatch)
    ref = han_prune(build_model("lenet-300-100", seed=0), DATA, config, tmp_path / "ref",
                    progress=False, model_name="lenet-300-100")
    assert descs == ["round 0 train", "round 1 retrain all", "round 2 retrain all",
                     "round 3 retrain all"]
    log = ref.log
    assert log["round"].tolist() == [0, 1, 2, 3]
    for r in range(4):                          # geometric schedule 0.2^(r/3), then dead removal
        assert log.density[r] <= 0.2 ** (r / 3) + 1 / 266_200
        assert log.density[r] == pytest.approx(0.2 ** (r / 3), abs=0.01)
    assert {"density_fc1", "density_fc2", "density_fc3", "compression", "val_acc", "test_acc",
            "wall_s", "dead_neurons"} <= set(log.columns)
    assert log.compression[3] == pytest.approx(1 / log.density[3])
    assert log.val_acc[3] > 0.9
    files = {p.relative_to(tmp_path / "ref").as_posix() for p in (tmp_path / "ref").rglob("*")}
    assert {"config.json", "log.csv", "history.csv", "final.pt", "checkpoints/round_00.pt",
            "checkpoints/round_03.pt"} <= files
    assert not any(".tmp" in f for f in files)
    assert json.loads((tmp_path / "ref" / "config.json").read_text())["model_name"] \
        == "lenet-300-100"
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "ref" / "log.csv"), log,
                                  check_dtype=False)
    expected = _state(ref.model)

    # killed inside round 2's retraining
    run_dir = tmp_path / "run"
    _counting(monkeypatch, fail_at="round 2")
    with pytest.raises(_Killed):
        han_prune(build_model("lenet-300-100", seed=0), DATA, config, run_dir, progress=False)
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == \
        ["round_00.pt", "round_01.pt"]
    assert pd.read_csv(run_dir / "log.csv")["round"].tolist() == [0, 1]

    # resume: rounds 0 and 1 are not trained again
    descs = _counting(monkeypatch)
    resumed = han_prune(build_model("lenet-300-100", seed=0), DATA, config, run_dir,
                        resume=True, progress=False)
    assert descs == ["round 2 retrain all", "round 3 retrain all"]
    got = resumed.model.state_dict()
    assert got.keys() == expected.keys()
    assert all(torch.equal(got[k], expected[k]) for k in expected)
    cols = [c for c in log.columns if c != "wall_s"]
    pd.testing.assert_frame_equal(resumed.log[cols], log[cols])
    assert resumed.dead_neurons == ref.dead_neurons

    # resuming a finished run trains nothing and gives the same model
    descs = _counting(monkeypatch)
    again = han_prune(build_model("lenet-300-100", seed=0), DATA, config, run_dir,
                      resume=True, progress=False)
    assert descs == []
    assert all(torch.equal(again.model.state_dict()[k], expected[k]) for k in expected)

    # final.pt and the checkpoints load into a fresh model
    fresh = load_checkpoint(build_model("lenet-300-100", seed=1), run_dir / "final.pt")
    assert all(torch.equal(fresh.state_dict()[k], expected[k]) for k in expected)
    assert torch.equal(_outputs(fresh, X), _outputs(ref.model, X))
    r1 = load_checkpoint(build_model("lenet-300-100"), run_dir / "checkpoints" / "round_01.pt")
    assert sum(connection_counts(r1).values()) == log.kept_weights[1]


def test_resume_with_different_config_raises(tmp_path, monkeypatch):
    _counting(monkeypatch, fail_at="round 1")
    config = _config(iterations=2)
    with pytest.raises(_Killed):
        han_prune(build_model("lenet-300-100"), DATA, config, tmp_path, progress=False)
    changed = _config(iterations=2, retrain=TrainConfig(epochs=1, lr=0.01, batch_size=32))
    with pytest.raises(ValueError, match=r"retrain\.lr"):
        han_prune(build_model("lenet-300-100"), DATA, changed, tmp_path, resume=True,
                  progress=False)
    with pytest.raises(ValueError, match="seed"):
        han_prune(build_model("lenet-300-100"), DATA, _config(iterations=2, seed=4), tmp_path,
                  resume=True, progress=False)
    with pytest.raises(FileExistsError):
        han_prune(build_model("lenet-300-100"), DATA, config, tmp_path, progress=False)


def test_resume_of_a_run_written_before_a_config_field_existed(tmp_path, monkeypatch):
    """A config.json without a field (here TrainConfig.augment_shift, added later) was made
    with that field's default: resuming with the default works, with another value it does not."""
    _counting(monkeypatch, fail_at="round 1")
    config = _config(iterations=2)
    with pytest.raises(_Killed):
        han_prune(build_model("lenet-300-100"), DATA, config, tmp_path, progress=False)
    stored = json.loads((tmp_path / "config.json").read_text())
    for phase in ("train", "retrain"):
        del stored["config"][phase]["augment_shift"]
    (tmp_path / "config.json").write_text(json.dumps(stored))
    monkeypatch.undo()
    shifted = _config(iterations=2, retrain=dataclasses.replace(config.retrain, augment_shift=1))
    with pytest.raises(ValueError, match=r"retrain\.augment_shift"):
        han_prune(build_model("lenet-300-100"), DATA, shifted, tmp_path, resume=True, progress=False)
    resumed = han_prune(build_model("lenet-300-100"), DATA, config, tmp_path, resume=True,
                        progress=False)
    assert list(resumed.log["round"]) == [0, 1, 2]


def test_resume_with_shifted_images_matches_uninterrupted(tmp_path, monkeypatch):
    """The shifts come from each phase's seeded generator, so a resumed run draws the same."""
    shifted = TrainConfig(epochs=1, lr=0.02, batch_size=32, augment_shift=1)
    config = _config(iterations=2, train=shifted, retrain=dataclasses.replace(shifted, lr=0.002))
    ref = han_prune(build_model("lenet-300-100", seed=0), DATA, config, tmp_path / "ref",
                    progress=False)
    _counting(monkeypatch, fail_at="round 2")
    with pytest.raises(_Killed):
        han_prune(build_model("lenet-300-100", seed=0), DATA, config, tmp_path / "run",
                  progress=False)
    monkeypatch.undo()
    resumed = han_prune(build_model("lenet-300-100", seed=0), DATA, config, tmp_path / "run",
                        resume=True, progress=False)
    expected, got = _state(ref.model), _state(resumed.model)
    assert all(torch.equal(got[k], expected[k]) for k in expected)
    unshifted = han_prune(build_model("lenet-300-100", seed=0), DATA,
                          _config(iterations=2, train=dataclasses.replace(shifted, augment_shift=0),
                                  retrain=dataclasses.replace(shifted, lr=0.002, augment_shift=0)),
                          tmp_path / "plain", progress=False)
    assert not all(torch.equal(v, expected[k]) for k, v in _state(unshifted.model).items())
