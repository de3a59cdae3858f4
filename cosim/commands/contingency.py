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
HELP = (
    "run a generation-loss/load-step event with fleet responses compared (nadir, RoCoF), "
    "optionally with a feeder fault (--fault)"
)

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
    fault = parser.add_argument_group(
        "fault case", "add a balanced three-phase fault on the feeder (a 'fault' event)"
    )
    fault.add_argument("--fault", type=int, default=None, metavar="BUS", help="faulted bus")
    fault.add_argument(
        "--fault-impedance-ohm",
        default=None,
        metavar="R,X",
        help="fault resistance and reactance [ohm] (default 0,0: bolted)",
    )
    fault.add_argument(
        "--fault-impedance-pu",
        default=None,
        metavar="R,X",
        help="or in pu of the fault bus's base voltage and the net's base power",
    )
    fault.add_argument(
        "--fault-duration-s", type=float, default=None, metavar="S", help="clearing time [s]"
    )
    fault.add_argument(
        "--fault-t-s",
        type=float,
        default=None,
        metavar="S",
        help="time of the fault [s] (default: the first generation loss / load step)",
    )
    fault.add_argument(
        "--fault-s-sc-mva",
        type=float,
        default=None,
        metavar="MVA",
        help="short-circuit power of the external grid when the feeder has none",
    )
    fault.add_argument(
        "--fault-rx", type=float, default=None, metavar="R/X", help="R/X of the external grid"
    )
    add_json_flag(parser)


def _pair(text: str | None, option: str) -> tuple[float, float] | None:
    from grids.errors import ScenarioError

    if text is None:
        return None
    parts = [p.strip() for p in str(text).split(",")]
    try:
        r, x = (float(p) for p in parts)
    except ValueError:
        raise ScenarioError(
            f"{option}: {text!r} is not R,X (two numbers separated by a comma, e.g. 1.0,2.0)"
        ) from None
    return r, x


def fault_event(args: argparse.Namespace, event_t_s: float) -> dict | None:
    """The ``[[events]]`` table of the command line's fault case (None without ``--fault``).

    Parameters
    ----------
    args : argparse.Namespace
        The parsed options.
    event_t_s : float
        Default time of the fault [s] (the scenario's first frequency event).

    Returns
    -------
    dict or None
    """
    from grids.errors import ScenarioError, check_problems

    given = [
        name
        for name in ("fault_impedance_ohm", "fault_impedance_pu", "fault_duration_s", "fault_t_s",
                     "fault_s_sc_mva", "fault_rx")
        if getattr(args, name) is not None
    ]  # fmt: skip
    if args.fault is None:
        check_problems(
            [f"--{n.replace('_', '-')}: only with --fault BUS" for n in given],
            ScenarioError,
            "invalid fault case",
        )
        return None
    problems = []
    if args.fault_duration_s is None:
        problems.append("--fault-duration-s: missing (the clearing time of the fault, e.g. 0.15)")
    if args.fault_impedance_ohm is not None and args.fault_impedance_pu is not None:
        problems.append("--fault-impedance-ohm and --fault-impedance-pu: give one, not both")
    check_problems(problems, ScenarioError, "invalid fault case")
    event: dict = {
        "t_s": event_t_s if args.fault_t_s is None else args.fault_t_s,
        "kind": "fault",
        "bus": args.fault,
        "duration_s": args.fault_duration_s,
    }
    ohm = _pair(args.fault_impedance_ohm, "--fault-impedance-ohm")
    pu = _pair(args.fault_impedance_pu, "--fault-impedance-pu")
    if ohm is not None:
        event["r_fault_ohm"], event["x_fault_ohm"] = ohm
    if pu is not None:
        event["r_fault_pu"], event["x_fault_pu"] = pu
    if args.fault_s_sc_mva is not None:
        event["s_sc_mva"] = args.fault_s_sc_mva
    if args.fault_rx is not None:
        event["rx"] = args.fault_rx
    return event


_OPTION_OF_KEY = {
    "bus": "--fault",
    "duration_s": "--fault-duration-s",
    "t_s": "--fault-t-s",
    "s_sc_mva": "--fault-s-sc-mva",
    "rx": "--fault-rx",
}


def _load_with_fault(path: Path, event: dict):
    """The scenario with the command line's fault added; its problems name the options."""
    from cosim.scenario import read_toml
    from grids.errors import ScenarioError
    from studies.contingency import load_contingency_scenario

    try:
        return load_contingency_scenario(path, extra_events=[event])
    except ScenarioError as error:
        written = read_toml(path).get("events", [])
        key = f"events[{len(written) if isinstance(written, list) else 1}]"
        problems = []
        for problem in error.problems:
            if key in problem:
                problem = problem.replace(f"{key}: ", "--fault: ")
                for name, option in _OPTION_OF_KEY.items():
                    problem = problem.replace(f"{key}.{name}:", f"{option}:")
                    problem = problem.replace(f"give {name} explicitly", f"give {option}")
                problem = problem.replace(f"{key}.", "--fault ")
            problems.append(problem)
        raise ScenarioError(error.summary, problems=problems) from None


def fault_lines(case: dict) -> list[str]:
    """What a case's faults did, one paragraph per fault: retained voltages, the buses below
    each ride-through threshold, the fleet power ceased and tripped."""
    lines = []
    for fault in case.get("faults", []):
        if "buses" not in fault:
            lines.append(f"  fault at bus {fault['bus']}: not reached before the end of the run")
            continue
        r, x = fault["z_fault_ohm"]
        vm = [b["vm_pu"] for b in fault["buses"]]
        lines.append(
            f"  fault at bus {fault['bus']} ({r:g}+j{x:g} ohm, {fault['duration_s']:g} s, "
            f"fault current {fault['ikss_ka']:.3g} kA): fleet buses at "
            f"{min(vm):.3f}-{max(vm):.3f} pu (at most +{fault['inverter_lift_bound_pu']:.3f} pu "
            "from the chargers' own fault current, neglected)"
        )
        for name, (v_pu, t_s) in fault["thresholds"].items():
            below = [b for b in fault["buses"] if name in b["below"]]
            if not below:
                continue
            n_veh = sum(b["n_vehicles_plugged"] for b in below)
            when = "momentary cessation" if t_s is None else f"trips after {t_s:g} s"
            lines.append(
                f"    below {name} = {v_pu:g} pu ({when}): {len(below)} bus(es) "
                f"{_ranges([b['bus'] for b in below])}, {n_veh} vehicles plugged in"
            )
        lines.append(
            f"    fleet output ceased: {fault['fleet_ceased_mw']:.2f} MW; tripped (whole run): "
            f"{case['fleet_tripped_mw']:.2f} MW"
        )
    return lines


def _ranges(buses: list[int]) -> str:
    """``[1, 2, 3, 7]`` -> ``"1-3, 7"``."""
    out, start, prev = [], None, None
    for b in sorted(buses):
        if start is None:
            start = prev = b
        elif b == prev + 1:
            prev = b
        else:
            out.append(f"{start}-{prev}" if prev != start else f"{start}")
            start = prev = b
    if start is not None:
        out.append(f"{start}-{prev}" if prev != start else f"{start}")
    return ", ".join(out)


def run(args: argparse.Namespace) -> int:
    from studies.contingency import load_contingency_scenario, run_contingency_study

    text = check_text_file(args.scenario, what="scenario")
    check_referenced_files(text, base_dir=Path(args.scenario).parent, what=str(args.scenario))
    check_output_dir(args.out)
    scenario = load_contingency_scenario(args.scenario)
    event = fault_event(args, scenario.event_t_s)
    if event is not None:
        scenario = _load_with_fault(args.scenario, event)
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
    for r in rows_in:
        lines = fault_lines(r)
        if lines:
            print(f"case {r['name']}:")
            print("\n".join(lines))
    if args.out is not None:
        print(f"report: {args.out / 'report.html'}")
    return 0
