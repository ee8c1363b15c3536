import io
import pickle
import sys

import numpy as np
import pytest
from sklearn.datasets import load_iris
from skorch.callbacks import ProgressBar

from skhybrid import HybridClassifier, HybridRegressor, estimators
from skhybrid.callbacks import EpochTable, HeldOutScore, _progress_bar_wanted

SMALL = dict(black_box="slm", hidden_units=6, rank=2, zo_samples=4, max_epochs=3, random_state=0)


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    order = np.random.RandomState(0).permutation(len(y))
    return X[order], y[order]


def _callback_names(est):
    return [name for name, _ in est.net_.callbacks_]


def test_verbose_off_a_terminal_prints_one_line_per_epoch_and_no_progress_bar(iris, capsys):
    X, y = iris
    clf = HybridClassifier(**SMALL, verbose=1, early_stopping=True, n_iter_no_change=5,
                           callbacks=[HeldOutScore(X[:20], y[:20])]).fit(X, y)
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert len(lines) == 2 + clf.n_iter_  # header, rule, one row per epoch
    header = lines[0].split()
    # Loss, validation score, held-out score, queries, surrogate error, time.
    assert header == ["epoch", "train_loss", "valid_loss", "valid_acc", "test_score",
                      "n_queries", "surrogate_error", "dur"]
    assert "\r" not in captured.out and "\x1b[" not in captured.out
    assert captured.err == ""
    assert "progress_bar" not in _callback_names(clf)
    pickle.loads(pickle.dumps(clf)).predict(X[:3])


def test_on_a_terminal_a_progress_bar_is_added_and_the_model_still_pickles(iris, monkeypatch,
                                                                          capsys):
    X, y = iris
    monkeypatch.setattr(estimators, "_progress_bar_wanted", lambda: True)
    clf = HybridClassifier(**SMALL, verbose=1).fit(X, y)
    capsys.readouterr()
    bars = [cb for _, cb in clf.net_.callbacks_ if isinstance(cb, ProgressBar)]
    assert len(bars) == 1
    restored = pickle.loads(pickle.dumps(clf))
    assert not any(hasattr(cb, "pbar_") for _, cb in restored.net_.callbacks_)
    assert np.array_equal(restored.predict_proba(X), clf.predict_proba(X))
    quiet = HybridClassifier(**SMALL).fit(X, y)
    assert "progress_bar" not in _callback_names(quiet)  # verbose=0: never


def test_a_progress_bar_needs_both_streams_on_a_terminal(monkeypatch):
    class Stream(io.StringIO):
        def __init__(self, tty):
            super().__init__()
            self.tty = tty

        def isatty(self):
            return self.tty

    for out, err, wanted in [(True, True, True), (True, False, False), (False, True, False)]:
        monkeypatch.setattr(sys, "stdout", Stream(out))
        monkeypatch.setattr(sys, "stderr", Stream(err))
        assert _progress_bar_wanted() is wanted
    monkeypatch.setattr(sys, "stdout", object())  # no isatty at all
    assert _progress_bar_wanted() is False


def test_the_regressor_reports_a_validation_r2(capsys):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(60, 3))
    reg = HybridRegressor(**SMALL, verbose=1, early_stopping=True, n_iter_no_change=5)
    reg.fit(X, 100 + 20 * X[:, 0])
    assert capsys.readouterr().out.splitlines()[0].split()[:4] == [
        "epoch", "train_loss", "valid_loss", "valid_r2"]
    assert all(r2 <= 1 for r2 in reg.history_[:, "valid_r2"])
    no_split = HybridRegressor(**SMALL).fit(X, X[:, 0])
    assert "valid_r2" not in no_split.history_[-1]


def test_epoch_table_column_order_keeps_unknown_columns_before_the_time():
    table = EpochTable()
    table.initialize()
    keys = ["dur", "zeta", "n_queries", "epoch", "alpha", "train_loss"]
    assert table._sorted_keys(keys) == ["epoch", "train_loss", "n_queries", "alpha", "zeta",
                                        "dur"]
