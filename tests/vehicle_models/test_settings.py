"""IEEE 1547-2018 inverter settings: defaults, ranges and validation messages.

Independent reference for the defaults: EPRI OpenDER's settings file (``opender``,
``DERCommonFileFormat``), which encodes IEEE 1547-2018 Tables 8, 10, 11-13, 18, 24 and the
enter-service defaults of clause 4.10; compared exactly.
"""

from __future__ import annotations

import logging

import pytest

from grids.errors import ScenarioError
from vehicle_models.settings import (
    AbnormalCategory,
    ControlFunction,
    GridMode,
    InverterSettings,
    Priority,
    StaggerMode,
    TripSettings,
    VoltageCategory,
)

logging.getLogger("root").setLevel(logging.CRITICAL)


def _opender_file(vcat: str, acat: str):
    from opender import DERCommonFileFormat

    logging.disable(logging.CRITICAL)
    try:
        f = DERCommonFileFormat(
            NP_VA_MAX=100e3,
            NP_P_MAX=100e3,
            NP_Q_MAX_INJ=44e3,
            NP_Q_MAX_ABS=44e3,
            NP_AC_V_NOM=240,
            NP_NORMAL_OP_CAT=f"CAT_{vcat}",
            NP_ABNORMAL_OP_CAT=f"CAT_{acat}",
        )
    finally:
        logging.disable(logging.NOTSET)
    return f


@pytest.mark.parametrize("vcat", ["A", "B"])
@pytest.mark.parametrize("acat", ["I", "II", "III"])
def test_defaults_match_opender(vcat, acat):
    """Every category default equals OpenDER's (which implements the standard's tables)."""
    s = InverterSettings.defaults(voltage_category=vcat, abnormal_category=acat)
    od = _opender_file(vcat, acat)
    vv = s.volt_var
    assert (vv.v1_pu, vv.v2_pu, vv.v3_pu, vv.v4_pu) == (
        od.QV_CURVE_V1,
        od.QV_CURVE_V2,
        od.QV_CURVE_V3,
        od.QV_CURVE_V4,
    )
    assert (vv.q1_pu, vv.q4_pu, vv.olrt_s, vv.v_ref_pu) == (
        od.QV_CURVE_Q1,
        od.QV_CURVE_Q4,
        od.QV_OLRT,
        od.QV_VREF,
    )
    vw = s.volt_watt
    assert (vw.v1_pu, vw.v2_pu, vw.olrt_s) == (od.PV_CURVE_V1, od.PV_CURVE_V2, od.PV_OLRT)
    fw = s.freq_watt
    assert (fw.db_of_hz, fw.db_uf_hz, fw.k_of, fw.k_uf, fw.olrt_s) == (
        od.PF_DBOF,
        od.PF_DBUF,
        od.PF_KOF,
        od.PF_KUF,
        od.PF_OLRT,
    )
    t = s.trip
    for name in ("OV2", "OV1", "UV1", "UV2"):
        assert getattr(t, f"{name.lower()}_v_pu") == getattr(od, f"{name}_TRIP_V"), name
        assert getattr(t, f"{name.lower()}_t_s") == getattr(od, f"{name}_TRIP_T"), name
    for name in ("OF2", "OF1", "UF1", "UF2"):
        assert getattr(t, f"{name.lower()}_f_hz") == getattr(od, f"{name}_TRIP_F"), name
        assert getattr(t, f"{name.lower()}_t_s") == getattr(od, f"{name}_TRIP_T"), name
    es = s.enter_service
    assert (es.v_low_pu, es.v_high_pu, es.f_low_hz, es.f_high_hz, es.delay_s, es.ramp_s) == (
        od.ES_V_LOW,
        od.ES_V_HIGH,
        od.ES_F_LOW,
        od.ES_F_HIGH,
        od.ES_DELAY,
        od.ES_RAMP_RATE,
    )
    assert s.watt_var.q3_pu == od.QP_CURVE_Q3_GEN
    # momentary cessation enabled in OpenDER only for Category III
    assert (s.trip.mc_high_v_pu == 1.10) == (acat == "III")
    assert s.problems() == []


def test_standard_tables_spot_values():
    """Spot values typed from IEEE 1547-2018 Tables 8, 11-13, 18, 24, 25 (not via OpenDER)."""
    a = InverterSettings.defaults(voltage_category="A")
    assert (a.volt_var.v1_pu, a.volt_var.q1_pu, a.volt_var.olrt_s) == (0.90, 0.25, 10.0)
    cat1 = TripSettings.defaults(AbnormalCategory.I)
    assert (cat1.uv1_v_pu, cat1.uv1_t_s, cat1.uv2_v_pu, cat1.uv2_t_s) == (0.70, 2.0, 0.45, 0.16)
    cat2 = TripSettings.defaults(AbnormalCategory.II)
    assert (cat2.uv1_t_s, cat2.ov1_t_s) == (10.0, 2.0)
    cat3 = TripSettings.defaults(AbnormalCategory.III)
    assert (cat3.uv1_v_pu, cat3.uv1_t_s, cat3.uv2_v_pu, cat3.uv2_t_s, cat3.ov1_t_s) == (
        0.88,
        21.0,
        0.50,
        2.0,
        13.0,
    )
    assert TripSettings.standard_ranges(AbnormalCategory.III)["uv1_t_s"] == (2.0, 50.0)
    assert TripSettings.standard_ranges(AbnormalCategory.I)["uv2_t_s"] == (0.16, 2.0)
    assert TripSettings.standard_ranges(AbnormalCategory.II)["of1_t_s"] == (180.0, 1000.0)
    # Table 25: Category III allows 2 % droop and 0.2 s response, Categories I/II do not.
    s = InverterSettings.defaults()
    assert s.freq_watt.ranges(None, AbnormalCategory.III)["k_of"] == (0.02, 0.05)
    assert s.freq_watt.ranges(None, AbnormalCategory.I)["olrt_s"] == (1.0, 10.0)


def test_round_trip_to_dict_from_dict():
    s = InverterSettings.defaults(voltage_category="A", abnormal_category="II")
    d = s.to_dict()
    assert d["droop"]["k_of"] == 0.05 and d["functions"] == ["freq_watt", "volt_var"]
    assert InverterSettings.from_dict(d) == s


def test_from_dict_applies_category_defaults_and_overrides():
    s = InverterSettings.from_dict(
        {
            "voltage_category": "a",
            "abnormal_category": "I",
            "mode": "grid_forming",
            "priority": "active",
            "functions": ["volt_watt", "pf"],
            "volt_var": {"olrt_s": 20},
            "droop": {"db_hz": 0.1, "k": 0.04},
            "pf": {"pf": 0.95, "excitation": "inject"},
            "stagger": {"mode": "tiered", "n_tiers": 3},
            "vsm": {"h_s": 4.0},
        }
    )
    assert s.voltage_category is VoltageCategory.A and s.abnormal_category is AbnormalCategory.I
    assert s.mode is GridMode.GRID_FORMING and s.priority is Priority.ACTIVE
    assert s.functions == {ControlFunction.VOLT_WATT, ControlFunction.CONSTANT_PF}
    assert s.volt_var.v1_pu == 0.90 and s.volt_var.olrt_s == 20.0  # Cat A default + override
    assert (s.freq_watt.db_of_hz, s.freq_watt.db_uf_hz) == (0.1, 0.1)
    assert (s.freq_watt.k_of, s.freq_watt.k_uf) == (0.04, 0.04)
    assert s.trip.uv1_t_s == 2.0  # Cat I default
    assert s.stagger.mode is StaggerMode.TIERED and s.stagger.n_tiers == 3
    assert s.vsm.h_s == 4.0


def test_every_problem_reported_with_path_value_and_range():
    data = {
        "voltage_category": "C",
        "colour": "red",
        "functions": ["volt_var", "pf", "magic"],
        "volt_var": {"v1_pu": 1.2, "q1_pu": "big", "foo": 1},
        "droop": {"k": 0.01, "db_hz": 0.5, "db_of_hz": 0.2},
        "trip": {"uv1_t_s": 60.0, "ov2_v_pu": 1.25},
        "enter_service": {"delay_s": 900},
        "stagger": {"mode": "chaotic"},
    }
    with pytest.raises(ScenarioError) as info:
        InverterSettings.from_dict(data, path="fleet.control")
    problems = info.value.problems
    text = str(info.value)
    assert "fleet.control.voltage_category: 'C' is not one of 'A', 'B'" in problems
    assert any(p.startswith("fleet.control.colour: unknown key") for p in problems)
    assert any("'magic' is not one of" in p for p in problems)
    assert any("at most one reactive-power mode" in p for p in problems)
    assert (
        "fleet.control.volt_var.v1_pu: 1.2 is out of range: expected a number in [0.82, 0.96] "
        "[pu]" in problems
    )
    assert any(
        p.startswith("fleet.control.volt_var.q1_pu: 'big' is not a number: expected a number")
        for p in problems
    )
    assert any(p.startswith("fleet.control.volt_var.foo: unknown key") for p in problems)
    assert any("give either db_hz or db_of_hz" in p for p in problems)
    assert (
        "fleet.control.droop.k_of: 0.01 is out of range: expected a number in [0.02, 0.05] [pu]"
        in problems
    )
    assert (
        "fleet.control.trip.uv1_t_s: 60 is out of range: expected a number in [2, 50] [s]" in text
    )
    assert (
        "fleet.control.trip.ov2_v_pu: 1.25 is out of range: expected a number in [1.2, 1.2]" in text
    )
    assert (
        "fleet.control.enter_service.delay_s: 900 is out of range: expected a number in [0, 600]"
        in text
    )
    assert "fleet.control.stagger.mode: 'chaotic' is not one of" in text
    assert len(problems) >= 13


def test_category_dependent_ranges():
    # Cat I allows UV1 clearing times only up to 21 s (Table 11); Cat III up to 50 s.
    with pytest.raises(
        ScenarioError,
        match=r"trip.uv1_t_s: 30 is out of range: expected a number in \[2, 21\] \[s\]",
    ):
        InverterSettings.from_dict({"abnormal_category": "I", "trip": {"uv1_t_s": 30}})
    s = InverterSettings.from_dict({"abnormal_category": "III", "trip": {"uv1_t_s": 30}})
    assert s.trip.uv1_t_s == 30.0
    # Cat A absorbs at most down to PF 0.97 (Table 7 capability); Cat B to 0.90.
    with pytest.raises(
        ScenarioError, match=r"pf.pf: 0.95 is out of range: expected a number in \[0.97, 1\]"
    ):
        InverterSettings.from_dict({"voltage_category": "A", "pf": {"pf": 0.95}})
    InverterSettings.from_dict({"voltage_category": "B", "pf": {"pf": 0.95}})


def test_dependent_curve_ranges_and_orderings():
    with pytest.raises(ScenarioError) as info:
        InverterSettings.from_dict({"volt_watt": {"v1_pu": 1.08, "v2_pu": 1.085}})
    assert "volt_watt.v2_pu: 1.085 is out of range: expected a number in [1.09, 1.1] [pu]" in str(
        info.value
    )
    with pytest.raises(ScenarioError, match="uf2_f_hz: 57 must not exceed"):
        InverterSettings.from_dict({"trip": {"uf2_f_hz": 57.0, "uf1_f_hz": 56.0}})


def test_not_a_table():
    with pytest.raises(ScenarioError, match=r"fleet\.control: expected a table"):
        InverterSettings.from_dict(["volt_var"])
    with pytest.raises(ScenarioError, match=r"fleet\.control\.droop: expected a table"):
        InverterSettings.from_dict({"droop": 3})
    with pytest.raises(ScenarioError, match="functions: expected a list"):
        InverterSettings.from_dict({"functions": "volt_var"})


def test_validate_direct_construction():
    import dataclasses

    from vehicle_models.settings import VoltVarSettings

    bad = dataclasses.replace(InverterSettings.defaults(), volt_var=VoltVarSettings(olrt_s=0.1))
    with pytest.raises(
        ScenarioError,
        match=r"volt_var\.olrt_s: 0\.1 is out of range: expected a number in \[1, 90\]",
    ):
        bad.validate()


def test_to_dict_is_toml_serializable():
    import tomllib

    import tomli_w

    s = InverterSettings.from_dict(
        {"functions": [], "volt_var": {"v_ref_auto": True}, "stagger": {"mode": "random"}}
    )
    text = tomli_w.dumps({"fleet": {"control": s.to_dict()}})
    again = InverterSettings.from_dict(tomllib.loads(text)["fleet"]["control"])
    assert again == s and again.functions == frozenset()
