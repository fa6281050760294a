"""Pytrees: nested containers of numbers, flattened to a list of leaves and back.

A pytree is a leaf or a container of pytrees. Containers are ``tuple``, ``list``,
``dict``, named tuples, instances of ``attrs`` classes and ``None`` (a container
with no children). Everything else is a leaf. Transforms flatten their arguments
to find the numbers to differentiate and unflatten the gradients back into the
user's own structure.

Offers ``tree_flatten``, ``tree_unflatten``, ``tree_leaves``, ``tree_map``,
``tree_structure`` and ``tree_paths`` (a readable path per leaf, for errors).
"""

from __future__ import annotations

from collections.abc import Iterator
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

# Node kinds. A leaf is the only kind that holds a value instead of children.
_LEAF, _NONE, _TUPLE, _LIST, _DICT, _NAMEDTUPLE, _ATTRS = range(7)


class TreeDef:
    """The shape of a pytree with its leaves taken out (read-only).

    ``kind`` says which container this node is, ``meta`` what is needed to
    rebuild it (dict keys, the named-tuple type, an attrs instance to copy), and
    ``children`` the tree definitions of its children. A plain slotted class
    rather than an attrs one: every transform call builds one per container, so
    construction must be cheap. Two tree definitions are equal when their
    structures are.
    """

    __slots__ = ("kind", "meta", "children", "num_leaves")

    def __init__(self, kind: int, meta: Any, children: tuple, num_leaves: int) -> None:
        self.kind = kind
        self.meta = meta
        self.children = children
        self.num_leaves = num_leaves

    def _key(self) -> tuple:
        meta = self.meta
        if self.kind == _ATTRS:
            meta = type(meta)
        return (self.kind, meta, tuple(c._key() for c in self.children))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TreeDef) and (other is self or self._key() == other._key())

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return f"TreeDef({_describe(self)})"


def _describe(node: TreeDef) -> str:
    inner = ", ".join(_describe(c) for c in node.children)
    if node.kind == _LEAF:
        return "*"
    if node.kind == _NONE:
        return "None"
    if node.kind == _TUPLE:
        return f"({inner}{',' if len(node.children) == 1 else ''})"
    if node.kind == _LIST:
        return f"[{inner}]"
    if node.kind == _DICT:
        items = (f"{k!r}: {_describe(c)}" for k, c in zip(node.meta, node.children))
        return "{" + ", ".join(items) + "}"
    name = node.meta.__name__ if node.kind == _NAMEDTUPLE else type(node.meta).__name__
    return f"{name}({inner})"


_LEAF_DEF = TreeDef(_LEAF, None, (), 1)
_NONE_DEF = TreeDef(_NONE, None, (), 0)


def _children(tree: Any) -> tuple[int, Any, list] | None:
    """Split a container into (kind, meta, children); ``None`` for a leaf."""
    cls = type(tree)
    if cls is float or cls is int:
        return None
    if cls is tuple:
        return _TUPLE, None, list(tree)
    if cls is list:
        return _LIST, None, list(tree)
    if cls is dict:
        return _DICT, tuple(tree), list(tree.values())
    if tree is None:
        return _NONE, None, []
    if isinstance(tree, tuple) and hasattr(cls, "_fields"):
        return _NAMEDTUPLE, cls, list(tree)
    if attrs.has(cls):
        names = tuple(a.name for a in attrs.fields(cls) if a.init)
        return _ATTRS, tree, [getattr(tree, n) for n in names]
    return None


def _build(kind: int, meta: Any, children: list) -> Any:
    if kind == _TUPLE:
        return tuple(children)
    if kind == _LIST:
        return children
    if kind == _DICT:
        return dict(zip(meta, children))
    if kind == _NONE:
        return None
    if kind == _NAMEDTUPLE:
        return meta(*children)
    names = [a.name for a in attrs.fields(type(meta)) if a.init]
    return attrs.evolve(meta, **{_init_name(type(meta), n): v for n, v in zip(names, children)})


def _init_name(cls: type, name: str) -> str:
    return attrs.fields_dict(cls)[name].alias or name.lstrip("_")


def tree_flatten(tree: Any) -> tuple[list, TreeDef]:
    """Flatten a pytree into its leaves (left to right) and its structure.

    >>> leaves, treedef = tree_flatten({"w": (1.0, 2.0), "b": 3.0})
    >>> leaves
    [1.0, 2.0, 3.0]
    >>> tree_unflatten(treedef, [10, 20, 30])
    {'w': (10, 20), 'b': 30}
    """
    leaves: list = []
    return leaves, _flatten_into(tree, leaves)


def _flatten_into(tree: Any, leaves: list) -> TreeDef:
    cls = type(tree)
    if cls is tuple or cls is list:  # the common containers, without _children
        kind, meta, children = (_TUPLE if cls is tuple else _LIST), None, tree
    else:
        split = _children(tree)
        if split is None:
            leaves.append(tree)
            return _LEAF_DEF
        kind, meta, children = split
        if kind == _NONE:
            return _NONE_DEF
    start = len(leaves)
    defs = []
    for c in children:
        if type(c) is float:  # a number leaf: no recursive call
            leaves.append(c)
            defs.append(_LEAF_DEF)
        else:
            defs.append(_flatten_into(c, leaves))
    return TreeDef(kind, meta, tuple(defs), len(leaves) - start)


def tree_unflatten(treedef: TreeDef, leaves: Any) -> Any:
    """Rebuild a pytree of structure ``treedef`` from an iterable of leaves.

    >>> _, treedef = tree_flatten([1.0, (2.0, None)])
    >>> tree_unflatten(treedef, ["a", "b"])
    ['a', ('b', None)]
    """
    leaves = list(leaves)
    if len(leaves) != treedef.num_leaves:
        raise ValueError(
            f"tree_unflatten: the structure {treedef!r} has {treedef.num_leaves} leaves, "
            f"but {len(leaves)} were given"
        )
    return _unflatten(treedef, iter(leaves))


def _unflatten(treedef: TreeDef, leaves: Iterator) -> Any:
    kind = treedef.kind
    if kind == _LEAF:
        return next(leaves)
    children = [next(leaves) if c is _LEAF_DEF else _unflatten(c, leaves)
                for c in treedef.children]
    if kind == _TUPLE:
        return tuple(children)
    if kind == _LIST:
        return children
    return _build(kind, treedef.meta, children)


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


def tree_paths(tree: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Each leaf with a readable path to it, as Python would index it.

    >>> tree_paths({"w": [1.0, 2.0]}, prefix="args[0]")
    [("args[0]['w'][0]", 1.0), ("args[0]['w'][1]", 2.0)]
    """
    out: list[tuple[str, Any]] = []
    stack: list[tuple[str, Any]] = [(prefix, tree)]
    while stack:
        path, node = stack.pop()
        split = _children(node)
        if split is None:
            out.append((path, node))
            continue
        kind, meta, children = split
        if kind == _DICT:
            steps = [f"[{k!r}]" for k in meta]
        elif kind == _ATTRS:
            steps = [f".{a.name}" for a in attrs.fields(type(node)) if a.init]
        elif kind == _NAMEDTUPLE:
            steps = [f".{name}" for name in meta._fields]
        else:
            steps = [f"[{i}]" for i in range(len(children))]
        stack.extend(reversed([(path + s, c) for s, c in zip(steps, children)]))
    return out
