"""Wrap any forward-only function, such as a real instrument's driver, as a black box."""

import threading

import numpy as np
import torch

from ._base import BlackBox, _check_width, _Fault

__all__ = ["CallableBlackBox"]


class CallableBlackBox(BlackBox):
    """A black box around a user function ``fn(X, params) -> Y``.

    This is how a real device plugs in: ``fn`` programs the device with
    ``params`` and measures its response to each row of ``X``.

    Parameters
    ----------
    fn : callable
        ``fn(X, params)`` with ``X`` of shape ``(n, d_in)`` and ``params`` of
        shape ``(n_params,)``, returning ``Y`` of shape ``(n, d_out)``.
        Receives numpy arrays when ``array_type="numpy"`` (default) and
        float64 torch tensors when ``"torch"``. Must be picklable (a
        module-level function or a class instance, not a lambda) for the
        estimator to be cloned or saved.
    d_in, d_out : int
        Input and output widths.
    n_params : int
        Length of the parameter vector.
    params0 : array-like of shape (n_params,)
        Initial parameters.
    mu : float, default=1e-3
        Finite-difference step for the ZO estimate.
    linear_in_x : bool, default=True
        Whether the device is linear in its inputs; the surrogate assumes so.
    param_range : tuple of float or None, default=None
        Range for parameter quantisation, if used.
    array_type : {"numpy", "torch"}, default="numpy"
        What ``fn`` receives.
    max_retries : int, default=2
        A failed call (an exception, a timeout, NaN or inf, the wrong shape)
        is repeated this many times before :class:`BlackBoxError` is raised.
        In a ZO estimate, a direction whose configuration keeps failing is
        dropped instead (and counted in ``n_faults["dropped"]``).
    timeout : float or None, default=None
        Seconds one call of ``fn`` may take. A call that takes longer counts
        as a failure; its thread is abandoned (Python cannot stop it), so
        ``fn`` should release the instrument on its own.
    imperfections : Imperfections or dict or None, default=None
        Simulated imperfections added on top of the device's own.
    random_state : int or None, default=None
        Seeds the imperfection draws.

    Notes
    -----
    A batch of configurations is evaluated one configuration at a time, as a
    physical device must be. The oracle gradient modes are not available.

    Examples
    --------
    >>> import numpy as np
    >>> from skhybrid.black_boxes import CallableBlackBox
    >>> def scaled_identity(X, params):
    ...     return params[0] * X
    >>> box = CallableBlackBox(scaled_identity, 3, 3, n_params=1, params0=[2.0])
    >>> box.query(np.ones((1, 3)), box.params0).tolist()
    [[2.0, 2.0, 2.0]]
    """

    differentiable = False

    def __init__(
        self,
        fn,
        d_in,
        d_out,
        n_params,
        params0,
        mu=1e-3,
        *,
        linear_in_x=True,
        param_range=None,
        array_type="numpy",
        max_retries=2,
        timeout=None,
        imperfections=None,
        random_state=None,
    ):
        if not callable(fn):
            raise TypeError(f"fn must be callable; got {fn!r}")
        if array_type not in ("numpy", "torch"):
            raise ValueError(f"array_type must be 'numpy' or 'torch'; got {array_type!r}")
        if isinstance(mu, bool) or not (isinstance(mu, (int, float)) and mu > 0):
            raise ValueError(f"mu must be a float > 0; got {mu!r}")
        n_params = _check_width("n_params", n_params)
        if isinstance(max_retries, bool) or not isinstance(max_retries, (int, np.integer)) \
                or max_retries < 0:
            raise ValueError(f"max_retries must be an int >= 0; got {max_retries!r}")
        if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float))
                                    or not timeout > 0):
            raise ValueError(f"timeout must be None or a number of seconds > 0; got {timeout!r}")
        self.max_retries = int(max_retries)
        self.timeout = timeout
        self.fn = fn
        self._n_params_given = n_params
        self._params0_given = np.asarray(params0, dtype=np.float64).reshape(-1)
        if self._params0_given.shape != (n_params,):
            raise ValueError(
                f"params0 must have length n_params={n_params}; got shape "
                f"{np.asarray(params0).shape}"
            )
        if not np.isfinite(self._params0_given).all():
            raise ValueError("params0 must be finite; it holds NaN or inf")
        self.mu = float(mu)
        self.linear_in_x = bool(linear_in_x)
        self.param_range = param_range
        self.array_type = array_type
        super().__init__(d_in, d_out, imperfections=imperfections, random_state=random_state)

    def _initial_params(self, generator):
        return torch.from_numpy(self._params0_given.copy())

    def _forward(self, X, params):
        outputs = []
        for i, p in enumerate(params):
            Xi = X if X.dim() == 2 else X[i]
            outputs.append(self._call(Xi, p))
        return torch.stack(outputs)

    def _call(self, X, p):
        if self.array_type == "numpy":
            args = (X.detach().cpu().numpy(), p.detach().cpu().numpy())
        else:
            args = (X.detach(), p.detach())
        Y = self.fn(*args) if self.timeout is None else _call_with_timeout(
            self.fn, args, self.timeout)
        try:
            Y = torch.as_tensor(Y if torch.is_tensor(Y) else np.asarray(Y, dtype=np.float64))
        except (TypeError, ValueError) as exc:
            raise _Fault("shape", f"returned something that is not an array: {exc}") from None
        Y = Y.to(dtype=torch.float64, device=X.device)
        expected = (X.shape[0], self.d_out)
        if tuple(Y.shape) != expected:
            raise _Fault(
                "shape", f"the black-box function returned shape {tuple(Y.shape)}; "
                f"expected {expected}")
        return Y


def _call_with_timeout(fn, args, timeout):
    """Run ``fn(*args)`` in a daemon thread; raise TimeoutError if it outlasts ``timeout``."""
    box = {}

    def target():
        try:
            box["result"] = fn(*args)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True, name="skhybrid-black-box-call")
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise TimeoutError(f"the black-box function did not return within {timeout} s")
    if "error" in box:
        raise box["error"]
    return box["result"]
