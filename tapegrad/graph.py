"""Scalar autodiff on a graph of mutable nodes: the design tapegrad's tape replaces.

Offers :class:`Value` (a scalar that remembers how it was made), a tiny network
kit (:class:`Neuron`, :class:`Layer`, :class:`MLP`, :class:`SGD`) and
:func:`draw_dot` for Graphviz pictures. Every operation allocates a node that
holds its parents and a closure; ``backward`` walks the graph and writes
gradients into the nodes. Kept plain on purpose, and independent of tapegrad.
"""

from __future__ import annotations

import math
import numbers
import reprlib
from collections.abc import Iterable, Sequence
from random import Random
from typing import Any, Callable

__all__ = ["Value", "Module", "Neuron", "Layer", "MLP", "SGD", "topological_order", "draw_dot"]

class Value:
    """A scalar node: its value, its gradient and the operation that made it.

    ``data`` is a real number: an ``int``, a ``float`` or any other ``numbers.Real``
    (``numpy.float64``, ``fractions.Fraction``), stored as a float. Anything else,
    including ``bool``, text and ``None``, is a ``TypeError`` saying what to pass;
    the same holds for the plain operand of ``+ - * /`` and for a ``**`` exponent.

    >>> x = Value(3.0, label='x')
    >>> y = x ** 2 - 2 * x
    >>> y.backward()
    >>> y.data, x.grad
    (3.0, 4.0)
    """

    __slots__ = ("data", "grad", "label", "_prev", "_op", "_backward")

    def __init__(self, data: float, label: str = "", _children: tuple = (), _op: str = ""):
        self.data = _real(data, "Value(data)")
        self.grad = 0.0
        self.label = label
        self._prev: tuple[Value, ...] = tuple(_children)
        self._op = _op
        self._backward: Callable[[], None] = lambda: None

    def __repr__(self) -> str:
        data, grad = round(self.data, 4), round(self.grad, 4)
        return f"Value(data={data}, grad={grad}, label={self.label!r})"

    def _child(self, data: float, op: str, *local: tuple[Value, float]) -> Value:
        """A new node made from ``local``: (parent, d child / d parent) pairs."""
        out = Value(data, "", tuple(parent for parent, _ in local), op)

        def _backward() -> None:
            for parent, derivative in local:
                parent.grad += derivative * out.grad

        out._backward = _backward
        return out

    def __add__(self, other: Value | float) -> Value:
        o = _lift(other, "+")
        return self._child(self.data + o.data, "+", (self, 1.0), (o, 1.0))

    def __sub__(self, other: Value | float) -> Value:
        o = _lift(other, "-")
        return self._child(self.data - o.data, "-", (self, 1.0), (o, -1.0))

    def __mul__(self, other: Value | float) -> Value:
        o = _lift(other, "*")
        return self._child(self.data * o.data, "*", (self, o.data), (o, self.data))

    def __truediv__(self, other: Value | float) -> Value:
        o = _lift(other, "/")
        if o.data == 0.0:
            raise ZeroDivisionError("Value division: the divisor is zero")
        q = self.data / o.data
        return self._child(q, "/", (self, 1.0 / o.data), (o, -q / o.data))

    __radd__, __rmul__ = __add__, __mul__

    def __rsub__(self, other: float) -> Value:
        return _lift(other, "-") - self

    def __rtruediv__(self, other: float) -> Value:
        return _lift(other, "/") / self

    def __pow__(self, exponent: float) -> Value:
        if isinstance(exponent, Value):
            raise TypeError(_VALUE_EXPONENT)
        x, p = self.data, _real(exponent, "Value ** exponent")
        if x == 0.0 and p < 0:
            raise ZeroDivisionError("Value power: 0 raised to a negative exponent")
        if x < 0.0 and not p.is_integer():
            raise ValueError("Value power: negative base with a non-integer exponent")
        slope = 0.0 if p == 0 else math.inf if x == 0 and p < 1 else p * x ** (p - 1)
        return self._child(x**p, f"**{p:g}", (self, slope))  # "**2", also for 2.0 or a NumPy 2

    def __rpow__(self, base: float) -> Value:
        raise TypeError(_VALUE_EXPONENT)

    def __neg__(self) -> Value:
        return self._child(-self.data, "neg", (self, -1.0))

    def tanh(self) -> Value:
        t = math.tanh(self.data)
        return self._child(t, "tanh", (self, 1.0 - t * t))

    def exp(self) -> Value:
        e = math.exp(self.data)
        return self._child(e, "exp", (self, e))

    def log(self) -> Value:
        if self.data <= 0.0:
            raise ValueError(f"Value log: argument must be positive, got {self.data!r}")
        return self._child(math.log(self.data), "log", (self, 1.0 / self.data))

    def relu(self) -> Value:
        return self._child(max(self.data, 0.0), "relu", (self, float(self.data > 0)))

    def sigmoid(self) -> Value:
        x = self.data
        s = 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))
        return self._child(s, "sigmoid", (self, s * (1.0 - s)))

    def backward(self) -> None:
        """Fill in ``grad`` for every node this value depends on.

        Leaves accumulate (call ``zero_grad`` between steps); interior nodes
        are reset first, so they hold this pass's gradient only.
        """
        order = topological_order(self)
        for node in order:
            if node._prev:
                node.grad = 0.0
        self.grad = 1.0
        for node in reversed(order):
            node._backward()


_VALUE_EXPONENT = (
    "Value ** Value: the graph engine takes only a constant exponent, as in x ** 2; "
    "for a Value exponent y write (y * x.log()).exp(), which is x ** y for x > 0"
)


def _real(x: object, where: str) -> float:
    """``x`` as a float when it is a real number (bool excluded); else a TypeError saying why."""
    # Exact int and float first: the common case skips the slower abstract-class check.
    if type(x) not in (float, int) and (not isinstance(x, numbers.Real) or _is_bool(x)):
        shown = ("None" if x is None else "a Value" if isinstance(x, Value)
                 else f"{type(x).__name__} {reprlib.repr(x)}")
        raise TypeError(f"{where} needs a real number (int, float or another numbers.Real), "
                        f"not {shown}; {_advice(x)}")
    try:
        return float(x)  # type: ignore[arg-type]  # a numbers.Real, checked above
    except OverflowError:
        raise OverflowError(f"{where}: {reprlib.repr(x)} is too large for a float "
                            "(the largest is about 1.8e308)") from None


def _is_bool(x: object) -> bool:
    """Python's bool, or NumPy's (numpy.bool_), found by name: graph.py imports no NumPy."""
    return isinstance(x, bool) or type(x).__name__ in ("bool_", "bool")


def _advice(x: object) -> str:
    """What to pass instead of a value that is not a real number."""
    if _is_bool(x):
        return f"bool is refused to catch mistakes: pass {1.0 if x else 0.0} if you mean the number"
    if isinstance(x, Value):
        return "it is a node already: use it as it is"
    if isinstance(x, complex):
        return "the graph engine is real-valued: pass z.real or abs(z) if that is what you mean"
    if x is None:
        return "pass a number such as 0.0"
    if isinstance(x, (str, bytes)):
        return "convert text yourself, e.g. float(text), so a typo cannot pass unnoticed"
    if isinstance(x, Iterable):
        return "a Value holds one number: make one Value per element, e.g. [Value(v) for v in xs]"
    return "convert it with float(...) if it stands for a number"


def _lift(x: object, op: str) -> Value:
    """The other operand of ``op`` as a Value: itself, or a constant node for a real number."""
    if isinstance(x, Value):
        return x
    return Value(_real(x, f"Value {op}: the other operand"))


def topological_order(root: Value) -> list[Value]:
    """Every node reachable from ``root``, parents before children (iterative DFS).

    ``backward`` needs this order because the nodes only know their parents; a
    tape is already in this order, which is why its reverse sweep needs no sort.

    >>> x = Value(2.0, label='x'); y = (x * x).tanh()
    >>> [node._op or node.label for node in topological_order(y)]
    ['x', '*', 'tanh']
    """
    order: list[Value] = []
    seen: set[Value] = set()
    stack: list[tuple[Value, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        if finished:
            order.append(node)
        elif node not in seen:
            seen.add(node)
            stack.append((node, True))
            stack.extend((p, False) for p in node._prev if p not in seen)
    return order


class Module:
    """Something callable with parameters whose gradients can be cleared."""

    def parameters(self) -> list[Value]:
        return []

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad = 0.0

    def __call__(self, x: Any) -> Any:
        return self.forward(x)

    def forward(self, x: Any) -> Any:
        raise NotImplementedError


class Neuron(Module):
    """``tanh(w . x + b)``, or just ``w . x + b`` when ``nonlin`` is false.

    >>> round(Neuron(2, seed=0)([1.0, -1.0]).data, 4)
    0.1712
    """

    def __init__(self, n_in: int, nonlin: bool = True, rng: Random | None = None, seed: Any = None):
        rng = rng or Random(seed)
        self.w = [Value(rng.uniform(-1, 1), label=f"w{i}") for i in range(n_in)]
        self.b = Value(0.0, label="b")
        self.nonlin = nonlin

    def forward(self, x: Sequence[Value | float]) -> Value:
        if len(x) != len(self.w):
            raise ValueError(f"Neuron expects {len(self.w)} inputs, got {len(x)}")
        act = sum((wi * xi for wi, xi in zip(self.w, x)), self.b)
        return act.tanh() if self.nonlin else act

    def parameters(self) -> list[Value]:
        return [*self.w, self.b]

    def __repr__(self) -> str:
        return f"{'Tanh' if self.nonlin else 'Linear'}Neuron({len(self.w)})"


class Layer(Module):
    """``n_out`` neurons reading the same inputs; one output comes back unwrapped.

    >>> Layer(3, 2, seed=1)
    Layer(3 -> 2, tanh)
    """

    def __init__(self, n_in: int, n_out: int, **kw: Any):
        kw["rng"] = kw.get("rng") or Random(kw.pop("seed", None))
        self.neurons = [Neuron(n_in, **kw) for _ in range(n_out)]

    def forward(self, x: Sequence[Value | float]) -> Value | list[Value]:
        outs = [n(x) for n in self.neurons]
        return outs[0] if len(outs) == 1 else outs

    def parameters(self) -> list[Value]:
        return [p for n in self.neurons for p in n.parameters()]

    def __repr__(self) -> str:
        kind = "tanh" if self.neurons[0].nonlin else "linear"
        return f"Layer({len(self.neurons[0].w)} -> {len(self.neurons)}, {kind})"


class MLP(Module):
    """Tanh layers stacked, e.g. ``MLP(3, [4, 4, 1])``.

    >>> net = MLP(3, [4, 4, 1], seed=0); net
    MLP(3 -> [4, 4, 1], 41 parameters)
    >>> round(net([1.0, 2.0, 3.0]).data, 4)
    0.2332
    """

    def __init__(self, n_in: int, sizes: Sequence[int], seed: int | None = None):
        rng, dims = Random(seed), [n_in, *sizes]
        self.layers = [Layer(dims[i], dims[i + 1], rng=rng) for i in range(len(sizes))]

    def forward(self, x: Any) -> Value | list[Value]:
        for layer in self.layers:
            x = layer(x if isinstance(x, (list, tuple)) else [x])
        return x

    def parameters(self) -> list[Value]:
        return [p for layer in self.layers for p in layer.parameters()]

    def __repr__(self) -> str:
        n_in, sizes = len(self.layers[0].neurons[0].w), [len(ly.neurons) for ly in self.layers]
        return f"MLP({n_in} -> {sizes}, {len(self.parameters())} parameters)"


class SGD:
    """Plain gradient descent: ``p.data -= lr * p.grad``.

    >>> w = Value(1.0); opt = SGD([w], lr=0.1); (w * w).backward(); opt.step()
    >>> round(w.data, 4)
    0.8
    """

    def __init__(self, parameters: Iterable[Value], lr: float = 0.05):
        self.parameters, self.lr = list(parameters), lr

    def step(self) -> None:
        for p in self.parameters:
            p.data -= self.lr * p.grad

    def zero_grad(self) -> None:
        for p in self.parameters:
            p.grad = 0.0


_RECORD_SPECIALS = {c: "\\" + c for c in '\\{}|<>"'}


def _record_escape(text: str) -> str:
    """Backslash-escape characters that mean something inside a DOT record label."""
    return "".join(_RECORD_SPECIALS.get(c, c) for c in text).replace("\n", "\\n")


def draw_dot(root: Value, format: str = "svg", rankdir: str = "LR") -> Any:
    """Return a ``graphviz.Digraph`` of everything ``root`` depends on (not rendered).

    >>> a = Value(2.0, label='a'); b = (a * 3).tanh(); b.label = 'b'
    >>> 'tanh' in draw_dot(b).source
    True
    """
    import graphviz

    # nslimit caps the layout's network-simplex passes: small graphs come out the same, but a
    # value used by a hundred operations is laid out in seconds instead of many minutes.
    dot = graphviz.Digraph(format=format, graph_attr={"rankdir": rankdir, "nslimit": "2"})
    order = topological_order(root)
    uids = {node: f"n{i}" for i, node in enumerate(order)}  # stable names: same picture, same file
    for node in order:
        uid = uids[node]
        fields = f"{_record_escape(node.label)} | data {node.data:.4f} | grad {node.grad:.4f}"
        dot.node(uid, label=f"{{ {fields} }}", shape="record")
        if node._op:
            dot.node(uid + "_op", label=node._op, shape="circle")
            dot.edge(uid + "_op", uid)
            for parent in node._prev:
                dot.edge(uids[parent], uid + "_op")
    return dot
