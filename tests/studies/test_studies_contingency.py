"""Contingency study: event-size validation, the shared metric definitions, violations.

Closed forms: without a governor (``r_pu = inf``) the swing model with damping ``D`` is first
order, ``Δf(t) = Δf_ss (1 − e^{−t/T})`` with ``T = 2H/D`` (Kundur 1994, eq. 11.11 form), so the
5 % settling time is ``T ln 20`` (to one step) and the 500 ms RoCoF is
``Δf_ss (1 − e^{−0.5/T}) / 0.5`` (to the model's discretisation, 1e-6 Hz/s).
"""

from __future__ import annotations

import math

import pytest

from grids.errors import ScenarioError
from grids.limits import Limit
from studies.contingency import load_contingency_scenario, run_contingency_study


def scenario(*, p_mw=500.0, r_pu=0.05, d_pu=1.0, h_s=5.0, ufls=None, duration_s=60.0):
    freq = {"f0_hz": 60.0, "s_base_mw": 10000.0, "h_s": h_s, "d_pu": d_pu, "r_pu": r_pu}
    if ufls is not None:
        freq["ufls"] = ufls
    return {
        "simulation": {"duration_s": duration_s, "step_s": 0.02},
        "frequency": freq,
        "events": [{"t_s": 1.0, "kind": "generation_loss", "p_mw": p_mw}],
    }


@pytest.mark.parametrize("p_mw", [1e308, 30000.0, 10000.5])
def test_a_loss_larger_than_the_system_is_a_validation_error(p_mw):
    with pytest.raises(ScenarioError) as info:
        load_contingency_scenario(scenario(p_mw=p_mw))
    text = str(info.value)
    # one message naming the event; the bound is the system base (or, for 1e308, the shared
    # scenario loader's own plausibility bound when it catches it first)
    assert "events[0].p_mw" in text and ("s_base_mw = 10000" in text or "out of range" in text)


def test_events_adding_up_above_the_system_base_are_refused():
    sc = scenario(p_mw=6000.0)
    sc["events"].append({"t_s": 2.0, "kind": "generation_loss", "p_mw": 6000.0})
    with pytest.raises(ScenarioError, match="the events add up to 12000 MW"):
        load_contingency_scenario(sc)


def test_first_order_settling_time_and_500ms_rocof_match_closed_forms():
    h_s, d_pu, p_mw = 5.0, 1.0, 500.0
    result = run_contingency_study(scenario(r_pu=math.inf, d_pu=d_pu, h_s=h_s, p_mw=p_mw))
    t_const = 2 * h_s / d_pu
    df_ss = -p_mw / 10000.0 * 60.0 / d_pu
    assert result["t_settle_s"] == pytest.approx(t_const * math.log(20.0), abs=0.02)
    expected = df_ss * (1 - math.exp(-0.5 / t_const)) / 0.5
    assert result["rocof_500ms_hz_per_s"] == pytest.approx(expected, abs=1e-6)
    # Δf_ss = −3 Hz leaves the model's validity band |Δf| <= 3 % f0 = 1.8 Hz: said so
    (validity,) = result["violations"]
    assert validity["limit"] == "frequency model validity range"
    assert validity["worst_value"] == pytest.approx(result["f_nadir_hz"])
    assert validity["limit_value"] == pytest.approx(60.0 - 1.8)


def test_a_normal_event_has_no_violations():
    assert run_contingency_study(scenario())["violations"] == []


def test_ufls_is_reported_as_a_violation():
    ufls = [{"threshold_hz": 59.7, "delay_s": 0.1, "fraction": 0.05}]
    result = run_contingency_study(scenario(p_mw=900.0, ufls=ufls))
    assert result["ufls_shed_mw"] > 0
    (violation,) = [v for v in result["violations"] if v["limit"] == Limit.UFLS.value]
    assert Limit.UFLS.value == "under-frequency load shedding"  # the JSON key stays
    assert violation["limit_value"] == 59.7
    assert violation["worst_value"] == result["f_nadir_hz"] < 59.7


def test_compare_gives_violations_per_case():
    ufls = [{"threshold_hz": 59.7, "delay_s": 0.1, "fraction": 0.05}]
    result = run_contingency_study(scenario(p_mw=900.0, ufls=ufls), cases="none")
    assert result["violations"][0]["element"].startswith("case none:")


def test_the_study_registers_its_section_and_its_validator_with_the_scenario_loader():
    """A plain co-simulation scenario carrying a [contingency] section has it checked by the
    study's own declarations (registered at import), with key paths."""
    from cosim.scenario import study_sections, validate_scenario

    assert "contingency" in set(study_sections())  # this module imported the study
    bad = scenario()
    bad["contingency"] = {"dispatch_frac": 2.0}
    with pytest.raises(ScenarioError, match=r"contingency\.dispatch_frac: 2 is out of range"):
        validate_scenario(bad)


def test_a_day_at_the_event_step_is_refused_with_the_limit():
    """A contingency runs its whole duration at the event step: a day at 20 ms is refused."""
    from grids.errors import ScenarioError
    from studies.contingency_scenario import MAX_STEPS_PER_CASE, load_contingency_scenario

    scenario = {
        "simulation": {"duration_s": 86400.0, "step_s": 0.02},
        "frequency": {"f0_hz": 60.0, "s_base_mw": 10000.0},
        "events": [{"t_s": 10.0, "kind": "generation_loss", "p_mw": 500.0}],
    }
    with pytest.raises(ScenarioError) as info:
        load_contingency_scenario(scenario)
    text = str(info.value)
    assert "simulation.duration_s" in text and "4,320,000 steps" in text
    assert f"{MAX_STEPS_PER_CASE:,}" in text
    scenario["simulation"]["duration_s"] = 120.0
    assert load_contingency_scenario(scenario).duration_s == 120.0
