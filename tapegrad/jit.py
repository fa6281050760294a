"""jit: record a function once, turn its tape into straight-line Python, replay it fast.

``jit(f)`` traces ``f`` on its first call and writes the tape out as Python
source: one assignment per record, in tape order, compiled with ``compile()``.
Later calls with the same argument structure run that code on plain floats,
with no tracing at all. ``jit(grad(f))`` and ``jit(value_and_grad(f))`` work
because differentiating inside a trace records the reverse sweep on the outer
tape, so the generated code holds the forward pass and the reverse sweep.

Guards. Python control flow on traced values (``if x > 0``, ``max``, ``abs``,
``relu``'s kink) is decided once, at trace time. Every such comparison is
recorded as a guard, and the generated code checks each guard where it was
taken. When a guard fails (a branch would go the other way) the call is traced
again and the new variant cached beside the old one, instead of returning a
wrong answer.

Safety. Only numbers from the tape reach the generated source, written with
``repr`` of a float; user labels appear only in comments, stripped to safe
characters.
"""

from __future__ import annotations

import functools
import math
import re
import sys
from collections.abc import Sequence
from typing import Any, Callable

from .primitives import OPS, _namespace
from .pytree import (
    _DICT,
    _LIST,
    _NONE,
    _TUPLE,
    TreeDef,
    _build,
    _render,
    tree_flatten,
    tree_unflatten,
)
from .tape import CUSTOM, LEAF, NO_INPUT, SUM, Guard, Tape, active
from .transforms import _Traced

__all__ = ["jit", "Jitted"]

MAX_VARIANTS = 32


class _GuardFailed(Exception):
    """Raised by generated code when a recorded branch would go the other way."""


class _NotCompilable(Exception):
    """The tape holds a record the code generator cannot write out."""


def _const(v: Any) -> str:
    """A constant as source text: the repr of a float, never anything else."""
    v = float(v)
    if math.isfinite(v):
        return repr(v)
    if math.isnan(v):
        return "_NAN"
    return "_INF" if v > 0 else "(-_INF)"


_SAFE_LABEL = re.compile(r"[^A-Za-z0-9_.\- ]")


def _comment(label: str | None) -> str:
    if not label:
        return ""
    return "  # " + _SAFE_LABEL.sub("?", label)[:40]


def _operand(tape: Tape, j: int, constant: Any, var: Callable[[int], str]) -> str:
    return var(j) if j >= 0 else _const(constant)


def _expression(tape: Tape, k: int, var: Callable[[int], str], env: dict) -> str:
    """The expression computing record k from earlier variables."""
    info = OPS[tape.ops[k]]
    a, b = tape.a0[k], tape.a1[k]
    if info.kind == "array":  # NumPy code, written by the array primitive itself
        return info.source(tape.nary[-2 - a], var, env)
    if info.code == SUM:
        indices, constant = tape.nary[-2 - a]
        terms = [var(j) for j in indices]
        if constant:
            terms.append(_const(constant))
        return " + ".join(terms) if terms else "0.0"
    if info.kind == "dot":
        xi, yi, xv, yv, bi, bv, act, _ = tape.nary[-2 - a]
        xi = xi if xi is not None else (-1,) * len(xv)
        yi = yi if yi is not None else (-1,) * len(yv)
        terms = [_product(var(i) if i >= 0 else _const(x), var(j) if j >= 0 else _const(y))
                 for i, j, x, y in zip(xi, yi, xv, yv)]
        if bi >= 0:
            terms.append(var(bi))
        elif bv:
            terms.append(_const(bv))
        total = " + ".join(terms) if terms else "0.0"
        return OPS[act].primitive.on_floats.format(x=f"({total})") if act else total
    if info.code == CUSTOM:
        raise _NotCompilable("a custom_vjp function called directly inside jit")
    prim = info.primitive
    # A record a rule computed at a domain edge took the operation's IEEE value.
    template = prim.ieee if k in tape.ieee else prim.on_floats
    if info.kind == "nodiff":
        inputs, constants = tape.nary[-2 - a]
        names = [_operand(tape, j, c, var) for j, c in zip(inputs, constants)]
        return template.format(x=names[0], y=names[-1])
    return _template_call(template, info.kind, tape, a, b, tape.d1[k], var)


def _template_call(template: str, kind: str, tape: Tape, a: int, b: int, constant: Any,
                   var: Callable[[int], str]) -> str:
    """A primitive's template over its operands by operand pattern (unary, tt, tc, ct)."""
    if kind == "unary":
        return template.format(x=var(a))
    if kind == "tt":
        return template.format(x=var(a), y=var(b))
    if kind == "tc":
        return template.format(x=var(a), y=_const(constant))
    return template.format(x=_const(constant), y=var(a))


def _guard_lines(guard: Guard, var: Callable[[int], str]) -> list[str]:
    """Source lines re-checking a decision the trace took (raise _GuardFailed if it changed)."""
    operands = [var(j) if j >= 0 else _const(c) for j, c in zip(guard.inputs, guard.constants)]
    if guard.kind == "compare":
        test = f"{operands[0]} {guard.op} {operands[1]}"
        return [f"if {'not ' if guard.outcome else ''}({test}): raise _GuardFailed"]
    if guard.kind == "truth":  # bool() of a one-element traced array
        return [f"if {'not ' if guard.outcome else ''}bool({operands[0]}): raise _GuardFailed"]
    if guard.kind in ("isfinite", "isnan"):
        return [f"if {'not ' if guard.outcome else ''}_m.{guard.kind}({operands[0]}): "
                "raise _GuardFailed"]
    # "raises": user code caught this operation's domain error; it must raise again.
    prim = OPS[guard.op].primitive
    expr = prim.on_floats.format(x=operands[0], y=operands[-1])
    return ["try:", f"    {expr}", f"except {guard.outcome.__name__}:", "    pass",
            "else:", "    raise _GuardFailed"]


def _output_constant(value: Any, env: dict) -> str:
    """An output that does not depend on the inputs, as source text."""
    if type(value) is bool:
        return repr(value)  # a bool from a comparison: the guards keep it right
    if type(value) is float or type(value) is int:
        return _const(value)
    name = f"_O{len(env)}"
    env[name] = value
    return name


def _product(left: str, right: str) -> str:
    if left == "1.0":
        return right
    if right == "1.0":
        return left
    return f"{left} * {right}"


def _inputs_of(tape: Tape, k: int) -> list[int]:
    a, b = tape.a0[k], tape.a1[k]
    if b < NO_INPUT:
        info = OPS[tape.ops[k]]
        entry = tape.nary[-2 - a]
        if info.kind == "nodiff":
            return [j for j in entry[0] if j >= 0]
        if info.kind == "array":
            return info.operand_indices(entry)
        return [j for j, _ in info.nary_partials(entry)]
    return [j for j in (a, b) if j >= 0]


# Deeper than this, an output is rebuilt by tree_unflatten rather than written as
# nested literals (Python's parser refuses about 200 nested brackets).
_MAX_LITERAL_DEPTH = 50


def _output_expression(out_def: TreeDef, leaves: list[str], env: dict) -> str:
    """Source text that builds the output pytree directly from the output variables.

    Tuples, lists and dicts are written as literals; dict keys and what other
    containers need to be rebuilt are referenced from ``env`` by position, never
    written as code.
    """
    nodes = out_def._nodes
    if _nesting(nodes) > _MAX_LITERAL_DEPTH:
        env["_OUT_DEF"] = out_def
        return "_tree_unflatten(_OUT_DEF, [" + ", ".join(leaves) + "])"

    def parts(node: tuple) -> tuple[str, list[str], str]:
        kind, n, _, key = node
        if kind == _NONE:
            return "None", [], ""
        if kind == _TUPLE:
            return "(", [""] * n, ",)" if n == 1 else ")"
        if kind == _LIST:
            return "[", [""] * n, "]"
        slot = f"_S{len(env)}"
        env[slot] = key
        if kind == _DICT:
            return "{", [f"{slot}[{i}]: " for i in range(n)], "}"
        return f"_build({kind}, {slot}, [", [""] * n, "])"

    return _render(nodes, iter(leaves), parts)


def _nesting(nodes: tuple) -> int:
    """How deeply the containers of a structure are nested (a leaf alone: 0)."""
    deepest = 0
    remaining: list[int] = []  # children still to come, per open container
    for node in nodes:
        if node is not None:
            deepest = max(deepest, len(remaining) + 1)
            if not node[2]:
                remaining.append(node[1])
                continue
        while remaining:
            remaining[-1] -= 1
            if remaining[-1]:
                break
            remaining.pop()
    return deepest


def generate_source(tape: Tape, inputs: list[int], outputs: list[Any],
                    name: str = "compiled", result: str | None = None,
                    env: dict | None = None) -> str:
    """Straight-line Python source for a tape: inputs in, outputs out.

    ``inputs`` are the record indices of the leaves in argument order;
    ``outputs`` are record indices (int) or constants (anything else) per output
    leaf. Records that no output or guard depends on are left out. Objects the
    code needs (arrays, NumPy) are put in ``env`` and referred to by name.
    """
    env = {} if env is None else env
    n = len(tape)
    guards_at: dict[int, list] = {}
    for guard in tape.guards:
        guards_at.setdefault(guard.position, []).append(guard)
    # Live records: what the outputs and the guards need.
    live = bytearray(n)
    stack = [j for j in outputs if type(j) is int and j >= 0]
    for guard in tape.guards:
        stack += [j for j in guard.inputs if j >= 0]
    while stack:
        j = stack.pop()
        if not live[j]:
            live[j] = 1
            stack.extend(_inputs_of(tape, j))

    def var(j: int) -> str:
        return f"v{j}"

    lines = [f"def {name}(inputs):"]
    if inputs:
        lines.append("    (" + "".join(var(i) + ", " for i in inputs).rstrip(" ") + ") = inputs")
    for k in range(n + 1):
        for guard in guards_at.get(k, ()):
            lines += ["    " + line for line in _guard_lines(guard, var)]
        if k == n or not live[k] or tape.ops[k] == LEAF:
            continue
        lines.append(f"    {var(k)} = {_expression(tape, k, var, env)}"
                     f"{_comment(tape.names.get(k))}")
    outs = [var(j) if type(j) is int and j >= 0 else _output_constant(j, env) for j in outputs]
    if result is None:
        result = "(" + "".join(o + ", " for o in outs) + ")"
    lines.append("    return " + result)
    return "\n".join(lines) + "\n"


class _Variant:
    """One traced-and-compiled version of the function, valid while its guards hold."""

    def __init__(self, source: str, env: dict) -> None:
        self.source = source
        namespace = dict(_namespace)
        namespace.update(env)
        exec(compile(source, "<tapegrad.jit>", "exec"), namespace)  # our own generated text
        self.fn = namespace["compiled"]


_ENV = {"_GuardFailed": _GuardFailed, "_INF": math.inf, "_NAN": math.nan,
        "_build": _build, "_tree_unflatten": tree_unflatten}


class Jitted:
    """A function compiled from its tape; see :func:`jit`."""

    def __init__(self, f: Callable[..., Any], static_argnums: tuple[int, ...] = ()) -> None:
        functools.update_wrapper(self, f)
        self.f = f
        self.static_argnums = static_argnums
        self.variants: dict[Any, list[_Variant]] = {}
        self.traces = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if kwargs:
            return self.f(*args, **kwargs)  # only positional arguments are compiled
        key, leaves = self._key(args)
        if active() or key is None:
            # Inside another transform (tracers), or non-numeric leaves: run eagerly.
            return self.f(*args)
        selected = self._select(args, key, leaves)
        return self.f(*args) if selected is None else selected[1]

    def _key(self, args: tuple) -> tuple[Any, list]:
        """The cache key of a call, and the leaves the compiled code takes.

        The key holds the static arguments' values, the other arguments' structure
        and, for arrays, their shapes and dtypes (a new shape traces anew). It is
        ``None`` when a leaf is not something compiled code can take (not a number
        or numeric array): the call then runs eagerly.
        """
        statics = []
        for n in self.static_argnums:
            if n >= len(args):
                raise TypeError(f"jit: static_argnums names argument {n}, but the call has "
                                f"{len(args)} positional argument(s)")
            try:
                hash(args[n])
            except TypeError:
                raise TypeError(
                    f"jit: static argument {n} is a {type(args[n]).__name__}, which is not "
                    "hashable; static arguments are part of the cache key. Pass a hashable "
                    "value (a tuple instead of a list), or do not mark it static.") from None
            statics.append(args[n])
        dynamic = tuple(a for i, a in enumerate(args) if i not in self.static_argnums) if (
            statics) else args
        leaves, treedef = tree_flatten(dynamic)
        if set(map(type, leaves)) <= _NUMBER_TYPES:
            return (tuple(statics), treedef), leaves
        if not _all_numeric(leaves):
            return None, leaves
        arrays = tuple((leaf.shape, leaf.dtype.str) if hasattr(leaf, "dtype") else None
                       for leaf in leaves)
        return (tuple(statics), treedef, arrays), leaves

    def _select(self, args: tuple, key: Any, leaves: list) -> tuple[_Variant, Any] | None:
        """A variant whose guards hold for these arguments, and its result.

        Tries the cached variants, then traces a new one. ``None`` when ``f`` must
        run eagerly instead: too many variants, or a tape that cannot be compiled.
        """
        variants = self.variants.setdefault(key, [])
        for variant in variants:
            try:
                return variant, variant.fn(leaves)
            except _REPLAY_FAILURES:
                # A guard failed, or an operation raised where the trace's did not:
                # either way this variant does not describe this call.
                continue
        if len(variants) >= MAX_VARIANTS:
            return None
        try:
            variant = self._trace(args)
        except _NotCompilable:
            return None
        variants.append(variant)
        return variant, variant.fn(leaves)

    def _trace(self, args: tuple) -> _Variant:
        self.traces += 1
        dynamic = tuple(i for i in range(len(args)) if i not in self.static_argnums)
        call = _Traced(args, dynamic, "jit", guards=True, differentiable=False)
        tape, out_leaves, out_def, roots = call.finish(call.run(self.f, {}), "jit",
                                                       allow_bool=True)
        outputs: list[Any] = [root if root >= 0 else (
            float(leaf) if type(leaf) is int else leaf) for root, leaf in zip(roots, out_leaves)]
        inputs = [i for idx in call.leaf_indices for i in idx]
        env = dict(_ENV)
        names = [f"v{j}" if type(j) is int else _output_constant(j, env) for j in outputs]
        result = _output_expression(out_def, names, env)
        source = generate_source(tape, inputs, outputs, result=result, env=env)
        return _Variant(source, env)

    def source(self, *args: Any) -> str:
        """The generated Python source for calls shaped like ``args`` (traces if needed)."""
        key, leaves = self._key(args)
        selected = self._select(args, key, leaves) if key is not None else None
        if selected is None:
            raise ValueError("jit: these arguments are not run from compiled code (a "
                             "custom_vjp called directly, or too many variants)")
        return selected[0].source


_NUMBER_TYPES = {float, int}


def _all_numeric(leaves: list) -> bool:
    """Numbers, NumPy scalars and numeric arrays: what compiled code takes as inputs."""
    np = sys.modules.get("numpy")
    if np is None:
        return False
    for leaf in leaves:
        t = type(leaf)
        if t is float or t is int:
            continue
        if not isinstance(leaf, (np.ndarray, np.generic)) or leaf.dtype.kind not in "fiub":
            return False
    return True


_REPLAY_FAILURES = (_GuardFailed, ValueError, ZeroDivisionError, OverflowError)


def jit(f: Callable[..., Any], static_argnums: int | Sequence[int] = ()) -> Jitted:
    """Compile ``f`` from its tape into straight-line Python; re-trace when a guard fails.

    Works on any function of pytrees of numbers, including ``grad(f)`` and
    ``value_and_grad(f)``. Called inside another transform, with non-numeric
    leaves or with keyword arguments, it simply runs ``f``.

    ``static_argnums`` (as in JAX) names positional arguments that are passed to
    ``f`` as plain Python values and are part of the cache key: counts, sizes,
    flags, anything used as ``range(n)`` or an index. Each new value traces anew.

    >>> import tapegrad as tg
    >>> fast = jit(tg.grad(lambda x: x * x if x > 0 else -x))
    >>> fast(3.0), fast(-2.0)  # the branch flips: re-traced, not replayed wrongly
    (6.0, -1.0)
    >>> print(fast.source(3.0), end="")
    def compiled(inputs):
        (v0,) = inputs
        if not (v0 > 0.0): raise _GuardFailed
        v2 = v0 + v0
        return v2
    """
    nums = (static_argnums,) if isinstance(static_argnums, int) else tuple(static_argnums)
    if not all(isinstance(n, int) and n >= 0 for n in nums):
        raise ValueError(f"jit: static_argnums must be non-negative ints, got {static_argnums!r}")
    return Jitted(f, nums)

