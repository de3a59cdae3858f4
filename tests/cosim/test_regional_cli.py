"""``v2g-cosim regional`` and ``v2g-cosim feeders --simbench``; SimBench names in scenarios.

References: the command's JSON equals the files it wrote (results table, feeder table) and the
regional study's own numbers (tests/studies/test_regional.py checks those against the
hosting-capacity study); the SimBench codes listed equal ``simbench.collect_all_simbench_codes``.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
import simbench as sb

from cosim.cli import main
from cosim.scenario import load_scenario
from grids.errors import ScenarioError


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
