"""``skhybrid bench``: the paper's image, audio and language experiments in miniature.

Tasks (all offline; see :mod:`skhybrid.datasets` for where the data lives):

``image``
    scikit-learn's digits: the default MLP and a small CNN.
``audio``
    FSDD spoken digits from log-mel features: an MLP on pooled features and
    a 1-D conv net on the frame sequence; customary and speaker-held-out
    splits.
``text``
    Tiny Shakespeare: a small character-level transformer whose last
    feed-forward block is one black-box layer.
``sweep``
    Accuracy against surrogate rank and ZO samples, on digits and FSDD.
``scaling``
    Time of a training step and a surrogate update against the layer width.
``all``
    Every task, then the goals table.

Every classification task runs a ``standard`` and a ``bottleneck`` setting,
each device with the modes digital (``nn.Linear`` twin), ``exact``,
``frozen``, ``paper`` (the reference's settings, emulated by
:class:`~skhybrid.bench.paper.PaperBlackBoxLayer`) and ``astralora`` (ours),
plus the ablations ``svd``, ``zo_only`` and ``surrogate_only`` where a
digital layer before the black box makes them differ. Results go to
``--out`` (default ``skhybrid-bench``): per task ``runs.json`` (every run,
every field), ``runs.csv``, ``summary.md`` and PNG plots; ``goals.md`` holds
the goals evaluated from whatever tasks have results there.

Examples
--------
``skhybrid bench image --quick`` (seconds), ``skhybrid bench all --jobs 2``
(the full run of ``docs/results.md``).
"""

import argparse
import json
import os
import sys
import time

__all__ = ["TASKS", "add_arguments", "build_parser", "main", "run", "run_task", "spec_key"]

TASKS = ("image", "audio", "text", "sweep", "scaling")
_OUT_DEFAULT = "skhybrid-bench"


def _task_module(name):
    from . import audio, image, scaling, sweep, text

    return {"image": image, "audio": audio, "text": text, "sweep": sweep,
            "scaling": scaling}[name]


def _positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an int >= 1; got {text}")
    return value


def add_arguments(parser):
    """Add the ``bench`` arguments to an ``argparse`` parser."""
    parser.add_argument("task", choices=TASKS + ("all",),
                        help="which experiment to run ('all' runs every one)")
    parser.add_argument("--quick", action="store_true",
                        help="a tiny version of each task (seconds; what the tests run)")
    parser.add_argument("--out", default=_OUT_DEFAULT, metavar="DIR",
                        help="output folder (default: %(default)s)")
    parser.add_argument("--jobs", type=_positive_int, default=1,
                        help="worker processes, one torch thread each (default: %(default)s)")
    parser.add_argument("--seeds", type=_positive_int, default=3,
                        help="seeds per configuration (default: %(default)s)")
    parser.add_argument("--quiet", "-q", action="store_true", help="no per-run progress lines")
    parser.add_argument("--reuse", action="store_true",
                        help="take runs identical to this task's from the other tasks' "
                             "runs.json in --out instead of training them again (a sweep "
                             "point equal to an image or audio run)")
    parser.add_argument("--report-only", action="store_true",
                        help="run nothing: rewrite the summaries, plots and goals from the "
                             "runs.json files already in --out")
    return parser


def build_parser(subparsers=None):
    """The ``bench`` parser: standalone, or added to ``subparsers`` of the ``skhybrid`` CLI."""
    kwargs = dict(description="Reproduce the paper's image, audio and language experiments in "
                              "miniature, with baselines and ablations.")
    if subparsers is None:
        parser = argparse.ArgumentParser(prog="skhybrid bench", **kwargs)
    else:
        parser = subparsers.add_parser("bench", help="run the benchmarks", **kwargs)
    return add_arguments(parser)


def _load_all(out):
    results = []
    for task in TASKS:
        path = os.path.join(out, task, "runs.json")
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as handle:
                results += json.load(handle)
    return results


def spec_key(spec):
    """What makes two specs (or results) the same run, whichever task asks for it."""
    from ._runner import spec_of

    return json.dumps({k: v for k, v in spec_of(spec).items() if k not in ("task", "sweep")},
                      sort_keys=True)


def run_task(task, *, quick=False, out=_OUT_DEFAULT, jobs=1, seeds=3, verbose=True, reuse=None):
    """Run one task, write its files under ``out/task``, and return its results.

    ``reuse`` maps :func:`spec_key` to results already measured in this
    invocation (``all`` passes the earlier tasks' results): a sweep point
    identical to a run of the image or audio task is taken from there, marked
    ``reused``, instead of being trained again.
    """
    from ._runner import estimated_cost, run_specs
    from .report import write_results

    module = _task_module(task)
    folder = os.path.join(out, task)
    os.makedirs(folder, exist_ok=True)
    start = time.perf_counter()
    if task == "scaling":
        from .scaling import measure, measure_fit_ratios

        results = measure(widths=(32, 64) if quick else (64, 128, 256, 512, 1024, 2048),
                          repeats=2 if quick else None, verbose=verbose)
        if quick:
            results += measure_fit_ratios(("slm",), ("front",), epochs=1, repeats=1,
                                          verbose=verbose)
        else:
            results += measure_fit_ratios(verbose=verbose)
    else:
        log = os.path.join(folder, "runs.jsonl")
        open(log, "w").close()
        specs = module.specs(quick=quick, seeds=seeds)
        results = [None] * len(specs)
        pending = []
        for i, spec in enumerate(specs):
            known = (reuse or {}).get(spec_key(spec))
            if known is not None:
                results[i] = {**known, **spec, "reused": True}
            else:
                pending.append(i)
        ran = run_specs([specs[i] for i in pending], jobs=jobs, log_path=log,
                        verbose=verbose, cost=estimated_cost)
        for i, result in zip(pending, ran):
            results[i] = result
        if verbose and len(pending) < len(specs):
            print(f"[{task}] {len(specs) - len(pending)} runs reused from earlier tasks",
                  flush=True)
    elapsed = time.perf_counter() - start
    write_results(results, folder)
    summary = module.report(results, folder)
    with open(os.path.join(folder, "summary.md"), "w", encoding="utf-8") as handle:
        handle.write(summary)
    if verbose:
        print(f"[{task}] {len(results)} runs in {elapsed:.0f} s -> {folder}", flush=True)
    return results, elapsed


def _report_only(tasks, out, verbose=True):
    from ._runner import machine_description
    from .goals import goals_markdown

    for task in tasks:
        folder = os.path.join(out, task)
        path = os.path.join(folder, "runs.json")
        if not os.path.isfile(path):
            continue
        with open(path, encoding="utf-8") as handle:
            results = json.load(handle)
        with open(os.path.join(folder, "summary.md"), "w", encoding="utf-8") as handle:
            handle.write(_task_module(task).report(results, folder))
    text = goals_markdown(_load_all(out))
    goals = os.path.join(out, "goals.md")
    header = ""
    if os.path.isfile(goals):
        with open(goals, encoding="utf-8") as handle:
            header = handle.read().split("## Goals", 1)[0]
    with open(goals, "w", encoding="utf-8") as handle:
        handle.write((header or f"Machine: {machine_description()}\n\n") + text)
    if verbose:
        print(text)
    return 0


def run(args):
    """Run the tasks of parsed ``args``; returns the exit status."""
    from ._runner import machine_description
    from .goals import goals_markdown

    tasks = TASKS if args.task == "all" else (args.task,)
    timings, reuse = {}, {}
    if getattr(args, "report_only", False):
        return _report_only(tasks, args.out, verbose=not args.quiet)
    if getattr(args, "reuse", False):
        reuse.update((spec_key(r), r) for r in _load_all(args.out)
                     if r.get("task") not in tasks and r.get("task") != "scaling")
    for task in tasks:
        results, timings[task] = run_task(task, quick=args.quick, out=args.out, jobs=args.jobs,
                                          seeds=args.seeds, verbose=not args.quiet,
                                          reuse=reuse)
        reuse.update((spec_key(r), r) for r in results if r.get("task") != "scaling")
    results = _load_all(args.out)
    text = goals_markdown(results)
    header = (f"Machine: {machine_description()}\n\nCommand: `skhybrid bench {args.task}"
              f"{' --quick' if args.quick else ''} --jobs {args.jobs} --seeds {args.seeds}`; "
              + ", ".join(f"{t} {s:.0f} s" for t, s in timings.items()) + "\n\n")
    with open(os.path.join(args.out, "goals.md"), "w", encoding="utf-8") as handle:
        handle.write(header + text)
    if not args.quiet:
        print(text)
    return 0


def main(argv=None):
    """Entry point: ``skhybrid bench TASK [--quick] [--out DIR] [--jobs N] [--seeds N]``."""
    parser = build_parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        return run(args)
    except (FileNotFoundError, ImportError) as exc:
        print(f"skhybrid bench: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nskhybrid bench: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
