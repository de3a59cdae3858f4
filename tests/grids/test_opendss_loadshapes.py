"""OpenDSS load shapes as per-load multipliers (grids.opendss_loadshapes).

Reference: OpenDSS itself (opendssdirect, the same files) in its own quasi-static runs
(``Set Mode=Yearly`` / ``Daily``, one step per solve, regulators and capacitor controls held
at the file's state): the engine solved with the multipliers gives the same phase voltages
(``Circuit.AllBusMagPu``) at sampled steps within 1e-6 pu, and OpenDSS's constant-power loads
draw exactly ``kW * p_mult`` and ``kvar * q_mult``.
"""

from __future__ import annotations

import warnings

import numpy as np
import opendssdirect as dss
import pytest

from grids.errors import FeederError, ScenarioError
from grids.feeder3ph import DSS_DIR, ThreePhaseFeederModel
from grids.opendss_loadshapes import ShapeMode, read_load_shapes

TOL_PU = 1e-6
HOURS = np.arange(24)
# rounded as written into the file
DAY = np.round(0.6 + 0.4 * np.sin(2 * np.pi * (HOURS - 6) / 24), 6)
Q_DAY = np.round(0.5 + 0.3 * np.cos(2 * np.pi * HOURS / 24), 6)
ACTUAL_KW = np.round(100 + 150 * np.sin(np.pi * HOURS / 24), 6)
ACTUAL_KVAR = 30.0 + HOURS
YEAR = np.round(np.r_[DAY, DAY[::-1] * 1.5], 6)


def _arr(values) -> str:
    return "[" + " ".join(f"{x:.6f}" for x in values) + "]"


def write_ieee13_with_shapes(folder, *, qmult: bool = True, extra: str = "") -> str:
    """IEEE 13 (the embedded files) with hourly shapes: a daily one on every load, a 48-h
    yearly one on load 671, an actual-kW shape on 634a, a QMult shape on 675c, load 645
    fixed and load 652 with a yearly shape only (no daily)."""
    master = folder / "Master.dss"
    qs = "qmult=" + _arr(ACTUAL_KVAR) if qmult else ""
    master.write_text(
        f'Redirect "{(DSS_DIR / "ieee13" / "Master.dss").as_posix()}"\n'
        f"New Loadshape.day npts=24 interval=1 mult={_arr(DAY)}\n"
        f"New Loadshape.dayq npts=24 interval=1 mult={_arr(DAY)} qmult={_arr(Q_DAY)}\n"
        f"New Loadshape.act npts=24 interval=1 mult={_arr(ACTUAL_KW)} {qs} useactual=yes\n"
        f"New Loadshape.yr npts=48 interval=1 mult={_arr(YEAR)}\n"
        "batchedit load..* daily=day\n"
        "edit load.671 yearly=yr\n"
        "edit load.634a yearly=act\n"
        + ("edit load.675c yearly=dayq\n" if qmult else "")
        + "edit load.645 status=fixed\n"
        "New Load.yearonly Bus1=652.1 Phases=1 Conn=Wye Model=1 kV=2.4 kW=40 kvar=10 yearly=yr\n"
        f"{extra}solve\n"
    )
    return str(master)


def _model(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ThreePhaseFeederModel.from_name(path)


def _opendss(path, *, mode: str, step: str):
    dss.Text.Command("clear")
    dss.Text.Command(f'compile "{path}"')
    dss.Text.Command("batchedit regcontrol..* enabled=no")
    dss.Text.Command("batchedit capcontrol..* enabled=no")
    dss.Solution.Convergence(1e-10)
    dss.Solution.MaxIterations(500)
    dss.Text.Command("set controlmode=off")
    dss.Text.Command(f"set mode={mode} number=1 stepsize={step}")


def _opendss_vm(model, step_s: float, k: int) -> tuple[np.ndarray, np.ndarray]:
    """|V| [pu] of every node after OpenDSS's (k+1)-th step, and their model nodes."""
    t_s = k * step_s  # the solve advances one step before solving
    dss.Solution.Hour(int(t_s // 3600))
    dss.Solution.Seconds(t_s % 3600)
    dss.Solution.Solve()
    assert dss.Solution.Converged()
    names = dss.Circuit.AllNodeNames()
    idx = model.node_indices(
        [n.split(".")[0] for n in names], [int(n.split(".")[1]) for n in names]
    )
    return np.asarray(dss.Circuit.AllBusMagPu()), idx


@pytest.fixture(scope="module")
def european_lv():
    model = ThreePhaseFeederModel.from_name("european_lv")
    return model, read_load_shapes(model)


def test_european_lv_shapes(european_lv):
    model, shapes = european_lv
    assert shapes.p_mult.shape == (1440, model.n_load) and shapes.step_s == 60.0
    assert shapes.load_names == model.load_names
    np.testing.assert_array_equal(shapes.q_mult, shapes.p_mult)  # no QMult in the file
    # every load follows its own Shape_<n> (LOAD<n> yearly=Shape_<n>), point k+1 on row k
    first = np.loadtxt(DSS_DIR / "european_lv" / "profiles" / "load_profile_1.csv")
    j = [n.lower() for n in model.load_names].index("load1")
    assert shapes.shape_of_load[j] == "shape_1"
    np.testing.assert_allclose(shapes.p_mult[:, j], first)


def test_european_lv_equals_opendss_yearly(european_lv):
    model, shapes = european_lv
    steps = [0, 1, 417, 1100, 1439]
    engine = model.solve(load_mult=shapes.p_mult[steps], tol_pu=1e-12)
    assert engine.converged.all()
    _opendss(model.circuit.path, mode="yearly", step="1m")
    worst, shifted = 0.0, 0.0
    for j, k in enumerate(steps):
        ref, idx = _opendss_vm(model, shapes.step_s, k)
        worst = max(worst, float(np.abs(engine.vm_pu[j, idx] - ref).max()))
        if k + 1 < shapes.n_steps:
            # the neighbouring row is a different step: an off-by-one shows
            other = model.solve(load_mult=shapes.p_mult[k + 1 : k + 2], tol_pu=1e-12)
            shifted = max(shifted, float(np.abs(other.vm_pu[0, idx] - ref).max()))
    assert worst < TOL_PU
    assert shifted > 100 * TOL_PU


def test_opendss_rule_yearly_daily_fixed_actual(tmp_path):
    """Daily shapes repeat in a yearly run, a yearly shape wins over the daily one, Status=Fixed
    ignores shapes, UseActual is kW: voltages equal OpenDSS's yearly run (no QMult here)."""
    path = write_ieee13_with_shapes(tmp_path, qmult=False)
    model = _model(path)
    shapes = read_load_shapes(model)
    assert shapes.n_steps == 48 and shapes.step_s == 3600.0
    col = {n.lower(): j for j, n in enumerate(model.load_names)}
    np.testing.assert_allclose(shapes.p_mult[:, col["634b"]], np.r_[DAY, DAY])
    np.testing.assert_allclose(shapes.p_mult[:, col["671"]], YEAR)
    np.testing.assert_array_equal(shapes.p_mult[:, col["645"]], 1.0)
    assert shapes.shape_of_load[col["645"]] == ""
    np.testing.assert_allclose(
        shapes.p_mult[:, col["634a"]] * model.load_p_kw[col["634a"]], np.r_[ACTUAL_KW, ACTUAL_KW]
    )
    steps = [0, 5, 23, 30, 47]
    engine = model.solve(load_mult=shapes.p_mult[steps], tol_pu=1e-12)
    _opendss(path, mode="yearly", step="1h")
    for j, k in enumerate(steps):
        ref, idx = _opendss_vm(model, shapes.step_s, k)
        assert np.abs(engine.vm_pu[j, idx] - ref).max() < TOL_PU


def test_daily_mode_ignores_yearly_shapes(tmp_path):
    path = write_ieee13_with_shapes(tmp_path, qmult=False)
    model = _model(path)
    shapes = read_load_shapes(model, mode=ShapeMode.DAILY)
    col = {n.lower(): j for j, n in enumerate(model.load_names)}
    assert shapes.n_steps == 24
    np.testing.assert_array_equal(shapes.p_mult[:, col["yearonly"]], 1.0)
    np.testing.assert_allclose(shapes.p_mult[:, col["671"]], DAY)
    steps = [0, 7, 18]
    engine = model.solve(load_mult=shapes.p_mult[steps], tol_pu=1e-12)
    _opendss(path, mode="daily", step="1h")
    for j, k in enumerate(steps):
        ref, idx = _opendss_vm(model, shapes.step_s, k)
        assert np.abs(engine.vm_pu[j, idx] - ref).max() < TOL_PU


def test_qmult_and_actual_kvar_equal_opendss_load_powers(tmp_path):
    """QMult (and an actual-kvar QMult) multiply kvar: OpenDSS's constant-power loads inside
    their voltage band draw kW * p_mult and kvar * q_mult."""
    path = write_ieee13_with_shapes(tmp_path, qmult=True)
    model = _model(path)
    shapes = read_load_shapes(model)
    col = {n.lower(): j for j, n in enumerate(model.load_names)}
    assert not np.allclose(shapes.q_mult[:, col["675c"]], shapes.p_mult[:, col["675c"]])
    _opendss(path, mode="yearly", step="1h")
    checked = 0
    for k in (5, 12, 30):
        dss.Solution.Hour(k)
        dss.Solution.Seconds(0)
        dss.Solution.Solve()
        for name in ("634a", "675c", "634b"):
            dss.Circuit.SetActiveElement(f"load.{name}")
            j = col[name]
            v_base_v = model.kv_base_ln[model.load_nodes[j][0]] * 1000.0
            if not 0.95 < dss.CktElement.VoltagesMagAng()[0] / v_base_v < 1.05:
                continue  # outside the constant-power band (vminpu, vmaxpu)
            powers = dss.CktElement.Powers()
            assert powers[0] == pytest.approx(model.load_p_kw[j] * shapes.p_mult[k, j], abs=1e-6)
            assert powers[1] == pytest.approx(model.load_q_kvar[j] * shapes.q_mult[k, j], abs=1e-6)
            checked += 1
    assert checked >= 6


def test_qmult_shapes_solve_like_opendss_yearly(tmp_path):
    """The engine with ``load_mult_q`` (QMult, an actual-kvar QMult) equals OpenDSS's yearly
    run at sampled steps."""
    path = write_ieee13_with_shapes(tmp_path, qmult=True)
    model = _model(path)
    shapes = read_load_shapes(model)
    assert not np.array_equal(shapes.q_mult, shapes.p_mult)
    steps = [0, 5, 12, 30, 47]
    engine = model.solve(
        load_mult=shapes.p_mult[steps], load_mult_q=shapes.q_mult[steps], tol_pu=1e-12
    )
    _opendss(path, mode="yearly", step="1h")
    for j, k in enumerate(steps):
        ref, idx = _opendss_vm(model, shapes.step_s, k)
        assert np.abs(engine.vm_pu[j, idx] - ref).max() < TOL_PU


def test_no_shape_is_an_error():
    model = ThreePhaseFeederModel.from_name("ieee13")
    with pytest.raises(FeederError, match=r"no load follows a load shape.*New LoadShape"):
        read_load_shapes(model)


def test_daily_mode_on_yearly_only_feeder_says_so(european_lv):
    model, _ = european_lv
    with pytest.raises(FeederError, match="yearly shapes only"):
        read_load_shapes(model, mode="daily")
    with pytest.raises(ScenarioError, match="mode"):
        read_load_shapes(model, mode="weekly")


def test_different_intervals_are_refused(tmp_path):
    extra = f"New Loadshape.quarter npts=96 minterval=15 mult={_arr(np.full(96, 0.5))}\n"
    extra += "edit load.611 yearly=quarter\n"
    path = write_ieee13_with_shapes(tmp_path, qmult=False, extra=extra)
    with pytest.raises(FeederError, match=r"different intervals.*quarter \(900 s\)"):
        read_load_shapes(_model(path))


def test_window(european_lv):
    _, shapes = european_lv
    w = shapes.window("2000-01-01 17:00", 2 * 3600)
    assert w.n_steps == 120 and w.time[0].hour == 17
    np.testing.assert_array_equal(w.p_mult, shapes.p_mult[17 * 60 : 19 * 60])
    for start, duration, text in (
        ("1999-12-31", None, "outside"),
        ("2000-01-01 23:00", 7200, "runs past the end"),
        ("tomorrow-ish", None, "not a date"),
        (None, -5, "duration_s"),
    ):
        with pytest.raises(ScenarioError, match=text):
            shapes.window(start, duration)


def test_shaped_pv_is_refused(tmp_path):
    extra = "New PVSystem.pv1 phases=1 bus1=675.1 kV=2.4 kVA=50 Pmpp=40 irradiance=1 yearly=day\n"
    path = write_ieee13_with_shapes(tmp_path, qmult=False, extra=extra)
    with pytest.raises(FeederError, match=r"PVSystem\.pv1 \(yearly\)"):
        read_load_shapes(_model(path))
