"""The method interface and the shared run: registry, schedules, seeds, checkpoints, resume."""

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from pruning.methods import available_methods, make_method
from pruning.methods.base import geometric_densities, prunable_weight_count
from pruning.pipeline import MethodSchedule, run_method
from pruning.train import TrainConfig
from tests.synthetic import blobs

DATA = SimpleNamespace(train=blobs(128, 1), val=blobs(64, 2), test=blobs(64, 3))
SCHEDULE = MethodSchedule(target_density=0.1, rounds=2, train=TrainConfig(epochs=1, lr=0.01, batch_size=32),
                          retrain=TrainConfig(epochs=1, lr=0.005, batch_size=32), seed=3)


def _mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 16), nn.ReLU(), nn.Linear(16, 2))


def test_registry_finds_every_method_file():
    assert available_methods() == ("flipout", "han", "magnitude", "relief")
    assert make_method("flipout", seed=4).seed == 4
    with pytest.raises(ValueError, match="unknown pruning method 'obd'.*valid: flipout, han"):
        make_method("obd")


def test_geometric_schedule():
    assert geometric_densities(1.0, 0.01, 2) == pytest.approx([0.1, 0.01])
    assert geometric_densities(0.1, 0.2, 3) == [0.2]


@pytest.mark.parametrize("name", ["han", "magnitude", "flipout", "relief"])
def test_each_method_reaches_the_target_and_is_repeatable(name):
    first = run_method(make_method(name, seed=1), _mlp(), DATA, SCHEDULE, progress=False)
    second = run_method(make_method(name, seed=1), _mlp(), DATA, SCHEDULE, progress=False)
    alive, total = prunable_weight_count(first.model)
    assert alive / total == pytest.approx(0.1, abs=0.003)
    assert first.log["density"].iloc[-1] == pytest.approx(alive / total)
    for a, b in zip(first.model.state_dict().values(), second.model.state_dict().values()):
        assert torch.equal(a, b)


def test_global_magnitude_keeps_the_largest_weights_over_all_layers():
    model = nn.Sequential(nn.Linear(2, 2, bias=False), nn.Linear(2, 1, bias=False))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[0.1, -5.0], [0.3, 0.2]]))
        model[1].weight.copy_(torch.tensor([[-0.4, 4.0]]))
    make_method("magnitude").prune(model, 0.5)
    assert model[0].weight_mask.tolist() == [[0, 1], [0, 0]]
    assert model[1].weight_mask.tolist() == [[1, 1]]


def test_resume_after_an_interruption_gives_the_same_model(tmp_path):
    whole = run_method(make_method("flipout", seed=2), _mlp(), DATA, SCHEDULE, run_dir=tmp_path / "a",
                       progress=False)
    run_method(make_method("flipout", seed=2), _mlp(), DATA, SCHEDULE, run_dir=tmp_path / "b", progress=False)
    # Pretend the run died after round 2: later checkpoints and the final model are missing.
    rounds = sorted((tmp_path / "b" / "checkpoints").iterdir())
    assert len(rounds) == 1 + 4           # round 0 + FlipOut's 0.5, 0.25, 0.125, 0.1
    for path in rounds[3:]:
        path.unlink()
    (tmp_path / "b" / "final.pt").unlink()
    resumed = run_method(make_method("flipout", seed=2), _mlp(), DATA, SCHEDULE, run_dir=tmp_path / "b",
                         resume=True, progress=False)
    for a, b in zip(whole.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.equal(a, b)
    assert resumed.log["test_acc"].tolist() == whole.log["test_acc"].tolist()
    with pytest.raises(FileExistsError):
        run_method(make_method("flipout", seed=2), _mlp(), DATA, SCHEDULE, run_dir=tmp_path / "b", progress=False)
    with pytest.raises(ValueError, match="differs"):
        run_method(make_method("flipout", seed=5), _mlp(), DATA, SCHEDULE, run_dir=tmp_path / "b",
                   resume=True, progress=False)
