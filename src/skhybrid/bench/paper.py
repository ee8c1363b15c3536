"""The paper's own settings, emulated: a black-box layer that behaves as the reference does.

:class:`PaperBlackBoxLayer` is a :class:`~skhybrid.BlackBoxLayer` that
differs from ours in exactly the ways the reference implementation does
(see ``design/method.md``, sections 2.1, 2.3, 3.4 and 3.5):

* one-sided Gaussian ZO directions, with the baseline configuration
  measured again (``M + 1`` configurations per estimate) instead of reusing
  the forward pass's outputs, and the compressed batch chosen from the
  shapes alone (whenever ``B > d_out``);
* a randomised K-S-L surrogate update with ``M_SM`` unprojected Gaussian
  probes, measured at the old and at the new parameters (the device is set
  back to the old configuration: two reprogrammings per update);
* **the one-step lag**: the backward pass of step ``t`` uses the surrogate
  of the parameters of step ``t - 1``, while the forward pass used those of
  step ``t``. The reference saves the factors before updating them; here the
  layer keeps the factors from before its last update and uses those.

It exists only to measure our defaults against the paper's; it is not part
of the public API.
"""

import torch

from ..layers import BlackBoxLayer
from ..zeroth_order import estimate_gradient

__all__ = ["PaperBlackBoxLayer"]


def _qr_positive(A):
    Q, R = torch.linalg.qr(A)
    signs = torch.sign(torch.diagonal(R))
    signs = torch.where(signs == 0, torch.ones_like(signs), signs)
    return Q * signs, R * signs[:, None]


class PaperBlackBoxLayer(BlackBoxLayer):
    """A black-box layer with the reference implementation's behaviour (lagged surrogate).

    Takes the arguments of :class:`~skhybrid.BlackBoxLayer`; ``zo_scheme``,
    ``zo_directions`` and ``probes`` are forced to the paper's
    ``"forward"``, ``"gaussian"`` and ``"gaussian"``, and
    ``surrogate_samples`` must be an int (``M_SM``; the paper sets it equal
    to ``zo_samples``).
    """

    def __init__(self, black_box, rank=8, zo_samples=16, surrogate_samples=None,
                 gradient="astralora", random_state=None, **options):
        options.update(zo_scheme="forward", zo_directions="gaussian", probes="gaussian",
                       compressed_batch="auto")
        if surrogate_samples is None or surrogate_samples == "auto":
            surrogate_samples = zo_samples
        super().__init__(black_box, rank=rank, zo_samples=zo_samples,
                         surrogate_samples=int(surrogate_samples), gradient=gradient,
                         random_state=random_state, **options)
        self._lagged = None

    # The reference takes no probes during the forward pass.
    def _take_old_probes(self):
        return None

    def _use_compressed(self, batch_size):
        return bool(self.black_box.linear_in_x and batch_size > self.d_out)

    def _params_gradient(self, G, x, params, measured):
        if self.gradient != "astralora":
            return super()._params_gradient(G, x, params, measured)

        def query(X, P):
            return self.black_box.query(X, P, "zo", partial=True)

        # baseline=None: the reference measures phi(params) again.
        grad = estimate_gradient(
            query, x, G, params, mu=self.mu, n_samples=self.zo_samples,
            generator=self._zo_generator, directions="gaussian", scheme="forward",
            baseline=None, compressed=self._use_compressed(x.shape[0]))
        return grad if torch.isfinite(grad).all() else torch.zeros_like(grad)

    def _input_gradient(self, G, x, params):
        if self.input_gradient_source == "surrogate" and self._lagged is not None:
            U, S, V = self._lagged
            G64 = G.to(U.dtype)
            return (((G64 @ U) @ S) @ V.T).to(G.dtype)
        return super()._input_gradient(G, x, params)

    def effective_surrogate_matrix(self):
        """The matrix the backward pass uses now: the surrogate from before the last update."""
        if self._lagged is not None:
            U, S, V = self._lagged
            return U @ S @ V.T
        return self.surrogate.matrix()

    @torch.no_grad()
    def update_surrogate(self):
        """The reference's K-S-L step with unprojected Gaussian probes; keeps the lagged factors."""
        if not self.uses_surrogate:
            return False
        current = self.params.detach().to(torch.float64)
        if not bool(self.surrogate_ready):
            self.rebuild_surrogate()
            return True
        old = self.surrogate_params.clone()
        if torch.equal(current, old):
            return False
        sur = self.surrogate
        self._lagged = (sur.U.clone(), sur.S.clone(), sur.V.clone())
        self.n_updates += 1
        r, M = self.rank, self.n_surrogate_samples
        Z = torch.randn(M, self.d_in, generator=self._probe_generator, dtype=torch.float64)
        inputs = torch.cat([sur.V.T, Z.to(current.device)])
        diff = (self.black_box.query(inputs, current, "surrogate")
                - self.black_box.query(inputs, old, "surrogate"))
        dA_V, dA_Zt = diff[:r].T, diff[r:]
        U1, S_tilde = _qr_positive(sur.U @ sur.S + dA_V)
        S_hat = S_tilde - U1.T @ dA_V
        P2 = Z.T.to(current.device) @ (dA_Zt @ U1) / M
        V1, R = _qr_positive(sur.V @ S_hat.T + P2)
        if torch.isfinite(R).all() and torch.isfinite(V1).all():
            sur.U.copy_(U1)
            sur.S.copy_(R.T)
            sur.V.copy_(V1)
        self.surrogate_params.copy_(current)
        return True

    def rebuild_surrogate(self):
        super().rebuild_surrogate()
        self._lagged = None
