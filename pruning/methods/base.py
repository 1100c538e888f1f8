"""The interface every pruning method implements, and the helpers most of them share.

A method only *scores weights and decides masks*; everything else (training, the schedule of
rounds, checkpoints, export, reports) is shared and lives in :mod:`pruning.pipeline`. A method
is a small class in one file of ``pruning/methods/``; :mod:`pruning.methods` finds it by its
``name`` without any other registration.

Contract (what :func:`pruning.pipeline.run_method` relies on):

* ``attach(model)`` is called once before the method's first training phase on ``model`` (and
  again after a resume, before ``load_state_dict``); it sets up per-weight state.
* ``before_step`` / ``after_step`` run inside every optimiser step of every training phase
  (see :class:`pruning.train.StepHooks`).
* ``prune(model, density, data)`` installs ``torch.nn.utils.prune`` masks so that, as nearly as
  the method allows, ``density`` of all prunable weights survive (absolute: a fraction of all
  weights, not of the survivors). It never revives a pruned weight.
* ``round_densities(current, target, rounds)`` is the method's schedule: the density after
  each round on the way from ``current`` to ``target`` (last entry ``target``).
* ``state_dict()`` / ``load_state_dict()`` hold whatever a resumed run needs (tensors and
  plain values only, so ``torch.load(weights_only=True)`` reads it).

Determinism: a method that draws random numbers owns a ``torch.Generator`` seeded from its
``seed`` field, so the same seed gives the same masks.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import nn
from torch.nn.utils import prune

from pruning.magnitude import _effective_weight, _top_k_mask, prunable_layers
from pruning.train import StepHooks

__all__ = ["PruningMethod", "check_fraction", "effective_weights", "geometric_densities", "global_prune",
           "install_masks",
           "prunable_weight_count", "survivors"]


def survivors(module: nn.Module) -> torch.Tensor:
    """Boolean tensor, True where a weight survives (mask 1; all True without a mask)."""
    if hasattr(module, "weight_mask"):
        return module.weight_mask.bool()
    return torch.ones_like(module.weight, dtype=torch.bool)


def prunable_weight_count(model: nn.Module) -> tuple[int, int]:
    """(surviving, total) weights over every Linear/Conv2d layer of ``model``."""
    layers = prunable_layers(model).values()
    return (sum(int(survivors(m).sum()) for m in layers),
            sum(m.weight.numel() for m in layers))


def install_masks(model: nn.Module, keep: dict[str, torch.Tensor]) -> None:
    """Install boolean ``keep`` masks ({layer: tensor shaped like its weight}), combined with
    each layer's existing mask (AND), through ``prune.custom_from_mask``."""
    layers = prunable_layers(model)
    for name, mask in keep.items():
        module = layers[name]
        combined = mask.bool() & survivors(module)
        prune.custom_from_mask(module, name="weight", mask=combined.to(module.weight.dtype))


def global_prune(model: nn.Module, scores: dict[str, torch.Tensor], density: float) -> None:
    """Keep the ``round(density × total)`` surviving weights of highest score over all
    layers together (one global ranking, as FlipOut and global magnitude pruning do).

    ``scores`` must cover every prunable layer with non-negative values. Pruned weights rank
    below every survivor, so the budget goes to survivors first; ties break by position in
    the concatenation of the layers (model order, row-major), lowest first.
    """
    layers = prunable_layers(model)
    missing = [n for n in layers if n not in scores]
    if missing:
        raise ValueError(f"scores lack layer(s) {missing}")
    _, total = prunable_weight_count(model)
    k = round(float(density) * total)
    flat = torch.cat([torch.where(survivors(m), scores[n].detach().to(torch.float64),
                                  torch.full(m.weight.shape, -1.0, dtype=torch.float64)).reshape(-1)
                      for n, m in layers.items()])
    keep = _top_k_mask(flat, k)
    masks, start = {}, 0
    for name, module in layers.items():
        n = module.weight.numel()
        masks[name] = keep[start:start + n].reshape(module.weight.shape)
        start += n
    install_masks(model, masks)


def geometric_densities(current: float, target: float, rounds: int) -> list[float]:
    """Han's schedule between two densities: d_r = current·(target/current)^(r/R), r = 1..R."""
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    if target >= current:
        return [float(target)]
    return [current * (target / current) ** (r / rounds) for r in range(1, rounds)] + [float(target)]


class PruningMethod(StepHooks):
    """Base class of the pruning methods (see the module docstring for the contract).

    Subclasses set ``name`` and implement :meth:`scores` (and override :meth:`prune` when the
    method does not keep the globally highest scores). The default hooks do nothing, the
    default schedule is geometric, the default state is empty.
    """

    name: ClassVar[str] = ""

    def attach(self, model: nn.Module) -> None:
        """Set up per-weight state for ``model`` (default: none)."""

    def scores(self, model: nn.Module, data=None) -> dict[str, torch.Tensor]:
        """{layer: importance}, each shaped like the layer's weight; higher = keep."""
        raise NotImplementedError

    def prune(self, model: nn.Module, density: float, data=None) -> None:
        """Default: global ranking of :meth:`scores` (:func:`global_prune`)."""
        global_prune(model, self.scores(model, data), density)

    def round_densities(self, current: float, target: float, rounds: int) -> list[float]:
        return geometric_densities(current, target, rounds)

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` returned (default: nothing to restore)."""


def effective_weights(model: nn.Module) -> dict[str, torch.Tensor]:
    """{layer: weight_orig·mask (or weight)}, detached, for every prunable layer."""
    return {n: _effective_weight(m) for n, m in prunable_layers(model).items()}


def check_fraction(value: float, what: str, low_open: bool = True) -> float:
    """``value`` as a float in (0, 1] (or [0, 1] with ``low_open=False``); ValueError naming
    ``what`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value) \
            or not (0.0 < value <= 1.0 if low_open else 0.0 <= value <= 1.0):
        bounds = "(0, 1]" if low_open else "[0, 1]"
        raise ValueError(f"{what} must be a number in {bounds}, got {value!r}")
    return float(value)
