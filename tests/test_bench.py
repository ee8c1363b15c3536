"""Tests of skhybrid.bench: the paper emulation, the networks, and every task's --quick run.

The quick runs assert sane ranges only (beats chance and a frozen black box,
complete files); the goal numbers are benchmarks, reported in
docs/results.md, never asserted here. No wall-clock time is asserted.
"""

import csv
import json
import math
import os

import numpy as np
import pytest
import torch
from torch import nn

from skhybrid import BlackBoxLayer, make_black_box, update_surrogates
from skhybrid.bench import main, run_task
from skhybrid.bench.goals import goals_markdown
from skhybrid.bench.models import (MODES, BenchLayerFactory, CharTransformer, Conv1dNet,
                                   SmallCNN)
from skhybrid.bench.paper import PaperBlackBoxLayer
from skhybrid.bench.report import gap_closed, paired_gap
from skhybrid.datasets import get_data_home

DATA = get_data_home()
needs_fsdd = pytest.mark.skipif(not (DATA / "fsdd" / "recordings").exists(),
                                reason=f"FSDD not found under {DATA} (set SKHYBRID_DATA)")
needs_shakespeare = pytest.mark.skipif(
    not (DATA / "tinyshakespeare" / "input.txt").exists(),
    reason=f"Tiny Shakespeare not found under {DATA} (set SKHYBRID_DATA)")


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# ------------------------------------------------------------ paper layer
def _step(layer, x, G, opt):
    opt.zero_grad()
    (layer(x) * G).sum().backward()
    opt.step()
    update_surrogates(layer)


def test_paper_layer_uses_the_surrogate_one_step_behind():
    torch.manual_seed(0)
    layer = PaperBlackBoxLayer(make_black_box("matrix", 12, 6, random_state=0), rank=3,
                               zo_samples=4, random_state=0)
    assert layer.n_surrogate_samples == 4 and not layer.exact_probing
    opt = torch.optim.Adam(layer.black_box_parameters(), lr=0.05)
    G = torch.randn(5, 6)
    for _ in range(3):
        _step(layer, torch.randn(5, 12), G, opt)
    U, S, V = layer._lagged
    lagged = U @ S @ V.T
    assert not torch.allclose(lagged, layer.surrogate.matrix())
    x = torch.randn(5, 12, requires_grad=True)
    (layer(x) * G).sum().backward()
    # The learnable output scale multiplies the layer's output, so its input gradient too.
    expected = (float(layer.scale.detach()) * (G.double() @ lagged)).float()
    torch.testing.assert_close(x.grad, expected, rtol=1e-5, atol=1e-6)
    assert torch.allclose(layer.effective_surrogate_matrix(), lagged)


def test_paper_layer_query_accounting():
    box = make_black_box("slm", 16, 8, random_state=0)
    layer = PaperBlackBoxLayer(box, rank=2, zo_samples=5, surrogate_samples=7, random_state=0)
    opt = torch.optim.Adam(layer.black_box_parameters(), lr=0.01)
    x, G = torch.randn(4, 16), torch.randn(4, 8)
    _step(layer, x, G, opt)  # builds the surrogate (16 identity probes), then the first update
    box.reset_counts()
    _step(layer, x, G, opt)
    # Batch 4 <= d_out 8: plain ZO with the baseline measured again: M + 1 sets of vectors
    # (the device already holds the baseline configuration: M reprogrammings).
    assert box.counts["zo"] == {"vectors": 6 * 4, "configurations": 5}
    # K-S-L probes at the new and at the old parameters: 2 (r + M_SM) vectors.
    assert box.counts["surrogate"]["vectors"] == 2 * (2 + 7)
    ours = BlackBoxLayer(make_black_box("slm", 16, 8, random_state=0), rank=2, zo_samples=5,
                         surrogate_samples=7, random_state=0)
    opt = torch.optim.Adam(ours.black_box_parameters(), lr=0.01)
    _step(ours, x, G, opt)
    ours.black_box.reset_counts()
    _step(ours, x, G, opt)
    # The forward pass's outputs are the baseline: M sets of vectors.
    assert ours.black_box.counts["zo"] == {"vectors": 5 * 4, "configurations": 5}


def test_paper_layer_tracks_a_drifting_matrix():
    box = make_black_box("matrix", 24, 16, random_state=1)
    layer = PaperBlackBoxLayer(box, rank=4, zo_samples=64, random_state=1)
    opt = torch.optim.Adam(layer.black_box_parameters(), lr=0.01)
    gen = torch.Generator().manual_seed(0)
    for _ in range(10):
        _step(layer, torch.randn(8, 24, generator=gen), torch.randn(8, 16, generator=gen), opt)
    error = float(torch.linalg.matrix_norm(box.matrix(layer.params.detach().double())
                                           - layer.surrogate.matrix()))
    assert math.isfinite(error)
    assert layer.surrogate_error() < 1.5 * layer.best_surrogate_error() + 0.05


# ----------------------------------------------------------------- models
@pytest.mark.parametrize("mode", MODES)
def test_factory_modes(mode):
    layer = BenchLayerFactory("slm", mode, rank=32, random_state=3)(10, 6)
    if mode == "digital":
        assert isinstance(layer, nn.Linear) and layer.bias is None
        return
    assert isinstance(layer, BlackBoxLayer) and layer.rank == 6
    assert isinstance(layer, PaperBlackBoxLayer) == (mode == "paper")
    assert layer.params.requires_grad == (mode != "frozen")
    if mode != "paper":
        assert layer.gradient == mode
    # Same seed, same device start, whatever the mode.
    other = BenchLayerFactory("slm", "exact", random_state=3)(10, 6)
    torch.testing.assert_close(layer.params.detach(), other.params.detach())


def test_factory_rejects_unknown_mode():
    with pytest.raises(ValueError, match="mode"):
        BenchLayerFactory("slm", "backprop")


def test_networks_forward_and_freezing():
    f = BenchLayerFactory("slm", "astralora", random_state=0)
    cnn = SmallCNN(10, f, hidden_units=16, trainable_features=False)
    assert cnn(torch.randn(3, 64)).shape == (3, 10)
    assert not any(p.requires_grad for p in cnn.features.parameters())
    conv = Conv1dNet(10, BenchLayerFactory("digital", "digital"), n_bands=8, n_frames=12,
                     channels=4, embedding=5)
    assert conv(torch.randn(2, 96)).shape == (2, 10)
    assert isinstance(conv.black_box_layer, nn.Linear)


@pytest.mark.parametrize("replacement, n_mlp", [("none", 2), ("layer", 1), ("identity", 1)])
def test_char_transformer(replacement, n_mlp):
    torch.manual_seed(0)
    f = BenchLayerFactory("slm", "astralora", rank=2, zo_samples=2, random_state=0)
    model = CharTransformer(11, f, d_model=8, n_heads=2, n_layers=2, context=6,
                            replacement=replacement)
    idx = torch.randint(0, 11, (3, 6))
    logits = model(idx)
    assert logits.shape == (3, 6, 11)
    ffns = [b.ffn for b in model.blocks]
    assert sum(isinstance(m, nn.Sequential) for m in ffns) == n_mlp
    assert isinstance(ffns[-1], {"none": nn.Sequential, "layer": BlackBoxLayer,
                                 "identity": type(None)}[replacement])
    # Causal: the first position's logits do not depend on later tokens.
    changed = idx.clone()
    changed[:, 1:] = (changed[:, 1:] + 1) % 11
    with torch.no_grad():
        torch.testing.assert_close(model(idx)[:, 0], model(changed)[:, 0])
    loss = model.loss(logits, idx)
    loss.backward()
    update_surrogates(model)
    assert math.isfinite(loss.item())


# ----------------------------------------------------------------- report
def test_gap_closed():
    assert gap_closed(0.9, 0.7, 0.95) == pytest.approx(0.8)
    assert math.isnan(gap_closed(0.9, 0.95, 0.9))
    runs = [dict(seed=s, mode=m, accuracy=a) for s, vals in enumerate(
        [(0.6, 0.9, 0.84), (0.7, 0.9, 0.9)]) for m, a in zip(("frozen", "exact", "astralora"),
                                                             vals)]
    g = paired_gap(runs, "astralora")
    assert g["n"] == 2 and g["mean"] == pytest.approx(0.9)


# ---------------------------------------------------------- quick tasks
def _check_files(folder, n_runs):
    with open(os.path.join(folder, "runs.json")) as handle:
        runs = json.load(handle)
    assert len(runs) == n_runs
    with open(os.path.join(folder, "runs.csv")) as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == n_runs
    with open(os.path.join(folder, "summary.md")) as handle:
        summary = handle.read()
    assert summary.startswith("## ")
    pngs = [f for f in os.listdir(folder) if f.endswith(".png")]
    assert pngs, "no plot written"
    for png in pngs:
        assert f"]({png})" in summary
    return runs


def _by_mode(runs, metric):
    return {r["mode"] if r["device"] == "digital" else (r["device"], r["mode"]): r[metric]
            for r in runs}


def test_quick_image(tmp_path):
    runs, _ = run_task("image", quick=True, out=str(tmp_path), verbose=False)
    _check_files(tmp_path / "image", len(runs))
    acc = _by_mode(runs, "accuracy")
    assert acc[("slm", "astralora")] > 0.5  # chance is 0.1
    assert acc[("slm", "astralora")] > acc[("slm", "frozen")] + 0.05
    assert acc["digital"] > 0.8
    r = next(r for r in runs if r["mode"] == "astralora")
    assert r["queries_per_sample"] > 1 and r["n_query_vectors"] > 0
    assert r["surrogate_error"] and len(r["surrogate_error"]) == len(r["best_error"])


@needs_fsdd
def test_quick_audio(tmp_path):
    pytest.importorskip("librosa")
    runs, _ = run_task("audio", quick=True, out=str(tmp_path), verbose=False)
    _check_files(tmp_path / "audio", len(runs))
    acc = _by_mode(runs, "accuracy")
    assert acc[("slm", "astralora")] > 0.3
    assert acc[("slm", "astralora")] > acc[("slm", "frozen")] + 0.05


@needs_shakespeare
def test_quick_text(tmp_path):
    runs, _ = run_task("text", quick=True, out=str(tmp_path), verbose=False)
    _check_files(tmp_path / "text", len(runs))
    loss = _by_mode(runs, "val_loss")
    uniform = math.log(65)
    assert loss[("slm", "astralora")] < uniform - 0.5
    assert all(np.isfinite(v) for v in loss.values())


def test_quick_sweep_and_scaling(tmp_path):
    runs, _ = run_task("sweep", quick=True, out=str(tmp_path), verbose=False)
    _check_files(tmp_path / "sweep", len(runs))
    assert {r["sweep"] for r in runs} == {"rank", "zo"}
    assert all(r["accuracy"] > 0.2 for r in runs)
    paper = {r["zo_samples"]: r for r in runs if r["mode"] == "paper"}
    # More ZO samples cost more queries.
    assert paper[8]["queries_per_sample"] > paper[1]["queries_per_sample"]
    scaling, _ = run_task("scaling", quick=True, out=str(tmp_path), verbose=False)
    _check_files(tmp_path / "scaling", len(scaling))
    widths = [r for r in scaling if r["kind"] == "width"]
    fits = [r for r in scaling if r["kind"] == "fit_ratio"]
    assert [r["width"] for r in widths] == [32, 64] and len(fits) == 1
    assert all(r["step_time"] > 0 and r["rebuild_time"] > 0 for r in widths)
    assert fits[0]["fit_ratio"] > 0
    text = goals_markdown(runs + scaling)
    assert "| goal |" in text


def test_main_writes_goals(tmp_path):
    assert main(["image", "--quick", "--quiet", "--out", str(tmp_path)]) == 0
    with open(tmp_path / "goals.md") as handle:
        goals = handle.read()
    assert "Machine:" in goals and "frozen-to-exact gap" in goals
