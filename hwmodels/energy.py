"""Energy per action (pJ) from a published energy table, by lookup only.

A table is a YAML file (shipped ones in ``hwmodels/data/<name>.yaml``; schema in the header of
``horowitz45.yaml``). The default, ``horowitz45``, is Horowitz's ISSCC 2014 table at 45 nm, 0.9 V
as Han et al. (NIPS 2015, Fig. 1) use it. Every number returned is in picojoules (pJ).

Lookups never guess: an operation or width the table has no row for raises
:class:`UnknownEnergyError`. The only rules applied between rows are the documented ones:

* register file: energy proportional to access width (per-bit constant from its single row);
* SRAM: per-bit energy piecewise power-law (log-log linear) in capacity between the table's
  points, capacity^exponent outside them (``sram_extrapolation_exponent``, 0.5 in horowitz45),
  energy proportional to access width, writes priced as reads;
* DRAM: energy proportional to bits moved;
* node/voltage scaling, :meth:`EnergyTable.scaled`.

This module must not import torch.
"""

from __future__ import annotations

import functools
import importlib.resources
import math
import numbers
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "UnknownEnergyError",
    "ArithmeticRow",
    "RegisterFileRow",
    "SramRow",
    "DramRow",
    "DramBandwidthRow",
    "ReferencePoint",
    "EnergyTable",
    "SCALING_RULES",
    "load_energy_table",
    "available_energy_tables",
]

SCHEMA = "prunesim/energy-table/1"
OPS = ("add", "mult")
DTYPES = ("int", "fp")
# cv2: classical constant-field (Dennard) scaling, everything; cv2-logic-only: same, but DRAM
# interface energies (which follow I/O and DRAM-array technology, not logic) stay as they are.
SCALING_RULES = ("cv2", "cv2-logic-only")

# Conversion of the energy units a table may use, to pJ.
_ENERGY_UNITS_PJ = {"fJ": 1e-3, "pJ": 1.0, "nJ": 1e3}
_BANDWIDTH_UNITS_GBS = {"GB/s": 1.0}
_DIMENSIONLESS_UNITS = {"1": 1.0}


class UnknownEnergyError(ValueError):
    """The table has no figure for what was asked; the message names it and lists what exists."""


# ----------------------------------------------------------------------------- rows


@dataclass(frozen=True)
class ArithmeticRow:
    """One operation of ``bits``-bit operands costs ``energy_pj`` pJ."""

    op: str
    dtype: str
    bits: int
    energy_pj: float
    source: str


@dataclass(frozen=True)
class RegisterFileRow:
    """One register-file access of ``bits`` bits costs ``energy_pj`` pJ."""

    bits: int
    energy_pj: float
    source: str


@dataclass(frozen=True)
class SramRow:
    """One access of ``bits`` bits to an SRAM of ``capacity_bytes`` costs ``energy_pj`` pJ."""

    capacity_bytes: int
    bits: int
    energy_pj: float
    source: str

    @property
    def pj_per_bit(self) -> float:
        return self.energy_pj / self.bits


@dataclass(frozen=True)
class DramRow:
    """One access of ``bits`` bits over ``interface`` costs ``energy_pj`` pJ."""

    interface: str
    bits: int
    energy_pj: float
    source: str

    @property
    def pj_per_bit(self) -> float:
        return self.energy_pj / self.bits


@dataclass(frozen=True)
class DramBandwidthRow:
    """Peak bandwidth (GB/s) of one ``part`` of ``interface`` with a ``bits``-bit bus."""

    interface: str
    part: str
    bits: int
    gbs: float
    source: str


@dataclass(frozen=True)
class ReferencePoint:
    """A figure kept for checking or information, used by no lookup.

    ``kind`` is ``"sram"`` or ``"dram"``; energies in pJ; ``high_pj`` equals ``low_pj`` unless
    the source gives a range. ``capacity_bytes`` is set for SRAM points.
    """

    kind: str
    bits: int
    low_pj: float
    high_pj: float
    capacity_bytes: int | None
    source: str
    note: str


# ----------------------------------------------------------------------------- table


def _check_width(what: str, bits: Any) -> int:
    """A width/capacity must be a positive integer; ValueError otherwise."""
    if isinstance(bits, bool) or not isinstance(bits, numbers.Integral) or bits <= 0:
        raise ValueError(f"{what} must be a positive integer, got {bits!r}")
    return int(bits)


def _check_positive(what: str, x: Any) -> float:
    if isinstance(x, bool) or not isinstance(x, numbers.Real) or not (math.isfinite(x) and x > 0):
        raise ValueError(f"{what} must be a positive finite number, got {x!r}")
    return float(x)


@dataclass(frozen=True)
class EnergyTable:
    """Energy per action at one technology node and supply voltage. All energies in pJ.

    Built by :func:`load_energy_table` (or :meth:`scaled`); immutable. ``dram_node_nm`` and
    ``dram_voltage_v`` are the node/voltage the DRAM rows correspond to: equal to ``node_nm``
    and ``voltage_v`` unless the table was scaled with ``rule="cv2-logic-only"``.
    """

    name: str
    node_nm: float
    voltage_v: float
    arithmetic_rows: tuple[ArithmeticRow, ...]
    register_file_row: RegisterFileRow
    sram_rows: tuple[SramRow, ...]  # sorted by capacity, capacities distinct
    sram_extrapolation_exponent: float
    dram_rows: tuple[DramRow, ...]
    dram_bandwidth_rows: tuple[DramBandwidthRow, ...]
    reference_points: tuple[ReferencePoint, ...]
    dram_node_nm: float
    dram_voltage_v: float
    origin: str = field(default="", compare=False)  # file it was loaded from, for messages

    # -- arithmetic ---------------------------------------------------------------------

    def arithmetic(self, op: str, dtype: str, bits: int) -> float:
        """pJ per operation; ``op`` in {'add','mult'}, ``dtype`` in {'int','fp'}.

        Exact rows only: a width the table lacks (e.g. 16-bit int mult in horowitz45) raises
        UnknownEnergyError rather than being interpolated.
        """
        if op not in OPS or dtype not in DTYPES:
            raise UnknownEnergyError(
                f"{self.name}: no energy for op={op!r} dtype={dtype!r}; "
                f"ops are {OPS}, dtypes are {DTYPES}; have {self._arith_summary()}"
            )
        _check_width("bits", bits)
        for row in self.arithmetic_rows:
            if (row.op, row.dtype, row.bits) == (op, dtype, bits):
                return row.energy_pj
        raise UnknownEnergyError(
            f"{self.name}: no energy for {bits}-bit {dtype} {op}; have {self._arith_summary()}"
        )

    def mac(self, dtype: str, bits: int) -> float:
        """pJ of one multiply-accumulate = mult + add, both at ``bits`` bits of ``dtype``.

        (A wider accumulator is not modelled; ask for the parts with :meth:`arithmetic`.)
        """
        return self.arithmetic("mult", dtype, bits) + self.arithmetic("add", dtype, bits)

    def _arith_summary(self) -> str:
        return ", ".join(f"{r.dtype}{r.bits} {r.op}" for r in self.arithmetic_rows)

    # -- on-chip memories ---------------------------------------------------------------

    def register_file(self, width_bits: int) -> float:
        """pJ per register-file access of ``width_bits`` bits.

        Proportional to width: the per-bit energy of the table's single register-file row.
        """
        width_bits = _check_width("register file width_bits", width_bits)
        row = self.register_file_row
        if width_bits == row.bits:
            return row.energy_pj  # exact, no rounding through the per-bit figure
        return row.energy_pj / row.bits * width_bits

    def sram(self, capacity_bytes: int, width_bits: int) -> float:
        """pJ per access (read or write) of ``width_bits`` bits to an SRAM of ``capacity_bytes``.

        Per-bit energy e(C) at capacity C: the table's points exactly; between two points
        e = e_i * (C / C_i) ** k_i with k_i = log(e_{i+1}/e_i) / log(C_{i+1}/C_i) (log-log
        linear); below the smallest or above the largest point, the same form with
        k = ``sram_extrapolation_exponent`` (0.5: sqrt(capacity)). Energy = e(C) * width_bits:
        per-bit constant at a given capacity. Real SRAMs grow less than linearly with width,
        so narrow accesses are underestimated (wide ones overestimated). Writes are priced as
        reads (the source gives reads only). For a banked memory pass one bank's capacity.
        """
        capacity_bytes = _check_width("SRAM capacity_bytes", capacity_bytes)
        width_bits = _check_width("SRAM width_bits", width_bits)
        return self._sram_pj_per_bit(capacity_bytes) * width_bits

    def _sram_pj_per_bit(self, capacity: int) -> float:
        rows = self.sram_rows
        for row in rows:
            if row.capacity_bytes == capacity:
                return row.pj_per_bit
        if capacity < rows[0].capacity_bytes:
            lo, k = rows[0], self.sram_extrapolation_exponent
        elif capacity > rows[-1].capacity_bytes:
            lo, k = rows[-1], self.sram_extrapolation_exponent
        else:
            i = max(j for j, r in enumerate(rows) if r.capacity_bytes < capacity)
            lo, hi = rows[i], rows[i + 1]
            k = math.log(hi.pj_per_bit / lo.pj_per_bit) / math.log(
                hi.capacity_bytes / lo.capacity_bytes
            )
        return lo.pj_per_bit * (capacity / lo.capacity_bytes) ** k

    # -- DRAM ---------------------------------------------------------------------------

    def dram(self, interface: str, bits: float = 1) -> float:
        """pJ to move ``bits`` bits over ``interface`` (default: pJ per bit).

        Proportional to bits moved. ``bits`` is a count, so any finite number >= 0 is accepted
        (0 -> 0 pJ; fractional averages allowed). Unknown interface -> UnknownEnergyError.
        """
        if (
            isinstance(bits, bool)
            or not isinstance(bits, numbers.Real)
            or not math.isfinite(bits)
            or bits < 0
        ):
            raise ValueError(f"DRAM bits must be a finite number >= 0, got {bits!r}")
        for row in self.dram_rows:
            if row.interface == interface:
                if bits == row.bits:
                    return row.energy_pj  # exact, e.g. Han's 640 pJ per 32-bit access
                return row.pj_per_bit * bits
        raise UnknownEnergyError(
            f"{self.name}: no DRAM energy for interface {interface!r}; "
            f"have {self.dram_interfaces()}"
        )

    def dram_interfaces(self) -> tuple[str, ...]:
        """Interfaces with a DRAM energy row, sorted."""
        return tuple(sorted(r.interface for r in self.dram_rows))

    def dram_bandwidth_gbs(self, interface: str) -> float | None:
        """Peak bandwidth in GB/s of ``interface`` (informational row), or None when the table
        knows the interface (has an energy row for it) but no bandwidth.

        An interface the table knows nothing about raises UnknownEnergyError.
        """
        for row in self.dram_bandwidth_rows:
            if row.interface == interface:
                return row.gbs
        if interface in self.dram_interfaces():
            return None
        known = set(self.dram_interfaces()) | {r.interface for r in self.dram_bandwidth_rows}
        raise UnknownEnergyError(
            f"{self.name}: unknown DRAM interface {interface!r}; have {tuple(sorted(known))}"
        )

    # -- scaling ------------------------------------------------------------------------

    def scaled(
        self, node_nm: float, voltage_v: float | None = None, rule: str = "cv2"
    ) -> "EnergyTable":
        """This table moved to another node and supply voltage.

        ``rule="cv2"``: the classical constant-field (Dennard) scaling argument: switched
        capacitance is proportional to feature size and the energy of a switching event is
        C * V^2, so every energy is multiplied by (node_nm / self.node_nm) *
        (voltage_v / self.voltage_v) ** 2 (for horowitz45: E45 * (node/45) * (V/0.9)^2).
        It is applied to arithmetic, register file, SRAM and DRAM alike. DRAM interface energy
        does not really follow logic scaling (I/O drivers, termination, DRAM array), so
        ``rule="cv2-logic-only"`` scales everything except the DRAM rows, which keep their
        energies (and ``dram_node_nm``/``dram_voltage_v``). ``voltage_v=None`` keeps this
        table's voltage. Bandwidths and the SRAM exponent are not scaled. The result is named
        ``<base>@<node>nm,<V>V`` (``,cv2-logic-only`` appended for that rule).
        """
        if rule not in SCALING_RULES:
            raise ValueError(f"unknown scaling rule {rule!r}; valid rules are {SCALING_RULES}")
        node_nm = _check_positive("node_nm", node_nm)
        voltage_v = self.voltage_v if voltage_v is None else _check_positive("voltage_v", voltage_v)

        def cv2(from_node: float, from_v: float) -> float:
            return (node_nm / from_node) * (voltage_v / from_v) ** 2

        logic = cv2(self.node_nm, self.voltage_v)
        if rule == "cv2":
            # Relative to the node the DRAM rows are at, so scaling after a logic-only
            # scaling stays consistent.
            dram = cv2(self.dram_node_nm, self.dram_voltage_v)
            dram_node, dram_v = node_nm, voltage_v
        else:
            dram, dram_node, dram_v = 1.0, self.dram_node_nm, self.dram_voltage_v

        def sc(row: Any, f: float) -> Any:
            return row if f == 1.0 else replace(row, energy_pj=row.energy_pj * f)

        def sc_point(p: ReferencePoint) -> ReferencePoint:
            f = dram if p.kind == "dram" else logic
            return replace(p, low_pj=p.low_pj * f, high_pj=p.high_pj * f)

        base = self.name.split("@", 1)[0]
        name = f"{base}@{node_nm:g}nm,{voltage_v:g}V" + ("" if rule == "cv2" else f",{rule}")
        return replace(
            self,
            name=name,
            node_nm=node_nm,
            voltage_v=voltage_v,
            arithmetic_rows=tuple(sc(r, logic) for r in self.arithmetic_rows),
            register_file_row=sc(self.register_file_row, logic),
            sram_rows=tuple(sc(r, logic) for r in self.sram_rows),
            dram_rows=tuple(sc(r, dram) for r in self.dram_rows),
            reference_points=tuple(sc_point(p) for p in self.reference_points),
            dram_node_nm=dram_node,
            dram_voltage_v=dram_v,
        )


# ----------------------------------------------------------------------------- loading


class _Reader:
    """Validates one parsed YAML file; every error names the file and the field."""

    def __init__(self, origin: str, doc: Any):
        self.origin = origin
        if not isinstance(doc, dict):
            self.fail("(top level)", "must be a mapping")
        self.doc = doc
        refs = self.get(doc, "references", "references", dict)
        for key, text in refs.items():
            if not isinstance(text, str) or not text.strip():
                self.fail(f"references.{key}", "must be a non-empty string")
        self.refs: dict[str, str] = refs

    def fail(self, where: str, msg: str) -> None:
        raise ValueError(f"{self.origin}: {where}: {msg}")

    def get(self, m: dict, key: str, where: str, typ: type | tuple, optional: bool = False):
        if key not in m:
            if optional:
                return None
            self.fail(where, "missing field")
        v = m[key]
        if isinstance(v, bool) and typ is not bool or not isinstance(v, typ):
            self.fail(where, f"expected {getattr(typ, '__name__', typ)}, got {v!r}")
        return v

    def number(self, m: dict, key: str, where: str, positive: bool = True) -> float:
        v = self.get(m, key, where, (int, float))
        if not math.isfinite(v) or (positive and v <= 0):
            self.fail(where, f"must be a positive finite number, got {v!r}")
        return float(v)

    def width(self, m: dict, key: str, where: str) -> int:
        v = self.get(m, key, where, int)
        if v <= 0:
            self.fail(where, f"must be a positive integer, got {v!r}")
        return v

    def rows(self, key: str, fields: set[str]) -> list[tuple[str, dict]]:
        """The list under ``key``; each row a mapping using only ``fields`` (typos caught)."""
        seq = self.get(self.doc, key, key, list)
        out = []
        for i, row in enumerate(seq):
            where = f"{key}[{i}]"
            if not isinstance(row, dict):
                self.fail(where, "must be a mapping")
            extra = set(row) - fields
            if extra:
                bad = f"{where}.{sorted(extra)[0]}"
                self.fail(bad, f"unknown field; allowed: {sorted(fields)}")
            out.append((where, row))
        return out

    def source(self, row: dict, where: str) -> str:
        ref = self.get(row, "source", f"{where}.source", str)
        if ref not in self.refs:
            self.fail(f"{where}.source", f"{ref!r} is not in references {sorted(self.refs)}")
        place = self.get(row, "where", f"{where}.where", str, optional=True)
        note = self.get(row, "note", f"{where}.note", str, optional=True)
        parts = [" ".join(self.refs[ref].split())] + [p for p in (place, note) if p]
        return "; ".join(parts)

    def value(self, row: dict, where: str, units: dict[str, float], key: str = "value") -> float:
        """``row[key]`` converted by ``row['unit']``; must be > 0 (no negative energies)."""
        unit = self.get(row, "unit", f"{where}.unit", str)
        if unit not in units:
            self.fail(f"{where}.unit", f"unknown unit {unit!r}; valid: {sorted(units)}")
        return self.number(row, key, f"{where}.{key}") * units[unit]


_ENERGY_FIELDS = {"bits", "value", "unit", "source", "where", "note"}


def _read_name(r: "_Reader", doc: Any, schema: str) -> str:
    """Check ``doc``'s ``schema`` field against ``schema`` and return its ``name`` (a data
    table's header, shared by energy and area tables)."""
    found = r.get(doc, "schema", "schema", str)
    if found != schema:
        r.fail("schema", f"expected {schema!r}, got {found!r}")
    name = r.get(doc, "name", "name", str)
    if not name or "@" in name:
        r.fail("name", f"must be non-empty, without '@' (marks scaled tables): {name!r}")
    return name


def _parse(origin: str, doc: Any) -> EnergyTable:
    r = _Reader(origin, doc)
    name = _read_name(r, doc, SCHEMA)
    node_nm = r.number(doc, "node_nm", "node_nm")
    voltage_v = r.number(doc, "voltage_v", "voltage_v")
    known = {
        "schema", "name", "node_nm", "voltage_v", "references", "arithmetic", "register_file",
        "sram", "sram_extrapolation_exponent", "dram", "dram_bandwidth", "reference_points",
    }  # fmt: skip
    if set(doc) - known:
        r.fail(sorted(set(doc) - known)[0], f"unknown top-level field; allowed: {sorted(known)}")

    arith = []
    for where, row in r.rows("arithmetic", _ENERGY_FIELDS | {"op", "dtype"}):
        op = r.get(row, "op", f"{where}.op", str)
        dtype = r.get(row, "dtype", f"{where}.dtype", str)
        if op not in OPS:
            r.fail(f"{where}.op", f"{op!r} is not one of {OPS}")
        if dtype not in DTYPES:
            r.fail(f"{where}.dtype", f"{dtype!r} is not one of {DTYPES}")
        bits = r.width(row, "bits", f"{where}.bits")
        if any((a.op, a.dtype, a.bits) == (op, dtype, bits) for a in arith):
            r.fail(where, f"duplicate row for {bits}-bit {dtype} {op}")
        energy = r.value(row, where, _ENERGY_UNITS_PJ)
        arith.append(ArithmeticRow(op, dtype, bits, energy, r.source(row, where)))

    rf = []
    for where, row in r.rows("register_file", _ENERGY_FIELDS):
        bits = r.width(row, "bits", f"{where}.bits")
        energy = r.value(row, where, _ENERGY_UNITS_PJ)
        rf.append(RegisterFileRow(bits, energy, r.source(row, where)))
    if len(rf) != 1:
        # Width scaling is defined from one point; several would need a rule to pick one.
        r.fail("register_file", f"needs exactly one row, got {len(rf)}")

    sram = []
    for where, row in r.rows("sram", _ENERGY_FIELDS | {"capacity_bytes"}):
        cap = r.width(row, "capacity_bytes", f"{where}.capacity_bytes")
        if any(s.capacity_bytes == cap for s in sram):
            r.fail(where, f"duplicate capacity {cap}")
        bits = r.width(row, "bits", f"{where}.bits")
        sram.append(SramRow(cap, bits, r.value(row, where, _ENERGY_UNITS_PJ), r.source(row, where)))
    if not sram:
        r.fail("sram", "needs at least one row")
    sram.sort(key=lambda s: s.capacity_bytes)

    exp_row = r.get(doc, "sram_extrapolation_exponent", "sram_extrapolation_exponent", dict)
    exp_where = "sram_extrapolation_exponent"
    extra = set(exp_row) - {"value", "unit", "source", "where", "note"}
    if extra:
        r.fail(f"{exp_where}.{sorted(extra)[0]}", "unknown field")
    exponent = r.value(exp_row, exp_where, _DIMENSIONLESS_UNITS)
    r.source(exp_row, exp_where)

    dram = []
    for where, row in r.rows("dram", _ENERGY_FIELDS | {"interface"}):
        iface = r.get(row, "interface", f"{where}.interface", str)
        if any(d.interface == iface for d in dram):
            r.fail(where, f"duplicate interface {iface!r}")
        bits = r.width(row, "bits", f"{where}.bits")
        energy = r.value(row, where, _ENERGY_UNITS_PJ)
        dram.append(DramRow(iface, bits, energy, r.source(row, where)))

    bw = []
    for where, row in r.rows("dram_bandwidth", _ENERGY_FIELDS | {"interface", "part"}):
        iface = r.get(row, "interface", f"{where}.interface", str)
        if any(b.interface == iface for b in bw):
            r.fail(where, f"duplicate interface {iface!r}")
        part = r.get(row, "part", f"{where}.part", str)
        bits = r.width(row, "bits", f"{where}.bits")
        gbs = r.value(row, where, _BANDWIDTH_UNITS_GBS)
        bw.append(DramBandwidthRow(iface, part, bits, gbs, r.source(row, where)))

    points = []
    fields = _ENERGY_FIELDS | {"kind", "capacity_bytes", "value_max"}
    for where, row in r.rows("reference_points", fields):
        kind = r.get(row, "kind", f"{where}.kind", str)
        if kind not in ("sram", "dram"):
            r.fail(f"{where}.kind", f"{kind!r} is not one of ('sram', 'dram')")
        cap = None
        if kind == "sram":
            cap = r.width(row, "capacity_bytes", f"{where}.capacity_bytes")
        bits = r.width(row, "bits", f"{where}.bits")
        low = r.value(row, where, _ENERGY_UNITS_PJ)
        high = low
        if "value_max" in row:
            high = r.value(row, where, _ENERGY_UNITS_PJ, key="value_max")
            if high < low:
                r.fail(f"{where}.value_max", "must be >= value")
        note = r.get(row, "note", f"{where}.note", str, optional=True) or ""
        points.append(ReferencePoint(kind, bits, low, high, cap, r.source(row, where), note))

    return EnergyTable(
        name=name,
        node_nm=node_nm,
        voltage_v=voltage_v,
        arithmetic_rows=tuple(arith),
        register_file_row=rf[0],
        sram_rows=tuple(sram),
        sram_extrapolation_exponent=exponent,
        dram_rows=tuple(dram),
        dram_bandwidth_rows=tuple(bw),
        reference_points=tuple(points),
        dram_node_nm=node_nm,
        dram_voltage_v=voltage_v,
        origin=origin,
    )


def _data_dir():
    return importlib.resources.files("hwmodels") / "data"


@functools.lru_cache(maxsize=1)
def _shipped_yaml() -> dict[str, Any]:
    """name → parsed YAML of every ``hwmodels/data/*.yaml``, read once (shipped data does not
    change while running); files that are not valid YAML are left out: not ours to judge, the
    loader reports them when such a table is asked for."""
    docs = {}
    for entry in _data_dir().iterdir():
        if entry.name.endswith(".yaml") and entry.is_file():
            try:
                docs[entry.name[: -len(".yaml")]] = yaml.safe_load(entry.read_text(encoding="utf-8"))
            except yaml.YAMLError:
                continue
    return docs


def _shipped_docs(schema: str) -> dict[str, Any]:
    """name → parsed YAML of the shipped tables declaring ``schema`` (energy and area tables
    share the folder)."""
    return {name: doc for name, doc in _shipped_yaml().items()
            if isinstance(doc, dict) and doc.get("schema") == schema}


def available_energy_tables() -> tuple[str, ...]:
    """Names of the shipped tables: ``hwmodels/data/*.yaml`` declaring the energy-table schema."""
    return tuple(sorted(_shipped_docs(SCHEMA)))


def load_energy_table(name_or_path: str = "horowitz45") -> EnergyTable:
    """A shipped table by name (file ``hwmodels/data/<name>.yaml``, found with
    importlib.resources) or a path to a YAML file.

    Anything with a path separator or a ``.yaml``/``.yml`` suffix is a path. Validation:
    missing fields, non-positive energies, unknown units, unknown fields or duplicate rows
    raise ValueError naming the file and the field. An unknown table name raises
    UnknownEnergyError listing the shipped ones; a missing path raises FileNotFoundError.
    """
    s = str(name_or_path)
    if "/" in s or "\\" in s or s.endswith((".yaml", ".yml")):
        path = Path(s)
        text = path.read_text(encoding="utf-8")
        origin = str(path)
    else:
        entry = _data_dir() / f"{s}.yaml"
        if not entry.is_file():
            raise UnknownEnergyError(
                f"no energy table named {s!r}; available: {available_energy_tables()}"
            )
        text = entry.read_text(encoding="utf-8")
        origin = f"hwmodels/data/{s}.yaml"
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ValueError(f"{origin}: not valid YAML: {e}") from e
    return _parse(origin, _extended(origin, doc))


# Fields a table that ``extends`` another may give: its identity, its references, and rows added
# to the base's lists. Node, voltage and the SRAM exponent are the base's (rows added to a table
# must be at its node and voltage).
_EXTENSION_FIELDS = {"schema", "name", "extends", "references", "arithmetic", "register_file", "sram",
                     "dram", "dram_bandwidth", "reference_points"}


def _extended(origin: str, doc: Any, fields: frozenset[str] | set[str] = _EXTENSION_FIELDS,
              replaced: frozenset[str] = frozenset(), available=None) -> Any:
    """``doc`` with its ``extends: BASE`` resolved: the base table's fields, its references and
    rows plus ``doc``'s (a reference id given twice must have the same text; a row given twice is
    rejected by :func:`_parse` as a duplicate). A doc without ``extends`` comes back unchanged.

    This is how a table adds *derived* rows to a published one without editing it: e.g.
    ``horowitz45-int16`` adds a 16-bit integer multiply, derived in its file, to Horowitz's
    figures, which stay exactly as published in ``horowitz45``.

    ``fields``: what an extending doc may give (default: an energy table's); those in
    ``replaced`` replace the base's value, the other row lists are appended to the base's.
    ``available``: lists the shipped tables for the error message (default: energy tables).
    :mod:`hwmodels.area` resolves area tables with its own fields.
    """
    if not isinstance(doc, dict) or "extends" not in doc:
        return doc
    base_name = doc["extends"]
    if not isinstance(base_name, str) or "/" in base_name or "\\" in base_name:
        raise ValueError(f"{origin}: extends: must name a shipped table, got {base_name!r}")
    extra = sorted(set(doc) - set(fields))
    if extra:
        raise ValueError(f"{origin}: {extra[0]}: not allowed in a table that extends another "
                         f"(inherited from {base_name!r}); allowed: {sorted(fields)}")
    entry = _data_dir() / f"{base_name}.yaml"
    if not entry.is_file():
        raise ValueError(f"{origin}: extends: no shipped table {base_name!r}; available: "
                         f"{(available or available_energy_tables)()}")
    base = _extended(f"hwmodels/data/{base_name}.yaml", yaml.safe_load(entry.read_text(encoding="utf-8")),
                     fields, replaced, available)
    merged = dict(base)
    merged["name"] = doc.get("name", base.get("name"))
    references = dict(base.get("references") or {})
    for key, text in (doc.get("references") or {}).items():
        if key in references and references[key] != text:
            raise ValueError(f"{origin}: references.{key}: already defined by {base_name!r} with another text")
        references[key] = text
    merged["references"] = references
    for key in set(fields) - {"schema", "name", "extends", "references"}:
        if key in doc:
            merged[key] = doc[key] if key in replaced else list(base.get(key) or []) + list(doc[key] or [])
    return merged
