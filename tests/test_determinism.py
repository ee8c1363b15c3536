"""Determinism, interruption, warm starts, checkpoints and concurrent prediction.

Tolerance: every comparison here is exact (``np.array_equal`` on float64
probabilities). A resumed run, whether from a warm start after Ctrl-C or
from a skorch checkpoint, reproduces the uninterrupted run bit for bit on a
device without drift; only the query counters differ (the lost partial
epoch, and one reprogramming after a restore, are counted).
"""

import hashlib
import os
import pickle
import subprocess
import sys
import textwrap
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from sklearn.datasets import load_iris
from skorch.callbacks import Callback, Checkpoint, LoadInitState
from torch import nn

from skhybrid import BlackBoxLayer, HybridClassifier, HybridRegressor

SMALL = dict(black_box="slm", hidden_units=8, rank=2, zo_samples=4, random_state=0)


@pytest.fixture(scope="module")
def six_epochs(iris):
    X, y = iris
    return HybridClassifier(**SMALL, max_epochs=6).fit(X, y)


class Interrupt(Callback):
    """Raise KeyboardInterrupt once, as Ctrl-C would: after ``batch`` training batches of
    epoch ``epoch``, or (``batch=None``) at the end of that epoch."""

    def __init__(self, epoch, batch=None):
        self.epoch, self.batch = epoch, batch
        self.fired = False

    def on_batch_end(self, net, training=False, **kwargs):
        if (self.batch is not None and not self.fired and training
                and len(net.history) == self.epoch
                and len(net.history[-1]["batches"]) == self.batch):
            self.fired = True
            raise KeyboardInterrupt

    def on_epoch_end(self, net, **kwargs):
        if self.batch is None and not self.fired and len(net.history) == self.epoch:
            self.fired = True
            raise KeyboardInterrupt


# ----------------------------------------------------------------- same seed
def test_same_seed_same_regression_across_fits_and_a_pickle_round_trip(iris):
    X, y = iris
    params = dict(SMALL, black_box="mrr", architecture="front", max_epochs=3,
                  black_box_options={"noise": 0.01, "drift": 1e-3, "param_bits": 8})
    a = HybridRegressor(**params).fit(X, y)
    b = HybridRegressor(**params).fit(X, y)
    assert np.array_equal(a.predict(X), b.predict(X))
    # Noise on: each prediction draws new noise, but a copy of the fitted
    # estimator carries the same noise stream and draws the same.
    restored = pickle.loads(pickle.dumps(b))
    assert np.array_equal(restored.predict(X), b.predict(X))
    assert restored.n_queries_ == b.n_queries_


_CHILD = textwrap.dedent("""
    import hashlib, sys
    import numpy as np, torch
    torch.set_num_threads(1)
    from sklearn.datasets import load_iris
    from skhybrid import HybridClassifier
    X, y = load_iris(return_X_y=True)
    order = np.random.RandomState(0).permutation(len(y))
    X, y = X[order], y[order]
    clf = HybridClassifier(black_box="slm", hidden_units=8, rank=2, zo_samples=4,
                           random_state=0, max_epochs=6).fit(X, y)
    print(hashlib.sha256(clf.predict_proba(X).tobytes()).hexdigest())
""")


def test_same_seed_same_predictions_in_another_process(iris, six_epochs):
    X, _ = iris
    src = os.path.join(os.path.dirname(__file__), os.pardir, "src")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]))
    out = subprocess.run([sys.executable, "-c", _CHILD], env=env, capture_output=True,
                         text=True, timeout=120, check=True).stdout.split()[-1]
    assert out == hashlib.sha256(six_epochs.predict_proba(X).tobytes()).hexdigest()


class _TwinLayers(nn.Module):
    def __init__(self, n_features, n_outputs, make_layer):
        super().__init__()
        self.inp = nn.Linear(n_features, 6)
        self.first = make_layer(6, 6)
        self.second = make_layer(6, 6)
        self.out = nn.Linear(6, n_outputs)

    def forward(self, x):
        return self.out(torch.tanh(self.second(torch.tanh(self.first(self.inp(x))))))


def test_different_layers_draw_different_random_directions(iris):
    X, y = iris
    clf = HybridClassifier(**SMALL, max_epochs=1, module=_TwinLayers,
                           black_box_options={"noise": 0.01}).fit(X, y)
    first, second = clf.net_.module_.first, clf.net_.module_.second
    assert isinstance(first, BlackBoxLayer) and isinstance(second, BlackBoxLayer)
    streams = [(layer._zo_generator, layer._probe_generator, layer.black_box._noise_generator)
               for layer in (first, second)]
    for a, b in zip(*streams):
        assert not torch.equal(a.get_state(), b.get_state())
        draws = []
        for generator in (a, b):
            copy = torch.Generator()
            copy.set_state(generator.get_state())
            draws.append(torch.randn(5, generator=copy))
        assert not torch.equal(*draws)
    assert not torch.equal(first.black_box.params0, second.black_box.params0)


# ------------------------------------------------------------------- Ctrl-C
def test_ctrl_c_mid_epoch_keeps_the_last_completed_epoch_and_resumes_exactly(iris, six_epochs):
    X, y = iris
    clf = HybridClassifier(**SMALL, max_epochs=6, callbacks=[Interrupt(epoch=4, batch=2)])
    with pytest.warns(UserWarning, match="interrupted in epoch 4.*after epoch 3"):
        assert clf.fit(X, y) is clf  # skorch's behaviour: fit returns
    assert clf.n_iter_ == 3 and len(clf.history_) == 3
    assert all("train_loss" in row for row in clf.history_)  # no half-recorded epoch
    three = HybridClassifier(**SMALL, max_epochs=3).fit(X, y)
    assert np.array_equal(clf.predict_proba(X), three.predict_proba(X))
    assert clf.n_queries_["vectors"] > three.n_queries_["vectors"]  # the lost batches count
    # warm_start continues from epoch 3: the same as never interrupted.
    clf.set_params(warm_start=True, max_epochs=3)
    clf.fit(X, y)
    assert clf.n_iter_ == 6 and clf.history_[:, "epoch"] == [1, 2, 3, 4, 5, 6]
    assert np.array_equal(clf.predict_proba(X), six_epochs.predict_proba(X))
    assert clf.history_[:, "train_loss"] == six_epochs.history_[:, "train_loss"]


def test_ctrl_c_in_the_first_epoch_leaves_an_untrained_usable_estimator(iris):
    X, y = iris
    clf = HybridClassifier(**SMALL, max_epochs=5, early_stopping=True,
                           callbacks=[Interrupt(epoch=1, batch=1)])
    with pytest.warns(UserWarning, match="as it was before training"):
        clf.fit(X, y)
    assert clf.n_iter_ == 0 and clf.predict(X).shape == (len(X),)


def test_stopping_from_an_epoch_end_callback_keeps_that_epoch(iris):
    X, y = iris
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a deliberate stop is not an interruption
        clf = HybridClassifier(**SMALL, max_epochs=6, callbacks=[Interrupt(epoch=2)]).fit(X, y)
    assert clf.n_iter_ == 2
    two = HybridClassifier(**SMALL, max_epochs=2).fit(X, y)
    assert np.array_equal(clf.predict_proba(X), two.predict_proba(X))


# --------------------------------------------------------------- warm start
def test_warm_start_continues_training(iris, six_epochs):
    X, y = iris
    clf = HybridClassifier(**SMALL, max_epochs=3, warm_start=True).fit(X, y)
    net = clf.net_
    clf.score(X, y)  # queries between fits are not training
    clf.fit(X, y)
    assert clf.net_ is net and clf.n_iter_ == 6
    assert np.array_equal(clf.predict_proba(X), six_epochs.predict_proba(X))
    assert clf.n_queries_ == six_epochs.n_queries_
    assert clf.history_[:, "n_queries"] == six_epochs.history_[:, "n_queries"]
    # warm_start=False forgets the first fit.
    cold = clf.set_params(warm_start=False, max_epochs=6).fit(X, y)
    assert cold.net_ is not net and np.array_equal(cold.predict_proba(X),
                                                   six_epochs.predict_proba(X))


def test_warm_start_for_the_regressor_keeps_the_target_scaling(iris):
    X, y = iris
    target = y * 100.0 + 7
    full = HybridRegressor(**SMALL, max_epochs=4).fit(X, target)
    warm = HybridRegressor(**SMALL, max_epochs=2, warm_start=True).fit(X, target)
    warm.fit(X, target)
    assert np.array_equal(warm.predict(X), full.predict(X))
    # A continuation on a subset keeps the scaling of the first fit.
    mean = warm._y_mean.copy()
    warm.fit(X[:50], target[:50])
    assert np.array_equal(warm._y_mean, mean) and warm.n_iter_ == 6


def test_warm_start_refuses_a_different_network_or_new_classes(iris):
    X, y = iris
    clf = HybridClassifier(**SMALL, max_epochs=1, warm_start=True).fit(X[y < 2], y[y < 2])
    with pytest.raises(ValueError, match=r"y holds new label\(s\) \[2\]"):
        clf.fit(X, y)
    with pytest.raises(ValueError, match="X has 3 features"):
        clf.fit(X[:, :3], y)
    with pytest.raises(ValueError, match=r"\['hidden_units'\] changed since it was built"):
        clf.set_params(hidden_units=6).fit(X, y)
    clf.set_params(hidden_units=8, lr=0.01, max_epochs=2).fit(X[y < 2], y[y < 2])
    assert clf.n_iter_ == 3 and clf.net_.optimizer_.param_groups[0]["lr"] == 0.01


# --------------------------------------------------------------- checkpoints
def test_a_checkpoint_resumed_gives_the_uninterrupted_result(iris, six_epochs, tmp_path):
    X, y = iris
    first = Checkpoint(dirname=str(tmp_path), monitor=None)
    crashed = HybridClassifier(**SMALL, max_epochs=6,
                               callbacks=[first, Interrupt(epoch=5, batch=2)])
    with pytest.warns(UserWarning, match="interrupted in epoch 5"):
        crashed.fit(X, y)  # the checkpoint holds epoch 4
    again = Checkpoint(dirname=str(tmp_path), monitor=None)
    resumed = HybridClassifier(**SMALL, max_epochs=2, callbacks=[again, LoadInitState(again)])
    resumed.fit(X, y)
    assert resumed.n_iter_ == 6
    assert np.array_equal(resumed.predict_proba(X), six_epochs.predict_proba(X))
    assert resumed.history_[:, "train_loss"] == six_epochs.history_[:, "train_loss"]
    # The layer's state carries the query counters: one more reprogramming,
    # since the device's setting is unknown after a restore.
    assert resumed.n_queries_["vectors"] == six_epochs.n_queries_["vectors"]
    assert resumed.n_queries_["configurations"] == six_epochs.n_queries_["configurations"] + 1


# ------------------------------------------------------------------ threads
def test_predict_from_eight_threads_equals_serial(iris, six_epochs):
    X, _ = iris
    serial_proba = six_epochs.predict_proba(X)
    chunks = np.array_split(np.arange(len(X)), 8)
    with ThreadPoolExecutor(8) as pool:
        whole = list(pool.map(lambda _: six_epochs.predict_proba(X), range(8)))
        parts = list(pool.map(lambda idx: six_epochs.predict(X[idx]), chunks))
    assert all(np.array_equal(p, serial_proba) for p in whole)
    assert np.array_equal(np.concatenate(parts), six_epochs.predict(X))


def test_a_saved_model_predicts_the_same_and_continues_the_same(iris, six_epochs, tmp_path):
    pytest.importorskip("skops")
    from skhybrid.persistence import load, save

    X, y = iris
    three = HybridClassifier(**SMALL, max_epochs=3).fit(X, y)
    path = save(three, tmp_path / "three.skops")
    loaded = load(path)
    assert np.array_equal(loaded.predict_proba(X), three.predict_proba(X))
    loaded.set_params(warm_start=True).fit(X, y)
    assert loaded.n_iter_ == 6
    assert np.array_equal(loaded.predict_proba(X), six_epochs.predict_proba(X))
    assert loaded.history_[:, "n_queries"] == six_epochs.history_[:, "n_queries"]
