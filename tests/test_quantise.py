"""Fixed-point quantisation (integer inference, exact), trained weight sharing (Deep Compression
§3) and pricing at the real widths."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from hwmodels.energy import UnknownEnergyError
from pruning.export import export_model
from pruning.formats import relative_index_entries
from pruning.han import copy_model
from pruning.magnitude import prune_to_density
from pruning.quantise import quantise_model
from pruning.sharing import compressed_size, fine_tune_shared, kmeans_1d, share_weights, sharing_rate
from pruning.train import TrainConfig
from pruning.zoo import build_model
from sim.api import estimate_workloads, measured_workloads
from sim.estimator import totals
from sim.numerics import quantize as sim_quantize
from tests.synthetic import blobs


def _round_clip(x: np.ndarray, scale, qmax: int) -> np.ndarray:
    return np.clip(np.rint(x / scale), -qmax, qmax).astype(np.int64)


@pytest.mark.parametrize("per_channel", [False, True])
def test_linear_inference_equals_an_integer_reference(per_channel):
    torch.manual_seed(0)
    layer = nn.Linear(20, 7)
    x = torch.randn(16, 20)
    quantised = quantise_model(nn.Sequential(layer), 8, x, per_channel=per_channel)[0]
    w = layer.weight.detach().double().numpy()
    peak = np.abs(w).max(axis=1) if per_channel else np.abs(w).max()
    s_w = peak / 127
    s_x = np.abs(x.double().numpy()).max() / 127
    q_w = _round_clip(w, s_w[:, None] if per_channel else s_w, 127)
    q_x = _round_clip(x.double().numpy(), s_x, 127)
    q_b = np.rint(layer.bias.detach().double().numpy() / (s_w * s_x)).astype(np.int64)
    acc = q_x @ q_w.T + q_b                                   # int64 all the way
    assert np.array_equal(quantised.accumulate(x).numpy(), acc)
    assert np.array_equal(quantised(x).numpy(), (acc * (s_w * s_x)).astype(np.float32))
    assert np.abs(acc).max() > 1000                           # a real accumulation, not zeros
    if not per_channel:
        # The simulator's own quantiser (sim.numerics) gives the same integer weights.
        assert np.array_equal(sim_quantize(w, 8)[0], q_w)


def test_conv_inference_equals_an_integer_reference_at_16_bits():
    torch.manual_seed(1)
    conv = nn.Conv2d(2, 3, 3, padding=1)
    x = torch.randn(2, 2, 5, 5)
    quantised = quantise_model(nn.Sequential(conv), 16, x)[0]
    q = 32767
    w, xs = conv.weight.detach().double().numpy(), x.double().numpy()
    s_w, s_x = np.abs(w).max() / q, np.abs(xs).max() / q
    q_w, q_x = _round_clip(w, s_w, q), _round_clip(xs, s_x, q)
    q_b = np.rint(conv.bias.detach().double().numpy() / (s_w * s_x)).astype(np.int64)
    padded = np.pad(q_x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    acc = np.zeros((2, 3, 5, 5), dtype=np.int64)
    for n in range(2):
        for o in range(3):
            for i in range(5):
                for j in range(5):
                    acc[n, o, i, j] = int((padded[n, :, i:i + 3, j:j + 3] * q_w[o]).sum()) + q_b[o]
    assert np.array_equal(quantised.accumulate(x).numpy(), acc)
    assert np.abs(acc).max() > 2 ** 24                        # beyond float32's exact integers


def test_quantised_pruned_lenet_keeps_zeros_and_predictions():
    model = build_model("lenet-300-100", seed=0)
    for layer in (model.fc1, model.fc2):
        prune_to_density(layer, 0.1)
    x = blobs(200, 1).tensors[0]
    quantised = quantise_model(model, 8, x)
    assert torch.equal(quantised.fc1.weight == 0, model.fc1.weight_mask == 0)
    agree = (quantised(x).argmax(1) == model(x).argmax(1)).float().mean().item()
    assert agree >= 0.97
    with pytest.raises(ValueError, match="bits"):
        quantise_model(model, 1, x)


def test_kmeans_1d_on_hand_data():
    centroids, index = kmeans_1d(torch.tensor([0.0, 1, 2, 10, 11, 12]), 2)
    assert centroids.tolist() == [1.0, 11.0] and index.tolist() == [0, 0, 0, 1, 1, 1]
    # Deep Compression Fig. 3: 16 weights of 32 bits shared by 4 values -> 3.2x.
    assert sharing_rate(16, 32, 4) == pytest.approx(3.2)


@pytest.mark.parametrize("bits", [2, 5, 8])
def test_codebook_has_at_most_2_to_the_b_values_after_fine_tuning(bits):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 40), nn.ReLU(), nn.Linear(40, 2))
    prune_to_density(model[1], 0.3)                           # one pruned layer, one dense
    shared = share_weights(model, bits)
    before = {n: c.clone() for n, c in shared.codebooks.items()}
    fine_tune_shared(model, shared, SimpleNamespace(train=blobs(64, 1), val=None),
                     TrainConfig(epochs=1, lr=0.05, batch_size=16), progress=False)
    pruned = model[1].weight_orig * model[1].weight_mask
    assert len(torch.unique(pruned[pruned != 0])) <= 2 ** bits
    assert torch.all(pruned[model[1].weight_mask == 0] == 0)
    assert len(torch.unique(model[3].weight)) <= 2 ** bits
    assert not torch.equal(before["1"], shared.codebooks["1"])   # the centroids were trained


def test_centroid_gradient_is_the_sum_of_its_weights_gradients():
    model = nn.Sequential(nn.Linear(4, 1, bias=False))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[0.0, 1.0, 2.0, 10.0]]))
    shared = share_weights(model, 2)
    # Linear init 1, 4, 7, 10; 1 and 2 share centroid 0 (-> their mean 1.5), 10 is centroid 3;
    # the zero weight is pruned (index −1); empty centroids keep their place.
    assert shared.indices["0"].tolist() == [[-1, 0, 0, 3]]
    assert shared.codebooks["0"].tolist() == [1.5, 4.0, 7.0, 10.0]
    assert model[0].weight.tolist() == [[0.0, 1.5, 1.5, 10.0]]
    model[0].weight.grad = torch.tensor([[9.0, 2.0, 3.0, 5.0]])
    shared.lr = 0.1
    shared.before_step(model)
    assert shared._grads["0"].tolist() == [5.0, 0.0, 0.0, 5.0]
    shared.after_step(model)
    assert model[0].weight[0].tolist() == pytest.approx([0.0, 1.0, 1.0, 9.5])


def test_compressed_size_and_export_carry_the_widths(tmp_path):
    model = nn.Sequential(nn.Linear(40, 4, bias=False))
    with torch.no_grad():
        model[0].weight.copy_(torch.arange(1, 161, dtype=torch.float32).reshape(4, 40))
    prune_to_density(model[0], 0.1)                               # keeps 16 of 160
    share_weights(model, 3)
    row = compressed_size(model)[0]
    # Kept: the 16 largest = row 3, columns 24..39 (one entry per column, no gap over 31):
    # 16 × (3 + 5) + 41 pointers × 5 bits (entries 16 -> 5-bit pointers) + 8 × 32 codebook.
    assert (row["nonzeros"], row["sparse_bits"], row["codebook_bits"]) == (16, 16 * 8 + 41 * 5, 256)
    assert row["ratio"] == pytest.approx(160 * 32 / (16 * 8 + 41 * 5 + 256))
    # Huffman (Deep Compression §4): k-means pairs the kept values 145..160 into 8 centroids of 2
    # weights each, so 8 equally frequent indices code in 3 bits (16 × 3 = 48); every stored entry
    # has gap 3 (row 3 of its column): one symbol, a 0-bit code. Tables 8 + 1 lengths × 8 bits.
    assert row["huffman_bits"] == 48 + 0 + (8 + 1) * 8 + 41 * 5 + 256
    report = export_model(model, tmp_path / "m.npz")
    assert report["0"]["value_bits"] == 3 and report["0"]["codebook_bits"] == 256
    # Quantised on top of sharing, the layer stays shared: 3-bit indices into a codebook of
    # 8 values that are now 8-bit fixed point.
    fixed = quantise_model(model, 8, torch.randn(4, 40))
    kept = fixed[0].weight[fixed[0].weight != 0]
    assert len(kept) == 16 and len(torch.unique(kept)) <= 2 ** 3
    report = export_model(fixed, tmp_path / "q.npz")["0"]
    assert (report["value_bits"], report["codebook_bits"]) == (3, 8 * 8)
    assert compressed_size(fixed)[0]["codebook_bits"] == 8 * 8
    plain = nn.Sequential(nn.Linear(40, 4, bias=False))
    prune_to_density(plain[0], 0.1)
    assert export_model(quantise_model(plain, 8, torch.randn(4, 40)), tmp_path / "p.npz")["0"]["value_bits"] == 8


def test_estimator_prices_fixed_point_and_shared_widths():
    model = build_model("lenet-300-100", seed=0)
    for layer in (model.fc1, model.fc2, model.fc3):
        prune_to_density(layer, 0.25)
    x = blobs(100, 2).tensors[0]
    work = measured_workloads({"fp32": model, "int8": quantise_model(model, 8, x)}, x, "lenet-300-100")
    results = totals(estimate_workloads(work, "han45nm")).set_index("variant")
    mac = results["energy_mac_pj"]
    executed = results["executed_macs"]
    # Horowitz: fp32 MAC 3.7 + 0.9 pJ; an 8-bit fixed-point MAC is an int8 multiply (0.2 pJ) and
    # an add in han45nm's 32-bit accumulator (int32 add, 0.1 pJ).
    assert mac["fp32"] == pytest.approx(4.6 * executed["fp32"])
    assert mac["int8"] == pytest.approx(0.3 * executed["int8"])
    # 75% pruned + 8-bit values: stored weight bits (8 + 5 index) vs (32 + 5).
    ratio = results.at["fp32", "weight_storage_bits"] / results.at["int8", "weight_storage_bits"]
    assert ratio == pytest.approx(37 / 13, rel=1e-9)
    # 5-bit shared weights: each stored entry 5 + 5 index bits, plus 32 codebook values of 32 bits
    # per layer; the MACs stay fp32.
    shared = copy_model(model)
    share_weights(shared, 5)
    layers = measured_workloads({"s": shared}, x, "m")["s"].compute_layers
    stored = estimate_workloads(measured_workloads({"s": shared}, x, "m"), "han45nm")["weight_storage_bits"]
    expected = [sum(relative_index_entries(layer.mask, 5)) * 10 + 32 * 32 for layer in layers]
    assert stored.tolist() == expected
    with pytest.raises(UnknownEnergyError, match="layer 'fc1'.*no 16-bit int mult.*int mult: 8, 32"):
        estimate_workloads(measured_workloads({"int16": quantise_model(model, 16, x)}, x, "m"), "han45nm")
