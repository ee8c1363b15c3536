"""MZIMesh: a rectangular mesh of MZI cells, A = Re(U)[:d_out, :d_in]."""

import cmath
import math

import pytest
import torch

from skhybrid.black_boxes import MZIMesh, make_black_box
from skhybrid.black_boxes.mzi import CELLS, classical_mzi_cell, mesh_unitary, three_mzi_cell

CELL_FUNCTIONS = {"3mzi": three_mzi_cell, "classical": classical_mzi_cell}


def _phases(k, n, seed=0):
    g = torch.Generator().manual_seed(seed)
    return 2 * math.pi * torch.rand(k, n, dtype=torch.float64, generator=g)


def _naive_unitary(params, N, cell):
    """The mesh by explicit dense layers, one cell at a time (the documented layout)."""
    h = N // 2
    even = params[: N * h].reshape(h, h, 2)
    odd = params[N * h :].reshape(h, h - 1, 2)
    U = torch.eye(N, dtype=torch.complex128)
    for layer in range(N):
        L = torch.eye(N, dtype=torch.complex128)
        phases, first = (even[layer // 2], 0) if layer % 2 == 0 else (odd[layer // 2], 1)
        for c in range(phases.shape[0]):
            m = first + 2 * c
            L[m : m + 2, m : m + 2] = CELL_FUNCTIONS[cell](phases[c, 0], phases[c, 1])
        U = L @ U
    return U


def _unitarity_error(U):
    eye = torch.eye(U.shape[-1], dtype=U.dtype)
    return (U @ U.mH - eye).abs().max().item()


@pytest.mark.parametrize("cell", CELLS)
def test_cells_are_unitary_and_batched(cell):
    theta, phi = _phases(2, 15).reshape(2, 3, 5)
    T = CELL_FUNCTIONS[cell](theta, phi)
    assert T.shape == (3, 5, 2, 2) and T.dtype == torch.complex128
    assert _unitarity_error(T) < 1e-14
    torch.testing.assert_close(T[1, 2], CELL_FUNCTIONS[cell](theta[1, 2], phi[1, 2]))


def test_cell_formulas():
    theta, phi = 0.7, -0.4
    p1, p2 = (theta - phi) / 2, (theta + phi) / 2
    s1, c1, s2, c2 = math.sin(p1), math.cos(p1), math.sin(p2), math.cos(p2)
    e = cmath.exp(1j * p2) / math.sqrt(2)
    expected = [[e * (s1 + 1j * s2), e * (-c1 + 1j * c2)], [e * (c1 + 1j * c2), e * (s1 - 1j * s2)]]
    theta_t = torch.tensor(theta, dtype=torch.float64)
    phi_t = torch.tensor(phi, dtype=torch.float64)
    got = three_mzi_cell(theta_t, phi_t)
    torch.testing.assert_close(got, torch.tensor(expected, dtype=torch.complex128))
    e0, s, c = cmath.exp(1j * theta), math.sin(phi), math.cos(phi)
    expected = [[e0 * s, e0 * c], [c, -s]]
    got = classical_mzi_cell(theta_t, phi_t)
    torch.testing.assert_close(got, torch.tensor(expected, dtype=torch.complex128))


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("N", [2, 4, 6, 8])
def test_mesh_is_unitary_and_matches_the_naive_construction(cell, N):
    P = _phases(3, N * N - N, seed=N)
    U = mesh_unitary(P, N, cell)
    assert U.shape == (3, N, N) and U.dtype == torch.complex128
    assert _unitarity_error(U) < 1e-10
    for i in range(3):
        torch.testing.assert_close(U[i], _naive_unitary(P[i], N, cell), rtol=0, atol=1e-12)
    # Batched equals looped, and a 1-D vector gives one unitary.
    looped = torch.stack([mesh_unitary(p, N, cell) for p in P])
    torch.testing.assert_close(U, looped, rtol=0, atol=1e-13)


@pytest.mark.parametrize(
    "d_in, d_out, N", [(1, 1, 2), (2, 1, 2), (3, 3, 4), (4, 4, 4), (5, 2, 6), (2, 7, 8), (8, 6, 8)]
)
def test_mesh_size_and_parameter_count(d_in, d_out, N):
    box = MZIMesh(d_in, d_out, random_state=0)
    assert box.n_modes == N and box.n_params == N * N - N
    assert box.matrix().shape == (d_out, d_in)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("d_in, d_out", [(5, 3), (3, 5), (4, 4)])
def test_matrix_is_the_cropped_real_part(cell, d_in, d_out):
    box = MZIMesh(d_in, d_out, cell=cell, random_state=0)
    P = _phases(1, box.n_params, seed=3)[0]
    U = mesh_unitary(P, box.n_modes, cell)
    torch.testing.assert_close(box.matrix(P), U.real[:d_out, :d_in], rtol=0, atol=1e-13)
    # Few input vectors go through the mesh directly; the result is the same.
    X = torch.randn(2, d_in, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(box.query(X, P), X @ U.real[:d_out, :d_in].T, rtol=0, atol=1e-13)
    assert torch.linalg.svdvals(box.matrix(P)).max() <= 1 + 1e-12


def test_registry_cells_and_validation():
    assert make_black_box("mzi", 3, 3).cell == "3mzi"
    assert make_black_box("mzi_classical", 3, 3).cell == "classical"
    with pytest.raises(ValueError, match="cell must be one of"):
        MZIMesh(3, 3, cell="triple")
    with pytest.raises(ValueError, match="n_modes"):
        mesh_unitary(torch.zeros(6), 3)
    with pytest.raises(ValueError, match="params must have shape"):
        mesh_unitary(torch.zeros(2, 11), 4)
    with pytest.raises(ValueError, match="cell must be one of"):
        mesh_unitary(torch.zeros(12), 4, cell="3MZI")


def test_initialisation():
    box = MZIMesh(20, 20, random_state=0)  # N = 20, 380 phases
    z = (box.params0 - math.pi / 2) * math.sqrt(20)
    assert abs(z.mean().item()) < 0.15 and 0.9 < z.std().item() < 1.1
    assert box.mu == 1e-4 and box.param_range == (0.0, 2 * math.pi)


@pytest.mark.parametrize("cell", CELLS)
def test_autograd_matches_central_differences(cell):
    N = 4
    P = _phases(1, N * N - N, seed=9)[0]
    W = torch.randn(N, N, dtype=torch.float64, generator=torch.Generator().manual_seed(1))

    def loss(p):
        U = mesh_unitary(p, N, cell)
        return (W * U.real).sum() + (W.T * U.imag).sum()

    p = P.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(loss(p), p)
    eps = 1e-6
    basis = torch.eye(P.numel(), dtype=torch.float64)
    fd = torch.stack([(loss(P + eps * e) - loss(P - eps * e)) / (2 * eps) for e in basis])
    torch.testing.assert_close(grad, fd, rtol=1e-6, atol=1e-8)


def test_query_differentiable_through_the_box():
    box = MZIMesh(3, 2, random_state=0)
    X = torch.randn(5, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    p = box.params0.clone().requires_grad_(True)
    torch.autograd.gradcheck(lambda q: box.query_differentiable(X, q), (p,), eps=1e-6, atol=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    P = _phases(4, 56)
    U = mesh_unitary(P.cuda(), 8, "3mzi")
    assert U.device.type == "cuda"
    torch.testing.assert_close(U.cpu(), mesh_unitary(P, 8, "3mzi"), rtol=0, atol=1e-12)
    box = MZIMesh(7, 5, random_state=0)
    X = torch.randn(3, 7, dtype=torch.float64)
    torch.testing.assert_close(box.query(X.cuda(), P[:, :56].cuda()).cpu(), box.query(X, P[:, :56]))
