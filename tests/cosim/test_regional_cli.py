"""``v2g-cosim regional`` and ``v2g-cosim feeders --simbench``; SimBench feeders in scenarios.

References: the command's JSON equals the files it wrote (results table, feeder table) and the
regional study's own numbers (tests/studies/test_regional.py checks those against the
hosting-capacity study); the SimBench codes listed equal ``simbench.collect_all_simbench_codes``.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import simbench as sb

from cosim.cli import main
from cosim.scenario import load_scenario
from grids.errors import ScenarioError, SimulationError


def _json(capsys, *argv) -> dict:
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_feeders_simbench_lists_every_code(capsys):
    doc = _json(capsys, "feeders", "--simbench")
    codes = [item["code"] for item in doc["simbench"]]
    assert codes == list(sb.collect_all_simbench_codes())
    rural = next(item for item in doc["simbench"] if item["code"] == "1-LV-rural1--2-sw")
    assert rural["name"] == "simbench:1-LV-rural1--2-sw"
    assert (rural["levels"], rural["type"], rural["scenario"]) == ("LV", "rural1", "2")
    assert main(["feeders", "--simbench"]) == 0
    assert "simbench:1-MV-urban--1-sw" in capsys.readouterr().out


def test_regional_json_run_and_resume(capsys, tmp_path):
    out = tmp_path / "region"
    argv = ["regional", "--feeders", "case33bw", "cigre_mv", "--method", "screen"]
    argv += ["--out", str(out), "--workers", "1", "--no-progress"]
    doc = _json(capsys, *argv)
    assert (doc["n_feeders"], doc["n_done"], doc["n_failed"], doc["n_skipped"]) == (2, 2, 0, 0)
    table = pd.read_parquet(doc["results"])
    assert doc["n_rows"] == len(table) == 32 + 14  # every non-slack bus of both feeders
    first = doc["feeders"][0]
    assert first["feeder"] == "case33bw" and first["status"] == "ok"
    hc = table.loc[table.feeder == "case33bw", "hosting_capacity_mw"]
    assert first["hc_min_mw"] == pytest.approx(hc.min(), rel=1e-12)
    assert doc["options"]["method"] == "screen" and doc["report"].endswith("report.html")
    again = _json(capsys, *argv)
    assert (again["n_done"], again["n_skipped"]) == (0, 2)
    assert main([*argv[:-1], "--no-progress"]) == 0  # the text form
    assert "case33bw" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--feeders", "nowhere"], "'nowhere': not an embedded feeder"),
        (["--feeders", "case33bw", "--scheduler", "http://x:1"], "not a Dask scheduler"),
        (["--feeders", "case33bw", "--workers", "0"], "--workers: 0 must be >= 1"),
        (["--feeders", "case33bw", "--time-series", "--duration", "7x"], "--duration: '7x'"),
        (["--feeders", "case33bw", "--duration", "7d"], "only for the time-series study"),
    ],
)
def test_regional_bad_input_is_one_error(capsys, tmp_path, extra, message):
    assert main(["regional", *extra, "--out", str(tmp_path / "o"), "--no-progress"]) == 2
    assert message in capsys.readouterr().err


def test_scenario_takes_a_simbench_feeder_name():
    simulation = {"duration_s": 3600.0, "step_s": 900.0}
    name = "simbench:1-LV-rural1--2-sw"
    scenario = load_scenario({"simulation": simulation, "feeder": {"name": name}})
    assert scenario.feeder.name == name
    with pytest.raises(ScenarioError, match=r"feeder.name: .*closest: 1-LV-rural1--2-sw"):
        load_scenario({"simulation": simulation, "feeder": {"name": name[:-1] + "x"}})


def test_feeder_simulator_follows_the_simbench_profiles():
    """FeederSim on a SimBench feeder: each step solves that quarter hour of the feeder's own
    profiles (the feeder model on the same injections gives the same voltages, 1e-9 pu)."""
    from cosim.simulators.feeder import FeederSim
    from grids.feeder_model import FeederModel
    from grids.simbench import simbench_profiles

    name = "simbench:1-LV-rural1--2-sw"
    sim = FeederSim()
    sim.init("Feeder-0", time_resolution=300.0, step_size=1)
    sim.create(1, "Grid", feeder=name, start="2016-07-01 12:00")
    model = FeederModel.from_name(name)
    profiles = simbench_profiles(model.net, model).window("2016-07-01 12:00", 3600)
    for time, row in ((0, 0), (2, 0), (3, 1), (11, 3)):  # 5-min steps in 15-min rows
        sim.step(time, {}, 20)
        out = sim.get_data({"grid": ["bus_vm_pu", "p_load_mw"]})["grid"]
        expected = model.solve(profiles.p_mw[row], profiles.q_mvar[row]).vm_pu[0]
        got = np.array([out["bus_vm_pu"][str(int(b))] for b in model.bus])
        np.testing.assert_allclose(got, expected, atol=1e-9)
        assert out["p_load_mw"] == pytest.approx(-profiles.p_mw[row].sum())
    with pytest.raises(SimulationError, match="runs past the end of its profiles"):
        late = FeederSim()
        late.init("Feeder-1", time_resolution=900.0, step_size=1)
        late.create(1, "Grid", feeder=name, start="2016-12-31 23:30")
        late.step(2, {}, 20)


def test_regional_on_a_dask_local_cluster_gives_the_local_table(capsys, tmp_path):
    from distributed import LocalCluster

    feeders = ["--feeders", "case33bw", "cigre_mv", "--method", "screen", "--no-progress"]
    assert main(["regional", *feeders, "--out", str(tmp_path / "local"), "--workers", "1"]) == 0
    capsys.readouterr()
    with LocalCluster(
        n_workers=1,
        threads_per_worker=2,
        processes=False,
        host="127.0.0.1",
        protocol="tcp",
        dashboard_address=None,
    ) as cluster:
        argv = ["regional", *feeders, "--out", str(tmp_path / "dask")]
        doc = _json(capsys, *argv, "--scheduler", cluster.scheduler_address)
    assert (doc["n_done"], doc["n_failed"]) == (2, 0)
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / "local" / "results.parquet"),
        pd.read_parquet(tmp_path / "dask" / "results.parquet"),
    )
