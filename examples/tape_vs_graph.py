"""One model on a graph of mutable nodes and on a tape, side by side.

A neuron with a squared error, written once, runs on tapegrad.graph.Value and on
tapegrad. Then: what the graph needs that the tape does not, what the tape gives
that the graph cannot, and what each costs per operation.

Run:  .venv/bin/python examples/tape_vs_graph.py [--out DIR]   (pictures go to out/)
"""

import argparse
import math
import statistics
import time
import tracemalloc

import tapegrad as tg
from tapegrad import viz
from tapegrad.graph import Value, draw_dot, topological_order

parser = argparse.ArgumentParser(description="The same model on a graph and on a tape.")
parser.add_argument("--out", default="out", help="directory for the pictures (default: out)")
out = parser.parse_args().out


def tanh(v):  # the only line that knows there are two engines
    return v.tanh() if isinstance(v, Value) else tg.tanh(v)


def loss(x1, x2, w1, w2, b):
    """A neuron and its squared error against the target 1."""
    return (tanh(x1 * w1 + x2 * w2 + b) - 1.0) ** 2


NAMES = ("x1", "x2", "w1", "w2", "b")
POINT = (2.0, 0.0, -3.0, 1.0, 6.8813735870195432)

print("== 1. The same model, the same gradients ==")
leaves = [Value(v, label=name) for name, v in zip(NAMES, POINT)]
root = loss(*leaves)
root.backward()  # the graph: gradients are written into the nodes
grads = tg.grad(loss, argnums=(0, 1, 2, 3, 4))(*POINT)  # the tape: they are returned
for leaf, g in zip(leaves, grads):
    assert math.isclose(leaf.grad, g, rel_tol=1e-12, abs_tol=1e-12)
    print(f"  d loss/d {leaf.label:<3} graph {leaf.grad:+.6f}   tape {g:+.6f}")

print("\n== 2. The tape is a listing; the graph is a picture ==")
tape = tg.trace(loss, names=NAMES)(*POINT)
print(tape)
print("wrote", viz.render(draw_dot(root, rankdir="TB"), f"{out}/loss-graph.svg"))
print("wrote", viz.render(tape.draw(rankdir="TB"), f"{out}/loss-tape.svg"))

print("\n== 3. What the graph needs that the tape does not ==")
order = topological_order(root)
print(f"a topological sort: backward orders {len(order)} nodes before it can start; the tape")
print("is born in order (record k reads only records before k), so it is swept as it is")
first = leaves[2].grad
root.backward()  # again, forgetting zero_grad: the leaves ACCUMULATE
print(f"zero_grad: a second backward without it gives w1.grad = {leaves[2].grad:+.6f}, "
      f"not {first:+.6f}")
assert math.isclose(leaves[2].grad, 2 * first)
for leaf in leaves:  # what zero_grad does: mutate every node back
    leaf.grad = 0.0
root.backward()
print(f"after zeroing: w1.grad = {leaves[2].grad:+.6f}; the tape has nothing to zero:")
print(f"  tg.grad twice: {tg.grad(loss, argnums=2)(*POINT):+.6f} "
      f"{tg.grad(loss, argnums=2)(*POINT):+.6f}")

print("\n== 4. What the tape gives that the graph cannot ==")
d2 = tg.grad(tg.grad(loss, argnums=4), argnums=4)(*POINT)
print(f"grad(grad(loss)) wrt b: {d2:+.6f}; the graph's b.grad is a bare "
      f"{type(leaves[4].grad).__name__} with no history to differentiate")
grad_tape = tg.trace(tg.grad(loss, argnums=4), names=NAMES)(*POINT)
print("the tape of the gradient: the rules' partials and the sweep's products are records too")
print(grad_tape)
# The picture colours each record by its role: forward pass, derivative rule, sweep.
_, roles = viz.grad_tape(loss, *POINT, argnums=4, names=NAMES)
print("wrote", viz.render(viz.draw_tape(grad_tape, rankdir="TB", roles=roles),
                          f"{out}/grad-tape.svg"))
again = tape.backward({tape.outputs[0]: 1.0})
print("replay: the tape is immutable, so the sweep can run again: d/db =",
      f"{again[4]:+.6f} (seed 1), {tape.backward({tape.outputs[0]: 2.0})[4]:+.6f} (seed 2)")
print("inspect: the last record is", tape[-1])

print("\n== 5. Cost per operation: a chain y = tanh(y)*0.5 + y*0.5, 4 operations a step ==")
STEPS = 5000  # 20,000 operations: long enough for the tape to pack its records into arrays


def chain(y):
    for _ in range(STEPS):
        y = tanh(y) * 0.5 + y * 0.5
    return y


def on_graph():
    x = Value(0.3)
    chain(x).backward()
    return x.grad


on_tape = lambda: tg.grad(chain)(0.3)
assert math.isclose(on_graph(), on_tape(), rel_tol=1e-9)


def cost(run, repeats=7):
    """Median seconds over repeats, then peak bytes allocated during one run."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    tracemalloc.start()
    run()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return statistics.median(times), peak


ops = 4 * STEPS
print(f"  {'engine':<8}{'time/op (forward+backward)':>28}{'peak memory/op':>18}")
for name, run in (("graph", on_graph), ("tape", on_tape)):
    seconds, peak = cost(run)
    print(f"  {name:<8}{seconds / ops * 1e6:>25.2f} us{peak / ops:>12.0f} bytes")
