"""Everything checkable before a run is checked when the scenario is validated, all at once,
before any file is touched (issue 12 §1, §3): fleet buses against the feeder, the profile
files' contents, one nominal frequency, plausible event sizes."""

from __future__ import annotations

import pytest

from cosim.scenario import load_scenario
from grids.errors import ScenarioError

BASE = {
    "simulation": {"duration_s": 3600.0, "step_s": 900.0},
    "feeder": {"name": "case33bw"},
}


def problems_of(data: dict, tmp_path=None) -> list[str]:
    with pytest.raises(ScenarioError) as info:
        load_scenario(data, base_dir=tmp_path)
    return info.value.problems


def test_fleet_buses_outside_the_feeder_are_named():
    """case33bw has buses 0..32 (pandapower's case33bw)."""
    data = {**BASE, "fleet": {"n_vehicles": 10, "buses": [5, 33, 99]}}
    (problem,) = problems_of(data)
    assert problem.startswith("fleet.buses: 33, 99 are not buses of the feeder case33bw")
    assert "0..32" in problem
    ok = load_scenario({**BASE, "fleet": {"n_vehicles": 10, "buses": [0, 32]}})
    assert ok.fleet.buses == (0, 32)


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ("t_s,load_pu\n0,1.0\n900,nan\n", "row 3: load_pu is nan (not a finite number)"),
        ("t_s,load_pu\n900,1.0\n0,0.9\n", "row 3: times are not strictly increasing"),
        ("t_s,load_pu\n0,1.0\n0,0.9\n", "row 3: times are not strictly increasing"),
        ("t_s,p_mw\n0,1.0\n900,0.9\n", "load.csv: missing column(s) load_pu (found: t_s, p_mw)"),
    ],
)
def test_bad_profile_contents_are_validation_errors(tmp_path, rows, message):
    (tmp_path / "load.csv").write_text(rows)
    data = {**BASE, "feeder": {"name": "case33bw", "load_profile": "load.csv"}}
    out = tmp_path / "out"
    (problem,) = problems_of(data, tmp_path)
    assert problem.startswith("feeder.load_profile: ") and message in problem
    assert not out.exists()


def test_every_problem_at_once(tmp_path):
    """A bad bus, a bad profile, a frequency mismatch and an implausible event: one error."""
    (tmp_path / "sp.csv").write_text("t_s,p_setpoint_mw\n0,abc\n")
    data = {
        **BASE,
        "fleet": {
            "n_vehicles": 10,
            "buses": [40],
            "f_nominal_hz": 60.0,
            "setpoint_profile": "sp.csv",
        },
        "frequency": {"f0_hz": 50.0, "s_base_mw": 1000.0},
        "events": [{"t_s": 10.0, "kind": "generation_loss", "p_mw": 1e308}],
    }
    problems = problems_of(data, tmp_path)
    assert len(problems) == 4, problems
    text = "\n".join(problems)
    assert "fleet.buses: 40 is not a bus of the feeder" in text
    assert "fleet.setpoint_profile: sp.csv: row 2" in text
    assert "fleet.f_nominal_hz: 60 Hz disagrees with frequency.f0_hz (50 Hz)" in text
    assert "events[0].p_mw: 1e+308" in text  # grids.frequency.check_event_size


def test_fleet_follows_the_system_frequency_when_it_does_not_name_its_own():
    data = {
        "simulation": {"duration_s": 60.0, "step_s": 1.0},
        "fleet": {"n_vehicles": 10, "buses": [1]},
        "frequency": {"f0_hz": 50.0},
    }
    assert load_scenario(data).fleet.f_nominal_hz == 50.0


@pytest.mark.parametrize(
    ("event", "ok"),
    [
        ({"kind": "generation_loss", "p_mw": 30_000.0}, False),  # 30 GW on a 10 GW system
        ({"kind": "load_step", "p_mw": -12_000.0}, False),
        ({"kind": "generation_loss", "p_mw": 10_000.0}, True),  # the whole base: allowed
        ({"kind": "load_step", "p_mw": float("inf")}, False),
    ],
)
def test_event_sizes_are_bounded_by_the_system_base(event, ok):
    data = {
        "simulation": {"duration_s": 60.0, "step_s": 1.0},
        "frequency": {"s_base_mw": 10_000.0},
        "events": [{"t_s": 5.0, **event}],
    }
    if ok:
        load_scenario(data)
    else:
        (problem,) = problems_of(data)
        assert problem.startswith("events[0].p_mw: ")


def test_a_fleet_table_is_read_and_its_buses_checked_at_validation(tmp_path):
    header = "bus,arrival_s,departure_s,e_capacity_kwh,soc_arrival_frac,p_charge_max_kw\n"
    (tmp_path / "fleet.csv").write_text(header + "3,0,28800,60,0.2,7\n77,0,28800,60,0.2,7\n")
    data = {**BASE, "fleet": {"table": "fleet.csv"}}
    (problem,) = problems_of(data, tmp_path)
    assert problem.startswith("fleet.table: 77 is not a bus of the feeder case33bw")
    (tmp_path / "bad.csv").write_text(header + "3,0,28800,-60,0.2,7\n")
    (problem,) = problems_of({**BASE, "fleet": {"table": "bad.csv"}}, tmp_path)
    assert problem.startswith("fleet.table: ") and "e_capacity_kwh" in problem


def test_a_fleet_too_large_for_memory_is_refused_by_the_scenario_itself():
    """The Python API and sweeps get the same bound as the CLI, with the memory estimate."""
    from cosim.scenario import MAX_VEHICLES, validate_scenario
    from grids.errors import ScenarioError

    data = {
        "simulation": {"duration_s": 3600.0, "step_s": 900.0},
        "fleet": {"n_vehicles": MAX_VEHICLES + 1, "buses": [1, 2]},
    }
    with pytest.raises(ScenarioError) as info:
        validate_scenario(data)
    assert f"limit of {MAX_VEHICLES} vehicles" in str(info.value) and "GB" in str(info.value)
    data["fleet"]["n_vehicles"] = MAX_VEHICLES
    assert validate_scenario(data).fleet.n_vehicles == MAX_VEHICLES
