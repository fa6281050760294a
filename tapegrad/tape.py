"""The Wengert tape: an append-only list of records, and the sweeps that read it.

While a transform records a function, every primitive operation on a traced
value appends one record: which operation ran, the indices of its inputs, its
value, and the partial derivative of its output with respect to each input,
computed right then ("partials at record time"). When the function returns, the
recorder is frozen into a :class:`Tape`, which can be printed, iterated, and
swept: backwards for reverse mode (adjoints) or forwards for forward mode
(tangents).

Why columns and not one object per record
-----------------------------------------
A record is written once and never changed, so it is stored as one entry in
each of six parallel columns (operation code, value, first input, second input,
first partial, second partial) instead of as an object. Appending to a Python
list is the cheapest thing the interpreter can do for us (about 15 ns); an
object per record would cost an allocation and a reference-cycle-free but
GC-tracked header on top. To keep memory low the list columns are moved into
typed ``array`` columns every 4096 records (8 bytes a number instead of a
pointer plus a boxed float), so a long tape costs about 45 bytes per record,
about 74 during a gradient with the adjoints (micrograd's nodes: about 930).
Packing costs about 30 ns a record; a tuple per record appended to one list was
measured too and came out no faster once its index bookkeeping and packing were
paid. Tapes nested inside another trace hold traced values of the outer trace
in their columns, so they stay as lists.

Encoding. Records with one traced input keep it in the first slot and store -1
in the second; the second partial column then holds the constant operand (the
``3.0`` of ``x * 3.0``), which the sweeps ignore and printing and the compiler
use. N-ary records (``sum``, ``dot``, custom rules, and the fused neurons of
``dense``) store ``-2 - code`` in the
second slot (so the sweep knows the kind without reading the op column) and,
in the first slot, ``-2 - k`` where ``k`` indexes the tape's ``nary`` list that
holds their operands. Leaves (the inputs being differentiated) store -1
in both slots. :class:`Record` is the readable, frozen view of one record.

Records whose derivative is zero (``stop_gradient``, ``sign``, ``//``) are n-ary
records with no edge to their inputs: a zero partial times an infinite adjoint
would be NaN, and a blocked derivative must stay blocked.

Rules compute in IEEE arithmetic. User code keeps Python's float exceptions
(``log(0)`` raises ``ValueError`` as ``math.log`` does), but a derivative at a
domain edge is a number (``sqrt'(0)`` is inf), so while a rule runs (the
partials of a nested record, the generic sweeps) an operation that would raise
returns its IEEE value instead (:func:`rules_on`). A jit trace remembers which
records got such a value (``ieee``) so that its generated code does the same.

Layers. This module is the bottom of the tape side and imports nothing above
it; what the sweeps and the printers need from above (how to add up adjoint
contributions, how to print a record) is installed into :data:`HOOKS` by the
modules that define it.
"""

from __future__ import annotations

import struct
import sys
import threading
import time
from array import array
from collections.abc import Iterator, Sequence
from typing import Any, Callable, NamedTuple

import attrs

from .errors import ESCAPED_MESSAGE, EscapedTracerError

__all__ = ["Record", "Tape", "Recorder", "Guard"]

NO_INPUT = -1
NARY = -2  # a1 below this marks an n-ary record: a1 == NARY - code
CHUNK_MASK = 4095  # compact the list columns into arrays every 4096 records

# Operation codes are small ints indexing OPS, which primitives.py fills in.
# Code 0 is a leaf (an input of the traced function); the n-ary records come next.
LEAF, SUM, DOT, CUSTOM, DENSE = 0, 1, 2, 3, 4  # DENSE: a dot of dense(), no constants
_DOT_MARK = NARY - DOT
_DENSE_MARK = NARY - DENSE
OPS: list[Any] = [None]  # OPS[code] -> OpInfo; set up by primitives.py

# Zero meets infinity. In the chain rule a product g * d (adjoint or tangent times
# partial) is IEEE arithmetic: 0 * inf is NaN, because the limit it stands for can be
# anything (d/dx (x**3) ** (1/3) at 0 is 1, d/dx (x ** (1/3)) ** 2 is inf). A zero sends
# nothing only where it is structural, meaning no dependence whatever the values:
#   - an adjoint or tangent nothing contributed to (the sweeps skip it);
#   - a zero partial of a kink (SELECT: relu, abs, maximum, minimum): the function is
#     locally constant there, or 0 is the documented choice at the kink;
#   - a zero partial that is a constant factor (CONSTANT_FACTOR: x * 0.0, and dot's
#     constant terms) or the constant exponent 0 (CONSTANT_POWER: x ** 0.0);
#   - a record with derivative zero (stop_gradient, sign, step, //): it has no edge.
# The float sweeps run plainly and run again with these rules spelled out
# (_careful_reverse, _careful_forward) only when they may differ: when a zero they
# skipped met a partial that is not finite, or a NaN came out. The generic sweeps
# (nested, jit) follow the rules directly. Filled by primitives.py.
SELECT: set[int] = set()
CONSTANT_FACTOR: set[int] = set()
CONSTANT_POWER: set[int] = set()

# The traced types (Tracer, and ArrayTracer once arrays are imported): filled by tracer.py.
_TRACED_TYPES: set[type] = set()

# What the sweeps and printers need from the layers above, installed by them at import:
#   "combine"  primitives.linear_combination: sum(g * d for g, d in pairs), recorded compactly
#   "chain_mul" primitives.chain_mul: g * d with 0 * inf = 0, for a kink's traced partial
#   "forward", "reverse", "draw", "html", "stats", "describe"  the renderers of viz.py
HOOKS: dict[str, Any] = {}


def _hook(name: str) -> Any:
    try:
        return HOOKS[name]
    except KeyError:
        raise RuntimeError(f"tapegrad: {name!r} is not installed; import tapegrad, "
                           "not tapegrad.tape alone") from None


class Guard(NamedTuple):
    """A decision a trace took on traced values, which a replay of the tape must re-check.

    ``kind`` is ``"compare"`` (``op`` is the comparison symbol and ``outcome`` its
    bool result), ``"isfinite"``/``"isnan"`` (``outcome`` the bool result) or
    ``"raises"`` (``op`` is the operation code that raised and ``outcome`` the
    exception type: user code caught a domain error, which is control flow too).
    ``position`` is the number of records on the tape when it was taken;
    ``inputs`` are record indices (-1 for a constant, whose value is in
    ``constants``).
    """

    position: int
    kind: str
    op: Any
    inputs: tuple
    constants: tuple
    outcome: Any


_PACKERS: dict[int, tuple[struct.Struct, struct.Struct]] = {}


def _packers(n: int) -> tuple[struct.Struct, struct.Struct]:
    """Cached struct packers for n doubles and n 64-bit ints."""
    try:
        return _PACKERS[n]
    except KeyError:
        pair = (struct.Struct(f"{n}d"), struct.Struct(f"{n}q"))
        if n == CHUNK_MASK + 1:
            _PACKERS[n] = pair
        return pair


class _ClosedColumn:
    """Stands in for the columns of a finished recorder: any append is an escaped tracer."""

    __slots__ = ()

    def __len__(self) -> int:
        return 0

    def append(self, _item: Any) -> None:
        raise EscapedTracerError(ESCAPED_MESSAGE)


_CLOSED = _ClosedColumn()


class Recorder:
    """The mutable, append-only state of one running trace (internal).

    Traced values point at their recorder; the recorder points at nothing that
    points back, so finished traces are freed by reference counting alone.
    """

    __slots__ = (
        "ops", "vals", "a0", "a1", "d0", "d1",
        "_cvals", "_ca0", "_ca1", "_cd0", "_cd1",
        "nary", "level", "nested", "names", "guards", "closed", "created", "operands",
        "ieee", "arrays",
    )

    def __init__(self, level: int, nested: bool, guards: bool = False) -> None:
        self.ops = bytearray()
        self.vals: list = []
        self.a0: list = []
        self.a1: list = []
        self.d0: list = []
        self.d1: list = []
        # Compacted prefix of the columns (flat tapes only), made at the first
        # compaction: short tapes never need them.
        self._cvals: Any = None
        self._ca0: Any = None
        self._ca1: Any = None
        self._cd0: Any = None
        self._cd1: Any = None
        self.nary: list = []
        # Unpacked operand tuples of dot (the weights of a layer are the same tuple
        # for every sample), keyed by id and holding the tuple so the id stays
        # valid; cleared when the trace closes, so it never outlives the trace.
        self.operands: dict[int, tuple] = {}
        self.level = level
        self.nested = nested
        self.names: dict[int, str] = {}
        self.guards: list | None = [] if guards else None
        # Records whose value a rule computed in IEEE arithmetic (see rules_on).
        self.ieee: set[int] = set()
        # Set by the first array record: the sweeps then take their general path.
        self.arrays = False
        self.closed = False
        self.created = time.perf_counter()

    def compact(self) -> None:
        """Move the list columns into the typed arrays (flat tapes only).

        ``struct`` packs a list of floats about five times faster than
        ``array.extend`` converts it, so compaction costs about 30 ns a record.
        """
        if self.nested or self.closed:
            return
        if self._cvals is None:
            self._cvals, self._ca0, self._ca1 = array("d"), array("q"), array("q")
            self._cd0, self._cd1 = array("d"), array("d")
        n = len(self.vals)
        doubles, longs = _packers(n)
        try:
            d0 = doubles.pack(*self.d0)
            d1 = doubles.pack(*self.d1)
            vals = doubles.pack(*self.vals)
        except struct.error:
            # A traced value slipped into a column (a custom rule returning a
            # tracer of this very trace). Keep lists from now on rather than lose it.
            self._to_lists()
            return
        self._cvals.frombytes(vals)
        self._cd0.frombytes(d0)
        self._cd1.frombytes(d1)
        self._ca0.frombytes(longs.pack(*self.a0))
        self._ca1.frombytes(longs.pack(*self.a1))
        for col in (self.vals, self.a0, self.a1, self.d0, self.d1):
            col.clear()

    def _to_lists(self) -> None:
        self.vals[:0] = self._cvals.tolist()
        self.a0[:0] = self._ca0.tolist()
        self.a1[:0] = self._ca1.tolist()
        self.d0[:0] = self._cd0.tolist()
        self.d1[:0] = self._cd1.tolist()
        self._cvals, self._ca0, self._ca1 = array("d"), array("q"), array("q")
        self._cd0, self._cd1 = array("d"), array("d")
        self.nested = True

    def leaves(self, values: list, names: Any = None) -> range:
        """Append one input record per value; return their indices."""
        start = len(self.ops)
        n = len(values)
        self.ops.extend(bytes(n))
        self.vals.extend(values)
        self.a0.extend([NO_INPUT] * n)
        self.a1.extend([NO_INPUT] * n)
        self.d0.extend([0.0] * n)
        self.d1.extend([0.0] * n)
        if names is not None:
            for i, name in zip(range(start, start + n), names):
                if name is not None:
                    self.names[i] = name
        if len(self.vals) > CHUNK_MASK:
            self.compact()
        return range(start, start + n)

    def freeze(self) -> Tape:
        """Close the recorder and return its records as an immutable :class:`Tape`.

        A tape that never filled a chunk keeps its list columns (nothing to save,
        and the sweep reads lists faster); a longer flat one is packed entirely.
        """
        packed = self._cvals is not None
        if packed and not self.nested:
            self.compact()
        if packed and (self.nested or self.vals):  # a packed prefix plus list columns
            cols = [self._cvals.tolist() + self.vals, self._ca0.tolist() + self.a0,
                    self._ca1.tolist() + self.a1, self._cd0.tolist() + self.d0,
                    self._cd1.tolist() + self.d1]
        elif packed:
            cols = [self._cvals, self._ca0, self._ca1, self._cd0, self._cd1]
        else:
            cols = [self.vals, self.a0, self.a1, self.d0, self.d1]
        tape = Tape(
            ops=bytes(self.ops),
            values=cols[0], a0=cols[1], a1=cols[2], d0=cols[3], d1=cols[4],
            nary=tuple(self.nary),
            names=dict(self.names),
            guards=tuple(self.guards) if self.guards is not None else (),
            ieee=frozenset(self.ieee),
            arrays=self.arrays,
            level=self.level,
            nested=self.nested,
            record_seconds=time.perf_counter() - self.created,
        )
        self.close()
        return tape

    def close(self) -> None:
        """Stop recording: later use of this trace's values raises EscapedTracerError."""
        self.closed = True
        self.ops = self.vals = self.a0 = self.a1 = self.d0 = self.d1 = _CLOSED  # type: ignore[assignment]
        self._cvals = self._ca0 = self._ca1 = self._cd0 = self._cd1 = None  # type: ignore[assignment]
        self.nary = _CLOSED  # type: ignore[assignment]
        self.operands = {}


# ---------------------------------------------------------------------------
# The per-thread stack of open recorders. A recorder's level is its depth in the
# stack; a traced value of a deeper (more recent) trace treats values of outer
# traces as constants, which is what keeps nested derivatives apart.
# ---------------------------------------------------------------------------

_local = threading.local()


def active() -> list[Recorder]:
    """The open recorders of this thread, outermost first."""
    try:
        return _local.stack
    except AttributeError:
        _local.stack = []
        return _local.stack


def open_recorder(guards: bool = False) -> Recorder:
    stack = active()
    rec = Recorder(level=len(stack) + 1, nested=bool(stack), guards=guards)
    stack.append(rec)
    return rec


def pop_recorder(rec: Recorder) -> None:
    stack = active()
    if stack and stack[-1] is rec:
        stack.pop()
    elif rec in stack:  # an exception unwound an inner trace without popping it
        del stack[stack.index(rec):]


# Rule mode: a per-thread depth counter, read only on the exceptional path of an
# operation, so that the float fast path pays nothing for it.


def rules_on() -> None:
    """Enter rule mode: float operations return IEEE values instead of raising."""
    _local.rules = getattr(_local, "rules", 0) + 1


def rules_off() -> None:
    """Leave rule mode (pairs with :func:`rules_on`)."""
    _local.rules -= 1


def in_rules() -> bool:
    """True while a derivative rule runs in this thread (see :func:`rules_on`)."""
    return getattr(_local, "rules", 0) > 0


def with_rules(fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` in rule mode."""
    rules_on()
    try:
        return fn(*args)
    finally:
        rules_off()


# ---------------------------------------------------------------------------
# Records and the frozen tape.
# ---------------------------------------------------------------------------


@attrs.frozen
class Record:
    """One line of the Wengert list: ``values[index] = op(*inputs)``.

    ``inputs`` are record indices (``None`` for a constant operand, whose value is
    in ``constants``); ``partials`` are d(output)/d(input) for each traced input.
    """

    index: int
    op: str
    inputs: tuple
    value: Any
    partials: tuple
    constants: tuple = ()
    name: str | None = None


def _is_zero(g: Any) -> bool:
    return type(g) is float and g == 0.0


def _scaled(g: Any, d: Any) -> Any:
    """g * d, without recording a multiplication by an exact 1 or -1."""
    if type(d) is float:
        if d == 1.0:
            return g
        if d == -1.0:
            return -g
    if type(g) is float and g == 1.0:
        return d
    return g * d


def _accumulate(adj: list, i: int, contribution: Any) -> None:
    """adj[i] += contribution, without recording an addition to an exact zero."""
    cur = adj[i]
    adj[i] = contribution if _is_zero(cur) else cur + contribution


@attrs.frozen(eq=False, repr=False)
class Tape:
    """The immutable record of one traced call: a Wengert list.

    ``str(tape)`` prints one line per record; ``len(tape)``, indexing and iteration
    give :class:`Record` views. ``backward`` and ``forward`` run the reverse and
    forward sweeps over it.

    >>> import tapegrad as tg
    >>> tape = tg.trace(lambda x, y: x * y + y)(2.0, 3.0)
    >>> len(tape)
    4
    >>> print(tape)
    %0 = input                       # 2
    %1 = input                       # 3
    %2 = %0 * %1                     # 6
    %3 = %2 + %1                     # 9
    """

    ops: bytes
    values: Sequence
    a0: Sequence
    a1: Sequence
    d0: Sequence
    d1: Sequence
    nary: tuple
    names: dict
    guards: tuple = ()
    ieee: frozenset = frozenset()
    arrays: bool = False
    level: int = 1
    nested: bool = False
    record_seconds: float = 0.0
    outputs: tuple = ()
    inputs: tuple = ()
    timings: dict = attrs.field(factory=dict)

    # -- reading ---------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.ops)

    def __getitem__(self, i: int) -> Record:
        n = len(self.ops)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"record index {i} out of range for a tape of {n} records")
        return OPS[self.ops[i]].record(self, i) if self.ops[i] else Record(
            i, "input", (), self.values[i], (), (), self.names.get(i)
        )

    def __iter__(self) -> Iterator[Record]:
        return (self[i] for i in range(len(self.ops)))

    def name(self, i: int) -> str:
        """The label of record ``i``: its given name, or ``%i``."""
        return self.names.get(i) or f"%{i}"

    def __str__(self) -> str:
        return _hook("forward")(self)

    def __repr__(self) -> str:
        return f"<Tape: {len(self)} records, level {self.level}>"

    def format_reverse(self) -> str:
        """The reverse sweep as text: each record's adjoint and what it sends to its inputs."""
        return _hook("reverse")(self)

    def draw(self, **options: Any) -> Any:
        """The tape as a ``graphviz.Digraph`` in tape order, with values and adjoints."""
        return _hook("draw")(self, **options)

    def _repr_html_(self) -> str:
        return _hook("html")(self)

    # -- sweeps -----------------------------------------------------------------
    def backward(self, seeds: dict[int, Any]) -> list:
        """Reverse sweep: the adjoint of every record, given output cotangents.

        The tape is already in evaluation order, so walking it backwards visits
        every record after all the records that use it: no topological sort is
        needed. Reads default to zero and writes add.
        """
        start = time.perf_counter()
        n = len(self.ops)
        adj: list = [0.0] * n
        flat = True
        for i, g in seeds.items():
            if type(g) is not float:
                flat = False
            _accumulate(adj, i, g)
        if flat and not self.nested and not self.arrays:
            suspect = _reverse_floats(self, adj)
            total = sum(adj)
            if suspect or total != total:  # a zero may have met inf or NaN: see SELECT
                adj = _careful_reverse(self, seeds)
        elif not self.nested and not any(type(g) in _TRACED_TYPES for g in seeds.values()):
            with_rules(_reverse_values, self, adj)
        else:
            with_rules(_reverse_generic, self, adj)
        self.timings["backward"] = time.perf_counter() - start
        return adj

    def forward(self, seeds: dict[int, Any]) -> list:
        """Forward sweep: the tangent of every record, given input tangents.

        Each record's tangent is the sum of its inputs' tangents times its partials
        (for an n-ary record, what its rule makes of its inputs' tangents), computed
        in tape order.
        """
        if not self.nested and not self.arrays and all(
                type(t) is float for t in seeds.values()):
            tangents, suspect = with_rules(_forward_floats, self, seeds)
            total = sum(tangents)
            if suspect or total != total:  # a zero may have met inf or NaN: see SELECT
                tangents = with_rules(_careful_forward, self, seeds)
            return tangents
        return with_rules(_forward_sweep, self, seeds)

    def stats(self) -> str:
        """Records by operation, total records, bytes held, and sweep timings."""
        return _hook("stats")(self)


def _reverse_floats(tape: Tape, adj: list) -> bool:
    """The first-order reverse sweep: every adjoint and partial is a float.

    It skips zero adjoints. Returns whether one of them met a partial that is not
    finite, where the zero rules (see SELECT) may give NaN instead of nothing.
    """
    nary = tape.nary
    suspect = False
    for g, a, b, da, db in zip(
        reversed(adj), reversed(tape.a0), reversed(tape.a1), reversed(tape.d0), reversed(tape.d1)
    ):
        if not g:
            if a >= 0:
                if da - da or (b >= 0 and db - db):  # inf - inf and NaN - NaN are NaN
                    suspect = True
            elif b < NO_INPUT and not suspect:
                suspect = _nary_not_finite(nary[-2 - a], b)
        else:
            if b >= 0:
                adj[a] += g * da
                adj[b] += g * db
            elif a >= 0:
                adj[a] += g * da
            elif b < NO_INPUT:
                if b == _DENSE_MARK:  # inlined: one neuron of a layer
                    xi, yi, xv, yv, bi, _, act, ad = nary[-2 - a]
                    if act:  # an activation fused into the record: chain rule first
                        g *= ad
                    # Plain loops: the interpreter specialises float * and += on
                    # a list, which beats map() with bound methods here.
                    for j, w in zip(xi, yv):
                        adj[j] += g * w
                    if yi is not None:
                        for j, w in zip(yi, xv):
                            adj[j] += g * w
                    adj[bi] += g
                elif b == _DOT_MARK:  # a dot that may hold constants (index -1)
                    xi, yi, xv, yv, bi, _, act, ad = nary[-2 - a]
                    if act:
                        g *= ad
                    if xi is not None:
                        for j, w in zip(xi, yv):
                            if j >= 0:
                                adj[j] += g * w
                    if yi is not None:
                        for j, w in zip(yi, xv):
                            if j >= 0:
                                adj[j] += g * w
                    if bi >= 0:
                        adj[bi] += g
                else:
                    for j, c in OPS[NARY - b].nary_adjoints(nary[-2 - a], g):
                        adj[j] += c
    return suspect


def _nary_not_finite(entry: tuple, b: int) -> bool:
    """Whether an n-ary record's partials may not be finite (for the float sweeps)."""
    if b == _DENSE_MARK or b == _DOT_MARK:
        _, _, xv, yv, _, _, act, ad = entry
        total = sum(xv or ()) + sum(yv or ()) + (ad if act else 0.0)
        return total - total != 0.0
    return OPS[NARY - b].kind == "custom"  # its rule's arithmetic is unknown: check


def _structural(op: int, d: Any, constant: Any) -> bool:
    """Whether a zero partial ``d`` of a record of operation ``op`` is structural (see
    SELECT): no dependence whatever the values. ``constant`` is the record's constant
    operand (its ``d1`` column), for x ** 0.0."""
    return d == 0.0 and (op in SELECT or op in CONSTANT_FACTOR or (
        op in CONSTANT_POWER and constant == 0.0))


def _careful_reverse(tape: Tape, seeds: dict[int, Any]) -> list:
    """The first-order float reverse sweep with the zero rules spelled out (see SELECT).

    The plain version of _reverse_floats, run when the tape holds an infinity or a
    NaN: an adjoint is None until something contributes to it, a structural zero
    partial sends nothing, and every other product is IEEE arithmetic (0 * inf is
    NaN), including a zero adjoint that contributions added up to.
    """
    ops, nary, a0, a1, d0, d1 = tape.ops, tape.nary, tape.a0, tape.a1, tape.d0, tape.d1
    adj: list = [None] * len(ops)
    for i, g in seeds.items():  # a zero seed is no cotangent at all
        if g != 0.0:
            adj[i] = g if adj[i] is None else adj[i] + g
    for k in range(len(ops) - 1, -1, -1):
        g = adj[k]
        if g is None:
            continue
        a = a0[k]
        b = a1[k]
        op = ops[k]
        if a >= 0:
            if not _structural(op, d0[k], d1[k] if b < 0 else None):
                c = g * d0[k]
                adj[a] = c if adj[a] is None else adj[a] + c
            if b >= 0 and not _structural(op, d1[k], None):
                c = g * d1[k]
                adj[b] = c if adj[b] is None else adj[b] + c
        elif b < NO_INPUT:
            info = OPS[op]
            if info.kind == "custom":  # its bwd sees the real cotangent
                contributions: Any = info.nary_adjoints(nary[-2 - a], g)
            else:
                contributions = ((j, g * d) for j, d, structural in info.nary_terms(
                    nary[-2 - a]) if not (structural and d == 0.0))
            for j, c in contributions:
                adj[j] = c if adj[j] is None else adj[j] + c
    return [0.0 if g is None else g for g in adj]


def _careful_forward(tape: Tape, seeds: dict[int, Any]) -> list:
    """The first-order float forward sweep with the zero rules spelled out (see above)."""
    a0, a1, d0, d1, ops, nary = tape.a0, tape.a1, tape.d0, tape.d1, tape.ops, tape.nary
    tan: list = [None] * len(ops)
    for k, t in seeds.items():  # a zero component of the direction is no tangent at all
        if t != 0.0:
            tan[k] = t
    for k in range(len(ops)):
        a = a0[k]
        b = a1[k]
        op = ops[k]
        if a >= 0:
            t = None
            if tan[a] is not None and not _structural(op, d0[k], d1[k] if b < 0 else None):
                t = tan[a] * d0[k]
            if b >= 0 and tan[b] is not None and not _structural(op, d1[k], None):
                t = tan[b] * d1[k] if t is None else t + tan[b] * d1[k]
            tan[k] = t
        elif b < NO_INPUT:
            terms = [tan[j] * d for j, d, structural in OPS[op].nary_terms(nary[-2 - a])
                     if tan[j] is not None and not (structural and d == 0.0)]
            tan[k] = sum(terms) if terms else None
    return [0.0 if t is None else t for t in tan]


def _reverse_values(tape: Tape, adj: list) -> None:
    """The first-order reverse sweep when adjoints are values that are not all floats.

    That is a flat tape with array records: adjoints are arrays (and floats for
    scalar records); array records hand their adjoint to their rule, which returns
    one cotangent per traced input. Writes add (a new array: a cotangent may be
    shared by two inputs, as the two operands of ``add``, so none is changed in place).
    """
    ops, nary, a0, a1, d0, d1 = tape.ops, tape.nary, tape.a0, tape.a1, tape.d0, tape.d1
    for k in range(len(ops) - 1, -1, -1):
        g = adj[k]
        if type(g) is float and g == 0.0:
            continue
        a = a0[k]
        b = a1[k]
        if a >= 0:
            c = g * d0[k]
            cur = adj[a]
            adj[a] = c if type(cur) is float and cur == 0.0 else cur + c
            if b >= 0:
                c = g * d1[k]
                cur = adj[b]
                adj[b] = c if type(cur) is float and cur == 0.0 else cur + c
        elif b < NO_INPUT:
            for j, c in OPS[ops[k]].nary_adjoints(nary[-2 - a], g):
                cur = adj[j]
                adj[j] = c if type(cur) is float and cur == 0.0 else cur + c


def _reverse_generic(tape: Tape, adj: list) -> None:
    """The reverse sweep when adjoints are not all floats.

    That is when adjoints or partials are traced values of an outer trace (the
    arithmetic then records on the outer tape, which is how a gradient becomes
    differentiable again, ``grad(grad(f))``, and how ``jit`` captures a reverse
    sweep), or when the tape holds array records (whose adjoints are arrays). So
    that an outer tape stays short, contributions to an adjoint are collected as
    (adjoint, partial) pairs and combined only when the sweep reaches that record:
    one ``dot`` record instead of a multiply and an add per pair. The zero rules
    (see SELECT) hold as in the float sweeps: a record nothing contributed to is
    skipped, structural zeros send nothing, and every other product is IEEE.
    """
    combine = _hook("combine")
    ops, nary, a0, a1, d0, d1 = tape.ops, tape.nary, tape.a0, tape.a1, tape.d0, tape.d1
    pending: list = [None] * len(ops)
    for k, g in enumerate(adj):
        if not _is_zero(g):
            pending[k] = [(g, 1.0)]
    for k in range(len(ops) - 1, -1, -1):
        pairs = pending[k]
        if pairs is None:
            continue  # nothing contributed: no dependence
        pending[k] = None
        g = adj[k] = combine(pairs)
        a = a0[k]
        b = a1[k]
        op = ops[k]
        if a >= 0:
            _send(pending, a, g, d0[k], op, d1[k] if b < 0 else None)
            if b >= 0:
                _send(pending, b, g, d1[k], op, None)
        elif b < NO_INPUT:
            info = OPS[op]
            if info.kind in ("custom", "array"):  # its rule sees the real cotangent
                for j, pair in info.nary_adjoints(nary[-2 - a], g, lazy=True):
                    _push(pending, j, pair)
                continue
            for j, d, structural in info.nary_terms(nary[-2 - a]):
                if not (structural and type(d) is float and d == 0.0):
                    _send(pending, j, g, d, -1, None)


def _send(pending: list, j: int, g: Any, d: Any, op: int, constant: Any) -> None:
    """Push record j's contribution g * d, by the zero rules (see SELECT)."""
    if type(d) is float and _structural(op, d, constant):
        return  # a structural zero
    if op in SELECT and type(d) is not float:
        if _zero_now(d):
            return  # a kink's zero, and no compiled code will run this at other values
        _push(pending, j, (_hook("chain_mul")(g, d), 1.0))  # a kink's zero wins: traced
        return
    if _is_zero(g):
        # A zero adjoint that contributions added up to: 0 * d, which is NaN where d is
        # infinite (pushed even when it is 0: the record has been reached).
        _push(pending, j, (g * d, 1.0) if type(d) is float else (d * 0.0, 1.0))
        return
    _push(pending, j, (g, d))


def _zero_now(d: Any) -> bool:
    """Whether traced ``d`` is zero, where looking is no decision to guard: no trace that
    ``d``'s value passes through records guards (no jit). A kink's partial (sign, step)
    has no derivative, so leaving out its zero edge loses nothing one level up."""
    while type(d) in _TRACED_TYPES:
        if d._tape.guards is not None:
            return False
        d = d._value
    return type(d) is float and d == 0.0


def _push(pending: list, j: int, pair: tuple) -> None:
    if pending[j] is None:
        pending[j] = [pair]
    else:
        pending[j].append(pair)


def _forward_floats(tape: Tape, seeds: dict[int, Any]) -> tuple[list, bool]:
    """The forward sweep when every tangent is a float (first order, no arrays).

    It skips zero tangents. Returns the tangents and whether a skipped one met a
    partial that is not finite, where the zero rules (see SELECT) may give NaN.
    """
    a0, a1, d0, d1, ops, nary = tape.a0, tape.a1, tape.d0, tape.d1, tape.ops, tape.nary
    tan: list = [0.0] * len(ops)
    for k, t in seeds.items():
        tan[k] = t
    suspect = False
    for k in range(len(ops)):
        a = a0[k]
        b = a1[k]
        if a >= 0:
            ta = tan[a]
            if ta:
                t = ta * d0[k]
            else:
                t = 0.0
                if d0[k] - d0[k]:  # inf - inf and NaN - NaN are NaN
                    suspect = True
            if b >= 0:
                tb = tan[b]
                if tb:
                    t += tb * d1[k]
                elif d1[k] - d1[k]:
                    suspect = True
            tan[k] = t
        elif b < NO_INPUT:
            if not suspect:
                suspect = _nary_not_finite(nary[-2 - a], b)
            tan[k] = OPS[ops[k]].tangent(nary[-2 - a], tan)
    return tan, suspect


def _forward_sweep(tape: Tape, seeds: dict[int, Any]) -> list:
    """The forward sweep when tangents or partials are not all floats.

    The zero rules hold as in the reverse sweep (see SELECT): a tangent is None
    until an input's tangent reaches it, structural zeros send nothing, and every
    other product is IEEE.
    """
    combine = _hook("combine")
    a0, a1, d0, d1, ops, nary = tape.a0, tape.a1, tape.d0, tape.d1, tape.ops, tape.nary
    tan: list = [None] * len(ops)
    for k in range(len(ops)):
        a = a0[k]
        b = a1[k]
        if a >= 0:
            pending: list = [None]
            op = ops[k]
            if tan[a] is not None:
                _send(pending, 0, tan[a], d0[k], op, d1[k] if b < 0 else None)
            if b >= 0 and tan[b] is not None:
                _send(pending, 0, tan[b], d1[k], op, None)
            if pending[0] is not None:
                tan[k] = combine(pending[0])
        elif b < NO_INPUT and OPS[ops[k]].kind == "array":  # its rule takes the tangents
            tan[k] = OPS[ops[k]].tangent(nary[-2 - a], tan)
        elif b < NO_INPUT:
            pending = [None]
            for j, d, structural in OPS[ops[k]].nary_terms(nary[-2 - a]):
                t = tan[j]
                if t is not None and not (structural and type(d) is float and d == 0.0):
                    _send(pending, 0, t, d, -1, None)
            if pending[0] is not None:
                tan[k] = combine(pending[0])
        elif k in seeds and not _is_zero(seeds[k]):  # a zero component: no tangent
            tan[k] = seeds[k]
    return [0.0 if t is None else t for t in tan]


def column_bytes(col: Any) -> int:
    """Bytes held by one column, counting boxed floats in lists and array values' data."""
    if isinstance(col, array):
        return sys.getsizeof(col)
    return sys.getsizeof(col) + sum(sys.getsizeof(v) if type(v) is float else
                                    getattr(v, "nbytes", 0) for v in col)
