"""Pytrees as arguments and results of transforms, and the tree utilities."""

from __future__ import annotations

import collections
import copy
import dataclasses
import functools
import math
import os
import pickle
import re
import sys
import time
from collections import OrderedDict, defaultdict
from typing import Any, Callable, ClassVar, NamedTuple

import attrs
import pytest
from conftest import SOME, floats
from hypothesis import given
from hypothesis import strategies as st

import tapegrad as tg
from tapegrad import pytree
from tapegrad.pytree import tree_paths

Point = collections.namedtuple("Point", "x y")


class Pair(NamedTuple):
    first: Any
    second: Any


class Vec(tuple):
    """A tuple subclass that is not a named tuple."""

    def __new__(cls, *items: Any) -> Vec:
        return super().__new__(cls, items)


@attrs.define
class Box:
    value: Any
    _hidden: Any


@attrs.frozen
class FrozenBox:
    left: Any
    right: Any = None


@dataclasses.dataclass
class Dc:
    a: Any
    b: Any


@dataclasses.dataclass(frozen=True)
class FrozenDc:
    a: Any
    b: Any = None


def same(a: Any, b: Any) -> bool:
    """Strict structural equality: same container types all the way down, equal leaves.

    Plain dicts compare as mappings (their order is checked by ``dict_orders``);
    OrderedDicts compare in order; objects compare every attribute they hold.
    """
    if type(a) is not type(b):
        return False
    if isinstance(a, (tuple, list)):
        return (len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
                and same(getattr(a, "__dict__", None), getattr(b, "__dict__", None)))
    if type(a) is OrderedDict:
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, dict):
        if type(a) is defaultdict and a.default_factory is not b.default_factory:
            return False
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if attrs.has(type(a)):
        return all(same(getattr(a, f.name), getattr(b, f.name)) for f in attrs.fields(type(a)))
    if dataclasses.is_dataclass(a):
        return same(vars(a), vars(b))
    return a is None and b is None or a == b


def dict_orders(tree: Any) -> list[tuple[list, list]]:
    """Per plain dict or defaultdict in the tree: (its key order, the order JAX gives it)."""
    out = []
    stack = [tree]
    while stack:
        node = stack.pop()
        if type(node) in (dict, defaultdict):
            try:
                expected = sorted(node)
            except TypeError:
                expected = list(node)
            out.append((list(node), expected))
            stack.extend(node.values())
        elif isinstance(node, (tuple, list)):
            stack.extend(node)
        elif isinstance(node, OrderedDict):
            stack.extend(node.values())
        elif attrs.has(type(node)) or dataclasses.is_dataclass(node):
            stack.extend(vars(node).values() if hasattr(node, "__dict__") else
                         [getattr(node, f.name) for f in attrs.fields(type(node))])
    return out


def _containers(children: st.SearchStrategy) -> st.SearchStrategy:
    keys = st.text("abwxyz_", min_size=1, max_size=3)
    return st.one_of(
        st.lists(children, max_size=3).map(tuple),
        st.lists(children, max_size=3),
        st.dictionaries(keys, children, max_size=3),
        st.dictionaries(st.one_of(keys, st.integers(0, 3)), children, max_size=3),
        st.dictionaries(keys, children, max_size=3).map(lambda d: OrderedDict(d)),
        st.dictionaries(keys, children, max_size=3).map(lambda d: defaultdict(list, d)),
        st.builds(Point, children, children),
        st.builds(Pair, children, children),
        st.lists(children, max_size=3).map(lambda xs: Vec(*xs)),
        st.builds(Box, children, children),
        st.builds(FrozenBox, children, children),
        st.builds(Dc, children, children),
        st.builds(FrozenDc, children, children),
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
    rebuilt = tg.tree_unflatten(treedef, leaves)
    assert same(rebuilt, tree)
    assert tg.tree_structure(rebuilt) == treedef == tg.tree_structure(tree)
    assert hash(tg.tree_structure(rebuilt)) == hash(treedef)
    assert [paths_leaf for _, paths_leaf in tree_paths(tree)] == leaves


@SOME
@given(tree=TREES)
def test_rebuilt_dicts_are_in_jax_order(tree: Any) -> None:
    """Rebuilt dicts have sorted keys (insertion order when keys cannot be sorted)."""
    leaves, treedef = tg.tree_flatten(tree)
    for order, expected in dict_orders(tg.tree_unflatten(treedef, leaves)):
        assert order == expected


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
    with pytest.raises(ValueError, match=re.escape("TreeDef(Dc(a=*, b=*))")):
        tg.tree_map(lambda a, b: a + b, Dc(1.0, 2.0), FrozenDc(1.0, 2.0))


def test_tree_leaves_order_and_none() -> None:
    """tree_leaves lists leaves left to right (dict keys sorted), skipping None and empties."""
    tree = {"b": [1.0, None, (2.0, ())], "a": Point(3.0, {}), "c": Box(4.0, FrozenBox(5.0))}
    assert tg.tree_leaves(tree) == [3.0, 1.0, 2.0, 4.0, 5.0]
    assert tg.tree_leaves(None) == []
    assert tg.tree_leaves(7.0) == [7.0]


def test_tree_unflatten_wrong_leaf_count_raises() -> None:
    """tree_unflatten with too few or too many leaves is a ValueError."""
    _, treedef = tg.tree_flatten((1.0, [2.0]))
    with pytest.raises(ValueError, match="2 leaves"):
        tg.tree_unflatten(treedef, [1.0])
    with pytest.raises(ValueError, match="2 leaves"):
        tg.tree_unflatten(treedef, [1.0, 2.0, 3.0])


def test_tree_unflatten_takes_any_iterable() -> None:
    """Leaves may come as a tuple or a generator; lists in the result are still lists."""
    _, treedef = tg.tree_flatten([[1.0, 2.0], (3.0,)])
    assert same(tg.tree_unflatten(treedef, (4.0, 5.0, 6.0)), [[4.0, 5.0], (6.0,)])
    assert same(tg.tree_unflatten(treedef, (v for v in "abc")), [["a", "b"], ("c",)])


def test_tree_unflatten_does_not_share_the_leaf_list() -> None:
    """A rebuilt list is a new list: changing it leaves the caller's leaves alone."""
    leaves, treedef = tg.tree_flatten([1.0, 2.0])
    rebuilt = tg.tree_unflatten(treedef, leaves)
    rebuilt.append(3.0)
    assert leaves == [1.0, 2.0]


# -- dicts ------------------------------------------------------------------------------


def test_dict_leaves_in_sorted_key_order() -> None:
    """Dict leaves follow sorted keys; the rebuilt dict is built in that order."""
    leaves, treedef = tg.tree_flatten({"z": 1.0, "a": 2.0, "m": 3.0})
    assert leaves == [2.0, 3.0, 1.0]
    rebuilt = tg.tree_unflatten(treedef, [10.0, 20.0, 30.0])
    assert list(rebuilt.items()) == [("a", 10.0), ("m", 20.0), ("z", 30.0)]


def test_dicts_with_the_same_keys_have_one_structure() -> None:
    """Insertion order does not change a dict's structure, its equality or its hash."""
    first = tg.tree_structure({"w": 1.0, "b": (2.0, 3.0)})
    second = tg.tree_structure({"b": (0.0, 0.0), "w": 0.0})
    assert first == second
    assert hash(first) == hash(second)
    assert {first: "seen"}[second] == "seen"


def test_unsortable_keys_keep_insertion_order() -> None:
    """Keys that cannot be sorted together (1 and 'a') keep their insertion order."""
    leaves, treedef = tg.tree_flatten({"a": 1.0, 1: 2.0})
    assert leaves == [1.0, 2.0]
    assert list(tg.tree_unflatten(treedef, [3.0, 4.0])) == ["a", 1]
    assert tg.tree_leaves({1: 2.0, "a": 1.0}) == [2.0, 1.0]
    assert tg.tree_structure({"a": 1.0, 1: 2.0}) != tg.tree_structure({1: 2.0, "a": 1.0})


def test_jvp_tangent_dict_in_another_key_order() -> None:
    """jvp pairs primal and tangent dict entries by key, whatever their insertion order."""
    f = lambda p: p["w"] * p["b"] + 3.0 * p["w"]
    out, tangent = tg.jvp(f, ({"w": 2.0, "b": 5.0},), ({"b": 1.0, "w": 0.5},))
    # d f = b dw + w db + 3 dw = 5 * 0.5 + 2 * 1 + 3 * 0.5
    assert out == 16.0
    assert tangent == 6.0


def test_vjp_cotangent_dict_in_another_key_order() -> None:
    """vjp_fn pairs cotangent dict entries with outputs by key."""
    out, f_vjp = tg.vjp(lambda x: {"sq": x * x, "lin": 3.0 * x}, 2.0)
    assert out == {"lin": 6.0, "sq": 4.0}
    (ct,) = f_vjp({"sq": 1.0, "lin": 10.0})  # 1 * 2x + 10 * 3
    assert ct == 34.0


def test_dict_gradient_has_sorted_keys() -> None:
    """A dict gradient comes back with sorted keys (as JAX does), each with its own value."""
    g = tg.grad(lambda p: p["z"] * p["a"] + p["z"])({"z": 2.0, "a": 3.0})
    assert list(g.items()) == [("a", 2.0), ("z", 4.0)]


def test_tree_map_pairs_dicts_by_key() -> None:
    """tree_map over dicts inserted in different orders matches entries by key."""
    out = tg.tree_map(lambda a, b: a - b, {"x": 10.0, "y": 1.0}, {"y": 100.0, "x": 1000.0})
    assert out == {"x": -990.0, "y": -99.0}


@pytest.mark.parametrize(
    ("arg", "path"),
    [
        ({"z": 1.0, "a": "bad"}, "args[0]['a']"),
        ({"z": "bad", "a": 1.0}, "args[0]['z']"),
        ({"z": [1.0, 2.0], "a": {"q": 1.0, "p": (2.0, "bad")}}, "args[0]['a']['p'][1]"),
        ({"a": 1.0, 2: "bad"}, "args[0][2]"),
    ],
)
def test_error_names_the_leaf_after_sorting(arg: dict, path: str) -> None:
    """The bad-leaf error names the leaf's own key, not the one at its insertion position."""
    with pytest.raises(TypeError, match=re.escape(f"argument {path} is str")):
        tg.grad(lambda p: 0.0)(arg)


def test_tree_paths_follow_leaf_order() -> None:
    """tree_paths lists each leaf with its path, in the order tree_flatten gives leaves."""
    tree = {"w": [1.0, Point(2.0, 3.0)], "b": Box(4.0, Vec(5.0)), "d": Dc(6.0, None)}
    assert tree_paths(tree, "p") == [
        ("p['b'].value", 4.0), ("p['b']._hidden[0]", 5.0), ("p['d'].a", 6.0),
        ("p['w'][0]", 1.0), ("p['w'][1].x", 2.0), ("p['w'][1].y", 3.0),
    ]
    assert [leaf for _, leaf in tree_paths(tree)] == tg.tree_leaves(tree)


# -- OrderedDict and defaultdict --------------------------------------------------------


def test_ordered_dict_keeps_its_type_and_order() -> None:
    """An OrderedDict is a pytree in its own key order; its gradient is an OrderedDict."""
    params = OrderedDict([("z", 2.0), ("a", 3.0)])
    assert tg.tree_leaves(params) == [2.0, 3.0]
    g = tg.grad(lambda p: p["z"] * p["z"] * p["a"])(params)
    assert type(g) is OrderedDict
    assert list(g.items()) == [("z", 12.0), ("a", 4.0)]
    assert tree_paths(params) == [("['z']", 2.0), ("['a']", 3.0)]


def test_ordered_dict_order_is_part_of_the_structure() -> None:
    """Two OrderedDicts with their keys in different orders are different structures."""
    one = tg.tree_structure(OrderedDict([("a", 1.0), ("b", 2.0)]))
    other = tg.tree_structure(OrderedDict([("b", 1.0), ("a", 2.0)]))
    assert one != other
    assert one != tg.tree_structure({"a": 1.0, "b": 2.0})


def test_defaultdict_keeps_type_factory_and_sorts_keys() -> None:
    """A defaultdict gradient is a defaultdict with the same factory, keys sorted."""
    params = defaultdict(float, {"z": 2.0, "a": 3.0})
    assert tg.tree_leaves(params) == [3.0, 2.0]
    g = tg.grad(lambda p: p["z"] * p["a"])(params)
    assert type(g) is defaultdict and g.default_factory is float
    assert list(g.items()) == [("a", 2.0), ("z", 3.0)]
    assert g["missing"] == 0.0  # the factory still works


def test_defaultdict_factory_is_part_of_the_structure() -> None:
    """defaultdicts differing only in their factory are different structures."""
    ints = tg.tree_structure(defaultdict(int, {"a": 1.0}))
    floats_ = tg.tree_structure(defaultdict(float, {"a": 1.0}))
    assert ints != floats_
    assert ints == tg.tree_structure(defaultdict(int, {"a": 5.0}))
    assert ints != tg.tree_structure({"a": 1.0})


# -- tuple subclasses and unknown types ----------------------------------------------------


def test_tuple_subclass_keeps_its_type_without_running_its_code() -> None:
    """A tuple subclass's gradient is of that class, built without calling its __new__."""
    calls = []

    class Checked(tuple):
        def __new__(cls, *items: float) -> Checked:
            calls.append(items)
            if any(v <= 0 for v in items):
                raise ValueError("items must be positive")
            return super().__new__(cls, items)

    v = Checked(1.0, 2.0)
    v.unit = "m"  # instance attributes ride along
    g = tg.grad(lambda v: v[0] - 3.0 * v[1])(v)
    assert type(g) is Checked
    assert tuple(g) == (1.0, -3.0)
    assert g.unit == "m"
    assert calls == [(1.0, 2.0)]
    assert tree_paths(v) == [("[0]", 1.0), ("[1]", 2.0)]


def test_named_tuple_is_rebuilt_without_its_new() -> None:
    """A named tuple subclass with a validating __new__ still gets its (negative) gradient."""

    class Positive(collections.namedtuple("Positive", "a b")):
        __slots__ = ()

        def __new__(cls, a: float, b: float) -> Positive:
            if not (a > 0 and b > 0):
                raise ValueError("a and b must be positive")
            return super().__new__(cls, a, b)

    g = tg.grad(lambda p: p.a - p.b)(Positive(1.0, 2.0))
    assert type(g) is Positive
    assert (g.a, g.b) == (1.0, -1.0)
    assert repr(tg.tree_structure(g)) == "TreeDef(Positive(a=*, b=*))"


@pytest.mark.parametrize("value", [time.gmtime(0), os.stat(".")], ids=["struct_time", "stat"])
def test_struct_sequences_are_leaves(value: Any) -> None:
    """C struct sequences hold hidden fields a rebuild would lose, so they stay whole leaves."""
    leaves, treedef = tg.tree_flatten({"t": value})
    assert leaves == [value]
    assert tg.tree_unflatten(treedef, leaves)["t"] is value


class Scores(list):
    pass


def test_dataclass_subclassing_a_builtin_is_a_leaf() -> None:
    """A dataclass that subclasses Exception cannot be made without __init__: it is a leaf."""

    @dataclasses.dataclass
    class Failure(Exception):
        code: float

    failure = Failure(1.0)
    assert tg.tree_leaves([failure]) == [failure]


@pytest.mark.parametrize(
    ("arg", "path", "kind"),
    [
        (Scores([1.0, 2.0]), "args[0]", "Scores"),
        ({"c": collections.Counter(a=1.0)}, "args[0]['c']", "Counter"),
        ((1.0, range(3)), "args[0][1]", "range"),
    ],
)
def test_unknown_containers_are_leaves_with_a_clear_error(arg: Any, path: str, kind: str
                                                          ) -> None:
    """Other types are leaves: tree_map passes them whole, grad names their path and type."""
    assert tg.tree_map(lambda v: v, arg) == arg
    with pytest.raises(TypeError, match=re.escape(path) + f" is {kind} .*only numbers"):
        tg.grad(lambda p: 0.0)(arg)


# -- attrs classes and dataclasses ----------------------------------------------------------


def test_attrs_underscore_field_gradient() -> None:
    """A leading-underscore attrs field (init alias without '_') gets its own gradient."""
    box = Box(2.0, 5.0)
    g = tg.grad(lambda b: b.value * b._hidden)(box)
    assert type(g) is Box
    assert g.value == 5.0 and g._hidden == 2.0
    assert box == Box(2.0, 5.0)  # the argument itself is left alone


def test_attrs_alias_field() -> None:
    """A field with an explicit alias is rebuilt by its attribute name."""

    @attrs.frozen
    class Aliased:
        _w: float = attrs.field(alias="weight")
        bias: float = 0.0

    g = tg.grad(lambda a: a._w * a.bias)(Aliased(weight=2.0, bias=3.0))
    assert g == Aliased(weight=3.0, bias=2.0)


def test_attrs_rebuild_runs_no_init_converter_validator_or_post_init() -> None:
    """Converters, validators and __attrs_post_init__ run for the user's object only."""
    calls = []

    def positive(instance: Any, attribute: Any, value: Any) -> None:
        calls.append("validator")
        if not value > 0:
            raise ValueError("must be positive")

    @attrs.define
    class Strict:
        x: float = attrs.field(converter=float, validator=positive)

        def __attrs_post_init__(self) -> None:
            calls.append("post_init")

    s = Strict(3)
    calls.clear()
    g = tg.grad(lambda s: -s.x * s.x)(s)  # float() of a tracer or a -6 would both fail
    assert type(g) is Strict and g.x == -6.0
    assert calls == []
    assert tg.jvp(lambda s: s.x * s.x, (s,), (Strict(2),)) == (9.0, 12.0)
    assert calls == ["validator", "post_init"]  # building the tangent, not tracing it


@pytest.mark.parametrize("slots", [True, False])
def test_attrs_init_false_fields_keep_their_values_and_get_gradients(slots: bool) -> None:
    """init=False fields are children: their value is kept (not reset) and differentiated."""

    @attrs.define(slots=slots)
    class Scaled:
        w: float
        scale: float = attrs.field(init=False, default=1.0)
        bias: float = attrs.field(init=False, factory=lambda: 0.0)

    obj = Scaled(2.0)
    obj.scale, obj.bias = 3.0, 0.5
    g = tg.grad(lambda o: o.w * o.scale + o.bias)(obj)
    assert (g.w, g.scale, g.bias) == (3.0, 2.0, 1.0)
    assert tg.tree_unflatten(*reversed(tg.tree_flatten(obj))) == obj


@pytest.mark.parametrize("slots", [True, False])
def test_attrs_unset_init_false_field_stays_unset(slots: bool) -> None:
    """An init=False field without a default is not a child until it holds a value."""

    @attrs.define(slots=slots)
    class Lazy:
        w: float
        cache: float = attrs.field(init=False)

    obj = Lazy(2.0)
    g = tg.grad(lambda o: o.w * o.w)(obj)
    assert g.w == 4.0
    with pytest.raises(AttributeError):
        g.cache  # noqa: B018
    assert repr(tg.tree_structure(obj)) == "TreeDef(Lazy(w=*))"
    obj.cache = 5.0
    assert tg.grad(lambda o: o.w * o.cache)(obj).cache == 2.0
    assert tg.tree_structure(obj) != tg.tree_structure(Lazy(2.0))


def test_static_field_is_copied_not_traced() -> None:
    """A field marked metadata={'static': True} is no leaf: it may hold any value."""

    @attrs.frozen
    class Layer:
        w: float
        activation: Callable = attrs.field(metadata={"static": True})

    layer = Layer(0.5, tg.tanh)
    assert tg.tree_leaves(layer) == [0.5]
    g = tg.grad(lambda layer: layer.activation(layer.w))(layer)
    assert g.activation is tg.tanh
    assert math.isclose(g.w, 1.0 - math.tanh(0.5) ** 2)
    assert tg.tree_structure(layer) == tg.tree_structure(Layer(9.0, tg.tanh))
    assert tg.tree_structure(layer) != tg.tree_structure(Layer(0.5, tg.sigmoid))
    assert repr(tg.tree_structure(layer)).startswith("TreeDef(Layer(w=*, activation=<function")


def test_dataclass_static_field_and_class_and_init_vars() -> None:
    """Dataclass fields marked static are copied; ClassVar and InitVar are not fields."""

    @dataclasses.dataclass
    class Model:
        weights: tuple
        depth: int = dataclasses.field(metadata={"static": True}, default=2)
        scale: dataclasses.InitVar[float] = 1.0
        kind: ClassVar[str] = "mlp"

        def __post_init__(self, scale: float) -> None:
            self.weights = tuple(w * scale for w in self.weights)

    m = Model((1.0, 2.0), depth=3, scale=2.0)
    g = tg.grad(lambda m: sum(m.weights[i] * m.weights[i] for i in range(m.depth - 1)))(m)
    assert g == Model((4.0, 8.0), depth=3)  # scale=1.0: __post_init__ keeps the weights
    assert tg.tree_leaves(m) == [2.0, 4.0]


@pytest.mark.parametrize(
    "options",
    [{}, {"frozen": True}, {"slots": True}, {"frozen": True, "slots": True}],
    ids=["plain", "frozen", "slots", "frozen_slots"],
)
def test_dataclass_gradients(options: dict) -> None:
    """Dataclasses (frozen or not, slotted or not) are pytrees rebuilt as themselves."""
    if "slots" in options and sys.version_info < (3, 10):
        pytest.skip("dataclass(slots=True) needs Python 3.10")
    calls = []

    @dataclasses.dataclass(**options)
    class Affine:
        w: float
        b: float = 0.0
        steps: float = dataclasses.field(init=False, default_factory=lambda: 1.0)

        def __post_init__(self) -> None:
            calls.append(self.w)
            if not isinstance(self.w, float):
                raise TypeError("w must be a float")

    a = Affine(2.0, 1.0)
    object.__setattr__(a, "steps", 4.0)
    g = tg.grad(lambda a: (a.w * 3.0 + a.b) * a.steps)(a)
    assert type(g) is Affine
    assert (g.w, g.b, g.steps) == (12.0, 4.0, 7.0)
    assert calls == [2.0]
    assert tg.check_grad(lambda a: (a.w * 3.0 + a.b) * a.steps * a.w, a) < 1e-6


def test_post_init_attributes_are_copied_and_part_of_the_structure() -> None:
    """Attributes that are not fields are copied as they are, and compared as structure."""
    post_inits = []

    @dataclasses.dataclass
    class Net:
        w: float

        def __post_init__(self) -> None:
            post_inits.append(1)
            self.layers = 3

    net = Net(2.0)
    g = tg.grad(lambda n: n.w * n.layers)(net)
    assert (g.w, g.layers) == (3.0, 3)
    assert post_inits == [1]
    other = Net(5.0)
    assert tg.tree_structure(other) == tg.tree_structure(net)
    other.layers = 4
    assert tg.tree_structure(other) != tg.tree_structure(net)
    assert repr(tg.tree_structure(other)) == "TreeDef(Net(w=*, layers=4))"


def test_traced_value_outside_the_fields_is_refused() -> None:
    """An output object holding a traced value outside its fields is a clear TypeError."""

    @dataclasses.dataclass
    class Gaussian:
        mu: float
        sigma: float

        def __post_init__(self) -> None:
            self.var = self.sigma * self.sigma

    with pytest.raises(TypeError, match=r"Gaussian\.var holds a traced value.*not a field"):
        tg.jacfwd(lambda x: Gaussian(x, 2.0 * x))(1.0)


def test_cached_property_values_are_recomputed() -> None:
    """A cached_property computed on the user's object is not reused: it would be stale."""

    @dataclasses.dataclass
    class Square:
        w: float

        @functools.cached_property
        def area(self) -> float:
            return self.w * self.w

    s = Square(3.0)
    assert s.area == 9.0  # cached on the user's object
    assert tg.grad(lambda s: s.area)(s) == Square(6.0)
    assert tg.tree_structure(s) == tg.tree_structure(Square(1.0))


@pytest.mark.skipif(attrs.__version_info__ < (23, 2), reason="slotted cached_property")
def test_attrs_slotted_cached_property_is_recomputed() -> None:
    """attrs' slotted cached_property is left empty in the rebuilt object, so it recomputes."""

    @attrs.define
    class Square:
        w: float

        @functools.cached_property
        def area(self) -> float:
            return self.w * self.w

    s = Square(3.0)
    assert s.area == 9.0
    g = tg.grad(lambda s: s.area)(s)
    assert g.w == 6.0 and g.area == 36.0


@pytest.mark.parametrize("slots", [True, False])
def test_attrs_cached_hash_is_reset(slots: bool) -> None:
    """With cache_hash=True, a gradient object hashes like an equal object built normally."""

    @attrs.frozen(cache_hash=True, slots=slots)
    class Hashed:
        w: float

    h = Hashed(1.0)
    hash(h)  # caches the hash of Hashed(1.0)
    g = tg.grad(lambda h: h.w * 2.0)(h)
    assert g == Hashed(2.0)
    assert hash(g) == hash(Hashed(2.0))


def test_slots_of_a_plain_base_class_are_copied() -> None:
    """Slots that a plain base class adds are copied into the rebuilt object."""

    class Tagged:
        __slots__ = ("tag",)

    @attrs.define
    class Weight(Tagged):
        w: float

    obj = Weight(2.0)
    obj.tag = "first"
    g = tg.grad(lambda o: o.w * o.w)(obj)
    assert (g.w, g.tag) == (4.0, "first")
    assert tg.tree_structure(g) != tg.tree_structure(Weight(2.0))  # that slot is empty


def test_structure_compares_classes() -> None:
    """Objects of different classes with the same fields are different structures."""
    assert tg.tree_structure(Dc(1.0, 2.0)) != tg.tree_structure(FrozenDc(1.0, 2.0))
    assert tg.tree_structure(Box(1.0, 2.0)) == tg.tree_structure(Box(3.0, 4.0))


# -- tree definitions ---------------------------------------------------------------------


def test_treedef_repr_names_every_kind() -> None:
    """The repr reads like the tree, with * for each leaf."""
    tree = {
        "t": (1.0,), "l": [1.0, None, ()], "d": {"y": 1.0, "x": [1.0]},
        "o": OrderedDict([("q", 1.0), ("p", 1.0)]), "dd": defaultdict(list, {"k": 1.0}),
        "n": Point(1.0, [1.0]), "v": Vec(1.0, 2.0), "a": Box(1.0, {}), "c": Dc(None, 1.0),
    }
    assert repr(tg.tree_structure(tree)) == (
        "TreeDef({'a': Box(value=*, _hidden={}), 'c': Dc(a=None, b=*), 'd': {'x': [*], 'y': *}, "
        "'dd': defaultdict(list, {'k': *}), 'l': [*, None, ()], 'n': Point(x=*, y=[*]), "
        "'o': OrderedDict({'q': *, 'p': *}), 't': (*,), 'v': Vec(*, *)})"
    )
    assert repr(tg.tree_structure(3.0)) == "TreeDef(*)"
    assert repr(tg.tree_structure(None)) == "TreeDef(None)"


def test_treedef_is_read_only() -> None:
    """A TreeDef's leaf count cannot be set or deleted; copies and pickles are equal."""
    treedef = tg.tree_structure((1.0, 2.0))
    with pytest.raises(AttributeError):
        treedef.num_leaves = 3  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del treedef.num_leaves
    assert treedef.num_leaves == 2
    assert copy.deepcopy(treedef) == treedef == pickle.loads(pickle.dumps(treedef))


def test_treedef_equality() -> None:
    """Equal structures are equal TreeDefs; anything else is unequal."""
    assert tg.tree_structure([1.0, (2.0,)]) == tg.tree_structure([5, ("x",)])
    assert tg.tree_structure([1.0, (2.0,)]) != tg.tree_structure([1.0, [2.0]])
    assert tg.tree_structure([1.0, (2.0,)]) != tg.tree_structure([(1.0, 2.0)])
    assert tg.tree_structure(((1.0, 2.0), 3.0)) != tg.tree_structure((1.0, (2.0, 3.0)))
    assert tg.tree_structure([1.0]) != "TreeDef([*])"


# -- nothing recurses -----------------------------------------------------------------------

DEPTH = 100_000


def nested(depth: int, leaf: Any) -> Any:
    tree = leaf
    for _ in range(depth):
        tree = [tree]
    return tree


def test_deeply_nested_structure() -> None:
    """A list nested 100,000 deep flattens, rebuilds, compares, hashes, prints and has a path."""
    tree = nested(DEPTH, 1.5)
    leaves, treedef = tg.tree_flatten(tree)
    assert leaves == [1.5]
    rebuilt = tg.tree_unflatten(treedef, [2.5])
    assert tg.tree_structure(rebuilt) == treedef
    assert hash(tg.tree_structure(rebuilt)) == hash(treedef)
    assert tg.tree_structure(nested(DEPTH, (1.0, 2.0))) != treedef
    assert repr(treedef) == "TreeDef(" + "[" * DEPTH + "*" + "]" * DEPTH + ")"
    assert tree_paths(tree) == [("[0]" * DEPTH, 1.5)]
    inner = rebuilt
    for _ in range(DEPTH):
        (inner,) = inner
    assert inner == 2.5
    assert tg.tree_leaves(tg.tree_map(lambda v: v * 2.0, tree)) == [3.0]


def test_deeply_nested_argument_to_grad_and_jit() -> None:
    """grad and jit take a 100,000-deep argument."""
    tree = nested(DEPTH, [2.0, 3.0])
    g = tg.grad(lambda t: tg.tree_leaves(t)[0] * tg.tree_leaves(t)[1])(tree)
    assert tg.tree_leaves(g) == [3.0, 2.0]
    fast = tg.jit(lambda t: tg.tree_leaves(t)[0] - tg.tree_leaves(t)[1])
    assert fast(tree) == -1.0
    assert fast(nested(DEPTH, [5.0, 1.0])) == 4.0
    assert fast.traces == 1


def list_holding_itself() -> list:
    tree: list = [1.0]
    tree.append(tree)
    return tree


def dataclass_holding_itself() -> Dc:
    tree = Dc(1.0, [])
    tree.b.append(tree)
    return tree


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (list_holding_itself, "the list at the top appears again inside itself, at [1]"),
        (lambda: {"x": (2.0, list_holding_itself())},
         "the list at ['x'][1] appears again inside itself, at ['x'][1][1]"),
        (dataclass_holding_itself, "the Dc at the top appears again inside itself, at .b[0]"),
    ],
    ids=["list", "nested", "dataclass"],
)
def test_a_tree_that_contains_itself_is_refused(monkeypatch: pytest.MonkeyPatch,
                                                make: Callable, message: str) -> None:
    """A reference cycle is a ValueError naming where it closes, not an endless loop."""
    monkeypatch.setattr(pytree, "_CHECK_CYCLES_AT", 64)  # the real check waits for 2**20 nodes
    tree = make()
    for call in (tg.tree_flatten, lambda t: tg.grad(lambda t: 0.0)(t), tree_paths):
        with pytest.raises(ValueError, match=re.escape(message)):
            call(tree)


def test_shared_subtrees_are_not_cycles(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same container twice (not inside itself) is fine, past the cycle check too."""
    monkeypatch.setattr(pytree, "_CHECK_CYCLES_AT", 64)
    shared = [1.0, (2.0, None)]
    tree = [[shared, {"s": shared}] for _ in range(100)]
    leaves, treedef = tg.tree_flatten(tree)
    assert leaves == [1.0, 2.0] * 200
    assert same(tg.tree_unflatten(treedef, leaves), tree)
    assert len(tree_paths(tree)) == 400


# -- pytrees through jit ---------------------------------------------------------------------


def test_jit_pairs_dict_entries_by_key() -> None:
    """jit reuses one variant for dicts in any insertion order and reads each entry by key."""
    fast = tg.jit(lambda p: p["a"] - 2.0 * p["b"])
    assert fast({"a": 1.0, "b": 10.0}) == -19.0
    assert fast({"b": 3.0, "a": 5.0}) == -1.0
    assert fast.traces == 1


def test_jit_retraces_when_copied_attributes_differ() -> None:
    """Objects whose non-field attributes differ get their own compiled variant."""

    @dataclasses.dataclass
    class Scaled:
        w: float

    def f(s: Scaled) -> Any:
        return s.w * s.factor

    fast = tg.jit(f)
    first, second = Scaled(2.0), Scaled(2.0)
    first.factor, second.factor = 3.0, 5.0
    assert fast(first) == 6.0
    assert fast(second) == 10.0
    assert fast.traces == 2


def test_jit_rebuilds_every_output_kind() -> None:
    """Compiled code returns each container kind exactly as the eager function does."""

    @dataclasses.dataclass(frozen=True)
    class Out:
        v: float
        note: str = dataclasses.field(default="n", metadata={"static": True})

    def f(p: Any) -> Any:
        x, y = p["x"], p["y"]
        return {
            "o": OrderedDict([("z", x), ("a", y)]), "d": defaultdict(list, {"k": x * y}),
            "v": Vec(x, 2.0 * y), "n": Pair(y, x), "c": Out(x + y), "b": FrozenBox(x, None),
            "e": ((), {}, [None]),
        }

    fast = tg.jit(f)
    for args in ({"x": 1.0, "y": 2.0}, {"y": -3.0, "x": 0.5}):
        assert same(fast(args), f(args))
    assert fast.traces == 1


def test_jit_deeply_nested_output() -> None:
    """An output nested deeper than Python's parser allows still comes back from jit."""
    fast = tg.jit(lambda x: nested(300, (x, 2.0 * x)))
    out = fast(1.5)
    assert same(out, nested(300, (1.5, 3.0)))
    assert same(fast(2.0), nested(300, (2.0, 4.0)))
    assert fast.traces == 1


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
        (Dc(1.0, (2.0,)), Dc(2.0, (4.0,))),
        (FrozenDc(Vec(1.0, 3.0)), FrozenDc(Vec(2.0, 6.0))),
        (OrderedDict(b=1.0, a=2.0), OrderedDict(b=2.0, a=4.0)),
        (defaultdict(list, b=1.0), defaultdict(list, b=2.0)),
        ({"a": None, "b": (None, 1.5)}, {"a": None, "b": (None, 3.0)}),
        ((), ()),
        (({}, [], None), ({}, [], None)),
    ],
    ids=["tuple", "list", "dict", "namedtuple", "typing_namedtuple", "attrs", "attrs_frozen",
         "dataclass", "dataclass_frozen", "ordereddict", "defaultdict", "none", "empty",
         "empty_mixed"],
)
def test_gradient_structure_for_each_kind(arg: Any, expected: Any) -> None:
    """grad over each kind of container returns that same kind, leaves as floats."""
    g = tg.grad(sum_of_squares)(arg)
    assert same(g, expected), g


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
        "d": Dc(x, 2.0),
        "o": OrderedDict(z=x, a=1.0),
        "v": Vec(x),
    }


EXPECTED_VALUES = {
    "t": (2.0, 4.0), "l": [4.0, None], "p": Point(2.0, 1.0), "n": Pair(6.0, 2.0),
    "b": Box(2.0, -2.0), "f": FrozenBox(8.0), "d": Dc(2.0, 2.0), "o": OrderedDict(z=2.0, a=1.0),
    "v": Vec(2.0),
}
EXPECTED_DERIVATIVES = {
    "t": (1.0, 4.0), "l": [2.0, None], "p": Point(1.0, 0.0), "n": Pair(3.0, 1.0),
    "b": Box(1.0, -1.0), "f": FrozenBox(12.0), "d": Dc(1.0, 0.0), "o": OrderedDict(z=1.0, a=0.0),
    "v": Vec(1.0),
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
