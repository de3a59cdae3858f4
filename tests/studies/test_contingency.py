"""Frequency-event contingency study (issue 7 items 1, 2, 5).

References: the swing-equation closed forms of Kundur (1994) sec. 11.1 (RoCoF right after a
loss ``-ΔP f0 / (2 H S)``, steady state ``-ΔP / (D + 1/R)``) and an independent
``scipy.integrate.solve_ivp`` (Radau, rtol 1e-10) integration of the same equations for the
nadir (tolerance 1e-3 Hz, issue 7).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from cosim.cli import main
from grids.errors import ScenarioError
from studies.contingency import load_contingency_scenario, run_contingency_study

SCENARIOS = Path(__file__).resolve().parents[2] / "studies" / "scenarios"


def bulk_scenario(
    *,
    h_s=5.0,
    d_pu=1.0,
    r_pu=0.05,
    t_gov_s=0.5,
    p_mw=500.0,
    step_s=0.02,
    duration_s=60.0,
    t_event_s=1.0,
    extra=None,
):
    freq = {
        "f0_hz": 60.0,
        "s_base_mw": 10000.0,
        "h_s": h_s,
        "d_pu": d_pu,
        "r_pu": r_pu,
        "t_gov_s": t_gov_s,
    }
    if extra:
        freq.update(extra)
    return {
        "simulation": {"duration_s": duration_s, "step_s": step_s},
        "frequency": freq,
        "events": [{"t_s": t_event_s, "kind": "generation_loss", "p_mw": p_mw}],
    }


def reference_nadir(
    *, h_s, d_pu, r_pu, t_gov_s, p_mw, f0_hz=60.0, s_base_mw=10000.0, f_hp=None, t_rh_s=None
):
    """Nadir [Hz] and its time after the event [s] from solve_ivp of the swing equation.

    ``2H dΔf/dt = ΔPm − ΔP − DΔf``, ``Tg dPgv/dt = −Δf/R − Pgv`` (pu), optional reheat
    ``Trh dPrh/dt = Pgv − Prh``, ``ΔPm = F_HP Pgv + (1 − F_HP) Prh``. The nadir is where
    ``dΔf/dt = 0`` (terminal event).
    """
    u = -p_mw / s_base_mw
    fhp = 1.0 if f_hp is None else f_hp
    trh = 1.0 if t_rh_s is None else t_rh_s

    def rhs(_t, x):
        df, pgv, prh = x
        pm = fhp * pgv + (1.0 - fhp) * prh
        return [
            (pm + u - d_pu * df) / (2.0 * h_s),
            (-df / r_pu - pgv) / t_gov_s,
            (pgv - prh) / trh,
        ]

    def turning(t, x):
        return rhs(t, x)[0] if t > 0 else -1.0

    turning.terminal = True
    turning.direction = 1
    sol = solve_ivp(
        rhs, (0.0, 120.0), [0.0, 0.0, 0.0], method="Radau", rtol=1e-10, atol=1e-13, events=turning
    )
    t_nadir = float(sol.t_events[0][0])
    return f0_hz * (1.0 + float(sol.y_events[0][0][0])), t_nadir


def test_closed_forms_are_reproduced_exactly_without_fleet():
    """DESIGN.md section 5: 500 MW on 10 GW, H = 5 s, 60 Hz gives -0.3 Hz/s exactly."""
    result = run_contingency_study(bulk_scenario(duration_s=120.0))
    assert result["name"] == "none"
    assert result["rocof_initial_hz_per_s"] == pytest.approx(-0.3, rel=1e-12, abs=0)
    expected_ss = -(500.0 / 10000.0) / (1.0 + 1.0 / 0.05) * 60.0
    assert result["delta_f_steady_hz"] == pytest.approx(expected_ss, rel=1e-12, abs=0)
    # and the simulation really settles there (end of the run)
    assert result["delta_f_end_hz"] == pytest.approx(expected_ss, abs=1e-9)
    assert result["ufls_shed_mw"] == 0.0 and result["n_vehicles_tripped"] == 0


@pytest.mark.parametrize(
    ("h_s", "d_pu", "r_pu", "t_gov_s", "step_s"),
    [
        (5.0, 1.0, 0.05, 0.5, 0.02),
        (2.0, 0.0, 0.04, 0.3, 0.01),
        (8.0, 2.0, 0.08, 1.5, 0.05),
        (3.0, 1.5, 0.05, 4.0, 0.02),
    ],
)
def test_nadir_matches_an_independent_solve_ivp(h_s, d_pu, r_pu, t_gov_s, step_s):
    sc = bulk_scenario(h_s=h_s, d_pu=d_pu, r_pu=r_pu, t_gov_s=t_gov_s, step_s=step_s)
    result = run_contingency_study(sc)
    f_ref, t_ref = reference_nadir(h_s=h_s, d_pu=d_pu, r_pu=r_pu, t_gov_s=t_gov_s, p_mw=500.0)
    assert result["f_nadir_hz"] == pytest.approx(f_ref, abs=1e-3)
    assert result["delta_f_nadir_hz"] == pytest.approx(f_ref - 60.0, abs=1e-3)
    assert result["t_nadir_s"] == pytest.approx(t_ref, abs=step_s)
    assert result["rocof_initial_hz_per_s"] == pytest.approx(
        -500.0 * 60.0 / (2 * h_s * 10000.0), rel=1e-12
    )


def test_nadir_with_reheat_turbine_matches_solve_ivp():
    sc = bulk_scenario(h_s=4.0, t_gov_s=0.3, extra={"f_hp": 0.3, "t_rh_s": 7.0})
    result = run_contingency_study(sc)
    f_ref, t_ref = reference_nadir(
        h_s=4.0, d_pu=1.0, r_pu=0.05, t_gov_s=0.3, p_mw=500.0, f_hp=0.3, t_rh_s=7.0
    )
    assert result["f_nadir_hz"] == pytest.approx(f_ref, abs=1e-3)
    assert result["t_nadir_s"] == pytest.approx(t_ref, abs=0.02)


def test_ufls_stage_sheds_load_and_lifts_the_nadir():
    base = bulk_scenario(p_mw=1500.0, h_s=3.0)
    plain = run_contingency_study(base)
    stage = {"threshold_hz": 59.5, "delay_s": 0.1, "fraction": 0.05}
    with_ufls = bulk_scenario(p_mw=1500.0, h_s=3.0, extra={"ufls": [stage]})
    shed = run_contingency_study(with_ufls)
    assert plain["f_nadir_hz"] < 59.5  # the stage is reached
    assert shed["ufls_stages_triggered"] == 1
    assert shed["ufls_shed_mw"] == pytest.approx(500.0)
    assert shed["f_nadir_hz"] > plain["f_nadir_hz"]
    # the steady state is the closed form of the net deficit after shedding
    assert shed["delta_f_steady_hz"] == pytest.approx(-(1000.0 / 10000.0) / 21.0 * 60.0)


def test_cli_json_single_case_from_shipped_scenario(capsys):
    code = main(
        ["contingency", "--scenario", str(SCENARIOS / "contingency_bulk_only.toml"), "--json"]
    )
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    for key in (
        "f_nadir_hz",
        "delta_f_nadir_hz",
        "t_nadir_s",
        "rocof_initial_hz_per_s",
        "delta_f_steady_hz",
        "ufls_shed_mw",
        "fleet_tripped_mw",
        "n_vehicles_tripped",
    ):
        assert key in data
    assert data["rocof_initial_hz_per_s"] == pytest.approx(-0.3, rel=1e-12)
    assert data["delta_f_nadir_hz"] < 0


def test_cli_compare_lists_cases_with_names(capsys, tmp_path):
    code = main(
        [
            "contingency",
            "--scenario",
            str(SCENARIOS / "contingency_bulk_only.toml"),
            "--compare",
            "none,droop",
            "--json",
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert [c["name"] for c in data["cases"]] == ["none", "droop"]
    # no fleet: every behaviour is the bulk grid alone
    assert data["cases"][0]["f_nadir_hz"] == data["cases"][1]["f_nadir_hz"]
    assert (tmp_path / "report.html").is_file()
    assert (tmp_path / "contingency_frequency.png").is_file()
    assert (tmp_path / "metrics.csv").is_file()


def test_unknown_case_is_rejected_with_the_allowed_list(capsys):
    code = main(
        [
            "contingency",
            "--scenario",
            str(SCENARIOS / "contingency_bulk_only.toml"),
            "--compare",
            "none,wobble",
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "unknown case 'wobble'" in err and "staggered" in err


def test_bad_scenario_lists_every_problem():
    bad = bulk_scenario(step_s=0.5)
    bad["events"] = [{"t_s": 2.0, "kind": "island"}]
    bad["contingency"] = {"dispatch_frac": 1.5, "colour": "red", "compare": ["vsm", "nope"]}
    bad["frequency"]["h_s"] = -1.0
    with pytest.raises(ScenarioError) as info:
        load_contingency_scenario(bad)
    text = str(info.value)
    assert "simulation.step_s: 0.5 is outside the allowed 0.001 to 0.1 s" in text
    assert "events: a contingency needs at least one [[events]] table" in text
    assert "contingency.dispatch_frac: 1.5 is out of range: expected a number in [0, 1]" in text
    assert "contingency.colour: unknown key" in text
    assert "contingency.compare: unknown case 'nope'" in text
    assert "frequency.h_s" in text


def test_missing_scenario_file_is_a_clear_error(capsys, tmp_path):
    code = main(["contingency", "--scenario", str(tmp_path / "nope.toml")])
    assert code == 2
    err = capsys.readouterr().err
    assert "nope.toml" in err and ("does not exist" in err or "no such file" in err)


class _GridFormingUnit:
    """Closed-loop responder wrapping a grid-forming model of vehicle_models (rating s_mw)."""

    grid_forming = True

    def __init__(self, machine, s_mw):
        self.machine = machine
        self.s_mw = s_mw
        self.last_delta_mw = 0.0

    def step(self, *, t_s, dt_s, f_hz):
        p_pu = self.machine.step(dt_s=dt_s, f_hz=np.array([f_hz]), p_ref_pu=np.zeros(1))
        self.last_delta_mw = float(np.asarray(p_pu)[0]) * self.s_mw


def test_droop_with_low_pass_equals_vsm_in_the_closed_loop():
    """D'Arco & Suul (2014): droop m_p with a power low-pass tau is a VSM with 2H = tau/m_p,
    D = 1/m_p. Coupled to the bulk swing model in the study's loop, both give the same
    frequency (to round-off), and both lift the nadir above the no-fleet case."""
    from studies.contingency import simulate_case
    from vehicle_models.vsm import DroopLowPassFilter, VirtualSynchronousMachine

    scenario = load_contingency_scenario(bulk_scenario(duration_s=15.0, p_mw=500.0))
    droop = DroopLowPassFilter(m_p=0.05, tau_s=0.4, x_pu=0.15, n=1)
    vsm = VirtualSynchronousMachine(droop.equivalent_vsm_settings(), n=1)
    assert vsm.settings.h_s == pytest.approx(4.0) and vsm.settings.d_pu == pytest.approx(20.0)
    a = simulate_case(scenario, "vsm", response=_GridFormingUnit(droop, 300.0))
    b = simulate_case(scenario, "vsm", response=_GridFormingUnit(vsm, 300.0))
    none = simulate_case(scenario, "none")
    np.testing.assert_allclose(a.f_hz, b.f_hz, rtol=0, atol=1e-9)
    np.testing.assert_allclose(a.p_fleet_mw, b.p_fleet_mw, rtol=0, atol=1e-6)
    assert a.metrics["f_nadir_hz"] > none.metrics["f_nadir_hz"] + 0.005
    # in steady state the unit behaves as a droop of 1/m_p on its rating
    df_pu = b.metrics["delta_f_end_hz"] / 60.0
    assert b.p_fleet_mw[-1] == pytest.approx(-df_pu / 0.05 * 300.0, rel=1e-3)


@pytest.fixture(scope="module")
def reference_trip_cases():
    return run_contingency_study(SCENARIOS / "contingency_reference.toml", cases="trip,staggered")[
        "cases"
    ]


def test_staggered_does_not_deepen_the_nadir_of_the_reference_case(reference_trip_cases):
    trip, staggered = reference_trip_cases
    assert trip["name"] == "trip" and staggered["name"] == "staggered"
    # the fault sag trips the same vehicles in both cases ...
    assert trip["n_vehicles_tripped"] == staggered["n_vehicles_tripped"] > 0
    assert trip["fleet_tripped_mw"] == pytest.approx(staggered["fleet_tripped_mw"])
    assert trip["fleet_tripped_mw"] > 10.0
    # ... but ramping the loss out keeps the nadir shallower and avoids load shedding
    assert staggered["f_nadir_hz"] >= trip["f_nadir_hz"]
    assert trip["ufls_shed_mw"] > 0 and staggered["ufls_shed_mw"] == 0
    # same final fleet loss: same quasi-steady state without UFLS
    assert staggered["delta_f_steady_hz"] == pytest.approx(
        steady_state_after(220.0 + staggered["fleet_tripped_mw"]), rel=1e-6
    )


def steady_state_after(p_deficit_mw, *, s_base_mw=2000.0, d_pu=1.0, r_pu=0.05, f0_hz=60.0):
    return -(p_deficit_mw / s_base_mw) / (d_pu + 1.0 / r_pu) * f0_hz


def test_fleet_droop_and_vsm_lift_the_nadir_and_none_holds_its_dispatch():
    """The fleet path (Fleet with its InverterBank) in the three ride-through cases."""
    sc = {
        "simulation": {"duration_s": 6.0, "step_s": 0.02, "seed": 2},
        "frequency": {"s_base_mw": 2000.0, "h_s": 4.0, "d_pu": 1.0, "r_pu": 0.05, "t_gov_s": 0.5},
        "events": [{"t_s": 0.5, "kind": "generation_loss", "p_mw": 150.0}],
        "feeder": {"name": "case33bw"},
        "fleet": {
            "n_vehicles": 40,
            "preset": "home",
            "control": {"droop": {"db_hz": 0.017, "k": 0.05, "olrt_s": 0.5}},
        },
        "contingency": {"feeder_replicas": 200.0},
    }
    result = run_contingency_study(sc, cases="none,droop,vsm")["cases"]
    none, droop, vsm = result
    assert none["fleet_p_max_mw"] == 0.0 and none["fleet_response_energy_kwh"] == 0.0
    assert droop["f_nadir_hz"] > none["f_nadir_hz"] + 0.005
    assert vsm["f_nadir_hz"] > none["f_nadir_hz"] + 0.005
    assert droop["fleet_response_energy_kwh"] > 0 and vsm["fleet_response_energy_kwh"] > 0
    # under-frequency support discharges the batteries a little more than the dispatch alone
    assert droop["soc_change_frac"] < none["soc_change_frac"] <= 0
    assert all(c["n_vehicles_tripped"] == 0 for c in result)


def test_cli_prints_a_table_without_json(capsys):
    code = main(["contingency", "--scenario", str(SCENARIOS / "contingency_bulk_only.toml")])
    assert code == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[:3] == ["case", "f_nadir_hz", "df_nadir_hz"]
    assert "none" in out and "59.8155" in out


def test_each_case_is_the_fleet_settings_with_only_the_case_changes():
    """The per-case settings are derived from the scenario's parsed ``[fleet.control]`` (no
    second reading of the table): each equals ``InverterSettings.from_dict`` of the table a
    user would write for that case by hand (the independent reference); exact equality."""
    from studies.contingency_scenario import FleetResponse
    from studies.contingency_simulation import control_for_case
    from vehicle_models.settings import InverterSettings

    control = {
        "functions": ["volt_var", "freq_watt"],
        "volt_var": {"v1_pu": 0.93},
        "vsm": {"h_s": 6.0},
        "trip": {"uv1_v_pu": 0.6},
        "stagger": {"n_tiers": 3},
    }
    sc = bulk_scenario()
    sc["feeder"] = {"name": "case33bw"}
    sc["fleet"] = {"n_vehicles": 10, "preset": "home", "control": control}
    sc["contingency"] = {"trip": {"uv2_v_pu": 0.5, "uv2_t_s": 0.16}, "stagger": {"ramp_s": 3.0}}
    scenario = load_contingency_scenario(sc)
    common = {"volt_var": {"v1_pu": 0.93}, "vsm": {"h_s": 6.0}}
    trip = {"uv1_v_pu": 0.6, "uv2_v_pu": 0.5, "uv2_t_s": 0.16}
    by_hand = {
        FleetResponse.NONE: {**common, "functions": ["volt_var"], "trip": {"uv1_v_pu": 0.6}},
        FleetResponse.DROOP: {**common, "functions": ["volt_var", "freq_watt"]},
        FleetResponse.VSM: {**common, "functions": ["volt_var"], "mode": "grid_forming"},
        FleetResponse.TRIP: {**common, "functions": ["volt_var"], "trip": trip},
        FleetResponse.STAGGERED: {
            **common,
            "functions": ["volt_var"],
            "trip": trip,
            "stagger": {"n_tiers": 3, "ramp_s": 3.0, "mode": "ramp"},
        },
    }
    for case, table in by_hand.items():
        table = {"trip": {"uv1_v_pu": 0.6}, "stagger": {"n_tiers": 3}, **table}
        expected = InverterSettings.from_dict(table)
        got = control_for_case(scenario.fleet.settings, scenario.settings, case)
        assert got == expected, case
    # the study's own keys are checked when the scenario is read, not when the case runs
    with pytest.raises(ScenarioError, match=r"contingency\.trip\.uv9_v_pu: unknown key"):
        load_contingency_scenario({**sc, "contingency": {"trip": {"uv9_v_pu": 0.5}}})
