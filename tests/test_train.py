"""Mask-respecting training (pruning.train): masked weights stay zero, frozen layers stay
put, same seed gives the same weights. Tiny synthetic data, a few epochs."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from pruning.magnitude import prunable_layers, prune_to_density
from pruning.train import TrainConfig, evaluate, learning_rate, train
from pruning.zoo import build_model
from synthetic import blobs






DATA = SimpleNamespace(train=blobs(256, 1), val=blobs(64, 2), test=blobs(64, 3))


class _SpySGD(torch.optim.SGD):
    """SGD that remembers its instances, so a test can look at the momentum buffers."""
    instances: list = []

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _SpySGD.instances.append(self)


@pytest.fixture
def spy_sgd(monkeypatch):
    _SpySGD.instances = []
    monkeypatch.setattr(torch.optim, "SGD", _SpySGD)
    return _SpySGD.instances


def _pruned_lenet300(density: float = 0.2) -> nn.Module:
    model = build_model("lenet-300-100", seed=0)
    for layer in prunable_layers(model).values():
        prune_to_density(layer, density)
    return model


@pytest.mark.parametrize("regularization", ["l2", "l1"])
def test_masked_weights_stay_exactly_zero(spy_sgd, regularization):
    model = _pruned_lenet300(0.2)
    layers = prunable_layers(model)
    before = {n: m.weight_orig.detach().clone() for n, m in layers.items()}
    # torch's prune keeps the dense values in weight_orig: they are non-zero to begin with.
    assert all(bool((before[n][~m.weight_mask.bool()] != 0).any()) for n, m in layers.items())
    config = TrainConfig(epochs=2, lr=0.05, momentum=0.9, batch_size=32,
                         regularization=regularization, reg_strength=5e-4)
    history = train(model, DATA, config, seed=0, progress=False)

    assert [h["epoch"] for h in history] == [1, 2]
    assert set(history[0]) >= {"epoch", "loss", "train_acc", "val_acc", "lr"}
    (optimizer,) = spy_sgd
    for name, layer in layers.items():
        pruned = ~layer.weight_mask.bool()
        assert int(pruned.sum()) == layer.weight.numel() - round(0.2 * layer.weight.numel())
        assert bool((layer.weight_orig[pruned] == 0).all()), name
        assert bool((layer.weight[pruned] == 0).all()), name
        buf = optimizer.state[layer.weight_orig]["momentum_buffer"]
        assert bool((buf[pruned] == 0).all()), name
        assert bool((buf[~pruned] != 0).any()), name          # momentum really was used
        # nearly every surviving weight moved
        moved = (layer.weight_orig[~pruned] != before[name][~pruned]).float().mean()
        assert moved > 0.9, name
    # the blobs are easy: training worked
    assert history[-1]["val_acc"] > 0.9


def test_l1_shrinks_weights_more_than_no_regularization():
    sums = {}
    for reg in ("none", "l1"):
        model = _pruned_lenet300(0.5)
        train(model, DATA, TrainConfig(epochs=1, lr=0.05, batch_size=32, regularization=reg,
                                       reg_strength=1e-2), seed=0, progress=False)
        sums[reg] = sum(float(m.weight.abs().sum()) for m in prunable_layers(model).values())
    assert sums["l1"] < 0.9 * sums["none"]


@pytest.mark.parametrize("trainable, frozen_type, trained_type",
                         [("fc", nn.Conv2d, nn.Linear), ("conv", nn.Linear, nn.Conv2d)])
def test_frozen_layers_are_bit_identical(trainable, frozen_type, trained_type):
    model = build_model("lenet-5", seed=0)
    layers = prunable_layers(model)
    prune_to_density(layers["conv2"], 0.5)
    prune_to_density(layers["fc1"], 0.5)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    train(model, DATA, TrainConfig(epochs=1, batch_size=64, trainable=trainable),
          seed=0, progress=False)
    after = model.state_dict()
    for name, layer in layers.items():
        keys = [k for k in after if k.startswith(name + ".")]
        same = all(torch.equal(before[k], after[k]) for k in keys)
        if isinstance(layer, frozen_type):
            assert same, name
        else:
            assert not same, name
        # requires_grad is restored after training
        assert all(p.requires_grad for p in layer.parameters())


def test_same_seed_same_weights_and_global_rng_untouched():
    results = []
    for seed in (7, 7, 8):
        model = _pruned_lenet300(0.3)
        rng = torch.get_rng_state()
        history = train(model, DATA, TrainConfig(epochs=2, batch_size=32), seed=seed,
                        progress=False)
        assert torch.equal(rng, torch.get_rng_state())
        results.append((model.state_dict(), history))
    (a, ha), (b, hb), (c, _) = results
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert ha == hb
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_dropout_draws_are_seeded():
    def run(seed):
        model = nn.Sequential(nn.Flatten(), nn.Linear(784, 32), nn.ReLU(), nn.Dropout(0.5),
                              nn.Linear(32, 2))
        torch.nn.init.constant_(model[1].weight, 0.01)
        torch.nn.init.constant_(model[4].weight, 0.01)
        torch.nn.init.zeros_(model[1].bias)
        torch.nn.init.zeros_(model[4].bias)
        train(model, DATA, TrainConfig(epochs=1, batch_size=32), seed=seed, progress=False)
        return model[1].weight.detach().clone()
    assert torch.equal(run(3), run(3))
    assert not torch.equal(run(3), run(4))


def test_learning_rate_schedules():
    step = TrainConfig(epochs=4, lr=0.1, lr_schedule="step")
    assert [learning_rate(step, e) for e in range(4)] == pytest.approx([0.1, 0.1, 0.01, 0.001])
    cos = TrainConfig(epochs=2, lr=0.1, lr_schedule="cosine")
    assert [learning_rate(cos, e) for e in range(2)] == pytest.approx([0.1, 0.05])
    const = TrainConfig(epochs=3, lr=0.1, lr_schedule="constant")
    assert [learning_rate(const, e) for e in range(3)] == [0.1, 0.1, 0.1]


def test_history_reports_scheduled_lr():
    model = _pruned_lenet300(0.5)
    history = train(model, DATA, TrainConfig(epochs=2, lr=0.02, lr_schedule="cosine"),
                    seed=0, progress=False)
    assert [h["lr"] for h in history] == pytest.approx([0.02, 0.01])


def test_evaluate_matches_hand_computation():
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 2))
    with torch.no_grad():
        model[1].weight.copy_(torch.randn(2, 784, generator=torch.Generator().manual_seed(0)))
        model[1].bias.zero_()
    model.train()
    x, y = DATA.val.tensors
    logits = model(x)
    loss, acc = evaluate(model, DATA.val, batch_size=10)      # batches of 10: 64 = 6*10 + 4
    assert loss == pytest.approx(float(F.cross_entropy(logits, y).detach()), rel=1e-5)
    assert acc == float((logits.argmax(1) == y).float().mean())
    assert model.training                                     # mode restored
    assert all(math.isnan(v) for v in evaluate(model, None))


def test_config_validation():
    with pytest.raises(ValueError, match="regularization"):
        TrainConfig(regularization="l3")
    with pytest.raises(ValueError, match="trainable"):
        TrainConfig(trainable="bias")
    with pytest.raises(ValueError, match="epochs"):
        TrainConfig(epochs=-1)
    assert train(_pruned_lenet300(0.5), DATA, TrainConfig(epochs=0), progress=False) == []
