"""Battery degradation: calendar and cycle ageing (Schmalstieg et al. 2014) and its cost.

Semi-empirical NMC ageing model, vectorized over vehicles. Relative capacity fade::

    fade = alpha_cap(V, T) * t^0.75  +  beta_cap(V_mean, DOD) * sqrt(Q)

with storage time ``t`` [days], charge throughput per cell ``Q`` [Ah], cell voltage ``V`` [V]
(from the SoC through the OCV curve) and temperature ``T`` [K]:

* calendar: ``alpha_cap = (7.543 V - 23.75) 1e6 exp(-6976 / T)`` [1/day^0.75]
  (Arrhenius temperature dependence, SoC stress through the voltage);
* cycle: ``beta_cap = 7.348e-3 (V_mean - 3.667)^2 + 7.6e-4 + 4.081e-3 DOD`` [1/Ah^0.5].

Under time-varying stress the power laws are advanced with the "equivalent time" (and
"equivalent throughput") method: the fade reached so far is converted to the time at which
the present stress would have produced it, and the step is taken from there. This is exact for
constant stress (any step length) and is the usual way to apply these laws to drive cycles.

Depth of discharge: this is a rainflow-free throughput model; see
:class:`DegradationTracker` for how the depth is estimated per update interval.

References
----------
.. [1] J. Schmalstieg, S. Kaebitz, M. Ecker, D. U. Sauer, "A holistic aging model for
   Li(NiMnCo)O2 based 18650 lithium-ion batteries", J. Power Sources 257 (2014) 325-334,
   eqs. (4)-(7) and Table 3.
.. [2] J. Wang et al., "Cycle-life model for graphite-LiFePO4 cells", J. Power Sources 196
   (2011) 3942-3948 (throughput-based cycle-life laws of the same form).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from vehicle_models.battery import NMC_OCV_SOC_FRAC, NMC_OCV_V

KELVIN = 273.15
S_PER_DAY = 86400.0


@dataclass(frozen=True)
class AgeingParameters:
    """Coefficients of the Schmalstieg et al. (2014) NMC ageing model (their Table 3).

    Parameters
    ----------
    cal_v_coeff, cal_offset, cal_scale : float
        ``alpha_cap = (cal_v_coeff V + cal_offset) cal_scale exp(-cal_ea_over_r_k / T)``.
    cal_ea_over_r_k : float
        Activation energy over the gas constant [K].
    cal_time_exp : float
        Time exponent (0.75).
    cyc_v_coeff, cyc_v_ref_v, cyc_offset, cyc_dod_coeff : float
        ``beta_cap = cyc_v_coeff (V_mean - cyc_v_ref_v)^2 + cyc_offset + cyc_dod_coeff DOD``.
    cyc_q_exp : float
        Throughput exponent (0.5).
    cell_ah : float
        Nominal cell capacity [Ah] (2.05 Ah Sanyo UR18650E), to convert pack throughput in
        kWh into cell Ah: ``Q = E_throughput / E_capacity * cell_ah``.
    fade_end_of_life_frac : float
        Capacity fade at end of (automotive) life [-], usually 0.2.
    """

    cal_v_coeff: float = 7.543
    cal_offset: float = -23.75
    cal_scale: float = 1e6
    cal_ea_over_r_k: float = 6976.0
    cal_time_exp: float = 0.75
    cyc_v_coeff: float = 7.348e-3
    cyc_v_ref_v: float = 3.667
    cyc_offset: float = 7.6e-4
    cyc_dod_coeff: float = 4.081e-3
    cyc_q_exp: float = 0.5
    cell_ah: float = 2.05
    fade_end_of_life_frac: float = 0.2


DEFAULT_AGEING = AgeingParameters()


def cell_voltage_v(soc_frac) -> np.ndarray:
    """Open-circuit voltage of the reference NMC cell (interpolated table).

    Parameters
    ----------
    soc_frac : array_like
        State of charge [-] (clipped to 0..1).

    Returns
    -------
    numpy.ndarray
        Cell voltage [V].
    """
    return np.interp(np.clip(soc_frac, 0.0, 1.0), NMC_OCV_SOC_FRAC, NMC_OCV_V)


def calendar_alpha_per_day(
    soc_frac, theta_c, *, params: AgeingParameters = DEFAULT_AGEING
) -> np.ndarray:
    """Calendar ageing factor ``alpha_cap`` [1/day^0.75].

    Parameters
    ----------
    soc_frac : array_like
        State of charge during storage [-].
    theta_c : array_like
        Cell temperature [°C].
    params : AgeingParameters
        Fitted coefficients.

    Returns
    -------
    numpy.ndarray
        ``alpha_cap`` [1/day^0.75].

    Notes
    -----
    ``alpha_cap = (7.543 V - 23.75) 1e6 exp(-6976 / T)``, clipped at 0 for voltages below
    3.149 V where the fitted line would become negative.

    References
    ----------
    Schmalstieg et al. (2014), eq. (6).
    """
    v = cell_voltage_v(soc_frac)
    t_k = np.asarray(theta_c, dtype=float) + KELVIN
    lin = np.maximum(params.cal_v_coeff * v + params.cal_offset, 0.0)
    return lin * params.cal_scale * np.exp(-params.cal_ea_over_r_k / t_k)


def cycle_beta_per_sqrt_ah(
    v_mean_v, dod_frac, *, params: AgeingParameters = DEFAULT_AGEING
) -> np.ndarray:
    """Cycle ageing factor ``beta_cap`` at mean cell voltage and depth of discharge.

    Parameters
    ----------
    v_mean_v : array_like
        Mean cell voltage over the cycle [V].
    dod_frac : array_like
        Depth of discharge [-].
    params : AgeingParameters
        Fitted coefficients.

    Returns
    -------
    numpy.ndarray
        ``beta_cap`` [1/Ah^0.5].

    Notes
    -----
    ``beta_cap = 7.348e-3 (V_mean - 3.667)^2 + 7.6e-4 + 4.081e-3 DOD``.

    References
    ----------
    Schmalstieg et al. (2014), eq. (7).
    """
    v = np.asarray(v_mean_v, dtype=float)
    return (
        params.cyc_v_coeff * (v - params.cyc_v_ref_v) ** 2
        + params.cyc_offset
        + params.cyc_dod_coeff * np.asarray(dod_frac, dtype=float)
    )


def advance_power_law(fade_frac, rate, dx, exponent: float) -> np.ndarray:
    """Advance ``fade = rate * x^exponent`` by ``dx`` with the equivalent-x method.

    Parameters
    ----------
    fade_frac : array_like
        Fade reached so far [-].
    rate : array_like
        Present stress factor (``alpha_cap`` or ``beta_cap``).
    dx : array_like
        Increment of the ageing variable (days or cell Ah), >= 0.
    exponent : float
        Power-law exponent (0.75 calendar, 0.5 cycle).

    Returns
    -------
    numpy.ndarray
        Fade after the increment [-].

    Notes
    -----
    ``x_eq = (fade / rate)^(1 / exponent)``; ``fade_new = rate (x_eq + dx)^exponent``.
    Where ``rate`` is 0 the fade does not change.
    """
    fade = np.asarray(fade_frac, dtype=float)
    rate = np.asarray(rate, dtype=float)
    safe = np.where(rate > 0, rate, 1.0)
    x_eq = (fade / safe) ** (1.0 / exponent)
    return np.where(rate > 0, safe * (x_eq + dx) ** exponent, fade)


def degradation_cost_per_kwh(
    *,
    battery_price_per_kwh: float,
    soc_mean_frac: float = 0.5,
    dod_frac: float = 0.8,
    params: AgeingParameters = DEFAULT_AGEING,
) -> float:
    """Cycle-ageing cost per kWh of battery throughput (currency / kWh).

    Parameters
    ----------
    battery_price_per_kwh : float
        Replacement cost of the battery per kWh of usable capacity (currency / kWh).
    soc_mean_frac : float
        Mean SoC of the cycling [-] (sets ``V_mean``).
    dod_frac : float
        Typical depth of discharge [-].

    Returns
    -------
    float
        Cost per kWh of throughput (charged plus discharged energy counted separately);
        one kWh delivered by V2G and recharged costs about twice this.

    Notes
    -----
    Lifetime throughput to end of life: ``Q_life = (fade_eol / beta)^2`` cell Ah, i.e.
    ``E_life = Q_life / cell_ah * E_capacity``; the cost is the lifetime average
    ``price * E_capacity / E_life = price * cell_ah * beta^2 / fade_eol^2`` (independent of
    the capacity). The sqrt law makes the marginal cost fall with age; the average is the
    usual planning figure.
    """
    beta = float(cycle_beta_per_sqrt_ah(cell_voltage_v(soc_mean_frac), dod_frac, params=params))
    return battery_price_per_kwh * params.cell_ah * beta**2 / params.fade_end_of_life_frac**2


def _uniform_table(xp, fp) -> tuple[float, np.ndarray]:
    """The piecewise-linear curve ``(xp, fp)`` on a uniform grid ``0, h, 2h, ... 1`` whose step
    ``h`` divides every knot: the same function (each knot is a grid point), looked up by index
    instead of a search."""
    xp = np.asarray(xp, dtype=float)
    steps = np.diff(xp)
    h = float(steps.min())
    n = round(1.0 / h)
    if not (xp[0] == 0.0 and xp[-1] == 1.0 and np.allclose(xp / h, np.round(xp / h), atol=1e-9)):
        raise ValueError("OCV table: the SoC knots must lie on a uniform grid from 0 to 1")
    grid = np.linspace(0.0, 1.0, n + 1)
    return float(n), np.interp(grid, xp, np.asarray(fp, dtype=float))


#: reference NMC open-circuit voltage on a uniform SoC grid (knots every 0.05)
_OCV_PER_SOC, _OCV_GRID_V = _uniform_table(NMC_OCV_SOC_FRAC, NMC_OCV_V)


@njit(cache=True, inline="always")
def _interp_uniform(x, per_x, fp):  # pragma: no cover - compiled
    """``np.interp(x, grid, fp)`` for ``x`` in [0, 1] on the grid ``k / per_x``."""
    position = x * per_x
    k = min(int(position), fp.shape[0] - 2)
    return fp[k] + (fp[k + 1] - fp[k]) * (position - k)


@njit(cache=True)
def _flush_kernel(
    cal_x,
    cyc_x,
    soc_start,
    soc_end,
    pending_kwh,
    throughput_kwh,
    e_capacity_kwh,
    arrhenius,
    days,
    ocv_per_soc,
    ocv_v,
    cal,
    cyc,
    cell_ah,
    dod,
):  # pragma: no cover - compiled
    """One interval of :meth:`DegradationTracker.flush` for every battery, fused and in place.

    The power laws ``fade = k x^e`` are advanced in the variable ``X = fade^(1/e) = k^(1/e) x``,
    where the equivalent-time method of :func:`advance_power_law` is a plain sum:
    ``fade_new^(1/e) = k^(1/e) (x_eq + dx) = fade^(1/e) + k^(1/e) dx``. ``cal_x`` holds
    ``fade_cal^(1/cal_exp)``, ``cyc_x`` holds ``fade_cyc^(1/cyc_exp)``; the stress factors are
    those of :func:`calendar_alpha_per_day` and :func:`cycle_beta_per_sqrt_ah`
    (``tests/vehicle_models/test_battery.py`` checks the kernel against those functions).
    ``dod`` receives the interval's depth of discharge; the interval's throughput
    ``pending_kwh`` moves into the lifetime ``throughput_kwh``. ``arrhenius`` is
    ``cal_scale exp(-Ea/R / T)`` per battery (it changes only with the temperature).
    """
    cal_v, cal_off, cal_exp = cal
    cyc_v, cyc_vref, cyc_off, cyc_dod, cyc_exp = cyc
    for i in range(soc_end.shape[0]):
        soc_mean = min(max(0.5 * (soc_start[i] + soc_end[i]), 0.0), 1.0)
        v = _interp_uniform(soc_mean, ocv_per_soc, ocv_v)
        alpha = max(cal_v * v + cal_off, 0.0) * arrhenius[i]
        if alpha > 0 and cal_exp == 0.75:  # the paper's t^0.75: alpha^(4/3) without pow
            cal_x[i] += alpha * np.cbrt(alpha) * days
        elif alpha > 0:
            cal_x[i] += alpha ** (1.0 / cal_exp) * days
        pending = pending_kwh[i]
        throughput_kwh[i] += pending  # lifetime throughput; the interval's is cleared
        pending_kwh[i] = 0.0
        half_cycles = pending / (2.0 * e_capacity_kwh[i])
        dod[i] = min(max(abs(soc_end[i] - soc_start[i]), half_cycles), 1.0)
        q_ah = pending / e_capacity_kwh[i] * cell_ah
        beta = cyc_v * (v - cyc_vref) ** 2 + cyc_off + cyc_dod * dod[i]
        if beta > 0 and cyc_exp == 0.5:  # the paper's sqrt(Q): beta^2
            cyc_x[i] += beta * beta * q_ah
        elif beta > 0:
            cyc_x[i] += beta ** (1.0 / cyc_exp) * q_ah


class DegradationTracker:
    """Calendar and cycle capacity fade of N batteries, advanced step by step.

    Every step only adds the battery-side throughput ``|delta E|`` [kWh] (one array update, so
    a 100,000-vehicle fleet pays almost nothing per step); every ``interval_s`` seconds of
    simulated time (or on :meth:`flush`) the power laws are applied with the interval's stress:

    * mean SoC = average of the SoC at the start and the end of the interval (trapezoid);
    * depth of discharge = ``max(|soc_end - soc_start|, throughput / (2 capacity))``, capped at
      1: exact for one monotonic swing or one up-and-down half-cycle pair inside the interval,
      conservative (over-counts depth) for several cycles inside one interval. This is the
      documented rainflow-free approximation; keep ``interval_s`` short against the cycling
      period you care about (15 min for daily V2G schedules).

    Parameters
    ----------
    n : int
        Number of batteries.
    params : AgeingParameters
    interval_s : float
        Simulated time between power-law updates [s].
    theta_c : float or array_like
        Cell temperature [°C] (constant; set the attribute to change it).
    """

    def __init__(
        self,
        n: int,
        *,
        params: AgeingParameters = DEFAULT_AGEING,
        interval_s: float = 900.0,
        theta_c=25.0,
    ) -> None:
        self.params = params
        self.interval_s = float(interval_s)
        self._n = n
        self.theta_c = theta_c
        # the fades in the additive variable X = fade^(1/exponent) (see _flush_kernel)
        self._cal_x = np.zeros(n)
        self._cyc_x = np.zeros(n)
        self.throughput_kwh = np.zeros(n)  # lifetime charged + discharged (battery side)
        self.pending_throughput_kwh = np.zeros(n)  # since the last update (kernels add here)
        self.soc_start_frac: np.ndarray | None = None  # SoC at the start of the interval
        self.e_capacity_kwh = np.ones(n)
        self.elapsed_s = 0.0
        self.dod_frac = np.zeros(n)  # depth used at the last update (for reports)

    @property
    def theta_c(self) -> np.ndarray:
        """Cell temperature per battery [°C] (read-only; assign a new value to change it)."""
        return self._theta_c

    @theta_c.setter
    def theta_c(self, value) -> None:
        theta = np.broadcast_to(np.asarray(value, dtype=float), (self._n,)).copy()
        theta.flags.writeable = False
        self._theta_c = theta
        p = self.params
        # the temperature factor of alpha_cap, evaluated once per temperature change
        self._arrhenius = p.cal_scale * np.exp(-p.cal_ea_over_r_k / (theta + KELVIN))

    @property
    def fade_calendar_frac(self) -> np.ndarray:
        """Calendar capacity fade [-] (a new array)."""
        return self._cal_x**self.params.cal_time_exp

    @fade_calendar_frac.setter
    def fade_calendar_frac(self, value) -> None:
        fade = np.broadcast_to(np.asarray(value, dtype=float), self._cal_x.shape)
        self._cal_x = fade ** (1.0 / self.params.cal_time_exp)

    @property
    def fade_cycle_frac(self) -> np.ndarray:
        """Cycle capacity fade [-] (a new array)."""
        return self._cyc_x**self.params.cyc_q_exp

    @fade_cycle_frac.setter
    def fade_cycle_frac(self, value) -> None:
        fade = np.broadcast_to(np.asarray(value, dtype=float), self._cyc_x.shape)
        self._cyc_x = fade ** (1.0 / self.params.cyc_q_exp)

    @property
    def fade_frac(self) -> np.ndarray:
        """Total relative capacity fade [-]."""
        return self.fade_calendar_frac + self.fade_cycle_frac

    @property
    def due(self) -> bool:
        """True when ``interval_s`` of simulated time has passed since the last update."""
        return self.elapsed_s >= self.interval_s

    def start(self, *, soc_frac: np.ndarray, e_capacity_kwh: np.ndarray) -> None:
        """Set the SoC at the start of the first interval (done by :meth:`accumulate`).

        Parameters
        ----------
        soc_frac : numpy.ndarray
            State of charge [-] per battery.
        e_capacity_kwh : numpy.ndarray
            Capacity [kWh] per battery.
        """
        if self.soc_start_frac is None:
            self.soc_start_frac = np.array(soc_frac, dtype=float)
        self.e_capacity_kwh = e_capacity_kwh

    def accumulate(
        self,
        *,
        soc_before_frac: np.ndarray,
        soc_after_frac: np.ndarray,
        e_capacity_kwh: np.ndarray,
        dt_s: float,
    ) -> None:
        """Record one step (throughput ``|dsoc| E_cap``); flush when the interval is due.

        Parameters
        ----------
        soc_before_frac, soc_after_frac : numpy.ndarray
            State of charge [-] before and after the step.
        e_capacity_kwh : numpy.ndarray
            Capacity [kWh].
        dt_s : float
            Step [s].
        """
        self.start(soc_frac=soc_before_frac, e_capacity_kwh=e_capacity_kwh)
        self.pending_throughput_kwh += np.abs(soc_before_frac - soc_after_frac) * e_capacity_kwh
        self.elapsed_s += dt_s
        if self.due:
            self.flush(soc_after_frac)

    def flush(self, soc_frac: np.ndarray) -> None:
        """Apply the power laws to the interval ending now.

        Parameters
        ----------
        soc_frac : numpy.ndarray
            State of charge [-] at the end of the interval.
        """
        if self.elapsed_s <= 0 or self.soc_start_frac is None:
            return
        p = self.params
        soc_end = np.ascontiguousarray(soc_frac, dtype=float)
        capacity = self.e_capacity_kwh
        if not (isinstance(capacity, np.ndarray) and capacity.shape == soc_end.shape):
            capacity = np.broadcast_to(np.asarray(capacity, dtype=float), soc_end.shape)
        dod = np.empty(soc_end.shape)
        _flush_kernel(
            self._cal_x,
            self._cyc_x,
            self.soc_start_frac,
            soc_end,
            self.pending_throughput_kwh,
            self.throughput_kwh,
            capacity,
            self._arrhenius,
            self.elapsed_s / S_PER_DAY,
            _OCV_PER_SOC,
            _OCV_GRID_V,
            (p.cal_v_coeff, p.cal_offset, p.cal_time_exp),
            (p.cyc_v_coeff, p.cyc_v_ref_v, p.cyc_offset, p.cyc_dod_coeff, p.cyc_q_exp),
            p.cell_ah,
            dod,
        )
        self.dod_frac = dod
        self.soc_start_frac = soc_end.copy()
        self.elapsed_s = 0.0
