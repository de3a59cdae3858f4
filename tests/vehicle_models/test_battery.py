"""Battery/charger bank and degradation: closed forms, an ODE reference and invariants."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.integrate import solve_ivp

from grids.errors import ScenarioError
from vehicle_models.battery import BatteryBank, TheveninParameters
from vehicle_models.degradation import (
    DEFAULT_AGEING,
    DegradationTracker,
    advance_power_law,
    calendar_alpha_per_day,
    cell_voltage_v,
    cycle_beta_per_sqrt_ah,
    degradation_cost_per_kwh,
)


def _bank(n=3, **kw):
    args = dict(e_capacity_kwh=60.0 * np.ones(n), soc_frac=0.5, p_charge_max_kw=11.0)
    args.update(kw)
    return BatteryBank.create(**args)


def test_constant_charge_matches_closed_form():
    """E(t) = E0 + eta_c P t and E(t) = E0 - P t / eta_d (closed form, exact to 1e-12)."""
    b = _bank(2, eta_charge=0.9, eta_discharge=0.8, soc_frac=0.5)
    for _ in range(60):
        r = b.step(np.array([-10.0, 10.0]), 60.0)
    assert not r.limited.any()
    np.testing.assert_allclose(b.e_kwh, [30 + 0.9 * 10, 30 - 10 / 0.8], rtol=0, atol=1e-12)


def test_limits_are_enforced_and_reported():
    """A request beyond the SoC room and the charger rating is limited, and says so."""
    b = _bank(
        2,
        soc_frac=[0.94, 0.12],
        soc_max_frac=0.95,
        soc_min_frac=0.1,
        eta_charge=1.0,
        eta_discharge=1.0,
    )
    r = b.step(np.array([-50.0, 50.0]), 3600.0)
    assert r.limited.all()
    # charge limited by SoC room (0.6 kWh in one hour), discharge by the floor (1.2 kWh)
    np.testing.assert_allclose(r.p_ac_kw, [-0.6, 1.2], atol=1e-12)
    np.testing.assert_allclose(r.p_limited_kw, [-49.4, 48.8], atol=1e-12)
    np.testing.assert_allclose(b.soc_frac, [0.95, 0.1], atol=1e-12)
    r = b.step(np.array([0.0, -5.0]), 60.0)
    assert not r.limited.any()


def test_reserve_blocks_discharge_but_forces_nothing():
    """Below the V2H reserve a vehicle may charge but not discharge, and is not forced up."""
    b = _bank(1, soc_frac=0.15, soc_reserve_frac=0.3)
    p_min, p_max = b.power_bounds_kw(60.0)
    assert p_max[0] == 0.0 and p_min[0] == -11.0


def test_departure_need_forces_charging():
    """e_end_min above the stored energy makes charging mandatory (p_max < 0)."""
    b = _bank(1, soc_frac=0.5, eta_charge=1.0)
    p_min, p_max = b.power_bounds_kw(3600.0, e_end_min_kwh=np.array([35.0]))
    np.testing.assert_allclose(p_max, [-5.0])
    p_min, p_max = b.power_bounds_kw(3600.0, e_end_min_kwh=np.array([80.0]))
    np.testing.assert_allclose([p_min[0], p_max[0]], [-11.0, -11.0])


def test_bad_parameters_list_every_problem():
    with pytest.raises(ScenarioError) as err:
        BatteryBank.create(
            e_capacity_kwh=[60.0, -1.0],
            p_charge_max_kw=[11.0, 22.0],
            s_max_kva=[11.0, 11.0],
            eta_charge=1.5,
            soc_min_frac=0.5,
            soc_max_frac=0.4,
            soc_frac=0.45,
        )
    msg = str(err.value)
    assert "fleet.battery.e_capacity_kwh: -1 must be a positive number (vehicle 1" in msg
    assert "fleet.battery.p_charge_max_kw: 22 exceeds the charger rating s_max_kva" in msg
    assert "fleet.battery.eta_charge: 1.5 is outside the allowed (0, 1]" in msg
    assert "fleet.battery.soc_min_frac: 0.5 is above soc_max_frac" in msg


def test_thevenin_rest_relaxation_is_exact_for_any_step():
    """At rest v_k(t) = v_k0 exp(-t / tau_k): one 600 s step equals 600 steps of 1 s."""
    th = TheveninParameters()
    a = _bank(1, thevenin=th)
    a.step(np.array([8.0]), 120.0)  # polarise
    b = _bank(1, thevenin=th)
    b.step(np.array([8.0]), 120.0)
    v0 = a.v_rc_v.copy()
    a.step(np.array([0.0]), 600.0)
    for _ in range(600):
        b.step(np.array([0.0]), 1.0)
    expected = v0[:, 0] * np.exp(-600.0 / np.array([th.tau1_s, th.tau2_s]))
    np.testing.assert_allclose(a.v_rc_v[:, 0], expected, rtol=1e-12)
    np.testing.assert_allclose(b.v_rc_v[:, 0], expected, rtol=1e-9)


def test_thevenin_constant_power_matches_ode_reference():
    """Constant 10 kW discharge for 30 min vs scipy solve_ivp of the same circuit.

    Reference: the 2-RC circuit ODEs dE/dt = -OCV(soc) I, dv_k/dt = (I - v_k/R_k)/C_k with
    I(t) solving P_dc = I (OCV - R0 I - v1 - v2) at every instant (rtol 1e-10). Our exact
    step-average discretization with 1 s steps must agree to 1e-5 relative in energy and
    1e-4 V in the RC voltages.
    """
    th = TheveninParameters()
    b = _bank(1, thevenin=th, eta_discharge=1.0, soc_frac=0.8)
    cap, p_w = b.e_capacity_kwh[0], 10e3
    r0, r1, r2 = b._r0[0], b._r1[0], b._r2[0]
    c1, c2 = b._c1_f[0], b._c2_f[0]
    ocv = lambda e: np.interp(e / cap, th.ocv_soc_frac, np.array(th.ocv_v) * th.n_series)  # noqa: E731

    def rhs(_t, y):
        e_kwh, v1, v2 = y
        u = ocv(e_kwh) - v1 - v2
        i = (u - np.sqrt(u * u - 4 * r0 * p_w)) / (2 * r0)
        return [-ocv(e_kwh) * i / 3.6e6, (i - v1 / r1) / c1, (i - v2 / r2) / c2]

    sol = solve_ivp(rhs, (0, 1800), [0.8 * cap, 0, 0], rtol=1e-10, atol=1e-10, method="LSODA")
    for _ in range(1800):
        b.step(np.array([10.0]), 1.0)
    np.testing.assert_allclose(b.e_kwh[0], sol.y[0, -1], rtol=1e-5)
    np.testing.assert_allclose(b.v_rc_v[:, 0], sol.y[1:, -1], atol=1e-4)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**31 - 1),
    n_steps=st.integers(1, 300),
    dt_s=st.sampled_from([1.0, 10.0, 60.0, 900.0, 3600.0]),
    circuit=st.booleans(),
)
def test_energy_balance_and_bounds_over_random_dispatch(seed, n_steps, dt_s, circuit):
    """Invariant: e_in - e_out - e_loss = delta(E + W_polarisation) (to 1e-9 kWh), losses
    >= 0 without the circuit, SoC within its bounds, |p| within the charger ratings."""
    rng = np.random.default_rng(seed)
    n = 50
    soc_min = rng.uniform(0, 0.3, n)
    soc_max = rng.uniform(0.7, 1.0, n)
    b = BatteryBank.create(
        e_capacity_kwh=rng.uniform(20, 500, n),
        soc_frac=rng.uniform(soc_min, soc_max),
        p_charge_max_kw=rng.uniform(3, 150, n),
        p_discharge_max_kw=rng.uniform(0, 150, n),
        s_max_kva=200.0,
        eta_charge=rng.uniform(0.8, 1.0, n),
        eta_discharge=rng.uniform(0.8, 1.0, n),
        soc_min_frac=soc_min,
        soc_max_frac=soc_max,
        soc_reserve_frac=rng.uniform(0, 0.5, n) * soc_max,
        thevenin=TheveninParameters() if circuit else None,
    )
    stored0 = b.e_kwh + b.e_polarisation_kwh
    total = np.zeros(n)
    for _ in range(n_steps):
        p = rng.uniform(-400, 400, n) * rng.integers(0, 2, n)
        r = b.step(p, dt_s)
        total += r.e_in_kwh - r.e_out_kwh - r.e_loss_kwh
        if not circuit:
            assert np.all(r.e_loss_kwh >= 0)
        assert np.all(r.p_ac_kw <= b.p_discharge_max_kw + 1e-9)
        assert np.all(r.p_ac_kw >= -b.p_charge_max_kw - 1e-9)
        assert np.all(r.limited == (np.abs(p - r.p_ac_kw) > 1e-9 * 200))
        assert np.all(
            b.soc_frac >= np.minimum(soc_min, np.maximum(b.soc_reserve_frac, soc_min)) - 1e-12
        )
        assert np.all(b.soc_frac <= soc_max + 1e-12)
    np.testing.assert_allclose(total, b.e_kwh + b.e_polarisation_kwh - stored0, atol=1e-9)


# --------------------------------------------------------------------------- degradation
def test_calendar_power_law_stepping_is_exact_for_constant_stress():
    """Constant stress: stepping day by day equals alpha t^0.75 (Schmalstieg eq. 4)."""
    alpha = calendar_alpha_per_day(np.array([0.5, 0.9]), np.array([25.0, 40.0]))
    fade = np.zeros(2)
    for _ in range(365):
        fade = advance_power_law(fade, alpha, 1.0, 0.75)
    np.testing.assert_allclose(fade, alpha * 365**0.75, rtol=1e-12)


def test_equivalent_time_matches_ode_under_changing_stress():
    """Stress switching mid-way vs the rate ODE dQ/dt = n a^(1/n) Q^((n-1)/n) (solve_ivp)."""
    a1, a2, n = 3e-4, 9e-4, 0.75
    q = advance_power_law(np.array([0.0]), a1, 1.0, n)
    for _ in range(99):
        q = advance_power_law(q, a1, 1.0, n)
    for _ in range(100):
        q = advance_power_law(q, a2, 1.0, n)

    def rhs(t, y, a):
        return [n * a ** (1 / n) * y[0] ** ((n - 1) / n)]

    y1 = solve_ivp(rhs, (1, 100), [a1], args=(a1,), rtol=1e-11, atol=1e-14).y[0, -1]
    y2 = solve_ivp(rhs, (100, 200), [y1], args=(a2,), rtol=1e-11, atol=1e-14).y[0, -1]
    np.testing.assert_allclose(q[0], y2, rtol=1e-7)


def test_schmalstieg_factors_at_reference_points():
    """Hand evaluation of Schmalstieg et al. 2014 eqs. (6)-(7) at 3.7 V / 25 °C:
    alpha = (7.543*3.7 - 23.75)*1e6*exp(-6976/298.15) = 2.8678e-4 /day^0.75;
    beta(3.7 V, DOD 0.5) = 7.348e-3*0.033^2 + 7.6e-4 + 4.081e-3*0.5 = 2.8085e-3 /Ah^0.5."""
    soc_37 = np.interp(3.7, [3.68, 3.74], [0.4, 0.5])
    assert cell_voltage_v(soc_37) == pytest.approx(3.7)
    assert calendar_alpha_per_day(soc_37, 25.0) == pytest.approx(2.8678e-4, rel=1e-4)
    assert cycle_beta_per_sqrt_ah(3.7, 0.5) == pytest.approx(2.8085e-3, rel=1e-4)
    # higher temperature and SoC age faster (Arrhenius and voltage stress)
    assert calendar_alpha_per_day(0.9, 40.0) > calendar_alpha_per_day(0.9, 25.0)
    assert calendar_alpha_per_day(0.9, 25.0) > calendar_alpha_per_day(0.3, 25.0)


def test_degradation_cost_equals_price_over_lifetime_throughput():
    """cost = price * E_cap / E_life with E_life from integrating the cycle law to 20 % fade."""
    price, cap = 150.0, 60.0
    beta = float(cycle_beta_per_sqrt_ah(cell_voltage_v(0.5), 0.8))
    q_life_ah = (0.2 / beta) ** 2  # cell Ah to 20 % fade
    e_life_kwh = q_life_ah / DEFAULT_AGEING.cell_ah * cap
    cost = degradation_cost_per_kwh(battery_price_per_kwh=price, soc_mean_frac=0.5, dod_frac=0.8)
    assert cost == pytest.approx(price * cap / e_life_kwh, rel=1e-12)
    assert 0.01 < cost < 0.5  # plausible currency/kWh for NMC


def test_tracker_accumulates_calendar_and_cycle_fade():
    """Closed forms: idle vehicle at 0.5 SoC -> calendar fade alpha(0.5) t^0.75; cycling vehicle
    (one 10 kWh up-and-down per hourly interval, DOD 1/6) -> cycle fade beta(V(0.5), 1/6)
    sqrt(Q) with Q = 480 kWh / 60 kWh * 2.05 Ah per cell."""
    tr = DegradationTracker(2, interval_s=3600.0, theta_c=25.0)
    cap = np.array([60.0, 60.0])
    soc = np.array([0.5, 0.5])
    for k in range(48):
        new = np.array([0.5, 0.5 + (10.0 / 60.0 if k % 2 == 0 else 0.0)])
        tr.accumulate(soc_before_frac=soc, soc_after_frac=new, e_capacity_kwh=cap, dt_s=1800.0)
        soc = new
    np.testing.assert_allclose(tr.dod_frac, [0.0, 1.0 / 6.0], rtol=1e-12)
    alpha = calendar_alpha_per_day(0.5, 25.0)
    np.testing.assert_allclose(tr.fade_calendar_frac, alpha * 1.0**0.75, rtol=1e-9)
    beta = cycle_beta_per_sqrt_ah(cell_voltage_v(0.5), 1.0 / 6.0)
    assert tr.fade_cycle_frac[0] == 0
    assert tr.fade_cycle_frac[1] == pytest.approx(beta * np.sqrt(480 / 60 * 2.05), rel=1e-9)
    np.testing.assert_allclose(tr.throughput_kwh, [0.0, 480.0])


@pytest.mark.parametrize("exponents", [(0.75, 0.5), (0.8, 0.55)])
def test_degradation_flush_kernel_equals_the_reference_formulas(exponents):
    """``DegradationTracker.flush`` (one compiled pass) equals the composition of the documented
    numpy functions (Schmalstieg et al. 2014, eqs. (6)-(7), equivalent-time method) on random
    states, including zero stress (alpha clipped at 0 below 3.149 V) and fresh batteries; with
    the paper's exponents (0.75, 0.5: pow-free branches) and others (general branches)."""
    from vehicle_models.degradation import (
        S_PER_DAY,
        AgeingParameters,
        DegradationTracker,
        advance_power_law,
        calendar_alpha_per_day,
        cell_voltage_v,
        cycle_beta_per_sqrt_ah,
    )

    rng = np.random.default_rng(3)
    n = 500
    params = AgeingParameters(cal_time_exp=exponents[0], cyc_q_exp=exponents[1])
    tracker = DegradationTracker(
        n, params=params, interval_s=3600.0, theta_c=rng.uniform(-10, 45, n)
    )
    cap = rng.uniform(40, 90, n)
    soc0 = rng.uniform(0, 1, n)
    soc1 = np.clip(soc0 + rng.normal(0, 0.2, n), 0, 1)
    soc0[:20] = soc1[:20] = 0.0  # cell voltage below 3.149 V: no calendar stress
    fade_cal = rng.uniform(0, 0.05, n)
    fade_cal[20:40] = 0.0
    fade_cyc = rng.uniform(0, 0.05, n)
    tracker.fade_calendar_frac = fade_cal.copy()
    tracker.fade_cycle_frac = fade_cyc.copy()
    tracker.accumulate(soc_before_frac=soc0, soc_after_frac=soc1, e_capacity_kwh=cap, dt_s=3600.0)

    throughput = np.abs(soc1 - soc0) * cap
    soc_mean = 0.5 * (soc0 + soc1)
    alpha = calendar_alpha_per_day(soc_mean, tracker.theta_c, params=params)
    want_cal = advance_power_law(fade_cal, alpha, 3600.0 / S_PER_DAY, exponents[0])
    dod = np.minimum(np.maximum(np.abs(soc1 - soc0), throughput / (2 * cap)), 1.0)
    beta = cycle_beta_per_sqrt_ah(cell_voltage_v(soc_mean), dod, params=params)
    want_cyc = advance_power_law(fade_cyc, beta, throughput / cap * 2.05, exponents[1])
    assert (alpha[:20] == 0).all() and (want_cal[:20] == fade_cal[:20]).all()
    np.testing.assert_allclose(tracker.fade_calendar_frac, want_cal, rtol=1e-12, atol=0)
    np.testing.assert_allclose(tracker.fade_cycle_frac, want_cyc, rtol=1e-12, atol=0)
    np.testing.assert_allclose(tracker.dod_frac, dod, rtol=1e-12, atol=0)
    np.testing.assert_allclose(tracker.throughput_kwh, throughput, rtol=1e-12)
    assert (tracker.pending_throughput_kwh == 0).all() and tracker.elapsed_s == 0.0


def test_ocv_uniform_table_is_the_same_curve_and_rejects_off_grid_knots():
    """The flush kernel's OCV lookup (uniform grid, index instead of search) is the reference
    piecewise-linear OCV curve itself: equal to ``np.interp`` on the knots everywhere."""
    from vehicle_models.battery import NMC_OCV_SOC_FRAC, NMC_OCV_V
    from vehicle_models.degradation import _OCV_GRID_V, _OCV_PER_SOC, _uniform_table

    soc = np.linspace(0.0, 1.0, 10_001)
    k = np.minimum((soc * _OCV_PER_SOC).astype(int), len(_OCV_GRID_V) - 2)
    lookup = _OCV_GRID_V[k] + (_OCV_GRID_V[k + 1] - _OCV_GRID_V[k]) * (soc * _OCV_PER_SOC - k)
    np.testing.assert_allclose(lookup, np.interp(soc, NMC_OCV_SOC_FRAC, NMC_OCV_V), atol=1e-12)
    with pytest.raises(ValueError, match="uniform grid"):
        _uniform_table([0.0, 0.3, 0.45, 1.0], [3.0, 3.6, 3.7, 4.2])


def test_degradation_temperature_is_reassigned_not_mutated():
    """The Arrhenius factor is evaluated when ``theta_c`` is set: assigning a new temperature
    changes the calendar ageing (hotter ages faster, eq. (6)); in-place edits are refused."""
    from vehicle_models.degradation import DegradationTracker

    def fade_after(theta_c: float) -> float:
        tracker = DegradationTracker(1, interval_s=3600.0)
        tracker.theta_c = theta_c
        soc = np.array([0.8])
        tracker.accumulate(
            soc_before_frac=soc, soc_after_frac=soc, e_capacity_kwh=np.array([60.0]), dt_s=3600.0
        )
        return float(tracker.fade_calendar_frac[0])

    cool, hot = fade_after(15.0), fade_after(35.0)
    # alpha ratio exp(6976 (1/288.15 - 1/308.15)), fade ~ alpha at equal time (fresh battery)
    assert hot / cool == pytest.approx(np.exp(6976.0 * (1 / 288.15 - 1 / 308.15)), rel=1e-12)
    with pytest.raises(ValueError, match="read-only"):
        DegradationTracker(2).theta_c[0] = 40.0
