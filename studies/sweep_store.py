"""Sweep results store: ``results.parquet`` (rewritten atomically) plus an append-only journal.

What is on disk is never lost: completed rows go to the journal at once (one flushed JSON
line each), the Parquet file is only ever replaced by a complete new one (temp file +
``os.replace``), the journal is emptied only after that replacement, and a store that cannot
read the existing results refuses to write over them.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from grids.errors import ScenarioError, SimulationError

# pandas (~0.3 s) is imported where a results table is built: a sweep's workers append JSON
# lines and do not need it.

RESULTS_FILE = "results.parquet"
JOURNAL_FILE = "results.journal.jsonl"
SPEC_FILE = "sweep.json"
FIXED_COLUMNS = ("run_id", "status", "error", "wall_s")
STATUS_OK = "ok"
STATUS_FAILED = "failed"


# --------------------------------------------------------------------------------------------
# Results store
# --------------------------------------------------------------------------------------------
class ResultsStore:
    """Rows by run id, persisted as ``results.parquet`` (atomic) plus an append-only journal.

    The journal gets every completed row at once (one JSON line, flushed), so a kill loses no
    completed run; the Parquet file is rewritten atomically (temp file + ``os.replace``) after
    a completed run once ``min_interval_s`` (default 5 s) has passed since the last write and
    at least 50 times the last write's duration (which keeps the parent's share of the CPU,
    which the workers need, below ~2 %), and at the end.
    :meth:`load` merges both (the journal wins), so nothing is duplicated. A store that was
    not loaded loads what is on disk before its first write (its own rows win), so no caller
    can replace earlier results with a shorter table; a write that fails (disk full) leaves
    the earlier file and the journal as they were.
    """

    def __init__(
        self, out_dir: str | Path, *, columns: Sequence[str] = (), min_interval_s: float = 5.0
    ) -> None:
        self.out_dir = Path(out_dir)
        self.columns = list(dict.fromkeys([*FIXED_COLUMNS, *columns]))
        self.rows: dict[str, dict[str, Any]] = {}
        self._last_write_end = 0.0
        self._last_write_s = 0.0
        self._dirty = False
        self._loaded = False
        self.min_interval_s = min_interval_s

    @property
    def results_path(self) -> Path:
        return self.out_dir / RESULTS_FILE

    @property
    def journal_path(self) -> Path:
        return self.out_dir / JOURNAL_FILE

    def load(self) -> None:
        """Read the rows on disk (Parquet, then the journal on top); rows added before win."""
        import pandas as pd

        own = self.rows
        self.rows = {}
        self._loaded = True

        if self.results_path.is_file():
            try:
                frame = pd.read_parquet(self.results_path)
            except Exception as error:
                raise SimulationError(f"{self.results_path}: cannot be read ({error})") from None
            for record in frame.to_dict("records"):
                self.rows[str(record["run_id"])] = {
                    k: (None if _is_nan(v) else v) for k, v in record.items()
                }
            for column in frame.columns:
                if column not in self.columns:
                    self.columns.append(column)
        if self.journal_path.is_file():
            with self.journal_path.open(encoding="utf-8") as handle:
                for line in handle:
                    try:
                        record = json.loads(line)
                    except json.JSONDecodeError:
                        continue  # a line cut by a kill mid-write: that run was not completed
                    if not isinstance(record, dict) or "run_id" not in record:
                        continue  # not a row of ours
                    self.rows[str(record["run_id"])] = record
                    self._dirty = True
        if own:
            self.rows.update(own)
            self._dirty = True

    def _ensure_loaded(self) -> None:
        if not self._loaded and (self.results_path.is_file() or self.journal_path.is_file()):
            self.load()
        self._loaded = True

    def add(self, row: Mapping[str, Any]) -> None:
        """Record one completed row (journal at once, Parquet from time to time)."""
        self._ensure_loaded()
        self.out_dir.mkdir(parents=True, exist_ok=True)
        with self.journal_path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(dict(row), default=str) + "\n")
            handle.flush()
        self.rows[str(row["run_id"])] = dict(row)
        self._dirty = True
        since_s = time.perf_counter() - self._last_write_end
        if since_s >= max(50.0 * self._last_write_s, self.min_interval_s):
            self.write()

    def frame(self, order: Sequence[str] | None = None):
        """The rows as a table (``order``: run ids first in that order)."""
        import pandas as pd

        ids = list(self.rows)
        if order is not None:
            rank = {rid: i for i, rid in enumerate(order)}
            ids.sort(key=lambda rid: rank.get(rid, len(rank)))
        records = [self.rows[rid] for rid in ids]
        frame = pd.DataFrame.from_records(records, columns=self.columns) if records else None
        if frame is None:
            frame = pd.DataFrame({c: pd.Series(dtype=object) for c in self.columns})
        for column in frame.columns:
            if column in ("run_id", "status", "error"):
                frame[column] = frame[column].astype(object)
            elif column == "wall_s":
                frame[column] = pd.to_numeric(frame[column], errors="coerce")
            else:
                frame[column] = _tidy_column(frame[column])
        return frame

    def write(self, order: Sequence[str] | None = None) -> None:
        """Replace ``results.parquet`` atomically with every row, then empty the journal."""
        self._ensure_loaded()
        if not self._dirty and self.results_path.is_file():
            return
        start = time.perf_counter()
        self.out_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.results_path.with_name(f".{RESULTS_FILE}.{os.getpid()}.tmp")
        try:
            self.frame(order).to_parquet(tmp, index=False)
            os.replace(tmp, self.results_path)
        except BaseException:
            tmp.unlink(missing_ok=True)  # the earlier file and the journal stay as they were
            raise
        # every journal row is now in the Parquet file
        with self.journal_path.open("w", encoding="utf-8"):
            pass
        self._dirty = False
        self._last_write_end = time.perf_counter()
        self._last_write_s = self._last_write_end - start


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _tidy_column(series):
    """Numbers stay numbers; mixed or nested values become strings (Parquet needs one type)."""
    import pandas as pd

    values = [v for v in series if v is not None and not _is_nan(v)]
    if all(isinstance(v, bool | np.bool_) for v in values) and values:
        return series.astype(object)
    complete = len(values) == len(series)
    if complete and values and all(isinstance(v, int | np.integer) for v in values):
        return series.astype("int64")  # e.g. a swept vehicle count stays an integer
    if all(isinstance(v, int | float | np.integer | np.floating) for v in values):
        return pd.to_numeric(series, errors="coerce").astype(float)
    if all(isinstance(v, str) for v in values):
        return series.astype(object)
    return series.map(lambda v: None if v is None else json.dumps(v, default=str)).astype(object)


def read_results(out_dir: str | Path):
    """The results table of a sweep directory (Parquet merged with the journal)."""
    store = ResultsStore(out_dir)
    if not store.results_path.is_file() and not store.journal_path.is_file():
        raise ScenarioError(f"{out_dir}: no {RESULTS_FILE} (not a sweep output directory)")
    store.load()
    return store.frame()


def check_same_sweep(spec: Any, out: Path) -> None:
    """Refuse an ``out`` holding another sweep's results; record this sweep's description."""
    path = out / SPEC_FILE
    current = spec.to_json()
    if path.is_file():
        try:
            previous = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            previous = {}
        if previous.get("fingerprint") not in (None, current["fingerprint"]):
            raise ScenarioError(
                f"{out}: holds the results of a different sweep (study, base scenario or "
                "metrics changed); use another --out directory"
            )
    tmp = path.with_name(f".{SPEC_FILE}.tmp")
    tmp.write_text(json.dumps(current, indent=2, default=str), encoding="utf-8")
    os.replace(tmp, path)


_check_same_sweep = check_same_sweep


def read_spec(out_dir: str | Path) -> dict[str, Any]:
    """The ``sweep.json`` description written next to the results."""
    path = Path(out_dir) / SPEC_FILE
    if not path.is_file():
        raise ScenarioError(f"{out_dir}: no {SPEC_FILE} (not a sweep output directory)")
    return json.loads(path.read_text(encoding="utf-8"))
