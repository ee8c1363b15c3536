"""SpatialLightModulator: a phase-only mask, A = cos(W) / sqrt(d_in)."""

import math

import torch

from skhybrid.black_boxes import SpatialLightModulator, make_black_box


def test_matrix_formula():
    box = make_black_box("slm", 6, 4, random_state=0)
    W = torch.linspace(0, 7, 24, dtype=torch.float64)
    torch.testing.assert_close(box.matrix(W), torch.cos(W.reshape(4, 6)) / math.sqrt(6))


def test_entries_bounded_by_one_over_sqrt_d_in():
    box = SpatialLightModulator(9, 5, random_state=0)
    W = torch.linspace(-10, 10, 2001, dtype=torch.float64)[:, None] + torch.zeros(1, box.n_params)
    eye = torch.eye(9, dtype=torch.float64)
    A = box.query(eye, W.to(torch.float64))
    bound = 1 / math.sqrt(9)
    assert A.abs().max() <= bound + 1e-15
    assert A.max() > bound - 1e-4 and A.min() < -bound + 1e-4


def test_matrix_is_close_to_zero_at_initialisation():
    box = SpatialLightModulator(16, 8, random_state=0)
    assert ((box.params0 - math.pi / 2).abs() <= 0.1).all()
    assert box.matrix().abs().max() <= math.sin(0.1) / 4 + 1e-15
    assert box.mu == 1e-4 and box.param_period == 2 * math.pi


def test_phases_are_periodic():
    box = SpatialLightModulator(3, 2, random_state=0)
    shifted = box.matrix(box.params0 + 2 * math.pi)
    torch.testing.assert_close(shifted, box.matrix(), rtol=0, atol=1e-14)
