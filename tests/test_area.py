"""hwmodels.area: the 45 nm area table as published, hand-calculated chip areas, node scaling, the
int16 policy, EIE against its paper, and area and EDP in estimator and simulator results."""

import dataclasses
import math
import re
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from hwmodels.area import (UnknownAreaError, area_breakdown, area_table_for, available_area_tables,
                           load_area_table, total_area_mm2)
from hwmodels.hardware import HardwareError, load_hardware
from pruning.magnitude import prune_to_density
from sim.cli import main
from sim.estimator import estimate, totals
from sim.simulate import simulate_workloads
from sim.simulate import totals as simulation_totals
from sim.workload import Workload, extract_workload
from tests.eie_helpers import eie_hw, linear_layer

UM2_PER_MM2 = 1e6
DATA = Path(__file__).resolve().parents[1] / "hwmodels" / "data"

# --- the published figures, row by row -------------------------------------------------------

# The 45 nm "cost of operations" area column as Kim et al. 2023 print it (Fig. 15), µm²; TSMC 45 nm
# synthesis per H&P 6th ed. Fig. 1.13.
COST_OF_OPERATIONS_UM2 = {
    ("add", "int", 8): 36, ("add", "int", 16): 67, ("add", "int", 32): 137,
    ("mult", "int", 8): 282, ("mult", "int", 32): 3495,
    ("add", "fp", 16): 1360, ("add", "fp", 32): 4184, ("mult", "fp", 16): 1640, ("mult", "fp", 32): 7700,
}


def test_table_reproduces_the_published_areas_exactly():
    table = load_area_table("area45")
    assert {(r.op, r.dtype, r.bits): r.um2 for r in table.arithmetic_rows} == COST_OF_OPERATIONS_UM2
    assert table.register(1) == 4.522  # NanGate 45 nm DFF_X1: 3.23 µm × 1.4 µm
    assert table.node_nm == 45 and table.energy_tables == ("horowitz45",)
    assert set(available_area_tables()) >= {"area45", "area45-int16"}


def test_cacti_rows_agree_with_cactis_cell_and_efficiency():
    """Each 1-port row's note is CACTI's area efficiency (cell area / total); the table's 146 F²
    cell at 45 nm (0.29565 µm²) must reproduce it from the row's capacity and area."""
    table = load_area_table("area45")
    assert table.sram_cell_um2 == pytest.approx(146 * 0.045 ** 2)
    text = open(DATA / "area45.yaml").read()
    notes = dict(re.findall(r"capacity_bytes: (\d+), +ports: 1, .*area efficiency ([\d.]+) %", text))
    assert len(notes) == 11
    for row in (r for r in table.sram_rows if r.ports == 1):
        efficiency = 8 * row.capacity_bytes * table.sram_cell_um2 / row.um2
        assert efficiency == pytest.approx(float(notes[str(row.capacity_bytes)]) / 100, rel=1e-4)


# --- a tiny description by hand --------------------------------------------------------------

TINY = textwrap.dedent("""\
    name: tiny-area
    description: hand-calculation hardware for the area model
    clock_mhz: 100
    mac_array:
      kind: ideal
      rows: 2
      cols: 2
      precision: {dtype: int, bits: 8, accumulator_bits: 32}
    register_file: {width_bits: 8}
    buffers:
      - {name: wbuf, capacity_bytes: 8192, width_bits: 64, holds: [weights]}
      - {name: ibuf, capacity_bytes: 4096, width_bits: 64, banks: 2, ports: 2, holds: [inputs]}
      - {name: obuf, capacity_bytes: 4096, width_bits: 32, holds: [outputs]}
    dram: {interface: lpddr4, bandwidth_gbs: 0.0008, latency_ns: 0, burst_bytes: 32}
    energy: {table: horowitz45, node_nm: NODE}
    """)


def _tiny(tmp_path, node: float = 45):
    path = tmp_path / f"tiny-{node}.yaml"
    path.write_text(TINY.replace("NODE", str(node)))
    return load_hardware(path)


def test_tiny_description_by_hand(tmp_path):
    parts = area_breakdown(_tiny(tmp_path))
    assert list(parts) == ["mac", "rf", "wbuf", "ibuf", "obuf"]
    # 4 MAC units of an 8-bit int multiplier (282 µm²) and a 32-bit int adder (137 µm²).
    assert parts["mac"] == pytest.approx(4 * (282 + 137) / UM2_PER_MM2)
    # Per unit: an 8-bit weight, an 8-bit activation and a 32-bit partial sum of DFF_X1.
    assert parts["rf"] == pytest.approx(4 * (8 + 8 + 32) * 4.522 / UM2_PER_MM2)
    # 8 KB, 1 port: CACTI's row exactly.
    assert parts["wbuf"] == pytest.approx(0.0262673)
    # 2 banks of 2 KB, 2 ports: twice CACTI's 2 KB dual-port row.
    assert parts["ibuf"] == pytest.approx(2 * 0.01619)
    # 4 KB, 1 port: the log-log midpoint of the 2 KB and 8 KB rows, so the per-bit area is the
    # geometric mean of theirs (the 32-bit port changes nothing: width is not modelled).
    per_bit_2k, per_bit_8k = 7542.36 / (2048 * 8), 26267.3 / (8192 * 8)
    assert parts["obuf"] == pytest.approx(4096 * 8 * math.sqrt(per_bit_2k * per_bit_8k) / UM2_PER_MM2)
    assert total_area_mm2(_tiny(tmp_path)) == pytest.approx(sum(parts.values()))
    # 0.001676 + 0.000868224 + 0.0262673 + 0.03238 + 0.0140754 mm²
    assert total_area_mm2(_tiny(tmp_path)) == pytest.approx(0.0752669, abs=1e-7)


def test_integer_adders_follow_the_per_bit_rule():
    table = load_area_table("area45")
    assert table.arithmetic("add", "int", 48) == pytest.approx(137 * 48 / 32)  # beyond the rows: ∝ width
    assert table.arithmetic("add", "int", 4) == pytest.approx(36 * 4 / 8)
    k = math.log((137 / 32) / (67 / 16)) / math.log(2)  # between 16 and 32 bits, per bit log-log
    assert table.arithmetic("add", "int", 24) == pytest.approx(24 * 67 / 16 * 1.5 ** k)
    with pytest.raises(UnknownAreaError, match="64-bit fp add"):
        table.arithmetic("add", "fp", 64)


def test_node_scaling_is_the_square_of_the_feature_size(tmp_path):
    at45, at22 = area_breakdown(_tiny(tmp_path, 45)), area_breakdown(_tiny(tmp_path, 22.5))
    assert set(at45) == set(at22)
    for name in at45:
        assert at22[name] == pytest.approx(at45[name] * 0.25)
    scaled = load_area_table("area45").scaled(90)
    assert scaled.arithmetic("add", "int", 8) == pytest.approx(4 * 36) and scaled.name == "area45@90nm"
    assert scaled.sram(8192) == pytest.approx(4 * 26267.3)


# --- 16-bit integer arrays: the companion table, or an error ---------------------------------


def test_int16_multiplier_only_in_the_documented_companion():
    with pytest.raises(UnknownAreaError, match="16-bit int mult"):
        load_area_table("area45").arithmetic("mult", "int", 16)
    companion = load_area_table("area45-int16")
    # log-log between the 8- and 32-bit multipliers: sqrt(282 × 3495) = 992.77, stored as 993.
    assert companion.arithmetic("mult", "int", 16) == pytest.approx(math.sqrt(282 * 3495), abs=0.5)
    for key, um2 in COST_OF_OPERATIONS_UM2.items():  # the published rows are inherited untouched
        assert companion.arithmetic(*key) == um2
    assert companion.energy_tables == ("horowitz45-int16",)
    eie = load_hardware("eie-64pe")
    assert area_table_for(eie).name == "area45-int16"
    # 64 units of a 16-bit multiplier and a 48-bit accumulator adder (137 × 48/32 = 205.5 µm²).
    assert area_breakdown(eie)["mac"] == pytest.approx(64 * (993 + 205.5) / UM2_PER_MM2)


def test_int16_array_on_the_plain_table_is_refused():
    eie = load_hardware("eie-64pe")
    plain = eie.with_changes(energy=dataclasses.replace(eie.energy, area_table="area45"))
    with pytest.raises(UnknownAreaError, match="no 16-bit int mult"):
        area_breakdown(plain)


def test_eie_against_its_paper():
    """EIE (Han et al., ISCA 2016, DESIGN.md): 0.638 mm² per PE, 40.8 mm² for 64 PEs. A
    comparison, not a fit: the model gives 0.540 mm² per PE (85% of the paper's), SRAM 99.7% of it."""
    eie = load_hardware("eie-64pe")
    parts = area_breakdown(eie)
    per_pe = {name: mm2 / 64 for name, mm2 in parts.items()}
    # Per PE by hand: 128 KB spmat, 2 × 16 KB pointers, 2 KB activations (CACTI rows), a 16×16-bit
    # multiplier with a 48-bit adder, and 16 + 16 + 48 register bits.
    assert per_pe["spmat"] == pytest.approx(0.429589)
    assert per_pe["pointers"] == pytest.approx(2 * 0.050742)
    assert per_pe["activations"] == pytest.approx(0.00754236)
    assert per_pe["rf"] == pytest.approx(80 * 4.522 / UM2_PER_MM2)
    pe = sum(per_pe.values())
    assert pe == pytest.approx(0.540176, abs=1e-6)
    assert pe / 0.638 == pytest.approx(0.847, abs=0.001)
    assert total_area_mm2(eie) / 40.8 == pytest.approx(0.847, abs=0.001)
    assert (per_pe["spmat"] + per_pe["pointers"] + per_pe["activations"]) / pe > 0.99


# --- errors ----------------------------------------------------------------------------------


def test_custom_energy_table_needs_an_area_table(tmp_path, capsys):
    energy = tmp_path / "mine.yaml"
    energy.write_text("schema: prunesim/energy-table/1\nname: mine\nextends: horowitz45\n")
    hw = tmp_path / "hw.yaml"
    hw.write_text(TINY.replace("table: horowitz45", f"table: {energy}").replace("NODE", "45"))
    with pytest.raises(UnknownAreaError, match="energy.area_table"):
        area_breakdown(load_hardware(hw))
    assert main(["hw", "show", str(hw)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no shipped area table" in err
    hw.write_text(TINY.replace("table: horowitz45", f"table: {energy}, area_table: area45").replace("NODE", "45"))
    assert total_area_mm2(load_hardware(hw)) == pytest.approx(total_area_mm2(_tiny(tmp_path)))
    assert isinstance(UnknownAreaError("x"), HardwareError)


def test_bad_area_table_names_the_field(tmp_path):
    bad = tmp_path / "bad.yaml"
    text = open(DATA / "area45.yaml").read().replace("bits: 8,  value: 36,", "bits: 8,  value: -36,")
    bad.write_text(text)
    with pytest.raises(ValueError, match=r"bad.yaml: arithmetic\[0\].value: must be a positive"):
        load_area_table(str(bad))
    with pytest.raises(UnknownAreaError, match="area45-int16"):
        load_area_table("nosuchtable")
    with pytest.raises(UnknownAreaError, match="valid port counts: 1, 2"):
        load_area_table("area45").sram(8192, ports=3)


def test_hw_show_prints_the_breakdown(capsys):
    assert main(["hw", "show", "eie-64pe"]) == 0
    out = capsys.readouterr().out
    assert "area table area45-int16" in out
    assert re.search(r"#   total +34\.5712", out) and re.search(r"#   spmat +27\.4937", out)


# --- results: area columns and EDP -----------------------------------------------------------


def _tiny_linear():
    layer = nn.Linear(4, 3, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, -2, 3, -4], [5, 6, -7, 8], [-9, 10, 11, 12]]))
    prune_to_density(layer, 0.5)
    return extract_workload(nn.Sequential(layer), sample=torch.tensor([[1.0, 0.0, 2.0, 3.0]]), name="tiny")


def test_estimator_rows_carry_area_and_edp():
    hw = load_hardware("han45nm")
    results = estimate(_tiny_linear(), hw).assign(variant="run")
    row = results.iloc[0]
    # tests/test_estimator.py's hand calculation: 4623.3875 pJ; cycles: DRAM moves 128 + 96 bits
    # at 4.264 GB/s and 800 MHz (42.64 bits/cycle): ceil(5.25) = 6 cycles = 7.5 ns.
    assert row["energy_pj"] == pytest.approx(4623.3875) and row["cycles"] == 6
    assert row["edp_pj_s"] == pytest.approx(4623.3875 * 6 / 800e6)
    # han45nm: 64 fp32 MAC units (7700 + 4184 µm²), 96 register bits each, 1024 banks of 8 KB.
    assert row["area_mac_mm2"] == pytest.approx(64 * (7700 + 4184) / UM2_PER_MM2)
    assert row["area_rf_mm2"] == pytest.approx(64 * 96 * 4.522 / UM2_PER_MM2)
    assert row["area_sram_mm2"] == pytest.approx(1024 * 0.0262673)
    assert row["area_mm2"] == pytest.approx(total_area_mm2(hw))
    two = pd.concat([results, results.assign(layer="fc-again")], ignore_index=True)  # the layer twice
    total = totals(two)
    # Network EDP: total energy × total latency (here two copies of the layer: 2E × 2t = 4 E t).
    assert total["edp_pj_s"].iloc[0] == pytest.approx(4 * row["edp_pj_s"])
    assert total["area_mm2"].iloc[0] == pytest.approx(row["area_mm2"])  # the chip's, not summed


def test_simulator_rows_and_totals_carry_area_and_edp():
    hw = eie_hw(pes=2)
    rng = np.random.default_rng(0)
    weight = rng.normal(size=(6, 8)) * (rng.random((6, 8)) < 0.5)
    layer = linear_layer(weight, rng.normal(size=8) * (rng.random(8) < 0.7))
    simulation = simulate_workloads({"run": Workload(model="toy", input_shape=(8,), layers=(layer,))}, hw)
    row = simulation.layers.iloc[0]
    assert row["edp_pj_s"] == pytest.approx(row["energy_pj"] * row["cycles"] / 800e6)
    # eie_hw keeps the preset's 8 MB spmat and gives it 2 banks: 2 × 4 MB, the log-log midpoint of
    # CACTI's 2 MB and 8 MB rows.
    per_bit = math.sqrt(6.46596e6 / (2097152 * 8) * 23.763e6 / (8388608 * 8))
    assert row["area_spmat_mm2"] == pytest.approx(2 * 4194304 * 8 * per_bit / UM2_PER_MM2)
    assert row["area_mm2"] == pytest.approx(total_area_mm2(hw))
    assert row["area_sram_mm2"] == pytest.approx(row["area_spmat_mm2"] + row["area_pointers_mm2"]
                                                 + row["area_activations_mm2"])
    total = simulation_totals(simulation.layers).iloc[0]
    assert total["edp_pj_s"] == pytest.approx(row["energy_pj"] * row["latency_us"] * 1e-6)
    assert total["area_spmat_mm2"] == pytest.approx(row["area_spmat_mm2"])
