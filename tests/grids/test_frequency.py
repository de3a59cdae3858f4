"""Swing-equation frequency model (grids.frequency) against closed forms and solve_ivp.

References: Kundur, *Power System Stability and Control* (1994), sec. 11.1 (RoCoF, composite
regulating characteristic), fig. 11.9 (reheat turbine transfer function); the nadir reference
is an independent ``scipy.integrate.solve_ivp`` model of the same equations written here in
transfer-function form (rtol 1e-10).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from grids.errors import ScenarioError
from grids.frequency import (
    SWING_PARAMS,
    SwingModel,
    SwingParameters,
    UflsStage,
    check_event_size,
    frequency_validity_violation,
    rocof_initial_hz_per_s,
    simulate,
    steady_state_deviation_hz,
    validity_band_hz,
)
from grids.limits import Limit

NADIR_TOL_HZ = 1e-3


def reference_response(params: SwingParameters, p_loss_mw: float, t_end_s: float, *, shed=None):
    """Independent ODE of a generation loss in physical units (Hz and MW), dense output.

    States: frequency deviation [Hz], governor valve output [MW], reheat output [MW], AGC
    set-point [MW]. Written from Kundur's block diagram rather than from the module's matrices.
    """
    f0, s = params.f0_hz, params.s_base_mw
    m_mw_s_per_hz = 2 * params.h_s * s / f0  # 2H S / f0 [MW·s/Hz]
    d_mw_per_hz = params.d_pu * s / f0
    gov_mw_per_hz = (s / params.r_pu / f0) if math.isfinite(params.r_pu) else 0.0
    ki = params.agc_ki_per_s or 0.0
    reheat = params.f_hp is not None

    def rhs(_t, y):
        df, pv, prh, pagc = y
        pm = params.f_hp * pv + (1 - params.f_hp) * prh if reheat else pv
        if not math.isfinite(params.r_pu):
            pm = 0.0
        ddf = (pm - p_loss_mw - d_mw_per_hz * df) / m_mw_s_per_hz
        dpv = (pagc - gov_mw_per_hz * df - pv) / params.t_gov_s
        dprh = (pv - prh) / params.t_rh_s if reheat else 0.0
        dpagc = -ki * df * s / f0
        return [ddf, dpv, dprh, dpagc]

    return solve_ivp(
        rhs,
        (0.0, t_end_s),
        [0.0, 0.0, 0.0, 0.0],
        method="Radau",
        rtol=1e-10,
        atol=1e-12,
        dense_output=True,
    )


def reference_nadir_hz(params, p_loss_mw, t_end_s=30.0):
    sol = reference_response(params, p_loss_mw, t_end_s)
    t = np.linspace(0.0, t_end_s, 300_001)  # 0.1 ms grid on the dense output
    df = sol.sol(t)[0]
    k = int(np.argmin(df))
    return params.f0_hz + df[k], t[k]


def model_nadir_hz(params, p_loss_mw, dt_s, t_end_s=30.0):
    out = simulate(params, dt_s=dt_s, p_imbalance_mw=np.full(round(t_end_s / dt_s), -p_loss_mw))
    k = int(np.argmin(out["f_hz"]))
    return out["f_hz"][k], out["t_s"][k]


def test_initial_rocof_is_the_closed_form_example():
    """500 MW lost on 10 GW, H = 5 s, 60 Hz => -0.3 Hz/s exactly (DESIGN.md sec. 5)."""
    params = SwingParameters(f0_hz=60.0, s_base_mw=10_000.0, h_s=5.0)
    assert rocof_initial_hz_per_s(params, 500.0) == pytest.approx(-0.3, rel=1e-12)
    model = SwingModel(params)
    model.step(dt_s=1e-9, p_imbalance_mw=-500.0)
    assert model.rocof_hz_per_s == pytest.approx(-0.3, rel=1e-6)


def test_steady_state_is_the_closed_form_and_the_model_settles_there():
    params = SwingParameters(d_pu=1.0, r_pu=0.05)
    expected = -(500.0 / 10_000.0) / (1.0 + 1.0 / 0.05) * 60.0
    assert steady_state_deviation_hz(params, 500.0) == pytest.approx(expected, rel=1e-12)
    model = SwingModel(params)
    for _ in range(600):
        model.step(dt_s=0.5, p_imbalance_mw=-500.0)
    assert model.delta_f_hz == pytest.approx(expected, rel=1e-9)
    # governor picks up the loss minus what load damping covers
    assert model.p_mech_mw == pytest.approx(500.0 - 1.0 * 10_000 * (-expected / 60.0), rel=1e-9)


CASES = [
    dict(h_s=5.0, d_pu=1.0, r_pu=0.05, t_gov_s=0.5),
    dict(h_s=2.0, d_pu=0.0, r_pu=0.04, t_gov_s=0.3),
    dict(h_s=8.0, d_pu=2.0, r_pu=0.06, t_gov_s=2.0),
    dict(h_s=3.0, d_pu=1.5, r_pu=0.05, t_gov_s=0.4, f_hp=0.3, t_rh_s=7.0),
    dict(h_s=6.0, d_pu=1.0, r_pu=0.05, t_gov_s=0.5, f_hp=0.25, t_rh_s=5.0, f0_hz=50.0),
]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("dt_s", [0.01, 0.05])
def test_nadir_matches_solve_ivp_within_1e_3_hz(case, dt_s):
    params = SwingParameters(**case)
    ref_f, ref_t = reference_nadir_hz(params, 500.0)
    f, t = model_nadir_hz(params, 500.0, dt_s)
    assert abs(f - ref_f) < NADIR_TOL_HZ
    assert abs(t - ref_t) <= dt_s


def test_whole_trajectory_matches_solve_ivp_with_reheat_and_agc():
    params = SwingParameters(h_s=4.0, f_hp=0.3, t_rh_s=6.0, agc_ki_per_s=0.05)
    out = simulate(params, dt_s=0.02, p_imbalance_mw=np.full(3000, -800.0))
    sol = reference_response(params, 800.0, 60.0)
    ref = params.f0_hz + sol.sol(out["t_s"])[0]
    assert np.max(np.abs(out["f_hz"] - ref)) < 1e-7


def test_step_size_independence_at_common_instants():
    """Exact discretization: 10 ms and 50 ms runs agree at shared instants to round-off."""
    params = SwingParameters(f_hp=0.3, t_rh_s=7.0, agc_ki_per_s=0.02)
    fine = simulate(params, dt_s=0.01, p_imbalance_mw=np.full(2000, -500.0))
    coarse = simulate(params, dt_s=0.05, p_imbalance_mw=np.full(400, -500.0))
    assert np.allclose(fine["f_hz"][::5], coarse["f_hz"], rtol=0, atol=1e-10)


def test_agc_returns_frequency_to_nominal_and_governor_carries_the_loss():
    params = SwingParameters(agc_ki_per_s=1.0)  # AGC time constant (D + 1/R)/Ki = 21 s
    model = SwingModel(params)
    for _ in range(6000):
        model.step(dt_s=0.1, p_imbalance_mw=-500.0)
    assert abs(model.delta_f_hz) < 1e-6
    assert model.p_mech_mw == pytest.approx(500.0, rel=1e-6)
    assert model.p_agc_mw == pytest.approx(500.0, rel=1e-6)


def test_fleet_injection_offsets_the_loss():
    """A fleet injecting the lost 500 MW leaves the frequency at nominal (superposition)."""
    model = SwingModel(SwingParameters())
    for _ in range(100):
        model.step(dt_s=0.02, p_imbalance_mw=-500.0 + 500.0)
    assert model.delta_f_hz == 0.0


def _crossing_time(params, p_loss_mw, threshold_hz, t_end_s=30.0):
    sol = reference_response(params, p_loss_mw, t_end_s)
    t = np.linspace(0, t_end_s, 300_001)
    f = params.f0_hz + sol.sol(t)[0]
    k = int(np.argmax(f < threshold_hz))
    return t[k], f


@pytest.mark.parametrize("dt_s", [0.01, 0.05])
def test_ufls_stage_trips_after_delay_and_sheds_the_right_mw(dt_s):
    stage = UflsStage(threshold_hz=59.5, delay_s=0.2, fraction=0.05)
    params = SwingParameters(h_s=3.0, d_pu=1.0, r_pu=0.05, t_gov_s=2.0, ufls=(stage,))
    t_cross, _ = _crossing_time(params, 1500.0, 59.5)
    model = SwingModel(params)
    f_min = math.inf
    for _ in range(round(20 / dt_s)):
        model.step(dt_s=dt_s, p_imbalance_mw=-1500.0)
        f_min = min(f_min, model.f_hz)
    assert model.ufls_stages_tripped == 1
    assert model.ufls_shed_mw == pytest.approx(0.05 * 10_000.0, rel=1e-12)
    # crossing interpolated inside the step: trip instant within 1 ms of crossing + delay
    assert model.ufls_trip_times_s[0] == pytest.approx(t_cross + 0.2, abs=1e-3)
    # shedding relieves the imbalance: steady state of the reduced deficit
    expected_ss = steady_state_deviation_hz(params, 1500.0 - 500.0)
    for _ in range(round(100 / dt_s)):
        model.step(dt_s=dt_s, p_imbalance_mw=-1500.0)
    assert model.delta_f_hz == pytest.approx(expected_ss, rel=1e-6)
    assert f_min < 59.5


def test_ufls_timer_resets_when_frequency_recovers_before_the_delay():
    """The stage threshold sits just above the nadir: the dip below it is shorter than 5 s."""
    params = SwingParameters()
    nadir, _ = model_nadir_hz(params, 500.0, 0.01)
    stage = UflsStage(threshold_hz=nadir + 0.01, delay_s=5.0, fraction=0.1)
    tripping = UflsStage(threshold_hz=nadir + 0.01, delay_s=0.1, fraction=0.1)
    for st, expected in ((stage, 0), (tripping, 1)):
        model = SwingModel(SwingParameters(ufls=(st,), load_mw=8000.0))
        for _ in range(3000):
            model.step(dt_s=0.01, p_imbalance_mw=-500.0)
        assert model.ufls_stages_tripped == expected
        assert model.ufls_shed_mw == pytest.approx(800.0 * expected)


def test_several_stages_trip_in_order_and_not_twice():
    stages = (
        UflsStage(59.3, 0.1, 0.05),
        UflsStage(59.0, 0.1, 0.05),
        UflsStage(58.7, 0.1, 0.05),
    )
    params = SwingParameters(h_s=3.0, t_gov_s=5.0, ufls=stages)
    model = SwingModel(params)
    for _ in range(3000):
        model.step(dt_s=0.02, p_imbalance_mw=-2500.0)
    times = model.ufls_trip_times_s
    tripped = [t for t in times if t is not None]
    assert tripped == sorted(tripped)
    assert model.ufls_shed_mw == pytest.approx(500.0 * model.ufls_stages_tripped)
    assert model.ufls_stages_tripped >= 2


def test_island_mode_is_set_by_vsm_inertia_and_damping():
    """No governor: RoCoF from the VSM inertia, steady state -ΔP/D, exponential with 2H/D."""
    params = SwingParameters.island(s_base_mw=5.0, h_s=2.0, d_pu=20.0, f0_hz=50.0)
    assert not params.has_governor
    assert rocof_initial_hz_per_s(params, 0.5) == pytest.approx(-0.5 * 50 / (2 * 2 * 5), 1e-12)
    assert steady_state_deviation_hz(params, 0.5) == pytest.approx(-0.1 / 20 * 50, rel=1e-12)
    model = SwingModel(params)
    for _ in range(50):
        model.step(dt_s=0.01, p_imbalance_mw=-0.5)
    tau_s = 2 * 2.0 / 20.0
    expected = -0.1 / 20 * 50 * (1 - math.exp(-0.5 / tau_s))
    assert model.delta_f_hz == pytest.approx(expected, rel=1e-10)
    assert model.p_mech_mw == 0.0


def test_bad_parameters_are_all_listed():
    params = SwingParameters(
        h_s=0.0,
        r_pu=-0.05,
        t_gov_s=float("nan"),
        d_pu=-1.0,
        f_hp=1.5,
        t_rh_s=None,
        ufls=(UflsStage(61.0, -1.0, 0.7), UflsStage(59.0, 0.1, 0.6)),
    )
    with pytest.raises(ScenarioError) as info:
        SwingModel(params)
    text = str(info.value)
    for fragment in (
        "frequency.h_s: 0 is out of range: expected a number in (0, 1000] [s]",
        "frequency.r_pu: -0.05 is out of range: expected a number > 0",
        "frequency.t_gov_s: nan is not a finite number",
        "frequency.d_pu: -1 is out of range: expected a number in [0, 10000]",
        "f_hp and t_rh_s must be given together",
        "frequency.f_hp: 1.5 is out of range: expected a number in (0, 1]",
        "frequency.ufls[0].threshold_hz: 61.0 must be below f0_hz = 60.0",
        "frequency.ufls[0].delay_s: -1 is out of range: expected a number in [0, 3600]",
        "frequency.ufls: fractions sum to 1.3, above the allowed 1",
    ):
        assert fragment in text
    assert len(info.value.problems) == 9


def test_from_dict_builds_stages_and_reports_unknown_keys_and_types():
    params = SwingParameters.from_dict(
        {
            "h_s": 4,
            "r_pu": 0.05,
            "ufls": [{"threshold_hz": 59.3, "delay_s": 0.1, "fraction": 0.05}],
        }
    )
    assert params.h_s == 4.0 and params.ufls == (UflsStage(59.3, 0.1, 0.05),)
    with pytest.raises(ScenarioError) as info:
        SwingParameters.from_dict(
            {"h": 4, "d_pu": "one", "ufls": [{"threshold_hz": 59.0, "delay": 1}]}, path="freq"
        )
    text = str(info.value)
    assert "freq.h: unknown key" in text
    assert "freq.d_pu: 'one' is not a number" in text
    assert "freq.ufls[0].delay: unknown key" in text
    assert "freq.ufls[0].delay_s: missing" in text
    assert "freq.ufls[0].fraction: missing" in text


def test_step_rejects_bad_inputs():
    model = SwingModel(SwingParameters())
    with pytest.raises(ScenarioError, match=r"dt_s = 0\.0 must be"):
        model.step(dt_s=0, p_imbalance_mw=0.0)
    with pytest.raises(ScenarioError, match="p_imbalance_mw = nan is not finite"):
        model.step(dt_s=0.01, p_imbalance_mw=float("nan"))


def test_step_accepts_numpy_scalars_and_rejects_non_numbers():
    a, b = SwingModel(SwingParameters()), SwingModel(SwingParameters())
    a.step(dt_s=np.float32(0.02), p_imbalance_mw=np.float64(-500.0))
    b.step(dt_s=float(np.float32(0.02)), p_imbalance_mw=-500.0)
    assert a.f_hz == b.f_hz
    with pytest.raises(ScenarioError, match="must be numbers"):
        a.step(dt_s="0.02", p_imbalance_mw=-500.0)
    with pytest.raises(ScenarioError, match="must be numbers"):
        a.step(dt_s=0.02, p_imbalance_mw=np.zeros(3))


def test_undamped_island_drifts_with_the_inertia_alone():
    """D = 0, no governor: Δf(t) = -ΔP f0 t / (2 H S) exactly; no steady state."""
    params = SwingParameters.island(s_base_mw=5.0, h_s=2.0, d_pu=0.0, f0_hz=50.0)
    model = SwingModel(params)
    for _ in range(100):
        model.step(dt_s=0.01, p_imbalance_mw=-0.5)
    assert model.delta_f_hz == pytest.approx(-0.5 * 50.0 * 1.0 / (2 * 2.0 * 5.0), rel=1e-12)
    assert steady_state_deviation_hz(params, 0.5) == -math.inf


def test_50_hz_closed_forms():
    """50 Hz: RoCoF = -ΔP f0 / (2 H S) and Δf_ss = -ΔP/S / (D + 1/R) f0 (Kundur sec. 11.1).

    1000 MW lost on 20 GW, H = 4 s: -0.3125 Hz/s exactly; D = 1, R = 0.05: -0.119048 Hz.
    """
    params = SwingParameters(f0_hz=50.0, s_base_mw=20_000.0, h_s=4.0, d_pu=1.0, r_pu=0.05)
    assert rocof_initial_hz_per_s(params, 1000.0) == pytest.approx(-0.3125, rel=1e-12)
    expected_ss = -(1000.0 / 20_000.0) / (1.0 + 1.0 / 0.05) * 50.0
    assert steady_state_deviation_hz(params, 1000.0) == pytest.approx(expected_ss, rel=1e-12)
    model = SwingModel(params)
    model.step(dt_s=1e-9, p_imbalance_mw=-1000.0)
    assert model.rocof_hz_per_s == pytest.approx(-0.3125, rel=1e-6)
    for _ in range(600):
        model.step(dt_s=0.5, p_imbalance_mw=-1000.0)
    assert model.delta_f_hz == pytest.approx(expected_ss, rel=1e-9)
    assert model.f_hz == pytest.approx(50.0 + expected_ss, rel=1e-12)


@pytest.mark.parametrize("p_mw", [30_000.0, -30_000.0, 1e308, float("nan"), "big", True])
def test_implausible_event_sizes_are_validation_errors(p_mw):
    problems = check_event_size(p_mw, SwingParameters(s_base_mw=10_000.0), key="events[2].p_mw")
    assert len(problems) == 1 and problems[0].startswith("events[2].p_mw: ")
    if isinstance(p_mw, float) and abs(p_mw) > 10_000.0:  # finite, too large: says why
        assert "exceeds the system base s_base_mw = 10000 MW" in problems[0]


def test_plausible_event_sizes_pass():
    params = SwingParameters(s_base_mw=10_000.0)
    assert check_event_size(500.0, params) == []
    assert check_event_size(10_000.0, params) == []  # the whole base: extreme, still defined
    assert check_event_size(-800, params) == []


@pytest.mark.parametrize("key", ["s_base_mw", "h_s", "load_mw"])
def test_astronomic_parameters_are_refused(key):
    with pytest.raises(ScenarioError, match=f"frequency.{key}: 1e\\+308 is out of range"):
        SwingParameters.from_dict({key: 1e308})


def test_validity_band_is_three_percent_at_50_and_60_hz():
    assert validity_band_hz(50.0) == pytest.approx((48.5, 51.5))
    assert validity_band_hz(60.0) == pytest.approx((58.2, 61.8))


@pytest.mark.parametrize("f0_hz", [50.0, 60.0])
def test_validity_violation_names_worst_first_time_and_duration(f0_hz):
    t_s = np.arange(6) * 0.5
    f = f0_hz + np.array([0.0, -0.5, -0.04, -0.05, -0.035, 0.0]) * f0_hz
    violation = frequency_validity_violation(f, t_s, f0_hz)
    assert violation.limit == Limit.FREQUENCY_MODEL_RANGE.value
    assert violation.worst_value == pytest.approx(f0_hz * 0.5)
    assert violation.limit_value == pytest.approx(0.97 * f0_hz)
    assert violation.first_time_s == 0.5
    assert violation.duration_s == pytest.approx(4 * 0.5)
    assert frequency_validity_violation(np.full(6, f0_hz * 1.01), t_s, f0_hz) is None
    high = frequency_validity_violation(np.full(6, f0_hz * 1.04), t_s, f0_hz)
    assert high.limit_value == pytest.approx(1.03 * f0_hz)


def test_a_30_gw_loss_on_10_gw_leaves_the_validity_range():
    """The issue's example: the linear model gives 48.9 Hz at 60 Hz, outside 58.2..61.8 Hz."""
    params = SwingParameters(s_base_mw=40_000.0)  # valid event, but a deep one
    out = simulate(params, dt_s=0.05, p_imbalance_mw=np.full(400, -30_000.0))
    violation = frequency_validity_violation(out["f_hz"], out["t_s"], params.f0_hz)
    assert violation is not None and violation.worst_value < 58.2


def test_parameter_declarations_cover_every_scalar_field():
    declared = {p.name for p in SWING_PARAMS}
    assert declared == {
        "f0_hz", "s_base_mw", "h_s", "d_pu", "r_pu", "t_gov_s", "f_hp", "t_rh_s",
        "agc_ki_per_s", "load_mw",
    }  # fmt: skip


def test_discretization_is_the_exact_zero_order_hold():
    """``SwingModel`` steps with ``grids.discretize.zoh``: ``Φ = exp(A dt)`` and
    ``Γ = ∫_0^dt exp(A s) ds · B``, checked against a scipy quadrature of the matrix
    exponential (independent of the augmented-matrix trick), to 1e-12 absolute."""
    from scipy.integrate import quad_vec
    from scipy.linalg import expm

    from grids.frequency import SwingModel, state_matrices

    params = SwingParameters(h_s=4.0, f_hp=0.3, t_rh_s=6.0, agc_ki_per_s=0.05)
    a, b = state_matrices(params)
    dt_s = 0.05
    model = SwingModel(params)
    phi, gamma = model._discrete(dt_s)
    gamma_ref, _err = quad_vec(lambda s: expm(a * s) @ b, 0.0, dt_s, epsabs=1e-14)
    assert np.allclose(phi, expm(a * dt_s), rtol=0, atol=1e-12)
    assert np.allclose(gamma, gamma_ref, rtol=0, atol=1e-12)
