"""Pytrees: nested containers of numbers, flattened to a list of leaves and back.

A pytree is a leaf or a container of pytrees. Transforms flatten their arguments
to find the numbers to differentiate, and unflatten gradients, tangents and
outputs back into the user's own structure. The conventions are JAX's.

Containers, and the order of their children:

- ``tuple``, ``list`` and ``None`` (a container with no children).
- ``dict``: children in sorted key order, so two dicts with the same keys have
  the same structure whatever order the keys were inserted in, and a rebuilt
  dict has its keys sorted. When the keys cannot be sorted together (``1`` and
  ``"a"``) they keep their insertion order, which is then part of the structure.
- ``collections.OrderedDict``: its own key order, which is part of its structure.
- ``collections.defaultdict``: sorted keys, as ``dict``; rebuilt with the same
  ``default_factory``, which is part of the structure.
- Tuple subclasses: named tuples (paths ``.field``) and any other subclass
  defined in Python (paths ``[i]``). A tuple subclass is its items by
  definition, so its children are unambiguous; rebuilding it with
  ``tuple.__new__`` runs none of its code, like the classes below. Refusing it
  instead would break values that only pass through a transform (``has_aux``
  results, arguments ``jit`` does not differentiate). C struct sequences
  (``os.stat_result``, ``time.struct_time``) are leaves: they hold hidden fields
  that a rebuild could not restore.
- Instances of ``attrs`` classes and of ``dataclasses.dataclass`` classes.

Everything else is a leaf (numbers, strings, tracers, other ``dict`` or
``list`` subclasses, any other object, and attrs or dataclass classes that
subclass a builtin such as ``Exception``, which cannot be created without their
constructor); transforms refuse leaves that are not numbers with an error naming
the leaf's path.

Which fields of an ``attrs`` or dataclass instance are children: every field
(``init=False`` ones too), in definition order, as in JAX's dataclass pytrees,
except fields declared with ``metadata={"static": True}`` (the spelling equinox
uses for the same idea). Every field, because a number the object holds is an
input of the function like any other: leaving ``init=False`` fields out would
silently treat them as constants. The static marker is the way out for fields
that are not numbers to differentiate (an activation function, a layer count
used in ``range``), which would otherwise be refused as non-number leaves. A
field that holds no value (``init=False`` without a default, never assigned) is
not a child and stays unset in the rebuilt object.

Rebuilding such an instance reproduces the object the user passed, with new
leaves in place of the old: it is created with ``object.__new__`` and its
attributes are set with ``object.__setattr__``, so no ``__init__``,
``__post_init__``, ``__attrs_post_init__``, converter or validator runs (they
would run on traced values, reset ``init=False`` fields from their defaults, or
fail outright). This works for frozen and slotted classes and private fields.
Static fields and any other attribute the instance holds (set by
``__post_init__``, say) are copied as they are and are part of the structure:
two objects whose copied attributes differ have different structures, so
``jit`` never replays code traced for one on the other. Cached values are not
copied (``functools.cached_property`` results, attrs' cached hash): they would
be stale, and are recomputed from the new fields when next asked for. A value
that ``__post_init__`` derived from the fields is copied, so it is a constant
to the transform: compute it in a property, or declare it as a field, if it
must follow the traced fields.

Offers ``tree_flatten``, ``tree_unflatten``, ``tree_leaves``, ``tree_map``,
``tree_structure`` and ``tree_paths`` (a readable path per leaf, for errors).
None of them recurses, so a structure nested 100,000 deep is no problem; a
container that holds itself is a ``ValueError`` naming where, not an endless loop.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
from collections import OrderedDict, defaultdict
from collections.abc import Iterable, Iterator
from types import MemberDescriptorType
from typing import Any, Callable

import attrs

__all__ = [
    "TreeDef",
    "tree_flatten",
    "tree_unflatten",
    "tree_leaves",
    "tree_map",
    "tree_structure",
    "tree_paths",
]

# Container kinds.
_TUPLE, _LIST, _DICT, _NONE, _ORDERED_DICT, _DEFAULT_DICT, _TUPLE_SUBCLASS, _OBJECT = range(8)

# Types that are always leaves: a container whose children all have these types
# is flattened in one step, without looking at each child.
_LEAF_TYPES = {float, int, bool, complex, str, bytes}
# The traced types (registered by tracer.py and arrays.py, which sit above this module):
# leaves too, and refused where a rebuild would copy them instead of treating them as leaves.
_TRACED_TYPES: set[type] = set()


def register_traced_type(cls: type) -> None:
    """Make ``cls`` (a traced value's type) a leaf type of every pytree."""
    _LEAF_TYPES.add(cls)
    _TRACED_TYPES.add(cls)

# A tree definition is a tuple of nodes in pre-order (a node, then its children's
# subtrees left to right). A leaf is ``None``; a container is the tuple
# ``(kind, number of children, all children are leaves, key)``, where ``key`` is
# what rebuilding needs besides the children (dict keys, a class and the
# attributes it copies). Equality and hashing of tree definitions are those of
# the node tuple, done by the interpreter without recursion.


class _Static:
    """A value a tree definition holds rather than a leaf: a static field or a copied attribute.

    Compared by value (by identity when ``==`` cannot say), so it can be part of
    a structure whatever it is; hashed by value when it is hashable.
    """

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __eq__(self, other: object) -> bool:
        if type(other) is not _Static:
            return NotImplemented
        a, b = self.value, other.value
        if a is b:
            return True
        if type(a) is not type(b):
            return False
        try:
            return bool(a == b)
        except Exception:  # an array-like comparison, say: fall back to identity
            return False

    def __hash__(self) -> int:
        try:
            return hash(self.value)
        except TypeError:
            return hash(type(self.value))

    def __repr__(self) -> str:
        text = repr(self.value)
        return text if len(text) <= 40 else text[:37] + "..."


class TreeDef:
    """The shape of a pytree with its leaves taken out (read-only).

    ``num_leaves`` is the number of leaves. Two tree definitions are equal (and
    hash alike) when their structures are: the same containers, the same keys,
    the same classes and copied attributes. Stored as one flat tuple of nodes,
    so building, comparing and hashing one is cheap and never recursive.

    >>> tree_structure({"b": [1.0, 2.0], "a": (None, 3.0)})
    TreeDef({'a': (None, *), 'b': [*, *]})
    >>> tree_structure({"a": 1.0, "b": 2.0}) == tree_structure({"b": 0.0, "a": 0.0})
    True
    """

    __slots__ = ("_nodes", "_num_leaves")  # set once, by __init__

    def __init__(self, nodes: tuple, num_leaves: int) -> None:
        self._nodes = nodes
        self._num_leaves = num_leaves

    @property
    def num_leaves(self) -> int:
        """The number of leaves of a tree of this structure."""
        return self._num_leaves

    def __eq__(self, other: object) -> bool:
        if type(other) is not TreeDef:
            return NotImplemented
        return self is other or self._nodes == other._nodes

    def __hash__(self) -> int:
        return hash(self._nodes)

    def __repr__(self) -> str:
        return f"TreeDef({_describe(self._nodes)})"


_LEAF_DEF = TreeDef((None,), 1)


# ---------------------------------------------------------------------------
# Which types are containers, and how to take one apart.
# ---------------------------------------------------------------------------

# attrs' slot or attribute for a cached hash (``cache_hash=True``): reset, not copied.
_HASH_CACHE = "_attrs_cached_hash"
_HEAP_TYPE = 1 << 9  # Py_TPFLAGS_HEAPTYPE: the class was defined in Python


class _Plan:
    """How to take apart and rebuild the instances of one class (computed once per class)."""

    __slots__ = ("cls", "kind", "fields", "field_names", "names", "has_dict", "dropped",
                 "extra_slots", "resets")

    def __init__(self, cls: type, kind: int, fields: tuple = (), names: tuple | None = None,
                 extra_slots: tuple = (), resets: tuple = ()) -> None:
        self.cls = cls
        self.kind = kind
        self.fields = fields  # (name, is_static) per field, in definition order
        self.field_names = frozenset(name for name, _ in fields)
        self.names = names  # a named tuple's field names, for paths and reprs
        mro = cls.__mro__[:-1]  # without object
        self.has_dict = any("__dict__" in vars(k) for k in mro)
        self.dropped = frozenset(  # cached values in __dict__: recomputed, not copied
            name for k in mro for name, v in vars(k).items()
            if isinstance(v, functools.cached_property)
        )
        self.extra_slots = extra_slots  # slots outside the fields, copied
        self.resets = resets  # slots set to None (a cache that must exist)


def _created_in_python(classes: Iterable[type]) -> bool:
    """Whether these classes add no C-level layout, so a plain ``__new__`` can create them."""
    return all(k.__flags__ & _HEAP_TYPE for k in classes)


_PLANS: dict[type, _Plan | None] = {}
_MAX_PLANS = 1024


def _plan(cls: type) -> _Plan | None:
    """The plan for a class's instances, or ``None`` when they are leaves (cached per class)."""
    try:
        return _PLANS[cls]
    except KeyError:
        pass
    if len(_PLANS) >= _MAX_PLANS:  # classes made in a loop: keep the cache bounded
        _PLANS.clear()
    plan = _PLANS[cls] = _make_plan(cls)
    return plan


def _make_plan(cls: type) -> _Plan | None:
    mro = cls.__mro__
    if issubclass(cls, tuple):
        if hasattr(cls, "n_sequence_fields") or not _created_in_python(mro[:mro.index(tuple)]):
            return None  # a C struct sequence or another C subclass: rebuilding is not ours
        fields = getattr(cls, "_fields", None)
        is_named = type(fields) is tuple and all(type(f) is str for f in fields)
        return _Plan(cls, _TUPLE_SUBCLASS, names=fields if is_named else None)
    if attrs.has(cls):
        fields = tuple((a.name, bool(a.metadata.get("static"))) for a in attrs.fields(cls))
    elif dataclasses.is_dataclass(cls):
        fields = tuple((f.name, bool(f.metadata.get("static")))
                       for f in dataclasses.fields(cls))
    else:
        return None
    if not _created_in_python(mro[:-1]):
        return None  # subclasses a builtin (an exception, dict, ...): object.__new__ cannot
    names = {name for name, _ in fields}
    extra_slots: list[str] = []
    resets: list[str] = []
    for k in mro[:-1]:
        own_slots = vars(k).get("__slots__", ())
        for name, value in vars(k).items():
            if type(value) is not MemberDescriptorType or name in names:
                continue
            if attrs.has(k) and name in own_slots:
                # A slot attrs added beyond the fields: a cached_property's value
                # (left empty, so it is recomputed) or the cached hash (reset).
                if name == _HASH_CACHE:
                    resets.append(name)
                continue
            extra_slots.append(name)
    return _Plan(cls, _OBJECT, fields, extra_slots=tuple(extra_slots), resets=tuple(resets))


def _static(plan: _Plan, name: str, value: Any, what: str) -> _Static:
    """A value copied into rebuilt objects; a traced value there is refused."""
    if type(value) in _TRACED_TYPES:
        if plan.kind == _TUPLE_SUBCLASS:
            advice = f"Keep traced values in the items of the {plan.cls.__name__}"
        else:
            advice = (f"Declare {name} as a field (with init=False if __init__ should not "
                      "take it) without the static marker, or compute it in a property")
        raise TypeError(
            f"{plan.cls.__name__}.{name} holds a traced value, but it is {what}, so a "
            "rebuilt object would get a copy of it rather than a leaf, and that copy goes "
            f"stale when the transform returns. {advice}."
        )
    return _Static(value)


def _split_object(node: Any, plan: _Plan) -> tuple[int, Any, list]:
    get = object.__getattribute__  # the stored value, past any __getattr__ of the class
    entries: list = []
    children = []
    for name, static in plan.fields:
        try:
            value = get(node, name)
        except AttributeError:
            continue  # a field without a value: it stays unset
        if static:
            entries.append((name, _static(plan, name, value, "a static field")))
        else:
            entries.append(name)
            children.append(value)
    if plan.has_dict:
        entries.extend(_copied_dict_attributes(node, plan))
    for name in plan.extra_slots:
        try:
            entries.append((name, _static(plan, name, get(node, name), "not a field")))
        except AttributeError:
            pass  # an empty slot stays empty
    for name in plan.resets:
        entries.append((name, _Static(None)))
    return _OBJECT, (plan.cls, tuple(entries)), children


def _copied_dict_attributes(node: Any, plan: _Plan) -> list:
    """The (name, value) pairs of the instance dict that are copied: not fields, not caches."""
    try:
        instance_dict = object.__getattribute__(node, "__dict__")
    except AttributeError:
        return []
    others = instance_dict.keys() - plan.field_names
    if not others:
        return []
    copied = []
    for name in sorted(others, key=str):
        if name in plan.dropped:
            continue
        if name == _HASH_CACHE:
            copied.append((name, _Static(None)))
        else:
            what = "not a field" if plan.kind == _OBJECT else "an attribute, not an item"
            copied.append((name, _static(plan, name, instance_dict[name], what)))
    return copied


def _split(node: Any) -> tuple[int, Any, Any] | None:
    """Split a container into ``(kind, key, children)``; ``None`` for a leaf."""
    cls = type(node)
    if cls is tuple:
        return _TUPLE, None, node
    if cls is list:
        return _LIST, None, node
    if cls is dict:
        keys = _sorted_keys(node)
        return _DICT, keys, list(map(node.__getitem__, keys))
    if node is None:
        return _NONE, None, ()
    if cls in _LEAF_TYPES:
        return None
    if cls is OrderedDict:
        return _ORDERED_DICT, tuple(node), list(node.values())
    if cls is defaultdict:
        keys = _sorted_keys(node)
        children = list(map(node.__getitem__, keys))  # no default_factory call: keys exist
        return _DEFAULT_DICT, (_Static(node.default_factory), keys), children
    plan = _plan(cls)
    if plan is None:
        return None
    if plan.kind == _TUPLE_SUBCLASS:
        extras = tuple(_copied_dict_attributes(node, plan)) if plan.has_dict else ()
        return _TUPLE_SUBCLASS, (cls, extras), node
    return _split_object(node, plan)


def _tuple_names(cls: type) -> tuple | None:
    """A named tuple's field names (``None`` for another tuple subclass)."""
    plan = _plan(cls)
    return plan.names if plan is not None else None


def _sorted_keys(d: dict) -> tuple:
    try:
        return tuple(sorted(d))
    except TypeError:  # keys that cannot be compared with each other: insertion order
        return tuple(d)


def _is_leaf_type(cls: type) -> bool:
    return cls in _LEAF_TYPES or (cls not in _BUILTIN_CONTAINERS and _plan(cls) is None)


_BUILTIN_CONTAINERS = frozenset({tuple, list, dict, type(None), OrderedDict, defaultdict})


def _build(kind: int, key: Any, children: list) -> Any:
    """Rebuild a container other than tuple and list from its key and children."""
    if kind == _DICT:
        return dict(zip(key, children))
    if kind == _NONE:
        return None
    if kind == _OBJECT:
        cls, entries = key
        obj = object.__new__(cls)
        setattr_ = object.__setattr__  # past frozen classes' __setattr__ and on_setattr hooks
        child = iter(children)
        for entry in entries:
            if type(entry) is str:
                setattr_(obj, entry, next(child))
            else:
                setattr_(obj, entry[0], entry[1].value)
        return obj
    if kind == _TUPLE_SUBCLASS:
        cls, extras = key
        obj = tuple.__new__(cls, children)
        for name, static in extras:
            object.__setattr__(obj, name, static.value)
        return obj
    if kind == _ORDERED_DICT:
        return OrderedDict(zip(key, children))
    if kind == _DEFAULT_DICT:
        factory, keys = key
        return defaultdict(factory.value, zip(keys, children))
    if kind == _TUPLE:
        return tuple(children)
    return list(children)


# ---------------------------------------------------------------------------
# Flattening and unflattening.
# ---------------------------------------------------------------------------


def tree_flatten(tree: Any) -> tuple[list, TreeDef]:
    """Flatten a pytree into its leaves (left to right) and its structure.

    >>> leaves, treedef = tree_flatten({"w": (1.0, 2.0), "b": 3.0})
    >>> leaves  # dict children in sorted key order, as in JAX
    [3.0, 1.0, 2.0]
    >>> tree_unflatten(treedef, [10, 20, 30])
    {'b': 10, 'w': (20, 30)}
    """
    cls = type(tree)
    if cls is float or cls is int:
        return [tree], _LEAF_DEF
    if cls is tuple and _LEAF_TYPES.issuperset(map(type, tree)):  # jit's (x, y) arguments
        return list(tree), TreeDef(((_TUPLE, len(tree), True, None),), len(tree))
    leaves: list = []
    nodes: list = []
    stack = [tree]
    check_cycles_at = _CHECK_CYCLES_AT
    while stack:
        node = stack.pop()
        cls = type(node)
        if cls is float or cls is int:
            leaves.append(node)
            nodes.append(None)
            continue
        if cls is tuple:
            kind, key, children = _TUPLE, None, node
        elif cls is list:
            kind, key, children = _LIST, None, node
        elif cls is dict:
            key = _sorted_keys(node)
            kind, children = _DICT, list(map(node.__getitem__, key))
        else:
            split = _split(node)
            if split is None:
                leaves.append(node)
                nodes.append(None)
                continue
            kind, key, children = split
        if _LEAF_TYPES.issuperset(map(type, children)) or (
                _BUILTIN_CONTAINERS.isdisjoint(map(type, children))
                and all(map(_is_leaf_type, set(map(type, children))))):
            leaves.extend(children)  # every child a leaf: one node for them all
            nodes.append((kind, len(children), True, key))
        else:
            nodes.append((kind, len(children), False, key))
            stack.extend(reversed(children))
            if len(nodes) > check_cycles_at:  # a container inside itself never ends
                _refuse_cycles(tree)
                check_cycles_at *= 2
    return leaves, TreeDef(tuple(nodes), len(leaves))


def leaf_reader(treedef: TreeDef) -> Callable[[Any], list | None] | None:
    """A function taking the leaves out of trees of exactly this structure, fast.

    For structures of tuples and lists only (what ``jit`` sees most: parameters as
    nested tuples or lists of floats), at most a few hundred nodes deep or wide. The
    function checks each container's type and length and returns the leaves, or
    ``None`` when the tree differs (the caller then flattens it the general way; a
    leaf position holding a container is the caller's to check, by the leaves'
    types). ``None`` instead of a function for other structures.

    >>> read = leaf_reader(tree_structure(((1.0, 2.0), [3.0])))
    >>> read(((4.0, 5.0), [6.0])), read(((4.0, 5.0), (6.0,)))
    ([4.0, 5.0, 6.0], None)
    """
    nodes = treedef._nodes
    if len(nodes) > _READER_NODES or any(
            node is not None and node[0] not in (_TUPLE, _LIST) for node in nodes):
        return None
    lines = ["def read(t0):"]
    leaves: list[str] = []
    names = (f"t{i}" for i in itertools.count(1))
    # Walk the nodes in the order tree_flatten wrote them (pre-order, left to right),
    # naming each node's value and writing the checks that it is that node.
    position = 0
    stack = ["t0"]
    while stack:
        name = stack.pop()
        node = nodes[position]
        position += 1
        if node is None:
            leaves.append(name)
            continue
        kind, n, all_leaves, _ = node
        cls = "tuple" if kind == _TUPLE else "list"
        children = [next(names) for _ in range(n)]
        lines.append(f"    if type({name}) is not {cls} or len({name}) != {n}: return None")
        if n:
            lines.append(f"    {', '.join(children)}, = {name}")
        if all_leaves:
            leaves.extend(children)
        else:
            stack.extend(reversed(children))
    lines.append(f"    return [{', '.join(leaves)}]")
    namespace: dict[str, Any] = {}
    exec(compile("\n".join(lines), "<tapegrad leaf reader>", "exec"), namespace)
    return namespace["read"]  # type: ignore[no-any-return]


# A structure with more nodes than this is read by tree_flatten (the reader's code grows
# with the structure, and compile() with the code).
_READER_NODES = 400


# Past this many nodes, flattening checks once that the tree does not hold itself
# (then again at twice as many): a check on every container would slow the
# common case, and a cycle would otherwise run until memory is exhausted.
_CHECK_CYCLES_AT = 1 << 20


def _refuse_cycles(tree: Any) -> None:
    """Raise a ValueError naming the container that holds itself, if there is one."""
    # Depth first, keeping the containers on the current path: (children with
    # their steps, the container's id); the root's entry has no id.
    open_path: list[tuple[Iterator[tuple[str, Any]], int | None]] = [(iter([("", tree)]), None)]
    on_path: dict[int, int] = {}  # id of an open container: its depth
    steps: list[str] = []
    while open_path:
        children, _ = open_path[-1]
        for step, node in children:
            split = _split(node)
            if split is None:
                continue
            if id(node) in on_path:
                first = "".join(steps[:on_path[id(node)] + 1])
                raise ValueError(
                    f"this pytree contains itself: the {type(node).__name__} at "
                    f"{first or 'the top'} appears again inside itself, at "
                    f"{''.join(steps) + step}, so it has no finite list of leaves. A "
                    "container may appear twice in a pytree, but never inside itself."
                )
            kind, key, grandchildren = split
            on_path[id(node)] = len(steps)
            steps.append(step)
            open_path.append((zip(_steps(kind, key, node), grandchildren), id(node)))
            break
        else:
            _, closed = open_path.pop()
            if closed is not None:
                del on_path[closed]
                steps.pop()


def tree_unflatten(treedef: TreeDef, leaves: Iterable[Any]) -> Any:
    """Rebuild a pytree of structure ``treedef`` from an iterable of leaves.

    >>> _, treedef = tree_flatten([1.0, (2.0, None)])
    >>> tree_unflatten(treedef, ["a", "b"])
    ['a', ('b', None)]
    """
    if type(leaves) is not list:
        leaves = list(leaves)
    if len(leaves) != treedef.num_leaves:
        raise ValueError(
            f"tree_unflatten: the structure {treedef!r} has {treedef.num_leaves} leaves, "
            f"but {len(leaves)} were given"
        )
    # Walk the pre-order nodes backwards: every node comes after its children's
    # subtrees, whose values are on the stack, leftmost child on top.
    values: list = []
    push = values.append
    end = len(leaves)
    for node in reversed(treedef._nodes):
        if node is None:
            end -= 1
            push(leaves[end])
            continue
        kind, n, leafy, key = node
        if leafy:
            start = end - n
            children = leaves[start:end]
            end = start
        else:
            children = values[-n:]
            del values[-n:]
            children.reverse()
        if kind == _TUPLE:
            push(tuple(children))
        elif kind == _LIST:
            push(children)
        else:
            push(_build(kind, key, children))
    return values[0]


def tree_leaves(tree: Any) -> list:
    """The leaves of a pytree, left to right.

    >>> tree_leaves(((1.0, 2.0), {"b": 3.0}, None))
    [1.0, 2.0, 3.0]
    """
    return tree_flatten(tree)[0]


def tree_structure(tree: Any) -> TreeDef:
    """The structure of a pytree without its leaves.

    >>> tree_structure((1.0, [2.0]))
    TreeDef((*, [*]))
    """
    return tree_flatten(tree)[1]


def tree_map(f: Callable[..., Any], tree: Any, *rest: Any) -> Any:
    """Apply ``f`` to every leaf (and the matching leaves of ``rest``), keeping the structure.

    Every tree in ``rest`` must have the structure of ``tree``.

    >>> tree_map(lambda p, g: p - 0.1 * g, {"w": (1.0, 2.0)}, {"w": (10.0, 20.0)})
    {'w': (0.0, 0.0)}
    """
    leaves, treedef = tree_flatten(tree)
    others = []
    for i, other in enumerate(rest):
        other_leaves, other_def = tree_flatten(other)
        if other_def != treedef:
            raise ValueError(
                f"tree_map: tree {i + 1} has structure {other_def!r}, "
                f"which differs from the first tree's {treedef!r}"
            )
        others.append(other_leaves)
    return tree_unflatten(treedef, [f(*xs) for xs in zip(leaves, *others)])


def tree_paths(tree: Any, prefix: str = "", only: int | None = None) -> list[tuple[str, Any]]:
    """Each leaf with a readable path to it, as Python would index it, in leaf order.

    With ``only=k``, just leaf ``k`` (an error message needs one path, and joining
    every path of a deep tree costs its depth squared).

    >>> tree_paths({"w": [1.0, 2.0], "b": 0.5}, prefix="args[0]")
    [("args[0]['b']", 0.5), ("args[0]['w'][0]", 1.0), ("args[0]['w'][1]", 2.0)]
    >>> tree_paths({"w": [1.0, 2.0], "b": 0.5}, only=2)
    [("['w'][1]", 2.0)]
    """
    out: list[tuple[str, Any]] = []
    seen = 0
    # A path is a linked list (parent, step), joined only at a leaf: building
    # each path string level by level would cost depth squared.
    stack: list[tuple[Any, Any]] = [(None, tree)]
    containers = 0
    while stack:
        path, node = stack.pop()
        split = _split(node)
        if split is not None:
            containers += 1
            if containers == _CHECK_CYCLES_AT:
                _refuse_cycles(tree)
        if split is None:
            seen += 1
            if only is not None and seen - 1 != only:
                continue
            steps = []
            while path is not None:
                path, step = path
                steps.append(step)
            out.append((prefix + "".join(reversed(steps)), node))
            if only is not None:
                return out
            continue
        kind, key, children = split
        stack.extend(reversed([((path, step), child)
                               for step, child in zip(_steps(kind, key, node), children)]))
    return out


def _steps(kind: int, key: Any, node: Any) -> Iterator[str]:
    """The path step to each child of a container."""
    if kind == _DICT or kind == _ORDERED_DICT:
        return (f"[{k!r}]" for k in key)
    if kind == _DEFAULT_DICT:
        return (f"[{k!r}]" for k in key[1])
    if kind == _OBJECT:
        return (f".{entry}" for entry in key[1] if type(entry) is str)
    if kind == _TUPLE_SUBCLASS:
        names = _tuple_names(type(node))
        if names is not None and len(names) == len(node):
            return (f".{name}" for name in names)
    return (f"[{i}]" for i in itertools.count())  # zip stops it at the last child


# ---------------------------------------------------------------------------
# Reading a structure as text.
# ---------------------------------------------------------------------------


def _parts(node: tuple) -> tuple[str, list[str], str]:
    """How a container node is written: its opening, a prefix per child, its closing."""
    kind, n, _, key = node
    if kind == _NONE:
        return "None", [], ""
    if kind == _TUPLE:
        return "(", [""] * n, ",)" if n == 1 else ")"
    if kind == _LIST:
        return "[", [""] * n, "]"
    if kind == _DICT:
        return "{", [f"{k!r}: " for k in key], "}"
    if kind == _ORDERED_DICT:
        return "OrderedDict({", [f"{k!r}: " for k in key], "})"
    if kind == _DEFAULT_DICT:
        factory = key[0].value
        name = getattr(factory, "__name__", None) or repr(factory)
        return f"defaultdict({name}, {{", [f"{k!r}: " for k in key[1]], "})"
    cls = key[0]
    if kind == _TUPLE_SUBCLASS:
        names = _tuple_names(cls)
        prefixes = [f"{f}=" for f in names] if names and len(names) == n else [""] * n
        statics = [f"{name}={static!r}" for name, static in key[1]]
    else:
        prefixes = [f"{entry}=" for entry in key[1] if type(entry) is str]
        statics = [f"{entry[0]}={entry[1]!r}" for entry in key[1] if type(entry) is not str]
    closing = "".join(", " + s for s in statics) if n else ", ".join(statics)
    return f"{cls.__name__}(", prefixes, closing + ")"


def _describe(nodes: tuple) -> str:
    """The text of a structure, leaves written as ``*``."""
    return _render(nodes, itertools.repeat("*"), _parts)


def _render(nodes: tuple, leaf_texts: Iterator[str],
            parts: Callable[[tuple], tuple[str, list[str], str]]) -> str:
    """Write a structure as nested text, iteratively so that any depth is fine.

    ``parts(node)`` gives a container's opening, a prefix per child and its
    closing; leaves take their text from ``leaf_texts`` in order.
    """
    out: list[str] = []
    # Per open container: its remaining child prefixes and its closing.
    open_containers: list[tuple[Iterator[str], str]] = []
    for node in nodes:
        if node is None:
            out.append(next(leaf_texts))
        else:
            opening, prefixes, closing = parts(node)
            out.append(opening)
            if node[2]:  # every child a leaf: written at once
                out.append(", ".join(p + next(leaf_texts) for p in prefixes))
                out.append(closing)
            else:
                rest = iter(prefixes)
                open_containers.append((rest, closing))
                out.append(next(rest))
                continue
        # A subtree is complete: close the containers it completes, then step right.
        while open_containers:
            rest, closing = open_containers[-1]
            following = next(rest, None)
            if following is not None:
                out.append(", " + following)
                break
            out.append(closing)
            open_containers.pop()
    return "".join(out)
