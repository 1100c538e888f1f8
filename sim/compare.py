"""The ``compare`` job: several pruning methods on one network, one data set and one piece of
hardware, so that accuracy can be read against sparsity and against estimated energy.

One dense network is trained (the per-network defaults of :data:`sim.jobs.TRAINING_DEFAULTS`)
and every method starts from a copy of it. Each method then walks up the sparsity ladder in
increasing order: the model at 95% is the model at 90% pruned further with that method's
schedule (``rounds`` geometric rounds for Han and relief, halving rounds for FlipOut), each
round followed by ``retrain_epochs`` of retraining (:func:`pruning.pipeline.run_method`). After
every rung the test accuracy is measured and the energy estimated from the measured masks and
activations (:func:`sim.api.measured_workloads`, :func:`sim.api.estimate_workloads`).

With ``quantise`` and/or ``share_bits`` (:class:`pruning.compression.Compression`), every rung
also compresses a copy of the pruned model (weight sharing, then fixed point) and measures it
as one more row, method ``"<method> (<compression>)"`` (e.g. ``han (W8A8)``), priced at its own
widths: one more curve per method. The ladder continues from the uncompressed model.

Output (written atomically with :func:`sim.report.write_files`): ``compare.csv`` (one row per
method and sparsity plus the dense row), ``compare.md``, ``compare.json`` (settings and rows),
``accuracy_vs_sparsity.png``, ``accuracy_vs_energy.png``.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from pruning.compression import compress
from pruning.datasets import load_dataset
from pruning.figures import curves_plot
from pruning.han import copy_model
from pruning.methods import available_methods, make_method
from pruning.pipeline import MethodSchedule, run_method
from pruning.train import evaluate, train
from pruning.zoo import build_model
from sim.api import estimate_workloads, measured_workloads, resolve_hardware
from sim.estimator import totals
from sim.jobs import JobError, PruneSettings, check_compression
from sim.report import to_markdown, write_files

__all__ = ["CompareSettings", "parse_list", "run_compare"]


def parse_list(text: str, option: str, convert=str) -> tuple:
    """``a,b,c`` → a tuple of ``convert(item)``; JobError naming ``option`` on a bad item."""
    items = [item.strip() for item in str(text).split(",") if item.strip()]
    try:
        values = tuple(convert(item) for item in items)
    except ValueError:
        raise JobError(f"{option} '{text}': give a comma-separated list") from None
    if not values:
        raise JobError(f"{option} '{text}': the list is empty")
    return values


@dataclasses.dataclass(frozen=True)
class CompareSettings:
    """Everything a comparison depends on. ``None`` training fields take the network's defaults
    (as :class:`sim.jobs.PruneSettings`). ``limit``: use only the first ``limit`` training and
    test images (quick runs; the validation split is then a fifth of them)."""

    model: str = "lenet-300-100"
    data: str = "mnist"
    methods: tuple[str, ...] = ("han", "flipout", "relief")
    sparsities: tuple[float, ...] = (0.9, 0.95, 0.98, 0.99)
    rounds: int = 2
    epochs: int | None = None
    lr: float | None = None
    batch_size: int | None = None
    retrain_epochs: int = 2
    retrain_lr: float | None = None
    seed: int = 0
    hw: str = "han45nm"
    activation_samples: int = 1000
    data_dir: str | None = None
    limit: int | None = None
    quantise: int | None = None
    activation_bits: int | None = None
    per_channel: bool = False
    share_bits: int | None = None
    share_epochs: int = 1

    def __post_init__(self) -> None:
        unknown = [m for m in self.methods if m not in available_methods()]
        if unknown or not self.methods:
            raise JobError(f"--methods '{','.join(self.methods)}': unknown {', '.join(unknown) or 'none given'}; "
                           f"valid: {', '.join(available_methods())}")
        if len(set(self.methods)) != len(self.methods):
            raise JobError(f"--methods '{','.join(self.methods)}' names a method twice")
        bad = [s for s in self.sparsities if not 0.0 < s < 1.0]
        if bad or not self.sparsities:
            raise JobError(f"--sparsity {bad or 'none'}: each sparsity must lie in (0, 1), e.g. 0.9,0.99")
        if self.rounds < 1:
            raise JobError(f"--rounds {self.rounds}: at least 1")
        if self.retrain_epochs < 0:
            raise JobError(f"--retrain-epochs {self.retrain_epochs}: at least 0")
        if self.limit is not None and self.limit < 50:
            raise JobError(f"--limit {self.limit}: at least 50 images")
        self.training()      # the model check and its defaults

    def training(self) -> PruneSettings:
        """The dense and retraining hyper-parameters, through the prune job's defaults."""
        return PruneSettings(model=self.model, data=self.data, epochs=self.epochs, lr=self.lr,
                             batch_size=self.batch_size, retrain_epochs=self.retrain_epochs,
                             retrain_lr=self.retrain_lr, seed=self.seed, hw=self.hw, quantise=self.quantise,
                             activation_bits=self.activation_bits, per_channel=self.per_channel,
                             share_bits=self.share_bits, share_epochs=self.share_epochs)


def _measure(model, data, settings: CompareSettings, sample, hw) -> dict:
    # Kept weights as the workload sees them: the mask, or the non-zero weights of a model whose
    # masks were folded in (a quantised copy).
    workload = measured_workloads({"m": model}, sample, settings.model)
    energy = totals(estimate_workloads(workload, hw)).iloc[0]
    _, accuracy = evaluate(model, data.test)
    alive, total = int(energy["nonzero_weights"]), int(energy["weights"])
    return {"density": alive / total, "kept_weights": alive, "test_acc": accuracy,
            "test_error_pct": 100 * (1 - accuracy), "energy_uj": energy["energy_pj"] / 1e6,
            "flop_pct": energy["flop_pct"]}


def run_compare(settings: CompareSettings, out_dir: str | Path | None = None, data=None,
                progress: bool = True) -> pd.DataFrame:
    """Run the comparison (module docstring); returns the table written to ``compare.csv``.

    ``data``: splits with ``.train``, ``.val``, ``.test`` (default: ``settings.data`` loaded
    from disk, never downloaded). Columns: method, sparsity (requested; 0 for dense), density
    (reached), kept_weights, test_acc, test_error_pct, energy_uj, flop_pct, energy_saving
    (dense energy / this energy), wall_s (this rung's training and pruning).
    """
    hw = resolve_hardware(settings.hw)
    training = settings.training()
    compression = training.compression()
    check_compression(compression, settings.hw)
    if data is None:
        val_size = 5000 if settings.limit is None else settings.limit // 5
        data = load_dataset(settings.data, data_dir=settings.data_dir, seed=settings.seed,
                            limit=settings.limit, val_size=val_size)
    sample = data.test.tensors[0][: settings.activation_samples]
    started = time.perf_counter()
    dense = build_model(settings.model, seed=settings.seed)
    train(dense, data, training.train_config(), seed=settings.seed, progress=progress, desc="dense training")
    rows = [{"method": "dense", "sparsity": 0.0, **_measure(dense, data, settings, sample, hw),
             "wall_s": time.perf_counter() - started}]
    ladder = sorted(settings.sparsities)
    bar = tqdm(total=len(settings.methods) * len(ladder), desc="compare", unit="rung",
               disable=not progress, file=sys.stderr)
    for name in settings.methods:
        model = copy_model(dense)
        method = make_method(name, seed=settings.seed)
        for sparsity in ladder:
            bar.set_postfix_str(f"{name} {100 * sparsity:g}%")
            t0 = time.perf_counter()
            schedule = MethodSchedule(target_density=1.0 - sparsity, rounds=settings.rounds,
                                      train=dataclasses.replace(training.train_config(), epochs=0),
                                      retrain=training.retrain_config(), seed=settings.seed)
            run_method(method, model, data, schedule, progress=False)
            rows.append({"method": name, "sparsity": sparsity, **_measure(model, data, settings, sample, hw),
                         "wall_s": time.perf_counter() - t0})
            if compression.enabled:
                t0 = time.perf_counter()
                compressed = compress(model, compression, data, training.retrain_config(), seed=settings.seed,
                                      progress=False)
                rows.append({"method": f"{name} ({compression.label})", "sparsity": sparsity,
                             **_measure(compressed, data, settings, sample, hw), "wall_s": time.perf_counter() - t0})
            bar.update()
    bar.close()
    table = pd.DataFrame(rows)
    table["energy_saving"] = table["energy_uj"].iloc[0] / table["energy_uj"]
    if out_dir is not None:
        write_files(out_dir, render_compare(table, settings, time.perf_counter() - started))
    return table


def render_compare(table: pd.DataFrame, settings: CompareSettings, wall_s: float) -> dict[str, str | bytes]:
    """The files of a comparison: CSV, JSON, Markdown and the two plots."""
    title = f"{settings.model} on {settings.data} · {settings.hw}"
    pruned = table[table["method"] != "dense"]
    accuracy = pruned.pivot(index="sparsity", columns="method", values="test_acc").reset_index()
    with_dense = table.assign(sparsity_pct=100 * table["sparsity"], test_acc_pct=100 * table["test_acc"])
    compression = settings.training().compression()
    compressed = (f"Rows '<method> ({compression.label})': each rung's pruned model compressed further "
                  "(pruning.compression), priced at its own widths. " if compression.enabled else "")
    markdown = "\n".join([
        f"# Pruning methods compared: {title}",
        "",
        f"Dense network trained once (seed {settings.seed}); each method prunes a copy up the sparsity "
        f"ladder {', '.join(f'{100 * s:g}%' for s in sorted(settings.sparsities))} with {settings.rounds} "
        f"round(s) per rung (FlipOut: halving rounds) and {settings.retrain_epochs} retraining epoch(s) "
        f"per round. Energy: analytical estimate per inference from the measured masks and activations. "
        f"{compressed}Wall time {wall_s:.0f} s.",
        "",
        "## Test accuracy",
        "",
        to_markdown(accuracy),
        "## All rows",
        "",
        to_markdown(table.drop(columns=["kept_weights"])),
        "![accuracy vs sparsity](accuracy_vs_sparsity.png) ![accuracy vs energy](accuracy_vs_energy.png)",
        "",
    ])
    return {
        "compare.csv": table.to_csv(index=False),
        "compare.json": json.dumps({"settings": dataclasses.asdict(settings), "wall_s": wall_s,
                                    "rows": table.to_dict(orient="records")}, indent=2) + "\n",
        "compare.md": markdown,
        "accuracy_vs_sparsity.png": curves_plot(pruned.assign(sparsity_pct=100 * pruned["sparsity"],
                                                              test_acc_pct=100 * pruned["test_acc"]),
                                                "sparsity_pct", "test_acc_pct", "method",
                                                f"Accuracy against sparsity: {title}", "sparsity (%)",
                                                "test accuracy (%)"),
        "accuracy_vs_energy.png": curves_plot(with_dense, "energy_uj", "test_acc_pct", "method",
                                              f"Accuracy against energy: {title}",
                                              "estimated energy per inference (µJ)", "test accuracy (%)",
                                              log_x=True),
    }
