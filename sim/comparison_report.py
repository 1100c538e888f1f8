"""``prunesim report``: a comparison report of several results folders.

Sections, in order (each plot has its numbers in a table beside it):

1. **Inputs**: each results folder, its kind, model, source, hardware, variants, and the command
   and prunesim version that wrote it; the command and version that built this report.
2. **Energy summary**: per input and variant, the whole network's energy by component, the
   saving against the input's dense variant, weights and FLOP kept, latency; prune runs' test
   errors.
3. **Energy per layer by component** (DRAM, SRAM, RF, MAC, index overhead), variants side by
   side: dense vs pruned vs quantised, as each input has them.
4. **Memory traffic per level**: DRAM per layer, and DRAM, SRAM and register file in total.
5. **FLOP and MAC savings**: weights kept, FLOP % left, MACs executed, skipped and gated.
6. **Cycles and stall causes**: cycle-level (``simulate``) inputs only.
7. **Pareto fronts**: sweep inputs only (:mod:`sim.pareto`).
8. **Accelerator descriptions**: the YAML of every hardware description used.

The document is rendered by :mod:`sim.html_report` (``index.html`` + ``report.md`` + PNGs).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import yaml

from sim.html_report import Code, Document, Figure, Section, Table, Text, render_files, slug
from sim.report_figures import (cycles_figure, energy_layers_figure, energy_totals_figure, png, savings_figure,
                                traffic_figure)
from sim.report_inputs import ResultsInput, load_results
from sim.report_tables import cycles_table, energy_table, savings_table, summary_rows, traffic_table

__all__ = ["build_report", "report_files"]


def _figure_name(section: str, number: int, item: ResultsInput) -> str:
    return f"{section}-{number}-{slug(str(item.meta.get('model') or item.path.name))}"[:80]


def _inputs_section(inputs: list[ResultsInput]) -> Section:
    table = pd.DataFrame([{
        "#": number, "input": item.label, "kind": item.kind, "folder": f"`{item.path}`",
        "variants": ", ".join(item.variants), "prunesim": item.meta.get("prunesim", "not recorded"),
        "command": f"`{item.meta['command']}`" if item.meta.get("command") else "not recorded",
    } for number, item in enumerate(inputs, 1)])
    return Section("Inputs", (
        Text("Each input is a results folder; its numbers come from its `results.csv`. Variants: `dense` is the "
             "unpruned network, `pruned` the network pruned by the profile or the prune run, `checkpoint` a "
             "pruned model loaded from a prune run, `compressed` a prune run's quantised or weight-shared model "
             "(priced at its own widths)."),
        Table(table),
    ))


def _summary_section(inputs: list[ResultsInput]) -> Section:
    rows = [summary_rows(item.layers).assign(input=f"{number}. {item.meta.get('model') or item.path.name}")
            for number, item in enumerate(inputs, 1) if item.kind != "sweep"]
    if not rows:
        return Section("Energy summary", (Text("No per-network results among the inputs."),))
    summary = pd.concat(rows, ignore_index=True)
    summary = summary[["input", *[c for c in summary.columns if c != "input"]]]
    blocks = [
        Figure("energy-summary", energy_totals_figure(summary),
               "Share of each component in the whole network's energy per inference; the total beside each bar."),
        Table(summary, "Whole network, one inference (batch 1). saving ×: the input's dense energy / this energy."),
    ]
    accuracy = {"dense_test_error_pct": "dense test error %", "pruned_test_error_pct": "pruned test error %",
                "compression": "weights compression ×", "energy_saving": "energy saving ×"}
    pruned = [{"input": f"{number}. {item.meta.get('model')}",
               **{label: item.summary[key] for key, label in accuracy.items() if key in item.summary}}
              for number, item in enumerate(inputs, 1) if item.kind == "prune" and item.summary]
    if pruned:
        blocks.append(Table(pd.DataFrame(pruned), "Prune runs (summary.json): test errors on the data set's test "
                                                  "split, weights kept, energy saving of the pruned network."))
    return Section("Energy summary", tuple(blocks))


def _per_input_section(title: str, intro: str, inputs: list[ResultsInput], figure, table, name: str,
                       caption: str) -> Section:
    subsections = []
    for number, item in enumerate(inputs, 1):
        if item.kind == "sweep":
            continue
        subsections.append(Section(f"{number}. {item.label}", (
            Figure(_figure_name(name, number, item), figure(item.layers, item.label), caption),
            Table(table(item.layers)),
        )))
    return Section(title, (Text(intro),), tuple(subsections))


def _cycles_section(inputs: list[ResultsInput]) -> Section:
    simulated = [(n, item) for n, item in enumerate(inputs, 1) if item.kind == "simulate"]
    if not simulated:
        return Section("Cycles and stall causes", (Text(
            "No cycle-level results among the inputs: run `prunesim simulate ... --out DIR` and give DIR to "
            "`prunesim report` to add this section. Analytical estimates take each layer's cycles as "
            "max(compute, memory) (see the summary's kcycles)."),))
    subsections = tuple(Section(f"{number}. {item.label}", (
        Figure(_figure_name("cycles", number, item), cycles_figure(item.layers, item.label),
               "Cycles per layer: busy (the array computing) and each stall cause; hatching tells the variants apart."),
        Table(cycles_table(item.layers)),
    )) for number, item in simulated)
    return Section("Cycles and stall causes", (Text(
        "Cycle-level simulation: layers run one after another; a stall is a cycle in which the array waited "
        "(for weights, inputs or partial sums from DRAM, for the output to drain, or, on EIE, for a full "
        "activation FIFO)."),), subsections)


def _design_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Design points for reading: id, the varied parameters (the sweep's dotted column names),
    the objectives in display units."""
    parameters = [c for c in rows.columns if "." in c]
    table = rows[["point_id", *parameters]].copy()
    table["energy µJ"] = rows["energy_pj"] / 1e6
    table["latency µs"] = rows["latency_us"]
    for column, label in (("area_mm2", "area mm²"), ("edp_pj_s", "EDP pJ·s")):
        if column in rows.columns:
            table[label] = rows[column]
    return table.reset_index(drop=True)


def _pareto_section(inputs: list[ResultsInput]) -> Section | None:
    sweeps = [(n, item) for n, item in enumerate(inputs, 1) if item.kind == "sweep"]
    if not sweeps:
        return None
    from matplotlib.figure import Figure as MplFigure

    from sim.pareto import best_points, pareto_mask, plot_pareto
    from sim.sweep import OBJECTIVES

    subsections = []
    for number, item in sweeps:
        feasible = item.points[item.points["feasible"].astype(bool)]
        objectives = [c for c in OBJECTIVES if c in feasible.columns and feasible[c].notna().any()]
        for workload, rows in feasible.groupby("workload", sort=False):
            rows = rows.reset_index(drop=True)
            others = [c for c in objectives if c != "energy_pj"]
            figure = MplFigure(figsize=(5.8 * len(others), 4.5))
            for ax, x in zip(figure.subplots(1, len(others), squeeze=False)[0], others):
                plot_pareto(rows, x, "energy_pj", ax=ax, label_col="point_id")
            front = rows[pareto_mask(rows, objectives)]
            best = best_points(rows, objectives)
            best_table = pd.concat([_design_table(pd.DataFrame([row])).assign(best=name) for name, row in best.items()],
                                   ignore_index=True)
            setup = {k: v for k, v in item.meta.items() if k != "kind"}
            subsections.append(Section(f"{number}. {item.label}: {workload}", (
                Code(yaml.safe_dump(setup, sort_keys=False), "The sweep (sweep.json): what was varied."),
                Text(f"{len(rows)} feasible design points of {len(item.points[item.points['workload'] == workload])}; "
                     f"objectives {', '.join(f'`{o}`' for o in objectives)}, all minimised."),
                Figure(f"pareto-{number}-{slug(str(workload))}"[:80], png(figure),
                       f"{workload}: energy per inference against each other objective; the front in red, dominated "
                       "points faint, the best point of each objective named."),
                Table(best_table[["best", *[c for c in best_table.columns if c != "best"]]],
                      "Best design point per objective."),
                Table(_design_table(front), f"The Pareto front over {', '.join(objectives)} "
                                            f"({len(front)} of {len(rows)} feasible points)."),
            )))
    return Section("Pareto fronts", (Text("Design points of each sweep, per workload; infeasible points "
                                          "(the sweep records why) are left out."),), tuple(subsections))


def _hardware_section(inputs: list[ResultsInput]) -> Section:
    described: dict[str, str] = {}
    for item in inputs:
        for name, text in item.hardware.items():
            described.setdefault(name, text)
    named = dict.fromkeys(str(h) for item in inputs if item.kind != "sweep" for h in item.layers["hardware"])
    blocks = [Code(text, f"{name}") for name, text in described.items()]
    missing = [name for name in named if name not in described]
    if missing:
        blocks.append(Text(f"Not recorded (no hardware.yaml in the results folder and no preset of that name): "
                           f"{', '.join(missing)}."))
    return Section("Accelerator descriptions", (
        Text("The validated hardware descriptions (every field, defaults included); "
             "`prunesim estimate --hw FILE` reads each back."), *blocks))


def build_report(inputs: list[ResultsInput], title: str, command: str, version: str) -> Document:
    """The report of ``inputs`` (module docstring); ``command`` and ``version`` are the report's
    own provenance, printed at its top."""
    sections = [
        _inputs_section(inputs),
        _summary_section(inputs),
        _per_input_section(
            "Energy per layer by component",
            "Energy per inference of each layer, stacked by where it is spent: DRAM, SRAM, register file (RF), "
            "MAC, and index overhead (moving the relative indices of the non-zero weights, taken out of the "
            "DRAM and SRAM energy it is part of).", inputs, energy_layers_figure, energy_table, "energy",
            "Energy per layer, stacked by component; hatching tells the variants apart."),
        _per_input_section(
            "Memory traffic per level",
            "Bits moved per inference at each level of the memory hierarchy (read and written).",
            inputs, traffic_figure, traffic_table, "traffic",
            "DRAM traffic per layer and the network's traffic per level (log scales where values span over 20×)."),
        _per_input_section(
            "FLOP and MAC savings",
            "FLOP % is the share of the dense network's multiply-accumulates the hardware executes (Han et al. 2015, "
            "Tables 2–5: weights kept × input activations non-zero); skipped MACs cost neither cycles nor energy, "
            "gated MACs cost cycles only.", inputs, savings_figure, savings_table, "savings",
            "FLOP % left per layer (bars) and weights kept % (diamonds)."),
        _cycles_section(inputs),
    ]
    pareto = _pareto_section(inputs)
    if pareto is not None:
        sections.append(pareto)
    sections.append(_hardware_section(inputs))
    intro = (Text(f"Produced by `{command}` (prunesim {version}) from {len(inputs)} results folder(s). "
                  "Energies per inference (batch 1) at the energy table of each hardware description."),)
    return Document(title, intro, tuple(sections))


def report_files(paths: list[str | Path], title: str, command: str, version: str) -> dict[str, str | bytes]:
    """Load the results folders at ``paths`` and render their report (``index.html``,
    ``report.md``, figures). A bad input raises :class:`sim.report_inputs.ReportInputError`."""
    return render_files(build_report([load_results(p) for p in paths], title, command, version))
