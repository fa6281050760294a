"""A short tour of tapegrad's transforms and its tape: each one called once, printed.

Run:  .venv/bin/python examples/tour.py     (after make demo or make test made .venv)
"""

import tapegrad as tg


def f(x, y):
    return tg.tanh(x * y + y**2) / (1 + x)


print("f(0.5, 2.0)            =", f(0.5, 2.0))
print("grad(f)                =", tg.grad(f)(0.5, 2.0))
print("grad(f, argnums=(0,1)) =", tg.grad(f, argnums=(0, 1))(0.5, 2.0))
print("value_and_grad(f)      =", tg.value_and_grad(f)(0.5, 2.0))
print("grad(grad(tanh))(0.3)  =", tg.grad(tg.grad(tg.tanh))(0.3))
print("hessian                =",
      tg.hessian(lambda p: p["a"] ** 2 * tg.sin(p["b"]))({"a": 1.0, "b": 0.5}))
print("jvp                    =", tg.jvp(f, (0.5, 2.0), (1.0, 0.0)))
print("perturbation confusion =", tg.grad(lambda x: x * tg.grad(lambda y: x + y)(1.0))(1.0))
print("check_grad (rel. err.) =", tg.check_grad(f, 0.5, 2.0))
print()
print("The Wengert list of one call of f:")
print(tg.trace(f, names=("x", "y"))(0.5, 2.0))
