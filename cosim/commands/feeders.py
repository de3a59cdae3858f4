"""``v2g-cosim feeders``: list the embedded feeders with their element counts, or the SimBench
grid codes (``--simbench``; usable as ``--feeder simbench:<code>``)."""

from __future__ import annotations

import argparse

from cosim.clitools import add_json_flag, emit_json, format_table

NAME = "feeders"
HELP = "list the embedded feeders with bus/line/transformer counts (or --simbench codes)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--simbench",
        action="store_true",
        help="list the SimBench grid codes instead (feeder name simbench:<code>; needs the "
        "simbench extra)",
    )
    add_json_flag(parser)


def _run_simbench(args: argparse.Namespace) -> int:
    from grids.simbench import SIMBENCH_PREFIX, code_parts, simbench_codes

    codes = simbench_codes()  # the package's list: no grid is built
    if args.json:
        emit_json(
            {
                "simbench": [
                    {"name": SIMBENCH_PREFIX + code, "code": code, **(code_parts(code) or {})}
                    for code in codes
                ]
            }
        )
        return 0
    rows = []
    for code in codes:
        parts = code_parts(code) or {}
        rows.append(
            (
                SIMBENCH_PREFIX + code,
                parts.get("levels", ""),
                parts.get("type", ""),
                parts.get("scenario", ""),
                parts.get("switches", ""),
            )
        )
    print(format_table(rows, ["name", "levels", "type", "scenario", "switches"]))
    return 0


def run(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    if args.simbench:
        return _run_simbench(args)

    from grids.feeders import feeder_info, feeder_names

    infos = [feeder_info(name) for name in feeder_names()]
    if args.json:
        emit_json({"feeders": [asdict(i) for i in infos]})
        return 0
    rows = [
        (i.name, i.n_bus, i.n_line, i.n_trafo, i.n_load, "yes" if i.radial else "no", i.description)
        for i in infos
    ]
    print(
        format_table(rows, ["name", "buses", "lines", "trafos", "loads", "radial", "description"])
    )
    return 0
