"""Checks of the estimators' parameters, run at ``fit`` time.

Each error names the parameter, what is allowed and what was given.
"""

import numbers

import numpy as np
import torch
from torch import nn

from .black_boxes import BLACK_BOXES, BlackBox
from .layers import GRADIENT_MODES
from .modules import ARCHITECTURES, DIGITAL

__all__ = ["validate_params"]


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
    if est.layer_options is not None and not isinstance(est.layer_options, dict):
        raise TypeError(
            f"layer_options must be a dict or None; got {type(est.layer_options).__name__}"
        )
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
    if est.architecture not in ARCHITECTURES:
        raise ValueError(
            f"architecture must be one of {sorted(ARCHITECTURES)}; got {est.architecture!r}"
        )
    module = est.module
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
        torch.device(est.device)
    except (RuntimeError, TypeError):
        raise ValueError(
            f"device must name a torch device such as 'cpu'; got {est.device!r}"
        ) from None
    _int("verbose", est.verbose, 0)
