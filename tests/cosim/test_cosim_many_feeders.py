"""Several feeders, each with its own fleet, on one bulk-grid frequency (``[[feeders]]``).

Validation (docs/many_feeders.md): N identical feeders with the same fleet through mosaik give
the frequency of one feeder whose fleet response stands for N feeders (``fleet_replicas = N``,
the replica-count path of the contingency study) within 1e-6 Hz; the swing model's input is
the event plus the sum of every fleet's injection change at every step (power balance), and
each feeder receives exactly its own fleet's injection.
"""

from __future__ import annotations

import numpy as np
import pytest

from cosim.results import read_results
from cosim.scenario import load_scenario
from cosim.specs import from_params, to_params
from cosim.world import build_world, sim_config
from grids.errors import ScenarioError

N_FEEDERS = 3
EVENT_MW = 200.0
EVENT_T_S = 0.5
BASE = {
    "simulation": {"duration_s": 2.0, "step_s": 0.02, "seed": 0},
    "frequency": {"f0_hz": 60.0, "s_base_mw": 2000.0, "h_s": 4.0},
    "events": [{"t_s": EVENT_T_S, "kind": "generation_loss", "p_mw": EVENT_MW}],
}
FLEET = {
    "n_vehicles": 300,
    "preset": "home",
    "policy": "uniform",
    # volt-var: the fleets' reactive power follows their feeder's (time-shifted) voltages
    "control": {"functions": ["volt_var", "freq_watt"]},
}
FEEDER = {"name": "case33bw", "step_s": 0.1}


def _series(frame, suffix: str) -> dict[str, np.ndarray]:
    """Values of every signal ending with ``suffix``, by signal name, in time order."""
    out = {}
    for name in frame["signal"].cat.categories:
        if str(name).endswith(suffix):
            rows = frame[frame["signal"] == name].sort_values("t_s")
            out[str(name)] = rows["value"].to_numpy()
    return out


def _run(data: dict, tmp_path, **kwargs):
    scenario = load_scenario(data)
    built = build_world(scenario, tmp_path, **kwargs)
    built.run()
    frame, meta = read_results(built.results_path)
    return scenario, built, frame, meta


@pytest.fixture(scope="module")
def many_and_one(tmp_path_factory):
    many = dict(
        BASE,
        feeders=[{**FEEDER, "label": f"f{i}", "seed": 7, "fleet": FLEET} for i in range(N_FEEDERS)],
    )
    one = dict(BASE, simulation={**BASE["simulation"], "seed": 7}, feeder=FEEDER, fleet=FLEET)
    a = _run(many, tmp_path_factory.mktemp("many"))
    b = _run(one, tmp_path_factory.mktemp("one"), fleet_replicas=float(N_FEEDERS))
    return a, b


def test_identical_feeders_give_the_replica_frequency(many_and_one):
    (_, _, frame_many, _), (_, _, frame_one, _) = many_and_one
    (f_many,) = _series(frame_many, ".f_hz").values()
    (f_one,) = _series(frame_one, ".f_hz").values()
    assert f_many.shape == f_one.shape
    # the event moved the frequency (the comparison is not between two flat lines)
    assert f_one.min() < 60.0 - 0.05
    np.testing.assert_allclose(f_many, f_one, rtol=0, atol=1e-6)


def test_every_feeder_and_fleet_is_its_own_entity(many_and_one):
    (scenario, built, _, meta), _ = many_and_one
    labels = [e.label for e in scenario.feeders]
    assert labels == [f"f{i}" for i in range(N_FEEDERS)]
    assert sorted(meta["feeders"]) == labels
    fleets = {meta["feeders"][label]["fleet"] for label in labels}
    feeders = {meta["feeders"][label]["feeder"] for label in labels}
    assert len(fleets) == len(feeders) == N_FEEDERS
    into_frequency = [
        c for c in built.connections if c.dest.endswith(".grid") and c.dest_attr == "p_fleet_mw"
    ]
    assert {c.src for c in into_frequency} == fleets
    # in one feeder-group simulator by default: the pairs' loops are closed inside it
    assert {f.split(".")[0] for f in fleets | feeders} == {"FeederGroupSim-0"}
    assert not [
        c
        for c in built.connections
        if c.dest_attr in ("bus_p_mw", "bus_vm_pu") and not c.dest.startswith("Collector")
    ]


def test_feeder_groups_give_the_results_of_one_simulator_per_feeder(many_and_one, tmp_path):
    """The feeder-group simulator closes each pair's voltage loop as the world's connections
    do (fleet -> feeder at the same step, voltages back one step later): every recorded
    value of the grouped run equals that of one FeederSim and one FleetSim per feeder."""
    (scenario, _, frame, meta), _ = many_and_one
    _, _, plain, plain_meta = _run(scenario.raw, tmp_path, feeder_groups=0)
    assert {v["fleet"].split(".")[0] for v in plain_meta["feeders"].values()} == {
        f"FleetSim-{i}" for i in range(N_FEEDERS)
    }
    rename = {}
    for label, ids in meta["feeders"].items():
        for kind, full_id in ids.items():
            rename[plain_meta["feeders"][label][kind]] = full_id

    def table(f, names):
        sig = f["signal"].astype(str)
        for old, new in names.items():
            sig = sig.str.replace(f"{old}.", f"{new}.", regex=False)
        return f.assign(signal=sig).set_index(["signal", "t_s"])["value"].sort_index()

    grouped, per_feeder = table(frame, {}), table(plain, rename)
    assert grouped.index.equals(per_feeder.index)
    np.testing.assert_allclose(grouped.to_numpy(), per_feeder.to_numpy(), rtol=0, atol=1e-12)
    q = grouped[grouped.index.get_level_values(0).str.endswith("fleet.q_mvar")]
    assert np.abs(q).max() > 1e-3  # volt-var acted on the feeders' voltages


def test_power_balance_of_the_swing_input(many_and_one):
    """The swing model's input is the event plus the sum of every fleet's change since the
    first step, at every step; each feeder receives its own fleet's injection."""
    (_, _, frame, meta), _ = many_and_one
    (imbalance,) = _series(frame, ".p_imbalance_mw").values()
    (t_s,) = {
        name: frame[frame["signal"] == name]["t_s"].sort_values().to_numpy()
        for name in frame["signal"].cat.categories
        if str(name).endswith(".p_imbalance_mw")
    }.values()
    p_fleet = _series(frame, "fleet.p_mw")
    assert len(p_fleet) == N_FEEDERS
    change = sum(p - p[0] for p in p_fleet.values())
    event = np.where(t_s >= EVENT_T_S - 1e-9, -EVENT_MW, 0.0)
    np.testing.assert_allclose(imbalance, event + change, rtol=0, atol=1e-9)
    assert np.abs(change).max() > 0.01  # the droop acted
    extra = _series(frame, ".p_extra_mw")
    for label, ids in meta["feeders"].items():
        feeder_p = extra[f"{ids['feeder']}.p_extra_mw"]
        fleet_p = p_fleet[f"{ids['fleet']}.p_mw"]
        # the feeder steps every 0.1 s (5 fleet steps; its outputs are held in between) and
        # receives the injection of its own fleet at that step
        assert feeder_p.shape == fleet_p.shape, label
        np.testing.assert_allclose(feeder_p[::5], fleet_p[::5], rtol=0, atol=1e-12)


def test_one_feeder_scenario_is_unchanged():
    data = dict(BASE, feeder=FEEDER, fleet=FLEET)
    scenario = load_scenario(data)
    assert not scenario.many_feeders
    assert len(scenario.feeders) == 1
    entry = scenario.feeders[0]
    assert entry.feeder == scenario.feeder and entry.fleet == scenario.fleet
    assert entry.seed == scenario.simulation.seed
    assert load_scenario(BASE).feeders == ()


def test_feeders_table_reads_each_feeder_and_fleet():
    data = dict(
        BASE,
        frequency={**BASE["frequency"], "f0_hz": 50.0},
        feeders=[
            {"name": "case33bw", "fleet": {"n_vehicles": 10}},
            {"name": "cigre_mv", "label": "mv", "fleet": {"n_vehicles": 20, "buses": [3, 4]}},
            {"name": "case33bw", "label": "no_fleet", "load_scale": 0.5},
        ],
    )
    scenario = load_scenario(data)
    assert [e.label for e in scenario.feeders] == ["feeder0", "mv", "no_fleet"]
    assert [e.seed for e in scenario.feeders] == [0, 1, 2]  # simulation.seed + i
    assert scenario.feeder == scenario.feeders[0].feeder
    assert scenario.feeders[1].fleet.buses == (3, 4)
    assert scenario.feeders[2].fleet is None and scenario.feeders[2].feeder.load_scale == 0.5
    # every fleet follows the one system frequency
    assert {e.fleet.f_nominal_hz for e in scenario.feeders if e.fleet} == {50.0}
    for entry in scenario.feeders:  # plain parameters for a remote process and back
        assert from_params(type(entry), to_params(entry)) == entry


def test_feeders_problems_name_their_table():
    data = dict(
        BASE,
        fleet={"n_vehicles": 1},
        feeders=[
            {"name": "nowhere", "fleet": {"n_vehicles": -1}},
            {"name": "case33bw", "label": "feeder0", "fleet": {"n_vehicles": 5, "buses": [99]}},
            {"name": "case33bw", "label": "x y", "seed": -3, "fleet": {"f_nominal_hz": 50.0}},
        ],
    )
    with pytest.raises(ScenarioError) as info:
        load_scenario(data)
    text = "\n".join(info.value.problems)
    for expected in (
        "feeders: [[feeders]] replaces [feeder] and [fleet]",
        "feeders[0].name: 'nowhere' is not an embedded feeder",
        "feeders[0].fleet.n_vehicles: -1",
        "feeders[1].label: 'feeder0' is also feeders[0]'s",
        "feeders[1].fleet.buses: 99 is not a bus of the feeder case33bw",
        "feeders[2].label: 'x y' is not a label",
        "feeders[2].seed: -3",
        "feeders[2].fleet.f_nominal_hz: 50 Hz disagrees with frequency.f0_hz (60 Hz)",
    ):
        assert expected in text, expected
    # and the stray [fleet] itself (no feeder for it)
    assert len(info.value.problems) == 9


def test_feeder_events_and_same_time_loop_refused_with_several_feeders():
    data = dict(
        BASE,
        simulation={**BASE["simulation"], "coupling": "same_time_loop"},
        events=[*BASE["events"], {"t_s": 1.0, "kind": "line_outage", "line": 3}],
        feeders=[
            {"name": "case33bw", "fleet": FLEET},
            {"name": "case33bw", "fleet": {**FLEET, "setpoint_profile": __file__}},
        ],
    )
    with pytest.raises(ScenarioError) as info:
        load_scenario(data)
    text = "\n".join(info.value.problems)
    assert "events: 'line_outage' with several [[feeders]]" in text
    assert "simulation.coupling: 'same_time_loop' with several [[feeders]]" in text
    assert "feeders[1].fleet.setpoint_profile" in text


def test_violations_are_checked_per_feeder(many_and_one):
    """Bus numbers repeat across feeders: each feeder is checked on its own signals and named
    in the violation (case33bw at full load is below ANSI range A at its far end)."""
    from cosim.world import violations_of_run

    (scenario, _, frame, meta), _ = many_and_one
    ids = {label: list(v.values()) for label, v in meta["feeders"].items()}
    violations, not_checked = violations_of_run(scenario, frame, simulator_ids=ids)
    low_a = [v for v in violations if v.limit.startswith("ANSI C84.1 range A")]
    assert sorted(v.element.split(":")[0] for v in low_a) == sorted(ids)
    assert all(v.worst_value < 0.95 for v in low_a)
    assert len(not_checked) == N_FEEDERS  # case33bw has no line ratings, said per feeder


def test_run_metrics_add_the_fleets_up_sample_and_hold():
    """Two fleets recorded at different times (the collector stores a value in the
    high-rate windows only when it changed): each is held until its next sample, then summed;
    the energy is the sum of each fleet's own energy."""
    import pandas as pd

    from cosim.world import metrics_from_results

    rows = [
        (0.0, "FleetSim-0.fleet.p_mw", 1.0),
        (0.0, "FleetSim-1.fleet.p_mw", -2.0),
        (10.0, "FleetSim-0.fleet.p_mw", 3.0),  # fleet 1 unchanged, held at -2
        (20.0, "FleetSim-1.fleet.p_mw", 0.5),
    ]
    frame = pd.DataFrame(rows, columns=["t_s", "signal", "value"])
    frame["signal"] = frame["signal"].astype("category")
    metrics = metrics_from_results(frame, duration_s=30.0)
    # fleet 0: 1 MW for 10 s, 3 MW for 20 s; fleet 1: -2 MW for 20 s, 0.5 MW for 10 s
    e_kwh = (1 * 10 + 3 * 20 - 2 * 20 + 0.5 * 10) * 1000 / 3600
    assert metrics["fleet_energy_kwh"] == pytest.approx(e_kwh, rel=1e-12)
    assert metrics["max_fleet_export_mw"] == pytest.approx(3.5)  # 3 + 0.5 at t = 20 s
    assert metrics["max_fleet_import_mw"] == pytest.approx(1.0)  # 1 - 2 at t = 0


def test_feeder_groups_in_processes_of_their_own(tmp_path):
    """``remote``: the feeder groups run in processes of their own (one per core, at most
    one per feeder) and give the in-process numbers."""
    from cosim.scenario import RemoteSim

    data = dict(
        BASE,
        simulation={**BASE["simulation"], "duration_s": 1.0},
        feeders=[
            {**FEEDER, "label": f"f{i}", "fleet": {**FLEET, "n_vehicles": 50}} for i in range(2)
        ],
    )
    _, _, local, _ = _run(data, tmp_path / "local")
    _, _, remote, meta = _run(data, tmp_path / "remote", remote=RemoteSim.FLEET)
    sims = {ids["fleet"].split(".")[0] for ids in meta["feeders"].values()}
    assert sims <= {"FeederGroupSim-0", "FeederGroupSim-1"}
    (f_local,) = _series(local, ".f_hz").values()
    (f_remote,) = _series(remote, ".f_hz").values()
    np.testing.assert_allclose(f_remote, f_local, rtol=0, atol=1e-9)
    assert "cmd" in sim_config(RemoteSim.FLEET, grouped=True)["FeederGroupSim"]
    assert "python" in sim_config(RemoteSim.NONE, grouped=True)["FeederGroupSim"]


def test_a_balanced_and_a_three_phase_feeder_on_one_frequency(tmp_path):
    """A pandapower feeder and an OpenDSS one (ieee13, three-phase engine) side by side: the
    grouped run equals one simulator per feeder, and the swing input is the event plus both
    fleets' changes."""
    data = dict(
        BASE,
        simulation={**BASE["simulation"], "duration_s": 1.0},
        feeders=[
            {**FEEDER, "label": "balanced", "fleet": {**FLEET, "n_vehicles": 100}},
            {
                "name": "ieee13",
                "step_s": 0.1,
                "label": "dss",
                "fleet": {**FLEET, "n_vehicles": 100},
            },
        ],
    )
    scenario, _, grouped, meta = _run(data, tmp_path / "grouped")
    assert [e.feeder.three_phase for e in scenario.feeders] == [False, True]
    _, _, plain, _ = _run(data, tmp_path / "plain", feeder_groups=0)
    (f_grouped,) = _series(grouped, ".f_hz").values()
    (f_plain,) = _series(plain, ".f_hz").values()
    np.testing.assert_allclose(f_grouped, f_plain, rtol=0, atol=1e-12)
    (imbalance,) = _series(grouped, ".p_imbalance_mw").values()
    p_fleet = _series(grouped, "fleet.p_mw")
    change = sum(p - p[0] for p in p_fleet.values())
    n = imbalance.size
    t_s = np.arange(n) * BASE["simulation"]["step_s"]
    event = np.where(t_s >= EVENT_T_S - 1e-9, -EVENT_MW, 0.0)
    np.testing.assert_allclose(imbalance, event + change, rtol=0, atol=1e-9)
    vuf = _series(grouped, ".vuf_max_percent")  # the three-phase feeder's own outputs
    assert list(vuf) == [f"{meta['feeders']['dss']['feeder']}.vuf_max_percent"]


def test_one_feeders_table_is_the_one_feeder_run(tmp_path):
    """One ``[[feeders]]`` table is a one-feeder scenario (its seed included)."""
    table = dict(BASE, feeders=[{**FEEDER, "seed": 7, "fleet": FLEET}])
    plain = dict(BASE, simulation={**BASE["simulation"], "seed": 7}, feeder=FEEDER, fleet=FLEET)
    a, b = load_scenario(table), load_scenario(plain)
    assert not a.many_feeders and a.feeder == b.feeder and a.fleet == b.fleet
    _, _, frame_a, _ = _run(table, tmp_path / "a")
    _, _, frame_b, _ = _run(plain, tmp_path / "b")
    (f_a,) = _series(frame_a, ".f_hz").values()
    (f_b,) = _series(frame_b, ".f_hz").values()
    np.testing.assert_array_equal(f_a, f_b)
