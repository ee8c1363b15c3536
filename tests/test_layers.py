import io
import pickle

import pytest
import torch
from torch import nn

from skhybrid import (BlackBoxLayer, CallableBlackBox, make_black_box, seed_layers,
                      update_surrogates)
from skhybrid.black_boxes import MatrixBlackBox
from skhybrid.layers import GRADIENT_MODES


def _layer(name="slm", d_in=10, d_out=6, **kwargs):
    kwargs.setdefault("random_state", 0)
    kwargs.setdefault("rank", 4)
    return BlackBoxLayer(make_black_box(name, d_in, d_out, random_state=0), **kwargs)


def _true_grads(layer, x, G):
    x = x.detach().double().requires_grad_()
    p = layer.params.detach().double().requires_grad_()
    y = layer.black_box._forward(x, p.reshape(1, -1))[0]
    if layer.scale is not None:
        y = y * layer.scale.detach().double()
    return torch.autograd.grad(y, (x, p), G.double())


class SpyBlackBox(MatrixBlackBox):
    """Records whether any query could be differentiated through."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.graph_seen = []

    def _forward(self, X, params):
        self.graph_seen.append(torch.is_grad_enabled() or X.requires_grad or params.requires_grad)
        return super()._forward(X, params)

    def query_differentiable(self, *args, **kwargs):
        raise AssertionError("astralora differentiated through the black box")


def test_astralora_never_differentiates_through_the_black_box():
    box = SpyBlackBox(8, 5, random_state=0)
    layer = BlackBoxLayer(box, rank=3, zo_samples=4, random_state=0)
    net = nn.Sequential(nn.Linear(4, 8), layer, nn.Tanh(), nn.Linear(5, 2))
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    for _ in range(3):
        opt.zero_grad()
        net(torch.randn(6, 4)).pow(2).mean().backward()
        opt.step()
        update_surrogates(net)
    assert box.graph_seen and not any(box.graph_seen)
    assert layer.params.grad is not None and net[0].weight.grad is not None


@pytest.mark.parametrize("gradient", sorted(GRADIENT_MODES))
def test_every_gradient_mode_trains_and_gives_gradients(gradient):
    layer = _layer(gradient=gradient, rank=4, zo_samples=8)
    x = torch.randn(7, 10, requires_grad=True)
    layer(x).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    if gradient == "frozen":
        assert layer.params.grad is None
    else:
        assert torch.isfinite(layer.params.grad).all()


def test_exact_mode_matches_autograd():
    layer = _layer(gradient="exact")
    x = torch.randn(5, 10, dtype=torch.float64)
    layer = layer.double()
    x.requires_grad_()
    G = torch.randn(5, 6, dtype=torch.float64)
    layer(x).backward(G)
    gx, gp = _true_grads(layer, x, G)
    assert torch.allclose(x.grad, gx, atol=1e-10)
    assert torch.allclose(layer.params.grad, gp, atol=1e-10)


def test_surrogate_input_gradient_is_exact_at_full_rank():
    layer = _layer(rank=6).double()
    x = torch.randn(5, 10, dtype=torch.float64, requires_grad=True)
    G = torch.randn(5, 6, dtype=torch.float64)
    layer(x).backward(G)
    gx, _ = _true_grads(layer, x, G)
    assert torch.allclose(x.grad, gx, atol=1e-10)


def test_zero_order_parameter_gradient_points_the_right_way():
    layer = _layer(zo_samples=64, random_state=3).double()
    x = torch.randn(16, 10, dtype=torch.float64, requires_grad=True)
    G = torch.randn(16, 6, dtype=torch.float64)
    layer(x).backward(G)
    _, gp = _true_grads(layer, x, G)
    cos = torch.nn.functional.cosine_similarity(layer.params.grad, gp, dim=0)
    assert cos > 0.4  # sqrt(64 / (60 + 64)) = 0.72 on average


def test_learns_from_forward_queries_alone_and_beats_the_frozen_control():
    torch.manual_seed(0)
    teacher = torch.randn(4, 6) / 6**0.5
    X = torch.randn(256, 6)
    Y = X @ teacher.T

    def train(gradient):
        layer = BlackBoxLayer(make_black_box("matrix", 6, 4, random_state=1), rank=4,
                              zo_samples=16, gradient=gradient, random_state=2)
        net = nn.Sequential(nn.Linear(6, 6), layer)
        with torch.no_grad():
            net[0].weight.copy_(torch.eye(6))
            net[0].bias.zero_()
        net[0].requires_grad_(False)  # the black box must carry the capacity
        opt = torch.optim.Adam(net.parameters(), lr=0.02)
        losses = []
        for epoch in range(30):
            for i in range(0, 256, 32):
                opt.zero_grad()
                loss = (net(X[i:i + 32]) - Y[i:i + 32]).pow(2).mean()
                loss.backward()
                opt.step()
                update_surrogates(net)
            with torch.no_grad():
                losses.append(float((net(X) - Y).pow(2).mean()))
        return losses

    trained = train("astralora")
    frozen = train("frozen")
    assert trained[-1] < 0.2 * trained[0]
    assert trained[-1] < 0.3 * frozen[-1]


def test_input_gradient_reaches_earlier_digital_layers():
    # A fixed random device; only the digital layer before it can learn, and
    # it learns only through the surrogate's input gradient.
    torch.manual_seed(0)
    X = torch.randn(256, 5)
    target = torch.randn(5, 5)
    box = make_black_box("matrix", 5, 5, random_state=3)
    A = box.matrix().float()
    Y = (X @ target.T) @ A.T
    layer = BlackBoxLayer(box, rank=5, random_state=0)
    layer.params.requires_grad_(False)
    net = nn.Sequential(nn.Linear(5, 5, bias=False), layer)
    opt = torch.optim.Adam(net[0].parameters(), lr=0.05)
    with torch.no_grad():
        start = float((net(X) - Y).pow(2).mean())
    for _ in range(300):
        opt.zero_grad()
        (net(X) - Y).pow(2).mean().backward()
        opt.step()
    with torch.no_grad():
        assert float((net(X) - Y).pow(2).mean()) < 0.01 * start


def test_query_counters_equal_the_cost_formulas():
    B, d_in, d_out, r, M = 12, 48, 16, 4, 5
    layer = _layer(d_in=d_in, d_out=d_out, rank=r, zo_samples=M, compressed_batch=False)
    assert not layer.exact_probing  # 48 > 2 (4 + 16)
    M_sm = layer.n_surrogate_samples
    opt = torch.optim.SGD([layer.params], lr=0.01)
    steps = 3
    for _ in range(steps):
        opt.zero_grad()
        layer(torch.randn(B, d_in)).sum().backward()
        opt.step()
        layer.update_surrogate()
    q = layer.n_queries
    assert q["forward"]["vectors"] == steps * B
    assert q["zo"] == {"vectors": steps * M * B, "configurations": steps * M}
    # d_in identity probes to build, then 2 (r + M_SM) per update.
    assert q["surrogate"]["vectors"] == d_in + steps * 2 * (r + M_sm)
    # One reconfiguration per update; the forward pass finds the device there.
    assert q["surrogate"]["configurations"] == 1 + steps
    assert q["forward"]["configurations"] == 0
    total = sum(c["configurations"] for c in q.values())
    assert total == 1 + steps * (M + 1)


def test_exact_branch_costs_d_in_vectors_per_update():
    layer = _layer(d_in=10, d_out=6, rank=2, zo_samples=3)
    assert layer.exact_probing
    opt = torch.optim.SGD([layer.params], lr=0.01)
    for _ in range(4):
        opt.zero_grad()
        layer(torch.randn(3, 10)).sum().backward()
        opt.step()
        layer.update_surrogate()
    assert layer.n_queries["surrogate"] == {"vectors": 10 * 5, "configurations": 5}


def test_compressed_batch_is_used_for_large_batches():
    layer = _layer(d_in=10, d_out=4, zo_samples=6)
    layer(torch.randn(50, 10)).sum().backward()
    # M + 1 compressed batches of d_out vectors; the baseline's configuration
    # is the one the forward pass left programmed.
    assert layer.n_queries["zo"] == {"vectors": 7 * 4, "configurations": 6}


def test_no_surrogate_update_in_eval_or_without_a_step():
    layer = _layer()
    with torch.no_grad():
        layer(torch.randn(3, 10))
    assert not bool(layer.surrogate_ready)
    assert layer.n_queries["surrogate"]["vectors"] == 0
    layer(torch.randn(3, 10)).sum().backward()
    assert bool(layer.surrogate_ready)
    state = {k: v.clone() for k, v in layer.surrogate.state_dict().items()}
    assert layer.update_surrogate() is False  # params unchanged: nothing to do
    with torch.no_grad():
        layer.eval()
        layer(torch.randn(3, 10))
    for k, v in layer.surrogate.state_dict().items():
        assert torch.equal(v, state[k])


def test_gradient_accumulation_gives_one_update_per_step():
    layer = _layer(d_in=40, d_out=8, rank=2)
    opt = torch.optim.SGD([layer.params], lr=0.01)
    for _ in range(2):
        opt.zero_grad()
        for _ in range(3):
            layer(torch.randn(4, 40)).sum().backward()
        opt.step()
        assert layer.update_surrogate() is True
        assert layer.update_surrogate() is False
    assert int(layer.n_updates) == 2


def test_leading_dimensions_and_dtypes():
    layer = _layer()
    y = layer(torch.randn(2, 3, 4, 10))
    assert y.shape == (2, 3, 4, 6) and y.dtype == torch.float32
    layer64 = _layer().double()
    x = torch.randn(2, 5, 10, dtype=torch.float64, requires_grad=True)
    out = layer64(x)
    assert out.dtype == torch.float64
    out.sum().backward()
    assert x.grad.shape == x.shape


def test_state_dict_round_trips_before_and_after_training():
    fresh = _layer(rank=3)
    other = _layer(rank=3, random_state=5)
    other.load_state_dict(fresh.state_dict())  # before any forward
    trained = _layer(rank=3)
    opt = torch.optim.Adam(trained.parameters(), lr=0.01)
    for _ in range(3):
        opt.zero_grad()
        trained(torch.randn(4, 10)).sum().backward()
        opt.step()
        trained.update_surrogate()
    other.load_state_dict(trained.state_dict())
    assert torch.equal(other.surrogate.matrix(), trained.surrogate.matrix())
    assert torch.equal(other.params, trained.params)
    x = torch.randn(4, 10)
    with torch.no_grad():
        assert torch.allclose(other(x), trained(x))


def test_pickles_and_keeps_predictions():
    layer = _layer()
    layer(torch.randn(3, 10)).sum().backward()
    buffer = io.BytesIO()
    pickle.dump(layer, buffer)
    copy = pickle.loads(buffer.getvalue())
    x = torch.randn(3, 10)
    with torch.no_grad():
        assert torch.equal(copy(x), layer(x))


def test_seed_layers_gives_distinct_streams():
    net = nn.Sequential(_layer(random_state=0), _layer(random_state=0))
    seed_layers(net, 0)
    a, b = net[0], net[1]
    assert not torch.equal(torch.randn(5, generator=a._zo_generator),
                           torch.randn(5, generator=b._zo_generator))
    seed_layers(net, 0)
    first = torch.randn(5, generator=net[0]._zo_generator)
    seed_layers(net, 0)
    assert torch.equal(first, torch.randn(5, generator=net[0]._zo_generator))


def test_same_seed_same_training_bit_for_bit():
    def run():
        layer = _layer(random_state=4, rank=2, zo_samples=3)
        opt = torch.optim.Adam(layer.parameters(), lr=0.01)
        g = torch.Generator().manual_seed(0)
        for _ in range(3):
            opt.zero_grad()
            layer(torch.randn(4, 10, generator=g)).sum().backward()
            opt.step()
            layer.update_surrogate()
        return layer.params.detach().clone()
    assert torch.equal(run(), run())


def test_monitor_rebuilds_a_stale_surrogate():
    layer = _layer(d_in=60, d_out=20, rank=2, surrogate_samples=2, monitor_every=1,
                   monitor_tol=0.05)
    opt = torch.optim.SGD([layer.params], lr=1.0)  # big steps make the surrogate stale
    for _ in range(5):
        opt.zero_grad()
        layer(torch.randn(8, 60)).sum().backward()
        opt.step()
        layer.update_surrogate()
    assert layer.n_rebuilds > 1
    assert layer.last_monitored_error is not None


def test_periodic_rebuild():
    layer = _layer(d_in=60, d_out=20, rank=2, rebuild_every=2)
    opt = torch.optim.SGD([layer.params], lr=0.1)
    for _ in range(4):
        opt.zero_grad()
        layer(torch.randn(8, 60)).sum().backward()
        opt.step()
        layer.update_surrogate()
    assert layer.n_rebuilds == 1 + 2


@pytest.mark.parametrize("kwargs,match", [
    (dict(rank=0), "rank"), (dict(rank=7), "rank"), (dict(zo_samples=0), "zo_samples"),
    (dict(surrogate_samples=-1), "surrogate_samples"), (dict(gradient="sgd"), "gradient"),
    (dict(zo_scheme="backward"), "zo_scheme"), (dict(mu=-1.0), "mu"),
    (dict(rebuild_every=0), "rebuild_every"),
])
def test_invalid_arguments_name_the_problem(kwargs, match):
    with pytest.raises(ValueError, match=match):
        _layer(**kwargs)


def test_non_black_box_is_rejected():
    with pytest.raises(TypeError, match="BlackBox"):
        BlackBoxLayer(nn.Linear(3, 3))


def test_oracle_modes_need_a_simulation():
    box = CallableBlackBox(_double, 3, 3, n_params=1, params0=[1.0])
    with pytest.raises(ValueError, match="differentiates through"):
        BlackBoxLayer(box, rank=2, gradient="exact")
    layer = BlackBoxLayer(box, rank=3, zo_samples=2, random_state=0)
    x = torch.randn(4, 3, requires_grad=True)
    layer(x).sum().backward()
    assert torch.allclose(x.grad, 2 * torch.ones(4, 3), atol=1e-5)
    with pytest.raises(TypeError, match="simulated"):
        layer.surrogate_error()


def _double(X, params):
    return params[0] * 2 * X


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_runs_on_cuda():
    layer = _layer().cuda()
    x = torch.randn(4, 10, device="cuda", requires_grad=True)
    layer(x).sum().backward()
    layer.update_surrogate()
    assert x.grad.device.type == "cuda" and layer.params.grad.device.type == "cuda"


def _train(layer, steps, g):
    opt = torch.optim.Adam(layer.parameters(), lr=0.01)
    for _ in range(steps):
        opt.zero_grad()
        layer(torch.randn(4, layer.d_in, generator=g)).sum().backward()
        opt.step()
        layer.update_surrogate()
    return opt


def test_checkpoint_resumes_exactly(tmp_path):
    g = torch.Generator().manual_seed(0)
    straight = _layer(rank=2, zo_samples=3)
    _train(straight, 6, g)

    g = torch.Generator().manual_seed(0)
    first = _layer(rank=2, zo_samples=3)
    opt = _train(first, 3, g)
    torch.save({"model": first.state_dict(), "opt": opt.state_dict()}, tmp_path / "ckpt.pt")
    resumed = _layer(rank=2, zo_samples=3, random_state=99)
    saved = torch.load(tmp_path / "ckpt.pt", weights_only=True)
    resumed.load_state_dict(saved["model"])
    opt2 = torch.optim.Adam(resumed.parameters(), lr=0.01)
    opt2.load_state_dict(saved["opt"])
    for _ in range(3):
        opt2.zero_grad()
        resumed(torch.randn(4, 10, generator=g)).sum().backward()
        opt2.step()
        resumed.update_surrogate()
    assert torch.equal(resumed.params, straight.params)
    assert torch.equal(resumed.surrogate.matrix(), straight.surrogate.matrix())
    assert resumed.n_queries["zo"] == straight.n_queries["zo"]


def test_monitor_state_survives_a_checkpoint():
    layer = _layer(d_in=60, d_out=20, rank=2, surrogate_samples=2, monitor_every=1)
    _train(layer, 2, torch.Generator().manual_seed(0))
    reference = layer._monitor_reference
    assert reference is not None
    restored = _layer(d_in=60, d_out=20, rank=2, surrogate_samples=2, monitor_every=1)
    restored.load_state_dict(layer.state_dict())
    assert restored._monitor_reference == reference
    _train(restored, 2, torch.Generator().manual_seed(1))  # no TypeError on resume
