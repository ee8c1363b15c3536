"""The networks the estimators build: a black-box layer between digital layers.

Two default architectures are offered (see :data:`ARCHITECTURES`):

``"hidden"``
    ``Standardize -> Linear(n_features, h) -> tanh -> black box (h, h) -> tanh
    -> Linear(h, n_outputs)``. The black box is a hidden layer, fed bounded
    activations.
``"front"``
    ``Standardize -> tanh -> black box (n_features, h) -> tanh ->
    Linear(h, n_outputs)``. The black box is the first layer, fed the scaled
    features as an optical front end is, followed by a small digital readout.
    Here the device carries real capacity, so training it matters.

The activations around the black box are ``tanh``: devices may start at or
near ``A = 0`` (the spatial light modulator's phases start at ``pi/2``), and
an activation that is flat at 0 (a ReLU) right after the black box stalls
training. ``tanh`` has slope 1 there and bounds what the next device sees.

Every network takes a ``make_layer(d_in, d_out)`` callable that builds its
black-box layer; :class:`LayerFactory` is the one the estimators use, and it
builds an ordinary ``nn.Linear`` for ``black_box="digital"`` (the digital
twin of the same network).
"""

import copy
import inspect

import numpy as np
import torch
from torch import nn

from .black_boxes import BlackBox, make_black_box
from .layers import BlackBoxLayer

__all__ = [
    "ARCHITECTURES",
    "DIGITAL",
    "FrontNetwork",
    "HiddenNetwork",
    "LayerFactory",
    "Standardize",
    "build_network",
    "instantiate_module",
]

#: The special ``black_box`` value that builds an ordinary ``nn.Linear`` instead.
DIGITAL = "digital"


class Standardize(nn.Module):
    """``(x - mean) / scale`` with ``mean`` and ``scale`` stored as buffers.

    The buffers start at 0 and 1 (the identity). :meth:`fit` sets them from
    training data; the estimators call it on every ``Standardize`` inside
    the network before training, so a user's own module can contain one too.

    Parameters
    ----------
    n_features : int
        Width of the inputs.
    """

    def __init__(self, n_features):
        super().__init__()
        self.n_features = int(n_features)
        self.register_buffer("mean", torch.zeros(self.n_features))
        self.register_buffer("scale", torch.ones(self.n_features))

    @torch.no_grad()
    def fit(self, X):
        """Set ``mean`` and ``scale`` from ``X`` of shape (n_samples, n_features).

        Statistics are taken in float64; a constant feature keeps scale 1.
        """
        X = np.asarray(X, dtype=np.float64).reshape(-1, self.n_features)
        mean = X.mean(axis=0)
        scale = X.std(axis=0)
        scale[~(scale > 1e-12 * np.maximum(1.0, np.abs(mean)))] = 1.0
        self.mean.copy_(torch.as_tensor(mean, dtype=self.mean.dtype))
        self.scale.copy_(torch.as_tensor(scale, dtype=self.scale.dtype))
        return self

    def forward(self, x):
        return (x - self.mean) / self.scale

    def extra_repr(self):
        return f"n_features={self.n_features}"


class HiddenNetwork(nn.Module):
    """``Standardize -> Linear -> tanh -> black-box layer -> tanh -> Linear``.

    Parameters
    ----------
    n_features : int
        Input width.
    n_outputs : int
        Output width (classes, or regression targets).
    make_layer : callable
        ``make_layer(d_in, d_out)`` returns the black-box layer (a
        :class:`~skhybrid.BlackBoxLayer`, or any module mapping ``d_in`` to
        ``d_out``).
    hidden_units : int, default=64
        Width ``h`` of the black-box layer, ``(h, h)``.
    """

    def __init__(self, n_features, n_outputs, make_layer, hidden_units=64):
        super().__init__()
        self.standardize = Standardize(n_features)
        self.input_layer = nn.Linear(n_features, hidden_units)
        self.black_box_layer = make_layer(hidden_units, hidden_units)
        self.output_layer = nn.Linear(hidden_units, n_outputs)

    def forward(self, x):
        h = torch.tanh(self.input_layer(self.standardize(x)))
        h = torch.tanh(self.black_box_layer(h))
        return self.output_layer(h)


class FrontNetwork(nn.Module):
    """``Standardize -> tanh -> black-box layer -> tanh -> Linear``: an optical front end.

    The features are standardised with the training statistics, then
    squashed by ``tanh`` into (-1, 1), the range of a typical input DAC, so
    that even unscaled inputs give bounded device inputs.

    Parameters
    ----------
    n_features : int
        Input width, which is the black box's ``d_in``.
    n_outputs : int
        Output width.
    make_layer : callable
        ``make_layer(d_in, d_out)`` returns the black-box layer.
    hidden_units : int, default=64
        The black box's output width, ``(n_features, h)``.
    """

    def __init__(self, n_features, n_outputs, make_layer, hidden_units=64):
        super().__init__()
        self.standardize = Standardize(n_features)
        self.black_box_layer = make_layer(n_features, hidden_units)
        self.output_layer = nn.Linear(hidden_units, n_outputs)

    def forward(self, x):
        h = torch.tanh(self.black_box_layer(torch.tanh(self.standardize(x))))
        return self.output_layer(h)


#: Architecture name -> network class.
ARCHITECTURES = {"hidden": HiddenNetwork, "front": FrontNetwork}


def build_network(architecture, n_features, n_outputs, make_layer, hidden_units=64):
    """Build a default network by name (``"hidden"`` or ``"front"``)."""
    if architecture not in ARCHITECTURES:
        raise ValueError(
            f"architecture must be one of {sorted(ARCHITECTURES)}; got {architecture!r}"
        )
    return ARCHITECTURES[architecture](n_features, n_outputs, make_layer, hidden_units)


class LayerFactory:
    """Builds black-box layers with one set of settings: ``factory(d_in, d_out)``.

    Each call builds a fresh device: a named one through
    :func:`~skhybrid.make_black_box`, or a :meth:`~skhybrid.BlackBox.clone`
    of a given instance, and wraps it in a :class:`~skhybrid.BlackBoxLayer`.
    With ``black_box="digital"`` it builds ``nn.Linear(d_in, d_out,
    bias=False)`` instead: the same map ``y = W x`` with a digital weight
    trained by backpropagation, the twin the black box is compared with.

    A class instance rather than a closure, so that it pickles.

    Parameters
    ----------
    black_box : str or BlackBox, default="mzi"
        A name in ``BLACK_BOXES``, ``"digital"``, or a device to clone.
    black_box_options : dict or None, default=None
        Options for a named device (see :func:`~skhybrid.make_black_box`).
    rank, zo_samples, surrogate_samples, gradient
        Passed to :class:`~skhybrid.BlackBoxLayer`. ``rank`` is clipped to
        ``min(d_in, d_out)``.
    layer_options : dict or None, default=None
        Further keyword arguments of :class:`~skhybrid.BlackBoxLayer`
        (``zo_scheme``, ``mu``, ``rebuild_every``, ...).
    random_state : int or None, default=None
        Seeds the devices (initial parameters, noise) and the layers; the
        k-th layer built gets the k-th seed of an independent stream.

    Attributes
    ----------
    n_built : int
        How many layers have been built.
    """

    def __init__(self, black_box="mzi", black_box_options=None, rank=8, zo_samples=16,
                 surrogate_samples="auto", gradient="astralora", layer_options=None,
                 random_state=None):
        self.black_box = black_box
        self.black_box_options = black_box_options
        self.rank = rank
        self.zo_samples = zo_samples
        self.surrogate_samples = surrogate_samples
        self.gradient = gradient
        self.layer_options = layer_options
        self.random_state = random_state
        self.n_built = 0

    @property
    def digital(self):
        """Whether the factory builds ordinary ``nn.Linear`` layers."""
        return isinstance(self.black_box, str) and self.black_box == DIGITAL

    def _next_seeds(self):
        root = np.random.SeedSequence([0 if self.random_state is None else self.random_state,
                                       self.n_built])
        self.n_built += 1
        box_seed, layer_seed = (int(s) % (2**31 - 2) for s in root.generate_state(2))
        return box_seed, layer_seed

    def make_black_box(self, d_in, d_out, random_state=None):
        """The device of one layer, ``(d_in, d_out)``."""
        if isinstance(self.black_box, BlackBox):
            box = self.black_box.clone()
            if (box.d_in, box.d_out) != (d_in, d_out):
                raise ValueError(
                    f"the given black box maps {box.d_in} -> {box.d_out}, but the network "
                    f"needs {d_in} -> {d_out} at this layer; build it with "
                    f"d_in={d_in}, d_out={d_out}, or pass its name instead"
                )
            return box
        options = dict(self.black_box_options or {})
        options.setdefault("random_state", random_state)
        return make_black_box(self.black_box, d_in, d_out, **options)

    def __call__(self, d_in, d_out):
        box_seed, layer_seed = self._next_seeds()
        if self.digital:
            return nn.Linear(d_in, d_out, bias=False)
        box = self.make_black_box(d_in, d_out, random_state=box_seed)
        rank = min(int(self.rank), d_in, d_out)
        return BlackBoxLayer(box, rank=rank, zo_samples=int(self.zo_samples),
                             surrogate_samples=self.surrogate_samples, gradient=self.gradient,
                             random_state=layer_seed, **(self.layer_options or {}))

    def __repr__(self):
        return f"LayerFactory(black_box={self.black_box!r}, rank={self.rank!r}, ...)"


def instantiate_module(module, n_features, n_outputs, make_layer):
    """A fresh network from the estimator's ``module`` parameter.

    An ``nn.Module`` instance is deep-copied (every fit starts from its
    current weights, and the original is left untouched) and its devices'
    query counters are reset. A class is called with those of the keyword
    arguments ``n_features``, ``n_outputs`` and ``make_layer`` its
    constructor accepts.
    """
    if isinstance(module, nn.Module):
        module = copy.deepcopy(module)
        for m in module.modules():
            if isinstance(m, BlackBoxLayer):
                m.black_box.reset_counts()
        return module
    offered = {"n_features": n_features, "n_outputs": n_outputs, "make_layer": make_layer}
    params = inspect.signature(module).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        kwargs = offered
    else:
        kwargs = {k: v for k, v in offered.items() if k in params}
    return module(**kwargs)

