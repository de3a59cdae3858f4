"""Time-series power flow (``grids.timeseries_pf.solve_time_series``) against pandapower.

References and tolerances (DESIGN.md: the fast path agrees with ``runpp`` to 1e-6 pu):
* at sampled steps of a SimBench year: ``runpp`` on the net whose loads, PV and storages hold
  that step's absolute SimBench values (set element by element, independently of the per-bus
  profiles), 1e-6 pu;
* on a short window: pandapower ``run_timeseries`` with SimBench's own ``ConstControl``s
  (``simbench.apply_const_controllers``), 1e-6 pu at every step;
* invariants: the result does not depend on the chunk size (1e-9 pu, both stop on the same
  1e-9 MVA mismatch); extra injections equal the same injections written into the profiles.
"""

from __future__ import annotations

import copy

import numpy as np
import pandapower as pp
import pandas as pd
import pytest
import simbench as sb

from grids.errors import ConvergenceError, ScenarioError
from grids.feeder_model import FeederModel, SolveMethod
from grids.profiles_year import FeederProfiles
from grids.simbench import simbench_profiles
from grids.timeseries_pf import solve_time_series

CODE = "simbench:1-LV-rural1--2-sw"
TOL_PU = 1e-6


@pytest.fixture(scope="module")
def model():
    return FeederModel.from_name(CODE)


@pytest.fixture(scope="module")
def absolute(model):
    return sb.get_absolute_values(model.net, profiles_instead_of_study_cases=True)


@pytest.fixture(scope="module")
def profiles(model):
    return simbench_profiles(model.net, model)


@pytest.fixture(scope="module")
def year(model, profiles):
    return solve_time_series(model, profiles)


def run_reference(net):
    """pandapower runpp at the project's reference settings, without numba (no compile)."""
    pp.runpp(net, calculate_voltage_angles=True, tolerance_mva=1e-9, max_iteration=50, numba=False)


def _net_at(net, absolute, step):
    ref = copy.deepcopy(net)
    for (element, column), frame in absolute.items():
        if frame.shape[1]:
            ref[element].loc[frame.columns, column] = frame.iloc[step].to_numpy()
    return ref


def test_a_year_converges_at_every_step(year, profiles):
    assert year.vm_pu.shape == (35_136, 15)
    assert year.converged.all()
    assert year.time.equals(profiles.time)
    assert np.isfinite(year.vm_pu).all()
    # the transformer and every rated line have a loading at every step
    assert np.isfinite(year.trafo_loading_percent).all()


@pytest.mark.parametrize("step", [0, 4_321, 17_000, 29_090, 35_135])
def test_sampled_steps_equal_runpp(model, absolute, year, step):
    ref = _net_at(model.net, absolute, step)
    run_reference(ref)
    np.testing.assert_allclose(
        year.vm_pu[step], ref.res_bus.vm_pu.reindex(model.bus).to_numpy(), rtol=0, atol=TOL_PU
    )
    np.testing.assert_allclose(
        year.trafo_loading_percent[step], ref.res_trafo.loading_percent.to_numpy(), atol=1e-4
    )
    assert year.p_slack_mw[step] == pytest.approx(ref.res_ext_grid.p_mw.sum(), abs=1e-6)


def test_a_window_equals_pandapower_run_timeseries(model, absolute, profiles):
    from pandapower.timeseries import OutputWriter, run_timeseries

    steps = range(29_090, 29_094)  # around the repeated hour of October
    net = copy.deepcopy(model.net)
    sb.apply_const_controllers(net, absolute)
    writer = OutputWriter(
        net,
        time_steps=steps,
        output_path=None,
        log_variables=[("res_bus", "vm_pu"), ("res_line", "loading_percent")],
    )
    run_timeseries(
        net,
        time_steps=steps,
        verbose=False,
        numba=False,
        calculate_voltage_angles=True,
        tolerance_mva=1e-9,
    )
    window = profiles.window(profiles.time[steps[0]], len(steps) * 900)
    ours = solve_time_series(model, window)
    ref_vm = writer.output["res_bus.vm_pu"].loc[list(steps), list(model.bus)].to_numpy()
    np.testing.assert_allclose(ours.vm_pu, ref_vm, rtol=0, atol=TOL_PU)
    ref_line = writer.output["res_line.loading_percent"].loc[list(steps)].to_numpy()
    rated = np.isfinite(ours.line_loading_percent[0])
    np.testing.assert_allclose(ours.line_loading_percent[:, rated], ref_line[:, rated], atol=1e-4)


def test_the_chunk_size_does_not_change_the_answer(model, profiles, year):
    week = profiles.window(profiles.time[96 * 30], 7 * 86_400)
    done = []
    small = solve_time_series(model, week, chunk_steps=50, progress=lambda k, n: done.append(k))
    assert done == [*range(50, 672, 50), 672]
    np.testing.assert_allclose(small.vm_pu, year.vm_pu[96 * 30 : 96 * 37], atol=1e-9)


def test_extra_injection_equals_profiles_that_hold_it(model, profiles):
    day = profiles.window("2016-07-01", 86_400)
    extra = np.zeros((day.n_steps, day.n_bus))
    extra[:, 5] = -0.011  # an 11 kW charger at the 6th bus, all day
    with_extra = solve_time_series(model, day, extra_p_mw=extra)
    moved = FeederProfiles(day.time, day.step_s, day.bus, day.p_mw + extra, day.q_mvar)
    np.testing.assert_allclose(
        with_extra.vm_pu, solve_time_series(model, moved).vm_pu, rtol=0, atol=1e-9
    )
    assert (with_extra.vm_pu[:, 5] < solve_time_series(model, day).vm_pu[:, 5]).all()


def test_lindistflow_is_passed_through(model, profiles):
    # (LinDistFlow ignores the transformer's tap position, 2.5 % here: no AC comparison)
    day = profiles.window("2016-07-01", 86_400)
    linear = solve_time_series(model, day, method=SolveMethod.LINDISTFLOW)
    assert linear.method is SolveMethod.LINDISTFLOW
    assert (linear.p_loss_mw == 0).all()
    np.testing.assert_allclose(linear.p_slack_mw, -day.p_mw.sum(axis=1), atol=1e-12)


def test_non_convergence_is_flagged_with_its_time():
    model = FeederModel.from_name("case33bw")
    time = pd.date_range("2016-01-01", periods=4, freq="15min")
    profiles = FeederProfiles.from_model_base(model, time, [1.0, 1.0, 40.0, 1.0])
    result = solve_time_series(model, profiles)
    assert result.converged.tolist() == [True, True, False, True]
    assert np.isnan(result.vm_pu[2]).all()
    with pytest.raises(ConvergenceError, match=r"step 2 \(2016-01-01 00:30:00\)"):
        result.raise_if_failed()


def test_bad_input_is_refused(model, profiles):
    other = FeederModel.from_name("case33bw")
    with pytest.raises(ScenarioError, match="not the model's"):
        solve_time_series(other, profiles)
    day = profiles.window("2016-07-01", 86_400)
    with pytest.raises(ScenarioError, match="chunk_steps") as error:
        solve_time_series(model, day, chunk_steps=0, extra_q_mvar=np.zeros(3))
    assert "extra_q_mvar: shape (3,)" in str(error.value)  # every problem at once


def test_volt_var_fixed_point_equals_a_root_solve_with_runpp(model, absolute, profiles):
    """A volt-var inverter (IEEE 1547 Category B curve, 22 kVA, 4x its share of a bus) at the
    end of a feeder: the per-chunk fixed point equals the scalar root ``q = f(v(q))`` found by
    scipy's brentq on pandapower runpp (1e-6 pu)."""
    from scipy.optimize import brentq

    from vehicle_models.controls import volt_var_q_pu
    from vehicle_models.settings import VoltVarSettings

    settings = VoltVarSettings.defaults()
    column = int(np.argmax(np.abs(profiles.p_mw).sum(axis=0)))
    s_mva = 4 * 0.022

    def response(rows, vm_pu):
        q = np.zeros_like(vm_pu)
        q[:, column] = s_mva * volt_var_q_pu(vm_pu[:, column], settings)
        return np.zeros_like(vm_pu), q

    day = profiles.window("2016-06-21", 86_400)
    result = solve_time_series(model, day, response=response, response_tolerance_pu=1e-10)
    assert result.response_converged.all()
    assert (result.response_iterations > 1).all()
    k = profiles.time.get_loc(pd.Timestamp("2016-06-21 13:00", tz="Europe/Berlin"))
    row = k - profiles.time.get_loc(day.time[0])
    bus = int(model.bus[column])

    def voltage_at(q_mvar):
        ref = _net_at(model.net, absolute, k)
        pp.create_sgen(ref, bus, p_mw=0.0, q_mvar=q_mvar)
        run_reference(ref)
        return ref

    def residual(q_mvar):
        v = voltage_at(q_mvar).res_bus.vm_pu.at[bus]
        return q_mvar - s_mva * float(volt_var_q_pu(v, settings))

    q_root = brentq(residual, -0.45 * s_mva, 0.45 * s_mva, xtol=1e-13)
    ref = voltage_at(q_root)
    assert result.response_q_mvar[row, column] == pytest.approx(q_root, abs=1e-8)
    np.testing.assert_allclose(
        result.vm_pu[row], ref.res_bus.vm_pu.reindex(model.bus).to_numpy(), rtol=0, atol=TOL_PU
    )
    assert q_root < 0  # a sunny noon: the inverter absorbs


def test_a_response_that_cannot_settle_is_flagged(model, profiles):
    day = profiles.window("2016-06-21", 3_600)

    def flip(rows, vm_pu):  # not a contraction: alternates forever
        q = np.zeros_like(vm_pu)
        q[:, 5] = np.where(vm_pu[:, 5] > np.median(vm_pu[:, 5]) - 1.0, -0.02, 0.02)
        q[:, 5] *= (-1) ** flip.calls
        flip.calls += 1
        return np.zeros_like(vm_pu), q

    flip.calls = 0
    result = solve_time_series(model, day, response=flip, response_max_iterations=4)
    assert (result.response_iterations == 4).all() and not result.response_converged.any()
    with pytest.raises(ScenarioError, match="response_relaxation"):
        solve_time_series(model, day, response=flip, response_relaxation=0.0)
