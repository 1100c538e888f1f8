"""Reports of estimator results: a dense-vs-pruned comparison table, CSV, JSON, Markdown and an
energy plot, written atomically.

Every file is rendered in memory first and then written as a temporary file beside its target and
renamed over it, so an error never leaves a half-written file and never destroys an older one.
"""

from __future__ import annotations

import io
import json
import os
import shlex
import sys
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # reports are files; never open a window
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from sim.estimator import totals  # noqa: E402

__all__ = [
    "AREA_EDP_NOTE", "OutputError", "area_edp_table", "check_writable", "command_line", "comparison_table",
    "format_cell", "prunesim_version",
    "render_files", "plot_energy", "to_markdown", "write_files",
]

ENERGY_LEVELS = (("energy_dram_pj", "DRAM"), ("energy_sram_pj", "SRAM"), ("energy_rf_pj", "RF"),
                 ("energy_mac_pj", "MAC"))


_UMASK = os.umask(0)
os.umask(_UMASK)


class OutputError(ValueError):
    """An output folder that cannot be written; the message names it."""


def prunesim_version() -> str:
    """The installed prunesim version (``unknown`` when run from a tree that is not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("prunesim")
    except PackageNotFoundError:
        return "unknown"


def command_line(argv: list[str] | None = None) -> str:
    """A command line as a shell would take it back, for a report's provenance: ``prunesim
    ARGV...`` for the CLI's arguments ``argv``; without them, this process's command line
    (``prunesim ...`` when the process is the CLI, ``python -m sim.cli`` included)."""
    if argv is not None:
        return shlex.join(["prunesim", *argv])
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    program = "prunesim" if spec is not None and spec.name == "sim.cli" else Path(sys.argv[0]).name
    return shlex.join([program, *sys.argv[1:]])


def check_writable(out_dir: str | Path) -> Path:
    """Fail early, before any work, when ``out_dir`` cannot be created or written."""
    out = Path(out_dir)
    probe = out
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise OutputError(f"cannot write to --out '{out}': '{probe}' is a file, not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write to --out '{out}': '{probe}' is not writable")
    return out


def write_files(out_dir: str | Path, files: dict[str, str | bytes]) -> list[Path]:
    """Write every file of ``files`` (name → content) into ``out_dir`` atomically."""
    out = check_writable(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputError(f"cannot create --out '{out}': {error.strerror}") from None
    written = []
    for name, content in files.items():
        target = out / name
        data = content.encode() if isinstance(content, str) else content
        handle, temporary = tempfile.mkstemp(dir=out, prefix=f".{name}.", suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as stream:
                stream.write(data)
            os.chmod(temporary, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the usual mode
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        written.append(target)
    return written


def comparison_table(results: pd.DataFrame) -> pd.DataFrame:
    """One row per layer and a total row: dense vs pruned side by side (pruned columns only when
    the results have a pruned variant). Energies in µJ, traffic in kbit."""
    with_totals = pd.concat([results, totals(results)], ignore_index=True)
    dense = with_totals[with_totals["variant"] == "dense"].set_index("layer")
    table = pd.DataFrame({
        "weights": dense["weights"].astype(int),
        "dense MACs": dense["dense_macs"].astype(int),
        "dense DRAM kbit": (dense["dram_read_bits"] + dense["dram_write_bits"]) / 1e3,
        "dense energy µJ": dense["energy_pj"] / 1e6,
    })
    if (with_totals["variant"] == "pruned").any():
        pruned = with_totals[with_totals["variant"] == "pruned"].set_index("layer")
        table["weights %"] = 100 * pruned["weight_density"]
        table["input act %"] = 100 * pruned["input_density"]
        table["FLOP %"] = pruned["flop_pct"]
        table["pruned MACs"] = pruned["executed_macs"].round().astype(int)
        table["pruned DRAM kbit"] = (pruned["dram_read_bits"] + pruned["dram_write_bits"]) / 1e3
        for column, label in ENERGY_LEVELS:
            table[f"{label} µJ"] = pruned[column] / 1e6
        table["pruned energy µJ"] = pruned["energy_pj"] / 1e6
        table["saving ×"] = dense["energy_pj"] / pruned["energy_pj"]
    return table.reset_index()


AREA_EDP_NOTE = ("Chip area in mm² at the description's node (hwmodels.area: MAC units, per-PE registers, "
                 "SRAM buffers; DRAM is off chip and has no die area here) and the energy-delay product "
                 "EDP = the network's energy × its latency, in pJ·s.")


def area_edp_table(summary: pd.DataFrame) -> pd.DataFrame:
    """One row per variant of network ``summary`` (totals rows): area in mm² per component (MAC,
    RF, SRAM, and each buffer when the rows have ``area_BUFFER_mm2`` columns), the chip's total,
    energy (µJ), latency (µs) and EDP (pJ·s)."""
    levels = {"area_mac_mm2": "MAC mm²", "area_rf_mm2": "RF mm²", "area_sram_mm2": "SRAM mm²"}
    buffers = [c for c in summary.columns if c.startswith("area_") and c.endswith("_mm2")
               and c not in levels and c != "area_mm2"]
    table = pd.DataFrame({"variant": summary["variant"]} if "variant" in summary.columns else {})
    for column, label in [*levels.items(), *((c, f"{c[len('area_'):-len('_mm2')]} mm²") for c in buffers)]:
        table[label] = summary[column]
    table["chip mm²"] = summary["area_mm2"]
    table["energy µJ"] = summary["energy_pj"] / 1e6
    table["latency µs"] = summary["latency_us"]
    table["EDP pJ·s"] = summary["edp_pj_s"]
    return table.reset_index(drop=True)


def format_cell(value) -> str:
    """How every report prints a number: floats to 3 significant digits below 1000 and as whole
    numbers with thousands separators above; NaN as an empty cell; ints with separators."""
    if isinstance(value, np.integer):  # a pandas row's integers are numpy's
        value = int(value)
    if isinstance(value, float):
        if value != value:  # NaN
            return ""
        return f"{value:,.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def to_markdown(table: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table (no extra dependency)."""
    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(format_cell(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def plot_energy(results: pd.DataFrame, title: str) -> bytes:
    """PNG: per-layer energy stacked by component, dense and pruned bars side by side, with the
    totals written beside the bars."""
    variants = list(dict.fromkeys(results["variant"]))
    layers = list(dict.fromkeys(results["layer"]))
    figure, axis = plt.subplots(figsize=(max(6.0, 0.7 * len(layers) + 3), 4.5))
    width = 0.8 / len(variants)
    colours = {"DRAM": "#c0392b", "SRAM": "#e67e22", "RF": "#2980b9", "MAC": "#27ae60"}
    for v_index, variant in enumerate(variants):
        part = results[results["variant"] == variant].set_index("layer").reindex(layers)
        positions = [i + (v_index - (len(variants) - 1) / 2) * width for i in range(len(layers))]
        bottom = [0.0] * len(layers)
        for column, label in ENERGY_LEVELS:
            values = (part[column] / 1e6).tolist()
            axis.bar(positions, values, width, bottom=bottom, color=colours[label],
                     alpha=1.0 if variant != "dense" else 0.45,
                     label=label if v_index == len(variants) - 1 else None,
                     edgecolor="black", linewidth=0.3)
            bottom = [b + v for b, v in zip(bottom, values)]
    axis.set_xticks(range(len(layers)), layers, rotation=45, ha="right")
    axis.set_ylabel("energy per inference (µJ)")
    axis.set_yscale("log")
    summary = totals(results)
    text = "\n".join(f"{row.variant}: {row.energy_pj / 1e6:,.1f} µJ" for row in summary.itertuples())
    axis.set_title(f"{title}\n(faint: dense, solid: pruned)" if len(variants) > 1 else title)
    axis.text(1.01, 0.5, "total\n" + text, transform=axis.transAxes, va="center", fontsize=9)
    axis.legend(loc="upper right", fontsize=8)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    plt.close(figure)
    return buffer.getvalue()


def render_files(results: pd.DataFrame, meta: dict, title: str) -> dict[str, str | bytes]:
    """All files of one estimate: results.csv, results.json, report.md, energy.png."""
    table = comparison_table(results)
    summary = totals(results)
    payload = {
        "meta": meta,
        "totals": summary.to_dict(orient="records"),
        "layers": results.to_dict(orient="records"),
    }
    markdown = "\n".join([
        f"# {title}",
        "",
        "Analytical estimate, one inference (batch 1). " + " · ".join(f"{k}: `{v}`" for k, v in meta.items()),
        "",
        to_markdown(table),
        "## Area and energy-delay product",
        "",
        AREA_EDP_NOTE,
        "",
        to_markdown(area_edp_table(summary)),
        "![energy per layer](energy.png)",
        "",
    ])
    return {
        "results.csv": results.to_csv(index=False),
        "results.json": json.dumps(payload, indent=2, default=str),
        "report.md": markdown,
        "energy.png": plot_energy(results, title),
    }
