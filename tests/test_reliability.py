"""A failing, noisy or drifting device under the estimators.

The device is a seeded, picklable :class:`FlakyDevice` wrapped in a
:class:`~skhybrid.CallableBlackBox` and passed as ``black_box=``; it is an
ideal ``y = cos(W) x / sqrt(d)`` layer that fails in a chosen way.
"""

import time

import numpy as np
import pytest
import torch
from sklearn.datasets import load_iris

from skhybrid import BlackBoxError, CallableBlackBox, HybridClassifier
from skhybrid.black_boxes import FAULT_KINDS
from skhybrid.estimators import DRIFT_MONITOR_EVERY

D = 6  # the device maps hidden_units = 6 -> 6
FAST = dict(hidden_units=D, rank=2, zo_samples=4, max_epochs=3, batch_size=50, random_state=0)


class FlakyDevice:
    """``y = x cos(W)^T / sqrt(d)`` that fails in a seeded way.

    kind: "raise", "nan", "inf", "shape" or "hang". Each call fails with
    probability ``rate``, and every call numbered in ``dead`` (a range)
    fails for sure: the instrument is out for a while, then back.
    """

    def __init__(self, kind, rate=0.0, dead=range(0), seed=0):
        self.kind, self.rate, self.dead = kind, rate, dead
        self.rng = np.random.default_rng(seed)
        self.calls = 0

    def __call__(self, X, params):
        self.calls += 1
        Y = X @ np.cos(params.reshape(D, D)).T / np.sqrt(D)
        if not (self.rng.random() < self.rate or self.calls in self.dead):
            return Y
        if self.kind == "raise":
            raise OSError("instrument did not answer")
        if self.kind == "nan":
            Y[0, 0] = np.nan
        elif self.kind == "inf":
            Y[-1, 0] = -np.inf
        elif self.kind == "shape":
            Y = Y[:, :-1]
        else:
            time.sleep(0.1)
        return Y


def _box(device, **kwargs):
    params0 = np.random.RandomState(0).uniform(1.3, 1.8, D * D)
    return CallableBlackBox(device, D, D, n_params=D * D, params0=params0, mu=1e-3, **kwargs)


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return X[np.random.RandomState(0).permutation(len(y))], y


def _layer(clf):
    return clf.net_.module_.black_box_layer


def _calls(clf):
    return _layer(clf).black_box.fn.calls


# --------------------------------------------------------- intermittent faults
@pytest.mark.parametrize("kind, counted", [("raise", "exception"), ("nan", "non_finite"),
                                           ("inf", "non_finite"), ("shape", "shape"),
                                           ("hang", "timeout")])
def test_intermittent_faults_are_retried_counted_and_training_stays_finite(iris, kind,
                                                                           counted):
    X, y = iris
    options = dict(timeout=0.02) if kind == "hang" else {}
    rate = 0.02 if kind == "hang" else 0.1
    clf = HybridClassifier(black_box=_box(FlakyDevice(kind, rate=rate, seed=1), **options),
                           **FAST).fit(X, y)
    assert clf.n_iter_ == 3
    assert set(clf.n_faults_) == set(FAULT_KINDS)
    assert clf.n_faults_[counted] > 0
    assert clf.n_faults_ == _layer(clf).n_faults  # one device: its own counters
    assert sum(v for k, v in clf.n_faults_.items() if k not in (counted, "dropped")) == 0
    layer = _layer(clf)
    assert torch.isfinite(layer.params).all() and torch.isfinite(layer.surrogate.matrix()).all()
    assert np.isfinite(clf.predict_proba(X)).all()
    assert all(np.isfinite(clf.history_[:, "train_loss"]))


def test_a_healthy_device_has_no_faults_and_a_digital_twin_none_at_all(iris):
    X, y = iris
    clf = HybridClassifier(black_box=_box(FlakyDevice("raise")), **FAST).fit(X, y)
    assert clf.n_faults_ == dict.fromkeys(FAULT_KINDS, 0)
    digital = HybridClassifier(**{**FAST, "black_box": "digital"}).fit(X, y)
    assert digital.n_faults_ == dict.fromkeys(FAULT_KINDS, 0)


# ------------------------------------------------------- a device that goes out
def test_a_device_that_goes_out_stops_the_fit_and_keeps_the_last_good_epoch(iris):
    X, y = iris
    healthy = HybridClassifier(black_box=_box(FlakyDevice("raise")),
                               **{**FAST, "max_epochs": 2}).fit(X, y)
    n = _calls(healthy) + 3  # a few calls into the third epoch
    clf = HybridClassifier(black_box=_box(FlakyDevice("raise", dead=range(n, n + 40))), **FAST)
    with pytest.raises(BlackBoxError) as info:
        clf.fit(X, y)
    message = str(info.value)
    assert "query of" in message and "OSError: instrument did not answer" in message
    assert "stopped in epoch 3" in message and "after epoch 2" in message
    assert "warm_start=True" in message
    assert info.value.purpose in ("forward", "zo", "surrogate")
    assert isinstance(info.value.cause, OSError)
    assert isinstance(info.value.__cause__, BlackBoxError)
    # Usable, with the network and history of its last completed epoch.
    assert clf.n_iter_ == 2 and len(clf.history_) == 2
    assert clf.n_faults_["exception"] >= 3
    assert clf.n_queries_["vectors"] > healthy.n_queries_["vectors"]  # the lost work counts
    layer = _layer(clf)
    assert torch.isfinite(layer.params).all() and torch.isfinite(layer.surrogate.matrix()).all()
    # The device is back: predictions are those of the healthy 2-epoch fit.
    layer.black_box.fn.calls = 10**6
    assert np.array_equal(clf.predict_proba(X), healthy.predict_proba(X))
    # And training continues from there.
    clf.set_params(warm_start=True, max_epochs=1)
    clf.fit(X, y)
    assert clf.n_iter_ == 3 and clf.history_[-1, "epoch"] == 3


def test_a_device_dead_from_the_start_leaves_an_untrained_but_usable_estimator(iris):
    X, y = iris
    clf = HybridClassifier(black_box=_box(FlakyDevice("nan", dead=range(1, 4))), **FAST)
    with pytest.raises(BlackBoxError, match="(?s)returned NaN or inf.*as it was before training"):
        clf.fit(X, y)
    assert clf.n_iter_ == 0 and len(clf.history_) == 0
    assert clf.n_faults_["non_finite"] == 3  # one query, tried 1 + max_retries times
    assert clf.predict(X).shape == (len(X),)


# ------------------------------------------------ noisy, quantised, drifting
def test_the_finite_difference_step_suits_noise_and_quantisation():
    noisy = HybridClassifier(black_box="slm", black_box_options={"noise": 0.01, "param_bits": 8},
                             hidden_units=8, rank=2, max_epochs=1, random_state=0)
    X, y = load_iris(return_X_y=True)
    layer = _layer(noisy.fit(X, y))
    assert layer.mu == pytest.approx(2 * np.pi / 255)  # one quantisation level
    assert layer.mu == layer.black_box.suggested_mu(layer.zo_samples)
    assert layer.zo_scheme == "forward" and layer.monitor_every is None  # no drift
    only_noise = _layer(noisy.set_params(black_box_options={"noise": 0.01}).fit(X, y))
    assert only_noise.mu == pytest.approx(0.01)
    clean = _layer(noisy.set_params(black_box_options=None).fit(X, y))
    assert clean.mu == clean.black_box.mu
    # Drift accumulated over one estimate's zo_samples reprogrammings.
    drifting = _layer(noisy.set_params(black_box_options={"drift": 1e-3}, zo_samples=4).fit(X, y))
    assert drifting.mu == pytest.approx(10 * 1e-3 * np.sqrt(4))
    assert drifting.monitor_every == DRIFT_MONITOR_EVERY
    # layer_options win.
    asked = _layer(noisy.set_params(black_box_options={"noise": 0.01},
                                    layer_options={"mu": 0.2}).fit(X, y))
    assert asked.mu == 0.2


class LowRankDevice:
    """``A = U V^T`` of rank 2 from the parameters: a rank-2 surrogate can be exact."""

    def __call__(self, X, params):
        U, V = params[:24 * 2].reshape(24, 2), params[24 * 2:].reshape(24, 2)
        return X @ V @ U.T


def _drifting(drift):
    params0 = np.random.RandomState(0).normal(size=96) / np.sqrt(24)
    return CallableBlackBox(LowRankDevice(), 24, 24, n_params=96, params0=params0, mu=1e-3,
                            imperfections={"noise": 0.02, "drift": drift}, random_state=0)


def test_drift_turns_on_the_monitor_which_rebuilds_the_stale_surrogate(iris):
    X, y = iris
    params = dict(hidden_units=24, rank=2, surrogate_samples=4, zo_samples=4, max_epochs=4,
                  random_state=0)
    # 150 samples in batches of 32: 5 updates per epoch, 20 in all.
    monitored = _layer(HybridClassifier(black_box=_drifting(0.02), **params).fit(X, y))
    assert not monitored.exact_probing and monitored.monitor_every == DRIFT_MONITOR_EVERY
    assert monitored.n_rebuilds > 1  # the first build, then rebuilds the monitor asked for
    unmonitored = _layer(HybridClassifier(black_box=_drifting(0.02),
                                          layer_options={"monitor_every": None},
                                          **params).fit(X, y))
    assert unmonitored.n_rebuilds == 1
    # Just after the last update the monitored surrogate is fresh, the other stale.
    assert monitored.monitor_surrogate() < 0.5 * unmonitored.monitor_surrogate()
    no_drift = _layer(HybridClassifier(black_box=_drifting(0.0), **params).fit(X, y))
    assert no_drift.monitor_every is None and no_drift.n_rebuilds == 1
