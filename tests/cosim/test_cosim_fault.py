"""A ``fault`` event through the mosaik world: EventSim -> FeederSim (retained voltages from
grids/fault.py) -> FleetSim (each bus's vehicles ride through or trip on their own voltage)."""

from __future__ import annotations

import numpy as np
import pytest

from cosim.results import wide
from cosim.scenario import load_scenario
from cosim.world import run_scenario

FAULT = {
    "t_s": 1.0,
    "kind": "fault",
    "bus": 2,
    "r_fault_ohm": 1.0,
    "x_fault_ohm": 1.0,
    "duration_s": 0.3,
    "s_sc_mva": 100.0,
    "rx": 0.1,
}
DATA = {
    "simulation": {"duration_s": 2.0, "step_s": 0.02, "seed": 1},
    "feeder": {"name": "case33bw"},
    "fleet": {
        "n_vehicles": 40,
        "buses": [1, 5, 17, 19],
        "policy": "uniform",
        "control": {"trip": {"mc_low_v_pu": 0.0, "uv2_v_pu": 0.5, "uv2_t_s": 0.16}},
    },
    "events": [FAULT],
}


@pytest.fixture(scope="module")
def fault_run(tmp_path_factory):
    scenario = load_scenario(DATA)
    result = run_scenario(scenario, tmp_path_factory.mktemp("fault"), progress=False)
    return scenario, wide(result.frame())


def test_feeder_sends_the_retained_voltages_during_the_fault(fault_run):
    """During [1.0, 1.3) s the feeder's voltages are the fault calculation on the step's own
    pre-fault state (base loads plus the fleet's injection of the same step), to 1e-8 pu;
    before and after it the power flow's."""
    from grids.fault import FaultModel
    from grids.feeder_model import FeederModel
    from grids.feeders import load_feeder

    _, table = fault_run
    vm = table.filter(like="FeederSim-0.grid.bus_vm_pu[")
    buses = np.array([int(c.split("[")[1][:-1]) for c in vm.columns])
    order = np.argsort(buses)
    buses, vm = buses[order], vm.iloc[:, order]
    t = vm.index.to_numpy()
    during = (t >= 1.0 - 1e-9) & (t < 1.3 - 1e-9)
    assert vm.loc[during].to_numpy().max() < 0.6
    assert vm.loc[(t < 1.0 - 1e-9) | (t > 1.3 + 1e-9)].to_numpy().min() > 0.9
    net = load_feeder("case33bw")
    p, q = FeederModel.from_net(net).base_injection()
    at = float(t[during][2])
    for bus in (1, 5, 17, 19):
        p[bus] += table[f"FleetSim-0.fleet.bus_p_mw[{bus}]"].loc[at]
        q[bus] += table[f"FleetSim-0.fleet.bus_q_mvar[{bus}]"].loc[at]
    expected = FaultModel(net, s_sc_mva=100.0, rx=0.1).solve(
        [2], z_fault_ohm=1 + 1j, p_mw=p, q_mvar=q
    )
    np.testing.assert_allclose(vm.loc[at].to_numpy(), expected.vm_pu[0], atol=1e-8)
    assert table["FeederSim-0.grid.vm_min_pu"].loc[at] == pytest.approx(
        expected.vm_pu[0].min(), abs=1e-8
    )


def test_each_bus_rides_through_or_trips_on_its_own_voltage(fault_run):
    """Buses 5 and 17 (about 0.39 pu) stay below uv2 = 0.5 pu for 0.3 s > 0.16 s: their
    vehicles trip and inject nothing afterwards; buses 1 and 19 (about 0.56 pu) ride through."""
    _, table = fault_run
    k = int(np.argmin(np.abs(table.index.to_numpy() - 1.1)))
    vm = {b: table[f"FeederSim-0.grid.bus_vm_pu[{b}]"].iloc[k] for b in (1, 5, 17, 19)}
    assert vm[5] < 0.5 and vm[17] < 0.5 and vm[1] > 0.5 and vm[19] > 0.5
    tripped = table["FleetSim-0.fleet.n_tripped"]
    assert tripped[tripped.index < 1.0].max() == 0 and tripped.iloc[-1] > 0
    after = table.index > 1.5
    for bus in (5, 17):
        assert np.all(table[f"FleetSim-0.fleet.bus_p_mw[{bus}]"].loc[after] == 0.0)
    for bus in (1, 19):
        assert np.any(table[f"FleetSim-0.fleet.bus_p_mw[{bus}]"].loc[after] != 0.0)


def test_world_connects_the_fault_to_the_feeder(tmp_path):
    from cosim.world import Connection, build_world

    built = build_world(load_scenario(DATA), tmp_path, record=False)
    try:
        wire = Connection("EventSim-0.events", "fault_event", "FeederSim-0.grid", "fault_event")
        assert wire in set(built.connections)
    finally:
        built.world.shutdown()


def test_fault_event_needs_a_feeder_and_its_keys():
    from grids.errors import ScenarioError

    data = {k: v for k, v in DATA.items() if k not in ("feeder", "fleet")}
    with pytest.raises(ScenarioError, match="'fault' needs a \\[feeder\\] section"):
        load_scenario(data)
    bad = dict(DATA, events=[{k: v for k, v in FAULT.items() if k != "bus"}])
    with pytest.raises(ScenarioError, match=r"events\[0\]\.bus: missing"):
        load_scenario(bad)


def test_event_sim_holds_the_fault_until_it_is_cleared():
    """``fault_event`` is the fault's JSON from the first step at or after ``t_s`` to the first
    step at or after ``t_s + duration_s``, then ``""``."""
    import json

    from cosim.simulators.events import EventSim

    sim = EventSim()
    sim.init("Events-0", time_resolution=0.1, step_size=1)
    sim.create(1, "Events", events=[dict(FAULT, t_s=0.2, duration_s=0.3)])
    seen = []
    for t in range(8):
        sim.step(t, {}, 100)
        seen.append(sim.get_data({"events": ["fault_event"]})["events"]["fault_event"])
    assert seen[:2] == ["", ""] and seen[5:] == ["", "", ""]
    assert all(json.loads(s)["bus"] == 2 for s in seen[2:5])
    assert json.loads(seen[2]) == {
        "bus": 2, "r_fault_ohm": 1.0, "x_fault_ohm": 1.0, "s_sc_mva": 100.0, "rx": 0.1
    }  # fmt: skip


def test_a_fault_in_an_island_is_refused_with_its_time_and_bus():
    """The fault calculation needs the external grid's source impedance: a fault while the
    breaker is open is an error naming the bus and the time, not a silent wrong sag."""
    import json

    from cosim.simulators.feeder import FeederSim
    from grids.errors import SimulationError

    sim = FeederSim()
    sim.init("FeederSim-0", time_resolution=0.1, step_size=1)
    island = {"s_rated_mva": 5.0, "mp_pu": 0.05, "v0_pu": 1.0, "f0_hz": 60.0, "gfm_buses": [0]}
    sim.create(1, "Grid", feeder="case33bw", island=island)
    fault = json.dumps({"bus": 5, "s_sc_mva": 100.0, "rx": 0.1})
    sim.step(0, {"grid": {"island": {"E.e": False}}}, 10**6)
    sim.step(1, {"grid": {"island": {"E.e": True}}}, 10**6)  # the breaker opens
    with pytest.raises(SimulationError, match=r"fault at bus 5 at t = 0.2 s while the feeder"):
        sim.step(2, {"grid": {"island": {"E.e": True}, "fault_event": {"E.e": fault}}}, 10**6)
    # connected, the same input gives the sag
    sim = FeederSim()
    sim.init("FeederSim-0", time_resolution=0.1, step_size=1)
    sim.create(1, "Grid", feeder="case33bw")
    sim.step(0, {"grid": {"fault_event": {"E.e": fault}}}, 10**6)
    out = sim.get_data({"grid": ["fault_vm_min_pu", "vm_min_pu"]})["grid"]
    assert out["fault_vm_min_pu"] == out["vm_min_pu"] < 0.2


def test_a_fault_inside_an_island_period_is_a_scenario_problem():
    from grids.errors import ScenarioError

    data = dict(
        DATA,
        frequency={"island": {"s_base_mw": 5.0, "h_s": 2.0, "d_pu": 20.0}},
        events=[{"t_s": 0.5, "kind": "island"}, FAULT, {"t_s": 1.5, "kind": "reconnect"}],
    )
    with pytest.raises(ScenarioError, match=r"the fault at t = 1 s \(bus 2\) falls in the island"):
        load_scenario(data)
    data["events"] = [{"t_s": 0.5, "kind": "island"}, {"t_s": 0.8, "kind": "reconnect"}, FAULT]
    assert len(load_scenario(data).events) == 3


def test_a_fault_on_a_three_phase_feeder_is_a_scenario_problem():
    from grids.errors import ScenarioError

    data = {
        "simulation": {"duration_s": 2.0, "step_s": 0.02},
        "feeder": {"name": "ieee13"},
        "events": [dict(FAULT, bus=0)],
    }
    with pytest.raises(ScenarioError, match="'fault' is not available on a three-phase feeder"):
        load_scenario(data)
