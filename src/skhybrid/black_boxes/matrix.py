"""An ideal programmable dense matrix: the reference black box."""

import torch

from ._base import BlackBox, kaiming_uniform_bound

__all__ = ["MatrixBlackBox"]


class MatrixBlackBox(BlackBox):
    """An ideal programmable matrix, ``A = reshape(params, (d_out, d_in))``.

    Parameters
    ----------
    d_in, d_out : int
        Input and output widths.
    imperfections : Imperfections or dict or None, default=None
        See :class:`~skhybrid.black_boxes.Imperfections`.
    random_state : int or None, default=None
        Seeds the initial parameters and the imperfection draws.

    Notes
    -----
    The model is linear in its parameters, so a finite difference is exact
    for any step: ``mu = 1``. The initial matrix is drawn like ``nn.Linear``'s
    default weights, uniform in ``[-1/sqrt(d_in), 1/sqrt(d_in)]``.
    """

    mu = 1.0

    @property
    def param_range(self):
        # Wide enough for the trained weights of a normalised layer.
        bound = 4 * kaiming_uniform_bound(self.d_in)
        return (-bound, bound)

    def _initial_params(self, generator):
        bound = kaiming_uniform_bound(self.d_in)
        W = torch.rand(self.d_out, self.d_in, generator=generator, dtype=torch.float64)
        return (2 * W - 1) * bound

    def _forward(self, X, params):
        A = params.reshape(-1, self.d_out, self.d_in)
        return X @ A.transpose(-1, -2)
