"""Trip, ride-through, momentary cessation and enter service of N inverters (vectorized).

Model (IEEE 1547-2018 clauses 6.4, 6.5 and 4.10):

- **Trip**: each element (OV2, OV1, UV1, UV2, OF2, OF1, UF1, UF2) has a timer per unit that
  accumulates while its condition holds (``v > OV``, ``v < UV``, ``f > OF``, ``f < UF``) and
  resets to zero as soon as it clears. The unit trips when a timer reaches the element's
  clearing time. Inputs are held over a step (zero-order hold): with ``dt = 0.01 s`` and a
  0.16 s clearing time the unit trips at the end of the 16th consecutive step.
- **Momentary cessation** (Tables 14-16): while ``v < mc_low_v_pu`` or ``v > mc_high_v_pu``
  the unit injects no current but stays connected; it resumes as soon as the voltage is back.
- **Enter service** (clause 4.10): a tripped unit re-enters when voltage and frequency have
  been inside the enter-service window continuously for ``delay_s``; its active-power limit
  then ramps linearly from 0 to 1 pu over ``ramp_s``. A tripped unit injects nothing until
  it re-enters.
- **Stagger ramp** (project option): in ``ramp`` mode a unit whose timer expires ramps its
  output down to zero over ``stagger.ramp_s`` (``disconnecting``), then counts as tripped.

The must-ride-through durations of Tables 14-16 are available as :func:`must_ride_through_s`
(used to check that trip settings respect them).

References
----------
.. [1] IEEE Std 1547-2018, Tables 11-16 (voltage), 18-19 (frequency), clause 4.10.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from grids.errors import SimulationError
from vehicle_models.settings import (
    F_NOM_HZ,
    AbnormalCategory,
    EnterServiceSettings,
    GridCode,
    InverterSettings,
    StaggerMode,
)
from vehicle_models.stagger import TRIP_ELEMENTS, staggered_trip_settings


@njit(cache=True)
def _timer_kernel(
    x, x_stride, connected, sign, sthr, t_clear, thr_stride, timers, dt, new_trip, e0,
    ceased, mc_low, mc_high,
):  # fmt: skip
    """Advance the four timers ``e0 .. e0+3`` with input ``x`` (voltage or frequency).

    A timer accumulates ``dt`` while its condition holds for a connected unit and resets to
    zero otherwise; ``new_trip[i]`` is set when a timer reaches its clearing time. With
    finite ``mc_low``/``mc_high`` also writes the momentary-cessation flags. Returns the
    number of running timers.
    """
    active = 0
    for i in range(connected.shape[0]):
        xi = x[i * x_stride]
        j = i * thr_stride
        c = connected[i]
        for k in range(4):
            e = e0 + k
            if c and sign[e] * xi > sthr[e, j]:
                t = timers[e, i] + dt
                timers[e, i] = t
                active += 1
                if t >= t_clear[e, j]:
                    new_trip[i] = True
            elif timers[e, i] != 0.0:  # read, not write, in the common case
                timers[e, i] = 0.0
        if c and (xi < mc_low or xi > mc_high):
            ceased[i] = True
    return active


def must_ride_through_s(vm_pu, category: AbnormalCategory) -> np.ndarray:
    """Minimum time [s] a unit must ride through a voltage ``vm_pu`` (Tables 14-16).

    Parameters
    ----------
    vm_pu : array_like
        Voltage [pu].
    category : AbnormalCategory
        Abnormal performance category.

    Returns
    -------
    numpy.ndarray
        Minimum ride-through time [s] per voltage.

    ``inf`` in the continuous-operation band (0.88-1.10 pu), ``0`` where ride-through is not
    required; in permissive-operation and momentary-cessation bands the tabulated minimum
    time (the unit must not trip earlier).

    Notes
    -----
    Category I: 1.10-1.20 pu 0.2 s; 0.70-0.88 pu ``0.7 + 4 (V - 0.7)`` s; 0.50-0.70 pu 0.16 s.
    Category II: 1.175-1.20 pu 0.2 s; 1.15-1.175 pu 0.5 s; 1.10-1.15 pu 1 s;
    0.65-0.88 pu ``3 + 8.7 (V - 0.65)`` s; 0.45-0.65 pu 0.32 s; 0.30-0.45 pu 0.16 s.
    Category III: 1.10-1.20 pu 12 s (momentary cessation); 0.70-0.88 pu 20 s;
    0.50-0.70 pu 10 s; below 0.50 pu 1 s (momentary cessation).
    Above 1.20 pu every category ceases to energize (0 s).
    """
    v = np.asarray(vm_pu, dtype=float)
    t = np.zeros_like(v)
    continuous = (v >= 0.88) & (v <= 1.10)
    t[continuous] = np.inf
    if category is AbnormalCategory.I:
        t[(v > 1.10) & (v <= 1.20)] = 0.2
        band = (v >= 0.70) & (v < 0.88)
        t[band] = 0.7 + 4.0 * (v[band] - 0.7)
        t[(v >= 0.50) & (v < 0.70)] = 0.16
    elif category is AbnormalCategory.II:
        t[(v > 1.175) & (v <= 1.20)] = 0.2
        t[(v > 1.15) & (v <= 1.175)] = 0.5
        t[(v > 1.10) & (v <= 1.15)] = 1.0
        band = (v >= 0.65) & (v < 0.88)
        t[band] = 3.0 + 8.7 * (v[band] - 0.65)
        t[(v >= 0.45) & (v < 0.65)] = 0.32
        t[(v >= 0.30) & (v < 0.45)] = 0.16
    else:
        t[(v > 1.10) & (v <= 1.20)] = 12.0
        t[(v >= 0.70) & (v < 0.88)] = 20.0
        t[(v >= 0.50) & (v < 0.70)] = 10.0
        t[v < 0.50] = 1.0
    return t


def must_ride_through_frequency_s(
    f_hz, category: AbnormalCategory, *, f_nominal_hz: float = F_NOM_HZ
) -> np.ndarray:
    """Minimum time [s] a unit must ride through frequency ``f_hz``.

    Parameters
    ----------
    f_hz : array_like
        Frequency [Hz].
    category : AbnormalCategory
        Abnormal performance category.
    f_nominal_hz : float
        System nominal frequency [Hz], 60 or 50.

    Returns
    -------
    numpy.ndarray
        ``inf`` in the continuous band, the mandatory operating time in the limited bands,
        0 outside (no requirement).

    Notes
    -----
    60 Hz (IEEE 1547-2018 Table 19): 58.8-61.2 Hz continuous; 61.2-61.8 Hz and 57.0-58.8 Hz
    mandatory operation for 299 s (all categories). Category III's wider bands are not
    modelled (the defaults of Table 18 trip outside 56.5-62 Hz anyway).

    50 Hz (EN 50549-1 clause 4.4.2, with the Continental Europe times of Regulation (EU)
    2016/631 Table 2): 49.0-51.0 Hz unlimited; 47.5-49.0 Hz and 51.0-51.5 Hz at least 30 min
    (1800 s).

    References
    ----------
    .. [1] IEEE Std 1547-2018, Table 19.
    .. [2] EN 50549-1:2019, clause 4.4.2; Regulation (EU) 2016/631, Table 2.
    """
    f = np.asarray(f_hz, dtype=float)
    t = np.zeros_like(f)
    if GridCode.for_frequency(f_nominal_hz) is GridCode.EN_50549_1:
        t[(f >= 49.0) & (f <= 51.0)] = np.inf
        t[((f > 51.0) & (f <= 51.5)) | ((f >= 47.5) & (f < 49.0))] = 1800.0
        return t
    t[(f >= 58.8) & (f <= 61.2)] = np.inf
    t[((f > 61.2) & (f <= 61.8)) | ((f >= 57.0) & (f < 58.8))] = 299.0
    return t


def trip_time_s(vm_pu: float, f_hz: float, settings: InverterSettings) -> float:
    """Time after which a unit trips at a constant voltage and frequency.

    Parameters
    ----------
    vm_pu : float
        Voltage [pu].
    f_hz : float
        Frequency [Hz].
    settings : InverterSettings
        Trip settings.

    Returns
    -------
    float
        Clearing time [s] of the fastest element that picks up; ``inf`` if none does. The
        closed form of what :class:`RideThroughState` does.
    """
    t = settings.trip
    times = []
    if vm_pu > t.ov2_v_pu:
        times.append(t.ov2_t_s)
    if vm_pu > t.ov1_v_pu:
        times.append(t.ov1_t_s)
    if vm_pu < t.uv1_v_pu:
        times.append(t.uv1_t_s)
    if vm_pu < t.uv2_v_pu:
        times.append(t.uv2_t_s)
    if f_hz > t.of2_f_hz:
        times.append(t.of2_t_s)
    if f_hz > t.of1_f_hz:
        times.append(t.of1_t_s)
    if f_hz < t.uf1_f_hz:
        times.append(t.uf1_t_s)
    if f_hz < t.uf2_f_hz:
        times.append(t.uf2_t_s)
    return min(times) if times else float("inf")


def ride_through_conflicts(
    settings: InverterSettings, *, path: str = "fleet.control.trip"
) -> list[str]:
    """Voltage and frequency bands where the trip settings would trip before the unit has
    ridden through as long as Tables 14-16 and 19 require (empty list: coordinated).

    The allowed ranges of Tables 11-13 and 18 do not by themselves guarantee coordination
    (e.g. Category III ``uv1_t_s = 2`` with ``uv1_v_pu = 0.88`` trips inside the 20 s
    mandatory-operation band); this scans 0-1.3 pu in 1 mV steps and the nominal frequency
    +-10 Hz in 1 mHz steps and reports each conflicting band once, naming the element's keys.

    Parameters
    ----------
    settings : InverterSettings
        Trip settings, abnormal category and nominal frequency.
    path : str
        Key path of the trip table in messages.

    Returns
    -------
    list of str
        One message per conflicting element.
    """
    trip = settings.trip
    category = settings.abnormal_category
    problems: list[str] = []
    elements = [
        ("ov2", "v", trip.ov2_v_pu, trip.ov2_t_s, +1),
        ("ov1", "v", trip.ov1_v_pu, trip.ov1_t_s, +1),
        ("uv1", "v", trip.uv1_v_pu, trip.uv1_t_s, -1),
        ("uv2", "v", trip.uv2_v_pu, trip.uv2_t_s, -1),
        ("of2", "f", trip.of2_f_hz, trip.of2_t_s, +1),
        ("of1", "f", trip.of1_f_hz, trip.of1_t_s, +1),
        ("uf1", "f", trip.uf1_f_hz, trip.uf1_t_s, -1),
        ("uf2", "f", trip.uf2_f_hz, trip.uf2_t_s, -1),
    ]
    v_grid = np.round(np.arange(0.0, 1.3 + 1e-9, 0.001), 3)
    f_nom = settings.f_nominal_hz
    f_grid = np.round(np.arange(f_nom - 10.0, f_nom + 10.0 + 1e-9, 0.001), 3)
    v_need = must_ride_through_s(v_grid, category)
    f_need = must_ride_through_frequency_s(f_grid, category, f_nominal_hz=settings.f_nominal_hz)
    for name, kind, threshold, t_clear, sign in elements:
        grid, need = (v_grid, v_need) if kind == "v" else (f_grid, f_need)
        picks_up = sign * grid > sign * threshold
        bad = picks_up & (t_clear < need - 1e-9)
        if bad.any():
            unit = "pu" if kind == "v" else "Hz"
            key = f"{name}_{'v_pu' if kind == 'v' else 'f_hz'}"
            lo, hi = float(grid[bad].min()), float(grid[bad].max())
            worst = float(need[bad].max())
            problems.append(
                f"{path}.{name}_t_s: {t_clear:g} s (with {key} = {threshold:g}) trips between "
                f"{lo:g} and {hi:g} {unit}, where Category {category.value} must ride through "
                f"for up to {worst:g} s"
            )
    return problems


def is_scalar(value) -> bool:
    """Whether ``value`` is one number (one system frequency rather than one per unit).

    Parameters
    ----------
    value : Any
        Python number, numpy scalar, 0-d or n-d array.

    Returns
    -------
    bool
        True for a Python or numpy scalar or a 0-d array. The ``isinstance`` test first
        spares numpy's dispatch on the hot path.
    """
    return isinstance(value, float | int | np.number) or np.ndim(value) == 0


class RideThroughState:
    """Trip timers, momentary cessation, enter service and stagger ramp for N units.

    Parameters
    ----------
    settings : InverterSettings
        Trip, enter-service and stagger settings are used.
    n : int
        Number of units.
    seed : int
        Seed of the ``random`` stagger mode.

    Attributes
    ----------
    tripped : numpy.ndarray of bool, shape (n,)
        Disconnected by a trip and not yet re-entered.
    ceased : numpy.ndarray of bool, shape (n,)
        In momentary cessation this step.
    disconnecting : numpy.ndarray of bool, shape (n,)
        Ramping down after a trip decision (``ramp`` stagger mode only).
    p_limit_pu : numpy.ndarray, shape (n,)
        Enter-service soft-start limit on |P| [pu] (1 when not ramping).
    output_scale : numpy.ndarray, shape (n,)
        Factor on P and Q of disconnecting units (1 otherwise).
    timer_s : numpy.ndarray, shape (8, n)
        Trip timers in the order of :data:`~vehicle_models.stagger.TRIP_ELEMENTS`.
    es_timer_s : numpy.ndarray, shape (n,)
        Time inside the enter-service window since the trip.
    trip_count : numpy.ndarray of int, shape (n,)
        Number of trips so far.
    """

    def __init__(self, settings: InverterSettings, *, n: int, seed: int = 0) -> None:
        self.n = int(n)
        self.settings = settings
        per_unit = staggered_trip_settings(
            settings.trip,
            settings.stagger,
            settings.abnormal_category,
            n=self.n,
            seed=seed,
            f_nominal_hz=settings.f_nominal_hz,
        )
        # Signed thresholds so one comparison covers over and under elements:
        # over:  x > thr  <=>  +x > +thr;  under: x < thr  <=>  -x > -thr.
        # Shape (8, 1) when every unit shares the settings, (8, n) when staggered.
        self._sign = np.array([+1.0, +1.0, -1.0, -1.0, +1.0, +1.0, -1.0, -1.0])
        names = [
            f"{e}_v_pu" if e in ("ov2", "ov1", "uv1", "uv2") else f"{e}_f_hz" for e in TRIP_ELEMENTS
        ]
        staggered = any(np.ndim(v) > 0 for v in per_unit.values())
        width = self.n if staggered else 1
        thr = np.vstack([np.broadcast_to(per_unit[k], (width,)) for k in names])
        t_clear = np.vstack(
            [np.broadcast_to(per_unit[f"{e}_t_s"], (width,)) for e in TRIP_ELEMENTS]
        )
        self._thr_stride = 1 if staggered else 0
        self._sthr = np.ascontiguousarray(self._sign[:, None] * thr)
        # A tiny tolerance so that accumulated float steps (16 x 0.01) reach 0.16.
        self._t_clear = np.ascontiguousarray(t_clear - 1e-9)
        trip = settings.trip
        self._mc_low = trip.mc_low_v_pu
        self._mc_high = trip.mc_high_v_pu
        # Guard band: if every voltage/frequency is inside it no element can pick up, so the
        # whole trip logic is skipped (the common case, keeps a step cheap).
        has_units = self.n > 0 and thr.size > 0
        self._v_guard = (
            max(float(np.max(thr[2:4])) if has_units else 0.0, self._mc_low),
            min(float(np.min(thr[0:2])) if has_units else 2.0, self._mc_high),
        )
        self._f_guard = (
            float(np.max(thr[6:8])) if has_units else 0.0,
            float(np.min(thr[4:6])) if has_units else 100.0,
        )
        self.timer_s = np.zeros((8, self.n))
        self._v_timers_active = False
        self._f_timers_active = False
        self.tripped = np.zeros(self.n, dtype=bool)
        self.ceased = np.zeros(self.n, dtype=bool)
        self.disconnecting = np.zeros(self.n, dtype=bool)
        self.output_scale = np.ones(self.n)
        self.p_limit_pu = np.ones(self.n)
        self.es_timer_s = np.zeros(self.n)
        self.trip_count = np.zeros(self.n, dtype=np.int64)
        self._n_tripped = 0
        self._n_disconnecting = 0
        self._n_ramping = 0
        self._ramp_mode = settings.stagger.mode is StaggerMode.RAMP
        self._ramp_down_s = settings.stagger.ramp_s

    # ------------------------------------------------------------------------------------
    def update(self, *, dt_s: float, vm_pu: np.ndarray, f_hz, connected: np.ndarray) -> None:
        """Advance all timers, trips, momentary cessation and enter service by one step.

        Parameters
        ----------
        dt_s : float
            Step [s].
        vm_pu : numpy.ndarray, shape (n,)
            Voltage per unit [pu].
        f_hz : float or numpy.ndarray, shape (n,)
            (Measured) frequency [Hz].
        connected : numpy.ndarray of bool, shape (n,)
            Plugged in; units that are not have their timers reset and cannot trip.

        Raises
        ------
        SimulationError
            For a voltage or frequency that is not finite.
        """
        es = self.settings.enter_service
        # --- enter service of tripped units (before new trips: a unit tripping this step
        # starts counting its delay from the next step).
        if self._n_tripped:
            self._enter_service(dt_s, vm_pu, f_hz, es)
        if self._n_ramping:
            np.minimum(self.p_limit_pu + dt_s / es.ramp_s, 1.0, out=self.p_limit_pu)
            self._n_ramping = int(np.count_nonzero(self.p_limit_pu < 1.0))
        if self._n_disconnecting:
            self._ramp_down(dt_s)

        v_lo, v_hi = self._v_guard
        v_min = float(vm_pu.min()) if self.n else 1.0
        v_max = float(vm_pu.max()) if self.n else 1.0
        if is_scalar(f_hz):  # one system frequency (the usual case): no array reductions
            f_min = f_max = float(f_hz)
        else:
            f_min = float(np.min(f_hz))
            f_max = float(np.max(f_hz))
        if not (math.isfinite(v_min) and math.isfinite(v_max)):
            bad = int(np.flatnonzero(~np.isfinite(vm_pu))[0])
            raise SimulationError(f"inverter voltage input is not finite at unit {bad}")
        if not (math.isfinite(f_min) and math.isfinite(f_max)):
            raise SimulationError("inverter frequency input is not finite")
        check_v = self._v_timers_active or v_min < v_lo or v_max > v_hi
        f_lo, f_hi = self._f_guard
        check_f = self._f_timers_active or f_min < f_lo or f_max > f_hi
        if not (check_v or check_f):
            if self.ceased.any():
                self.ceased = np.zeros(self.n, dtype=bool)
            return
        new_trip = np.zeros(self.n, dtype=np.bool_)
        if check_v:
            ceased = np.zeros(self.n, dtype=np.bool_)
            active = _timer_kernel(
                vm_pu, 1, connected, self._sign, self._sthr, self._t_clear, self._thr_stride,
                self.timer_s, float(dt_s), new_trip, 0, ceased, self._mc_low, self._mc_high,
            )  # fmt: skip
            self._v_timers_active = active > 0
            self.ceased = ceased
        elif self.ceased.any():
            self.ceased = np.zeros(self.n, dtype=bool)
        if check_f:
            f_arr = np.atleast_1d(np.asarray(f_hz, dtype=float))
            active = _timer_kernel(
                f_arr, 0 if f_arr.size == 1 else 1, connected, self._sign, self._sthr,
                self._t_clear, self._thr_stride, self.timer_s, float(dt_s), new_trip, 4,
                self.ceased, -np.inf, np.inf,
            )  # fmt: skip
            self._f_timers_active = active > 0
        new_trip &= ~self.tripped
        new_trip &= ~self.disconnecting
        if new_trip.any():
            if self._ramp_mode:
                self.disconnecting |= new_trip
                self._n_disconnecting = int(np.count_nonzero(self.disconnecting))
            else:
                self._trip(new_trip)

    # ------------------------------------------------------------------------------------
    def _trip(self, mask: np.ndarray) -> None:
        self.tripped |= mask
        self.trip_count += mask
        self.timer_s[:, mask] = 0.0
        self.es_timer_s[mask] = 0.0
        self._n_tripped = int(np.count_nonzero(self.tripped))

    def _ramp_down(self, dt_s: float) -> None:
        idx = self.disconnecting
        self.output_scale[idx] -= dt_s / self._ramp_down_s
        done = idx & (self.output_scale <= 1e-12)
        if done.any():
            self.disconnecting &= ~done
            self.output_scale[done] = 1.0
            self._trip(done)
        self._n_disconnecting = int(np.count_nonzero(self.disconnecting))

    def _enter_service(self, dt_s: float, vm_pu, f_hz, es: EnterServiceSettings) -> None:
        window = (vm_pu >= es.v_low_pu) & (vm_pu <= es.v_high_pu)
        window &= (np.asarray(f_hz) >= es.f_low_hz) & (np.asarray(f_hz) <= es.f_high_hz)
        window &= self.tripped
        self.es_timer_s += dt_s
        self.es_timer_s *= window
        enter = window & (self.es_timer_s >= es.delay_s - 1e-9)
        if enter.any():
            self.tripped &= ~enter
            self.es_timer_s[enter] = 0.0
            self.p_limit_pu[enter] = 0.0
            self.timer_s[:, enter] = 0.0
            self._n_tripped = int(np.count_nonzero(self.tripped))
            self._n_ramping = int(np.count_nonzero(self.p_limit_pu < 1.0))

    @property
    def any_ramping(self) -> bool:
        """Some unit is in its enter-service soft start."""
        return self._n_ramping > 0

    @property
    def any_disconnecting(self) -> bool:
        """Some unit is ramping down (``ramp`` stagger mode)."""
        return self._n_disconnecting > 0


__all__ = [
    "RideThroughState",
    "must_ride_through_frequency_s",
    "must_ride_through_s",
    "ride_through_conflicts",
    "trip_time_s",
]
