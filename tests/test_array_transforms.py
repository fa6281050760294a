"""Every transform on array functions: higher order, Jacobians, jit, vjp, custom_vjp, checks."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from arraycheck import (
    EACH_FEW,
    assert_fd_close,
    assert_same,
    numeric_directional,
    numeric_gradient,
    weights,
)
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tapegrad as tg
import tapegrad.numpy as tnp

RNG = np.random.default_rng(5)
A = RNG.normal(size=(3, 3))
B = RNG.normal(size=(2, 3))


def energy(x: Any) -> Any:
    """A smooth scalar function of a vector, mixing matmul, tanh, log-sum-exp and sums."""
    return tnp.sum(tnp.tanh(A @ x) ** 2) + tnp.logsumexp(B @ x) + 0.1 * tnp.sum(x ** 3)


def energy_of_matrix(w: Any) -> Any:
    return tnp.sum(tnp.sigmoid(w @ A) * B) + tnp.sum(tnp.max(w, axis=1) ** 2)


VECTORS = hnp.arrays(np.float64, (3,), elements=st.floats(-1.5, 1.5))


# ---------------------------------------------------------------------------
# Higher order.
# ---------------------------------------------------------------------------


@EACH_FEW
@given(x=VECTORS)
def test_hessian_matches_differences_of_the_gradient(x: np.ndarray) -> None:
    h = tg.hessian(energy)(x)
    assert h.shape == (3, 3)
    gradient = tg.grad(energy)
    for i in range(3):
        column = numeric_directional(gradient, (x,), (0,), (np.eye(3)[i],), 1e-5)
        assert_fd_close(h[:, i], column, 100.0, f"hessian column {i}", 1e-5)
    np.testing.assert_allclose(h, h.T, rtol=1e-12, atol=1e-12)


def test_hessian_of_a_matrix_input_has_shape_in_plus_in() -> None:
    w = RNG.normal(size=(2, 3))
    h = tg.hessian(energy_of_matrix)(w)
    assert h.shape == (2, 3, 2, 3)
    gradient = tg.grad(energy_of_matrix)
    for e in range(w.size):
        unit = np.zeros_like(w)
        unit.flat[e] = 1.0
        numeric = numeric_directional(gradient, (w,), (0,), (unit,), 1e-5)
        assert_fd_close(h.reshape(6, 6)[:, e], numeric.reshape(6), 100.0, f"element {e}", 1e-5)


@EACH_FEW
@given(x=VECTORS, v=VECTORS)
def test_hessian_vector_product_is_jvp_of_grad(x: np.ndarray, v: np.ndarray) -> None:
    _, hvp = tg.jvp(tg.grad(energy), (x,), (v,))
    numeric = numeric_directional(tg.grad(energy), (x,), (0,), (v,), 1e-5)
    assert_fd_close(hvp, numeric, 100.0, "hvp", 1e-5)
    np.testing.assert_allclose(hvp, tg.hessian(energy)(x) @ v, rtol=1e-10, atol=1e-12)
    # reverse-over-reverse gives the same product: grad of <grad f(x), v>
    hvp_rev = tg.grad(lambda x: tnp.sum(tg.grad(energy)(x) * v))(x)
    np.testing.assert_allclose(hvp_rev, hvp, rtol=1e-10, atol=1e-12)


def test_grad_of_grad_of_scalar_valued_array_code() -> None:
    x = np.array([0.3, -0.7, 1.1])

    def f(a: Any) -> Any:  # a float parameter, array code inside
        return tnp.sum(tnp.tanh(a * x) * x)

    df = tg.grad(f)
    d2f = tg.grad(df)
    d3f = tg.grad(d2f)
    a = 0.8
    t = np.tanh(a * x)
    assert df(a) == pytest.approx(np.sum((1 - t ** 2) * x * x), rel=1e-13)
    assert d2f(a) == pytest.approx(np.sum(-2 * t * (1 - t ** 2) * x ** 3), rel=1e-12)
    numeric = (d2f(a + 1e-5) - d2f(a - 1e-5)) / 2e-5
    assert d3f(a) == pytest.approx(numeric, rel=1e-6)
    assert type(d3f(a)) is float


def test_jvp_with_pytrees_of_arrays() -> None:
    params = {"w": RNG.normal(size=(3, 2)), "b": np.zeros(2)}
    tangent = {"w": weights((3, 2)), "b": weights((2,), 1)}
    x = RNG.normal(size=(4, 3))

    def f(p: dict) -> Any:
        return tnp.tanh(x @ p["w"] + p["b"])

    value, t = tg.jvp(f, (params,), (tangent,))
    assert_same(value, np.tanh(x @ params["w"] + params["b"]), "jvp value")
    numeric = numeric_directional(lambda w, b: f({"w": w, "b": b}), (params["w"], params["b"]),
                                  (0, 1), (tangent["w"], tangent["b"]))
    assert_fd_close(t, numeric, 1.0, "jvp of a pytree")


# ---------------------------------------------------------------------------
# Jacobians.
# ---------------------------------------------------------------------------


@EACH_FEW
@given(x=VECTORS)
def test_jacfwd_equals_jacrev_on_array_functions(x: np.ndarray) -> None:
    def f(x: Any) -> Any:
        return tnp.concatenate([tnp.tanh(A @ x), x[::-1] * x])

    jf, jr = tg.jacfwd(f)(x), tg.jacrev(f)(x)
    assert jf.shape == (6, 3)
    np.testing.assert_allclose(jf, jr, rtol=1e-13, atol=1e-15)
    for i in range(3):
        numeric = numeric_directional(f, (x,), (0,), (np.eye(3)[i],))
        assert_fd_close(jf[:, i], numeric, 1.0, f"jacobian column {i}")
    assert_same(tg.jacobian(f)(x), jr, "jacobian is jacrev")


def test_jacobians_with_several_arguments_and_outputs() -> None:
    w, b = RNG.normal(size=(2, 3)), RNG.normal(size=(2,))
    x = RNG.normal(size=(3,))

    def f(w: Any, b: Any) -> Any:
        return {"out": tnp.tanh(w @ x + b), "norm": tnp.sum(w * w)}

    jf = tg.jacfwd(f, argnums=(0, 1))(w, b)
    jr = tg.jacrev(f, argnums=(0, 1))(w, b)
    assert jf["out"][0].shape == (2, 2, 3) and jf["out"][1].shape == (2, 2)
    assert jf["norm"][0].shape == (2, 3) and jf["norm"][1].shape == (2,)
    for key in ("out", "norm"):
        for a, b_ in zip(jf[key], jr[key]):
            np.testing.assert_allclose(a, b_, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(jr["norm"][0], 2 * w)
    d = 1 - np.tanh(w @ x + b) ** 2
    np.testing.assert_allclose(jr["out"][1], np.diag(d), rtol=1e-14)
    np.testing.assert_allclose(jr["out"][0], np.einsum("i,ij,k->ijk", d, np.eye(2), x),
                               rtol=1e-14, atol=1e-16)


def test_vjp_of_array_outputs_in_a_pytree() -> None:
    x = RNG.normal(size=(2, 3))
    out, vjp_fn = tg.vjp(lambda x: (x * 2.0, {"s": tnp.sum(x, axis=0)}), x)
    assert_same(out[0], 2 * x, "vjp value")
    ct = (weights((2, 3)), {"s": weights((3,), 2)})
    (g,) = vjp_fn(ct)
    np.testing.assert_allclose(g, 2 * ct[0] + ct[1]["s"][None, :], rtol=1e-15)
    # a number stands for an array full of it
    (g,) = vjp_fn((1.0, {"s": 0.0}))
    np.testing.assert_array_equal(g, np.full((2, 3), 2.0))
    with pytest.raises(ValueError, match=r"cotangent 1 has shape \(2,\).*shape \(3,\)"):
        vjp_fn((1.0, {"s": np.ones(2)}))


# ---------------------------------------------------------------------------
# jit.
# ---------------------------------------------------------------------------


def mlp(params: list, x: Any) -> Any:
    h = x
    for w, b in params[:-1]:
        h = tnp.tanh(h @ w.T + b)
    w, b = params[-1]
    return h @ w.T + b


def mlp_loss(params: list, x: Any, y: Any) -> Any:
    return tnp.mean((mlp(params, x) - y) ** 2)


def mlp_setup(n: int = 7, seed: int = 0) -> tuple:
    rng = np.random.default_rng(seed)
    params = [(rng.normal(size=(5, 2)), rng.normal(size=5)),
              (rng.normal(size=(5, 5)), rng.normal(size=5)),
              (rng.normal(size=(1, 5)), np.zeros(1))]
    return params, rng.normal(size=(n, 2)), rng.normal(size=(n, 1))


def test_jit_equals_eager_on_an_mlp_and_its_value_and_grad() -> None:
    params, x, y = mlp_setup()
    fast = tg.jit(mlp)
    assert_same(fast(params, x), mlp(params, x), "jit forward")
    fast_vg = tg.jit(tg.value_and_grad(mlp_loss))
    value, grads = fast_vg(params, x, y)
    value0, grads0 = tg.value_and_grad(mlp_loss)(params, x, y)
    assert_same(value, value0, "jit loss")
    for g, g0 in zip(tg.tree_leaves(grads), tg.tree_leaves(grads0)):
        assert_same(g, g0, "jit gradient")
        assert g.dtype == g0.dtype
    assert fast_vg.traces == 1
    # the compiled code is straight-line NumPy
    source = fast_vg.source(params, x, y)
    assert (" @ " in source or "_np.matmul" in source) and "_np.tanh" in source
    # new data of the same shapes: the same compiled code, still right
    params2, x2, y2 = mlp_setup(seed=1)
    value, grads = fast_vg(params2, x2, y2)
    value0, grads0 = tg.value_and_grad(mlp_loss)(params2, x2, y2)
    assert_same(value, value0, "jit loss, new data")
    for g, g0 in zip(tg.tree_leaves(grads), tg.tree_leaves(grads0)):
        assert_same(g, g0, "jit gradient, new data")
    assert fast_vg.traces == 1


def test_jit_retraces_on_a_new_shape_or_dtype() -> None:
    params, x, y = mlp_setup(n=7)
    fast = tg.jit(tg.grad(mlp_loss))
    fast(params, x, y)
    assert fast.traces == 1
    params, x, y = mlp_setup(n=4)  # another batch size
    grads = fast(params, x, y)
    assert fast.traces == 2
    for g, g0 in zip(tg.tree_leaves(grads), tg.tree_leaves(tg.grad(mlp_loss)(params, x, y))):
        assert_same(g, g0, "gradient after re-trace")
    fast(*mlp_setup(n=7, seed=3))
    assert fast.traces == 2  # the first shape's code is kept
    x32 = x.astype(np.float32)
    fast(params, x32, y)
    assert fast.traces == 3


def test_jit_retraces_when_a_branch_on_a_traced_array_flips() -> None:
    def f(x: Any) -> Any:
        if tnp.sum(x) > 0:
            return tnp.sum(x ** 2)
        return tnp.sum(-3.0 * x)

    fast = tg.jit(tg.value_and_grad(f))
    pos, neg = np.array([1.0, 2.0]), np.array([1.0, -4.0])
    v, g = fast(pos)
    assert float(v) == 5.0 and g.tolist() == [2.0, 4.0]
    v, g = fast(neg)
    assert float(v) == 9.0 and g.tolist() == [-3.0, -3.0]
    assert fast.traces == 2
    v, g = fast(np.array([0.5, 0.25]))  # the first branch's code, guarded
    assert float(v) == 0.3125 and g.tolist() == [1.0, 0.5]
    assert fast.traces == 2
    # element-wise branches without Python control flow compile once
    fast_where = tg.jit(tg.grad(lambda x: tnp.sum(tnp.where(x > 0, x ** 2, -x))))
    assert fast_where(neg).tolist() == [2.0, -1.0]
    assert fast_where(pos).tolist() == [2.0, 4.0]
    assert fast_where.traces == 1


def test_jit_with_integer_and_boolean_arguments_and_float32() -> None:
    logits = RNG.normal(size=(4, 3)).astype(np.float32)
    labels = np.array([0, 2, 1, 2])
    keep = np.array([True, True, False, True])

    def loss(z: Any, labels: Any, keep: Any) -> Any:
        picked = z[np.arange(4), labels]
        return tnp.sum(tnp.where(keep, tnp.logsumexp(z, axis=1) - picked, 0.0))

    fast = tg.jit(tg.value_and_grad(loss))
    v, g = fast(logits, labels, keep)
    v0, g0 = tg.value_and_grad(loss)(logits, labels, keep)
    assert g.dtype == np.float32 and g0.dtype == np.float32
    assert_same(v, v0, "value", 1e-6)
    assert_same(g, g0, "gradient", 1e-6)
    assert fast.traces == 1


# ---------------------------------------------------------------------------
# custom_vjp, stop_gradient and the checks on arrays.
# ---------------------------------------------------------------------------


@tg.custom_vjp
def clip_gradient(x: Any) -> Any:
    return x


clip_gradient.defvjp(lambda x: (x, None), lambda _, g: (tnp.clip(g, -1.0, 1.0),))


def test_custom_vjp_rule_is_used_on_arrays() -> None:
    x = np.array([0.5, -1.0, 2.0])
    w = np.array([5.0, 0.5, -3.0])
    g = tg.grad(lambda x: tnp.sum(clip_gradient(x * 2.0) * w))(x)
    np.testing.assert_array_equal(g, [2.0, 1.0, -2.0])  # clipped to [-1, 1], times 2
    fast = tg.jit(tg.grad(lambda x: tnp.sum(clip_gradient(x * 2.0) * w)))
    np.testing.assert_array_equal(fast(x), g)
    np.testing.assert_array_equal(tg.jit(lambda x: clip_gradient(x) * 2.0)(x), 2 * x)
    listing = str(tg.trace(lambda x: tnp.sum(clip_gradient(x)))(x))
    assert "%1 = custom_vjp(%0, name='clip_gradient')" in listing


def test_custom_vjp_on_arrays_at_higher_order_and_forward() -> None:
    @tg.custom_vjp
    def norm(x: Any) -> Any:
        return tnp.sqrt(tnp.sum(x * x))

    norm.defvjp(lambda x: (norm(x), x), lambda x, g: (g * x / tnp.sqrt(tnp.sum(x * x)),))
    x = np.array([0.6, -0.8, 1.2])
    r = np.linalg.norm(x)
    np.testing.assert_allclose(tg.grad(norm)(x), x / r, rtol=1e-15)
    value, tangent = tg.jvp(norm, (x,), (np.array([1.0, 0.0, 0.0]),))
    assert float(tangent) == pytest.approx(x[0] / r, rel=1e-15)
    expected = np.eye(3) / r - np.outer(x, x) / r ** 3
    np.testing.assert_allclose(tg.hessian(norm)(x), expected, rtol=1e-13)
    np.testing.assert_allclose(tg.jacfwd(tg.grad(norm))(x), expected, rtol=1e-13)


def test_custom_vjp_errors_on_arrays() -> None:
    @tg.custom_vjp
    def double(x: Any) -> Any:
        return 2.0 * x

    double.defvjp(lambda x: (2.0 * x, None), lambda _, g: (tnp.sum(g),))
    with pytest.raises(ValueError, match=r"bwd of 'double'.*shape \(\).*shape \(2,\)"):
        tg.grad(lambda x: tnp.sum(double(x)))(np.ones(2))

    def closes_over(x: Any) -> Any:
        @tg.custom_vjp
        def f(y: Any) -> Any:
            return y * 1.0

        f.defvjp(lambda y: (y * 1.0, None), lambda _, g: (g * x,))  # x: a traced array
        return tnp.sum(f(x * 2.0))

    with pytest.raises(tg.CustomVJPError, match="closes over"):
        tg.grad(closes_over)(np.ones(2))


def test_stop_gradient_on_arrays() -> None:
    x = np.array([1.0, 2.0])
    g = tg.grad(lambda x: tnp.sum(tnp.stop_gradient(x) * x))(x)
    np.testing.assert_array_equal(g, x)


def test_check_grad_and_per_record_checks_take_arrays() -> None:
    x = RNG.normal(size=3)
    assert tg.check_grad(energy, x) < 1e-6
    assert tg.check_grad(energy, x, per_record=True) < 1e-4
    assert tg.check_grad(lambda p: energy(p["x"]) * p["s"], {"x": x, "s": 2.0}) < 1e-6


def test_a_wrong_array_rule_is_caught_by_the_per_record_check() -> None:
    import attrs

    from tapegrad import arrays

    tanh = arrays.ARRAY_PRIMITIVES["tanh"]
    wrong = attrs.evolve(tanh, vjp=lambda g, out, x, needs: (g * out,))
    with pytest.raises(AssertionError, match="rule of record %1 = tanh"):
        tg.check_grad(lambda x: tnp.sum(arrays.bind(wrong, x)), np.ones(2), per_record=True)


def test_debug_nans_names_the_first_non_finite_array_element() -> None:
    with np.errstate(invalid="ignore"):
        with pytest.raises(tg.NonFiniteError, match=r"value of record %2 has nan at index \(1,\)"):
            tg.grad(lambda x: tnp.sum(tnp.log(x - 1.0)), debug_nans=True)(np.array([3.0, 0.0]))
    g = tg.grad(lambda x: tnp.sum(x ** 3), debug_nans=True)(np.array([1.0, 2.0]))
    assert g.tolist() == [3.0, 12.0]


def test_numeric_helpers_against_known_derivatives() -> None:
    x = np.array([0.5, -1.0])
    numeric = numeric_directional(np.sin, (x,), (0,), (np.ones(2),))
    assert_fd_close(np.cos(x), numeric, 1.0, "directional derivative of sin")
    numeric = numeric_gradient(lambda x: np.sum(x ** 3), (x,), 0)
    assert_fd_close(3 * x ** 2, numeric, 1.0, "gradient of x ** 3")
