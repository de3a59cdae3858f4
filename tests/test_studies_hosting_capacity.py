"""Hosting capacity: base-case violations by named limit, missing ratings said as such, and
the shared types below both study modules (no import circle).

Reference: pandapower ``runpp`` on the same prepared net (the lowest bus voltage, to 1e-6 pu,
the fast AC path's agreement with runpp); ANSI C84.1 range A/B low limits 0.95 / 0.917 pu.
"""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pandapower as pp
import pytest
from pandapower.toolbox import drop_buses

from grids.powerflow import prepare_net
from studies.hosting_capacity import run_hosting_capacity_study


@pytest.fixture(scope="module")
def case33_doc():
    return run_hosting_capacity_study("case33bw", buses=[17], method="ac").to_json()


def test_base_case_violations_name_ansi_limits_against_runpp(case33_doc):
    net = prepare_net("case33bw")
    pp.runpp(net)
    vm_min = float(net.res_bus.vm_pu.min())
    worst_bus = int(net.res_bus.vm_pu.idxmin())
    by_limit = {v["limit"]: v for v in case33_doc["violations"]}
    low_a = by_limit["ANSI C84.1 range A (low)"]
    assert low_a["worst_value"] == pytest.approx(vm_min, abs=1e-6)
    assert low_a["element"] == f"bus {worst_bus}" and low_a["limit_value"] == 0.95
    assert low_a["n_elements"] == int((net.res_bus.vm_pu < 0.95).sum())
    assert ("ANSI C84.1 range B (low)" in by_limit) == (vm_min < 0.917)


def test_a_feeder_without_line_ratings_says_so(case33_doc):
    """case33bw (MATPOWER data) has no line ratings: pandapower writes 99999 kA; the study
    says the loading is unchecked instead of reporting a loading against it."""
    assert prepare_net("case33bw").line.max_i_ka.min() >= 1e4
    assert case33_doc["missing_ratings"] == [
        "the lines: no rating given, line loading_percent not checked"
    ]
    assert not [v for v in case33_doc["violations"] if v["limit"] == "line loading"]


def test_a_rated_feeder_has_no_missing_rating_note():
    doc = run_hosting_capacity_study("mv_oberrhein", buses=[40], method="screen").to_json()
    assert doc["missing_ratings"] == []


def test_hosting_capacity_modules_do_not_import_each_other_in_a_circle():
    root = Path(__file__).resolve().parents[1] / "studies"

    def imports(name):
        tree = ast.parse((root / f"{name}.py").read_text())
        return {
            node.module
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module
        }

    assert "studies.hosting_capacity" not in imports("hosting_capacity_stochastic")
    assert "studies.hosting_capacity" not in imports("hosting_capacity_types")


def _study_table(feeder, buses, **kwargs):
    from studies.hosting_capacity import HostingCapacityStudy

    study = HostingCapacityStudy(feeder, **kwargs)
    return study, study.run(buses).table.set_index("bus")


def test_an_unrated_line_never_binds_and_is_said_unchecked():
    """Reference: the same feeder with that line's rating a real but huge 9000 kA (below the
    feeder model's NO_RATING_KA placeholder threshold), where the line cannot bind either; the
    hosting capacity must agree to the bisection tolerance (2 x 1 kW, both sides bisected).
    A tiny rating on the same line binds there (the line is checked when it is rated)."""
    from grids.feeder_model import NO_RATING_KA

    buses = [13, 14]
    tight = prepare_net("cigre_mv")
    tight.line.loc[10, "max_i_ka"] = 0.01
    _, table = _study_table(tight, buses)
    assert (table["where"] == "line 10").all()

    huge = prepare_net("cigre_mv")
    huge.line.loc[10, "max_i_ka"] = 0.9 * NO_RATING_KA
    _, reference = _study_table(huge, buses)
    net = prepare_net("cigre_mv")
    net.line.loc[10, "max_i_ka"] = 99999.0  # pandapower's "unlimited" placeholder
    study, table = _study_table(net, buses)
    assert "line 10" not in set(table["where"])
    assert table.hosting_capacity_mw.to_numpy() == pytest.approx(
        reference.hosting_capacity_mw.to_numpy(), abs=2e-3
    )
    flows = study._base_flows()[1]
    assert np.isnan(flows.line_loading_percent[0, list(study.line).index(10)])
    assert study.missing_ratings() == [
        "1 of 15 lines: no rating given, line loading_percent not checked"
    ]
    doc = study.run(buses).to_json()
    assert not [v for v in doc["violations"] if v["element"] == "line 10"]


def test_a_dead_bus_is_not_checked_and_not_a_candidate():
    """A line outage (through the feeder model) cuts bus 6 of cigre_mv off every grid.
    Reference: the same feeder with bus 6 (and its line and load) deleted from the net: the
    other buses' hosting capacity must agree to the bisection tolerance (2 x 1 kW)."""
    from grids.errors import ScenarioError
    from grids.feeder_model import FeederModel
    from studies.hosting_capacity import HostingCapacityStudy

    model = FeederModel.from_net(prepare_net("cigre_mv")).with_outages([4])
    assert model.dead_bus[list(model.bus).index(6)]
    study = HostingCapacityStudy(model)
    assert 6 not in set(study.candidate_buses())
    with pytest.raises(ScenarioError, match=r"bus: 6 of .* connected to no external grid"):
        study.resolve_buses([6])
    buses = [5, 10, 14]
    table = study.run(buses).table.set_index("bus")
    cut = prepare_net("cigre_mv")
    drop_buses(cut, [6])
    _, reference = _study_table(cut, buses)
    assert table.hosting_capacity_mw.to_numpy() == pytest.approx(
        reference.hosting_capacity_mw.to_numpy(), abs=2e-3
    )
    assert set(table.binding) == set(reference.binding)


def test_criteria_cooling_defaults_to_the_thermal_default_and_is_validated():
    from grids.thermal import DEFAULT_COOLING, CoolingMode
    from studies.hosting_capacity_engine import HostingCapacityCriteria

    assert HostingCapacityCriteria().cooling is DEFAULT_COOLING
    assert HostingCapacityCriteria(cooling="ONAF").problems() == []
    assert HostingCapacityCriteria(cooling=CoolingMode.OD).problems() == []
    (message,) = HostingCapacityCriteria(cooling="ONAX").problems()
    assert message.startswith("criteria.cooling: 'ONAX' is not one of 'ONAN', 'ONAF'")
