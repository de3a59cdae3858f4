"""Regulator tap control (``grids.regulation3ph``) against OpenDSS's RegControl.

Reference: OpenDSS (opendssdirect) in its static control mode: the embedded feeder masters end
with ``Solve``, which starts from neutral taps and lets the RegControls settle; the taps it
reaches are read from the file. Our static loop, started from neutral taps (1.0 pu) with the
same settings (vreg, band, PT, CT, R, X, delays, maxtapchange), must reach exactly the same
taps on IEEE 13 (one 3-phase bank of single-phase regulators), IEEE 34 (two banks) and
IEEE 123 (seven regulators, head regulator first by its shorter delay, one step per action),
and then be in band. The time-driven controller is checked against its rule (closed form):
no move before ``delay``, one step at ``delay``, one more every ``tapdelay``, timer reset in
band.
"""

from __future__ import annotations

import numpy as np
import pytest

from grids.errors import ScenarioError
from grids.feeder3ph import ThreePhaseFeederModel
from grids.regulation3ph import (
    RegulatorTapController,
    regulator_state,
    solve_with_regulator_control,
)


@pytest.mark.parametrize("name", ["ieee13", "ieee34", "ieee123"])
def test_static_control_reaches_the_opendss_taps(name):
    model = ThreePhaseFeederModel.from_name(name)
    opendss_taps = model.regulator_taps  # settled by OpenDSS's own Solve in the file
    assert any(tap != 1.0 for tap in opendss_taps.values())
    model.set_regulator_taps(dict.fromkeys(opendss_taps, 1.0))
    out = solve_with_regulator_control(model)
    assert out.settled
    assert out.taps == opendss_taps
    state = regulator_state(model, out.result)
    assert np.all(state.pending_pu == 0.0)


def test_control_voltage_at_the_settled_taps_is_in_band():
    model = ThreePhaseFeederModel.from_name("ieee13")
    state = regulator_state(model, model.solve())
    # vreg 122 V, band 2 V
    assert np.all(np.abs(state.v_control_v - 122.0) <= 1.0)


def test_static_control_needs_one_scenario():
    model = ThreePhaseFeederModel.from_name("ieee13")
    with pytest.raises(ScenarioError, match="one scenario"):
        solve_with_regulator_control(model, load_mult=np.array([0.5, 1.0]))


def test_time_driven_controller_follows_delay_and_tap_delay():
    model = ThreePhaseFeederModel.from_name("ieee13")
    reg = model.circuit.regulators[0]  # delay 15 s (default), tapdelay 2 s
    assert (reg.delay_s, reg.tap_delay_s) == (15.0, 2.0)
    start = {k: 1.0 for k in model.regulator_taps}
    model.set_regulator_taps(start)  # far below the settled taps: every regulator wants up
    controller = RegulatorTapController(model)
    history = []
    for _ in range(10):  # 10 steps of 5 s
        moved = controller.update(model.solve(), dt_s=5.0)
        history.append(moved.get("reg1"))
    # out of band at t = 5, 10: nothing; at 15 s the first step; then every 2 s one more
    # (with 5 s steps: 3 steps in total due at 20 s, 5 at 25 s, ...) until in band
    assert history[0] is None and history[1] is None
    assert history[2] == pytest.approx(1.00625)
    assert history[3] == pytest.approx(1.0 + 3 * 0.00625)  # due at 20 s: 1 + (20 - 15) // 2 = 3
    # settled in band (the band of 2 V holds more than one 0.75 V step: any in-band tap is a
    # valid end point, not necessarily the static mode's)
    state = regulator_state(model, model.solve())
    assert np.all(state.pending_pu == 0.0)
    assert model.regulator_taps["reg1"] > 1.04


def test_time_driven_controller_resets_in_band():
    model = ThreePhaseFeederModel.from_name("ieee13")
    controller = RegulatorTapController(model)
    result = model.solve()  # settled taps: in band
    assert controller.update(result, dt_s=900.0) == {}
    with pytest.raises(ScenarioError, match="dt_s"):
        controller.update(result, dt_s=0.0)
