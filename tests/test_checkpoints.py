"""Tests for nn.save / nn.load as checkpoints: arrays bit for bit, named tuples and optimizer
states through like=, resuming a training run exactly, the JSON format of tapegrad 0.1, and
files that must not run code or load quietly wrong."""

import dataclasses
import io
import json
import os
import pickle
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import NamedTuple

import attrs
import numpy as np
import pytest

import tapegrad as tg
import tapegrad.numpy as tnp
from tapegrad import nn, optim


def same_bits(a, b):
    """Equal trees with equal types, and arrays of equal dtype, shape and bytes (NaN included)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, np.ndarray):
        return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
    if isinstance(a, np.generic):
        return a.dtype == b.dtype and a.tobytes() == b.tobytes()
    if isinstance(a, float):
        return np.float64(a).tobytes() == np.float64(b).tobytes()
    if isinstance(a, dict):  # rebuilt dicts have sorted keys, as pytrees flatten them
        return set(a) == set(b) and all(same_bits(a[k], b[k]) for k in a)
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(same_bits(x, y) for x, y in zip(a, b))
    if attrs.has(type(a)):
        return same_bits(attrs.astuple(a, recurse=False), attrs.astuple(b, recurse=False))
    return a == b


def awkward_floats(dtype):
    """-0.0, the smallest subnormal, the largest finite number, infinities and a NaN payload."""
    info = np.finfo(dtype)
    values = np.array([-0.0, 0.0, info.smallest_subnormal, -info.smallest_subnormal, info.max,
                       np.inf, -np.inf, 1 / 3], dtype=dtype)
    nan = np.array([np.nan], dtype=dtype)
    nan.view(f"u{nan.itemsize}")[0] |= 1  # a NaN with a payload bit set
    return np.concatenate([values, nan])


def test_arrays_round_trip_bit_for_bit(tmp_path):
    """Arrays of every numeric dtype and shape (0-d, empty, Fortran order) come back with the
    same dtype, shape and bytes; NumPy scalars and Python floats too."""
    tree = {
        "f16": awkward_floats(np.float16), "f32": awkward_floats(np.float32).reshape(3, 3),
        "f64": awkward_floats(np.float64), "int": np.arange(-3, 3, dtype=np.int8),
        "bool": np.array([True, False]), "complex": np.array([1 - 2j, -0.0j]),
        "zero_d": np.array(-0.0), "empty": np.zeros((0, 4), np.float32),
        "fortran": np.asfortranarray(np.arange(6.0).reshape(2, 3)),
        "scalar": np.float32(-0.0), "subnormal": 5e-324, "nan": float("nan"), "minus": -0.0,
        "step": 7,
        "nothing": None,
    }
    path = tmp_path / "any name at all"
    nn.save(path, tree)
    assert path.read_bytes().startswith(b"PK")  # an .npz archive, whatever the name says
    assert same_bits(nn.load(path), tree)


def test_a_float_layout_tree_is_still_written_as_json(tmp_path):
    """Python numbers in plain containers keep the JSON format of tapegrad 0.1, readable."""
    params = nn.init_mlp(2, [3, 1], seed=0)
    nn.save(tmp_path / "p", params)
    document = json.loads((tmp_path / "p").read_text())
    assert (document["format"], document["version"]) == ("tapegrad-params", 1)
    assert nn.load(tmp_path / "p", like=params) == params


def test_json_written_by_tapegrad_0_1_still_loads(tmp_path):
    """A file as version 0.1 wrote it (the text is spelled out here) loads unchanged."""
    text = ('{"format": "tapegrad-params", "version": 1, "params": {"tuple": [{"tuple": '
            '[{"tuple": [{"tuple": [0.5, -0.25]}, 0.0]}]}, {"dict": [["step", 3], [7, null]]}]}}\n')
    (tmp_path / "old.json").write_text(text)
    assert nn.load(tmp_path / "old.json") == ((((0.5, -0.25), 0.0),), {"step": 3, 7: None})


class Pair(NamedTuple):
    first: object
    second: object


@attrs.frozen
class Record:
    weights: object
    _private: object


@dataclasses.dataclass
class Layer:
    W: object
    scale: float = 1.0


def test_records_come_back_from_like(tmp_path):
    """Named tuples (optimizer states), attrs records, dataclasses and ordered dicts get their
    types from like=, as the transforms rebuild them."""
    params = nn.init_mlp(3, [4, 2], seed=1, arrays=True, dtype="float32")
    state = optim.adam(0.01).init(params)
    tree = (params, state, Pair(np.ones(2), 2.5), Record(np.zeros(3), 4),
            Layer(np.eye(2), -0.0), OrderedDict(z=1.5, a=np.ones(1)), 10)
    path = tmp_path / "checkpoint"
    nn.save(path, tree)
    like = (params, optim.adam(0.01).init(params), Pair(np.zeros(2), 0.0),
            Record(np.ones(3), 0), Layer(np.ones((2, 2))), OrderedDict(z=0.0, a=np.zeros(1)), 0)
    loaded = nn.load(path, like=like)
    assert same_bits(loaded[:4] + loaded[6:], tree[:4] + tree[6:])
    assert type(loaded[1]) is optim.AdamState and type(loaded[2]) is Pair
    assert type(loaded[3]) is Record and loaded[3]._private == 4
    assert type(loaded[4]) is Layer and same_bits(loaded[4].W, np.eye(2))
    assert same_bits(loaded[4].scale, -0.0)
    assert type(loaded[5]) is OrderedDict and list(loaded[5]) == ["z", "a"]


def test_named_tuples_need_like(tmp_path):
    """Without like=, a file holding a named tuple says where it is and what to pass."""
    params = nn.init_mlp(2, [2], seed=0)
    nn.save(tmp_path / "c", (params, optim.sgd(0.1).init(params)))
    with pytest.raises(ValueError, match=r"SgdState at params\[1\].*like="):
        nn.load(tmp_path / "c")


@pytest.mark.parametrize("like, message", [
    ((nn.init_mlp(2, [3, 1], seed=0, arrays=True), optim.adam(0.1).init(
        nn.init_mlp(2, [3, 1], seed=0, arrays=True))),
     r"params\[0\]\[0\]\[0\] differs .* shape \(4, 2\).* shape \(3, 2\)"),
    ((nn.init_mlp(2, [4, 1], seed=0, arrays=True, dtype="float32"), optim.adam(0.1).init(
        nn.init_mlp(2, [4, 1], seed=0, arrays=True, dtype="float32"))),
     "dtype float64.*dtype float32"),
    ((nn.init_mlp(2, [4, 1], seed=0, arrays=True), optim.sgd(0.1).init(
        nn.init_mlp(2, [4, 1], seed=0, arrays=True))),
     r"structure differs .*13 leaves and the template 5; the first difference is leaf 5: "
     r"params\[1\]\.mu\[0\]\[0\] in the file, no more leaves in the template"),
    ((nn.init_mlp(2, [4, 1], seed=0), None), r"first difference is leaf 0: params\[0\]\[0\]\[0\] "
     r"in the file, params\[0\]\[0\]\[0\]\[0\]\[0\] in the template"),
])
def test_like_names_where_file_and_template_differ(tmp_path, like, message):
    """A template of another shape, dtype or structure is refused, naming the place."""
    params = nn.init_mlp(2, [4, 1], seed=0, arrays=True)
    nn.save(tmp_path / "c", (params, optim.adam(0.1).init(params)))
    with pytest.raises(ValueError, match=message):
        nn.load(tmp_path / "c", like=like)


# ---------------------------------------------------------------------------
# Resuming a run: k steps, save, load, k steps == 2k steps, bit for bit.
# ---------------------------------------------------------------------------

X = np.random.default_rng(0).normal(size=(40, 3))
LABELS = (X[:, 0] * X[:, 1] > 0).astype(int) + (X[:, 2] > 1).astype(int)


def batch_for(step):
    """The batch of a step depends on the step number only, so a resumed run sees the same."""
    index = np.random.default_rng([7, step]).choice(len(X), size=8, replace=False)
    return X[index], LABELS[index]


def array_loss(params, X, labels):
    return nn.softmax_cross_entropy(nn.mlp(params, X), labels) + 1e-3 * nn.l2(params)


def float_loss(params, X, labels):
    return nn.softmax_cross_entropy([nn.mlp(params, x) for x in X.tolist()],
                                    labels.tolist())


def train(loss, params, state, step, steps, opt):
    for _ in range(steps):
        grads = tg.grad(loss)(params, *batch_for(step))
        params, state = opt.update(grads, state, params)
        step += 1
    return params, state, step


@pytest.mark.parametrize("arrays, dtype", [(True, "float32"), (True, "float64"), (False, None)])
@pytest.mark.parametrize("make", [lambda: optim.adam(0.05), lambda: optim.momentum(0.1)],
                         ids=["adam", "momentum"])
def test_resumed_training_equals_straight_training_bitwise(tmp_path, arrays, dtype, make):
    """Train k steps, save (params, state, step), load, train k more: exactly the parameters
    and state of 2k steps straight, for arrays of both dtypes and for the float layout."""
    opt = make()
    loss = array_loss if arrays else float_loss
    params = nn.init_mlp(3, [5, 3], seed=2, arrays=arrays, dtype=dtype)
    start = (params, opt.init(params), 0)
    straight = train(loss, *start, steps=6, opt=opt)

    halfway = train(loss, *start, steps=3, opt=opt)
    path = tmp_path / "runs" / "digits" / "step-3"  # folders created, no suffix needed
    nn.save(path, halfway)
    loaded = nn.load(path, like=start)
    assert same_bits(loaded, halfway)
    resumed = train(loss, *loaded, steps=3, opt=opt)
    assert same_bits(resumed, straight)
    assert not same_bits(straight[0], params)  # training moved the parameters


# ---------------------------------------------------------------------------
# Refusals: nothing unsafe written, nothing unsafe or broken read.
# ---------------------------------------------------------------------------


class Trap:
    """Unpickling a Trap creates the file named by its argument: proof that code ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_loading_never_runs_code(tmp_path):
    """An archive holding a pickled object array is refused without unpickling it."""
    marker = tmp_path / "code ran"
    buffer = io.BytesIO()
    np.savez(buffer, tree=np.array("{}"), floats=np.zeros(0),
             a0=np.array([Trap(marker)], dtype=object))
    (tmp_path / "evil").write_bytes(buffer.getvalue())
    with pytest.raises(ValueError, match="evil.*not a readable .npz archive"):
        nn.load(tmp_path / "evil")
    assert not marker.exists()
    assert pickle.loads(pickle.dumps(Trap(marker))) is None and marker.exists()  # the trap works


def archive(tmp_path, structure, **arrays):
    buffer = io.BytesIO()
    np.savez(buffer, tree=np.array(json.dumps(structure)), floats=np.array([1.5]), **arrays)
    path = tmp_path / "archive"
    path.write_bytes(buffer.getvalue())
    return path


HEADER = {"format": "tapegrad-params", "version": 2}
ONE_LEAF = {**HEADER, "paths": ["params"], "containers": {"leaf": 0}}


@pytest.mark.parametrize("structure, message", [
    ({**ONE_LEAF, "leaves": [{"array": "a9"}]}, "names the entry 'a9', which the archive"),
    ({**ONE_LEAF, "leaves": [{"float": 3}]}, r'leaf params is malformed: \{"float": 3\}'),
    ({**ONE_LEAF, "leaves": []}, "list of leaves is malformed"),
    ({**HEADER, "paths": [], "leaves": [], "containers": {"tuple": [{"set": []}]}},
     r'unexpected \{"set": \[\]\} at params\[0\]'),
    ({**HEADER, "leaves": [], "containers": None}, "has no 'paths' entry"),
    ({**ONE_LEAF, "version": 3, "leaves": []}, "version 3; this tapegrad reads version 1"),
    ({**ONE_LEAF, "format": "other", "leaves": []}, "expected format 'tapegrad-params'"),
])
def test_malformed_archives_are_named(tmp_path, structure, message):
    """A corrupt or foreign archive raises a ValueError naming the file and the problem."""
    path = archive(tmp_path, structure)
    with pytest.raises(ValueError, match=message) as info:
        nn.load(path)
    assert str(path) in str(info.value)


def test_truncated_and_foreign_archives_are_named(tmp_path):
    """A cut-off checkpoint and someone else's .npz are told apart from good files."""
    nn.save(tmp_path / "good", {"w": np.arange(100.0)})
    data = (tmp_path / "good").read_bytes()
    (tmp_path / "cut").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="cut is not a readable .npz archive"):
        nn.load(tmp_path / "cut")
    np.savez(tmp_path / "foreign.npz", weights=np.ones(3))
    with pytest.raises(ValueError, match=r"not a tapegrad checkpoint \(its entries are "
                                         r"\['weights'\]\)"):
        nn.load(tmp_path / "foreign.npz")
    assert zipfile.is_zipfile(tmp_path / "good")


def test_save_refuses_object_arrays_and_traced_values(tmp_path):
    """Object arrays (which would need pickle) and traced arrays are refused by name."""
    with pytest.raises(TypeError, match=r"params\['x'\] has dtype object.*without pickle"):
        nn.save(tmp_path / "x", {"x": np.array([None])})

    def loss(W):
        nn.save(tmp_path / "y", {"W": W})
        return tnp.sum(W)

    with pytest.raises(TypeError, match=r"params\['W'\] is ArrayTracer.*traced value"):
        tg.grad(loss)(np.ones(2))
    assert sorted(os.listdir(tmp_path)) == []


def test_save_replaces_a_checkpoint_whole_or_not_at_all(tmp_path):
    """Saving over a checkpoint replaces it; a save that fails leaves it as it was, and no
    temporary file is left behind either way."""
    path = tmp_path / "latest"
    nn.save(path, {"w": np.zeros(2)})
    nn.save(path, {"w": np.ones(2)})
    np.testing.assert_array_equal(nn.load(path)["w"], np.ones(2))
    with pytest.raises(TypeError):
        nn.save(path, {"w": np.ones(2), "bad": "text"})
    np.testing.assert_array_equal(nn.load(path)["w"], np.ones(2))
    assert os.listdir(tmp_path) == ["latest"]
