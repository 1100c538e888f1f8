"""Every part of Han et al.'s pruning method (NIPS 2015, "Learning both Weights and
Connections for Efficient Neural Networks"), as plain functions on ``nn.Module``s.

- Thresholds (Section 3): a layer's threshold is a quality parameter times the standard
  deviation of the layer's weights (``std_thresholds``, ``prune_by_threshold``), with a
  bisection for the common quality that reaches an overall density
  (``quality_for_density``).
- Dropout during retraining (Section 3.1, Eq. 1-2): D_r = D_o·sqrt(C_ir / C_io)
  (``dropout_rate``, ``adjust_dropout``).
- Dead neurons (Section 3.4): neurons with no inputs or no outputs are removed
  (``find_dead_neurons``, ``remove_dead_neurons``), exactly: the network's outputs do not
  change.
- Sensitivity (Section 4, Fig. 6): accuracy vs. pruned fraction per layer, without
  retraining (``sensitivity``, ``densities_from_sensitivity``).
- The iterative prune -> retrain schedule (Section 3.3, Fig. 2): ``HanConfig`` and
  ``prune_round``; ``pruning.runs.han_prune`` drives the rounds with checkpoints.

Conventions. "Surviving" weights are those whose ``weight_mask`` entry is 1 (every weight
of a layer that carries no mask). Densities are absolute: a fraction of all the layer's
weights, as in ``pruning.magnitude``. Pruning always goes through
``torch.nn.utils.prune`` masks and never revives a pruned weight.
"""

from __future__ import annotations

import copy
import hashlib
import math
import sys
from dataclasses import dataclass, field, replace
from numbers import Real
from typing import Callable, Iterable, Mapping

import pandas as pd
import torch
from torch import nn
from torch.nn.modules.dropout import _DropoutNd
from torch.nn.utils import prune
from tqdm.auto import tqdm

from pruning.magnitude import (_effective_weight, prunable_layers, prune_to_density,
                               weight_density)
from pruning.train import TrainConfig, refresh_pruned_weights, train

DEFAULT_FRACTIONS: tuple[float, ...] = tuple(i / 10 for i in range(10))


# ------------------------------------------------------------------ small helpers

def _survivors(module: nn.Module) -> torch.Tensor:
    """Boolean tensor, True where a connection survives (mask 1; all True without a mask)."""
    if hasattr(module, "weight_mask"):
        return module.weight_mask.bool()
    return torch.ones_like(module.weight, dtype=torch.bool)


def connection_counts(model: nn.Module) -> dict[str, int]:
    """{prunable layer: number of surviving connections}; a layer without a mask counts
    all its weights (Han Eq. 1: C_i = N_i·N_{i-1} for a dense FC layer)."""
    return {name: int(_survivors(m).sum()) for name, m in prunable_layers(model).items()}


def dropout_probabilities(model: nn.Module) -> dict[str, float]:
    """{dropout module name: p} for every dropout module, in model order."""
    return {name: float(m.p) for name, m in model.named_modules() if isinstance(m, _DropoutNd)}


def copy_model(model: nn.Module) -> nn.Module:
    """A deep copy of ``model``. Pruned layers' derived ``weight`` tensors are recomputed
    without autograd history first, because torch refuses to deep-copy a non-leaf tensor
    (which ``weight = weight_orig * weight_mask`` is right after pruning or a forward)."""
    refresh_pruned_weights(model)
    return copy.deepcopy(model)


def _layer_names(model: nn.Module, layers: Iterable[str] | None) -> list[str]:
    available = prunable_layers(model)
    names = list(available) if layers is None else list(layers)
    unknown = [n for n in names if n not in available]
    if unknown:
        raise ValueError(f"unknown layer(s) {unknown}; prunable layers: {list(available)}")
    return names


def _check_fraction(value: float, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or math.isnan(float(value)) \
            or not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{what} must be a number in [0, 1], got {value!r}")
    return float(value)


# ------------------------------------------------------------------ thresholds (Section 3)

def _surviving_std(module: nn.Module) -> float:
    """Population standard deviation (ddof 0) of the surviving weights; 0 if fewer than 2."""
    values = _effective_weight(module)[_survivors(module)].to(torch.float64)
    if values.numel() < 2:
        return 0.0
    return float(values.std(correction=0))


def _threshold(quality: float, std: float) -> float:
    # One place for the arithmetic, so quality_for_density counts exactly what
    # prune_by_threshold will keep.
    return float(quality) * float(std)


def std_thresholds(model: nn.Module, quality: float | Mapping[str, float]) -> dict[str, float]:
    """Han Section 3: threshold_l = quality_l × std(weights of layer l).

    The standard deviation is the population one (ddof 0, about the mean) over the
    layer's currently surviving weights (those with mask 1). ``quality`` is one number
    for every prunable layer, or {layer: quality} for just those layers. Returns
    {layer: threshold}. ValueError for an unknown layer or a negative/NaN quality.
    """
    if isinstance(quality, Mapping):
        qualities = {name: quality[name] for name in _layer_names(model, quality)}
    else:
        qualities = {name: quality for name in prunable_layers(model)}
    layers = prunable_layers(model)
    out = {}
    for name, q in qualities.items():
        if isinstance(q, bool) or not isinstance(q, Real) or not float(q) >= 0.0:
            raise ValueError(f"quality for {name!r} must be a number >= 0, got {q!r}")
        out[name] = _threshold(q, _surviving_std(layers[name]))
    return out


def _keep_mask(module: nn.Module, threshold: float) -> torch.Tensor:
    """Survivors with |w| >= threshold (Han prunes the weights below the threshold)."""
    return (_effective_weight(module).abs() >= threshold) & _survivors(module)


def prune_by_threshold(model: nn.Module, thresholds: Mapping[str, float]) -> dict[str, float]:
    """Mask every weight with |w| < threshold in each named layer, combined with the
    layer's existing mask (pruning never revives a weight). Returns {layer: density}
    after pruning (``pruning.magnitude.weight_density``). ValueError for an unknown layer
    or a negative/NaN threshold; nothing is pruned then."""
    layers = prunable_layers(model)
    names = _layer_names(model, thresholds)
    for name in names:
        t = thresholds[name]
        if isinstance(t, bool) or not isinstance(t, Real) or not float(t) >= 0.0:
            raise ValueError(f"threshold for {name!r} must be a number >= 0, got {t!r}")
    for name in names:
        module = layers[name]
        keep = _keep_mask(module, float(thresholds[name]))
        prune.custom_from_mask(module, name="weight", mask=keep.to(module.weight.dtype))
    return {name: weight_density(layers[name]) for name in names}


def quality_for_density(model: nn.Module, density: float,
                        layers: Iterable[str] | None = None) -> float:
    """The common quality q such that pruning ``layers`` (default: all prunable layers)
    with thresholds q·std_l keeps ``round(density × total)`` of their ``total`` weights.

    Found by bisection on q; the kept count is exact unless tied magnitudes make it
    impossible, in which case the q with the closest count is returned (then the density
    is off by the size of the tie, normally 1/total). If the layers already keep no more
    than that, q = 0 (prune nothing more). A layer whose surviving weights have zero
    standard deviation cannot be thinned by any q (its threshold is q·0 = 0).
    """
    value = _check_fraction(density, "density")
    modules = [prunable_layers(model)[n] for n in _layer_names(model, layers)]
    total = sum(m.weight.numel() for m in modules)
    target = round(value * total)
    # |w| of each layer's survivors with that layer's std: the inputs of every count.
    mags = [(_effective_weight(m).abs()[_survivors(m)], _surviving_std(m)) for m in modules]

    def kept(q: float) -> int:
        return sum(int((a >= _threshold(q, s)).sum()) for a, s in mags)

    if kept(0.0) <= target:
        return 0.0
    lo, hi = 0.0, 1.0
    while kept(hi) > target and hi < 1e30:
        lo, hi = hi, hi * 2.0
    best_q, best_err = hi, abs(kept(hi) - target)
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if mid in (lo, hi):
            break
        count = kept(mid)
        if abs(count - target) < best_err or (abs(count - target) == best_err and mid < best_q):
            best_q, best_err = mid, abs(count - target)
        if count == target:
            return mid
        if count > target:
            lo = mid
        else:
            hi = mid
    return best_q


# ------------------------------------------------------------------ dropout (Eq. 1-2)

def dropout_rate(original_p: float, c_original: int, c_retrain: int) -> float:
    """Han Eq. 2: D_r = D_o · sqrt(C_ir / C_io).

    C_io / C_ir: connections of the layer in the original / the pruned network (Eq. 1:
    C_i = N_i·N_{i-1} for a dense FC layer). ValueError unless 0 <= p <= 1, C_io > 0 and
    0 <= C_ir <= C_io (pruning never adds connections).
    """
    p = _check_fraction(original_p, "original_p")
    if not c_original > 0 or not 0 <= c_retrain <= c_original:
        raise ValueError(f"need 0 <= c_retrain <= c_original and c_original > 0; got "
                         f"c_original={c_original!r}, c_retrain={c_retrain!r}")
    return p * math.sqrt(c_retrain / c_original)


def adjust_dropout(model: nn.Module, original_connections: Mapping[str, int],
                   original_p: Mapping[str, float]) -> dict[str, float]:
    """Set every dropout module's p by Eq. 2 and return {dropout name: new p}.

    C_i belongs to the nearest Linear layer before the dropout in model order (Caffe's
    drop6 follows fc6): C_ir is its surviving connection count now, C_io is
    ``original_connections[layer]`` (default: all its weights, Eq. 1). D_o is
    ``original_p[dropout name]`` (the rate before any pruning; ValueError if absent), so
    repeated calls do not compound. A dropout with no Linear before it is left alone.
    """
    previous: tuple[str, nn.Module] | None = None
    rates: dict[str, float] = {}
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear):
            previous = (name, module)
        elif isinstance(module, _DropoutNd) and previous is not None:
            if name not in original_p:
                raise ValueError(f"no original dropout rate for {name!r}; "
                                 f"given: {sorted(original_p)}")
            layer_name, layer = previous
            c_original = original_connections.get(layer_name, layer.weight.numel())
            c_retrain = int(_survivors(layer).sum())
            module.p = dropout_rate(original_p[name], c_original, c_retrain)
            rates[name] = module.p
    return rates


# ------------------------------------------------------------------ dead neurons (Section 3.4)

@dataclass(frozen=True)
class DeadNeurons:
    """Dead output neurons (Linear) or output channels (Conv2d) of ``layer``.

    no_inputs: every incoming weight pruned. no_outputs: every outgoing weight (in the
    next weighted layer) pruned. Sorted indices; a neuron may appear in both.
    """
    layer: str
    no_inputs: tuple[int, ...]
    no_outputs: tuple[int, ...]


# Ops between two weighted layers that act on each neuron/channel separately. A constant
# channel stays constant through them (pooling of a constant is that constant; dropout is
# the identity in eval mode), which is what makes folding a no-input neuron exact.
_ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.GELU, nn.Tanh, nn.Sigmoid,
                nn.SiLU, nn.Hardtanh, nn.Softplus, nn.Identity)
_CONSTANT_PRESERVING = (_DropoutNd, nn.MaxPool2d, nn.AdaptiveMaxPool2d, nn.AdaptiveAvgPool2d)


@dataclass(frozen=True)
class _Link:
    """Two consecutive weighted layers and how A's outputs feed B's inputs."""
    a: str
    b: str
    ops: tuple[nn.Module, ...]      # the elementwise ops between them, in order
    block: int                      # B inputs per A output: 1, or H·W after a Flatten


def _passes_constant(op: nn.Module) -> bool:
    if isinstance(op, _ACTIVATIONS + _CONSTANT_PRESERVING):
        return True
    # Average pooling keeps a constant constant unless zero padding enters the average.
    return isinstance(op, nn.AvgPool2d) and (op.padding in (0, (0, 0))
                                             or not op.count_include_pad)


def _links(model: nn.Module) -> list[_Link]:
    """Pairs of consecutive weighted layers joined only by elementwise ops, in model order.

    Assumes modules are registered in forward order (true of the zoo's nn.Sequential).
    Linear->Linear and Conv2d->Conv2d need matching widths; Conv2d->Linear needs exactly
    one nn.Flatten (start_dim 1, end_dim -1), after which each channel is a block of
    H·W consecutive features. Anything else (LRN, BatchNorm, Linear->Conv2d...) breaks
    the chain and the pair is not analysed.
    """
    leaves = [(n, m) for n, m in model.named_modules() if not list(m.children())]
    links: list[_Link] = []
    prev: tuple[str, nn.Module] | None = None
    ops: list[nn.Module] = []
    broken = False
    for name, module in leaves:
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            if prev is not None and not broken:
                link = _make_link(prev, (name, module), ops)
                if link is not None:
                    links.append(link)
            prev, ops, broken = (name, module), [], False
        elif isinstance(module, nn.Flatten) or _passes_constant(module):
            ops.append(module)
        else:
            broken = True
    return links


def _make_link(a: tuple[str, nn.Module], b: tuple[str, nn.Module],
               ops: list[nn.Module]) -> _Link | None:
    (a_name, a_mod), (b_name, b_mod) = a, b
    flattens = [op for op in ops if isinstance(op, nn.Flatten)]
    if isinstance(a_mod, nn.Linear) and isinstance(b_mod, nn.Linear):
        # Flatten of an (N, features) batch is the identity.
        if a_mod.out_features == b_mod.in_features:
            return _Link(a_name, b_name, tuple(ops), 1)
    elif isinstance(a_mod, nn.Conv2d) and isinstance(b_mod, nn.Conv2d):
        if not flattens and a_mod.out_channels == b_mod.in_channels:
            return _Link(a_name, b_name, tuple(ops), 1)
    elif isinstance(a_mod, nn.Conv2d) and isinstance(b_mod, nn.Linear):
        if len(flattens) == 1 and flattens[0].start_dim == 1 and flattens[0].end_dim == -1:
            after = ops[ops.index(flattens[0]) + 1:]
            channels = a_mod.out_channels
            if all(isinstance(op, _ACTIVATIONS + (_DropoutNd,)) for op in after) \
                    and b_mod.in_features % channels == 0:
                return _Link(a_name, b_name, tuple(ops), b_mod.in_features // channels)
    return None


def _used_inputs(b_mod: nn.Module, n_inputs: int, block: int) -> torch.Tensor:
    """Boolean (n_inputs,): does any surviving weight of B read A's output j?"""
    alive = _survivors(b_mod)
    if isinstance(b_mod, nn.Linear):
        return alive.reshape(alive.shape[0], n_inputs, block).any(dim=2).any(dim=0)
    groups = b_mod.groups
    out_per_group, in_per_group = alive.shape[0] // groups, alive.shape[1]
    # Input channel j of a grouped conv is read only by its group's filters, as local
    # channel j % in_per_group.
    per_group = alive.reshape(groups, out_per_group, in_per_group, -1).any(dim=3).any(dim=1)
    return per_group.reshape(n_inputs)


def _has_inputs(a_mod: nn.Module) -> torch.Tensor:
    alive = _survivors(a_mod)
    return alive.reshape(alive.shape[0], -1).any(dim=1)


def find_dead_neurons(model: nn.Module) -> list[DeadNeurons]:
    """Dead neurons of every weighted layer that feeds another one (see ``_links``).

    Neuron j of a Linear layer (its output j) has no inputs if row j of its mask is all
    zero, and no outputs if every weight reading it in the next Linear layer is pruned
    (column j of the next mask; for Conv2d->Linear the block of H·W features of channel
    j). Conv2d output channel j: no inputs if its filter is all pruned, no outputs if no
    surviving weight of the next conv reads input channel j (grouped convs respected).
    Layers without a mask have no pruned weights. The last layer (network outputs) is
    never reported. Only layers with at least one dead neuron are listed, in model order.
    """
    layers = prunable_layers(model)
    dead = []
    for link in _links(model):
        a_mod, b_mod = layers[link.a], layers[link.b]
        no_in = torch.nonzero(~_has_inputs(a_mod)).flatten().tolist()
        n_out = a_mod.weight.shape[0]
        no_out = torch.nonzero(~_used_inputs(b_mod, n_out, link.block)).flatten().tolist()
        if no_in or no_out:
            dead.append(DeadNeurons(link.a, tuple(no_in), tuple(no_out)))
    return dead


def _constant_output(link: _Link, a_mod: nn.Module, rows: list[int]) -> torch.Tensor:
    """What neuron j of A outputs after the ops when all its inputs are pruned:
    act(b_j) (act(0) without a bias), for each j in ``rows``, in float64."""
    if a_mod.bias is None:
        value = torch.zeros(len(rows), dtype=torch.float64)
    else:
        value = a_mod.bias.detach()[rows].to(torch.float64)
    value = value.reshape(1, -1)
    with torch.no_grad():
        for op in link.ops:
            if isinstance(op, _ACTIVATIONS):
                value = op(value)
    return value.reshape(-1)


def _prune_entries(module: nn.Module, drop: torch.Tensor) -> None:
    """Mask the entries where ``drop`` is True (combined with the existing mask)."""
    keep = (~drop) & _survivors(module)
    prune.custom_from_mask(module, name="weight", mask=keep.to(module.weight.dtype))


def _remove_link(link: _Link, a_mod: nn.Module, b_mod: nn.Module,
                 dead: DeadNeurons) -> tuple[set[int], set[int]]:
    """Remove the dead neurons of one link in place; returns the (no_inputs, no_outputs)
    sets actually removed. A no-input neuron whose constant output cannot be folded
    exactly (a padded next conv, or no bias to fold into) is left in place."""
    no_in: set[int] = set()
    # A constant input channel gives a constant conv output only without zero padding
    # (reflect/replicate/circular padding repeat the constant).
    foldable = isinstance(b_mod, nn.Linear) or b_mod.padding_mode != "zeros" \
        or b_mod.padding == "valid" or all(p == 0 for p in _as_tuple(b_mod.padding))
    constants = _constant_output(link, a_mod, list(dead.no_inputs))
    b_weight = _effective_weight(b_mod).to(torch.float64)
    fold = torch.zeros(b_weight.shape[0], dtype=torch.float64)
    n_out = a_mod.weight.shape[0]
    for j, c in zip(dead.no_inputs, constants.tolist()):
        only_j = torch.zeros(n_out, dtype=torch.bool)
        only_j[j] = True
        reads = _reader_mask(b_mod, only_j, link.block) & b_weight.ne(0)
        if c != 0.0 and bool(reads.any()):
            # A zero-padded conv sees the constant only partly at the borders: no bias
            # can stand in for it, so the neuron stays.
            if not foldable or b_mod.bias is None:
                continue
            # next.bias += W_next[:, j]·act(b_j): the constant the neuron fed forward
            # (for Conv2d->Linear, summed over the channel's H·W features; for an
            # unpadded conv, over the kernel taps).
            if isinstance(b_mod, nn.Linear):
                fold += b_weight[:, j * link.block:(j + 1) * link.block].sum(dim=1) * c
            else:
                fold += _conv_input_sum(b_mod, b_weight, j) * c
        no_in.add(j)
    drop_rows = sorted(no_in | set(dead.no_outputs))
    with torch.no_grad():
        if b_mod.bias is not None and bool(fold.ne(0).any()):
            b_mod.bias.copy_((b_mod.bias.to(torch.float64) + fold).to(b_mod.bias.dtype))
        if a_mod.bias is not None and drop_rows:
            # The neuron's output now reaches nothing; a zero bias makes it output act(0),
            # so it does not look like a live activation to anyone measuring densities.
            a_mod.bias[drop_rows] = 0.0
    if drop_rows:
        rows = torch.zeros(a_mod.weight.shape[0], dtype=torch.bool)
        rows[drop_rows] = True
        _prune_entries(a_mod, rows.reshape(-1, *([1] * (a_mod.weight.dim() - 1)))
                       .expand_as(a_mod.weight))
        _prune_entries(b_mod, _reader_mask(b_mod, rows, link.block))
    return no_in, set(dead.no_outputs)


def _as_tuple(value) -> tuple:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,)


def _conv_input_sum(b_mod: nn.Conv2d, b_weight: torch.Tensor, j: int) -> torch.Tensor:
    """Per output channel of B, the sum of the kernel taps reading input channel j (zero
    for output channels of other groups): B's response to a constant 1 on channel j."""
    groups = b_mod.groups
    in_per_group, out_per_group = b_weight.shape[1], b_weight.shape[0] // groups
    g, local = divmod(j, in_per_group)
    out = torch.zeros(b_weight.shape[0], dtype=b_weight.dtype)
    rows = slice(g * out_per_group, (g + 1) * out_per_group)
    out[rows] = b_weight[rows, local].sum(dim=(1, 2))
    return out


def _reader_mask(b_mod: nn.Module, a_rows: torch.Tensor, block: int) -> torch.Tensor:
    """Boolean mask of B's weights that read any of A's outputs flagged in ``a_rows``."""
    if isinstance(b_mod, nn.Linear):
        cols = a_rows.repeat_interleave(block)
        return cols.reshape(1, -1).expand_as(b_mod.weight)
    groups = b_mod.groups
    out_ch, in_per_group = b_mod.weight.shape[:2]
    mask = torch.zeros(b_mod.weight.shape, dtype=torch.bool)
    out_per_group = out_ch // groups
    for j in torch.nonzero(a_rows).flatten().tolist():
        g, local = divmod(j, in_per_group)
        mask[g * out_per_group:(g + 1) * out_per_group, local] = True
    return mask


def remove_dead_neurons(model: nn.Module, shrink: bool = False
                        ) -> tuple[nn.Module, list[DeadNeurons]]:
    """Remove dead neurons exactly: the network's eval-mode outputs do not change.

    Every weight of a dead neuron is pruned (its incoming row and its outgoing column)
    and its bias set to 0. A neuron with no inputs still outputs act(b_j); that constant
    is first folded into the next layer's bias (next.bias += W_next[:, j]·act(b_j)), so
    nothing downstream changes. Removal is repeated until no more neurons die (removing
    one layer's neuron can starve the previous layer's). A no-input neuron whose constant
    cannot be folded exactly (non-zero act(b_j) feeding a zero-padded conv, or a next
    layer without bias) is kept and not reported.

    shrink=False: ``model`` is edited in place (masks, biases) and returned.
    shrink=True: ``model`` is left untouched; a copy is pruned as above and its
    Linear/Conv2d layers are rebuilt physically smaller (new modules, weight_orig and
    masks carried over), and that copy is returned. Layers of a grouped conv link are
    not shrunk (groups must stay equal), only masked; a layer keeps at least one neuron.

    Returns (model, removed dead neurons per layer).
    """
    if shrink:
        model = copy_model(model)
    layers = prunable_layers(model)
    removed: dict[str, tuple[set[int], set[int]]] = {}
    while True:
        links = {link.a: link for link in _links(model)}
        before = {k: (set(a), set(b)) for k, (a, b) in removed.items()}
        for found in find_dead_neurons(model):
            # A removed neuron is found again next time (now without inputs and outputs);
            # report each neuron once, for the reason it died first.
            done = set().union(*removed.get(found.layer, (set(), set())))
            dead = DeadNeurons(found.layer, tuple(j for j in found.no_inputs if j not in done),
                               tuple(j for j in found.no_outputs if j not in done))
            if not (dead.no_inputs or dead.no_outputs):
                continue
            link = links[dead.layer]
            no_in, no_out = _remove_link(link, layers[link.a], layers[link.b], dead)
            entry = removed.setdefault(dead.layer, (set(), set()))
            entry[0].update(no_in)
            entry[1].update(no_out)
        if removed == before:
            break
    refresh_pruned_weights(model)
    report = [DeadNeurons(name, tuple(sorted(removed[name][0])), tuple(sorted(removed[name][1])))
              for name in layers if name in removed and (removed[name][0] or removed[name][1])]
    if shrink:
        _shrink(model, report)
    return model, report


def _shrink(model: nn.Module, report: list[DeadNeurons]) -> None:
    """Rebuild the layers of ``model`` without the reported neurons (in place)."""
    layers = prunable_layers(model)
    links = {link.a: link for link in _links(model)}
    keep_out: dict[str, list[int]] = {}
    keep_in: dict[str, list[int]] = {}       # weight-tensor dim-1 indices of B to keep
    for dead in report:
        link = links[dead.layer]
        a_mod, b_mod = layers[link.a], layers[link.b]
        if getattr(a_mod, "groups", 1) != 1 or getattr(b_mod, "groups", 1) != 1:
            continue
        gone = set(dead.no_inputs) | set(dead.no_outputs)
        kept = [j for j in range(a_mod.weight.shape[0]) if j not in gone] or [0]
        keep_out[link.a] = kept
        keep_in[link.b] = [j * link.block + k for j in kept for k in range(link.block)]
    for name in list(layers):
        if name in keep_out or name in keep_in:
            _replace_module(model, name, _rebuilt(layers[name], keep_out.get(name),
                                                  keep_in.get(name)))


def _rebuilt(module: nn.Module, rows: list[int] | None, cols: list[int] | None) -> nn.Module:
    """A new Linear/Conv2d holding ``module``'s weights restricted to ``rows`` (outputs)
    and ``cols`` (inputs); the mask is carried over. Built on the meta device and then
    filled, so no RNG is consumed."""
    weight = (module.weight_orig if hasattr(module, "weight_orig") else module.weight).detach()
    mask = module.weight_mask if hasattr(module, "weight_mask") else None
    rows_t = torch.tensor(rows if rows is not None else range(weight.shape[0]), dtype=torch.long)
    cols_t = torch.tensor(cols if cols is not None else range(weight.shape[1]), dtype=torch.long)
    new_weight = weight[rows_t][:, cols_t]
    with torch.device("meta"):
        if isinstance(module, nn.Linear):
            new = nn.Linear(len(cols_t), len(rows_t), bias=module.bias is not None,
                            dtype=weight.dtype)
        else:
            new = nn.Conv2d(len(cols_t), len(rows_t), module.kernel_size, stride=module.stride,
                            padding=module.padding, dilation=module.dilation, groups=1,
                            bias=module.bias is not None, padding_mode=module.padding_mode,
                            dtype=weight.dtype)
    new = new.to_empty(device=weight.device)
    with torch.no_grad():
        new.weight.copy_(new_weight)
        new.weight.requires_grad_(weight.requires_grad)
        if module.bias is not None:
            new.bias.copy_(module.bias.detach()[rows_t])
            new.bias.requires_grad_(module.bias.requires_grad)
    if mask is not None:
        prune.custom_from_mask(new, name="weight", mask=mask[rows_t][:, cols_t].clone())
    new.train(module.training)
    refresh_pruned_weights(new)
    return new


def _replace_module(model: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, leaf = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, leaf, new)


# ------------------------------------------------------------------ sensitivity (Fig. 6)

def sensitivity(model: nn.Module, evaluate_fn: Callable[[nn.Module], float],
                fractions: Iterable[float] = DEFAULT_FRACTIONS,
                layers: Iterable[str] | None = None, progress: bool = True) -> pd.DataFrame:
    """Han Fig. 6: accuracy when one layer alone loses a fraction of its weights.

    For each layer (default: every prunable layer) and each fraction f, a copy of the
    model has that layer pruned by magnitude to keep (1 − f) of its surviving weights
    (``prune_to_density``; for a dense layer f is the fraction of all its weights), no
    retraining, and ``evaluate_fn(copy)`` gives the accuracy. f = 0 evaluates the
    unpruned copy. ``model`` is not modified. Columns: layer, pruned_fraction, accuracy;
    one row per (layer, fraction), layers in model order, fractions as given.
    """
    fracs = [_check_fraction(f, "pruned fraction") for f in fractions]
    names = _layer_names(model, layers)
    work = copy_model(model)
    work_layers = prunable_layers(work)
    rows = []
    bar = tqdm(total=len(names) * len(fracs), desc="sensitivity", disable=not progress,
               file=sys.stderr)
    for name in names:
        original = work_layers[name]
        surviving = int(_survivors(original).sum())
        n = original.weight.numel()
        for f in fracs:
            layer = copy_model(original)
            _replace_module(work, name, layer)
            if f > 0:
                prune_to_density(layer, surviving * (1.0 - f) / n)
            rows.append({"layer": name, "pruned_fraction": f,
                         "accuracy": float(evaluate_fn(work))})
            bar.update()
        _replace_module(work, name, original)
    bar.close()
    return pd.DataFrame(rows, columns=["layer", "pruned_fraction", "accuracy"])


def densities_from_sensitivity(table: pd.DataFrame, max_accuracy_drop: float) -> dict[str, float]:
    """Per layer, density = 1 − the largest pruned fraction whose accuracy is at most
    ``max_accuracy_drop`` below the layer's accuracy at fraction 0 (same units as the
    table's accuracy). Every layer needs a fraction-0 row (ValueError otherwise). The
    density is relative to the layer's weights when the sensitivity was measured."""
    if not max_accuracy_drop >= 0:
        raise ValueError(f"max_accuracy_drop must be >= 0, got {max_accuracy_drop!r}")
    out = {}
    for name in dict.fromkeys(table["layer"]):
        rows = table[table["layer"] == name]
        base = rows[rows["pruned_fraction"] == 0.0]
        if base.empty:
            raise ValueError(f"sensitivity table has no fraction-0 row for layer {name!r}")
        reference = float(base["accuracy"].iloc[0])
        ok = rows[reference - rows["accuracy"] <= max_accuracy_drop + 1e-12]
        out[name] = 1.0 - float(ok["pruned_fraction"].max())
    return out


# ------------------------------------------------------------------ the schedule (Fig. 2)

def _density_pairs(value) -> tuple[tuple[str, float], ...] | None:
    """Normalise layer_densities: a mapping, pairs, or a pruning.profiles.DensityProfile."""
    if value is None:
        return None
    if hasattr(value, "layers") and not isinstance(value, Mapping):
        value = [(entry.layer, entry.weight_density) for entry in value.layers]
    items = value.items() if isinstance(value, Mapping) else value
    pairs = tuple((str(name), _check_fraction(d, f"density of layer {name!r}"))
                  for name, d in items)
    names = [n for n, _ in pairs]
    if len(set(names)) != len(names):
        raise ValueError(f"layer_densities names a layer twice: {names}")
    return pairs


@dataclass(frozen=True)
class HanConfig:
    """Han's iterative prune -> retrain schedule.

    target_density: overall kept fraction of the prunable weights at the end (12x -> 1/12).
    iterations: prune -> retrain rounds R (1 = one-shot). Round r aims at densities
        d^(r/R), a geometric schedule from 1 to the final density.
    layer_densities: final per-layer densities as a tuple of (layer, density) pairs; a
        dict or a pruning.profiles.DensityProfile is accepted and converted (the field
        must be hashable in a frozen dataclass). Layers not named are not pruned. When
        given, it sets the schedule and target_density only documents the intent (the
        log reports the density reached). None: each round uses one common quality q
        (``quality_for_density``) over all layers to reach target_density^(r/R).
    train: the initial dense training (round 0); epochs=0 skips it (a trained model).
    retrain: each round's retraining; it continues from the surviving weights.
    separate_conv_fc: Han Section 3.3: each round prunes and retrains the conv layers with
        the FC layers fixed, then the FC layers with the conv layers fixed.
    adjust_dropout: apply Eq. 2 before every retraining.
    remove_dead: remove dead neurons at the end of every round.
    seed: every training phase's seed derives from it (``phase_seed``).
    """
    target_density: float
    iterations: int = 3
    layer_densities: tuple[tuple[str, float], ...] | None = None
    train: TrainConfig = TrainConfig()
    retrain: TrainConfig = TrainConfig(epochs=5, lr=0.001)
    separate_conv_fc: bool = False
    adjust_dropout: bool = True
    remove_dead: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        density = _check_fraction(self.target_density, "target_density")
        if density == 0.0:
            raise ValueError("target_density must be > 0")
        if isinstance(self.iterations, bool) or not isinstance(self.iterations, int) \
                or self.iterations < 1:
            raise ValueError(f"iterations must be an int >= 1, got {self.iterations!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"seed must be an int, got {self.seed!r}")
        for name in ("train", "retrain"):
            if not isinstance(getattr(self, name), TrainConfig):
                raise ValueError(f"{name} must be a TrainConfig")
        object.__setattr__(self, "layer_densities", _density_pairs(self.layer_densities))


def round_density(final_density: float, round_index: int, iterations: int) -> float:
    """The geometric schedule: d_r = d_final^(r/R), so round 0 is dense and round R final."""
    return float(final_density) ** (round_index / iterations)


def phase_seed(seed: int, round_index: int, phase: int) -> int:
    """A 63-bit seed for one training phase, a pure function of (seed, round, phase):
    a resumed run retrains round r with exactly the seed an uninterrupted one used."""
    digest = hashlib.sha256(f"han/{seed}/{round_index}/{phase}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


@dataclass(frozen=True)
class RoundResult:
    """What one prune -> retrain round did. quality: the common q (None with per-layer
    densities); history: per-epoch training rows, each tagged with round and phase."""
    round: int
    densities: dict = field(hash=False)
    quality: float | None
    dropout: dict = field(hash=False)
    dead_neurons: tuple[DeadNeurons, ...]
    history: tuple[dict, ...] = field(hash=False)


def prune_round(model: nn.Module, data, config: HanConfig, round_index: int,
                original_connections: Mapping[str, int], original_p: Mapping[str, float],
                progress: bool = True) -> RoundResult:
    """Round r (1..R) of Han's method, in place: prune to the round's densities
    (combined with the existing masks), adjust dropout (Eq. 2), retrain the survivors,
    remove dead neurons. With ``separate_conv_fc`` the prune/adjust/retrain steps run
    twice: conv layers (FC frozen), then FC layers (conv frozen). The common-q
    thresholds are computed once at the start of the round; the FC weights do not move
    while the conv layers retrain, so pruning them afterwards gives the same mask.
    ``original_connections``/``original_p``: counts and dropout rates before round 1.
    """
    if not 1 <= round_index <= config.iterations:
        raise ValueError(f"round must be in 1..{config.iterations}, got {round_index}")
    layers = prunable_layers(model)
    quality = None
    if config.layer_densities is not None:
        targets = {n: round_density(d, round_index, config.iterations)
                   for n, d in config.layer_densities}
        _layer_names(model, targets)                       # unknown names -> ValueError
        thresholds = None
    else:
        density = round_density(config.target_density, round_index, config.iterations)
        quality = quality_for_density(model, density)
        thresholds = std_thresholds(model, quality)
    if config.separate_conv_fc:
        phases = [("conv", [n for n, m in layers.items() if isinstance(m, nn.Conv2d)]),
                  ("fc", [n for n, m in layers.items() if isinstance(m, nn.Linear)])]
    else:
        phases = [("all", list(layers))]
    history: list[dict] = []
    rates: dict[str, float] = {}
    for phase_index, (trainable, names) in enumerate(phases, start=1):
        if not names:
            continue
        if thresholds is None:
            for n in names:
                if n in targets:
                    prune_to_density(layers[n], targets[n])
        else:
            prune_by_threshold(model, {n: thresholds[n] for n in names})
        if config.adjust_dropout:
            rates = adjust_dropout(model, original_connections, original_p)
        retrain = replace(config.retrain, trainable=trainable) if config.separate_conv_fc \
            else config.retrain
        rows = train(model, data, retrain, seed=phase_seed(config.seed, round_index, phase_index),
                     progress=progress, desc=f"round {round_index} retrain {trainable}")
        history += [{"round": round_index, "phase": trainable, **row} for row in rows]
    dead: list[DeadNeurons] = []
    if config.remove_dead:
        _, dead = remove_dead_neurons(model)
    refresh_pruned_weights(model)
    return RoundResult(round=round_index,
                       densities={n: weight_density(m) for n, m in layers.items()},
                       quality=quality, dropout=rates or dropout_probabilities(model),
                       dead_neurons=tuple(dead), history=tuple(history))
