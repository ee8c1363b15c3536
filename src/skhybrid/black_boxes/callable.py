"""Wrap any forward-only function, such as a real instrument's driver, as a black box."""

import numpy as np
import torch

from ._base import BlackBox, _check_width

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
        self.fn = fn
        self._n_params_given = n_params
        self._params0_given = np.asarray(params0, dtype=np.float64).reshape(-1)
        if self._params0_given.shape != (n_params,):
            raise ValueError(
                f"params0 must have length n_params={n_params}; got shape "
                f"{np.asarray(params0).shape}"
            )
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
            Y = self.fn(X.detach().cpu().numpy(), p.detach().cpu().numpy())
        else:
            Y = self.fn(X.detach(), p.detach())
        Y = torch.as_tensor(np.asarray(Y) if not torch.is_tensor(Y) else Y)
        Y = Y.to(dtype=torch.float64, device=X.device)
        expected = (X.shape[0], self.d_out)
        if tuple(Y.shape) != expected:
            raise ValueError(
                f"the black-box function returned shape {tuple(Y.shape)}; expected {expected}"
            )
        return Y
