"""Silicon area of an accelerator description, from a published area table, by lookup only.

A table is a YAML file (shipped ones in ``hwmodels/data/<name>.yaml`` with the schema
``prunesim/area-table/1``; format and sources in the header of ``area45.yaml``). The default,
``area45``, holds the 45 nm areas of integer and fp adders and multipliers (the "cost of
operations" table that pairs Horowitz's ISSCC 2014 energies with TSMC 45 nm synthesis areas), one
flip-flop (NanGate 45 nm DFF_X1) and single-bank SRAMs from CACTI 7 at 45 nm. Table areas are in
µm²; :func:`area_breakdown` reports mm².

The chip (:func:`area_breakdown`), per component:

* ``mac``: ``rows × cols`` MAC units, each a multiplier at the operand width ``bits`` and an adder
  at the accumulator width ``accumulator_bits``, of the array's dtype;
* ``rf``: per MAC unit, the registers the estimator's register-file accesses imply (Eyeriss's
  3 reads + 1 write per MAC): one weight and one activation of ``bits`` and one partial sum of
  ``accumulator_bits``, one flip-flop per bit. (``register_file.width_bits`` is an access width
  and says nothing of depth; a deeper register file is not modelled.)
* one entry per SRAM buffer, by its name: ``banks`` × the area of one bank of
  ``capacity_bytes / banks`` with the buffer's port count. EIE's per-PE SRAMs are buffers with
  one bank per PE (two for the pointers), so this is the per-PE SRAM area × PE count;
* no DRAM: it is off chip and has no die area here. Wiring between the parts, control and
  clock tree are not counted either.

Lookups never guess: what the table has no row or rule for raises :class:`UnknownAreaError`.
The rules applied between rows (documented again in ``area45.yaml``):

* integer adder of a width without a row: per-bit area log-log interpolated between the rows,
  constant outside them (ripple carry: one full-adder cell per bit);
* register: proportional to bits;
* SRAM: per-bit area log-log interpolated in capacity between the rows of the same port count,
  constant outside them; independent of the access width;
* node: every area × (node / table node)² (:meth:`AreaTable.scaled`).

The table for a description is ``energy.area_table`` when given, else the shipped table whose
``energy_tables`` lists ``energy.table`` (``area45`` for ``horowitz45``, ``area45-int16`` for
``horowitz45-int16``), scaled to ``energy.node_nm``. This module must not import torch.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from hwmodels.energy import _extended, _read_name, _Reader, _shipped_docs
from hwmodels.hardware import Accelerator, HardwareError

__all__ = [
    "AreaTable",
    "ArithmeticArea",
    "SramArea",
    "UnknownAreaError",
    "area_breakdown",
    "area_table_for",
    "available_area_tables",
    "load_area_table",
    "total_area_mm2",
]

SCHEMA = "prunesim/area-table/1"
OPS = ("add", "mult")
DTYPES = ("int", "fp")
_AREA_UNITS_UM2 = {"um2": 1.0, "mm2": 1e6}
_UM2_PER_MM2 = 1e6


class UnknownAreaError(HardwareError):
    """The area table has no figure (row or rule) for a part of the description; the message
    names the part and lists what exists. A :class:`~hwmodels.hardware.HardwareError`: the
    description cannot be sized as it stands."""


@dataclass(frozen=True)
class ArithmeticArea:
    """One ``bits``-bit ``op`` unit of ``dtype`` takes ``um2`` µm²."""

    op: str
    dtype: str
    bits: int
    um2: float
    source: str


@dataclass(frozen=True)
class SramArea:
    """One single-bank SRAM of ``capacity_bytes`` with ``ports`` read-write ports (a ``bits``-bit
    port organisation) takes ``um2`` µm²."""

    capacity_bytes: int
    ports: int
    bits: int
    um2: float
    source: str

    @property
    def um2_per_bit(self) -> float:
        return self.um2 / (8 * self.capacity_bytes)


def _loglog(points: list[tuple[float, float]], x: float) -> float:
    """y at ``x`` from ``points`` (x ascending, distinct): exact at a point, log-log (power-law)
    interpolated between two, the end point's y outside them."""
    xs = [p[0] for p in points]
    i = bisect.bisect_left(xs, x)
    if i < len(xs) and xs[i] == x:
        return points[i][1]
    if i == 0:
        return points[0][1]
    if i == len(xs):
        return points[-1][1]
    (x0, y0), (x1, y1) = points[i - 1], points[i]
    return y0 * (x / x0) ** (math.log(y1 / y0) / math.log(x1 / x0))


@dataclass(frozen=True)
class AreaTable:
    """Areas at one technology node, in µm². Built by :func:`load_area_table` (or
    :meth:`scaled`); immutable. ``energy_tables``: the energy tables it goes with."""

    name: str
    node_nm: float
    energy_tables: tuple[str, ...]
    arithmetic_rows: tuple[ArithmeticArea, ...]
    register_um2_per_bit: float
    sram_rows: tuple[SramArea, ...]  # sorted by (ports, capacity)
    sram_cell_f2: float | None  # informational: the 6T cell in squared feature sizes
    origin: str = field(default="", compare=False)

    # -- arithmetic ---------------------------------------------------------------------

    def arithmetic(self, op: str, dtype: str, bits: int) -> float:
        """µm² of one ``bits``-bit ``op`` unit of ``dtype``: its row, or for an integer adder the
        per-bit rule (module docstring); anything else without a row is UnknownAreaError."""
        if op not in OPS or dtype not in DTYPES or isinstance(bits, bool) or not isinstance(bits, int) or bits <= 0:
            raise ValueError(f"no such unit: op={op!r} (valid {OPS}), dtype={dtype!r} (valid {DTYPES}), "
                             f"bits={bits!r} (a positive integer)")
        rows = sorted((r for r in self.arithmetic_rows if (r.op, r.dtype) == (op, dtype)), key=lambda r: r.bits)
        for row in rows:
            if row.bits == bits:
                return row.um2
        if (op, dtype) == ("add", "int") and rows:
            return bits * _loglog([(r.bits, r.um2 / r.bits) for r in rows], bits)
        have = ", ".join(f"{r.dtype}{r.bits} {r.op}" for r in self.arithmetic_rows)
        raise UnknownAreaError(f"area table '{self.name}' has no {bits}-bit {dtype} {op} "
                               f"(integer adders of any width; otherwise: {have})")

    def mac(self, dtype: str, bits: int, accumulator_bits: int) -> float:
        """µm² of one MAC unit: a ``bits``-bit multiplier and an ``accumulator_bits``-bit adder."""
        return self.arithmetic("mult", dtype, bits) + self.arithmetic("add", dtype, accumulator_bits)

    # -- storage ------------------------------------------------------------------------

    def register(self, bits: int) -> float:
        """µm² of ``bits`` bits of register (one flip-flop per bit)."""
        return self.register_um2_per_bit * bits

    def sram(self, capacity_bytes: int, ports: int = 1) -> float:
        """µm² of one single-bank SRAM of ``capacity_bytes`` with ``ports`` read-write ports
        (module docstring: per-bit log-log in capacity, constant outside the rows)."""
        rows = [r for r in self.sram_rows if r.ports == ports]
        if not rows:
            have = sorted({r.ports for r in self.sram_rows})
            raise UnknownAreaError(f"area table '{self.name}' has no SRAM with {ports} port(s); "
                                   f"valid port counts: {', '.join(map(str, have))}")
        per_bit = _loglog([(r.capacity_bytes, r.um2_per_bit) for r in rows], capacity_bytes)
        return per_bit * 8 * capacity_bytes

    @property
    def sram_cell_um2(self) -> float | None:
        """The informational 6T cell in µm² at this node (F = node_nm)."""
        return None if self.sram_cell_f2 is None else self.sram_cell_f2 * (self.node_nm / 1000) ** 2

    # -- scaling ------------------------------------------------------------------------

    def scaled(self, node_nm: float) -> "AreaTable":
        """This table at another node: every area × (node_nm / self.node_nm)², the square of the
        feature-size ratio (a layout shrinks in both dimensions). Named ``<base>@<node>nm``."""
        if isinstance(node_nm, bool) or not isinstance(node_nm, (int, float)) or not node_nm > 0:
            raise ValueError(f"node_nm must be a positive number, got {node_nm!r}")
        factor = (node_nm / self.node_nm) ** 2
        return replace(
            self,
            name=f"{self.name.split('@', 1)[0]}@{node_nm:g}nm",
            node_nm=float(node_nm),
            arithmetic_rows=tuple(replace(r, um2=r.um2 * factor) for r in self.arithmetic_rows),
            register_um2_per_bit=self.register_um2_per_bit * factor,
            sram_rows=tuple(replace(r, um2=r.um2 * factor) for r in self.sram_rows),
        )


# ----------------------------------------------------------------------------- loading

_FIELDS = {"bits", "value", "unit", "source", "where", "note"}
_TOP = {"schema", "name", "node_nm", "energy_tables", "references", "arithmetic", "register", "sram", "sram_cell"}
# What an area table that `extends` another may give (energy.py's _extended resolves it):
_EXTENSION = frozenset({"schema", "name", "extends", "energy_tables", "references", "arithmetic", "sram"})


def _parse(origin: str, doc: Any) -> AreaTable:
    r = _Reader(origin, doc)
    name = _read_name(r, doc, SCHEMA)
    if set(doc) - _TOP:
        r.fail(sorted(set(doc) - _TOP)[0], f"unknown top-level field; allowed: {sorted(_TOP)}")
    energy_tables = r.get(doc, "energy_tables", "energy_tables", list)
    if not all(isinstance(t, str) and t for t in energy_tables):
        r.fail("energy_tables", f"must be a list of energy table names, got {energy_tables!r}")

    arithmetic: list[ArithmeticArea] = []
    for where, row in r.rows("arithmetic", _FIELDS | {"op", "dtype"}):
        op, dtype = r.get(row, "op", f"{where}.op", str), r.get(row, "dtype", f"{where}.dtype", str)
        if op not in OPS or dtype not in DTYPES:
            r.fail(where, f"op {op!r} / dtype {dtype!r}: valid ops {OPS}, dtypes {DTYPES}")
        bits = r.width(row, "bits", f"{where}.bits")
        if any((a.op, a.dtype, a.bits) == (op, dtype, bits) for a in arithmetic):
            r.fail(where, f"duplicate row for {bits}-bit {dtype} {op}")
        arithmetic.append(ArithmeticArea(op, dtype, bits, r.value(row, where, _AREA_UNITS_UM2), r.source(row, where)))

    registers = r.rows("register", _FIELDS)
    if len(registers) != 1:  # proportional to bits from one point; several would need a rule
        r.fail("register", f"needs exactly one row, got {len(registers)}")
    where, row = registers[0]
    register = r.value(row, where, _AREA_UNITS_UM2) / r.width(row, "bits", f"{where}.bits")
    r.source(row, where)

    sram: list[SramArea] = []
    for where, row in r.rows("sram", _FIELDS | {"capacity_bytes", "ports"}):
        cap = r.width(row, "capacity_bytes", f"{where}.capacity_bytes")
        ports = r.width(row, "ports", f"{where}.ports")
        if any((s.capacity_bytes, s.ports) == (cap, ports) for s in sram):
            r.fail(where, f"duplicate row for {cap} bytes, {ports} port(s)")
        sram.append(SramArea(cap, ports, r.width(row, "bits", f"{where}.bits"),
                             r.value(row, where, _AREA_UNITS_UM2), r.source(row, where)))
    if not sram:
        r.fail("sram", "needs at least one row")

    cell = None
    if "sram_cell" in doc:
        cell_row = r.get(doc, "sram_cell", "sram_cell", dict)
        cell = r.value(cell_row, "sram_cell", {"F2": 1.0})
        r.source(cell_row, "sram_cell")
    return AreaTable(
        name=name,
        node_nm=r.number(doc, "node_nm", "node_nm"),
        energy_tables=tuple(energy_tables),
        arithmetic_rows=tuple(arithmetic),
        register_um2_per_bit=register,
        sram_rows=tuple(sorted(sram, key=lambda s: (s.ports, s.capacity_bytes))),
        sram_cell_f2=cell,
        origin=origin,
    )


def available_area_tables() -> tuple[str, ...]:
    """Names of the shipped area tables."""
    return tuple(sorted(_shipped_docs(SCHEMA)))


def load_area_table(name_or_path: str = "area45") -> AreaTable:
    """A shipped table by name (``hwmodels/data/<name>.yaml``) or a path to a YAML file (anything
    with a path separator or a ``.yaml``/``.yml`` suffix). Missing fields, non-positive areas,
    unknown units or fields and duplicate rows raise ValueError naming the file and the field;
    an unknown name raises UnknownAreaError listing the shipped tables."""
    s = str(name_or_path)
    if "/" in s or "\\" in s or s.endswith((".yaml", ".yml")):
        text = Path(s).read_text(encoding="utf-8")
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise ValueError(f"{s}: not valid YAML: {error}") from error
        return _resolve(s, doc)
    if s not in available_area_tables():
        raise UnknownAreaError(f"no area table named {s!r}; available: {', '.join(available_area_tables())}")
    return _shipped_table(s)


@lru_cache(maxsize=16)
def _shipped_table(name: str) -> AreaTable:
    return _resolve(f"hwmodels/data/{name}.yaml", _shipped_docs(SCHEMA)[name])


def _resolve(origin: str, doc: Any) -> AreaTable:
    """The table of a parsed file, its ``extends`` resolved (an extension replaces
    ``energy_tables`` and adds rows)."""
    return _parse(origin, _extended(origin, doc, _EXTENSION, frozenset({"energy_tables"}), available_area_tables))


def area_table_for(hw: Accelerator) -> AreaTable:
    """The area table of ``hw`` (module docstring), scaled to ``hw.energy.node_nm``."""
    ref = hw.energy
    if ref.area_table is not None:
        try:
            table = load_area_table(ref.area_table)
        except (OSError, ValueError) as error:
            raise UnknownAreaError(f"energy.area_table: {error}") from None
    else:
        shipped = _shipped_docs(SCHEMA)
        paired = [name for name, doc in shipped.items() if ref.table in (doc.get("energy_tables") or ())]
        if len(paired) != 1:
            pairs = "; ".join(f"{name} for {', '.join(doc.get('energy_tables') or ())}"
                              for name, doc in sorted(shipped.items()))
            raise UnknownAreaError(f"energy.table '{ref.table}' has {'no' if not paired else 'more than one'} "
                                   f"shipped area table ({pairs}); name one in energy.area_table")
        table = load_area_table(paired[0])
    return table if ref.node_nm == table.node_nm else table.scaled(ref.node_nm)


# ----------------------------------------------------------------------------- the chip


def area_breakdown(hw: Accelerator) -> dict[str, float]:
    """mm² per component of ``hw`` (module docstring): ``mac``, ``rf``, then one entry per SRAM
    buffer under its name, in the description's order. No DRAM (off chip)."""
    table = area_table_for(hw)
    array = hw.mac_array
    precision = array.precision
    parts = {
        "mac": array.pes * table.mac(precision.dtype, precision.bits, precision.accumulator_bits),
        "rf": array.pes * table.register(2 * precision.bits + precision.accumulator_bits),
    }
    for buffer in hw.buffers:
        if buffer.name in parts:
            raise UnknownAreaError(f"buffer name '{buffer.name}' clashes with the component '{buffer.name}' "
                                   f"of the area breakdown; valid: any other name")
        parts[buffer.name] = buffer.banks * table.sram(buffer.bank_bytes, buffer.ports)
    return {name: um2 / _UM2_PER_MM2 for name, um2 in parts.items()}


def total_area_mm2(hw: Accelerator) -> float:
    """mm² of the chip: the sum of :func:`area_breakdown`."""
    return sum(area_breakdown(hw).values())
