"""The autograd Function of a black-box layer: the forward queries the device,
the backward combines a surrogate input gradient with a ZO parameter gradient."""

import torch
from torch.autograd.function import once_differentiable

__all__ = ["BlackBoxFunction"]


class BlackBoxFunction(torch.autograd.Function):
    """``y = f_params(x)`` measured on the black box, with a forward-only backward.

    The layer passed as the third argument decides, per its ``gradient``
    mode, where each gradient comes from (``layer._input_gradient`` and
    ``layer._params_gradient``). In the black-box modes nothing here
    differentiates through the device.
    """

    @staticmethod
    def forward(x, params, layer):
        return layer.black_box.query(x, params.detach(), "forward")

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, params, layer = inputs
        ctx.save_for_backward(x, params)
        ctx.layer = layer
        # The measured outputs are the baseline of the ZO estimate: same
        # configuration, same inputs, no second query.
        ctx.measured = output

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        x, params = ctx.saved_tensors
        layer = ctx.layer
        grad_x = grad_params = None
        if ctx.needs_input_grad[0]:
            grad_x = layer._input_gradient(grad_output, x, params).to(x.dtype)
        if ctx.needs_input_grad[1]:
            grad_params = layer._params_gradient(grad_output, x, params, ctx.measured)
            grad_params = grad_params.to(params.dtype)
        return grad_x, grad_params, None
