"""What `import tapegrad` costs: the modules it loads, and the cache of generated code.

No timing here (benchmarks time things); these tests pin the causes of a slow
import: compiling source that is not needed yet, and compiling the generated
operators again on every import.
"""

from __future__ import annotations

import subprocess
import sys
import traceback
from pathlib import Path
from typing import Any

import pytest

import tapegrad as tg
from tapegrad import primitives


def _modules_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", f"{code}; import sys; print(*sys.modules)"],
                         capture_output=True, text=True, check=True).stdout
    return set(out.split())


def test_import_loads_only_the_core() -> None:
    """import tapegrad loads no NumPy and not the printers, checks or arrays, which load on
    first use; attribute access then works as if they had been imported."""
    loaded = _modules_after("import tapegrad")
    assert "numpy" not in loaded
    assert {"tapegrad.viz", "tapegrad.checks", "tapegrad.arrays", "tapegrad.numpy",
            "tapegrad.nn", "tapegrad.graph"}.isdisjoint(loaded)
    assert {"tapegrad.tape", "tapegrad.primitives", "tapegrad.transforms"} <= loaded
    later = _modules_after("import tapegrad as tg; tg.check_grad; print(tg.trace(tg.sin)(1.0))")
    assert {"tapegrad.checks", "tapegrad.viz"} <= later


def test_lazy_names_are_the_functions() -> None:
    """tg.check_grad and tg.check_grads are the functions, also via from-imports."""
    from tapegrad import check_grads
    from tapegrad.checks import check_grad

    assert tg.check_grad is check_grad and tg.check_grads is check_grads
    with pytest.raises(AttributeError, match="no attribute 'nonexistent'"):
        tg.nonexistent  # noqa: B018


def test_generated_code_is_compiled_once_and_cached(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The generated operators' code object is saved with its source and loaded again
    without compiling; a cache holding other source is never trusted."""
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    source = "def answer():\n    return 42\n"
    first = primitives._compile_generated(source, tmp_path)
    assert list(tmp_path.glob("*.marshal"))

    def no_compile(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("compiled again although the cache holds this source")

    monkeypatch.setattr("builtins.compile", no_compile)
    again = primitives._compile_generated(source, tmp_path)
    assert again == first
    with pytest.raises(AssertionError, match="compiled again"):
        primitives._compile_generated(source.replace("42", "43"), tmp_path)


def test_no_cache_is_written_when_bytecode_is_not_to_be_written(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """PYTHONDONTWRITEBYTECODE (sys.dont_write_bytecode) is respected."""
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    primitives._compile_generated("x = 1\n", tmp_path)
    assert not list(tmp_path.iterdir())


def test_tracebacks_show_the_generated_lines() -> None:
    """A traceback through generated code shows its source lines (linecache), so a reader
    and a debugger can follow a primitive's recording function."""
    try:
        tg.grad(lambda x: tg.log(x))(-1.0)
    except ValueError:
        text = traceback.format_exc()
    assert "<tapegrad generated primitives>" in text
    assert "out = _m.log(x)" in text or "_math_error(tape" in text


def test_scalar_functions_take_numpy_arrays_before_tapegrad_numpy_is_imported() -> None:
    """tg.tanh(np.ones(2)) works in a fresh process that never imported tapegrad.numpy
    (the array layer loads on first use), and gives NumPy's values."""
    out = subprocess.run(
        [sys.executable, "-c", "import numpy as np, tapegrad as tg; "
         "print(tg.tanh(np.zeros(2)).tolist(), tg.maximum(np.ones(2), 2.0).tolist())"],
        capture_output=True, text=True, check=True).stdout
    assert out.split() == ["[0.0,", "0.0]", "[2.0,", "2.0]"]
