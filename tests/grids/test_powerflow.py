"""Fast AC power flow (``grids.powerflow.ACPowerFlow``) against pandapower ``runpp``.

Reference: pandapower ``runpp`` (Newton-Raphson, ``tolerance_mva=1e-9``) on the same net with
the same injections applied as element scalings and extra static generators. Tolerances:
voltage magnitude 1e-6 pu (the project requirement), angle 1e-5 degree, losses 1e-6 MW,
loadings 1e-5 percent.
"""

from __future__ import annotations

import copy
import functools

import numpy as np
import pandapower as pp
import pytest

from grids.errors import ConvergenceError, FeederError, ScenarioError
from grids.powerflow import ACPowerFlow, prepare_net, run_reference

FEEDERS = ["case33bw", "cigre_mv", "mv_oberrhein"]
VM_TOL_PU = 1e-6


@functools.cache
def _cached_net(name: str):
    return prepare_net(name)


def _net(name: str, load_scale: float = 1.0):
    """A fresh copy of an embedded feeder (loading a feeder takes ~1 s, copying ~10 ms)."""
    net = copy.deepcopy(_cached_net(name))
    net.load["scaling"] *= load_scale
    return net


def _scenarios(ac: ACPowerFlow, *, seed: int, n_random: int = 4):
    """Per-bus scale factors and extra injections: 3 uniform load scales + seeded random ones."""
    rng = np.random.default_rng(seed)
    n_bus = len(ac.bus)
    scale = [np.full(n_bus, s) for s in (0.3, 1.0, 1.6)]
    extra_p = [np.zeros(n_bus) for _ in scale]
    extra_q = [np.zeros(n_bus) for _ in scale]
    p_base, _ = ac.base_injection()
    size_mw = max(float(np.abs(p_base).sum()), 1.0) / 10
    for _ in range(n_random):
        scale.append(rng.uniform(0.2, 1.8, n_bus))
        p = np.zeros(n_bus)
        q = np.zeros(n_bus)
        buses = rng.choice(np.flatnonzero(p_base != 0), size=5, replace=False)
        p[buses] = rng.uniform(-0.5, 1.0, 5) * size_mw  # V2G export and charging
        q[buses] = rng.uniform(-0.3, 0.3, 5) * size_mw
        extra_p.append(p)
        extra_q.append(q)
    return np.array(scale), np.array(extra_p), np.array(extra_q)


def _reference(net, ac: ACPowerFlow, scale: np.ndarray, extra_p: np.ndarray, extra_q):
    """runpp with loads/sgens at each bus scaled by ``scale`` and extra sgens added."""
    ref = copy.deepcopy(net)
    position = {int(b): i for i, b in enumerate(ac.bus)}
    for table in ("load", "sgen"):
        rows = [position[int(b)] for b in ref[table].bus]
        ref[table]["scaling"] = ref[table]["scaling"].to_numpy() * scale[rows]
    for i in np.flatnonzero((extra_p != 0) | (extra_q != 0)):
        pp.create_sgen(ref, int(ac.bus[i]), p_mw=float(extra_p[i]), q_mvar=float(extra_q[i]))
    run_reference(ref)
    return ref


@pytest.mark.parametrize("name", FEEDERS)
def test_fast_ac_matches_runpp_on_every_feeder(name):
    net = _net(name)
    ac = ACPowerFlow(net)
    p_base, q_base = ac.base_injection()
    scale, extra_p, extra_q = _scenarios(ac, seed=hash(name) % 1000)
    result = ac.solve(scale * p_base + extra_p, scale * q_base + extra_q, warm_start=False)
    assert result.converged.all()
    assert result.vm_pu.shape == (len(scale), len(ac.bus))
    for k in range(len(scale)):
        ref = _reference(net, ac, scale[k], extra_p[k], extra_q[k])
        vm_ref = ref.res_bus.vm_pu.loc[ac.bus].to_numpy()
        va_ref = ref.res_bus.va_degree.loc[ac.bus].to_numpy()
        np.testing.assert_allclose(result.vm_pu[k], vm_ref, rtol=0, atol=VM_TOL_PU)
        np.testing.assert_allclose(result.va_degree[k], va_ref, rtol=0, atol=1e-5)
        loss_ref = ref.res_line.pl_mw.sum() + (ref.res_trafo.pl_mw.sum() if len(ref.trafo) else 0)
        assert result.p_loss_mw[k] == pytest.approx(loss_ref, abs=1e-6)
        assert result.p_slack_mw[k] == pytest.approx(ref.res_ext_grid.p_mw.sum(), abs=1e-6)
        assert result.q_slack_mvar[k] == pytest.approx(ref.res_ext_grid.q_mvar.sum(), abs=1e-6)
        np.testing.assert_allclose(
            result.line_loading_percent[k],
            ref.res_line.loading_percent.loc[ac.line].to_numpy(),
            rtol=0,
            atol=1e-5,
        )
        if len(ac.trafo):
            np.testing.assert_allclose(
                result.trafo_loading_percent[k],
                ref.res_trafo.loading_percent.loc[ac.trafo].to_numpy(),
                rtol=0,
                atol=1e-5,
            )


def test_mv_oberrhein_has_two_slacks_and_trafo_taps_modelled():
    """Two external grids, off-neutral taps and 150 degree phase shift, as runpp models them."""
    net = _net("mv_oberrhein", 1.2)
    assert len(net.ext_grid) == 2 and (net.trafo.tap_pos != net.trafo.tap_neutral).all()
    ac = ACPowerFlow(net)
    p, q = ac.base_injection()
    result = ac.solve(p, q, warm_start=False)
    run_reference(net)
    np.testing.assert_allclose(result.vm_pu[0], net.res_bus.vm_pu.loc[ac.bus], atol=VM_TOL_PU)
    assert len(ac.trafo) == 2


def test_base_injection_matches_pandapower_internal_sbus():
    """Our per-bus injection of loads and sgens equals pandapower's internal Sbus (non-slack)."""
    net = _net("mv_oberrhein", 0.7)
    ac = ACPowerFlow(net)
    p, q = ac.base_injection()
    run_reference(net)
    ppci = net._ppc["internal"]
    lookup = net._pd2ppc_lookups["bus"]
    sbus = np.asarray(ppci["Sbus"]) * ppci["baseMVA"]
    aggregated = np.zeros(len(sbus), dtype=complex)
    np.add.at(aggregated, lookup[ac.bus], p + 1j * q)
    not_slack = np.setdiff1d(np.arange(len(sbus)), ppci["ref"])  # Sbus holds the slack result
    np.testing.assert_allclose(aggregated[not_slack], sbus[not_slack], atol=1e-12)


def test_pv_generator_bus_matches_runpp():
    """A generator holding 1.02 pu (PV bus) mid-feeder on case33bw."""
    net = _net("case33bw")
    pp.create_gen(net, 17, p_mw=0.8, vm_pu=1.02)
    ac = ACPowerFlow(net)
    p, q = ac.base_injection()
    scale = np.array([[0.5], [1.0], [1.4]])
    result = ac.solve(p * scale, q * scale, warm_start=False)
    assert result.converged.all()
    assert np.allclose(result.vm_pu[:, list(ac.bus).index(17)], 1.02, atol=1e-12)
    for k, s in enumerate(scale[:, 0]):
        ref = copy.deepcopy(net)
        ref.load["scaling"] *= s
        ref.gen["scaling"] = s
        run_reference(ref)
        np.testing.assert_allclose(result.vm_pu[k], ref.res_bus.vm_pu.loc[ac.bus], atol=VM_TOL_PU)


def test_power_balance_injections_plus_slack_equal_losses():
    """Invariant (no shunt elements in these feeders): slack + sum(injections) = losses."""
    for name in FEEDERS:
        net = _net(name)
        assert len(net.shunt) == 0
        ac = ACPowerFlow(net)
        p, q = ac.base_injection()
        factors = np.random.default_rng(7).uniform(0.2, 1.5, (20, 1))
        result = ac.solve(p * factors, q * factors)
        assert result.converged.all()
        balance_p = result.p_slack_mw + (p * factors).sum(axis=1)
        balance_q = result.q_slack_mvar + (q * factors).sum(axis=1)
        np.testing.assert_allclose(balance_p, result.p_loss_mw, atol=1e-8)
        np.testing.assert_allclose(balance_q, result.q_loss_mvar, atol=1e-8)
        assert (result.p_loss_mw > 0).all()


def test_warm_started_time_series_equals_batch():
    """Sequential warm-started steps give the batch solution (same tolerance)."""
    net = _net("cigre_mv")
    ac = ACPowerFlow(net)
    p, q = ac.base_injection()
    t_h = np.linspace(0, 24, 48, endpoint=False)
    shape = 0.6 + 0.4 * np.sin((t_h - 6) / 24 * 2 * np.pi)[:, None]
    batch = ac.solve(p * shape, q * shape, warm_start=False)
    steps = np.array([ac.solve(p * s, q * s).vm_pu[0] for s in shape])
    np.testing.assert_allclose(steps, batch.vm_pu, atol=1e-9)
    # warm starts need fewer iterations than starting from the base solution
    cold = ac.solve(p * shape[-1], q * shape[-1], warm_start=False).iterations[0]
    ac.solve(p * shape[-2], q * shape[-2])
    warm = ac.solve(p * shape[-1], q * shape[-1]).iterations[0]
    assert warm <= cold


@pytest.mark.parametrize("name", FEEDERS)
def test_one_scenario_kernel_equals_batched_path_in_every_result(name):
    """One-scenario calls run the compiled chord kernel (``grids.powerflow_kernels``); every
    result array equals the batched numpy path's (same solution, tolerance 1e-9 MVA) and
    pandapower ``runpp``'s (voltages 1e-6 pu, losses and slack 1e-6 MW, loadings 1e-5 %), and
    the kernel path is the one taken (no Newton-Raphson fallback needed on these scenarios)."""
    net = _net(name)
    ac = ACPowerFlow(net)
    p_base, q_base = ac.base_injection()
    scale, extra_p, extra_q = _scenarios(ac, seed=7, n_random=2)
    p = scale * p_base + extra_p
    q = scale * q_base + extra_q
    batch = ACPowerFlow(net).solve(p, q, warm_start=False)
    calls = []
    original = ac._solve_single
    ac._solve_single = lambda *a: calls.append(original(*a)) or calls[-1]
    for k in range(len(p)):
        one = ac.solve(p[k], q[k])
        assert calls[-1] is not None  # the compiled path solved it
        assert one.converged.tolist() == [True] and one.worst_bus.tolist() == [-1]
        for field in (
            "vm_pu",
            "va_degree",
            "p_loss_mw",
            "q_loss_mvar",
            "p_slack_mw",
            "q_slack_mvar",
            "line_loading_percent",
            "trafo_loading_percent",
        ):
            got = getattr(one, field)
            want = getattr(batch, field)[k : k + 1]
            assert got.shape == want.shape, field
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-7, err_msg=field)
        # and directly against pandapower runpp (the independent reference)
        ref = _reference(net, ac, scale[k], extra_p[k], extra_q[k])
        np.testing.assert_allclose(
            one.vm_pu[0], ref.res_bus.vm_pu.loc[ac.bus].to_numpy(), rtol=0, atol=VM_TOL_PU
        )
        loss_ref = ref.res_line.pl_mw.sum() + (ref.res_trafo.pl_mw.sum() if len(ref.trafo) else 0)
        assert one.p_loss_mw[0] == pytest.approx(loss_ref, abs=1e-6)
        assert one.p_slack_mw[0] == pytest.approx(ref.res_ext_grid.p_mw.sum(), abs=1e-6)
        np.testing.assert_allclose(
            one.line_loading_percent[0],
            ref.res_line.loading_percent.loc[ac.line].to_numpy(),
            rtol=0,
            atol=1e-5,
        )
        if len(ac.trafo):
            np.testing.assert_allclose(
                one.trafo_loading_percent[0],
                ref.res_trafo.loading_percent.loc[ac.trafo].to_numpy(),
                rtol=0,
                atol=1e-5,
            )


def test_one_infeasible_scenario_falls_back_and_reports_the_worst_bus():
    """The compiled chord kernel gives up on a collapsing case; the batched path (chord, then
    full Newton-Raphson) then reports it as failed with its worst bus, and the next feasible
    call solves again."""
    ac = ACPowerFlow(_net("case33bw"))
    p, q = ac.base_injection()
    failed = ac.solve(p * 10.0, q * 10.0)
    assert failed.converged.tolist() == [False]
    assert int(failed.worst_bus[0]) in set(ac.bus.tolist())
    assert np.isnan(failed.vm_pu).all() and failed.max_mismatch_mva[0] > 1e-9
    again = ac.solve(p, q)
    reference = ACPowerFlow(_net("case33bw")).solve(p, q, warm_start=False)
    np.testing.assert_allclose(again.vm_pu, reference.vm_pu, rtol=0, atol=1e-9)


def test_infeasible_scenario_is_reported_and_others_converge():
    """A huge load (10x, beyond the voltage-collapse point that runpp also cannot pass)."""
    net = _net("case33bw")
    ac = ACPowerFlow(net)
    p, q = ac.base_injection()
    factors = np.array([[1.0], [0.5], [10.0], [1.3]])
    result = ac.solve(p * factors, q * factors, warm_start=False)
    assert result.converged.tolist() == [True, True, False, True]
    assert result.failed().tolist() == [2]
    assert np.isnan(result.vm_pu[2]).all() and np.isfinite(result.vm_pu[[0, 1, 3]]).all()
    alone = ac.solve(p * 1.3, q * 1.3, warm_start=False)
    np.testing.assert_allclose(result.vm_pu[3], alone.vm_pu[0], atol=1e-10)
    bus = int(result.worst_bus[2])
    assert bus in set(ac.bus.tolist())
    with pytest.raises(ConvergenceError, match=rf"scenario 2: .* at bus {bus} ") as info:
        result.raise_if_failed()
    assert info.value.index == 2 and info.value.worst_bus == bus
    ref = _net("case33bw", 10.0)
    with pytest.raises(ConvergenceError, match="did not converge"):
        run_reference(ref)


def test_converged_batch_does_not_raise():
    net = _net("case33bw")
    ac = ACPowerFlow(net)
    result = ac.solve(*ac.base_injection())
    result.raise_if_failed()
    assert result.failed().size == 0


def test_bad_injections_are_reported():
    net = _net("case33bw")
    ac = ACPowerFlow(net)
    p, q = ac.base_injection()
    with pytest.raises(ScenarioError, match=r"p_mw: shape \(5,\) \(expected \(33,\)"):
        ac.solve(p[:5], q[:5])
    bad = p.copy()
    bad[4] = np.nan
    with pytest.raises(ScenarioError, match="q_mvar: scenario 0, bus 4 is NaN"):
        ac.solve(p, bad)
    with pytest.raises(ScenarioError, match="tolerance_mva: -1"):
        ACPowerFlow(net, tolerance_mva=-1)


def test_unsupported_elements_raise_feeder_error():
    net = _net("case33bw")
    net.load.loc[0, "const_z_p_percent"] = 50.0
    hv = pp.create_bus(net, vn_kv=110.0)
    mv = pp.create_bus(net, vn_kv=20.0)
    pp.create_transformer3w(net, hv, mv, 0, std_type="63/25/38 MVA 110/20/10 kV")
    with pytest.raises(FeederError) as info:
        ACPowerFlow(net)
    assert "trafo3w: in-service elements are not supported" in str(info.value)
    assert "load.const_z_p_percent: voltage-dependent loads" in str(info.value)


def test_large_batch_with_grouped_chord_jacobians_matches_runpp():
    """>= 256 scenarios take the grouped path (one chord Jacobian per load-sorted group)."""
    net = _net("mv_oberrhein")
    ac = ACPowerFlow(net)
    p, q = ac.base_injection()
    factors = np.random.default_rng(5).uniform(0.3, 1.6, (300, len(ac.bus)))
    grouped = ac.solve(p * factors, q * factors, warm_start=False)
    assert ac.max_groups > 1 and len(ac._groups(np.zeros((300, 1)))) > 1
    single = ACPowerFlow(net)
    single.max_groups = 1
    plain = single.solve(p * factors, q * factors, warm_start=False)
    assert grouped.converged.all() and plain.converged.all()
    np.testing.assert_allclose(grouped.vm_pu, plain.vm_pu, atol=1e-9)
    zeros = np.zeros(len(ac.bus))
    for k in (0, 150, 299):
        ref = _reference(net, ac, factors[k], zeros, zeros)
        np.testing.assert_allclose(
            grouped.vm_pu[k], ref.res_bus.vm_pu.loc[ac.bus].to_numpy(), atol=VM_TOL_PU
        )


def test_shunt_storage_and_ward_match_runpp_and_balance():
    """A capacitor bank, a shunt reactor with losses, a storage and a ward on cigre_mv."""
    net = _net("cigre_mv")
    pp.create_shunt(net, 5, q_mvar=-1.0, p_mw=0.0)  # capacitor: generator convention q < 0
    pp.create_shunt(net, 9, q_mvar=0.3, p_mw=0.02)
    pp.create_storage(net, 11, p_mw=0.5, max_e_mwh=2.0, q_mvar=0.1)  # charging: consumption
    pp.create_ward(net, 13, ps_mw=0.2, qs_mvar=0.05, pz_mw=0.1, qz_mvar=0.02)
    ac = ACPowerFlow(net)
    p, q = ac.base_injection()
    result = ac.solve(p, q, warm_start=False)
    run_reference(net)
    np.testing.assert_allclose(result.vm_pu[0], net.res_bus.vm_pu.loc[ac.bus], atol=VM_TOL_PU)
    assert result.p_slack_mw[0] == pytest.approx(net.res_ext_grid.p_mw.sum(), abs=1e-6)
    # balance: slack + injections = series losses + shunt and ward-impedance consumption
    shunt_p = net.res_shunt.p_mw.sum() + (net.res_ward.p_mw.sum() - 0.2)
    assert result.p_slack_mw[0] + p.sum() == pytest.approx(result.p_loss_mw[0] + shunt_p, abs=1e-8)
    load_at_11_mw = (net.load.p_mw * net.load.scaling)[net.load.bus == 11].sum()
    assert p[list(ac.bus).index(11)] == pytest.approx(-0.5 - load_at_11_mw)
