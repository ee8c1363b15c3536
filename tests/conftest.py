"""Shared fixtures: every test is seeded; torch runs single-threaded for speed and stability."""

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture
def gen():
    """A seeded CPU torch.Generator."""
    return torch.Generator().manual_seed(0)
