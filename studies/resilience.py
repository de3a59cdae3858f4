"""Resilience-trapezoid metrics of a performance curve (Panteli et al., 2017).

A performance curve ``P(t)`` (served load in MW, MW of critical load, or any other metric,
over time in hours) goes through the phases of the *resilience trapezoid*:

::

    P0 ─────┐                                 ┌──── (restored)
            │╲ disruption                   ╱ │
            │  ╲  (phase I)   (phase II)  ╱   │ recovery (phase III)
    P_min   │    └──────────────────────┘     │
           t_a   t_b                    t_c   t_d

* ``t_a`` disruption start: last sample at the pre-event level before the first drop;
* ``t_b`` end of the fall: first time the minimum is reached;
* ``t_c`` start of recovery: last sample of the minimum plateau that begins at ``t_b``;
* ``t_d`` end of recovery: first time back at (or above) the pre-event level, with the crossing
  located by linear interpolation between samples.

The metrics are in absolute units of the curve (not fractions of ``P0``):

* ``Φ = (P_min − P0) / (t_b − t_a)``: degradation speed [performance/h], negative when falling;
* ``Λ = P0 − P_min``: degradation extent [performance];
* ``E = t_c − t_b``: degraded duration [h];
* ``Π = (P0 − P_min) / (t_d − t_c)``: recovery speed [performance/h];
* area ``= ∫_{t_a}^{t_d} max(P0 − P(t), 0) dt``: lost performance [performance·h];
* ``T_r``: time from ``t_a`` until ``P`` is back at or above the *acceptable* level (default
  ``P0``) [h];
* ``M_D = ∫_{t_a}^{t_a + T_r} max(P_acc − P(t), 0) dt``: service deprived below the acceptable
  level [performance·h], e.g. MWh not served to a hospital.

Integrals treat the samples as a piecewise-linear curve and are exact for it (the positive
part of a linear segment that crosses zero is integrated as a triangle). Only the first event
is analysed: the event ends at the first recovery.

If the curve never recovers, ``recovered`` is False, ``t_recovery_h`` and ``pi_per_h`` are
None, and the area and ``M_D`` are integrated to the end of the curve (lower bounds).

References
----------
.. [1] M. Panteli, P. Mancarella, D. N. Trakas, E. Kyriakides, N. D. Hatziargyriou,
   "Metrics and quantification of operational and infrastructure resilience in power
   systems", IEEE Trans. Power Systems 32(6), 4732–4742, 2017.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from grids.errors import InputDataError, check_problems

# pandas (~0.3 s) and matplotlib are imported where a curve file is read or a figure drawn:
# the metrics themselves are plain numpy, and the studies import this module for them.

TIME_COLUMN = "t_h"
PERFORMANCE_COLUMN = "performance"

# JSON keys the CLI promises (issue 7 item 4) and their ResilienceMetrics attributes.
JSON_KEYS: dict[str, str] = {
    "phi_per_h": "phi_per_h",
    "lambda": "lambda_",
    "e_h": "e_h",
    "pi_per_h": "pi_per_h",
    "area": "area",
    "t_recovery_h": "t_recovery_h",
    "m_d": "m_d",
}


@dataclass(frozen=True)
class ResilienceMetrics:
    """Resilience-trapezoid metrics of one performance curve (see the module docstring).

    Attributes
    ----------
    phi_per_h : float
        Degradation speed Φ [performance/h] (negative when falling; 0 without disruption).
    lambda_ : float
        Degradation extent Λ = P0 − P_min [performance].
    e_h : float
        Degraded duration E [h] (a lower bound if the curve ends at the minimum).
    pi_per_h : float or None
        Recovery speed Π [performance/h]; None if the curve never returns to ``P0``.
    area : float
        Lost performance [performance·h] below ``P0`` over the event.
    t_recovery_h : float or None
        Recovery time T_r [h] from the disruption back to the acceptable level; None if never.
    m_d : float
        Performance deprived below the acceptable level during T_r [performance·h].
    pre_event_level, degraded_level, acceptable_level : float
        ``P0``, ``P_min`` and the acceptable threshold [performance].
    t_disruption_h, t_degraded_h, t_recovery_start_h, t_restored_h : float or None
        Trapezoid corners ``t_a``, ``t_b``, ``t_c``, ``t_d`` [h] (None where they do not exist).
    disrupted : bool
        False if the curve never falls below ``P0`` (all metrics then 0).
    recovered : bool
        True if the curve is back at the acceptable level before it ends.
    restored : bool
        True if the curve is back at the pre-event level ``P0`` before it ends.
    """

    phi_per_h: float
    lambda_: float
    e_h: float
    pi_per_h: float | None
    area: float
    t_recovery_h: float | None
    m_d: float
    pre_event_level: float
    degraded_level: float
    acceptable_level: float
    t_disruption_h: float | None
    t_degraded_h: float | None
    t_recovery_start_h: float | None
    t_restored_h: float | None
    disrupted: bool
    recovered: bool
    restored: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: the issue's keys first, then corners and flags."""
        data = asdict(self)
        out: dict[str, Any] = {key: data[attr] for key, attr in JSON_KEYS.items()}
        for key, value in data.items():
            if key not in JSON_KEYS.values():
                out[key] = value
        return out


#: Largest magnitude of a performance value accepted [curve unit]. No performance measure this
#: study meets (MW or MWh served, Hz, %) comes near it, and below it every product the
#: metrics form (``(P0 − P) · Δt``, slopes) stays finite in double precision; a larger value is
#: a unit mistake or a corrupt file, which would otherwise overflow into all-zero metrics.
MAX_ABS_PERFORMANCE = 1e12
#: Largest magnitude of a time value accepted [h] (about 1,100 years).
MAX_ABS_TIME_H = 1e7


def _check_curve(t_h: Any, performance: Any, *, name: str) -> tuple[np.ndarray, np.ndarray]:
    problems: list[str] = []
    try:
        t = np.asarray(t_h, dtype=float).ravel()
        p = np.asarray(performance, dtype=float).ravel()
    except (TypeError, ValueError) as error:
        raise InputDataError(f"{name}: values are not numbers ({error})") from None
    if t.size == 0 or p.size == 0:
        raise InputDataError(f"{name}: the curve is empty (need at least 2 samples)")
    if t.size != p.size:
        raise InputDataError(
            f"{name}: {t.size} times but {p.size} performance values (must be equal)"
        )
    if t.size < 2:
        raise InputDataError(f"{name}: only 1 sample (need at least 2)")
    for label, values, bound, unit in (
        (TIME_COLUMN, t, MAX_ABS_TIME_H, " h"),
        (PERFORMANCE_COLUMN, p, MAX_ABS_PERFORMANCE, ""),
    ):
        for i in np.flatnonzero(~np.isfinite(values))[:20]:
            problems.append(f"{name}: row {i + 1}: {label} is {values[i]}")
        with np.errstate(invalid="ignore"):
            huge = np.flatnonzero(np.isfinite(values) & (np.abs(values) > bound))
        for i in huge[:20]:
            problems.append(
                f"{name}: row {i + 1}: {label} = {values[i]:g} is implausible (the limit is "
                f"±{bound:g}{unit}; check the unit of the column)"
            )
    finite = np.isfinite(t)
    bad = np.flatnonzero(finite[1:] & finite[:-1] & (np.diff(t) <= 0))
    for i in bad[:20]:
        problems.append(
            f"{name}: row {i + 2}: {TIME_COLUMN} = {t[i + 1]:g} is not after the previous "
            f"{t[i]:g} (time must increase strictly)"
        )
    check_problems(problems, InputDataError, f"{name}: invalid performance curve")
    return t, p


def _crossing_up(t: np.ndarray, p: np.ndarray, start: int, level: float, tol: float):
    """First time at or after sample ``start`` where ``p`` reaches ``level`` (interpolated)."""
    hits = np.flatnonzero(p[start:] >= level - tol)
    if hits.size == 0:
        return None, None
    k = start + int(hits[0])
    if k == 0 or k == start or p[k] - p[k - 1] <= 0 or abs(p[k] - level) <= tol:
        return float(t[k]), k
    frac = (level - p[k - 1]) / (p[k] - p[k - 1])
    return float(t[k - 1] + frac * (t[k] - t[k - 1])), k


def _shortfall_integral(t: np.ndarray, y: np.ndarray, t0: float, t1: float) -> float:
    """``∫_{t0}^{t1} max(y, 0) dt`` for the piecewise-linear ``y(t)``, exactly."""
    if t1 <= t0:
        return 0.0
    inside = (t > t0) & (t < t1)
    tt = np.concatenate(([t0], t[inside], [t1]))
    yy = np.interp(tt, t, y)
    total = 0.0
    for k in range(len(tt) - 1):
        dt, a, b = tt[k + 1] - tt[k], yy[k], yy[k + 1]
        if a >= 0 and b >= 0:
            total += 0.5 * (a + b) * dt
        elif a > 0 > b:  # triangle before the zero crossing
            total += 0.5 * a * dt * a / (a - b)
        elif b > 0 > a:
            total += 0.5 * b * dt * b / (b - a)
    return float(total)


def resilience_metrics(
    t_h: Any,
    performance: Any,
    *,
    acceptable: float | None = None,
    tolerance: float | None = None,
    name: str = "curve",
) -> ResilienceMetrics:
    """Resilience-trapezoid metrics of a sampled performance curve.

    Parameters
    ----------
    t_h : array_like, shape (n,)
        Sample times [h], strictly increasing.
    performance : array_like, shape (n,)
        Performance at those times [any unit, e.g. MW served]; ``performance[0]`` is taken as
        the pre-event level ``P0``.
    acceptable : float, optional
        Acceptable performance level for ``T_r`` and ``M_D`` [same unit]; default ``P0``.
    tolerance : float, optional
        Absolute tolerance for "at the pre-event level" and "at the minimum" [same unit];
        default ``1e-9 · max(|P0|, P0 − P_min, 1)``. Raise it for noisy measured curves.
    name : str
        Name used in error messages (e.g. the CSV file name).

    Returns
    -------
    ResilienceMetrics

    Raises
    ------
    InputDataError
        Empty or 1-sample curve, NaN/inf values, values beyond ``MAX_ABS_PERFORMANCE``
        (1e12) or times beyond ``MAX_ABS_TIME_H`` (1e7 h), non-increasing time (row numbers
        are 1-based), a non-finite acceptable level or tolerance.

    Notes
    -----
    See the module docstring for the trapezoid corners and the formulas.

    References
    ----------
    Panteli et al., IEEE Trans. Power Systems 32(6), 2017, sec. III (Φ, Λ, E, Π, area).
    """
    t, p = _check_curve(t_h, performance, name=name)
    p0 = float(p[0])
    p_acc = p0 if acceptable is None else float(acceptable)
    if not math.isfinite(p_acc) or abs(p_acc) > MAX_ABS_PERFORMANCE:
        raise InputDataError(
            f"{name}: acceptable level {acceptable!r} is not a finite number within "
            f"±{MAX_ABS_PERFORMANCE:g}"
        )
    if tolerance is not None and not (math.isfinite(tolerance) and tolerance >= 0):
        raise InputDataError(f"{name}: tolerance {tolerance!r} is not a finite number >= 0")
    p_min = float(np.min(p))
    tol = tolerance if tolerance is not None else 1e-9 * max(abs(p0), p0 - p_min, 1.0)

    below_p0 = np.flatnonzero(p < p0 - tol)
    if below_p0.size == 0:
        return ResilienceMetrics(
            phi_per_h=0.0,
            lambda_=0.0,
            e_h=0.0,
            pi_per_h=0.0,
            area=0.0,
            t_recovery_h=0.0,
            m_d=0.0,
            pre_event_level=p0,
            degraded_level=p0,
            acceptable_level=p_acc,
            t_disruption_h=None,
            t_degraded_h=None,
            t_recovery_start_h=None,
            t_restored_h=None,
            disrupted=False,
            recovered=True,
            restored=True,
        )

    i_a = int(below_p0[0]) - 1  # last sample at the pre-event level (index 0 is at P0)
    t_a = float(t[i_a])
    # the minimum of the (first) event: everything up to the first return to P0
    _, k_back = _crossing_up(t, p, int(below_p0[0]), p0, tol)
    event_end = len(p) if k_back is None else k_back
    seg = p[i_a:event_end]
    p_min = float(np.min(seg))
    i_b = i_a + int(np.flatnonzero(seg <= p_min + tol)[0])
    i_c = i_b
    while i_c + 1 < event_end and p[i_c + 1] <= p_min + tol:
        i_c += 1
    t_b, t_c = float(t[i_b]), float(t[i_c])
    t_d, _ = _crossing_up(t, p, i_c, p0, tol)

    lambda_ = p0 - p_min
    phi = -lambda_ / (t_b - t_a)
    e_h = t_c - t_b
    pi = None if t_d is None else lambda_ / (t_d - t_c)
    area = _shortfall_integral(t, p0 - p, t_a, float(t[-1]) if t_d is None else t_d)
    if not all(math.isfinite(x) for x in (phi, area, pi if pi is not None else 0.0)):
        raise InputDataError(
            f"{name}: the metrics overflow (a drop of {lambda_:g} within "
            f"{t_b - t_a:g} h); the time steps are implausibly small for the changes"
        )

    if p_min >= p_acc - tol:
        t_recovery, m_d, recovered = 0.0, 0.0, True
    else:
        first_below = i_a + int(np.flatnonzero(seg < p_acc - tol)[0])
        t_back, _ = _crossing_up(t, p, first_below, p_acc, tol)
        recovered = t_back is not None
        t_recovery = None if t_back is None else t_back - t_a
        t_end = float(t[-1]) if t_back is None else t_back
        m_d = _shortfall_integral(t, p_acc - p, t_a, t_end)

    return ResilienceMetrics(
        phi_per_h=float(phi),
        lambda_=float(lambda_),
        e_h=float(e_h),
        pi_per_h=None if pi is None else float(pi),
        area=area,
        t_recovery_h=None if t_recovery is None else float(t_recovery),
        m_d=float(m_d),
        pre_event_level=p0,
        degraded_level=p_min,
        acceptable_level=p_acc,
        t_disruption_h=t_a,
        t_degraded_h=t_b,
        t_recovery_start_h=t_c,
        t_restored_h=t_d,
        disrupted=True,
        recovered=recovered,
        restored=t_d is not None,
    )


def read_curve(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read a performance curve CSV with columns ``t_h,performance``.

    Raises
    ------
    InputDataError
        Missing/unreadable file, missing column, empty table, non-numbers, NaN, non-increasing
        time; messages name the file and the 1-based data row (the header is not counted).
    """
    import pandas as pd

    path = Path(path)
    name = path.name
    if not path.is_file():
        raise InputDataError(f"{path}: no such curve file")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise InputDataError(f"{name}: the file is empty (need columns t_h,performance)") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as error:
        raise InputDataError(f"{name}: not a readable CSV ({error})") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    missing = [c for c in (TIME_COLUMN, PERFORMANCE_COLUMN) if c not in frame.columns]
    if missing:
        raise InputDataError(
            f"{name}: missing column(s) {', '.join(missing)} "
            f"(found: {', '.join(frame.columns) or 'none'})"
        )
    if len(frame) == 0:
        raise InputDataError(f"{name}: the curve is empty (no data rows)")
    problems: list[str] = []
    columns = {}
    for column in (TIME_COLUMN, PERFORMANCE_COLUMN):
        text = frame[column].str.strip()
        values = pd.to_numeric(text, errors="coerce").to_numpy(dtype=float)
        for i in np.flatnonzero(np.isnan(values))[:20]:
            raw = text.iloc[i]
            what = "is empty" if raw == "" else f"{raw!r} is not a number"
            if raw.lower() == "nan":
                what = "is NaN"
            problems.append(f"{name}: row {i + 1}: {column} {what}")
        columns[column] = values
    check_problems(problems, InputDataError, f"{name}: invalid performance curve")
    t, p = _check_curve(columns[TIME_COLUMN], columns[PERFORMANCE_COLUMN], name=name)
    return t, p


def plot_trapezoid(
    t_h: Any,
    performance: Any,
    metrics: ResilienceMetrics,
    *,
    ylabel: str = "performance",
    title: str = "Resilience trapezoid",
):
    """Plot the curve with the trapezoid corners, the lost area and the acceptable level.

    Returns the matplotlib figure (``matplotlib.use("Agg")`` is the caller's business in
    scripts; reports call it before importing pyplot).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = np.asarray(t_h, dtype=float)
    p = np.asarray(performance, dtype=float)
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.plot(t, p, color="C0", lw=2, label="performance")
    p0 = metrics.pre_event_level
    ax.axhline(p0, color="0.5", ls=":", lw=1, label="pre-event level")
    if metrics.acceptable_level != p0:
        ax.axhline(metrics.acceptable_level, color="C3", ls="--", lw=1, label="acceptable level")
    if metrics.disrupted:
        t_end = metrics.t_restored_h if metrics.t_restored_h is not None else float(t[-1])
        mask = (t >= metrics.t_disruption_h) & (t <= t_end)
        ax.fill_between(
            t[mask], np.minimum(p[mask], p0), p0, color="C1", alpha=0.25, label="lost area"
        )
        corners = [
            (metrics.t_disruption_h, p0, "t_a disruption"),
            (metrics.t_degraded_h, metrics.degraded_level, "t_b degraded"),
            (metrics.t_recovery_start_h, metrics.degraded_level, "t_c recovery starts"),
        ]
        if metrics.t_restored_h is not None:
            corners.append((metrics.t_restored_h, p0, "t_d restored"))
        xs = [c[0] for c in corners]
        ys = [c[1] for c in corners]
        ax.plot(xs, ys, color="k", ls="--", lw=1, marker="o", label="trapezoid")
        for x, y, text in corners:
            ax.annotate(text, (x, y), textcoords="offset points", xytext=(4, 6), fontsize=8)
    ax.set_xlabel("time [h]")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(loc="best", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def metrics_table(metrics: ResilienceMetrics, *, unit: str = "") -> list[tuple[str, Any]]:
    """Rows ``(quantity with unit, value)`` for reports and the CLI table."""
    u = unit or "performance"
    return [
        (f"degradation speed Φ [{u}/h]", metrics.phi_per_h),
        (f"degradation extent Λ [{u}]", metrics.lambda_),
        ("degraded duration E [h]", metrics.e_h),
        (
            f"recovery speed Π [{u}/h]",
            "never restored" if metrics.pi_per_h is None else metrics.pi_per_h,
        ),
        (f"lost area [{u}·h]", metrics.area),
        (
            "recovery time T_r [h]",
            "never recovered" if metrics.t_recovery_h is None else metrics.t_recovery_h,
        ),
        (f"deprived below acceptable M_D [{u}·h]", metrics.m_d),
        (f"pre-event level [{u}]", metrics.pre_event_level),
        (f"degraded level [{u}]", metrics.degraded_level),
        (f"acceptable level [{u}]", metrics.acceptable_level),
    ]


def add_resilience_section(
    report: Any,
    t_h: Any,
    performance: Any,
    *,
    acceptable: float | None = None,
    unit: str = "",
    name: str = "resilience",
    heading: str = "Resilience",
) -> ResilienceMetrics:
    """Add a resilience section (metrics table + trapezoid figure + data) to a ``Report``.

    Used by the black-start and contingency reports and by ``v2g-cosim resilience --out``.
    """
    import pandas as pd

    metrics = resilience_metrics(t_h, performance, acceptable=acceptable, name=name)
    report.heading(heading)
    report.paragraph(
        "Resilience-trapezoid metrics (Panteli et al. 2017) in absolute units of the curve: "
        "degradation speed and extent, degraded duration, recovery speed, lost area, and the "
        "recovery time and service deprived relative to the acceptable level."
        + ("" if metrics.recovered else " The curve never recovers to the acceptable level.")
    )
    rows = metrics_table(metrics, unit=unit)
    report.table(
        pd.DataFrame({"quantity": [r[0] for r in rows], "value": [str(r[1]) for r in rows]}),
        "Resilience metrics",
    )
    fig = plot_trapezoid(t_h, performance, metrics, ylabel=unit or "performance")
    data = pd.DataFrame({TIME_COLUMN: np.asarray(t_h), PERFORMANCE_COLUMN: np.asarray(performance)})
    report.figure(fig, name, "Performance curve with the resilience trapezoid", data=data)
    return metrics
