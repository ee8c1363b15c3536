"""``skhybrid bench scaling``: cost of a training step and a surrogate update against width.

In one process and one thread, for square black boxes of width 64 to 2048
at a fixed rank: the median wall time of one training step (forward, ZO
backward, optimiser step), of one surrogate update (the projector-splitting
step after the optimiser step), and of a full rebuild (measure the whole
matrix with ``d_in`` identity probes and truncate it by SVD), beside one
step of an ``nn.Linear`` of the same width. Timings are ratios within this
run; they are not comparable across machines.
"""

import statistics
import time

import torch
from torch import nn

from ..black_boxes import make_black_box
from ..layers import BlackBoxLayer
from .report import _plt, markdown_table, save_figure

__all__ = ["measure", "report", "specs"]

WIDTHS = (64, 128, 256, 512, 1024, 2048)
DEVICES = ("matrix", "slm", "mrr", "mzi", "monarch")


def specs(quick=False, seeds=3):
    """Scaling is measured in-process by :func:`measure`; there are no specs to farm out."""
    return []


def _median_time(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(widths=WIDTHS, rank=16, zo_samples=16, batch_size=32, device="slm", repeats=None,
            verbose=True):
    """Time a step, a surrogate update and a full rebuild per width; a list of dicts."""
    torch.set_num_threads(1)
    out = []
    for width in widths:
        reps = repeats or (7 if width <= 256 else 5 if width <= 1024 else 3)
        gen = torch.Generator().manual_seed(0)
        x = torch.randn(batch_size, width, generator=gen).tanh().requires_grad_(True)
        G = torch.randn(batch_size, width, generator=gen) / batch_size
        box = make_black_box(device, width, width, random_state=0)
        layer = BlackBoxLayer(box, rank=min(rank, width), zo_samples=zo_samples, random_state=0)
        opt = torch.optim.Adam(layer.black_box_parameters(), lr=0.01)

        def step():
            opt.zero_grad(set_to_none=True)
            (layer(x) * G).sum().backward()
            opt.step()

        step()
        layer.update_surrogate()
        step_times, update_times = [], []
        for _ in range(reps):
            start = time.perf_counter()
            step()
            mid = time.perf_counter()
            layer.update_surrogate()
            step_times.append(mid - start)
            update_times.append(time.perf_counter() - mid)
        before = box.counts["surrogate"]["vectors"]
        rebuild = _median_time(layer.rebuild_surrogate, max(1, reps // 2))
        rebuild_vectors = (box.counts["surrogate"]["vectors"] - before) // max(1, reps // 2)
        # One more step and update to count the update's vectors alone.
        step()
        before = box.counts["surrogate"]["vectors"]
        layer.update_surrogate()
        update_vectors = box.counts["surrogate"]["vectors"] - before
        linear = nn.Linear(width, width, bias=False)
        lopt = torch.optim.Adam(linear.parameters(), lr=1e-3)

        def digital_step():
            lopt.zero_grad(set_to_none=True)
            (linear(x) * G).sum().backward()
            lopt.step()

        digital_step()
        row = dict(task="scaling", kind="width", device=device, width=width, rank=min(rank, width),
                   zo_samples=zo_samples, batch_size=batch_size,
                   exact_probing=bool(layer.exact_probing),
                   surrogate_samples=layer.n_surrogate_samples,
                   step_time=statistics.median(step_times),
                   update_time=statistics.median(update_times), rebuild_time=rebuild,
                   digital_step_time=_median_time(digital_step, reps),
                   update_vectors=int(update_vectors), rebuild_vectors=int(rebuild_vectors))
        row["rebuild_over_update"] = row["rebuild_time"] / row["update_time"]
        out.append(row)
        if verbose:
            print(f"[scaling] width={width} step={row['step_time'] * 1e3:.1f} ms "
                  f"update={row['update_time'] * 1e3:.2f} ms "
                  f"rebuild={row['rebuild_time'] * 1e3:.1f} ms "
                  f"(x{row['rebuild_over_update']:.0f}) digital step="
                  f"{row['digital_step_time'] * 1e3:.2f} ms", flush=True)
        del layer, box, opt
    return out


def measure_fit_ratios(devices=DEVICES, architectures=("hidden", "front"), epochs=3,
                       repeats=3, verbose=True):
    """Fit time of each device's estimator over its digital twin's, timed alternately.

    On digits, ``HybridClassifier`` with the default settings; each repeat
    fits the digital twin and then the hybrid, so that a change in the
    machine's load hits both; the ratio is of the medians.
    """
    from .. import HybridClassifier
    from ..datasets import load_digits

    torch.set_num_threads(1)
    data = load_digits()
    widths = {"hidden": 64, "front": 16}
    out = []
    for arch in architectures:
        for device in devices:
            digital, hybrid = [], []
            for rep in range(repeats):
                for box, times in (("digital", digital), (device, hybrid)):
                    clf = HybridClassifier(black_box=box, architecture=arch,
                                           hidden_units=widths[arch], max_epochs=epochs,
                                           random_state=rep)
                    start = time.perf_counter()
                    clf.fit(data.X_train, data.y_train)
                    times.append(time.perf_counter() - start)
            row = dict(task="scaling", kind="fit_ratio", device=device, architecture=arch,
                       epochs=epochs, repeats=repeats, digital_fit_time=statistics.median(digital),
                       hybrid_fit_time=statistics.median(hybrid))
            row["fit_ratio"] = row["hybrid_fit_time"] / row["digital_fit_time"]
            out.append(row)
            if verbose:
                print(f"[scaling] fit {arch} {device}: {row['hybrid_fit_time']:.2f} s vs digital "
                      f"{row['digital_fit_time']:.2f} s ({row['fit_ratio']:.1f}x)", flush=True)
    return out


def report(results, out_dir):
    """Markdown table and log-log plot of the scaling measurements."""
    import os

    fits = [r for r in results if r.get("kind") == "fit_ratio"]
    rows = [r for r in results if r.get("task") == "scaling" and r.get("kind") != "fit_ratio"]
    if not rows:
        return ""
    table = [[r["width"], r["rank"], "exact" if r["exact_probing"] else r["surrogate_samples"],
              f"{r['digital_step_time'] * 1e3:.2f}", f"{r['step_time'] * 1e3:.1f}",
              f"{r['update_time'] * 1e3:.2f}", r["update_vectors"],
              f"{r['rebuild_time'] * 1e3:.1f}", r["rebuild_vectors"],
              f"{r['rebuild_over_update']:.0f}x"] for r in rows]
    plt = _plt()
    if plt is not None:
        fig, ax = plt.subplots(figsize=(6.0, 4.0))
        w = [r["width"] for r in rows]
        for key, label in (("step_time", "training step (black box)"),
                           ("digital_step_time", "training step (nn.Linear)"),
                           ("update_time", "surrogate update"),
                           ("rebuild_time", "full SVD rebuild")):
            ax.plot(w, [r[key] * 1e3 for r in rows], "o-", label=label)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("layer width (d_in = d_out)")
        ax.set_ylabel("ms (median)")
        ax.set_title(f"scaling, {rows[0]['device']}, rank {rows[0]['rank']}")
        ax.legend(fontsize=7)
        save_figure(plt, fig, os.path.join(out_dir, "scaling.png"))
    return "\n".join([
        "## scaling", "",
        f"One process, one thread, `{rows[0]['device']}` black box, batch "
        f"{rows[0]['batch_size']}, {rows[0]['zo_samples']} ZO samples; medians.", "",
        markdown_table(["width", "rank", "M_SM", "nn.Linear step ms", "step ms", "update ms",
                        "update vectors", "rebuild ms", "rebuild vectors", "rebuild/update"],
                       table), "", "![scaling](scaling.png)" if plt is not None else "", "",
        "### Fit time against the digital twin, timed in one process", "",
        f"`HybridClassifier` defaults on digits ({fits[0]['epochs'] if fits else '-'} epochs), "
        "digital and hybrid fits alternated; medians of "
        f"{fits[0]['repeats'] if fits else '-'} repeats.", "",
        markdown_table(["architecture", "device", "digital fit s", "hybrid fit s", "ratio"],
                       [[r["architecture"], r["device"], f"{r['digital_fit_time']:.2f}",
                         f"{r['hybrid_fit_time']:.2f}", f"{r['fit_ratio']:.1f}x"]
                        for r in fits]), ""])
