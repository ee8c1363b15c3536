"""The black-box contract, checked on every device built by make_black_box."""

import pickle

import numpy as np
import pytest
import torch

from skhybrid.black_boxes import (
    BLACK_BOXES,
    QUERY_PURPOSES,
    BlackBox,
    MatrixBlackBox,
    make_black_box,
)

NAMES = sorted(BLACK_BOXES)
D_IN, D_OUT = 5, 3


def _inputs(n, d=D_IN, seed=0):
    return torch.randn(n, d, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))


def _configs(box, k, seed=1):
    """``k`` distinct configurations near the initial one."""
    g = torch.Generator().manual_seed(seed)
    return box.params0 + 0.3 * torch.randn(k, box.n_params, dtype=torch.float64, generator=g)


@pytest.fixture(params=NAMES)
def box(request):
    return make_black_box(request.param, D_IN, D_OUT, random_state=0)


# ------------------------------------------------------------------ counting
def test_counts_vectors_and_configurations_per_purpose():
    box = make_black_box("slm", D_IN, D_OUT, random_state=0)
    X = _inputs(4)
    P = _configs(box, 3)
    box.query(X, P[0])
    assert box.counts["forward"] == {"vectors": 4, "configurations": 1}
    box.query(X, P[0])  # the device already holds this setting
    assert box.counts["forward"] == {"vectors": 8, "configurations": 1}
    box.query(X[:2], P[1], purpose="zo")
    assert box.counts["zo"] == {"vectors": 2, "configurations": 1}
    box.query(X, P, purpose="surrogate")  # a batch of 3 distinct settings
    assert box.counts["surrogate"] == {"vectors": 12, "configurations": 3}
    assert box.counts["forward"] == {"vectors": 8, "configurations": 1}
    assert box.n_queries == {"vectors": 22, "configurations": 5}
    assert set(box.counts) == set(QUERY_PURPOSES)


def test_batch_starting_at_the_programmed_setting_saves_one_configuration():
    box = make_black_box("matrix", D_IN, D_OUT, random_state=0)
    P = _configs(box, 4)
    box.query(_inputs(2), P[0])
    box.query(_inputs(2), P, purpose="zo")
    assert box.counts["zo"] == {"vectors": 8, "configurations": 3}
    # P[-1] is now programmed; a 3-D X counts one slice per configuration.
    box.query(_inputs(6).reshape(3, 2, D_IN), P[[3, 0, 1]], purpose="zo")
    assert box.counts["zo"] == {"vectors": 14, "configurations": 5}


def test_reset_counts_and_unknown_purpose():
    box = make_black_box("matrix", D_IN, D_OUT, random_state=0)
    box.query(_inputs(3), box.params0)
    box.reset_counts()
    assert box.n_queries == {"vectors": 0, "configurations": 0}
    with pytest.raises(ValueError, match="purpose"):
        box.query(_inputs(3), box.params0, purpose="training")


# ---------------------------------------------------------------- validation
@pytest.mark.parametrize(
    "X_shape, p_shape, match",
    [
        ((4, D_IN + 1), (15,), "X must have shape"),
        ((D_IN,), (15,), "X must have shape"),
        ((), (15,), "X must have shape"),
        ((2, 2, 2, D_IN), (15,), "X must have shape"),
        ((4, D_IN), (14,), "params must have shape"),
        ((4, D_IN), (2, 3, 15), "params must have shape"),
        ((3, 4, D_IN), (2, 15), "one slice per configuration"),
    ],
)
def test_shape_validation(X_shape, p_shape, match):
    box = make_black_box("matrix", D_IN, D_OUT, random_state=0)
    with pytest.raises(ValueError, match=match):
        box.query(torch.zeros(X_shape), torch.zeros(p_shape))
    assert box.n_queries == {"vectors": 0, "configurations": 0}


def test_matrix_validates_params_shape():
    box = make_black_box("matrix", D_IN, D_OUT, random_state=0)
    with pytest.raises(ValueError, match="params must have shape"):
        box.matrix(torch.zeros(box.n_params + 1))


@pytest.mark.parametrize(
    "value, error", [(0, ValueError), (-2, ValueError), (2.0, TypeError), (True, TypeError)]
)
def test_width_validation(value, error):
    with pytest.raises(error, match="d_in"):
        MatrixBlackBox(value, 3)


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match="valid names") as info:
        make_black_box("laser", 3, 3)
    for name in NAMES:
        assert repr(name) in str(info.value)


# ------------------------------------------------------- shared invariants
def test_output_shapes_dtype_and_no_grad(box):
    X = _inputs(4).float()
    Y = box.query(X, box.params0)
    assert Y.shape == (4, D_OUT) and Y.dtype == torch.float64 and not Y.requires_grad
    assert box.query(X, _configs(box, 2)).shape == (2, 4, D_OUT)
    assert box.query(X.expand(2, 4, D_IN), _configs(box, 2)).shape == (2, 4, D_OUT)


def test_matrix_equals_query_on_identity(box):
    P = _configs(box, 1)[0]
    eye = torch.eye(D_IN, dtype=torch.float64)
    torch.testing.assert_close(box.matrix(P), box.query(eye, P).T, rtol=0, atol=1e-12)
    assert box.n_queries["vectors"] == D_IN  # matrix() itself is not counted
    assert box.matrix().shape == (D_OUT, D_IN)


def test_batched_configurations_equal_per_configuration_queries(box):
    X = _inputs(7)
    P = _configs(box, 3)
    batched = box.query(X, P)
    looped = torch.stack([box.query(X, p) for p in P])
    torch.testing.assert_close(batched, looped, rtol=0, atol=1e-12)
    X3 = _inputs(6, seed=2).reshape(3, 2, D_IN)
    batched = box.query(X3, P)
    looped = torch.stack([box.query(x, p) for x, p in zip(X3, P)])
    torch.testing.assert_close(batched, looped, rtol=0, atol=1e-12)


def test_linear_in_x(box):
    assert box.linear_in_x
    X1, X2 = _inputs(6, seed=3), _inputs(6, seed=4)
    P = _configs(box, 2)
    lhs = box.query(2.5 * X1 - 0.7 * X2, P)
    rhs = 2.5 * box.query(X1, P) - 0.7 * box.query(X2, P)
    torch.testing.assert_close(lhs, rhs, rtol=0, atol=1e-10)


def test_query_differentiable_matches_finite_differences(box):
    X = _inputs(3, seed=5)
    p = _configs(box, 1)[0].requires_grad_(True)
    torch.autograd.gradcheck(lambda q: box.query_differentiable(X, q), (p,), eps=1e-6, atol=1e-6)


def test_random_state_seeds_initial_parameters():
    a = make_black_box("slm", D_IN, D_OUT, random_state=3)
    b = make_black_box("slm", D_IN, D_OUT, random_state=3)
    c = make_black_box("slm", D_IN, D_OUT, random_state=4)
    assert torch.equal(a.params0, b.params0)
    assert not torch.equal(a.params0, c.params0)
    d = make_black_box("slm", D_IN, D_OUT, random_state=np.random.RandomState(0))
    assert d.params0.shape == (D_IN * D_OUT,)
    with pytest.raises(TypeError, match="random_state"):
        make_black_box("slm", D_IN, D_OUT, random_state="zero")


# ---------------------------------------------------------- copy and pickle
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("imperfections", [{}, {"noise": 0.05, "param_bits": 6, "drift": 0.01}])
def test_pickle_round_trip(name, imperfections):
    box = make_black_box(name, D_IN, D_OUT, random_state=1, **imperfections)
    X = _inputs(3)
    box.query(X, box.params0)
    copy = pickle.loads(pickle.dumps(box))
    assert type(copy) is type(box) and repr(copy) == repr(box) and copy.counts == box.counts
    P = _configs(box, 2)
    # The generators travel with the pickle: the copy continues the same draws.
    torch.testing.assert_close(copy.query(X, P), box.query(X, P), rtol=0, atol=0)


def test_clone_resets_counters_and_keeps_construction(box):
    X = _inputs(3)
    box.query(X, _configs(box, 2))
    new = box.clone()
    assert new.n_queries == {"vectors": 0, "configurations": 0}
    assert box.n_queries["configurations"] == 2
    assert torch.equal(new.params0, box.params0) and repr(new) == repr(box)
    torch.testing.assert_close(new.matrix(), box.matrix(), rtol=0, atol=0)
    new.query(X, box.params0)
    assert new.n_queries["configurations"] == 1  # nothing was programmed on the clone


def test_clone_restarts_noise_stream():
    box = make_black_box("matrix", D_IN, D_OUT, random_state=0, noise=0.1)
    X = _inputs(4)
    first = box.query(X, box.params0)
    torch.testing.assert_close(box.clone().query(X, box.params0), first, rtol=0, atol=0)


def test_repr_names_options():
    assert repr(make_black_box("slm", 4, 2)) == "SpatialLightModulator(d_in=4, d_out=2)"
    assert "noise=0.1" in repr(make_black_box("slm", 4, 2, noise=0.1))
    assert "cell='classical'" in repr(make_black_box("mzi_classical", 4, 2))


def test_subclass_contract():
    class Half(BlackBox):
        def _initial_params(self, generator):
            return torch.zeros(1)

        def _forward(self, X, params):
            return 0.5 * X[..., : self.d_out].expand(params.shape[0], *X.shape[-2:-1], self.d_out)

    box = Half(3, 2, random_state=0)
    assert box.n_params == 1 and box.params0.dtype == torch.float64
    torch.testing.assert_close(box.matrix(), 0.5 * torch.eye(2, 3, dtype=torch.float64))
    with pytest.raises(NotImplementedError):
        BlackBox(2, 2)
