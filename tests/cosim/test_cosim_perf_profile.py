"""FeederSim reading its own load profile (no ProfileSim on the hot path) gives the same inputs
and results as the ProfileSim -> FeederSim connection it replaces; bad columns are reported."""

from __future__ import annotations

import numpy as np
import pytest

from cosim.simulators import FeederSim, ProfileSim
from grids.errors import ScenarioError

PROFILE = (
    "time,load_pu,ambient_c\n"
    "2024-07-01T00:00:00+02:00,0.5,18.0\n"
    "2024-07-01T00:15:00+02:00,0.9,19.0\n"
    "2024-07-01T01:10:00+02:00,1.2,25.0\n"
)


def feeder(**params) -> FeederSim:
    sim = FeederSim()
    sim.init("F", time_resolution=60.0, step_size=20)  # 20-min feeder steps
    sim.create(1, "Grid", feeder="case33bw", **params)
    return sim


def test_own_profile_equals_profile_sim_inputs(tmp_path):
    """Reference: ProfileSim (zero-order hold, steps at each row) feeding load_pu/ambient_c."""
    path = tmp_path / "p.csv"
    path.write_text(PROFILE)
    own = feeder(load_profile=str(path), ambient_column="ambient_c")
    fed = feeder()
    profile = ProfileSim()
    profile.init("P", time_resolution=60.0, datafile=str(path))
    profile.create(1, "Profile")
    attrs = ["bus_vm_pu", "load_pu_used", "ambient_c_used", "hot_spot_c", "p_slack_mw"]
    seen = []
    for t in range(0, 100, 20):  # 0, 20, 40, 60, 80 min: between and on the rows
        profile.step(t, {}, t)
        values = profile.get_data({"profile": ["load_pu", "ambient_c"]})["profile"]
        own.step(t, {}, t)
        fed.step(
            t,
            {
                "grid": {
                    "load_pu": {"P.profile": values["load_pu"]},
                    "ambient_c": {"P.profile": values["ambient_c"]},
                }
            },
            t,
        )
        a = own.get_data({"grid": attrs})["grid"]
        b = fed.get_data({"grid": attrs})["grid"]
        assert a == b
        seen.append(a["load_pu_used"])
    assert seen == [0.5, 0.9, 0.9, 0.9, 1.2]  # rows at 0, 15 and 70 min


def test_inputs_take_precedence_over_the_own_profile(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text(PROFILE)
    sim = feeder(load_profile=str(path))
    sim.step(0, {"grid": {"load_pu": {"X.x": 0.7}}}, 0)
    assert sim.get_data({"grid": ["load_pu_used"]})["grid"]["load_pu_used"] == pytest.approx(0.7)


def test_missing_profile_column_is_reported(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text(PROFILE)
    with pytest.raises(ScenarioError) as info:
        feeder(load_profile=str(path), load_column="demand")
    assert str(info.value) == (
        "feeder: column 'demand' is not in p.csv (columns: load_pu, ambient_c)"
    )


def test_vector_outputs_reuse_bus_keys_without_mixing_dtypes():
    """The cached bus-key strings are keyed by dtype and shape as well as bytes."""
    from cosim.simulators import _vector

    a = _vector(np.array([1, 0], dtype=np.int32), np.array([1.0, 2.0]))
    b = _vector(np.array([1], dtype=np.int64), np.array([3.0]))  # same 8 bytes as above
    assert a == {"1": 1.0, "0": 2.0} and b == {"1": 3.0}
