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


# ---------------------------------------------------------------- memory system, clock by clock


def test_hand_worked_two_steps_through_a_slow_dram():
    """Two steps of 10 cycles, 100 weight bits in and 50 result bits out each, double buffered,
    10 bits per cycle, 3 cycles of read latency. Weights 0 are sent 0–10 and in at 13; weights 1
    sent 10–20, in at 23. Step 0 computes 13–23 (13 cycles waiting for weights), step 1 23–33;
    results 0 sent 23–28, results 1 33–38: 38 cycles = 20 compute + 13 weights + 5 drain."""
    from types import SimpleNamespace

    from sim.dram import DramTiming
    from sim.engine import run_schedule
    from sim.golden_engine import golden_engine

    hw = systolic_hw("ws", bandwidth_gbs=1.25, latency_ns=3)
    timing = DramTiming.of(hw)
    assert (timing.bits_per_cycle, timing.latency_cycles) == (10.0, 3)
    zero = np.zeros(2)
    schedule = SimpleNamespace(mapping=SimpleNamespace(slots=2), steps=2, cycles=np.array([10, 10]),
                               reads={"weights": np.array([100.0, 100.0]), "inputs": zero, "psums": zero},
                               writes=np.array([50.0, 50.0]))
    expected = {"weights": 13, "inputs": 0, "psums": 0, "output_drain": 5}
    golden = golden_engine(schedule, hw)
    assert (golden.cycles, golden.compute_cycles, golden.stalls, golden.dram_busy_cycles) == (38, 20, expected, 30)
    fast = run_schedule(schedule, hw)
    assert (fast.cycles, fast.compute_cycles, fast.stalls, fast.dram_busy_cycles) == (38, 20, expected, 30)
    single = SimpleNamespace(**{**schedule.__dict__, "mapping": SimpleNamespace(slots=1)})
    # one slot: weights 1 may load only after step 0 is computed, behind results 0 in program
    # order (results 0 sent 23–28, weights 1 28–38, in at 41): step 1 computes 41–51, results 51–56
    slow = {"weights": 13 + 18, "inputs": 0, "psums": 0, "output_drain": 5}
    for result in (golden_engine(single, hw), run_schedule(single, hw)):
        assert (result.cycles, result.stalls) == (56, slow)


@settings(max_examples=40, deadline=None)
@given(dataflow=st.sampled_from(["ws", "os", "is"]), rows=st.integers(1, 4), cols=st.integers(1, 4),
       cin=st.integers(1, 3), cout=st.integers(1, 6), kernel=st.integers(1, 3), size=st.integers(3, 6),
       density=st.floats(0.1, 1.0), buffer_bytes=st.sampled_from([64, 96, 256, 1024, 1 << 16]),
       bandwidth_gbs=st.sampled_from([0.05, 0.4, 3.2, 25.6, 400.0]), latency_ns=st.sampled_from([0, 7, 54, 300]),
       seed=st.integers(0, 1000))
def test_engine_fast_equals_golden_with_real_memory(dataflow, rows, cols, cin, cout, kernel, size, density,
                                                    buffer_bytes, bandwidth_gbs, latency_ns, seed):
    """The SimPy engine against the clock-by-clock one over buffer sizes (one or many steps, single
    or double buffered, spilled partial sums), bandwidths and latencies."""
    hw = systolic_hw(dataflow, rows, cols, buffer_bytes=(buffer_bytes,) * 3, bandwidth_gbs=bandwidth_gbs,
                     latency_ns=latency_ns)
    layer = conv_workload(cin, cout, kernel, size, density=density, seed=seed).compute_layers[0]
    try:
        run = simulate_layer(layer, hw, golden=True, numerics=False)  # raises on any disagreement
    except SimulationError as error:  # a buffer too small for any tile is the mapper's refusal, not ours
        assert "golden" not in str(error), error
        return
    assert run.record["golden_checked"]
    assert run.record["cycles"] == run.record["compute_cycles"] + run.record["stall_cycles"]


@settings(max_examples=25, deadline=None)
@given(m=st.integers(1, 9), k=st.integers(1, 30), n=st.integers(1, 4), density=st.floats(0.0, 1.0),
       kind=st.sampled_from(["bitmask", "relative_index"]), rows=st.integers(1, 4), cols=st.integers(1, 4),
       buffer_bytes=st.sampled_from([64, 256, 1 << 16]), bandwidth_gbs=st.sampled_from([0.05, 3.2, 400.0]),
       latency_ns=st.sampled_from([0, 54]), seed=st.integers(0, 10 ** 6))
def test_sparse_engine_fast_equals_golden_with_real_memory(m, k, n, density, kind, rows, cols, buffer_bytes,
                                                           bandwidth_gbs, latency_ns, seed):
    rng = np.random.default_rng(seed)
    weight = rng.choice([-1.0, -0.5, 0.5, 1.0], size=(m, k)) * (rng.random((m, k)) < density)
    samples = np.abs(rng.normal(size=(n, k)))
    hw = sparse_hw(kind, rows, cols, 2, "gate", buffer_bytes=(buffer_bytes,) * 3, bandwidth_gbs=bandwidth_gbs,
                   latency_ns=latency_ns)
    try:
        run = simulate_layer(batch_layer(weight, samples), hw, golden=True, numerics=False)
    except SimulationError as error:
        assert "golden" not in str(error), error
        return
    assert run.record["golden_checked"]
