"""Small two-dimensional toy data sets, in pure Python and deterministic from a seed.

Offers ``make_moons`` (two interleaving half circles, labels -1/+1, for a
max-margin binary classifier) and ``make_spirals`` (interleaved spiral arms,
integer labels 0..k-1, for softmax classification). Each returns a list of
``(x1, x2)`` tuples of floats and a list of labels, shuffled; the same seed
gives the same data.

>>> X, y = make_moons(6, seed=0)
>>> len(X), sorted(set(y))
(6, [-1, 1])
"""

from __future__ import annotations

import math
import random

__all__ = ["make_moons", "make_spirals"]


def _check_count(name: str, what: str, n: int, least: int) -> None:
    if isinstance(n, bool) or not isinstance(n, int) or n < least:
        raise ValueError(f"datasets.{name}: {what} must be an int >= {least}, got {n!r}")


def _shuffled(points: list, labels: list, rng: random.Random) -> tuple[list, list]:
    order = list(range(len(points)))
    rng.shuffle(order)
    return [points[i] for i in order], [labels[i] for i in order]


def make_moons(n: int, noise: float = 0.1, seed: int = 0) -> tuple[list, list]:
    """``n`` points on two interleaving half circles, with Gaussian noise.

    The upper moon is the half circle of radius 1 around (0, 0), labelled -1;
    the lower moon is the same half circle flipped and moved to (1, 0.5),
    labelled +1. Points are evenly spaced along each moon, then moved by
    Gaussian noise of standard deviation ``noise``, then shuffled.

    Returns:
        ``(X, y)``: a list of ``n`` ``(x1, x2)`` tuples and a list of ``n``
        labels, ``n // 2`` of them -1 and the rest +1.

    >>> X, y = make_moons(4, noise=0.0)
    >>> sorted((round(a, 3), round(b, 3), label) for (a, b), label in zip(X, y))
    [(-1.0, 0.0, -1), (0.0, 0.5, 1), (1.0, 0.0, -1), (2.0, 0.5, 1)]
    """
    _check_count("make_moons", "n", n, 2)
    rng = random.Random(seed)
    n_upper = n // 2
    points: list = []
    labels: list = []
    for count, label in ((n_upper, -1), (n - n_upper, 1)):
        for i in range(count):
            angle = math.pi * i / (count - 1) if count > 1 else 0.5 * math.pi
            if label == -1:
                x1, x2 = math.cos(angle), math.sin(angle)
            else:
                x1, x2 = 1.0 - math.cos(angle), 0.5 - math.sin(angle)
            points.append((x1 + rng.gauss(0.0, noise), x2 + rng.gauss(0.0, noise)))
            labels.append(label)
    return _shuffled(points, labels, rng)


def make_spirals(n_per_class: int, n_classes: int = 3, noise: float = 0.2,
                 seed: int = 0) -> tuple[list, list]:
    """``n_classes`` spiral arms of ``n_per_class`` points each, labels ``0 .. n_classes - 1``.

    Along arm ``k`` the radius grows from 0 to 1 while the angle turns by
    three quarters of a circle, starting at ``2 pi k / n_classes``, so the arms
    wind around each other. ``noise`` is the standard deviation, in radians,
    of Gaussian noise added to each angle; a point moves by about
    ``radius * noise``, so the crowded centre stays tidy.

    >>> X, y = make_spirals(5, n_classes=2, seed=1)
    >>> len(X), y.count(0), y.count(1)
    (10, 5, 5)
    >>> max(math.hypot(a, b) for a, b in X) <= 1.0
    True
    """
    _check_count("make_spirals", "n_per_class", n_per_class, 1)
    _check_count("make_spirals", "n_classes", n_classes, 2)
    rng = random.Random(seed)
    points: list = []
    labels: list = []
    for k in range(n_classes):
        for i in range(n_per_class):
            radius = (i + 1) / n_per_class
            angle = 2.0 * math.pi * k / n_classes + 1.5 * math.pi * radius
            angle += rng.gauss(0.0, noise)
            points.append((radius * math.cos(angle), radius * math.sin(angle)))
            labels.append(k)
    return _shuffled(points, labels, rng)
