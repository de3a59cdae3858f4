"""Regulator tap control (``grids.regulation3ph``) against OpenDSS's RegControl.

Reference: OpenDSS (opendssdirect) in its static control mode: the embedded feeder masters end
with ``Solve``, which starts from neutral taps and lets the RegControls settle; the taps it
reaches are read from the file. Our static loop, started from neutral taps (1.0 pu) with the
same settings (vreg, band, PT, CT, R, X, delays, maxtapchange), must reach exactly the same
taps on IEEE 13 (one 3-phase bank of single-phase regulators), IEEE 34 (two banks) and
IEEE 123 (seven regulators, head regulator first by its shorter delay, one step per action),
and then be in band. The time-driven controller is checked against OpenDSS's daily mode with
``controlmode=time`` on the same load shape: the same taps at every step and the same
voltages.
"""

from __future__ import annotations

import numpy as np
import opendssdirect as dss
import pytest
from opendss_reference import compile_reference, node_voltages_pu

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


def _opendss_time_series(model, mult, step_s):
    """Taps and node voltages [pu] per step from OpenDSS's daily mode, time-driven control."""
    compile_reference(model.circuit.path)
    for reg in model.circuit.regulators:
        dss.Text.Command(f"Transformer.{reg.transformer}.wdg={reg.winding} tap=1.0")
    values = " ".join(f"{m:.6f}" for m in mult)
    dss.Text.Command(f"new loadshape.steps npts={len(mult)} sinterval={step_s} mult=({values})")
    dss.Text.Command("batchedit load..* daily=steps")
    dss.Text.Command("set controlmode=time")
    dss.Text.Command(f"set mode=daily stepsize={step_s}s number=1")
    # 1e-10: tighter, OpenDSS runs out of its iterations in some control iterations and its
    # regulators then decide on an unconverged solution
    dss.Solution.Convergence(1e-10)
    taps, volts = [], []
    for _ in mult:
        dss.Solution.Solve()
        assert dss.Solution.Converged()
        row = {}
        for reg in model.circuit.regulators:
            dss.Transformers.Name(reg.transformer)
            dss.Transformers.Wdg(reg.winding)
            row[reg.name] = round(dss.Transformers.Tap(), 10)
        taps.append(row)
        volts.append(np.abs(node_voltages_pu(model)))
    return taps, volts


@pytest.mark.parametrize(("name", "step_s", "seed"), [("ieee34", 900.0, 2), ("ieee123", 10.0, 4)])
def test_time_driven_control_matches_opendss_daily_mode(name, step_s, seed):
    """30 steps of a random load shape from neutral taps: every tap of every regulator equal
    to OpenDSS's at every step (15-minute steps: one action per step; 10-second steps: the
    15-30 s delays and 2 s tap delays interleave), voltages within 1e-7 pu."""
    mult = np.round(0.4 + 0.9 * np.random.default_rng(seed).random(30), 3)
    model = ThreePhaseFeederModel.from_name(name)
    model.set_regulator_taps(dict.fromkeys(model.regulator_taps, 1.0))
    controller = RegulatorTapController(model)
    ref_taps, ref_volts = _opendss_time_series(model, mult, step_s)
    moved = False
    for k, m in enumerate(mult):
        result = controller.step(time_s=k * step_s, load_mult=float(m))
        assert model.regulator_taps == ref_taps[k], f"step {k}"
        assert np.abs(result.vm_pu[0] - ref_volts[k]).max() < 1e-7
        moved = moved or any(t != 1.0 for t in ref_taps[k].values())
    assert moved


def test_time_driven_controller_refuses_time_going_back():
    model = ThreePhaseFeederModel.from_name("ieee13")
    controller = RegulatorTapController(model)
    controller.step(time_s=100.0)
    with pytest.raises(ScenarioError, match="time_s"):
        controller.step(time_s=50.0)
