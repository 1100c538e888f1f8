"""The prune job and the Fig. 5 trade-off, end to end on real MNIST with tiny schedules."""

import dataclasses
import json
import subprocess
import sys

import pytest

from pruning.datasets import load_dataset
from pruning.tradeoff import METHODS, tradeoff
from pruning.train import TrainConfig
from pruning.zoo import build_model
from tests.synthetic import needs_mnist
from sim.jobs import JobError, PruneSettings, parse_target, scale_densities, settings_match


def test_parse_target():
    assert parse_target("12x") == pytest.approx(1 / 12)
    assert parse_target("0.08") == pytest.approx(0.08)
    for bad in ("0.5x", "1.5", "abc", "0"):
        with pytest.raises(JobError, match="--target"):
            parse_target(bad)


def test_scale_densities_hits_the_target_and_caps_at_one():
    # Han's LeNet-300-100 ratios 8/9/26 % over 235,200 / 30,000 / 1,000 weights, scaled to 1/12:
    counts = {"fc1": 235_200, "fc2": 30_000, "fc3": 1_000}
    scaled = scale_densities({"fc1": 0.08, "fc2": 0.09, "fc3": 0.26}, counts, 1 / 12)
    overall = sum(scaled[k] * counts[k] for k in counts) / sum(counts.values())
    assert overall == pytest.approx(1 / 12, rel=1e-9)
    factor = scaled["fc1"] / 0.08
    assert scaled["fc2"] == pytest.approx(0.09 * factor) and scaled["fc3"] == pytest.approx(0.26 * factor)
    # A target above what the ratios allow saturates the small layer at 1.
    capped = scale_densities({"a": 0.5, "b": 1.0}, {"a": 100, "b": 100}, 0.9)
    assert capped["b"] == 1.0 and capped["a"] == pytest.approx(0.8)


def _prune(tmp_path, *extra):
    command = [sys.executable, "-m", "sim.cli", "prune", "--model", "lenet-300-100", "--epochs", "1",
               "--retrain-epochs", "1", "--iterations", "2", "--activation-samples", "200", "--quiet",
               "--run-dir", str(tmp_path / "run"), *extra]
    return subprocess.run(command, capture_output=True, text=True)


@needs_mnist
def test_prune_job_end_to_end_and_resume(tmp_path):
    first = _prune(tmp_path)
    assert first.returncode == 0, first.stderr
    run = tmp_path / "run"
    summary = json.loads((run / "report" / "summary.json").read_text())
    assert summary["compression"] >= 12.0
    assert summary["pruned_energy_uj"] < summary["dense_energy_uj"]
    for name in ("han_table.md", "mask.png", "histograms.png", "energy.png", "results.csv", "storage.csv"):
        assert (run / "report" / name).stat().st_size > 0
    assert (run / "rounds" / "checkpoints" / "round_02.pt").exists()
    # The same folder again without --resume is refused and nothing is touched.
    before = (run / "dense.pt").read_bytes()
    refused = _prune(tmp_path)
    assert refused.returncode == 2 and "--resume" in refused.stderr and "Traceback" not in refused.stderr
    # --resume on a finished run retrains nothing and reports the same numbers.
    again = _prune(tmp_path, "--resume")
    assert again.returncode == 0, again.stderr
    resumed = json.loads((run / "report" / "summary.json").read_text())
    assert (run / "dense.pt").read_bytes() == before
    for key in ("pruned_test_error_pct", "kept_weights", "pruned_energy_uj"):
        assert resumed[key] == summary[key]


def test_prune_rejects_bad_settings_in_one_line(tmp_path):
    result = _prune(tmp_path, "--data", "cifar-100")
    assert result.returncode == 2 and "cifar-100" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "run" / "dense.pt").exists()


@needs_mnist
def test_tradeoff_curves_on_a_small_mnist_subset():
    data = load_dataset("mnist", limit=2000, val_size=500)
    config = TrainConfig(epochs=1, lr=0.05, batch_size=128, reg_strength=1e-4)
    table = tradeoff(lambda: build_model("lenet-300-100", seed=0), data, [0.5, 0.9],
                     config, TrainConfig(epochs=1, lr=0.005, batch_size=128), progress=False)
    assert list(dict.fromkeys(table["method"])) == list(METHODS)
    assert len(table) == 5 * 3  # each method: dense reference + two fractions
    by = table.set_index(["method", "pruned_fraction"])["accuracy"]
    # Without retraining, pruning 90% of a 1-epoch network costs accuracy; retraining wins some back.
    assert by[("L2 w/o retrain", 0.9)] < by[("L2 w/o retrain", 0.0)]
    assert by[("L2 w/ retrain", 0.9)] > by[("L2 w/o retrain", 0.9)]
    assert by[("L1 w/o retrain", 0.0)] == by[("L1 w/ retrain", 0.0)]


@needs_mnist
def test_prune_lenet5_with_sensitivity_densities_and_separate_retraining(tmp_path):
    """Han Fig. 6 sets the per-layer densities; conv and FC retrain apart (Han §3.3); shifted
    training images are recorded in the summary and the report."""
    result = subprocess.run(
        [sys.executable, "-m", "sim.cli", "prune", "--model", "lenet-5", "--epochs", "1", "--retrain-epochs", "1",
         "--iterations", "1", "--layer-densities", "sensitivity", "--separate-conv-fc", "--target", "10x",
         "--augment-shift", "1",
         "--activation-samples", "100", "--quiet", "--run-dir", str(tmp_path / "run")],
        capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    run = tmp_path / "run"
    sensitivity = (run / "sensitivity.csv").read_text().splitlines()
    assert sensitivity[0] == "layer,pruned_fraction,accuracy" and len(sensitivity) == 1 + 4 * 10
    assert (run / "report" / "sensitivity.png").stat().st_size > 0
    summary = json.loads((run / "report" / "summary.json").read_text())
    assert summary["compression"] >= 10.0 and summary["augment_shift"] == 1
    assert "shifted by up to 1 pixel (augmentation" in (run / "report" / "report.md").read_text()
    history = (run / "rounds" / "history.csv").read_text()
    assert ",conv," in history and ",fc," in history  # both retraining phases ran


@needs_mnist
def test_val_size_reaches_the_loader_and_old_runs_still_resume(tmp_path):
    """--val-size is a setting like any other; a settings.json written before the field existed
    matches the default, any other value does not."""
    with pytest.raises(JobError, match="--val-size 0"):
        PruneSettings(val_size=0, layer_densities="sensitivity")
    stored = dataclasses.asdict(PruneSettings())
    del stored["val_size"]
    (tmp_path / "settings.json").write_text(json.dumps(stored))
    assert settings_match(PruneSettings(), tmp_path)
    assert not settings_match(PruneSettings(val_size=0), tmp_path)
    assert not settings_match(PruneSettings(seed=1), tmp_path)
    bad = _prune(tmp_path, "--val-size", "60000")
    assert bad.returncode == 2 and "val_size" in bad.stderr and "Traceback" not in bad.stderr


@needs_mnist
def test_tradeoff_l1_strength_reaches_only_the_l1_runs():
    """With no penalty on either side, the L1- and L2-trained networks are the same network."""
    data = load_dataset("mnist", limit=1000, val_size=200)
    config = TrainConfig(epochs=1, lr=0.05, batch_size=128, reg_strength=0.0)
    table = tradeoff(lambda: build_model("lenet-300-100", seed=0), data, [0.5], config,
                     TrainConfig(epochs=1, lr=0.005, batch_size=128, reg_strength=0.0), progress=False,
                     l1_strength=0.0)
    dense = table[table["pruned_fraction"] == 0.0].set_index("method")["accuracy"]
    assert dense["L1 w/o retrain"] == dense["L2 w/o retrain"]
    # A strong L1 penalty changes the L1 network and leaves the L2 one alone.
    strong = tradeoff(lambda: build_model("lenet-300-100", seed=0), data, [0.5], config,
                      TrainConfig(epochs=1, lr=0.005, batch_size=128, reg_strength=0.0), progress=False,
                      l1_strength=1e-2)
    strong_dense = strong[strong["pruned_fraction"] == 0.0].set_index("method")["accuracy"]
    assert strong_dense["L2 w/o retrain"] == dense["L2 w/o retrain"]
    assert strong_dense["L1 w/o retrain"] != dense["L1 w/o retrain"]


def test_augment_shift_reaches_both_training_phases_and_bad_values_fail_in_one_line(tmp_path):
    settings = PruneSettings(model="lenet-5", augment_shift=2)
    assert settings.train_config().augment_shift == 2 and settings.retrain_config().augment_shift == 2
    assert PruneSettings().train_config().augment_shift == 0       # Han's recipe by default
    for bad in (-1, 14, 1.5):
        with pytest.raises(JobError, match="--augment-shift"):
            PruneSettings(augment_shift=bad)
    result = _prune(tmp_path, "--augment-shift", "-3")
    assert result.returncode == 2 and "--augment-shift" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "run").exists()
