"""Zeroth-order (finite-difference) estimates of a black box's parameter gradient."""

import math

import torch

from .black_boxes import BlackBoxError

__all__ = ["DIRECTIONS", "SCHEMES", "estimate_gradient", "sample_directions", "zo_query_cost"]

#: Direction distributions accepted by :func:`sample_directions`.
DIRECTIONS = ("gaussian", "rademacher", "orthogonal")
#: Difference schemes accepted by :func:`estimate_gradient`.
SCHEMES = ("forward", "central")

# Cap on the float64 entries of one batched query (configurations x vectors x
# outputs), so that many directions on a wide layer do not exhaust memory.
_MAX_BATCH_ENTRIES = 2**22


def sample_directions(n_samples, dim, kind="gaussian", *, generator=None, device=None):
    """Draw random directions ``u`` with ``E[u u^T] = I``.

    Parameters
    ----------
    n_samples : int
        Number of directions.
    dim : int
        Their dimension.
    kind : {"gaussian", "rademacher", "orthogonal"}, default="gaussian"
        ``"gaussian"``: iid standard normal entries (the paper's choice).
        ``"rademacher"``: iid +-1 entries (lower variance of ``u u^T``).
        ``"orthogonal"``: blocks of ``min(n_samples, dim)`` mutually
        orthogonal directions of norm ``sqrt(dim)`` (Haar-random), so that no
        two samples in a block repeat information.
    generator : torch.Generator or None
        Source of randomness (CPU).
    device : torch.device or None
        Where the result is placed.

    Returns
    -------
    Tensor of shape (n_samples, dim), float64.
    """
    if kind not in DIRECTIONS:
        raise ValueError(f"directions must be one of {DIRECTIONS}; got {kind!r}")
    opts = dict(generator=generator, dtype=torch.float64)
    if kind == "gaussian":
        U = torch.randn(n_samples, dim, **opts)
    elif kind == "rademacher":
        U = torch.randint(0, 2, (n_samples, dim), generator=generator).to(torch.float64) * 2 - 1
    else:
        blocks, left = [], n_samples
        while left > 0:
            width = min(left, dim)
            Q, R = torch.linalg.qr(torch.randn(dim, width, **opts))
            # Fixing the signs of R's diagonal makes Q Haar-distributed.
            Q = Q * torch.sign(torch.diagonal(R)).where(torch.diagonal(R) != 0, 1.0)
            blocks.append(Q.T * math.sqrt(dim))
            left -= width
        U = torch.cat(blocks)
    return U if device is None else U.to(device)


def zo_query_cost(n_samples, batch_size, d_out, *, scheme="forward", baseline=True,
                  compressed=False):
    """Device queries of one ZO estimate.

    Parameters
    ----------
    n_samples : int
        Directions ``M``.
    batch_size : int
        Input vectors ``B`` in the batch.
    d_out : int
        Output width (the compressed batch has ``d_out`` vectors).
    scheme : {"forward", "central"}
    baseline : bool, default=True
        Whether the forward pass's outputs are reused as the baseline
        (forward scheme, uncompressed only).
    compressed : bool, default=False
        Whether the compressed batch ``G^T X`` is sent instead of ``X``.

    Returns
    -------
    dict with ``"vectors"`` and ``"configurations"``.
    """
    if scheme == "central":
        configs = 2 * n_samples
    else:
        configs = n_samples + int(compressed or not baseline)
    per_config = d_out if compressed else batch_size
    return {"vectors": configs * per_config, "configurations": configs}


def estimate_gradient(query, X, G, params, *, mu, n_samples, generator=None,
                      directions="gaussian", scheme="forward", baseline=None,
                      compressed=False):
    """Estimate ``d/dparams sum_b <G_b, f_params(X_b)>`` from forward queries.

    Parameters
    ----------
    query : callable
        ``query(X, P)`` with ``P`` of shape ``(k, n_params)`` returning the
        device's outputs of shape ``(k, n, d_out)`` for every configuration.
        A configuration that failed may come back as NaN: its direction is
        dropped from the average.
    X : tensor of shape (B, d_in)
        The inputs of the forward pass.
    G : tensor of shape (B, d_out)
        The upstream gradient ``dL/dy``.
    params : tensor of shape (n_params,)
        The configuration the gradient is taken at.
    mu : float
        Finite-difference step.
    n_samples : int
        Number of random directions ``M``.
    generator : torch.Generator or None
        Source of the directions.
    directions : {"gaussian", "rademacher", "orthogonal"}, default="gaussian"
        See :func:`sample_directions`.
    scheme : {"forward", "central"}, default="forward"
        One-sided differences against a shared baseline (``M`` or ``M + 1``
        configurations), or central differences ``f(p + mu u) - f(p - mu u)``
        (``2 M`` configurations; second-order accurate in ``mu`` and more
        robust to measurement noise).
    baseline : tensor of shape (B, d_out) or None
        ``f_params(X)`` already measured (by the forward pass); saves one
        configuration in the forward scheme. Ignored when compressed.
    compressed : bool, default=False
        Query with the ``d_out`` vectors ``G^T X`` instead of the batch,
        using ``sum_b <G_b, A x_b> = trace(A X^T G)``. Valid only for a
        device that is linear in ``x``.

    Returns
    -------
    Tensor of shape (n_params,), float64.

    Notes
    -----
    With ``phi(p) = sum_b <G_b, f_p(X_b)>`` the forward estimate is
    ``1/(mu M) sum_i (phi(p + mu u_i) - phi(p)) u_i``; for a model linear in
    ``p`` (or ``mu -> 0``) it is unbiased with ``E|g_hat - g|^2 = (d + 1)/M |g|^2``
    for Gaussian directions, so its cosine to the true gradient is about
    ``sqrt(M / (d + M))``. Differences are taken in float64.
    """
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {SCHEMES}; got {scheme!r}")
    G = G.to(torch.float64)
    X = X.to(torch.float64)
    p = params.detach().to(torch.float64)
    U = sample_directions(n_samples, p.numel(), directions, generator=generator,
                          device=p.device)
    if compressed:
        probe = G.T @ X  # (d_out, d_in): one synthetic input per output

        def phi(P):
            Y = _batched(query, probe, P)
            return torch.diagonal(Y, dim1=-2, dim2=-1).sum(-1)
    else:
        probe = X

        def phi(P):
            return (_batched(query, probe, P) * G).sum((-2, -1))

    if scheme == "central":
        values = phi(torch.cat([p + mu * U, p - mu * U]))
        diffs = (values[:n_samples] - values[n_samples:]) / (2 * mu)
    else:
        if baseline is not None and not compressed:
            phi0 = (baseline.to(torch.float64) * G).sum()
            values = phi(p + mu * U)
        else:
            values = phi(torch.cat([p.reshape(1, -1), p + mu * U]))
            phi0, values = values[0], values[1:]
            if not torch.isfinite(phi0):
                raise BlackBoxError("the ZO baseline configuration failed", purpose="zo")
        diffs = (values - phi0) / mu
    # A direction whose configuration failed (a NaN from a partial query) is
    # dropped; the average runs over the directions that were measured.
    kept = torch.isfinite(diffs)
    if not kept.any():
        raise BlackBoxError(
            f"every one of the {n_samples} ZO directions' configurations failed "
            "('zo' query)", purpose="zo")
    if not kept.all():
        diffs, U = diffs[kept], U[kept]
    return diffs @ U / int(kept.sum())


def _batched(query, X, P):
    """Query ``P``'s configurations in chunks that keep memory bounded."""
    per_config = max(1, X.shape[0] * X.shape[1] + X.shape[0] * 4)
    chunk = max(1, _MAX_BATCH_ENTRIES // per_config)
    if P.shape[0] <= chunk:
        return query(X, P)
    return torch.cat([query(X, P[i:i + chunk]) for i in range(0, P.shape[0], chunk)])
