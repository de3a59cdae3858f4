"""Contingency simulation: the direct time loop of the swing model and the fleet, per case.

Each step ``[t_k, t_k+1]`` of ``dt = simulation.step_s`` is one
:func:`vehicle_models.coupling.coupled_step` (the project's one coupled fleet/frequency step;
``docs/contingency.md`` states its order of operations): the event input at ``t_k``, the
fleet stepped with ``f(t_k)`` (grid-following) or the predicted ``f(t_k+1)`` (grid-forming,
the ``vsm`` case), then the swing model over the step with events plus
``replicas · (P_fleet − P_fleet,pre-event)``. A grid-following fleet thus responds, within the
step, to the frequency at the step's start (a zero-order hold of the measurement over one
step; the inverter's own measurement low-pass ``f_meas_tau_s`` comes on top).

Metrics come from the one definition in :mod:`grids.metrics` (nadir: sampled extremum;
RoCoF over 500 ms; 5 % settling time).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from grids.errors import ScenarioError, SimulationError
from grids.frequency import (
    SwingModel,
    frequency_validity_violation,
    rocof_initial_hz_per_s,
    steady_state_deviation_hz,
)
from grids.limits import Limit, Violation
from grids.metrics import frequency_nadir, rocof_after_event_hz_per_s, settling_time_s
from studies.contingency_fault import FaultSag, fault_model
from studies.contingency_scenario import (
    STUDY_SECTION,
    ContingencyScenario,
    ContingencySettings,
    FleetResponse,
)
from studies.study_inputs import build_fleet
from vehicle_models.coupling import InjectionChange, coupled_step, event_imbalance_mw
from vehicle_models.settings import (
    F_NOM_HZ,
    ControlFunction,
    GridMode,
    InverterSettings,
    StaggerMode,
)


@dataclass
class CaseResult:
    """Time series and metrics of one case."""

    name: str
    t_s: np.ndarray  # time since the event [s] (negative before it)
    f_hz: np.ndarray
    p_fleet_mw: np.ndarray  # fleet injection change seen by the bulk grid [MW]
    p_mech_mw: np.ndarray
    ufls_shed_mw: np.ndarray
    soc_mean_frac: np.ndarray
    metrics: dict[str, Any]


def simulate_case(
    scenario: ContingencyScenario,
    case: FleetResponse | str = FleetResponse.NONE,
    *,
    response: Any = None,
) -> CaseResult:
    """Run one case of the contingency and return its time series and metrics.

    Parameters
    ----------
    scenario : ContingencyScenario
        From :func:`load_contingency_scenario`.
    case : FleetResponse or str
        Fleet behaviour. Without a fleet every case is the bulk grid alone.
    response : object, optional
        A custom frequency responder used instead of the scenario's fleet (for tests and
        users' own controllers): ``step(*, t_s, dt_s, f_hz)`` advances it over one step,
        ``last_delta_mw`` is its injection change since the start [MW], ``grid_forming`` says
        whether it sees the predicted end-of-step frequency; optional ``soc_mean_frac``,
        ``mark_event()`` and ``summary()``.

    Notes
    -----
    Each step of ``dt = simulation.step_s`` is :func:`vehicle_models.coupling.coupled_step`:

    1. the fleet sees the frequency ``f(t_k)`` (grid-following) or the predicted ``f(t_k+1)``
       (grid-forming) and returns its per-bus injection;
    2. the swing model advances over ``[t_k, t_k+1]`` with the constant input
       ``ΔP = Σ events + replicas · (P_fleet − P_fleet,pre-event)``.

    ``f_nadir_hz``/``t_nadir_s`` (sampled extremum), ``rocof_500ms_hz_per_s`` (500 ms
    window from the event) and ``t_settle_s`` (5 % band around the quasi-steady state) are
    the definitions of :mod:`grids.metrics`; ``t_settle_s`` is NaN if the run ends before
    the frequency settles.
    ``rocof_initial_hz_per_s`` is the model's derivative right after the event,
    ``df/dt(t_e−) + (ΔP(t_e+) − ΔP(t_e−))·f0/(2 H S_base)`` (exact for the model; the closed
    form when nothing moves before the event).
    """
    case = FleetResponse(case) if isinstance(case, str) else case
    params = scenario.params
    dt_s = scenario.step_s
    n_steps = round(scenario.duration_s / dt_s)
    eps_s = 1e-9 * dt_s
    swing = SwingModel(params)
    if response is not None:
        fleet = response
    else:
        fleet = _FleetDriver.build(scenario, case) if scenario.has_fleet else None

    t_abs = np.arange(n_steps + 1) * dt_s
    f_hz = np.empty(n_steps + 1)
    p_fleet = np.zeros(n_steps + 1)
    p_mech = np.zeros(n_steps + 1)
    shed = np.zeros(n_steps + 1)
    soc = np.full(n_steps + 1, np.nan)
    f_hz[0] = swing.f_hz
    t_event = scenario.event_t_s
    u_prev = 0.0
    rocof_initial = math.nan
    event_marked = False
    t_events = [e.t_s for e in scenario.events]
    p_events = [e.p_imbalance_mw for e in scenario.events]
    for k in range(n_steps):
        t_k = t_abs[k]
        p_event_mw = event_imbalance_mw(t_events, p_events, t_k, eps_s=eps_s)
        if fleet is not None and not event_marked and t_k + eps_s >= t_event:
            event_marked = True
            if hasattr(fleet, "mark_event"):
                fleet.mark_event()
        # the model's derivative just before the event (the swing model is not advanced
        # before the coupled step below)
        rocof_before = swing.rocof_hz_per_s if k > 0 and math.isnan(rocof_initial) else 0.0
        try:
            step = coupled_step(swing, fleet, t_s=t_k, dt_s=dt_s, p_event_mw=p_event_mw)
        except SimulationError as exc:
            raise SimulationError(f"case {case.value}: {exc}") from exc
        if fleet is not None:
            p_fleet[k] = step.p_fleet_delta_mw
            soc[k] = getattr(fleet, "soc_mean_frac", math.nan)
        u_mw = step.p_imbalance_mw
        if math.isnan(rocof_initial) and t_k + eps_s >= t_event:
            # derivative just before the event plus the jump of the input at the event
            rocof_initial = rocof_before + rocof_initial_hz_per_s(params, -(u_mw - u_prev))
        u_prev = u_mw
        f_hz[k + 1] = step.f_hz
        p_mech[k + 1] = swing.p_mech_mw
        shed[k + 1] = swing.ufls_shed_mw
    if fleet is not None:
        p_fleet[-1] = p_fleet[-2]
        soc[-1] = getattr(fleet, "soc_mean_frac", math.nan)

    t_rel = t_abs - t_event
    after = t_rel >= -eps_s
    p_event_total = sum(e.p_imbalance_mw for e in scenario.events)
    nadir = frequency_nadir(t_rel, f_hz, t_event_s=0.0, under_frequency=p_event_total < 0)
    # quasi-steady state: the equilibrium of the swing model for the final net input (exact
    # for the model when the fleet has settled); the end-of-run value is reported beside it
    u_final = p_event_total + p_fleet[-1] + shed[-1]
    delta_f_steady = 0.0 if params.agc_ki_per_s else steady_state_deviation_hz(params, -u_final)
    rocof_500 = rocof_after_event_hz_per_s(t_rel, f_hz, t_event_s=0.0)
    t_settle = settling_time_s(
        t_rel, f_hz, t_event_s=0.0, f_final_hz=params.f0_hz + float(delta_f_steady)
    )
    metrics: dict[str, Any] = {
        "name": case.value,
        "f_nadir_hz": nadir.f_hz,
        "delta_f_nadir_hz": nadir.f_hz - params.f0_hz,
        "t_nadir_s": nadir.t_s,
        "rocof_initial_hz_per_s": rocof_initial,
        "rocof_500ms_hz_per_s": float(rocof_500),
        "delta_f_steady_hz": float(delta_f_steady),
        "delta_f_end_hz": float(f_hz[-1] - params.f0_hz),
        "t_settle_s": t_settle,
        "ufls_stages_triggered": int(swing.ufls_stages_tripped),
        "ufls_shed_mw": float(swing.ufls_shed_mw),
        "fleet_tripped_mw": 0.0,
        "n_vehicles_tripped": 0,
        "fleet_energy_kwh": 0.0,
        "soc_change_frac": 0.0,
        "fleet_p_max_mw": float(np.max(p_fleet)) if fleet is not None else 0.0,
        # energy of the response itself: the injection change integrated from the event on
        "fleet_response_energy_kwh": float(np.sum(p_fleet[after]) * dt_s * 1000.0 / 3600.0),
    }
    if fleet is not None and hasattr(fleet, "summary"):
        metrics.update(fleet.summary())
    metrics["violations"] = [
        v.to_dict() for v in case_violations(scenario, t_rel, f_hz, shed, metrics)
    ]
    return CaseResult(
        name=case.value,
        t_s=t_rel,
        f_hz=f_hz,
        p_fleet_mw=p_fleet,
        p_mech_mw=p_mech,
        ufls_shed_mw=shed,
        soc_mean_frac=soc,
        metrics=metrics,
    )


def control_for_case(
    fleet_settings: InverterSettings | None,
    settings: ContingencySettings,
    case: FleetResponse,
    *,
    f_nominal_hz: float = F_NOM_HZ,
) -> InverterSettings:
    """Inverter settings of one case: the fleet's parsed settings with the case's changes.

    ``none``: no frequency function; ``droop``: ``freq_watt`` on (grid-following);
    ``vsm``: grid-forming (the ``[fleet.control.vsm]`` inertia and damping), no freq-watt;
    ``trip``: no frequency function, the ``[contingency.trip]`` common threshold, simultaneous
    disconnection; ``staggered``: as ``trip`` with ``[contingency.stagger]`` (default ramp).

    Parameters
    ----------
    fleet_settings : InverterSettings or None
        The scenario's ``[fleet.control]`` as parsed once by the loader
        (:attr:`cosim.scenario.FleetConfig.settings`); None: the defaults of
        ``f_nominal_hz`` (IEEE 1547-2018 at 60 Hz, EN 50549-1 at 50 Hz).
    settings : ContingencySettings
        The ``[contingency]`` section (its ``trip`` and ``stagger`` keys).
    case : FleetResponse
        The fleet behaviour.
    f_nominal_hz : float
        System nominal frequency [Hz] (the settings were parsed for it).

    Returns
    -------
    InverterSettings
        A validated copy; the ``[contingency.trip]`` / ``[contingency.stagger]`` keys are
        checked against the standard's ranges like ``[fleet.control]`` keys.
    """
    base = fleet_settings
    if base is None:
        base = InverterSettings.defaults(f_nominal_hz=f_nominal_hz)
    elif base.f_nominal_hz != float(f_nominal_hz):
        raise ScenarioError(
            f"fleet.control: parsed for {base.f_nominal_hz:g} Hz, the system is at "
            f"{f_nominal_hz:g} Hz"
        )
    functions = set(base.functions) - {ControlFunction.FREQ_WATT}
    if case is FleetResponse.DROOP:
        functions.add(ControlFunction.FREQ_WATT)
    mode = GridMode.GRID_FORMING if case is FleetResponse.VSM else GridMode.GRID_FOLLOWING
    out = base.with_functions(functions, mode=mode)
    if case is FleetResponse.TRIP:
        out = out.with_tables({"trip": settings.trip}, path=STUDY_SECTION)
        out = replace(out, stagger=replace(out.stagger, mode=StaggerMode.SIMULTANEOUS))
    elif case is FleetResponse.STAGGERED:
        out = out.with_tables(
            {"trip": settings.trip, "stagger": settings.stagger}, path=STUDY_SECTION
        )
        if out.stagger.mode is StaggerMode.SIMULTANEOUS:
            out = replace(out, stagger=replace(out.stagger, mode=StaggerMode.RAMP))
    return out.validate(f"fleet.control (case {case.value})")


class _FleetDriver:
    """The fleet with the inverter settings of one case, per bus.

    Converts between the fleet's per-bus injection and the bulk grid's view (change since the
    pre-event dispatch, times ``feeder_replicas``) and keeps the trip/energy bookkeeping.
    """

    def __init__(self, scenario: ContingencyScenario, case: FleetResponse, fleet, net) -> None:
        self.scenario = scenario
        self.case = case
        self.fleet = fleet
        self.net = net
        self.replicas = scenario.settings.feeder_replicas
        self.grid_forming = case is FleetResponse.VSM
        self.t0_s = scenario.settings.time_of_day_h * 3600.0
        self.last_delta_mw = 0.0
        self.change = InjectionChange(replicas=self.replicas)
        self.setpoint_mw: np.ndarray | None = None
        self.vm_pu = np.ones(len(fleet.buses))
        self.e_start_kwh: float | None = None
        self.p_event_kw: np.ndarray | None = None
        self.soc_start: float | None = None
        self.ever_tripped = np.zeros(fleet.n_vehicles, dtype=bool)
        self.tripped_mw = 0.0
        self._p_bus_mw: np.ndarray | None = None
        self._q_bus_mvar: np.ndarray | None = None
        self._powerflow = None
        self._next_pf_s = 0.0
        sag = scenario.settings
        self.sag_window_s = None
        if sag.sag_vm_pu is not None:
            start = sag.sag_start_s if sag.sag_start_s is not None else scenario.event_t_s
            self.sag_window_s = (start, start + sag.sag_duration_s)
        self.faults = [
            FaultSag(event, fault_model(scenario.feeder, event)) for event in scenario.faults
        ]
        self._recover = bool(self.faults)  # a power flow is due (start, or a fault cleared)
        self.ceased_mw = 0.0

    @classmethod
    def build(cls, scenario: ContingencyScenario, case: FleetResponse) -> _FleetDriver:
        settings = control_for_case(
            scenario.fleet.settings,
            scenario.settings,
            case,
            f_nominal_hz=scenario.params.f0_hz,
        )
        fleet, net = build_fleet(scenario.fleet, scenario.feeder, scenario.seed, settings)
        return cls(scenario, case, fleet, net)

    def _feeder_state(self):
        """AC power flow of the feeder with the fleet's last injection.

        Returns the :class:`grids.feeder_model.FeederResult` and the total bus injections
        ``p_mw``, ``q_mvar`` it was solved for (the pre-fault state of a fault)."""
        from grids.feeder_model import FeederModel

        if self._powerflow is None:
            self._powerflow = FeederModel.from_net(self.net, validate=False)
            self._pf_index = np.searchsorted(self._powerflow.bus, self.fleet.buses)
        p0, q0 = self._powerflow.base_injection()
        p, q = p0.copy(), q0.copy()
        if self._p_bus_mw is not None:
            p[self._pf_index] += self._p_bus_mw
            q[self._pf_index] += self._q_bus_mvar
        result = self._powerflow.solve(p, q)
        result.raise_if_failed()
        self.vm_pu = result.vm_pu[0, self._pf_index]
        return result, p, q

    def _active_fault(self, t_s: float) -> FaultSag | None:
        for fault in self.faults:
            if fault.active(t_s):
                return fault
        return None

    def _voltages(self, t_s: float) -> np.ndarray:
        """Fleet-bus voltages: the fault calculation during a ``fault`` event, else the feeder
        AC power flow every ``feeder_step_s`` (and when a fault clears), times a scaled sag."""
        fault = self._active_fault(t_s)
        if fault is not None:
            if fault.vm_fleet_pu is None:
                # the pre-fault state: the feeder with the fleet's injection just before
                result, p, q = self._feeder_state()
                v_pre = result.vm_pu[0] * np.exp(1j * np.deg2rad(result.va_degree[0]))
                plugged = np.asarray(self.fleet.plugged, dtype=bool)
                position = np.searchsorted(self.fleet.buses, self.fleet.bus_of_vehicle)
                n_buses = len(self.fleet.buses)
                s_plugged_kva = np.bincount(
                    position,
                    weights=np.where(plugged, self.fleet.battery.s_max_kva, 0.0),
                    minlength=n_buses,
                )
                fault.apply(
                    v_pre,
                    p,
                    q,
                    fleet_buses=self.fleet.buses,
                    p_fleet_kw=self.fleet.p_kw,
                    n_plugged_per_bus=np.bincount(position, weights=plugged, minlength=n_buses),
                    s_plugged_kva=s_plugged_kva,
                )
                self._recover = True  # the voltages recover per the post-fault power flow
            return fault.vm_fleet_pu
        step = self.scenario.settings.feeder_step_s
        due = step > 0 and t_s + 1e-9 >= self._next_pf_s
        if self.net is not None and (due or self._recover):
            self._feeder_state()
            self._recover = False
            self._next_pf_s = t_s + step
        if self.sag_window_s is not None and self.sag_window_s[0] <= t_s < self.sag_window_s[1]:
            # the scaled sag (``sag_vm_pu``, no fault calculation): the pre-fault profile
            # scaled by the substation's retained voltage (documented approximation)
            return self.vm_pu * float(self.scenario.settings.sag_vm_pu)
        return self.vm_pu

    def step(self, *, t_s: float, dt_s: float, f_hz: float) -> None:
        t_fleet = self.t0_s + t_s
        if self.setpoint_mw is None:
            head = self.fleet.headroom(t_s=t_fleet, dt_s=dt_s)
            self.setpoint_mw = self.scenario.settings.dispatch_frac * np.maximum(
                head["p_max_mw"].to_numpy(dtype=float), 0.0
            )
        vm = self._voltages(t_s)
        res = self.fleet.step(
            t_s=t_fleet, dt_s=dt_s, vm_pu=vm, f_hz=f_hz, p_setpoint_mw=self.setpoint_mw
        )
        self._p_bus_mw = np.asarray(res.p_mw, dtype=float)
        self._q_bus_mvar = np.asarray(res.q_mvar, dtype=float)
        self.last_delta_mw = self.change(float(self._p_bus_mw.sum()))
        tripped = np.asarray(self.fleet.tripped, dtype=bool)
        fault = self._active_fault(t_s)
        if fault is not None:
            ceased = np.asarray(self.fleet.inverter.ceased, dtype=bool) & ~tripped
            fault.record(ceased=ceased, tripped=tripped, replicas=self.replicas)
            if abs(fault.ceased_mw) > abs(self.ceased_mw):
                self.ceased_mw = fault.ceased_mw
        newly = tripped & ~self.ever_tripped
        if newly.any():
            # injection lost by the units that tripped: their pre-event output (the last
            # output may already be zero from momentary cessation during a sag)
            p_ref_kw = self.p_event_kw if self.p_event_kw is not None else self.fleet.p_kw
            self.tripped_mw += self.replicas * float(np.asarray(p_ref_kw)[newly].sum()) / 1000.0
            self.ever_tripped |= tripped

    @property
    def soc_mean_frac(self) -> float:
        return float(np.mean(self.fleet.soc_frac))

    def mark_event(self) -> None:
        """Remember energy and SoC at the event (the energy/SoC metrics are from here on)."""
        self.e_start_kwh = float(np.sum(self.fleet.energy_kwh))
        self.soc_start = self.soc_mean_frac
        self.p_event_kw = np.asarray(self.fleet.p_kw, dtype=float).copy()

    def summary(self) -> dict[str, Any]:
        e_now = float(np.sum(self.fleet.energy_kwh))
        soc_start = self.soc_start if self.soc_start is not None else self.soc_mean_frac
        e_start = self.e_start_kwh if self.e_start_kwh is not None else e_now
        out = {
            "fleet_tripped_mw": self.tripped_mw,
            "n_vehicles_tripped": round(int(self.ever_tripped.sum()) * self.replicas),
            "fleet_energy_kwh": (e_start - e_now) * self.replicas,
            "soc_change_frac": self.soc_mean_frac - soc_start,
        }
        if self.faults:
            trip = self.fleet.settings.trip
            out["fleet_ceased_mw"] = self.ceased_mw
            out["fault_vm_min_pu"] = min(f.vm_min_pu for f in self.faults)
            out["faults"] = [f.summary(trip, replicas=self.replicas) for f in self.faults]
        return out


METRIC_KEYS = (
    "f_nadir_hz",
    "delta_f_nadir_hz",
    "t_nadir_s",
    "rocof_initial_hz_per_s",
    "delta_f_steady_hz",
    "ufls_shed_mw",
    "fleet_tripped_mw",
    "n_vehicles_tripped",
)


#: Every metric a case reports (the keys of ``CaseResult.metrics`` and of the study's JSON;
#: what a sweep may ask for).
CASE_METRIC_KEYS = (
    "name",
    "f_nadir_hz",
    "delta_f_nadir_hz",
    "t_nadir_s",
    "rocof_initial_hz_per_s",
    "rocof_500ms_hz_per_s",
    "delta_f_steady_hz",
    "delta_f_end_hz",
    "t_settle_s",
    "ufls_stages_triggered",
    "ufls_shed_mw",
    "fleet_tripped_mw",
    "n_vehicles_tripped",
    "fleet_energy_kwh",
    "soc_change_frac",
    "fleet_p_max_mw",
    "fleet_response_energy_kwh",
    "fleet_ceased_mw",
    "fault_vm_min_pu",
    "faults",
    "violations",
)


def frequency_validity_hook(
    f_hz: np.ndarray, t_s: np.ndarray, *, f0_hz: float, step_s: float
) -> Violation | None:
    """The frequency model's validity-range violation (``|f − f0| > 3 % f0``, stated in
    docs/frequency.md), from :func:`grids.frequency.frequency_validity_violation`."""
    return frequency_validity_violation(f_hz, t_s, f0_hz, step_s=step_s)


def case_violations(
    scenario: ContingencyScenario,
    t_s: np.ndarray,
    f_hz: np.ndarray,
    ufls_shed_mw: np.ndarray,
    metrics: Mapping[str, Any],
) -> list[Violation]:
    """Limits broken in one case: IEEE 1547 trips of the fleet, UFLS, model validity range.

    Parameters
    ----------
    scenario : ContingencyScenario
        The scenario (frequency parameters and step).
    t_s : numpy.ndarray
        Time since the event [s].
    f_hz : numpy.ndarray
        System frequency [Hz].
    ufls_shed_mw : numpy.ndarray
        Load shed by under-frequency load shedding so far [MW].
    metrics : mapping
        The case's metrics (``fleet_tripped_mw``, ``n_vehicles_tripped``, ``f_nadir_hz``).

    Returns
    -------
    list of Violation
    """
    out: list[Violation] = []
    step_s = scenario.step_s
    if metrics.get("n_vehicles_tripped", 0) > 0:
        out.append(
            Violation(
                limit=Limit.IEEE_1547_TRIP.value,
                element="fleet",
                quantity="p_mw",
                worst_value=float(metrics.get("fleet_tripped_mw", 0.0)),
                limit_value=0.0,
                n_elements=int(metrics["n_vehicles_tripped"]),
            )
        )
    shed = np.asarray(ufls_shed_mw, dtype=float)
    if shed.size and shed[-1] > 0:
        k = int(np.argmax(shed > 0))
        threshold = max(stage.threshold_hz for stage in scenario.params.ufls)
        out.append(
            Violation(
                limit=Limit.UFLS.value,
                element=f"{int(metrics.get('ufls_stages_triggered', 0))} UFLS stage(s)",
                quantity="f_hz",
                worst_value=float(metrics["f_nadir_hz"]),
                limit_value=float(threshold),
                first_time_s=float(t_s[k]),
                duration_s=float(t_s[-1] - t_s[k]),
            )
        )
    found = frequency_validity_hook(f_hz, t_s, f0_hz=scenario.params.f0_hz, step_s=step_s)
    if found is not None:
        out.append(found)
    return out
