"""A failing device: retries, dropped ZO directions, BlackBoxError, timeouts."""

import time

import numpy as np
import pytest
import torch

from skhybrid import BlackBoxLayer, CallableBlackBox, update_surrogates
from skhybrid.black_boxes import BlackBoxError

W = np.array([[1.0, -2.0, 0.5, 0.0], [0.0, 3.0, 1.0, -1.0], [0.5, 0.5, 0.5, 0.5]])


class FaultyDevice:
    """``y = W x + params`` that fails in a seeded way.

    kind: "raise", "nan", "inf", "shape" or "hang"; ``rate`` the chance of a
    failure per call; ``fail_first`` makes the first n calls fail for sure;
    ``bad_params`` makes every call whose params[0] > that value fail;
    ``healthy_only_at`` makes every call at other params fail.
    """

    def __init__(self, kind, rate=0.0, fail_first=0, bad_params=None, healthy_only_at=None,
                 seed=0):
        self.kind, self.rate, self.fail_first = kind, rate, fail_first
        self.bad_params = bad_params
        self.healthy_only_at = healthy_only_at
        self.rng = np.random.default_rng(seed)
        self.calls = 0

    def __call__(self, X, params):
        self.calls += 1
        fail = self.calls <= self.fail_first or self.rng.random() < self.rate
        if self.bad_params is not None and params[0] > self.bad_params:
            fail = True
        if self.healthy_only_at is not None and not np.array_equal(params, self.healthy_only_at):
            fail = True
        Y = X @ (W * (1 + params[:1])).T + params[1:4]
        if not fail:
            return Y
        if self.kind == "raise":
            raise OSError("instrument did not answer")
        if self.kind == "nan":
            Y[0, 0] = np.nan
            return Y
        if self.kind == "inf":
            Y[-1, -1] = np.inf
            return Y
        if self.kind == "shape":
            return Y[:, :2]
        time.sleep(0.3)
        return Y


def _box(device, **kwargs):
    return CallableBlackBox(device, 4, 3, n_params=4, params0=np.zeros(4), mu=1e-3, **kwargs)


@pytest.mark.parametrize("kind", ["raise", "nan", "inf", "shape"])
def test_a_passing_fault_is_retried(kind):
    box = _box(FaultyDevice(kind, fail_first=2))
    Y = box.query(np.ones((2, 4)), box.params0)
    assert torch.allclose(Y, torch.as_tensor(np.ones((2, 4)) @ W.T))
    expected_kind = {"raise": "exception", "nan": "non_finite", "inf": "non_finite",
                     "shape": "shape"}[kind]
    assert box.n_faults[expected_kind] == 2
    assert box.counts["forward"]["vectors"] == 3 * 2  # every attempt is counted


@pytest.mark.parametrize("kind", ["raise", "nan", "shape"])
def test_a_persistent_fault_raises_black_box_error_naming_query_and_cause(kind):
    box = _box(FaultyDevice(kind, rate=1.0), max_retries=1)
    with pytest.raises(BlackBoxError, match="'surrogate' query of 2 input vector") as info:
        box.query(np.ones((2, 4)), box.params0, "surrogate")
    assert info.value.purpose == "surrogate"
    assert info.value.cause is not None
    assert sum(box.n_faults.values()) == 2


def test_a_hanging_call_times_out():
    box = _box(FaultyDevice("hang", rate=1.0), timeout=0.02, max_retries=0)
    start = time.perf_counter()
    with pytest.raises(BlackBoxError, match="TimeoutError"):
        box.query(np.ones((1, 4)), box.params0)
    assert time.perf_counter() - start < 0.25  # did not wait for the 0.3 s call
    assert box.n_faults["timeout"] == 1


def test_failing_zo_directions_are_dropped_and_counted():
    # Configurations with a positive first parameter always fail: about 40%
    # of the perturbations p + mu u with p_0 = -0.01 and mu = 0.05.
    box = _box(FaultyDevice("raise", bad_params=0.0), max_retries=0)
    layer = BlackBoxLayer(box, rank=3, zo_samples=16, random_state=0, mu=0.05)
    with torch.no_grad():
        layer.params.fill_(-1e-2)  # the baseline and surrogate stay healthy
    x = torch.randn(5, 4, requires_grad=True)
    layer(x).sum().backward()
    dropped = layer.n_faults["dropped"]
    assert 0 < dropped < 16
    assert torch.isfinite(layer.params.grad).all()
    assert torch.isfinite(x.grad).all()


def test_when_every_direction_fails_the_error_surfaces():
    box = _box(FaultyDevice("raise", healthy_only_at=np.zeros(4)), max_retries=0)
    layer = BlackBoxLayer(box, rank=3, zo_samples=4, random_state=0)
    x = torch.randn(5, 4, requires_grad=True)
    y = layer(x)  # the forward pass and the surrogate, at params0, are fine
    with pytest.raises(BlackBoxError, match="'zo' query"):
        y.sum().backward()
    assert layer.n_faults["dropped"] == 4


def test_training_through_intermittent_faults_stays_finite():
    box = _box(FaultyDevice("nan", rate=0.15, seed=3), max_retries=2)
    layer = BlackBoxLayer(box, rank=3, zo_samples=6, random_state=0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 4), layer)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    g = torch.Generator().manual_seed(0)
    X = torch.randn(64, 4, generator=g)
    Y = X @ torch.randn(4, 3, generator=g)
    losses = []
    for _ in range(40):
        opt.zero_grad()
        loss = (net(X) - Y).pow(2).mean()
        loss.backward()
        opt.step()
        update_surrogates(net)
        losses.append(loss.item())
    assert box.n_faults["non_finite"] > 0
    assert all(np.isfinite(losses))
    assert torch.isfinite(layer.params).all()
    assert torch.isfinite(layer.surrogate.matrix()).all()
    assert losses[-1] < losses[0]
