"""FeederGroupSim: several feeder + fleet pairs in one mosaik simulator.

mosaik's scheduler does work per simulator and per connection between simulators on every
step; with many feeders on one frequency every fleet is an ancestor of every other (through
the frequency model), and that bookkeeping grows with the square of the number of
simulators. This adapter holds one :class:`~cosim.simulators.feeder.FeederSim` and one
:class:`~cosim.simulators.fleet.FleetSim` per feeder (the same adapters, composed, not
copied) and closes each pair's voltage loop inside, exactly as the world connects a
one-feeder run: the fleet's ``bus_p_mw``/``bus_q_mvar`` go to its feeder at the same step, the
feeder's ``bus_vm_pu`` come back one step later (a time-shifted measurement). To mosaik each
pair shows two entities, ``<i>-grid`` (model ``Grid``, the feeder's attributes) and
``<i>-fleet`` (model ``Fleet``, the fleet's), connected to the frequency model, the events and
the collector like the simulators they stand for.
"""

from __future__ import annotations

from typing import Any

from cosim.simulators.base import SimulatorBase
from cosim.simulators.feeder import FEEDER_META, FeederSim
from cosim.simulators.feeder3ph import THREE_PHASE_FEEDER_META, ThreePhaseFeederSim
from cosim.simulators.fleet import FLEET_META, FleetSim
from grids.errors import ScenarioError

FEEDER_GROUP_META = {
    "type": "time-based",
    "models": {
        "Pair": {
            "public": True,
            "params": ["feeder", "fleet", "feeder_step_size", "three_phase"],
            "attrs": [],
        },
        "Grid": {
            "public": False,
            "params": [],
            # a balanced or a three-phase feeder's attributes
            "attrs": list(
                dict.fromkeys(
                    FEEDER_META["models"]["Grid"]["attrs"]
                    + THREE_PHASE_FEEDER_META["models"]["Grid"]["attrs"]
                )
            ),
        },
        "Fleet": {**FLEET_META["models"]["Fleet"], "public": False, "params": []},
    },
}

#: The pair's voltage loop, inside the group (the world's connections of a one-feeder run).
_TO_FEEDER = ("bus_p_mw", "bus_q_mvar")
_TO_FLEET = "bus_vm_pu"


class FeederGroupSim(SimulatorBase):
    """Feeder + fleet pairs (``Pair`` entities) stepped by one mosaik simulator.

    Simulator params: the fleets' clock (``step_size``, ``fast_step_size``, ``windows``).
    Model ``Pair`` params: ``feeder`` (the ``Grid`` params of :class:`FeederSim`), ``fleet``
    (the ``Fleet`` params of :class:`FleetSim`, or None for a feeder without a fleet),
    ``feeder_step_size`` (the feeder's step in integer mosaik steps), ``three_phase`` (a
    :class:`~cosim.simulators.feeder3ph.ThreePhaseFeederSim` feeder). Each pair has the
    children ``<i>-grid`` and ``<i>-fleet``: their inputs and outputs are those of the
    simulators they stand for (the fleet's ``f_hz`` in, ``p_mw`` out, ...).

    At each step: every fleet due steps with its inputs and the voltages its feeder gave at an
    earlier step (none before the feeder's first step: 1.0 pu); then every feeder due steps with
    its fleet's injection of this step. The next step is the earliest of the members'.
    """

    def __init__(self) -> None:
        super().__init__(FEEDER_GROUP_META)
        self.clock_params: dict[str, Any] = {}
        self.feeders: list[FeederSim] = []  # or ThreePhaseFeederSim (a FeederSim)
        self.fleets: list[FleetSim | None] = []
        self.next_feeder: list[int] = []
        self.next_fleet: list[int] = []
        self.vm_sent: list[dict] = []  # the feeder's voltages, as the fleet receives them
        self.ids: dict[str, tuple[str, int]] = {}  # child eid -> ("grid"/"fleet", pair)

    def init(self, sid, time_resolution: float = 1.0, **clock):
        self.clock_params = dict(clock)
        return super().init(sid, time_resolution=time_resolution, **clock)

    def create(self, num, model, feeder=None, fleet=None, feeder_step_size=1, three_phase=False):
        if num != 1 or model != "Pair" or feeder is None:
            raise ScenarioError("FeederGroupSim: create one Pair at a time, with a feeder")
        i = len(self.feeders)
        grid = ThreePhaseFeederSim() if three_phase else FeederSim()
        grid.init(
            f"{self.sid}.{i}-grid",
            time_resolution=self.time_resolution,
            step_size=int(feeder_step_size),
        )
        grid.create(1, "Grid", **feeder)
        self.feeders.append(grid)
        self.next_feeder.append(0)
        member = None
        if fleet is not None:
            member = FleetSim()
            member.init(
                f"{self.sid}.{i}-fleet", time_resolution=self.time_resolution, **self.clock_params
            )
            member.create(1, "Fleet", **fleet)
        self.fleets.append(member)
        self.next_fleet.append(0)
        self.vm_sent.append({})
        children = [{"eid": f"{i}-grid", "type": "Grid", "rel": []}]
        self.ids[f"{i}-grid"] = ("grid", i)
        if member is not None:
            children.append({"eid": f"{i}-fleet", "type": "Fleet", "rel": []})
            self.ids[f"{i}-fleet"] = ("fleet", i)
        self.entities[str(i)] = {}
        return [{"eid": str(i), "type": model, "rel": [], "children": children}]

    def step(self, time, inputs, max_advance):
        for i, fleet in enumerate(self.fleets):
            if fleet is None or self.next_fleet[i] > time:
                continue
            own = dict(inputs.get(f"{i}-fleet", {}))
            own[_TO_FLEET] = {f"{self.sid}.{i}-grid": self.vm_sent[i]}
            self.next_fleet[i] = fleet.step(time, {"fleet": own}, max_advance)
        for i, grid in enumerate(self.feeders):
            if self.next_feeder[i] > time:
                continue
            own = dict(inputs.get(f"{i}-grid", {}))
            fleet = self.fleets[i]
            if fleet is not None:
                sent = fleet.get_data({"fleet": list(_TO_FEEDER)})["fleet"]
                for attr in _TO_FEEDER:
                    own[attr] = {f"{self.sid}.{i}-fleet": sent[attr]}
            self.next_feeder[i] = grid.step(time, {"grid": own}, max_advance)
            # held for the fleet's later steps (the time-shifted measurement)
            self.vm_sent[i] = grid.get_data({"grid": [_TO_FLEET]})["grid"][_TO_FLEET]
        return min(
            [t for t, f in zip(self.next_fleet, self.fleets, strict=True) if f is not None]
            + self.next_feeder
        )

    def get_data(self, outputs):
        out = {}
        for eid, attrs in outputs.items():
            kind, i = self.ids[eid]
            if kind == "grid":
                out[eid] = self.feeders[i].get_data({"grid": attrs})["grid"]
            else:
                out[eid] = self.fleets[i].get_data({"fleet": attrs})["fleet"]
        return out
