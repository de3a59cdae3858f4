"""``v2g-cosim demo``: the main job on the embedded default feeder.

Interim version until the co-simulation core lands: an AC power flow on the default feeder
with a short report.
"""

from __future__ import annotations

import argparse
from pathlib import Path

NAME = "demo"
HELP = "run the demo on the embedded default feeder and write a short report"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out", type=Path, default=Path("demo-out"), help="output directory (default demo-out)"
    )


def run(args: argparse.Namespace) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from grids.feeders import DEFAULT_FEEDER
    from grids.powerflow import summarize_powerflow
    from studies.report import Report

    summary = summarize_powerflow(DEFAULT_FEEDER)
    report = Report(f"v2g-cosim demo: {DEFAULT_FEEDER}")
    report.key_values(
        {
            k: summary[k]
            for k in (
                "min_vm_pu",
                "min_vm_bus",
                "max_vm_pu",
                "p_loss_mw",
                "max_line_loading_percent",
            )
        }
    )
    fig, ax = plt.subplots(figsize=(7, 3))
    ax.plot(summary["bus"], summary["vm_pu"], marker="o")
    ax.set_xlabel("bus")
    ax.set_ylabel("vm [pu]")
    report.figure(fig, "voltage_profile", "Bus voltages at nominal load")
    path = report.write(args.out)
    print(
        f"min voltage {summary['min_vm_pu']:.4f} pu at bus {summary['min_vm_bus']}; "
        f"losses {summary['p_loss_mw'] * 1000:.1f} kW; report: {path}"
    )
    return 0
