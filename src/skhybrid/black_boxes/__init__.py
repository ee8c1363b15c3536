"""Simulated photonic devices and the forward-only black-box contract.

Every black box is built by name with :func:`make_black_box`, or wraps a
user's function with :class:`CallableBlackBox`.
"""

import inspect

from ._base import FAULT_KINDS, QUERY_PURPOSES, BlackBox, BlackBoxError
from .callable import CallableBlackBox
from .imperfections import Imperfections
from .matrix import MatrixBlackBox
from .microring import MicroringBank
from .monarch import MonarchPhaseMasks
from .mzi import MZIMesh
from .slm import SpatialLightModulator

__all__ = [
    "BLACK_BOXES",
    "QUERY_PURPOSES",
    "FAULT_KINDS",
    "BlackBox",
    "BlackBoxError",
    "CallableBlackBox",
    "Imperfections",
    "MZIMesh",
    "MatrixBlackBox",
    "MicroringBank",
    "MonarchPhaseMasks",
    "SpatialLightModulator",
    "make_black_box",
]

#: Black-box names accepted by :func:`make_black_box`, with (class, fixed options).
BLACK_BOXES = {
    "matrix": (MatrixBlackBox, {}),
    "slm": (SpatialLightModulator, {}),
    "mrr": (MicroringBank, {}),
    "mzi": (MZIMesh, {"cell": "3mzi"}),
    "mzi_classical": (MZIMesh, {"cell": "classical"}),
    "monarch": (MonarchPhaseMasks, {}),
}

_IMPERFECTION_KEYS = set(Imperfections.__dataclass_fields__)


def make_black_box(name, d_in, d_out, **options):
    """Build a simulated black box by name.

    Parameters
    ----------
    name : str
        One of ``"matrix"``, ``"slm"``, ``"mrr"``, ``"mzi"``,
        ``"mzi_classical"``, ``"monarch"``.
    d_in, d_out : int
        Input and output widths.
    **options
        Device options (for example ``a`` and ``r`` of ``"mrr"``), imperfection
        fields of :class:`Imperfections` (``noise``, ``param_bits``, ``drift``,
        ...) and ``random_state``.

    Returns
    -------
    BlackBox

    Examples
    --------
    >>> from skhybrid import make_black_box
    >>> box = make_black_box("slm", 4, 3, random_state=0)
    >>> box.n_params
    12
    """
    if not isinstance(name, str) or name not in BLACK_BOXES:
        raise ValueError(
            f"unknown black box {name!r}; valid names are {sorted(BLACK_BOXES)}"
        )
    cls, fixed = BLACK_BOXES[name]
    imperfections = {k: options.pop(k) for k in list(options) if k in _IMPERFECTION_KEYS}
    if "imperfections" in options:
        if imperfections:
            raise ValueError("pass imperfections either as a dict or as separate options, not both")
        imperfections = options.pop("imperfections")
    valid = _device_options(cls) - set(fixed)
    unknown = sorted(set(options) - valid)
    if unknown:
        fixed_given = [k for k in unknown if k in fixed]
        note = f" ({fixed_given} fixed by the name {name!r})" if fixed_given else ""
        raise ValueError(
            f"invalid option(s) {unknown} for black box {name!r}{note}; valid options are "
            f"{sorted(valid | _IMPERFECTION_KEYS | {'imperfections'})}"
        )
    return cls(d_in, d_out, imperfections=imperfections or None, **fixed, **options)


def _device_options(cls):
    """The keyword-only options of a black box class (``random_state`` included)."""
    params = inspect.signature(cls.__init__).parameters.values()
    return {p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY} - {"imperfections"}
