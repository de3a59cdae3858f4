"""EV adoption at a feeder's customers: who gets an EV, which charger, and how it charges.

An adoption share ``s`` puts EVs at ``round(s n)`` of the ``n`` customers (the feeder's loads),
chosen by a seeded random ranking of the customers, so that for one seed a larger share only
adds EVs (the placements are nested: the violation probability against the share is then a
property of the seed, not of re-drawing). Each customer also gets, once per seed, a charger
rating (3.7, 11 or 22 kW: single-phase 16 A, three-phase 16 A and 32 A at 230/400 V), whether
the charger is V2G-capable, the delay after the evening peak at which a managed charger may
start, and its plug-in session (the behavioural model :func:`vehicle_models.presets.
sample_sessions`) or its SimBench charging profile.

Charging is described per EV and step as the power drawn [kW] (consumption positive, V2G
export negative), averaged over the step:

* **unmanaged** -- from the source: a plug-in session charges at the rated power from arrival
  until the energy of the day's trip is back (:func:`session_demand_kw`), or a SimBench EV
  profile scaled to the charger (:func:`shape_demand_kw`);
* **managed** (peak-aware time of use) -- the same energy, but nothing is drawn from the start
  of the peak window until its end plus the EV's own release delay (staggered so the deferred
  charging does not make a new peak at the window's end); what was deferred is drawn afterwards
  at up to the rated power while plugged in (:func:`managed_charging_kw`);
* **V2G** -- managed, and the V2G-capable EVs export at up to their rating during the peak
  window while plugged in, a daily energy budget, recharged after the window.

Pure numpy; every draw comes from ``numpy.random.default_rng(seed)``.

References
----------
.. [1] IEC 61851-1:2017, Electric vehicle conductive charging system -- General requirements
   (mode 3 AC charging at 16 A and 32 A, one or three phases: 3.7, 11 and 22 kW at 230/400 V).
.. [2] SimBench: M. Meinecke et al., "SimBench -- A Benchmark Dataset of Electric Power
   Systems to Compare Innovative Solutions Based on Power Flow Analysis", Energies 13(12),
   3290, 2020 (EV charging profiles of the future scenarios).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np

from grids.errors import ScenarioError, check_problems
from grids.params import Param
from vehicle_models.presets import S_PER_DAY, FleetPreset, preset_parameters, sample_sessions

__all__ = [
    "ADOPTION_PARAMS",
    "CHARGER_RATINGS_KW",
    "DEFAULT_CHARGER_SHARES",
    "AdoptionSource",
    "EvPlacement",
    "managed_charging_kw",
    "peak_window_mask",
    "place_evs",
    "session_demand_kw",
    "shape_demand_kw",
]

#: Charger ratings [kW] (IEC 61851 mode 3: 1 x 16 A, 3 x 16 A, 3 x 32 A at 230/400 V).
CHARGER_RATINGS_KW: tuple[float, ...] = (3.7, 11.0, 22.0)
#: Default share of each rating among home chargers [-].
DEFAULT_CHARGER_SHARES: tuple[float, ...] = (0.5, 0.4, 0.1)
#: Longest release delay after the peak window drawn for a managed charger [h].
MAX_RELEASE_DELAY_H = 3.0
_S_PER_H = 3600.0


class AdoptionSource(Enum):
    """Where the EVs' charging comes from."""

    SIMBENCH = "simbench"  # the SimBench scenario's EV profiles (scaled to each charger)
    BEHAVIOUR = "behaviour"  # plug-in sessions of the fleet's behavioural model


#: ``[fleet] adoption = {...}``: declared once (scenario validation and the study).
ADOPTION_PARAMS: tuple[Param, ...] = (
    Param("share", 0.3, unit="-", lo=0.0, hi=1.0, doc="share of customers with an EV"),
    Param("seed", 0, kind=int, lo=0, hi=2**32 - 1, doc="seed of the EV placement"),
    Param(
        "source", AdoptionSource.SIMBENCH, kind=AdoptionSource,
        doc="charging profiles: the SimBench scenario's ('simbench', where it has EVs) or the "
        "behavioural model's plug-in sessions ('behaviour')",
    ),
    Param("v2g_share", 0.0, unit="-", lo=0.0, hi=1.0, doc="share of the EVs with a V2G charger"),
)  # fmt: skip


@dataclass(frozen=True)
class EvPlacement:
    """EVs at customers for one seed and share (arrays over the EVs, customer order).

    Attributes
    ----------
    customer : numpy.ndarray of int (n_ev,)
        Position of the EV's customer in the customer list given to :func:`place_evs`.
    bus : numpy.ndarray of int (n_ev,)
        pandapower bus of the customer.
    charger_kw : numpy.ndarray (n_ev,)
        Charger rating [kW].
    v2g : numpy.ndarray of bool (n_ev,)
        V2G-capable charger.
    release_delay_h : numpy.ndarray (n_ev,)
        Delay after the peak window before a managed charger may draw [h].
    shape_u : numpy.ndarray (n_ev,)
        Uniform draw in [0, 1) choosing the EV's SimBench profile.
    rank : numpy.ndarray of int (n_ev,)
        The customer's place in the seed's adoption order (EVs go to ranks below
        ``round(share n_customer)``).
    n_customer : int
        Number of customers.
    seed : int
        The seed.
    share : float
        The adoption share [-].
    """

    customer: np.ndarray
    bus: np.ndarray
    charger_kw: np.ndarray
    v2g: np.ndarray
    release_delay_h: np.ndarray
    shape_u: np.ndarray
    rank: np.ndarray
    n_customer: int
    seed: int
    share: float

    @property
    def n_ev(self) -> int:
        """Number of EVs."""
        return len(self.customer)

    def take(self, share: float) -> EvPlacement:
        """The EVs of a smaller share with the same seed (a subset: placements are nested).

        Parameters
        ----------
        share : float
            Adoption share [-], at most :attr:`share`.

        Returns
        -------
        EvPlacement

        Raises
        ------
        ScenarioError
            A share above the placement's.
        """
        if not 0.0 <= share <= self.share + 1e-12:
            raise ScenarioError(f"share: {share:g} must be in [0, {self.share:g}] (the placement)")
        keep = np.flatnonzero(self.rank < round(share * self.n_customer))
        return EvPlacement(
            customer=self.customer[keep],
            bus=self.bus[keep],
            charger_kw=self.charger_kw[keep],
            v2g=self.v2g[keep],
            release_delay_h=self.release_delay_h[keep],
            shape_u=self.shape_u[keep],
            rank=self.rank[keep],
            n_customer=self.n_customer,
            seed=self.seed,
            share=float(share),
        )


def place_evs(
    customer_bus,
    *,
    share: float,
    seed: int = 0,
    v2g_share: float = 0.0,
    charger_shares=DEFAULT_CHARGER_SHARES,
) -> EvPlacement:
    """Put EVs at a share of the customers.

    Parameters
    ----------
    customer_bus : array_like of int (n_customer,)
        pandapower bus of each customer (e.g. of each load).
    share : float, keyword-only
        Share of the customers with an EV [-], ``0 <= share <= 1``; ``round(share n)`` EVs.
    seed : int, keyword-only
        Seed of every draw (same seed: same customers ranked, same chargers).
    v2g_share : float, keyword-only
        Share of the EVs with a V2G-capable charger [-].
    charger_shares : sequence of 3 float, keyword-only
        Weights of the ratings :data:`CHARGER_RATINGS_KW` (normalised) [-].

    Returns
    -------
    EvPlacement
        The EVs, in customer order. For a fixed seed the EVs of a share are a subset of the
        EVs of any larger share, and each customer's charger and V2G flag do not depend on
        the share.

    Raises
    ------
    ScenarioError
        Every invalid argument, named.
    """
    bus = np.atleast_1d(np.asarray(customer_bus))
    problems: list[str] = []
    Param("share", lo=0.0, hi=1.0).check(share, key="share", problems=problems)
    Param("v2g_share", lo=0.0, hi=1.0).check(v2g_share, key="v2g_share", problems=problems)
    Param("seed", kind=int, lo=0, hi=2**32 - 1).check(seed, key="seed", problems=problems)
    weights = np.asarray(charger_shares, dtype=float)
    if weights.shape != (len(CHARGER_RATINGS_KW),) or not np.isfinite(weights).all():
        problems.append(
            f"charger_shares: {list(np.ravel(weights))} (expected {len(CHARGER_RATINGS_KW)} "
            f"weights for {CHARGER_RATINGS_KW} kW)"
        )
    elif (weights < 0).any() or weights.sum() <= 0:
        problems.append(f"charger_shares: {weights.tolist()} (expected weights >= 0, not all 0)")
    if bus.size == 0:
        problems.append("customer_bus: no customer")
    elif not np.issubdtype(bus.dtype, np.integer):
        problems.append(f"customer_bus: bus indices must be integers, got {bus.dtype}")
    check_problems(problems, ScenarioError, "invalid EV adoption")
    n = bus.size
    rng = np.random.default_rng(seed)
    # every draw is made for every customer, in this order, whatever the share (nesting)
    rank = rng.permutation(n)
    rating = rng.choice(np.asarray(CHARGER_RATINGS_KW), size=n, p=weights / weights.sum())
    v2g = rng.random(n) < v2g_share
    delay = rng.uniform(0.0, MAX_RELEASE_DELAY_H, size=n)
    shape_u = rng.random(n)
    n_ev = round(share * n)
    keep = np.flatnonzero(rank < n_ev)
    return EvPlacement(
        customer=keep,
        bus=bus[keep],
        charger_kw=rating[keep],
        v2g=v2g[keep],
        release_delay_h=delay[keep],
        shape_u=shape_u[keep],
        rank=rank[keep],
        n_customer=n,
        seed=int(seed),
        share=float(share),
    )


def session_demand_kw(
    time_of_day_s,
    step_s: float,
    *,
    charger_kw,
    seed: int,
    n_customer: int,
    customer,
    preset: FleetPreset | str = FleetPreset.HOME,
    eta_charge: float = 0.92,
) -> tuple[np.ndarray, np.ndarray]:
    """Unmanaged charging of daily plug-in sessions (the behavioural model), per step.

    Each EV arrives at ``a`` and stays ``w`` (drawn once per customer with
    :func:`vehicle_models.presets.sample_sessions` and a generator seeded by ``seed``), and
    charges at its rating ``P`` from arrival until the day's trip energy ``E / eta`` is back,
    i.e. during ``[a, a + d)`` with ``d = min(E / (eta P), w)``. The power of a step
    ``[t, t + dt)`` is ``P`` times the overlap of the step with the charging interval
    (repeating daily) divided by ``dt``, so the energy per day is exact.

    Parameters
    ----------
    time_of_day_s : array_like (n_steps,)
        Start of each step, seconds after midnight [s].
    step_s : float
        Step length [s].
    charger_kw : array_like (n_ev,), keyword-only
        Charger ratings [kW].
    seed : int, keyword-only
        Seed of the sessions (the same seed as the placement gives the same sessions).
    n_customer : int, keyword-only
        Number of customers (sessions are drawn for all, so they do not depend on the share).
    customer : array_like of int (n_ev,), keyword-only
        Customer of each EV (:attr:`EvPlacement.customer`).
    preset : FleetPreset or str, keyword-only
        Session statistics (default ``home``).
    eta_charge : float, keyword-only
        Charger efficiency [-]: grid energy = battery energy / eta.

    Returns
    -------
    demand_kw : numpy.ndarray (n_steps, n_ev)
        Charging power drawn, step average [kW].
    plugged : numpy.ndarray of bool (n_steps, n_ev)
        Whether the EV is plugged in at the start of the step.
    """
    tod = np.asarray(time_of_day_s, dtype=float)
    p_kw = np.asarray(charger_kw, dtype=float)
    customer = np.asarray(customer, dtype=int)
    rng = np.random.default_rng([int(seed), 1])
    sessions = sample_sessions(int(n_customer), preset_parameters(preset), rng)
    arrival = sessions["arrival_s"][customer]
    dwell = sessions["dwell_s"][customer]
    e_grid_kwh = sessions["e_trip_kwh"][customer] / eta_charge
    with np.errstate(divide="ignore", invalid="ignore"):
        charge_s = np.minimum(np.where(p_kw > 0, e_grid_kwh / p_kw * _S_PER_H, 0.0), dwell)
    # elapsed time since the last arrival at the step's start and end (daily repetition)
    start = np.mod(tod[:, None] - arrival[None, :], S_PER_DAY)
    overlap = _overlap_daily(start, step_s, charge_s[None, :])
    demand = p_kw[None, :] * overlap / step_s
    plugged = start < dwell[None, :]
    return demand, plugged


def _overlap_daily(start: np.ndarray, step_s: float, length: np.ndarray) -> np.ndarray:
    """Overlap [s] of ``[start, start + step)`` with ``[0, length) + k day`` (start in a day)."""
    first = np.clip(np.minimum(start + step_s, length) - start, 0.0, None)
    # the part of the step that runs past midnight of the session's day (next repetition)
    wrap = np.clip(np.minimum(start + step_s - S_PER_DAY, length), 0.0, None)
    return first + wrap


def shape_demand_kw(ev_shapes, *, shape_u, charger_kw) -> np.ndarray:
    """Unmanaged charging from measured or benchmark EV profiles (e.g. SimBench's).

    Each EV takes profile ``floor(u m)`` of the ``m`` non-zero profiles, normalised by its own
    peak and scaled to the EV's charger: ``demand = P * shape / max(shape)``.

    Parameters
    ----------
    ev_shapes : array_like (n_steps, m)
        EV charging profiles, consumption positive [any unit]; all-zero columns are skipped.
    shape_u : array_like (n_ev,), keyword-only
        Uniform draws in [0, 1) (:attr:`EvPlacement.shape_u`).
    charger_kw : array_like (n_ev,), keyword-only
        Charger ratings [kW].

    Returns
    -------
    numpy.ndarray (n_steps, n_ev)
        Charging power [kW].

    Raises
    ------
    ScenarioError
        No non-zero profile.
    """
    shapes = np.asarray(ev_shapes, dtype=float)
    peak = np.max(np.abs(shapes), axis=0) if shapes.size else np.zeros(0)
    cols = np.flatnonzero(peak > 0)
    if not len(cols):
        raise ScenarioError("ev profiles: no EV charging profile with a non-zero value")
    unit = np.clip(shapes[:, cols] / peak[cols], 0.0, None)
    pick = np.minimum((np.asarray(shape_u) * len(cols)).astype(int), len(cols) - 1)
    return unit[:, pick] * np.asarray(charger_kw, dtype=float)[None, :]


def peak_window_mask(hour_of_day, *, start_h: float, end_h: float, delay_h=0.0) -> np.ndarray:
    """Whether each step lies in the window ``[start_h, end_h + delay_h)`` (wrapping midnight).

    Parameters
    ----------
    hour_of_day : array_like (n_steps,)
        Time of day of each step [h].
    start_h, end_h : float, keyword-only
        Window [h], ``0 <= start_h, end_h < 24``.
    delay_h : float or array_like (n_ev,), keyword-only
        Extension of the window's end per EV [h].

    Returns
    -------
    numpy.ndarray of bool (n_steps, n_ev) (n_ev = 1 for a scalar delay)
    """
    hour = np.asarray(hour_of_day, dtype=float)[:, None]
    delay = np.atleast_1d(np.asarray(delay_h, dtype=float))[None, :]
    length = np.mod(end_h - start_h, 24.0) + delay
    return np.mod(hour - start_h, 24.0) < length


def managed_charging_kw(
    demand_kw,
    plugged,
    *,
    step_s: float,
    blocked,
    charger_kw,
    export=None,
    export_energy_kwh=0.0,
    export_window=None,
) -> tuple[np.ndarray, np.ndarray]:
    """Peak-aware charging (and V2G export) of a demand, energy conserved where possible.

    Step by step, each EV keeps a backlog ``B`` [kWh] of energy it wants: the unmanaged
    demand of the step is added (``B += d dt``); in a blocked step nothing is drawn; in an
    allowed step while plugged in it draws ``p = min(P, B / dt)`` and ``B -= p dt``. A V2G EV
    in its export window while plugged in exports ``min(P, X / dt)`` from its daily budget
    ``X`` (reset at the start of each window) and adds the exported energy to its backlog.

    Parameters
    ----------
    demand_kw : array_like (n_steps, n_ev)
        Unmanaged charging power [kW] (consumption positive).
    plugged : array_like of bool (n_steps, n_ev)
        Plugged in at the step.
    step_s : float, keyword-only
        Step length [s].
    blocked : array_like of bool (n_steps, n_ev)
        Steps in which the charger may not draw (the peak window and the EV's release delay).
    charger_kw : array_like (n_ev,), keyword-only
        Charger ratings [kW].
    export : array_like of bool (n_ev,) or None, keyword-only
        V2G-capable EVs (``None``: none).
    export_energy_kwh : float or array_like (n_ev,), keyword-only
        Daily export budget per V2G EV [kWh].
    export_window : array_like of bool (n_steps,) or None, keyword-only
        Steps of the export window (the evening peak).

    Returns
    -------
    p_kw : numpy.ndarray (n_steps, n_ev)
        Power drawn [kW], consumption positive, V2G export negative.
    backlog_kwh : numpy.ndarray (n_ev,)
        Energy still wanted at the end [kWh] (not served within the steps).
    """
    demand = np.asarray(demand_kw, dtype=float)
    plugged = np.asarray(plugged, dtype=bool)
    blocked = np.broadcast_to(np.asarray(blocked, dtype=bool), demand.shape)
    rating = np.asarray(charger_kw, dtype=float)
    n_steps, n_ev = demand.shape
    dt_h = step_s / _S_PER_H
    can_export = np.zeros(n_ev, dtype=bool) if export is None else np.asarray(export, dtype=bool)
    window = np.zeros(n_steps, dtype=bool) if export_window is None else np.asarray(export_window)
    budget_full = np.broadcast_to(np.asarray(export_energy_kwh, dtype=float), (n_ev,))
    budget = budget_full.copy()
    backlog = np.zeros(n_ev)
    out = np.zeros_like(demand)
    for t in range(n_steps):
        if window[t] and (t == 0 or not window[t - 1]):
            budget = budget_full.copy()  # a new evening: a new export budget
        backlog += demand[t] * dt_h
        exporting = can_export & window[t] & plugged[t] & (budget > 0)
        p_export = np.where(exporting, np.minimum(rating, budget / dt_h), 0.0)
        budget -= p_export * dt_h
        backlog += p_export * dt_h
        draw = ~blocked[t] & plugged[t] & ~exporting
        p = np.where(draw, np.minimum(rating, backlog / dt_h), 0.0)
        backlog -= p * dt_h
        out[t] = p - p_export
    return out, backlog
