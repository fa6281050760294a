"""Training end to end: the seed's loop, the moons demo, and the example scripts as programs."""

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

import tapegrad as tg
from tapegrad import datasets, nn, optim

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def load_example(name):
    """Import examples/NAME.py as a module without running its main()."""
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def interpreter_flags():
    """This interpreter's -X dev and -W options, so a child runs as strictly as the suite."""
    return (["-X", "dev"] if sys.flags.dev_mode else []) + [f"-W{w}" for w in sys.warnoptions]


def run_example(name, *args):
    command = [sys.executable, *interpreter_flags(), str(EXAMPLES / f"{name}.py"), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)


def importable(*names):
    return all(importlib.util.find_spec(name) is not None for name in names)


needs_extras = pytest.mark.skipif(
    not importable("tqdm", "matplotlib"),
    reason="the examples extra (tqdm, matplotlib) is not installed: pip install -e '.[examples]'",
)


def test_seed_training_loop_converges():
    """The seed's MLP 3-4-4-1 (tanh everywhere) with SSE and plain SGD gets below 0.01."""
    inputs = [[2.0, 3.0, -1.0], [3.0, -1.0, 0.5], [0.5, 1.0, 1.0], [1.0, 1.0, -1.0]]
    targets = [1.0, -1.0, -1.0, 1.0]

    def loss(params):
        outputs = [nn.mlp(params, x, final_activation=tg.tanh)[0] for x in inputs]
        return nn.sum_squared_error(outputs, targets)

    params = nn.init_mlp(3, [4, 4, 1], seed=0)
    opt = optim.sgd(0.1)
    state = opt.init(params)
    first = loss(params)
    for _ in range(100):
        params, state = opt.update(tg.grad(loss)(params), state, params)
    assert first > 1.0 and loss(params) < 0.01


def test_moons_reaches_full_training_accuracy():
    """The moons demo's train() classifies all 100 points within 120 steps from its fixed seed."""
    moons = load_example("moons")
    X, y = datasets.make_moons(100, noise=0.1, seed=0)
    params, history = moons.train(X, y, max_steps=120)
    loss, accuracy = history[-1]
    assert accuracy == 1.0 and len(history) <= 120
    assert loss < history[0][0]
    assert nn.accuracy([nn.mlp(params, x)[0] for x in X], y) == 1.0


def test_library_does_not_import_the_example_extras():
    """Importing tapegrad's modules never pulls in tqdm or matplotlib (they are optional)."""
    code = ("import sys, tapegrad, tapegrad.nn, tapegrad.optim, tapegrad.datasets; "
            "print(sorted({'tqdm', 'matplotlib'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("name", ["seed_training", "moons", "spirals"])
def test_examples_stay_short(name):
    """Each example stays a short lesson of about 100 lines."""
    assert len((EXAMPLES / f"{name}.py").read_text().splitlines()) <= 105


def test_seed_training_script_runs():
    """examples/seed_training.py runs standalone and prints a final loss below 0.01."""
    out = run_example("seed_training").stdout
    final = re.search(r"loss ([0-9.]+) after (\d+) updates", out)
    assert final and float(final.group(1)) < 0.01
    assert "prediction" in out


def final_bar_line(stderr):
    """The progress bar as tqdm last drew it (it redraws its line after each carriage return)."""
    return [line for line in re.split(r"[\r\n]", stderr) if line.strip()][-1]


@needs_extras
@pytest.mark.parametrize(("steps", "summary"), [
    ("5", r"step limit reached at \d+% accuracy"),
    ("300", r"100% training accuracy at step (\d+) \((\d+) Adam updates\)"),
])
def test_moons_script_writes_its_pictures_and_ends_its_bar(steps, summary, tmp_path):
    """examples/moons.py trains, reports timing, writes both PNGs; its bar ends at n/n, 100%.

    With the default limit of 300 steps training stops early at 100% accuracy: the bar
    must end at the steps actually taken, not stay at 57/300.
    """
    result = run_example("moons", "--steps", steps, "--out", str(tmp_path))
    found = re.search(summary, result.stdout)
    assert found and "s per step" in result.stdout, result.stdout
    taken = int(found.group(1)) if found.groups() else int(steps)
    if found.groups():
        assert taken < int(steps) and int(found.group(2)) == taken - 1
    bar = final_bar_line(result.stderr)
    assert bar.startswith("training: 100%") and f"| {taken}/{taken} [" in bar, bar
    for picture in ("moons.png", "loss.png"):
        data = (tmp_path / picture).read_bytes()
        assert data.startswith(b"\x89PNG") and len(data) > 5000


@needs_extras
def test_spirals_script_writes_its_picture(tmp_path):
    """examples/spirals.py --steps N --out DIR trains, prints accuracy and writes its PNG."""
    result = run_example("spirals", "--steps", "3", "--out", str(tmp_path))
    assert "training accuracy" in result.stdout
    data = (tmp_path / "spirals.png").read_bytes()
    assert data.startswith(b"\x89PNG") and len(data) > 5000
