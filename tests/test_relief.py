"""NN relief (Dekhovich et al. 2021): scores against hand calculations, per-neuron α,
never-active neurons, reaching a target density."""

from types import SimpleNamespace

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from pruning.magnitude import weight_density
from pruning.methods.relief import NNRelief, activation_statistics, relief_scores
from pruning.zoo import build_model
from tests.synthetic import blobs


def _data(x):
    return SimpleNamespace(train=TensorDataset(x, torch.zeros(len(x), dtype=torch.long)))


def _fc():
    layer = nn.Linear(3, 2)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, -2.0, 0.5], [0.0, 3.0, -1.0]]))
        layer.bias.copy_(torch.tensor([0.5, -1.0]))
    return nn.Sequential(layer)


X_FC = torch.tensor([[1.0, 2.0, 0.0], [-1.0, 0.0, 4.0]])  # mean |x| = (1, 1, 2)


def test_fc_scores_equal_a_hand_calculation():
    model = _fc()
    mean_abs, _, positions = activation_statistics(model, X_FC)
    scores, bias = relief_scores(model, mean_abs, positions)["0"]
    # Neuron 0: mean|w·x| = 1·1, 2·1, 0.5·2 = 1, 2, 1; S = 4 + |0.5| = 4.5.
    # Neuron 1: 0, 3·1, 1·2 = 0, 3, 2; S = 5 + |-1| = 6.
    assert scores.flatten().tolist() == pytest.approx([1 / 4.5, 2 / 4.5, 1 / 4.5, 0.0, 0.5, 2 / 6], abs=1e-15)
    assert bias.tolist() == pytest.approx([0.5 / 4.5, 1 / 6], abs=1e-15)


def test_per_neuron_cumulative_threshold():
    model = _fc()
    NNRelief(alpha_fc=0.6, remove_dead=False).prune(model, None, _data(X_FC))
    # Neuron 0 needs 0.6 − 0.111 = 0.489: 2/4.5 = 0.444 is short, + 1/4.5 (input 0: the tie with
    # input 2 goes to the lower index) = 0.667 reaches it. Neuron 1 needs 0.6 − 1/6 = 0.433: 0.5.
    assert model[0].weight_mask.tolist() == [[1, 1, 0], [0, 1, 0]]


def test_conv_kernel_scores_equal_a_hand_calculation():
    conv = nn.Conv2d(2, 1, 2)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([[[[1.0, -1.0], [0.0, 2.0]], [[0.0, 1.0], [1.0, 0.0]]]]))
        conv.bias.fill_(-0.5)
    x = torch.stack([torch.tensor([[1.0, 0, 2], [0, 1, 0], [3, 0, 1]]), torch.ones(3, 3)]).unsqueeze(0)
    model = nn.Sequential(conv)
    mean_abs, _, positions = activation_statistics(model, x)
    scores, bias = relief_scores(model, mean_abs, positions)["0"]
    # |K0| ∗ |x0| over the 2×2 output map: 3 + 2 + 1 + 3 = 9; |K1| ∗ |x1|: 2 at each of 4 = 8;
    # bias 0.5 at each of 4 positions = 2; S = 19.
    assert positions["0"] == 4
    assert scores.flatten().tolist() == pytest.approx([9 / 19, 8 / 19], abs=1e-15)
    assert bias.tolist() == pytest.approx([2 / 19], abs=1e-15)
    # α_conv = 0.5: 9/19 + 2/19 = 0.58 ≥ 0.5, so only kernel 0 stays, all 4 of its weights.
    NNRelief(alpha_conv=0.5, remove_dead=False).prune(model, None, _data(x))
    assert conv.weight_mask.sum().item() == 4 and conv.weight_mask[0, 0].sum().item() == 4


def test_never_active_neurons_are_removed_without_changing_outputs():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[0.5, 0.1, 0.2, 0.3], [-1.0] * 4, [0.3, 0.0, 0.1, 0.4]]))
        model[0].bias.copy_(torch.tensor([0.1, -0.1, 0.0]))
    x = torch.rand(50, 4)                         # positive inputs: neuron 1 never fires
    before = model(x)
    method = NNRelief(alpha_fc=1.0)
    _, active, _ = activation_statistics(model, x)
    assert active["2"].tolist() == [True, False, True]
    method.prune(model, None, _data(x))
    assert model[0].weight_mask[1].sum().item() == 0
    assert model[2].weight_mask[:, 1].sum().item() == 0
    assert torch.allclose(model(x), before, atol=1e-6)


def test_reaches_a_target_density_on_lenet5():
    model = build_model("lenet-5", seed=0)
    data = SimpleNamespace(train=blobs(64, 1))
    NNRelief(samples=64).prune(model, 0.1, data)
    weights = [m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    total = sum(m.weight.numel() for m in weights)
    kept = sum(weight_density(m) * m.weight.numel() for m in weights) / total
    assert 0.097 <= kept <= 0.1


def _two_layer():
    model = nn.Sequential(nn.Linear(3, 2, bias=False), nn.ReLU(), nn.Linear(2, 2, bias=False))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, 1.0, 1.0], [0.5, 0.5, 0.5]]))
        model[2].weight.copy_(torch.tensor([[1.0, 0.01], [1.0, 0.01]]))
    return model


X_POS = torch.tensor([[1.0, 1.0, 1.0], [2.0, 2.0, 2.0]])   # both hidden neurons fire: h = (3s, 1.5s)


def test_backward_pruning_removes_the_inputs_of_unread_neurons_only():
    # Output layer, α 0.9: hidden 0 carries 1·4.5 / (4.5 + 0.01·2.25) = 0.995 of each output's
    # mass, so hidden 1 is read by no one. Hidden layer, α 0.9: three equal inputs, 1/3 each,
    # all three needed. Backward pruning (the authors' lenet_backward_pruning) then drops hidden
    # 1's three incoming weights, and the outputs cannot change.
    plain, backward = _two_layer(), _two_layer()
    NNRelief(alpha_fc=0.9, remove_dead=False, backward=False).prune(plain, None, _data(X_POS))
    NNRelief(alpha_fc=0.9, remove_dead=False, backward=True).prune(backward, None, _data(X_POS))
    assert plain[2].weight_mask.tolist() == backward[2].weight_mask.tolist() == [[1, 0], [1, 0]]
    assert plain[0].weight_mask.tolist() == [[1, 1, 1], [1, 1, 1]]
    assert backward[0].weight_mask.tolist() == [[1, 1, 1], [0, 0, 0]]
    x = torch.rand(20, 3)
    assert torch.equal(plain(x), backward(x))


def test_the_output_layer_can_have_its_own_alpha():
    model = _two_layer()
    NNRelief(alpha_fc=0.5, alpha_out=1.0, remove_dead=False).prune(model, None, _data(X_POS))
    assert model[2].weight_mask.tolist() == [[1, 1], [1, 1]]         # α 1: every positive score stays
    assert model[0].weight_mask.sum().item() == 4                      # α 0.5: 2 of 3 inputs per neuron
    with pytest.raises(ValueError, match="alpha_out"):
        NNRelief(alpha_out=1.5)


@pytest.mark.parametrize("backward", [False, True])
def test_backward_budget_goes_to_read_neurons_at_high_sparsity(backward):
    from pruning.han import find_dead_neurons

    model = build_model("lenet-300-100", seed=0)
    NNRelief(samples=64, backward=backward).prune(model, 0.02, SimpleNamespace(train=blobs(64, 1)))
    total = sum(m.weight.numel() for m in (model.fc1, model.fc2, model.fc3))
    kept = sum(m.weight_mask.sum().item() for m in (model.fc1, model.fc2, model.fc3))
    assert 0.019 * total <= kept <= 0.02 * total
    # Neurons that keep inputs although nothing reads them: weights wasted from the budget.
    wasted = sum(len(set(d.no_outputs) - set(d.no_inputs)) for d in find_dead_neurons(model))
    assert (wasted == 0) if backward else (wasted > 0)
