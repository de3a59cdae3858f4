"""The one set of frequency and voltage metrics: nadir, RoCoF, settling time, voltage envelope.

Every path that reports these numbers (the mosaik world's results, the contingency study's
direct loop, the black-start island) computes them here, from the sampled trajectory, so a
sweep column such as ``f_nadir_hz`` means the same thing whichever study filled it.

Definitions (all on the samples as recorded; nothing is interpolated between samples):

* **nadir** - the lowest sampled frequency at or after the event (the highest for an
  over-frequency event, the "zenith"), and the time of that sample. A sampled extremum never
  reports a value the system did not take; a parabola through three samples does, at the kink
  an under-frequency load-shedding stage or a fleet trip puts into the trajectory. For a
  smooth trajectory its error is at most ``|f''| dt² / 8`` (0.5 mHz for ``|f''| = 1 Hz/s²`` at
  ``dt`` = 20 ms).
* **RoCoF** - the average rate of change over a window of ``window_s`` = 500 ms,
  ``(f(t + w) − f(t)) / w``: the measurement window that the ENTSO-E implementation guidance on
  RoCoF withstand capability recommends for grid-code compliance (a shorter window mostly
  measures noise and phase jumps). :func:`rocof_after_event_hz_per_s` is the window starting at
  the event; :func:`max_abs_rocof_hz_per_s` the largest magnitude of the sliding window.
* **settling time** - the time after the event from which the frequency stays within a band
  of ``tolerance_frac`` (default 5 %) of the largest excursion around its final value (the
  classical 2 %/5 % settling-time criterion of control engineering).
* **voltage envelope** - per-sample minimum and maximum over the buses, and where and when the
  overall extremes occur.

References
----------
ENTSO-E, *Rate of Change of Frequency (RoCoF) withstand capability*, implementation guidance
document for the network code on requirements for generators (RfG), 2018: RoCoF measured as
an average over a 500 ms sliding window.
K. Ogata, *Modern Control Engineering*, 5th ed., Prentice Hall, 2010, section 5-3 (settling
time: the time to reach and stay within 2 % or 5 % of the final value).
P. Kundur, *Power System Stability and Control*, McGraw-Hill, 1994, section 11.1 (frequency
nadir and rate of change of frequency after a loss of generation).

Examples
--------
>>> import numpy as np
>>> from grids.metrics import frequency_nadir, rocof_after_event_hz_per_s
>>> t_s = np.arange(0.0, 10.0, 0.01)
>>> f_hz = 60.0 - 0.2 * t_s * np.exp(-t_s / 2.0)  # minimum 60 - 0.4/e at t = 2 s
>>> nadir = frequency_nadir(t_s, f_hz)
>>> round(nadir.f_hz, 4), round(nadir.t_s, 2)
(59.8528, 2.0)
>>> round(rocof_after_event_hz_per_s(np.arange(0, 2, 0.1), 60 - 0.3 * np.arange(0, 2, 0.1)), 6)
-0.3
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

#: RoCoF measurement window [s] (ENTSO-E RoCoF withstand guidance: 500 ms).
ROCOF_WINDOW_S = 0.5
#: Settling band as a fraction of the largest excursion from the final value [-].
SETTLING_TOLERANCE_FRAC = 0.05


class FrequencyExtremum(NamedTuple):
    """A sampled frequency extremum: its value [Hz] and the time of the sample [s]."""

    f_hz: float
    t_s: float


class VoltageEnvelope(NamedTuple):
    """Per-sample and overall voltage extremes.

    Attributes
    ----------
    vm_min_pu, vm_max_pu : numpy.ndarray
        Lowest and highest bus voltage of every sample [pu], shape ``(n_t,)``.
    min_pu, max_pu : float
        Overall lowest and highest voltage [pu].
    min_bus, max_bus : int
        Column index of the bus where the overall extreme occurs.
    min_t_index, max_t_index : int
        Row (sample) index where it occurs.
    """

    vm_min_pu: np.ndarray
    vm_max_pu: np.ndarray
    min_pu: float
    max_pu: float
    min_bus: int
    max_bus: int
    min_t_index: int
    max_t_index: int


def _series(t_s: np.ndarray, f_hz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(t_s, dtype=float)
    f = np.asarray(f_hz, dtype=float)
    if t.ndim != 1 or t.shape != f.shape or t.size == 0:
        raise ValueError(
            f"t_s and f_hz must be non-empty 1-D arrays of the same length, got {t.shape} "
            f"and {f.shape}"
        )
    return t, f


def _from_event(t: np.ndarray, t_event_s: float | None) -> int:
    """Index of the first sample at or after the event (tolerant to round-off in ``t``)."""
    if t_event_s is None:
        return 0
    step = float(np.median(np.diff(t))) if t.size > 1 else 1.0
    first = int(np.searchsorted(t, t_event_s - 1e-9 * abs(step)))
    if first >= t.size:
        raise ValueError(f"no sample at or after the event time {t_event_s} s")
    return first


def frequency_nadir(
    t_s: np.ndarray,
    f_hz: np.ndarray,
    *,
    t_event_s: float | None = None,
    under_frequency: bool = True,
) -> FrequencyExtremum:
    """The sampled frequency nadir (or zenith) at or after an event.

    Parameters
    ----------
    t_s : numpy.ndarray
        Sample times [s], increasing, shape ``(n_t,)``.
    f_hz : numpy.ndarray
        Frequency at those times [Hz].
    t_event_s : float, optional
        Event time [s]; samples before it are ignored (default: all samples).
    under_frequency : bool
        ``True`` (loss of generation): the lowest sample; ``False`` (loss of load): the
        highest sample.

    Returns
    -------
    FrequencyExtremum
        ``(f_hz, t_s)`` of the extreme sample (the first one if several are equal).

    Notes
    -----
    The extremum is taken over the samples, not interpolated: for a smooth trajectory the
    error against the continuous extremum is at most ``max|f''| · dt² / 8``.

    Examples
    --------
    >>> frequency_nadir(np.array([0.0, 1.0, 2.0]), np.array([60.0, 59.7, 59.8]))
    FrequencyExtremum(f_hz=59.7, t_s=1.0)
    """
    t, f = _series(t_s, f_hz)
    first = _from_event(t, t_event_s)
    segment = f[first:]
    k = int(np.argmin(segment) if under_frequency else np.argmax(segment))
    return FrequencyExtremum(float(segment[k]), float(t[first + k]))


def rocof_after_event_hz_per_s(
    t_s: np.ndarray,
    f_hz: np.ndarray,
    *,
    t_event_s: float | None = None,
    window_s: float = ROCOF_WINDOW_S,
) -> float:
    """Average rate of change of frequency over the window that starts at the event.

    Parameters
    ----------
    t_s : numpy.ndarray
        Sample times [s], increasing.
    f_hz : numpy.ndarray
        Frequency [Hz].
    t_event_s : float, optional
        Event time [s] (default: the first sample).
    window_s : float
        Measurement window [s] (default 0.5 s, see the module notes).

    Returns
    -------
    float
        ``(f(t_e + w) − f(t_e)) / w`` [Hz/s], with ``t_e`` the first sample at or after the
        event and ``t_e + w`` the first sample at or after the end of the window (the run's
        last sample if the run is shorter; the divisor is the actual time between the two
        samples). ``nan`` if there is only one sample after the event.

    Examples
    --------
    >>> t = np.arange(0.0, 1.0, 0.1)
    >>> round(rocof_after_event_hz_per_s(t, 50.0 - 0.2 * t), 6)
    -0.2
    """
    t, f = _series(t_s, f_hz)
    if not window_s > 0:
        raise ValueError(f"window_s must be > 0, got {window_s}")
    first = _from_event(t, t_event_s)
    step = float(np.median(np.diff(t))) if t.size > 1 else 1.0
    end = min(int(np.searchsorted(t, t[first] + window_s - 1e-9 * step)), t.size - 1)
    if end <= first:
        return math.nan
    return float((f[end] - f[first]) / (t[end] - t[first]))


def rocof_sliding_hz_per_s(
    t_s: np.ndarray, f_hz: np.ndarray, *, window_s: float = ROCOF_WINDOW_S
) -> np.ndarray:
    """RoCoF over a sliding window ending at every sample where a full window fits.

    Parameters
    ----------
    t_s : numpy.ndarray
        Sample times [s], increasing.
    f_hz : numpy.ndarray
        Frequency [Hz].
    window_s : float
        Measurement window [s].

    Returns
    -------
    numpy.ndarray
        ``(f(t_k) − f(t_j)) / (t_k − t_j)`` [Hz/s] for every sample ``k`` with ``t_k − t_0 ≥
        w``, where ``t_j`` is the latest sample at or before ``t_k − w``; empty if the run is
        shorter than one window.
    """
    t, f = _series(t_s, f_hz)
    if not window_s > 0:
        raise ValueError(f"window_s must be > 0, got {window_s}")
    step = float(np.median(np.diff(t))) if t.size > 1 else 1.0
    ends = np.flatnonzero(t - t[0] >= window_s - 1e-9 * step)
    if ends.size == 0:
        return np.empty(0)
    starts = np.searchsorted(t, t[ends] - window_s + 1e-9 * step, side="right") - 1
    return (f[ends] - f[starts]) / (t[ends] - t[starts])


def max_abs_rocof_hz_per_s(
    t_s: np.ndarray, f_hz: np.ndarray, *, window_s: float = ROCOF_WINDOW_S
) -> float:
    """Largest magnitude of the sliding-window RoCoF [Hz/s] (``nan`` if no window fits).

    Parameters
    ----------
    t_s : numpy.ndarray
        Sample times [s], increasing.
    f_hz : numpy.ndarray
        Frequency [Hz].
    window_s : float
        Measurement window [s].

    Returns
    -------
    float
        ``max |RoCoF|`` over :func:`rocof_sliding_hz_per_s` [Hz/s].
    """
    values = rocof_sliding_hz_per_s(t_s, f_hz, window_s=window_s)
    return float(np.max(np.abs(values))) if values.size else math.nan


def settling_time_s(
    t_s: np.ndarray,
    f_hz: np.ndarray,
    *,
    t_event_s: float | None = None,
    f_final_hz: float | None = None,
    tolerance_frac: float = SETTLING_TOLERANCE_FRAC,
    band_hz: float | None = None,
) -> float:
    """Time after the event from which the frequency stays within a band of its final value.

    Parameters
    ----------
    t_s : numpy.ndarray
        Sample times [s], increasing.
    f_hz : numpy.ndarray
        Frequency [Hz].
    t_event_s : float, optional
        Event time [s] (default: the first sample); the result is measured from it.
    f_final_hz : float, optional
        The value the frequency settles to [Hz] (for example the model's quasi-steady state);
        default: the last sample.
    tolerance_frac : float
        Band half-width as a fraction of the largest excursion ``max |f − f_final|`` after the
        event [-] (default 0.05, the 5 % criterion).
    band_hz : float, optional
        Band half-width in Hz instead of the fraction.

    Returns
    -------
    float
        ``t_s − t_event_s`` [s] of the first sample after which every sample is within the
        band; 0 if the trajectory never leaves it; ``nan`` if it is still outside at the last
        sample.

    Examples
    --------
    First-order recovery ``f = 60 − 0.2 e^{−t/τ}``: the 5 % band is reached at ``τ ln 20``.

    >>> t = np.linspace(0.0, 20.0, 20001)
    >>> round(settling_time_s(t, 60.0 - 0.2 * np.exp(-t / 2.0), f_final_hz=60.0), 3)
    5.992
    """
    t, f = _series(t_s, f_hz)
    first = _from_event(t, t_event_s)
    t_ref = t[first] if t_event_s is None else float(t_event_s)
    seg_t, seg_f = t[first:], f[first:]
    final = float(seg_f[-1]) if f_final_hz is None else float(f_final_hz)
    deviation = np.abs(seg_f - final)
    if band_hz is None:
        if not 0 < tolerance_frac < 1:
            raise ValueError(f"tolerance_frac must be in (0, 1), got {tolerance_frac}")
        band = tolerance_frac * float(np.max(deviation))
    else:
        band = float(band_hz)
    outside = np.flatnonzero(deviation > band)
    if outside.size == 0:
        return 0.0
    last = int(outside[-1])
    if last == seg_t.size - 1:
        return math.nan
    return float(seg_t[last + 1] - t_ref)


def voltage_envelope(vm_pu: np.ndarray) -> VoltageEnvelope:
    """Lowest and highest bus voltage per sample, and the overall extremes.

    Parameters
    ----------
    vm_pu : numpy.ndarray
        Bus voltage magnitudes [pu], shape ``(n_t, n_bus)`` (or ``(n_bus,)`` for one sample).
        NaN (a dead bus) is ignored; a sample with every bus NaN has NaN extremes.

    Returns
    -------
    VoltageEnvelope
        Per-sample ``vm_min_pu``/``vm_max_pu`` and the overall extremes with their bus
        (column) and sample (row) indices.

    Examples
    --------
    >>> env = voltage_envelope(np.array([[1.0, 0.97], [1.01, 0.93]]))
    >>> env.min_pu, env.min_bus, env.min_t_index
    (0.93, 1, 1)
    """
    v = np.asarray(vm_pu, dtype=float)
    if v.ndim == 1:
        v = v[None, :]
    if v.ndim != 2 or v.size == 0:
        raise ValueError(f"vm_pu must have shape (n_t, n_bus), got {np.shape(vm_pu)}")
    low = np.where(np.isnan(v), np.inf, v)
    high = np.where(np.isnan(v), -np.inf, v)
    vm_min = low.min(axis=1)
    vm_max = high.max(axis=1)
    all_nan = np.isnan(v).all(axis=1)
    vm_min[all_nan] = np.nan
    vm_max[all_nan] = np.nan
    i_min = int(np.argmin(low))
    i_max = int(np.argmax(high))
    t_min, b_min = np.unravel_index(i_min, v.shape)
    t_max, b_max = np.unravel_index(i_max, v.shape)
    return VoltageEnvelope(
        vm_min_pu=vm_min,
        vm_max_pu=vm_max,
        min_pu=float(v[t_min, b_min]),
        max_pu=float(v[t_max, b_max]),
        min_bus=int(b_min),
        max_bus=int(b_max),
        min_t_index=int(t_min),
        max_t_index=int(t_max),
    )
