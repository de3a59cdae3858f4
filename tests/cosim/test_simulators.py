"""The mosaik simulators as plain objects (no mosaik world), profiles and the results writer."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from cosim.results import ResultsWriter, read_results, series, wide
from cosim.simulators import (
    FEEDER_META,
    FLEET_META,
    FREQUENCY_META,
    EventSim,
    FeederSim,
    FrequencySim,
    ProfileSim,
    StepClock,
    read_profile,
)
from grids.errors import InputDataError


def test_step_clock_multi_rate():
    clock = StepClock(100, 1, [[250, 260]])
    assert clock.next_time(0) == 100
    assert clock.next_time(200) == 250  # lands on the window start
    assert clock.next_time(250) == 251 and clock.next_time(259) == 260
    assert clock.next_time(260) == 300  # back on the quasi-static grid
    assert clock.in_window(255) and not clock.in_window(260)
    single = StepClock(7)
    assert single.next_time(14) == 21 and not single.windows


def test_metas_declare_units_in_every_attribute_name():
    for meta in (FEEDER_META, FLEET_META, FREQUENCY_META):
        for model in meta["models"].values():
            for attr in model["attrs"]:
                assert attr in ("island", "lines_out") or "_" in attr, attr


def test_event_sim_accumulates_events():
    sim = EventSim()
    sim.init("Events-0", time_resolution=0.5, step_size=1)
    sim.create(
        1,
        "Events",
        events=[
            {"t_s": 1.0, "kind": "generation_loss", "p_mw": 100.0},
            {"t_s": 1.0, "kind": "load_step", "p_mw": 20.0},
            {"t_s": 2.0, "kind": "line_outage", "line": 4},
            {"t_s": 3.0, "kind": "island"},
        ],
    )
    out = []
    for t in range(8):
        assert sim.step(t, {}, 100) == t + 1
        out.append(sim.get_data({"events": ["p_event_mw", "lines_out", "island", "n_events"]}))
    assert out[1]["events"]["p_event_mw"] == 0.0  # t = 0.5 s
    assert out[2]["events"]["p_event_mw"] == -120.0  # both events at t = 1 s
    assert out[4]["events"]["lines_out"] == "[4]"
    assert out[6]["events"] == {
        "p_event_mw": -120.0,
        "lines_out": "[4]",
        "island": True,
        "n_events": 4,
    }


def test_frequency_sim_matches_the_swing_model_and_closed_form_rocof():
    """RoCoF right after a 500 MW loss on 10 GW, H = 5 s, 60 Hz: -0.3 Hz/s exactly
    (DESIGN.md section 5); the adapter must give the SwingModel's values step by step."""
    from grids.frequency import SwingModel, SwingParameters

    params = {"f0_hz": 60.0, "s_base_mw": 10000.0, "h_s": 5.0}
    sim = FrequencySim()
    sim.init("F-0", time_resolution=0.01, step_size=2)
    sim.create(1, "Grid", params=params)
    ref = SwingModel(SwingParameters(**params))
    for t in range(0, 400, 2):
        p_event = -500.0 if t >= 100 else 0.0
        sim.step(t, {"grid": {"p_event_mw": {"E.e": p_event}}}, 10**6)
        data = sim.get_data({"grid": ["f_hz", "rocof_hz_per_s"]})["grid"]
        assert data["f_hz"] == ref.f_hz
        ref.step(dt_s=0.02, p_imbalance_mw=p_event)
        if t == 100:
            rocof_after = None
        if t == 102:
            rocof_after = data["rocof_hz_per_s"]
    assert rocof_after is not None
    assert ref.rocof_hz_per_s < 0
    # the first step after the loss starts at -0.3 Hz/s and is already relaxing
    assert -0.3 <= rocof_after < -0.25


def test_frequency_sim_fleet_term_is_the_deviation_from_the_reference():
    sim = FrequencySim()
    sim.init("F-0", time_resolution=1.0, step_size=10, fast_step_size=1, windows=[[20, 30]])
    sim.create(1, "Grid", params={})
    imbalance = {}
    for t, p_fleet in [(0, -1.0), (10, -2.0), (20, -3.0), (21, 5.0), (22, 7.0)]:
        sim.step(t, {"grid": {"p_fleet_mw": {"fleet": p_fleet}}}, 100)
        imbalance[t] = sim.get_data({"grid": ["p_imbalance_mw"]})["grid"]["p_imbalance_mw"]
    # quasi-static steps and the window start reset the reference: only changes inside count
    assert imbalance[0] == imbalance[10] == imbalance[20] == 0.0
    assert imbalance[21] == 8.0 and imbalance[22] == 10.0


def test_feeder_sim_matches_pandapower_runpp():
    """The adapter's voltages equal pandapower's runpp on the same net with the same extra
    injection (1e-6 pu, the fast path's contract)."""
    import pandapower as pp

    from grids.powerflow import prepare_net

    sim = FeederSim()
    sim.init("Feeder-0", time_resolution=900.0, step_size=1)
    sim.create(1, "Grid", feeder="case33bw", method="ac")
    inputs = {
        "grid": {
            "load_pu": {"P.p": 0.8},
            "bus_p_mw": {"Fleet-0.fleet": {"17": 0.2}},
            "bus_q_mvar": {"Fleet-0.fleet": {"17": -0.1}},
        },
        "bus_5": {"p_mw": {"x.y": 0.05}},
    }
    sim.step(0, inputs, 10)
    out = sim.get_data({"grid": ["bus_vm_pu", "p_extra_mw", "hot_spot_c"], "bus_5": ["vm_pu"]})
    net = prepare_net("case33bw", load_scale=0.8)
    pp.create_sgen(net, 17, p_mw=0.2, q_mvar=-0.1)
    pp.create_sgen(net, 5, p_mw=0.05)
    pp.runpp(net, tolerance_mva=1e-10)
    vm = np.array([out["grid"]["bus_vm_pu"][str(b)] for b in net.bus.index])
    assert np.max(np.abs(vm - net.res_bus.vm_pu.to_numpy())) < 1e-6
    assert out["bus_5"]["vm_pu"] == pytest.approx(net.res_bus.vm_pu[5], abs=1e-6)
    assert out["grid"]["p_extra_mw"] == pytest.approx(0.25)


def test_feeder_sim_rejects_an_unknown_bus():
    from grids.errors import SimulationError

    sim = FeederSim()
    sim.init("Feeder-0", time_resolution=1.0)
    sim.create(1, "Grid", feeder="case33bw")
    with pytest.raises(SimulationError, match="bus 999 is not a bus of the feeder"):
        sim.step(0, {"grid": {"bus_p_mw": {"f": {"999": 1.0}}}}, 10)


def test_read_profile_timezones_and_mosaik_csv_format(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text(
        "Profile\n"  # mosaik-csv: the first line is the model name
        "Date,load_pu\n"
        "2024-07-01 00:00:00+02:00,0.5\n"
        "2024-07-01 00:15:00+02:00,0.6\n"
        "2024-07-01 00:30:00+02:00,0.7\n"
    )
    steps, values = read_profile(path, start="2024-06-30T22:15:00Z", time_resolution=60.0)
    assert steps.tolist() == [-15, 0, 15]  # 22:15 UTC = 00:15 +02:00
    assert values["load_pu"].tolist() == [0.5, 0.6, 0.7]
    sim = ProfileSim()
    meta = sim.init("P-0", time_resolution=60.0, datafile=str(path), start="2024-06-30T22:15:00Z")
    assert meta["models"]["Profile"]["attrs"] == ["load_pu"]
    sim.create(1, "Profile")
    assert sim.step(0, {}, 100) == 15
    assert sim.get_data({"profile": ["load_pu"]}) == {"profile": {"load_pu": 0.6}}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("t_s,load_pu\n0,1.0\n60,nan\n", "p.csv: row 3: load_pu is nan (not a finite number)"),
        ("t_s,load_pu\n0,1.0\n0,1.0\n", "p.csv: row 3: times are not strictly increasing"),
        ("time,load_pu\nyesterday,1.0\n", "p.csv: row 2: time 'yesterday' is not a timestamp"),
    ],
)
def test_read_profile_bad_rows(tmp_path, text, message):
    """The profile reader is grids.timeseries.read_time_series: one problem per bad row."""
    path = tmp_path / "p.csv"
    path.write_text(text)
    with pytest.raises(InputDataError) as info:
        read_profile(path)
    (problem,) = info.value.problems
    assert problem.startswith(message)


@pytest.mark.parametrize("fmt", ["hdf5", "parquet"])
def test_results_writer_round_trip_with_metadata(tmp_path, fmt):
    path = tmp_path / f"r.{fmt}"
    writer = ResultsWriter(path, {"seed": 7, "scenario": {"a": 1}}, fmt=fmt, flush_every=3)
    for k in range(10):
        writer.append_many(0.5 * k, ["s.x", "s.y"], [k, -k])
    writer.close()
    frame, meta = read_results(path)
    assert meta == {"seed": 7, "scenario": {"a": 1}}
    assert len(frame) == 20
    assert series(frame, "s.y").tolist() == [-k for k in range(10)]
    assert wide(frame).shape == (10, 2)


@pytest.mark.parametrize("fmt", ["hdf5", "parquet"])
def test_a_crash_loses_at_most_the_last_flush_interval(tmp_path, fmt):
    """Kill the writing process without closing the file: the flushed rows are readable (for
    Parquet from the per-flush parts, with a warning that the run did not finish)."""
    path = tmp_path / ("r.h5" if fmt == "hdf5" else "r.parquet")
    code = (
        "import os\n"
        "from cosim.results import ResultsWriter\n"
        f"w = ResultsWriter({str(path)!r}, {{'seed': 1}}, fmt={fmt!r}, flush_every=100)\n"
        "for k in range(250):\n"
        "    w.append(float(k), 'a.b' if k % 2 else 'c.d', float(k))\n"
        "os._exit(1)\n"  # a crash: no close, no finalizers
    )
    subprocess.run([sys.executable, "-c", code], check=False, timeout=120)
    # the run never finished: no results file, the flushed rows in the partial file (parts)
    assert not path.exists()
    expected = "reading the 2 flushed" if fmt == "parquet" else "reading r.partial.h5"
    with pytest.warns(UserWarning, match=f"the run did not finish; {expected}"):
        frame, meta = read_results(path)
    assert meta == {"seed": 1}
    assert frame["value"].tolist() == [float(k) for k in range(200)]
    assert series(frame, "a.b").tolist() == [float(k) for k in range(1, 200, 2)]


def test_parquet_results_end_as_one_file_and_replace_an_older_run(tmp_path):
    """On close the parts are merged into the one results file (a row group per flush) and
    removed; a new run at the same path starts clean (no parts of a crashed run mixed in)."""
    import pyarrow.parquet as pq

    from cosim.results import partial_path, parts_dir

    path = tmp_path / "r.parquet"
    stale = parts_dir(partial_path(path))
    stale.mkdir()
    (stale / "part-000000.parquet").write_bytes(b"left by a crashed run")
    writer = ResultsWriter(path, {"seed": 3}, fmt="parquet", flush_every=4)
    for k in range(10):
        writer.append(float(k), f"s{k % 3}.x", float(k))
    writer.close()
    assert not stale.exists() and path.is_file()
    assert pq.ParquetFile(path).num_row_groups == 3  # 4 + 4 + 2 rows
    frame, meta = read_results(path)
    assert meta == {"seed": 3}
    assert frame["value"].tolist() == [float(k) for k in range(10)]
    assert series(frame, "s1.x").tolist() == [1.0, 4.0, 7.0]


def test_read_results_errors(tmp_path):
    with pytest.raises(InputDataError, match="results file does not exist"):
        read_results(tmp_path / "none.h5")
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"not parquet")
    with pytest.raises(InputDataError, match="not a readable Parquet results file"):
        read_results(bad)


def test_collector_stores_vectors_per_bus_and_json_lists(tmp_path):
    from cosim.simulators import Collector

    col = Collector()
    col.init("C-0", time_resolution=2.0, step_size=1)
    col.create(1, "Monitor", path=str(tmp_path / "c.h5"), metadata={"x": 1})
    col.step(
        3,
        {"monitor": {"bus_vm_pu": {"F.grid": {"1": 1.0, "2": 0.98}}, "lines_out": {"E.e": "[3]"}}},
        10,
    )
    col.finalize()
    frame, meta = read_results(tmp_path / "c.h5")
    assert meta == {"x": 1}
    got = dict(zip(frame["signal"].astype(str), frame["value"], strict=True))
    assert got == {"F.grid.bus_vm_pu[1]": 1.0, "F.grid.bus_vm_pu[2]": 0.98, "E.e.lines_out": 1.0}
    assert frame["t_s"].tolist() == [6.0, 6.0, 6.0]
    assert json.loads("[3]") == [3]
    assert pd.api.types.is_float_dtype(frame["value"])


def test_fleet_sim_equals_the_fleet_and_drops_setpoints_with_packet_loss():
    """FleetSim's outputs are Fleet.step's; with packet loss the fleet keeps the last
    set-point it received (seeded, about the configured fraction of steps)."""
    from cosim.simulators import FleetSim
    from vehicle_models.fleet import Fleet, FleetPreset
    from vehicle_models.settings import InverterSettings

    control = {"functions": ["freq_watt"]}
    sim = FleetSim()
    sim.init("Fleet-0", time_resolution=1.0, step_size=1)
    sim.create(1, "Fleet", n_vehicles=30, buses=[3, 7], seed=4, control=control, packet_loss=0.5)
    ref = Fleet.sample(
        30,
        buses=np.array([3, 7]),
        preset=FleetPreset.HOME,
        seed=4,
        settings=InverterSettings.from_dict(control),
    )
    share = ref.n_vehicles_per_bus / ref.n_vehicles_per_bus.sum()
    seen_prev = float("nan")  # nothing received yet
    held = 0
    for t in range(200):
        sent = -0.01 - 0.0001 * t
        inputs = {"fleet": {"f_hz": {"F.grid": 59.9}, "p_setpoint_mw": {"D.d": sent}}}
        sim.step(t, inputs, 1000)
        out = sim.get_data({"fleet": ["p_mw", "p_setpoint_seen_mw"], "bus_7": ["p_mw"]})
        seen = out["fleet"]["p_setpoint_seen_mw"]
        both_nan = bool(np.isnan([seen, seen_prev]).all())
        assert seen == pytest.approx(sent) or seen == seen_prev or both_nan
        held += seen != pytest.approx(sent)
        setpoint = None if np.isnan(seen) else seen * share
        r = ref.step(t_s=float(t), dt_s=1.0, vm_pu=np.ones(2), f_hz=59.9, p_setpoint_mw=setpoint)
        assert out["fleet"]["p_mw"] == pytest.approx(float(np.sum(r.p_mw)), abs=1e-15)
        assert out["bus_7"]["p_mw"] == pytest.approx(float(r.p_mw[1]), abs=1e-15)
        seen_prev = seen
    assert 70 < held < 130


def test_frequency_sim_island_uses_the_island_parameters_and_lost_import():
    from grids.frequency import SwingModel, SwingParameters

    sim = FrequencySim()
    sim.init("F-0", time_resolution=0.1, step_size=1)
    island = {"s_base_mw": 5.0, "h_s": 2.0, "d_pu": 10.0}
    sim.create(1, "Grid", params={"f0_hz": 60.0}, island_params=island)
    ref = SwingModel(SwingParameters.island(f0_hz=60.0, **island))
    sim.step(0, {"grid": {"island": {"E.e": False}, "p_grid_import_mw": {"G.g": 2.0}}}, 100)
    for t in range(1, 50):
        data = {"island": {"E.e": True}, "p_grid_import_mw": {"G.g": 2.0}}
        sim.step(t, {"grid": data}, 100)
        out = sim.get_data({"grid": ["f_hz", "p_imbalance_mw"]})["grid"]
        assert out["f_hz"] == ref.f_hz
        assert out["p_imbalance_mw"] == -2.0  # the feeder's import is now missing
        ref.step(dt_s=0.1, p_imbalance_mw=-2.0)
    # no governor in the island: the frequency falls towards f0 (1 - ΔP/(D S)) = 57.6 Hz
    assert 57.6 < ref.f_hz < 60.0


def test_read_profile_parquet_with_timezone_aware_index_column(tmp_path):
    stamps = pd.date_range("2024-01-01 00:00", periods=4, freq="h", tz="America/Chicago")
    frame = pd.DataFrame({"timestamp": stamps, "pv_pu": [0.0, 0.1, 0.3, 0.2]})
    path = tmp_path / "pv.parquet"
    frame.to_parquet(path)
    steps, values = read_profile(path, start="2024-01-01T07:00:00Z", time_resolution=1800.0)
    # 00:00 Chicago (UTC-6) = 06:00 UTC, one hour before the start
    assert steps.tolist() == [-2, 0, 2, 4]
    assert values["pv_pu"].tolist() == [0.0, 0.1, 0.3, 0.2]


def test_read_profile_allows_empty_cells_only_when_asked(tmp_path):
    path = tmp_path / "sp.csv"
    path.write_text("t_s,p_setpoint_mw\n0,\n60,0.2\n120,abc\n")
    with pytest.raises(InputDataError, match=r"sp\.csv: row 2: p_setpoint_mw is empty"):
        read_profile(path)
    with pytest.raises(InputDataError, match=r"sp\.csv: row 4: p_setpoint_mw is abc"):
        read_profile(path, allow_empty=True)
    path.write_text("t_s,p_setpoint_mw\n0,\n60,0.2\n")
    _, values = read_profile(path, allow_empty=True)
    assert np.isnan(values["p_setpoint_mw"][0]) and values["p_setpoint_mw"][1] == 0.2


def test_feeder_sim_outage_against_pandapower_runpp():
    """A line outage that cuts buses off (cigre_mv, line 9): the adapter's energized voltages,
    rated line loadings, the substation loading ``|S_slack| / rating`` and the de-energized
    count equal pandapower ``runpp`` on the same net with the line out of service (1e-6 pu,
    1e-4 % loading, 1e-6 pu load); cut-off buses report 0 pu, the out-of-service line NaN
    (no loading, never 0 %)."""
    import math

    import pandapower as pp

    from grids.powerflow import prepare_net

    rating_mva = 40.0
    sim = FeederSim()
    sim.init("Feeder-0", time_resolution=900.0, step_size=1)
    sim.create(1, "Grid", feeder="cigre_mv", transformer={"rating_mva": rating_mva})
    sim.step(0, {"grid": {"lines_out": {"E.e": json.dumps([9])}}}, 10)
    attrs = [
        "bus_vm_pu",
        "line_loading_percent",
        "n_deenergized_buses",
        "vm_min_pu",
        "transformer_load_pu",
        "p_grid_import_mw",
    ]
    out = sim.get_data({"grid": attrs})["grid"]

    net = prepare_net("cigre_mv")
    net.line.loc[9, "in_service"] = False
    pp.runpp(net, tolerance_mva=1e-10)
    vm_ref = net.res_bus.vm_pu
    dead = vm_ref.isna()
    assert out["n_deenergized_buses"] == int(dead.sum()) > 0
    vm = pd.Series({int(k): v for k, v in out["bus_vm_pu"].items()}).reindex(vm_ref.index)
    assert (vm[dead] == 0.0).all()
    np.testing.assert_allclose(vm[~dead], vm_ref[~dead], atol=1e-6)
    assert out["vm_min_pu"] == pytest.approx(vm_ref[~dead].min(), abs=1e-6)
    loading = pd.Series({int(k): v for k, v in out["line_loading_percent"].items()})
    assert math.isnan(loading[9])
    live = net.res_line.loading_percent.notna() & net.line.in_service
    np.testing.assert_allclose(
        loading[live[live].index], net.res_line.loading_percent[live], atol=1e-4
    )
    s_slack = math.hypot(net.res_ext_grid.p_mw.sum(), net.res_ext_grid.q_mvar.sum())
    assert out["transformer_load_pu"] == pytest.approx(s_slack / rating_mva, abs=1e-6)
    assert out["p_grid_import_mw"] == pytest.approx(net.res_ext_grid.p_mw.sum(), abs=1e-6)


def test_feeder_sim_unrated_lines_are_nan_and_bad_inputs_are_named():
    """case33bw carries 99999 kA placeholders: no line is rated, so every loading is NaN (not
    0 %); an unknown solver and a line that does not exist are named in the message."""
    from grids.errors import ScenarioError, SimulationError

    sim = FeederSim()
    sim.init("Feeder-0", time_resolution=60.0)
    sim.create(1, "Grid", feeder="case33bw", method="lindistflow")
    sim.step(0, {}, 10)
    out = sim.get_data({"grid": ["line_loading_percent", "max_line_loading_percent"]})["grid"]
    assert np.isnan(out["max_line_loading_percent"])
    assert np.isnan(list(out["line_loading_percent"].values())).all()
    with pytest.raises(SimulationError, match=r"line_outage of lines \[999\]"):
        sim.step(1, {"grid": {"lines_out": {"E.e": "[999]"}}}, 10)
    with pytest.raises(ScenarioError, match=r"feeder\.method: 'newton'"):
        FeederSim().create(1, "Grid", feeder="case33bw", method="newton")
