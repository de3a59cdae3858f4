"""Per-bus, per-phase hosting capacity of three-phase feeders (studies.hosting_capacity_3ph).

Reference: a brute-force AC bisection written here, one bus at a time with the three-phase
engine and the per-phase limit functions of ``grids.limits`` (phase voltages, VUF, conductor
and transformer winding loading), from [0, 2 MW] to 0.1 kW. The two-tier study (linear
screen + batched AC confirmation) must agree with it within the study's tolerance (1 kW) at
sampled buses, and the binding limit must hold at the reported size and break 1 kW above it.
"""

from __future__ import annotations

import numpy as np
import pytest

from grids.errors import ScenarioError
from grids.feeder3ph import ThreePhaseFeederModel
from grids.limits import Limit, phase_loading_violation, unbalance_violation
from studies.hosting_capacity_3ph import (
    ChargerPhase,
    ThreePhaseCriteria,
    three_phase_hosting_capacity,
)

# IEEE 13 at nominal load breaks ANSI range A at the regulator output, overloads its 400 A
# default line ratings and loads XFM1 to 107 % of its normal rating (110 % of 500 kVA):
# wider limits give a base case inside every limit (XFM1 then binds at 634)
CRITERIA = ThreePhaseCriteria(
    v_min_pu=0.93,
    v_max_pu=1.07,
    max_line_loading_percent=250.0,
    max_trafo_loading_percent=150.0,
)
TOL_MW = 0.001


@pytest.fixture(scope="module")
def ieee13():
    return ThreePhaseFeederModel.from_name("ieee13")


def _feasible(model, bus: str, phase: ChargerPhase, size_mw: float) -> bool:
    p = np.zeros(model.n_node)
    for ph in phase.phases:
        p[model.node_index(bus, ph)] = -size_mw / len(phase.phases)
    res = model.solve(p_wye_mw=p, warm_start=False)
    if not res.converged[0]:
        return False
    keep = model.node_bus != model.source_bus
    vm = res.vm_pu[0, keep]
    band_ok = CRITERIA.v_min_pu <= vm.min() and vm.max() <= CRITERIA.v_max_pu
    vuf_ok = unbalance_violation(res.vuf_percent[0], bus_names=list(res.bus3)) is None
    loading_ok = all(
        phase_loading_violation(
            loading[0],
            line_names=[c.rpartition(".")[0] for c in conductors],
            line_phase=["abc".index(c.rpartition(".")[2]) + 1 for c in conductors],
            limit_percent=limit,
            limit=kind,
        )
        is None
        for loading, conductors, limit, kind in (
            (res.line_loading_percent, res.line_conductor, CRITERIA.max_line_loading_percent,
             Limit.LINE_LOADING),
            (res.trafo_loading_percent, res.trafo_conductor, CRITERIA.max_trafo_loading_percent,
             Limit.TRANSFORMER_LOADING),
        )
    )  # fmt: skip
    return band_ok and vuf_ok and loading_ok


def _brute_force(model, bus: str, phase: ChargerPhase) -> float:
    lo, hi = 0.0, 2.0
    assert _feasible(model, bus, phase, lo) and not _feasible(model, bus, phase, hi)
    while hi - lo > 1e-4:
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if _feasible(model, bus, phase, mid) else (lo, mid)
    return lo


SAMPLES = [("675", ChargerPhase.A), ("611", ChargerPhase.C), ("634", ChargerPhase.ABC)]


@pytest.mark.parametrize(("bus", "phase"), SAMPLES)
def test_two_tier_equals_brute_force_ac(ieee13, bus, phase):
    result = three_phase_hosting_capacity(
        ieee13, buses=[bus], phase=phase, criteria=CRITERIA, tolerance_mw=TOL_MW
    )
    assert result.base_case_violations == []
    (row,) = result.rows
    assert row["bus"] == bus and row["phase"] == phase.value
    reference = _brute_force(ieee13, bus, phase)
    assert row["hosting_capacity_mw"] == pytest.approx(reference, abs=TOL_MW + 1e-4)
    # exact after AC confirmation: feasible at the answer, infeasible a tolerance above it
    assert _feasible(ieee13, bus, phase, row["hosting_capacity_mw"])
    assert not _feasible(ieee13, bus, phase, row["hosting_capacity_mw"] + TOL_MW + 1e-4)
    # the screen is within its bracket's reach of the answer (error reported, not hidden)
    assert row["screen_mw"] == pytest.approx(reference, rel=0.5)


def test_unbalance_binds_where_reported(ieee13):
    result = three_phase_hosting_capacity(
        ieee13, buses=["675", "611"], phase="c", criteria=CRITERIA
    )
    for row in result.rows:
        assert row["binding"] == "voltage_unbalance"
        bus = row["where"].removeprefix("bus ")
        k = ieee13.bus3.index(bus)
        p = np.zeros(ieee13.n_node)
        p[ieee13.node_index(row["bus"], 3)] = -(row["hosting_capacity_mw"] + 2 * TOL_MW)
        over = ieee13.solve(p_wye_mw=p, warm_start=False)
        assert over.vuf_percent[0, k] > CRITERIA.vuf_max_percent
        p[ieee13.node_index(row["bus"], 3)] = -row["hosting_capacity_mw"]
        at = ieee13.solve(p_wye_mw=p, warm_start=False)
        assert at.vuf_percent[0, k] <= CRITERIA.vuf_max_percent


def test_transformer_winding_binds_where_reported(ieee13):
    """Charging at 634, behind XFM1 (500 kVA, at 107 % of its normal rating in the base case;
    limit 150 % here): the transformer binds, its winding-1 loading holds at the answer and
    breaks 2 kW above it."""
    (row,) = three_phase_hosting_capacity(
        ieee13, buses=["634"], phase="abc", criteria=CRITERIA
    ).rows
    assert row["binding"] == "transformer_loading"
    assert row["where"].startswith("transformer xfm1 phase ")
    col = ieee13.trafo_conductor.index(f"xfm1.{row['where'][-1]}")
    for size, holds in ((row["hosting_capacity_mw"], True),
                        (row["hosting_capacity_mw"] + 2 * TOL_MW, False)):  # fmt: skip
        p = np.zeros(ieee13.n_node)
        for ph in (1, 2, 3):
            p[ieee13.node_index("634", ph)] = -size / 3
        res = ieee13.solve(p_wye_mw=p, warm_start=False)
        assert (res.trafo_loading_percent[0, col] <= CRITERIA.max_trafo_loading_percent) == holds


def test_methods_agree_and_screen_alone_is_linear(ieee13):
    buses = ["632", "671", "680"]
    two = three_phase_hosting_capacity(ieee13, buses=buses, phase="b", criteria=CRITERIA)
    ac = three_phase_hosting_capacity(
        ieee13, buses=buses, phase="b", criteria=CRITERIA, method="ac"
    )
    screen = three_phase_hosting_capacity(
        ieee13, buses=buses, phase="b", criteria=CRITERIA, method="screen"
    )
    for r2, ra, rs in zip(two.rows, ac.rows, screen.rows, strict=True):
        assert r2["hosting_capacity_mw"] == pytest.approx(ra["hosting_capacity_mw"], abs=TOL_MW)
        assert r2["binding"] == ra["binding"]
        assert rs["hosting_capacity_mw"] == rs["screen_mw"] == r2["screen_mw"]
    assert screen.ac_solves == 0 and two.ac_solves < ac.ac_solves


def test_export_raises_voltage_and_base_case_rule(ieee13):
    # ANSI range A: the regulator output is above 1.05 pu in the base case; it is not held
    # against a unit unless the unit makes it worse
    result = three_phase_hosting_capacity(
        ieee13,
        buses=["675"],
        phase="a",
        mode="export",
        criteria=ThreePhaseCriteria(max_line_loading_percent=250.0),
    )
    # named as written in the file (OpenDSS itself reports "rg60")
    assert any("above v_max_pu 1.05: bus RG60 phase c" in t for t in result.base_case_violations)
    (row,) = result.rows
    assert row["binding"] in {"overvoltage", "base_case", "voltage_unbalance"}
    assert row["hosting_capacity_mw"] > 0


def test_bus_names_as_written_in_the_file(ieee13):
    result = three_phase_hosting_capacity(ieee13, buses=["rg60"], phase="abc", criteria=CRITERIA)
    assert result.rows[0]["bus"] == "RG60"


def test_bad_arguments_are_named(ieee13):
    with pytest.raises(ScenarioError, match="phase"):
        three_phase_hosting_capacity(ieee13, phase="d")
    with pytest.raises(ScenarioError, match=r"bus '611': has phase\(s\) c, not a"):
        three_phase_hosting_capacity(ieee13, buses=["611"], phase="a")
    with pytest.raises(ScenarioError, match="bus 'nowhere': not a bus of ieee13"):
        three_phase_hosting_capacity(ieee13, buses=["nowhere"], phase="a")
    with pytest.raises(ScenarioError, match="vuf_max_percent"):
        three_phase_hosting_capacity(
            ieee13, buses=["675"], criteria=ThreePhaseCriteria(vuf_max_percent=-1.0)
        )
    with pytest.raises(ScenarioError, match="tolerance_mw"):
        three_phase_hosting_capacity(ieee13, buses=["675"], tolerance_mw=0.0)


def test_european_lv_sample_equals_brute_force():
    """A house at the end of the European LV feeder, EN 50160 band: VUF binds (2 %)."""
    model = ThreePhaseFeederModel.from_name("european_lv")
    criteria = ThreePhaseCriteria(v_min_pu=0.90, v_max_pu=1.10)
    result = three_phase_hosting_capacity(model, buses=["906"], phase="a", criteria=criteria)
    (row,) = result.rows
    assert row["binding"] == "voltage_unbalance" and row["where"] == "bus 906"
    k = model.node_index("906", 1)

    keep = model.node_bus != model.source_bus

    def feasible(size_mw: float) -> bool:
        p = np.zeros(model.n_node)
        p[k] = -size_mw
        res = model.solve(p_wye_mw=p, warm_start=False)
        vm = res.vm_pu[0, keep]
        return bool(
            res.converged[0]
            and vm.min() >= 0.9
            and vm.max() <= 1.1
            and np.nanmax(res.vuf_percent[0]) <= 2.0
            and np.nanmax(res.line_loading_percent[0]) <= 100.0
        )

    lo, hi = 0.0, 0.1
    while hi - lo > 1e-4:
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if feasible(mid) else (lo, mid)
    assert row["hosting_capacity_mw"] == pytest.approx(lo, abs=TOL_MW + 1e-4)
