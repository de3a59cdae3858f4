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
    root = Path(__file__).resolve().parents[2] / "studies"

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


def test_guide_tables_are_the_declarations():
    """docs/hosting_capacity.md shows the tables rendered from the declarations (criteria,
    scenario keys, stochastic arguments), so the guide and the checks cannot drift apart."""
    import re

    from grids.params import params_markdown
    from studies.hosting_capacity_engine import HC_CRITERIA_PARAMS
    from studies.hosting_capacity_stochastic import STOCHASTIC_PARAMS
    from studies.hosting_capacity_types import HC_SCENARIO_PARAMS

    text = (Path(__file__).resolve().parents[2] / "docs" / "hosting_capacity.md").read_text(
        encoding="utf-8"
    )
    assert params_markdown(HC_CRITERIA_PARAMS, path="criteria") in text
    assert params_markdown(HC_SCENARIO_PARAMS) in text
    assert params_markdown(STOCHASTIC_PARAMS) in text
    words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", text))
    declared = (*HC_CRITERIA_PARAMS, *HC_SCENARIO_PARAMS, *STOCHASTIC_PARAMS)
    assert [p.name for p in declared if p.name not in words] == []


def test_criteria_ranges_every_problem_at_once():
    """The planner limits' allowed ranges (ANSI C84.1-scale voltage band 0.5..1.5 pu, a
    voltage change in (0, 0.5] pu, loadings above 0 %, hot spot 40..250 degC, ambient
    -50..60 degC): the ends are accepted, values beyond them rejected, all in one list, each
    message naming the key path, the value and the allowed range."""
    from studies.hosting_capacity_engine import HostingCapacityCriteria

    ends = HostingCapacityCriteria(
        v_min_pu=0.5,
        v_max_pu=1.5,
        dv_max_pu=0.5,
        max_line_loading_percent=1e-3,
        max_trafo_loading_percent=np.float64(500.0),
        max_hot_spot_c=250,
        ambient_c=-50,
    )
    assert ends.problems() == []
    bad = HostingCapacityCriteria(
        v_min_pu=0.49,
        v_max_pu=np.nan,
        dv_max_pu=0.0,
        max_line_loading_percent=0,
        max_trafo_loading_percent=np.inf,
        max_hot_spot_c=39.0,
        ambient_c=True,
    )
    assert bad.problems(path="scenario.criteria") == [
        "scenario.criteria.v_min_pu: 0.49 is out of range: expected a number in [0.5, 1.5] [pu]",
        "scenario.criteria.v_max_pu: nan is not a finite number: "
        "expected a number in [0.5, 1.5] [pu]",
        "scenario.criteria.dv_max_pu: 0 is out of range: expected a number in (0, 0.5] [pu]",
        "scenario.criteria.max_line_loading_percent: 0 is out of range: expected a number > 0 [%]",
        "scenario.criteria.max_trafo_loading_percent: inf is not a finite number: "
        "expected a number > 0 [%]",
        "scenario.criteria.max_hot_spot_c: 39 is out of range: expected a number in [40, 250] [°C]",
        "scenario.criteria.ambient_c: True is not a number: expected a number in [-50, 60] [°C]",
    ]
    (order,) = HostingCapacityCriteria(v_min_pu=1.0, v_max_pu=1.0).problems()
    assert order == "criteria.v_min_pu: 1 must be below v_max_pu (1)"


def test_scenario_dictionary_names_where_each_criterion_was_given():
    from grids.errors import ScenarioError
    from studies.hosting_capacity import read_hosting_capacity_scenario

    kwargs, crit = read_hosting_capacity_scenario(
        {"v_max_pu": 1.06, "criteria": {"v_max_pu": 1.2, "cooling": "ONAF"}}
    )
    assert crit["v_max_pu"] == 1.06 and crit["cooling"].value == "ONAF" and kwargs == {}
    with pytest.raises(ScenarioError) as raised:
        read_hosting_capacity_scenario(
            {
                "dv_max_pu": 0.7,
                "criteria": {"max_hot_spot_c": 20, "v_maximum": 1.1},
                "control_settings": {"volt_var": {"bogus": 1}},
            }
        )
    text = str(raised.value)
    assert "scenario.dv_max_pu: 0.7 is out of range: expected a number in (0, 0.5] [pu]" in text
    assert "scenario.criteria.max_hot_spot_c: 20 is out of range" in text
    assert "scenario.criteria.v_maximum: unknown key" in text
    assert "scenario.control_settings.volt_var.bogus" in text


def test_control_settings_are_parsed_once_and_passed_through(monkeypatch):
    """Category A volt-var settings given as parsed settings, as a [fleet.control] table, or
    chosen by the control's own category give the same hosting capacity (the same curve);
    a table in a scenario dictionary is parsed exactly once."""
    from studies.hosting_capacity import (
        HostingCapacityStudy,
        hosting_capacity_metrics,
    )
    from vehicle_models.settings import InverterSettings

    study = HostingCapacityStudy("case33bw")
    run = dict(method="screen", control="volt_var_b")
    by_category = study.run([17], method="screen", control="volt_var_a").table
    parsed = InverterSettings.defaults(voltage_category="A")
    from_settings = study.run([17], control_settings=parsed, **run).table
    from_table = study.run([17], control_settings={"voltage_category": "A"}, **run).table
    assert by_category.hosting_capacity_mw.tolist() == from_settings.hosting_capacity_mw.tolist()
    assert from_table.hosting_capacity_mw.tolist() == from_settings.hosting_capacity_mw.tolist()

    calls = []
    original = InverterSettings.from_dict.__func__

    def counting(cls, *args, **kwargs):
        calls.append(kwargs.get("path"))
        return original(cls, *args, **kwargs)

    monkeypatch.setattr(InverterSettings, "from_dict", classmethod(counting))
    doc = hosting_capacity_metrics(
        {"buses": [17], "control_settings": {"voltage_category": "A"}, **run}
    )
    assert calls == ["scenario.control_settings"]
    # the same study from Python with the parsed settings (run_hosting_capacity_study builds
    # no AC path for method "screen", so its screen is not anchored like ``study``'s)
    direct = run_hosting_capacity_study("case33bw", buses=[17], control_settings=parsed, **run)
    assert calls == ["scenario.control_settings"]
    assert doc["results"] == direct.to_json()["results"]


def test_study_arguments_every_problem_at_once():
    """Bad arguments of the Python entry point are all reported in one error, each with its
    key, its value and what is allowed (the declarations of HC_SCENARIO_PARAMS)."""
    from grids.errors import ScenarioError

    with pytest.raises(ScenarioError) as raised:
        run_hosting_capacity_study(
            "case33bw",
            buses=[17],
            mode="sideways",
            pf=0.05,
            tolerance_mw=0.0,
            screen_margin=1.0,
            samples=0,
            control_settings={"voltage_category": "C"},
        )
    problems = raised.value.problems
    assert problems[0] == "mode: 'sideways' is not one of 'export', 'import'"
    assert "samples: 0 is out of range: expected an integer in [1, 100000]" in problems
    assert "pf: 0.05 must satisfy 0.1 <= |pf| <= 1" in problems
    assert "tolerance_mw: 0 is out of range: expected a number in (0, 1000] [MW]" in problems
    assert "screen_margin: 1 is out of range: expected a number in (0, 1) [-]" in problems
    assert any(p.startswith("control_settings.voltage_category: 'C'") for p in problems)
