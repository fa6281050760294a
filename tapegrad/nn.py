"""Neural networks as plain data and pure functions: an MLP, losses, and saving.

Parameters are nested tuples of floats, mirroring the seed's object hierarchy
without any objects: an MLP is a tuple of layers, a layer a tuple of neurons,
a neuron a ``(weights, bias)`` pair with ``weights`` a tuple of floats. The
functions here take the parameters as an argument and return new values, so
``tg.grad`` differentiates them directly and the gradient comes back in the
same nested tuples.

Offers ``init_mlp`` and ``mlp`` (the network), the losses ``mse``,
``sum_squared_error``, ``hinge_loss``, ``binary_cross_entropy``,
``softmax_cross_entropy`` and ``l2``, the helpers ``accuracy``, ``argmax``
and ``multiclass_accuracy``, and ``save`` / ``load`` (parameters as JSON).

>>> import tapegrad as tg
>>> params = init_mlp(2, [3, 1], seed=0)
>>> len(params), len(params[0]), len(params[0][0][0])   # layers, neurons, weights
(2, 3, 2)
>>> grads = tg.grad(lambda p: mse(mlp(p, (1.0, 2.0)), [0.5]))(params)
>>> tg.tree_structure(grads) == tg.tree_structure(params)
True
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Callable, Optional

from . import primitives as _p
from .pytree import tree_leaves, tree_structure
from .tracer import Tracer

__all__ = [
    "init_mlp", "mlp",
    "mse", "sum_squared_error", "hinge_loss", "binary_cross_entropy",
    "softmax_cross_entropy", "l2",
    "accuracy", "argmax", "multiclass_accuracy",
    "save", "load",
]

Activation = Optional[Callable[[Any], Any]]


# ---------------------------------------------------------------------------
# The network.
# ---------------------------------------------------------------------------


def init_mlp(n_in: int, sizes: Sequence[int], seed: int = 0) -> tuple:
    """Random parameters for an MLP with ``n_in`` inputs and layers of ``sizes`` neurons.

    Weights are drawn uniformly from ``±sqrt(6 / (fan_in + fan_out))`` (Glorot's
    scaling, which keeps tanh units out of saturation at the start); biases
    start at zero. The same seed gives the same parameters.

    Returns:
        A tuple of layers; each layer a tuple of neurons; each neuron a
        ``(weights, bias)`` pair with ``weights`` a tuple of ``fan_in`` floats.

    >>> params = init_mlp(3, [4, 4, 1], seed=1)
    >>> [len(layer) for layer in params]
    [4, 4, 1]
    >>> weights, bias = params[2][0]
    >>> len(weights), bias
    (4, 0.0)
    >>> init_mlp(3, [4, 4, 1], seed=1) == params
    True
    """
    if not isinstance(n_in, int) or n_in < 1:
        raise ValueError(f"init_mlp: n_in must be a positive int, got {n_in!r}")
    sizes = list(sizes)
    if not sizes or not all(isinstance(s, int) and s >= 1 for s in sizes):
        raise ValueError(
            f"init_mlp: sizes must be a non-empty list of positive ints, got {sizes!r}"
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
    return tuple(layers)


def mlp(params: Sequence, x: Sequence[Any], activation: Activation = _p.tanh,
        final_activation: Activation = None) -> list:
    """Run the MLP ``params`` on one input ``x``; return the last layer's outputs as a list.

    Each neuron computes ``tg.dot(weights, inputs) + bias`` as one record on
    the tape (``tg.primitives.dense`` keeps the bias inside the dot record),
    however many inputs the neuron has. Hidden
    layers then apply ``activation``; the last layer applies
    ``final_activation``, or nothing (a linear output) when it is ``None``.
    Works on traced values and on plain floats alike.

    >>> import tapegrad as tg
    >>> params = ((((1.0, -1.0), 0.5),),)           # one layer, one neuron
    >>> mlp(params, (2.0, 3.0))                      # 2 - 3 + 0.5, linear
    [-0.5]
    >>> [round(v, 6) for v in mlp(params, (2.0, 3.0), final_activation=tg.tanh)]
    [-0.462117]
    """
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
    return x  # type: ignore[return-value]


# ---------------------------------------------------------------------------
# Losses. Each returns one scalar; sums are single tg.sum / tg.dot records.
# ---------------------------------------------------------------------------


def _pair(name: str, predictions: Sequence, targets: Sequence) -> int:
    n = len(predictions)
    if n != len(targets):
        raise ValueError(f"{name}: {n} predictions but {len(targets)} targets")
    if n == 0:
        raise ValueError(f"{name}: no predictions; the loss of an empty batch is undefined")
    return n


def sum_squared_error(predictions: Sequence[Any], targets: Sequence[Any]) -> Any:
    """The sum of ``(prediction - target) ** 2`` (the seed's loss).

    >>> sum_squared_error([1.0, 2.0], [0.0, 4.0])
    5.0
    """
    _pair("sum_squared_error", predictions, targets)
    errors = [p - t for p, t in zip(predictions, targets)]
    return _p.dot(errors, errors)


def mse(predictions: Sequence[Any], targets: Sequence[Any]) -> Any:
    """The mean of ``(prediction - target) ** 2``.

    >>> mse([1.0, 2.0], [0.0, 4.0])
    2.5
    """
    n = _pair("mse", predictions, targets)
    errors = [p - t for p, t in zip(predictions, targets)]
    return _p.dot(errors, errors) / n


def hinge_loss(scores: Sequence[Any], labels: Sequence[Any]) -> Any:
    """The max-margin loss: the mean of ``relu(1 - label * score)``, labels ±1.

    A sample costs nothing once it is on the right side with margin 1.

    >>> hinge_loss([2.0, 0.5, -1.0], [1, 1, 1])    # (0 + 0.5 + 2) / 3
    0.8333333333333334
    """
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
    ``-y log sigmoid(z) - (1 - y) log(1 - sigmoid(z))`` but never overflows.

    >>> round(binary_cross_entropy([0.0], [1]), 6)            # log 2
    0.693147
    >>> binary_cross_entropy([1000.0, -1000.0], [1, 0])
    0.0
    """
    n = _pair("binary_cross_entropy", logits, labels)
    for y in labels:
        if y != 0 and y != 1:
            raise ValueError(f"binary_cross_entropy: labels must be 0 or 1, got {y!r}")
    return _p.sum([_softplus(z) - z * y for z, y in zip(logits, labels)]) / n


def softmax_cross_entropy(logits: Sequence[Sequence[Any]], labels: Sequence[int]) -> Any:
    """The mean of ``-log softmax(row)[label]`` over rows of logits and integer class labels.

    Each row's log-sum-exp subtracts the row's largest logit first (held
    constant with ``tg.stop_gradient``), so huge logits do not overflow.

    >>> round(softmax_cross_entropy([[0.0, 0.0, 0.0]], [2]), 6)    # log 3
    1.098612
    >>> softmax_cross_entropy([[1000.0, 0.0], [0.0, 1000.0]], [0, 1])
    0.0
    """
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


def l2(params: Any) -> Any:
    """The sum of squares of every leaf of a pytree, as one ``tg.dot`` record.

    >>> l2(((1.0, 2.0), {"b": 3.0}))
    14.0
    """
    leaves = tree_leaves(params)
    return _p.dot(leaves, leaves)


# ---------------------------------------------------------------------------
# Reading the outputs.
# ---------------------------------------------------------------------------


def accuracy(scores: Sequence[Any], labels: Sequence[Any]) -> float:
    """The fraction of ±1 labels whose sign the scores get right (a score of 0 is wrong).

    >>> accuracy([0.3, -2.0, 0.1], [1, -1, -1])
    0.6666666666666666
    """
    n = _pair("accuracy", scores, labels)
    right = 0
    for s, y in zip(scores, labels):
        if (s > 0.0 and y > 0) or (s < 0.0 and y < 0):
            right += 1
    return right / n


def argmax(values: Sequence[Any]) -> int:
    """The index of the largest value (the first one, on ties).

    >>> argmax([0.1, 2.0, -1.0])
    1
    """
    return max(range(len(values)), key=lambda i: values[i])


def multiclass_accuracy(logits: Sequence[Sequence[Any]], labels: Sequence[int]) -> float:
    """The fraction of rows whose largest logit is at the row's label.

    >>> multiclass_accuracy([[0.1, 2.0], [3.0, 1.0]], [1, 1])
    0.5
    """
    n = _pair("multiclass_accuracy", logits, labels)
    return sum(argmax(row) == label for row, label in zip(logits, labels)) / n


# ---------------------------------------------------------------------------
# Saving and loading parameters as JSON.
# ---------------------------------------------------------------------------

FORMAT = "tapegrad-params"
VERSION = 1


def _encode(tree: Any, path: str) -> Any:
    """A JSON-ready form of a pytree: numbers bare, containers as one-key tagged objects."""
    cls = type(tree)
    if cls is float:
        if not math.isfinite(tree):
            raise ValueError(f"nn.save: the leaf {path} is {tree}; only finite numbers are saved")
        return tree
    if cls is int:
        return tree
    if tree is None:
        return None
    if cls is tuple:
        return {"tuple": [_encode(c, f"{path}[{i}]") for i, c in enumerate(tree)]}
    if cls is list:
        return {"list": [_encode(c, f"{path}[{i}]") for i, c in enumerate(tree)]}
    if cls is dict:
        items = []
        for key, value in tree.items():
            if type(key) is not str and type(key) is not int:
                raise TypeError(
                    f"nn.save: the dict at {path} has a key {key!r} of type "
                    f"{type(key).__name__}; only str and int keys can be saved"
                )
            items.append([key, _encode(value, f"{path}[{key!r}]")])
        return {"dict": items}
    hint = ""
    if cls is Tracer:
        hint = "; it is a traced value: save the parameters outside grad, not inside it"
    elif isinstance(tree, tuple):
        hint = "; convert named tuples to plain tuples or dicts before saving"
    raise TypeError(
        f"nn.save: the leaf {path} is {cls.__name__} {tree!r}, which cannot be "
        f"saved; leaves must be int or float and containers tuple, list, dict or None{hint}"
    )


def save(path: str | Path, params: Any) -> None:
    """Write a pytree of numbers to ``path`` as JSON; ``load`` restores it exactly.

    Tuples, lists, dicts (str or int keys) and ``None`` are kept apart by tagging
    each container, so nested tuples come back as tuples. The file starts with a
    format name and version. No pickle: loading a file never runs code.

    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "params.json")
    >>> tree = {"layers": ((1.0, 2), [3.5]), "step": None}
    >>> save(path, tree)
    >>> load(path) == tree and type(load(path)["layers"]) is tuple
    True
    """
    document = {"format": FORMAT, "version": VERSION, "params": _encode(params, "params")}
    Path(path).write_text(json.dumps(document, allow_nan=False) + "\n", encoding="utf-8")


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
            out = {}
            for item in body:
                if not (type(item) is list and len(item) == 2
                        and type(item[0]) in (str, int)):
                    raise ValueError(
                        f"nn.load: {source}: the dict at {path} has a malformed entry "
                        f"{item!r}; expected [key, value] with a str or int key"
                    )
                key, value = item
                out[key] = _decode(value, f"{path}[{key!r}]", source)
            return out
    if cls in (str, bool):
        raise ValueError(
            f"nn.load: {source}: the leaf {path} is {cls.__name__} {node!r}, not a number"
        )
    raise ValueError(
        f"nn.load: {source}: unexpected {json.dumps(node)[:60]} at {path}; expected a number, "
        'null, or a container tagged {"tuple": [...]}, {"list": [...]} or {"dict": [...]}'
    )


def load(path: str | Path, like: Any = None) -> Any:
    """Read parameters written by :func:`save`, with their exact nested structure.

    With ``like=``, the loaded parameters must have the same structure as that
    template (for instance ``init_mlp`` with the same sizes), or a ``ValueError``
    says how they differ.

    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "mlp.json")
    >>> params = init_mlp(2, [3, 1], seed=0)
    >>> save(path, params)
    >>> load(path, like=params) == params
    True
    """
    source = str(path)
    text = Path(path).read_text(encoding="utf-8")
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"nn.load: {source} is not valid JSON: {error}") from None
    if type(document) is not dict or document.get("format") != FORMAT:
        found = document.get("format") if type(document) is dict else type(document).__name__
        raise ValueError(
            f"nn.load: {source} is not a tapegrad parameter file: expected format "
            f"{FORMAT!r}, found {found!r}"
        )
    version = document.get("version")
    if version != VERSION:
        raise ValueError(
            f"nn.load: {source} has format version {version!r}; this tapegrad reads "
            f"version {VERSION}"
        )
    if "params" not in document:
        raise ValueError(f"nn.load: {source} has no 'params' entry")
    params = _decode(document["params"], "params", source)
    if like is not None:
        expected, found = tree_structure(like), tree_structure(params)
        if expected != found:
            raise ValueError(
                f"nn.load: {source} holds parameters of structure {found!r}, but the "
                f"template (like=) has structure {expected!r}"
            )
    return params
