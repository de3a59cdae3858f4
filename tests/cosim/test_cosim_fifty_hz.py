"""A 50 Hz system through mosaik: the swing model, a droop fleet and the EN 50549-1 defaults.

References
----------
* Without a fleet: an independent ``scipy.integrate.solve_ivp`` (Radau, rtol 1e-10) of the
  swing equation with governor in physical units at ``f0 = 50 Hz`` (Kundur 1994, ch. 11);
  tolerance 1e-3 Hz on the nadir (as the 60 Hz tests and the direct 50 Hz contingency path).
* With a droop fleet: the direct loop of :func:`vehicle_models.coupling.coupled_step` (the
  contingency study's loop) over the same fleet and swing model. The mosaik path gives the
  fleet ``f(t_k-1)`` instead of ``f(t_k)`` (its time-shifted frequency connection, one step
  more measurement delay): the nadirs agree to 5e-3 Hz (measured 1.8e-3 Hz at 10 ms, the
  fleet's droop acting 10 ms later), and a hand loop with that delay equals the mosaik
  trace exactly (1e-12 Hz).
* The fleet takes the EN 50549-1 defaults at 50 Hz (LFSM-O from 50.2 Hz, LFSM-U from
  49.8 Hz, clauses 4.6.1 / 4.6.2).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from cosim.results import read_results, wide
from cosim.scenario import load_scenario
from cosim.world import run_scenario
from grids.errors import ScenarioError

F0_HZ = 50.0
STEP_S = 0.01
DURATION_S = 12.0
T_EVENT_S = 1.0
SYSTEM = {"f0_hz": F0_HZ, "s_base_mw": 10.0, "h_s": 3.0, "d_pu": 1.0, "r_pu": 0.05}
P_LOSS_MW = 1.5


def scenario_50hz(*, fleet: bool) -> dict:
    data = {
        "simulation": {"duration_s": DURATION_S, "step_s": STEP_S, "seed": 4},
        "frequency": dict(SYSTEM),
        "events": [{"t_s": T_EVENT_S, "kind": "generation_loss", "p_mw": P_LOSS_MW}],
    }
    if fleet:
        data["fleet"] = {
            "n_vehicles": 1000,
            "buses": list(range(1, 11)),
            "preset": "home",
            "policy": "uniform",
            "control": {"functions": ["freq_watt"]},
        }
    return data


def reference_nadir_hz() -> float:
    """Nadir of :func:`reference_trajectory` [Hz]."""
    t = np.linspace(0.0, DURATION_S - T_EVENT_S, 200_001)
    return F0_HZ + float(np.min(reference_trajectory()(t)[0]))


def reference_trajectory():
    """solve_ivp: ``M dΔf/dt = P_gov − P_loss − D' Δf``, ``T_g dP_gov/dt = −Δf S/(R f0) −
    P_gov`` with ``M = 2 H S / f0``, ``D' = D S / f0`` (T_g the SwingParameters default);
    dense output over the time since the event."""
    from grids.frequency import SwingParameters

    t_gov_s = SwingParameters(**SYSTEM).t_gov_s
    s = SYSTEM["s_base_mw"]
    m = 2.0 * SYSTEM["h_s"] * s / F0_HZ
    d = SYSTEM["d_pu"] * s / F0_HZ
    g = s / (SYSTEM["r_pu"] * F0_HZ)

    def rhs(_t, y):
        df, p_gov = y
        return [(p_gov - P_LOSS_MW - d * df) / m, (-g * df - p_gov) / t_gov_s]

    sol = solve_ivp(
        rhs,
        (0.0, DURATION_S - T_EVENT_S),
        [0.0, 0.0],
        method="Radau",
        rtol=1e-10,
        atol=1e-12,
        dense_output=True,
        max_step=0.01,
    )
    return sol.sol


@pytest.fixture(scope="module")
def droop_run(tmp_path_factory):
    scenario = load_scenario(scenario_50hz(fleet=True))
    result = run_scenario(scenario, tmp_path_factory.mktemp("f50"), progress=False)
    frame, _ = read_results(result.results_path)
    return scenario, result, wide(frame)


class _FleetResponder:
    """The scenario's fleet as the responder of the direct loop (contingency's view)."""

    grid_forming = False

    def __init__(self, fleet):
        from vehicle_models.coupling import InjectionChange

        self.fleet = fleet
        self.change = InjectionChange()
        self.last_delta_mw = 0.0
        self.vm_pu = np.ones(len(fleet.buses))

    def step(self, *, t_s, dt_s, f_hz):
        res = self.fleet.step(t_s=t_s, dt_s=dt_s, vm_pu=self.vm_pu, f_hz=f_hz)
        self.last_delta_mw = self.change(float(np.sum(res.p_mw)))


def sampled_fleet(scenario):
    from vehicle_models.fleet import ChargingPolicy, Fleet, FleetPreset

    fl = scenario.fleet
    return Fleet.sample(
        fl.n_vehicles,
        buses=np.asarray(fl.buses),
        preset=FleetPreset(fl.preset),
        policy=ChargingPolicy(fl.policy),
        seed=scenario.simulation.seed,
        settings=fl.settings,
        f_nominal_hz=F0_HZ,
    )


def direct_loop(scenario, *, delayed: bool) -> np.ndarray:
    """f(t_k) over the run: :func:`coupled_step` (``delayed=False``), or the same pieces with
    the fleet seeing the previous step's frequency (what mosaik's time shift gives)."""
    from grids.frequency import SwingModel
    from vehicle_models.coupling import coupled_step, event_imbalance_mw, swing_input_mw

    swing = SwingModel(scenario.frequency.params)
    responder = _FleetResponder(sampled_fleet(scenario))
    n = round(DURATION_S / STEP_S)
    f = np.empty(n)
    f_prev = F0_HZ
    for k in range(n):
        t_s = k * STEP_S
        f[k] = swing.f_hz
        p_event = event_imbalance_mw([T_EVENT_S], [-P_LOSS_MW], t_s, eps_s=1e-9)
        if not delayed:
            coupled_step(swing, responder, t_s=t_s, dt_s=STEP_S, p_event_mw=p_event)
            continue
        responder.step(t_s=t_s, dt_s=STEP_S, f_hz=f_prev)
        f_prev = swing.f_hz
        swing.step(dt_s=STEP_S, p_imbalance_mw=swing_input_mw(p_event, responder.last_delta_mw))
    return f


def test_50_hz_nadir_without_fleet_matches_solve_ivp(tmp_path):
    """Nadir (1e-3 Hz) and the 500 ms RoCoF (grids.metrics: largest over the sliding window,
    here the window that starts at the event; 1e-3 Hz/s) against solve_ivp; every metric key
    is one of RUN_METRIC_KEYS."""
    from cosim.world import RUN_METRIC_KEYS

    result = run_scenario(load_scenario(scenario_50hz(fleet=False)), tmp_path, progress=False)
    assert result.metrics["f_nadir_hz"] == pytest.approx(reference_nadir_hz(), abs=1e-3)
    rocof_ref = abs(float(reference_trajectory()(0.5)[0])) / 0.5
    assert result.metrics["max_abs_rocof_500ms_hz_per_s"] == pytest.approx(rocof_ref, abs=1e-3)
    assert set(result.metrics) <= set(RUN_METRIC_KEYS)


def test_50_hz_fleet_takes_the_en_50549_1_defaults(droop_run):
    from vehicle_models.settings import GridCode

    scenario, _result, _table = droop_run
    settings = scenario.fleet.settings
    assert scenario.fleet.f_nominal_hz == F0_HZ
    assert settings.grid_code is GridCode.EN_50549_1
    assert F0_HZ + settings.freq_watt.db_of_hz == pytest.approx(50.2)
    assert F0_HZ - settings.freq_watt.db_uf_hz == pytest.approx(49.8)


def test_50_hz_droop_fleet_through_mosaik_matches_the_direct_loop(droop_run):
    scenario, result, table = droop_run
    f_mosaik = table.filter(like="FrequencySim-0.grid.f_hz").iloc[:, 0].to_numpy()
    np.testing.assert_allclose(f_mosaik, direct_loop(scenario, delayed=True), rtol=0, atol=1e-12)
    f_direct = direct_loop(scenario, delayed=False)
    assert result.metrics["f_nadir_hz"] == pytest.approx(f_direct.min(), abs=5e-3)
    # the droop acted: below 49.8 Hz the fleet lifts the nadir above the no-fleet system's
    assert f_direct.min() < 49.8 and result.metrics["f_nadir_hz"] > reference_nadir_hz() + 0.02
    fleet_p = table.filter(like="FleetSim-0.fleet.p_mw").iloc[:, 0].to_numpy()
    above = f_mosaik[:-1] > 49.8  # what the fleet saw at the next step (one step delay)
    assert np.ptp(fleet_p[1:][above[: len(fleet_p) - 1]]) < np.ptp(fleet_p)


def test_a_55_hz_system_is_refused_at_validation():
    data = scenario_50hz(fleet=True)
    data["frequency"]["f0_hz"] = 55.0
    with pytest.raises(ScenarioError, match=r"fleet\.f_nominal_hz: 55\.0 Hz has no inverter"):
        load_scenario(data)
