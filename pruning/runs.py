"""Han-pruning runs that survive interruption and can be checked afterwards.

``han_prune`` trains (round 0), then runs the prune -> retrain rounds of
``pruning.han.prune_round``, and after every completed round writes into ``run_dir``:

    config.json              the HanConfig, its seed, the model name if known, the layers
    log.csv                  one row per completed round (see ``han_prune``)
    history.csv              one row per training epoch (round, phase, loss, accuracies, lr)
    checkpoints/round_XX.pt  model state (weight_orig/weight_mask included), round,
                             dropout p's, the pre-pruning connection counts and dropout
                             rates, the torch RNG state, and the log rows so far
    final.pt                 the final pruned model's state_dict

Every file is written atomically (temporary file + fsync + os.replace), so a killed run
leaves each file either old or new, never torn. Each training phase is seeded by
``phase_seed(seed, round, phase)`` alone, and a checkpoint restores everything else a
round depends on (weights, masks, biases, dropout p's), so a resumed run computes the
same numbers as an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import nn
from torch.nn.utils import prune

from pruning.han import (DeadNeurons, HanConfig, connection_counts, dropout_probabilities,
                         find_dead_neurons, phase_seed, prune_round)
from pruning.magnitude import prunable_layers
from pruning.train import evaluate, refresh_pruned_weights, train

CHECKPOINT_FORMAT = 1
_CHECKPOINT_RE = re.compile(r"round_(\d+)\.pt$")


@dataclass(frozen=True)
class HanResult:
    """The pruned model, the per-round log (log.csv as a DataFrame), the run directory,
    and the dead neurons of the final model (all removed when config.remove_dead)."""
    model: nn.Module
    log: pd.DataFrame = dataclasses.field(hash=False)
    run_dir: Path
    dead_neurons: tuple[DeadNeurons, ...]


# ------------------------------------------------------------------ atomic files

def _atomic_write(path: Path, write) -> None:
    """Write via ``write(file)`` into a temporary sibling, fsync, then os.replace."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _write_text(path: Path, text: str) -> None:
    _atomic_write(path, lambda f: f.write(text.encode()))


def _write_torch(path: Path, obj: Any) -> None:
    _atomic_write(path, lambda f: torch.save(obj, f))


# ------------------------------------------------------------------ config record

def config_record(config: HanConfig, model: nn.Module, model_name: str | None) -> dict:
    """The JSON-able content of config.json: the config (nested dataclasses as dicts),
    seed, model name, and the prunable layers with their weight shapes."""
    record = {
        "config": dataclasses.asdict(config),
        "seed": config.seed,
        "model_name": model_name,
        "layers": {name: list(m.weight.shape) for name, m in prunable_layers(model).items()},
    }
    # Round-trip through JSON so tuples compare equal to the lists read back from disk.
    return json.loads(json.dumps(record))


def _differences(stored: Any, given: Any, prefix: str = "") -> list[str]:
    """Dotted names of the fields where two JSON values differ."""
    if isinstance(stored, dict) and isinstance(given, dict):
        out = []
        for key in list(dict.fromkeys([*stored, *given])):
            out += _differences(stored.get(key), given.get(key), f"{prefix}{key}.")
        return out
    if stored != given:
        return [f"{prefix.rstrip('.')} (config.json: {stored!r}, given: {given!r})"]
    return []


def _with_defaults(stored: dict, config: Any) -> dict:
    """``stored`` (a dataclass's record from config.json) with every field it lacks set to
    that field's default: a run written before the field existed was made with the default."""
    filled = dict(stored)
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if field.name not in filled and field.default is not dataclasses.MISSING:
            filled[field.name] = json.loads(json.dumps(field.default))
        elif dataclasses.is_dataclass(value) and isinstance(filled.get(field.name), dict):
            filled[field.name] = _with_defaults(filled[field.name], value)
    return filled


def _check_config(run_dir: Path, record: dict, config: HanConfig) -> None:
    stored = json.loads((run_dir / "config.json").read_text())
    if isinstance(stored.get("config"), dict):
        stored["config"] = _with_defaults(stored["config"], config)
    if record.get("model_name") is None or stored.get("model_name") is None:
        # A name is only known sometimes; compare it only when both sides have one.
        stored = {**stored, "model_name": None}
        record = {**record, "model_name": None}
    stored.pop("format", None)
    diffs = _differences(stored, record)
    if diffs:
        raise ValueError(f"cannot resume {run_dir}: the configuration differs from its "
                         f"config.json in: {'; '.join(diffs)}")


# ------------------------------------------------------------------ checkpoints

def load_checkpoint(model: nn.Module, path: str | Path) -> nn.Module:
    """Load a checkpoint (``round_XX.pt``) or ``final.pt`` into ``model`` and return it.

    ``model`` must have the same architecture (e.g. a fresh ``build_model``). For every
    stored ``<tensor>_mask`` the prune reparametrisation is re-created first
    (``prune.custom_from_mask``), so ``weight_orig``/``weight_mask`` exist again before
    the state is loaded (strictly). Dropout p's are restored when the file holds them.
    """
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    payload = torch.load(Path(path), map_location=device, weights_only=True)
    # A round checkpoint wraps the state_dict with metadata; final.pt is a bare state_dict.
    wrapped = "state_dict" in payload
    state = payload["state_dict"] if wrapped else payload
    for key, value in state.items():
        module_name, _, leaf = key.rpartition(".")
        if not leaf.endswith("_mask"):
            continue
        module = model.get_submodule(module_name) if module_name else model
        if not hasattr(module, leaf):
            prune.custom_from_mask(module, name=leaf[:-len("_mask")], mask=value)
    model.load_state_dict(state)
    if wrapped:
        for name, p in payload.get("dropout_p", {}).items():
            model.get_submodule(name).p = p
    refresh_pruned_weights(model)
    return model


def _checkpoints(run_dir: Path) -> dict[int, Path]:
    folder = run_dir / "checkpoints"
    found = {}
    if folder.is_dir():
        for path in folder.iterdir():
            match = _CHECKPOINT_RE.fullmatch(path.name)
            if match:
                found[int(match.group(1))] = path
    return found


def _save_checkpoint(run_dir: Path, model: nn.Module, round_index: int, state: dict) -> None:
    refresh_pruned_weights(model)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "round": round_index,
        "state_dict": model.state_dict(),
        "dropout_p": dropout_probabilities(model),
        "original_connections": state["original_connections"],
        "original_dropout_p": state["original_dropout_p"],
        "rng_state": torch.get_rng_state(),
        "log": state["log"],
        "history": state["history"],
    }
    folder = run_dir / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    _write_torch(folder / f"round_{round_index:02d}.pt", payload)
    # log.csv and history.csv after the checkpoint: if the run dies in between, the
    # checkpoint's own copy of the rows is rewritten on resume.
    _write_tables(run_dir, state)


def _write_tables(run_dir: Path, state: dict) -> None:
    _write_text(run_dir / "log.csv", _log_frame(state["log"]).to_csv(index=False))
    _write_text(run_dir / "history.csv", pd.DataFrame(state["history"]).to_csv(index=False))


def _log_frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows)


# ------------------------------------------------------------------ the run

def _log_row(model: nn.Module, data, round_index: int, wall_s: float) -> dict:
    layers = prunable_layers(model)
    kept = {n: int(torch.count_nonzero(m.weight_orig * m.weight_mask if hasattr(m, "weight_mask")
                                       else m.weight)) for n, m in layers.items()}
    sizes = {n: m.weight.numel() for n, m in layers.items()}
    total, alive = sum(sizes.values()), sum(kept.values())
    _, val_acc = evaluate(model, getattr(data, "val", None))
    _, test_acc = evaluate(model, getattr(data, "test", None))
    dead = sum(len(set(d.no_inputs) | set(d.no_outputs)) for d in find_dead_neurons(model))
    return {
        "round": round_index,
        "density": alive / total,
        "compression": total / alive if alive else math.inf,
        "kept_weights": alive,
        **{f"density_{n}": kept[n] / sizes[n] for n in layers},
        "val_acc": val_acc,
        "test_acc": test_acc,
        "wall_s": wall_s,
        "dead_neurons": dead,
    }


def han_prune(model: nn.Module, data, config: HanConfig, run_dir: str | Path,
              resume: bool = False, progress: bool = True,
              model_name: str | None = None) -> HanResult:
    """Han's method on ``model`` (edited in place) with a checkpoint after every round.

    Round 0 is the initial dense training with ``config.train`` (no training when its
    epochs is 0, e.g. for a trained model; the round is still logged and checkpointed),
    rounds 1..R are ``pruning.han.prune_round``. ``data`` has ``.train``, ``.val``,
    ``.test`` datasets (val/test may be None: NaN accuracies).

    log.csv columns: round, density (overall fraction of non-zero prunable weights),
    compression (1/density), kept_weights, density_<layer> for every prunable layer,
    val_acc, test_acc (after the round, eval mode), wall_s (the round's wall time),
    dead_neurons (number of distinct dead neurons in the model after the round; with
    remove_dead these are the removed ones, so the count accumulates over rounds).

    A fresh run needs a directory without config.json (FileExistsError otherwise, so
    nothing is overwritten by accident). resume=True compares the config with config.json
    (ValueError naming every differing field), loads the latest checkpoint into
    ``model`` (which must be the same architecture, e.g. a fresh build) and continues
    with the next round; a finished run is returned without training. Without any
    checkpoint, resume starts from the beginning. model_name is recorded in config.json
    and compared on resume when both are known.
    """
    run_dir = Path(run_dir)
    record = config_record(config, model, model_name)
    if (run_dir / "config.json").exists():
        if not resume:
            raise FileExistsError(f"{run_dir} already holds a run (config.json); pass "
                                  f"resume=True to continue it or choose another directory")
        _check_config(run_dir, record, config)
    else:
        run_dir.mkdir(parents=True, exist_ok=True)
        _write_text(run_dir / "config.json", json.dumps({"format": CHECKPOINT_FORMAT, **record},
                                                        indent=2) + "\n")
    checkpoints = _checkpoints(run_dir) if resume else {}
    if checkpoints:
        latest = max(checkpoints)
        if latest > config.iterations:
            raise ValueError(f"{checkpoints[latest]} is beyond the config's "
                             f"{config.iterations} rounds")
        payload = torch.load(checkpoints[latest], map_location="cpu", weights_only=True)
        load_checkpoint(model, checkpoints[latest])
        torch.set_rng_state(payload["rng_state"])
        state = {key: payload[key] for key in
                 ("original_connections", "original_dropout_p", "log", "history")}
        _write_tables(run_dir, state)
        start = latest + 1
        _say(progress, f"resuming {run_dir} after round {latest}")
    else:
        state = {"original_connections": connection_counts(model),
                 "original_dropout_p": dropout_probabilities(model), "log": [], "history": []}
        t0 = time.perf_counter()
        rows = []
        if config.train.epochs > 0:
            rows = train(model, data, config.train, seed=phase_seed(config.seed, 0, 0),
                         progress=progress, desc="round 0 train")
        state["history"] += [{"round": 0, "phase": "all", **row} for row in rows]
        state["log"].append(_log_row(model, data, 0, time.perf_counter() - t0))
        _save_checkpoint(run_dir, model, 0, state)
        _say(progress, _summary(state["log"][-1]))
        start = 1
    for round_index in range(start, config.iterations + 1):
        t0 = time.perf_counter()
        result = prune_round(model, data, config, round_index, state["original_connections"],
                             state["original_dropout_p"], progress=progress)
        state["history"] += list(result.history)
        state["log"].append(_log_row(model, data, round_index, time.perf_counter() - t0))
        _save_checkpoint(run_dir, model, round_index, state)
        _say(progress, _summary(state["log"][-1]))
    refresh_pruned_weights(model)
    _write_torch(run_dir / "final.pt", model.state_dict())
    return HanResult(model=model, log=_log_frame(state["log"]), run_dir=run_dir,
                     dead_neurons=tuple(find_dead_neurons(model)))


def _summary(row: dict) -> str:
    return (f"round {row['round']}: density {row['density']:.4f} "
            f"({row['compression']:.1f}x), val_acc {row['val_acc']:.4f}, "
            f"test_acc {row['test_acc']:.4f}, dead neurons {row['dead_neurons']}")


def _say(progress: bool, message: str) -> None:
    if progress:
        print(message, file=sys.stderr)
