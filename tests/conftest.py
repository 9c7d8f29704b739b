"""Shared fixtures."""

from __future__ import annotations

import pytest


@pytest.fixture
def torch_two_threads():
    """torch on 2 threads (the CI machine's cores) and seed 0 for the test; restored afterwards."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(2)
    torch.manual_seed(0)
    yield
    torch.set_num_threads(n)
