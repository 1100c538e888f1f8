"""Post-training fixed-point quantisation of weights and activations (symmetric, integer MACs).

Each Linear/Conv2d layer becomes a :class:`QuantisedLinear` / :class:`QuantisedConv2d` that
computes exactly what an integer datapath computes:

    q_x = clamp(round(x / s_x), −Q, Q)            activations, one scale per tensor
    q_w = clamp(round(w / s_w), −Q, Q)            weights, one scale per tensor or per output channel
    q_b = round(b / (s_w·s_x))                     bias in the accumulator's units (int32 in practice)
    acc = Σ q_w·q_x + q_b                           integer multiply-accumulate
    y   = acc · s_w·s_x                             back to real units for the next layer

with Q = 2^(b−1) − 1 (b = 8: ±127, b = 16: ±32767) and round half to even (``torch.round``).
Scales are max-abs: s_w = max|w| / Q (per tensor or per output channel), s_x = max|x| / Q over
a calibration batch (the float model's input to that layer). Activation scales are per tensor:
a per-input-channel activation scale would not factor out of the sum.

The integer accumulation runs in float64 on integer values, which is exact while every partial
sum stays below 2^53 (|acc| ≤ Q²·fan_in + |q_b|: 1.3e7 for 8-bit LeNet fc1, 8.6e11 for 16 bits),
so ``accumulate`` equals an int64 computation bit for bit (checked on construction of the bound).

The layer keeps ``weight`` as the dequantised values q_w·s_w (float32 holds them so that
q_w = round(weight / s_w) is recovered exactly), so exports and workloads read the real
weights; ``fixed_point_bits`` tells them the width (see :mod:`sim.workload`). Pruned weights
(0) stay exactly 0.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn import functional as F

from pruning.magnitude import make_permanent, prunable_layers
from pruning.observe import observe_inputs
from pruning.train import refresh_pruned_weights

__all__ = ["FIXED_POINT_BITS", "QuantisedConv2d", "QuantisedLinear", "max_abs_scale", "quantise_model",
           "quantise_values", "weight_bits_of"]

FIXED_POINT_BITS = tuple(range(2, 17))


def _qmax(bits: int) -> int:
    return 2 ** (bits - 1) - 1


def max_abs_scale(tensor: torch.Tensor, bits: int, per_channel: bool) -> torch.Tensor:
    """s = max|t| / (2^(b−1) − 1), over the whole tensor (shape ()) or per output channel
    (dim 0; shape (C_out,)), in float64. An all-zero tensor or channel gets s = 1."""
    values = tensor.detach().to(torch.float64).abs()
    peak = values.flatten(1).amax(dim=1) if per_channel else values.max()
    return torch.where(peak > 0, peak / _qmax(bits), torch.ones_like(peak))


def quantise_values(tensor: torch.Tensor, scale: torch.Tensor, bits: int) -> torch.Tensor:
    """clamp(round(t / s), −Q, Q) as float64 integers; ``scale`` broadcasts along dim 0."""
    scale = scale.reshape(-1, *([1] * (tensor.dim() - 1))) if scale.dim() else scale
    q = _qmax(bits)
    return torch.clamp(torch.round(tensor.detach().to(torch.float64) / scale), -q, q)


class _FixedPoint:
    """The integer semantics shared by both layer kinds (module docstring)."""

    fixed_point_bits: int
    weight_scale: torch.Tensor
    input_scale: torch.Tensor

    def _setup(self, source: nn.Module, bits: int, per_channel: bool, input_peak: float) -> None:
        self.fixed_point_bits = bits
        self.per_channel = per_channel
        weight_scale = max_abs_scale(source.weight, bits, per_channel)
        q_w = quantise_values(source.weight, weight_scale, bits)
        input_scale = torch.tensor(input_peak / _qmax(bits) if input_peak > 0 else 1.0, dtype=torch.float64)
        fan_in = source.weight[0].numel()
        if _qmax(bits) ** 2 * fan_in >= 2 ** 52:
            raise ValueError(f"{bits}-bit accumulation over {fan_in} inputs may exceed float64's exact range")
        self.register_buffer("weight_scale", weight_scale)
        self.register_buffer("input_scale", input_scale)
        with torch.no_grad():
            shaped = weight_scale.reshape(-1, *([1] * (q_w.dim() - 1))) if weight_scale.dim() else weight_scale
            self.weight.copy_((q_w * shaped).to(self.weight.dtype))
            if source.bias is not None:
                self.bias.copy_(source.bias.detach())

    def integer_weight(self) -> torch.Tensor:
        """q_w as int64 (recovered exactly from the dequantised float weight)."""
        return quantise_values(self.weight, self.weight_scale, self.fixed_point_bits).to(torch.int64)

    def integer_input(self, x: torch.Tensor) -> torch.Tensor:
        """q_x as int64."""
        return quantise_values(x, self.input_scale, self.fixed_point_bits).to(torch.int64)

    def _channel_scale(self, dims: int) -> torch.Tensor:
        """s_w·s_x shaped to broadcast over the output channels of a ``dims``-D output."""
        scale = self.weight_scale * self.input_scale
        if scale.dim() == 0:
            return scale
        return scale.reshape(-1, *([1] * (dims - 2))) if dims > 2 else scale

    def integer_bias(self) -> torch.Tensor | None:
        """q_b = round(b / (s_w·s_x)) as int64, or None without a bias."""
        if self.bias is None:
            return None
        return torch.round(self.bias.detach().to(torch.float64) / (self.weight_scale * self.input_scale)
                           ).to(torch.int64)

    def accumulate(self, x: torch.Tensor) -> torch.Tensor:
        """The integer accumulators Σ q_w·q_x + q_b (int64), exactly."""
        q_x = self.integer_input(x).to(torch.float64)
        q_w = self.integer_weight().to(torch.float64)
        acc = self._integer_op(q_x, q_w)
        q_b = self.integer_bias()
        if q_b is not None:
            acc = acc + q_b.to(torch.float64).reshape(-1, *([1] * (acc.dim() - 2)))
        return acc.to(torch.int64)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        acc = self.accumulate(x).to(torch.float64)
        return (acc * self._channel_scale(acc.dim())).to(x.dtype)


class QuantisedLinear(_FixedPoint, nn.Linear):
    """A Linear layer computing in b-bit fixed point (module docstring)."""

    def _integer_op(self, q_x, q_w):
        return F.linear(q_x, q_w)


class QuantisedConv2d(_FixedPoint, nn.Conv2d):
    """A Conv2d layer computing in b-bit fixed point (module docstring)."""

    def _integer_op(self, q_x, q_w):
        return F.conv2d(q_x, q_w, None, self.stride, self.padding, self.dilation, self.groups)


def _replacement(module: nn.Module, bits: int, per_channel: bool, input_peak: float) -> nn.Module:
    with torch.device("meta"):
        if isinstance(module, nn.Linear):
            new = QuantisedLinear(module.in_features, module.out_features, bias=module.bias is not None)
        else:
            new = QuantisedConv2d(module.in_channels, module.out_channels, module.kernel_size,
                                  stride=module.stride, padding=module.padding, dilation=module.dilation,
                                  groups=module.groups, bias=module.bias is not None,
                                  padding_mode=module.padding_mode)
    new = new.to_empty(device=module.weight.device)
    new._setup(module, bits, per_channel, input_peak)
    new.train(module.training)
    return new


def _input_peaks(model: nn.Module, calibration: torch.Tensor) -> dict[str, float]:
    peaks: dict[str, float] = {}

    def record(name: str, _module: nn.Module, x: torch.Tensor) -> None:
        peaks[name] = max(peaks.get(name, 0.0), float(x.abs().max()))

    observe_inputs(model, calibration, record)
    return peaks


def quantise_model(model: nn.Module, bits: int, calibration: torch.Tensor,
                   per_channel: bool = False) -> nn.Module:
    """A copy of ``model`` whose Linear/Conv2d layers compute in ``bits``-bit fixed point.

    ``calibration``: a batch of inputs; each layer's activation scale is the max |input| the
    float model shows it on this batch. ``per_channel``: one weight scale per output channel
    instead of one per tensor. Pruning masks are folded in first (pruned weights stay 0).
    ``model`` itself is not changed. ValueError for a width outside 2..16 bits.
    """
    if isinstance(bits, bool) or bits not in FIXED_POINT_BITS:
        raise ValueError(f"bits must be an int in 2..16, got {bits!r}")
    refresh_pruned_weights(model)      # deepcopy refuses the non-leaf weight of a pruned layer
    copied = copy.deepcopy(model)
    make_permanent(copied)
    peaks = _input_peaks(copied, calibration)
    for name, module in prunable_layers(copied).items():
        parent_name, _, leaf = name.rpartition(".")
        parent = copied.get_submodule(parent_name) if parent_name else copied
        setattr(parent, leaf, _replacement(module, bits, per_channel, peaks.get(name, 0.0)))
    return copied


def weight_bits_of(model: nn.Module) -> dict[str, int]:
    """{layer: stored bits per weight value}: the fixed-point or shared-index width a layer
    declares (``fixed_point_bits`` / ``stored_weight_bits``), else 32."""
    return {name: int(getattr(m, "stored_weight_bits", getattr(m, "fixed_point_bits", 32)))
            for name, m in prunable_layers(model).items()}

