"""Same-time loop (voltage -> fleet volt-var Q -> voltage within one step, mosaik
``world.group()`` with a weak connection) against the fixed point computed directly.

Reference: a plain loop over the physics (:class:`vehicle_models.fleet.Fleet`,
:class:`grids.powerflow.ACPowerFlow`) that, at each time step, restarts the fleet from the
state at the beginning of the step and iterates ``vm -> fleet.step -> AC power flow -> vm``
until the voltages change by less than 1e-12 pu (successive substitution to the fixed point
``vm = PF(Q_fleet(vm))``), then commits that step. No mosaik is involved in the reference.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

from cosim.results import wide
from cosim.scenario import load_scenario
from cosim.world import Connection, build_world, run_scenario
from grids.errors import SimulationError

STEP_S = 3600.0
N_STEPS = 4
SCENARIO = {
    "simulation": {"duration_s": N_STEPS * STEP_S, "step_s": STEP_S, "seed": 2},
    "feeder": {"name": "case33bw", "method": "ac"},
    # many vehicles at the two feeder ends: the volt-var reactive power moves the voltage a lot,
    # so a one-step delay visibly oscillates
    "fleet": {
        "n_vehicles": 300,
        "buses": [17, 32],
        "preset": "home",
        "policy": "uniform",
        "control": {"functions": ["volt_var"]},
    },
}
LOOP_TOLERANCE_PU = 1e-8


def direct_fixed_point() -> dict[str, np.ndarray]:
    """Per step: min voltage, fleet Q and stored energy at the fixed point (plain loop)."""
    from grids.powerflow import ACPowerFlow, prepare_net
    from vehicle_models.fleet import ChargingPolicy, Fleet, FleetPreset
    from vehicle_models.settings import InverterSettings

    pf = ACPowerFlow(prepare_net("case33bw"))
    base_p, base_q = pf.base_injection()
    fleet = Fleet.sample(
        300,
        buses=np.array([17, 32]),
        preset=FleetPreset.HOME,
        policy=ChargingPolicy.UNIFORM,
        seed=2,
        settings=InverterSettings.from_dict({"functions": ["volt_var"]}, path="fleet.control"),
    )
    pos = np.array([int(np.flatnonzero(pf.bus == b)[0]) for b in fleet.buses])
    vm_guess = np.ones(len(pf.bus))
    out: dict[str, list] = {"vm_min_pu": [], "q_mvar": [], "e_kwh": []}
    for k in range(N_STEPS):
        start = copy.deepcopy(fleet)
        for _ in range(200):
            trial = copy.deepcopy(start)
            r = trial.step(t_s=k * STEP_S, dt_s=STEP_S, vm_pu=vm_guess[pos], f_hz=60.0)
            p, q = base_p.copy(), base_q.copy()
            np.add.at(p, pos, r.p_mw)
            np.add.at(q, pos, r.q_mvar)
            vm = pf.solve(p, q).vm_pu[0]
            change = np.max(np.abs(vm - vm_guess))
            vm_guess = vm
            if change < 1e-12:
                break
        else:
            raise AssertionError("the reference fixed-point iteration did not converge")
        fleet = trial
        out["vm_min_pu"].append(vm.min())
        out["q_mvar"].append(float(np.sum(r.q_mvar)))
        out["e_kwh"].append(float(np.sum(fleet.energy_kwh)))
    return {key: np.array(v) for key, v in out.items()}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    scenario = load_scenario(SCENARIO)
    tables = {}
    for loop in (False, True):
        out = tmp_path_factory.mktemp(f"loop{int(loop)}")
        if loop:
            built = build_world(
                scenario, out, same_time_loop=True, loop_tolerance_pu=LOOP_TOLERANCE_PU
            )
            built.run()
            tables[loop] = wide(run_result_frame(built))
        else:
            tables[loop] = wide(run_scenario(scenario, out, progress=False).frame())
    return tables, direct_fixed_point()


def run_result_frame(built):
    from cosim import simulators
    from cosim.results import read_results

    for collector in list(simulators.LIVE_COLLECTORS):
        if collector.run_id == built.run_id:
            collector.close()
    return read_results(built.results_path)[0]


def test_same_time_loop_reaches_the_direct_fixed_point(runs):
    tables, ref = runs
    table = tables[True]
    vm_min = table["FeederSim-0.grid.vm_min_pu"].to_numpy()
    q = table["FleetSim-0.fleet.q_mvar"].to_numpy()
    residual = table["FeederSim-0.grid.loop_residual_pu"].to_numpy()
    assert len(vm_min) == N_STEPS
    # the loop stops when the voltages the fleet used reproduce themselves within tolerance
    assert np.all(residual <= LOOP_TOLERANCE_PU)
    # a contraction stopped at a residual of 1e-8 pu is within ~tol / (1 - factor) of the fixed
    # point (measured: 2e-9 pu, 5e-8 Mvar, 2e-7 kWh)
    np.testing.assert_allclose(vm_min, ref["vm_min_pu"], rtol=0, atol=1e-7)
    np.testing.assert_allclose(q, ref["q_mvar"], rtol=0, atol=1e-6)
    # the passes restart the fleet from the beginning of the step: the stored energy is that
    # of ONE committed step per time, as in the reference (no energy drained per pass)
    e = table["FleetSim-0.fleet.e_kwh"].to_numpy()
    np.testing.assert_allclose(e, ref["e_kwh"], rtol=0, atol=1e-5)
    # the loop did iterate (the first step starts from 1.0 pu everywhere)
    assert table["FeederSim-0.grid.loop_passes"].iloc[0] >= 3


def test_one_step_delay_differs_from_the_fixed_point(runs):
    """Why the loop exists: with the time-shifted measurement the fleet answers the previous
    hour's voltage, which overshoots and oscillates around the fixed point."""
    tables, ref = runs
    q_delayed = tables[False]["FleetSim-0.fleet.q_mvar"].to_numpy()
    assert np.max(np.abs(q_delayed - ref["q_mvar"])) > 0.05  # Mvar


def test_loop_world_graph(tmp_path):
    """The loop's members are in one mosaik group; the voltages return on a weak connection."""
    built = build_world(load_scenario(SCENARIO), tmp_path, record=False, same_time_loop=True)
    try:
        assert Connection(
            "FeederSim-0.grid", "bus_vm_loop_pu", "FleetSim-0.fleet", "bus_vm_pu", 0, True
        ) in set(built.connections)
        assert not any(c.time_shifted for c in built.connections)
        groups = {
            sid: factory._group
            for sid, factory in built.world._async_world._factories.items()  # mosaik internals
        }
        assert groups["FeederSim-0"] is groups["FleetSim-0"]
        assert groups["FeederSim-0"].parent is not None  # not the main group
    finally:
        built.world.shutdown()


def test_loop_needs_a_feeder_and_a_fleet(tmp_path):
    data = {"simulation": {"duration_s": 10.0, "step_s": 1.0}, "feeder": {"name": "case33bw"}}
    with pytest.raises(SimulationError, match="same_time_loop needs a \\[feeder\\] and a"):
        build_world(load_scenario(data), tmp_path, same_time_loop=True)


def test_scenario_key_runs_the_same_loop(runs, tmp_path):
    """``[simulation] coupling = "same_time_loop"`` (with its tolerance) gives the run of the
    Python flag: the same fixed point in every recorded value."""
    tables, _ = runs
    data = copy.deepcopy(SCENARIO)
    data["simulation"].update(
        {"coupling": "same_time_loop", "loop_tolerance_pu": LOOP_TOLERANCE_PU}
    )
    scenario = load_scenario(data)
    assert scenario.simulation.loop_tolerance_pu == LOOP_TOLERANCE_PU
    table = wide(run_scenario(scenario, tmp_path, progress=False).frame())
    for column in (
        "FeederSim-0.grid.vm_min_pu",
        "FeederSim-0.grid.loop_passes",
        "FleetSim-0.fleet.q_mvar",
        "FleetSim-0.fleet.e_kwh",
    ):
        np.testing.assert_array_equal(table[column].to_numpy(), tables[True][column].to_numpy())


def test_scenario_loop_keys_are_validated():
    from grids.errors import ScenarioError

    data = {
        "simulation": {
            "duration_s": 10.0,
            "step_s": 1.0,
            "coupling": "same_time_loop",
            "loop_tolerance_pu": 0.0,
            "loop_max_iterations": 1.5,
        },
        "feeder": {"name": "case33bw"},
    }
    with pytest.raises(ScenarioError) as info:
        load_scenario(data)
    message = str(info.value)
    assert (
        "simulation.loop_tolerance_pu: 0 is out of range: expected a number in (0, 0.1] [pu]"
        in message
    )
    assert "simulation.loop_max_iterations: 1.5 is not an integer" in message
    data["simulation"].update({"loop_tolerance_pu": 1e-6, "loop_max_iterations": 20})
    with pytest.raises(ScenarioError, match=r"'same_time_loop' needs a \[feeder\] and a \[fleet\]"):
        load_scenario(data)  # a feeder without a fleet
    data["simulation"]["coupling"] = "iterate"
    with pytest.raises(ScenarioError, match="'iterate' is not one of 'time_shifted', 'same_t"):
        load_scenario(data)
