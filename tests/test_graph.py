"""Tests for tapegrad.graph, the mutable-node autodiff engine kept as a teaching foil."""

from __future__ import annotations

import math
import re
import shutil
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tapegrad.graph import MLP, SGD, Layer, Module, Neuron, Value, draw_dot

FAST = settings(max_examples=40, deadline=None)
H = 1e-6


def floats(lo: float, hi: float) -> st.SearchStrategy[float]:
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False)


def central_difference(f, x: float) -> float:
    return (f(Value(x + H)).data - f(Value(x - H)).data) / (2 * H)


def analytic_grad(f, x: float) -> float:
    v = Value(x)
    f(v).backward()
    return v.grad


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-5)


def binary_grads_match(f, x: float, y: float) -> bool:
    """Check d f(x, y) / dx and / dy against central differences."""
    fx = lambda v: f(v, Value(y))
    fy = lambda v: f(Value(x), v)
    return close(analytic_grad(fx, x), central_difference(fx, x)) and close(
        analytic_grad(fy, y), central_difference(fy, y)
    )


def seed_graph(b_value: float = 6.8813735870195432):
    x1 = Value(2.0, label="x1")
    x2 = Value(0.0, label="x2")
    w1 = Value(-3.0, label="w1")
    w2 = Value(1.0, label="w2")
    b = Value(b_value, label="b")
    n = x1 * w1 + x2 * w2 + b
    o = n.tanh()
    o.label = "output"
    return o, (x1, x2, w1, w2, b)


# -- the seed example -------------------------------------------------------------------


def test_seed_example_gradients():
    """The seed neuron gives the hand-derived gradients: do/dn = 1 - tanh(n)^2 = 1/2."""
    o, (x1, x2, w1, w2, b) = seed_graph()
    o.backward()
    assert o.data == pytest.approx(1 / math.sqrt(2))
    assert o.grad == 1.0
    # o = tanh(x1*w1 + x2*w2 + b), so d/dx1 = w1/2, d/dw1 = x1/2, d/dx2 = w2/2, ...
    assert x1.grad == pytest.approx(-1.5)
    assert w1.grad == pytest.approx(1.0)
    assert x2.grad == pytest.approx(0.5)
    assert w2.grad == pytest.approx(0.0)
    assert b.grad == pytest.approx(0.5)


def test_seed_example_with_short_bias_runs():
    """The seed snippet with b = 6.88 runs as written and gives gradients near the textbook ones."""
    o, (x1, _, w1, _, b) = seed_graph(6.88)
    o.backward()
    assert o.data == pytest.approx(0.7071, abs=1e-3)
    assert x1.grad == pytest.approx(-1.5, abs=1e-2)
    assert w1.grad == pytest.approx(1.0, abs=1e-2)
    assert b.grad == pytest.approx(0.5, abs=1e-2)


def test_repr_rounds_and_shows_label():
    """Value's repr shows rounded data, the grad and the label."""
    o, _ = seed_graph()
    o.backward()
    assert repr(o) == "Value(data=0.7071, grad=1.0, label='output')"


# -- gradients against finite differences ---------------------------------------------

UNARY = {
    "tanh": (lambda v: v.tanh(), floats(-3, 3)),
    "exp": (lambda v: v.exp(), floats(-5, 5)),
    "log": (lambda v: v.log(), floats(0.1, 10)),
    "relu": (lambda v: v.relu(), floats(-5, 5).filter(lambda x: abs(x) > 1e-3)),
    "sigmoid": (lambda v: v.sigmoid(), floats(-10, 10)),
    "neg": (lambda v: -v, floats(-5, 5)),
    "square": (lambda v: v**2, floats(-5, 5)),
    "cube": (lambda v: v**3, floats(-3, 3)),
    "reciprocal": (lambda v: v**-1, floats(0.2, 5)),
    "sqrt": (lambda v: v**0.5, floats(0.2, 5)),
    "pow -1.5": (lambda v: v**-1.5, floats(0.2, 5)),
}


@pytest.mark.parametrize("name", list(UNARY))
def test_unary_gradients_match_finite_differences(name):
    """Each elementwise function's gradient agrees with a central finite difference."""
    f, xs = UNARY[name]

    @FAST
    @given(xs)
    def check(x):
        assert close(analytic_grad(f, x), central_difference(f, x))

    check()


BINARY = {
    "+": (lambda a, b: a + b, floats(-5, 5)),
    "-": (lambda a, b: a - b, floats(-5, 5)),
    "*": (lambda a, b: a * b, floats(-5, 5)),
    "/": (lambda a, b: a / b, floats(0.3, 5)),
}


@pytest.mark.parametrize("name", list(BINARY))
def test_binary_gradients_match_finite_differences(name):
    """Each binary operator's gradient with respect to both operands matches finite differences."""
    f, ys = BINARY[name]

    @FAST
    @given(floats(-5, 5), ys)
    def check(x, y):
        assert binary_grads_match(f, x, y)

    check()


@FAST
@given(floats(-2, 2), floats(-2, 2))
def test_composite_expression_with_shared_subterms(x, y):
    """A graph that reuses subexpressions (a diamond) gets correct gradients for both inputs."""

    def f(a: Value, b: Value) -> Value:
        c = a * b + 1.5
        return (c * c.tanh() + (c - a).sigmoid() * 2) / (1 + a**2)

    assert binary_grads_match(f, x, y)


# -- numbers on either side, accumulation ---------------------------------------------


@pytest.mark.parametrize(
    "expr, data, grad",
    [
        (lambda v: v + 2, 6.0, 1.0),
        (lambda v: 2 + v, 6.0, 1.0),
        (lambda v: v - 2, 2.0, 1.0),
        (lambda v: 2 - v, -2.0, -1.0),
        (lambda v: v * 3, 12.0, 3.0),
        (lambda v: 3 * v, 12.0, 3.0),
        (lambda v: v / 2, 2.0, 0.5),
        (lambda v: 2 / v, 0.5, -0.125),
        (lambda v: v**2, 16.0, 8.0),
    ],
)
def test_numbers_on_either_side(expr, data, grad):
    """Plain numbers work on the left or the right of every operator with the right gradient."""
    v = Value(4.0)
    out = expr(v)
    out.backward()
    assert out.data == pytest.approx(data)
    assert v.grad == pytest.approx(grad)


# -- what a Value accepts: real numbers, and nothing else -------------------------------

NOT_NUMBERS = [
    ("2", "str", "float(text)"),
    (b"2", "bytes", "float(text)"),
    (None, "None", "0.0"),
    (True, "bool", "pass 1.0"),
    (False, "bool", "pass 0.0"),
    (1 + 2j, "complex", "z.real"),
    ([1.0, 2.0], "list", "one Value per element"),
    ((1.0,), "tuple", "one Value per element"),
    ({"x": 1.0}, "dict", "one Value per element"),
    ({1.0}, "set", "one Value per element"),
    (Decimal("1.5"), "Decimal", "float(...)"),
    (object(), "object", "float(...)"),
]


@pytest.mark.parametrize(("data", "kind", "advice"), NOT_NUMBERS,
                         ids=[kind for _, kind, _ in NOT_NUMBERS])
def test_value_refuses_what_is_not_a_real_number(data, kind, advice):
    """Value(data) takes real numbers only: text, None, bool, complex, containers are refused.

    Value('2') used to be silently 2.0 and Value(None) failed inside float(); the TypeError
    now names the type and says what to pass.
    """
    with pytest.raises(TypeError) as caught:
        Value(data)
    message = str(caught.value)
    assert message.startswith("Value(data) needs a real number")
    assert f"not {kind}" in message and advice in message


def test_value_refuses_a_value_and_numpy_bool():
    """A Value is not data for another Value, and NumPy's bool is refused like Python's."""
    with pytest.raises(TypeError, match="not a Value; it is a node already"):
        Value(Value(1.0))
    numpy = pytest.importorskip("numpy")
    with pytest.raises(TypeError, match="bool is refused"):
        Value(numpy.bool_(True))
    with pytest.raises(TypeError, match="ndarray.*one Value per element"):
        Value(numpy.array([1.0, 2.0]))


def test_value_accepts_real_numbers_as_floats():
    """int, float, Fraction and NumPy's scalars (all numbers.Real) are stored as a float."""
    numpy = pytest.importorskip("numpy")
    for data in (3, 2.5, Fraction(1, 4), 2**70, numpy.float64(1.5), numpy.float32(0.5),
                 numpy.int64(-7), float("inf")):
        v = Value(data)
        assert type(v.data) is float and v.data == float(data), data
    assert math.isnan(Value(float("nan")).data)


def test_value_too_large_for_a_float_says_so():
    """An int beyond the float range is an OverflowError that says so, not a bare one."""
    with pytest.raises(OverflowError, match="too large for a float"):
        Value(10**400)


@FAST
@given(st.one_of(st.text(), st.none(), st.booleans(), st.complex_numbers(),
                 st.lists(st.floats()), st.dictionaries(st.text(), st.floats()), st.binary()))
def test_value_refuses_random_non_numbers(data):
    """Whatever non-number hypothesis invents, Value refuses it with a TypeError naming it."""
    with pytest.raises(TypeError, match="needs a real number"):
        Value(data)


@FAST
@given(st.one_of(st.integers(-(2**80), 2**80), st.floats(allow_nan=False)))
def test_value_keeps_random_real_numbers(data):
    """Every int and float that fits a float is kept exactly as float(data)."""
    assert Value(data).data == float(data)


@pytest.mark.parametrize("op", ["+", "-", "*", "/"])
def test_arithmetic_refuses_non_number_operands_on_either_side(op):
    """Value(1) + '2' and '2' + Value(1) (and - * /) are TypeErrors naming the operator."""
    apply = {"+": lambda a, b: a + b, "-": lambda a, b: a - b,
             "*": lambda a, b: a * b, "/": lambda a, b: a / b}[op]
    for bad in ("2", None, True, [1.0]):
        for left, right in ((Value(1.0), bad), (bad, Value(1.0))):
            with pytest.raises(TypeError, match=rf"^Value \{op}: the other operand needs a real"):
                apply(left, right)


def test_arithmetic_accepts_real_number_operands():
    """NumPy scalars and Fractions work as constants on either side, like int and float."""
    numpy = pytest.importorskip("numpy")
    x = Value(2.0)
    y = numpy.float64(3.0) * x + x * Fraction(1, 2) - numpy.int64(1)
    y.backward()
    assert y.data == pytest.approx(6.0) and x.grad == pytest.approx(3.5)
    assert (x ** numpy.float64(2.0))._op == (x ** 2)._op == "**2"  # the label, for draw_dot


def test_power_refuses_non_number_and_value_exponents():
    """** takes a real-number exponent; a bool, a string or a Value exponent is refused."""
    with pytest.raises(TypeError, match="exponent needs a real number.*not bool"):
        Value(2.0) ** True
    with pytest.raises(TypeError, match="exponent needs a real number.*not str"):
        Value(2.0) ** "2"
    for thunk in (lambda: Value(2.0) ** Value(3.0), lambda: 2.0 ** Value(3.0)):
        advice = re.escape("for a Value exponent y write (y * x.log()).exp()")
        with pytest.raises(TypeError, match="only a constant exponent.*" + advice):
            thunk()


def test_the_advice_for_a_value_exponent_works():
    """The advice in the ** refusal, (y * x.log()).exp(), is x ** y with the right gradients."""
    x, y = Value(2.0), Value(3.0)
    out = (y * x.log()).exp()
    out.backward()
    assert out.data == pytest.approx(8.0)
    assert x.grad == pytest.approx(3.0 * 2.0**2)  # y x^(y-1)
    assert y.grad == pytest.approx(8.0 * math.log(2.0))  # x^y ln x


def test_value_used_twice_accumulates():
    """A value feeding an operation twice receives both contributions (a + a gives grad 2)."""
    a = Value(3.0)
    (a + a).backward()
    assert a.grad == 2.0
    b = Value(3.0)
    (b * b).backward()
    assert b.grad == 6.0


def test_long_chain_backward_is_iterative_and_fast():
    """A 100,000-node chain back-propagates without RecursionError (its sort is iterative)."""
    x = Value(0.5, label="x")
    y = x
    for _ in range(100_000):
        y = y + 1.0
    y.backward()
    assert x.grad == 1.0


# -- modules and training --------------------------------------------------------------


def test_module_shapes_and_reprs():
    """Neuron, Layer and MLP expose the expected parameters and readable reprs."""
    assert len(Neuron(3, seed=0).parameters()) == 4
    assert repr(Neuron(3, nonlin=False, seed=0)) == "LinearNeuron(3)"
    layer = Layer(3, 4, seed=0)
    assert len(layer.parameters()) == 16 and len(layer([1, 2, 3])) == 4
    assert isinstance(Layer(3, 1, seed=0)([1, 2, 3]), Value)
    net = MLP(3, [4, 4, 1], seed=0)
    assert isinstance(net, Module) and len(net.parameters()) == 41
    assert repr(net) == "MLP(3 -> [4, 4, 1], 41 parameters)"
    with pytest.raises(ValueError):
        net([1.0, 2.0])


def test_seeded_construction_is_deterministic():
    """Two MLPs built with the same seed have identical weights."""
    a = [p.data for p in MLP(3, [4, 1], seed=7).parameters()]
    b = [p.data for p in MLP(3, [4, 1], seed=7).parameters()]
    assert a == b


def test_mlp_trains_on_four_samples():
    """An MLP(3, [4, 4, 1]) with SGD drives the squared error on the four-sample set below 0.01."""
    xs = [[2.0, 3.0, -1.0], [3.0, -1.0, 0.5], [0.5, 1.0, 1.0], [1.0, 1.0, -1.0]]
    ys = [1.0, -1.0, -1.0, 1.0]
    net = MLP(3, [4, 4, 1], seed=1)
    opt = SGD(net.parameters(), lr=0.05)
    loss = Value(math.inf)
    for _ in range(500):
        loss = sum(((net(x) - y) ** 2 for x, y in zip(xs, ys)), Value(0.0))
        if loss.data < 0.01:
            break
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.data < 0.01


def test_forgetting_zero_grad_doubles_gradients():
    """Calling backward twice without zeroing doubles every leaf gradient; zero_grad resets them."""
    o, leaves = seed_graph()
    o.backward()
    first = [v.grad for v in leaves]
    o.backward()
    assert [v.grad for v in leaves] == pytest.approx([2 * g for g in first])

    net = MLP(3, [4, 1], seed=0)
    net([1.0, 2.0, 3.0]).backward()
    assert any(p.grad != 0.0 for p in net.parameters())
    net.zero_grad()
    assert all(p.grad == 0.0 for p in net.parameters())


def test_sgd_step_moves_against_the_gradient():
    """SGD.step subtracts lr * grad and SGD.zero_grad clears the gradients."""
    w = Value(2.0)
    opt = SGD([w], lr=0.25)
    (w * w).backward()
    opt.step()
    assert w.data == pytest.approx(1.0)
    opt.zero_grad()
    assert w.grad == 0.0


# -- domain errors ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "thunk, exc, word",
    [
        (lambda: Value(0.0).log(), ValueError, "log"),
        (lambda: Value(-1.0).log(), ValueError, "log"),
        (lambda: Value(1.0) / 0, ZeroDivisionError, "division"),
        (lambda: 1 / Value(0.0), ZeroDivisionError, "division"),
        (lambda: Value(0.0) ** -1, ZeroDivisionError, "power"),
        (lambda: Value(-2.0) ** 0.5, ValueError, "power"),
    ],
)
def test_domain_errors(thunk, exc, word):
    """Out-of-domain inputs raise the exception type the math module would, naming the operation."""
    with pytest.raises(exc, match=word):
        thunk()


# -- drawing ---------------------------------------------------------------------------


def record_fields(label: str) -> list[str]:
    """Split a DOT record label like '{ a | b }' into unescaped fields, rejecting stray specials."""
    fields, current, depth, i = [], [], 0, 0
    while i < len(label):
        c = label[i]
        if c == "\\" and i + 1 < len(label):
            current.append(label[i + 1])
            i += 2
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
        elif c == "|":
            fields.append("".join(current).strip())
            current = []
        elif c in '<>"':
            raise AssertionError(f"unescaped {c!r} in record label {label!r}")
        else:
            current.append(c)
        i += 1
    assert depth == 0, f"unbalanced braces in {label!r}"
    return [*fields, "".join(current).strip()]


def test_draw_dot_shows_labels_data_and_grads():
    """draw_dot returns a Digraph whose source names each value with its data, grad and ops."""
    import graphviz

    o, _ = seed_graph()
    o.backward()
    dot = draw_dot(o)
    assert isinstance(dot, graphviz.Digraph)
    src = dot.source
    for text in ("output", "x1", "w2", "data 0.7071", "grad -1.5000", "grad 0.5000"):
        assert text in src
    for op in ('"+"', '"*"', "tanh"):
        assert f"label={op}" in src
    assert "rankdir=LR" in src


def test_draw_dot_limits_layout_effort():
    """The drawing caps Graphviz's network-simplex passes (nslimit): without it a value used by
    100 operations (x * y * y * ...) keeps dot busy for minutes; with it, a few seconds."""
    x, y = Value(1.0, label="x"), Value(1.0, label="y")
    for _ in range(100):
        x = x * y
    assert re.search(r"\bnslimit=2\b", draw_dot(x).source)


def test_draw_dot_escapes_nasty_labels():
    """Record metacharacters, quotes and backslashes in a label cannot break the DOT source."""
    nasty = 'a{b}|<c>"d\\'
    v = Value(1.25, label=nasty)
    src = draw_dot(v * 2).source
    labels = re.findall(r'label="((?:[^"\\]|\\.)*)"', src)
    records = [record_fields(lab) for lab in labels if lab.startswith("{")]
    assert [nasty, "data 1.2500", "grad 0.0000"] in records
    assert all(len(fields) == 3 for fields in records)


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz 'dot' binary is not installed")
def test_draw_dot_renders(tmp_path):
    """With Graphviz installed, the drawing renders to an SVG showing the escaped label verbatim."""
    o, _ = seed_graph()
    o.label = 'out{1}|<2>"'
    o.backward()
    path = draw_dot(o).render(tmp_path / "graph", cleanup=True)
    svg = Path(path).read_text(encoding="utf-8")
    assert path.endswith(".svg") and "out{1}|&lt;2&gt;&quot;" in svg
