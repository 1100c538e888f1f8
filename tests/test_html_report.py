"""prunesim report: a comparison report of estimate, simulate and sweep results, checked against
the results' own CSV files, for self-containment, and in a real browser (headless Chromium)."""

import json
import re
import shutil
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

from hwmodels.hardware import load_hardware
from sim.browser import find_chromium, image_stats, screenshot
from sim.cli import main
from sim.report import format_cell
from sim.report_tables import cycle_breakdown, energy_components

SECTIONS = ("Inputs", "Energy summary", "Energy per layer by component", "Memory traffic per level",
            "FLOP and MAC savings", "Cycles and stall causes", "Pareto fronts", "Accelerator descriptions")


class _Tables(HTMLParser):
    """Every <table> of a page as a list of rows of cell texts (header row first)."""

    def __init__(self):
        super().__init__()
        self.tables, self._row, self._cell = [], None, None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell = ""

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self._row.append(self._cell)
            self._cell = None
        elif tag == "tr":
            self.tables[-1].append(self._row)

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data


def tables_of(page: str) -> list[pd.DataFrame]:
    parser = _Tables()
    parser.feed(page)
    return [pd.DataFrame(rows[1:], columns=rows[0]) for rows in parser.tables if rows]


def _number(text: str) -> float:
    return float(text.replace(",", ""))


def _sweep_folder(folder):
    """A sweep's output files as sim.sweep writes them, for four design points of one workload:
    a (energy 1, latency 4, area 2), b (2, 2, 2), c (3, 3, 3: dominated by b), d (4, 1, 1)."""
    folder.mkdir()
    points = pd.DataFrame({
        "point_id": ["a", "b", "c", "d", "e"], "mac_array.cols": [16, 32, 32, 64, 128],
        "workload": "tiny", "layer": "total", "feasible": [True, True, True, True, False],
        "reason": ["", "", "", "", "buffer too small"],
        "energy_pj": [1e6, 2e6, 3e6, 4e6, np.nan], "latency_us": [4.0, 2.0, 3.0, 1.0, np.nan],
        "area_mm2": [2.0, 2.0, 3.0, 1.0, np.nan],
    })
    points.to_csv(folder / "totals.csv", index=False)
    points.assign(layer="fc1").to_csv(folder / "results.csv", index=False)
    (folder / "sweep.json").write_text(json.dumps({"source": "tiny.yaml", "parameters": {"mac_array.cols": [16]},
                                                   "points": []}))
    return folder


def _prune_run(run, estimate):
    """A prune run folder (RUN/report/ as sim.jobs writes it) holding ``estimate``'s numbers."""
    report = run / "report"
    report.mkdir(parents=True)
    shutil.copy(estimate / "results.csv", report / "results.csv")
    (report / "results.json").write_text(json.dumps({"meta": {
        "kind": "prune", "model": "lenet-300-100", "data": "mnist", "hardware": "han45nm",
        "prunesim": "0.1.0", "command": "prunesim prune --model lenet-300-100"}}))
    (report / "summary.json").write_text(json.dumps({
        "dense_test_error_pct": 1.62, "pruned_test_error_pct": 1.71, "compression": 12.1, "energy_saving": 5.0}))
    return run


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """Estimate (han45nm) and simulate (EIE) results of LeNet-300-100 under Han's profile, a
    sweep folder, and the report of all three."""
    root = tmp_path_factory.mktemp("report")
    estimate, simulate = root / "estimate", root / "simulate"
    assert main(["estimate", "--model", "lenet-300-100", "--profile", "han2015", "--out", str(estimate)]) == 0
    assert main(["simulate", "--model", "lenet-300-100", "--profile", "han2015", "--hw", "eie-64pe",
                 "--no-numerics", "--quiet", "--out", str(simulate)]) == 0
    sweep = _sweep_folder(root / "sweep")
    prune = _prune_run(root / "run", estimate)
    out = root / "out"
    assert main(["report", str(estimate), str(simulate / "results.csv"), str(sweep), str(prune), "--out", str(out),
                 "--title", "Test report"]) == 0
    return {"estimate": estimate, "simulate": simulate, "out": out, "html": (out / "index.html").read_text(),
            "markdown": (out / "report.md").read_text()}


def test_every_section_is_there_in_html_and_markdown(report):
    for title in SECTIONS:
        assert f">{title}</h2>" in report["html"], title
        assert f"\n## {title}\n" in report["markdown"], title
    assert "<h1>Test report</h1>" in report["html"]
    # The report's own provenance and each input's command.
    assert "prunesim report" in report["html"]
    assert "prunesim estimate --model lenet-300-100 --profile han2015" in report["html"]


def test_summary_totals_are_the_csv_totals(report):
    """The energy summary's total per (input, variant) is the sum of energy_pj in results.csv,
    printed as every report prints numbers; and its components add up to it."""
    summary = next(t for t in tables_of(report["html"]) if "saving ×" in t.columns)
    for number, name in ((1, "estimate"), (2, "simulate")):
        csv = pd.read_csv(report[name] / "results.csv")
        for variant, rows in csv.groupby("variant"):
            row = summary[(summary["input"] == f"{number}. lenet-300-100") & (summary["variant"] == variant)]
            assert len(row) == 1
            total_uj = rows["energy_pj"].sum() / 1e6
            assert row["energy µJ"].iat[0] == format_cell(total_uj)
            assert _number(row["energy µJ"].iat[0]) == pytest.approx(total_uj, rel=5e-3)
            parts = sum(_number(row[f"{c} µJ"].iat[0]) for c in ("DRAM", "SRAM", "RF", "MAC", "index"))
            assert parts == pytest.approx(total_uj, rel=2e-2)  # five numbers of 3 significant digits
    # Han's profile keeps 8.2% of LeNet-300-100's weights (22K of 266K); the estimate skips
    # them, so the pruned network's energy is lower; saving = dense / pruned energy.
    estimate = summary[summary["input"] == "1. lenet-300-100"].set_index("variant")
    assert _number(estimate.at["pruned", "weights %"]) == pytest.approx(8.18, abs=0.01)
    assert _number(estimate.at["pruned", "saving ×"]) == pytest.approx(
        _number(estimate.at["dense", "energy µJ"]) / _number(estimate.at["pruned", "energy µJ"]), rel=1e-2)


def test_per_layer_tables_match_the_csv(report):
    """The simulate input's per-layer tables: cycles (thousands) and DRAM/SRAM traffic (Mbit)
    per layer equal its results.csv."""
    csv = pd.read_csv(report["simulate"] / "results.csv")
    tables = tables_of(report["html"])
    cycles = next(t for t in tables if "stall %" in t.columns)
    pruned = cycles[cycles["variant"] == "pruned"].set_index("layer")
    for row in csv[csv["variant"] == "pruned"].itertuples():
        assert pruned.at[row.layer, "cycles k"] == format_cell(row.cycles / 1e3)
        assert pruned.at[row.layer, "activation FIFO full kcycles"] == format_cell(row.fifo_stall_cycles / 1e3)
    assert pruned.at["total", "cycles k"] == format_cell(csv.loc[csv["variant"] == "pruned", "cycles"].sum() / 1e3)
    traffic = [t for t in tables if "SRAM read Mbit" in t.columns][1]  # the second input's: simulate
    total = traffic[(traffic["variant"] == "dense") & (traffic["layer"] == "total")]
    dense = csv[csv["variant"] == "dense"]
    assert total["SRAM read Mbit"].iat[0] == format_cell(dense["sram_read_bits"].sum() / 1e6)


def test_energy_components_and_cycle_causes_add_up(report):
    simulated = pd.read_csv(report["simulate"] / "results.csv")
    parts = energy_components(simulated)
    np.testing.assert_allclose(parts.sum(axis=1), simulated["energy_pj"], rtol=1e-12)
    np.testing.assert_allclose(parts["index"], simulated["energy_index_pj"])  # EIE's index SRAM share
    assert (parts["index"] > 0).all() and (parts["SRAM"] > 0).all()
    np.testing.assert_allclose(cycle_breakdown(simulated).sum(axis=1), simulated["cycles"])
    # By hand: 100 pJ DRAM of which 10 move indices, 50 pJ SRAM of which 20 do.
    frame = pd.DataFrame({"energy_dram_pj": [100.0], "energy_sram_pj": [50.0], "energy_rf_pj": [5.0],
                          "energy_mac_pj": [1.0], "energy_index_pj": [30.0], "energy_index_dram_pj": [10.0]})
    assert energy_components(frame).iloc[0].to_dict() == {"DRAM": 90.0, "SRAM": 30.0, "RF": 5.0, "MAC": 1.0,
                                                          "index": 30.0}
    # A systolic layer: 100 busy cycles, stalls 7 on weights and 3 on the output drain.
    systolic = pd.DataFrame({"cycles": [110], "stall_cycles": [10], "stall_weights_cycles": [7],
                             "stall_inputs_cycles": [0], "stall_psums_cycles": [0], "stall_output_drain_cycles": [3]})
    assert cycle_breakdown(systolic).iloc[0].to_dict() == {"busy": 100.0, "wait weights": 7.0, "wait inputs": 0.0,
                                                           "wait psums": 0.0, "output drain": 3.0}


def test_pareto_section_holds_the_front(report):
    """Of a (1, 4, 2), b (2, 2, 2), c (3, 3, 3) and d (4, 1, 1) in (energy, latency, area), c is
    dominated by b; e is infeasible. Best energy: a; best latency and area: d."""
    tables = tables_of(report["html"])
    front = next(t for t in tables if "point_id" in t.columns and "best" not in t.columns)
    assert sorted(front["point_id"]) == ["a", "b", "d"]
    best = next(t for t in tables if "best" in t.columns).set_index("best")["point_id"].to_dict()
    assert best == {"energy_pj": "a", "latency_us": "d", "area_mm2": "d"}
    assert "4 feasible design points of 5" in report["html"]


def test_hardware_descriptions_are_the_ones_used(report):
    for name in ("han45nm", "eie-64pe"):
        description = load_hardware(name).to_yaml()
        assert description.splitlines()[0] in report["html"]  # name: ...
        assert description in report["markdown"]


def test_markdown_twin_references_existing_pngs(report):
    out = report["out"]
    referenced = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", report["markdown"])
    assert len(referenced) == len(set(referenced)) >= 7  # summary + 3 per input x 2 + cycles + pareto
    for name in referenced:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    assert sorted(p.name for p in out.glob("*.png")) == sorted(referenced)  # no stray plot


def test_html_is_self_contained(report):
    page = report["html"]
    sources = re.findall(r'\bsrc="([^"]*)"', page)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    assert all(h.startswith("#") for h in re.findall(r'\bhref="([^"]*)"', page))
    assert not re.search(r"<script|<link|<iframe|url\(|@import", page, re.IGNORECASE)
    assert not re.search(r'(src|href)\s*=\s*["\']?\s*(https?:)?//', page, re.IGNORECASE)
    assert len(sources) == len(re.findall(r"!\[", report["markdown"]))  # every plot embedded


def _missing(folder, good_csv):
    return folder / "missing"


def _no_results(folder, good_csv):
    return folder


def _foreign_csv(folder, good_csv):
    (folder / "results.csv").write_text("a,b\n1,2\n")
    return folder / "results.csv"


def _corrupt_meta(folder, good_csv):
    shutil.copy(good_csv, folder / "results.csv")
    (folder / "results.json").write_text("{not json")
    return folder


@pytest.mark.parametrize("make, words", [
    (_missing, ["missing", "does not exist"]),
    (_no_results, ["no results.csv"]),
    (_foreign_csv, ["results.csv", "missing column(s) variant, model"]),
    (_corrupt_meta, ["results.json", "not readable JSON"]),
])
def test_bad_input_is_one_line_exit_2(tmp_path, capsys, report, make, words):
    folder = tmp_path / "in"
    folder.mkdir()
    target = make(folder, report["estimate"] / "results.csv")
    capsys.readouterr()
    assert main(["report", str(report["estimate"]), str(target), "--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and error[0].startswith("prunesim: error:")
    assert all(word in error[0] for word in words), error[0]
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(find_chromium() is None, reason="no Chromium (Debian: apt-get install chromium); "
                                                    "the browser check of the report is skipped")
def test_report_renders_in_headless_chromium(report, tmp_path):
    render = screenshot(report["out"] / "index.html", tmp_path / "report.png")
    assert render.console == [], render.console
    stats = image_stats(render.png)
    assert (stats["width"], stats["height"]) == (1280, 2000)
    # A page of text alone inks well under 1% of the window (the control below); the plots of
    # the first screen (the energy summary) ink far more, in many colours.
    assert stats["ink"] > 0.05 and stats["colours"] > 100, stats
    # Control: the check sees a broken page's console error and its near-blank window.
    broken = tmp_path / "broken.html"
    broken.write_text("<html><body><p>x</p><script>undefinedFunction()</script></body></html>")
    bad = screenshot(broken, tmp_path / "broken.png", 800, 600)
    assert any("Uncaught ReferenceError" in line for line in bad.console)
    assert image_stats(bad.png)["ink"] < 0.01


def test_index_energy_of_the_estimate_by_hand():
    """The estimator's index overhead, the fifth component of the report's energy bars. On
    han45nm with its SRAM cut to 64 KB (eight 8 KB banks: Han's 5 pJ per 32-bit access, as the
    preset's 1024 banks), pruned LeNet-300-100's 100 KB of relative-index weights no longer fit,
    so every index bit is read from DRAM (20 pJ/bit, LPDDR2), written into the SRAM and read
    back: 20 + 2 × 5/32 pJ per index bit, 20 of them from DRAM."""
    import dataclasses

    from pruning.formats import relative_index_entries
    from pruning.profiles import load_profile
    from sim.api import estimate_workloads, profile_workloads

    base = load_hardware("han45nm")
    hw = base.with_changes(buffers=(dataclasses.replace(base.buffers[0], capacity_bytes=65536, banks=8),))
    workloads = profile_workloads("lenet-300-100", load_profile("han2015", "lenet-300-100"))
    results = estimate_workloads(workloads, hw).set_index(["variant", "layer"])
    assert not results["weights_resident"].any()
    for layer in workloads["pruned"].compute_layers:
        index_bits = 5 * sum(relative_index_entries(layer.mask, 5))  # 5-bit FC indices (Han §4)
        row = results.loc[("pruned", layer.name)]
        assert row["energy_index_dram_pj"] == pytest.approx(20.0 * index_bits)
        assert row["energy_index_pj"] == pytest.approx((20.0 + 2 * 5.0 / 32) * index_bits)
    # han45nm skips zero weights, so it stores the dense network in the relative-index format
    # too: one 5-bit index per weight (no gap, hence no filler).
    dense = results.loc[("dense", "fc1")]
    assert dense["energy_index_pj"] == pytest.approx((20.0 + 2 * 5.0 / 32) * 5 * 784 * 300)
    parts = energy_components(results.reset_index())
    np.testing.assert_allclose(parts.sum(axis=1), results["energy_pj"].to_numpy(), rtol=1e-12)
    assert (parts >= 0).all().all()


def test_prune_run_input_shows_its_accuracy(report):
    tables = tables_of(report["html"])
    inputs = next(t for t in tables if "kind" in t.columns).set_index("#")
    assert inputs.at["4", "input"] == "lenet-300-100 · pruned on mnist · han45nm (prune)"
    assert inputs.at["4", "folder"].endswith("run/report")  # the run folder's report
    accuracy = next(t for t in tables if "pruned test error %" in t.columns)
    assert accuracy.iloc[0].to_dict() == {"input": "4. lenet-300-100", "dense test error %": "1.62",
                                          "pruned test error %": "1.71", "weights compression ×": "12.1",
                                          "energy saving ×": "5"}
