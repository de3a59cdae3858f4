"""Adoption hosting capacity: the largest EV share a feeder takes over a window of profiles
without violating a planner's limit, per charging control, over many random placements.

For every seed, EVs are placed at the customers (:func:`vehicle_models.adoption.place_evs`,
nested in the share) and every share of the grid is run over the whole window through the
time-series power flow (:func:`grids.timeseries_pf.solve_time_series`; with charging-only
controls the shares above the first violating one are violating too: more EVs only add load):
the share is *violation-free* when no step
violates a limit that the EVs make worse (the base-case rule of
:func:`studies.hosting_capacity_engine.check`). A seed's hosting share is the largest share of
the grid up to which every share is violation-free; the table gives its median (P50) and the
share that 95 % of the placements take (P95, the 5th percentile over seeds), and the violation
probability of each share (the share of seeds that violate).

Controls (:class:`AdoptionControl`):

* ``unmanaged`` -- the source's charging (:mod:`vehicle_models.adoption`);
* ``volt_var`` -- unmanaged active power, and each charger runs the IEEE 1547-2018 Category B
  volt-var curve (:func:`vehicle_models.controls.volt_var_q_pu`, Q per unit of the charger's
  rating, reactive capability beside the rated active power) while it draws power; solved as a
  damped fixed point of the curve and the power flow;
* ``managed`` -- peak-aware time of use: no charging from the start of the evening peak window
  until its end plus the EV's staggered release delay, the deferred energy drawn afterwards;
* ``v2g`` -- managed, and the V2G-capable EVs export during the peak window (a daily budget).

Single-phase chargers on three-phase feeders need the three-phase engine; on the balanced
feeder model every charger is a balanced injection at its customer's bus.
"""

from __future__ import annotations

import math
import time as _time
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import numpy as np
import pandas as pd

from grids.errors import ScenarioError, check_problems
from grids.feeder_model import FeederModel
from grids.params import Param
from grids.profiles_year import FeederProfiles
from grids.simbench import ev_load_mask
from grids.timeseries_pf import solve_time_series
from studies.hosting_capacity_engine import (
    Binding,
    Flows,
    HostingCapacityCriteria,
    HotSpot,
    Limits,
    base_state,
    check,
    check_value,
)
from vehicle_models.adoption import (
    AdoptionSource,
    managed_charging_kw,
    peak_window_mask,
    place_evs,
    session_demand_kw,
    shape_demand_kw,
)
from vehicle_models.controls import volt_var_q_pu
from vehicle_models.settings import VoltVarSettings

__all__ = [
    "AdoptionControl",
    "AdoptionResult",
    "customer_buses",
    "non_customer_loads",
    "run_adoption_study",
]


class AdoptionControl(Enum):
    """Charging control of the EVs in an adoption study."""

    UNMANAGED = "unmanaged"
    VOLT_VAR = "volt_var"
    MANAGED = "managed"
    V2G = "v2g"


#: Declared arguments of the adoption study (checked with the validation kit).
ADOPTION_STUDY_PARAMS: tuple[Param, ...] = (
    Param("n_seeds", 10, kind=int, lo=1, hi=1000, doc="random placements per share"),
    Param("share_step", 0.1, unit="-", lo=0.0, lo_open=True, hi=1.0, doc="step of the share grid"),
    Param("v2g_share", 0.5, unit="-", lo=0.0, hi=1.0, doc="share of EVs with a V2G charger"),
    Param("peak_start_h", 17.0, unit="h", lo=0.0, hi=24.0, hi_open=True, doc="peak window start"),
    Param("peak_end_h", 21.0, unit="h", lo=0.0, hi=24.0, hi_open=True, doc="peak window end"),
    Param(
        "v2g_energy_kwh", 10.0, unit="kWh", lo=0.0, hi=200.0,
        doc="daily export budget of a V2G EV in the peak window",
    ),
)  # fmt: skip
_PARAMS = {p.name: p for p in ADOPTION_STUDY_PARAMS}

_VOLT_VAR_ITERATIONS = 40
_VOLT_VAR_TOLERANCE_PU = 1e-6
_VOLT_VAR_DAMPING = 0.6


@dataclass
class AdoptionResult:
    """Result of :func:`run_adoption_study`.

    Attributes
    ----------
    shares : numpy.ndarray (n_share,)
        The share grid [-].
    violated : dict
        Control -> (n_seed, n_share) bool: the placement violates a limit at some step.
    binding : dict
        Control -> (n_seed, n_share) object: the limit violated (Binding value, ``""``).
    first_violation : dict
        Control -> (n_seed, n_share) object: ISO time of the first violating step (or None).
    rows : list of dict
        One per control: ``control``, ``share_p50``, ``share_p95`` (share that 95 % of the
        placements take), ``n_seeds``, ``most_common_binding``, ``backlog_at_end_kwh``
        (managed energy still wanted at the window's end, mean per seed).
    """

    feeder: str
    source: AdoptionSource
    shares: np.ndarray
    seeds: np.ndarray
    n_customers: int
    time: pd.DatetimeIndex
    violated: dict[AdoptionControl, np.ndarray]
    binding: dict[AdoptionControl, np.ndarray]
    first_violation: dict[AdoptionControl, np.ndarray]
    unserved_kwh: dict[AdoptionControl, float]
    rows: list[dict] = field(default_factory=list)
    timings_s: dict[str, float] = field(default_factory=dict)
    base: Flows | None = None  # the window without the adopted EVs (for the heat map)

    def violation_probability(self, control: AdoptionControl) -> np.ndarray:
        """Share of the seeds that violate a limit, per share of the grid.

        Parameters
        ----------
        control : AdoptionControl
            The control.

        Returns
        -------
        numpy.ndarray (n_share,)
        """
        return self.violated[control].mean(axis=0)

    def to_json(self) -> dict:
        """The JSON document of ``v2g-cosim hosting-capacity --adoption --json``.

        Returns
        -------
        dict
        """
        return {
            "feeder": self.feeder,
            "study": "adoption",
            "source": self.source.value,
            "n_customers": self.n_customers,
            "start": self.time[0].isoformat(),
            "end": self.time[-1].isoformat(),
            "n_steps": len(self.time),
            "shares": [float(s) for s in self.shares],
            "seeds": [int(s) for s in self.seeds],
            "results": self.rows,
            "violation_probability": {
                c.value: [float(x) for x in self.violation_probability(c)] for c in self.violated
            },
        }


def customer_buses(
    model: FeederModel, *, household_kw: float = 5.0, exclude_loads=None
) -> np.ndarray:
    """Bus of every customer: each in-service load with demand stands for
    ``max(1, round(p_kw / household_kw))`` households (one for a household load of a LV
    feeder, many for an aggregated MV load).

    Parameters
    ----------
    model : FeederModel
        The feeder.
    household_kw : float, keyword-only
        Demand of one household in the loads' rated power [kW].
    exclude_loads : array_like of bool (n_load,) or None, keyword-only
        Loads that are not customers (e.g. the net's own EV chargers or heat pumps).

    Returns
    -------
    numpy.ndarray of int
        pandapower bus per customer (in ``net.load`` order; a bus repeats once per household).
    """
    if not (isinstance(household_kw, int | float) and math.isfinite(household_kw)):
        raise ScenarioError(f"household_kw: {household_kw!r} (expected a number > 0)")
    if household_kw <= 0:
        raise ScenarioError(f"household_kw: {household_kw!r} (expected a number > 0)")
    load = model.net.load
    p_kw = load.p_mw.to_numpy(float) * load.scaling.to_numpy(float) * 1000.0
    keep = load.in_service.to_numpy(bool) & (p_kw > 0)
    if exclude_loads is not None:
        keep &= ~np.asarray(exclude_loads, dtype=bool)
    live = set(int(b) for b, dead in zip(model.bus, model.dead_bus, strict=True) if not dead)
    bus = load.bus.to_numpy(int)
    keep &= np.array([int(b) in live for b in bus], dtype=bool)
    count = np.maximum(1, np.round(p_kw / household_kw)).astype(int)
    return np.repeat(bus[keep], count[keep])


#: SimBench heat-pump load profiles (``Air_*``, ``Soil_*``; see :mod:`grids.simbench`).
_HEAT_PUMP_PROFILE = r"^(Air|Soil)_"


def non_customer_loads(net) -> np.ndarray:
    """Loads that are not households or businesses: EV charging points and heat pumps.

    Parameters
    ----------
    net : pandapowerNet
        The feeder (SimBench nets name each load's ``profile``; other nets have none).

    Returns
    -------
    numpy.ndarray of bool (n_load,)
    """
    if "profile" not in net.load or not len(net.load):
        return np.zeros(len(net.load), dtype=bool)
    heat_pump = net.load["profile"].astype(str).str.match(_HEAT_PUMP_PROFILE).to_numpy(bool)
    return ev_load_mask(net) | heat_pump


def _check(values: dict[str, Any]) -> dict[str, Any]:
    problems: list[str] = []
    out = {
        name: check_value(_PARAMS[name], value, key=name, problems=problems)
        for name, value in values.items()
    }
    check_problems(problems, ScenarioError, "invalid adoption study")
    return out


def run_adoption_study(
    model: FeederModel,
    profiles,
    *,
    source: AdoptionSource | str = AdoptionSource.SIMBENCH,
    controls=tuple(AdoptionControl),
    n_seeds: int = 10,
    share_step: float = 0.1,
    v2g_share: float = 0.5,
    criteria: HostingCapacityCriteria | None = None,
    peak_start_h: float = 17.0,
    peak_end_h: float = 21.0,
    v2g_energy_kwh: float = 10.0,
    customers=None,
    first_seed: int = 0,
) -> AdoptionResult:
    """Adoption hosting capacity of a feeder over a window of profiles.

    Parameters
    ----------
    model : FeederModel
        The feeder.
    profiles : FeederProfiles
        The window (``time``, ``step_s``, ``p_mw``, ``q_mvar``, ``ev_p_mw``); with the
        ``simbench`` source the profiles' own EV charging is taken out of the base (the
        adopted EVs replace it) and its per-bus profiles are the EVs' shapes.
    source : AdoptionSource or str, keyword-only
        ``simbench`` (needs ``profiles.ev_p_mw``) or ``behaviour``.
    controls : iterable of AdoptionControl or str, keyword-only
        Controls to study (default all four).
    n_seeds : int, keyword-only
        Random placements per share.
    share_step : float, keyword-only
        Step of the share grid ``0, step, ..., 1`` [-].
    v2g_share : float, keyword-only
        Share of the EVs with a V2G charger [-] (the ``v2g`` control).
    criteria : HostingCapacityCriteria or None, keyword-only
        Planner limits.
    peak_start_h, peak_end_h : float, keyword-only
        Evening peak window, wall-clock time of the profiles [h].
    v2g_energy_kwh : float, keyword-only
        Daily export budget of a V2G EV [kWh].
    customers : array_like of int or None, keyword-only
        Customer buses (default :func:`customer_buses` without the EV charging points and
        heat pumps of :func:`non_customer_loads`).
    first_seed : int, keyword-only
        Seeds are ``first_seed .. first_seed + n_seeds - 1``.

    Returns
    -------
    AdoptionResult

    Raises
    ------
    ScenarioError
        Invalid arguments, or the ``simbench`` source without EV profiles.
    """
    t0 = _time.perf_counter()
    args = _check(
        {
            "n_seeds": n_seeds,
            "share_step": share_step,
            "v2g_share": v2g_share,
            "peak_start_h": peak_start_h,
            "peak_end_h": peak_end_h,
            "v2g_energy_kwh": v2g_energy_kwh,
        }
    )
    problems: list[str] = []
    source = Param("source", kind=AdoptionSource).check(source, key="source", problems=problems)
    controls_checked = [
        Param("controls", kind=AdoptionControl).check(c, key="controls", problems=problems)
        for c in controls
    ]
    if source is AdoptionSource.SIMBENCH and getattr(profiles, "ev_p_mw", None) is None:
        problems.append(
            "source: 'simbench' needs profiles with EV charging (a SimBench grid of scenario 1 "
            "or 2 with home or work charging points); use source = 'behaviour'"
        )
    criteria = criteria or HostingCapacityCriteria()
    problems.extend(criteria.problems())
    check_problems(problems, ScenarioError, "invalid adoption study")
    controls = list(dict.fromkeys(controls_checked))
    if customers is None:
        bus_of_customer = customer_buses(model, exclude_loads=non_customer_loads(model.net))
    else:
        bus_of_customer = np.asarray(customers)
    if not len(bus_of_customer):
        raise ScenarioError(f"{model.name}: no customer (in-service load with demand) for EVs")
    col = {int(b): k for k, b in enumerate(model.bus)}
    unknown = sorted({int(b) for b in bus_of_customer} - set(col))
    if unknown:
        raise ScenarioError(f"customers: buses {unknown} are not buses of {model.name}")

    time_index = pd.DatetimeIndex(profiles.time)
    step_s = float(profiles.step_s)
    p_base = np.asarray(profiles.p_mw, dtype=float)
    q_base = np.asarray(profiles.q_mvar, dtype=float)
    if source is AdoptionSource.SIMBENCH:
        ev_shapes = np.asarray(profiles.ev_p_mw, dtype=float)
        p_base = p_base + ev_shapes  # the adopted EVs replace the scenario's own
        ev_shapes = ev_shapes[:, np.abs(ev_shapes).max(axis=0) > 0]
    hour = (time_index.hour + time_index.minute / 60 + time_index.second / 3600).to_numpy(float)
    tod_s = hour * 3600.0
    base_profiles = FeederProfiles(
        time=time_index, step_s=step_s, bus=np.asarray(model.bus), p_mw=p_base, q_mvar=q_base
    )
    base = _solve(model, base_profiles)
    hot = HotSpot(criteria) if criteria.max_hot_spot_c is not None and len(model.trafo) else None
    limits = Limits(criteria, hot)
    timings = {"base_s": _time.perf_counter() - t0}

    shares = np.round(np.arange(0.0, 1.0 + 1e-9, args["share_step"]), 10)
    if shares[-1] < 1.0 - 1e-9:
        shares = np.append(shares, 1.0)
    seeds = np.arange(first_seed, first_seed + args["n_seeds"])
    n_seed, n_share = len(seeds), len(shares)
    base_checked = base_state(base, limits)
    violated = {c: np.zeros((n_seed, n_share), dtype=bool) for c in controls}
    binding = {c: np.full((n_seed, n_share), "", dtype=object) for c in controls}
    first = {c: np.full((n_seed, n_share), None, dtype=object) for c in controls}
    unserved = dict.fromkeys(controls, 0.0)
    peak = peak_window_mask(hour, start_h=args["peak_start_h"], end_h=args["peak_end_h"])[:, 0]
    n_customer = len(bus_of_customer)
    for i, seed in enumerate(seeds):
        full = place_evs(bus_of_customer, share=1.0, seed=int(seed), v2g_share=args["v2g_share"])
        if source is AdoptionSource.SIMBENCH:
            demand = shape_demand_kw(ev_shapes, shape_u=full.shape_u, charger_kw=full.charger_kw)
            plugged = np.ones_like(demand, dtype=bool)  # plug-in times unknown: always
        else:
            demand, plugged = session_demand_kw(
                tod_s,
                step_s,
                charger_kw=full.charger_kw,
                seed=int(seed),
                n_customer=n_customer,
                customer=full.customer,
            )
        blocked = peak_window_mask(
            hour,
            start_h=args["peak_start_h"],
            end_h=args["peak_end_h"],
            delay_h=full.release_delay_h,
        )
        for control in controls:
            if control in (AdoptionControl.UNMANAGED, AdoptionControl.VOLT_VAR):
                p_kw = demand
            else:
                v2g = control is AdoptionControl.V2G
                p_kw, backlog = managed_charging_kw(
                    demand,
                    plugged,
                    step_s=step_s,
                    blocked=blocked,
                    charger_kw=full.charger_kw,
                    export=full.v2g if v2g else None,
                    export_energy_kwh=args["v2g_energy_kwh"],
                    export_window=peak,
                )
                unserved[control] += float(backlog.sum()) / n_seed
            ev_cols = np.array([col[int(b)] for b in full.bus], dtype=int)
            # Charging-only EVs (no export) only add load as the share grows (nested
            # placements): once a share violates, every larger share of the seed does too.
            charging_only = control is not AdoptionControl.V2G
            for k, share in enumerate(shares):
                evs = full.rank < round(share * n_customer)  # nested: the first-ranked EVs
                if not evs.any():
                    continue  # nothing added: nothing made worse
                if charging_only and k > 0 and violated[control][i, k - 1]:
                    violated[control][i, k] = True
                    first[control][i, k] = first[control][i, k - 1]
                    binding[control][i, k] = binding[control][i, k - 1]
                    continue
                incidence = np.zeros((int(evs.sum()), len(model.bus)))
                incidence[np.arange(int(evs.sum())), ev_cols[evs]] = 1.0
                extra_p = -(p_kw[:, evs] / 1000.0) @ incidence  # (T, n_bus) MW, injection
                response = None
                if control is AdoptionControl.VOLT_VAR:
                    response = _volt_var_response(
                        p_kw[:, evs], ev_cols[evs], incidence, full.charger_kw[evs]
                    )
                flows = _solve(model, base_profiles, extra_p_mw=extra_p, response=response)
                result = check(flows, base_checked, limits)
                bad = ~result.feasible
                if bad.any():
                    t = int(np.flatnonzero(bad)[0])
                    violated[control][i, k] = True
                    first[control][i, k] = time_index[t].isoformat()
                    kind = result.binding[t]
                    binding[control][i, k] = kind.value if isinstance(kind, Binding) else str(kind)
    rows = [_summary(c, shares, violated[c], binding[c], unserved[c]) for c in controls]
    timings["total_s"] = _time.perf_counter() - t0
    return AdoptionResult(
        feeder=model.name,
        source=source,
        shares=shares,
        seeds=seeds,
        n_customers=n_customer,
        time=time_index,
        violated=violated,
        binding=binding,
        first_violation=first,
        unserved_kwh=unserved,
        rows=rows,
        timings_s=timings,
        base=base,
    )


def _solve(model: FeederModel, profiles, *, extra_p_mw=None, response=None) -> Flows:
    """The window through the one time-series power flow, as the limit checks need it (a step
    whose control fixed point did not settle counts as not converged)."""
    res = solve_time_series(
        model,
        profiles,
        extra_p_mw=extra_p_mw,
        response=response,
        response_tolerance_pu=_VOLT_VAR_TOLERANCE_PU,
        response_max_iterations=_VOLT_VAR_ITERATIONS,
        response_relaxation=_VOLT_VAR_DAMPING,
    )
    converged = np.asarray(res.converged, dtype=bool)
    if res.response_converged is not None:
        converged = converged & res.response_converged
    dead = model.dead_bus if model.dead_bus.any() else None
    return Flows(res.vm_pu, res.line_loading_percent, res.trafo_loading_percent, converged, dead)


def _volt_var_response(p_kw, ev_cols, incidence, rating_kw):
    """Reactive power of the drawing chargers on the IEEE 1547-2018 Category B volt-var curve,
    per bus [Mvar], for :func:`grids.timeseries_pf.solve_time_series` (``response``)."""
    settings = VoltVarSettings.defaults()
    active = np.abs(p_kw) > 0
    scale = rating_kw[None, :] / 1000.0

    def respond(rows, vm_pu):
        q_pu = np.where(active[rows], volt_var_q_pu(vm_pu[:, ev_cols], settings), 0.0)
        q_mvar = (q_pu * scale) @ incidence
        return np.zeros_like(q_mvar), q_mvar

    return respond


def _summary(control, shares, violated, binding, unserved_kwh) -> dict:
    n_seed = violated.shape[0]
    hosting = np.empty(n_seed)
    for i in range(n_seed):
        bad = np.flatnonzero(violated[i])
        hosting[i] = shares[-1] if not len(bad) else (shares[bad[0] - 1] if bad[0] > 0 else 0.0)
    kinds = [b for row in binding for b in row if b]
    common = max(set(kinds), key=kinds.count) if kinds else "none"
    return {
        "control": control.value,
        "share_p50": float(np.percentile(hosting, 50.0, method="lower")),
        "share_p95": float(np.percentile(hosting, 5.0, method="lower")),
        "share_min": float(hosting.min()),
        "n_seeds": int(n_seed),
        "most_common_binding": common,
        "backlog_at_end_kwh": float(unserved_kwh),
        "violation_free_at_all_shares": bool(not violated.any()),
    }
