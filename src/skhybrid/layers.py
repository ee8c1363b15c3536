"""BlackBoxLayer: a torch module whose weights live on a forward-only device."""

import copy

import numpy as np
import torch
from torch import nn

from ._autograd import BlackBoxFunction
from .black_boxes import BlackBox
from .black_boxes._base import _seed_from
from .surrogate import LowRankSurrogate, best_rank_error, project_probes
from .zeroth_order import DIRECTIONS, SCHEMES, estimate_gradient, sample_directions, zo_query_cost

__all__ = [
    "GRADIENT_MODES",
    "BlackBoxLayer",
    "black_box_layers",
    "seed_layers",
    "update_surrogates",
]

#: Absolute slack of the surrogate monitor, so that a surrogate that was
#: exact after its rebuild (reference error ~0) is not rebuilt at every check
#: for errors at the level of the measurement noise.
_MONITOR_SLACK = 0.01

#: gradient mode -> (input gradient, parameter gradient)
GRADIENT_MODES = {
    "astralora": ("surrogate", "zo"),
    "exact": ("autograd", "autograd"),
    "svd": ("surrogate", "zo"),
    "zo_only": ("autograd", "zo"),
    "surrogate_only": ("surrogate", "autograd"),
    "frozen": ("autograd", None),
}


class BlackBoxLayer(nn.Module):
    """A linear layer ``y = A(params) x`` computed by a black box.

    The forward pass queries the black box. The backward pass gives the
    input gradient ``G A`` from a low-rank surrogate ``A ~ U S V^T`` and the
    parameter gradient from a zeroth-order estimate, both from forward
    queries only. After each optimiser step, :meth:`update_surrogate` moves
    the surrogate to the new parameters (the estimators call it for you).

    Parameters
    ----------
    black_box : BlackBox
        The device. The layer keeps it (not a copy) and counts every query.
    rank : int, default=8
        Surrogate rank ``r``, in ``[1, min(d_in, d_out)]``.
    zo_samples : int, default=16
        Random directions ``M_BB`` per ZO estimate.
    surrogate_samples : int or "auto", default="auto"
        Random probes ``M_SM`` of the randomised L-step. ``"auto"`` uses
        ``4 * rank`` probes, and switches to exact probing (re-truncating the
        fully measured matrix by SVD) whenever that costs no more queries,
        ``d_in <= 2 (rank + M_SM)``.
    gradient : {"astralora", "exact", "svd", "zo_only", "surrogate_only", "frozen"}, default="astralora"
        Where the two gradients come from:

        ===================  ===============================  ==================
        mode                 input gradient                   parameter gradient
        ===================  ===============================  ==================
        ``astralora``        surrogate                        ZO estimate
        ``exact``            autograd through the simulator   autograd
        ``svd``              rank-r SVD rebuilt every step    ZO estimate
        ``zo_only``          autograd through the simulator   ZO estimate
        ``surrogate_only``   surrogate                        autograd
        ``frozen``           autograd through the simulator   none (kept at init)
        ===================  ===============================  ==================

        The oracle modes need a differentiable simulation. ``"frozen"`` is the
        control that shows what training the device adds: only the layers
        around it learn.
    random_state : int, numpy RandomState or None, default=None
        Seeds the ZO directions and surrogate probes. Give each layer of a
        network its own seed (:func:`seed_layers` does).
    zo_directions : {"gaussian", "rademacher", "orthogonal"}, default="gaussian"
        Distribution of the ZO directions.
    zo_scheme : {"forward", "central"}, default="forward"
        One-sided differences against the forward pass's own outputs, or
        central differences (twice the configurations, robust to noise).
    mu : float or None, default=None
        Finite-difference step; ``None`` takes the black box's
        :meth:`~skhybrid.black_boxes.BlackBox.suggested_mu`: its own ``mu``
        for an ideal device, larger under measurement noise, parameter
        quantisation or drift.
    compressed_batch : bool or "auto", default="auto"
        Send the ``d_out`` vectors ``G^T X`` instead of the batch to each ZO
        configuration. ``"auto"`` does so when the device is linear in ``x``
        and it costs fewer vectors; ``True`` requires linearity.
    probes : {"gaussian", "rademacher", "orthogonal"}, default="orthogonal"
        Distribution of the randomised L-step probes.
    output_scale : bool, default=True
        Multiply the output by a learnable scalar (as in the paper).
    bias : bool, default=False
        Add a learnable digital bias.
    rebuild_every : int or None, default=None
        Rebuild the surrogate from ``d_in`` exact probes every this many
        updates.
    monitor_every : int or None, default=None
        Every this many updates, measure the surrogate's relative error on
        ``monitor_samples`` fresh probes (:meth:`monitor_surrogate`), and
        rebuild the surrogate when that error exceeds
        ``(1 + monitor_tol) * e0 + 0.01``, with ``e0`` its value just after
        the last rebuild (the best rank-r error is unknown, so the reference
        is the error the surrogate had when it was exact; the 0.01 keeps an
        exact surrogate from being rebuilt for noise-level errors).
    monitor_samples : int, default=8
    monitor_tol : float, default=0.25

    Attributes
    ----------
    params : nn.Parameter of shape (n_params,)
        The black box's current parameters.
    scale : nn.Parameter of shape () or None
        Output scale.
    surrogate : LowRankSurrogate
    n_queries : dict
        ``{"forward"|"zo"|"surrogate": {"vectors": int, "configurations": int}}``.

    Notes
    -----
    Query cost of one training step with the forward scheme and batch ``B``:
    ``B`` vectors for the forward pass; ``M_BB * B`` vectors on ``M_BB``
    configurations for the ZO estimate (or ``(M_BB + 1) d_out`` compressed);
    and for the surrogate either ``d_in`` vectors on one configuration
    (exact branch) or ``2 (r + M_SM)`` vectors, half at the current
    configuration (taken during the forward pass, so the device is never set
    back to old parameters) and half at the new one.

    References
    ----------
    .. [1] G. Chertkov, A. Basharin, M. Saygin, E. Frolov, S. Straupe,
       I. Oseledets, "Low-rank surrogate modeling and stochastic zero-order
       optimization for training of neural networks with black-box layers",
       arXiv:2509.15113, 2025.
    .. [2] C. Lubich, I. Oseledets, "A projector-splitting integrator for
       dynamical low-rank approximation", BIT Numer. Math. 54, 2014.

    Examples
    --------
    >>> import torch
    >>> from skhybrid import BlackBoxLayer, make_black_box
    >>> layer = BlackBoxLayer(make_black_box("slm", 6, 4, random_state=0), rank=2,
    ...                       random_state=0)
    >>> layer(torch.ones(3, 6)).shape
    torch.Size([3, 4])
    """

    def __init__(self, black_box, rank=8, zo_samples=16, surrogate_samples="auto",
                 gradient="astralora", random_state=None, *, zo_directions="gaussian",
                 zo_scheme="forward", mu=None, compressed_batch="auto",
                 probes="orthogonal", output_scale=True, bias=False, rebuild_every=None,
                 monitor_every=None, monitor_samples=8, monitor_tol=0.25):
        super().__init__()
        if not isinstance(black_box, BlackBox):
            raise TypeError(
                f"black_box must be a BlackBox (see skhybrid.make_black_box); got {black_box!r}"
            )
        if gradient not in GRADIENT_MODES:
            raise ValueError(f"gradient must be one of {sorted(GRADIENT_MODES)}; got {gradient!r}")
        if gradient != "astralora" and gradient != "svd" and not black_box.differentiable:
            raise ValueError(
                f"gradient={gradient!r} differentiates through the simulation, which "
                f"{type(black_box).__name__} does not offer; use 'astralora' or 'svd'"
            )
        _check_int("zo_samples", zo_samples, 1)
        if surrogate_samples != "auto":
            _check_int("surrogate_samples", surrogate_samples, 1, extra='or "auto"')
        _check_choice("zo_directions", zo_directions, DIRECTIONS)
        _check_choice("zo_scheme", zo_scheme, SCHEMES)
        _check_choice("probes", probes, DIRECTIONS)
        if compressed_batch not in ("auto", True, False):
            raise ValueError(f'compressed_batch must be True, False or "auto"; got {compressed_batch!r}')
        if compressed_batch is True and not black_box.linear_in_x:
            raise ValueError("compressed_batch=True needs a black box that is linear in x")
        if mu is not None and not (isinstance(mu, (int, float)) and mu > 0):
            raise ValueError(f"mu must be None or a float > 0; got {mu!r}")
        for name, value in (("rebuild_every", rebuild_every), ("monitor_every", monitor_every)):
            if value is not None:
                _check_int(name, value, 1, extra="or None")
        _check_int("monitor_samples", monitor_samples, 1)

        self.black_box = black_box
        self.d_in, self.d_out = black_box.d_in, black_box.d_out
        self.rank = rank
        self.zo_samples = zo_samples
        self.surrogate_samples = surrogate_samples
        self.gradient = gradient
        self.random_state = random_state
        self.zo_directions = zo_directions
        self.zo_scheme = zo_scheme
        self.mu = float(black_box.suggested_mu(zo_samples) if mu is None else mu)
        self.compressed_batch = compressed_batch
        self.probes = probes
        self.rebuild_every = rebuild_every
        self.monitor_every = monitor_every
        self.monitor_samples = monitor_samples
        self.monitor_tol = float(monitor_tol)

        self.surrogate = LowRankSurrogate(self.d_out, self.d_in, rank)
        self.rank = self.surrogate.rank
        self.zo_samples = int(zo_samples)
        if surrogate_samples != "auto":
            self.surrogate_samples = int(surrogate_samples)
        self.params = nn.Parameter(black_box.params0.clone().to(torch.get_default_dtype()),
                                   requires_grad=gradient != "frozen")
        self.scale = nn.Parameter(torch.ones(())) if output_scale else None
        self.bias = nn.Parameter(torch.zeros(self.d_out)) if bias else None
        # Where the surrogate is valid, and whether it has been built yet.
        self.register_buffer("surrogate_params", torch.zeros(black_box.n_params, dtype=torch.float64))
        self.register_buffer("surrogate_ready", torch.zeros((), dtype=torch.bool))
        self.register_buffer("n_updates", torch.zeros((), dtype=torch.long))
        seed = _seed_from(random_state)
        self._zo_generator = torch.Generator().manual_seed(seed)
        self._probe_generator = torch.Generator().manual_seed(seed + 7919)
        self._old_probes = None
        self._monitor_reference = None
        self.last_monitored_error = None
        self.n_rebuilds = 0

    # ----------------------------------------------------------- properties
    @property
    def input_gradient_source(self):
        """``"surrogate"`` or ``"autograd"``, from the gradient mode."""
        return GRADIENT_MODES[self.gradient][0]

    @property
    def uses_surrogate(self):
        """Whether this mode's backward needs the surrogate."""
        return self.input_gradient_source == "surrogate"

    @property
    def n_surrogate_samples(self):
        """The L-step probe count ``M_SM`` actually used."""
        if self.surrogate_samples == "auto":
            return 4 * self.rank
        return self.surrogate_samples

    @property
    def exact_probing(self):
        """Whether each surrogate update measures the whole matrix (then re-truncates by SVD)."""
        if self.gradient == "svd":
            return True
        if self.surrogate_samples != "auto":
            return False
        return self.d_in <= 2 * (self.rank + self.n_surrogate_samples)

    @property
    def n_faults(self):
        """Failed device attempts by kind, and ZO directions dropped (see ``BlackBox.n_faults``)."""
        return dict(self.black_box.n_faults)

    @property
    def n_queries(self):
        """Query counters by purpose: ``{"forward"|"zo"|"surrogate": {"vectors", "configurations"}}``."""
        return copy.deepcopy(self.black_box.counts)

    def black_box_parameters(self):
        """The parameters the black-box optimiser should train: ``params`` and ``scale``."""
        return [p for p in (self.params, self.scale) if p is not None]

    # -------------------------------------------------------------- forward
    def forward(self, x):
        if x.shape[-1] != self.d_in:
            raise ValueError(f"expected inputs with last dimension {self.d_in}; got {tuple(x.shape)}")
        lead = x.shape[:-1]
        x2 = x.reshape(-1, self.d_in)
        training_step = torch.is_grad_enabled() and (x.requires_grad or self.params.requires_grad)
        if self.gradient in ("exact", "frozen"):
            y = self.black_box.query_differentiable(x2, self.params, "forward")
        else:
            if training_step and self.uses_surrogate and not bool(self.surrogate_ready):
                self.rebuild_surrogate()
            y = BlackBoxFunction.apply(x2, self.params, self)
            if training_step and self.uses_surrogate:
                self._take_old_probes()
        y = y.to(x.dtype)
        if self.scale is not None:
            y = y * self.scale
        if self.bias is not None:
            y = y + self.bias
        return y.reshape(*lead, self.d_out)

    def _take_old_probes(self):
        """Measure the L-step probes at the current configuration, during the forward pass.

        The device is at these parameters already, so this costs vectors but
        no reconfiguration, and the update after the optimiser step never
        has to set the device back.
        """
        if self.exact_probing or self._old_probes is not None:
            return
        current = self.params.detach().to(torch.float64)
        if not torch.equal(current, self.surrogate_params):
            return
        Z = project_probes(self._draw_probes(self.n_surrogate_samples), self.surrogate.V)
        inputs = torch.cat([self.surrogate.V.T, Z])
        measured = self.black_box.query(inputs, current, "surrogate")
        self._old_probes = (current.clone(), inputs, measured)

    def _draw_probes(self, n):
        return sample_directions(n, self.d_in, self.probes, generator=self._probe_generator,
                                 device=self.params.device)

    # ------------------------------------------------------------- backward
    def _input_gradient(self, G, x, params):
        if self.input_gradient_source == "surrogate":
            return self.surrogate.input_gradient(G)
        grad_x, _ = self._oracle_vjp(G, x, params, wrt_x=True)
        return grad_x

    def _params_gradient(self, G, x, params, measured):
        if GRADIENT_MODES[self.gradient][1] == "autograd":
            _, grad_p = self._oracle_vjp(G, x, params, wrt_x=False)
            return grad_p
        B = x.shape[0]
        compressed = self._use_compressed(B)

        def query(X, P):
            return self.black_box.query(X, P, "zo", partial=True)

        grad = estimate_gradient(
            query, x, G, params, mu=self.mu, n_samples=self.zo_samples,
            generator=self._zo_generator, directions=self.zo_directions,
            scheme=self.zo_scheme, baseline=measured, compressed=compressed,
        )
        # Never let a bad estimate turn the parameters into NaN.
        return grad if torch.isfinite(grad).all() else torch.zeros_like(grad)

    def _use_compressed(self, batch_size):
        if self.compressed_batch != "auto":
            return self.compressed_batch
        if not self.black_box.linear_in_x:
            return False
        cost = {c: zo_query_cost(self.zo_samples, batch_size, self.d_out,
                                 scheme=self.zo_scheme, compressed=c)["vectors"]
                for c in (False, True)}
        return cost[True] < cost[False]

    def _oracle_vjp(self, G, x, params, wrt_x):
        """Autograd through the ideal simulation (oracle modes only; not a device query)."""
        with torch.enable_grad():
            x64 = x.detach().to(torch.float64).requires_grad_(wrt_x)
            p64 = params.detach().to(torch.float64).requires_grad_(not wrt_x)
            y = self.black_box._forward(x64, p64.reshape(1, -1))[0]
            target = x64 if wrt_x else p64
            (grad,) = torch.autograd.grad(y, target, G.to(torch.float64))
        return (grad, None) if wrt_x else (None, grad)

    # ------------------------------------------------------------ surrogate
    @torch.no_grad()
    def update_surrogate(self):
        """Move the surrogate to the current parameters; call after ``optimizer.step()``.

        Does nothing when the parameters have not changed since the last
        update (so gradient accumulation triggers exactly one update per
        step), or in the modes that do not use a surrogate.

        Returns
        -------
        bool
            Whether the surrogate changed.
        """
        if not self.uses_surrogate:
            return False
        current = self.params.detach().to(torch.float64)
        if not bool(self.surrogate_ready):
            self.rebuild_surrogate()
            return True
        if torch.equal(current, self.surrogate_params):
            return False
        self.n_updates += 1
        n = int(self.n_updates)
        old = self._old_probes
        self._old_probes = None
        if (self.exact_probing or old is None or not torch.equal(old[0], self.surrogate_params)
                or (self.rebuild_every and n % self.rebuild_every == 0)):
            # Without probes at the old parameters the increment is unknown;
            # measuring the whole matrix is then the only forward-only way.
            self.rebuild_surrogate()
        else:
            _, inputs, measured_old = old
            measured_new = self.black_box.query(inputs, current, "surrogate")
            diff = measured_new - measured_old
            r = self.rank
            accepted = self.surrogate.psi_update(diff[:r].T, inputs[r:], diff[r:])
            if not accepted:
                self.rebuild_surrogate()
            self.surrogate_params.copy_(current)
        if self._monitoring and n % self.monitor_every == 0:
            error = self.last_monitored_error = self.monitor_surrogate()
            if self._monitor_reference is None:
                # No reference (e.g. restored from an older checkpoint): take this one.
                self._monitor_reference = error
            elif error > (1 + self.monitor_tol) * self._monitor_reference + _MONITOR_SLACK:
                self.rebuild_surrogate()
        return True

    @property
    def _monitoring(self):
        # An exactly probed surrogate is rebuilt at every update: nothing to monitor.
        return bool(self.monitor_every) and not self.exact_probing

    @torch.no_grad()
    def rebuild_surrogate(self):
        """Measure the whole matrix with ``d_in`` identity probes and truncate it by SVD."""
        current = self.params.detach().to(torch.float64)
        eye = torch.eye(self.d_in, dtype=torch.float64, device=current.device)
        A = self.black_box.query(eye, current, "surrogate").T
        self.surrogate.set_from_matrix(A)
        self.surrogate_params.copy_(current)
        self.surrogate_ready.fill_(True)
        self._old_probes = None
        self.n_rebuilds += 1
        if self._monitoring:
            self._monitor_reference = self.monitor_surrogate()

    @torch.no_grad()
    def monitor_surrogate(self):
        """Relative error of the surrogate on a few fresh probes (counted queries).

        ``|f(Z) - Z (U S V^T)^T| / |f(Z)|`` on ``monitor_samples`` Gaussian
        probes at the current parameters: an error proxy that needs no
        access to the true matrix.
        """
        current = self.params.detach().to(torch.float64)
        Z = torch.randn(self.monitor_samples, self.d_in, generator=self._probe_generator,
                        dtype=torch.float64).to(current.device)
        measured = self.black_box.query(Z, current, "surrogate")
        predicted = Z @ self.surrogate.matrix().T
        denom = torch.linalg.matrix_norm(measured)
        return float(torch.linalg.matrix_norm(measured - predicted) / denom) if denom > 0 else 0.0

    @torch.no_grad()
    def surrogate_error(self):
        """Relative Frobenius error of the surrogate against the true matrix.

        A simulation-only diagnostic: it reads the ideal matrix from the
        simulator, and those reads are not counted as queries.
        """
        A = self._true_matrix()
        return float(torch.linalg.matrix_norm(A - self.surrogate.matrix().to(A.device))
                     / torch.linalg.matrix_norm(A))

    @torch.no_grad()
    def best_surrogate_error(self):
        """The best relative error any rank-``rank`` surrogate could reach now (simulation only)."""
        return best_rank_error(self._true_matrix(), self.rank)

    def _true_matrix(self):
        if not self.black_box.differentiable:
            raise TypeError("the true matrix is only known for simulated black boxes")
        return self.black_box.matrix(self.params.detach().to(torch.float64))

    # ----------------------------------------------------------- plumbing
    def reseed(self, random_state):
        """Reseed the ZO and probe generators (used by :func:`seed_layers`)."""
        self.random_state = random_state
        seed = _seed_from(random_state)
        self._zo_generator.manual_seed(seed)
        self._probe_generator.manual_seed(seed + 7919)

    def extra_repr(self):
        return (f"{self.black_box!r}, rank={self.rank}, zo_samples={self.zo_samples}, "
                f"surrogate_samples={self.surrogate_samples!r}, gradient={self.gradient!r}")

    def get_extra_state(self):
        """Random streams, drift and counters, so a checkpoint resumes exactly.

        Saved in ``state_dict`` under ``_extra_state``, as plain tensors,
        ints and dicts (loadable with ``torch.load(weights_only=True)``).
        """
        box = self.black_box
        return {
            "zo_generator": self._zo_generator.get_state(),
            "probe_generator": self._probe_generator.get_state(),
            "noise_generator": box._noise_generator.get_state(),
            "drift": box._drift.clone(),
            "counts": copy.deepcopy(box.counts),
            "n_faults": dict(box.n_faults),
            "n_rebuilds": self.n_rebuilds,
            # -1: no reference yet (the monitor measures one at the next rebuild).
            "monitor_reference": -1.0 if self._monitor_reference is None
            else float(self._monitor_reference),
        }

    def set_extra_state(self, state):
        box = self.black_box
        self._zo_generator.set_state(state["zo_generator"])
        self._probe_generator.set_state(state["probe_generator"])
        box._noise_generator.set_state(state["noise_generator"])
        box._drift = state["drift"].clone()
        box.counts = copy.deepcopy(state["counts"])
        box.n_faults = dict(state["n_faults"])
        self.n_rebuilds = int(state["n_rebuilds"])
        reference = float(state.get("monitor_reference", -1.0))
        self._monitor_reference = None if reference < 0 else reference
        # The device's current setting is unknown after a restore: the next
        # query counts as a reconfiguration.
        box._programmed = None
        self._old_probes = None

    def __getstate__(self):
        state = self.__dict__.copy()
        # Transient probes belong to one step; they are re-taken on the next forward.
        state["_old_probes"] = None
        return state


def black_box_layers(module):
    """All :class:`BlackBoxLayer` s inside ``module``, in ``modules()`` order."""
    return [m for m in module.modules() if isinstance(m, BlackBoxLayer)]


def update_surrogates(module):
    """Call :meth:`BlackBoxLayer.update_surrogate` on every black-box layer of ``module``.

    Call it after each ``optimizer.step()`` in a plain torch training loop.

    Returns
    -------
    int
        How many surrogates changed.
    """
    return sum(layer.update_surrogate() for layer in black_box_layers(module))


def seed_layers(module, random_state):
    """Give every black-box layer of ``module`` its own seed derived from ``random_state``.

    Layers seeded with the same int would draw the same directions; this
    spawns independent streams, one per layer, reproducibly.
    """
    layers = black_box_layers(module)
    root = np.random.SeedSequence(_seed_from(random_state))
    for layer, child in zip(layers, root.spawn(len(layers))):
        layer.reseed(int(child.generate_state(1)[0] % (2**31 - 2)))
    return module


def _check_int(name, value, low, extra=""):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name} must be an int >= {low} {extra}; got {value!r}".replace("  ", " "))


def _check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}; got {value!r}")
