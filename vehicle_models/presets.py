"""Fleet presets: plug-in, departure and energy-need distributions for sampled fleets.

Three presets, each a set of distributions sampled with a seeded numpy generator:

* ``HOME``: private cars charging overnight at home (arrive in the evening, leave in the
  morning), bidirectional 7.2 kW wallbox, V2H backup reserve.
* ``WORK``: private cars at a workplace car park (arrive in the morning, leave in the late
  afternoon), 11 kW chargers.
* ``DEPOT``: battery-electric city buses at an overnight depot (large batteries, 150 kW
  chargers, long daily blocks).

Times of day are normal distributions wrapped to 0..24 h; the dwell time is the wrapped
difference between departure and arrival, at least ``dwell_min_h``. Daily distances are
log-normal (cars) or normal (buses); the energy needed is distance x consumption, capped so
that the arrival SoC is never below ``soc_min_frac``.

The numbers are chosen to resemble published statistics; they are defaults, not data. Use
:meth:`vehicle_models.fleet.Fleet.from_table` for measured sessions.

References
----------
.. [1] U.S. FHWA, "2017 National Household Travel Survey" (NHTS): average daily distance per
   private vehicle about 45 km; home arrivals peak 17:00-19:00; morning departures 07:00-08:00.
.. [2] J. Quirós-Tortós, L. Ochoa, S. Alnaser, T. Butler, "Control of EV charging points for
   thermal and voltage management of LV networks", IEEE Trans. Power Syst. 31(4) 2016 (home
   plug-in times and energies from the UK "My Electric Avenue" trial).
.. [3] Z. J. Lee, T. Li, S. H. Low, "ACN-Data: analysis and applications of an open EV
   charging dataset", ACM e-Energy 2019 (workplace arrivals around 08:00-09:00, stays ~8-9 h).
.. [4] M. Rogge, E. van der Hurk, A. Larsen, D. U. Sauer, "Electric bus fleet size and mix
   problem with optimization of charging infrastructure", Applied Energy 211 (2018)
   (depot charging, 1.0-1.4 kWh/km, 150 kW depot chargers, 200-300 km daily blocks).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from enum import Enum

import numpy as np

from grids.errors import ScenarioError, check_problems

S_PER_H = 3600.0
S_PER_DAY = 86400.0


class FleetPreset(Enum):
    """Named sampling presets for :meth:`vehicle_models.fleet.Fleet.sample`."""

    HOME = "home"
    WORK = "work"
    DEPOT = "depot"


class DistanceDistribution(Enum):
    """Shape of the daily-distance distribution."""

    LOGNORMAL = "lognormal"
    NORMAL = "normal"


@dataclass(frozen=True)
class PresetParameters:
    """Distributions and vehicle/charger parameters of one preset (overridable by name).

    Parameters
    ----------
    arrival_mean_h, arrival_std_h : float
        Plug-in time of day [h] (normal, wrapped to 0..24).
    departure_mean_h, departure_std_h : float
        Unplug time of day [h] (normal, wrapped).
    dwell_min_h : float
        Shortest plug-in duration [h].
    distance_mean_km, distance_std_km : float
        Daily distance driven before the session [km] (mean and standard deviation of the
        distance itself, whichever the shape).
    distance_shape : DistanceDistribution
    consumption_kwh_per_km : float
        Energy drawn from the battery per km [kWh/km].
    capacity_choices_kwh, capacity_weights : tuple of float
        Usable battery sizes [kWh] and their shares (normalised).
    p_charge_max_kw, p_discharge_max_kw, s_max_kva : float
        Charger ratings [kW], [kVA].
    eta_charge, eta_discharge : float
        Charger efficiencies [-].
    soc_min_frac, soc_max_frac, soc_reserve_frac, soc_target_frac : float
        User limits, V2H reserve and departure target [-].
    """

    arrival_mean_h: float
    arrival_std_h: float
    departure_mean_h: float
    departure_std_h: float
    dwell_min_h: float
    distance_mean_km: float
    distance_std_km: float
    distance_shape: DistanceDistribution
    consumption_kwh_per_km: float
    capacity_choices_kwh: tuple[float, ...]
    capacity_weights: tuple[float, ...]
    p_charge_max_kw: float
    p_discharge_max_kw: float
    s_max_kva: float
    eta_charge: float
    eta_discharge: float
    soc_min_frac: float
    soc_max_frac: float
    soc_reserve_frac: float
    soc_target_frac: float

    def problems(self, path: str = "fleet") -> list[str]:
        """Every invalid value as ``"path.name: value ..."``.

        Parameters
        ----------
        path : str
            Key path used in messages.

        Returns
        -------
        list of str
            One message per problem; empty when valid.
        """
        out: list[str] = []
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, float | int) and not np.isfinite(v):
                out.append(f"{path}.{f.name}: {v} is not a finite number")
        positive = (
            "dwell_min_h",
            "distance_mean_km",
            "consumption_kwh_per_km",
            "s_max_kva",
            "p_charge_max_kw",
        )
        for name in positive:
            if not getattr(self, name) > 0:
                out.append(f"{path}.{name}: {getattr(self, name)} must be positive")
        for name in ("arrival_std_h", "departure_std_h", "distance_std_km", "p_discharge_max_kw"):
            if getattr(self, name) < 0:
                out.append(f"{path}.{name}: {getattr(self, name)} must not be negative")
        for name in ("arrival_mean_h", "departure_mean_h"):
            if not 0 <= getattr(self, name) < 24:
                out.append(f"{path}.{name}: {getattr(self, name)} is outside the allowed [0, 24)")
        if self.dwell_min_h >= 24:
            out.append(f"{path}.dwell_min_h: {self.dwell_min_h} must be below 24")
        for name in ("soc_min_frac", "soc_max_frac", "soc_reserve_frac", "soc_target_frac"):
            if not 0 <= getattr(self, name) <= 1:
                out.append(f"{path}.{name}: {getattr(self, name)} is outside the allowed [0, 1]")
        for name in ("eta_charge", "eta_discharge"):
            if not 0 < getattr(self, name) <= 1:
                out.append(f"{path}.{name}: {getattr(self, name)} is outside the allowed (0, 1]")
        if not self.soc_min_frac <= self.soc_target_frac <= self.soc_max_frac:
            out.append(
                f"{path}.soc_target_frac: {self.soc_target_frac} must lie between soc_min_frac "
                f"({self.soc_min_frac}) and soc_max_frac ({self.soc_max_frac})"
            )
        if max(self.p_charge_max_kw, self.p_discharge_max_kw) > self.s_max_kva:
            out.append(
                f"{path}.s_max_kva: {self.s_max_kva} is below the active-power ratings "
                f"({self.p_charge_max_kw}, {self.p_discharge_max_kw} kW)"
            )
        caps = np.asarray(self.capacity_choices_kwh, dtype=float)
        weights = np.asarray(self.capacity_weights, dtype=float)
        if caps.size == 0 or caps.shape != weights.shape:
            out.append(f"{path}.capacity_choices_kwh: needs as many capacity_weights")
        elif np.any(caps <= 0) or np.any(weights < 0) or weights.sum() <= 0:
            out.append(f"{path}.capacity_choices_kwh: capacities must be > 0, weights >= 0")
        return out


PRESETS: dict[FleetPreset, PresetParameters] = {
    FleetPreset.HOME: PresetParameters(
        arrival_mean_h=18.0,
        arrival_std_h=2.0,
        departure_mean_h=7.5,
        departure_std_h=1.0,
        dwell_min_h=1.0,
        distance_mean_km=45.0,
        distance_std_km=35.0,
        distance_shape=DistanceDistribution.LOGNORMAL,
        consumption_kwh_per_km=0.18,
        capacity_choices_kwh=(40.0, 60.0, 77.0, 100.0),
        capacity_weights=(0.2, 0.35, 0.3, 0.15),
        p_charge_max_kw=7.2,
        p_discharge_max_kw=7.2,
        s_max_kva=7.6,
        eta_charge=0.93,
        eta_discharge=0.92,
        soc_min_frac=0.1,
        soc_max_frac=0.95,
        soc_reserve_frac=0.2,
        soc_target_frac=0.85,
    ),
    FleetPreset.WORK: PresetParameters(
        arrival_mean_h=8.5,
        arrival_std_h=1.0,
        departure_mean_h=17.25,
        departure_std_h=1.25,
        dwell_min_h=1.0,
        distance_mean_km=45.0,
        distance_std_km=35.0,
        distance_shape=DistanceDistribution.LOGNORMAL,
        consumption_kwh_per_km=0.18,
        capacity_choices_kwh=(40.0, 60.0, 77.0, 100.0),
        capacity_weights=(0.2, 0.35, 0.3, 0.15),
        p_charge_max_kw=11.0,
        p_discharge_max_kw=11.0,
        s_max_kva=11.5,
        eta_charge=0.94,
        eta_discharge=0.93,
        soc_min_frac=0.1,
        soc_max_frac=0.95,
        soc_reserve_frac=0.1,
        soc_target_frac=0.8,
    ),
    FleetPreset.DEPOT: PresetParameters(
        arrival_mean_h=22.0,
        arrival_std_h=1.0,
        departure_mean_h=5.5,
        departure_std_h=0.5,
        dwell_min_h=2.0,
        distance_mean_km=200.0,
        distance_std_km=40.0,
        distance_shape=DistanceDistribution.NORMAL,
        consumption_kwh_per_km=1.2,
        capacity_choices_kwh=(350.0, 450.0, 525.0),
        capacity_weights=(0.3, 0.4, 0.3),
        p_charge_max_kw=150.0,
        p_discharge_max_kw=150.0,
        s_max_kva=160.0,
        eta_charge=0.95,
        eta_discharge=0.95,
        soc_min_frac=0.1,
        soc_max_frac=0.95,
        soc_reserve_frac=0.1,
        soc_target_frac=0.95,
    ),
}


def preset_parameters(preset: FleetPreset | str, **overrides) -> PresetParameters:
    """The parameters of a preset with overrides applied and validated.

    Parameters
    ----------
    preset : FleetPreset or str
        ``home``, ``work`` or ``depot``.
    overrides
        :class:`PresetParameters` fields to replace.

    Returns
    -------
    PresetParameters

    Raises
    ------
    ScenarioError
        Listing every unknown field and invalid value.
    """
    try:
        preset = FleetPreset(preset.value if isinstance(preset, FleetPreset) else preset)
    except ValueError:
        allowed = ", ".join(p.value for p in FleetPreset)
        raise ScenarioError(f"fleet.preset: {preset!r} is not one of {allowed}") from None
    names = {f.name for f in fields(PresetParameters)}
    unknown = sorted(set(overrides) - names)
    problems = [
        f"fleet.{k}: unknown parameter (allowed: {', '.join(sorted(names))})" for k in unknown
    ]
    check_problems(problems, ScenarioError, "invalid fleet parameters")
    clean = {}
    for k, v in overrides.items():
        if k == "distance_shape":
            clean[k] = DistanceDistribution(v.value if isinstance(v, Enum) else v)
        elif k in ("capacity_choices_kwh", "capacity_weights"):
            clean[k] = tuple(float(x) for x in np.atleast_1d(v))
        else:
            clean[k] = v
    params = replace(PRESETS[preset], **clean)
    check_problems(params.problems(), ScenarioError, "invalid fleet parameters")
    return params


def sample_sessions(n: int, params: PresetParameters, rng: np.random.Generator) -> dict:
    """Sample ``n`` daily plug-in sessions and vehicles from ``params``.

    Parameters
    ----------
    n : int
        Number of vehicles.
    params : PresetParameters
        Session and vehicle statistics.
    rng : numpy.random.Generator
        Random source (seeded by the caller).

    Returns
    -------
    dict of ndarray (n,)
        ``arrival_s`` (time of day, 0..86400), ``dwell_s``, ``e_capacity_kwh``,
        ``e_trip_kwh`` (energy used by the daily trip), ``soc_arrival_frac``.

    Notes
    -----
    Log-normal distances use ``sigma^2 = ln(1 + (std/mean)^2)``, ``mu = ln(mean) - sigma^2/2``
    so that the sample mean and standard deviation match the parameters.
    """
    p = params
    arrival_h = np.mod(rng.normal(p.arrival_mean_h, p.arrival_std_h, n), 24.0)
    departure_h = np.mod(rng.normal(p.departure_mean_h, p.departure_std_h, n), 24.0)
    dwell_h = np.mod(departure_h - arrival_h, 24.0)
    dwell_h = np.clip(dwell_h, p.dwell_min_h, 23.9)
    if p.distance_shape is DistanceDistribution.LOGNORMAL:
        sigma2 = np.log1p((p.distance_std_km / p.distance_mean_km) ** 2)
        mu = np.log(p.distance_mean_km) - sigma2 / 2
        distance_km = rng.lognormal(mu, np.sqrt(sigma2), n)
    else:
        distance_km = np.maximum(rng.normal(p.distance_mean_km, p.distance_std_km, n), 0.0)
    weights = np.asarray(p.capacity_weights, dtype=float)
    cap = rng.choice(
        np.asarray(p.capacity_choices_kwh, dtype=float), size=n, p=weights / weights.sum()
    )
    e_trip = np.minimum(
        distance_km * p.consumption_kwh_per_km, (p.soc_target_frac - p.soc_min_frac) * cap
    )
    return {
        "arrival_s": arrival_h * S_PER_H,
        "dwell_s": dwell_h * S_PER_H,
        "e_capacity_kwh": cap,
        "e_trip_kwh": e_trip,
        "soc_arrival_frac": p.soc_target_frac - e_trip / cap,
    }
