"""Results folders as inputs of a comparison report: read back, checked and labelled.

A *results folder* is what ``prunesim estimate --out``, ``prunesim simulate --out``, the prune
job (``RUN/report/``) and ``prunesim sweep --out`` write. What is read from it:

``results.csv``   one row per (variant, layer): :data:`sim.estimator.RESULT_COLUMNS` (the
                  simulator's have more, e.g. the stall causes). Required; the numbers of the
                  report come from here.
``results.json``  its ``meta`` mapping labels the input: ``kind`` (estimate | simulate | prune |
                  sweep), ``model``, ``profile`` / ``source`` / ``data``, ``hardware``,
                  ``quantise``, ``seed``, ``prunesim`` (version) and ``command``. Optional: an
                  older folder without it is labelled from its columns.
``hardware.yaml`` the validated hardware description the results were computed on. Optional:
                  failing it, a shipped preset of the same name is shown.
``summary.json``  prune runs: test errors, compression.
``sweep.json``    marks a ``prunesim sweep`` folder (:mod:`sim.sweep`): its ``totals.csv`` (one row
                  per design point and workload, with ``point_id``, the varied parameters and the
                  objectives ``energy_pj``, ``latency_us``, ``area_mm2``) becomes ``points``;
                  ``results.csv`` holds the per-layer rows of every point.

A path may name the folder, a file in it, or a prune run folder (its ``report/`` is used). Any
input that cannot be used is a :class:`ReportInputError` whose one line names the file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from hwmodels.hardware import HardwareError, available_presets, load_hardware

__all__ = ["KINDS", "REQUIRED_COLUMNS", "ReportInputError", "ResultsInput", "load_results"]

KINDS = ("estimate", "simulate", "prune", "sweep")

# What every per-layer results file must have for the report's sections.
REQUIRED_COLUMNS = (
    "variant", "model", "hardware", "layer", "weights", "nonzero_weights", "weight_density", "input_density",
    "dense_macs", "executed_macs", "gated_macs", "skipped_macs", "flop_pct", "dram_read_bits", "dram_write_bits",
    "sram_read_bits", "sram_write_bits", "rf_read_bits", "rf_write_bits", "energy_mac_pj", "energy_rf_pj",
    "energy_sram_pj", "energy_dram_pj", "energy_pj", "compute_cycles", "memory_cycles", "cycles", "latency_us",
)
SWEEP_REQUIRED = ("point_id", "workload", "feasible", "energy_pj", "latency_us")


class ReportInputError(ValueError):
    """A report input that cannot be used; the message names the file and what was expected."""


@dataclass(frozen=True)
class ResultsInput:
    """One input of a report. ``layers``: the per-layer rows (``results.csv``); ``points``: a
    sweep's per-point rows (else None); ``hardware``: description name → YAML text;
    ``summary``: a prune run's ``summary.json`` (else empty)."""

    path: Path
    kind: str
    meta: dict
    layers: pd.DataFrame
    hardware: dict[str, str]
    label: str
    summary: dict = field(default_factory=dict)
    points: pd.DataFrame | None = None

    @property
    def variants(self) -> list[str]:
        """The variants of the network (dense, pruned...); a sweep's workloads."""
        return list(dict.fromkeys(self.layers["workload" if self.kind == "sweep" else "variant"].astype(str)))

    @property
    def source(self) -> str:
        return _source(self.kind, self.meta)


def _source(kind: str, meta: dict) -> str:
    """What the network is: dense, a profile, a checkpoint (its last three path parts: the run,
    ``rounds``, the file), or the data it was pruned on."""
    if kind == "prune":
        return f"pruned on {meta.get('data', '?')}"
    source = str(meta.get("profile") or meta.get("source") or "dense")
    if source.endswith((".pt", ".npz")):
        return "checkpoint " + "/".join(Path(source).parts[-3:])
    return source


def _folder_of(path: Path) -> Path:
    if not path.exists():
        raise ReportInputError(f"report input '{path}' does not exist (give a folder written by prunesim "
                               "estimate/simulate/prune/sweep --out)")
    folder = path.parent if path.is_file() else path
    if not (folder / "results.csv").is_file() and (folder / "report" / "results.csv").is_file():
        folder = folder / "report"  # a prune run folder: its report
    if not (folder / "results.csv").is_file():
        raise ReportInputError(f"report input '{path}': no results.csv in '{folder}' (give a folder written by "
                               "prunesim estimate/simulate/prune/sweep --out)")
    return folder


def _read_json(path: Path) -> dict:
    try:
        payload = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ReportInputError(f"'{path}': not readable JSON ({str(error).splitlines()[0]})") from None
    if not isinstance(payload, dict):
        raise ReportInputError(f"'{path}': expected a JSON object")
    return payload


def _read_csv(path: Path, required: tuple[str, ...]) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise ReportInputError(f"'{path}': not a readable CSV file ({str(error).splitlines()[0]})") from None
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise ReportInputError(f"'{path}': missing column(s) {', '.join(missing)}; not a prunesim results file "
                               "(estimate/simulate/prune/sweep --out)")
    if frame.empty:
        raise ReportInputError(f"'{path}': no rows")
    return frame


def _kind(folder: Path, meta: dict, layers: pd.DataFrame) -> str:
    kind = meta.get("kind")
    if kind is not None:
        if kind not in KINDS:
            raise ReportInputError(f"'{folder / 'results.json'}': meta.kind '{kind}'; valid: {', '.join(KINDS)}")
        return kind
    if "stall_cycles" in layers.columns:
        return "simulate"
    return "prune" if (folder / "summary.json").is_file() else "estimate"


def _hardware(folder: Path, layers: pd.DataFrame) -> dict[str, str]:
    """Each hardware description the results name, as YAML: the folder's hardware.yaml (checked
    by loading it), else the shipped preset of that name; names with neither are left out."""
    described = {}
    recorded = folder / "hardware.yaml"
    if recorded.is_file():
        try:
            hw = load_hardware(recorded)
        except HardwareError as error:
            raise ReportInputError(str(error)) from None
        described[hw.name] = recorded.read_text()
    presets = set(available_presets())
    for name in dict.fromkeys(layers["hardware"].astype(str)):
        if name not in described and name in presets:
            described[name] = load_hardware(name).to_yaml()
    return described


def _label(kind: str, meta: dict, layers: pd.DataFrame) -> str:
    model = meta.get("model") or "/".join(dict.fromkeys(layers["model"].astype(str)))
    hardware = "/".join(dict.fromkeys(layers["hardware"].astype(str)))
    memory = " · ideal memory" if str(meta.get("ideal_memory")).lower() == "true" else ""
    return f"{model} · {_source(kind, meta)} · {hardware}{memory} ({kind})"


def _load_sweep(folder: Path) -> ResultsInput:
    record = _read_json(folder / "sweep.json")
    meta = {"kind": "sweep", **{k: v for k, v in record.items() if k not in ("points", "fingerprint")}}
    layers = _read_csv(folder / "results.csv", SWEEP_REQUIRED)
    points = _read_csv(folder / "totals.csv", SWEEP_REQUIRED)
    return ResultsInput(path=folder, kind="sweep", meta=meta, layers=layers, hardware={},
                        label=f"sweep {folder.name}", points=points)


def load_results(path: str | Path) -> ResultsInput:
    """Read one results folder (module docstring); ReportInputError naming the file otherwise."""
    folder = _folder_of(Path(path))
    if (folder / "sweep.json").is_file():
        return _load_sweep(folder)
    meta_file = folder / "results.json"
    meta = _read_json(meta_file).get("meta", {}) if meta_file.is_file() else {}
    if not isinstance(meta, dict):
        raise ReportInputError(f"'{meta_file}': 'meta' is not a mapping")
    layers = _read_csv(folder / "results.csv", REQUIRED_COLUMNS)
    kind = _kind(folder, meta, layers)
    summary = _read_json(folder / "summary.json") if kind == "prune" and (folder / "summary.json").is_file() else {}
    return ResultsInput(path=folder, kind=kind, meta=meta, layers=layers, hardware=_hardware(folder, layers),
                        label=_label(kind, meta, layers), summary=summary)
