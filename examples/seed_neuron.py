"""The seed's neuron, o = tanh(x1*w1 + x2*w2 + b), differentiated two ways.

1. The graph engine (tapegrad.graph.Value): every operation makes a node that keeps
   its parents and a small closure; o.backward() sorts the nodes and runs the
   closures in reverse, writing a .grad into every node.
2. The tape (tapegrad): every operation appends one record to a list, the Wengert
   list; the reverse sweep walks that list backwards.

Run:  python examples/seed_neuron.py [--out DIR]     (pictures go to out/ by default)
"""

import argparse
import math

import tapegrad as tg
from tapegrad import viz
from tapegrad.graph import Value, draw_dot

parser = argparse.ArgumentParser(description="The seed's neuron, graph engine and tape.")
parser.add_argument("--out", default="out", help="directory for the pictures (default: out)")
out = parser.parse_args().out

# b is chosen so that n = x1*w1 + x2*w2 + b = 0.8814, where tanh(n) = 1/sqrt(2)
# and the local derivative do/dn = 1 - tanh(n)**2 is exactly 1/2.
INPUTS = {"x1": 2.0, "x2": 0.0, "w1": -3.0, "w2": 1.0, "b": 6.8813735870195432}

# -- 1. The graph engine --------------------------------------------------------
# Each line below allocates a node; the labels only make the picture readable.
x1, x2, w1, w2, b = (Value(value, label=name) for name, value in INPUTS.items())
x1w1 = x1 * w1
x1w1.label = "x1*w1"
x2w2 = x2 * w2
x2w2.label = "x2*w2"
s = x1w1 + x2w2
s.label = "x1*w1+x2*w2"
n = s + b
n.label = "n"
o = n.tanh()
o.label = "o"
o.backward()  # topological sort, then every node's closure, output first

print("== The graph engine: nodes that hold their own gradients ==")
print(f"o = {o.data:.6f}")
for leaf in (x1, x2, w1, w2, b):
    print(f"  {leaf.label}.grad = {leaf.grad:+.6f}")
print("wrote", viz.render(draw_dot(o), f"{out}/neuron-graph.svg"))


# -- 2. The tape ------------------------------------------------------------------
# The same neuron as a plain function. tg.trace runs it once on traced numbers
# and returns the tape: one record per operation, in the order they ran.
def neuron(x1, x2, w1, w2, b):
    return tg.tanh(x1 * w1 + x2 * w2 + b)


tape = tg.trace(neuron, names=tuple(INPUTS))(*INPUTS.values())

print()
print("== The tape: the forward Wengert list ==")
print(tape)
print()
print("== The tape: the reverse sweep, last record first ==")
print(tape.format_reverse())
print("wrote", viz.render(tape.draw(), f"{out}/neuron-tape.svg"))

# tg.grad does the same: record, sweep backwards, return the adjoints of the inputs.
gradient = tg.grad(neuron, argnums=(0, 1, 2, 3, 4))(*INPUTS.values())

# -- 3. Both ways agree -------------------------------------------------------------
print()
print("== Gradients, both ways ==")
print(f"  {'':<4}{'graph':>12}{'tape':>12}")
for leaf, g in zip((x1, x2, w1, w2, b), gradient):
    assert math.isclose(leaf.grad, g, rel_tol=1e-12, abs_tol=1e-12), (leaf.label, leaf.grad, g)
    print(f"  {leaf.label:<4}{leaf.grad:>+12.6f}{g:>+12.6f}")
print("the gradients agree")
