"""FleetSim: the V2G fleet (:mod:`vehicle_models`) as a mosaik simulator."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from cosim.attributes import FLEET_INPUTS, FLEET_OUTPUTS
from cosim.simulators.base import (
    LazyOutputs,
    SimulatorBase,
    latest_input,
)
from grids.errors import ScenarioError

# ---------------------------------------------------------------------------------------------
# FleetSim

FLEET_ATTRS = FLEET_INPUTS + FLEET_OUTPUTS
FLEET_META = {
    "type": "time-based",
    "models": {
        "Fleet": {
            "public": True,
            "params": [
                "n_vehicles",
                "buses",
                "preset",
                "policy",
                "seed",
                "control",
                "table",
                "f_nominal_hz",
                "packet_loss",
                "bus_names",
                "bus_phases",
                "phase_allocation",
                "charger_connection",
            ],
            "attrs": FLEET_ATTRS,
        },
        "FleetBus": {
            "public": False,
            "params": [],
            "attrs": ["vm_pu", "p_mw", "q_mvar", "n_plugged", "n_tripped", "soc_mean_frac"],
        },
    },
}


class FleetSim(SimulatorBase):
    """The whole vectorized V2G fleet (:class:`vehicle_models.fleet.Fleet`) as one simulator.

    Model ``Fleet`` (one entity; children ``FleetBus`` entities ``bus_<index>``, one per bus
    with vehicles). Params: ``n_vehicles``, ``buses`` (list of bus indices; default all load
    buses is chosen by the scenario builder), ``preset`` (``home``/``work``/``depot``),
    ``policy`` (baseline charging: ``immediate``/``latest``/``uniform``),
    ``seed``, ``control`` (the parsed :class:`~vehicle_models.settings.InverterSettings`, or
    in another process its ``[fleet.control]`` table), ``table`` (CSV/Parquet vehicle table
    instead of sampling), ``f_nominal_hz`` (frequency assumed until one is received),
    ``packet_loss`` (probability that a step's new measurements are lost on the channel to the
    fleet; the fleet then holds the last received values; seeded).

    On a three-phase feeder (``bus_names``: the feeder's bus names; ``bus_phases``: the phases
    1..3 present at each; ``phase_allocation``, ``charger_connection``: see
    :mod:`vehicle_models.phases`) ``buses`` are bus names and every vehicle sits on a bus and
    a phase (the table's ``phase`` column, or the seeded allocation). The fleet is then
    aggregated per connection: the vector attributes are keyed ``"<bus>.<phase>"``
    (:func:`vehicle_models.phases.connection_labels`, e.g. ``"671.a"``), ``bus_vm_pu`` is the
    voltage on the connection's own phase, and there are no ``FleetBus`` children.

    Inputs: ``f_hz`` [Hz], ``bus_vm_pu`` ({bus: pu}) or FleetBus ``vm_pu`` [pu].
    Outputs: totals ``p_mw``, ``q_mvar`` [MW, Mvar], ``bus_p_mw``/``bus_q_mvar`` ({bus: ...}),
    ``n_plugged``, ``n_tripped`` [-], ``soc_mean_frac`` [-], ``e_kwh`` stored energy at the end
    of the step [kWh], cumulative ``e_charged_kwh``, ``e_discharged_kwh``, ``e_loss_kwh``
    [kWh], ``f_seen_hz`` [Hz], ``p_setpoint_seen_mw`` [MW] (set-point in force, NaN if none),
    ``p_setpoint_unmet_mw`` [MW] (set-point minus what was feasible); FleetBus: ``p_mw``,
    ``q_mvar``, ``n_plugged``, ``n_tripped``, ``soc_mean_frac``.

    Each step is point 3 of the one coupled step (:mod:`vehicle_models.coupling`): the fleet
    advances over ``[t_k, t_k+1)`` with the frequency it received; ``FrequencySim`` forms the
    swing model's input from its ``p_mw``. The frequency arrives through a time-shifted
    connection: ``f(t_k-1)``, one step more measurement delay than the direct loop. The
    inverter settings are those of ``f_nominal_hz`` (IEEE 1547-2018 at 60 Hz, EN 50549-1 at
    50 Hz) unless ``control`` is already a parsed :class:`~vehicle_models.settings.
    InverterSettings`.
    """

    LOOP_TRIGGERS = ("bus_vm_pu",)

    def __init__(self) -> None:
        super().__init__(FLEET_META)
        self.fleet = None
        self._out: dict[str, Any] = {}
        self._bus_out: dict[str, dict] = {}
        self.f_hz = 60.0
        self.vm_pu = None
        self.packet_loss = 0.0
        self.rng = None
        self.cumulative = {
            "e_charged_kwh": 0.0,
            "e_discharged_kwh": 0.0,
            "e_loss_kwh": 0.0,
            "e_driven_kwh": 0.0,
            "e_shortfall_kwh": 0.0,
        }

    def create(
        self,
        num,
        model,
        n_vehicles=0,
        buses=None,
        preset="home",
        policy="latest",
        seed=0,
        control=None,
        table=None,
        f_nominal_hz=60.0,
        packet_loss=0.0,
        bus_names=None,
        bus_phases=None,
        phase_allocation="round_robin",
        charger_connection="line_to_neutral",
    ):
        if num != 1 or self.fleet is not None or model != "Fleet":
            raise ScenarioError("FleetSim: create exactly one Fleet entity")
        from vehicle_models.fleet import ChargingPolicy, Fleet, FleetPreset
        from vehicle_models.settings import InverterSettings

        # in-process: the settings parsed once by the scenario (None: no [fleet.control], the
        # defaults); from another process: the plain [fleet.control] table of
        # cosim.specs.to_params, read back here with the defaults and ranges of the system's
        # nominal frequency (IEEE 1547-2018 at 60 Hz, EN 50549-1 at 50 Hz)
        f_nominal_hz = float(f_nominal_hz)
        if isinstance(control, InverterSettings):
            settings = control
        elif control is None:
            settings = InverterSettings.defaults(f_nominal_hz=f_nominal_hz)
        else:
            settings = InverterSettings.from_dict(
                control, path="fleet.control", f_nominal_hz=f_nominal_hz
            )
        phases = None
        if bus_names is not None:  # a three-phase feeder: bus names, phases per bus
            from vehicle_models.phases import FeederPhases, PhaseAllocation

            phases = FeederPhases(
                bus_phases={i: tuple(int(p) for p in ph) for i, ph in enumerate(bus_phases)},
                bus_names=tuple(str(b) for b in bus_names),
                allocation=PhaseAllocation(phase_allocation),
                connection=charger_connection,
            )
            if buses:
                number = {b.lower(): i for i, b in enumerate(phases.bus_names)}
                buses = [number[str(b).lower()] for b in buses]
        if table is not None:
            self.fleet = Fleet.from_table(
                table,
                settings=settings,
                policy=ChargingPolicy(policy),
                f_nominal_hz=f_nominal_hz,
                phases=phases,
                seed=int(seed),
            )
        else:
            if not buses:
                raise ScenarioError("fleet.buses: the buses to place vehicles on are required")
            self.fleet = Fleet.sample(
                int(n_vehicles),
                phases=phases,
                buses=np.asarray(buses, dtype=int),
                preset=FleetPreset(preset),
                policy=ChargingPolicy(policy),
                seed=int(seed),
                settings=settings,
                f_nominal_hz=f_nominal_hz,
            )
        self.f_hz = f_nominal_hz
        self.packet_loss = float(packet_loss)
        self.rng = np.random.default_rng([int(seed), 0x5EED])
        self.buses = np.asarray(self.fleet.buses, dtype=int)
        self.vm_pu = np.ones(len(self.buses))
        self._bus_keys = [str(b) for b in self.buses.tolist()]
        self._vector_keys = None  # per-connection keys of a fleet with phases
        if self.fleet.phases is not None:
            from vehicle_models.phases import connection_labels

            names = phases.bus_names if phases is not None else [str(b) for b in self.buses]
            self._bus_keys = connection_labels(self.buses, self.fleet.phases, bus_names=names)
            self._vector_keys = np.asarray(self._bus_keys)
        self._vm_maps: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
        self._bus_index = {f"bus_{k}": i for i, k in enumerate(self._bus_keys)}
        counts = np.asarray(self.fleet.n_vehicles_per_bus, dtype=float)
        self._vehicle_share = counts / counts.sum()
        self._vehicles_per_bus = counts
        self._n_total = float(counts.sum())
        self.setpoint_mw = np.full(len(self.buses), np.nan)
        self.e_kwh = float(np.sum(self.fleet.energy_kwh))
        children = [{"eid": f"bus_{int(b)}", "type": "FleetBus", "rel": []} for b in self.buses]
        if self._vector_keys is not None:
            children = []  # per connection: the vector attributes only
        self.entities["fleet"] = {}
        return [{"eid": "fleet", "type": model, "rel": [], "children": children}]

    @property
    def setpoint_mw(self) -> np.ndarray:
        """Active-power set-point per bus [MW] (NaN: follow the charging policy)."""
        return self._setpoint_mw

    @setpoint_mw.setter
    def setpoint_mw(self, value: np.ndarray) -> None:
        self._setpoint_mw = value
        self._has_setpoint = not np.isnan(value).all()  # checked once, not every step

    def _measurements(self, inputs) -> None:
        data = inputs.get("fleet", {})
        f = latest_input(data.get("f_hz"))
        if f is not None:
            self.f_hz = float(f)
        vectors = data.get("bus_vm_pu")
        if vectors:
            vm = latest_input(vectors)
            if vm:
                # the feeder sends the same buses every step: map them once
                keys = tuple(vm)
                mapping = self._vm_maps.get(keys)
                if mapping is None:
                    pos = {k: i for i, k in enumerate(keys)}
                    dst = [i for i, k in enumerate(self._bus_keys) if k in pos]
                    src = [pos[self._bus_keys[i]] for i in dst]
                    if len(self._vm_maps) > 32:
                        self._vm_maps.clear()
                    mapping = (np.array(src, dtype=np.intp), np.array(dst, dtype=np.intp))
                    self._vm_maps[keys] = mapping
                src, dst = mapping
                values = np.fromiter(vm.values(), float, len(keys))
                new = self.vm_pu.copy()
                new[dst] = values[src]
                self.vm_pu = new
        for eid, bus_inputs in inputs.items():
            if eid != "fleet" and bus_inputs.get("vm_pu"):
                self.vm_pu[self._bus_index[eid]] = float(latest_input(bus_inputs["vm_pu"]))

    def _setpoints(self, inputs) -> None:
        data = inputs.get("fleet", {})
        total = latest_input(data.get("p_setpoint_mw"))
        vectors = data.get("bus_p_setpoint_mw")
        if total is None and not vectors:
            return
        if self.packet_loss > 0 and self.rng.random() < self.packet_loss:
            return  # this step's set-point is lost: keep the last one received
        setpoint = np.full(len(self.buses), np.nan)
        if total is not None and np.isfinite(float(total)):
            setpoint = float(total) * self._vehicle_share
        if vectors:
            for key, value in latest_input(vectors).items():
                i = self._bus_index.get(f"bus_{key}")
                if i is not None:
                    setpoint[i] = float(value)
        self.setpoint_mw = setpoint

    def step(self, time, inputs, max_advance):
        if self._loop_repeat(time):
            # a pass of the same-time loop: back to the state at the start of this step (with
            # the frequency and set-point received then), only the voltages are new
            self.fleet, self.cumulative, self.rng, self.f_hz, self.setpoint_mw = copy.deepcopy(
                self._loop_state
            )
            self._measurements(inputs)
        else:
            self._measurements(inputs)
            self._setpoints(inputs)
            if self.same_time_loop:
                self._loop_state = copy.deepcopy(
                    (self.fleet, self.cumulative, self.rng, self.f_hz, self.setpoint_mw)
                )
        t_s = time * self.time_resolution
        setpoint = self.setpoint_mw if self._has_setpoint else None
        next_time, dt_s = self.advance(time)
        res = self.fleet.step(
            t_s=t_s,
            dt_s=dt_s,
            vm_pu=self.vm_pu,
            f_hz=self.f_hz,
            p_setpoint_mw=setpoint,
        )
        for key in self.cumulative:
            self.cumulative[key] += float(getattr(res, key))
        p = np.asarray(res.p_mw, dtype=float)
        q = np.asarray(res.q_mvar, dtype=float)
        buses = np.asarray(res.bus, dtype=int)
        n_plugged = np.asarray(res.n_plugged)
        n_tripped = np.asarray(res.n_tripped)
        soc = np.asarray(res.soc_mean_frac, dtype=float)
        setpoint_seen = float(np.nansum(setpoint)) if setpoint is not None else float("nan")
        unmet = res.p_setpoint_unmet_mw
        # reductions of this step's result arrays are evaluated only if an output is requested
        # (the arrays are not touched again); the fleet's state is summed now, before it moves
        scalars = {
            "p_mw": lambda: float(p.sum()),
            "q_mvar": lambda: float(q.sum()),
            "n_plugged": lambda: int(n_plugged.sum()),
            "n_tripped": lambda: int(n_tripped.sum()),
            # mean over all vehicles = per-bus means weighted by the vehicles per bus
            "soc_mean_frac": lambda: float(
                np.dot(np.where(self._vehicles_per_bus > 0, soc, 0.0), self._vehicles_per_bus)
                / self._n_total
            ),
            "e_kwh": float(self.fleet.energy_kwh.sum()),
            "f_seen_hz": self.f_hz,
            "p_setpoint_seen_mw": setpoint_seen,
            "p_setpoint_unmet_mw": lambda: float(np.sum(unmet)),
            **self.cumulative,
        }
        if self._vector_keys is not None:
            index, buses = self._bus_index, self._vector_keys  # keyed per connection
        elif buses is self.fleet.buses or np.array_equal(buses, self.buses):
            index = self._bus_index  # the usual case: built once in create
        else:
            index = {f"bus_{b}": i for i, b in enumerate(buses.tolist())}

        def child(eid: str) -> dict:
            i = index.get(eid)
            if i is None:
                return {}
            return {
                "p_mw": float(p[i]),
                "q_mvar": float(q[i]),
                "n_plugged": int(n_plugged[i]),
                "n_tripped": int(n_tripped[i]),
                "soc_mean_frac": float(soc[i]) if np.isfinite(soc[i]) else 0.0,
            }

        vectors = {"bus_p_mw": (buses, p), "bus_q_mvar": (buses, q)}
        self._lazy = LazyOutputs(scalars, vectors, child)
        return next_time

    def get_data(self, outputs):
        return {eid: self._lazy.get(eid, attrs, "fleet") for eid, attrs in outputs.items()}
