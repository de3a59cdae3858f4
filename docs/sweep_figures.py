"""Generate the figures of docs/sweeps.md by running the example inertia/droop sweep.

Run: ``python docs/sweep_figures.py`` (35 short frequency-event runs, a few seconds).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from studies.sweep import load_sweep, run_sweep
from studies.sweep_report import write_sweep_report

ROOT = Path(__file__).resolve().parent.parent
SWEEP = ROOT / "studies" / "scenarios" / "sweep_inertia_droop.toml"


def main() -> None:
    figures = Path(__file__).parent / "figures"
    figures.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        run_sweep(load_sweep(SWEEP), tmp, workers=1, progress=False)
        summary = write_sweep_report(tmp)
        for name in ("heatmap", "pareto", "sensitivity_f_nadir_hz"):
            shutil.copy(Path(tmp) / f"{name}.png", figures / f"sweep_{name}.png")
        print(summary)


if __name__ == "__main__":
    main()
