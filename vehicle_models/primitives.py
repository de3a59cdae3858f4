"""First-order lags and curve corner points shared by the curve functions and the bank.

The lowest module of the inverter controls: :mod:`vehicle_models.controls` (stateless curves)
and :mod:`vehicle_models.inverter` (the stateful :class:`~vehicle_models.inverter.InverterBank`)
both import it, so neither imports the other.

References
----------
.. [1] IEEE Std 1547-2018, clause 3.1 (open-loop response time), clause 5.3.3 (volt-var,
   reference voltage limits).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from vehicle_models.settings import VoltVarSettings

LN10 = math.log(10.0)
"""``ln 10``: a first-order lag reaches 90 % of a step after ``tau ln 10``."""

V_REF_LIMITS_PU = (0.95, 1.05)
"""Limits of the autonomously adjusted volt-var reference voltage [pu] (clause 5.3.3)."""


def olrt_time_constant_s(olrt_s: float) -> float:
    """Time constant of a first-order lag whose 90 % time equals ``olrt_s``.

    Parameters
    ----------
    olrt_s : float
        Open-loop response time [s] (time to 90 % of a step change).

    Returns
    -------
    float
        Time constant ``tau`` [s].

    Notes
    -----
    A first-order lag reaches ``1 - exp(-t/tau)`` of a step; 90 % at ``t = tau ln 10``, so
    ``tau = OLRT / ln 10``.

    References
    ----------
    .. [1] IEEE Std 1547-2018, clause 3.1 (definition of the open-loop response time).
    """
    return olrt_s / LN10


def lag_factor(dt_s: float, tau_s: float) -> float:
    """Exact zero-order-hold discretization factor of a first-order lag.

    Parameters
    ----------
    dt_s : float
        Step [s].
    tau_s : float
        Time constant [s]; ``<= 0`` means no lag.

    Returns
    -------
    float
        ``1 - exp(-dt/tau)`` (1 without lag): ``y += factor * (u - y)`` is one exact step.
    """
    if tau_s <= 0.0:
        return 1.0
    return -math.expm1(-dt_s / tau_s)


def first_order_lag(
    y_prev: Any, u: Any, *, dt_s: float, olrt_s: float | None = None, tau_s: float | None = None
) -> np.ndarray:
    """One exact step of the first-order lag ``tau dy/dt = u - y`` with ``u`` held over ``dt_s``.

    Parameters
    ----------
    y_prev : array_like
        Output at the start of the step (unit of ``u``).
    u : array_like
        Input (target), constant over the step.
    dt_s : float
        Step length [s].
    olrt_s : float, optional
        Open-loop response time [s] (90 % time); ``tau = olrt_s / ln 10``.
    tau_s : float, optional
        Time constant [s] instead of ``olrt_s``.

    Returns
    -------
    numpy.ndarray
        Output at the end of the step.

    Notes
    -----
    ``y(t + dt) = u + (y(t) - u) exp(-dt/tau)``: exact for a piecewise-constant input, stable
    for every ``dt``, and after a step of duration OLRT the output has made exactly 90 % of
    the change.

    References
    ----------
    .. [1] IEEE Std 1547-2018, clause 3.1.
    """
    if tau_s is None:
        if olrt_s is None:
            raise TypeError("give olrt_s or tau_s")
        tau_s = olrt_time_constant_s(olrt_s)
    a = lag_factor(dt_s, tau_s)
    y_prev = np.asarray(y_prev, dtype=float)
    return y_prev + a * (np.asarray(u, dtype=float) - y_prev)


def volt_var_points(
    settings: VoltVarSettings, *, v_ref_pu: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The four (V, Q) corner points of the applied volt-var curve.

    Parameters
    ----------
    settings : VoltVarSettings
        Curve (IEEE 1547-2018 Table 8).
    v_ref_pu : float, optional
        Reference voltage [pu] overriding ``settings.v_ref_pu``.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        Voltages [pu] shifted by ``VRef - 1`` and reactive powers [pu of S rating], shape (4,).

    References
    ----------
    .. [1] IEEE Std 1547-2018, clause 5.3.3, Table 8.
    """
    v_ref = settings.v_ref_pu if v_ref_pu is None else v_ref_pu
    shift = v_ref - 1.0
    v = np.array([settings.v1_pu, settings.v2_pu, settings.v3_pu, settings.v4_pu]) + shift
    q = np.array([settings.q1_pu, settings.q2_pu, settings.q3_pu, settings.q4_pu])
    return v, q


__all__ = [
    "LN10",
    "V_REF_LIMITS_PU",
    "first_order_lag",
    "lag_factor",
    "olrt_time_constant_s",
    "volt_var_points",
]
