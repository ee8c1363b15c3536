"""Shared fixtures: every test is seeded; torch runs single-threaded for speed and stability."""

import numpy as np
import pytest
import torch
from sklearn.datasets import load_iris

torch.set_num_threads(1)


@pytest.fixture
def gen():
    """A seeded CPU torch.Generator."""
    return torch.Generator().manual_seed(0)


@pytest.fixture(scope="session")
def iris():
    """Iris, shuffled once (seeded), as ``(X, y)``; tests must not modify it."""
    X, y = load_iris(return_X_y=True)
    order = np.random.RandomState(0).permutation(len(y))
    return X[order], y[order]
