"""Checks of the estimators' parameters and inputs, run at ``fit`` (and ``predict``) time.

Each error names the parameter, what is allowed and what was given; input
errors name the offending column or shape and say how to fix it.
"""

import inspect
import numbers

import numpy as np
import torch
from torch import nn

from sklearn.utils.validation import validate_data

from .black_boxes import BLACK_BOXES, BlackBox
from .layers import GRADIENT_MODES, BlackBoxLayer
from .modules import ARCHITECTURES, DIGITAL

__all__ = ["check_regression_targets", "validate_input", "validate_params"]

# Options of BlackBoxLayer that the estimators set from their own parameters.
_LAYER_OPTIONS_OWNED = ("rank", "zo_samples", "surrogate_samples", "gradient", "random_state")


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _is_real(value):
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _int(name, value, low):
    if not _is_int(value) or value < low:
        raise ValueError(f"{name} must be an int >= {low}; got {value!r}")


def _positive(name, value):
    if not _is_real(value) or not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a float > 0; got {value!r}")


def validate_params(est):
    """Raise ``ValueError``/``TypeError`` for an invalid parameter of a hybrid estimator."""
    names = sorted(BLACK_BOXES) + [DIGITAL]
    box = est.black_box
    if isinstance(box, str):
        if box not in names:
            raise ValueError(
                f"black_box must be one of {names} or a BlackBox instance; got {box!r}"
            )
    elif not isinstance(box, BlackBox):
        raise TypeError(
            f"black_box must be one of {names} or a BlackBox instance; got {type(box).__name__}"
        )
    if est.black_box_options is not None:
        if not isinstance(est.black_box_options, dict):
            raise TypeError(
                "black_box_options must be a dict or None; got "
                f"{type(est.black_box_options).__name__}"
            )
        if est.black_box_options and not isinstance(box, str):
            raise ValueError(
                "black_box_options apply to a named black box; configure a BlackBox "
                "instance when you build it"
            )
    if est.layer_options is not None:
        _check_layer_options(est.layer_options)
    module = est.module
    _int("rank", est.rank, 1)
    _int("zo_samples", est.zo_samples, 1)
    if not (isinstance(est.surrogate_samples, str) and est.surrogate_samples == "auto"):
        if not _is_int(est.surrogate_samples) or est.surrogate_samples < 1:
            raise ValueError(
                f'surrogate_samples must be "auto" or an int >= 1; got {est.surrogate_samples!r}'
            )
    if est.gradient not in GRADIENT_MODES:
        raise ValueError(f"gradient must be one of {sorted(GRADIENT_MODES)}; got {est.gradient!r}")
    _int("hidden_units", est.hidden_units, 1)
    if module is None and box != DIGITAL and est.rank > est.hidden_units:
        # The default networks' black-box layer is at most hidden_units wide;
        # a narrower layer (fewer features in "front") clips the rank instead.
        raise ValueError(
            f"rank must be an int in [1, hidden_units] = [1, {est.hidden_units}]: the "
            f"black-box layer is at most hidden_units wide; got {est.rank}"
        )
    if est.architecture not in ARCHITECTURES:
        raise ValueError(
            f"architecture must be one of {sorted(ARCHITECTURES)}; got {est.architecture!r}"
        )
    if module is not None and not isinstance(module, nn.Module) and not (
        isinstance(module, type) and issubclass(module, nn.Module)
    ):
        raise TypeError(
            f"module must be None, a torch.nn.Module subclass or instance; got {module!r}"
        )
    _int("max_epochs", est.max_epochs, 1)
    _int("batch_size", est.batch_size, 1)
    _positive("lr", est.lr)
    _positive("black_box_lr", est.black_box_lr)
    if not isinstance(est.early_stopping, (bool, np.bool_)):
        raise ValueError(f"early_stopping must be a bool; got {est.early_stopping!r}")
    if not _is_real(est.validation_fraction) or not 0 < est.validation_fraction < 1:
        raise ValueError(
            f"validation_fraction must be a float in (0, 1); got {est.validation_fraction!r}"
        )
    _int("n_iter_no_change", est.n_iter_no_change, 1)
    if est.callbacks is not None and not isinstance(est.callbacks, (list, tuple)):
        raise TypeError(
            f"callbacks must be a list of skorch callbacks or None; got {est.callbacks!r}"
        )
    try:
        device = torch.device(est.device)
    except (RuntimeError, TypeError):
        raise ValueError(
            f"device must name a torch device such as 'cpu'; got {est.device!r}"
        ) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={est.device!r} needs CUDA, which this torch build or machine lacks "
            "(torch.cuda.is_available() is False); use device='cpu'"
        )
    if not (isinstance(est.verbose, (bool, np.bool_)) or _is_int(est.verbose)) \
            or est.verbose < 0:
        raise ValueError(f"verbose must be an int >= 0 or a bool; got {est.verbose!r}")
    if not isinstance(est.warm_start, (bool, np.bool_)):
        raise ValueError(f"warm_start must be a bool; got {est.warm_start!r}")


def _check_layer_options(options):
    if not isinstance(options, dict):
        raise TypeError(f"layer_options must be a dict or None; got {type(options).__name__}")
    params = inspect.signature(BlackBoxLayer.__init__).parameters.values()
    valid = sorted(p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY)
    owned = sorted(set(options) & set(_LAYER_OPTIONS_OWNED))
    if owned:
        raise ValueError(
            f"layer_options {owned}: set these with the estimator's own parameters "
            "(random_state seeds every layer)"
        )
    unknown = sorted(set(options) - set(valid), key=str)
    if unknown:
        raise ValueError(
            f"unknown layer_options {unknown}; valid options of BlackBoxLayer are {valid}"
        )


# ------------------------------------------------------------------ inputs
def validate_input(est, X, y="no_validation", *, reset, **kwargs):
    """``validate_data`` to float32, with errors that name the problem.

    The checks scikit-learn makes (NaN, inf, empty, complex, sparse, the
    number of features, feature names) are kept; before them, a DataFrame's
    categorical, text or date columns are named, an array of more than two
    dimensions gets a reshape hint, and a value that is not a number is
    located by column. The caller's arrays are never written to: a
    read-only array is copied, since torch cannot share one.
    """
    _check_frame(X)
    shape = getattr(X, "shape", None)
    if shape is not None and not hasattr(X, "tocsr") and len(shape) > 2:
        raise ValueError(
            f"X must be 2-D, (n_samples, n_features); got an array of shape {tuple(shape)}. "
            "Flatten each sample with X.reshape(len(X), -1); a module of your own can "
            "reshape it back in forward"
        )
    try:
        out = validate_data(est, X, y, dtype=np.float32, reset=reset, **kwargs)
    except ValueError as exc:
        where = _first_text(X) if "could not convert" in str(exc) else None
        if where is None:
            raise
        raise ValueError(
            f"X must hold numbers only; column {where[0]} holds {where[1]!r}. Encode text "
            "and categorical features first, for example with "
            "sklearn.preprocessing.OneHotEncoder"
        ) from exc
    if isinstance(y, str) and y == "no_validation":
        return _writable(out)
    X_out, y_out = out
    return _writable(X_out), y_out


def check_regression_targets(est, y):
    """A regressor's ``y`` must be numbers: name the first value that is not."""
    where = _first_text(y)
    if where is not None:
        raise ValueError(
            f"{type(est).__name__} needs a numeric y; it holds {where[1]!r}. For class "
            "labels use HybridClassifier"
        )


def _writable(X):
    if isinstance(X, np.ndarray) and not X.flags.writeable:
        return X.copy()
    return X


def _check_frame(X):
    """Name a DataFrame's columns that are not numbers (categories, text, dates)."""
    dtypes = getattr(X, "dtypes", None)
    if dtypes is None or not hasattr(X, "columns") or not hasattr(dtypes, "items"):
        return
    bad = []
    for name, dtype in dtypes.items():
        if str(dtype) == "category":
            bad.append(f"{name!r} (category)")
        elif getattr(dtype, "kind", "O") in "OSUMmV":
            if getattr(dtype, "kind", "O") == "O" and _first_text(np.asarray(X[name])) is None:
                continue  # numbers stored as objects convert fine
            bad.append(f"{name!r} ({dtype})")
    if bad:
        raise ValueError(
            f"X has non-numeric column(s) {', '.join(bad)}; the estimators need numbers. "
            "Encode them first, for example with "
            "make_column_transformer((OneHotEncoder(), [columns]), remainder='passthrough') "
            "in a Pipeline, or drop them"
        )


def _first_text(values):
    """``(column, value)`` of the first entry that is not a number, or None."""
    try:
        arr = np.asarray(values)
    except Exception:  # noqa: BLE001 - ragged or odd input: let validate_data report it
        return None
    if arr.ndim == 0 or arr.size == 0 or arr.dtype.kind in "biufc":
        return None
    flat = arr.reshape(len(arr), -1) if arr.ndim > 1 else arr.reshape(-1, 1)
    for j in range(flat.shape[1]):
        for value in flat[:, j]:
            if isinstance(value, (numbers.Number, np.bool_)) or value is None:
                continue
            try:
                float(value)
            except (TypeError, ValueError):
                return (j, value.item() if isinstance(value, np.generic) else value)
    return None
