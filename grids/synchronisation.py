"""Synchronisation check for closing an island back onto the grid (IEEE 1547-2018 Table 5 style).

An island may be reconnected only when, across the open breaker at the point of common
coupling, the frequency difference, the voltage magnitude difference and the phase angle
difference are all inside the window for the aggregate rating of the grid-forming units:

=====================  ==========  ===========  ==============
aggregate rating [kVA]  |Δf| [Hz]   |ΔV| [%]     |Δθ| [degree]
=====================  ==========  ===========  ==============
0 - 500                 0.3         10           20
> 500 - 1500            0.2         5            15
> 1500                  0.1         3            10
=====================  ==========  ===========  ==============

(IEEE Std 1547-2018, clause 4.10.4, Table 5 "Synchronization parameter limits for synchronous
interconnection to an EPS, or an energized local EPS to an energized area EPS"; the same
values as IEEE 1547-2003 Table 5.) The frequency limits are given in Hz by the standard for
60 Hz systems; the same values are applied at any nominal frequency unless the scenario
overrides them (``[island.sync]``).

While the island runs on its own frequency ``f_i`` and the grid on ``f_g``, the phase angle of
the island's voltage against the grid's drifts as

.. math::

    \\theta(t) = \\theta(t_0) + 360 \\int_{t_0}^{t} (f_i - f_g)\\, dt \\quad [degree]

wrapped to (-180, 180]. A reconnection request outside the window is held until the window
is met (a synchro-check relay's permissive).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from grids.errors import ScenarioError, check_problems
from grids.params import Param, read_params

#: IEEE 1547-2018 Table 5: (upper aggregate rating [kVA], |Δf| [Hz], |ΔV| [pu], |Δθ| [degree]).
IEEE1547_TABLE5: tuple[tuple[float, float, float, float], ...] = (
    (500.0, 0.3, 0.10, 20.0),
    (1500.0, 0.2, 0.05, 15.0),
    (float("inf"), 0.1, 0.03, 10.0),
)

#: Keys of ``[island.sync]`` (each overrides the Table 5 value for the units' rating).
SYNC_PARAMS: tuple[Param, ...] = (
    Param("delta_f_hz", None, unit="Hz", lo=0.0, lo_open=True, hi=2.0, doc="largest |Δf|"),
    Param("delta_v_pu", None, unit="pu", lo=0.0, lo_open=True, hi=0.5, doc="largest |ΔV|"),
    Param(
        "delta_theta_degree",
        None,
        unit="degree",
        lo=0.0,
        lo_open=True,
        hi=90.0,
        doc="largest |Δθ|",
    ),
)


@dataclass(frozen=True)
class SyncWindow:
    """The synchronisation window: largest differences allowed across the breaker.

    Parameters
    ----------
    delta_f_hz : float
        Largest frequency difference |f_island - f_grid| [Hz].
    delta_v_pu : float
        Largest voltage magnitude difference |V_island - V_grid| [pu].
    delta_theta_degree : float
        Largest phase angle difference [degree].
    """

    delta_f_hz: float
    delta_v_pu: float
    delta_theta_degree: float

    @classmethod
    def ieee1547(cls, s_aggregate_kva: float) -> SyncWindow:
        """The IEEE 1547-2018 Table 5 window for the aggregate rating of the units.

        Parameters
        ----------
        s_aggregate_kva : float
            Aggregate rating of the grid-forming units [kVA] (> 0).

        Returns
        -------
        SyncWindow

        Raises
        ------
        ScenarioError
            A rating that is not a finite number above 0.

        Examples
        --------
        >>> SyncWindow.ieee1547(800.0)
        SyncWindow(delta_f_hz=0.2, delta_v_pu=0.05, delta_theta_degree=15.0)
        """
        if not (isinstance(s_aggregate_kva, int | float) and 0 < s_aggregate_kva < float("inf")):
            raise ScenarioError(
                f"s_aggregate_kva: {s_aggregate_kva!r} (expected a finite rating > 0 kVA)"
            )
        for upper_kva, df, dv, dtheta in IEEE1547_TABLE5:
            if s_aggregate_kva <= upper_kva:
                return cls(delta_f_hz=df, delta_v_pu=dv, delta_theta_degree=dtheta)
        raise AssertionError("unreachable: the last row has no upper bound")

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any] | None, *, s_aggregate_kva: float, path: str = "island.sync"
    ) -> SyncWindow:
        """Table 5 for the rating, with the overrides of a scenario table.

        Parameters
        ----------
        data : mapping or None
            ``delta_f_hz``, ``delta_v_pu``, ``delta_theta_degree`` (each optional).
        s_aggregate_kva : float, keyword-only
            Aggregate rating of the grid-forming units [kVA].
        path : str, keyword-only
            Key path of the table (for messages).

        Returns
        -------
        SyncWindow

        Raises
        ------
        ScenarioError
            Every problem at once.
        """
        problems: list[str] = []
        values = read_params(data or {}, SYNC_PARAMS, path=path, problems=problems)
        check_problems(problems, ScenarioError, f"invalid {path} table")
        base = cls.ieee1547(s_aggregate_kva)
        return cls(
            **{
                name: getattr(base, name) if values[name] is None else float(values[name])
                for name in ("delta_f_hz", "delta_v_pu", "delta_theta_degree")
            }
        )


@dataclass(frozen=True)
class SyncCheck:
    """Differences across the breaker and whether they are inside the window.

    Attributes
    ----------
    delta_f_hz, delta_v_pu, delta_theta_degree : numpy.ndarray
        ``f_island - f_grid`` [Hz], ``V_island - V_grid`` [pu], island angle minus grid angle
        wrapped to (-180, 180] [degree].
    ok : numpy.ndarray of bool
        All three magnitudes within the window.
    """

    delta_f_hz: np.ndarray
    delta_v_pu: np.ndarray
    delta_theta_degree: np.ndarray
    ok: np.ndarray

    def reason(self, window: SyncWindow, index: int = 0) -> str:
        """Which limits a (flattened) entry violates, as text ('' inside the window).

        Parameters
        ----------
        window : SyncWindow
            The window checked.
        index : int
            Entry of the flattened arrays.

        Returns
        -------
        str
        """
        df = float(np.ravel(self.delta_f_hz)[index])
        dv = float(np.ravel(self.delta_v_pu)[index])
        dth = float(np.ravel(self.delta_theta_degree)[index])
        parts = []
        if abs(df) > window.delta_f_hz:
            parts.append(f"|Δf| = {abs(df):.3g} Hz > {window.delta_f_hz:g} Hz")
        if abs(dv) > window.delta_v_pu:
            parts.append(f"|ΔV| = {abs(dv):.3g} pu > {window.delta_v_pu:g} pu")
        if abs(dth) > window.delta_theta_degree:
            parts.append(f"|Δθ| = {abs(dth):.3g}° > {window.delta_theta_degree:g}°")
        return "; ".join(parts)


def wrap_degree(angle_degree):
    """Wrap angles to (-180, 180] degrees.

    Parameters
    ----------
    angle_degree : array_like
        Angles [degree].

    Returns
    -------
    numpy.ndarray
        Same shape, in (-180, 180] [degree].
    """
    wrapped = np.mod(np.asarray(angle_degree, dtype=float) + 180.0, 360.0) - 180.0
    return np.where(wrapped == -180.0, 180.0, wrapped)


def phase_drift_degree(delta_f_hz, dt_s):
    """Phase angle gained over a step by a frequency difference: ``360 Δf dt``.

    Parameters
    ----------
    delta_f_hz : array_like
        Island minus grid frequency over the step [Hz].
    dt_s : array_like
        Step length [s].

    Returns
    -------
    numpy.ndarray
        Angle increment [degree] (not wrapped).
    """
    return 360.0 * np.asarray(delta_f_hz, dtype=float) * np.asarray(dt_s, dtype=float)


def sync_check(
    *,
    f_island_hz,
    f_grid_hz,
    v_island_pu,
    v_grid_pu,
    theta_island_degree,
    theta_grid_degree,
    window: SyncWindow,
) -> SyncCheck:
    """Check the synchronisation window across an open breaker (vectorized).

    Parameters
    ----------
    f_island_hz, f_grid_hz : array_like
        Frequencies on both sides [Hz].
    v_island_pu, v_grid_pu : array_like
        Voltage magnitudes on both sides [pu].
    theta_island_degree, theta_grid_degree : array_like
        Phase angles on both sides in a common reference [degree].
    window : SyncWindow
        The allowed differences.

    Returns
    -------
    SyncCheck
        ``ok`` where ``|Δf| <= delta_f_hz``, ``|ΔV| <= delta_v_pu`` and ``|Δθ| <=
        delta_theta_degree`` (IEEE 1547-2018 clause 4.10.4).
    """
    df = np.asarray(f_island_hz, dtype=float) - np.asarray(f_grid_hz, dtype=float)
    dv = np.asarray(v_island_pu, dtype=float) - np.asarray(v_grid_pu, dtype=float)
    dth = wrap_degree(
        np.asarray(theta_island_degree, dtype=float) - np.asarray(theta_grid_degree, dtype=float)
    )
    ok = (
        (np.abs(df) <= window.delta_f_hz)
        & (np.abs(dv) <= window.delta_v_pu)
        & (np.abs(dth) <= window.delta_theta_degree)
    )
    return SyncCheck(delta_f_hz=df, delta_v_pu=dv, delta_theta_degree=dth, ok=ok)
