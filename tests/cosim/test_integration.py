"""Cross-module integration: shipped scenario files, study sections, over-frequency events."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from cosim.cli import main
from cosim.scenario import load_scenario, study_sections, validate_scenario
from grids.errors import ScenarioError
from grids.frequency import SwingParameters, rocof_initial_hz_per_s, steady_state_deviation_hz

SCENARIOS = Path(__file__).resolve().parents[2] / "studies" / "scenarios"
BULK = {
    "simulation": {"duration_s": 30.0, "step_s": 0.02},
    "frequency": {
        "f0_hz": 60.0,
        "s_base_mw": 10000.0,
        "h_s": 5.0,
        "d_pu": 1.0,
        "r_pu": 0.05,
        "t_gov_s": 0.5,
    },
    "events": [{"t_s": 1.0, "kind": "load_step", "p_mw": -500.0}],
}


@pytest.mark.parametrize(
    "path",
    sorted(p for p in SCENARIOS.glob("*.toml") if not p.name.startswith("sweep_")),
    ids=lambda p: p.name,
)
def test_every_shipped_scenario_is_valid_for_a_plain_run(path):
    """One scenario file serves both `v2g-cosim run` and its study command (the run command
    registers the study sections first, as here: the test no longer depends on test order)."""
    from cosim.clitools import register_study_sections

    register_study_sections()
    scenario = load_scenario(path)
    assert scenario.simulation.duration_s > 0


def test_study_sections_are_accepted_but_other_unknown_sections_are_not():
    data = copy.deepcopy(BULK)
    for section in study_sections():
        data[section] = {}
    validate_scenario(data)
    data["contingencies"] = {}
    with pytest.raises(ScenarioError, match="contingencies: unknown section"):
        validate_scenario(data)


def test_zero_load_step_is_rejected_with_its_key_path():
    data = copy.deepcopy(BULK)
    data["events"][0]["p_mw"] = 0.0
    with pytest.raises(ScenarioError, match=r"events\[0\]\.p_mw: 0 is not a load step"):
        validate_scenario(data)


def test_load_drop_gives_the_closed_form_over_frequency_response(tmp_path, capsys):
    """A 500 MW load drop mirrors the DESIGN.md reference: RoCoF +0.3 Hz/s and
    Δf_ss = +ΔP/(D + 1/R) (Kundur 1994, eq. 11.14), both exact."""
    path = tmp_path / "overfrequency.toml"
    path.write_text(
        "[simulation]\nduration_s = 30.0\nstep_s = 0.02\n"
        "[frequency]\nf0_hz = 60.0\ns_base_mw = 10000.0\nh_s = 5.0\nd_pu = 1.0\n"
        "r_pu = 0.05\nt_gov_s = 0.5\n"
        '[[events]]\nt_s = 1.0\nkind = "load_step"\np_mw = -500.0\n'
    )
    assert main(["contingency", "--scenario", str(path), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    params = SwingParameters(
        f0_hz=60.0, s_base_mw=10000.0, h_s=5.0, d_pu=1.0, r_pu=0.05, t_gov_s=0.5
    )
    assert result["rocof_initial_hz_per_s"] == pytest.approx(0.3, rel=1e-12)
    assert result["rocof_initial_hz_per_s"] == pytest.approx(
        rocof_initial_hz_per_s(params, -500.0), rel=1e-12
    )
    assert result["delta_f_steady_hz"] == pytest.approx(0.05 / 21 * 60, rel=1e-12)
    assert result["delta_f_steady_hz"] == pytest.approx(
        steady_state_deviation_hz(params, -500.0), rel=1e-12
    )
    assert result["delta_f_nadir_hz"] > result["delta_f_steady_hz"] > 0
