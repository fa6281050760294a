"""tapegrad against plain floats, micrograd, NumPy, autograd, PyTorch and JAX, in one run.

Run with `make bench` (installs the `bench` extra: micrograd 0.1.0, NumPy, HIPS
autograd; PyTorch and JAX are used when installed, and skipped with a note when
not). Every system's gradient is checked against tapegrad's before anything is
timed (scalar systems to 1e-9, jit to 1e-12; array systems to 1e-9). Times are
medians of several repeats; ratios are taken within this run only (timings on a
shared machine drift between runs, ratios much less).

Scalar workloads (the seed MLP, the moons MLP, chains of 10^3 to 10^6 steps):
  plain      the same model on plain floats, forward only: the floor
  micrograd  micrograd 0.1.0's Value (tanh added in its own closure style)
  eager      tapegrad tg.value_and_grad of generic scalar code (+, *, tg.tanh)
  eager-dot  tapegrad tg.value_and_grad of nn.mlp, which uses the fused dot
  jit        tapegrad tg.jit(tg.value_and_grad(...)) of the generic scalar code
  jit-dot    tapegrad tg.jit(tg.value_and_grad(...)) of the nn.mlp model
Columns: "/ plain" is this system's time over the plain forward's (lower is
better); "micrograd / this" is how many times faster than micrograd it is.

Array workloads (benchmarks/arrays.py): NumPy MLPs, float64, one BLAS thread.
"""

from __future__ import annotations

import os

# One BLAS thread for every system, set before NumPy (or anything using it) is imported.
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_variable] = "1"

import argparse  # noqa: E402
import gc  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import random  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402
import types  # noqa: E402
from typing import Any, Callable  # noqa: E402

import arrays  # noqa: E402  # benchmarks/arrays.py, beside this file

import tapegrad as tg  # noqa: E402
from tapegrad import datasets, nn  # noqa: E402

try:
    from micrograd.engine import Value as MGValue
except ImportError:  # the bench extra is not installed
    MGValue = None


# ---------------------------------------------------------------------------
# Models written once, as generic scalar code, for every number type.
# ---------------------------------------------------------------------------


def mg_tanh(v: Any) -> Any:
    """tanh for micrograd's Value, in micrograd's own style: a node with a closure."""
    t = math.tanh(v.data)
    out = MGValue(t, (v,), "tanh")

    def _backward() -> None:
        v.grad += (1 - t * t) * out.grad

    out._backward = _backward
    return out


def mlp_generic(params: Any, x: Any, act: Callable, final_act: Callable | None) -> list:
    """An MLP in plain scalar code: works on floats, micrograd Values and tracers."""
    for li, layer in enumerate(params):
        last = li == len(params) - 1
        outs = []
        for w, b in layer:
            s = b
            for wi, xi in zip(w, x):
                s = s + wi * xi
            if not last:
                s = act(s)
            elif final_act is not None:
                s = final_act(s)
            outs.append(s)
        x = outs
    return x


def sse_generic(params: Any, xs: list, ys: list, act: Callable, final: Callable | None) -> Any:
    total = 0.0
    for x, y in zip(xs, ys):
        d = mlp_generic(params, x, act, final)[0] - y
        total = total + d * d
    return total


def mse_generic(params: Any, xs: list, ys: list, act: Callable, final: Callable | None) -> Any:
    return sse_generic(params, xs, ys, act, final) * (1.0 / len(xs))


def fresh_models() -> dict[str, Callable]:
    """New copies of the three model functions, with code objects of their own."""
    namespace: dict[str, Any] = {"__builtins__": __builtins__}
    for fn in (mlp_generic, sse_generic, mse_generic, chain):
        namespace[fn.__name__] = types.FunctionType(fn.__code__.replace(), namespace,
                                                    fn.__name__)
    return namespace


def micrograd_value_and_grad(loss: Callable, params: Any) -> tuple[float, list]:
    """Wrap every parameter in a Value, run forward and backward, collect the grads."""
    leaves, treedef = tg.tree_flatten(params)
    values = [MGValue(p) for p in leaves]
    out = loss(tg.tree_unflatten(treedef, values))
    out.backward()
    return out.data, [v.grad for v in values]


# ---------------------------------------------------------------------------
# Timing.
# ---------------------------------------------------------------------------


def median_seconds(fn: Callable[[], Any], repeats: int, collector: bool) -> float:
    was = gc.isenabled()
    (gc.enable if collector else gc.disable)()
    try:
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return statistics.median(times)
    finally:
        (gc.enable if was else gc.disable)()


def agree(name: str, reference: list, other: list, tol: float = 1e-9) -> None:
    worst = max(abs(a - b) for a, b in zip(reference, other))
    if len(reference) != len(other) or worst > tol:
        raise SystemExit(f"{name}: gradient differs from tapegrad's by {worst:.3g} (> {tol})")


def model_rows(label: str, params: Any, xs: list, ys: list, final: Callable | None,
               loss_kind: str, repeats: int) -> list[dict]:
    """Time one MLP workload on every system; returns table rows."""
    # Each system runs its own copy of the model code: CPython specialises a code
    # object's operations for the types it sees, so sharing one copy between floats,
    # micrograd Values and tracers would make each system's timing depend on the others.
    name = "sse_generic" if loss_kind == "sse" else "mse_generic"
    generic, generic_tg, generic_mg = (fresh_models()[name] for _ in range(3))
    fused_loss = nn.sum_squared_error if loss_kind == "sse" else nn.mse
    final_tg = tg.tanh if final is math.tanh else None

    def plain() -> float:
        return generic(params, xs, ys, math.tanh, final)

    def eager_loss(p: Any) -> Any:
        return generic_tg(p, xs, ys, tg.tanh, final_tg)

    def dot_loss(p: Any) -> Any:
        return fused_loss([nn.mlp(p, x, final_activation=final_tg)[0] for x in xs], ys)

    generic_jit = fresh_models()[name]

    def jit_loss(p: Any) -> Any:
        return generic_jit(p, xs, ys, tg.tanh, final_tg)

    eager = tg.value_and_grad(eager_loss)
    eager_dot = tg.value_and_grad(dot_loss)
    jitted, jit_note = compiled(tg.value_and_grad(jit_loss), params)
    jitted_dot, jit_dot_note = compiled(tg.value_and_grad(dot_loss), params)

    reference = tg.tree_leaves(eager(params)[1])
    agree(f"{label} eager-dot", reference, tg.tree_leaves(eager_dot(params)[1]))
    agree(f"{label} jit", reference, tg.tree_leaves(jitted(params)[1]), tol=1e-12)
    agree(f"{label} jit-dot", reference, tg.tree_leaves(jitted_dot(params)[1]), tol=1e-12)
    systems: list[tuple[str, Callable[[], Any]]] = [("plain", plain)]
    if MGValue is not None:
        mg_final = mg_tanh if final is not None else None

        def mg() -> Any:
            return micrograd_value_and_grad(lambda p: generic_mg(p, xs, ys, mg_tanh, mg_final),
                                            params)

        agree(f"{label} micrograd", reference, mg()[1])
        systems.append(("micrograd", mg))
    systems += [("eager", lambda: eager(params)), ("eager-dot", lambda: eager_dot(params)),
                ("jit", lambda: jitted(params)), ("jit-dot", lambda: jitted_dot(params))]
    rows = []
    for name, fn in systems:
        # Warm up to steady state: CPython 3.11 specialises a function's bytecode
        # after its first 8 calls, which matters for jit's one big compiled function.
        for _ in range(2 if name == "micrograd" else 10):
            fn()
        rows.append({"workload": label, "system": name,
                     "on": median_seconds(fn, repeats, True),
                     "off": median_seconds(fn, repeats, False)})
    rows[-2]["note"] = jit_note
    rows[-1]["note"] = jit_dot_note
    return rows


def compiled(f: Callable, params: Any) -> tuple[Callable, str]:
    """tg.jit(f), traced and compiled by a first call; and a note of what that cost."""
    gc.collect()
    start = time.process_time()
    fast = tg.jit(f)
    fast(params)
    seconds = time.process_time() - start
    lines = fast.source(params).count("\n")
    return fast, f"trace+compile {seconds:.2f} s (CPU), {lines} lines"


def chain(y: Any, steps: int, tanh: Callable) -> Any:
    for _ in range(steps):
        y = tanh(y) * 0.5 + y * 0.5
    return y


def chain_rows(steps: int, repeats: int, micrograd_failed: bool) -> list[dict]:
    """y = tanh(y) * 0.5 + y * 0.5 repeated: cost per record as the tape grows."""
    label = f"chain 10^{round(math.log10(steps))}"
    gc.collect()
    plain_chain, tg_chain, mg_chain = (fresh_models()["chain"] for _ in range(3))
    rows = [{"workload": label, "system": "plain",
             "on": median_seconds(lambda: plain_chain(0.3, steps, math.tanh), repeats, True),
             "off": median_seconds(lambda: plain_chain(0.3, steps, math.tanh), repeats, False)}]
    grad_chain = tg.grad(lambda y: tg_chain(y, steps, tg.tanh))
    records = 4 * steps + 1
    on = median_seconds(lambda: grad_chain(0.3), repeats, True)
    off = median_seconds(lambda: grad_chain(0.3), repeats, False)
    rows.append({"workload": label, "system": "eager", "on": on, "off": off,
                 "note": f"{on / records * 1e9:.0f} ns per record (gc off: "
                         f"{off / records * 1e9:.0f})"})
    if MGValue is not None:
        failed = {"workload": label, "system": "micrograd", "on": None, "off": None,
                  "note": "fails: RecursionError in backward()"}
        if micrograd_failed:
            failed["note"] += " (as at the shorter chain; not retried)"
            rows.insert(1, failed)
            return rows

        def mg() -> float:
            x = MGValue(0.3)
            mg_chain(x, steps, mg_tanh).backward()
            return x.grad

        try:
            mg()
            rows.insert(1, {"workload": label, "system": "micrograd",
                            "on": median_seconds(mg, repeats, True),
                            "off": median_seconds(mg, repeats, False)})
        except RecursionError:
            rows.insert(1, failed)
    return rows


def memory_rows(steps: int) -> list[dict]:
    """tracemalloc peak per recorded operation on the chain, eager and under jit."""
    ops = 4 * steps
    rows = []
    gc.collect()
    tracemalloc.start()
    tg.grad(lambda y: chain(y, steps, tg.tanh))(0.3)
    eager_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    rows.append({"system": "tapegrad grad (forward + reverse sweep)", "bytes": eager_peak / ops})
    fast = tg.jit(tg.grad(lambda y: chain(y, steps, tg.tanh)))
    gc.collect()
    tracemalloc.start()
    fast(0.3)  # the first call: trace, write and compile
    held, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rows.append({"system": "tapegrad jit(grad), first call (trace + compile), peak",
                 "bytes": peak / ops, "note": f"{peak / eager_peak:.1f}x grad's peak"})
    rows.append({"system": "tapegrad jit(grad), compiled code held after it", "bytes": held / ops,
                 "note": f"{held / eager_peak:.1f}x grad's peak"})
    del fast
    gc.collect()
    tracemalloc.start()
    tape = tg.trace(lambda y: chain(y, steps, tg.tanh))(0.3)
    held = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    rows.append({"system": "tapegrad Tape held after trace (with adjoints)", "bytes": held / ops})
    del tape
    if MGValue is not None:
        gc.collect()
        tracemalloc.start()
        graph = chain(MGValue(0.3), steps, mg_tanh)
        held = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        rows.append({"system": "micrograd graph after forward (backward fails)",
                     "bytes": held / ops})
        del graph
    return rows


# ---------------------------------------------------------------------------
# Report.
# ---------------------------------------------------------------------------


def fmt_ms(seconds: float | None) -> str:
    return "fails" if seconds is None else f"{seconds * 1e3:.2f}"


def ratio(a: float | None, b: float | None) -> str:
    return "-" if a is None or b is None else f"{a / b:.1f}x"


def print_table(rows: list[dict]) -> None:
    print("| workload | system | median ms (gc on) | / plain | micrograd / this "
          "| median ms (gc off) | / plain (gc off) | note |")
    print("|---|---|---:|---:|---:|---:|---:|---|")
    base: dict[str, dict] = {}
    for row in rows:
        base.setdefault(row["workload"], {})[row["system"]] = row
    for row in rows:
        group = base[row["workload"]]
        plain, mg = group.get("plain"), group.get("micrograd")
        print(f"| {row['workload']} | {row['system']} | {fmt_ms(row['on'])} "
              f"| {ratio(row['on'], plain['on'])} "
              f"| {ratio(mg['on'], row['on']) if mg and row['system'] != 'plain' else '-'} "
              f"| {fmt_ms(row['off'])} "
              f"| {ratio(row['off'], plain['off'])} | {row.get('note', '')} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few repeats, chains to 10^4 only")
    parser.add_argument("--arrays", action="store_true", help="the array workloads only")
    parser.add_argument("--models", action="store_true",
                        help="the scalar MLP workloads only (no chains, memory or arrays)")
    args = parser.parse_args()
    if args.arrays:
        table, notes = arrays.rows(args.quick)
        arrays.print_tables(table)
        for note in notes:
            print(f"(skipped: {note})")
        return
    repeats = 3 if args.quick else 9
    print(f"# tapegrad benchmarks: {time.strftime('%Y-%m-%d')}, "
          f"Python {platform.python_version()}, {platform.machine()}, {platform.system()}")
    if MGValue is None:
        print("(micrograd is not installed: `pip install micrograd==0.1.0`; its rows are left out)")
    rows: list[dict] = []
    seed_params = nn.init_mlp(3, [4, 4, 1], seed=1)
    seed_x = [[2.0, 3.0, -1.0], [3.0, -1.0, 0.5], [0.5, 1.0, 1.0], [1.0, 1.0, -1.0]]
    seed_y = [1.0, -1.0, -1.0, 1.0]
    rows += model_rows("seed MLP 3-4-4-1", seed_params, seed_x, seed_y, math.tanh, "sse",
                       repeats * 10)
    X, y = datasets.make_moons(100, noise=0.1, seed=0)
    moons_params = nn.init_mlp(2, [16, 16, 1], seed=1)
    rows += model_rows("moons MLP 2-16-16-1", moons_params, [list(p) for p in X],
                       [float(v) for v in y], None, "mse", repeats)
    if args.models:
        print()
        print_table(rows)
        return
    micrograd_failed = False
    for steps in (10**3, 10**4) + (() if args.quick else (10**5, 10**6)):
        rows += chain_rows(steps, repeats if steps < 10**5 else 3, micrograd_failed)
        micrograd_failed = any(r["system"] == "micrograd" and r["on"] is None for r in rows)
    print()
    print_table(rows)
    print()
    steps = 10**4 if args.quick else 10**5
    print(f"Memory on the chain at {steps} steps ({4 * steps} operations), tracemalloc:")
    for row in memory_rows(steps):
        print(f"  {row['system']:<56} {row['bytes']:8.1f} bytes per operation  "
              f"{row.get('note', '')}")
    print()
    print("Array workloads: float64, one BLAS thread "
          f"(OPENBLAS_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']})")
    print()
    table, notes = arrays.rows(args.quick)
    arrays.print_tables(table)
    for note in notes:
        print(f"(skipped: {note})")


if __name__ == "__main__":
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 1000))
    random.seed(0)
    main()
