"""Black start of an island by a grid-forming V2G fleet (issue 7 items 3 and 5).

References: the cold-load-pickup model ``P = P_div [1 + (K - 1) exp(-(t - t_d)/tau)]``
(issue 7; Aubin et al. 1990) checked at its defining points; the feasibility boundaries are
checked against the fleet's own limits (the ``Fleet`` discharge bound, its kVA rating).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from cosim.cli import main
from grids.errors import ScenarioError
from studies.black_start import island_buses, load_black_start_scenario, run_black_start_study
from studies.cold_load_pickup import cold_load_pickup_factor

SCENARIOS = Path(__file__).resolve().parents[2] / "studies" / "scenarios"


def test_cold_load_pickup_factor_defining_points():
    t = np.array([9.999, 10.0, 40.0, 10.0 + 30.0 * 50])
    f = cold_load_pickup_factor(t, t_pickup_s=10.0, k_inrush=3.0, tau_s=30.0)
    assert f[0] == 0.0  # not yet energised
    assert f[1] == pytest.approx(3.0, rel=1e-15)  # K at the pickup instant
    assert f[2] == pytest.approx(1.0 + 2.0 / math.e, rel=1e-15)  # one time constant later
    assert f[3] == pytest.approx(1.0, abs=1e-15)  # back to the diversified demand
    # energy above the diversified demand = (K - 1) tau (trapezoid rule on a fine grid)
    tt = np.linspace(10.0, 10.0 + 30.0 * 40, 400_001)
    extra = np.trapezoid(
        cold_load_pickup_factor(tt, t_pickup_s=10.0, k_inrush=3.0, tau_s=30.0) - 1.0, tt
    )
    assert extra == pytest.approx(2.0 * 30.0, rel=1e-6)


def one_block(p_mw, *, k_inrush=1.5, current_limit_pu=3.0):
    """Two depot buses (2 x 150 kW, 2 x 160 kVA) at bus 5 pick up one block at bus 6."""
    return {
        "simulation": {"duration_s": 30.0, "step_s": 0.1, "seed": 3},
        "feeder": {"name": "case33bw"},
        "fleet": {"n_vehicles": 2, "preset": "depot", "buses": [5]},
        "black_start": {
            "island_root_bus": 5,
            "fleet_bus": 5,
            "v_setpoint_pu": 1.0,
            "f_min_hz": 45.0,
            "f_max_hz": 70.0,
            "v_min_pu": 0.8,
            "current_limit_pu": current_limit_pu,
            "soc_min_frac": 0.15,
            "window_s": 5.0,
            "time_of_day_h": 1.0,
            "pickups": [
                {
                    "name": "block",
                    "buses": [6],
                    "t_s": 1.0,
                    "k_inrush": k_inrush,
                    "tau_s": 20.0,
                    "p_mw": p_mw,
                }
            ],
        },
    }


@pytest.fixture(scope="module")
def probe():
    """A pickup far below every limit: the fleet's available power and rating."""
    return run_black_start_study(one_block(0.01))


def test_power_limit_boundary(probe):
    step = probe["steps"][0]
    assert step["accepted"]
    p_avail = step["p_fleet_available_mw"]
    # 150 kW per depot charger whose bus is above the SoC floor
    assert p_avail / 0.15 == pytest.approx(round(p_avail / 0.15)) and p_avail > 0
    # peak demand = K * P_div (+ small losses on one line section)
    below = run_black_start_study(one_block(0.98 * p_avail / 1.5))
    above = run_black_start_study(one_block(1.02 * p_avail / 1.5))
    assert below["feasible"] and below["steps"][0]["accepted"]
    assert below["restored_load_mw"] == pytest.approx(0.98 * p_avail / 1.5)
    assert not above["feasible"]
    assert above["steps"][0]["reason"] == "power"
    assert above["restored_load_mw"] == 0.0 and above["t_restore_s"] is None


def test_current_limit_boundary(probe):
    rating_mva = probe["fleet_rating_mva"]
    assert rating_mva == pytest.approx(0.32)  # both 160 kVA chargers plugged at 1 am
    # bus 6 load: 0.2 MW + 0.1 Mvar -> |S| = P * sqrt(1.25); without inrush (K = 1) the
    # current limit at 1 pu is 0.5 * rating
    limit = 0.5
    p_edge = limit * rating_mva / math.sqrt(1.25)
    below = run_black_start_study(one_block(0.97 * p_edge, k_inrush=1.0, current_limit_pu=limit))
    above = run_black_start_study(one_block(1.03 * p_edge, k_inrush=1.0, current_limit_pu=limit))
    assert below["steps"][0]["accepted"]
    assert above["steps"][0]["reason"] == "current"


def test_rejected_block_is_skipped_and_later_blocks_still_tried():
    sc = one_block(0.05)
    sc["black_start"]["pickups"] = [
        {"name": "small", "buses": [6], "t_s": 1.0, "k_inrush": 1.0, "p_mw": 0.05},
        {"name": "too big", "buses": [7], "t_s": 3.0, "k_inrush": 3.0, "p_mw": 0.2},
        {"name": "small again", "buses": [8], "t_s": 5.0, "k_inrush": 1.0, "p_mw": 0.05},
    ]
    result = run_black_start_study(sc)
    assert [s["accepted"] for s in result["steps"]] == [True, False, True]
    assert result["steps"][1]["reason"] == "power"
    assert result["restored_load_mw"] == pytest.approx(0.1)
    assert not result["feasible"]
    # secondary control brings the island back to nominal frequency
    assert result["t_restore_s"] is not None and result["t_restore_s"] >= 5.0


def test_island_is_the_subtree_below_the_root():
    from grids.feeders import load_feeder

    buses = island_buses(load_feeder("case33bw"), 5)
    assert buses == [5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 25, 26, 27, 28, 29, 30, 31, 32]


def test_shipped_hospital_scenario_via_cli(capsys, tmp_path):
    code = main(
        [
            "black-start",
            "--scenario",
            str(SCENARIOS / "black_start_hospital.toml"),
            "--json",
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    for key in (
        "feasible",
        "restored_load_mw",
        "t_restore_s",
        "f_min_hz",
        "v_min_pu",
        "min_soc_frac",
        "hold_time_h",
        "steps",
    ):
        assert key in data
    assert data["feasible"] is True
    assert data["restored_load_mw"] == pytest.approx(2.055)
    assert len(data["steps"]) == 5 and all("t_s" in s and "p_mw" in s for s in data["steps"])
    assert 59.0 <= data["f_min_hz"] < 60.0 and 0.92 <= data["v_min_pu"] < 1.02
    assert data["min_soc_frac"] >= 0.2 and data["hold_time_h"] > 0.5
    for name in (
        "report.html",
        "black_start_timeline.png",
        "black_start_resilience.png",
        "black_start_timeline.csv",
    ):
        assert (tmp_path / name).is_file()


def test_bad_black_start_scenario_lists_every_problem():
    sc = one_block(0.1)
    bs = sc["black_start"]
    del bs["island_root_bus"]
    bs["colour"] = "red"
    bs["f_min_hz"] = 61.0
    bs["pickups"] = [
        {"buses": [6], "t_s": 5.0, "k_inrush": 0.5},
        {"buses": "six", "t_s": 2.0},
    ]
    with pytest.raises(ScenarioError) as info:
        load_black_start_scenario(sc)
    text = str(info.value)
    assert "black_start.island_root_bus: missing" in text
    assert "black_start.colour: unknown key" in text
    assert "black_start.f_min_hz: 61.0 must be below f0 = 60.0" in text
    assert "black_start.pickups[0].k_inrush: 0.5 is out of range" in text
    assert "black_start.pickups[1].buses: 'six' is not a non-empty list" in text
    assert "black_start.pickups[1].t_s: 2.0 is not after the previous pickup" in text


def test_pickup_outside_the_island_is_rejected_clearly():
    sc = one_block(0.1)
    sc["black_start"]["pickups"][0]["buses"] = [3]
    with pytest.raises(ScenarioError, match=r"pickups\[0\]\.buses: \[3\] are not in the island"):
        run_black_start_study(sc)


def test_missing_black_start_section_is_reported(capsys, tmp_path):
    path = tmp_path / "s.toml"
    path.write_text("[simulation]\nduration_s = 10.0\nstep_s = 0.1\n")
    assert main(["black-start", "--scenario", str(path)]) == 2
    err = capsys.readouterr().err
    assert "black_start: missing" in err and "fleet: missing" in err


def test_cli_prints_the_sequence_without_json(capsys, tmp_path):
    import tomli_w

    path = tmp_path / "one.toml"
    path.write_bytes(tomli_w.dumps(one_block(0.05)).encode())
    assert main(["black-start", "--scenario", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[:3] == ["block", "t_s", "p_mw"]
    assert "feasible: True" in out and "restored 0.050 MW" in out
