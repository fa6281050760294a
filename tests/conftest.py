"""Small shared helpers for the tapegrad test suite (finite differences, tolerances)."""

from __future__ import annotations

import math
from typing import Callable

from hypothesis import settings
from hypothesis import strategies as st

STEP = 1e-6

# Property tests run a modest number of examples: the suite must stay fast on 2 cores.
FEW = settings(max_examples=50, deadline=None)
SOME = settings(max_examples=75, deadline=None)


def central_diff(f: Callable[[float], float], x: float, step: float = STEP) -> float:
    """(f(x + h) - f(x - h)) / 2h with h scaled to the size of x."""
    h = step * max(1.0, abs(x))
    return (f(x + h) - f(x - h)) / (2.0 * h)


def partial_diff(f: Callable[..., float], args: tuple, k: int, step: float = STEP) -> float:
    """Central difference of f(*args) in its k-th (float) argument."""

    def moved(v: float) -> float:
        new = list(args)
        new[k] = v
        return f(*new)

    return central_diff(moved, float(args[k]), step)


def fd_close(analytic: float, numeric: float, scale: float = 1.0) -> bool:
    """Whether a derivative matches its finite-difference estimate.

    ``scale`` is the size of the function's values near the point: the estimate's
    rounding error grows with it.
    """
    tol = 1e-8 + 1e-9 * abs(scale)
    return math.isclose(analytic, numeric, rel_tol=1e-6, abs_tol=tol)


def floats(lo: float, hi: float, away: float = 0.0) -> st.SearchStrategy[float]:
    """Finite floats in [lo, hi] with |v| >= away."""
    s = st.floats(lo, hi, allow_nan=False, allow_infinity=False)
    return s.filter(lambda v: abs(v) >= away) if away else s
