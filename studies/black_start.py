"""Black start of an islanded feeder section by a grid-forming V2G fleet.

An outage isolates part of a feeder (e.g. a hospital microgrid: ``case33bw`` downstream of
bus 5). A grid-forming fleet (an electric-bus depot) energises the island and picks up its
loads block by block, each with cold-load-pickup inrush
(:func:`studies.cold_load_pickup.cold_load_pickup_factor`).

The island is simulated as a direct time loop at ``simulation.step_s``:

* **frequency** - the fleet's virtual synchronous machine is the only source, so the island
  frequency is the swing model in island mode, ``SwingParameters.island(s_base_mw = fleet
  rating, h_s = vsm.h_s, d_pu = vsm.d_pu)``, driven by ``P_ref − P_demand``; the microgrid
  controller restores the frequency with an integral secondary control on the VSM set-point
  ``dP_ref/dt = −K_i · Δf/f0 · S_fleet`` (``secondary_ki_per_s``);
* **voltages and losses** - the islanded power flow (:class:`grids.island.IslandPowerFlow`)
  of the island sub-net: no slack bus; the fleet at each of its buses is a grid-forming unit
  that forms ``v_setpoint_pu`` at no reactive power and shares the load by Q-V droop
  (``q_droop_pu``) and P-f droop (the VSM's ``1/d_pu``; every unit has the fleet's settings,
  so they share active power by rating); the units' output is the fleet's
  ``P_demand = loads + losses``; the whole window of a pickup is solved in one batch;
* **energy and limits** - :class:`vehicle_models.fleet.Fleet` (depot preset) follows
  ``P_demand`` as its set-point; its feasible discharge range gives the power limit, its
  kVA rating the current limit (``|S| / V ≤ current_limit_pu · S_rated``) and its batteries
  the SoC.

Every planned pickup is tried from the current state over its window (until the next
planned pickup, or ``window_s`` for the last); it is accepted if the fleet power and current
limits, the SoC floor, the frequency band and the voltage band hold throughout, else it is
rejected (the state is rolled back and the block stays dark) and the next block is tried:
the accepted blocks form the largest feasible pickup sequence in the planned order. The
hold time is how long the fleet's usable energy (above the SoC floor, after discharge
efficiency) supplies the restored load and losses.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cosim.scenario import register_section
from grids.errors import ScenarioError, check_problems
from grids.frequency import SwingModel, SwingParameters
from grids.limits import Violation, voltage_violations
from grids.metrics import frequency_nadir, voltage_envelope
from grids.params import REQUIRED, Param, is_number, read_params, unknown_keys
from grids.powerflow import net_injection
from studies.cold_load_pickup import cold_load_pickup_factor
from studies.study_inputs import build_fleet, feeder_net, split_scenario
from vehicle_models.coupling import coupled_step
from vehicle_models.settings import GridMode, InverterSettings

_SECTION = "black_start"
# the section's frequency band defaults depend on [frequency] f0_hz: the study validates it
register_section(_SECTION)


class Rejection(Enum):
    """Why a pickup was rejected (the first limit violated in its window)."""

    POWER = "power"
    CURRENT = "current"
    SOC = "soc"
    FREQUENCY = "frequency"
    VOLTAGE = "voltage"
    POWER_FLOW = "power_flow"


@dataclass(frozen=True)
class Pickup:
    """One planned load block (``[[black_start.pickups]]``)."""

    name: str
    buses: tuple[int, ...]
    t_s: float
    k_inrush: float = 2.0
    tau_s: float = 30.0
    p_mw: float | None = None  # diversified demand; default: the net's loads at ``buses``


@dataclass(frozen=True)
class BlackStartSettings:
    """The ``[black_start]`` section.

    Parameters
    ----------
    island_root_bus : int
        The island is this bus and every bus downstream of it (the feeder is radial and fed
        from its external grid; the line into ``island_root_bus`` is open).
    fleet_bus : int
        Bus of the grid-forming fleet; default: every bus of the fleet (one grid-forming
        unit per bus).
    v_setpoint_pu : float
        Voltage the fleet forms at its bus at zero reactive power [pu].
    q_droop_pu : float
        Q-V droop of the fleet's units [pu voltage / pu reactive power on the unit's
        rating] (0: the fleet holds ``v_setpoint_pu`` exactly).
    f_min_hz, f_max_hz : float
        Frequency band every pickup must respect [Hz].
    v_min_pu, v_max_pu : float
        Voltage band at every island bus [pu].
    soc_min_frac : float
        SoC floor of the fleet for restoration and hold [-] (at least the batteries' own
        minimum/reserve).
    current_limit_pu : float
        Fleet current limit as a multiple of its rated current at 1 pu voltage [-].
    secondary_ki_per_s : float
        Integral gain of the island's frequency restoration [pu power / (pu frequency s)].
    window_s : float
        Simulated time after the last pickup [s].
    time_of_day_h : float
        Time of day at island energisation [h] (depot buses are plugged in at night).
    pickups : tuple of Pickup
        The planned sequence.
    """

    island_root_bus: int
    pickups: tuple[Pickup, ...]
    fleet_bus: int | None = None
    v_setpoint_pu: float = 1.0
    q_droop_pu: float = 0.05
    f_min_hz: float = 59.0
    f_max_hz: float = 61.0
    v_min_pu: float = 0.9
    v_max_pu: float = 1.1
    soc_min_frac: float = 0.2
    current_limit_pu: float = 1.0
    secondary_ki_per_s: float = 2.0
    window_s: float = 60.0
    time_of_day_h: float = 23.0

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], *, f0_hz: float = 60.0, path: str = _SECTION
    ) -> BlackStartSettings:
        """Validate the section; raise ScenarioError listing every problem.

        Parameters
        ----------
        data : mapping
            The ``[black_start]`` table.
        f0_hz : float
            Nominal frequency [Hz] (the default frequency band is ``f0 ± 1 Hz``).
        path : str
            Key path of the table (for messages).

        Returns
        -------
        BlackStartSettings
        """
        problems: list[str] = []
        kwargs = read_params(
            data, black_start_params(f0_hz), path=path, problems=problems, allow_unknown=True
        )
        if isinstance(data, Mapping):
            problems.extend(
                unknown_keys(
                    data, [p.name for p in black_start_params(f0_hz)] + ["pickups"], path=path
                )
            )
        if kwargs["f_min_hz"] is not None and kwargs["f_min_hz"] >= f0_hz:
            problems.append(f"{path}.f_min_hz: {kwargs['f_min_hz']} must be below f0 = {f0_hz}")
        if kwargs["f_max_hz"] is not None and kwargs["f_max_hz"] <= f0_hz:
            problems.append(f"{path}.f_max_hz: {kwargs['f_max_hz']} must be above f0 = {f0_hz}")
        raw_pickups = data.get("pickups") if isinstance(data, Mapping) else None
        kwargs["pickups"] = _read_pickups(raw_pickups, f"{path}.pickups", problems)
        check_problems(problems, ScenarioError, f"invalid {path} section")
        return cls(**kwargs)


def black_start_params(f0_hz: float = 60.0) -> tuple[Param, ...]:
    """The numeric keys of ``[black_start]`` (the frequency band defaults to ``f0 ± 1 Hz``).

    Parameters
    ----------
    f0_hz : float
        Nominal frequency [Hz].

    Returns
    -------
    tuple of Param
    """
    return (
        Param("island_root_bus", REQUIRED, kind=int, lo=0, doc="first bus of the island"),
        Param("fleet_bus", None, kind=int, lo=0, doc="bus of the grid-forming fleet"),
        Param("v_setpoint_pu", 1.0, unit="pu", lo=0.9, hi=1.1, doc="voltage the fleet forms"),
        Param("q_droop_pu", 0.05, unit="pu", lo=0.0, hi=0.5, doc="Q-V droop of the fleet"),
        Param("f_min_hz", f0_hz - 1.0, unit="Hz", lo=40.0, hi=70.0, doc="lowest frequency"),
        Param("f_max_hz", f0_hz + 1.0, unit="Hz", lo=40.0, hi=70.0, doc="highest frequency"),
        Param("v_min_pu", 0.9, unit="pu", lo=0.5, hi=1.0, doc="lowest island bus voltage"),
        Param("v_max_pu", 1.1, unit="pu", lo=1.0, hi=1.5, doc="highest island bus voltage"),
        Param("soc_min_frac", 0.2, unit="-", lo=0.0, hi=1.0, doc="SoC floor of the fleet"),
        Param(
            "current_limit_pu",
            1.0,
            unit="pu",
            lo=0.0,
            lo_open=True,
            hi=5.0,
            doc="fleet current limit (multiple of rated current)",
        ),
        Param(
            "secondary_ki_per_s",
            2.0,
            unit="1/s",
            lo=0.0,
            hi=100.0,
            doc="integral gain of the frequency restoration",
        ),
        Param(
            "window_s",
            60.0,
            unit="s",
            lo=0.0,
            lo_open=True,
            hi=86400.0,
            doc="time simulated after the last pickup",
        ),
        Param("time_of_day_h", 23.0, unit="h", lo=0.0, hi=24.0, doc="time of energisation"),
    )


#: Keys of one ``[[black_start.pickups]]`` table (``buses`` is read beside them).
PICKUP_PARAMS: tuple[Param, ...] = (
    Param("name", None, kind=str, doc="name of the block"),
    Param("t_s", REQUIRED, unit="s", lo=0.0, lo_open=True, hi=1e7, doc="pickup time"),
    Param("k_inrush", 2.0, unit="-", lo=1.0, hi=20.0, doc="cold-load-pickup inrush factor"),
    Param("tau_s", 30.0, unit="s", lo=0.0, lo_open=True, hi=86400.0, doc="inrush decay"),
    Param("p_mw", None, unit="MW", lo=0.0, lo_open=True, hi=1e4, doc="diversified demand"),
)


def _read_pickups(raw: Any, path: str, problems: list[str]) -> tuple[Pickup, ...]:
    if raw is None or (isinstance(raw, list) and not raw):
        problems.append(f"{path}: missing (at least one [[black_start.pickups]] table)")
        return ()
    if not isinstance(raw, list):
        problems.append(f"{path}: expected an array of tables [[black_start.pickups]]")
        return ()
    out: list[Pickup] = []
    last_t = -math.inf
    for i, item in enumerate(raw):
        where = f"{path}[{i}]"
        if not isinstance(item, Mapping):
            problems.append(f"{where}: expected a table")
            continue
        n_before = len(problems)
        values = read_params(item, PICKUP_PARAMS, path=where, problems=problems, allow_unknown=True)
        problems.extend(unknown_keys(item, [p.name for p in PICKUP_PARAMS] + ["buses"], path=where))
        buses = item.get("buses")
        if (
            not isinstance(buses, list)
            or not buses
            or not all(isinstance(b, int) and not isinstance(b, bool) and b >= 0 for b in buses)
        ):
            problems.append(f"{where}.buses: {buses!r} is not a non-empty list of bus indices")
        t_s = values["t_s"] if is_number(values["t_s"]) else None
        if t_s is not None and t_s <= last_t:
            problems.append(f"{where}.t_s: {t_s} is not after the previous pickup ({last_t})")
        if len(problems) == n_before:
            out.append(
                Pickup(
                    name=values["name"] or f"block {i + 1}",
                    buses=tuple(int(b) for b in buses),
                    t_s=float(t_s),
                    k_inrush=float(values["k_inrush"]),
                    tau_s=float(values["tau_s"]),
                    p_mw=values["p_mw"],
                )
            )
            last_t = float(t_s)
        elif t_s is not None:
            last_t = max(last_t, float(t_s))
    return tuple(out)


@dataclass
class BlackStartScenario:
    """Everything the study needs, validated."""

    settings: BlackStartSettings
    step_s: float
    seed: int
    fleet: Any  # cosim.scenario.FleetConfig
    feeder: Any  # cosim.scenario.FeederConfig
    f0_hz: float = 60.0
    island_override: dict = field(default_factory=dict)  # [frequency.island]
    source: str = "<dict>"


def load_black_start_scenario(scenario: Mapping[str, Any] | str | Path) -> BlackStartScenario:
    """Read and validate a black-start scenario (dict or TOML path); every problem at once.

    Parameters
    ----------
    scenario : mapping or path
        A scenario dict or TOML file.

    Returns
    -------
    BlackStartScenario

    Raises
    ------
    ScenarioError
        Listing every problem with its key path.
    """
    shared, own, source, problems, raw = split_scenario(scenario, own_section=_SECTION)
    f0_hz = _system_f0_hz(shared, raw)
    settings = None
    if _SECTION not in raw and not own:
        problems.append(f"{_SECTION}: missing (needs island_root_bus and [[black_start.pickups]])")
    try:
        settings = BlackStartSettings.from_dict(own, f0_hz=f0_hz)
    except ScenarioError as exc:
        problems.extend(exc.problems)
    sim_raw = raw.get("simulation") if isinstance(raw.get("simulation"), Mapping) else {}
    step_raw = sim_raw.get("step_s")
    step_ok = isinstance(step_raw, int | float) and not isinstance(step_raw, bool)
    if step_ok and not 0.005 <= step_raw <= 1.0:
        problems.append(
            f"simulation.step_s: {step_raw} is outside the allowed 0.005 to 1 s for a "
            "black start (0.05-0.1 s recommended)"
        )
    if "fleet" not in raw or not isinstance(raw.get("fleet"), Mapping):
        problems.append("fleet: missing (a black start needs a grid-forming fleet)")
    elif not raw["fleet"].get("n_vehicles") and not raw["fleet"].get("table"):
        problems.append("fleet.n_vehicles: a black start needs at least one vehicle")
    if "feeder" not in raw:
        problems.append("feeder: missing (the island is part of a feeder)")
    check_problems(problems, ScenarioError, f"{source}: invalid black-start scenario")
    assert shared is not None and settings is not None
    island = dict(shared.frequency.island) if shared.frequency is not None else {}
    return BlackStartScenario(
        settings=settings,
        step_s=shared.simulation.step_s,
        seed=shared.simulation.seed,
        fleet=shared.fleet,
        feeder=shared.feeder,
        f0_hz=f0_hz,
        island_override=island,
        source=source,
    )


def _system_f0_hz(shared: Any, raw: Mapping[str, Any]) -> float:
    """The system's nominal frequency [Hz] as the loader settled it (``frequency.f0_hz``,
    else ``fleet.f_nominal_hz``, else 60; the fleet's settings were parsed for it); from the
    tables as written only when the shared sections have problems of their own."""
    if shared is not None:
        if shared.frequency is not None and shared.frequency.params is not None:
            return float(shared.frequency.params.f0_hz)
        if shared.fleet is not None:
            return float(shared.fleet.f_nominal_hz)
        return 60.0
    for section, key in (("frequency", "f0_hz"), ("fleet", "f_nominal_hz")):
        table = raw.get(section)
        if isinstance(table, Mapping) and is_number(table.get(key)):
            return float(table[key])
    return 60.0


# --------------------------------------------------------------------------------------------
# The island
# --------------------------------------------------------------------------------------------
def island_buses(net, root_bus: int) -> list[int]:
    """``root_bus`` and every bus downstream of it, seen from the external grid (radial)."""
    from grids.feeders import topology_graph

    graph = topology_graph(net)
    slack = int(net.ext_grid.bus.iloc[0])
    if root_bus not in graph:
        raise ScenarioError(f"black_start.island_root_bus: {root_bus} is not a bus of the feeder")
    if root_bus == slack:
        raise ScenarioError(
            f"black_start.island_root_bus: {root_bus} is the feeder's slack bus; choose a bus "
            "downstream of it"
        )
    import networkx as nx

    path = nx.shortest_path(graph, slack, root_bus)
    parent = path[-2]
    cut = graph.copy()
    cut.remove_edge(parent, root_bus)
    return sorted(int(b) for b in nx.node_connected_component(cut, root_bus))


def island_net(net, buses: Sequence[int]):
    """The island sub-net: ``buses`` only, no external grid, generators off (dark island)."""
    from pandapower.toolbox import drop_buses

    # a copy without the other buses and every element on them (the cut line included);
    # faster than select_subnet, which builds a new net from scratch
    sub = copy.deepcopy(net)
    keep = set(int(b) for b in buses)
    drop_buses(sub, [int(b) for b in sub.bus.index if int(b) not in keep])
    sub.ext_grid.drop(sub.ext_grid.index, inplace=True)
    for table in ("gen", "sgen"):
        if len(sub[table]):
            sub[table]["in_service"] = False
    return sub


@dataclass
class _State:
    """Everything that evolves in the island (copied to roll a rejected pickup back)."""

    t_s: float
    swing: SwingModel
    fleet: Any
    p_ref_mw: float
    accepted_any: bool = False


class _Island:
    def __init__(self, scenario: BlackStartScenario) -> None:
        from grids.island import GridFormingUnit, IslandPowerFlow, droop_from_damping_pu

        s = scenario.settings
        self.scenario = scenario
        net = feeder_net(scenario.feeder)
        self.buses = island_buses(net, s.island_root_bus)
        # the Fleet is the energy/limits model here: it follows the island's demand as its
        # set-point (grid-following bookkeeping, no droop/trip functions); the grid-forming
        # VSM dynamics are the island swing model below
        f0_hz = scenario.f0_hz
        parsed = scenario.fleet.settings  # [fleet.control], parsed once for f0_hz
        if parsed is None:
            parsed = InverterSettings.defaults(f_nominal_hz=f0_hz)
        vsm = parsed.vsm
        settings = parsed.with_functions(frozenset(), mode=GridMode.GRID_FOLLOWING)
        # no vehicle discharges below the study's SoC floor (the batteries' reserve)
        self.fleet, _ = build_fleet(
            scenario.fleet, None, scenario.seed, settings, soc_reserve_frac=s.soc_min_frac
        )
        fleet_buses = [int(b) for b in self.fleet.buses]
        problems = []
        fleet_bus = s.fleet_bus
        if fleet_bus is not None and fleet_bus not in self.buses:
            problems.append(
                f"black_start.fleet_bus: {fleet_bus} is not in the island (buses "
                f"{self.buses[0]}..{self.buses[-1]} downstream of {s.island_root_bus})"
            )
        if fleet_bus is not None and fleet_buses != [fleet_bus]:
            problems.append(
                f"fleet.buses: the depot must be on the fleet bus {fleet_bus}, got {fleet_buses}"
            )
        outside_fleet = sorted(set(fleet_buses) - set(self.buses))
        if fleet_bus is None and outside_fleet:
            problems.append(
                f"fleet.buses: {outside_fleet} are not in the island (buses "
                f"{self.buses[0]}..{self.buses[-1]} downstream of {s.island_root_bus}); every "
                "grid-forming vehicle must be inside it"
            )
        for i, pickup in enumerate(s.pickups):
            outside = sorted(set(pickup.buses) - set(self.buses))
            if outside:
                problems.append(f"black_start.pickups[{i}].buses: {outside} are not in the island")
        check_problems(problems, ScenarioError, "invalid black-start island")
        # one grid-forming unit per fleet bus (the depot's bus, or every bus of the fleet)
        self.unit_buses = [int(b) for b in fleet_buses]
        self.fleet_bus = int(fleet_bus) if fleet_bus is not None else self.unit_buses[0]
        self.net = island_net(net, self.buses)
        self.pf_bus = self.net.bus.index.to_numpy(dtype=np.int64)
        position = {int(b): i for i, b in enumerate(self.pf_bus)}
        self.unit_pos = np.array([position[b] for b in self.unit_buses], dtype=np.intp)
        p0, q0 = net_injection(self.net, self.pf_bus)
        # per-block diversified demand per bus (the net's loads, or scaled to p_mw)
        self.block_p = []
        self.block_q = []
        for pickup in s.pickups:
            mask = np.isin(self.pf_bus, pickup.buses)
            p_block = np.where(mask, -p0, 0.0)
            q_block = np.where(mask, -q0, 0.0)
            total = float(p_block.sum())
            if pickup.p_mw is not None:
                if total > 0:
                    scale = pickup.p_mw / total
                    p_block, q_block = p_block * scale, q_block * scale
                else:  # buses without loads: a unity-power-factor block shared equally
                    p_block = np.where(mask, pickup.p_mw / mask.sum(), 0.0)
            elif total <= 0:
                raise ScenarioError(
                    f"black_start.pickups '{pickup.name}': buses {list(pickup.buses)} carry no "
                    "load; give p_mw"
                )
            self.block_p.append(p_block)
            self.block_q.append(q_block)
        # fleet rating and VSM parameters -> island swing model (SwingParameters.island)
        t0 = s.time_of_day_h * 3600.0
        self.t0_s = t0
        plugged = self.fleet.headroom(t_s=t0, dt_s=scenario.step_s)
        plugged_now = self._plugged_mask(t0)
        s_kva = self.fleet.battery.s_max_kva * plugged_now
        self.unit_s_mva = np.array(
            [float(np.sum(s_kva[self.fleet.bus_of_vehicle == b])) / 1000.0 for b in fleet_buses]
        )
        self.s_rated_mva = float(self.unit_s_mva.sum())
        dark = [b for b, s_mva in zip(fleet_buses, self.unit_s_mva, strict=True) if s_mva <= 0]
        if self.s_rated_mva <= 0 or int(plugged["n_plugged"].sum()) == 0 or dark:
            raise ScenarioError(
                f"fleet: no vehicle is plugged in at {s.time_of_day_h:g} h"
                + (f" at buses {dark}" if dark and self.s_rated_mva > 0 else "")
                + "; change black_start.time_of_day_h or the fleet"
            )
        # the island's voltages: the islanded power flow held by the fleet's units (the
        # P-f droop is the VSM's 1/D; the same for every unit, so it only sets the shares)
        mp_pu = droop_from_damping_pu(vsm.d_pu)
        units = [
            GridFormingUnit(
                bus=b, s_rated_mva=s_mva, mp_pu=mp_pu, nq_pu=s.q_droop_pu, v0_pu=s.v_setpoint_pu
            )
            for b, s_mva in zip(self.unit_buses, self.unit_s_mva, strict=True)
        ]
        self.pf = IslandPowerFlow(self.net, units, f0_hz=scenario.f0_hz)
        over = scenario.island_override
        self.swing_params = SwingParameters.island(
            s_base_mw=float(over.get("s_base_mw", self.s_rated_mva)),
            h_s=float(over.get("h_s", vsm.h_s)),
            d_pu=float(over.get("d_pu", vsm.d_pu)),
            f0_hz=scenario.f0_hz,
        )
        self.soc_floor = np.maximum(
            s.soc_min_frac,
            np.maximum(self.fleet.battery.soc_min_frac, self.fleet.battery.soc_reserve_frac),
        )

    def _plugged_mask(self, t_fleet_s: float) -> np.ndarray:
        """Which vehicles are plugged in at fleet time ``t_fleet_s``."""
        return np.asarray(self.fleet.plugged_at(t_fleet_s), dtype=bool)

    def demand(self, t_s: np.ndarray, blocks: Sequence[int], pickups) -> tuple:
        """Island load injections ``(p, q)`` of shape (n_t, n_bus) with CLPU inrush."""
        n_t = len(t_s)
        p = np.zeros((n_t, len(self.pf_bus)))
        q = np.zeros_like(p)
        for i in blocks:
            pk = pickups[i]
            factor = cold_load_pickup_factor(
                t_s, t_pickup_s=pk.t_s, k_inrush=pk.k_inrush, tau_s=pk.tau_s
            )[:, None]
            p -= factor * self.block_p[i]
            q -= factor * self.block_q[i]
        return p, q


class _DemandFollower:
    """The island's fleet as the responder of :func:`vehicle_models.coupling.coupled_step`.

    The fleet follows the island's demand as its set-point (energy, SoC and power limits);
    its power is the VSM swing model's electrical output, so it adds no injection change on
    top (``last_delta_mw`` stays 0) and the island's input is set-point minus demand.
    """

    grid_forming = False
    last_delta_mw = 0.0

    def __init__(self, fleet, *, t0_s: float) -> None:
        self.fleet = fleet
        self.t0_s = t0_s
        self.vm_pu = np.ones(len(fleet.buses))  # the voltage at each fleet bus [pu]
        self.p_setpoint_mw = np.zeros(len(fleet.buses))  # each unit's share [MW]
        self.p_unmet_mw = 0.0

    def step(self, *, t_s: float, dt_s: float, f_hz: float) -> None:
        out = self.fleet.step(
            t_s=self.t0_s + t_s,
            dt_s=dt_s,
            vm_pu=self.vm_pu,
            f_hz=f_hz,
            p_setpoint_mw=self.p_setpoint_mw,
        )
        self.p_unmet_mw = float(np.sum(out.p_setpoint_unmet_mw))


def _simulate_window(island: _Island, state: _State, blocks, t_end_s: float) -> dict:
    """Advance ``state`` to ``t_end_s`` with the given blocks on; return the window's traces."""
    scenario = island.scenario
    s = scenario.settings
    dt = scenario.step_s
    n = max(round((t_end_s - state.t_s) / dt), 1)
    t = state.t_s + dt * np.arange(n)
    p_inj, q_inj = island.demand(t, blocks, s.pickups)
    res = island.pf.solve(p_inj, q_inj)
    converged = np.asarray(res.converged, dtype=bool)
    p_unit = np.where(converged[:, None], res.p_gfm_mw, 0.0)
    q_unit = np.where(converged[:, None], res.q_gfm_mvar, 0.0)
    p_fleet = np.where(converged, res.p_gfm_mw.sum(axis=1), np.nan)
    q_fleet = np.where(converged, res.q_gfm_mvar.sum(axis=1), np.nan)
    vm = np.asarray(res.vm_pu, dtype=float)
    vm_unit = np.where(converged[:, None], vm[:, island.unit_pos], s.v_setpoint_pu)
    # the most loaded unit's current, on the fleet's base: |S_g| / V_g / S_g * S_fleet [MVA]
    i_fleet = (
        np.max(np.hypot(p_unit, q_unit) / vm_unit / island.unit_s_mva, axis=1) * island.s_rated_mva
    )
    f = np.empty(n)
    soc = np.empty(n)
    unmet = np.zeros(n)
    f0 = island.swing_params.f0_hz
    ki = s.secondary_ki_per_s
    s_base = island.swing_params.s_base_mw
    # available power at the start of the window (report); the step-by-step power check is
    # the fleet's own: a set-point outside its feasible range comes back as unmet power
    head = state.fleet.headroom(t_s=island.t0_s + state.t_s, dt_s=dt)
    p_max = np.full(n, float(head["p_max_mw"].sum()))
    plugged = island._plugged_mask(island.t0_s + state.t_s)
    battery = state.fleet.battery
    cap_kwh = float(np.sum(battery.e_capacity_kwh[plugged]))
    follower = _DemandFollower(state.fleet, t0_s=island.t0_s)
    for k in range(n):
        p_k = float(p_unit[k].sum())
        follower.p_setpoint_mw = p_unit[k]
        follower.vm_pu = vm_unit[k]
        # the one coupled step (vehicle_models.coupling): the fleet's energy bookkeeping at
        # f(t_k), then the island's VSM swing over the step with set-point minus demand
        coupled_step(state.swing, follower, t_s=t[k], dt_s=dt, p_event_mw=state.p_ref_mw - p_k)
        unmet[k] = follower.p_unmet_mw
        # secondary control moves the set-point (explicit integral, ki * dt << 1)
        state.p_ref_mw += -ki * (state.swing.delta_f_hz / f0) * s_base * dt
        f[k] = state.swing.f_hz
        # energy-weighted SoC of the plugged fleet
        soc[k] = float(np.sum(battery.e_kwh[plugged])) / cap_kwh if cap_kwh > 0 else math.nan
    state.t_s = float(t[-1] + dt)
    s_fleet = np.hypot(p_fleet, q_fleet)
    envelope = voltage_envelope(vm)
    return {
        "t_s": t + dt,
        "p_fleet_mw": p_fleet,
        "q_fleet_mvar": q_fleet,
        "s_fleet_mva": s_fleet,
        "p_max_mw": p_max,
        "p_unmet_mw": unmet,
        "vm_pu": vm,
        "vm_min_pu": envelope.vm_min_pu,
        "vm_max_pu": envelope.vm_max_pu,
        "vm_min_bus": res.bus_vm_min,
        "vm_max_bus": res.bus_vm_max,
        "i_fleet_mva": i_fleet,
        "f_hz": f,
        "soc_fleet_frac": soc,
        "converged": converged,
        "p_served_mw": -p_inj.sum(axis=1),
    }


def _first_violation(island: _Island, trace: dict) -> tuple[Rejection | None, str]:
    s = island.scenario.settings
    checks = []
    bad = ~trace["converged"]
    checks.append((Rejection.POWER_FLOW, bad, "the island power flow does not converge"))
    tol = 1e-9
    over_p = (trace["p_fleet_mw"] > trace["p_max_mw"] + tol) | (trace["p_unmet_mw"] > 1e-6)
    checks.append(
        (Rejection.POWER, over_p, "fleet power {p:.3f} MW above its available {pmax:.3f} MW")
    )
    i_pu = trace["i_fleet_mva"]
    over_i = i_pu > s.current_limit_pu * island.s_rated_mva + tol
    checks.append((Rejection.CURRENT, over_i, "fleet current above its limit"))
    checks.append(
        (
            Rejection.SOC,
            trace["soc_fleet_frac"] < s.soc_min_frac - 1e-12,
            "fleet state of charge below the floor",
        )
    )
    f = trace["f_hz"]
    checks.append(
        (Rejection.FREQUENCY, (f < s.f_min_hz) | (f > s.f_max_hz), "frequency outside the band")
    )
    v_bad = (trace["vm_min_pu"] < s.v_min_pu) | (trace["vm_max_pu"] > s.v_max_pu)
    checks.append((Rejection.VOLTAGE, v_bad, "voltage outside the band"))
    first = None
    for reason, mask, text in checks:
        idx = np.flatnonzero(mask)
        if idx.size and (first is None or idx[0] < first[0]):
            k = int(idx[0])
            if reason is Rejection.VOLTAGE:
                low = trace["vm_min_pu"][k] < s.v_min_pu
                text = (
                    f"island voltage {trace['vm_min_pu'][k]:.4f} pu at bus "
                    f"{int(trace['vm_min_bus'][k])} below {s.v_min_pu:g} pu"
                    if low
                    else f"island voltage {trace['vm_max_pu'][k]:.4f} pu at bus "
                    f"{int(trace['vm_max_bus'][k])} above {s.v_max_pu:g} pu"
                )
            message = (
                text.format(p=trace["p_fleet_mw"][k], pmax=trace["p_max_mw"][k])
                + f" at t = {trace['t_s'][k]:.2f} s"
            )
            first = (k, reason, message)
    if first is None:
        return None, ""
    return first[1], first[2]


#: Top-level keys of :func:`run_black_start_study` (what a sweep may ask for).
METRIC_KEYS = (
    "feasible",
    "restored_load_mw",
    "planned_load_mw",
    "t_restore_s",
    "f_min_hz",
    "v_min_pu",
    "island_vm_min_pu",
    "island_vm_max_pu",
    "island_voltage_binding",
    "min_soc_frac",
    "hold_time_h",
    "fleet_rating_mva",
    "grid_forming_buses",
    "island_buses",
    "fleet_bus",
    "steps",
    "violations",
)


def run_black_start_study(
    scenario: Mapping[str, Any] | str | Path | BlackStartScenario,
    *,
    out_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Run the black start and return the JSON metrics.

    Parameters
    ----------
    scenario : dict, path or BlackStartScenario
        A scenario dict or TOML file with ``[simulation]`` (``step_s`` 0.005-1 s),
        ``[feeder]``, a grid-forming ``[fleet]`` and ``[black_start]`` with its
        ``[[black_start.pickups]]``.
    out_dir : path, optional
        Write ``report.html``, the figures and their data there.

    Returns
    -------
    dict
        ``feasible`` (every planned pickup accepted), ``restored_load_mw`` [MW] (diversified
        demand of the accepted blocks), ``t_restore_s`` [s] (when the last accepted block's
        inrush has decayed to within 5 % and the frequency is within 0.1 Hz of nominal),
        ``f_min_hz`` [Hz] (sampled nadir), ``v_min_pu`` [pu], ``min_soc_frac`` [-] (over the
        restoration), ``hold_time_h`` [h] (the usable fleet energy over the restored demand),
        ``steps`` (per planned pickup: ``name``, ``t_s``, ``p_mw``, ``p_peak_mw``,
        ``accepted``, ``reason``) and ``violations`` (:data:`METRIC_KEYS` lists every key).

    Raises
    ------
    ScenarioError
        The scenario or the island is invalid (every problem listed).

    Examples
    --------
    >>> from studies.black_start import run_black_start_study
    >>> path = "studies/scenarios/black_start_hospital.toml"
    >>> result = run_black_start_study(path)  # doctest: +SKIP
    >>> result["feasible"], [s["accepted"] for s in result["steps"]]  # doctest: +SKIP
    """
    if not isinstance(scenario, BlackStartScenario):
        scenario = load_black_start_scenario(scenario)
    s = scenario.settings
    island = _Island(scenario)
    state = _State(
        t_s=0.0,
        swing=SwingModel(island.swing_params),
        fleet=island.fleet,
        p_ref_mw=0.0,
    )
    traces: list[dict] = []
    steps: list[dict[str, Any]] = []
    accepted_idx: list[int] = []
    rejected: list[Violation] = []
    # energised with no load until the first pickup
    if s.pickups[0].t_s > 0:
        traces.append(_simulate_window(island, state, [], s.pickups[0].t_s))
    for i, pickup in enumerate(s.pickups):
        t_end = s.pickups[i + 1].t_s if i + 1 < len(s.pickups) else pickup.t_s + s.window_s
        trial = copy.deepcopy(state)
        trace = _simulate_window(island, trial, [*accepted_idx, i], t_end)
        reason, message = _first_violation(island, trace)
        if reason is not None:
            rejected.append(_rejection_violation(island, pickup.name, reason, trace))
        p_div = float(island.block_p[i].sum())
        step = {
            "name": pickup.name,
            "t_s": pickup.t_s,
            "p_mw": p_div,
            "p_peak_mw": p_div * pickup.k_inrush,
            "k_inrush": pickup.k_inrush,
            "accepted": reason is None,
            "reason": None if reason is None else reason.value,
            "detail": message,
            "f_min_hz": float(np.min(trace["f_hz"])),
            "v_min_pu": float(np.min(trace["vm_min_pu"])),
            "v_max_pu": float(np.max(trace["vm_max_pu"])),
            "vm_min_bus": int(trace["vm_min_bus"][int(np.argmin(trace["vm_min_pu"]))]),
            "p_fleet_max_mw": float(np.max(trace["p_fleet_mw"])),
            "p_fleet_available_mw": float(np.min(trace["p_max_mw"])),
        }
        if reason is None:
            state = trial
            state.accepted_any = True
            accepted_idx.append(i)
        else:
            trace = _simulate_window(island, state, accepted_idx, t_end)
        traces.append(trace)
        steps.append(step)
    timeline = {k: np.concatenate([tr[k] for tr in traces]) for k in traces[0]}
    restored = float(sum(island.block_p[i].sum() for i in accepted_idx))
    nadir = frequency_nadir(timeline["t_s"], timeline["f_hz"])
    violations = [*rejected, *_timeline_violations(island, timeline)]
    metrics = {
        "feasible": len(accepted_idx) == len(s.pickups),
        "restored_load_mw": restored,
        "planned_load_mw": float(sum(b.sum() for b in island.block_p)),
        "t_restore_s": _restoration_time(island, timeline, accepted_idx),
        "f_min_hz": nadir.f_hz,
        "v_min_pu": float(np.nanmin(timeline["vm_min_pu"])),
        "island_vm_min_pu": float(np.nanmin(timeline["vm_min_pu"])),
        "island_vm_max_pu": float(np.nanmax(timeline["vm_max_pu"])),
        "island_voltage_binding": _voltage_binding(island, timeline, steps),
        "min_soc_frac": float(np.nanmin(timeline["soc_fleet_frac"])),
        "hold_time_h": _hold_time_h(island, state, timeline),
        "fleet_rating_mva": island.s_rated_mva,
        "island_buses": island.buses,
        "fleet_bus": island.fleet_bus,
        "grid_forming_buses": list(island.unit_buses),
        "steps": steps,
        "violations": [v.to_dict() for v in violations],
    }
    if out_dir is not None:
        write_black_start_report(scenario, island, timeline, metrics, out_dir)
    return metrics


def _voltage_binding(island: _Island, timeline: dict, steps: list[dict]) -> dict[str, Any]:
    """Where the island voltage came closest to its band over the restoration carried out:
    the sample with the smallest margin ``min(vm - v_min, v_max - vm)``, its bus and the
    pickup in force (the last accepted block picked up at or before it)."""
    s = island.scenario.settings
    low_margin = timeline["vm_min_pu"] - s.v_min_pu
    high_margin = s.v_max_pu - timeline["vm_max_pu"]
    low_k = int(np.nanargmin(low_margin))
    high_k = int(np.nanargmin(high_margin))
    low = low_margin[low_k] <= high_margin[high_k]
    k = low_k if low else high_k
    t_s = float(timeline["t_s"][k])
    in_force = [st["name"] for st in steps if st["accepted"] and st["t_s"] < t_s]
    return {
        "side": "low" if low else "high",
        "bus": int(timeline["vm_min_bus" if low else "vm_max_bus"][k]),
        "vm_pu": float(timeline["vm_min_pu" if low else "vm_max_pu"][k]),
        "limit_pu": s.v_min_pu if low else s.v_max_pu,
        "margin_pu": float(low_margin[k] if low else high_margin[k]),
        "t_s": t_s,
        "step": in_force[-1] if in_force else None,
    }


def _rejection_violation(island: _Island, name: str, reason: Rejection, trace: dict) -> Violation:
    """The limit that rejected a pickup, as a violation (in the trial window, rolled back)."""
    s = island.scenario.settings
    t = trace["t_s"]
    if reason is Rejection.POWER:
        worst, limit = float(np.max(trace["p_fleet_mw"])), float(np.min(trace["p_max_mw"]))
        bad = trace["p_fleet_mw"] > trace["p_max_mw"]
        quantity = "p_mw"
    elif reason is Rejection.CURRENT:
        i_pu = trace["i_fleet_mva"]
        limit = s.current_limit_pu * island.s_rated_mva
        worst, bad, quantity = float(np.max(i_pu)), i_pu > limit, "i_mva"
    elif reason is Rejection.SOC:
        soc = trace["soc_fleet_frac"]
        worst, limit, bad, quantity = (
            float(np.nanmin(soc)),
            s.soc_min_frac,
            soc < s.soc_min_frac,
            "soc_frac",
        )
    elif reason is Rejection.FREQUENCY:
        f = trace["f_hz"]
        low = float(np.min(f)) < s.f_min_hz
        worst = float(np.min(f)) if low else float(np.max(f))
        limit = s.f_min_hz if low else s.f_max_hz
        bad, quantity = (f < s.f_min_hz) | (f > s.f_max_hz), "f_hz"
    elif reason is Rejection.VOLTAGE:
        low = float(np.nanmin(trace["vm_min_pu"])) < s.v_min_pu
        worst = (
            float(np.nanmin(trace["vm_min_pu"])) if low else float(np.nanmax(trace["vm_max_pu"]))
        )
        limit = s.v_min_pu if low else s.v_max_pu
        bad = (trace["vm_min_pu"] < s.v_min_pu) | (trace["vm_max_pu"] > s.v_max_pu)
        quantity = "vm_pu"
    else:
        bad = ~trace["converged"]
        worst, limit, quantity = 0.0, 1.0, "converged"
    first = float(t[int(np.argmax(bad))]) if bad.any() else None
    return Violation(
        limit=f"black-start {reason.value} limit (pickup rejected)",
        element=f"pickup '{name}'",
        quantity=quantity,
        worst_value=worst,
        limit_value=float(limit),
        first_time_s=first,
        duration_s=float(bad.sum()) * island.scenario.step_s,
    )


def _timeline_violations(island: _Island, timeline: dict) -> list[Violation]:
    """Service-voltage ranges over the restoration actually carried out (ANSI C84.1 at 60 Hz,
    EN 50160 at 50 Hz), island buses by pandapower index."""
    standard = "en50160" if abs(island.scenario.f0_hz - 50.0) < 1e-9 else "ansi"
    return voltage_violations(
        timeline["vm_pu"],
        bus_names=[f"bus {b}" for b in island.pf_bus],
        t_s=timeline["t_s"],
        step_s=island.scenario.step_s,
        standard=standard,
    )


def _restoration_time(island: _Island, timeline: dict, accepted: list[int]) -> float | None:
    if not accepted:
        return None
    last = island.scenario.settings.pickups[accepted[-1]]
    target = float(sum(island.block_p[i].sum() for i in accepted))
    t = timeline["t_s"]
    after = t >= last.t_s
    ok = (
        after
        & (np.abs(timeline["p_served_mw"] - target) <= 0.05 * target)
        & (np.abs(timeline["f_hz"] - island.swing_params.f0_hz) <= 0.1)
    )
    idx = np.flatnonzero(ok)
    return float(t[idx[0]]) if idx.size else float(t[-1])


def _hold_time_h(island: _Island, state: _State, timeline: dict) -> float | None:
    """Hours the usable energy (above the SoC floor, after efficiency) covers the demand."""
    b = state.fleet.battery
    plugged = island._plugged_mask(island.t0_s + state.t_s)
    floor_kwh = island.soc_floor * b.e_capacity_kwh
    usable_kwh = float(
        np.sum(np.maximum(b.e_kwh - floor_kwh, 0.0)[plugged] * b.eta_discharge[plugged])
    )
    demand_mw = float(timeline["p_fleet_mw"][-1])
    if demand_mw <= 1e-6 or not state.accepted_any:
        return None
    return usable_kwh / 1000.0 / demand_mw


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------
def write_black_start_report(scenario, island: _Island, timeline, metrics, out_dir) -> Path:
    """Write ``report.html`` with the restoration sequence, limits, energy and resilience."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from studies.report import Report
    from studies.resilience import add_resilience_section

    s = scenario.settings
    report = Report(f"Black start of an island on {scenario.feeder.name} by a V2G fleet")
    report.violations(metrics.get("violations", []))
    report.heading("Island and fleet")
    report.key_values(
        {
            "scenario": scenario.source,
            "island buses": f"{island.buses[0]}..{island.buses[-1]} ({len(island.buses)} buses)",
            "fleet (grid-forming) bus": island.fleet_bus,
            "vehicles": island.fleet.n_vehicles,
            "fleet_rating_mva": island.s_rated_mva,
            "vsm h_s (fleet base)": island.swing_params.h_s,
            "vsm d_pu (fleet base)": island.swing_params.d_pu,
            "secondary_ki_per_s": s.secondary_ki_per_s,
            "limits": f"f {s.f_min_hz:g}-{s.f_max_hz:g} Hz, v {s.v_min_pu:g}-{s.v_max_pu:g} pu, "
            f"SoC >= {s.soc_min_frac:g}, current <= {s.current_limit_pu:g} x rated",
        },
        "Island, fleet and limits",
    )
    report.heading("Result")
    report.key_values(
        {
            k: metrics[k]
            for k in (
                "feasible",
                "restored_load_mw",
                "planned_load_mw",
                "t_restore_s",
                "f_min_hz",
                "v_min_pu",
                "island_vm_min_pu",
                "island_vm_max_pu",
                "min_soc_frac",
                "hold_time_h",
            )
        },
        "Key numbers",
    )
    b = metrics["island_voltage_binding"]
    report.paragraph(
        f"Island voltages from the islanded power flow (grid-forming units at buses "
        f"{metrics['grid_forming_buses']}, Q-V droop {s.q_droop_pu:g} pu): closest to the band "
        f"at bus {b['bus']} ({b['vm_pu']:.4f} pu against the {b['side']} limit "
        f"{b['limit_pu']:g} pu) "
        + (f"after pickup '{b['step']}'" if b["step"] else "before the first pickup")
        + f" at t = {b['t_s']:.1f} s."
    )
    steps = pd.DataFrame(metrics["steps"])
    report.table(steps.drop(columns=["detail"]), "Pickup sequence (planned order)")
    rejected = steps[~steps["accepted"]]
    for _, row in rejected.iterrows():
        report.paragraph(f"Rejected '{row['name']}': {row['detail']}.")

    data = pd.DataFrame({k: v for k, v in timeline.items() if np.ndim(v) == 1})
    fig, axes = plt.subplots(3, 1, figsize=(8, 8), sharex=True)
    axes[0].plot(timeline["t_s"], timeline["p_fleet_mw"], label="fleet output (loads + losses)")
    axes[0].plot(timeline["t_s"], timeline["p_max_mw"], "--", label="fleet available")
    axes[0].plot(timeline["t_s"], timeline["p_served_mw"], ":", label="load served")
    axes[0].set_ylabel("P [MW]")
    axes[0].legend(fontsize=8)
    axes[1].plot(timeline["t_s"], timeline["f_hz"])
    axes[1].axhline(s.f_min_hz, color="red", ls="--", lw=0.8)
    axes[1].set_ylabel("f [Hz]")
    axes[2].plot(timeline["t_s"], timeline["vm_min_pu"], label="lowest island voltage")
    axes[2].plot(timeline["t_s"], timeline["vm_max_pu"], label="highest island voltage")
    axes[2].axhline(s.v_min_pu, color="red", ls="--", lw=0.8)
    axes[2].set_ylabel("v [pu] (islanded power flow)")
    axes[2].legend(fontsize=8)
    axes[2].set_xlabel("time after energisation [s]")
    for ax in axes:
        ax.grid(alpha=0.3)
    report.figure(fig, "black_start_timeline", "Restoration: power, frequency, voltage", data=data)

    fig, ax = plt.subplots(figsize=(8, 3))
    ax.plot(timeline["t_s"], timeline["soc_fleet_frac"])
    ax.axhline(s.soc_min_frac, color="red", ls="--", lw=0.8, label="SoC floor")
    ax.set_xlabel("time after energisation [s]")
    ax.set_ylabel("fleet SoC [-]")
    ax.legend()
    ax.grid(alpha=0.3)
    report.figure(fig, "black_start_soc", "Energy-weighted state of charge of the plugged fleet")

    # resilience: diversified load restored in the island (the inrush is not extra service),
    # from just before the outage (full load) through the blackout to the end of the run
    planned = metrics["planned_load_mw"]
    served = np.zeros_like(timeline["t_s"])
    for step in metrics["steps"]:
        if step["accepted"]:
            served += np.where(timeline["t_s"] >= step["t_s"], step["p_mw"], 0.0)
    t_outage_h = 1e-6  # the outage is instantaneous at this scale
    t_h = np.concatenate([[0.0, t_outage_h], t_outage_h + timeline["t_s"] / 3600.0])
    served = np.concatenate([[planned, 0.0], served])
    add_resilience_section(
        report,
        t_h,
        served,
        unit="MW restored",
        name="black_start_resilience",
        heading="Resilience (load served in the island)",
    )
    return report.write(out_dir)
