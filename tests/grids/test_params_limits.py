"""The validation kit (grids.params) and the named limits (grids.limits)."""

from __future__ import annotations

from enum import Enum

import numpy as np
import pytest

from grids.limits import Limit, upper_limit_violation, voltage_violations
from grids.params import REQUIRED, Param, is_number, params_markdown, read_params


class Color(Enum):
    RED = "red"
    BLUE = "blue"


SPEC = (
    Param("h_s", 5.0, unit="s", lo=0.0, lo_open=True, doc="inertia"),
    Param("n", REQUIRED, kind=int, lo=1),
    Param("color", Color.RED, kind=Color),
    Param("on", False, kind=bool),
    Param("r_pu", 0.05, allow_inf=True, lo=0.0, lo_open=True),
)


def test_every_problem_is_listed_with_its_key_path():
    problems: list[str] = []
    out = read_params(
        {"h_s": -1, "color": "green", "on": 1, "extra": 2, "r_pu": float("nan")},
        SPEC,
        path="frequency",
        problems=problems,
    )
    text = "\n".join(problems)
    assert "frequency.h_s: -1 is out of range: expected a number > 0 [s]" in text
    assert "frequency.n: missing (required" in text
    assert "frequency.color: 'green' is not one of 'red', 'blue'" in text
    assert "frequency.on: 1 is not true or false" in text
    assert "frequency.extra: unknown key" in text
    assert "frequency.r_pu: nan is not a finite number: expected a number > 0" in text
    assert len(problems) == 6
    assert out["h_s"] == 5.0 and out["color"] is Color.RED


def test_valid_values_are_converted():
    problems: list[str] = []
    out = read_params(
        {"h_s": 4, "n": 3, "color": "blue", "on": True, "r_pu": float("inf")},
        SPEC,
        path="",
        problems=problems,
    )
    assert problems == []
    assert out == {"h_s": 4.0, "n": 3, "color": Color.BLUE, "on": True, "r_pu": float("inf")}
    assert isinstance(out["h_s"], float)


def test_integers_refuse_floats_and_bools():
    for bad in (3.0, 2.5, True, "3"):
        problems: list[str] = []
        read_params({"n": bad}, SPEC[1:2], path="x", problems=problems)
        assert problems == [f"x.n: {bad!r} is not an integer: expected an integer >= 1"]


def test_is_number():
    assert is_number(1) and is_number(1.5) and is_number(np.float64(2.0))
    assert not is_number(True) and not is_number("1") and not is_number(np.array([1.0]))


def test_params_markdown_lists_defaults_and_ranges():
    text = params_markdown(SPEC, path="frequency")
    assert "| `frequency.h_s` | `5.0` | a number > 0 [s] | inertia |" in text
    assert "| `frequency.n` | required | an integer >= 1 |" in text


def test_voltage_violations_name_worst_bus_first_time_and_duration():
    vm = np.ones((4, 3))
    vm[1, 2] = 0.94  # range A low only
    vm[2, 1] = 0.90  # range A and B low
    found = voltage_violations(
        vm, bus_names=["bus 0", "bus 1", "bus 2"], t_s=np.arange(4) * 3600.0, step_s=3600.0
    )
    by_limit = {v.limit: v for v in found}
    a_low = by_limit[Limit.ANSI_C84_1_RANGE_A_LOW.value]
    assert a_low.element == "bus 1" and a_low.worst_value == pytest.approx(0.90)
    assert a_low.first_time_s == 3600.0 and a_low.duration_s == 7200.0 and a_low.n_elements == 2
    b_low = by_limit[Limit.ANSI_C84_1_RANGE_B_LOW.value]
    assert b_low.n_elements == 1 and b_low.first_time_s == 7200.0
    assert set(by_limit) == {Limit.ANSI_C84_1_RANGE_A_LOW.value, Limit.ANSI_C84_1_RANGE_B_LOW.value}
    assert "bus 1 at 0.9 pu" in a_low.describe()


def test_no_violation_inside_the_band_and_nan_ignored():
    assert voltage_violations(np.array([1.0, 0.96, 1.04]), bus_names=["a", "b", "c"]) == []
    loading = np.array([[50.0, np.nan], [120.0, np.nan]])
    v = upper_limit_violation(
        loading, 100.0, limit=Limit.LINE_LOADING, quantity="loading_percent", names=["l0", "l1"]
    )
    assert v is not None and v.element == "l0" and v.worst_value == 120.0


def test_describe_writes_units_as_people_do():
    hot = upper_limit_violation(
        np.array([[130.0]]),
        120.0,
        limit=Limit.IEC_60076_7_HOT_SPOT_CYCLIC,
        quantity="hot_spot_c",
        names=["transformer"],
    )
    assert hot is not None and "130 °C (limit 120 °C)" in hot.describe()
    loaded = upper_limit_violation(
        np.array([150.0]),
        100.0,
        limit=Limit.LINE_LOADING,
        quantity="loading_percent",
        names=["line 3"],
    )
    assert loaded is not None and "150 % (limit 100 %)" in loaded.describe()


def test_duration_counts_each_sample_until_the_next_and_nothing_past_the_end():
    """Uneven samples (a high-rate window) and a sample at the run's end: the duration is the
    time actually spent outside the limit."""
    t_s = np.array([0.0, 900.0, 900.5, 901.0, 1800.0, 2700.0])
    vm = np.array([[1.0], [0.90], [0.90], [0.90], [1.0], [0.90]])
    (a_low, b_low) = voltage_violations(
        vm, bus_names=["bus 1"], t_s=t_s, step_s=900.0, end_s=2700.0
    )
    # 900 -> 1800 outside; the sample at 2700 is the run's end and adds nothing
    assert a_low.duration_s == pytest.approx(900.0) == b_low.duration_s
    open_ended = voltage_violations(vm, bus_names=["bus 1"], t_s=t_s, step_s=900.0)[0]
    assert open_ended.duration_s == pytest.approx(1800.0)


def test_is_finite_number():
    from grids.params import is_finite_number

    assert is_finite_number(1) and is_finite_number(-2.5) and is_finite_number(np.float64(3.0))
    for bad in (float("nan"), float("inf"), True, "1", None, np.array([1.0])):
        assert not is_finite_number(bad)
