"""CLI framework, error hierarchy and feeder loading/validation."""

from __future__ import annotations

import json

import pandapower as pp
import pytest

from cosim.cli import main
from grids.errors import ConvergenceError, FeederError, ScenarioError, V2GCosimError
from grids.feeders import feeder_names, is_radial, load_feeder, validate_feeder


def test_error_hierarchy_lists_every_problem():
    error = ScenarioError("bad scenario", problems=["a.b: 1 is above 0", "c: missing"])
    assert isinstance(error, V2GCosimError)
    assert "a.b: 1 is above 0" in str(error) and "c: missing" in str(error)
    conv = ConvergenceError("no", index=3, worst_bus=17)
    assert conv.index == 3 and conv.worst_bus == 17


@pytest.mark.parametrize("name", ["case33bw", "cigre_mv", "mv_oberrhein"])
def test_embedded_feeders_load_and_are_radial(name):
    net = load_feeder(name, require_radial=True)
    assert len(net.bus) > 10
    assert is_radial(net)


def test_a_feeder_with_more_than_100_buses_is_embedded():
    assert any(len(load_feeder(n).bus) > 100 for n in feeder_names())


def test_unknown_feeder_names_the_choices():
    with pytest.raises(FeederError, match="case33bw"):
        load_feeder("no_such_feeder")


def test_validation_reports_every_problem_at_once():
    net = load_feeder("case33bw")
    net.ext_grid.drop(net.ext_grid.index, inplace=True)
    net.line.loc[3, "max_i_ka"] = -1.0
    net.line.loc[4, "r_ohm_per_km"] = float("nan")
    with pytest.raises(FeederError) as info:
        validate_feeder(net)
    text = str(info.value)
    assert "no in-service external grid" in text
    assert "line 3: max_i_ka = -1.0" in text
    assert "line 4: r_ohm_per_km = nan" in text
    assert len(info.value.problems) == 3


def test_isolated_bus_and_mesh_are_reported():
    net = load_feeder("case33bw")
    net.line.loc[net.line.index[~net.line.in_service], "in_service"] = True  # close tie lines
    island = pp.create_bus(net, vn_kv=12.66)
    with pytest.raises(FeederError) as info:
        validate_feeder(net, require_radial=True)
    text = str(info.value)
    assert f"isolated): {island}" in text
    assert "not radial" in text


def test_feeder_json_roundtrip_and_pickle_refused(tmp_path):
    net = load_feeder("cigre_mv")
    path = tmp_path / "net.json"
    pp.to_json(net, str(path))
    again = load_feeder(path)
    assert len(again.bus) == len(net.bus)
    with pytest.raises(FeederError, match="pickle"):
        load_feeder(tmp_path / "net.p")


def test_feeder_json_with_foreign_module_refused(tmp_path):
    evil = tmp_path / "evil.json"
    evil.write_text(json.dumps({"_module": "os", "_class": "system", "_object": "{}"}))
    with pytest.raises(FeederError, match="untrusted modules: os"):
        load_feeder(evil)


def test_cli_feeders_json(capsys):
    assert main(["feeders", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    names = {f["name"]: f for f in out["feeders"]}
    assert names["case33bw"]["n_bus"] == 33 and names["case33bw"]["n_line"] == 32
    assert names["mv_oberrhein"]["n_bus"] == 179


def test_cli_prints_error_without_traceback(capsys, tmp_path):
    code = main(["powerflow", "--feeder", str(tmp_path / "missing.json")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error:") and "Traceback" not in err
