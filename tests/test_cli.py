"""The prunesim command as a user runs it: output files, help, and one-line errors with exit 2."""

import json
import subprocess
import sys

import pandas as pd
import pytest

from hwmodels.hardware import load_hardware
from sim.report import write_files


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "sim.cli", *args], capture_output=True, text=True, cwd=cwd)


def assert_clean_error(result, *words):
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in lines[0]


def test_estimate_writes_reports(tmp_path):
    out = tmp_path / "report"
    result = run("estimate", "--model", "lenet-300-100", "--profile", "han2015", "--hw", "han45nm",
                 "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "fc1" in result.stdout and "total" in result.stdout
    assert sorted(p.name for p in out.iterdir()) == ["energy.png", "hardware.yaml", "report.md", "results.csv",
                                                     "results.json"]
    assert load_hardware(out / "hardware.yaml") == load_hardware("han45nm")  # the description, readable back
    table = pd.read_csv(out / "results.csv")
    assert set(table["variant"]) == {"dense", "pruned"}
    payload = json.loads((out / "results.json").read_text())
    assert payload["meta"]["hardware"] == "han45nm" and payload["meta"]["seed"] == 0
    assert payload["meta"]["kind"] == "estimate" and payload["meta"]["command"].startswith("prunesim estimate --model lenet-300-100")
    assert (out / "energy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| layer |" in (out / "report.md").read_text()


@pytest.mark.parametrize("args, words", [
    (["--model", "resnet-9000"], ["unknown model 'resnet-9000'", "lenet-5"]),
    (["--model", "lenet-5", "--profile", "han2099"], ["han2099", "han2015"]),
    (["--model", "lenet-5", "--hw", "tpu9"], ["unknown hardware 'tpu9'", "han45nm"]),
    (["--model", "lenet-5", "--hw", "missing.yaml"], ["missing.yaml", "does not exist"]),
])
def test_bad_names_fail_in_one_line_without_output(tmp_path, args, words):
    out = tmp_path / "out"
    result = run("estimate", *args, "--out", str(out))
    assert_clean_error(result, *words)
    assert not out.exists()


def test_profile_file_with_bad_density_or_layers(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("networks:\n  lenet-300-100:\n    source: me\n    layers:\n"
                   "      - {layer: fc1, weight_density: 1.5, output_density: 0.5}\n"
                   "      - {layer: fc2, weight_density: 0.1, output_density: 0.5}\n"
                   "      - {layer: fc3, weight_density: 0.1, output_density: 1.0}\n")
    out = tmp_path / "out"
    assert_clean_error(run("estimate", "--model", "lenet-300-100", "--profile-file", str(bad), "--out", str(out)),
                       "weight_density", "1.5", "[0, 1]")
    bad.write_text(bad.read_text().replace("1.5", "0.1").replace("layer: fc3", "layer: fc9"))
    assert_clean_error(run("estimate", "--model", "lenet-300-100", "--profile-file", str(bad), "--out", str(out)),
                       "fc9")
    assert not out.exists()


def test_unwritable_out(tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a folder")
    result = run("estimate", "--model", "lenet-300-100", "--out", str(blocker / "sub"))
    assert_clean_error(result, "--out", "is a file")
    assert blocker.read_text() == "not a folder"


def test_usage_errors_are_one_line():
    assert_clean_error(run("estimate"), "--model")
    assert_clean_error(run("frobnicate"), "invalid choice")


@pytest.mark.parametrize("args", [["--help"], ["estimate", "--help"], ["demo", "--help"], ["hw", "--help"]])
def test_help(args):
    result = run(*args)
    assert result.returncode == 0 and "usage: prunesim" in result.stdout


def test_hw_list_and_show():
    assert "han45nm" in run("hw", "list").stdout
    shown = run("hw", "show", "han45nm")
    assert shown.returncode == 0 and "interface: lpddr2" in shown.stdout


def test_write_files_never_leaves_half_written_files(tmp_path, monkeypatch):
    write_files(tmp_path, {"a.txt": "old a", "b.txt": "old b"})

    class Boom(Exception):
        pass

    import os

    real_replace = os.replace
    calls = []

    def failing_replace(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise Boom
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(Boom):
        write_files(tmp_path, {"a.txt": "new a", "b.txt": "new b"})
    assert (tmp_path / "a.txt").read_text() == "new a"  # complete new file
    assert (tmp_path / "b.txt").read_text() == "old b"  # old file intact, not half-written
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.txt"]  # no temporary left
