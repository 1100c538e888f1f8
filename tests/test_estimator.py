"""Hand-calculated action counts and energies for one small Linear and one small Conv2d layer."""

import math
import textwrap

import numpy as np
import pytest
import torch
from torch import nn

from hwmodels.hardware import load_hardware
from hwmodels.pricing import price
from pruning.magnitude import prune_to_density
from sim.estimator import count_actions, estimate
from sim.workload import extract_workload


def _tiny_linear():
    layer = nn.Linear(4, 3, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, -2, 3, -4], [5, 6, -7, 8], [-9, 10, 11, 12]]))
    prune_to_density(layer, 0.5)  # keeps the 6 largest |w|: 7, 8, 9, 10, 11, 12
    model = nn.Sequential(layer)
    sample = torch.tensor([[1.0, 0.0, 2.0, 3.0]])  # input density 3/4
    return extract_workload(model, sample=sample, name="tiny-linear")


def test_linear_on_han45nm_by_hand():
    workload = _tiny_linear()
    hw = load_hardware("han45nm")
    layer = workload.compute_layers[0]
    assert layer.nonzero_weights == 6 and layer.input_density == 0.75
    row = estimate(workload, hw).iloc[0]
    # MACs: 12 dense; han45nm skips zero weights and zero activations: 12 × 6/12 × 3/4 = 4.5.
    assert row["dense_macs"] == 12
    assert row["executed_macs"] == pytest.approx(4.5)
    assert row["skipped_macs"] == pytest.approx(7.5)
    assert row["flop_pct"] == pytest.approx(37.5)
    # Stored weights: relative index, 5-bit indices for FC, no gap ≥ 32: 6 × (32 + 5) = 222 bits.
    assert row["weight_storage_bits"] == 222
    assert row["weights_resident"]  # 222 bits fit in 8 MB: no DRAM weight traffic
    # Energies (pJ): Han Fig. 1 / Horowitz: fp32 MAC 3.7 + 0.9; RF 1 per 32-bit access;
    # SRAM 5 per 32-bit access (8 KB bank); DRAM 20 pJ/bit (LPDDR2).
    mac = 4.5 * (3.7 + 0.9)
    rf = 4.5 * 3 * 1.0 + 4.5 * 1.0  # 3 reads + 1 write per executed MAC
    # SRAM accesses of 32 bits: weights 222/32, input 128/32 read + written from DRAM,
    # output 96/32 written + read back to DRAM (single layer: first and last).
    sram = (222 / 32 + 2 * 128 / 32 + 2 * 96 / 32) * 5.0
    dram = (4 * 32 + 3 * 32) * 20.0  # input image read, output written
    assert row["energy_mac_pj"] == pytest.approx(mac)
    assert row["energy_rf_pj"] == pytest.approx(rf)
    assert row["energy_sram_pj"] == pytest.approx(sram)
    assert row["energy_dram_pj"] == pytest.approx(dram)
    assert row["energy_pj"] == pytest.approx(mac + rf + sram + dram)
    assert row["energy_pj"] == pytest.approx(4623.3875)
    assert row["dram_read_bits"] == 128 and row["dram_write_bits"] == 96


GATED_INT8 = textwrap.dedent("""\
    name: gated-int8
    description: hand-calculation hardware
    clock_mhz: 100
    mac_array:
      kind: ideal
      rows: 2
      cols: 2
      precision: {dtype: int, bits: 8, accumulator_bits: 32}
      zero_weights: gate
      zero_activations: execute
    register_file: {width_bits: 8}
    buffers:
      - {name: glb, capacity_bytes: 16384, width_bits: 64, holds: [weights, inputs, outputs]}
    dram: {interface: lpddr4, bandwidth_gbs: 0.0008, latency_ns: 0, burst_bytes: 32}
    """)


def test_conv_gated_int8_by_hand(tmp_path):
    path = tmp_path / "gated.yaml"
    path.write_text(GATED_INT8)
    hw = load_hardware(path)
    conv = nn.Conv2d(2, 2, 3, padding=1, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.arange(1, 37, dtype=torch.float32).reshape(2, 2, 3, 3))
    prune_to_density(conv, 0.25)  # 9 of 36 weights kept
    sample = torch.ones(1, 2, 4, 4)
    sample[0, 1] = 0.0  # second input channel all zero: density 1/2
    workload = extract_workload(nn.Sequential(conv), sample=sample, name="tiny-conv")
    row = estimate(workload, hw).iloc[0]
    # Dense MACs: 4·4 output pixels × 2 out channels × 2 in channels × 3·3 = 576.
    assert row["dense_macs"] == 576
    # Effectual 576·¼·½ = 72; zero activation & non-zero weight, executed: 72;
    # zero-weight MACs gated: 576·¾·½ + 576·¾·½ (both zero: gate beats execute) = 432.
    assert row["executed_macs"] == pytest.approx(144)
    assert row["gated_macs"] == pytest.approx(432)
    assert row["skipped_macs"] == 0
    # Cycles count gated MACs too: (144 + 432) / 4 MAC units = 144.
    assert row["compute_cycles"] == 144
    # Dense storage, 8-bit: 36 × 8 = 288 bits; input and output 32 values × 8 bits = 256 each.
    assert row["weight_storage_bits"] == 288
    # DRAM: input read + output written = 512 bits at 8 pJ/bit (LPDDR4);
    # at 0.0008 GB/s and 100 MHz that is 0.064 bits/cycle → 8000 cycles, the bound.
    assert row["memory_cycles"] == 8000 and row["cycles"] == 8000
    assert row["latency_us"] == pytest.approx(80.0)
    mac = 144 * (0.2 + 0.03)  # int8 mult + int8 add (Horowitz)
    rf = 2 * 144 * 0.25 + 144 * 1.0 + 144 * 1.0  # 8-bit operands at 1/32 pJ per bit; 32-bit psums
    sram_access = 10 * math.sqrt(2)  # 64-bit read of a 16 KB SRAM: 10 pJ × (16/8)^0.5
    sram = (288 / 64 + 4 * 256 / 64) * sram_access
    dram = 512 * 8.0
    assert row["energy_mac_pj"] == pytest.approx(mac)
    assert row["energy_rf_pj"] == pytest.approx(rf)
    assert row["energy_sram_pj"] == pytest.approx(sram)
    assert row["energy_dram_pj"] == pytest.approx(dram)
    assert row["energy_pj"] == pytest.approx(mac + rf + sram + dram)


def test_energy_is_the_sum_of_priced_actions():
    workload = _tiny_linear()
    hw = load_hardware("han45nm")
    actions = count_actions(workload, hw)
    assert estimate(workload, hw)["energy_pj"].sum() == pytest.approx(price(actions, hw).sum())


def test_weights_from_dram_when_the_model_does_not_fit(tmp_path):
    """Han's argument: a model larger than the on-chip SRAM streams its weights from DRAM."""
    small = GATED_INT8.replace("capacity_bytes: 16384", "capacity_bytes: 16")
    path = tmp_path / "small.yaml"
    path.write_text(small)
    hw = load_hardware(path)
    layer = nn.Linear(8, 8, bias=False)  # 64 weights × 8 bits = 512 bits > 128 bits of SRAM
    workload = extract_workload(nn.Sequential(layer), sample=torch.ones(1, 8))
    row = estimate(workload, hw).iloc[0]
    assert not row["weights_resident"]
    # weights 512 + input 64 read; output 64 written
    assert row["dram_read_bits"] == 512 + 64 and row["dram_write_bits"] == 64


def test_same_seed_same_numbers():
    from sim.api import estimate_network

    first = estimate_network("lenet-5", profile="han2015", seed=3)
    second = estimate_network("lenet-5", profile="han2015", seed=3)
    assert first.equals(second)
    assert np.isfinite(first["energy_pj"]).all()
