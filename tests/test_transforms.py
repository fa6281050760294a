"""The transforms: grad, value_and_grad, vjp, jvp, jacobians, hessian, custom_vjp, trace."""

from __future__ import annotations

import math
from typing import Any

import pytest
from conftest import FEW, SOME, central_diff, fd_close, floats, partial_diff
from hypothesis import given
from hypothesis import strategies as st

import tapegrad as tg


def f2(x: Any, y: Any) -> Any:
    """A two-argument test function with known partials."""
    return x * x * y + tg.sin(y)


# -- grad and value_and_grad ----------------------------------------------------------


def test_grad_single_argument_hand_derived() -> None:
    """grad(f) differentiates the first argument: d/dx (x^2 y + sin y) = 2xy."""
    assert tg.grad(f2)(3.0, 2.0) == 12.0


def test_grad_argnums_int_and_tuple() -> None:
    """argnums=1 gives one gradient; argnums=(0, 1) and (1, 0) give tuples in that order."""
    dy = 9.0 + math.cos(2.0)
    assert tg.grad(f2, argnums=1)(3.0, 2.0) == dy
    assert tg.grad(f2, argnums=(0, 1))(3.0, 2.0) == (12.0, dy)
    assert tg.grad(f2, argnums=(1, 0))(3.0, 2.0) == (dy, 12.0)
    single = tg.grad(f2, argnums=(1,))(3.0, 2.0)
    assert type(single) is tuple and single == (dy,)


def test_grad_negative_argnums() -> None:
    """Negative argnums count from the end, as Python indexing does."""
    dy = 9.0 + math.cos(2.0)
    assert tg.grad(f2, argnums=-1)(3.0, 2.0) == dy
    assert tg.grad(f2, argnums=(-2, -1))(3.0, 2.0) == (12.0, dy)


def test_value_and_grad_returns_value_and_gradient() -> None:
    """value_and_grad gives f's value (a float) and the gradient from one run."""
    value, g = tg.value_and_grad(f2)(3.0, 2.0)
    assert value == 18.0 + math.sin(2.0)
    assert g == 12.0
    value, (gx, gy) = tg.value_and_grad(f2, argnums=(0, -1))(3, 2)
    assert type(value) is float and type(gx) is float and type(gy) is float
    assert (gx, gy) == (12.0, 9.0 + math.cos(2.0))


def test_has_aux_returns_aux_as_plain_values() -> None:
    """With has_aux, grad returns (gradient, aux) and aux's traced values come out as floats."""

    def f(x: Any) -> Any:
        y = x * x
        return y * 3.0, {"square": y, "label": "ok", "n": 7}

    g, aux = tg.grad(f, has_aux=True)(2.0)
    assert g == 12.0
    assert aux == {"square": 4.0, "label": "ok", "n": 7}
    assert type(aux["square"]) is float
    (value, aux2), g2 = tg.value_and_grad(f, has_aux=True)(2.0)
    assert (value, aux2, g2) == (12.0, aux, 12.0)


def test_has_aux_with_tuple_argnums() -> None:
    """has_aux and argnums=(0, 1) combine: ((dx, dy), aux)."""
    grads, aux = tg.grad(lambda x, y: (x * y, [y - x]), argnums=(0, 1), has_aux=True)(2.0, 5.0)
    assert grads == (5.0, 2.0)
    assert aux == [3.0]


def test_kwargs_are_passed_through_and_not_differentiated() -> None:
    """Keyword arguments reach f unchanged and are treated as constants."""
    assert tg.grad(lambda x, scale=1.0: scale * x * x)(3.0, scale=2.0) == 12.0


def test_gradients_are_plain_floats_even_for_int_leaves() -> None:
    """Gradients are of type float for int leaves, unused leaves and constant outputs."""
    g = tg.grad(lambda p: p[0] * 2 + 1)((3, 4))
    assert g == (2.0, 0.0)
    assert [type(v) for v in g] == [float, float]
    g0 = tg.grad(lambda x: 5)(1)
    assert g0 == 0.0 and type(g0) is float
    g1 = tg.grad(lambda p: tg.dot(p, [2, 3]))([1, 1])
    assert g1 == [2.0, 3.0] and all(type(v) is float for v in g1)


@SOME
@given(x=floats(-2.0, 2.0), y=floats(0.2, 3.0))
def test_grad_matches_finite_differences_on_a_composite(x: float, y: float) -> None:
    """grad of a composite of several primitives agrees with central differences."""

    def f(a: Any, b: Any) -> Any:
        return tg.tanh(a * b) * tg.log(b) + tg.exp(a) / (1.0 + b**1.5) - tg.sigmoid(a - b)

    gx, gy = tg.grad(f, argnums=(0, 1))(x, y)
    scale = abs(f(x, y))
    assert fd_close(gx, partial_diff(f, (x, y), 0), scale)
    assert fd_close(gy, partial_diff(f, (x, y), 1), scale)


# -- debug_nans ------------------------------------------------------------------------


def test_debug_nans_names_the_record_with_infinite_adjoint() -> None:
    """sqrt at 0 gives an infinite adjoint; debug_nans raises NonFiniteError naming its record."""
    f = lambda x: tg.sqrt(x * x)
    with pytest.raises(tg.NonFiniteError, match=r"adjoint of record %1 is inf.*'mul'"):
        tg.grad(f, debug_nans=True)(0.0)


def test_debug_nans_names_the_record_with_nan_value() -> None:
    """A function producing nan raises NonFiniteError naming the first non-finite record."""
    f = lambda x: x * math.inf - x * math.inf
    with pytest.raises(tg.NonFiniteError, match=r"record %1 is inf"):
        tg.grad(f, debug_nans=True)(1.0)
    with pytest.raises(tg.NonFiniteError, match=r"value of record %2 is nan.*'add'"):
        tg.grad(lambda x: tg.sin(x) + math.nan, debug_nans=True)(1.0)


def test_debug_nans_is_a_floating_point_error_and_off_by_default() -> None:
    """NonFiniteError is a FloatingPointError; without debug_nans the inf is just returned."""
    assert issubclass(tg.NonFiniteError, FloatingPointError)
    assert tg.grad(tg.sqrt)(0.0) == math.inf
    with pytest.raises(FloatingPointError):
        tg.grad(tg.sqrt, debug_nans=True)(0.0)


def test_debug_nans_passes_finite_functions() -> None:
    """debug_nans does not change the gradient of a finite computation."""
    assert tg.grad(lambda x: x**3, debug_nans=True)(2.0) == 12.0


# -- vjp ----------------------------------------------------------------------------------


def test_vjp_pytree_output_and_repeated_calls() -> None:
    """vjp_fn takes a cotangent shaped like the output and can be called many times."""

    def f(x: Any, y: Any) -> Any:
        return {"prod": x * y, "pair": (x + y, x * x)}

    out, f_vjp = tg.vjp(f, 2.0, 3.0)
    assert out == {"prod": 6.0, "pair": (5.0, 4.0)}
    assert f_vjp({"prod": 1.0, "pair": (0.0, 0.0)}) == (3.0, 2.0)
    assert f_vjp({"prod": 0.0, "pair": (1.0, 0.0)}) == (1.0, 1.0)
    assert f_vjp({"prod": 0.0, "pair": (0.0, 1.0)}) == (4.0, 0.0)
    assert f_vjp({"prod": 2.0, "pair": (1, 1)}) == (11.0, 5.0)
    assert f_vjp({"prod": 1.0, "pair": (0.0, 0.0)}) == (3.0, 2.0)


def test_vjp_with_pytree_primal_and_constant_output_leaves() -> None:
    """vjp cotangents mirror pytree primals; constant outputs contribute nothing."""
    out, f_vjp = tg.vjp(lambda p: [p["a"] * 2.0, 7.0, p["b"]], {"a": 1.0, "b": 2.0})
    assert out == [2.0, 7.0, 2.0]
    (ct,) = f_vjp([1.0, 100.0, 10.0])
    assert ct == {"a": 2.0, "b": 10.0}


def test_vjp_has_aux() -> None:
    """vjp(has_aux=True) returns (out, vjp_fn, aux) with aux unwrapped."""
    out, f_vjp, aux = tg.vjp(lambda x: (x * x, {"x": x}), 3.0, has_aux=True)
    assert out == 9.0
    assert aux == {"x": 3.0} and type(aux["x"]) is float
    assert f_vjp(1.0) == (6.0,)


@pytest.mark.parametrize(
    "bad",
    [
        {"prod": 1.0},
        {"prod": 1.0, "pair": [1.0, 1.0]},
        {"prod": 1.0, "pair": (1.0, 1.0, 1.0)},
        (1.0, (1.0, 1.0)),
        1.0,
    ],
)
def test_vjp_cotangent_structure_mismatch_raises(bad: Any) -> None:
    """A cotangent not shaped like the output raises ValueError naming both structures."""
    _, f_vjp = tg.vjp(lambda x: {"prod": x, "pair": (x, x)}, 2.0)
    with pytest.raises(ValueError, match="cotangent has structure.*output of f has structure"):
        f_vjp(bad)


def test_vjp_cotangent_leaf_must_be_a_number() -> None:
    """A non-number cotangent leaf is a TypeError naming the leaf."""
    _, f_vjp = tg.vjp(lambda x: (x, x), 2.0)
    with pytest.raises(TypeError, match=r"vjp_fn.*cotangent.*str 'one'"):
        f_vjp((1.0, "one"))


# -- jvp ----------------------------------------------------------------------------------


def vec_f(a: Any, b: Any, c: Any) -> Any:
    """R^3 -> R^2 test function."""
    return (a * tg.sin(b) + c * c, tg.exp(a * 0.5) * b - tg.tanh(c))


@SOME
@given(
    x=st.tuples(floats(-2, 2), floats(-2, 2), floats(-2, 2)),
    v=st.tuples(floats(-1, 1), floats(-1, 1), floats(-1, 1)),
)
def test_jvp_matches_directional_finite_difference(x: tuple, v: tuple) -> None:
    """jvp's tangent output equals (f(x + h v) - f(x - h v)) / 2h."""
    out, tangent = tg.jvp(vec_f, x, v)
    assert out == vec_f(*x)
    for k in range(2):
        along = lambda s, k=k: vec_f(*(xi + s * vi for xi, vi in zip(x, v)))[k]
        assert fd_close(tangent[k], central_diff(along, 0.0), abs(out[k]))


@SOME
@given(
    x=st.tuples(floats(-2, 2), floats(-2, 2), floats(-2, 2)),
    v=st.tuples(floats(-1, 1), floats(-1, 1), floats(-1, 1)),
    u=st.tuples(floats(-1, 1), floats(-1, 1)),
)
def test_jvp_and_vjp_are_transposes(x: tuple, v: tuple, u: tuple) -> None:
    """<u, J v> from jvp equals <J^T u, v> from vjp."""
    _, jv = tg.jvp(vec_f, x, v)
    _, f_vjp = tg.vjp(vec_f, *x)
    jtu = f_vjp(u)
    lhs = sum(ui * ji for ui, ji in zip(u, jv))
    rhs = sum(ji * vi for ji, vi in zip(jtu, v))
    assert math.isclose(lhs, rhs, rel_tol=1e-12, abs_tol=1e-12)


def test_jvp_pytree_primals_and_outputs() -> None:
    """jvp accepts pytree primals/tangents and returns tangents shaped like the output."""
    out, tan = tg.jvp(lambda p: {"s": p["a"] * p["b"], "l": [p["a"], 3.0]},
                      ({"a": 2.0, "b": 5.0},), ({"a": 1.0, "b": 0.5},))
    assert out == {"s": 10.0, "l": [2.0, 3.0]}
    assert tan == {"s": 6.0, "l": [1.0, 0.0]}


def test_jvp_tangent_count_and_structure_errors() -> None:
    """jvp refuses a wrong number of tangents or a tangent not shaped like its primal."""
    with pytest.raises(ValueError, match="2 primal.*1 tangent"):
        tg.jvp(lambda x, y: x * y, (1.0, 2.0), (1.0,))
    with pytest.raises(ValueError, match="tangent 0 has structure"):
        tg.jvp(lambda p: p[0], ((1.0, 2.0),), ([1.0, 2.0],))


# -- jacobians and hessians ---------------------------------------------------------------


def test_jacrev_jacfwd_jacobian_agree_and_are_hand_derived() -> None:
    """jacrev, jacfwd and jacobian give the same Jacobian, rows in the output's structure."""
    f = lambda x, y: (x * y, x + 2.0 * y, tg.exp(x))
    expected = ((3.0, 2.0), (1.0, 2.0), (math.exp(2.0), 0.0))
    assert tg.jacrev(f, argnums=(0, 1))(2.0, 3.0) == expected
    assert tg.jacfwd(f, argnums=(0, 1))(2.0, 3.0) == expected
    assert tg.jacobian(f, argnums=(0, 1))(2.0, 3.0) == expected
    assert tg.jacobian is tg.jacrev


@FEW
@given(x=st.tuples(floats(-2, 2), floats(-2, 2), floats(-2, 2)))
def test_jacrev_equals_jacfwd_and_finite_differences(x: tuple) -> None:
    """Both Jacobian modes agree with each other and with finite differences."""
    f = lambda p: vec_f(*p)
    jr = tg.jacrev(f)(x)
    jf = tg.jacfwd(f)(x)
    for o in range(2):
        for i in range(3):
            assert math.isclose(jr[o][i], jf[o][i], rel_tol=1e-12, abs_tol=1e-12)
            fd = partial_diff(lambda *a, o=o: vec_f(*a)[o], x, i)
            assert fd_close(jr[o][i], fd, abs(vec_f(*x)[o]))


def test_jacobian_of_dict_to_dict() -> None:
    """A dict -> dict Jacobian is nested output-structure-over-input-structure."""
    f = lambda p: {"u": p["a"] * p["b"], "v": p["a"] - p["b"]}
    jac = tg.jacrev(f)({"a": 2.0, "b": 5.0})
    assert jac == {"u": {"a": 5.0, "b": 2.0}, "v": {"a": 1.0, "b": -1.0}}
    assert tg.jacfwd(f)({"a": 2.0, "b": 5.0}) == jac


def test_hessian_pytree_argument_hand_derived_and_symmetric() -> None:
    """hessian of a**2 sin(b) over a dict matches hand derivatives and is symmetric."""
    f = lambda p: p["a"] ** 2 * tg.sin(p["b"])
    a, b = 1.5, 0.5
    h = tg.hessian(f)({"a": a, "b": b})
    assert math.isclose(h["a"]["a"], 2.0 * math.sin(b), rel_tol=1e-14)
    assert math.isclose(h["a"]["b"], 2.0 * a * math.cos(b), rel_tol=1e-14)
    assert math.isclose(h["b"]["b"], -(a**2) * math.sin(b), rel_tol=1e-14)
    assert h["a"]["b"] == h["b"]["a"]


@FEW
@given(p=st.tuples(floats(-1.5, 1.5), floats(-1.5, 1.5), floats(0.3, 2.0)))
def test_hessian_is_symmetric_and_matches_finite_differences_of_grad(p: tuple) -> None:
    """Each Hessian entry equals the finite difference of the gradient; H is symmetric."""
    f = lambda q: q[0] * q[1] * q[2] + tg.tanh(q[0] * q[1]) + tg.log(q[2]) * q[0] ** 2
    h = tg.hessian(f)(p)
    for i in range(3):
        for j in range(3):
            assert math.isclose(h[i][j], h[j][i], rel_tol=1e-12, abs_tol=1e-12)
            gi = lambda *a, i=i: tg.grad(f)(a)[i]
            assert fd_close(h[i][j], partial_diff(gi, p, j), abs(tg.grad(f)(p)[i]))


def test_hessian_with_tuple_argnums() -> None:
    """hessian(f, argnums=(0, 1)) gives H[i][j] = d2f/dxi dxj for x*x*y."""
    assert tg.hessian(lambda x, y: x * x * y, argnums=(0, 1))(2.0, 3.0) == (
        (6.0, 4.0), (4.0, 0.0))


# -- stop_gradient ----------------------------------------------------------------------


def test_stop_gradient_blocks_derivatives_of_every_order() -> None:
    """stop_gradient(x) is a constant to grad, grad of grad, and jvp."""
    assert tg.grad(lambda x: tg.stop_gradient(x) * x)(3.0) == 3.0
    assert tg.grad(lambda x: tg.stop_gradient(x * x))(3.0) == 0.0
    assert tg.grad(tg.grad(lambda x: tg.stop_gradient(x) * x * x))(3.0) == 6.0
    assert tg.jvp(lambda x: tg.stop_gradient(x) + x, (2.0,), (1.0,)) == (4.0, 1.0)
    assert tg.stop_gradient(2) == 2.0


# -- custom_vjp -------------------------------------------------------------------------

BWD_CALLS: list = []


@tg.custom_vjp
def softplus(x: Any) -> Any:
    """log(1 + e^x), written to stay finite for large |x|."""
    return tg.relu(x) + tg.log(1.0 + tg.exp(-abs(x)))


def _softplus_fwd(x: Any) -> tuple:
    return softplus(x), x


def _softplus_bwd(x: Any, g: Any) -> tuple:
    BWD_CALLS.append(g)
    return (g * tg.sigmoid(x),)


softplus.defvjp(_softplus_fwd, _softplus_bwd)


@tg.custom_vjp
def scaled_identity(x: Any) -> Any:
    """x, but with a deliberately wrong gradient rule (3 times the true one)."""
    return x


scaled_identity.defvjp(lambda x: (x, None), lambda res, g: (3.0 * g,))


def test_custom_vjp_plain_call_uses_the_function() -> None:
    """Called on plain floats, a custom_vjp function just computes its value."""
    assert softplus(1000.0) == 1000.0
    assert math.isclose(softplus(2.0), math.log1p(math.exp(2.0)), rel_tol=1e-15)


@FEW
@given(x=floats(-30.0, 30.0))
def test_custom_vjp_softplus_gradient(x: float) -> None:
    """grad of the custom softplus is the sigmoid, computed by its bwd rule."""
    BWD_CALLS.clear()
    g = tg.grad(softplus)(x)
    assert len(BWD_CALLS) == 1 and BWD_CALLS[0] == 1.0
    assert math.isclose(g, 1.0 / (1.0 + math.exp(-x)), rel_tol=1e-12)


def test_custom_vjp_bwd_rule_is_really_used() -> None:
    """A deliberately scaled bwd rule shows up in grad (and the cotangent reaches bwd)."""
    assert tg.grad(lambda x: 5.0 * scaled_identity(x))(2.0) == 15.0
    assert tg.grad(lambda x: scaled_identity(x * x))(2.0) == 12.0
    assert tg.check_grad(lambda x: scaled_identity(x), 1.0) > 0.5


def test_custom_vjp_second_derivative_and_forward_mode() -> None:
    """A bwd written with tg operations supports grad(grad) and jvp."""
    x = 0.3
    s = 1.0 / (1.0 + math.exp(-x))
    assert math.isclose(tg.grad(tg.grad(softplus))(x), s * (1.0 - s), rel_tol=1e-12)
    out, tan = tg.jvp(softplus, (x,), (2.0,))
    assert math.isclose(out, math.log1p(math.exp(x)), rel_tol=1e-15)
    assert math.isclose(tan, 2.0 * s, rel_tol=1e-12)


def test_custom_vjp_records_one_named_record() -> None:
    """A custom_vjp call is a single record on the tape, printed with the function's name."""
    tape = tg.trace(softplus)(0.5)
    assert len(tape) == 2
    assert "softplus(" in str(tape)


def test_custom_vjp_two_arguments() -> None:
    """A custom rule over two arguments routes each cotangent to its argument."""

    @tg.custom_vjp
    def mul(a: Any, b: Any) -> Any:
        return a * b

    mul.defvjp(lambda a, b: (a * b, (a, b)), lambda res, g: (g * res[1], g * res[0]))
    assert tg.grad(lambda a, b: mul(a, b) + a, argnums=(0, 1))(2.0, 7.0) == (8.0, 2.0)
    assert tg.grad(lambda a: mul(a, 4.0))(2.0) == 4.0


# -- trace ----------------------------------------------------------------------------


def test_trace_length_records_and_printing() -> None:
    """trace returns a Tape: len, Record iteration, and one printed line per record."""
    tape = tg.trace(lambda x, y: tg.tanh(x * y + y**2) / (1 + x))(0.5, 2.0)
    assert len(tape) == 8
    records = list(tape)
    assert len(records) == 8
    assert all(isinstance(r, tg.Record) for r in records)
    assert [r.op for r in records] == ["input", "input", "mul", "pow", "add", "tanh", "add",
                                       "div"]
    assert records[2].inputs == (0, 1) and records[2].value == 1.0
    assert records[2].partials == (2.0, 0.5)
    assert records[6].inputs == (None, 0) and records[6].constants == (1.0,)
    text = str(tape)
    assert len(text.strip().splitlines()) == 8
    assert tape[-1] == records[-1]


def test_trace_names_label_the_inputs() -> None:
    """names= labels appear in the printed tape and on the input records."""
    tape = tg.trace(lambda x, y: x * y, names=("alpha", "beta"))(2.0, 3.0)
    lines = str(tape).splitlines()
    assert lines[0].startswith("alpha = input")
    assert lines[1].startswith("beta = input")
    assert "alpha * beta" in lines[2]
    assert tape[0].name == "alpha" and tape[1].name == "beta"


def test_trace_of_pytree_argument_and_argnums() -> None:
    """trace traces every leaf of every argument, or only the argnums given."""
    tape = tg.trace(lambda p, c: p["w"] * c + p["b"])({"w": 2.0, "b": 1.0}, 3.0)
    assert len(tape) == 5
    tape1 = tg.trace(lambda p, c: p["w"] * c + p["b"], argnums=0)({"w": 2.0, "b": 1.0}, 3.0)
    assert len(tape1) == 4


# -- check_grad ------------------------------------------------------------------------


def test_check_grad_small_for_correct_functions() -> None:
    """check_grad reports a tiny error for correct gradients, pytrees and argnums included."""
    assert tg.check_grad(lambda x: x**3, 2.0) < 1e-6
    assert tg.check_grad(lambda p: p["a"] * tg.sin(p["b"]), {"a": 1.0, "b": 2.0}) < 1e-6
    assert tg.check_grad(f2, 1.5, 0.5, argnums=(0, 1)) < 1e-6
    assert tg.check_grad(softplus, 0.7) < 1e-6
