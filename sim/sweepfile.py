"""Sweep files: which hardware design points to evaluate on which workloads, validated at load.

A sweep file is YAML::

    base: han45nm                 # a hardware preset name, or a .yaml path (relative to this file)
    mode: analytical              # analytical (sim.estimator) | cycle (sim.simulate, systolic/eie)
    sampling: grid                # grid: every combination | random: `samples` of them
    samples: 100                  # random only: how many distinct combinations
    seed: 0                       # random only: which ones (same seed, same points)
    parameters:                   # dotted path into the hardware description: the values to try
      mac_array.cols: [16, 32, 64]
      buffers.sram.capacity_bytes: [1048576, 8388608]     # a buffer by its name (or index)
      mac_array.precision:                                # a mapping replaces the whole field
        - {dtype: fp, bits: 32, accumulator_bits: 32}
        - {dtype: int, bits: 8, accumulator_bits: 32}
      mac_array.zero_weights: [execute, gate, skip]       # sparsity support
      dram.interface: [lpddr2, lpddr4]
    workloads:
      - {model: alexnet, profile: han2015}                # zoo network pruned by a profile
      - {model: lenet-5, checkpoint: runs/x/rounds/final.pt, name: lenet5-mine}
      - {model: lenet-300-100}                            # dense, densities measured

A workload is a zoo ``model`` with at most one of ``profile`` (a shipped density profile: the
network pruned by magnitude to it, :func:`sim.api.profile_workloads`), ``profile_file`` or
``checkpoint`` (a ``prunesim prune`` output, :func:`sim.simulate.checkpoint_workload`); neither
gives the dense network. ``seed`` (default 0) seeds its weights and sample input; ``name`` labels
its rows (default ``MODEL-PROFILE``, ``MODEL-CHECKPOINTSTEM`` or ``MODEL-dense``).

Checked at load, each failure a :class:`SweepError` naming the file and the field: the keys and
their types; the base loads; every parameter path exists in the base description; no path is
varied twice (nor a path and a field inside it); no value is listed twice; ``samples`` is given
for random sampling only and is at most the grid size; each model, profile and checkpoint
exists. Whether a *combination* is valid hardware is not a load error: such a point is evaluated
as infeasible with the reason (:mod:`sim.sweep`).

A design point is one value per parameter. Its id is the first 12 hex digits of the SHA-256 of
its values (canonical JSON, keys sorted), so the same values have the same id in every run and
on every machine; grid order is the order of ``itertools.product`` over the parameters as listed
(the last varies fastest), random points are kept in that order too.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import yaml
from pydantic import ConfigDict, Field, JsonValue, TypeAdapter, ValidationError
from pydantic.dataclasses import dataclass

from hwmodels.hardware import Accelerator, HardwareError, format_validation_error, load_hardware, parse_hardware
from pruning.profiles import ProfileError, load_profile, load_profile_file
from pruning.zoo import MODEL_NAMES

__all__ = ["Point", "Sweep", "SweepError", "WorkloadSpec", "load_sweep", "parse_sweep"]

_STRICT = ConfigDict(extra="forbid")


class SweepError(ValueError):
    """A sweep file (or sweep output folder) that cannot be used; the message names the field."""


@dataclass(frozen=True, config=_STRICT)
class WorkloadSpec:
    """One workload of a sweep (see the module docstring). Paths are absolute once loaded."""

    model: str
    profile: str | None = None
    profile_file: str | None = None
    checkpoint: str | None = None
    seed: Annotated[int, Field(ge=0)] = 0
    name: Annotated[str, Field(min_length=1)] | None = None

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        source = self.profile or self.profile_file or self.checkpoint
        return f"{self.model}-{Path(source).stem if source else 'dense'}"



@dataclass(frozen=True, config=_STRICT)
class _SweepFile:
    base: Annotated[str, Field(min_length=1)]
    parameters: Annotated[dict[str, Annotated[list[JsonValue], Field(min_length=1)]], Field(min_length=1)]
    workloads: Annotated[list[WorkloadSpec], Field(min_length=1)]
    mode: Literal["analytical", "cycle"] = "analytical"
    sampling: Literal["grid", "random"] = "grid"
    samples: Annotated[int, Field(gt=0)] | None = None
    seed: Annotated[int, Field(ge=0)] = 0


_FILE = TypeAdapter(_SweepFile)


def point_id(values: dict[str, Any]) -> str:
    """12 hex digits of the SHA-256 of ``values`` as canonical JSON (keys sorted)."""
    text = json.dumps(values, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


@dataclasses.dataclass(frozen=True)
class Point:
    """One design point: ``values`` maps each varied path to its value here."""

    id: str
    values: dict[str, Any]

    def description(self, base: dict) -> dict:
        """The hardware description of this point: ``base`` (a description as a mapping) with
        the values set, named ``BASE#ID``."""
        raw = copy.deepcopy(base)
        for path, value in self.values.items():
            container, key = _locate(raw, path)
            container[key] = copy.deepcopy(value)
        raw["name"] = f"{base['name']}#{self.id}"
        return raw

    def hardware(self, base: dict) -> Accelerator:
        """The validated :class:`Accelerator` of this point; a :class:`HardwareError` naming the
        point and the field when the combination is not valid hardware."""
        return parse_hardware(self.description(base), f"point {self.id}")


@dataclasses.dataclass(frozen=True)
class Sweep:
    """A validated sweep file. ``base`` is the base description as a plain mapping (what each
    point modifies); ``parameters`` the varied paths with their values, in file order."""

    source: str
    base: dict
    parameters: dict[str, tuple]
    workloads: tuple[WorkloadSpec, ...]
    mode: str
    sampling: str
    samples: int | None
    seed: int

    @property
    def grid_size(self) -> int:
        return math.prod(len(values) for values in self.parameters.values())

    def points(self) -> list[Point]:
        """The design points to evaluate, in grid order (see the module docstring)."""
        if self.sampling == "grid":
            chosen = range(self.grid_size)
        else:
            rng = np.random.default_rng(self.seed)
            chosen = sorted(int(i) for i in rng.choice(self.grid_size, size=self.samples, replace=False))
        return [self._point(index) for index in chosen]

    def _point(self, index: int) -> Point:
        values = {}
        for path, options in reversed(self.parameters.items()):  # mixed radix, last fastest
            index, digit = divmod(index, len(options))
            values[path] = options[digit]
        values = {path: values[path] for path in self.parameters}
        return Point(point_id(values), values)

    def fingerprint(self) -> dict:
        """What every point's result depends on besides its own values: base, mode, workloads."""
        return {"base": self.base, "mode": self.mode,
                "workloads": [dataclasses.asdict(spec) for spec in self.workloads]}


def _locate(raw: dict, path: str) -> tuple[dict | list, str | int]:
    """The container and key of ``path`` in a description mapping; a list of buffers is indexed
    by buffer name or position. KeyError with a message naming what would be valid."""
    parts = path.split(".")
    node: Any = raw
    for depth, part in enumerate(parts):
        where = ".".join(parts[:depth]) or "the description"
        if isinstance(node, dict):
            if part not in node:
                raise KeyError(f"no field '{part}' in {where}; valid: {', '.join(node)}")
            key: str | int = part
        elif isinstance(node, list):
            names = [item.get("name") for item in node]
            if part in names:
                key = names.index(part)
            elif part.isdigit() and int(part) < len(node):
                key = int(part)
            else:
                raise KeyError(f"no entry '{part}' in {where}; valid: {', '.join(map(str, names))} "
                               f"or 0..{len(node) - 1}")
        else:
            raise KeyError(f"{where} is a value ({node!r}), it has no field '{part}'")
        if depth == len(parts) - 1:
            return node, key
        node = node[key]
    raise KeyError("empty path")


def _plain(accelerator: Accelerator) -> dict:
    """A description as nested dicts and lists (tuples become lists), as YAML would give it."""
    return json.loads(json.dumps(dataclasses.asdict(accelerator)))


def _fail(source: str, field: str, message: str) -> SweepError:
    return SweepError(f"{source}: field '{field}': {message}")


def _check_parameters(source: str, base: dict, parameters: dict[str, list]) -> None:
    paths = list(parameters)
    for path, values in parameters.items():
        field = f"parameters.{path}"
        try:
            _locate(base, path)
        except KeyError as error:
            raise _fail(source, field, error.args[0]) from None
        if path.split(".")[0] == "name":
            raise _fail(source, field, "the name is set per point (BASE#ID); valid: any other field")
        for other in paths:
            if other != path and path.startswith(other + "."):
                raise _fail(source, field, f"lies inside '{other}', which is varied too; vary one of them")
        seen = set()
        for value in values:
            key = json.dumps(value, sort_keys=True)
            if key in seen:
                raise _fail(source, field, f"value {value!r} is listed twice")
            seen.add(key)


def _check_workload(source: str, index: int, spec: WorkloadSpec, folder: Path) -> WorkloadSpec:
    field = f"workloads.{index}"
    if spec.model not in MODEL_NAMES:
        raise _fail(source, f"{field}.model", f"unknown model '{spec.model}'; valid: {', '.join(MODEL_NAMES)}")
    given = [name for name in ("profile", "profile_file", "checkpoint") if getattr(spec, name)]
    if len(given) > 1:
        raise _fail(source, f"{field}.{given[1]}", f"give one of profile, profile_file, checkpoint, not "
                    f"{' and '.join(given)}")
    changes = {}
    try:
        if spec.profile:
            load_profile(spec.profile, spec.model)
        if spec.profile_file:
            changes["profile_file"] = str((folder / spec.profile_file).resolve())
            load_profile_file(changes["profile_file"], spec.model)
    except ProfileError as error:
        raise _fail(source, f"{field}.{'profile' if spec.profile else 'profile_file'}", str(error)) from None
    if spec.checkpoint:
        path = (folder / spec.checkpoint).resolve()
        if not path.is_file():
            raise _fail(source, f"{field}.checkpoint", f"'{spec.checkpoint}' does not exist (give "
                        "RUN/rounds/final.pt, a round checkpoint or a .npz export)")
        changes["checkpoint"] = str(path)
    return dataclasses.replace(spec, **changes)


def parse_sweep(raw: object, source: str, folder: Path = Path(".")) -> Sweep:
    """Validate a parsed sweep file (see the module docstring); relative paths in it are taken
    from ``folder``."""
    if not isinstance(raw, dict):
        raise SweepError(f"{source}: expected a mapping of fields at the top level")
    try:
        spec = _FILE.validate_python(raw)
    except ValidationError as error:
        raise SweepError(format_validation_error(source, error)) from None
    base_name = spec.base
    if base_name.endswith((".yaml", ".yml")):
        base_name = str((folder / base_name).resolve())
    try:
        base = _plain(load_hardware(base_name))
    except HardwareError as error:
        raise _fail(source, "base", str(error)) from None
    _check_parameters(source, base, spec.parameters)
    if spec.mode == "cycle" and "mac_array.kind" not in spec.parameters and base["mac_array"]["kind"] == "ideal":
        raise _fail(source, "mode", f"'cycle' simulates systolic and eie arrays; base '{spec.base}' is an ideal "
                    "array: valid: 'analytical', or a systolic/eie base")
    sweep = Sweep(source=source, base=base, parameters={p: tuple(v) for p, v in spec.parameters.items()},
                  workloads=tuple(_check_workload(source, i, w, folder) for i, w in enumerate(spec.workloads)),
                  mode=spec.mode, sampling=spec.sampling, samples=spec.samples, seed=spec.seed)
    labels = [w.label for w in sweep.workloads]
    for index, label in enumerate(labels):
        if labels.index(label) != index:
            raise _fail(source, f"workloads.{index}", f"workload '{label}' is listed twice; give it a distinct 'name'")
    if spec.sampling == "grid" and spec.samples is not None:
        raise _fail(source, "samples", "applies to sampling 'random' only; valid: omit it")
    if spec.sampling == "random":
        if spec.samples is None:
            raise _fail(source, "samples", "required for sampling 'random'")
        if spec.samples > sweep.grid_size:
            raise _fail(source, "samples", f"{spec.samples} is more than the {sweep.grid_size} combinations "
                        f"of the parameters; valid: 1..{sweep.grid_size}, or sampling 'grid'")
    return sweep


def load_sweep(path: str | Path) -> Sweep:
    """Read and validate the sweep file at ``path``."""
    path = Path(path)
    if not path.is_file():
        raise SweepError(f"sweep file '{path}' does not exist")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise SweepError(f"{path}: not valid YAML ({str(error).splitlines()[0]})") from None
    return parse_sweep(raw, str(path), path.parent)
