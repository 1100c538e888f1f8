"""Price action counts with an energy table: the Accelergy half of the Timeloop/Accelergy split.

The simulator and the estimator count *actions* (a row per layer, level, component, action, width
and count); this module turns each row into picojoules and nothing else. The table comes from the
hardware description's ``energy`` field, scaled to its node and voltage.

Action rows (a pandas DataFrame) have the columns of :data:`ACTION_COLUMNS`:

============ =================================================================================
``level``    ``mac`` | ``rf`` | ``sram`` | ``dram``
``component``the unit: ``mac``, ``fixed-point-mac``, ``rf``, a buffer's name, ``dram``
``action``   ``mac`` | ``mult`` | ``add`` | ``read`` | ``write`` | ``index_read`` | ``index_write``
             (the last two: metadata of compressed weights, priced as a read or write of the
             same memory and width, counted apart so their energy can be reported)
``width_bits`` bits per action (operand width of a MAC; access width of a memory)
``count``    number of actions (may be fractional: expected counts of the analytical model)
============ =================================================================================

A ``mac`` action of the ``mac`` component is one MAC of the hardware's own precision: the
table's MAC (multiply + add at ``width_bits``, of the array's dtype). The ``fixed-point-mac``
component is the integer arithmetic of a layer with its own fixed-point widths, counted in
parts: ``mult`` and ``add`` actions, each priced as the table's integer operation of that width
(exact rows only; :func:`check_integer_mac` names a missing one).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd

from hwmodels.energy import EnergyTable, UnknownEnergyError, load_energy_table
from hwmodels.hardware import Accelerator

__all__ = ["ACTION_COLUMNS", "FIXED_POINT_MAC", "LEVELS", "check_integer_mac", "energy_table_for", "price"]

ACTION_COLUMNS = ("layer", "level", "component", "action", "width_bits", "count")
LEVELS = ("mac", "rf", "sram", "dram")
FIXED_POINT_MAC = "fixed-point-mac"


@lru_cache(maxsize=32)
def _scaled_table(table: str, node_nm: float, voltage_v: float, rule: str) -> EnergyTable:
    base = load_energy_table(table)
    if node_nm == base.node_nm and voltage_v == base.voltage_v:
        return base
    return base.scaled(node_nm, voltage_v, rule=rule)


def energy_table_for(hw: Accelerator) -> EnergyTable:
    """The energy table named by ``hw.energy``, scaled to its node and voltage."""
    ref = hw.energy
    return _scaled_table(ref.table, ref.node_nm, ref.voltage_v, ref.scaling_rule)


def check_integer_mac(hw: Accelerator, multiply_bits: int, add_bits: int, what: str) -> None:
    """UnknownEnergyError unless ``hw``'s energy table has an integer multiply of
    ``multiply_bits`` and an integer add of ``add_bits`` (exact rows); the message starts with
    ``what`` and lists the widths the table has."""
    table = energy_table_for(hw)
    have = {op: sorted(r.bits for r in table.arithmetic_rows if r.dtype == "int" and r.op == op)
            for op in ("mult", "add")}
    missing = [f"{bits}-bit int {op}" for op, bits in (("mult", multiply_bits), ("add", add_bits))
               if bits not in have[op]]
    if missing:
        raise UnknownEnergyError(
            f"{what}: a MAC needs an int multiply of {multiply_bits} bits and an int add of {add_bits} bits "
            f"(the accumulator); energy table '{table.name}' has no {' and no '.join(missing)} (int mult: "
            f"{', '.join(map(str, have['mult'])) or 'none'}; int add: {', '.join(map(str, have['add'])) or 'none'})")


def _energy_per_action(level: str, component: str, action: str, width_bits: int, hw: Accelerator,
                       table: EnergyTable) -> float:
    if level == "mac" and component == FIXED_POINT_MAC:
        return table.arithmetic(action, "int", width_bits)
    if level == "mac":
        return table.mac(hw.mac_array.precision.dtype, width_bits)
    if level == "rf":
        return table.register_file(width_bits)
    if level == "sram":
        buffer = next(b for b in hw.buffers if b.name == component)
        return table.sram(buffer.bank_bytes, width_bits)
    if level == "dram":
        return table.dram(hw.dram.interface, width_bits)
    raise ValueError(f"unknown level '{level}'; valid: {', '.join(LEVELS)}")


def price(actions: pd.DataFrame, hw: Accelerator, table: EnergyTable | None = None) -> pd.Series:
    """Energy in pJ of every action row: count × energy of one action of that width."""
    table = table or energy_table_for(hw)
    columns = ["level", "component", "action", "width_bits"]
    keys = actions[columns].drop_duplicates()
    per_action = {
        (level, component, action, width): _energy_per_action(level, component, action, int(width), hw, table)
        for level, component, action, width in keys.itertuples(index=False)
    }
    unit = np.array([per_action[key] for key in zip(*(actions[c] for c in columns))], dtype=float)
    return pd.Series(unit * actions["count"].to_numpy(dtype=float), index=actions.index, name="energy_pj")
