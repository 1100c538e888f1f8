"""Magnitude pruning and Han et al. 2015 (NIPS) density profiles, Tables 2-5."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pruning.magnitude import (make_permanent, prunable_layers, prune_to_density,
                               weight_density, zero_to_density)
from pruning.profiles import (DensityProfile, LayerDensity, ProfileError, apply_profile,
                              available_profiles, han2015_table, load_profile,
                              load_profile_file)
from pruning.zoo import MODEL_NAMES, build_model


def _linear(out_f: int, in_f: int, seed: int = 0) -> nn.Linear:
    layer = nn.Linear(in_f, out_f)
    with torch.no_grad():
        layer.weight.copy_(torch.randn(out_f, in_f, generator=torch.Generator().manual_seed(seed)))
    return layer


# ---------------------------------------------------------------- magnitude pruning

@pytest.mark.parametrize("density", [0.0, 0.01, 0.08, 0.38, 0.5, 0.999, 1.0])
def test_prune_keeps_exactly_round_dn_largest(density):
    layer = _linear(30, 41)        # n = 1230: round(0.38 * 1230) = 467, round(0.01 * n) = 12
    w = layer.weight.detach().clone()
    n = w.numel()
    prune_to_density(layer, density)
    k = round(density * n)
    assert hasattr(layer, "weight_orig") and hasattr(layer, "weight_mask")
    assert torch.equal(layer.weight_orig, w)            # the dense weights are kept
    mask = layer.weight_mask.bool()
    assert int(mask.sum()) == k
    assert weight_density(layer) == k / n
    assert torch.equal(layer.weight, w * layer.weight_mask)
    if 0 < k < n:
        # every kept weight is at least as large as every pruned one
        assert w[mask].abs().min() >= w[~mask].abs().max()
        # and they are the k largest: same set as a full sort gives (no ties in randn)
        top = torch.zeros(n, dtype=torch.bool)
        top[w.abs().flatten().argsort(descending=True)[:k]] = True
        assert torch.equal(mask.flatten(), top)


def test_prune_conv_and_ties_deterministic():
    conv = nn.Conv2d(2, 3, 2)                           # n = 24
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([1.0, -1.0] * 12).reshape(3, 2, 2, 2))
        conv.weight[0, 0, 0, 0] = 5.0
    prune_to_density(conv, 0.25)                        # keep 6: the 5.0, then ties by index
    kept = conv.weight_mask.flatten().nonzero().flatten().tolist()
    assert kept == [0, 1, 2, 3, 4, 5]
    again = nn.Conv2d(2, 3, 2)
    with torch.no_grad():
        again.weight.copy_(conv.weight_orig)
    prune_to_density(again, 0.25)
    assert torch.equal(again.weight_mask, conv.weight_mask)


@pytest.mark.parametrize("bad", [1.5, -0.1, float("nan"), "0.5", True])
def test_prune_rejects_bad_density(bad):
    layer = _linear(4, 5)
    with pytest.raises(ValueError, match="density") as info:
        prune_to_density(layer, bad)
    assert repr(bad) in str(info.value)
    assert not hasattr(layer, "weight_mask")


def test_prune_again_combines_with_existing_mask():
    layer = _linear(20, 50)                             # n = 1000
    w = layer.weight.detach().clone()
    prune_to_density(layer, 0.5)
    first = layer.weight_mask.clone()
    prune_to_density(layer, 0.2)                        # absolute: 200 of 1000 remain
    assert int(layer.weight_mask.sum()) == 200
    assert torch.all(layer.weight_mask <= first)        # nothing revived
    assert torch.equal(layer.weight_orig, w)
    top = torch.zeros(1000, dtype=torch.bool)
    top[w.abs().flatten().argsort(descending=True)[:200]] = True
    assert torch.equal(layer.weight_mask.bool().flatten(), top)
    # asking for more than survive keeps the survivors, revives none
    prune_to_density(layer, 0.9)
    assert int(layer.weight_mask.sum()) == 200


def test_zero_to_density_keeps_what_the_mask_keeps():
    """The workload-only path writes the zeros itself: the same kept weights as torch's mask
    (ties included), a fresh tensor (the old one untouched), and no reparametrisation."""
    conv = nn.Conv2d(2, 3, 2)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([1.0, -1.0] * 12).reshape(3, 2, 2, 2))
        conv.weight[0, 0, 0, 0] = 5.0
    old = conv.weight
    zero_to_density(conv, 0.25)                         # keep 6: the 5.0, then ties by index
    assert conv.weight.flatten().nonzero().flatten().tolist() == [0, 1, 2, 3, 4, 5]
    assert conv.weight.flatten()[:6].tolist() == [5.0, -1.0, 1.0, -1.0, 1.0, -1.0]
    assert float(old.detach().abs().sum()) == 28.0      # the dense tensor was not written
    assert isinstance(conv.weight, nn.Parameter) and not hasattr(conv, "weight_orig")
    assert not conv._forward_pre_hooks
    for density in (0.0, 0.01, 0.38, 1.0):
        masked = _linear(30, 41)
        zeroed = _linear(30, 41)
        prune_to_density(masked, density)
        zero_to_density(zeroed, density)
        assert torch.equal(zeroed.weight, masked.weight_orig * masked.weight_mask)
    with pytest.raises(ValueError, match="prune_to_density"):
        zero_to_density(masked, 0.1)                    # already masked: refused
    with pytest.raises(ValueError, match="1.5"):
        zero_to_density(_linear(4, 5), 1.5)


def test_make_permanent():
    model = build_model("lenet-300-100")
    prune_to_density(model.fc1, 0.08)
    prune_to_density(model.fc2, 0.09)
    expected = model.fc1.weight_orig.detach() * model.fc1.weight_mask
    make_permanent(model)
    assert isinstance(model.fc1.weight, nn.Parameter)
    assert not hasattr(model.fc1, "weight_mask") and not hasattr(model.fc1, "weight_orig")
    assert torch.equal(model.fc1.weight, expected)
    assert weight_density(model.fc1) == round(0.08 * 235_200) / 235_200
    assert weight_density(model.fc3) == 1.0             # untouched layer stays dense


def test_weight_density_counts_plain_zeros():
    layer = _linear(10, 10)
    with torch.no_grad():
        layer.weight[:3] = 0.0
    assert weight_density(layer) == 0.7


def test_prunable_layers_in_model_order():
    assert list(prunable_layers(build_model("lenet-5"))) == ["conv1", "conv2", "fc1", "fc2"]


# ---------------------------------------------------------------- Han 2015 profiles

def test_available_profiles():
    assert available_profiles() == ("han2015",)


def test_alexnet_profile_matches_table4():
    p = load_profile("han2015", "alexnet")
    assert (p.name, p.model) == ("han2015", "alexnet")
    assert "NIPS 2015, Table 4" in p.source and "Han" in p.source
    assert p.layer("conv2") == LayerDensity("conv2", weight_density=0.38,
                                            input_density=0.88, output_density=0.52)
    assert p.layer("conv1") == LayerDensity("conv1", 0.84, 1.0, 0.88)
    assert p.layer("fc1") == LayerDensity("fc1", 0.09, 0.34, 0.36)
    assert p.layer("fc3") == LayerDensity("fc3", 0.25, 0.40, 1.0)
    assert [l.layer for l in p.layers] == ["conv1", "conv2", "conv3", "conv4", "conv5",
                                           "fc1", "fc2", "fc3"]


def test_profiles_follow_table_rows_for_every_network():
    for model in MODEL_NAMES:
        rows = han2015_table(model)
        assert rows[-1]["layer"] == "total"
        profile = load_profile("han2015", model)
        previous_act = 100
        for row, entry in zip(rows[:-1], profile.layers, strict=True):
            assert entry == LayerDensity(row["layer"], row["weights_pct"] / 100,
                                         previous_act / 100, row["act_pct"] / 100)
            previous_act = row["act_pct"]


@pytest.mark.parametrize("model", MODEL_NAMES)
def test_table_flop_pct_is_weights_times_input_density(model):
    """Han's FLOP% = Weights% x input density, to within one printed point: a check on the
    transcription (a misplaced Act% or Weights% breaks it)."""
    profile = load_profile("han2015", model)
    rows = han2015_table(model)
    assert rows[0]["flop_pct"] == rows[0]["weights_pct"]       # dense first input
    for row, entry in zip(rows[:-1], profile.layers):
        predicted = 100 * entry.weight_density * entry.input_density
        assert abs(predicted - row["flop_pct"]) <= 1.0, (model, row)


def test_printed_rows_spot_values():
    assert han2015_table("lenet-300-100")[0] == {
        "layer": "fc1", "weights": "235K", "flop": "470K",
        "act_pct": 38, "weights_pct": 8, "flop_pct": 8}
    assert han2015_table("lenet-5")[-1] == {
        "layer": "total", "weights": "431K", "flop": "4586K",
        "act_pct": 77, "weights_pct": 8, "flop_pct": 16}
    vgg = han2015_table("vgg-16")
    assert vgg[-1]["weights_pct"] == 7.5 and vgg[-1]["flop"] == "30.9B"
    assert [r["weights"] for r in han2015_table("alexnet")] == \
        ["35K", "307K", "885K", "663K", "442K", "38M", "17M", "4M", "61M"]


@pytest.mark.parametrize("name,model", [("han2016", "alexnet"), ("han2015", "resnet-50")])
def test_unknown_profile_or_model(name, model):
    with pytest.raises(ProfileError) as info:
        load_profile(name, model)
    message = str(info.value)
    bad = name if name != "han2015" else model
    assert repr(bad) in message
    valid = "han2015" if name != "han2015" else "lenet-300-100, lenet-5, alexnet, vgg-16"
    assert valid in message


def test_han2015_table_unknown_model():
    with pytest.raises(ProfileError, match="'resnet-50'"):
        han2015_table("resnet-50")


@pytest.mark.parametrize("model", ["lenet-300-100", "lenet-5", "alexnet"])
def test_apply_profile_hits_each_layer_density(model):
    net = build_model(model)
    profile = load_profile("han2015", model)
    inputs = apply_profile(net, profile)
    assert list(inputs) == [l.layer for l in profile.layers]
    for name, layer in prunable_layers(net).items():
        n = layer.weight.numel()
        target = profile.layer(name).weight_density
        assert abs(weight_density(layer) - target) <= 1 / n, name
        assert int(layer.weight_mask.sum()) == round(target * n)
        assert inputs[name] == profile.layer(name).input_density
    if model == "alexnet":
        assert inputs["conv2"] == 0.88 and inputs["conv1"] == 1.0
        # Kept weights overall: Table 4 prints 11% (6.8M of 61M).
        kept = sum(int(l.weight_mask.sum()) for l in prunable_layers(net).values())
        assert round(100 * kept / 60_954_656) == 11


@pytest.mark.parametrize("model", ["lenet-5", "alexnet"])
def test_apply_profile_without_reparametrisation_keeps_the_same_weights(model):
    masked, zeroed = build_model(model, seed=3), build_model(model, seed=3)
    profile = load_profile("han2015", model)
    assert apply_profile(masked, profile) == apply_profile(zeroed, profile, reparametrize=False)
    for name, layer in prunable_layers(zeroed).items():
        reference = prunable_layers(masked)[name]
        assert not hasattr(layer, "weight_mask")
        assert torch.equal(layer.weight, reference.weight_orig * reference.weight_mask), name


def _renamed(profile: DensityProfile, old: str, new: str) -> DensityProfile:
    layers = tuple(LayerDensity(new if l.layer == old else l.layer, l.weight_density,
                                l.input_density, l.output_density) for l in profile.layers)
    return DensityProfile(profile.name, profile.model, profile.source, layers)


def test_mismatched_layers_raise_and_prune_nothing():
    net = build_model("lenet-5")
    profile = _renamed(load_profile("han2015", "lenet-5"), "fc2", "ip2")
    with pytest.raises(ProfileError) as info:
        apply_profile(net, profile)
    assert "'fc2'" in str(info.value) and "'ip2'" in str(info.value)
    for layer in prunable_layers(net).values():
        assert not hasattr(layer, "weight_mask")
        assert weight_density(layer) == 1.0
    # a profile for another network: all names reported, nothing pruned
    with pytest.raises(ProfileError, match="conv1"):
        apply_profile(net, load_profile("han2015", "lenet-300-100"))
    assert not any(hasattr(l, "weight_mask") for l in prunable_layers(net).values())


# ---------------------------------------------------------------- user profile files

USER_FILE = """\
name: mine
networks:
  lenet-300-100:
    source: my experiment
    layers:
      - {layer: fc1, weight_density: 0.10, output_density: 0.5}
      - {layer: fc2, weights_pct: 20, act_pct: 60, input_density: 0.45}
      - {layer: fc3, weight_density: WEIGHT, output_density: 1.0}
"""


def test_user_profile_file(tmp_path):
    path = tmp_path / "prof.yaml"
    path.write_text(USER_FILE.replace("WEIGHT", "0.3"))
    p = load_profile_file(path, "lenet-300-100")
    assert (p.name, p.source) == ("mine", "my experiment")
    assert p.layers == (LayerDensity("fc1", 0.10, 1.0, 0.5),
                        LayerDensity("fc2", 0.20, 0.45, 0.6),
                        LayerDensity("fc3", 0.3, 0.6, 1.0))
    net = build_model("lenet-300-100")
    assert apply_profile(net, p) == {"fc1": 1.0, "fc2": 0.45, "fc3": 0.6}
    assert weight_density(net.fc3) == 0.3


def test_user_profile_density_out_of_range(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(USER_FILE.replace("WEIGHT", "1.2"))
    with pytest.raises(ProfileError) as info:
        load_profile_file(path, "lenet-300-100")
    message = str(info.value)
    assert str(path) in message and "'fc3'" in message and "'weight_density'" in message
    assert "1.2" in message


def test_user_profile_percent_out_of_range_and_other_errors(tmp_path):
    path = tmp_path / "pct.yaml"
    path.write_text(USER_FILE.replace("weights_pct: 20", "weights_pct: 120")
                    .replace("WEIGHT", "0.3"))
    with pytest.raises(ProfileError, match=r"'fc2'.*'weights_pct' = 120"):
        load_profile_file(path, "lenet-300-100")
    path.write_text(USER_FILE.replace("WEIGHT", "0.3"))
    with pytest.raises(ProfileError, match="'alexnet'.*valid: lenet-300-100"):
        load_profile_file(path, "alexnet")
    path.write_text(USER_FILE.replace("weight_density: WEIGHT, ", ""))
    with pytest.raises(ProfileError, match="'fc3' lacks field 'weights_pct'"):
        load_profile_file(path, "lenet-300-100")
    with pytest.raises(ProfileError, match="cannot read"):
        load_profile_file(tmp_path / "missing.yaml", "lenet-300-100")
