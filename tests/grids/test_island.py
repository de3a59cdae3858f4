"""Islanded power flow with grid-forming droop (``grids.island``) against independent references.

References and tolerances:

* an independent droop-islanded formulation: a hand-built 4-bus meshed 20 kV island written
  directly with complex numbers (its admittance matrix from the line data in ohms, unknowns the
  rectangular bus voltages, the per-unit frequency and every unit's P and Q) solved by
  ``scipy.optimize.root``; voltages, angles, frequency and unit powers within 1e-6 pu;
* pandapower ``runpp``: one unit with ``nq_pu = 0`` holds its bus voltage like a slack, so the
  island's voltages equal ``runpp`` with the external grid at that bus (1e-6 pu) and its power
  the slack power (1e-6 MW); the frequency follows the closed form of the droop;
* invariants: energy balance ``sum P_g + sum P_spec = P_loss`` (1e-9 MW), droop sharing in
  proportion to ``S_g / m_p`` (closed form) and the droop laws at the solution.
"""

from __future__ import annotations

import copy
import functools
import math

import numpy as np
import pandapower as pp
import pytest
from scipy.optimize import root

from grids.errors import FeederError, ScenarioError
from grids.feeders import load_feeder
from grids.island import GridFormingUnit, IslandPowerFlow

F0_HZ = 50.0
VN_KV = 20.0
LINES = [  # from, to, r_ohm, x_ohm, c_nf (each line 1 km)
    (0, 1, 0.8, 1.2, 250.0),
    (1, 2, 1.0, 1.5, 0.0),
    (2, 3, 0.6, 0.9, 120.0),
    (3, 0, 1.2, 1.6, 0.0),
    (1, 3, 0.9, 1.1, 0.0),
]
LOADS = {1: (1.2, 0.5), 2: (2.0, 0.8), 3: (0.9, 0.3)}  # bus: (MW, Mvar) consumed
UNITS = [
    GridFormingUnit(bus=0, s_rated_mva=3.0, mp_pu=0.04, nq_pu=0.05, p0_mw=1.0, v0_pu=1.02),
    GridFormingUnit(bus=2, s_rated_mva=2.0, mp_pu=0.05, nq_pu=0.03, q0_mvar=0.2, v0_pu=1.0),
]


def _four_bus_net():
    net = pp.create_empty_network(f_hz=F0_HZ, sn_mva=1.0)
    for i in range(4):
        pp.create_bus(net, vn_kv=VN_KV, name=f"b{i}")
    for f, t, r, x, c in LINES:
        pp.create_line_from_parameters(
            net, f, t, length_km=1.0, r_ohm_per_km=r, x_ohm_per_km=x, c_nf_per_km=c, max_i_ka=1
        )
    for bus, (p, q) in LOADS.items():
        pp.create_load(net, bus, p_mw=p, q_mvar=q)
    pp.create_ext_grid(net, 0)  # the bulk grid, disconnected in the island
    return net


def _reference_island(units, loads, *, sn_mva: float = 1.0):
    """The droop island written by hand: complex Ybus from ohms, scipy root in rectangular form."""
    n = 4
    z_base = VN_KV**2 / sn_mva
    y = np.zeros((n, n), dtype=complex)
    for f, t, r, x, c in LINES:
        ys = z_base / complex(r, x)
        ysh = 1j * 2 * math.pi * F0_HZ * c * 1e-9 * z_base / 2
        y[f, f] += ys + ysh
        y[t, t] += ys + ysh
        y[f, t] -= ys
        y[t, f] -= ys
    s_load = np.zeros(n, dtype=complex)
    for bus, (p, q) in loads.items():
        s_load[bus] = complex(p, q) / sn_mva
    ng = len(units)
    ref = units[0].bus

    def equations(z):
        e, fim = z[:n], z[n : 2 * n]
        omega = z[2 * n]
        pg = z[2 * n + 1 : 2 * n + 1 + ng]
        qg = z[2 * n + 1 + ng :]
        v = e + 1j * fim
        s_gen = np.zeros(n, dtype=complex)
        for k, u in enumerate(units):
            s_gen[u.bus] += complex(pg[k], qg[k])
        mismatch = v * np.conj(y @ v) - (s_gen - s_load)
        eqs = [mismatch.real, mismatch.imag]
        droop = []
        for k, u in enumerate(units):
            s = u.s_rated_mva / sn_mva
            droop.append(omega - (1 - u.mp_pu * (pg[k] - u.p0_mw / sn_mva) / s))
            droop.append(abs(v[u.bus]) - (u.v0_pu - u.nq_pu * (qg[k] - u.q0_mvar / sn_mva) / s))
        # 2n + 1 + 2ng unknowns: the angle reference Im V_ref = 0 closes the system
        return np.concatenate([*eqs, droop, [fim[ref]]])

    z0 = np.concatenate([np.ones(n), np.zeros(n), [1.0], np.ones(ng), np.zeros(ng)])
    sol = root(equations, z0, method="lm", options={"xtol": 1e-15, "ftol": 1e-15})
    assert sol.success, sol.message
    assert np.max(np.abs(equations(sol.x))) < 1e-12
    v = sol.x[:n] + 1j * sol.x[n : 2 * n]
    return {
        "vm_pu": np.abs(v),
        "va_degree": np.degrees(np.angle(v)),
        "f_hz": sol.x[2 * n] * F0_HZ,
        "p_mw": sol.x[2 * n + 1 : 2 * n + 1 + ng] * sn_mva,
        "q_mvar": sol.x[2 * n + 1 + ng :] * sn_mva,
    }


def test_matches_hand_built_droop_island_solved_by_scipy_root():
    net = _four_bus_net()
    island = IslandPowerFlow(net, UNITS, f0_hz=F0_HZ)
    result = island.solve(*island.base_injection())
    ref = _reference_island(UNITS, LOADS)
    assert result.converged.all()
    np.testing.assert_allclose(result.vm_pu[0], ref["vm_pu"], atol=1e-6)
    np.testing.assert_allclose(result.va_degree[0], ref["va_degree"], atol=1e-6)
    assert abs(result.f_hz[0] - ref["f_hz"]) / F0_HZ < 1e-6
    np.testing.assert_allclose(result.p_gfm_mw[0], ref["p_mw"], atol=1e-6)
    np.testing.assert_allclose(result.q_gfm_mvar[0], ref["q_mvar"], atol=1e-6)
    # a real island: no bus holds 1 pu, the frequency moved off nominal
    assert abs(result.f_hz[0] - F0_HZ) > 0.1


def test_matches_reference_with_other_loads_and_a_non_unit_system_base():
    loads = {1: (0.4, -0.2), 2: (0.6, 0.1), 3: (2.5, 1.0)}
    net = _four_bus_net()
    net.sn_mva = 10.0
    net.load.drop(net.load.index, inplace=True)
    for bus, (p, q) in loads.items():
        pp.create_load(net, bus, p_mw=p, q_mvar=q)
    units = [UNITS[1], UNITS[0]]  # the other unit is the angle reference
    result = IslandPowerFlow(net, units, f0_hz=F0_HZ).solve(
        *IslandPowerFlow(net, units, f0_hz=F0_HZ).base_injection()
    )
    ref = _reference_island(units, loads, sn_mva=1.0)
    np.testing.assert_allclose(result.vm_pu[0], ref["vm_pu"], atol=1e-6)
    np.testing.assert_allclose(result.va_degree[0], ref["va_degree"], atol=1e-6)
    np.testing.assert_allclose(result.p_gfm_mw[0], ref["p_mw"], atol=1e-6)
    np.testing.assert_allclose(result.q_gfm_mvar[0], ref["q_mvar"], atol=1e-6)


@functools.cache
def _case33():
    return load_feeder("case33bw")


@pytest.mark.parametrize(("feeder", "bus"), [("case33bw", 0), ("mv_oberrhein", 58)])
def test_single_stiff_unit_equals_pandapower_slack_and_droop_closed_form(feeder, bus):
    """mv_oberrhein: HV/MV transformers with a 150 degree phase shift, and a second subnet fed
    by another external grid, dead in the island (NaN here, unsupplied in runpp)."""
    net = copy.deepcopy(_case33()) if feeder == "case33bw" else load_feeder(feeder)
    unit = GridFormingUnit(bus=bus, s_rated_mva=60.0, mp_pu=0.05, nq_pu=0.0, p0_mw=2.0, v0_pu=1.01)
    island = IslandPowerFlow(net, [unit], f0_hz=60.0)
    result = island.solve(*island.base_injection())
    ref = copy.deepcopy(net)
    ref.ext_grid.drop(ref.ext_grid.index[ref.ext_grid.bus != bus], inplace=True)
    ref.ext_grid["vm_pu"] = 1.01
    ref.ext_grid["va_degree"] = 0.0
    pp.runpp(ref, calculate_voltage_angles=True, tolerance_mva=1e-10, numba=False)
    vm_ref = ref.res_bus.vm_pu.to_numpy()
    np.testing.assert_array_equal(result.dead_bus, np.isnan(vm_ref))
    live = ~result.dead_bus
    np.testing.assert_allclose(result.vm_pu[0, live], vm_ref[live], atol=1e-6)
    va_ref = ref.res_bus.va_degree.to_numpy()[live]
    np.testing.assert_allclose(result.va_degree[0, live], va_ref, atol=1e-5)
    p_slack = float(ref.res_ext_grid.p_mw.iloc[0])
    assert abs(result.p_gfm_mw[0, 0] - p_slack) < 1e-6
    assert abs(result.q_gfm_mvar[0, 0] - float(ref.res_ext_grid.q_mvar.iloc[0])) < 1e-6
    f_closed = 60.0 * (1 - 0.05 * (p_slack - 2.0) / 60.0)
    assert abs(result.f_hz[0] - f_closed) < 1e-9


def test_energy_balance_sharing_and_droop_laws_over_a_batch():
    net = _case33()
    units = [
        GridFormingUnit(bus=0, s_rated_mva=4.0, mp_pu=0.05, nq_pu=0.04),
        GridFormingUnit(bus=17, s_rated_mva=2.0, mp_pu=0.02, nq_pu=0.05),
        GridFormingUnit(bus=32, s_rated_mva=1.0, mp_pu=0.05, nq_pu=0.02, v0_pu=1.01),
    ]
    island = IslandPowerFlow(net, units, f0_hz=50.0)
    p0, q0 = island.base_injection()
    rng = np.random.default_rng(7)
    scale = rng.uniform(0.3, 1.2, (20, len(p0)))
    result = island.solve(p0 * scale, q0 * scale)
    assert result.converged.all()
    # every bus balance holds to the solver tolerance (1e-9 MVA), so the sum to n_bus times it
    tol_mw = len(p0) * island.tolerance_mva
    balance = result.p_gfm_mw.sum(axis=1) + (p0 * scale).sum(axis=1) - result.p_loss_mw
    assert np.max(np.abs(balance)) < tol_mw
    balance_q = result.q_gfm_mvar.sum(axis=1) + (q0 * scale).sum(axis=1) - result.q_loss_mvar
    assert np.max(np.abs(balance_q)) < tol_mw
    assert (result.p_loss_mw > 0).all()
    # P0 = 0: every unit's share is proportional to S / m_p (one frequency for all)
    weight = np.array([u.s_rated_mva / u.mp_pu for u in units])
    share = result.p_gfm_mw / result.p_gfm_mw.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(share, np.tile(weight / weight.sum(), (20, 1)), atol=1e-8)
    for k, u in enumerate(units):
        f_law = 50.0 * (1 - u.mp_pu * (result.p_gfm_mw[:, k] - u.p0_mw) / u.s_rated_mva)
        np.testing.assert_allclose(result.f_hz, f_law, atol=1e-7)  # 1e-9 pu of 50 Hz
        v_law = u.v0_pu - u.nq_pu * (result.q_gfm_mvar[:, k] - u.q0_mvar) / u.s_rated_mva
        np.testing.assert_allclose(result.vm_pu[:, u.bus], v_law, atol=1e-8)
    # the reported extremes are the buses' own
    rows = np.arange(20)
    np.testing.assert_allclose(result.vm_min_pu, result.vm_pu[rows, result.bus_vm_min])
    # warm start: the same answer
    again = island.solve(p0 * scale, q0 * scale)
    np.testing.assert_allclose(again.vm_pu, result.vm_pu, atol=1e-9)


def test_buses_cut_off_from_the_units_are_dead():
    net = copy.deepcopy(_case33())
    line = int(net.line.index[(net.line.from_bus == 25) & (net.line.to_bus == 26)][0])
    net.line.loc[line, "in_service"] = False
    island = IslandPowerFlow(net, [GridFormingUnit(bus=0, s_rated_mva=5.0)], f0_hz=60.0)
    p, q = island.base_injection()
    result = island.solve(p, q)
    assert result.converged.all()
    assert result.dead_bus.any() and not result.dead_bus[0]
    assert np.isnan(result.vm_pu[0, result.dead_bus]).all()
    live = ~result.dead_bus
    balance = result.p_gfm_mw[0].sum() + p[live].sum() - result.p_loss_mw[0]
    assert abs(balance) < live.sum() * island.tolerance_mva


def test_bad_input_is_refused_with_every_problem():
    net = _four_bus_net()
    with pytest.raises(ScenarioError, match="s_rated_mva"):
        GridFormingUnit(bus=0, s_rated_mva=-1.0)
    with pytest.raises(ScenarioError, match="mp_pu"):
        GridFormingUnit(bus=0, s_rated_mva=1.0, mp_pu=0.0)
    with pytest.raises(ScenarioError, match="f0_hz"):
        IslandPowerFlow(net, UNITS, f0_hz=0.0)
    with pytest.raises(ScenarioError, match="at least one"):
        IslandPowerFlow(net, [], f0_hz=50.0)
    with pytest.raises(FeederError, match="bus 9"):
        IslandPowerFlow(net, [GridFormingUnit(bus=9, s_rated_mva=1.0)], f0_hz=50.0)
    stiff = [GridFormingUnit(bus=1, s_rated_mva=1.0, nq_pu=0.0)] * 2
    with pytest.raises(FeederError, match="undetermined"):
        IslandPowerFlow(net, stiff, f0_hz=50.0)
    cut = _four_bus_net()
    cut.line["in_service"] = [True, False, False, True, False]  # bus 2 alone
    with pytest.raises(FeederError, match="not connected"):
        IslandPowerFlow(cut, UNITS, f0_hz=50.0)
    island = IslandPowerFlow(net, UNITS, f0_hz=50.0)
    with pytest.raises(ScenarioError, match="shape"):
        island.solve(np.zeros(3), np.zeros(3))


def test_voltage_collapse_is_a_failed_scenario_not_an_exception():
    net = _case33()
    island = IslandPowerFlow(net, [GridFormingUnit(bus=0, s_rated_mva=5.0)], f0_hz=60.0)
    p, q = island.base_injection()
    result = island.solve(np.vstack([p, 40 * p]), np.vstack([q, 40 * q]), warm_start=False)
    assert result.converged.tolist() == [True, False]
    assert np.isnan(result.vm_pu[1]).all() and np.isnan(result.f_hz[1])
    assert np.isfinite(result.vm_pu[0]).all() and result.bus_vm_min[1] == -1
