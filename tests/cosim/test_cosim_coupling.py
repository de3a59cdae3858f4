"""Validation of the coupling: mosaik result == a direct loop over the same physics, energy
conservation across simulators, the built world's graph, the CLI run, Ctrl-C."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from cosim.results import read_results, wide
from cosim.scenario import load_scenario
from cosim.world import Connection, build_world, run_scenario

SCENARIOS = Path(str(resources.files("studies.scenarios")))

COUPLED = {
    "simulation": {
        "duration_s": 1800.0,
        "step_s": 300.0,
        "fast_step_s": 0.5,
        "window_s": [2.0, 18.0],
        "seed": 3,
    },
    "feeder": {"name": "case33bw", "method": "ac", "transformer": {"rating_mva": 5.0}},
    "fleet": {
        "n_vehicles": 40,
        "preset": "home",
        "policy": "uniform",
        "control": {"functions": ["volt_var", "freq_watt"]},
    },
    # a small system so that the fleet's droop visibly moves the frequency
    "frequency": {"f0_hz": 60.0, "s_base_mw": 20.0, "h_s": 3.0, "d_pu": 1.0, "r_pu": 0.05},
    "events": [{"t_s": 900.0, "kind": "generation_loss", "p_mw": 1.0}],
}


@pytest.fixture(scope="module")
def coupled_run(tmp_path_factory):
    scenario = load_scenario(COUPLED)
    out = tmp_path_factory.mktemp("coupled")
    result = run_scenario(scenario, out, progress=False)
    frame, meta = read_results(result.results_path)
    return scenario, result, frame, meta


def direct_loop(scenario):
    """The same physics stepped by hand, with the coupling rules of docs/architecture.md:
    the fleet sees the feeder voltage and the frequency of the previous step of their
    simulators; the feeder and the frequency model see the fleet power of the same step."""
    from grids.feeders import load_feeder
    from grids.frequency import SwingModel
    from grids.powerflow import ACPowerFlow, prepare_net
    from grids.thermal import CoolingMode, ThermalParameters, TransformerThermalModel
    from vehicle_models.fleet import ChargingPolicy, Fleet, FleetPreset

    sim = scenario.simulation
    res = sim.fast_step_s
    slow = round(sim.step_s / res)
    until = round(sim.duration_s / res)
    ((w0, w1),) = [(round(a / res), round(b / res)) for a, b in scenario.event_windows_s()]
    fleet_times = sorted(set(range(0, until, slow)) | set(range(w0, w1 + 1)))
    feeder_times = set(range(0, until, slow))
    t_event = round(scenario.events[0].t_s / res)

    net = prepare_net("case33bw")
    pf = ACPowerFlow(net)
    base_p, base_q = pf.base_injection()
    pos = {int(b): i for i, b in enumerate(pf.bus)}
    buses = sorted(int(b) for b in load_feeder("case33bw").load.bus.unique())
    fleet = Fleet.sample(
        scenario.fleet.n_vehicles,
        buses=np.asarray(buses),
        preset=FleetPreset.HOME,
        policy=ChargingPolicy.UNIFORM,
        seed=sim.seed,
        settings=scenario.fleet.settings,  # parsed once by the scenario
    )
    swing_params = scenario.frequency.params  # parsed once by the scenario
    swing = SwingModel(swing_params)
    thermal = None
    out = {"t": [], "fleet_p": [], "f": [], "vm_min": {}, "hot_spot": {}}
    vm_feeder = None  # last feeder output (all buses)
    f_prev = swing_params.f0_hz
    f_seen = swing_params.f0_hz
    vm_seen = np.ones(len(fleet.buses))
    p_ref = None
    for k, t in enumerate(fleet_times):
        nxt = fleet_times[k + 1] if k + 1 < len(fleet_times) else until
        if nxt > until:
            nxt = until
        dt = (nxt - t) * res
        f_seen = f_prev
        if vm_feeder is not None:
            vm_seen = np.array([vm_feeder[pos[b]] for b in fleet.buses])
        r = fleet.step(t_s=t * res, dt_s=dt, vm_pu=vm_seen, f_hz=f_seen)
        p_bus = np.zeros(len(pf.bus))
        q_bus = np.zeros(len(pf.bus))
        for b, p, q in zip(r.bus, r.p_mw, r.q_mvar, strict=True):
            p_bus[pos[int(b)]] += p
            q_bus[pos[int(b)]] += q
        p_fleet = float(np.sum(r.p_mw))
        if t in feeder_times:
            ac = pf.solve(base_p + p_bus, base_q + q_bus)
            vm_new = ac.vm_pu[0]
            load_pu = float(np.hypot(ac.p_slack_mw[0], ac.q_slack_mvar[0])) / 5.0
            if thermal is None:
                thermal = TransformerThermalModel(
                    ThermalParameters.for_cooling(CoolingMode.ONAN),
                    n=1,
                    load_pu0=load_pu,
                    ambient_c0=20.0,
                )
            out["vm_min"][t * res] = float(vm_new.min())
            out["hot_spot"][t * res] = float(thermal.hot_spot_c[0])
            thermal.step(load_pu=np.array([load_pu]), ambient_c=np.array([20.0]), dt_s=slow * res)
        else:
            vm_new = None
        in_window = w0 <= t < w1
        if p_ref is None or not in_window or t == w0:
            p_ref = p_fleet
        p_event = -scenario.events[0].p_mw if t >= t_event else 0.0
        out["t"].append(t * res)
        out["fleet_p"].append(p_fleet)
        out["f"].append(swing.f_hz)
        swing.step(dt_s=dt, p_imbalance_mw=p_fleet - p_ref + p_event)
        f_prev = out["f"][-1]
        if vm_new is not None:
            vm_feeder = vm_new
    return out


def test_cosimulation_equals_a_direct_loop_over_the_same_physics(coupled_run):
    scenario, result, frame, _ = coupled_run
    ref = direct_loop(scenario)
    table = wide(frame)
    t = np.array(ref["t"])
    fleet_p = table.filter(like="FleetSim-0.fleet.p_mw").iloc[:, 0].reindex(t, method="ffill")
    f_hz = table.filter(like="FrequencySim-0.grid.f_hz").iloc[:, 0].reindex(t, method="ffill")
    assert len(t) == 5 + 41  # quasi-static steps (900 s is in the window) + 898 .. 918 s
    np.testing.assert_allclose(fleet_p.to_numpy(), ref["fleet_p"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(f_hz.to_numpy(), ref["f"], rtol=0, atol=1e-12)
    t_feeder = np.array(sorted(ref["vm_min"]))
    vm_min = table.filter(like=".vm_min_pu").iloc[:, 0].reindex(t_feeder)
    hot = table.filter(like=".hot_spot_c").iloc[:, 0].reindex(t_feeder)
    np.testing.assert_allclose(vm_min, [ref["vm_min"][x] for x in t_feeder], rtol=0, atol=1e-12)
    np.testing.assert_allclose(hot, [ref["hot_spot"][x] for x in t_feeder], rtol=0, atol=1e-12)
    # the fleet's droop acts: the event makes the fleet charge less / discharge
    assert fleet_p.loc[901.0] > fleet_p.loc[899.0]
    assert result.metrics["f_nadir_hz"] == pytest.approx(min(ref["f"]), abs=1e-12)


def test_energy_is_conserved_across_simulators(coupled_run):
    """Fleet: stored-energy change = -(energy injected) - losses - driving energy (each step);
    feeder: what the feeder received from the fleet is what the fleet injected, and the slack
    supplies load - fleet injection + losses (AC power balance, 1e-6 MW)."""
    scenario, _result, frame, _ = coupled_run
    table = wide(frame)
    col = {
        name: table.filter(like=f"FleetSim-0.fleet.{name}").iloc[:, 0]
        for name in ("p_mw", "e_kwh", "e_loss_kwh", "e_driven_kwh")
    }
    t = np.array(direct_loop_times(scenario))
    p = col["p_mw"].reindex(t, method="ffill").to_numpy()
    e = col["e_kwh"].reindex(t, method="ffill").to_numpy()
    loss = col["e_loss_kwh"].reindex(t, method="ffill").to_numpy()
    driven = col["e_driven_kwh"].reindex(t, method="ffill").to_numpy()
    dt = np.diff(np.append(t, scenario.simulation.duration_s))
    # e, loss and driven are after each step; the first step's changes are in e[0] already
    lhs = e[-1] - e[0]
    rhs = -np.sum(p[1:] * dt[1:]) * 1000 / 3600 - (loss[-1] - loss[0]) - (driven[-1] - driven[0])
    assert lhs == pytest.approx(rhs, abs=1e-6 * max(1.0, abs(lhs)))
    assert abs(np.sum(p * dt)) > 0  # the check is not vacuous
    feeder = {
        name: table.filter(like=f"FeederSim-0.grid.{name}").iloc[:, 0]
        for name in ("p_extra_mw", "p_load_mw", "p_loss_mw", "p_slack_mw")
    }
    t_feeder = np.arange(0.0, scenario.simulation.duration_s, scenario.simulation.step_s)
    fleet_at_feeder = col["p_mw"].reindex(t_feeder, method="ffill").to_numpy()
    extra = feeder["p_extra_mw"].reindex(t_feeder).to_numpy()
    np.testing.assert_allclose(extra, fleet_at_feeder, rtol=0, atol=1e-12)
    balance = (
        feeder["p_load_mw"] - feeder["p_extra_mw"] + feeder["p_loss_mw"] - feeder["p_slack_mw"]
    ).reindex(t_feeder)
    assert np.max(np.abs(balance.to_numpy())) < 1e-6


def direct_loop_times(scenario) -> list[float]:
    res = scenario.simulation.fast_step_s
    slow = round(scenario.simulation.step_s / res)
    until = round(scenario.simulation.duration_s / res)
    ((w0, w1),) = [(round(a / res), round(b / res)) for a, b in scenario.event_windows_s()]
    return [x * res for x in sorted(set(range(0, until, slow)) | set(range(w0, w1 + 1)))]


def test_results_carry_the_scenario_seed_and_versions(coupled_run):
    _scenario, _result, _frame, meta = coupled_run
    assert meta["seed"] == 3
    assert meta["scenario"]["fleet"]["n_vehicles"] == 40
    assert {"mosaik", "numpy", "pandapower", "v2g-cosim", "python"} <= set(meta["versions"])
    assert meta["time_resolution_s"] == 0.5


def test_world_graph(tmp_path):
    """assert_graph: the entities and connections mosaik holds for the built world."""
    (tmp_path / "sp.csv").write_text("t_s,dispatch_mw\n0,0.1\n")
    fleet = {**COUPLED["fleet"], "latency_s": 2.0, "setpoint_profile": "sp.csv"}
    fleet["setpoint_column"] = "dispatch_mw"
    data = {**COUPLED, "fleet": fleet}
    built = build_world(load_scenario(data, base_dir=tmp_path), tmp_path, record=False)
    try:
        edges = {tuple(sorted(e)) for e in built.world.entity_graph.edges()}
        assert edges == {
            ("FeederSim-0.grid", "FleetSim-0.fleet"),
            ("FleetSim-0.fleet", "FrequencySim-0.grid"),
            ("EventSim-0.events", "FrequencySim-0.grid"),
            ("FleetSim-0.fleet", "ProfileSim-0.profile"),
        }
        assert set(built.connections) == {
            Connection("FleetSim-0.fleet", "bus_p_mw", "FeederSim-0.grid", "bus_p_mw"),
            Connection("FleetSim-0.fleet", "bus_q_mvar", "FeederSim-0.grid", "bus_q_mvar"),
            # local measurements: one step of the source
            Connection("FeederSim-0.grid", "bus_vm_pu", "FleetSim-0.fleet", "bus_vm_pu", 1),
            Connection("FleetSim-0.fleet", "p_mw", "FrequencySim-0.grid", "p_fleet_mw"),
            Connection("FrequencySim-0.grid", "f_hz", "FleetSim-0.fleet", "f_hz", 1),
            # set-point channel: the latency (2 s = 4 steps of 0.5 s)
            Connection(
                "ProfileSim-0.profile", "dispatch_mw", "FleetSim-0.fleet", "p_setpoint_mw", 4
            ),
            Connection("EventSim-0.events", "p_event_mw", "FrequencySim-0.grid", "p_event_mw"),
            Connection("EventSim-0.events", "island", "FrequencySim-0.grid", "island"),
        }
        assert built.until == 3600
    finally:
        built.world.shutdown()


def test_setpoint_channel_latency(tmp_path):
    """An aggregator's dispatch reaches the fleet after fleet.latency_s; infeasible parts are
    reported as unmet."""
    (tmp_path / "sp.csv").write_text("t_s,p_setpoint_mw\n0,-0.05\n600,0.05\n")
    data = {
        "simulation": {"duration_s": 1200.0, "step_s": 60.0},
        "feeder": {"name": "case33bw"},
        "fleet": {
            "n_vehicles": 40,
            "buses": [5, 17],
            "setpoint_profile": "sp.csv",
            "latency_s": 120.0,
        },
    }
    result = run_scenario(load_scenario(data, base_dir=tmp_path), tmp_path, progress=False)
    table = wide(result.frame())
    seen = table["FleetSim-0.fleet.p_setpoint_seen_mw"]
    p = table["FleetSim-0.fleet.p_mw"]
    unmet = table["FleetSim-0.fleet.p_setpoint_unmet_mw"]
    assert np.isnan(seen.loc[60.0])  # nothing received yet: the charging policy applies
    assert seen.loc[120.0] == pytest.approx(-0.05) and seen.loc[660.0] == pytest.approx(-0.05)
    assert seen.loc[720.0] == pytest.approx(0.05)  # 600 s + 120 s latency
    np.testing.assert_allclose((p + unmet).loc[120.0:], seen.loc[120.0:], atol=1e-9)


def test_frequency_only_scenario_runs_through_the_cli(tmp_path, capsys):
    from cosim.cli import main

    code = main(["run", str(SCENARIOS / "frequency_only.toml"), "--out", str(tmp_path), "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    # 500 MW lost on 10 GW, H = 5 s, D = 1, R = 0.05: steady state -ΔP/(D + 1/R) = 1/21 pu
    assert out["metrics"]["f_final_hz"] == pytest.approx(60 - 60 * 0.05 / 21, abs=2e-3)
    assert out["metrics"]["max_abs_rocof_hz_per_s"] == pytest.approx(0.3, abs=0.01)
    assert Path(out["results"]).exists()


def test_cli_run_reports_scenario_problems(tmp_path, capsys):
    from cosim.cli import main

    path = tmp_path / "bad.toml"
    path.write_text("[simulation]\nduration_s = -1\nstep_s = 1\nfoo = 2\n")
    assert main(["run", str(path), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "simulation.duration_s: -1 is out of range: expected a number > 0 [s]" in err
    assert "simulation.foo: unknown key" in err
    assert main(["run", str(SCENARIOS / "frequency_only.toml"), "--set", "nokey"]) == 2
    assert "--set 'nokey': expected KEY=VALUE" in capsys.readouterr().err


def test_feeder_only_scenario_with_profile_and_parquet(tmp_path):
    scenario = load_scenario(SCENARIOS / "feeder_only.toml")
    result = run_scenario(scenario, tmp_path, progress=False)
    frame, _ = read_results(result.results_path)
    assert result.results_path.suffix == ".parquet"
    load = wide(frame).filter(like="FeederSim-0.grid.load_pu_used").iloc[:, 0]
    # 12:00 .. 17:45 local time from demo_load.csv (15-min rows, 0.74 at 12:00)
    assert load.iloc[0] == pytest.approx(0.74)
    assert len(load) == 24
    assert result.metrics["min_vm_pu"] < 0.95


def test_ctrl_c_keeps_what_was_written(tmp_path):
    from cosim import simulators

    scenario = load_scenario(SCENARIOS / "frequency_only.toml")
    original = simulators.Collector.step

    def interrupted(self, time, inputs, max_advance):
        if time * self.time_resolution >= 10.0:
            raise KeyboardInterrupt
        return original(self, time, inputs, max_advance)

    simulators.Collector.step = interrupted
    try:
        with pytest.raises(KeyboardInterrupt):
            run_scenario(scenario, tmp_path, progress=False)
    finally:
        simulators.Collector.step = original
    # an interrupted run is not committed: its rows are in the partial file
    assert not (tmp_path / "results.h5").exists()
    frame, meta = read_results(tmp_path / "results.partial.h5")
    assert meta["seed"] == 0
    assert 9.0 < frame["t_s"].max() < 10.0


def test_output_record_selects_attributes_and_parquet_metadata(tmp_path):
    scenario = load_scenario(
        SCENARIOS / "frequency_only.toml",
        overrides={
            "simulation.duration_s": 2.0,
            "output.record": ["f_hz", "p_event_mw"],
            "output.format": "parquet",
            "output.filename": "freq.parquet",
            "output.flush_every": 7,
        },
    )
    result = run_scenario(scenario, tmp_path, progress=False)
    frame, meta = read_results(tmp_path / "freq.parquet")
    assert set(frame["signal"].astype(str)) == {
        "FrequencySim-0.grid.f_hz",
        "EventSim-0.events.p_event_mw",
    }
    assert len(frame) == 2 * 100  # 2 s at 20 ms, both signals at every step
    assert meta["scenario"]["output"]["record"] == ["f_hz", "p_event_mw"]
    assert result.metrics["f_nadir_hz"] < 60.0


def test_line_outage_deenergizes_the_branch_and_trips_its_vehicles(tmp_path):
    """case33bw line 16 feeds bus 17 only: after the outage bus 17 reports 0 pu, is left out
    of the voltage range, and the vehicles there trip (from the next step: measurement delay)."""
    data = {
        "simulation": {"duration_s": 3600.0, "step_s": 300.0},
        "feeder": {"name": "case33bw"},
        "fleet": {"n_vehicles": 20, "buses": [17, 5], "policy": "uniform"},
        "events": [{"t_s": 1800.0, "kind": "line_outage", "line": 16}],
    }
    result = run_scenario(load_scenario(data), tmp_path, progress=False)
    table = wide(result.frame())
    vm17 = table["FeederSim-0.grid.bus_vm_pu[17]"]
    assert vm17.loc[1500.0] > 0.9 and vm17.loc[1800.0] == 0.0
    assert table["FeederSim-0.grid.n_deenergized_buses"].loc[1800.0] == 1.0
    assert table["FeederSim-0.grid.vm_min_pu"].loc[1800.0] > 0.9
    tripped = table["FleetSim-0.fleet.n_tripped"]
    assert tripped.loc[1800.0] == 0.0 and tripped.loc[2100.0] > 0.0
    assert table["FleetSim-0.fleet.bus_p_mw[17]"].loc[2100.0] == 0.0


def test_wide_keeps_recorded_nans_and_fills_only_missing_samples():
    import pandas as pd

    frame = pd.DataFrame(
        {
            "t_s": [0.0, 0.0, 1.0, 2.0, 2.0, 3.0],
            "signal": pd.Categorical(["a", "b", "a", "a", "b", "a"]),
            "value": [1.0, 5.0, np.nan, 3.0, 6.0, 4.0],
        }
    )
    table = wide(frame)
    assert np.isnan(table.loc[1.0, "a"]) and table.loc[1.0, "b"] == 5.0
    assert table["a"].tolist()[2:] == [3.0, 4.0] and table.loc[3.0, "b"] == 6.0


def test_island_and_reconnect_through_the_world(tmp_path):
    """Islanding loses the feeder's import P from the bulk grid; the island (no governor,
    H = 2 s, D = 20 on 5 MW) settles at f0 (1 - P / (D S)) (closed form; time constant
    2H/D = 0.2 s, so settled long before 30 s). Reconnection restores f0."""
    data = {
        "simulation": {"duration_s": 60.0, "step_s": 0.1},
        "feeder": {"name": "case33bw", "step_s": 1.0},
        "frequency": {"island": {"s_base_mw": 5.0, "h_s": 2.0, "d_pu": 20.0}},
        "events": [{"t_s": 10.0, "kind": "island"}, {"t_s": 40.0, "kind": "reconnect"}],
    }
    result = run_scenario(load_scenario(data), tmp_path, progress=False)
    table = wide(result.frame())
    f = table["FrequencySim-0.grid.f_hz"]
    p_import = table["FeederSim-0.grid.p_slack_mw"].iloc[0]
    expected = 60.0 * (1.0 - p_import / (20.0 * 5.0))
    near = lambda t: f.iloc[int(np.argmin(np.abs(f.index - t)))]  # noqa: E731
    assert near(9.9) == 60.0
    assert near(39.9) == pytest.approx(expected, abs=1e-6)
    assert near(40.0) == 60.0 and near(59.9) == 60.0


def test_cli_run_shows_progress_with_simulated_time(tmp_path, capsys):
    from cosim.cli import main

    scenario = str(SCENARIOS / "frequency_only.toml")
    assert main(["run", scenario, "--out", str(tmp_path), "--set", "simulation.duration_s=2"]) == 0
    captured = capsys.readouterr()
    assert "simulated:" in captured.err and "/2 s" in captured.err
    assert "f_nadir_hz" in captured.out and "results:" in captured.out
