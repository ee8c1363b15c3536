"""Save and load fitted estimators safely, in the ``skops.io`` format.

``save(estimator, "model.skops")`` writes a fitted (or unfitted)
:class:`~skhybrid.HybridClassifier` or :class:`~skhybrid.HybridRegressor`,
or any scikit-learn object that contains them (a ``Pipeline``, a fitted
``GridSearchCV``), and ``load("model.skops")`` reads it back without
unpickling anything. Plain ``pickle`` and ``joblib`` keep working as well;
use them only for files you made yourself.

Notes
-----
**Why this is safe.** A pickle is a program: loading one runs whatever
callables its author chose, so a model file from anyone else can run
arbitrary code. The skops format holds no pickle. Its file is a zip of a
JSON tree and ``.npy`` arrays; loading rebuilds containers, numbers, strings and arrays itself (numeric
arrays with ``allow_pickle=False``), imports types and functions only by
name, and creates every other object with ``cls.__new__`` followed by its
``__setstate__`` (or a plain ``__dict__`` update). Every type or function
named in the file must be *trusted* before it is imported or created: the
ones skops trusts by default (builtins, numpy, scipy and scikit-learn
estimators), plus :data:`TRUSTED_TYPES` here, plus whatever the caller adds
after reading :func:`untrusted_types`.

**What makes this hold for a network inside an estimator:**

* The torch network is never stored as an object. The estimators'
  ``__getstate__`` (what skops asks for) gives the network's ``state_dict``
  as numpy arrays, the optimiser's state the same way, and the training
  history as plain records; a black-box instance given as a parameter is
  stored as its class (trusted by name) and its attributes, with tensors as
  arrays. skorch's own state, which pickles the torch modules into a byte
  string, never reaches the file, and the skorch net classes are not in
  :data:`TRUSTED_TYPES`, so a file that does contain one is refused.
* On load, ``__setstate__`` rebuilds the network with skhybrid's own code
  (the same code ``fit`` runs) from the loaded constructor parameters, then
  copies the arrays in with ``load_state_dict``. There is no ``torch.load``
  and no pickle anywhere on this path; the file can only choose data: the
  parameters, which are validated as at ``fit``, and the array values.
* Trusting a type in :data:`TRUSTED_TYPES` means letting skops create it
  with ``__new__`` and set its attributes. For the estimators that runs the
  rebuild above. The black boxes, callbacks, splitters and scorer listed
  define no ``__setstate__`` and run no code of their own on load; the
  networks and torch schedulers are only imported as classes, named in
  parameters.

**What is not covered.** A parameter that names *your* code (a
:class:`~skhybrid.CallableBlackBox` function, your own ``module`` class or
callbacks) appears in :func:`untrusted_types`, and :func:`load` refuses the
file until you pass those names in ``trusted``; importing them runs your
module's code, so trust only names whose code you have. A file, like any
model, still decides how large the network it asks for is. Trusted or not, a
model file deserves the trust you give its source.

A ``module`` parameter given as an ``nn.Module`` *instance* cannot be stored
this way (its constructor arguments are unknown); pass the class instead, or
use pickle for such a model.

Examples
--------
>>> import tempfile, os
>>> import numpy as np
>>> from skhybrid import HybridRegressor
>>> from skhybrid.persistence import load, save
>>> X = np.random.RandomState(0).normal(size=(30, 3))
>>> reg = HybridRegressor(black_box="slm", hidden_units=4, rank=2, max_epochs=2,
...                       random_state=0).fit(X, X.sum(axis=1))
>>> path = os.path.join(tempfile.mkdtemp(), "model.skops")
>>> _ = save(reg, path)
>>> bool(np.array_equal(load(path).predict(X), reg.predict(X)))
True
"""

import zipfile

import numpy as np
import torch
from torch import nn

__all__ = ["TRUSTED_TYPES", "UntrustedTypesError", "load", "save", "untrusted_types"]

#: Types this module trusts on load, in addition to skops' own defaults
#: (builtins, numpy, scipy and scikit-learn). Each is created by skops
#: without running code taken from the file (see the module docstring).
TRUSTED_TYPES = (
    # The estimators: their __setstate__ rebuilds the network with skhybrid's code.
    "skhybrid.estimators.HybridClassifier",
    "skhybrid.estimators.HybridRegressor",
    # Black boxes given as instances, and their imperfections.
    "skhybrid.black_boxes.callable.CallableBlackBox",
    "skhybrid.black_boxes.imperfections.Imperfections",
    "skhybrid.black_boxes.matrix.MatrixBlackBox",
    "skhybrid.black_boxes.microring.MicroringBank",
    "skhybrid.black_boxes.monarch.MonarchPhaseMasks",
    "skhybrid.black_boxes.mzi.MZIMesh",
    "skhybrid.black_boxes.slm.SpatialLightModulator",
    # Callbacks given in ``callbacks=``.
    "skhybrid.callbacks.BestEpochEarlyStopping",
    "skhybrid.callbacks.EpochTable",
    "skhybrid.callbacks.HeldOutScore",
    "skhybrid.callbacks.QueryLogger",
    "skhybrid.callbacks.SurrogateErrorLogger",
    "skhybrid.callbacks.SurrogateUpdate",
    "skorch.callbacks.training.EarlyStopping",
    "skorch.callbacks.regularization.GradientNormClipping",
    "skorch.callbacks.lr_scheduler.LRScheduler",
    "skorch.callbacks.scoring.EpochScoring",
    "skorch.callbacks.scoring.PassthroughScoring",
    # Network classes given as ``module=`` (imported by name only).
    "skhybrid.modules.FrontNetwork",
    "skhybrid.modules.HiddenNetwork",
    # What a fitted GridSearchCV over a hybrid estimator holds besides it.
    "sklearn.metrics._scorer._PassthroughScorer",
    "sklearn.model_selection._split.KFold",
    "sklearn.model_selection._split.StratifiedKFold",
    # The validation split of a net trained with early stopping.
    "skorch.dataset.ValidSplit",
    # Learning-rate policies of an LRScheduler (imported by name only).
    "torch.optim.lr_scheduler.CosineAnnealingLR",
    "torch.optim.lr_scheduler.ExponentialLR",
    "torch.optim.lr_scheduler.MultiStepLR",
    "torch.optim.lr_scheduler.OneCycleLR",
    "torch.optim.lr_scheduler.ReduceLROnPlateau",
    "torch.optim.lr_scheduler.StepLR",
)

#: Version of the estimators' portable state; a newer file is refused.
FORMAT_VERSION = 1

_PORTABLE = "__skhybrid_portable__"
_TENSOR = "__skhybrid_tensor__"
_GENERATOR = "__skhybrid_generator__"
_BLACK_BOX = "__skhybrid_black_box__"


class UntrustedTypesError(ValueError):
    """A file names types or functions that are not trusted.

    Attributes
    ----------
    types : list of str
        The untrusted names, sorted.
    """

    def __init__(self, path, types):
        self.types = list(types)
        super().__init__(
            f"{path} names types or functions that are not trusted: {self.types}. "
            "Loading would import or create them. If you know their code, pass "
            "them to load(path, trusted=[...])"
        )


def _skops_io():
    try:
        import skops.io as sio
    except ImportError:  # pragma: no cover - exercised only without the extra
        raise ImportError(
            "saving and loading in the skops format needs skops: "
            "pip install 'skhybrid[persistence]' (or pip install skops)"
        ) from None
    return sio


def save(estimator, path):
    """Write ``estimator`` to ``path`` in the skops format (no pickle inside).

    Parameters
    ----------
    estimator : object
        A :class:`~skhybrid.HybridClassifier` or
        :class:`~skhybrid.HybridRegressor`, fitted or not, or any object
        skops can store that contains them (a ``Pipeline``, a fitted
        ``GridSearchCV``, a list of models).
    path : str or path-like
        The file to write; ``.skops`` is the customary suffix.

    Returns
    -------
    path : str or path-like
        ``path``, for chaining.

    Raises
    ------
    TypeError
        When something cannot be stored without pickle (a ``module``
        parameter given as an ``nn.Module`` instance).
    """
    _skops_io().dump(estimator, path)
    return path


def untrusted_types(path):
    """The names in a skops file that neither skops nor this module trusts.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    list of str
        Sorted type and function names (empty for a file holding only
        skhybrid, scikit-learn, numpy and builtin objects).
    """
    try:
        names = _skops_io().get_untrusted_types(file=path)
    except zipfile.BadZipFile:
        raise ValueError(f"{path!r} is not a skops file (not a zip archive)") from None
    return sorted(set(names) - set(TRUSTED_TYPES))


def load(path, trusted=None):
    """Read an object written by :func:`save` (or by ``skops.io.dump``).

    Parameters
    ----------
    path : str or path-like
    trusted : list of str or None, default=None
        Further type and function names to trust, beyond skops' defaults
        and :data:`TRUSTED_TYPES`: the names :func:`untrusted_types` lists,
        once you have checked them (your device function, your module
        class, ...).

    Returns
    -------
    object
        The saved object; a fitted estimator predicts exactly as before
        saving, and keeps its history and query counters.

    Raises
    ------
    UntrustedTypesError
        When the file names anything not trusted; nothing is imported or
        created then.
    """
    extra = [str(t) for t in (trusted or ())]
    unknown = sorted(set(untrusted_types(path)) - set(extra))
    if unknown:
        raise UntrustedTypesError(path, unknown)
    return _skops_io().load(path, trusted=list(TRUSTED_TYPES) + extra)


# ------------------------------------------------- the estimators' portable state
def _encode(value):
    """Plain containers, numbers, strings and numpy arrays in place of torch objects."""
    from .black_boxes import BlackBox

    if torch.is_tensor(value):
        return (_TENSOR, value.detach().cpu().numpy().copy())
    if isinstance(value, torch.Generator):
        return (_GENERATOR, value.get_state().numpy().copy())
    if isinstance(value, BlackBox):
        return (_BLACK_BOX, type(value), _encode(dict(value.__dict__)))
    if isinstance(value, nn.Module):
        raise TypeError(
            f"a {type(value).__name__} instance cannot be stored in the skops format; "
            "give the estimator's module parameter as a class, or use pickle for this model"
        )
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    if type(value) in (list, tuple):
        return type(value)(_encode(v) for v in value)
    return value


def _decode(value):
    """Inverse of :func:`_encode`."""
    from .black_boxes import BlackBox

    if isinstance(value, tuple) and value and isinstance(value[0], str):
        tag = value[0]
        if tag == _TENSOR:
            return torch.from_numpy(np.array(value[1], copy=True))
        if tag == _GENERATOR:
            generator = torch.Generator()
            generator.set_state(torch.from_numpy(np.array(value[1], dtype=np.uint8)))
            return generator
        if tag == _BLACK_BOX:
            cls = value[1]
            if not (isinstance(cls, type) and issubclass(cls, BlackBox)):
                raise TypeError(f"expected a BlackBox class in the saved state; got {cls!r}")
            box = cls.__new__(cls)
            box.__dict__.update(_decode(value[2]))
            return box
    if isinstance(value, dict):
        return {k: _decode(v) for k, v in value.items()}
    if type(value) in (list, tuple):
        return type(value)(_decode(v) for v in value)
    return value


def _n_outputs(estimator):
    if hasattr(estimator, "n_outputs_"):
        return int(estimator.n_outputs_)
    return len(estimator.classes_)


def portable_state(estimator, state):
    """The state skops stores for a hybrid estimator: no torch or skorch objects.

    Parameters
    ----------
    estimator : HybridClassifier or HybridRegressor
    state : dict
        The estimator's native state (its ``__dict__``, as pickle takes it).

    Returns
    -------
    dict
        ``{"__skhybrid_portable__": version, "attributes": ..., "net": ...}``
        where ``net`` is ``None`` for an unfitted estimator, or the module
        and optimiser state dicts, the devices' current settings, the
        validation split and the history, all as plain data.
    """
    from .layers import black_box_layers

    state = dict(state)
    net = state.pop("net_", None)
    state.pop("history_", None)
    record = None
    if net is not None:
        record = {
            "n_outputs": _n_outputs(estimator),
            "module": _encode(dict(net.module_.state_dict())),
            "programmed": [_encode(layer.black_box._programmed)
                           for layer in black_box_layers(net.module_)],
            "optimizer": _encode(net.optimizer_.state_dict()),
            "train_split": net.train_split,
            "callbacks": {name: _callback_state(cb) for name, cb in net.callbacks_},
            "history": _encode([dict(row) for row in net.history_]),
        }
    return {_PORTABLE: FORMAT_VERSION, "attributes": _encode(state), "net": record}


def restore_state(estimator, state):
    """The native state for ``estimator.__setstate__``; rebuilds the net of a portable one.

    A native state (from pickle) is returned unchanged. A portable one (from
    :func:`portable_state`) has its parameters and fitted attributes set on
    ``estimator``, then the network is built from those parameters, exactly
    as ``fit`` builds it, and given the saved weights, buffers, optimiser
    state and history.
    """
    if not (isinstance(state, dict) and _PORTABLE in state):
        return state
    version = state[_PORTABLE]
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ValueError(
            f"this model was saved in skhybrid's portable format {version!r}; this version "
            f"reads format {FORMAT_VERSION} and older: upgrade skhybrid to load it"
        )
    attributes = _decode(state["attributes"])
    estimator.__dict__.update(attributes)
    if state["net"] is not None:
        net = _rebuild_net(estimator, state["net"])
        attributes["net_"] = net
        attributes["history_"] = net.history_
    return attributes


def _is_plain(value):
    if isinstance(value, dict):
        return all(_is_plain(k) and _is_plain(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return all(_is_plain(v) for v in value)
    if isinstance(value, np.ndarray):
        return value.dtype != object
    return value is None or isinstance(value, (bool, int, float, str, np.generic))


def _callback_state(callback):
    """What a callback learned during the fit (``start_``, ``misses_``, ...), as plain data.

    Attributes that are not plain data (a bound estimator, a progress bar)
    are left out; they are set up again by the next fit.
    """
    state = {}
    for key, value in vars(callback).items():
        if key.endswith("_") and not key.startswith("_"):
            try:
                encoded = _encode(value)
            except TypeError:
                continue
            if _is_plain(encoded):
                state[key] = encoded
    return state


def _rebuild_net(estimator, record):
    from skorch.history import History

    from ._validation import validate_params
    from .layers import black_box_layers

    validate_params(estimator)  # the file's parameters pass the same checks as at fit
    seeds = getattr(estimator, "_fit_seeds", None) or estimator._seeds()
    module = estimator._build_module(int(estimator.n_features_in_), int(record["n_outputs"]),
                                     seeds)
    net = estimator._make_net(module, seeds, train_split=record.get("train_split"))
    net.initialize()
    net.module_.load_state_dict(_decode(record["module"]))
    for layer, programmed in zip(black_box_layers(net.module_), record["programmed"]):
        layer.black_box._programmed = _decode(programmed)
    net.optimizer_.load_state_dict(_decode(record["optimizer"]))
    saved = record.get("callbacks", {})
    for name, callback in net.callbacks_:
        callback.__dict__.update(_decode(saved.get(name, {})))
    net.history_ = History(_decode(record["history"]))
    return net
