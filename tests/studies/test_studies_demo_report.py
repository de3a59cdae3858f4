"""The demo report puts the run's broken limits at the top (issue 12 §4): given as a list of
Violation objects or dicts, or, without one, the ANSI C84.1 ranges checked on the recorded bus
voltages (reference: the limits' definition, 0.95 pu range A, against the recorded minimum)."""

from __future__ import annotations

import pytest

from cosim.commands.demo import demo_scenario_path
from cosim.scenario import load_scenario
from cosim.world import run_scenario
from grids.limits import Limit, Violation
from studies.demo_report import demo_report


@pytest.fixture(scope="module")
def short_demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    scenario = load_scenario(
        demo_scenario_path(),
        overrides={
            "simulation.duration_s": 7200.0,
            "simulation.window_s": [1.0, 4.0],
            "fleet.n_vehicles": 30,
            "events.0.t_s": 3600.0,
            "feeder.load_scale": 1.6,  # pull the far end below 0.95 pu
        },
    )
    return run_scenario(scenario, out, progress=False), out


def test_demo_report_shows_the_range_a_violation_first(short_demo):
    result, out = short_demo
    path = demo_report(result.results_path, out, metrics=result.metrics)
    html = path.read_text()
    assert result.metrics["min_vm_pu"] < 0.95
    limits = html.index("<h2>Limits</h2>")
    assert limits < html.index("Key numbers")
    assert "ANSI C84.1 range A (low)" in html[limits:]
    assert f"{result.metrics['min_vm_pu']:.4g} pu" in html
    # case33bw lines carry pandapower's 99999 kA placeholder: loading unchecked, said so
    if "max_line_loading_percent" in result.metrics:
        assert "no rating given" in html and "no line ratings: not checked" in html


def test_demo_report_renders_a_given_list_of_violations_and_dicts(short_demo):
    result, out = short_demo
    given = [
        Violation(
            limit=Limit.ANSI_C84_1_RANGE_A_LOW.value,
            element="bus 17",
            quantity="vm_pu",
            worst_value=0.924,
            limit_value=0.95,
            first_time_s=3600.0,
            duration_s=16 * 3600.0,
            n_elements=12,
        ),
        {
            "limit": Limit.IEC_60076_7_HOT_SPOT_CYCLIC.value,
            "element": "transformer",
            "quantity": "hot_spot_c",
            "worst_value": 131.0,
            "limit_value": 120.0,
        },
    ]
    html = demo_report(result.results_path, out, metrics=result.metrics, violations=given)
    text = html.read_text()
    assert "bus 17 at 0.924 pu (limit 0.95 pu), 12 elements" in text and "for 16 h in all" in text
    assert "transformer at 131 °C (limit 120 °C)" in text
    empty = demo_report(result.results_path, out, metrics=result.metrics, violations=[])
    assert "No limit is broken." in empty.read_text()


def test_demo_report_takes_the_runs_own_violations_and_unchecked_limits(short_demo):
    """What the run computed (RunResult.violations / limits_not_checked) is what is shown."""
    result, out = short_demo
    path = demo_report(
        result.results_path,
        out,
        metrics=result.metrics,
        violations=getattr(result, "violations", []),
        limits_not_checked=["line 3: no rating given, loading_percent not checked"],
    )
    text = path.read_text()
    assert "line 3: no rating given, loading_percent not checked" in text
    given = getattr(result, "violations", [])
    limits = [v["limit"] if isinstance(v, dict) else v.limit for v in given]
    assert all(limit in text for limit in limits)
    assert ("ANSI C84.1 range A (low)" in limits) == (result.metrics["min_vm_pu"] < 0.95)
