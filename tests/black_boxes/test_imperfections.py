"""Noise, quantisation and drift, as every query applies them."""

import math

import pytest
import torch

from skhybrid.black_boxes import Imperfections, MatrixBlackBox, make_black_box


def _inputs(n, d, seed=0):
    return torch.randn(n, d, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------- noise
def test_relative_noise_statistics():
    box = make_black_box("matrix", 20, 20, random_state=0, noise=0.1)
    X = _inputs(200, 20)
    clean = box.matrix()
    Y = box.query(X, box.params0)
    rel = (Y - X @ clean.T) / (X @ clean.T).abs()
    assert abs(rel.mean().item()) < 0.01
    assert 0.095 < rel.std().item() < 0.105


def test_additive_noise_statistics_and_every_purpose_is_noisy():
    box = make_black_box("slm", 10, 10, random_state=0, additive_noise=0.02)
    X = _inputs(400, 10)
    clean = X @ box.matrix().T
    for purpose in ("forward", "zo", "surrogate"):
        err = box.query(X, box.params0, purpose=purpose) - clean
        assert abs(err.mean().item()) < 0.002
        assert 0.019 < err.std().item() < 0.021


def test_noise_is_seeded_and_fresh_per_query():
    X = _inputs(5, 4)
    a = make_black_box("matrix", 4, 3, random_state=7, noise=0.1)
    b = make_black_box("matrix", 4, 3, random_state=7, noise=0.1)
    c = make_black_box("matrix", 4, 3, random_state=8, noise=0.1)
    ya, yb = a.query(X, a.params0), b.query(X, b.params0)
    torch.testing.assert_close(ya, yb, rtol=0, atol=0)
    assert not torch.allclose(ya, c.query(X, a.params0))
    assert not torch.allclose(ya, a.query(X, a.params0))  # a repeat is a new measurement


def test_no_imperfections_is_exact():
    box = make_black_box("slm", 4, 3, random_state=0)
    assert not box.imperfections.active
    X = _inputs(5, 4)
    torch.testing.assert_close(box.query(X, box.params0), X @ box.matrix().T, rtol=0, atol=1e-14)


# ------------------------------------------------------------ quantisation
def _quantised_phases(P, bits):
    step = 2 * math.pi / (2**bits - 1)
    return torch.round(torch.remainder(P, 2 * math.pi) / step) * step


def test_device_sees_quantised_parameters_and_stored_ones_stay_continuous():
    box = make_black_box("slm", 4, 3, random_state=0, param_bits=3)
    P = box.params0 + torch.linspace(-7.0, 7.0, box.n_params, dtype=torch.float64)
    P_before = P.clone()
    eye = torch.eye(4, dtype=torch.float64)
    Y = box.query(eye, P).T
    torch.testing.assert_close(Y, box.matrix(_quantised_phases(P, 3)), rtol=0, atol=1e-12)
    assert torch.equal(P, P_before)
    assert not torch.allclose(Y, box.matrix(P))  # matrix() is the unquantised oracle


def test_quantisation_is_consistent_for_equal_and_nearby_parameters():
    box = make_black_box("mrr", 4, 3, random_state=0, param_bits=8)
    X = _inputs(5, 4)
    P = box.params0
    step = 2 * math.pi / 255
    centre = _quantised_phases(P, 8)  # exactly on the quantisation levels
    y0 = box.query(X, P)
    torch.testing.assert_close(box.query(X, P.clone()), y0, rtol=0, atol=0)
    torch.testing.assert_close(box.query(X, centre), y0, rtol=0, atol=0)
    torch.testing.assert_close(box.query(X, centre + 0.3 * step), y0, rtol=0, atol=0)
    torch.testing.assert_close(box.query(X, centre + 2 * math.pi), y0, rtol=0, atol=1e-12)


def test_param_range_override_and_straight_through_gradient():
    box = MatrixBlackBox(3, 2, imperfections={"param_bits": 2, "param_range": (-1.0, 1.0)})
    P = torch.tensor([-3.0, -0.5, -0.2, 0.2, 0.5, 3.0], dtype=torch.float64)
    expected = torch.tensor([-1.0, -1 / 3, -1 / 3, 1 / 3, 1 / 3, 1.0], dtype=torch.float64)
    eye = torch.eye(3, dtype=torch.float64)
    torch.testing.assert_close(box.query(eye, P).T.reshape(-1), expected, rtol=0, atol=1e-12)
    P = P.requires_grad_(True)
    box.query_differentiable(eye, P).sum().backward()
    # Straight through inside the range, zero where the value is clamped.
    torch.testing.assert_close(P.grad, torch.tensor([0.0, 1, 1, 1, 1, 0], dtype=torch.float64))


def test_input_quantisation_clamps_and_rounds():
    box = MatrixBlackBox(4, 4, imperfections={"input_bits": 2})
    eye = torch.eye(4, dtype=torch.float64).reshape(-1)
    X = torch.tensor([[-5.0, -0.5, 0.1, 0.9]], dtype=torch.float64)
    expected = torch.tensor([[-1.0, -1 / 3, 1 / 3, 1.0]], dtype=torch.float64)
    torch.testing.assert_close(box.query(X, eye), expected, rtol=0, atol=1e-12)
    box = MatrixBlackBox(2, 2, imperfections={"input_bits": 1, "input_range": (0.0, 1.0)})
    out = box.query(torch.tensor([[-0.3, 0.7]], dtype=torch.float64), torch.eye(2).reshape(-1))
    torch.testing.assert_close(out, torch.tensor([[0.0, 1.0]], dtype=torch.float64))


def test_param_bits_need_a_range():
    box = MatrixBlackBox(2, 2, imperfections={"param_bits": 4})
    box.query(torch.ones(1, 2), box.params0)  # the matrix has its own range
    from skhybrid.black_boxes import CallableBlackBox

    with pytest.raises(ValueError, match="param_range"):
        CallableBlackBox(_double, 2, 2, 1, [1.0], imperfections={"param_bits": 4})


def _double(X, params):
    return 2 * X


# ------------------------------------------------------------------- drift
def test_drift_moves_the_output_across_reprogrammings():
    box = make_black_box("slm", 4, 3, random_state=0, drift=0.05)
    X = _inputs(5, 4)
    p, q = box.params0, box.params0 + 0.1
    y1 = box.query(X, p)
    torch.testing.assert_close(box.query(X, p), y1, rtol=0, atol=0)  # not reprogrammed
    box.query(X, q)
    y3 = box.query(X, p)  # reprogrammed: a new drift step
    assert not torch.allclose(y1, y3)
    ideal = X @ box.matrix(p).T
    assert (y1 - ideal).abs().max() < 0.2 and (y1 - ideal).abs().max() > 0


def test_drift_is_a_seeded_random_walk():
    p0 = make_black_box("slm", 10, 10, random_state=0).params0
    P = p0 + 1e-3 * torch.arange(40, dtype=torch.float64)[:, None]  # 40 distinct settings
    X = torch.eye(10, dtype=torch.float64)
    a = make_black_box("slm", 10, 10, random_state=5, drift=0.01)
    b = make_black_box("slm", 10, 10, random_state=5, drift=0.01)
    torch.testing.assert_close(a.query(X, P), b.query(X, P), rtol=0, atol=0)
    # The walk's displacement grows like sqrt(steps): after 400 steps, std 0.2.
    a.query(X, P.repeat(9, 1))
    assert 0.15 < a._drift.std().item() < 0.25


# -------------------------------------------------------------- validation
@pytest.mark.parametrize(
    "option, value",
    [
        ("noise", -0.1),
        ("noise", float("nan")),
        ("additive_noise", "0.1"),
        ("drift", float("inf")),
        ("param_bits", 0),
        ("param_bits", 2.5),
        ("input_bits", 33),
        ("input_bits", True),
        ("param_range", (1.0, 0.0)),
        ("param_range", 3.0),
        ("input_range", (0.0,)),
        ("input_range", (0.0, float("nan"))),
    ],
)
def test_invalid_option_raises_naming_it(option, value):
    with pytest.raises(ValueError, match=option):
        Imperfections(**{option: value})
    with pytest.raises(ValueError, match=option):
        make_black_box("slm", 3, 2, **{option: value})


def test_unknown_options_raise():
    with pytest.raises(ValueError, match="nois"):
        make_black_box("slm", 3, 2, nois=0.1)
    with pytest.raises(ValueError, match="valid ones"):
        Imperfections.coerce({"nois": 0.1})
    with pytest.raises(ValueError, match="not both"):
        make_black_box("slm", 3, 2, noise=0.1, imperfections={"drift": 0.1})
    with pytest.raises(ValueError, match="fixed by the name"):
        make_black_box("mzi", 3, 2, cell="classical")
    with pytest.raises(TypeError, match="imperfections"):
        Imperfections.coerce(0.1)


def test_coerce_normalises_and_round_trips():
    imp = Imperfections.coerce({"noise": 1, "input_range": [0, 1], "param_bits": 4})
    assert imp.noise == 0.1 * 10 and imp.input_range == (0.0, 1.0) and imp.active
    assert Imperfections(**imp.to_dict()) == imp
    assert Imperfections.coerce(imp) is imp
    assert not Imperfections.coerce(None).active
    assert not Imperfections(input_range=[-1, 1]).active
    box = make_black_box("slm", 3, 2, imperfections=imp)
    assert box.imperfections == imp


def test_suggested_mu_grows_with_noise_and_quantisation():
    from skhybrid import make_black_box

    ideal = make_black_box("slm", 4, 3)
    assert ideal.suggested_mu() == ideal.mu == 1e-4
    noisy = make_black_box("slm", 4, 3, noise=0.01)
    assert noisy.suggested_mu() == pytest.approx(0.01)
    coarse = make_black_box("slm", 4, 3, param_bits=4)
    assert coarse.suggested_mu() == pytest.approx(2 * math.pi / 15)
    drifting = make_black_box("slm", 4, 3, drift=1e-3)
    assert drifting.suggested_mu(zo_samples=4) == pytest.approx(10 * 1e-3 * 2)
    # A step of suggested_mu moves the quantised device; the ideal mu does not.
    x = torch.eye(4, dtype=torch.float64)
    p = coarse.params0
    u = torch.zeros_like(p)
    u[0] = 1.0
    assert torch.equal(coarse.query(x, p), coarse.query(x, p + 1e-4 * u))
    assert not torch.equal(coarse.query(x, p), coarse.query(x, p + coarse.suggested_mu() * u))
