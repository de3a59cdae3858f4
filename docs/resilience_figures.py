"""Generate the figures of docs/resilience.md (run: python docs/resilience_figures.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from studies.resilience import plot_trapezoid, resilience_metrics


def main() -> None:
    out = Path(__file__).parent / "figures"
    out.mkdir(exist_ok=True)
    t_h = np.array([0.0, 1.0, 3.0, 7.0, 10.0, 12.0])
    served_mw = np.array([100.0, 100.0, 40.0, 40.0, 100.0, 100.0])
    metrics = resilience_metrics(t_h, served_mw, acceptable=70.0)
    fig = plot_trapezoid(t_h, served_mw, metrics, ylabel="served load [MW]")
    fig.savefig(out / "resilience_trapezoid.png", dpi=110, bbox_inches="tight")


if __name__ == "__main__":
    main()
