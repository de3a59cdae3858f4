"""Contingency study at 50 Hz: the swing model, a droop fleet and the EN 50549-1 defaults.

References
----------
* Nadir: an independent ``scipy.integrate.solve_ivp`` (Radau, rtol 1e-10) integration of the
  swing equation in physical units at ``f0 = 50 Hz`` (Kundur 1994, ch. 11), with and without a
  fleet droop. Tolerance 1e-3 Hz on the nadir (as the 60 Hz tests), one step on its time.
* The fleet droop of the reference is written here from its definition (EN 50549-1 LFSM-U:
  threshold 49.8 Hz, droop ``k`` on the rating, first-order response ``tau``); the study
  steps the same law as a user responder, so the comparison checks the coupled loop (the
  fleet sees ``f(t_k)`` and acts over the step) against the continuous closed loop.
* The scenario's fleet at 50 Hz takes the EN 50549-1 defaults (``FreqWattSettings.defaults``
  clauses 4.6.1/4.6.2: 50.2 / 49.8 Hz, i.e. a 0.2 Hz deadband), so its droop does nothing while
  the frequency stays above 49.8 Hz (checked on the trace, an invariant).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from studies.contingency import load_contingency_scenario, run_contingency_study
from studies.contingency_scenario import FleetResponse
from studies.contingency_simulation import control_for_case, simulate_case

F0_HZ = 50.0
S_BASE_MW = 10000.0
NADIR_TOL_HZ = 1e-3


def bulk_50hz(*, h_s=5.0, d_pu=1.0, r_pu=0.05, t_gov_s=0.5, p_mw=500.0, step_s=0.01):
    return {
        "simulation": {"duration_s": 30.0, "step_s": step_s},
        "frequency": {
            "f0_hz": F0_HZ,
            "s_base_mw": S_BASE_MW,
            "h_s": h_s,
            "d_pu": d_pu,
            "r_pu": r_pu,
            "t_gov_s": t_gov_s,
        },
        "events": [{"t_s": 1.0, "kind": "generation_loss", "p_mw": p_mw}],
    }


def reference_nadir_50hz(*, h_s, d_pu, r_pu, t_gov_s, p_mw, droop=None):
    """Nadir [Hz] and its time after the event [s], solve_ivp in Hz and MW.

    ``M dΔf/dt = P_gov + P_fleet − P_loss − D' Δf`` with ``M = 2 H S / f0`` [MW s/Hz],
    ``D' = D S / f0``; governor ``T_g dP_gov/dt = −Δf S/(R f0) − P_gov``; the optional fleet
    droop ``tau dP_fleet/dt = P_rated · max(0, f_th − f)/(k f0) − P_fleet`` (capped at
    ``P_rated``).
    """
    m = 2.0 * h_s * S_BASE_MW / F0_HZ
    d = d_pu * S_BASE_MW / F0_HZ
    g = S_BASE_MW / (r_pu * F0_HZ)

    def rhs(_t, y):
        df, p_gov, p_fleet = y
        dp = 0.0
        if droop is not None:
            f = F0_HZ + df
            target = min(
                droop["p_mw"] * max(0.0, droop["f_th_hz"] - f) / (droop["k"] * F0_HZ), droop["p_mw"]
            )
            dp = (target - p_fleet) / droop["tau_s"]
        return [(p_gov + p_fleet - p_mw - d * df) / m, (-g * df - p_gov) / t_gov_s, dp]

    sol = solve_ivp(
        rhs,
        (0.0, 30.0),
        [0.0, 0.0, 0.0],
        method="Radau",
        rtol=1e-10,
        atol=1e-12,
        dense_output=True,
        max_step=0.01,
    )
    t = np.linspace(0.0, 30.0, 300_001)
    df = sol.sol(t)[0]
    k = int(np.argmin(df))
    return F0_HZ + float(df[k]), float(t[k])


class _LfsmuDroop:
    """EN 50549-1 LFSM-U droop with a first-order response, stepped exactly over each step
    with the frequency it is given held (what a grid-following fleet does)."""

    grid_forming = False

    def __init__(self, *, p_mw, f_th_hz, k, tau_s):
        self.p_mw, self.f_th_hz, self.k, self.tau_s = p_mw, f_th_hz, k, tau_s
        self.p_out_mw = 0.0
        self.last_delta_mw = 0.0

    def step(self, *, t_s, dt_s, f_hz):
        target = min(self.p_mw * max(0.0, self.f_th_hz - f_hz) / (self.k * F0_HZ), self.p_mw)
        a = math.exp(-dt_s / self.tau_s)
        p_start = self.p_out_mw
        self.p_out_mw = target + (p_start - target) * a
        # the injection over the step: the mean of the exact response (what the swing model
        # integrates as the held input)
        self.last_delta_mw = target + (p_start - target) * self.tau_s / dt_s * (1.0 - a)


@pytest.mark.parametrize(
    ("h_s", "d_pu", "r_pu", "t_gov_s"), [(5.0, 1.0, 0.05, 0.5), (3.0, 0.0, 0.04, 2.0)]
)
def test_50_hz_nadir_without_fleet_matches_solve_ivp(h_s, d_pu, r_pu, t_gov_s):
    result = run_contingency_study(bulk_50hz(h_s=h_s, d_pu=d_pu, r_pu=r_pu, t_gov_s=t_gov_s))
    f_ref, t_ref = reference_nadir_50hz(h_s=h_s, d_pu=d_pu, r_pu=r_pu, t_gov_s=t_gov_s, p_mw=500.0)
    assert result["f_nadir_hz"] == pytest.approx(f_ref, abs=NADIR_TOL_HZ)
    assert result["t_nadir_s"] == pytest.approx(t_ref, abs=0.01)
    # closed form at 50 Hz: RoCoF = −ΔP f0 / (2 H S)
    assert result["rocof_initial_hz_per_s"] == pytest.approx(
        -500.0 * F0_HZ / (2 * h_s * S_BASE_MW), rel=1e-12
    )


def test_50_hz_nadir_with_a_droop_fleet_matches_solve_ivp():
    """A 1000 MW LFSM-U fleet (49.8 Hz, 5 %, tau 0.3 s) on a weak system (H = 2 s, slow
    governor): the nadir goes below 49.8 Hz, the droop acts, and the coupled loop at 10 ms
    matches the continuous closed loop to 1e-3 Hz (measured 6.6e-4 Hz: the zero-order hold of
    the measurement over a step, an O(dt) coupling error; 1e-5 Hz without the fleet)."""
    droop = {"p_mw": 1000.0, "f_th_hz": 49.8, "k": 0.05, "tau_s": 0.3}
    sc = bulk_50hz(h_s=2.0, d_pu=1.0, r_pu=0.05, t_gov_s=4.0, p_mw=800.0)
    scenario = load_contingency_scenario(sc)
    with_droop = simulate_case(scenario, "droop", response=_LfsmuDroop(**droop))
    alone = simulate_case(scenario, "none")
    f_ref, t_ref = reference_nadir_50hz(
        h_s=2.0, d_pu=1.0, r_pu=0.05, t_gov_s=4.0, p_mw=800.0, droop=droop
    )
    f_ref0, _ = reference_nadir_50hz(h_s=2.0, d_pu=1.0, r_pu=0.05, t_gov_s=4.0, p_mw=800.0)
    assert with_droop.metrics["f_nadir_hz"] == pytest.approx(f_ref, abs=NADIR_TOL_HZ)
    assert with_droop.metrics["t_nadir_s"] == pytest.approx(t_ref, abs=0.01)
    assert alone.metrics["f_nadir_hz"] == pytest.approx(f_ref0, abs=NADIR_TOL_HZ)
    # the droop really acted (the test is not the no-fleet case twice)
    assert f_ref > f_ref0 + 0.05 and with_droop.metrics["fleet_p_max_mw"] > 50.0


def _fleet_50hz(p_mw):
    return {
        "simulation": {"duration_s": 8.0, "step_s": 0.02, "seed": 2},
        "frequency": {
            "f0_hz": F0_HZ,
            "s_base_mw": 2000.0,
            "h_s": 4.0,
            "d_pu": 1.0,
            "r_pu": 0.05,
            "t_gov_s": 0.5,
        },
        "events": [{"t_s": 0.5, "kind": "generation_loss", "p_mw": p_mw}],
        "feeder": {"name": "case33bw"},
        "fleet": {"n_vehicles": 40, "preset": "home"},
        "contingency": {"feeder_replicas": 200.0},
    }


def test_the_50_hz_fleet_takes_the_en_50549_1_droop_defaults():
    scenario = load_contingency_scenario(_fleet_50hz(150.0))
    settings = control_for_case(
        scenario.fleet.settings, scenario.settings, FleetResponse.DROOP, f_nominal_hz=F0_HZ
    )
    assert settings.f_nominal_hz == F0_HZ
    # LFSM-O from 50.2 Hz, LFSM-U from 49.8 Hz (EN 50549-1 4.6.1 / 4.6.2)
    assert F0_HZ + settings.freq_watt.db_of_hz == pytest.approx(50.2)
    assert F0_HZ - settings.freq_watt.db_uf_hz == pytest.approx(49.8)


def test_50_hz_fleet_droop_waits_for_49_8_hz_then_lifts_the_nadir():
    """Invariant of the EN 50549-1 deadband on the study's fleet: with a loss that keeps the
    frequency above 49.8 Hz the droop case is the no-droop case (to 1e-9 Hz); with a deeper
    loss the droop lifts the nadir and the fleet's response starts only after 49.8 Hz."""
    small = load_contingency_scenario(_fleet_50hz(60.0))
    a = simulate_case(small, "droop")
    b = simulate_case(small, "none")
    assert a.metrics["f_nadir_hz"] > 49.8
    np.testing.assert_allclose(a.f_hz, b.f_hz, rtol=0, atol=1e-9)

    large = load_contingency_scenario(_fleet_50hz(300.0))
    droop = simulate_case(large, "droop")
    none = simulate_case(large, "none")
    assert none.metrics["f_nadir_hz"] < 49.8
    # a small fleet (40 vehicles x 200 feeders) with the 2 s EN 50549-1 response: a few MW
    assert droop.metrics["f_nadir_hz"] > none.metrics["f_nadir_hz"] + 1e-3
    extra = droop.p_fleet_mw - none.p_fleet_mw  # the droop's own share of the injection
    first_response = int(np.argmax(extra > 1e-6))
    first_below = int(np.argmax(droop.f_hz < 49.8))
    assert extra.max() > 1.0 and first_response >= first_below
