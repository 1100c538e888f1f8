"""Tiny synthetic data for training tests (real data: tests/test_datasets.py, tests/test_jobs.py)."""

import pytest
import torch
from torch.utils.data import TensorDataset


def blobs(n: int, seed: int) -> TensorDataset:
    """Two Gaussian blobs of 1x28x28 images around fixed random centres, labels 0/1."""
    centres = torch.randn(2, 1, 28, 28, generator=torch.Generator().manual_seed(1234))
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 2, (n,), generator=generator)
    images = centres[labels] + 1.5 * torch.randn(n, 1, 28, 28, generator=generator)
    return TensorDataset(images.float(), labels.long())


def _mnist_found() -> bool:
    from pruning.datasets import DataError, find_files
    try:
        find_files("mnist")
    except DataError:
        return False
    return True


# Tests that train on real MNIST read the offline copy (../shared/data/mnist, as CI has it) and
# never download; where no copy is reachable they skip and say so.
needs_mnist = pytest.mark.skipif(not _mnist_found(),
                                 reason="no offline MNIST copy found (../shared/data/mnist, $PRUNESIM_DATA)")
