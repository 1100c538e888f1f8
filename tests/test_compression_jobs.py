"""Quantisation and weight sharing stacked on the pruned model by the prune and compare jobs:
the results carry the real widths; bad settings fail in one line before any training."""

import json
from types import SimpleNamespace

import pandas as pd
import pytest

import sim.jobs
from pruning.compression import Compression, CompressionError
from pruning.datasets import load_dataset
from sim.cli import main
from sim.compare import CompareSettings, run_compare
from sim.jobs import PruneSettings, run_prune
from tests.synthetic import blobs, needs_mnist


@needs_mnist
def test_prune_job_reports_the_compressed_model(tmp_path, monkeypatch):
    small = load_dataset("mnist", limit=1500, val_size=300)
    monkeypatch.setattr(sim.jobs, "load_dataset", lambda *args, **kwargs: small)
    settings = PruneSettings(epochs=1, retrain_epochs=1, iterations=1, activation_samples=200, quantise=8,
                             share_bits=4)
    summary = run_prune(settings, tmp_path / "run", progress=False)
    report = tmp_path / "run" / "report"
    assert summary["compressed_with"] == "4-bit shared, W8A8"
    assert json.loads((report / "summary.json").read_text())["huffman_kB"] == summary["huffman_kB"]
    table = pd.read_csv(report / "compression.csv")
    assert table["model"].tolist() == ["pruned, 32-bit", "pruned, 4-bit shared, W8A8"]
    assert table["bits_w_a"].tolist() == ["W32A32", "W8A8"] and table["value_bits"].astype(str).tolist() == ["32", "4"]
    # 4-bit indices + 8-bit codebooks beat 32-bit values; Huffman beats fixed-length indices.
    assert table["compressed_kB"].iloc[1] < table["compressed_kB"].iloc[0] / 3
    assert summary["huffman_kB"] < summary["compressed_kB"] and summary["huffman_ratio"] > summary["compressed_ratio"]
    assert summary["compressed_energy_uj"] < summary["pruned_energy_uj"]
    results = pd.read_csv(report / "results.csv")
    widths = results.groupby("variant")[["weight_bits", "activation_bits"]].max()
    assert widths.loc["compressed"].tolist() == [8, 8] and widths.loc["pruned"].tolist() == [32, 32]
    assert "## Compressed: 4-bit shared, W8A8" in (report / "report.md").read_text()
    assert (tmp_path / "run" / "model-compressed.npz").stat().st_size > 0


def test_compare_adds_a_compressed_curve_priced_at_its_widths():
    data = SimpleNamespace(train=blobs(200, 1), val=blobs(50, 2), test=blobs(100, 3))
    settings = CompareSettings(methods=("magnitude",), sparsities=(0.8,), epochs=1, retrain_epochs=1, rounds=1,
                               activation_samples=50, quantise=8)
    table = run_compare(settings, data=data, progress=False).set_index("method")
    assert list(table.index) == ["dense", "magnitude", "magnitude (W8A8)"]
    assert table.at["magnitude (W8A8)", "density"] == pytest.approx(table.at["magnitude", "density"], abs=1e-3)
    # Same masks, int8 MACs (0.2 + 0.1 pJ vs 4.6 pJ) and 8-bit traffic: much cheaper.
    assert table.at["magnitude (W8A8)", "energy_uj"] < table.at["magnitude", "energy_uj"] / 3


@pytest.mark.parametrize("command", ["prune", "compare"])
@pytest.mark.parametrize("extra, named", [(["--quantise", "20"], "--quantise"),
                                          (["--quantise", "abc"], "--quantise"),
                                          (["--share-bits", "9"], "--share-bits"),
                                          (["--per-channel"], "--per-channel"),
                                          (["--quantise", "8", "--per-channel", "--share-bits", "4"], "codebook"),
                                          (["--activation-bits", "8"], "--activation-bits"),
                                          (["--quantise", "8", "--activation-bits", "16"], "16-bit int mult")])
def test_bad_compression_settings_fail_in_one_line_before_training(tmp_path, capsys, command, extra, named):
    where = ["--run-dir" if command == "prune" else "--out", str(tmp_path / "out")]
    try:
        status = main([command, "--quiet", *where, *extra])
    except SystemExit as exit_:                                # argparse's own errors (a non-integer)
        status = exit_.code
    error = capsys.readouterr().err
    assert status == 2 and named in error and len(error.strip().splitlines()) == 1 and "Traceback" not in error
    assert not (tmp_path / "out").exists()


def test_compression_settings_and_label():
    assert Compression(quantise_bits=8, activation_bits=16, share_bits=5).label == "5-bit shared, W8A16"
    assert not Compression().enabled
    with pytest.raises(CompressionError, match="share_bits: 1 is not a width in 2..8"):
        Compression(share_bits=1)
