"""Low-rank surrogate ``A ~ U S V^T`` of a black box, and its projector-splitting update."""

import numpy as np
import torch
from torch import nn

__all__ = ["LowRankSurrogate", "best_rank_error", "project_probes", "psi_step", "truncated_svd"]


class LowRankSurrogate(nn.Module):
    """Rank-``r`` model ``U S V^T`` of a black box's matrix, used for input gradients.

    ``U`` (d_out x r) and ``V`` (d_in x r) have orthonormal columns; ``S``
    (r x r) is a full matrix (it stops being diagonal after the first
    projector-splitting step). All three are buffers registered at
    construction, so a ``state_dict`` round-trips into a freshly built
    surrogate. They are kept in float64 whatever the network's dtype.

    Parameters
    ----------
    d_out, d_in : int
        Shape of the modelled matrix.
    rank : int
        Rank ``r``, in ``[1, min(d_in, d_out)]``.
    """

    def __init__(self, d_out, d_in, rank):
        super().__init__()
        self.d_out, self.d_in, self.rank = d_out, d_in, rank
        limit = min(d_in, d_out)
        if isinstance(rank, (bool, np.bool_)) or not isinstance(rank, (int, np.integer)) \
                or not 1 <= rank <= limit:
            raise ValueError(
                f"rank must be an int in [1, min(d_in, d_out)] = [1, {limit}]; got {rank!r}"
            )
        self.rank = int(rank)
        self.register_buffer("U", torch.zeros(d_out, rank, dtype=torch.float64))
        self.register_buffer("S", torch.zeros(rank, rank, dtype=torch.float64))
        self.register_buffer("V", torch.zeros(d_in, rank, dtype=torch.float64))

    def matrix(self):
        """The surrogate's matrix ``U S V^T``, shape (d_out, d_in)."""
        return self.U @ self.S @ self.V.T

    def input_gradient(self, G):
        """``G (U S V^T)``: the input gradient for upstream gradients ``G`` (B x d_out)."""
        G64 = G.to(self.U.dtype)
        return (((G64 @ self.U) @ self.S) @ self.V.T).to(G.dtype)

    def set_from_matrix(self, A):
        """Replace the factors by the truncated SVD of ``A`` (d_out x d_in)."""
        U, s, V = truncated_svd(A.to(self.U.dtype), self.rank)
        self.U.copy_(U)
        self.S.copy_(torch.diag(s))
        self.V.copy_(V)

    def psi_update(self, dA_V, Z, dA_Zt):
        """Advance the factors by one projector-splitting step (see :func:`psi_step`).

        Returns
        -------
        bool
            False when the step was rejected (non-finite or rank-deficient
            factors) and the old factors kept.
        """
        U1, S1, V1 = psi_step(self.U, self.S, self.V, dA_V.to(self.U.dtype),
                              Z.to(self.U.dtype), dA_Zt.to(self.U.dtype))
        if not _is_orthonormal(U1) or not _is_orthonormal(V1) or not torch.isfinite(S1).all():
            return False
        self.U.copy_(U1)
        self.S.copy_(S1)
        self.V.copy_(V1)
        return True

    def extra_repr(self):
        return f"d_out={self.d_out}, d_in={self.d_in}, rank={self.rank}"


def truncated_svd(A, rank):
    """Leading ``rank`` singular triplets of ``A``: ``(U, s, V)`` with ``A ~ U diag(s) V^T``."""
    U, s, Vh = torch.linalg.svd(A, full_matrices=False)
    return U[:, :rank], s[:rank], Vh[:rank].T


def best_rank_error(A, rank):
    """Relative Frobenius error of the best rank-``rank`` approximation of ``A``."""
    s = torch.linalg.svdvals(A.to(torch.float64))
    total = torch.linalg.vector_norm(s)
    if total == 0:
        return 0.0
    return float(torch.linalg.vector_norm(s[rank:]) / total)


def psi_step(U0, S0, V0, dA_V0, Z, dA_Zt):
    """One implicit K-S-L projector-splitting step for an increment ``dA``.

    The increment ``dA = A_new - A_old`` is never formed: it is seen only
    through probes, ``dA V0`` (the K-step, ``f_new(V0^T) - f_old(V0^T)``) and
    ``Z dA^T`` (``f_new(Z) - f_old(Z)`` for random probe rows ``Z``).

    Parameters
    ----------
    U0 : tensor of shape (m, r)
    S0 : tensor of shape (r, r)
    V0 : tensor of shape (n, r)
        Current factors, ``A_old ~ U0 S0 V0^T``.
    dA_V0 : tensor of shape (m, r)
        ``dA V0``.
    Z : tensor of shape (M, n)
        Probe rows orthogonal to ``V0``'s columns with
        ``E[Z^T Z] = M (I - V0 V0^T)``: isotropic probes (Gaussian,
        Rademacher, scaled orthonormal) projected by :func:`project_probes`.
    dA_Zt : tensor of shape (M, m)
        ``Z dA^T``.

    Returns
    -------
    U1, S1, V1 : tensors
        Factors of the updated approximation of ``A_new``.

    Notes
    -----
    K-step: ``K1 = U0 S0 + dA V0 = U1 S~`` (thin QR). S-step:
    ``S^ = S~ - U1^T dA V0``. L-step: ``L1 = V0 S^^T + dA^T U1 = V1 R``,
    ``S1 = R^T``. The transpose product ``dA^T U1``, which a forward-only
    device cannot give, splits into a part in the span of ``V0``, known
    exactly from the K-step probes (``V0 (dA V0)^T U1``), and the rest,
    estimated without bias by ``Z^T (Z dA^T) U1 / M`` with probes confined to
    the complement, so that the part already known adds no variance. With
    exact transpose products the result is the old approximation plus the
    tangent-space projection of ``dA`` (Lubich and Oseledets, 2014).
    """
    M = Z.shape[0]
    U1, S_tilde = _qr_positive(U0 @ S0 + dA_V0)
    S_hat = S_tilde - U1.T @ dA_V0
    dAt_U1 = V0 @ (dA_V0.T @ U1) + Z.T @ (dA_Zt @ U1) / M
    V1, R = _qr_positive(V0 @ S_hat.T + dAt_U1)
    return U1, R.T, V1


def project_probes(Z, V):
    """Remove from probe rows ``Z`` (M x n) their components along ``V``'s columns."""
    return Z - (Z @ V) @ V.T


def _qr_positive(A):
    """Thin QR with a non-negative diagonal in R, so the factors are unique."""
    Q, R = torch.linalg.qr(A)
    signs = torch.sign(torch.diagonal(R))
    signs = torch.where(signs == 0, torch.ones_like(signs), signs)
    return Q * signs, R * signs[:, None]


def _is_orthonormal(Q, tol=1e-6):
    if not torch.isfinite(Q).all():
        return False
    eye = torch.eye(Q.shape[1], dtype=Q.dtype, device=Q.device)
    return bool(torch.linalg.matrix_norm(Q.T @ Q - eye) < tol * Q.shape[1])
