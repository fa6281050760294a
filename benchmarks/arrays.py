"""The array workloads of `make bench`: MLPs on NumPy arrays, float64, one BLAS thread.

Workloads (issue 9): the moons MLP vectorised (100x2, 2-16-16-1), a mid MLP
(512x64 -> 128 -> 128 -> 10) and a big one (2048x784 -> 512 -> 512 -> 10), each
with tanh hidden layers and a mean squared error.

Systems: the NumPy forward (the floor), a hand-written NumPy forward and backward
(the practical limit), tapegrad's eager `grad` and `jit(grad)`, and, when they are
installed, HIPS autograd, PyTorch eager (float64, one thread) and `jax.jit(jax.grad)`
(float64). Every system's gradient is checked against tapegrad's before it is timed.
bench.py sets the BLAS thread variables before NumPy is imported.
"""

from __future__ import annotations

import importlib
import statistics
import time
from typing import Any, Callable

import numpy as np

import tapegrad as tg
import tapegrad.numpy as tnp

WORKLOADS = [  # name, layer sizes, batch, repeats (full run)
    ("moons 100x2 2-16-16-1", [2, 16, 16, 1], 100, 400),
    ("mid 512x64-128-128-10", [64, 128, 128, 10], 512, 60),
    ("big 2048x784-512-512-10", [784, 512, 512, 10], 2048, 7),
]

INSTALL = {
    "autograd": "pip install autograd (or the bench extra)",
    "torch": "pip install torch (a CPU build)",
    "jax": "pip install jax",
}


def make(sizes: list[int], batch: int, seed: int = 0) -> tuple[list, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    params = [(rng.standard_normal((o, i)) / np.sqrt(i), rng.standard_normal(o) * 0.1)
              for i, o in zip(sizes[:-1], sizes[1:])]
    return params, rng.standard_normal((batch, sizes[0])), rng.standard_normal((batch, sizes[-1]))


def loss(params: list, X: Any, Y: Any, np_: Any = tnp) -> Any:
    """The model, written once against NumPy's names (tnp, numpy, autograd.numpy, jnp)."""
    h = X
    for W, b in params[:-1]:
        h = np_.tanh(h @ W.T + b)
    W, b = params[-1]
    out = h @ W.T + b
    return np_.mean((out - Y) ** 2)


def numpy_forward(params: list, X: np.ndarray, Y: np.ndarray) -> float:
    return loss(params, X, Y, np)


def numpy_backprop(params: list, X: np.ndarray, Y: np.ndarray) -> list:
    """The same gradient by hand: forward keeping the activations, then backward."""
    activations = [X]
    h = X
    for W, b in params[:-1]:
        h = np.tanh(h @ W.T + b)
        activations.append(h)
    W, b = params[-1]
    out = h @ W.T + b
    g = (out - Y) * (2.0 / out.size)
    grads = []
    for k in range(len(params) - 1, -1, -1):
        W, _ = params[k]
        a = activations[k]
        grads.append((g.T @ a, g.sum(axis=0)))
        if k:
            g = (g @ W) * (1.0 - a * a)
    return grads[::-1]


def optional(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def systems(params: list, X: np.ndarray, Y: np.ndarray) -> tuple[list, list[str]]:
    """(name, gradient function returning a list of (dW, db)) per system, and notes."""
    grad = tg.grad(loss)
    fast = tg.jit(tg.grad(loss))
    start = time.perf_counter()
    fast(params, X, Y)
    compile_seconds = time.perf_counter() - start
    out: list[tuple[str, Callable[[], Any], str]] = [
        ("numpy forward", lambda: numpy_forward(params, X, Y), ""),
        ("numpy by hand", lambda: numpy_backprop(params, X, Y), ""),
        ("tapegrad eager", lambda: grad(params, X, Y), ""),
        ("tapegrad jit", lambda: fast(params, X, Y), f"trace+compile {compile_seconds:.3f} s"),
    ]
    notes = []
    autograd = optional("autograd")
    if autograd is not None:
        import autograd.numpy as anp

        ag = autograd.grad(lambda p: loss(p, X, Y, anp))
        out.append(("autograd", lambda: ag(params), ""))
    else:
        notes.append(f"autograd: not installed ({INSTALL['autograd']})")
    torch = optional("torch")
    if torch is not None:
        torch.set_num_threads(1)
        tparams = [(torch.tensor(W, requires_grad=True), torch.tensor(b, requires_grad=True))
                   for W, b in params]
        tX, tY = torch.tensor(X), torch.tensor(Y)
        leaves = [t for pair in tparams for t in pair]

        def torch_grad() -> list:
            for t in leaves:
                t.grad = None
            loss(tparams, tX, tY, torch).backward()
            return [(W.grad.numpy(), b.grad.numpy()) for W, b in tparams]

        out.append(("pytorch eager", torch_grad, f"torch {torch.__version__}"))
    else:
        notes.append(f"pytorch: not installed ({INSTALL['torch']})")
    jax = optional("jax")
    if jax is not None:
        jax.config.update("jax_enable_x64", True)
        import jax.numpy as jnp

        jparams = [(jnp.asarray(W), jnp.asarray(b)) for W, b in params]
        jX, jY = jnp.asarray(X), jnp.asarray(Y)
        jgrad = jax.jit(jax.grad(lambda p: loss(p, jX, jY, jnp)))

        def jax_grad() -> list:
            grads = jgrad(jparams)
            jax.block_until_ready(grads)
            return grads

        out.append(("jax.jit", jax_grad, f"jax {jax.__version__}"))
    else:
        notes.append(f"jax.jit: not installed ({INSTALL['jax']})")
    return out, notes


def check(name: str, reference: list, other: list) -> None:
    """Every leaf of ``other`` equals tapegrad's to 1e-9 (relative to the largest entry)."""
    for r, o in zip(tg.tree_leaves(reference), tg.tree_leaves(other)):
        o = np.asarray(o)
        scale = max(1.0, float(np.max(np.abs(r))))
        worst = float(np.max(np.abs(r - o))) / scale
        if r.shape != o.shape or worst > 1e-9:
            raise SystemExit(f"{name}: gradient differs from tapegrad's by {worst:.3g} (> 1e-9)")


def median_seconds(fn: Callable[[], Any], repeats: int) -> float:
    fn()
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def rows(quick: bool) -> tuple[list[dict], list[str]]:
    """Time every system on every workload; one row per (workload, system)."""
    table: list[dict] = []
    notes: list[str] = []
    for label, sizes, batch, repeats in WORKLOADS:
        repeats = max(3, repeats // 10) if quick else repeats
        params, X, Y = make(sizes, batch)
        entries, missing = systems(params, X, Y)
        for note in missing:
            if note not in notes:
                notes.append(note)
        reference = tg.grad(loss)(params, X, Y)
        for name, fn, _ in entries[1:]:
            check(f"{label} {name}", reference, fn())
        records = len(tg.trace(loss, argnums=0)(params, X, Y)) - 2 * len(params)
        for name, fn, note in entries:
            table.append({"workload": label, "system": name, "seconds": median_seconds(fn, repeats),
                          "note": note, "records": records})
    return table, notes


def print_tables(table: list[dict]) -> None:
    print("| workload | system | median ms | / numpy forward | / numpy by hand | note |")
    print("|---|---|---:|---:|---:|---|")
    base = {(r["workload"], r["system"]): r["seconds"] for r in table}
    for r in table:
        forward = base[(r["workload"], "numpy forward")]
        hand = base[(r["workload"], "numpy by hand")]
        print(f"| {r['workload']} | {r['system']} | {r['seconds'] * 1e3:.3f} "
              f"| {r['seconds'] / forward:.2f}x | {r['seconds'] / hand:.2f}x | {r['note']} |")
    print()
    print("Where the time goes: tapegrad's time over the hand-written NumPy gradient, per "
          "record of the forward tape, beside NumPy's own time per call (the NumPy forward "
          "over the same records):")
    print()
    print("| workload | records | NumPy per call (us) | eager overhead per record (us) "
          "| jit overhead per record (us) |")
    print("|---|---:|---:|---:|---:|")
    for label, *_ in WORKLOADS:
        records = next(r["records"] for r in table if r["workload"] == label)
        forward, hand = base[(label, "numpy forward")], base[(label, "numpy by hand")]
        eager, fast = base[(label, "tapegrad eager")], base[(label, "tapegrad jit")]
        print(f"| {label} | {records} | {forward / records * 1e6:.2f} "
              f"| {(eager - hand) / records * 1e6:.2f} | {(fast - hand) / records * 1e6:.2f} |")
