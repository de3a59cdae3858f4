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
        help="pandapower bus indices, or bus names of an OpenDSS feeder (several after one "
        "--bus or repeated) or 'all' (default: all non-slack buses)",
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
    _add_time_series_arguments(parser)
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
        max_trafo_loading_percent=args.max_loading_percent,
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


def _add_time_series_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "time series and EV adoption (feeders with profiles: simbench:<code>; --time-series "
        "also on OpenDSS feeders whose loads follow load shapes, per --phase)"
    )
    group.add_argument(
        "--time-series",
        action="store_true",
        help="per-bus hosting capacity that holds over the profiles' steps (not one snapshot)",
    )
    group.add_argument(
        "--adoption",
        nargs="?",
        const="auto",
        default=None,
        choices=["auto", "simbench", "behaviour"],
        help="largest EV share without a violation (P50/P95 over --samples seeds, default 10) "
        "for unmanaged, volt-var, managed and V2G charging; charging from the SimBench EV "
        "profiles or the behavioural model (auto: SimBench's where the grid has them)",
    )
    group.add_argument(
        "--start",
        default=None,
        help="first step of the window (ISO date; OpenDSS load shapes start at 2000-01-01)",
    )
    group.add_argument(
        "--duration", default=None, help="length of the window: 7d, 365d, 12h (default: all)"
    )
    group.add_argument(
        "--percentile",
        type=float,
        default=100.0,
        help="share of the steps at which the added size must hold [%%] (default 100)",
    )


def run(args: argparse.Namespace) -> int:
    from cosim.commands.powerflow import is_three_phase_feeder
    from grids.errors import ScenarioError, check_problems
    from studies.hosting_capacity import HostingCapacityCriteria, run_hosting_capacity_study
    from studies.hosting_capacity_engine import check_value
    from studies.hosting_capacity_types import HC_SCENARIO_PARAMS

    three_phase = is_three_phase_feeder(args.feeder)
    if args.time_series and three_phase:
        return _run_time_series_three_phase(args)
    if args.time_series or args.adoption:
        # the per-phase options and bus names belong to the three-phase studies
        check_problems(
            (
                [
                    "--adoption: the EV adoption study is for balanced feeders with profiles "
                    "(simbench:<code>); three-phase feeders take --time-series"
                ]
                if three_phase
                else []
            )
            + [
                f"{o}: not for the time-series study"
                for o, v in (("--phase", args.phase), ("--vuf-max-percent", args.vuf_max_percent))
                if v is not None
            ]
            + [
                f"--bus: {b!r} is not a bus index or 'all'"
                for b in (args.bus or [])
                if isinstance(b, str) and b != "all"
            ],
            ScenarioError,
            "invalid hosting-capacity study",
        )
        return _run_time_series(args)
    if three_phase:
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


def _run_time_series(args: argparse.Namespace) -> int:
    """``--time-series`` / ``--adoption``: studies over the feeder's profiles."""
    from grids.errors import ScenarioError
    from studies.hosting_capacity import HostingCapacityCriteria
    from studies.hosting_capacity_timeseries import feeder_with_profiles, parse_duration_s

    if args.time_series and args.adoption:
        raise ScenarioError("--time-series and --adoption: choose one study per run")
    for option, value in (
        ("--phase", getattr(args, "phase", None)),
        ("--vuf-max-percent", getattr(args, "vuf_max_percent", None)),
        ("--method", None if args.method == "screen+ac" else args.method),
        ("--control", None if args.control == "none" else args.control),
    ):
        if value is not None:
            raise ScenarioError(
                f"{option}: not available with --time-series or --adoption (balanced feeders, "
                "the exact screen+AC method, fixed power factor; --adoption studies the controls)"
            )
    check_output_dir(args.out)
    duration_s = parse_duration_s(args.duration)
    criteria = HostingCapacityCriteria(
        v_min_pu=args.v_min_pu,
        v_max_pu=args.v_max_pu,
        dv_max_pu=args.dv_max_pu,
        max_line_loading_percent=args.max_loading_percent,
        max_trafo_loading_percent=args.max_loading_percent,
    )
    criteria.validate()
    model, profiles = feeder_with_profiles(args.feeder, start=args.start, duration_s=duration_s)
    if args.adoption:
        return _run_adoption(args, model, profiles, criteria)
    from studies.hosting_capacity_timeseries import run_time_series_hosting_capacity

    buses = args.bus
    if buses is not None and "all" in buses:
        buses = "all"
    result = run_time_series_hosting_capacity(
        model,
        profiles,
        mode=args.mode,
        percentile=args.percentile,
        buses=buses,
        criteria=criteria,
        pf=args.pf,
        simultaneous=True,
    )
    report = None
    if args.out:
        from studies.timeseries_report import write_time_series_outputs

        report = write_time_series_outputs(model, result, args.out)
    if args.json:
        emit_json(result.to_json())
        return 0
    print(
        f"{result.feeder}: time-series {result.mode.value} hosting capacity, "
        f"{len(result.time)} steps from {result.time[0]}, percentile {result.percentile:g}"
    )
    rows = [
        (
            r["bus"],
            r["hosting_capacity_mw"],
            r["snapshot_hosting_capacity_mw"],
            r["binding"],
            r["element"],
            r["first_violation_time"] or "-",
        )
        for r in result.rows
    ]
    headers = ["bus", "hosting_capacity_mw", "snapshot_mw", "binding", "element", "first_violation"]
    print(format_table(rows, headers))
    s = result.simultaneous
    print(
        f"all buses at once: {s['hosting_capacity_mw']:.4f} MW over the window; the per-bus "
        f"snapshot answers add up to {s['sum_snapshot_mw']:.4f} MW"
    )
    if report:
        print(f"report: {report}")
    return 0


def _run_adoption(args, model, profiles, criteria) -> int:
    from studies.adoption import run_adoption_study

    source = args.adoption
    if source == "auto":
        source = "simbench" if profiles.ev_p_mw is not None else "behaviour"
    result = run_adoption_study(
        model,
        profiles,
        source=source,
        n_seeds=10 if args.samples is None else args.samples,
        first_seed=args.seed,
        criteria=criteria,
    )
    report = None
    if args.out:
        from studies.timeseries_report import write_adoption_outputs

        report = write_adoption_outputs(model, result, args.out)
    if args.json:
        emit_json(result.to_json())
        return 0
    print(
        f"{result.feeder}: EV adoption hosting capacity, {result.n_customers} customers, "
        f"charging from {result.source.value}, {len(result.seeds)} seeds, "
        f"{len(result.time)} steps from {result.time[0]}"
    )
    rows = [
        (r["control"], r["share_p50"], r["share_p95"], r["most_common_binding"])
        for r in result.rows
    ]
    print(format_table(rows, ["control", "share_p50", "share_p95", "most_common_binding"]))
    if report:
        print(f"report: {report}")
    return 0


def _run_time_series_three_phase(args: argparse.Namespace) -> int:
    """``--time-series`` on an OpenDSS feeder: per bus and phase over its load shapes."""
    from cosim.commands.powerflow import load_three_phase_feeder
    from grids.errors import ScenarioError, check_problems
    from grids.limits import VUF_LIMIT_PERCENT
    from grids.opendss_loadshapes import read_load_shapes
    from studies.hosting_capacity_3ph import ThreePhaseCriteria
    from studies.hosting_capacity_timeseries import parse_duration_s
    from studies.hosting_capacity_ts3ph import three_phase_time_series_hosting_capacity

    problems = [
        f"{option}: not available for the three-phase time-series study"
        for option, value, default in (
            ("--adoption", args.adoption, None),
            ("--samples", args.samples, None),
            ("--control", args.control, "none"),
            ("--method", args.method, "screen+ac"),
            ("--dv-max-pu", args.dv_max_pu, None),
            ("--ext-grid-vm-pu", args.ext_grid_vm_pu, None),
            ("--load-scale", args.load_scale, 1.0),
        )
        if value != default
    ]
    check_problems(problems, ScenarioError, "invalid three-phase time-series hosting capacity")
    check_output_dir(args.out)
    duration_s = parse_duration_s(args.duration)
    criteria = ThreePhaseCriteria(
        v_min_pu=args.v_min_pu,
        v_max_pu=args.v_max_pu,
        vuf_max_percent=VUF_LIMIT_PERCENT if args.vuf_max_percent is None else args.vuf_max_percent,
        max_line_loading_percent=args.max_loading_percent,
        max_trafo_loading_percent=args.max_loading_percent,
    )
    criteria.validate()
    model = load_three_phase_feeder(args.feeder)
    shapes = read_load_shapes(model)
    if args.start is not None or duration_s is not None:
        shapes = shapes.window(args.start, duration_s)
    buses = args.bus
    if buses is not None and "all" in buses:
        buses = None
    result = three_phase_time_series_hosting_capacity(
        model,
        shapes,
        mode=args.mode,
        phase=args.phase or "a",
        percentile=args.percentile,
        buses=None if buses is None else [str(b) for b in buses],
        criteria=criteria,
        pf=args.pf,
        simultaneous=buses is not None and len(set(map(str, buses))) > 1,
    )
    report = None
    if args.out:
        from studies.timeseries3ph_report import write_three_phase_time_series_outputs

        report = write_three_phase_time_series_outputs(model, result, args.out)
    if args.json:
        emit_json(result.to_json())
        return 0
    print(
        f"{result.feeder}: time-series {result.mode.value} hosting capacity, phase "
        f"{result.phase.value}, {len(result.time)} steps from {result.time[0]}, percentile "
        f"{result.percentile:g}"
    )
    rows = [
        (
            r["bus"],
            r["phase"],
            r["hosting_capacity_mw"],
            r["snapshot_hosting_capacity_mw"],
            r["binding"],
            r["element"] or "-",
            r["first_violation_time"] or "-",
        )
        for r in result.rows
    ]
    headers = [
        "bus",
        "phase",
        "hosting_capacity_mw",
        "snapshot_mw",
        "binding",
        "element",
        "first_violation",
    ]
    print(format_table(rows, headers))
    s = result.simultaneous
    if s is not None:
        print(
            f"the buses at once: {s['hosting_capacity_mw']:.4f} MW over the window "
            f"({s['binding']}); the per-bus answers add up to {s['sum_time_series_mw']:.4f} MW, "
            f"the per-bus snapshot answers to {s['sum_snapshot_mw']:.4f} MW"
        )
    if result.base_case_violations:
        print("limits violated at the base load before any injection:")
        for text in result.base_case_violations:
            print(f"  {text}")
    if report:
        print(f"report: {report}")
    return 0
