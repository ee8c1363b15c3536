import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV

from skhybrid import HybridClassifier
from skhybrid.callbacks import HeldOutScore

mpl = pytest.importorskip("matplotlib", reason="matplotlib is not installed (the plot extra)")
plotting = pytest.importorskip("skhybrid.plotting")
from matplotlib.image import imread

SMALL = dict(black_box="slm", hidden_units=6, rank=2, zo_samples=4, max_epochs=4, random_state=0)


@pytest.fixture(scope="module")
def models(iris):
    X, y = iris
    monitored = HybridClassifier(**SMALL, early_stopping=True, n_iter_no_change=10,
                                 callbacks=[HeldOutScore(X[:30], y[:30])]).fit(X, y)
    exact = HybridClassifier(**SMALL, gradient="exact").fit(X, y)
    return {"astralora": monitored, "exact": exact}


@pytest.fixture(scope="module")
def search(iris):
    X, y = iris
    grid = {"rank": [1, 2, 3], "zo_samples": [2, 4]}
    return GridSearchCV(HybridClassifier(**{**SMALL, "max_epochs": 1}), grid, cv=2).fit(X, y)


def _assert_renders(ax, path):
    backend = mpl.get_backend()
    ax.figure.savefig(path, dpi=60)
    assert mpl.get_backend() == backend  # no global backend switch
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pixels = imread(path)[..., :3]
    drawn = np.any(pixels < 0.9, axis=-1).mean()  # share of non-white pixels
    assert 0.02 < drawn < 0.6, drawn
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 20  # lines, text, colours


def test_learning_curves_of_one_and_several_models(models, tmp_path):
    ax = plotting.plot_learning_curve(models["astralora"])
    assert ax.get_xlabel() == "epoch" and ax.get_ylabel() == "loss"
    assert [line.get_label() for line in ax.get_lines()] == ["train_loss", "valid_loss"]
    _assert_renders(ax, tmp_path / "loss.png")
    ax = plotting.plot_learning_curve(models["astralora"], ["test_score", "valid_acc"])
    assert ax.get_ylabel() == "score"
    ax = plotting.plot_learning_curve({k: m.history_ for k, m in models.items()})
    assert "exact: train_loss" in [line.get_label() for line in ax.get_lines()]
    _assert_renders(ax, tmp_path / "compare.png")
    with pytest.raises(ValueError, match="no column"):
        plotting.plot_learning_curve(models["exact"], ["valid_loss"])
    with pytest.raises(TypeError, match="fitted"):
        plotting.plot_learning_curve(HybridClassifier())


def test_surrogate_error(models, tmp_path):
    ax = plotting.plot_surrogate_error(models["astralora"])
    epochs, errors = ax.get_lines()[0].get_data()
    assert list(epochs) == list(range(1, models["astralora"].n_iter_ + 1))
    assert np.allclose(errors, models["astralora"].history_[:, "surrogate_error"])
    _assert_renders(ax, tmp_path / "surrogate.png")
    with pytest.raises(ValueError, match="surrogate_error"):
        plotting.plot_surrogate_error(models["exact"])  # the oracle uses no surrogate


def test_queries_per_epoch_add_up_to_the_total(models, tmp_path):
    model = models["astralora"]
    ax = plotting.plot_queries(model)
    _, per_epoch = ax.get_lines()[0].get_data()
    assert per_epoch.sum() == model.n_queries_["vectors"] and np.all(per_epoch > 0)
    _assert_renders(ax, tmp_path / "queries.png")
    ax = plotting.plot_queries(models, kind="configurations", cumulative=True)
    assert ax.get_lines()[0].get_data()[1][-1] == model.n_queries_["configurations"]
    with pytest.raises(ValueError, match="kind"):
        plotting.plot_queries(model, kind="photons")


def test_accuracy_against_rank_from_a_grid_search(search, tmp_path):
    ax = plotting.plot_rank_search(search)
    assert ax.get_xlabel() == "rank"
    labels = sorted(text.get_text() for text in ax.get_legend().get_texts())
    assert labels == ["zo_samples=2", "zo_samples=4"]
    _assert_renders(ax, tmp_path / "rank.png")
    # A nested parameter name (a pipeline step) is found from its last part.
    results = {k.replace("param_", "param_hybridclassifier__"): v
               for k, v in search.cv_results_.items()}
    ax = plotting.plot_rank_search(results)
    assert ax.get_xlabel() == "rank"
    with pytest.raises(ValueError, match="no single search parameter"):
        plotting.plot_rank_search(search, "width")


def test_drawing_on_given_axes(models):
    from matplotlib.figure import Figure

    fig = Figure()
    left, right = fig.subplots(1, 2)
    assert plotting.plot_learning_curve(models["exact"], ax=left) is left
    assert plotting.plot_queries(models["exact"], ax=right) is right
