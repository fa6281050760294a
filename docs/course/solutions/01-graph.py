# %% [markdown]
# Solutions to the exercises of chapter 1, "The graph". Each cell replaces the exercise
# cell with the same tag; the tests run the chapter with them and expect every check to
# say "correct".

# %% tags=["exercise-1.1"]
def neuron_gradient(x1, x2, w1, w2, b):
    o = math.tanh(x1 * w1 + x2 * w2 + b)
    do_dn = 1 - o * o  # the local derivative of tanh, at n
    # n = x1*w1 + x2*w2 + b: each partial of n is the other factor (or 1 for b)
    return {"x1": do_dn * w1, "x2": do_dn * w2, "w1": do_dn * x1, "w2": do_dn * x2,
            "b": do_dn}

# %% tags=["exercise-1.2"]
def my_backward(root):
    # Iterative depth-first search: a node joins the order after all its parents.
    order, seen, stack = [], set(), [(root, False)]
    while stack:
        node, parents_done = stack.pop()
        if parents_done:
            order.append(node)
        elif node not in seen:
            seen.add(node)
            stack.append((node, True))  # come back to it once its parents are in
            stack.extend((p, False) for p in node._prev if p not in seen)
    for node in order:
        node.grad = 0.0
    root.grad = 1.0
    for node in reversed(order):  # children before parents: each grad is complete
        node._backward()

# %% tags=["exercise-1.3"]
def train_safely(net, steps):
    losses = []
    for _ in range(steps):
        predictions = [net(x) for x in inputs]
        loss = sum(((p - t) ** 2 for p, t in zip(predictions, targets)), Value(0.0))
        net.zero_grad()  # before backward, every time
        loss.backward()
        for p in net.parameters():
            p.data -= 0.05 * p.grad
        losses.append(loss.data)
    return losses
