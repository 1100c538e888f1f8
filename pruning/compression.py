"""Deep Compression's later stages stacked on a pruned model, as one step the jobs share.

Han, Mao, Dally (ICLR 2016) prune, then share weights (§3: k-means codebook per layer, centroids
fine-tuned), then Huffman-code (§4, a storage matter: :func:`pruning.sharing.compressed_size`).
:func:`compress` applies, to a copy of a pruned model, in this order:

1. weight sharing with ``share_bits``-bit indices (:func:`pruning.sharing.share_weights`) and
   ``share_epochs`` of centroid fine-tuning (:func:`pruning.sharing.fine_tune_shared`);
2. post-training fixed-point quantisation (:func:`pruning.quantise.quantise_model`): weights of
   ``quantise_bits`` bits, activations of ``activation_bits`` (default: the same), per-tensor
   or ``per_channel`` weight scales, activation scales from the first ``calibration_samples``
   training images. On a shared model the codebook values become fixed point (EIE's 4-bit
   indices into 16-bit values).

Either stage may be left out; the pruning masks are kept (pruned weights stay exactly 0).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from torch import nn

from pruning.han import copy_model
from pruning.quantise import FIXED_POINT_BITS, quantise_model
from pruning.sharing import SHARED_BITS, fine_tune_shared, share_weights
from pruning.train import TrainConfig

__all__ = ["Compression", "CompressionError", "compress"]


class CompressionError(ValueError):
    """A compression setting out of range; ``field`` names it, the message says what is valid."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field, self.reason = field, message


def _width(value, valid: tuple[int, ...], field: str) -> None:
    if value is not None and (isinstance(value, bool) or value not in valid):
        raise CompressionError(field, f"{value!r} is not a width in {valid[0]}..{valid[-1]} bits")


@dataclass(frozen=True)
class Compression:
    """What :func:`compress` does (module docstring); all None / False: nothing."""

    quantise_bits: int | None = None
    activation_bits: int | None = None
    per_channel: bool = False
    share_bits: int | None = None
    share_epochs: int = 1
    calibration_samples: int = 1000

    def __post_init__(self) -> None:
        _width(self.quantise_bits, FIXED_POINT_BITS, "quantise_bits")
        _width(self.activation_bits, FIXED_POINT_BITS, "activation_bits")
        _width(self.share_bits, SHARED_BITS, "share_bits")
        if self.quantise_bits is None and (self.activation_bits is not None or self.per_channel):
            raise CompressionError("activation_bits" if self.activation_bits is not None else "per_channel",
                                   "applies to fixed-point quantisation only; give its width too")
        if self.share_bits is not None and self.per_channel:
            raise CompressionError("per_channel", "a shared layer has one codebook for all its output channels, "
                                   "so its values are quantised with one scale per tensor, not per channel")
        if isinstance(self.share_epochs, bool) or not isinstance(self.share_epochs, int) or self.share_epochs < 0:
            raise CompressionError("share_epochs", f"{self.share_epochs!r}: an int >= 0")
        if self.calibration_samples < 1:
            raise CompressionError("calibration_samples", f"{self.calibration_samples!r}: at least 1")

    @property
    def enabled(self) -> bool:
        return self.quantise_bits is not None or self.share_bits is not None

    @property
    def label(self) -> str:
        """A short name, e.g. ``5-bit shared, W8A16 per-channel``."""
        parts = []
        if self.share_bits is not None:
            parts.append(f"{self.share_bits}-bit shared")
        if self.quantise_bits is not None:
            activations = self.activation_bits or self.quantise_bits
            parts.append(f"W{self.quantise_bits}A{activations}" + (" per-channel" if self.per_channel else ""))
        return ", ".join(parts) or "none"


def compress(model: nn.Module, compression: Compression, data, fine_tune: TrainConfig, seed: int = 0,
             progress: bool = True) -> nn.Module:
    """A compressed copy of ``model`` (module docstring); ``model`` is not changed. ``data``
    has ``.train`` (fine-tuning and calibration images); ``fine_tune`` is the centroid
    training (its epochs replaced by ``compression.share_epochs``)."""
    compressed = copy_model(model)
    if compression.share_bits is not None:
        shared = share_weights(compressed, compression.share_bits)
        if compression.share_epochs:
            fine_tune_shared(compressed, shared, data, dataclasses.replace(fine_tune, epochs=compression.share_epochs),
                             seed=seed, progress=progress)
    if compression.quantise_bits is not None:
        calibration = data.train.tensors[0][: compression.calibration_samples]
        compressed = quantise_model(compressed, compression.quantise_bits, calibration,
                                    per_channel=compression.per_channel,
                                    activation_bits=compression.activation_bits)
    return compressed
