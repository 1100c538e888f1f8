"""hwmodels.energy: the 45 nm table of DESIGN.md reproduced exactly, its rules, its errors."""

import math
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from hwmodels.energy import (
    EnergyTable,
    UnknownEnergyError,
    available_energy_tables,
    load_energy_table,
)

EXACT = dict(rel=1e-12)
KB = 1024
MB = 1024**2


@pytest.fixture(scope="module")
def t() -> EnergyTable:
    return load_energy_table()


# --- DESIGN.md "45 nm energy" table, figure by figure --------------------------------------


@pytest.mark.parametrize(
    "op,dtype,bits,pj",
    [
        ("add", "int", 8, 0.03),
        ("add", "int", 16, 0.05),
        ("add", "int", 32, 0.1),
        ("mult", "int", 8, 0.2),
        ("mult", "int", 32, 3.1),
        ("add", "fp", 16, 0.4),
        ("add", "fp", 32, 0.9),
        ("mult", "fp", 16, 1.1),
        ("mult", "fp", 32, 3.7),
    ],
)
def test_arithmetic_figures(t, op, dtype, bits, pj):
    assert t.arithmetic(op, dtype, bits) == pytest.approx(pj, **EXACT)


def test_table_identity(t):
    assert (t.name, t.node_nm, t.voltage_v) == ("horowitz45", 45.0, 0.9)
    assert "horowitz45" in available_energy_tables()


def test_mac_is_mult_plus_add(t):
    assert t.mac("fp", 32) == pytest.approx(4.6, **EXACT)
    assert t.mac("int", 8) == pytest.approx(0.23, **EXACT)
    assert t.mac("fp", 16) == pytest.approx(1.5, **EXACT)


def test_register_file(t):
    assert t.register_file(32) == pytest.approx(1.0, **EXACT)
    # proportional to width
    assert t.register_file(16) == pytest.approx(0.5, **EXACT)
    assert t.register_file(64) == pytest.approx(2.0, **EXACT)


def test_sram_points(t):
    assert t.sram(8 * KB, 64) == pytest.approx(10.0, **EXACT)
    assert t.sram(32 * KB, 64) == pytest.approx(20.0, **EXACT)
    assert t.sram(1 * MB, 64) == pytest.approx(100.0, **EXACT)


def test_sram_han_32bit_check(t):
    assert t.sram(8 * KB, 32) == pytest.approx(5.0, **EXACT)
    # and every SRAM check row the table carries is reproduced by the lookup
    checks = [p for p in t.reference_points if p.kind == "sram"]
    assert checks
    for p in checks:
        assert t.sram(p.capacity_bytes, p.bits) == pytest.approx(p.low_pj, **EXACT)


def test_dram_lpddr2(t):
    assert t.dram("lpddr2", 32) == pytest.approx(640.0, **EXACT)
    assert t.dram("lpddr2") == pytest.approx(20.0, **EXACT)  # default: per bit


def test_dram_per_bit_by_interface(t):
    per_bit = {"lpddr2": 20, "lpddr4": 8, "ddr3": 70, "gddr5": 14, "hbm2": 3.9}
    assert t.dram_interfaces() == tuple(sorted(per_bit))
    for iface, pj in per_bit.items():
        assert t.dram(iface) == pytest.approx(pj, **EXACT)
        assert t.dram(iface, 1000) == pytest.approx(1000 * pj, **EXACT)
    assert t.dram("hbm2", 0) == 0.0


def test_dram_bandwidth(t):
    assert t.dram_bandwidth_gbs("ddr3") == pytest.approx(12.8, **EXACT)
    assert t.dram_bandwidth_gbs("ddr4") == pytest.approx(25.6, **EXACT)
    assert t.dram_bandwidth_gbs("lpddr4") == pytest.approx(25.6, **EXACT)
    assert t.dram_bandwidth_gbs("hbm2") == pytest.approx(256.0, **EXACT)
    assert t.dram_bandwidth_gbs("gddr5") is None  # known interface, no bandwidth figure
    with pytest.raises(UnknownEnergyError):
        t.dram_bandwidth_gbs("ddr9")


def test_horowitz_dram_range_is_informational(t):
    (p,) = [p for p in t.reference_points if p.kind == "dram"]
    assert p.bits == 64
    assert (p.low_pj, p.high_pj) == (pytest.approx(1300, **EXACT), pytest.approx(2600, **EXACT))


def test_han_worked_example_12_8_watts(t):
    # 1G connections at 20 Hz, each a 32-bit LPDDR2 access: 20 * 1e9 * 640 pJ = 12.8 W
    watts = 20 * 1e9 * t.dram("lpddr2", 32) * 1e-12
    assert watts == pytest.approx(12.8, **EXACT)


# --- SRAM interpolation ---------------------------------------------------------------------


def test_sram_interpolation_hand_calc(t):
    # 8 KB -> 32 KB doubles energy over 4x capacity: exponent 0.5, so 16 KB = 10 * 2^0.5
    assert t.sram(16 * KB, 64) == pytest.approx(10 * 2**0.5, **EXACT)
    # above 1 MB: sqrt(capacity) extrapolation
    assert t.sram(2 * MB, 64) == pytest.approx(100 * 2**0.5, **EXACT)
    # below 8 KB: sqrt(capacity) extrapolation
    assert t.sram(2 * KB, 64) == pytest.approx(5.0, **EXACT)


def test_sram_exponent_32k_to_1m(t):
    k = math.log(5) / math.log(32)
    assert t.sram(64 * KB, 64) == pytest.approx(20 * 2**k, **EXACT)
    c1, c2 = 64 * KB, 512 * KB
    measured = math.log(t.sram(c2, 64) / t.sram(c1, 64)) / math.log(c2 / c1)
    assert measured == pytest.approx(k, **EXACT)


def test_sram_monotone_in_capacity(t):
    sizes = [2**i for i in range(6, 28)] + [3 * KB, 24 * KB, 100 * KB, 5 * MB]
    sizes.sort()
    energies = [t.sram(c, 64) for c in sizes]
    assert all(a < b for a, b in zip(energies, energies[1:]))


def test_sram_width_proportional(t):
    assert t.sram(128 * KB, 16) * 4 == pytest.approx(t.sram(128 * KB, 64), **EXACT)


# --- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda t: t.arithmetic("mult", "int", 16),  # not in Horowitz's table: never invented
        lambda t: t.arithmetic("add", "fp", 8),
        lambda t: t.arithmetic("div", "int", 8),
        lambda t: t.arithmetic("add", "bf", 16),
        lambda t: t.mac("int", 16),
        lambda t: t.dram("ddr9"),
    ],
)
def test_unknown_raises(t, call):
    with pytest.raises(UnknownEnergyError):
        call(t)


def test_unknown_message_names_request_and_options(t):
    with pytest.raises(UnknownEnergyError, match=r"16-bit int mult.*int8 mult.*int32 mult"):
        t.arithmetic("mult", "int", 16)
    with pytest.raises(UnknownEnergyError, match=r"'ddr9'.*lpddr2"):
        t.dram("ddr9")


@pytest.mark.parametrize(
    "call",
    [
        lambda t: t.sram(0, 64),
        lambda t: t.sram(-8 * KB, 64),
        lambda t: t.sram(8 * KB, 0),
        lambda t: t.sram(8 * KB, 32.5),
        lambda t: t.register_file(0),
        lambda t: t.arithmetic("add", "int", -8),
        lambda t: t.dram("lpddr2", -1),
    ],
)
def test_bad_numbers_raise(t, call):
    with pytest.raises(ValueError):
        call(t)


def test_unknown_table_name():
    with pytest.raises(UnknownEnergyError, match="horowitz45"):
        load_energy_table("no_such_table")


# --- node / voltage scaling -----------------------------------------------------------------


def test_scaled_cv2(t):
    s = t.scaled(22, 0.8)
    f = (22 / 45) * (0.8 / 0.9) ** 2
    assert s.arithmetic("mult", "fp", 32) == pytest.approx(3.7 * f, **EXACT)
    assert s.sram(16 * KB, 64) == pytest.approx(10 * 2**0.5 * f, **EXACT)
    assert s.register_file(32) == pytest.approx(f, **EXACT)
    assert s.dram("lpddr2", 32) == pytest.approx(640 * f, **EXACT)
    assert (s.node_nm, s.voltage_v, s.name) == (22, 0.8, "horowitz45@22nm,0.8V")
    # the original is untouched
    assert t.arithmetic("mult", "fp", 32) == pytest.approx(3.7, **EXACT)


def test_scaled_default_voltage_and_name(t):
    s = t.scaled(28)
    assert s.name == "horowitz45@28nm,0.9V"
    assert s.voltage_v == 0.9
    assert s.arithmetic("add", "int", 32) == pytest.approx(0.1 * 28 / 45, **EXACT)


def test_scaled_logic_only_leaves_dram(t):
    s = t.scaled(22, 0.8, rule="cv2-logic-only")
    f = (22 / 45) * (0.8 / 0.9) ** 2
    assert s.arithmetic("mult", "fp", 32) == pytest.approx(3.7 * f, **EXACT)
    for iface in t.dram_interfaces():
        assert s.dram(iface, 32) == t.dram(iface, 32)
    # scaling again with cv2 prices DRAM from where it really is (45 nm, 0.9 V)
    s2 = s.scaled(16, 0.7)
    g = (16 / 45) * (0.7 / 0.9) ** 2
    assert s2.dram("lpddr2", 32) == pytest.approx(640 * g, **EXACT)
    assert s2.arithmetic("mult", "fp", 32) == pytest.approx(3.7 * g, **EXACT)


def test_scaled_bandwidth_unchanged(t):
    assert t.scaled(7, 0.7).dram_bandwidth_gbs("hbm2") == pytest.approx(256.0, **EXACT)


def test_scaled_unknown_rule(t):
    with pytest.raises(ValueError, match="cv2-logic-only"):
        t.scaled(22, 0.8, rule="dennard")


def test_scaled_bad_node(t):
    with pytest.raises(ValueError):
        t.scaled(0)


def test_table_is_immutable(t):
    with pytest.raises(AttributeError):
        t.node_nm = 7  # type: ignore[misc]
    assert isinstance(t.arithmetic_rows, tuple)


# --- validation of YAML files ---------------------------------------------------------------


def _shipped() -> dict:
    path = Path(__file__).resolve().parents[1] / "hwmodels" / "data" / "horowitz45.yaml"
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _write(tmp_path, doc, name="table.yaml") -> Path:
    p = tmp_path / name
    p.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return p


def test_load_by_path_roundtrip(tmp_path):
    p = _write(tmp_path, _shipped())
    assert load_energy_table(str(p)) == load_energy_table("horowitz45")


def test_rejects_negative_energy(tmp_path):
    doc = _shipped()
    doc["arithmetic"][8]["value"] = -3.7
    p = _write(tmp_path, doc, "neg.yaml")
    with pytest.raises(ValueError, match=r"neg\.yaml.*arithmetic\[8\]\.value"):
        load_energy_table(str(p))


def test_rejects_missing_unit(tmp_path):
    doc = _shipped()
    del doc["sram"][1]["unit"]
    p = _write(tmp_path, doc, "nounit.yaml")
    with pytest.raises(ValueError, match=r"nounit\.yaml.*sram\[1\]\.unit.*missing"):
        load_energy_table(str(p))


def test_rejects_unknown_unit(tmp_path):
    doc = _shipped()
    doc["dram"][0]["unit"] = "pJ/byte"
    p = _write(tmp_path, doc, "unit.yaml")
    with pytest.raises(ValueError, match=r"unit\.yaml.*dram\[0\]\.unit.*pJ/byte"):
        load_energy_table(str(p))


def test_rejects_missing_source(tmp_path):
    doc = _shipped()
    del doc["register_file"][0]["source"]
    p = _write(tmp_path, doc, "nosrc.yaml")
    with pytest.raises(ValueError, match=r"nosrc\.yaml.*register_file\[0\]\.source"):
        load_energy_table(str(p))


def test_every_row_has_value_unit_bits_source():
    doc = _shipped()
    sections = ("arithmetic", "register_file", "sram", "dram", "dram_bandwidth", "reference_points")
    for section in sections:
        for row in doc[section]:
            assert {"value", "unit", "bits", "source"} <= set(row), (section, row)


def test_hwmodels_energy_does_not_import_torch():
    code = (
        "import sys, hwmodels.energy as e; e.load_energy_table(); "
        "assert 'torch' not in sys.modules"
    )
    root = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root)
