"""The dense systolic array: presets, the fold cycle model worked out by hand, MAC classes and
zero gating. Helpers here (``systolic_hw``, ``conv_workload``) are shared by the engine and
numerics tests."""

import dataclasses
import itertools
from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import nn

from hwmodels.hardware import Accelerator, Buffer, Precision, available_presets, load_hardware
from pruning.magnitude import prune_to_density
from sim.api import profile_workloads, resolve_profile
from sim.mapping import SimulationError
from sim.simulate import simulate_layer, simulate_network, simulate_workloads
from sim.systolic import compute_cycles, count_macs, fold_cycles, gemm_shape
from sim.workload import Workload, extract_workload

PRESETS = ("systolic-ws-32x32", "systolic-os-32x32", "systolic-is-32x32", "systolic-ws-128x128")


def systolic_hw(dataflow: str = "ws", rows: int = 4, cols: int = 4, buffer_bytes=(1024, 1024, 1024),
                precision: Precision | None = None, bandwidth_gbs: float = 25.6, latency_ns: float = 54,
                zero_weights: str = "execute", zero_activations: str = "execute") -> Accelerator:
    """A small variant of the shipped 32x32 preset of ``dataflow`` (validated like a YAML file)."""
    base = load_hardware(f"systolic-{dataflow}-32x32")
    array = dataclasses.replace(base.mac_array, rows=rows, cols=cols, zero_weights=zero_weights,
                                zero_activations=zero_activations,
                                precision=precision or Precision("int", 8, 32, "saturate"))
    buffers = tuple(dataclasses.replace(b, capacity_bytes=size) for b, size in zip(base.buffers, buffer_bytes))
    dram = dataclasses.replace(base.dram, bandwidth_gbs=bandwidth_gbs, latency_ns=latency_ns)
    return base.with_changes(name=f"test-{dataflow}-{rows}x{cols}", mac_array=array, buffers=buffers, dram=dram)


def conv_workload(cin: int, cout: int, kernel: int, size: int, stride: int = 1, padding: int = 0,
                  groups: int = 1, dilation: int = 1, density: float | None = None, seed: int = 0) -> Workload:
    """One random Conv2d (optionally magnitude-pruned) on one ReLU'd random input."""
    generator = torch.Generator().manual_seed(seed)
    conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, groups=groups, dilation=dilation,
                     bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.randn(conv.weight.shape, generator=generator))
    if density is not None:
        prune_to_density(conv, density)
    sample = torch.relu(torch.randn(1, cin, size, size, generator=generator))
    return extract_workload(nn.Sequential(OrderedDict(conv=conv)), sample=sample, name="synthetic")


def test_presets_are_listed_and_systolic(capsys):
    from sim.cli import main

    assert set(PRESETS) <= set(available_presets())
    for name in PRESETS:
        hw = load_hardware(name)
        array = hw.mac_array
        assert array.kind == "systolic" and name.startswith(f"systolic-{array.dataflow}-{array.rows}x{array.cols}")
        assert (array.precision.dtype, array.precision.bits, array.precision.accumulator_bits) == ("fp", 16, 32)
        assert hw.dram.interface == "lpddr4" and hw.dram.bandwidth_gbs == 25.6 and hw.clock_mhz == 1000
        assert {b.holds for b in hw.buffers} == {("weights",), ("inputs",), ("outputs",)}
    assert main(["hw", "list"]) == 0
    listed = capsys.readouterr().out
    assert all(name in listed for name in PRESETS)
    assert main(["hw", "show", "systolic-os-32x32"]) == 0
    assert "dataflow: os" in capsys.readouterr().out


def test_fold_cycles_is_scale_sims_formula():
    # SCALE-Sim (arXiv:1811.02883) Eq. 1: tau = 2*Sr + Sc + T - 2, with the array's own R and C.
    assert fold_cycles(32, 32, 100) == 2 * 32 + 32 + 100 - 2
    assert fold_cycles(4, 4, 1) == 11


# The hand-worked example: Conv2d(2 -> 6, 2x2) on a 2x3x3 input, i.e. per sample the product of
# W (M=6 filters x K=2*2*2=8) by X (K=8 x N=2*2=4 output pixels), on a 4x4 array whose buffers
# hold everything (so nothing stalls with ideal memory and no fold is split).
#
# WS: K on the 4 rows -> 2 row folds, M on the 4 columns -> 2 column folds, N = 4 vectors in time.
#     A fold: 4 cycles shifting the weight tile in from the top (one row per cycle); input vector t
#     enters row i at cycle 4+t+i; its partial sum for column j leaves the bottom after the 4th row
#     and j more columns: the last (t=3, j=3) leaves in cycle 4+3+3+3 = 13 (0-based), so 14 cycles
#     = 2*4 + 4 + 4 - 2. Four folds: 56.
# OS: N on the rows -> 1 row fold (4 pixels), M on the columns -> 2 column folds, K = 8 in time.
#     PE (i, j) gets its last operand pair in cycle 7+i+j, the last PE (3, 3) in cycle 13: 14
#     cycles of compute; then the 4 rows of results shift out: 4 more = 18 = 2*4 + 4 + 8 - 2.
#     Two folds: 36.
# IS: K on the rows -> 2 row folds, N on the columns -> 1 column fold (4 pixels), M = 6 in time.
#     Inputs preloaded in 4 cycles, 6 weight vectors stream; the last partial sum leaves in cycle
#     4+5+3+3 = 15: 16 cycles = 2*4 + 4 + 6 - 2. Two folds: 32.
HAND_CYCLES = {"ws": 4 * 14, "os": 2 * 18, "is": 2 * 16}


@pytest.mark.parametrize("dataflow", sorted(HAND_CYCLES))
def test_hand_worked_4x4_cycles(dataflow):
    workload = conv_workload(2, 6, 2, 3)
    layer = workload.compute_layers[0]
    shape = gemm_shape(layer)
    assert (shape.m, shape.k, shape.n) == (6, 8, 4)
    hw = systolic_hw(dataflow)
    run = simulate_layer(layer, hw, ideal_memory=True)
    assert run.engine.cycles == run.engine.compute_cycles == HAND_CYCLES[dataflow]
    assert compute_cycles(shape, hw.mac_array) == HAND_CYCLES[dataflow]
    assert run.engine.stall_cycles == 0
    # With the real LPDDR4 the same layer waits for its data, never less than the compute.
    real = simulate_layer(layer, hw, ideal_memory=False)
    assert real.engine.cycles >= HAND_CYCLES[dataflow] and real.engine.compute_cycles == HAND_CYCLES[dataflow]
    # Traffic by hand (int8): weights 6*8*8 = 384 bits and the 2*3*3 input activations once
    # (144 bits, not the 8*4 = 32 im2col elements' 256 bits) in; 6*4 outputs * 8 = 192 bits out.
    assert run.record["dram_read_bits"] == pytest.approx(384 + 144)
    assert run.record["dram_write_bits"] == pytest.approx(192)


def test_mac_classes_match_brute_force():
    rng = np.random.default_rng(1)
    w = rng.integers(-2, 3, size=(5, 7)) * (rng.random((5, 7)) < 0.6)
    x = rng.integers(0, 3, size=(7, 6))
    for zero_w, zero_a in itertools.product(("execute", "gate"), repeat=2):
        array = dataclasses.replace(load_hardware("systolic-ws-32x32").mac_array, zero_weights=zero_w,
                                    zero_activations=zero_a)
        executed = sum(1 for m, k, n in itertools.product(range(5), range(7), range(6))
                       if (w[m, k] != 0 or zero_w == "execute") and (x[k, n] != 0 or zero_a == "execute"))
        effectual = sum(1 for m, k, n in itertools.product(range(5), range(7), range(6)) if w[m, k] and x[k, n])
        counts = count_macs([(w, x)], array)
        assert (counts.dense, counts.executed, counts.gated, counts.effectual) == \
            (5 * 7 * 6, executed, 5 * 7 * 6 - executed, effectual)


@pytest.fixture(scope="module")
def lenet5():
    return profile_workloads("lenet-5", resolve_profile("lenet-5", "han2015", None), seed=0)


def test_gating_lowers_energy_and_keeps_cycles(lenet5):
    base = load_hardware("systolic-ws-32x32")
    gated = base.with_changes(mac_array=dataclasses.replace(base.mac_array, zero_weights="gate",
                                                            zero_activations="gate"))
    plain = simulate_workloads({"pruned": lenet5["pruned"]}, base, numerics=False).layers
    gate = simulate_workloads({"pruned": lenet5["pruned"]}, gated, numerics=False).layers
    assert (gate["gated_macs"] > 0).all() and (plain["gated_macs"] == 0).all()
    assert (gate["executed_macs"] == gate["effectual_macs"]).all()  # both kinds of zero gated
    assert (gate["energy_pj"] < plain["energy_pj"]).all()
    assert (gate["energy_mac_pj"] < plain["energy_mac_pj"]).all() and (gate["energy_rf_pj"] < plain["energy_rf_pj"]).all()
    # Gating saves MAC and operand energy, never cycles or memory traffic.
    for column in ("cycles", "compute_cycles", "stall_cycles", "dram_read_bits", "sram_read_bits", "energy_dram_pj"):
        assert (gate[column] == plain[column]).all(), column


def test_ideal_memory_cycles_are_the_arrays_compute_cycles(lenet5):
    for name in PRESETS:
        hw = load_hardware(name)
        for layer in lenet5["dense"].compute_layers:
            run = simulate_layer(layer, hw, ideal_memory=True, numerics=False)
            assert run.engine.cycles == run.engine.compute_cycles == run.schedule.compute_cycles
            assert run.engine.stall_cycles == 0
            if run.mapping.order == "fold":  # one fill and drain per fold: SCALE-Sim's total
                assert run.engine.cycles == compute_cycles(gemm_shape(layer), hw.mac_array)


def test_simulating_an_ideal_array_is_refused():
    with pytest.raises(SimulationError, match="mac_array.kind 'ideal'.*systolic"):
        simulate_network("lenet-300-100", hw="han45nm")
    with pytest.raises(SimulationError, match="loop order"):
        simulate_layer(conv_workload(2, 6, 2, 3).compute_layers[0], systolic_hw("os"), loop_order="chunk")


def test_buffers_shared_by_kinds_split_their_capacity():
    # One buffer holding all three kinds: each gets a third, and the mapping still fits.
    hw = systolic_hw("ws")
    shared = hw.with_changes(buffers=(Buffer("glb", 3072, 64, ("weights", "inputs", "outputs")),))
    run = simulate_layer(conv_workload(2, 6, 2, 3).compute_layers[0], shared, ideal_memory=True)
    assert run.engine.cycles == HAND_CYCLES["ws"]
    assert set(dict(run.mapping.budgets)) == {"weights", "inputs", "outputs"}
    assert all(bits == 1024 * 8 // 2 for bits in dict(run.mapping.budgets).values())
