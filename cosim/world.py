"""Scenario -> mosaik World: simulators, connections, multi-rate clocks; running and metrics.

Time
----
The mosaik time resolution is ``simulation.fast_step_s`` if given, else ``simulation.step_s``:
one integer mosaik step is that many seconds (``step_s = 0.01`` works). Each time-based
simulator gets a clock (:class:`cosim.simulators.StepClock`): the feeder steps every
``feeder.step_s`` (default ``simulation.step_s``); the fleet and the frequency model step every
``simulation.step_s`` and, in windows ``simulation.window_s`` around each event, every
``fast_step_s`` (multi-rate: e.g. 15-min quasi-static steps for a day, 20-ms steps around a
generation loss).

Data flow (see ``docs/architecture.md``)
-----------------------------------------
::

    load profile file --> FeederSim --bus_vm_pu (time-shifted)--> FleetSim
    FleetSim --bus_p_mw, bus_q_mvar--> FeederSim
    FleetSim --p_mw--> FrequencySim --f_hz (time-shifted)--> FleetSim
    EventSim --p_event_mw, island--> FrequencySim;  EventSim --lines_out, fault_event--> FeederSim
    FeederSim --p_grid_import_mw--> FrequencySim (island events only)
    every output --> Collector (results file)

The two feedback loops are closed by ``time_shifted`` connections into the fleet: the fleet
acts on the voltage and frequency of the previous step of their simulators (a measurement
delay); ``fleet.latency_s`` lengthens that shift (communication latency) and
``fleet.packet_loss`` drops measurements. (Same-time iteration in a ``world.group()`` is not
used: our simulators advance their physics exactly once per step.)
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import os
import sys
import time as wall_clock
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pandas is loaded with the results, not at import
    import pandas as pd
from tqdm import tqdm

from cosim.adoption_fleet import resolve_adoption
from cosim.attributes import RECORDED, THREE_PHASE_RECORDED
from cosim.phase_layout import phase_layout
from cosim.results import (
    SUFFIX,
    partial_path,
    read_results,
    results_frame,
    run_metadata,
    signal_mask,
)
from cosim.scenario import Coupling, RemoteSim, Scenario
from cosim.specs import plain_value, to_params
from cosim.violations import run_violations
from grids.errors import SimulationError, V2GCosimError
from grids.feeders import load_feeder
from grids.metrics import frequency_nadir, max_abs_rocof_hz_per_s

# mosaik (~0.2 s) and cosim.simulators (the numba-compiled fleet kernels, ~0.9 s) are imported
# where a world is built or run: importing this module (RUN_METRIC_KEYS, the sweep's run
# metrics) stays cheap, and cosim.simulators is never imported back into it at load time.

SIM_NAMES = {
    "feeder": "FeederSim",
    "fleet": "FleetSim",
    "frequency": "FrequencySim",
    "profile": "ProfileSim",
    "events": "EventSim",
    "collector": "Collector",
    "feeder_group": "FeederGroupSim",
}
#: The feeder's simulator on a three-phase (OpenDSS) feeder.
THREE_PHASE_FEEDER_SIM = "ThreePhaseFeederSim"


def sim_config(remote: RemoteSim = RemoteSim.NONE, *, grouped: bool = False) -> dict:
    """mosaik ``sim_config``: in-process simulators, or one of them in its own process
    (``grouped``: the feeder groups of a many-feeder run, see :func:`build_world`)."""
    names = [*SIM_NAMES.values(), THREE_PHASE_FEEDER_SIM]
    config: dict[str, dict] = {name: {"python": f"cosim.simulators:{name}"} for name in names}
    if remote is not RemoteSim.NONE:
        remote_names = [SIM_NAMES["feeder_group" if grouped else remote.value]]
        if remote is RemoteSim.FEEDER and not grouped:
            remote_names.append(THREE_PHASE_FEEDER_SIM)
        for name in remote_names:
            config[name] = {"cmd": f"%(python)s -m cosim.simulators {name} %(addr)s"}
    return config


@dataclass(frozen=True)
class Connection:
    """One data-flow connection of a built world (for inspection and graph tests)."""

    src: str
    src_attr: str
    dest: str
    dest_attr: str
    time_shifted: int = 0
    weak: bool = False


@dataclass
class BuiltWorld:
    """A mosaik World built from a scenario, ready to ``run(until)``.

    ``entities`` maps ``feeder``/``fleet``/``frequency``/``events``/``profile``/``collector``
    to mosaik entities; ``connections`` lists every connection made (``world.entity_graph``
    holds mosaik's own view of them).
    """

    world: Any
    entities: dict[str, Any]
    until: int
    results_path: Path
    run_id: str
    connections: list[Connection] = field(default_factory=list)

    #: mosaik ``World.run`` options of this world (:data:`RUN_OPTIONS`, see :func:`_run_options`)
    run_options: dict[str, Any] = field(default_factory=lambda: dict(RUN_OPTIONS))

    def run(self) -> None:
        """``world.run`` until the end, with the scheduling options of :attr:`run_options`;
        then, if the collector stepped to the end, move its results file into place.

        Raises
        ------
        SimulationError
            The run stopped before its end without an error of its own (mosaik logs a Ctrl-C
            or a failed remote simulator and returns): the rows so far stay in the partial
            file (:func:`cosim.results.partial_path`), an earlier results file is kept.
        """
        # lazy: numba-compiled fleet kernels, ~0.9 s (see module note)
        from cosim import simulators

        self.world.run(until=self.until, print_progress=False, **self.run_options)
        resolution_s = self.world.time_resolution
        for collector in list(simulators.LIVE_COLLECTORS):
            if getattr(collector, "run_id", None) != self.run_id:
                continue
            if collector.t_next < self.until:
                raise SimulationError(
                    f"the co-simulation stopped at t = {collector.t_next * resolution_s:g} s, "
                    f"before its end at {self.until * resolution_s:g} s (interrupted, or a "
                    "simulator process failed: see the log above)"
                )
            collector.close(commit=True)


#: Options of mosaik's ``World.run`` for our worlds. ``lazy_stepping=False``: a simulator steps
#: as soon as its inputs are there instead of also waiting until its successors have caught
#: up (mosaik 3 ``scheduler.wait_for_dependencies``). Results are identical (the data flow is
#: the same); it saves one wait per simulator step (measured in docs/architecture.md). The
#: price is memory: a simulator without inputs (events, set-point profiles) may run ahead and
#: its outputs wait in mosaik's input buffers.
RUN_OPTIONS: dict[str, Any] = {"lazy_stepping": False}


def _run_options(scenario: Scenario, record: bool) -> dict[str, Any]:
    """:data:`RUN_OPTIONS`, with lazy stepping where a failure would otherwise lose steps.

    A simulator that can fail mid-run (the feeder's power flow, the fleet, the frequency
    model) and has no same-time input runs ahead of the collector without lazy stepping: when
    it fails, the steps it computed but the collector had not yet stored would be lost. In a
    coupled world (a fleet with a feeder or a frequency model) the feedback loop keeps every
    simulator within a step of the collector; elsewhere a recorded run steps lazily
    (measured: ~10 % slower for a recorded feeder-only month, see docs/architecture.md).
    """
    options = dict(RUN_OPTIONS)
    coupled = scenario.has_fleet and (scenario.feeder is not None or scenario.frequency is not None)
    if record and not coupled:
        options["lazy_stepping"] = True
    return options


class _Connector:
    """``world.connect`` that also records each connection."""

    def __init__(self, world) -> None:
        self.world = world
        self.log: list[Connection] = []

    def __call__(self, src, dest, *pairs, time_shifted: int = 0, weak: bool = False, **kw):
        self.world.connect(src, dest, *pairs, time_shifted=time_shifted, weak=weak, **kw)
        for pair in pairs:
            a, b = (pair, pair) if isinstance(pair, str) else pair
            self.log.append(
                Connection(src.full_id, a, dest.full_id, b, int(time_shifted), bool(weak))
            )


def _fleet_buses(scenario: Scenario) -> list:
    """Buses to place sampled vehicles on: ``fleet.buses`` or every bus with a load (bus names
    on a three-phase feeder)."""
    return _buses_of(scenario.fleet, scenario.feeder)


def _buses_of(fleet, feeder) -> list:
    """Buses to place a fleet's sampled vehicles on: its ``buses`` or every bus with a load of
    its feeder (bus names on a three-phase feeder)."""
    if fleet.buses is not None:
        return list(fleet.buses)
    if feeder.three_phase:
        return list(phase_layout(str(feeder.name)).load_buses)
    return list(_load_buses(feeder.name))


def _fleet_phase_params(scenario: Scenario) -> dict:
    """The fleet's three-phase parameters (plain values): the feeder's bus names and phases,
    the allocation policy and the charger connection; none on a balanced feeder."""
    return _phase_params(scenario.feeder, scenario.fleet)


def _phase_params(feeder, fleet) -> dict:
    """:func:`_fleet_phase_params` of one feeder and its fleet."""
    if feeder is None or not feeder.three_phase:
        return {}
    layout = phase_layout(str(feeder.name))
    return {
        "bus_names": list(layout.bus_names),
        "bus_phases": [list(layout.bus_phases[i]) for i in range(len(layout.bus_names))],
        "phase_allocation": plain_value(fleet.phase_allocation),
        "charger_connection": plain_value(fleet.charger_connection),
    }


@functools.lru_cache(maxsize=8)
def _load_buses(feeder: str) -> tuple[int, ...]:
    net = load_feeder(feeder)
    return tuple(sorted(int(b) for b in net.load.bus.unique()))


def _island_params(scenario: Scenario) -> dict | None:
    """The feeder's islanded power flow for ``island`` events: the grid-forming fleet's buses
    share ``[frequency.island] s_base_mw`` equally, P-f droop ``1/d_pu``; None without an
    island event, a fleet or the island's swing parameters (the feeder then keeps its slack)."""
    # lazy: the island model only for scenarios that ask for it
    from grids.island import droop_from_damping_pu

    freq, fleet = scenario.frequency, scenario.fleet
    if (
        scenario.feeder is None
        or not scenario.has_fleet
        or freq is None
        or not all(k in freq.island for k in ("s_base_mw", "d_pu"))
        or not any(e.kind.value == "island" for e in scenario.events)
    ):
        return None
    if fleet.table:
        # lazy: a fleet table is read here only for island events
        from vehicle_models.fleet_table import read_fleet_table

        buses = sorted({int(b) for b in read_fleet_table(fleet.table)["bus"].tolist()})
    else:
        buses = sorted(set(_fleet_buses(scenario)))
    # the feeder's keys of [frequency.island] (validated by the scenario loader, which keeps
    # only the swing model's in ``frequency.island``)
    raw = scenario.raw.get("frequency", {}).get("island", {})
    return {
        "nq_pu": float(raw.get("q_droop_pu", 0.05)),
        "sync": {k[5:]: float(v) for k, v in raw.items() if k.startswith("sync_")},
        "gfm_buses": buses,
        "s_rated_mva": float(freq.island["s_base_mw"]),
        "mp_pu": droop_from_damping_pu(float(freq.island["d_pu"])),
        "v0_pu": scenario.feeder.ext_grid_vm_pu,  # None: the feeder's own set-point
        "f0_hz": float(freq.params.f0_hz),
    }


def build_world(
    scenario: Scenario,
    out_dir: str | Path,
    *,
    remote: RemoteSim | None = None,
    record: bool = True,
    run_id: str | None = None,
    same_time_loop: bool = False,
    loop_tolerance_pu: float = 1e-6,
    loop_max_iterations: int = 50,
    fleet_replicas: float = 1.0,
    feeder_groups: int | None = None,
) -> BuiltWorld:
    """Assemble the mosaik World of a scenario (simulators, entities, connections).

    Parameters
    ----------
    scenario : Scenario
    out_dir : path
        Where the results file goes.
    remote : RemoteSim, optional, keyword-only
        Override ``simulation.remote`` (run the fleet or the feeder in its own process).
    record : bool, keyword-only
        Connect a Collector (default). Without it nothing is written.
    run_id : str, optional, keyword-only
        Key for progress hooks (:data:`cosim.simulators.PROGRESS_HOOKS`).
    same_time_loop : bool, keyword-only
        Close the voltage -> fleet (volt-var Q) -> voltage loop within each time step instead
        of with a one-step measurement delay: the feeder and the fleet run in a mosaik
        ``world.group()`` as hybrid simulators, the feeder's voltages go back to the fleet on a
        *weak* connection, and the pair re-solves the same step until the voltages the fleet
        used and the resulting ones differ by at most ``loop_tolerance_pu`` [pu] (at most
        ``loop_max_iterations`` passes; ``loop_passes`` and ``loop_residual_pu`` are recorded).
        Each pass restarts the fleet and the transformer thermal state from the beginning of
        the step, so the result is the fixed point of that step. Needs a feeder and a fleet.
        ``[simulation] coupling = "same_time_loop"`` in the scenario does the same, with its
        ``loop_tolerance_pu`` and ``loop_max_iterations``.
    fleet_replicas : float, keyword-only
        Identical feeders the scenario's feeder and fleet stand for on the bulk grid: the
        frequency model multiplies the fleets' injection change by it (default 1; the
        contingency study's ``feeder_replicas``).

    feeder_groups : int, optional, keyword-only
        Several ``[[feeders]]``: how many :class:`~cosim.simulators.FeederGroupSim` share the
        feeder + fleet pairs. Default: one in this process, or with ``remote`` one per CPU
        core, each in a process of its own; ``0``: one ``FeederSim`` and one ``FleetSim`` per
        feeder (with ``remote``, every fleet or feeder in a process of its own).

    Notes
    -----
    A scenario with several ``[[feeders]]`` gets one feeder and one fleet entity per feeder
    (``entities`` keys ``feeder:<label>`` and ``fleet:<label>``), every fleet coupled to its
    own feeder and all of them to the one ``FrequencySim``, which sums their injection
    changes (``docs/many_feeders.md``). The pairs share feeder-group simulators (mosaik's
    scheduling work grows with the square of the number of simulators coupled through the
    frequency), unless ``feeder_groups = 0``.
    """
    import mosaik

    # [fleet] adoption: the adopted EVs as a fleet table next to the results
    scenario = resolve_adoption(scenario, out_dir)
    sim = scenario.simulation
    remote = sim.remote if remote is None else remote
    run_id = run_id or uuid.uuid4().hex
    res = sim.time_resolution_s
    slow = sim.to_steps(sim.step_s)
    fast = 1 if sim.fast_step_s is not None else None
    windows = [[sim.to_steps(a), sim.to_steps(b)] for a, b in scenario.event_windows_s()]
    fast_clock = {"step_size": slow, "fast_step_size": fast, "windows": windows}
    until = max(1, sim.to_steps(sim.duration_s))

    loop = None
    if sim.coupling is Coupling.SAME_TIME_LOOP:  # [simulation] coupling = "same_time_loop"
        same_time_loop = True
        loop_tolerance_pu = sim.loop_tolerance_pu
        loop_max_iterations = sim.loop_max_iterations
    if same_time_loop:
        if scenario.feeder is None or not scenario.has_fleet:
            raise SimulationError("same_time_loop needs a [feeder] and a [fleet]")
        loop = {
            "same_time_loop": True,
            "loop_tolerance_pu": float(loop_tolerance_pu),
            "loop_max_iterations": int(loop_max_iterations),
        }
    n_groups = None
    if scenario.many_feeders:
        n_groups = _group_count(len(scenario.feeders), remote, feeder_groups)
    world = mosaik.World(
        sim_config(remote, grouped=bool(n_groups)),
        mosaik_config={"addr": ("127.0.0.1", None), "start_timeout": 60},
        time_resolution=res,
        # mosaik's output cache is pruned to the oldest step of any simulator: with slow
        # (15-min) simulators beside 20-ms ones it grows and is re-scanned every step. Without
        # it, outputs are requested from the source when needed.
        cache=False,
        skip_greetings=True,
        configure_logging=False,
    )
    ents: dict[str, Any] = {}
    connect = _Connector(world)
    try:
        if scenario.many_feeders:
            _populate_many(world, scenario, ents, fast_clock, remote, fleet_replicas, n_groups)
            _connect_many(connect, scenario, ents)
        else:
            _populate(world, scenario, ents, slow, fast_clock, loop, remote, fleet_replicas)
            _connect(connect, scenario, ents, loop is not None)
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        fmt = scenario.output.format.value
        results_path = out / (scenario.output.filename or f"results{SUFFIX[fmt]}")
        if record:
            _record(world, connect, scenario, ents, results_path, run_id, fast_clock)
    except BaseException:
        _safe_shutdown(world)
        raise
    return BuiltWorld(
        world=world,
        entities=ents,
        until=until,
        results_path=results_path,
        run_id=run_id,
        connections=connect.log,
        run_options=_run_options(scenario, record),
    )


def _populate(
    world,
    scenario: Scenario,
    ents: dict,
    slow: int,
    fast_clock: dict,
    loop: dict | None,
    remote: RemoteSim | None = None,
    fleet_replicas: float = 1.0,
) -> None:
    sim = scenario.simulation
    feeder_step = sim.to_steps((scenario.feeder and scenario.feeder.step_s) or sim.step_s)
    started = {}
    three_phase = scenario.feeder is not None and scenario.feeder.three_phase
    feeder_name = THREE_PHASE_FEEDER_SIM if three_phase else "FeederSim"
    if loop is not None:
        # the same-time loop's members share a group: mosaik iterates weak connections only
        # inside a group (tiered time), and the other simulators see the loop's final values
        with world.group():
            started["feeder"] = world.start(feeder_name, step_size=feeder_step, **loop)
            started["fleet"] = world.start("FleetSim", **fast_clock, **loop)
    if scenario.feeder is not None:
        feeder_sim = started.get("feeder") or world.start(feeder_name, step_size=feeder_step)
        island = {} if three_phase else {"island": _island_params(scenario)}
        if _replaces_ev_loads(scenario.feeder, scenario.fleet):
            island["replace_ev_loads"] = True
        ents["feeder"] = _feeder_entity(feeder_sim, scenario.feeder, sim.start, **island)
    if scenario.has_fleet:
        fl = scenario.fleet
        fleet_sim = started.get("fleet") or world.start("FleetSim", **fast_clock)
        remote_fleet = (remote or sim.remote) is RemoteSim.FLEET
        buses = None if fl.table else _fleet_buses(scenario)
        # simulation.seed, or the seed of a scenario's one [[feeders]] table
        seed = scenario.feeders[0].seed if scenario.feeders else sim.seed
        ents["fleet"] = _fleet_entity(
            fleet_sim, fl, buses, seed, remote_fleet, **_fleet_phase_params(scenario)
        )
        if fl.setpoint_profile is not None:
            setpoint_sim = world.start(
                "ProfileSim", datafile=fl.setpoint_profile, start=sim.start, allow_empty=True
            )
            ents["setpoints"] = setpoint_sim.Profile()
        if scenario.frequency is not None:
            ents["frequency"] = _frequency_entity(world, scenario, fast_clock, fleet_replicas)
    if scenario.frequency is not None and "frequency" not in ents:
        ents["frequency"] = _frequency_entity(world, scenario, fast_clock, fleet_replicas)
    _events_entity(world, scenario, ents, fast_clock)


def _replaces_ev_loads(fd, fl) -> bool:
    """An adopted fleet with SimBench's EV profiles stands in for the SimBench grid's own EV
    charging points (their demand is taken out of the feeder's profiles, as in
    :mod:`studies.adoption`)."""
    adoption = getattr(fl, "adoption", None) if fl is not None else None
    return (
        adoption is not None
        and getattr(adoption.source, "value", adoption.source) == "simbench"
        and not fd.three_phase
    )


def _feeder_entity(feeder_sim, fd, start: str | None, **extra):
    """The ``Grid`` entity of a ``[feeder]`` spec on a started FeederSim (``extra`` params,
    e.g. the ``island`` of a one-feeder run)."""
    return feeder_sim.Grid(**_feeder_params(fd, start), **extra)


def _feeder_params(fd, start: str | None) -> dict:
    """FeederSim ``Grid`` params of a ``[feeder]`` spec."""
    # plain values: the feeder may run in its own process (cosim.specs.to_params)
    plain = to_params(fd.transformer)
    transformer = {
        "rating_mva": plain["rating_mva"],
        "cooling": plain["cooling"],
        "ambient_c": plain["ambient_c"],
        **plain["overrides"],
    }
    # the three-phase engine has one method (AC) and its source voltage from the file
    balanced = (
        {"regulator_control": plain_value(fd.regulator_control)}
        if fd.three_phase
        else {"method": plain_value(fd.method), "ext_grid_vm_pu": fd.ext_grid_vm_pu}
    )
    return dict(
        feeder=fd.name,
        **balanced,
        load_scale=fd.load_scale,
        transformer=transformer,
        # the feeder reads its own load profile: a ProfileSim would be a third simulator
        # that mosaik schedules every step for one number (see docs/architecture.md)
        load_profile=fd.load_profile,
        load_column=fd.load_column,
        ambient_column=fd.ambient_column,
        start=start,
    )


def _fleet_entity(fleet_sim, fl, buses: list[int] | None, seed: int, remote_fleet: bool, **extra):
    """The ``Fleet`` entity of a ``[fleet]`` spec on a started FleetSim (``extra`` params,
    e.g. the phases of a three-phase feeder)."""
    params = {**_fleet_params(fl, buses, seed), **extra}
    # in-process the fleet gets the settings parsed once; in its own process their table
    params["control"] = to_params(fl)["settings"] if remote_fleet else fl.settings
    return fleet_sim.Fleet(**params)


def _fleet_params(fl, buses: list[int] | None, seed: int) -> dict:
    """FleetSim ``Fleet`` params of a ``[fleet]`` spec (``control`` set by the caller)."""
    return dict(
        n_vehicles=fl.n_vehicles,
        buses=buses,
        preset=plain_value(fl.preset),
        policy=plain_value(fl.policy),
        seed=seed,
        control=None,
        table=fl.table,
        # the validation made it the system's frequency.f0_hz (or refused a mismatch)
        f_nominal_hz=float(fl.f_nominal_hz),
        packet_loss=fl.packet_loss,
    )


def _populate_many(
    world,
    scenario: Scenario,
    ents: dict,
    fast_clock: dict,
    remote: RemoteSim | None,
    fleet_replicas: float,
    n_groups: int | None,
) -> None:
    """Several ``[[feeders]]``: ``n_groups`` FeederGroupSims holding the feeder + fleet pairs
    (or, for 0, one FeederSim and one FleetSim per feeder), one FrequencySim.

    Entities are keyed ``feeder:<label>`` and ``fleet:<label>``; with ``remote`` each
    simulator of that kind runs in a process of its own (mosaik starts one per ``start``).
    """
    sim = scenario.simulation
    remote = remote or sim.remote
    if n_groups:
        _populate_groups(world, scenario, ents, fast_clock, remote is not RemoteSim.NONE, n_groups)
    else:
        for entry in scenario.feeders:
            fd = entry.feeder
            feeder_sim = world.start(
                THREE_PHASE_FEEDER_SIM if fd.three_phase else "FeederSim",
                step_size=sim.to_steps(fd.step_s or sim.step_s),
            )
            extra = {"replace_ev_loads": True} if _replaces_ev_loads(fd, entry.fleet) else {}
            ents[f"feeder:{entry.label}"] = _feeder_entity(feeder_sim, fd, sim.start, **extra)
            if entry.has_fleet:
                fl = entry.fleet
                buses = None if fl.table else _buses_of(fl, fd)
                fleet_sim = world.start("FleetSim", **fast_clock)
                ents[f"fleet:{entry.label}"] = _fleet_entity(
                    fleet_sim,
                    fl,
                    buses,
                    entry.seed,
                    remote is RemoteSim.FLEET,
                    **_phase_params(fd, fl),
                )
    if scenario.frequency is not None:
        ents["frequency"] = _frequency_entity(world, scenario, fast_clock, fleet_replicas)
    _events_entity(world, scenario, ents, fast_clock)


def _group_count(n_feeders: int, remote: RemoteSim, feeder_groups: int | None) -> int:
    """How many FeederGroupSims share ``n_feeders`` pairs (0: none, one simulator each)."""
    if feeder_groups is not None:
        if not (isinstance(feeder_groups, int) and feeder_groups >= 0):
            raise SimulationError(f"feeder_groups: {feeder_groups!r} is not an integer >= 0")
        return min(feeder_groups, n_feeders)
    if remote is RemoteSim.NONE:
        return 1
    return max(1, min(n_feeders, os.cpu_count() or 1))


def _populate_groups(
    world, scenario: Scenario, ents: dict, fast_clock: dict, remote: bool, n_groups: int
) -> None:
    """The feeder + fleet pairs on ``n_groups`` FeederGroupSims (feeders dealt in turn)."""
    sim = scenario.simulation
    groups = [world.start("FeederGroupSim", **fast_clock) for _ in range(n_groups)]
    for i, entry in enumerate(scenario.feeders):
        fd, fl = entry.feeder, entry.fleet
        fleet = None
        if entry.has_fleet:
            buses = None if fl.table else _buses_of(fl, fd)
            fleet = {**_fleet_params(fl, buses, entry.seed), **_phase_params(fd, fl)}
            # in-process the fleet gets the settings parsed once; in its own process their table
            fleet["control"] = to_params(fl)["settings"] if remote else fl.settings
        pair = groups[i % n_groups].Pair(
            feeder={
                **_feeder_params(fd, sim.start),
                **({"replace_ev_loads": True} if _replaces_ev_loads(fd, fl) else {}),
            },
            fleet=fleet,
            feeder_step_size=sim.to_steps(fd.step_s or sim.step_s),
            three_phase=bool(fd.three_phase),
        )
        children = {child.type: child for child in pair.children}
        ents[f"feeder:{entry.label}"] = children["Grid"]
        if "Fleet" in children:
            ents[f"fleet:{entry.label}"] = children["Fleet"]


def _connect_many(connect: _Connector, scenario: Scenario, ents: dict) -> None:
    """Each fleet with its own feeder (time-shifted voltages) and every fleet with the one
    frequency model: ``FrequencySim`` sums their ``p_mw`` (its ``p_fleet_mw`` input)."""
    freq, events = ents.get("frequency"), ents.get("events")
    for entry in scenario.feeders:
        feeder = ents[f"feeder:{entry.label}"]
        fleet = ents.get(f"fleet:{entry.label}")
        if fleet is None:
            continue
        if fleet.sid != feeder.sid:  # a FeederGroupSim closes this loop inside
            connect(fleet, feeder, "bus_p_mw", "bus_q_mvar")
            connect(feeder, fleet, "bus_vm_pu", time_shifted=1, initial_data={"bus_vm_pu": {}})
        if freq is not None:
            connect(fleet, freq, ("p_mw", "p_fleet_mw"))
            f0 = float(scenario.frequency.params.f0_hz)
            connect(freq, fleet, "f_hz", time_shifted=1, initial_data={"f_hz": f0})
    if events is not None and freq is not None:
        # feeder-level events (line outage, island) are refused with several feeders
        connect(events, freq, "p_event_mw", "island")


def _frequency_entity(world, scenario: Scenario, fast_clock: dict, fleet_replicas: float):
    freq_sim = world.start("FrequencySim", **fast_clock)
    kwargs = {"fleet_replicas": float(fleet_replicas)} if fleet_replicas != 1.0 else {}
    return freq_sim.Grid(
        params=scenario.frequency.params, island_params=scenario.frequency.island, **kwargs
    )


def _events_entity(world, scenario: Scenario, ents: dict, fast_clock: dict) -> None:
    if scenario.events:
        events_sim = world.start("EventSim", **fast_clock)
        ents["events"] = events_sim.Events(events=[_event_params(e) for e in scenario.events])


def _event_params(event) -> dict:
    """The plain parameters of one event for the EventSim (a fault's keys only on faults)."""
    out = {"t_s": event.t_s, "kind": event.kind.value, "p_mw": event.p_mw, "line": event.line}
    if event.kind.value == "fault":
        for key in ("bus", "duration_s", "r_fault_ohm", "x_fault_ohm", "r_fault_pu",
                    "x_fault_pu", "s_sc_mva", "rx"):  # fmt: skip
            out[key] = getattr(event, key)
    return out


def _connect(connect: _Connector, scenario: Scenario, ents: dict, loop: bool = False) -> None:
    sim = scenario.simulation
    feeder, fleet = ents.get("feeder"), ents.get("fleet")
    freq, events = ents.get("frequency"), ents.get("events")
    if fleet is not None:
        if feeder is not None:
            connect(fleet, feeder, "bus_p_mw", "bus_q_mvar")
            if loop:
                # same-time loop: the voltages of this step, on a weak connection (a loop pass)
                connect(feeder, fleet, ("bus_vm_loop_pu", "bus_vm_pu"), weak=True)
            else:
                # local measurement: the voltage of the feeder's previous step
                connect(feeder, fleet, "bus_vm_pu", time_shifted=1, initial_data={"bus_vm_pu": {}})
        if freq is not None:
            connect(fleet, freq, ("p_mw", "p_fleet_mw"))
            f0 = float(scenario.frequency.params.f0_hz)
            connect(freq, fleet, "f_hz", time_shifted=1, initial_data={"f_hz": f0})
        setpoints = ents.get("setpoints")
        if setpoints is not None:
            # communication channel of the aggregator's set-points: latency (and packet loss,
            # applied in the FleetSim)
            latency = sim.to_steps(scenario.fleet.latency_s)
            pair = (scenario.fleet.setpoint_column, "p_setpoint_mw")
            if latency > 0:
                connect(
                    setpoints,
                    fleet,
                    pair,
                    time_shifted=latency,
                    initial_data={pair[0]: float("nan")},  # keyed by the source attribute
                )
            else:
                connect(setpoints, fleet, pair)
    if events is not None:
        islanding = any(e.kind.value == "island" for e in scenario.events)
        if freq is not None and feeder is not None and islanding and _island_params(scenario):
            # the feeder's breaker decides (a reconnection waits for the sync window): the
            # request goes to the feeder, its breaker state to the swing model
            connect(events, freq, "p_event_mw")
            connect(events, feeder, "island")
            connect(feeder, freq, "p_grid_import_mw", ("breaker_open", "island"))
            f0 = float(scenario.frequency.params.f0_hz)
            connect(freq, feeder, "f_hz", time_shifted=1, initial_data={"f_hz": f0})
        elif freq is not None:
            connect(events, freq, "p_event_mw", "island")
            if feeder is not None and islanding:
                connect(feeder, freq, "p_grid_import_mw")
        if feeder is not None and any(e.kind.value == "line_outage" for e in scenario.events):
            connect(events, feeder, "lines_out")
        if feeder is not None and any(e.kind.value == "fault" for e in scenario.events):
            connect(events, feeder, "fault_event")


def _record(
    world, connect, scenario: Scenario, ents: dict, path: Path, run_id: str, clock: dict
) -> None:
    extra: dict[str, Any] = {"time_resolution_s": scenario.simulation.time_resolution_s}
    if scenario.many_feeders:
        # which simulators are which feeder: the results' signals are named by simulator
        extra["feeders"] = {
            e.label: {
                kind: ents[f"{kind}:{e.label}"].full_id
                for kind in ("feeder", "fleet")
                if f"{kind}:{e.label}" in ents
            }
            for e in scenario.feeders
        }
    meta = run_metadata(scenario.raw, seed=scenario.simulation.seed, extra=extra)
    collector_sim = world.start("Collector", **clock)
    monitor = collector_sim.Monitor(
        path=str(path),
        fmt=scenario.output.format.value,
        flush_every=scenario.output.flush_every,
        metadata=meta,
        run_id=run_id,
        # run_scenario commits the file only when the run reached its end
        commit_on_finalize=False,
    )
    ents["collector"] = monitor
    wanted = set(scenario.output.record)
    feeder_of = {f"feeder:{e.label}": e.feeder for e in scenario.feeders}
    feeder_of["feeder"] = scenario.feeder
    for key, entity in ents.items():
        if key == "collector":
            continue
        # a profile's attributes are its file's columns
        profile = key == "setpoints"
        kind = key.split(":")[0]  # several feeders: "feeder:<label>", "fleet:<label>"
        attrs = sorted(entity.model_mock.output_attrs) if profile else RECORDED[kind]
        if kind == "feeder" and getattr(feeder_of.get(key), "three_phase", False):
            attrs = attrs + THREE_PHASE_RECORDED
        if wanted:
            fd = feeder_of.get(key)
            if kind == "feeder" and fd.load_column in wanted:
                wanted.add("load_pu_used")  # the profile's column is recorded as used
            if kind == "feeder" and fd.ambient_column in wanted:
                wanted.add("ambient_c_used")
            attrs = [a for a in attrs if a in wanted]
        if attrs:
            connect(entity, monitor, *attrs)


def _safe_shutdown(world) -> None:
    # After a failure mosaik leaves its simulator tasks pending; cancel them first, or asyncio
    # prints "Task was destroyed but it is pending!" for each when the loop is closed.
    loop = getattr(world, "loop", None)
    if loop is not None and not loop.is_closed() and not loop.is_running():
        with contextlib.suppress(Exception):
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    # already shut down, or a remote process is gone
    with contextlib.suppress(Exception):
        world.shutdown()


# ---------------------------------------------------------------------------------------------
# running


@dataclass
class RunResult:
    """Outcome of :func:`run_scenario`."""

    out_dir: Path
    results_path: Path | None
    metrics: dict[str, float]
    wall_time_s: float
    interrupted: bool = False
    scenario: Scenario | None = field(default=None, repr=False)
    #: limits the run broke (:func:`cosim.violations.run_violations`; ``Violation.to_dict()``
    #: for JSON) and the limits it could not check (a missing rating, said as such)
    violations: list = field(default_factory=list)
    limits_not_checked: list[str] = field(default_factory=list)

    def violation_lines(self) -> list[str]:
        """One line per broken limit, then one per limit not checked (for reports: first)."""
        return [v.describe() for v in self.violations] + list(self.limits_not_checked)

    def summary(self) -> dict[str, Any]:
        """The run's JSON summary: ``results``, ``wall_time_s``, ``metrics``, ``violations``
        (``Violation.to_dict()`` each) and ``limits_not_checked``."""
        return {
            "results": None if self.results_path is None else str(self.results_path),
            "wall_time_s": self.wall_time_s,
            "metrics": dict(self.metrics),
            "violations": [v.to_dict() for v in self.violations],
            "limits_not_checked": list(self.limits_not_checked),
        }

    def frame(self):
        """The results in long form (see :func:`cosim.results.read_results`)."""
        if self.results_path is None:
            raise SimulationError("this run recorded no results")
        return read_results(self.results_path)[0]


def run_scenario(
    scenario: Scenario,
    out_dir: str | Path,
    *,
    progress: bool = True,
    remote: RemoteSim | None = None,
    record: bool = True,
    same_time_loop: bool = False,
    feeder_groups: int | None = None,
) -> RunResult:
    """Run a validated scenario through mosaik; write results and return the key metrics.

    Parameters
    ----------
    scenario : Scenario
        From :func:`cosim.scenario.load_scenario`.
    out_dir : path
        Directory for the results file (created).
    progress : bool, keyword-only
        Show a progress bar on stderr (simulated time and ETA).
    remote : RemoteSim, optional, keyword-only
        Run the fleet or the feeder as a separate process (overrides the scenario).
    record : bool, keyword-only
        Write the results file (default). Without it, ``metrics`` is empty.
    same_time_loop : bool, keyword-only
        Close the voltage -> fleet -> voltage loop within each step (see :func:`build_world`).
    feeder_groups : int, optional, keyword-only
        Several ``[[feeders]]``: the simulators sharing them (see :func:`build_world`).

    Returns
    -------
    RunResult
        ``metrics`` (see :func:`metrics_from_results`) for the ``run`` command and for sweeps.

    Raises
    ------
    SimulationError
        A simulator failed; the results written so far are kept. On Ctrl-C the results file
        is closed properly and :class:`KeyboardInterrupt` is re-raised.
    """
    # lazy: numba-compiled fleet kernels, ~0.9 s (see module note)
    from cosim import simulators

    out = Path(out_dir)
    run_id = uuid.uuid4().hex
    scenario = resolve_adoption(scenario, out)  # [fleet] adoption: its fleet table
    bar = _progress_bar(scenario, run_id) if progress else None
    t0 = wall_clock.perf_counter()
    built = build_world(
        scenario,
        out,
        remote=remote,
        record=record,
        run_id=run_id,
        same_time_loop=same_time_loop,
        feeder_groups=feeder_groups,
    )
    interrupted = False
    collectors = [c for c in simulators.LIVE_COLLECTORS if getattr(c, "run_id", None) == run_id]
    try:
        built.run()
    except KeyboardInterrupt:
        interrupted = True
        raise
    except V2GCosimError:
        raise
    except Exception as error:  # a simulator raised inside mosaik
        raise _as_simulation_error(error) from None
    finally:
        # A run that did not reach its end keeps the earlier results file and leaves its own
        # rows in the partial file (cosim.results.partial_path); closing may itself fail
        # (a full disk), which must not hide the first error.
        failed = sys.exc_info()[0] is not None
        close_error: BaseException | None = None
        for collector in collectors:
            try:
                collector.close(commit=not failed)
            except V2GCosimError as error:
                close_error = close_error or error
        _safe_shutdown(built.world)
        simulators.PROGRESS_HOOKS.pop(run_id, None)
        if bar is not None:
            bar.close()
        if failed and record:
            print(
                f"results written so far: {partial_path(built.results_path)}",
                file=sys.stderr,
            )
        if close_error is not None and not failed:
            raise close_error
    wall = wall_clock.perf_counter() - t0
    metrics: dict[str, float] = {}
    violations, not_checked = [], []
    if record:  # the results file is read once for both
        frame = read_results(built.results_path)[0]
        metrics = metrics_from_results(frame, duration_s=scenario.simulation.duration_s)
        ids = None
        if scenario.many_feeders:
            ids = {
                e.label: [
                    built.entities[k].full_id
                    for k in (f"feeder:{e.label}", f"fleet:{e.label}")
                    if k in built.entities
                ]
                for e in scenario.feeders
            }
        violations, not_checked = violations_of_run(scenario, frame, simulator_ids=ids)
    return RunResult(
        out_dir=out,
        results_path=built.results_path if record else None,
        metrics=metrics,
        wall_time_s=wall,
        interrupted=interrupted,
        scenario=scenario,
        violations=violations,
        limits_not_checked=not_checked,
    )


def violations_of_run(
    scenario: Scenario,
    results_path: str | Path | pd.DataFrame,
    *,
    simulator_ids: dict[str, list[str]] | None = None,
):
    """:func:`cosim.violations.run_violations` with the scenario's feeder, steps and
    nominal frequency (``(violations, not_checked)``).

    With several feeders, ``simulator_ids`` (label -> the full ids of that feeder's
    simulator entities, e.g. ``["FeederSim-2.grid", "FleetSim-2.fleet"]``) checks each feeder
    on its own signals (bus numbers repeat across feeders) and names it in each violation's
    element (``"<label>: bus 17"``); the frequency is checked once.
    """
    if scenario.many_feeders and simulator_ids:
        return _violations_per_feeder(scenario, results_path, simulator_ids)
    sim = scenario.simulation
    feeder = scenario.feeder
    f0_hz = None
    if scenario.frequency is not None:
        f0_hz = float(scenario.frequency.params.f0_hz)
    return run_violations(
        results_path,
        feeder=None if feeder is None else str(feeder.name),
        feeder_step_s=None if feeder is None else (feeder.step_s or sim.step_s),
        duration_s=sim.duration_s,
        f0_hz=f0_hz,
    )


def _violations_per_feeder(scenario: Scenario, results_path, simulator_ids: dict[str, list[str]]):
    frame = results_frame(results_path)
    sim = scenario.simulation
    out, not_checked = [], []
    feeder_rows = np.zeros(len(frame), dtype=bool)
    for entry in scenario.feeders:
        prefixes = tuple(f"{i}." for i in simulator_ids.get(entry.label, []))
        if not prefixes:
            continue
        rows = signal_mask(frame, lambda name, p=prefixes: name.startswith(p))
        feeder_rows |= rows
        found, missing = run_violations(
            frame[rows],
            feeder=str(entry.feeder.name),
            feeder_step_s=entry.feeder.step_s or sim.step_s,
            duration_s=sim.duration_s,
        )
        out += [replace(v, element=f"{entry.label}: {v.element}") for v in found]
        not_checked += [f"{entry.label}: {text}" for text in missing]
    if scenario.frequency is not None:
        found, _ = run_violations(
            frame[~feeder_rows],
            duration_s=sim.duration_s,
            f0_hz=float(scenario.frequency.params.f0_hz),
        )
        out += found
    return out, not_checked


def _as_simulation_error(error: Exception) -> V2GCosimError:
    # mosaik wraps simulator exceptions; find one of ours in the chain
    seen = error
    while seen is not None:
        if isinstance(seen, V2GCosimError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return SimulationError(f"the co-simulation failed: {type(error).__name__}: {error}")


def _progress_bar(scenario: Scenario, run_id: str):
    # lazy: numba-compiled fleet kernels, ~0.9 s (see module note)
    from cosim import simulators

    total = scenario.simulation.duration_s
    bar = tqdm(
        total=total,
        unit="s",
        unit_scale=True,
        desc="simulated",
        bar_format="{desc}: {n:.1f}/{total:.0f} s |{bar}| {percentage:3.0f}% "
        "[{elapsed}<{remaining}]",
        leave=True,
    )

    def hook(t_s: float) -> None:
        if t_s > bar.n:
            bar.update(t_s - bar.n)

    simulators.PROGRESS_HOOKS[run_id] = hook
    return bar


#: Every key a ``run``'s ``metrics`` can hold (:func:`metrics_from_results`), and
#: ``violations`` (the run's document lists them beside the metrics): what a ``run`` sweep
#: may ask for (``studies.sweep_spec`` reads this tuple).
RUN_METRIC_KEYS = (
    "f_nadir_hz",
    "f_zenith_hz",
    "f_final_hz",
    "max_abs_rocof_hz_per_s",
    "max_abs_rocof_500ms_hz_per_s",
    "ufls_shed_mw",
    "min_vm_pu",
    "max_vm_pu",
    "min_vm_a_pu",
    "min_vm_b_pu",
    "min_vm_c_pu",
    "max_vm_a_pu",
    "max_vm_b_pu",
    "max_vm_c_pu",
    "max_vuf_percent",
    "max_line_loading_percent",
    "max_trafo_loading_percent",
    "max_transformer_load_pu",
    "max_hot_spot_c",
    "max_top_oil_c",
    "ageing_h",
    "e_loss_feeder_kwh",
    "fleet_energy_kwh",
    "fleet_e_charged_kwh",
    "fleet_e_discharged_kwh",
    "fleet_e_loss_kwh",
    "max_fleet_export_mw",
    "max_fleet_import_mw",
    "max_n_tripped",
    "soc_min_frac",
    "soc_final_frac",
    "violations",
)


def _nanmax(values: np.ndarray) -> float:
    """Largest finite value; NaN when there is none (e.g. no line has a rating)."""
    finite = values[np.isfinite(values)]
    return float(finite.max()) if finite.size else math.nan


def metrics_from_results(
    path: str | Path | pd.DataFrame, *, duration_s: float | None = None
) -> dict[str, float]:
    """Key numbers of a run from its results file (or the frame already read from it).

    The frequency metrics are those of :mod:`grids.metrics` (one definition for every path):
    ``f_nadir_hz`` / ``f_zenith_hz`` are the sampled lowest / highest recorded frequency
    (:func:`grids.metrics.frequency_nadir` over the whole run), and
    ``max_abs_rocof_500ms_hz_per_s`` the largest magnitude of the RoCoF averaged over a 500 ms
    sliding window (:func:`grids.metrics.max_abs_rocof_hz_per_s`, the ENTSO-E measurement
    window). ``max_abs_rocof_hz_per_s`` is a different quantity, kept under its name: the
    largest magnitude of the swing model's instantaneous ``df/dt`` at the recorded steps
    (``FrequencySim``'s ``rocof_hz_per_s`` output, the model's exact derivative), which
    includes the step right after an event that a 500 ms window averages out.

    Keys (present when the simulator was part of the run; :data:`RUN_METRIC_KEYS`):
    ``f_nadir_hz``, ``f_zenith_hz``, ``max_abs_rocof_hz_per_s``,
    ``max_abs_rocof_500ms_hz_per_s`` [Hz/s] (NaN for a run shorter than 500 ms),
    ``f_final_hz``, ``ufls_shed_mw``; ``min_vm_pu``, ``max_vm_pu``, on three-phase feeders
    ``min_vm_a_pu`` ... ``max_vm_c_pu`` (per phase) and ``max_vuf_percent``,
    ``max_line_loading_percent`` (NaN when no line has a rating: not checked, never 0 %),
    ``max_trafo_loading_percent`` (NaN without a transformer in the net),
    ``max_transformer_load_pu``, ``max_hot_spot_c``, ``max_top_oil_c``, ``ageing_h``,
    ``e_loss_feeder_kwh``; ``fleet_energy_kwh`` (net energy delivered to the grid by the
    fleet), ``fleet_e_charged_kwh``, ``fleet_e_discharged_kwh``, ``fleet_e_loss_kwh``,
    ``max_fleet_export_mw``, ``max_fleet_import_mw``, ``max_n_tripped``, ``soc_min_frac``,
    ``soc_final_frac``.

    With several feeders (``[[feeders]]``) the fleet and feeder-loss series of every feeder are
    summed at each time first (the fleets' totals), and ``soc_*`` take the mean of the
    fleets' mean SoC (each fleet weighted alike); voltage, loading and temperature extremes
    are over every feeder.
    """
    frame = results_frame(path)
    values = frame["value"].to_numpy()
    t = frame["t_s"].to_numpy()

    def sel(suffix: str, combine=None):
        names: set[str] = set()

        def match(name: str) -> bool:
            if name.endswith(suffix):
                names.add(name)
                return True
            return False

        mask = signal_mask(frame, match)
        if combine is None or len(names) < 2:
            return t[mask], values[mask]
        return _combined_series(frame, sorted(names), combine)

    metrics: dict[str, float] = {}

    def put(name: str, suffix: str, reduce, combine=None) -> None:
        """Set ``metrics[name] = reduce(values)`` when the signal was recorded; ``combine``
        (``"sum"``, ``"mean"``) merges the series of several simulators at each time."""
        tt, vv = sel(suffix, combine)
        if vv.size:
            metrics[name] = float(reduce(tt, vv)) + 0.0  # + 0.0: no negative zero

    put("f_nadir_hz", ".f_hz", lambda t, v: frequency_nadir(t, v).f_hz)
    put("f_zenith_hz", ".f_hz", lambda t, v: frequency_nadir(t, v, under_frequency=False).f_hz)
    put("f_final_hz", ".f_hz", lambda t, v: v[-1])
    put("max_abs_rocof_hz_per_s", ".rocof_hz_per_s", lambda t, v: np.abs(v).max())
    put("max_abs_rocof_500ms_hz_per_s", ".f_hz", lambda t, v: max_abs_rocof_hz_per_s(t, v))
    put("ufls_shed_mw", ".ufls_shed_mw", lambda t, v: v.max())
    put("min_vm_pu", ".vm_min_pu", lambda t, v: v.min())
    put("max_vm_pu", ".vm_max_pu", lambda t, v: v.max())
    for phase in "abc":  # three-phase feeders: per phase, and the voltage unbalance
        put(f"min_vm_{phase}_pu", f".vm_min_{phase}_pu", lambda t, v: v.min())
        put(f"max_vm_{phase}_pu", f".vm_max_{phase}_pu", lambda t, v: v.max())
    put("max_vuf_percent", ".vuf_max_percent", lambda t, v: _nanmax(v))
    put("max_line_loading_percent", ".max_line_loading_percent", lambda t, v: _nanmax(v))
    put("max_trafo_loading_percent", ".max_trafo_loading_percent", lambda t, v: _nanmax(v))
    put("max_transformer_load_pu", ".transformer_load_pu", lambda t, v: _nanmax(v))
    put("max_hot_spot_c", ".hot_spot_c", lambda t, v: v.max())
    put("max_top_oil_c", ".top_oil_c", lambda t, v: v.max())
    put("ageing_h", ".ageing_h", lambda t, v: v.max())
    energy = lambda t, v: _energy_kwh(t, v, duration_s)  # noqa: E731
    put("e_loss_feeder_kwh", ".p_loss_mw", energy, "sum")
    put("fleet_energy_kwh", "fleet.p_mw", energy, "sum")
    for key in ("e_charged_kwh", "e_discharged_kwh", "e_loss_kwh"):
        put(f"fleet_{key}", f"fleet.{key}", lambda t, v: v[-1], "sum")
    put("max_fleet_export_mw", "fleet.p_mw", lambda t, v: max(v.max(), 0.0), "sum")
    put("max_fleet_import_mw", "fleet.p_mw", lambda t, v: max(-v.min(), 0.0), "sum")
    put("max_n_tripped", "fleet.n_tripped", lambda t, v: v.max(), "sum")
    put("soc_min_frac", "fleet.soc_mean_frac", lambda t, v: v.min(), "mean")
    put("soc_final_frac", "fleet.soc_mean_frac", lambda t, v: v[-1], "mean")
    return metrics


def _combined_series(frame, names: list[str], combine: str) -> tuple[np.ndarray, np.ndarray]:
    """The series of several simulators (one per feeder) as one: each held from sample to
    sample (the collector stores a value in the high-rate windows only when it changed) on
    the union of their times, then summed (``"sum"``) or averaged (``"mean"``)."""
    parts = []
    for name in names:
        rows = signal_mask(frame, lambda n, name=name: n == name)
        t_s = frame["t_s"].to_numpy()[rows]
        order = np.argsort(t_s, kind="stable")
        parts.append((t_s[order], frame["value"].to_numpy()[rows][order]))
    times = np.unique(np.concatenate([p[0] for p in parts]))
    total = np.zeros(times.size)
    count = np.zeros(times.size)
    for t_s, v in parts:
        k = np.searchsorted(t_s, times, side="right") - 1
        seen = k >= 0  # before its first sample a simulator adds nothing
        total[seen] += v[k[seen]]
        count[seen] += 1
    if combine == "mean":
        total = total / np.maximum(count, 1)
    return times, total


def _energy_kwh(t_s: np.ndarray, p_mw: np.ndarray, end_s: float | None) -> float:
    """Energy of a zero-order-hold power series [kWh]: each sample is held until the next one,
    the last until ``end_s`` (the run's duration; default: the median step)."""
    if t_s.size == 0:
        return 0.0
    dt = np.diff(t_s)
    if end_s is None:
        last = float(np.median(dt)) if dt.size else 0.0
    else:
        last = max(0.0, float(end_s) - float(t_s[-1]))
    dt = np.append(dt, last)
    value = float(np.sum(p_mw * dt)) * 1000.0 / 3600.0
    return value if math.isfinite(value) else float("nan")
