"""Regenerate the pictures of docs/tape-vs-graph.md into docs/img/.

The pictures are the ones the examples draw, so this runs each example with
``--out docs/img``. It needs Graphviz's ``dot`` program for SVG files; without
it the examples write DOT sources (``.gv``) and say how to install Graphviz.

Run:  python docs/make_pictures.py
"""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IMG = ROOT / "docs" / "img"
EXAMPLES = ("seed_neuron.py", "tape_vs_graph.py")

for example in EXAMPLES:
    print(f"running examples/{example} --out docs/img")
    subprocess.run([sys.executable, str(ROOT / "examples" / example), "--out", str(IMG)],
                   check=True, stdout=subprocess.DEVNULL, cwd=ROOT)
for picture in sorted(IMG.iterdir()):
    print(f"  {picture.relative_to(ROOT)}  ({picture.stat().st_size} bytes)")
