"""The three-phase feeder model API (``grids.feeder3ph``): shapes, batching, warm start, loads.

References: OpenDSS load models (Load.pas of DSS C-API, as quoted in grids/powerflow3ph.py),
closed forms for the branch currents; batched and single solves must agree to the solver
tolerance (1e-9 pu); the power balance is exact to rounding.
"""

from __future__ import annotations

import numpy as np
import pytest

from grids.errors import FeederError, ScenarioError
from grids.feeder3ph import ThreePhaseFeederModel, open_feeder_model
from grids.powerflow3ph import SMALL_BATCH, branch_currents
from grids.powerflow3ph_kernels import MODEL_I, MODEL_PQ, MODEL_Z


@pytest.fixture(scope="module")
def ieee13():
    return ThreePhaseFeederModel.from_name("ieee13")


def test_model_tables(ieee13):
    m = ieee13
    assert m.source_bus == "sourcebus"
    assert m.n_node == 41 and m.n_load == 15
    assert m.node_index("675", 1) != m.node_index("675", 2)
    assert m.node_bus[m.node_index("646", 3)] == "646"
    assert ("646", 2, 3) in m.delta_pairs and ("671", 3, 1) in m.delta_pairs
    assert "671" in m.bus_xy and len(m.bus_xy["671"]) == 2
    assert m.unsupported == ()
    with pytest.raises(FeederError, match="no phase 1"):
        m.node_index("646", 1)


def test_batch_equals_single_solves(ieee13):
    """The batched path (one matrix product per iteration, Anderson-accelerated; used above
    SMALL_BATCH scenarios) and the compiled per-scenario path reach the same solution."""
    mult = np.linspace(0.3, 1.4, SMALL_BATCH + 4)
    batch = ieee13.solve(load_mult=mult, warm_start=False)
    assert batch.vm_pu.shape == (mult.size, ieee13.n_node) and batch.converged.all()
    for k in (0, 5, mult.size - 1):
        one = ieee13.solve(load_mult=mult[k], warm_start=False)
        np.testing.assert_allclose(one.v_pu[0], batch.v_pu[k], atol=1e-9)


def test_warm_start_saves_iterations(ieee13):
    cold = ieee13.solve(load_mult=0.9, warm_start=False)
    warm = ieee13.solve(load_mult=0.9)
    assert warm.iterations[0] < cold.iterations[0]
    np.testing.assert_allclose(warm.v_pu, cold.v_pu, atol=1e-9)


def test_extra_wye_injection_equals_a_load_change(ieee13):
    """-x MW extra at 675.a is the same as load 675a grown by x MW (a constant-PQ load)."""
    k = ieee13.load_names.index("675a")
    mult = np.ones((1, ieee13.n_load))
    mult[0, k] = (485.0 + 100.0) / 485.0
    grown = ieee13.solve(load_mult=mult, warm_start=False)
    p = np.zeros(ieee13.n_node)
    q = np.zeros(ieee13.n_node)
    p[ieee13.node_index("675", 1)] = -0.1
    q[ieee13.node_index("675", 1)] = -0.1 * 190.0 / 485.0
    extra = ieee13.solve(p_wye_mw=p, q_wye_mvar=q, warm_start=False)
    np.testing.assert_allclose(extra.v_pu, grown.v_pu, atol=1e-9)
    assert extra.p_injection_kw[0] == pytest.approx(-100.0, rel=1e-9)


def test_extra_delta_injection_power_balance(ieee13):
    p = np.zeros((2, len(ieee13.delta_pairs)))
    p[1, ieee13.delta_pairs.index(("646", 2, 3))] = -0.2
    r = ieee13.solve(p_delta_mw=p)
    assert r.converged.all()
    assert r.p_injection_kw[1] == pytest.approx(-200.0, rel=1e-9)
    s_in = r.p_source_kw + r.p_injection_kw
    np.testing.assert_allclose(s_in, r.losses_kw + r.load_p_kw.sum(axis=1), rtol=1e-7)
    assert r.vm_pu[1, ieee13.node_index("646", 2)] < r.vm_pu[0, ieee13.node_index("646", 2)]


def test_bad_inputs_are_scenario_errors(ieee13):
    with pytest.raises(ScenarioError, match="load_mult"):
        ieee13.solve(load_mult=np.ones((2, 3)))
    with pytest.raises(ScenarioError, match="p_wye_mw"):
        ieee13.solve(p_wye_mw=np.ones(5))
    with pytest.raises(ScenarioError, match="NaN"):
        ieee13.solve(p_wye_mw=np.full(ieee13.n_node, np.nan))
    with pytest.raises(ScenarioError, match="scenarios"):
        ieee13.solve(load_mult=np.ones(3), p_wye_mw=np.zeros((2, ieee13.n_node)))


def test_non_convergence_is_flagged_not_raised(ieee13):
    r = ieee13.solve(load_mult=1.0, max_iter=2, warm_start=False)
    assert not r.converged[0]
    with pytest.raises(Exception, match="did not converge"):
        r.raise_if_failed(label="ieee13")


def test_branch_current_models_closed_forms():
    vb = 2400.0
    s = np.array([[1000.0 + 500.0j] * 3])
    kw = {
        "v_base_v": np.full(3, vb),
        "model": np.array([MODEL_PQ, MODEL_Z, MODEL_I]),
        "vminpu": np.full(3, 0.95),
        "vmaxpu": np.full(3, 1.05),
        "vlowpu": np.full(3, 0.5),
    }
    v = np.full((1, 3), 0.98 * vb * np.exp(0.3j))
    i = branch_currents(v, s, **kw)
    assert i[0, 0] == pytest.approx(np.conj(s[0, 0] / v[0, 0]))
    assert i[0, 1] == pytest.approx(np.conj(s[0, 1]) / vb**2 * v[0, 1])
    assert abs(i[0, 2]) == pytest.approx(abs(s[0, 2]) / vb)
    # below vminpu: the PQ load draws the nominal power scaled as an impedance at 0.95
    v_lo = np.full((1, 3), 0.95 * vb + 0j)
    i_lo = branch_currents(v_lo, s, **kw)
    assert v_lo[0, 0] * np.conj(i_lo[0, 0]) == pytest.approx(s[0, 0])
    v_hi = np.full((1, 3), 1.1 * vb + 0j)
    i_hi = branch_currents(v_hi, s, **kw)
    assert v_hi[0, 0] * np.conj(i_hi[0, 0]) == pytest.approx(s[0, 0] * (1.1 / 1.05) ** 2)
    # constant |I| above vmaxpu: impedance matching at vmaxpu -> power ~ V^2 / vmax
    assert v_hi[0, 2] * np.conj(i_hi[0, 2]) == pytest.approx(s[0, 2] * 1.1**2 / 1.05)
    # at vlowpu the interpolation meets the nominal admittance
    v_low = np.full((1, 3), 0.5 * vb + 0j)
    i_low = branch_currents(v_low, s, **kw)
    assert i_low[0, 0] == pytest.approx(np.conj(s[0, 0]) / vb**2 * v_low[0, 0])


def test_open_feeder_model_dispatch(tmp_path):
    assert isinstance(open_feeder_model("ieee13"), ThreePhaseFeederModel)
    with pytest.raises(FeederError, match="not found"):
        open_feeder_model(tmp_path / "missing.dss")
    with pytest.raises(FeederError, match="balanced feeders only"):
        open_feeder_model("ieee13", substation_rating_mva=5.0)


def test_bad_file_names_file_and_reason(tmp_path):
    bad = tmp_path / "bad.dss"
    bad.write_text("New Circuit.x basekv=12.47\nNew Line.l1 bus1=sourcebus bus2=b2 linecode=nope\n")
    with pytest.raises(FeederError, match=r"bad\.dss") as info:
        ThreePhaseFeederModel.from_dss(bad)
    assert "nope" in str(info.value).lower() or "linecode" in str(info.value).lower()


def test_balanced_model_refuses_dss_with_a_feeder_error():
    from grids.feeder_model import FeederModel

    with pytest.raises(FeederError, match="three-phase"):
        FeederModel.from_name("grids/dss/ieee13/Master.dss")


def test_more_bad_inputs_are_listed(ieee13):
    with pytest.raises(ScenarioError, match="negative"):
        ieee13.solve(load_mult=-0.5)
    with pytest.raises(ScenarioError) as info:
        ieee13.solve(tol_pu=0.0, max_iter=0)
    assert "tol_pu" in str(info.value) and "max_iter" in str(info.value)
    with pytest.raises(ScenarioError, match="load_mult"):
        ieee13.solve(load_mult="lots")
    with pytest.raises(FeederError) as info:
        ieee13.node_indices(["675", "646", "nowhere"], [1, 1, 2])
    assert "646" in str(info.value) and "nowhere" in str(info.value)


def test_phase_voltage_records(ieee13):
    result = ieee13.solve()
    records = result.phase_voltages()
    assert len(records) == ieee13.n_node  # IEEE 13 has phase nodes only
    first = records[ieee13.node_index("675", 3)]
    assert first["bus"] == "675" and first["phase"] == "c"
    assert first["vm_pu"] == pytest.approx(float(result.vm_pu[0, ieee13.node_index("675", 3)]))
    idx = ieee13.node_indices(["675", "646"], [3, 2])
    assert list(idx) == [ieee13.node_index("675", 3), ieee13.node_index("646", 2)]


def test_floating_network_is_a_feeder_error():
    import scipy.sparse as sp

    from grids.powerflow3ph import ZBusSolver

    floating = sp.csc_matrix(np.array([[1.0, -1.0], [-1.0, 1.0]], dtype=complex))
    with pytest.raises(FeederError, match="singular"):
        ZBusSolver(floating, np.zeros(2, dtype=complex), np.ones(2))


def test_voltages_at_some_nodes_equal_the_full_array(ieee13):
    """A few nodes (impedance columns) equal the full array (sparse triangular solves of
    the same network equations) to the round-off of an ill-conditioned Y: IEEE 13's
    regulators and source give cond(Y) ~ 2e8, so two summation orders differ by up to
    ~2e-10 pu (measured); far below the solve's own tolerance of 1e-10 pu on the update."""
    mult = np.linspace(0.5, 1.2, SMALL_BATCH + 2)
    nodes = ieee13.node_indices(["675", "611", "634"], [1, 3, 2])
    result = ieee13.solve(load_mult=mult)
    some = result.vm_at_pu(nodes)  # before the full array exists
    assert "vm_pu" not in result.__dict__
    np.testing.assert_allclose(some, result.vm_pu[:, nodes], rtol=1e-9)
    np.testing.assert_allclose(result.vm_at_pu(nodes), some, rtol=1e-9)


def test_zero_load_gives_the_no_load_voltages(ieee13):
    """With every load at 0 the solution is V0 = Y^-1 I_s (closed form): the reference is
    solved with six steps of iterative refinement on an extended-precision residual (Higham,
    "Accuracy and Stability of Numerical Algorithms", 2nd ed., ch. 12), since a plain solve
    carries the rounding of the stiff source (1e7 S in ``Y``): ~2e-9 relative with
    SuperLU's default ordering, 6e-10 with the solver's."""
    import scipy.sparse.linalg as spla

    result = ieee13.solve(load_mult=0.0, warm_start=False)
    circuit = ieee13.circuit
    y = (circuit.y_network + circuit.y_source).tocsc()
    coo = y.tocoo()
    lu = spla.splu(y)
    v0 = lu.solve(circuit.i_source_a).astype(np.clongdouble)
    for _ in range(6):
        residual = circuit.i_source_a.astype(np.clongdouble)
        np.subtract.at(residual, coo.row, coo.data.astype(np.clongdouble) * v0[coo.col])
        v0 = v0 + lu.solve(residual.astype(complex))
    v0 = v0.astype(complex)
    v0_model = ieee13.circuit_node_to_model(np.arange(circuit.n_node))
    expected = np.empty(ieee13.n_node, dtype=complex)
    expected[v0_model] = v0
    np.testing.assert_allclose(result.v_v[0], expected, rtol=1e-9)
    assert result.load_p_kw[0].sum() == pytest.approx(0.0, abs=1e-9)
