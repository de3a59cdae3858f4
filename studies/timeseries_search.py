"""The exact part of the time-series hosting capacity: AC bisection at the band of steps the
screen points to, an AC check of the other steps, and the order statistic over the steps.

See :mod:`studies.hosting_capacity_timeseries` (the method) and
:mod:`studies.timeseries_screen` (the screen).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from grids.errors import ConvergenceError
from studies.hosting_capacity_engine import (
    Binding,
    Cases,
    Flows,
    Injection,
    base_state,
    bisect,
    evaluate,
)

__all__ = ["OrderStatisticSearch"]

#: Cases per verification call (bounds the memory of one batched AC solve).
_VERIFY_CHUNK = 8192
#: Rounds of band widening / verification before every step is bisected in AC.
_MAX_ROUNDS = 6


@dataclass
class _Stage:
    """Per-direction state of the order-statistic search (arrays over the window's steps)."""

    screen_mw: np.ndarray  # (n_steps,) screened size
    margin: float
    forced: np.ndarray  # (n_steps,) bool: bisect in AC whatever the screen says
    ac_lo: np.ndarray  # (n_steps,) AC size verified feasible (NaN: not bisected)
    ac_hi: np.ndarray  # (n_steps,) AC size verified infeasible (inf: none up to the cap)
    binding: np.ndarray  # (n_steps,) object: Binding at ac_hi
    where: np.ndarray  # (n_steps,) object: element name
    done: bool = False


class OrderStatisticSearch:
    """Exact AC answers at chosen steps, all directions and steps in one batched bisection.

    Parameters
    ----------
    study : HostingCapacityStudy
        The feeder's study object (AC solver, limits, element names).
    p, q : numpy.ndarray (n_steps, n_bus)
        Base injection of every step [MW, Mvar].
    base : Flows
        AC flows of every step without the addition.
    directions : numpy.ndarray (n_dir, n_bus)
        Added injection per MW of size.
    q_per_p : float
        Reactive power of the added units per MW [Mvar/MW].
    tol, cap : float
        Bisection tolerance and largest size searched [MW].
    verify_factor : float, keyword-only
        Steps whose screened size is within this factor of an answer are checked in AC.
    """

    def __init__(
        self, study, p, q, base: Flows, directions, q_per_p, tol, cap, *, verify_factor=2.0
    ) -> None:
        self.study = study
        self.p, self.q, self.base = p, q, base
        self.directions = directions
        self.q_per_p = q_per_p
        self.tol, self.cap = tol, cap
        self.n_cases = 0
        self.verify_factor = float(verify_factor)

    def _cases(self, dirs: np.ndarray, steps: np.ndarray) -> tuple[Cases, Any]:
        cases = Cases(
            self.p[steps],
            self.q[steps],
            Injection(self.directions[dirs], q_per_p=self.q_per_p),
        )
        return cases, base_state(self.base.take(steps), self.study.limits)

    def bisect(self, dirs, steps, screen_mw):
        """AC bisection of the (direction, step) cases from the screened bracket."""
        dirs, steps = np.asarray(dirs, dtype=int), np.asarray(steps, dtype=int)
        self.n_cases += len(dirs)
        cases, base = self._cases(dirs, steps)
        s = np.where(np.isfinite(screen_mw), np.minimum(screen_mw, self.cap), 0.5 * self.cap)
        out = bisect(
            self.study.ac,
            cases,
            base,
            self.study.limits,
            lower_mw=np.maximum(0.0, 0.9 * s - self.tol),
            upper_mw=np.minimum(self.cap, 1.1 * s + self.tol),
            tolerance_mw=self.tol,
            cap_mw=self.cap,
        )
        where = [
            self.study.where(self.study.ac, e, pos)
            for e, pos in zip(out.element, out.position, strict=True)
        ]
        return out.hosting_capacity_mw, out.upper_mw, out.binding, np.array(where, dtype=object)

    def feasible(self, dirs, steps, size_mw) -> np.ndarray:
        """Whether each (direction, step) case holds at its size (one batched AC call)."""
        dirs, steps = np.asarray(dirs, dtype=int), np.asarray(steps, dtype=int)
        if not len(dirs):
            return np.zeros(0, dtype=bool)
        size_mw = np.asarray(size_mw, dtype=float)
        out = np.zeros(len(dirs), dtype=bool)
        for start in range(0, len(dirs), _VERIFY_CHUNK):
            rows = slice(start, start + _VERIFY_CHUNK)
            cases, base = self._cases(dirs[rows], steps[rows])
            result, _ = evaluate(self.study.ac, cases, base, self.study.limits, size_mw[rows])
            out[rows] = result.feasible
        return out

    def at_step(self, step: int, screen_mw: np.ndarray) -> list[tuple[float, Binding]]:
        """The snapshot answer of every direction at one step."""
        n_dir = self.directions.shape[0]
        lo, _, binding, _ = self.bisect(np.arange(n_dir), np.full(n_dir, step), screen_mw)
        return [(float(lo[d]), binding[d]) for d in range(n_dir)]

    def order_statistic(self, screen: np.ndarray, percentile: float, margin: float) -> list[dict]:
        """The exact answer of every direction at the percentile (see the module docstring)."""
        n_steps, n_dir = screen.shape
        need = min(n_steps, max(1, math.ceil(percentile / 100.0 * n_steps - 1e-9)))
        kk = n_steps - need  # position of the answer among the sorted per-step sizes
        stages = []
        for d in range(n_dir):
            s = np.minimum(screen[:, d], self.cap)
            no_screen = ~np.isfinite(screen[:, d]) & np.isnan(screen[:, d])
            stages.append(
                _Stage(
                    screen_mw=np.where(np.isnan(s), np.inf, s),
                    margin=margin,
                    forced=no_screen.copy(),
                    ac_lo=np.full(n_steps, np.nan),
                    ac_hi=np.full(n_steps, np.nan),
                    binding=np.full(n_steps, Binding.NONE, dtype=object),
                    where=np.full(n_steps, "", dtype=object),
                )
            )
        answers: list[dict | None] = [None] * n_dir
        for round_ in range(_MAX_ROUNDS + 1):
            last = round_ == _MAX_ROUNDS
            # 1. bisect the band of every direction not yet answered
            todo_d, todo_t = [], []
            for d, st in enumerate(stages):
                if st.done:
                    continue
                band = _band(st, kk) | st.forced
                if last:
                    band[:] = True
                new = np.flatnonzero(band & np.isnan(st.ac_lo))
                todo_d.extend([d] * len(new))
                todo_t.extend(new.tolist())
            if todo_d:
                todo_d_arr, todo_t_arr = np.array(todo_d), np.array(todo_t)
                scr = np.array(
                    [stages[d].screen_mw[t] for d, t in zip(todo_d, todo_t, strict=True)]
                )
                lo, hi, binding, where = self.bisect(todo_d_arr, todo_t_arr, scr)
                for j, (d, t) in enumerate(zip(todo_d, todo_t, strict=True)):
                    st = stages[d]
                    st.ac_lo[t], st.ac_hi[t] = lo[j], hi[j]
                    st.binding[t], st.where[t] = binding[j], where[j]
            # 2. the order statistic of each direction, and what must be verified
            check_d, check_t, check_size, check_expect = [], [], [], []
            pending = {}
            for d, st in enumerate(stages):
                if st.done:
                    continue
                known = ~np.isnan(st.ac_lo)
                values = np.where(
                    known, st.ac_lo, np.where(st.screen_mw < _band_lo(st, kk), -np.inf, np.inf)
                )
                order = np.argsort(values, kind="stable")
                step = int(order[kk])
                if not np.isfinite(values[step]) or not known[step]:
                    st.margin *= 2.0  # the band missed the answer: widen it
                    continue
                hc = float(st.ac_lo[step])
                hi = float(st.ac_hi[step])
                pending[d] = (step, hc, hi)
                if known.all():
                    continue
                # the screen decides nothing on its own, but a step whose screened size is
                # beyond verify_factor of the answer (a 100 % screen error) is not re-solved
                near = (st.screen_mw <= self.verify_factor * hc + self.tol) & (
                    st.screen_mw >= hc / self.verify_factor - self.tol
                )
                above = np.flatnonzero(~known & (values > hc) & near)
                below = np.flatnonzero(~known & (values < hc) & near)
                if np.isfinite(hi):
                    check_d += [d] * (len(above) + len(below))
                    check_t += above.tolist() + below.tolist()
                    check_size += [hc] * len(above) + [hi] * len(below)
                    check_expect += [True] * len(above) + [False] * len(below)
                else:
                    # nothing binds up to the cap at the answer step: the steps above must
                    # hold at the cap too
                    check_d += [d] * len(above)
                    check_t += above.tolist()
                    check_size += [hc] * len(above)
                    check_expect += [True] * len(above)
                    st.forced[below] = True
            # 3. verification: a misplaced step joins the band
            ok = self.feasible(check_d, check_t, check_size)
            wrong = ok != np.array(check_expect, dtype=bool)
            for d, t in zip(np.array(check_d)[wrong], np.array(check_t)[wrong], strict=True):
                stages[int(d)].forced[int(t)] = True
            for d, (step, hc, hi) in pending.items():
                st = stages[d]
                if st.forced[np.isnan(st.ac_lo)].any():
                    continue
                st.done = True
                answers[d] = self._answer(st, step, hc, hi, kk)
            if all(st.done for st in stages):
                break
        missing = [d for d, a in enumerate(answers) if a is None]
        if missing:  # cannot happen: the last round bisects every step
            raise ConvergenceError(
                f"time-series hosting capacity unresolved for {len(missing)} buses"
            )
        return answers  # type: ignore[return-value]

    def _answer(self, st: _Stage, step: int, hc: float, hi: float, kk: int) -> dict:
        known = ~np.isnan(st.ac_lo)
        lower = _band_lo(st, kk)
        # steps violated just above the answer: known ones whose verified failure is at or below
        # ``hi``, and the (verified) steps below the band
        violated = np.where(known, st.ac_hi <= hi * (1 + 1e-12), st.screen_mw < lower)
        if not np.isfinite(hi):
            violated = np.zeros_like(violated)
        first = int(np.flatnonzero(violated)[0]) if violated.any() else None
        binding = st.binding[step] if np.isfinite(hi) else Binding.NONE
        return {
            "hc": hc,
            "step": step,
            "binding": binding,
            "where": st.where[step] if np.isfinite(hi) else "",
            "first_step": first,
            "n_violating": int(violated.sum()),
            "screen": float(np.sort(st.screen_mw)[kk]),
        }


def _band_lo(st: _Stage, kk: int) -> float:
    s_k = float(np.sort(st.screen_mw)[kk])
    return s_k * (1.0 - st.margin) if np.isfinite(s_k) else np.inf


def _band(st: _Stage, kk: int) -> np.ndarray:
    """Steps whose screened size lies within the margin of the screened order statistic."""
    s_k = float(np.sort(st.screen_mw)[kk])
    if not np.isfinite(s_k):
        return st.screen_mw >= s_k
    lo = s_k * (1.0 - st.margin)
    hi = s_k * (1.0 + st.margin)
    return (st.screen_mw >= lo) & (st.screen_mw <= hi) | (st.margin > 10.0)
