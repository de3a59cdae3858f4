"""Aggregate swing-equation frequency model of a bulk grid or an island.

One machine stands for the whole synchronous area (centre-of-inertia frequency). All
quantities inside the model are per unit on the system base ``s_base_mw`` (power) and the
nominal frequency ``f0_hz`` (frequency). The state vector is

``x = [Δf, ΔP_gv, ΔP_rh, ΔP_agc]``

with the frequency deviation ``Δf``, the governor/turbine output ``ΔP_gv``, the reheat lag
state ``ΔP_rh`` (present but unused without reheat) and the AGC set-point ``ΔP_agc`` (present
but constant zero without AGC). Between two calls of :meth:`SwingModel.step` the injection is
constant, so the linear system is integrated *exactly* with the matrix exponential of the
augmented system (zero-order-hold discretization), cached per step size: the result does not
depend on the step size except through the sampling of the input.

Under-frequency load shedding (UFLS) stages are handled at the step level: a stage's pick-up
timer runs while the frequency is below its threshold (the crossing instant inside a step is
interpolated linearly) and resets when the frequency recovers; when the timer reaches the
delay, the step is split at the trip instant and the shed load relieves the imbalance from
that instant on.

References
----------
.. [1] P. Kundur, *Power System Stability and Control*, McGraw-Hill, 1994, ch. 11 (governor,
   reheat turbine, load damping) and ch. 12 (load-frequency control, AGC).
.. [2] ENTSO-E, *Network Code on Emergency and Restoration* (Regulation (EU) 2017/2196),
   Annex: automatic low-frequency demand disconnection scheme; NERC PRC-006 (UFLS).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
from scipy.linalg import expm

from grids.errors import ScenarioError, check_problems

_N_STATE = 4
_I_F, _I_GV, _I_RH, _I_AGC = range(_N_STATE)


@dataclass(frozen=True)
class UflsStage:
    """One under-frequency load-shedding stage.

    Parameters
    ----------
    threshold_hz : float
        Frequency below which the stage's pick-up timer runs [Hz].
    delay_s : float
        Time the frequency must stay below the threshold before the stage trips [s]
        (relay plus breaker time). The timer resets if the frequency recovers.
    fraction : float
        Fraction of ``SwingParameters.load_mw`` shed when the stage trips, in (0, 1].
    """

    threshold_hz: float
    delay_s: float
    fraction: float


@dataclass(frozen=True)
class SwingParameters:
    """Parameters of the aggregate swing equation, governor, reheat turbine, AGC and UFLS.

    Parameters
    ----------
    f0_hz : float
        Nominal frequency [Hz].
    s_base_mw : float
        System base power [MW] (online generation rating); ``h_s`` and ``d_pu`` refer to it.
    h_s : float
        Inertia constant [s] on ``s_base_mw``.
    d_pu : float
        Load damping [pu power / pu frequency] on ``s_base_mw``.
    r_pu : float
        Governor droop [pu frequency / pu power]; ``math.inf`` means no governor (island).
    t_gov_s : float
        Governor-turbine time constant [s].
    f_hp : float or None
        Fraction of power from the high-pressure turbine (reheat turbine); with ``t_rh_s``.
    t_rh_s : float or None
        Reheat time constant [s]; with ``f_hp``.
    agc_ki_per_s : float or None
        Integral gain of secondary control [pu power / (pu frequency · s)].
    ufls : tuple of UflsStage
        Load-shedding stages.
    load_mw : float or None
        Load the UFLS fractions apply to [MW]; defaults to ``s_base_mw``.
    """

    f0_hz: float = 60.0
    s_base_mw: float = 10000.0
    h_s: float = 5.0
    d_pu: float = 1.0
    r_pu: float = 0.05
    t_gov_s: float = 0.5
    f_hp: float | None = None
    t_rh_s: float | None = None
    agc_ki_per_s: float | None = None
    ufls: tuple[UflsStage, ...] = field(default_factory=tuple)
    load_mw: float | None = None

    @classmethod
    def island(
        cls,
        *,
        s_base_mw: float,
        h_s: float,
        d_pu: float,
        f0_hz: float = 60.0,
        ufls: tuple[UflsStage, ...] = (),
        load_mw: float | None = None,
    ) -> SwingParameters:
        """Parameters of an island whose frequency is set by a grid-forming fleet.

        There is no governor: the fleet's virtual-synchronous-machine inertia ``h_s`` [s] and
        damping ``d_pu`` (both on the fleet rating ``s_base_mw`` [MW]) are the only
        frequency-holding terms, so the steady-state deviation is ``-ΔP/D``.
        """
        return cls(
            f0_hz=f0_hz,
            s_base_mw=s_base_mw,
            h_s=h_s,
            d_pu=d_pu,
            r_pu=math.inf,
            ufls=tuple(ufls),
            load_mw=load_mw,
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, path: str = "frequency") -> SwingParameters:
        """Build from a scenario ``[frequency]`` table; raise ScenarioError listing every problem.

        UFLS stages are given as a list of tables ``[[frequency.ufls]]`` with the keys
        ``threshold_hz``, ``delay_s``, ``fraction``. An ``island = true`` key is not accepted
        here (use :meth:`island`).
        """
        problems: list[str] = []
        known = {f.name for f in fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key not in known:
                problems.append(f"{path}.{key}: unknown key (allowed: {', '.join(sorted(known))})")
                continue
            if key == "ufls":
                stages = _ufls_from_list(value, f"{path}.ufls", problems)
                kwargs[key] = stages
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                problems.append(f"{path}.{key}: {value!r} is not a number")
                continue
            kwargs[key] = float(value)
        check_problems(problems, ScenarioError, f"invalid {path} section")
        params = cls(**kwargs)
        check_problems(params.problems(path), ScenarioError, f"invalid {path} section")
        return params

    @property
    def has_governor(self) -> bool:
        """True unless ``r_pu`` is infinite (island without governor)."""
        return math.isfinite(self.r_pu)

    @property
    def has_reheat(self) -> bool:
        return self.f_hp is not None and self.t_rh_s is not None

    @property
    def shed_base_mw(self) -> float:
        """Load the UFLS fractions apply to [MW]."""
        return self.s_base_mw if self.load_mw is None else self.load_mw

    def problems(self, path: str = "frequency") -> list[str]:
        """Every range problem, as ``"path.key: value is ..."`` strings (empty when valid)."""
        out: list[str] = []

        def positive(key: str, value: float | None, *, allow_inf: bool = False) -> None:
            if value is None:
                return
            if isinstance(value, bool) or not isinstance(value, int | float):
                out.append(f"{path}.{key}: {value!r} is not a number")
            elif math.isnan(value) or (math.isinf(value) and not allow_inf):
                out.append(f"{path}.{key}: {value} is not finite")
            elif value <= 0:
                out.append(f"{path}.{key}: {value} must be > 0")

        positive("f0_hz", self.f0_hz)
        positive("s_base_mw", self.s_base_mw)
        positive("h_s", self.h_s)
        positive("r_pu", self.r_pu, allow_inf=True)
        positive("t_gov_s", self.t_gov_s)
        positive("t_rh_s", self.t_rh_s)
        positive("agc_ki_per_s", self.agc_ki_per_s)
        positive("load_mw", self.load_mw)
        if not isinstance(self.d_pu, int | float) or isinstance(self.d_pu, bool):
            out.append(f"{path}.d_pu: {self.d_pu!r} is not a number")
        elif not math.isfinite(self.d_pu) or self.d_pu < 0:
            out.append(f"{path}.d_pu: {self.d_pu} must be finite and >= 0")
        if (self.f_hp is None) != (self.t_rh_s is None):
            out.append(f"{path}: f_hp and t_rh_s must be given together (reheat turbine)")
        if self.f_hp is not None and not (_is_finite_number(self.f_hp) and 0.0 < self.f_hp <= 1.0):
            out.append(f"{path}.f_hp: {self.f_hp} is outside the allowed (0, 1]")
        if not self.has_governor and self.agc_ki_per_s is not None:
            out.append(f"{path}.agc_ki_per_s: AGC needs a governor (r_pu is infinite)")
        total = 0.0
        for i, stage in enumerate(self.ufls):
            where = f"{path}.ufls[{i}]"
            if not isinstance(stage, UflsStage):
                out.append(f"{where}: {stage!r} is not a UflsStage")
                continue
            thr, delay, frac = stage.threshold_hz, stage.delay_s, stage.fraction
            if not _is_finite_number(thr) or thr <= 0:
                out.append(f"{where}.threshold_hz: {thr} must be finite and > 0")
            elif _is_finite_number(self.f0_hz) and thr >= self.f0_hz:
                out.append(f"{where}.threshold_hz: {thr} must be below f0_hz = {self.f0_hz}")
            if not _is_finite_number(delay) or delay < 0:
                out.append(f"{where}.delay_s: {delay} must be finite and >= 0")
            if not _is_finite_number(frac) or not 0.0 < frac <= 1.0:
                out.append(f"{where}.fraction: {frac} is outside the allowed (0, 1]")
            else:
                total += frac
        if total > 1.0 + 1e-12:
            out.append(f"{path}.ufls: fractions sum to {total:g}, above the allowed 1")
        return out


def _is_finite_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _ufls_from_list(value: Any, path: str, problems: list[str]) -> tuple[UflsStage, ...]:
    if not isinstance(value, list | tuple):
        problems.append(f"{path}: {value!r} is not a list of stages")
        return ()
    stages = []
    allowed = {"threshold_hz", "delay_s", "fraction"}
    for i, item in enumerate(value):
        if not isinstance(item, Mapping):
            problems.append(f"{path}[{i}]: {item!r} is not a table")
            continue
        ok = True
        for key in item:
            if key not in allowed:
                problems.append(f"{path}[{i}].{key}: unknown key (allowed: {sorted(allowed)})")
                ok = False
        for key in sorted(allowed):
            if key not in item:
                problems.append(f"{path}[{i}].{key}: missing")
                ok = False
            elif isinstance(item[key], bool) or not isinstance(item[key], int | float):
                problems.append(f"{path}[{i}].{key}: {item[key]!r} is not a number")
                ok = False
        if ok:
            stages.append(
                UflsStage(
                    threshold_hz=float(item["threshold_hz"]),
                    delay_s=float(item["delay_s"]),
                    fraction=float(item["fraction"]),
                )
            )
    return tuple(stages)


def state_matrices(params: SwingParameters) -> tuple[np.ndarray, np.ndarray]:
    """Continuous-time matrices ``A`` (4×4) and ``B`` (4,) of ``dx/dt = A x + B u``.

    ``u`` is the net injection change [pu on ``s_base_mw``] (fleet, lost generation, load
    steps, shed load); ``x = [Δf, ΔP_gv, ΔP_rh, ΔP_agc]`` in pu.

    Notes
    -----
    .. math::

        2H \\dot{Δf} = ΔP_m + u - D Δf, \\quad
        ΔP_m = F_{HP} ΔP_{gv} + (1 - F_{HP}) ΔP_{rh}

        T_{gov} \\dot{ΔP}_{gv} = ΔP_{agc} - Δf / R - ΔP_{gv}, \\quad
        T_{RH} \\dot{ΔP}_{rh} = ΔP_{gv} - ΔP_{rh}, \\quad
        \\dot{ΔP}_{agc} = -K_I Δf

    Without reheat ``F_HP = 1`` and the reheat state follows the governor harmlessly; with no
    governor (island) ``1/R = 0`` and ``ΔP_m`` stays zero.
    """
    two_h = 2.0 * params.h_s
    inv_r = 1.0 / params.r_pu if params.has_governor else 0.0
    f_hp = params.f_hp if params.has_reheat else 1.0
    t_rh = params.t_rh_s if params.has_reheat else 1.0
    ki = params.agc_ki_per_s or 0.0
    a = np.zeros((_N_STATE, _N_STATE))
    a[_I_F, _I_F] = -params.d_pu / two_h
    if params.has_governor:
        a[_I_F, _I_GV] = f_hp / two_h
        a[_I_F, _I_RH] = (1.0 - f_hp) / two_h
    a[_I_GV, _I_F] = -inv_r / params.t_gov_s
    a[_I_GV, _I_GV] = -1.0 / params.t_gov_s
    a[_I_GV, _I_AGC] = 1.0 / params.t_gov_s
    a[_I_RH, _I_GV] = 1.0 / t_rh
    a[_I_RH, _I_RH] = -1.0 / t_rh
    a[_I_AGC, _I_F] = -ki
    b = np.zeros(_N_STATE)
    b[_I_F] = 1.0 / two_h
    return a, b


def rocof_initial_hz_per_s(params: SwingParameters, p_step_mw: float) -> float:
    """Rate of change of frequency right after a power deficit [Hz/s] (closed form).

    Parameters
    ----------
    params : SwingParameters
    p_step_mw : float
        Power deficit [MW]: generation lost or load added (positive makes the frequency fall).
        It is ``-p_imbalance_mw`` of :meth:`SwingModel.step`.

    Notes
    -----
    ``RoCoF_0 = -ΔP · f0 / (2 H S_base)``; governors and damping act only once Δf ≠ 0.
    500 MW lost on 10 GW with H = 5 s at 60 Hz gives -0.3 Hz/s.

    References
    ----------
    Kundur (1994), sec. 11.1.
    """
    return -p_step_mw * params.f0_hz / (2.0 * params.h_s * params.s_base_mw)


def steady_state_deviation_hz(params: SwingParameters, p_step_mw: float) -> float:
    """Quasi-steady-state frequency deviation after a power deficit, without AGC/UFLS [Hz].

    Parameters
    ----------
    params : SwingParameters
    p_step_mw : float
        Power deficit [MW] (positive makes the frequency fall), as in
        :func:`rocof_initial_hz_per_s`.

    Notes
    -----
    ``Δf_ss = -ΔP / (D + 1/R)`` in pu, times ``f0``; ``1/R = 0`` in island mode. The reheat
    turbine does not change it; AGC would bring it back to zero. An island with neither
    damping nor governor (``D = 0``, ``R = inf``) has no steady state: ``-inf`` for a deficit.

    References
    ----------
    Kundur (1994), sec. 11.1.3 (composite regulating characteristic ``β = D + 1/R``).
    """
    inv_r = 1.0 / params.r_pu if params.has_governor else 0.0
    beta = params.d_pu + inv_r
    if beta == 0.0:  # an undamped island without governor drifts without bound
        return 0.0 if p_step_mw == 0 else -math.copysign(math.inf, p_step_mw)
    return -(p_step_mw / params.s_base_mw) / beta * params.f0_hz


class SwingModel:
    """Time-stepped swing model (exact zero-order-hold discretization, UFLS, AGC).

    Parameters
    ----------
    params : SwingParameters
        Validated on construction (ScenarioError listing every problem).

    Attributes
    ----------
    t_s : float
        Simulated time since construction [s].
    f_hz, delta_f_hz : float
        Frequency and its deviation from ``f0_hz`` [Hz].
    rocof_hz_per_s : float
        ``d f / d t`` at the end of the last step with its input [Hz/s].
    p_mech_mw : float
        Change of mechanical (turbine) power [MW], including AGC's effect.
    p_agc_mw : float
        AGC set-point change [MW].
    ufls_shed_mw : float
        Load shed so far [MW].
    ufls_stages_tripped : int
        Number of UFLS stages tripped so far.
    ufls_trip_times_s : tuple of float or None
        Trip instant of each stage [s] (None when not tripped).
    """

    def __init__(self, params: SwingParameters) -> None:
        check_problems(params.problems(), ScenarioError, "invalid frequency parameters")
        self.params = params
        self._a, self._b = state_matrices(params)
        self._cache: dict[float, tuple[np.ndarray, np.ndarray]] = {}
        self._x = np.zeros(_N_STATE)
        self._u_last = 0.0
        self.t_s = 0.0
        n = len(params.ufls)
        self._timer_s = np.zeros(n)
        self._tripped = np.zeros(n, dtype=bool)
        self._trip_times: list[float | None] = [None] * n
        self._fractions = np.array([s.fraction for s in params.ufls])
        self._thresholds_hz = np.array([s.threshold_hz for s in params.ufls])
        self._delays_s = np.array([s.delay_s for s in params.ufls])
        self._shed_mw = 0.0
        # highest threshold of the stages not tripped yet: above it UFLS has nothing to do
        self._armed_max_hz = float(self._thresholds_hz.max()) if n else -math.inf

    # -- discretization -------------------------------------------------------------------
    def _discrete(self, dt_s: float) -> tuple[np.ndarray, np.ndarray]:
        """``(Φ, Γ)`` with ``x(t+dt) = Φ x(t) + Γ u`` (exact for constant u), cached per dt."""
        cached = self._cache.get(dt_s)
        if cached is not None:
            return cached
        m = np.zeros((_N_STATE + 1, _N_STATE + 1))
        m[:_N_STATE, :_N_STATE] = self._a * dt_s
        m[:_N_STATE, _N_STATE] = self._b * dt_s
        e = expm(m)
        result = (e[:_N_STATE, :_N_STATE].copy(), e[:_N_STATE, _N_STATE].copy())
        if len(self._cache) < 64:  # a co-simulation uses a few step sizes; stay bounded
            self._cache[dt_s] = result
        return result

    def _advance(self, x: np.ndarray, dt_s: float, u_pu: float) -> np.ndarray:
        if dt_s <= 0.0:
            return x
        phi, gamma = self._discrete(dt_s)
        return phi @ x + gamma * u_pu

    # -- public state ---------------------------------------------------------------------
    @property
    def delta_f_hz(self) -> float:
        return float(self._x[_I_F] * self.params.f0_hz)

    @property
    def f_hz(self) -> float:
        return self.params.f0_hz + self.delta_f_hz

    @property
    def rocof_hz_per_s(self) -> float:
        dx = self._a @ self._x + self._b * self._u_last
        return float(dx[_I_F] * self.params.f0_hz)

    @property
    def p_mech_mw(self) -> float:
        if not self.params.has_governor:
            return 0.0
        f_hp = self.params.f_hp if self.params.has_reheat else 1.0
        p_pu = f_hp * self._x[_I_GV] + (1.0 - f_hp) * self._x[_I_RH]
        return float(p_pu * self.params.s_base_mw)

    @property
    def p_agc_mw(self) -> float:
        return float(self._x[_I_AGC] * self.params.s_base_mw)

    @property
    def ufls_shed_mw(self) -> float:
        return self._shed_mw

    @property
    def ufls_stages_tripped(self) -> int:
        return int(self._tripped.sum())

    @property
    def ufls_trip_times_s(self) -> tuple[float | None, ...]:
        return tuple(self._trip_times)

    # -- stepping -------------------------------------------------------------------------
    def step(self, *, dt_s: float, p_imbalance_mw: float) -> None:
        """Advance by ``dt_s`` [s] with a constant net injection change ``p_imbalance_mw`` [MW].

        ``p_imbalance_mw`` is the sum of injection changes since the pre-event equilibrium:
        + fleet injection change, - generation lost, - load added (500 MW lost => -500).
        Load shed by UFLS is added by the model itself.
        """
        try:  # numpy scalars are welcome; strings and arrays are not
            if isinstance(dt_s, str | bytes) or isinstance(p_imbalance_mw, str | bytes):
                raise TypeError
            dt_s, p_imbalance_mw = float(dt_s), float(p_imbalance_mw)
        except (TypeError, ValueError):
            raise ScenarioError(
                f"frequency step: dt_s = {dt_s!r} and p_imbalance_mw = {p_imbalance_mw!r} "
                "must be numbers"
            ) from None
        if not (math.isfinite(dt_s) and dt_s > 0):
            raise ScenarioError(f"frequency step: dt_s = {dt_s!r} must be a finite number > 0")
        if not math.isfinite(p_imbalance_mw):
            raise ScenarioError(
                f"frequency step: p_imbalance_mw = {p_imbalance_mw!r} is not finite"
            )
        remaining = dt_s
        # Each UFLS trip splits the step at the trip instant; at most one split per stage.
        while remaining > 0.0:
            u_pu = (p_imbalance_mw + self.ufls_shed_mw) / self.params.s_base_mw
            x_end = self._advance(self._x, remaining, u_pu)
            f0 = self.params.f0_hz
            if min(self._x[_I_F], x_end[_I_F]) * f0 + f0 >= self._armed_max_hz:
                # fast path: above every armed threshold, pick-up timers are reset
                if self.params.ufls:
                    self._timer_s[:] = 0.0
                self._x = x_end
                self._u_last = u_pu
                self.t_s += remaining
                return
            trip = self._first_trip_within(self._x, x_end, remaining)
            if trip is None:
                self._update_timers(self._x, x_end, remaining)
                self._x = x_end
                self._u_last = u_pu
                self.t_s += remaining
                return
            t_trip, stages = trip
            x_trip = self._advance(self._x, t_trip, u_pu)
            self._update_timers(self._x, x_trip, t_trip)
            self._x = x_trip
            self.t_s += t_trip
            remaining -= t_trip
            for i in stages:
                self._tripped[i] = True
                self._trip_times[i] = self.t_s
            self._shed_mw = float(self._fractions[self._tripped].sum() * self.params.shed_base_mw)
            armed = self._thresholds_hz[~self._tripped]
            self._armed_max_hz = float(armed.max()) if armed.size else -math.inf
            self._u_last = (p_imbalance_mw + self.ufls_shed_mw) / self.params.s_base_mw
            if remaining <= 1e-12 * dt_s:
                return

    def _delays(self) -> np.ndarray:
        return self._delays_s

    def _below_time(
        self, x0: np.ndarray, x1: np.ndarray, dt_s: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """Time [s] at the end of a step spent below each threshold (linear interpolation)."""
        f_a = self.params.f0_hz * (1.0 + x0[_I_F])
        f_b = self.params.f0_hz * (1.0 + x1[_I_F])
        thr = self._thresholds_hz
        below = np.zeros(len(thr))
        both = (f_a < thr) & (f_b < thr)
        below[both] = dt_s
        entering = (f_a >= thr) & (f_b < thr)
        # fraction of the step after the downward crossing
        below[entering] = dt_s * (thr[entering] - f_b) / (f_a - f_b)
        return below, f_b < thr

    def _update_timers(self, x0: np.ndarray, x1: np.ndarray, dt_s: float) -> None:
        if not self.params.ufls:
            return
        below, still_below = self._below_time(x0, x1, dt_s)
        # pick-up timers reset as soon as the frequency is back at or above the threshold
        self._timer_s = np.where(still_below, self._timer_s + below, 0.0)

    def _first_trip_within(
        self, x0: np.ndarray, x1: np.ndarray, dt_s: float
    ) -> tuple[float, np.ndarray] | None:
        """``(t, stages)``: time into the step when the first untripped timers reach their delay."""
        if not self.params.ufls or self._tripped.all():
            return None
        below, still_below = self._below_time(x0, x1, dt_s)
        delays = self._delays()
        reach = still_below & (~self._tripped) & (self._timer_s + below >= delays - 1e-12)
        if not reach.any():
            return None
        # the timer runs from (dt - below) to dt inside the step and needs (delay - timer) more
        t_trip = np.clip(dt_s - below + (delays - self._timer_s), 0.0, dt_s)
        t_first = float(np.min(t_trip[reach]))
        stages = np.flatnonzero(reach & (t_trip <= t_first + 1e-12))
        return t_first, stages


def simulate(
    params: SwingParameters, *, dt_s: float, p_imbalance_mw: np.ndarray
) -> dict[str, np.ndarray]:
    """Run :class:`SwingModel` over a sampled injection time series.

    Parameters
    ----------
    params : SwingParameters
    dt_s : float
        Step [s].
    p_imbalance_mw : array_like, shape (n_steps,)
        Injection change held constant over each step [MW].

    Returns
    -------
    dict of arrays of shape (n_steps + 1,)
        ``t_s``, ``f_hz``, ``delta_f_hz``, ``p_mech_mw``, ``ufls_shed_mw``; index 0 is the
        initial state.
    """
    p = np.asarray(p_imbalance_mw, dtype=float).ravel()
    model = SwingModel(params)
    n = len(p)
    out = {k: np.zeros(n + 1) for k in ("t_s", "f_hz", "delta_f_hz", "p_mech_mw", "ufls_shed_mw")}
    out["f_hz"][0] = model.f_hz
    for k in range(n):
        model.step(dt_s=dt_s, p_imbalance_mw=float(p[k]))
        out["t_s"][k + 1] = model.t_s
        out["f_hz"][k + 1] = model.f_hz
        out["delta_f_hz"][k + 1] = model.delta_f_hz
        out["p_mech_mw"][k + 1] = model.p_mech_mw
        out["ufls_shed_mw"][k + 1] = model.ufls_shed_mw
    return out
