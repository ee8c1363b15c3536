"""MatrixBlackBox: the ideal programmable matrix."""

import math

import torch

from skhybrid.black_boxes import MatrixBlackBox, make_black_box


def test_matrix_is_the_reshaped_parameters():
    box = make_black_box("matrix", 4, 3, random_state=0)
    P = torch.arange(12, dtype=torch.float64)
    torch.testing.assert_close(box.matrix(P), P.reshape(3, 4), rtol=0, atol=0)
    X = torch.randn(5, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(box.query(X, P), X @ P.reshape(3, 4).T, rtol=0, atol=1e-12)


def test_initialisation_like_nn_linear():
    box = MatrixBlackBox(25, 40, random_state=0)
    bound = 1 / math.sqrt(25)
    assert box.n_params == 1000 and box.params0.abs().max() <= bound
    assert box.params0.min() < -0.9 * bound and box.params0.max() > 0.9 * bound
    assert abs(box.params0.mean().item()) < 0.02
    lo, hi = box.param_range
    assert lo == -4 * bound and hi == 4 * bound


def test_finite_differences_are_exact_with_mu_one():
    box = MatrixBlackBox(3, 2, random_state=1)
    assert box.mu == 1.0
    X = torch.randn(4, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    u = torch.randn(box.n_params, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    p = box.params0
    diff = (box.query(X, p + box.mu * u) - box.query(X, p)) / box.mu
    torch.testing.assert_close(diff, X @ u.reshape(2, 3).T, rtol=0, atol=1e-12)
