"""Hosting capacity: base-case violations by named limit, missing ratings said as such, and
the shared types below both study modules (no import circle).

Reference: pandapower ``runpp`` on the same prepared net (the lowest bus voltage, to 1e-6 pu,
the fast AC path's agreement with runpp); ANSI C84.1 range A/B low limits 0.95 / 0.917 pu.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pandapower as pp
import pytest

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
