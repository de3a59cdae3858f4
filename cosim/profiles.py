"""Reading time-series profiles (CSV or Parquet, ``mosaik-csv`` compatible) into integer steps.

Used by the scenario validation (every profile is read and checked before a run starts) and by
the simulators that follow a profile (:class:`cosim.simulators.ProfileSim`, the feeder's load
profile).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from grids.timeseries import read_time_series


def read_profile(
    path: str | Path,
    *,
    start: str | None = None,
    time_resolution: float = 1.0,
    allow_empty: bool = False,
    required: tuple[str, ...] = (),
) -> tuple[np.ndarray, Any]:
    """Read a CSV/Parquet time series into ``(steps, frame)`` for a simulator.

    The file is read by the project's one time-series reader
    (:func:`grids.timeseries.read_time_series`: its dialect, its checks, every problem at
    once). ``start`` is the scenario's start (default: the first timestamp); ``steps`` are the
    integer mosaik steps of each row. With ``allow_empty``, empty cells are NaN ("no value",
    e.g. no set-point).

    Parameters
    ----------
    path : str or path
        The profile file.
    start : str, optional, keyword-only
        ISO timestamp of the scenario's start.
    time_resolution : float, keyword-only
        Seconds per mosaik step.
    allow_empty : bool, keyword-only
        Accept empty cells (NaN).
    required : tuple of str, keyword-only
        Value columns that must be present.

    Returns
    -------
    steps : numpy.ndarray of int64
        Mosaik step of each row.
    frame : pandas.DataFrame
        The value columns.

    Raises
    ------
    InputDataError
        Listing every problem with file, row and column.
    """
    series = read_time_series(path, required=required, start=start, allow_empty=allow_empty)
    return series.steps(time_resolution_s=time_resolution), series.frame()
