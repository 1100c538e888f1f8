"""Golden mode (sim/golden.py, cycle by cycle) against the fast models: to the cycle and on every
action count, over random small layers, masks, activation densities, array sizes, FIFO depths,
and for the sparse WS option (sim/compaction.py) weight formats and index widths."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eie_helpers import eie_hw, linear_layer
from hwmodels.hardware import Precision
from sim.eie import run_eie
from sim.golden import GOLDEN_MAX_MACS, golden_eie, golden_systolic
from sim.mapping import SimulationError
from sim.simulate import simulate_layer
from test_sparse_systolic import batch_layer, sparse_hw
from test_systolic import conv_workload, systolic_hw


def _assert_eie_agrees(layer, hw):
    run = run_eie(layer, hw)
    fast, golden = run.counts, golden_eie(layer, hw)
    pes = hw.mac_array.pes
    assert golden.cycles == fast.compute_cycles
    assert golden.fifo_stall_cycles == fast.fifo_stall_cycles
    assert golden.broadcasts == fast.broadcasts
    assert golden.entries == fast.entries and golden.filler_macs == fast.filler_macs
    assert golden.spmat_words == fast.spmat_words and golden.pointer_reads == fast.pointer_reads
    assert golden.queue_writes == golden.queue_reads == fast.broadcasts * pes
    assert golden.codebook_reads == (fast.entries if run.layout.codebook is not None else 0)
    np.testing.assert_array_equal(golden.pe_busy, fast.pe_busy)
    np.testing.assert_array_equal(golden.pe_entries, fast.pe_entries)
    np.testing.assert_array_equal(golden.outputs, run.outputs)
    # the priced action rows are the fast counts
    actions = run.actions.set_index(["component", "action"])["count"]
    assert actions[("mac", "mac")] == golden.entries
    assert actions[("queue", "write")] == golden.queue_writes
    assert actions[("spmat", "read")] == golden.spmat_words


@settings(max_examples=60, deadline=None)
@given(m=st.integers(1, 24), k=st.integers(1, 24), w_density=st.floats(0.02, 1.0), a_density=st.floats(0.0, 1.0),
       pes=st.integers(1, 5), depth=st.integers(1, 6), index_bits=st.integers(1, 4), shared=st.booleans(),
       acc_bits=st.sampled_from([18, 24, 48]), overflow=st.sampled_from(["saturate", "wrap"]),
       seed=st.integers(0, 10 ** 6))
def test_eie_fast_equals_golden_on_linear_layers(m, k, w_density, a_density, pes, depth, index_bits, shared,
                                                 acc_bits, overflow, seed):
    rng = np.random.default_rng(seed)
    weight = rng.normal(size=(m, k))
    if shared:  # a weight-shared layer: at most 7 distinct values, stored as codes
        weight = np.round(weight * 2) / 2
    weight *= rng.random((m, k)) < w_density
    sample = np.abs(rng.normal(size=k)) * (rng.random(k) < a_density)
    hw = eie_hw(pes, depth, index_bits, precision=Precision("int", 16, acc_bits, overflow))
    _assert_eie_agrees(linear_layer(weight, sample), hw)


@settings(max_examples=12, deadline=None)
@given(cin=st.integers(1, 4), cout=st.integers(1, 6), kernel=st.integers(1, 3), size=st.integers(3, 6),
       stride=st.integers(1, 2), density=st.floats(0.1, 1.0), pes=st.integers(1, 4), depth=st.integers(1, 4),
       seed=st.integers(0, 1000))
def test_eie_fast_equals_golden_on_conv_layers(cin, cout, kernel, size, stride, density, pes, depth, seed):
    layer = conv_workload(cin, cout, kernel, size, stride=stride, padding=kernel // 2, density=density,
                          seed=seed).compute_layers[0]
    _assert_eie_agrees(layer, eie_hw(pes, depth, index_bits=2))


@settings(max_examples=30, deadline=None)
@given(dataflow=st.sampled_from(["ws", "os", "is"]), rows=st.integers(1, 4), cols=st.integers(1, 4),
       cin=st.integers(1, 3), cout=st.integers(1, 5), kernel=st.integers(1, 3), size=st.integers(3, 5),
       density=st.floats(0.1, 1.0), gate=st.sampled_from([("execute", "execute"), ("gate", "execute"),
                                                          ("execute", "gate"), ("gate", "gate")]),
       seed=st.integers(0, 1000))
def test_systolic_fast_equals_golden_with_ideal_memory(dataflow, rows, cols, cin, cout, kernel, size, density, gate,
                                                       seed):
    hw = systolic_hw(dataflow, rows, cols, buffer_bytes=(1 << 16, 1 << 16, 1 << 16), zero_weights=gate[0],
                     zero_activations=gate[1])
    layer = conv_workload(cin, cout, kernel, size, density=density, seed=seed).compute_layers[0]
    run = simulate_layer(layer, hw, ideal_memory=True, loop_order="fold")
    golden = golden_systolic(layer, hw.mac_array)
    assert golden.cycles == run.record["cycles"] == run.record["compute_cycles"]
    assert golden.folds == run.mapping.folds
    assert (golden.executed_macs, golden.gated_macs, golden.effectual_macs) == \
        (run.macs.executed, run.macs.gated, run.macs.effectual)
    bits = hw.mac_array.precision.bits
    for kind in ("weights", "inputs"):  # operands the array reads from its buffers
        assert golden.reads[kind] * bits == run.schedule.sram_read_bits[kind]


@settings(max_examples=40, deadline=None)
@given(m=st.integers(1, 9), k=st.integers(1, 30), n=st.integers(1, 4), density=st.floats(0.0, 1.0),
       holes=st.integers(0, 3), rows=st.integers(1, 4), cols=st.integers(1, 4),
       kind=st.sampled_from(["bitmask", "relative_index"]), index_bits=st.integers(1, 3),
       gate=st.booleans(), a_density=st.floats(0.0, 1.0), seed=st.integers(0, 10 ** 6))
def test_sparse_fast_equals_golden_on_linear_layers(m, k, n, density, holes, rows, cols, kind, index_bits, gate,
                                                    a_density, seed):
    rng = np.random.default_rng(seed)
    weight = rng.choice([-1.0, -0.5, 0.5, 1.0], size=(m, k)) * (rng.random((m, k)) < density)
    if holes:  # a mostly dense matrix with a few zeros: dense and compacted columns in one fold
        weight = rng.choice([-1.0, 1.0], size=(m, k))
        weight.flat[rng.choice(m * k, min(holes, m * k), replace=False)] = 0
    samples = np.abs(rng.normal(size=(n, k))) * (rng.random((n, k)) < a_density)
    hw = sparse_hw(kind, rows, cols, index_bits, "gate" if gate else "execute")
    run = simulate_layer(batch_layer(weight, samples), hw, ideal_memory=True, golden=True)  # raises on any disagreement
    assert run.record["golden_checked"] and run.record["cycles"] == run.record["compute_cycles"]
    assert run.macs.executed + run.macs.gated + run.macs.skipped == run.macs.dense


@settings(max_examples=12, deadline=None)
@given(cin=st.integers(1, 4), cout=st.integers(1, 6), kernel=st.integers(1, 3), size=st.integers(3, 5),
       density=st.floats(0.05, 1.0), rows=st.integers(1, 4), cols=st.integers(1, 4),
       kind=st.sampled_from(["bitmask", "relative_index"]), seed=st.integers(0, 1000))
def test_sparse_fast_equals_golden_on_conv_layers(cin, cout, kernel, size, density, rows, cols, kind, seed):
    layer = conv_workload(cin, cout, kernel, size, padding=kernel // 2, density=density, seed=seed).compute_layers[0]
    run = simulate_layer(layer, sparse_hw(kind, rows, cols, 2, "gate"), ideal_memory=True, golden=True)
    assert run.record["golden_checked"]


def test_hand_worked_4x4_fold_cycles_in_golden_mode():
    # One fold of a 4x4 array: 2R + C + T - 2 cycles (sim/systolic.py); a 4x4 x 4x5 product in WS
    # is one fold with T = N = 5: 8 + 4 + 5 - 2 = 15 cycles.
    layer = linear_layer(np.ones((4, 4)), np.ones((5, 4)))
    layer = type(layer)(**{**layer.__dict__, "input_shape": (5, 4), "output_shape": (5, 4)})
    golden = golden_systolic(layer, systolic_hw("ws", 4, 4).mac_array)
    assert (golden.cycles, golden.folds, golden.executed_macs) == (15, 1, 4 * 4 * 5)


def test_golden_mode_refuses_large_layers():
    layer = linear_layer(np.ones((2000, 1001)), np.ones(1001))
    assert layer.dense_macs > GOLDEN_MAX_MACS
    with pytest.raises(SimulationError, match="golden mode"):
        golden_eie(layer, eie_hw(2))
