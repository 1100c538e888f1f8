"""The shared part of every pruning method: training, the round schedule, checkpoints, logs.

``run_method(method, model, data, schedule)`` trains (round 0, ``schedule.train``; epochs 0
skips it for an already trained model), then runs the method's rounds: each round prunes to
the next density of ``method.round_densities(current, target, rounds)`` and retrains the
survivors with ``schedule.retrain`` (for FlipOut, the k epochs between two pruning events).
The method's hooks run inside every training phase. With a ``run_dir`` it writes, atomically,
the same layout as :func:`pruning.runs.han_prune`:

    config.json              method name and options, the schedule, the layers
    log.csv                  one row per completed round (pruning.runs' columns + method)
    history.csv              one row per training epoch
    checkpoints/round_XX.pt  model state (masks included), the method's state, the plan,
                             the log rows so far
    final.pt                 the final model's state_dict

and ``resume=True`` continues from the latest checkpoint. Every phase is seeded by
``phase_seed(schedule.seed, round, 1)`` and the method's own generator state is checkpointed,
so a resumed run computes the same numbers as an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from torch import nn

from pruning.han import phase_seed
from pruning.magnitude import prunable_layers
from pruning.methods.base import PruningMethod, check_fraction, prunable_weight_count
from pruning.runs import (_checkpoints, _differences, _log_row, _say, _summary, _write_text,
                          _write_torch, load_checkpoint)
from pruning.train import TrainConfig, refresh_pruned_weights, train

__all__ = ["MethodResult", "MethodSchedule", "run_method"]


@dataclass(frozen=True)
class MethodSchedule:
    """Target and training of one run. ``rounds``: prune → retrain rounds for methods with a
    geometric schedule (FlipOut derives its own count from its prune fraction)."""

    target_density: float
    rounds: int = 3
    train: TrainConfig = TrainConfig(epochs=0)
    retrain: TrainConfig = TrainConfig(epochs=2, lr=0.005)
    seed: int = 0

    def __post_init__(self) -> None:
        check_fraction(self.target_density, "target_density")
        if isinstance(self.rounds, bool) or not isinstance(self.rounds, int) or self.rounds < 1:
            raise ValueError(f"rounds must be an int >= 1, got {self.rounds!r}")


@dataclass(frozen=True)
class MethodResult:
    """The pruned model (the one passed in, edited in place) and its per-round log."""
    model: nn.Module
    log: pd.DataFrame = dataclasses.field(hash=False)
    run_dir: Path | None


def _record(method: PruningMethod, schedule: MethodSchedule, model: nn.Module) -> dict:
    options = {f.name: getattr(method, f.name) for f in dataclasses.fields(method)
               if not f.name.startswith("_") and isinstance(getattr(method, f.name), (int, float, str, bool))}
    record = {"method": method.name, "options": options, "schedule": dataclasses.asdict(schedule),
              "layers": {n: list(m.weight.shape) for n, m in prunable_layers(model).items()}}
    return json.loads(json.dumps(record))


def _save(run_dir: Path | None, model: nn.Module, method: PruningMethod, round_index: int,
          state: dict) -> None:
    if run_dir is None:
        return
    refresh_pruned_weights(model)
    payload = {"round": round_index, "state_dict": model.state_dict(), "method_state": method.state_dict(),
               "plan": state["plan"], "log": state["log"], "history": state["history"]}
    (run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
    _write_torch(run_dir / "checkpoints" / f"round_{round_index:02d}.pt", payload)
    _write_text(run_dir / "log.csv", pd.DataFrame(state["log"]).to_csv(index=False))
    _write_text(run_dir / "history.csv", pd.DataFrame(state["history"]).to_csv(index=False))


def _start(run_dir: Path | None, record: dict, resume: bool) -> dict[int, Path]:
    if run_dir is None:
        return {}
    config = run_dir / "config.json"
    if config.exists():
        if not resume:
            raise FileExistsError(f"{run_dir} already holds a run (config.json); resume it or "
                                  "choose another directory")
        diffs = _differences(json.loads(config.read_text()), record)
        if diffs:
            raise ValueError(f"cannot resume {run_dir}: the configuration differs in {'; '.join(diffs)}")
        return _checkpoints(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    _write_text(config, json.dumps(record, indent=2) + "\n")
    return {}


def _train_phase(model, data, config: TrainConfig, method, seed: int, round_index: int,
                 progress: bool) -> list[dict]:
    rows = train(model, data, config, seed=phase_seed(seed, round_index, 1), progress=progress,
                 desc=f"{method.name} round {round_index}", hooks=method)
    return [{"round": round_index, "phase": "all", **row} for row in rows]


def run_method(method: PruningMethod, model: nn.Module, data, schedule: MethodSchedule,
               run_dir: str | Path | None = None, resume: bool = False,
               progress: bool = True) -> MethodResult:
    """Run ``method`` on ``model`` (in place) to ``schedule.target_density`` (module docstring).

    ``data`` has ``.train`` (also the pruning set of data-driven methods), ``.val`` and
    ``.test`` (either may be None: NaN accuracies in the log). log.csv / the returned log has
    pruning.runs' columns (round, density, compression, kept_weights, density_<layer>,
    val_acc, test_acc, wall_s, dead_neurons) plus ``method`` and ``planned_density``.
    """
    run_dir = Path(run_dir) if run_dir is not None else None
    checkpoints = _start(run_dir, _record(method, schedule, model), resume)
    method.attach(model)
    if checkpoints:
        latest = max(checkpoints)
        payload = torch.load(checkpoints[latest], map_location="cpu", weights_only=True)
        load_checkpoint(model, checkpoints[latest])
        method.attach(model)
        method.load_state_dict(payload["method_state"])
        state = {key: payload[key] for key in ("plan", "log", "history")}
        start = latest + 1
    else:
        t0 = time.perf_counter()
        alive, total = prunable_weight_count(model)
        history = _train_phase(model, data, schedule.train, method, schedule.seed, 0, progress)
        plan = method.round_densities(alive / total, schedule.target_density, schedule.rounds)
        state = {"plan": plan, "history": history,
                 "log": [{"method": method.name, "planned_density": alive / total,
                          **_log_row(model, data, 0, time.perf_counter() - t0)}]}
        _save(run_dir, model, method, 0, state)
        start = 1
    for round_index in range(start, len(state["plan"]) + 1):
        t0 = time.perf_counter()
        density = state["plan"][round_index - 1]
        method.prune(model, density, data)
        state["history"] += _train_phase(model, data, schedule.retrain, method, schedule.seed,
                                         round_index, progress)
        state["log"].append({"method": method.name, "planned_density": density,
                             **_log_row(model, data, round_index, time.perf_counter() - t0)})
        _save(run_dir, model, method, round_index, state)
        _say(progress, f"{method.name}: {_summary(state['log'][-1])}")
    refresh_pruned_weights(model)
    if run_dir is not None:
        _write_torch(run_dir / "final.pt", model.state_dict())
    return MethodResult(model=model, log=pd.DataFrame(state["log"]), run_dir=run_dir)
