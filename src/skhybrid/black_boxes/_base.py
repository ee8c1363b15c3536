"""The forward-only black-box contract shared by every simulated or real device."""

import copy
import math

import numpy as np
import torch

from .imperfections import Imperfections

__all__ = ["FAULT_KINDS", "QUERY_PURPOSES", "BlackBox", "BlackBoxError"]

#: The purposes a query can be made for; counters are kept per purpose.
QUERY_PURPOSES = ("forward", "zo", "surrogate")
#: The kinds of fault counted in ``BlackBox.n_faults``.
FAULT_KINDS = ("exception", "timeout", "non_finite", "shape", "dropped")


class BlackBoxError(RuntimeError):
    """A black-box query kept failing after its retries.

    Attributes
    ----------
    purpose : str
        What the query was for (``"forward"``, ``"zo"``, ``"surrogate"``).
    cause : BaseException
        The last failure.
    """

    def __init__(self, message, *, purpose=None, cause=None):
        super().__init__(message)
        self.purpose = purpose
        self.cause = cause


class _Fault(Exception):
    """A measurement the device returned but that cannot be used."""

    def __init__(self, kind, message):
        super().__init__(message)
        self.kind = kind


class BlackBox:
    """A linear-in-``x`` device that can only be run forward.

    ``y = A(params) x`` for a batch of input vectors ``X`` of shape
    ``(n, d_in)`` at one parameter setting ("configuration") ``params`` of
    shape ``(n_params,)``. Training code only calls :meth:`query`; that one
    place counts input vectors and configurations, and applies the
    black box's imperfections (noise, quantisation, drift).

    Subclasses implement :meth:`_forward`, a batched, torch-differentiable
    simulation, and :meth:`_initial_params`. Real instruments plug in through
    :class:`~skhybrid.black_boxes.CallableBlackBox`.

    Parameters
    ----------
    d_in, d_out : int
        Input and output widths.
    imperfections : Imperfections or dict or None, default=None
        Measurement noise, quantisation and drift applied to every query.
        ``None`` is an ideal device.
    random_state : int or None, default=None
        Seeds the initial parameters and the imperfection draws.

    Attributes
    ----------
    n_params : int
        Length of the parameter vector.
    mu : float
        Finite-difference step that suits the device.
    params0 : torch.Tensor of shape (n_params,)
        Initial parameter vector (float64).
    linear_in_x : bool
        True when ``query(a X1 + b X2) = a query(X1) + b query(X2)`` for an
        ideal device; enables the compressed-batch ZO estimate.
    differentiable : bool
        True for simulated devices, whose :meth:`_forward` supports autograd
        (used only by the oracle gradient modes).
    param_range : tuple of float or None
        ``(low, high)`` range the parameters are quantised over.
    param_period : float or None
        Period of the parameters (phases), used to wrap them before
        quantisation.
    counts : dict
        ``{purpose: {"vectors": int, "configurations": int}}`` for the
        purposes in :data:`QUERY_PURPOSES`.
    max_retries : int
        How many times a failed query is repeated before
        :class:`BlackBoxError` is raised (default 2).
    n_faults : dict
        Failed attempts by kind (``"exception"``, ``"timeout"``,
        ``"non_finite"``, ``"shape"``), and ``"dropped"``: configurations
        of a batch given up after their retries.
    """

    mu = 1e-4
    max_retries = 2
    linear_in_x = True
    differentiable = True
    param_range = None
    param_period = None

    def __init__(self, d_in, d_out, *, imperfections=None, random_state=None):
        self.d_in = _check_width("d_in", d_in)
        self.d_out = _check_width("d_out", d_out)
        self.imperfections = Imperfections.coerce(imperfections)
        self.random_state = random_state
        self._seed = _seed_from(random_state)
        gen = torch.Generator().manual_seed(self._seed)
        self.params0 = self._initial_params(gen).to(torch.float64).reshape(-1)
        self.n_params = int(self.params0.numel())
        if self.imperfections.param_bits is not None and not (
                self.imperfections.param_range or self.param_range):
            raise ValueError(
                f"param_bits needs a parameter range: {type(self).__name__} has none, "
                "pass param_range")
        self._noise_generator = torch.Generator().manual_seed(self._seed + 1)
        self._drift = torch.zeros(self.n_params, dtype=torch.float64)
        self._programmed = None
        self.reset_counts()

    # ------------------------------------------------------------------ API
    def query(self, X, params, purpose="forward", *, partial=False):
        """Run the device forward on a batch of inputs.

        Parameters
        ----------
        X : tensor of shape (n, d_in) or (k, n, d_in)
            Input vectors. With a batch of ``k`` configurations a 2-D ``X``
            is sent to every configuration.
        params : tensor of shape (n_params,) or (k, n_params)
            One configuration, or a batch of ``k`` configurations evaluated
            in one vectorised call (each still counted).
        purpose : {"forward", "zo", "surrogate"}, default="forward"
            What the query is for; only used for the counters.
        partial : bool, default=False
            For a batch of configurations: return the configurations that
            keep failing as NaN slices (to be dropped by the caller) instead
            of raising, unless all of them fail.

        Returns
        -------
        Y : tensor of shape (n, d_out) or (k, n, d_out)
            float64 measurements (the device's compute dtype), on ``X``'s
            torch device.

        Raises
        ------
        BlackBoxError
            When the device keeps failing (an exception, a timeout, NaN or
            inf, or the wrong shape) after ``max_retries`` retries.

        Notes
        -----
        Every attempt is counted: a failed measurement still used the device.
        """
        with torch.no_grad():
            return self._query(X, params, purpose, partial)

    def query_differentiable(self, X, params, purpose="forward"):
        """Like :meth:`query`, but differentiable through the simulation.

        For the oracle gradient modes (``"exact"``, ``"zo_only"``,
        ``"surrogate_only"``) only; training code in the black-box modes
        never calls it. Quantisation uses a straight-through estimator;
        noise and drift enter as constants.
        """
        if not self.differentiable:
            raise TypeError(
                f"{type(self).__name__} is not a differentiable simulation; the "
                "oracle gradient modes need one (use gradient='astralora')"
            )
        return self._query(X, params, purpose)

    def matrix(self, params=None):
        """The ideal matrix ``A(params)`` of shape (d_out, d_in).

        An oracle for tests and diagnostics: no imperfections, not counted.
        """
        params = self.params0 if params is None else params
        params = torch.as_tensor(params, dtype=torch.float64)
        if params.shape != (self.n_params,):
            raise ValueError(
                f"params must have shape (n_params,) = ({self.n_params},); "
                f"got {tuple(params.shape)}"
            )
        eye = torch.eye(self.d_in, dtype=torch.float64, device=params.device)
        with torch.no_grad():
            return self._forward(eye, params.reshape(1, -1))[0].T

    def suggested_mu(self, zo_samples=16):
        """A finite-difference step that suits the device *with* its imperfections.

        ``max(mu, noise + additive_noise, quantisation step,
        10 drift sqrt(zo_samples))``, where ``mu`` is the ideal device's step:

        * A ZO difference compares two sums over a batch of ``B`` inputs and
          ``d_out`` outputs; independent measurement noise of relative size
          ``e`` averages down by about ``sqrt(B d_out)`` in them, so balanced
          against the forward scheme's ``O(mu)`` truncation error the step is
          of the order of ``e`` itself (the textbook ``e**(1/3)`` suits one
          noisy scalar and the central scheme, and measured an order of
          magnitude too large here: ``docs/reliability.md``).
        * A step below one quantisation level does not move the device.
        * Drift moves every parameter at each of the ``zo_samples``
          reprogrammings of one estimate, the same for the whole batch, so
          the step must dwarf the drift accumulated over an estimate.

        Parameters
        ----------
        zo_samples : int, default=16
            Directions per ZO estimate (reprogrammings the drift accumulates over).

        Returns
        -------
        float
        """
        imp = self.imperfections
        mu = max(float(self.mu), imp.noise + imp.additive_noise,
                 10 * imp.drift * math.sqrt(int(zo_samples)))
        if imp.param_bits is not None:
            low, high = imp.param_range or self.param_range
            mu = max(mu, (high - low) / (2**imp.param_bits - 1))
        return float(mu)

    def reset_counts(self):
        """Set every query and fault counter to zero."""
        self.counts = {p: {"vectors": 0, "configurations": 0} for p in QUERY_PURPOSES}
        self.n_faults = dict.fromkeys(FAULT_KINDS, 0)

    @property
    def n_queries(self):
        """Total ``{"vectors": int, "configurations": int}`` over all purposes."""
        return {
            key: sum(c[key] for c in self.counts.values())
            for key in ("vectors", "configurations")
        }

    def clone(self):
        """A fresh copy: same construction, counters and drift reset."""
        new = copy.deepcopy(self)
        new.reset_counts()
        new._drift = torch.zeros_like(new._drift)
        new._programmed = None
        new._noise_generator = torch.Generator().manual_seed(new._seed + 1)
        return new

    def __repr__(self):
        extra = "" if not self.imperfections.active else f", imperfections={self.imperfections!r}"
        return f"{type(self).__name__}(d_in={self.d_in}, d_out={self.d_out}{extra})"

    # ------------------------------------------------------- for subclasses
    def _initial_params(self, generator):
        """Return the initial parameter vector, drawn from ``generator``."""
        raise NotImplementedError

    def _forward(self, X, params):
        """Ideal batched simulation.

        Parameters
        ----------
        X : float64 tensor of shape (n, d_in) or (k, n, d_in)
        params : float64 tensor of shape (k, n_params)

        Returns
        -------
        float64 tensor of shape (k, n, d_out)
        """
        raise NotImplementedError

    # ------------------------------------------------------------ internals
    def _query(self, X, params, purpose, partial=False):
        if purpose not in QUERY_PURPOSES:
            raise ValueError(f"purpose must be one of {QUERY_PURPOSES}; got {purpose!r}")
        X = torch.as_tensor(X)
        params = torch.as_tensor(params, device=X.device)
        single = params.dim() == 1
        P = params.reshape(1, -1) if single else params
        if P.dim() != 2 or P.shape[1] != self.n_params:
            raise ValueError(
                f"params must have shape (n_params,) or (k, n_params) with "
                f"n_params={self.n_params}; got {tuple(params.shape)}"
            )
        if X.dim() not in (2, 3) or X.shape[-1] != self.d_in:
            raise ValueError(
                f"X must have shape (n, d_in) or (k, n, d_in) with d_in={self.d_in}; "
                f"got {tuple(X.shape)}"
            )
        if X.dim() == 3 and X.shape[0] != P.shape[0]:
            raise ValueError("a 3-D X needs one slice per configuration")
        X = X.to(torch.float64)
        P = P.to(torch.float64)
        if partial and P.shape[0] > 1:
            Y = self._measure_partial(X, P, purpose)
        else:
            Y = self._measure(X, P, purpose)
        return Y[0] if single and X.dim() == 2 else Y

    def _measure(self, X, P, purpose):
        """One query with the fault policy: retry, then raise :class:`BlackBoxError`."""
        causes = []
        for _ in range(self.max_retries + 1):
            try:
                return self._attempt(X, P, purpose)
            except Exception as exc:  # noqa: BLE001 - any failure of a device is a fault
                kind = exc.kind if isinstance(exc, _Fault) else (
                    "timeout" if isinstance(exc, TimeoutError) else "exception")
                self.n_faults[kind] += 1
                causes.append(exc)
        n = X.shape[-2]
        raise BlackBoxError(
            f"{type(self).__name__}: a {purpose!r} query of {n} input vector(s) at "
            f"{P.shape[0]} configuration(s) failed {len(causes)} time(s); last cause: "
            f"{_describe(causes[-1])}",
            purpose=purpose, cause=causes[-1],
        ) from causes[-1]

    def _measure_partial(self, X, P, purpose):
        """A batch of configurations where each may fail on its own.

        Configurations that still fail after the retries come back as NaN
        slices (counted in ``n_faults["dropped"]``) for the caller to drop;
        only when every one fails is :class:`BlackBoxError` raised.
        """
        try:
            return self._measure_once(X, P, purpose)
        except _Fault:
            pass
        outputs, errors = [], []
        for i in range(P.shape[0]):
            Xi = X if X.dim() == 2 else X[i:i + 1]
            try:
                outputs.append(self._measure(Xi, P[i:i + 1], purpose)[0])
            except BlackBoxError as exc:
                self.n_faults["dropped"] += 1
                errors.append(exc)
                outputs.append(torch.full((X.shape[-2], self.d_out), float("nan"),
                                          dtype=torch.float64, device=X.device))
        if len(errors) == P.shape[0]:
            raise errors[-1]
        return torch.stack(outputs)

    def _measure_once(self, X, P, purpose):
        # A single attempt whose failure is only counted, so the caller can
        # fall back to configuration-by-configuration queries.
        try:
            return self._attempt(X, P, purpose)
        except Exception as exc:  # noqa: BLE001
            kind = exc.kind if isinstance(exc, _Fault) else (
                "timeout" if isinstance(exc, TimeoutError) else "exception")
            self.n_faults[kind] += 1
            raise _Fault(kind, str(exc)) from exc

    def _attempt(self, X, P, purpose):
        reprogrammed = self._count(X, P, purpose)
        P = self._apply_drift(P, reprogrammed)
        imp = self.imperfections
        P = imp.quantise_params(P, self.param_range, self.param_period)
        Xq = imp.quantise_inputs(X)
        Y = self._forward(Xq, P)
        expected = (P.shape[0], X.shape[-2], self.d_out)
        if not torch.is_tensor(Y) or tuple(Y.shape) != expected:
            shape = tuple(Y.shape) if torch.is_tensor(Y) else type(Y).__name__
            raise _Fault("shape", f"returned shape {shape}; expected {expected}")
        if not torch.isfinite(Y.detach()).all():
            raise _Fault("non_finite", "returned NaN or inf")
        return imp.add_noise(Y, self._noise_generator)

    def _count(self, X, P, purpose):
        n_vectors = X.shape[-2]
        k = P.shape[0]
        c = self.counts[purpose]
        c["vectors"] += int(n_vectors * k if X.dim() == 2 else X.shape[0] * X.shape[1])
        # A configuration is a reprogramming: asking again for the setting the
        # device already holds costs none.
        detached = P.detach()
        same_first = (
            self._programmed is not None
            and self._programmed.shape == detached[0].shape
            and self._programmed.device == detached.device
            and torch.equal(self._programmed, detached[0])
        )
        c["configurations"] += k - int(same_first)
        self._programmed = detached[-1].clone()
        return not same_first

    def _apply_drift(self, P, reprogrammed_first=True):
        std = self.imperfections.drift
        if not std:
            return P
        steps = torch.randn(P.shape, generator=self._noise_generator, dtype=torch.float64)
        if not reprogrammed_first:
            # The device still holds this setting: it has not drifted a step.
            steps[0] = 0.0
        walk = self._drift + std * torch.cumsum(steps, dim=0)
        self._drift = walk[-1].clone()
        return P + walk.to(P.device)


def _describe(exc):
    """``"kind: message"`` for a fault, ``"ExceptionType: message"`` otherwise."""
    label = exc.kind if isinstance(exc, _Fault) else type(exc).__name__
    return f"{label}: {exc}"


def _check_width(name, value):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be a positive int; got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be a positive int; got {value}")
    return int(value)


def _seed_from(random_state):
    """An int seed in [0, 2**31) from None, an int or a numpy RandomState/Generator."""
    if random_state is None:
        return int(np.random.SeedSequence().generate_state(1)[0] % (2**31 - 2))
    if isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool):
        return int(random_state) % (2**31 - 2)
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(0, 2**31 - 2))
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(0, 2**31 - 2))
    raise TypeError(f"random_state must be None, an int or a numpy RandomState; got {random_state!r}")


def kaiming_uniform_bound(d_in):
    """The bound ``1/sqrt(d_in)`` of ``nn.Linear``'s default weight init."""
    return 1.0 / math.sqrt(d_in)
