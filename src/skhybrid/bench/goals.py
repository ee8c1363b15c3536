"""The benchmark goals of issue 4, evaluated from the results of every task.

Each check returns rows ``(goal, scope, figure, met)``; :func:`goals_markdown`
renders them. A goal whose task has not been run is reported as such, never
as met.
"""

import numpy as np

from .report import markdown_table, paired_gap, select, stats
from .sweep import equal_accuracy_table, rank_goal

__all__ = ["evaluate_goals", "goals_markdown"]

PHOTONIC = ("slm", "mrr", "mzi")


def _gap_goal(results):
    rows = []
    for task, datasets in (("image", ("digits",)), ("audio", ("fsdd-pooled", "fsdd-seq"))):
        for r_model in ("mlp-front", "cnn-fixed", "conv1d-fixed"):
            for dataset in datasets:
                for split in sorted({r.get("split") for r in select(results, task=task,
                                                                   dataset=dataset)},
                                    key=str):
                    sub = select(results, task=task, dataset=dataset, model=r_model,
                                 setting="bottleneck", split=split)
                    for device in PHOTONIC:
                        runs = select(sub, device=device)
                        g = paired_gap(runs, "astralora")
                        if g is None:
                            continue
                        scope = f"{dataset}{'/' + split if split else ''} {r_model} {device}"
                        rows.append(("astralora closes >= 90% of the frozen-to-exact gap "
                                     "(bottleneck)", scope,
                                     f"{100 * g['mean']:.0f}% (seeds {100 * g['min']:.0f}-"
                                     f"{100 * g['max']:.0f}%)", g["mean"] >= 0.9))
    return rows


def _rank_goal(results):
    rows = []
    sweep = select(results, task="sweep")
    ok = rank_goal(sweep)
    for (dataset, device), ranks in sorted(ok.items()):
        sub = select(sweep, sweep="rank", dataset=dataset)
        digital = stats(select(sub, mode="digital"), "accuracy")
        exact = stats(select(sub, mode="exact", device=device), "accuracy")
        best = None
        for k in sorted({r["rank"] for r in select(sub, device=device, mode="astralora")}):
            if k <= 16:
                a = stats(select(sub, device=device, mode="astralora", rank=k), "accuracy")
                if best is None or a["mean"] > best[1]:
                    best = (k, a["mean"])
        figure = (f"best r<=16: r={best[0]} {100 * best[1]:.1f}% vs digital "
                  f"{100 * digital['mean']:.1f}%, exact {100 * exact['mean']:.1f}%"
                  + (f"; meets at r={ranks}" if ranks else ""))
        rows.append(("within 1 pp of digital and 0.5 pp of exact at some rank <= 16 "
                     "(standard MLP)", f"{dataset} {device}", figure, bool(ranks)))
    return rows


def _text_goal(results):
    rows = []
    text = select(results, task="text", setting="standard")
    digital = stats(select(text, mode="digital"), "val_loss")
    if not digital:
        return rows
    for device in sorted({r["device"] for r in text if r["mode"] == "astralora"}):
        a = stats(select(text, device=device, mode="astralora"), "val_loss")
        ratio = a["mean"] / digital["mean"]
        rows.append(("LM validation loss within 5% of digital (same steps)", f"text {device}",
                     f"{a['mean']:.3f} vs {digital['mean']:.3f} ({100 * (ratio - 1):+.1f}%)",
                     ratio <= 1.05))
    return rows


def _error_goal(results):
    rows = []
    groups = {}
    for r in results:
        if r.get("surrogate_error") and r["mode"] == "astralora":
            key = (r["task"], r["dataset"], r.get("setting"), r["model"], r["device"],
                   r.get("rank", 8))
            groups.setdefault(key, []).append(r)
    ratios_all = []
    for key, runs in sorted(groups.items(), key=lambda kv: str(kv[0])):
        ratios = [e / b for r in runs for e, b in zip(r["surrogate_error"], r["best_error"])
                  if b > 0]
        if ratios:
            ratios_all.append((np.mean(ratios), key))
    if not ratios_all:
        return rows
    worst = max(ratios_all)
    share = np.mean([m <= 1.1 for m, _ in ratios_all])
    rows.append(("surrogate error during training within 1.1x of the best rank-r error",
                 "all astralora runs with a surrogate",
                 f"{100 * share:.0f}% of {len(ratios_all)} configurations; worst mean ratio "
                 f"{worst[0]:.2f} ({' '.join(map(str, worst[1][1:]))})", bool(share == 1.0)))
    return rows


def _query_goal(results):
    rows = []
    table = equal_accuracy_table(select(results, task="sweep"))
    for line in table.splitlines()[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        ratio = cells[-1]
        met = ratio not in ("-", "") and float(ratio) <= 0.5
        rows.append(("at equal accuracy, at most half the queries per sample of the paper's "
                     "settings", f"{cells[0]} {cells[1]} paper M={cells[2]}",
                     f"ours/paper = {ratio} (ours M={cells[5]})", met))
    return rows


def _time_goal(results):
    rows = []
    for r in results:
        if r.get("kind") == "fit_ratio":
            rows.append(("hybrid fit time at most 3x digital (timed alternately, one process)",
                         f"digits {r['architecture']} MLP {r['device']}",
                         f"{r['fit_ratio']:.1f}x ({r['hybrid_fit_time']:.1f} s vs "
                         f"{r['digital_fit_time']:.1f} s)", r["fit_ratio"] <= 3.0))
    if rows:
        return rows
    for task in ("image", "audio"):
        for model in ("mlp-hidden", "mlp-front"):
            sub = select(results, task=task, model=model)
            for split in sorted({r.get("split") for r in sub}, key=str):
                runs = select(sub, split=split)
                digital = stats(select(runs, mode="digital"), "fit_time")
                if not digital:
                    continue
                for device in sorted({r["device"] for r in runs if r["mode"] == "astralora"}):
                    a = stats(select(runs, device=device, mode="astralora"), "fit_time")
                    ratio = a["mean"] / digital["mean"]
                    rows.append(("hybrid fit time at most 3x digital",
                                 f"{runs[0]['dataset']}{'/' + split if split else ''} {model} "
                                 f"{device}", f"{ratio:.1f}x", ratio <= 3.0))
    return rows


def _scaling_goal(results):
    rows = []
    for r in results:
        if r.get("task") == "scaling" and r.get("width") == 1024:
            rows.append(("surrogate update >= 20x faster than a full SVD rebuild "
                         f"(width 1024, rank {r['rank']})", r["device"],
                         f"{r['rebuild_over_update']:.0f}x ({r['update_time'] * 1e3:.1f} ms vs "
                         f"{r['rebuild_time'] * 1e3:.0f} ms)", r["rebuild_over_update"] >= 20))
    return rows


def evaluate_goals(results):
    """Every goal check over ``results`` (all tasks together)."""
    rows = []
    for check in (_gap_goal, _rank_goal, _text_goal, _error_goal, _query_goal, _time_goal,
                  _scaling_goal):
        rows += check(results)
    return rows


def goals_markdown(results):
    """The goals table: goal, scope, figure, met."""
    rows = evaluate_goals(results)
    if not rows:
        return "No goal could be evaluated from these results.\n"
    n_met = sum(bool(r[3]) for r in rows)
    table = markdown_table(["goal", "scope", "figure", "met"],
                           [[g, s, f, "yes" if m else "**no**"] for g, s, f, m in rows])
    return f"## Goals\n\n{n_met} of {len(rows)} checks met.\n\n{table}\n"
