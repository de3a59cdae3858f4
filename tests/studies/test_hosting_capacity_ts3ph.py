"""Time-series hosting capacity of three-phase feeders (studies.hosting_capacity_ts3ph).

References:

* IEEE 13 with one load shape on every load (a uniform multiplier per step): the snapshot
  three-phase study (:func:`studies.hosting_capacity_3ph.three_phase_hosting_capacity`, its own
  base case and screen + AC bisection, 0.1 kW) at each step's multiplier alone; the time-series
  answer is the minimum over the steps (percentile 100) or their order statistic, within the
  study's tolerance (1 kW).
* The European LV feeder with its own per-load 1-minute shapes: a brute-force bisection written
  here, one step at a time, with a limit check of its own (phase voltages, VUF, conductor
  loading), minimum over the steps, within 1 kW; and the invariants (answer >= 0; 2 kW above
  it breaks the reported limit at the reported step, 2 kW below it every step holds).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from grids.errors import ScenarioError
from grids.feeder3ph import DSS_DIR, ThreePhaseFeederModel
from grids.opendss_loadshapes import read_load_shapes
from studies import hosting_capacity_ts3ph
from studies.hosting_capacity_3ph import (
    ChargerPhase,
    ThreePhaseCriteria,
    three_phase_hosting_capacity,
)
from studies.hosting_capacity_ts3ph import three_phase_time_series_hosting_capacity

TOL_MW = 0.001
# IEEE 13 at nominal load breaks ANSI range A at the regulator output and overloads its default
# line ratings (see test_hosting_capacity_3ph.py): a wider band and loading limit
CRITERIA_13 = ThreePhaseCriteria(v_min_pu=0.93, v_max_pu=1.07, max_line_loading_percent=250.0)
SHAPE = np.array([0.35, 0.3, 0.5, 0.8, 0.7, 0.75, 1.0, 0.6])


@pytest.fixture(scope="module")
def ieee13_shaped(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ieee13_shaped")
    master = folder / "Master.dss"
    values = " ".join(f"{x:g}" for x in SHAPE)
    master.write_text(
        f'Redirect "{(DSS_DIR / "ieee13" / "Master.dss").as_posix()}"\n'
        f"New Loadshape.threehourly npts={SHAPE.size} interval=3 mult=[{values}]\n"
        "batchedit load..* yearly=threehourly\n"
        "solve\n"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = ThreePhaseFeederModel.from_dss(master, name="ieee13_shaped")
    shapes = read_load_shapes(model)
    np.testing.assert_array_equal(shapes.p_mult, np.repeat(SHAPE[:, None], model.n_load, axis=1))
    return model, shapes


def _per_step_snapshot(model, bus, phase, mode) -> np.ndarray:
    return np.array(
        [
            three_phase_hosting_capacity(
                model,
                buses=[bus],
                phase=phase,
                mode=mode,
                criteria=CRITERIA_13,
                load_mult=float(m),
                tolerance_mw=1e-4,
            ).rows[0]["hosting_capacity_mw"]
            for m in SHAPE
        ]
    )


@pytest.mark.parametrize(
    ("bus", "phase", "mode"),
    [("675", ChargerPhase.A, "import"), ("611", ChargerPhase.C, "import"),
     ("634", ChargerPhase.ABC, "export")],
)  # fmt: skip
def test_equals_the_worst_step_of_the_snapshot_study(ieee13_shaped, bus, phase, mode):
    model, shapes = ieee13_shaped
    result = three_phase_time_series_hosting_capacity(
        model, shapes, buses=[bus], phase=phase, mode=mode, criteria=CRITERIA_13
    )
    (row,) = result.rows
    per_step = _per_step_snapshot(model, bus, phase, mode)
    assert row["hosting_capacity_mw"] == pytest.approx(per_step.min(), abs=TOL_MW)
    assert row["hosting_capacity_mw"] >= 0 and row["phase"] == phase.value
    # the binding step is one whose own answer is the minimum (within the tolerance)
    k = list(shapes.time.map(lambda t: t.isoformat())).index(row["binding_time"])
    assert per_step[k] <= per_step.min() + TOL_MW
    assert row["first_violation_time"] <= row["binding_time"]
    # the snapshot column is the snapshot study at the base load (every load at its kW)
    base = three_phase_hosting_capacity(
        model, buses=[bus], phase=phase, mode=mode, criteria=CRITERIA_13
    ).rows[0]["hosting_capacity_mw"]
    assert row["snapshot_hosting_capacity_mw"] == pytest.approx(base, abs=TOL_MW)
    assert row["overstatement_mw"] == pytest.approx(
        row["snapshot_hosting_capacity_mw"] - row["hosting_capacity_mw"]
    )


@pytest.mark.parametrize("first_steps", [16, 1])
def test_percentile_is_the_order_statistic_and_monotone(ieee13_shaped, monkeypatch, first_steps):
    """With one step checked first, the active set grows round by round: same answers."""
    monkeypatch.setattr(hosting_capacity_ts3ph, "FIRST_STEPS", first_steps)
    model, shapes = ieee13_shaped
    per_step = np.sort(_per_step_snapshot(model, "675", ChargerPhase.A, "import"))
    n = per_step.size
    answers = []
    for p in (100.0, 75.0, 50.0, 10.0):
        result = three_phase_time_series_hosting_capacity(
            model, shapes, buses=["675"], phase="a", percentile=p, criteria=CRITERIA_13
        )
        (row,) = result.rows
        kk = n - min(n, max(1, math.ceil(p / 100.0 * n - 1e-9)))
        assert row["hosting_capacity_mw"] == pytest.approx(per_step[kk], abs=TOL_MW)
        assert row["n_violating_steps"] >= n - math.ceil(p / 100.0 * n - 1e-9)
        answers.append(row["hosting_capacity_mw"])
    assert answers == sorted(answers)
    assert answers[-1] > answers[0] + 10 * TOL_MW  # the percentile matters on this feeder


EN50160 = ThreePhaseCriteria(v_min_pu=0.90, v_max_pu=1.10)


@pytest.fixture(scope="module")
def european_lv():
    model = ThreePhaseFeederModel.from_name("european_lv")
    # 24 minutes of the evening peak, 1-minute steps (more steps than the study checks first)
    return model, read_load_shapes(model).window("2000-01-01 18:36", 1440)


def _violations_lv(model, mult, bus, phase: ChargerPhase, size_mw) -> list[str | None]:
    """The limit the European LV feeder breaks at each step (rows of ``mult``) with the unit
    of ``size_mw`` (one per step) at ``bus`` (or spread evenly over a list of buses), or None.
    One batched solve, then a check per step."""
    mult = np.atleast_2d(mult)
    size_mw = np.broadcast_to(np.asarray(size_mw, dtype=float), (mult.shape[0],))
    p = np.zeros((mult.shape[0], model.n_node))
    buses = [bus] if isinstance(bus, str) else list(bus)
    for b in buses:
        for ph in phase.phases:
            p[:, model.node_index(b, ph)] = -size_mw / (len(phase.phases) * len(buses))
    res = model.solve(load_mult=mult, p_wye_mw=p, warm_start=False)
    keep = model.node_bus != model.source_bus
    out = []
    for k in range(mult.shape[0]):
        vm = res.vm_pu[k, keep]
        if not res.converged[k]:
            out.append("not_converged")
        elif vm.min() < EN50160.v_min_pu:
            out.append("undervoltage")
        elif vm.max() > EN50160.v_max_pu:
            out.append("overvoltage")
        elif np.nanmax(res.vuf_percent[k]) > EN50160.vuf_max_percent:
            out.append("voltage_unbalance")
        elif np.nanmax(res.line_loading_percent[k]) > EN50160.max_line_loading_percent:
            out.append("line_loading")
        else:
            out.append(None)
    return out


@pytest.mark.parametrize(("bus", "phase"), [("906", ChargerPhase.A), ("34", ChargerPhase.ABC)])
def test_european_lv_equals_brute_force_per_step(european_lv, bus, phase):
    model, shapes = european_lv
    result = three_phase_time_series_hosting_capacity(
        model, shapes, buses=[bus], phase=phase, criteria=EN50160
    )
    assert result.base_case_violations == []
    (row,) = result.rows
    mult = shapes.p_mult
    assert _violations_lv(model, mult, bus, phase, 0.0) == [None] * shapes.n_steps
    # bisection of every step alone (the steps side by side in one solve, each its own size)
    lo, hi = np.zeros(shapes.n_steps), np.full(shapes.n_steps, 0.5)
    while (hi - lo).max() > 1e-4:
        mid = 0.5 * (lo + hi)
        ok = np.array([v is None for v in _violations_lv(model, mult, bus, phase, mid)])
        lo, hi = np.where(ok, mid, lo), np.where(ok, hi, mid)
    hc = row["hosting_capacity_mw"]
    assert hc == pytest.approx(lo.min(), abs=TOL_MW)
    # invariants: 2 kW below holds everywhere, 2 kW above breaks the limit named at its step
    assert hc >= 0
    assert _violations_lv(model, mult, bus, phase, hc - 2 * TOL_MW) == [None] * shapes.n_steps
    k = list(shapes.time.map(lambda t: t.isoformat())).index(row["binding_time"])
    assert _violations_lv(model, mult[k], bus, phase, hc + 2 * TOL_MW) == [row["binding"]]
    assert row["element"]


def test_simultaneous_equals_brute_force_per_step(european_lv):
    """One size spread over two houses at once: a brute-force bisection of every step."""
    model, shapes = european_lv
    buses = ["906", "615"]
    result = three_phase_time_series_hosting_capacity(
        model, shapes, buses=buses, phase="a", criteria=EN50160, simultaneous=True
    )
    s = result.simultaneous
    lo, hi = np.zeros(shapes.n_steps), np.full(shapes.n_steps, 0.5)
    while (hi - lo).max() > 1e-4:
        mid = 0.5 * (lo + hi)
        ok = np.array(
            [v is None for v in _violations_lv(model, shapes.p_mult, buses, ChargerPhase.A, mid)]
        )
        lo, hi = np.where(ok, mid, lo), np.where(ok, hi, mid)
    assert s["bus"] == "all" and s["hosting_capacity_mw"] == pytest.approx(lo.min(), abs=TOL_MW)
    per_bus = [r["hosting_capacity_mw"] for r in result.rows]
    assert s["sum_time_series_mw"] == pytest.approx(sum(per_bus))
    # the planner's sum of per-bus answers overstates what the houses take together
    assert s["hosting_capacity_mw"] < sum(per_bus)
    table = result.comparison_table()
    assert table["bus"].iloc[-1] == "all (simultaneous)"


def test_json_rows_and_base_series(european_lv):
    model, shapes = european_lv
    result = three_phase_time_series_hosting_capacity(
        model, shapes, buses=["906", "34"], phase="b", mode="export", criteria=EN50160
    )
    doc = result.to_json()
    assert doc["n_steps"] == 24 and doc["phase"] == "b" and doc["step_s"] == 60.0
    for row in doc["results"]:
        for key in ("bus", "hosting_capacity_mw", "binding", "phase", "element",
                    "first_violation_time", "snapshot_hosting_capacity_mw",
                    "overstatement_percent"):  # fmt: skip
            assert key in row
    assert [r["bus"] for r in doc["results"]] == ["906", "34"]
    assert result.vm_min_pu.shape == (24,) and (result.vm_min_pu <= result.vm_max_pu).all()
    assert result.vm_min_bus_pu.shape == (24, len(result.bus_names))
    assert np.nanmin(result.vm_min_bus_pu, axis=1) == pytest.approx(result.vm_min_pu)


def test_bad_inputs_are_named(ieee13_shaped, european_lv, tmp_path):
    model, shapes = ieee13_shaped
    with pytest.raises(ScenarioError, match="percentile"):
        three_phase_time_series_hosting_capacity(model, shapes, buses=["675"], percentile=0.0)
    with pytest.raises(ScenarioError, match="not the feeder's"):
        three_phase_time_series_hosting_capacity(model, european_lv[1], buses=["675"])
    with pytest.raises(ScenarioError, match=r"bus '611': has phase\(s\) c, not a"):
        three_phase_time_series_hosting_capacity(model, shapes, buses=["611"], phase="a")


def test_regional_runs_an_opendss_feeder_over_its_load_shapes(ieee13_shaped):
    """A .dss feeder in a regional time-series run: its rows are the study's (a balanced
    three-phase unit per bus, like the regional snapshot study of .dss feeders)."""
    import json

    from studies.regional import RegionalOptions, RegionalStudy, run_feeder

    model, shapes = ieee13_shaped
    options = RegionalOptions(
        study=RegionalStudy.TIME_SERIES_HOSTING_CAPACITY,
        mode="import",
        start="2000-01-01T06:00",
        duration_s=4 * 3 * 3600.0,
    )
    row = run_feeder(str(model.circuit.path), options.to_json())
    assert row["status"] == "ok", row["error"]
    rows = json.loads(row["rows"])
    direct = three_phase_time_series_hosting_capacity(
        model, shapes.window("2000-01-01T06:00", 12 * 3600.0), phase="abc", mode="import"
    ).rows
    assert [r["bus"] for r in rows] == [r["bus"] for r in direct]
    assert [r["hosting_capacity_mw"] for r in rows] == [r["hosting_capacity_mw"] for r in direct]
    assert {r["phase"] for r in rows} == {"abc"}


def test_qmult_shapes_equal_snapshots_of_the_edited_loads(tmp_path):
    """A QMult different from PMult scales the load's kvar apart: the time-series answer equals
    the worst of snapshot studies on copies of the feeder with that load's kW and kvar written
    as each step sets them (the other loads follow no shape)."""
    base = (DSS_DIR / "ieee13" / "Master.dss").as_posix()
    p_mult, q_mult = [0.5, 1.0, 0.2], [1.0, 0.4, 1.6]
    master = tmp_path / "Master.dss"
    master.write_text(
        f'Redirect "{base}"\n'
        f"New Loadshape.pq npts=3 interval=1 mult={list(p_mult)} qmult={list(q_mult)}\n"
        "edit load.675a yearly=pq\nsolve\n"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = ThreePhaseFeederModel.from_dss(master, name="ieee13_pq")
    shapes = read_load_shapes(model)
    j = [n.lower() for n in model.load_names].index("675a")
    assert not np.allclose(shapes.q_mult[:, j], shapes.p_mult[:, j])
    result = three_phase_time_series_hosting_capacity(
        model, shapes, buses=["675"], phase="a", criteria=CRITERIA_13, tolerance_mw=1e-4
    )
    kw, kvar = float(model.load_p_kw[j]), float(model.load_q_kvar[j])
    per_step = []
    for k, (pm, qm) in enumerate(zip(p_mult, q_mult, strict=True)):
        edited = tmp_path / f"step{k}.dss"
        edited.write_text(
            f'Redirect "{base}"\nedit load.675a kW={kw * pm:.9g} kvar={kvar * qm:.9g}\nsolve\n'
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            step_model = ThreePhaseFeederModel.from_dss(edited, name=f"step{k}")
        snap = three_phase_hosting_capacity(
            step_model, buses=["675"], phase="a", mode="import", criteria=CRITERIA_13,
            tolerance_mw=1e-4,
        )  # fmt: skip
        per_step.append(snap.rows[0]["hosting_capacity_mw"])
    assert result.rows[0]["hosting_capacity_mw"] == pytest.approx(min(per_step), abs=1e-3)
