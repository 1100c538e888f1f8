"""Post-training fixed-point quantisation of weights and activations (symmetric, integer MACs).

Each Linear/Conv2d layer becomes a :class:`QuantisedLinear` / :class:`QuantisedConv2d` that
computes exactly what an integer datapath computes:

    q_x = clamp(round(x / s_x), −Q_a, Q_a)        activations, one scale per tensor
    q_w = clamp(round(w / s_w), −Q_w, Q_w)        weights, one scale per tensor or per output channel
    q_b = round(b / (s_w·s_x))                     bias in the accumulator's units (int32 in practice)
    acc = Σ q_w·q_x + q_b                           integer multiply-accumulate
    y   = acc · s_w·s_x                             back to real units for the next layer

with Q = 2^(b−1) − 1 (b = 8: ±127, b = 16: ±32767) for the weight width b_w and the activation
width b_a (equal by default; W8A16 keeps 8-bit weights and 16-bit activations), and round half
to even (``torch.round``). Each layer may have its own widths. Scales are max-abs:
s_w = max|w| / Q_w (per tensor or per output channel), s_x = max|x| / Q_a over a calibration
batch (the float model's input to that layer). Activation scales are per tensor: a
per-input-channel activation scale would not factor out of the sum.

The integer accumulation runs in float64 on integer values, which is exact while every partial
sum stays below 2^53 (|acc| ≤ Q_w·Q_a·fan_in + |q_b|: 1.3e7 for 8-bit LeNet fc1, 8.6e11 for
16 bits), so ``accumulate`` equals an int64 computation bit for bit (checked on construction of
the bound).

The layer keeps ``weight`` as the dequantised values q_w·s_w (float32 holds them so that
q_w = round(weight / s_w) is recovered exactly), so exports and workloads read the real
weights; ``fixed_point_bits`` (weights) and ``activation_bits`` tell them the widths (see
:mod:`sim.workload`). Pruned weights (0) stay exactly 0. A layer with shared weights
(:mod:`pruning.sharing`) stays shared: its at most 2^b distinct values are quantised (rounding
can only merge them), and it keeps ``stored_weight_bits`` and ``codebook_entries``, so its
codebook now holds b_w-bit fixed-point values (EIE's 4-bit indices into 16-bit values). Such a
layer takes one weight scale per tensor: per-channel scales would give every output channel its
own copy of the codebook (refused).
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
           "quantise_values", "value_bits_of", "weight_bits_of"]

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
    activation_bits: int
    weight_scale: torch.Tensor
    input_scale: torch.Tensor

    def _setup(self, source: nn.Module, bits: int, activation_bits: int, per_channel: bool,
               input_peak: float) -> None:
        self.fixed_point_bits = bits
        self.activation_bits = activation_bits
        self.per_channel = per_channel
        for shared in ("stored_weight_bits", "codebook_entries"):
            if hasattr(source, shared):
                setattr(self, shared, getattr(source, shared))
        weight_scale = max_abs_scale(source.weight, bits, per_channel)
        q_w = quantise_values(source.weight, weight_scale, bits)
        input_scale = torch.tensor(input_peak / _qmax(activation_bits) if input_peak > 0 else 1.0,
                                   dtype=torch.float64)
        fan_in = source.weight[0].numel()
        if _qmax(bits) * _qmax(activation_bits) * fan_in >= 2 ** 52:
            raise ValueError(f"{bits}×{activation_bits}-bit accumulation over {fan_in} inputs may exceed "
                             "float64's exact range")
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
        return quantise_values(x, self.input_scale, self.activation_bits).to(torch.int64)

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


def _replacement(module: nn.Module, bits: int, activation_bits: int, per_channel: bool,
                 input_peak: float) -> nn.Module:
    with torch.device("meta"):
        if isinstance(module, nn.Linear):
            new = QuantisedLinear(module.in_features, module.out_features, bias=module.bias is not None)
        else:
            new = QuantisedConv2d(module.in_channels, module.out_channels, module.kernel_size,
                                  stride=module.stride, padding=module.padding, dilation=module.dilation,
                                  groups=module.groups, bias=module.bias is not None,
                                  padding_mode=module.padding_mode)
    new = new.to_empty(device=module.weight.device)
    new._setup(module, bits, activation_bits, per_channel, input_peak)
    new.train(module.training)
    return new


def _input_peaks(model: nn.Module, calibration: torch.Tensor) -> dict[str, float]:
    peaks: dict[str, float] = {}

    def record(name: str, _module: nn.Module, x: torch.Tensor) -> None:
        peaks[name] = max(peaks.get(name, 0.0), float(x.abs().max()))

    observe_inputs(model, calibration, record)
    return peaks


def _widths(value: int | dict[str, int] | None, layers: list[str], what: str, default=None) -> dict[str, int]:
    """{layer: width} from one width for every layer or a {layer: width} dict naming each layer;
    ``None`` takes ``default`` ({layer: width}). ValueError naming ``what`` otherwise."""
    if value is None:
        return dict(default)
    widths = dict(value) if isinstance(value, dict) else {name: value for name in layers}
    unknown, missing = sorted(set(widths) - set(layers)), sorted(set(layers) - set(widths))
    if unknown or missing:
        raise ValueError(f"{what}: per-layer widths must name every prunable layer {layers}; "
                         f"unknown {unknown or 'none'}, missing {missing or 'none'}")
    for name, bits in widths.items():
        if isinstance(bits, bool) or bits not in FIXED_POINT_BITS:
            raise ValueError(f"{what} must be an int in 2..16, got {bits!r} (layer '{name}')")
    return widths


def quantise_model(model: nn.Module, bits: int | dict[str, int], calibration: torch.Tensor,
                   per_channel: bool = False, activation_bits: int | dict[str, int] | None = None) -> nn.Module:
    """A copy of ``model`` whose Linear/Conv2d layers compute in fixed point: weights of ``bits``
    bits, input activations of ``activation_bits`` bits (default: ``bits``). Either may be one
    width for every layer or a {layer: width} dict naming every prunable layer.

    ``calibration``: a batch of inputs; each layer's activation scale is the max |input| the
    float model shows it on this batch. ``per_channel``: one weight scale per output channel
    instead of one per tensor. Pruning masks are folded in first (pruned weights stay 0).
    ``model`` itself is not changed. ValueError for a width outside 2..16 bits.
    """
    names = list(prunable_layers(model))
    weight_bits = _widths(bits, names, "bits")
    input_bits = _widths(activation_bits, names, "activation_bits", default=weight_bits)
    shared = [n for n, m in prunable_layers(model).items() if hasattr(m, "codebook_entries")]
    if per_channel and shared:
        raise ValueError(f"per-channel scales on shared layers {shared}: their codebook is per layer; "
                         "quantise them per tensor")
    refresh_pruned_weights(model)      # deepcopy refuses the non-leaf weight of a pruned layer
    copied = copy.deepcopy(model)
    make_permanent(copied)
    peaks = _input_peaks(copied, calibration)
    for name, module in prunable_layers(copied).items():
        parent_name, _, leaf = name.rpartition(".")
        parent = copied.get_submodule(parent_name) if parent_name else copied
        setattr(parent, leaf, _replacement(module, weight_bits[name], input_bits[name], per_channel,
                                           peaks.get(name, 0.0)))
    return copied


def weight_bits_of(model: nn.Module) -> dict[str, int]:
    """{layer: stored bits per weight value}: the fixed-point or shared-index width a layer
    declares (``fixed_point_bits`` / ``stored_weight_bits``), else 32."""
    return {name: int(getattr(m, "stored_weight_bits", getattr(m, "fixed_point_bits", 32)))
            for name, m in prunable_layers(model).items()}


def value_bits_of(module: nn.Module) -> int:
    """Bits of one weight *value* of a layer (a shared layer's codebook entries): its
    ``fixed_point_bits``, else 32 (float32)."""
    return int(getattr(module, "fixed_point_bits", 32))

