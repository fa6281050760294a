"""Tests for tapegrad.nn: the MLP, the losses and their gradients, and JSON save/load."""

import json
import math

import pytest

import tapegrad as tg
from tapegrad import nn


def central_differences(f, xs, eps=1e-6):
    """The gradient of f at the list of floats xs, by central differences (independent of tg)."""
    grads = []
    for k in range(len(xs)):
        up, down = list(xs), list(xs)
        up[k] += eps
        down[k] -= eps
        grads.append((f(up) - f(down)) / (2 * eps))
    return grads


def sigmoid(z):
    return 1.0 / (1.0 + math.exp(-z))


# ---------------------------------------------------------------------------
# The network.
# ---------------------------------------------------------------------------


def test_init_mlp_shapes_determinism_and_scale():
    """init_mlp nests layers > neurons > (weights, bias), is seeded, and stays within Glorot."""
    params = nn.init_mlp(3, [5, 2], seed=7)
    assert type(params) is tuple and [len(layer) for layer in params] == [5, 2]
    for layer, fan_in, fan_out in ((params[0], 3, 5), (params[1], 5, 2)):
        for weights, bias in layer:
            assert type(weights) is tuple and len(weights) == fan_in
            assert bias == 0.0
            assert all(abs(w) <= math.sqrt(6 / (fan_in + fan_out)) for w in weights)
    assert nn.init_mlp(3, [5, 2], seed=7) == params
    assert nn.init_mlp(3, [5, 2], seed=8) != params
    with pytest.raises(ValueError, match="sizes"):
        nn.init_mlp(3, [])
    with pytest.raises(ValueError, match="n_in"):
        nn.init_mlp(0, [2])


HAND_PARAMS = (
    (((1.0, 2.0), 0.5), ((-1.0, 0.0), 0.0)),  # hidden layer: two neurons
    (((1.0, -2.0), 0.25),),                   # output layer: one neuron
)


def test_mlp_matches_hand_computation():
    """mlp applies activation to hidden layers and final_activation (or nothing) to the last."""
    h = [math.tanh(1.0 * 1 + 2.0 * 1 + 0.5), math.tanh(-1.0)]
    linear = h[0] - 2.0 * h[1] + 0.25
    assert nn.mlp(HAND_PARAMS, (1.0, 1.0)) == pytest.approx([linear])
    assert nn.mlp(HAND_PARAMS, (1.0, 1.0), final_activation=tg.tanh) == pytest.approx(
        [math.tanh(linear)])
    assert nn.mlp(HAND_PARAMS, (1.0, 1.0), activation=tg.relu) == pytest.approx(
        [3.5 - 0.0 + 0.25])


def test_mlp_rejects_wrong_input_size():
    """An input of the wrong length is named in a ValueError, not a zip that silently truncates."""
    with pytest.raises(ValueError, match="3 features"):
        nn.mlp(HAND_PARAMS, (1.0, 2.0, 3.0))


def test_mlp_records_one_dot_per_neuron():
    """Each neuron (weighted sum, bias and tanh) is exactly one fused dot record."""
    params = nn.init_mlp(2, [16, 16, 1], seed=0)
    tape = tg.trace(lambda p: nn.mlp(p, (0.3, -0.7)))(params)
    ops = [record.op for record in tape]
    n_leaves = len(tg.tree_leaves(params))
    assert ops.count("input") == n_leaves
    assert ops.count("dot") == 33
    assert len(tape) == n_leaves + 33
    hidden_dot = next(r for r in tape if r.op == "dot" and len(r.inputs) == 33)
    assert len(hidden_dot.partials) == 33  # 16 weights, 16 traced inputs and the bias
    text = str(tape)
    assert text.count("tanh(dot(") == 32  # the output layer is linear
    assert "\n%" in text and "= dot(" in text


def test_unfusable_activation_is_applied_after_the_dot():
    """A user-defined activation is not fused: it records its own operations after the dot."""
    params = nn.init_mlp(2, [3, 1], seed=0)

    def leaky(v):
        return tg.relu(v) + 0.1 * v

    tape = tg.trace(lambda p: nn.mlp(p, (0.3, -0.7), activation=leaky))(params)
    assert [r.op for r in tape].count("relu") == 3
    grads = tg.grad(lambda p: nn.mlp(p, (0.3, -0.7), activation=leaky)[0])(params)
    assert tg.tree_structure(grads) == tg.tree_structure(params)


@pytest.mark.parametrize("activation", [tg.tanh, tg.relu, tg.sigmoid, tg.sin, tg.exp])
def test_fused_activation_gradients_match_unfused(activation):
    """The fused dot+activation record gives the gradient of the unfused operations."""
    params = nn.init_mlp(3, [4, 2], seed=5)
    x = (0.4, -1.2, 0.7)

    def fused(p):
        return tg.sum(nn.mlp(p, x, activation=activation, final_activation=activation))

    def unfused(p):
        outputs = x
        for layer in p:
            outputs = [activation(tg.dot(w, outputs) + b) for w, b in layer]
        return tg.sum(outputs)

    assert fused(params) == pytest.approx(unfused(params), rel=1e-12)
    got = tg.tree_leaves(tg.grad(fused)(params))
    want = tg.tree_leaves(tg.grad(unfused)(params))
    assert got == pytest.approx(want, rel=1e-12, abs=1e-15)
    assert tg.check_grad(fused, params, per_record=True) < 1e-4
    fast = tg.jit(tg.value_and_grad(fused))
    assert tg.tree_leaves(fast(params)) == pytest.approx(
        tg.tree_leaves(tg.value_and_grad(unfused)(params)), rel=1e-12, abs=1e-15)


def test_mlp_gradient_matches_central_differences():
    """grad through a small MLP and a loss agrees with central differences on every parameter."""
    params = nn.init_mlp(3, [4, 2], seed=3)
    leaves, treedef = tg.tree_flatten(params)
    data = [((0.5, -1.0, 2.0), 1), ((1.5, 0.2, -0.3), 0)]

    def loss(p):
        logits = [nn.mlp(p, x) for x, _ in data]
        return nn.softmax_cross_entropy(logits, [label for _, label in data])

    grads = tg.tree_leaves(tg.grad(loss)(params))
    numeric = central_differences(lambda xs: loss(tg.tree_unflatten(treedef, xs)), leaves)
    assert grads == pytest.approx(numeric, abs=1e-7)


# ---------------------------------------------------------------------------
# Losses: values by hand, gradients against central differences.
# ---------------------------------------------------------------------------


def test_squared_error_losses_by_hand():
    """sum_squared_error sums and mse averages (prediction - target) ** 2."""
    assert nn.sum_squared_error([1.0, 2.0, -1.0], [0.0, 4.0, -1.0]) == 5.0
    assert nn.mse([1.0, 2.0, -1.0], [0.0, 4.0, -1.0]) == pytest.approx(5.0 / 3)


def test_hinge_loss_by_hand():
    """hinge_loss is the mean of relu(1 - y * s)."""
    # 1 - 2 < 0 -> 0;  1 + 0.5 -> 1.5;  1 + 1 -> 2
    assert nn.hinge_loss([2.0, 0.5, -1.0], [1, -1, 1]) == pytest.approx(3.5 / 3)


def test_binary_cross_entropy_by_hand():
    """binary_cross_entropy equals -y log sigmoid(z) - (1 - y) log(1 - sigmoid(z)), averaged."""
    logits, labels = [0.0, 2.0, -3.0], [1, 0, 1]
    expected = sum(-y * math.log(sigmoid(z)) - (1 - y) * math.log(1 - sigmoid(z))
                   for z, y in zip(logits, labels)) / 3
    assert nn.binary_cross_entropy(logits, labels) == pytest.approx(expected, rel=1e-12)


def test_softmax_cross_entropy_by_hand():
    """softmax_cross_entropy is the mean of log(sum exp(row)) - row[label]."""
    rows, labels = [[1.0, 2.0, 3.0], [0.5, -0.5, 0.0]], [0, 2]
    expected = sum(math.log(sum(math.exp(z) for z in row)) - row[label]
                   for row, label in zip(rows, labels)) / 2
    assert nn.softmax_cross_entropy(rows, labels) == pytest.approx(expected, rel=1e-12)


def test_l2_is_one_dot_record():
    """l2 sums the squares of every leaf, and records one dot for all of them."""
    params = {"a": (1.0, -2.0), "b": [3.0, (0.5,)]}
    assert nn.l2(params) == 1 + 4 + 9 + 0.25
    tape = tg.trace(nn.l2)(params)
    assert [r.op for r in tape] == ["input"] * 4 + ["dot"]
    assert tg.grad(nn.l2)(params) == {"a": (2.0, -4.0), "b": [6.0, (1.0,)]}


LOSS_CASES = [
    ("mse", lambda xs: nn.mse(xs, [0.5, -1.0, 2.0]), [0.3, 0.1, -0.4]),
    ("sum_squared_error", lambda xs: nn.sum_squared_error(xs, [0.5, -1.0, 2.0]),
     [0.3, 0.1, -0.4]),
    ("hinge_loss", lambda xs: nn.hinge_loss(xs, [1, -1, 1]), [0.3, 0.1, 1.7]),
    ("binary_cross_entropy", lambda xs: nn.binary_cross_entropy(xs, [1, 0, 1]),
     [0.3, 2.5, -4.0]),
    ("softmax_cross_entropy",
     lambda xs: nn.softmax_cross_entropy([xs[:3], xs[3:]], [2, 0]),
     [0.3, 2.5, -4.0, 1.0, 1.0, 0.2]),
    ("l2", nn.l2, [0.3, -2.5, 4.0]),
]


@pytest.mark.parametrize("name, loss, xs", LOSS_CASES, ids=[c[0] for c in LOSS_CASES])
def test_loss_gradients_match_central_differences(name, loss, xs):
    """Every loss's tapegrad gradient agrees with central differences of its value."""
    assert tg.grad(loss)(xs) == pytest.approx(central_differences(loss, xs), abs=1e-7)


def test_cross_entropy_gradients_by_hand():
    """d BCE / dz = (sigmoid(z) - y) / n, also at z = 0; d CE / d row = (softmax - onehot) / n."""
    g = tg.grad(lambda z: nn.binary_cross_entropy(z, [1, 0]))([0.0, 1.5])
    assert g == pytest.approx([(0.5 - 1) / 2, (sigmoid(1.5) - 0) / 2])
    row = [1.0, 2.0, 0.0]
    total = sum(math.exp(z) for z in row)
    g = tg.grad(lambda r: nn.softmax_cross_entropy([r], [1]))(row)
    assert g == pytest.approx([math.exp(z) / total - (k == 1) for k, z in enumerate(row)])


def test_cross_entropies_are_stable_for_huge_logits():
    """Logits of +-1000 give exact finite losses and gradients instead of overflow or nan."""
    value, g = tg.value_and_grad(lambda z: nn.binary_cross_entropy(z, [1, 0, 0]))(
        [1000.0, -1000.0, 1000.0])
    assert value == pytest.approx(1000.0 / 3)
    assert g == pytest.approx([0.0, 0.0, 1 / 3])
    value, g = tg.value_and_grad(lambda r: nn.softmax_cross_entropy([r], [1]))(
        [1000.0, 0.0, -1000.0])
    assert value == pytest.approx(1000.0)
    assert g == pytest.approx([1.0, -1.0, 0.0])
    assert nn.softmax_cross_entropy([[1000.0, 999.0]], [0]) == pytest.approx(
        math.log(1 + math.exp(-1)))


def test_losses_reject_bad_labels_and_lengths():
    """Wrong label values or types, mismatched lengths and empty batches raise clear errors."""
    with pytest.raises(ValueError, match="-1 or \\+1"):
        nn.hinge_loss([0.5], [0])
    with pytest.raises(ValueError, match="0 or 1"):
        nn.binary_cross_entropy([0.5], [-1])
    with pytest.raises(ValueError, match="out of range"):
        nn.softmax_cross_entropy([[0.5, 1.0]], [2])
    with pytest.raises(TypeError, match="ints"):
        nn.softmax_cross_entropy([[0.5, 1.0]], [1.0])
    with pytest.raises(ValueError, match="2 predictions but 1 targets"):
        nn.mse([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="empty"):
        nn.hinge_loss([], [])


def test_accuracy_helpers():
    """accuracy reads signs against +-1 labels; argmax and multiclass_accuracy read rows."""
    assert nn.accuracy([0.3, -2.0, 0.1, 0.0], [1, -1, -1, 1]) == 0.5
    assert nn.argmax([0.1, 2.0, 2.0, -1.0]) == 1
    assert nn.multiclass_accuracy([[0.1, 2.0], [3.0, 1.0], [0.0, 5.0]], [1, 1, 1]) == 2 / 3


# ---------------------------------------------------------------------------
# Saving and loading.
# ---------------------------------------------------------------------------


def same(a, b):
    """Equal values with equal types all the way down (1 == 1.0 and (1,) vs [1] are told apart)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


def test_save_load_round_trip_is_exact(tmp_path):
    """Nested tuples, lists, dicts, None, ints and floats come back with types and order kept."""
    tree = {"z": ((1.0, 2), [3.5, (-0.0, 1e-300)]), 4: None, "a": [], "t": ((),)}
    path = tmp_path / "tree.json"
    nn.save(path, tree)
    assert same(nn.load(path), tree)
    params = nn.init_mlp(2, [3, 1], seed=5)
    nn.save(str(path), params)
    assert same(nn.load(str(path), like=params), params)
    document = json.loads(path.read_text())
    assert (document["format"], document["version"]) == ("tapegrad-params", 1)


@pytest.mark.parametrize("text, message", [
    ("{not json", "not valid JSON"),
    ('{"format": "other", "version": 1, "params": 1.0}', "expected format 'tapegrad-params'"),
    ('[1.0, 2.0]', "not a tapegrad parameter file"),
    ('{"format": "tapegrad-params", "version": 99, "params": 1.0}', "version 99"),
    ('{"format": "tapegrad-params", "version": 1}', "no 'params'"),
    ('{"format": "tapegrad-params", "version": 1, "params": {"tuple": [1.0, "x"]}}',
     r"leaf params\[1\] is str 'x', not a number"),
    ('{"format": "tapegrad-params", "version": 1, "params": {"list": [true]}}',
     r"leaf params\[0\] is bool"),
    ('{"format": "tapegrad-params", "version": 1, "params": {"set": [1.0]}}',
     "unexpected"),
    ('{"format": "tapegrad-params", "version": 1, "params": {"dict": [[1.5, 2.0]]}}',
     "malformed entry"),
])
def test_load_errors_name_the_problem_and_file(tmp_path, text, message):
    """A corrupt or foreign file raises ValueError naming the problem and the file's path."""
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(ValueError, match=message) as info:
        nn.load(path)
    assert str(path) in str(info.value)


def test_load_like_checks_structure(tmp_path):
    """load(like=...) refuses parameters whose structure differs from the template."""
    path = tmp_path / "p.json"
    nn.save(path, nn.init_mlp(2, [3, 1], seed=0))
    with pytest.raises(ValueError, match="structure"):
        nn.load(path, like=nn.init_mlp(2, [4, 1], seed=0))


@pytest.mark.parametrize("tree, error, message", [
    ((1.0, "two"), TypeError, r"leaf params\[1\] is str"),
    ({"w": {1.0}}, TypeError, r"params\['w'\] is set"),
    ((True,), TypeError, "bool"),
    ({(1, 2): 1.0}, TypeError, "only str and int keys"),
    ([1.0, math.nan], ValueError, r"params\[1\] is nan"),
])
def test_save_rejects_unsupported_leaves(tmp_path, tree, error, message):
    """Leaves that JSON cannot restore exactly raise an error naming the leaf's path."""
    with pytest.raises(error, match=message):
        nn.save(tmp_path / "x.json", tree)


def test_save_rejects_traced_values(tmp_path):
    """Saving inside grad names the traced value instead of writing a broken file."""
    def loss(p):
        nn.save(tmp_path / "x.json", p)
        return p[0]

    with pytest.raises(TypeError, match="traced value"):
        tg.grad(loss)((1.0,))
    assert not (tmp_path / "x.json").exists()


def test_fused_records_in_forward_mode_and_second_order():
    """Fused dense records give the right jvp and Hessian (forward sweep, nested traces)."""
    params = nn.init_mlp(2, [3, 1], seed=7)
    x = (0.8, -0.4)

    def loss(p):
        return nn.mlp(p, x, final_activation=tg.tanh)[0] ** 2

    leaves, treedef = tg.tree_flatten(params)
    direction = [0.1 * ((-1) ** k) * (k + 1) for k in range(len(leaves))]
    _, tangent = tg.jvp(loss, (params,), (tg.tree_unflatten(treedef, direction),))
    grad_leaves = tg.tree_leaves(tg.grad(loss)(params))
    assert tangent == pytest.approx(sum(g * d for g, d in zip(grad_leaves, direction)), rel=1e-10)

    h = 1e-5
    hess = tg.hessian(lambda flat: loss(tg.tree_unflatten(treedef, flat)))(leaves)
    for i in (0, 4, len(leaves) - 1):
        up = list(leaves)
        down = list(leaves)
        up[i] += h
        down[i] -= h
        g_up = tg.tree_leaves(tg.grad(loss)(tg.tree_unflatten(treedef, up)))
        g_down = tg.tree_leaves(tg.grad(loss)(tg.tree_unflatten(treedef, down)))
        for j in range(len(leaves)):
            assert hess[i][j] == pytest.approx((g_up[j] - g_down[j]) / (2 * h), abs=1e-6)
