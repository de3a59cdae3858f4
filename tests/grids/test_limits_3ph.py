"""Per-phase limits (grids.limits): phase voltages, voltage unbalance, phase conductor loading.

References are closed forms: a phase set whose phase c magnitude is (1 - d) of the others has
|V2| = d/3 and |V1| = (3 - d)/3, so VUF = d / (3 - d) exactly (Fortescue).
"""

from __future__ import annotations

import numpy as np
import pytest

from grids.errors import FeederError, ScenarioError
from grids.limits import (
    VUF_LIMIT_PERCENT,
    Limit,
    phase_element_names,
    phase_loading_violation,
    phase_voltage_violations,
    unbalance_violation,
)

A = np.exp(2j * np.pi / 3)


def _fortescue_vuf_percent(v_abc: np.ndarray) -> np.ndarray:
    """Reference: 100 |V2| / |V1| straight from the Fortescue definition."""
    va, vb, vc = v_abc[..., 0], v_abc[..., 1], v_abc[..., 2]
    v1 = (va + A * vb + A**2 * vc) / 3
    v2 = (va + A**2 * vb + A * vc) / 3
    return 100 * np.abs(v2) / np.abs(v1)


def _sagging_phase_c(d: float) -> np.ndarray:
    return np.array([1.0, A**2, (1.0 - d) * A])


def test_vuf_closed_form_of_one_sagging_phase():
    for d in (0.0, 0.01, 0.058, 0.06, 0.2):
        assert _fortescue_vuf_percent(_sagging_phase_c(d)) == pytest.approx(
            100 * d / (3 - d), abs=1e-12
        )


def test_default_vuf_limit_is_two_percent_and_binds_between_the_closed_forms():
    assert VUF_LIMIT_PERCENT == 2.0
    # d / (3 - d) = 2 %  <=>  d = 0.06 / 1.02 = 0.0588...
    d_limit = 3 * 0.02 / 1.02
    v = np.stack([_sagging_phase_c(d_limit - 1e-4), _sagging_phase_c(d_limit + 1e-4)])
    vuf = _fortescue_vuf_percent(v)  # one bus, two snapshots -> (2,) then (2, 1)
    names = ["bus 671"]
    assert unbalance_violation(vuf[:1, None], bus_names=names) is None
    found = unbalance_violation(vuf[:, None], bus_names=names, t_s=np.array([0.0, 900.0]))
    assert found is not None
    assert found.limit == Limit.VOLTAGE_UNBALANCE.value
    assert found.quantity == "vuf_percent"
    assert found.element == "bus 671"
    assert found.limit_value == 2.0
    assert found.first_time_s == 900.0
    assert found.worst_value == pytest.approx(100 * (d_limit + 1e-4) / (3 - d_limit - 1e-4))
    assert "2 %" in found.describe() and "bus 671" in found.describe()


def test_vuf_limit_is_settable_and_checked():
    vuf = np.array([1.0, 2.5, np.nan])
    names = ["bus 1", "bus 2", "bus 3"]
    assert unbalance_violation(vuf, bus_names=names, limit_percent=3.0) is None
    found = unbalance_violation(vuf, bus_names=names, limit_percent=0.5)
    assert found.n_elements == 2 and found.element == "bus 2" and found.limit_value == 0.5
    for bad in (0.0, -1.0, float("nan"), float("inf"), 101.0, "2", True):
        with pytest.raises(ScenarioError, match="voltage unbalance limit"):
            unbalance_violation(vuf, bus_names=names, limit_percent=bad)


def test_phase_voltage_violations_name_bus_and_phase():
    node_bus = ["650", "632", "632", "632", "675"]
    node_phase = [1, 1, 2, 3, 2]
    vm = np.array([[1.0, 1.02, 0.94, 1.0, 1.0], [1.0, 1.0, 0.96, 1.0, 0.91]])
    found = phase_voltage_violations(
        vm, node_bus=node_bus, node_phase=node_phase, t_s=np.array([0.0, 60.0]), step_s=60.0
    )
    by_limit = {v.limit: v for v in found}
    low_a = by_limit[Limit.ANSI_C84_1_RANGE_A_LOW.value]
    assert low_a.element == "bus 675 phase b"  # the worst node: 0.91 pu
    assert low_a.worst_value == 0.91
    assert low_a.n_elements == 2  # 632.b at t=0 and 675.b at t=60
    assert low_a.first_time_s == 0.0 and low_a.duration_s == 120.0
    low_b = by_limit[Limit.ANSI_C84_1_RANGE_B_LOW.value]
    assert low_b.element == "bus 675 phase b" and low_b.n_elements == 1
    assert set(by_limit) == {Limit.ANSI_C84_1_RANGE_A_LOW.value, Limit.ANSI_C84_1_RANGE_B_LOW.value}
    en = phase_voltage_violations(
        vm[0], node_bus=node_bus, node_phase=node_phase, standard="en50160"
    )
    assert en == []  # 0.94 pu is inside 230 V +-10 %


def test_phase_names_checked():
    assert phase_element_names(["a1", "b2"], [3, 1]) == ["bus a1 phase c", "bus b2 phase a"]
    with pytest.raises(FeederError, match="expected one phase per name"):
        phase_element_names(["x"], [1, 2])
    with pytest.raises(FeederError, match=r"\[0, 4\] are not phases"):
        phase_element_names(["x", "y", "z"], [0, 4, 1])


def test_phase_loading_names_line_and_phase():
    loading = np.array([[50.0, 101.0, np.nan], [99.0, 100.0, 120.0]])
    found = phase_loading_violation(
        loading, line_names=["l1", "l1", "l2"], line_phase=[1, 2, 1], t_s=np.array([0.0, 1.0])
    )
    assert found.limit == Limit.LINE_LOADING.value
    assert found.element == "line l2 phase a" and found.worst_value == 120.0
    assert found.n_elements == 2 and found.first_time_s == 0.0
    assert (
        phase_loading_violation(
            loading, line_names=["l1", "l1", "l2"], line_phase=[1, 2, 1], limit_percent=150.0
        )
        is None
    )
    with pytest.raises(ScenarioError, match="expected a number > 0"):
        phase_loading_violation(loading, line_names=["a"] * 3, line_phase=[1] * 3, limit_percent=0)


def test_phase_loading_of_transformer_windings_names_the_transformer():
    loading = np.array([80.0, 107.3, 95.0])
    found = phase_loading_violation(
        loading, line_names=["xfm1"] * 3, line_phase=[1, 2, 3], limit=Limit.TRANSFORMER_LOADING
    )
    assert found.limit == Limit.TRANSFORMER_LOADING.value
    assert found.element == "transformer xfm1 phase b" and found.worst_value == 107.3
    with pytest.raises(ScenarioError, match="loading limit kind"):
        phase_loading_violation(
            loading, line_names=["x"] * 3, line_phase=[1] * 3, limit=Limit.EN_50160_LOW
        )
