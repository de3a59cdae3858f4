"""FeederSim's breaker to the bulk grid: islanded solves and the reconnection sync check.

References: the islanded power flow (``grids.island``, validated in tests/grids/test_island.py)
solved directly for the same injections (the adapter adds nothing, 1e-12 pu); the energy
balance ``P_gfm + sum P = P_loss``; the phase drift closed form ``360 Δf dt`` per step; the
IEEE 1547-2018 Table 5 window for 5 MVA (> 1500 kVA: 0.1 Hz, 3 %, 10 degrees): the breaker
closes at the first step inside it, computed independently here.
"""

from __future__ import annotations

import numpy as np
import pytest

from cosim.results import wide
from cosim.scenario import load_scenario
from cosim.simulators.feeder import FeederSim
from cosim.world import run_scenario
from grids.island import GridFormingUnit, IslandPowerFlow
from grids.synchronisation import wrap_degree

ATTRS = [
    "p_grid_import_mw",
    "p_loss_mw",
    "breaker_open",
    "reconnect_blocked",
    "p_gfm_mw",
    "sync_delta_f_hz",
    "sync_delta_v_pu",
    "sync_delta_theta_degree",
]
ISLAND = {"s_rated_mva": 5.0, "mp_pu": 0.05, "v0_pu": 1.0, "f0_hz": 60.0}


def _feeder(gfm_buses):
    sim = FeederSim()
    sim.init("FeederSim-0", time_resolution=0.1, step_size=1)
    sim.create(1, "Grid", feeder="case33bw", island={**ISLAND, "gfm_buses": gfm_buses})
    return sim


def _step(sim, t, island, f_hz=60.0):
    sim.step(t, {"grid": {"island": {"E.e": island}, "f_hz": {"Q.q": f_hz}}}, 10**6)
    out = sim.get_data({"grid": ATTRS, "bus_17": ["vm_pu"]})
    return out["grid"], out["bus_17"]["vm_pu"]


def test_opening_solves_the_island_with_the_grid_forming_buses():
    sim = _feeder([5, 17])
    connected, _ = _step(sim, 0, False)
    assert not connected["breaker_open"] and connected["p_grid_import_mw"] > 3.0
    # the step the breaker opens reports the import just lost, then the island takes over
    opening, _ = _step(sim, 1, True)
    assert opening["breaker_open"] and opening["p_grid_import_mw"] == connected["p_grid_import_mw"]
    island, vm17 = _step(sim, 2, True)
    assert island["breaker_open"] and island["p_grid_import_mw"] == 0.0
    units = [GridFormingUnit(bus=b, s_rated_mva=2.5, mp_pu=0.05) for b in (5, 17)]
    ref = IslandPowerFlow(sim.net, units, f0_hz=60.0)
    p, q = ref.base_injection()
    res = ref.solve(p, q)
    assert abs(vm17 - res.vm_pu[0, 17]) < 1e-12
    assert abs(island["p_gfm_mw"] - res.p_gfm_mw[0].sum()) < 1e-9
    assert abs(island["p_gfm_mw"] + p.sum() - island["p_loss_mw"]) < 33 * 1e-9
    # two grid-forming buses at 1 pu and the substation end far away: ΔV outside 3 %
    assert island["sync_delta_v_pu"] < -0.03


def test_reconnection_waits_for_the_synchronisation_window():
    sim = _feeder([0])  # the fleet at the point of common coupling: ΔV inside 3 %
    _step(sim, 0, False)
    _step(sim, 1, True)
    out, _ = _step(sim, 2, True)
    theta = out["sync_delta_theta_degree"]
    dv = out["sync_delta_v_pu"]
    assert abs(dv) < 0.03
    # the island runs 0.5 Hz fast: Δf outside 0.1 Hz, reconnection refused (and 72 degrees
    # ahead after 4 steps); then 0.08 Hz slow: inside Δf, slipping back 2.88 degrees per step
    f_seq = [60.5] * 4 + [59.92] * 60
    closed_at = None
    drift = theta
    for k, f_hz in enumerate(f_seq):
        t = 3 + k
        out, _ = _step(sim, t, False, f_hz)
        # closed form: the angle gained since the last step at the previous step's frequency
        previous_f = 60.0 if k == 0 else f_seq[k - 1]
        drift = float(wrap_degree(drift + 360.0 * (previous_f - 60.0) * 0.1))
        inside = abs(f_hz - 60.0) <= 0.1 and abs(drift) <= 10.0
        assert out["sync_delta_theta_degree"] == pytest.approx(drift, abs=1e-9)
        if inside:
            assert not out["breaker_open"] and not out["reconnect_blocked"]
            closed_at = t
            break
        assert out["breaker_open"] and out["reconnect_blocked"]
    assert closed_at is not None and closed_at > 7  # held for several steps
    after, _ = _step(sim, closed_at + 1, False)
    assert not after["breaker_open"] and after["p_grid_import_mw"] > 3.0


def test_island_event_through_the_world_with_a_grid_forming_fleet(tmp_path):
    """The island of case33bw held by a fleet at bus 0: no import while islanded; the swing
    model's island frequency (no secondary control) stays off nominal, so the reconnection
    request at 1.5 s is refused and the island continues to the end."""
    data = {
        "simulation": {"duration_s": 2.0, "step_s": 0.1},
        "feeder": {"name": "case33bw"},
        "fleet": {"n_vehicles": 20, "buses": [0]},
        "frequency": {"island": {"s_base_mw": 5.0, "h_s": 2.0, "d_pu": 20.0}},
        "events": [{"t_s": 0.5, "kind": "island"}, {"t_s": 1.5, "kind": "reconnect"}],
    }
    result = run_scenario(load_scenario(data), tmp_path, progress=False)
    table = wide(result.frame())
    p_slack = table["FeederSim-0.grid.p_slack_mw"]
    f = table["FrequencySim-0.grid.f_hz"]
    assert (p_slack[p_slack.index < 0.45] > 3.0).all()
    assert (p_slack[p_slack.index > 0.55] == 0.0).all()  # islanded to the end: refused
    assert abs(f[f.index > 1.6] - 60.0).min() > 0.1
    assert np.isfinite(table["FeederSim-0.grid.vm_min_pu"]).all()


def test_island_configuration_errors_are_listed():
    from grids.errors import ScenarioError

    sim = FeederSim()
    sim.init("FeederSim-0", time_resolution=0.1, step_size=1)
    with pytest.raises(ScenarioError) as info:
        sim.create(1, "Grid", feeder="case33bw", island={"gfm_buses": [], "s_rated_mva": -1})
    text = str(info.value)
    assert "no grid-forming fleet bus" in text and "s_rated_mva" in text and "f0_hz" in text


def test_scenario_sync_window_overrides_reach_the_feeder(tmp_path):
    """[frequency.island] sync_* keys widen the window: the same request is granted."""
    island = {"s_base_mw": 5.0, "h_s": 2.0, "d_pu": 100.0}
    wide_window = {"sync_delta_f_hz": 2.0, "sync_delta_v_pu": 0.5, "sync_delta_theta_degree": 90.0}
    runs = {}
    for name, extra in (("table5", {}), ("wide", wide_window)):
        data = {
            "simulation": {"duration_s": 1.5, "step_s": 0.1},
            "feeder": {"name": "case33bw"},
            "fleet": {"n_vehicles": 20, "buses": [0]},
            "frequency": {"island": {**island, **extra, "q_droop_pu": 0.02}},
            "events": [{"t_s": 0.5, "kind": "island"}, {"t_s": 1.0, "kind": "reconnect"}],
        }
        result = run_scenario(load_scenario(data), tmp_path / name, progress=False)
        runs[name] = wide(result.frame())["FeederSim-0.grid.p_slack_mw"]
    after = lambda s: s[s.index > 1.05]  # noqa: E731
    assert (after(runs["table5"]) == 0.0).all()  # |Δf| ~ 0.4 Hz > 0.1 Hz: refused
    assert (after(runs["wide"]) > 3.0).all()  # granted at the request
