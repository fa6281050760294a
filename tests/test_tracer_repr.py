"""How a traced value prints: under its own type's name, with its value, index and trace."""

from __future__ import annotations

import tapegrad as tg
from tapegrad.tracer import Tracer


def test_traced_value_prints_as_its_type():
    """print(x) of a traced value names the type users see, Tracer, at every nesting level."""
    seen: list = []

    def f(x):
        seen.append((repr(x), type(x)))
        return x * x

    tg.grad(tg.grad(f))(2.0)
    (text, kind), = seen
    assert kind is Tracer and kind.__name__ == "Tracer"
    assert text == "Tracer(Tracer(2.0, index=0, level 1), index=0, level 2)"


def test_escaped_traced_value_prints_as_closed():
    """A traced value kept after its transform returned says its trace is closed."""
    kept: list = []
    tg.grad(lambda x: kept.append(x) or x * 3.0)(1.5)
    assert repr(kept[0]) == "Tracer(1.5, index=0, closed)"
