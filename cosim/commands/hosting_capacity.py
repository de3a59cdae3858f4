"""``v2g-cosim hosting-capacity``: per-bus hosting capacity (two-tier, control-aware)."""

from __future__ import annotations

import argparse

from cosim.clitools import (
    add_json_flag,
    check_output_dir,
    emit_json,
    format_table,
    print_violations,
)

NAME = "hosting-capacity"
HELP = "per-bus hosting capacity of V2G export or EV charging (LinDistFlow screen + AC)"


#: most Monte Carlo scenarios --samples accepts (a 33-bus feeder takes about a minute per 1000);
#: the same number as ``studies.hosting_capacity_types.MAX_SAMPLES`` (the ``samples``
#: declaration), kept here so that ``--help`` does not import the study
MAX_SAMPLES = 100_000
_BYTES_PER_SAMPLE = 8 * 4 * 1000  # four float64 draws per element, ~1000 elements


def _bus(text: str):
    if text == "all":
        return "all"
    try:
        return int(text)
    except ValueError:
        # a bus name of an OpenDSS feeder; a balanced feeder refuses it in run()
        return str(text)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--feeder",
        default="case33bw",
        help="embedded feeder name, pandapower JSON path, or an OpenDSS model (.dss file, or "
        "ieee13, ieee34, ieee123, european_lv: three-phase, per phase)",
    )
    parser.add_argument(
        "--phase",
        choices=["a", "b", "c", "abc"],
        default=None,
        help="three-phase feeders: a single-phase unit line-to-neutral on phase a, b or c, "
        "or a balanced three-phase one (abc) (default a)",
    )
    parser.add_argument(
        "--vuf-max-percent",
        type=float,
        default=None,
        help="three-phase feeders: voltage unbalance factor limit |V2|/|V1| [%%] (default 2, "
        "EN 50160)",
    )
    parser.add_argument(
        "--bus",
        action="extend",
        nargs="+",
        type=_bus,
        default=None,
        help="pandapower bus indices (several after one --bus or repeated) or 'all' "
        "(default: all non-slack buses)",
    )
    parser.add_argument("--mode", choices=["export", "import"], default="export")
    parser.add_argument("--method", choices=["screen", "ac", "screen+ac"], default="screen+ac")
    parser.add_argument("--load-scale", type=float, default=1.0, help="scale every load")
    parser.add_argument(
        "--ext-grid-vm-pu", type=float, default=None, help="slack voltage set-point [pu]"
    )
    parser.add_argument("--v-max-pu", type=float, default=1.05, help="upper voltage limit [pu]")
    parser.add_argument("--v-min-pu", type=float, default=0.95, help="lower voltage limit [pu]")
    parser.add_argument(
        "--dv-max-pu",
        type=float,
        default=None,
        help="largest voltage change caused by the injection [pu] (checked only when given)",
    )
    parser.add_argument(
        "--max-loading-percent",
        type=float,
        default=100.0,
        help="line and transformer loading limit [%% of rating] (default 100)",
    )
    parser.add_argument(
        "--pf",
        type=float,
        default=1.0,
        help="fixed power factor of the added units (> 0 absorbs reactive power, < 0 injects)",
    )
    parser.add_argument(
        "--control",
        choices=["none", "volt_var_a", "volt_var_b", "volt_watt"],
        default="none",
        help="IEEE 1547-2018 control of the added units (default curves of the category)",
    )
    parser.add_argument(
        "--samples", type=int, default=None, help="Monte Carlo scenarios (stochastic HC)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the Monte Carlo draws")
    parser.add_argument("--out", default=None, help="write table, figures and report.html here")
    add_json_flag(parser)


def _run_three_phase(args: argparse.Namespace) -> int:
    from cosim.commands.powerflow import load_three_phase_feeder
    from grids.errors import ScenarioError, check_problems
    from grids.limits import VUF_LIMIT_PERCENT
    from studies.hosting_capacity_3ph import ThreePhaseCriteria, three_phase_hosting_capacity

    problems = []
    for option, value, default in (
        ("--samples", args.samples, None),
        ("--control", args.control, "none"),
        ("--dv-max-pu", args.dv_max_pu, None),
        ("--ext-grid-vm-pu", args.ext_grid_vm_pu, None),
        ("--out", args.out, None),
    ):
        if value != default:
            problems.append(f"{option}: not available for a three-phase (OpenDSS) feeder yet")
    check_problems(problems, ScenarioError, "invalid three-phase hosting-capacity study")
    buses = args.bus
    if buses is not None and "all" in buses:
        buses = None
    criteria = ThreePhaseCriteria(
        v_min_pu=args.v_min_pu,
        v_max_pu=args.v_max_pu,
        vuf_max_percent=VUF_LIMIT_PERCENT if args.vuf_max_percent is None else args.vuf_max_percent,
        max_line_loading_percent=args.max_loading_percent,
    )
    criteria.validate()
    model = load_three_phase_feeder(args.feeder)
    result = three_phase_hosting_capacity(
        model,
        buses=None if buses is None else [str(b) for b in buses],
        phase=args.phase or "a",
        mode=args.mode,
        method=args.method,
        criteria=criteria,
        load_mult=args.load_scale,
        pf=args.pf,
    )
    doc = result.to_json()
    if args.json:
        emit_json(doc)
        return 0
    rows = [
        (
            r["bus"],
            r["phase"],
            r["hosting_capacity_mw"],
            "-" if r["screen_mw"] is None else r["screen_mw"],
            r["binding"],
            r["where"],
        )
        for r in doc["results"]
    ]
    print(
        f"{doc['feeder']}: {doc['mode']} hosting capacity, phase {doc['phase']}, "
        f"method {doc['method']}"
    )
    print(
        format_table(rows, ["bus", "phase", "hosting_capacity_mw", "screen_mw", "binding", "where"])
    )
    if doc["base_case_violations"]:
        print("limits violated before any injection:")
        for text in doc["base_case_violations"]:
            print(f"  {text}")
    return 0


def run(args: argparse.Namespace) -> int:
    from cosim.commands.powerflow import is_three_phase_feeder
    from grids.errors import ScenarioError, check_problems
    from studies.hosting_capacity import HostingCapacityCriteria, run_hosting_capacity_study
    from studies.hosting_capacity_engine import check_value
    from studies.hosting_capacity_types import HC_SCENARIO_PARAMS

    if is_three_phase_feeder(args.feeder):
        return _run_three_phase(args)
    balanced_only = [
        (option, value)
        for option, value in (("--phase", args.phase), ("--vuf-max-percent", args.vuf_max_percent))
        if value is not None
    ]
    names = [b for b in (args.bus or []) if isinstance(b, str) and b != "all"]
    check_problems(
        [
            f"{o}: only for a three-phase (OpenDSS) feeder, not {args.feeder!r}"
            for o, _ in balanced_only
        ]
        + [f"--bus: {b!r} is not a bus index or 'all'" for b in names],
        ScenarioError,
        "invalid hosting-capacity study",
    )

    if args.samples is not None:
        # the declared range of ``samples`` (one place), said with the option's name
        (samples,) = (p for p in HC_SCENARIO_PARAMS if p.name == "samples")
        problems: list[str] = []
        check_value(samples, args.samples, key="--samples", problems=problems)
        if problems and args.samples > MAX_SAMPLES:
            problems[-1] += (
                f" (the limit of {MAX_SAMPLES} Monte Carlo scenarios: each one is an AC power "
                f"flow per bus; the draws alone would take about "
                f"{args.samples * _BYTES_PER_SAMPLE / 1e9:.0f} GB)"
            )
        elif problems:
            problems[-1] += " (a positive whole number of Monte Carlo scenarios)"
        check_problems(problems, ScenarioError, "invalid hosting-capacity study")
    check_output_dir(args.out)
    buses = args.bus
    if buses is not None and "all" in buses:
        buses = "all"
    criteria = HostingCapacityCriteria(
        v_min_pu=args.v_min_pu,
        v_max_pu=args.v_max_pu,
        dv_max_pu=args.dv_max_pu,
        max_line_loading_percent=args.max_loading_percent,
        max_trafo_loading_percent=args.max_loading_percent,
    )
    result = run_hosting_capacity_study(
        args.feeder,
        buses=buses,
        mode=args.mode,
        method=args.method,
        criteria=criteria,
        load_scale=args.load_scale,
        ext_grid_vm_pu=args.ext_grid_vm_pu,
        pf=args.pf,
        control=args.control,
        samples=args.samples,
        seed=args.seed,
        out_dir=args.out,
    )
    doc = result.to_json()
    # the key every run and study uses for limits it could not check (a missing rating)
    doc.setdefault("limits_not_checked", list(doc.get("missing_ratings", [])))
    if args.json:
        emit_json(doc)
        return 0
    rows = [
        (
            r["bus"],
            r["hosting_capacity_mw"],
            "-" if r["screen_mw"] is None else r["screen_mw"],
            r["binding"],
            r["where"],
        )
        for r in doc["results"]
    ]
    print_violations(doc.get("violations", []), doc.get("limits_not_checked", []))
    print(f"{doc['feeder']}: {doc['mode']} hosting capacity, method {doc['method']}")
    print(format_table(rows, ["bus", "hosting_capacity_mw", "screen_mw", "binding", "where"]))
    if doc["base_case_violations"]:
        print("limits violated before any injection:")
        for text in doc["base_case_violations"]:
            print(f"  {text}")
    if "distribution" in doc:
        d = doc["distribution"]
        print(
            f"stochastic ({d['n_samples']} scenarios, seed {d['seed']}): "
            f"P5 {d['p5_mw']:.3f} MW, P50 {d['p50_mw']:.3f} MW, P95 {d['p95_mw']:.3f} MW"
        )
    if args.out:
        print(f"report: {args.out}/report.html")
    return 0
