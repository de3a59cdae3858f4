"""Time-series hosting capacity: per bus, the largest added EV charging (import) or V2G export
that holds at every step of a window of feeder profiles (or at a chosen percentile of them).

The added size ``x`` [MW] is constant over the window (a charger running at full power at
every step is the planner's worst case). At step ``t`` the feeder carries the profiles' net
injection; ``HC_t`` is the largest ``x`` with no limit violated at that step, and the answer at
the percentile ``p`` is the largest ``x`` that holds at ``ceil(p/100 n)`` of the ``n`` steps:
the ``(n - ceil(p n / 100))``-th smallest ``HC_t`` (the minimum for ``p = 100``).

Method (exact, not a linear estimate):

1. the AC power flow of every step without the added injection
   (:func:`grids.timeseries_pf.solve_time_series`);
2. a linear screen of ``HC_t`` at every step (:class:`studies.timeseries_screen.LinearScreen`:
   LinDistFlow sensitivities around the AC solution of each step);
3. the exact AC bisection (:func:`studies.hosting_capacity_engine.bisect`, 1 kW) at the steps
   whose screened size is within a band around the screened order statistic, all buses and
   steps in one batched bisection;
4. verification in one batched AC call: steps the screen placed above the band must hold at the
   answer, steps it placed below must fail just above it; a misplaced step joins the band and
   step 3 runs again for it. The answer therefore does not depend on the screen's accuracy
   (validated against a brute-force bisection at every step in
   ``tests/studies/test_hosting_capacity_timeseries.py``).

Each row also carries the planner's snapshot answer (DISCO-style: one worst snapshot -- the
step of highest total demand for import, of lowest for export -- one bus at a time) and how
much it overstates the time-series answer. Without a linear model (a meshed feeder) the screen
takes AC sensitivities instead (one more AC power flow per step and bus with a small addition).
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from grids.errors import ConvergenceError, FeederError, ScenarioError, check_problems
from grids.feeder_model import FeederModel
from grids.params import Param
from grids.simbench import is_simbench_name, simbench_profiles
from grids.timeseries_pf import solve_time_series
from studies.hosting_capacity import HostingCapacityStudy
from studies.hosting_capacity_engine import (
    AC_TOLERANCE_MVA,
    HC_CRITERIA_PARAMS,
    Flows,
    HostingCapacityCriteria,
    check_value,
)
from studies.hosting_capacity_types import DEFAULT_TOLERANCE_MW, Mode, check_pf, q_per_p_from_pf
from studies.timeseries_screen import LinearScreen, ac_sensitivity_screen
from studies.timeseries_search import OrderStatisticSearch

__all__ = [
    "HostingMode",
    "TimeSeriesHostingCapacity",
    "feeder_with_profiles",
    "parse_duration_s",
    "run_time_series_hosting_capacity",
    "time_series_hosting_capacity",
]

#: The study's mode under the name of the time-series API (the same enum as
#: :class:`studies.hosting_capacity_types.Mode`).
HostingMode = Mode

#: Declared arguments of the time-series study (checked with the validation kit).
TS_HC_PARAMS: tuple[Param, ...] = (
    Param("mode", Mode.IMPORT, kind=Mode, doc="added EV charging (import) or V2G export"),
    Param(
        "percentile", 100.0, unit="%", lo=0.0, lo_open=True, hi=100.0,
        doc="share of the window's steps at which the added size must hold",
    ),
    Param(
        "tolerance_mw", DEFAULT_TOLERANCE_MW, unit="MW", lo=0.0, lo_open=True, hi=1e3,
        doc="bisection tolerance",
    ),
    Param("cap_mw", None, unit="MW", lo=0.0, lo_open=True, hi=1e6, doc="largest size searched"),
    Param(
        "screen_margin", 0.1, unit="-", lo=0.0, lo_open=True, hi=10.0,
        doc="relative half-width of the band of steps bisected in AC around the screen",
    ),
    Param(
        "verify_factor", 2.0, unit="-", lo=1.0, lo_open=True, allow_inf=True,
        doc="steps whose screened size is within this factor of the answer are checked in AC "
        "(inf: every step)",
    ),
)  # fmt: skip
_PARAMS = {p.name: p for p in TS_HC_PARAMS}


@dataclass
class TimeSeriesHostingCapacity:
    """Result of :func:`run_time_series_hosting_capacity`.

    Attributes
    ----------
    rows : list of dict
        One per bus: ``bus``, ``hosting_capacity_mw`` [MW], ``binding`` (a
        :class:`studies.hosting_capacity_engine.Binding` value), ``element`` (``"bus 17"``,
        ``"line 3"``, ``"trafo 0"``), ``first_violation_time`` (ISO, the earliest step at which
        a size just above the answer violates a limit; ``None`` when nothing binds up to the
        cap), ``binding_time`` (ISO, the step that sets the answer), ``screen_mw`` [MW],
        ``n_violating_steps``, ``snapshot_hosting_capacity_mw`` [MW], ``snapshot_binding``,
        ``overstatement_mw`` and ``overstatement_percent`` (snapshot minus time series).
    simultaneous : dict or None
        The same for the size spread evenly over all the buses at once (``bus`` is ``"all"``),
        with ``sum_snapshot_mw`` and ``sum_time_series_mw``: the per-bus answers added up.
    time : pandas.DatetimeIndex
        The window's steps.
    vm_min_pu, vm_max_pu, max_line_loading_percent, max_trafo_loading_percent : numpy.ndarray
        The base time series (no added injection) per step (loading NaN: nothing rated).
    """

    feeder: str
    mode: Mode
    percentile: float
    criteria: HostingCapacityCriteria
    tolerance_mw: float
    time: pd.DatetimeIndex
    rows: list[dict]
    snapshot_time: str
    vm_min_pu: np.ndarray
    vm_max_pu: np.ndarray
    max_line_loading_percent: np.ndarray
    max_trafo_loading_percent: np.ndarray
    simultaneous: dict | None = None
    n_ac_cases: int = 0
    timings_s: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict:
        """The JSON document of ``v2g-cosim hosting-capacity --time-series --json``.

        Returns
        -------
        dict
            ``feeder``, ``mode``, ``percentile``, ``start``, ``end``, ``n_steps``,
            ``tolerance_mw`` [MW], ``criteria``, ``snapshot_time``, ``results`` (the rows) and
            ``simultaneous``.
        """
        return {
            "feeder": self.feeder,
            "study": "time_series",
            "mode": self.mode.value,
            "percentile": self.percentile,
            "start": self.time[0].isoformat(),
            "end": self.time[-1].isoformat(),
            "n_steps": len(self.time),
            "tolerance_mw": self.tolerance_mw,
            "criteria": {
                p.name: getattr(getattr(self.criteria, p.name), "value", None)
                or getattr(self.criteria, p.name)
                for p in HC_CRITERIA_PARAMS
            },
            "snapshot_time": self.snapshot_time,
            "results": self.rows,
            "simultaneous": self.simultaneous,
        }

    def comparison_table(self) -> pd.DataFrame:
        """The planner's comparison: snapshot per bus against the time-series answer.

        Returns
        -------
        pandas.DataFrame
            ``bus``, ``snapshot_hosting_capacity_mw``, ``hosting_capacity_mw``,
            ``overstatement_mw``, ``overstatement_percent``, plus the simultaneous row.
        """
        return comparison_frame(self.rows, self.simultaneous)


def comparison_frame(
    rows: list[dict], simultaneous: dict | None, *, keys: tuple[str, ...] = ("bus",)
) -> pd.DataFrame:
    """Snapshot against time-series answer per row, and the simultaneous row when there is one.

    Parameters
    ----------
    rows : list of dict
        The study's rows (``snapshot_hosting_capacity_mw`` and ``hosting_capacity_mw`` [MW],
        ``overstatement_mw``, ``overstatement_percent`` and the ``keys``).
    simultaneous : dict or None
        ``sum_snapshot_mw`` (the per-bus snapshot answers added up) and
        ``hosting_capacity_mw`` (the size all buses take at once) [MW], and any of the
        ``keys`` besides ``bus``.
    keys : tuple of str, keyword-only
        The columns that name a row (``("bus",)``; three-phase: ``("bus", "phase")``).

    Returns
    -------
    pandas.DataFrame
        The ``keys``, ``snapshot_hosting_capacity_mw``, ``hosting_capacity_mw``,
        ``overstatement_mw``, ``overstatement_percent``.
    """
    cols = [
        *keys,
        "snapshot_hosting_capacity_mw",
        "hosting_capacity_mw",
        "overstatement_mw",
        "overstatement_percent",
    ]
    table = [{k: r.get(k) for k in cols} for r in rows]
    if simultaneous is not None:
        s = simultaneous
        table.append(
            {
                **{k: s.get(k) for k in keys},
                "bus": "all (simultaneous)",
                "snapshot_hosting_capacity_mw": s["sum_snapshot_mw"],
                "hosting_capacity_mw": s["hosting_capacity_mw"],
                "overstatement_mw": s["sum_snapshot_mw"] - s["hosting_capacity_mw"],
                "overstatement_percent": overstatement_percent(
                    s["sum_snapshot_mw"], s["hosting_capacity_mw"]
                ),
            }
        )
    return pd.DataFrame(table, columns=cols)


def overstatement_percent(snapshot: float, series: float) -> float | None:
    """How much a snapshot answer overstates the time-series one [%] (None if undefined).

    Parameters
    ----------
    snapshot, series : float
        Snapshot and time-series hosting capacity [MW].

    Returns
    -------
    float or None
        ``100 (snapshot - series) / series``; None when either is not finite or the
        time-series answer is not positive.
    """
    if not (math.isfinite(snapshot) and math.isfinite(series)) or series <= 0:
        return None
    return 100.0 * (snapshot - series) / series


def _iso(time_index: pd.DatetimeIndex, step: int | None) -> str | None:
    return None if step is None else time_index[int(step)].isoformat()


def _check_profiles(model: FeederModel, profiles) -> tuple[np.ndarray, np.ndarray]:
    problems = []
    p = np.asarray(getattr(profiles, "p_mw", None), dtype=float)
    q = np.asarray(getattr(profiles, "q_mvar", None), dtype=float)
    bus = np.asarray(getattr(profiles, "bus", model.bus))
    n_bus = len(model.bus)
    if not np.array_equal(bus, model.bus):
        problems.append(f"profiles.bus: the profiles' buses are not the feeder's {n_bus} buses")
    for name, arr in (("p_mw", p), ("q_mvar", q)):
        if arr.ndim != 2 or arr.shape[1] != n_bus or arr.shape[0] < 1:
            problems.append(f"profiles.{name}: shape {arr.shape}, expected (n_steps >= 1, {n_bus})")
        elif not np.isfinite(arr).all():
            problems.append(f"profiles.{name}: {int((~np.isfinite(arr)).sum())} values not finite")
    if p.shape != q.shape:
        problems.append(f"profiles: p_mw {p.shape} and q_mvar {q.shape} differ in shape")
    if len(profiles.time) != (p.shape[0] if p.ndim == 2 else -1):
        problems.append(f"profiles.time: {len(profiles.time)} steps, p_mw has {p.shape[0]}")
    check_problems(problems, ScenarioError, f"{model.name}: invalid time-series profiles")
    return p, q


def _base_time_series(model: FeederModel, profiles, time_index) -> Flows:
    """AC flows of every step without the added injection (the one time-series power flow,
    :func:`grids.timeseries_pf.solve_time_series`)."""
    res = solve_time_series(model, profiles)
    converged = np.asarray(res.converged, dtype=bool)
    if not converged.all():
        first = int(np.flatnonzero(~converged)[0])
        raise ConvergenceError(
            f"{model.name}: the AC power flow of the profiles did not converge at "
            f"{int((~converged).sum())} of {len(converged)} steps (first "
            f"{time_index[first].isoformat()})",
            index=first,
        )
    dead = model.dead_bus if model.dead_bus.any() else None
    return Flows(res.vm_pu, res.line_loading_percent, res.trafo_loading_percent, converged, dead)


def _check_arguments(values: dict[str, Any]) -> dict[str, Any]:
    problems: list[str] = []
    out = {}
    for name, value in values.items():
        param = _PARAMS[name]
        if value is None and param.default is None:
            out[name] = None
            continue
        out[name] = check_value(param, value, key=name, problems=problems)
    check_problems(problems, ScenarioError, "invalid time-series hosting-capacity study")
    return out


def run_time_series_hosting_capacity(
    model: FeederModel,
    profiles,
    *,
    mode: Mode | str = Mode.IMPORT,
    percentile: float = 100.0,
    buses=None,
    criteria: HostingCapacityCriteria | None = None,
    pf: float = 1.0,
    tolerance_mw: float = DEFAULT_TOLERANCE_MW,
    cap_mw: float | None = None,
    screen_margin: float = 0.1,
    verify_factor: float = 2.0,
    snapshot: bool = True,
    simultaneous: bool = False,
) -> TimeSeriesHostingCapacity:
    """Time-series hosting capacity of every chosen bus over a window of profiles.

    Parameters
    ----------
    model : FeederModel
        The feeder.
    profiles : FeederProfiles
        The window: ``time`` (n_steps), ``bus`` (= ``model.bus``), ``p_mw`` and ``q_mvar``
        (n_steps, n_bus) total net injection per bus [MW, Mvar], injection positive.
    mode : Mode or str, keyword-only
        ``import`` (added EV charging) or ``export`` (added V2G export).
    percentile : float, keyword-only
        Share of the steps at which the added size must hold [%], ``0 < p <= 100``.
    buses : None, "all" or iterable of int, keyword-only
        pandapower bus indices (default: every energized non-slack bus).
    criteria : HostingCapacityCriteria or None, keyword-only
        Planner limits (default :class:`HostingCapacityCriteria`).
    pf : float, keyword-only
        Power factor of the added units (> 0 absorbs reactive power).
    tolerance_mw : float, keyword-only
        Bisection tolerance [MW] (default 1 kW).
    cap_mw : float or None, keyword-only
        Largest size searched [MW] (default five times the feeder's load, at least 5 MW).
    screen_margin : float, keyword-only
        Relative half-width of the first band of steps bisected in AC (widened as needed).
    verify_factor : float, keyword-only
        Steps whose screened size lies within this factor of the answer are checked in AC
        (default 2: a step is missed only where the screen is off by more than a factor 2;
        ``math.inf``: every step, whatever the screen).
    snapshot : bool, keyword-only
        Also compute the snapshot answer per bus (and the comparison columns).
    simultaneous : bool, keyword-only
        Also compute the answer for the size spread evenly over all the buses at once.

    Returns
    -------
    TimeSeriesHostingCapacity

    Raises
    ------
    ScenarioError
        Invalid arguments or profiles (every problem listed).
    ConvergenceError
        The AC power flow of the profiles fails at some step.
    """
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    args = _check_arguments(
        {
            "mode": mode,
            "percentile": percentile,
            "tolerance_mw": tolerance_mw,
            "cap_mw": cap_mw,
            "screen_margin": screen_margin,
            "verify_factor": verify_factor,
        }
    )
    problems: list[str] = []
    pf_value = check_pf(pf, key="pf", problems=problems)
    check_problems(problems, ScenarioError, "invalid time-series hosting-capacity study")
    mode, percentile, tol = args["mode"], args["percentile"], args["tolerance_mw"]
    q_per_p = q_per_p_from_pf(pf_value)
    study = HostingCapacityStudy(model, criteria=criteria, need_screen=False)
    bus_list = study.resolve_buses(buses)
    cap = float(args["cap_mw"] or study.default_cap_mw)
    if cap <= tol:
        raise ScenarioError(f"cap_mw: {cap:g} must be above tolerance_mw ({tol:g})")
    p, q = _check_profiles(model, profiles)
    time_index = pd.DatetimeIndex(profiles.time)
    base = _base_time_series(model, profiles, time_index)
    timings["base_ac_s"] = time.perf_counter() - t0

    col = {int(b): i for i, b in enumerate(model.bus)}
    sign = 1.0 if mode is Mode.EXPORT else -1.0
    directions = np.zeros((len(bus_list), len(model.bus)))
    directions[np.arange(len(bus_list)), [col[int(b)] for b in bus_list]] = sign
    if simultaneous:
        spread = np.zeros((1, len(model.bus)))
        spread[0, [col[int(b)] for b in bus_list]] = sign / len(bus_list)
        directions = np.vstack([directions, spread])

    t1 = time.perf_counter()
    screen = _screen(model, study, p, q, base, directions, q_per_p)
    timings["screen_s"] = time.perf_counter() - t1
    search = OrderStatisticSearch(
        study, p, q, base, directions, q_per_p, tol, cap, verify_factor=args["verify_factor"]
    )
    t2 = time.perf_counter()
    results = search.order_statistic(screen, percentile, args["screen_margin"])
    timings["ac_s"] = time.perf_counter() - t2

    snapshot_step = int(
        np.argmin(p.sum(axis=1)) if mode is Mode.IMPORT else np.argmax(p.sum(axis=1))
    )
    snap = None
    if snapshot:
        snap = search.at_step(snapshot_step, screen[snapshot_step])
    rows = []
    for k, out in enumerate(results):
        is_spread = simultaneous and k == len(results) - 1
        row = {
            "bus": "all" if is_spread else int(bus_list[k]),
            "hosting_capacity_mw": out["hc"],
            "binding": out["binding"].value,
            "element": out["where"],
            "first_violation_time": _iso(time_index, out["first_step"]),
            "binding_time": _iso(time_index, out["step"]),
            "screen_mw": out["screen"],
            "n_violating_steps": out["n_violating"],
            "percentile": percentile,
        }
        if snap is not None:
            s_hc, s_binding = snap[k]
            row["snapshot_hosting_capacity_mw"] = s_hc
            row["snapshot_binding"] = s_binding.value
            row["overstatement_mw"] = s_hc - out["hc"]
            row["overstatement_percent"] = overstatement_percent(s_hc, out["hc"])
        rows.append(row)
    spread_row = None
    if simultaneous:
        spread_row = rows.pop()
        spread_row["sum_time_series_mw"] = float(sum(r["hosting_capacity_mw"] for r in rows))
        if snap is not None:
            spread_row["sum_snapshot_mw"] = float(
                sum(r["snapshot_hosting_capacity_mw"] for r in rows)
            )
    timings["total_s"] = time.perf_counter() - t0
    line = base.line_loading_percent
    trafo = base.trafo_loading_percent
    with np.errstate(all="ignore"):
        vm = np.where(model.dead_bus[None, :], np.nan, base.vm_pu)
        max_line = _nanmax_rows(line)
        max_trafo = _nanmax_rows(trafo)
        vm_min, vm_max = _nanmin_rows(vm), _nanmax_rows(vm)
    return TimeSeriesHostingCapacity(
        feeder=model.name,
        mode=mode,
        percentile=percentile,
        criteria=study.criteria,
        tolerance_mw=tol,
        time=time_index,
        rows=rows,
        snapshot_time=time_index[snapshot_step].isoformat(),
        vm_min_pu=vm_min,
        vm_max_pu=vm_max,
        max_line_loading_percent=max_line,
        max_trafo_loading_percent=max_trafo,
        simultaneous=spread_row,
        n_ac_cases=search.n_cases,
        timings_s=timings,
    )


def _nanmax_rows(values: np.ndarray) -> np.ndarray:
    if values.shape[1] == 0:
        return np.full(values.shape[0], np.nan)
    finite = np.isfinite(values)
    out = np.where(finite, values, -np.inf).max(axis=1)
    return np.where(finite.any(axis=1), out, np.nan)


def _nanmin_rows(values: np.ndarray) -> np.ndarray:
    return -_nanmax_rows(-values)


def _screen(model, study, p, q, base: Flows, directions, q_per_p) -> np.ndarray:
    """Screened size (n_steps, n_dir): LinDistFlow on a radial feeder, else AC sensitivities."""
    try:
        screen = LinearScreen(model, study.criteria)
    except FeederError:  # meshed: no path-sum model
        return ac_sensitivity_screen(
            study.ac,
            p,
            q,
            base,
            directions,
            study.criteria,
            q_per_p=q_per_p,
            delta_mw=max(1e-3, 1e-3 * study.default_cap_mw),
            dead_bus=model.dead_bus,
        )
    return screen.screen(
        p,
        q,
        base.vm_pu,
        base.line_loading_percent,
        base.trafo_loading_percent,
        directions,
        q_per_p=q_per_p,
        dead_bus=model.dead_bus,
    )


def time_series_hosting_capacity(
    model: FeederModel,
    profiles,
    *,
    mode: Mode | str = Mode.IMPORT,
    percentile: float = 100.0,
    buses=None,
    criteria: HostingCapacityCriteria | None = None,
    **options: Any,
) -> list[dict]:
    """Rows of :func:`run_time_series_hosting_capacity` (the regional runner's entry point).

    Parameters
    ----------
    model : FeederModel
        The feeder.
    profiles : FeederProfiles
        The window of profiles.
    mode : Mode or str, keyword-only
        ``import`` or ``export``.
    percentile : float, keyword-only
        Share of the steps at which the size must hold [%].
    buses : None, "all" or iterable of int, keyword-only
        Buses (default: every energized non-slack bus).
    criteria : HostingCapacityCriteria or None, keyword-only
        Planner limits.
    **options
        Further keywords of :func:`run_time_series_hosting_capacity`.

    Returns
    -------
    list of dict
        One row per bus (keys in :class:`TimeSeriesHostingCapacity`).
    """
    return run_time_series_hosting_capacity(
        model,
        profiles,
        mode=mode,
        percentile=percentile,
        buses=buses,
        criteria=criteria,
        **options,
    ).rows


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(d|h|min|s)\s*$")
_UNIT_S = {"d": 86400.0, "h": 3600.0, "min": 60.0, "s": 1.0}


def parse_duration_s(text: str | float | None, *, key: str = "--duration") -> float | None:
    """A window length such as ``7d``, ``365d``, ``12h``, ``90min`` in seconds.

    Parameters
    ----------
    text : str, float or None
        The duration (a number alone is seconds); ``None``: the whole profiles.
    key : str, keyword-only
        Option name for messages.

    Returns
    -------
    float or None
        Seconds.

    Raises
    ------
    ScenarioError
        Not a positive duration.
    """
    if text is None:
        return None
    if isinstance(text, int | float) and not isinstance(text, bool):
        value = float(text)
    else:
        match = _DURATION.match(str(text))
        if not match:
            raise ScenarioError(
                f"{key}: {text!r} is not a duration (expected a number and a unit: 7d, 365d, "
                "12h, 90min)"
            )
        value = float(match.group(1)) * _UNIT_S[match.group(2)]
    if not (math.isfinite(value) and value > 0):
        raise ScenarioError(f"{key}: {text!r} must be a positive duration")
    return value


def feeder_with_profiles(feeder: str, *, start=None, duration_s: float | None = None):
    """The feeder model and the window of its profiles (SimBench grids carry a year).

    Parameters
    ----------
    feeder : str
        ``simbench:<code>``.
    start : str, datetime or None, keyword-only
        First step of the window (ISO 8601; default the first step of the profiles).
    duration_s : float or None, keyword-only
        Length of the window [s] (default: to the end of the profiles).

    Returns
    -------
    (FeederModel, FeederProfiles)

    Raises
    ------
    ScenarioError
        A feeder without profiles, or a window outside them.
    """
    if not is_simbench_name(feeder):
        raise ScenarioError(
            f"--feeder: {feeder!r} has no time-series profiles; time-series and adoption "
            "studies need a SimBench grid (simbench:<code>, see `v2g-cosim feeders --simbench`)"
        )
    model = FeederModel.from_name(feeder, tolerance_mva=AC_TOLERANCE_MVA)
    profiles = simbench_profiles(model.net, model)
    if start is not None or duration_s is not None:
        profiles = profiles.window(start, duration_s)
    return model, profiles
