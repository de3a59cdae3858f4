"""Grid-forming virtual synchronous machine.

References:
- D'Arco & Suul (2014), "Equivalence of virtual synchronous machines and frequency-droops
  for converter-based microgrids", IEEE Trans. Smart Grid 5(1): a droop ``m_p`` with a
  first-order low-pass filter of time constant ``tau`` equals a VSM with ``2H = tau/m_p`` and
  ``D = 1/m_p``. Checked to 1e-9 pu (numerical precision of two different state spaces).
- scipy ``solve_ivp`` (DOP853, rtol 1e-12) on the continuous swing equation: the exact
  discretization agrees to 1e-7 pu.
- Closed-form steady state ``p = p_ref - D (f_g - f_N)/f_N``.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from vehicle_models.inverter import InverterBank
from vehicle_models.settings import InverterSettings, VsmSettings
from vehicle_models.vsm import DroopLowPassFilter, VirtualSynchronousMachine

F0 = 60.0


def _grid_frequency(t_s: np.ndarray) -> np.ndarray:
    """A frequency event: step, ramp (RoCoF -0.5 Hz/s) and a slow oscillation."""
    f = np.full_like(t_s, F0)
    f = np.where(t_s >= 0.5, F0 - 0.05, f)
    ramp = (t_s >= 1.0) & (t_s < 2.0)
    f = np.where(ramp, F0 - 0.05 - 0.5 * (t_s - 1.0), f)
    f = np.where(t_s >= 2.0, F0 - 0.55 + 0.1 * np.sin(2 * np.pi * 0.5 * (t_s - 2.0)), f)
    return f


@pytest.mark.parametrize(("m_p", "tau_s"), [(0.05, 0.2), (0.02, 1.0), (0.04, 0.05)])
def test_droop_with_lowpass_equals_vsm(m_p, tau_s):
    """D'Arco & Suul 2014: identical trajectories of p_e and of the virtual speed."""
    n = 3
    x_pu = 0.15
    droop = DroopLowPassFilter(m_p=m_p, tau_s=tau_s, x_pu=x_pu, n=n)
    vsm_settings = droop.equivalent_vsm_settings()
    assert vsm_settings.h_s == pytest.approx(tau_s / (2 * m_p))
    assert vsm_settings.d_pu == pytest.approx(1 / m_p)
    vsm = VirtualSynchronousMachine(vsm_settings, n=n)
    p_ref = np.array([0.2, -0.3, 0.6])
    # same initial state: steady state at nominal frequency
    vsm.initialize(p_ref_pu=p_ref, f_hz=F0)
    droop.delta_rad = vsm.delta_rad.copy()
    droop.p_filtered_pu = p_ref - vsm.domega_pu / m_p
    dt = 0.002
    t = np.arange(0.0, 5.0, dt)
    worst_p = worst_w = 0.0
    # (with a constant set-point: a set-point step moves the droop's speed instantly but the
    # VSM's only through its inertia; the equivalence is for the response to the grid)
    for fk in _grid_frequency(t):
        p_ref_k = p_ref
        p_vsm = vsm.step(dt_s=dt, f_hz=fk, p_ref_pu=p_ref_k)
        p_droop = droop.step(dt_s=dt, f_hz=fk, p_ref_pu=p_ref_k)
        worst_p = max(worst_p, float(np.max(np.abs(p_vsm - p_droop))))
        worst_w = max(worst_w, float(np.max(np.abs(vsm.domega_pu - droop.domega_pu(p_ref_k)))))
    assert worst_p < 1e-9
    assert worst_w < 1e-9
    # and the response is not trivial: the fleet picked up power during the event
    assert np.all(p_vsm > p_ref + 0.1)


def test_vsm_exact_discretization_matches_ode_solver():
    s = VsmSettings(h_s=3.0, d_pu=20.0, x_pu=0.2)
    vsm = VirtualSynchronousMachine(s, n=1)
    vsm.initialize(p_ref_pu=np.array([0.4]), f_hz=F0)
    wb = 2 * np.pi * F0
    dt = 0.05
    t_grid = np.arange(0.0, 4.0 + 1e-12, dt)
    f_grid = _grid_frequency(t_grid)

    def rhs(t, y):
        k = min(int(np.floor(t / dt + 1e-12)), len(f_grid) - 1)
        dw_g = (f_grid[k] - F0) / F0  # zero-order hold, as the discrete model assumes
        delta, dw = y
        return [wb * (dw - dw_g), (0.4 - delta / s.x_pu - s.d_pu * dw) / (2 * s.h_s)]

    y = np.array([vsm.delta_rad[0], vsm.domega_pu[0]])
    worst = 0.0
    for k in range(len(t_grid) - 1):
        sol = solve_ivp(rhs, (t_grid[k], t_grid[k + 1]), y, method="DOP853", rtol=1e-12, atol=1e-14)
        y = sol.y[:, -1]
        p = vsm.step(dt_s=dt, f_hz=f_grid[k], p_ref_pu=np.array([0.4]))
        worst = max(worst, abs(p[0] - y[0] / s.x_pu))
    assert worst < 1e-7


def test_vsm_steady_state_and_inertia_response():
    s = VsmSettings(h_s=2.0, d_pu=20.0, x_pu=0.15)
    vsm = VirtualSynchronousMachine(s, n=1)
    p_ref = np.array([0.3])
    vsm.initialize(p_ref_pu=p_ref, f_hz=F0)
    for _ in range(2000):
        p = vsm.step(dt_s=0.01, f_hz=59.9, p_ref_pu=p_ref)
    assert p[0] == pytest.approx(0.3 - 20.0 * (59.9 - 60.0) / 60.0, abs=1e-9)
    # during a sustained ramp (RoCoF r) the inertia adds -2H r/f0 on top of damping
    vsm.initialize(p_ref_pu=p_ref, f_hz=F0)
    rocof = -0.2
    p_hist = []
    for k in range(3000):
        p_hist.append(vsm.step(dt_s=0.001, f_hz=F0 + rocof * k * 0.001, p_ref_pu=p_ref)[0])
    # Particular solution of the linear ODE along the ramp dw_g = a t (transients decay as
    # exp(-D t / 4H)): dw = a t + c1 with c1 = -D a x / omega_b and
    # p = p_ref - 2 H a - D (a t + c1).
    a = rocof / F0
    t_last = 2999 * 0.001  # grid frequency held over the last step
    c1 = -s.d_pu * a * s.x_pu / (2 * np.pi * F0)
    expected = 0.3 - 2 * s.h_s * a - s.d_pu * (a * (t_last + 0.001) + c1)
    assert p_hist[-1] == pytest.approx(expected, abs=2e-4)
    assert p_hist[-1] > 0.3 + 2 * s.h_s * 0.2 / F0  # inertia and damping both inject


def test_grid_forming_bank_respects_power_limits():
    s = InverterSettings.defaults(mode="grid_forming", functions=["volt_var"])
    s = dataclasses.replace(s, vsm=VsmSettings(h_s=2.0, d_pu=50.0, x_pu=0.15))
    n = 4
    bank = InverterBank(s, n=n)
    p_max = np.array([0.5, 0.5, 0.2, 0.0])  # SoC limits: the last unit cannot discharge
    p_min = np.array([-1.0, 0.0, -0.5, -0.3])
    ones = np.ones(n)
    for k in range(500):
        f = 60.0 if k < 50 else 59.0  # -1 Hz: D = 50 asks for +0.83 pu
        out = bank.step(
            dt_s=0.01,
            vm_pu=ones,
            f_hz=f,
            p_request_pu=0.1 * ones,
            p_max_pu=np.minimum(p_max, 1.0),
            p_min_pu=p_min,
            connected=np.ones(n, bool),
        )
        assert np.all(out.p_pu <= p_max + 1e-12) and np.all(out.p_pu >= p_min - 1e-12)
        assert np.all(out.p_pu**2 + out.q_pu**2 <= 1.0 + 1e-12)
    np.testing.assert_allclose(out.p_pu, [0.5, 0.5, 0.2, 0.0])
