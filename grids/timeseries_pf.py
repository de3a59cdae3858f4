"""Quasi-static time-series power flow: a feeder solved at every step of its profiles.

:func:`solve_time_series` runs :meth:`grids.feeder_model.FeederModel.solve` over
:class:`grids.profiles_year.FeederProfiles` in chunks of steps (bounded memory), each chunk one
batched call. Chunks are a whole number of days by default, so the warm start of step ``k`` of a
chunk is the solution at the same time of day one chunk earlier (the AC solver keeps the
previous call's solution per scenario when the batch size repeats). Every step is an
independent power flow (no controller state), which is what pandapower's ``run_timeseries``
does with ``ConstControl`` profiles; the solution of each step equals ``runpp`` on the net with
that step's injections (1e-6 pu, tests/grids/test_timeseries_pf.py).

Examples
--------
>>> import numpy as np, pandas as pd
>>> from grids.feeder_model import FeederModel
>>> from grids.profiles_year import FeederProfiles
>>> from grids.timeseries_pf import solve_time_series
>>> model = FeederModel.from_name("case33bw")
>>> time = pd.date_range("2016-01-01", periods=96, freq="15min")
>>> profiles = FeederProfiles.from_model_base(model, time, np.linspace(0.4, 1.0, 96))
>>> result = solve_time_series(model, profiles)
>>> result.vm_pu.shape, bool(result.converged.all())
((96, 33), True)
>>> round(float(result.vm_min_pu.min()), 4)
0.9131
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from grids.errors import ConvergenceError, ScenarioError, check_problems
from grids.feeder_model import FeederModel, SolveMethod
from grids.profiles_year import FeederProfiles

#: Default chunk: two weeks of steps (a whole number of days, so that per-step warm starts come
#: from the same time of day; 1,344 quarter hours, about 15 MB of work arrays per 100 buses).
DEFAULT_CHUNK_DAYS = 14

#: ``response(rows, vm_pu) -> (p_mw, q_mvar)``: voltage-dependent injections of one chunk.
Response = Callable[[slice, np.ndarray], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class TimeSeriesResult:
    """Voltages and loadings of a feeder at every step of its profiles.

    Attributes
    ----------
    method : SolveMethod
        The solver.
    time : pandas.DatetimeIndex (n_steps,)
        Step starts (from the profiles).
    step_s : float
        Step length [s].
    bus, line, trafo : numpy.ndarray of int
        pandapower indices: the column order of the arrays.
    vm_pu : numpy.ndarray (n_steps, n_bus)
        Voltage magnitude [pu]; NaN at dead buses and at steps that did not converge.
    line_loading_percent : numpy.ndarray (n_steps, n_line)
        Current over rating [%]; NaN for unrated lines.
    trafo_loading_percent : numpy.ndarray (n_steps, n_trafo)
        Transformer loading [%].
    p_slack_mw, q_slack_mvar, p_loss_mw : numpy.ndarray (n_steps,)
        Power from the external grids and series losses [MW, Mvar, MW].
    converged : numpy.ndarray (n_steps,) of bool
    iterations : numpy.ndarray (n_steps,) of int
    dead_bus : numpy.ndarray (n_bus,) of bool
        Buses connected to no external grid.
    response_p_mw, response_q_mvar : numpy.ndarray (n_steps, n_bus) or None
        With a ``response``: its injections at the fixed point [MW, Mvar] (part of the
        solved injections).
    response_iterations : numpy.ndarray (n_steps,) of int or None
        Power flows solved for the step's chunk until the fixed point held.
    response_converged : numpy.ndarray (n_steps,) of bool or None
        Whether the step's voltages changed by less than the tolerance in the last iteration.
    """

    method: SolveMethod
    time: pd.DatetimeIndex
    step_s: float
    bus: np.ndarray
    line: np.ndarray
    trafo: np.ndarray
    vm_pu: np.ndarray
    line_loading_percent: np.ndarray
    trafo_loading_percent: np.ndarray
    p_slack_mw: np.ndarray
    q_slack_mvar: np.ndarray
    p_loss_mw: np.ndarray
    converged: np.ndarray
    iterations: np.ndarray
    dead_bus: np.ndarray
    response_p_mw: np.ndarray | None = None
    response_q_mvar: np.ndarray | None = None
    response_iterations: np.ndarray | None = None
    response_converged: np.ndarray | None = None

    @property
    def n_steps(self) -> int:
        """Number of time steps."""
        return int(self.vm_pu.shape[0])

    @property
    def vm_min_pu(self) -> np.ndarray:
        """Lowest voltage over the energized buses per step [pu], shape ``(n_steps,)``."""
        return np.min(self.vm_pu[:, ~self.dead_bus], axis=1, initial=np.inf)

    @property
    def vm_max_pu(self) -> np.ndarray:
        """Highest voltage over the energized buses per step [pu], shape ``(n_steps,)``."""
        return np.max(self.vm_pu[:, ~self.dead_bus], axis=1, initial=-np.inf)

    @property
    def max_line_loading_percent(self) -> np.ndarray:
        """Highest loading over the rated lines per step [%]; NaN when no line is rated."""
        return _nanmax_rows(self.line_loading_percent)

    @property
    def max_trafo_loading_percent(self) -> np.ndarray:
        """Highest loading over the transformers per step [%]; NaN without any."""
        return _nanmax_rows(self.trafo_loading_percent)

    @property
    def energy_loss_mwh(self) -> float:
        """Series losses over the run ``sum(p_loss_mw) * step_s / 3600`` [MWh]."""
        return float(np.nansum(self.p_loss_mw) * self.step_s / 3600.0)

    def raise_if_failed(self, *, label: str = "time-series power flow") -> None:
        """Raise :class:`ConvergenceError` naming the first step that did not converge.

        Parameters
        ----------
        label : str, keyword-only
            Start of the message.

        Raises
        ------
        ConvergenceError
            With ``index`` set to the step.
        """
        failed = np.flatnonzero(~self.converged)
        if len(failed):
            first = int(failed[0])
            raise ConvergenceError(
                f"{label} did not converge at step {first} ({self.time[first]}); "
                f"{len(failed)} of {self.n_steps} steps failed",
                index=first,
            )


def _nanmax_rows(values: np.ndarray) -> np.ndarray:
    out = np.full(values.shape[0], np.nan)
    if values.shape[1]:
        finite = np.isfinite(values)
        rows = finite.any(axis=1)
        out[rows] = np.max(np.where(finite, values, -np.inf)[rows], axis=1)
    return out


def solve_time_series(
    model: FeederModel,
    profiles: FeederProfiles,
    *,
    method: SolveMethod = SolveMethod.AC,
    chunk_steps: int | None = None,
    extra_p_mw: np.ndarray | None = None,
    extra_q_mvar: np.ndarray | None = None,
    progress: Callable[[int, int], None] | None = None,
    response: Response | None = None,
    response_tolerance_pu: float = 1e-6,
    response_max_iterations: int = 50,
    response_relaxation: float = 1.0,
) -> TimeSeriesResult:
    """Solve the power flow at every step of ``profiles``, in batched chunks.

    Step ``k`` is ``model.solve(p_mw[k] + extra_p_mw[k], q_mvar[k] + extra_q_mvar[k])``.

    Parameters
    ----------
    model : FeederModel
        The feeder.
    profiles : FeederProfiles
        Net injection per bus and step (columns in ``model.bus`` order).
    method : SolveMethod, keyword-only
        ``AC`` (Newton-Raphson, the ``runpp`` solution) or ``LINDISTFLOW`` (radial, linear).
    chunk_steps : int or None, keyword-only
        Steps solved in one batched call (bounds memory: about ``chunk_steps * n_bus * 100``
        bytes of solver work arrays); default :data:`DEFAULT_CHUNK_DAYS` days of steps. A
        multiple of the steps per day keeps warm starts at the same time of day.
    extra_p_mw, extra_q_mvar : numpy.ndarray (n_steps, n_bus) or (n_bus,) or None, keyword-only
        Injections added to the profiles [MW, Mvar] (e.g. a V2G fleet), injection positive.
    progress : callable or None, keyword-only
        Called as ``progress(steps_done, n_steps)`` after every chunk.
    response : callable or None, keyword-only
        Voltage-dependent injections (inverter controls such as volt-var), solved as a fixed
        point per chunk: ``response(rows, vm_pu) -> (p_mw, q_mvar)`` gets the chunk's step
        slice and its voltages (n_chunk, n_bus) [pu, 0 at dead buses] and returns the
        injections (n_chunk, n_bus) [MW, Mvar] added at those voltages. Iterated
        ``x <- x + relaxation * (response(v(x)) - x)`` from zero until no voltage of the chunk
        changes by more than ``response_tolerance_pu``.
    response_tolerance_pu : float, keyword-only
        Fixed-point tolerance on every voltage [pu].
    response_max_iterations : int, keyword-only
        Most power flows per chunk; steps still moving are flagged in ``response_converged``.
    response_relaxation : float, keyword-only
        Under-relaxation factor in (0, 1] for steep control curves.

    Returns
    -------
    TimeSeriesResult
        Steps that do not converge are flagged (NaN), never raised: call
        :meth:`TimeSeriesResult.raise_if_failed`.

    Raises
    ------
    ScenarioError
        Profiles for other buses than the model's, a chunk size that is not a positive
        integer, extra injections of the wrong shape.
    """
    method = SolveMethod(method)
    problems = []
    if not np.array_equal(np.asarray(profiles.bus), np.asarray(model.bus)):
        problems.append(
            f"profiles.bus: the profiles' {profiles.n_bus} buses are not the model's "
            f"{len(model.bus)} buses in the same order (build them from this model)"
        )
    if chunk_steps is not None and (
        isinstance(chunk_steps, bool) or not isinstance(chunk_steps, int) or chunk_steps < 1
    ):
        problems.append(f"chunk_steps: {chunk_steps!r} (expected an integer >= 1)")
    n_steps, n_bus = profiles.p_mw.shape
    extras = {}
    for name, extra in (("extra_p_mw", extra_p_mw), ("extra_q_mvar", extra_q_mvar)):
        if extra is None:
            continue
        extra = np.asarray(extra, dtype=float)
        if extra.shape not in {(n_bus,), (n_steps, n_bus)}:
            problems.append(
                f"{name}: shape {extra.shape} (expected ({n_bus},) or ({n_steps}, {n_bus}))"
            )
        elif not np.isfinite(extra).all():
            problems.append(f"{name}: NaN or infinite values")
        else:
            extras[name] = np.broadcast_to(extra, (n_steps, n_bus))
    if response is not None:
        if not (math.isfinite(response_tolerance_pu) and response_tolerance_pu > 0):
            problems.append(f"response_tolerance_pu: {response_tolerance_pu} (expected > 0)")
        if not (isinstance(response_max_iterations, int) and response_max_iterations >= 1):
            problems.append(f"response_max_iterations: {response_max_iterations!r} (expected >= 1)")
        if not (math.isfinite(response_relaxation) and 0 < response_relaxation <= 1):
            problems.append(f"response_relaxation: {response_relaxation} (expected 0 < r <= 1)")
    check_problems(problems, ScenarioError, "invalid time-series power flow")
    if chunk_steps is None:
        chunk_steps = DEFAULT_CHUNK_DAYS * steps_per_day(profiles.step_s)
    vm = np.full((n_steps, n_bus), np.nan)
    line = np.full((n_steps, len(model.line)), np.nan)
    trafo = np.full((n_steps, len(model.trafo)), np.nan)
    p_slack, q_slack, p_loss = (np.full(n_steps, np.nan) for _ in range(3))
    converged = np.zeros(n_steps, dtype=bool)
    iterations = np.zeros(n_steps, dtype=int)
    if response is not None:
        resp_p = np.zeros((n_steps, n_bus))
        resp_q = np.zeros((n_steps, n_bus))
        resp_iterations = np.zeros(n_steps, dtype=int)
        resp_converged = np.zeros(n_steps, dtype=bool)
    for start in range(0, n_steps, chunk_steps):
        rows = slice(start, min(start + chunk_steps, n_steps))
        p = profiles.p_mw[rows]
        q = profiles.q_mvar[rows]
        if "extra_p_mw" in extras:
            p = p + extras["extra_p_mw"][rows]
        if "extra_q_mvar" in extras:
            q = q + extras["extra_q_mvar"][rows]
        result = model.solve(p, q, method=method, warm_start=True)
        if response is not None:
            result, fixed_point = _response_fixed_point(
                model,
                method,
                rows,
                p,
                q,
                result,
                response,
                tolerance_pu=response_tolerance_pu,
                max_iterations=response_max_iterations,
                relaxation=response_relaxation,
            )
            resp_p[rows], resp_q[rows], resp_iterations[rows], resp_converged[rows] = fixed_point
        vm[rows] = result.vm_pu
        line[rows] = result.line_loading_percent
        trafo[rows] = result.trafo_loading_percent
        p_slack[rows] = result.p_slack_mw
        q_slack[rows] = result.q_slack_mvar
        p_loss[rows] = result.p_loss_mw
        converged[rows] = result.converged
        iterations[rows] = result.iterations
        if progress is not None:
            progress(rows.stop, n_steps)
    return TimeSeriesResult(
        method=method,
        time=profiles.time,
        step_s=float(profiles.step_s),
        bus=np.asarray(model.bus),
        line=np.asarray(model.line),
        trafo=np.asarray(model.trafo),
        vm_pu=vm,
        line_loading_percent=line,
        trafo_loading_percent=trafo,
        p_slack_mw=p_slack,
        q_slack_mvar=q_slack,
        p_loss_mw=p_loss,
        converged=converged,
        iterations=iterations,
        dead_bus=np.asarray(model.dead_bus),
        response_p_mw=None if response is None else resp_p,
        response_q_mvar=None if response is None else resp_q,
        response_iterations=None if response is None else resp_iterations,
        response_converged=None if response is None else resp_converged,
    )


def _response_fixed_point(
    model, method, rows, p, q, result, response, *, tolerance_pu, max_iterations, relaxation
):
    """Fixed point of voltage-dependent injections on one chunk (see ``response``)."""
    n_chunk, n_bus = p.shape
    dp = np.zeros((n_chunk, n_bus))
    dq = np.zeros((n_chunk, n_bus))
    moving = np.ones(n_chunk, dtype=bool)
    n_solves = 0
    while n_solves < max_iterations:
        n_solves += 1
        vm_before = result.vm_energized_pu()
        target_p, target_q = response(rows, vm_before)
        target_p = np.broadcast_to(np.asarray(target_p, dtype=float), (n_chunk, n_bus))
        target_q = np.broadcast_to(np.asarray(target_q, dtype=float), (n_chunk, n_bus))
        if not (np.isfinite(target_p).all() and np.isfinite(target_q).all()):
            raise ScenarioError(
                f"response: NaN or infinite injections at steps {rows.start}..{rows.stop - 1}"
            )
        dp = dp + relaxation * (target_p - dp)
        dq = dq + relaxation * (target_q - dq)
        result = model.solve(p + dp, q + dq, method=method, warm_start=True)
        change = np.abs(result.vm_energized_pu() - vm_before)
        moving = ~(np.nan_to_num(change, nan=np.inf).max(axis=1) <= tolerance_pu)
        if not moving.any():
            break
    converged = ~moving & result.converged
    return result, (dp, dq, np.full(n_chunk, n_solves), converged)


def steps_per_day(step_s: float) -> int:
    """Steps in a day of ``step_s`` seconds (for chunk sizes), at least 1.

    Parameters
    ----------
    step_s : float
        Step length [s].

    Returns
    -------
    int
        ``max(1, round(86400 / step_s))``.
    """
    if not (math.isfinite(step_s) and step_s > 0):
        raise ScenarioError(f"step_s: {step_s} (expected a finite number > 0)")
    return max(1, round(86_400.0 / step_s))
