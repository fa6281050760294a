"""The main demo: an MLP learns to separate two interleaving moons.

100 points labelled -1/+1; an MLP 2 -> 16 -> 16 -> 1 (tanh hidden layers, a linear
score out); the max-margin (hinge) loss plus a little L2; Adam until 100% training
accuracy. Draws the decision boundary and learning curves to out/moons.png, out/loss.png.

Run: python examples/moons.py [--steps N] [--out DIR]   (needs pip install -e '.[examples]')
"""

import argparse
import time
from pathlib import Path

import tapegrad as tg
from tapegrad import datasets, nn, optim


def loss_and_scores(params, X, y):
    """The hinge loss plus 1e-4 L2, and the scores (as aux, to measure accuracy for free)."""
    scores = [nn.mlp(params, x)[0] for x in X]
    return nn.hinge_loss(scores, y) + 1e-4 * nn.l2(params), scores


def train(X, y, max_steps, seed=1, on_step=None):
    """Adam from a fixed seed until every point is classified right; (params, history)."""
    params = nn.init_mlp(2, [16, 16, 1], seed=seed)
    opt = optim.adam(0.05)
    state = opt.init(params)
    step = tg.value_and_grad(loss_and_scores, has_aux=True)
    history = []  # (loss, accuracy) of the parameters before each update
    for _ in range(max_steps):
        (loss, scores), grads = step(params, X, y)
        history.append((loss, nn.accuracy(scores, y)))
        if on_step is not None:
            on_step(*history[-1])
        if history[-1][1] == 1.0:  # every point on its right side: done
            break
        params, state = opt.update(grads, state, params)
    return params, history


def plot(params, X, y, history, out):
    """Draw the decision boundary over a grid, and the loss and accuracy per step."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no window
    import matplotlib.pyplot as plt

    # nn.mlp works on plain floats too: no tape is recorded outside a transform.
    xs = [-1.6 + 4.2 * i / 79 for i in range(80)]
    ys = [-1.1 + 2.7 * j / 79 for j in range(80)]
    scores = [[nn.mlp(params, (a, b))[0] for a in xs] for b in ys]
    fig, ax = plt.subplots(figsize=(6, 4.5))
    ax.contourf(xs, ys, scores, levels=[-1e9, 0.0, 1e9], colors=["#f4b6b6", "#b6cdf4"])
    ax.contour(xs, ys, scores, levels=[0.0], colors="k", linewidths=1.5)
    for label, color in ((-1, "#c0392b"), (1, "#2e5fa8")):
        points = [p for p, t in zip(X, y) if t == label]
        ax.scatter(*zip(*points), c=color, edgecolors="k", s=25)
    ax.set_title("tapegrad MLP 2-16-16-1: decision boundary (score = 0)")
    fig.savefig(out / "moons.png", dpi=110, bbox_inches="tight")
    fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(6, 4.5))
    top.plot([h[0] for h in history], color="#c0392b")
    bottom.plot([h[1] for h in history], color="#2e5fa8")
    top.set(ylabel="hinge loss + L2")
    bottom.set(ylabel="training accuracy", xlabel="step")
    fig.savefig(out / "loss.png", dpi=110, bbox_inches="tight")
    plt.close("all")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300, help="step limit")
    parser.add_argument("--out", default="out", help="folder for the pictures")
    args = parser.parse_args()
    from tqdm import tqdm  # an optional extra, so imported only when the demo runs

    X, y = datasets.make_moons(100, noise=0.1, seed=0)
    print(f"{len(X)} moons points; MLP 2-16-16-1, hinge loss + 1e-4 L2, Adam(0.05)")
    with tqdm(total=args.steps, desc="training", unit="step") as bar:
        def on_step(loss, accuracy):
            bar.set_postfix(loss=f"{loss:.4f}", acc=f"{accuracy:.0%}", refresh=False)
            bar.update()

        start = time.perf_counter()
        params, history = train(X, y, args.steps, on_step=on_step)
        seconds = time.perf_counter() - start
        bar.total = bar.n  # an early stop ends the bar at the steps taken: n/n, 100%
    loss, accuracy = history[-1]
    steps = len(history)  # gradient evaluations; the last one found nothing left to fix
    print(f"100% training accuracy at step {steps} ({steps - 1} Adam updates)"
          if accuracy == 1.0 else f"step limit reached at {accuracy:.0%} accuracy",
          f"(loss {loss:.4f})")
    print(f"wall time {seconds:.2f} s, {seconds / steps:.4f} s per step "
          "(forward pass, tape and reverse sweep over all 100 points)")

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    plot(params, X, y, history, out)
    print(f"wrote {out / 'moons.png'} (decision boundary) and {out / 'loss.png'} (curves)")


if __name__ == "__main__":
    main()
