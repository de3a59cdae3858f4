"""The one reader of time-series files (CSV and Parquet) for profiles of every kind.

Load and PV profiles, set-point profiles, feeder load multipliers and transformer thermal
profiles all arrive as a table with one time column and value columns. :func:`read_time_series`
reads them the same way everywhere (one dialect) and checks everything before a simulation
starts, listing every problem at once with the file, the row and the column.

The dialect
-----------
* CSV (UTF-8, an optional byte-order mark) or Parquet (``.parquet``/``.pq``). A ``mosaik-csv``
  file, whose first line is the model name (a line without a comma), is accepted.
* The time column is the first of ``t_s`` (seconds), ``time_min`` (minutes), ``time_h`` or
  ``t_h`` (hours), ``time`` or ``timestamp`` (ISO 8601 timestamps; naive ones are UTC);
  without any of those, the first column holds timestamps. Times increase strictly (no
  duplicates). Row ``i`` holds until row ``i + 1`` (zero-order hold).
* Value columns are numbers; NaN, infinite, empty and text cells are errors unless
  ``allow_empty`` (then an empty cell is "no value", NaN). Column names are stripped and
  anything after a ``#`` is dropped (a unit comment).
* Rows are numbered as lines of the file: the header is line 1 (2 with a mosaik-csv model
  line), so "row 3" is the third line an editor shows. Parquet rows count the same way
  (header = row 1).
* Files larger than ``max_bytes`` (default 256 MiB) and files that are not regular files
  (``/dev/zero``, a directory) are refused before reading.

Examples
--------
>>> import pathlib, tempfile
>>> from grids.timeseries import read_time_series
>>> path = pathlib.Path(tempfile.mkdtemp()) / "load.csv"
>>> _ = path.write_text("t_s,load_pu\\n0,0.8\\n900,1.1\\n", encoding="utf-8")
>>> series = read_time_series(path, required=("load_pu",))
>>> series.t_s.tolist(), series.column("load_pu").tolist()
([0.0, 900.0], [0.8, 1.1])
>>> series.steps(time_resolution_s=60.0).tolist()
[0, 15]
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from grids.errors import InputDataError, check_problems

# pandas (~0.3 s to import) is imported where a table is read or built: the scenario loader
# imports this module (through cosim.profiles) and stays free of pandas until a profile is read.

#: Numeric time columns and their unit in seconds, in order of precedence.
NUMERIC_TIME_COLUMNS: dict[str, float] = {
    "t_s": 1.0,
    "time_min": 60.0,
    "time_h": 3600.0,
    "t_h": 3600.0,
}
#: Timestamp time columns, in order of precedence (after the numeric ones).
TIMESTAMP_COLUMNS: tuple[str, ...] = ("time", "timestamp")
#: Default largest file accepted [bytes].
DEFAULT_MAX_BYTES = 256 * 2**20
#: Most problems listed per column (a wholly bad column would otherwise flood the message).
MAX_PROBLEMS_PER_COLUMN = 10

_PARQUET_SUFFIXES = (".parquet", ".pq")


@dataclass(frozen=True)
class TimeSeries:
    """A validated time series.

    Attributes
    ----------
    path : pathlib.Path
        The file read.
    time_column : str
        Name of the time column.
    t_s : numpy.ndarray (n_rows,)
        Time of each row [s] from the start (``start`` for timestamp files; the numeric
        column's own zero otherwise), strictly increasing.
    start : pandas.Timestamp or None
        Timestamp of ``t_s = 0`` for timestamp files (UTC), ``None`` for numeric time.
    values : dict of str to numpy.ndarray
        Value columns (float) in file order.
    """

    path: Path
    time_column: str
    t_s: np.ndarray
    start: Any
    values: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def columns(self) -> list[str]:
        """Names of the value columns, in file order."""
        return list(self.values)

    def column(self, name: str) -> np.ndarray:
        """One value column.

        Parameters
        ----------
        name : str
            Column name.

        Returns
        -------
        numpy.ndarray (n_rows,)

        Raises
        ------
        InputDataError
            No such column (the message lists the columns there are).
        """
        try:
            return self.values[name]
        except KeyError:
            raise InputDataError(
                f"{self.path.name}: column {name!r} is not in the file "
                f"(columns: {', '.join(self.values)})"
            ) from None

    def steps(self, *, time_resolution_s: float = 1.0) -> np.ndarray:
        """Row times as integer simulation steps ``round(t_s / time_resolution_s)``.

        Parameters
        ----------
        time_resolution_s : float, keyword-only
            Length of one step [s].

        Returns
        -------
        numpy.ndarray of int64
        """
        return np.round(self.t_s / float(time_resolution_s)).astype(np.int64)

    def frame(self):
        """The value columns as a table.

        Returns
        -------
        pandas.DataFrame
            One row per time, one column per value column.
        """
        import pandas as pd

        return pd.DataFrame(self.values)


def _read_bytes(path: Path, max_bytes: int) -> bytes:
    name = path.name
    if not path.exists():
        raise InputDataError(f"{name}: file does not exist ({path})")
    if not path.is_file():
        raise InputDataError(f"{name}: not a regular file ({path})")
    size = path.stat().st_size
    if size > max_bytes:
        raise InputDataError(
            f"{name}: {size / 2**20:.1f} MiB is larger than the limit of "
            f"{max_bytes / 2**20:.0f} MiB for a time-series file"
        )
    try:
        with path.open("rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as error:
        raise InputDataError(f"{name}: cannot be read ({error.strerror or error})") from None
    if len(data) > max_bytes:  # grew while reading, or a special file reporting size 0
        raise InputDataError(
            f"{name}: larger than the limit of {max_bytes / 2**20:.0f} MiB for a time-series file"
        )
    return data


def _decode(name: str, data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise InputDataError(
            f"{name}: line {line}: not UTF-8 text (byte 0x{data[error.start]:02x} at offset "
            f"{error.start}); save the file as UTF-8 CSV"
        ) from None


def _read_table(path: Path, max_bytes: int):
    """The raw table as strings, and the file line number of its first data row."""
    import pandas as pd

    name = path.name
    data = _read_bytes(path, max_bytes)
    if path.suffix.lower() in _PARQUET_SUFFIXES:
        try:
            frame = pd.read_parquet(io.BytesIO(data))
        except Exception as error:  # pyarrow raises many types for a broken file
            raise InputDataError(f"{name}: not a readable Parquet file ({error})") from None
        frame = frame.astype(object).where(frame.notna(), "nan").astype(str)
        return frame, 2
    text = _decode(name, data)
    if not text.strip():
        raise InputDataError(f"{name}: the file is empty")
    first = text.split("\n", 1)[0].strip()
    header_rows = 1 if first and "," not in first else 0  # mosaik-csv model-name line
    try:
        frame = pd.read_csv(
            io.StringIO(text),
            skiprows=header_rows,
            header=None,  # the header row is read as data: pandas would rename duplicates
            dtype=str,
            keep_default_na=False,
            skipinitialspace=True,
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as error:
        raise InputDataError(f"{name}: not a readable CSV file ({error})") from None
    names = [str(c) for c in frame.iloc[0]]
    frame = frame.iloc[1:].reset_index(drop=True)
    frame.columns = names
    return frame, 2 + header_rows


def _time_column(columns: Sequence[str]) -> str:
    for candidate in (*NUMERIC_TIME_COLUMNS, *TIMESTAMP_COLUMNS):
        if candidate in columns:
            return candidate
    return columns[0]


def _limited(problems: list[str], column_problems: list[str], column: str, name: str) -> None:
    problems.extend(column_problems[:MAX_PROBLEMS_PER_COLUMN])
    extra = len(column_problems) - MAX_PROBLEMS_PER_COLUMN
    if extra > 0:
        problems.append(f"{name}: {column}: {extra} more bad rows not listed")


def read_time_series(
    path: str | Path,
    *,
    required: Sequence[str] = (),
    start: str | None = None,
    allow_empty: bool = False,
    ranges: Mapping[str, tuple[float | None, float | None]] | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> TimeSeries:
    """Read and validate a time-series CSV or Parquet file (the one dialect of the project).

    Parameters
    ----------
    path : str or path
        The file.
    required : sequence of str, keyword-only
        Value columns that must be present.
    start : str, optional, keyword-only
        ISO timestamp of ``t_s = 0`` for timestamp files (default: the first row's time);
        naive timestamps are UTC. Ignored for numeric time columns.
    allow_empty : bool, keyword-only
        Empty cells are NaN ("no value", e.g. no set-point) instead of an error.
    ranges : mapping of str to (low, high), optional, keyword-only
        Inclusive bounds per value column (``None`` for an open side), e.g.
        ``{"load_pu": (0.0, None)}``.
    max_bytes : int, keyword-only
        Largest file accepted [bytes].

    Returns
    -------
    TimeSeries

    Raises
    ------
    InputDataError
        One error listing every problem, each naming the file, the row (line of the file) and
        the column: missing file or columns, not a regular file, too large, not UTF-8, no data
        rows, unreadable times, times not strictly increasing (duplicates included), values
        that are not finite numbers or are out of range.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> from grids.timeseries import read_time_series
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "bad.csv"
    >>> _ = path.write_text("t_s,load_pu\\n0,1\\n0,x\\n", encoding="utf-8")
    >>> read_time_series(path)
    Traceback (most recent call last):
    ...
    grids.errors.InputDataError: bad.csv: invalid time series (2 problems)
      - bad.csv: row 3: times are not strictly increasing (t_s 0 after 0)
      - bad.csv: row 3: load_pu is x (not a finite number)
    """
    import pandas as pd

    p = Path(path)
    name = p.name
    frame, row0 = _read_table(p, int(max_bytes))
    frame.columns = [str(c).split("#")[0].strip() for c in frame.columns]
    columns = list(frame.columns)
    problems: list[str] = []
    if len(columns) < 2:
        raise InputDataError(
            f"{name}: expected a time column and at least one value column "
            f"(found: {', '.join(columns) or 'none'})"
        )
    duplicated = sorted({c for c in columns if columns.count(c) > 1})
    if duplicated:
        problems.append(f"{name}: column(s) {', '.join(duplicated)} appear more than once")
    tcol = _time_column(columns)
    missing = [c for c in required if c not in columns or c == tcol]
    if missing:
        problems.append(
            f"{name}: missing column(s) {', '.join(missing)} (found: {', '.join(columns)})"
        )
    if len(frame) == 0:
        problems.append(f"{name}: no data rows")
    check_problems(problems, InputDataError, f"{name}: invalid time series")

    rows = np.arange(len(frame)) + row0
    raw_time = frame.iloc[:, columns.index(tcol)].astype(str).str.strip()
    t0 = None
    time_problems: list[str] = []
    if tcol in NUMERIC_TIME_COLUMNS:
        seconds = pd.to_numeric(raw_time, errors="coerce").to_numpy(float)
        bad = np.flatnonzero(~np.isfinite(seconds))
        time_problems += [
            f"{name}: row {rows[i]}: {tcol} {raw_time.iloc[i]!r} is not a number" for i in bad
        ]
        seconds = seconds * NUMERIC_TIME_COLUMNS[tcol]
    else:
        stamps = pd.to_datetime(raw_time, errors="coerce", utc=True, format="mixed")
        bad = np.flatnonzero(stamps.isna().to_numpy())
        time_problems += [
            f"{name}: row {rows[i]}: {tcol} {raw_time.iloc[i]!r} is not a timestamp" for i in bad
        ]
        valid = stamps.dropna()
        if start is not None:
            try:
                t0 = pd.Timestamp(start)
            except (ValueError, TypeError):
                raise InputDataError(f"{name}: start {start!r} is not an ISO timestamp") from None
        elif len(valid):
            t0 = valid.iloc[0]
        if t0 is not None and t0.tzinfo is None:
            t0 = t0.tz_localize("UTC")
        seconds = (
            (stamps - t0).dt.total_seconds().to_numpy(float)
            if t0 is not None
            else np.full(len(stamps), np.nan)
        )
    finite = np.isfinite(seconds)
    both = finite[1:] & finite[:-1]
    not_increasing = np.flatnonzero(both & (np.diff(seconds) <= 0)) + 1
    time_problems += [
        f"{name}: row {rows[i]}: times are not strictly increasing "
        f"({tcol} {raw_time.iloc[i]} after {raw_time.iloc[i - 1]})"
        if tcol in NUMERIC_TIME_COLUMNS
        else f"{name}: row {rows[i]}: times are not strictly increasing "
        f"({raw_time.iloc[i]} after {raw_time.iloc[i - 1]})"
        for i in not_increasing
    ]
    _limited(problems, time_problems, tcol, name)

    ranges = dict(ranges or {})
    values: dict[str, np.ndarray] = {}
    for position, col in enumerate(columns):
        if col == tcol or col in values:
            continue
        text = frame.iloc[:, position].astype(str).str.strip()
        numbers = pd.to_numeric(text, errors="coerce").to_numpy(float)
        empty = (text == "").to_numpy()
        ok = np.isfinite(numbers)
        if allow_empty:
            ok |= empty
            numbers = np.where(empty, np.nan, numbers)
        col_problems = [
            f"{name}: row {rows[i]}: {col} is {'empty' if empty[i] else text.iloc[i]} "
            "(not a finite number)"
            for i in np.flatnonzero(~ok)
        ]
        low, high = ranges.get(col, (None, None))
        finite_values = np.isfinite(numbers)
        if low is not None:
            for i in np.flatnonzero(finite_values & (numbers < low)):
                col_problems.append(
                    f"{name}: row {rows[i]}: {col} is {numbers[i]:g} (expected >= {low:g})"
                )
        if high is not None:
            for i in np.flatnonzero(finite_values & (numbers > high)):
                col_problems.append(
                    f"{name}: row {rows[i]}: {col} is {numbers[i]:g} (expected <= {high:g})"
                )
        _limited(problems, col_problems, col, name)
        values[col] = numbers
    check_problems(problems, InputDataError, f"{name}: invalid time series")
    return TimeSeries(path=p, time_column=tcol, t_s=seconds, start=t0, values=values)
