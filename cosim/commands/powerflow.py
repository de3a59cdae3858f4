"""``v2g-cosim powerflow``: one power flow on a feeder, with a summary and its violations.

The solve is :func:`grids.feeder_model.summarize_powerflow` (the one feeder model). The output
names the limits the solution breaks (``violations``: service voltage per ANSI C84.1 ranges A
and B, or EN 50160; line loading over 100 % of the rating) and the limits it could not check
(``limits_not_checked``: e.g. a feeder whose lines carry no rating, where a loading of "0 %"
would be a silently wrong answer).
"""

from __future__ import annotations

import argparse

from cosim.clitools import add_json_flag, emit_json, format_table, print_violations

NAME = "powerflow"
HELP = "run one power flow (AC or LinDistFlow) on a feeder and summarize it"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--feeder",
        default="case33bw",
        help="embedded feeder name, pandapower JSON path, or an OpenDSS model (a .dss file, "
        "or the embedded three-phase feeders ieee13, ieee34, ieee123, european_lv) "
        "(default case33bw)",
    )
    parser.add_argument(
        "--method",
        choices=["ac", "lindistflow"],
        default="ac",
        help="ac: Newton-Raphson (same solution as pandapower runpp); lindistflow: linear "
        "radial approximation, lossless (p_loss_mw is null)",
    )
    parser.add_argument(
        "--load-scale",
        type=float,
        default=1.0,
        help="scale every load's P and Q by this factor (default 1)",
    )
    parser.add_argument(
        "--ext-grid-vm-pu",
        type=float,
        default=None,
        help="slack voltage set-point [pu] (default: as in the feeder)",
    )
    parser.add_argument(
        "--voltage-standard",
        choices=["ansi", "en50160"],
        default="ansi",
        help="service-voltage limits checked: ANSI C84.1 ranges A and B (default) or "
        "EN 50160 (0.90-1.10 pu)",
    )
    add_json_flag(parser)


def _format_loss(p_loss_mw: float) -> str:
    if p_loss_mw != p_loss_mw:  # NaN: LinDistFlow neglects losses
        return "n/a (LinDistFlow is lossless)"
    return f"{p_loss_mw:.5f}"


def _format_loading(max_loading_percent: float) -> str:
    if max_loading_percent != max_loading_percent:  # NaN: no line has a rating
        return "n/a (no line ratings)"
    return f"{max_loading_percent:.2f}"


def powerflow_violations(summary: dict, *, standard: str = "ansi") -> tuple[list, list[str]]:
    """Limits a power-flow summary breaks, and the limits it cannot check.

    Parameters
    ----------
    summary : dict
        From :func:`grids.feeder_model.summarize_powerflow` (``vm_pu`` in ``bus`` order, NaN at
        dead buses; ``max_line_loading_percent`` NaN when no line is rated; per-line
        ``line_loading_percent`` with ``line``, and ``trafo_loading_percent`` with ``trafo``,
        when given).
    standard : {"ansi", "en50160"}, keyword-only
        Service-voltage limits (:func:`grids.limits.voltage_violations`).

    Returns
    -------
    violations : list of grids.limits.Violation
        Voltage violations, then line (and, when given, transformer) loading above 100 % of
        the rating.
    limits_not_checked : list of str
        :func:`grids.limits.missing_rating` sentences (lines without a rating).
    """
    import numpy as np

    from grids.limits import Limit, missing_rating, upper_limit_violation, voltage_violations

    vm_pu = np.asarray(summary["vm_pu"], dtype=float)
    violations = voltage_violations(
        vm_pu, bus_names=[f"bus {b}" for b in summary["bus"]], standard=standard
    )
    not_checked: list[str] = []
    feeder = summary["feeder"]
    per_line = summary.get("line_loading_percent")
    if per_line is not None and "line" in summary:
        loading = np.asarray(per_line, dtype=float)
        names = [f"line {i}" for i in summary["line"]]
        n_unrated = int(np.count_nonzero(~np.isfinite(loading)))
        if n_unrated == loading.size:
            not_checked.append(missing_rating(f"every line of {feeder}", "line loading"))
        elif n_unrated:
            # out-of-service and dead lines are NaN too: said as not checked, not as 0 %
            not_checked.append(
                missing_rating(f"{n_unrated} line(s) of {feeder}", "line loading")
                + " (or out of service)"
            )
    else:
        loading = np.array([summary["max_line_loading_percent"]], dtype=float)
        names = ["most loaded rated line"]
        if not np.isfinite(loading).any():
            not_checked.append(missing_rating(f"every line of {feeder}", "line loading"))
    found = upper_limit_violation(
        loading, 100.0, limit=Limit.LINE_LOADING, quantity="loading_percent", names=names
    )
    if found is not None:
        violations.append(found)
    if summary.get("trafo_loading_percent") is not None and "trafo" in summary:
        found = upper_limit_violation(
            np.asarray(summary["trafo_loading_percent"], dtype=float),
            100.0,
            limit=Limit.TRANSFORMER_LOADING,
            quantity="loading_percent",
            names=[f"trafo {i}" for i in summary["trafo"]],
        )
        if found is not None:
            violations.append(found)
    return violations, not_checked


_PHASE_LETTER = {1: "a", 2: "b", 3: "c"}


def is_three_phase_feeder(feeder: str) -> bool:
    """Whether ``--feeder`` names an OpenDSS model (a ``.dss`` file or an embedded copy).

    Parameters
    ----------
    feeder : str
        The ``--feeder`` value.

    Returns
    -------
    bool
        :func:`grids.feeder3ph.is_three_phase_source`.
    """
    from grids.feeder3ph import is_three_phase_source

    return is_three_phase_source(feeder)


def load_three_phase_feeder(feeder: str):
    """The three-phase feeder model of a ``.dss`` path or an embedded name.

    Parameters
    ----------
    feeder : str
        ``--feeder`` value (see :func:`is_three_phase_feeder`).

    Returns
    -------
    grids.feeder3ph.ThreePhaseFeederModel
        Elements of the file the engine does not model are named in one ``warning:`` line on
        stderr (and kept in ``model.unsupported``).
    """
    import sys
    import warnings

    from cosim.clitools import check_input_file
    from grids.feeder3ph import ThreePhaseFeederModel
    from grids.opendss import UnsupportedElementWarning

    with warnings.catch_warnings():
        # listed below in one line (and in the JSON summary), not as a Python warning
        warnings.simplefilter("ignore", UnsupportedElementWarning)
        if str(feeder).strip().lower().endswith(".dss"):
            model = ThreePhaseFeederModel.from_dss(
                check_input_file(feeder, what="OpenDSS model (--feeder)")
            )
        else:
            model = ThreePhaseFeederModel.from_name(feeder)
    if model.unsupported:
        print(
            f"warning: {model.name}: elements not modelled by the three-phase engine: "
            + ", ".join(model.unsupported),
            file=sys.stderr,
        )
    return model


def three_phase_summary(model, result, *, standard: str = "ansi") -> dict:
    """JSON summary of one three-phase power flow, with its violations.

    Parameters
    ----------
    model : grids.feeder3ph.ThreePhaseFeederModel
        The feeder.
    result : grids.feeder3ph.ThreePhaseResult
        Its solution (the first scenario is summarized).
    standard : {"ansi", "en50160"}, keyword-only
        Service-voltage limits of the phase voltages.

    Returns
    -------
    dict
        ``feeder``, ``method``, ``converged``, ``phase_voltages`` (``bus`` as written in the
        file, ``phase`` ``"a"``/``"b"``/``"c"``, ``vm_pu``, ``va_degree``), ``vuf_max_percent``
        (with ``vuf_max_bus``), ``losses_kw``, ``min_vm_pu`` / ``max_vm_pu`` with their
        ``min_vm_node`` / ``max_vm_node`` (``{"bus", "phase"}``), ``max_line_loading_percent``,
        ``max_trafo_loading_percent`` (winding 1 against OpenDSS's ``NormalAmps``),
        ``violations``, ``limits_not_checked`` and ``unsupported_elements`` (the file's elements
        the engine does not model, by name).
    """
    import numpy as np

    from grids.dss_names import bus_spellings
    from grids.limits import (
        Limit,
        missing_rating,
        phase_loading_violation,
        phase_voltage_violations,
        unbalance_violation,
    )

    # OpenDSS lower-cases bus names: report them as written in the model's files
    spelling = bus_spellings(model.circuit.path)

    def as_written(bus) -> str:
        return spelling.get(str(bus).lower(), str(bus))

    node_bus = np.asarray([as_written(b) for b in model.node_bus])
    bus3 = [as_written(b) for b in model.bus3]
    node_phase = np.asarray(model.node_phase)
    keep = np.flatnonzero((node_phase >= 1) & (node_phase <= 3))
    vm = np.asarray(result.vm_pu, dtype=float)[0]
    va = np.asarray(result.va_degree, dtype=float)[0]
    phase_voltages = [
        {
            "bus": str(node_bus[k]),
            "phase": _PHASE_LETTER[int(node_phase[k])],
            "vm_pu": float(vm[k]),
            "va_degree": float(va[k]),
        }
        for k in keep
    ]
    k_min = keep[int(np.nanargmin(vm[keep]))]
    k_max = keep[int(np.nanargmax(vm[keep]))]
    vuf = np.asarray(result.vuf_percent, dtype=float)[0]
    has_vuf = vuf.size > 0 and np.isfinite(vuf).any()
    violations = phase_voltage_violations(
        vm[keep], node_bus=list(node_bus[keep]), node_phase=node_phase[keep], standard=standard
    )
    if has_vuf:
        found = unbalance_violation(vuf, bus_names=[f"bus {b}" for b in bus3])
        if found is not None:
            violations.append(found)
    not_checked: list[str] = []
    max_loading = {}
    for key, limit, values, conductors, what in (
        ("line", Limit.LINE_LOADING, result.line_loading_percent, result.line_conductor,
         "line"),
        ("trafo", Limit.TRANSFORMER_LOADING, result.trafo_loading_percent,
         result.trafo_conductor, "transformer"),
    ):  # fmt: skip
        loading = np.asarray(values, dtype=float)[0]
        n_unrated = int(np.count_nonzero(~np.isfinite(loading)))
        if loading.size and n_unrated == loading.size:
            not_checked.append(missing_rating(f"every {what} of {model.name}", f"{what} loading"))
        elif n_unrated:
            not_checked.append(
                missing_rating(
                    f"{n_unrated} {what} phase conductor(s) of {model.name}", f"{what} loading"
                )
            )
        if loading.size:
            name, letter = zip(*(c.rpartition(".")[::2] for c in conductors), strict=True)
            found = phase_loading_violation(
                loading,
                line_names=list(name),
                line_phase=[{"a": 1, "b": 2, "c": 3}.get(x, 0) for x in letter],
                limit=limit,
            )
            if found is not None:
                violations.append(found)
        finite = loading[np.isfinite(loading)]
        max_loading[key] = float(finite.max()) if finite.size else None
    return {
        "feeder": model.name,
        "method": "ac3ph",
        "converged": bool(np.asarray(result.converged)[0]),
        "phase_voltages": phase_voltages,
        "vuf_max_percent": float(np.nanmax(vuf)) if has_vuf else None,
        "vuf_max_bus": bus3[int(np.nanargmax(vuf))] if has_vuf else None,
        "losses_kw": float(np.asarray(result.losses_kw)[0]),
        "min_vm_pu": float(vm[k_min]),
        "min_vm_node": {
            "bus": str(node_bus[k_min]),
            "phase": _PHASE_LETTER[int(node_phase[k_min])],
        },
        "max_vm_pu": float(vm[k_max]),
        "max_vm_node": {
            "bus": str(node_bus[k_max]),
            "phase": _PHASE_LETTER[int(node_phase[k_max])],
        },
        "max_line_loading_percent": max_loading["line"],
        "max_trafo_loading_percent": max_loading["trafo"],
        "violations": [v.to_dict() for v in violations],
        "limits_not_checked": not_checked,
        "unsupported_elements": list(model.unsupported),
    }


def _run_three_phase(args: argparse.Namespace) -> int:
    from grids.errors import ScenarioError, check_problems

    problems = []
    if args.method != "ac":
        problems.append(
            f"--method: {args.method!r} is for balanced feeders; a three-phase (OpenDSS) "
            "feeder is solved by the three-phase AC engine (use --method ac)"
        )
    if args.ext_grid_vm_pu is not None:
        problems.append(
            "--ext-grid-vm-pu: not for an OpenDSS feeder (set the Vsource pu in the file)"
        )
    scale = args.load_scale
    if not (scale == scale and 0.0 <= scale <= 1000.0):
        problems.append(f"--load-scale: {scale!r} is out of range: expected a number in [0, 1000]")
    check_problems(problems, ScenarioError, "invalid three-phase power flow")
    model = load_three_phase_feeder(args.feeder)
    result = model.solve(load_mult=scale)
    summary = three_phase_summary(model, result, standard=args.voltage_standard)
    if args.json:
        emit_json(summary)
        return 0
    print_violations(summary["violations"], summary["limits_not_checked"])
    lo, hi = summary["min_vm_node"], summary["max_vm_node"]
    vuf = summary["vuf_max_percent"]
    loading = summary["max_line_loading_percent"]
    trafo = summary["max_trafo_loading_percent"]
    rows = [
        ("feeder", summary["feeder"]),
        ("method", "three-phase AC"),
        ("converged", summary["converged"]),
        ("nodes (bus-phases)", len(summary["phase_voltages"])),
        (
            "min vm [pu] (bus, phase)",
            f"{summary['min_vm_pu']:.5f} ({lo['bus']}, phase {lo['phase']})",
        ),
        (
            "max vm [pu] (bus, phase)",
            f"{summary['max_vm_pu']:.5f} ({hi['bus']}, phase {hi['phase']})",
        ),
        (
            "max VUF [%] (bus)",
            "n/a (no three-phase bus)" if vuf is None else f"{vuf:.3f} ({summary['vuf_max_bus']})",
        ),
        ("losses [kW]", f"{summary['losses_kw']:.3f}"),
        ("max line loading [%]", "n/a (no line ratings)" if loading is None else f"{loading:.2f}"),
        (
            "max transformer loading [%]",
            "n/a (no transformer ratings)" if trafo is None else f"{trafo:.2f}",
        ),
    ]
    print(format_table(rows, ["quantity", "value"]))
    print(f"worst phase: {lo['bus']} phase {lo['phase']} at {summary['min_vm_pu']:.5f} pu")
    return 0


def run(args: argparse.Namespace) -> int:
    from grids.feeder_model import SolveMethod, summarize_powerflow

    if is_three_phase_feeder(args.feeder):
        return _run_three_phase(args)
    summary = summarize_powerflow(
        args.feeder,
        method=SolveMethod(args.method),
        load_scale=args.load_scale,
        ext_grid_vm_pu=args.ext_grid_vm_pu,
    )
    violations, not_checked = powerflow_violations(summary, standard=args.voltage_standard)
    if args.json:
        emit_json(
            {
                **summary,
                "violations": [v.to_dict() for v in violations],
                "limits_not_checked": not_checked,
            }
        )
        return 0
    print_violations(violations, not_checked)
    rows = [
        ("feeder", summary["feeder"]),
        ("method", summary["method"]),
        ("converged", summary["converged"]),
        ("buses", len(summary["bus"])),
        ("min vm [pu] (bus)", f"{summary['min_vm_pu']:.5f} ({summary['min_vm_bus']})"),
        ("max vm [pu]", f"{summary['max_vm_pu']:.5f}"),
        ("losses [MW]", _format_loss(summary["p_loss_mw"])),
        ("max line loading [%]", _format_loading(summary["max_line_loading_percent"])),
    ]
    print(format_table(rows, ["quantity", "value"]))
    return 0
