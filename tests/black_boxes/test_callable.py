"""CallableBlackBox: a user's forward-only function as a black box."""

import pickle

import numpy as np
import pytest
import torch

from skhybrid.black_boxes import BlackBoxError, CallableBlackBox

W = np.array([[1.0, -2.0, 0.5], [0.0, 3.0, 1.0]])


def scaled_matrix(X, params):
    """A 'device' y = params[0] * W x, in numpy."""
    assert isinstance(X, np.ndarray) and isinstance(params, np.ndarray)
    return params[0] * X @ W.T


class RecordingDevice:
    """A torch 'device' that records each programming, like an instrument driver."""

    def __init__(self):
        self.calls = []

    def __call__(self, X, params):
        assert torch.is_tensor(X) and X.dtype == torch.float64 and params.shape == (2,)
        self.calls.append(params.clone())
        return params[0] * X[:, :2] + params[1]


def wrong_shape(X, params):
    return X


def _box(**kwargs):
    return CallableBlackBox(scaled_matrix, 3, 2, 1, [2.0], **kwargs)


def test_numpy_function():
    box = _box(random_state=0)
    X = np.arange(6.0).reshape(2, 3)
    Y = box.query(X, box.params0)
    assert torch.is_tensor(Y) and Y.dtype == torch.float64
    np.testing.assert_allclose(Y.numpy(), 2.0 * X @ W.T)
    torch.testing.assert_close(box.matrix(), torch.from_numpy(2.0 * W))


def test_torch_function_loops_over_configurations_and_counts_each():
    fn = RecordingDevice()
    box = CallableBlackBox(fn, 3, 2, 2, [1.0, 0.0], array_type="torch")
    X = torch.ones(4, 3, dtype=torch.float64)
    P = torch.tensor([[1.0, 0.0], [2.0, 1.0], [3.0, -1.0]], dtype=torch.float64)
    Y = box.query(X, P, purpose="zo")
    assert len(fn.calls) == 3 and all(torch.equal(c, p) for c, p in zip(fn.calls, P))
    torch.testing.assert_close(Y[:, 0, 0], torch.tensor([1.0, 3.0, 2.0], dtype=torch.float64))
    assert box.counts["zo"] == {"vectors": 12, "configurations": 3}
    box.query(X, P[-1], purpose="zo")  # still programmed: no new configuration
    assert box.counts["zo"] == {"vectors": 16, "configurations": 3}


def test_wrong_output_shape_raises():
    box = CallableBlackBox(wrong_shape, 3, 2, 1, [0.0])
    with pytest.raises(BlackBoxError, match=r"returned shape \(4, 3\); expected \(4, 2\)"):
        box.query(np.zeros((4, 3)), box.params0)
    # Retried twice, then given up; every attempt counted.
    assert box.n_faults["shape"] == 3
    assert box.counts["forward"]["vectors"] == 12


def test_not_differentiable():
    box = _box()
    assert not box.differentiable
    with pytest.raises(TypeError, match="not a differentiable"):
        box.query_differentiable(torch.zeros(1, 3), box.params0)


def test_linear_in_x():
    box = _box()
    g = torch.Generator().manual_seed(0)
    X1, X2 = (torch.randn(5, 3, dtype=torch.float64, generator=g) for _ in range(2))
    P = torch.tensor([[2.0], [-0.5]], dtype=torch.float64)
    lhs = box.query(3.0 * X1 + 0.25 * X2, P)
    rhs = 3.0 * box.query(X1, P) + 0.25 * box.query(X2, P)
    torch.testing.assert_close(lhs, rhs, rtol=0, atol=1e-10)


def test_options_are_stored_and_pickle_round_trips():
    box = _box(mu=0.01, linear_in_x=False, param_range=(0.0, 4.0), imperfections={"param_bits": 2})
    assert box.mu == 0.01 and not box.linear_in_x and box.n_params == 1
    # 2 bits over [0, 4] give the levels 0, 4/3, 8/3, 4: the device sees 1.9 as 4/3.
    Y = box.query(np.ones((1, 3)), [1.9])
    np.testing.assert_allclose(Y.numpy(), 4 / 3 * np.ones((1, 3)) @ W.T)
    copy = pickle.loads(pickle.dumps(box))
    torch.testing.assert_close(copy.query(np.ones((1, 3)), [1.9]), Y)
    assert box.clone().n_queries == {"vectors": 0, "configurations": 0}


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"fn": 3}, TypeError, "fn must be callable"),
        ({"array_type": "jax"}, ValueError, "array_type"),
        ({"params0": [1.0, 2.0]}, ValueError, "params0"),
        ({"mu": 0.0}, ValueError, "mu"),
        ({"mu": True}, ValueError, "mu"),
        ({"n_params": 0, "params0": []}, ValueError, "n_params"),
    ],
)
def test_validation(kwargs, error, match):
    args = {"fn": scaled_matrix, "d_in": 3, "d_out": 2, "n_params": 1, "params0": [2.0]}
    args.update(kwargs)
    with pytest.raises(error, match=match):
        CallableBlackBox(**args)


def test_non_finite_params0_is_rejected():
    with pytest.raises(ValueError, match="params0 must be finite"):
        CallableBlackBox(scaled_matrix, 3, 2, 1, [float("nan")])
