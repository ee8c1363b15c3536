"""MicroringBank: A_ij = 2 t(phi_ij) - 1, one all-pass ring per entry."""

import math

import numpy as np
import pytest
import torch

from skhybrid.black_boxes import MicroringBank, make_black_box
from skhybrid.black_boxes.microring import ring_transmission


def test_ring_transmission_extremes_and_types():
    a, r = 0.8, 0.9
    assert ring_transmission(0.0, a, r) == pytest.approx(abs(a - r) / (1 - a * r))
    assert ring_transmission(math.pi, a, r) == pytest.approx((a + r) / (1 + a * r))
    phi = np.linspace(-7, 7, 101)
    t_np = ring_transmission(phi, a, r)
    t_torch = ring_transmission(torch.from_numpy(phi), a, r)
    assert isinstance(t_np, np.ndarray) and torch.is_tensor(t_torch)
    np.testing.assert_allclose(t_torch.numpy(), t_np, rtol=0, atol=1e-15)
    # A passive ring never amplifies.
    assert (t_np > 0).all() and (t_np <= 1).all()


def test_weight_range_at_default_loss_and_coupling():
    box = MicroringBank(1, 1)
    phi = torch.linspace(0, 2 * math.pi, 20001, dtype=torch.float64)[:, None]
    W = box.query(torch.ones(1, 1, dtype=torch.float64), phi).reshape(-1)
    assert W.min() >= -0.286 and W.max() <= 0.977
    assert abs(W.min().item() - (-0.286)) < 1e-3 and abs(W.max().item() - 0.977) < 1e-3


def test_initial_weights():
    box = MicroringBank(30, 30, random_state=0)
    assert ((box.params0 >= 0.01) & (box.params0 <= math.pi / 4)).all()
    A = box.matrix()
    # The image of U(0.01, pi/4): [-0.283, 0.858] (method.md quotes [-0.28, 0.78]).
    assert A.min() >= -0.2835 and A.max() <= 0.8583
    assert A.min() < -0.28 and A.max() > 0.85
    assert box.mu == 1e-4 and box.param_range == (0.0, 2 * math.pi)


def test_no_normalisation_and_matrix_formula():
    box = make_black_box("mrr", 7, 2, a=0.7, r=0.95, random_state=0)
    assert (box.a, box.r) == (0.7, 0.95)
    phi = torch.linspace(0, 3, 14, dtype=torch.float64)
    expected = 2 * ring_transmission(phi.reshape(2, 7), 0.7, 0.95) - 1
    torch.testing.assert_close(box.matrix(phi), expected, rtol=0, atol=1e-15)
    assert "a=0.7, r=0.95" in repr(box)


@pytest.mark.parametrize(
    "kwargs, name",
    [({"a": 0.0}, "a"), ({"a": 1.2}, "a"), ({"a": "0.8"}, "a"), ({"a": True}, "a"),
     ({"r": 1.0}, "r"), ({"r": 0.0}, "r"), ({"r": float("nan")}, "r")],
)
def test_invalid_loss_and_coupling(kwargs, name):
    with pytest.raises(ValueError, match=f"^{name} must be"):
        MicroringBank(3, 2, **kwargs)


def test_lossless_ring_allowed():
    box = MicroringBank(3, 2, a=1.0, r=0.5)
    # A lossless all-pass ring transmits everything: every weight is 1.
    torch.testing.assert_close(box.matrix(), torch.ones(2, 3, dtype=torch.float64))
