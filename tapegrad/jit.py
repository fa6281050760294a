"""jit: record a function once, turn its tape into straight-line Python, replay it fast.

``jit(f)`` traces ``f`` on its first call and writes the tape out as Python
source, in tape order, compiled with ``compile()``. Later calls with the same
argument structure run that code on plain floats, with no tracing at all.
``jit(grad(f))`` and ``jit(value_and_grad(f))`` work because differentiating
inside a trace records the reverse sweep on the outer tape, so the generated
code holds the forward pass and the reverse sweep.

How the code is written (:func:`_plan`, :func:`write_pieces`). Records no output
depends on are left out. A value lives in a register (``r0``, ``r1``, ...) that
is handed to the next value once nothing reads it any more, so only live values
are held: a few hundred for an MLP whose tape has tens of thousands of records.
A record read once is written inside its reader's expression; a long sum or dot
is written a hundred terms a line and, when its terms are ready early (a
weight's gradient gets one per sample), added as they come. None of this changes
a float operation or the order of the additions: the results are eager code's.
A long tape becomes several functions of bounded size, so that ``compile()``
(whose memory grows with the function it is given) never sees a huge one. Each
line names the record it computes (``# %12``).

Guards. Python control flow on traced values (``if x > 0``, ``max``) is decided
once, at trace time. Every such comparison is recorded as a guard, and the
generated code checks each guard where it was taken. When a guard fails (a
branch would go the other way) the call is traced again and the new variant
cached beside the old one, instead of returning a wrong answer. Kinks inside
primitives (``relu``, ``abs``) are records, not guards: a relu network compiles
once.

Baked-in values. As in JAX, what ``f`` reads from outside its arguments (a
closed-over variable, a global, a data set) is read once, while tracing, and
compiled in as a constant. Pass what changes as an argument.

Safety. Only numbers from the tape reach the generated source, written with
``repr`` of a float; user labels appear only in comments, stripped to safe
characters.
"""

from __future__ import annotations

import functools
import math
import re
import sys
import zlib
from array import array
from collections.abc import Iterable, Iterator, Sequence
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
    leaf_reader,
    tree_flatten,
    tree_unflatten,
)
from .tape import CUSTOM, LEAF, NO_INPUT, SUM, Guard, Tape, active
from .transforms import _Traced

__all__ = ["jit", "Jitted"]

MAX_VARIANTS = 32
# A sum or dot is written at most this many terms a line: compile() recurses on a long
# expression (a few thousand terms raise RecursionError).
MAX_TERMS = 100
# A longer tape is compiled as several functions, each of about this many operands and
# operations: compile() needs up to about 1 kB for each while it works.
PIECE_WEIGHT = 50_000
# At most this many operations are fused into one expression.
MAX_FUSED = 12
# A long sum or dot adds its terms as they become ready, at least this many at a time.
RUN_TERMS = 8


class _NaNResult(Exception):
    """Compiled code got a NaN float: the call is answered by eager code instead."""


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


def _comment(k: int, label: str | None) -> str:
    """``# %k``, naming the record a line computes (and its label, made safe)."""
    if not label:
        return f"  # %{k}"
    return f"  # %{k} " + _SAFE_LABEL.sub("?", label)[:40]


def _operand(tape: Tape, j: int, constant: Any, var: Callable[[int], str]) -> str:
    return var(j) if j >= 0 else _const(constant)


def _expression(tape: Tape, k: int, var: Callable[[int], str], env: dict) -> str:
    """The expression computing record k from earlier variables (sums and dots: _terms)."""
    code = tape.ops[k]
    simple = _SIMPLE.get(code)
    if simple is not None and k not in tape.ieee:  # the common case, without the lookups
        kind, template = simple
        a = tape.a0[k]
        if kind == "unary":
            return _fill(template, var(a))
        if kind == "tt":
            return _fill(template, var(a), var(tape.a1[k]))
        if kind == "tc":
            return _fill(template, var(a), _const(tape.d1[k]))
        return _fill(template, _const(tape.d1[k]), var(a))
    info = OPS[code]
    if info.kind in ("unary", "tt", "tc", "ct"):
        _SIMPLE[code] = (info.kind, info.primitive.on_floats)
    a, b = tape.a0[k], tape.a1[k]
    if info.kind == "array":  # NumPy code, written by the array primitive itself
        return info.source(tape.nary[-2 - a], var, env)
    if info.code == CUSTOM:
        raise _NotCompilable("a custom_vjp function called directly inside jit")
    prim = info.primitive
    # A record a rule computed at a domain edge took the operation's IEEE value.
    template = prim.ieee if k in tape.ieee else prim.on_floats
    if info.kind == "nodiff":
        inputs, constants = tape.nary[-2 - a]
        names = [_operand(tape, j, c, var) for j, c in zip(inputs, constants)]
        return _fill(template, names[0], names[-1])
    return _template_call(template, info.kind, tape, a, b, tape.d1[k], var)


_SIMPLE: dict[int, tuple[str, str]] = {}  # code -> (operand pattern, float template)


def _term_count(tape: Tape, k: int) -> int:
    """How many terms a sum or dot record adds (its constant or bias included)."""
    entry = tape.nary[-2 - tape.a0[k]]
    if OPS[tape.ops[k]].code == SUM:
        return len(entry[0]) + (1 if entry[1] else 0)
    return len(entry[2]) + (1 if entry[4] >= 0 or entry[5] else 0)


def _term_reads(tape: Tape, k: int, start: int, stop: int) -> list[list[int]]:
    """Per term of a sum or dot record, in ``range(start, stop)``, the records it reads."""
    entry = tape.nary[-2 - tape.a0[k]]
    if OPS[tape.ops[k]].code == SUM:
        indices = entry[0]
        return [[indices[i]] if i < len(indices) else [] for i in range(start, stop)]
    xi, yi, xv, _, bi = entry[:5]
    out = []
    for i in range(start, stop):
        if i == len(xv):  # the bias
            out.append([bi] if bi >= 0 else [])
            continue
        pair = []
        if xi is not None and xi[i] >= 0:
            pair.append(xi[i])
        if yi is not None and yi[i] >= 0:
            pair.append(yi[i])
        out.append(pair)
    return out


def _terms(tape: Tape, k: int, var: Callable[[int], str], start: int = 0,
           stop: int | None = None) -> tuple[list[str], str]:
    """Terms ``start`` to ``stop`` of a sum or dot record, as eager code adds them left to
    right, and the template of an activation fused into it ("" if none)."""
    entry = tape.nary[-2 - tape.a0[k]]
    stop = _term_count(tape, k) if stop is None else stop
    if OPS[tape.ops[k]].code == SUM:
        indices, constant = entry
        return [var(indices[i]) if i < len(indices) else _const(constant)
                for i in range(start, stop)], ""
    xi, yi, xv, yv, bi, bv, act, _ = entry
    terms = []
    for i in range(start, stop):
        if i == len(xv):
            terms.append(var(bi) if bi >= 0 else _const(bv))
            continue
        left = var(xi[i]) if xi is not None and xi[i] >= 0 else _const(xv[i])
        right = var(yi[i]) if yi is not None and yi[i] >= 0 else _const(yv[i])
        terms.append(_product(left, right))
    return terms, (OPS[act].primitive.on_floats if act else "")


def _sum_lines(target: str, acc: str, terms: list[str], activation: str,
               continuing: bool = False) -> list[str]:
    """``target = t1 + t2 + ...`` over as many lines as it takes to keep each expression
    short (compile() recurses on long ones). Each line after the first adds to the
    partial sum ``acc`` (``continuing``: the first too), so the additions happen left
    to right, as in eager code (``builtins.sum``)."""
    if not terms:
        terms = [] if continuing else ["0.0"]
    lines = []
    for start in range(0, max(len(terms), 1), MAX_TERMS):
        chunk = terms[start:start + MAX_TERMS]
        if continuing or start > 0:
            total = " + ".join([acc] + chunk)
        else:
            total = " + ".join(chunk)
        if activation and start + MAX_TERMS >= len(terms):
            total = _fill(activation, f"({total})" if " " in total else total)
        lines.append(f"{target} = {total}")
    return lines


def _template_call(template: str, kind: str, tape: Tape, a: int, b: int, constant: Any,
                   var: Callable[[int], str]) -> str:
    """A primitive's template over its operands by operand pattern (unary, tt, tc, ct)."""
    if kind == "unary":
        return _fill(template, var(a))
    if kind == "tt":
        return _fill(template, var(a), var(b))
    if kind == "tc":
        return _fill(template, var(a), _const(constant))
    return _fill(template, _const(constant), var(a))


def _fill(template: str, x: str, y: str = "") -> str:
    """``template`` with its operands put in; a parenthesised operand loses its
    parentheses where it is a whole argument of a call (``_m.tanh(a * b)``)."""
    bare = _BARE_ARGUMENTS.get(template)
    if bare is None:
        bare = _BARE_ARGUMENTS[template] = tuple(
            any(f"{left}{{{p}}}{right}" in template for left in ("(", ", ") for right in "),")
            for p in "xy")
    if bare[0] and x[:1] == "(":
        x = x[1:-1]
    if bare[1] and y[:1] == "(":
        y = y[1:-1]
    return template.format(x=x, y=y)


_BARE_ARGUMENTS: dict[str, tuple[bool, ...]] = {}


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


def _reads(tape: Tape, k: int) -> list[int]:
    """The records that record k reads (not a leaf)."""
    a, b = tape.a0[k], tape.a1[k]
    if b >= NO_INPUT:  # one or two traced operands
        return [a, b] if b >= 0 else [a]
    info = OPS[tape.ops[k]]
    entry = tape.nary[-2 - a]
    if info.code == SUM or info.kind == "nodiff":
        return [j for j in entry[0] if j >= 0]
    if info.kind == "dot":
        xi, yi, _, _, bi = entry[:5]
        reads = [j for j in xi if j >= 0] if xi is not None else []
        if yi is not None:
            reads += [j for j in yi if j >= 0]
        if bi >= 0:
            reads.append(bi)
        return reads
    if info.kind == "array":
        return info.operand_indices(entry)
    raise _NotCompilable("a custom_vjp function called directly inside jit")


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


# ---------------------------------------------------------------------------
# Planning the code: which statements, in which order, and when each value dies.
# ---------------------------------------------------------------------------


class _Plan:
    """What the code of a tape does, statement by statement (see :func:`_plan`)."""

    __slots__ = ("statements", "starts", "reads", "last", "fused", "bounds", "chunks", "early")

    def __init__(self, n: int) -> None:
        # Per statement: record k (k >= 0), guard g (-1 - g), or chunk m of a running
        # sum (n + m); what it reads is reads[starts[t - 1]:starts[t]].
        self.statements = array("i")
        self.starts = array("i", [0])
        self.reads = array("i")
        self.last = array("i", [-1]) * n  # per record: the last statement reading it
        self.fused = bytearray(n)  # 1: written inside its one reader's expression
        self.bounds = [0]  # the first statement of each piece
        self.chunks: list[tuple[int, int, int]] = []  # (record, first term, end term)
        self.early: dict[int, int] = {}  # a running sum: the terms its chunks add


def _plan(tape: Tape, outputs: list[Any], piece_weight: int) -> _Plan:
    """The statements to write, what each reads, and where each value is last read.

    Statement 0 unpacks the inputs and the last one returns; in between come the
    guards and the live records in tape order (live: an output or a guard depends
    on it; the rest is dead code). ``last[j]`` is the last statement reading record
    j: after it, j's name may hold another value. Two rewrites keep the code short
    and the number of live values small, without changing a single float operation
    or its association:

    - A record read exactly once, by a record that can take it, is fused: written
      inside its reader's expression (up to MAX_FUSED operations in one).
    - A long sum or dot whose terms become ready long before it (a weight's gradient
      adds one term per sample) is a running sum: its terms are added, left to right,
      in chunks written as soon as they are ready, so that the values they read die
      early instead of all living until the sum.

    Statements are cut into pieces of about ``piece_weight`` (operands plus
    operations; compile() needs up to about 1 kB for each while it works).
    """
    n = len(tape)
    ops = tape.ops
    plan = _Plan(n)
    live = bytearray(n)
    reader = array("i", [-1]) * n  # its one reader; -2: several, or a guard or an output
    sums = []
    verdicts = [_fusable_code(code) for code in range(len(OPS))]
    for j in [j for j in outputs if type(j) is int and j >= 0] + [
            j for guard in tape.guards for j in guard.inputs if j >= 0]:
        live[j] = 1
        reader[j] = -2
    # A record that can raise (1 / x, log, sqrt) is computed even when nothing reads it:
    # eager code raises there, so compiled code must too (and then re-traces).
    raising = [_can_raise(code) for code in range(len(OPS))]
    for j in range(n):
        if raising[ops[j]] and j not in tape.ieee:
            live[j] = 1
    # Walking the tape backwards visits every reader of a record before the record.
    for j in range(n - 1, -1, -1):
        if live[j] and ops[j] != LEAF:
            if verdicts[ops[j]] == "terms":
                sums.append(j)
            for i in _reads(tape, j):
                reader[i] = j if reader[i] == -1 else -2
                live[i] = 1
    after: dict[int, list[int]] = {}  # record p -> running-sum chunks written right after it
    for c in sums:
        _schedule(tape, c, plan, after)
    guards_at: dict[int, list[int]] = {}
    for g, guard in enumerate(tape.guards):
        guards_at.setdefault(guard.position, []).append(g)
    statements, starts, reads, last, fused = (plan.statements, plan.starts, plan.reads,
                                              plan.last, plan.fused)
    early, chunks, bounds = plan.early, plan.chunks, plan.bounds
    size = bytearray(n)
    pending: dict[int, list[int]] = {}  # a fused record: what it reads, for its statement
    ieee = tape.ieee  # an IEEE template may not use its operands ("_INF"): never fused
    state = [0, 0]  # the number of the last statement, the weight of the current piece

    def add(root: int, mine: list[int], weight: int) -> None:
        t = state[0] = state[0] + 1
        if state[1] > piece_weight:  # this statement begins a new piece
            bounds.append(t)
            state[1] = 0
        state[1] += weight
        statements.append(root)
        reads.extend(mine)
        starts.append(len(reads))
        for j in mine:
            last[j] = t

    marks = set(guards_at) | set(after)  # positions with guards or chunks to write
    for k in range(-1, n + 1):
        if k in marks:
            for g in guards_at.get(k, ()):
                mine = [j for j in tape.guards[g].inputs if j >= 0]
                add(-1 - g, mine, len(mine) + 1)
        if 0 <= k < n and live[k] and ops[k] != LEAF:
            mine = []
            total = 1
            if k in early:  # a running sum: the terms its chunks did not add, and itself
                operands = [j for term in _term_reads(tape, k, early[k], _term_count(tape, k))
                            for j in term] + [k]
            else:
                operands = _reads(tape, k)
            for j in operands:
                if fused[j]:
                    mine += pending.pop(j)
                    total += size[j]
                else:
                    mine.append(j)
            c = reader[k]
            if (c >= 0 and total <= MAX_FUSED and verdicts[ops[c]] != "no"
                    and verdicts[ops[k]] != "no" and k not in ieee and c not in ieee
                    and c not in early and k not in early
                    and (verdicts[ops[k]] == "expression" or _term_count(tape, k) <= 4)):
                fused[k] = 1
                size[k] = total
                pending[k] = mine
            elif not (k in early and early[k] == _term_count(tape, k)
                      and not _activation(tape, k)):  # (a running sum may be complete)
                add(k, mine, len(mine) + total)
        if k in marks:
            for m in after.get(k, ()):
                c, first, end = chunks[m]
                mine = [j for term in _term_reads(tape, c, first, end) for j in term]
                add(n + m, mine + [c] if first else mine, len(mine) + end - first)
    assert not pending, "a fused record was never written"
    for j in outputs:
        if type(j) is int and j >= 0:
            last[j] = state[0] + 1
    return plan


def _schedule(tape: Tape, c: int, plan: _Plan, after: dict[int, list[int]]) -> None:
    """Cut a long sum or dot into chunks of terms written as soon as they are ready.

    A chunk ends where the next term is ready later than the chunk (once it has at
    least RUN_TERMS terms) or at MAX_TERMS terms; it is written right after the
    record its last-ready operand is. The terms left are added by the record itself.
    """
    count = _term_count(tape, c)
    if count <= 2 * RUN_TERMS:
        return
    ready = -1
    start = 0
    for i, term in enumerate(_term_reads(tape, c, 0, count)):
        r = max(term, default=-1)
        if i - start >= MAX_TERMS or i - start >= RUN_TERMS and r > ready:
            after.setdefault(ready, []).append(len(plan.chunks))
            plan.chunks.append((c, start, i))
            start = i
        ready = max(ready, r)
    if start:
        plan.early[c] = start


def _activation(tape: Tape, k: int) -> int:
    """The activation fused into a dot record (0 for none, and for a sum)."""
    return 0 if OPS[tape.ops[k]].code == SUM else tape.nary[-2 - tape.a0[k]][6]


def _fusable_code(code: int) -> str:
    """How records of this operation code can be fused: "terms" (a sum or dot),
    "expression" (a template using each operand once) or "no"."""
    verdict = _FUSABLE_CODES.get(code)
    if verdict is not None:
        return verdict
    info = OPS[code]
    if info is None:  # a leaf
        verdict = "no"
    elif info.code == SUM or info.kind == "dot":
        verdict = "terms"
    elif info.kind not in ("unary", "tt", "tc", "ct", "nodiff"):
        verdict = "no"
    else:
        template = info.primitive.on_floats
        once = template.count("{x}") == 1 and (info.primitive.arity == 1 or
                                               template.count("{y}") == 1)
        verdict = "expression" if once else "no"
    _FUSABLE_CODES[code] = verdict
    return verdict


_FUSABLE_CODES: dict[int, str] = {}


def _can_raise(code: int) -> bool:
    """Whether records of this operation code can raise a domain error on floats."""
    info = OPS[code]
    return info is not None and bool(getattr(info.primitive, "ieee", ""))  # arrays: never
_CALL = re.compile(r"[\w.]+\([^()]*\)")


def _atomic(tape: Tape, k: int) -> bool:
    """Whether the expression of record k is a call (it needs no parentheses)."""
    code = tape.ops[k]
    atomic = _ATOMIC.get(code)
    if atomic is None:
        info = OPS[code]
        if info.code == SUM:
            atomic = _ATOMIC[code] = False
        elif info.kind == "dot":
            atomic = _ATOMIC[code] = "activation"
        else:
            atomic = _ATOMIC[code] = _CALL.fullmatch(info.primitive.on_floats) is not None
    if atomic == "activation":  # a dot is a call when an activation is fused into it
        return bool(_activation(tape, k))
    return bool(atomic)


_ATOMIC: dict[int, Any] = {}


# ---------------------------------------------------------------------------
# Writing the code.
# ---------------------------------------------------------------------------


def _register_name(r: int) -> str:
    while len(_REGISTERS) <= r:
        _REGISTERS.append(f"r{len(_REGISTERS)}")
    return _REGISTERS[r]


_REGISTERS: list[str] = []


def write_pieces(tape: Tape, inputs: list[int], outputs: list[Any],
                 result: Callable[[list[str]], str] | None = None, env: dict | None = None,
                 piece_weight: int | None = None, nan_check: bool = False) -> Iterator[str]:
    """The Python source of a tape, as functions of bounded size.

    ``inputs`` are the record indices of the leaves in argument order; ``outputs``
    are record indices (int) or constants (anything else) per output leaf;
    ``result`` builds the returned expression from the output names (default: a
    tuple). Objects the code needs (arrays, NumPy) are put in ``env``.

    Names are registers, ``r0``, ``r1``, ...: a register is free again after the
    statement that last reads its value, and the next value defined takes it, so
    the code holds only live values (a few hundred for an MLP, where a name per
    record would keep tens of thousands alive until it returns). Each line says
    which record it computes (``# %k``; ``# %k +`` for a chunk of a running sum).

    A short tape (up to ``piece_weight`` operands and operations, see
    :func:`_plan`) is one function, ``compiled(inputs)``. A longer one is cut into
    ``_piece0(inputs, S)``, ``_piece1(S)``, ... and a ``compiled`` that calls them
    in turn, so that ``compile()``, whose memory grows with the function, never
    sees a huge one. A value read in a later piece than its own is kept in the list
    ``S`` (and, in a piece that reads it more than once, loaded into a register
    first). Pieces are yielded one at a time so that each can be compiled and
    dropped before the next is written. With ``nan_check`` the code raises
    ``_NaNResult`` instead of returning a NaN float.
    """
    env = {} if env is None else env
    plan = _plan(tape, outputs, PIECE_WEIGHT if piece_weight is None else piece_weight)
    writer = _Writer(tape, plan, env)
    total = writer.total
    bounds = plan.bounds + [total]
    pieces = len(plan.bounds)
    for piece in range(pieces):
        lines = writer.begin(piece, bounds[piece], bounds[piece + 1], pieces, outputs)
        if bounds[piece] == 0:
            lines += writer.unpack(inputs)
        for t in range(max(bounds[piece], 1), min(bounds[piece + 1], total - 1)):
            lines += writer.statement(t)
        if bounds[piece + 1] == total:
            outs = [writer.name(j) if type(j) is int and j >= 0 else _output_constant(j, env)
                    for j in outputs]
            scalars = [o for j, o in zip(outputs, outs)
                       if type(j) is int and j >= 0 and type(tape.values[j]) is float]
            if nan_check and scalars:
                # A NaN may be a zero meeting an infinity in a derivative: eager code
                # answers then, so that compiled code never differs from it there.
                lines.append("    if " + " or ".join(f"{o} != {o}" for o in scalars) +
                             ": raise _NaNResult")
            lines.append("    return " + (result(outs) if result is not None else
                                          "(" + "".join(o + ", " for o in outs) + ")"))
        yield "\n".join(lines if len(lines) > 1 else lines + ["    pass"]) + "\n"
    if pieces > 1:
        yield "\n".join([
            "def compiled(inputs):",
            f"    S = [None] * {writer.slots}",
            "    _piece0(inputs, S)",
            *[f"    _piece{p}(S)" for p in range(1, pieces - 1)],
            f"    return _piece{pieces - 1}(S)",
        ]) + "\n"


class _Writer:
    """Writes the statements of a plan, keeping track of where each value lives.

    A value lives in a register of the current piece (``reg``), in the list S
    shared by the pieces (``slot``), or both. (A class rather than closures, so that
    no reference cycle keeps the tape alive once the code is written.)
    """

    def __init__(self, tape: Tape, plan: _Plan, env: dict) -> None:
        n = len(tape)
        self.tape, self.plan, self.env, self.n, self.fused = tape, plan, env, n, plan.fused
        self.total = len(plan.statements) + 2  # the inputs, the statements, the return
        self.reg = array("i", [0]) * n  # the register holding a value, plus one (0: none)
        self.slot = array("i", [0]) * n  # its place in S, plus one (0: none)
        self.here = array("i", [-1]) * n  # the last statement of this piece reading it
        self.free_registers: list[int] = []
        self.free_slots: list[int] = []
        self.registers = 0  # registers used in this piece
        self.slots = 0  # places used in S
        self.end = self.total  # the first statement after this piece

    def begin(self, piece: int, first: int, end: int, pieces: int, outputs: list) -> list[str]:
        """Start a piece: note what it reads last where, and write its header."""
        plan, here = self.plan, self.here
        for t in range(max(first, 1), min(end, self.total - 1)):
            for j in plan.reads[plan.starts[t - 1]:plan.starts[t]]:
                here[j] = t
        if end == self.total:
            for j in outputs:
                if type(j) is int and j >= 0:
                    here[j] = self.total - 1
        self.end = end
        self.free_registers.clear()
        self.registers = 0
        if pieces == 1:
            return ["def compiled(inputs):"]
        return [f"def _piece{piece}(inputs, S):" if piece == 0 else f"def _piece{piece}(S):"]

    def unpack(self, inputs: list[int]) -> list[str]:
        """The line taking the inputs apart (and storing those a later piece reads)."""
        targets = [self.define(i, 0) if self.plan.last[i] >= 0 else ("_", "_") for i in inputs]
        if not targets:
            return []
        # an input kept in a register and in S is unpacked into the register
        lines = ["    (" + "".join(alias + ", " for _, alias in targets).rstrip(" ") + ") = inputs"]
        return lines + [f"    {target[len(alias) + 3:]} = {alias}"  # "r = S[s]": S[s] = r
                        for target, alias in targets if target != alias]

    def statement(self, t: int) -> list[str]:
        """The lines of statement t, then the registers it was the last to read are free."""
        plan, tape, reg, slot, here = self.plan, self.tape, self.reg, self.slot, self.here
        e = plan.statements[t - 1]
        mine = plan.reads[plan.starts[t - 1]:plan.starts[t]]
        lines = []
        for j in mine:  # a value from an earlier piece, read more than once here
            if slot[j] and not reg[j] and here[j] > t:
                lines.append(f"    {self.new_register(j)} = S[{slot[j] - 1}]")
        if e < 0:
            body = _guard_lines(tape.guards[-1 - e], self.name)
        elif e >= self.n:  # a chunk of a running sum
            c, start, stop = plan.chunks[e - self.n]
            terms, _ = _terms(tape, c, self.name, start, stop)
            target, acc = self.redefine(c) if start else self.define(c, t)
            body = _sum_lines(target, acc, terms, "", continuing=start > 0)
            body[-1] += f"  # %{c} +"
        elif e in plan.early:  # the rest of a running sum
            terms, activation = _terms(tape, e, self.name, plan.early[e])
            target, acc = self.redefine(e)
            body = _sum_lines(target, acc, terms, activation, continuing=True)
            body[-1] += _comment(e, tape.names.get(e))
        else:
            body = _statement(tape, e, self.name, self.define, t, self.env)
            body[-1] += _comment(e, tape.names.get(e))
        lines += ["    " + line for line in body]
        for j in mine:
            if reg[j] and here[j] == t:
                self.free_registers.append(reg[j] - 1)
                reg[j] = 0
            if slot[j] and plan.last[j] == t:
                self.free_slots.append(slot[j] - 1)
                slot[j] = 0
        return lines

    def name(self, j: int) -> str:
        """How the code reads value j: a register, a place in S, or (fused) its expression."""
        if self.fused[j]:
            text = _text(self.tape, j, self.name, self.env)
            return text if _atomic(self.tape, j) else f"({text})"
        r = self.reg[j]
        return _REGISTERS[r - 1] if r else f"S[{self.slot[j] - 1}]"

    def new_register(self, j: int) -> str:
        if self.free_registers:
            r = self.free_registers.pop()
        else:
            r = self.registers
            self.registers += 1
        self.reg[j] = r + 1
        return _register_name(r)

    def define(self, j: int, t: int) -> tuple[str, str]:
        """Where statement t puts a new value j: (assignment target, name to read it by)."""
        target = ""
        if self.plan.last[j] >= self.end:  # read in a later piece: a place in S
            if self.free_slots:
                s = self.free_slots.pop()
            else:
                s = self.slots
                self.slots += 1
            self.slot[j] = s + 1
            target = f"S[{s}]"
        if self.here[j] > t or not target:  # read again in this piece: a register too
            r = self.new_register(j)
            return (f"{r} = {target}" if target else r), r
        return target, target

    def redefine(self, j: int) -> tuple[str, str]:
        """Where the next value of running sum j goes, and the name of its last one."""
        acc = self.name(j)
        targets = [_REGISTERS[self.reg[j] - 1]] if self.reg[j] else []
        if self.slot[j] and self.plan.last[j] >= self.end:
            targets.append(f"S[{self.slot[j] - 1}]")
        return " = ".join(targets), acc


def _statement(tape: Tape, k: int, name: Callable[[int], str],
               define: Callable[[int, int], tuple[str, str]], t: int, env: dict) -> list[str]:
    """The lines of statement t, which computes record k. Its operands keep their names
    until these lines are written, so a sum over several lines never overwrites one it
    has yet to read."""
    info = OPS[tape.ops[k]]
    if info.code == SUM or info.kind == "dot":
        terms, activation = _terms(tape, k, name)
        target, alias = define(k, t)
        return _sum_lines(target, alias, terms, activation)
    expression = _expression(tape, k, name, env)
    return [f"{define(k, t)[0]} = {expression}"]


def _text(tape: Tape, k: int, name: Callable[[int], str], env: dict) -> str:
    """The expression of a fused record."""
    info = OPS[tape.ops[k]]
    if info.code == SUM or info.kind == "dot":
        terms, activation = _terms(tape, k, name)
        total = " + ".join(terms) if terms else "0.0"
        return _fill(activation, f"({total})" if " " in total else total) if activation else total
    return _expression(tape, k, name, env)


def generate_source(tape: Tape, inputs: list[int], outputs: list[Any],
                    result: Callable[[list[str]], str] | None = None,
                    env: dict | None = None) -> str:
    """Straight-line Python source for a tape: inputs in, outputs out (see write_pieces).

    >>> import tapegrad as tg
    >>> def f(x, y):
    ...     z = x * y
    ...     return tg.tanh(z) * (z + 1.0)
    >>> tape = tg.trace(f)(0.5, 2.0)
    >>> print(generate_source(tape, [0, 1], [5]), end="")
    def compiled(inputs):
        (r0, r1,) = inputs
        r2 = r0 * r1  # %2
        r1 = _m.tanh(r2) * (r2 + 1.0)  # %5
        return (r1, )
    """
    return "".join(write_pieces(tape, inputs, outputs, result, env))


class _Variant:
    """One traced-and-compiled version of the function, valid while its guards hold.

    Its source is kept compressed (a large tape's is tens of megabytes as text).
    """

    def __init__(self, pieces: Iterable[str], env: dict) -> None:
        namespace = dict(_namespace)
        packer = zlib.compressobj(1)
        packed = []
        for piece in pieces:  # compile each before writing the next: bounded memory
            namespace.update(env)  # what writing the piece put there
            exec(compile(piece, "<tapegrad.jit>", "exec"), namespace)  # our own text
            packed.append(packer.compress(piece.encode()))
        packed.append(packer.flush())
        self._source = b"".join(packed)
        self.fn = namespace["compiled"]

    @property
    def source(self) -> str:
        return zlib.decompress(self._source).decode()


_ENV = {"_GuardFailed": _GuardFailed, "_NaNResult": _NaNResult, "_INF": math.inf,
        "_NAN": math.nan, "_build": _build, "_tree_unflatten": tree_unflatten}


class Jitted:
    """A function compiled from its tape; see :func:`jit`."""

    def __init__(self, f: Callable[..., Any], static_argnums: tuple[int, ...] = ()) -> None:
        functools.update_wrapper(self, f)
        self.f = f
        self.static_argnums = static_argnums
        self.variants: dict[Any, list[_Variant]] = {}
        self.traces = 0
        # The last call's structure: a leaf reader for it (pytree.leaf_reader) and its
        # key, so that a call shaped like the last one skips tree_flatten and hashing.
        self._last: tuple[Callable[[Any], list | None], Any] | None = None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if kwargs:
            return self.f(*args, **kwargs)  # only positional arguments are compiled
        last = self._last
        if last is not None:
            leaves = last[0](args)
            if leaves is not None and not active():
                types = set(map(type, leaves))
                if types <= _NUMBER_TYPES:
                    selected = self._select(args, last[1], leaves if types <= _FLOATS else
                                            _as_floats(leaves))
                    return self.f(*args) if selected is None else selected[1]
        key, leaves = self._key(args)
        if active() or key is None:
            # Inside another transform (tracers), or non-numeric leaves: run eagerly.
            return self.f(*args)
        if len(key) == 2 and not self.static_argnums:  # numbers only: remember the shape
            reader = leaf_reader(key[1])
            self._last = None if reader is None else (reader, key)
        selected = self._select(args, key, _as_floats(leaves))
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
            except _NaNResult:
                return None
        if len(variants) >= MAX_VARIANTS:
            return None
        try:
            variant = self._trace(args)
        except _NotCompilable:
            return None
        variants.append(variant)
        try:
            return variant, variant.fn(leaves)
        except _NaNResult:
            return None

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

        def result(names: list[str]) -> str:
            return _output_expression(out_def, names, env)

        return _Variant(write_pieces(tape, inputs, outputs, result, env, nan_check=True), env)

    def source(self, *args: Any) -> str:
        """The generated Python source for calls shaped like ``args`` (traces if needed)."""
        key, leaves = self._key(args)
        selected = self._select(args, key, _as_floats(leaves)) if key is not None else None
        if selected is None:
            raise ValueError("jit: these arguments are not run from compiled code (a "
                             "custom_vjp called directly, too many variants, or a NaN "
                             "result, which eager code answers)")
        return selected[0].source


_NUMBER_TYPES = {float, int}
_FLOATS = {float}


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


def _as_floats(leaves: list) -> list:
    """The leaves as compiled code takes them: numbers as floats, arrays as they are.

    A trace sees every number as a float (an int or a NumPy scalar is traced as a
    float), so compiled code gets floats too: ``x // 2`` or ``x * y`` on ints must
    give what the traced code gave, a float, and never Python's exact int
    arithmetic or NumPy's scalar rules.
    """
    if set(map(type, leaves)) <= _FLOATS:
        return leaves
    np = sys.modules.get("numpy")
    scalar = np.generic if np is not None else ()
    return [float(leaf) if type(leaf) is int or (
        isinstance(leaf, scalar) and leaf.dtype.kind in "fiu") else leaf for leaf in leaves]


_REPLAY_FAILURES = (_GuardFailed, ValueError, ZeroDivisionError, OverflowError)


def jit(f: Callable[..., Any], static_argnums: int | Sequence[int] = ()) -> Jitted:
    """Compile ``f`` from its tape into straight-line Python; re-trace when a guard fails.

    Works on any function of pytrees of numbers, including ``grad(f)`` and
    ``value_and_grad(f)``. Ints and NumPy scalars are traced, and computed, as
    floats. Called inside another transform, with non-numeric leaves or with
    keyword arguments, it simply runs ``f``.

    ``static_argnums`` (as in JAX) names positional arguments that are passed to
    ``f`` as plain Python values and are part of the cache key: counts, sizes,
    flags, anything used as ``range(n)`` or an index. Each new value traces anew.

    Values ``f`` closes over, and globals, are read once, at trace time, and baked
    into the compiled code (as in JAX). Pass them as arguments to have them read on
    every call:

    >>> scale = 2.0
    >>> baked = jit(lambda x: x * scale)
    >>> baked(1.0), jit(lambda x, s: x * s)(1.0, scale)
    (2.0, 2.0)
    >>> scale = 3.0
    >>> baked(1.0)  # still 2.0: scale was read when baked was traced
    2.0

    >>> import tapegrad as tg
    >>> fast = jit(tg.grad(lambda x: x * x if x > 0 else -x))
    >>> fast(3.0), fast(-2.0)  # the branch flips: re-traced, not replayed wrongly
    (6.0, -1.0)
    >>> print(fast.source(3.0), end="")
    def compiled(inputs):
        (r0,) = inputs
        if not (r0 > 0.0): raise _GuardFailed
        r1 = r0 + r0  # %2
        if r1 != r1: raise _NaNResult
        return r1

    The last check hands a NaN result to eager code, so that a NaN from compiled code
    is always the NaN eager code gives (see the zero rules at ``tapegrad.tape.SELECT``).
    """
    nums = (static_argnums,) if isinstance(static_argnums, int) else tuple(static_argnums)
    if not all(isinstance(n, int) and n >= 0 for n in nums):
        raise ValueError(f"jit: static_argnums must be non-negative ints, got {static_argnums!r}")
    return Jitted(f, nums)

