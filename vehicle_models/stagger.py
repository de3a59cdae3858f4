"""Staggered disconnection: spread trip thresholds and clearing times across a fleet.

If every charger of a fleet uses the same trip setting, the whole fleet drops at the same
instant: for a frequency event that is a second, sudden loss of generation that can deepen
the nadir and cascade. The standard lets each trip setting be adjusted within a range
(IEEE 1547-2018 Tables 11-13 and 18); spreading the settings across units, always towards
the ride-through side so every unit stays compliant, turns one large step into many small
ones. A fleet can also ramp its injection down instead of stepping it (``ramp`` mode, done
in :class:`vehicle_models.ride_through.RideThroughState`).

Modes (:class:`~vehicle_models.settings.StaggerMode`):

- ``simultaneous``: every unit uses the configured settings (scalars are returned);
- ``ramp``: same thresholds; tripping units ramp to zero over ``ramp_s``;
- ``tiered``: unit ``i`` belongs to tier ``floor(i n_tiers / n)``; tier ``k`` moves every
  threshold by ``k/(n_tiers-1)`` of the spread and every clearing time by
  ``k/(n_tiers-1) * t_spread_frac`` of itself;
- ``random``: the same, with two uniform random fractions per unit (threshold, time) drawn
  with ``numpy.random.default_rng(seed)``.

All values are clipped to the standard's adjustable range for the abnormal category.
"""

from __future__ import annotations

import numpy as np

from vehicle_models.settings import (
    F_NOM_HZ,
    AbnormalCategory,
    StaggerMode,
    StaggerSettings,
    TripSettings,
)

# Direction towards "more ride-through" for each threshold (+1: higher trips later).
_THRESHOLD_SIGN = {
    "ov2_v_pu": +1.0,
    "ov1_v_pu": +1.0,
    "uv1_v_pu": -1.0,
    "uv2_v_pu": -1.0,
    "of2_f_hz": +1.0,
    "of1_f_hz": +1.0,
    "uf1_f_hz": -1.0,
    "uf2_f_hz": -1.0,
}
TRIP_ELEMENTS = ("ov2", "ov1", "uv1", "uv2", "of2", "of1", "uf1", "uf2")
"""Trip elements in the order used by the trip timers."""


def stagger_fractions(
    stagger: StaggerSettings, *, n: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray] | None:
    """Per-unit spread fractions of the ``tiered`` and ``random`` modes.

    Parameters
    ----------
    stagger : StaggerSettings
        Mode and number of tiers.
    n : int
        Number of units.
    seed : int
        Seed of the ``random`` mode.

    Returns
    -------
    tuple of numpy.ndarray or None
        ``(u_threshold, u_time)``, each of shape ``(n,)`` in ``[0, 1]``; ``None`` when the
        mode does not spread (``simultaneous``, ``ramp``).
    """
    if stagger.mode is StaggerMode.TIERED:
        if stagger.n_tiers <= 1:
            u = np.zeros(n)
        else:
            tier = (np.arange(n) * stagger.n_tiers) // max(n, 1)
            u = tier / (stagger.n_tiers - 1)
        return u, u.copy()
    if stagger.mode is StaggerMode.RANDOM:
        rng = np.random.default_rng(seed)
        return rng.random(n), rng.random(n)
    return None


def staggered_trip_settings(
    trip: TripSettings,
    stagger: StaggerSettings,
    category: AbnormalCategory,
    *,
    n: int,
    seed: int = 0,
    f_nominal_hz: float = F_NOM_HZ,
) -> dict[str, float | np.ndarray]:
    """Trip thresholds and clearing times per unit.

    Parameters
    ----------
    trip : TripSettings
        The configured (central) settings.
    stagger : StaggerSettings
        Mode and spreads.
    category : AbnormalCategory
        Selects the adjustable ranges the spread values are clipped to.
    n : int
        Number of units.
    seed : int
        Seed of the random mode.
    f_nominal_hz : float
        System nominal frequency [Hz] (selects the frequency ranges).

    Returns
    -------
    dict
        ``{"ov2_v_pu": ..., "ov2_t_s": ..., ...}``: floats for ``simultaneous``/``ramp``,
        arrays of shape ``(n,)`` for ``tiered``/``random``.
    """
    fractions = stagger_fractions(stagger, n=n, seed=seed)
    out: dict[str, float | np.ndarray] = {}
    ranges = TripSettings.standard_ranges(category, f_nominal_hz=f_nominal_hz)
    for element in TRIP_ELEMENTS:
        thr_name = f"{element}_v_pu" if element[0] in "ou" and element[1] == "v" else None
        thr_name = thr_name or f"{element}_f_hz"
        t_name = f"{element}_t_s"
        thr = float(getattr(trip, thr_name))
        t_clear = float(getattr(trip, t_name))
        if fractions is None:
            out[thr_name] = thr
            out[t_name] = t_clear
            continue
        u_thr, u_t = fractions
        spread = stagger.v_spread_pu if thr_name.endswith("_v_pu") else stagger.f_spread_hz
        lo, hi = ranges[thr_name]
        out[thr_name] = np.clip(thr + _THRESHOLD_SIGN[thr_name] * spread * u_thr, lo, hi)
        lo, hi = ranges[t_name]
        out[t_name] = np.clip(t_clear * (1.0 + stagger.t_spread_frac * u_t), lo, hi)
    return out


__all__ = ["TRIP_ELEMENTS", "stagger_fractions", "staggered_trip_settings"]
