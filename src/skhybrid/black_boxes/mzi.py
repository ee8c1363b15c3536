"""Rectangular (Clements-type) mesh of Mach-Zehnder interferometer cells."""

import math

import torch
import torch.nn.functional as F

from ._base import BlackBox, _check_width

__all__ = ["CELLS", "MZIMesh", "classical_mzi_cell", "mesh_unitary", "three_mzi_cell"]

#: The 2x2 cells a mesh can be built from.
CELLS = ("3mzi", "classical")


def three_mzi_cell(theta, phi):
    """Transfer matrix of the "3-MZI" cell, batched over phases.

    Parameters
    ----------
    theta, phi : tensor of broadcastable shapes
        The cell's two phases, in radians.

    Returns
    -------
    T : complex128 tensor of shape (..., 2, 2)
        With ``psi1 = (theta - phi) / 2`` and ``psi2 = (theta + phi) / 2``::

            T = exp(i psi2) / sqrt(2) * [[sin psi1 + i sin psi2, -cos psi1 + i cos psi2],
                                         [cos psi1 + i cos psi2,  sin psi1 - i sin psi2]]

        which is unitary for every ``theta`` and ``phi``.

    See Also
    --------
    classical_mzi_cell : the standard two-phase MZI cell.

    Examples
    --------
    >>> import torch
    >>> T = three_mzi_cell(torch.tensor(0.3), torch.tensor(1.1))
    >>> torch.allclose(T @ T.conj().T, torch.eye(2, dtype=T.dtype))
    True
    """
    theta, phi = _as_phases(theta, phi)
    psi1 = (theta - phi) / 2
    psi2 = (theta + phi) / 2
    s1, c1, s2, c2 = torch.sin(psi1), torch.cos(psi1), torch.sin(psi2), torch.cos(psi2)
    real = torch.stack([s1, -c1, c1, s1], dim=-1)
    imag = torch.stack([s2, c2, c2, -s2], dim=-1)
    phase = torch.complex(c2, s2)[..., None] / math.sqrt(2)  # exp(i psi2) / sqrt(2)
    return (torch.complex(real, imag) * phase).reshape(*psi2.shape, 2, 2)


def classical_mzi_cell(phi0, phi1):
    """Transfer matrix of the standard two-phase MZI cell, batched over phases.

    Parameters
    ----------
    phi0, phi1 : tensor of broadcastable shapes
        External (``phi0``) and internal (``phi1``) phase, in radians.

    Returns
    -------
    T : complex128 tensor of shape (..., 2, 2)
        ``[[exp(i phi0) sin phi1, exp(i phi0) cos phi1], [cos phi1, -sin phi1]]``,
        which is unitary for every ``phi0`` and ``phi1``.

    See Also
    --------
    three_mzi_cell : the "3-MZI" cell.
    """
    phi0, phi1 = _as_phases(phi0, phi1)
    e0 = torch.polar(torch.ones_like(phi0), phi0)
    s, c = torch.sin(phi1), torch.cos(phi1)
    zero = torch.zeros_like(s)
    entries = torch.stack([e0 * s, e0 * c, torch.complex(c, zero), torch.complex(-s, zero)], dim=-1)
    return entries.reshape(*s.shape, 2, 2)


_CELL_FUNCTIONS = {"3mzi": three_mzi_cell, "classical": classical_mzi_cell}


def mesh_unitary(params, n_modes, cell="3mzi"):
    """The unitaries of ``k`` rectangular MZI meshes, built in one vectorised pass.

    Parameters
    ----------
    params : tensor of shape (k, n_modes**2 - n_modes) or (n_modes**2 - n_modes,)
        Phases, laid out as described in :class:`MZIMesh`.
    n_modes : int
        Number of modes ``N``; even and at least 2.
    cell : {"3mzi", "classical"}, default="3mzi"
        The 2x2 cell; see :func:`three_mzi_cell` and :func:`classical_mzi_cell`.

    Returns
    -------
    U : complex128 tensor of shape (k, N, N), or (N, N) for 1-D ``params``
        ``U = L_{N-1} ... L_1 L_0``, layer ``L_0`` applied first. Differentiable
        with respect to ``params``, on ``params``' torch device.

    Examples
    --------
    >>> import torch
    >>> U = mesh_unitary(torch.rand(3, 12, dtype=torch.float64), 4)
    >>> U.shape
    torch.Size([3, 4, 4])
    >>> torch.allclose(U @ U.mH, torch.eye(4, dtype=U.dtype).expand(3, 4, 4))
    True
    """
    if isinstance(n_modes, bool) or not isinstance(n_modes, int) or n_modes < 2 or n_modes % 2:
        raise ValueError(f"n_modes must be an even int >= 2; got {n_modes!r}")
    _check_cell(cell)
    params = torch.as_tensor(params)
    single = params.dim() == 1
    P = params.reshape(1, -1) if single else params
    n_params = n_modes * n_modes - n_modes
    if P.dim() != 2 or P.shape[1] != n_params:
        raise ValueError(
            f"params must have shape (k, {n_params}) or ({n_params},) for n_modes={n_modes}; "
            f"got {tuple(params.shape)}"
        )
    T_even, T_odd = _cell_matrices(P.to(torch.float64), n_modes, cell)
    eye = torch.eye(n_modes, dtype=torch.complex128, device=P.device)
    U = _propagate(eye.expand(P.shape[0], -1, -1), T_even, T_odd)
    return U[0] if single else U


class MZIMesh(BlackBox):
    """A rectangular mesh of MZI cells read out as ``A = Re(U)[:d_out, :d_in]``.

    Parameters
    ----------
    d_in, d_out : int
        Input and output widths.
    cell : {"3mzi", "classical"}, default="3mzi"
        The 2x2 cell of the mesh: the "3-MZI" cell (:func:`three_mzi_cell`)
        or the standard two-phase cell (:func:`classical_mzi_cell`).
    imperfections : Imperfections or dict or None, default=None
        See :class:`~skhybrid.black_boxes.Imperfections`.
    random_state : int or None, default=None
        Seeds the initial phases and the imperfection draws.

    Attributes
    ----------
    n_modes : int
        ``N = max(d_in, d_out)`` rounded up to even, at least 2.
    n_params : int
        ``N**2 - N``: two phases for each of the ``N (N - 1) / 2`` cells.

    See Also
    --------
    mesh_unitary : the unitaries of a batch of meshes.

    Notes
    -----
    The mesh has ``N`` layers, ``U = L_{N-1} ... L_1 L_0``. Even layers hold
    ``N/2`` cells on modes ``(0, 1), (2, 3), ...``; odd layers hold
    ``N/2 - 1`` cells on ``(1, 2), (3, 4), ...``. The parameter vector is
    laid out as follows (``h = N/2``):

    * ``params[:N*h].reshape(h, h, 2)[j, c, p]`` is phase ``p`` of the cell on
      modes ``(2c, 2c+1)`` in layer ``2j``;
    * ``params[N*h:].reshape(h, h - 1, 2)[j, c, p]`` is phase ``p`` of the cell
      on modes ``(2c+1, 2c+2)`` in layer ``2j+1``;

    where phase 0 is ``theta`` (3-MZI) or ``phi0`` (classical) and phase 1 is
    ``phi`` or ``phi1``. The input is zero-padded to ``N`` and cast to
    complex, the output is the real part of the first ``d_out`` modes, so
    the effective real matrix is ``Re(U)[:d_out, :d_in]``: its singular
    values are at most 1, but it is not orthogonal.

    Each configuration costs ``N`` sequential layer products, ``O(N^3)``; a
    batch of ``k`` configurations is built in one pass over the layers. When
    a query has fewer input vectors than ``d_in``, the inputs themselves are
    sent through the mesh instead of the identity.

    The phases start in ``N(pi/2, 1/N)`` (standard deviation ``1/sqrt(N)``).

    Examples
    --------
    >>> from skhybrid.black_boxes import MZIMesh
    >>> box = MZIMesh(5, 3, random_state=0)
    >>> box.n_modes, box.n_params
    (6, 30)
    """

    param_range = (0.0, 2 * math.pi)
    param_period = 2 * math.pi

    def __init__(self, d_in, d_out, *, cell="3mzi", imperfections=None, random_state=None):
        # Stored before BlackBox.__init__, which draws the initial phases.
        self.cell = _check_cell(cell)
        n = max(_check_width("d_in", d_in), _check_width("d_out", d_out))
        self.n_modes = max(2, n + n % 2)
        super().__init__(d_in, d_out, imperfections=imperfections, random_state=random_state)

    def __repr__(self):
        return f"{super().__repr__()[:-1]}, cell={self.cell!r})"

    def _initial_params(self, generator):
        N = self.n_modes
        z = torch.randn(N * N - N, generator=generator, dtype=torch.float64)
        return math.pi / 2 + z / math.sqrt(N)

    def _forward(self, X, params):
        N, d_in, d_out = self.n_modes, self.d_in, self.d_out
        k, n = params.shape[0], X.shape[-2]
        T_even, T_odd = _cell_matrices(params, N, self.cell)
        if n < d_in:
            # Fewer vectors than columns: propagating the inputs is cheaper than building U.
            Z = F.pad(X, (0, N - d_in)).transpose(-1, -2).to(torch.complex128)
            Z = Z.expand(k, N, n) if Z.dim() == 2 else Z
            return _propagate(Z, T_even, T_odd).real[:, :d_out].transpose(-1, -2)
        eye = torch.eye(N, d_in, dtype=torch.complex128, device=params.device)
        A = _propagate(eye.expand(k, N, d_in), T_even, T_odd).real[:, :d_out]
        return X @ A.transpose(-1, -2)


def _check_cell(cell):
    if not isinstance(cell, str) or cell not in CELLS:
        raise ValueError(f"cell must be one of {CELLS}; got {cell!r}")
    return cell


def _as_phases(*phases):
    phases = [torch.as_tensor(p) for p in phases]
    phases = [p if p.dtype == torch.float64 else p.to(torch.float64) for p in phases]
    return torch.broadcast_tensors(*phases)


def _cell_matrices(P, N, cell):
    """Cell matrices of every layer: (k, N/2, N/2, 2, 2) even, (k, N/2, N/2-1, 2, 2) odd."""
    k, h = P.shape[0], N // 2
    even = P[:, : N * h].reshape(k, h, h, 2)
    odd = P[:, N * h :].reshape(k, h, h - 1, 2)
    fn = _CELL_FUNCTIONS[cell]
    return fn(even[..., 0], even[..., 1]), fn(odd[..., 0], odd[..., 1])


def _propagate(Z, T_even, T_odd):
    """Send the columns of ``Z`` (complex, shape (k, N, c)) through the N mesh layers."""
    k, N, c = Z.shape
    h = N // 2
    # Per layer, the contiguous first and second columns of its cell matrices:
    # the broadcast multiplies below are several times slower on strided operands.
    even = [t.transpose(0, 1).contiguous().unbind(0) for t in (T_even[..., :1], T_even[..., 1:])]
    odd = [t.transpose(0, 1).contiguous().unbind(0) for t in (T_odd[..., :1], T_odd[..., 1:])]
    for j in range(h):
        Z = _apply_cells(Z.reshape(k, h, 2, c), even[0][j], even[1][j]).reshape(k, N, c)
        if h > 1:
            mid = _apply_cells(Z[:, 1 : N - 1].reshape(k, h - 1, 2, c), odd[0][j], odd[1][j])
            Z = torch.cat([Z[:, :1], mid.reshape(k, N - 2, c), Z[:, N - 1 :]], dim=1)
    return Z


def _apply_cells(pairs, T0, T1):
    """Apply 2x2 cells to row pairs.

    ``pairs`` (k, m, 2, c) holds the (top, bottom) rows of ``m`` cells;
    ``T0`` and ``T1`` (k, m, 2, 1) are the cells' first and second columns.
    Two broadcast passes (``T[i, 0] * top + T[i, 1] * bottom`` for both
    outputs ``i`` at once) beat a batched 2x2 matmul, which is slow for
    complex tensors on CPU.
    """
    return torch.addcmul(T0 * pairs[:, :, :1], T1, pairs[:, :, 1:])
