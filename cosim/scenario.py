"""Scenario files: TOML parsing, validation listing every problem, and dotted-key overrides.

A scenario is a TOML file with the sections ``[simulation]`` (required), ``[feeder]``,
``[fleet]`` (with ``[fleet.control]``), ``[frequency]``, ``[[events]]`` and ``[output]``.
:func:`load_scenario` parses and validates it and returns a frozen :class:`Scenario`;
every problem (unknown key, wrong type, value out of range, missing file) is collected with
its key path and reported at once as one :class:`~grids.errors.ScenarioError`.

The file is parsed once into typed, frozen specs: enums for every choice, ``[fleet.control]``
parsed into :class:`vehicle_models.settings.InverterSettings` (``FleetConfig.settings``) and
``[frequency]`` into :class:`grids.frequency.SwingParameters` (``FrequencyConfig.params``) by
their owners, the transformer checked by :meth:`grids.thermal.ThermalParameters.problems`.
This module declares the co-simulation keys once (:func:`simulation_params`,
:func:`feeder_params`, ...: default, unit, range, doc) and reads them with the validation kit
(:mod:`grids.params`). Whatever can be checked before a run is checked here: the fleet's buses
against the feeder, the profiles' and the fleet table's contents, one nominal frequency,
plausible event sizes. Study sections are registered by their study
(:func:`register_section`). See ``docs/scenario_reference.md``.
"""

from __future__ import annotations

import copy
import functools
import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path
from typing import Any

from cosim.attributes import RECORDED, THREE_PHASE_RECORDED
from grids.errors import ScenarioError, V2GCosimError, check_problems
from grids.params import REQUIRED, Param, is_number, read_params, unknown_keys
from grids.synchronisation import SYNC_PARAMS

#: Tolerance for "is an integer multiple of the time resolution" checks [relative].
_MULTIPLE_RTOL = 1e-9
#: Largest number of integer mosaik steps a run may have (keeps int arithmetic and memory sane).
MAX_STEPS = 10**10


class EventKind(Enum):
    """Kinds of scheduled events (``[[events]] kind``)."""

    GENERATION_LOSS = "generation_loss"
    LOAD_STEP = "load_step"
    LINE_OUTAGE = "line_outage"
    ISLAND = "island"
    RECONNECT = "reconnect"
    FAULT = "fault"


class RegulatorControl(Enum):
    """``[feeder] regulator_control`` on a three-phase feeder: the OpenDSS RegControl taps move
    in time (delay, tap delay, band: :class:`grids.regulation3ph.RegulatorTapController`) or
    stay as in the file."""

    TIME = "time"
    FIXED = "fixed"


class OutputFormat(Enum):
    """Results file format (``[output] format``)."""

    HDF5 = "hdf5"
    PARQUET = "parquet"


class Coupling(Enum):
    """How the feeder <-> fleet voltage loop is closed (``[simulation] coupling``).

    ``time_shifted`` (default): the fleet sees the voltages of the previous feeder step (a
    one-step measurement delay, where communication latency also lives). ``same_time_loop``:
    the feeder and the fleet iterate within each step (a mosaik ``world.group()`` with a weak
    connection) to the fixed point of that step, within ``loop_tolerance_pu`` and at most
    ``loop_max_iterations`` passes (see ``cosim.world.build_world``). The frequency loop is
    always time-shifted (its 10-50 ms steps are the delay of a frequency measurement).
    """

    TIME_SHIFTED = "time_shifted"
    SAME_TIME_LOOP = "same_time_loop"


class RemoteSim(Enum):
    """Which simulator runs in a separate process (``[simulation] remote``)."""

    NONE = "none"
    FLEET = "fleet"
    FEEDER = "feeder"


@dataclass(frozen=True)
class SimulationConfig:
    """``[simulation]``: clock and seed.

    ``step_s`` is the quasi-static step; ``fast_step_s`` (optional) the high-rate step used in
    windows ``window_s = [before, after]`` around each event. The mosaik time resolution is
    ``fast_step_s`` if given, else ``step_s``: one integer mosaik step is that many seconds.
    """

    duration_s: float
    step_s: float
    seed: int = 0
    start: str | None = None
    fast_step_s: float | None = None
    window_s: tuple[float, float] = (5.0, 55.0)
    coupling: Coupling = Coupling.TIME_SHIFTED
    remote: RemoteSim = RemoteSim.NONE
    loop_tolerance_pu: float = 1e-6
    loop_max_iterations: int = 50

    @property
    def time_resolution_s(self) -> float:
        """Seconds per integer mosaik step."""
        return self.fast_step_s if self.fast_step_s is not None else self.step_s

    def to_steps(self, t_s: float) -> int:
        """Convert seconds to integer mosaik steps (rounded to the nearest step)."""
        return round(t_s / self.time_resolution_s)


@dataclass(frozen=True)
class TransformerConfig:
    """``[feeder.transformer]``: the substation transformer modelled thermally (IEC 60076-7).

    ``cooling`` is a :class:`grids.thermal.CoolingMode`; ``overrides`` holds the IEC 60076-7
    parameters given in the file (``paper`` as a :class:`grids.thermal.Paper`).
    """

    rating_mva: float = 5.0
    cooling: Any = "ONAN"
    ambient_c: float = 20.0
    overrides: dict = field(default_factory=dict)


@dataclass(frozen=True)
class FeederConfig:
    """``[feeder]``: the distribution feeder and its load profile.

    ``method`` is a :class:`grids.powerflow.PowerFlowMethod` (its ``value`` is the TOML word).
    ``three_phase``: an OpenDSS (``.dss``) or embedded three-phase feeder, run on the
    three-phase engine (:mod:`cosim.phase_layout`).
    """

    name: str = "case33bw"
    method: Any = "ac"
    step_s: float | None = None
    load_profile: str | None = None
    load_column: str = "load_pu"
    ambient_column: str | None = None
    load_scale: float = 1.0
    ext_grid_vm_pu: float | None = None
    transformer: TransformerConfig = field(default_factory=TransformerConfig)
    three_phase: bool = False
    regulator_control: RegulatorControl = RegulatorControl.TIME


@dataclass(frozen=True)
class AdoptionConfig:
    """``[fleet] adoption = {share, seed, source, v2g_share}``: EVs at a share of the feeder's
    customers (declared in :data:`vehicle_models.adoption.ADOPTION_PARAMS`; ``source`` a
    :class:`vehicle_models.adoption.AdoptionSource`)."""

    share: float = 0.3
    seed: int = 0
    source: Any = "simbench"
    v2g_share: float = 0.0


@dataclass(frozen=True)
class FleetConfig:
    """``[fleet]``: the V2G fleet (sampled from a preset, or read from a table).

    ``preset`` is a :class:`vehicle_models.presets.FleetPreset`, ``policy`` a
    :class:`vehicle_models.fleet.ChargingPolicy`. On a three-phase feeder ``buses`` may name
    buses (str), ``phase_allocation`` is a :class:`vehicle_models.phases.PhaseAllocation` and
    ``charger_connection`` a :class:`vehicle_models.phases.ChargerConnection`.
    ``settings`` is the ``[fleet.control]``
    table parsed once, for the system's nominal frequency
    (:class:`vehicle_models.settings.InverterSettings`; ``None`` without the table: the
    defaults of ``f_nominal_hz``, see :meth:`inverter_settings`). Studies derive their cases
    from it (``dataclasses.replace``, :meth:`~vehicle_models.settings.InverterSettings.
    with_functions`); nothing re-reads the table.
    """

    n_vehicles: int = 0
    preset: Any = "home"
    policy: Any = "latest"
    buses: tuple[int | str, ...] | None = None
    table: str | None = None
    setpoint_profile: str | None = None
    setpoint_column: str = "p_setpoint_mw"
    latency_s: float = 0.0
    packet_loss: float = 0.0
    f_nominal_hz: float = 60.0
    settings: Any = None
    phase_allocation: Any = "round_robin"
    charger_connection: Any = "line_to_neutral"
    adoption: AdoptionConfig | None = None

    def inverter_settings(self):
        """The fleet's inverter settings: :attr:`settings`, or the defaults of
        ``f_nominal_hz`` (IEEE 1547-2018 at 60 Hz, EN 50549-1 at 50 Hz) without a
        ``[fleet.control]`` table.

        Returns
        -------
        vehicle_models.settings.InverterSettings
        """
        if self.settings is not None:
            return self.settings
        from vehicle_models.settings import InverterSettings

        return InverterSettings.defaults(f_nominal_hz=self.f_nominal_hz)


@dataclass(frozen=True)
class FrequencyConfig:
    """``[frequency]``: the bulk-grid swing model.

    ``params`` is the table parsed once (:class:`grids.frequency.SwingParameters`); ``table``
    is the table as written (the plain form a remote process or a sweep override needs);
    ``island`` the ``[frequency.island]`` keys.
    """

    params: Any
    island: dict = field(default_factory=dict)
    table: dict = field(default_factory=dict)


@dataclass(frozen=True)
class EventConfig:
    """One ``[[events]]`` entry.

    A ``fault`` event (a balanced three-phase fault on the feeder, :mod:`grids.fault`) uses
    ``bus``, ``duration_s`` (clearing time), the fault impedance ``r_fault_ohm``/
    ``x_fault_ohm`` or ``r_fault_pu``/``x_fault_pu`` (default 0: bolted) and, when the feeder's
    external grid lacks ``s_sc_max_mva``/``rx_max``, the source strength ``s_sc_mva``/``rx``.
    """

    t_s: float
    kind: EventKind
    p_mw: float = 0.0
    line: int | None = None
    bus: int | None = None
    duration_s: float = 0.0
    r_fault_ohm: float | None = None
    x_fault_ohm: float | None = None
    r_fault_pu: float | None = None
    x_fault_pu: float | None = None
    s_sc_mva: float | None = None
    rx: float | None = None

    @property
    def z_fault_ohm(self) -> complex | None:
        """Fault impedance [ohm] when given in ohm (None otherwise)."""
        if self.r_fault_pu is not None or self.x_fault_pu is not None:
            return None
        return complex(self.r_fault_ohm or 0.0, self.x_fault_ohm or 0.0)

    @property
    def z_fault_pu(self) -> complex | None:
        """Fault impedance [pu of the fault bus's base] when given in pu (None otherwise)."""
        if self.r_fault_pu is None and self.x_fault_pu is None:
            return None
        return complex(self.r_fault_pu or 0.0, self.x_fault_pu or 0.0)


@dataclass(frozen=True)
class OutputConfig:
    """``[output]``: where and how results are written."""

    format: OutputFormat = OutputFormat.HDF5
    filename: str | None = None
    flush_every: int = 1000
    record: tuple[str, ...] = ()


@dataclass(frozen=True)
class FeederEntry:
    """One feeder of the scenario with its own fleet (a ``[[feeders]]`` table, or the
    ``[feeder]``/``[fleet]`` pair of a one-feeder scenario).

    ``label`` names the feeder in results and reports (``[[feeders]] label``, default
    ``feeder<i>``); ``seed`` samples its fleet (``[[feeders]] seed``, default
    ``simulation.seed + i``: different feeders get different fleets, the first feeder of a
    scenario the fleet a one-feeder scenario would get).
    """

    label: str
    feeder: FeederConfig
    fleet: FleetConfig | None = None
    seed: int = 0

    @property
    def has_fleet(self) -> bool:
        return self.fleet is not None and bool(self.fleet.n_vehicles > 0 or self.fleet.table)


@dataclass(frozen=True)
class Scenario:
    """A validated scenario. ``raw`` is the (override-applied) dictionary it was built from.

    ``feeders`` holds every feeder with its fleet, all on the one ``[frequency]`` model (from
    ``[[feeders]]``; a one-feeder scenario has the one entry of ``[feeder]``/``[fleet]``, no
    entry without a feeder); ``feeder`` and ``fleet`` are the first one's.
    """

    simulation: SimulationConfig
    feeder: FeederConfig | None = None
    fleet: FleetConfig | None = None
    frequency: FrequencyConfig | None = None
    events: tuple[EventConfig, ...] = ()
    output: OutputConfig = field(default_factory=OutputConfig)
    raw: dict = field(default_factory=dict)
    base_dir: Path = field(default_factory=Path.cwd)
    feeders: tuple[FeederEntry, ...] = ()

    @property
    def has_fleet(self) -> bool:
        return self.fleet is not None and (self.fleet.n_vehicles > 0 or self.fleet.table)

    @property
    def many_feeders(self) -> bool:
        """Whether the scenario has more than one feeder (``[[feeders]]``)."""
        return len(self.feeders) > 1

    def event_windows_s(self) -> list[tuple[float, float]]:
        """High-rate windows ``[t - before, t + after]`` around events [s] (merged, clipped)."""
        sim = self.simulation
        if sim.fast_step_s is None:
            return []
        before, after = sim.window_s
        spans = sorted(
            (max(0.0, e.t_s - before), min(sim.duration_s, e.t_s + after)) for e in self.events
        )
        merged: list[tuple[float, float]] = []
        for lo, hi in spans:
            if merged and lo <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
            else:
                merged.append((lo, hi))
        return merged


# ---------------------------------------------------------------------------------------------
# declarations: every key of every section, once (default, unit, range, doc), read with the
# validation kit (grids.params). Functions, so that the enums of the physics packages are
# imported when a scenario is read, not when this module is.

#: Keys that are not a single value (a list or a table): (key, default, allowed, doc) rows
#: for the reference, read by hand below.
STRUCTURED_KEYS: dict[str, tuple[tuple[str, str, str, str], ...]] = {
    "simulation": (
        ("window_s", "`[5.0, 55.0]`", "[before, after], each >= 0 [s]", "high-rate window"),
    ),
    "fleet": (
        (
            "buses",
            "every bus with a load",
            "non-empty list of bus indices (bus names on a three-phase feeder)",
            "where vehicles go",
        ),
        ("control", "IEEE 1547-2018 defaults", "a table", "inverter settings"),
        ("adoption", "none", "{share, seed, source, v2g_share}", "EVs at the customers"),
    ),
    "output": (("record", "everything", "list of attribute names", "what is recorded"),),
}


@functools.cache
def simulation_params() -> tuple[Param, ...]:
    """Declared keys of ``[simulation]``."""
    return (
        Param("duration_s", REQUIRED, unit="s", lo=0.0, lo_open=True, doc="simulated time"),
        Param("step_s", REQUIRED, unit="s", lo=0.0, lo_open=True, doc="quasi-static step"),
        Param("seed", 0, kind=int, lo=0, hi=2**32 - 1, doc="random seed (fleet, packet loss)"),
        Param("start", None, kind=str, doc="ISO 8601 time of t = 0 (profiles' time axis)"),
        Param(
            "fast_step_s",
            None,
            unit="s",
            lo=0.0,
            lo_open=True,
            doc="high-rate step around events (the mosaik time resolution)",
        ),
        Param(
            "coupling",
            Coupling.TIME_SHIFTED,
            kind=Coupling,
            doc="how the feeder <-> fleet voltage loop is closed",
        ),
        Param("remote", RemoteSim.NONE, kind=RemoteSim, doc="simulator in its own process"),
        Param(
            "loop_tolerance_pu",
            1e-6,
            unit="pu",
            lo=0.0,
            lo_open=True,
            hi=0.1,
            doc="same-time loop: voltage change that ends the iteration",
        ),
        Param(
            "loop_max_iterations",
            50,
            kind=int,
            lo=1,
            hi=1000,
            doc="same-time loop: most passes per step",
        ),
    )


#: IEC 60076-7 parameters a scenario may override on the transformer (validated by
#: grids.thermal.ThermalParameters).
THERMAL_OVERRIDES = (
    ("delta_theta_or_k", "K", "top-oil rise at rated load"),
    ("g_r_k", "K", "average winding-to-oil gradient at rated load"),
    ("h", "", "hot-spot factor"),
    ("x", "", "oil exponent"),
    ("y", "", "winding exponent"),
    ("r", "", "ratio of load losses at rated current to no-load losses"),
    ("k11", "", "thermal model constant"),
    ("k21", "", "thermal model constant"),
    ("k22", "", "thermal model constant"),
    ("tau_o_min", "min", "oil time constant"),
    ("tau_w_min", "min", "winding time constant"),
)


@functools.cache
def feeder_params() -> tuple[Param, ...]:
    """Declared keys of ``[feeder]``."""
    from grids.powerflow import PowerFlowMethod

    return (
        Param(
            "name",
            "case33bw",
            kind=str,
            doc="embedded feeder or simbench:<code> (see `v2g-cosim feeders [--simbench]`)",
        ),
        Param(
            "path",
            None,
            kind=str,
            doc="pandapower JSON or OpenDSS .dss file instead of an embedded feeder",
        ),
        Param("method", PowerFlowMethod.AC, kind=PowerFlowMethod, doc="power-flow method"),
        Param("step_s", None, unit="s", lo=0.0, lo_open=True, doc="feeder step"),
        Param("load_profile", None, kind=str, doc="CSV/Parquet load multipliers"),
        Param("load_column", "load_pu", kind=str, doc="column of the load multiplier"),
        Param("ambient_column", None, kind=str, doc="column of the ambient temperature"),
        Param("load_scale", 1.0, lo=0.0, hi=10.0, doc="multiplier of every load"),
        Param("ext_grid_vm_pu", None, unit="pu", lo=0.8, hi=1.2, doc="slack voltage"),
        Param(
            "regulator_control",
            RegulatorControl.TIME,
            kind=RegulatorControl,
            doc="three-phase feeders: regulator taps move in time, or stay as in the file",
        ),
    )


@functools.cache
def transformer_params() -> tuple[Param, ...]:
    """Declared keys of ``[feeder.transformer]``."""
    from grids.thermal import CoolingMode, Paper

    return (
        Param("rating_mva", 5.0, unit="MVA", lo=0.0, lo_open=True, hi=1e4, doc="rating"),
        Param("cooling", CoolingMode.ONAN, kind=CoolingMode, doc="IEC 60076-2 cooling mode"),
        Param("ambient_c", 20.0, unit="°C", lo=-50.0, hi=60.0, doc="ambient temperature"),
        *(Param(name, None, unit=unit, doc=doc) for name, unit, doc in THERMAL_OVERRIDES),
        Param("paper", None, kind=Paper, doc="insulation paper (ageing rate)"),
    )


#: Largest fleet a scenario accepts: the vectorized fleet holds about 40 float64 arrays of this
#: length plus its recorded outputs, about 500 bytes per vehicle (2 million: about 1 GB).
MAX_VEHICLES = 2_000_000
_BYTES_PER_VEHICLE = 500


def fleet_size_problems(n_vehicles: int) -> list[str]:
    """The problem of a fleet too large for memory, with the limit and a memory estimate.

    Parameters
    ----------
    n_vehicles : int
        Vehicles to sample.

    Returns
    -------
    list of str
        One problem above :data:`MAX_VEHICLES`, else empty.
    """
    if n_vehicles <= MAX_VEHICLES:
        return []
    return [
        f"fleet.n_vehicles: {n_vehicles} is above the limit of {MAX_VEHICLES} vehicles (about "
        f"{n_vehicles * _BYTES_PER_VEHICLE / 1e9:.1f} GB of fleet state; the limit is about "
        f"{MAX_VEHICLES * _BYTES_PER_VEHICLE / 1e9:.0f} GB); split the fleet or aggregate it"
    ]


@functools.cache
def fleet_params() -> tuple[Param, ...]:
    """Declared keys of ``[fleet]``."""
    from vehicle_models.fleet import ChargingPolicy
    from vehicle_models.phases import ChargerConnection, PhaseAllocation
    from vehicle_models.presets import FleetPreset

    return (
        Param("n_vehicles", 0, kind=int, lo=0, doc=f"vehicles sampled (at most {MAX_VEHICLES:,})"),
        Param("preset", FleetPreset.HOME, kind=FleetPreset, doc="sampling preset"),
        Param("policy", ChargingPolicy.LATEST, kind=ChargingPolicy, doc="baseline charging"),
        Param("table", None, kind=str, doc="CSV/Parquet table of vehicles instead of a preset"),
        Param("setpoint_profile", None, kind=str, doc="aggregator set-points [MW] over time"),
        Param("setpoint_column", "p_setpoint_mw", kind=str, doc="column of the set-point"),
        Param("latency_s", 0.0, unit="s", lo=0.0, hi=3600.0, doc="set-point latency"),
        Param("packet_loss", 0.0, lo=0.0, hi=0.99, doc="share of measurements lost"),
        Param(
            "f_nominal_hz",
            60.0,
            unit="Hz",
            lo=45.0,
            hi=65.0,
            doc="nominal frequency (default: frequency.f0_hz)",
        ),
        Param(
            "phase_allocation",
            PhaseAllocation.ROUND_ROBIN,
            kind=PhaseAllocation,
            doc="three-phase feeder: how vehicles are put on phases",
        ),
        Param(
            "charger_connection",
            ChargerConnection.LINE_TO_NEUTRAL,
            kind=ChargerConnection,
            doc="three-phase feeder: phase, phase pair or all three phases",
        ),
    )


#: ``[frequency.island]``: the island's grid-forming fleet, needed for ``island`` events.
ISLAND_PARAMS = (
    Param("s_base_mw", None, unit="MW", lo=0.0, lo_open=True, doc="island system base"),
    Param("h_s", None, unit="s", lo=0.0, lo_open=True, doc="island inertia constant"),
    Param("d_pu", None, lo=0.0, doc="island load damping"),
    # the feeder's islanded power flow and its reconnection window (grids.island,
    # grids.synchronisation): Q-V droop of the grid-forming fleet, Table 5 overrides
    Param("q_droop_pu", None, unit="pu", lo=0.0, hi=0.5, doc="Q-V droop (default 0.05)"),
    *(replace(p, name=f"sync_{p.name}") for p in SYNC_PARAMS),
)
#: The ``[frequency.island]`` keys of the island's swing model (the others are the feeder's).
ISLAND_SWING_KEYS = ("s_base_mw", "h_s", "d_pu")

#: ``[output]``.
OUTPUT_PARAMS = (
    Param("format", OutputFormat.HDF5, kind=OutputFormat, doc="results file format"),
    Param("filename", None, kind=str, doc="results file name (default results.h5/.parquet)"),
    Param("flush_every", 1000, kind=int, lo=1, hi=10**7, doc="rows per write"),
)


def event_params(duration_s: float | None) -> tuple[Param, ...]:
    """Declared keys of one ``[[events]]`` entry (``t_s`` within the run)."""
    return (
        Param("t_s", REQUIRED, unit="s", lo=0.0, hi=duration_s, doc="time of the event"),
        Param("kind", REQUIRED, kind=EventKind, doc="what happens"),
        Param("p_mw", None, unit="MW", doc="power lost (generation_loss) or added (load_step)"),
        Param("line", None, kind=int, lo=0, doc="line index (line_outage)"),
        *FAULT_EVENT_PARAMS,
    )


#: Keys of a ``fault`` event besides ``t_s`` and ``kind``.
FAULT_EVENT_PARAMS = (
    Param("bus", None, kind=int, lo=0, doc="faulted bus, pandapower index (fault)"),
    Param(
        "duration_s",
        None,
        unit="s",
        lo=0.0,
        lo_open=True,
        hi=10.0,
        doc="fault clearing time (fault)",
    ),
    Param("r_fault_ohm", None, unit="ohm", lo=0.0, hi=1e4, doc="fault resistance (fault)"),
    Param("x_fault_ohm", None, unit="ohm", lo=0.0, hi=1e4, doc="fault reactance (fault)"),
    Param("r_fault_pu", None, unit="pu", lo=0.0, hi=100.0, doc="fault resistance (fault)"),
    Param("x_fault_pu", None, unit="pu", lo=0.0, hi=100.0, doc="fault reactance (fault)"),
    Param(
        "s_sc_mva",
        None,
        unit="MVA",
        lo=0.0,
        lo_open=True,
        hi=1e6,
        doc="short-circuit power of the external grid when the feeder lacks s_sc_max_mva (fault)",
    ),
    Param("rx", None, unit="-", lo=0.0, hi=10.0, doc="R/X of the external grid (fault)"),
)


def _read(table: Any, params, path: str, problems: list[str], extra: tuple[str, ...] = ()):
    """:func:`grids.params.read_params`, with ``extra`` keys read by the caller."""
    values = read_params(table, params, path=path, problems=problems, allow_unknown=True)
    if isinstance(table, Mapping):
        problems.extend(unknown_keys(table, [p.name for p in params] + list(extra), path=path))
    return values


def _file(base_dir: Path, value: str, key: str, problems: list[str]) -> str | None:
    path = Path(value)
    if not path.is_absolute():
        path = base_dir / path
    if not path.exists():
        problems.append(f"{key}: file {value!r} does not exist (looked for {path})")
        return None
    return str(path)


def _is_multiple(value_s: float, resolution_s: float) -> bool:
    ratio = value_s / resolution_s
    return abs(ratio - round(ratio)) <= _MULTIPLE_RTOL * max(1.0, ratio) and round(ratio) >= 1


# ---------------------------------------------------------------------------------------------
# sections


def _simulation(table: Any, problems: list[str]) -> SimulationConfig | None:
    if not isinstance(table, dict):
        problems.append("simulation: missing (required section with duration_s and step_s)")
        return None
    n_before = len(problems)
    v = _read(table, simulation_params(), "simulation", problems, extra=("window_s",))
    window = table.get("window_s")
    window_s = (5.0, 55.0)
    if window is not None:
        if (
            not isinstance(window, list)
            or len(window) != 2
            or not all(is_number(x) and math.isfinite(x) for x in window)
            or any(x < 0 for x in window)
        ):
            problems.append(
                f"simulation.window_s: {window!r} is not [seconds_before, seconds_after] (>= 0)"
            )
        else:
            window_s = (float(window[0]), float(window[1]))
    start = v["start"]
    if start is not None:
        import pandas as pd

        try:
            pd.Timestamp(start)
        except (ValueError, TypeError):
            problems.append(f"simulation.start: {start!r} is not an ISO 8601 timestamp")
    if len(problems) > n_before:
        return None
    duration_s, step_s, fast_step_s = v["duration_s"], v["step_s"], v["fast_step_s"]
    if fast_step_s is not None:
        if fast_step_s > step_s:
            problems.append(
                f"simulation.fast_step_s: {fast_step_s} is above simulation.step_s ({step_s})"
            )
        elif not _is_multiple(step_s, fast_step_s):
            problems.append(
                f"simulation.step_s: {step_s} is not an integer multiple of "
                f"simulation.fast_step_s ({fast_step_s})"
            )
    resolution = fast_step_s if fast_step_s is not None else step_s
    if duration_s / resolution > MAX_STEPS:
        problems.append(
            f"simulation.duration_s: {duration_s} s at {resolution} s steps is more than "
            f"{MAX_STEPS} steps"
        )
    if step_s > duration_s:
        problems.append(f"simulation.step_s: {step_s} is above simulation.duration_s")
    return SimulationConfig(
        duration_s=float(duration_s),
        step_s=float(step_s),
        seed=int(v["seed"]),
        start=start,
        fast_step_s=None if fast_step_s is None else float(fast_step_s),
        window_s=window_s,
        coupling=v["coupling"],
        remote=v["remote"],
        loop_tolerance_pu=float(v["loop_tolerance_pu"]),
        loop_max_iterations=int(v["loop_max_iterations"]),
    )


def _feeder(table: dict, base_dir: Path, sim: SimulationConfig | None, problems: list[str]):
    from cosim.phase_layout import is_three_phase_feeder, three_phase_names
    from grids.feeders import feeder_names

    v = _read(table, feeder_params(), "feeder", problems, extra=("transformer",))
    name, path = v["name"], v["path"]
    if path is not None:
        path = _file(base_dir, path, "feeder.path", problems)
        if "name" in table:
            problems.append("feeder.name: give either feeder.name or feeder.path, not both")
    elif name.startswith("simbench:"):  # a SimBench grid: the code is checked (close matches)
        from grids.simbench import check_simbench_code

        try:
            check_simbench_code(name)
        except V2GCosimError as error:
            problems.append(f"feeder.name: {error}")
    elif name not in feeder_names() and not is_three_phase_feeder(name):
        names = [*feeder_names(), *three_phase_names()]
        problems.append(
            f"feeder.name: {name!r} is not an embedded feeder ({', '.join(names)}); "
            "use feeder.path for a pandapower JSON or OpenDSS .dss file"
        )
    profile = v["load_profile"]
    if profile is not None:
        profile = _file(base_dir, profile, "feeder.load_profile", problems)
    if v["ambient_column"] is not None and "load_profile" not in table:
        problems.append("feeder.ambient_column: needs feeder.load_profile (the file it is in)")
    transformer_table = table.get("transformer", {})
    if not isinstance(transformer_table, dict):
        problems.append(f"feeder.transformer: expected a table, got {transformer_table!r}")
        transformer_table = {}
    t = _read(transformer_table, transformer_params(), "feeder.transformer", problems)
    step_s = v["step_s"]
    if sim is not None and step_s is not None and not _is_multiple(step_s, sim.time_resolution_s):
        problems.append(
            f"feeder.step_s: {step_s} is not an integer multiple of the time resolution "
            f"({sim.time_resolution_s} s)"
        )
    overrides = {
        name: t[name] for name, *_ in (*THERMAL_OVERRIDES, ("paper",)) if t.get(name) is not None
    }
    return FeederConfig(
        name=path if path is not None else name,
        method=v["method"],
        step_s=step_s,
        load_profile=profile,
        load_column=v["load_column"],
        ambient_column=v["ambient_column"],
        load_scale=float(v["load_scale"]),
        ext_grid_vm_pu=v["ext_grid_vm_pu"],
        transformer=TransformerConfig(
            rating_mva=float(t["rating_mva"]),
            cooling=t["cooling"],
            ambient_c=float(t["ambient_c"]),
            overrides=overrides,
        ),
        three_phase=is_three_phase_feeder(path if path is not None else name),
        regulator_control=v["regulator_control"],
    )


def _thermal_problems(cfg: TransformerConfig, problems: list[str]) -> None:
    from grids.thermal import ThermalParameters

    try:
        params = ThermalParameters.for_cooling(cfg.cooling, **cfg.overrides)
    except V2GCosimError as error:
        problems.extend(error.problems or [str(error)])
        return
    except (TypeError, ValueError) as error:
        problems.append(f"feeder.transformer: {error}")
        return
    problems.extend(params.problems("feeder.transformer"))


def _system_f0_hz(data: Mapping[str, Any]) -> Any:
    """The nominal frequency the fleet's settings are built for: ``frequency.f0_hz`` if
    given, else ``fleet.f_nominal_hz``, else 60 Hz (as written: checked by the caller)."""
    for section, key in (("frequency", "f0_hz"), ("fleet", "f_nominal_hz")):
        table = data.get(section)
        if isinstance(table, Mapping) and key in table:
            return table[key]
    return 60.0


def _fleet(table: dict, base_dir: Path, problems: list[str], *, f0_hz: Any = 60.0) -> FleetConfig:
    v = _read(table, fleet_params(), "fleet", problems, extra=("buses", "control", "adoption"))
    from vehicle_models.settings import GridCode, InverterSettings

    try:  # a system of 55 Hz has no inverter-settings preset: refused here
        GridCode.for_frequency(f0_hz, path="fleet.f_nominal_hz")
        f0_ok = True
    except ScenarioError as error:
        problems.extend(error.problems or [str(error)])
        f0_ok = False
    buses_raw = table.get("buses")
    buses = None
    if buses_raw is not None:
        # integers: bus indices; strings: bus names of a three-phase feeder (checked there)
        if (
            not isinstance(buses_raw, list)
            or not buses_raw
            or not (
                all(isinstance(b, int) and not isinstance(b, bool) for b in buses_raw)
                or all(isinstance(b, str) for b in buses_raw)
            )
        ):
            problems.append(
                f"fleet.buses: {buses_raw!r} is not a non-empty list of bus indices (integers) "
                "or, on a three-phase feeder, of bus names"
            )
        else:
            buses = tuple(b if isinstance(b, str) else int(b) for b in buses_raw)
    problems.extend(fleet_size_problems(int(v["n_vehicles"])))
    table_path = v["table"]
    if table_path is not None:
        table_path = _file(base_dir, table_path, "fleet.table", problems)
    setpoint_profile = v["setpoint_profile"]
    if setpoint_profile is not None:
        setpoint_profile = _file(base_dir, setpoint_profile, "fleet.setpoint_profile", problems)
    if "setpoint_profile" not in table:
        for key in ("latency_s", "packet_loss", "setpoint_column"):
            if key in table:
                problems.append(
                    f"fleet.{key}: applies to the set-point channel, which needs "
                    "fleet.setpoint_profile"
                )
    control = table.get("control", {})
    settings = None
    if not isinstance(control, dict):
        problems.append(f"fleet.control: expected a table, got {control!r}")
    elif control and f0_ok:
        try:  # parsed once here, for the system's frequency; simulators and studies get it
            settings = InverterSettings.from_dict(
                control, path="fleet.control", f_nominal_hz=float(f0_hz)
            )
        except ScenarioError as error:
            problems.extend(error.problems or [str(error)])
    if table.get("adoption") is not None:
        # the adoption is the fleet: its EVs, buses and chargers (cosim.adoption_fleet)
        for key in ("n_vehicles", "table", "buses", "phase_allocation", "charger_connection"):
            if key in table:
                problems.append(
                    f"fleet.{key}: not with fleet.adoption (the adopted EVs are the fleet); "
                    "give one or the other"
                )
    return FleetConfig(
        n_vehicles=int(v["n_vehicles"]),
        preset=v["preset"],
        policy=v["policy"],
        buses=buses,
        table=table_path,
        setpoint_profile=setpoint_profile,
        setpoint_column=v["setpoint_column"],
        latency_s=float(v["latency_s"]),
        packet_loss=float(v["packet_loss"]),
        f_nominal_hz=float(v["f_nominal_hz"]),
        settings=settings,
        phase_allocation=v["phase_allocation"],
        charger_connection=v["charger_connection"],
        adoption=_adoption(table.get("adoption"), problems),
    )


def _adoption_problems(adoption: AdoptionConfig, feeder: FeederConfig | None) -> list[str]:
    """An adoption needs a feeder (its loads are the customers); SimBench's EV profiles need a
    SimBench grid."""
    if feeder is None:
        return ["fleet.adoption: needs a [feeder] (the EVs go to its customers, the loads)"]
    if getattr(adoption.source, "value", adoption.source) == "simbench" and not str(
        feeder.name or ""
    ).startswith("simbench:"):
        return [
            f"fleet.adoption.source: 'simbench' takes the EV profiles of a SimBench grid, but "
            f'feeder.name is {feeder.name!r}; use feeder.name = "simbench:<code>" or '
            'source = "behaviour"'
        ]
    return []


def _adoption(table: Any, problems: list[str]) -> AdoptionConfig | None:
    """``[fleet] adoption``, read with the validation kit (every problem, with its key)."""
    if table is None:
        return None
    if not isinstance(table, Mapping):
        problems.append(
            f"fleet.adoption: expected a table such as {{share = 0.3, seed = 1, source = "
            f'"simbench"}}, got {table!r}'
        )
        return None
    from vehicle_models.adoption import ADOPTION_PARAMS

    n_before = len(problems)
    v = _read(table, ADOPTION_PARAMS, "fleet.adoption", problems)
    if len(problems) > n_before:
        return None
    return AdoptionConfig(
        share=float(v["share"]),
        seed=int(v["seed"]),
        source=v["source"],
        v2g_share=float(v["v2g_share"]),
    )


# ---------------------------------------------------------------------------------------------
# [[feeders]]: several feeders, each with its own fleet, on the one [frequency] model

#: Most ``[[feeders]]`` tables a scenario may have (each is one feeder and one fleet
#: simulator in the co-simulation).
MAX_FEEDERS = 1000
#: Keys of a ``[[feeders]]`` table besides those of ``[feeder]``.
FEEDER_ENTRY_KEYS = (
    ("label", "`feeder<i>`", "letters, digits, `_.-`, at most 64", "name in results"),
    ("seed", "simulation.seed + i", "0..2**32-1", "seed of this feeder's fleet"),
    ("fleet", "no fleet", "a table with the keys of [fleet]", "this feeder's fleet"),
)
_LABEL_RE = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
_SECTION_PATH_RE = re.compile(r"(?<![\w\].])(feeder|fleet)\.")


def _entry_path(problem: str, i: int) -> str:
    """A problem of ``[feeder]``/``[fleet]`` rewritten to the key path of ``[[feeders]]``
    table ``i`` (``fleet.n_vehicles: ...`` -> ``feeders[2].fleet.n_vehicles: ...``): each
    table is read by the same readers as the one-feeder sections."""
    return _SECTION_PATH_RE.sub(
        lambda m: f"feeders[{i}]." if m.group(1) == "feeder" else f"feeders[{i}].fleet.",
        problem,
    )


def _feeder_entries(
    data: Mapping[str, Any], base_dir: Path, sim: SimulationConfig | None, problems: list[str]
) -> tuple[FeederEntry, ...]:
    """Read ``[[feeders]]``: each table holds the keys of ``[feeder]`` plus ``label``,
    ``seed`` and a ``fleet`` sub-table with the keys of ``[fleet]``; every problem is
    reported under ``feeders[i].``."""
    items = data["feeders"]
    if "feeder" in data or "fleet" in data:
        problems.append(
            "feeders: [[feeders]] replaces [feeder] and [fleet] (give the first feeder as the "
            "first [[feeders]] table, with its fleet as feeders.fleet)"
        )
    if not isinstance(items, list) or not items or not all(isinstance(x, dict) for x in items):
        problems.append("feeders: expected a non-empty array of tables [[feeders]]")
        return ()
    if len(items) > MAX_FEEDERS:
        problems.append(f"feeders: {len(items)} tables, above the limit of {MAX_FEEDERS}")
        return ()
    frequency = data.get("frequency")
    f0_raw = frequency.get("f0_hz") if isinstance(frequency, Mapping) else None
    f0_hz = float(f0_raw) if is_number(f0_raw) and math.isfinite(f0_raw) else None
    seed0 = sim.seed if sim is not None else 0
    entries: list[FeederEntry] = []
    labels: dict[str, int] = {}
    for i, item in enumerate(items):
        local: list[str] = []
        label = item.get("label", f"feeder{i}")
        if not isinstance(label, str) or not _LABEL_RE.fullmatch(label):
            problems.append(
                f"feeders[{i}].label: {label!r} is not a label (1 to 64 letters, digits, _ . -)"
            )
            label = f"feeder{i}"
        elif label in labels:
            problems.append(f"feeders[{i}].label: {label!r} is also feeders[{labels[label]}]'s")
        labels.setdefault(label, i)
        seed = item.get("seed", seed0 + i)
        if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed <= 2**32 - 1:
            problems.append(f"feeders[{i}].seed: {seed!r} is not an integer in 0..2**32-1")
            seed = seed0 + i
        fleet_table = item.get("fleet")
        if fleet_table is not None and not isinstance(fleet_table, dict):
            problems.append(f"feeders[{i}].fleet: expected a table, got {fleet_table!r}")
            fleet_table = None
        feeder_table = {k: v for k, v in item.items() if k not in ("label", "seed", "fleet")}
        feeder = _feeder(feeder_table, base_dir, sim, local)
        feeder_ok = not local
        _thermal_problems(feeder.transformer, local)
        fleet = None
        if fleet_table is not None:
            f_entry = f0_hz if f0_hz is not None else fleet_table.get("f_nominal_hz", 60.0)
            fleet = _fleet(fleet_table, base_dir, local, f0_hz=f_entry)
            if f0_hz is not None and "f_nominal_hz" in fleet_table:
                if fleet.f_nominal_hz != f0_hz:
                    local.append(
                        f"fleet.f_nominal_hz: {fleet.f_nominal_hz:g} Hz disagrees with "
                        f"frequency.f0_hz ({f0_hz:g} Hz); one system has one nominal frequency"
                    )
            elif f0_hz is not None:
                fleet = replace(fleet, f_nominal_hz=f0_hz)
            if (
                sim is not None
                and fleet.latency_s > 0
                and not _is_multiple(fleet.latency_s, sim.time_resolution_s)
            ):
                local.append(
                    f"fleet.latency_s: {fleet.latency_s} is not an integer multiple of the "
                    f"time resolution ({sim.time_resolution_s} s)"
                )
        local.extend(_data_problems(feeder if feeder_ok else None, fleet, sim))
        problems.extend(_entry_path(p, i) for p in local)
        entries.append(FeederEntry(label=label, feeder=feeder, fleet=fleet, seed=int(seed)))
    total = sum(e.fleet.n_vehicles for e in entries if e.fleet is not None)
    if len(entries) > 1:
        too_many = fleet_size_problems(total)
        problems.extend(p.replace("fleet.n_vehicles", "feeders (all fleets)") for p in too_many)
    return tuple(entries)


def _many_feeder_problems(
    entries: tuple[FeederEntry, ...],
    events: tuple[EventConfig, ...],
    sim: SimulationConfig | None,
) -> list[str]:
    """What several feeders on one frequency do not support (yet), said as such."""
    if len(entries) < 2:
        return []
    problems = []
    for kind in (EventKind.LINE_OUTAGE, EventKind.ISLAND, EventKind.RECONNECT, EventKind.FAULT):
        if any(e.kind is kind for e in events):
            problems.append(
                f"events: {kind.value!r} with several [[feeders]] (the event names no feeder; "
                "run that feeder alone)"
            )
    if sim is not None and sim.coupling is Coupling.SAME_TIME_LOOP:
        problems.append(
            "simulation.coupling: 'same_time_loop' with several [[feeders]] (use 'time_shifted')"
        )
    for i, entry in enumerate(entries):
        if entry.fleet is not None and entry.fleet.setpoint_profile is not None:
            problems.append(
                f"feeders[{i}].fleet.setpoint_profile: aggregator set-points with several "
                "[[feeders]] are not supported (run that feeder alone)"
            )
    return problems


def _frequency(table: dict, problems: list[str]) -> FrequencyConfig:
    # The swing parameters are declared and validated by their owner
    # (grids.frequency.SwingParameters); only the sub-table [frequency.island] is read here.
    params = {k: val for k, val in table.items() if k != "island"}
    island_raw = table.get("island", {})
    island: dict[str, float] = {}
    if not isinstance(island_raw, dict):
        problems.append(f"frequency.island: expected a table, got {island_raw!r}")
    else:
        values = read_params(island_raw, ISLAND_PARAMS, path="frequency.island", problems=problems)
        island = {  # the swing model's keys (the feeder reads its own from the table)
            k: float(val) for k, val in values.items() if val is not None and k in ISLAND_SWING_KEYS
        }
    swing = None
    try:
        swing = swing_parameters(params)
    except ScenarioError as error:
        problems.extend(error.problems or [str(error)])
    return FrequencyConfig(params=swing, island=island, table=copy.deepcopy(params))


def swing_parameters(params: Any):
    """:class:`grids.frequency.SwingParameters` of a ``[frequency]`` table (or the parsed
    object itself, as :attr:`FrequencyConfig.params` holds it).

    Raises
    ------
    ScenarioError
        Listing every problem with its key path (``frequency.h_s: ...``).
    """
    from grids.frequency import SwingParameters

    if isinstance(params, SwingParameters):
        return params
    return SwingParameters.from_dict(params, path="frequency")


def _events(
    items: Any,
    sim: SimulationConfig | None,
    has_frequency: bool,
    has_feeder: bool,
    problems: list[str],
) -> tuple[EventConfig, ...]:
    if items is None:
        return ()
    if not isinstance(items, list):
        problems.append("events: expected an array of tables [[events]]")
        return ()
    declared = event_params(sim.duration_s if sim is not None else None)
    events = []
    for i, item in enumerate(items):
        path = f"events[{i}]"
        if not isinstance(item, dict):
            problems.append(f"{path}: expected a table")
            continue
        n_before = len(problems)
        v = read_params(item, declared, path=path, problems=problems)
        kind, p_mw, line = v["kind"], v["p_mw"], v["line"]
        if kind in (EventKind.GENERATION_LOSS, EventKind.LOAD_STEP):
            if "p_mw" not in item:
                problems.append(f"{path}.p_mw: missing (required for {kind.value!r})")
            elif p_mw is None:
                pass  # rejected above (not a finite number)
            elif kind is EventKind.GENERATION_LOSS and p_mw <= 0:
                problems.append(f"{path}.p_mw: {p_mw:g} is not a generation loss (expected > 0)")
            elif kind is EventKind.LOAD_STEP and p_mw == 0:
                # a negative step is a load drop: an over-frequency event
                problems.append(f"{path}.p_mw: 0 is not a load step (expected a nonzero MW value)")
            if not has_frequency:
                problems.append(f"{path}.kind: {kind.value!r} needs a [frequency] section")
        if kind is EventKind.LINE_OUTAGE:
            if "line" not in item:
                problems.append(f"{path}.line: missing (required for 'line_outage')")
            if not has_feeder:
                problems.append(f"{path}.kind: 'line_outage' needs a [feeder] section")
        if kind in (EventKind.ISLAND, EventKind.RECONNECT) and not has_frequency:
            problems.append(f"{path}.kind: {kind.value!r} needs a [frequency] section")
        fault_keys = [p.name for p in FAULT_EVENT_PARAMS]
        if kind is EventKind.FAULT:
            problems.extend(_fault_event_problems(item, path, has_feeder))
        elif kind is not None:
            problems.extend(
                f"{path}.{key}: only a 'fault' event takes it" for key in fault_keys if key in item
            )
        if len(problems) == n_before:
            fault = {key: v[key] for key in fault_keys if v[key] is not None}
            events.append(
                EventConfig(
                    t_s=float(v["t_s"]), kind=kind, p_mw=float(p_mw or 0.0), line=line, **fault
                )
            )
    events = sorted(events, key=lambda e: e.t_s)
    problems.extend(_faults_in_island(events))
    return tuple(events)


def _faults_in_island(events: list[EventConfig]) -> list[str]:
    """A fault while the feeder is islanded (between an ``island`` and the next ``reconnect``)
    has no source impedance to be computed with (grids/fault.py needs the external grid)."""
    problems: list[str] = []
    islanded_since: float | None = None
    for event in events:
        if event.kind is EventKind.ISLAND:
            islanded_since = event.t_s if islanded_since is None else islanded_since
        elif event.kind is EventKind.RECONNECT:
            islanded_since = None
        elif event.kind is EventKind.FAULT and islanded_since is not None:
            problems.append(
                f"events: the fault at t = {event.t_s:g} s (bus {event.bus}) falls in the island "
                f"from t = {islanded_since:g} s; a fault calculation needs the external grid's "
                "source, so faults are modelled on the connected feeder only"
            )
    return problems


def _fault_event_problems(item: dict, path: str, has_feeder: bool) -> list[str]:
    """What a ``fault`` event needs besides its declared ranges: a feeder, the bus, the
    clearing time, the impedance in one unit system only."""
    problems = []
    if not has_feeder:
        problems.append(f"{path}.kind: 'fault' needs a [feeder] section")
    for key in ("bus", "duration_s"):
        if key not in item:
            problems.append(f"{path}.{key}: missing (required for 'fault')")
    ohm = [k for k in ("r_fault_ohm", "x_fault_ohm") if k in item]
    pu = [k for k in ("r_fault_pu", "x_fault_pu") if k in item]
    if ohm and pu:
        problems.append(
            f"{path}: give the fault impedance in ohm ({', '.join(ohm)}) or in pu "
            f"({', '.join(pu)}), not both"
        )
    if "p_mw" in item or "line" in item:
        problems.append(f"{path}: a 'fault' event takes no p_mw or line")
    return problems


def _output(table: dict, problems: list[str]) -> OutputConfig:
    v = _read(table, OUTPUT_PARAMS, "output", problems, extra=("record",))
    filename = v["filename"]
    if filename is not None and ("/" in filename or "\\" in filename or filename in (".", "..")):
        problems.append(f"output.filename: {filename!r} must be a plain file name (no directory)")
    record_raw = table.get("record")
    record: tuple[str, ...] = ()
    if record_raw is not None:
        if not isinstance(record_raw, list) or not all(isinstance(x, str) for x in record_raw):
            problems.append(f"output.record: {record_raw!r} is not a list of attribute names")
        else:
            record = tuple(record_raw)
    return OutputConfig(
        format=v["format"], filename=filename, flush_every=int(v["flush_every"]), record=record
    )


# ---------------------------------------------------------------------------------------------
# sections of the studies: each study registers its own


_SECTIONS = ("simulation", "feeder", "fleet", "feeders", "frequency", "events", "output")
#: Study sections by name -> validator (``validator(table) -> list of problems``, or None).
_STUDY_SECTIONS: dict[str, Any] = {}


def register_section(name: str, validator: Any = None) -> None:
    """Declare a study's own TOML section (called by the study module at import).

    A plain co-simulation run accepts a registered section and ignores it, so that one scenario
    file serves both ``v2g-cosim run`` and the study's command; the study validates it.

    Parameters
    ----------
    name : str
        The section (``"contingency"``).
    validator : callable, optional
        ``validator(table) -> list of problems`` (key paths included), run by
        :func:`validate_scenario` when the section is present; ``None`` if the study validates
        the section itself.

    Raises
    ------
    ValueError
        ``name`` is one of the co-simulation's own sections.
    """
    if name in _SECTIONS:
        raise ValueError(f"{name!r} is a section of the co-simulation itself")
    _STUDY_SECTIONS[name] = validator


def study_sections() -> tuple[str, ...]:
    """Names of the registered study sections."""
    return tuple(_STUDY_SECTIONS)


def validate_scenario(data: Mapping[str, Any], *, base_dir: str | Path | None = None) -> Scenario:
    """Validate a scenario dictionary (as parsed from TOML) and build a :class:`Scenario`.

    Raises
    ------
    ScenarioError
        Listing every problem with its key path.
    """
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    problems: list[str] = []
    if not isinstance(data, Mapping):
        raise ScenarioError(f"scenario: expected a table of sections, got {type(data).__name__}")
    for key in data:
        if key not in _SECTIONS and key not in _STUDY_SECTIONS:
            allowed = ", ".join(_SECTIONS + study_sections())
            problems.append(
                f"{key}: unknown section (allowed: {allowed}; a study's own section is "
                "accepted once its study module is imported, as the CLI does)"
            )
        elif key in _STUDY_SECTIONS and _STUDY_SECTIONS[key] is not None:
            problems.extend(_STUDY_SECTIONS[key](data[key]))
    for key in ("feeder", "fleet", "frequency", "output"):
        if key in data and not isinstance(data[key], dict):
            problems.append(f"{key}: expected a table [{key}], got {data[key]!r}")
    sim = _simulation(data.get("simulation"), problems)
    entries: tuple[FeederEntry, ...] = ()
    if "feeders" in data:
        entries = _feeder_entries(data, base, sim, problems)
    n_before_feeder = len(problems)
    feeder = (
        _feeder(data["feeder"], base, sim, problems)
        if isinstance(data.get("feeder"), dict)
        else None
    )
    feeder_ok = feeder is not None and len(problems) == n_before_feeder
    if feeder is not None:
        _thermal_problems(feeder.transformer, problems)
    fleet = (
        _fleet(data["fleet"], base, problems, f0_hz=_system_f0_hz(data))
        if isinstance(data.get("fleet"), dict)
        else None
    )
    if (
        fleet is not None
        and fleet.n_vehicles > 0
        and not fleet.table
        and feeder is None
        and fleet.buses is None
    ):
        # without a feeder the fleet sees 1.0 pu everywhere (frequency-response studies)
        problems.append("fleet.buses: needed without a [feeder] (the buses to put vehicles on)")
    if fleet is not None and fleet.adoption is not None:
        problems.extend(_adoption_problems(fleet.adoption, feeder))
    frequency = (
        _frequency(data["frequency"], problems) if isinstance(data.get("frequency"), dict) else None
    )
    has_feeder = feeder is not None or bool(entries)
    events = _events(data.get("events"), sim, frequency is not None, has_feeder, problems)
    if entries:
        problems.extend(_many_feeder_problems(entries, events, sim))
        feeder, fleet = entries[0].feeder, entries[0].fleet
    output = _output(data["output"] if isinstance(data.get("output"), dict) else {}, problems)
    if (
        sim is not None
        and sim.remote is RemoteSim.FLEET
        and not (fleet is not None and (fleet.n_vehicles > 0 or fleet.table or fleet.adoption))
        and not any(e.has_fleet for e in entries)
    ):
        problems.append("simulation.remote: 'fleet' but the scenario has no fleet")
    if any(e.kind is EventKind.ISLAND for e in events) and frequency is not None:
        missing = [k for k in ("s_base_mw", "h_s", "d_pu") if k not in frequency.island]
        if missing:
            problems.append(
                f"frequency.island: {', '.join(missing)} missing (the island's grid-forming "
                "fleet, needed for 'island' events)"
            )
    if output.record:
        known = {a for attrs in RECORDED.values() for a in attrs} | set(THREE_PHASE_RECORDED)
        if feeder is not None:
            known |= {feeder.load_column, feeder.ambient_column or ""}
        for entry in entries[1:]:
            known |= {entry.feeder.load_column, entry.feeder.ambient_column or ""}
        if fleet is not None and fleet.setpoint_profile:
            known.add(fleet.setpoint_column)
        for name in output.record:
            if name not in known:
                problems.append(
                    f"output.record: {name!r} is not a recorded attribute "
                    f"(known: {', '.join(sorted(a for a in known if a))})"
                )
    if sim is not None and sim.remote is RemoteSim.FEEDER and feeder is None:
        problems.append("simulation.remote: 'feeder' but the scenario has no [feeder]")
    if sim is not None and sim.coupling is Coupling.SAME_TIME_LOOP:
        has_fleet = fleet is not None and (fleet.n_vehicles > 0 or fleet.table or fleet.adoption)
        if feeder is None or not has_fleet:
            problems.append(
                "simulation.coupling: 'same_time_loop' needs a [feeder] and a [fleet] "
                "(it iterates the feeder's voltages and the fleet's injections within a step)"
            )
    if (
        sim is not None
        and fleet is not None
        and fleet.latency_s > 0
        and not _is_multiple(fleet.latency_s, sim.time_resolution_s)
    ):
        problems.append(
            f"fleet.latency_s: {fleet.latency_s} is not an integer multiple of the time "
            f"resolution ({sim.time_resolution_s} s)"
        )
    frequency_f0_hz = None
    if frequency is not None:
        swing = _swing_or_none(frequency.params)
        if swing is not None:
            frequency_f0_hz = float(swing.f0_hz)
            problems.extend(_event_size_problems(data.get("events"), events, swing))
    if fleet is not None and frequency_f0_hz is not None and not entries:
        fleet_table = data["fleet"]
        if "f_nominal_hz" in fleet_table and fleet.f_nominal_hz != frequency_f0_hz:
            problems.append(
                f"fleet.f_nominal_hz: {fleet.f_nominal_hz:g} Hz disagrees with frequency.f0_hz "
                f"({frequency_f0_hz:g} Hz); one system has one nominal frequency (leave "
                "fleet.f_nominal_hz out to follow [frequency])"
            )
        elif "f_nominal_hz" not in fleet_table:
            fleet = replace(fleet, f_nominal_hz=frequency_f0_hz)
    if feeder_ok or feeder is None:  # three-phase feeders: buses, phases, engine options
        from cosim.phase_layout import three_phase_problems

        problems.extend(
            three_phase_problems(
                feeder,
                fleet,
                raw_feeder=data.get("feeder") or {},
                raw_fleet=data.get("fleet") if isinstance(data.get("fleet"), dict) else None,
                events=events,
            )
        )
    if feeder is not None and feeder.three_phase and any(e.kind is EventKind.FAULT for e in events):
        problems.append(
            "events: 'fault' is not available on a three-phase feeder (the fault calculation, "
            "grids/fault.py, works on the balanced pandapower feeders)"
        )
    if not entries:  # each [[feeders]] entry was checked with its own key path
        problems.extend(_data_problems(feeder if feeder_ok else None, fleet, sim))
    check_problems(problems, ScenarioError, "invalid scenario")
    assert sim is not None
    if not entries and feeder is not None:
        entries = (FeederEntry(label="feeder0", feeder=feeder, fleet=fleet, seed=sim.seed),)
    return Scenario(
        simulation=sim,
        feeder=feeder,
        fleet=fleet,
        frequency=frequency,
        events=events,
        output=output,
        raw=copy.deepcopy(dict(data)),
        base_dir=base,
        feeders=entries,
    )


def _swing_or_none(params: Any):
    try:
        return swing_parameters(params)
    except ScenarioError:
        return None  # its problems are already listed


def _event_size_problems(items: Any, events: tuple[EventConfig, ...], swing) -> list[str]:
    """Power events larger than the system they hit (:func:`grids.frequency.check_event_size`:
    the linearised swing model is not valid there)."""
    from grids.frequency import check_event_size

    problems: list[str] = []
    if not isinstance(items, list):
        return problems
    for i, item in enumerate(items):
        if not isinstance(item, dict) or item.get("kind") not in (
            EventKind.GENERATION_LOSS.value,
            EventKind.LOAD_STEP.value,
        ):
            continue
        p_mw = item.get("p_mw")
        if is_number(p_mw) and math.isfinite(p_mw):  # other values are refused by the reader
            problems.extend(check_event_size(p_mw, swing, key=f"events[{i}].p_mw"))
    return problems


def _data_problems(
    feeder: FeederConfig | None, fleet: FleetConfig | None, sim: SimulationConfig | None
) -> list[str]:
    """Checks that read data before the run: ``fleet.buses`` against the feeder's buses and the
    profile files' contents (times, values, columns), so a run never starts on bad input."""
    from cosim.profiles import read_profile
    from grids.errors import FeederError, InputDataError

    problems: list[str] = []
    fleet_buses: dict[str, tuple[int, ...]] = {}
    if fleet is not None and fleet.buses is not None:
        fleet_buses["fleet.buses"] = fleet.buses
    if fleet is not None and fleet.table is not None and not (feeder and feeder.three_phase):
        from vehicle_models.fleet_table import read_fleet_table

        try:  # the whole table is checked now, not when the fleet simulator starts
            table = read_fleet_table(fleet.table)
        except (InputDataError, ScenarioError) as error:
            problems.extend(f"fleet.table: {p}" for p in (error.problems or [str(error)]))
        else:
            fleet_buses["fleet.table"] = tuple(int(b) for b in table["bus"].tolist())
            if "phase" in table:
                problems.append(
                    "fleet.table: the column 'phase' applies to a three-phase feeder "
                    "(feeder.path to a .dss file, or an embedded three-phase feeder)"
                )
    if feeder is not None and feeder.three_phase:
        fleet_buses = {}  # bus names and phases: cosim.phase_layout.three_phase_problems
    if feeder is not None and fleet_buses:
        try:
            bus_index = _feeder_buses(str(feeder.name))
        except FeederError as error:
            problems.append(f"feeder: {error}")
        else:
            for key, buses in fleet_buses.items():
                unknown = sorted(set(buses) - set(bus_index))
                if unknown:
                    shown = ", ".join(map(str, unknown[:10])) + (
                        ", ..." if len(unknown) > 10 else ""
                    )
                    problems.append(
                        f"{key}: {shown} "
                        f"{'is not a bus' if len(unknown) == 1 else 'are not buses'} of the "
                        f"feeder {Path(str(feeder.name)).name} (bus indices {min(bus_index)}.."
                        f"{max(bus_index)})"
                    )
    resolution = sim.time_resolution_s if sim is not None else 1.0
    start = sim.start if sim is not None else None
    checks = []
    if feeder is not None and feeder.load_profile is not None:
        columns = [feeder.load_column] + ([feeder.ambient_column] if feeder.ambient_column else [])
        checks.append(("feeder.load_profile", feeder.load_profile, columns, False))
    if fleet is not None and fleet.setpoint_profile is not None:
        checks.append(
            ("fleet.setpoint_profile", fleet.setpoint_profile, [fleet.setpoint_column], True)
        )
    for key, path, columns, allow_empty in checks:
        try:
            read_profile(
                path,
                start=start,
                time_resolution=resolution,
                allow_empty=allow_empty,
                required=tuple(columns),
            )
        except (InputDataError, ScenarioError) as error:
            problems.extend(f"{key}: {p}" for p in (error.problems or [str(error)]))
    return problems


@functools.lru_cache(maxsize=8)
def _feeder_buses(name: str) -> tuple[int, ...]:
    from grids.feeders import load_feeder

    return tuple(int(b) for b in load_feeder(name).bus.index)


def read_toml(path: str | Path) -> dict:
    """Read a TOML file; syntax errors become a :class:`ScenarioError` naming file and line."""
    p = Path(path)
    if not p.exists():
        raise ScenarioError(f"{p}: scenario file does not exist")
    try:
        with p.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as error:
        raise ScenarioError(f"{p}: not valid TOML: {error}") from None
    except OSError as error:
        raise ScenarioError(f"{p}: cannot read: {error.strerror}") from None


def load_scenario(
    source: str | Path | Mapping[str, Any],
    *,
    overrides: Mapping[str, Any] | None = None,
    base_dir: str | Path | None = None,
) -> Scenario:
    """Load and validate a scenario from a TOML file or a dictionary.

    Parameters
    ----------
    source : path or mapping
        A TOML file, or a dictionary with the same structure.
    overrides : mapping, optional, keyword-only
        Dotted key paths and values applied before validation (see :func:`apply_overrides`).
    base_dir : path, optional, keyword-only
        Directory relative file names are resolved against (default: the TOML file's
        directory, or the current directory for a dictionary).

    Returns
    -------
    Scenario

    Raises
    ------
    ScenarioError
        Listing every problem with its key path.
    """
    if isinstance(source, Mapping):
        data = copy.deepcopy(dict(source))
        base = Path(base_dir) if base_dir is not None else Path.cwd()
    else:
        data = read_toml(source)
        base = Path(base_dir) if base_dir is not None else Path(source).resolve().parent
    if overrides:
        data = apply_overrides(data, overrides)
    return validate_scenario(data, base_dir=base)


def apply_overrides(data: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict:
    """Return a deep copy of ``data`` with dotted key paths set.

    ``{"frequency.h_s": 4.0, "events.0.p_mw": 800}`` sets ``data["frequency"]["h_s"]`` and the
    first event's ``p_mw``; missing tables are created. Integer parts index arrays.

    Raises
    ------
    ScenarioError
        For paths that cannot be set (index out of range, a value where a table is needed).
    """
    out = copy.deepcopy(dict(data))
    problems = []
    for dotted, value in overrides.items():
        parts = str(dotted).split(".")
        node: Any = out
        ok = True
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if isinstance(node, list):
                if not part.isdigit() or int(part) >= len(node):
                    problems.append(f"{dotted}: {part!r} is not an index of the array")
                    ok = False
                    break
                if last:
                    node[int(part)] = value
                else:
                    node = node[int(part)]
            elif isinstance(node, dict):
                if last:
                    node[part] = value
                else:
                    node = node.setdefault(part, {})
            else:
                problems.append(f"{dotted}: {'.'.join(parts[:i])} is not a table")
                ok = False
                break
        del ok
    check_problems(problems, ScenarioError, "invalid overrides")
    return out
