"""Microring resonator weight bank: one all-pass ring per matrix entry."""

import math
import numbers

import numpy as np
import torch

from ._base import BlackBox

__all__ = ["MicroringBank", "ring_transmission"]


def ring_transmission(phi, a, r):
    """Through-port amplitude transmission of an all-pass microring.

    Parameters
    ----------
    phi : tensor or array-like
        Round-trip phase(s) in radians.
    a : float
        Single-pass amplitude transmission (loss), ``0 < a <= 1``.
    r : float
        Self-coupling coefficient, ``0 < r < 1``.

    Returns
    -------
    t : tensor or ndarray of the shape of ``phi``
        ``t(phi) = sqrt((a^2 + r^2 - 2 a r cos phi) / (1 + a^2 r^2 - 2 a r cos phi))``,
        a torch tensor when ``phi`` is one (differentiable), else an ndarray.

    Notes
    -----
    ``t`` is smallest on resonance (``phi = 0 mod 2 pi``), where it equals
    ``|a - r| / (1 - a r)``, and largest half-way between resonances, where it
    equals ``(a + r) / (1 + a r)``. At critical coupling (``a == r``) the
    minimum is 0 and the gradient of the square root is undefined exactly on
    resonance.

    Examples
    --------
    >>> import numpy as np
    >>> round(float(ring_transmission(np.pi, 0.8, 0.9)), 4)
    0.9884
    """
    cos = torch.cos(phi) if torch.is_tensor(phi) else np.cos(np.asarray(phi, dtype=np.float64))
    two_ar_cos = 2 * a * r * cos
    ratio = (a * a + r * r - two_ar_cos) / (1 + (a * r) ** 2 - two_ar_cos)
    return torch.sqrt(ratio) if torch.is_tensor(ratio) else np.sqrt(ratio)


class MicroringBank(BlackBox):
    """A bank of microring resonators, ``A_ij = 2 t(phi_ij) - 1``.

    Parameters
    ----------
    d_in, d_out : int
        Input and output widths.
    a : float, default=0.8
        Single-pass amplitude transmission of each ring (its loss), in (0, 1].
    r : float, default=0.9
        Self-coupling coefficient of each ring, in (0, 1).
    imperfections : Imperfections or dict or None, default=None
        See :class:`~skhybrid.black_boxes.Imperfections`.
    random_state : int or None, default=None
        Seeds the initial phases and the imperfection draws.

    Attributes
    ----------
    n_params : int
        ``d_out * d_in``: one round-trip phase per ring, row-major
        (``params[i * d_in + j]`` tunes ``A_ij``).

    See Also
    --------
    ring_transmission : the transmission ``t(phi)`` of one ring.

    Notes
    -----
    Each weight is the through-port transmission ``t`` of one ring, mapped
    to ``2 t - 1``; ``t`` is given by :func:`ring_transmission`. With the
    default ``a = 0.8`` and ``r = 0.9``, ``t`` lies in ``[0.357, 0.988]``, so
    the weights lie in ``[-0.286, 0.977]``: asymmetric and mostly positive.
    The phases start in ``U(0.01, pi/4)``, which puts the weights in
    ``[-0.283, 0.858]``, on the steep flank of the resonance. There is no
    ``1/sqrt(d_in)`` normalisation, so the output scale grows with
    ``d_in``; a learnable output scale or a normalisation layer downstream
    absorbs it.

    Examples
    --------
    >>> from skhybrid.black_boxes import MicroringBank
    >>> box = MicroringBank(4, 3, random_state=0)
    >>> box.n_params
    12
    >>> bool((box.matrix() > -0.29).all() and (box.matrix() < 0.98).all())
    True
    """

    param_range = (0.0, 2 * math.pi)
    param_period = 2 * math.pi

    def __init__(self, d_in, d_out, *, a=0.8, r=0.9, imperfections=None, random_state=None):
        # Stored before BlackBox.__init__, which draws the initial phases.
        self.a = _check_real("a", a, low=0.0, high=1.0, high_inclusive=True)
        self.r = _check_real("r", r, low=0.0, high=1.0, high_inclusive=False)
        super().__init__(d_in, d_out, imperfections=imperfections, random_state=random_state)

    def __repr__(self):
        return f"{super().__repr__()[:-1]}, a={self.a!r}, r={self.r!r})"

    def _initial_params(self, generator):
        u = torch.rand(self.d_out * self.d_in, generator=generator, dtype=torch.float64)
        return 0.01 + (math.pi / 4 - 0.01) * u

    def _forward(self, X, params):
        t = ring_transmission(params.reshape(-1, self.d_out, self.d_in), self.a, self.r)
        return X @ (2 * t - 1).transpose(-1, -2)


def _check_real(name, value, *, low, high, high_inclusive):
    interval = f"({low:g}, {high:g}{']' if high_inclusive else ')'}"
    ok = isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
    if ok:
        value = float(value)
        ok = low < value < high or (high_inclusive and value == high)
    if not ok:
        raise ValueError(f"{name} must be a float in {interval}; got {value!r}")
    return value
