"""Many feeders on one bulk-grid frequency: whose fleet trips, and how much each one helps.

A contingency (:mod:`studies.contingency`: one generation loss or load step on the aggregate
swing model) where the bulk grid sees several distribution feeders, each with its own V2G
fleet (``[[feeders]]``, :class:`cosim.scenario.FeederEntry`), instead of one feeder times a
replica count. Every step is the project's one coupled step
(:func:`vehicle_models.coupling.coupled_step`, run by
:func:`studies.contingency_simulation.simulate_case`): the swing model's input is the event
plus the *sum over feeders* of each fleet's injection change since the event's dispatch, so
feeder-level trips and droop add up.

Fast path: the fleets that share their inverter settings, charging policy and battery model
are stepped as **one** vectorised :class:`~vehicle_models.fleet.Fleet` (their vehicles
concatenated, buses kept apart by an offset of :data:`BUS_STRIDE` per feeder) and split back
per feeder by bus; ``vectorised=False`` steps one fleet per feeder (the reference; measured
in ``benchmarks/cosim.py``). Both give the same per-vehicle physics: a fleet's random draws
(ride-through stagger spreads) come from the first feeder's seed of its group in the fast
path and from each feeder's own seed in the reference.

Attribution: the nadir *without* feeder ``i``'s response is a re-run in which the bulk grid
sees feeder ``i`` hold its pre-event dispatch (its injection change is left out of the swing
input: no droop, no trip reaches the frequency) while every other feeder keeps its
behaviour. The feeder's fleet is still stepped, so every other fleet keeps the same random
draws. With trips, limits and UFLS the system is not linear, so no superposition of one run
gives this exactly; the re-runs are independent and run on ``workers`` processes.

Validation (``tests/studies/test_multi_feeder.py``, ``docs/many_feeders.md``): N identical
feeders with the same fleet give the frequency of the contingency study's replica path (one
feeder, ``feeder_replicas = N``) within 1e-6 Hz; the swing input equals the event plus the
sum of the feeders' injection changes at every step; the per-feeder trips add up to the
run's total.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from grids.errors import ScenarioError
from studies.contingency_scenario import (
    ContingencyScenario,
    FleetResponse,
    load_contingency_scenario,
    parse_cases,
)
from studies.contingency_simulation import CaseResult, control_for_case, simulate_case
from studies.study_inputs import build_fleet, split_scenario
from vehicle_models.coupling import InjectionChange

#: Feeder solvers built in this process, by (feeder, load_scale, ext_grid_vm_pu).
_MODELS: dict[tuple, Any] = {}

#: Bus-index offset between feeders inside one vectorised fleet (pandapower bus indices of a
#: feeder stay below it).
BUS_STRIDE = 10_000_000


@dataclass(frozen=True)
class MultiFeederScenario:
    """A contingency over several feeders.

    Attributes
    ----------
    contingency : ContingencyScenario
        Frequency model, events, step and the ``[contingency]`` settings (dispatch, sag,
        trip settings, ``feeder_replicas``: every feeder stands for that many alike).
    feeders : tuple of cosim.scenario.FeederEntry
        Every feeder with its fleet (label, feeder, fleet, seed).
    """

    contingency: ContingencyScenario
    feeders: tuple

    @property
    def labels(self) -> list[str]:
        """Feeder labels, in scenario order."""
        return [e.label for e in self.feeders]


def load_multi_feeder_scenario(
    scenario: Mapping[str, Any] | str | Path | MultiFeederScenario,
) -> MultiFeederScenario:
    """Read and validate a many-feeder contingency scenario (every problem at once).

    Parameters
    ----------
    scenario : mapping, path or MultiFeederScenario
        A scenario with ``[simulation]``, ``[frequency]``, ``[[events]]``, ``[[feeders]]``
        (or one ``[feeder]``/``[fleet]``) and optionally ``[contingency]``.

    Returns
    -------
    MultiFeederScenario

    Raises
    ------
    ScenarioError
        Listing every problem with its key path; also when no feeder has a fleet.
    """
    if isinstance(scenario, MultiFeederScenario):
        return scenario
    contingency = load_contingency_scenario(scenario)
    shared, _, source, problems, _ = split_scenario(scenario, own_section="contingency")
    if shared is None:  # not reached: the contingency loader raised on the same problems
        raise ScenarioError(f"{source}: invalid scenario", problems=problems)
    problems = []
    if not any(e.has_fleet for e in shared.feeders):
        problems.append("feeders: no feeder has a fleet (feeders.fleet with n_vehicles or table)")
    for i, entry in enumerate(shared.feeders):
        if getattr(entry.feeder, "three_phase", False):
            problems.append(
                f"feeders[{i}].name: {entry.feeder.name!r} is a three-phase feeder, which this "
                "study does not solve (run the scenario through mosaik: v2g-cosim run)"
            )
    if contingency.faults:
        problems.append(
            "events: 'fault' events are not modelled by this study (the fault names no "
            "feeder); use [contingency] sag_vm_pu for a sag on every feeder"
        )
    if problems:
        raise ScenarioError(f"{source}: invalid many-feeder scenario", problems=problems)
    return MultiFeederScenario(contingency=contingency, feeders=shared.feeders)


# ---------------------------------------------------------------------------------------------
# the fleets of every feeder as one frequency responder


def _combined_fleet(fleets: list, offsets: list[int]):
    """One vectorised fleet holding the vehicles of ``fleets`` (same settings, policy and
    battery model), bus ``b`` of fleet ``j`` renamed ``b + offsets[j]``."""
    from vehicle_models.battery import BatteryBank
    from vehicle_models.fleet import Fleet

    if len(fleets) == 1 and offsets[0] == 0:
        return fleets[0]
    cat = lambda name: np.concatenate([getattr(f, name) for f in fleets])  # noqa: E731
    bat = lambda name: np.concatenate([getattr(f.battery, name) for f in fleets])  # noqa: E731
    battery = BatteryBank.create(
        e_capacity_kwh=bat("e_capacity_kwh"),
        e_kwh=bat("e_kwh"),
        p_charge_max_kw=bat("p_charge_max_kw"),
        p_discharge_max_kw=bat("p_discharge_max_kw"),
        s_max_kva=bat("s_max_kva"),
        eta_charge=bat("eta_charge"),
        eta_discharge=bat("eta_discharge"),
        soc_min_frac=bat("soc_min_frac"),
        soc_max_frac=bat("soc_max_frac"),
        soc_reserve_frac=bat("soc_reserve_frac"),
    )
    first = fleets[0]
    return Fleet(
        bus=np.concatenate(
            [f.bus_of_vehicle + off for f, off in zip(fleets, offsets, strict=True)]
        ),
        arrival_s=cat("arrival_s"),
        dwell_s=cat("dwell_s"),
        e_target_kwh=cat("e_target_kwh"),
        e_trip_kwh=cat("e_trip_kwh"),
        battery=battery,
        period_s=first.period_s,
        settings=first.settings,
        policy=first.policy,
        seed=first.inverter.seed,
        ageing_interval_s=None,  # as build_fleet: seconds-long events
    )


class _Group:
    """One vectorised fleet of one or more feeders, and the per-feeder view of its vehicles."""

    def __init__(self, fleet, members: list[int]) -> None:
        self.fleet = fleet
        self.members = members  # feeder indices, in order
        self.feeder_of_bus = (np.asarray(fleet.buses) // BUS_STRIDE).astype(np.intp)
        self.feeder_of_vehicle = (np.asarray(fleet.bus_of_vehicle) // BUS_STRIDE).astype(np.intp)
        self.local_bus = np.asarray(fleet.buses) % BUS_STRIDE


class ManyFeederResponse:
    """The fleets of every feeder as one responder of
    :func:`studies.contingency_simulation.simulate_case` (``response=``).

    Parameters
    ----------
    scenario : MultiFeederScenario
    case : FleetResponse
        The fleets' behaviour.
    off : collection of int, optional
        Feeder indices whose injection change the bulk grid does not see (the feeder holds
        its pre-event dispatch as far as the frequency is concerned).
    vectorised : bool
        Step feeders with equal settings as one fleet (default) or one fleet per feeder.
    cache : dict, optional
        Shared by the runs of one study: each feeder's fleet as sampled (copied for each run,
        which then starts from the same state) and its feeder net, per behaviour.

    Notes
    -----
    ``last_delta_mw = replicas · Σ_i (P_i(t_k) − P_i,ref)``: each feeder's injection change
    since its first step, summed (the bulk grid's view; ``replicas`` is
    ``[contingency] feeder_replicas``).
    """

    def __init__(
        self,
        scenario: MultiFeederScenario,
        case: FleetResponse,
        *,
        off: frozenset[int] | set[int] = frozenset(),
        vectorised: bool = True,
        cache: dict | None = None,
    ) -> None:
        cont = scenario.contingency
        cache = {} if cache is None else cache
        self.scenario = scenario
        self.case = case
        self.grid_forming = case is FleetResponse.VSM
        self.replicas = cont.settings.feeder_replicas
        self.t0_s = cont.settings.time_of_day_h * 3600.0
        self.last_delta_mw = 0.0
        self.n_feeders = len(scenario.feeders)
        self.changes = [InjectionChange(replicas=self.replicas) for _ in range(self.n_feeders)]
        bad = sorted(i for i in off if not (isinstance(i, int) and 0 <= i < self.n_feeders))
        if bad:
            raise ScenarioError(
                f"off: {bad} are not feeder indices (0..{self.n_feeders - 1}, scenario order)"
            )
        self.seen = np.ones(self.n_feeders)
        self.seen[list(off)] = 0.0
        self.p_feeder_mw = np.zeros(self.n_feeders)
        #: each feeder's injection change seen by the bulk grid, one row per step [MW]
        self.history_mw: list[np.ndarray] = []
        self.nets: dict[int, Any] = {}
        groups: dict[Any, list[tuple[int, Any]]] = {}
        for i, entry in enumerate(scenario.feeders):
            if not entry.has_fleet:
                continue
            if (i, case) not in cache:
                settings = control_for_case(
                    entry.fleet.settings, cont.settings, case, f_nominal_hz=cont.params.f0_hz
                )
                cache[(i, case)] = build_fleet(entry.fleet, entry.feeder, entry.seed, settings)
            pristine, net = cache[(i, case)]
            fleet = copy.deepcopy(pristine)
            settings = fleet.settings
            self.nets[i] = net
            key = (
                (settings, fleet.policy, fleet.period_s, fleet.battery.thevenin is None)
                if vectorised and fleet.battery.thevenin is None
                else ("own", i)
            )
            groups.setdefault(key, []).append((i, fleet))
        self.groups: list[_Group] = []
        for members in groups.values():
            index = [i for i, _ in members]
            combined = _combined_fleet([f for _, f in members], [i * BUS_STRIDE for i in index])
            self.groups.append(_Group(combined, index))
        self.setpoints: list[np.ndarray | None] = [None] * len(self.groups)
        self.vm_pu = [np.ones(len(g.fleet.buses)) for g in self.groups]
        n_veh = [g.fleet.n_vehicles for g in self.groups]
        self.ever_tripped = [np.zeros(n, dtype=bool) for n in n_veh]
        self.p_event_kw: list[np.ndarray | None] = [None] * len(self.groups)
        self.tripped_mw = np.zeros(self.n_feeders)
        self.n_tripped = np.zeros(self.n_feeders, dtype=np.int64)
        self.p_delta_max_mw = np.zeros(self.n_feeders)
        self.e_start_kwh: float | None = None
        self.soc_start: float | None = None
        self._p_bus = [np.zeros(len(g.fleet.buses)) for g in self.groups]
        self._q_bus = [np.zeros(len(g.fleet.buses)) for g in self.groups]
        self._models: dict[int, Any] = {}
        self._next_pf_s = 0.0
        sag = cont.settings
        self.sag_window_s = None
        if sag.sag_vm_pu is not None:
            start = sag.sag_start_s if sag.sag_start_s is not None else cont.event_t_s
            self.sag_window_s = (start, start + sag.sag_duration_s)

    # -- voltages: each feeder's AC power flow every feeder_step_s, times the sag (as the
    # contingency study's single feeder)
    def _update_voltages(self, t_s: float) -> None:
        step = self.scenario.contingency.settings.feeder_step_s
        if step <= 0 or t_s + 1e-9 < self._next_pf_s:
            return
        from grids.feeder_model import FeederModel

        for i, net in self.nets.items():
            if net is None:
                continue
            model = self._models.get(i)
            if model is None:
                # one solver per feeder of the scenario, built once per process (the nets are
                # read-only here: the fleet's injection is added to the base injection)
                fd = self.scenario.feeders[i].feeder
                key = (str(fd.name), fd.load_scale, fd.ext_grid_vm_pu)
                if key not in _MODELS:
                    _MODELS[key] = FeederModel.from_net(net, validate=False)
                model = self._models[i] = _MODELS[key]
            p, q = (x.copy() for x in model.base_injection())
            for g, group in enumerate(self.groups):
                mine = group.feeder_of_bus == i
                if not mine.any():
                    continue
                pos = np.searchsorted(model.bus, group.local_bus[mine])
                p[pos] += self._p_bus[g][mine]
                q[pos] += self._q_bus[g][mine]
            result = model.solve(p, q)
            result.raise_if_failed()
            for group, vm in zip(self.groups, self.vm_pu, strict=True):
                mine = group.feeder_of_bus == i
                if mine.any():
                    vm[mine] = result.vm_pu[0, np.searchsorted(model.bus, group.local_bus[mine])]
        self._next_pf_s = t_s + step

    def step(self, *, t_s: float, dt_s: float, f_hz: float) -> None:
        """Advance every fleet over ``[t_s, t_s + dt_s)`` seeing ``f_hz`` [Hz]."""
        self._update_voltages(t_s)
        window = self.sag_window_s
        sag = window is not None and window[0] <= t_s < window[1]
        t_fleet = self.t0_s + t_s
        p_feeder = np.zeros(self.n_feeders)
        for g, group in enumerate(self.groups):
            fleet = group.fleet
            if self.setpoints[g] is None:
                head = fleet.headroom(t_s=t_fleet, dt_s=dt_s)
                self.setpoints[g] = self.scenario.contingency.settings.dispatch_frac * np.maximum(
                    head["p_max_mw"].to_numpy(dtype=float), 0.0
                )
            vm = (
                self.vm_pu[g] * float(self.scenario.contingency.settings.sag_vm_pu)
                if sag
                else (self.vm_pu[g])
            )
            res = fleet.step(
                t_s=t_fleet, dt_s=dt_s, vm_pu=vm, f_hz=f_hz, p_setpoint_mw=self.setpoints[g]
            )
            self._p_bus[g] = np.asarray(res.p_mw, dtype=float)
            self._q_bus[g] = np.asarray(res.q_mvar, dtype=float)
            p_feeder += np.bincount(
                group.feeder_of_bus, weights=self._p_bus[g], minlength=self.n_feeders
            )
            tripped = np.asarray(fleet.tripped, dtype=bool)
            newly = tripped & ~self.ever_tripped[g]
            if newly.any():
                # injection lost by the units that tripped: their pre-event output
                ref = self.p_event_kw[g] if self.p_event_kw[g] is not None else fleet.p_kw
                lost_kw = np.where(newly, np.asarray(ref, dtype=float), 0.0)
                self.tripped_mw += (
                    self.replicas
                    * np.bincount(
                        group.feeder_of_vehicle, weights=lost_kw, minlength=self.n_feeders
                    )
                    / 1000.0
                )
                self.n_tripped += np.bincount(
                    group.feeder_of_vehicle[newly], minlength=self.n_feeders
                )
                self.ever_tripped[g] |= tripped
        self.p_feeder_mw = p_feeder
        deltas = self.seen * np.array([c(p) for c, p in zip(self.changes, p_feeder, strict=True)])
        self.p_delta_max_mw = np.maximum(self.p_delta_max_mw, deltas)
        self.history_mw.append(deltas)
        self.last_delta_mw = float(deltas.sum())

    def _energy_kwh(self) -> float:
        return float(sum(np.sum(g.fleet.energy_kwh) for g in self.groups))

    @property
    def soc_mean_frac(self) -> float:
        """Mean SoC over every vehicle of every feeder [-]."""
        soc = np.concatenate([g.fleet.soc_frac for g in self.groups])
        return float(np.mean(soc))

    def mark_event(self) -> None:
        """Remember energy, SoC and each vehicle's output at the event."""
        self.e_start_kwh = self._energy_kwh()
        self.soc_start = self.soc_mean_frac
        self.p_event_kw = [np.asarray(g.fleet.p_kw, dtype=float).copy() for g in self.groups]

    def summary(self) -> dict[str, Any]:
        """The run's fleet totals (the keys of the contingency study's metrics)."""
        e_now = self._energy_kwh()
        e_start = self.e_start_kwh if self.e_start_kwh is not None else e_now
        soc_start = self.soc_start if self.soc_start is not None else self.soc_mean_frac
        return {
            "fleet_tripped_mw": float(self.tripped_mw.sum()),
            "n_vehicles_tripped": round(int(self.n_tripped.sum()) * self.replicas),
            "fleet_energy_kwh": (e_start - e_now) * self.replicas,
            "soc_change_frac": self.soc_mean_frac - soc_start,
        }

    def per_feeder(self) -> list[dict[str, Any]]:
        """One row per feeder: vehicles, tripped MW and vehicles, largest response [MW]."""
        rows = []
        n_vehicles = np.zeros(self.n_feeders, dtype=np.int64)
        for group in self.groups:
            n_vehicles += np.bincount(group.feeder_of_vehicle, minlength=self.n_feeders)
        for i, entry in enumerate(self.scenario.feeders):
            rows.append(
                {
                    "feeder": entry.label,
                    "grid": Path(str(entry.feeder.name)).name,
                    "n_vehicles": int(n_vehicles[i]),
                    "fleet_tripped_mw": float(self.tripped_mw[i]),
                    "n_vehicles_tripped": round(int(self.n_tripped[i]) * self.replicas),
                    "fleet_p_max_mw": float(self.p_delta_max_mw[i]),
                }
            )
        return rows


# ---------------------------------------------------------------------------------------------
# running


def simulate_many_feeders(
    scenario: MultiFeederScenario,
    case: FleetResponse | str,
    *,
    off: frozenset[int] | set[int] = frozenset(),
    vectorised: bool = True,
    cache: dict | None = None,
) -> tuple[CaseResult, list[dict[str, Any]], np.ndarray]:
    """One case over every feeder: the contingency's time series and metrics, one row per
    feeder (:meth:`ManyFeederResponse.per_feeder`) and each feeder's injection change over
    time.

    Parameters
    ----------
    scenario : MultiFeederScenario
    case : FleetResponse or str
    off : collection of int, optional, keyword-only
        Feeders whose injection change the bulk grid does not see (response off).
    vectorised : bool, keyword-only
        One fleet per settings group (default) or one per feeder.
    cache : dict, optional, keyword-only
        See :class:`ManyFeederResponse`.

    Returns
    -------
    (CaseResult, list of dict, numpy.ndarray)
        The last is ``(n_steps + 1, n_feeders)``: each feeder's injection change seen by the
        bulk grid [MW], on the result's time axis (the last row repeats the last step, as
        ``CaseResult.p_fleet_mw``, which is its row sum).
    """
    case = FleetResponse(case) if isinstance(case, str) else case
    response = ManyFeederResponse(scenario, case, off=off, vectorised=vectorised, cache=cache)
    result = simulate_case(scenario.contingency, case, response=response)
    history = np.array(response.history_mw).reshape(-1, response.n_feeders)
    history = np.vstack([history, history[-1:]])
    return result, response.per_feeder(), history


#: Fleets of the study run in this process (:class:`ManyFeederResponse` ``cache``).
_FLEETS: dict[tuple, Any] = {}


def _nadir_without(args: tuple) -> float:
    scenario, case, i, vectorised = args
    result, _, _ = simulate_many_feeders(
        scenario, case, off={i}, vectorised=vectorised, cache=_FLEETS
    )
    return float(result.metrics["f_nadir_hz"])


def run_multi_feeder_study(
    scenario: Mapping[str, Any] | str | Path | MultiFeederScenario,
    *,
    case: FleetResponse | str | None = None,
    attribution: bool = True,
    workers: int = 1,
    vectorised: bool = True,
    out_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Run the event over every feeder; say which feeders tripped how much and what each
    feeder's response did to the nadir.

    Parameters
    ----------
    scenario : mapping, path or MultiFeederScenario
    case : FleetResponse or str, optional, keyword-only
        The fleets' behaviour (default ``[contingency] case``, else ``droop``).
    attribution : bool, keyword-only
        Re-run once per feeder with its fleet's response off (``f_nadir_without_hz``).
    workers : int, keyword-only
        Processes for the attribution re-runs (1: in this process).
    vectorised : bool, keyword-only
        See :func:`simulate_many_feeders`.
    out_dir : path, optional, keyword-only
        Write ``report.html``, ``feeders.csv`` and the frequency plot there.

    Returns
    -------
    dict
        ``case``, ``metrics`` (the contingency's metrics of the whole system),
        ``feeders``: one row per feeder with ``feeder`` (label), ``grid``, ``n_vehicles``,
        ``fleet_tripped_mw`` [MW], ``n_vehicles_tripped``, ``fleet_p_max_mw`` [MW] (largest
        injection increase), and with attribution ``f_nadir_without_hz`` [Hz] (the nadir
        with that feeder holding its pre-event dispatch) and ``nadir_effect_hz`` [Hz]
        (``f_nadir_hz − f_nadir_without_hz``: positive when the feeder's response lifted the
        nadir, negative when its trip deepened it).
    """
    sc = load_multi_feeder_scenario(scenario)
    if case is None:
        chosen = sc.contingency.settings.case or FleetResponse.DROOP
    else:
        chosen = case if isinstance(case, FleetResponse) else parse_cases([case], path="case")[0]
    if not (isinstance(workers, int) and 1 <= workers <= 64):
        raise ScenarioError(f"workers: {workers!r} is not an integer in 1..64")
    _FLEETS.clear()  # this study's fleets only (a scenario's feeders are keyed by position)
    result, rows, history = simulate_many_feeders(sc, chosen, vectorised=vectorised, cache=_FLEETS)
    nadir = float(result.metrics["f_nadir_hz"])
    if attribution:
        with_fleet = [i for i, e in enumerate(sc.feeders) if e.has_fleet]
        jobs = [(sc, chosen, i, vectorised) for i in with_fleet]
        if workers > 1 and len(jobs) > 1:
            from concurrent.futures import ProcessPoolExecutor

            with ProcessPoolExecutor(max_workers=workers) as pool:
                without = list(pool.map(_nadir_without, jobs))
        else:
            without = [_nadir_without(job) for job in jobs]
        _FLEETS.clear()
        found = dict(zip(with_fleet, without, strict=True))
        for i, row in enumerate(rows):
            f_without = found.get(i, nadir)
            row["f_nadir_without_hz"] = f_without
            row["nadir_effect_hz"] = nadir - f_without
    out = {
        "case": chosen.value,
        "metrics": result.metrics,
        "feeders": rows,
    }
    if out_dir is not None:
        from studies.multi_feeder_report import write_multi_feeder_report

        write_multi_feeder_report(sc, result, out, history, out_dir)
    return out


__all__ = [
    "BUS_STRIDE",
    "ManyFeederResponse",
    "MultiFeederScenario",
    "load_multi_feeder_scenario",
    "run_multi_feeder_study",
    "simulate_many_feeders",
]
