"""Fixed-point layers of different widths in one network: integer inference at W8A16, and the
estimator's per-layer pricing against a hand calculation."""

import math
import textwrap

import numpy as np
import pytest
import torch
from torch import nn

from hwmodels.energy import UnknownEnergyError
from hwmodels.hardware import load_hardware
from pruning.quantise import quantise_model
from sim.estimator import check_fixed_point_widths, estimate
from sim.workload import extract_workload

MIXED_INT16 = textwrap.dedent("""\
    name: mixed-int16
    description: hand-calculation hardware with a 16-bit integer multiplier in its energy table
    clock_mhz: 100
    mac_array:
      kind: ideal
      rows: 2
      cols: 2
      precision: {dtype: int, bits: 16, accumulator_bits: 32}
      zero_weights: execute
      zero_activations: execute
    register_file: {width_bits: 32}
    buffers:
      - {name: glb, capacity_bytes: 16384, width_bits: 64, holds: [weights, inputs, outputs]}
    dram: {interface: lpddr4, bandwidth_gbs: 25.6, latency_ns: 0, burst_bytes: 32}
    energy: {table: horowitz45-int16, node_nm: 45, voltage_v: 0.9, scaling_rule: cv2}
    """)


def test_w8a16_inference_equals_an_integer_reference():
    torch.manual_seed(2)
    layer = nn.Linear(30, 5)
    x = torch.randn(8, 30)
    quantised = quantise_model(nn.Sequential(layer), 8, x, activation_bits=16)[0]
    assert (quantised.fixed_point_bits, quantised.activation_bits) == (8, 16)
    w, xs = layer.weight.detach().double().numpy(), x.double().numpy()
    s_w, s_x = np.abs(w).max() / 127, np.abs(xs).max() / 32767
    q_w = np.clip(np.rint(w / s_w), -127, 127).astype(np.int64)
    q_x = np.clip(np.rint(xs / s_x), -32767, 32767).astype(np.int64)
    q_b = np.rint(layer.bias.detach().double().numpy() / (s_w * s_x)).astype(np.int64)
    acc = q_x @ q_w.T + q_b
    assert np.array_equal(quantised.accumulate(x).numpy(), acc)
    assert np.abs(q_x).max() == 32767 and np.abs(q_w).max() == 127


def _mixed_network():
    model = nn.Sequential(nn.Linear(4, 3, bias=False), nn.ReLU(), nn.Linear(3, 2, bias=False))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, 2, 3, 4], [-1, 2, -3, 4], [1, 1, 1, 1]]))
        model[2].weight.copy_(torch.tensor([[1.0, -1, 2], [0.5, 1, 1]]))
    x = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    # fc "0": 8-bit weights, 16-bit inputs; fc "2": 8-bit weights, 8-bit inputs.
    return quantise_model(model, 8, x, activation_bits={"0": 16, "2": 8}), x


def test_estimator_prices_each_layer_at_its_own_widths_by_hand(tmp_path):
    path = tmp_path / "mixed.yaml"
    path.write_text(MIXED_INT16)
    hw = load_hardware(path)
    model, x = _mixed_network()
    rows = estimate(extract_workload(model, sample=x, name="mixed"), hw).set_index("layer")
    assert rows["weight_bits"].tolist() == [8, 8] and rows["activation_bits"].tolist() == [16, 8]
    assert rows["executed_macs"].tolist() == [12, 6]          # every MAC executes on this array
    # MAC = multiply at the wider operand + add at the 32-bit accumulator (horowitz45-int16:
    # int16 mult 0.787 pJ (derived), int8 mult 0.2, int32 add 0.1).
    assert rows.at["0", "energy_mac_pj"] == pytest.approx(12 * (0.787 + 0.1))
    assert rows.at["2", "energy_mac_pj"] == pytest.approx(6 * (0.2 + 0.1))
    # RF at 1/32 pJ per bit: per MAC a weight (8), an activation (16 | 8), a 32-bit psum read
    # and write.
    assert rows.at["0", "energy_rf_pj"] == pytest.approx(12 * (8 + 16 + 32 + 32) / 32)
    assert rows.at["2", "energy_rf_pj"] == pytest.approx(6 * (8 + 8 + 32 + 32) / 32)
    # Stored weights, dense at 8 bits: 96 and 48 bits, resident. Activations at the width of the
    # layer that reads them: fc0 reads 4 × 16 bits and writes 3 × 8 (fc2's inputs); fc2 writes
    # its 2 outputs at its own 8 bits.
    assert rows["weight_storage_bits"].tolist() == [96, 48]
    access = 10 * math.sqrt(2)                                # 64-bit access, 16 KB: 10 pJ × (16/8)^0.5
    # fc0 (first): weights 96 + input 64 read, output 24 written, input 64 written from DRAM.
    assert rows.at["0", "energy_sram_pj"] == pytest.approx((96 + 64 + 24 + 64) / 64 * access)
    # fc2 (last): weights 48 + input 24 read, output 16 written, and read back for DRAM.
    assert rows.at["2", "energy_sram_pj"] == pytest.approx((48 + 24 + 16 + 16) / 64 * access)
    assert rows["dram_read_bits"].tolist() == [64, 0] and rows["dram_write_bits"].tolist() == [0, 16]
    assert rows["energy_dram_pj"].tolist() == pytest.approx([64 * 8.0, 16 * 8.0])   # LPDDR4 8 pJ/bit


def test_a_width_the_table_lacks_is_an_error_naming_it():
    model, x = _mixed_network()
    workload = extract_workload(model, sample=x, name="mixed")
    with pytest.raises(UnknownEnergyError, match=r"layer '0': 8-bit weights × 16-bit activations.*"
                                                 r"no 16-bit int mult .*int mult: 8, 32"):
        estimate(workload, load_hardware("han45nm"))
    check_fixed_point_widths(load_hardware("han45nm"), 8, 8)          # int8 × int8, int32 add: priced
    with pytest.raises(UnknownEnergyError, match="no 48-bit int add"):
        check_fixed_point_widths(load_hardware("eie-64pe"), 8, 8)    # EIE's 48-bit accumulator
    with pytest.raises(ValueError, match="missing \\['2'\\]"):
        quantise_model(model, {"0": 8}, x)
