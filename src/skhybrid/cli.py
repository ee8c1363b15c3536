"""The ``skhybrid`` command: a demo on digits, and training on your own CSV.

``skhybrid`` (or ``skhybrid demo``) trains a network with a simulated MZI
mesh on scikit-learn's digits, side by side with its digital twin (the same
network with an ``nn.Linear`` in place of the black box) and with the
``"exact"`` gradient oracle, then prints a comparison table and writes a
learning-curve PNG. ``skhybrid fit DATA.csv --target COLUMN`` does the same
on a CSV file and can save the fitted model.
"""

import argparse
import csv
import math
import os
import sys
import time

import numpy as np

__all__ = ["main"]

_OUT_DEFAULT = "skhybrid-out"


# ------------------------------------------------------------------ parsing
def _positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an int >= 1; got {text}")
    return value


def _positive_float(text):
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a float > 0; got {text}")
    return value


def _fraction(text):
    value = float(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be a float in (0, 1); got {text}")
    return value


def _delimiter(text):
    value = {"\\t": "\t", "tab": "\t"}.get(text, text)
    if len(value) != 1:
        raise argparse.ArgumentTypeError(
            f"must be a single character (or '\\t' for a tab); got {text!r}")
    return value


def _surrogate_samples(text):
    return "auto" if text == "auto" else _positive_int(text)


def _option(text):
    """``KEY=VALUE`` with VALUE read as an int, float, bool, None or string."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE; got {text!r}")
    key, raw = (part.strip() for part in text.split("=", 1))
    lowered = raw.lower()
    if lowered in ("none", "null"):
        value = None
    elif lowered in ("true", "false"):
        value = lowered == "true"
    else:
        try:
            value = int(raw)
        except ValueError:
            try:
                value = float(raw)
            except ValueError:
                value = raw
    return key, value


def _compare(text):
    names = [n.strip() for n in text.split(",") if n.strip()]
    if names == ["none"]:
        return []
    unknown = sorted(set(names) - set(_BASELINES))
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown baseline(s) {unknown}; choose from {sorted(_BASELINES)} or 'none'"
        )
    return names


#: Baseline name -> (estimator parameter overrides, label template).
_BASELINES = {
    "digital": ({"black_box": "digital"}, "digital twin (nn.Linear)"),
    "exact": ({"gradient": "exact"}, "{box} (exact gradients)"),
    "frozen": ({"gradient": "frozen"}, "{box} (frozen device)"),
}


def _build_parser():
    from .black_boxes import BLACK_BOXES
    from .layers import GRADIENT_MODES

    common = argparse.ArgumentParser(add_help=False)
    model = common.add_argument_group("model")
    model.add_argument("--black-box", default="mzi", choices=sorted(BLACK_BOXES) + ["digital"],
                       help="simulated device of the black-box layer; 'digital' puts an ordinary "
                            "nn.Linear there instead (default: %(default)s)")
    model.add_argument("--black-box-option", "-o", dest="black_box_options", action="append",
                       type=_option, default=[], metavar="KEY=VALUE",
                       help="device or imperfection option, repeatable: noise=0.01, "
                            "param_bits=8, input_bits=6, drift=1e-4, a=0.9 (mrr), ...")
    model.add_argument("--rank", type=_positive_int, default=8, metavar="N",
                       help="surrogate rank (default: %(default)s)")
    model.add_argument("--zo-samples", type=_positive_int, default=16, metavar="N",
                       help="zeroth-order directions per step, M_BB (default: %(default)s)")
    model.add_argument("--surrogate-samples", type=_surrogate_samples, default="auto",
                       metavar="N|auto",
                       help="surrogate probes per step, M_SM, or 'auto' (default: %(default)s)")
    model.add_argument("--gradient", default="astralora", choices=sorted(GRADIENT_MODES),
                       help="gradient mode of the black-box layer (default: %(default)s)")
    model.add_argument("--hidden-units", type=_positive_int, default=64, metavar="N",
                       help="width of the black-box layer (default: %(default)s)")
    model.add_argument("--architecture", default="hidden", choices=["hidden", "front"],
                       help="'hidden': black box between digital layers; 'front': black box "
                            "as the first layer, an optical front end (default: %(default)s)")
    train = common.add_argument_group("training")
    train.add_argument("--epochs", type=_positive_int, default=None, metavar="N",
                       help="training epochs (default: 20 for demo, 40 for fit)")
    train.add_argument("--batch-size", type=_positive_int, default=32, metavar="N",
                       help="samples per optimiser step (default: %(default)s)")
    train.add_argument("--lr", type=_positive_float, default=3e-3,
                       help="Adam learning rate of the digital layers (default: %(default)s)")
    train.add_argument("--black-box-lr", type=_positive_float, default=0.01,
                       help="Adam learning rate of the black-box parameters (default: %(default)s)")
    train.add_argument("--early-stopping", action="store_true",
                       help="hold out --validation-fraction of the training data and stop "
                            "when its loss stops improving")
    train.add_argument("--validation-fraction", type=_fraction, default=0.1, metavar="F",
                       help="share held out for early stopping (default: %(default)s)")
    train.add_argument("--random-state", type=int, default=0, metavar="SEED",
                       help="seed of the split, the networks and the devices "
                            "(default: %(default)s)")
    train.add_argument("--threads", type=_positive_int, default=1, metavar="N",
                       help="torch CPU threads; the small matrices here run fastest "
                            "single-threaded (default: %(default)s)")
    report = common.add_argument_group("report")
    report.add_argument("--compare", type=_compare, default=["digital", "exact"],
                        metavar="NAMES",
                        help="comma-separated baselines trained side by side: digital "
                             "(nn.Linear twin), exact (autograd oracle), frozen (device never "
                             "trained), or 'none' (default: digital,exact)")
    report.add_argument("--test-size", type=_fraction, default=0.2, metavar="F",
                        help="share of the data held out for the test score (default: %(default)s)")
    report.add_argument("--out", default=_OUT_DEFAULT, metavar="DIR",
                        help="folder for the learning-curve PNG (default: %(default)s)")
    report.add_argument("--no-plot", action="store_true", help="do not write the PNG")
    report.add_argument("--quiet", "-q", action="store_true",
                        help="no epoch tables, only the comparison table")

    parser = argparse.ArgumentParser(
        prog="skhybrid",
        description="Train neural networks with a forward-only black-box layer (a simulated "
                    "photonic device) and compare them with their digital twin.",
        epilog="Without a command, 'skhybrid' runs the demo. 'skhybrid demo --help', "
               "'skhybrid fit --help' and 'skhybrid bench --help' list every option.",
    )
    from . import __version__

    parser.add_argument("--version", action="version", version=f"skhybrid {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="{demo,fit,bench}")
    # Listed for --help; `main` hands `bench` to skhybrid.bench before parsing.
    commands.add_parser("bench", help="reproduce the paper's experiments in miniature "
                                      "(skhybrid bench --help)", add_help=False)
    demo = commands.add_parser(
        "demo", parents=[common], help="digits with the MZI mesh vs digital twin vs exact oracle",
        description="Train on scikit-learn's digits (1797 8x8 images, 10 classes) with the "
                    "chosen black box, side by side with the baselines; print the epoch "
                    "tables and a comparison table, and write a learning-curve PNG. "
                    "About a minute on 2 CPU cores with the defaults.",
    )
    demo.set_defaults(command="demo")
    fit = commands.add_parser(
        "fit", parents=[common], help="train on a CSV file",
        description="Train on a CSV file with a header row. Non-numeric feature columns are "
                    "one-hot encoded; rows with empty cells are dropped. The task is "
                    "classification when the target is non-numeric or has at most 20 "
                    "distinct integer values, regression otherwise, unless --task says.",
    )
    fit.add_argument("data", metavar="DATA.csv", help="CSV file with a header row")
    fit.add_argument("--target", required=True, metavar="COLUMN", help="name of the target column")
    fit.add_argument("--task", choices=["auto", "classification", "regression"], default="auto",
                     help="force the task instead of inferring it from the target "
                          "(default: %(default)s)")
    fit.add_argument("--drop", action="append", default=[], metavar="COLUMN",
                     help="ignore this column (an id, say); repeatable")
    fit.add_argument("--delimiter", type=_delimiter, default=",", metavar="CHAR",
                     help="CSV field separator (default: %(default)r)")
    fit.add_argument("--save", metavar="PATH.skops",
                     help="save the fitted black-box model here in the safe skops format "
                          "('.skops' is appended if missing); load it with "
                          "skhybrid.persistence.load")
    return parser


# --------------------------------------------------------------------- data
#: Cells read as missing (case-insensitive); rows holding one are dropped.
MISSING_CELLS = ("", "na", "n/a", "nan", "null", "?")


def read_csv(path, target, *, drop=(), delimiter=","):
    """Read a CSV with a header into ``(X, y, feature_names, n_dropped_rows)``.

    Numeric columns are kept as floats, the other feature columns are one-hot
    encoded (``column=value``), and rows with a missing cell (empty, ``NA``,
    ``N/A``, ``NaN``, ``null`` or ``?``) are dropped. The target column is
    returned as floats when every value is numeric, as strings otherwise.

    Raises ``ValueError`` naming the file, and the line or column where it
    applies, for what would otherwise be read wrongly: a file that is not
    UTF-8 text, duplicate or empty column names, rows of the wrong length,
    a column of numbers with a few cells that are not (a typo would
    otherwise one-hot encode the whole column), and inf or overflowing
    numbers.
    """
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle, delimiter=delimiter)
            rows = [(reader.line_num, row) for row in reader if any(c.strip() for c in row)]
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}); save it as a "
            "UTF-8 CSV file"
        ) from None
    except csv.Error as exc:
        raise ValueError(f"{path}: malformed CSV: {exc}") from None
    if len(rows) < 2:
        raise ValueError(f"{path}: needs a header row and at least one data row")
    header = [name.strip() for name in rows[0][1]]
    if target not in header:
        hint = ""
        if len(header) == 1:
            seps = [sep for sep in (";", "\t", "|", ",") if sep in header[0] and sep != delimiter]
            if seps:
                hint = f" (one column only: is the separator {seps[0]!r}? pass --delimiter)"
        raise ValueError(f"{path}: no column {target!r}; the columns are {header}{hint}")
    unnamed = [j + 1 for j, name in enumerate(header) if not name and name not in drop]
    if unnamed:
        raise ValueError(
            f"{path}: column {unnamed[0]} has no name (a saved DataFrame index?); name it "
            "in the header, or drop it with --drop ''"
        )
    duplicated = sorted({name for name in header if header.count(name) > 1})
    if duplicated:
        raise ValueError(f"{path}: duplicate column name(s) {duplicated}; rename them")
    missing = sorted(set(drop) - set(header))
    if missing:
        raise ValueError(
            f"{path}: cannot drop {missing}: no such column(s); the columns are {header}"
        )
    lines = [line for line, _ in rows[1:]]
    body = [[c.strip() for c in row] for _, row in rows[1:]]
    short = [line for line, row in zip(lines, body) if len(row) != len(header)]
    if short:
        raise ValueError(
            f"{path}: line {short[0]} has a different number of fields than the header "
            f"({len(header)})"
        )
    keep = [all(c.lower() not in MISSING_CELLS for c in row) for row in body]
    complete = [row for row, k in zip(body, keep) if k]
    lines = [line for line, k in zip(lines, keep) if k]
    n_dropped = len(body) - len(complete)
    if not complete:
        raise ValueError(f"{path}: every row has a missing cell")
    columns = {name: [row[j] for row in complete] for j, name in enumerate(header)}
    for name in header:
        if name not in drop:
            _check_column(path, name, columns[name], lines)

    features, names = [], []
    for name in header:
        if name == target or name in drop:
            continue
        numeric = _as_floats(columns[name])
        if numeric is not None:
            features.append(numeric)
            names.append(name)
        else:
            values = np.asarray(columns[name])
            for level in sorted(set(values)):
                features.append((values == level).astype(np.float64))
                names.append(f"{name}={level}")
    if not features:
        raise ValueError(f"{path}: no feature columns besides the target {target!r}")
    X = np.column_stack(features)
    y_numeric = _as_floats(columns[target])
    y = y_numeric if y_numeric is not None else np.asarray(columns[target])
    return X, y, names, n_dropped


def _as_floats(values):
    try:
        return np.asarray([float(v) for v in values], dtype=np.float64)
    except ValueError:
        return None


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


def _check_column(path, name, values, lines):
    """A column must be all numbers (and finite), or text: name the cells that break that."""
    numeric = [_is_number(v) for v in values]
    n_numeric = sum(numeric)
    if n_numeric == len(values):
        bad = [i for i, v in enumerate(values) if not math.isfinite(float(v))]
        if bad:
            raise ValueError(
                f"{path}: column {name!r} holds {values[bad[0]]!r} on line {lines[bad[0]]}; "
                "numbers must be finite"
            )
    elif 2 * n_numeric > len(values):
        bad = [i for i, ok in enumerate(numeric) if not ok]
        raise ValueError(
            f"{path}: column {name!r} holds numbers, except {values[bad[0]]!r} on line "
            f"{lines[bad[0]]} ({len(bad)} such cell(s)); fix them, leave them empty to drop "
            f"those rows, or --drop {name!r}"
        )


def infer_task(y):
    """``"classification"`` for a non-numeric target or at most 20 distinct integers, else
    ``"regression"``."""
    if y.dtype.kind not in "fiu":
        return "classification"
    if np.all(np.isfinite(y)) and np.all(y == np.round(y)) and len(np.unique(y)) <= 20:
        return "classification"
    return "regression"


# ------------------------------------------------------------------ running
def _estimator_params(args, epochs):
    return dict(
        black_box=args.black_box,
        black_box_options=dict(args.black_box_options) or None,
        rank=args.rank,
        zo_samples=args.zo_samples,
        surrogate_samples=args.surrogate_samples,
        gradient=args.gradient,
        hidden_units=args.hidden_units,
        architecture=args.architecture,
        max_epochs=epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        black_box_lr=args.black_box_lr,
        early_stopping=args.early_stopping,
        validation_fraction=args.validation_fraction,
        random_state=args.random_state,
        verbose=0 if args.quiet else 1,
    )


def _runs(args, epochs):
    """``[(label, params)]``: the black-box model first, then each baseline."""
    params = _estimator_params(args, epochs)
    box = args.black_box
    label = "digital twin (nn.Linear)" if box == "digital" else f"{box} ({args.gradient})"
    runs = [(label, params)]
    for name in args.compare:
        overrides, template = _BASELINES[name]
        if box == "digital" or (name != "digital" and params["gradient"] == overrides["gradient"]):
            continue  # the same model as the first run
        runs.append((template.format(box=box), {**params, **overrides}))
    return runs


def _train_all(runs, task, X_train, y_train, X_test, y_test, quiet):
    from .callbacks import HeldOutScore
    from .estimators import HybridClassifier, HybridRegressor

    cls = HybridClassifier if task == "classification" else HybridRegressor
    results = []
    for label, params in runs:
        monitor = HeldOutScore(X_test, y_test, name="test_score")
        est = cls(**params, callbacks=[("held_out", monitor)])
        if not quiet:
            print(f"\n== {label} ==", flush=True)
        start = time.perf_counter()
        est.fit(X_train, y_train)
        seconds = time.perf_counter() - start
        results.append(dict(label=label, estimator=est, score=est.score(X_test, y_test),
                            seconds=seconds))
    return results


def format_table(headers, rows, align=None):
    """Rows of strings as an aligned text table (first column left, others right)."""
    align = align or ["<"] + [">"] * (len(headers) - 1)
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows)]
    line = "  ".join("-" * w for w in widths)

    def fmt(row):
        return "  ".join(f"{str(x):{a}{w}}" for x, a, w in zip(row, align, widths)).rstrip()

    return "\n".join([fmt(headers), line] + [fmt(r) for r in rows])


def _comparison(results, task):
    score_name = "test accuracy" if task == "classification" else "test R^2"
    headers = ["model", score_name, "BB queries (vectors)", "configurations", "fit time (s)"]
    rows = []
    for r in results:
        q = r["estimator"].n_queries_
        score = f"{100 * r['score']:.1f} %" if task == "classification" else f"{r['score']:.3f}"
        rows.append([r["label"], score, f"{q['vectors']:,}", f"{q['configurations']:,}",
                     f"{r['seconds']:.1f}"])
    return format_table(headers, rows)


def _plot(results, task, path):
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print("\nno learning-curve PNG: matplotlib is not installed; install it with "
              "pip install 'skhybrid[plot]' (or pip install matplotlib)", file=sys.stderr)
        return None
    # The Agg canvas directly: no pyplot, so no global backend or figure state.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(10, 4))
    FigureCanvasAgg(fig)
    ax_loss, ax_score = fig.subplots(1, 2)
    for r in results:
        history = r["estimator"].history_
        epochs = history[:, "epoch"]
        ax_loss.plot(epochs, history[:, "train_loss"], label=r["label"])
        ax_score.plot(epochs, history[:, "test_score"], label=r["label"])
    ax_loss.set(xlabel="epoch", ylabel="training loss", title="training loss")
    ax_loss.set_yscale("log")
    ax_score.set(xlabel="epoch", ylabel="test accuracy" if task == "classification" else "test R^2",
                 title="held-out score")
    ax_score.legend()
    for ax in (ax_loss, ax_score):
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout()
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fig.savefig(path, dpi=100)
    return path


def _check_writable_folder(folder, what):
    """Fail before training, not after it, when ``folder`` cannot be written."""
    folder = os.path.abspath(folder or ".")
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"cannot create the {what} folder {folder!r}: {exc.strerror}") from None
    if not os.access(folder, os.W_OK):
        raise ValueError(f"the {what} folder {folder!r} is not writable")


def _report(results, task, args, stem, before_plot=None):
    print("\n" + _comparison(results, task))
    if before_plot is not None:
        # What must not be lost (the saved model) comes before the picture.
        before_plot()
    if not args.no_plot:
        path = _plot(results, task, os.path.join(args.out, f"{stem}-learning-curve.png"))
        if path:
            print(f"\nlearning curves written to {path}")


def _split(X, y, task, args):
    from sklearn.model_selection import train_test_split

    if len(y) < 2:
        raise ValueError(
            f"needs at least 2 complete rows, one to train on and one to test; got {len(y)}"
        )
    stratify = None
    if task == "classification":
        _, counts = np.unique(y, return_counts=True)
        n_test = math.ceil(args.test_size * len(y))
        if counts.min() >= 2 and n_test >= len(counts):
            stratify = y
    return train_test_split(X, y, test_size=args.test_size, random_state=args.random_state,
                            stratify=stratify)


def run_demo(args):
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    epochs = args.epochs or 20
    X_train, X_test, y_train, y_test = _split(X, y, "classification", args)
    print(f"digits: {len(X_train)} training and {len(X_test)} test images, 64 pixels, 10 classes; "
          f"{epochs} epochs per model")
    results = _train_all(_runs(args, epochs), "classification", X_train, y_train, X_test, y_test,
                         args.quiet)
    _report(results, "classification", args, "demo")
    return 0


def run_fit(args):
    if args.save:
        try:
            import skops.io  # noqa: F401  (checked before training, not after)
        except ImportError:
            raise ValueError("--save needs skops: pip install 'skhybrid[persistence]'") from None
        _check_writable_folder(os.path.dirname(args.save), "--save")
    if not args.no_plot:
        _check_writable_folder(args.out, "--out")
    X, y, names, n_dropped = read_csv(args.data, args.target, drop=args.drop,
                                      delimiter=args.delimiter)
    task = infer_task(y) if args.task == "auto" else args.task
    if task == "regression" and y.dtype.kind not in "fiu":
        raise ValueError(f"--task regression needs a numeric target; {args.target!r} is not")
    if task == "classification" and len(y) >= 2 and len(np.unique(y)) < 2:
        # (Fewer than two rows gets its own message from the split below.)
        raise ValueError(f"the target {args.target!r} has a single class "
                         f"({np.unique(y)[0]}): there is nothing to classify")
    epochs = args.epochs or 40
    X_train, X_test, y_train, y_test = _split(X, y, task, args)
    dropped = f", {n_dropped} rows with empty cells dropped" if n_dropped else ""
    detail = f"{len(np.unique(y))} classes" if task == "classification" else "numeric target"
    print(f"{args.data}: {len(X)} rows{dropped}, {X.shape[1]} features, target {args.target!r} "
          f"({task}, {detail}); {len(X_train)} training and {len(X_test)} test rows, "
          f"{epochs} epochs per model")
    results = _train_all(_runs(args, epochs), task, X_train, y_train, X_test, y_test, args.quiet)

    def save_model():
        if not args.save:
            return
        model = results[0]["estimator"]
        model.feature_names_ = np.asarray(names, dtype=object)
        from .persistence import save

        path = args.save if args.save.endswith(".skops") else args.save + ".skops"
        save(model, path)
        print(f"\nmodel saved to {path} (skops; load it with skhybrid.persistence.load; it "
              f"takes the encoded columns listed in .feature_names_)")

    _report(results, task, args, os.path.splitext(os.path.basename(args.data))[0],
            before_plot=save_model)
    return 0


def main(argv=None):
    """Entry point of the ``skhybrid`` console script; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "bench":
        # The benchmarks have their own parser and set their workers' threads.
        from .bench import main as bench_main

        return bench_main(argv[1:])
    if not argv or argv[0] not in ("demo", "fit", "-h", "--help", "--version"):
        argv.insert(0, "demo")
    parser = _build_parser()
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    try:
        return run_demo(args) if args.command == "demo" else run_fit(args)
    except (ValueError, OSError) as exc:
        print(f"skhybrid: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nskhybrid: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
