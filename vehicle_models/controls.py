"""IEEE 1547-2018 grid-support functions as pure, vectorized curve functions.

Every function takes numpy arrays (any shape, broadcast) and returns arrays; none keeps
state. The stateful combination of all of them for N inverters is
:class:`vehicle_models.inverter.InverterBank`; the lags and curve points both use live in
:mod:`vehicle_models.primitives` (re-exported here).

Units: voltage per unit of nominal, frequency in Hz, active power per unit of the unit's
rating, reactive power per unit of its apparent-power rating (positive = injected into the
grid, capacitive / over-excited), times in seconds.

References
----------
.. [1] IEEE Std 1547-2018, clauses 5.3 (reactive power), 5.4 (volt-watt), 6.5.2.7
   (frequency droop), 4.10 (enter service).
.. [2] EPRI, "IEEE 1547-2018 OpenDER Model", report 3002030962 (2023), sections 3.7-3.9.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from vehicle_models.primitives import (
    LN10,
    V_REF_LIMITS_PU,
    first_order_lag,
    lag_factor,
    olrt_time_constant_s,
    volt_var_points,
)
from vehicle_models.settings import (
    F_NOM_HZ,
    ConstantPFSettings,
    ControlFunction,
    Excitation,
    FreqWattSettings,
    Priority,
    VoltVarSettings,
    VoltWattSettings,
    WattVarSettings,
)


# ---------------------------------------------------------------------------------- curves
def volt_var_q_pu(vm_pu: Any, settings: VoltVarSettings, *, v_ref_pu: Any = None) -> np.ndarray:
    """Steady-state volt-var reactive power target [pu of S rating], positive = injection.

    Parameters
    ----------
    vm_pu : array_like
        Voltage at the point of connection [pu].
    settings : VoltVarSettings
        Curve (IEEE 1547-2018 Table 8).
    v_ref_pu : float or array_like, optional
        Reference voltage [pu] overriding ``settings.v_ref_pu`` (broadcast against ``vm_pu``).

    Returns
    -------
    numpy.ndarray
        Reactive power [pu of the apparent-power rating], shape of ``vm_pu``.

    Notes
    -----
    Piecewise linear through ``(V1+dV, Q1) .. (V4+dV, Q4)`` with ``dV = VRef - 1``, flat
    outside (clause 5.3.3, Figure H.4).
    """
    v, q = volt_var_points(settings, v_ref_pu=1.0)
    v_ref = settings.v_ref_pu if v_ref_pu is None else np.asarray(v_ref_pu, dtype=float)
    return np.interp(np.asarray(vm_pu, dtype=float) - (v_ref - 1.0), v, q)


def volt_var_v_ref_steady_pu(vm_pu: Any, settings: VoltVarSettings) -> np.ndarray:
    """Reference voltage the volt-var curve settles at (clause 5.3.3).

    Parameters
    ----------
    vm_pu : array_like
        Voltage at the point of connection [pu].
    settings : VoltVarSettings
        ``v_ref_pu`` and ``v_ref_auto``.

    Returns
    -------
    numpy.ndarray
        Reference voltage [pu]: ``settings.v_ref_pu`` normally; with ``v_ref_auto`` the
        low-pass filtered voltage converges to the voltage itself, limited to
        ``V_REF_LIMITS_PU`` (0.95-1.05 pu).

    References
    ----------
    .. [1] IEEE Std 1547-2018, clause 5.3.3.
    """
    vm = np.asarray(vm_pu, dtype=float)
    if settings.v_ref_auto:
        return np.clip(vm, *V_REF_LIMITS_PU)
    return np.full_like(vm, settings.v_ref_pu)


def volt_watt_p_max_pu(vm_pu: Any, settings: VoltWattSettings) -> np.ndarray:
    """Volt-watt active-power limit (IEEE 1547-2018 clause 5.4.2, Table 10).

    Parameters
    ----------
    vm_pu : array_like
        Voltage at the point of connection [pu].
    settings : VoltWattSettings
        ``v1_pu``, ``v2_pu``, ``p2_pu``.

    Returns
    -------
    numpy.ndarray
        Upper limit of the active power [pu of the P rating], shape of ``vm_pu``.

    Notes
    -----
    ``P_lim = 1`` for ``V <= V1``, linear to ``P2`` at ``V2``, ``P2`` above. The output
    active power is ``min(P, P_lim)``; a negative ``P2`` (P'2 of a unit that can absorb
    power) forces charging at high voltage.
    """
    return np.interp(vm_pu, [settings.v1_pu, settings.v2_pu], [1.0, settings.p2_pu])


def freq_watt_p_pu(
    f_hz: Any,
    *,
    p_pre_pu: Any,
    settings: FreqWattSettings,
    p_max_pu: Any = 1.0,
    p_min_pu: Any = 0.0,
    f_nominal_hz: float = F_NOM_HZ,
) -> np.ndarray:
    """Frequency-droop active power [pu of P rating] (IEEE 1547-2018 clause 6.5.2.7).

    Parameters
    ----------
    f_hz : array_like
        (Measured) frequency [Hz].
    p_pre_pu : array_like
        Pre-disturbance active power [pu] (output before the frequency left the deadband).
    settings : FreqWattSettings
        Deadbands ``db_of_hz``/``db_uf_hz`` and droops ``k_of``/``k_uf`` (Tables 24, 25).
    p_max_pu, p_min_pu : array_like
        Available headroom: the highest and lowest feasible active power [pu] (for a V2G
        charger ``p_min_pu`` is negative: maximum charging).
    f_nominal_hz : float
        System nominal frequency [Hz] (60: IEEE 1547-2018; 50: EN 50549-1 style preset).

    Returns
    -------
    numpy.ndarray
        Steady-state active power; equal to ``p_pre_pu`` inside the deadband.

    Notes
    -----
    Over-frequency, ``f > f_N + db_OF``:
    ``p = max(p_pre - (f - (f_N + db_OF)) / (f_N k_OF), p_min)``;
    under-frequency, ``f < f_N - db_UF``:
    ``p = min(p_pre + ((f_N - db_UF) - f) / (f_N k_UF), p_max)``.
    """
    f = np.asarray(f_hz, dtype=float)
    p_pre = np.asarray(p_pre_pu, dtype=float)
    over = (f - (f_nominal_hz + settings.db_of_hz)) / (f_nominal_hz * settings.k_of)
    under = ((f_nominal_hz - settings.db_uf_hz) - f) / (f_nominal_hz * settings.k_uf)
    p = p_pre - np.maximum(over, 0.0) + np.maximum(under, 0.0)
    # Headroom applies to the droop response only; inside the deadband p_pre passes through.
    p = np.where(over > 0.0, np.maximum(p, p_min_pu), p)
    p = np.where(under > 0.0, np.minimum(p, p_max_pu), p)
    return p


def constant_pf_q_pu(p_pu: Any, settings: ConstantPFSettings) -> np.ndarray:
    """Reactive power of the constant power factor mode (IEEE 1547-2018 clause 5.3.2).

    Parameters
    ----------
    p_pu : array_like
        Active power [pu] (injection > 0, charging < 0).
    settings : ConstantPFSettings
        ``pf`` and ``excitation``.

    Returns
    -------
    numpy.ndarray
        Reactive power [pu], Q > 0 injected.

    Notes
    -----
    ``|Q| = |P| tan(arccos PF)``; absorbing: ``Q <= 0``, injecting: ``Q >= 0``, for charging
    as for discharging: the excitation names the direction of the reactive power in the
    generator sign convention of IEEE 1547-2018, whatever the direction of P. EPRI OpenDER
    2.2 (eq. 3.8.1-1) uses ``Q = +-P tan(phi)`` instead, which flips Q while charging; see
    ``docs/controls.md`` for the decision.

    References
    ----------
    .. [1] IEEE Std 1547-2018, clauses 1.4, 3.1, 5.3.2.
    .. [2] EPRI, "IEEE 1547-2018 OpenDER Model", report 3002030962 (2023), eq. 3.8.1-1.
    """
    tan_phi = math.sqrt(max(1.0 - settings.pf**2, 0.0)) / settings.pf
    sign = 1.0 if settings.excitation is Excitation.INJECT else -1.0
    # + 0.0 turns -0.0 (unity PF, absorbing) into 0.0
    return sign * tan_phi * np.abs(np.asarray(p_pu, dtype=float)) + 0.0


def watt_var_q_pu(p_pu: Any, settings: WattVarSettings) -> np.ndarray:
    """Watt-var reactive power target (IEEE 1547-2018 clause 5.3.4, Table 9).

    Parameters
    ----------
    p_pu : array_like
        Active power [pu] (injection > 0, charging < 0).
    settings : WattVarSettings
        The curve's points.

    Returns
    -------
    numpy.ndarray
        Reactive power [pu of the apparent-power rating], Q > 0 injected.

    Notes
    -----
    Piecewise linear in active power through the charging points ``P'3 < P'2 < P'1 <= 0``
    and the generating points ``0 <= P1 < P2 < P3``; flat outside; Q = 0 between P'1 and P1
    when Q'1 = Q1 = 0.
    """
    s = settings
    xp = [s.p3_load_pu, s.p2_load_pu, s.p1_load_pu, s.p1_pu, s.p2_pu, s.p3_pu]
    fp = [s.q3_load_pu, s.q2_load_pu, s.q1_load_pu, s.q1_pu, s.q2_pu, s.q3_pu]
    return np.interp(p_pu, xp, fp)


def limit_apparent_power(
    p_pu: Any,
    q_pu: Any,
    *,
    priority: Priority = Priority.REACTIVE,
    s_max_pu: float = 1.0,
    keep_power_factor: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Limit ``(P, Q)`` to the apparent-power rating ``sqrt(P^2 + Q^2) <= s_max_pu``.

    Parameters
    ----------
    p_pu, q_pu : array_like
        Desired active and reactive power [pu of S rating].
    priority : Priority
        ``REACTIVE`` keeps Q (clipped to the rating) and reduces |P| (the standard's default
        for volt-var, as in EPRI OpenDER); ``ACTIVE`` keeps P and reduces |Q|.
    keep_power_factor : bool
        Scale P and Q together (constant power factor mode).

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        Limited P and Q; the reduced quantity keeps its sign.
    """
    p = np.asarray(p_pu, dtype=float)
    q = np.asarray(q_pu, dtype=float)
    if keep_power_factor:
        s = np.hypot(p, q)
        scale = np.minimum(1.0, s_max_pu / np.maximum(s, 1e-300))
        return p * scale, q * scale
    if priority is Priority.REACTIVE:
        q = np.clip(q, -s_max_pu, s_max_pu)
        p_lim = np.sqrt(np.maximum(s_max_pu**2 - q * q, 0.0))
        return np.clip(p, -p_lim, p_lim), q
    p = np.clip(p, -s_max_pu, s_max_pu)
    q_lim = np.sqrt(np.maximum(s_max_pu**2 - p * p, 0.0))
    return p, np.clip(q, -q_lim, q_lim)


def steady_state_response(
    function: str | ControlFunction,
    x: Any,
    settings: Any,
    *,
    p_avail_pu: Any = 1.0,
    p_min_pu: Any = -1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Steady-state ``(p_pu, q_pu)`` of one inverter with one function enabled.

    Used by the ``inverter-curve`` CLI and by hosting-capacity screening.

    Parameters
    ----------
    function : {"volt_var", "volt_watt", "freq_watt", "pf", "watt_var"}
        The control function (``ControlFunction`` value).
    x : array_like
        Voltage [pu] (``volt_var``, ``volt_watt``, ``pf``, ``watt_var``) or frequency [Hz]
        (``freq_watt``).
    settings : InverterSettings
        Curve settings and P/Q priority.
    p_avail_pu : float or array_like
        Available / scheduled active power [pu], broadcast against ``x``; for ``freq_watt``
        the pre-disturbance power (headroom up to 1 pu and down to ``p_min_pu``).
    p_min_pu : float or array_like
        Lowest feasible active power [pu] (-1: full charging of a V2G charger).

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        ``p_pu`` and ``q_pu`` (Q > 0 injected) after the apparent-power limit with the
        settings' priority (constant PF keeps the power factor); shape of ``x`` broadcast
        against ``p_avail_pu``.
    """
    if isinstance(function, ControlFunction):
        function = function.value
    x, p = np.broadcast_arrays(np.asarray(x, dtype=float), np.asarray(p_avail_pu, dtype=float))
    x = np.array(x)
    p = np.array(p)
    q = np.zeros_like(x)
    keep_pf = False
    if function == "volt_var":
        v_ref = volt_var_v_ref_steady_pu(x, settings.volt_var)
        q = volt_var_q_pu(x, settings.volt_var, v_ref_pu=v_ref)
    elif function == "volt_watt":
        p = np.minimum(p, volt_watt_p_max_pu(x, settings.volt_watt))
    elif function == "freq_watt":
        p = freq_watt_p_pu(
            x,
            p_pre_pu=p,
            settings=settings.freq_watt,
            p_max_pu=1.0,
            p_min_pu=p_min_pu,
            f_nominal_hz=settings.f_nominal_hz,
        )
    elif function == "pf":
        q = constant_pf_q_pu(p, settings.pf)
        keep_pf = True
    elif function == "watt_var":
        q = watt_var_q_pu(p, settings.watt_var)
    else:
        raise ValueError(f"unknown function {function!r}")
    return limit_apparent_power(p, q, priority=settings.priority, keep_power_factor=keep_pf)


__all__ = [
    "LN10",
    "V_REF_LIMITS_PU",
    "constant_pf_q_pu",
    "first_order_lag",
    "freq_watt_p_pu",
    "lag_factor",
    "limit_apparent_power",
    "olrt_time_constant_s",
    "steady_state_response",
    "volt_var_points",
    "volt_var_q_pu",
    "volt_var_v_ref_steady_pu",
    "volt_watt_p_max_pu",
    "watt_var_q_pu",
]
