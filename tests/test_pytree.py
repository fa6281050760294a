"""Pytrees as arguments and results of transforms, and the tree utilities."""

from __future__ import annotations

import collections
import math
from typing import Any, NamedTuple

import attrs
import pytest
from conftest import SOME, floats
from hypothesis import given
from hypothesis import strategies as st

import tapegrad as tg

Point = collections.namedtuple("Point", "x y")


class Pair(NamedTuple):
    first: Any
    second: Any


@attrs.define
class Box:
    value: Any
    _hidden: Any


@attrs.frozen
class FrozenBox:
    left: Any
    right: Any = None


def same(a: Any, b: Any) -> bool:
    """Strict structural equality: same container types all the way down, equal leaves."""
    if type(a) is not type(b):
        return False
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if attrs.has(type(a)):
        return all(same(getattr(a, f.name), getattr(b, f.name)) for f in attrs.fields(type(a)))
    return a is None and b is None or a == b


def _containers(children: st.SearchStrategy) -> st.SearchStrategy:
    return st.one_of(
        st.lists(children, max_size=3).map(tuple),
        st.lists(children, max_size=3),
        st.dictionaries(st.text("abwxyz_", min_size=1, max_size=3), children, max_size=3),
        st.builds(Point, children, children),
        st.builds(Pair, children, children),
        st.builds(Box, children, children),
        st.builds(FrozenBox, children, children),
    )


LEAVES = st.one_of(floats(-3.0, 3.0), st.integers(-3, 3))
TREES = st.recursive(st.one_of(LEAVES, st.none()), _containers, max_leaves=12)


# -- the tree utilities ------------------------------------------------------------------


@SOME
@given(tree=TREES)
def test_flatten_unflatten_round_trip(tree: Any) -> None:
    """tree_unflatten(tree_flatten(t)) rebuilds t with the same container types and leaves."""
    leaves, treedef = tg.tree_flatten(tree)
    assert leaves == tg.tree_leaves(tree)
    assert treedef.num_leaves == len(leaves)
    assert same(tg.tree_unflatten(treedef, leaves), tree)
    assert tg.tree_structure(tree) == treedef


@SOME
@given(tree=TREES)
def test_tree_map_keeps_structure(tree: Any) -> None:
    """tree_map applies f to each leaf in order and keeps every container type."""
    doubled = tg.tree_map(lambda v: v * 2, tree)
    assert tg.tree_structure(doubled) == tg.tree_structure(tree)
    assert tg.tree_leaves(doubled) == [v * 2 for v in tg.tree_leaves(tree)]
    assert same(tg.tree_map(lambda v: v, tree), tree)


@SOME
@given(tree=TREES)
def test_tree_map_over_several_trees(tree: Any) -> None:
    """tree_map with extra trees passes matching leaves together."""
    other = tg.tree_map(lambda v: v + 10, tree)
    third = tg.tree_map(lambda v: -v, tree)
    summed = tg.tree_map(lambda a, b, c: a + b + c, tree, other, third)
    assert same(summed, tg.tree_map(lambda v: v + 10, tree))


def test_tree_map_structure_mismatch_raises() -> None:
    """tree_map refuses trees of different structure with a ValueError naming both."""
    with pytest.raises(ValueError, match="structure"):
        tg.tree_map(lambda a, b: a + b, (1.0, 2.0), [1.0, 2.0])
    with pytest.raises(ValueError, match="structure"):
        tg.tree_map(lambda a, b: a + b, {"a": 1.0}, {"b": 1.0})
    with pytest.raises(ValueError, match="structure"):
        tg.tree_map(lambda a, b: a + b, Point(1.0, 2.0), Pair(1.0, 2.0))
    with pytest.raises(ValueError, match="structure"):
        tg.tree_map(lambda a, b: a + b, (1.0, None), (1.0, 2.0))


def test_tree_leaves_order_and_none() -> None:
    """tree_leaves lists leaves left to right, skipping None and empty containers."""
    tree = {"b": [1.0, None, (2.0, ())], "a": Point(3.0, {}), "c": Box(4.0, FrozenBox(5.0))}
    assert tg.tree_leaves(tree) == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert tg.tree_leaves(None) == []
    assert tg.tree_leaves(7.0) == [7.0]


def test_tree_unflatten_wrong_leaf_count_raises() -> None:
    """tree_unflatten with too few or too many leaves is a ValueError."""
    _, treedef = tg.tree_flatten((1.0, [2.0]))
    with pytest.raises(ValueError, match="2 leaves"):
        tg.tree_unflatten(treedef, [1.0])
    with pytest.raises(ValueError, match="2 leaves"):
        tg.tree_unflatten(treedef, [1.0, 2.0, 3.0])


# -- pytrees as arguments --------------------------------------------------------------


def sum_of_squares(tree: Any) -> Any:
    return tg.sum([v * v for v in tg.tree_leaves(tree)])


@SOME
@given(tree=TREES)
def test_gradient_mirrors_any_argument_structure(tree: Any) -> None:
    """The gradient of a pytree argument has its exact structure and float leaves."""
    g = tg.grad(sum_of_squares)(tree)
    expected = tg.tree_map(lambda v: 2.0 * v, tree)
    assert same(g, expected)
    assert all(type(v) is float for v in tg.tree_leaves(g))


@pytest.mark.parametrize(
    ("arg", "expected"),
    [
        ((1.0, (2.0, 3)), (2.0, (4.0, 6.0))),
        ([1, [2.0]], [2.0, [4.0]]),
        ({"w": 1.0, "b": {"c": 2}}, {"w": 2.0, "b": {"c": 4.0}}),
        (Point(1.0, 2), Point(2.0, 4.0)),
        (Pair(3, Point(1.0, 0.5)), Pair(6.0, Point(2.0, 1.0))),
        (Box(1.0, 2.0), Box(2.0, 4.0)),
        (FrozenBox(1.0, [2.0, None]), FrozenBox(2.0, [4.0, None])),
        ({"a": None, "b": (None, 1.5)}, {"a": None, "b": (None, 3.0)}),
        ((), ()),
        (({}, [], None), ({}, [], None)),
    ],
    ids=["tuple", "list", "dict", "namedtuple", "typing_namedtuple", "attrs", "attrs_frozen",
         "none", "empty", "empty_mixed"],
)
def test_gradient_structure_for_each_kind(arg: Any, expected: Any) -> None:
    """grad over each kind of container returns that same kind, leaves as floats."""
    g = tg.grad(sum_of_squares)(arg)
    assert same(g, expected), g


def test_attrs_underscore_field_gradient() -> None:
    """A leading-underscore attrs field (init alias without '_') gets its own gradient."""
    box = Box(2.0, 5.0)
    g = tg.grad(lambda b: b.value * b._hidden)(box)
    assert type(g) is Box
    assert g.value == 5.0 and g._hidden == 2.0
    assert box == Box(2.0, 5.0)  # the argument itself is left alone


def test_dict_key_order_is_kept() -> None:
    """A dict gradient keeps the argument's key order, not a sorted one."""
    g = tg.grad(lambda p: p["z"] * p["a"])({"z": 2.0, "a": 3.0})
    assert list(g) == ["z", "a"]
    assert g == {"z": 3.0, "a": 2.0}


def test_multiple_pytree_arguments_with_argnums() -> None:
    """argnums=(0, 2) gives a gradient per chosen argument, each in its own structure."""
    f = lambda p, scale, q: scale * (p.x * q["k"][0] + p.y)
    gp, gq = tg.grad(f, argnums=(0, 2))(Point(1.0, 2.0), 3.0, {"k": [4.0]})
    assert same(gp, Point(12.0, 3.0))
    assert same(gq, {"k": [3.0]})


# -- pytrees as results --------------------------------------------------------------------


def spread(x: Any) -> Any:
    """A function from a scalar to a pytree of every container kind."""
    return {
        "t": (x, x * x),
        "l": [2.0 * x, None],
        "p": Point(x, 1.0),
        "n": Pair(x * 3.0, x),
        "b": Box(x, -x),
        "f": FrozenBox(x * x * x),
    }


EXPECTED_VALUES = {
    "t": (2.0, 4.0), "l": [4.0, None], "p": Point(2.0, 1.0), "n": Pair(6.0, 2.0),
    "b": Box(2.0, -2.0), "f": FrozenBox(8.0),
}
EXPECTED_DERIVATIVES = {
    "t": (1.0, 4.0), "l": [2.0, None], "p": Point(1.0, 0.0), "n": Pair(3.0, 1.0),
    "b": Box(1.0, -1.0), "f": FrozenBox(12.0),
}


def test_jacrev_and_jacfwd_results_mirror_output_structure() -> None:
    """Jacobians of a pytree-valued function come back in the output's structure."""
    assert same(tg.jacrev(spread)(2.0), EXPECTED_DERIVATIVES)
    assert same(tg.jacfwd(spread)(2.0), EXPECTED_DERIVATIVES)


def test_jvp_results_mirror_output_structure() -> None:
    """jvp returns primal and tangent outputs in the output's structure, with floats."""
    out, tan = tg.jvp(spread, (2.0,), (1.0,))
    assert same(out, EXPECTED_VALUES)
    assert same(tan, EXPECTED_DERIVATIVES)


def test_vjp_output_and_cotangent_structure() -> None:
    """vjp returns outputs in their structure and takes cotangents of that structure."""
    out, f_vjp = tg.vjp(spread, 2.0)
    assert same(out, EXPECTED_VALUES)
    ones = tg.tree_map(lambda v: 1.0, out)
    (ct,) = f_vjp(ones)
    assert ct == sum(tg.tree_leaves(EXPECTED_DERIVATIVES))


@SOME
@given(tree=TREES, x=floats(-2.0, 2.0))
def test_jacobian_of_any_output_structure(tree: Any, x: float) -> None:
    """d/dx tree_map(v * x) is the tree itself, whatever its structure."""
    jac = tg.jacrev(lambda s: tg.tree_map(lambda v: v * s, tree))(x)
    assert same(jac, tg.tree_map(float, tree))


def test_pytree_argument_and_result_hessian() -> None:
    """hessian over a named-tuple argument is nested twice in that named tuple."""
    h = tg.hessian(lambda p: p.x**2 * p.y)(Point(1.0, 3.0))
    assert same(h, Point(Point(6.0, 2.0), Point(2.0, 0.0)))
    assert math.isclose(h.x.y, h.y.x)
