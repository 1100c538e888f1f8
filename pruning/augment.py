"""Training-time data augmentation: random translations of image batches.

Han et al. (2015) train their LeNets without augmentation (Caffe's MNIST recipe); a random
shift of a few pixels is the usual addition for MNIST-like digits (Simard et al. 2003,
"Best practices for convolutional neural networks applied to visual document analysis",
grow the training set with distorted copies, affine and elastic, and reach 0.4% MNIST
error with a simple CNN). It is off unless asked for (``TrainConfig.augment_shift``), so
Han's recipe stays the default.
"""

from __future__ import annotations

import torch


def random_shift(images: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Each image of ``images`` (N, C, H, W) moved by its own whole-pixel offset (dy, dx),
    both drawn uniformly from -max_shift..max_shift with ``generator``.

    Pixels moved in from outside the frame take the image's own minimum value (the
    background of a normalised MNIST digit, whose blank pixels are its darkest), so a shift
    adds no border of a foreign intensity. Returns a new tensor; ``max_shift == 0`` returns
    ``images`` itself and draws nothing. The draw is 2·N integers from ``generator``, so the
    same generator state gives the same shifts.
    """
    if isinstance(max_shift, bool) or not isinstance(max_shift, int) or max_shift < 0:
        raise ValueError(f"max_shift must be an int >= 0, got {max_shift!r}")
    if max_shift == 0:
        return images
    if images.dim() != 4:
        raise ValueError(f"images must be (N, C, H, W), got shape {tuple(images.shape)}")
    n, channels, height, width = images.shape
    offsets = torch.randint(0, 2 * max_shift + 1, (2, n), generator=generator)
    background = images.amin(dim=(1, 2, 3)).view(n, 1, 1, 1)
    padded = background.expand(n, channels, height + 2 * max_shift, width + 2 * max_shift).clone()
    padded[:, :, max_shift:max_shift + height, max_shift:max_shift + width] = images
    # An offset o in 0..2s crops the padded frame from o, i.e. moves the content by s - o.
    rows = (offsets[0].view(n, 1) + torch.arange(height)).view(n, 1, height, 1)
    cols = (offsets[1].view(n, 1) + torch.arange(width)).view(n, 1, 1, width)
    batch = torch.arange(n).view(n, 1, 1, 1)
    channel = torch.arange(channels).view(1, channels, 1, 1)
    return padded[batch, channel, rows, cols]
