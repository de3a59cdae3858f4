"""Bus names as written in an OpenDSS model's files (grids.dss_names)."""

from __future__ import annotations

from pathlib import Path

from grids.dss_names import bus_spellings
from grids.feeder3ph import ThreePhaseFeederModel


def test_multi_file_model_with_redirect_transformer_buses_and_coordinates(tmp_path: Path):
    (tmp_path / "lines.dss").write_text(
        "! a comment naming bus1=NotABus\n"
        "New Line.L1 Bus1=SubStation.1.2.3 Bus2=Node_7.1.2.3 ! trailing bus2=Nope\n"
        "Redirect master.dss  // a cycle back to the master is not followed twice\n"
    )
    (tmp_path / "xy.csv").write_text("Node_7, 1.0, 2.0\nLateral_X 3 4\n")
    (tmp_path / "master.dss").write_text(
        "Clear\nNew Circuit.Test basekv=12.47 Bus1=SubStation\n"
        "New Transformer.T1 phases=1 Buses=[Node_7.2, 'House_A.1.0'] kVs=[7.2 0.24]\n"
        "~ wdg=2 bus=House_A.1.0\n"
        'Redirect "lines.dss"\nBusCoords xy.csv\n'
    )
    names = bus_spellings(tmp_path / "master.dss")
    assert names == {
        "substation": "SubStation",
        "node_7": "Node_7",
        "house_a": "House_A",
        "lateral_x": "Lateral_X",
    }


def test_every_embedded_bus_has_its_file_spelling():
    """Every bus the engine reads (lower case, from OpenDSS) is found in the files."""
    for name in ("ieee13", "european_lv"):
        model = ThreePhaseFeederModel.from_name(name)
        names = bus_spellings(model.circuit.path)
        missing = [b for b in model.buses if str(b).lower() not in names]
        assert not missing, (name, missing[:5])
        assert all(names[str(b).lower()].lower() == str(b).lower() for b in model.buses)


def test_missing_file_gives_no_names(tmp_path: Path):
    assert bus_spellings(tmp_path / "absent.dss") == {}
