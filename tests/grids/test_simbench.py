"""SimBench grids and their year-long profiles (``grids.simbench``, ``grids.profiles_year``).

References and tolerances:
* the per-bus injection of :func:`simbench_profiles` against an independent sum over SimBench's
  raw relative profiles (``net.profiles``) times each element's rated power, per bus, at
  sampled steps (1e-12 MW: the same numbers, summed another way);
* the EV part against the ``HLS_``/``APLS_`` loads of the net (SimBench's charging points);
* the time index: SimBench's 35,136 German wall-clock stamps of 2016 (an hour skipped in March,
  one repeated in October) become a uniform 15-min, time-zone-aware index.
"""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest

from grids.errors import FeederError, ScenarioError
from grids.feeder_model import FeederModel
from grids.feeders import load_feeder
from grids.profiles_year import FeederProfiles
from grids.simbench import (
    StudyCase,
    apply_study_case,
    check_simbench_code,
    code_parts,
    ev_load_mask,
    simbench_codes,
    simbench_profiles,
)

CODE = "1-LV-rural1--2-sw"


@pytest.fixture(scope="module")
def model():
    return FeederModel.from_name(f"simbench:{CODE}")


@pytest.fixture(scope="module")
def profiles(model):
    return simbench_profiles(model.net, model)


def _independent_injection(net, bus, step):
    """Sum rated power x relative profile per element (SimBench's raw tables) per bus."""
    p = pd.Series(0.0, index=bus)
    q = pd.Series(0.0, index=bus)
    load_prof = net.profiles["load"].iloc[step]
    for _, load in net.load[net.load.in_service].iterrows():
        p[load.bus] -= load.p_mw * load.scaling * load_prof[f"{load.profile}_pload"]
        q[load.bus] -= load.q_mvar * load.scaling * load_prof[f"{load.profile}_qload"]
    res_prof = net.profiles["renewables"].iloc[step]
    for _, sgen in net.sgen[net.sgen.in_service].iterrows():
        p[sgen.bus] += sgen.p_mw * sgen.scaling * res_prof[sgen.profile]
        q[sgen.bus] += sgen.q_mvar * sgen.scaling
    sto_prof = net.profiles["storage"].iloc[step]
    for _, sto in net.storage[net.storage.in_service].iterrows():
        p[sto.bus] -= sto.p_mw * sto.scaling * sto_prof[sto.profile]
        q[sto.bus] -= sto.q_mvar * sto.scaling
    return p.to_numpy(), q.to_numpy()


def test_load_feeder_builds_the_named_simbench_grid(model):
    assert model.name == f"simbench:{CODE}"
    assert len(model.bus) == 15 and len(model.net.load) == 28
    assert "load" in model.net.profiles
    net = load_feeder(f"simbench:{CODE}")
    net.load["p_mw"] = 0.0  # a copy: the cached net is untouched
    assert load_feeder(f"simbench:{CODE}").load.p_mw.sum() > 0


def test_unknown_code_lists_close_matches():
    with pytest.raises(FeederError, match=r"closest: 1-LV-rural1--2-sw"):
        load_feeder("simbench:1-LV-rural1--2-sx")
    with pytest.raises(FeederError, match="not a SimBench grid code"):
        check_simbench_code("simbench:nothing-like-a-code")


def test_codes_filter_by_level_scenario_and_pattern():
    lv1 = simbench_codes(voltage_level="lv", scenario=1)
    assert len(lv1) == 12  # six LV grids, with and without switches
    assert all(code_parts(c)["levels"] == "LV" and code_parts(c)["scenario"] == "1" for c in lv1)
    assert simbench_codes(pattern="simbench:1-LV-*--1-sw") == [
        c for c in lv1 if c.endswith("-sw") and not c.endswith("no_sw")
    ]
    assert CODE in simbench_codes()
    with pytest.raises(FeederError, match="not a SimBench level"):
        simbench_codes(voltage_level="XV")
    with pytest.raises(FeederError, match="expected 0, 1 or 2"):
        simbench_codes(scenario=3)


def test_profiles_are_a_year_of_uniform_quarter_hours(profiles, model):
    assert profiles.p_mw.shape == (35_136, 15) and profiles.q_mvar.shape == (35_136, 15)
    np.testing.assert_array_equal(profiles.bus, model.bus)
    assert profiles.step_s == 900.0
    assert str(profiles.time.tz) == "Europe/Berlin"
    assert profiles.time[0] == pd.Timestamp("2016-01-01 00:00", tz="Europe/Berlin")
    assert profiles.time[-1] == pd.Timestamp("2016-12-31 23:45", tz="Europe/Berlin")
    assert set(np.diff(profiles.time.asi8) // 10**9) == {900}


@pytest.mark.parametrize("step", [0, 8_000, 17_500, 35_135])
def test_profiles_equal_the_raw_simbench_tables_per_bus(profiles, model, step):
    p_ref, q_ref = _independent_injection(model.net, model.bus, step)
    np.testing.assert_allclose(profiles.p_mw[step], p_ref, rtol=0, atol=1e-12)
    np.testing.assert_allclose(profiles.q_mvar[step], q_ref, rtol=0, atol=1e-12)


def test_ev_part_is_the_home_charging_loads(profiles, model):
    net = model.net
    mask = ev_load_mask(net)
    assert mask.sum() == 7  # HLS_* profiles in this scenario-2 grid
    assert net.load.profile[mask].str.startswith("HLS_").all()
    ev_buses = set(net.load.bus[mask].astype(int))
    columns = {int(b) for b in model.bus[profiles.ev_p_mw.sum(axis=0) > 0]}
    assert columns == ev_buses
    # consumption positive and never above the charging points' rated power
    assert profiles.ev_p_mw.min() >= 0
    rated = net.load.p_mw[mask].groupby(net.load.bus[mask]).sum()
    peak = pd.Series(profiles.ev_p_mw.max(axis=0), index=model.bus)[rated.index]
    assert (peak <= rated + 1e-12).all()
    # the EV part is included in p_mw: removing it leaves the rest of the injection
    step = int(np.argmax(profiles.ev_p_mw.sum(axis=1)))
    p_ref, _ = _independent_injection(model.net, model.bus, step)
    no_ev = copy.deepcopy(net)
    no_ev.load = no_ev.load[~mask]
    p_rest, _ = _independent_injection(no_ev, model.bus, step)
    np.testing.assert_allclose(p_ref - p_rest, -profiles.ev_p_mw[step], atol=1e-12)


def test_a_grid_without_charging_points_has_no_ev_part(model):
    net = copy.deepcopy(model.net)
    net.load["profile"] = net.load.profile.str.replace(r"^HLS_\w+_", "H0-", regex=True)
    net.load.loc[net.load.profile.str.startswith("H0-"), "profile"] = "H0-A"
    assert not ev_load_mask(net).any()
    assert simbench_profiles(net, model).ev_p_mw is None


def test_not_a_simbench_net_is_refused(model):
    net = copy.deepcopy(model.net)
    net.profiles = {}
    with pytest.raises(FeederError, match="no SimBench profiles"):
        simbench_profiles(net, model)


def test_window_counts_absolute_time_across_daylight_saving(profiles):
    march = profiles.window("2016-03-27", 23 * 3600)  # the 23-hour day
    assert march.n_steps == 92
    assert march.time[-1] == pd.Timestamp("2016-03-27 23:45", tz="Europe/Berlin")
    october = profiles.window("2016-10-30", 25 * 3600)  # the 25-hour day
    assert october.n_steps == 100
    assert october.time[-1] == pd.Timestamp("2016-10-30 23:45", tz="Europe/Berlin")
    first = 303 * 96 - 4  # 303 days before, the March day 4 steps short
    assert profiles.time[first] == pd.Timestamp("2016-10-30 00:00", tz="Europe/Berlin")
    np.testing.assert_array_equal(october.p_mw, profiles.p_mw[first : first + 100])
    week = profiles.window(profiles.time[96 * 7], 7 * 86_400)
    assert week.n_steps == 672 and week.ev_p_mw.shape == (672, 15)


def test_window_refuses_bad_input(profiles):
    with pytest.raises(ScenarioError, match="outside the profiles"):
        profiles.window("2017-01-02", 3600)
    with pytest.raises(ScenarioError, match="runs past the end"):
        profiles.window("2016-12-31", 2 * 86_400)
    with pytest.raises(ScenarioError, match="expected a finite number > 0"):
        profiles.window("2016-05-01", -900)
    with pytest.raises(ScenarioError, match="not a date"):
        profiles.window("the first of May", 900)
    with pytest.raises(ScenarioError, match="not one time"):
        profiles.window("2016-10-30 02:30", 900)  # that wall-clock time happens twice


def test_profiles_validate_shape_step_and_values(profiles):
    time = pd.date_range("2016-01-01", periods=4, freq="15min")
    good = np.zeros((4, 2))
    with pytest.raises(ScenarioError, match=r"p_mw: shape \(3, 2\)"):
        FeederProfiles(time, 900.0, np.arange(2), np.zeros((3, 2)), good)
    with pytest.raises(ScenarioError, match="uniform"):
        FeederProfiles(time, 600.0, np.arange(2), good, good)
    bad = good.copy()
    bad[2, 1] = np.nan
    with pytest.raises(ScenarioError, match="q_mvar: not finite at step 2"):
        FeederProfiles(time, 900.0, np.arange(2), good, bad)


def test_synthetic_profiles_scale_the_base_injection():
    model = FeederModel.from_name("case33bw")
    time = pd.date_range("2016-06-01", periods=96, freq="15min")
    mult = np.linspace(0.5, 1.5, 96)
    synthetic = FeederProfiles.from_model_base(model, time, mult)
    p0, q0 = model.base_injection()
    np.testing.assert_allclose(synthetic.p_mw, mult[:, None] * p0[None, :])
    np.testing.assert_allclose(synthetic.q_mvar, mult[:, None] * q0[None, :])
    assert synthetic.ev_p_mw is None and synthetic.step_s == 900.0
    with pytest.raises(ScenarioError, match="expected"):
        FeederProfiles.from_model_base(model, time, mult[:10])


def test_study_case_sets_simbench_factors(model):
    net = copy.deepcopy(model.net)
    rated_load, rated_pv = net.load.p_mw.copy(), net.sgen.p_mw.copy()
    factors = net.loadcases.loc["lPV"]
    apply_study_case(net, StudyCase.LOW_LOAD_PV)
    np.testing.assert_allclose(net.load.p_mw, rated_load * factors["pload"], rtol=1e-12)
    np.testing.assert_allclose(net.sgen.p_mw, rated_pv * factors["PV_p"], rtol=1e-12)
    assert net.ext_grid.vm_pu.iloc[0] == pytest.approx(factors["Slack_vm"])
    assert (net.storage.p_mw == 0).all()
    with pytest.raises(FeederError, match="expected one of hL, n1"):
        apply_study_case(net, "noon")
