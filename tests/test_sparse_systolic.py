"""The sparse option of the WS systolic array (sim/compaction.py): the same masks on a dense
(execute), a gated and a sparse (skip) design; cycles and metadata worked out by hand; metadata
equal to the storage formats of pruning/formats.py. Fast = golden for it: tests/test_golden.py."""

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eie_helpers import linear_layer
from hwmodels.hardware import HardwareError, WeightFormat, load_hardware
from pruning.formats import bitmask_size_bits, encode_relative_csc, size_bits
from sim.golden import golden_systolic
from sim.simulate import simulate_layer
from test_systolic import conv_workload, systolic_hw


def sparse_hw(kind: str = "relative_index", rows: int = 2, cols: int = 2, index_bits: int = 2,
              zero_activations: str = "execute", buffer_bytes=(1 << 16, 1 << 16, 1 << 16), **changes):
    """A small int8 WS array that skips zero weights stored as ``kind``."""
    base = systolic_hw("ws", rows, cols, buffer_bytes=buffer_bytes, zero_activations=zero_activations, **changes)
    return base.with_changes(mac_array=dataclasses.replace(base.mac_array, zero_weights="skip"),
                             weight_format=WeightFormat(kind, index_bits, index_bits))


def batch_layer(weight: np.ndarray, samples: np.ndarray):
    """A Linear layer applied to ``samples`` (N × in): N input vectors, as im2col gives a conv."""
    layer = linear_layer(weight, samples[0])
    return dataclasses.replace(layer, input_shape=samples.shape, output_shape=(len(samples), weight.shape[0]),
                               input_sample=np.asarray(samples, dtype=np.float32))


# The hand-worked layer: W is 2 outputs x 6 inputs, on a 2x2 array, N = 3 input vectors.
# Output 0 keeps k = 0, 1, 4; output 1 keeps k = 5. With 2-bit relative indices (span 4), output
# 1's gap of 5 zeros needs a filler on the 4th zero (k = 3), then gap 1: entries [0, 1, 4] and
# [3(filler), 5], 5 entries in all.
W = np.array([[1.0, -1.0, 0, 0, 1.0, 0], [0, 0, 0, 0, 0, -1.0]])
X = np.array([[1.0, 2.0, 0, 1.0, 1.0, 3.0], [0, 1.0, 1.0, 0, 2.0, 1.0], [1.0, 1.0, 1.0, 1.0, 0, 0]])
FOLD = 2 * 2 + 2 + 3 - 2  # 2R + C + N - 2 = 7 cycles per fold or pass


def test_hand_worked_dense_gated_and_sparse_cycles_and_metadata():
    layer = batch_layer(W, X)
    dense = simulate_layer(layer, systolic_hw("ws", 2, 2, buffer_bytes=(1 << 16,) * 3), ideal_memory=True,
                           loop_order="fold")
    gated = simulate_layer(layer, systolic_hw("ws", 2, 2, buffer_bytes=(1 << 16,) * 3, zero_weights="gate",
                                              zero_activations="gate"), ideal_memory=True, loop_order="fold")
    bitmask = simulate_layer(layer, sparse_hw("bitmask"), ideal_memory=True, loop_order="fold")
    relative = simulate_layer(layer, sparse_hw("relative_index"), ideal_memory=True, loop_order="fold")
    # Dense and gated: ceil(6/2) = 3 row folds of 7 cycles. Sparse: the densest column (output 0,
    # 3 entries; relative index: output 1 has 2 with its filler) needs ceil(3/2) = 2 passes.
    assert [r.record["cycles"] for r in (dense, gated, bitmask, relative)] == [3 * FOLD, 3 * FOLD, 2 * FOLD, 2 * FOLD]
    assert [r.record["folds"] for r in (dense, gated, bitmask, relative)] == [3, 3, 2, 2]
    # MACs: 2 x 6 x 3 = 36 dense. Effectual (both operands non-zero): output 0 with k = 0, 1, 4
    # meets 2 + 3 + 2 non-zero inputs, output 1 with k = 5 meets 2: 9.
    assert dense.macs.executed == 36 and dense.macs.effectual == 9
    assert (gated.macs.executed, gated.macs.gated) == (9, 27)
    assert (bitmask.macs.executed, bitmask.macs.skipped) == (4 * 3, 36 - 12)  # 4 entries x N
    assert (relative.macs.executed, relative.macs.skipped) == (5 * 3, 36 - 15)
    assert (bitmask.record["filler_macs"], relative.record["filler_macs"]) == (0, 3)  # the filler meets 3 inputs
    # Metadata read with the passes. Bitmask: output 0's pass 0 scans k = 0..1 (2 bits), its last
    # pass k = 2..5 (4 bits); output 1's only pass scans all 6: 12 bits = M x K. Relative index:
    # 5 entries x 2 bits + 3 pointers (M + 1) of pointer_width(5) = 3 bits = 19 bits.
    assert bitmask.record["index_read_bits"] == 12 and relative.record["index_read_bits"] == 5 * 2 + 3 * 3
    # Values read from the weight buffer: the entries only (int8), against all 12 weights.
    assert bitmask.schedule.sram_read_bits["weights"] == 4 * 8
    assert relative.schedule.sram_read_bits["weights"] == 5 * 8
    assert dense.schedule.sram_read_bits["weights"] == 12 * 8
    # Inputs read: distinct k per pass x N. Relative pass 0 holds k = {0, 1} and {3, 5}, pass 1
    # k = {4}: (4 + 1) x 3 values; dense: 6 rows x 3.
    assert relative.schedule.sram_read_bits["inputs"] == 5 * 3 * 8
    assert dense.schedule.sram_read_bits["inputs"] == 6 * 3 * 8
    for run in (bitmask, relative):
        assert run.record["numerics_exact"] and run.record["golden_checked"] is False
        assert run.record["energy_index_pj"] > 0
    golden = golden_systolic(layer, sparse_hw("relative_index"))
    assert (golden.cycles, golden.folds, golden.metadata_bits, golden.filler_macs) == (2 * FOLD, 2, 19, 3)


def test_metadata_bits_equal_the_storage_formats():
    rng = np.random.default_rng(3)
    weight = rng.choice([-1.0, -0.5, 0.5, 1.0], size=(7, 40)) * (rng.random((7, 40)) < 0.2)  # exact in int8
    layer = batch_layer(weight, np.abs(rng.normal(size=(2, 40))))
    for kind, index_bits in (("bitmask", 4), ("relative_index", 2), ("relative_index", 4)):
        run = simulate_layer(layer, sparse_hw(kind, 4, 3, index_bits), ideal_memory=True, loop_order="fold")
        nonzeros = int(np.count_nonzero(weight))
        if kind == "bitmask":
            expected = bitmask_size_bits(weight.shape, nonzeros, 8) - nonzeros * 8
            entries = nonzeros
        else:
            stored = encode_relative_csc(weight.T, index_bits, 8)
            entries = len(stored.values)
            expected = size_bits(stored) - entries * 8
        # one load of the weights (fold order: each pass loads its tile once), fetched once
        assert run.record["index_read_bits"] == expected == run.record["index_dram_read_bits"]
        assert run.record["index_write_bits"] == expected
        assert run.record["weight_storage_bits"] == expected + entries * 8
        assert run.macs.executed == entries * 2


@settings(max_examples=15, deadline=None)
@given(cin=st.integers(1, 6), cout=st.integers(1, 12), kernel=st.integers(1, 3), size=st.integers(4, 9),
       density=st.floats(0.02, 1.0), rows=st.integers(2, 6), cols=st.integers(2, 6), ideal=st.booleans(),
       kind=st.sampled_from(["bitmask", "relative_index"]), seed=st.integers(0, 1000))
def test_skip_never_slower_than_gate_and_gate_never_costs_more_than_execute(cin, cout, kernel, size, density, rows,
                                                                           cols, ideal, kind, seed):
    layer = conv_workload(cin, cout, kernel, size, padding=kernel // 2, density=density, seed=seed).compute_layers[0]
    buffers = (4096, 4096, 4096)
    execute = simulate_layer(layer, systolic_hw("ws", rows, cols, buffers), ideal_memory=ideal)
    gate = simulate_layer(layer, systolic_hw("ws", rows, cols, buffers, zero_weights="gate",
                                             zero_activations="gate"), ideal_memory=ideal)
    skip = simulate_layer(layer, sparse_hw(kind, rows, cols, 3, "gate", buffers), ideal_memory=ideal)
    assert gate.record["compute_cycles"] == execute.record["compute_cycles"]
    assert gate.record["energy_pj"] <= execute.record["energy_pj"]
    assert skip.record["compute_cycles"] <= gate.record["compute_cycles"]
    # The same useful work; skipping adds only the filler zeros of overflowing relative indices.
    assert skip.macs.effectual == gate.macs.effectual
    assert skip.macs.executed <= gate.macs.executed + skip.record["filler_macs"]
    for run in (execute, gate, skip):  # the engine's invariant holds with metadata in the weight stream
        assert run.record["cycles"] == run.record["compute_cycles"] + run.record["stall_cycles"]


def test_sparse_pruned_layer_on_the_presets_is_faster_and_cheaper_in_compute():
    layer = conv_workload(32, 64, 3, 14, padding=1, density=0.1, seed=1).compute_layers[0]
    runs = {name: simulate_layer(layer, load_hardware(name))
            for name in ("systolic-ws-32x32", "systolic-ws-32x32-gated", "systolic-ws-32x32-sparse")}
    dense, gated, sparse = runs.values()
    assert gated.record["cycles"] == dense.record["cycles"]
    assert gated.record["energy_mac_pj"] < dense.record["energy_mac_pj"]
    # K = 288, 9 dense row folds per column fold; at 10% density the densest of 32 columns holds
    # far fewer than 288 weights, so far fewer passes.
    assert sparse.record["folds"] < dense.record["folds"] / 2
    assert sparse.record["compute_cycles"] < dense.record["compute_cycles"] / 2
    assert sparse.record["dram_read_bits"] < dense.record["dram_read_bits"]
    assert sparse.record["index_dram_read_bits"] > 0 and sparse.record["energy_index_pj"] > 0
    assert sparse.record["input_fanout"] > 1  # a pass reads more distinct inputs than the dense array's R
    assert sparse.record["numerics_checked"] and sparse.record["numerics_rel_error"] <= 1e-5


def test_sparse_presets_are_systolic_ws_32x32_with_other_zero_handling():
    base = load_hardware("systolic-ws-32x32")
    for name, weights, activations, kind in (("systolic-ws-32x32-gated", "gate", "gate", "dense"),
                                             ("systolic-ws-32x32-sparse", "skip", "gate", "relative_index")):
        hw = load_hardware(name)
        assert hw.weight_format.kind == kind
        assert (hw.mac_array.zero_weights, hw.mac_array.zero_activations) == (weights, activations)
        same = dataclasses.replace(hw.mac_array, zero_weights="execute", zero_activations="execute")
        assert same == base.mac_array and hw.buffers == base.buffers and hw.dram == base.dram
        assert hw.clock_mhz == base.clock_mhz and hw.energy == base.energy


@pytest.mark.parametrize("changes, field, message", [
    ({"dataflow": "os"}, "mac_array.zero_weights", "'ws' only"),
    ({"zero_activations": "skip"}, "mac_array.zero_activations", "valid: 'execute', 'gate'"),
])
def test_skip_is_refused_where_it_is_not_modelled(tmp_path, changes, field, message):
    import yaml

    from sim.cli import main

    data = yaml.safe_load(load_hardware("systolic-ws-32x32-sparse").to_yaml())
    data["mac_array"].update(changes)
    path = tmp_path / "hw.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(HardwareError, match=message) as error:
        load_hardware(path)
    assert f"field '{field}'" in str(error.value)
    assert main(["hw", "show", str(path)]) == 2
    data["mac_array"].update({"dataflow": "ws", "zero_activations": "gate"})
    data["weight_format"] = {"kind": "relative_index", "index_bits_linear": 0, "index_bits_conv": 8}
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(HardwareError, match="weight_format.index_bits_linear"):
        load_hardware(path)
