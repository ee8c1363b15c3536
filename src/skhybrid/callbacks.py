"""skorch callbacks: the surrogate update, query logging and held-out scores.

The estimators add :class:`SurrogateUpdate`'s work through their net's
``train_step`` (one update per optimiser step) and install
:class:`QueryLogger` and :class:`SurrogateErrorLogger` by default. Pass
:class:`HeldOutScore` in ``callbacks=`` to record a learning curve on data
the network does not train on.
"""

import copy
import re
import sys

import numpy as np
from skorch.callbacks import Callback, EarlyStopping, PrintLog

from .layers import black_box_layers, update_surrogates

__all__ = [
    "BestEpochEarlyStopping",
    "EpochTable",
    "HeldOutScore",
    "QueryLogger",
    "SurrogateErrorLogger",
    "SurrogateUpdate",
    "count_queries",
]


def _unique_black_boxes(module):
    boxes, seen = [], set()
    for layer in black_box_layers(module):
        if id(layer.black_box) not in seen:
            seen.add(id(layer.black_box))
            boxes.append(layer.black_box)
    return boxes


def count_queries(module):
    """Total black-box queries of every device in ``module``.

    Returns
    -------
    dict
        ``{"vectors": int, "configurations": int}`` summed over devices and
        purposes (forward, ZO, surrogate). Zero for a network without
        black-box layers.
    """
    total = {"vectors": 0, "configurations": 0}
    for box in _unique_black_boxes(module):
        for key, value in box.n_queries.items():
            total[key] += int(value)
    return total


_ANSI_CODE = re.compile(r"\x1b\[[0-9;]*m")


class EpochTable(PrintLog):
    """skorch's per-epoch table, with the "best so far" colours only on a terminal.

    The estimators' nets use it in place of ``PrintLog`` (the callback is
    still named ``print_log``), so that a log piped to a file stays plain
    text: one line per epoch. The columns come in the order of
    :attr:`column_order` (losses, validation and held-out scores, black-box
    queries, surrogate error), then any others, then the epoch time ``dur``.
    """

    #: Leading columns, when present.
    column_order = ("epoch", "train_loss", "valid_loss", "valid_acc", "valid_r2", "test_score",
                    "n_queries", "surrogate_error")

    def format_row(self, row, key, color):
        text = super().format_row(row, key, color)
        if isinstance(text, str) and not _stdout_is_terminal():
            text = _ANSI_CODE.sub("", text)
        return text

    def _sorted_keys(self, keys):
        keys = super()._sorted_keys(keys)
        first = [k for k in self.column_order if k in keys]
        return first + [k for k in keys if k not in first]


def _stdout_is_terminal():
    return _is_terminal(sys.stdout)


def _progress_bar_wanted():
    """A progress bar (drawn on stderr) only when both output streams are terminals.

    Redrawn many times per epoch, it would flood a log file or a CI log.
    """
    return _is_terminal(sys.stdout) and _is_terminal(sys.stderr)


def _is_terminal(stream):
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class BestEpochEarlyStopping(EarlyStopping):
    """skorch's ``EarlyStopping(load_best=True)``, keeping the devices' query counters.

    A black-box layer's ``state_dict`` carries its device's counters, so
    restoring the best epoch's weights would also roll the counters back
    and hide the queries spent after that epoch. This restores the weights
    and surrogates of the best epoch and keeps the counters (and fault
    counts) of the whole fit.
    """

    def __init__(self, monitor="valid_loss", patience=5, threshold=1e-4,
                 threshold_mode="rel", lower_is_better=True, sink=print):
        super().__init__(monitor=monitor, patience=patience, threshold=threshold,
                         threshold_mode=threshold_mode, lower_is_better=lower_is_better,
                         sink=sink, load_best=True)

    def on_train_end(self, net, **kwargs):
        boxes = _unique_black_boxes(net.module_)
        kept = [(copy.deepcopy(box.counts), copy.deepcopy(getattr(box, "n_faults", None)))
                for box in boxes]
        super().on_train_end(net, **kwargs)
        for box, (counts, faults) in zip(boxes, kept):
            box.counts = counts
            if faults is not None:
                box.n_faults = faults


class SurrogateUpdate(Callback):
    """Update every surrogate after each training batch (``on_batch_end``).

    For a plain skorch net. The estimators do not need it: their net calls
    :func:`~skhybrid.update_surrogates` right after the optimiser step,
    exactly once per step. The update is a no-op when the parameters did not
    change, and it never runs on validation or prediction batches.
    """

    def on_batch_end(self, net, batch=None, training=False, **kwargs):
        if training:
            update_surrogates(net.module_)


class QueryLogger(Callback):
    """Record the cumulative black-box queries in the history after each epoch.

    Columns ``n_queries`` (input vectors sent) and ``n_configurations``
    (reprogrammings), counted since the start of the fit over all devices and
    purposes, validation forward passes included. A training that continues
    an existing history (``partial_fit``, a warm start) keeps counting from
    where that history began.
    """

    def on_train_begin(self, net, **kwargs):
        now = count_queries(net.module_)
        last = net.history[-1] if len(net.history) else {}
        if last and hasattr(self, "start_"):
            return
        # A restored net continuing its history (a loaded model): the counters
        # already hold the history's queries.
        self.start_ = {"vectors": now["vectors"] - last.get("n_queries", 0),
                       "configurations": now["configurations"] - last.get("n_configurations", 0)}

    def on_epoch_end(self, net, **kwargs):
        now = count_queries(net.module_)
        start = getattr(self, "start_", {"vectors": 0, "configurations": 0})
        net.history.record("n_queries", now["vectors"] - start["vectors"])
        net.history.record("n_configurations", now["configurations"] - start["configurations"])


class SurrogateErrorLogger(Callback):
    """Record ``surrogate_error`` after each epoch: ``|A - U S V^T|_F / |A|_F``.

    A simulation-only diagnostic: it reads the ideal matrix from the
    simulator, which costs no counted queries. The mean over the layers that
    use a surrogate and run on a simulated device; no column when there are
    none (digital networks, real devices, oracle modes).
    """

    def on_epoch_end(self, net, **kwargs):
        errors = [
            layer.surrogate_error()
            for layer in black_box_layers(net.module_)
            if layer.uses_surrogate and layer.black_box.differentiable
            and bool(layer.surrogate_ready)
        ]
        if errors:
            net.history.record("surrogate_error", float(np.mean(errors)))


class HeldOutScore(Callback):
    """Score the network on held-out data after each epoch, for a learning curve.

    Records the estimator's score (accuracy for a classifier, R^2 for a
    regressor) on ``(X, y)``, given in the estimator's own terms (original
    labels and targets), under ``name``. The device queries this costs are
    monitoring, not training: they are recorded as ``<name>_queries`` and
    taken back out of the devices' counters, so ``n_queries`` and the
    estimator's ``n_queries_`` stay the cost of the fit. (With measurement
    noise on, the extra queries still draw from the noise stream.)

    Only meaningful inside :class:`~skhybrid.HybridClassifier` or
    :class:`~skhybrid.HybridRegressor`, which bind it to themselves when a
    fit starts.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    y : array-like of shape (n_samples,) or (n_samples, n_targets)
    name : str, default="test_score"
        History column.
    """

    def __init__(self, X, y, name="test_score"):
        self.X = X
        self.y = y
        self.name = name

    @property
    def log_keys_ignored(self):
        """History keys the epoch table leaves out (the monitoring query count)."""
        return [self.name + "_queries"]

    def bind_estimator(self, estimator):
        """Called by the estimators at the start of a fit."""
        self.estimator_ = estimator

    def on_epoch_end(self, net, **kwargs):
        estimator = getattr(self, "estimator_", None)
        if estimator is None:
            raise RuntimeError("HeldOutScore works only inside a HybridClassifier/HybridRegressor")
        boxes = _unique_black_boxes(net.module_)
        saved = [copy.deepcopy(box.counts) for box in boxes]
        before = count_queries(net.module_)
        score = estimator._score_with_net(net, self.X, self.y)
        spent = count_queries(net.module_)["vectors"] - before["vectors"]
        # Evaluating at the parameters the device already holds costs no
        # reconfiguration, so restoring the counters restores everything.
        for box, counts in zip(boxes, saved):
            box.counts = counts
        net.history.record(self.name, float(score))
        net.history.record(self.name + "_queries", int(spent))

    def __getstate__(self):
        state = self.__dict__.copy()
        # The bound estimator holds this callback through its net: keep the
        # pickle flat, it is rebound at the next fit.
        state.pop("estimator_", None)
        return state
