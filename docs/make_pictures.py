"""Regenerate every picture of the docs (docs/img/*.svg) from the code that draws it.

One function per picture returns its ``graphviz.Digraph``; ``main`` renders them all
with ``tapegrad.viz.render``. The tests compare each committed SVG with the drawing
made from today's code, so a picture cannot silently go stale. Rendering needs
Graphviz's ``dot`` program (``apt-get install graphviz``, ``brew install graphviz``).

Run:  .venv/bin/python docs/make_pictures.py
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any, Callable

import tapegrad as tg
from tapegrad import nn, viz
from tapegrad.graph import Value, draw_dot

IMG = Path(__file__).resolve().parent / "img"

# The seed's neuron: b makes n = 0.8814, where tanh(n) = 1/sqrt(2) and tanh'(n) = 1/2.
NAMES = ("x1", "x2", "w1", "w2", "b")
POINT = (2.0, 0.0, -3.0, 1.0, 6.8813735870195432)


def neuron(x1: Any, x2: Any, w1: Any, w2: Any, b: Any) -> Any:
    """The seed's neuron, on either engine."""
    n = x1 * w1 + x2 * w2 + b
    return n.tanh() if isinstance(n, Value) else tg.tanh(n)


def loss(x1: Any, x2: Any, w1: Any, w2: Any, b: Any) -> Any:
    """The neuron's squared error against the target 1 (docs/tape-vs-graph.md, section 7)."""
    return (neuron(x1, x2, w1, w2, b) - 1.0) ** 2


def _graph_of(f: Callable[..., Any]) -> Any:
    """f on Value nodes, after backward; intermediate nodes labelled by what they are."""
    leaves = [Value(v, label=name) for name, v in zip(NAMES, POINT)]
    x1, x2, w1, w2, b = leaves
    products = (x1 * w1, x2 * w2)
    products[0].label, products[1].label = "x1*w1", "x2*w2"
    total = products[0] + products[1]
    total.label = "x1*w1 + x2*w2"
    n = total + b
    n.label = "n"
    o = n.tanh()
    o.label = "o"
    root = o if f is neuron else (o - 1.0) ** 2
    if root is not o:
        root.label = "loss"
    root.backward()
    # Top to bottom, so that the picture is narrow enough for a page.
    return draw_dot(root, rankdir="TB")


def neuron_graph() -> Any:
    return _graph_of(neuron)


def loss_graph() -> Any:
    return _graph_of(loss)


def neuron_tape() -> Any:
    tape = tg.trace(neuron, names=NAMES)(*POINT)
    return tape.draw(rankdir="TB")


def loss_tape() -> Any:
    tape = tg.trace(loss, names=NAMES)(*POINT)
    return tape.draw(rankdir="TB")


def grad_tape() -> Any:
    tape, roles = viz.grad_tape(loss, *POINT, argnums=4, names=NAMES)
    title = ("the tape of grad(loss) with respect to b; its output is d loss/d b\n"
             "edge labels: partial derivatives\n"
             "adjoints: d output/d record, so here SECOND derivatives of the loss")
    return viz.draw_tape(tape, rankdir="TB", roles=roles, title=title)


def fused_neuron_tape() -> Any:
    """The neuron as one layer of nn.mlp, traced in its parameters: one n-ary record."""
    layer = ((POINT[2:4], POINT[4]),)
    tape = tg.trace(lambda p: nn.mlp(p, POINT[:2], activation=tg.tanh,
                                     final_activation=tg.tanh)[0], names=NAMES[2:])((layer,))
    return tape.draw(rankdir="TB")


def grad_grad_tanh_tape() -> Any:
    tape, roles = viz.grad_tape(tg.grad(tg.tanh), 0.5, names=("x",))
    title = ("the tape of grad(g) for g = grad(tanh), at x = 0.5: the second derivative\n"
             "forward pass: running g itself (tanh, then its rule as g computes it)\n"
             "derivative rule: the partials of those records; reverse sweep: grad's own")
    return viz.draw_tape(tape, rankdir="TB", roles=roles, title=title)


def arrays_digits_tape() -> Any:
    """The digits MLP on one batch of 64 images (docs/course/07-arrays.ipynb); needs
    scikit-learn for the images (pip install -e '.[docs]')."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    X, y = digits.data[:64] / 16.0, digits.target[:64]
    params = nn.init_mlp(64, [128, 10], seed=0, arrays=True)

    def loss(params: Any, X: Any, labels: Any) -> Any:
        logits = nn.mlp(params, X, activation=tg.relu)
        return nn.softmax_cross_entropy(logits, labels)

    tape = tg.trace(loss, argnums=0, names=("W1", "b1", "W2", "b2"))(params, X, y)
    return tape.draw(rankdir="TB", partials=False)  # array records keep rules, not partials


PICTURES: dict[str, Callable[[], Any]] = {
    "neuron-graph": neuron_graph,
    "neuron-tape": neuron_tape,
    "loss-graph": loss_graph,
    "loss-tape": loss_tape,
    "grad-tape": grad_tape,
    "fused-neuron-tape": fused_neuron_tape,
    "grad-grad-tanh-tape": grad_grad_tanh_tape,
    "arrays-digits-tape": arrays_digits_tape,
}


def main() -> int:
    if shutil.which("dot") is None:
        print(f"make_pictures: Graphviz's dot program is missing. {viz.INSTALL_GRAPHVIZ}",
              file=sys.stderr)
        return 1
    for name, draw in PICTURES.items():
        path = viz.render(draw(), IMG / f"{name}.svg")
        print(f"wrote {Path(path).relative_to(IMG.parent.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
