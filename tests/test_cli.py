import argparse
import sys

import numpy as np
import pytest
from sklearn.datasets import load_iris

from skhybrid import cli

FAST = ["--epochs", "1", "--hidden-units", "8", "--rank", "2", "--zo-samples", "4"]


@pytest.fixture
def iris_csv(tmp_path):
    X, y = load_iris(return_X_y=True)
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    lines = ["id,sepal length,sepal width,petal length,petal width,colour,species"]
    for i, (row, label) in enumerate(zip(X, names)):
        colour = "red" if i % 2 else "blue"
        cells = [str(i)] + [f"{v:g}" for v in row] + [colour, label]
        if i == 7:
            cells[2] = ""  # one incomplete row, dropped
        lines.append(",".join(cells))
    path = tmp_path / "iris.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("argv", [["--help"], ["demo", "--help"], ["fit", "--help"]])
def test_help_documents_every_option(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    parser = cli._build_parser()
    if argv[0] == "--help":
        assert "demo" in text and "fit" in text
        return
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for action in sub.choices[argv[0]]._actions:
        for flag in action.option_strings:
            assert flag in text
        if action.option_strings and action.help is not argparse.SUPPRESS:
            assert action.help


def test_no_arguments_runs_the_demo_with_the_mzi_mesh(monkeypatch):
    seen = {}
    monkeypatch.setattr(cli, "run_demo", lambda args: seen.setdefault("args", args) and 0)
    assert cli.main([]) == 0
    args = seen["args"]
    assert args.command == "demo" and args.black_box == "mzi"
    assert args.compare == ["digital", "exact"]
    assert cli._runs(args, 20)[1][1]["black_box"] == "digital"
    assert cli._runs(args, 20)[2][1]["gradient"] == "exact"


def test_demo_prints_the_comparison_and_writes_the_learning_curve(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    assert cli.main(["demo", *FAST, "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "== mzi (astralora) ==" in out and "train_loss" in out
    table = out[out.index("model "):]
    for label in ("mzi (astralora)", "digital twin (nn.Linear)", "mzi (exact gradients)"):
        assert label in table
    assert "test accuracy" in table and "fit time (s)" in table
    png = tmp_path / "demo-learning-curve.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_fit_on_a_csv_saves_a_model_that_predicts(iris_csv, tmp_path, capsys):
    pytest.importorskip("skops")
    model_path = tmp_path / "model.skops"
    code = cli.main(["fit", str(iris_csv), "--target", "species", "--drop", "id",
                     "--black-box", "slm", *FAST, "--compare", "digital", "--quiet",
                     "--no-plot", "--save", str(model_path)])
    assert code == 0
    out = capsys.readouterr().out
    assert "classification" in out and "1 rows with empty cells dropped" in out
    assert "train_loss" not in out  # --quiet: no epoch tables
    assert "slm (astralora)" in out and "digital twin" in out and "exact" not in out
    from skhybrid.persistence import load

    model = load(model_path)  # the safe format: no extra types to trust
    assert list(model.feature_names_) == ["sepal length", "sepal width", "petal length",
                                          "petal width", "colour=blue", "colour=red"]
    assert set(model.predict(np.zeros((2, 6)))) <= {"setosa", "versicolor", "virginica"}


def test_fit_infers_regression_or_obeys_task(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    rng = np.random.RandomState(0)
    X = rng.normal(size=(60, 2))
    path = tmp_path / "reg.csv"
    path.write_text("a,b,y\n" + "\n".join(f"{a},{b},{3 * a - b + 0.1 * a * b}" for a, b in X))
    argv = ["fit", str(path), "--target", "y", "--black-box", "matrix", *FAST,
            "--compare", "none", "--quiet", "--out", str(tmp_path)]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "regression" in out and "test R^2" in out
    assert (tmp_path / "reg-learning-curve.png").exists()
    assert cli.main([*argv, "--task", "regression", "--no-plot"]) == 0
    assert cli.infer_task(np.array([0.0, 1.0, 2.0, 1.0])) == "classification"
    assert cli.infer_task(np.array(["a", "b"])) == "classification"
    assert cli.infer_task(np.linspace(0, 1, 50)) == "regression"


def test_fit_reports_a_missing_target_column(iris_csv, capsys):
    assert cli.main(["fit", str(iris_csv), "--target", "nope", "--no-plot"]) == 2
    assert "no column 'nope'" in capsys.readouterr().err


def test_missing_matplotlib_is_reported_clearly(iris_csv, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    code = cli.main(["fit", str(iris_csv), "--target", "species", "--black-box", "slm",
                     *FAST, "--compare", "none", "--quiet", "--out", str(tmp_path)])
    assert code == 0
    assert "matplotlib is not installed" in capsys.readouterr().err
    assert not list(tmp_path.glob("*.png"))


def test_format_table_aligns_columns():
    text = cli.format_table(["model", "score"], [["a", "1.0"], ["longer name", "22.5"]])
    lines = text.splitlines()
    assert len({len(line) for line in lines}) == 1
    assert lines[2].startswith("a ") and lines[2].endswith(" 1.0")


def test_black_box_options_are_parsed_into_values():
    assert cli._option("noise=0.01") == ("noise", 0.01)
    assert cli._option("param_bits=8") == ("param_bits", 8)
    assert cli._option("flag=true") == ("flag", True)
    with pytest.raises(argparse.ArgumentTypeError):
        cli._option("noise")


def test_unwritable_out_fails_before_training(tmp_path, capsys):
    from skhybrid.cli import main

    data = tmp_path / "iris.csv"
    from sklearn.datasets import load_iris

    frame = load_iris(as_frame=True).frame
    frame.to_csv(data, index=False)
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    code = main(["fit", str(data), "--target", "target", "--epochs", "1", "--compare", "none",
                 "-q", "--out", str(blocker / "sub")])
    assert code == 2
    err = capsys.readouterr()
    assert "--out" in err.err and "model" not in err.out  # nothing was trained


def test_single_class_target_is_an_error(tmp_path, capsys):
    from skhybrid.cli import main

    data = tmp_path / "one.csv"
    data.write_text("a,b,label\n1,2,x\n3,4,x\n5,6,x\n7,8,x\n")
    assert main(["fit", str(data), "--target", "label", "-q", "--no-plot"]) == 2
    assert "single class" in capsys.readouterr().err
