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
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from grids.discretize import zoh
from grids.errors import ScenarioError, check_problems
from grids.limits import Limit, Violation
from grids.params import Param, is_finite_number, read_params, unknown_keys

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


#: Largest system base accepted [MW]: 10 TW, above any synchronous area (the largest
#: interconnections peak at a few hundred GW), so that 1e308 and typos are refused.
MAX_SYSTEM_MW = 1.0e7

#: The ``[frequency]`` parameters: default, unit, range and meaning, declared once.
SWING_PARAMS: tuple[Param, ...] = (
    Param("f0_hz", 60.0, unit="Hz", lo=0.0, hi=1000.0, lo_open=True, doc="nominal frequency"),
    Param(
        "s_base_mw",
        10000.0,
        unit="MW",
        lo=0.0,
        hi=MAX_SYSTEM_MW,
        lo_open=True,
        doc="system base (online generation rating); h_s and d_pu refer to it",
    ),
    Param("h_s", 5.0, unit="s", lo=0.0, hi=1000.0, lo_open=True, doc="inertia constant"),
    Param("d_pu", 1.0, unit="pu/pu", lo=0.0, hi=1.0e4, doc="load damping"),
    Param(
        "r_pu",
        0.05,
        unit="pu/pu",
        lo=0.0,
        lo_open=True,
        allow_inf=True,
        doc="governor droop (inf: no governor)",
    ),
    Param("t_gov_s", 0.5, unit="s", lo=0.0, hi=1000.0, lo_open=True, doc="governor-turbine lag"),
    Param(
        "f_hp",
        None,
        lo=0.0,
        hi=1.0,
        lo_open=True,
        doc="high-pressure turbine fraction (reheat; with t_rh_s)",
    ),
    Param("t_rh_s", None, unit="s", lo=0.0, hi=1000.0, lo_open=True, doc="reheat time constant"),
    Param(
        "agc_ki_per_s",
        None,
        unit="1/s",
        lo=0.0,
        hi=1000.0,
        lo_open=True,
        doc="AGC integral gain",
    ),
    Param(
        "load_mw",
        None,
        unit="MW",
        lo=0.0,
        hi=MAX_SYSTEM_MW,
        lo_open=True,
        doc="load the UFLS fractions apply to (default s_base_mw)",
    ),
)

#: One ``[[frequency.ufls]]`` stage (every key required).
UFLS_PARAMS: tuple[Param, ...] = (
    Param("threshold_hz", unit="Hz", lo=0.0, lo_open=True, doc="pick-up frequency (< f0_hz)"),
    Param("delay_s", unit="s", lo=0.0, hi=3600.0, doc="time below the threshold before tripping"),
    Param("fraction", lo=0.0, hi=1.0, lo_open=True, doc="fraction of load_mw shed"),
)

#: Validity range of the linearised swing model: ``|Δf| <= VALIDITY_BAND_FRAC * f0``
#: (see docs/frequency.md, "Validity range").
VALIDITY_BAND_FRAC = 0.03


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

        Parameters
        ----------
        s_base_mw : float, keyword-only
            Fleet rating [MW] (the island's base).
        h_s : float, keyword-only
            Virtual inertia constant [s] on ``s_base_mw``.
        d_pu : float, keyword-only
            Virtual damping [pu power / pu frequency] on ``s_base_mw``.
        f0_hz : float, keyword-only
            Nominal frequency [Hz].
        ufls : tuple of UflsStage, keyword-only
            Load-shedding stages.
        load_mw : float or None, keyword-only
            Load the UFLS fractions apply to [MW].

        Returns
        -------
        SwingParameters
            With ``r_pu = inf`` (no governor).
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

        Parameters
        ----------
        data : Mapping
            Keys of :data:`SWING_PARAMS` (defaults for absent keys) and ``ufls``, a list of
            tables ``[[frequency.ufls]]`` with the keys of :data:`UFLS_PARAMS`. An
            ``island = true`` key is not accepted here (use :meth:`island`).
        path : str, keyword-only
            Key path of the table in messages.

        Returns
        -------
        SwingParameters

        Raises
        ------
        ScenarioError
            Unknown keys, wrong types, values out of range (every problem at once, with its
            key path).
        """
        problems: list[str] = []
        if not isinstance(data, Mapping):
            check_problems([f"{path}: expected a table, got {data!r}"], ScenarioError, "invalid")
        scalars = {k: v for k, v in data.items() if k != "ufls"}
        values = read_params(
            scalars, SWING_PARAMS, path=path, problems=problems, allow_unknown=True
        )
        allowed = [p.name for p in SWING_PARAMS] + ["ufls"]
        problems.extend(unknown_keys(scalars, allowed, path=path))
        stages: tuple[UflsStage, ...] = ()
        if "ufls" in data:
            stages = _ufls_from_list(data["ufls"], f"{path}.ufls", problems)
        check_problems(problems, ScenarioError, f"invalid {path} section")
        params = cls(**values, ufls=stages)
        check_problems(params.problems(path), ScenarioError, f"invalid {path} section")
        return params

    @property
    def has_governor(self) -> bool:
        """True unless ``r_pu`` is infinite (island without governor)."""
        return math.isfinite(self.r_pu)

    @property
    def shed_base_mw(self) -> float:
        """Load the UFLS fractions apply to [MW]."""
        return self.s_base_mw if self.load_mw is None else self.load_mw

    @property
    def has_reheat(self) -> bool:
        """True with a reheat turbine (``f_hp`` and ``t_rh_s`` given)."""
        return self.f_hp is not None and self.t_rh_s is not None

    def problems(self, path: str = "frequency") -> list[str]:
        """Every problem of these values, with key paths (empty when valid).

        Parameters
        ----------
        path : str
            Key path of the table in messages.

        Returns
        -------
        list of str
            Ranges and types as declared in :data:`SWING_PARAMS` and :data:`UFLS_PARAMS`,
            plus the cross-field rules (reheat pair, AGC needs a governor, UFLS thresholds
            below ``f0_hz`` and fractions summing to at most 1).
        """
        out: list[str] = []
        for param in SWING_PARAMS:
            value = getattr(self, param.name)
            if value is None and param.default is None:
                continue
            param.check(value, key=f"{path}.{param.name}", problems=out)
        if (self.f_hp is None) != (self.t_rh_s is None):
            out.append(f"{path}: f_hp and t_rh_s must be given together (reheat turbine)")
        if not self.has_governor and self.agc_ki_per_s is not None:
            out.append(f"{path}.agc_ki_per_s: AGC needs a governor (r_pu is infinite)")
        total = 0.0
        for i, stage in enumerate(self.ufls):
            where = f"{path}.ufls[{i}]"
            if not isinstance(stage, UflsStage):
                out.append(f"{where}: {stage!r} is not a UflsStage")
                continue
            for param in UFLS_PARAMS:
                param.check(getattr(stage, param.name), key=f"{where}.{param.name}", problems=out)
            thr = stage.threshold_hz
            if (
                is_finite_number(thr)
                and is_finite_number(self.f0_hz)
                and thr > 0
                and thr >= self.f0_hz
            ):
                out.append(f"{where}.threshold_hz: {thr} must be below f0_hz = {self.f0_hz}")
            if is_finite_number(stage.fraction) and 0.0 < stage.fraction <= 1.0:
                total += stage.fraction
        if total > 1.0 + 1e-12:
            out.append(f"{path}.ufls: fractions sum to {total:g}, above the allowed 1")
        return out


def _ufls_from_list(value: Any, path: str, problems: list[str]) -> tuple[UflsStage, ...]:
    if not isinstance(value, list | tuple):
        problems.append(f"{path}: {value!r} is not a list of stages")
        return ()
    stages = []
    for i, item in enumerate(value):
        before = len(problems)
        read = read_params(item, UFLS_PARAMS, path=f"{path}[{i}]", problems=problems)
        if len(problems) == before:
            stages.append(UflsStage(**read))
    return tuple(stages)


def state_matrices(params: SwingParameters) -> tuple[np.ndarray, np.ndarray]:
    """Continuous-time matrices ``A`` (4×4) and ``B`` (4,) of ``dx/dt = A x + B u``.

    ``u`` is the net injection change [pu on ``s_base_mw``] (fleet, lost generation, load
    steps, shed load); ``x = [Δf, ΔP_gv, ΔP_rh, ΔP_agc]`` in pu.

    Parameters
    ----------
    params : SwingParameters
        The system.

    Returns
    -------
    a : numpy.ndarray (4, 4)
        State matrix [1/s].
    b : numpy.ndarray (4,)
        Input vector [1/s per pu power].

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

    Returns
    -------
    float
        Initial RoCoF [Hz/s].

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

    Returns
    -------
    float
        Steady-state deviation [Hz]; ``-inf``/``inf`` for an undamped island.

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
        result = zoh(self._a, self._b, dt_s)  # the one shared zero-order-hold helper
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
        """Frequency deviation from ``f0_hz`` [Hz]."""
        return float(self._x[_I_F] * self.params.f0_hz)

    @property
    def f_hz(self) -> float:
        """System frequency [Hz]."""
        return self.params.f0_hz + self.delta_f_hz

    @property
    def rocof_hz_per_s(self) -> float:
        """Rate of change of frequency at the end of the last step [Hz/s]."""
        dx = self._a @ self._x + self._b * self._u_last
        return float(dx[_I_F] * self.params.f0_hz)

    @property
    def p_mech_mw(self) -> float:
        """Change of mechanical (turbine) power, AGC included [MW]."""
        if not self.params.has_governor:
            return 0.0
        f_hp = self.params.f_hp if self.params.has_reheat else 1.0
        p_pu = f_hp * self._x[_I_GV] + (1.0 - f_hp) * self._x[_I_RH]
        return float(p_pu * self.params.s_base_mw)

    @property
    def p_agc_mw(self) -> float:
        """AGC set-point change [MW]."""
        return float(self._x[_I_AGC] * self.params.s_base_mw)

    @property
    def ufls_shed_mw(self) -> float:
        """Load shed by UFLS so far [MW]."""
        return self._shed_mw

    @property
    def ufls_stages_tripped(self) -> int:
        """Number of UFLS stages tripped so far."""
        return int(self._tripped.sum())

    @property
    def ufls_trip_times_s(self) -> tuple[float | None, ...]:
        """Trip instant of each UFLS stage [s] (``None`` when not tripped)."""
        return tuple(self._trip_times)

    # -- stepping -------------------------------------------------------------------------
    def step(self, *, dt_s: float, p_imbalance_mw: float) -> None:
        """Advance by ``dt_s`` [s] with a constant net injection change ``p_imbalance_mw`` [MW].

        ``p_imbalance_mw`` is the sum of injection changes since the pre-event equilibrium:
        + fleet injection change, - generation lost, - load added (500 MW lost => -500).
        Load shed by UFLS is added by the model itself.

        Parameters
        ----------
        dt_s : float, keyword-only
            Step [s], finite and > 0.
        p_imbalance_mw : float, keyword-only
            Net injection change held over the step [MW].

        Raises
        ------
        ScenarioError
            Non-numeric, non-finite or non-positive inputs.
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


def check_event_size(
    p_mw: Any, params: SwingParameters, *, key: str = "events[0].p_mw"
) -> list[str]:
    """Problems with the size of a power event (generation loss or load step) on a system.

    A loss larger than the system base is not a frequency event the aggregate model can
    describe (the area would have lost more generation than it has online), so it is a
    validation error rather than a nadir tens of hertz below zero.

    Parameters
    ----------
    p_mw : Any
        Event size as read [MW]: generation lost or load added (positive) or removed.
    params : SwingParameters
        The system; ``s_base_mw`` [MW] bounds the event.
    key : str, keyword-only
        Key path of the value in messages.

    Returns
    -------
    list of str
        Empty when the size is plausible: a finite number with ``|p_mw| <= s_base_mw``.

    Examples
    --------
    >>> from grids.frequency import SwingParameters, check_event_size
    >>> check_event_size(30000.0, SwingParameters(s_base_mw=10000.0))
    ['events[0].p_mw: 30000 MW exceeds the system base s_base_mw = 10000 MW (a loss cannot exceed the generation online)']
    """  # noqa: E501
    problems: list[str] = []
    param = Param("p_mw", unit="MW")  # any finite number; the system base bounds it below
    value = param.check(p_mw, key=key, problems=problems)
    if value is None:
        return problems
    s_base = params.s_base_mw
    if is_finite_number(s_base) and abs(value) > s_base:
        problems.append(
            f"{key}: {value:g} MW exceeds the system base s_base_mw = {s_base:g} MW "
            "(a loss cannot exceed the generation online)"
        )
    return problems


def validity_band_hz(f0_hz: float) -> tuple[float, float]:
    """Frequencies within which the linearised swing model is valid [Hz].

    Parameters
    ----------
    f0_hz : float
        Nominal frequency [Hz].

    Returns
    -------
    (low, high) : tuple of float
        ``f0 (1 ∓ VALIDITY_BAND_FRAC)``: 48.5 to 51.5 Hz at 50 Hz, 58.2 to 61.8 Hz at 60 Hz.
    """
    return f0_hz * (1.0 - VALIDITY_BAND_FRAC), f0_hz * (1.0 + VALIDITY_BAND_FRAC)


def frequency_validity_violation(
    f_hz_trace: Any, t_s: Any, f0_hz: float, *, step_s: float | None = None
) -> Violation | None:
    """Say whether a frequency trace left the validity range of the linearised model.

    Parameters
    ----------
    f_hz_trace : array_like (n_t,)
        System frequency [Hz].
    t_s : array_like (n_t,)
        Sample times [s]; each sample stands for the time to the next one (the last for the
        step before it).
    f0_hz : float
        Nominal frequency [Hz] (50 or 60).
    step_s : float, optional, keyword-only
        Time each sample stands for [s] (a fixed-step run); default: from ``t_s``.

    Returns
    -------
    Violation or None
        ``Limit.FREQUENCY_MODEL_RANGE`` on the side of the worst excursion (element
        ``"system frequency"``, quantity ``"f_hz"``) with the first time and the total time
        outside the band; ``None`` when the whole trace is inside it.

    Notes
    -----
    The band is ``|f - f0| <= 0.03 f0`` (:func:`validity_band_hz`); docs/frequency.md
    ("Validity range") gives the reasons.

    Examples
    --------
    >>> import numpy as np
    >>> from grids.frequency import frequency_validity_violation
    >>> v = frequency_validity_violation(np.array([50.0, 48.9, 48.2, 48.6]), np.arange(4.0), 50.0)
    >>> v.worst_value, v.limit_value, v.first_time_s, v.duration_s
    (48.2, 48.5, 2.0, 1.0)
    """
    f = np.asarray(f_hz_trace, dtype=float).ravel()
    t = np.asarray(t_s, dtype=float).ravel()
    if f.size == 0:
        return None
    low, high = validity_band_hz(float(f0_hz))
    outside = np.isfinite(f) & ((f < low) | (f > high))
    if not outside.any():
        return None
    deviation = np.where(outside, np.abs(f - f0_hz), -np.inf)
    worst = int(np.argmax(deviation))
    below = f[worst] < f0_hz
    first = duration = None
    if t.size == f.size:
        first = float(t[int(np.argmax(outside))])
        if step_s is not None:
            duration = float(np.count_nonzero(outside)) * float(step_s)
        elif t.size > 1:
            step = np.diff(t)
            duration = float(np.append(step, step[-1])[outside].sum())
    return Violation(
        limit=Limit.FREQUENCY_MODEL_RANGE.value,
        element="system frequency",
        quantity="f_hz",
        worst_value=float(f[worst]),
        limit_value=float(low if below else high),
        first_time_s=first,
        duration_s=duration,
        n_elements=1,
    )
