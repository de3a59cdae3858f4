"""Reading time-series profiles (CSV or Parquet, ``mosaik-csv`` compatible) into integer steps.

Used by the scenario validation (every profile is read and checked before a run starts) and by
the simulators that follow a profile (:class:`cosim.simulators.ProfileSim`, the feeder's load
profile).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from grids.errors import InputDataError


def read_profile(
    path: str | Path,
    *,
    start: str | None = None,
    time_resolution: float = 1.0,
    allow_empty: bool = False,
) -> tuple[np.ndarray, Any]:
    """Read a CSV/Parquet time series into ``(steps, frame)``.

    The first column (or a column named ``time``/``timestamp``/``t_s``) holds timezone-aware
    ISO timestamps (naive ones are taken as UTC) or, for ``t_s``, seconds since the start. A
    ``mosaik-csv`` file (first line: the model name) is accepted. ``start`` is the scenario's
    start (default: the first timestamp). ``steps`` are integer mosaik steps of each row. With
    ``allow_empty``, empty cells are NaN ("no value", e.g. no set-point); otherwise every value
    must be a finite number.

    Raises
    ------
    InputDataError
        Naming the file and row of the first bad value (unparseable time, non-numeric or NaN
        value, times not increasing).
    """
    import pandas as pd

    p = Path(path)
    name = p.name
    if not p.exists():
        raise InputDataError(f"{name}: profile file does not exist")
    try:
        if p.suffix.lower() == ".parquet":
            frame = pd.read_parquet(p)
            header_rows = 0
        else:
            with p.open(encoding="utf-8") as handle:
                first = handle.readline().strip()
            header_rows = 1 if first and "," not in first else 0  # mosaik-csv model-name line
            frame = pd.read_csv(p, skiprows=header_rows)
    except (ValueError, OSError, pd.errors.ParserError) as error:
        raise InputDataError(f"{name}: not a readable profile: {error}") from None
    frame.columns = [str(c).split("#")[0].strip() for c in frame.columns]
    if frame.shape[1] < 2 or len(frame) == 0:
        raise InputDataError(f"{name}: expected a time column and at least one value column")
    tcol = next((c for c in ("t_s", "time", "timestamp") if c in frame.columns), frame.columns[0])
    row0 = 2 + header_rows  # file line of the first data row (1-based, after the header)
    if tcol == "t_s":
        seconds = pd.to_numeric(frame[tcol], errors="coerce").to_numpy(dtype=float)
        bad = np.flatnonzero(~np.isfinite(seconds))
        if bad.size:
            raise InputDataError(f"{name}: row {bad[0] + row0}: t_s is not a number")
    else:
        stamps = pd.to_datetime(frame[tcol], errors="coerce", utc=True, format="mixed")
        bad = np.flatnonzero(stamps.isna().to_numpy())
        if bad.size:
            raise InputDataError(
                f"{name}: row {bad[0] + row0}: {tcol} {frame[tcol].iloc[bad[0]]!r} is not a "
                "timestamp"
            )
        t0 = stamps.iloc[0] if start is None else pd.Timestamp(start)
        if t0.tzinfo is None:
            t0 = t0.tz_localize("UTC")
        seconds = (stamps - t0).dt.total_seconds().to_numpy()
    if np.any(np.diff(seconds) <= 0):
        i = int(np.flatnonzero(np.diff(seconds) <= 0)[0]) + 1
        raise InputDataError(f"{name}: row {i + row0}: times are not strictly increasing")
    values = frame.drop(columns=[tcol])
    for col in values.columns:
        numeric = pd.to_numeric(values[col], errors="coerce")
        finite = np.isfinite(numeric.to_numpy(dtype=float))
        if allow_empty:
            finite |= values[col].isna().to_numpy()  # empty cells only, not bad text
        bad = np.flatnonzero(~finite)
        if bad.size:
            raise InputDataError(
                f"{name}: row {bad[0] + row0}: {col} is {values[col].iloc[bad[0]]} "
                "(not a finite number)"
            )
        values[col] = numeric.astype(float)
    steps = np.round(seconds / time_resolution).astype(np.int64)
    return steps, values.reset_index(drop=True)
