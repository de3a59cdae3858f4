"""FrequencySim: the bulk-grid or island swing model (:mod:`grids.frequency`) in mosaik."""

from __future__ import annotations

from cosim.simulators.base import (
    SimulatorBase,
    latest_input,
    sum_inputs,
)
from grids.errors import ScenarioError, SimulationError
from grids.frequency import SwingModel, SwingParameters
from vehicle_models.coupling import InjectionChange, swing_input_mw

# ---------------------------------------------------------------------------------------------
# FrequencySim

FREQUENCY_META = {
    "type": "time-based",
    "models": {
        "Grid": {
            "public": True,
            "params": ["params", "island_params", "fleet_replicas"],
            "attrs": [
                # inputs
                "p_fleet_mw",  # fleet injection [MW] (only deviations from schedule count)
                "p_event_mw",  # injection change from events [MW] (gen. loss of 500 MW: -500)
                "island",  # True while islanded
                "p_grid_import_mw",  # feeder import from the bulk grid [MW] (lost on islanding)
                # outputs
                "f_hz",
                "delta_f_hz",
                "rocof_hz_per_s",
                "p_mech_mw",
                "ufls_shed_mw",
                "ufls_stages_tripped",
                "p_imbalance_mw",
            ],
        }
    },
}


class FrequencySim(SimulatorBase):
    """Bulk-grid (or island) frequency: :class:`grids.frequency.SwingModel` on the mosaik clock.

    Model ``Grid`` (one entity). Params: ``params`` (dict of ``[frequency]`` keys, see
    :class:`grids.frequency.SwingParameters`), ``island_params`` (dict ``s_base_mw``, ``h_s``,
    ``d_pu`` of the grid-forming fleet for island mode, optional), ``fleet_replicas`` (number of
    identical feeders the connected fleets stand for, default 1: their summed injection change
    is multiplied by it, as the contingency study's ``feeder_replicas``).

    Inputs: ``p_fleet_mw`` [MW] (summed), ``p_event_mw`` [MW] (summed), ``island`` [bool],
    ``p_grid_import_mw`` [MW]. Outputs: ``f_hz`` [Hz], ``delta_f_hz`` [Hz],
    ``rocof_hz_per_s`` [Hz/s], ``p_mech_mw`` [MW], ``ufls_shed_mw`` [MW],
    ``ufls_stages_tripped`` [-], ``p_imbalance_mw`` [MW].

    Each step is point 4 of the one coupled step (:mod:`vehicle_models.coupling`): the outputs
    describe the state at the step start ``t_k``; then the swing model advances over
    ``[t_k, t_k+1)`` with the constant input :func:`~vehicle_models.coupling.swing_input_mw`
    of the events in force and the fleet's injection change. The swing equation sees
    injection *changes*: the fleet's scheduled power is balanced by the bulk system's dispatch
    on the slow time scale, so the fleet term is its change since a reference
    (:class:`~vehicle_models.coupling.InjectionChange`): the fleet power at the first step
    (single-rate runs), or at the last quasi-static step / window start (multi-rate runs), and
    again after an island switch. The fleet (``FleetSim``, point 3) receives ``f_hz`` through
    a time-shifted connection: at step ``k`` it sees ``f(t_k-1)``, one step more measurement
    delay than the direct loop, and a grid-forming fleet gets no predictor step
    (``docs/architecture.md``).
    """

    def __init__(self) -> None:
        super().__init__(FREQUENCY_META)
        self.model = None
        self.params = None
        self.island_params: dict = {}
        self.islanded = False
        self.fleet_change = InjectionChange()
        self.p_import_at_island_mw = 0.0
        self.last_imbalance_mw = 0.0

    def create(self, num, model, params=None, island_params=None, fleet_replicas=1.0):
        if num != 1 or self.model is not None:
            raise ScenarioError("FrequencySim: create exactly one Grid entity")
        replicas = float(fleet_replicas)
        if not (replicas > 0 and replicas < float("inf")):
            raise ScenarioError(
                f"FrequencySim: fleet_replicas {fleet_replicas!r} is not a positive number"
            )
        self.fleet_change = InjectionChange(replicas=replicas)
        if isinstance(params, SwingParameters):  # parsed once by the scenario (in-process)
            self.params = params
        else:
            self.params = SwingParameters.from_dict(params or {}, path="frequency")
        self.island_params = dict(island_params or {})
        self.model = SwingModel(self.params)
        self.entities["grid"] = {}
        return [{"eid": "grid", "type": model}]

    @property
    def p_fleet_ref_mw(self) -> float | None:
        """The fleet power the swing model's fleet term is measured from [MW]."""
        return self.fleet_change.p_ref_mw

    def _switch(self, island: bool, p_import_mw: float) -> None:
        if island:
            if not self.island_params:
                raise SimulationError(
                    "island event: [frequency.island] (s_base_mw, h_s, d_pu of the grid-forming "
                    "fleet) is needed to model the island's frequency"
                )
            params = SwingParameters.island(f0_hz=self.params.f0_hz, **self.island_params)
            self.p_import_at_island_mw = p_import_mw
        else:
            params = self.params
        # A switch starts the new system at its nominal frequency (synchronised reconnection,
        # black-started island): the swing model of each system starts from equilibrium.
        self.model = SwingModel(params)
        self.islanded = island

    def step(self, time, inputs, max_advance):
        data = inputs.get("grid", {})
        p_fleet = sum_inputs(data.get("p_fleet_mw"))
        p_event = sum_inputs(data.get("p_event_mw"))
        island = bool(latest_input(data.get("island"), False))
        p_import = sum_inputs(data.get("p_grid_import_mw"))
        if island != self.islanded:
            self._switch(island, p_import)
            self.fleet_change.rebase()
        if self.clock.windows and (not self.clock.in_window(time) or self.clock.window_start(time)):
            self.fleet_change.rebase()
        if self.islanded:
            # the supply the feeder imported from the bulk grid is gone: a loss of generation
            p_event -= self.p_import_at_island_mw
        imbalance = swing_input_mw(p_event, self.fleet_change(p_fleet))
        # outputs describe the state at `time`; then advance over [time, time + dt)
        m = self.model
        self._out = {
            "f_hz": m.f_hz,
            "delta_f_hz": m.delta_f_hz,
            "rocof_hz_per_s": m.rocof_hz_per_s,
            "p_mech_mw": m.p_mech_mw,
            "ufls_shed_mw": m.ufls_shed_mw,
            "ufls_stages_tripped": m.ufls_stages_tripped,
            "p_imbalance_mw": imbalance,
        }
        self.model.step(dt_s=self.dt_s(time), p_imbalance_mw=imbalance)
        return self.clock.next_time(time)

    def get_data(self, outputs):
        return {
            eid: {a: float(self._out[a]) for a in attrs if a in self._out}
            for eid, attrs in outputs.items()
        }
