"""A fleet of N plug-in vehicles stepped as one vectorized object, aggregated per bus.

:class:`Fleet` owns the availability (plug-in sessions), the batteries and chargers
(:class:`~vehicle_models.battery.BatteryBank`), the degradation tracker and one
:class:`~vehicle_models.inverter.InverterBank` (IEEE 1547 controls). A
co-simulation adapter steps it with per-bus voltages and the frequency and receives per-bus
P, Q, counts and mean SoC (:class:`FleetStepResult`).

One step ``Fleet.step(t_s=t, dt_s=dt, ...)`` covers the interval ``[t, t + dt)``:

1. availability at ``t``: a vehicle is plugged in while ``arrival <= t < departure``
   (daily-periodic sessions for sampled fleets); arrival and departure events are applied;
2. feasible power range of every plugged vehicle from its SoC bounds and its departure need
   (:meth:`BatteryBank.power_bounds_kw`);
3. scheduled power: the charging policy (``IMMEDIATE``, ``LATEST`` or ``UNIFORM``), or, on
   buses with a set-point, the set-point shared pro rata to each vehicle's feasible range;
4. the inverter controls (volt-var, volt-watt, frequency droop, VSM, trip, ...) act on top,
   inside the feasible range and the kVA rating;
5. the batteries are updated (any power outside the SoC bounds is limited and reported) and
   everything is summed per bus with ``np.add.reduceat`` over bus-sorted vehicles.

Departure: the vehicle is unplugged (zero power) and the missing energy ``max(0, target - E)``
is added to ``e_shortfall_kwh`` (per vehicle, cumulative, and per step in the result). In
periodic mode, at the next arrival the trip energy is taken from the battery (``e_driven_kwh``;
what the battery could not supply is ``e_stranded_kwh``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from grids.errors import InputDataError, ScenarioError, check_problems
from vehicle_models.battery import S_PER_H, BatteryBank, TheveninParameters
from vehicle_models.degradation import DegradationTracker
from vehicle_models.fleet_kernels import (
    POLICY_IMMEDIATE,
    POLICY_LATEST,
    POLICY_UNIFORM,
    StepInfo,
    StepScratch,
    VehicleParams,
    VehicleState,
    kernel_after_fields,
    kernel_before_fields,
    kernel_setpoint,
)
from vehicle_models.fleet_sampling import sampled_fleet_arguments
from vehicle_models.fleet_table import (
    TABLE_COLUMNS_OPTIONAL,
    TABLE_COLUMNS_REQUIRED,
    fleet_table_arguments,
    read_fleet_table,
)
from vehicle_models.inverter import InverterBank
from vehicle_models.phases import PHASES, FeederPhases, phase_codes
from vehicle_models.presets import FleetPreset
from vehicle_models.settings import F_NOM_HZ, GridCode, InverterSettings

__all__ = [
    "TABLE_COLUMNS_OPTIONAL",
    "TABLE_COLUMNS_REQUIRED",
    "ChargingPolicy",
    "Fleet",
    "FleetPreset",
    "FleetStepResult",
    "read_fleet_table",
]


class ChargingPolicy(Enum):
    """Baseline charging schedule of plugged vehicles without a set-point.

    ``IMMEDIATE``: full charger power from arrival until the departure target is reached.
    ``LATEST``: as late as possible - charge only when the target would otherwise be missed
    (then at the rate that keeps it just reachable at full power).
    ``UNIFORM``: the missing energy spread evenly over the remaining plug-in time.
    """

    IMMEDIATE = "immediate"
    LATEST = "latest"
    UNIFORM = "uniform"


@dataclass
class FleetStepResult:
    """Per-bus (or per bus and phase) outcome of one :meth:`Fleet.step` (arrays in
    ``Fleet.buses`` order).

    Attributes
    ----------
    bus : pandapower bus indices (n_bus,)
    p_mw, q_mvar : injection into the grid [MW], [Mvar] (charging < 0)
    n_plugged, n_tripped : vehicles plugged in / tripped (ceased by protection)
    soc_mean_frac : mean SoC of all vehicles assigned to the bus [-]
    p_setpoint_unmet_mw : set-point minus the feasible value it was limited to [MW]
        (0 where no set-point was given or it was feasible)
    n_limited : vehicles whose inverter output was limited by the battery's SoC bounds
    e_charged_kwh, e_discharged_kwh : grid-side energy drawn / delivered by the fleet [kWh]
    e_loss_kwh : charger and battery losses [kWh]
    e_driven_kwh : energy taken by trips (periodic sessions, at arrival) [kWh]
    e_shortfall_kwh : energy missing from departure targets of vehicles leaving this step
    phase : connection code per entry (:attr:`vehicle_models.phases.Phase.code`), or None
        for a fleet without phases; with phases every array is per (bus, phase) connection
        (``Fleet.buses`` then repeats a bus once per connection used there)
    """

    bus: np.ndarray
    p_mw: np.ndarray
    q_mvar: np.ndarray
    n_plugged: np.ndarray
    n_tripped: np.ndarray
    soc_mean_frac: np.ndarray
    p_setpoint_unmet_mw: np.ndarray
    n_limited: np.ndarray
    e_charged_kwh: float
    e_discharged_kwh: float
    e_loss_kwh: float
    e_driven_kwh: float
    e_shortfall_kwh: float
    phase: np.ndarray | None = None


_F_PLAUSIBLE_FRAC = 0.15
"""Largest relative distance of a system frequency from nominal that a fleet accepts [-]."""


def _as_float(x: Any) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


_POLICY_CODE = {
    ChargingPolicy.LATEST: POLICY_LATEST,
    ChargingPolicy.IMMEDIATE: POLICY_IMMEDIATE,
    ChargingPolicy.UNIFORM: POLICY_UNIFORM,
}


def _settings_for(settings: InverterSettings | None, f_nominal_hz: float | None):
    """The fleet's inverter settings, consistent with the system's nominal frequency."""
    if settings is None:
        f_nom = F_NOM_HZ if f_nominal_hz is None else f_nominal_hz
        GridCode.for_frequency(f_nom, path="fleet.f_nominal_hz")
        return InverterSettings.defaults(f_nominal_hz=float(f_nom))
    if f_nominal_hz is not None:
        GridCode.for_frequency(f_nominal_hz, path="fleet.f_nominal_hz")
        if float(f_nominal_hz) != settings.f_nominal_hz:
            raise ScenarioError(
                f"fleet.f_nominal_hz: the system's nominal frequency is {f_nominal_hz:g} Hz "
                f"but the inverter settings are for {settings.f_nominal_hz:g} Hz; build them "
                f"with InverterSettings.from_dict(..., f_nominal_hz={f_nominal_hz:g})"
            )
    return settings


class Fleet:
    """N vehicles with batteries, chargers, plug-in sessions and inverter controls.

    Build with :meth:`sample` or :meth:`from_table`. All per-vehicle arrays are stored sorted by
    bus (stable, so vehicles of one bus keep their input order); ``vehicle_id`` maps back.

    Parameters
    ----------
    bus : array_like of int (N,)
        pandapower bus index of each vehicle's charger.
    arrival_s : array_like (N,)
        Plug-in time [s] (time of day in periodic mode).
    dwell_s : array_like (N,)
        Plug-in duration [s] (> 0; below ``period_s`` in periodic mode).
    e_target_kwh : array_like (N,)
        Energy wanted at departure [kWh].
    battery : BatteryBank
        Battery and charger state (its initial energy is the arrival energy).
    e_trip_kwh : array_like (N,), optional
        Energy used between departure and the next arrival (periodic mode) [kWh].
    period_s : float or None
        Sessions repeat every ``period_s`` seconds (86400 for sampled fleets); None = one
        session per vehicle.
    settings : InverterSettings, optional
        Inverter settings (default: ``InverterSettings.defaults(f_nominal_hz=...)``).
    policy : ChargingPolicy
        Baseline charging schedule.
    seed : int
        Seed of the inverter bank (staggered thresholds).
    vehicle_id : array_like (N,), optional
        Identifiers (default 0..N-1).
    ageing_interval_s : float or None
        Simulated time between degradation updates; None disables degradation tracking.
    theta_c : float
        Battery temperature for calendar ageing [°C].
    fast : bool
        Use the fused numba kernels (simple battery model only; the equivalent-circuit
        model always takes the numpy path). Both paths give the same results.
    f_nominal_hz : float, optional
        The system's nominal frequency [Hz] (50 or 60). Without ``settings`` the defaults of
        that frequency are used (:class:`~vehicle_models.settings.GridCode`); with
        ``settings`` it must equal ``settings.f_nominal_hz`` (a :class:`ScenarioError`
        otherwise). ``None``: 60 Hz, or the settings' frequency.
    phase : array_like (N,), optional
        Connection of each vehicle's charger on a three-phase feeder
        (:class:`~vehicle_models.phases.Phase`, its name ``"a"``, ``"ab"``, ``"abc"``... or
        its code). With phases the fleet is aggregated per (bus, phase) connection: the
        per-bus arrays (:attr:`buses`, :attr:`phases`, ``vm_pu`` of :meth:`step`, the step
        result) have one entry per connection used, sorted by bus then phase code. ``None``:
        one entry per bus (a balanced feeder).

    Notes
    -----
    Battery and charger parameters are fixed after construction (the fast path caches the
    energy floor and ceiling).
    """

    def __init__(
        self,
        *,
        bus,
        arrival_s,
        dwell_s,
        e_target_kwh,
        battery: BatteryBank,
        e_trip_kwh=0.0,
        period_s: float | None = None,
        settings: InverterSettings | None = None,
        policy: ChargingPolicy | str = ChargingPolicy.LATEST,
        seed: int = 0,
        vehicle_id=None,
        ageing_interval_s: float | None = 900.0,
        theta_c: float = 25.0,
        fast: bool = True,
        f_nominal_hz: float | None = None,
        phase=None,
    ) -> None:
        bus = np.asarray(bus)
        n = bus.size
        problems: list[str] = []
        if n == 0:
            raise ScenarioError("fleet: a fleet needs at least one vehicle")
        if battery.n != n:
            raise ScenarioError(f"fleet: battery has {battery.n} vehicles, bus has {n}")
        try:
            policy = ChargingPolicy(policy.value if isinstance(policy, Enum) else policy)
        except ValueError:
            allowed = ", ".join(p.value for p in ChargingPolicy)
            problems.append(f"fleet.policy: {policy!r} is not one of {allowed}")
        if period_s is not None and not period_s > 0:
            problems.append(f"fleet.period_s: {period_s} must be positive")
        dwell = np.broadcast_to(_as_float(dwell_s), (n,))
        if np.any(~np.isfinite(dwell) | (dwell <= 0)):
            problems.append("fleet.dwell_s: every plug-in duration must be positive")
        if period_s is not None and np.any(dwell >= period_s):
            problems.append(f"fleet.dwell_s: plug-in durations must be below period_s {period_s}")
        check_problems(problems, ScenarioError, "invalid fleet")

        codes = None if phase is None else np.broadcast_to(phase_codes(phase), (n,))
        # vehicles are grouped per bus, or per (bus, phase) connection: a key sorted by bus
        # first, then by phase code (the kernels aggregate over contiguous groups)
        key = bus.astype(np.int64)
        if codes is not None:
            key = key * len(PHASES) + codes
        order = np.argsort(key, kind="stable")
        self.vehicle_id = (np.arange(n) if vehicle_id is None else np.asarray(vehicle_id))[order]
        self.bus_of_vehicle = bus[order].astype(np.int64)
        self.phase_of_vehicle = None if codes is None else codes[order].astype(np.int64)
        keys, self._bus_start, counts = np.unique(key[order], return_index=True, return_counts=True)
        self.buses = keys if codes is None else keys // len(PHASES)
        self.phases = None if codes is None else keys % len(PHASES)
        self.n_vehicles_per_bus = counts
        self._bus_pos = np.repeat(np.arange(self.buses.size), counts)
        take = lambda a: np.broadcast_to(_as_float(a), (n,))[order].copy()  # noqa: E731
        self.arrival_s = take(arrival_s)
        self.dwell_s = take(dwell_s)
        self.e_target_kwh = take(e_target_kwh)
        self.e_trip_kwh = take(e_trip_kwh)
        self.period_s = None if period_s is None else float(period_s)
        self.policy = policy  # also sets the kernels' policy code
        b = battery
        self.battery = BatteryBank.create(
            e_capacity_kwh=b.e_capacity_kwh[order],
            e_kwh=b.e_kwh[order],
            p_charge_max_kw=b.p_charge_max_kw[order],
            p_discharge_max_kw=b.p_discharge_max_kw[order],
            s_max_kva=b.s_max_kva[order],
            eta_charge=b.eta_charge[order],
            eta_discharge=b.eta_discharge[order],
            soc_min_frac=b.soc_min_frac[order],
            soc_max_frac=b.soc_max_frac[order],
            soc_reserve_frac=b.soc_reserve_frac[order],
            thevenin=b.thevenin,
        )
        self.e_target_kwh = np.minimum(self.e_target_kwh, self.battery.e_ceiling_kwh)

        self.settings = _settings_for(settings, f_nominal_hz)
        self.inverter = InverterBank(self.settings, n=n, seed=seed)
        # plausible system frequencies (checked on every step; the settings are fixed)
        f_nom = self.settings.f_nominal_hz
        self._f_plausible_hz = (f_nom, _F_PLAUSIBLE_FRAC * f_nom)

        self.degradation = (
            None
            if ageing_interval_s is None
            else DegradationTracker(n, interval_s=ageing_interval_s, theta_c=theta_c)
        )
        # per-vehicle state for reports
        self.plugged = np.zeros(n, dtype=bool)
        self.tripped = np.zeros(n, dtype=bool)
        self.p_kw = np.zeros(n)
        self.q_kvar = np.zeros(n)
        self.e_shortfall_kwh = np.zeros(n)
        self.e_stranded_kwh = np.zeros(n)
        self._started = False
        self._inv_s = 1.0 / self.battery.s_max_kva
        # fused numba kernels for the simple battery model; numpy path otherwise (reference)
        self.fast = bool(fast) and self.battery.thevenin is None
        if self.fast:
            n_bus = self.buses.size
            self._bus_bounds = np.append(self._bus_start, n).astype(np.int64)
            self._limited = np.zeros(n, dtype=bool)
            # Work arrays of the kernels: private, never reassigned, so built once.
            self._scratch = StepScratch(
                vm_pu=np.zeros(n),
                p_min_pu=np.zeros(n),
                p_max_pu=np.zeros(n),
                p_req_pu=np.zeros(n),
                lo_bus_kw=np.zeros(n_bus),
                hi_bus_kw=np.zeros(n_bus),
                p_bus_kw=np.zeros(n_bus),
                q_bus_kvar=np.zeros(n_bus),
                n_plug_bus=np.zeros(n_bus, dtype=np.int64),
                n_trip_bus=np.zeros(n_bus, dtype=np.int64),
                n_lim_bus=np.zeros(n_bus, dtype=np.int64),
                soc_bus=np.zeros(n_bus),
            )
            self._scratch_fields = tuple(self._scratch)
            self._veh: VehicleParams | None = None  # built on the first step
            self._veh_fields: tuple = ()
        # cumulative fleet totals (energy accounting)
        self.totals_kwh = dict.fromkeys(
            ("charged", "discharged", "loss", "driven", "shortfall"), 0.0
        )

    # ------------------------------------------------------------------ construction
    @classmethod
    def sample(
        cls,
        n_vehicles: int,
        *,
        buses,
        preset: FleetPreset | str = FleetPreset.HOME,
        seed: int = 0,
        settings: InverterSettings | None = None,
        policy: ChargingPolicy | str = ChargingPolicy.LATEST,
        bus_weights=None,
        thevenin: TheveninParameters | None = None,
        ageing_interval_s: float | None = 900.0,
        fast: bool = True,
        f_nominal_hz: float | None = None,
        phases: FeederPhases | None = None,
        **overrides,
    ) -> Fleet:
        """A random fleet of daily-repeating sessions from a preset, reproducible by seed.

        Parameters
        ----------
        n_vehicles : int
            Number of vehicles (>= 1).
        buses : array_like of int
            Candidate pandapower bus indices; each vehicle gets one at random (uniformly, or
            with ``bus_weights``).
        preset : FleetPreset
            ``HOME``, ``WORK`` or ``DEPOT`` (see :mod:`vehicle_models.presets`).
        seed : int
            Seed of every random draw (same seed, same fleet).
        settings, policy, ageing_interval_s, fast, f_nominal_hz
            As for :class:`Fleet`.
        bus_weights : array_like, optional
            Non-negative weight per candidate bus.
        thevenin : TheveninParameters, optional
            Equivalent-circuit battery model.
        phases : FeederPhases, optional
            On a three-phase feeder: the phases of its buses and the allocation policy that
            puts each sampled vehicle on a phase (seeded by ``seed``); ``buses`` are then bus
            numbers of ``phases``.
        overrides
            Any :class:`~vehicle_models.presets.PresetParameters` field, e.g.
            ``p_charge_max_kw=11.0, soc_target_frac=0.8``.

        Returns
        -------
        Fleet

        Examples
        --------
        >>> fleet = Fleet.sample(100, buses=[1, 2, 3], seed=1, f_nominal_hz=50.0)
        >>> fleet.f_nominal_hz, fleet.settings.grid_code.value
        (50.0, 'en_50549_1')
        """
        arguments = sampled_fleet_arguments(
            n_vehicles,
            buses=buses,
            preset=preset,
            seed=seed,
            bus_weights=bus_weights,
            thevenin=thevenin,
            **overrides,
        )
        if phases is not None:
            arguments["phase"] = phases.allocate(arguments["bus"], seed=seed)
        return cls(
            **arguments,
            settings=settings,
            policy=policy,
            seed=seed,
            ageing_interval_s=ageing_interval_s,
            fast=fast,
            f_nominal_hz=f_nominal_hz,
        )

    @classmethod
    def from_table(
        cls,
        path,
        *,
        settings: InverterSettings | None = None,
        policy: ChargingPolicy | str = ChargingPolicy.LATEST,
        period_s: float | None = None,
        thevenin: TheveninParameters | None = None,
        seed: int = 0,
        ageing_interval_s: float | None = 900.0,
        fast: bool = True,
        f_nominal_hz: float | None = None,
        phases: FeederPhases | None = None,
    ) -> Fleet:
        """A fleet from a CSV or Parquet table, one row per vehicle (one session each).

        Parameters
        ----------
        path : str or pathlib.Path
            The table (columns: :data:`TABLE_COLUMNS_REQUIRED`, optional
            :data:`TABLE_COLUMNS_OPTIONAL`; see :mod:`vehicle_models.fleet_table`).
        period_s : float, optional
            Repeat period [s]: arrival taken modulo the period, trip energy
            ``(soc_target - soc_arrival) * capacity``.
        thevenin : TheveninParameters, optional
            Equivalent-circuit battery model.
        settings, policy, seed, ageing_interval_s, fast, f_nominal_hz
            As for :class:`Fleet`.
        phases : FeederPhases, optional
            On a three-phase feeder: the table's ``bus`` column names buses of
            ``phases.bus_names``; its ``phase`` column is checked against the phases of each
            bus, and without that column the allocation policy (seeded by ``seed``) places
            the vehicles.

        Returns
        -------
        Fleet

        Raises
        ------
        InputDataError
            Naming the file, the (1-based data) row and the column of every problem found,
            and every (bus, phase) of the table that the bus does not have.
        """
        arguments = fleet_table_arguments(
            path,
            period_s=period_s,
            thevenin=thevenin,
            bus_names=None if phases is None or not phases.bus_names else phases.bus_names,
        )
        if phases is not None:
            if "phase" in arguments:
                misfits = phases.problems(arguments["bus"], arguments["phase"])
                name = Path(path).name
                check_problems(
                    [f"{name}: {p}" for p in misfits],
                    InputDataError,
                    f"{name}: invalid fleet table",
                )
            else:
                arguments["phase"] = phases.allocate(arguments["bus"], seed=seed)
        return cls(
            **arguments,
            settings=settings,
            policy=policy,
            seed=seed,
            ageing_interval_s=ageing_interval_s,
            fast=fast,
            f_nominal_hz=f_nominal_hz,
        )

    # ------------------------------------------------------------------ properties
    @property
    def policy(self) -> ChargingPolicy:
        """Baseline charging schedule (:class:`ChargingPolicy`)."""
        return self._policy

    @policy.setter
    def policy(self, value: ChargingPolicy) -> None:
        self._policy = ChargingPolicy(value)
        self._policy_code = _POLICY_CODE[self._policy]  # looked up once, not on every step

    @property
    def f_nominal_hz(self) -> float:
        """System nominal frequency [Hz] the fleet's frequency settings follow."""
        return self.settings.f_nominal_hz

    @property
    def n_vehicles(self) -> int:
        """Number of vehicles."""
        return self.battery.n

    @property
    def energy_kwh(self) -> np.ndarray:
        """Stored energy per vehicle [kWh] (bus-sorted order)."""
        return self.battery.e_kwh

    @property
    def soc_frac(self) -> np.ndarray:
        """State of charge per vehicle [-] (bus-sorted order)."""
        return self.battery.soc_frac

    # ------------------------------------------------------------------ availability
    def _availability(self, t_s: float):
        """Plugged mask, time to departure [s] and the stored energy after arrival events.

        Does not change the state; :meth:`step` commits the events.
        """
        if self.period_s is None:
            phase = t_s - self.arrival_s
            plugged = (phase >= 0) & (phase < self.dwell_s)
        else:
            x = t_s - self.arrival_s
            phase = x - self.period_s * np.floor(x / self.period_s)  # as the fast kernel
            plugged = phase < self.dwell_s
        remaining_s = self.dwell_s - phase
        e = self.battery.e_kwh.copy()
        driven = stranded = None
        if self.period_s is not None:
            if not self._started:
                # before the first step, vehicles on the road left with their target energy
                # and will arrive with target - trip (the sampled arrival energy)
                away = ~plugged
                e[away] = np.minimum(
                    e[away] + self.e_trip_kwh[away], self.battery.e_capacity_kwh[away]
                )
            else:
                arrived = plugged & ~self.plugged
                if arrived.any():
                    idx = np.flatnonzero(arrived)
                    driven = np.minimum(e[idx], self.e_trip_kwh[idx])
                    stranded = self.e_trip_kwh[idx] - driven
                    e[idx] -= driven
                    driven = (idx, driven, stranded)
        return plugged, remaining_s, e, driven

    def _bounds(self, plugged, remaining_s, dt_s):
        """Feasible power range per vehicle [kW] including the departure need."""
        b = self.battery
        still_s = np.maximum(remaining_s - dt_s, 0.0)
        e_end_min = self.e_target_kwh - b.eta_charge * b.p_charge_max_kw * still_s / S_PER_H
        return b.power_bounds_kw(dt_s, e_end_min_kwh=e_end_min, active=plugged)

    def _baseline_kw(self, plugged, remaining_s, dt_s, p_min, p_max):
        """Scheduled power per vehicle from the charging policy [kW]."""
        b = self.battery
        missing = np.maximum(self.e_target_kwh - b.e_kwh, 0.0)
        if self.policy is ChargingPolicy.LATEST:
            p = np.minimum(p_max, 0.0)
        elif self.policy is ChargingPolicy.IMMEDIATE:
            p = -missing / (b.eta_charge * dt_s / S_PER_H)
        else:
            p = -missing / (b.eta_charge * np.maximum(remaining_s, dt_s) / S_PER_H)
        return np.clip(p, p_min, p_max)

    def _per_bus(self, x: np.ndarray) -> np.ndarray:
        return np.add.reduceat(x, self._bus_start)

    def plugged_at(self, t_s: float) -> np.ndarray:
        """Which vehicles are plugged in at a time (the state is not changed).

        Parameters
        ----------
        t_s : float
            Simulation time [s].

        Returns
        -------
        numpy.ndarray of bool
            One flag per vehicle (bus-sorted order).
        """
        plugged, _, _, _ = self._availability(t_s)
        return plugged

    # ------------------------------------------------------------------ step
    def step(
        self, *, t_s: float, dt_s: float, vm_pu, f_hz: float, p_setpoint_mw=None
    ) -> FleetStepResult:
        """Advance the fleet over ``[t_s, t_s + dt_s)``.

        Parameters
        ----------
        t_s : float
            Simulation time at the start of the step [s].
        dt_s : float
            Step length [s] (> 0).
        vm_pu : array_like (n_bus,)
            Voltage magnitude at each bus of :attr:`buses` [pu]; with phases, the voltage
            of each connection on its own phase (:func:`vehicle_models.phases.
            phase_voltage_pu`: line-to-neutral pu, line-to-line pu of the line-to-line base
            for phase pairs).
        f_hz : float
            System frequency [Hz].
        p_setpoint_mw : array_like (n_bus,), optional
            Per-bus active-power set-point [MW] (injection > 0); NaN = follow the charging
            policy on that bus. Infeasible set-points are limited to the bus's feasible range
            and the difference is reported in ``p_setpoint_unmet_mw``.

        Returns
        -------
        FleetStepResult
        """
        n_bus = self.buses.size
        vm = _as_float(vm_pu)
        problems = []
        if not dt_s > 0:
            problems.append(f"fleet.step: dt_s {dt_s} must be positive")
        if vm.shape != (n_bus,):
            problems.append(f"fleet.step: vm_pu has shape {vm.shape}, expected ({n_bus},)")
        elif not math.isfinite(vm.sum()) and not np.all(np.isfinite(vm)):
            problems.append("fleet.step: vm_pu contains NaN or infinite values")
        f_nom, f_tol = self._f_plausible_hz
        if not math.isfinite(f_hz):
            problems.append(f"fleet.step: f_hz {f_hz} is not finite")
        elif not abs(f_hz - f_nom) <= f_tol:
            # a 60 Hz frequency fed to a 50 Hz fleet (or the reverse) would trip every unit
            problems.append(
                f"fleet.step: f_hz {f_hz:g} Hz is implausible for a fleet with nominal "
                f"frequency {self.f_nominal_hz:g} Hz (give the system's nominal frequency "
                "to the fleet: f_nominal_hz)"
            )
        sp = None
        if p_setpoint_mw is not None:
            sp = np.broadcast_to(_as_float(p_setpoint_mw), (n_bus,))
            if np.any(np.isinf(sp)):
                problems.append("fleet.step: p_setpoint_mw contains infinite values")
        check_problems(problems, ScenarioError, "invalid fleet step input")

        if self.fast:
            return self._step_fast(t_s, dt_s, vm, f_hz, sp)
        return self._step_numpy(t_s, dt_s, vm, f_hz, sp)

    def _inverter_step(self, dt_s, vm_vehicle, f_hz, p_req_pu, p_max_pu, p_min_pu, plugged):
        return self.inverter.step(
            dt_s=dt_s,
            vm_pu=vm_vehicle,
            f_hz=f_hz,
            p_request_pu=p_req_pu,
            p_max_pu=p_max_pu,
            p_min_pu=p_min_pu,
            connected=plugged,
        )

    @staticmethod
    def _allocate(sp, lo_kw, hi_kw):
        """Set-point per bus limited to the feasible range; lambda of the pro-rata split."""
        has_sp = np.isfinite(sp)
        sp_kw = np.where(has_sp, sp * 1000.0, 0.0)
        target_kw = np.clip(sp_kw, lo_kw, hi_kw)
        unmet_mw = np.where(has_sp, (sp_kw - target_kw) / 1000.0, 0.0)
        span = hi_kw - lo_kw
        lam = np.where(span > 0, (target_kw - lo_kw) / np.where(span > 0, span, 1.0), 0.0)
        return has_sp, lam, unmet_mw

    def _step_fast(self, t_s, dt_s, vm, f_hz, sp) -> FleetStepResult:
        b = self.battery
        scr = self._scratch
        deg = self.degradation
        track = deg is not None
        started = self._started
        # Positional construction (keyword arguments cost a few us per step); the kernels get
        # the fields as plain tuples, which numba types fast (see kernel_before_fields). The
        # constant structures are built once.
        step = StepInfo(
            float(t_s),
            float(dt_s),
            0.0 if self.period_s is None else self.period_s,
            started,
            self._policy_code,
            track and started,
            track,
        )
        veh = self._vehicle_fields()
        state = VehicleState(
            b.e_kwh,
            self.plugged,
            self.e_shortfall_kwh,
            self.e_stranded_kwh,
            deg.pending_throughput_kwh if track else scr.vm_pu,  # (unused if not track)
            self.p_kw,
            self.q_kvar,
            self._limited,
        )
        step, state = tuple(step), tuple(state)
        scr_fields = self._scratch_fields
        driven, short = kernel_before_fields(step, veh, state, scr_fields, vm)
        if track and deg.soc_start_frac is None:
            deg.start(soc_frac=b.soc_frac, e_capacity_kwh=b.e_capacity_kwh)
        self._started = True
        unmet_mw = np.zeros(self.buses.size)
        if sp is not None and np.isfinite(sp).any():
            has_sp, lam, unmet_mw = self._allocate(sp, scr.lo_bus_kw, scr.hi_bus_kw)
            kernel_setpoint(has_sp, lam, self._bus_bounds, scr.p_min_pu, scr.p_max_pu, scr.p_req_pu)
        out = self._inverter_step(
            dt_s, scr.vm_pu, f_hz, scr.p_req_pu, scr.p_max_pu, scr.p_min_pu, self.plugged
        )
        tripped = np.asarray(out.tripped, dtype=bool)
        self.tripped = tripped
        e_in, e_out, e_loss = kernel_after_fields(
            step,
            veh,
            state,
            scr_fields,
            np.asarray(out.p_pu, dtype=float),
            np.asarray(out.q_pu, dtype=float),
            tripped,
        )
        if track:
            deg.elapsed_s += dt_s
            if deg.due:
                deg.flush(b.soc_frac)
        return self._result(
            p_kw_bus=scr.p_bus_kw,
            q_kvar_bus=scr.q_bus_kvar,
            n_plug=scr.n_plug_bus,
            n_trip=scr.n_trip_bus,
            soc_sum=scr.soc_bus,
            n_lim=scr.n_lim_bus,
            unmet_mw=unmet_mw,
            energies=(e_in, e_out, e_loss, driven, short),
        )

    def _vehicle_fields(self) -> tuple:
        """The fields of the kernels' :class:`VehicleParams`, built once and reused.

        Rebuilt only when one of the session arrays or the battery bank was replaced (they
        are public attributes; nothing in the package reassigns them after construction).
        Battery and charger parameters are fixed after construction (see the class notes).
        """
        veh = self._veh
        b = self.battery
        if (
            veh is not None
            and veh.arrival_s is self.arrival_s
            and veh.dwell_s is self.dwell_s
            and veh.e_trip_kwh is self.e_trip_kwh
            and veh.e_target_kwh is self.e_target_kwh
            and veh.e_capacity_kwh is b.e_capacity_kwh
            and veh.s_kva is b.s_max_kva
        ):
            return self._veh_fields
        self._e_floor = b.e_floor_kwh
        self._e_ceiling = b.e_ceiling_kwh
        self._inv_eta_c = 1.0 / b.eta_charge
        self._inv_eta_d = 1.0 / b.eta_discharge
        self._inv_cap = 1.0 / b.e_capacity_kwh
        self._inv_s = 1.0 / b.s_max_kva
        self._veh = veh = VehicleParams(
            bus_start=self._bus_bounds,
            arrival_s=self.arrival_s,
            dwell_s=self.dwell_s,
            e_trip_kwh=self.e_trip_kwh,
            e_target_kwh=self.e_target_kwh,
            e_floor_kwh=self._e_floor,
            e_ceiling_kwh=self._e_ceiling,
            e_capacity_kwh=b.e_capacity_kwh,
            p_ch_kw=b.p_charge_max_kw,
            p_dis_kw=b.p_discharge_max_kw,
            eta_c=b.eta_charge,
            eta_d=b.eta_discharge,
            inv_eta_c=self._inv_eta_c,
            inv_eta_d=self._inv_eta_d,
            inv_s=self._inv_s,
            inv_cap=self._inv_cap,
            s_kva=b.s_max_kva,
        )
        self._veh_fields = tuple(veh)
        return self._veh_fields

    def _result(
        self, *, p_kw_bus, q_kvar_bus, n_plug, n_trip, soc_sum, n_lim, unmet_mw, energies
    ) -> FleetStepResult:
        for key, value in zip(
            ("charged", "discharged", "loss", "driven", "shortfall"), energies, strict=True
        ):
            self.totals_kwh[key] += value
        e_in, e_out, e_loss, e_driven, e_short = energies
        return FleetStepResult(
            bus=self.buses,
            p_mw=p_kw_bus / 1000.0,
            q_mvar=q_kvar_bus / 1000.0,
            n_plugged=n_plug.copy(),
            n_tripped=n_trip.copy(),
            soc_mean_frac=soc_sum / self.n_vehicles_per_bus,
            p_setpoint_unmet_mw=unmet_mw,
            n_limited=n_lim.copy(),
            e_charged_kwh=float(e_in),
            e_discharged_kwh=float(e_out),
            e_loss_kwh=float(e_loss),
            e_driven_kwh=float(e_driven),
            e_shortfall_kwh=float(e_short),
            phase=self.phases,
        )

    def _step_numpy(self, t_s, dt_s, vm, f_hz, sp) -> FleetStepResult:
        n_bus = self.buses.size
        b = self.battery
        plugged, remaining_s, e_after, arrivals = self._availability(t_s)
        e_driven = 0.0
        if arrivals is not None:
            idx, driven, stranded = arrivals
            e_driven = float(driven.sum())
            self.e_stranded_kwh[idx] += stranded
            if self.degradation is not None:
                self.degradation.start(soc_frac=b.soc_frac, e_capacity_kwh=b.e_capacity_kwh)
                self.degradation.pending_throughput_kwh[idx] += driven
        b.e_kwh = e_after
        departed = self.plugged & ~plugged
        e_short = 0.0
        if self._started and departed.any():
            gap = np.maximum(self.e_target_kwh[departed] - b.e_kwh[departed], 0.0)
            self.e_shortfall_kwh[departed] += gap
            e_short = float(gap.sum())
        self._started = True
        self.plugged = plugged

        p_min, p_max = self._bounds(plugged, remaining_s, dt_s)
        p_req = self._baseline_kw(plugged, remaining_s, dt_s, p_min, p_max)
        unmet_mw = np.zeros(n_bus)
        if sp is not None and np.isfinite(sp).any():
            has_sp, lam, unmet_mw = self._allocate(sp, self._per_bus(p_min), self._per_bus(p_max))
            p_sp = p_min + lam[self._bus_pos] * (p_max - p_min)
            p_req = np.where(has_sp[self._bus_pos], p_sp, p_req)

        inv_s = self._inv_s
        out = self._inverter_step(
            dt_s, vm[self._bus_pos], f_hz, p_req * inv_s, p_max * inv_s, p_min * inv_s, plugged
        )
        s_kva = b.s_max_kva
        soc_before = b.soc_frac
        res = b.step(np.asarray(out.p_pu) * s_kva, dt_s, active=plugged)
        self.p_kw = res.p_ac_kw
        self.q_kvar = np.asarray(out.q_pu) * s_kva
        self.tripped = np.asarray(out.tripped, dtype=bool)
        if self.degradation is not None:
            self.degradation.accumulate(
                soc_before_frac=soc_before,
                soc_after_frac=b.soc_frac,
                e_capacity_kwh=b.e_capacity_kwh,
                dt_s=dt_s,
            )
        return self._result(
            p_kw_bus=self._per_bus(self.p_kw),
            q_kvar_bus=self._per_bus(self.q_kvar),
            n_plug=self._per_bus(plugged.astype(np.int64)),
            n_trip=self._per_bus(self.tripped.astype(np.int64)),
            soc_sum=self._per_bus(b.soc_frac),
            n_lim=self._per_bus(res.limited.astype(np.int64)),
            unmet_mw=unmet_mw,
            energies=(
                res.e_in_kwh.sum(),
                res.e_out_kwh.sum(),
                res.e_loss_kwh.sum(),
                e_driven,
                e_short,
            ),
        )

    # ------------------------------------------------------------------ reports
    def headroom(self, *, t_s: float, dt_s: float = 60.0) -> pd.DataFrame:
        """Per-bus flexibility over the next ``dt_s`` seconds (state is not changed).

        Parameters
        ----------
        t_s : float
            Time at the start of the interval [s].
        dt_s : float
            Length of the interval [s].

        Returns
        -------
        pandas.DataFrame
            Index: bus (with phases: bus and phase name). Columns: ``p_min_mw,
            p_max_mw`` (the Minkowski sum of the vehicles'
            feasible power intervals, i.e. the sums of their bounds), ``p_baseline_mw``
            (charging policy), ``p_up_mw = p_max - p_baseline`` and
            ``p_down_mw = p_baseline - p_min`` (>= 0), ``q_up_mvar``/``q_down_mvar``
            (reactive capability ``sum sqrt(S^2 - p_baseline^2)`` of plugged, non-tripped
            vehicles; symmetric), ``n_plugged``.
        """
        plugged, remaining_s, e_after, _ = self._availability(t_s)
        saved = self.battery.e_kwh
        try:
            self.battery.e_kwh = e_after
            p_min, p_max = self._bounds(plugged, remaining_s, dt_s)
            p_base = self._baseline_kw(plugged, remaining_s, dt_s, p_min, p_max)
        finally:
            self.battery.e_kwh = saved
        s = self.battery.s_max_kva
        q_cap = np.where(plugged & ~self.tripped, np.sqrt(np.maximum(s * s - p_base**2, 0.0)), 0)
        to_mw = lambda x: self._per_bus(x) / 1000.0  # noqa: E731
        base = to_mw(p_base)
        lo = to_mw(p_min)
        hi = to_mw(p_max)
        q = to_mw(q_cap)
        return pd.DataFrame(
            {
                "p_min_mw": lo,
                "p_max_mw": hi,
                "p_baseline_mw": base,
                "p_up_mw": np.maximum(hi - base, 0.0),
                "p_down_mw": np.maximum(base - lo, 0.0),
                "q_up_mvar": q,
                "q_down_mvar": q,
                "n_plugged": self._per_bus(plugged.astype(np.int64)),
            },
            index=self._group_index(),
        )

    def _group_index(self) -> pd.Index:
        """Index of the per-bus arrays: the bus, or (bus, phase name) with phases."""
        if self.phases is None:
            return pd.Index(self.buses, name="bus")
        names = [PHASES[c].value for c in self.phases.tolist()]
        return pd.MultiIndex.from_arrays([self.buses, names], names=["bus", "phase"])

    def degradation_cost(self, *, battery_price_per_kwh: float) -> np.ndarray:
        """Cost of the capacity fade so far per vehicle.

        Parameters
        ----------
        battery_price_per_kwh : float
            Battery price [currency/kWh of capacity].

        Returns
        -------
        numpy.ndarray
            ``price * e_capacity_kwh * fade / fade_end_of_life`` [currency] per vehicle
            (bus-sorted order): the share of the battery's value used up, with the end of life
            at ``AgeingParameters.fade_end_of_life_frac`` (20 %). See
            :func:`vehicle_models.degradation.degradation_cost_per_kwh` for the marginal cost
            per kWh of V2G throughput.
        """
        if self.degradation is None:
            raise ScenarioError("fleet: degradation tracking is off (ageing_interval_s=None)")
        if not battery_price_per_kwh >= 0:
            raise ScenarioError(
                f"fleet.battery_price_per_kwh: {battery_price_per_kwh} must not be negative"
            )
        deg = self.degradation
        deg.flush(self.battery.soc_frac)
        eol = deg.params.fade_end_of_life_frac
        return battery_price_per_kwh * self.battery.e_capacity_kwh * deg.fade_frac / eol

    def vehicle_table(self) -> pd.DataFrame:
        """Per-vehicle state for reports.

        Returns
        -------
        pandas.DataFrame
            One row per vehicle (bus-sorted order): identifiers, session, plugged/tripped,
            ``p_kw``, ``q_kvar``, energies [kWh], SoC [-] and, with degradation tracking,
            the fades [-] and throughput [kWh].
        """
        b = self.battery
        table = {
            "vehicle_id": self.vehicle_id,
            "bus": self.bus_of_vehicle,
            **(
                {}
                if self.phase_of_vehicle is None
                else {"phase": [PHASES[c].value for c in self.phase_of_vehicle.tolist()]}
            ),
            "arrival_s": self.arrival_s,
            "departure_s": self.arrival_s + self.dwell_s,
            "plugged": self.plugged,
            "tripped": self.tripped,
            "p_kw": self.p_kw,
            "q_kvar": self.q_kvar,
            "e_capacity_kwh": b.e_capacity_kwh,
            "e_kwh": b.e_kwh,
            "soc_frac": b.soc_frac,
            "e_target_kwh": self.e_target_kwh,
            "e_shortfall_kwh": self.e_shortfall_kwh,
            "e_stranded_kwh": self.e_stranded_kwh,
        }
        if self.degradation is not None:
            self.degradation.flush(b.soc_frac)
            table["fade_calendar_frac"] = self.degradation.fade_calendar_frac
            table["fade_cycle_frac"] = self.degradation.fade_cycle_frac
            table["throughput_kwh"] = self.degradation.throughput_kwh
        return pd.DataFrame(table)
