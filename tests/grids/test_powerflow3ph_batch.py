"""Batched three-phase solves by the chord Newton iteration (grids/powerflow3ph_batch.py).

References: the branch derivative against the closed form of a constant-power load,
``I = conj(S / V)`` (Kersting, "Distribution System Modeling and Analysis", 4th ed., ch. 9);
the chord map against the nominal-admittance preconditioner it generalises (the same
matrices when the derivative is complex-linear); batched answers against single-scenario
solves to a tight tolerance, and against OpenDSS through tests/grids/test_feeder3ph*.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from grids.feeder3ph import ThreePhaseFeederModel
from grids.powerflow3ph import SMALL_BATCH
from grids.powerflow3ph_batch import branch_jacobian, chord_map, level_groups, real_form
from grids.powerflow3ph_chord_kernels import chord_residual_kernel, reference_residual_kernel
from grids.powerflow3ph_kernels import (
    MODEL_CVR,
    MODEL_I,
    MODEL_MOTOR,
    MODEL_PQ,
    MODEL_PQ_PURE,
    MODEL_Z,
)


def _params(model: np.ndarray, v_base_v: float = 2400.0) -> tuple:
    nb = model.size
    return (
        np.full(nb, v_base_v),
        model.astype(np.int64),
        np.full(nb, 0.95),
        np.full(nb, 1.05),
        np.full(nb, 0.5),
        np.zeros(nb),
        np.zeros(nb),
    )


def test_branch_jacobian_of_a_constant_power_load_equals_the_closed_form():
    """dI = -conj(S) / conj(V)^2 conj(dV) for I = conj(S / V): real 2x2 blocks to 1e-6."""
    v = np.array([2400.0 * np.exp(-0.1j), 2350.0 * np.exp(2.0j)])
    s = np.array([100e3 + 40e3j, 20e3 - 5e3j])
    jb = branch_jacobian(v, s, _params(np.array([MODEL_PQ, MODEL_PQ])))
    a = -np.conj(s) / np.conj(v) ** 2  # dI = a conj(dV)
    # d(Ir, Ii)/d(Vr, Vi) of I = a (Vr - j Vi)
    expected = np.stack([a.real, a.imag, a.imag, -a.real], axis=1)
    np.testing.assert_allclose(jb, expected, rtol=1e-6, atol=1e-12)


def test_branch_jacobian_constant_impedance_is_its_admittance_and_pure_injections_zero():
    v = np.array([2400.0 + 100j, 2400.0 + 0j])
    s = np.array([50e3 + 10e3j, 30e3 + 0j])
    jb = branch_jacobian(v, s, _params(np.array([MODEL_Z, MODEL_PQ_PURE])))
    y = np.conj(s[0]) / 2400.0**2
    np.testing.assert_allclose(jb[0], [y.real, -y.imag, y.imag, y.real], rtol=1e-7)
    assert np.all(jb[1] == 0.0)


def test_chord_map_with_a_complex_linear_derivative_is_the_admittance_preconditioner():
    """With ``J_b`` the real form of an admittance ``y_b``, ``K = (1 + Z Y_l)^-1 Z``."""
    rng = np.random.default_rng(1)
    n_a = 5
    z = rng.normal(size=(n_a, n_a)) + 1j * rng.normal(size=(n_a, n_a))
    z = 0.1 * (z + z.T)
    v0 = 2400.0 * np.exp(1j * rng.normal(size=n_a))
    f = np.array([0, 1, 2, 3, 4, 0])
    t = np.array([5, 5, 4, 5, 5, 1])  # index n_a = ground
    y_b = rng.normal(size=6) * 0.01 + 1j * rng.normal(size=6) * 0.01
    jb = np.stack([y_b.real, -y_b.imag, y_b.imag, y_b.real], axis=1)
    chord = chord_map(z, v0, v0, jb, f, t, _params(np.full(6, MODEL_Z)))
    inc = np.zeros((n_a + 1, 6))
    inc[f, np.arange(6)] += 1.0
    inc[t, np.arange(6)] -= 1.0
    y_l = inc[:n_a] @ np.diag(y_b) @ inc[:n_a].T
    m = np.eye(n_a) + z @ y_l
    np.testing.assert_allclose(chord.k_t.T, real_form(np.linalg.solve(m, z)), atol=1e-12)
    np.testing.assert_allclose(chord.c_v, np.linalg.solve(m, v0), rtol=1e-12)


def test_level_groups_bound_the_load_ratio_within_a_group():
    s = np.outer(np.geomspace(0.05, 3.0, 200), np.ones(4) * (1e4 + 2e3j))
    steps, order = level_groups(s, float(np.abs(s[100]).sum()))
    assert np.all(np.diff(steps[order]) >= 0)
    for k in np.unique(steps):
        total = np.abs(s[steps == k]).sum(axis=1)
        assert total.max() / total.min() <= 1.25 * (1 + 1e-12)


@pytest.mark.parametrize("name", ["ieee13", "ieee34", "ieee123", "european_lv"])
def test_batched_solve_equals_single_solves_to_the_tolerance(name):
    """Loads from 5 % to 160 % in one batch (many load levels, constant Z, I and PQ loads,
    delta and wye): every scenario equals a single-scenario solve to 1e-12 within the
    batch's tolerance 1e-10 pu; each converged on its own."""
    model = ThreePhaseFeederModel.from_name(name)
    rng = np.random.default_rng(7)
    n = 3 * SMALL_BATCH + 7
    level = np.geomspace(0.05, 1.6, n)[:, None]
    mult = level * rng.uniform(0.7, 1.3, (n, model.n_load))
    batch = model.solve(load_mult=mult)
    assert batch.converged.all()
    for k in range(0, n, 5):
        one = model.solve(load_mult=mult[k : k + 1], tol_pu=1e-13, warm_start=False)
        assert np.abs(batch.v_pu[k] - one.v_pu[0]).max() < 1e-10
        # losses are the quadratic form V^H Y V over the network: its round-off with the
        # regulators' large admittances is ~1e-5 kW even for voltages equal to 1e-12 V
        np.testing.assert_allclose(batch.losses_kw[k], one.losses_kw[0], rtol=1e-8, atol=1e-4)


def test_batched_solve_with_extra_injections_at_different_buses():
    """A hosting-capacity style batch: each scenario a 100 kW charger or V2G export at
    another load node (constant power at every voltage); the same answers as single
    solves."""
    model = ThreePhaseFeederModel.from_name("ieee123")
    n = SMALL_BATCH + 12
    load_nodes = np.unique([k for nodes in model.load_nodes for k in nodes if k >= 0])
    nodes = load_nodes[np.linspace(0, load_nodes.size - 1, n).astype(int)]
    p = np.zeros((n, model.n_node))
    p[np.arange(n), nodes] = np.linspace(-0.1, 0.1, n)
    batch = model.solve(p_wye_mw=p)
    assert batch.converged.all()
    for k in (0, n // 2, n - 1):
        one = model.solve(p_wye_mw=p[k], tol_pu=1e-13, warm_start=False)
        assert np.abs(batch.v_pu[k] - one.v_pu[0]).max() < 1e-10


def test_batched_solve_flags_a_hopeless_scenario_without_raising():
    """50 MW of constant power drawn at a far load node has no solution: that scenario is
    flagged, the others converge."""
    model = ThreePhaseFeederModel.from_name("ieee13")
    n = SMALL_BATCH + 3
    p = np.zeros((n, model.n_node))
    p[-1, model.node_index("675", 1)] = -50.0
    res = model.solve(p_wye_mw=p, max_iter=50)
    assert res.converged[:-1].all()
    assert not res.converged[-1]


def test_slowly_contracting_scenarios_stay_within_the_tolerance():
    """Constant-power draws of 0.5-2 MW at one phase of 675 (IEEE 13): towards the
    loadability limit the chord iteration slows down (tens of iterations); the error bound of
    linear convergence keeps each converged answer within the tolerance of a tight single
    solve, and the draws beyond the limit are flagged."""
    model = ThreePhaseFeederModel.from_name("ieee13")
    sizes = np.linspace(-0.5, -4.0, 15)
    p = np.zeros((sizes.size, model.n_node))
    p[:, model.node_index("675", 1)] = sizes
    batch = model.solve(p_wye_mw=p, max_iter=500)
    assert batch.converged[sizes >= -2.0].all()
    assert not batch.converged[sizes <= -2.5].any()
    assert batch.iterations[batch.converged].max() > 25  # slow contraction was exercised
    for k in np.flatnonzero(batch.converged):
        one = model.solve(p_wye_mw=p[k], tol_pu=1e-13, warm_start=False, max_iter=2000)
        assert np.abs(batch.v_pu[k] - one.v_pu[0]).max() < 1e-10


@pytest.mark.parametrize("name", ["ieee13", "ieee34", "ieee123", "european_lv"])
@pytest.mark.parametrize("tol_pu", [1e-6, 1e-10])
def test_error_estimate_stops_within_the_tolerance_of_the_solution(name, tol_pu):
    """Two days of 15-min load shapes (eight shapes, each load on one; loads from 15 % to
    110 %): the batch stops on the error estimate ``rate / (1 - rate) * step`` (Hairer &
    Wanner 1996, sec. IV.8), yet every node of every scenario is within ``tol_pu`` of a
    1e-13 solve of the same batch; on IEEE 123 at 1e-10 pu the estimate ends most scenarios
    while their update is still above the tolerance (it is exercised)."""
    model = ThreePhaseFeederModel.from_name(name)
    rng = np.random.default_rng(3)
    t_h = np.arange(192)[:, None] * 0.25
    h = (t_h - rng.uniform(-1.0, 1.0, 8)[None, :]) % 24.0
    day = 0.35 + 0.3 * np.exp(-(((h - 8.0) / 2.0) ** 2)) + 0.55 * np.exp(-(((h - 19.0) / 2.5) ** 2))
    shapes = np.clip(day / 1.2 + rng.normal(0.0, 0.03, day.shape), 0.15, 1.1)
    mult = shapes[:, np.arange(model.n_load) % 8]
    tight = model.solve(load_mult=mult, tol_pu=1e-13)
    batch = model.solve(load_mult=mult, tol_pu=tol_pu)
    assert tight.converged.all() and batch.converged.all()
    assert np.abs(batch.v_pu - tight.v_pu).max() <= tol_pu
    if name == "ieee123" and tol_pu == 1e-10:
        assert (batch.max_dv_pu >= tol_pu).mean() > 0.5


def test_reference_residual_is_the_residual_at_the_reference_voltages():
    """Every load model (PQ, Z, I, exponential, pure injection) in every voltage region
    (below vlowpu, between vlowpu and vminpu, in the band, above vmaxpu), wye and delta: the
    residual formed from the currents for 1 VA and 1j VA equals the full residual to 1e-12
    relative."""
    rng = np.random.default_rng(5)
    models = np.array([MODEL_PQ, MODEL_Z, MODEL_I, MODEL_MOTOR, MODEL_CVR, MODEL_PQ_PURE])
    # four wye nodes at 0.4, 0.8, 1.0 and 1.1 pu (vlowpu 0.5, vminpu 0.95, vmaxpu 1.05)
    n_a = 4
    v_ref = 2400.0 * np.array([0.4, 0.8, 1.0, 1.1]) * np.exp(1j * rng.uniform(-3, 3, n_a))
    f = np.tile(np.arange(n_a), models.size + 1)
    t = np.full(f.size, n_a)  # ground
    t[-n_a:] = (f[-n_a:] + 1) % n_a  # and four delta branches of constant PQ
    model = np.append(np.repeat(models, n_a), np.full(n_a, MODEL_PQ))
    nb = model.size
    params = (
        np.full(nb, 2400.0),
        model.astype(np.int64),
        np.full(nb, 0.95),
        np.full(nb, 1.05),
        np.full(nb, 0.5),
        np.full(nb, 0.8),
        np.full(nb, 2.5),
    )
    v_ext = np.append(v_ref, 0j)
    s_ref = (rng.normal(size=nb) + 1j * rng.normal(size=nb)) * 1e4
    jb = branch_jacobian(v_ext[f] - v_ext[t], s_ref, params)
    z = 0.05 * (rng.normal(size=(n_a, n_a)) + 1j * rng.normal(size=(n_a, n_a)))
    chord = chord_map(z + z.T + 2j * np.eye(n_a), v_ref, v_ref, jb, f, t, params)
    s = (rng.normal(size=(5, nb)) + 1j * rng.normal(size=(5, nb))) * 1e4
    rows = np.arange(5)
    full = np.empty((5, n_a), dtype=complex)
    chord_residual_kernel(np.repeat(v_ref[None, :], 5, axis=0), rows, f, t, jb, s, *params, full)
    linear = np.empty_like(full)
    reference_residual_kernel(rows, s, f, t, chord.unit_a, chord.gv_ref_a, linear)
    np.testing.assert_allclose(linear, full, rtol=1e-12, atol=1e-12 * np.abs(full).max())
