"""``v2g-cosim powerflow``: one power flow on a feeder, with a summary and its violations.

The solve is :func:`grids.feeder_model.summarize_powerflow` (the one feeder model). The output
names the limits the solution breaks (``violations``: service voltage per ANSI C84.1 ranges A
and B, or EN 50160; line loading over 100 % of the rating) and the limits it could not check
(``limits_not_checked``: e.g. a feeder whose lines carry no rating, where a loading of "0 %"
would be a silently wrong answer).
"""

from __future__ import annotations

import argparse

from cosim.clitools import add_json_flag, emit_json, format_table, print_violations

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
    parser.add_argument(
        "--voltage-standard",
        choices=["ansi", "en50160"],
        default="ansi",
        help="service-voltage limits checked: ANSI C84.1 ranges A and B (default) or "
        "EN 50160 (0.90-1.10 pu)",
    )
    add_json_flag(parser)


def _format_loss(p_loss_mw: float) -> str:
    if p_loss_mw != p_loss_mw:  # NaN: LinDistFlow neglects losses
        return "n/a (LinDistFlow is lossless)"
    return f"{p_loss_mw:.5f}"


def _format_loading(max_loading_percent: float) -> str:
    if max_loading_percent != max_loading_percent:  # NaN: no line has a rating
        return "n/a (no line ratings)"
    return f"{max_loading_percent:.2f}"


def powerflow_violations(summary: dict, *, standard: str = "ansi") -> tuple[list, list[str]]:
    """Limits a power-flow summary breaks, and the limits it cannot check.

    Parameters
    ----------
    summary : dict
        From :func:`grids.feeder_model.summarize_powerflow` (``vm_pu`` in ``bus`` order, NaN at
        dead buses; ``max_line_loading_percent`` NaN when no line is rated; per-line
        ``line_loading_percent`` with ``line``, and ``trafo_loading_percent`` with ``trafo``,
        when given).
    standard : {"ansi", "en50160"}, keyword-only
        Service-voltage limits (:func:`grids.limits.voltage_violations`).

    Returns
    -------
    violations : list of grids.limits.Violation
        Voltage violations, then line (and, when given, transformer) loading above 100 % of
        the rating.
    limits_not_checked : list of str
        :func:`grids.limits.missing_rating` sentences (lines without a rating).
    """
    import numpy as np

    from grids.limits import Limit, missing_rating, upper_limit_violation, voltage_violations

    vm_pu = np.asarray(summary["vm_pu"], dtype=float)
    violations = voltage_violations(
        vm_pu, bus_names=[f"bus {b}" for b in summary["bus"]], standard=standard
    )
    not_checked: list[str] = []
    feeder = summary["feeder"]
    per_line = summary.get("line_loading_percent")
    if per_line is not None and "line" in summary:
        loading = np.asarray(per_line, dtype=float)
        names = [f"line {i}" for i in summary["line"]]
        n_unrated = int(np.count_nonzero(~np.isfinite(loading)))
        if n_unrated == loading.size:
            not_checked.append(missing_rating(f"every line of {feeder}", "line loading"))
        elif n_unrated:
            # out-of-service and dead lines are NaN too: said as not checked, not as 0 %
            not_checked.append(
                missing_rating(f"{n_unrated} line(s) of {feeder}", "line loading")
                + " (or out of service)"
            )
    else:
        loading = np.array([summary["max_line_loading_percent"]], dtype=float)
        names = ["most loaded rated line"]
        if not np.isfinite(loading).any():
            not_checked.append(missing_rating(f"every line of {feeder}", "line loading"))
    found = upper_limit_violation(
        loading, 100.0, limit=Limit.LINE_LOADING, quantity="loading_percent", names=names
    )
    if found is not None:
        violations.append(found)
    if summary.get("trafo_loading_percent") is not None and "trafo" in summary:
        found = upper_limit_violation(
            np.asarray(summary["trafo_loading_percent"], dtype=float),
            100.0,
            limit=Limit.TRANSFORMER_LOADING,
            quantity="loading_percent",
            names=[f"trafo {i}" for i in summary["trafo"]],
        )
        if found is not None:
            violations.append(found)
    return violations, not_checked


def run(args: argparse.Namespace) -> int:
    from grids.feeder_model import SolveMethod, summarize_powerflow

    summary = summarize_powerflow(
        args.feeder,
        method=SolveMethod(args.method),
        load_scale=args.load_scale,
        ext_grid_vm_pu=args.ext_grid_vm_pu,
    )
    violations, not_checked = powerflow_violations(summary, standard=args.voltage_standard)
    if args.json:
        emit_json(
            {
                **summary,
                "violations": [v.to_dict() for v in violations],
                "limits_not_checked": not_checked,
            }
        )
        return 0
    print_violations(violations, not_checked)
    rows = [
        ("feeder", summary["feeder"]),
        ("method", summary["method"]),
        ("converged", summary["converged"]),
        ("buses", len(summary["bus"])),
        ("min vm [pu] (bus)", f"{summary['min_vm_pu']:.5f} ({summary['min_vm_bus']})"),
        ("max vm [pu]", f"{summary['max_vm_pu']:.5f}"),
        ("losses [MW]", _format_loss(summary["p_loss_mw"])),
        ("max line loading [%]", _format_loading(summary["max_line_loading_percent"])),
    ]
    print(format_table(rows, ["quantity", "value"]))
    return 0
