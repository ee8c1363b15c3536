"""Accuracy on a clean device against a noisy, quantised, drifting one.

Trains :class:`~skhybrid.HybridClassifier` on digits (and FSDD spoken digits,
when the data is present) with each simulated device, twice per seed: on the
ideal device, and with 1 % multiplicative measurement noise on every query,
8-bit parameter quantisation and a slow random-walk drift of the parameters
(``1e-4`` per reprogramming). Everything else, including the seed, is the
same, so the difference is the cost of the imperfections. The estimators'
defaults for an imperfect device apply (``mu`` from
:meth:`skhybrid.BlackBox.suggested_mu`, forward differences, the
surrogate monitor on under drift); ``--ablation`` compares them with other
choices of step and difference scheme.

Run from the repository root (about 8 minutes on 2 CPU cores)::

    PYTHONPATH=src python benchmarks/noise.py --jobs 2
    PYTHONPATH=src python benchmarks/noise.py --ablation --jobs 2   # mu / scheme choices

Results are printed as a Markdown table and written, with every run, to
``--out`` (default ``skhybrid-bench/noise``: ``runs.json`` and ``summary.md``).
"""

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import numpy as np

#: The imperfect device: noise on every query, 8-bit phases, slow drift.
NOISY = {"noise": 0.01, "param_bits": 8, "drift": 1e-4}

#: --ablation: name -> layer_options (None: the estimator's defaults).
ABLATION = {
    "default (forward, mu = suggested_mu)": None,
    "forward, mu = noise ** 1/3": {"mu": NOISY["noise"] ** (1 / 3)},
    "central, mu = noise ** 1/3": {"mu": NOISY["noise"] ** (1 / 3), "zo_scheme": "central"},
    "forward, mu = device default (1e-4)": {"mu": 1e-4},
}


def _load(name):
    if name == "digits":
        from skhybrid.datasets import load_digits

        return load_digits()
    from skhybrid.datasets import load_fsdd

    return load_fsdd(split="customary", pooled=True, download_if_missing=False)


def _run(spec):
    import torch

    torch.set_num_threads(1)
    from skhybrid import HybridClassifier
    from skhybrid.layers import black_box_layers

    data = _load(spec["dataset"])
    clf = HybridClassifier(
        black_box=spec["device"], architecture=spec["architecture"],
        hidden_units=spec["hidden_units"], max_epochs=spec["epochs"],
        black_box_options=NOISY if spec["noisy"] else None,
        layer_options=spec.get("layer_options"), random_state=spec["seed"])
    start = time.perf_counter()
    clf.fit(data.X_train, data.y_train)
    seconds = time.perf_counter() - start
    layers = black_box_layers(clf.net_.module_)
    return {**spec, "accuracy": float(clf.score(data.X_test, data.y_test)),
            "queries": clf.n_queries_, "n_rebuilds": sum(layer.n_rebuilds for layer in layers),
            "mu": [layer.mu for layer in layers], "seconds": round(seconds, 2)}


def _specs(args):
    datasets = args.datasets
    if "fsdd" in datasets:
        try:
            _load("fsdd")
        except (FileNotFoundError, ImportError, OSError) as exc:
            print(f"skipping FSDD: {exc}", file=sys.stderr)
            datasets = [d for d in datasets if d != "fsdd"]
    base = dict(hidden_units=args.hidden_units, epochs=args.epochs)
    if args.ablation:
        return [dict(base, dataset="digits", device=device, architecture="front", seed=seed,
                     noisy=name != "clean", variant=name, layer_options=options)
                for device in args.devices for seed in range(args.seeds)
                for name, options in [("clean", None), *ABLATION.items()]]
    return [dict(base, dataset=dataset, device=device, architecture=arch, seed=seed,
                 noisy=noisy, variant="noisy" if noisy else "clean")
            for dataset in datasets for device in args.devices
            for arch in args.architectures for seed in range(args.seeds)
            for noisy in (False, True)]


def _summary(runs, ablation):
    groups = {}
    for r in runs:
        groups.setdefault((r["dataset"], r["device"], r["architecture"]), {}) \
            .setdefault(r["variant"], []).append(r["accuracy"])
    lines = []
    if ablation:
        lines += ["| device | variant | accuracy % (mean ± sd) | vs clean (pp) |",
                  "| --- | --- | --- | --- |"]
        for (_, device, _), variants in groups.items():
            clean = 100 * np.mean(variants["clean"])
            for name, accs in variants.items():
                acc = 100 * np.asarray(accs)
                lines.append(f"| {device} | {name} | {acc.mean():.1f} ± {acc.std():.1f} | "
                             f"{acc.mean() - clean:+.1f} |")
        return "\n".join(lines)
    lines += ["| dataset | device | architecture | clean % (mean ± sd) | noisy % (mean ± sd) | "
              "loss (pp) |", "| --- | --- | --- | --- | --- | --- |"]
    for (dataset, device, arch), variants in groups.items():
        clean, noisy = (100 * np.asarray(variants[k]) for k in ("clean", "noisy"))
        lines.append(f"| {dataset} | {device} | {arch} | {clean.mean():.1f} ± {clean.std():.1f} | "
                     f"{noisy.mean():.1f} ± {noisy.std():.1f} | "
                     f"{clean.mean() - noisy.mean():+.1f} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", type=lambda s: s.split(","), default=["digits", "fsdd"])
    parser.add_argument("--devices", type=lambda s: s.split(","), default=["slm", "mrr", "mzi"])
    parser.add_argument("--architectures", type=lambda s: s.split(","),
                        default=["front", "hidden"])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--hidden-units", type=int, default=32)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--ablation", action="store_true",
                        help="compare choices of mu and difference scheme (digits, front)")
    parser.add_argument("--out", default=os.path.join("skhybrid-bench", "noise"))
    parser.add_argument("--summarise", metavar="RUNS.json",
                        help="only print the table of an earlier run's runs file")
    args = parser.parse_args(argv)
    if args.summarise:
        with open(args.summarise) as handle:
            runs = json.load(handle)
        print(_summary(runs, any("layer_options" in r for r in runs)))
        return 0

    specs = _specs(args)
    start = time.perf_counter()
    print(f"{len(specs)} runs, {args.jobs} job(s)", flush=True)
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs, mp_context=get_context("spawn")) as pool:
            runs = list(pool.map(_run, specs))
    else:
        runs = [_run(spec) for spec in specs]
    table = _summary(runs, args.ablation)
    minutes = (time.perf_counter() - start) / 60
    header = (f"{args.epochs} epochs, hidden_units={args.hidden_units}, {args.seeds} seeds; "
              f"noisy = {NOISY}; {minutes:.1f} min with {args.jobs} job(s)")
    print(f"\n{header}\n\n{table}")
    os.makedirs(args.out, exist_ok=True)
    stem = "ablation" if args.ablation else "summary"
    with open(os.path.join(args.out, f"{stem}.md"), "w") as handle:
        handle.write(f"{header}\n\n{table}\n")
    with open(os.path.join(args.out, f"{stem}-runs.json"), "w") as handle:
        json.dump(runs, handle, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
