"""skhybrid: train neural networks that contain forward-only black-box layers.

A black box (a photonic device, or any function that can only be run
forward) replaces a linear layer. Its parameters are trained from
zeroth-order estimates; the input gradient passed back to the digital layers
comes from a low-rank surrogate kept up to date by a projector-splitting
integrator that only uses forward queries.
"""

from .black_boxes import BlackBox, BlackBoxError, CallableBlackBox, Imperfections, make_black_box
from .layers import BlackBoxLayer, black_box_layers, seed_layers, update_surrogates
from .surrogate import LowRankSurrogate, psi_step
from .estimators import HybridClassifier, HybridRegressor

__version__ = "0.1.0"

__all__ = [
    "BlackBox",
    "BlackBoxError",
    "BlackBoxLayer",
    "CallableBlackBox",
    "Imperfections",
    "LowRankSurrogate",
    "__version__",
    "black_box_layers",
    "make_black_box",
    "psi_step",
    "seed_layers",
    "update_surrogates",
    "HybridClassifier",
    "HybridRegressor",
]
