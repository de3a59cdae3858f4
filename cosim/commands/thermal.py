"""``v2g-cosim thermal``: run the IEC 60076-7 transformer thermal model over a load profile."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from cosim.clitools import add_json_flag, check_text_file, emit_json, format_table

NAME = "thermal"
HELP = "transformer top-oil / hot-spot temperatures and ageing (IEC 60076-7) for a load profile"

PROFILE_COLUMNS = ("time_min", "load_pu", "ambient_c")
_INITIAL_KEYS = ("theta_o_initial_c", "delta_theta_h_initial_k")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--profile",
        required=True,
        type=Path,
        help="CSV with columns time_min,load_pu,ambient_c (row i holds until row i+1)",
    )
    parser.add_argument(
        "--transformer",
        type=Path,
        default=None,
        help="TOML with IEC 60076-7 parameters (cooling, r, delta_theta_or_k, g_r_k, h, x, y, "
        "k11, k21, k22, tau_o_min, tau_w_min, paper, theta_o_initial_c, "
        "delta_theta_h_initial_k); unspecified keys take the IEC defaults (ONAF)",
    )
    add_json_flag(parser)


def read_profile(path: Path) -> tuple[list[float], list[float], list[float]]:
    """Read and validate the profile CSV; every problem names the file and the data row.

    Rows are numbered from 1 for the first data row (the header is not counted).

    Raises
    ------
    InputDataError
        Missing file or columns, non-numeric / NaN / infinite values, negative load,
        time not strictly increasing (all problems listed at once).
    """
    import io

    import pandas as pd

    from grids.errors import InputDataError, check_problems

    label = str(path)
    text = check_text_file(path, what="profile")
    try:
        frame = pd.read_csv(
            io.StringIO(text), dtype=str, keep_default_na=False, skipinitialspace=True
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise InputDataError(f"{label}: not a readable CSV file ({error})") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    missing = [c for c in PROFILE_COLUMNS if c not in frame.columns]
    if missing:
        raise InputDataError(
            f"{label}: missing column(s) {', '.join(missing)} "
            f"(expected {','.join(PROFILE_COLUMNS)}; found {','.join(frame.columns)})"
        )
    if len(frame) == 0:
        raise InputDataError(f"{label}: the profile has no data rows")
    problems: list[str] = []
    values: dict[str, list[float]] = {c: [] for c in PROFILE_COLUMNS}
    for row_number, row in enumerate(frame[list(PROFILE_COLUMNS)].itertuples(index=False), 1):
        for column, text in zip(PROFILE_COLUMNS, row, strict=True):
            text = str(text).strip()
            if not text:
                problems.append(f"{label}: row {row_number}: {column} is missing")
                values[column].append(math.nan)
                continue
            try:
                value = float(text)
            except ValueError:
                problems.append(f"{label}: row {row_number}: {column} is not a number ({text!r})")
                values[column].append(math.nan)
                continue
            if math.isnan(value):
                problems.append(f"{label}: row {row_number}: {column} is NaN")
            elif math.isinf(value):
                problems.append(f"{label}: row {row_number}: {column} is infinite")
            elif column == "load_pu" and value < 0:
                problems.append(f"{label}: row {row_number}: load_pu is {value:g} (expected >= 0)")
            values[column].append(value)
    times = values["time_min"]
    for k in range(1, len(times)):
        if math.isfinite(times[k]) and math.isfinite(times[k - 1]) and times[k] <= times[k - 1]:
            problems.append(
                f"{label}: row {k + 1}: time_min {times[k]:g} is not after the previous row's "
                f"{times[k - 1]:g} (time must increase strictly)"
            )
    check_problems(problems, InputDataError, f"{label}: invalid thermal profile")
    return values["time_min"], values["load_pu"], values["ambient_c"]


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
        return ThermalParameters.for_cooling("ONAF"), None, None
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
    summary = {
        "time_min": result.time_min,
        "top_oil_c": result.top_oil_c,
        "hot_spot_c": result.hot_spot_c,
        "max_hot_spot_c": result.max_hot_spot_c,
        "ageing_days": result.ageing_days,
    }
    if args.json:
        emit_json(summary)
        return 0
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
