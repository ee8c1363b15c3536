import ast
import pathlib
import pickle
import zipfile

import joblib
import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn

from skhybrid import CallableBlackBox, HybridClassifier, HybridRegressor, make_black_box
from skhybrid.callbacks import HeldOutScore

sio = pytest.importorskip("skops.io", reason="skops is not installed (the persistence extra)")
persistence = pytest.importorskip("skhybrid.persistence")

SMALL = dict(black_box="slm", hidden_units=6, rank=2, zo_samples=4, max_epochs=3, random_state=0)


@pytest.fixture(scope="module")
def noisy_classifier(iris):
    # Noise and drift: predictions depend on the random streams and the
    # device's current setting, so an exact match needs all of them restored.
    X, y = iris
    return HybridClassifier(**SMALL, black_box_options={"noise": 0.02, "drift": 1e-3},
                            early_stopping=True, n_iter_no_change=5,
                            callbacks=[HeldOutScore(X[:20], y[:20])]).fit(X, y)


def _layer(est):
    return est.net_.module_.black_box_layer


def _untimed(history):
    return [{k: v for k, v in row.items() if k != "dur"} for row in history]


def _assert_same_model(a, b, X):
    assert np.array_equal(a.predict_proba(X) if hasattr(a, "predict_proba") else a.predict(X),
                          b.predict_proba(X) if hasattr(b, "predict_proba") else b.predict(X))
    assert a.n_queries_ == b.n_queries_
    assert _layer(a).black_box.counts == _layer(b).black_box.counts
    assert _untimed(a.history_) == _untimed(b.history_)
    assert a.get_params().keys() == b.get_params().keys()


def test_skops_round_trip_keeps_predictions_counters_and_history(noisy_classifier, iris, tmp_path):
    X, _ = iris
    path = persistence.save(noisy_classifier, tmp_path / "model.skops")
    # Every type in the file is on the explicit list the helper trusts.
    assert set(sio.get_untrusted_types(file=path)) <= set(persistence.TRUSTED_TYPES)
    assert persistence.untrusted_types(path) == []
    loaded = persistence.load(path)
    assert type(loaded) is HybridClassifier and loaded.history_ is loaded.net_.history_
    # Twice from the same state: the noise streams and the drift are restored too.
    original = pickle.loads(pickle.dumps(noisy_classifier))
    _assert_same_model(loaded, original, X)
    _assert_same_model(loaded, original, X)
    assert loaded.history_[-1, "test_score"] == noisy_classifier.history_[-1, "test_score"]
    assert loaded.net_.optimizer_.state_dict()["state"].keys() \
        == noisy_classifier.net_.optimizer_.state_dict()["state"].keys()
    # A loaded model fits again like a fresh one.
    assert np.array_equal(loaded.fit(X, iris[1]).predict_proba(X),
                          HybridClassifier(**loaded.get_params()).fit(X, iris[1]).predict_proba(X))


def test_a_loaded_model_continues_training_like_the_original(iris, tmp_path):
    X, y = iris
    if "warm_start" not in HybridClassifier().get_params():
        pytest.skip("this version has no warm_start")
    clf = HybridClassifier(**SMALL, black_box_options={"noise": 0.02}, early_stopping=True,
                           n_iter_no_change=50, warm_start=True).fit(X, y)
    loaded = persistence.load(persistence.save(clf, tmp_path / "model.skops"))
    original = pickle.loads(pickle.dumps(clf)).fit(X, y)
    loaded.fit(X, y)
    assert loaded.n_iter_ == original.n_iter_ == 2 * SMALL["max_epochs"]
    _assert_same_model(loaded, original, X)


def test_the_file_holds_no_pickle(noisy_classifier, tmp_path):
    path = persistence.save(noisy_classifier, tmp_path / "model.skops")
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        assert "schema.json" in names
        for name in names:
            assert name == "schema.json" or name.endswith(".npy"), name
            if name.endswith(".npy"):
                with archive.open(name) as handle:
                    np.load(handle, allow_pickle=False)


def test_pickle_and_joblib_still_work(noisy_classifier, iris, tmp_path):
    X, _ = iris
    reference = pickle.loads(pickle.dumps(noisy_classifier))
    joblib.dump(noisy_classifier, tmp_path / "model.joblib")
    for restored in (pickle.loads(pickle.dumps(noisy_classifier)),
                     joblib.load(tmp_path / "model.joblib")):
        # The native state: the same skorch net object graph, not a rebuild.
        assert type(restored.net_) is type(noisy_classifier.net_)
        _assert_same_model(restored, pickle.loads(pickle.dumps(reference)), X)


def test_a_pipeline_with_a_regressor_and_a_black_box_instance(iris, tmp_path):
    X, _ = iris
    Y = np.column_stack([X[:, 0] * 3 + 10, X[:, 1]])
    box = make_black_box("mrr", 6, 6, random_state=1, param_bits=6)
    pipe = make_pipeline(StandardScaler(), HybridRegressor(**{**SMALL, "black_box": box}))
    pipe.fit(X, Y)
    path = persistence.save(pipe, tmp_path / "pipe.skops")
    loaded = persistence.load(path)
    assert np.array_equal(loaded.predict(X), pipe.predict(X))
    assert loaded.predict(X).shape == (len(X), 2)
    # The parameter is an equivalent device, not the fitted one.
    assert type(loaded[-1].black_box) is type(box)
    assert loaded[-1].black_box.n_queries == {"vectors": 0, "configurations": 0}


def test_a_fitted_grid_search_and_an_unfitted_estimator(iris, tmp_path):
    X, y = iris
    search = GridSearchCV(HybridClassifier(**{**SMALL, "max_epochs": 1}), {"rank": [1, 2]},
                          cv=2).fit(X, y)
    loaded = persistence.load(persistence.save(search, tmp_path / "search.skops"))
    assert loaded.best_params_ == search.best_params_
    assert np.array_equal(loaded.predict(X), search.predict(X))
    fresh = persistence.load(persistence.save(HybridRegressor(rank=3), tmp_path / "u.skops"))
    assert fresh.get_params() == HybridRegressor(rank=3).get_params()
    assert not hasattr(fresh, "net_")


def device_function(X, params):
    """A stand-in for a real instrument (module level: skops names it)."""
    return params[0] * X


def test_your_own_function_must_be_trusted_explicitly(iris, tmp_path):
    X, y = iris
    box = CallableBlackBox(device_function, 4, 4, n_params=1, params0=[0.5])
    clf = HybridClassifier(**{**SMALL, "black_box": box, "architecture": "front",
                              "hidden_units": 4}).fit(X, y)
    path = persistence.save(clf, tmp_path / "device.skops")
    name = f"{__name__}.device_function"
    assert persistence.untrusted_types(path) == [name]
    with pytest.raises(persistence.UntrustedTypesError, match="device_function") as info:
        persistence.load(path)
    assert info.value.types == [name]
    loaded = persistence.load(path, trusted=[name])
    assert loaded.black_box.fn is device_function
    assert np.array_equal(loaded.predict_proba(X), clf.predict_proba(X))


class Gadget:
    """An arbitrary class: loading one would run its __setstate__."""

    created = []

    def __setstate__(self, state):
        Gadget.created.append(state)


def test_anything_else_is_refused_before_it_is_created(tmp_path):
    gadget = Gadget()
    gadget.payload = "x"
    path = tmp_path / "gadget.skops"
    sio.dump({"model": gadget}, path)
    with pytest.raises(persistence.UntrustedTypesError, match="Gadget"):
        persistence.load(path)
    assert Gadget.created == []
    # skorch's nets pickle their modules into bytes: never trusted.
    assert not [t for t in persistence.TRUSTED_TYPES if "NeuralNet" in t or "HybridNet" in t]


def test_a_module_instance_cannot_be_saved_safely(iris, tmp_path):
    X, y = iris
    module = nn.Sequential(nn.Linear(4, 3))
    clf = HybridClassifier(**SMALL, module=module).fit(X, y)
    with pytest.raises(TypeError, match="as a class"):
        persistence.save(clf, tmp_path / "m.skops")
    pickle.loads(pickle.dumps(clf))  # pickle still works for it


def test_trusted_types_exist():
    import importlib

    for name in persistence.TRUSTED_TYPES:
        module, _, attr = name.rpartition(".")
        assert isinstance(getattr(importlib.import_module(module), attr), type), name


def test_every_torch_load_in_the_package_is_weights_only():
    root = pathlib.Path(__file__).resolve().parents[1] / "src" / "skhybrid"
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            func = getattr(node, "func", None)
            if (isinstance(node, ast.Call) and isinstance(func, ast.Attribute)
                    and func.attr == "load" and getattr(func.value, "id", "") == "torch"):
                weights_only = [k for k in node.keywords if k.arg == "weights_only"]
                assert weights_only and getattr(weights_only[0].value, "value", None) is True, \
                    f"{path.name}:{node.lineno}: torch.load without weights_only=True"


def test_loading_a_file_that_is_not_skops_names_the_problem(tmp_path):
    junk = tmp_path / "junk.skops"
    junk.write_text("not a zip")
    with pytest.raises(ValueError, match="not a skops file"):
        persistence.load(junk)
