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


def _work_dtype(tensor: torch.Tensor) -> torch.dtype:
    # float32 holds fp16/bf16 values exactly, so the order is preserved; fp64 stays fp64.
    return torch.float64 if tensor.dtype == torch.float64 else torch.float32


def _kth_largest_in_place(values: np.ndarray, k: int):
    """The k-th largest entry of the 1-D ``values`` (1 <= k < n); ``values`` is left partitioned.
    O(n): one selection instead of a sort (a stable sort of AlexNet fc1's 37.7M weights takes
    seconds on a small CPU)."""
    n = values.size
    values.partition(n - k)  # the k-th largest is the (n-k)-th smallest (0-based)
    return values[n - k]


def _keep_mask(values: np.ndarray, threshold, k: int) -> np.ndarray:
    """Boolean mask of the ``k`` entries of ``values`` above ``threshold`` (its k-th largest),
    ties at the threshold broken by flat index, lowest first, so the result is deterministic."""
    keep = values >= threshold
    if int(np.count_nonzero(keep)) == k:  # the usual case: no tie at the threshold
        return keep
    keep = values > threshold
    missing = k - int(np.count_nonzero(keep))
    keep[np.flatnonzero(values == threshold)[:missing]] = True
    return keep


def _top_k_mask(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Boolean mask (same shape as ``scores``) selecting exactly ``k`` largest entries;
    ties at the threshold are broken by flat (row-major) index, lowest first."""
    flat = scores.reshape(-1)
    n = flat.numel()
    if k <= 0:
        return torch.zeros_like(scores, dtype=torch.bool)
    if k >= n:
        return torch.ones_like(scores, dtype=torch.bool)
    values = flat.detach().to(device="cpu", dtype=_work_dtype(flat)).numpy()
    threshold = _kth_largest_in_place(values.copy(), k)
    return torch.from_numpy(_keep_mask(values, threshold, k)).reshape(scores.shape).to(scores.device)


def _check_density(density: float) -> float:
    if isinstance(density, bool) or not isinstance(density, Real):
        raise ValueError(f"density must be a number in [0, 1], got {density!r}")
    value = float(density)
    if math.isnan(value) or not 0.0 <= value <= 1.0:
        raise ValueError(f"density must be in [0, 1], got {density!r}")
    return value


def _weight_to_prune(module: nn.Module) -> torch.Tensor:
    weight = getattr(module, "weight", None)
    if not isinstance(weight, torch.Tensor):
        raise TypeError(f"{type(module).__name__} has no weight tensor to prune")
    return weight


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
    weight = _weight_to_prune(module)
    n = weight.numel()
    k = round(value * n)
    scores = _effective_weight(module).abs()
    if hasattr(module, "weight_mask"):
        # Pruned entries are 0 in the effective weight, like genuine zero weights; rank
        # them strictly last (-1) so the budget k goes to survivors first.
        scores = torch.where(module.weight_mask.bool(), scores, torch.full_like(scores, -1.0))
    mask = _top_k_mask(scores, k).to(dtype=weight.dtype)
    prune.custom_from_mask(module, name="weight", mask=mask)


def zero_to_density(module: nn.Module, density: float) -> None:
    """Magnitude-prune an unpruned ``module`` to ``density`` by writing the zeros, without
    installing a ``torch.nn.utils.prune`` mask.

    The kept weights are exactly those :func:`prune_to_density` keeps (same ranking, same
    ties), but ``module.weight`` becomes a fresh parameter holding the zeros, so there is no
    ``weight_orig``/``weight_mask`` and no forward pre-hook. This is for throwaway models that
    only feed a workload (a density profile on the simulator's side): torch's
    reparametrisation allocates three dense-sized tensors per layer and multiplies the mask
    in again on every forward pass, about 3 s on AlexNet's 61 M weights, and nothing trains
    the result. The old weight tensor is left untouched (a dense trace may share it), and a
    kept weight that is exactly 0 is indistinguishable from a pruned one afterwards.

    Raises ValueError naming the value if ``density`` is not in [0, 1]; ValueError if the
    module is already pruned through ``torch.nn.utils.prune``; TypeError if it has no weight.
    """
    value = _check_density(density)
    weight = _weight_to_prune(module)
    if hasattr(module, "weight_mask"):
        raise ValueError(f"{type(module).__name__} already carries a torch.nn.utils.prune mask; "
                         "use prune_to_density")
    dense = weight.detach()
    n, k = dense.numel(), round(value * dense.numel())
    if k <= 0 or k >= n:
        kept = dense.clone() if k >= n else torch.zeros_like(dense)
    else:
        # One scratch buffer does all the work (magnitudes, selection, then the pruned weights):
        # on AlexNet each fresh dense-sized buffer costs more in page faults than the selection.
        work = dense.to(device="cpu", dtype=_work_dtype(dense)).reshape(-1)
        scratch = work.abs().numpy()
        threshold = _kth_largest_in_place(scratch, k)
        keep = _keep_mask(np.abs(work.numpy(), out=scratch), threshold, k)
        np.multiply(work.numpy(), keep, out=scratch)
        kept = torch.from_numpy(scratch).reshape(dense.shape).to(device=dense.device, dtype=dense.dtype)
    module.weight = nn.Parameter(kept, requires_grad=weight.requires_grad)


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
