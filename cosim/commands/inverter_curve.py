"""``v2g-cosim inverter-curve``: the steady-state response of one inverter, to check settings.

Categories: ``A``/``B`` (normal performance) select the defaults of the voltage functions
(``volt_var``, ``volt_watt``, ``pf``, ``watt_var``); ``I``/``II``/``III`` (abnormal
performance) select those of ``freq_watt``. A voltage function with I/II/III (or freq_watt with
A/B) is an error. Without ``--category``: the settings file's category, else B for voltage
functions and III for freq_watt.

``x`` is the voltage [pu] for the voltage functions and the frequency [Hz] for ``freq_watt``.
P and Q are per unit of the apparent-power rating (``q_pu > 0``: injected, capacitive), after
the apparent-power limit with the settings' priority (reactive by default). Trips and
momentary cessation are not applied: this is the curve, not a ride-through study.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from cosim.clitools import (
    add_json_flag,
    check_output_file,
    check_text_file,
    emit_json,
    format_table,
)
from grids.errors import ScenarioError

NAME = "inverter-curve"
HELP = "steady-state P/Q of one inverter for a control function (IEEE 1547-2018 settings)"

VOLTAGE_FUNCTIONS = ("volt_var", "volt_watt", "pf", "watt_var")
FUNCTIONS = ("volt_var", "volt_watt", "freq_watt", "pf", "watt_var")
VOLTAGE_CATEGORIES = ("A", "B")
ABNORMAL_CATEGORIES = ("I", "II", "III")
V_LIMITS_PU = (0.5, 1.5)
F_LIMITS_HZ = (55.0, 65.0)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--function", required=True, choices=FUNCTIONS, help="control function")
    parser.add_argument(
        "--category",
        choices=VOLTAGE_CATEGORIES + ABNORMAL_CATEGORIES,
        help="A/B for voltage functions, I/II/III for freq_watt (default B or III)",
    )
    parser.add_argument(
        "--settings",
        type=Path,
        metavar="FILE.toml",
        help="TOML with a [fleet.control] table (a scenario file) or the control keys at top level",
    )
    parser.add_argument(
        "--p-avail-pu",
        type=float,
        default=None,
        metavar="P",
        help="available/scheduled active power [pu] (pre-disturbance power for freq_watt; "
        "default 1.0, 0.5 for freq_watt)",
    )
    parser.add_argument(
        "--at",
        type=float,
        action="extend",
        nargs="+",
        metavar="X",
        help="voltage [pu] (frequency [Hz] for freq_watt) values, several after one --at or "
        "repeated; default: sweep the curve",
    )
    parser.add_argument("--plot", type=Path, metavar="FILE.png", help="write a plot of P and Q")
    add_json_flag(parser)


def _check_category(function: str, category: str | None) -> None:
    """A mismatched function/category pair is an error (None: not given, decided later)."""
    if category is None:
        return
    if function == "freq_watt":
        if category not in ABNORMAL_CATEGORIES:
            raise ScenarioError(
                f"--category {category} is a normal-performance (voltage) category; "
                "freq_watt uses the abnormal-performance categories I, II or III"
            )
    elif category not in VOLTAGE_CATEGORIES:
        raise ScenarioError(
            f"--category {category} is an abnormal-performance category; "
            f"{function} uses the normal-performance categories A or B"
        )


def _load_settings(path: Path | None, function: str, category: str | None):
    """Settings and the category used: --category, else the file's, else B / III."""
    import tomllib

    from vehicle_models.settings import InverterSettings

    key = "abnormal_category" if function == "freq_watt" else "voltage_category"
    default = "III" if function == "freq_watt" else "B"
    if path is None:
        category = category or default
        return InverterSettings.from_dict({key: category}, path="settings"), category
    if not Path(path).exists():
        raise ScenarioError(f"{path}: settings file not found")
    text = check_text_file(path, what="settings file")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ScenarioError(f"{path}: not valid TOML ({error})") from None
    fleet = data.get("fleet")
    if isinstance(fleet, dict) and "control" in fleet:
        table, where = fleet["control"], "fleet.control"
    else:
        table, where = data, path.name
    if not isinstance(table, dict):
        raise ScenarioError(f"{path}: {where} must be a table")
    table = dict(table)
    given = table.get(key)
    if category is not None and given is not None and str(given).upper() != category:
        raise ScenarioError(f"{path}: {where}.{key} = {given!r} contradicts --category {category}")
    if category is not None:
        table[key] = category
    settings = InverterSettings.from_dict(table, path=where)
    used = settings.abnormal_category if function == "freq_watt" else settings.voltage_category
    return settings, used.value


def _sweep(function: str, settings) -> list[float]:
    import numpy as np

    if function == "freq_watt":
        lo, hi, step = 58.5, 61.5, 0.05
    elif function == "volt_var":
        vv = settings.volt_var
        shift = vv.v_ref_pu - 1.0
        lo, hi, step = vv.v1_pu + shift - 0.04, vv.v4_pu + shift + 0.04, 0.005
    elif function == "volt_watt":
        lo, hi, step = 1.0, settings.volt_watt.v2_pu + 0.03, 0.0025
    else:
        lo, hi, step = 0.9, 1.1, 0.01
    n = round((hi - lo) / step) + 1
    return [round(float(x), 6) for x in np.linspace(lo, lo + (n - 1) * step, n)]


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from vehicle_models.controls import steady_state_response

    function = args.function
    _check_category(function, args.category)
    problems = []
    p_avail = args.p_avail_pu
    if p_avail is None:
        p_avail = 0.5 if function == "freq_watt" else 1.0
    if not math.isfinite(p_avail) or not -1.0 <= p_avail <= 1.0:
        problems.append(f"--p-avail-pu: {p_avail} is outside the allowed range -1 .. 1 pu")
    if args.at is not None:
        lo, hi = F_LIMITS_HZ if function == "freq_watt" else V_LIMITS_PU
        unit = "Hz" if function == "freq_watt" else "pu"
        for x in args.at:
            if not math.isfinite(x) or not lo <= x <= hi:
                problems.append(f"--at: {x} is outside the allowed range {lo:g} .. {hi:g} {unit}")
    if problems:
        raise ScenarioError("invalid inverter-curve arguments", problems=problems)
    check_output_file(args.plot, option="--plot")
    settings, category = _load_settings(args.settings, function, args.category)
    from vehicle_models.ride_through import ride_through_conflicts

    # in range but not coordinated with the must-ride-through tables: warn, do not fail
    for message in ride_through_conflicts(settings):
        print(f"warning: {message}", file=sys.stderr)
    xs = list(args.at) if args.at is not None else _sweep(function, settings)
    p, q = steady_state_response(function, np.asarray(xs), settings, p_avail_pu=p_avail)
    points = [
        {"x": float(x), "p_pu": float(pp), "q_pu": float(qq)}
        for x, pp, qq in zip(xs, p, q, strict=True)
    ]
    if args.plot is not None:
        _plot(args.plot, function, category, xs, p, q)
    if args.json:
        emit_json({"function": function, "category": category, "points": points})
        return 0
    x_name = "f_hz" if function == "freq_watt" else "vm_pu"
    print(f"{function}, category {category}, p_avail {p_avail:g} pu")
    print(format_table([(r["x"], r["p_pu"], r["q_pu"]) for r in points], [x_name, "p_pu", "q_pu"]))
    if args.plot is not None:
        print(f"plot written to {args.plot}")
    return 0


def _plot(path: Path, function: str, category: str, xs, p, q) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(xs, p, label="P [pu]", marker="." if len(xs) < 20 else None)
    ax.plot(xs, q, label="Q [pu] (+ injected)", marker="." if len(xs) < 20 else None)
    ax.set_xlabel("frequency [Hz]" if function == "freq_watt" else "voltage [pu]")
    ax.set_ylabel("per unit of rating")
    ax.set_title(f"{function}, category {category}")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
