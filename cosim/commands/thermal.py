"""``v2g-cosim thermal``: run the IEC 60076-7 transformer thermal model over a load profile."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from cosim.clitools import add_json_flag, check_text_file, emit_json, format_table

NAME = "thermal"
HELP = "transformer top-oil / hot-spot temperatures and ageing (IEC 60076-7) for a load profile"

PROFILE_COLUMNS = ("time_min", "load_pu", "ambient_c")  # the columns the docs show
VALUE_COLUMNS = ("load_pu", "ambient_c")
_INITIAL_KEYS = ("theta_o_initial_c", "delta_theta_h_initial_k")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--profile",
        required=True,
        type=Path,
        help="CSV or Parquet time series with a time column (time_min, t_s, t_h or ISO time) "
        "and load_pu, ambient_c, as scenario profiles (row i holds until row i+1)",
    )
    parser.add_argument(
        "--transformer",
        type=Path,
        default=None,
        help="TOML with IEC 60076-7 parameters (cooling, r, delta_theta_or_k, g_r_k, h, x, y, "
        "k11, k21, k22, tau_o_min, tau_w_min, paper, theta_o_initial_c, "
        "delta_theta_h_initial_k); unspecified keys take the IEC defaults of the cooling "
        "(default ONAN, as in a scenario's [feeder.transformer])",
    )
    add_json_flag(parser)


def read_profile(path: Path) -> tuple[list[float], list[float], list[float]]:
    """Read and validate the profile with the project's one time-series reader.

    The dialect is that of every scenario profile (:func:`grids.timeseries.read_time_series`):
    a time column (``time_min``, ``t_s``, ``t_h``/``time_h`` or ISO ``time``/``timestamp``)
    and the value columns ``load_pu`` and ``ambient_c``; CSV or Parquet. Every problem names
    the file, the row (line of the file) and the column.

    Returns
    -------
    time_min, load_pu, ambient_c : list of float
        Minutes from the first row [min], load [pu], ambient temperature [degC].

    Raises
    ------
    InputDataError
        Missing file or columns, not a regular file, too large, not UTF-8, non-numeric /
        NaN / infinite values, negative load, time not strictly increasing (all at once).
    """
    from grids.timeseries import read_time_series

    series = read_time_series(path, required=VALUE_COLUMNS, ranges={"load_pu": (0.0, None)})
    time_min = ((series.t_s - series.t_s[0]) / 60.0).tolist()
    return time_min, series.column("load_pu").tolist(), series.column("ambient_c").tolist()


def read_parameters(path: Path | None):
    """Read the transformer TOML: IEC parameters plus the two optional initial-state keys.

    The keys may sit at the top level or in a ``[transformer]`` table.

    Raises
    ------
    ScenarioError
        Unreadable TOML, unknown keys, wrong types or values out of range (all at once).
    """
    import tomllib

    from grids.errors import ScenarioError, check_problems
    from grids.thermal import ThermalParameters

    if path is None:
        from grids.thermal import DEFAULT_COOLING  # one default for scenarios and this command

        return ThermalParameters.for_cooling(DEFAULT_COOLING), None, None
    label = str(path)
    text = check_text_file(path, what="transformer file")
    try:
        data = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ScenarioError(f"{label}: not valid TOML ({error})") from None
    prefix = "transformer"
    if set(data) == {"transformer"} and isinstance(data["transformer"], dict):
        data = data["transformer"]
    data = dict(data)
    problems: list[str] = []
    initial: dict[str, float | None] = {}
    bounds = {"theta_o_initial_c": (-60.0, 250.0), "delta_theta_h_initial_k": (0.0, 200.0)}
    for key in _INITIAL_KEYS:
        initial[key] = None
        if key not in data:
            continue
        value = data.pop(key)
        low, high = bounds[key]
        if isinstance(value, bool) or not isinstance(value, int | float):
            problems.append(f"{prefix}.{key}: {value!r} is not a number")
        elif not math.isfinite(value):
            problems.append(f"{prefix}.{key}: {value} is not finite")
        elif value < low:
            problems.append(f"{prefix}.{key}: {value} is below the allowed {low}")
        elif value > high:
            problems.append(f"{prefix}.{key}: {value} is above the allowed {high}")
        else:
            initial[key] = float(value)
    params = None
    try:
        params = ThermalParameters.from_dict(data, path=prefix, extra_keys=_INITIAL_KEYS)
    except ScenarioError as error:
        problems = error.problems + problems
    check_problems(problems, ScenarioError, f"{label}: invalid transformer parameters")
    return params, initial["theta_o_initial_c"], initial["delta_theta_h_initial_k"]


def thermal_violations(time_min, hot_spot_c, ageing_days: float) -> list:
    """IEC 60076-7 limits the profile broke: hot-spot 120/140 degC and loss of life.

    Parameters
    ----------
    time_min : sequence of float
        Row times [min]; temperatures are at each row's start.
    hot_spot_c : sequence of float
        Winding hot-spot temperature at each row's time [degC].
    ageing_days : float
        Equivalent ageing over the profile [days].

    Returns
    -------
    list of grids.limits.Violation
        Hot-spot violations, then the loss of life when the insulation aged faster than the
        elapsed time. The time above a hot-spot limit counts row *i*'s interval
        ``[t_i, t_i+1)`` when the temperature at ``t_i`` is above it (even or uneven samples;
        :func:`hot_spot_between_rows` gives samples a minute apart); the last sample is the
        profile's end instant and adds no time.
    """
    import dataclasses

    import numpy as np

    from grids.thermal import hot_spot_violations, loss_of_life_violation

    t_s = np.asarray(time_min, dtype=float) * 60.0
    hot_spot = np.asarray(hot_spot_c, dtype=float)
    held_s = np.append(np.diff(t_s), 0.0)  # how long each row's temperature stands
    out = []
    for found in hot_spot_violations(hot_spot, t_s):
        above = hot_spot > found.limit_value
        out.append(dataclasses.replace(found, duration_s=float(held_s[above].sum())))
    elapsed_h = float(t_s[-1] - t_s[0]) / 3600.0 if t_s.size else 0.0
    ageing = loss_of_life_violation(24.0 * float(ageing_days), elapsed_h)
    if ageing is not None:
        out.append(ageing)
    return out


#: Finest resolution at which the limits are checked between rows [min], and the most
#: evaluation points (a year of rows is checked at about 5 min).
LIMIT_CHECK_STEP_MIN = 1.0
LIMIT_CHECK_MAX_POINTS = 100_000


def hot_spot_between_rows(params, *, time_min, load_pu, ambient_c, **initial):
    """The hot spot every minute between the rows (and at every row), for the limit check.

    The row-start temperatures of the table miss what happens inside a row (the hot spot
    rises through a load step and peaks at its end or, after a load increase, overshoots
    inside it). The profile is piecewise constant and the model's stepping is exact for any
    step, so the same profile evaluated on a finer grid gives the same trajectory, sampled
    more often: the time above a limit is then known to a grid step, not a row.

    Returns
    -------
    time_min, hot_spot_c : numpy.ndarray
        Grid times [min] (every row time included) and the hot spot at each [degC].
    """
    import numpy as np

    from grids.thermal import simulate_profile

    t = np.asarray(time_min, dtype=float)
    step_min = max(LIMIT_CHECK_STEP_MIN, (t[-1] - t[0]) / LIMIT_CHECK_MAX_POINTS)
    grid = np.union1d(t, np.arange(t[0], t[-1], step_min))
    row = np.searchsorted(t, grid, side="right") - 1  # the row that holds at each grid time
    fine = simulate_profile(
        params,
        time_min=grid,
        load_pu=np.asarray(load_pu, dtype=float)[row],
        ambient_c=np.asarray(ambient_c, dtype=float)[row],
        **initial,
    )
    return grid, np.asarray(fine.hot_spot_c, dtype=float)


def run(args: argparse.Namespace) -> int:
    from grids.thermal import simulate_profile

    time_min, load_pu, ambient_c = read_profile(args.profile)
    params, theta_o0, delta_h0 = read_parameters(args.transformer)
    result = simulate_profile(
        params,
        time_min=time_min,
        load_pu=load_pu,
        ambient_c=ambient_c,
        theta_o_initial_c=theta_o0,
        delta_theta_h_initial_k=delta_h0,
    )
    fine_min, fine_hot_spot_c = hot_spot_between_rows(
        params,
        time_min=time_min,
        load_pu=load_pu,
        ambient_c=ambient_c,
        theta_o_initial_c=theta_o0,
        delta_theta_h_initial_k=delta_h0,
    )
    violations = thermal_violations(fine_min, fine_hot_spot_c, result.ageing_days)
    summary = {
        "violations": [v.to_dict() for v in violations],
        "time_min": result.time_min,
        "top_oil_c": result.top_oil_c,
        "hot_spot_c": result.hot_spot_c,
        "max_hot_spot_c": result.max_hot_spot_c,
        "ageing_days": result.ageing_days,
        "temperatures_at": "row_start",
    }
    if args.json:
        emit_json(summary)
        return 0
    for line in [v.describe() for v in violations] or ["no IEC 60076-7 limit broken"]:
        print(line)
    print()
    rows = [
        (f"{t:g}", f"{k:.3f}", f"{a:.1f}", f"{o:.2f}", f"{h:.2f}")
        for t, k, a, o, h in zip(
            result.time_min, load_pu, ambient_c, result.top_oil_c, result.hot_spot_c, strict=True
        )
    ]
    print(format_table(rows, ["time_min", "load_pu", "ambient_c", "top_oil_c", "hot_spot_c"]))
    print(
        "temperatures are at each row's time, the start of its load and ambient "
        "(the end of the previous row's); the first row is the initial state"
    )
    print()
    print(f"cooling {params.cooling.value}, paper {params.paper.value}")
    print(f"max hot-spot temperature: {result.max_hot_spot_c:.2f} degC")
    print(f"equivalent ageing over the profile: {result.ageing_days:.4f} days")
    return 0
