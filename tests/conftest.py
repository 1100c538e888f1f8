"""Shared test set-up."""

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    # The test machines' 2 cores are shared: under load, several intra-op threads spin against
    # each other and a tiny training takes up to 50x longer. Restored afterwards.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
