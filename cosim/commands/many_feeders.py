"""``v2g-cosim many-feeders``: a frequency event over several feeders, who tripped and who
helped (``studies.multi_feeder``, docs/many_feeders.md)."""

from __future__ import annotations

import argparse
from pathlib import Path

from cosim.clitools import (
    add_json_flag,
    check_output_dir,
    check_referenced_files,
    check_text_file,
    emit_json,
    format_table,
    print_violations,
)

NAME = "many-feeders"
HELP = (
    "run a generation-loss/load-step event over several [[feeders]], each with its fleet: "
    "trips per feeder (MW, vehicles) and the nadir with and without each feeder's response"
)

_COLUMNS = (
    ("feeder", "feeder"),
    ("grid", "grid"),
    ("n_vehicles", "vehicles"),
    ("fleet_tripped_mw", "tripped_mw"),
    ("n_vehicles_tripped", "n_tripped"),
    ("fleet_p_max_mw", "p_max_mw"),
    ("f_nadir_without_hz", "nadir_without_hz"),
    ("nadir_effect_hz", "nadir_effect_hz"),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--scenario", type=Path, required=True, help="scenario TOML file (see docs/many_feeders.md)"
    )
    parser.add_argument(
        "--case",
        default=None,
        help="the fleets' behaviour: none, droop, vsm, trip or staggered (default: the "
        "scenario's [contingency] case, else droop)",
    )
    parser.add_argument(
        "--no-attribution",
        action="store_true",
        help="skip the re-runs with each feeder's response off (no nadir_effect_hz)",
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="processes for the re-runs (default 1)"
    )
    parser.add_argument("--out", type=Path, default=None, help="write report.html and data here")
    add_json_flag(parser)


def run(args: argparse.Namespace) -> int:
    from studies.multi_feeder import run_multi_feeder_study

    text = check_text_file(args.scenario, what="scenario")
    check_referenced_files(text, base_dir=Path(args.scenario).parent, what=str(args.scenario))
    check_output_dir(args.out)
    result = run_multi_feeder_study(
        args.scenario,
        case=args.case,
        attribution=not args.no_attribution,
        workers=args.workers,
        out_dir=args.out,
    )
    if args.json:
        emit_json(result)
        return 0
    metrics = result["metrics"]
    print_violations(metrics.get("violations", []))
    print(
        f"case {result['case']}: nadir {metrics['f_nadir_hz']:.4f} Hz at "
        f"{metrics['t_nadir_s']:.3f} s after the event; tripped {metrics['fleet_tripped_mw']:.2f}"
        f" MW ({metrics['n_vehicles_tripped']} vehicles); UFLS shed "
        f"{metrics['ufls_shed_mw']:.1f} MW"
    )
    keys = [(k, label) for k, label in _COLUMNS if k in result["feeders"][0]]
    rows = [[row[k] for k, _ in keys] for row in result["feeders"]]
    print(format_table(rows, [label for _, label in keys]))
    if args.out is not None:
        print(f"report: {args.out / 'report.html'}")
    return 0
