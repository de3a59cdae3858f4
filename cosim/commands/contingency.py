"""``v2g-cosim contingency``: a frequency event with the fleet's behaviours compared."""

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

NAME = "contingency"
HELP = "run a generation-loss/load-step event with fleet responses compared (nadir, RoCoF)"

_COLUMNS = (
    ("f_nadir_hz", "f_nadir_hz"),
    ("delta_f_nadir_hz", "df_nadir_hz"),
    ("t_nadir_s", "t_nadir_s"),
    ("rocof_initial_hz_per_s", "rocof_hz_per_s"),
    ("delta_f_steady_hz", "df_steady_hz"),
    ("ufls_shed_mw", "ufls_shed_mw"),
    ("fleet_tripped_mw", "tripped_mw"),
    ("n_vehicles_tripped", "n_tripped"),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--scenario", type=Path, required=True, help="scenario TOML file (see docs/contingency.md)"
    )
    parser.add_argument(
        "--compare",
        nargs="*",
        action="extend",
        default=None,
        metavar="CASE",
        help="compare fleet behaviours from none,droop,vsm,trip,staggered (comma- or "
        "space-separated, or repeated; without a value: the scenario's [contingency] compare "
        "list, default all five)",
    )
    parser.add_argument("--out", type=Path, default=None, help="write report.html and data here")
    add_json_flag(parser)


def run(args: argparse.Namespace) -> int:
    from studies.contingency import load_contingency_scenario, run_contingency_study

    text = check_text_file(args.scenario, what="scenario")
    check_referenced_files(text, base_dir=Path(args.scenario).parent, what=str(args.scenario))
    check_output_dir(args.out)
    scenario = load_contingency_scenario(args.scenario)
    if args.compare is None:
        cases = None
    else:
        cases = [c.strip() for item in args.compare for c in item.split(",") if c.strip()]
        if not cases:
            cases = [c.value for c in scenario.settings.compare]
    result = run_contingency_study(scenario, cases=cases, out_dir=args.out)
    if args.json:
        emit_json(result)
        return 0
    print_violations(result.get("violations", []), result.get("limits_not_checked", []))
    rows_in = result.get("cases", [result])
    rows = [[r["name"], *(r[key] for key, _ in _COLUMNS)] for r in rows_in]
    print(format_table(rows, ["case", *(label for _, label in _COLUMNS)]))
    if args.out is not None:
        print(f"report: {args.out / 'report.html'}")
    return 0
