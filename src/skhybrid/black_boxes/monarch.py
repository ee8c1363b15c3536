"""Two stacked phase masks in a Monarch (block butterfly) factorisation."""

import math

import torch
import torch.nn.functional as F

from ._base import BlackBox, _check_width

__all__ = ["MAX_BLOCK_ASPECT", "MonarchPhaseMasks", "block_sizes"]

#: Largest ratio ``s / b`` that :func:`block_sizes` accepts.
MAX_BLOCK_ASPECT = 4


def block_sizes(n):
    """Number and size of blocks ``(b, s)`` to fold a width ``n`` into.

    The rule: among all pairs of positive ints with ``b * s >= n`` and
    ``b <= s <= MAX_BLOCK_ASPECT * b`` (= 4 b), take the one with the
    smallest ``b * s`` (the least zero-padding), then the smallest ``s - b``
    (the most balanced). The aspect bound keeps a prime ``n`` from folding
    into a single block of size ``n``; the padding it costs is below
    ``sqrt(n)``, because ``b = ceil(sqrt(n))``, ``s = ceil(n / b)`` always
    qualifies.

    Parameters
    ----------
    n : int
        The width, at least 1.

    Returns
    -------
    b, s : int
        Number of blocks ``b`` and block size ``s``, ``b <= s``.

    Examples
    --------
    >>> [block_sizes(n) for n in (1, 7, 10, 12, 16, 64)]
    [(1, 1), (2, 4), (2, 5), (3, 4), (4, 4), (8, 8)]
    """
    n = _check_width("n", n)
    p = n
    while True:
        # The largest divisor b <= sqrt(p) gives p's most balanced pair; if that
        # pair is too elongated, every other pair of p is too.
        b = math.isqrt(p)
        while p % b:
            b -= 1
        s = p // b
        if s <= MAX_BLOCK_ASPECT * b:
            return b, s
        p += 1


class MonarchPhaseMasks(BlackBox):
    """Two stacked phase masks, a Monarch-structured ``d_out x d_in`` matrix.

    Parameters
    ----------
    d_in, d_out : int
        Input and output widths.
    imperfections : Imperfections or dict or None, default=None
        See :class:`~skhybrid.black_boxes.Imperfections`.
    random_state : int or None, default=None
        Seeds the initial phases and the imperfection draws.

    Attributes
    ----------
    b_in, s_in : int
        Number and size of the input blocks, ``block_sizes(d_in)``.
    b_out, s_out : int
        Number and size of the output blocks, ``block_sizes(d_out)``.
    n_params : int
        ``b_in * b_out * (s_in + s_out)``: ``theta1`` of shape
        ``(b_out, b_in, s_in)`` then ``theta2`` of shape ``(s_out, b_out, b_in)``,
        each flattened row-major.

    See Also
    --------
    block_sizes : how the widths are folded into blocks.

    Notes
    -----
    The input is zero-padded to ``b_in * s_in`` and reshaped to
    ``x[i, j]`` (block ``i``, entry ``j``). The output entry ``(q, k)`` is::

        y[q, k] = 1/sqrt(b_in s_in) * sum_{i, j} cos(theta2[q, k, i] + theta1[k, i, j]) x[i, j]

    the real part of (unit-modulus mask 2) times (unit-modulus mask 1). It is
    flattened as ``q * b_out + k`` and cropped to ``d_out``. Since
    ``cos(a + b) = cos a cos b - sin a sin b``, each query costs two
    block-diagonal stages, ``O(n_params)`` per vector, not a dense matrix.
    Unlike the reference implementation, which pads each width to a square
    of equal powers of two (512 -> 1024, 192 -> 256), the blocks here are
    the smallest that fit (:func:`block_sizes`).

    The first mask starts in ``U(pi/2 - 0.1, pi/2 + 0.1)`` and the second in
    ``U(-0.1, 0.1)``, so each entry sees a phase sum near ``pi/2``: like
    :class:`SpatialLightModulator`, the device starts near ``A = 0`` where
    the slope of ``cos`` is largest. (The reference starts both masks at
    ``pi/2``; their sum near ``pi`` puts every entry at the flat bottom of
    ``cos``, a rank-one ``A = -1/sqrt(b_in s_in)`` with gradients of at
    most ``sin 0.2`` of their largest.)

    Examples
    --------
    >>> from skhybrid.black_boxes import MonarchPhaseMasks
    >>> box = MonarchPhaseMasks(12, 10, random_state=0)
    >>> (box.b_in, box.s_in, box.b_out, box.s_out, box.n_params)
    (3, 4, 2, 5, 54)
    """

    param_range = (0.0, 2 * math.pi)
    param_period = 2 * math.pi

    def __init__(self, d_in, d_out, *, imperfections=None, random_state=None):
        # Stored before BlackBox.__init__, which draws the initial phases.
        self.b_in, self.s_in = block_sizes(_check_width("d_in", d_in))
        self.b_out, self.s_out = block_sizes(_check_width("d_out", d_out))
        super().__init__(d_in, d_out, imperfections=imperfections, random_state=random_state)

    def _initial_params(self, generator):
        n1 = self.b_out * self.b_in * self.s_in
        n2 = self.s_out * self.b_out * self.b_in
        u = torch.rand(n1 + n2, generator=generator, dtype=torch.float64)
        offset = torch.cat([torch.full((n1,), math.pi / 2, dtype=torch.float64),
                            torch.zeros(n2, dtype=torch.float64)])
        return offset + 0.2 * (u - 0.5)

    def _forward(self, X, params):
        b_in, s_in, b_out, s_out = self.b_in, self.s_in, self.b_out, self.s_out
        k = params.shape[0]
        n1 = b_out * b_in * s_in
        theta1 = params[:, :n1].reshape(k, b_out, b_in, s_in)
        theta2 = params[:, n1:].reshape(k, s_out, b_out, b_in)
        x = F.pad(X, (0, b_in * s_in - self.d_in))
        x = x.reshape(*X.shape[:-1], b_in, s_in)
        # Stage 1, per (output block k, input block i): the cos and sin parts.
        W1 = torch.stack([torch.cos(theta1), torch.sin(theta1)], dim=1)
        spec = "nij,kcbij->kncbi" if X.dim() == 2 else "knij,kcbij->kncbi"
        z = torch.einsum(spec, x, W1)
        # Stage 2: cos(t2 + t1) = cos t2 cos t1 - sin t2 sin t1.
        W2 = torch.stack([torch.cos(theta2), -torch.sin(theta2)], dim=1)
        y = torch.einsum("kcqbi,kncbi->knqb", W2, z)
        y = y.reshape(k, X.shape[-2], s_out * b_out)[..., : self.d_out]
        return y / math.sqrt(b_in * s_in)

