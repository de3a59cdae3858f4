"""``v2g-cosim run SCENARIO.toml --out DIR``: run a scenario file through mosaik.

Shows a progress bar with the simulated time and an ETA; Ctrl-C stops the run cleanly and keeps
the results written so far (the results file is closed properly).
"""

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
    register_study_sections,
)

NAME = "run"
HELP = "run a co-simulation scenario file (TOML) and write its results"
OWN_PROGRESS = True  # a progress bar with the simulated time


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("scenario", type=Path, help="scenario file (TOML)")
    parser.add_argument(
        "--out", type=Path, default=Path("run-out"), help="output directory (default run-out)"
    )
    parser.add_argument(
        "--set",
        action="extend",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="override scenario keys by their dotted paths, e.g. --set frequency.h_s=4 "
        "events.0.p_mw=800 (VALUE is parsed as TOML; several after one --set or repeated)",
    )
    parser.add_argument(
        "--remote",
        choices=["fleet", "feeder"],
        help="run the fleet or the feeder simulator as a separate process (127.0.0.1)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_json_flag(parser)


def parse_overrides(items: list[str]) -> dict:
    """``["a.b=4", "c=\\"x\\""]`` -> ``{"a.b": 4, "c": "x"}`` (values parsed as TOML)."""
    import tomllib

    from grids.errors import ScenarioError

    out = {}
    problems = []
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            problems.append(f"--set {item!r}: expected KEY=VALUE")
            continue
        try:
            value = tomllib.loads(f"v = {raw.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw.strip()  # a bare word is taken as a string
        out[key.strip()] = value
    if problems:
        raise ScenarioError("invalid --set options", problems=problems)
    return out


def run(args: argparse.Namespace) -> int:
    from cosim.scenario import RemoteSim, load_scenario
    from cosim.world import run_scenario

    text = check_text_file(args.scenario, what="scenario")
    check_referenced_files(text, base_dir=Path(args.scenario).parent, what=str(args.scenario))
    check_output_dir(args.out)
    register_study_sections()  # [contingency] and [black_start] are validated by their study
    scenario = load_scenario(args.scenario, overrides=parse_overrides(args.set))
    remote = RemoteSim(args.remote) if args.remote else None
    result = run_scenario(
        scenario, args.out, progress=not (args.no_progress or args.json), remote=remote
    )
    if args.json:  # results, wall_time_s, metrics, violations, limits_not_checked
        emit_json(result.summary())
        return 0
    # broken limits first: they are the answer a reader must not miss
    print_violations(result.violations, result.limits_not_checked)
    rows = [(k, v) for k, v in result.metrics.items()]
    if rows:
        print(format_table(rows, ["metric", "value"]))
    print(f"results: {result.results_path} ({result.wall_time_s:.1f} s wall time)")
    return 0
