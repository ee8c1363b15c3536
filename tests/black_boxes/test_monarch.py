"""MonarchPhaseMasks: two stacked phase masks in a Monarch factorisation."""

import math

import numpy as np
import pytest
import torch

from skhybrid.black_boxes import MonarchPhaseMasks, make_black_box
from skhybrid.black_boxes.monarch import MAX_BLOCK_ASPECT, block_sizes


def _brute_force_block_sizes(n):
    """The documented rule by exhaustive search."""
    best = None
    for b in range(1, n + 1):
        if b * b > 2 * n:  # then b * s >= b * b is more than the trivial 2n
            break
        for s in range(b, MAX_BLOCK_ASPECT * b + 1):
            if b * s >= n:
                key = (b * s, s - b)
                if best is None or key < best[0]:
                    best = (key, (b, s))
    return best[1]


@pytest.mark.parametrize(
    "n, expected",
    [(1, (1, 1)), (2, (1, 2)), (4, (2, 2)), (5, (2, 3)), (7, (2, 4)), (10, (2, 5)),
     (12, (3, 4)), (13, (2, 7)), (64, (8, 8)), (192, (12, 16)), (1021, (31, 33))],
)
def test_block_sizes_examples(n, expected):
    assert block_sizes(n) == expected


def test_block_sizes_follow_the_documented_rule():
    for n in range(1, 120):
        b, s = block_sizes(n)
        assert (b, s) == _brute_force_block_sizes(n), n
        assert b * s - n < math.sqrt(n) + 1e-12


def test_block_sizes_validation():
    with pytest.raises(ValueError, match="n must be"):
        block_sizes(0)
    with pytest.raises(TypeError, match="n must be"):
        block_sizes(3.0)


def _naive_matrix(params, box):
    """The dense matrix of one configuration by explicit loops over y[q, k] and x[i, j]."""
    b_in, s_in, b_out, s_out = box.b_in, box.s_in, box.b_out, box.s_out
    p = params.numpy()
    n1 = b_out * b_in * s_in
    theta1 = p[:n1].reshape(b_out, b_in, s_in)
    theta2 = p[n1:].reshape(s_out, b_out, b_in)
    A = np.zeros((s_out * b_out, b_in * s_in))
    for q in range(s_out):
        for k in range(b_out):
            for i in range(b_in):
                for j in range(s_in):
                    A[q * b_out + k, i * s_in + j] = math.cos(theta2[q, k, i] + theta1[k, i, j])
    return torch.from_numpy(A[: box.d_out, : box.d_in] / math.sqrt(b_in * s_in))


@pytest.mark.parametrize("d_in, d_out", [(7, 5), (10, 12), (3, 13), (12, 10), (1, 2), (16, 9)])
def test_padding_and_cropping_match_the_naive_loops(d_in, d_out):
    box = MonarchPhaseMasks(d_in, d_out, random_state=0)
    assert (box.b_in, box.s_in) == block_sizes(d_in)
    assert (box.b_out, box.s_out) == block_sizes(d_out)
    assert box.n_params == box.b_in * box.b_out * (box.s_in + box.s_out)
    g = torch.Generator().manual_seed(d_in * 100 + d_out)
    P = 2 * math.pi * torch.rand(2, box.n_params, dtype=torch.float64, generator=g)
    X = torch.randn(4, d_in, dtype=torch.float64, generator=g)
    Y = box.query(X, P)
    for i in range(2):
        A = _naive_matrix(P[i], box)
        torch.testing.assert_close(box.matrix(P[i]), A, rtol=0, atol=1e-13)
        torch.testing.assert_close(Y[i], X @ A.T, rtol=0, atol=1e-13)


def test_initialisation():
    box = make_black_box("monarch", 12, 10, random_state=0)
    n1 = box.b_out * box.b_in * box.s_in
    assert ((box.params0[:n1] - math.pi / 2).abs() <= 0.1).all()
    assert (box.params0[n1:].abs() <= 0.1).all()
    # The two phases add up to near pi/2: A starts near 0, where cos is steepest.
    A = box.matrix() * math.sqrt(box.b_in * box.s_in)
    assert (A.abs() <= math.sin(0.2) + 1e-12).all()
    assert box.mu == 1e-4 and box.param_period == 2 * math.pi


def test_entries_bounded():
    box = MonarchPhaseMasks(6, 6, random_state=0)
    g = torch.Generator().manual_seed(0)
    P = 2 * math.pi * torch.rand(8, box.n_params, dtype=torch.float64, generator=g)
    A = box.query(torch.eye(6, dtype=torch.float64), P)
    assert A.abs().max() <= 1 / math.sqrt(box.b_in * box.s_in) + 1e-15
