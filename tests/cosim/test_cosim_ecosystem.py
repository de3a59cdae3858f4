"""A hand-written mosaik scenario mixing our simulators (``cosim.simulators:<Name>``) with the
ecosystem's ``mosaik-csv`` (load profile) and ``mosaik-hdf5`` (collector)."""

from __future__ import annotations

import h5py
import mosaik
import numpy as np


def test_hand_written_scenario_with_mosaik_csv_and_mosaik_hdf5(tmp_path):
    csv_path = tmp_path / "load.csv"
    rows = ["Load", "Date,load"]  # mosaik-csv format: model name, then the header
    load = [0.5, 0.6, 0.8, 1.0, 0.9, 0.7, 0.6, 0.5]
    rows += [f"2024-07-01 {h:02d}:00:00,{v}" for h, v in enumerate(load)]
    csv_path.write_text("\n".join(rows) + "\n")
    h5_path = tmp_path / "db.h5"

    sim_config = {
        "CSV": {"python": "mosaik_csv:CSV"},
        "Feeder": {"python": "cosim.simulators:FeederSim"},
        "Fleet": {"python": "cosim.simulators:FleetSim"},
        "DB": {"python": "mosaik_hdf5:MosaikHdf5"},
    }
    world = mosaik.World(
        sim_config, time_resolution=3600.0, skip_greetings=True, configure_logging=False
    )
    profile = world.start("CSV", sim_start="2024-07-01 00:00:00", datafile=str(csv_path))
    load_entity = profile.Load.create(1)[0]
    feeder = world.start("Feeder", step_size=1).Grid(feeder="case33bw", method="ac")
    fleet = world.start("Fleet", step_size=1).Fleet(
        n_vehicles=20, buses=[5, 17], policy="uniform", seed=1
    )
    db = world.start("DB", step_size=1, duration=len(load)).Database(filename=str(h5_path))
    world.connect(load_entity, feeder, ("load", "load_pu"))
    # per-bus child entities: the fleet's bus 17 feeds the feeder's bus 17 and vice versa
    fleet_bus = {e.eid: e for e in fleet.children}["bus_17"]
    feeder_bus = {e.eid: e for e in feeder.children}["bus_17"]
    world.connect(fleet_bus, feeder_bus, "p_mw", "q_mvar")
    world.connect(feeder_bus, fleet_bus, "vm_pu", time_shifted=1, initial_data={"vm_pu": 1.0})
    fleet_bus5 = {e.eid: e for e in fleet.children}["bus_5"]
    feeder_bus5 = {e.eid: e for e in feeder.children}["bus_5"]
    world.connect(fleet_bus5, feeder_bus5, "p_mw", "q_mvar")
    world.connect(feeder, db, "vm_min_pu", "p_extra_mw", "hot_spot_c")
    world.connect(fleet, db, "p_mw")
    world.connect(feeder_bus, db, "vm_pu")
    world.run(until=len(load), print_progress=False)

    with h5py.File(h5_path, "r") as h5:
        series = h5["Series"]
        grid = {k: series[k] for k in series}
        names = sorted(grid)
        vm_min = grid[next(n for n in names if n.endswith("grid"))]["vm_min_pu"][:]
        extra = grid[next(n for n in names if n.endswith("grid"))]["p_extra_mw"][:]
        fleet_p = grid[next(n for n in names if n.endswith("fleet"))]["p_mw"][:]
        vm17 = grid[next(n for n in names if n.endswith("bus_17"))]["vm_pu"][:]
    assert len(vm_min) == len(load)
    # the lowest voltage follows the profile from mosaik-csv (deepest at the 1.0 pu hour)
    assert int(np.argmin(vm_min)) == load.index(1.0)
    # what the feeder received through the per-bus entities is what the fleet injected
    np.testing.assert_allclose(extra, fleet_p, rtol=0, atol=1e-12)
    assert np.all(fleet_p < 0)  # charging overnight
    assert np.all(vm17 >= vm_min - 1e-12)
