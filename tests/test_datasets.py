"""Tests for tapegrad.datasets: shapes, labels, geometry and determinism."""

import math

import pytest

from tapegrad import datasets


def test_moons_shape_and_labels():
    """make_moons returns n (x1, x2) float tuples and n labels, n // 2 of them -1, the rest +1."""
    X, y = datasets.make_moons(101, noise=0.1, seed=3)
    assert len(X) == len(y) == 101
    assert all(type(p) is tuple and len(p) == 2 and all(type(v) is float for v in p) for p in X)
    assert (y.count(-1), y.count(1)) == (50, 51)


def test_moons_without_noise_lie_on_their_half_circles():
    """With noise=0 every point lies on its moon: radius 1 around (0, 0) or around (1, 0.5)."""
    X, y = datasets.make_moons(40, noise=0.0, seed=0)
    for (a, b), label in zip(X, y):
        if label == -1:
            assert math.hypot(a, b) == pytest.approx(1.0) and b >= -1e-12
        else:
            assert math.hypot(a - 1.0, b - 0.5) == pytest.approx(1.0) and b <= 0.5 + 1e-12


def test_moons_are_deterministic_and_shuffled():
    """The same seed gives the same data, another seed other data, and labels are mixed."""
    assert datasets.make_moons(50, seed=1) == datasets.make_moons(50, seed=1)
    assert datasets.make_moons(50, seed=1) != datasets.make_moons(50, seed=2)
    _, y = datasets.make_moons(50, seed=1)
    assert y != sorted(y)


def test_spirals_shape_labels_and_determinism():
    """make_spirals gives n_per_class points per integer label 0..k-1, the same for a seed."""
    X, y = datasets.make_spirals(30, n_classes=4, noise=0.2, seed=5)
    assert len(X) == len(y) == 120
    assert sorted(set(y)) == [0, 1, 2, 3] and all(y.count(k) == 30 for k in range(4))
    assert all(type(k) is int for k in y)
    assert all(math.hypot(a, b) <= 1.0 + 1e-12 for a, b in X)
    assert (X, y) == datasets.make_spirals(30, n_classes=4, noise=0.2, seed=5)
    assert X != datasets.make_spirals(30, n_classes=4, noise=0.2, seed=6)[0]


def test_spiral_arms_are_rotated_copies_without_noise():
    """With noise=0 arm k is arm 0 turned by 2 pi k / n_classes."""
    X, y = datasets.make_spirals(10, n_classes=3, noise=0.0, seed=0)
    arms = [sorted((math.hypot(a, b), math.atan2(b, a)) for (a, b), label in zip(X, y)
                   if label == k) for k in range(3)]
    for k in (1, 2):
        for (r0, t0), (rk, tk) in zip(arms[0], arms[k]):
            assert rk == pytest.approx(r0)
            turn = (tk - t0 - 2 * math.pi * k / 3) % (2 * math.pi)
            assert min(turn, 2 * math.pi - turn) == pytest.approx(0.0, abs=1e-9)


def test_bad_sizes_are_rejected():
    """Too few points or classes raise a ValueError naming the argument."""
    with pytest.raises(ValueError, match="n must be"):
        datasets.make_moons(1)
    with pytest.raises(ValueError, match="n_classes"):
        datasets.make_spirals(10, n_classes=1)
    with pytest.raises(ValueError, match="n_per_class"):
        datasets.make_spirals(0)
