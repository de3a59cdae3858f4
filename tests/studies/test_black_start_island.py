"""Black start with the islanded power flow: island voltages decide pickups too.

References: pandapower ``runpp`` on the island sub-net with an external grid at the fleet's bus
(a stiff grid-forming unit, ``q_droop_pu = 0``, is a slack at ``v_setpoint_pu``; the restored
steady state without inrush) within 1e-6 pu; a no-load energisation holds every bus at the
set-point (closed form); the rejection names the limit and the bus.
"""

from __future__ import annotations

import copy
import functools

import pandapower as pp
import pytest
from pandapower.toolbox import select_subnet

from cosim.cli import main
from grids.feeders import load_feeder
from studies.black_start import island_buses, run_black_start_study


def scenario(*, p_mw=0.5, bus=17, v_min_pu=0.9, q_droop_pu=0.0, fleet_buses=(5,)):
    """30 depot buses (4.8 MVA) at ``fleet_buses`` energise case33bw below bus 5 and pick up one
    block without inrush at ``bus``."""
    return {
        "simulation": {"duration_s": 10.0, "step_s": 0.1, "seed": 3},
        "feeder": {"name": "case33bw"},
        "fleet": {"n_vehicles": 30, "preset": "depot", "buses": list(fleet_buses)},
        "black_start": {
            "island_root_bus": 5,
            "v_setpoint_pu": 1.01,
            "q_droop_pu": q_droop_pu,
            "f_min_hz": 55.0,
            "f_max_hz": 65.0,
            "v_min_pu": v_min_pu,
            "current_limit_pu": 3.0,
            "soc_min_frac": 0.15,
            "window_s": 3.0,
            "time_of_day_h": 1.0,
            "pickups": [
                {"name": "far end", "buses": [bus], "t_s": 1.0, "k_inrush": 1.0, "p_mw": p_mw}
            ],
        },
    }


def _reference_vm(p_mw: float, bus: int, v_pu: float, *, with_q: bool = False):
    """runpp on the island with a slack at bus 5 and only the block's load, scaled to p_mw."""
    net = load_feeder("case33bw")
    buses = island_buses(net, 5)
    sub = select_subnet(net, buses, include_results=False)
    sub.ext_grid.drop(sub.ext_grid.index, inplace=True)
    load = sub.load[sub.load.bus == bus]
    scale = p_mw / float(load.p_mw.sum())
    sub.load["scaling"] = 0.0
    sub.load.loc[load.index, "scaling"] = scale
    pp.create_ext_grid(sub, bus=5, vm_pu=v_pu)
    pp.runpp(sub, tolerance_mva=1e-10, numba=False)
    vm = sub.res_bus.vm_pu.to_numpy()
    return (vm, float(sub.res_ext_grid.q_mvar.iloc[0])) if with_q else vm


@functools.cache
def _run(**kwargs):
    return run_black_start_study(scenario(**kwargs))


def test_island_voltages_match_pandapower_for_a_stiff_fleet():
    result = _run(p_mw=0.6)
    vm_ref = _reference_vm(0.6, 17, 1.01)
    assert result["feasible"]
    assert abs(result["island_vm_min_pu"] - vm_ref.min()) < 1e-6
    # energised at no load before the pickup: every bus at the set-point (closed form)
    assert abs(result["island_vm_max_pu"] - 1.01) < 1e-9
    binding = result["island_voltage_binding"]
    assert binding["bus"] == 17 and binding["side"] == "low" and binding["step"] == "far end"
    assert result["grid_forming_buses"] == [5]


def test_a_pickup_within_power_and_energy_is_refused_on_island_voltage():
    p_mw = 1.5
    vm_ref = _reference_vm(p_mw, 17, 1.01)
    v_min = float(vm_ref.min()) + 0.01  # just above what the island can hold
    result = run_black_start_study(scenario(p_mw=p_mw, v_min_pu=v_min))
    step = result["steps"][0]
    assert not step["accepted"] and step["reason"] == "voltage"
    assert "bus 17" in step["detail"] and "below" in step["detail"]
    assert step["p_fleet_available_mw"] > 1.1 * p_mw  # power was not the limit
    # just below the band's edge the same pickup is accepted
    ok = _run(p_mw=p_mw, v_min_pu=0.8)  # far below the band's edge: accepted
    assert ok["steps"][0]["accepted"] and ok["island_vm_min_pu"] < v_min


def test_q_droop_sets_the_fleet_bus_voltage_by_the_droop_law():
    """Reference: runpp with the slack voltage iterated to the droop law V = v0 - n_q Q / S
    (a fixed point: n_q Q / S is a small contraction)."""
    droop = _run(p_mw=0.6, q_droop_pu=0.05)
    s_mva = droop["fleet_rating_mva"]
    v_bus5 = 1.01
    for _ in range(30):
        vm_ref, q_slack = _reference_vm(0.6, 17, v_bus5, with_q=True)
        v_bus5 = 1.01 - 0.05 * q_slack / s_mva
    vm_ref, _ = _reference_vm(0.6, 17, v_bus5, with_q=True)
    assert abs(droop["island_vm_min_pu"] - vm_ref.min()) < 1e-6
    stiff = _run(p_mw=0.6)
    assert droop["island_vm_min_pu"] < stiff["island_vm_min_pu"] - 1e-4


def test_several_grid_forming_buses_share_the_island():
    one = _run(p_mw=1.5, v_min_pu=0.8)
    two = _run(p_mw=1.5, v_min_pu=0.8, fleet_buses=(5, 17))
    assert one["steps"][0]["accepted"]
    assert two["grid_forming_buses"] == [5, 17]
    assert two["steps"][0]["accepted"]
    # a unit at the far end holds its voltage: the drop to bus 17 is much smaller
    assert two["island_vm_min_pu"] > one["island_vm_min_pu"] + 0.01
    # both ends held at 1.01 pu with power flowing to the far end: reactive power flows back
    # from the far unit and the middle of the line rises a little above the set-point
    assert 1.01 <= two["island_vm_max_pu"] < 1.03


def test_cli_json_and_text_name_the_binding_step_and_bus(capsys, tmp_path):
    import json

    import tomli_w

    from cosim.commands.black_start import island_voltage_line

    line = island_voltage_line(_run(p_mw=0.6))
    assert "binding:" in line and "at bus 17" in line and "after pickup 'far end'" in line
    path = tmp_path / "one.toml"
    path.write_bytes(tomli_w.dumps(scenario(p_mw=0.6)).encode())
    assert main(["black-start", "--scenario", str(path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["island_vm_min_pu"] == pytest.approx(_reference_vm(0.6, 17, 1.01).min(), abs=1e-6)
    assert data["island_vm_max_pu"] == pytest.approx(1.01, abs=1e-9)


def test_fleet_outside_the_island_is_refused():
    from grids.errors import ScenarioError

    sc = copy.deepcopy(scenario(fleet_buses=(2, 17)))
    with pytest.raises(ScenarioError, match=r"fleet.buses: \[2\] are not in the island"):
        run_black_start_study(sc)
