"""Optimizers as pairs of pure functions: ``init(params)`` and ``update(grads, state, params)``.

An optimizer holds no data of its own. ``init`` builds an immutable state (a
named tuple with the step count and, for momentum and Adam, moment trees of the
parameters' structure); ``update`` returns new parameters and a new state and
changes neither argument, so old parameters stay valid. Every per-leaf rule is
applied with ``tg.tree_map``, so parameters may be any pytree of numbers and
arrays. Array leaves get new arrays (never an in-place write to the caller's),
moments of their shape and dtype, and updates in their dtype: float32
parameters stay float32, as in optax.

``learning_rate`` is a number or a schedule: a function of the step number
(0 for the first update) that returns the rate for that step.

Offers ``sgd``, ``momentum``, ``adam``, the :class:`Optimizer` record and the
state types ``SgdState``, ``MomentumState`` and ``AdamState``.

>>> opt = sgd(0.1)
>>> state = opt.init({"w": 1.0})
>>> params, state = opt.update({"w": 2.0}, state, {"w": 1.0})
>>> params, state.step
({'w': 0.8}, 1)
>>> import numpy as np
>>> params, state = opt.update({"w": np.float32([2.0])}, state, {"w": np.float32([1.0])})
>>> params
{'w': array([0.8], dtype=float32)}
"""

from __future__ import annotations

import numbers
import sys
from typing import Any, Callable, NamedTuple, Union

import attrs

from . import primitives as _p
from .pytree import tree_map
from .tracer import Tracer

__all__ = ["Optimizer", "SgdState", "MomentumState", "AdamState", "sgd", "momentum", "adam"]

Schedule = Callable[[int], Any]
LearningRate = Union[float, int, Schedule]


@attrs.frozen
class Optimizer:
    """Two pure functions: ``init(params) -> state``, ``update(grads, state, params)``.

    ``update`` returns ``(new_params, new_state)``.
    """

    name: str
    init: Callable[[Any], Any]
    update: Callable[[Any, Any, Any], tuple]


class SgdState(NamedTuple):
    """Plain gradient descent keeps only the number of updates done."""

    step: int


class MomentumState(NamedTuple):
    """The number of updates done and the velocity, a tree shaped like the parameters."""

    step: int
    velocity: Any


class AdamState(NamedTuple):
    """The number of updates done and the first and second moment estimates."""

    step: int
    mu: Any
    nu: Any


def _schedule(learning_rate: LearningRate, optimizer: str) -> Schedule:
    """The learning rate as a function of the step number."""
    if callable(learning_rate):
        return learning_rate
    if isinstance(learning_rate, bool) or not isinstance(learning_rate, (int, float)):
        raise TypeError(
            f"optim.{optimizer}: learning_rate must be a number or a function of the step "
            f"number, got {type(learning_rate).__name__} {learning_rate!r}"
        )
    rate = float(learning_rate)
    return lambda step: rate


def _rate_at(rate: Schedule, step: int) -> Any:
    """The learning rate for ``step``; a NumPy number becomes a Python float, which
    NumPy treats as weak: ``np.float64(0.1) * float32_array`` would be float64."""
    lr = rate(step)
    if type(lr) is not float and isinstance(lr, numbers.Real) and not isinstance(lr, bool):
        return float(lr)
    return lr


def _check_decay(optimizer: str, name: str, value: float) -> float:
    if not 0.0 <= value < 1.0:
        raise ValueError(f"optim.{optimizer}: {name} must be in [0, 1), got {value!r}")
    return float(value)


def _zero_like(p: Any) -> Any:
    """0.0 for a number; zeros of the type, shape and dtype of an array or NumPy scalar."""
    if type(p) is float or type(p) is Tracer or not hasattr(p, "shape"):
        return 0.0
    np = sys.modules["numpy"]  # an array leaf means NumPy is loaded
    if isinstance(p, np.generic):
        return p.dtype.type(0)
    return np.zeros(p.shape, dtype=p.dtype)


def _zeros(params: Any) -> Any:
    return tree_map(_zero_like, params)


def _like(new: Any, old: Any) -> Any:
    """``new`` in the dtype of ``old`` when both are NumPy values: a float64 gradient must
    not turn a float32 parameter or moment into float64."""
    if type(old) is float or type(new) is float:
        return new
    np = sys.modules.get("numpy")
    if (np is not None and isinstance(new, (np.ndarray, np.generic))
            and isinstance(old, (np.ndarray, np.generic)) and new.dtype != old.dtype):
        return new.astype(old.dtype)
    return new


def _sqrt(x: Any) -> Any:
    """sqrt for numbers and traced scalars (tg.sqrt) and for arrays (tapegrad.numpy's)."""
    if type(x) is float or type(x) is Tracer:
        return _p.sqrt(x)
    from . import numpy as tnp  # only reached with arrays, so NumPy is there

    return tnp.sqrt(x)


def sgd(learning_rate: LearningRate) -> Optimizer:
    """Gradient descent: ``param - learning_rate * grad``.

    >>> opt = sgd(lambda step: 1.0 / (step + 1))       # a schedule: 1, 1/2, 1/3, ...
    >>> state = opt.init((1.0,))
    >>> params, state = opt.update((1.0,), state, (1.0,))
    >>> params, state = opt.update((1.0,), state, params)
    >>> params
    (-0.5,)
    """
    rate = _schedule(learning_rate, "sgd")

    def init(params: Any) -> SgdState:
        return SgdState(step=0)

    def update(grads: Any, state: SgdState, params: Any) -> tuple[Any, SgdState]:
        lr = _rate_at(rate, state.step)
        new_params = tree_map(lambda p, g: _like(p - lr * g, p), params, grads)
        return new_params, SgdState(step=state.step + 1)

    return Optimizer("sgd", init, update)


def momentum(learning_rate: LearningRate, beta: float = 0.9) -> Optimizer:
    """Gradient descent with momentum: ``v = beta * v + grad``, then ``param - learning_rate * v``.

    >>> opt = momentum(0.1, beta=0.5)
    >>> state = opt.init([1.0])
    >>> params, state = opt.update([1.0], state, [1.0])     # v = 1
    >>> params, state = opt.update([1.0], state, params)    # v = 1.5
    >>> [round(p, 6) for p in params], state.velocity
    ([0.75], [1.5])
    """
    rate = _schedule(learning_rate, "momentum")
    beta = _check_decay("momentum", "beta", beta)

    def init(params: Any) -> MomentumState:
        return MomentumState(step=0, velocity=_zeros(params))

    def update(grads: Any, state: MomentumState, params: Any) -> tuple[Any, MomentumState]:
        lr = _rate_at(rate, state.step)
        velocity = tree_map(lambda v, g: _like(beta * v + g, v), state.velocity, grads)
        new_params = tree_map(lambda p, v: _like(p - lr * v, p), params, velocity)
        return new_params, MomentumState(step=state.step + 1, velocity=velocity)

    return Optimizer("momentum", init, update)


def adam(learning_rate: LearningRate, b1: float = 0.9, b2: float = 0.999,
         eps: float = 1e-8) -> Optimizer:
    """Adam (Kingma and Ba, 2015), with the paper's bias correction.

    For update number ``t = step + 1``::

        m = b1 * m + (1 - b1) * g           m_hat = m / (1 - b1 ** t)
        v = b2 * v + (1 - b2) * g ** 2      v_hat = v / (1 - b2 ** t)
        param = param - learning_rate * m_hat / (sqrt(v_hat) + eps)

    The first step moves every parameter by about ``learning_rate`` against the
    sign of its gradient, whatever the gradient's size.

    >>> opt = adam(0.1)
    >>> state = opt.init({"w": 1.0})
    >>> params, state = opt.update({"w": 20.0}, state, {"w": 1.0})
    >>> round(params["w"], 6)
    0.9
    """
    rate = _schedule(learning_rate, "adam")
    b1 = _check_decay("adam", "b1", b1)
    b2 = _check_decay("adam", "b2", b2)
    eps = float(eps)

    def init(params: Any) -> AdamState:
        return AdamState(step=0, mu=_zeros(params), nu=_zeros(params))

    def update(grads: Any, state: AdamState, params: Any) -> tuple[Any, AdamState]:
        lr = _rate_at(rate, state.step)
        t = state.step + 1
        mu = tree_map(lambda m, g: _like(b1 * m + (1.0 - b1) * g, m), state.mu, grads)
        nu = tree_map(lambda v, g: _like(b2 * v + (1.0 - b2) * g * g, v), state.nu, grads)
        # m and v start at zero, so early on they are biased towards zero; dividing by
        # 1 - b ** t undoes that (Algorithm 1 of the paper).
        c1 = 1.0 - b1 ** t
        c2 = 1.0 - b2 ** t
        new_params = tree_map(
            lambda p, m, v: _like(p - lr * (m / c1) / (_sqrt(v / c2) + eps), p), params, mu, nu
        )
        return new_params, AdamState(step=t, mu=mu, nu=nu)

    return Optimizer("adam", init, update)
