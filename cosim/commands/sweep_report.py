"""``v2g-cosim sweep-report``: sensitivity plots, heat map, Pareto front and best settings."""

from __future__ import annotations

import argparse

from cosim.clitools import add_json_flag, check_output_dir, emit_json

NAME = "sweep-report"
HELP = "report on a sweep directory: sensitivity, heat map, Pareto front, best settings"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sweep_dir", metavar="DIR", help="output directory of 'v2g-cosim sweep'")
    parser.add_argument(
        "--out", default=None, metavar="DIR", help="report directory (default: the sweep DIR)"
    )
    parser.add_argument(
        "--pareto",
        action="extend",
        nargs="+",
        default=None,
        metavar="M:max|min",
        help="two metrics (with direction) for the Pareto front: M1:max,M2:min or M1:max M2:min",
    )
    parser.add_argument(
        "--objective", default=None, metavar="METRIC:min|max", help="what the best run optimizes"
    )
    parser.add_argument(
        "--constraint",
        action="extend",
        nargs="+",
        default=None,
        metavar="EXPR",
        help="conditions for the best settings, e.g. 'f_nadir_hz>=59.8' (several after one "
        "--constraint or repeated)",
    )
    parser.add_argument(
        "--heatmap",
        action="extend",
        nargs="+",
        default=None,
        metavar="AXIS",
        help="two swept keys for the heat map: AXIS1,AXIS2 or AXIS1 AXIS2",
    )
    parser.add_argument("--heatmap-metric", default=None, metavar="METRIC")
    add_json_flag(parser)


def _pair(items: list[str] | None) -> list[str] | None:
    if items is None:
        return None
    return [part.strip() for text in items for part in text.split(",") if part.strip()]


def run(args: argparse.Namespace) -> int:
    from studies.sweep_report import write_sweep_report

    check_output_dir(args.out)
    summary = write_sweep_report(
        args.sweep_dir,
        out_dir=args.out,
        pareto=_pair(args.pareto),
        objective=args.objective,
        constraints=args.constraint,
        heatmap=_pair(args.heatmap),
        heatmap_metric=args.heatmap_metric,
    )
    if args.json:
        if "violations" not in summary:  # per named limit, how many runs broke it
            from cosim.commands.sweep import sweep_violations

            summary = {**summary, **sweep_violations(args.sweep_dir)}
        emit_json(summary)
        return 0
    print(f"report: {summary['report']}")
    print(f"runs: {summary['n_runs']} ({summary['n_ok']} ok, {summary['n_failed']} failed)")
    best = summary["best"]
    if best is None:
        print("best: no successful run meets the constraints")
    else:
        params = ", ".join(f"{k}={v}" for k, v in best["params"].items())
        print(f"best ({summary['objective']}): run {best['run_id']}: {params}")
    return 0
