"""The one coupled fleet/frequency step (vehicle_models.coupling): its order of operations.

References
----------
* Closed form of the first-order swing model (no governor, ``r_pu = inf``, damping ``D``):
  ``Δf(t) = Δf_ss (1 − e^{−t/T})``, ``T = 2H/D``, ``Δf_ss = f0 ΔP/(D S)`` (Kundur 1994,
  ch. 11); a constant-power responder and an event add up in ``ΔP``. Tolerance 1e-9 Hz (the
  zero-order hold is exact for a held input).
* The order of operations is checked as invariants on what the responder is given: ``f(t_k)``
  (grid-following), or the frequency an independent copy of the swing model reaches at
  ``t_k+1`` with the event and the responder's previous change (grid-forming), exactly.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest

from grids.errors import SimulationError
from grids.frequency import SwingModel, SwingParameters
from vehicle_models.coupling import (
    InjectionChange,
    coupled_step,
    event_imbalance_mw,
    frequency_seen_hz,
    swing_input_mw,
)

F0_HZ = 50.0
S_MW = 10000.0


class _Recorder:
    """A responder with a fixed injection change that records the frequency it is given."""

    def __init__(self, p_mw, *, grid_forming=False):
        self.p_mw = p_mw
        self.grid_forming = grid_forming
        self.last_delta_mw = 0.0
        self.seen = []

    def step(self, *, t_s, dt_s, f_hz):
        self.seen.append((t_s, f_hz))
        self.last_delta_mw = self.p_mw


def first_order_params():
    return SwingParameters(f0_hz=F0_HZ, s_base_mw=S_MW, h_s=4.0, d_pu=2.0, r_pu=math.inf)


def test_constant_responder_and_event_give_the_first_order_closed_form():
    params = first_order_params()
    swing = SwingModel(params)
    fleet = _Recorder(120.0)
    dt_s, n = 0.02, 250
    for k in range(n):
        coupled_step(swing, fleet, t_s=k * dt_s, dt_s=dt_s, p_event_mw=-500.0)
    t_s = n * dt_s
    tau_s = 2.0 * params.h_s / params.d_pu
    df_ss = F0_HZ * (-500.0 + 120.0) / (params.d_pu * S_MW)
    assert swing.delta_f_hz == pytest.approx(df_ss * (1.0 - math.exp(-t_s / tau_s)), abs=1e-9)


def test_grid_following_sees_the_frequency_at_the_start_of_the_step():
    swing = SwingModel(first_order_params())
    fleet = _Recorder(50.0)
    f_start = []
    for k in range(20):
        f_start.append(swing.f_hz)
        out = coupled_step(swing, fleet, t_s=k * 0.02, dt_s=0.02, p_event_mw=-300.0)
        assert out.f_seen_hz == f_start[-1]
        assert out.p_imbalance_mw == -300.0 + 50.0 and out.f_hz == swing.f_hz
    assert [f for _t, f in fleet.seen] == f_start
    assert [t for t, _f in fleet.seen] == pytest.approx([k * 0.02 for k in range(20)])


def test_grid_forming_sees_the_predicted_end_of_step_frequency():
    swing = SwingModel(first_order_params())
    fleet = _Recorder(80.0, grid_forming=True)
    for k in range(10):
        ref = SwingModel(first_order_params())
        ref._x = swing._x.copy()  # same state, advanced independently
        ref.step(dt_s=0.02, p_imbalance_mw=-400.0 + fleet.last_delta_mw)
        out = coupled_step(swing, fleet, t_s=k * 0.02, dt_s=0.02, p_event_mw=-400.0)
        assert out.f_seen_hz == pytest.approx(ref.f_hz, abs=1e-12)


def test_frequency_seen_does_not_move_the_swing_model():
    swing = SwingModel(first_order_params())
    swing.step(dt_s=0.1, p_imbalance_mw=-200.0)
    before = copy.deepcopy(swing._x)
    f = frequency_seen_hz(swing, dt_s=0.02, grid_forming=True, p_event_mw=-200.0)
    assert f < swing.f_hz
    np.testing.assert_array_equal(swing._x, before)
    assert frequency_seen_hz(swing, dt_s=0.02, grid_forming=False) == swing.f_hz


def test_without_a_responder_the_step_is_the_swing_model_alone():
    a, b = SwingModel(first_order_params()), SwingModel(first_order_params())
    out = coupled_step(a, None, t_s=0.0, dt_s=0.05, p_event_mw=-250.0)
    b.step(dt_s=0.05, p_imbalance_mw=-250.0)
    assert out.f_hz == b.f_hz and out.p_fleet_delta_mw == 0.0


def test_a_non_finite_injection_is_a_simulation_error():
    swing = SwingModel(first_order_params())
    with pytest.raises(SimulationError, match=r"non-finite injection at t = 0\.400 s"):
        coupled_step(swing, _Recorder(math.nan), t_s=0.4, dt_s=0.02, p_event_mw=0.0)


def test_injection_change_is_relative_to_the_first_value_and_scaled():
    change = InjectionChange(replicas=20.0)
    assert change(2.5) == 0.0
    assert change(2.0) == pytest.approx(20.0 * (2.0 - 2.5))
    change.rebase()
    assert change(3.0) == 0.0 and change(3.5) == pytest.approx(10.0)


def test_events_count_from_their_instant_within_the_tolerance():
    t_ev, p_ev = [1.0, 2.0], [-500.0, 100.0]
    assert event_imbalance_mw(t_ev, p_ev, 0.98) == 0.0
    assert event_imbalance_mw(t_ev, p_ev, 1.0 - 1e-12, eps_s=1e-9) == -500.0
    assert event_imbalance_mw(t_ev, p_ev, 2.5) == -400.0
    assert swing_input_mw(-400.0, 30.0) == -370.0


def test_a_measured_frequency_replaces_the_swing_models_own():
    """The mosaik order (time-shifted frequency connection): the fleet at step k is given
    ``f(t_k-1)`` (``f0`` at the first step); the swing model still integrates the fleet's
    injection of the same step."""
    swing = SwingModel(first_order_params())
    fleet = _Recorder(40.0)
    f_prev, f_start = F0_HZ, []
    for k in range(15):
        f_start.append(swing.f_hz)
        out = coupled_step(
            swing, fleet, t_s=k * 0.02, dt_s=0.02, p_event_mw=-300.0, f_measured_hz=f_prev
        )
        assert out.p_imbalance_mw == -260.0
        f_prev = f_start[-1]
    assert [f for _t, f in fleet.seen] == [F0_HZ, *f_start[:-1]]
