"""Workload extraction: layers in execution order, shapes, masks, measured densities, errors."""

import numpy as np
import pytest
import torch
from torch import nn

from pruning.magnitude import prune_to_density
from pruning.zoo import build_model, input_shape
from sim.workload import WorkloadError, extract_workload


def test_lenet5_layers_in_execution_order_with_shapes():
    workload = extract_workload(build_model("lenet-5"), input_shape("lenet-5"), name="lenet-5")
    assert [layer.name for layer in workload.layers] == [
        "conv1", "pool1", "conv2", "pool2", "flatten", "fc1", "relu1", "fc2"]
    assert [layer.kind for layer in workload.layers] == [
        "conv2d", "maxpool2d", "conv2d", "maxpool2d", "flatten", "linear", "relu", "linear"]
    conv1, conv2 = workload.layer("conv1"), workload.layer("conv2")
    assert conv1.input_shape == (1, 28, 28) and conv1.output_shape == (20, 24, 24)
    assert conv2.input_shape == (20, 12, 12) and conv2.output_shape == (50, 8, 8)
    assert conv1.kernel_size == (5, 5) and conv1.stride == (1, 1) and conv1.groups == 1
    # Han Table 3: conv1 576K FLOP = 2 × 288,000 MACs; conv2 3200K = 2 × 1.6M; fc1 800K.
    assert conv1.dense_macs == 288_000 and conv2.dense_macs == 1_600_000
    assert workload.layer("fc1").dense_macs == 400_000
    # Weightless layers are recorded but cost no MACs.
    assert workload.layer("pool1").dense_macs == 0 and not workload.layer("pool1").has_weights
    assert [layer.name for layer in workload.compute_layers] == ["conv1", "conv2", "fc1", "fc2"]


def test_alexnet_grouped_conv_shapes_and_macs():
    workload = extract_workload(build_model("alexnet"), input_shape("alexnet"), keep_activations=False)
    conv2 = workload.layer("conv2")
    assert conv2.groups == 2 and conv2.padding == (2, 2)
    assert conv2.weight.shape == (256, 48, 5, 5)
    assert conv2.output_shape == (256, 27, 27)
    assert conv2.dense_macs == 27 * 27 * 256 * 48 * 25  # Han Table 4: 448M FLOP
    assert workload.layer("fc1").input_shape == (9216,)


def test_mask_comes_from_torch_prune_and_density_is_measured():
    model = build_model("lenet-300-100")
    prune_to_density(model.fc1, 0.1)
    sample = torch.randn(4, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    sample[:, :, :14] = 0.0  # top half of every image black: input density 1/2
    workload = extract_workload(model, sample=sample)
    fc1 = workload.layer("fc1")
    assert np.array_equal(fc1.mask, model.fc1.weight_mask.numpy().astype(bool))
    assert fc1.nonzero_weights == round(0.1 * 235_200)
    assert fc1.input_density == pytest.approx(0.5)
    # fc2's input is relu1's output: its measured density equals the fraction of positive fc1 outputs.
    with torch.no_grad():
        hidden = torch.relu(model.fc1(sample.flatten(1)))
    assert workload.layer("fc2").input_density == pytest.approx(float((hidden > 0).float().mean()))
    # Without a prune mask, exact zeros are the pruned weights.
    plain = nn.Sequential(nn.Linear(3, 2, bias=False))
    with torch.no_grad():
        plain[0].weight.copy_(torch.tensor([[0.0, 1.0, 0.0], [2.0, 0.0, 3.0]]))
    layer = extract_workload(plain, (3,)).compute_layers[0]
    assert layer.mask.tolist() == [[False, True, False], [True, False, True]]


def test_module_with_unmodellable_weights_is_an_error_naming_it():
    class Tagger(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = nn.LSTM(4, 4, batch_first=True)
            self.head = nn.Linear(4, 2)

        def forward(self, x):
            return self.head(self.encoder(x)[0])

    with pytest.raises(WorkloadError, match=r"'encoder' \(LSTM\)"):
        extract_workload(Tagger(), (3, 4))


def test_densities_outside_unit_interval_and_unknown_layers_rejected():
    workload = extract_workload(build_model("lenet-300-100"), (1, 28, 28))
    with pytest.raises(WorkloadError, match="outside"):
        workload.with_input_densities({"fc1": 1.5, "fc2": 1.0, "fc3": 1.0})
    with pytest.raises(WorkloadError, match="unknown"):
        workload.with_input_densities({"fc1": 1.0, "fc2": 1.0, "fc9": 1.0})
