"""Han et al. 2015 behind the method interface: thresholds = q × std of each layer.

Han §3: a layer's threshold is a quality parameter times the standard deviation of its
weights; one common q is found for the round's density (:func:`pruning.han.quality_for_density`)
and every layer loses its weights below q·std_l (:func:`pruning.han.prune_by_threshold`).
The rest of Han's method (Eq. 2 dropout, dead neurons, per-layer profiles, separate conv/FC
retraining) stays in :func:`pruning.runs.han_prune`; this class is the part a comparison of
methods needs: the scores and the masks.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from pruning.han import _surviving_std, prune_by_threshold, quality_for_density, std_thresholds
from pruning.magnitude import prunable_layers
from pruning.methods.base import PruningMethod, effective_weights


@dataclass
class HanMethod(PruningMethod):
    """score = |w| / std_l (the quantity Han's per-layer threshold q·std_l is compared with);
    masks by a common q reaching the density (exact unless magnitudes tie)."""

    name = "han"
    seed: int = 0

    def scores(self, model, data=None):
        stds = {n: _surviving_std(m) for n, m in prunable_layers(model).items()}
        return {n: w.abs() / stds[n] if stds[n] > 0 else torch.zeros_like(w)
                for n, w in effective_weights(model).items()}

    def prune(self, model, density, data=None):
        quality = quality_for_density(model, density)
        prune_by_threshold(model, std_thresholds(model, quality))
