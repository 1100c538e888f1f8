"""Accelerator descriptions: YAML in, frozen dataclasses out, validated once at the edge.

A description says what the hardware *is* (array, precision, buffers, DRAM, which energy table);
it holds no energies of its own: those come from the energy table it names (``hwmodels.energy``),
so swapping the table changes no description and no simulator code.

The core of prunesim takes :class:`Accelerator` objects only; :func:`load_hardware` is the one
place where untrusted YAML becomes such an object. Every error names the file and the field, and
says what would be valid.

Three kinds of MAC array: ``ideal`` (a bag of MAC units, for the analytical estimator),
``systolic`` (a rows x cols systolic array running a ``dataflow``: ``ws`` weight-, ``os`` output-
or ``is`` input-stationary, simulated by :mod:`sim.engine`) and ``eie`` (rows x cols sparse PEs
as in EIE, Han et al., ISCA 2016, simulated by :mod:`sim.eie`; its own parameters in
``mac_array.eie``, see :class:`EieConfig`). Checks made at load, beyond types and
ranges: the energy table named by ``energy.table`` must price the MAC precision
(``mac_array.precision``) and the DRAM interface (``dram.interface``), so an int16 array is
rejected with the Horowitz table (it has no 16-bit integer multiply); a systolic array needs a
dataflow, may ``skip`` zero weights only in the ``ws`` dataflow and only with a compressed
``weight_format`` (``bitmask`` or ``relative_index``: the metadata is how it finds the non-zeros;
semantics in :mod:`sim.compaction`), never zero activations, and every buffer must hold one
array-sized (rows x cols) tile of each operand it holds.
"""

from __future__ import annotations

import dataclasses
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import ConfigDict, Field, TypeAdapter, ValidationError
from pydantic.dataclasses import dataclass

from hwmodels.energy import UnknownEnergyError, load_energy_table

__all__ = [
    "Accelerator",
    "Buffer",
    "Dataflow",
    "Dram",
    "EIE_BUFFERS",
    "EieConfig",
    "EnergyRef",
    "HardwareError",
    "MacArray",
    "Precision",
    "RegisterFile",
    "WeightFormat",
    "available_presets",
    "format_validation_error",
    "load_hardware",
    "min_tile_bytes",
    "operand_bits",
    "parse_hardware",
]


class HardwareError(ValueError):
    """A hardware description that cannot be used; the message names the file and the field."""


class _FieldError(ValueError):
    """A cross-field check that failed; ``field`` is the path relative to the object checked, so
    :func:`format_validation_error` can name the full path of the field at fault."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


_STRICT = ConfigDict(extra="forbid")

ZeroHandling = Literal["execute", "gate", "skip"]
"""What the array does with a MAC whose operand is zero: ``execute`` it (costs cycles and energy),
``gate`` it (costs its cycle, but the multiplier and operand reads are clock-gated: no energy), or
``skip`` it (costs neither; needs a compressed format to find the non-zeros)."""

DataKind = Literal["weights", "inputs", "outputs"]

Dataflow = Literal["ws", "os", "is"]
"""What stays in the PEs of a systolic array: weights (``ws``), outputs (``os``) or inputs
(``is``); Samajdar et al., SCALE-Sim, arXiv:1811.02883, Sec. II."""

Overflow = Literal["saturate", "wrap"]
"""What an int accumulator does with a sum outside its range: clamp to the range or wrap modulo
2**accumulator_bits (two's complement)."""

_IEEE_BITS = (16, 32, 64)  # numpy float16/float32/float64: the fp widths the numerics can run


@dataclass(frozen=True, config=_STRICT)
class Precision:
    """Arithmetic of the MAC units. ``bits`` is the width of weights and activations,
    ``accumulator_bits`` that of partial sums (>= ``bits``). ``fp``: IEEE 754 widths only (16, 32
    or 64). ``overflow`` is for ``int`` only; omitted, an int accumulator saturates."""

    dtype: Literal["int", "fp"]
    bits: Annotated[int, Field(gt=0, le=64)]
    accumulator_bits: Annotated[int, Field(gt=0, le=64)]
    overflow: Overflow | None = None

    def __post_init__(self) -> None:
        if self.accumulator_bits < self.bits:
            raise _FieldError("accumulator_bits", f"{self.accumulator_bits} is narrower than the operands; "
                              f"valid: >= bits ({self.bits})")
        if self.dtype == "fp":
            if self.overflow is not None:
                raise _FieldError("overflow", "applies to dtype 'int' only (fp rounds as IEEE 754); "
                                  "valid: omit it")
            for name in ("bits", "accumulator_bits"):
                if getattr(self, name) not in _IEEE_BITS:
                    raise _FieldError(name, f"{getattr(self, name)} is not an IEEE 754 width; "
                                      f"valid for fp: {', '.join(map(str, _IEEE_BITS))}")

    @property
    def overflow_mode(self) -> str:
        """``saturate`` or ``wrap`` for int (``saturate`` when not given); ``ieee`` for fp."""
        return "ieee" if self.dtype == "fp" else (self.overflow or "saturate")


@dataclass(frozen=True, config=_STRICT)
class EieConfig:
    """The parameters of an EIE-like sparse PE array (Han et al., ISCA 2016, §III-IV) beyond the
    PE count (``rows × cols``) and precision: the depth of each PE's activation queue
    (``fifo_depth``, §IV "Activation Queue and Load Balancing"), the bits of a weight code
    (``code_bits``, an index into the layer's shared-weight codebook of 2^code_bits values, §III)
    and of a column pointer (``pointer_bits``, §IV "Pointer Read Unit"). The relative-index width
    is ``weight_format.index_bits_*``; the per-PE SRAMs are the buffers ``spmat``, ``pointers``
    and ``activations``, one bank (or more) per PE (checked by :class:`Accelerator`)."""

    fifo_depth: Annotated[int, Field(ge=1, le=1024)]
    code_bits: Annotated[int, Field(ge=1, le=16)]
    pointer_bits: Annotated[int, Field(ge=1, le=32)]


EIE_BUFFERS = {"spmat": ("weights",), "pointers": ("weights",), "activations": ("inputs", "outputs")}
"""The SRAMs an ``eie`` array needs, by name, with what each holds: the sparse matrix (codes and
relative indices), the column pointers (two banks per PE so p_j and p_j+1 are read in one cycle)
and the activations (EIE §IV)."""


@dataclass(frozen=True, config=_STRICT)
class MacArray:
    """The compute array. ``rows × cols`` MAC units each finish one MAC per cycle.

    ``ideal``: MAC units fed perfectly (the estimator's model). ``systolic``: a rows × cols
    systolic array running ``dataflow`` (required; fill and drain cost cycles, see
    :mod:`sim.systolic`); it executes or gates zero operands, and in the ``ws`` dataflow may skip
    zero weights stored in a compressed format (:mod:`sim.compaction`: each column's non-zero
    weights compacted along the reduction); zero activations it cannot skip.
    """

    kind: Literal["ideal", "systolic", "eie"]
    rows: Annotated[int, Field(gt=0)]
    cols: Annotated[int, Field(gt=0)]
    precision: Precision
    zero_weights: ZeroHandling = "execute"
    zero_activations: ZeroHandling = "execute"
    dataflow: Dataflow | None = None
    eie: EieConfig | None = None

    def __post_init__(self) -> None:
        if (self.kind == "eie") != (self.eie is not None):
            raise _FieldError("eie", "required for kind 'eie'; valid: a mapping with fifo_depth, code_bits, "
                              "pointer_bits" if self.kind == "eie" else
                              f"applies to kind 'eie' only, not '{self.kind}'; valid: omit it")
        if self.kind == "eie":
            for name in ("zero_weights", "zero_activations"):
                if getattr(self, name) != "skip":
                    raise _FieldError(name, f"'{getattr(self, name)}' is not valid for kind 'eie' (EIE stores "
                                      "only non-zero weights and broadcasts only non-zero activations); "
                                      "valid: 'skip'")
            if self.precision.dtype != "int":
                raise _FieldError("precision.dtype", "kind 'eie' computes in fixed point (EIE §V); valid: 'int'")
        if self.kind != "systolic":
            if self.dataflow is not None:
                raise _FieldError("dataflow", f"applies to kind 'systolic' only, not '{self.kind}'; "
                                  "valid: omit it")
            return
        if self.dataflow is None:
            raise _FieldError("dataflow", "required for kind 'systolic'; valid: 'ws', 'os', 'is'")
        if self.zero_activations == "skip":
            raise _FieldError("zero_activations", "'skip' is not valid for a systolic array (the activations "
                              "stream in step with the array; finding their non-zeros needs a sparse "
                              "dataflow, not modelled); valid: 'execute', 'gate'")
        if self.zero_weights == "skip" and self.dataflow != "ws":
            raise _FieldError("zero_weights", f"'skip' is modelled for dataflow 'ws' only (stationary weights "
                              f"compacted per column, sim/compaction.py), not '{self.dataflow}'; "
                              "valid: 'execute', 'gate'")

    @property
    def is_systolic(self) -> bool:
        return self.kind == "systolic"

    @property
    def macs_per_cycle(self) -> int:
        return self.rows * self.cols

    @property
    def pes(self) -> int:
        """Processing elements (MAC units): ``rows × cols``."""
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
    """How pruned weights are stored when the array skips zero weights (the conventions and
    exact sizes of :mod:`pruning.formats`).

    ``relative_index``: each stored entry carries an index of ``index_bits[kind]`` bits counting
    the zeros since the previous entry; a gap the index cannot encode costs a filler zero
    (Han et al., ICLR 2016, Deep Compression §2; EIE, ISCA 2016, §III); columns are delimited by
    pointers. ``bitmask``: one bit per weight position and the non-zero values; the index bits
    do not apply.
    """

    kind: Literal["dense", "relative_index", "bitmask"] = "dense"
    index_bits_linear: Annotated[int, Field(ge=0, le=32)] = 0
    index_bits_conv: Annotated[int, Field(ge=0, le=32)] = 0


@dataclass(frozen=True, config=_STRICT)
class EnergyRef:
    """Which energy table prices this hardware, and at which node and voltage. ``area_table``:
    the area table (:mod:`hwmodels.area`) that sizes it, by name or path; omitted, the shipped
    one that goes with ``table``."""

    table: str = "horowitz45"
    node_nm: Annotated[float, Field(gt=0)] = 45.0
    voltage_v: Annotated[float, Field(gt=0)] = 0.9
    scaling_rule: str = "cv2"
    area_table: str | None = None


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
            raise _FieldError("weight_format.kind", "'dense' but mac_array.zero_weights is 'skip': skipping zero "
                              "weights needs a compressed format; valid: 'relative_index', 'bitmask'")
        if (self.mac_array.is_systolic and self.mac_array.zero_weights == "skip"
                and self.weight_format.kind == "relative_index"):  # eie: _check_eie, its own range
            for name in ("index_bits_linear", "index_bits_conv"):
                if getattr(self.weight_format, name) < 1:
                    raise _FieldError(f"weight_format.{name}", f"{getattr(self.weight_format, name)} bits "
                                      "cannot encode a relative index; valid: 1..32")
        self._check_energy_table()
        if self.mac_array.is_systolic:
            self._check_tiles()
        if self.mac_array.kind == "eie":
            self._check_eie()

    def _check_eie(self) -> None:
        """An ``eie`` array needs relative indices of at least one bit and the buffers of
        :data:`EIE_BUFFERS`, holding what they say, each with a whole number of banks per PE
        (``pointers``: two or more, so that p_j and p_j+1 come from different banks)."""
        fmt = self.weight_format
        if fmt.kind != "relative_index":
            raise _FieldError("weight_format.kind", "kind 'eie' stores relative-index CSC; valid: 'relative_index'")
        for name in ("index_bits_linear", "index_bits_conv"):
            if not 1 <= getattr(fmt, name) <= 16:
                raise _FieldError(f"weight_format.{name}", f"{getattr(fmt, name)} bits; valid for kind 'eie': 1..16")
        pes = self.mac_array.pes
        by_name = {b.name: (i, b) for i, b in enumerate(self.buffers)}
        for name, holds in EIE_BUFFERS.items():
            if name not in by_name:
                raise _FieldError("buffers", f"kind 'eie' needs a buffer named '{name}' (holds: {list(holds)}); "
                                  f"valid names: {', '.join(EIE_BUFFERS)}")
            index, buffer = by_name[name]
            if set(buffer.holds) != set(holds):
                raise _FieldError(f"buffers.{index}.holds", f"buffer '{name}' of an eie array holds "
                                  f"{list(holds)}; got {list(buffer.holds)}")
            per_pe = 2 if name == "pointers" else 1
            if buffer.banks % pes or buffer.banks < per_pe * pes:
                raise _FieldError(f"buffers.{index}.banks", f"{buffer.banks} banks for {pes} PEs; valid: a "
                                  f"multiple of {pes}, at least {per_pe * pes} ({per_pe} per PE)")

    def _check_energy_table(self) -> None:
        """The energy table must price this MAC precision and DRAM interface (checked with the
        unscaled table: scaling changes energies, never which rows exist)."""
        try:
            table = _energy_table(self.energy.table)
        except (UnknownEnergyError, OSError, ValueError) as error:
            raise _FieldError("energy.table", str(error)) from None
        precision = self.mac_array.precision
        try:
            table.mac(precision.dtype, precision.bits)
        except UnknownEnergyError:
            rows = {(r.dtype, r.bits, r.op) for r in table.arithmetic_rows}
            valid = sorted({(d, b) for d, b, _ in rows if {(d, b, "add"), (d, b, "mult")} <= rows})
            raise _FieldError(
                "mac_array.precision",
                f"energy table '{table.name}' has no {precision.bits}-bit {precision.dtype} MAC "
                f"(add and mult); valid: {', '.join(f'{d}{b}' for d, b in valid)}",
            ) from None
        if self.dram.interface not in table.dram_interfaces():
            raise _FieldError("dram.interface", f"energy table '{table.name}' has no DRAM interface "
                              f"'{self.dram.interface}'; valid: {', '.join(table.dram_interfaces())}")

    def _check_tiles(self) -> None:
        """Every buffer holds one rows × cols tile of each operand it holds: operands at
        ``bits``, outputs (partial sums) at ``accumulator_bits``. The smallest tile the mapper
        (:mod:`sim.mapping`) can use; it double-buffers when two fit."""
        for index, buffer in enumerate(self.buffers):
            need = sum(min_tile_bytes(self.mac_array, kind) for kind in buffer.holds)
            if buffer.capacity_bytes < need:
                parts = " + ".join(f"{kind} {min_tile_bytes(self.mac_array, kind)}" for kind in buffer.holds)
                raise _FieldError(
                    f"buffers.{index}.capacity_bytes",
                    f"{buffer.capacity_bytes} bytes cannot hold one {self.mac_array.rows}x"
                    f"{self.mac_array.cols} tile of each operand it holds ({parts} bytes); "
                    f"valid: >= {need}",
                )

    def buffer_for(self, kind: DataKind) -> Buffer:
        """The first buffer that holds ``kind`` (weights, inputs or outputs)."""
        return next(b for b in self.buffers if kind in b.holds)

    def with_changes(self, **changes) -> "Accelerator":
        """A copy with top-level fields replaced (validated again)."""
        return _ADAPTER.validate_python(dataclasses.replace(self, **changes))

    def to_yaml(self) -> str:
        """The validated description as YAML, every field spelled out (defaults included);
        :func:`load_hardware` reads it back to an equal description."""
        return yaml.safe_dump(dataclasses.asdict(self), sort_keys=False)


def operand_bits(array: MacArray, kind: DataKind) -> int:
    """Bits of one element of ``kind`` inside the chip: operands at the data width, outputs
    (partial sums) at the accumulator width."""
    precision = array.precision
    return precision.accumulator_bits if kind == "outputs" else precision.bits


def min_tile_bytes(array: MacArray, kind: DataKind) -> int:
    """Bytes of one rows × cols tile of ``kind``: the least a buffer holding it must hold."""
    return -(-array.rows * array.cols * operand_bits(array, kind) // 8)


@lru_cache(maxsize=8)
def _energy_table(name: str):
    return load_energy_table(name)


_ADAPTER = TypeAdapter(Accelerator)
_PRESETS = "presets"


def available_presets() -> tuple[str, ...]:
    """Names of the hardware descriptions shipped with prunesim."""
    folder = resources.files("hwmodels").joinpath(_PRESETS)
    return tuple(sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml")))


def format_validation_error(source: str, error: ValidationError) -> str:
    """One line: ``source``, the dotted path of the first bad field, what is wrong with it."""
    first = error.errors()[0]
    field = ".".join(str(part) for part in first["loc"])
    kind = first["type"]
    if kind in ("extra_forbidden", "unexpected_keyword_argument"):
        message = "unknown key"
    elif kind in ("missing", "missing_argument"):
        message = "required field is missing"
    elif kind == "value_error":
        cause = first.get("ctx", {}).get("error")
        message = str(cause) if cause is not None else first["msg"]
        if isinstance(cause, _FieldError):
            field = ".".join(filter(None, (field, cause.field)))
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
    return parse_hardware(raw, source)


def parse_hardware(raw: object, source: str) -> Accelerator:
    """Validate an already parsed description (the mapping a YAML file holds); errors are a
    :class:`HardwareError` naming ``source`` and the field."""
    if not isinstance(raw, dict):
        raise HardwareError(f"{source}: expected a mapping of fields at the top level")
    try:
        return _ADAPTER.validate_python(raw)
    except ValidationError as error:
        raise HardwareError(format_validation_error(source, error)) from None
