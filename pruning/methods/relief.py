"""NN relief (Dekhovich et al., 2021, "Neural network relief: a pruning algorithm based on
neural activity"): importance from the activations on a pruning set.

For an FC neuron j with inputs x_i over the N images of the pruning set (DESIGN.md §2):

    s_ij = mean_n |w_ij·x_ni| / S_j,   S_j = Σ_k mean_n |w_kj·x_nk| + |b_j|,   bias share |b_j|/S_j.

For a conv output channel j, the unit is the kernel K_ij from input channel i, and
mean_n ‖|K_ij| ∗ |x_ni|‖₁ over the output map replaces mean_n |w_ij·x_ni| (the bias then
contributes |b_j| at each of the P output positions, P·|b_j|). Since every term is
non-negative, ‖|K| ∗ |x|‖₁ = Σ_{u,v} |K[u,v]|·(Σ over the positions that tap offset (u,v) of
|x|), so one pass of ``unfold`` over the pruning set gives every kernel's score.

Each neuron keeps the smallest set of its highest-scoring units whose scores, plus the bias
share (the bias is never pruned), sum to at least α (α_fc = 0.95, α_conv = 0.9); units with
score 0 are never kept. Neurons that never activate on the pruning set (every input they feed
to the next layer is zero for every image) lose all their incoming weights. Iterative prune
and retrain is the pipeline's business (:mod:`pruning.pipeline`).

To reach a requested density, the α's move together as powers: α_l(c) = α_l^c, c ≥ 0 found by
bisection (c = 1 gives the paper's α's, c = 0 keeps every unit with a positive score). A power
never reaches 0, so every neuron whose bias does not already cover α keeps at least its best
unit: a linear scaling 1 − c·(1 − α_l) reaches α_conv = 0 first and removed every kernel of
LeNet-5's conv1 on the way to 90% (measured: the network then predicts one class). The kept
count cannot always hit the target exactly (each neuron keeps whole units), so the density
reached is the closest one not above the target that the per-neuron rule can produce.

Two options for very high sparsity (``benchmarks/relief_high_sparsity.py`` measures them).
``backward`` is on by default, since it is part of the published algorithm (below); ``alpha_out``
is off:

* ``alpha_out``: the output layer's own α (else α_fc / α_conv by its kind). α = 1 keeps every
  unit of positive score at any c (1^c = 1), i.e. leaves the output layer unpruned except for
  inputs that carry nothing. The authors' code (github.com/adekhovich/NNrelief,
  ``lenet_fc_pruning``) prunes the output layer with α_fc like any FC layer; a separate α is our
  option, motivated by the budget: at 99% one α for all FC layers leaves LeNet-300-100's 10
  output neurons under 2 inputs each (BENCHMARKS.md).
* ``backward``: neurons that no surviving weight of the next layer reads lose their incoming
  weights too (the authors' ``lenet_backward_pruning`` / ``vgg_backward_pruning``, which their
  ``lenet_pruning`` runs after every pruning pass, so this is part of the published algorithm;
  Han et al. 2015 §3.3 likewise remove neurons with no outputs). The network's outputs do not
  change (nothing reads those neurons); the weights freed go back to the budget: the bisection
  on c counts the kept weights *after* backward removal. Without it, at 98% on LeNet-300-100
  most fc1 neurons keep inputs that nothing reads (307 of 400 hidden neurons on the test's
  synthetic data), and the budget they hold is lost to the rest of the network.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from pruning.han import _links
from pruning.magnitude import prunable_layers
from pruning.observe import observe_inputs
from pruning.methods.base import (PruningMethod, check_fraction, effective_weights, install_masks,
                                  prunable_weight_count, survivors)

__all__ = ["NNRelief", "activation_statistics", "relief_scores", "sample_inputs"]


def sample_inputs(dataset, count: int) -> torch.Tensor:
    """The first ``count`` inputs of ``dataset`` (the pruning set), stacked."""
    if hasattr(dataset, "tensors"):
        return dataset.tensors[0][:count]
    return torch.stack([dataset[i][0] for i in range(min(count, len(dataset)))])


def activation_statistics(model: nn.Module, inputs: torch.Tensor, batch_size: int = 500
                          ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], dict[str, int]]:
    """Per prunable layer, over the images of ``inputs`` (eval mode, no gradient):

    * ``mean_abs``: Linear — mean_n |x_ni| per input (shape (in,)); Conv2d — per input channel
      and kernel offset, mean_n of Σ over output positions of the |x| tapped at that offset
      (shape (C_in, k_h, k_w)).
    * ``active``: per input feature (Linear) or channel (Conv2d), whether it is non-zero for
      at least one image.
    * ``positions``: output positions P (1 for Linear).
    """
    layers = prunable_layers(model)
    sums: dict[str, torch.Tensor] = {}
    active: dict[str, torch.Tensor] = {}
    positions: dict[str, int] = {}

    def record(name: str, module: nn.Module, x: torch.Tensor) -> None:
        x = x.abs().to(torch.float64)
        if isinstance(module, nn.Conv2d):
            if module.groups != 1:
                raise ValueError(f"relief: grouped convolution '{name}' is not supported")
            cols = F.unfold(x, module.kernel_size, dilation=module.dilation, padding=module.padding,
                            stride=module.stride)
            positions[name] = cols.shape[-1]
            part = cols.sum(dim=(0, 2)).reshape(module.weight.shape[1:])
            nonzero = (x != 0).any(dim=(0, 2, 3))
        else:
            positions[name] = 1
            part = x.sum(dim=0)
            nonzero = (x != 0).any(dim=0)
        sums[name] = sums.get(name, 0) + part
        active[name] = active.get(name, torch.zeros_like(nonzero)) | nonzero

    observe_inputs(model, inputs, record, batch_size)
    means = {n: sums[n] / len(inputs) for n in layers}
    return means, active, positions


def relief_scores(model: nn.Module, mean_abs: dict[str, torch.Tensor], positions: dict[str, int]
                  ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """{layer: (unit scores (out, units), bias share (out,))}: the s_ij and |b_j|/S_j of the
    module docstring. Units are inputs (Linear) or kernels (Conv2d, units = C_in). A neuron
    with S_j = 0 gets all-zero scores and bias share."""
    out = {}
    weights = effective_weights(model)
    for name, module in prunable_layers(model).items():
        weight = weights[name].to(torch.float64).abs()
        stats = mean_abs[name]
        if weight.dim() == 4:
            contrib = (weight * stats.unsqueeze(0)).sum(dim=(2, 3))
        else:
            contrib = weight * stats.unsqueeze(0)
        bias = module.bias.detach().abs().to(torch.float64) * positions[name] if module.bias is not None \
            else torch.zeros(weight.shape[0], dtype=torch.float64)
        total = contrib.sum(dim=1) + bias
        safe = torch.where(total > 0, total, torch.ones_like(total))
        scale = torch.where(total > 0, 1.0 / safe, torch.zeros_like(total))
        out[name] = (contrib * scale.unsqueeze(1), bias * scale)
    return out


def _remove_unread(model: nn.Module, masks: dict[str, torch.Tensor]) -> None:
    """Backward pruning in mask space (module docstring, ``backward``): for every pair of
    consecutive layers A → B, last pair first so that removals cascade towards the input,
    the neurons of A that no kept weight of B reads lose every incoming weight. In place;
    a layer without an entry in ``masks`` keeps its current survivors."""
    layers = prunable_layers(model)
    for link in reversed(_links(model)):
        a_mask = masks.get(link.a, survivors(layers[link.a]))
        b_mask = masks.get(link.b, survivors(layers[link.b]))
        n_out = a_mask.shape[0]
        if b_mask.dim() == 4:
            read = b_mask.any(dim=(0, 2, 3))
        else:
            read = b_mask.reshape(b_mask.shape[0], n_out, link.block).any(dim=2).any(dim=0)
        masks[link.a] = a_mask & read.reshape(-1, *([1] * (a_mask.dim() - 1)))


def _unit_mask(module: nn.Module) -> torch.Tensor:
    """(out, units) surviving units: any weight of the unit (a kernel for Conv2d) survives."""
    keep = survivors(module)
    return keep.flatten(2).any(dim=2) if keep.dim() == 4 else keep


@dataclass
class _Ranked:
    """One layer's units sorted per neuron (descending score) with cumulative sums."""
    order: torch.Tensor      # (out, units) unit indices, best first
    cumulative: torch.Tensor  # (out, units) running sum of the sorted scores
    positive: torch.Tensor   # (out,) number of units with score > 0
    bias_share: torch.Tensor  # (out,)
    weight_per_unit: int     # weights per unit (k_h·k_w for Conv2d, 1 for Linear)


def _rank(scores: torch.Tensor, bias_share: torch.Tensor, unit_weights: int) -> _Ranked:
    values, order = torch.sort(scores, dim=1, descending=True, stable=True)
    return _Ranked(order, values.cumsum(dim=1), (scores > 0).sum(dim=1), bias_share, unit_weights)


def _kept_counts(ranked: _Ranked, alpha: float) -> torch.Tensor:
    """Per neuron, the fewest best units whose scores plus the bias share reach α."""
    need = alpha - ranked.bias_share
    short = (ranked.cumulative < need.unsqueeze(1) - 1e-12).sum(dim=1) + 1
    counts = torch.where(need <= 0, torch.zeros_like(short), short)
    return torch.minimum(counts, ranked.positive)


@dataclass
class NNRelief(PruningMethod):
    """NN relief's scores and per-neuron thresholds (see module docstring).

    ``samples``: images of the pruning set (the first ones of ``data.train``). ``alpha_out``
    (None: α_fc / α_conv) and ``backward``: see the module docstring.
    """

    name = "relief"
    seed: int = 0
    alpha_fc: float = 0.95
    alpha_conv: float = 0.9
    samples: int = 1000
    remove_dead: bool = True
    alpha_out: float | None = None
    backward: bool = True

    def __post_init__(self) -> None:
        check_fraction(self.alpha_fc, "alpha_fc", low_open=False)
        check_fraction(self.alpha_conv, "alpha_conv", low_open=False)
        if self.alpha_out is not None:
            check_fraction(self.alpha_out, "alpha_out", low_open=False)
        if isinstance(self.samples, bool) or not isinstance(self.samples, int) or self.samples < 1:
            raise ValueError(f"samples must be an int >= 1, got {self.samples!r}")

    def _statistics(self, model, data):
        if data is None:
            raise ValueError("relief needs data: its scores come from activations on a pruning set")
        return activation_statistics(model, sample_inputs(data.train, self.samples))

    def scores(self, model, data=None):
        """Per weight, its unit's score s_ij (a conv kernel's score on each of its weights)."""
        mean_abs, _, positions = self._statistics(model, data)
        every = relief_scores(model, mean_abs, positions)
        out = {}
        for name, module in prunable_layers(model).items():
            unit_scores, _ = every[name]
            shape = module.weight.shape
            out[name] = unit_scores.reshape(*unit_scores.shape, *([1] * (len(shape) - 2))).expand(shape)
        return out

    def _alpha(self, name: str, module: nn.Module, output_layer: str, c: float) -> float:
        if name == output_layer and self.alpha_out is not None:
            base = self.alpha_out
        else:
            base = self.alpha_conv if isinstance(module, nn.Conv2d) else self.alpha_fc
        return base ** c

    def remove_never_active(self, model: nn.Module, active: dict[str, torch.Tensor]) -> dict[str, list[int]]:
        """Mask every incoming weight of the neurons whose outputs are zero on the whole
        pruning set (seen as inputs of the next layer). Returns {layer: removed neurons}."""
        layers = prunable_layers(model)
        removed, masks = {}, {}
        for link in _links(model):
            fed = active[link.b].reshape(-1, link.block).any(dim=1)
            dead = torch.nonzero(~fed).flatten()
            if len(dead):
                keep = torch.ones_like(survivors(layers[link.a]))
                keep[dead] = False
                masks[link.a] = keep
                removed[link.a] = dead.tolist()
        install_masks(model, masks)
        return removed

    def _masks(self, model, ranked: dict[str, _Ranked], c: float) -> dict[str, torch.Tensor]:
        """Per layer, the kept weights at scale c (after backward removal with ``backward``)."""
        layers = prunable_layers(model)
        output_layer = list(layers)[-1]
        masks = {}
        for name, module in layers.items():
            r = ranked[name]
            counts = _kept_counts(r, self._alpha(name, module, output_layer, c))
            columns = torch.arange(r.order.shape[1]).unsqueeze(0)
            units = torch.zeros_like(r.order, dtype=torch.bool)
            units.scatter_(1, r.order, columns < counts.unsqueeze(1))
            shape = module.weight.shape
            masks[name] = units.reshape(*units.shape, *([1] * (len(shape) - 2))).expand(shape) & survivors(module)
        if self.backward:
            _remove_unread(model, masks)
        return masks

    def _kept(self, model, ranked, c) -> int:
        """Weights kept at scale c: from the per-neuron unit counts (units ranked are survivors
        or score-0 units, never kept), or, with ``backward``, from the masks themselves."""
        if self.backward:
            return sum(int(mask.sum()) for mask in self._masks(model, ranked, c).values())
        layers = prunable_layers(model)
        output_layer = list(layers)[-1]
        return sum(int(_kept_counts(ranked[name], self._alpha(name, module, output_layer, c)).sum())
                   * ranked[name].weight_per_unit for name, module in layers.items())

    def prune(self, model, density, data=None):
        """Remove never-active neurons, then prune with the α's scaled to reach ``density``
        (``density`` None: the paper's α's as given)."""
        mean_abs, active, positions = self._statistics(model, data)
        if self.remove_dead:
            self.remove_never_active(model, active)
        ranked = {}
        every = relief_scores(model, mean_abs, positions)
        for name, module in prunable_layers(model).items():
            unit_scores, bias_share = every[name]
            unit_scores = unit_scores * _unit_mask(module)
            per_unit = module.weight[0, 0].numel() if module.weight.dim() == 4 else 1
            ranked[name] = _rank(unit_scores, bias_share, per_unit)
        if density is None:
            c = 1.0
        else:
            _, total = prunable_weight_count(model)
            target = round(float(density) * total)
            c = self._scale_for(model, ranked, target)
        install_masks(model, self._masks(model, ranked, c))

    def _scale_for(self, model, ranked, target: int) -> float:
        """Smallest c (relative precision ~1e-18) whose kept count is <= target (bisection;
        kept falls with c); the largest c tried is 2^20 (then every α is ~0)."""
        low, high = 0.0, 1.0
        if self._kept(model, ranked, low) <= target:
            return low
        while self._kept(model, ranked, high) > target and high < 2.0 ** 20:
            low, high = high, high * 2.0
        for _ in range(60):
            middle = 0.5 * (low + high)
            if self._kept(model, ranked, middle) > target:
                low = middle
            else:
                high = middle
        return high
