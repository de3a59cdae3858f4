"""The one set of frequency/voltage metrics (grids.metrics) against closed forms.

References and tolerances:
* nadir of ``f = f0 − a·t·e^{−t/τ}``: minimum ``f0 − a·τ/e`` at ``t = τ`` (calculus); the
  sampled nadir is within ``max|f''|·dt²/8`` of it and its time within one step;
* swing equation without governor, damping D: ``Δf(t) = Δf_ss (1 − e^{−t/T})``,
  ``T = 2H/D``; the 500 ms window RoCoF is
  ``Δf_ss (1 − e^{−w/T}) / w`` exactly at aligned samples (1e-12);
* first-order recovery: the 5 % settling time is ``τ ln 20`` to one sample;
* the voltage envelope against numpy's own nanmin/nanmax (exact).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from grids.metrics import (
    frequency_nadir,
    max_abs_rocof_hz_per_s,
    rocof_after_event_hz_per_s,
    rocof_sliding_hz_per_s,
    settling_time_s,
    voltage_envelope,
)


@pytest.mark.parametrize("dt_s", [0.001, 0.01, 0.02, 0.05])
def test_nadir_of_an_analytic_trajectory(dt_s):
    a, tau, f0 = 0.3, 2.5, 50.0
    t = np.arange(0.0, 20.0, dt_s)
    f = f0 - a * t * np.exp(-t / tau)
    nadir = frequency_nadir(t, f)
    exact = f0 - a * tau / math.e
    bound = a / (tau * math.e) * dt_s**2 / 8 + 1e-12
    assert nadir.f_hz >= exact - 1e-12  # a sample is never below the continuous minimum
    assert nadir.f_hz - exact <= bound
    assert abs(nadir.t_s - tau) <= dt_s


def test_nadir_ignores_samples_before_the_event_and_zenith_for_over_frequency():
    t = np.arange(0.0, 10.0, 0.1)
    f = np.where(t < 1.0, 59.0, 60.0 + 0.1 * np.sin(t - 1.0))  # a dip before the event
    nadir = frequency_nadir(t, f, t_event_s=1.0)  # sin reaches −1 at t − 1 = 3π/2
    assert nadir.f_hz == pytest.approx(60.0 - 0.1, abs=0.1 * 0.05**2)
    assert abs(nadir.t_s - (1.0 + 1.5 * math.pi)) <= 0.1
    zenith = frequency_nadir(t, f, t_event_s=1.0, under_frequency=False)
    assert zenith.f_hz == pytest.approx(60.0 + 0.1, abs=0.1 * 0.05**2)
    assert abs(zenith.t_s - (1.0 + math.pi / 2)) <= 0.1


def test_rocof_500ms_window_of_the_swing_equation_without_governor():
    """2H/f0 df/dt = −ΔP/S − D Δf/f0 with f in Hz: Δf(t) = Δf_ss (1 − e^{−t/T}),
    Δf_ss = −ΔP f0/(D S), T = 2H/D."""
    h_s, d_pu, f0, dp_pu = 5.0, 1.0, 60.0, 0.05
    dt = 0.01
    t = np.arange(0.0, 5.0 + dt / 2, dt)
    t_event = 1.0
    tau = np.clip(t - t_event, 0.0, None)
    df_ss = -dp_pu * f0 / d_pu
    f = f0 + df_ss * (1.0 - np.exp(-tau / (2 * h_s / d_pu)))
    w = 0.5
    expected = df_ss * (1.0 - math.exp(-w / (2 * h_s / d_pu))) / w
    got = rocof_after_event_hz_per_s(t, f, t_event_s=t_event, window_s=w)
    assert got == pytest.approx(expected, rel=1e-9)
    # the initial slope −ΔP f0/(2H) is steeper than the 500 ms average (the curve flattens)
    assert abs(got) < dp_pu * f0 / (2 * h_s)
    # the steepest 500 ms window is the one starting at the event
    assert max_abs_rocof_hz_per_s(t, f, window_s=w) == pytest.approx(abs(expected), rel=1e-9)


def test_sliding_rocof_of_a_ramp_is_the_slope_everywhere():
    t = np.arange(0.0, 3.0, 0.02)
    rocof = rocof_sliding_hz_per_s(t, 50.0 + 0.4 * t, window_s=0.5)
    assert rocof.size == t.size - 25
    np.testing.assert_allclose(rocof, 0.4, rtol=1e-9)
    assert math.isnan(max_abs_rocof_hz_per_s(t[:10], t[:10], window_s=0.5))


@pytest.mark.parametrize("tau_s", [0.5, 2.0, 7.0])
def test_settling_time_of_a_first_order_recovery(tau_s):
    dt = 0.005
    t = np.arange(0.0, 12 * tau_s, dt)
    f = 60.0 - 0.2 * np.exp(-t / tau_s)
    got = settling_time_s(t, f, f_final_hz=60.0, tolerance_frac=0.05)
    assert abs(got - tau_s * math.log(20.0)) <= dt
    got_2pct = settling_time_s(t, f, f_final_hz=60.0, tolerance_frac=0.02)
    assert abs(got_2pct - tau_s * math.log(50.0)) <= dt
    # an absolute band: 0.01 Hz of 0.2 Hz is the same 5 %
    assert settling_time_s(t, f, f_final_hz=60.0, band_hz=0.01) == pytest.approx(got)


def test_settling_time_is_nan_when_still_outside_and_measured_from_the_event():
    t = np.arange(0.0, 3.0, 0.01)
    f = 60.0 - 0.2 * np.exp(-np.clip(t - 1.0, 0, None) / 2.0)
    assert math.isnan(settling_time_s(t, f, t_event_s=1.0, f_final_hz=60.0))
    assert settling_time_s(t, np.full_like(t, 60.0), t_event_s=1.0) == 0.0


def test_voltage_envelope_matches_nanmin_nanmax():
    rng = np.random.default_rng(3)
    vm = rng.uniform(0.9, 1.1, size=(50, 7))
    vm[4, 2] = np.nan
    env = voltage_envelope(vm)
    np.testing.assert_array_equal(env.vm_min_pu, np.nanmin(vm, axis=1))
    np.testing.assert_array_equal(env.vm_max_pu, np.nanmax(vm, axis=1))
    assert env.min_pu == np.nanmin(vm) and vm[env.min_t_index, env.min_bus] == env.min_pu
    assert env.max_pu == np.nanmax(vm) and vm[env.max_t_index, env.max_bus] == env.max_pu


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError):
        frequency_nadir(np.arange(3.0), np.arange(4.0))
    with pytest.raises(ValueError):
        frequency_nadir(np.arange(3.0), np.arange(3.0), t_event_s=10.0)
