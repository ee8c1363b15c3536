import math

import pytest
import torch

from skhybrid import make_black_box
from skhybrid.zeroth_order import estimate_gradient, sample_directions, zo_query_cost


def _setup(name="matrix", d_in=8, d_out=6, batch=5, seed=0):
    box = make_black_box(name, d_in, d_out, random_state=seed)
    g = torch.Generator().manual_seed(seed + 100)
    X = torch.randn(batch, d_in, generator=g, dtype=torch.float64)
    G = torch.randn(batch, d_out, generator=g, dtype=torch.float64)
    p = box.params0.clone()
    return box, X, G, p


def _true_gradient(box, X, G, p):
    p = p.clone().requires_grad_()
    y = box._forward(X, p.reshape(1, -1))[0]
    (grad,) = torch.autograd.grad((y * G).sum(), p)
    return grad


def _query(box):
    return lambda X, P: box.query(X, P, "zo")


@pytest.mark.parametrize("kind", ["gaussian", "rademacher", "orthogonal"])
def test_directions_have_identity_second_moment(kind, gen):
    U = sample_directions(20000, 6, kind, generator=gen)
    second = U.T @ U / U.shape[0]
    assert torch.allclose(second, torch.eye(6, dtype=torch.float64), atol=0.05)


def test_orthogonal_directions_are_orthogonal_within_a_block(gen):
    U = sample_directions(5, 9, "orthogonal", generator=gen)
    gram = U @ U.T
    assert torch.allclose(gram, 9 * torch.eye(5, dtype=torch.float64), atol=1e-10)


@pytest.mark.parametrize("name", ["matrix", "slm"])
@pytest.mark.parametrize("scheme", ["forward", "central"])
@pytest.mark.parametrize("directions", ["gaussian", "rademacher", "orthogonal"])
def test_estimate_is_unbiased(name, scheme, directions, gen):
    box, X, G, p = _setup(name)
    true = _true_gradient(box, X, G, p)
    M = 20000
    est = estimate_gradient(_query(box), X, G, p, mu=box.mu, n_samples=M, generator=gen,
                            directions=directions, scheme=scheme)
    d = p.numel()
    rel = float(torch.linalg.vector_norm(est - true) / torch.linalg.vector_norm(true))
    # The estimate's relative error is about sqrt((d + 1) / M) for Gaussian directions.
    assert rel < 3 * math.sqrt((d + 1) / M)


def test_mean_over_draws_approaches_the_true_gradient(gen):
    box, X, G, p = _setup("slm")
    true = _true_gradient(box, X, G, p)
    draws = torch.stack([
        estimate_gradient(_query(box), X, G, p, mu=box.mu, n_samples=8, generator=gen)
        for _ in range(1500)
    ])
    errors = [float(torch.linalg.vector_norm(draws[:k].mean(0) - true)
                    / torch.linalg.vector_norm(true)) for k in (15, 150, 1500)]
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 0.15


def test_cosine_grows_like_sqrt_m_over_d_plus_m(gen):
    box, X, G, p = _setup("matrix", d_in=16, d_out=16, batch=8)
    true = _true_gradient(box, X, G, p)
    d = p.numel()
    measured = []
    for M in (4, 16, 64, 256):
        cos = [float(torch.nn.functional.cosine_similarity(
            estimate_gradient(_query(box), X, G, p, mu=box.mu, n_samples=M, generator=gen),
            true, dim=0)) for _ in range(40)]
        mean = sum(cos) / len(cos)
        measured.append(mean)
        assert mean == pytest.approx(math.sqrt(M / (d + M)), rel=0.25)
    assert measured == sorted(measured)


def test_compressed_batch_equals_plain_for_linear_devices():
    box, X, G, p = _setup("slm", d_in=7, d_out=3, batch=11)
    plain = estimate_gradient(_query(box), X, G, p, mu=box.mu, n_samples=12,
                              generator=torch.Generator().manual_seed(5))
    compressed = estimate_gradient(_query(box), X, G, p, mu=box.mu, n_samples=12,
                                   generator=torch.Generator().manual_seed(5), compressed=True)
    assert torch.allclose(plain, compressed, rtol=1e-8, atol=1e-10)


def test_reused_baseline_equals_a_queried_one():
    box, X, G, p = _setup("mrr")
    baseline = box.query(X, p)
    a = estimate_gradient(_query(box), X, G, p, mu=box.mu, n_samples=6,
                          generator=torch.Generator().manual_seed(1), baseline=baseline)
    b = estimate_gradient(_query(box), X, G, p, mu=box.mu, n_samples=6,
                          generator=torch.Generator().manual_seed(1))
    assert torch.allclose(a, b, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("scheme,baseline,compressed", [
    ("forward", True, False), ("forward", False, False), ("forward", True, True),
    ("central", True, False), ("central", False, True),
])
def test_counted_queries_equal_the_cost_formula(scheme, baseline, compressed, gen):
    box, X, G, p = _setup("matrix", batch=5)
    measured = box.query(X, p) if baseline else None
    box.reset_counts()
    estimate_gradient(_query(box), X, G, p, mu=box.mu, n_samples=9, generator=gen,
                      scheme=scheme, baseline=measured, compressed=compressed)
    expected = zo_query_cost(9, 5, box.d_out, scheme=scheme, baseline=baseline,
                             compressed=compressed)
    counted = box.counts["zo"]
    # The device already holds p after the baseline query, so a first
    # configuration at p is not a reprogramming.
    already_there = int(baseline and scheme == "forward" and compressed)
    assert counted["vectors"] == expected["vectors"]
    assert counted["configurations"] == expected["configurations"] - already_there


def test_float64_differences_survive_a_tiny_step():
    # In float32 a 1e-4 step on phases near pi/2 loses most digits; the
    # estimator works in float64 whatever the inputs' dtype.
    box, X, G, p = _setup("slm")
    true = _true_gradient(box, X, G, p)
    est = estimate_gradient(_query(box), X.float(), G.float(), p.float().double(), mu=1e-7,
                            n_samples=20000, generator=torch.Generator().manual_seed(0))
    rel = float(torch.linalg.vector_norm(est - true) / torch.linalg.vector_norm(true))
    assert rel < 0.2


def test_invalid_options_raise():
    box, X, G, p = _setup()
    with pytest.raises(ValueError, match="scheme"):
        estimate_gradient(_query(box), X, G, p, mu=1.0, n_samples=2, scheme="backward")
    with pytest.raises(ValueError, match="directions"):
        sample_directions(2, 3, "sobol")
