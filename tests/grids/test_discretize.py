"""grids.discretize.zoh against closed forms (exact zero-order hold).

References: a first-order lag ``tau dy/dt = u - y`` held over ``dt`` has
``A_d = exp(-dt/tau)``, ``B_d = 1 - exp(-dt/tau)``; a double integrator ``x'' = u`` has
``A_d = [[1, dt], [0, 1]]``, ``B_d = [dt^2/2, dt]`` (Franklin, Powell & Workman, sec. 4.3.3).
Tolerance: 1e-14 relative (both are evaluated to rounding).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from grids.discretize import zoh
from vehicle_models.primitives import lag_factor
from vehicle_models.vsm import DroopLowPassFilter, VirtualSynchronousMachine


@pytest.mark.parametrize("tau_s", [1e-3, 0.05, 1.0, 300.0])
@pytest.mark.parametrize("dt_s", [1e-3, 0.1, 10.0])
def test_first_order_lag_closed_form(tau_s, dt_s):
    ad, bd = zoh([[-1.0 / tau_s]], [[1.0 / tau_s]], dt_s)
    assert ad.shape == (1, 1) and bd.shape == (1, 1)
    assert ad[0, 0] == pytest.approx(math.exp(-dt_s / tau_s), rel=1e-14, abs=1e-300)
    assert bd[0, 0] == pytest.approx(-math.expm1(-dt_s / tau_s), rel=1e-14)
    assert bd[0, 0] == pytest.approx(lag_factor(dt_s, tau_s), rel=1e-14)


def test_double_integrator_and_one_dimensional_input():
    dt = 0.37
    ad, bd = zoh([[0.0, 1.0], [0.0, 0.0]], [0.0, 1.0], dt)
    np.testing.assert_allclose(ad, [[1.0, dt], [0.0, 1.0]], rtol=1e-14, atol=1e-15)
    assert bd.shape == (2,)
    np.testing.assert_allclose(bd, [dt * dt / 2.0, dt], rtol=1e-14)


def test_zero_step_and_bad_shapes():
    ad, bd = zoh([[-2.0]], [[1.0]], 0.0)
    assert ad[0, 0] == 1.0 and bd[0, 0] == 0.0
    with pytest.raises(ValueError, match="shape"):
        zoh(np.eye(2), np.ones((3, 1)), 0.1)
    with pytest.raises(ValueError, match="dt_s"):
        zoh([[-1.0]], [[1.0]], -0.1)


def test_vsm_steps_are_exact_for_any_step_size():
    """The VSM discretized with zoh: one 1 s step equals 100 steps of 10 ms (inputs held)."""
    vsm_a = VirtualSynchronousMachine(DroopLowPassFilter(
        m_p=0.05, tau_s=0.2, x_pu=0.15, n=1).equivalent_vsm_settings(), n=1)  # fmt: skip
    vsm_b = VirtualSynchronousMachine(vsm_a.settings, n=1)
    for vsm in (vsm_a, vsm_b):
        vsm.initialize(p_ref_pu=0.2, f_hz=60.0)
    vsm_a.step(dt_s=1.0, f_hz=59.9, p_ref_pu=0.5)
    for _ in range(100):
        vsm_b.step(dt_s=0.01, f_hz=59.9, p_ref_pu=0.5)
    np.testing.assert_allclose(vsm_a.delta_rad, vsm_b.delta_rad, rtol=1e-10)
    np.testing.assert_allclose(vsm_a.domega_pu, vsm_b.domega_pu, rtol=1e-10, atol=1e-15)
