"""Three spiral arms: multi-class classification with a softmax cross-entropy loss.

The MLP 2 -> 16 -> 16 -> 3 gives one logit per class; the loss is the mean of
-log softmax(logits)[label], computed with a stable log-sum-exp. Training (Adam)
stops at 100% training accuracy; the decision regions go to out/spirals.png.

Run: python examples/spirals.py [--steps N] [--out DIR]
Needs the optional extra matplotlib: pip install -e '.[examples]'.
"""

import argparse
import time
from pathlib import Path

import tapegrad as tg
from tapegrad import datasets, nn, optim

COLORS = ["#c0392b", "#2e5fa8", "#27ae60"]


def loss_and_logits(params, X, y):
    """Softmax cross-entropy plus 1e-4 L2, and the logits (as aux, for the accuracy)."""
    logits = [nn.mlp(params, x) for x in X]
    return nn.softmax_cross_entropy(logits, y) + 1e-4 * nn.l2(params), logits


def train(X, y, max_steps, seed=0):
    """Adam from a fixed seed until every point is classified right; (params, accuracy)."""
    params = nn.init_mlp(2, [16, 16, 3], seed=seed)
    opt = optim.adam(0.03)
    state = opt.init(params)
    step = tg.value_and_grad(loss_and_logits, has_aux=True)
    for k in range(max_steps):
        (loss, logits), grads = step(params, X, y)
        accuracy = nn.multiclass_accuracy(logits, y)
        if k % 20 == 0 or accuracy == 1.0:
            print(f"step {k:4d}   loss {loss:.4f}   accuracy {accuracy:.1%}")
        if accuracy == 1.0:
            break
        params, state = opt.update(grads, state, params)
    return params, accuracy


def plot(params, X, y, path):
    """Colour a grid by the predicted class (plain floats through nn.mlp) and add the points."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no window
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    ticks = [-1.15 + 2.3 * i / 99 for i in range(100)]
    classes = [[nn.argmax(nn.mlp(params, (a, b))) for a in ticks] for b in ticks]
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.pcolormesh(ticks, ticks, classes, cmap=ListedColormap(COLORS), alpha=0.3,
                  shading="nearest")
    for k, color in enumerate(COLORS):
        points = [p for p, label in zip(X, y) if label == k]
        ax.scatter(*zip(*points), c=color, edgecolors="k", s=20, label=f"class {k}")
    ax.set_aspect("equal")
    ax.set_title("tapegrad MLP 2-16-16-3: decision regions")
    ax.legend(loc="upper right", fontsize=8)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300, help="step limit (default 300)")
    parser.add_argument("--out", default="out", help="folder for the picture (default out)")
    args = parser.parse_args()

    X, y = datasets.make_spirals(80, n_classes=3, noise=0.2, seed=0)
    print(f"{len(X)} points on 3 spiral arms; MLP 2-16-16-3, softmax cross-entropy, Adam")
    start = time.perf_counter()
    params, accuracy = train(X, y, args.steps)
    seconds = time.perf_counter() - start
    print(f"training accuracy {accuracy:.1%} in {seconds:.1f} s")

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    plot(params, X, y, out / "spirals.png")
    print(f"wrote {out / 'spirals.png'} (decision regions)")


if __name__ == "__main__":
    main()
