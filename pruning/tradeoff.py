"""Han et al. 2015 Fig. 5: accuracy against parameters pruned away, five ways.

1. ``L1 w/o retrain``  — train with L1, prune to each fraction, no retraining;
2. ``L2 w/o retrain``  — the same with L2;
3. ``L1 w/ retrain``   — prune the L1-trained model to each fraction (one shot), retrain with L1;
4. ``L2 w/ retrain``   — the same with L2;
5. ``L2 iterative``    — prune the L2-trained model to the fractions in increasing order, each
   step starting from the previous step's retrained model (Han §3.4: iterative beats one-shot).

Pruning uses one common quality parameter over all layers (threshold = q × the layer's weight
std, Han §3), so every curve prunes by the same rule. Retraining keeps the surviving weights at
the retraining learning rate. Each retraining gets the same epochs, so a one-shot point and the
iterative point at the same fraction differ in schedule, not in the last phase's budget.
"""

from __future__ import annotations

import dataclasses

import pandas as pd
from torch import nn

from pruning.han import copy_model, prune_by_threshold, quality_for_density, std_thresholds
from pruning.train import TrainConfig, evaluate, train

__all__ = ["METHODS", "prune_uniform", "tradeoff"]

METHODS = ("L1 w/o retrain", "L2 w/o retrain", "L1 w/ retrain", "L2 w/ retrain", "L2 iterative")


def prune_uniform(model: nn.Module, density: float) -> float:
    """Prune all prunable layers with one common quality q to an overall ``density``; return q."""
    quality = quality_for_density(model, density)
    prune_by_threshold(model, std_thresholds(model, quality))
    return quality


def tradeoff(build, data, fractions: list[float], train_config: TrainConfig, retrain_config: TrainConfig,
             seed: int = 0, progress: bool = True, l1_strength: float | None = None) -> pd.DataFrame:
    """Run the five curves; ``build()`` returns a fresh untrained model.

    ``l1_strength`` replaces the configs' ``reg_strength`` for the L1 runs (training and
    retraining); None keeps one strength for both. The same λ is not comparable across the two
    penalties (L1's gradient λ·sign(w) does not shrink with the weight), so a strength good for
    L2 can sparsify an L1 network while it trains.

    Returns columns method, pruned_fraction, accuracy (test set), with one row per method at
    fraction 0 holding the dense accuracy the curve starts from."""
    fractions = sorted(fractions)
    rows = []
    trained = {}
    def penalised(config: TrainConfig, reg: str) -> TrainConfig:
        strength = l1_strength if reg == "l1" and l1_strength is not None else config.reg_strength
        return dataclasses.replace(config, regularization=reg, reg_strength=strength)

    for reg in ("l1", "l2"):
        model = build()
        config = penalised(train_config, reg)
        train(model, data, config, seed=seed, progress=progress, desc=f"train ({reg.upper()})")
        trained[reg] = model
    for reg in ("l1", "l2"):
        dense_accuracy = evaluate(trained[reg], data.test)[1]
        retrain = penalised(retrain_config, reg)
        for retrained in (False, True):
            method = f"{reg.upper()} w/{'' if retrained else 'o'} retrain"
            rows.append({"method": method, "pruned_fraction": 0.0, "accuracy": dense_accuracy})
            for fraction in fractions:
                model = copy_model(trained[reg])
                prune_uniform(model, 1.0 - fraction)
                if retrained:
                    train(model, data, retrain, seed=seed, progress=progress,
                          desc=f"{method} {100 * fraction:.0f}%")
                rows.append({"method": method, "pruned_fraction": fraction,
                             "accuracy": evaluate(model, data.test)[1]})
    model = copy_model(trained["l2"])
    rows.append({"method": "L2 iterative", "pruned_fraction": 0.0, "accuracy": evaluate(model, data.test)[1]})
    retrain = dataclasses.replace(retrain_config, regularization="l2")
    for fraction in fractions:
        prune_uniform(model, 1.0 - fraction)
        train(model, data, retrain, seed=seed, progress=progress, desc=f"L2 iterative {100 * fraction:.0f}%")
        rows.append({"method": "L2 iterative", "pruned_fraction": fraction,
                     "accuracy": evaluate(model, data.test)[1]})
    order = {method: index for index, method in enumerate(METHODS)}
    table = pd.DataFrame(rows)
    return table.sort_values(["method", "pruned_fraction"], key=lambda c: c.map(order) if c.name == "method" else c,
                             kind="stable").reset_index(drop=True)
