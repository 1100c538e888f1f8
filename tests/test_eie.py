"""The EIE-like sparse array (sim/eie.py): preset and validation, filler zeros, the FIFO cycle
recurrence worked by hand, work and traffic counts, numerics, the simulate command."""

import dataclasses
import math

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from eie_helpers import eie_hw, linear_layer
from test_hardware import assert_field_rejected
from hwmodels.hardware import HardwareError, Precision, load_hardware
from pruning.formats import encode_relative_csc, relative_index_entries
from sim.eie import encode_layer, round_cycles, run_eie
from sim.numerics import prepare
from sim.simulate import simulate_layer, simulate_network


# ---------------------------------------------------------------------------------- description


def test_preset_is_eie_as_designed():
    hw = load_hardware("eie-64pe")
    array = hw.mac_array
    assert (array.kind, array.pes, hw.clock_mhz) == ("eie", 64, 800)
    assert (array.precision.dtype, array.precision.bits) == ("int", 16)
    assert (array.eie.fifo_depth, array.eie.code_bits, array.eie.pointer_bits) == (8, 4, 16)
    assert (hw.weight_format.index_bits_linear, hw.weight_format.index_bits_conv) == (4, 4)
    per_pe = {b.name: b.capacity_bytes // array.pes for b in hw.buffers}
    assert per_pe == {"spmat": 128 * 1024, "pointers": 32 * 1024, "activations": 2 * 1024}
    # The int16 MAC: Horowitz's 16-bit add plus the derived multiply sqrt(0.2 * 3.1) pJ.
    from hwmodels.pricing import energy_table_for

    assert energy_table_for(hw).mac("int", 16) == pytest.approx(0.05 + math.sqrt(0.2 * 3.1), abs=5e-4)


@pytest.fixture
def eie_dict():
    from importlib import resources

    return yaml.safe_load(resources.files("hwmodels").joinpath("presets", "eie-64pe.yaml").read_text())


@pytest.mark.parametrize("path, value, field, message", [
    (("mac_array", "eie", "fifo_depth"), 0, "mac_array.eie.fifo_depth", "greater than or equal to 1"),
    (("mac_array", "eie", "code_bits"), 17, "mac_array.eie.code_bits", "less than or equal to 16"),
    (("mac_array", "eie", "pointer_bits"), None, "mac_array.eie.pointer_bits", "required field is missing"),
    (("mac_array", "eie"), None, "mac_array.eie", "required for kind 'eie'"),
    (("mac_array", "zero_activations"), "gate", "mac_array.zero_activations", "valid: 'skip'"),
    (("mac_array", "precision"), {"dtype": "fp", "bits": 16, "accumulator_bits": 32}, "mac_array.precision.dtype",
     "valid: 'int'"),
    (("buffers", 1, "banks"), 64, "buffers.1.banks", "at least 128 (2 per PE)"),
    (("buffers", 0, "banks"), 96, "buffers.0.banks", "a multiple of 64"),
    (("buffers", 0, "name"), "weights", "buffers", "needs a buffer named 'spmat'"),
    (("buffers", 2, "holds"), ["inputs", "outputs", "weights"], "buffers.2.holds", "['inputs', 'outputs']"),
    (("weight_format", "index_bits_conv"), 0, "weight_format.index_bits_conv", "valid for kind 'eie': 1..16"),
    (("energy", "table"), "horowitz45", "mac_array.precision", "no 16-bit int MAC"),
])
def test_bad_eie_fields_are_named(tmp_path, eie_dict, path, value, field, message):
    assert_field_rejected(tmp_path, eie_dict, path, value, field, message)


def test_eie_block_belongs_to_eie_arrays(tmp_path):
    from importlib import resources

    data = yaml.safe_load(resources.files("hwmodels").joinpath("presets", "han45nm.yaml").read_text())
    data["mac_array"]["eie"] = {"fifo_depth": 8, "code_bits": 4, "pointer_bits": 16}
    (tmp_path / "hw.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(HardwareError, match="field 'mac_array.eie': applies to kind 'eie' only"):
        load_hardware(tmp_path / "hw.yaml")


# ---------------------------------------------------------------------------------- filler zeros


def test_design_md_column_encodes_with_one_filler():
    column = np.array([0, 0, 1, 2] + [0] * 18 + [3])[:, None]
    fmt = encode_relative_csc(column, index_bits=4)
    assert fmt.values.tolist() == [1, 2, 0, 3] and fmt.gaps.tolist() == [2, 0, 15, 2]
    # Through the EIE layout: one PE holds the column as above (4 entries, 1 filler) ...
    layout = encode_layer([column], eie_hw(pes=1), conv=False)
    assert (layout.entries.tolist(), layout.fillers.tolist()) == ([[4]], [[1]])
    # ... two PEs interleave the rows: PE 0 gets rows 2 and 22 (local 1 and 11, gap 9), PE 1 row 3.
    layout = encode_layer([column], eie_hw(pes=2), conv=False)
    assert (layout.entries.tolist(), layout.fillers.tolist()) == ([[2, 1]], [[0, 0]])


@pytest.mark.parametrize("gap, fillers", [(14, 0), (15, 0), (16, 1), (31, 1), (32, 2), (47, 2), (48, 3)])
def test_fillers_exactly_where_a_gap_exceeds_the_index_range(gap, fillers):
    # 4-bit indices encode gaps up to 15: a gap of g zeros costs g // 16 fillers.
    column = np.zeros((gap + 1, 1), dtype=np.int64)
    column[gap] = 7
    layout = encode_layer([column], eie_hw(pes=1), conv=False)
    assert layout.fillers[0, 0] == fillers and layout.entries[0, 0] == fillers + 1


# ---------------------------------------------------------------------------------- cycles by hand


# W (4 x 3) on 2 PEs: PE 0 holds rows 0 and 2, PE 1 rows 1 and 3.
# column 0: rows 0, 2 -> PE 0 two entries, PE 1 none (costs 2, 1)
# column 1: rows 1, 3 -> PE 0 none, PE 1 two entries (costs 1, 2)
# column 2: row 0     -> PE 0 one entry, PE 1 none  (costs 1, 1)
HAND_W = np.array([[1, 0, 1], [0, 1, 0], [1, 0, 0], [0, 1, 0]], dtype=np.float32)
# With every activation non-zero, b_i = max(b_{i-1} + 1, F_{i-D}), s = max(b + 1, f_prev), f = s + c:
# D = 1: b = 0, 3, 6; f = (3,2), (5,6), (8,8) -> 8 cycles, stalls (3-1) + (6-4) = 4, drain 8-6-1 = 1
# D = 2: b = 0, 1, 3; f = (3,2), (4,4), (5,5) -> 5 cycles, stall 3-2 = 1, drain 5-3-1 = 1
# D = 8: b = 0, 1, 2; f = (3,2), (4,4), (5,5) -> 5 cycles, no stall, drain 5-2-1 = 2
HAND = {1: (8, 4, 1), 2: (5, 1, 1), 8: (5, 0, 2)}


@pytest.mark.parametrize("depth", sorted(HAND))
def test_hand_worked_cycles(depth):
    from sim.golden import golden_eie

    layer = linear_layer(HAND_W, np.ones(3))
    hw = eie_hw(pes=2, depth=depth)
    counts = run_eie(layer, hw).counts
    cycles, stalls, drain = HAND[depth]
    assert (counts.compute_cycles, counts.fifo_stall_cycles, counts.drain_cycles) == (cycles, stalls, drain)
    assert counts.pe_busy.tolist() == [2 + 1 + 1, 1 + 2 + 1] and counts.pe_entries.tolist() == [3, 2]
    assert counts.pointer_reads == 2 * 2 * 3 and counts.broadcasts == 3
    golden = golden_eie(layer, hw)
    assert (golden.cycles, golden.fifo_stall_cycles) == (cycles, stalls)
    # round_cycles directly, on the cost table of the comment above
    rounds, stall = round_cycles(np.array([[2, 1], [1, 2], [1, 1]], np.int32), np.arange(3), np.array([0, 3]), depth)
    assert (rounds.tolist(), stall.tolist()) == ([cycles], [stalls])


@settings(max_examples=40, deadline=None)
@given(pes=st.integers(1, 6), k=st.integers(1, 30), length=st.integers(1, 60), depth=st.integers(1, 9),
       seed=st.integers(0, 10 ** 6))
def test_one_round_alone_and_among_others_take_the_same_cycles(pes, k, length, depth, seed):
    # A single round (a linear layer's) is stepped D broadcasts at a time; several rounds one
    # broadcast at a time: the same round must come out the same either way. The cost table has
    # dominated and duplicate PE columns, which round_cycles may drop without changing F.
    rng = np.random.default_rng(seed)
    costs = rng.integers(1, 6, (k, pes)).astype(np.int32)
    costs = np.concatenate([costs, costs[:, :1], np.ones((k, 1), np.int32)], axis=1)
    events = rng.integers(0, k, length)
    alone = round_cycles(costs, events, np.array([0, length]), depth)
    twice = round_cycles(costs, np.concatenate([events, events[::-1]]), np.array([0, length, 2 * length]), depth)
    reverse = round_cycles(costs, events[::-1], np.array([0, length]), depth)
    assert (alone[0][0], alone[1][0]) == (twice[0][0], twice[1][0])
    assert (reverse[0][0], reverse[1][0]) == (twice[0][1], twice[1][1])


def test_zero_activations_are_not_broadcast():
    layer = linear_layer(HAND_W, np.array([0.0, 1.0, 0.0]))  # only column 1: costs (1, 2)
    counts = run_eie(layer, eie_hw(pes=2, depth=1)).counts
    # b0 = 0, s = (1, 1), f = (2, 3): 3 cycles, one broadcast, 2 MACs (rows 1 and 3)
    assert (counts.broadcasts, counts.compute_cycles, counts.entries, counts.effectual_macs) == (1, 3, 2, 2)


# ---------------------------------------------------------------------------------- properties

layers = st.builds(
    lambda m, k, w_density, a_density, seed: _random_layer(m, k, w_density, a_density, seed),
    st.integers(1, 40), st.integers(1, 40), st.floats(0.02, 1.0), st.floats(0.0, 1.0), st.integers(0, 10 ** 6))


def _random_layer(m, k, w_density, a_density, seed):
    rng = np.random.default_rng(seed)
    weight = rng.normal(size=(m, k)) * (rng.random((m, k)) < w_density)
    sample = np.abs(rng.normal(size=k)) * (rng.random(k) < a_density)
    return linear_layer(weight, sample)


@settings(max_examples=40, deadline=None)
@given(layer=layers, pes=st.integers(1, 6), index_bits=st.integers(1, 4))
def test_fifo_of_depth_1_is_never_faster_than_depth_8(layer, pes, index_bits):
    shallow = run_eie(layer, eie_hw(pes, 1, index_bits), numerics=False).counts
    deep = run_eie(layer, eie_hw(pes, 8, index_bits), numerics=False).counts
    assert shallow.compute_cycles >= deep.compute_cycles
    assert shallow.fifo_stall_cycles >= deep.fifo_stall_cycles


@settings(max_examples=40, deadline=None)
@given(layer=layers, pes=st.integers(1, 6), index_bits=st.integers(1, 4), depth=st.integers(1, 8))
def test_pe_work_is_effectual_macs_plus_fillers(layer, pes, index_bits, depth):
    hw = eie_hw(pes, depth, index_bits)
    counts = run_eie(layer, hw, numerics=False).counts
    (w, x), = prepare(layer, hw.mac_array.precision).groups
    x = x[:, 0] != 0
    effectual = int(np.count_nonzero(w[:, x]))  # brute force: non-zero weight x non-zero activation
    fillers = sum(relative_index_entries(w[:, [j]] != 0, index_bits, interleave=pes)[1] for j in np.flatnonzero(x))
    assert counts.effectual_macs == effectual and counts.filler_macs == fillers
    assert int(counts.pe_entries.sum()) == effectual + fillers == counts.entries
    # every round: cycles = broadcasts + stalls + drain, and a PE is busy at least once per broadcast
    assert counts.compute_cycles == counts.broadcasts + counts.fifo_stall_cycles + counts.drain_cycles
    assert (counts.pe_busy >= counts.broadcasts).all() and counts.pe_busy.max() <= counts.compute_cycles


# ---------------------------------------------------------------------------------- numerics, results


def test_numerics_are_exact_on_conv_and_linear():
    from test_systolic import conv_workload

    for workload in (conv_workload(6, 8, 3, 7, padding=1, groups=2, density=0.3),
                     conv_workload(3, 4, 2, 5, stride=2, density=0.6)):
        run = run_eie(workload.compute_layers[0], eie_hw(pes=3, depth=2))
        assert run.numerics.exact and run.numerics.relative_error == 0.0


def test_saturating_accumulator_matches_golden_and_is_exempt():
    from sim.golden import golden_eie

    # One output: 20 products of +32767^2 then 10 of -32767^2, accumulated in column order in 34
    # bits (max 2^33 - 1 = 8,589,934,591): it saturates at the 9th product, then falls by
    # 10 * 32767^2 = 10,736,762,890 to -2,146,828,299; the clamped exact sum would be 2^33 - 1.
    layer = linear_layer(np.array([[1.0] * 20 + [-1.0] * 10]), np.ones(30))
    hw = eie_hw(pes=2, precision=Precision("int", 16, 34, "saturate"))
    run = run_eie(layer, hw)
    assert run.outputs.tolist() == [[-2_146_828_299]] and run.numerics.saturated_midway == 1
    assert golden_eie(layer, hw).outputs.tolist() == [[-2_146_828_299]]
    wrap = eie_hw(pes=2, precision=Precision("int", 16, 34, "wrap"))
    assert run_eie(layer, wrap).outputs.tolist() == [[10 * 32767 ** 2 - 2 ** 34]]  # modular: order-free


def test_codebook_layers_store_codes():
    weight = np.array([[1.0, 0, -1.0, 0.5], [0, 0.5, 0, 1.0]])
    layer = linear_layer(weight, np.ones(4))
    run = run_eie(layer, eie_hw(pes=2))
    assert run.layout.codebook is not None and run.layout.entry_bits == 4 + 4
    assert run.layout.codebook.tolist() == [0, -32767, 16384, 32767]
    assert run.numerics.exact
    many = linear_layer(np.arange(1, 17, dtype=float)[None, :], np.ones(16))  # 16 values > 15 codes
    assert run_eie(many, eie_hw(pes=2)).layout.entry_bits == 16 + 4


def test_spill_when_a_pe_share_does_not_fit():
    hw = eie_hw(pes=2)
    spmat = next(b for b in hw.buffers if b.name == "spmat")
    small = hw.with_changes(buffers=tuple(dataclasses.replace(b, capacity_bytes=16) if b is spmat else b
                                          for b in hw.buffers))  # 8 bytes = 8 entries of 8 bits per PE
    layer = linear_layer(np.ones((4, 6)), np.ones(6))  # 12 entries per PE, codebook: 96 bits, 64 fit
    assert run_eie(layer, hw).counts.weights_spilled_bits == 0
    counts = run_eie(layer, small).counts
    assert counts.weights_spilled_bits == 2 * (96 - 64)  # two PEs, one round


def test_simulate_results_and_energy_components():
    results = simulate_network("lenet-300-100", profile="han2015", hw="eie-64pe").layers
    assert results["numerics_exact"].all() and (results["dataflow"] == "eie").all()
    parts = results[[f"energy_{level}_pj" for level in ("mac", "rf", "sram", "dram")]].sum(axis=1)
    np.testing.assert_allclose(parts, results["energy_pj"], rtol=1e-12)
    pruned = results[results["variant"] == "pruned"]
    dense = results[results["variant"] == "dense"]
    assert (pruned["cycles"].to_numpy() < dense["cycles"].to_numpy()).all()
    assert (results["executed_macs"] == results["effectual_macs"] + results["filler_macs"]).all()
    assert (results["load_balance"] >= 1).all() and (results["energy_index_pj"] > 0).all()
    assert (results["energy_index_pj"] < results["energy_sram_pj"]).all()


def test_single_layer_api_dispatches_on_kind():
    layer = linear_layer(HAND_W, np.ones(3))
    run = simulate_layer(layer, eie_hw(pes=2, depth=2))
    assert run.eie is not None and run.record["cycles"] == 5 and run.record["fifo_stall_cycles"] == 1


def test_int16_table_extends_horowitz_without_changing_it(tmp_path):
    from hwmodels.energy import UnknownEnergyError, load_energy_table

    base, derived = load_energy_table("horowitz45"), load_energy_table("horowitz45-int16")
    with pytest.raises(UnknownEnergyError):
        base.arithmetic("mult", "int", 16)  # Horowitz's figures stay as published
    assert derived.arithmetic_rows[:-1] == base.arithmetic_rows and derived.sram_rows == base.sram_rows
    # log-log interpolation between Horowitz's 8-bit (0.2 pJ) and 32-bit (3.1 pJ) multiplies
    k = math.log(3.1 / 0.2) / math.log(32 / 8)
    assert derived.arithmetic("mult", "int", 16) == pytest.approx(0.2 * 2 ** k, abs=5e-4)
    bad = tmp_path / "bad.yaml"
    bad.write_text("schema: prunesim/energy-table/1\nname: bad\nextends: horowitz45\nnode_nm: 22\n")
    with pytest.raises(ValueError, match="node_nm: not allowed in a table that extends another"):
        load_energy_table(str(bad))
