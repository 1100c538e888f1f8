"""Numerics: every simulated layer's output equals the reference, exactly for int, within 1e-5
relative for fp32 accumulation; the references agree with each other; overflow semantics."""

import dataclasses

import numpy as np
import pytest

from hwmodels.hardware import Precision, load_hardware
from pruning.magnitude import prune_to_density
from pruning.profiles import load_profile
from pruning.zoo import build_model, input_shape
from sim.api import profile_workloads, resolve_profile
from sim.numerics import (NumericsError, Operands, array_products, check, exact_products, prepare, quantize,
                          reference_products, relative_error, simulate_numerics)
from sim.reference import csr, dense_reference, gemm_operands, sparse_reference
from sim.simulate import simulate_layer
from sim.workload import extract_workload
from test_systolic import conv_workload, systolic_hw

FP16 = ("systolic-ws-32x32", "systolic-os-32x32", "systolic-is-32x32")


def _with_precision(name: str, precision: Precision):
    hw = load_hardware(name)
    return hw.with_changes(mac_array=dataclasses.replace(hw.mac_array, precision=precision))


ARRAYS = [load_hardware(name).mac_array for name in FP16] + [
    _with_precision("systolic-ws-32x32", Precision("fp", 32, 32)).mac_array,
    _with_precision("systolic-is-32x32", Precision("int", 8, 32, "saturate")).mac_array,
    _with_precision("systolic-os-32x32", Precision("int", 8, 32, "wrap")).mac_array,
]


def _check_layer(layer, array):
    report = simulate_numerics(layer, array)
    if array.precision.dtype == "int":
        assert report.exact and report.relative_error == 0.0, layer.name
    else:
        assert report.relative_error <= 1e-5, layer.name
    return report


def _reference_agrees_with_torch(layer):
    """The im2col + CSR reference and torch's conv2d/linear give the same float64 products."""
    products = np.concatenate([sparse_reference(w, x) for w, x in gemm_operands(layer)], axis=0)
    dense = dense_reference(layer, layer.weight, layer.input_sample)
    assert relative_error(products, dense) <= 1e-12, layer.name


@pytest.mark.parametrize("model", ["lenet-300-100", "lenet-5"])
def test_lenets_every_layer_every_array_dense_and_pruned(model):
    workloads = profile_workloads(model, resolve_profile(model, "han2015", None), seed=0)
    for variant, workload in workloads.items():
        for layer in workload.compute_layers:
            _reference_agrees_with_torch(layer)
            for array in ARRAYS:
                _check_layer(layer, array)


@pytest.fixture(scope="module")
def alexnet():
    return profile_workloads("alexnet", resolve_profile("alexnet", "han2015", None), seed=0)


@pytest.mark.parametrize("layer_name, preset", [("conv1", "systolic-os-32x32"), ("conv2", "systolic-ws-32x32"),
                                                ("conv4", "systolic-is-32x32"), ("fc3", "systolic-ws-128x128")])
def test_alexnet_layers_dense_and_pruned(alexnet, layer_name, preset):
    array = load_hardware(preset).mac_array
    for workload in alexnet.values():
        layer = workload.layer(layer_name)
        if layer_name == "conv2":  # grouped (2 GPUs in Caffe): one GEMM per group
            assert layer.groups == 2 and len(gemm_operands(layer)) == 2
            _reference_agrees_with_torch(layer)
        _check_layer(layer, array)
    int8 = dataclasses.replace(array, precision=Precision("int", 8, 32, "saturate"))
    _check_layer(alexnet["pruned"].layer(layer_name), int8)


@pytest.fixture(scope="module")
def vgg_layers():
    """VGG-16 up to conv5_1 (its layers' real inputs, no 100M-weight FC layers), dense and with
    Han's per-layer densities applied by magnitude, as apply_profile does for the whole net."""
    model = build_model("vgg-16", seed=0)
    names = [name for name, _ in model.named_children()]
    head = model[:names.index("conv5_1") + 1]
    dense = extract_workload(head, input_shape("vgg-16"), name="vgg-16", seed=0)
    profile = load_profile("han2015", "vgg-16")
    for name, module in head.named_children():
        if hasattr(module, "weight"):
            prune_to_density(module, profile.layer(name).weight_density)
    pruned = extract_workload(head, input_shape("vgg-16"), name="vgg-16", seed=0)
    return {"dense": dense, "pruned": pruned}


@pytest.mark.parametrize("layer_name, preset", [("conv1_1", "systolic-is-32x32"), ("conv5_1", "systolic-os-32x32"),
                                                ("conv5_1", "systolic-ws-128x128")])
def test_vgg16_layers_dense_and_pruned(vgg_layers, layer_name, preset):
    array = load_hardware(preset).mac_array
    for variant, workload in vgg_layers.items():
        layer = workload.layer(layer_name)
        if variant == "pruned":
            assert layer.weight_density < 0.6
        _check_layer(layer, array)


def test_conv_options_lower_like_torch():
    for kwargs in (dict(stride=2, padding=1), dict(dilation=2, padding=2), dict(groups=4, padding=1)):
        layer = conv_workload(8, 12, 3, 11, density=0.4, **kwargs).compute_layers[0]
        _reference_agrees_with_torch(layer)
        for array in ARRAYS:
            _check_layer(layer, array)


def test_symmetric_quantisation():
    q, scale = quantize(np.array([-2.0, -1.0, 0.0, 0.5, 1.27]), 8)
    assert scale == pytest.approx(2.0 / 127)
    assert q.tolist() == [-127, -64, 0, 32, 81]  # rint(1.27 * 63.5) = 81, rint(31.75) = 32
    assert quantize(np.zeros(3), 8)[1] == 1.0


def test_quantisation_in_pieces_equals_the_formula():
    # quantize works through a float64 buffer piece by piece; spanning several pieces it must give
    # rint(x / s) clipped, computed on the whole array at once (x / s in float64).
    x = np.random.default_rng(0).standard_normal((3, 70001)).astype(np.float32)
    q, scale = quantize(x, 16)
    assert scale == max(float(x.max()), -float(x.min())) / 32767
    assert q.dtype == np.int32 and q.shape == x.shape
    assert np.array_equal(q, np.clip(np.rint(x.astype(np.float64) / scale), -32767, 32767))


def test_exact_products_are_integer_exact():
    # Sums up to K * 32767^2 (~2^46 for K = 25088, VGG-16's fc6) are exact in float64; int64
    # matmul is the second implementation. Several row and column blocks.
    rng = np.random.default_rng(1)
    w = rng.integers(-32767, 32768, (700, 1600)).astype(np.int32)
    x = rng.integers(-32767, 32768, (1600, 900)).astype(np.int32)
    assert np.array_equal(exact_products(w, x), w.astype(np.int64) @ x.astype(np.int64))
    big = np.full((2, 25088), 32767, np.int32)
    assert exact_products(big, big[:1].T).tolist() == [[25088 * 32767 ** 2]] * 2


@pytest.mark.parametrize("density", [0.0, 0.05, 0.5, 0.97, 1.0])
def test_csr_equals_scipys_own(density):
    # Mostly-zero and mostly-non-zero blocks take different gathers; both must build scipy's CSR.
    import scipy.sparse

    rng = np.random.default_rng(2)
    block = ((rng.random((300, 257)) < density) * rng.integers(-9, 10, (300, 257))).astype(np.int32)
    ours, theirs = csr(block, np.float64), scipy.sparse.csr_array(block.astype(np.float64))
    for field in ("data", "indices", "indptr"):
        assert np.array_equal(getattr(ours, field), getattr(theirs, field)), field
    assert ours.data.dtype == np.float64 and ours.shape == block.shape


def _overflow_example(overflow: str):
    # One output, K = 8 products of 127 * 127 = 16129: exact sum 129,032. A 16-bit accumulator,
    # WS on a 4-row array: two folds of 4 products, each partial sum 64,516.
    array = systolic_hw("ws", precision=Precision("int", 8, 16, overflow)).mac_array
    operands = Operands([(np.full((1, 8), 127, np.int32), np.full((8, 1), 127, np.int32))])
    return array, operands


def test_wrapping_accumulator_equals_the_wrapped_exact_sum():
    array, operands = _overflow_example("wrap")
    out, midway = array_products(operands, array)
    # 129,032 - 2 * 65,536 = -2,040 (two's complement, 16 bits), whatever the fold order.
    assert out.tolist() == [[-2040]] and not midway.any()
    assert reference_products(operands, array.precision).tolist() == [[-2040]]


def test_saturating_accumulator_clamps_at_every_fold():
    array, operands = _overflow_example("saturate")
    out, midway = array_products(operands, array)
    # First fold: 64,516 -> 32,767 (clamped, before the last fold); second: 32,767 + 64,516 -> 32,767.
    assert out.tolist() == [[32767]] and midway.tolist() == [[True]]
    report = check("toy", out, reference_products(operands, array.precision), array.precision, midway)
    assert report.exact and report.saturated_midway == 1


def test_a_mismatch_raises_numerics_error_naming_the_layer(monkeypatch):
    layer = conv_workload(3, 5, 3, 6).compute_layers[0]
    array = load_hardware("systolic-ws-32x32").mac_array
    good, _ = array_products(prepare(layer, array.precision), array)
    with pytest.raises(NumericsError, match="layer 'conv'.*relative error"):
        check("conv", good * 1.001, reference_products(prepare(layer, array.precision), array.precision),
              array.precision)
    int8 = dataclasses.replace(array, precision=Precision("int", 8, 32, "wrap"))
    ref = reference_products(prepare(layer, int8.precision), int8.precision)
    with pytest.raises(NumericsError, match="layer 'conv': 1 of .* integer outputs differ"):
        check("conv", ref + (np.arange(ref.size).reshape(ref.shape) == 3), ref, int8.precision)

    import sim.numerics

    monkeypatch.setattr(sim.numerics, "array_products", lambda ops, arr, name="": (
        np.zeros((5, 16), np.float32), np.zeros((5, 16), bool)))
    with pytest.raises(NumericsError, match="layer 'conv'"):
        simulate_layer(layer, load_hardware("systolic-ws-32x32"))


def test_wide_int_operands_are_refused_not_wrong():
    layer = conv_workload(3, 5, 3, 6).compute_layers[0]
    array = dataclasses.replace(load_hardware("systolic-ws-32x32").mac_array,
                                precision=Precision("int", 32, 64, "wrap"))
    with pytest.raises(Exception, match="int numerics support"):
        simulate_numerics(layer, array)
