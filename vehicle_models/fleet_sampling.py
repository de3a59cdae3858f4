"""Random fleets: daily-repeating plug-in sessions sampled from a preset, reproducible by seed.

:meth:`vehicle_models.fleet.Fleet.sample` builds a fleet from :func:`sampled_fleet_arguments`;
the session statistics of each preset are in :mod:`vehicle_models.presets`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from grids.errors import ScenarioError, check_problems
from vehicle_models.battery import BatteryBank, TheveninParameters
from vehicle_models.presets import (
    S_PER_DAY,
    FleetPreset,
    preset_parameters,
    sample_sessions,
)


def sampled_fleet_arguments(
    n_vehicles: int,
    *,
    buses,
    preset: FleetPreset | str = FleetPreset.HOME,
    seed: int = 0,
    bus_weights=None,
    thevenin: TheveninParameters | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """Sample vehicles, buses and sessions; the arguments of :class:`~vehicle_models.fleet.Fleet`.

    Parameters
    ----------
    n_vehicles : int
        Number of vehicles (>= 1).
    buses : array_like of int
        Candidate pandapower bus indices; each vehicle gets one at random (uniformly, or with
        ``bus_weights``).
    preset : FleetPreset or str
        ``HOME``, ``WORK`` or ``DEPOT`` (see :mod:`vehicle_models.presets`).
    seed : int
        Seed of every random draw (same seed, same fleet).
    bus_weights : array_like, optional
        Non-negative weight per candidate bus.
    thevenin : TheveninParameters, optional
        Equivalent-circuit battery model.
    overrides
        Any :class:`~vehicle_models.presets.PresetParameters` field, e.g.
        ``p_charge_max_kw=11.0, soc_target_frac=0.8``.

    Returns
    -------
    dict
        ``bus, arrival_s, dwell_s, e_target_kwh, e_trip_kwh, battery, period_s`` (one day).

    Raises
    ------
    ScenarioError
        Listing every problem with the count, buses or weights.
    """
    if not (isinstance(n_vehicles, int | np.integer) and n_vehicles >= 1):
        raise ScenarioError(f"fleet.n_vehicles: {n_vehicles!r} must be a positive integer")
    params = preset_parameters(preset, **overrides)
    candidates = np.atleast_1d(np.asarray(buses))
    problems = []
    if candidates.size == 0:
        problems.append("fleet.buses: no bus given")
    elif not np.issubdtype(candidates.dtype, np.integer):
        problems.append(f"fleet.buses: bus indices must be integers, got {candidates.dtype}")
    weights = None
    if bus_weights is not None:
        weights = np.asarray(bus_weights, dtype=np.float64)
        if weights.shape != candidates.shape or np.any(weights < 0) or weights.sum() <= 0:
            problems.append("fleet.bus_weights: need one non-negative weight per bus")
        else:
            weights = weights / weights.sum()
    check_problems(problems, ScenarioError, "invalid fleet")
    rng = np.random.default_rng(seed)
    bus = rng.choice(candidates, size=n_vehicles, p=weights)
    s = sample_sessions(n_vehicles, params, rng)
    battery = BatteryBank.create(
        e_capacity_kwh=s["e_capacity_kwh"],
        soc_frac=s["soc_arrival_frac"],
        p_charge_max_kw=params.p_charge_max_kw,
        p_discharge_max_kw=params.p_discharge_max_kw,
        s_max_kva=params.s_max_kva,
        eta_charge=params.eta_charge,
        eta_discharge=params.eta_discharge,
        soc_min_frac=params.soc_min_frac,
        soc_max_frac=params.soc_max_frac,
        soc_reserve_frac=params.soc_reserve_frac,
        thevenin=thevenin,
    )
    return {
        "bus": bus,
        "arrival_s": s["arrival_s"],
        "dwell_s": s["dwell_s"],
        "e_target_kwh": params.soc_target_frac * s["e_capacity_kwh"],
        "e_trip_kwh": s["e_trip_kwh"],
        "battery": battery,
        "period_s": S_PER_DAY,
    }


__all__ = ["sampled_fleet_arguments"]
