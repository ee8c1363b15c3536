"""Simulated photonic devices and the forward-only black-box contract.

Every black box is built by name with :func:`make_black_box`, or wraps a
user's function with :class:`CallableBlackBox`.
"""

from ._base import QUERY_PURPOSES, BlackBox
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
    "BlackBox",
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
    try:
        return cls(d_in, d_out, imperfections=imperfections or None, **fixed, **options)
    except TypeError as exc:
        if "unexpected keyword" in str(exc):
            raise ValueError(f"invalid option for black box {name!r}: {exc}") from None
        raise
