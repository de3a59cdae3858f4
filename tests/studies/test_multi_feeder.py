"""Many feeders on one frequency, direct loop (studies.multi_feeder).

References: the contingency study's replica path (one feeder, ``feeder_replicas = N``) for N
identical feeders (1e-6 Hz); the same scenario without a feeder for the "response off"
re-run of that feeder (its fleet holds its dispatch, so it must give the frequency of a
system without it, 1e-6 Hz); the swing input's power balance at every step; per-feeder
trips adding up to the run's totals.
"""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from grids.errors import ScenarioError
from studies.contingency import load_contingency_scenario, simulate_case
from studies.multi_feeder import (
    load_multi_feeder_scenario,
    run_multi_feeder_study,
    simulate_many_feeders,
)

N = 3
EVENT_MW = 150.0
BASE = {
    "simulation": {"duration_s": 3.0, "step_s": 0.02, "seed": 3},
    "frequency": {"f0_hz": 60.0, "s_base_mw": 2000.0, "h_s": 4.0, "r_pu": 0.05, "d_pu": 1.0},
    "events": [{"t_s": 0.5, "kind": "generation_loss", "p_mw": EVENT_MW}],
    "contingency": {
        "feeder_step_s": 0.5,
        "sag_vm_pu": 0.45,
        "trip": {"uv2_v_pu": 0.5, "uv2_t_s": 0.16},
    },
}
FLEET = {
    "n_vehicles": 300,
    "preset": "home",
    "control": {"functions": ["freq_watt"], "abnormal_category": "III", "trip": {"mc_low_v_pu": 0}},
}


def _many(n_vehicles=(300, 300, 300), seeds=(3, 3, 3)) -> dict:
    feeders = [
        {"name": "case33bw", "label": f"f{i}", "seed": s, "fleet": {**FLEET, "n_vehicles": n}}
        for i, (n, s) in enumerate(zip(n_vehicles, seeds, strict=True))
    ]
    return dict(copy.deepcopy(BASE), feeders=feeders)


@pytest.fixture(scope="module")
def identical():
    return load_multi_feeder_scenario(_many())


@pytest.fixture(scope="module")
def replica():
    data = dict(copy.deepcopy(BASE), feeder={"name": "case33bw"}, fleet=FLEET)
    data["contingency"]["feeder_replicas"] = float(N)
    return load_contingency_scenario(data)


@pytest.mark.parametrize("case", ["droop", "trip"])
@pytest.mark.parametrize("vectorised", [True, False])
def test_identical_feeders_equal_the_replica_path(identical, replica, case, vectorised):
    reference = simulate_case(replica, case)
    result, rows, _ = simulate_many_feeders(identical, case, vectorised=vectorised)
    assert reference.f_hz.min() < 60.0 - 0.1  # the event moved the frequency
    np.testing.assert_allclose(result.f_hz, reference.f_hz, rtol=0, atol=1e-6)
    for key in ("fleet_tripped_mw", "n_vehicles_tripped", "fleet_energy_kwh"):
        assert result.metrics[key] == pytest.approx(reference.metrics[key], rel=1e-9, abs=1e-9)
    if case == "trip":  # the sag trips vehicles on every feeder, alike
        assert reference.metrics["n_vehicles_tripped"] > 0
        assert len({r["n_vehicles_tripped"] for r in rows}) == 1
        assert sum(r["n_vehicles_tripped"] for r in rows) == reference.metrics["n_vehicles_tripped"]


@pytest.fixture(scope="module")
def different():
    return load_multi_feeder_scenario(_many(n_vehicles=(100, 300, 600), seeds=(1, 2, 3)))


@pytest.mark.parametrize("case", ["droop", "trip"])
def test_power_balance_and_trips_add_up(different, case):
    result, rows, history = simulate_many_feeders(different, case)
    # the bulk grid sees the sum of the feeders' injection changes, step by step
    np.testing.assert_allclose(history.sum(axis=1), result.p_fleet_mw, rtol=0, atol=1e-12)
    assert history.shape == (result.t_s.size, N)
    m = result.metrics
    assert sum(r["fleet_tripped_mw"] for r in rows) == pytest.approx(m["fleet_tripped_mw"])
    assert sum(r["n_vehicles_tripped"] for r in rows) == m["n_vehicles_tripped"]
    assert [r["n_vehicles"] for r in rows] == [100, 300, 600]
    # vectorised fleet == one fleet per feeder (the same vehicles and settings)
    loop, loop_rows, loop_history = simulate_many_feeders(different, case, vectorised=False)
    np.testing.assert_allclose(loop.f_hz, result.f_hz, rtol=0, atol=1e-9)
    np.testing.assert_allclose(loop_history, history, rtol=0, atol=1e-9)
    assert loop_rows == rows
    if case == "trip":
        tripped = [r["n_vehicles_tripped"] for r in rows]
        assert tripped[0] < tripped[1] < tripped[2]  # more vehicles, more trips
    else:  # every feeder's droop raises its export after the event
        assert all(r["fleet_p_max_mw"] > 0 for r in rows)


def test_response_off_equals_the_system_without_that_feeder(different):
    """With feeder 1's response off the bulk grid sees no change from it: the re-run gives the
    frequency of the same system with feeder 1 removed (the feeders are coupled through the
    frequency only)."""
    result, _, history = simulate_many_feeders(different, "droop", off={1})
    assert np.abs(history[:, 1]).max() < 1e-9
    data = _many(n_vehicles=(100, 600), seeds=(1, 3))
    without = simulate_many_feeders(load_multi_feeder_scenario(data), "droop")[0]
    np.testing.assert_allclose(result.f_hz, without.f_hz, rtol=0, atol=1e-6)


def test_study_reports_each_feeders_trips_and_nadir_effect(different, tmp_path):
    droop = run_multi_feeder_study(different, case="droop", out_dir=tmp_path)
    trip = run_multi_feeder_study(different, case="trip", workers=2)
    assert droop["case"] == "droop" and [r["feeder"] for r in droop["feeders"]] == [
        "f0",
        "f1",
        "f2",
    ]
    effects = [r["nadir_effect_hz"] for r in droop["feeders"]]
    # droop lifts the nadir, more with more vehicles
    assert 0 < effects[0] < effects[1] < effects[2]
    for r in droop["feeders"]:
        assert r["nadir_effect_hz"] == pytest.approx(
            droop["metrics"]["f_nadir_hz"] - r["f_nadir_without_hz"], abs=1e-12
        )
    # a trip deepens it
    assert all(r["nadir_effect_hz"] < 0 for r in trip["feeders"])
    assert trip["metrics"]["f_nadir_hz"] < droop["metrics"]["f_nadir_hz"]
    for name in ("report.html", "feeders.csv", "many_feeders_frequency.png"):
        assert (tmp_path / name).exists(), name
    html = (tmp_path / "report.html").read_text()
    assert "nadir_effect_hz" in html and "f2" in html


def test_bad_input_is_refused():
    data = _many()
    for feeder in data["feeders"]:
        del feeder["fleet"]
    with pytest.raises(ScenarioError, match="no feeder has a fleet"):
        load_multi_feeder_scenario(data)
    bad = _many()
    bad["feeders"][1]["fleet"]["n_vehicles"] = "many"
    with pytest.raises(ScenarioError) as info:
        load_multi_feeder_scenario(bad)
    assert any(p.startswith("feeders[1].fleet.n_vehicles") for p in info.value.problems)
    with pytest.raises(ScenarioError, match=r"off: \[5\] are not feeder indices"):
        simulate_many_feeders(load_multi_feeder_scenario(_many()), "droop", off={5})
    with pytest.raises(ScenarioError, match="workers"):
        run_multi_feeder_study(_many(), workers=0, attribution=False)
    with pytest.raises(ScenarioError, match="unknown case"):
        run_multi_feeder_study(_many(), case="wobble", attribution=False)


def test_what_the_study_does_not_model_is_refused():
    """Fault events (the fault names no feeder) and three-phase feeders (this study's power
    flow is the balanced one): refused, each with its key path."""
    data = _many()
    data["events"].append({"t_s": 1.0, "kind": "fault", "bus": 17, "duration_s": 0.1})
    with pytest.raises(ScenarioError) as info:
        load_multi_feeder_scenario(data)
    assert any(p.startswith("events: 'fault' with several") for p in info.value.problems)
    data = _many()
    data["feeders"][2] = {"name": "ieee13", "label": "dss", "fleet": {"n_vehicles": 10}}
    with pytest.raises(ScenarioError, match=r"feeders\[2\].name: 'ieee13' is a three-phase"):
        load_multi_feeder_scenario(data)


def test_command_line(tmp_path, capsys):
    """``v2g-cosim many-feeders``: the per-feeder table in JSON and text, errors exit 2."""
    import tomli_w

    from cosim.cli import main

    path = tmp_path / "many.toml"
    path.write_bytes(tomli_w.dumps(_many(n_vehicles=(50, 100, 150), seeds=(1, 2, 3))).encode())
    assert main(["many-feeders", "--scenario", str(path), "--no-attribution", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["case"] == "droop" and [r["n_vehicles"] for r in out["feeders"]] == [50, 100, 150]
    assert "nadir_effect_hz" not in out["feeders"][0]
    assert (
        main(["many-feeders", "--scenario", str(path), "--case", "trip", "--no-attribution"]) == 0
    )
    text = capsys.readouterr().out
    assert "case trip: nadir" in text and "tripped_mw" in text and "f2" in text
    assert main(["many-feeders", "--scenario", str(path), "--workers", "0"]) == 2
    assert "workers: 0 is not an integer in 1..64" in capsys.readouterr().err
