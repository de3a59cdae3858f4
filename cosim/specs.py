"""Specs <-> plain parameters: the one pair of functions for mosaik's process boundary.

The scenario is parsed once into typed, frozen specs (:mod:`cosim.scenario`: enums, the
parsed inverter settings, the parsed swing parameters). In-process simulators receive those
objects; a simulator in its own process (``[simulation] remote``) receives its parameters as
JSON, so :func:`to_params` turns a spec into plain values (enum values, lists, the settings'
TOML table) and :func:`from_params` turns them back into the same spec.
"""

from __future__ import annotations

from dataclasses import fields, is_dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from cosim.scenario import (
    AdoptionConfig,
    EventConfig,
    EventKind,
    FeederConfig,
    FeederEntry,
    FleetConfig,
    FrequencyConfig,
    RegulatorControl,
    TransformerConfig,
    swing_parameters,
)


def plain_value(value: Any) -> Any:
    """An enum's TOML word; anything else unchanged."""
    return value.value if isinstance(value, Enum) else value


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if is_dataclass(value) and not isinstance(value, type):
        return to_params(value)
    return value


def to_params(spec: Any) -> dict[str, Any]:
    """Plain, JSON-safe parameters of a spec (the inverse of :func:`from_params`).

    Parameters
    ----------
    spec : FeederConfig, TransformerConfig, FleetConfig, FrequencyConfig, EventConfig or
        FeederEntry
        A spec of a validated scenario.

    Returns
    -------
    dict
        Field name -> plain value: enums as their TOML words, tuples as lists, the fleet's
        inverter settings as their ``[fleet.control]`` table, the swing parameters as the
        ``[frequency]`` table.
    """
    out: dict[str, Any] = {}
    for f in fields(spec):
        value = getattr(spec, f.name)
        if isinstance(spec, FleetConfig) and f.name == "settings":
            value = None if value is None else value.to_dict()
        elif isinstance(spec, FrequencyConfig) and f.name == "params":
            continue  # the table below carries them
        out[f.name] = _plain(value)
    return out


def from_params(cls: type, params: dict[str, Any]) -> Any:
    """The spec of class ``cls`` back from :func:`to_params` output.

    Parameters
    ----------
    cls : type
        ``FeederConfig``, ``TransformerConfig``, ``FleetConfig``, ``FrequencyConfig``,
        ``EventConfig`` or ``FeederEntry``.
    params : dict
        Plain parameters.

    Returns
    -------
    The spec, equal to the one :func:`to_params` was given.
    """
    kwargs = dict(params)
    if cls is TransformerConfig:
        from grids.thermal import CoolingMode, Paper

        kwargs["cooling"] = CoolingMode(kwargs["cooling"])
        overrides = dict(kwargs.get("overrides") or {})
        if "paper" in overrides:
            overrides["paper"] = Paper(overrides["paper"])
        kwargs["overrides"] = overrides
    elif cls is FeederConfig:
        from grids.powerflow import PowerFlowMethod

        kwargs["method"] = PowerFlowMethod(kwargs["method"])
        kwargs["transformer"] = from_params(TransformerConfig, kwargs["transformer"])
        if "regulator_control" in kwargs:
            kwargs["regulator_control"] = RegulatorControl(kwargs["regulator_control"])
    elif cls is FleetConfig:
        from vehicle_models.fleet import ChargingPolicy
        from vehicle_models.phases import ChargerConnection, PhaseAllocation
        from vehicle_models.presets import FleetPreset
        from vehicle_models.settings import InverterSettings

        kwargs["preset"] = FleetPreset(kwargs["preset"])
        kwargs["policy"] = ChargingPolicy(kwargs["policy"])
        kwargs["phase_allocation"] = PhaseAllocation(kwargs["phase_allocation"])
        kwargs["charger_connection"] = ChargerConnection(kwargs["charger_connection"])
        if kwargs.get("buses") is not None:
            # bus names (str) on a three-phase feeder, indices otherwise
            kwargs["buses"] = tuple(b if isinstance(b, str) else int(b) for b in kwargs["buses"])
        adoption = kwargs.get("adoption")
        if adoption is not None:
            from vehicle_models.adoption import AdoptionSource

            adoption = dict(adoption)
            adoption["source"] = AdoptionSource(adoption["source"])
            kwargs["adoption"] = AdoptionConfig(**adoption)
        settings = kwargs.get("settings")
        if settings is not None:
            kwargs["settings"] = InverterSettings.from_dict(
                settings, path="fleet.control", f_nominal_hz=float(kwargs["f_nominal_hz"])
            )
    elif cls is FrequencyConfig:
        kwargs["params"] = swing_parameters(kwargs.get("table") or {})
    elif cls is EventConfig:
        kwargs["kind"] = EventKind(kwargs["kind"])
    elif cls is FeederEntry:
        kwargs["feeder"] = from_params(FeederConfig, kwargs["feeder"])
        if kwargs.get("fleet") is not None:
            kwargs["fleet"] = from_params(FleetConfig, kwargs["fleet"])
    else:
        raise TypeError(f"from_params: {cls.__name__} is not a scenario spec")
    return cls(**kwargs)
