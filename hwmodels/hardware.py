"""Accelerator descriptions: YAML in, frozen dataclasses out, validated once at the edge.

A description says what the hardware *is* (array, precision, buffers, DRAM, which energy table);
it holds no energies of its own: those come from the energy table it names (``hwmodels.energy``),
so swapping the table changes no description and no simulator code.

The core of prunesim takes :class:`Accelerator` objects only; :func:`load_hardware` is the one
place where untrusted YAML becomes such an object. Every error names the file and the field, and
says what would be valid.
"""

from __future__ import annotations

import dataclasses
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import ConfigDict, Field, TypeAdapter, ValidationError
from pydantic.dataclasses import dataclass

__all__ = [
    "Accelerator",
    "Buffer",
    "Dram",
    "EnergyRef",
    "HardwareError",
    "MacArray",
    "Precision",
    "RegisterFile",
    "WeightFormat",
    "available_presets",
    "load_hardware",
]


class HardwareError(ValueError):
    """A hardware description that cannot be used; the message names the file and the field."""


_STRICT = ConfigDict(extra="forbid")

ZeroHandling = Literal["execute", "gate", "skip"]
"""What the array does with a MAC whose operand is zero: ``execute`` it (costs cycles and energy),
``gate`` it (costs its cycle, but the multiplier and operand reads are clock-gated: no energy), or
``skip`` it (costs neither; needs a compressed format to find the non-zeros)."""

DataKind = Literal["weights", "inputs", "outputs"]


@dataclass(frozen=True, config=_STRICT)
class Precision:
    """Arithmetic of the MAC units. ``bits`` is the width of weights and activations."""

    dtype: Literal["int", "fp"]
    bits: Annotated[int, Field(gt=0, le=64)]
    accumulator_bits: Annotated[int, Field(gt=0, le=64)]


@dataclass(frozen=True, config=_STRICT)
class MacArray:
    """The compute array. ``rows × cols`` MAC units each finish one MAC per cycle."""

    kind: Literal["ideal"]
    rows: Annotated[int, Field(gt=0)]
    cols: Annotated[int, Field(gt=0)]
    precision: Precision
    zero_weights: ZeroHandling = "execute"
    zero_activations: ZeroHandling = "execute"

    @property
    def macs_per_cycle(self) -> int:
        return self.rows * self.cols


@dataclass(frozen=True, config=_STRICT)
class RegisterFile:
    """Per-PE register file; ``width_bits`` is one access."""

    width_bits: Annotated[int, Field(gt=0)]


@dataclass(frozen=True, config=_STRICT)
class Buffer:
    """An on-chip SRAM buffer. Energy per access is that of one bank (capacity / banks)."""

    name: Annotated[str, Field(min_length=1)]
    capacity_bytes: Annotated[int, Field(gt=0)]
    width_bits: Annotated[int, Field(gt=0)]
    holds: Annotated[tuple[DataKind, ...], Field(min_length=1)]
    banks: Annotated[int, Field(gt=0)] = 1
    ports: Annotated[int, Field(gt=0)] = 1

    @property
    def bank_bytes(self) -> int:
        return self.capacity_bytes // self.banks


@dataclass(frozen=True, config=_STRICT)
class Dram:
    """Off-chip memory. ``interface`` selects the pJ/bit row of the energy table."""

    interface: Annotated[str, Field(min_length=1)]
    bandwidth_gbs: Annotated[float, Field(gt=0)]
    latency_ns: Annotated[float, Field(ge=0)]
    burst_bytes: Annotated[int, Field(gt=0)]


@dataclass(frozen=True, config=_STRICT)
class WeightFormat:
    """How pruned weights are stored when the array skips zero weights.

    ``relative_index``: each stored entry carries an index of ``index_bits[kind]`` bits counting
    the zeros since the previous entry; a gap the index cannot encode costs a filler zero
    (Han et al., ICLR 2016, Deep Compression §2; EIE, ISCA 2016, §III).
    """

    kind: Literal["dense", "relative_index"] = "dense"
    index_bits_linear: Annotated[int, Field(ge=0, le=32)] = 0
    index_bits_conv: Annotated[int, Field(ge=0, le=32)] = 0


@dataclass(frozen=True, config=_STRICT)
class EnergyRef:
    """Which energy table prices this hardware, and at which node and voltage."""

    table: str = "horowitz45"
    node_nm: Annotated[float, Field(gt=0)] = 45.0
    voltage_v: Annotated[float, Field(gt=0)] = 0.9
    scaling_rule: str = "cv2"


@dataclass(frozen=True, config=_STRICT)
class Accelerator:
    """A validated accelerator description (see ``hwmodels/presets/*.yaml`` for the format)."""

    name: Annotated[str, Field(min_length=1)]
    description: str
    clock_mhz: Annotated[float, Field(gt=0)]
    mac_array: MacArray
    register_file: RegisterFile
    buffers: Annotated[tuple[Buffer, ...], Field(min_length=1)]
    dram: Dram
    weight_format: WeightFormat = WeightFormat()
    energy: EnergyRef = EnergyRef()

    def __post_init__(self) -> None:
        names = [b.name for b in self.buffers]
        if len(set(names)) != len(names):
            raise ValueError(f"buffer names must be unique, got {names}")
        for kind in ("weights", "inputs", "outputs"):
            if not any(kind in b.holds for b in self.buffers):
                raise ValueError(f"no buffer holds '{kind}'; every data kind needs one")
        if self.mac_array.zero_weights == "skip" and self.weight_format.kind == "dense":
            raise ValueError(
                "mac_array.zero_weights is 'skip' but weight_format.kind is 'dense': "
                "skipping zero weights needs a compressed format (relative_index)"
            )

    def buffer_for(self, kind: DataKind) -> Buffer:
        """The first buffer that holds ``kind`` (weights, inputs or outputs)."""
        return next(b for b in self.buffers if kind in b.holds)

    def with_changes(self, **changes) -> "Accelerator":
        """A copy with top-level fields replaced (validated again)."""
        return _ADAPTER.validate_python(dataclasses.replace(self, **changes))


_ADAPTER = TypeAdapter(Accelerator)
_PRESETS = "presets"


def available_presets() -> tuple[str, ...]:
    """Names of the hardware descriptions shipped with prunesim."""
    folder = resources.files("hwmodels").joinpath(_PRESETS)
    return tuple(sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml")))


def _format_error(source: str, error: ValidationError) -> str:
    first = error.errors()[0]
    field = ".".join(str(part) for part in first["loc"])
    kind = first["type"]
    if kind in ("extra_forbidden", "unexpected_keyword_argument"):
        message = "unknown key"
    elif kind in ("missing", "missing_argument"):
        message = "required field is missing"
    elif kind == "value_error":
        message = str(first["ctx"]["error"]) if "ctx" in first else first["msg"]
    else:
        message = f"{first['msg']} (got {first.get('input')!r})"
    return f"{source}: field '{field}': {message}" if field else f"{source}: {message}"


def load_hardware(name_or_path: str | Path) -> Accelerator:
    """A shipped preset by name (see :func:`available_presets`) or a YAML file by path."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise HardwareError(f"hardware file '{path}' does not exist")
        text, source = path.read_text(), str(path)
    else:
        name = str(name_or_path)
        if name not in available_presets():
            raise HardwareError(
                f"unknown hardware '{name}'; valid presets: {', '.join(available_presets())} "
                "(or a path to a .yaml file)"
            )
        text = resources.files("hwmodels").joinpath(_PRESETS, f"{name}.yaml").read_text()
        source = f"preset {name}"
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise HardwareError(f"{source}: not valid YAML ({str(error).splitlines()[0]})") from None
    if not isinstance(raw, dict):
        raise HardwareError(f"{source}: expected a mapping of fields at the top level")
    try:
        return _ADAPTER.validate_python(raw)
    except ValidationError as error:
        raise HardwareError(_format_error(source, error)) from None
