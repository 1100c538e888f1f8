"""The ``prune`` job: train a network on real data, prune it with Han's method, and report what
it saves — accuracy, weights, FLOPs, storage and energy side by side.

Run directory layout (everything written atomically):

``dense.pt``          the trained dense network (round 0 of the job; reused on ``--resume``)
``sensitivity.csv``   Fig. 6 data, when the layer densities come from a sensitivity analysis
``rounds/``           :func:`pruning.runs.han_prune`'s config.json, log.csv, history.csv,
                      checkpoints/round_XX.pt and final.pt
``model-relative.npz`` the pruned model in relative-index CSC (5-bit FC / 8-bit conv indices)
``model-compressed.npz`` with ``--quantise`` / ``--share-bits``: the compressed model, same format,
                      at its stored widths (:mod:`pruning.compression`)
``report/``           han_table.{csv,md}, storage.csv, results.{csv,json} (energy, dense vs
                      pruned, measured masks and activations; a ``compressed`` variant priced
                      at its own widths when compressed), compression.csv (storage without
                      and with Huffman coding), energy.png, mask.png, histograms.png,
                      sensitivity.png, report.md, hardware.yaml (the description used)
"""

from __future__ import annotations

import dataclasses
import io
import json
import time
from pathlib import Path

import pandas as pd
import torch

from pruning.compression import Compression, CompressionError, compress
from pruning.datasets import load_dataset
from pruning.export import export_model, storage_overhead, storage_table
from pruning.figures import mask_picture, sensitivity_plot, weight_histograms
from pruning.han import HanConfig, copy_model, densities_from_sensitivity, sensitivity
from pruning.magnitude import prunable_layers
from pruning.profiles import load_profile
from pruning.runs import han_prune
from pruning.sharing import compressed_size
from pruning.train import TrainConfig, evaluate, train
from pruning.zoo import MODEL_NAMES, build_model
from sim.api import estimate_workloads, han_form_table, measured_workloads, resolve_hardware
from sim.estimator import check_fixed_point_widths, totals
from sim.report import command_line, prunesim_version, render_files, to_markdown, write_files

__all__ = [
    "DENSITY_SOURCES", "JobError", "PruneSettings", "TRAINING_DEFAULTS", "check_compression", "compression_rows",
    "parse_target", "run_prune", "scale_densities", "settings_match",
]

DENSITY_SOURCES = ("auto", "uniform", "han2015", "sensitivity")

class JobError(ValueError):
    """Settings or a run folder a job cannot use; the message names the option."""


# Per-network training defaults, found on MNIST on this project's 2-core machine (BENCHMARKS.md):
# LeNet-5 uses Caffe's lr 0.01 (it trains once its ReLU-less convs get gain-1 init: pruning/zoo.py).
TRAINING_DEFAULTS = {
    "lenet-300-100": {"epochs": 40, "lr": 0.05, "batch_size": 128, "reg_strength": 5e-4},
    "lenet-5": {"epochs": 20, "lr": 0.01, "batch_size": 64, "reg_strength": 5e-4},
}


@dataclasses.dataclass(frozen=True)
class PruneSettings:
    """Everything a prune job depends on; ``None`` fields take :data:`TRAINING_DEFAULTS`.

    ``layer_densities``: ``uniform`` — one quality parameter q for all layers (threshold
    q × std); ``han2015`` — Han's per-layer Weights% for this network, scaled to the target;
    ``sensitivity`` — per-layer densities from a sensitivity analysis of the trained network
    (Han Fig. 6) allowing ``max_accuracy_drop``, scaled to the target; ``auto`` — han2015 where
    the profile has the network, else uniform. Retraining defaults to 1/10 of the learning rate
    (Han §4.1, LeNets). ``augment_shift``: random shifts of up to that many pixels of every
    training image, in training and retraining (:mod:`pruning.augment`; 0, Han's recipe, is
    the default). ``quantise`` / ``activation_bits`` / ``per_channel`` / ``share_bits`` /
    ``share_epochs``: Deep Compression's later stages on the pruned model
    (:class:`pruning.compression.Compression`; all None: none)."""

    model: str = "lenet-300-100"
    data: str = "mnist"
    target_density: float = 1 / 12
    iterations: int = 3
    layer_densities: str = "auto"
    epochs: int | None = None
    lr: float | None = None
    batch_size: int | None = None
    regularization: str = "l2"
    reg_strength: float | None = None
    retrain_epochs: int = 6
    retrain_lr: float | None = None
    retrain_regularization: str = "l2"
    separate_conv_fc: bool = False
    augment_shift: int = 0
    max_accuracy_drop: float = 0.005
    seed: int = 0
    hw: str = "han45nm"
    activation_samples: int = 2000
    val_size: int = 5000
    data_dir: str | None = None
    download: bool = False
    quantise: int | None = None
    activation_bits: int | None = None
    per_channel: bool = False
    share_bits: int | None = None
    share_epochs: int = 1

    def __post_init__(self) -> None:
        self.compression()
        if self.model not in TRAINING_DEFAULTS:
            others = ", ".join(m for m in MODEL_NAMES if m not in TRAINING_DEFAULTS)
            raise JobError(f"--model '{self.model}': prune trains on 28×28 grey images and supports "
                             f"{', '.join(TRAINING_DEFAULTS)} ({others} take ImageNet-sized inputs; "
                             "use 'estimate --profile' for them)")
        if not 0.0 < self.target_density <= 1.0:
            raise JobError(f"--target gives density {self.target_density}; valid: (0, 1], e.g. 12x or 0.08")
        if self.layer_densities not in DENSITY_SOURCES:
            raise JobError(f"--layer-densities '{self.layer_densities}'; valid: {', '.join(DENSITY_SOURCES)}")
        if isinstance(self.augment_shift, bool) or not isinstance(self.augment_shift, int) \
                or not 0 <= self.augment_shift < 14:
            raise JobError(f"--augment-shift {self.augment_shift!r}: give whole pixels, 0 (no augmentation) "
                           "to 13 (half of a 28-pixel image)")
        if self.val_size == 0 and self.layer_densities == "sensitivity":
            raise JobError("--val-size 0 leaves no validation images for --layer-densities sensitivity; "
                           "give --val-size > 0 or another --layer-densities")

    def compression(self) -> Compression:
        """The compression stages, validated (JobError naming the option)."""
        return _compression(self.quantise, self.activation_bits, self.per_channel, self.share_bits, self.share_epochs)

    def value(self, name: str):
        """A training hyper-parameter, falling back to the network's default."""
        given = getattr(self, name)
        return TRAINING_DEFAULTS[self.model][name] if given is None else given

    def train_config(self) -> TrainConfig:
        return TrainConfig(epochs=self.value("epochs"), lr=self.value("lr"), batch_size=self.value("batch_size"),
                           regularization=self.regularization, reg_strength=self.value("reg_strength"),
                           augment_shift=self.augment_shift)

    def retrain_config(self) -> TrainConfig:
        lr = self.retrain_lr if self.retrain_lr is not None else self.value("lr") / 10
        return TrainConfig(epochs=self.retrain_epochs, lr=lr, batch_size=self.value("batch_size"),
                           regularization=self.retrain_regularization, reg_strength=self.value("reg_strength"),
                           augment_shift=self.augment_shift)


_COMPRESSION_OPTIONS = {"quantise_bits": "--quantise", "activation_bits": "--activation-bits",
                        "per_channel": "--per-channel", "share_bits": "--share-bits", "share_epochs": "--share-epochs"}


def _compression(quantise, activation_bits, per_channel, share_bits, share_epochs) -> Compression:
    if quantise is None and (activation_bits is not None or per_channel):
        option = "--activation-bits" if activation_bits is not None else "--per-channel"
        raise JobError(f"{option} applies to fixed-point quantisation only; give --quantise BITS too")
    try:
        return Compression(quantise_bits=quantise, activation_bits=activation_bits, per_channel=per_channel,
                           share_bits=share_bits, share_epochs=share_epochs)
    except CompressionError as error:
        option = _COMPRESSION_OPTIONS[error.field]
        raise JobError(f"{option}: {error.reason}" + ("" if option != "--share-bits" else
                                                      " (Deep Compression: 2^b shared values per layer)")) from None


def check_compression(compression: Compression, hw: str) -> None:
    """Fail before any training when ``hw``'s energy table cannot price the fixed-point MACs the
    compression asks for (UnknownEnergyError naming the widths)."""
    if compression.quantise_bits is not None:
        check_fixed_point_widths(resolve_hardware(hw), compression.quantise_bits,
                                 compression.activation_bits or compression.quantise_bits, "--quantise: ")


def compression_rows(models: dict[str, torch.nn.Module]) -> pd.DataFrame:
    """Weight storage of each model (label → model) from :func:`pruning.sharing.compressed_size`:
    kept weights, bits per stored value, kB without and with Huffman coding (weights only: values,
    relative indices, pointers, codebooks) and both compression ratios against the dense
    network at 32 bits per weight."""
    rows = []
    for label, model in models.items():
        layers = compressed_size(model)
        total = layers[-1]
        rows.append({"model": label, "kept_weights": total["nonzeros"],
                     "value_bits": "/".join(map(str, sorted({row["value_bits"] for row in layers[:-1]}))),
                     "compressed_kB": total["compressed_bits"] / 8000, "compression": total["ratio"],
                     "huffman_kB": total["huffman_bits"] / 8000, "huffman_compression": total["huffman_ratio"]})
    return pd.DataFrame(rows)


def parse_target(text: str) -> float:
    """``12x`` (12× fewer weights) or a kept fraction such as ``0.08`` → a density."""
    try:
        value = float(text[:-1]) if text.lower().endswith("x") else float(text)
    except ValueError:
        raise JobError(f"--target '{text}': give a compression like 12x or a density like 0.08") from None
    density = 1.0 / value if text.lower().endswith("x") else value
    if not 0.0 < density <= 1.0 or (text.lower().endswith("x") and value < 1):
        raise JobError(f"--target '{text}': a compression ≥ 1x or a density in (0, 1]")
    return density


def scale_densities(base: dict[str, float], counts: dict[str, int], target: float) -> dict[str, float]:
    """Scale per-layer densities by one factor (each capped at 1) so that the overall density,
    Σ d_l·n_l / Σ n_l, equals ``target``; keeps the layers' relative sensitivity."""
    total = sum(counts.values())

    def overall(factor: float) -> float:
        return sum(min(1.0, factor * base[name]) * counts[name] for name in base) / total

    low, high = 0.0, 1.0
    while overall(high) < target and high < 1e6:
        high *= 2
    for _ in range(100):
        middle = (low + high) / 2
        low, high = (middle, high) if overall(middle) < target else (low, middle)
    return {name: min(1.0, high * base[name]) for name in base}


def _dense_model(settings: PruneSettings, data, run_dir: Path, progress: bool) -> torch.nn.Module:
    model = build_model(settings.model, seed=settings.seed)
    path = run_dir / "dense.pt"
    if path.exists():
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        return model
    train(model, data, settings.train_config(), seed=settings.seed, progress=progress, desc="dense training")
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    write_files(run_dir, {"dense.pt": buffer.getvalue()})
    return model


def _layer_densities(settings: PruneSettings, dense: torch.nn.Module, data, run_dir: Path,
                     progress: bool) -> tuple[dict[str, float] | None, pd.DataFrame | None]:
    source = settings.layer_densities
    if source == "auto":
        source = "han2015" if settings.model in ("lenet-300-100", "lenet-5") else "uniform"
    if source == "uniform":
        return None, None
    counts = {name: module.weight.numel() for name, module in prunable_layers(dense).items()}
    table = None
    if source == "han2015":
        base = {entry.layer: entry.weight_density for entry in load_profile("han2015", settings.model).layers}
    else:
        path = run_dir / "sensitivity.csv"
        if path.exists():
            table = pd.read_csv(path)
        else:
            table = sensitivity(dense, lambda m: evaluate(m, data.val)[1], progress=progress)
            write_files(run_dir, {"sensitivity.csv": table.to_csv(index=False)})
        base = densities_from_sensitivity(table, settings.max_accuracy_drop)
    return scale_densities(base, counts, settings.target_density), table


def _settings_text(settings: PruneSettings) -> str:
    return json.dumps(dataclasses.asdict(settings), indent=2, sort_keys=True) + "\n"


def settings_match(settings: PruneSettings, run_dir: str | Path) -> bool:
    """Whether ``run_dir`` holds a run made with exactly these settings. A field missing from
    the stored file (a run made before the field existed) counts as its default value."""
    path = Path(run_dir) / "settings.json"
    if not path.exists():
        return False
    stored = json.loads(path.read_text())
    defaults = dataclasses.asdict(PruneSettings(model=settings.model))
    return {**defaults, **stored} == dataclasses.asdict(settings)


def run_prune(settings: PruneSettings, run_dir: str | Path, resume: bool = False, progress: bool = True) -> dict:
    """Run the job into ``run_dir`` (see module docstring); returns the summary written to
    ``report/summary.json``. A killed job continues with ``resume=True`` from the last
    completed round; a fresh job refuses a folder that already holds one."""
    run_dir = Path(run_dir)
    if (run_dir / "settings.json").exists() and not resume:
        raise JobError(f"run folder '{run_dir}' already holds a run; pass --resume to continue it "
                              "or choose another --run-dir")
    settings_text = _settings_text(settings)
    if (run_dir / "settings.json").exists() and not settings_match(settings, run_dir):
        raise JobError(f"--resume: the settings differ from those in {run_dir / 'settings.json'}")
    compression = settings.compression()
    check_compression(compression, settings.hw)
    started = time.perf_counter()
    data = load_dataset(settings.data, data_dir=settings.data_dir, val_size=settings.val_size,
                        seed=settings.seed, download_missing=settings.download)
    write_files(run_dir, {"settings.json": settings_text})
    dense = _dense_model(settings, data, run_dir, progress)
    densities, sensitivity_table = _layer_densities(settings, dense, data, run_dir, progress)
    config = HanConfig(target_density=settings.target_density, iterations=settings.iterations,
                       layer_densities=densities, train=dataclasses.replace(settings.train_config(), epochs=0),
                       retrain=settings.retrain_config(), separate_conv_fc=settings.separate_conv_fc,
                       seed=settings.seed)
    result = han_prune(copy_model(dense), data, config, run_dir / "rounds", resume=resume,
                       progress=progress, model_name=settings.model)
    pruned = result.model
    compressed = compress(pruned, compression, data, settings.retrain_config(), seed=settings.seed,
                          progress=progress) if compression.enabled else None
    wall_s = time.perf_counter() - started

    sample = data.test.tensors[0][: settings.activation_samples]
    variants = {"dense": dense, "pruned": pruned, **({"compressed": compressed} if compressed is not None else {})}
    workloads = measured_workloads(variants, sample, settings.model)
    energy = estimate_workloads(workloads, settings.hw)
    han_table = han_form_table(workloads["dense"], workloads["pruned"])
    report = export_model(pruned, run_dir / "model-relative.npz", fmt="relative")
    storage = pd.DataFrame(storage_table(pruned))
    energy_totals = totals(energy).set_index("variant")
    dense_accuracy, pruned_accuracy = evaluate(dense, data.test)[1], evaluate(pruned, data.test)[1]
    kept = int(sum(layer.nonzero_weights for layer in workloads["pruned"].compute_layers))
    weights = int(sum(layer.weight_count for layer in workloads["pruned"].compute_layers))
    summary = {
        "model": settings.model, "data": settings.data, "seed": settings.seed,
        "augment_shift": settings.augment_shift,
        "dense_test_error_pct": 100 * (1 - dense_accuracy),
        "pruned_test_error_pct": 100 * (1 - pruned_accuracy),
        "weights": weights, "kept_weights": kept, "compression": weights / kept,
        "flop_pct": float(han_table["flop_pct"].iloc[-1]),
        "storage_overhead_relative_index": storage_overhead(report),
        "hardware": settings.hw,
        "dense_energy_uj": energy_totals.at["dense", "energy_pj"] / 1e6,
        "pruned_energy_uj": energy_totals.at["pruned", "energy_pj"] / 1e6,
        "energy_saving": energy_totals.at["dense", "energy_pj"] / energy_totals.at["pruned", "energy_pj"],
        "wall_s": wall_s,
    }
    first = next(iter(prunable_layers(pruned)))
    dense_first = dict(prunable_layers(dense))[first].weight.detach().numpy()
    pruned_first = workloads["pruned"].layer(first)
    meta = {"kind": "prune", "model": settings.model, "data": settings.data, "hardware": settings.hw,
            "seed": settings.seed, "prunesim": prunesim_version(), "command": command_line(),
            "activations": f"measured on {len(sample)} test images"}
    files = render_files(energy, meta, f"{settings.model} pruned on {settings.data} · {settings.hw}")
    files.update({
        "han_table.csv": han_table.to_csv(index=False),
        "han_table.md": to_markdown(han_table),
        "storage.csv": storage.to_csv(index=False),
        "summary.json": json.dumps(summary, indent=2) + "\n",
        "mask.png": mask_picture(pruned_first.mask, first),
        "histograms.png": weight_histograms(dense_first, pruned_first.weight, first),
        "hardware.yaml": resolve_hardware(settings.hw).to_yaml(),
    })
    if sensitivity_table is not None:
        files["sensitivity.png"] = sensitivity_plot(sensitivity_table)
    files["report.md"] = _report_markdown(summary, han_table, storage, files["report.md"], result.log)
    if compressed is not None:
        export_model(compressed, run_dir / "model-compressed.npz", fmt="relative")
        table = _compression_table(compression, pruned, compressed, data, energy)
        last = table.iloc[-1]
        summary.update({"compressed_with": compression.label,
                        "compressed_test_error_pct": float(last["test_error_pct"]),
                        "compressed_energy_uj": float(last["energy_uj"]),
                        "compressed_energy_saving": summary["dense_energy_uj"] / float(last["energy_uj"]),
                        "compressed_kB": float(last["compressed_kB"]), "compressed_ratio": float(last["compression"]),
                        "huffman_kB": float(last["huffman_kB"]), "huffman_ratio": float(last["huffman_compression"])})
        files["summary.json"] = json.dumps(summary, indent=2) + "\n"
        files["compression.csv"] = table.to_csv(index=False)
        files["report.md"] += "\n".join([
            "", f"## Compressed: {compression.label} (Deep Compression stages on the pruned model)", "",
            "Storage: weights only (values, relative indices, column pointers, codebooks); Huffman: "
            "shared/fixed-point values and relative indices Huffman-coded (Deep Compression §4). "
            "Energy: priced at each layer's own widths (bits: weights / activations).", "",
            to_markdown(table), ""])
    write_files(run_dir / "report", files)
    return summary


def _compression_table(compression: Compression, pruned: torch.nn.Module, compressed: torch.nn.Module, data,
                       energy: pd.DataFrame) -> pd.DataFrame:
    """Pruned (32-bit) and compressed side by side: test error, widths, storage, energy."""
    table = compression_rows({"pruned, 32-bit": pruned, f"pruned, {compression.label}": compressed})
    per_variant = energy.groupby("variant", sort=False)
    widths = {v: ", ".join(f"W{w}A{a}" for w, a in sorted(set(zip(part["weight_bits"], part["activation_bits"]))))
              for v, part in per_variant}
    table.insert(1, "test_error_pct", [100 * (1 - evaluate(m, data.test)[1]) for m in (pruned, compressed)])
    table.insert(3, "bits_w_a", [widths["pruned"], widths["compressed"]])
    table["energy_uj"] = [per_variant.get_group(v)["energy_pj"].sum() / 1e6 for v in ("pruned", "compressed")]
    return table


def _report_markdown(summary: dict, han_table: pd.DataFrame, storage: pd.DataFrame, energy_md: str,
                     log: pd.DataFrame) -> str:
    keep = ["round", "density", "compression", "val_acc", "test_acc", "wall_s", "dead_neurons"]
    lines = [
        f"# {summary['model']} pruned on {summary['data']} (seed {summary['seed']})",
        "",
        f"- test error: dense {summary['dense_test_error_pct']:.2f}%, pruned {summary['pruned_test_error_pct']:.2f}%",
        f"- weights: {summary['weights']:,} → {summary['kept_weights']:,} ({summary['compression']:.1f}× fewer)",
        f"- FLOP left: {summary['flop_pct']:.1f}% (activations measured on the test set)",
        f"- relative-index storage overhead: {100 * summary['storage_overhead_relative_index']:.1f}%",
        f"- energy on {summary['hardware']}: {summary['dense_energy_uj']:.3g} µJ → {summary['pruned_energy_uj']:.3g} µJ "
        f"({summary['energy_saving']:.1f}×)",
        f"- wall time: {summary['wall_s']:.0f} s",
        *([f"- training images shifted by up to {summary['augment_shift']} pixel"
           f"{'s' if summary['augment_shift'] > 1 else ''} (augmentation; Han et al. used none)"]
          if summary.get("augment_shift") else []),
        "",
        "## Per layer, in the form of Han et al. 2015 Tables 2–5",
        "",
        to_markdown(han_table),
        "## Prune → retrain rounds",
        "",
        to_markdown(log[[c for c in keep if c in log.columns]]),
        "## Storage (bytes)",
        "",
        to_markdown(storage.drop(columns=["shape"], errors="ignore")),
        "## Energy",
        "",
        energy_md.split("\n", 2)[2],
        "![mask](mask.png) ![histograms](histograms.png)",
        "",
    ]
    return "\n".join(lines)
