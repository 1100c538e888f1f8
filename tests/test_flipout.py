"""FlipOut (Apostol et al. 2020): flip counting, saliency, global ranking, schedule, noise."""

from types import SimpleNamespace

import pytest
import torch
from torch import nn
from torch.nn.utils import prune

from pruning.methods.flipout import FlipOut, count_flips
from pruning.train import TrainConfig, train
from tests.synthetic import blobs


def _set(layer: nn.Linear, values) -> None:
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(values, dtype=torch.float32))


def test_flip_counter_counts_a_known_sequence_of_sign_changes():
    model = nn.Sequential(nn.Linear(3, 1, bias=False))
    # Three weights over six snapshots (the first is the state at attach time):
    #   w0: 1 -1 -2  3  4 -1  -> flips at steps 1, 3, 5  = 3
    #   w1: 1  0 -1 -1  2  2  -> through exact zero never counts (1·0, 0·-1 not < 0), then -1 -> 2 = 1
    #   w2: -5 -4 -3 -2 -1 -0.5 -> 0
    sequence = [[1, 1, -5], [-1, 0, -4], [-2, -1, -3], [3, -1, -2], [4, 2, -1], [-1, 2, -0.5]]
    method = FlipOut(seed=0)
    _set(model[0], [sequence[0]])
    method.attach(model)
    for snapshot in sequence[1:]:
        _set(model[0], [snapshot])
        method.after_step(model)
    assert method.flips["0"].tolist() == [[3, 1, 0]]
    # Saliency |θ|^2 / (flips + 1) with the final weights (-1, 2, -0.5).
    assert method.scores(model)["0"].tolist() == [[1 / 4, 4 / 2, 0.25 / 1]]
    assert count_flips(torch.tensor([1.0, -2.0, 0.0]), torch.tensor([-3.0, -1.0, 5.0])).tolist() == [1, 0, 0]


def test_flips_counted_during_training_match_an_independent_count():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 4), nn.ReLU(), nn.Linear(4, 2))
    data = SimpleNamespace(train=blobs(64, 1), val=None)
    snapshots = []

    class Recorder(FlipOut):
        def after_step(self, m):
            super().after_step(m)
            snapshots.append(m[3].weight.detach().clone())

    method = Recorder(seed=0, noise_scale=0.0)
    snapshots.append(model[3].weight.detach().clone())
    method.attach(model)
    # A large learning rate makes signs flip often.
    train(model, data, TrainConfig(epochs=2, lr=2.0, batch_size=8, regularization="none",
                                   momentum=0.0), progress=False, hooks=method)
    expected = torch.zeros(2, 4, dtype=torch.int64)
    for before, after in zip(snapshots, snapshots[1:]):
        expected += ((before > 0) & (after < 0)) | ((before < 0) & (after > 0))
    assert len(snapshots) == 1 + 2 * 8
    assert int(expected.sum()) > 0
    assert torch.equal(method.flips["3"], expected)


def test_global_ranking_across_layers_uses_flips():
    model = nn.Sequential(nn.Linear(2, 2, bias=False), nn.Linear(2, 2, bias=False))
    _set(model[0], [[1.0, 2.0], [3.0, 4.0]])
    _set(model[1], [[0.5, 5.0], [6.0, -7.0]])
    method = FlipOut()
    method.attach(model)
    method.flips["1"] = torch.tensor([[0, 9], [1, 0]])   # scores 0.25, 2.5, 18, 49
    # Layer 0 scores 1, 4, 9, 16. Keep 4 of 8: 49, 18, 16, 9.
    method.prune(model, 0.5)
    assert model[0].weight_mask.tolist() == [[0, 0], [1, 1]]
    assert model[1].weight_mask.tolist() == [[0, 0], [1, 1]]
    # Pruning restarts the counters; a pruned weight never revives.
    assert all(int(c.sum()) == 0 for c in method.flips.values())
    method.prune(model, 0.75)
    assert int(model[0].weight_mask.sum() + model[1].weight_mask.sum()) == 4


def test_schedule_halves_the_remaining_weights_until_the_target():
    plan = FlipOut().round_densities(1.0, 0.01, rounds=3)
    assert plan == pytest.approx([0.5, 0.25, 0.125, 0.0625, 0.03125, 0.015625, 0.01])
    assert FlipOut(prune_fraction=0.75).round_densities(0.1, 0.02, 1) == pytest.approx([0.025, 0.02])
    with pytest.raises(ValueError, match="prune_fraction"):
        FlipOut(prune_fraction=1.5)


def test_gradient_noise_scale_masking_and_seed():
    def noisy(seed):
        layer = nn.Linear(100, 100, bias=False)
        prune.custom_from_mask(layer, "weight", (torch.arange(10_000).reshape(100, 100) % 2 == 0).float())
        model = nn.Sequential(layer)
        layer.weight_orig.grad = torch.full((100, 100), 3.0) * layer.weight_mask  # ‖g‖/√n = 3
        method = FlipOut(seed=seed, noise_scale=0.5)
        method.attach(model)
        method.before_step(model)
        return layer.weight_orig.grad.clone(), layer.weight_mask.bool()

    grad, keep = noisy(7)
    assert torch.all(grad[~keep] == 0)                       # re-masked
    noise = grad[keep] - 3.0
    assert noise.std().item() == pytest.approx(0.5 * 3.0, rel=0.05)   # λ·‖g‖₂/√n
    assert torch.equal(noisy(7)[0], grad)                    # same seed, same noise
    assert not torch.equal(noisy(8)[0], grad)
