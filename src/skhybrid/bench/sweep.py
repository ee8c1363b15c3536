"""``skhybrid bench sweep``: accuracy against surrogate rank and ZO samples, digits and FSDD.

* **Rank** (1 to 32) in the ``standard`` MLP (``architecture="hidden"``,
  64 -> 64 black box). The rank only shapes the input gradient the
  surrogate passes back to the digital layer before the black box, so it is
  swept where there is one; in the ``front`` bottleneck nothing upstream
  trains and every rank gives the same network.
* **ZO samples** (1 to 64), ours against the paper's settings
  (``M_SM = M_BB``), in the ``bottleneck`` MLP (``architecture="front"``,
  64 -> 16), where training the device is what matters, with the black-box
  queries per training sample of each.

Every sweep has its digital, exact and frozen baselines at the same epochs.
"""

from collections import defaultdict

from ._runner import expand
from .report import (_plt, error_table, fmt, markdown_table, plot_error_traces,
                     save_figure, select, stats)

__all__ = ["specs", "report"]

RANKS = (1, 2, 4, 8, 16, 32)
ZO_SAMPLES = (1, 4, 16, 64)
DATASETS = (("digits", None, 10), ("fsdd-pooled", "customary", 6))
#: MZI ranks per dataset (the mesh costs ten times the other devices).
MZI_RANKS = {"digits": (1, 8, 16), "fsdd-pooled": (8,)}


def specs(quick=False, seeds=3):
    """The run specs of the sweeps."""
    if quick:
        base = dict(task="sweep", dataset="digits", epochs=2, batch_size=32)
        rank = [dict(base, sweep="rank", setting="standard", model="mlp-hidden", width=16,
                     device="slm", mode="astralora", rank=r, seed=0) for r in (1, 8)]
        zo = [dict(base, sweep="zo", setting="bottleneck", model="mlp-front", width=16,
                   device="slm", mode=m, zo_samples=z, seed=0)
              for m in ("astralora", "paper") for z in (1, 8)]
        return rank + zo
    out = []
    for dataset, split, epochs in DATASETS:
        base = dict(task="sweep", dataset=dataset, epochs=epochs, batch_size=32)
        if split:
            base["split"] = split
        rank_base = dict(base, sweep="rank", setting="standard", model="mlp-hidden", width=64)
        out += expand(rank_base, [dict(modes={"slm": ("digital", "exact", "frozen"),
                                              "mrr": ("exact", "frozen"),
                                              "mzi": ("exact", "frozen")})], seeds)
        for device, ranks in (("slm", RANKS), ("mrr", RANKS), ("mzi", MZI_RANKS[dataset])):
            for r in ranks:
                out += expand(dict(rank_base, rank=r), [dict(modes={device: ("astralora",)})],
                              seeds)
        zo_base = dict(base, sweep="zo", setting="bottleneck", model="mlp-front", width=16)
        out += expand(zo_base, [dict(modes={"slm": ("digital", "exact", "frozen"),
                                            "mrr": ("exact", "frozen")})], seeds)
        for device in ("slm", "mrr"):
            for z in ZO_SAMPLES:
                out += expand(dict(zo_base, zo_samples=z),
                              [dict(modes={device: ("astralora", "paper")})], seeds)
    return out


def _baselines(rows, device):
    return {m: stats(select(rows, mode=m, device="digital" if m == "digital" else device),
                     "accuracy") for m in ("digital", "exact", "frozen")}


def _plot_rank(rows, path, title):
    plt = _plt()
    if plt is None:
        return False
    devices = sorted({r["device"] for r in rows if r["mode"] == "astralora"})
    fig, axes = plt.subplots(1, len(devices), figsize=(4.0 * len(devices), 3.4), squeeze=False)
    for ax, device in zip(axes[0], devices):
        sub = select(rows, device=device, mode="astralora")
        ranks = sorted({r["rank"] for r in sub})
        s = [stats(select(sub, rank=k), "accuracy") for k in ranks]
        ax.plot(ranks, [100 * v["mean"] for v in s], "o-", label="astralora (ours)")
        ax.fill_between(ranks, [100 * v["min"] for v in s], [100 * v["max"] for v in s],
                        alpha=0.25)
        base = _baselines(rows, device)
        for mode, ls in (("digital", "--"), ("exact", ":"), ("frozen", "-.")):
            if base[mode]:
                ax.axhline(100 * base[mode]["mean"], color="k", ls=ls, lw=1, label=mode)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("surrogate rank")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(device)
        ax.legend(fontsize=7)
    fig.suptitle(title)
    save_figure(plt, fig, path)
    return True


def _plot_zo(rows, path, title):
    plt = _plt()
    if plt is None:
        return False
    devices = sorted({r["device"] for r in rows if r["mode"] in ("astralora", "paper")})
    fig, axes = plt.subplots(2, len(devices), figsize=(4.0 * len(devices), 6.4), squeeze=False)
    for j, device in enumerate(devices):
        for mode, marker in (("astralora", "o-"), ("paper", "s--")):
            sub = select(rows, device=device, mode=mode)
            zs = sorted({r["zo_samples"] for r in sub})
            acc = [stats(select(sub, zo_samples=z), "accuracy") for z in zs]
            q = [stats(select(sub, zo_samples=z), "queries_per_sample") for z in zs]
            label = "ours" if mode == "astralora" else "paper settings"
            axes[0, j].plot(zs, [100 * a["mean"] for a in acc], marker, label=label)
            axes[1, j].plot([v["mean"] for v in q], [100 * a["mean"] for a in acc], marker,
                            label=label)
        base = _baselines(rows, device)
        for ax in axes[:, j]:
            for mode, ls in (("digital", "--"), ("exact", ":"), ("frozen", "-.")):
                if base[mode]:
                    ax.axhline(100 * base[mode]["mean"], color="k", ls=ls, lw=1, label=mode)
            ax.set_ylabel("test accuracy (%)")
            ax.set_xscale("log")
            ax.legend(fontsize=7)
        axes[0, j].set_xlabel("ZO samples M_BB")
        axes[1, j].set_xlabel("black-box input vectors per training sample")
        axes[0, j].set_title(device)
    fig.suptitle(title)
    save_figure(plt, fig, path)
    return True


def report(results, out_dir):
    """Markdown summary (and the sweep plots) of the sweeps."""
    import os

    parts = ["## sweep", ""]
    for dataset in sorted({r["dataset"] for r in results}):
        rows = select(results, dataset=dataset)
        rank_rows = select(rows, sweep="rank")
        if rank_rows:
            table = []
            for device in sorted({r["device"] for r in rank_rows if r["mode"] == "astralora"}):
                base = _baselines(rank_rows, device)
                sub = select(rank_rows, device=device, mode="astralora")
                cells = [device, fmt(base["digital"]), fmt(base["exact"]), fmt(base["frozen"])]
                for k in RANKS:
                    cells.append(fmt(stats(select(sub, rank=k), "accuracy")))
                table.append(cells)
            stem = f"sweep-rank-{dataset}"
            plotted = _plot_rank(rank_rows, os.path.join(out_dir, stem + ".png"),
                                 f"{dataset}: accuracy against rank (standard MLP)")
            parts += [f"**{dataset}: accuracy (%) against surrogate rank, standard MLP "
                      "(64 -> 64 black box).**", "",
                      markdown_table(["device", "digital", "exact", "frozen"]
                                     + [f"r={k}" for k in RANKS], table), ""]
            if plotted:
                parts += [f"![rank sweep]({stem}.png)", ""]
        zo_rows = select(rows, sweep="zo")
        if zo_rows:
            table = []
            for device in sorted({r["device"] for r in zo_rows if r["mode"] == "astralora"}):
                base = _baselines(zo_rows, device)
                for mode in ("paper", "astralora"):
                    sub = select(zo_rows, device=device, mode=mode)
                    cells = [device, "paper settings" if mode == "paper" else "ours"]
                    for z in ZO_SAMPLES:
                        s = select(sub, zo_samples=z)
                        a, q = stats(s, "accuracy"), stats(s, "queries_per_sample")
                        cells.append(f"{fmt(a)} ({q['mean']:.0f} q)" if a else "-")
                    table.append(cells)
                table.append([device, "baselines", f"digital {fmt(base['digital'])}",
                              f"exact {fmt(base['exact'])}", f"frozen {fmt(base['frozen'])}",
                              ""])
            stem = f"sweep-zo-{dataset}"
            plotted = _plot_zo(zo_rows, os.path.join(out_dir, stem + ".png"),
                               f"{dataset}: accuracy against ZO samples (bottleneck MLP)")
            parts += [f"**{dataset}: accuracy (%) against ZO samples, bottleneck MLP "
                      "(black box 64 -> 16 first), with input vectors per training sample.**",
                      "", markdown_table(["device", "settings"]
                                         + [f"M={z}" for z in ZO_SAMPLES], table), ""]
            if plotted:
                parts += [f"![zo sweep]({stem}.png)", ""]
    parts += ["### Queries at equal accuracy", "", "For each of the paper's settings, the cheapest "
              "of ours whose mean accuracy is at least the paper's minus 0.5 pp.", "",
              equal_accuracy_table(results), "",
              "### Surrogate error during training", "",
              "Relative Frobenius error of the surrogate each backward pass uses, over the best "
              "rank-r error at the same parameters (simulation only), sampled every 15 steps.",
              "", error_table(results), ""]
    ok = [(k, v) for k, v in sorted(rank_goal(results).items())]
    if ok:
        parts += ["Ranks <= 16 within 1 pp of digital and 0.5 pp of exact: "
                  + "; ".join(f"{d} {dev}: {v or 'none'}" for (d, dev), v in ok), ""]
    plotted = plot_error_traces(select(results, sweep="rank", dataset="digits"),
                                os.path.join(out_dir, "sweep-surrogate-error.png"),
                                "digits rank sweep: surrogate error")
    if plotted:
        parts += ["![surrogate error](sweep-surrogate-error.png)", ""]
    return "\n".join(parts)


def equal_accuracy_table(results, tolerance=0.005):
    """For each paper setting, the cheapest of ours reaching its accuracy (minus ``tolerance``)."""
    rows = []
    zo_rows = select(results, sweep="zo")
    groups = defaultdict(list)
    for r in zo_rows:
        if r["mode"] in ("astralora", "paper"):
            groups[(r["dataset"], r["device"])].append(r)
    for (dataset, device), runs in sorted(groups.items()):
        ours = []
        for z in sorted({r["zo_samples"] for r in select(runs, mode="astralora")}):
            sub = select(runs, mode="astralora", zo_samples=z)
            ours.append((stats(sub, "queries_per_sample")["mean"],
                         stats(sub, "accuracy")["mean"], z))
        for z in sorted({r["zo_samples"] for r in select(runs, mode="paper")}):
            sub = select(runs, mode="paper", zo_samples=z)
            q, a = stats(sub, "queries_per_sample")["mean"], stats(sub, "accuracy")["mean"]
            match = [o for o in ours if o[1] >= a - tolerance]
            if match:
                best = min(match)
                rows.append([dataset, device, z, f"{100 * a:.1f}", f"{q:.1f}", best[2],
                             f"{100 * best[1]:.1f}", f"{best[0]:.1f}", f"{best[0] / q:.2f}"])
            else:
                rows.append([dataset, device, z, f"{100 * a:.1f}", f"{q:.1f}", "none", "-",
                             "-", "-"])
    return markdown_table(["data", "device", "paper M", "paper acc", "paper q/sample",
                           "ours M", "ours acc", "ours q/sample", "ours/paper"], rows)


def rank_goal(results, devices=("slm", "mrr", "mzi"), max_rank=16):
    """Per (dataset, device): the ranks <= max_rank within 1 pp of digital and 0.5 pp of exact."""
    out = {}
    rank_rows = select(results, sweep="rank")
    for dataset in sorted({r["dataset"] for r in rank_rows}):
        rows = select(rank_rows, dataset=dataset)
        for device in devices:
            base = _baselines(rows, device)
            if not (base["digital"] and base["exact"]):
                continue
            ok = []
            for k in sorted({r["rank"] for r in select(rows, device=device, mode="astralora")}):
                if k > max_rank:
                    continue
                a = stats(select(rows, device=device, mode="astralora", rank=k), "accuracy")
                if (a["mean"] >= base["digital"]["mean"] - 0.01
                        and a["mean"] >= base["exact"]["mean"] - 0.005):
                    ok.append(k)
            out[(dataset, device)] = ok
    return out


