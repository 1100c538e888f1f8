"""The numbers of a comparison report, as tables: energy by component, memory traffic per level,
FLOP and MAC savings, cycles by stall cause. One row per (variant, layer) of a results frame plus
a ``total`` row per variant; display units in the column names (µJ, Mbit, %, ×).

Every derived quantity is a sum of the results' own columns, so the totals here are the totals of
``results.csv`` (energy: the sum of ``energy_pj``; cycles: layers run one after another, so the
sum of ``cycles``, as :func:`sim.estimator.totals` takes them).

Energy components (:func:`energy_components`) split ``energy_pj`` into DRAM, SRAM, RF, MAC and
*index*: the energy of moving the relative indices that locate non-zero weights (columns
``energy_index_pj``, of which ``energy_index_dram_pj`` crossed DRAM and the rest SRAM; absent
columns count 0). The index part is taken out of the DRAM and SRAM energies it belongs to, so the
five components always sum to ``energy_pj``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sim.estimator import edp_pj_s

__all__ = [
    "COMPONENTS", "cycle_breakdown", "cycles_table", "energy_components", "energy_table", "savings_table",
    "summary_rows", "traffic_table", "with_totals",
]

COMPONENTS = ("DRAM", "SRAM", "RF", "MAC", "index")

# Stall causes as the simulators name them (sim.engine.STALL_CAUSES, sim.eie's FIFO stalls),
# in the order they are stacked; what is left of stall_cycles is shown as "other stall".
_STALL_LABELS = {
    "stall_weights_cycles": "wait weights", "stall_inputs_cycles": "wait inputs",
    "stall_psums_cycles": "wait psums", "stall_output_drain_cycles": "output drain",
    "fifo_stall_cycles": "activation FIFO full",
}


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    """A column with NaN as 0, or zeros where the results do not have it."""
    if name not in frame.columns:
        return pd.Series(0.0, index=frame.index)
    return frame[name].astype(float).fillna(0.0)


def energy_components(frame: pd.DataFrame) -> pd.DataFrame:
    """pJ per row in the columns of :data:`COMPONENTS` (module docstring); they sum to
    ``energy_pj``."""
    index = _column(frame, "energy_index_pj")
    index_dram = _column(frame, "energy_index_dram_pj")
    return pd.DataFrame({
        "DRAM": _column(frame, "energy_dram_pj") - index_dram,
        "SRAM": _column(frame, "energy_sram_pj") - (index - index_dram),
        "RF": _column(frame, "energy_rf_pj"),
        "MAC": _column(frame, "energy_mac_pj"),
        "index": index,
    }, index=frame.index)


def cycle_breakdown(frame: pd.DataFrame) -> pd.DataFrame:
    """Cycles per row split into ``busy`` (cycles − stall_cycles) and each stall cause the
    results record, plus ``other stall`` when causes do not account for all stall cycles
    (the EIE model's wait for spilled DRAM data); the parts sum to ``cycles``."""
    stalls = _column(frame, "stall_cycles")
    parts = {"busy": _column(frame, "cycles") - stalls}
    for column, label in _STALL_LABELS.items():
        if column in frame.columns and frame[column].notna().any():
            parts[label] = _column(frame, column)
    named = sum((parts[label] for label in parts if label != "busy"), pd.Series(0.0, index=frame.index))
    other = stalls - named
    if (other.abs() > 0.5).any():
        parts["other stall"] = other
    return pd.DataFrame(parts, index=frame.index)


def with_totals(table: pd.DataFrame, ratios: dict | None = None) -> pd.DataFrame:
    """``table`` (columns ``variant``, ``layer`` and numbers) with a ``total`` row after each
    variant's layers: numbers summed, then each ``ratios[column](total_row)`` recomputed from the
    sums (a percentage of sums, not a sum of percentages)."""
    parts = []
    for variant, rows in table.groupby("variant", sort=False):
        total = rows.drop(columns=["variant", "layer"]).sum(numeric_only=True)
        for column, ratio in (ratios or {}).items():
            total[column] = ratio(total)
        parts += [rows, pd.DataFrame([{"variant": variant, "layer": "total", **total.to_dict()}])]
    return pd.concat(parts, ignore_index=True)[list(table.columns)]


def _base(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[["variant", "layer"]].reset_index(drop=True)


def energy_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Energy per layer by component in µJ, and the layer's total."""
    components = energy_components(frame).reset_index(drop=True) / 1e6
    table = pd.concat([_base(frame), components.add_suffix(" µJ")], axis=1)
    table["energy µJ"] = frame["energy_pj"].to_numpy(dtype=float) / 1e6
    return with_totals(table)


def traffic_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Bits moved at each level of the memory hierarchy, read and written, in Mbit."""
    table = _base(frame)
    for level in ("dram", "sram", "rf"):
        for action in ("read", "write"):
            table[f"{level.upper()} {action} Mbit"] = frame[f"{level}_{action}_bits"].to_numpy(dtype=float) / 1e6
    return with_totals(table)


def _pct(numerator: str, denominator: str):
    return lambda row: 100.0 * row[numerator] / row[denominator] if row[denominator] else float("nan")


def savings_table(frame: pd.DataFrame) -> pd.DataFrame:
    """What pruning removes: weights kept, input activation density, MACs dense / executed /
    skipped / gated, FLOP % (executed / dense MACs, Han's FLOP% column) and the MAC saving ×."""
    table = _base(frame)
    table["weights"] = frame["weights"].to_numpy(dtype=float)
    table["kept weights"] = frame["nonzero_weights"].to_numpy(dtype=float)
    table["weights %"] = 100 * frame["weight_density"].to_numpy(dtype=float)
    table["input act %"] = 100 * frame["input_density"].to_numpy(dtype=float)
    for column in ("dense_macs", "executed_macs", "skipped_macs", "gated_macs"):
        table[f"{column.split('_')[0]} MACs M"] = frame[column].to_numpy(dtype=float) / 1e6
    table["FLOP %"] = frame["flop_pct"].to_numpy(dtype=float)
    table["MAC saving ×"] = table["dense MACs M"] / table["executed MACs M"].replace(0.0, np.nan)
    totals = with_totals(table, {
        "weights %": _pct("kept weights", "weights"),
        "input act %": lambda row: float("nan"),  # a density of different layers' inputs: not summable
        "FLOP %": _pct("executed MACs M", "dense MACs M"),
        "MAC saving ×": lambda row: row["dense MACs M"] / row["executed MACs M"] if row["executed MACs M"] else np.nan,
    })
    return totals.drop(columns=["kept weights"])


def cycles_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Cycles per layer by cause (:func:`cycle_breakdown`), in thousands, with the stall share
    and the latency in µs."""
    breakdown = cycle_breakdown(frame).reset_index(drop=True)
    table = pd.concat([_base(frame), (breakdown / 1e3).add_suffix(" kcycles")], axis=1)
    table["cycles k"] = frame["cycles"].to_numpy(dtype=float) / 1e3
    table["stall %"] = 100 * (1 - table["busy kcycles"] / table["cycles k"].replace(0.0, np.nan))
    table["latency µs"] = frame["latency_us"].to_numpy(dtype=float)
    return with_totals(table, {"stall %": lambda row: 100 * (1 - row["busy kcycles"] / row["cycles k"])
                               if row["cycles k"] else np.nan})


def summary_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per variant: weights %, FLOP %, energy by component and in total (µJ), the energy
    saving against the frame's ``dense`` variant (when it has one), cycles and latency; the chip
    area (mm²) and the energy-delay product (pJ·s) when the results have ``area_mm2``."""
    rows = []
    energy = pd.concat([frame[["variant"]], energy_components(frame)], axis=1)
    for variant, part in frame.groupby("variant", sort=False):
        components = energy[energy["variant"] == variant]
        rows.append({
            "variant": variant,
            "weights %": 100 * part["nonzero_weights"].sum() / part["weights"].sum(),
            "FLOP %": 100 * part["executed_macs"].sum() / part["dense_macs"].sum(),
            **{f"{c} µJ": components[c].sum() / 1e6 for c in COMPONENTS},
            "energy µJ": part["energy_pj"].sum() / 1e6,
            "kcycles": part["cycles"].sum() / 1e3,
            "latency µs": part["latency_us"].sum(),
            # The chip's area (the same on every row) and the network's energy × its latency.
            **({"area mm²": float(part["area_mm2"].iloc[0]),
                "EDP pJ·s": edp_pj_s(part["energy_pj"].sum(), part["latency_us"].sum())}
               if "area_mm2" in part.columns and part["area_mm2"].notna().all() else {}),
        })
    table = pd.DataFrame(rows)
    dense = table.loc[table["variant"] == "dense", "energy µJ"]
    table.insert(table.columns.get_loc("energy µJ") + 1, "saving ×",
                 dense.iloc[0] / table["energy µJ"] if len(dense) else np.nan)
    return table
