"""Regenerate the figures of docs/contingency.md and docs/black_start.md.

Runs both studies on the shipped example scenarios, writes their full reports under
``build/docs-reports/`` and copies the PNGs to ``docs/figures/`` (``contingency_*.png``,
``black_start_*.png``). Prints the numbers quoted in the guides.

Usage: ``python docs/make_contingency_figures.py``
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "studies" / "scenarios"
FIGURES = ROOT / "docs" / "figures"
REPORTS = ROOT / "build" / "docs-reports"


def main() -> None:
    from studies.black_start import run_black_start_study
    from studies.contingency import run_contingency_study

    FIGURES.mkdir(parents=True, exist_ok=True)
    out = REPORTS / "contingency"
    result = run_contingency_study(
        SCENARIOS / "contingency_reference.toml",
        cases="none,droop,vsm,trip,staggered",
        out_dir=out,
    )
    for png in out.glob("contingency_*.png"):
        shutil.copy(png, FIGURES / png.name)
    print(json.dumps(result, indent=1, default=float))
    bulk = run_contingency_study(SCENARIOS / "contingency_bulk_only.toml")
    print(json.dumps(bulk, indent=1, default=float))

    out = REPORTS / "black_start"
    result = run_black_start_study(SCENARIOS / "black_start_hospital.toml", out_dir=out)
    for png in out.glob("black_start_*.png"):
        shutil.copy(png, FIGURES / png.name)
    print(json.dumps(result, indent=1, default=float))


if __name__ == "__main__":
    main()
