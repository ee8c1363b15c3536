"""scikit-learn estimators for networks with a black-box layer.

:class:`HybridClassifier` and :class:`HybridRegressor` validate their input,
then build and train a skorch net inside ``fit``. The black-box parameters
get their own Adam learning rate, and every surrogate is moved to the new
parameters exactly once after each optimiser step.
"""

import copy
import copyreg
import warnings

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.metrics import accuracy_score, r2_score
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted
from skorch import NeuralNetClassifier, NeuralNetRegressor
from skorch.callbacks import EpochScoring, ProgressBar
from skorch.dataset import ValidSplit
from torch import nn

from ._validation import check_regression_targets, validate_input, validate_params
from .black_boxes import FAULT_KINDS, BlackBox, BlackBoxError
from .black_boxes.imperfections import Imperfections
from .callbacks import (BestEpochEarlyStopping, EpochTable, QueryLogger, SurrogateErrorLogger,
                        _progress_bar_wanted, _unique_black_boxes, count_queries)
from .layers import BlackBoxLayer, black_box_layers, seed_layers, update_surrogates
from .modules import LayerFactory, Standardize, build_network, instantiate_module

__all__ = ["HybridClassifier", "HybridRegressor"]


# --------------------------------------------------------------- skorch nets
class _HybridNetMixin:
    """What the hybrid estimators add to a skorch net.

    * The black-box parameters (``params`` and ``scale`` of every
      :class:`~skhybrid.BlackBoxLayer`) form their own Adam parameter group,
      at ``black_box_lr``; everything else trains at ``lr``.
    * :func:`~skhybrid.update_surrogates` runs right after each optimiser
      step, and nowhere else: validation and prediction never touch a
      surrogate.
    * With ``shuffle_seed`` set, epoch ``k`` shuffles the training data with
      a generator seeded from ``(shuffle_seed, k)``: the order depends on
      the epoch number only, so a run resumed from a checkpoint or
      continued by a warm start shuffles as the uninterrupted run would.
    * The state of each epoch's start (module, optimiser, torch's RNG) is
      kept until the epoch ends. When a :class:`~skhybrid.BlackBoxError`
      arrives during an epoch, or a ``KeyboardInterrupt`` (Ctrl-C) during
      its training or validation pass, the net goes back to that state and
      the unfinished epoch is dropped from the history; the query and fault
      counters keep what was spent. A ``KeyboardInterrupt`` raised from an
      ``on_epoch_end`` callback (skorch's way to stop, as
      ``EarlyStopping`` does) keeps the finished epoch.
    """

    def __init__(self, *args, black_box_lr=0.01, shuffle_seed=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.black_box_lr = black_box_lr
        self.shuffle_seed = shuffle_seed

    # ------------------------------------------- epochs: shuffling, snapshots
    def on_epoch_begin(self, net, **kwargs):
        self._epoch_start = self._snapshot()
        self._in_epoch_end = False
        super().on_epoch_begin(net, **kwargs)
        generator = self.get_params_for("iterator_train").get("generator")
        if self.shuffle_seed is not None and isinstance(generator, torch.Generator):
            seed = np.random.SeedSequence([int(self.shuffle_seed), len(self.history)])
            generator.manual_seed(int(seed.generate_state(1)[0]))

    def on_epoch_end(self, net, **kwargs):
        self._in_epoch_end = True
        super().on_epoch_end(net, **kwargs)

    def fit_loop(self, X, y=None, epochs=None, **fit_params):
        self._epoch_start = None
        self._in_epoch_end = False
        self.interrupted_epoch_ = None
        try:
            return super().fit_loop(X, y, epochs=epochs, **fit_params)
        except KeyboardInterrupt:
            if not self._in_epoch_end:
                self.interrupted_epoch_ = len(self.history)
                self._roll_back()
            raise
        except BlackBoxError:
            self.interrupted_epoch_ = len(self.history)
            self._roll_back()
            raise
        finally:
            self._epoch_start = None  # a snapshot is large; keep none after the fit

    def notify(self, method_name, **cb_kwargs):
        # Interrupted in the first epoch, nothing is left to end: callbacks
        # such as EarlyStopping read the last epoch in on_train_end.
        if method_name == "on_train_end" and not len(self.history):
            return
        super().notify(method_name, **cb_kwargs)

    def _snapshot(self):
        layers = black_box_layers(self.module_)
        return {
            "n_epochs": len(self.history),
            "module": copy.deepcopy(self.module_.state_dict()),
            "optimizer": copy.deepcopy(self.optimizer_.state_dict()),
            "torch_rng": torch.get_rng_state(),
            "monitor": [(getattr(layer, "_monitor_reference", None),
                         getattr(layer, "last_monitored_error", None)) for layer in layers],
        }

    def _roll_back(self):
        """Back to the start of the unfinished epoch, keeping the counters of the whole fit."""
        start = self._epoch_start
        if start is None:
            return
        layers = black_box_layers(self.module_)
        boxes = list({id(layer.black_box): layer.black_box for layer in layers}.values())
        counters = [(copy.deepcopy(box.counts), dict(box.n_faults)) for box in boxes]
        rebuilds = [layer.n_rebuilds for layer in layers]
        self.module_.load_state_dict(start["module"])
        self.optimizer_.load_state_dict(start["optimizer"])
        torch.set_rng_state(start["torch_rng"])
        for box, (counts, faults) in zip(boxes, counters):
            box.counts, box.n_faults = counts, faults
        for layer, n, (reference, error) in zip(layers, rebuilds, start["monitor"]):
            layer.n_rebuilds = n
            layer._monitor_reference, layer.last_monitored_error = reference, error
        del self.history[start["n_epochs"]:]

    @property
    def _default_callbacks(self):
        return [(name, EpochTable() if name == "print_log" else cb)
                for name, cb in super()._default_callbacks]

    def initialize_optimizer(self, triggered_directly=None):
        named = list(self.get_all_learnable_params())
        on_device = {id(p) for layer in black_box_layers(self.module_)
                     for p in layer.black_box_parameters()}
        digital = [p for _, p in named if id(p) not in on_device]
        device = [p for _, p in named if id(p) in on_device]
        groups = [g for g in ({"params": digital},
                              {"params": device, "lr": self.black_box_lr}) if g["params"]]
        kwargs = self.get_params_for("optimizer")
        kwargs.setdefault("lr", self.lr)
        self.optimizer_ = self.optimizer(groups, **kwargs)
        return self

    def train_step(self, batch, **fit_params):
        step = super().train_step(batch, **fit_params)
        update_surrogates(self.module_)
        return step


class HybridNetClassifier(_HybridNetMixin, NeuralNetClassifier):
    """skorch ``NeuralNetClassifier`` with a black-box optimiser group and surrogate updates."""


class HybridNetRegressor(_HybridNetMixin, NeuralNetRegressor):
    """skorch ``NeuralNetRegressor`` with a black-box optimiser group and surrogate updates."""

    @property
    def _default_callbacks(self):
        # A validation score beside the loss, like the classifier's valid_acc (from the
        # cached validation pass: no extra queries). R^2 is the same on the standardised
        # targets the net sees as on the estimator's own.
        return super()._default_callbacks + [
            ("valid_r2", EpochScoring("r2", lower_is_better=False, name="valid_r2"))]


# ---------------------------------------------------------------- estimators
_SHARED_PARAMETERS = """
    black_box : str or BlackBox, default="mzi"
        The device of the black-box layer: a name accepted by
        :func:`~skhybrid.make_black_box` (``"matrix"``, ``"slm"``, ``"mrr"``,
        ``"mzi"``, ``"mzi_classical"``, ``"monarch"``), a
        :class:`~skhybrid.BlackBox` instance (cloned at each fit; its widths
        must match the layer), or ``"digital"``: the same network with an
        ordinary ``nn.Linear`` (no bias) in place of the black box, trained
        by backpropagation at ``lr``, the digital twin to compare against.
    black_box_options : dict or None, default=None
        Options of a named black box: imperfections (``noise``,
        ``additive_noise``, ``param_bits``, ``input_bits``, ``drift``, ...)
        and device options (``a``, ``r`` of ``"mrr"``, ...). A
        ``random_state`` here overrides the one derived from the
        estimator's.
    rank : int, default=8
        Surrogate rank, clipped to ``min(d_in, d_out)`` of the layer.
    zo_samples : int, default=16
        Zeroth-order directions per step (``M_BB``).
    surrogate_samples : int or "auto", default="auto"
        Surrogate probes per step (``M_SM``); ``"auto"`` is ``4 * rank``,
        or exact probing when that costs no more.
    gradient : str, default="astralora"
        The layer's gradient mode: ``"astralora"`` (surrogate input
        gradient, ZO parameter gradient: forward queries only), the oracles
        ``"exact"``, ``"zo_only"``, ``"surrogate_only"`` (autograd through
        the simulation), ``"svd"``, or ``"frozen"`` (the device is never
        trained, the control). See :class:`~skhybrid.BlackBoxLayer`.
    hidden_units : int, default=64
        Width of the black-box layer in the default network.
    architecture : {"hidden", "front"}, default="hidden"
        ``"hidden"``: standardise -> Linear -> tanh -> black box (h x h)
        -> tanh -> Linear. ``"front"``: the black box is the first layer,
        fed the standardised features squashed into (-1, 1), as an optical
        front end is, then tanh and a linear readout. See
        :mod:`skhybrid.modules`.
    module : nn.Module class or instance, or None, default=None
        Your own network containing :class:`~skhybrid.BlackBoxLayer` s (a
        CNN, a transformer, ...); ``hidden_units`` and ``architecture`` are
        then ignored. A class is called with whichever of ``n_features``,
        ``n_outputs`` and ``make_layer`` its constructor accepts;
        ``make_layer(d_in, d_out)`` builds a black-box layer from this
        estimator's settings (``black_box``, ``rank``, ...). An instance is
        deep-copied at each fit, so the given one is never changed and
        every fit starts from its weights. Any
        :class:`~skhybrid.modules.Standardize` inside is fitted to ``X``.
    layer_options : dict or None, default=None
        Further :class:`~skhybrid.BlackBoxLayer` options (``zo_scheme``,
        ``zo_directions``, ``mu``, ``probes``, ``rebuild_every``,
        ``monitor_every``, ...). Unless ``mu`` is set here, the ZO step is
        the device's :meth:`~skhybrid.BlackBox.suggested_mu`, which grows
        with noise, quantisation and drift; and unless ``monitor_every`` is,
        a drifting device gets ``monitor_every=10``: the surrogate is
        checked every 10 updates and rebuilt when drift has made it stale.
    max_epochs : int, default=40
        Passes over the training data.
    batch_size : int, default=32
        Samples per optimiser step.
    lr : float, default=3e-3
        Adam learning rate of the digital parameters.
    black_box_lr : float, default=0.01
        Adam learning rate of the black-box parameters and output scales,
        in their own parameter group.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the training data (stratified
        for a classifier), stop when the validation loss has not improved
        for ``n_iter_no_change`` epochs, and restore the best epoch's
        weights.
    validation_fraction : float, default=0.1
        Share of the training data held out when ``early_stopping``.
    n_iter_no_change : int, default=10
        Patience of early stopping, in epochs.
    callbacks : list or None, default=None
        Extra skorch callbacks (or ``(name, callback)`` pairs), deep-copied
        at each fit. :class:`~skhybrid.callbacks.HeldOutScore` records a
        learning curve on held-out data.
    device : str, default="cpu"
        torch compute device.
    random_state : int, RandomState instance or None, default=None
        Seeds everything random: weight initialisation, device parameters
        and noise, ZO directions and surrogate probes (a distinct stream
        per layer), shuffling, and the validation split. The same int gives
        bit-identical predictions; the global torch RNG is left untouched.
    verbose : int, default=0
        0 is silent; 1 prints an epoch table (with a progress bar when
        stdout is a terminal).
    warm_start : bool, default=False
        When True and the estimator is fitted, ``fit`` continues training
        the same network for ``max_epochs`` more epochs: its weights,
        optimiser state, surrogates, device state and random streams carry
        on, so two warm-started fits of 5 epochs equal one of 10. The new
        ``max_epochs``, ``batch_size``, ``lr``, ``black_box_lr`` and
        ``verbose`` apply; callbacks, early stopping and the input and
        target scaling stay those of the first fit; changing a parameter
        that shapes the network (``black_box``, ``rank``, ``hidden_units``,
        ...) raises ``ValueError``, as do new classes. When False, each
        ``fit`` starts afresh."""

_SHARED_ATTRIBUTES = """
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Feature names, when ``X`` was a DataFrame with string column names.
    net_ : skorch NeuralNet
        The trained net (``net_.module_`` is the torch network).
    history_ : skorch History
        Per-epoch records: ``train_loss`` (and ``valid_loss``),
        ``n_queries`` and ``n_configurations`` (cumulative), and
        ``surrogate_error`` for simulated devices.
    n_iter_ : int
        Epochs run.
    n_queries_ : dict
        The fit's total black-box queries, ``{"vectors": int,
        "configurations": int}``: input vectors sent and reprogrammings,
        summed over devices and over forward, ZO and surrogate queries
        (validation passes included; 0 for ``black_box="digital"``).
        Cumulative over warm-started fits.
    n_faults_ : dict
        Failed device attempts during training, summed over devices, by
        kind: ``"exception"``, ``"timeout"``, ``"non_finite"`` (NaN or inf),
        ``"shape"`` (wrong output shape), and ``"dropped"``: ZO directions
        given up after their retries (see :class:`~skhybrid.BlackBox`)."""

_NOTES = """
    Each optimiser step costs ``B`` forward vectors, about ``zo_samples * B``
    ZO vectors on ``zo_samples`` configurations, and ``2 (rank + M_SM)``
    surrogate vectors on one configuration (see
    :class:`~skhybrid.BlackBoxLayer`); ``n_queries_`` counts them all.
    Prediction queries the device too, but never updates a surrogate.

    A device that keeps failing (a :class:`~skhybrid.BlackBoxError`
    after its retries) or a ``KeyboardInterrupt`` (Ctrl-C) during an epoch
    leaves the estimator fitted with the network of its last completed epoch
    and the history of the completed epochs; the query and fault counters
    keep everything spent. Ctrl-C returns from ``fit`` with a warning, as
    skorch does; the ``BlackBoxError`` is raised again, saying so. Fit again
    with ``warm_start=True`` to continue: the result is the same as an
    uninterrupted run. skorch's ``Checkpoint`` and ``LoadInitState`` in
    ``callbacks`` resume exactly too (the layers' state carries their
    random streams, and each epoch shuffles by its number).

    All of scikit-learn's common estimator checks pass; there are no
    expected failures. With measurement noise or drift in
    ``black_box_options`` the ``non_deterministic`` tag is set, since
    repeated predictions then differ.

    References
    ----------
    .. [1] G. Chertkov, A. Basharin, M. Saygin, E. Frolov, S. Straupe,
       I. Oseledets, "Low-rank surrogate modeling and stochastic zero-order
       optimization for training of neural networks with black-box layers",
       arXiv:2509.15113, 2025."""


class _BaseHybrid(BaseEstimator):
    """Shared parameters and fitting machinery of the hybrid estimators."""

    _net_class = None
    _criterion = None

    def __init__(
        self,
        black_box="mzi",
        black_box_options=None,
        rank=8,
        zo_samples=16,
        surrogate_samples="auto",
        gradient="astralora",
        hidden_units=64,
        architecture="hidden",
        module=None,
        layer_options=None,
        max_epochs=40,
        batch_size=32,
        lr=3e-3,
        black_box_lr=0.01,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        callbacks=None,
        device="cpu",
        random_state=None,
        verbose=0,
        warm_start=False,
    ):
        self.black_box = black_box
        self.black_box_options = black_box_options
        self.rank = rank
        self.zo_samples = zo_samples
        self.surrogate_samples = surrogate_samples
        self.gradient = gradient
        self.hidden_units = hidden_units
        self.architecture = architecture
        self.module = module
        self.layer_options = layer_options
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.black_box_lr = black_box_lr
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.callbacks = callbacks
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = self._is_noisy()
        return tags

    # pickle, joblib and copy keep the native state (the skorch net as it is);
    # skops asks __getstate__, which gives plain data (see skhybrid.persistence).
    def __reduce_ex__(self, protocol):
        return copyreg.__newobj__, (type(self),), super().__getstate__()

    def __getstate__(self):
        from .persistence import portable_state

        return portable_state(self, super().__getstate__())

    def __setstate__(self, state):
        from .persistence import restore_state

        super().__setstate__(restore_state(self, state))

    def _is_noisy(self):
        """Whether repeated queries of the device differ (noise or drift on)."""
        if isinstance(self.black_box, BlackBox):
            imp = self.black_box.imperfections
        else:
            options = self.black_box_options if isinstance(self.black_box_options, dict) else {}
            fields = options.get("imperfections", options)
            if isinstance(fields, dict):
                known = Imperfections.__dataclass_fields__
                fields = {k: v for k, v in fields.items() if k in known}
            try:
                imp = Imperfections.coerce(fields)
            except (TypeError, ValueError):
                return False
        return bool(imp.noise or imp.additive_noise or imp.drift)

    # ------------------------------------------------------------ fitting
    def _seeds(self):
        rng = check_random_state(self.random_state)
        seed = int(rng.randint(np.iinfo(np.int32).max))
        state = np.random.SeedSequence(seed).generate_state(5) % (2**31 - 2)
        return dict(zip(("init", "devices", "layers", "loader", "split"), map(int, state)))

    def _build_module(self, n_features, n_outputs, seeds):
        factory = _EstimatorLayerFactory(
            black_box=self.black_box, black_box_options=self.black_box_options,
            rank=self.rank, zo_samples=self.zo_samples,
            surrogate_samples=self.surrogate_samples, gradient=self.gradient,
            layer_options=self.layer_options, random_state=seeds["devices"],
        )
        with _forked_torch_rng(self.device, seeds["init"]):
            if self.module is None:
                module = build_network(self.architecture, n_features, n_outputs, factory,
                                       int(self.hidden_units))
            else:
                module = instantiate_module(self.module, n_features, n_outputs, factory)
        if not isinstance(module, nn.Module):
            raise TypeError(f"module must build a torch.nn.Module; got {type(module).__name__}")
        seed_layers(module, seeds["layers"])
        return module

    def _build_callbacks(self):
        callbacks = [("queries", QueryLogger()), ("surrogate_error", SurrogateErrorLogger())]
        # Left out of the printed epoch table, kept in the history.
        keys_ignored = ["n_configurations"]
        for cb in copy.deepcopy(list(self.callbacks or [])):
            callbacks.append(cb)
            target = cb[1] if isinstance(cb, tuple) else cb
            if hasattr(target, "bind_estimator"):
                target.bind_estimator(self)
            keys_ignored.extend(getattr(target, "log_keys_ignored", ()))
        if self.early_stopping:
            # After every recording callback: stopping ends the epoch's
            # on_epoch_end calls, and the last epoch must still be complete.
            callbacks.append(("early_stopping", BestEpochEarlyStopping(
                monitor="valid_loss", patience=self.n_iter_no_change)))
        if self.verbose and _progress_bar_wanted():
            callbacks.append(("progress_bar", ProgressBar()))
        return callbacks, keys_ignored

    def _train_split(self, y, seeds, classifier):
        if not self.early_stopping:
            return None
        stratified = classifier and np.bincount(y).min() >= 2
        return ValidSplit(cv=float(self.validation_fraction), stratified=bool(stratified),
                          random_state=seeds["split"])

    def _make_net(self, module, seeds, train_split):
        """The skorch net around ``module`` (also used to rebuild a loaded model)."""
        callbacks, keys_ignored = self._build_callbacks()
        return self._net_class(
            module=module,
            criterion=self._criterion,
            optimizer=torch.optim.Adam,
            lr=float(self.lr),
            black_box_lr=float(self.black_box_lr),
            max_epochs=int(self.max_epochs),
            batch_size=int(self.batch_size),
            train_split=train_split,
            callbacks=callbacks,
            callbacks__print_log__keys_ignored=keys_ignored,
            iterator_train__shuffle=True,
            iterator_train__generator=torch.Generator().manual_seed(seeds["loader"]),
            shuffle_seed=seeds["loader"],
            device=self.device,
            verbose=int(self.verbose),
        )

    def _fit_net(self, X, y_net, n_outputs, classifier):
        """Build the module and the skorch net, train it, and set the fitted attributes."""
        if self._continues():
            return self._train(self.net_, X, y_net, _forked_torch_rng(
                self.device, state=getattr(self, "_torch_rng_state", None)))
        seeds = self._seeds()
        module = self._build_module(X.shape[1], n_outputs, seeds)
        for m in module.modules():
            if isinstance(m, Standardize):
                m.fit(X)
        net = self._make_net(module, seeds, self._train_split(y_net, seeds, classifier))
        self._fit_seeds = seeds  # rebuilds the same network when loaded (skhybrid.persistence)
        self._built_with = {k: getattr(self, k) for k in _NETWORK_PARAMETERS}
        return self._train(net, X, y_net, _forked_torch_rng(self.device, seeds["init"] + 1))

    def _continues(self):
        """Whether this fit continues the fitted network (``warm_start=True``)."""
        if not (self.warm_start and hasattr(self, "net_")):
            return False
        built = getattr(self, "_built_with", {})
        changed = [k for k in _NETWORK_PARAMETERS
                   if k in built and not _same_value(built[k], getattr(self, k))]
        if changed:
            raise ValueError(
                f"warm_start=True continues the fitted network, but {changed} changed since "
                "it was built; set them back, or set warm_start=False to build a new network"
            )
        return True

    def _train(self, net, X, y_net, torch_rng):
        """Run ``net`` (a fresh fit, or a continuation) and set the fitted attributes.

        A :class:`~skhybrid.BlackBoxError` leaves the estimator fitted with
        the network of its last completed epoch (the net rolls back), and is
        raised again with that said.
        """
        continuing = net is getattr(self, "net_", None)
        outside = {"vectors": 0, "configurations": 0}
        if continuing:
            net.max_epochs = int(self.max_epochs)
            net.batch_size = int(self.batch_size)
            net.verbose = int(self.verbose)
            _set_learning_rates(net, float(self.lr), float(self.black_box_lr))
            # Queries made since the last fit (predictions, scores) are not
            # training: keep them out of n_queries_ and the history's counts.
            now, before = count_queries(net.module_), getattr(self, "_queries_outside", outside)
            spent = {k: now[k] - before[k] - self.n_queries_[k] for k in now}
            outside = {k: before[k] + spent[k] for k in now}
            for _, cb in net.callbacks_:
                if isinstance(cb, QueryLogger) and hasattr(cb, "start_"):
                    cb.start_ = {k: cb.start_[k] + spent[k] for k in spent}
        self._queries_outside = outside
        failure = None
        with torch_rng:
            try:
                if continuing:
                    net.partial_fit(X, y_net)
                else:
                    net.fit(X, y_net)
            except BlackBoxError as exc:
                failure = exc
        self._torch_rng_state = torch_rng.final_state
        self.net_ = net
        self.history_ = net.history_
        self.n_iter_ = len(net.history_)
        self.n_queries_ = {k: v - outside[k] for k, v in count_queries(net.module_).items()}
        self.n_faults_ = _count_faults(net.module_)
        stopped_in = getattr(net, "interrupted_epoch_", None)
        kept = (f"as it was after epoch {self.n_iter_}, its last completed one"
                if self.n_iter_ else "as it was before training")
        if failure is not None:
            where = f" in epoch {stopped_in}" if stopped_in else ""
            raise BlackBoxError(
                f"{failure}\nThe fit stopped{where}. The estimator keeps its network {kept} "
                f"(history_ holds {self.n_iter_} epoch(s)) and can predict; n_faults_ = "
                f"{self.n_faults_}. Fix the device, then fit again with warm_start=True to "
                "continue.",
                purpose=failure.purpose, cause=failure.cause,
            ) from failure
        if stopped_in is not None:
            warnings.warn(
                f"fit was interrupted in epoch {stopped_in}; the estimator keeps its network "
                f"{kept}, and history_ holds {self.n_iter_} epoch(s). Fit again with "
                "warm_start=True to continue.", UserWarning, stacklevel=4)
        return self

    def _forward_net(self, net, X):
        """Network outputs for already validated ``X`` (float32)."""
        return net.predict_proba(X)


class HybridClassifier(ClassifierMixin, _BaseHybrid):
    __doc__ = f"""Classifier: a neural network with a black-box layer, trained from forward queries.

    The default network is ``Linear -> tanh -> black box -> tanh -> Linear``
    with standardised inputs (``architecture="hidden"``), or the black box
    as the first layer (``"front"``). Training uses Adam on cross-entropy;
    the black box's own parameters follow a zeroth-order gradient estimate
    and the gradient passed back through it comes from a low-rank surrogate
    (``gradient="astralora"``), so the device is only ever run forward.

    Parameters
    ----------{_SHARED_PARAMETERS}

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels (any type np.unique sorts: ints, strings, ...).{_SHARED_ATTRIBUTES}

    See Also
    --------
    HybridRegressor : the same for regression.
    skhybrid.BlackBoxLayer : the layer, for your own torch training loop.

    Notes
    -----{_NOTES}

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from skhybrid import HybridClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = HybridClassifier(black_box="slm", hidden_units=8, rank=2, max_epochs=5,
    ...                        random_state=0).fit(X, y)
    >>> clf.predict(X[:3]).shape
    (3,)
    """

    _net_class = HybridNetClassifier
    _criterion = nn.CrossEntropyLoss

    def fit(self, X, y):
        """Train the network on ``(X, y)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Labels of any type ``np.unique`` can sort.

        Returns
        -------
        self : HybridClassifier
        """
        validate_params(self)
        continuing = self._continues()
        X, y = validate_input(self, X, y, reset=not continuing)
        check_classification_targets(y)
        if continuing:
            labels = np.unique(y)
            new = labels[~np.isin(labels, self.classes_)]
            if new.size:
                raise ValueError(
                    f"warm_start=True continues a network trained on the classes "
                    f"{self.classes_.tolist()}; y holds new label(s) {new.tolist()}. Set "
                    "warm_start=False to train a network on every class"
                )
            y_encoded = np.searchsorted(self.classes_, y)
        else:
            self.classes_, y_encoded = np.unique(y, return_inverse=True)
        return self._fit_net(X, y_encoded.astype(np.int64), len(self.classes_), classifier=True)

    def predict_proba(self, X):
        """Class probabilities, shape (n_samples, n_classes), columns in ``classes_`` order."""
        check_is_fitted(self)
        X = validate_input(self, X, reset=False)
        return self._proba_with_net(self.net_, X)

    def score(self, X, y, sample_weight=None):
        """Accuracy on ``(X, y)``; labels never seen in ``fit`` count as errors, with a warning."""
        check_is_fitted(self)
        new = _unseen_labels(y, self.classes_)
        kinds = {_label_kind(v) for v in new}
        if new and kinds != {_label_kind(v) for v in self.classes_.tolist()}:
            raise ValueError(
                f"y holds {' and '.join(sorted(kinds))} labels such as {new[:3]}, but the "
                f"classifier was trained on {_label_kind(self.classes_.tolist()[0])} labels "
                f"(classes_ = {self.classes_.tolist()[:10]})"
            )
        if new:
            warnings.warn(
                f"y holds {len(new)} label(s) never seen in fit, such as {new[:5]}; they count "
                f"as errors (classes_ = {self.classes_.tolist()[:10]})", UserWarning, stacklevel=2)
        return super().score(X, y, sample_weight=sample_weight)

    def predict(self, X):
        """Predicted labels, shape (n_samples,)."""
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]

    def _proba_with_net(self, net, X):
        proba = np.asarray(self._forward_net(net, X), dtype=np.float64)
        return proba / proba.sum(axis=1, keepdims=True)

    def _score_with_net(self, net, X, y):
        X = validate_input(self, X, reset=False)
        labels = self.classes_[np.argmax(self._proba_with_net(net, X), axis=1)]
        return accuracy_score(np.asarray(y), labels)


class HybridRegressor(RegressorMixin, _BaseHybrid):
    __doc__ = f"""Regressor: a neural network with a black-box layer, trained from forward queries.

    Like :class:`HybridClassifier`, with a mean-squared-error loss. The
    targets are standardised for training (per column) and predictions are
    mapped back, so targets of any scale train at the default learning
    rates. 1-D and 2-D targets are supported: predictions have the shape
    ``y`` had.

    Parameters
    ----------{_SHARED_PARAMETERS}

    Attributes
    ----------
    n_outputs_ : int
        Number of targets.{_SHARED_ATTRIBUTES}

    See Also
    --------
    HybridClassifier : the same for classification.

    Notes
    -----{_NOTES}

    Examples
    --------
    >>> import numpy as np
    >>> from skhybrid import HybridRegressor
    >>> X = np.random.RandomState(0).normal(size=(40, 3))
    >>> reg = HybridRegressor(black_box="slm", hidden_units=8, rank=2, max_epochs=5,
    ...                       random_state=0).fit(X, X.sum(axis=1))
    >>> reg.predict(X[:3]).shape
    (3,)
    """

    _net_class = HybridNetRegressor
    _criterion = nn.MSELoss

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def fit(self, X, y):
        """Train the network on ``(X, y)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_targets)

        Returns
        -------
        self : HybridRegressor
        """
        validate_params(self)
        continuing = self._continues()
        check_regression_targets(self, y)
        X, y = validate_input(self, X, y, reset=not continuing, multi_output=True,
                              y_numeric=True)
        y = np.asarray(y, dtype=np.float64)
        Y = y.reshape(len(y), -1)
        if continuing:
            # The network keeps the target scaling it was trained with.
            if Y.shape[1] != self.n_outputs_:
                raise ValueError(
                    f"warm_start=True continues a network with {self.n_outputs_} output(s); "
                    f"y has {Y.shape[1]}"
                )
        else:
            self._y_1d = y.ndim == 1
            self.n_outputs_ = Y.shape[1]
            self._y_mean = Y.mean(axis=0)
            scale = Y.std(axis=0)
            self._y_scale = np.where(scale > 0, scale, 1.0)
        Y = ((Y - self._y_mean) / self._y_scale).astype(np.float32)
        return self._fit_net(X, Y, self.n_outputs_, classifier=False)

    def predict(self, X):
        """Predicted targets, shape (n_samples,) or (n_samples, n_targets) as ``y`` was."""
        check_is_fitted(self)
        X = validate_input(self, X, reset=False)
        return self._predict_with_net(self.net_, X)

    def _predict_with_net(self, net, X):
        Y = np.asarray(self._forward_net(net, X), dtype=np.float64).reshape(len(X), -1)
        Y = Y * self._y_scale + self._y_mean
        return Y.ravel() if self._y_1d else Y

    def _score_with_net(self, net, X, y):
        X = validate_input(self, X, reset=False)
        return r2_score(np.asarray(y, dtype=np.float64), self._predict_with_net(net, X))


# ------------------------------------------------------------------ helpers
#: Updates between surrogate error checks on a drifting device (``monitor_every``).
DRIFT_MONITOR_EVERY = 10


class _EstimatorLayerFactory(LayerFactory):
    """:class:`~skhybrid.modules.LayerFactory` with the estimators' defaults for real devices.

    Unless ``layer_options`` says otherwise, a layer on a drifting
    device with a randomised surrogate update checks its surrogate every
    :data:`DRIFT_MONITOR_EVERY` updates and rebuilds it when drift has made
    it stale.
    """

    def __call__(self, d_in, d_out):
        layer = super().__call__(d_in, d_out)
        if isinstance(layer, BlackBoxLayer):
            options = self.layer_options or {}
            imp = layer.black_box.imperfections
            if "monitor_every" not in options and imp.drift:
                layer.monitor_every = DRIFT_MONITOR_EVERY
        return layer


#: The parameters that shape the network; a warm start must not change them.
_NETWORK_PARAMETERS = ("black_box", "black_box_options", "rank", "zo_samples",
                       "surrogate_samples", "gradient", "hidden_units", "architecture",
                       "module", "layer_options", "device")


def _same_value(a, b):
    if a is b:
        return True
    if isinstance(a, BlackBox) or isinstance(b, BlackBox):
        # A black box loaded from a file is a new object: compare what it is.
        return (type(a) is type(b) and repr(a) == repr(b) and a.n_params == b.n_params
                and torch.equal(a.params0, b.params0))
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 - values without a plain equality
        return False


def _label_kind(value):
    return "text" if isinstance(value, (str, bytes)) else "numeric"


def _unseen_labels(y, classes):
    """The distinct labels of ``y`` that are not in ``classes`` (compared as Python values)."""
    try:
        seen = set(np.asarray(classes).tolist())
        return [v for v in np.unique(np.asarray(y).ravel()).tolist() if v not in seen]
    except TypeError:  # unsortable mixed labels: let the scorer decide
        return []


def _set_learning_rates(net, lr, black_box_lr):
    """Set the Adam groups' rates in place, keeping their moments (a warm start)."""
    on_device = {id(p) for layer in black_box_layers(net.module_)
                 for p in layer.black_box_parameters()}
    for group in net.optimizer_.param_groups:
        device = any(id(p) in on_device for p in group["params"])
        group["lr"] = black_box_lr if device else lr
    net.lr, net.black_box_lr = lr, black_box_lr


def _count_faults(module):
    """Device faults of every black box in ``module``, summed by kind (``FAULT_KINDS``)."""
    total = dict.fromkeys(FAULT_KINDS, 0)
    for box in _unique_black_boxes(module):
        for kind, n in getattr(box, "n_faults", {}).items():
            total[kind] = total.get(kind, 0) + int(n)
    return total


class _forked_torch_rng:
    """Seed torch's CPU generator inside ``torch.random.fork_rng``: the global state survives.

    With ``state`` (a state from an earlier fit's ``final_state``) the CPU
    generator continues from there instead of being seeded, so a warm start
    draws what the uninterrupted run would. ``final_state`` holds the CPU
    generator's state at exit. On a CUDA compute device the current device's
    generator is forked and seeded too, so dropout there is reproducible as
    well.
    """

    def __init__(self, device, seed=0, state=None):
        self.seed = int(seed)
        self.state = state
        self.final_state = None
        dev = torch.device(device)
        self.cuda = dev.type == "cuda" and torch.cuda.is_available()
        self.devices = [dev.index if dev.index is not None else torch.cuda.current_device()] \
            if self.cuda else []

    def __enter__(self):
        self._fork = torch.random.fork_rng(devices=self.devices)
        self._fork.__enter__()
        if self.state is not None:
            torch.set_rng_state(self.state)
        else:
            torch.default_generator.manual_seed(self.seed)
        if self.cuda:
            with torch.cuda.device(self.devices[0]):
                torch.cuda.manual_seed(self.seed)
        return self

    def __exit__(self, *exc):
        self.final_state = torch.get_rng_state()
        return self._fork.__exit__(*exc)
