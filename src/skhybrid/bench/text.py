"""``skhybrid bench text``: a character-level transformer on Tiny Shakespeare.

A decoder-only transformer (2 pre-norm blocks, ``d_model`` 64, 4 heads,
context 32, learned positions, tied head; about 0.1 M parameters) is trained
for a fixed number of AdamW steps on the first 90% of the text and
evaluated on fixed windows of the last 10%. As in the paper, the
feed-forward block of the last block(s) is *replaced* by one black-box layer
``d_model -> d_model`` (the block's FFN becomes linear).

Baselines at the same steps: ``ffn`` (the full digital model, MLP kept),
``digital`` (the FFN replaced by an ``nn.Linear``: the digital twin of the
black box), ``identity`` (the FFN removed), and the gradient modes.
Settings: ``standard`` replaces the last block's FFN, ``bottleneck`` every
block's.
"""

from collections import defaultdict

import numpy as np

from .image import CORE, DEVICES
from .report import fmt, markdown_table, select, stats

__all__ = ["specs", "report"]

MODES = ("ffn", "identity", "digital", "exact", "frozen", "svd", "zo_only", "surrogate_only",
         "paper", "astralora")


def specs(quick=False, seeds=3):
    """The run specs of the text task."""
    seeds = range(seeds) if isinstance(seeds, int) else seeds
    if quick:
        base = dict(task="text", dataset="tinyshakespeare", model="transformer", steps=40,
                    batch_size=8, context=32, d_model=32, n_heads=2, n_layers=1, eval_every=40,
                    eval_batches=2, trace_every=10, setting="standard", n_replaced=1)
        return [{**base, "device": d, "mode": m, "seed": 0}
                for d, m in (("digital", "digital"), ("digital", "identity"),
                             ("slm", "frozen"), ("slm", "astralora"))]
    base = dict(task="text", dataset="tinyshakespeare", model="transformer", steps=200, rank=8,
                zo_samples=16, surrogate_samples="auto", batch_size=16, context=32, d_model=64,
                n_heads=4, n_layers=2, eval_every=50, eval_batches=8, trace_every=20)
    out = []
    for seed in seeds:
        std = dict(base, setting="standard", n_replaced=1, seed=seed)
        out += [{**std, "device": "digital", "mode": m} for m in ("ffn", "identity", "digital")]
        for device in DEVICES:
            if device == "mzi":
                modes = ("exact", "frozen", "astralora")
            elif device == "slm":
                modes = CORE[1:] + ("svd", "zo_only", "surrogate_only")
            elif device == "mrr":
                modes = CORE[1:]
            else:
                modes = ("exact", "frozen", "astralora")
            out += [{**std, "device": device, "mode": m} for m in modes]
        bot = dict(base, setting="bottleneck", n_replaced=2, seed=seed)
        out += [{**bot, "device": "digital", "mode": m} for m in ("identity", "digital")]
        for device in ("slm", "mrr"):
            out += [{**bot, "device": device, "mode": m} for m in ("exact", "frozen", "astralora")]
    return out


def report(results, out_dir):
    """Markdown summary (and a validation-curve plot) of the text task's results."""
    import os

    parts = ["## text", "", "Validation loss (nats per character) after the same number of "
             "steps, mean ± std over seeds; *vs digital* is the hybrid's loss over the "
             "digital twin's (the FFN replaced by an `nn.Linear`).", ""]
    for setting in ("standard", "bottleneck"):
        rows_s = select(results, setting=setting)
        if not rows_s:
            continue
        ffn = stats(select(results, mode="ffn"), "val_loss")
        digital = stats(select(rows_s, mode="digital"), "val_loss")
        identity = stats(select(rows_s, mode="identity"), "val_loss")
        present = [m for m in MODES[3:] if any(r["mode"] == m for r in rows_s)]
        table = []
        for device in sorted({r["device"] for r in rows_s if r["device"] != "digital"}):
            cells = [device]
            for m in present:
                cells.append(fmt(stats(select(rows_s, device=device, mode=m), "val_loss"),
                                 1.0, 3))
            a = stats(select(rows_s, device=device, mode="astralora"), "val_loss")
            cells.append(f"{a['mean'] / digital['mean']:.3f}" if a and digital else "-")
            table.append(cells)
        n_rep = rows_s[0].get("n_replaced")
        parts += [f"**{setting}: the FFN of the last {n_rep} of {rows_s[0].get('n_layers')} "
                  f"block(s) replaced.** Digital baselines: full model (ffn) "
                  f"{fmt(ffn, 1.0, 3)}, FFN -> nn.Linear (digital) {fmt(digital, 1.0, 3)}, "
                  f"FFN removed (identity) {fmt(identity, 1.0, 3)}.", "",
                  markdown_table(["device"] + present + ["astralora vs digital"], table), ""]
    path = os.path.join(out_dir, "text-val-curve.png")
    if _plot_curves(results, path):
        parts += ["![validation curves](text-val-curve.png)", ""]
    return "\n".join(parts)


def _plot_curves(results, path):
    from .report import _plt, save_figure

    rows = [r for r in results if r.get("setting") == "standard" and r.get("val_curve")]
    plt = _plt()
    if not rows or plt is None:
        return False
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    groups = defaultdict(list)
    for r in rows:
        if r["mode"] in ("ffn", "identity", "digital") or r["mode"] in ("astralora", "frozen"):
            label = r["mode"] if r["device"] == "digital" else f"{r['device']} {r['mode']}"
            groups[label].append(r["val_curve"])
    for label, curves in sorted(groups.items()):
        n = min(len(c) for c in curves)
        steps = [c[0] for c in curves[0][:n]]
        ax.plot(steps, np.mean([[c[1] for c in cur[:n]] for cur in curves], axis=0),
                label=label, ls="--" if label in ("ffn", "identity", "digital") else "-")
    ax.set_xlabel("step")
    ax.set_ylabel("validation loss (nats/char)")
    ax.set_title("text, standard: validation loss")
    ax.legend(fontsize=6, ncol=2)
    save_figure(plt, fig, path)
    return True
