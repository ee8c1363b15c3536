"""Bad and awkward input: each kind either works correctly or fails early and clearly.

Every case is a row of the catalogue below. "Fails early" means a
``ValueError`` or ``TypeError`` raised by the estimator's own validation,
before a network is built, whose message names the problem; "works" means
the result is checked, not only that nothing raised.
"""

import re
import warnings

import numpy as np
import pytest
import scipy.sparse as sp

from skhybrid import HybridClassifier, HybridRegressor, make_black_box

FAST = dict(black_box="slm", hidden_units=8, rank=2, zo_samples=4, max_epochs=1, random_state=0)


def _data(n=40, d=4, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, d))
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0)
    return X, y


@pytest.fixture(scope="module")
def fitted():
    X, y = _data()
    return HybridClassifier(**FAST).fit(X, y), X, y


def _clf(**params):
    return HybridClassifier(**{**FAST, **params})


def _reg(**params):
    return HybridRegressor(**{**FAST, **params})


# ------------------------------------------------ fails early, names the problem
def _with(X, index, value):
    X = X.astype(object if isinstance(value, str) else float)
    X[index] = value
    return X


X0, Y0 = _data()
FAILS = {
    # kind: (estimator, X, y, exception, message)
    "NaN in X": (_clf, _with(X0, (3, 1), np.nan), Y0, ValueError, "Input X contains NaN"),
    "inf in X": (_clf, _with(X0, (0, 0), np.inf), Y0, ValueError, "Input X contains infinity"),
    "a value that overflows float32": (_clf, _with(X0, (0, 0), 1e39), Y0, ValueError,
                                       "too large for dtype"),
    "NaN in y": (_reg, X0, np.where(Y0 == 1, np.nan, 0.5), ValueError, "Input y contains NaN"),
    "inf in y": (_reg, X0, np.where(Y0 == 1, np.inf, 0.5), ValueError,
                 "Input y contains infinity"),
    "NaN label for the classifier": (_clf, X0, np.where(Y0 == 1, np.nan, 0.0), ValueError,
                                     "Input y contains NaN"),
    "empty X": (_clf, np.empty((0, 4)), np.empty(0), ValueError, "0 sample"),
    "no features": (_clf, np.empty((40, 0)), Y0, ValueError, "0 feature"),
    "strings in X": (_clf, _with(X0, (5, 2), "red"), Y0, ValueError,
                     "column 2 holds 'red'.*OneHotEncoder"),
    "complex X": (_clf, X0 + 1j, Y0, ValueError, "Complex data not supported"),
    "sparse X": (_clf, sp.csr_matrix(X0), Y0, TypeError, "dense data is required"),
    "3-D X": (_clf, X0.reshape(40, 2, 2), Y0, ValueError,
              r"must be 2-D.*\(40, 2, 2\).*reshape"),
    "1-D X": (_clf, X0[:, 0], Y0, ValueError, "Expected 2D array"),
    "ragged rows": (_clf, [[1.0, 2.0], [3.0]], [0, 1], ValueError, "inhomogeneous|sequence"),
    "y of the wrong length": (_clf, X0, Y0[:-1], ValueError, "inconsistent numbers of samples"),
    "continuous y for the classifier": (_clf, X0, X0[:, 0], ValueError,
                                        "Unknown label type: continuous"),
    "multi-label y for the classifier": (_clf, X0, np.column_stack([Y0, Y0]), ValueError,
                                         "y should be a 1d array"),
    "labels of mixed types": (_clf, X0, np.array([1, "a"] * 20, dtype=object), ValueError,
                              "Unknown label type"),
    "text y for the regressor": (_reg, X0, np.array(["low", "high"])[Y0 % 2], ValueError,
                                 "needs a numeric y; it holds '(low|high)'.*HybridClassifier"),
}


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")
@pytest.mark.parametrize("kind", list(FAILS))
def test_bad_data_fails_early_with_a_named_problem(kind, monkeypatch):
    make, X, y, error, message = FAILS[kind]
    est = make()
    # Early: no network is ever built.
    monkeypatch.setattr(type(est), "_build_module", _never_called)
    with pytest.raises(error, match=message):
        est.fit(X, y)


def _never_called(*args, **kwargs):
    raise AssertionError("validation should have failed before the network was built")


PARAMETERS = {
    # kind: (parameters, exception, message)
    "rank larger than the layer": (dict(rank=9), ValueError,
                                   r"rank must be an int in \[1, hidden_units\] = \[1, 8\]"),
    "zero zo_samples": (dict(zo_samples=0), ValueError, "zo_samples must be an int >= 1; got 0"),
    "negative zo_samples": (dict(zo_samples=-3), ValueError, "zo_samples must be an int >= 1"),
    "fractional zo_samples": (dict(zo_samples=2.5), ValueError, "zo_samples must be an int"),
    "unknown black-box name": (dict(black_box="laser"), ValueError,
                               r"black_box must be one of \['matrix', 'monarch', 'mrr', 'mzi', "
                               r"'mzi_classical', 'slm', 'digital'\].*got 'laser'"),
    "black box of the wrong type": (dict(black_box=42), TypeError, "black_box must be one of"),
    "unknown black-box option": (dict(black_box_options={"colour": 1}), ValueError,
                                 r"invalid option\(s\) \['colour'\].*valid options are"),
    "NaN noise level": (dict(black_box_options={"noise": float("nan")}), ValueError,
                        "noise must be a finite float >= 0"),
    "options for a black-box instance": (
        dict(black_box=make_black_box("slm", 8, 8), black_box_options={"noise": 0.1}),
        ValueError, "black_box_options apply to a named black box"),
    "unknown layer option": (dict(layer_options={"speed": 2}), ValueError,
                             r"unknown layer_options \['speed'\]; valid options.*monitor_every"),
    "layer option that is an estimator parameter": (
        dict(layer_options={"rank": 2}), ValueError, r"layer_options \['rank'\]: set these"),
    "invalid mu in layer_options": (dict(layer_options={"mu": -1.0}), ValueError,
                                    "mu must be None or a float > 0"),
    "zero epochs": (dict(max_epochs=0), ValueError, "max_epochs must be an int >= 1"),
    "negative learning rate": (dict(lr=-0.1), ValueError, "lr must be a float > 0"),
    "warm_start that is not a bool": (dict(warm_start="yes"), ValueError,
                                      "warm_start must be a bool"),
    "unknown compute device": (dict(device="abacus"), ValueError, "device must name a torch"),
}


@pytest.mark.parametrize("kind", list(PARAMETERS))
def test_bad_parameters_fail_at_fit_with_a_named_problem(kind):
    params, error, message = PARAMETERS[kind]
    est = _clf(**params)  # __init__ only stores
    with pytest.raises(error, match=message):
        est.fit(X0, Y0)


def test_a_cuda_device_without_cuda_is_named():
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(ValueError, match="needs CUDA.*device='cpu'"):
        _clf(device="cuda").fit(X0, Y0)


# --------------------------------------------------------------- pandas frames
def test_dataframes_with_and_without_categorical_columns():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(X0, columns=["a", "b", "c", "d"])
    clf = _clf().fit(frame, Y0)
    assert list(clf.feature_names_in_) == ["a", "b", "c", "d"]
    assert np.array_equal(clf.predict_proba(frame), _clf().fit(X0, Y0).predict_proba(X0))
    with pytest.raises(ValueError, match="feature names should match"):
        clf.predict(frame.rename(columns={"d": "e"}))
    with pytest.raises(ValueError, match="feature names should match"):
        clf.predict(frame[["d", "c", "b", "a"]])
    # Categorical (even with numeric categories), text and date columns are named.
    for column, values, kind in [
        ("colour", pd.Categorical(np.array(["red", "blue"])[Y0 % 2]), "category"),
        ("grade", pd.Categorical(Y0), "category"),
        ("name", np.array(["ann", "bob"], dtype=object)[Y0 % 2], "(object|str)"),
        ("when", pd.date_range("2024-01-01", periods=40), "datetime"),
    ]:
        bad = frame.assign(**{column: values})
        with pytest.raises(ValueError, match=f"non-numeric column.*'{column}' \\({kind}"):
            _clf().fit(bad, Y0)
    # Numbers stored as objects, and booleans, are numbers.
    odd = frame.assign(e=frame["a"].astype(object), f=frame["b"] > 0)
    assert _clf().fit(odd, Y0).n_features_in_ == 6


# ------------------------------------------------------ awkward but it works
def test_one_sample_and_a_single_class():
    X, y = _data()
    one = _clf().fit(X[:1], y[:1])
    assert list(one.classes_) == [y[0]] and set(one.predict(X)) == {y[0]}
    reg = _reg().fit(X[:1], [3.5])
    assert np.allclose(reg.predict(X[:3]), 3.5, atol=5.0) and np.isfinite(reg.predict(X)).all()
    single = _clf().fit(X, np.full(len(X), "only"))
    assert list(single.predict(X[:4])) == ["only"] * 4
    assert single.predict_proba(X[:4]).shape == (4, 1)


@pytest.mark.parametrize("architecture", ["hidden", "front"])
def test_one_feature(architecture):
    X, y = _data()
    clf = _clf(architecture=architecture).fit(X[:, :1], y)
    assert clf.predict(X[:, :1]).shape == (len(X),)
    if architecture == "front":
        # The black box sees the single feature: its rank is clipped to 1.
        assert clf.net_.module_.black_box_layer.rank == 1


def test_constant_features():
    X, y = _data()
    X[:, 1] = 7.0
    proba = _clf().fit(X, y).predict_proba(X)
    assert np.isfinite(proba).all()
    constant = np.ones((40, 4))
    assert np.isfinite(_clf().fit(constant, y).predict_proba(constant)).all()


@pytest.mark.parametrize("transform", [lambda X: X * 1e6, lambda X: X + 1e6,
                                       lambda X: X * 1e-6],
                         ids=["scaled 1e6", "offset 1e6", "scaled 1e-6"])
def test_large_and_tiny_values_train_as_standardised_data(transform):
    X, y = _data()
    reference = _clf().fit(X, y).predict_proba(X)
    proba = _clf().fit(transform(X), y).predict_proba(transform(X))
    assert np.abs(proba - reference).max() < 1e-3


@pytest.mark.parametrize("dtype", [np.int64, np.int8, bool, np.float16, object])
def test_other_dtypes(dtype):
    X, y = _data()
    Xd = np.round(X * 3).astype(dtype) if dtype is not object else X.astype(object)
    # The same values as float: the same model.
    expected = _clf().fit(np.asarray(Xd, dtype=np.float32), y).predict_proba(X)
    assert np.array_equal(_clf().fit(Xd, y).predict_proba(X), expected)


def test_numbers_written_as_strings_and_lists():
    X, y = _data()
    expected = _clf().fit(X.astype(np.float32), y).predict_proba(X)
    assert np.array_equal(_clf().fit(X.astype(np.float32).astype(str), y).predict_proba(X),
                          expected)
    assert np.array_equal(_clf().fit(X.tolist(), y.tolist()).predict_proba(X), expected)


def test_labels_as_a_column_vector_warn_and_work():
    from sklearn.exceptions import DataConversionWarning

    X, y = _data()
    with pytest.warns(DataConversionWarning):
        clf = _clf().fit(X, y.reshape(-1, 1))
    assert np.array_equal(clf.predict_proba(X), _clf().fit(X, y).predict_proba(X))


def test_a_batch_larger_than_the_data():
    X, y = _data(n=10)
    assert _clf(batch_size=1000).fit(X, y).n_iter_ == 1


def test_verbose_may_be_a_bool(capsys):
    _clf(verbose=False).fit(X0, Y0)
    assert capsys.readouterr().out == ""


# ------------------------------------------------------------- at predict time
def test_predict_checks_its_input(fitted):
    clf, X, y = fitted
    with pytest.raises(ValueError, match="X has 3 features, but HybridClassifier is expecting 4"):
        clf.predict(X[:, :3])
    with pytest.raises(ValueError, match="Input X contains NaN"):
        clf.predict(_with(X, (0, 0), np.nan))
    with pytest.raises(ValueError, match="0 sample"):
        clf.predict(np.empty((0, 4)))
    with pytest.raises(ValueError, match="must be 2-D"):
        clf.predict_proba(X.reshape(40, 2, 2))


def test_unseen_labels_at_score_count_as_errors_with_a_warning(fitted):
    clf, X, y = fitted
    relabelled = np.where(y == 2, 9, y)
    expected = np.mean(clf.predict(X) == relabelled)
    with pytest.warns(UserWarning, match=r"1 label\(s\) never seen in fit, such as \[9\]"):
        assert clf.score(X, relabelled) == expected
    with pytest.raises(ValueError, match="y holds text labels such as.*trained on numeric"):
        clf.score(X, np.array(["a", "b"])[y % 2])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clf.score(X, y)  # known labels: no warning


# ------------------------------------------------------ the user's arrays
def test_the_users_arrays_are_never_modified():
    pd = pytest.importorskip("pandas")
    X, y = _data()
    X32 = np.ascontiguousarray(X, dtype=np.float32)  # validate_data would not copy it
    frame = pd.DataFrame(X, columns=list("abcd"))
    Y2 = np.column_stack([X[:, 0], X[:, 1] * 1e3])
    copies = [a.copy() for a in (X32, y, Y2)] + [frame.copy()]
    clf = _clf().fit(X32, y)
    clf.predict(X32)
    clf.score(X32, y)
    _clf().fit(frame, y).predict(frame)
    _reg().fit(X32, Y2).score(X32, Y2)
    for before, after in zip(copies, (X32, y, Y2, frame)):
        assert np.array_equal(np.asarray(before), np.asarray(after))


def test_read_only_arrays_work_without_torch_warnings():
    X, y = _data()
    X = np.ascontiguousarray(X, dtype=np.float32)
    X.setflags(write=False)
    y.setflags(write=False)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*not writ")
        clf = _clf().fit(X, y)
        clf.predict(X)
    assert not X.flags.writeable


# ----------------------------------------------------------- the command line
CSV_FAILS = {
    # kind: (file contents, extra arguments, message)
    "a missing target column": ("a,b,label\n1,2,0\n3,4,1\n", [],
                                r"no column 'y'; the columns are \['a', 'b', 'label'\]"),
    "a row of the wrong length": ("a,b,y\n1,2,0\n\n3,4\n5,6,1\n", [],
                                  r"line 4 has a different number of fields than the header"),
    "a header only": ("a,b,y\n", [], "needs a header row and at least one data row"),
    "an empty file": ("", [], "needs a header row and at least one data row"),
    "a non-numeric cell in a numeric column": (
        "a,b,y\n1,2,0\n3,4x,1\n5,6,0\n7,8,1\n", [],
        r"column 'b' holds numbers, except '4x' on line 3 \(1 such cell\(s\)\).*--drop 'b'"),
    "an infinite number": ("a,b,y\n1,inf,0\n3,4,1\n", [], "column 'b' holds 'inf' on line 2"),
    "duplicate column names": ("a,a,y\n1,2,0\n3,4,1\n", [], r"duplicate column name\(s\) \['a'\]"),
    "an unnamed column": (",a,y\n0,2,0\n1,4,1\n", [], "column 1 has no name"),
    "another separator": ("a;b;y\n1;2;0\n3;4;1\n", [], "is the separator ';'\\? pass --delimiter"),
    "only the target column": ("y\n0\n1\n", [], "no feature columns besides the target 'y'"),
    "every row incomplete": ("a,b,y\n1,,0\n,4,1\n", [], "every row has a missing cell"),
    "a single complete row": ("a,b,y\n1,2,0\n3,NA,1\n", [], "needs at least 2 complete rows"),
    "a text target for --task regression": ("a,y\n1,low\n2,high\n3,low\n",
                                            ["--task", "regression"], "needs a numeric target"),
    "an unknown device option": ("a,b,y\n1,2,0\n3,4,1\n5,6,0\n7,8,1\n", ["-o", "colour=1"],
                                 r"invalid option\(s\) \['colour'\]"),
}


@pytest.mark.parametrize("kind", list(CSV_FAILS))
def test_bad_csv_files_exit_2_with_a_named_problem(kind, tmp_path, capsys):
    from skhybrid import cli

    text, extra, message = CSV_FAILS[kind]
    path = tmp_path / "data.csv"
    path.write_text(text)
    argv = ["fit", str(path), "--target", "y", "--black-box", "slm", "--hidden-units", "4",
            "--rank", "2", "--epochs", "1", "--compare", "none", "--quiet", "--no-plot", *extra]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("skhybrid: error: ")
    assert re.search(message, err), err


def test_csv_files_that_are_not_text_or_not_there(tmp_path, capsys):
    from skhybrid import cli

    binary = tmp_path / "image.csv"
    binary.write_bytes(b"a,b,y\n\xff\xfe\x00,2,0\n")
    assert cli.main(["fit", str(binary), "--target", "y"]) == 2
    assert "image.csv: not UTF-8 text" in capsys.readouterr().err
    assert cli.main(["fit", str(tmp_path / "missing.csv"), "--target", "y"]) == 2
    assert "No such file or directory" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["fit", str(binary), "--target", "y", "--delimiter", ";;"])
    assert "must be a single character" in capsys.readouterr().err


def test_csv_text_columns_are_one_hot_encoded_and_missing_markers_dropped(tmp_path):
    from skhybrid import cli

    path = tmp_path / "data.csv"
    path.write_text("size,colour,y\n1.5,red,a\n2,blue,b\n?,red,a\n3,N/A,b\n4,green,a\n")
    X, y, names, n_dropped = cli.read_csv(path, "y")
    assert names == ["size", "colour=blue", "colour=green", "colour=red"]
    assert X.tolist() == [[1.5, 0, 0, 1], [2, 1, 0, 0], [4, 0, 1, 0]]
    assert y.tolist() == ["a", "b", "a"] and n_dropped == 2
    tabbed = tmp_path / "tabbed.tsv"
    tabbed.write_text("a\tb\ty\n1\t2\t0\n3\t4\t1\n")
    args = cli._build_parser().parse_args(["fit", str(tabbed), "--target", "y",
                                           "--delimiter", "\\t"])
    assert cli.read_csv(tabbed, "y", delimiter=args.delimiter)[0].shape == (2, 2)
