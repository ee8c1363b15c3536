"""Aggregating benchmark results: tables, the frozen-to-exact gap, plots and files."""

import csv
import json
import math
import os
from collections import defaultdict

import numpy as np

__all__ = [
    "aggregate",
    "fmt",
    "gap_closed",
    "markdown_table",
    "write_results",
]

#: Spec keys that identify a configuration (everything but the seed).
CONFIG_KEYS = ("task", "dataset", "split", "setting", "model", "width", "device", "mode",
               "rank", "zo_samples", "surrogate_samples", "epochs", "steps", "n_replaced")

#: Columns of the CSV file, in order (list-valued measurements go to the JSON file only).
CSV_KEYS = CONFIG_KEYS + ("seed", "accuracy", "train_accuracy", "val_loss", "train_loss",
                          "fit_time", "wall_time", "n_steps", "n_train",
                          "queries_per_sample", "n_query_vectors", "n_query_configurations",
                          "surrogate_error_final", "best_error_final", "error_ratio_mean")


def _error_summary(result):
    errors, best = result.get("surrogate_error") or [], result.get("best_error") or []
    if not errors:
        return {}
    ratios = [e / b for e, b in zip(errors, best) if b > 0]
    return {"surrogate_error_final": errors[-1], "best_error_final": best[-1],
            "error_ratio_mean": float(np.mean(ratios)) if ratios else float("nan")}


def write_results(results, out_dir, stem="runs"):
    """Write every run to ``<stem>.json`` (all fields) and ``<stem>.csv`` (scalar fields)."""
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, stem + ".json"), "w", encoding="utf-8") as handle:
        json.dump(results, handle, indent=1)
    with open(os.path.join(out_dir, stem + ".csv"), "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_KEYS, extrasaction="ignore")
        writer.writeheader()
        for r in results:
            writer.writerow({**r, **_error_summary(r)})


def config_of(result, keys=CONFIG_KEYS):
    return tuple(result.get(k) for k in keys)


def aggregate(results, metric, keys=CONFIG_KEYS):
    """``{config: {"mean", "std", "min", "max", "n", "values", "seeds"}}`` over seeds."""
    groups = defaultdict(list)
    for r in results:
        value = r.get(metric)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        groups[config_of(r, keys)].append((r.get("seed"), float(value)))
    out = {}
    for key, pairs in groups.items():
        values = np.array([v for _, v in pairs])
        out[key] = {"mean": float(values.mean()),
                    "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
                    "min": float(values.min()), "max": float(values.max()),
                    "n": len(values), "values": values.tolist(),
                    "seeds": [s for s, _ in pairs]}
    return out


def select(results, **where):
    """The results whose fields equal every ``where`` value (a tuple means any of)."""
    out = []
    for r in results:
        ok = True
        for k, v in where.items():
            if isinstance(v, tuple):
                ok = r.get(k) in v
            else:
                ok = r.get(k) == v
            if not ok:
                break
        if ok:
            out.append(r)
    return out


def stats(results, metric):
    """mean, std (ddof=1), min, max, n of ``metric`` over ``results``."""
    values = np.array([float(r[metric]) for r in results if r.get(metric) is not None])
    if values.size == 0:
        return None
    return {"mean": float(values.mean()),
            "std": float(values.std(ddof=1)) if values.size > 1 else 0.0,
            "min": float(values.min()), "max": float(values.max()), "n": int(values.size)}


def fmt(s, scale=100.0, digits=1):
    """``"mean ± std"`` of a :func:`stats` dict (``"-"`` when missing)."""
    if not s:
        return "-"
    return f"{s['mean'] * scale:.{digits}f} ± {s['std'] * scale:.{digits}f}"


def markdown_table(headers, rows):
    """A GitHub markdown table."""
    lines = ["| " + " | ".join(str(h) for h in headers) + " |",
             "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def gap_closed(acc, frozen, exact):
    """``(acc - frozen) / (exact - frozen)``; NaN when exact does not beat frozen."""
    gap = exact - frozen
    if not gap > 0:
        return float("nan")
    return (acc - frozen) / gap


def paired_gap(results, mode, metric="accuracy"):
    """Per-seed gap closed by ``mode`` against that seed's frozen and exact runs.

    Returns the :func:`stats` of the per-seed ratios (``None`` without any
    complete seed).
    """
    by_seed = defaultdict(dict)
    for r in results:
        by_seed[r["seed"]][r["mode"]] = r[metric]
    ratios = [gap_closed(m[mode], m["frozen"], m["exact"]) for m in by_seed.values()
              if {mode, "frozen", "exact"} <= set(m)]
    ratios = [x for x in ratios if not math.isnan(x)]
    if not ratios:
        return None
    return {"mean": float(np.mean(ratios)),
            "std": float(np.std(ratios, ddof=1)) if len(ratios) > 1 else 0.0,
            "min": float(np.min(ratios)), "max": float(np.max(ratios)), "n": len(ratios)}


#: Below this frozen-to-exact gap (in accuracy) the share closed is not reported: noise.
MIN_GAP = 0.02


def _gap_cell(runs):
    if not {"frozen", "exact", "astralora"} <= {r["mode"] for r in runs}:
        return "-"
    exact = stats(select(runs, mode="exact"), "accuracy")["mean"]
    frozen = stats(select(runs, mode="frozen"), "accuracy")["mean"]
    if exact - frozen < MIN_GAP:
        return f"(gap {100 * (exact - frozen):.1f} pp)"
    g = paired_gap(runs, "astralora")
    return fmt(g, 100.0, 0) if g else "-"


def accuracy_tables(results, modes, metric="accuracy", scale=100.0, digits=1):
    """One markdown table per (dataset, split, setting, model): devices x modes, mean ± std."""
    blocks = []
    groups = defaultdict(list)
    for r in results:
        groups[(r.get("dataset"), r.get("split"), r.get("setting"), r.get("model"),
                r.get("width"))].append(r)
    for (dataset, split, setting, model, width), rows in sorted(groups.items(),
                                                                 key=lambda kv: str(kv[0])):
        present = [m for m in modes if any(r["mode"] == m for r in rows)]
        digital = stats(select(rows, mode="digital"), metric)
        devices = sorted({r["device"] for r in rows if r["mode"] != "digital"
                          and r["device"] != "digital"})
        table = []
        for device in devices:
            cells = [device]
            for m in present:
                if m == "digital":
                    cells.append(fmt(digital, scale, digits))
                else:
                    cells.append(fmt(stats(select(rows, device=device, mode=m), metric),
                                     scale, digits))
            sub = select(rows, device=device)
            if metric == "accuracy":
                cells.append(_gap_cell(sub))
            table.append(cells)
        title = f"**{dataset}{'/' + split if split else ''}, {setting} ({model}, width {width})**"
        headers = ["device"] + present + (["gap closed %"] if metric == "accuracy" else [])
        blocks.append(title + "\n\n" + markdown_table(headers, table))
    return "\n\n".join(blocks)


def _plt():
    """matplotlib's pyplot on the Agg backend, or None when matplotlib is not installed."""
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(plt, fig, path):
    """Lay out ``fig``, write it to ``path`` as a PNG and free it."""
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_error_traces(results, path, title):
    """Surrogate error / best rank-r error against training step, one line per run group."""
    plt = _plt()
    if plt is None:
        return False
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    groups = defaultdict(list)
    for r in results:
        if r.get("surrogate_error"):
            label = f"{r['device']} {r['mode']} r={r.get('rank')}"
            groups[label].append(r)
    if not groups:
        plt.close(fig)
        return False
    for label, runs in sorted(groups.items()):
        n = min(len(r["surrogate_error"]) for r in runs)
        steps = runs[0]["trace_steps"][:n]
        ratio = np.mean([[e / b if b > 0 else np.nan
                          for e, b in zip(r["surrogate_error"][:n], r["best_error"][:n])]
                         for r in runs], axis=0)
        ax.plot(steps, ratio, label=label)
    ax.axhline(1.1, color="k", ls=":", lw=1, label="1.1x best")
    ax.set_xlabel("training step")
    ax.set_ylabel("surrogate error / best rank-r error")
    ax.set_yscale("log")
    ax.set_title(title)
    ax.legend(fontsize=7)
    save_figure(plt, fig, path)
    return True


def plot_queries(results, path, title):
    """Black-box queries per training sample, by mode and device (bars, mean over seeds)."""
    plt = _plt()
    rows = [r for r in results if r.get("queries_per_sample") and r["mode"] != "digital"]
    if not rows or plt is None:
        return False
    modes = [m for m in ("exact", "frozen", "svd", "zo_only", "surrogate_only", "paper",
                         "astralora") if any(r["mode"] == m for r in rows)]
    devices = sorted({r["device"] for r in rows})
    fig, ax = plt.subplots(figsize=(7.0, 4.0))
    width = 0.8 / max(1, len(modes))
    for j, mode in enumerate(modes):
        values = [stats(select(rows, device=d, mode=mode), "queries_per_sample") for d in devices]
        ax.bar(np.arange(len(devices)) + j * width, [v["mean"] if v else 0 for v in values],
               width, label=mode)
    ax.set_xticks(np.arange(len(devices)) + 0.4 - width / 2)
    ax.set_xticklabels(devices)
    ax.set_ylabel("device input vectors per training sample")
    ax.set_yscale("log")
    ax.set_title(title)
    ax.legend(fontsize=7)
    save_figure(plt, fig, path)
    return True


def time_ratio_table(results):
    """Fit time of each device/mode over the digital twin's, per setting (means over seeds)."""
    groups = defaultdict(list)
    for r in results:
        groups[(r.get("dataset"), r.get("split"), r.get("setting"), r.get("model"))].append(r)
    rows = []
    for key, runs in sorted(groups.items(), key=lambda kv: str(kv[0])):
        digital = stats(select(runs, mode="digital"), "fit_time")
        if not digital:
            continue
        for device in sorted({r["device"] for r in runs if r["mode"] != "digital"}):
            for mode in ("astralora", "paper"):
                s = stats(select(runs, device=device, mode=mode), "fit_time")
                if s:
                    rows.append([f"{key[0]}{'/' + key[1] if key[1] else ''}", key[2], key[3],
                                 device, mode, f"{digital['mean']:.2f}", f"{s['mean']:.2f}",
                                 f"{s['mean'] / digital['mean']:.1f}x"])
    return markdown_table(["data", "setting", "model", "device", "mode", "digital fit s",
                           "hybrid fit s", "ratio"], rows)


def queries_table(results):
    """Queries per training sample and the ZO / surrogate split, ours against the paper's."""
    groups = defaultdict(list)
    for r in results:
        if r["mode"] in ("astralora", "paper"):
            groups[(r.get("dataset"), r.get("split"), r.get("setting"), r.get("model"),
                    r["device"])].append(r)
    rows = []
    for key, runs in sorted(groups.items(), key=lambda kv: str(kv[0])):
        cells = [f"{key[0]}{'/' + key[1] if key[1] else ''}", key[2], key[3], key[4]]
        per = {}
        for mode in ("paper", "astralora"):
            sub = select(runs, mode=mode)
            if not sub:
                cells += ["-", "-"]
                continue
            q = stats(sub, "queries_per_sample")
            acc = stats(sub, "accuracy") or stats(sub, "val_loss")
            per[mode] = q["mean"]
            scale = 100.0 if "accuracy" in sub[0] else 1.0
            cells += [f"{q['mean']:.1f}", fmt(acc, scale, 1 if scale > 1 else 3)]
        cells.append(f"{per['astralora'] / per['paper']:.2f}" if len(per) == 2 else "-")
        rows.append(cells)
    return markdown_table(["data", "setting", "model", "device", "paper q/sample",
                           "paper score", "ours q/sample", "ours score", "ours/paper"], rows)


def error_table(results):
    """Surrogate error over training relative to the best rank-r error (simulation only)."""
    groups = defaultdict(list)
    for r in results:
        if r.get("surrogate_error"):
            groups[(r.get("dataset"), r.get("split"), r.get("setting"), r.get("model"),
                    r["device"], r["mode"], r.get("rank"))].append(r)
    rows = []
    for key, runs in sorted(groups.items(), key=lambda kv: str(kv[0])):
        ratios = [e / b for r in runs for e, b in zip(r["surrogate_error"], r["best_error"])
                  if b > 0]
        finals = [r["surrogate_error"][-1] for r in runs]
        bests = [r["best_error"][-1] for r in runs]
        if not ratios:
            continue
        rows.append([f"{key[0]}{'/' + key[1] if key[1] else ''}", key[2], key[3], key[4], key[5],
                     key[6], f"{np.mean(finals):.3f}", f"{np.mean(bests):.3f}",
                     f"{np.mean(ratios):.2f}", f"{np.max(ratios):.2f}"])
    return markdown_table(["data", "setting", "model", "device", "mode", "rank",
                           "final error", "final best", "mean ratio", "max ratio"], rows)


def classification_report(results, out_dir, name, modes):
    """Markdown summary of a classification task, with its plots written to ``out_dir``."""
    parts = [f"## {name}", "", "Test accuracy (%), mean ± std over seeds. *gap closed* is the "
             "share of the frozen-to-exact gap that `astralora` closes, "
             "(acc - frozen) / (exact - frozen), per seed then averaged (std over seeds); "
             f"it is left out where exact beats frozen by less than {100 * MIN_GAP:.0f} pp.",
             "",
             accuracy_tables(results, modes), "", "### Fit time against the digital twin", "",
             time_ratio_table(results), "", "### Black-box queries per training sample", "",
             queries_table(results), "", "### Surrogate error during training", "",
             error_table(results)]
    for setting in sorted({r.get("setting") for r in results}):
        sub = [r for r in results if r.get("setting") == setting]
        stem = f"{name}-{setting}".replace("/", "-")
        if plot_queries(sub, os.path.join(out_dir, stem + "-queries.png"),
                        f"{name}, {setting}: queries per sample"):
            parts += ["", f"![queries]({stem}-queries.png)"]
        if plot_error_traces(sub, os.path.join(out_dir, stem + "-surrogate-error.png"),
                             f"{name}, {setting}: surrogate error"):
            parts += ["", f"![surrogate error]({stem}-surrogate-error.png)"]
    return "\n".join(parts) + "\n"
