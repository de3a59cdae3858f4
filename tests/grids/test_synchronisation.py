"""Synchronisation window (``grids.synchronisation``) against IEEE 1547-2018 Table 5.

Reference: IEEE Std 1547-2018 clause 4.10.4 Table 5 (aggregate rating 0-500 kVA: 0.3 Hz, 10 %,
20 degrees; > 500-1500 kVA: 0.2 Hz, 5 %, 15 degrees; > 1500 kVA: 0.1 Hz, 3 %, 10 degrees),
the closed form of the phase drift ``360 Δf t`` and both sides of each edge of the window.
"""

from __future__ import annotations

import numpy as np
import pytest

from grids.errors import ScenarioError
from grids.synchronisation import (
    SyncWindow,
    phase_drift_degree,
    sync_check,
    wrap_degree,
)


@pytest.mark.parametrize(
    ("kva", "expected"),
    [
        (10.0, (0.3, 0.10, 20.0)),
        (500.0, (0.3, 0.10, 20.0)),
        (500.1, (0.2, 0.05, 15.0)),
        (1500.0, (0.2, 0.05, 15.0)),
        (1500.1, (0.1, 0.03, 10.0)),
        (5e4, (0.1, 0.03, 10.0)),
    ],
)
def test_table5_rows_by_aggregate_rating(kva, expected):
    w = SyncWindow.ieee1547(kva)
    assert (w.delta_f_hz, w.delta_v_pu, w.delta_theta_degree) == expected


def test_overrides_and_bad_input():
    w = SyncWindow.from_dict({"delta_theta_degree": 5.0}, s_aggregate_kva=800.0)
    assert (w.delta_f_hz, w.delta_v_pu, w.delta_theta_degree) == (0.2, 0.05, 5.0)
    with pytest.raises(ScenarioError) as info:
        SyncWindow.from_dict({"delta_f_hz": -1, "delta_v_pu": 3, "x": 1}, s_aggregate_kva=800.0)
    text = str(info.value)
    assert "delta_f_hz" in text and "delta_v_pu" in text and "x" in text
    with pytest.raises(ScenarioError, match="s_aggregate_kva"):
        SyncWindow.ieee1547(0.0)


def test_window_edges_each_limit_alone():
    w = SyncWindow(delta_f_hz=0.2, delta_v_pu=0.05, delta_theta_degree=15.0)
    base = dict(f_grid_hz=50.0, v_grid_pu=1.0, theta_grid_degree=0.0, window=w)
    inside = sync_check(f_island_hz=50.19, v_island_pu=0.951, theta_island_degree=-15.0, **base)
    assert bool(inside.ok) and inside.reason(w) == ""
    for kwargs, name in (
        (dict(f_island_hz=49.79, v_island_pu=1.0, theta_island_degree=0.0), "Δf"),
        (dict(f_island_hz=50.0, v_island_pu=1.051, theta_island_degree=0.0), "ΔV"),
        (dict(f_island_hz=50.0, v_island_pu=1.0, theta_island_degree=15.5), "Δθ"),
    ):
        check = sync_check(**kwargs, **base)
        assert not bool(check.ok)
        assert name in check.reason(w) and check.reason(w).count(";") == 0
    # angles wrap: 350 degrees against 0 is -10 degrees, inside
    wrapped = sync_check(f_island_hz=50.0, v_island_pu=1.0, theta_island_degree=350.0, **base)
    assert bool(wrapped.ok) and abs(float(wrapped.delta_theta_degree) + 10.0) < 1e-12


def test_phase_drift_closed_form_and_wrap():
    # 0.05 Hz slip for 2 s: 36 degrees; the drift integrated step by step is the same
    steps = phase_drift_degree(np.full(100, 0.05), 0.02)
    assert abs(steps.sum() - 36.0) < 1e-9
    np.testing.assert_allclose(
        wrap_degree([180.0, -180.0, 190.0, 540.0, -181.0]), [180.0, 180.0, -170.0, 180.0, 179.0]
    )
    # vectorized: one check per entry
    w = SyncWindow.ieee1547(100.0)
    theta = np.cumsum(phase_drift_degree(np.full(200, 0.1), 0.05))
    check = sync_check(
        f_island_hz=50.1,
        f_grid_hz=50.0,
        v_island_pu=1.0,
        v_grid_pu=1.0,
        theta_island_degree=theta,
        theta_grid_degree=0.0,
        window=w,
    )
    expected = np.abs(wrap_degree(theta)) <= 20.0
    np.testing.assert_array_equal(check.ok, expected)
    assert check.ok.any() and not check.ok.all()
