"""Design-space sweeps: the sweep file's checks, point ids and sampling, results against the
estimator and simulator run directly, infeasible points, resume, and pool vs Dask."""

import hashlib
import json
import math

import pandas as pd
import pytest
import yaml

import sim.sweep as sweep_module
from sim.api import estimate_workloads, profile_workloads, resolve_profile
from sim.cli import main
from sim.executors import DaskExecutor, InProcess, LocalPool
from sim.simulate import simulate_workloads
from sim.sweep import run_sweep
from sim.sweepfile import SweepError, load_sweep

LENET = {"model": "lenet-300-100", "profile": "han2015"}
EVALUATE_POINT = sweep_module.evaluate_point


def sweep_of(tmp_path, **fields):
    raw = {"base": "han45nm", "parameters": {"mac_array.cols": [16, 64]}, "workloads": [LENET], **fields}
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return load_sweep(path)


@pytest.fixture(scope="module")
def lenet_pruned():
    return profile_workloads("lenet-300-100", resolve_profile("lenet-300-100", "han2015", None))["pruned"]


@pytest.mark.parametrize("change, words", [
    ({"paramters": {"mac_array.cols": [1]}}, ["field 'paramters'", "unknown key"]),
    ({"parameters": {"mac_array.rowz": [1]}}, ["field 'parameters.mac_array.rowz'", "no field 'rowz'", "rows"]),
    ({"parameters": {"buffers.wbuff.capacity_bytes": [1]}, "base": "systolic-ws-32x32"},
     ["parameters.buffers.wbuff.capacity_bytes", "no entry 'wbuff'", "wbuf, ibuf, obuf"]),
    ({"parameters": {"mac_array.cols": []}}, ["field 'parameters.mac_array.cols'"]),
    ({"parameters": {"mac_array.cols": [8, 8]}}, ["parameters.mac_array.cols", "listed twice"]),
    ({"parameters": {"mac_array.precision": [{"dtype": "fp", "bits": 16, "accumulator_bits": 32}],
                     "mac_array.precision.bits": [8]}}, ["parameters.mac_array.precision.bits", "inside"]),
    ({"sampling": "random"}, ["field 'samples'", "required"]),
    ({"sampling": "random", "samples": 3}, ["field 'samples'", "more than the 2 combinations"]),
    ({"sampling": "sobol"}, ["field 'sampling'"]),
    ({"base": "tpu9"}, ["field 'base'", "unknown hardware 'tpu9'", "han45nm"]),
    ({"mode": "cycle"}, ["field 'mode'", "ideal"]),
    ({"workloads": [{"model": "resnet"}]}, ["field 'workloads.0.model'", "alexnet"]),
    ({"workloads": [{"model": "lenet-5", "profile": "han2099"}]}, ["field 'workloads.0.profile'", "han2015"]),
    ({"workloads": [{"model": "lenet-5", "checkpoint": "nope.pt"}]}, ["field 'workloads.0.checkpoint'", "nope.pt"]),
    ({"workloads": [LENET, LENET]}, ["field 'workloads.1'", "twice"]),
])
def test_bad_sweep_file_names_the_field(tmp_path, change, words):
    with pytest.raises(SweepError) as caught:
        sweep_of(tmp_path, **change)
    message = str(caught.value)
    assert "\n" not in message
    for word in words:
        assert word in message, message


def test_cli_bad_sweep_file_one_line_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("base: han45nm\nparameters: {mac_array.colz: [8]}\nworkloads: [{model: lenet-5}]\n")
    out = tmp_path / "out"
    assert main(["sweep", str(bad), "--out", str(out)]) == 2  # what `prunesim` exits with
    captured = capsys.readouterr()
    assert captured.out == ""
    [line] = captured.err.strip().splitlines()
    assert line.startswith(f"prunesim: error: {bad}: field 'parameters.mac_array.colz': no field 'colz' in "
                           "mac_array; valid: kind, rows, cols, precision, zero_weights")
    assert not out.exists()


def test_grid_order_and_stable_ids(tmp_path):
    sweep = sweep_of(tmp_path, parameters={"mac_array.cols": [16, 32, 64], "dram.interface": ["lpddr2", "lpddr4"]})
    points = sweep.points()
    assert sweep.grid_size == 6 and len(points) == 6
    assert [(p.values["mac_array.cols"], p.values["dram.interface"]) for p in points] == [
        (16, "lpddr2"), (16, "lpddr4"), (32, "lpddr2"), (32, "lpddr4"), (64, "lpddr2"), (64, "lpddr4")]
    # The id is the SHA-256 of the values as canonical JSON: the same in every run and machine.
    text = json.dumps({"dram.interface": "lpddr2", "mac_array.cols": 16}, sort_keys=True, separators=(",", ":"))
    assert points[0].id == hashlib.sha256(text.encode()).hexdigest()[:12] == "07e1889dbc47"
    assert len({p.id for p in points}) == 6
    hw = points[3].hardware(sweep.base)
    assert (hw.name, hw.mac_array.cols, hw.dram.interface) == (f"han45nm#{points[3].id}", 32, "lpddr4")


def test_random_sampling_is_seeded_subset(tmp_path):
    parameters = {"mac_array.cols": [8, 16, 32, 64, 128], "dram.interface": ["lpddr2", "lpddr4", "ddr3"],
                  "mac_array.zero_weights": ["execute", "gate", "skip"]}
    grid = {p.id for p in sweep_of(tmp_path, parameters=parameters).points()}
    first = sweep_of(tmp_path, parameters=parameters, sampling="random", samples=10, seed=7).points()
    again = sweep_of(tmp_path, parameters=parameters, sampling="random", samples=10, seed=7).points()
    other = sweep_of(tmp_path, parameters=parameters, sampling="random", samples=10, seed=8).points()
    assert [p.id for p in first] == [p.id for p in again]
    assert len({p.id for p in first}) == 10 and {p.id for p in first} <= grid
    assert [p.id for p in first] != [p.id for p in other]
    order = [p.id for p in sweep_of(tmp_path, parameters=parameters).points()]
    assert [p.id for p in first] == sorted((p.id for p in first), key=order.index)  # kept in grid order


def test_analytical_rows_match_the_estimator(tmp_path, lenet_pruned):
    sweep = sweep_of(tmp_path)
    result = run_sweep(sweep, tmp_path / "out", progress=False)
    assert len(result.results) == 2 * 3 and len(result.totals) == 2
    for point in sweep.points():
        rows = result.results[result.results["point_id"] == point.id].reset_index(drop=True)
        direct = estimate_workloads({"x": lenet_pruned}, point.hardware(sweep.base))
        for column in ("layer", "energy_pj", "energy_dram_pj", "cycles", "latency_us", "hardware"):
            assert rows[column].tolist() == direct[column].tolist()
    fc1 = result.results.query("layer == 'fc1'").set_index("mac_array.cols")
    # Han 2015 Table 2: fc1 keeps 8% of 235,200 weights on a dense input: 18,816 MACs, over
    # 16 or 64 MAC units.
    assert fc1.loc[16, "compute_cycles"] == 18816 / 16 == 1176
    assert fc1.loc[64, "compute_cycles"] == 18816 / 64 == 294
    assert fc1.loc[16, "edp_pj_s"] == pytest.approx(fc1.loc[16, "energy_pj"] * fc1.loc[16, "latency_us"] * 1e-6)
    totals = result.totals.set_index("mac_array.cols")
    assert totals.loc[16, "energy_pj"] == pytest.approx(result.results.query("`mac_array.cols` == 16")["energy_pj"].sum())
    assert (totals["area_mm2"] > 0).all()
    assert set(pd.read_csv(tmp_path / "out" / "results.csv")["point_id"]) == {p.id for p in sweep.points()}


def test_cycle_mode_rows_match_the_simulator(tmp_path, lenet_pruned):
    sweep = sweep_of(tmp_path, base="systolic-ws-32x32", mode="cycle",
                     parameters={"dram.bandwidth_gbs": [6.4, 25.6]})
    result = run_sweep(sweep, tmp_path / "out", progress=False)
    for point in sweep.points():
        rows = result.results[result.results["point_id"] == point.id].reset_index(drop=True)
        direct = simulate_workloads({"x": lenet_pruned}, point.hardware(sweep.base), numerics=False).layers
        assert rows["cycles"].tolist() == direct["cycles"].tolist()
        assert rows["energy_pj"].tolist() == direct["energy_pj"].tolist()
    cycles = result.totals.set_index("dram.bandwidth_gbs")["cycles"]
    assert cycles[6.4] > cycles[25.6]  # a quarter of the bandwidth stalls the array longer


def test_infeasible_point_recorded_with_reason(tmp_path):
    # A 32x32 fp16 array needs a 2048-byte weight tile in the weight buffer.
    sweep = sweep_of(tmp_path, base="systolic-ws-32x32", parameters={"buffers.wbuf.capacity_bytes": [1024, 65536]})
    result = run_sweep(sweep, tmp_path / "out", progress=False)
    bad = result.totals[result.totals["buffers.wbuf.capacity_bytes"] == 1024].iloc[0]
    assert not bad["feasible"] and math.isnan(bad["energy_pj"])
    assert "field 'buffers.0.capacity_bytes'" in bad["reason"] and "valid: >= 2048" in bad["reason"]
    good = result.totals[result.totals["buffers.wbuf.capacity_bytes"] == 65536].iloc[0]
    assert good["feasible"] and good["energy_pj"] > 0 and pd.isna(good["reason"])
    assert result.pareto["point_id"].tolist() == [good["point_id"]]


def count_calls(monkeypatch, stop_after=None):
    calls = []

    def counting(job, point):
        if stop_after is not None and len(calls) == stop_after:
            raise KeyboardInterrupt  # the user's Ctrl-C in the middle of the sweep
        calls.append(point.id)
        return EVALUATE_POINT(job, point)

    monkeypatch.setattr(sweep_module, "evaluate_point", counting)
    return calls


def test_resume_recomputes_nothing_that_finished(tmp_path, monkeypatch):
    sweep = sweep_of(tmp_path, parameters={"mac_array.cols": [16, 32, 64], "dram.interface": ["lpddr2", "lpddr4"]})
    out = tmp_path / "out"
    first = count_calls(monkeypatch, stop_after=2)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(sweep, out, InProcess(), progress=False)
    assert len(first) == 2 and sorted(p.name for p in (out / "points").iterdir()) == sorted(f"{i}.parquet" for i in first)

    second = count_calls(monkeypatch)
    resumed = run_sweep(sweep, out, InProcess(), progress=False)
    assert resumed.evaluated == 4 and sorted(second) == sorted(p.id for p in sweep.points() if p.id not in first)

    third = count_calls(monkeypatch)
    again = run_sweep(sweep, out, InProcess(), progress=False)
    assert third == [] and again.evaluated == 0
    clean = run_sweep(sweep, tmp_path / "clean", InProcess(), progress=False)
    pd.testing.assert_frame_equal(resumed.results, clean.results)
    pd.testing.assert_frame_equal(again.totals, clean.totals)

    other = sweep_of(tmp_path, base="systolic-ws-32x32", parameters={"mac_array.cols": [16, 32]})
    with pytest.raises(SweepError, match="another base, mode or workloads"):
        run_sweep(other, out, InProcess(), progress=False)


def test_pool_and_dask_give_identical_results(tmp_path):
    from distributed import Client, LocalCluster

    sweep = sweep_of(tmp_path, parameters={"mac_array.cols": [16, 64], "mac_array.zero_weights": ["gate", "skip"]})
    serial = run_sweep(sweep, tmp_path / "serial", InProcess(), progress=False)
    pool = run_sweep(sweep, tmp_path / "pool", LocalPool(2), progress=False)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        dask = run_sweep(sweep, tmp_path / "dask", DaskExecutor(client), progress=False)
    assert pool.evaluated == dask.evaluated == 4
    for result in (pool, dask):
        pd.testing.assert_frame_equal(result.results, serial.results)
        pd.testing.assert_frame_equal(result.totals, serial.totals)
        pd.testing.assert_frame_equal(result.pareto, serial.pareto)
    assert (tmp_path / "pool" / "results.parquet").read_bytes() == (tmp_path / "dask" / "results.parquet").read_bytes()
