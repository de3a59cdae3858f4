"""`powerflow --feeder FILE.dss --json` names buses as written in the file (OpenDSS itself
lower-cases them)."""

from __future__ import annotations

import json

from cosim.cli import main


def test_json_bus_names_keep_the_files_spelling(tmp_path, capsys):
    master = tmp_path / "Master.dss"
    master.write_text(
        "Clear\n"
        "New Circuit.Mixed basekv=12.47 pu=1.0 phases=3 Bus1=SourceBus\n"
        "New Line.L1 Phases=3 Bus1=SourceBus Bus2=Feeder_End r1=0.2 x1=0.4 length=1 units=km\n"
        "New Load.House Bus1=Feeder_End.2 Phases=1 kV=7.2 kW=300 kvar=100\n"
        "Set VoltageBases=[12.47]\nCalcVoltageBases\n"
    )
    assert main(["powerflow", "--feeder", str(master), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    buses = {row["bus"] for row in doc["phase_voltages"]}
    assert buses == {"SourceBus", "Feeder_End"}
    assert doc["min_vm_node"] == {"bus": "Feeder_End", "phase": "b"}
    assert doc["vuf_max_bus"] in buses
