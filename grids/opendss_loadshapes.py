"""OpenDSS load shapes as per-load multipliers for the three-phase engine's time series.

:func:`read_load_shapes` compiles the feeder's OpenDSS files (in the reader's private engine,
:func:`grids.opendss.compile_dss`) and returns, for every load of a
:class:`grids.feeder3ph.ThreePhaseFeederModel` (in ``model.load_names`` order), the multiplier
of its kW and kvar at every step of a quasi-static run, so that
``model.solve(load_mult=shapes.p_mult[k])`` is the feeder at step ``k``.

Which shape a load follows is OpenDSS's own rule (Load.pas of OpenDSS / DSS C-API, the header
comment "IF you do not specify load shapes defaults are"; the reference guide's ``Yearly`` and
``Daily`` load properties):

* **yearly** runs (``Set Mode=Yearly``, the default here): the load's ``Yearly`` shape; a load
  with no yearly shape uses its ``Daily`` shape (repeated); a load with neither has multiplier 1
  (no variation);
* **daily** runs (``Set Mode=Daily``): the load's ``Daily`` shape; a load without one has
  multiplier 1 (a yearly shape is NOT used);
* a load with ``Status=Fixed`` ignores its shapes (multiplier 1).

A shape's multipliers are its ``PMult`` for kW and its ``QMult`` for kvar (``QMult`` defaults to
``PMult``). Step ``n`` (1-based) of an OpenDSS daily or yearly run is solved at hour
``n * stepsize`` and takes point ``round(hour / interval)`` of a fixed-interval shape (wrapping
around after ``npts``, LoadShape.pas ``GetMult``): with the step equal to the shape's interval,
row ``k`` of :attr:`LoadShapeMultipliers.p_mult` is point ``k + 1``, and a shape shorter than the
run repeats (a one-day shape in a yearly run repeats every day). Row ``k`` is labelled
``origin + k * interval``: the start of the interval the point covers (OpenDSS shapes carry no
date; the default origin is :data:`SHAPE_ORIGIN`).

Refused with a clear :class:`~grids.errors.FeederError` (never a silent flat year):

* a feeder where no load follows any shape (the message says what to add to the file);
* shapes of different intervals (no resampling: the message names the shapes and intervals);
* variable-interval shapes (``interval=0`` with ``hour=[...]``);
* ``UseActual=yes`` shapes (actual kW/kvar instead of multipliers): converted to multipliers
  of the load's kW/kvar when the load's base is not zero (``p_mult = PMult / kW``,
  ``q_mult = QMult / kvar``, ``QMult`` defaulting to ``PMult`` scaled to the load's power
  factor), refused otherwise;
* PV systems, storage and generators that follow a shape (the engine holds them at their
  snapshot output).

Examples
--------
>>> from grids.feeder3ph import ThreePhaseFeederModel
>>> from grids.opendss_loadshapes import read_load_shapes
>>> model = ThreePhaseFeederModel.from_name("european_lv")
>>> shapes = read_load_shapes(model)
>>> shapes.p_mult.shape, shapes.step_s
((1440, 55), 60.0)
>>> shapes.window("2000-01-01 17:00", 2 * 3600).n_steps
120
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import numpy as np
import pandas as pd

from grids.errors import FeederError, ScenarioError, check_problems
from grids.opendss import INJECTION_CLASSES, compile_dss

__all__ = [
    "SHAPE_ORIGIN",
    "LoadShapeMultipliers",
    "ShapeMode",
    "read_load_shapes",
]

#: Time label of the first point of a shape (OpenDSS load shapes carry no date).
SHAPE_ORIGIN = pd.Timestamp("2000-01-01 00:00")


class ShapeMode(Enum):
    """Which OpenDSS run the multipliers reproduce (``Set Mode=Yearly`` or ``Daily``)."""

    YEARLY = "yearly"
    DAILY = "daily"


@dataclass(frozen=True)
class LoadShapeMultipliers:
    """Per-load multipliers of kW and kvar over the steps of a quasi-static run.

    Attributes
    ----------
    time : pandas.DatetimeIndex (n_steps,)
        Start of the interval each row covers (uniform spacing ``step_s``).
    step_s : float
        Step length [s] (the shapes' interval).
    load_names : tuple of str
        Column order (the model's ``load_names``).
    p_mult, q_mult : numpy.ndarray (n_steps, n_load)
        Multipliers of each load's kW and kvar [-].
    shape_of_load : tuple of str
        The shape each load follows (``""``: none, multiplier 1).
    mode : ShapeMode
        The OpenDSS run reproduced.
    source : str
        The master file.
    """

    time: pd.DatetimeIndex
    step_s: float
    load_names: tuple[str, ...]
    p_mult: np.ndarray
    q_mult: np.ndarray
    shape_of_load: tuple[str, ...]
    mode: ShapeMode = ShapeMode.YEARLY
    source: str = field(default="")

    @property
    def n_steps(self) -> int:
        """Number of steps."""
        return len(self.time)

    @property
    def duration_s(self) -> float:
        """Covered duration ``n_steps * step_s`` [s]."""
        return self.n_steps * self.step_s

    def window(self, start: Any = None, duration_s: float | None = None) -> LoadShapeMultipliers:
        """The steps in ``[start, start + duration_s)``.

        Parameters
        ----------
        start : str, datetime or None
            First step (ISO 8601; default the first step).
        duration_s : float or None
            Length of the window [s] (default: to the end).

        Returns
        -------
        LoadShapeMultipliers
            A new object (arrays are views).

        Raises
        ------
        ScenarioError
            A start outside the shapes, a duration that is not positive, a window past the
            end or holding no step.
        """
        first = self.time[0]
        end = self.time[-1] + pd.Timedelta(seconds=self.step_s)
        problems = []
        t0 = first
        if start is not None:
            try:
                t0 = pd.Timestamp(start)
            except (TypeError, ValueError):
                t0 = None
            if t0 is None or t0 is pd.NaT:
                raise ScenarioError(
                    f"start: {start!r} is not a date/time (expected ISO 8601, e.g. "
                    f"{first.isoformat()})"
                )
            if t0.tzinfo is not None:
                problems.append(f"start: {t0} has a time zone; OpenDSS load shapes have none")
            elif not first <= t0 < end:
                problems.append(f"start: {t0} is outside the load shapes ({first} to {end})")
        t1 = end
        if duration_s is not None:
            ok = isinstance(duration_s, int | float) and not isinstance(duration_s, bool)
            if not (ok and math.isfinite(duration_s) and duration_s > 0):
                problems.append(f"duration_s: {duration_s!r} (expected a finite number > 0)")
            elif not problems:
                t1 = t0 + pd.Timedelta(seconds=float(duration_s))
                if t1 > end:
                    problems.append(
                        f"duration_s: {duration_s:g} s from {t0} runs past the end of the load "
                        f"shapes ({end}); at most {(end - t0).total_seconds():g} s"
                    )
        check_problems(problems, ScenarioError, "invalid load-shape window")
        keep = np.flatnonzero((self.time >= t0) & (self.time < t1))
        if keep.size == 0:
            raise ScenarioError(
                f"load-shape window {t0} + {duration_s} s holds no step (steps of "
                f"{self.step_s:g} s)"
            )
        rows = slice(int(keep[0]), int(keep[-1]) + 1)
        return LoadShapeMultipliers(
            time=self.time[rows],
            step_s=self.step_s,
            load_names=self.load_names,
            p_mult=self.p_mult[rows],
            q_mult=self.q_mult[rows],
            shape_of_load=self.shape_of_load,
            mode=self.mode,
            source=self.source,
        )


@dataclass(frozen=True)
class _Shape:
    name: str
    step_s: float
    p: np.ndarray
    q: np.ndarray | None
    use_actual: bool


def _read_shape(dss, name: str, problems: list[str]) -> _Shape | None:
    dss.LoadShape.Name(name)
    npts = int(dss.LoadShape.Npts())
    step_s = float(dss.LoadShape.SInterval())
    p = np.asarray(dss.LoadShape.PMult(), dtype=float)
    q = np.asarray(dss.LoadShape.QMult(), dtype=float)
    if not step_s > 0:
        problems.append(
            f"LoadShape.{name}: variable interval (hour=[...]) is not supported; give npts and "
            "interval (or minterval/sinterval)"
        )
        return None
    if npts < 1 or p.size != npts:
        problems.append(f"LoadShape.{name}: {p.size} multipliers for npts={npts}")
        return None
    if not np.isfinite(p).all():
        problems.append(f"LoadShape.{name}: multipliers not finite")
        return None
    return _Shape(
        name=name,
        step_s=step_s,
        p=p,
        q=q if q.size == npts else None,
        use_actual=bool(dss.LoadShape.UseActual()),
    )


def _load_shape_names(dss, mode: ShapeMode) -> tuple[dict[str, str], bool]:
    """Load name (lower case) -> the shape it follows ("" for none), OpenDSS's rule; and
    whether any load has a yearly shape."""
    out = {}
    any_yearly = False
    for name in dss.Loads.AllNames():
        dss.Loads.Name(name)
        yearly = str(dss.Loads.Yearly()).strip().lower()
        daily = str(dss.Loads.Daily()).strip().lower()
        any_yearly = any_yearly or bool(yearly)
        if int(dss.Loads.Status()) == 1:  # Status=Fixed: no variation
            out[name.lower()] = ""
        elif mode is ShapeMode.YEARLY:
            out[name.lower()] = yearly or daily
        else:
            out[name.lower()] = daily
    return out, any_yearly


def _shaped_injections(dss) -> list[str]:
    """PV systems, storage and generators that follow a load shape."""
    found = []
    for full in dss.Circuit.AllElementNames():
        cls = full.split(".", 1)[0].lower()
        if cls not in INJECTION_CLASSES:
            continue
        dss.Circuit.SetActiveElement(full)
        if not dss.CktElement.Enabled():
            continue
        names = [str(p).lower() for p in dss.CktElement.AllPropertyNames()]
        used = [
            key
            for key in ("yearly", "daily")
            if key in names and str(dss.Properties.Value(key)).strip().lower() not in ("", "none")
        ]
        if used:
            found.append(f"{full} ({', '.join(used)})")
    return found


def read_load_shapes(
    model,
    *,
    mode: ShapeMode | str = ShapeMode.YEARLY,
    origin: Any = SHAPE_ORIGIN,
) -> LoadShapeMultipliers:
    """The per-load kW and kvar multipliers of an OpenDSS feeder's load shapes.

    Parameters
    ----------
    model : grids.feeder3ph.ThreePhaseFeederModel
        The feeder (its ``circuit.path`` is compiled again; its ``load_names``, ``load_p_kw``
        and ``load_q_kvar`` give the columns and the bases of ``UseActual`` shapes).
    mode : ShapeMode or str, keyword-only
        ``"yearly"`` (default; the yearly shape, else the daily one) or ``"daily"`` (the daily
        shape only), as OpenDSS's ``Set Mode=Yearly`` / ``Daily``.
    origin : str or datetime, keyword-only
        Time label of the first point (default :data:`SHAPE_ORIGIN`).

    Returns
    -------
    LoadShapeMultipliers
        ``n_steps`` = the longest shape used (shorter ones repeat, as in OpenDSS), step = the
        shapes' interval; ``p_mult[k, j] = PMult`` of load ``j``'s shape at point ``k + 1``.

    Raises
    ------
    FeederError
        No load follows a shape, shapes of different intervals, variable-interval shapes,
        ``UseActual`` on a load with zero base power, shaped PV/storage/generators, loads of
        the model missing from the file.
    ScenarioError
        An unknown mode or an origin that is not a date.
    """
    try:
        mode = ShapeMode(str(getattr(mode, "value", mode)).lower())
    except ValueError:
        raise ScenarioError(
            f"mode: {mode!r} is not a load-shape mode; expected one of "
            f"{', '.join(m.value for m in ShapeMode)}"
        ) from None
    try:
        origin = pd.Timestamp(origin)
    except (TypeError, ValueError):
        origin = None
    if origin is None or origin is pd.NaT:
        raise ScenarioError("origin: not a date/time (expected ISO 8601)")
    path = model.circuit.path
    dss = compile_dss(path)
    try:
        follows, any_yearly = _load_shape_names(dss, mode)
        shaped_injections = _shaped_injections(dss)
        wanted = sorted({s for s in follows.values() if s})
        problems: list[str] = []
        shapes = {}
        for name in wanted:
            shape = _read_shape(dss, name, problems)
            if shape is not None:
                shapes[name] = shape
    finally:
        dss.Text.Command("clear")
    names = [str(n).lower() for n in model.load_names]
    missing = [n for n in names if n not in follows]
    if missing:
        problems.append(f"loads of the model not in {path}: {', '.join(missing[:10])}")
    if shaped_injections:
        problems.append(
            "PV systems, storage and generators following a shape are held at their snapshot "
            f"output by the engine (remove their yearly/daily shape): "
            f"{', '.join(shaped_injections[:10])}"
        )
    check_problems(problems, FeederError, f"OpenDSS file {path}: load shapes not usable")
    used = {follows[n] for n in names} - {""}
    if not used:
        how = "Yearly=... (or Daily=...)" if mode is ShapeMode.YEARLY else "Daily=..."
        raise FeederError(
            f"OpenDSS file {path}: no load follows a load shape in a {mode.value} run, so a time "
            f"series would be one flat step; define 'New LoadShape.<name> npts=... "
            f"interval=... mult=(file=...)' and give the loads {how}"
            + (
                " (the loads have yearly shapes only: use the yearly mode)"
                if mode is ShapeMode.DAILY and any_yearly
                else ""
            )
        )
    intervals = {shapes[s].step_s for s in used}
    if len(intervals) > 1:
        listed = ", ".join(f"{s} ({shapes[s].step_s:g} s)" for s in sorted(used))
        raise FeederError(
            f"OpenDSS file {path}: the loads' shapes have different intervals ({listed}); "
            "give them one interval (no resampling is done)"
        )
    step_s = intervals.pop()
    n_steps = max(shapes[s].p.size for s in used)
    p_kw = np.asarray(model.load_p_kw, dtype=float)
    q_kvar = np.asarray(model.load_q_kvar, dtype=float)
    p_mult = np.ones((n_steps, len(names)))
    q_mult = np.ones((n_steps, len(names)))
    problems = []
    for j, name in enumerate(names):
        shape = shapes.get(follows[name])
        if shape is None:
            continue
        reps = -(-n_steps // shape.p.size)
        p = np.tile(shape.p, reps)[:n_steps]
        q = p if shape.q is None else np.tile(shape.q, reps)[:n_steps]
        if shape.use_actual:
            if p_kw[j] == 0 or (shape.q is not None and q_kvar[j] == 0 and np.any(q != 0)):
                problems.append(
                    f"Load.{name}: LoadShape.{shape.name} has UseActual=yes (actual kW, kvar) "
                    "but the load's base kW or kvar is 0: give the load kW (and kvar or PF)"
                )
                continue
            p_mult[:, j] = p / p_kw[j]
            # without QMult an actual-power shape keeps the load's power factor
            q_mult[:, j] = p_mult[:, j] if shape.q is None else q / q_kvar[j]
        else:
            p_mult[:, j] = p
            q_mult[:, j] = q
    check_problems(problems, FeederError, f"OpenDSS file {path}: load shapes not usable")
    time = pd.date_range(origin, periods=n_steps, freq=pd.Timedelta(seconds=step_s))
    return LoadShapeMultipliers(
        time=time,
        step_s=step_s,
        load_names=tuple(model.load_names),
        p_mult=p_mult,
        q_mult=q_mult,
        shape_of_load=tuple(follows[n] for n in names),
        mode=mode,
        source=str(path),
    )
