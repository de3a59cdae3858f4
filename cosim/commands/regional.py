"""``v2g-cosim regional``: one study per feeder over many feeders (local or Dask), resumable."""

from __future__ import annotations

import argparse
import contextlib

from cosim.clitools import add_json_flag, check_output_dir, emit_json, format_table
from cosim.commands.sweep import add_scheduler_arguments, check_scheduler_arguments

NAME = "regional"
HELP = (
    "run a hosting-capacity study on many feeders (SimBench patterns, a folder of nets) into "
    "DIR/results.parquet with a summary report (resumable)"
)
OWN_PROGRESS = True  # a progress bar over the feeders


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--feeders",
        action="extend",
        nargs="+",
        default=None,
        metavar="FEEDER",
        help="feeders: simbench:<code or pattern> (e.g. 'simbench:1-LV-*--1-sw', quoted), "
        "embedded names, .json nets (several after one --feeders or repeated)",
    )
    parser.add_argument(
        "--feeders-dir", default=None, metavar="DIR", help="a folder of .json (and .dss) feeders"
    )
    parser.add_argument(
        "--study",
        choices=["hosting-capacity"],
        default="hosting-capacity",
        help="the per-feeder study (default: hosting-capacity)",
    )
    parser.add_argument(
        "--time-series",
        action="store_true",
        help="time-series hosting capacity over the feeders' profiles (SimBench feeders)",
    )
    parser.add_argument("--start", default=None, metavar="ISO-DATE", help="time series: start")
    parser.add_argument(
        "--duration", default=None, metavar="7d", help="time series: window (s, min, h, d)"
    )
    parser.add_argument(
        "--percentile",
        type=float,
        default=100.0,
        help="time series: share of steps that must hold [%%] (default 100)",
    )
    parser.add_argument("--mode", choices=["export", "import"], default="export")
    parser.add_argument("--method", choices=["screen", "ac", "screen+ac"], default="screen+ac")
    parser.add_argument(
        "--study-case",
        choices=["hL", "n1", "hW", "hPV", "lW", "lPV"],
        default=None,
        help="snapshot study of SimBench feeders at this SimBench study case (lPV: low load, "
        "high PV; hL: high load); default the net's own values",
    )
    parser.add_argument("--out", required=True, metavar="DIR", help="results directory")
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="local worker processes (default: all cores; 1 runs in this process)",
    )
    add_scheduler_arguments(parser)
    parser.add_argument(
        "--retry-failed", action="store_true", help="run again the feeders recorded as failed"
    )
    parser.add_argument("--no-report", action="store_true", help="write no summary report")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    add_json_flag(parser)


def run(args: argparse.Namespace) -> int:
    import os

    # one BLAS thread per worker process (as for sweeps)
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(name, "1")

    from studies.hosting_capacity_timeseries import parse_duration_s
    from studies.regional import RegionalOptions, RegionalStudy, resolve_feeders, run_regional

    tls = check_scheduler_arguments(args)
    study = (
        RegionalStudy.TIME_SERIES_HOSTING_CAPACITY
        if args.time_series
        else RegionalStudy.HOSTING_CAPACITY
    )
    options = RegionalOptions(
        study=study,
        mode=args.mode,
        method=args.method,
        study_case=args.study_case,
        start=args.start,
        duration_s=parse_duration_s(args.duration),
        percentile=args.percentile,
    )
    feeders = resolve_feeders(args.feeders or [], feeders_dir=args.feeders_dir)
    check_output_dir(args.out)
    with contextlib.ExitStack() as stack:
        if tls:
            import dask

            stack.enter_context(dask.config.set(tls))
        summary = run_regional(
            feeders,
            options,
            args.out,
            workers=args.workers,
            scheduler=args.scheduler.strip() if args.scheduler else None,
            retry_failed=args.retry_failed,
            progress=not args.no_progress,
            report=not args.no_report,
        )
    import pandas as pd

    per_feeder = pd.read_csv(summary.out_dir / "feeders.csv")
    doc = {
        "n_feeders": summary.n_feeders,
        "n_skipped": summary.n_skipped,
        "n_done": summary.n_done,
        "n_failed": summary.n_failed,
        "n_rows": summary.n_rows,
        "wall_s": summary.wall_s,
        "results": str(summary.results_path),
        "report": None if summary.report_path is None else str(summary.report_path),
        "options": options.to_json(),
        "feeders": [
            {
                "feeder": row.feeder,
                "status": row.status,
                "hc_min_mw": None if pd.isna(row.hc_min_mw) else float(row.hc_min_mw),
                "hc_median_mw": None if pd.isna(row.hc_median_mw) else float(row.hc_median_mw),
                "binding": None if pd.isna(row.binding) else row.binding,
                "error": None if pd.isna(row.error) else row.error,
            }
            for row in per_feeder.itertuples(index=False)
        ],
    }
    if args.json:
        emit_json(doc)
        return 0
    rows = [
        (
            f["feeder"],
            f["status"],
            "" if f["hc_min_mw"] is None else f"{f['hc_min_mw'] * 1e3:.1f}",
            "" if f["hc_median_mw"] is None else f"{f['hc_median_mw'] * 1e3:.1f}",
            f["binding"] or (f["error"] or "")[:60],
        )
        for f in doc["feeders"]
    ]
    print(format_table(rows, ["feeder", "status", "hc_min_kw", "hc_median_kw", "binding/error"]))
    print(
        f"{summary.n_done} feeder(s) done ({summary.n_failed} failed), {summary.n_skipped} "
        f"already in {summary.out_dir}; {summary.n_rows} rows in {summary.results_path}; "
        f"{summary.wall_s:.1f} s"
    )
    if summary.report_path is not None:
        print(f"report: {summary.report_path}")
    return 0
