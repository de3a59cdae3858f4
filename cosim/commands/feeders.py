"""``v2g-cosim feeders``: list the embedded feeders with their element counts."""

from __future__ import annotations

import argparse

from cosim.clitools import add_json_flag, emit_json, format_table

NAME = "feeders"
HELP = "list the embedded feeders with bus/line/transformer counts"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_json_flag(parser)


def run(args: argparse.Namespace) -> int:
    from dataclasses import asdict

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
