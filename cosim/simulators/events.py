"""EventSim: scheduled events (generation loss, load step, line outage, islanding, fault)."""

from __future__ import annotations

import json
import math

from cosim.simulators.base import (
    SimulatorBase,
)
from grids.errors import ScenarioError
from vehicle_models.coupling import event_imbalance_mw

#: Events that change the injection seen by the swing model.
_POWER_EVENTS = ("generation_loss", "load_step")

# ---------------------------------------------------------------------------------------------
# EventSim

EVENT_META = {
    "type": "time-based",
    "models": {
        "Events": {
            "public": True,
            "params": ["events"],
            "attrs": ["p_event_mw", "lines_out", "island", "fault_event", "n_events"],
        }
    },
}


class EventSim(SimulatorBase):
    """Scheduled events: generation loss, load step, line outage, islanding, reconnection,
    fault.

    Model ``Events`` (one entity). Param ``events``: list of dicts ``{"t_s", "kind", "p_mw",
    "line"}`` (the ``[[events]]`` of a scenario; a ``fault`` also ``bus``, ``duration_s`` and
    its impedance and source keys, :class:`cosim.scenario.EventConfig`). Outputs (persistent
    between events): ``p_event_mw`` [MW] cumulative injection change (generation loss / load
    step of ``p_mw`` count as ``-p_mw``), ``lines_out`` (JSON list of pandapower line indices
    out of service), ``island`` [bool], ``fault_event`` (JSON object of the fault in force: ``bus``,
    ``r_fault_ohm``, ... ; ``""`` when none, from the first step at or after its time for the
    whole steps that cover ``duration_s``), ``n_events`` [-] events so far. Steps on its clock
    (give it the clock of the simulators it feeds); an event is applied at the first step at
    or after its time.
    """

    def __init__(self) -> None:
        super().__init__(EVENT_META)
        self.events: list[tuple[int, dict]] = []
        self.state = {
            "p_event_mw": 0.0,
            "lines_out": "[]",
            "island": False,
            "fault_event": "",
            "n_events": 0,
        }
        self._fault_clear: int | None = None
        self._lines: list[int] = []
        self._applied: set[int] = set()
        self._t_power: list[int] = []
        self._p_power_mw: list[float] = []

    def create(self, num, model, events=()):
        if num != 1 or self.entities:
            raise ScenarioError("EventSim: create exactly one Events entity")
        for event in events:
            t = round(float(event["t_s"]) / self.time_resolution)
            self.events.append((t, dict(event)))
        self.events.sort(key=lambda te: te[0])
        # generation loss / load step of p_mw: an injection change of -p_mw from its step on
        power = [(t, -float(e["p_mw"])) for t, e in self.events if e["kind"] in _POWER_EVENTS]
        self._t_power = [t for t, _ in power]
        self._p_power_mw = [p for _, p in power]
        self.entities["events"] = {}
        return [{"eid": "events", "type": model}]

    def step(self, time, inputs, max_advance):
        for i, (t, event) in enumerate(self.events):
            if t > time or i in self._applied:
                continue
            self._applied.add(i)
            kind = event["kind"]
            if kind == "line_outage":
                self._lines.append(int(event["line"]))
                self.state["lines_out"] = json.dumps(self._lines)
            elif kind == "island":
                self.state["island"] = True
            elif kind == "reconnect":
                self.state["island"] = False
            elif kind == "fault":
                keys = ("bus", "r_fault_ohm", "x_fault_ohm", "r_fault_pu", "x_fault_pu",
                        "s_sc_mva", "rx")  # fmt: skip
                self.state["fault_event"] = json.dumps(
                    {k: event[k] for k in keys if event.get(k) is not None}, sort_keys=True
                )
                # cleared after the whole steps that cover its duration (as the direct loop)
                steps = math.ceil(float(event["duration_s"]) / self.time_resolution - 1e-9)
                self._fault_clear = t + max(1, steps)
            self.state["n_events"] += 1
        if self._fault_clear is not None and time >= self._fault_clear:
            self.state["fault_event"] = ""
            self._fault_clear = None
        # the event input held over the step: every power event at or before this step (the
        # one definition of the coupled step, on the integer mosaik clock: no round-off)
        self.state["p_event_mw"] = event_imbalance_mw(self._t_power, self._p_power_mw, time)
        return self.clock.next_time(time)

    def get_data(self, outputs):
        return {eid: {a: self.state[a] for a in attrs} for eid, attrs in outputs.items()}
