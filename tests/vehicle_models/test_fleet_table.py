"""Fleet tables (vehicle_models.fleet_table): defaults and numbering of vehicles.

Reference: the table itself (row i gets vehicle_id i when the column is absent).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from vehicle_models.fleet import Fleet, read_fleet_table
from vehicle_models.fleet_table import TABLE_COLUMNS_REQUIRED


def test_table_without_vehicle_id_numbers_the_rows(tmp_path):
    """More rows than columns: ids are the row numbers, not the column count."""
    n = 40
    frame = pd.DataFrame(
        {
            "bus": np.arange(n) % 3,
            "arrival_s": np.zeros(n),
            "departure_s": np.full(n, 3600.0),
            "e_capacity_kwh": np.full(n, 50.0),
            "soc_arrival_frac": np.full(n, 0.5),
            "p_charge_max_kw": np.full(n, 7.0),
        }
    )
    path = tmp_path / "fleet.csv"
    frame.to_csv(path, index=False)
    assert set(read_fleet_table(path)) >= set(TABLE_COLUMNS_REQUIRED)
    fleet = Fleet.from_table(path, f_nominal_hz=50.0)
    assert fleet.n_vehicles == n
    assert sorted(fleet.vehicle_id.tolist()) == list(range(n))
    # vehicles are bus-sorted, ids map back to their rows
    np.testing.assert_array_equal(fleet.bus_of_vehicle, frame["bus"].to_numpy()[fleet.vehicle_id])
    assert fleet.f_nominal_hz == 50.0
