"""Fleet tables: one row per vehicle, read from CSV or Parquet and checked row by row.

Required columns: ``bus, arrival_s, departure_s, e_capacity_kwh, soc_arrival_frac,
p_charge_max_kw``; optional: ``vehicle_id, soc_target_frac, p_discharge_max_kw, s_max_kva,
eta_charge, eta_discharge, soc_min_frac, soc_max_frac, soc_reserve_frac, phase`` (the charger's
connection on a three-phase feeder: ``a``, ``b``, ``c``, ``ab``, ``bc``, ``ca`` or ``abc``, see
:mod:`vehicle_models.phases`). On a three-phase feeder ``bus`` holds the bus names as written in
the feeder's file (``bus_names``). Every problem is
reported at once as one :class:`~grids.errors.InputDataError` naming the file, the (1-based
data) row and the column. :meth:`vehicle_models.fleet.Fleet.from_table` builds a fleet from
:func:`fleet_table_arguments`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from grids.errors import InputDataError, check_problems
from vehicle_models.battery import BatteryBank, TheveninParameters
from vehicle_models.phases import PHASES

TABLE_COLUMNS_REQUIRED = (
    "bus",
    "arrival_s",
    "departure_s",
    "e_capacity_kwh",
    "soc_arrival_frac",
    "p_charge_max_kw",
)
"""Columns every fleet table must have."""
TABLE_COLUMNS_OPTIONAL = {
    "vehicle_id": None,
    "soc_target_frac": None,  # default: soc_max_frac
    "p_discharge_max_kw": None,  # default: p_charge_max_kw
    "s_max_kva": None,  # default: max of the two kW ratings
    "eta_charge": 0.95,
    "eta_discharge": 0.95,
    "soc_min_frac": 0.0,
    "soc_max_frac": 1.0,
    "soc_reserve_frac": 0.0,
    "phase": None,  # text: a, b, c, ab, bc, ca or abc (three-phase feeders only)
}
"""Optional columns and their defaults (``None``: derived from other columns)."""


def fleet_table_arguments(
    path,
    *,
    period_s: float | None = None,
    thevenin: TheveninParameters | None = None,
    bus_names: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Read a fleet table and turn it into the arguments of :class:`~vehicle_models.fleet.Fleet`.

    Parameters
    ----------
    path : str or pathlib.Path
        CSV or Parquet file, one row per vehicle (one session each).
    period_s : float, optional
        Repeat period of the sessions [s]: arrival is taken modulo the period and the trip
        energy is ``(soc_target - soc_arrival) * capacity``.
    thevenin : TheveninParameters, optional
        Equivalent-circuit battery model.
    bus_names : sequence of str, optional
        Bus names of a three-phase feeder: the ``bus`` column names buses (case-insensitive)
        and each becomes its position in this sequence.

    Returns
    -------
    dict
        ``bus, arrival_s, dwell_s, e_target_kwh, e_trip_kwh, battery, period_s, vehicle_id``
        and, with a ``phase`` column, ``phase`` (:attr:`~vehicle_models.phases.Phase.code`
        per row).

    Raises
    ------
    InputDataError
        Naming the file, the row and the column of every problem found.
    """
    data = read_fleet_table(path, bus_names=bus_names)
    name = Path(path).name
    n = data["bus"].size  # rows (``len(data)`` would count columns)
    cap = data["e_capacity_kwh"]
    soc_max = data["soc_max_frac"]
    target = np.where(np.isnan(data["soc_target_frac"]), soc_max, data["soc_target_frac"])
    p_dis = np.where(
        np.isnan(data["p_discharge_max_kw"]),
        data["p_charge_max_kw"],
        data["p_discharge_max_kw"],
    )
    s_max = np.where(
        np.isnan(data["s_max_kva"]),
        np.maximum(data["p_charge_max_kw"], p_dis),
        data["s_max_kva"],
    )
    problems: list[str] = []
    _row_check(
        problems,
        name,
        p_dis > s_max * (1 + 1e-12),
        "p_discharge_max_kw",
        p_dis,
        "exceeds s_max_kva",
    )
    _row_check(
        problems,
        name,
        data["p_charge_max_kw"] > s_max * (1 + 1e-12),
        "p_charge_max_kw",
        data["p_charge_max_kw"],
        "exceeds s_max_kva",
    )
    _row_check(
        problems,
        name,
        (target < data["soc_min_frac"]) | (target > soc_max),
        "soc_target_frac",
        target,
        "is outside soc_min_frac..soc_max_frac",
    )
    dwell = data["departure_s"] - data["arrival_s"]
    if period_s is not None:
        if not period_s > 0:
            problems.append(f"{name}: period_s {period_s} must be positive")
        else:
            _row_check(
                problems,
                name,
                dwell >= period_s,
                "departure_s",
                data["departure_s"],
                f"is a period ({period_s} s) or more after arrival_s",
            )
    check_problems(problems, InputDataError, f"{name}: invalid fleet table")
    arrival = data["arrival_s"] if period_s is None else np.mod(data["arrival_s"], period_s)
    battery = BatteryBank.create(
        e_capacity_kwh=cap,
        soc_frac=data["soc_arrival_frac"],
        p_charge_max_kw=data["p_charge_max_kw"],
        p_discharge_max_kw=p_dis,
        s_max_kva=s_max,
        eta_charge=data["eta_charge"],
        eta_discharge=data["eta_discharge"],
        soc_min_frac=data["soc_min_frac"],
        soc_max_frac=soc_max,
        soc_reserve_frac=data["soc_reserve_frac"],
        thevenin=thevenin,
    )
    vid = data["vehicle_id"] if "vehicle_id" in data else np.arange(n)
    phase = {"phase": data["phase"]} if "phase" in data else {}
    return {
        **phase,
        "bus": data["bus"].astype(np.int64),
        "arrival_s": arrival,
        "dwell_s": dwell,
        "e_target_kwh": target * cap,
        "e_trip_kwh": np.maximum(target - data["soc_arrival_frac"], 0.0) * cap,
        "battery": battery,
        "period_s": period_s,
        "vehicle_id": vid,
    }


def _row_check(problems, name, mask, column, values, what, limit: int = 5) -> None:
    bad = np.flatnonzero(mask)
    for i in bad[:limit]:
        problems.append(f"{name}: row {i + 1}: {column} ({values[i]:g}) {what}")
    if bad.size > limit:
        problems.append(f"{name}: {column}: {bad.size - limit} more rows with the same problem")


def read_fleet_table(path, *, bus_names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """Read and validate a fleet table (CSV or Parquet) into arrays per column.

    Parameters
    ----------
    path : str or pathlib.Path
        ``.csv``/``.txt`` or ``.parquet``/``.pq`` file.
    bus_names : sequence of str, optional, keyword-only
        Bus names of a three-phase feeder: the ``bus`` column holds names (case-insensitive),
        returned as their positions in this sequence.

    Returns
    -------
    dict of numpy.ndarray
        One float array per known column (defaults filled in; NaN where derived later),
        ``vehicle_id`` as given, ``phase`` (connection codes, int) only when the table has
        the column.

    Raises
    ------
    InputDataError
        Every problem at once; rows are numbered from 1 (the first data row, below the CSV
        header).
    """
    path = Path(path)
    name = path.name
    if not path.is_file():
        raise InputDataError(f"{path}: fleet table not found")
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            frame = pd.read_parquet(path)
        elif path.suffix.lower() in (".csv", ".txt"):
            frame = pd.read_csv(path)
        else:
            raise InputDataError(f"{name}: unsupported fleet table format (use .csv or .parquet)")
    except InputDataError:
        raise
    except Exception as exc:  # pandas/pyarrow parse errors: report, never a traceback
        raise InputDataError(f"{name}: cannot be read as a table: {exc}") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    problems: list[str] = []
    missing = [c for c in TABLE_COLUMNS_REQUIRED if c not in frame.columns]
    if missing:
        problems.append(f"{name}: missing column(s): {', '.join(missing)}")
    known = set(TABLE_COLUMNS_REQUIRED) | set(TABLE_COLUMNS_OPTIONAL)
    unknown = [c for c in frame.columns if c not in known]
    if unknown:
        problems.append(
            f"{name}: unknown column(s): {', '.join(unknown)} (allowed: {', '.join(sorted(known))})"
        )
    if len(frame) == 0:
        problems.append(f"{name}: the table has no rows")
    check_problems(problems, InputDataError, f"{name}: invalid fleet table")

    data: dict[str, np.ndarray] = {}
    n = len(frame)
    for col in (*TABLE_COLUMNS_REQUIRED, *TABLE_COLUMNS_OPTIONAL):
        if col == "phase":
            if col in frame.columns:
                data[col] = _phase_column(problems, name, frame[col])
            continue
        if col == "bus" and bus_names is not None and col in frame.columns:
            data[col] = _bus_name_column(problems, name, frame[col], bus_names)
            continue
        if col == "vehicle_id":
            if col in frame.columns:
                data[col] = frame[col].to_numpy()
                dup = frame[col].duplicated().to_numpy()
                _row_check_text(problems, name, dup, col, data[col], "is a duplicate")
            continue
        if col not in frame.columns:
            default = TABLE_COLUMNS_OPTIONAL[col]
            data[col] = np.full(n, np.nan if default is None else default)
            continue
        raw = frame[col]
        values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
        not_number = np.isnan(values) & raw.notna().to_numpy()
        _row_check_text(problems, name, not_number, col, raw.to_numpy(), "is not a number")
        required = col in TABLE_COLUMNS_REQUIRED
        if required:
            missing_value = raw.isna().to_numpy()
            _row_check_text(problems, name, missing_value, col, raw.to_numpy(), "is missing")
        elif TABLE_COLUMNS_OPTIONAL[col] is not None:
            values = np.where(raw.isna().to_numpy(), TABLE_COLUMNS_OPTIONAL[col], values)
        _row_check(problems, name, np.isinf(values), col, values, "is infinite")
        data[col] = values
    check_problems(problems, InputDataError, f"{name}: invalid fleet table")

    ok = lambda a: np.nan_to_num(a, nan=0.5)  # noqa: E731  (NaN defaults checked later)
    bus = data["bus"]
    _row_check(
        problems,
        name,
        (bus < 0) | (bus != np.round(bus)),
        "bus",
        bus,
        "is not a non-negative integer",
    )
    _row_check(
        problems,
        name,
        data["departure_s"] <= data["arrival_s"],
        "departure_s",
        data["departure_s"],
        "is not after arrival_s",
    )
    _row_check(
        problems,
        name,
        data["e_capacity_kwh"] <= 0,
        "e_capacity_kwh",
        data["e_capacity_kwh"],
        "must be positive",
    )
    for col in ("p_charge_max_kw", "p_discharge_max_kw"):
        _row_check(problems, name, ok(data[col]) < 0, col, data[col], "must not be negative")
    _row_check(
        problems,
        name,
        ok(data["s_max_kva"]) <= 0,
        "s_max_kva",
        data["s_max_kva"],
        "must be positive",
    )
    for col in ("eta_charge", "eta_discharge"):
        _row_check(
            problems,
            name,
            (data[col] <= 0) | (data[col] > 1),
            col,
            data[col],
            "is outside the allowed (0, 1]",
        )
    for col in (
        "soc_arrival_frac",
        "soc_target_frac",
        "soc_min_frac",
        "soc_max_frac",
        "soc_reserve_frac",
    ):
        v = ok(data[col])
        _row_check(
            problems, name, (v < 0) | (v > 1), col, data[col], "is outside the allowed [0, 1]"
        )
    _row_check(
        problems,
        name,
        data["soc_min_frac"] > data["soc_max_frac"],
        "soc_min_frac",
        data["soc_min_frac"],
        "is above soc_max_frac",
    )
    check_problems(problems, InputDataError, f"{name}: invalid fleet table")
    return data


def _phase_column(problems: list[str], name: str, raw: pd.Series) -> np.ndarray:
    """Connection codes of the ``phase`` column; every invalid row reported."""
    codes = {p.value: p.code for p in PHASES}
    text = raw.astype("string").str.strip().str.lower()
    code = text.map(codes).to_numpy(dtype=float, na_value=np.nan)
    allowed = ", ".join(codes)
    missing = raw.isna().to_numpy()
    _row_check_text(problems, name, missing, "phase", raw.to_numpy(), "is missing")
    _row_check_text(
        problems,
        name,
        np.isnan(code) & ~missing,
        "phase",
        raw.to_numpy(),
        f"is not one of {allowed}",
    )
    return np.nan_to_num(code, nan=0).astype(np.int64)


def _bus_name_column(
    problems: list[str], name: str, raw: pd.Series, bus_names: Sequence[str]
) -> np.ndarray:
    """Positions in ``bus_names`` of the bus names of the ``bus`` column (float, NaN unknown)."""
    position = {str(b).lower(): i for i, b in enumerate(bus_names)}
    # a column of numbers is read as numbers: 671 and 671.0 both name bus "671"
    text = raw.map(lambda v: f"{v:g}" if isinstance(v, float) else str(v)).str.strip()
    index = text.str.lower().map(position).to_numpy(dtype=float, na_value=np.nan)
    shown = ", ".join(list(bus_names)[:8]) + (", ..." if len(bus_names) > 8 else "")
    _row_check_text(
        problems,
        name,
        np.isnan(index),
        "bus",
        text.to_numpy(dtype=object),
        f"is not a bus of the feeder ({shown})",
    )
    return index


def _row_check_text(problems, name, mask, column, values, what, limit: int = 5) -> None:
    bad = np.flatnonzero(mask)
    for i in bad[:limit]:
        v = values[i]
        shown = f"{v:g}" if isinstance(v, float | np.floating) else repr(v)
        problems.append(f"{name}: row {i + 1}: {column} ({shown}) {what}")
    if bad.size > limit:
        problems.append(f"{name}: {column}: {bad.size - limit} more rows with the same problem")


__all__ = [
    "TABLE_COLUMNS_OPTIONAL",
    "TABLE_COLUMNS_REQUIRED",
    "fleet_table_arguments",
    "read_fleet_table",
]
