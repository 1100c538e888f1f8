"""Design-space sweeps: every design point of a sweep file (:mod:`sim.sweepfile`) on every
workload, stored point by point, assembled into tables, Pareto fronts and plots.

Each point is evaluated by :func:`evaluate_point` (``analytical``: :func:`sim.api.estimate_workloads`;
``cycle``: :func:`sim.simulate.simulate_workloads` without the numerics check) wherever the
executor runs it (:mod:`sim.executors`: this process, a local process pool, a Dask cluster). The
parent process stores each finished point at once as ``DIR/points/ID.parquet`` (written
atomically), so an interrupted sweep rerun with the same file and ``--out`` evaluates only the
points not stored yet. ``DIR/sweep.json`` records what every point depends on besides its values
(base description, mode, workloads); a folder holding another sweep's points is refused. (A new
version of prunesim is not detected: start a fresh ``--out`` after upgrading.)

A point whose combination is not valid hardware (:class:`~hwmodels.hardware.HardwareError`, e.g.
a buffer too small for an array tile), or that a workload cannot run on
(:class:`~sim.mapping.SimulationError`, :class:`~hwmodels.energy.UnknownEnergyError`), is
recorded as infeasible with the error's text; any other error stops the sweep (finished points
stay stored).

Output files in ``DIR``:

- ``results.parquet`` and ``results.csv``: one row per (design point, workload, layer);
- ``totals.parquet`` and ``totals.csv``: one row per (design point, workload), network totals;
- ``pareto.csv``: the rows of ``totals`` on the Pareto front of their workload over
  :data:`OBJECTIVES`, with ``best_for`` naming the objectives a row is best in;
- ``pareto_W.png`` per workload W (characters other than letters, digits and ``._-`` as ``_``):
  energy vs latency and energy vs area, front highlighted, best points named;
- ``sweep.json``: the sweep file's source, fingerprint, parameters and points (id, values);
- ``points/``: one Parquet file per finished point (the resume store).

Columns, in this order (rows sorted by the points' grid order, then workload order as listed,
then layer order):

- ``point_id``: 12 hex digits, the same for the same parameter values in every run;
- one column per varied parameter, named by its dotted path (the only columns whose names contain
  a dot); mapping values (e.g. a precision) as text ``key=value,...``, and the values of a
  parameter that mixes types as text too;
- ``workload`` (the workload's label), ``layer`` (``total`` in totals; empty for an infeasible
  row), ``feasible`` (bool), ``reason`` (the error text of an infeasible row, else empty);
- ``energy_pj`` and per level ``energy_mac_pj``, ``energy_rf_pj``, ``energy_sram_pj``,
  ``energy_dram_pj`` (cycle mode adds ``energy_BUFFER_pj`` per buffer); ``cycles``,
  ``latency_us``; ``area_mm2`` (the point's chip, :mod:`hwmodels.area`, the same on every row
  of the point; ``area_mac_mm2``, ``area_rf_mm2``, ``area_sram_mm2`` and in cycle mode
  ``area_BUFFER_mm2`` follow later); ``edp_pj_s`` (energy × latency, pJ·s; in totals the
  network's energy × the network's latency);
- then every other column of the mode's results (:data:`sim.estimator.RESULT_COLUMNS`; cycle
  mode also :data:`sim.simulate.EXTRA_COLUMNS`, stalls and per-buffer traffic), ``hardware``
  being ``BASE#ID``. Infeasible rows leave the numbers empty (NaN).
"""

from __future__ import annotations

import dataclasses
import io
import json
import re
import sys
from functools import lru_cache
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from hwmodels.energy import UnknownEnergyError
from hwmodels.hardware import Accelerator, HardwareError
from sim.api import estimate_workloads, profile_workloads, resolve_profile
from sim.estimator import totals as estimate_totals
from sim.executors import Executor, InProcess
from sim.mapping import SimulationError, require_systolic
from sim.pareto import best_points, pareto_mask, plot_pareto
from sim.report import check_writable, write_files
from sim.simulate import checkpoint_workload, simulate_workloads
from sim.simulate import totals as simulation_totals
from sim.sweepfile import Point, Sweep, SweepError, WorkloadSpec
from sim.workload import Workload

__all__ = ["OBJECTIVES", "SweepResult", "evaluate_point", "run_sweep"]

OBJECTIVES = ("energy_pj", "latency_us", "area_mm2")
"""What the Pareto fronts minimise, from each point's network totals."""

INFEASIBLE_ERRORS = (HardwareError, SimulationError, UnknownEnergyError)
_LEADING = ("point_id",)
_RESULT_FIRST = ("workload", "layer", "feasible", "reason", "energy_pj", "energy_mac_pj", "energy_rf_pj",
                 "energy_sram_pj", "energy_dram_pj", "cycles", "latency_us", "area_mm2", "edp_pj_s")


@dataclasses.dataclass(frozen=True)
class _Job:
    """What a worker needs besides the point: picklable and small."""

    base: dict
    mode: str
    workloads: tuple[WorkloadSpec, ...]
    text_parameters: frozenset[str]


@dataclasses.dataclass(frozen=True)
class SweepResult:
    """The assembled tables of a sweep and how many points this run evaluated."""

    results: pd.DataFrame
    totals: pd.DataFrame
    pareto: pd.DataFrame
    evaluated: int
    files: list[Path]


@lru_cache(maxsize=8)
def _workload(spec: WorkloadSpec) -> Workload:
    """The workload of ``spec``, built once per process (AlexNet takes seconds)."""
    if spec.checkpoint:
        return checkpoint_workload(spec.model, spec.checkpoint, spec.seed)
    profile = resolve_profile(spec.model, spec.profile, spec.profile_file)
    return profile_workloads(spec.model, profile, spec.seed, dense=profile is None)["pruned" if profile else "dense"]


def _run(mode: str, label: str, workload: Workload, hw: Accelerator) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-layer results and network totals of one workload on one point (column ``variant``
    holds ``label``)."""
    if mode == "analytical":
        layers = estimate_workloads({label: workload}, hw)
        return layers, estimate_totals(layers)
    if hw.mac_array.kind != "eie":
        require_systolic(hw)
    layers = simulate_workloads({label: workload}, hw, numerics=False, threads=1).layers  # points run in parallel
    return layers, simulation_totals(layers)


def _cell(value, as_text: bool):
    """A parameter value as a table cell: plain, or text for mappings and mixed-type values."""
    if not as_text:
        return value
    if isinstance(value, dict):
        return ",".join(f"{key}={value[key]}" for key in value)
    return json.dumps(value) if isinstance(value, list) else str(value)


def _tag(frame: pd.DataFrame, point: Point, text_parameters: frozenset[str], feasible: bool,
         reason: str | None) -> pd.DataFrame:
    """``frame`` with the point's columns in front, in documented order."""
    frame = frame.rename(columns={"variant": "workload"})
    frame.insert(0, "point_id", point.id)
    for offset, (path, value) in enumerate(point.values.items(), start=1):
        frame.insert(offset, path, _cell(value, path in text_parameters))
    frame["feasible"] = feasible
    frame["reason"] = reason
    first = [*_LEADING, *point.values, *[c for c in _RESULT_FIRST if c in frame.columns]]
    return frame[first + [c for c in frame.columns if c not in first]]


def evaluate_point(job: _Job, point: Point) -> pd.DataFrame:
    """Every workload of the sweep on ``point``: its per-layer rows and its ``total`` rows, one
    table (see the module docstring for the columns). Infeasible: one row per workload and kind
    (layer and total) with the reason."""
    frames = []
    text = job.text_parameters
    try:
        hw = point.hardware(job.base)
    except HardwareError as error:
        hw, failure = None, str(error)
    for spec in job.workloads:
        if hw is not None:
            try:
                layers, totals = _run(job.mode, spec.label, _workload(spec), hw)
                frames += [_tag(layers, point, text, True, None), _tag(totals, point, text, True, None)]
                continue
            except INFEASIBLE_ERRORS as error:  # e.g. an area or energy the tables lack
                failure = str(error)
        rows = pd.DataFrame({"variant": [spec.label, spec.label], "layer": [None, "total"]})
        frames.append(_tag(rows, point, text, False, failure))
    return pd.concat(frames, ignore_index=True)


def _text_parameters(sweep: Sweep) -> frozenset[str]:
    """Parameters whose values are not all one plain type (ints and floats count as one)."""
    text = set()
    for path, values in sweep.parameters.items():
        kinds = {float if type(v) is int else type(v) for v in values}
        if len(kinds) > 1 or not kinds <= {bool, float, str}:
            text.add(path)
    return frozenset(text)


def _parquet(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def _claim(out: Path, sweep: Sweep, points: list[Point], meta: dict) -> None:
    """Refuse an ``out`` that holds another sweep's points; record this sweep in sweep.json, with
    ``meta`` (e.g. the command and prunesim version that ran it) beside it."""
    record = out / "sweep.json"
    fingerprint = json.loads(json.dumps(sweep.fingerprint()))
    if record.exists():
        try:
            stored = json.loads(record.read_text()).get("fingerprint")
        except (OSError, json.JSONDecodeError, AttributeError):
            stored = None
        if stored != fingerprint:
            raise SweepError(f"--out '{out}' holds a sweep with another base, mode or workloads (see "
                             f"{record}); give another --out, or delete the folder to start over")
    write_files(out, {"sweep.json": json.dumps({
        **meta, "source": sweep.source, "fingerprint": fingerprint, "sampling": sweep.sampling,
        "samples": sweep.samples, "seed": sweep.seed, "parameters": {path: list(values) for path, values in sweep.parameters.items()},
        "points": [{"point_id": p.id, **p.values} for p in points],
    }, indent=1, default=str) + "\n"})


def _pareto(totals: pd.DataFrame) -> pd.DataFrame:
    """The Pareto front of each workload's feasible totals over :data:`OBJECTIVES`, with
    ``best_for`` naming the objectives a row is best in."""
    fronts = []
    for _, group in totals[totals["feasible"]].groupby("workload", sort=False):
        front = group[pareto_mask(group, list(OBJECTIVES))].copy()
        best = best_points(group, list(OBJECTIVES))
        front.insert(front.columns.get_loc("workload") + 1, "best_for", [
            " ".join(name for name, row in best.items() if row.name == index) for index in front.index])
        fronts.append(front)
    if not fronts:
        return totals.head(0).assign(best_for=pd.Series(dtype=str))
    return pd.concat(fronts).reset_index(drop=True)


def _plots(totals: pd.DataFrame, sweep: Sweep) -> dict[str, bytes]:
    """pareto_W.png per workload: energy vs latency and energy vs area."""
    from matplotlib.figure import Figure

    files = {}
    for workload, group in totals[totals["feasible"]].groupby("workload", sort=False):
        figure = Figure(figsize=(12, 4.8))
        axes = figure.subplots(1, 2)
        for ax, x in zip(axes, ("latency_us", "area_mm2")):
            plot_pareto(group, x, "energy_pj", ax=ax, label_col="point_id")
        figure.suptitle(f"{workload}: {len(group)} feasible design points ({sweep.mode}, base "
                        f"{sweep.base['name']}, {Path(sweep.source).name})")
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=110)
        files[f"pareto_{re.sub(r'[^A-Za-z0-9._-]', '_', workload)}.png"] = buffer.getvalue()
    return files


def run_sweep(sweep: Sweep, out: str | Path, executor: Executor | None = None, progress: bool = True,
              meta: dict | None = None) -> SweepResult:
    """Evaluate every point of ``sweep`` not yet stored in ``out`` on ``executor`` (default: in
    this process), then write the output files (module docstring). Same sweep, same tables,
    whichever executor ran it and however often it was interrupted. ``meta`` (JSON-able, e.g.
    ``command`` and ``prunesim`` version) is recorded in sweep.json for reports."""
    out = check_writable(out)
    points = sweep.points()
    _claim(out, sweep, points, meta or {})
    store = out / "points"
    todo = [point for point in points if not (store / f"{point.id}.parquet").exists()]
    job = _Job(sweep.base, sweep.mode, sweep.workloads, _text_parameters(sweep))
    bar = tqdm(total=len(points), initial=len(points) - len(todo), desc="sweep", unit="point",
               file=sys.stderr, disable=not progress)
    with bar:
        for point, frame in (executor or InProcess()).map_unordered(evaluate_point, job, todo):
            write_files(store, {f"{point.id}.parquet": _parquet(frame)})
            bar.update()
    table = pd.concat([pd.read_parquet(store / f"{point.id}.parquet") for point in points], ignore_index=True)
    is_total = table["layer"] == "total"
    results = table[~is_total].reset_index(drop=True)
    totals = table[is_total].reset_index(drop=True)
    pareto = _pareto(totals)
    files = {
        "results.parquet": _parquet(results), "results.csv": results.to_csv(index=False),
        "totals.parquet": _parquet(totals), "totals.csv": totals.to_csv(index=False),
        "pareto.csv": pareto.to_csv(index=False), **_plots(totals, sweep),
    }
    return SweepResult(results, totals, pareto, len(todo), write_files(out, files))
