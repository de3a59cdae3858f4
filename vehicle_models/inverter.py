"""``InverterBank``: N V2G inverters with IEEE 1547-2018 functions, vectorized.

One step (``dt_s``) for every unit, in this order:

1. frequency measurement: first-order low-pass (PLL) of the grid frequency
   (grid-following units, time constant ``droop.f_meas_tau_s``);
2. trip / momentary cessation / enter service / stagger ramp
   (:class:`~vehicle_models.ride_through.RideThroughState`);
3. active power: the request clipped to ``[p_min_pu, p_max_pu]`` (SoC/energy feasible set);
   then either frequency droop (grid-following, relative to the pre-disturbance power, with
   the droop's open-loop response time as a first-order lag on the droop's contribution) or
   the virtual synchronous machine (grid-forming); then the volt-watt limit (lagged);
4. reactive power: volt-var (lagged, OLRT), watt-var (lagged) or constant power factor;
5. enter-service soft-start limit on |P|; apparent-power limit ``|S| <= 1`` with the
   configured priority; zero output for tripped, ceased or unplugged units.

All arrays are per unit of each unit's apparent-power rating; injection positive.
The common case (no voltage or frequency excursion) costs a handful of numpy operations on
(N,) arrays: the trip logic is skipped while every voltage and frequency is inside the
tightest thresholds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vehicle_models.controls import (
    constant_pf_q_pu,
    freq_watt_p_pu,
    lag_factor,
    olrt_time_constant_s,
    volt_var_points,
    volt_watt_p_max_pu,
    watt_var_q_pu,
)
from vehicle_models.ride_through import RideThroughState
from vehicle_models.settings import (
    F_NOM_HZ,
    ControlFunction,
    GridMode,
    InverterSettings,
    Priority,
)
from vehicle_models.vsm import VirtualSynchronousMachine


@dataclass
class InverterOutput:
    """Result of one :meth:`InverterBank.step` (arrays of shape (N,), pu of S rating).

    ``p_pu`` active power (injection > 0, charging < 0), ``q_pu`` reactive power
    (injection/capacitive > 0), ``tripped`` disconnected by a trip, ``ceased`` in
    momentary cessation. ``sqrt(p^2 + q^2) <= 1``; tripped and ceased units output 0.
    """

    p_pu: np.ndarray
    q_pu: np.ndarray
    tripped: np.ndarray
    ceased: np.ndarray


class InverterBank:
    """N inverters sharing one :class:`InverterSettings`, stepped together.

    Parameters
    ----------
    settings : InverterSettings
        Validated on construction (``ScenarioError`` listing every problem).
    n : int
        Number of units.
    seed : int
        Seed for the ``random`` stagger mode.

    Attributes
    ----------
    tripped, ceased : numpy.ndarray of bool (n,)
    f_meas_hz : float or numpy.ndarray
        Measured (filtered) frequency [Hz].
    q_lag_pu : numpy.ndarray (n,)
        Lagged reactive-power command (volt-var / watt-var).
    p_vw_limit_pu : numpy.ndarray (n,)
        Lagged volt-watt active power limit.
    dp_droop_pu : numpy.ndarray (n,)
        Lagged frequency-droop contribution to P.
    p_pre_pu : numpy.ndarray (n,)
        Pre-disturbance active power latched when the frequency left the deadband.
    p_pu, q_pu : numpy.ndarray (n,)
        Last output.
    ride_through : RideThroughState
        Timers, enter-service and stagger state.
    vsm : VirtualSynchronousMachine or None
        Grid-forming state.
    """

    def __init__(self, settings: InverterSettings, *, n: int, seed: int = 0) -> None:
        settings.validate()
        self.settings = settings
        self.n = int(n)
        self.seed = seed
        fs = settings.functions
        self._volt_var = ControlFunction.VOLT_VAR in fs
        self._volt_watt = ControlFunction.VOLT_WATT in fs
        self._freq_watt = ControlFunction.FREQ_WATT in fs
        self._pf = ControlFunction.CONSTANT_PF in fs
        self._watt_var = ControlFunction.WATT_VAR in fs
        self._gfm = settings.mode is GridMode.GRID_FORMING
        self._q_priority = settings.priority is Priority.REACTIVE
        self._vv_v, self._vv_q = volt_var_points(settings.volt_var)
        # q targets are within [-1, 1] by validation, so only P needs the S-limit clip.
        self.ride_through = RideThroughState(settings, n=self.n, seed=seed)
        self.vsm = VirtualSynchronousMachine(settings.vsm, n=self.n) if self._gfm else None
        self.f_meas_hz: float | np.ndarray | None = None
        self.q_lag_pu = np.zeros(self.n)
        self.p_vw_limit_pu = np.ones(self.n)
        self.dp_droop_pu = np.zeros(self.n)
        self.p_pre_pu = np.zeros(self.n)
        self.p_pu = np.zeros(self.n)
        self.q_pu = np.zeros(self.n)
        self._droop_event = np.zeros((), dtype=bool)
        self._droop_lag_active = False
        self._initialized = False
        self._factor_cache: dict[float, dict[str, float]] = {}

    # ------------------------------------------------------------------ convenience
    @property
    def tripped(self) -> np.ndarray:
        """Units disconnected by a trip (not yet re-entered)."""
        return self.ride_through.tripped

    @property
    def ceased(self) -> np.ndarray:
        """Units in momentary cessation at the last step."""
        return self.ride_through.ceased

    def _factors(self, dt_s: float) -> dict[str, float]:
        f = self._factor_cache.get(dt_s)
        if f is None:
            s = self.settings
            f = {
                "f_meas": lag_factor(dt_s, s.freq_watt.f_meas_tau_s),
                "vv": lag_factor(dt_s, olrt_time_constant_s(s.volt_var.olrt_s)),
                "vw": lag_factor(dt_s, olrt_time_constant_s(s.volt_watt.olrt_s)),
                "fw": lag_factor(dt_s, olrt_time_constant_s(s.freq_watt.olrt_s)),
                "wv": lag_factor(dt_s, olrt_time_constant_s(s.watt_var.olrt_s)),
            }
            self._factor_cache[dt_s] = f
        return f

    # ------------------------------------------------------------------ the step
    def step(
        self,
        *,
        dt_s: float,
        vm_pu,
        f_hz,
        p_request_pu,
        p_max_pu,
        p_min_pu,
        connected,
    ) -> InverterOutput:
        """Advance every unit by ``dt_s`` seconds (inputs held over the step).

        Parameters
        ----------
        dt_s : float
            Step [s] (> 0).
        vm_pu : array_like (n,)
            Voltage at each unit's point of connection [pu].
        f_hz : float or array_like (n,)
            Grid frequency [Hz].
        p_request_pu : array_like (n,)
            Scheduled active power [pu] (charging < 0).
        p_max_pu, p_min_pu : array_like (n,)
            Feasible active-power bounds from SoC/energy constraints [pu].
        connected : array_like of bool (n,)
            Plugged in.

        Returns
        -------
        InverterOutput
        """
        fac = self._factors(float(dt_s))
        vm = np.asarray(vm_pu, dtype=float)
        p_max = np.asarray(p_max_pu, dtype=float)
        p_min = np.asarray(p_min_pu, dtype=float)
        connected = np.asarray(connected, dtype=bool)
        f_in = f_hz if np.ndim(f_hz) == 0 else np.asarray(f_hz, dtype=float)
        first = not self._initialized

        # 1. frequency measurement (PLL low-pass) of grid-following units
        if first or self._gfm:
            self.f_meas_hz = f_in
        else:
            self.f_meas_hz = self.f_meas_hz + fac["f_meas"] * (f_in - self.f_meas_hz)
        f_meas = self.f_meas_hz

        # 2. protection
        rt = self.ride_through
        rt.update(dt_s=dt_s, vm_pu=vm, f_hz=f_meas, connected=connected)

        # 3. active power
        p = np.clip(np.asarray(p_request_pu, dtype=float), p_min, p_max)
        if self._gfm:
            p = self.vsm.step(dt_s=dt_s, f_hz=f_in, p_ref_pu=p, p_max_pu=p_max, p_min_pu=p_min)
        elif self._freq_watt:
            p = self._droop(p, f_meas, p_max, p_min, fac["fw"], first)
        if self._volt_watt:
            target = volt_watt_p_max_pu(vm, self.settings.volt_watt)
            if first:
                self.p_vw_limit_pu = target
            else:
                self.p_vw_limit_pu += fac["vw"] * (target - self.p_vw_limit_pu)
            p = np.minimum(p, self.p_vw_limit_pu)

        # 4. reactive power
        keep_pf = False
        if self._volt_var:
            target = np.interp(vm, self._vv_v, self._vv_q)
            if first:
                self.q_lag_pu = target
            else:
                self.q_lag_pu += fac["vv"] * (target - self.q_lag_pu)
            q = self.q_lag_pu.copy()
        elif self._watt_var:
            target = watt_var_q_pu(p, self.settings.watt_var)
            if first:
                self.q_lag_pu = target
            else:
                self.q_lag_pu += fac["wv"] * (target - self.q_lag_pu)
            q = self.q_lag_pu.copy()
        elif self._pf:
            q = constant_pf_q_pu(p, self.settings.pf)
            keep_pf = True
        else:
            q = np.zeros(self.n)

        # 5. limits and masks
        if rt.any_ramping:
            np.clip(p, -rt.p_limit_pu, rt.p_limit_pu, out=p)
            if keep_pf:
                q = constant_pf_q_pu(p, self.settings.pf)
        if keep_pf:
            s = np.hypot(p, q)
            scale = np.minimum(1.0, 1.0 / np.maximum(s, 1e-300))
            p *= scale
            q *= scale
        elif self._q_priority:
            lim = np.sqrt(1.0 - q * q)
            np.clip(p, -lim, lim, out=p)
        else:
            np.clip(p, -1.0, 1.0, out=p)
            lim = np.sqrt(1.0 - p * p)
            np.clip(q, -lim, lim, out=q)
        if rt.any_disconnecting:
            p *= rt.output_scale
            q *= rt.output_scale
        active = connected & ~rt.tripped
        active &= ~rt.ceased
        p *= active
        q *= active
        self.p_pu = p
        self.q_pu = q
        self._initialized = True
        return InverterOutput(p_pu=p, q_pu=q, tripped=rt.tripped.copy(), ceased=rt.ceased.copy())

    def _droop(self, p, f_meas, p_max, p_min, factor, first):
        """Frequency droop relative to the pre-disturbance power, lagged with its OLRT."""
        fw = self.settings.freq_watt
        event = (f_meas > F_NOM_HZ + fw.db_of_hz) | (f_meas < F_NOM_HZ - fw.db_uf_hz)
        if np.any(event):
            start = event & ~self._droop_event
            if np.any(start):
                # Pre-disturbance power: the output of the previous step (this step's schedule
                # on the first step).
                before = p if first else self.p_pu
                self.p_pre_pu = np.where(start, before, self.p_pre_pu)
            p_fw = freq_watt_p_pu(
                f_meas, p_pre_pu=self.p_pre_pu, settings=fw, p_max_pu=p_max, p_min_pu=p_min
            )
            target = np.where(event, p_fw - p, 0.0)
            self._droop_lag_active = True
        else:
            target = None
        self._droop_event = np.asarray(event)
        if self._droop_lag_active:
            returning = target is None
            if returning:
                target = 0.0
            if first:
                self.dp_droop_pu = np.broadcast_to(target, (self.n,)).astype(float)
            else:
                self.dp_droop_pu += factor * (target - self.dp_droop_pu)
            if returning and np.max(np.abs(self.dp_droop_pu)) < 1e-9:
                self.dp_droop_pu[:] = 0.0
                self._droop_lag_active = False
            p = p + self.dp_droop_pu
            np.clip(p, p_min, p_max, out=p)
        return p


__all__ = ["InverterBank", "InverterOutput"]
