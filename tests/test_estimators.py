import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import get_tags
from torch import nn

from skhybrid import (BlackBoxLayer, CallableBlackBox, HybridClassifier, HybridRegressor,
                      make_black_box)
from skhybrid.callbacks import HeldOutScore
from skhybrid.layers import GRADIENT_MODES

SMALL = dict(black_box="slm", hidden_units=8, rank=2, zo_samples=4, max_epochs=3, random_state=0)


@pytest.fixture(scope="module")
def regression():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(80, 3))
    y = np.column_stack([X @ [1.0, -2.0, 0.5], np.tanh(X[:, 0])]) * 10 + 50
    return X, y


# ---------------------------------------------------------------- sklearn API
def test_pipeline_grid_search_and_cross_val_score_in_parallel(iris):
    X, y = iris
    pipe = make_pipeline(StandardScaler(), HybridClassifier(**SMALL))
    search = GridSearchCV(pipe, param_grid={"hybridclassifier__rank": [1, 2]}, cv=2, n_jobs=2)
    search.fit(X, y)
    assert search.best_params_["hybridclassifier__rank"] in (1, 2)
    assert search.best_estimator_[-1].net_.module_.black_box_layer.rank in (1, 2)
    scores = cross_val_score(pipe, X, y, cv=2, n_jobs=2)
    assert scores.shape == (2,) and np.all((0 <= scores) & (scores <= 1))
    # Work in worker processes equals work here: same seed, same fold scores.
    assert np.array_equal(scores, cross_val_score(pipe, X, y, cv=2, n_jobs=1))


def test_pickle_round_trip_keeps_predictions(iris):
    X, y = iris
    clf = HybridClassifier(**SMALL).fit(X, y)
    restored = pickle.loads(pickle.dumps(clf))
    assert np.array_equal(restored.predict_proba(X), clf.predict_proba(X))
    assert restored.n_queries_ == clf.n_queries_


def test_clone_gives_an_unfitted_estimator_with_the_same_params(iris):
    X, y = iris
    clf = HybridClassifier(**SMALL, black_box_options={"param_bits": 8}).fit(X, y)
    fresh = clone(clf)
    assert fresh.get_params() == clf.get_params()
    assert not hasattr(fresh, "net_")


@pytest.mark.parametrize("architecture", ["hidden", "front"])
def test_same_random_state_same_predictions_bit_for_bit(iris, architecture):
    X, y = iris
    params = dict(SMALL, black_box="mzi", architecture=architecture,
                  black_box_options={"noise": 0.01})
    a = HybridClassifier(**params).fit(X, y).predict_proba(X[:20])
    b = HybridClassifier(**params).fit(X, y).predict_proba(X[:20])
    c = HybridClassifier(**{**params, "random_state": 1}).fit(X, y).predict_proba(X[:20])
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_fit_leaves_the_global_torch_rng_alone(iris):
    X, y = iris
    state = torch.get_rng_state()
    HybridClassifier(**{**SMALL, "random_state": None}).fit(X, y)
    assert torch.equal(torch.get_rng_state(), state)


def test_a_random_state_instance_is_consumed_like_sklearn_does(iris):
    X, y = iris
    rng = np.random.RandomState(0)
    first = HybridClassifier(**{**SMALL, "random_state": rng}).fit(X, y).predict_proba(X)
    second = HybridClassifier(**{**SMALL, "random_state": rng}).fit(X, y).predict_proba(X)
    assert not np.array_equal(first, second)


# ------------------------------------------------------------- the training
def test_surrogate_updates_once_per_optimiser_step_and_never_in_predict(iris, monkeypatch):
    X, y = iris
    calls = []
    original = BlackBoxLayer.update_surrogate

    def counting(layer):
        calls.append(layer)
        return original(layer)

    monkeypatch.setattr(BlackBoxLayer, "update_surrogate", counting)
    clf = HybridClassifier(**{**SMALL, "batch_size": 32}).fit(X, y)
    steps = 3 * int(np.ceil(len(X) / 32))
    assert len(calls) == steps
    layer = clf.net_.module_.black_box_layer
    names = ("surrogate.U", "surrogate.S", "surrogate.V", "surrogate_params", "n_updates")
    surrogate = {k: layer.state_dict()[k].clone() for k in names}
    counts = layer.black_box.counts["surrogate"].copy()
    clf.predict_proba(X)
    clf.predict(X[:5])
    assert len(calls) == steps
    assert layer.black_box.counts["surrogate"] == counts
    assert all(torch.equal(v, layer.state_dict()[k]) for k, v in surrogate.items())


def test_black_box_parameters_get_their_own_learning_rate(iris):
    X, y = iris
    clf = HybridClassifier(**{**SMALL, "lr": 0.004, "black_box_lr": 0.05}).fit(X, y)
    groups = clf.net_.optimizer_.param_groups
    layer = clf.net_.module_.black_box_layer
    assert isinstance(clf.net_.optimizer_, torch.optim.Adam)
    assert [g["lr"] for g in groups] == [0.004, 0.05]
    assert {id(p) for p in groups[1]["params"]} == {id(layer.params), id(layer.scale)}


@pytest.mark.parametrize("gradient", sorted(GRADIENT_MODES))
def test_every_gradient_mode_fits(iris, gradient):
    X, y = iris
    clf = HybridClassifier(**{**SMALL, "gradient": gradient, "max_epochs": 2}).fit(X, y)
    layer = clf.net_.module_.black_box_layer
    moved = not torch.equal(layer.params.double(), layer.black_box.params0.float().double())
    assert moved == (gradient != "frozen")
    assert clf.score(X, y) > 0.3


def test_query_counts_and_history(iris):
    X, y = iris
    clf = HybridClassifier(**SMALL).fit(X, y)
    assert clf.n_iter_ == 3 and len(clf.history_) == 3
    n_queries = clf.history_[:, "n_queries"]
    assert n_queries == sorted(n_queries) and n_queries[-1] == clf.n_queries_["vectors"]
    assert clf.history_[-1, "n_configurations"] == clf.n_queries_["configurations"]
    # At least the forward pass: every training sample once per epoch.
    assert clf.n_queries_["vectors"] > 3 * len(X)
    assert 0 <= clf.history_[-1, "surrogate_error"] < 1.5
    digital = HybridClassifier(**{**SMALL, "black_box": "digital"}).fit(X, y)
    assert digital.n_queries_ == {"vectors": 0, "configurations": 0}
    assert type(digital.net_.module_.black_box_layer) is nn.Linear


def test_held_out_score_records_a_learning_curve_without_changing_the_fit(iris):
    X, y = iris
    plain = HybridClassifier(**SMALL).fit(X[:100], y[:100])
    monitored = HybridClassifier(**SMALL, callbacks=[HeldOutScore(X[100:], y[100:])])
    monitored.fit(X[:100], y[:100])
    scores = monitored.history_[:, "test_score"]
    assert len(scores) == 3 and all(0 <= s <= 1 for s in scores)
    assert scores[-1] == monitored.score(X[100:], y[100:])
    assert monitored.history_[-1, "test_score_queries"] == 50
    assert monitored.n_queries_ == plain.n_queries_
    assert np.array_equal(monitored.predict_proba(X), plain.predict_proba(X))
    assert monitored.callbacks[0].__dict__.get("estimator_") is None  # the param is untouched
    pickle.loads(pickle.dumps(monitored))


def test_early_stopping_holds_out_a_validation_split(iris):
    X, y = iris
    clf = HybridClassifier(**{**SMALL, "early_stopping": True, "validation_fraction": 0.2,
                              "n_iter_no_change": 1, "max_epochs": 30, "lr": 0.1},
                           callbacks=[HeldOutScore(X[:20], y[:20])]).fit(X, y)
    assert "valid_loss" in clf.history_[-1]
    assert clf.n_iter_ < 30  # patience 1 stops early
    # Stopping still lets every recording callback finish the last epoch.
    assert len(clf.history_[:, "test_score"]) == len(clf.history_[:, "n_queries"]) == clf.n_iter_
    # Restoring the best epoch's weights keeps the queries spent after it.
    assert clf.n_queries_["vectors"] == clf.history_[-1, "n_queries"]
    assert clf.n_queries_["configurations"] == clf.history_[-1, "n_configurations"]
    no_split = HybridClassifier(**SMALL).fit(X, y)
    assert "valid_loss" not in no_split.history_[-1]


# --------------------------------------------------------- inputs and outputs
def test_string_and_non_contiguous_labels(iris):
    X, y = iris
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    clf = HybridClassifier(**SMALL).fit(X, names)
    assert list(clf.classes_) == ["setosa", "versicolor", "virginica"]
    assert set(clf.predict(X)) <= set(names)
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), 3) and np.allclose(proba.sum(axis=1), 1)
    ints = HybridClassifier(**SMALL).fit(X, np.array([3, 5, 7])[y])
    assert list(ints.classes_) == [3, 5, 7] and set(ints.predict(X)) <= {3, 5, 7}
    # The label type does not change the training: same seed, same probabilities.
    assert np.array_equal(ints.predict_proba(X), proba)


def test_feature_names_from_a_dataframe(iris):
    pd = pytest.importorskip("pandas")
    X, y = iris
    frame = pd.DataFrame(X, columns=["sl", "sw", "pl", "pw"])
    clf = HybridClassifier(**SMALL).fit(frame, y)
    assert list(clf.feature_names_in_) == ["sl", "sw", "pl", "pw"]
    assert clf.n_features_in_ == 4
    assert clf.predict(frame).shape == (len(X),)


def test_regressor_keeps_the_shape_of_one_and_two_dimensional_targets(regression):
    X, Y = regression
    params = dict(SMALL, max_epochs=30, lr=0.01)
    one = HybridRegressor(**params).fit(X, Y[:, 0])
    assert one.predict(X).shape == (len(X),) and one.n_outputs_ == 1
    two = HybridRegressor(**params).fit(X, Y)
    assert two.predict(X).shape == (len(X), 2) and two.n_outputs_ == 2
    # Targets of any scale: standardised inside, predictions mapped back.
    assert one.score(X, Y[:, 0]) > 0.5
    assert abs(two.predict(X).mean(axis=0) - Y.mean(axis=0)).max() < 5
    assert not hasattr(one, "predict_proba")


# ---------------------------------------------------------- the black boxes
@pytest.mark.parametrize("name", ["matrix", "slm", "mrr", "mzi", "mzi_classical", "monarch"])
def test_every_named_black_box_trains(iris, name):
    X, y = iris
    clf = HybridClassifier(**{**SMALL, "black_box": name, "max_epochs": 2}).fit(X, y)
    assert clf.n_queries_["vectors"] > 0 and clf.predict(X).shape == (len(X),)


def test_a_black_box_instance_is_cloned_for_each_fit(iris):
    X, y = iris
    box = make_black_box("slm", 8, 8, random_state=3)
    clf = HybridClassifier(**{**SMALL, "black_box": box}).fit(X, y)
    assert clf.net_.module_.black_box_layer.black_box is not box
    assert box.n_queries == {"vectors": 0, "configurations": 0}
    with pytest.raises(ValueError, match="maps 8 -> 8"):
        HybridClassifier(**{**SMALL, "black_box": box, "hidden_units": 6}).fit(X, y)


def _scaled_identity(X, params):
    return params[0] * X


def test_a_callable_black_box_plugs_in(iris):
    X, y = iris
    box = CallableBlackBox(_scaled_identity, 4, 4, n_params=1, params0=[0.5])
    clf = HybridClassifier(**{**SMALL, "black_box": box, "architecture": "front",
                              "hidden_units": 4, "rank": 4}).fit(X, y)
    assert clf.n_queries_["vectors"] > 0
    pickle.loads(pickle.dumps(clf)).predict(X)


class _TwoBlackBoxes(nn.Module):
    def __init__(self, n_features, n_outputs, make_layer):
        super().__init__()
        self.first = make_layer(n_features, 6)
        self.second = make_layer(6, 6)
        self.readout = nn.Linear(6, n_outputs)

    def forward(self, x):
        return self.readout(torch.tanh(self.second(torch.tanh(self.first(x)))))


def test_a_custom_module_class_and_instance(iris):
    X, y = iris
    clf = HybridClassifier(**SMALL, module=_TwoBlackBoxes).fit(X, y)
    first, second = clf.net_.module_.first, clf.net_.module_.second
    assert isinstance(first, BlackBoxLayer) and isinstance(second, BlackBoxLayer)
    assert first.black_box.n_queries["vectors"] > 0 and second.black_box.n_queries["vectors"] > 0
    factory_built = _TwoBlackBoxes(4, 3, lambda i, o: nn.Linear(i, o))
    again = HybridClassifier(**SMALL, module=factory_built).fit(X, y)
    assert again.net_.module_ is not factory_built
    assert again.n_queries_ == {"vectors": 0, "configurations": 0}


def test_noise_sets_the_non_deterministic_tag():
    assert not get_tags(HybridClassifier()).non_deterministic
    assert get_tags(HybridClassifier(black_box_options={"noise": 0.01})).non_deterministic
    assert get_tags(HybridRegressor(black_box_options={"drift": 1e-3})).non_deterministic
    assert get_tags(HybridRegressor()).target_tags.multi_output


@pytest.mark.parametrize("param, value, message", [
    ("black_box", "laser", "black_box must be one of"),
    ("rank", 0, "rank must be an int >= 1"),
    ("surrogate_samples", "many", "surrogate_samples must be"),
    ("gradient", "magic", "gradient must be one of"),
    ("architecture", "sideways", "architecture must be one of"),
    ("lr", -1.0, "lr must be a float > 0"),
    ("validation_fraction", 1.5, "validation_fraction must be a float in"),
    ("black_box_options", {"colour": 1}, "invalid option"),
])
def test_invalid_parameters_are_named_at_fit(iris, param, value, message):
    X, y = iris
    est = HybridClassifier(**{**SMALL, param: value})  # __init__ only stores
    assert est.get_params()[param] == value
    with pytest.raises(ValueError, match=message):
        est.fit(X, y)


def test_verbose_prints_an_epoch_table_and_zero_is_silent(iris, capsys):
    X, y = iris
    HybridClassifier(**SMALL).fit(X, y)
    assert capsys.readouterr().out == ""
    HybridClassifier(**{**SMALL, "verbose": 1}).fit(X, y)
    out = capsys.readouterr().out
    assert "train_loss" in out and "n_queries" in out and "surrogate_error" in out
    assert "\x1b[" not in out  # no colour codes off a terminal
