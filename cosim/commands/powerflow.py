"""``v2g-cosim powerflow``: one power flow on a feeder, with a summary."""

from __future__ import annotations

import argparse

from cosim.clitools import add_json_flag, emit_json, format_table

NAME = "powerflow"
HELP = "run one power flow (AC or LinDistFlow) on a feeder and summarize it"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--feeder",
        default="case33bw",
        help="embedded feeder name or pandapower JSON path (default case33bw)",
    )
    parser.add_argument(
        "--method",
        choices=["ac", "lindistflow"],
        default="ac",
        help="ac: Newton-Raphson (same solution as pandapower runpp); lindistflow: linear "
        "radial approximation, lossless (p_loss_mw is null)",
    )
    parser.add_argument(
        "--load-scale",
        type=float,
        default=1.0,
        help="scale every load's P and Q by this factor (default 1)",
    )
    parser.add_argument(
        "--ext-grid-vm-pu",
        type=float,
        default=None,
        help="slack voltage set-point [pu] (default: as in the feeder)",
    )
    add_json_flag(parser)


def _format_loss(p_loss_mw: float) -> str:
    if p_loss_mw != p_loss_mw:  # NaN: LinDistFlow neglects losses
        return "n/a (LinDistFlow is lossless)"
    return f"{p_loss_mw:.5f}"


def run(args: argparse.Namespace) -> int:
    from grids.powerflow import PowerFlowMethod, summarize_powerflow

    summary = summarize_powerflow(
        args.feeder,
        method=PowerFlowMethod(args.method),
        load_scale=args.load_scale,
        ext_grid_vm_pu=args.ext_grid_vm_pu,
    )
    if args.json:
        emit_json(summary)
        return 0
    rows = [
        ("feeder", summary["feeder"]),
        ("method", summary["method"]),
        ("converged", summary["converged"]),
        ("buses", len(summary["bus"])),
        ("min vm [pu] (bus)", f"{summary['min_vm_pu']:.5f} ({summary['min_vm_bus']})"),
        ("max vm [pu]", f"{summary['max_vm_pu']:.5f}"),
        ("losses [MW]", _format_loss(summary["p_loss_mw"])),
        ("max line loading [%]", f"{summary['max_line_loading_percent']:.2f}"),
    ]
    print(format_table(rows, ["quantity", "value"]))
    return 0
