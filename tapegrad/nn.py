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

from . import primitives as _p
from .pytree import tree_flatten, tree_leaves, tree_paths, tree_unflatten
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
#   trees with arrays, NumPy scalars, named tuples, dataclasses or attrs records
#   (optimizer states). Every number is stored in binary, so it comes back bit for
#   bit (-0.0, subnormals, NaN, dtype and shape). A JSON text inside the archive
#   lists the leaves in the pytree's own order (tree_flatten) with their paths
#   (tree_paths), and writes out the containers when they are plain ones.
#
# With like=, the loaded leaves go into the template's structure through
# tree_unflatten, so every kind of pytree node is restored as the transforms
# rebuild it. Neither format can carry code: JSON is data, the archive is read
# with allow_pickle=False, and classes come from the template, never the file.
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
    checkpoint. Any pytree works (tuples, lists, dicts with str or int keys,
    ``None``, named tuples, dataclasses, attrs records); ints and floats keep
    their type, arrays their dtype, shape and every bit. A tree of only Python
    numbers in tuples, lists and dicts is written as JSON text (format version
    1); anything else as a NumPy ``.npz`` archive (version 2). ``load`` reads
    both, whatever the file is called. The file is written whole or not at all
    (a temporary file is renamed over it), and missing parent folders are
    created.

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
    leaves, treedef = tree_flatten(tree)
    paths = [where for where, _ in tree_paths(tree, prefix="params")]
    archive = _Archive()
    described = [archive.leaf(leaf, where) for leaf, where in zip(leaves, paths)]
    # The containers with each leaf replaced by its position in the leaf list.
    containers, record = _plain_containers(tree_unflatten(treedef, range(len(leaves))))
    document = {"format": FORMAT, "version": ARCHIVE_VERSION, "paths": paths,
                "leaves": described, "containers": containers, "record": record}
    np = _np()
    entries = {_TREE_ENTRY: np.array(json.dumps(document)),
               _FLOATS_ENTRY: np.array(archive.floats, dtype=np.float64), **archive.arrays}
    buffer = io.BytesIO()
    np.savez(buffer, **entries)
    _write_atomically(Path(path), buffer.getvalue())


def load(path: PathLike, like: Any = None) -> Any:
    """Read a checkpoint written by :func:`save`, with its exact structure and values.

    With ``like=``, a template of the same structure (for instance ``init_mlp``
    with the same sizes, or ``(params, opt.init(params), 0)``), the result is
    built in the template's structure and types (named tuples such as optimizer
    states, dataclasses, attrs records), and every array must have the
    template's shape and dtype; a ``ValueError`` says where the file and the
    template differ. A file that holds containers other than tuples, lists and
    dicts needs ``like=``: classes are never read from a file.

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
    if not data.startswith(_ZIP_MAGIC):
        tree = _read_json(data, source)
        if like is None:
            return tree
        return _restore(tree_leaves(tree), [where for where, _ in tree_paths(
            tree, prefix="params")], like, source)
    leaves, paths, containers, record = _read_archive(data, source)
    if like is not None:
        return _restore(leaves, paths, like, source)
    if containers is None:
        raise ValueError(
            f"nn.load: {source} holds a {record['type']} at {record['path']}, and classes "
            "are not read from files. Pass like= a template of the same structure, for "
            "instance like=(params, opt.init(params), 0), to build it again"
        )
    return _build_plain(containers, leaves, "params", source)


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
        "leaves must be int, float, or NumPy arrays or scalars (in any pytree: tuples, "
        f"lists, dicts, None, named tuples, dataclasses, attrs records){hint}"
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


def _check_header(document: Any, version: int, source: str,
                  keys: tuple[str, ...] = ("params",)) -> None:
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
    for key in keys:
        if key not in document:
            raise ValueError(f"nn.load: {source} has no {key!r} entry")


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


class _Archive:
    """The arrays and Python floats of a checkpoint being written."""

    def __init__(self) -> None:
        self.arrays: dict[str, Any] = {}
        self.floats: list[float] = []

    def leaf(self, leaf: Any, path: str) -> dict:
        """How the structure names one leaf: a float's index, an int, an array's entry."""
        cls = type(leaf)
        if cls is float:
            self.floats.append(leaf)
            return {"float": len(self.floats) - 1}
        if cls is int:
            return {"int": leaf}
        np = sys.modules.get("numpy")
        if np is None or not isinstance(leaf, (np.ndarray, np.generic)):
            raise _unsupported(leaf, path)
        if leaf.dtype.kind not in "biufc":
            raise TypeError(
                f"nn.save: the array {path} has dtype {leaf.dtype}; only bool, int, float "
                "and complex arrays can be saved without pickle (which could run code "
                "when loaded)"
            )
        name = f"a{len(self.arrays)}"
        self.arrays[name] = np.asarray(leaf)
        return {"array" if isinstance(leaf, np.ndarray) else "scalar": name}


def _plain_containers(positions: Any, path: str = "params") -> tuple[Any, Any]:
    """The containers of a tree whose leaves are their positions, as JSON, and ``None``;
    or ``None`` and where the first container that is not a tuple, list or dict is."""
    cls = type(positions)
    if cls is int:
        return {"leaf": positions}, None
    if positions is None:
        return None, None
    if cls is tuple or cls is list:
        children = []
        for i, child in enumerate(positions):
            node, record = _plain_containers(child, f"{path}[{i}]")
            if record is not None:
                return None, record
            children.append(node)
        return {cls.__name__: children}, None
    if cls is dict:
        items = []
        for key, child in positions.items():
            _check_key(key, path)
            node, record = _plain_containers(child, f"{path}[{key!r}]")
            if record is not None:
                return None, record
            items.append([key, node])
        return {"dict": items}, None
    return None, {"type": cls.__name__, "path": path}


def _read_archive(data: bytes, source: str) -> tuple[list, list, Any, Any]:
    """The leaves and their paths, the plain containers (or ``None``) and the first record."""
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
    structure = entries.pop(_TREE_ENTRY, None)
    floats = entries.pop(_FLOATS_ENTRY, None)
    if (structure is None or structure.shape != () or structure.dtype.kind != "U"
            or floats is None or floats.dtype != np.float64 or floats.ndim != 1):
        found = sorted(entries) + [n for n, v in ((_TREE_ENTRY, structure),
                                                  (_FLOATS_ENTRY, floats)) if v is not None]
        raise ValueError(f"nn.load: {source} is a .npz archive but not a tapegrad checkpoint "
                         f"(its entries are {sorted(found)})")
    try:
        document = json.loads(str(structure[()]))
    except json.JSONDecodeError as error:
        raise ValueError(f"nn.load: {source}: the structure inside the archive is not valid "
                         f"JSON: {error}") from None
    _check_header(document, ARCHIVE_VERSION, source, keys=("paths", "leaves", "containers"))
    paths, described = document["paths"], document["leaves"]
    if not (type(paths) is list and type(described) is list and len(paths) == len(described)
            and all(type(p) is str for p in paths)):
        raise ValueError(f"nn.load: {source}: the archive's list of leaves is malformed")
    leaves = [_read_leaf(node, where, entries, floats, source)
              for node, where in zip(described, paths)]
    return leaves, paths, document["containers"], document.get("record")


def _read_leaf(node: Any, path: str, entries: dict, floats: Any, source: str) -> Any:
    if type(node) is dict and len(node) == 1:
        (tag, body), = node.items()
        if tag == "float" and type(body) is int and 0 <= body < len(floats):
            return float(floats[body])
        if tag == "int" and type(body) is int:
            return body
        if tag in ("array", "scalar") and type(body) is str:
            if body not in entries:
                raise ValueError(f"nn.load: {source}: the leaf {path} names the entry "
                                 f"{body!r}, which the archive does not hold")
            return entries[body] if tag == "array" else entries[body][()]
    raise ValueError(f"nn.load: {source}: the leaf {path} is malformed: "
                     f"{json.dumps(node)[:60]}")


def _build_plain(node: Any, leaves: list, path: str, source: str) -> Any:
    """The tree that ``_plain_containers`` wrote, with the loaded leaves in place."""
    if node is None:
        return None
    if type(node) is dict and len(node) == 1:
        (tag, body), = node.items()
        if tag == "leaf" and type(body) is int and 0 <= body < len(leaves):
            return leaves[body]
        if tag in ("tuple", "list") and type(body) is list:
            children = [_build_plain(c, leaves, f"{path}[{i}]", source)
                        for i, c in enumerate(body)]
            return tuple(children) if tag == "tuple" else children
        if tag == "dict" and type(body) is list:
            return _decode_dict(body, path, source,
                                lambda value, where, _: _build_plain(value, leaves, where, source))
    raise ValueError(f"nn.load: {source}: unexpected {json.dumps(node)[:60]} at {path} in the "
                     "archive's structure")


# -- like=: the template's structure, and a check of every leaf -----------------


def _restore(leaves: list, paths: list[str], like: Any, source: str) -> Any:
    """The loaded leaves in the template's structure, or where file and template differ."""
    template_leaves, treedef = tree_flatten(like)
    template_paths = [where for where, _ in tree_paths(like, prefix="params")]
    if template_paths != paths:
        k = next((i for i, (a, b) in enumerate(zip(paths, template_paths)) if a != b),
                 min(len(paths), len(template_paths)))
        in_file = paths[k] if k < len(paths) else "no more leaves"
        in_template = template_paths[k] if k < len(template_paths) else "no more leaves"
        raise ValueError(
            f"nn.load: {source}: the file's structure differs from the template's (like=): "
            f"the file holds {len(paths)} leaves and the template {len(template_paths)}; the "
            f"first difference is leaf {k}: {in_file} in the file, {in_template} in the "
            "template"
        )
    for leaf, template, where in zip(leaves, template_leaves, paths):
        _check_leaf(leaf, template, where, source)
    return tree_unflatten(treedef, leaves)


def _describe(leaf: Any) -> str:
    np = sys.modules.get("numpy")
    if np is not None and isinstance(leaf, np.ndarray):
        return f"an array of shape {leaf.shape} and dtype {leaf.dtype}"
    if np is not None and isinstance(leaf, np.generic):
        return f"a NumPy {leaf.dtype} scalar"
    return f"a {type(leaf).__name__}"


def _check_leaf(leaf: Any, template: Any, path: str, source: str) -> None:
    """An array must match the template's shape and dtype; a number, a number."""
    np = sys.modules.get("numpy")
    problem = None
    if np is not None and isinstance(template, (np.ndarray, np.generic)):
        if type(leaf) is not type(template) and not (
                isinstance(leaf, np.ndarray) and isinstance(template, np.ndarray)):
            problem = "kind"
        elif leaf.shape != template.shape or leaf.dtype != template.dtype:
            problem = "shape or dtype"
    elif isinstance(template, numbers.Number) and not isinstance(template, bool) and (
            type(leaf) not in (int, float)):
        problem = "kind"
    if problem is not None:
        raise ValueError(
            f"nn.load: {source}: the leaf {path} differs from the template (like=) in "
            f"{problem}: the file holds {_describe(leaf)}, the template {_describe(template)}"
        )
