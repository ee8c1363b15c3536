import math

import pytest
import torch

from skhybrid import BlackBoxLayer, LowRankSurrogate, make_black_box, psi_step
from skhybrid.surrogate import best_rank_error, project_probes, truncated_svd


def _random_lowrank(m, n, r, gen):
    U0, _ = torch.linalg.qr(torch.randn(m, r, generator=gen, dtype=torch.float64))
    V0, _ = torch.linalg.qr(torch.randn(n, r, generator=gen, dtype=torch.float64))
    S0 = torch.randn(r, r, generator=gen, dtype=torch.float64)
    return U0, S0, V0


def _tangent_projection(U, V, dA):
    """P_T(dA) = dA V V^T - U U^T dA V V^T + U U^T dA, with the updated left basis U."""
    PV = V @ V.T
    PU = U @ U.T
    return dA @ PV - PU @ dA @ PV + PU @ dA


@pytest.mark.parametrize("m,n,r", [(7, 5, 2), (6, 9, 3), (12, 12, 4)])
def test_psi_with_exact_probes_adds_the_tangent_projection(m, n, r, gen):
    U0, S0, V0 = _random_lowrank(m, n, r, gen)
    dA = 0.1 * torch.randn(m, n, generator=gen, dtype=torch.float64)
    # Exact probing: scaled orthonormal rows, confined to the complement of V0.
    Z = project_probes(math.sqrt(n) * torch.eye(n, dtype=torch.float64), V0)
    U1, S1, V1 = psi_step(U0, S0, V0, dA @ V0, Z, Z @ dA.T)
    expected = U0 @ S0 @ V0.T + _tangent_projection(U1, V0, dA)
    assert torch.allclose(U1 @ S1 @ V1.T, expected, atol=1e-10)
    eye = torch.eye(r, dtype=torch.float64)
    assert torch.allclose(U1.T @ U1, eye, atol=1e-12)
    assert torch.allclose(V1.T @ V1, eye, atol=1e-12)


def test_psi_is_exact_for_increments_inside_the_rank(gen):
    U0, S0, V0 = _random_lowrank(8, 6, 3, gen)
    dA = U0 @ torch.randn(3, 3, generator=gen, dtype=torch.float64) @ V0.T
    Z = project_probes(torch.randn(4, 6, generator=gen, dtype=torch.float64), V0)
    U1, S1, V1 = psi_step(U0, S0, V0, dA @ V0, Z, Z @ dA.T)
    assert torch.allclose(U1 @ S1 @ V1.T, U0 @ S0 @ V0.T + dA, atol=1e-12)


def test_surrogate_buffers_exist_at_construction():
    s = LowRankSurrogate(5, 7, 3)
    state = s.state_dict()
    assert {k: tuple(v.shape) for k, v in state.items()} == {
        "U": (5, 3), "S": (3, 3), "V": (7, 3)}


@pytest.mark.parametrize("rank", [0, 6, 2.0, True])
def test_rank_is_checked_against_min_dimension(rank):
    with pytest.raises(ValueError, match=r"rank must be an int in \[1, min\(d_in, d_out\)\] = \[1, 5\]"):
        LowRankSurrogate(5, 7, rank)


def test_set_from_matrix_is_the_truncated_svd(gen):
    A = torch.randn(6, 9, generator=gen, dtype=torch.float64)
    s = LowRankSurrogate(6, 9, 2)
    s.set_from_matrix(A)
    err = float(torch.linalg.matrix_norm(A - s.matrix()) / torch.linalg.matrix_norm(A))
    assert err == pytest.approx(best_rank_error(A, 2), rel=1e-10)
    U, sv, V = truncated_svd(A, 2)
    assert torch.allclose(s.matrix(), U @ torch.diag(sv) @ V.T, atol=1e-12)


def test_rejected_step_keeps_old_factors(gen):
    s = LowRankSurrogate(4, 4, 2)
    s.set_from_matrix(torch.randn(4, 4, generator=gen, dtype=torch.float64))
    before = s.matrix().clone()
    bad = torch.full((4, 2), float("nan"), dtype=torch.float64)
    Z = torch.randn(3, 4, generator=gen, dtype=torch.float64)
    assert not s.psi_update(bad, Z, torch.zeros(3, 4, dtype=torch.float64))
    assert torch.equal(s.matrix(), before)


def test_rank_deficient_increment_and_factors_stay_finite(gen):
    # A zero increment on a rank-deficient matrix: QR of a singular K1.
    s = LowRankSurrogate(5, 5, 3)
    A = torch.zeros(5, 5, dtype=torch.float64)
    A[0, 0] = 1.0
    s.set_from_matrix(A)
    Z = project_probes(torch.randn(4, 5, generator=gen, dtype=torch.float64), s.V)
    assert s.psi_update(torch.zeros(5, 3, dtype=torch.float64), Z,
                        torch.zeros(4, 5, dtype=torch.float64))
    assert torch.allclose(s.matrix(), A, atol=1e-12)


class _Drift:
    """A matrix with a decaying spectrum whose singular vectors rotate slowly."""

    def __init__(self, m, n, speed, gen):
        U, _ = torch.linalg.qr(torch.randn(m, m, generator=gen, dtype=torch.float64))
        V, _ = torch.linalg.qr(torch.randn(n, m, generator=gen, dtype=torch.float64))
        s = 0.8 ** torch.arange(m, dtype=torch.float64)
        self.A = U @ torch.diag(s) @ V.T
        Wl = torch.randn(m, m, generator=gen, dtype=torch.float64) * speed / math.sqrt(m)
        Wr = torch.randn(n, n, generator=gen, dtype=torch.float64) * speed / math.sqrt(n)
        self.left = torch.linalg.matrix_exp(Wl - Wl.T)
        self.right = torch.linalg.matrix_exp(Wr - Wr.T)

    def step(self):
        self.A = self.left @ self.A @ self.right.T
        return self.A


@pytest.mark.parametrize("surrogate_samples", ["auto", 32, 64])
def test_tracking_a_slowly_changing_matrix_stays_near_the_best_rank_r_error(
        surrogate_samples, gen):
    m, n, r = 48, 128, 8
    drift = _Drift(m, n, 0.001, gen)
    box = make_black_box("matrix", n, m, random_state=0)
    layer = BlackBoxLayer(box, rank=r, surrogate_samples=surrogate_samples, random_state=0)
    # 128 > 2 (8 + M_SM): every update is a randomised K-S-L step.
    assert not layer.exact_probing
    with torch.no_grad():
        layer.params.copy_(drift.A.flatten())
    x = torch.randn(4, n, generator=gen, requires_grad=True)
    ratios = []
    for _ in range(200):
        layer(x).sum().backward()
        with torch.no_grad():
            layer.params.copy_(drift.step().flatten())
        assert layer.update_surrogate()
        ratios.append(layer.surrogate_error() / layer.best_surrogate_error())
    assert layer.n_rebuilds == 1  # only the initial build
    assert max(ratios) <= 1.1


def test_exact_probing_tracks_at_the_best_error(gen):
    m, n, r = 24, 32, 4
    drift = _Drift(m, n, 0.01, gen)
    layer = BlackBoxLayer(make_black_box("matrix", n, m, random_state=0), rank=r,
                          random_state=0)
    assert layer.exact_probing  # 32 <= 2 (4 + 16)
    with torch.no_grad():
        layer.params.copy_(drift.A.flatten())
    x = torch.randn(4, n, generator=gen, requires_grad=True)
    for _ in range(200):
        layer(x).sum().backward()
        with torch.no_grad():
            layer.params.copy_(drift.step().flatten())
        layer.update_surrogate()
        assert layer.surrogate_error() == pytest.approx(layer.best_surrogate_error(), rel=1e-8)
