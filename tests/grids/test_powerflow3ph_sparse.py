"""The sparse three-phase solver (``grids.powerflow3ph_sparse``) against the dense Z-bus path
and OpenDSS.

References: the dense Z-bus solver (``grids.powerflow3ph.ZBusSolver``, itself validated against
OpenDSS in test_feeder3ph_validation.py) solves the same equations; both are solved to
1e-12 pu here and must agree within 1e-9 pu (complex voltages; measured <= 5e-11 pu: both
share the no-load voltages V0, whose own rounding, a few 1e-9 pu where stiff sources put 1e7 S
in Y, is common to both), the loads' power within 1e-8 relative, losses within 1e-5 (a
quadratic form of those 1e7 S admittances: measured 1.5e-6), convergence flags scenario by
scenario. OpenDSS (opendssdirect.py, snapshot, controls off,
convergence 1e-12) on the same file: 1e-6 pu (measured ~1e-8 pu on IEEE 123).
Invariants: power balance (source + injections = loads + losses) on the sparse path.
"""

from __future__ import annotations

import numpy as np
import pytest
from opendss_reference import snapshot_reference

from grids.errors import FeederError
from grids.feeder3ph import ThreePhaseFeederModel
from grids.opendss import Connection
from grids.powerflow3ph import SMALL_BATCH
from grids.powerflow3ph_sparse import (
    DENSE_MEMORY_BUDGET_BYTES,
    ITERATION_COST_RATIO,
    SPARSE_ACTIVE_NODES,
    FullVoltages,
    Solver3ph,
    SparseSolver,
    select_solver,
)

FEEDERS = ["ieee13", "ieee34", "ieee123", "european_lv"]
_MODELS: dict[tuple[str, Solver3ph], ThreePhaseFeederModel] = {}

#: Every load kind: wye 1-phase (models 1-5), 2-phase wye, 2-phase delta (two branches),
#: 1-phase delta, 3-phase delta, 3-phase wye with its own neutral node, a 120/240 V
#: centre-tapped split-phase service with a 240 V charger across the hot legs, a PV system.
MIXED = """Clear
Set DefaultBaseFrequency=60
New Circuit.mixed basekv=12.47 pu=1.03 phases=3 bus1=src MVAsc3=300 MVAsc1=250
New Transformer.SUB phases=3 windings=2 buses=[src mv] conns=[delta wye] kvs=[12.47 4.16]
~ kvas=[5000 5000] xhl=6 %r=0.7
New Line.M1 bus1=mv bus2=m2 phases=3 r1=0.3 x1=0.6 r0=0.6 x0=1.8 length=1 units=km
New Line.M2 bus1=m2.2 bus2=m3.2 phases=1 r1=0.4 x1=0.5 r0=0.4 x0=0.5 length=0.5 units=km
New Line.M3 bus1=m2.1.3 bus2=m4.1.3 phases=2 r1=0.4 x1=0.5 r0=0.8 x0=1.5 length=0.8 units=km
New Line.M5 bus1=m2 bus2=m5.1.2.3.4 phases=3 r1=0.3 x1=0.6 r0=0.6 x0=1.8 length=0.3 units=km
New Reactor.GN bus1=m5.4 phases=1 r=2 x=0.5
New Transformer.CT phases=1 windings=3 buses=[m3.2.0 sec.1.0 sec.0.2] conns=[wye wye wye]
~ kvs=[2.4 0.12 0.12] kvas=[50 50 50] %rs=[0.6 1.2 1.2] xhl=2.04 xht=2.04 xlt=1.36
New Line.TPX bus1=sec.1.2 bus2=house.1.2 phases=2 r1=0.4 x1=0.1 r0=0.4 x0=0.1 length=0.03 units=km
New Load.EV bus1=house.1.2 phases=1 kv=0.24 kw=7.2 pf=1 model=1
New Load.HA bus1=house.1 phases=1 kv=0.12 kw=1.5 kvar=0.5 model=2
New Load.HB bus1=house.2 phases=1 kv=0.12 kw=0.8 kvar=0.2 model=5
New Load.W2 bus1=m4.1.3 phases=2 kv=4.16 kw=300 kvar=120 model=1
New Load.D2 bus1=m2.1.2.3 phases=2 kv=4.16 kw=250 kvar=90 conn=delta model=1
New Load.D1 bus1=m4.1.3 phases=1 kv=4.16 kw=120 kvar=40 conn=delta model=5
New Load.D3 bus1=m2 phases=3 kv=4.16 kw=600 kvar=250 conn=delta model=2
New Load.MOT bus1=m3.2 phases=1 kv=2.4 kw=150 kvar=80 model=3
New Load.CVR bus1=m2.3 phases=1 kv=2.4 kw=200 kvar=70 model=4 cvrwatts=0.8 cvrvars=3
New Load.NEU bus1=m5.1.2.3.4 phases=3 kv=4.16 kw=450 kvar=150 model=1
New PVSystem.PV bus1=m4.1 phases=1 kv=2.4 kVA=100 Pmpp=90 irradiance=0.9 pf=1
Set Voltagebases=[12.47 4.16 0.208]
Calcvoltagebases
Solve
"""


def _model(name: str, solver: Solver3ph) -> ThreePhaseFeederModel:
    key = (name, solver)
    if key not in _MODELS:
        _MODELS[key] = ThreePhaseFeederModel.from_name(name, solver=solver)
    return _MODELS[key]


def _assert_same(dense, sparse, *, atol_pu=1e-9) -> None:
    np.testing.assert_array_equal(sparse.converged, dense.converged)
    np.testing.assert_allclose(sparse.v_pu, dense.v_pu, rtol=0, atol=atol_pu)
    np.testing.assert_allclose(sparse.losses_kw, dense.losses_kw, rtol=1e-5)
    np.testing.assert_allclose(sparse.load_p_kw, dense.load_p_kw, rtol=1e-8, atol=1e-9)
    np.testing.assert_allclose(sparse.load_q_kvar, dense.load_q_kvar, rtol=1e-8, atol=1e-9)
    np.testing.assert_allclose(sparse.p_source_kw, dense.p_source_kw, rtol=1e-8)


@pytest.mark.parametrize("name", FEEDERS)
def test_sparse_equals_dense_batched(name):
    """A batch wider than SMALL_BATCH (the dense path's batched chord iteration) from 30 %
    to 160 % load, IEEE 13 and 34 dropping below their loads' vminpu at the top."""
    dense, sparse = _model(name, Solver3ph.DENSE), _model(name, Solver3ph.SPARSE)
    assert (dense.solver, sparse.solver) == (Solver3ph.DENSE, Solver3ph.SPARSE)
    mult = np.linspace(0.3, 1.6, SMALL_BATCH + 4)
    kw = {"load_mult": mult, "warm_start": False, "tol_pu": 1e-12}
    r_dense, r_sparse = dense.solve(**kw), sparse.solve(**kw)
    assert r_sparse.converged.all()
    _assert_same(r_dense, r_sparse)


@pytest.mark.parametrize("name", FEEDERS)
def test_sparse_equals_dense_single_and_per_load(name):
    dense, sparse = _model(name, Solver3ph.DENSE), _model(name, Solver3ph.SPARSE)
    rng = np.random.default_rng(7)
    mult = rng.uniform(0.2, 1.4, size=(3, dense.n_load))
    kw = {"warm_start": False, "tol_pu": 1e-12}
    _assert_same(dense.solve(load_mult=0.8, **kw), sparse.solve(load_mult=0.8, **kw))
    _assert_same(dense.solve(load_mult=mult, **kw), sparse.solve(load_mult=mult, **kw))


def test_sparse_matches_opendss_on_ieee123():
    model = _model("ieee123", Solver3ph.SPARSE)
    # the feeder's delta and three-phase loads are in the branches the solver sees
    assert {int(p) for p in model.circuit.loads.phases} == {1, 3}
    assert Connection.DELTA in set(model.circuit.loads.conn)
    for load_mult in (1.0, 1.4):
        result = model.solve(load_mult=load_mult, warm_start=False, tol_pu=1e-12)
        v_ref, losses_ref = snapshot_reference(model.circuit.path, model, load_mult=load_mult)
        assert result.converged.all()
        assert np.abs(result.v_pu[0] - v_ref).max() < 1e-6
        assert result.losses_kw[0] == pytest.approx(losses_ref, rel=1e-6)


def test_every_load_kind_matches_dense_and_opendss(tmp_path):
    """Split-phase, 2-phase wye and delta, 1- and 3-phase delta, models 1-5, a load on its
    own grounded neutral, a PV system: sparse == dense (1e-9 pu) == OpenDSS (1e-6 pu)."""
    path = tmp_path / "mixed.dss"
    path.write_text(MIXED)
    sparse = ThreePhaseFeederModel.from_dss(path, solver=Solver3ph.SPARSE)
    dense = ThreePhaseFeederModel.from_dss(path, solver=Solver3ph.DENSE)
    assert sparse.unsupported == ()
    assert sparse.circuit.injections.name == ("pv",)
    kw = {"warm_start": False, "tol_pu": 1e-12}
    mult = np.linspace(0.5, 1.5, SMALL_BATCH + 2)
    _assert_same(dense.solve(load_mult=mult, **kw), sparse.solve(load_mult=mult, **kw))
    result = sparse.solve(**kw)
    v_ref, losses_ref = snapshot_reference(path, sparse)
    assert np.abs(result.v_pu[0] - v_ref).max() < 1e-6
    assert result.losses_kw[0] == pytest.approx(losses_ref, rel=1e-6)
    hot = result.v_v[0, [sparse.node_index("house", 1), sparse.node_index("house", 2)]]
    assert abs(hot[0] - hot[1]) == pytest.approx(240.0, rel=0.08)


def test_extra_injections_sparse_equals_dense():
    dense, sparse = _model("ieee13", Solver3ph.DENSE), _model("ieee13", Solver3ph.SPARSE)
    p = np.zeros((3, dense.n_node))
    p[1, dense.node_index("675", 1)] = -0.15
    p[2, dense.node_index("634", 2)] = 0.05
    pd = np.zeros((3, len(dense.delta_pairs)))
    pd[0, dense.delta_pairs.index(("646", 2, 3))] = -0.2
    kw = {"p_wye_mw": p, "q_wye_mvar": 0.3 * p, "p_delta_mw": pd, "warm_start": False}
    r_dense, r_sparse = dense.solve(tol_pu=1e-12, **kw), sparse.solve(tol_pu=1e-12, **kw)
    _assert_same(r_dense, r_sparse)
    np.testing.assert_allclose(r_sparse.p_injection_kw, r_dense.p_injection_kw, rtol=1e-9)


def test_power_balance_on_the_sparse_path():
    """Source + injections = loads + losses (complex), every scenario of a batch."""
    model = _model("european_lv", Solver3ph.SPARSE)
    r = model.solve(load_mult=np.linspace(0.5, 2.0, 5), warm_start=False)
    s_in = r.p_source_kw + 1j * r.q_source_kvar + r.p_injection_kw + 1j * r.q_injection_kvar
    s_out = r.losses_kw + 1j * r.losses_kvar + (r.load_p_kw + 1j * r.load_q_kvar).sum(axis=1)
    np.testing.assert_allclose(s_in, s_out, rtol=1e-8)


def test_warm_start_saves_iterations_and_gives_the_same_voltages():
    model = _model("ieee123", Solver3ph.SPARSE)
    cold = model.solve(load_mult=0.9, warm_start=False)
    warm = model.solve(load_mult=0.9)
    assert warm.iterations[0] < cold.iterations[0]
    np.testing.assert_allclose(warm.v_pu, cold.v_pu, atol=1e-9)


def test_non_convergence_is_flagged_per_scenario_never_raised():
    """A 300 MW charger on one phase of IEEE 123 has no solution: that scenario is flagged
    (in both paths), its neighbours in the batch converge to the right answer."""
    sparse, dense = _model("ieee123", Solver3ph.SPARSE), _model("ieee123", Solver3ph.DENSE)
    p = np.zeros((SMALL_BATCH + 2, sparse.n_node))
    p[3, sparse.node_index("65", 1)] = -300.0
    with np.errstate(all="raise"):
        r = sparse.solve(p_wye_mw=p, warm_start=False, max_iter=100)
    flags = np.ones(p.shape[0], dtype=bool)
    flags[3] = False
    np.testing.assert_array_equal(r.converged, flags)
    np.testing.assert_array_equal(
        dense.solve(p_wye_mw=p, warm_start=False, max_iter=100).converged, flags
    )
    assert r.iterations[3] == 100 and r.max_dv_pu[3] > 1e-3
    good = sparse.solve(warm_start=False)
    np.testing.assert_allclose(r.v_pu[0], good.v_pu[0], atol=1e-9)
    short = sparse.solve(max_iter=2, warm_start=False)
    assert not short.converged[0] and short.iterations[0] == 2
    with pytest.raises(Exception, match="did not converge"):
        short.raise_if_failed(label="ieee123")


def test_regulator_taps_on_the_sparse_path_match_dense():
    dense = ThreePhaseFeederModel.from_name("ieee13", solver=Solver3ph.DENSE)
    sparse = ThreePhaseFeederModel.from_name("ieee13", solver=Solver3ph.SPARSE)
    taps = {"reg1": 1.0, "reg2": 1.09375, "reg3": 0.95}
    for m in (dense, sparse):
        m.set_regulator_taps(taps)
    assert sparse.solver is Solver3ph.SPARSE
    kw = {"warm_start": False, "tol_pu": 1e-12}
    _assert_same(dense.solve(**kw), sparse.solve(**kw))


def test_selection_rule():
    """AUTO: dense for small feeders, sparse above SPARSE_ACTIVE_NODES load nodes, when
    the dense iteration costs more (nA^2 > ITERATION_COST_RATIO n) or when the dense impedance
    columns would exceed the memory budget; explicit choices are kept."""
    assert select_solver(300, 100) is Solver3ph.DENSE
    assert select_solver(5000, SPARSE_ACTIVE_NODES) is Solver3ph.DENSE
    assert select_solver(5000, SPARSE_ACTIVE_NODES + 1) is Solver3ph.SPARSE
    assert select_solver(1000, 500) is Solver3ph.DENSE  # 500^2 = 250 * 1000
    assert select_solver(999, 500) is Solver3ph.SPARSE
    n_big = DENSE_MEMORY_BUDGET_BYTES // (16 * 500) + 1
    assert ITERATION_COST_RATIO * n_big > 500**2
    assert select_solver(n_big, 500) is Solver3ph.SPARSE
    assert select_solver(n_big - 2, 500) is Solver3ph.DENSE
    assert select_solver(10, 5, Solver3ph.SPARSE) is Solver3ph.SPARSE
    assert select_solver(10**6, 10**5, Solver3ph.DENSE) is Solver3ph.DENSE
    assert select_solver(10, 5, "sparse") is Solver3ph.SPARSE
    with pytest.raises(FeederError, match="solver: 'fast', expected one of auto, dense, sparse"):
        select_solver(10, 5, "fast")
    assert _model("ieee123", Solver3ph.AUTO).solver is Solver3ph.DENSE


def test_full_voltages_methods():
    v = np.array([[1 + 1j, 2.0, 3j], [4.0, 5 - 5j, 6.0]])
    fv = FullVoltages(v)
    np.testing.assert_array_equal(fv.full_v(), v)
    np.testing.assert_array_equal(fv.at_v(np.array([2, 0])), v[:, [2, 0]])
    np.testing.assert_allclose(fv.magnitude_pu(np.array([1.0, 2.0, 3.0])), np.abs(v) / [1, 2, 3])


def test_singular_network_is_a_feeder_error():
    import scipy.sparse as sp

    floating = sp.csc_matrix(np.array([[1.0, -1.0], [-1.0, 1.0]], dtype=complex))
    with pytest.raises(FeederError, match="singular"):
        SparseSolver(floating, np.zeros(2, dtype=complex), np.ones(2))


def test_an_outlier_scenario_does_not_spoil_its_batch():
    """The iteration matrix follows the batch's mean load; scenarios it does not fit are solved
    again with their own load level, so the ordinary ones converge to their own solution
    (dense solves one by one, 1e-9 pu) and the one without a solution is flagged."""
    sparse, dense = _model("ieee123", Solver3ph.SPARSE), _model("ieee123", Solver3ph.DENSE)
    mult = np.array([1.0, 0.5, 1e10, 1.2])
    with np.errstate(all="raise"):
        r = sparse.solve(load_mult=mult, warm_start=False, max_iter=200)
    np.testing.assert_array_equal(r.converged, [True, True, False, True])
    for k in (0, 1, 3):
        one = dense.solve(load_mult=mult[k], warm_start=False)
        np.testing.assert_allclose(r.v_pu[k], one.v_pu[0], rtol=0, atol=1e-9)
    # a constant-power extra has no nominal admittance: a huge one in one scenario leaves the
    # other scenarios' iteration matrix at their load (a few iterations, no retry)
    p = np.zeros((3, sparse.n_node))
    p[2, sparse.node_index("65", 1)] = -1e9
    r = sparse.solve(p_wye_mw=p, warm_start=False, max_iter=100)
    np.testing.assert_array_equal(r.converged, [True, True, False])
    assert r.iterations[:2].max() < 30
