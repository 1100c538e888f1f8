"""The compare job: CLI on a small real-MNIST subset, the API on synthetic data, bad input."""

import json
import subprocess
import sys
from types import SimpleNamespace

import pandas as pd
import pytest

from sim.cli import main
from sim.compare import CompareSettings, run_compare
from sim.jobs import JobError
from tests.synthetic import blobs, needs_mnist


def _compare(out, *extra):
    command = [sys.executable, "-m", "sim.cli", "compare", "--model", "lenet-300-100", "--limit", "600",
               "--epochs", "1", "--retrain-epochs", "1", "--rounds", "1", "--activation-samples", "100",
               "--quiet", "--out", str(out), *extra]
    return subprocess.run(command, capture_output=True, text=True)


def _assert_densities(table: pd.DataFrame, targets: list[float]) -> None:
    """Every method reaches its target density exactly, but relief: it keeps whole units per neuron
    (and with backward pruning frees those of unread neurons), so it reaches the closest density
    not above the target (pruning/methods/relief.py), here within a point of it."""
    for method, density, target in zip(table["method"], table["density"], targets):
        if method == "relief":
            assert target - 0.01 <= density <= target + 1e-9, (method, density, target)
        else:
            assert density == pytest.approx(target, abs=1e-4), (method, density, target)


@needs_mnist
def test_compare_cli_writes_table_and_plots(tmp_path):
    result = _compare(tmp_path / "c", "--methods", "han,flipout,relief", "--sparsity", "0.9,0.5")
    assert result.returncode == 0, result.stderr
    table = pd.read_csv(tmp_path / "c" / "compare.csv")
    assert table["method"].tolist() == ["dense", "han", "han", "flipout", "flipout", "relief", "relief"]
    assert table["sparsity"].tolist() == [0.0, 0.5, 0.9, 0.5, 0.9, 0.5, 0.9]
    _assert_densities(table, [1.0] + [0.5, 0.1] * 3)
    for _, part in table[table["method"] != "dense"].groupby("method"):
        energy = part["energy_uj"].tolist()
        assert energy[1] < energy[0] < table["energy_uj"].iloc[0]      # sparser is cheaper
    for name in ("accuracy_vs_sparsity.png", "accuracy_vs_energy.png", "compare.md"):
        assert (tmp_path / "c" / name).stat().st_size > 1000
    saved = json.loads((tmp_path / "c" / "compare.json").read_text())
    assert saved["settings"]["methods"] == ["han", "flipout", "relief"] and len(saved["rows"]) == 7
    assert not list((tmp_path / "c").glob(".*tmp"))                   # atomic writes left nothing behind


@pytest.mark.parametrize("option, value, named", [("--methods", "han,obd", "--methods"),
                                                  ("--sparsity", "0.9,1.5", "--sparsity"),
                                                  ("--sparsity", "0.9,abc", "--sparsity"),
                                                  ("--model", "alexnet", "--model"),
                                                  ("--hw", "nonesuch", "nonesuch")])
def test_compare_rejects_bad_input_in_one_line(tmp_path, capsys, option, value, named):
    out = tmp_path / "bad"
    status = main(["compare", "--limit", "600", "--out", str(out), "--quiet", option, value])
    error = capsys.readouterr().err
    assert status == 2
    assert named in error and len(error.strip().splitlines()) == 1 and "Traceback" not in error
    assert not out.exists()


def test_compare_api_is_repeatable_on_synthetic_data():
    data = SimpleNamespace(train=blobs(200, 1), val=blobs(50, 2), test=blobs(100, 3))
    settings = CompareSettings(methods=("magnitude", "relief"), sparsities=(0.8,), epochs=1, retrain_epochs=1,
                               rounds=1, activation_samples=50)
    first = run_compare(settings, data=data, progress=False)
    second = run_compare(settings, data=data, progress=False)
    pd.testing.assert_frame_equal(first.drop(columns="wall_s"), second.drop(columns="wall_s"))
    _assert_densities(first, [1.0, 0.2, 0.2])
    assert first["energy_saving"].iloc[0] == 1.0 and (first["energy_saving"].iloc[1:] > 1.5).all()
    with pytest.raises(JobError, match="--rounds"):
        CompareSettings(rounds=0)
