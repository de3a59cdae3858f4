"""One scenario model (issue 13): the TOML parsed once into typed, frozen specs with enums;
one pair of functions to plain parameters and back; study sections registered by the study;
every declared key listed in docs/scenario_reference.md."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest

from cosim import scenario as scenario_module
from cosim.scenario import (
    ISLAND_PARAMS,
    OUTPUT_PARAMS,
    STRUCTURED_KEYS,
    FeederConfig,
    FleetConfig,
    FrequencyConfig,
    event_params,
    feeder_params,
    fleet_params,
    load_scenario,
    register_section,
    simulation_params,
    study_sections,
    transformer_params,
)
from cosim.specs import from_params, to_params
from grids.errors import ScenarioError

DATA = {
    "simulation": {"duration_s": 1800.0, "step_s": 300.0, "seed": 2},
    "feeder": {
        "name": "case33bw",
        "method": "lindistflow",
        "transformer": {"rating_mva": 4.0, "cooling": "ONAF", "paper": "upgraded"},
    },
    "fleet": {
        "n_vehicles": 20,
        "preset": "work",
        "policy": "uniform",
        "control": {"functions": ["volt_var", "freq_watt"], "volt_var": {"q1_pu": 0.3}},
    },
    "frequency": {"f0_hz": 60.0, "h_s": 4.0, "s_base_mw": 50.0},
    "events": [{"t_s": 600.0, "kind": "generation_loss", "p_mw": 2.0}],
}


def test_specs_are_typed_once():
    from grids.frequency import SwingParameters
    from grids.powerflow import PowerFlowMethod
    from grids.thermal import CoolingMode, Paper
    from vehicle_models.fleet import ChargingPolicy
    from vehicle_models.presets import FleetPreset
    from vehicle_models.settings import InverterSettings

    s = load_scenario(DATA)
    assert s.feeder.method is PowerFlowMethod.LINDISTFLOW
    assert s.feeder.transformer.cooling is CoolingMode.ONAF
    assert s.feeder.transformer.overrides == {"paper": Paper.UPGRADED}
    assert s.fleet.preset is FleetPreset.WORK and s.fleet.policy is ChargingPolicy.UNIFORM
    assert isinstance(s.fleet.settings, InverterSettings)
    assert s.fleet.settings.volt_var.q1_pu == 0.3
    assert isinstance(s.frequency.params, SwingParameters) and s.frequency.params.h_s == 4.0
    with pytest.raises(AttributeError):
        s.fleet.n_vehicles = 3  # frozen


@pytest.mark.parametrize("cls", [FeederConfig, FleetConfig, FrequencyConfig])
def test_to_params_is_plain_json_and_from_params_gives_the_spec_back(cls):
    s = load_scenario(DATA)
    spec = {FeederConfig: s.feeder, FleetConfig: s.fleet, FrequencyConfig: s.frequency}[cls]
    plain = to_params(spec)
    assert json.loads(json.dumps(plain)) == plain  # JSON-safe: what a remote process gets
    assert from_params(cls, plain) == spec


def test_the_inverter_settings_are_parsed_once_per_run(tmp_path, monkeypatch):
    """Validation parses [fleet.control]; the in-process FleetSim receives the object."""
    from cosim.world import run_scenario
    from vehicle_models.settings import InverterSettings

    s = load_scenario(DATA)
    calls = []
    original = InverterSettings.from_dict.__func__

    def counting(cls, data, *, path="fleet.control"):
        calls.append(path)
        return original(cls, data, path=path)

    monkeypatch.setattr(InverterSettings, "from_dict", classmethod(counting))
    run_scenario(s, tmp_path, progress=False, record=False)
    assert calls == []


def test_study_sections_are_registered_by_the_study():
    for module in ("studies.black_start", "studies.contingency_scenario"):
        importlib.import_module(module)  # a study registers its section when imported

    assert {"contingency", "black_start"} <= set(study_sections())
    seen = []

    def validator(table):
        seen.append(table)
        return [] if table.get("ok") else ["my_study.ok: must be true"]

    register_section("my_study", validator)
    try:
        load_scenario({**DATA, "my_study": {"ok": True}})
        with pytest.raises(ScenarioError, match=r"my_study\.ok: must be true"):
            load_scenario({**DATA, "my_study": {"ok": False}})
        assert "my_study" in study_sections()
        assert len(seen) == 2
    finally:
        scenario_module._STUDY_SECTIONS.pop("my_study")
    with pytest.raises(ScenarioError, match="my_study: unknown section"):
        load_scenario({**DATA, "my_study": {}})
    with pytest.raises(ValueError, match="section of the co-simulation itself"):
        register_section("fleet")


def test_the_reference_lists_every_declared_key():
    """docs/scenario_reference.md names every key the loader accepts (declared once)."""
    text = (Path(__file__).parents[2] / "docs" / "scenario_reference.md").read_text()
    sections = {
        "simulation": simulation_params(),
        "feeder": feeder_params(),
        "feeder.transformer": transformer_params(),
        "fleet": fleet_params(),
        "frequency.island": ISLAND_PARAMS,
        "events": event_params(None),
        "output": OUTPUT_PARAMS,
    }
    missing = [
        f"{section}.{p.name}"
        for section, params in sections.items()
        for p in params
        if f"`{p.name}`" not in text and f"`{section}.{p.name}`" not in text
    ]
    missing += [
        f"{section}.{row[0]}"
        for section, rows in STRUCTURED_KEYS.items()
        for row in rows
        if f"`{row[0]}`" not in text and f"[{section}.{row[0]}]" not in text
    ]
    assert missing == []


def test_a_50_hz_fleet_spec_goes_through_plain_parameters_unchanged():
    """At 50 Hz the settings are EN 50549-1's (droop from 49.8 Hz) and survive the process
    boundary: to_params -> JSON -> from_params gives the same spec (a remote fleet)."""
    from vehicle_models.settings import GridCode

    data = json.loads(json.dumps(DATA))
    data["frequency"]["f0_hz"] = 50.0
    fleet = load_scenario(data).fleet
    assert fleet.f_nominal_hz == 50.0
    assert fleet.settings.grid_code is GridCode.EN_50549_1
    assert 50.0 - fleet.settings.freq_watt.db_uf_hz == pytest.approx(49.8)
    plain = json.loads(json.dumps(to_params(fleet)))
    assert from_params(FleetConfig, plain) == fleet


def test_a_volt_var_setting_goes_from_the_toml_to_the_inverter_kernel_unparsed(
    tmp_path, monkeypatch
):
    """``[fleet.control.volt_var] v1_pu`` is read once: the FleetSim of an in-process run
    receives the very ``InverterSettings`` object of the spec (identity, with every re-parse
    made to raise), and the inverter kernel's volt-var curve starts at the written value.

    Reference: the value written in the TOML (0.93 pu, not the Category B default 0.92 pu of
    IEEE 1547-2018 Table 8); exact equality (a float copied, not computed).
    """
    from cosim.simulators import FleetSim
    from cosim.world import run_scenario
    from grids.frequency import SwingParameters
    from vehicle_models.settings import InverterSettings

    path = tmp_path / "volt_var.toml"
    path.write_text(
        "[simulation]\nduration_s = 600.0\nstep_s = 300.0\nseed = 1\n"
        '[feeder]\nname = "case33bw"\nmethod = "lindistflow"\n'
        '[fleet]\nn_vehicles = 10\npreset = "home"\n'
        '[fleet.control]\nfunctions = ["volt_var"]\n'
        "[fleet.control.volt_var]\nv1_pu = 0.93\n"
        "[frequency]\nf0_hz = 60.0\nh_s = 4.0\ns_base_mw = 50.0\n"
    )
    scenario = load_scenario(path)
    spec_settings = scenario.fleet.settings
    assert spec_settings.volt_var.v1_pu == 0.93

    def refuse(*args, **kwargs):
        raise AssertionError("the scenario's tables were parsed again")

    monkeypatch.setattr(InverterSettings, "from_dict", classmethod(refuse))
    monkeypatch.setattr(SwingParameters, "from_dict", classmethod(refuse))
    received = {}
    create = FleetSim.create

    def recording(self, num, model, **params):
        received["control"] = params.get("control")
        received["sim"] = self
        return create(self, num, model, **params)

    monkeypatch.setattr(FleetSim, "create", recording)
    run_scenario(scenario, tmp_path / "out", progress=False, record=False)
    assert received["control"] is spec_settings
    fleet = received["sim"].fleet
    assert fleet.settings is spec_settings and fleet.inverter.settings is spec_settings
    kernel = fleet.inverter._params  # what the compiled step kernel reads
    assert kernel.volt_var
    assert kernel.vv_table[0, 0] == 0.93  # first corner of the curve (V_ref = 1 pu, no shift)
