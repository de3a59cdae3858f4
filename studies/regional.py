"""Regional runs: one study per feeder over many feeders, locally or on Dask, resumable.

A utility's question -- how much can each of its feeders take, and where does each break
first -- is one study per feeder. :func:`run_regional` runs it over a list of feeders (every
SimBench LV grid of a scenario, a folder of pandapower JSON nets, embedded feeders) the way a
sweep runs its runs (:func:`studies.sweep_run.run_tasks`: this process, forked local workers or
a Dask scheduler) and keeps each finished feeder in a results store
(:class:`studies.sweep_store.ResultsStore` under ``DIR/feeders/``: a journal line per feeder
at once, an atomic Parquet file), so an interrupted run resumes where it stopped and a feeder
that fails is recorded with its error without stopping the others.

Outputs in ``DIR``: ``results.parquet`` and ``results.csv`` (one row per feeder x bus),
``feeders.csv`` (one row per feeder: status, error, wall time, summary), ``regional.json`` (the
options, checked on resume) and the summary report of :mod:`studies.regional_report`.

The per-feeder studies (:class:`RegionalStudy`):

* ``hosting-capacity`` -- the snapshot study of :func:`studies.hosting_capacity.
  run_hosting_capacity_study` on the feeder as loaded, or on a SimBench study case
  (``study_case = "lPV"``: low load and high PV, the export worst case; ``"hL"`` high load);
* ``time-series-hosting-capacity`` -- the largest addition that holds at every step (or a
  percentile of steps) of the feeder's year-long profiles (SimBench feeders), by
  ``studies.hosting_capacity_timeseries.time_series_hosting_capacity``.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np

from grids.errors import FeederError, ScenarioError, check_problems
from grids.feeders import feeder_names
from grids.simbench import (
    SIMBENCH_PREFIX,
    StudyCase,
    check_simbench_code,
    is_simbench_name,
    simbench_codes,
)
from studies.hosting_capacity_types import Method, Mode
from studies.sweep_spec import progress_bar
from studies.sweep_store import STATUS_FAILED, STATUS_OK, ResultsStore

OPTIONS_FILE = "regional.json"
STORE_DIR = "feeders"
RESULTS_PARQUET = "results.parquet"
RESULTS_CSV = "results.csv"
FEEDERS_CSV = "feeders.csv"

#: Columns of the per-feeder x bus results table (a study may add its own after these).
RESULT_COLUMNS = ("feeder", "bus", "hosting_capacity_mw", "binding", "element")

_GLOB_CHARACTERS = re.compile(r"[*?\[]")


class RegionalStudy(Enum):
    """The study run on every feeder of a regional run."""

    HOSTING_CAPACITY = "hosting-capacity"
    TIME_SERIES_HOSTING_CAPACITY = "time-series-hosting-capacity"


@dataclass(frozen=True)
class RegionalOptions:
    """What is run on every feeder (the same for all; kept in ``regional.json``).

    Attributes
    ----------
    study : RegionalStudy
        The per-feeder study.
    mode : Mode
        ``export`` (V2G/DER injection) or ``import`` (EV charging).
    method : Method
        Snapshot study: ``screen``, ``ac`` or ``screen+ac``.
    study_case : StudyCase or None
        Snapshot study on SimBench feeders: the SimBench study case to load (None: the net's
        own values). Other feeders are studied as loaded.
    start : str or None
        Time-series study: first step (ISO 8601; None: the start of the profiles).
    duration_s : float or None
        Time-series study: window length [s] (None: to the end of the profiles).
    percentile : float
        Time-series study: share of steps that must hold [%] (100: every step).
    """

    study: RegionalStudy = RegionalStudy.HOSTING_CAPACITY
    mode: Mode = Mode.EXPORT
    method: Method = Method.SCREEN_AC
    study_case: StudyCase | None = None
    start: str | None = None
    duration_s: float | None = None
    percentile: float = 100.0

    def __post_init__(self) -> None:
        problems = []
        for name, cls in (
            ("study", RegionalStudy),
            ("mode", Mode),
            ("method", Method),
            ("study_case", StudyCase),
        ):
            value = getattr(self, name)
            if value is None and name == "study_case":
                continue
            try:
                object.__setattr__(self, name, cls(value))
            except ValueError:
                choices = ", ".join(str(c.value) for c in cls)
                problems.append(f"{name}: {value!r} (expected one of {choices})")
        if self.duration_s is not None and not (
            isinstance(self.duration_s, int | float) and 0 < self.duration_s < 1e9
        ):
            problems.append(f"duration_s: {self.duration_s!r} (expected a number > 0)")
        if not (isinstance(self.percentile, int | float) and 0 < self.percentile <= 100):
            problems.append(f"percentile: {self.percentile!r} (expected 0 < percentile <= 100)")
        time_series = self.study is RegionalStudy.TIME_SERIES_HOSTING_CAPACITY
        if not time_series and (
            self.start is not None or self.duration_s is not None or self.percentile != 100.0
        ):
            problems.append("start/duration/percentile: only for the time-series study")
        if time_series and self.study_case is not None:
            problems.append("study_case: only for the snapshot study (time series use profiles)")
        check_problems(problems, ScenarioError, "invalid regional options")

    def to_json(self) -> dict[str, Any]:
        """Plain JSON values (enums as their values).

        Returns
        -------
        dict
        """
        return {k: (v.value if isinstance(v, Enum) else v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class RegionalSummary:
    """What a call of :func:`run_regional` did."""

    n_feeders: int
    n_skipped: int
    n_done: int
    n_failed: int
    n_rows: int
    wall_s: float
    out_dir: Path
    results_path: Path
    report_path: Path | None


# --------------------------------------------------------------------------------------------
# Which feeders
# --------------------------------------------------------------------------------------------
def resolve_feeders(names: Sequence[str] = (), *, feeders_dir: str | Path | None = None) -> list:
    """The feeders of a regional run, in order, without duplicates.

    Parameters
    ----------
    names : sequence of str
        Each an embedded feeder name, a pandapower JSON path, ``simbench:<code>`` or a
        SimBench pattern ``simbench:<glob>`` (e.g. ``simbench:1-LV-*--1-sw``: every LV grid of
        scenario 1 with switches).
    feeders_dir : path or None, keyword-only
        A folder whose ``.json`` files (pandapower nets) and ``.dss`` files are feeders
        (sorted by name; ``.dss`` feeders are studied on the three-phase engine).

    Returns
    -------
    list of str
        Feeder names and paths.

    Raises
    ------
    ScenarioError
        No feeder at all, a pattern matching no SimBench code, an unknown name (all listed).
    """
    problems: list[str] = []
    feeders: list[str] = []
    for name in names:
        name = str(name).strip()
        if is_simbench_name(name) and _GLOB_CHARACTERS.search(name):
            try:
                matched = simbench_codes(pattern=name)
            except FeederError as error:
                problems.append(str(error))
                continue
            if not matched:
                problems.append(f"--feeders {name}: the pattern matches no SimBench grid code")
            feeders += [SIMBENCH_PREFIX + code for code in matched]
        elif is_simbench_name(name):
            try:
                feeders.append(SIMBENCH_PREFIX + check_simbench_code(name))
            except FeederError as error:
                problems.append(str(error))
        elif name in feeder_names() or Path(name).suffix.lower() in {".json", ".dss"}:
            if name not in feeder_names() and not Path(name).is_file():
                problems.append(f"--feeders {name}: no such file")
            feeders.append(name)
        else:
            problems.append(
                f"--feeders {name!r}: not an embedded feeder ({', '.join(feeder_names())}), "
                "simbench:<code or pattern>, or a .json/.dss file"
            )
    if feeders_dir is not None:
        folder = Path(feeders_dir)
        if not folder.is_dir():
            problems.append(f"--feeders-dir {folder}: not a directory")
        else:
            files = sorted(
                p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in {".json", ".dss"}
            )
            if not files:
                problems.append(f"--feeders-dir {folder}: holds no .json or .dss feeder file")
            feeders += [str(p) for p in files]
    if not feeders and not problems:
        problems.append("no feeders: give --feeders and/or --feeders-dir")
    check_problems(problems, ScenarioError, "invalid regional feeders")
    return list(dict.fromkeys(feeders))


# --------------------------------------------------------------------------------------------
# One feeder (executed in a worker)
# --------------------------------------------------------------------------------------------
def _load_net(feeder: str, options: RegionalOptions):
    # lazy: study dispatch (the workers import what their study needs)
    from grids.feeders import load_feeder

    net = load_feeder(feeder)
    if options.study_case is not None and is_simbench_name(feeder):
        # lazy: study dispatch (simbench is an optional extra)
        from grids.simbench import apply_study_case

        apply_study_case(net, options.study_case)
    net.name = feeder
    return net


def _three_phase_rows(feeder: str, options: RegionalOptions) -> list[dict[str, Any]]:
    """Snapshot study of an OpenDSS feeder on the three-phase engine: a balanced three-phase
    unit (a third per phase) at every bus, per-phase limits and VUF (``phase`` column)."""
    # lazy: study dispatch (opendssdirect is an optional extra)
    from grids.feeder3ph import ThreePhaseFeederModel
    from studies.hosting_capacity_3ph import three_phase_hosting_capacity

    result = three_phase_hosting_capacity(
        ThreePhaseFeederModel.from_name(feeder),
        phase="abc",
        mode=options.mode.value,
        method=options.method.value,
    )
    return [
        {
            "feeder": feeder,
            "bus": str(row["bus"]),
            "hosting_capacity_mw": float(row["hosting_capacity_mw"]),
            "binding": str(row["binding"]),
            "element": str(row["where"]),
            "phase": str(row["phase"]),
        }
        for row in result.rows
    ]


def _snapshot_rows(feeder: str, options: RegionalOptions) -> list[dict[str, Any]]:
    # lazy: study dispatch
    from studies.hosting_capacity import run_hosting_capacity_study

    if Path(feeder).suffix.lower() == ".dss":
        if options.study_case is not None:
            raise FeederError(f"{feeder}: a SimBench study case applies to SimBench feeders only")
        return _three_phase_rows(feeder, options)
    net = _load_net(feeder, options)
    result = run_hosting_capacity_study(net, mode=options.mode, method=options.method)
    table = result.table
    return [
        {
            "feeder": feeder,
            "bus": int(row.bus),
            "hosting_capacity_mw": float(row.hosting_capacity_mw),
            "binding": str(row.binding),
            "element": str(row.where),
        }
        for row in table.itertuples(index=False)
    ]


def _three_phase_time_series_rows(feeder: str, options: RegionalOptions) -> list[dict[str, Any]]:
    """Time-series study of an OpenDSS feeder over its load shapes on the three-phase engine:
    a balanced three-phase unit per bus, per-phase limits and VUF (``phase`` column)."""
    # lazy: study dispatch (opendssdirect is an optional extra)
    from grids.feeder3ph import ThreePhaseFeederModel
    from grids.opendss_loadshapes import read_load_shapes
    from studies.hosting_capacity_ts3ph import three_phase_time_series_hosting_capacity

    model = ThreePhaseFeederModel.from_name(feeder)
    shapes = read_load_shapes(model)
    if options.start is not None or options.duration_s is not None:
        shapes = shapes.window(options.start, options.duration_s)
    result = three_phase_time_series_hosting_capacity(
        model, shapes, phase="abc", mode=options.mode, percentile=options.percentile
    )
    keys = ("first_violation_time", "snapshot_hosting_capacity_mw")
    return [
        {
            "feeder": feeder,
            "bus": str(row["bus"]),
            "hosting_capacity_mw": float(row["hosting_capacity_mw"]),
            "binding": str(row["binding"]),
            "element": str(row["element"]),
            "phase": str(row["phase"]),
            **{k: row[k] for k in keys if k in row},
        }
        for row in result.rows
    ]


def _time_series_rows(feeder: str, options: RegionalOptions) -> list[dict[str, Any]]:
    # lazy: study dispatch
    from studies.hosting_capacity_timeseries import (
        feeder_with_profiles,
        time_series_hosting_capacity,
    )

    if Path(feeder).suffix.lower() == ".dss":
        return _three_phase_time_series_rows(feeder, options)

    model, profiles = feeder_with_profiles(
        feeder, start=options.start, duration_s=options.duration_s
    )
    rows = time_series_hosting_capacity(
        model, profiles, mode=options.mode, percentile=options.percentile
    )
    out = []
    for row in rows:
        item = {
            "feeder": feeder,
            "bus": int(row["bus"]),
            "hosting_capacity_mw": float(row["hosting_capacity_mw"]),
            "binding": str(row.get("binding")),
            "element": str(row.get("element")),
        }
        for key in ("first_violation_time", "snapshot_hosting_capacity_mw"):
            if key in row:
                item[key] = row[key]
        out.append(item)
    return out


STUDY_RUNNERS: dict[RegionalStudy, Callable[[str, RegionalOptions], list[dict[str, Any]]]] = {
    RegionalStudy.HOSTING_CAPACITY: _snapshot_rows,
    RegionalStudy.TIME_SERIES_HOSTING_CAPACITY: _time_series_rows,
}


def run_feeder(feeder: str, options: dict[str, Any]) -> dict[str, Any]:
    """Run the regional study on one feeder; never raises for a failed feeder.

    Parameters
    ----------
    feeder : str
        Feeder name or path.
    options : dict
        :meth:`RegionalOptions.to_json` (plain values: pickled to a worker).

    Returns
    -------
    dict
        The feeder's store row: ``run_id`` (the feeder), ``status`` (``ok``/``failed``),
        ``error`` (``Type: message``), ``wall_s`` [s], ``n_bus``, ``hc_min_mw``,
        ``hc_median_mw`` [MW], ``binding`` (most frequent) and ``rows`` (JSON of the per-bus
        rows).
    """
    row: dict[str, Any] = {
        "run_id": feeder,
        "status": STATUS_OK,
        "error": None,
        "wall_s": 0.0,
        "n_bus": 0,
        "hc_min_mw": None,
        "hc_median_mw": None,
        "binding": None,
        "rows": "[]",
    }
    start = time.perf_counter()
    try:
        parsed = RegionalOptions(**options)
        rows = STUDY_RUNNERS[parsed.study](feeder, parsed)
        hc = np.array([r["hosting_capacity_mw"] for r in rows], dtype=float)
        bindings = [r["binding"] for r in rows]
        row.update(
            n_bus=len(rows),
            hc_min_mw=float(np.min(hc)) if len(hc) else None,
            hc_median_mw=float(np.median(hc)) if len(hc) else None,
            binding=max(set(bindings), key=bindings.count) if bindings else None,
            rows=json.dumps(rows, default=str),
        )
    except Exception as error:  # a failed feeder never stops the regional run
        row["status"] = STATUS_FAILED
        row["error"] = f"{type(error).__name__}: {error}"
    row["wall_s"] = time.perf_counter() - start
    return row


# --------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------
def _check_options(out: Path, options: RegionalOptions) -> None:
    path = out / OPTIONS_FILE
    doc = options.to_json()
    if path.is_file():
        try:
            stored = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            raise ScenarioError(f"{path}: cannot be read ({error})") from None
        if stored != doc:
            changed = sorted(k for k in set(doc) | set(stored) if doc.get(k) != stored.get(k))
            raise ScenarioError(
                f"--out {out}: holds a regional run with other options ({', '.join(changed)}: "
                f"{ {k: stored.get(k) for k in changed} }); use a new directory"
            )
        return
    tmp = path.with_name(f".{OPTIONS_FILE}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(doc, indent=2, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


def _preload(feeders: Sequence[str]) -> None:
    """Import the studies in this process before workers are forked (they inherit them)."""
    # lazy: study dispatch (module note)
    import grids.feeder_model  # noqa: F401
    import studies.hosting_capacity  # noqa: F401

    if any(is_simbench_name(f) for f in feeders):
        simbench_codes()  # imports simbench (and pandapower) once, here


def results_table(store_frame, feeders: Sequence[str]):
    """The per-feeder x bus table of the finished feeders of ``feeders``.

    Parameters
    ----------
    store_frame : pandas.DataFrame
        The feeder store's table (one row per feeder, ``rows`` as JSON).
    feeders : sequence of str
        The feeders of the run (their order is the table's).

    Returns
    -------
    pandas.DataFrame
        :data:`RESULT_COLUMNS` first, one row per feeder and bus.
    """
    import pandas as pd

    order = {f: k for k, f in enumerate(feeders)}
    items: list[dict[str, Any]] = []
    ok = store_frame[(store_frame["status"] == STATUS_OK) & store_frame["run_id"].isin(order)]
    for _, text in sorted(zip(ok["run_id"], ok["rows"], strict=True), key=lambda t: order[t[0]]):
        items += json.loads(text)
    frame = pd.DataFrame(items)
    if frame.empty:
        return pd.DataFrame(columns=list(RESULT_COLUMNS))
    if frame["bus"].map(type).nunique() > 1:  # OpenDSS bus names beside bus indices
        frame["bus"] = frame["bus"].astype(str)
    extra = [c for c in frame.columns if c not in RESULT_COLUMNS]
    return frame[[*RESULT_COLUMNS, *extra]]


def run_regional(
    feeders: Sequence[str],
    options: RegionalOptions,
    out_dir: str | Path,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    retry_failed: bool = False,
    progress: bool = True,
    report: bool = True,
) -> RegionalSummary:
    """Run ``options.study`` on every feeder not finished in ``out_dir`` yet, then tabulate.

    Parameters
    ----------
    feeders : sequence of str
        From :func:`resolve_feeders`.
    options : RegionalOptions
        The per-feeder study.
    out_dir : path
        Results directory; an existing one is resumed (same options only; more feeders may
        be added).
    workers : int or None, keyword-only
        Local worker processes (default: all cores; 1 runs in this process).
    scheduler : str or None, keyword-only
        Dask scheduler address; the feeders go there.
    retry_failed : bool, keyword-only
        Run again the feeders recorded as failed.
    progress : bool, keyword-only
        A progress bar on stderr.
    report : bool, keyword-only
        Write the summary report (:func:`studies.regional_report.write_regional_report`).

    Returns
    -------
    RegionalSummary

    Raises
    ------
    ScenarioError
        ``out_dir`` holds a run with other options, or is not a directory.
    KeyboardInterrupt
        After Ctrl-C, once the finished feeders are saved.
    """
    # lazy: study dispatch (module note)
    from studies.sweep_run import run_tasks

    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise ScenarioError(f"--out {out}: exists and is not a directory") from None
    _check_options(out, options)
    store = ResultsStore(
        out / STORE_DIR,
        columns=["n_bus", "hc_min_mw", "hc_median_mw", "binding", "rows"],
    )
    (out / STORE_DIR).mkdir(exist_ok=True)
    store.load()
    todo = [
        f
        for f in feeders
        if f not in store.rows or (retry_failed and store.rows[f].get("status") == STATUS_FAILED)
    ]
    n_skipped = len(feeders) - len(todo)
    counts = {"done": 0, "failed": 0}
    bar = progress_bar(len(todo), progress, desc="regional")

    def record(row: dict[str, Any]) -> None:
        store.add(row)
        counts["done"] += 1
        counts["failed"] += row["status"] != STATUS_OK
        bar.set_postfix(done=counts["done"], failed=counts["failed"], refresh=False)
        bar.update(1)

    doc = options.to_json()
    start = time.perf_counter()
    try:
        if todo and not scheduler and (workers or os.cpu_count() or 1) > 1:
            _preload(todo)
        run_tasks(
            run_feeder, [(f, doc) for f in todo], record, workers=workers, scheduler=scheduler
        )
    finally:
        bar.close()
        store.write(list(feeders))
    frame = store.frame(list(feeders))
    frame = frame[frame["run_id"].isin(set(feeders))]
    table = results_table(frame, feeders)
    results_path = out / RESULTS_PARQUET
    _write_atomic(table, results_path)
    table.to_csv(out / RESULTS_CSV, index=False)
    frame.drop(columns=["rows"]).rename(columns={"run_id": "feeder"}).to_csv(
        out / FEEDERS_CSV, index=False
    )
    report_path = None
    if report:
        # lazy: matplotlib is imported by the report only
        from studies.regional_report import write_regional_report

        report_path = write_regional_report(out, table, frame, options)
    return RegionalSummary(
        n_feeders=len(feeders),
        n_skipped=n_skipped,
        n_done=counts["done"],
        n_failed=int((frame["status"] != STATUS_OK).sum()),
        n_rows=len(table),
        wall_s=time.perf_counter() - start,
        out_dir=out,
        results_path=results_path,
        report_path=report_path,
    )


def _write_atomic(table, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    table.to_parquet(tmp, index=False)
    os.replace(tmp, path)
