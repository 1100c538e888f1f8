"""FlipOut (Apostol et al., 2020, "FlipOut: Uncovering Redundant Weights via Sign Flipping").

* Sign-flip counters: after every optimiser step each surviving weight whose sign differs from
  its sign after the previous step (θ_t · θ_{t−1} < 0) adds one flip. A weight at exactly 0
  (pruned) never flips. Counters restart after every pruning event, so a score judges the
  weights by the flips since the last pruning (our reading of "between pruning steps").
* Saliency: score = |θ|^p / (flips + 1), p = 2 by default; ranked globally over every prunable
  tensor (:func:`pruning.methods.base.global_prune`).
* Schedule: every round prunes ``prune_fraction`` (default 50%) of the *remaining* weights,
  d_r = d_0·(1 − f)^r, the last round stopping exactly at the target; with k training epochs
  per round (the pipeline's retrain epochs) the number of rounds, ⌈log(target/d_0)/log(1 − f)⌉,
  is what reaches the target.
* Gradient noise: before every step, each prunable weight tensor's gradient g gets
  ε·λ·‖g‖₂/√n with ε ~ N(0, I) (λ = ``noise_scale``, default 1) from the method's own seeded
  generator; n is the number of surviving weights of the tensor and ‖g‖₂ is taken over them,
  so the noise's standard deviation is λ × the RMS gradient of the survivors. The noise is
  multiplied by the mask (re-masked), so pruned weights get none.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from pruning.magnitude import prunable_layers
from pruning.methods.base import PruningMethod, check_fraction, effective_weights, global_prune, survivors


def count_flips(previous: torch.Tensor, current: torch.Tensor) -> torch.Tensor:
    """1 where the sign changed between two weight snapshots (strictly opposite signs), else 0."""
    return (previous * current < 0).to(torch.int64)


@dataclass
class FlipOut(PruningMethod):
    """FlipOut's saliency, schedule and gradient noise (see module docstring)."""

    name = "flipout"
    seed: int = 0
    p: float = 2.0
    prune_fraction: float = 0.5
    noise_scale: float = 1.0
    flips: dict = field(default_factory=dict, init=False, repr=False)
    _previous: dict = field(default_factory=dict, init=False, repr=False)
    _generator: torch.Generator | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        check_fraction(self.prune_fraction, "prune_fraction")
        if self.prune_fraction == 1.0:
            raise ValueError("prune_fraction must be < 1 (it would prune every weight at once)")
        if not (isinstance(self.p, (int, float)) and self.p > 0):
            raise ValueError(f"p must be a number > 0, got {self.p!r}")
        if not (isinstance(self.noise_scale, (int, float)) and self.noise_scale >= 0):
            raise ValueError(f"noise_scale must be a number >= 0, got {self.noise_scale!r}")

    # -- per-weight state --------------------------------------------------------------------

    def attach(self, model: nn.Module) -> None:
        weights = effective_weights(model)
        self.flips = {n: torch.zeros(w.shape, dtype=torch.int64) for n, w in weights.items()}
        self._previous = {n: w.clone() for n, w in weights.items()}
        self._generator = torch.Generator().manual_seed(int(self.seed))

    def after_step(self, model: nn.Module) -> None:
        for name, weight in effective_weights(model).items():
            self.flips[name] += count_flips(self._previous[name], weight).cpu()
            self._previous[name] = weight.clone()

    def before_step(self, model: nn.Module) -> None:
        if self.noise_scale == 0:
            return
        for module in prunable_layers(model).values():
            param = module.weight_orig if hasattr(module, "weight_orig") else module.weight
            if param.grad is None:
                continue
            keep = survivors(module)
            n = int(keep.sum())
            if n == 0:
                continue
            grad = param.grad
            std = self.noise_scale * float(torch.linalg.vector_norm(grad[keep])) / math.sqrt(n)
            noise = torch.randn(grad.shape, generator=self._generator).to(grad)
            grad.add_(noise * std * keep.to(grad.dtype))

    # -- scores, masks, schedule -------------------------------------------------------------

    def scores(self, model, data=None):
        return {n: w.abs().to(torch.float64) ** self.p / (self.flips[n].to(w.device) + 1)
                for n, w in effective_weights(model).items()}

    def prune(self, model, density, data=None):
        global_prune(model, self.scores(model, data), density)
        for counter in self.flips.values():
            counter.zero_()
        self._previous = effective_weights(model)

    def round_densities(self, current, target, rounds):
        keep = 1.0 - self.prune_fraction
        out = []
        density = current
        while density * keep > target * (1 + 1e-12):
            density *= keep
            out.append(density)
        return out + [float(target)]

    def state_dict(self) -> dict:
        return {"flips": self.flips, "previous": self._previous,
                "generator": self._generator.get_state() if self._generator is not None else None}

    def load_state_dict(self, state: dict) -> None:
        self.flips = {n: t.clone() for n, t in state["flips"].items()}
        self._previous = {n: t.clone() for n, t in state["previous"].items()}
        self._generator = torch.Generator()
        if state["generator"] is not None:
            self._generator.set_state(state["generator"])
