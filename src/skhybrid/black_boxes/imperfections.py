"""Measurement noise, quantisation and drift: the ways a real device departs from its model."""

import math
import numbers
from dataclasses import asdict, dataclass, fields

import numpy as np
import torch

__all__ = ["Imperfections"]


@dataclass(frozen=True)
class Imperfections:
    """What a real device adds to every query (forward pass, ZO probes, surrogate probes).

    All default to off. The stored parameters stay continuous: only what the
    device *sees* is quantised and drifted, so an old and a new setting are
    quantised by the same rule.

    Parameters
    ----------
    noise : float, default=0.0
        Relative (multiplicative) Gaussian measurement noise: each output
        ``y`` becomes ``y * (1 + noise * xi)``, ``xi ~ N(0, 1)``.
    additive_noise : float, default=0.0
        Absolute Gaussian measurement noise added to each output.
    param_bits : int or None, default=None
        Quantise each parameter to ``2**param_bits`` levels over the
        device's range (phases wrap around their period first).
    param_range : tuple of float or None, default=None
        Overrides the device's own quantisation range.
    input_bits : int or None, default=None
        Quantise each input entry to ``2**input_bits`` levels over
        ``input_range`` after clamping to it (a DAC).
    input_range : tuple of float, default=(-1.0, 1.0)
        Range of the input DAC.
    drift : float, default=0.0
        Standard deviation of a random-walk step taken by every parameter at
        each reprogramming (slow thermal drift).
    """

    noise: float = 0.0
    additive_noise: float = 0.0
    param_bits: int | None = None
    param_range: tuple | None = None
    input_bits: int | None = None
    input_range: tuple = (-1.0, 1.0)
    drift: float = 0.0

    def __post_init__(self):
        for name in ("noise", "additive_noise", "drift"):
            value = getattr(self, name)
            if not _is_real(value) or not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite float >= 0; got {value!r}")
            object.__setattr__(self, name, float(value))
        for name in ("param_bits", "input_bits"):
            value = getattr(self, name)
            if value is None:
                continue
            is_int = isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))
            if not is_int or not 1 <= value <= 32:
                raise ValueError(f"{name} must be None or an int in [1, 32]; got {value!r}")
            object.__setattr__(self, name, int(value))
        for name in ("param_range", "input_range"):
            value = getattr(self, name)
            if value is None and name == "param_range":
                continue
            try:
                low, high = value
                ok = _is_real(low) and _is_real(high) and math.isfinite(low) and math.isfinite(high)
            except (TypeError, ValueError):
                ok = False
            if not ok or not low < high:
                raise ValueError(
                    f"{name} must be (low, high) with finite low < high; got {value!r}"
                )
            # A tuple of floats, so equal settings compare (and hash) equal.
            object.__setattr__(self, name, (float(low), float(high)))

    @classmethod
    def coerce(cls, value):
        """Build from ``None``, a dict of fields, or an :class:`Imperfections`."""
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        if isinstance(value, dict):
            known = {f.name for f in fields(cls)}
            unknown = sorted(set(value) - known)
            if unknown:
                raise ValueError(
                    f"unknown imperfection option(s) {unknown}; valid ones are {sorted(known)}"
                )
            return cls(**value)
        raise TypeError(f"imperfections must be None, a dict or Imperfections; got {value!r}")

    @property
    def active(self):
        """True when any imperfection is switched on."""
        return self != Imperfections()

    def to_dict(self):
        """The fields as a plain dict."""
        return asdict(self)

    # The three hooks below are called by BlackBox._query on every query.
    def quantise_params(self, P, device_range, period):
        if self.param_bits is None:
            return P
        low, high = self.param_range or device_range or (None, None)
        if low is None:
            raise ValueError(
                "param_bits needs a parameter range: this black box has none, pass param_range"
            )
        if period is not None and self.param_range is None:
            P = low + torch.remainder(P - low, period)
        return _straight_through_round(P, low, high, 2**self.param_bits)

    def quantise_inputs(self, X):
        if self.input_bits is None:
            return X
        low, high = self.input_range
        return _straight_through_round(X, low, high, 2**self.input_bits)

    def add_noise(self, Y, generator):
        if not (self.noise or self.additive_noise):
            return Y
        xi = torch.randn(Y.shape, generator=generator, dtype=Y.dtype).to(Y.device)
        scale = self.noise * Y.detach().abs() + self.additive_noise
        return Y + scale * xi


def _is_real(value):
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _straight_through_round(T, low, high, levels):
    """Clamp to [low, high] and round to ``levels`` evenly spaced values.

    The rounding is straight-through: its gradient is the identity, so the
    oracle modes can still differentiate through a quantised simulation.
    """
    step = (high - low) / (levels - 1)
    clamped = T.clamp(low, high)
    rounded = low + torch.round((clamped - low) / step) * step
    return clamped + (rounded - clamped).detach()
