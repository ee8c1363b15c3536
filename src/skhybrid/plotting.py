"""Plots of training: learning curves, surrogate error, queries, and a rank search.

Each function draws on the matplotlib ``Axes`` it is given, or on a new
figure of its own, and returns the ``Axes``. A new figure is made with
matplotlib's object API on an Agg canvas, never through ``pyplot``, so
these functions change no global matplotlib state, need no display, and
work the same in a script, a test, a CI job or a Dask worker. Save such a
figure with ``ax.figure.savefig("curve.png")``; to show one inline or in a
window, make the axes with ``pyplot`` yourself and pass ``ax=``.

``model`` arguments take a fitted :class:`~skhybrid.HybridClassifier` or
:class:`~skhybrid.HybridRegressor`, a skorch net, or a skorch ``History``;
or a dict ``{label: model}`` to compare several on one plot.

Needs matplotlib (``pip install 'skhybrid[plot]'``).

Examples
--------
>>> from sklearn.datasets import load_iris
>>> from skhybrid import HybridClassifier
>>> from skhybrid.plotting import plot_learning_curve
>>> X, y = load_iris(return_X_y=True)
>>> clf = HybridClassifier(black_box="slm", hidden_units=4, rank=2, max_epochs=3,
...                        random_state=0).fit(X, y)
>>> ax = plot_learning_curve(clf)
>>> ax.get_xlabel()
'epoch'
"""

import numpy as np

__all__ = [
    "plot_learning_curve",
    "plot_queries",
    "plot_rank_search",
    "plot_surrogate_error",
]

_LOSSES = ("train_loss", "valid_loss")
_SCORES = ("valid_acc", "valid_r2", "test_score")


def _axes(ax, figsize=(6.0, 4.0)):
    if ax is not None:
        return ax
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:  # pragma: no cover - exercised only without the extra
        raise ImportError(
            "skhybrid.plotting needs matplotlib: pip install 'skhybrid[plot]'"
        ) from None
    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig.add_subplot()


def _history(model):
    """The skorch History of an estimator, a net, or a History/list of epoch dicts."""
    for name in ("history_", "history"):
        history = getattr(model, name, None)
        if history is not None and not callable(history):
            return history
    if isinstance(model, (list, tuple)):
        return model
    raise TypeError(
        f"expected a fitted hybrid estimator, a skorch net or a History; got "
        f"{type(model).__name__} (is the estimator fitted?)"
    )


def _models(model, label):
    if isinstance(model, dict):
        return list(model.items())
    return [(label, model)]


def _column(history, key):
    rows = [row for row in history if key in row and row[key] is not None]
    epochs = np.array([row.get("epoch", i + 1) for i, row in enumerate(rows)])
    return epochs, np.array([row[key] for row in rows], dtype=float)


def _integer_epochs(ax):
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)


def _from_zero(ax, values):
    top = max((float(np.max(v)) for v in values if len(v)), default=1.0)
    ax.set_ylim(0, 1.1 * top if top > 0 else 1.0)


def _legend(ax):
    if any(line.get_label() and not line.get_label().startswith("_")
           for line in ax.get_lines()):
        ax.legend()


def plot_learning_curve(model, keys=None, *, ax=None, label=None):
    """Losses or scores per epoch.

    Parameters
    ----------
    model : estimator, skorch net, History, or dict of them
        Fitted model(s); a dict ``{label: model}`` draws one set of lines each.
    keys : list of str or None, default=None
        History columns to draw. ``None`` draws the losses present
        (``train_loss``, and ``valid_loss`` with early stopping). Scores
        are columns such as ``valid_acc``, ``valid_r2`` or the
        ``test_score`` of :class:`~skhybrid.callbacks.HeldOutScore`.
    ax : matplotlib Axes or None, default=None
        Where to draw; ``None`` makes a new figure (see the module notes).
    label : str or None, default=None
        Legend label of a single model.

    Returns
    -------
    ax : matplotlib Axes
    """
    ax = _axes(ax)
    drawn = []
    for name, m in _models(model, label):
        history = _history(m)
        present = [k for k in (keys or _LOSSES) if any(k in row for row in history)]
        if keys is not None and len(present) < len(keys):
            missing = sorted(set(keys) - set(present))
            raise ValueError(f"the history has no column(s) {missing}")
        for key in present:
            epochs, values = _column(history, key)
            text = key if name is None else f"{name}: {key}"
            ax.plot(epochs, values, marker="o", markersize=3, label=text)
            drawn.append(key)
    if not drawn:
        raise ValueError("nothing to plot: the history has no train_loss or valid_loss")
    losses_only = all(k.endswith("loss") for k in drawn)
    scores_only = all(k in _SCORES or k.endswith("score") for k in drawn)
    ylabel = "loss" if losses_only else "score" if scores_only else "value"
    ax.set(xlabel="epoch", ylabel=ylabel, title="learning curve")
    _integer_epochs(ax)
    _legend(ax)
    return ax


def plot_surrogate_error(model, *, ax=None, label=None):
    """The surrogate's relative error ``|A - U S V^T|_F / |A|_F`` after each epoch.

    Only simulated devices report it (it reads the ideal matrix): the
    ``surrogate_error`` history column.

    Parameters
    ----------
    model : estimator, skorch net, History, or dict of them
    ax : matplotlib Axes or None, default=None
    label : str or None, default=None

    Returns
    -------
    ax : matplotlib Axes
    """
    ax = _axes(ax)
    drawn = []
    for name, m in _models(model, label):
        epochs, values = _column(_history(m), "surrogate_error")
        if not len(values):
            raise ValueError(
                f"{name or 'the model'} has no surrogate_error column: only layers that use a "
                "surrogate on a simulated device record it"
            )
        ax.plot(epochs, values, marker="o", markersize=3, label=name)
        drawn.append(values)
    ax.set(xlabel="epoch", ylabel="relative error", title="surrogate error")
    _from_zero(ax, drawn)
    _integer_epochs(ax)
    _legend(ax)
    return ax


def plot_queries(model, *, kind="vectors", cumulative=False, ax=None, label=None):
    """Black-box queries per epoch (or in total so far).

    Parameters
    ----------
    model : estimator, skorch net, History, or dict of them
    kind : {"vectors", "configurations"}, default="vectors"
        Input vectors sent (``n_queries``) or reprogrammings
        (``n_configurations``).
    cumulative : bool, default=False
        Draw the running total instead of each epoch's share.
    ax : matplotlib Axes or None, default=None
    label : str or None, default=None

    Returns
    -------
    ax : matplotlib Axes
    """
    columns = {"vectors": "n_queries", "configurations": "n_configurations"}
    if kind not in columns:
        raise ValueError(f"kind must be one of {sorted(columns)}; got {kind!r}")
    ax = _axes(ax)
    drawn = []
    for name, m in _models(model, label):
        epochs, totals = _column(_history(m), columns[kind])
        if not len(totals):
            raise ValueError(f"the history has no {columns[kind]} column")
        values = totals if cumulative else np.diff(totals, prepend=0.0)
        ax.plot(epochs, values, marker="o", markersize=3, label=name)
        drawn.append(values)
    what = "input vectors" if kind == "vectors" else "configurations"
    ax.set(xlabel="epoch", ylabel=f"{what} {'so far' if cumulative else 'per epoch'}",
           title="black-box queries")
    _from_zero(ax, drawn)
    ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 4))
    _integer_epochs(ax)
    _legend(ax)
    return ax


def _rank_column(results, param):
    if f"param_{param}" in results:
        return f"param_{param}"
    matches = [k for k in results if k.startswith("param_") and k.endswith(f"__{param}")]
    if len(matches) != 1:
        params = sorted(k[len("param_"):] for k in results if k.startswith("param_"))
        raise ValueError(f"no single search parameter named {param!r}; the search has {params}")
    return matches[0]


def plot_rank_search(search, param="rank", *, ax=None):
    """Cross-validated score against the surrogate rank, from a parameter search.

    One line per combination of the search's other parameters, with the
    standard deviation over the folds as error bars.

    Parameters
    ----------
    search : fitted GridSearchCV (or any search with ``cv_results_``), or its ``cv_results_``
    param : str, default="rank"
        The parameter on the x axis; a nested name such as
        ``"hybridclassifier__rank"`` is found from its last part.
    ax : matplotlib Axes or None, default=None

    Returns
    -------
    ax : matplotlib Axes
    """
    results = getattr(search, "cv_results_", search)
    if not isinstance(results, dict) or "mean_test_score" not in results:
        raise TypeError("expected a fitted search with cv_results_ (single metric), or its "
                        "cv_results_ dict")
    column = _rank_column(results, param)
    x_name = column[len("param_"):]
    others = sorted(k for k in results if k.startswith("param_") and k != column
                    and len({repr(v) for v in results[k]}) > 1)
    groups = {}
    for i, params in enumerate(results["params"]):
        key = tuple((k[len("param_"):].rsplit("__", 1)[-1], results[k][i]) for k in others)
        groups.setdefault(key, []).append(i)
    ax = _axes(ax)
    for key, rows in groups.items():
        x = np.array([float(results[column][i]) for i in rows])
        order = np.argsort(x)
        mean = np.asarray(results["mean_test_score"], dtype=float)[rows][order]
        std = np.asarray(results["std_test_score"], dtype=float)[rows][order]
        name = ", ".join(f"{k}={v}" for k, v in key) or None
        ax.errorbar(x[order], mean, yerr=std, marker="o", capsize=3, label=name)
    ax.set(xlabel=x_name.rsplit("__", 1)[-1], ylabel="mean cross-validated score",
           title=f"score against {x_name.rsplit('__', 1)[-1]}")
    _integer_epochs(ax)  # ranks are integers too
    if others:
        ax.legend()
    return ax
