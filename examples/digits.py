"""Real data: an MLP 64 -> 128 -> 10 learns scikit-learn's handwritten digits.

1,797 images of 8x8 pixels that ship with scikit-learn (nothing is downloaded), split
80/20 with a fixed seed; a relu MLP trained with Adam and softmax cross-entropy in
mini-batches of 64, once eagerly and once with tg.jit, from the same start. Writes the
learning curves, the confusion matrix and the misclassified test digits to --out.

Run: python examples/digits.py [--epochs N] [--out DIR]   (needs pip install -e '.[examples]')
"""

import argparse
import time
from pathlib import Path

import numpy

import tapegrad as tg
import tapegrad.numpy as tnp
from tapegrad import nn, optim

BATCH, LEARNING_RATE, EPOCHS = 64, 0.003, 30


def load_data(seed=0):
    """Pixels scaled to [0, 1], flattened to 64 features; a stratified 80/20 split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    return train_test_split(digits.data / 16.0, digits.target, test_size=0.2,
                            random_state=seed, stratify=digits.target)


# The model and its loss use only names that tapegrad.numpy and jax.numpy share, so
# the same functions run under JAX with np=jax.numpy (see docs/scaling-to-jax.md).
def predict(params, X, np=tnp):
    """The logits, shape (n, 10), of the MLP for images X of shape (n, 64); relu hidden."""
    return nn.mlp(params, X, activation=lambda h: np.maximum(h, 0.0))


def loss_and_logits(params, X, labels, np=tnp):
    """Mean softmax cross-entropy (= nn.softmax_cross_entropy), and the logits as aux."""
    logits = predict(params, X, np)
    shifted = logits - np.max(logits, axis=1, keepdims=True)  # exp never overflows
    log_probs = shifted - np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))
    return -np.mean(log_probs[np.arange(len(labels)), labels]), logits


def train(X, y, epochs, compiled=False, seed=0, on_step=None):
    """Adam on shuffled mini-batches; returns the parameters after each epoch."""
    params = nn.init_mlp(64, [128, 10], seed=seed, arrays=True)
    opt = optim.adam(LEARNING_RATE)
    state = opt.init(params)
    step = tg.value_and_grad(loss_and_logits, has_aux=True)
    step = tg.jit(step) if compiled else step
    order_rng = numpy.random.default_rng(seed)
    snapshots = []
    for _ in range(epochs):
        order = order_rng.permutation(len(X))
        for start in range(0, len(X), BATCH):
            batch = order[start:start + BATCH]
            (loss, logits), grads = step(params, X[batch], y[batch])
            params, state = opt.update(grads, state, params)
            if on_step is not None:
                on_step(float(loss), nn.multiclass_accuracy(logits, y[batch]))
        snapshots.append(params)
    return snapshots


def timed_training(X, y, epochs, compiled):
    from tqdm import tqdm  # an optional extra, so imported only when the demo runs

    steps = epochs * -(-len(X) // BATCH)
    bar = tqdm(total=steps, desc="jit  " if compiled else "eager", unit="step")

    def on_step(loss, accuracy):
        bar.set_postfix(loss=f"{loss:.3f}", acc=f"{accuracy:.0%}", refresh=False)
        bar.update()

    start = time.perf_counter()
    snapshots = train(X, y, epochs, compiled, on_step=on_step)
    seconds = time.perf_counter() - start
    bar.close()
    return snapshots, seconds


def plot(snapshots, data, out):
    """Learning curves, the confusion matrix, and the test digits the model gets wrong."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no window
    import matplotlib.pyplot as plt

    X_train, X_test, y_train, y_test = data
    curves = {name: [] for name in ("train loss", "test loss", "train acc", "test acc")}
    for params in snapshots:
        for part, X, y in (("train", X_train, y_train), ("test", X_test, y_test)):
            loss, logits = loss_and_logits(params, X, y)
            curves[f"{part} loss"].append(float(loss))
            curves[f"{part} acc"].append(nn.multiclass_accuracy(logits, y))
    epochs = range(1, len(snapshots) + 1)
    fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(6, 5))
    for name, values in curves.items():
        (top if "loss" in name else bottom).plot(epochs, values, label=name,
                                                 linestyle="-" if "test" in name else "--")
    top.set(ylabel="cross-entropy", yscale="log", title="MLP 64-128-10 on 8x8 digits")
    lowest = min(0.85, *curves["train acc"], *curves["test acc"])
    bottom.set(ylabel="accuracy", xlabel="epoch", ylim=(lowest - 0.005, 1.005))
    top.legend(), bottom.legend(loc="lower right")
    fig.savefig(out / "digits-curves.png", dpi=110, bbox_inches="tight")

    predicted = nn.argmax(predict(snapshots[-1], X_test))
    confusion = numpy.zeros((10, 10), dtype=int)
    numpy.add.at(confusion, (y_test, predicted), 1)
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.imshow(confusion, cmap="Blues")
    for (true, guess), count in numpy.ndenumerate(confusion):
        if count:
            ax.text(guess, true, count, ha="center", va="center",
                    color="white" if count > confusion.max() / 2 else "black")
    ax.set(xticks=range(10), yticks=range(10), xlabel="predicted", ylabel="true digit",
           title=f"test set: {numpy.trace(confusion)} of {len(y_test)} right")
    fig.savefig(out / "digits-confusion.png", dpi=110, bbox_inches="tight")

    wrong = numpy.flatnonzero(predicted != y_test)
    columns = max(1, min(8, len(wrong)))
    rows = max(1, -(-len(wrong) // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(1.3 * columns, 1.5 * rows + 0.4),
                             squeeze=False, constrained_layout=True)
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, wrong):
        ax.imshow(X_test[i].reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
        ax.set_title(f"{y_test[i]} read as {predicted[i]}", fontsize=9, color="#c0392b")
    fig.suptitle(f"the {len(wrong)} misclassified test digits (true digit read as predicted)")
    fig.savefig(out / "digits-mistakes.png", dpi=110, bbox_inches="tight")
    plt.close("all")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=EPOCHS, help="passes over the data")
    parser.add_argument("--out", default="out", help="folder for the pictures")
    args = parser.parse_args()
    from threadpoolctl import threadpool_limits  # comes with scikit-learn

    data = X_train, X_test, y_train, y_test = load_data()
    print(f"{len(X_train)} training and {len(X_test)} test images of 8x8 pixels; MLP 64-128-10, "
          f"relu, Adam({LEARNING_RATE}), batches of {BATCH}, {args.epochs} epochs")
    # The matrices are small (64 x 128): BLAS threads cost more than they save here.
    with threadpool_limits(limits=1):
        snapshots, eager = timed_training(X_train, y_train, args.epochs, compiled=False)
        compiled, jitted = timed_training(X_train, y_train, args.epochs, compiled=True)
    same = all(numpy.array_equal(a, b) for a, b in zip(tg.tree_leaves(snapshots[-1]),
                                                       tg.tree_leaves(compiled[-1])))
    print(f"training time: eager {eager:.2f} s, jit {jitted:.2f} s: jit is {eager / jitted:.1f}x "
          f"faster ({'identical' if same else 'different'} final parameters)")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    plot(snapshots, data, out)
    print(f"wrote {out / 'digits-curves.png'}, {out / 'digits-confusion.png'} and "
          f"{out / 'digits-mistakes.png'}")
    accuracy = nn.multiclass_accuracy(predict(snapshots[-1], X_test), y_test)
    print(f"test accuracy: {accuracy:.3f}")


if __name__ == "__main__":
    main()
