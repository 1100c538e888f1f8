"""Random-shift augmentation (pruning.augment) and its use in training: hand-checked
offsets, background fill, determinism, and that pruned weights stay pruned."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from pruning.augment import random_shift
from pruning.magnitude import prunable_layers, prune_to_density
from pruning.train import TrainConfig, train
from pruning.zoo import build_model
from synthetic import blobs


def _offsets(seed: int, n: int, max_shift: int) -> torch.Tensor:
    """The (dy, dx) content moves random_shift draws: crop offset o moves content by s - o."""
    drawn = torch.randint(0, 2 * max_shift + 1, (2, n), generator=torch.Generator().manual_seed(seed))
    return max_shift - drawn


def _moved_by_hand(image: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """One (C, H, W) image moved by (dy, dx) pixels, loop by loop, background = its minimum."""
    out = torch.full_like(image, float(image.min()))
    _, height, width = image.shape
    for row in range(height):
        for col in range(width):
            source_row, source_col = row - dy, col - dx
            if 0 <= source_row < height and 0 <= source_col < width:
                out[:, row, col] = image[:, source_row, source_col]
    return out


def test_two_images_by_hand():
    # Seed 6 draws content moves (dy: -1, +1; dx: +1, -1) with max_shift 1: the first image
    # moves up and right, the second down and left; each fills with its own minimum.
    images = torch.arange(40, dtype=torch.float32).view(2, 1, 4, 5)
    moved = random_shift(images, 1, torch.Generator().manual_seed(6))
    assert _offsets(6, 2, 1).tolist() == [[-1, 1], [1, -1]]
    assert moved[0, 0].tolist() == [[0, 5, 6, 7, 8], [0, 10, 11, 12, 13],
                                    [0, 15, 16, 17, 18], [0, 0, 0, 0, 0]]
    assert moved[1, 0].tolist() == [[20, 20, 20, 20, 20], [21, 22, 23, 24, 20],
                                    [26, 27, 28, 29, 20], [31, 32, 33, 34, 20]]


@pytest.mark.parametrize("max_shift", [1, 2, 3])
def test_matches_a_loop_per_pixel(max_shift):
    images = torch.randn(6, 2, 7, 9, generator=torch.Generator().manual_seed(max_shift))
    moved = random_shift(images, max_shift, torch.Generator().manual_seed(11))
    shifts = _offsets(11, 6, max_shift)
    assert shifts.abs().max() <= max_shift
    for i in range(6):
        expected = _moved_by_hand(images[i], int(shifts[0, i]), int(shifts[1, i]))
        assert torch.equal(moved[i], expected)


def test_digit_inside_the_margin_keeps_its_ink():
    # A normalised "digit": background -0.42 (MNIST's 0 after normalisation), ink inside a
    # 2-pixel margin, so a shift of up to 2 pixels loses none of it.
    images = torch.full((8, 1, 12, 12), -0.42)
    images[:, :, 3:9, 4:8] = torch.rand(8, 1, 6, 4, generator=torch.Generator().manual_seed(0)) + 1
    moved = random_shift(images, 2, torch.Generator().manual_seed(5))
    assert torch.allclose((moved + 0.42).sum(dim=(1, 2, 3)), (images + 0.42).sum(dim=(1, 2, 3)))
    assert torch.equal(moved.amin(dim=(1, 2, 3)), images.amin(dim=(1, 2, 3)))


def test_zero_shift_and_determinism_and_bad_input():
    images = torch.randn(4, 1, 6, 6)
    generator = torch.Generator().manual_seed(0)
    state = generator.get_state()
    assert random_shift(images, 0, generator) is images
    assert torch.equal(generator.get_state(), state)          # nothing drawn
    a = random_shift(images, 2, torch.Generator().manual_seed(9))
    b = random_shift(images, 2, torch.Generator().manual_seed(9))
    assert torch.equal(a, b)
    assert not torch.equal(a, random_shift(images, 2, torch.Generator().manual_seed(10)))
    with pytest.raises(ValueError, match="max_shift"):
        random_shift(images, -1, generator)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        random_shift(images[0], 1, generator)
    with pytest.raises(ValueError, match="augment_shift"):
        TrainConfig(augment_shift=-2)


DATA = SimpleNamespace(train=blobs(256, 1), val=blobs(64, 2), test=blobs(64, 3))


def _pruned_lenet5() -> torch.nn.Module:
    model = build_model("lenet-5", seed=0)
    for layer in prunable_layers(model).values():
        prune_to_density(layer, 0.3)
    return model


def test_training_with_shifts_is_seeded_and_keeps_masks():
    runs = []
    for augment in (2, 2, 0):
        model = _pruned_lenet5()
        train(model, DATA, TrainConfig(epochs=1, lr=0.02, batch_size=32, augment_shift=augment),
              seed=4, progress=False)
        runs.append(model)
        for layer in prunable_layers(model).values():
            assert not bool(layer.weight[~layer.weight_mask.bool()].any())
    first, again, plain = (m.state_dict() for m in runs)
    assert all(torch.equal(first[k], again[k]) for k in first)
    # Ignoring augment_shift would make the third run equal the first two.
    assert not all(torch.equal(first[k], plain[k]) for k in first)
