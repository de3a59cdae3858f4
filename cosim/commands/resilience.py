"""``v2g-cosim resilience``: resilience-trapezoid metrics of a performance curve (CSV)."""

from __future__ import annotations

import argparse

from cosim.clitools import add_json_flag, check_output_dir, check_text_file, emit_json, format_table

NAME = "resilience"
HELP = "resilience-trapezoid metrics (Panteli et al. 2017) of a performance curve CSV"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--curve",
        required=True,
        metavar="FILE.csv",
        help="CSV with columns t_h (hours, increasing) and performance (e.g. MW served)",
    )
    parser.add_argument(
        "--acceptable",
        type=float,
        default=None,
        metavar="LEVEL",
        help="acceptable performance level for T_r and M_D (default: the pre-event level)",
    )
    parser.add_argument(
        "--unit", default="", help="unit of the performance column for tables and plots"
    )
    parser.add_argument(
        "--out", default=None, metavar="DIR", help="write report.html with the trapezoid plot"
    )
    add_json_flag(parser)


def run(args: argparse.Namespace) -> int:
    from studies.resilience import (
        add_resilience_section,
        metrics_table,
        read_curve,
        resilience_metrics,
    )

    check_text_file(args.curve, what="curve")
    check_output_dir(args.out)
    t_h, performance = read_curve(args.curve)
    metrics = resilience_metrics(t_h, performance, acceptable=args.acceptable, name=args.curve)
    if args.out:
        from studies.report import Report

        report = Report(f"Resilience of {args.curve}")
        add_resilience_section(report, t_h, performance, acceptable=args.acceptable, unit=args.unit)
        report.write(args.out)
    if args.json:
        # a performance curve carries no grid quantity: no named limit applies (the key is
        # there so that every study's JSON has it)
        emit_json({**metrics.to_dict(), "violations": []})
        return 0
    print(format_table(metrics_table(metrics, unit=args.unit), ["quantity", "value"]))
    if not metrics.recovered:
        print("note: the curve never recovers to the acceptable level before it ends")
    return 0
