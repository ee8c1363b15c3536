"""Running benchmark specs: one training run per spec, in worker processes.

A *spec* is a flat dict naming everything a run depends on (dataset, split,
network, device, mode, rank, ZO samples, seed, epochs, ...). :func:`run_spec`
trains it and returns the spec extended with the measurements; the result is
plain JSON. :func:`run_specs` runs many specs, optionally in ``jobs`` worker
processes (each single-threaded), and appends every result to a JSON-lines
file as soon as it is done, so an interrupted run keeps what it measured.
"""

import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context

import numpy as np
import torch
from skorch.callbacks import Callback

from ..layers import black_box_layers, update_surrogates
from .models import BenchLayerFactory, CharTransformer, Conv1dNet, SmallCNN, char_batches
from .paper import PaperBlackBoxLayer

__all__ = ["MEASUREMENTS", "SurrogateTrace", "run_spec", "run_specs", "spec_of"]

#: The fields :func:`run_spec` adds to a spec; everything else in a result is the spec.
MEASUREMENTS = frozenset((
    "accuracy", "train_accuracy", "fit_time", "n_train", "n_test", "n_steps",
    "n_query_vectors", "n_query_configurations", "queries_per_sample", "queries",
    "trace_steps", "surrogate_error", "best_error", "val_loss", "train_loss", "val_curve",
    "wall_time", "reused"))


def spec_of(result):
    """The spec a result was measured for (the result without its measurements)."""
    return {k: v for k, v in result.items() if k not in MEASUREMENTS}

_DATA = {}


# ------------------------------------------------------------------- data
def load_data(name, split=None):
    """The dataset of a spec, cached per process."""
    key = (name, split)
    if key in _DATA:
        return _DATA[key]
    from .. import datasets

    if name == "digits":
        data = datasets.load_digits()
    elif name == "fsdd-pooled":
        data = datasets.load_fsdd(split or "customary", pooled=True)
    elif name == "fsdd-seq":
        data = datasets.load_fsdd(split or "customary", pooled=False)
    elif name == "tinyshakespeare":
        data = datasets.load_tinyshakespeare()
    else:
        raise ValueError(f"unknown benchmark dataset {name!r}")
    _DATA[key] = data
    return data


# --------------------------------------------------------------- networks
def build_network(spec, data, factory):
    """The torch network of a classification spec (``spec["model"]``)."""
    from ..modules import FrontNetwork, HiddenNetwork

    model = spec["model"]
    n_features = data.X_train.shape[1]
    width = int(spec.get("width", 64))
    if model == "mlp-hidden":
        return HiddenNetwork(n_features, 10, factory, hidden_units=width)
    if model == "mlp-front":
        return FrontNetwork(n_features, 10, factory, hidden_units=width)
    if model in ("cnn", "cnn-fixed"):
        return SmallCNN(10, factory, image_shape=data.image_shape, hidden_units=width,
                        trainable_features=model == "cnn")
    if model in ("conv1d", "conv1d-fixed"):
        bands, frames = data.feature_shape
        return Conv1dNet(10, factory, n_bands=bands, n_frames=frames,
                         channels=int(spec.get("channels", 32)), embedding=width,
                         trainable_features=model == "conv1d")
    raise ValueError(f"unknown benchmark model {model!r}")


def _factory(spec):
    return BenchLayerFactory(spec["device"], spec["mode"], rank=int(spec.get("rank", 8)),
                             zo_samples=int(spec.get("zo_samples", 16)),
                             surrogate_samples=spec.get("surrogate_samples", "auto"),
                             random_state=int(spec["seed"]))


# ------------------------------------------------------------- diagnostics
def _surrogate_errors(module):
    """(error, best rank-r error) of the surrogate each backward pass uses, mean over layers."""
    errors, best = [], []
    for layer in black_box_layers(module):
        if not (layer.uses_surrogate and layer.black_box.differentiable
                and bool(layer.surrogate_ready)):
            continue
        A = layer.black_box.matrix(layer.params.detach().to(torch.float64))
        if isinstance(layer, PaperBlackBoxLayer):
            S = layer.effective_surrogate_matrix()
        else:
            S = layer.surrogate.matrix()
        norm = float(torch.linalg.matrix_norm(A))
        if norm == 0:
            continue
        errors.append(float(torch.linalg.matrix_norm(A - S.to(A.device))) / norm)
        best.append(layer.best_surrogate_error())
    if not errors:
        return None
    return float(np.mean(errors)), float(np.mean(best))


class SurrogateTrace(Callback):
    """Record, every ``every`` training batches, the surrogate's error and the best rank-r error.

    A simulation-only diagnostic (the true matrix is read from the
    simulator; no counted queries). For the paper's emulated layer the error
    is that of the lagged surrogate its backward pass uses.
    """

    def __init__(self, every=15):
        self.every = every

    def on_train_begin(self, net, **kwargs):
        self.steps_, self.errors_, self.best_ = [], [], []
        self._n = 0

    def on_batch_end(self, net, training=False, **kwargs):
        if not training:
            return
        self._n += 1
        if self._n % self.every:
            return
        values = _surrogate_errors(net.module_)
        if values is not None:
            self.steps_.append(self._n)
            self.errors_.append(values[0])
            self.best_.append(values[1])


def _query_breakdown(module):
    out = {}
    seen = set()
    for layer in black_box_layers(module):
        if id(layer.black_box) in seen:
            continue
        seen.add(id(layer.black_box))
        for purpose, c in layer.n_queries.items():
            for key, value in c.items():
                out[f"{purpose}_{key}"] = out.get(f"{purpose}_{key}", 0) + int(value)
    return out


# --------------------------------------------------------------- training
def _fit_classifier(spec):
    from .. import HybridClassifier

    data = load_data(spec["dataset"], spec.get("split"))
    factory = _factory(spec)
    seed = int(spec["seed"])
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        net = build_network(spec, data, factory)
    trace = SurrogateTrace(every=int(spec.get("trace_every", 15)))
    clf = HybridClassifier(
        module=net, black_box="digital" if factory.digital else spec["device"],
        max_epochs=int(spec["epochs"]), batch_size=int(spec.get("batch_size", 32)),
        lr=float(spec.get("lr", 3e-3)), black_box_lr=float(spec.get("black_box_lr", 0.01)),
        callbacks=[("trace", trace)], random_state=seed,
    )
    start = time.perf_counter()
    clf.fit(data.X_train, data.y_train)
    fit_time = time.perf_counter() - start
    module = clf.net_.module_
    queries = _query_breakdown(module)
    fitted_trace = dict(clf.net_.callbacks_).get("trace", trace)
    accuracy = float(clf.score(data.X_test, data.y_test))
    train_accuracy = float(clf.score(data.X_train, data.y_train))
    n_samples = len(data.X_train) * int(spec["epochs"])
    n_vectors = sum(v for k, v in queries.items() if k.endswith("_vectors"))
    return dict(
        accuracy=accuracy, train_accuracy=train_accuracy, fit_time=fit_time,
        n_train=len(data.X_train), n_test=len(data.X_test),
        n_steps=int(np.ceil(len(data.X_train) / int(spec.get("batch_size", 32))))
        * int(spec["epochs"]),
        n_query_vectors=n_vectors,
        n_query_configurations=sum(v for k, v in queries.items()
                                   if k.endswith("_configurations")),
        queries_per_sample=n_vectors / n_samples,
        queries=queries,
        trace_steps=list(getattr(fitted_trace, "steps_", [])),
        surrogate_error=list(getattr(fitted_trace, "errors_", [])),
        best_error=list(getattr(fitted_trace, "best_", [])),
    )


@torch.no_grad()
def _lm_loss(model, ids, batch_size, context, n_batches, seed):
    gen = torch.Generator().manual_seed(seed)
    model.eval()
    losses = [float(model.loss(*_lm_pair(model, ids, batch_size, context, gen)))
              for _ in range(n_batches)]
    model.train()
    return float(np.mean(losses))


def _lm_pair(model, ids, batch_size, context, gen):
    X, Y = char_batches(ids, batch_size, context, gen)
    return model(X), Y


def _fit_lm(spec):
    data = load_data("tinyshakespeare")
    train = torch.as_tensor(data.train)
    valid = torch.as_tensor(data.valid)
    seed = int(spec["seed"])
    mode = spec["mode"]
    replacement = {"ffn": "none", "identity": "identity"}.get(mode, "layer")
    factory = _factory({**spec, "mode": "digital" if mode in ("ffn", "identity") else mode})
    context = int(spec.get("context", 64))
    batch_size = int(spec.get("batch_size", 16))
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = CharTransformer(data.n_chars, factory, d_model=int(spec.get("d_model", 64)),
                                n_heads=int(spec.get("n_heads", 4)),
                                n_layers=int(spec.get("n_layers", 2)), context=context,
                                n_replaced=int(spec.get("n_replaced", 1)),
                                replacement=replacement)
    from ..layers import seed_layers

    seed_layers(model, seed)
    on_device = {id(p) for layer in black_box_layers(model) for p in layer.black_box_parameters()}
    trainable = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in trainable if id(p) not in on_device]},
              {"params": [p for p in trainable if id(p) in on_device],
               "lr": float(spec.get("black_box_lr", 0.01)), "weight_decay": 0.0}]
    optimizer = torch.optim.AdamW([g for g in groups if g["params"]],
                                  lr=float(spec.get("lr", 3e-3)), weight_decay=0.01)
    steps = int(spec["steps"])
    eval_every = int(spec.get("eval_every", max(1, steps // 4)))
    n_eval = int(spec.get("eval_batches", 8))
    gen = torch.Generator().manual_seed(seed + 1)
    curve, errors, best, trace_steps = [], [], [], []
    trace_every = int(spec.get("trace_every", 25))
    fit_time = 0.0
    for step in range(1, steps + 1):
        start = time.perf_counter()
        X, Y = char_batches(train, batch_size, context, gen)
        loss = model.loss(model(X), Y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        update_surrogates(model)
        fit_time += time.perf_counter() - start
        if step % trace_every == 0:
            values = _surrogate_errors(model)
            if values is not None:
                trace_steps.append(step)
                errors.append(values[0])
                best.append(values[1])
        if step % eval_every == 0 or step == steps:
            curve.append((step, _lm_loss(model, valid, batch_size, context, n_eval, 12345)))
    queries = _query_breakdown(model)
    n_vectors = sum(v for k, v in queries.items() if k.endswith("_vectors"))
    return dict(
        val_loss=curve[-1][1], train_loss=float(loss.detach()), fit_time=fit_time,
        n_steps=steps, val_curve=curve,
        n_query_vectors=n_vectors,
        n_query_configurations=sum(v for k, v in queries.items()
                                   if k.endswith("_configurations")),
        queries_per_sample=n_vectors / (steps * batch_size * context),
        queries=queries, trace_steps=trace_steps, surrogate_error=errors, best_error=best,
    )


_WARM = []


def _warm_up():
    """One tiny fit per process, so that the first timed run pays no import or warm-up cost."""
    if _WARM:
        return
    _WARM.append(True)
    for mode in ("digital", "astralora", "exact"):
        _fit_classifier(dict(dataset="digits", model="mlp-front", width=8, device="slm",
                             mode=mode, seed=0, epochs=1, rank=2, zo_samples=2))


def run_spec(spec):
    """Train one spec and return ``{**spec, **measurements}`` (plain JSON types)."""
    torch.set_num_threads(1)
    _warm_up()
    start = time.perf_counter()
    if spec["model"] == "transformer":
        out = _fit_lm(spec)
    else:
        out = _fit_classifier(spec)
    out["wall_time"] = time.perf_counter() - start
    return {**spec, **out}


def _init_worker():
    torch.set_num_threads(1)
    os.environ.setdefault("OMP_NUM_THREADS", "1")


def _describe(result):
    metric = (f"acc={result['accuracy']:.4f}" if "accuracy" in result
              else f"val_loss={result['val_loss']:.4f}")
    extra = [f"{k}={result[k]}" for k in ("split", "rank", "zo_samples") if k in result]
    return (f"{result['task']}/{result['dataset']}/{result['model']} {result['device']} "
            f"{result['mode']} seed={result['seed']} {' '.join(extra)} {metric} "
            f"fit={result['fit_time']:.1f}s")


def run_specs(specs, *, jobs=1, log_path=None, verbose=True, cost=None):
    """Run every spec; return the results in the order of ``specs``.

    Parameters
    ----------
    specs : list of dict
    jobs : int, default=1
        Worker processes (``spawn``ed, one torch thread each). ``1`` runs in
        this process.
    log_path : path or None
        JSON-lines file each result is appended to as it completes.
    cost : callable or None
        ``cost(spec)`` estimate; the most expensive specs start first, which
        balances the workers.
    """
    order = sorted(range(len(specs)), key=lambda i: -cost(specs[i])) if cost else \
        list(range(len(specs)))
    results = [None] * len(specs)
    log = open(log_path, "a", encoding="utf-8") if log_path else None
    t0 = time.perf_counter()

    def done(i, result):
        results[i] = result
        if log:
            log.write(json.dumps(result) + "\n")
            log.flush()
        if verbose:
            n_done = sum(r is not None for r in results)
            print(f"[{n_done}/{len(specs)} {time.perf_counter() - t0:6.0f}s] {_describe(result)}",
                  flush=True)

    try:
        if jobs <= 1:
            _init_worker()
            for i in order:
                done(i, run_spec(specs[i]))
        else:
            with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn"),
                                     initializer=_init_worker) as pool:
                futures = {pool.submit(run_spec, specs[i]): i for i in order}
                for future in as_completed(futures):
                    done(futures[future], future.result())
    finally:
        if log:
            log.close()
    return results


def machine_description():
    """A one-line description of this machine and the software versions."""
    import platform

    import sklearn
    import skorch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (f"{cpu}, {os.cpu_count()} logical CPUs; Python {platform.python_version()}, "
            f"torch {torch.__version__}, scikit-learn {sklearn.__version__}, "
            f"skorch {skorch.__version__}, numpy {np.__version__}; {sys.platform}")


def expand(base, settings, seeds):
    """Specs for every (setting, device, mode, seed).

    Parameters
    ----------
    base : dict
        Fields shared by every spec (task, dataset, epochs, ...).
    settings : list of dict
        Each with ``setting``, ``model``, ``width`` (and any other spec
        fields) and ``modes``: ``{device: modes}``. ``"digital"`` in a
        device's modes is run once per setting, as device ``"digital"``.
    seeds : int or sequence of int
    """
    seeds = range(seeds) if isinstance(seeds, int) else seeds
    specs = []
    for setting in settings:
        fields = {k: v for k, v in setting.items() if k != "modes"}
        pairs, digital = [], False
        for device, modes in setting["modes"].items():
            for mode in modes:
                if mode == "digital":
                    digital = True
                else:
                    pairs.append((device, mode))
        if digital:
            pairs.insert(0, ("digital", "digital"))
        defaults = dict(rank=8, zo_samples=16, surrogate_samples="auto")
        for seed in seeds:
            for device, mode in pairs:
                specs.append({**defaults, **base, **fields, "device": device, "mode": mode,
                              "seed": seed})
    return specs


def estimated_cost(spec):
    """A rough relative cost of a spec, to start the slow ones first."""
    device = {"mzi": 6.0, "mzi_classical": 6.0, "mrr": 1.3}.get(spec["device"], 1.0)
    mode = {"astralora": 2.5, "paper": 2.5, "svd": 2.5, "zo_only": 2.5}.get(spec["mode"], 1.0)
    zo = max(1.0, int(spec.get("zo_samples", 16)) / 16.0)
    if spec["model"] == "transformer":
        return spec["steps"] * 0.05 * (1 + 0.3 * device * mode)
    size = {"digits": 1.4, "fsdd-pooled": 2.7, "fsdd-seq": 2.7}.get(spec["dataset"], 1.0)
    return size * spec["epochs"] * (1 + 0.3 * device * mode * zo)
