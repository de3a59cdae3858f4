"""Contingency scenario: the ``[contingency]`` section, the fleet behaviours, the events.

Reads and validates a contingency scenario (every problem at once, with key paths). The
numeric settings are declared once in :data:`CONTINGENCY_PARAMS` (default, unit, range, doc)
and read with the shared validation kit (:mod:`grids.params`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from cosim.scenario import register_section
from grids.errors import ScenarioError, check_problems
from grids.frequency import SwingParameters, check_event_size
from grids.params import Param, is_number, read_params
from studies.contingency_fault import fault_problems
from studies.study_inputs import split_scenario

# The section of a scenario this study reads (the rest belongs to other studies and is ignored).
STUDY_SECTION = "contingency"
_FREQUENCY_EVENT_KINDS = {"generation_loss", "load_step"}
#: Largest number of time steps one contingency case may take (duration_s / step_s); a day at
#: 20 ms is 4.3 million steps per case and would run for many minutes without an answer.
MAX_STEPS_PER_CASE = 1_000_000


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

    Parameters
    ----------
    t_s : float
        Time of the event [s].
    kind : str
        ``"generation_loss"`` or ``"load_step"``.
    p_mw : float
        Size [MW]: generation lost, or load added.
    """

    t_s: float
    kind: str
    p_mw: float

    @property
    def p_imbalance_mw(self) -> float:
        """Injection change the event causes [MW] (a 500 MW loss gives -500)."""
        return -self.p_mw


#: Numeric keys of ``[contingency]`` (``case``, ``compare``, ``trip`` and ``stagger`` are
#: tables or case names, read beside them).
CONTINGENCY_PARAMS: tuple[Param, ...] = (
    Param(
        "feeder_replicas",
        1.0,
        unit="-",
        lo=0.0,
        lo_open=True,
        hi=1e9,
        doc="feeders like the simulated one in the bulk grid (multiplies the fleet's response)",
    ),
    Param(
        "dispatch_frac",
        0.5,
        unit="-",
        lo=0.0,
        hi=1.0,
        doc="pre-event V2G export as a fraction of the discharge headroom",
    ),
    Param(
        "feeder_step_s",
        0.0,
        unit="s",
        lo=0.0,
        hi=3600.0,
        doc="interval of the feeder AC power flow (0: no feeder solve, 1 pu at the fleet)",
    ),
    Param("sag_vm_pu", None, unit="pu", lo=0.0, hi=1.0, doc="retained voltage of a fault sag"),
    Param("sag_start_s", None, unit="s", lo=0.0, hi=1e7, doc="start of the sag (default: event)"),
    Param(
        "sag_duration_s",
        0.25,
        unit="s",
        lo=0.0,
        lo_open=True,
        hi=600.0,
        doc="duration of the sag (fault clearing time)",
    ),
    Param("time_of_day_h", 21.0, unit="h", lo=0.0, hi=24.0, doc="time of day at the start"),
)
_TABLE_KEYS = ("case", "compare", "trip", "stagger")


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
    def from_dict(
        cls, data: Mapping[str, Any], *, path: str = STUDY_SECTION
    ) -> ContingencySettings:
        """Validate the section; raise ScenarioError listing every problem.

        Parameters
        ----------
        data : mapping
            The ``[contingency]`` table.
        path : str
            Its key path (for messages).

        Returns
        -------
        ContingencySettings
        """
        problems: list[str] = []
        kwargs: dict[str, Any] = read_params(
            data, CONTINGENCY_PARAMS, path=path, problems=problems, allow_unknown=True
        )
        allowed = {p.name for p in CONTINGENCY_PARAMS} | set(_TABLE_KEYS)
        if isinstance(data, Mapping):
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
                elif key not in allowed:
                    problems.append(f"{where}: unknown key (allowed: {', '.join(allowed_list())})")
        check_problems(problems, ScenarioError, f"invalid {path} section")
        return cls(**kwargs)


def contingency_section_problems(table: Any) -> list[str]:
    """Problems of a ``[contingency]`` table (the validator registered with the scenario
    loader, so that ``v2g-cosim run`` checks the section it otherwise ignores).

    Parameters
    ----------
    table : Any
        The section as read.

    Returns
    -------
    list of str
        Every problem with its key path (empty when valid).
    """
    try:
        ContingencySettings.from_dict(table)
    except ScenarioError as error:
        return list(error.problems or [error.summary])
    return []


def allowed_list() -> list[str]:
    """Keys of ``[contingency]`` in the documented order."""
    return [*_TABLE_KEYS[:2], *(p.name for p in CONTINGENCY_PARAMS), *_TABLE_KEYS[2:]]


def parse_cases(
    value: Any, *, path: str = "--compare", problems: list[str] | None = None
) -> tuple[FleetResponse, ...]:
    """Parse ``"none,droop"`` or ``["none", "droop"]`` into :class:`FleetResponse` members.

    Parameters
    ----------
    value : str or sequence of str
        Case names.
    path : str
        Key path or option name for messages.
    problems : list of str, optional
        Collect problems here instead of raising.

    Returns
    -------
    tuple of FleetResponse
        In the order given.
    """
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
    #: the ``fault`` events (cosim.scenario.EventConfig): sags from grids.fault per bus
    faults: tuple[Any, ...] = ()

    @property
    def event_t_s(self) -> float:
        """Time of the first event [s]."""
        return min(e.t_s for e in self.events)

    @property
    def has_fleet(self) -> bool:
        """Whether the scenario has a fleet."""
        return self.fleet is not None

    @property
    def default_case(self) -> FleetResponse:
        """The case run when none is asked for."""
        if self.settings.case is not None:
            return self.settings.case
        return FleetResponse.DROOP if self.has_fleet else FleetResponse.NONE


def _event_size_problems(events: tuple[FrequencyEvent, ...], params: SwingParameters) -> list[str]:
    """A loss (or load step) larger than the system it hits is outside the linearised swing
    model (:func:`grids.frequency.check_event_size`); so is a set of events adding up to it."""
    problems = []
    for i, event in enumerate(events):
        problems += check_event_size(event.p_mw, params, key=f"events[{i}].p_mw")
    total = sum(e.p_mw for e in events)
    if len(events) > 1 and abs(total) > params.s_base_mw:
        problems.append(
            f"events: the events add up to {total:g} MW, more than frequency.s_base_mw = "
            f"{params.s_base_mw:g} MW"
        )
    return problems


def load_contingency_scenario(
    scenario: Mapping[str, Any] | str | Path,
    *,
    extra_events: Sequence[Mapping[str, Any]] = (),
) -> ContingencyScenario:
    """Read and validate a contingency scenario (dict or TOML path); every problem at once.

    Parameters
    ----------
    scenario : mapping or path
        A scenario dict or TOML file with ``[simulation]``, ``[frequency]``, ``[[events]]``
        and optionally ``[feeder]``, ``[fleet]`` and ``[contingency]``.
    extra_events : sequence of mapping, keyword-only
        ``[[events]]`` tables added to the scenario's (the command line's ``--fault``).

    Returns
    -------
    ContingencyScenario

    Raises
    ------
    ScenarioError
        Listing every problem with its key path (including an event larger than the system
        base ``frequency.s_base_mw``).

    Examples
    --------
    >>> sc = load_contingency_scenario({
    ...     "simulation": {"duration_s": 10.0, "step_s": 0.02},
    ...     "frequency": {"f0_hz": 50.0, "s_base_mw": 10000.0},
    ...     "events": [{"t_s": 1.0, "kind": "generation_loss", "p_mw": 500.0}]})
    >>> sc.events[0].p_imbalance_mw
    -500.0
    """
    from cosim.scenario import swing_parameters

    shared, own, source, problems, raw = split_scenario(
        scenario, own_section=STUDY_SECTION, extra_events=extra_events
    )
    settings = ContingencySettings()
    try:
        settings = ContingencySettings.from_dict(own)
    except ScenarioError as exc:
        problems.extend(exc.problems)
    # checks of this study, made on the raw tables so they are reported even when the shared
    # sections have problems of their own
    sim_raw = raw.get("simulation") if isinstance(raw.get("simulation"), Mapping) else {}
    step_raw = sim_raw.get("fast_step_s", sim_raw.get("step_s"))
    if is_number(step_raw) and not 0.001 <= step_raw <= 0.1:
        key = "fast_step_s" if "fast_step_s" in sim_raw else "step_s"
        problems.append(
            f"simulation.{key}: {step_raw} is outside the allowed 0.001 to 0.1 s for a "
            "frequency event (10-50 ms recommended)"
        )
    duration_raw = sim_raw.get("duration_s")
    if is_number(step_raw) and is_number(duration_raw) and step_raw > 0:
        n_steps = duration_raw / step_raw
        if n_steps > MAX_STEPS_PER_CASE:
            problems.append(
                f"simulation.duration_s: {duration_raw:g} s at {step_raw:g} s steps is "
                f"{n_steps:,.0f} steps per case, above the limit of {MAX_STEPS_PER_CASE:,} "
                "(a contingency runs its whole duration at the event step; give it the event "
                "window, e.g. duration_s = 120, and run day-long scenarios with `v2g-cosim run`)"
            )
    if "frequency" not in raw:
        problems.append("frequency: missing (a contingency needs the [frequency] section)")
    raw_events = raw.get("events") if isinstance(raw.get("events"), list) else []
    n_frequency_events = 0
    for i, ev in enumerate(raw_events):
        if not isinstance(ev, Mapping) or ev.get("kind") not in _FREQUENCY_EVENT_KINDS:
            continue
        n_frequency_events += 1
        t_raw = ev.get("t_s")
        if is_number(t_raw) and is_number(duration_raw) and t_raw >= duration_raw:
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
    params = None
    if shared is not None:
        events = tuple(
            FrequencyEvent(t_s=e.t_s, kind=e.kind.value, p_mw=e.p_mw)
            for e in shared.events
            if e.kind.value in _FREQUENCY_EVENT_KINDS
        )
        sim = shared.simulation
        step_s = sim.fast_step_s if sim.fast_step_s is not None else sim.step_s
        if shared.frequency is not None:
            params = swing_parameters(shared.frequency.params)
            problems.extend(_event_size_problems(events, params))
        if shared.has_fleet and (settings.trip or settings.stagger):
            # the trip/staggered cases apply these keys over the fleet's parsed settings:
            # checked now (names, ranges of the fleet's categories and frequency), not mid-run
            try:
                shared.fleet.inverter_settings().with_tables(
                    {"trip": settings.trip, "stagger": settings.stagger}, path=STUDY_SECTION
                )
            except ScenarioError as exc:
                problems.extend(exc.problems or [str(exc)])
        problems.extend(
            fault_problems(
                shared,
                scaled_sag=settings.sag_vm_pu is not None,
                section=STUDY_SECTION,
                raw_events=raw.get("events"),
            )
        )
    check_problems(problems, ScenarioError, f"{source}: invalid contingency scenario")
    assert shared is not None and params is not None
    return ContingencyScenario(
        params=params,
        events=events,
        duration_s=shared.simulation.duration_s,
        step_s=step_s,
        seed=shared.simulation.seed,
        settings=settings,
        fleet=shared.fleet if shared.has_fleet else None,
        feeder=shared.feeder,
        source=source,
        faults=tuple(e for e in shared.events if e.kind.value == "fault"),
    )


register_section(STUDY_SECTION, contingency_section_problems)

__all__ = [
    "ALL_CASES",
    "CONTINGENCY_PARAMS",
    "STUDY_SECTION",
    "ContingencyScenario",
    "ContingencySettings",
    "FleetResponse",
    "FrequencyEvent",
    "load_contingency_scenario",
    "parse_cases",
]
