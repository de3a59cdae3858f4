"""What the direct-loop studies (contingency, black start) share: the scenario split, the
feeder net cache and the fleet builder.

One home for them, so that no study imports another study's private names.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from grids.errors import ScenarioError


def split_scenario(
    scenario: Mapping[str, Any] | str | Path,
    *,
    own_section: str,
    extra_events: Sequence[Mapping[str, Any]] = (),
) -> tuple[Any, dict[str, Any], str, list[str], dict[str, Any]]:
    """Validate the shared sections with the co-simulation loader; return the study's own.

    The study sections registered with :func:`cosim.scenario.register_section`
    (``[contingency]``, ``[black_start]``) are taken out first and validated here by the
    study; the shared validator (:func:`cosim.scenario.validate_scenario`) checks the rest.

    Parameters
    ----------
    scenario : mapping or path
        A scenario dict or the path of a TOML file.
    own_section : str
        The study's own section name (``"contingency"``).
    extra_events : sequence of mapping, keyword-only
        ``[[events]]`` tables added to the scenario's own (e.g. a fault given on the command
        line), validated with them.

    Returns
    -------
    (Scenario or None, own section dict, source name, problems, raw shared dict)
        ``Scenario`` is None when the shared sections have problems (they are in the list).
    """
    from cosim.scenario import read_toml, study_sections, validate_scenario

    if isinstance(scenario, Mapping):
        raw = copy.deepcopy(dict(scenario))
        source, base_dir = "<dict>", Path.cwd()
    else:
        raw = read_toml(scenario)
        source, base_dir = str(scenario), Path(scenario).resolve().parent
    if extra_events:
        existing = raw.get("events", [])
        raw["events"] = [*(existing if isinstance(existing, list) else [existing])]
        raw["events"].extend(dict(e) for e in extra_events)
    problems: list[str] = []
    own = raw.pop(own_section, {})
    for other in study_sections():
        raw.pop(other, None)
    if not isinstance(own, Mapping):
        problems.append(f"{own_section}: expected a table [{own_section}], got {own!r}")
        own = {}
    shared = None
    try:
        shared = validate_scenario(raw, base_dir=base_dir)
    except ScenarioError as exc:
        problems.extend(exc.problems or [str(exc)])
    return shared, dict(own), source, problems, raw


@functools.lru_cache(maxsize=8)
def _prepared_net(name: str, load_scale: float, ext_grid_vm_pu: float | None):
    from grids.powerflow import prepare_net

    return prepare_net(name, load_scale=load_scale, ext_grid_vm_pu=ext_grid_vm_pu)


def feeder_net(feeder_config: Any):
    """A private copy of the scenario's prepared feeder net (loaded once per process).

    Parameters
    ----------
    feeder_config : cosim.scenario.FeederConfig
        The ``[feeder]`` section (``name``, ``load_scale``, ``ext_grid_vm_pu``).

    Returns
    -------
    pandapower.pandapowerNet
        A deep copy the caller may change; every case of a study shares the cached original.
    """
    return copy.deepcopy(
        _prepared_net(
            str(feeder_config.name), feeder_config.load_scale, feeder_config.ext_grid_vm_pu
        )
    )


def build_fleet(
    fleet_config: Any, feeder_config: Any, seed: int, settings: Any, **preset_overrides: Any
):
    """The fleet (:class:`~vehicle_models.fleet.Fleet`) and its feeder net.

    Parameters
    ----------
    fleet_config : cosim.scenario.FleetConfig
        The ``[fleet]`` section.
    feeder_config : cosim.scenario.FeederConfig or None
        The ``[feeder]`` section (None: no net).
    seed : int
        Seed of the fleet sampling.
    settings : vehicle_models.settings.InverterSettings
        Inverter settings of every vehicle.
    **preset_overrides
        Preset fields (e.g. ``soc_reserve_frac``) for sampled fleets.

    Returns
    -------
    (Fleet, pandapowerNet or None)
        Vehicles are sampled from the preset on ``fleet.buses`` (default: every bus with a
        load) or read from ``fleet.table``.
    """
    from vehicle_models.fleet import Fleet, FleetPreset

    net = feeder_net(feeder_config) if feeder_config is not None else None
    if fleet_config.table is not None:
        return Fleet.from_table(fleet_config.table, settings=settings), net
    if fleet_config.buses is not None:
        buses = np.asarray(fleet_config.buses, dtype=np.int64)
    elif net is not None:
        buses = np.unique(net.load.bus.to_numpy(dtype=np.int64))
    else:
        raise ScenarioError("fleet: a sampled fleet needs fleet.buses or a [feeder]")
    if net is not None:
        unknown = sorted(set(buses.tolist()) - set(net.bus.index.tolist()))
        if unknown:
            raise ScenarioError(f"fleet.buses: {unknown} are not buses of the feeder")
    fleet = Fleet.sample(
        int(fleet_config.n_vehicles),
        buses=buses,
        preset=FleetPreset(fleet_config.preset),
        seed=seed,
        settings=settings,
        ageing_interval_s=None,  # seconds-long events: ageing is negligible, skip its cost
        **preset_overrides,
    )
    return fleet, net


def clear_feeder_cache() -> None:
    """Forget the cached feeder nets (tests: a fresh load per study)."""
    _prepared_net.cache_clear()


def unrated_lines(net) -> np.ndarray:
    """Mask of the net's lines without a usable thermal rating (missing, zero, or a placeholder
    of :data:`grids.feeder_model.NO_RATING_KA` and more, such as the 99999 kA pandapower's
    MATPOWER converter writes for case33bw): the negation of
    :func:`grids.feeder_model.line_rated`, the feeder model's one definition.

    Parameters
    ----------
    net : pandapower.pandapowerNet
        The feeder.

    Returns
    -------
    numpy.ndarray of bool
        One entry per row of ``net.line``.
    """
    from grids.feeder_model import line_rated

    return ~line_rated(net)


def line_rating_notes(net) -> list[str]:
    """The missing-rating sentence for the net's unrated lines (empty when all are rated).

    Parameters
    ----------
    net : pandapower.pandapowerNet
        The feeder.

    Returns
    -------
    list of str
        :func:`grids.limits.missing_rating` text naming how many lines lack a rating.
    """
    from grids.limits import missing_rating

    bad = unrated_lines(net)
    if not bad.any():
        return []
    what = "the lines" if bad.all() else f"{int(bad.sum())} of {len(bad)} lines"
    return [missing_rating(what, "line loading_percent")]
