"""Magnitude pruning of single layers (Han et al. 2015, Section 3).

Han prunes the connections whose weight magnitude falls below a threshold. Here the
threshold is set implicitly by a target density: keep the ``round(density * n)`` largest
weights. That is the form the published tables give (Weights% kept per layer, Han
Tables 2-5), so a profile can be reproduced exactly without knowing Han's quality
parameter.

Pruning goes through ``torch.nn.utils.prune``, so a pruned layer carries
``weight_orig`` (the dense parameter, still trainable) and ``weight_mask`` (a buffer),
and ``layer.weight`` is ``weight_orig * weight_mask``. ``make_permanent`` folds the
masks in. This module knows nothing about hardware.
"""

from __future__ import annotations

import math
from numbers import Real

import numpy as np
import torch
from torch import nn
from torch.nn.utils import prune

_PRUNABLE = (nn.Linear, nn.Conv2d)


def prunable_layers(model: nn.Module) -> dict[str, nn.Module]:
    """Every Linear and Conv2d module of ``model``, keyed by its ``named_modules()`` name,
    in model order (for the zoo models these are Han's layer names: fc1, conv2, ...)."""
    return {name: m for name, m in model.named_modules() if isinstance(m, _PRUNABLE)}


def _effective_weight(module: nn.Module) -> torch.Tensor:
    # Recompute orig*mask rather than trusting module.weight: that attribute is only
    # refreshed by the forward pre-hook, so it is stale after an edit of weight_orig.
    if hasattr(module, "weight_orig") and hasattr(module, "weight_mask"):
        return module.weight_orig.detach() * module.weight_mask
    return module.weight.detach()


def _top_k_mask(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Boolean mask (same shape as ``scores``) selecting exactly ``k`` largest entries.

    Ties at the threshold are broken by flat (row-major) index, lowest first, so the
    result is deterministic. O(n): one selection for the threshold instead of a sort
    (a stable sort of AlexNet fc1's 37.7M weights takes seconds on a small CPU).
    """
    flat = scores.reshape(-1)
    n = flat.numel()
    if k <= 0:
        return torch.zeros_like(scores, dtype=torch.bool)
    if k >= n:
        return torch.ones_like(scores, dtype=torch.bool)
    # float32 holds fp16/bf16 values exactly, so the order is preserved; fp64 stays fp64.
    work_dtype = torch.float64 if flat.dtype == torch.float64 else torch.float32
    values = flat.detach().to(device="cpu", dtype=work_dtype).numpy()
    # The k-th largest value is the (n-k)-th smallest (0-based) in ascending order.
    threshold = np.partition(values, n - k)[n - k]
    keep = values > threshold
    missing = k - int(keep.sum())
    tied = np.flatnonzero(values == threshold)[:missing]
    keep[tied] = True
    return torch.from_numpy(keep).reshape(scores.shape).to(scores.device)


def _check_density(density: float) -> float:
    if isinstance(density, bool) or not isinstance(density, Real):
        raise ValueError(f"density must be a number in [0, 1], got {density!r}")
    value = float(density)
    if math.isnan(value) or not 0.0 <= value <= 1.0:
        raise ValueError(f"density must be in [0, 1], got {density!r}")
    return value


def prune_to_density(module: nn.Module, density: float) -> None:
    """Prune ``module.weight`` by magnitude so that ``round(density * n)`` weights survive.

    n = ``module.weight.numel()``; ``round`` is Python's (half to even). The kept weights
    are those of largest ``|w|``; ties broken deterministically (lowest flat index kept).
    The mask is installed with ``torch.nn.utils.prune.custom_from_mask``, so afterwards
    ``module.weight_orig`` and ``module.weight_mask`` exist.

    Density is absolute (a fraction of all n weights), not relative to what is left. If
    the module is already pruned, the new mask is computed on the current effective
    weight, with already-pruned entries ranked below every surviving one, and combined
    with the old mask by torch's PruningContainer; the result keeps
    ``min(round(density * n), previously kept)`` weights (pruning never revives a weight).

    Raises ValueError naming the value if ``density`` is not in [0, 1]; TypeError if the
    module has no ``weight`` tensor.
    """
    value = _check_density(density)
    weight = getattr(module, "weight", None)
    if not isinstance(weight, torch.Tensor):
        raise TypeError(f"{type(module).__name__} has no weight tensor to prune")
    n = weight.numel()
    k = round(value * n)
    scores = _effective_weight(module).abs()
    if hasattr(module, "weight_mask"):
        # Pruned entries are 0 in the effective weight, like genuine zero weights; rank
        # them strictly last (-1) so the budget k goes to survivors first.
        scores = torch.where(module.weight_mask.bool(), scores, torch.full_like(scores, -1.0))
    mask = _top_k_mask(scores, k).to(dtype=weight.dtype)
    prune.custom_from_mask(module, name="weight", mask=mask)


def weight_density(module: nn.Module) -> float:
    """Fraction of non-zero entries of the effective weight (``weight_orig * weight_mask``
    when pruned, else ``weight``). Zero weights count as pruned whether masked or not."""
    weight = _effective_weight(module)
    n = weight.numel()
    return float(torch.count_nonzero(weight).item()) / n if n else 0.0


def make_permanent(model: nn.Module) -> None:
    """Fold every pruning mask in ``model`` into its parameter (``prune.remove``).

    Afterwards pruned layers hold a plain ``weight`` parameter with zeros where the mask
    was 0, and no ``weight_orig``/``weight_mask``. Unpruned modules are left as they are.
    """
    for module in model.modules():
        # Collect names first: prune.remove edits the hook dict we would be iterating.
        names = [hook._tensor_name for hook in module._forward_pre_hooks.values()
                 if isinstance(hook, prune.BasePruningMethod)]
        for name in names:
            prune.remove(module, name)
