"""The seed's training loop, rewritten in tapegrad's functional style.

The seed builds Neuron, Layer and MLP objects whose Values carry a mutable
.grad, calls loss.backward(), then nudges every parameter in place and zeroes
the gradients. Here the network is plain nested tuples, the loss is a pure
function of them, tg.value_and_grad returns the gradient in the same nested
tuples, and the optimizer returns new parameters. Nothing is mutated, so there
is nothing to zero.

Run: .venv/bin/python examples/seed_training.py   (or python, with .venv activated)
"""

import tapegrad as tg
from tapegrad import nn, optim

# The seed's four samples: three inputs each, and the target output.
inputs = [[2.0, 3.0, -1.0], [3.0, -1.0, 0.5], [0.5, 1.0, 1.0], [1.0, 1.0, -1.0]]
targets = [1.0, -1.0, -1.0, 1.0]

# An MLP 3 -> 4 -> 4 -> 1 with tanh on every layer, the output included, as in the seed.
# The parameters are a tuple of layers; a layer a tuple of (weights, bias) neurons.
params = nn.init_mlp(3, [4, 4, 1], seed=0)
print("parameters:", len(tg.tree_leaves(params)), "numbers in",
      [len(layer) for layer in params], "neurons per layer")


def predict(params, x):
    """The network's single output for one input."""
    return nn.mlp(params, x, activation=tg.tanh, final_activation=tg.tanh)[0]


def loss(params):
    """The seed's loss: the sum of squared errors over the four samples."""
    predictions = [predict(params, x) for x in inputs]
    return nn.sum_squared_error(predictions, targets)


# One look at the tape of a single forward pass: the first 41 records are the
# parameters, then every neuron is ONE fused record, tanh(dot(w, x) + b), whose op
# is "dot" (its partials include the chain rule through tanh).
tape = tg.trace(lambda p: predict(p, inputs[0]))(params)
print("one forward pass records", len(tape), "records:",
      sum(1 for r in tape if r.op == "input"), "parameters and",
      sum(1 for r in tape if r.op == "dot"), "neurons, one record each, e.g.")
print(" ", str(tape).splitlines()[-1])

# Plain gradient descent: params <- params - 0.1 * gradient.
opt = optim.sgd(0.1)
state = opt.init(params)
value_and_grad = tg.value_and_grad(loss)

print("\nstep   loss")
for step in range(500):
    value, grads = value_and_grad(params)
    if step % 5 == 0 or value < 0.01:
        print(f"{step:4d}   {value:.6f}")
    if value < 0.01:
        break
    params, state = opt.update(grads, state, params)

print(f"\nloss {value:.6f} after {state.step} updates of plain gradient descent")
print("\ntarget  prediction")
for x, target in zip(inputs, targets):
    print(f"{target:+5.1f}   {predict(params, x):+.4f}")
