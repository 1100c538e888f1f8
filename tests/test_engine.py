"""The cycle-level engine, the mapper and the results: monotonicity in DRAM bandwidth and buffer
size, stalls, partial-sum spills, energy bookkeeping, determinism and the CLI."""

import dataclasses
import subprocess
import sys

import pandas as pd
import pytest

from hwmodels.hardware import load_hardware
from sim.simulate import simulate_layer, simulate_network, summary_table, totals
from sim.workload import extract_workload
from test_systolic import PRESETS, conv_workload, systolic_hw


def _layers():
    """A strided conv, a padded conv with few output pixels and a fully connected layer."""
    import torch
    from torch import nn

    linear = nn.Linear(300, 70, bias=False)
    with torch.no_grad():
        linear.weight.copy_(torch.randn(70, 300, generator=torch.Generator().manual_seed(5)))
    fc = extract_workload(nn.Sequential(linear), sample=torch.relu(torch.randn(1, 300)), name="fc").compute_layers[0]
    return [conv_workload(3, 20, 5, 21, stride=2).compute_layers[0],
            conv_workload(16, 40, 3, 9, padding=1, density=0.3).compute_layers[0], fc]


LAYERS = _layers()


@pytest.mark.parametrize("dataflow", ["ws", "os", "is"])
def test_halving_dram_bandwidth_never_shortens_a_run(dataflow):
    for layer in LAYERS:
        cycles = []
        for bandwidth in (51.2, 25.6, 12.8, 6.4, 3.2, 1.6):
            hw = systolic_hw(dataflow, rows=8, cols=8, buffer_bytes=(2048, 2048, 4096), bandwidth_gbs=bandwidth)
            run = simulate_layer(layer, hw, numerics=False)
            cycles.append(run.engine.cycles)
            assert run.engine.cycles == run.engine.compute_cycles + run.engine.stall_cycles
        assert cycles == sorted(cycles), (layer.name, cycles)
        assert cycles[-1] > cycles[0]  # and a slow enough DRAM does show


@pytest.mark.parametrize("dataflow", ["ws", "os", "is"])
def test_a_buffer_twice_as_large_never_adds_dram_traffic(dataflow):
    for layer in LAYERS:
        for which in range(3):
            traffic = []
            for size in (512, 1024, 2048, 4096, 8192, 16384, 32768):
                sizes = [2048, 2048, 4096]
                sizes[which] = max(size, 512 if which < 2 else 2048)  # at least one 8x8 tile
                hw = systolic_hw(dataflow, rows=8, cols=8, buffer_bytes=sizes)
                record = simulate_layer(layer, hw, numerics=False).record
                traffic.append(record["dram_read_bits"] + record["dram_write_bits"])
            assert all(b <= a * (1 + 1e-12) for a, b in zip(traffic, traffic[1:])), (layer.name, which, traffic)


def test_stalls_add_up_and_have_causes():
    hw = load_hardware("systolic-os-32x32")
    slow = hw.with_changes(dram=dataclasses.replace(hw.dram, bandwidth_gbs=1.0))
    for layer in LAYERS:
        run = simulate_layer(layer, slow, numerics=False)
        stalls = run.engine.stalls
        assert set(stalls) == {"weights", "inputs", "psums", "output_drain"}
        assert all(v >= 0 for v in stalls.values())
        assert run.engine.cycles == run.engine.compute_cycles + sum(stalls.values())
        # Double buffering overlaps transfers with compute: the run is shorter than doing them
        # one after the other, and no shorter than either alone.
        assert run.mapping.slots == 2
        assert max(run.engine.compute_cycles, run.engine.dram_busy_cycles) <= run.engine.cycles
        assert run.engine.cycles < run.engine.compute_cycles + run.engine.dram_busy_cycles + \
            run.schedule.steps * 54
    fc = simulate_layer(LAYERS[2], slow, numerics=False)
    assert fc.engine.stalls["weights"] > fc.engine.stalls["inputs"]  # a fully connected layer waits for weights


def test_partial_sums_that_do_not_fit_are_spilled_and_counted():
    # WS, 4x4 array, int8 operands, 32-bit partial sums. Conv(8 -> 8, 3x3, pad 1) on 10x10:
    # K = 72 (18 row folds), M = 8 (2 column folds), N = 100. A column fold's partial sums are
    # 4 x 100 x 32 bits = 1600 bytes; the output buffer has 256 (two 128-byte slots).
    layer = conv_workload(8, 8, 3, 10, padding=1).compute_layers[0]
    hw = systolic_hw("ws", buffer_bytes=(1024, 4096, 256))
    spill = simulate_layer(layer, hw, loop_order="fold")
    assert spill.mapping.spills_psums
    # Every row fold but the last writes its partial sums out, every one but the first reads
    # them back: (18 - 1) x (8 x 100) x 32 bits each way.
    assert spill.record["psum_dram_write_bits"] == spill.record["psum_dram_read_bits"] == 17 * 8 * 100 * 32
    assert spill.record["dram_write_bits"] == 17 * 8 * 100 * 32 + 8 * 100 * 8  # plus the outputs
    # The automatic mapper keeps them on chip (chunk order) and moves fewer bits.
    auto = simulate_layer(layer, hw)
    assert auto.mapping.order == "chunk" and auto.record["psum_dram_write_bits"] == 0
    assert auto.record["dram_read_bits"] + auto.record["dram_write_bits"] < \
        spill.record["dram_read_bits"] + spill.record["dram_write_bits"]
    assert auto.record["compute_cycles"] > spill.record["compute_cycles"]  # more fills and drains


@pytest.fixture(scope="module")
def lenet5_results():
    return simulate_network("lenet-5", "han2015", hw="systolic-ws-32x32", seed=3, numerics=False)


def test_energy_totals_equal_the_sum_of_their_components(lenet5_results):
    layers, actions = lenet5_results.layers, lenet5_results.actions
    levels = layers[["energy_mac_pj", "energy_rf_pj", "energy_sram_pj", "energy_dram_pj"]].sum(axis=1)
    components = layers[["energy_mac_pj", "energy_rf_pj", "energy_wbuf_pj", "energy_ibuf_pj", "energy_obuf_pj",
                         "energy_dram_pj"]].sum(axis=1)
    assert levels.to_numpy() == pytest.approx(layers["energy_pj"].to_numpy(), rel=1e-12)
    assert components.to_numpy() == pytest.approx(layers["energy_pj"].to_numpy(), rel=1e-12)
    per_layer = actions.groupby(["variant", "layer"], sort=False)["energy_pj"].sum()
    assert per_layer.to_numpy() == pytest.approx(layers["energy_pj"].to_numpy(), rel=1e-12)
    total = totals(layers).set_index("variant")
    for variant, part in layers.groupby("variant"):
        for column in ("energy_pj", "energy_wbuf_pj", "cycles", "stall_cycles", "dram_read_bits"):
            assert total.at[variant, column] == pytest.approx(part[column].sum(), rel=1e-12)
    assert (layers["sram_read_bits"] == layers[["sram_wbuf_read_bits", "sram_ibuf_read_bits",
                                                "sram_obuf_read_bits"]].sum(axis=1)).all()


def test_same_seed_same_numbers(lenet5_results):
    again = simulate_network("lenet-5", "han2015", hw="systolic-ws-32x32", seed=3, numerics=False)
    pd.testing.assert_frame_equal(lenet5_results.layers, again.layers)
    pd.testing.assert_frame_equal(lenet5_results.actions, again.actions)
    other = simulate_network("lenet-5", "han2015", hw="systolic-ws-32x32", seed=4, numerics=False)
    assert not other.layers["input_density"].equals(again.layers["input_density"])


@pytest.mark.parametrize("hw", ["systolic-ws-32x32-sparse", "eie-64pe"])
def test_layers_in_threads_give_the_same_results_in_order(hw):
    """Layers run on a thread pool: the results, numerics included, do not depend on how many."""
    from sim.api import profile_workloads, resolve_profile
    from sim.simulate import simulate_workloads

    workloads = profile_workloads("lenet-5", resolve_profile("lenet-5", "han2015", None), seed=3)
    accelerator = load_hardware(hw)
    alone = simulate_workloads(workloads, accelerator, threads=1)
    together = simulate_workloads(workloads, accelerator, threads=4)
    assert list(together.layers["variant"] + " " + together.layers["layer"]) == [
        f"{v} {n}" for v in ("dense", "pruned") for n in ("conv1", "conv2", "fc1", "fc2")]
    assert together.layers["numerics_checked"].all()
    pd.testing.assert_frame_equal(alone.layers, together.layers)
    pd.testing.assert_frame_equal(alone.actions, together.actions)


def test_summary_table_has_a_total_per_variant(lenet5_results):
    table = summary_table(lenet5_results.layers)
    assert list(table.loc[table["layer"] == "total", "variant"]) == ["dense", "pruned"]
    assert (table["stall %"] >= 0).all() and (table["util %"] <= 100).all()


def test_all_presets_run_lenet_300_100():
    for name in PRESETS:
        results = simulate_network("lenet-300-100", hw=name).layers
        assert (results["cycles"] >= results["compute_cycles"]).all()
        assert results["numerics_checked"].all() and (results["numerics_rel_error"] <= 1e-5).all()


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "sim.cli", *args], capture_output=True, text=True)


def test_cli_simulate_writes_files_and_fails_in_one_line(tmp_path, capsys):
    from sim.cli import main

    out = tmp_path / "sim"
    done = _cli("simulate", "--model", "lenet-300-100", "--profile", "han2015", "--hw", "systolic-os-32x32",
                "--out", str(out), "--quiet")
    assert done.returncode == 0, done.stderr
    assert "total" in done.stdout and "fc1" in done.stdout
    assert sorted(p.name for p in out.iterdir()) == ["actions.csv", "energy.png", "hardware.yaml", "report.md",
                                                     "results.csv", "results.json", "totals.csv"]
    full = pd.read_csv(out / "results.csv")
    assert set(full["variant"]) == {"dense", "pruned"}
    # --no-dense: the pruned variant alone, row for row what the full run gave it
    alone = tmp_path / "pruned-only"
    assert main(["simulate", "--model", "lenet-300-100", "--profile", "han2015", "--hw", "systolic-os-32x32",
                 "--out", str(alone), "--quiet", "--no-dense"]) == 0
    pruned = pd.read_csv(alone / "results.csv")
    assert list(pruned["variant"].unique()) == ["pruned"]
    pd.testing.assert_frame_equal(pruned, full[full["variant"] == "pruned"].reset_index(drop=True))
    for args, words in ((["--hw", "han45nm"], ["systolic"]), (["--hw", "nope"], ["unknown hardware 'nope'"]),
                        (["--no-dense"], ["--no-dense", "--profile"]), (["--threads", "0"], ["--threads 0"]),
                        (["--checkpoint", str(tmp_path / "missing.pt")], ["missing.pt", "does not exist"])):
        capsys.readouterr()
        assert main(["simulate", "--model", "lenet-300-100", *args, "--out", str(tmp_path / "bad")]) == 2
        stderr = capsys.readouterr().err
        assert len(stderr.strip().splitlines()) == 1 and all(word in stderr for word in words), stderr
    assert not (tmp_path / "bad").exists()


def test_checkpoint_of_a_pruned_model(tmp_path):
    """A final.pt state_dict (pruned with masks) and its sparse .npz export simulate the same."""
    import torch

    from pruning.export import export_model
    from pruning.magnitude import prune_to_density, prunable_layers
    from pruning.zoo import build_model

    model = build_model("lenet-300-100", seed=7)
    for module in prunable_layers(model).values():
        prune_to_density(module, 0.1)
    torch.save(model.state_dict(), tmp_path / "final.pt")
    export_model(model, tmp_path / "model-relative.npz")
    runs = [simulate_network("lenet-300-100", hw="systolic-ws-32x32", checkpoint=tmp_path / name).layers
            for name in ("final.pt", "model-relative.npz")]
    for layers in runs:
        assert set(layers["variant"]) == {"checkpoint"}
        assert layers["weight_density"].to_numpy() == pytest.approx(0.1, abs=0.01)
        assert layers["numerics_checked"].all()
    assert runs[0]["energy_pj"].tolist() == runs[1]["energy_pj"].tolist()
    with pytest.raises(Exception, match="does not fit model 'lenet-5'"):
        simulate_network("lenet-5", hw="systolic-ws-32x32", checkpoint=tmp_path / "final.pt")


def _max_plus_cycles(schedule, timing):
    """The engine's contract written as a plain recurrence (no SimPy): the channel serves the
    program (reads of steps 0..s-1, then write i, reads i+s, ...) one transfer at a time, each
    once its dependency is done; step i computes when its reads have arrived, step i-1 is done
    and the write of step i-s is done."""
    import math

    n, slots = schedule.steps, schedule.mapping.slots
    streams = ("weights", "inputs", "psums")
    arrive = {s: [None] * n for s in streams}
    written, computed = [None] * n, [None] * n

    def busy(bits):
        return 0 if not bits or math.isinf(timing.bits_per_cycle) else math.ceil(bits / timing.bits_per_cycle)

    def compute(i):
        if computed[i] is None:
            start = max([computed[i - 1] if i else 0] + [arrive[s][i] for s in streams]
                        + ([written[i - slots]] if i >= slots else []))
            computed[i] = start + int(schedule.cycles[i])
        return computed[i]

    free = 0
    program = [("r", i) for i in range(min(slots, n))]
    for i in range(n):
        program.append(("w", i))
        if i + slots < n:
            program.append(("r", i + slots))
    for kind, i in program:
        if kind == "r":
            for s in streams:
                bits = schedule.reads[s][i]
                ready = compute(i - slots) if i >= slots else 0
                free = max(free, ready) + busy(bits)
                arrive[s][i] = free + (timing.latency_cycles if bits else 0)
        else:
            free = max(free, compute(i)) + busy(schedule.writes[i])
            written[i] = free
    return max(written[-1], computed[-1])


@pytest.mark.parametrize("dataflow", ["ws", "os", "is"])
def test_simpy_engine_agrees_with_the_max_plus_recurrence(dataflow):
    from sim.dram import DramTiming

    for layer in LAYERS:
        for bandwidth in (25.6, 2.0, 0.5):
            hw = systolic_hw(dataflow, rows=8, cols=8, buffer_bytes=(2048, 2048, 4096), bandwidth_gbs=bandwidth)
            run = simulate_layer(layer, hw, numerics=False)
            assert run.engine.cycles == _max_plus_cycles(run.schedule, DramTiming.of(hw)), (layer.name, bandwidth)
