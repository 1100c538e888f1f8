"""Global magnitude pruning: keep the largest |w| over all layers together.

The baseline FlipOut is compared with (Apostol et al. 2020 compare against global magnitude
pruning): score = |w|, one ranking over every prunable tensor (:func:`global_prune`).
"""

from __future__ import annotations

from dataclasses import dataclass

from pruning.methods.base import PruningMethod, effective_weights


@dataclass
class GlobalMagnitude(PruningMethod):
    """score_i = |θ_i|, ranked globally. ``seed`` is unused (the method draws nothing)."""

    name = "magnitude"
    seed: int = 0

    def scores(self, model, data=None):
        return {n: w.abs() for n, w in effective_weights(model).items()}
