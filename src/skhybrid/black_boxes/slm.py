"""Spatial light modulator: a phase-only mask read out by coherent detection."""

import math

import torch

from ._base import BlackBox

__all__ = ["SpatialLightModulator"]


class SpatialLightModulator(BlackBox):
    """Phase-only spatial light modulator, ``A = cos(W) / sqrt(d_in)``.

    Parameters
    ----------
    d_in, d_out : int
        Input and output widths.
    imperfections : Imperfections or dict or None, default=None
        See :class:`~skhybrid.black_boxes.Imperfections`.
    random_state : int or None, default=None
        Seeds the initial phases and the imperfection draws.

    Notes
    -----
    Each pixel ``W_ij`` delays the light by a phase; coherent detection of
    the real part gives ``y_i = sum_j cos(W_ij) x_j / sqrt(d_in)``, so every
    entry lies in ``[-1/sqrt(d_in), 1/sqrt(d_in)]``. The phases start in
    ``U(pi/2 - 0.1, pi/2 + 0.1)``: there ``A`` is close to 0 and the slope
    of ``cos`` is largest.
    """

    param_range = (0.0, 2 * math.pi)
    param_period = 2 * math.pi

    def _initial_params(self, generator):
        u = torch.rand(self.d_out * self.d_in, generator=generator, dtype=torch.float64)
        return math.pi / 2 + 0.2 * (u - 0.5)

    def _forward(self, X, params):
        A = torch.cos(params.reshape(-1, self.d_out, self.d_in)) / math.sqrt(self.d_in)
        return X @ A.transpose(-1, -2)
