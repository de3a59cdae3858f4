"""Frequency-event contingency study: how does a V2G fleet change a generation-loss event?

A generation loss (or load step) hits the bulk-grid swing model (:mod:`grids.frequency`,
engineer C) while a V2G fleet (:mod:`vehicle_models.fleet`, engineer E, with the inverter
controls of engineer D) sits behind a distribution feeder. The same event is run side by side
under five fleet behaviours (:class:`FleetResponse`):

``none``
    the fleet holds its pre-event dispatch (no frequency function, no trip in the event);
``droop``
    grid-following frequency-watt droop with a frequency-measurement low-pass (IEEE 1547
    ``freq_watt``, PLL delay ``f_meas_tau_s``);
``vsm``
    grid-forming virtual synchronous machine: emulated inertia ``h_s`` and damping ``d_pu``;
``trip``
    every unit trips at one common under-frequency threshold (a second, sudden loss);
``staggered``
    the same threshold but the fleet ramps its injection down (or spreads thresholds).

The dynamics run as a direct time loop over the physics objects (10–50 ms steps): each step
the fleet sees the frequency at the start of the step, its injection change (times
``feeder_replicas``, the number of such feeders the bulk grid holds) is the swing model's input
over the step. For grid-following units this one-step delay is physical (measurement and
control latency, documented in ``docs/contingency.md``); for the grid-forming case the study
predicts the end-of-step frequency first (a predictor step on a copy of the swing model), so
the inertial response is not delayed. Optionally the feeder's AC power flow runs at a coarser
rate (``feeder_step_s``) to give the inverters their terminal voltages.
"""

from __future__ import annotations

import copy
import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from grids.errors import ScenarioError, SimulationError, check_problems
from grids.frequency import (
    SwingModel,
    SwingParameters,
    rocof_initial_hz_per_s,
    steady_state_deviation_hz,
)

# Sections of a scenario this study reads (the rest belongs to other studies and is ignored).
_STUDY_SECTION = "contingency"
_FREQUENCY_EVENT_KINDS = {"generation_loss", "load_step"}


class FleetResponse(Enum):
    """Fleet behaviour compared in the contingency study."""

    NONE = "none"
    DROOP = "droop"
    VSM = "vsm"
    TRIP = "trip"
    STAGGERED = "staggered"


ALL_CASES: tuple[FleetResponse, ...] = tuple(FleetResponse)


@dataclass(frozen=True)
class FrequencyEvent:
    """A power event on the bulk grid.

    ``p_imbalance_mw`` is the injection change it causes (generation loss of 500 MW => -500,
    load step of +200 MW => -200), from ``t_s`` on.
    """

    t_s: float
    kind: str
    p_mw: float

    @property
    def p_imbalance_mw(self) -> float:
        return -self.p_mw


@dataclass(frozen=True)
class ContingencySettings:
    """The ``[contingency]`` section of a scenario (all optional).

    Parameters
    ----------
    case : FleetResponse or None
        The case run when the caller does not ask for a comparison (default ``droop`` with a
        fleet, ``none`` without).
    compare : tuple of FleetResponse
        Cases of the comparison when the caller gives none (default all five).
    feeder_replicas : float
        How many feeders like the simulated one the bulk grid holds; the fleet's injection
        change is multiplied by it before it enters the swing model [-].
    dispatch_frac : float
        Pre-event V2G export as a fraction of the fleet's discharge headroom [0..1]; the rest
        is headroom for the droop/VSM response.
    feeder_step_s : float
        Interval of the feeder AC power flow that gives the inverters their voltages [s];
        0 = no feeder solve (1.0 pu at every fleet bus).
    sag_vm_pu : float or None
        Fault-induced voltage sag seen on the feeder: every fleet bus sees its pre-fault
        voltage times ``sag_vm_pu`` during ``[sag_start_s, sag_start_s + sag_duration_s)``.
        None = no sag.
    sag_start_s : float or None
        Start of the sag [s] (default: the first event's time).
    sag_duration_s : float
        Duration of the sag [s] (fault clearing time).
    trip : dict
        ``[fleet.control.trip]`` keys used by the ``trip`` and ``staggered`` cases (a common
        threshold for every unit, e.g. ``uv2_v_pu = 0.5, uv2_t_s = 0.16``); the other cases
        keep the fleet's own (ride-through) trip settings.
    stagger : dict
        ``[fleet.control.stagger]`` keys of the ``staggered`` case (default
        ``mode = "ramp"``).
    time_of_day_h : float
        Time of day at the start of the run [h] (when vehicles are plugged in; default 21 h,
        evening, when home fleets are at home).
    """

    case: FleetResponse | None = None
    compare: tuple[FleetResponse, ...] = ALL_CASES
    feeder_replicas: float = 1.0
    dispatch_frac: float = 0.5
    feeder_step_s: float = 0.0
    sag_vm_pu: float | None = None
    sag_start_s: float | None = None
    sag_duration_s: float = 0.25
    trip: dict[str, Any] = field(default_factory=dict)
    stagger: dict[str, Any] = field(default_factory=lambda: {"mode": "ramp"})
    time_of_day_h: float = 21.0

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, path: str = _STUDY_SECTION):
        """Validate the section; raise ScenarioError listing every problem."""
        problems: list[str] = []
        kwargs: dict[str, Any] = {}
        numeric = {
            # key: (low, high, low allowed)
            "feeder_replicas": (0.0, 1e9, False),
            "dispatch_frac": (0.0, 1.0, True),
            "feeder_step_s": (0.0, 3600.0, True),
            "sag_vm_pu": (0.0, 1.0, True),
            "sag_start_s": (0.0, 1e7, True),
            "sag_duration_s": (0.0, 600.0, False),
            "time_of_day_h": (0.0, 24.0, True),
        }
        for key, value in data.items():
            where = f"{path}.{key}"
            if key == "compare":
                kwargs[key] = parse_cases(value, path=where, problems=problems)
            elif key == "case":
                found = parse_cases([value], path=where, problems=problems)
                kwargs[key] = found[0] if found else None
            elif key in ("trip", "stagger"):
                if not isinstance(value, Mapping):
                    problems.append(f"{where}: expected a table [{where}], got {value!r}")
                else:
                    kwargs[key] = dict(value)
            elif key in numeric:
                low, high, low_ok = numeric[key]
                if isinstance(value, bool) or not isinstance(value, int | float):
                    problems.append(f"{where}: {value!r} is not a number")
                elif not math.isfinite(value):
                    problems.append(f"{where}: {value} is not finite")
                elif value < low or (value == low and not low_ok):
                    rel = "at least" if low_ok else "above"
                    problems.append(f"{where}: {value} is below the allowed range ({rel} {low})")
                elif value > high:
                    problems.append(f"{where}: {value} is above the allowed {high}")
                else:
                    kwargs[key] = float(value)
            else:
                allowed = ", ".join(["case", "compare", *numeric, "trip", "stagger"])
                problems.append(f"{where}: unknown key (allowed: {allowed})")
        check_problems(problems, ScenarioError, f"invalid {path} section")
        return cls(**kwargs)


def parse_cases(
    value: Any, *, path: str = "--compare", problems: list[str] | None = None
) -> tuple[FleetResponse, ...]:
    """Parse ``"none,droop"`` or ``["none", "droop"]`` into :class:`FleetResponse` members."""
    own = problems is None
    problems = [] if problems is None else problems
    items = value.split(",") if isinstance(value, str) else value
    out: list[FleetResponse] = []
    if not isinstance(items, list | tuple) or not items:
        problems.append(f"{path}: {value!r} is not a non-empty list of cases")
    else:
        allowed = ", ".join(c.value for c in FleetResponse)
        for item in items:
            name = str(item).strip().lower()
            try:
                case = FleetResponse(name)
            except ValueError:
                problems.append(f"{path}: unknown case {item!r} (allowed: {allowed})")
                continue
            if case in out:
                problems.append(f"{path}: case {name!r} given twice")
            else:
                out.append(case)
    if own:
        check_problems(problems, ScenarioError, "invalid list of cases")
    return tuple(out)


@dataclass
class ContingencyScenario:
    """Everything the study needs, validated."""

    params: SwingParameters
    events: tuple[FrequencyEvent, ...]
    duration_s: float
    step_s: float
    seed: int = 0
    settings: ContingencySettings = field(default_factory=ContingencySettings)
    fleet: Any = None  # cosim.scenario.FleetConfig (None: no fleet)
    feeder: Any = None  # cosim.scenario.FeederConfig
    source: str = "<dict>"

    @property
    def event_t_s(self) -> float:
        return min(e.t_s for e in self.events)

    @property
    def has_fleet(self) -> bool:
        return self.fleet is not None

    @property
    def default_case(self) -> FleetResponse:
        if self.settings.case is not None:
            return self.settings.case
        return FleetResponse.DROOP if self.has_fleet else FleetResponse.NONE


# --------------------------------------------------------------------------------------------
# Scenario reading
# --------------------------------------------------------------------------------------------
def split_scenario(
    scenario: Mapping[str, Any] | str | Path, *, own_section: str
) -> tuple[Any, dict[str, Any], str, list[str], dict[str, Any]]:
    """Validate the shared sections with the co-simulation loader; return the study's own.

    The shared validator (:func:`cosim.scenario.validate_scenario`) accepts but does not check
    the study sections (``cosim.scenario.STUDY_SECTIONS``: ``[contingency]``,
    ``[black_start]``), so they are taken out first and validated here by the study.

    Returns
    -------
    (Scenario or None, own section dict, source name, problems, raw shared dict)
        ``Scenario`` is None when the shared sections have problems (they are in the list).
    """
    from cosim.scenario import STUDY_SECTIONS, read_toml, validate_scenario

    if isinstance(scenario, Mapping):
        raw = copy.deepcopy(dict(scenario))
        source, base_dir = "<dict>", Path.cwd()
    else:
        raw = read_toml(scenario)
        source, base_dir = str(scenario), Path(scenario).resolve().parent
    problems: list[str] = []
    own = raw.pop(own_section, {})
    for other in STUDY_SECTIONS:
        raw.pop(other, None)
    if not isinstance(own, Mapping):
        problems.append(f"{own_section}: expected a table [{own_section}], got {own!r}")
        own = {}
    shared = None
    try:
        shared = validate_scenario(raw, base_dir=base_dir)
    except ScenarioError as exc:
        problems.extend(exc.problems or [str(exc)])
    return shared, dict(own), source, problems, raw


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def load_contingency_scenario(scenario: Mapping[str, Any] | str | Path) -> ContingencyScenario:
    """Read and validate a contingency scenario (dict or TOML path); every problem at once."""
    from cosim.scenario import swing_parameters

    shared, own, source, problems, raw = split_scenario(scenario, own_section=_STUDY_SECTION)
    settings = ContingencySettings()
    try:
        settings = ContingencySettings.from_dict(own)
    except ScenarioError as exc:
        problems.extend(exc.problems)
    # checks of this study, made on the raw tables so they are reported even when the shared
    # sections have problems of their own
    sim_raw = raw.get("simulation") if isinstance(raw.get("simulation"), Mapping) else {}
    step_raw = sim_raw.get("fast_step_s", sim_raw.get("step_s"))
    if _is_number(step_raw) and not 0.001 <= step_raw <= 0.1:
        key = "fast_step_s" if "fast_step_s" in sim_raw else "step_s"
        problems.append(
            f"simulation.{key}: {step_raw} is outside the allowed 0.001 to 0.1 s for a "
            "frequency event (10-50 ms recommended)"
        )
    if "frequency" not in raw:
        problems.append("frequency: missing (a contingency needs the [frequency] section)")
    raw_events = raw.get("events") if isinstance(raw.get("events"), list) else []
    duration_raw = sim_raw.get("duration_s")
    n_frequency_events = 0
    for i, ev in enumerate(raw_events):
        if not isinstance(ev, Mapping) or ev.get("kind") not in _FREQUENCY_EVENT_KINDS:
            continue
        n_frequency_events += 1
        t_raw = ev.get("t_s")
        if _is_number(t_raw) and _is_number(duration_raw) and t_raw >= duration_raw:
            problems.append(
                f"events[{i}].t_s: {t_raw} is not before the end of the run "
                f"(simulation.duration_s = {duration_raw})"
            )
    if n_frequency_events == 0:
        problems.append(
            "events: a contingency needs at least one [[events]] table with kind = "
            "'generation_loss' or 'load_step', t_s and p_mw"
        )
    events: tuple[FrequencyEvent, ...] = ()
    if shared is not None:
        events = tuple(
            FrequencyEvent(t_s=e.t_s, kind=e.kind.value, p_mw=e.p_mw)
            for e in shared.events
            if e.kind.value in _FREQUENCY_EVENT_KINDS
        )
        sim = shared.simulation
        step_s = sim.fast_step_s if sim.fast_step_s is not None else sim.step_s
    check_problems(problems, ScenarioError, f"{source}: invalid contingency scenario")
    assert shared is not None and shared.frequency is not None
    return ContingencyScenario(
        params=swing_parameters(shared.frequency.params),
        events=events,
        duration_s=shared.simulation.duration_s,
        step_s=step_s,
        seed=shared.simulation.seed,
        settings=settings,
        fleet=shared.fleet if shared.has_fleet else None,
        feeder=shared.feeder,
        source=source,
    )


# --------------------------------------------------------------------------------------------
# Simulation
# --------------------------------------------------------------------------------------------
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


def _event_imbalance_mw(events: Sequence[FrequencyEvent], t_s: float, eps_s: float) -> float:
    return float(sum(e.p_imbalance_mw for e in events if e.t_s <= t_s + eps_s))


def _parabolic_extremum(t: np.ndarray, f: np.ndarray, k: int) -> tuple[float, float]:
    """Refine a sampled extremum at index ``k`` with the parabola through its neighbours."""
    if k <= 0 or k >= len(f) - 1:
        return float(t[k]), float(f[k])
    f0, f1, f2 = f[k - 1], f[k], f[k + 1]
    denom = f0 - 2.0 * f1 + f2
    if denom == 0.0:
        return float(t[k]), float(f1)
    shift = 0.5 * (f0 - f2) / denom  # in steps, within (-1, 1) at a sampled extremum
    dt = t[k + 1] - t[k]
    return float(t[k] + shift * dt), float(f1 - 0.25 * (f0 - f2) * shift)


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
    Each step of ``dt = simulation.step_s``:

    1. the fleet sees the frequency ``f(t_k)`` (grid-following) or the predicted ``f(t_k+1)``
       (grid-forming) and returns its per-bus injection;
    2. the swing model advances over ``[t_k, t_k+1]`` with the constant input
       ``ΔP = Σ events + replicas · (P_fleet − P_fleet,pre-event)``.

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
    rocof_pre = 0.0
    u_pre = 0.0
    u_prev = 0.0
    rocof_initial = math.nan
    event_marked = False
    for k in range(n_steps):
        t_k = t_abs[k]
        u_mw = _event_imbalance_mw(scenario.events, t_k, eps_s)
        if fleet is not None:
            if not event_marked and t_k + eps_s >= t_event:
                event_marked = True
                if hasattr(fleet, "mark_event"):
                    fleet.mark_event()
            if fleet.grid_forming:
                probe = copy.deepcopy(swing)
                probe.step(dt_s=dt_s, p_imbalance_mw=u_mw + fleet.last_delta_mw)
                f_seen = probe.f_hz
            else:
                f_seen = swing.f_hz
            fleet.step(t_s=t_k, dt_s=dt_s, f_hz=f_seen)
            if not math.isfinite(fleet.last_delta_mw):
                raise SimulationError(
                    f"case {case.value}: the fleet returned a non-finite injection at "
                    f"t = {t_k:.3f} s (after the start of the run)"
                )
            p_fleet[k] = fleet.last_delta_mw
            soc[k] = getattr(fleet, "soc_mean_frac", math.nan)
            u_mw += fleet.last_delta_mw
        if math.isnan(rocof_initial) and t_k + eps_s >= t_event:
            # derivative just before the event plus the jump of the input at the event
            rocof_pre = swing.rocof_hz_per_s if k > 0 else 0.0
            u_pre = u_prev
            rocof_initial = rocof_pre + rocof_initial_hz_per_s(params, -(u_mw - u_pre))
        swing.step(dt_s=dt_s, p_imbalance_mw=u_mw)
        u_prev = u_mw
        f_hz[k + 1] = swing.f_hz
        p_mech[k + 1] = swing.p_mech_mw
        shed[k + 1] = swing.ufls_shed_mw
    if fleet is not None:
        p_fleet[-1] = p_fleet[-2]
        soc[-1] = getattr(fleet, "soc_mean_frac", math.nan)

    t_rel = t_abs - t_event
    after = t_rel >= -eps_s
    idx_after = np.flatnonzero(after)
    p_event_total = sum(e.p_imbalance_mw for e in scenario.events)
    under = p_event_total < 0
    seg = f_hz[idx_after]
    k_ext = int(np.argmin(seg) if under else np.argmax(seg))
    t_ext, f_ext = _parabolic_extremum(t_rel[idx_after], seg, k_ext)
    # quasi-steady state: the equilibrium of the swing model for the final net input (exact
    # for the model when the fleet has settled); the end-of-run value is reported beside it
    u_final = p_event_total + p_fleet[-1] + shed[-1]
    delta_f_steady = 0.0 if params.agc_ki_per_s else steady_state_deviation_hz(params, -u_final)
    i_500 = np.searchsorted(t_rel, 0.5 - eps_s)
    rocof_500 = (f_hz[i_500] - f_hz[idx_after[0]]) / (t_rel[i_500] - t_rel[idx_after[0]])
    metrics: dict[str, Any] = {
        "name": case.value,
        "f_nadir_hz": f_ext,
        "delta_f_nadir_hz": f_ext - params.f0_hz,
        "t_nadir_s": t_ext,
        "rocof_initial_hz_per_s": rocof_initial,
        "rocof_500ms_hz_per_s": float(rocof_500),
        "delta_f_steady_hz": float(delta_f_steady),
        "delta_f_end_hz": float(f_hz[-1] - params.f0_hz),
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
    control: Mapping[str, Any], settings: ContingencySettings, case: FleetResponse
):
    """Inverter settings of one case: the fleet's ``[fleet.control]`` with the case's changes.

    ``none``: no frequency function; ``droop``: ``freq_watt`` on (grid-following);
    ``vsm``: grid-forming (the ``[fleet.control.vsm]`` inertia and damping), no freq-watt;
    ``trip``: no frequency function, the ``[contingency.trip]`` common threshold, simultaneous
    disconnection; ``staggered``: as ``trip`` with ``[contingency.stagger]`` (default ramp).
    Validated by :meth:`vehicle_models.settings.InverterSettings.from_dict` (engineer D).
    """
    from vehicle_models.settings import ControlFunction, GridMode, InverterSettings

    data = copy.deepcopy(dict(control))
    if "functions" in data and isinstance(data["functions"], list):
        functions = [str(f) for f in data["functions"]]
    else:
        functions = sorted(f.value for f in InverterSettings.defaults().functions)
    freq_watt = ControlFunction.FREQ_WATT.value
    functions = [f for f in functions if f != freq_watt]
    mode = GridMode.GRID_FOLLOWING.value
    if case is FleetResponse.DROOP:
        functions.append(freq_watt)
    elif case is FleetResponse.VSM:
        mode = GridMode.GRID_FORMING.value
    if case in (FleetResponse.TRIP, FleetResponse.STAGGERED):
        trip = dict(data.get("trip", {}) or {})
        trip.update(settings.trip)
        data["trip"] = trip
        stagger = dict(data.get("stagger", {}) or {})
        if case is FleetResponse.TRIP:
            stagger["mode"] = "simultaneous"
        else:
            stagger.update(settings.stagger)
            if stagger.get("mode", "simultaneous") == "simultaneous":
                stagger["mode"] = "ramp"
        data["stagger"] = stagger
    data["functions"] = functions
    data["mode"] = mode
    return InverterSettings.from_dict(data, path=f"fleet.control (case {case.value})")


@functools.lru_cache(maxsize=8)
def _cached_net(name: str, load_scale: float, ext_grid_vm_pu: float | None):
    """Loading a pandapower feeder takes seconds; every case of a study shares one copy."""
    from grids.powerflow import prepare_net

    return prepare_net(name, load_scale=load_scale, ext_grid_vm_pu=ext_grid_vm_pu)


def build_fleet(
    fleet_config: Any, feeder_config: Any, seed: int, settings: Any, **preset_overrides: Any
):
    """The fleet (engineer E's :class:`~vehicle_models.fleet.Fleet`) and its feeder net.

    Vehicles are sampled from the preset on ``fleet.buses`` (default: every bus with a load)
    or read from ``fleet.table``; ``preset_overrides`` are preset fields (e.g.
    ``soc_reserve_frac``) for sampled fleets.
    """
    from vehicle_models.fleet import Fleet, FleetPreset

    net = None
    if feeder_config is not None:
        net = copy.deepcopy(
            _cached_net(
                str(feeder_config.name), feeder_config.load_scale, feeder_config.ext_grid_vm_pu
            )
        )
    if fleet_config.table is not None:
        fleet = Fleet.from_table(fleet_config.table, settings=settings)
    else:
        if fleet_config.buses is not None:
            buses = np.asarray(fleet_config.buses, dtype=np.int64)
        elif net is not None:
            buses = np.unique(net.load.bus.to_numpy(dtype=np.int64))
        else:
            raise ScenarioError("fleet: a sampled fleet needs fleet.buses or a [feeder]")
        if net is not None:
            unknown = sorted(set(buses.tolist()) - set(net.bus.index.tolist()))
            if unknown:
                raise ScenarioError(f"fleet.buses: {unknown} are not buses of the feeder")
        fleet = Fleet.sample(
            int(fleet_config.n_vehicles),
            buses=buses,
            preset=FleetPreset(fleet_config.preset),
            seed=seed,
            settings=settings,
            ageing_interval_s=None,  # seconds-long event: ageing is negligible, skip its cost
            **preset_overrides,
        )
    return fleet, net


class _FleetDriver:
    """The fleet (engineer E) with the inverter settings of one case (engineer D), per bus.

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
        self.p_base_mw: float | None = None
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

    @classmethod
    def build(cls, scenario: ContingencyScenario, case: FleetResponse) -> _FleetDriver:
        settings = control_for_case(scenario.fleet.control, scenario.settings, case)
        fleet, net = build_fleet(scenario.fleet, scenario.feeder, scenario.seed, settings)
        return cls(scenario, case, fleet, net)

    def _voltages(self, t_s: float) -> np.ndarray:
        """Fleet-bus voltages: feeder AC power flow every ``feeder_step_s``, times the sag."""
        step = self.scenario.settings.feeder_step_s
        if step > 0 and self.net is not None and t_s + 1e-9 >= self._next_pf_s:
            from grids.powerflow import ACPowerFlow

            if self._powerflow is None:
                self._powerflow = ACPowerFlow(self.net)
                self._pf_index = np.searchsorted(self._powerflow.bus, self.fleet.buses)
            p0, q0 = self._powerflow.base_injection()
            p, q = p0.copy(), q0.copy()
            if self._p_bus_mw is not None:
                p[self._pf_index] += self._p_bus_mw
                q[self._pf_index] += self._q_bus_mvar
            result = self._powerflow.solve(p, q)
            result.raise_if_failed()
            self.vm_pu = result.vm_pu[0, self._pf_index]
            self._next_pf_s = t_s + step
        if self.sag_window_s is not None and self.sag_window_s[0] <= t_s < self.sag_window_s[1]:
            # during the fault the feeder voltage is set by the fault, not by the loads: the
            # pre-fault profile scaled by the substation's retained voltage (documented)
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
        total = float(self._p_bus_mw.sum())
        if self.p_base_mw is None:
            self.p_base_mw = total
        self.last_delta_mw = self.replicas * (total - self.p_base_mw)
        tripped = np.asarray(self.fleet.tripped, dtype=bool)
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
        return {
            "fleet_tripped_mw": self.tripped_mw,
            "n_vehicles_tripped": round(int(self.ever_tripped.sum()) * self.replicas),
            "fleet_energy_kwh": (e_start - e_now) * self.replicas,
            "soc_change_frac": self.soc_mean_frac - soc_start,
        }


# --------------------------------------------------------------------------------------------
# Study
# --------------------------------------------------------------------------------------------
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


def run_contingency_study(
    scenario: Mapping[str, Any] | str | Path | ContingencyScenario,
    *,
    cases: Sequence[FleetResponse | str] | str | None = None,
    out_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Run the contingency and return the JSON metrics.

    Parameters
    ----------
    scenario : dict, path or ContingencyScenario
        A scenario dict or TOML file with ``[simulation]``, ``[frequency]``, ``[[events]]``
        and optionally ``[feeder]``, ``[fleet]`` and ``[contingency]``.
    cases : sequence or comma-separated str, optional
        Cases to compare (e.g. ``"none,droop,vsm,trip,staggered"``). Without it the single
        case ``[contingency].case`` runs (default ``droop`` with a fleet, ``none`` without).
    out_dir : path, optional
        Write ``report.html``, the figures and the data behind them there.

    Returns
    -------
    dict
        Without ``cases``: the metrics of the one case (``f_nadir_hz``, ``delta_f_nadir_hz``,
        ``t_nadir_s``, ``rocof_initial_hz_per_s``, ``delta_f_steady_hz``, ``ufls_shed_mw``,
        ``fleet_tripped_mw``, ``n_vehicles_tripped`` and more). With ``cases``:
        ``{"cases": [{"name": ..., <metrics>}, ...]}`` in the order given.
    """
    if not isinstance(scenario, ContingencyScenario):
        scenario = load_contingency_scenario(scenario)
    if cases is None:
        chosen: tuple[FleetResponse, ...] = (scenario.default_case,)
    elif isinstance(cases, FleetResponse):
        chosen = (cases,)
    else:
        chosen = parse_cases(cases)
    results = [simulate_case(scenario, case) for case in chosen]
    if out_dir is not None:
        write_contingency_report(scenario, results, out_dir)
    if cases is None:
        return results[0].metrics
    return {"cases": [r.metrics for r in results]}


def results_frame(results: Sequence[CaseResult]) -> pd.DataFrame:
    """The comparison table, one row per case."""
    return pd.DataFrame([r.metrics for r in results])


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------
def timeseries_frame(results: Sequence[CaseResult]) -> pd.DataFrame:
    """Long table of the time series: one row per case and time step."""
    frames = [
        pd.DataFrame(
            {
                "case": r.name,
                "t_s": r.t_s,
                "f_hz": r.f_hz,
                "p_fleet_mw": r.p_fleet_mw,
                "p_mech_mw": r.p_mech_mw,
                "ufls_shed_mw": r.ufls_shed_mw,
                "soc_mean_frac": r.soc_mean_frac,
            }
        )
        for r in results
    ]
    return pd.concat(frames, ignore_index=True)


def frequency_performance(
    result: CaseResult, scenario: ContingencyScenario
) -> tuple[np.ndarray, np.ndarray, float]:
    """Performance curve for the resilience metrics: frequency [Hz] from the event on.

    Returns ``(t_h, f_hz, acceptable_hz)``; the acceptable level is the normal operating band
    ``f0 − resilience_band_hz`` (0.5 Hz below nominal by default, NERC's 59.5 Hz at 60 Hz).
    """
    keep = result.t_s >= -1e-9
    acceptable = scenario.params.f0_hz - 0.5
    return result.t_s[keep] / 3600.0, result.f_hz[keep], acceptable


def write_contingency_report(
    scenario: ContingencyScenario, results: Sequence[CaseResult], out_dir: str | Path
) -> Path:
    """Write ``report.html`` with the comparison table, overlay plots and resilience section."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from studies.report import Report

    params = scenario.params
    total_mw = -sum(e.p_imbalance_mw for e in scenario.events)
    report = Report("Frequency-event contingency: fleet behaviours compared")
    report.heading("Event and system")
    report.key_values(
        {
            "scenario": scenario.source,
            "event": ", ".join(
                f"{e.kind} {e.p_mw:g} MW at t = {e.t_s:g} s" for e in scenario.events
            ),
            "f0_hz": params.f0_hz,
            "s_base_mw": params.s_base_mw,
            "h_s": params.h_s,
            "d_pu": params.d_pu,
            "r_pu": params.r_pu,
            "t_gov_s": params.t_gov_s,
            "ufls_stages": len(params.ufls),
            "step_s": scenario.step_s,
            "fleet_vehicles_simulated": scenario.fleet.n_vehicles if scenario.fleet else 0,
            "feeder_replicas": scenario.settings.feeder_replicas,
            "closed_form_rocof_hz_per_s (no fleet)": rocof_initial_hz_per_s(params, total_mw),
            "closed_form_delta_f_steady_hz (no fleet)": steady_state_deviation_hz(params, total_mw),
        },
        "Event and bulk-grid parameters",
    )
    report.paragraph(
        "Each case runs the same event on the aggregate swing model; the fleet's injection "
        "change (times the number of feeder replicas) is the swing model's input each step. "
        "Grid-following responses see the frequency one step late (measurement delay); the "
        "grid-forming (VSM) response is computed on the predicted end-of-step frequency."
    )
    report.heading("Comparison")
    table = results_frame(results)
    report.table(table, "Metrics per case (t_nadir_s after the event)")

    fig, ax = plt.subplots(figsize=(8, 4))
    for r in results:
        ax.plot(r.t_s, r.f_hz, label=r.name)
    for stage in params.ufls:
        ax.axhline(stage.threshold_hz, color="red", ls="--", lw=0.8)
    ax.set_xlabel("time after the event [s]")
    ax.set_ylabel("frequency [Hz]")
    ax.legend()
    ax.grid(alpha=0.3)
    series = timeseries_frame(results)
    report.figure(fig, "contingency_frequency", "Frequency after the event, per case", data=series)

    fig, ax = plt.subplots(figsize=(8, 3.5))
    for r in results:
        ax.plot(r.t_s, r.p_fleet_mw, label=r.name)
    ax.set_xlabel("time after the event [s]")
    ax.set_ylabel("fleet injection change [MW]")
    ax.legend()
    ax.grid(alpha=0.3)
    report.figure(fig, "contingency_fleet_power", "Fleet injection change seen by the bulk grid")

    fig, ax = plt.subplots(figsize=(8, 3.5))
    for r in results:
        ax.plot(r.t_s, r.p_mech_mw, label=r.name)
    ax.set_xlabel("time after the event [s]")
    ax.set_ylabel("governor response [MW]")
    ax.legend()
    ax.grid(alpha=0.3)
    report.figure(fig, "contingency_governor", "Mechanical power change of the governors")

    _resilience_section(report, scenario, results)
    path = report.write(out_dir)
    table.to_csv(Path(out_dir) / "metrics.csv", index=False)
    return path


def _resilience_section(report, scenario: ContingencyScenario, results) -> None:
    """Resilience-trapezoid metrics (engineer C's :mod:`studies.resilience`) of the frequency.

    Performance curve: the system frequency [Hz] from the event on, in hours; acceptable level
    ``f0 − 0.5 Hz`` (the normal operating band). The table covers every case; the trapezoid
    figure shows the case with the deepest nadir.
    """
    from studies.resilience import add_resilience_section, resilience_metrics

    rows = []
    for r in results:
        t_h, perf, acceptable = frequency_performance(r, scenario)
        m = resilience_metrics(t_h, perf, acceptable=acceptable, name=f"case {r.name}")
        d = m.to_dict()
        rows.append({"case": r.name, **{k: d[k] for k in list(d)[:7]}})
    worst = min(results, key=lambda r: r.metrics["f_nadir_hz"])
    t_h, perf, acceptable = frequency_performance(worst, scenario)
    add_resilience_section(
        report,
        t_h,
        perf,
        acceptable=acceptable,
        unit="Hz",
        name="contingency_resilience",
        heading=f"Resilience (frequency as performance; trapezoid of case '{worst.name}')",
    )
    report.table(
        pd.DataFrame(rows),
        f"Resilience-trapezoid metrics of the frequency per case (Hz, h; acceptable "
        f"{acceptable:g} Hz)",
    )
