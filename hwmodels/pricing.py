"""Price action counts with an energy table: the Accelergy half of the Timeloop/Accelergy split.

The simulator and the estimator count *actions* (a row per layer, level, component, action, width
and count); this module turns each row into picojoules and nothing else. The table comes from the
hardware description's ``energy`` field, scaled to its node and voltage.

Action rows (a pandas DataFrame) have the columns of :data:`ACTION_COLUMNS`:

============ =================================================================================
``level``    ``mac`` | ``rf`` | ``sram`` | ``dram``
``component``the unit: ``mac``, ``rf``, a buffer's name, ``dram``
``action``   ``mac`` | ``read`` | ``write``
``width_bits`` bits per action (operand width of a MAC; access width of a memory)
``count``    number of actions (may be fractional: expected counts of the analytical model)
============ =================================================================================
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd

from hwmodels.energy import EnergyTable, load_energy_table
from hwmodels.hardware import Accelerator

__all__ = ["ACTION_COLUMNS", "LEVELS", "energy_table_for", "price"]

ACTION_COLUMNS = ("layer", "level", "component", "action", "width_bits", "count")
LEVELS = ("mac", "rf", "sram", "dram")


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


def _energy_per_action(level: str, component: str, width_bits: int, hw: Accelerator, table: EnergyTable) -> float:
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
    keys = actions[["level", "component", "width_bits"]].drop_duplicates()
    per_action = {
        (level, component, width): _energy_per_action(level, component, int(width), hw, table)
        for level, component, width in keys.itertuples(index=False)
    }
    unit = np.array(
        [per_action[key] for key in zip(actions["level"], actions["component"], actions["width_bits"])],
        dtype=float,
    )
    return pd.Series(unit * actions["count"].to_numpy(dtype=float), index=actions.index, name="energy_pj")
