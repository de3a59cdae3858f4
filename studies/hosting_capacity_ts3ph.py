"""Time-series hosting capacity of three-phase feeders, per bus and per phase.

For every chosen bus and phase (``a``, ``b``, ``c``: a single-phase unit line-to-neutral;
``abc``: a balanced three-phase unit, a third on each phase) the study answers "how many MW of
added EV charging (import) or V2G export, constant over the window, hold at every step of the
feeder's load shapes (or at a chosen percentile of the steps)". At step ``t`` the feeder's
loads follow their OpenDSS load shapes (:func:`grids.opendss_loadshapes.read_load_shapes`);
the limits are the snapshot study's, per phase (:class:`studies.hosting_capacity_3ph.
ThreePhaseCriteria`: phase-to-neutral voltage band, voltage unbalance factor, phase conductor
loading), each measured against its own step's base case (a limit already broken at a step
without the unit is held against it only where the unit makes it worse).

Method (exact on the engine's AC model, no linear estimate). With ``n`` steps and the
percentile ``p``, a size ``x`` holds when at least ``ceil(p n / 100)`` steps have no violation
at ``x``; the answer is the largest such ``x``, i.e. the ``(n - ceil(p n / 100))``-th smallest
per-step hosting capacity (the minimum for ``p = 100``), to ``tolerance_mw``. It is found by
the snapshot study's bracket bisection (:func:`studies.hosting_capacity_3ph.bisect_sizes`),
started from the snapshot answer at the feeder's base load, on an active set of steps per bus
(at first the :data:`FIRST_STEPS` steps of highest total load for import, lowest for export):
each bisection trial solves the active steps of every candidate bus at once (batched
three-phase AC solves, chunked). With fewer steps checked the answer can only be larger, so it
is verified on every step in one batched pass: where more than ``n - ceil(p n / 100)`` steps
break, the broken steps join the active set and the bisection runs again below. The answer is
therefore exact whatever steps are checked first. A last pass ``tolerance_mw`` above the answer
gives the binding limit, its element, the step it binds at and the first violation time.
Validated against a brute-force bisection step by step in
``tests/studies/test_hosting_capacity_ts3ph.py``.

Each row also carries the snapshot answer at the feeder's base load (every load at its kW,
kvar in the file) and how much it overstates the time-series answer.
"""

from __future__ import annotations

import math
import time as _time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from grids.dss_names import bus_spellings
from grids.errors import ConvergenceError, ScenarioError, check_problems
from studies.hosting_capacity_3ph import (
    HC3PH_CRITERIA_PARAMS,
    Candidates,
    ChargerPhase,
    LimitChecker,
    ThreePhaseCriteria,
    TrialState,
    bisect_sizes,
    select_candidates,
    three_phase_hosting_capacity,
)
from studies.hosting_capacity_engine import Binding, check_value
from studies.hosting_capacity_timeseries import (
    TS_HC_PARAMS,
    HostingMode,
    comparison_frame,
    overstatement_percent,
)
from studies.hosting_capacity_types import (
    DEFAULT_TOLERANCE_MW,
    check_pf,
    parse_enum,
    q_per_p_from_pf,
)

__all__ = [
    "ThreePhaseTimeSeriesHostingCapacity",
    "three_phase_time_series_hosting_capacity",
]

#: Scenarios per batched AC solve (bounds the memory of one call).
CHUNK_SCENARIOS = 1024
#: Steps whose base case is held at once (the checker's thresholds per step and node).
STEP_CHUNK = 512
#: Windows of up to this many steps x nodes keep every step's thresholds between trials (a
#: few hundred MB at most); longer ones rebuild them from the base case at every trial.
CACHE_ELEMENTS = 20_000_000
#: Steps every candidate's bisection checks first (more join where the answer breaks others).
FIRST_STEPS = 16
_PARAMS = {p.name: p for p in TS_HC_PARAMS}


@dataclass
class ThreePhaseTimeSeriesHostingCapacity:
    """Result of :func:`three_phase_time_series_hosting_capacity`.

    Attributes
    ----------
    feeder : str
    phase : ChargerPhase
    mode : HostingMode
    percentile : float
        Share of the steps at which the size must hold [%].
    criteria : ThreePhaseCriteria
    tolerance_mw : float
    time : pandas.DatetimeIndex
        The window's steps.
    rows : list of dict
        One per bus: ``bus`` (as written in the file), ``phase``, ``hosting_capacity_mw``
        [MW], ``binding`` (a :class:`~studies.hosting_capacity_engine.Binding` value),
        ``element`` (``"bus 34 phase a"``, ``"line LINE12 phase b"``), ``binding_time`` (ISO,
        the step that sets the answer), ``first_violation_time`` (ISO, the earliest step at
        which ``tolerance_mw`` more violates a limit; ``None`` when nothing binds up to the
        cap), ``n_violating_steps``, ``percentile``, and with the snapshot
        ``snapshot_hosting_capacity_mw``, ``snapshot_binding``, ``overstatement_mw``,
        ``overstatement_percent`` (snapshot minus time series, relative to the latter).
    base_case_violations : list of str
        Limits broken at the feeder's base load before any injection.
    vm_min_pu, vm_max_pu, vuf_max_percent, max_line_loading_percent : numpy.ndarray (n_steps,)
        The base time series (no added unit): extreme phase voltage, unbalance and conductor
        loading per step (loading NaN: no rated conductor).
    max_trafo_loading_percent : numpy.ndarray (n_steps,)
        The same for the transformers' winding-1 loading (NaN: no rated transformer).
    vm_min_bus_pu : numpy.ndarray (n_steps, n_bus)
        Lowest phase voltage of every bus (but the source bus) per step [pu] of the base time
        series; ``bus_names`` names the columns.
    simultaneous : dict or None
        The same fields for one size spread evenly over all the buses at once (``bus`` is
        ``"all"``), with ``sum_time_series_mw`` and ``sum_snapshot_mw``: the per-bus answers
        added up.
    """

    feeder: str
    phase: ChargerPhase
    mode: HostingMode
    percentile: float
    criteria: ThreePhaseCriteria
    tolerance_mw: float
    time: pd.DatetimeIndex
    rows: list[dict]
    base_case_violations: list[str]
    vm_min_pu: np.ndarray
    vm_max_pu: np.ndarray
    vuf_max_percent: np.ndarray
    max_line_loading_percent: np.ndarray
    max_trafo_loading_percent: np.ndarray
    vm_min_bus_pu: np.ndarray
    bus_names: tuple[str, ...]
    simultaneous: dict | None = None
    n_ac_cases: int = 0
    timings_s: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The JSON document of ``v2g-cosim hosting-capacity --time-series --json``.

        Returns
        -------
        dict
            ``feeder``, ``study``, ``phase``, ``mode``, ``percentile``, ``start``, ``end``,
            ``n_steps``, ``step_s``, ``tolerance_mw``, ``criteria``, ``results`` (the rows),
            ``simultaneous``, ``base_case_violations``.
        """
        step_s = (self.time[1] - self.time[0]).total_seconds() if len(self.time) > 1 else None
        return {
            "feeder": self.feeder,
            "study": "time_series",
            "phase": self.phase.value,
            "mode": self.mode.value,
            "percentile": self.percentile,
            "start": self.time[0].isoformat(),
            "end": self.time[-1].isoformat(),
            "n_steps": len(self.time),
            "step_s": step_s,
            "tolerance_mw": self.tolerance_mw,
            "criteria": {p.name: getattr(self.criteria, p.name) for p in HC3PH_CRITERIA_PARAMS},
            "results": self.rows,
            "simultaneous": self.simultaneous,
            "base_case_violations": self.base_case_violations,
        }

    def comparison_table(self) -> pd.DataFrame:
        """The planner's comparison: the snapshot answer per bus against the time series.

        Returns
        -------
        pandas.DataFrame
            ``bus``, ``phase``, ``snapshot_hosting_capacity_mw``, ``hosting_capacity_mw``,
            ``overstatement_mw``, ``overstatement_percent``, plus the simultaneous row (the
            per-bus snapshot answers added up against the size all buses take at once).
        """
        return comparison_frame(self.rows, self.simultaneous, keys=("bus", "phase"))


class _StepTrials:
    """Batched AC evaluation of (candidate, step) pairs at given sizes.

    The checker of a chunk of ``STEP_CHUNK`` steps holds that chunk's base-case thresholds
    (kept between calls up to ``CACHE_ELEMENTS`` steps x nodes, else rebuilt at every call, so
    memory stays bounded). ``active`` marks, per candidate, the steps the bisection trials
    check (see :class:`_ActiveTrials`). ``checkers`` is the cache of checkers per chunk of
    steps (shared between searches on the same window).
    """

    def __init__(
        self, model, cands: Candidates, mult, criteria, *, sign, q_per_p, written, checkers
    ):
        self.model, self.cands, self.mult = model, cands, mult
        self.criteria, self.written = criteria, written
        self.sign, self.q_per_p = sign, q_per_p
        self.n_steps = mult.shape[0]
        self.active = np.ones((len(cands.bus), self.n_steps), dtype=bool)
        self.n_cases = 0
        self._keep = self.n_steps * model.n_node <= CACHE_ELEMENTS
        self._checkers: dict[int, LimitChecker] = checkers

    def _checker(self, chunk: int) -> LimitChecker:
        if chunk in self._checkers:
            return self._checkers[chunk]
        steps = np.arange(chunk * STEP_CHUNK, min((chunk + 1) * STEP_CHUNK, self.n_steps))
        base = self.model.solve(**self.mult.at(steps))
        checker = LimitChecker(self.model, base, self.criteria, written=self.written)
        if self._keep:
            self._checkers[chunk] = checker
        return checker

    def evaluate(self, cand_rows: np.ndarray, size_mw: np.ndarray, mask=None):
        """Feasible, binding and where of every pair of ``mask`` (n_rows, n_steps; default
        all): candidate ``cand_rows[i]`` at ``size_mw[i]`` on top of the loads of step ``t``.
        Pairs not in the mask are reported feasible."""
        n_rows = cand_rows.size
        shape = (n_rows, self.n_steps)
        feasible = np.ones(shape, dtype=bool)
        binding = np.full(shape, Binding.NONE, dtype=object)
        where = np.full(shape, "", dtype=object)
        if mask is None:
            mask = np.ones(shape, dtype=bool)
        r_idx, t_idx = np.nonzero(mask)
        order = np.argsort(t_idx // STEP_CHUNK, kind="stable")
        r_idx, t_idx = r_idx[order], t_idx[order]
        chunk_of = t_idx // STEP_CHUNK
        nodes = self.cands.nodes[cand_rows]
        share = self.sign * np.asarray(size_mw, dtype=float)[:, None] * self.cands.weight[None, :]
        for chunk in np.unique(chunk_of):
            sel = np.flatnonzero(chunk_of == chunk)
            checker = self._checker(int(chunk))
            for s0 in range(0, sel.size, CHUNK_SCENARIOS):
                part = sel[s0 : s0 + CHUNK_SCENARIOS]
                rr, tt = r_idx[part], t_idx[part]
                p = np.zeros((part.size, self.model.n_node))
                np.put_along_axis(p, nodes[rr], share[rr], axis=1)
                res = self.model.solve(**self.mult.at(tt), p_wye_mw=p, q_wye_mvar=p * self.q_per_p)
                self.n_cases += part.size
                st = checker.check_result(res, base_row=tt - int(chunk) * STEP_CHUNK)
                feasible[rr, tt], binding[rr, tt], where[rr, tt] = st.feasible, st.binding, st.where
        return feasible, binding, where


class _ActiveTrials:
    """``bisect_sizes`` trials of some candidates on their active steps: a size holds when at
    most ``allowed`` of those steps are violated."""

    def __init__(self, trials: _StepTrials, cand_rows: np.ndarray, allowed: int) -> None:
        self.trials, self.cand_rows, self.allowed = trials, cand_rows, allowed

    def run(self, rows: np.ndarray, size_mw: np.ndarray) -> TrialState:
        """Whether the candidates ``rows`` (of this subset) hold at ``size_mw``."""
        cand = self.cand_rows[rows]
        feasible, binding, where = self.trials.evaluate(cand, size_mw, self.trials.active[cand])
        violated = ~feasible
        ok = violated.sum(axis=1) <= self.allowed
        first = np.argmax(violated, axis=1)
        k = np.arange(rows.size)
        return TrialState(
            feasible=ok,
            binding=np.where(ok, Binding.NONE, binding[k, first]),
            where=np.where(ok, "", where[k, first]),
        )


def _search(trials: _StepTrials, lo, hi, *, allowed: int, tol: float, cap: float, first_steps):
    """The largest size with at most ``allowed`` violated steps, per candidate (active set).

    The bisection checks only each candidate's active steps (at first ``first_steps``); the
    answer on them is an upper bound of the true one, verified on every step: where more than
    ``allowed`` steps break, the broken steps join the active set and the bisection runs again
    below it. Returns the answers and every step's feasibility at them.
    """
    n = len(trials.cands.bus)
    trials.active[:] = False
    trials.active[:, first_steps] = True
    lo, hi = np.asarray(lo, dtype=float).copy(), np.asarray(hi, dtype=float).copy()
    hc = np.zeros(n)
    ok_at = np.ones((n, trials.n_steps), dtype=bool)
    todo = np.arange(n)
    while todo.size:
        x, _, _ = bisect_sizes(
            _ActiveTrials(trials, todo, allowed), todo.size, lo[todo], hi[todo],
            tolerance_mw=tol, cap_mw=cap,
        )  # fmt: skip
        feasible, _, _ = trials.evaluate(todo, x)
        violated = ~feasible
        done = violated.sum(axis=1) <= allowed
        hc[todo[done]], ok_at[todo[done]] = x[done], feasible[done]
        again = todo[~done]
        # every broken step joins the active set: x now fails on it, the answer lies below
        trials.active[again] |= violated[~done]
        hi[again], lo[again] = x[~done], 0.5 * x[~done]
        todo = again
    return hc, ok_at


def _answers(
    trials: _StepTrials, lo, hi, *, allowed, tol, cap, need, first_steps, time_index
) -> list[dict]:
    """The answer of every candidate of ``trials`` and what binds it (row fields)."""
    hc, ok_at = _search(trials, lo, hi, allowed=allowed, tol=tol, cap=cap, first_steps=first_steps)
    # the last pass: one tolerance above the answer, every step
    n = hc.size
    ok_above, b_above, w_above = trials.evaluate(np.arange(n), np.minimum(hc + tol, cap))
    out = []
    for k in range(n):
        capped = hc[k] + tol > cap and ok_above[k].sum() >= need
        violated = ~ok_above[k]
        flips = np.flatnonzero(violated & ok_at[k])
        if capped or not violated.any():
            step, binding, element, first = None, Binding.NONE, "", None
        else:
            step = int(flips[0]) if flips.size else int(np.flatnonzero(violated)[0])
            binding, element = b_above[k, step], str(w_above[k, step])
            first = int(np.flatnonzero(violated)[0])
        out.append(
            {
                "hosting_capacity_mw": round(float(hc[k]), 9),
                "binding": binding.value,
                "element": element,
                "binding_time": None if step is None else time_index[step].isoformat(),
                "first_violation_time": None if first is None else time_index[first].isoformat(),
                "n_violating_steps": 0 if capped else int(violated.sum()),
            }
        )
    return out


@dataclass(frozen=True)
class _LoadMultipliers:
    """Per-step multipliers of the loads' kW (``p``) and kvar (``q``; None when equal)."""

    p: np.ndarray
    q: np.ndarray | None

    @property
    def shape(self) -> tuple[int, int]:
        return self.p.shape

    def at(self, steps) -> dict[str, np.ndarray]:
        """Keyword arguments of ``model.solve`` for some steps."""
        out = {"load_mult": self.p[steps]}
        if self.q is not None:
            out["load_mult_q"] = self.q[steps]
        return out


def _check_shapes(model, shapes) -> _LoadMultipliers:
    problems = []
    names = tuple(getattr(shapes, "load_names", ()))
    if tuple(str(n).lower() for n in names) != tuple(str(n).lower() for n in model.load_names):
        problems.append(
            f"shapes.load_names: the load shapes' {len(names)} loads are not the feeder's "
            f"{model.n_load} loads (read them with read_load_shapes(model))"
        )
    p = np.asarray(getattr(shapes, "p_mult", None), dtype=float)
    q = np.asarray(getattr(shapes, "q_mult", None), dtype=float)
    if p.ndim != 2 or p.shape[1] != model.n_load or p.shape[0] < 1 or q.shape != p.shape:
        problems.append(
            f"shapes.p_mult, shapes.q_mult: shapes {p.shape}, {q.shape}, expected both "
            f"(n_steps >= 1, {model.n_load})"
        )
    elif not (np.isfinite(p).all() and np.isfinite(q).all()) or (p < 0).any() or (q < 0).any():
        problems.append("shapes.p_mult, shapes.q_mult: multipliers must be finite and >= 0")
    elif len(shapes.time) != p.shape[0]:
        problems.append(f"shapes.time: {len(shapes.time)} steps, p_mult has {p.shape[0]}")
    check_problems(problems, ScenarioError, f"{model.name}: invalid load shapes")
    return _LoadMultipliers(p, None if np.array_equal(q, p) else q)


def _base_series(model, mult, time_index):
    """Base time series (no unit), chunked: extremes per step and the lowest voltage per bus."""
    phase = np.asarray(model.node_phase)
    node_bus = np.asarray(model.node_bus)
    keep = (phase >= 1) & (phase <= 3) & (node_bus != model.source_bus)
    buses = [b for b in model.buses if b != model.source_bus and (node_bus[keep] == b).any()]
    col = {b: i for i, b in enumerate(buses)}
    node_col = np.array([col[b] for b in node_bus[keep]])
    n = mult.shape[0]
    out = {k: np.full(n, np.nan) for k in ("vm_min", "vm_max", "vuf", "loading", "trafo")}
    vm_bus = np.full((n, len(buses)), np.inf)
    for start in range(0, n, CHUNK_SCENARIOS):
        rows = slice(start, min(start + CHUNK_SCENARIOS, n))
        res = model.solve(**mult.at(rows))
        conv = np.asarray(res.converged, dtype=bool)
        if not conv.all():
            first = start + int(np.flatnonzero(~conv)[0])
            raise ConvergenceError(
                f"{model.name}: the AC power flow of the load shapes did not converge at "
                f"{int((~conv).sum())} step(s) (first {time_index[first].isoformat()})",
                index=first,
            )
        vm = np.asarray(res.vm_pu)[:, keep]
        out["vm_min"][rows], out["vm_max"][rows] = vm.min(axis=1), vm.max(axis=1)
        vuf = np.asarray(res.vuf_percent, dtype=float)
        if vuf.shape[1]:
            out["vuf"][rows] = np.nanmax(np.nan_to_num(vuf, nan=0.0), axis=1)
        for key, values in (("loading", res.line_loading_percent),
                            ("trafo", res.trafo_loading_percent)):  # fmt: skip
            loading = np.asarray(values, dtype=float)
            rated = np.isfinite(loading).any(axis=0)
            if rated.any():
                out[key][rows] = np.nanmax(loading[:, rated], axis=1)
        block = vm_bus[rows]
        np.minimum.at(block, (slice(None), node_col), vm)
        vm_bus[rows] = block
    return out, vm_bus, tuple(buses)


def three_phase_time_series_hosting_capacity(
    model,
    shapes,
    *,
    mode: HostingMode | str = HostingMode.IMPORT,
    phase: ChargerPhase | str = ChargerPhase.A,
    percentile: float = 100.0,
    buses=None,
    criteria: ThreePhaseCriteria | None = None,
    pf: float = 1.0,
    tolerance_mw: float = DEFAULT_TOLERANCE_MW,
    cap_mw: float = 10.0,
    snapshot: bool = True,
    simultaneous: bool = False,
) -> ThreePhaseTimeSeriesHostingCapacity:
    """Per-bus, per-phase hosting capacity that holds over a window of load shapes.

    Parameters
    ----------
    model : grids.feeder3ph.ThreePhaseFeederModel
        The feeder.
    shapes : grids.opendss_loadshapes.LoadShapeMultipliers
        The window: per-load kW/kvar multipliers per step (``read_load_shapes(model)``,
        optionally ``.window(start, duration_s)``).
    mode : HostingMode or str, keyword-only
        ``"import"`` (added EV charging) or ``"export"`` (added V2G export).
    phase : ChargerPhase or str, keyword-only
        ``"a"``, ``"b"``, ``"c"`` (single-phase line-to-neutral) or ``"abc"`` (balanced).
    percentile : float, keyword-only
        Share of the steps at which the size must hold [%], ``0 < p <= 100``.
    buses : sequence of str, optional, keyword-only
        Bus names as written in the file (default: every bus with the phase(s) but the
        source bus).
    criteria : ThreePhaseCriteria, keyword-only
        Per-phase limits (default ANSI C84.1 range A, VUF 2 %, loading 100 %).
    pf : float, keyword-only
        Fixed power factor of the added unit (> 0 absorbs reactive power).
    tolerance_mw : float, keyword-only
        Bisection tolerance [MW] (default 1 kW).
    cap_mw : float, keyword-only
        Largest size searched [MW] (a bus still feasible there has binding ``none``).
    snapshot : bool, keyword-only
        Also report the snapshot answer at the base load and the overstatement columns (the
        snapshot study runs anyway: it starts the bracket).
    simultaneous : bool, keyword-only
        Also find the size spread evenly over all the chosen buses (and phases) at once.

    Returns
    -------
    ThreePhaseTimeSeriesHostingCapacity

    Raises
    ------
    ScenarioError
        Invalid arguments, buses or load shapes (every problem listed).
    ConvergenceError
        The AC power flow of the load shapes fails at some step.
    """
    t0 = _time.perf_counter()
    mode = parse_enum(HostingMode, mode, "mode")
    phase = parse_enum(ChargerPhase, phase, "phase")
    criteria = ThreePhaseCriteria() if criteria is None else criteria
    criteria.validate()
    problems: list[str] = []
    percentile = check_value(_PARAMS["percentile"], percentile, key="percentile", problems=problems)
    tol = check_value(_PARAMS["tolerance_mw"], tolerance_mw, key="tolerance_mw", problems=problems)
    cap = check_value(_PARAMS["cap_mw"], cap_mw, key="cap_mw", problems=problems)
    pf_value = check_pf(pf, key="pf", problems=problems)
    if not problems and cap <= tol:
        problems.append(f"cap_mw: {cap:g} must be above tolerance_mw ({tol:g})")
    check_problems(problems, ScenarioError, "invalid three-phase time-series hosting capacity")
    mult = _check_shapes(model, shapes)
    time_index = pd.DatetimeIndex(shapes.time)
    cands = select_candidates(model, buses, phase)
    spelling = bus_spellings(model.circuit.path)

    def written(bus) -> str:
        return spelling.get(str(bus).lower(), str(bus))

    timings: dict[str, float] = {}
    extremes, vm_bus, bus_names = _base_series(model, mult, time_index)
    timings["base_ac_s"] = _time.perf_counter() - t0
    n_steps = mult.shape[0]
    need = min(n_steps, max(1, math.ceil(percentile / 100.0 * n_steps - 1e-9)))
    sign = -1.0 if mode is HostingMode.IMPORT else 1.0
    q_per_p = q_per_p_from_pf(pf_value) if abs(pf_value) < 1.0 else 0.0
    n = len(cands.bus)
    t1 = _time.perf_counter()
    snap = three_phase_hosting_capacity(
        model,
        buses=list(cands.bus),
        phase=phase,
        mode=mode,
        criteria=criteria,
        load_mult=1.0,
        pf=pf_value,
        tolerance_mw=tol,
        cap_mw=cap,
    )
    timings["snapshot_s"] = _time.perf_counter() - t1
    snap_mw = np.array([r["hosting_capacity_mw"] for r in snap.rows], dtype=float)
    # the steps checked first: the highest total load for import, the lowest for export
    total_kw = mult.p @ np.asarray(model.load_p_kw, dtype=float)
    key = -total_kw if mode is HostingMode.IMPORT else total_kw
    search = {
        "allowed": n_steps - need, "tol": tol, "cap": cap, "need": need,
        "first_steps": np.argsort(key, kind="stable")[: min(n_steps, FIRST_STEPS)],
        "time_index": time_index,
    }  # fmt: skip

    checkers: dict[int, LimitChecker] = {}  # per chunk of steps, shared by the searches

    def trials_for(c: Candidates) -> _StepTrials:
        return _StepTrials(
            model, c, mult, criteria, sign=sign, q_per_p=q_per_p, written=written,
            checkers=checkers,
        )  # fmt: skip

    t2 = _time.perf_counter()
    trials = trials_for(cands)
    answers = _answers(trials, 0.5 * snap_mw, snap_mw + tol, **search)
    n_cases = trials.n_cases
    out_rows = []
    for k, answer in enumerate(answers):
        row = {"bus": written(cands.bus[k]), "phase": phase.value, **answer}
        row["percentile"] = percentile
        if snapshot:
            hc = answer["hosting_capacity_mw"]
            row["snapshot_hosting_capacity_mw"] = float(snap_mw[k])
            row["snapshot_binding"] = snap.rows[k]["binding"]
            row["overstatement_mw"] = round(float(snap_mw[k] - hc), 9)
            row["overstatement_percent"] = overstatement_percent(float(snap_mw[k]), hc)
        out_rows.append(row)
    spread_row = None
    if simultaneous:
        # one size spread evenly over every chosen bus (and phase) at once
        spread = Candidates(
            bus=("all",),
            nodes=cands.nodes.reshape(1, -1),
            weight=np.tile(cands.weight, n) / n,
        )
        trials = trials_for(spread)
        per_bus = np.array([r["hosting_capacity_mw"] for r in out_rows])
        (answer,) = _answers(
            trials, np.array([0.5 * per_bus.max()]), np.array([per_bus.sum() + tol]), **search
        )
        n_cases += trials.n_cases
        spread_row = {"bus": "all", "phase": phase.value, **answer, "percentile": percentile}
        spread_row["sum_time_series_mw"] = float(per_bus.sum())
        spread_row["sum_snapshot_mw"] = float(snap_mw.sum())
    timings["ac_s"] = _time.perf_counter() - t2
    timings["total_s"] = _time.perf_counter() - t0
    return ThreePhaseTimeSeriesHostingCapacity(
        feeder=model.name,
        phase=phase,
        mode=mode,
        percentile=float(percentile),
        criteria=criteria,
        tolerance_mw=float(tol),
        time=time_index,
        rows=out_rows,
        base_case_violations=snap.base_case_violations,
        vm_min_pu=extremes["vm_min"],
        vm_max_pu=extremes["vm_max"],
        vuf_max_percent=extremes["vuf"],
        max_line_loading_percent=extremes["loading"],
        max_trafo_loading_percent=extremes["trafo"],
        vm_min_bus_pu=np.where(np.isfinite(vm_bus), vm_bus, np.nan),
        bus_names=tuple(written(b) for b in bus_names),
        simultaneous=spread_row,
        n_ac_cases=n_cases,
        timings_s=timings,
    )
