import pickle

import numpy as np
import pytest
import torch
from torch import nn

from skhybrid import BlackBoxLayer, make_black_box
from skhybrid.modules import (ARCHITECTURES, FrontNetwork, HiddenNetwork, LayerFactory,
                              Standardize, build_network, instantiate_module)


def _factory(**kwargs):
    kwargs.setdefault("black_box", "slm")
    kwargs.setdefault("rank", 2)
    kwargs.setdefault("zo_samples", 4)
    kwargs.setdefault("random_state", 0)
    return LayerFactory(**kwargs)


def test_standardize_fits_mean_and_scale_and_keeps_constant_features():
    X = np.column_stack([np.arange(10.0) + 100, np.full(10, 5.0)])
    layer = Standardize(2).fit(X)
    Z = layer(torch.as_tensor(X, dtype=torch.float32))
    assert torch.allclose(Z[:, 0].mean(), torch.tensor(0.0), atol=1e-5)
    assert torch.allclose(Z[:, 0].std(unbiased=False), torch.tensor(1.0), atol=1e-5)
    assert torch.equal(Z[:, 1], torch.zeros(10))  # constant column: scale 1, no division by 0
    restored = Standardize(2)
    restored.load_state_dict(layer.state_dict())
    assert torch.equal(restored(Z), layer(Z))


@pytest.mark.parametrize("architecture", sorted(ARCHITECTURES))
def test_networks_map_features_to_outputs(architecture):
    net = build_network(architecture, 5, 3, _factory(), hidden_units=6)
    assert net(torch.randn(4, 5)).shape == (4, 3)
    layer = net.black_box_layer
    assert isinstance(layer, BlackBoxLayer)
    expected = (6, 6) if architecture == "hidden" else (5, 6)
    assert (layer.d_in, layer.d_out) == expected


def test_unknown_architecture_is_rejected_by_name():
    with pytest.raises(ValueError, match="architecture must be one of"):
        build_network("sideways", 5, 3, _factory())


def test_front_network_gives_bounded_device_inputs_on_unscaled_data():
    # check_fit_idempotent feeds X ~ N(100, 1): nothing may overflow.
    torch.manual_seed(0)
    X = np.random.RandomState(0).normal(100, 1, size=(20, 4))
    net = FrontNetwork(4, 2, _factory(black_box="mrr"), hidden_units=6)
    seen = []
    net.black_box_layer.register_forward_pre_hook(lambda m, inp: seen.append(inp[0]))
    out = net(torch.as_tensor(X, dtype=torch.float32))  # unfitted standardisation: raw inputs
    assert torch.isfinite(out).all()
    assert seen[0].abs().max() <= 1


def test_nothing_after_the_black_box_is_flat_at_zero():
    # The SLM starts near A = 0; the gradient must still reach the first layer.
    torch.manual_seed(0)
    net = HiddenNetwork(4, 2, _factory(black_box="slm", gradient="exact"), hidden_units=6)
    net(torch.randn(8, 4)).pow(2).sum().backward()
    assert net.input_layer.weight.grad.abs().sum() > 0
    assert net.black_box_layer.params.grad.abs().sum() > 0


def test_digital_factory_builds_a_plain_linear_layer():
    layer = _factory(black_box="digital")(5, 3)
    assert type(layer) is nn.Linear and layer.bias is None
    assert (layer.in_features, layer.out_features) == (5, 3)


def test_factory_clips_the_rank_and_seeds_each_layer_differently():
    factory = _factory(black_box="matrix", rank=8)
    a, b = factory(3, 5), factory(3, 5)
    assert a.rank == 3
    assert not torch.equal(a.params, b.params)
    again = _factory(black_box="matrix", rank=8)(3, 5)
    assert torch.equal(again.params, a.params)  # same seed, same first layer


def test_factory_clones_a_given_black_box_and_checks_its_widths():
    box = make_black_box("slm", 4, 3, random_state=1)
    factory = _factory(black_box=box)
    layer = factory(4, 3)
    assert layer.black_box is not box
    assert torch.equal(layer.params.double(), box.params0.float().double())
    with pytest.raises(ValueError, match="maps 4 -> 3"):
        factory(5, 3)


def test_factory_passes_device_and_layer_options():
    layer = _factory(black_box="slm", black_box_options={"noise": 0.1},
                     layer_options={"zo_scheme": "central"})(4, 3)
    assert layer.black_box.imperfections.noise == 0.1
    assert layer.zo_scheme == "central"


def test_factory_pickles():
    factory = pickle.loads(pickle.dumps(_factory()))
    assert isinstance(factory(4, 3), BlackBoxLayer)


class _Custom(nn.Module):
    def __init__(self, n_features, make_layer):
        super().__init__()
        self.layer = make_layer(n_features, 2)

    def forward(self, x):
        return self.layer(x)


def test_instantiate_module_passes_only_accepted_arguments():
    net = instantiate_module(_Custom, 4, 7, _factory())
    assert isinstance(net.layer, BlackBoxLayer) and net.layer.d_in == 4


def test_instantiate_module_copies_an_instance_and_resets_its_counters():
    original = _Custom(4, _factory())
    with torch.no_grad():
        original(torch.randn(3, 4))
    assert original.layer.black_box.n_queries["vectors"] == 3
    copy = instantiate_module(original, 4, 2, None)
    assert copy is not original and copy.layer.black_box.n_queries["vectors"] == 0
    assert original.layer.black_box.n_queries["vectors"] == 3
