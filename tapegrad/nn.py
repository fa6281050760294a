"""Neural networks as plain data and pure functions: an MLP, losses, and checkpoints.

Parameters come in two layouts, and every function here takes either:

- **floats** (the seed's layout, without its objects): an MLP is a tuple of
  layers, a layer a tuple of neurons, a neuron a ``(weights, bias)`` pair with
  ``weights`` a tuple of floats. One input ``x`` is a sequence of numbers.
- **arrays**: an MLP is a list of ``(W, b)`` layers, ``W`` of shape ``(out, in)``
  (row ``j`` is neuron ``j``'s weights, as in the float layout) and ``b`` of
  shape ``(out,)``. The input is a batch ``X`` of shape ``(n, in)``, one sample
  per row, and the losses take whole batches.

The functions take the parameters as an argument and return new values, so
``tg.grad`` differentiates them directly and the gradient comes back in the
parameters' own structure (arrays of the parameters' shapes and dtypes).

Offers ``init_mlp`` and ``mlp`` (the network), the losses ``mse``,
``sum_squared_error``, ``hinge_loss``, ``binary_cross_entropy``,
``softmax_cross_entropy`` and ``l2``, the helpers ``accuracy``, ``argmax`` and
``multiclass_accuracy``, and ``save`` / ``load`` (checkpoints: any pytree of
numbers and arrays, named tuples and optimizer states included).

>>> import tapegrad as tg
>>> params = init_mlp(2, [3, 1], seed=0)
>>> len(params), len(params[0]), len(params[0][0][0])   # layers, neurons, weights
(2, 3, 2)
>>> grads = tg.grad(lambda p: mse(mlp(p, (1.0, 2.0)), [0.5]))(params)
>>> tg.tree_structure(grads) == tg.tree_structure(params)
True
>>> import numpy as np
>>> arrays = init_mlp(2, [3, 1], seed=0, arrays=True)   # the same numbers, as arrays
>>> [W.shape for W, b in arrays], bool(arrays[0][0][2, 1] == params[0][2][0][1])
([(3, 2), (1, 3)], True)
>>> X = np.array([[1.0, 2.0], [0.0, -1.0]])
>>> mlp(arrays, X).shape                                 # one row of outputs per sample
(2, 1)
"""

from __future__ import annotations

import io
import json
import math
import numbers
import os
import random
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Callable, Optional, Union

import attrs

from . import primitives as _p
from .pytree import tree_leaves, tree_structure, tree_unflatten
from .tracer import TRACER_TYPES, primal

__all__ = [
    "init_mlp", "mlp",
    "mse", "sum_squared_error", "hinge_loss", "binary_cross_entropy",
    "softmax_cross_entropy", "l2",
    "accuracy", "argmax", "multiclass_accuracy",
    "save", "load",
]

Activation = Optional[Callable[[Any], Any]]
PathLike = Union[str, "os.PathLike[str]"]


# ---------------------------------------------------------------------------
# Arrays. NumPy is an optional dependency, so the array forms import it (and
# tapegrad.numpy) on first use; float code never does.
# ---------------------------------------------------------------------------


def _np() -> Any:
    import numpy

    return numpy


def _tnp() -> Any:
    from . import numpy as tnp

    return tnp


def _is_array(x: Any) -> bool:
    """Whether ``x`` is an array: NumPy's, a traced one, or another library's (JAX's).

    Anything with a shape and a dtype. Lists and tuples are sequences of numbers
    (the float layout), never arrays, even when NumPy could convert them.
    """
    return hasattr(x, "shape") and hasattr(x, "dtype") and not isinstance(x, (list, tuple))


def _value(x: Any) -> Any:
    """The NumPy value inside a traced array (or ``x`` itself), for checks only.

    Never for results: under ``jit`` the value is the one of the call that was
    traced, so a result computed from it would be replayed for every later call.
    """
    return primal(x) if type(x) in TRACER_TYPES else x


def _plain(x: Any) -> Any:
    """A float from a NumPy result; a traced result stays traced (jit recomputes it)."""
    return x if type(x) in TRACER_TYPES else float(x)


# ---------------------------------------------------------------------------
# The network.
# ---------------------------------------------------------------------------


def init_mlp(n_in: int, sizes: Sequence[int], seed: int = 0, *, arrays: bool = False,
             dtype: Any = None) -> Any:
    """Random parameters for an MLP with ``n_in`` inputs and layers of ``sizes`` neurons.

    Weights are drawn uniformly from ``±sqrt(6 / (fan_in + fan_out))`` (Glorot's
    scaling, which keeps tanh units out of saturation at the start); biases
    start at zero. The same seed gives the same parameters.

    Args:
        arrays: ``False`` (the default) for nested tuples of floats; ``True`` for a
            list of ``(W, b)`` arrays holding the same numbers: ``W[j, i]`` is
            weight ``i`` of neuron ``j`` of the float layout (drawn in the same
            order from the same seed).
        dtype: the arrays' float dtype (``"float64"`` by default, or ``"float32"``,
            ``np.float32``, ...); the weights are drawn as float64 and rounded.

    Returns:
        Floats: a tuple of layers; each layer a tuple of neurons; each neuron a
        ``(weights, bias)`` pair with ``weights`` a tuple of ``fan_in`` floats.
        Arrays: a list of ``(W, b)`` tuples, ``W`` of shape ``(fan_out, fan_in)``.

    >>> params = init_mlp(3, [4, 4, 1], seed=1)
    >>> [len(layer) for layer in params]
    [4, 4, 1]
    >>> weights, bias = params[2][0]
    >>> len(weights), bias
    (4, 0.0)
    >>> init_mlp(3, [4, 4, 1], seed=1) == params
    True
    >>> W, b = init_mlp(3, [4, 4, 1], seed=1, arrays=True, dtype="float32")[0]
    >>> W.shape, W.dtype, b.shape
    ((4, 3), dtype('float32'), (4,))
    """
    if isinstance(n_in, bool) or not isinstance(n_in, int) or n_in < 1:
        raise ValueError(f"init_mlp: n_in must be a positive int, got {n_in!r}")
    sizes = list(sizes)
    if not sizes or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 1
                            for s in sizes):
        raise ValueError(
            f"init_mlp: sizes must be a non-empty list of positive ints, got {sizes!r}"
        )
    if dtype is not None and not arrays:
        raise ValueError(
            f"init_mlp: dtype={dtype!r} applies to arrays; pass arrays=True as well "
            "(without it the parameters are Python floats)"
        )
    rng = random.Random(seed)
    layers = []
    fan_in = n_in
    for fan_out in sizes:
        limit = math.sqrt(6.0 / (fan_in + fan_out))
        layer = tuple(
            (tuple(rng.uniform(-limit, limit) for _ in range(fan_in)), 0.0)
            for _ in range(fan_out)
        )
        layers.append(layer)
        fan_in = fan_out
    if not arrays:
        return tuple(layers)
    np = _np()
    float_type = np.dtype("float64" if dtype is None else dtype)
    if float_type.kind != "f":
        raise ValueError(
            f"init_mlp: dtype must be a float dtype such as 'float32' or 'float64', got "
            f"{float_type.name}: parameters of other types have no gradient"
        )
    return [(np.array([weights for weights, _ in layer], dtype=np.float64).astype(float_type),
             np.zeros(len(layer), dtype=float_type)) for layer in layers]


def mlp(params: Sequence, x: Any, activation: Activation = _p.tanh,
        final_activation: Activation = None) -> Any:
    """Run the MLP ``params`` on an input; return the last layer's outputs.

    One function for both layouts, chosen by the parameters, because the model is
    the same: a layer is ``activation(W x + b)`` either way, and the same training
    code then runs on floats and on arrays.

    - Floats (``init_mlp(...)``): ``x`` is one input (a sequence of numbers);
      the result is a list with one output per neuron of the last layer. Each
      neuron is one fused record on the tape (``tg.primitives.dense``).
    - Arrays (``init_mlp(..., arrays=True)``): ``x`` is a batch of shape
      ``(n, in)`` (or one sample of shape ``(in,)``); the result has shape
      ``(n, out)``. Each layer is ``x @ W.T + b``: a few array records for the
      whole batch. The array form uses only ``@``, ``.T``, ``+`` and the
      activation, so with ``activation=jax.numpy.tanh`` it runs under JAX too.

    Hidden layers apply ``activation``; the last layer applies
    ``final_activation``, or nothing (a linear output) when it is ``None``.
    tapegrad's own functions (``tg.tanh``, ``tg.relu``, ...) work with both
    layouts. Works on traced values and on plain numbers alike.

    >>> import tapegrad as tg
    >>> params = ((((1.0, -1.0), 0.5),),)           # one layer, one neuron
    >>> mlp(params, (2.0, 3.0))                      # 2 - 3 + 0.5, linear
    [-0.5]
    >>> [round(v, 6) for v in mlp(params, (2.0, 3.0), final_activation=tg.tanh)]
    [-0.462117]
    >>> import numpy as np
    >>> W, b = np.array([[1.0, -1.0]]), np.array([0.5])   # the same neuron as arrays
    >>> mlp([(W, b)], np.array([[2.0, 3.0], [1.0, 0.0]]))
    array([[-0.5],
           [ 1.5]])
    """
    if _array_layout(params):
        return _mlp_arrays(params, x, activation, final_activation)
    if len(x) != len(params[0][0][0]):
        raise ValueError(
            f"mlp: the input has {len(x)} features but the first layer's neurons take "
            f"{len(params[0][0][0])}"
        )
    last = len(params) - 1
    for k, layer in enumerate(params):
        # The activation is fused into each neuron's record when it is a primitive.
        x = _p.dense(layer, x, activation if k < last else final_activation)
        if k < last:
            # A tuple, so that tg.dot unpacks it once for all the next layer's neurons.
            x = tuple(x)
    return x


def _array_layout(params: Any) -> bool:
    """Whether ``params`` is the array layout: its first layer starts with a matrix ``W``.

    In the float layout the first layer starts with a neuron, a ``(weights, bias)`` pair.
    """
    try:
        first = params[0][0]
    except (TypeError, IndexError, KeyError):
        raise ValueError(
            "mlp: params must be the output of init_mlp: a tuple of layers of (weights, "
            "bias) neurons (floats), or a list of (W, b) layers (arrays=True); got "
            f"{type(params).__name__}"
        ) from None
    return _is_array(first)


def _array_activation(activation: Activation) -> Activation:
    """tapegrad's scalar function of the same name is the array one (tg.tanh -> tnp.tanh)."""
    if activation is None:
        return None
    name = getattr(activation, "__name__", "")
    if getattr(_p, name, None) is activation:
        tnp = _tnp()
        if hasattr(tnp, name):
            return getattr(tnp, name)  # type: ignore[no-any-return]
    return activation


def _mlp_arrays(params: Sequence, x: Any, activation: Activation,
                final_activation: Activation) -> Any:
    if not _is_array(x):
        if isinstance(x, (list, tuple)) and "numpy" in sys.modules:
            x = _np().asarray(x, dtype=params[0][0].dtype)
        else:
            raise TypeError(f"mlp: array parameters take an array input, got "
                            f"{type(x).__name__}")
    _check_array_layers(params, x)
    hidden, final = _array_activation(activation), _array_activation(final_activation)
    last = len(params) - 1
    for k, (W, b) in enumerate(params):
        x = x @ W.T + b
        act = hidden if k < last else final
        if act is not None:
            x = act(x)
    return x


def _check_array_layers(params: Sequence, x: Any) -> None:
    """Shapes that chain, checked before any arithmetic, with the layer named."""
    features = x.shape[-1] if len(x.shape) else None
    for k, layer in enumerate(params):
        if not (isinstance(layer, (tuple, list)) and len(layer) == 2 and _is_array(layer[0])
                and _is_array(layer[1])):
            raise ValueError(f"mlp: layer {k} of array parameters must be a (W, b) pair of "
                             f"arrays, got {type(layer).__name__}")
        W, b = layer
        if len(W.shape) != 2 or tuple(b.shape) != (W.shape[0],):
            raise ValueError(f"mlp: layer {k} has W of shape {tuple(W.shape)} and b of shape "
                             f"{tuple(b.shape)}; expected W (out, in) and b (out,)")
        if features != W.shape[1]:
            what = (f"the input has {features} features" if k == 0 else
                    f"layer {k - 1} has {features} outputs")
            hint = " (one sample per row: X has shape (n, in))" if k == 0 else ""
            raise ValueError(f"mlp: {what} but layer {k}'s W has shape {tuple(W.shape)}, "
                             f"which takes {W.shape[1]}{hint}")
        features = W.shape[0]


# ---------------------------------------------------------------------------
# Losses. Each returns one scalar. On floats, sums are single tg.sum / tg.dot
# records; on arrays, a few array records for the whole batch.
# ---------------------------------------------------------------------------


def _pair(name: str, predictions: Sequence, targets: Sequence) -> int:
    n = len(predictions)
    if n != len(targets):
        raise ValueError(f"{name}: {n} predictions but {len(targets)} targets")
    if n == 0:
        raise ValueError(f"{name}: no predictions; the loss of an empty batch is undefined")
    return n


def _batch(name: str, predictions: Any, targets: Any, what: str = "targets") -> Any:
    """The targets as an array (traced ones stay traced) of the predictions' shape.

    The shapes must be equal: broadcasting (n, 1) predictions against (n,)
    targets would silently compare every prediction with every target.
    """
    if not _is_array(targets):
        targets = _np().asarray(targets)
    shape, target_shape = tuple(predictions.shape), tuple(targets.shape)
    if shape != target_shape:
        hint = ""
        if shape == target_shape + (1,):
            hint = "; for a one-output MLP take its column: predictions[:, 0]"
        raise ValueError(f"{name}: predictions of shape {shape} but {what} of shape "
                         f"{target_shape}; they must have the same shape{hint}")
    if math.prod(shape) == 0:
        raise ValueError(f"{name}: no predictions; the loss of an empty batch is undefined")
    return targets


def _check_labels(name: str, labels: Any, allowed: tuple[int, int], words: str) -> None:
    # The values are read for the check only (under jit it runs when the call is traced).
    values = _np().asarray(_value(labels))
    bad = ~((values == allowed[0]) | (values == allowed[1]))
    if bad.any():
        index = tuple(int(i) for i in _np().argwhere(bad)[0])
        raise ValueError(f"{name}: labels must be {words}, got {values[index].item()!r} at index "
                         f"{index[0] if len(index) == 1 else index}")


def _in_dtype_of(labels: Any, predictions: Any) -> Any:
    """Labels or targets in the predictions' float type, so float32 losses stay float32."""
    dtype = _np().dtype(predictions.dtype)
    return _tnp().astype(labels, dtype if dtype.kind == "f" else "float64")


def sum_squared_error(predictions: Sequence[Any], targets: Sequence[Any]) -> Any:
    """The sum of ``(prediction - target) ** 2`` (the seed's loss).

    >>> sum_squared_error([1.0, 2.0], [0.0, 4.0])
    5.0
    >>> import numpy as np
    >>> float(sum_squared_error(np.array([[1.0], [2.0]]), np.array([[0.0], [4.0]])))
    5.0
    """
    if _is_array(predictions):
        targets = _batch("sum_squared_error", predictions, targets)
        errors = predictions - _in_dtype_of(targets, predictions)
        return _tnp().sum(errors * errors)
    _pair("sum_squared_error", predictions, targets)
    errors = [p - t for p, t in zip(predictions, targets)]
    return _p.dot(errors, errors)


def mse(predictions: Sequence[Any], targets: Sequence[Any]) -> Any:
    """The mean of ``(prediction - target) ** 2``.

    On arrays, the mean over every element; the shapes must be equal.

    >>> mse([1.0, 2.0], [0.0, 4.0])
    2.5
    >>> import numpy as np
    >>> float(mse(np.array([1.0, 2.0]), np.array([0.0, 4.0])))
    2.5
    """
    if _is_array(predictions):
        errors = predictions - _in_dtype_of(_batch("mse", predictions, targets), predictions)
        return _tnp().mean(errors * errors)
    n = _pair("mse", predictions, targets)
    errors = [p - t for p, t in zip(predictions, targets)]
    return _p.dot(errors, errors) / n


def hinge_loss(scores: Sequence[Any], labels: Sequence[Any]) -> Any:
    """The max-margin loss: the mean of ``relu(1 - label * score)``, labels ±1.

    A sample costs nothing once it is on the right side with margin 1. On arrays,
    ``scores`` and ``labels`` have one shape (for instance ``(n,)``).

    >>> hinge_loss([2.0, 0.5, -1.0], [1, 1, 1])    # (0 + 0.5 + 2) / 3
    0.8333333333333334
    >>> import numpy as np
    >>> round(float(hinge_loss(np.array([2.0, 0.5, -1.0]), np.array([1, 1, 1]))), 6)
    0.833333
    """
    if _is_array(scores):
        labels = _batch("hinge_loss", scores, labels, "labels")
        _check_labels("hinge_loss", labels, (-1, 1), "-1 or +1")
        return _tnp().mean(_tnp().relu(1.0 - _in_dtype_of(labels, scores) * scores))
    n = _pair("hinge_loss", scores, labels)
    for y in labels:
        if y != 1 and y != -1:
            raise ValueError(f"hinge_loss: labels must be -1 or +1, got {y!r}")
    return _p.sum([_p.relu(1.0 - y * s) for s, y in zip(scores, labels)]) / n


def _softplus(z: Any) -> Any:
    """log(1 + exp(z)) = max(z, 0) + log(1 + exp(-|z|)), never exponentiating a large z.

    The max and the absolute value are resolved by one branch on the sign of
    ``z`` rather than by relu and abs: their derivatives at exactly 0 are taken
    as 0 by convention, which would make the derivative at z = 0 come out as 0
    instead of sigmoid(0) = 1/2.
    """
    if z >= 0.0:
        return z + _p.log(1.0 + _p.exp(-z))
    return _p.log(1.0 + _p.exp(z))


def binary_cross_entropy(logits: Sequence[Any], labels: Sequence[Any]) -> Any:
    """The mean logistic loss of ``logits`` for labels 0/1, computed stably from the logits.

    Per sample: ``max(z, 0) - z * y + log(1 + exp(-|z|))``, which equals
    ``-y log sigmoid(z) - (1 - y) log(1 - sigmoid(z))`` but never overflows. On
    arrays it is ``softplus(z) - z * y`` (``tnp.softplus`` is written that stable
    way, and its derivative ``sigmoid(z)`` is right at ``z = 0`` too).

    >>> round(binary_cross_entropy([0.0], [1]), 6)            # log 2
    0.693147
    >>> binary_cross_entropy([1000.0, -1000.0], [1, 0])
    0.0
    >>> import numpy as np
    >>> float(binary_cross_entropy(np.array([1000.0, -1000.0]), np.array([1, 0])))
    0.0
    """
    if _is_array(logits):
        labels = _batch("binary_cross_entropy", logits, labels, "labels")
        _check_labels("binary_cross_entropy", labels, (0, 1), "0 or 1")
        tnp = _tnp()
        return tnp.mean(tnp.softplus(logits) - logits * _in_dtype_of(labels, logits))
    n = _pair("binary_cross_entropy", logits, labels)
    for y in labels:
        if y != 0 and y != 1:
            raise ValueError(f"binary_cross_entropy: labels must be 0 or 1, got {y!r}")
    return _p.sum([_softplus(z) - z * y for z, y in zip(logits, labels)]) / n


def softmax_cross_entropy(logits: Sequence[Sequence[Any]], labels: Sequence[int]) -> Any:
    """The mean of ``-log softmax(row)[label]`` over rows of logits and integer class labels.

    Each row's log-sum-exp subtracts the row's largest logit first, so huge
    logits do not overflow: on floats the largest logit is held constant with
    ``tg.stop_gradient``; on arrays (``logits`` of shape ``(n, classes)``,
    ``labels`` ``n`` ints) ``tnp.logsumexp`` does the shift inside one record.

    >>> round(softmax_cross_entropy([[0.0, 0.0, 0.0]], [2]), 6)    # log 3
    1.098612
    >>> softmax_cross_entropy([[1000.0, 0.0], [0.0, 1000.0]], [0, 1])
    0.0
    >>> import numpy as np
    >>> float(softmax_cross_entropy(np.array([[1000.0, 0.0], [0.0, 1000.0]]), [0, 1]))
    0.0
    """
    if _is_array(logits):
        return _softmax_cross_entropy_arrays(logits, labels)
    n = _pair("softmax_cross_entropy", logits, labels)
    losses = []
    for row, label in zip(logits, labels):
        if isinstance(label, bool) or not isinstance(label, int):
            raise TypeError(
                f"softmax_cross_entropy: labels must be ints, got {type(label).__name__} "
                f"{label!r}"
            )
        if not 0 <= label < len(row):
            raise ValueError(
                f"softmax_cross_entropy: label {label} is out of range for a row of "
                f"{len(row)} logits"
            )
        top = _p.stop_gradient(max(row))
        log_sum_exp = top + _p.log(_p.sum([_p.exp(z - top) for z in row]))
        losses.append(log_sum_exp - row[label])
    return _p.sum(losses) / n


def _class_labels(name: str, logits: Any, labels: Any) -> Any:
    """Integer labels, one per row of ``(n, classes)`` logits, each a valid class."""
    np = _np()
    if not _is_array(labels):
        labels = np.asarray(labels)
    if len(logits.shape) != 2:
        raise ValueError(f"{name}: logits must have shape (n, classes), got "
                         f"{tuple(logits.shape)}")
    if labels.dtype.kind not in "iu":
        raise TypeError(f"{name}: labels must be ints (class numbers), got an array of "
                        f"{labels.dtype}; convert them with labels.astype(int)")
    n, classes = logits.shape
    if tuple(labels.shape) != (n,):
        raise ValueError(f"{name}: {n} rows of logits but labels of shape "
                         f"{tuple(labels.shape)}; pass one label per row")
    if n == 0:
        raise ValueError(f"{name}: no predictions; the loss of an empty batch is undefined")
    values = np.asarray(_value(labels))  # for the check only, as in _check_labels
    outside = (values < 0) | (values >= classes)
    if outside.any():
        i = int(np.argmax(outside))
        raise ValueError(f"{name}: label {values[i]} at index {i} is out of range for rows "
                         f"of {classes} logits")
    return labels


def _softmax_cross_entropy_arrays(logits: Any, labels: Any) -> Any:
    labels = _class_labels("softmax_cross_entropy", logits, labels)
    tnp = _tnp()
    # Each row's logit at its label; traced labels stay operands, so jit reads each call's.
    picked = logits[_np().arange(len(labels)), labels]
    return tnp.mean(tnp.logsumexp(logits, axis=1) - picked)


def l2(params: Any) -> Any:
    """The sum of squares of every leaf of a pytree.

    For floats, one ``tg.dot`` record; an array leaf adds ``sum(leaf * leaf)``.

    >>> l2(((1.0, 2.0), {"b": 3.0}))
    14.0
    >>> import numpy as np
    >>> float(l2([(np.array([[1.0, 2.0]]), np.array([3.0]))]))
    14.0
    """
    leaves = tree_leaves(params)
    arrays = [leaf for leaf in leaves if _is_array(leaf)]
    if not arrays:
        return _p.dot(leaves, leaves)
    numbers_ = [leaf for leaf in leaves if not _is_array(leaf)]
    tnp = _tnp()
    total: Any = _p.dot(numbers_, numbers_) if numbers_ else 0.0
    for leaf in arrays:
        total = total + tnp.sum(leaf * leaf)
    return total


# ---------------------------------------------------------------------------
# Reading the outputs. On arrays they are computed with tapegrad.numpy's
# comparisons and argmax, which have no derivative: plain results for NumPy
# arrays, traced 0-d results for traced arrays, so that jit recomputes them for
# every call (return them as aux to read them).
# ---------------------------------------------------------------------------


def accuracy(scores: Sequence[Any], labels: Sequence[Any]) -> Any:
    """The fraction of ±1 labels whose sign the scores get right (a score of 0 is wrong).

    On arrays, ``scores`` and ``labels`` have one shape; a NaN score is wrong;
    the result is a float, or a traced 0-d array for traced scores.

    >>> accuracy([0.3, -2.0, 0.1], [1, -1, -1])
    0.6666666666666666
    >>> import numpy as np
    >>> accuracy(np.array([0.3, -2.0, 0.1]), np.array([1, -1, -1]))
    0.6666666666666666
    """
    if _is_array(scores):
        tnp = _tnp()
        signs = _batch("accuracy", scores, labels, "labels")
        values: Any = scores
        right = tnp.logical_or(tnp.logical_and(signs > 0, values > 0.0),
                               tnp.logical_and(signs < 0, values < 0.0))
        return _plain(tnp.mean(tnp.astype(right, "float64")))
    n = _pair("accuracy", scores, labels)
    right = 0
    for s, y in zip(scores, labels):
        if (s > 0.0 and y > 0) or (s < 0.0 and y < 0):
            right += 1
    return right / n


def argmax(values: Sequence[Any]) -> Any:
    """The index of the largest value (the first one, on ties).

    For an array, along its last axis: an int for one row, an array of ints
    (one per row) for a batch; traced for a traced array.

    >>> argmax([0.1, 2.0, -1.0])
    1
    >>> import numpy as np
    >>> argmax(np.array([[0.1, 2.0], [3.0, 1.0]]))
    array([1, 0])
    """
    if _is_array(values):
        indices = _tnp().argmax(values, axis=-1)
        if type(indices) in TRACER_TYPES or indices.ndim:
            return indices
        return int(indices)
    return max(range(len(values)), key=lambda i: values[i])


def multiclass_accuracy(logits: Sequence[Sequence[Any]], labels: Sequence[int]) -> Any:
    """The fraction of rows whose largest logit is at the row's label.

    On arrays, a float, or a traced 0-d array for traced logits; a row holding a
    NaN is wrong.

    >>> multiclass_accuracy([[0.1, 2.0], [3.0, 1.0]], [1, 1])
    0.5
    >>> import numpy as np
    >>> multiclass_accuracy(np.array([[0.1, 2.0], [3.0, 1.0]]), np.array([1, 1]))
    0.5
    """
    if _is_array(logits):
        tnp = _tnp()
        labels = _class_labels("multiclass_accuracy", logits, labels)
        # argmax takes a NaN for the largest value: a row with a NaN is never right.
        has_nan = tnp.max(tnp.astype(tnp.isnan(logits), "float64"), axis=-1) > 0.0
        right = tnp.logical_and(tnp.argmax(logits, axis=-1) == labels, tnp.logical_not(has_nan))
        return _plain(tnp.mean(tnp.astype(right, "float64")))
    n = _pair("multiclass_accuracy", logits, labels)
    return sum(argmax(row) == label for row, label in zip(logits, labels)) / n


# ---------------------------------------------------------------------------
# Checkpoints: save and load.
#
# Two formats, chosen by what is saved and told apart on load by their first bytes:
#
# - version 1, JSON text: a tree of Python ints and floats in tuples, lists, dicts
#   and None. This is what tapegrad 0.1 wrote, unchanged: such files stay readable
#   (by people too) and old files keep loading.
# - version 2, a NumPy .npz archive (a zip of .npy files): everything else, that is
#   trees with arrays, NumPy scalars, named tuples or attrs records (optimizer
#   states). Every number is stored in binary, so it comes back bit for bit
#   (-0.0, subnormals, NaN, dtype and shape); the tree's structure is a JSON text
#   inside the archive.
#
# Neither format can carry code: JSON is data, the archive is read with
# allow_pickle=False, and the types of named tuples and attrs records come from
# the template passed as like=, never from the file.
# ---------------------------------------------------------------------------

FORMAT = "tapegrad-params"
VERSION = 1  # JSON text
ARCHIVE_VERSION = 2  # .npz archive
_ZIP_MAGIC = b"PK\x03\x04"
_TREE_ENTRY = "tree"
_FLOATS_ENTRY = "floats"


def save(path: PathLike, tree: Any) -> None:
    """Write a pytree of numbers and arrays to ``path``; ``load`` restores it exactly.

    Parameters, optimizer states, step counts, or all of them in one tuple: a
    checkpoint. Tuples, lists, dicts (str or int keys), ``None``, named tuples
    and attrs records keep their structure; ints and floats their type; arrays
    their dtype, shape and every bit. A tree of only Python numbers in plain
    containers is written as JSON text (format version 1); anything else as a
    NumPy ``.npz`` archive (version 2). ``load`` reads both, whatever the file is
    called. The file is written whole or not at all (a temporary file is renamed
    over it), and missing parent folders are created.

    >>> import os, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> tree = {"layers": ((1.0, 2), [3.5]), "step": None}
    >>> save(os.path.join(folder, "params.json"), tree)
    >>> loaded = load(os.path.join(folder, "params.json"))
    >>> loaded == tree and type(loaded["layers"]) is tuple
    True
    >>> import numpy as np
    >>> save(os.path.join(folder, "run", "step-100"), {"w": np.float32([-0.0, 1e-45])})
    >>> load(os.path.join(folder, "run", "step-100"))["w"]
    array([-0.e+00,  1.e-45], dtype=float32)
    """
    if _is_plain(tree):
        document = {"format": FORMAT, "version": VERSION, "params": _encode(tree, "params")}
        text = json.dumps(document, allow_nan=False) + "\n"
        _write_atomically(Path(path), text.encode("utf-8"))
        return
    archive = _Archive()
    node = archive.encode(tree, "params")  # refuses bad leaves before NumPy is needed
    np = _np()
    structure = json.dumps({"format": FORMAT, "version": ARCHIVE_VERSION, "params": node})
    entries = {_TREE_ENTRY: np.array(structure),
               _FLOATS_ENTRY: np.array(archive.floats, dtype=np.float64), **archive.arrays}
    buffer = io.BytesIO()
    np.savez(buffer, **entries)
    _write_atomically(Path(path), buffer.getvalue())


def load(path: PathLike, like: Any = None) -> Any:
    """Read a checkpoint written by :func:`save`, with its exact structure and values.

    With ``like=``, a template of the same structure (for instance
    ``init_mlp`` with the same sizes, or ``(params, opt.init(params), 0)``), the
    result takes the template's types (named tuples such as optimizer states,
    attrs records), and every array must have the template's shape and dtype;
    a ``ValueError`` says where the file and the template differ. A file that
    holds named tuples or attrs records needs ``like=``: their types are never
    read from the file.

    >>> import os, tempfile
    >>> from tapegrad import optim
    >>> path = os.path.join(tempfile.mkdtemp(), "checkpoint")
    >>> params = init_mlp(2, [3, 1], seed=0)
    >>> state = optim.adam(0.1).init(params)
    >>> save(path, (params, state))
    >>> loaded_params, loaded_state = load(path, like=(params, state))
    >>> loaded_params == params, type(loaded_state).__name__, loaded_state.step
    (True, 'AdamState', 0)
    """
    source = str(path)
    data = Path(path).read_bytes()
    if data.startswith(_ZIP_MAGIC):
        tree = _read_archive(data, source)
    else:
        tree = _read_json(data, source)
    if like is None:
        record = _first_record(tree, "params")
        if record is not None:
            where, saved = record
            raise ValueError(
                f"nn.load: {source} holds the {saved.kind} record {saved.name} at {where}; "
                "its type is not read from the file. Pass like= a template of the same "
                "structure, for instance like=(params, opt.init(params), 0), to get it back"
            )
        return tree
    return _restore(tree, like, source)


def _write_atomically(target: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``target``, then rename it over ``target``.

    A crash or a full disk during the write leaves the previous checkpoint intact.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{os.getpid()}-{id(data):x}.tmp")
    try:
        with open(temporary, "xb") as file:
            file.write(data)
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _is_plain(tree: Any) -> bool:
    """Whether ``tree`` is Python ints and floats in tuples, lists, dicts and None (JSON)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        cls = type(node)
        if cls is tuple or cls is list:
            stack.extend(node)
        elif cls is dict:
            stack.extend(node.values())
        elif not (node is None or cls is float or cls is int):
            return False
    return True


def _unsupported(tree: Any, path: str) -> TypeError:
    cls = type(tree)
    hint = ""
    if cls in TRACER_TYPES:
        hint = "; it is a traced value: save the parameters outside grad, not inside it"
    return TypeError(
        f"nn.save: the leaf {path} is {cls.__name__} {tree!r}, which cannot be saved; "
        "leaves must be int, float, NumPy arrays or scalars, and containers tuple, list, "
        f"dict, None, named tuples or attrs records{hint}"
    )


def _check_key(key: Any, path: str) -> None:
    if type(key) is not str and type(key) is not int:
        raise TypeError(
            f"nn.save: the dict at {path} has a key {key!r} of type "
            f"{type(key).__name__}; only str and int keys can be saved"
        )


# -- version 1: JSON text ------------------------------------------------------


def _encode(tree: Any, path: str) -> Any:
    """A JSON-ready form of a plain pytree: numbers bare, containers as one-key tagged objects."""
    cls = type(tree)
    if cls is float:
        if not math.isfinite(tree):
            raise ValueError(
                f"nn.save: the leaf {path} is {tree}; a tree of plain numbers is saved as JSON, "
                "which holds only finite numbers (NumPy arrays are saved in binary and may "
                "hold any float)"
            )
        return tree
    if cls is int or tree is None:
        return tree
    if cls is tuple:
        return {"tuple": [_encode(c, f"{path}[{i}]") for i, c in enumerate(tree)]}
    if cls is list:
        return {"list": [_encode(c, f"{path}[{i}]") for i, c in enumerate(tree)]}
    items = []
    for key, value in tree.items():
        _check_key(key, path)
        items.append([key, _encode(value, f"{path}[{key!r}]")])
    return {"dict": items}


def _read_json(data: bytes, source: str) -> Any:
    try:
        document = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise ValueError(f"nn.load: {source} is not a tapegrad parameter file: neither "
                         "JSON text nor a .npz archive") from None
    except json.JSONDecodeError as error:
        raise ValueError(f"nn.load: {source} is not valid JSON: {error}") from None
    _check_header(document, VERSION, source)
    return _decode(document["params"], "params", source)


def _check_header(document: Any, version: int, source: str) -> None:
    if type(document) is not dict or document.get("format") != FORMAT:
        found = document.get("format") if type(document) is dict else type(document).__name__
        raise ValueError(
            f"nn.load: {source} is not a tapegrad parameter file: expected format "
            f"{FORMAT!r}, found {found!r}"
        )
    found_version = document.get("version")
    if found_version != version:
        raise ValueError(
            f"nn.load: {source} has format version {found_version!r}; this tapegrad reads "
            f"version {VERSION} (JSON) and version {ARCHIVE_VERSION} (.npz archives)"
        )
    if "params" not in document:
        raise ValueError(f"nn.load: {source} has no 'params' entry")


def _decode(node: Any, path: str, source: str) -> Any:
    cls = type(node)
    if cls is float or cls is int or node is None:
        return node
    if cls is dict and len(node) == 1:
        (tag, body), = node.items()
        if tag in ("tuple", "list") and type(body) is list:
            children = [_decode(c, f"{path}[{i}]", source) for i, c in enumerate(body)]
            return tuple(children) if tag == "tuple" else children
        if tag == "dict" and type(body) is list:
            return _decode_dict(body, path, source, _decode)
    if cls in (str, bool):
        raise ValueError(
            f"nn.load: {source}: the leaf {path} is {cls.__name__} {node!r}, not a number"
        )
    raise ValueError(
        f"nn.load: {source}: unexpected {json.dumps(node)[:60]} at {path}; expected a number, "
        'null, or a container tagged {"tuple": [...]}, {"list": [...]} or {"dict": [...]}'
    )


def _decode_dict(body: list, path: str, source: str, decode: Callable[..., Any]) -> dict:
    out = {}
    for item in body:
        if not (type(item) is list and len(item) == 2 and type(item[0]) in (str, int)):
            raise ValueError(
                f"nn.load: {source}: the dict at {path} has a malformed entry "
                f"{item!r}; expected [key, value] with a str or int key"
            )
        key, value = item
        out[key] = decode(value, f"{path}[{key!r}]", source)
    return out


# -- version 2: a .npz archive -------------------------------------------------


@attrs.frozen
class _SavedRecord:
    """A named tuple or attrs record read from an archive, waiting for its type (like=)."""

    kind: str  # "namedtuple" or "attrs"
    name: str
    fields: tuple[str, ...]
    children: list


class _Archive:
    """The arrays and Python floats of a checkpoint being written, and its structure."""

    def __init__(self) -> None:
        self.arrays: dict[str, Any] = {}
        self.floats: list[float] = []

    def encode(self, tree: Any, path: str) -> Any:
        """The JSON structure of ``tree``: every leaf tagged, numbers stored aside in binary."""
        cls = type(tree)
        if cls is float:
            self.floats.append(tree)
            return {"float": len(self.floats) - 1}
        if cls is int:
            return {"int": tree}
        if tree is None:
            return None
        if cls is tuple or cls is list:
            tag = "tuple" if cls is tuple else "list"
            return {tag: [self.encode(c, f"{path}[{i}]") for i, c in enumerate(tree)]}
        if cls is dict:
            items = []
            for key, value in tree.items():
                _check_key(key, path)
                items.append([key, self.encode(value, f"{path}[{key!r}]")])
            return {"dict": items}
        if isinstance(tree, tuple) and hasattr(cls, "_fields"):
            fields = list(cls._fields)
            return {"namedtuple": cls.__name__, "fields": fields, "children": [
                self.encode(c, f"{path}.{name}") for name, c in zip(fields, tree)]}
        if attrs.has(cls):
            fields = [a.name for a in attrs.fields(cls) if a.init]
            return {"attrs": cls.__name__, "fields": fields, "children": [
                self.encode(getattr(tree, name), f"{path}.{name}") for name in fields]}
        return self._encode_array(tree, path)

    def _encode_array(self, tree: Any, path: str) -> Any:
        np = sys.modules.get("numpy")
        if np is None or not isinstance(tree, (np.ndarray, np.generic)):
            raise _unsupported(tree, path)
        if tree.dtype.kind not in "biufc":
            raise TypeError(
                f"nn.save: the array {path} has dtype {tree.dtype}; only bool, int, float "
                "and complex arrays can be saved without pickle (which could run code "
                "when loaded)"
            )
        name = f"a{len(self.arrays)}"
        self.arrays[name] = np.asarray(tree)
        return {"array" if isinstance(tree, np.ndarray) else "scalar": name}


def _read_archive(data: bytes, source: str) -> Any:
    import zipfile

    try:
        np = _np()
    except ImportError:
        raise ImportError(f"nn.load: {source} is a .npz archive (a checkpoint with arrays); "
                          "reading it needs NumPy: pip install numpy") from None
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            entries = {name: archive[name] for name in archive.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
        raise ValueError(f"nn.load: {source} is not a readable .npz archive: {error}") from None
    structure = entries.get(_TREE_ENTRY)
    floats = entries.get(_FLOATS_ENTRY)
    if (structure is None or structure.shape != () or structure.dtype.kind != "U"
            or floats is None or floats.dtype != np.float64 or floats.ndim != 1):
        raise ValueError(f"nn.load: {source} is a .npz archive but not a tapegrad checkpoint "
                         f"(its entries are {sorted(entries)})")
    try:
        document = json.loads(str(structure[()]))
    except json.JSONDecodeError as error:
        raise ValueError(f"nn.load: {source}: the structure inside the archive is not valid "
                         f"JSON: {error}") from None
    _check_header(document, ARCHIVE_VERSION, source)
    reader = _ArchiveReader(entries, floats, source)
    return reader.decode(document["params"], "params", source)


@attrs.frozen
class _ArchiveReader:
    entries: dict
    floats: Any
    source: str

    def decode(self, node: Any, path: str, source: str) -> Any:
        if node is None:
            return None
        if type(node) is dict:
            if len(node) == 1:
                (tag, body), = node.items()
                leaf = self._leaf(tag, body, path)
                if leaf is not _NOT_A_LEAF:
                    return leaf
                if tag in ("tuple", "list") and type(body) is list:
                    children = [self.decode(c, f"{path}[{i}]", source)
                                for i, c in enumerate(body)]
                    return tuple(children) if tag == "tuple" else children
                if tag == "dict" and type(body) is list:
                    return _decode_dict(body, path, source, self.decode)
            kind = "namedtuple" if "namedtuple" in node else "attrs"
            name, fields, items = node.get(kind), node.get("fields"), node.get("children")
            if (set(node) == {kind, "fields", "children"} and type(name) is str
                    and type(fields) is list and type(items) is list
                    and len(fields) == len(items)
                    and all(type(f) is str for f in fields)):
                return _SavedRecord(kind, name, tuple(fields), [
                    self.decode(c, f"{path}.{f}", source) for f, c in zip(fields, items)])
        raise ValueError(f"nn.load: {self.source}: unexpected {json.dumps(node)[:60]} at "
                         f"{path} in the archive's structure")

    def _leaf(self, tag: str, body: Any, path: str) -> Any:
        if tag == "float" and type(body) is int and 0 <= body < len(self.floats):
            return float(self.floats[body])
        if tag == "int" and type(body) is int:
            return body
        if tag in ("array", "scalar"):
            if type(body) is not str or body not in self.entries or body in (
                    _TREE_ENTRY, _FLOATS_ENTRY):
                raise ValueError(f"nn.load: {self.source}: the leaf {path} names the entry "
                                 f"{body!r}, which the archive does not hold")
            array = self.entries[body]
            return array if tag == "array" else array[()]
        if tag in ("float", "int"):
            raise ValueError(f"nn.load: {self.source}: the leaf {path} is malformed: "
                             f"{{{tag!r}: {body!r}}}")
        return _NOT_A_LEAF


_NOT_A_LEAF = object()


# -- like=: a template's types and a check of every shape ----------------------


def _first_record(tree: Any, path: str) -> tuple[str, _SavedRecord] | None:
    """The first named tuple or attrs record in a loaded tree, with its path."""
    stack = [(path, tree)]
    while stack:
        where, node = stack.pop()
        if type(node) is _SavedRecord:
            return where, node
        if type(node) is tuple or type(node) is list:
            stack.extend(reversed([(f"{where}[{i}]", c) for i, c in enumerate(node)]))
        elif type(node) is dict:
            stack.extend(reversed([(f"{where}[{k!r}]", c) for k, c in node.items()]))
    return None


def _describe(node: Any) -> str:
    cls = type(node)
    if node is None:
        return "None"
    if cls is _SavedRecord:
        return f"{node.name}({', '.join(node.fields)})"
    if cls is tuple or cls is list:
        return f"a {cls.__name__} of {len(node)}"
    if cls is dict:
        return f"a dict with keys {list(node)}"
    if isinstance(node, tuple) and hasattr(cls, "_fields"):
        return f"{cls.__name__}({', '.join(cls._fields)})"
    if attrs.has(cls):
        return f"{cls.__name__}({', '.join(a.name for a in attrs.fields(cls) if a.init)})"
    np = sys.modules.get("numpy")
    if np is not None and isinstance(node, np.ndarray):
        return f"an array of shape {node.shape} and dtype {node.dtype}"
    if np is not None and isinstance(node, np.generic):
        return f"a NumPy {node.dtype} scalar"
    return f"a {cls.__name__}"


def _restore(saved: Any, like: Any, source: str) -> Any:
    """The loaded tree in the template's structure and types, or where they differ."""
    leaves: list = []
    stack = [(saved, like, "params")]
    while stack:
        node, template, path = stack.pop()
        children: Any = _matching_children(node, template, path)
        if children is None:
            _check_leaf(node, template, path, source)
            leaves.append(node)
        elif children is _MISMATCH:
            raise ValueError(
                f"nn.load: {source}: the file's structure differs from the template's "
                f"(like=) at {path}: the file holds {_describe(node)}, the template "
                f"{_describe(template)}"
            )
        else:
            stack.extend(reversed(children))
    return tree_unflatten(tree_structure(like), leaves)


_MISMATCH: list = []


def _matching_children(node: Any, template: Any, path: str) -> Any:
    """The (saved, template, path) children of a template container; ``None`` for a leaf,
    ``_MISMATCH`` when the saved node is not the same kind of container."""
    cls = type(template)
    if template is None:
        return [] if node is None else _MISMATCH
    if cls is tuple or cls is list:
        if type(node) is not cls or len(node) != len(template):
            return _MISMATCH
        return [(n, t, f"{path}[{i}]") for i, (n, t) in enumerate(zip(node, template))]
    if cls is dict:
        if type(node) is not dict or set(node) != set(template):
            return _MISMATCH
        return [(node[k], t, f"{path}[{k!r}]") for k, t in template.items()]
    if isinstance(template, tuple) and hasattr(cls, "_fields"):
        fields, kind, values = tuple(cls._fields), "namedtuple", list(template)
    elif attrs.has(cls):
        fields = tuple(a.name for a in attrs.fields(cls) if a.init)
        kind, values = "attrs", [getattr(template, f) for f in fields]
    else:
        return _MISMATCH if _is_container(node) else None
    if not (type(node) is _SavedRecord and node.kind == kind and node.name == cls.__name__
            and node.fields == fields):
        return _MISMATCH
    return [(n, t, f"{path}.{f}") for n, t, f in zip(node.children, values, fields)]


def _is_container(node: Any) -> bool:
    return node is None or type(node) in (tuple, list, dict, _SavedRecord)


def _check_leaf(node: Any, template: Any, path: str, source: str) -> None:
    """An array must match the template's shape and dtype; a number, a number."""
    np = sys.modules.get("numpy")
    problem = None
    if np is not None and isinstance(template, (np.ndarray, np.generic)):
        if type(node) is not type(template) and not (
                isinstance(node, np.ndarray) and isinstance(template, np.ndarray)):
            problem = "kind"
        elif node.shape != template.shape or node.dtype != template.dtype:
            problem = "shape or dtype"
    elif isinstance(template, numbers.Number) and not (
            type(node) in (int, float) or isinstance(template, bool)):
        problem = "kind"
    if problem is not None:
        raise ValueError(
            f"nn.load: {source}: the leaf {path} differs from the template (like=) in "
            f"{problem}: the file holds {_describe(node)}, the template {_describe(template)}"
        )
