"""Reports of estimator results: a dense-vs-pruned comparison table, CSV, JSON, Markdown and an
energy plot, written atomically.

Every file is rendered in memory first and then written as a temporary file beside its target and
renamed over it, so an error never leaves a half-written file and never destroys an older one.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # reports are files; never open a window
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from sim.estimator import totals  # noqa: E402

__all__ = [
    "OutputError", "check_writable", "comparison_table", "render_files", "plot_energy",
    "to_markdown", "write_files",
]

ENERGY_LEVELS = (("energy_dram_pj", "DRAM"), ("energy_sram_pj", "SRAM"), ("energy_rf_pj", "RF"),
                 ("energy_mac_pj", "MAC"))


_UMASK = os.umask(0)
os.umask(_UMASK)


class OutputError(ValueError):
    """An output folder that cannot be written; the message names it."""


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


def to_markdown(table: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table (no extra dependency)."""

    def cell(value) -> str:
        if isinstance(value, float):
            if value != value:  # NaN
                return ""
            return f"{value:,.3g}" if abs(value) < 1000 else f"{value:,.0f}"
        return f"{value:,}" if isinstance(value, int) else str(value)

    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(index=False)]
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
        "![energy per layer](energy.png)",
        "",
    ])
    return {
        "results.csv": results.to_csv(index=False),
        "results.json": json.dumps(payload, indent=2, default=str),
        "report.md": markdown,
        "energy.png": plot_energy(results, title),
    }
