"""Hosting-capacity study: two-tier result vs an independent brute-force reference, brackets,
monotonicity, control-aware gain, stochastic mode, CLI and bad inputs.

Reference: pandapower's own ``runpp`` in a plain bisection (``studies.hosting_capacity_bruteforce``,
a static generator of the trial size added to a copy of the net). The two-tier AC answer must
equal it within the bisection tolerance (1 kW): both bracket the same exact threshold of the
same AC model, each to within 1 kW.
"""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from cosim.cli import main
from grids.errors import ScenarioError
from studies.hosting_capacity import (
    Binding,
    Control,
    HostingCapacityCriteria,
    HostingCapacityStudy,
    Mode,
    hosting_capacity_metrics,
    run_hosting_capacity_study,
)
from studies.hosting_capacity_bruteforce import bruteforce_hosting_capacity
from studies.hosting_capacity_stochastic import run_stochastic

TOL_MW = 0.001


@pytest.fixture(scope="module")
def case33():
    return HostingCapacityStudy("case33bw")


@pytest.fixture(scope="module")
def case33_export(case33):
    return case33.run(mode=Mode.EXPORT)


def _check_against_bruteforce(study, buses, mode, criteria=None):
    result = study.run(buses, mode=mode)
    for row in result.table.itertuples():
        hc_ref, binding_ref, _ = bruteforce_hosting_capacity(
            study.net,
            row.bus,
            export=mode is Mode.EXPORT,
            criteria=criteria,
            tolerance_mw=TOL_MW,
            cap_mw=study.default_cap_mw,
        )
        # Both are within TOL of the same threshold, from the feasible side.
        assert abs(row.hosting_capacity_mw - hc_ref) <= TOL_MW, (row.bus, hc_ref)
        assert row.binding == binding_ref.value, (row.bus, row.binding, binding_ref)
    return result


def test_ac_equals_bruteforce_runpp_case33bw_export(case33):
    result = _check_against_bruteforce(case33, [6, 17, 32], Mode.EXPORT)
    assert set(result.table.binding) == {"overvoltage"}
    assert list(result.table["where"]) == ["bus 6", "bus 17", "bus 32"]


def test_ac_equals_bruteforce_runpp_cigre_mv_export_line_limits():
    study = HostingCapacityStudy("cigre_mv")
    result = _check_against_bruteforce(study, [3, 5, 11], Mode.EXPORT)
    assert set(result.table.binding) == {"line_loading"}


def test_ac_equals_bruteforce_runpp_oberrhein_import_hot_spot():
    """Import on mv_oberrhein is limited by the HV/MV transformer: loading and hot spot."""
    criteria = HostingCapacityCriteria(max_hot_spot_c=95.0)
    study = HostingCapacityStudy("mv_oberrhein", criteria=criteria)
    result = _check_against_bruteforce(study, [100], Mode.IMPORT, criteria)
    assert result.table.binding.iloc[0] == "hot_spot"
    assert result.table["where"].iloc[0].startswith("trafo ")


def test_screen_brackets_ac_on_voltage_limited_feeder(case33_export):
    """Documented bracket: AC within [s (1 - m) - tol, s (1 + m) + tol] (m = 0.25)."""
    t = case33_export.table
    m = case33_export.screen_margin
    lo = t.screen_mw * (1 - m) - TOL_MW
    hi = t.screen_mw * (1 + m) + TOL_MW
    assert ((t.hosting_capacity_mw >= lo) & (t.hosting_capacity_mw <= hi)).all()
    assert t.within_screen_bracket.all()
    # LinDistFlow ignores losses and underestimates the voltage rise's relief: AC >= screen
    assert (t.difference_mw >= -TOL_MW).all()


def test_bracket_failure_is_reported_and_widened():
    """Where the raw screen misses (trafo loading near its limit on mv_oberrhein import), AC
    still finds the exact value and the row says the bracket did not hold; the AC-anchored
    screen (default) brackets it."""
    raw = HostingCapacityStudy("mv_oberrhein", calibrate_screen=False).run([0], mode=Mode.IMPORT)
    row = raw.table.iloc[0]
    assert row.binding == "transformer_loading"
    assert not row.within_screen_bracket
    assert row.hosting_capacity_mw < row.screen_mw * (1 - raw.screen_margin)
    anchored = HostingCapacityStudy("mv_oberrhein").run([0, 100], mode=Mode.IMPORT)
    assert anchored.table.within_screen_bracket.all()
    assert abs(anchored.table.hosting_capacity_mw.iloc[0] - row.hosting_capacity_mw) <= TOL_MW


def test_monotonic_in_v_max(case33_export):
    raised = HostingCapacityStudy("case33bw", criteria=HostingCapacityCriteria(v_max_pu=1.06)).run(
        mode=Mode.EXPORT
    )
    assert (
        raised.table.hosting_capacity_mw >= case33_export.table.hosting_capacity_mw - TOL_MW
    ).all()
    assert (raised.table.hosting_capacity_mw > case33_export.table.hosting_capacity_mw).any()


def test_export_monotonic_in_load(case33_export):
    heavier = HostingCapacityStudy("case33bw", load_scale=1.3).run(mode=Mode.EXPORT)
    assert (
        heavier.table.hosting_capacity_mw >= case33_export.table.hosting_capacity_mw - TOL_MW
    ).all()


def test_control_aware_volt_var_gains_on_voltage_limited_bus(case33):
    unity = case33.run([17], mode=Mode.EXPORT)
    for control in (Control.VOLT_VAR_A, Control.VOLT_VAR_B):
        controlled = case33.run([17], mode=Mode.EXPORT, control=control)
        row = controlled.table.iloc[0]
        assert row.control_converged
        assert row.hosting_capacity_mw >= unity.table.hosting_capacity_mw.iloc[0]
    # Category B absorbs up to 44 % of rating (A: 25 %): strictly more HC than unity PF.
    assert row.hosting_capacity_mw > unity.table.hosting_capacity_mw.iloc[0] * 1.1


def test_fixed_absorbing_pf_matches_bruteforce(case33):
    """pf 0.95 absorbing, bus 17: same as runpp with q = -tan(acos 0.95) p."""
    result = case33.run([17], mode=Mode.EXPORT, pf=0.95)
    hc_ref, _, _ = bruteforce_hosting_capacity(
        case33.net,
        17,
        q_per_p=-np.tan(np.arccos(0.95)),
        cap_mw=case33.default_cap_mw,
    )
    assert abs(result.table.hosting_capacity_mw.iloc[0] - hc_ref) <= TOL_MW


def test_base_case_violation_reported_not_zero_meaningless(case33):
    """case33bw at nominal load is below 0.95 pu at bus 17: import cannot relieve it."""
    result = case33.run([5, 17], mode=Mode.IMPORT)
    assert (result.table.binding == Binding.BASE_CASE.value).all()
    assert (result.table.base_case_criterion == "undervoltage").all()
    assert any("undervoltage at bus 17" in text for text in result.base_case_violations)
    # Export relieves the undervoltage, so it is not blamed for it.
    assert case33.run([17], mode=Mode.EXPORT).table.binding.iloc[0] == "overvoltage"


def test_voltage_change_limit_only_when_given(case33):
    plain = case33.run([17], mode=Mode.EXPORT)
    limited = HostingCapacityStudy(
        "case33bw", criteria=HostingCapacityCriteria(dv_max_pu=0.03)
    ).run([17], mode=Mode.EXPORT)
    assert limited.table.binding.iloc[0] == "voltage_change"
    assert limited.table.hosting_capacity_mw.iloc[0] < plain.table.hosting_capacity_mw.iloc[0]


def test_stochastic_seeded_and_consistent(case33):
    a = run_stochastic(case33, n_samples=60, seed=7)
    b = run_stochastic(case33, n_samples=60, seed=7)
    full = run_stochastic(case33, n_samples=60, seed=7, confirm="all")
    # Same seed, same scenarios and screen; AC values equal up to floating-point noise of the
    # batched solver (summation order depends on the batch composition).
    assert a.table.screen_mw.equals(b.table.screen_mw)
    assert a.table.binding.equals(b.table.binding)
    assert np.allclose(a.table.hosting_capacity_mw, b.table.hosting_capacity_mw, atol=1e-8)
    s = a.summary()
    assert s["p5_mw"] <= s["p50_mw"] <= s["p95_mw"]
    for key in ("p5_mw", "p50_mw", "p95_mw"):
        assert abs(s[key] - full.summary()[key]) <= 2 * TOL_MW
    p = a.curve.violation_probability.to_numpy()
    assert p[0] == 0.0 and p[-1] == 1.0 and np.all(np.diff(p) >= 0)


def test_cli_json_format(capsys):
    code = main(
        ["hosting-capacity", "--feeder", "case33bw", "--bus", "17", "--bus", "32",
         "--samples", "20", "--seed", "1", "--json"]
    )  # fmt: skip
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["feeder"] == "case33bw" and doc["method"] == "screen+ac"
    assert [r["bus"] for r in doc["results"]] == [17, 32]
    for r in doc["results"]:
        assert r["hosting_capacity_mw"] > 0 and r["binding"] == "overvoltage"
        assert r["where"] == f"bus {r['bus']}"
    assert set(doc["distribution"]) >= {"p5_mw", "p50_mw", "p95_mw"}


def test_cli_writes_outputs(tmp_path, capsys):
    out = tmp_path / "hc"
    assert main(["hosting-capacity", "--bus", "17", "--method", "screen", "--out", str(out)]) == 0
    assert (out / "report.html").exists() and (out / "hc_map.png").exists()
    assert (out / "hosting_capacity.parquet").exists()
    assert "bus 17" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--bus", "99"], "bus: 99 is not a bus of case33bw"),
        (["--bus", "0"], "bus: 0 is the slack (external grid) bus of case33bw"),
        (["--v-min-pu", "1.05", "--v-max-pu", "1.0"], "v_min_pu: 1.05 must be below v_max_pu"),
        (
            ["--samples", "-5"],
            "--samples: -5 is out of range: expected an integer in [1, 100000]",
        ),
        (["--pf", "0.05"], "pf: 0.05 must satisfy 0.1 <= |pf| <= 1"),
        (["--mode", "import", "--control", "volt_watt"], "volt_watt curtails export only"),
    ],
)
def test_cli_bad_inputs(argv, message, capsys):
    assert main(["hosting-capacity", *argv]) == 2
    assert message in capsys.readouterr().err


def test_function_bad_inputs():
    with pytest.raises(
        ScenarioError, match=r"samples: -1 is out of range: expected an integer in \[1, 100000\]"
    ):
        run_hosting_capacity_study("case33bw", buses=[17], samples=-1)
    with pytest.raises(ScenarioError, match=r"scenario\.bogus: unknown key"):
        hosting_capacity_metrics({"feeder": "case33bw", "bogus": 1})
    with pytest.raises(
        ScenarioError, match=r"scenario\.mode: 'sideways' is not one of 'export', 'import'"
    ):
        hosting_capacity_metrics({"buses": [17], "mode": "sideways"})
    with pytest.raises(
        ScenarioError,
        match=r"scenario\.v_max_pu: 'high' is not a number: "
        r"expected a number in \[0\.5, 1\.5\] \[pu\]",
    ):
        hosting_capacity_metrics({"buses": [17], "v_max_pu": "high"})
    with pytest.raises(ScenarioError, match=r"scenario\.load_scale: 'big' is not a number"):
        hosting_capacity_metrics({"buses": [17], "load_scale": "big"})
    with pytest.raises(ScenarioError, match="seed: -2 is out of range: expected an integer >= 0"):
        run_hosting_capacity_study("case33bw", buses=[17], samples=10, seed=-2)


def test_metrics_from_scenario_dict():
    doc = hosting_capacity_metrics({"feeder": "case33bw", "buses": [17, 32], "v_max_pu": 1.06})
    assert doc["criteria"]["v_max_pu"] == 1.06
    assert doc["hc_min_mw"] <= doc["hc_median_mw"] <= doc["hc_max_mw"]
    assert doc["binding_counts"] == {"overvoltage": 2}


def test_time_series_is_min_over_steps_of_static_hc(case33):
    """Export HC over a load profile = the static HC at the lightest-load step (case33bw is
    voltage-limited: less load, higher voltage); checked against a static study at that step."""
    profile = np.array([1.0, 0.55, 1.2, 0.8])
    ts = case33.time_series(profile, [17, 32], mode=Mode.EXPORT)
    assert (ts.binding_step == 1).all() and (ts.binding_load_scale == 0.55).all()
    static = HostingCapacityStudy("case33bw", load_scale=0.55).run([17, 32], mode=Mode.EXPORT)
    assert np.allclose(ts.hosting_capacity_mw, static.table.hosting_capacity_mw, atol=TOL_MW)
    with pytest.raises(ScenarioError, match="step 1: nan is not a finite number"):
        case33.time_series([1.0, np.nan], [17])


def test_control_gain_table(case33):
    gain = case33.control_gain([17], mode=Mode.EXPORT)
    by = gain.set_index("setting")
    assert by.loc["unity_pf", "gain_mw"] == 0.0
    assert by.loc["volt_var_b", "gain_mw"] > by.loc["volt_var_a", "gain_mw"] > 0
    assert by.loc["pf_0.95", "gain_mw"] > 0
    # Default volt-watt starts at 1.06 pu, above the 1.05 pu limit: no gain (within tolerance)
    assert abs(by.loc["volt_watt", "gain_mw"]) <= TOL_MW


class _QuadraticFeeder:
    """Synthetic solver with a closed-form threshold: every bus at V = 1 + a P + b P^2 where P
    is the total added injection [MW]; no lines or transformers."""

    name = "synthetic"

    def __init__(self, a=0.01, b=0.001, n_bus=3):
        self.a, self.b = a, b
        self.bus = np.arange(n_bus)
        self.line = np.zeros(0, dtype=int)
        self.trafo = np.zeros(0, dtype=int)
        self.n_solves = 0
        self.n_cases = 0

    def solve(self, p_mw, q_mvar):
        from studies.hosting_capacity_engine import Flows

        self.n_solves += 1
        total = p_mw.sum(axis=1, keepdims=True)
        vm = np.repeat(1.0 + self.a * total + self.b * total**2, len(self.bus), axis=1)
        s = p_mw.shape[0]
        return Flows(vm, np.zeros((s, 0)), np.zeros((s, 0)), np.ones(s, dtype=bool))


@pytest.mark.parametrize(("lower", "upper"), [(3.0, 4.0), (0.5, 1.0), (5.0, 9.0), (0.0, 50.0)])
def test_bracketing_search_finds_closed_form_threshold(lower, upper):
    """V = 1 + 0.01 P + 0.001 P^2 = 1.05  =>  P* = (-0.01 + sqrt(0.0003)) / 0.002 (exact),
    from a good bracket, one entirely below, one entirely above and a wide one."""
    from studies.hosting_capacity_engine import Cases, Injection, Limits, base_of, bisect

    solver = _QuadraticFeeder()
    threshold = (-0.01 + np.sqrt(0.0003)) / 0.002
    direction = np.array([[1.0, 0.0, 0.0]])
    cases = Cases(np.zeros((1, 3)), np.zeros((1, 3)), Injection(direction))
    limits = Limits(HostingCapacityCriteria())
    base = base_of(solver, cases, limits)
    res = bisect(
        solver,
        cases,
        base,
        limits,
        lower_mw=np.array([lower]),
        upper_mw=np.array([upper]),
        tolerance_mw=TOL_MW,
        cap_mw=100.0,
    )
    assert res.hosting_capacity_mw[0] <= threshold < res.upper_mw[0]
    assert res.upper_mw[0] - res.hosting_capacity_mw[0] <= TOL_MW
    assert res.binding[0] is Binding.OVERVOLTAGE


def test_feeder_positions_fall_back_to_networkx_layout(case33):
    from studies.hosting_capacity_report import bus_positions

    net = copy.deepcopy(case33.net)
    with_geo = bus_positions(net)
    assert with_geo[17] == tuple(json.loads(net.bus.geo.loc[17])["coordinates"][:2])
    net.bus["geo"] = None
    layout = bus_positions(net)
    assert set(layout) == set(int(b) for b in net.bus.index)
    assert all(np.isfinite(xy).all() for xy in layout.values())


def test_violation_probability_is_empirical_cdf():
    """P(violation at x) = share of scenarios with HC < x (closed form on 4 scenarios)."""
    import pandas as pd

    from studies.hosting_capacity_stochastic import StochasticResult

    table = pd.DataFrame({"hosting_capacity_mw": [1.0, 2.0, 3.0, 4.0], "ac_confirmed": True})
    result = StochasticResult(table, pd.DataFrame(), mean_vehicle_kw=7.0, seed=0)
    assert list(result.violation_probability([0.5, 1.0, 2.5, 4.0, 5.0])) == [
        0.0, 0.0, 0.5, 0.75, 1.0,
    ]  # fmt: skip


def test_ac_only_method_matches_two_tier_with_control(case33):
    """--method ac (bisection from [0, cap], trial points where AC fails included) gives the
    two-tier answer, also with a volt-var fixed point at every trial."""
    two_tier = case33.run([17], control=Control.VOLT_VAR_B)
    ac_only = case33.run([17], control=Control.VOLT_VAR_B, method="ac")
    assert ac_only.table.screen_mw.isna().all()
    assert abs(ac_only.table.hosting_capacity_mw[0] - two_tier.table.hosting_capacity_mw[0]) <= (
        TOL_MW
    )
