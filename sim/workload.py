"""Workloads: what a network asks of the hardware, layer by layer, in execution order.

:func:`extract_workload` runs one forward pass of a ``torch.nn.Module`` on a sample batch with a
forward hook on every leaf module, and records for each call: kind, shapes, the weight tensor and
its mask, and the density of its input activations measured on that batch. Linear and Conv2d
layers carry MACs; ReLU, pooling, flatten, dropout and the like are recorded but cost no MACs.
A leaf module with weights that prunesim cannot model is an error naming it, never skipped.

The simulator and the estimator take :class:`Workload` objects only; nothing past this module
touches torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np
import torch
from torch import nn

__all__ = ["Layer", "Workload", "WorkloadError", "extract_workload"]


class WorkloadError(ValueError):
    """A model or density that cannot become a workload; the message names the module or layer."""


# Modules that hold parameters but cost no MACs worth modelling: at inference a BatchNorm folds
# into the preceding convolution, and LRN has no parameters at all.
_WEIGHTLESS_WITH_PARAMS = (nn.BatchNorm1d, nn.BatchNorm2d)


@dataclass(frozen=True, eq=False)
class Layer:
    """One module call. Shapes are per sample (no batch dimension).

    For ``linear`` layers ``in_channels``/``out_channels`` are the feature counts and the kernel is
    1×1. ``weight`` is the effective weight (mask applied), ``mask`` is True where a weight is kept.
    ``input_density`` is the fraction of non-zero input activations; ``input_sample`` is one
    sample's input activations (kept for the numerics checks of the simulator), or None.

    Quantisation (read from the module's attributes, set by :mod:`pruning.quantise` and
    :mod:`pruning.sharing`): ``fixed_point_bits`` — the layer computes in fixed point: its
    weights are b-bit integers and its MACs integer (module attribute ``fixed_point_bits``);
    ``activation_bits`` — the width of its integer input activations (module attribute
    ``activation_bits``, else ``fixed_point_bits``: W8A16 has 8 and 16); ``weight_bits`` —
    bits stored per weight (``stored_weight_bits``, e.g. a shared-weight index, else
    ``fixed_point_bits``); ``codebook_entries`` — shared values the layer stores besides
    (``codebook_entries``). None / 0: the hardware's own width, no codebook.
    """

    name: str
    kind: str
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    input_density: float
    output_density: float
    in_channels: int = 0
    out_channels: int = 0
    kernel_size: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1
    weight: np.ndarray | None = field(default=None, repr=False)
    mask: np.ndarray | None = field(default=None, repr=False)
    bias: np.ndarray | None = field(default=None, repr=False)
    input_sample: np.ndarray | None = field(default=None, repr=False)
    fixed_point_bits: int | None = None
    activation_bits: int | None = None
    weight_bits: int | None = None
    codebook_entries: int = 0

    @property
    def has_weights(self) -> bool:
        return self.weight is not None

    @property
    def weight_count(self) -> int:
        return 0 if self.weight is None else int(self.weight.size)

    @cached_property  # counted once: a sweep asks hundreds of times, AlexNet's fc1 has 38M weights
    def nonzero_weights(self) -> int:
        return 0 if self.mask is None else int(np.count_nonzero(self.mask))

    @property
    def weight_density(self) -> float:
        return self.nonzero_weights / self.weight_count if self.weight_count else 0.0

    @property
    def output_positions(self) -> int:
        """Output pixels of a conv (H_out × W_out); 1 for a linear layer."""
        return math.prod(self.output_shape[1:]) if self.kind == "conv2d" else 1

    @property
    def dense_macs(self) -> int:
        """MACs of one sample with every weight and activation counted (Han's FLOP column / 2).

        Conv: H_out·W_out · C_out · (C_in / groups) · K_h·K_w. Linear: C_in · C_out.
        """
        return self.output_positions * self.weight_count

    def with_input_density(self, density: float) -> "Layer":
        if not 0.0 <= density <= 1.0:
            raise WorkloadError(f"layer '{self.name}': input density {density} is outside [0, 1]")
        return replace(self, input_density=float(density))


@dataclass(frozen=True, eq=False)
class Workload:
    """The layers of one network in execution order, for one sample."""

    model: str
    input_shape: tuple[int, ...]
    layers: tuple[Layer, ...]

    @property
    def compute_layers(self) -> tuple[Layer, ...]:
        """Layers with weights (Linear, Conv2d), the ones that cost MACs."""
        return tuple(layer for layer in self.layers if layer.has_weights)

    def layer(self, name: str) -> Layer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise WorkloadError(f"no layer '{name}' in workload '{self.model}'")

    def with_input_densities(self, densities: dict[str, float]) -> "Workload":
        """A copy whose compute layers take the given input densities (e.g. from a profile).

        Every compute layer must be named, and no other name may appear.
        """
        names = {layer.name for layer in self.compute_layers}
        unknown, missing = sorted(set(densities) - names), sorted(names - set(densities))
        if unknown or missing:
            raise WorkloadError(
                f"densities do not match the layers of '{self.model}': "
                f"unknown {unknown or 'none'}, missing {missing or 'none'}"
            )
        layers = tuple(
            layer.with_input_density(densities[layer.name]) if layer.has_weights else layer
            for layer in self.layers
        )
        return replace(self, layers=layers)


def _pair(value) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else tuple(int(v) for v in value)


def _density(tensor: torch.Tensor) -> float:
    return float(torch.count_nonzero(tensor)) / tensor.numel() if tensor.numel() else 0.0


def _mask_of(module: nn.Module, weight: torch.Tensor) -> np.ndarray:
    # torch.nn.utils.prune keeps the mask as a buffer; without one, exact zeros are pruned.
    mask = getattr(module, "weight_mask", None)
    if mask is None:
        mask = weight != 0
    return mask.detach().to(torch.bool).cpu().numpy()


def _check_modelable(model: nn.Module) -> None:
    for name, module in model.named_modules():
        if list(module.children()):
            continue
        has_params = any(True for _ in module.parameters(recurse=False))
        if has_params and not isinstance(module, (nn.Linear, nn.Conv2d, *_WEIGHTLESS_WITH_PARAMS)):
            raise WorkloadError(
                f"module '{name or type(module).__name__}' ({type(module).__name__}) has weights "
                "that prunesim cannot model; supported layers with weights: Linear, Conv2d "
                "(BatchNorm is folded)"
            )


def _weight_array(module: nn.Module, copy_parameters: bool) -> np.ndarray:
    """The module's effective weight as numpy. A Parameter is the model's own storage, which
    training may change later: copied unless ``copy_parameters`` is False. A pruned module's
    weight (torch.nn.utils.prune: weight_orig·weight_mask) is a fresh tensor of this forward
    pass that nothing writes to afterwards: shared."""
    array = module.weight.detach().cpu().numpy()
    return array.copy() if copy_parameters and isinstance(module.weight, nn.Parameter) else array


def _describe(name: str, module: nn.Module, x: torch.Tensor, y: torch.Tensor, keep: bool,
              copy_parameters: bool = True) -> Layer:
    common = dict(
        name=name,
        input_shape=tuple(x.shape[1:]),
        output_shape=tuple(y.shape[1:]),
        input_density=_density(x),
        output_density=_density(y),
    )
    if isinstance(module, (nn.Linear, nn.Conv2d)):
        weight = module.weight.detach()
        bias = None if module.bias is None else module.bias.detach().cpu().numpy().copy()
        sample = x[0].detach().cpu().numpy().copy() if keep else None
        fixed = getattr(module, "fixed_point_bits", None)
        tensors = dict(
            weight=_weight_array(module, copy_parameters), mask=_mask_of(module, weight), bias=bias,
            input_sample=sample,
            fixed_point_bits=fixed, activation_bits=getattr(module, "activation_bits", fixed),
            weight_bits=getattr(module, "stored_weight_bits", fixed),
            codebook_entries=int(getattr(module, "codebook_entries", 0)),
        )
        if isinstance(module, nn.Linear):
            return Layer(kind="linear", in_channels=module.in_features, out_channels=module.out_features,
                         **common, **tensors)
        if module.padding_mode != "zeros" or isinstance(module.padding, str):
            raise WorkloadError(f"module '{name}': only zero padding given as numbers is modelled")
        return Layer(
            kind="conv2d",
            in_channels=module.in_channels,
            out_channels=module.out_channels,
            kernel_size=_pair(module.kernel_size),
            stride=_pair(module.stride),
            padding=_pair(module.padding),
            dilation=_pair(module.dilation),
            groups=module.groups,
            **common,
            **tensors,
        )
    return Layer(kind=type(module).__name__.lower(), **common)


def extract_workload(
    model: nn.Module,
    input_shape: tuple[int, ...] | None = None,
    sample: torch.Tensor | None = None,
    name: str = "model",
    seed: int = 0,
    keep_activations: bool = True,
    copy_parameters: bool = True,
) -> Workload:
    """Trace ``model`` on ``sample`` (a batch) or, failing that, on one random normal sample of
    ``input_shape`` drawn with ``seed``; return its layers in execution order.

    Activation densities are measured on the whole batch. The model runs in eval mode under
    ``torch.no_grad`` and its training flag is restored afterwards. ``copy_parameters=False``
    shares the weight parameters' storage instead of copying it: for a model whose parameters
    are not changed while the workload is in use (a copy of VGG-16's weights costs ~0.5 s).
    """
    if sample is None:
        if input_shape is None:
            raise WorkloadError("extract_workload needs a sample batch or an input shape")
        generator = torch.Generator().manual_seed(seed)
        sample = torch.randn((1, *input_shape), generator=generator)
    _check_modelable(model)

    records: list[Layer] = []
    names = {module: module_name for module_name, module in model.named_modules()}
    calls: dict[str, int] = {}

    def hook(module, inputs, output):
        base = names[module] or type(module).__name__.lower()
        calls[base] = calls.get(base, 0) + 1
        # A module called twice (shared weights) appears twice, the second as name#2.
        layer_name = base if calls[base] == 1 else f"{base}#{calls[base]}"
        records.append(_describe(layer_name, module, inputs[0], output, keep_activations, copy_parameters))

    leaves = [m for m in model.modules() if not list(m.children())]
    handles = [m.register_forward_hook(hook) for m in leaves]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(sample)
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return Workload(model=name, input_shape=tuple(sample.shape[1:]), layers=tuple(records))
