"""Black start: the limits a rejected pickup broke and the service-voltage ranges of the
restoration are in ``violations`` (issue 12 §4); the section is read with grids.params.

References: the power limit is the fleet's available discharge power (the study's own
``p_fleet_available_mw``, checked against 150 kW per charger in test_black_start); the ANSI
C84.1 range-A low limit is 0.95 pu (grids.limits).
"""

from __future__ import annotations

import pytest

from grids.errors import ScenarioError
from studies.black_start import BlackStartSettings, run_black_start_study
from tests.studies.test_black_start import one_block


def test_a_rejected_pickup_is_a_violation_naming_the_limit_and_the_block():
    probe = run_black_start_study(one_block(0.01))
    p_avail = probe["steps"][0]["p_fleet_available_mw"]
    assert not [v for v in probe["violations"] if "pickup rejected" in v["limit"]]
    above = run_black_start_study(one_block(1.2 * p_avail / 1.5))
    (violation,) = [v for v in above["violations"] if "pickup rejected" in v["limit"]]
    assert violation["limit"] == "black-start power limit (pickup rejected)"
    assert violation["element"] == "pickup 'block'"
    assert violation["worst_value"] > violation["limit_value"] == pytest.approx(p_avail)
    assert violation["first_time_s"] >= 1.0


def test_a_voltage_setpoint_below_range_a_is_reported_against_ansi_c84_1():
    """The study's own band is 0.8 pu here; the fleet forming 0.94 pu keeps every island bus
    below 0.95 pu, which the study accepts but reports against ANSI C84.1 range A (low)."""
    sc = one_block(0.05)
    sc["black_start"]["v_setpoint_pu"] = 0.94
    result = run_black_start_study(sc)
    assert result["feasible"]
    (low,) = [v for v in result["violations"] if v["limit"] == "ANSI C84.1 range A (low)"]
    assert low["limit_value"] == 0.95
    assert low["worst_value"] == pytest.approx(result["v_min_pu"]) and low["worst_value"] < 0.94
    assert low["first_time_s"] == pytest.approx(0.1)  # from the first step of energisation
    assert not [v for v in result["violations"] if "range B" in v["limit"]]


def test_section_problems_come_from_the_validation_kit_all_at_once():
    with pytest.raises(ScenarioError) as info:
        BlackStartSettings.from_dict(
            {"island_root_bus": -1, "v_min_pu": 2.0, "pickups": [{"buses": [6], "t_s": 0}]}
        )
    text = str(info.value)
    assert "black_start.island_root_bus: -1 is out of range" in text
    assert "black_start.v_min_pu: 2 is out of range: expected a number in [0.5, 1] [pu]" in text
    assert "black_start.pickups[0].t_s: 0 is out of range" in text


def test_a_50_hz_island_is_the_60_hz_island_in_per_unit():
    """The island swing model is in per unit of f0 (``2H dΔf/dt = ΔP/S − DΔf``, Δf in pu) and
    the fleet's inverter settings follow ``[frequency] f0_hz`` (EN 50549-1 at 50 Hz, so its
    protection does not see 50 Hz as an under-frequency): the same pickup at 50 and 60 Hz gives
    the same frequency deviation in per unit (to 1e-12) and the same decision."""
    results = {}
    for f0_hz in (50.0, 60.0):
        scenario = one_block(0.1)
        scenario["frequency"] = {"f0_hz": f0_hz}
        scenario["black_start"]["f_min_hz"] = f0_hz - 5.0
        scenario["black_start"]["f_max_hz"] = f0_hz + 5.0
        results[f0_hz] = run_black_start_study(scenario)
    r50, r60 = results[50.0], results[60.0]
    assert r50["feasible"] and r60["feasible"]
    assert r60["f_min_hz"] < 60.0
    assert (r50["f_min_hz"] - 50.0) / 50.0 == pytest.approx(
        (r60["f_min_hz"] - 60.0) / 60.0, abs=1e-12
    )
    assert r50["restored_load_mw"] == pytest.approx(r60["restored_load_mw"], abs=1e-12)
    assert r50["min_soc_frac"] == pytest.approx(r60["min_soc_frac"], abs=1e-12)


def test_a_50_hz_fleet_without_a_frequency_section_makes_a_50_hz_island():
    """The island's nominal frequency is the system's as the loader settled it: ``fleet.
    f_nominal_hz = 50`` without ``[frequency]`` is the same island as ``[frequency] f0_hz =
    50`` (identical results), not a 60 Hz swing model driving a fleet set for 50 Hz."""
    from studies.black_start import load_black_start_scenario

    by_fleet = one_block(0.1)
    by_fleet["fleet"]["f_nominal_hz"] = 50.0
    by_frequency = one_block(0.1)
    by_frequency["frequency"] = {"f0_hz": 50.0}
    loaded = load_black_start_scenario(by_fleet)
    assert loaded.f0_hz == 50.0 and loaded.fleet.settings is None
    assert loaded.fleet.inverter_settings().f_nominal_hz == 50.0
    a, b = run_black_start_study(by_fleet), run_black_start_study(by_frequency)
    assert a["f_min_hz"] == b["f_min_hz"] < 50.0
    assert a["restored_load_mw"] == b["restored_load_mw"]
