"""Stochastic hosting capacity: Monte Carlo over where vehicles plug in and how big they are.

Each scenario draws ``n_vehicles`` vehicles (seeded), places each at a random load bus and gives
it a charger size from ``charger_kw`` (with ``charger_weights``). The scenario's *shape* is the
per-bus share of the total charger power; its hosting capacity is the largest total power
(MW, every vehicle scaled together) that violates no limit. Over all scenarios this gives the
HC distribution (P5/P50/P95) and the probability of a violation at a given penetration
(``P(HC < penetration)``), in MW and in vehicles (MW / mean charger size).

Batching: all scenarios are screened together with LinDistFlow (each bisection iteration one
matrix product over all scenarios). Only the scenarios that can decide a reported percentile
are confirmed with the batched AC path: with screen brackets ``[lo_i, hi_i] = [s_i (1 - m) -
tol, s_i (1 + m) + tol]``, the AC p-th percentile lies between the p-th percentiles of the
``lo`` and of the ``hi``; every scenario whose bracket overlaps that band for P5, P50 or P95 is
AC-bisected (``confirm="near"``, the default), or all of them (``confirm="all"``).

Because the screen's error is systematic (on case33bw AC/screen is 1.03 to 1.05 for every
scenario), the "near" mode first calibrates: the scenarios at the screen's P5/P50/P95 and 16
random ones are AC-bisected inside the wide bracket; the bracket of every scenario then becomes
``s_i [r_min - 0.02, r_max + 0.02]`` (observed AC/screen ratios), which selects far fewer
scenarios for confirmation. Unconfirmed scenarios report ``s_i * median(r)`` with
``ac_confirmed = False``; the percentiles are decided by confirmed scenarios.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from grids.errors import ScenarioError, check_problems
from grids.params import Param
from studies.hosting_capacity_engine import (
    Binding,
    Cases,
    Injection,
    base_of,
    bisect,
    check_value,
)
from studies.hosting_capacity_types import (
    Mode,
    check_arguments,
    check_pf,
    q_per_p_from_pf,
)

#: Arguments of :func:`run_stochastic` beside the scenario keys (``samples``, ``seed``, ``pf``,
#: ``tolerance_mw``, ``screen_margin``, ``cap_mw`` of
#: :data:`studies.hosting_capacity_types.HC_SCENARIO_PARAMS`).
STOCHASTIC_PARAMS: tuple[Param, ...] = (
    Param("n_vehicles", 50, kind=int, lo=1, doc="vehicles per Monte Carlo scenario"),
    Param(
        "confirm",
        "near",
        kind=str,
        choices=("near", "all", "none"),
        doc="which scenarios the AC path confirms",
    ),
)
_STOCHASTIC = {p.name: p for p in STOCHASTIC_PARAMS}

PERCENTILES = (5, 50, 95)
#: widening of the calibrated AC/screen ratio bracket (absolute, on the ratio)
CALIBRATION_SLACK = 0.02


@dataclass
class StochasticResult:
    """Monte Carlo hosting capacity of a feeder.

    ``table``: one row per scenario (``scenario``, ``hosting_capacity_mw``, ``screen_mw``,
    ``ac_confirmed``, ``binding``, ``n_vehicles``, ``n_buses``). ``curve``: violation
    probability vs penetration (``penetration_mw``, ``penetration_vehicles``,
    ``violation_probability``).
    """

    table: pd.DataFrame
    curve: pd.DataFrame
    mean_vehicle_kw: float
    seed: int
    timings_s: dict[str, float] = field(default_factory=dict)

    def percentile_mw(self, q: float) -> float:
        """Percentile of the scenarios' hosting capacity.

        Parameters
        ----------
        q : float
            Percentile [%], 0 to 100.

        Returns
        -------
        float
            Hosting capacity [MW].
        """
        return float(np.percentile(self.table.hosting_capacity_mw, q))

    def summary(self) -> dict:
        """The ``distribution`` block of the CLI JSON.

        Returns
        -------
        dict
            ``p5_mw``, ``p50_mw``, ``p95_mw`` [MW], ``n_samples``, ``n_ac_confirmed``,
            ``seed``, ``mean_vehicle_kw`` [kW].
        """
        return {
            "p5_mw": self.percentile_mw(5),
            "p50_mw": self.percentile_mw(50),
            "p95_mw": self.percentile_mw(95),
            "n_samples": len(self.table),
            "n_ac_confirmed": int(self.table.ac_confirmed.sum()),
            "seed": self.seed,
            "mean_vehicle_kw": self.mean_vehicle_kw,
        }

    def violation_probability(self, penetration_mw) -> np.ndarray:
        """Probability that a penetration violates a limit: ``P(HC < x)``.

        Parameters
        ----------
        penetration_mw : float or array_like
            Total added power [MW].

        Returns
        -------
        numpy.ndarray
            Probability [-] per penetration.
        """
        hc = np.sort(self.table.hosting_capacity_mw.to_numpy())
        x = np.atleast_1d(np.asarray(penetration_mw, dtype=float))
        return np.searchsorted(hc, x, side="left") / len(hc)


def sample_shapes(
    study, n_samples: int, *, n_vehicles: int, charger_kw, charger_weights, seed: int
) -> tuple[np.ndarray, np.ndarray, float]:
    """Draw the scenarios: where the vehicles plug in and how large their chargers are.

    Parameters
    ----------
    study : HostingCapacityStudy
        The feeder (its bus order and load buses).
    n_samples : int
        Number of scenarios.
    n_vehicles : int, keyword-only
        Vehicles per scenario.
    charger_kw, charger_weights : sequence of float, keyword-only
        Charger sizes [kW] and their relative frequencies.
    seed : int, keyword-only
        Seed of the random generator.

    Returns
    -------
    shares : numpy.ndarray (S, n_bus)
        Per-bus power shares summing to 1 per scenario [-].
    vehicles : numpy.ndarray of int (S,)
        Vehicles per scenario (``n_vehicles`` each).
    mean_charger_kw : float
        Mean charger size [kW].
    """
    rng = np.random.default_rng(seed)
    net = study.net
    loads = net.load[net.load.in_service.astype(bool) & (net.load.p_mw > 0)]
    candidates = set(int(b) for b in study.candidate_buses())
    hosts = np.array(sorted(set(int(b) for b in loads.bus) & candidates))
    if hosts.size == 0:
        hosts = np.array(sorted(candidates))
    col = {int(b): i for i, b in enumerate(study.bus)}
    host_cols = np.array([col[b] for b in hosts])
    where = rng.integers(0, hosts.size, size=(n_samples, n_vehicles))
    kw = np.asarray(charger_kw, dtype=float)
    weights = np.asarray(charger_weights, dtype=float)
    size_kw = rng.choice(kw, size=(n_samples, n_vehicles), p=weights / weights.sum())
    shares = np.zeros((n_samples, len(study.bus)))
    rows = np.repeat(np.arange(n_samples), n_vehicles)
    np.add.at(shares, (rows, host_cols[where.ravel()]), size_kw.ravel())
    shares /= shares.sum(axis=1, keepdims=True)
    return shares, np.full(n_samples, n_vehicles), float(np.dot(kw, weights / weights.sum()))


def run_stochastic(
    study,
    *,
    n_samples: int = 1000,
    seed: int = 0,
    mode="export",
    pf: float = 1.0,
    n_vehicles: int = 50,
    charger_kw=(3.7, 7.4, 11.0),
    charger_weights=(0.3, 0.5, 0.2),
    tolerance_mw: float = 0.001,
    screen_margin: float = 0.25,
    confirm: str = "near",
    cap_mw: float | None = None,
) -> StochasticResult:
    """Monte Carlo hosting capacity of ``study``'s feeder (see the module docstring).

    Parameters
    ----------
    study : HostingCapacityStudy
        Prepared feeder (needs the LinDistFlow screen; the AC path for confirmation).
    n_samples : int
        Number of scenarios (> 0).
    seed : int
        Seed of the random generator (same seed, same scenarios).
    mode : Mode or str
        ``export`` (V2G discharge) or ``import`` (charging).
    pf : float
        Fixed power factor of the vehicles (``> 0`` absorbing).
    n_vehicles : int
        Vehicles per scenario (their locations and sizes set the scenario's shape).
    charger_kw, charger_weights : sequence of float
        Charger sizes [kW] and their relative frequencies.
    tolerance_mw : float
        Bisection tolerance [MW].
    screen_margin : float
        Relative half-width of the AC bracket around the screen value [-].
    confirm : {"near", "all", "none"}
        Which scenarios the AC path confirms.
    cap_mw : float or None
        Largest size searched [MW] (default: the study's).

    Returns
    -------
    StochasticResult
        One row per scenario (``hosting_capacity_mw`` [MW], ``screen_mw``, ``binding``,
        ``ac_confirmed``) and the distribution summary.

    Raises
    ------
    ScenarioError
        Invalid arguments (every problem listed) or no LinDistFlow screen.
    """

    problems: list[str] = []
    checked = check_arguments(
        {
            "mode": mode,
            "samples": n_samples,
            "seed": seed,
            "tolerance_mw": tolerance_mw,
            "screen_margin": screen_margin,
            "cap_mw": cap_mw,
        },
        problems,
    )
    mode = checked["mode"]
    check_pf(pf, key="pf", problems=problems)
    check_value(_STOCHASTIC["n_vehicles"], n_vehicles, key="n_vehicles", problems=problems)
    check_value(_STOCHASTIC["confirm"], confirm, key="confirm", problems=problems)
    kw = np.asarray(charger_kw, dtype=float)
    weights = np.asarray(charger_weights, dtype=float)
    if kw.shape != weights.shape or kw.size == 0:
        problems.append("charger_kw and charger_weights must be non-empty and of equal length")
    elif not (np.all(kw > 0) and np.all(weights >= 0) and weights.sum() > 0):
        problems.append("charger_kw must be > 0 and charger_weights >= 0 (not all zero)")
    if study.screen is None:
        problems.append("stochastic hosting capacity needs the LinDistFlow screen")
    check_problems(problems, ScenarioError, "invalid stochastic hosting-capacity study")
    t0 = time.perf_counter()
    shares, n_veh, mean_kw = sample_shapes(
        study,
        int(n_samples),
        n_vehicles=int(n_vehicles),
        charger_kw=kw,
        charger_weights=weights,
        seed=seed,
    )
    sign = 1.0 if mode is Mode.EXPORT else -1.0
    injection = Injection(sign * shares, q_per_p=q_per_p_from_pf(pf))
    cap = float(cap_mw or study.default_cap_mw)
    timings = {"sample_s": time.perf_counter() - t0}

    t0 = time.perf_counter()
    p0, q0 = study.screen.base_injection()
    cases = Cases(np.tile(p0, (n_samples, 1)), np.tile(q0, (n_samples, 1)), injection)
    base = base_of(study.screen, cases, study.limits)
    screen = bisect(
        study.screen,
        cases,
        base,
        study.limits,
        lower_mw=np.zeros(n_samples),
        upper_mw=np.full(n_samples, cap),
        tolerance_mw=tolerance_mw,
        cap_mw=cap,
    )
    timings["screen_s"] = time.perf_counter() - t0
    s = screen.hosting_capacity_mw
    final = s.copy()
    binding = screen.binding.copy()
    confirmed = np.zeros(n_samples, dtype=bool)
    if confirm != "none" and study.ac is not None:
        t0 = time.perf_counter()
        p0, q0 = study.ac.base_injection()

        def ac_bisect(rows, lo, hi):
            ac_cases = Cases(
                np.tile(p0, (rows.size, 1)), np.tile(q0, (rows.size, 1)), injection.take(rows)
            )
            ac_base = base_of(study.ac, ac_cases, study.limits)
            ac = bisect(
                study.ac,
                ac_cases,
                ac_base,
                study.limits,
                lower_mw=lo,
                upper_mw=hi,
                tolerance_mw=tolerance_mw,
                cap_mw=cap,
            )
            final[rows] = ac.hosting_capacity_mw
            binding[rows] = ac.binding
            confirmed[rows] = True

        bounded = np.isfinite(screen.upper_mw)
        lo = np.maximum(s * (1 - screen_margin) - tolerance_mw, 0.0)
        hi = np.where(bounded, s * (1 + screen_margin), cap) + tolerance_mw
        if confirm == "all":
            rows = np.arange(n_samples)
            ac_bisect(rows, lo[rows], hi[rows])
        else:
            # Calibration: AC-bisect the scenarios at the screen percentiles and a few random
            # ones with the wide documented bracket, then bracket every scenario by the
            # observed AC/screen ratios widened by CALIBRATION_SLACK.
            rng = np.random.default_rng(seed + 1)
            order = np.argsort(s)
            picks = {int(order[round(q / 100 * (n_samples - 1))]) for q in PERCENTILES}
            picks |= set(int(i) for i in rng.choice(n_samples, min(16, n_samples), replace=False))
            calib = np.array(sorted(picks))
            ac_bisect(calib, lo[calib], hi[calib])
            ok = calib[(s[calib] > tolerance_mw) & bounded[calib]]
            if ok.size:
                ratio = final[ok] / s[ok]
                r_lo = max(float(ratio.min()) - CALIBRATION_SLACK, 0.0)
                r_hi = float(ratio.max()) + CALIBRATION_SLACK
                lo = np.maximum(s * r_lo - tolerance_mw, 0.0)
                hi = np.where(bounded, s * r_hi, cap) + tolerance_mw
                estimate = np.where(bounded, s * float(np.median(ratio)), s)
                final[~confirmed] = estimate[~confirmed]
            near = np.zeros(n_samples, dtype=bool)
            for q in PERCENTILES:
                band_lo, band_hi = np.percentile(lo, q), np.percentile(hi, q)
                near |= (hi >= band_lo) & (lo <= band_hi)
            rows = np.flatnonzero(near & ~confirmed)
            if rows.size:
                ac_bisect(rows, lo[rows], hi[rows])
        timings["ac_s"] = time.perf_counter() - t0
    table = pd.DataFrame(
        {
            "scenario": np.arange(n_samples),
            "mode": mode.value,
            "hosting_capacity_mw": final,
            "screen_mw": s,
            "ac_confirmed": confirmed,
            "binding": [b.value if isinstance(b, Binding) else str(b) for b in binding],
            "n_vehicles": n_veh,
            "n_buses": (shares > 0).sum(axis=1),
        }
    )
    top = max(float(np.max(final)) * 1.1, tolerance_mw)
    grid = np.linspace(0.0, top, 101)
    result = StochasticResult(table, pd.DataFrame(), mean_kw, seed, timings)
    result.curve = pd.DataFrame(
        {
            "penetration_mw": grid,
            "penetration_vehicles": grid * 1000.0 / mean_kw,
            "violation_probability": result.violation_probability(grid),
        }
    )
    return result
