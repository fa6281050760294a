"""Showing a tape: the Wengert list as text, its cost, and per-record rule checks.

This module only reads tapes. ``str(tape)`` uses :func:`format_forward`.
"""

from __future__ import annotations

import math
from typing import Any, Callable

from .errors import TapegradError
from .tape import OPS, Tape
from .tracer import Tracer

__all__ = ["format_forward", "format_stats", "describe_record", "check_records"]


def plain(v: Any) -> float:
    """The float inside a value, looking through tracers of outer traces."""
    while type(v) is Tracer:
        v = v._value
    return float(v)


def fmt(v: Any) -> str:
    """A number written compactly (6 significant digits)."""
    return f"{plain(v):.6g}"


def _operands(tape: Tape, k: int) -> tuple[list[str], list[str]]:
    """Names of the traced operands of record k, and its constants, as text."""
    rec = tape[k]
    names = [tape.name(j) for j in rec.inputs if j is not None]
    consts = [fmt(c) for c in rec.constants]
    return names, consts


def expression(tape: Tape, k: int) -> str:
    """The right-hand side of record k, e.g. ``%3 * 0.5`` or ``tanh(x1)``."""
    op = tape.ops[k]
    if op == 0:
        return "input"
    info = OPS[op]
    if info.kind == "dot":
        xi, yi, xv, yv = tape.nary[-2 - tape.a0[k]]
        side = lambda idx, vals: "[" + ", ".join(  # noqa: E731
            tape.name(j) if j >= 0 else fmt(v) for j, v in zip(idx, vals)) + "]"
        xi = xi or (-1,) * len(xv)
        yi = yi or (-1,) * len(yv)
        return f"dot({side(xi, xv)}, {side(yi, yv)})"
    names, consts = _operands(tape, k)
    if info.kind == "sum":
        const = plain(consts and float(consts[0]) or 0.0)
        return "sum(" + ", ".join(names + ([fmt(const)] if const else [])) + ")"
    if info.kind == "custom":
        fname = tape.nary[-2 - tape.a0[k]][2]
        return f"{fname}(" + ", ".join(names) + ")"
    return info.expression(names, consts)


def format_forward(tape: Tape) -> str:
    """The forward Wengert list: one line per record with its value."""
    lines = []
    for k in range(len(tape)):
        lhs = f"{tape.name(k)} = {expression(tape, k)}"
        lines.append(f"{lhs:<32} # {fmt(tape.values[k])}")
    return "\n".join(lines)


def describe_record(tape: Tape, k: int) -> str:
    """One record in words, with its inputs' values (for error messages)."""
    op = tape.ops[k]
    name = OPS[op].name if op else "input"
    rec = tape[k]
    inputs = ", ".join(f"{tape.name(j)} = {fmt(tape.values[j])}" for j in rec.inputs
                       if j is not None)
    return (f"{tape.name(k)} = {expression(tape, k)} (operation {name!r}, tape index {k}"
            + (f", inputs {inputs}" if inputs else "") + ")")


def format_stats(tape: Tape) -> str:
    """Records by operation, total, memory held, and sweep time against the forward."""
    from collections import Counter

    from .tape import column_bytes

    counts = Counter(OPS[o].name if o else "input" for o in tape.ops)
    held = len(tape.ops) + sum(column_bytes(c) for c in
                               (tape.values, tape.a0, tape.a1, tape.d0, tape.d1))
    lines = [f"records: {len(tape)}"]
    lines += [f"  {name:<14}{n:>10}" for name, n in counts.most_common()]
    per = held / max(1, len(tape))
    lines.append(f"bytes held: {held} ({per:.1f} per record, plus n-ary operands)")
    lines.append(f"forward (recording): {tape.record_seconds * 1e3:.3f} ms")
    back = tape.timings.get("backward")
    if back is not None:
        ratio = back / tape.record_seconds if tape.record_seconds else float("nan")
        lines.append(
            f"reverse sweep: {back * 1e3:.3f} ms = {ratio:.2f} x the forward; the cheap-gradient "
            "bound (Baur and Strassen 1983; Griewank and Walther, Evaluating Derivatives) says "
            "a gradient costs a small constant (at most about 4-5) times the function")
    else:
        lines.append("reverse sweep: not run yet")
    return "\n".join(lines)


class RuleMismatchError(TapegradError, AssertionError):
    """A record's stored partial derivative disagrees with finite differences."""


def _record_function(tape: Tape, k: int) -> tuple[list[float], Callable[[list[float]], float]]:
    """Record k as a float function of its traced operands' values."""
    info = OPS[tape.ops[k]]
    rec = tape[k]
    xs = [plain(tape.values[j]) for j in rec.inputs if j is not None]
    consts = [plain(c) for c in rec.constants]
    if info.kind == "sum":
        return xs, lambda v: math.fsum(v) + consts[0]
    if info.kind == "dot":
        xi, yi, xv, yv = tape.nary[-2 - tape.a0[k]]

        xi = xi or (-1,) * len(xv)
        yi = yi or (-1,) * len(yv)

        def dot_of(v: list[float]) -> float:
            it = iter(v)
            left = [next(it) if j >= 0 else plain(c) for j, c in zip(xi, xv)]
            right = [next(it) if j >= 0 else plain(c) for j, c in zip(yi, yv)]
            return math.fsum(a * b for a, b in zip(left, right))

        return xs, dot_of
    prim = info.primitive
    assert prim is not None
    from .primitives import _namespace

    env = dict(_namespace)
    template = prim.on_floats
    if info.kind == "unary":
        code = template.format(x="v[0]")
    elif info.kind == "tt":
        code = template.format(x="v[0]", y="v[1]")
    elif info.kind == "tc":
        code = template.format(x="v[0]", y=repr(consts[0]))
    else:
        code = template.format(x=repr(consts[0]), y="v[0]")
    fn = eval(compile(f"lambda v: {code}", "<rule check>", "eval"), env)  # our own template
    return xs, fn


def check_records(f: Callable[..., Any], *args: Any, argnums: Any = 0, eps: float = 1e-6,
                  tol: float = 1e-4) -> float:
    """Check every record's derivative rule against central differences at its inputs.

    Returns the largest relative error; raises :class:`RuleMismatchError` naming the
    first record (in tape order) whose partials disagree by more than ``tol``.
    """
    from .transforms import trace

    tape = trace(f, argnums=argnums)(*args)
    worst = 0.0
    for k in range(len(tape)):
        if tape.ops[k] == 0 or OPS[tape.ops[k]].kind == "custom":
            continue
        xs, fn = _record_function(tape, k)
        partials = [plain(d) for d in tape[k].partials]
        for p, (x, d) in enumerate(zip(xs, partials)):
            up = list(xs)
            down = list(xs)
            up[p] = x + eps
            down[p] = x - eps
            try:
                fd = (fn(up) - fn(down)) / (2 * eps)
            except (ValueError, ZeroDivisionError, OverflowError):
                continue  # at a domain edge the difference quotient does not exist
            if not (math.isfinite(fd) and math.isfinite(d)):
                continue
            err = abs(d - fd) / max(1.0, abs(d), abs(fd))
            if err > tol:
                raise RuleMismatchError(
                    f"the derivative rule of record {describe_record(tape, k)} disagrees with "
                    f"finite differences for operand {p}: the rule gives {d:.6g}, central "
                    f"differences give {fd:.6g} (relative error {err:.2g})"
                )
            worst = max(worst, err)
    return worst


