"""``v2g-cosim demo``: the main job on the embedded default feeder.

A day on ``case33bw`` with a few hundred V2G vehicles (volt-var and frequency droop, V2G export
dispatched by an aggregator at the evening peak) and the loss of a 500 MW unit at 18:00,
co-simulated through mosaik (15-min steps for the day, 20-ms steps around the event). Writes
``DIR/report.html`` with the voltage envelope, the transformer temperatures, the fleet's power
and state of charge, the frequency around the event and the key numbers. The scenario is
``studies/scenarios/demo.toml``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from cosim.clitools import add_json_flag, check_output_dir, emit_json

NAME = "demo"
HELP = "run the demo (a day on case33bw with a V2G fleet and a generation loss) and report"
OWN_PROGRESS = True  # a progress bar with the simulated time


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out", type=Path, default=Path("demo-out"), help="output directory (default demo-out)"
    )
    parser.add_argument(
        "--vehicles", type=int, default=None, help="number of vehicles (default from the scenario)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_json_flag(parser)


def demo_scenario_path() -> Path:
    """Path of the shipped demo scenario."""
    from importlib import resources

    return Path(str(resources.files("studies.scenarios").joinpath("demo.toml")))


def run(args: argparse.Namespace) -> int:
    from cosim.scenario import load_scenario
    from cosim.world import run_scenario
    from studies.demo_report import demo_report

    check_output_dir(args.out)
    overrides = {} if args.vehicles is None else {"fleet.n_vehicles": args.vehicles}
    scenario = load_scenario(demo_scenario_path(), overrides=overrides)
    result = run_scenario(scenario, args.out, progress=not (args.no_progress or args.json))
    path = demo_report(
        result.results_path,
        args.out,
        metrics=result.metrics,
        title="v2g-cosim demo: a day on case33bw with a V2G fleet",
        wall_time_s=result.wall_time_s,
        violations=result.violations,
        limits_not_checked=result.limits_not_checked,
    )
    m = result.metrics
    if args.json:
        emit_json(
            {
                "report": str(path),
                "results": str(result.results_path),
                "wall_time_s": result.wall_time_s,
                "metrics": m,
                "violations": [v.to_dict() for v in result.violations],
                "limits_not_checked": list(result.limits_not_checked),
            }
        )
        return 0
    for line in result.violation_lines():
        print(line)
    print(
        f"lowest voltage {m.get('min_vm_pu', float('nan')):.4f} pu; transformer hot spot "
        f"{m.get('max_hot_spot_c', float('nan')):.1f} °C; frequency nadir "
        f"{m.get('f_nadir_hz', float('nan')):.3f} Hz; report: {path}"
    )
    return 0
