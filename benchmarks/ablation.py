"""What each part of jit's code writer buys, on the moons MLP as generic scalar code.

Run: python benchmarks/ablation.py [path to an older tapegrad/jit.py to compare]

Times jit(value_and_grad) of the generic moons model with parts of the code writer
switched off (module constants), beside the plain-float forward, in one process:
names per record (no liveness), registers only, + fused expressions, + running sums,
+ pieces (the default). Each compiled function's result is checked against eager
value_and_grad to 1e-12 first. Ratios are medians over interleaved rounds.
"""

from __future__ import annotations

import importlib.util
import math
import re
import statistics
import sys
import time
from typing import Any, Callable

import bench

import tapegrad as tg
import tapegrad.jit  # noqa: F401  # the module, not the function tg.jit
from tapegrad import datasets, nn

jit_module = sys.modules["tapegrad.jit"]


def older_jit(path: str) -> Any:
    """Another version of tapegrad/jit.py, loaded as a module of the installed package."""
    spec = importlib.util.spec_from_file_location("tapegrad._jit_older", path)
    module = importlib.util.module_from_spec(spec)
    module.__package__ = "tapegrad"
    spec.loader.exec_module(module)
    return module


def main() -> None:
    X, y = datasets.make_moons(100, noise=0.1, seed=0)
    params = nn.init_mlp(2, [16, 16, 1], seed=1)
    xs, ys = [list(p) for p in X], [float(v) for v in y]
    plain_model = bench.fresh_models()["mse_generic"]

    def plain() -> Any:
        return plain_model(params, xs, ys, math.tanh, None)

    def loss_for() -> Callable:
        model = bench.fresh_models()["mse_generic"]
        return lambda p: model(p, xs, ys, tg.tanh, None)

    reference = tg.tree_leaves(tg.value_and_grad(loss_for())(params))
    settings = {
        "registers only": {"MAX_FUSED": 0, "RUN_TERMS": 10**9, "PIECE_WEIGHT": 10**9},
        "+ fused expressions": {"RUN_TERMS": 10**9, "PIECE_WEIGHT": 10**9},
        "+ running sums": {"PIECE_WEIGHT": 10**9},
        "+ pieces (default)": {},
        "default without running sums": {"RUN_TERMS": 10**9},
    }
    systems: list[tuple[str, Callable[[], Any], str]] = [("plain forward", plain, "")]
    if len(sys.argv) > 1:
        older = older_jit(sys.argv[1])
        fast = older.jit(tg.value_and_grad(loss_for()))
        start = time.process_time()
        fast(params)
        note = f"trace+compile {time.process_time() - start:.2f} s"
        systems.append(("before (a name per record)", lambda f=fast: f(params), note))
    defaults = {k: getattr(jit_module, k) for k in ("MAX_FUSED", "RUN_TERMS", "PIECE_WEIGHT")}
    for label, changes in settings.items():
        for k, v in {**defaults, **changes}.items():
            setattr(jit_module, k, v)
        fast = tg.jit(tg.value_and_grad(loss_for()))
        start = time.process_time()
        fast(params)
        seconds = time.process_time() - start
        source = fast.source(params)
        names = len(set(re.findall(r"\br\d+\b", source)))
        systems.append((label, lambda f=fast: f(params),
                        f"trace+compile {seconds:.2f} s, {source.count(chr(10))} lines, "
                        f"{names} registers"))
    for k, v in defaults.items():
        setattr(jit_module, k, v)
    for label, fn, _ in systems[1:]:
        worst = max(abs(a - b) for a, b in zip(reference, tg.tree_leaves(fn())))
        assert worst <= 1e-12, (label, worst)
    times: dict[str, list[float]] = {label: [] for label, _, _ in systems}
    for fn in (fn for _, fn, _ in systems):
        for _ in range(10):
            fn()
    for _ in range(7):  # interleaved rounds: each a median of 11 calls per system
        for label, fn, _ in systems:
            samples = []
            for _ in range(11):
                start = time.perf_counter()
                fn()
                samples.append(time.perf_counter() - start)
            times[label].append(statistics.median(samples))
    base = statistics.median(times["plain forward"])
    print("| jit of value_and_grad, generic moons MLP | median ms | / plain forward "
          "| spread over rounds | note |")
    print("|---|---:|---:|---:|---|")
    for label, _, note in systems:
        ratios = sorted(t / p for t, p in zip(times[label], times["plain forward"]))
        print(f"| {label} | {statistics.median(times[label]) * 1e3:.2f} "
              f"| {statistics.median(times[label]) / base:.2f}x "
              f"| {ratios[0]:.2f}-{ratios[-1]:.2f}x | {note} |")


if __name__ == "__main__":
    main()
