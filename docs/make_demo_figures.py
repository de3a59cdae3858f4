"""Regenerate ``docs/figures/demo_*.png`` (the README's voltage envelope among them).

Runs ``v2g-cosim demo`` into a temporary folder and copies its figures here:
``python docs/make_demo_figures.py``.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from cosim.cli import main

FIGURES = Path(__file__).resolve().parent / "figures"


def make() -> list[Path]:
    with tempfile.TemporaryDirectory() as out:
        code = main(["demo", "--out", out, "--no-progress"])
        if code != 0:
            raise SystemExit(code)
        FIGURES.mkdir(exist_ok=True)
        written = []
        for png in sorted(Path(out).glob("demo_*.png")):
            shutil.copy(png, FIGURES / png.name)
            written.append(FIGURES / png.name)
    return written


if __name__ == "__main__":
    for path in make():
        print(path)
    sys.exit(0)
