"""Scenario files: parsing, validation (every problem with its key path), overrides, examples."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest

from cosim.scenario import (
    Coupling,
    EventKind,
    OutputFormat,
    RemoteSim,
    apply_overrides,
    load_scenario,
)
from grids.errors import ScenarioError
from vehicle_models.settings import ControlFunction

SCENARIOS = Path(str(resources.files("studies.scenarios")))
EXAMPLES = ["demo.toml", "frequency_only.toml", "feeder_only.toml", "remote.toml"]

MINIMAL = {"simulation": {"duration_s": 10.0, "step_s": 0.01}}


def problems_of(data, **kw) -> list[str]:
    with pytest.raises(ScenarioError) as info:
        load_scenario(data, **kw)
    return info.value.problems


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_scenarios_validate(name):
    scenario = load_scenario(SCENARIOS / name)
    assert scenario.simulation.duration_s > 0


def test_demo_scenario_contents():
    s = load_scenario(SCENARIOS / "demo.toml")
    assert s.simulation.time_resolution_s == 0.02
    assert s.simulation.to_steps(900) == 45000
    assert s.feeder.name == "case33bw" and s.feeder.ambient_column == "ambient_c"
    assert Path(s.feeder.load_profile).name == "demo_load.csv"
    assert s.fleet.n_vehicles == 300
    assert s.fleet.settings.functions == {ControlFunction.VOLT_VAR, ControlFunction.FREQ_WATT}
    assert Path(s.fleet.setpoint_profile).name == "demo_dispatch.csv" and s.fleet.latency_s == 60
    assert s.events[0].kind is EventKind.GENERATION_LOSS and s.events[0].p_mw == 500.0
    assert s.event_windows_s() == [(64795.0, 64855.0)]
    assert s.output.format is OutputFormat.HDF5


def test_only_simulation_is_required_and_defaults_apply():
    s = load_scenario(MINIMAL)
    assert s.simulation.seed == 0
    assert s.simulation.time_resolution_s == 0.01  # fractional steps are allowed
    assert s.feeder is None and s.fleet is None and s.frequency is None and s.events == ()
    assert s.output.format is OutputFormat.HDF5
    assert s.simulation.coupling is Coupling.TIME_SHIFTED
    assert s.simulation.remote is RemoteSim.NONE


def test_missing_simulation_section():
    assert problems_of({"frequency": {}}) == [
        "simulation: missing (required section with duration_s and step_s)"
    ]


def test_every_problem_is_listed_with_its_key_path(tmp_path):
    data = {
        "simulation": {"duration_s": 60, "step_s": "fast", "seed": -1, "colour": "red"},
        "feeder": {"name": "nowhere", "method": "dc", "load_profile": "missing.csv"},
        "fleet": {
            "n_vehicles": 2.5,
            "preset": "home",
            "control": {"volt_var": {"v1_pu": 1.2}},
        },
        "frequency": {"h_s": "five", "bogus": 1},
        "events": [{"t_s": 5, "kind": "meteor"}, {"t_s": 99, "kind": "load_step"}],
        "output": {"format": "xlsx", "flush_every": 0},
        "extras": {},
    }
    problems = problems_of(data, base_dir=tmp_path)
    expected = [
        "extras: unknown section",
        "simulation.step_s: 'fast' is not a number",
        "simulation.seed: -1 is out of range: expected an integer in [0, 4294967295]",
        "simulation.colour: unknown key",
        "feeder.name: 'nowhere' is not an embedded feeder",
        "feeder.method: 'dc' is not one of 'ac', 'lindistflow'",
        "feeder.load_profile: file 'missing.csv' does not exist",
        "fleet.n_vehicles: 2.5 is not an integer",
        "fleet.control.volt_var.v1_pu: 1.2 is",
        "frequency.h_s: 'five' is not a number",
        "frequency.bogus: unknown key",
        "events[0].kind: 'meteor' is not one of",
        "events[1].p_mw: missing (required for 'load_step')",
        "output.format: 'xlsx' is not one of 'hdf5', 'parquet'",
        "output.flush_every: 0 is out of range: expected an integer in [1, 10000000]",
    ]
    for text in expected:
        assert any(p.startswith(text) for p in problems), (text, problems)


def test_out_of_range_times_and_steps():
    problems = problems_of(
        {
            "simulation": {"duration_s": 10, "step_s": 1.0, "fast_step_s": 0.3},
            "frequency": {},
            "events": [{"t_s": 11, "kind": "generation_loss", "p_mw": 10}],
        }
    )
    assert problems == [
        "simulation.step_s: 1.0 is not an integer multiple of simulation.fast_step_s (0.3)",
        "events[0].t_s: 11 is out of range: expected a number in [0, 10] [s]",
    ]


def test_zero_duration_is_rejected():
    assert problems_of({"simulation": {"duration_s": 0, "step_s": 1}}) == [
        "simulation.duration_s: 0 is out of range: expected a number > 0 [s]"
    ]


def test_events_need_the_sections_they_act_on():
    problems = problems_of(
        {
            "simulation": {"duration_s": 10, "step_s": 1},
            "events": [
                {"t_s": 1, "kind": "generation_loss", "p_mw": 5},
                {"t_s": 2, "kind": "line_outage", "line": 3},
            ],
        }
    )
    assert problems == [
        "events[0].kind: 'generation_loss' needs a [frequency] section",
        "events[1].kind: 'line_outage' needs a [feeder] section",
    ]


def test_fleet_needs_a_feeder_and_remote_needs_its_simulator():
    problems = problems_of(
        {
            "simulation": {"duration_s": 10, "step_s": 1, "remote": "feeder"},
            "fleet": {"n_vehicles": 3},
        }
    )
    assert problems == [
        "fleet.buses: needed without a [feeder] (the buses to put vehicles on)",
        "simulation.remote: 'feeder' but the scenario has no [feeder]",
    ]


def test_fleet_with_zero_vehicles_is_fine_without_feeder():
    s = load_scenario({**MINIMAL, "fleet": {"n_vehicles": 0}})
    assert not s.has_fleet


def test_fleet_without_feeder_needs_buses():
    s = load_scenario({**MINIMAL, "fleet": {"n_vehicles": 5, "buses": [1, 2]}})
    assert s.has_fleet and s.feeder is None


def test_latency_must_be_a_multiple_of_the_resolution(tmp_path):
    (tmp_path / "sp.csv").write_text("t_s,p_setpoint_mw\n0,0.1\n")
    problems = problems_of(
        {
            "simulation": {"duration_s": 10, "step_s": 0.02},
            "feeder": {},
            "fleet": {
                "n_vehicles": 2,
                "setpoint_profile": "sp.csv",
                "latency_s": 0.03,
                "packet_loss": 1.5,
            },
        },
        base_dir=tmp_path,
    )
    assert problems == [
        "fleet.packet_loss: 1.5 is out of range: expected a number in [0, 0.99]",
        "fleet.latency_s: 0.03 is not an integer multiple of the time resolution (0.02 s)",
    ]


def test_latency_and_packet_loss_need_the_setpoint_channel():
    problems = problems_of(
        {**MINIMAL, "feeder": {}, "fleet": {"n_vehicles": 2, "latency_s": 1.0, "packet_loss": 0.1}}
    )
    assert problems == [
        "fleet.latency_s: applies to the set-point channel, which needs fleet.setpoint_profile",
        "fleet.packet_loss: applies to the set-point channel, which needs fleet.setpoint_profile",
    ]


def test_transformer_parameters_are_validated_by_the_thermal_model():
    problems = problems_of(
        {**MINIMAL, "feeder": {"transformer": {"rating_mva": -1, "cooling": "XX", "zz": 1}}}
    )
    assert problems == [
        "feeder.transformer.rating_mva: -1 is out of range: expected a number in (0, 10000] [MVA]",
        "feeder.transformer.cooling: 'XX' is not one of 'ONAN', 'ONAF', 'OF', 'OD', "
        "'ONAN_distribution'",
        "feeder.transformer.zz: unknown key (allowed: ambient_c, cooling, delta_theta_or_k, "
        "g_r_k, h, k11, k21, k22, paper, r, rating_mva, tau_o_min, tau_w_min, x, y)",
    ]


def test_frequency_ranges_come_from_the_swing_parameters():
    problems = problems_of({**MINIMAL, "frequency": {"h_s": -5.0}})
    assert len(problems) == 1 and problems[0].startswith("frequency.h_s: -5")


def test_ufls_stages_are_accepted():
    s = load_scenario(
        {
            **MINIMAL,
            "frequency": {"ufls": [{"threshold_hz": 59.3, "delay_s": 0.1, "fraction": 0.05}]},
        }
    )
    assert s.frequency.table["ufls"][0]["threshold_hz"] == 59.3
    assert s.frequency.params.ufls[0].threshold_hz == 59.3


def test_toml_syntax_error_names_the_file(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[simulation\nduration_s = 1\n")
    with pytest.raises(ScenarioError, match=r"bad.toml: not valid TOML"):
        load_scenario(path)


def test_missing_scenario_file(tmp_path):
    with pytest.raises(ScenarioError, match="scenario file does not exist"):
        load_scenario(tmp_path / "none.toml")


def test_relative_files_resolve_against_the_scenario_file(tmp_path):
    (tmp_path / "p.csv").write_text("t_s,load_pu\n0,1.0\n")
    (tmp_path / "s.toml").write_text(
        '[simulation]\nduration_s = 10\nstep_s = 1\n[feeder]\nload_profile = "p.csv"\n'
    )
    s = load_scenario(tmp_path / "s.toml")
    assert Path(s.feeder.load_profile) == tmp_path / "p.csv"


def test_apply_overrides_sets_dotted_paths_without_touching_the_input():
    data = {"simulation": {"duration_s": 1}, "events": [{"p_mw": 1}]}
    out = apply_overrides(data, {"frequency.h_s": 4.0, "events.0.p_mw": 800, "simulation.seed": 3})
    assert out["frequency"] == {"h_s": 4.0}
    assert out["events"][0]["p_mw"] == 800 and out["simulation"]["seed"] == 3
    assert "frequency" not in data and data["events"][0]["p_mw"] == 1


def test_apply_overrides_reports_bad_paths():
    with pytest.raises(ScenarioError) as info:
        apply_overrides(
            {"events": [], "simulation": {"step_s": 1}},
            {"events.2.p_mw": 1, "simulation.step_s.x": 2},
        )
    assert info.value.problems == [
        "events.2.p_mw: '2' is not an index of the array",
        "simulation.step_s.x: simulation.step_s is not a table",
    ]


def test_load_scenario_with_overrides_is_validated():
    problems = problems_of(MINIMAL, overrides={"simulation.step_s": -1})
    assert problems == ["simulation.step_s: -1 is out of range: expected a number > 0 [s]"]


def test_island_events_need_the_island_parameters_and_record_names_are_checked():
    problems = problems_of(
        {
            **MINIMAL,
            "frequency": {"island": {"h_s": 2.0}},
            "events": [{"t_s": 1.0, "kind": "island"}],
            "output": {"record": ["f_hz", "colour"]},
        }
    )
    assert problems[0] == (
        "frequency.island: s_base_mw, d_pu missing (the island's grid-forming fleet, needed "
        "for 'island' events)"
    )
    assert problems[1].startswith("output.record: 'colour' is not a recorded attribute (known: ")
    assert len(problems) == 2
