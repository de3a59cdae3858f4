"""The feeder model (``grids.feeder_model.FeederModel``) against pandapower ``runpp``.

References and tolerances:
* AC solve vs pandapower ``runpp`` on the same net (DESIGN.md: 1e-6 pu; losses and slack
  power 1e-6 MW; loadings 1e-4 %), on every embedded feeder, with and without a line outage;
* batched vs one-scenario solves: the same Newton-Raphson solution (1e-9 pu, both stop on the
  same 1e-9 MVA mismatch);
* LinDistFlow on case33bw at nominal load within 0.01 pu of ``runpp`` (DESIGN.md §5);
* LinDistFlow lossless slack: exactly minus the sum of the energized injections.
"""

from __future__ import annotations

import copy

import numpy as np
import pandapower as pp
import pytest

from grids.errors import FeederError, ScenarioError
from grids.feeder_model import FeederModel, SolveMethod, summarize_powerflow
from grids.feeders import feeder_names
from grids.powerflow import prepare_net, run_reference

TOL_PU = 1e-6


def _reference(net, lines_out=(), extra_p=None, extra_q=None):
    """runpp on a copy with the lines out and extra injections as static generators."""
    ref = copy.deepcopy(net)
    if lines_out:
        ref.line.loc[list(lines_out), "in_service"] = False
    if extra_p is not None:
        for bus, p, q in zip(ref.bus.index, extra_p, extra_q, strict=True):
            if p or q:
                pp.create_sgen(ref, int(bus), p_mw=float(p), q_mvar=float(q))
    run_reference(ref)
    return ref


def _assert_matches_runpp(result, ref, row=0):
    vm_ref = ref.res_bus.vm_pu.to_numpy(float)
    np.testing.assert_array_equal(np.isnan(result.vm_pu[row]), np.isnan(vm_ref))
    np.testing.assert_allclose(result.vm_pu[row], vm_ref, atol=TOL_PU, equal_nan=True)
    va_ref = ref.res_bus.va_degree.to_numpy(float)
    np.testing.assert_allclose(result.va_degree[row], va_ref, atol=1e-4, equal_nan=True)
    assert result.p_slack_mw[row] == pytest.approx(ref.res_ext_grid.p_mw.sum(), abs=1e-6)
    assert result.q_slack_mvar[row] == pytest.approx(ref.res_ext_grid.q_mvar.sum(), abs=1e-6)
    loss = ref.res_line.pl_mw.sum() + ref.res_trafo.pl_mw.sum()
    assert result.p_loss_mw[row] == pytest.approx(loss, abs=1e-6)
    loading_ref = ref.res_line.loading_percent.to_numpy(float)
    rated = result.line_rated & np.isfinite(loading_ref)
    np.testing.assert_allclose(
        result.line_loading_percent[row, rated], loading_ref[rated], atol=1e-4
    )
    assert np.isnan(result.line_loading_percent[row, ~result.line_rated]).all()


@pytest.mark.parametrize("name", feeder_names())
def test_ac_solve_matches_runpp_on_every_embedded_feeder(name):
    net = prepare_net(name)
    model = FeederModel.from_name(name)
    p0, q0 = model.base_injection()
    _assert_matches_runpp(model.solve(p0, q0, warm_start=False), _reference(net))
    # a second scenario: 0.3 MW / 0.1 Mvar more demand at the last bus, warm-started
    extra_p = np.zeros(len(p0))
    extra_q = np.zeros(len(p0))
    extra_p[-1], extra_q[-1] = -0.3 * min(1.0, net.sn_mva), -0.1 * min(1.0, net.sn_mva)
    result = model.solve(p0 + extra_p, q0 + extra_q)
    _assert_matches_runpp(result, _reference(net, extra_p=extra_p, extra_q=extra_q))


def test_batched_equals_one_scenario_solves():
    model = FeederModel.from_name("case33bw")
    p0, q0 = model.base_injection()
    scale = np.array([0.5, 1.0, 1.4])[:, None]
    batch = model.solve(p0 * scale, q0 * scale, warm_start=False)
    for k in range(3):
        single = FeederModel.from_name("case33bw").solve(p0 * scale[k, 0], q0 * scale[k, 0])
        np.testing.assert_allclose(batch.vm_pu[k], single.vm_pu[0], atol=1e-9)
        assert batch.p_slack_mw[k] == pytest.approx(single.p_slack_mw[0], abs=1e-8)
    ldf = model.solve(p0 * scale, q0 * scale, method=SolveMethod.LINDISTFLOW)
    one = model.solve(p0, q0, method=SolveMethod.LINDISTFLOW)
    np.testing.assert_allclose(ldf.vm_pu[1], one.vm_pu[0], atol=1e-12)


@pytest.mark.parametrize(("name", "line"), [("cigre_mv", 2), ("case33bw", 20)])
def test_line_outage_matches_runpp_with_the_line_out_of_service(name, line):
    """A line out: AC against runpp with it out of service; cut-off buses are dead (NaN)."""
    net = prepare_net(name)
    base = FeederModel.from_name(name, substation_rating_mva=5.0)
    p0, q0 = base.base_injection()
    via_argument = base.solve(p0, q0, lines_out=[line])
    ref = _reference(net, lines_out=[line])
    _assert_matches_runpp(via_argument, ref)
    np.testing.assert_array_equal(via_argument.dead_bus, np.isnan(ref.res_bus.vm_pu.to_numpy()))
    via_model = base.with_outages([line]).solve(p0, q0)
    np.testing.assert_allclose(via_model.vm_pu, via_argument.vm_pu, atol=1e-12, equal_nan=True)
    assert base.with_outages([line]) is base.with_outages([line])  # cached: warm starts kept
    # dead buses leave the minimum and maximum
    live = ~via_argument.dead_bus
    assert via_argument.vm_min_pu[0] == pytest.approx(np.min(via_argument.vm_pu[0, live]))
    energized = via_argument.vm_energized_pu()
    assert np.all(energized[0, via_argument.dead_bus] == 0.0)


def test_cutting_the_feeder_head_leaves_only_the_slack():
    model = FeederModel.from_name("case33bw")
    result = model.solve(*model.base_injection(), lines_out=[0])
    assert result.n_dead_buses == 32
    assert result.vm_pu[0, 0] == pytest.approx(1.0)
    assert result.p_slack_mw[0] == pytest.approx(0.0)


def test_lindistflow_within_001_pu_of_runpp_on_case33bw_and_lossless():
    """DESIGN.md §5: the linear form within about 0.01 pu of AC on case33bw at nominal load."""
    net = prepare_net("case33bw")
    model = FeederModel.from_net(net, substation_rating_mva=5.0)
    p0, q0 = model.base_injection()
    result = model.solve(p0, q0, method=SolveMethod.LINDISTFLOW)
    ref = _reference(net)
    assert np.max(np.abs(result.vm_pu[0] - ref.res_bus.vm_pu.to_numpy())) < 0.01
    assert result.p_slack_mw[0] == pytest.approx(-p0.sum(), abs=1e-12)
    assert result.q_slack_mvar[0] == pytest.approx(-q0.sum(), abs=1e-12)
    assert result.p_loss_mw[0] == 0.0
    assert result.substation_loading_pu[0] == pytest.approx(np.hypot(p0.sum(), q0.sum()) / 5.0)


def test_substation_loading_is_slack_apparent_power_over_rating():
    net = prepare_net("cigre_mv")
    model = FeederModel.from_net(net, substation_rating_mva=40.0)
    result = model.solve(*model.base_injection())
    ref = _reference(net)
    s_ref = np.hypot(ref.res_ext_grid.p_mw.sum(), ref.res_ext_grid.q_mvar.sum())
    assert result.substation_loading_pu[0] == pytest.approx(s_ref / 40.0, rel=1e-7)
    assert np.isnan(FeederModel.from_net(net).solve(*model.base_injection()).substation_loading_pu)


def test_unrated_lines_are_nan_and_flagged():
    """case33bw carries pandapower's 99999 kA placeholder: no rating, not '0 % loading'."""
    model = FeederModel.from_name("case33bw")
    result = model.solve(*model.base_injection())
    assert not result.line_rated.any()
    assert np.isnan(result.line_loading_percent).all()
    assert np.isnan(summarize_powerflow("case33bw")["max_line_loading_percent"])


def test_voltage_dependent_load_is_solved_by_runpp():
    net = prepare_net("case33bw")
    net.load.loc[3, "const_z_p_percent"] = 100.0
    model = FeederModel.from_net(net)
    _assert_matches_runpp(model.solve(*model.base_injection()), _reference(net))


def test_bad_inputs_are_one_error_each():
    model = FeederModel.from_name("case33bw")
    p0, q0 = model.base_injection()
    bad = p0.copy()
    bad[4] = np.nan
    with pytest.raises(ScenarioError, match="bus 4 is NaN"):
        model.solve(bad, q0)
    with pytest.raises(ScenarioError, match="shape"):
        model.solve(p0[:-1], q0)
    with pytest.raises(FeederError, match="line 999 does not exist"):
        model.with_outages([999])
    with pytest.raises(ScenarioError, match="substation_rating_mva"):
        FeederModel.from_name("case33bw", substation_rating_mva=-1.0)
    meshed = prepare_net("case33bw")
    meshed.line["in_service"] = True
    with pytest.raises(FeederError, match="not radial"):
        FeederModel.from_net(meshed).prepare(SolveMethod.LINDISTFLOW)


def test_non_convergence_names_the_worst_bus():
    model = FeederModel.from_name("case33bw")
    p0, q0 = model.base_injection()
    result = model.solve(10 * p0, 10 * q0)
    assert not result.converged[0]
    with pytest.raises(Exception, match="did not converge at t = 60 s"):
        result.raise_if_failed(label="case33bw", time_s=60.0)


def test_lindistflow_with_an_outage_marks_the_same_dead_buses_and_stays_close_to_runpp():
    """case33bw without line 17 (buses 18.. cut off): LinDistFlow on what stays energized,
    within the 0.01 pu of DESIGN.md §5 of runpp with the line out of service."""
    net = prepare_net("case33bw")
    model = FeederModel.from_net(net)
    p0, q0 = model.base_injection()
    result = model.solve(p0, q0, method=SolveMethod.LINDISTFLOW, lines_out=[17])
    ref = _reference(net, lines_out=[17])
    vm_ref = ref.res_bus.vm_pu.to_numpy(float)
    np.testing.assert_array_equal(result.dead_bus, np.isnan(vm_ref))
    live = ~result.dead_bus
    assert np.max(np.abs(result.vm_pu[0, live] - vm_ref[live])) < 0.01
    assert result.p_slack_mw[0] == pytest.approx(-p0[live].sum(), abs=1e-12)
    with pytest.raises(AttributeError):
        result.vm_pu = None  # frozen
