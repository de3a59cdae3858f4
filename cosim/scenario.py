"""Scenario files: TOML parsing, validation listing every problem, and dotted-key overrides.

A scenario is a TOML file with the sections ``[simulation]`` (required), ``[feeder]``,
``[fleet]`` (with ``[fleet.control]``), ``[frequency]``, ``[[events]]`` and ``[output]``.
:func:`load_scenario` parses and validates it and returns a frozen :class:`Scenario`;
every problem (unknown key, wrong type, value out of range, missing file) is collected with
its key path and reported at once as one :class:`~grids.errors.ScenarioError`.

The settings of the physics are validated by their owners: ``[fleet.control]`` by
:meth:`vehicle_models.settings.InverterSettings.from_dict`, ``[frequency]`` by
:meth:`grids.frequency.SwingParameters.problems` and the transformer by
:meth:`grids.thermal.ThermalParameters.problems`. This module only checks the structure
and the co-simulation keys (times, steps, files, events). See ``docs/scenario_reference.md``.
"""

from __future__ import annotations

import copy
import functools
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path
from typing import Any

from cosim.attributes import RECORDED
from grids.errors import ScenarioError, V2GCosimError, check_problems
from grids.params import is_number

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
    """``[feeder.transformer]``: the substation transformer modelled thermally (IEC 60076-7)."""

    rating_mva: float = 5.0
    cooling: str = "ONAN"
    ambient_c: float = 20.0
    overrides: dict = field(default_factory=dict)


@dataclass(frozen=True)
class FeederConfig:
    """``[feeder]``: the distribution feeder and its load profile."""

    name: str = "case33bw"
    method: str = "ac"
    step_s: float | None = None
    load_profile: str | None = None
    load_column: str = "load_pu"
    ambient_column: str | None = None
    load_scale: float = 1.0
    ext_grid_vm_pu: float | None = None
    transformer: TransformerConfig = field(default_factory=TransformerConfig)


@dataclass(frozen=True)
class FleetConfig:
    """``[fleet]``: the V2G fleet (sampled from a preset, or read from a table)."""

    n_vehicles: int = 0
    preset: str = "home"
    policy: str = "latest"
    buses: tuple[int, ...] | None = None
    table: str | None = None
    control: dict = field(default_factory=dict)
    setpoint_profile: str | None = None
    setpoint_column: str = "p_setpoint_mw"
    latency_s: float = 0.0
    packet_loss: float = 0.0
    f_nominal_hz: float = 60.0


@dataclass(frozen=True)
class FrequencyConfig:
    """``[frequency]``: the bulk-grid swing model (keys of ``grids.frequency.SwingParameters``)."""

    params: dict
    island: dict = field(default_factory=dict)


@dataclass(frozen=True)
class EventConfig:
    """One ``[[events]]`` entry."""

    t_s: float
    kind: EventKind
    p_mw: float = 0.0
    line: int | None = None


@dataclass(frozen=True)
class OutputConfig:
    """``[output]``: where and how results are written."""

    format: OutputFormat = OutputFormat.HDF5
    filename: str | None = None
    flush_every: int = 1000
    record: tuple[str, ...] = ()


@dataclass(frozen=True)
class Scenario:
    """A validated scenario. ``raw`` is the (override-applied) dictionary it was built from."""

    simulation: SimulationConfig
    feeder: FeederConfig | None = None
    fleet: FleetConfig | None = None
    frequency: FrequencyConfig | None = None
    events: tuple[EventConfig, ...] = ()
    output: OutputConfig = field(default_factory=OutputConfig)
    raw: dict = field(default_factory=dict)
    base_dir: Path = field(default_factory=Path.cwd)

    @property
    def has_fleet(self) -> bool:
        return self.fleet is not None and (self.fleet.n_vehicles > 0 or self.fleet.table)

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
# small typed readers that append problems instead of raising


class _Reader:
    """Reads typed keys from one table, recording problems with their key paths."""

    def __init__(self, table: Mapping, path: str, problems: list[str]) -> None:
        self.table = table
        self.path = path
        self.problems = problems
        self.used: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def has(self, name: str) -> bool:
        return name in self.table

    def number(
        self,
        name: str,
        default: Any = None,
        *,
        required: bool = False,
        lo: float | None = None,
        hi: float | None = None,
        lo_open: bool = False,
        integer: bool = False,
    ) -> Any:
        self.used.add(name)
        if name not in self.table:
            if required:
                self.problems.append(f"{self.key(name)}: missing (required)")
            return default
        value = self.table[name]
        kind = "an integer" if integer else "a number"
        ok_type = isinstance(value, int) if integer else isinstance(value, int | float)
        if isinstance(value, bool) or not ok_type:
            self.problems.append(f"{self.key(name)}: {value!r} is not {kind}")
            return default
        if not math.isfinite(value):
            self.problems.append(f"{self.key(name)}: {value!r} is not finite")
            return default
        if lo is not None and (value <= lo if lo_open else value < lo):
            rel = "above" if lo_open else "at least"
            self.problems.append(
                f"{self.key(name)}: {value} is below the allowed range ({rel} {lo})"
            )
            return default
        if hi is not None and value > hi:
            self.problems.append(f"{self.key(name)}: {value} is above the allowed {hi}")
            return default
        return value

    def string(self, name: str, default: Any = None, *, choices: Any = None) -> Any:
        self.used.add(name)
        if name not in self.table:
            return default
        value = self.table[name]
        if not isinstance(value, str):
            self.problems.append(f"{self.key(name)}: {value!r} is not a string")
            return default
        if choices is not None and value not in choices:
            allowed = ", ".join(repr(c) for c in choices)
            self.problems.append(f"{self.key(name)}: {value!r} is not one of {allowed}")
            return default
        return value

    def boolean(self, name: str, default: bool) -> bool:
        self.used.add(name)
        if name not in self.table:
            return default
        value = self.table[name]
        if not isinstance(value, bool):
            self.problems.append(f"{self.key(name)}: {value!r} is not true or false")
            return default
        return value

    def table_(self, name: str) -> dict:
        self.used.add(name)
        if name not in self.table:
            return {}
        value = self.table[name]
        if not isinstance(value, dict):
            self.problems.append(f"{self.key(name)}: expected a table, got {value!r}")
            return {}
        return value

    def raw(self, name: str) -> Any:
        self.used.add(name)
        return self.table.get(name)

    def unknown(self, allowed_hint: str = "") -> None:
        for name in self.table:
            if name not in self.used:
                allowed = ", ".join(sorted(self.used))
                self.problems.append(f"{self.key(name)}: unknown key (allowed: {allowed})")


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
    r = _Reader(table, "simulation", problems)
    n_before = len(problems)
    duration_s = r.number("duration_s", required=True, lo=0.0, lo_open=True)
    step_s = r.number("step_s", required=True, lo=0.0, lo_open=True)
    seed = r.number("seed", 0, integer=True, lo=0, hi=2**32 - 1)
    start = r.string("start")
    fast_step_s = r.number("fast_step_s", lo=0.0, lo_open=True)
    window = r.raw("window_s")
    window_s = (5.0, 55.0)
    if window is not None:
        if (
            not isinstance(window, list)
            or len(window) != 2
            or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in window)
            or any(v < 0 for v in window)
        ):
            problems.append(
                f"simulation.window_s: {window!r} is not [seconds_before, seconds_after] (>= 0)"
            )
        else:
            window_s = (float(window[0]), float(window[1]))
    coupling = r.string("coupling", "time_shifted", choices=[c.value for c in Coupling])
    remote = r.string("remote", "none", choices=[c.value for c in RemoteSim])
    loop_tolerance_pu = r.number("loop_tolerance_pu", 1e-6, lo=0.0, lo_open=True, hi=0.1)
    loop_max_iterations = r.number("loop_max_iterations", 50, integer=True, lo=1, hi=1000)
    r.unknown()
    if start is not None:
        import pandas as pd

        try:
            pd.Timestamp(start)
        except (ValueError, TypeError):
            problems.append(f"simulation.start: {start!r} is not an ISO 8601 timestamp")
    if len(problems) > n_before:
        return None
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
        seed=int(seed),
        start=start,
        fast_step_s=None if fast_step_s is None else float(fast_step_s),
        window_s=window_s,
        coupling=Coupling(coupling),
        remote=RemoteSim(remote),
        loop_tolerance_pu=float(loop_tolerance_pu),
        loop_max_iterations=int(loop_max_iterations),
    )


def _feeder(table: dict, base_dir: Path, sim: SimulationConfig | None, problems: list[str]):
    from grids.feeders import feeder_names

    r = _Reader(table, "feeder", problems)
    name = r.string("name", "case33bw")
    path = r.string("path")
    if path is not None:
        path = _file(base_dir, path, "feeder.path", problems)
        if r.has("name"):
            problems.append("feeder.name: give either feeder.name or feeder.path, not both")
    elif name is not None and name not in feeder_names():
        problems.append(
            f"feeder.name: {name!r} is not an embedded feeder ({', '.join(feeder_names())}); "
            "use feeder.path for a pandapower JSON file"
        )
    method = r.string("method", "ac", choices=["ac", "lindistflow"])
    step_s = r.number("step_s", lo=0.0, lo_open=True)
    profile = r.string("load_profile")
    if profile is not None:
        profile = _file(base_dir, profile, "feeder.load_profile", problems)
    column = r.string("load_column", "load_pu")
    ambient_column = r.string("ambient_column")
    if ambient_column is not None and profile is None and "load_profile" not in table:
        problems.append("feeder.ambient_column: needs feeder.load_profile (the file it is in)")
    load_scale = r.number("load_scale", 1.0, lo=0.0, hi=10.0)
    ext_vm = r.number("ext_grid_vm_pu", lo=0.8, hi=1.2)
    tr = _Reader(r.table_("transformer"), "feeder.transformer", problems)
    rating = tr.number("rating_mva", 5.0, lo=0.0, lo_open=True, hi=1e4)
    cooling = tr.string("cooling", "ONAN", choices=["ONAN", "ONAF", "OF", "OD"])
    ambient = tr.number("ambient_c", 20.0, lo=-50.0, hi=60.0)
    overrides = {}
    for key in (
        "delta_theta_or_k",
        "g_r_k",
        "h",
        "x",
        "y",
        "r",
        "k11",
        "k21",
        "k22",
        "tau_o_min",
        "tau_w_min",
    ):
        value = tr.number(key)
        if value is not None:
            overrides[key] = float(value)
    paper = tr.string("paper", choices=["normal", "upgraded"])
    if paper is not None:
        overrides["paper"] = paper
    tr.unknown()
    r.unknown()
    if sim is not None and step_s is not None and not _is_multiple(step_s, sim.time_resolution_s):
        problems.append(
            f"feeder.step_s: {step_s} is not an integer multiple of the time resolution "
            f"({sim.time_resolution_s} s)"
        )
    return FeederConfig(
        name=path if path is not None else (name or "case33bw"),
        method=method or "ac",
        step_s=None if step_s is None else float(step_s),
        load_profile=profile,
        load_column=column or "load_pu",
        ambient_column=ambient_column,
        load_scale=float(load_scale if load_scale is not None else 1.0),
        ext_grid_vm_pu=ext_vm,
        transformer=TransformerConfig(
            rating_mva=float(rating or 5.0),
            cooling=cooling or "ONAN",
            ambient_c=float(ambient if ambient is not None else 20.0),
            overrides=overrides,
        ),
    )


def _thermal_problems(cfg: TransformerConfig, problems: list[str]) -> None:
    try:
        from grids.thermal import CoolingMode, Paper, ThermalParameters
    except ImportError:  # physics not installed yet: structure was validated above
        return
    overrides = dict(cfg.overrides)
    if "paper" in overrides:
        overrides["paper"] = Paper(overrides["paper"])
    try:
        params = ThermalParameters.for_cooling(CoolingMode(cfg.cooling), **overrides)
    except V2GCosimError as error:
        problems.extend(error.problems or [str(error)])
        return
    except (TypeError, ValueError) as error:
        problems.append(f"feeder.transformer: {error}")
        return
    problems.extend(params.problems("feeder.transformer"))


def _fleet(table: dict, base_dir: Path, problems: list[str]) -> FleetConfig:
    r = _Reader(table, "fleet", problems)
    n = r.number("n_vehicles", 0, integer=True, lo=0, hi=10_000_000)
    preset = r.string("preset", "home", choices=["home", "work", "depot"])
    policy = r.string("policy", "latest", choices=["immediate", "latest", "uniform"])
    buses_raw = r.raw("buses")
    buses = None
    if buses_raw is not None:
        if (
            not isinstance(buses_raw, list)
            or not buses_raw
            or not all(isinstance(b, int) and not isinstance(b, bool) for b in buses_raw)
        ):
            problems.append(
                f"fleet.buses: {buses_raw!r} is not a non-empty list of bus indices (integers)"
            )
        else:
            buses = tuple(int(b) for b in buses_raw)
    table_path = r.string("table")
    if table_path is not None:
        table_path = _file(base_dir, table_path, "fleet.table", problems)
    control = r.table_("control")
    setpoint_profile = r.string("setpoint_profile")
    if setpoint_profile is not None:
        setpoint_profile = _file(base_dir, setpoint_profile, "fleet.setpoint_profile", problems)
    setpoint_column = r.string("setpoint_column", "p_setpoint_mw")
    latency = r.number("latency_s", 0.0, lo=0.0, hi=3600.0)
    loss = r.number("packet_loss", 0.0, lo=0.0, hi=0.99)
    f_nom = r.number("f_nominal_hz", 60.0, lo=45.0, hi=65.0)
    r.unknown()
    if "setpoint_profile" not in table:
        for key in ("latency_s", "packet_loss", "setpoint_column"):
            if key in table:
                problems.append(
                    f"fleet.{key}: applies to the set-point channel, which needs "
                    "fleet.setpoint_profile"
                )
    if control:
        try:
            from vehicle_models.settings import InverterSettings
        except ImportError:
            problems.append("fleet.control: vehicle_models.settings is not available")
        else:
            try:
                InverterSettings.from_dict(control, path="fleet.control")
            except ScenarioError as error:
                problems.extend(error.problems or [str(error)])
    return FleetConfig(
        n_vehicles=int(n or 0),
        preset=preset or "home",
        policy=policy or "latest",
        buses=buses,
        table=table_path,
        control=copy.deepcopy(control),
        setpoint_profile=setpoint_profile,
        setpoint_column=setpoint_column or "p_setpoint_mw",
        latency_s=float(latency or 0.0),
        packet_loss=float(loss or 0.0),
        f_nominal_hz=float(f_nom or 60.0),
    )


def _frequency(table: dict, problems: list[str]) -> FrequencyConfig:
    # The swing parameters are validated by their owner (grids.frequency.SwingParameters);
    # only the co-simulation sub-table [frequency.island] is read here.
    params = {k: v for k, v in table.items() if k != "island"}
    island_raw = table.get("island", {})
    island: dict[str, float] = {}
    if not isinstance(island_raw, dict):
        problems.append(f"frequency.island: expected a table, got {island_raw!r}")
    else:
        island_r = _Reader(island_raw, "frequency.island", problems)
        for key in ("s_base_mw", "h_s", "d_pu"):
            value = island_r.number(key, lo=0.0, lo_open=key != "d_pu")
            if value is not None:
                island[key] = float(value)
        island_r.unknown()
    try:
        swing_parameters(params)
    except ScenarioError as error:
        problems.extend(error.problems or [str(error)])
    return FrequencyConfig(params=copy.deepcopy(params), island=island)


def swing_parameters(params: Mapping[str, Any]):
    """Build :class:`grids.frequency.SwingParameters` from a ``[frequency]`` table.

    Raises
    ------
    ScenarioError
        Listing every problem with its key path (``frequency.h_s: ...``).
    """
    from grids.frequency import SwingParameters

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
    events = []
    for i, item in enumerate(items):
        path = f"events[{i}]"
        if not isinstance(item, dict):
            problems.append(f"{path}: expected a table")
            continue
        r = _Reader(item, path, problems)
        hi = sim.duration_s if sim is not None else None
        t_s = r.number("t_s", required=True, lo=0.0, hi=hi)
        kind_raw = r.string("kind", choices=[k.value for k in EventKind])
        if "kind" not in item:
            problems.append(f"{path}.kind: missing (required)")
        kind = EventKind(kind_raw) if kind_raw is not None else None
        p_mw = 0.0
        line = None
        if kind is EventKind.GENERATION_LOSS:
            p_mw = r.number("p_mw", required=True, lo=0.0, lo_open=True)
        elif kind is EventKind.LOAD_STEP:
            # A negative step is a load drop: an over-frequency event.
            p_mw = r.number("p_mw", required=True)
            if p_mw == 0:
                problems.append(f"{path}.p_mw: 0 is not a load step (expected a nonzero MW value)")
        if kind in (EventKind.GENERATION_LOSS, EventKind.LOAD_STEP) and not has_frequency:
            problems.append(f"{path}.kind: {kind.value!r} needs a [frequency] section")
        if kind is EventKind.LINE_OUTAGE:
            line = r.number("line", required=True, integer=True, lo=0)
            if not has_feeder:
                problems.append(f"{path}.kind: 'line_outage' needs a [feeder] section")
        if kind in (EventKind.ISLAND, EventKind.RECONNECT) and not has_frequency:
            problems.append(f"{path}.kind: {kind.value!r} needs a [frequency] section")
        r.unknown()
        if t_s is not None and kind is not None and (p_mw is not None):
            events.append(EventConfig(t_s=float(t_s), kind=kind, p_mw=float(p_mw), line=line))
    return tuple(sorted(events, key=lambda e: e.t_s))


def _output(table: dict, problems: list[str]) -> OutputConfig:
    r = _Reader(table, "output", problems)
    fmt = r.string("format", "hdf5", choices=[f.value for f in OutputFormat])
    filename = r.string("filename")
    if filename is not None and ("/" in filename or "\\" in filename or filename in (".", "..")):
        problems.append(f"output.filename: {filename!r} must be a plain file name (no directory)")
    flush = r.number("flush_every", 1000, integer=True, lo=1, hi=10**7)
    record_raw = r.raw("record")
    record: tuple[str, ...] = ()
    if record_raw is not None:
        if not isinstance(record_raw, list) or not all(isinstance(x, str) for x in record_raw):
            problems.append(f"output.record: {record_raw!r} is not a list of attribute names")
        else:
            record = tuple(record_raw)
    r.unknown()
    return OutputConfig(
        format=OutputFormat(fmt or "hdf5"),
        filename=filename,
        flush_every=int(flush or 1000),
        record=record,
    )


_SECTIONS = ("simulation", "feeder", "fleet", "frequency", "events", "output")
# Sections that belong to a study (validated by that study: ``studies.contingency``,
# ``studies.black_start``); a plain co-simulation run accepts and ignores them so that one
# scenario file serves both ``v2g-cosim run`` and the study command.
STUDY_SECTIONS = ("contingency", "black_start")


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
        if key not in _SECTIONS and key not in STUDY_SECTIONS:
            allowed = ", ".join(_SECTIONS + STUDY_SECTIONS)
            problems.append(f"{key}: unknown section (allowed: {allowed})")
    for key in ("feeder", "fleet", "frequency", "output"):
        if key in data and not isinstance(data[key], dict):
            problems.append(f"{key}: expected a table [{key}], got {data[key]!r}")
    sim = _simulation(data.get("simulation"), problems)
    n_before_feeder = len(problems)
    feeder = (
        _feeder(data["feeder"], base, sim, problems)
        if isinstance(data.get("feeder"), dict)
        else None
    )
    feeder_ok = feeder is not None and len(problems) == n_before_feeder
    if feeder is not None:
        _thermal_problems(feeder.transformer, problems)
    fleet = _fleet(data["fleet"], base, problems) if isinstance(data.get("fleet"), dict) else None
    if (
        fleet is not None
        and fleet.n_vehicles > 0
        and not fleet.table
        and feeder is None
        and fleet.buses is None
    ):
        # without a feeder the fleet sees 1.0 pu everywhere (frequency-response studies)
        problems.append("fleet.buses: needed without a [feeder] (the buses to put vehicles on)")
    frequency = (
        _frequency(data["frequency"], problems) if isinstance(data.get("frequency"), dict) else None
    )
    events = _events(data.get("events"), sim, frequency is not None, feeder is not None, problems)
    output = _output(data["output"] if isinstance(data.get("output"), dict) else {}, problems)
    if (
        sim is not None
        and sim.remote is RemoteSim.FLEET
        and not (fleet is not None and (fleet.n_vehicles > 0 or fleet.table))
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
        known = {a for attrs in RECORDED.values() for a in attrs}
        if feeder is not None:
            known |= {feeder.load_column, feeder.ambient_column or ""}
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
        has_fleet = fleet is not None and (fleet.n_vehicles > 0 or fleet.table)
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
    if fleet is not None and frequency_f0_hz is not None:
        fleet_table = data["fleet"]
        if "f_nominal_hz" in fleet_table and fleet.f_nominal_hz != frequency_f0_hz:
            problems.append(
                f"fleet.f_nominal_hz: {fleet.f_nominal_hz:g} Hz disagrees with frequency.f0_hz "
                f"({frequency_f0_hz:g} Hz); one system has one nominal frequency (leave "
                "fleet.f_nominal_hz out to follow [frequency])"
            )
        elif "f_nominal_hz" not in fleet_table:
            fleet = replace(fleet, f_nominal_hz=frequency_f0_hz)
    problems.extend(_data_problems(feeder if feeder_ok else None, fleet, sim))
    check_problems(problems, ScenarioError, "invalid scenario")
    assert sim is not None
    return Scenario(
        simulation=sim,
        feeder=feeder,
        fleet=fleet,
        frequency=frequency,
        events=events,
        output=output,
        raw=copy.deepcopy(dict(data)),
        base_dir=base,
    )


def _swing_or_none(params: Any):
    try:
        return swing_parameters(params)
    except ScenarioError:
        return None  # its problems are already listed


def _event_size_problems(items: Any, events: tuple[EventConfig, ...], swing) -> list[str]:
    """Power events larger than the system they hit: the linearised swing model is not valid
    there (a loss above the system base leaves no generation to respond)."""
    problems = []
    if not isinstance(items, list):
        return problems
    s_base_mw = float(swing.s_base_mw)
    for i, item in enumerate(items):
        if not isinstance(item, dict) or item.get("kind") not in (
            EventKind.GENERATION_LOSS.value,
            EventKind.LOAD_STEP.value,
        ):
            continue
        p_mw = item.get("p_mw")
        if is_number(p_mw) and math.isfinite(p_mw) and abs(p_mw) > s_base_mw:
            problems.append(
                f"events[{i}].p_mw: {p_mw:g} MW is larger than the system it hits "
                f"(frequency.s_base_mw = {s_base_mw:g} MW); the swing model is linearised "
                "around that system and is not valid for such an event"
            )
    return problems


def _data_problems(
    feeder: FeederConfig | None, fleet: FleetConfig | None, sim: SimulationConfig | None
) -> list[str]:
    """Checks that read data before the run: ``fleet.buses`` against the feeder's buses and the
    profile files' contents (times, values, columns), so a run never starts on bad input."""
    from cosim.profiles import read_profile
    from grids.errors import FeederError, InputDataError

    problems: list[str] = []
    if feeder is not None and fleet is not None and fleet.buses is not None:
        try:
            bus_index = _feeder_buses(str(feeder.name))
        except FeederError as error:
            problems.append(f"feeder: {error}")
        else:
            unknown = sorted(set(fleet.buses) - set(bus_index))
            if unknown:
                problems.append(
                    f"fleet.buses: {', '.join(map(str, unknown))} "
                    f"{'is not a bus' if len(unknown) == 1 else 'are not buses'} of the feeder "
                    f"{Path(str(feeder.name)).name} (bus indices {min(bus_index)}.."
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
