"""Showing a tape: as text, as a picture, as a table; and checking its rules one by one.

This module only reads tapes. It offers:

- :func:`format_forward`: the forward Wengert list, one line per record (``str(tape)``).
- :func:`format_reverse`: the reverse sweep in the order it runs, last record first:
  each record's adjoint and what it adds to its inputs' adjoints.
- :func:`draw_tape`: the tape as a ``graphviz.Digraph``, records in tape order, each
  with its value and adjoint, coloured by kind with a legend (``Tape.draw``).
- :func:`grad_tape`: the tape of a gradient, with each record's role (forward pass,
  derivative rule, reverse sweep) for ``draw_tape(..., roles=...)``.
- :func:`tape_html`: the tape as an HTML table (``Tape._repr_html_``, for Jupyter).
- :func:`render`: write a drawing to a file; without Graphviz's ``dot`` program it
  writes the DOT source instead and says how to install Graphviz.
- :func:`format_stats`, :func:`describe_record`: cost summary, one record in words.
- :func:`check_tape`: every record's derivative rule against central
  differences at its recorded inputs (``tg.check_grad(per_record=True)``).
"""

from __future__ import annotations

import html
import math
import shutil
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Callable

from .errors import TapegradError
from .primitives import VALUE_AND_PARTIAL
from .tape import HOOKS as _tape_hooks
from .tape import OPS, Tape
from .tracer import primal

__all__ = [
    "format_forward", "format_reverse", "draw_tape", "grad_tape", "record_kind", "tape_html",
    "render", "format_stats", "describe_record", "check_tape", "unchecked_records",
    "RuleMismatchError", "GraphvizMissingWarning",
]


def plain(v: Any) -> float:
    """The float inside a value, looking through tracers of outer traces.

    An array counts by its norm (enough to tell zero from nonzero adjoints).
    """
    v = primal(v)
    if hasattr(v, "shape") and v.shape != ():
        return float(sum(abs(float(e)) for e in v.flat))
    return float(v)


_DTYPE_NAMES = {"float64": "f64", "float32": "f32", "float16": "f16", "int64": "i64",
                "int32": "i32", "bool": "bool", "uint8": "u8"}


def array_type(v: Any) -> str:
    """An array's dtype and shape in brief, as JAX prints them: ``f64[100,16]``.

    >>> import numpy as np
    >>> array_type(np.zeros((100, 16)))
    'f64[100,16]'
    """
    name = str(getattr(v.dtype, "name", v.dtype))
    return f"{_DTYPE_NAMES.get(name, name)}[{','.join(str(n) for n in v.shape)}]"


def fmt(v: Any) -> str:
    """A number written compactly (6 significant digits); an array by its type and shape.

    >>> fmt(2.0 / 3.0)
    '0.666667'
    """
    v = primal(v)
    if hasattr(v, "shape") and hasattr(v, "dtype"):
        if v.shape == ():
            return f"{float(v):.6g} {array_type(v)}"
        return array_type(v)
    return f"{float(v):.6g}"


def _param_text(value: Any) -> str:
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return array_type(value)
    if isinstance(value, tuple):
        return "(" + ", ".join(_param_text(v) for v in value) + ("," if len(value) == 1
                                                                  else "") + ")"
    if isinstance(value, slice):
        parts = [("" if p is None else str(p)) for p in (value.start, value.stop, value.step)]
        return ":".join(parts[:2] if value.step is None else parts)
    if value is Ellipsis:
        return "..."
    return repr(value)


def _array_expression(tape: Tape, k: int) -> str:
    """An array record as text: ``matmul(%0, %2)``, ``sum(%5, axis=1)``."""
    info = OPS[tape.ops[k]]
    _prim, inputs, operands, params, _out = tape.nary[-2 - tape.a0[k]]
    args = [tape.name(j) if j >= 0 else fmt(v) for j, v in zip(inputs, operands)]
    if info.name == "getitem":  # written as indexing: x[%5, 1:], the arrays in their slots
        arrays = iter(args[1:])
        parts = [next(arrays) if isinstance(p, str) and p.startswith("<") else _param_text(p)
                 for p in params["index"]]
        return f"{args[0]}[{', '.join(parts)}]"
    # Functions a record carries for its rules (custom_vjp's) are not shown.
    args += [f"{key}={_param_text(value)}" for key, value in params.items()
             if not (value is None or value is False or callable(value))]
    return f"{info.name}({', '.join(args)})"


def _operands(tape: Tape, k: int) -> tuple[list[str], list[str]]:
    """Names of the traced operands of record k, and its constants, as text."""
    rec = tape[k]
    names = [tape.name(j) for j in rec.inputs if j is not None]
    consts = [fmt(c) for c in rec.constants]
    return names, consts


def _custom_name(tape: Tape, k: int) -> str:
    return str(tape.nary[-2 - tape.a0[k]][2])


def expression(tape: Tape, k: int) -> str:
    """The right-hand side of record k, e.g. ``%3 * 0.5`` or ``tanh(x1)``."""
    op = tape.ops[k]
    if op == 0:
        return "input"
    info = OPS[op]
    if info.kind == "array":
        return _array_expression(tape, k)
    if info.kind == "dot":
        xi, yi, xv, yv, bi, bv, act, _ = tape.nary[-2 - tape.a0[k]]
        side = lambda idx, vals: "[" + ", ".join(
            tape.name(j) if j >= 0 else fmt(v) for j, v in zip(idx, vals)) + "]"
        xi = xi or (-1,) * len(xv)
        yi = yi or (-1,) * len(yv)
        bias = f" + {tape.name(bi)}" if bi >= 0 else (f" + {fmt(bv)}" if bv else "")
        text = f"dot({side(xi, xv)}, {side(yi, yv)}){bias}"
        return f"{OPS[act].name}({text})" if act else text
    names, consts = _operands(tape, k)
    if info.kind == "sum":
        const = plain(consts and float(consts[0]) or 0.0)
        return "sum(" + ", ".join(names + ([fmt(const)] if const else [])) + ")"
    if info.kind == "custom":
        return f"{_custom_name(tape, k)}(" + ", ".join(names) + ")"
    return info.expression(names, consts)


def _op_name(tape: Tape, k: int) -> str:
    op = tape.ops[k]
    return OPS[op].name if op else "input"


# ---------------------------------------------------------------------------
# Text: the forward list and the reverse sweep.
# ---------------------------------------------------------------------------


def format_forward(tape: Tape) -> str:
    """The forward Wengert list: one line per record with its value.

    >>> import tapegrad as tg
    >>> print(format_forward(tg.trace(lambda x: x * 3.0, names=("x",))(2.0)))
    x = input                        # 2
    %1 = x * 3                       # 6
    """
    lines = []
    for k in range(len(tape)):
        lhs = f"{tape.name(k)} = {expression(tape, k)}"
        lines.append(f"{lhs:<32} # {fmt(tape.values[k])}")
    return "\n".join(lines)


def _adjoints(tape: Tape, adjoints: Sequence | None) -> Sequence | None:
    if adjoints is None:
        adjoints = tape.timings.get("adjoints")
    if adjoints is not None and len(adjoints) != len(tape):
        raise ValueError(f"{len(adjoints)} adjoints given for a tape of {len(tape)} records")
    return adjoints


def _why_no_sweep(tape: Tape) -> str:
    """Why a tape carries no adjoints, in one sentence."""
    if len(tape.outputs) > 1:
        why = (f"the traced function has {len(tape.outputs)} outputs, so there is no single "
               "output to seed with 1; use tg.vjp with one cotangent per output")
    elif tape.outputs and tape.outputs[0] < 0:
        why = "the output is a constant: it does not depend on the traced inputs"
    else:
        why = ("tg.trace runs it when the traced function returns one scalar; otherwise pass "
               "adjoints=tape.backward({output_index: 1.0})")
    return f"the reverse sweep has not run on this tape: {why}"


def _contributions(tape: Tape, k: int, g: Any) -> list[tuple[int, str]]:
    """What record k sends to each traced input for adjoint g, as (input, text) pairs."""
    info = OPS[tape.ops[k]]
    rec = tape[k]
    inputs = [j for j in rec.inputs if j is not None]
    if info.kind in ("custom", "array"):
        rule = "bwd" if info.kind == "custom" else f"vjp of {info.name}"
        try:  # the rule sees the real adjoint, as in the sweep
            cts = list(info.nary_adjoints(tape.nary[-2 - tape.a0[k]], g))
            return [(j, f"{rule}({fmt(g)}) = {fmt(c)}") for j, c in cts]
        except Exception as e:  # noqa: BLE001 - shown, not hidden
            return [(j, f"{rule}({fmt(g)}) failed: {e}") for j in inputs]
    return [(j, f"{fmt(g)} * {fmt(d)} = {plain(g) * plain(d):.6g}")
            for j, d in zip(inputs, rec.partials)]


def format_reverse(tape: Tape, adjoints: Sequence | None = None) -> str:
    """The reverse sweep as text, in the order it runs: from the last record to the first.

    Each line shows a record, its adjoint (d output / d record) and what it adds
    to each input's adjoint: adjoint * partial. A record's adjoint is complete
    when the sweep reaches it, because every record that uses it comes later on
    the tape and has already been visited. ``adjoints`` defaults to the ones
    ``tg.trace`` stores for a scalar output.

    >>> import tapegrad as tg
    >>> tape = tg.trace(lambda x, y: x * y + y, names=("x", "y"))(2.0, 3.0)
    >>> print(format_reverse(tape))  # doctest: +NORMALIZE_WHITESPACE
    reverse sweep, from the last record to the first (seed: adjoint of %3 = 1);
    each record adds adjoint * partial to the adjoint of each of its inputs
    %3 = %2 + y        adjoint 1    %2 += 1 * 1 = 1;  y += 1 * 1 = 1
    %2 = x * y         adjoint 1    x += 1 * 3 = 3;  y += 1 * 2 = 2
    y = input          adjoint 3    input: d output / d y = 3
    x = input          adjoint 3    input: d output / d x = 3
    """
    adj = _adjoints(tape, adjoints)
    if adj is None:
        return _why_no_sweep(tape)
    seeds = [k for k in tape.outputs if k >= 0]
    seed_text = ", ".join(f"adjoint of {tape.name(k)} = {fmt(adj[k])}" for k in seeds)
    lines = [
        f"reverse sweep, from the last record to the first (seed: {seed_text or 'given'});",
        "each record adds adjoint * partial to the adjoint of each of its inputs"
        + ("; an array record's rule computes the vector-Jacobian product instead"
           if tape.arrays else ""),
    ]
    width = min(36, max((len(tape.name(k)) + len(expression(tape, k)) + 3
                         for k in range(len(tape))), default=0))
    gw = max((len(fmt(g)) for g in adj), default=0)
    for k in range(len(tape) - 1, -1, -1):
        g = adj[k]
        lhs = f"{tape.name(k)} = {expression(tape, k)}"
        head = f"{lhs:<{width}}  adjoint {fmt(g):<{gw}}"
        if tape.ops[k] == 0:
            tail = f"input: d output / d {tape.name(k)} = {fmt(g)}"
        elif plain(g) == 0.0:
            tail = "nothing to send: the sweep skips a zero adjoint"
        else:
            tail = ";  ".join(f"{tape.name(j)} += {text}"
                              for j, text in _contributions(tape, k, g))
        lines.append(f"{head}  {tail}".rstrip())
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# Pictures and tables.
# ---------------------------------------------------------------------------


def _html_text(text: str, limit: int = 0) -> str:
    """Text made safe inside an HTML table cell or a Graphviz HTML-like label."""
    if limit and len(text) > limit:
        text = text[: limit - 3] + "..."
    # Graphviz knows the HTML 4 entities; &#39; is safer there than html's &#x27;.
    return html.escape(text, quote=True).replace("&#x27;", "&#39;")


# Fill colours of the record kinds, light enough for black text, and told apart by a
# word in each box too (colour alone fails some readers). A record's kind comes from
# the tape; a role (for the tape of a gradient) comes from grad_tape.
KIND_COLOURS = {
    "input": "#cfe2f7",       # a leaf: an input of the traced function
    "operation": "#eeeeee",   # a unary or binary primitive
    "n-ary": "#d5efcf",       # one record, many inputs: sum, dot, a fused neuron, custom rules
}
ROLE_COLOURS = {
    "forward": "#eeeeee",     # the function's own forward pass
    "rule": "#fde0c2",        # a derivative rule's partial, computed at record time
    "sweep": "#e3d7f4",       # arithmetic of the inner reverse sweep: adjoint * partial
}
ROLE_NAMES = {"forward": "forward pass", "rule": "derivative rule", "sweep": "reverse sweep"}
OUTPUT_BORDER = 3  # the output's box has a thick border


def record_kind(tape: Tape, k: int) -> str:
    """``"input"``, ``"operation"`` or ``"n-ary"``: what kind of record ``k`` is.

    >>> import tapegrad as tg
    >>> tape = tg.trace(lambda x, y: tg.sum([x * y, y]))(2.0, 3.0)
    >>> [record_kind(tape, k) for k in range(len(tape))]
    ['input', 'input', 'operation', 'n-ary']
    """
    op = tape.ops[k]
    if op == 0:
        return "input"
    return "n-ary" if OPS[op].kind in ("sum", "dot", "custom") else "operation"


def _legend(title: str, entries: list[tuple[str, str]], output: bool) -> str:
    """A Graphviz HTML-like label: the title (one line per ``\\n``), then a swatch per kind."""
    swatches = "".join(f'<TD BORDER="1" BGCOLOR="{colour}">{_html_text(name)}</TD>'
                       for name, colour in entries)
    if output:
        swatches += f'<TD BORDER="{OUTPUT_BORDER}">output</TD>'
    lines = '<BR ALIGN="LEFT"/>'.join(_html_text(line) for line in title.split("\n"))
    return ('<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="2">'
            f'<TR><TD ALIGN="LEFT">{lines}<BR ALIGN="LEFT"/></TD></TR>'
            '<TR><TD ALIGN="LEFT"><TABLE BORDER="0" CELLBORDER="0" CELLSPACING="4" '
            f'CELLPADDING="3"><TR>{swatches}</TR></TABLE></TD></TR></TABLE>>')


def draw_tape(tape: Tape, *, adjoints: Sequence | None = None, partials: bool = True,
              rankdir: str = "LR", format: str = "svg", max_records: int | None = 300,
              roles: Mapping[int, str] | None = None, title: str | None = None) -> Any:
    """The tape as a ``graphviz.Digraph``: one box per record, in tape order.

    Records are ranked by index (left to right with ``rankdir="LR"``, top to
    bottom with ``"TB"``); each box shows the record's index and name, its
    operation with constants inline, its value and its adjoint. An edge runs
    from each input to the record that uses it, labelled with the partial
    derivative stored on the tape (``partials``). Boxes are coloured by the
    record's kind (:func:`record_kind`: input, operation, n-ary), the output
    has a thick border, and a legend above says which colour is which.

    ``roles`` maps record indices to ``"forward"``, ``"rule"`` or ``"sweep"``
    (see :func:`grad_tape`) and colours those records by role instead; ``title``
    replaces the first line of the legend. Nothing is rendered here: see
    :func:`render`, or let Jupyter display the returned object.

    >>> import tapegrad as tg
    >>> tape = tg.trace(lambda x: tg.tanh(x * 3.0), names=("x",))(0.5)
    >>> src = draw_tape(tape).source
    >>> "tanh(%1)" in src and "x * 3" in src and "adjoint" in src
    True
    """
    import graphviz

    n = len(tape)
    if max_records is not None and n > max_records:
        raise ValueError(
            f"draw_tape: the tape has {n} records; a picture of more than {max_records} is "
            "unreadable. Trace a smaller function, or pass max_records=None to draw it anyway."
        )
    roles = dict(roles or {})
    unknown = sorted({r for r in roles.values() if r not in ROLE_COLOURS})
    if unknown:
        raise ValueError(f"draw_tape: unknown role(s) {unknown}; roles are "
                         f"{sorted(ROLE_COLOURS)} (as grad_tape returns them)")
    adj = _adjoints(tape, adjoints)
    outputs = {k for k in tape.outputs if k >= 0}
    note = "adjoints from the reverse sweep" if adj is not None else _why_no_sweep(tape)
    heading = title if title is not None else (
        f"tape: {n} records, in tape order\n"
        + ("edge labels: partial derivatives\n" if partials else "") + note)
    shown: dict[str, str] = {}  # legend entries, in order of first appearance
    dot = graphviz.Digraph(
        "tape", format=format,
        graph_attr={"rankdir": rankdir, "labelloc": "t", "labeljust": "l",
                    "fontname": "Helvetica", "fontsize": "12", "nodesep": "0.25",
                    "ranksep": "0.3"},
        node_attr={"shape": "plain", "fontname": "Helvetica", "fontsize": "11"},
        edge_attr={"fontname": "Helvetica", "fontsize": "10", "color": "#555555",
                   "fontcolor": "#333333"},
    )
    for k in range(n):
        kind = record_kind(tape, k)
        role = roles.get(k) if kind != "input" else None
        if role is not None:
            colour, tag = ROLE_COLOURS[role], role
            shown.setdefault(ROLE_NAMES[role], colour)
        else:
            colour, tag = KIND_COLOURS[kind], ("n-ary" if kind == "n-ary" else "")
            shown.setdefault(kind, colour)
        if k in outputs:
            tag = f"{tag}, output" if tag else "output"
        title_text = _html_text(tape.name(k), 40)
        what = expression(tape, k)
        if not (kind == "input" or what.startswith(_op_name(tape, k) + "(")):
            what = f"{_op_name(tape, k)}: {what}"  # e.g. "mul: x1 * w1"
        what = _html_text(what, 60)
        tag_text = f' <FONT POINT-SIZE="9">{_html_text(tag)}</FONT>' if tag else ""
        rows = [
            f'<TR><TD BGCOLOR="{colour}"><B>{title_text}</B> [{k}]{tag_text}</TD></TR>',
            f"<TR><TD>{what}</TD></TR>",
            f"<TR><TD>value {_html_text(fmt(tape.values[k]))}</TD></TR>",
        ]
        if adj is not None:
            rows.append(f"<TR><TD>adjoint {_html_text(fmt(adj[k]))}</TD></TR>")
        border = OUTPUT_BORDER if k in outputs else 0
        table = (f'<TABLE BORDER="{border}" CELLBORDER="1" CELLSPACING="0" CELLPADDING="3">'
                 + "".join(rows) + "</TABLE>")
        dot.node(f"r{k}", label=f"<{table}>")
    dot.attr(label=_legend(heading, list(shown.items()), bool(outputs)))
    # A long tape's edge labels go outside the layout (xlabel): placing labels as
    # part of the layout costs Graphviz minutes on a chain of a hundred records.
    label_key = "xlabel" if n > 60 else "label"
    if label_key == "xlabel":
        dot.attr(forcelabels="true")
    for k in range(n):
        if tape.ops[k] == 0:
            continue
        rec = tape[k]
        inputs = [j for j in rec.inputs if j is not None]
        # An array record keeps a rule, not partials: its edges carry no label.
        stored = list(rec.partials) if len(rec.partials) == len(inputs) else [None] * len(inputs)
        for j, d in zip(inputs, stored):
            label = {label_key: _html_text(fmt(d))} if partials and d is not None else {}
            dot.edge(f"r{j}", f"r{k}", **label)
    # The inputs side by side (one rank), then the tape itself: an invisible chain
    # that keeps the records in index order.
    leaves = [k for k in range(n) if tape.ops[k] == 0]
    with dot.subgraph(name="inputs") as rank:
        rank.attr(rank="same")
        for k in leaves:
            rank.node(f"r{k}")
    for k in range(n - 1):
        dot.edge(f"r{k}", f"r{k + 1}", style="invis", weight="5")
    return dot


def grad_tape(f: Callable[..., Any], *args: Any, argnums: int = 0,
              names: Sequence[str] | None = None) -> tuple[Tape, dict[int, str]]:
    """The tape of ``grad(f)`` at ``args``, and the role of each of its records.

    The tape is what ``tg.trace(tg.grad(f, argnums), names=names)(*args)``
    records. Each non-input record gets a role: ``"forward"`` (a value of
    ``f``'s own forward pass), ``"rule"`` (arithmetic of a derivative rule,
    computing a partial at record time) or ``"sweep"`` (arithmetic of the
    reverse sweep, adjoint times partial). Pass both to :func:`draw_tape`.

    >>> import tapegrad as tg
    >>> tape, roles = grad_tape(tg.tanh, 0.5)
    >>> print(tape)
    %0 = input                       # 0.5
    %1 = tanh(%0)                    # 0.462117
    %2 = %1 * %1                     # 0.213552
    %3 = 1 - %2                      # 0.786448
    >>> roles
    {1: 'forward', 2: 'rule', 3: 'rule'}
    """
    from .tape import active
    from .tracer import Tracer
    from .transforms import trace

    marks: dict[str, Any] = {}

    def gradient(*outer: Any) -> Any:
        recorder = active()[-1]  # the outer trace, on which everything below records

        def f_marked(*inner: Any) -> Any:
            out = f(*inner)
            marks["end"] = len(recorder.ops)  # forward pass and rules recorded; sweep next
            return out

        inner_tape = trace(f_marked, argnums=argnums)(*outer)
        # The values of the inner records (and inputs) are records of the outer tape.
        marks["inner"] = {v._index for v in inner_tape.values
                          if type(v) is Tracer and v._tape is recorder}
        return inner_tape.timings["adjoints"][inner_tape.inputs[0]]

    tape = trace(gradient, names=names)(*args)
    inner, end = marks["inner"], marks["end"]
    # Before the sweep, a record that is not an inner value is either f's own
    # arithmetic on numbers the inner trace treats as constants (it depends on no
    # inner value: forward), or a rule's arithmetic on inner values (rule).
    depends = set(inner)
    roles: dict[int, str] = {}
    for k in range(len(tape)):
        if tape.ops[k] == 0:
            continue
        if k >= end:
            roles[k] = "sweep"
            continue
        if any(j in depends for j in tape[k].inputs if j is not None):
            depends.add(k)
        roles[k] = "forward" if k in inner or k not in depends else "rule"
    return tape, roles


def tape_html(tape: Tape, max_rows: int = 200) -> str:
    """The tape as an HTML table: index, name, operation, expression, value, adjoint, kind.

    Jupyter shows a tape this way (``Tape._repr_html_``). The kind cell (input,
    operation, n-ary) has the colour the pictures use. Every label is escaped.
    Long tapes show their first and last ``max_rows // 2`` records.

    >>> import tapegrad as tg
    >>> table = tape_html(tg.trace(lambda x: x * 2.0, names=("<x>",))(1.5))
    >>> "&lt;x&gt;" in table and "<x>" not in table
    True
    """
    adj = _adjoints(tape, None)
    n = len(tape)
    caption = f"Tape: {n} records" + ("" if adj is not None else f" ({_why_no_sweep(tape)})")
    head = "".join(f"<th>{h}</th>" for h in
                   ("index", "name", "operation", "expression", "value", "adjoint", "kind"))
    shown = range(n) if n <= max_rows else [*range(max_rows // 2),
                                            *range(n - max_rows // 2, n)]
    rows = []
    for k in shown:
        if n > max_rows and k == n - max_rows // 2:
            rows.append(f'<tr><td colspan="7">... {n - max_rows} records not shown ...</td></tr>')
        cells = (str(k), tape.name(k), _op_name(tape, k), expression(tape, k),
                 fmt(tape.values[k]), fmt(adj[k]) if adj is not None else "")
        kind = record_kind(tape, k)
        rows.append("<tr>" + "".join(f"<td>{_html_text(c)}</td>" for c in cells)
                    + f'<td style="background:{KIND_COLOURS[kind]}">{kind}</td></tr>')
    return (f'<table class="tapegrad-tape"><caption>{_html_text(caption)}</caption>'
            f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>")


class GraphvizMissingWarning(UserWarning):
    """Graphviz's ``dot`` program is not installed, so DOT source was written instead."""


INSTALL_GRAPHVIZ = (
    "Install Graphviz to get pictures: 'sudo apt-get install graphviz' (Debian, Ubuntu), "
    "'brew install graphviz' (macOS), or see https://graphviz.org/download/"
)


# Picture formats that render reads off a path's suffix (Graphviz writes many more).
SUFFIX_FORMATS = ("svg", "png", "pdf", "jpg", "jpeg", "gif", "ps", "eps")


def render(drawing: Any, path: str | Path, format: str | None = None) -> str:
    """Write a drawing (a ``graphviz.Digraph``, or a :class:`Tape`) to ``path``; return the path.

    The format is ``format`` if given, else the suffix of ``path`` when it is one of
    :data:`SUFFIX_FORMATS` (``out/tape.png`` is a PNG), else SVG; ``.{format}`` is
    added to ``path`` unless it already ends with it. When the Graphviz ``dot``
    program is missing, the DOT source is written next to it as ``.gv`` instead, a
    :class:`GraphvizMissingWarning` says how to install Graphviz, and that path is
    returned: nothing fails.

    >>> import tempfile, warnings, tapegrad as tg
    >>> tape = tg.trace(lambda x: tg.exp(x))(0.0)
    >>> with tempfile.TemporaryDirectory() as d, warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     render(tape, f"{d}/tape.png").endswith(("tape.png", "tape.gv"))
    True
    """
    import graphviz

    if format is None:
        suffix = Path(path).suffix.lower().lstrip(".")
        format = suffix if suffix in SUFFIX_FORMATS else "svg"
    if isinstance(drawing, Tape):
        drawing = draw_tape(drawing, format=format)
    if not isinstance(getattr(drawing, "source", None), str):
        raise TypeError(f"render needs a graphviz.Digraph or a Tape, got {type(drawing).__name__}")
    target = Path(path)
    if target.suffix.lower() != "." + format.lower():
        target = target.with_name(target.name + "." + format)
    target.parent.mkdir(parents=True, exist_ok=True)
    if shutil.which("dot") is not None:
        try:
            target.write_bytes(drawing.pipe(format=format))
            return str(target)
        except graphviz.ExecutableNotFound:
            pass
    source = target.with_suffix(".gv")
    source.write_text(drawing.source, encoding="utf-8")
    warnings.warn(
        f"Graphviz's 'dot' program was not found, so the DOT source was written to {source} "
        f"instead of {target}. {INSTALL_GRAPHVIZ}; then run: dot -T{format} {source} -o {target}",
        GraphvizMissingWarning, stacklevel=2,
    )
    return str(source)


# ---------------------------------------------------------------------------
# Diagnostics.
# ---------------------------------------------------------------------------


def _rule_name(tape: Tape, k: int) -> str:
    name = _op_name(tape, k)
    return f"custom_vjp {_custom_name(tape, k)}" if name == "custom" else name


def describe_record(tape: Tape, k: int) -> str:
    """One record in words, with its inputs' values (for error messages).

    >>> import tapegrad as tg
    >>> describe_record(tg.trace(lambda x: tg.log(x))(2.0), 1)
    "%1 = log(%0) (operation 'log', tape index 1, inputs %0 = 2)"
    """
    name = _rule_name(tape, k)
    rec = tape[k]
    inputs = ", ".join(f"{tape.name(j)} = {fmt(tape.values[j])}" for j in rec.inputs
                       if j is not None)
    return (f"{tape.name(k)} = {expression(tape, k)} (operation {name!r}, tape index {k}"
            + (f", inputs {inputs}" if inputs else "") + ")")


def format_stats(tape: Tape) -> str:
    """Records by operation, total, memory held, and sweep time against the forward.

    >>> import tapegrad as tg
    >>> print(format_stats(tg.trace(lambda x: x * x)(3.0)).splitlines()[0])
    records: 2
    """
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


_tape_hooks.update(forward=format_forward, reverse=format_reverse, draw=draw_tape,
                   html=tape_html, stats=format_stats, describe=describe_record)


class RuleMismatchError(TapegradError, AssertionError):
    """A record's stored partial derivative disagrees with finite differences."""


def _record_function(tape: Tape, k: int) -> tuple[list[float], Callable | None]:
    """Record k as a float function of its traced operands' values (None if unknown)."""
    info = OPS[tape.ops[k]]
    rec = tape[k]
    xs = [plain(tape.values[j]) for j in rec.inputs if j is not None]
    consts = [plain(c) for c in rec.constants]
    if info.kind == "sum":
        return xs, lambda v: math.fsum(v) + consts[0]
    if info.kind == "dot":
        xi, yi, xv, yv, bi, bv, act, _ = tape.nary[-2 - tape.a0[k]]

        xi = xi or (-1,) * len(xv)
        yi = yi or (-1,) * len(yv)
        activation = VALUE_AND_PARTIAL[act] if act else None

        def dot_of(v: list[float]) -> float:
            it = iter(v)
            left = [next(it) if j >= 0 else plain(c) for j, c in zip(xi, xv)]
            right = [next(it) if j >= 0 else plain(c) for j, c in zip(yi, yv)]
            bias = next(it) if bi >= 0 else plain(bv)
            total = math.fsum([a * b for a, b in zip(left, right)] + [bias])
            return activation(total)[0] if activation else total

        return xs, dot_of
    if info.kind == "custom":
        # A custom record can be re-evaluated only if its entry carries the function.
        entry = tape.nary[-2 - tape.a0[k]]
        value = entry[3] if len(entry) > 3 and callable(entry[3]) else None
        return xs, (lambda v: plain(value(*v))) if value is not None else None
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


def _check(tape: Tape, eps: float, tol: float) -> tuple[float, list[int]]:
    """Largest relative error over the checkable records, and the custom ones not checkable."""
    worst = 0.0
    unchecked = []
    for k in range(len(tape)):
        if tape.ops[k] == 0:
            continue
        if OPS[tape.ops[k]].kind == "array":
            worst = max(worst, _check_array_record(tape, k, eps, tol))
            continue
        xs, fn = _record_function(tape, k)
        if fn is None:
            unchecked.append(k)
            continue
        rec = tape[k]
        inputs = [j for j in rec.inputs if j is not None]
        partials = [plain(d) for d in rec.partials]
        for p, (x, d) in enumerate(zip(xs, partials)):
            h = eps * max(1.0, abs(x))
            up, down = list(xs), list(xs)
            up[p] = x + h
            down[p] = x - h
            try:
                fd = (fn(up) - fn(down)) / (2 * h)
            except (ValueError, ZeroDivisionError, OverflowError):
                continue  # at a domain edge the difference quotient does not exist
            if not (math.isfinite(fd) and math.isfinite(d)):
                continue
            err = abs(d - fd) / max(1.0, abs(d), abs(fd))
            if err > tol:
                raise RuleMismatchError(
                    f"the derivative rule of record {describe_record(tape, k)} disagrees with "
                    f"finite differences for operand {p} ({tape.name(inputs[p])}): the "
                    f"partial on the tape is {d:.6g}, central differences give {fd:.6g} "
                    f"(relative error {err:.2g}). Look at the rule of "
                    f"{_rule_name(tape, k)!r} first."
                )
            worst = max(worst, err)
    return worst, unchecked


def unchecked_records(tape: Tape, eps: float = 1e-6, tol: float = 1e-4
                      ) -> tuple[float, list[int]]:
    """:func:`check_tape`, also returning the custom records it could not re-evaluate."""
    return _check(tape, eps, tol)


def _check_array_record(tape: Tape, k: int, eps: float, tol: float, samples: int = 12
                        ) -> float:
    """An array record's rule against central differences at its recorded operands.

    An array record keeps a rule, not partials: its vector-Jacobian product with
    fixed irregular weights ``w`` is compared, for up to ``samples`` elements of each
    float operand, with the difference quotient of ``sum(w * operation(operands))``.
    """
    import numpy as np

    prim, inputs, operands, params, out = tape.nary[-2 - tape.a0[k]]
    if prim.vjp is None:
        return 0.0  # no derivative: no sweep edges to check
    operands = [primal(v) for v in operands]
    out = np.asarray(primal(out))
    rng = np.random.default_rng(k)
    w = rng.uniform(0.5, 1.5, out.shape) * rng.choice([-1.0, 1.0], out.shape)
    needs = tuple(j >= 0 for j in inputs)
    cts = prim.vjp(w, out, *operands, needs=needs, **params)
    worst = 0.0
    for p, (j, x, ct) in enumerate(zip(inputs, operands, cts)):
        if j < 0 or ct is None or np.asarray(x).dtype.kind != "f":
            continue
        ct = np.broadcast_to(np.asarray(primal(ct), dtype=np.float64), np.shape(x))
        size = int(np.size(x))
        for e in sorted({int(i) for i in np.linspace(0, size - 1, min(samples, size))}):
            quotient = []
            for sign in (1.0, -1.0):
                moved = np.array(x, dtype=np.float64, copy=True)
                h = eps * max(1.0, abs(float(moved.flat[e])))
                moved.flat[e] += sign * h
                args = list(operands)
                args[p] = moved.astype(np.asarray(x).dtype) if np.ndim(x) else moved
                quotient.append(float(np.sum(w * np.asarray(prim.impl(*args, **params)))))
            fd = (quotient[0] - quotient[1]) / (2 * h)
            d = float(ct.flat[e])
            if not (math.isfinite(fd) and math.isfinite(d)):
                continue
            err = abs(d - fd) / max(1.0, abs(d), abs(fd))
            if err > tol:
                raise RuleMismatchError(
                    f"the derivative rule of record {describe_record(tape, k)} disagrees with "
                    f"finite differences for operand {p} ({tape.name(j)}) at element {e}: its "
                    f"vector-Jacobian product gives {d:.6g}, central differences {fd:.6g} "
                    f"(relative error {err:.2g}). Look at the rule of {prim.name!r} first.")
            worst = max(worst, err)
    return worst


def check_tape(tape: Tape, eps: float = 1e-6, tol: float = 1e-4) -> float:
    """Check every record's stored partials against central differences at its inputs.

    Returns the largest relative error; raises :class:`RuleMismatchError` naming
    the first record (in tape order) whose partials disagree by more than ``tol``.
    Custom-rule records are checked when their tape entry carries the function
    itself; :func:`check_records` also covers the others.

    >>> import tapegrad as tg
    >>> check_tape(tg.trace(lambda x: tg.sin(x) * x)(0.7)) < 1e-6
    True
    """
    return _check(tape, eps, tol)[0]
