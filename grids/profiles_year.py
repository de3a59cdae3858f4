"""Year-long injection profiles of a feeder: one table of net injection per bus and time step.

:class:`FeederProfiles` is what time-series studies consume: the TOTAL net injection per bus of
the feeder's own elements (loads, PV, storage, EV chargers) at every step, in the bus order of
:attr:`grids.feeder_model.FeederModel.bus`, injection positive (a load counts negative), so that
``model.solve(profiles.p_mw[k], profiles.q_mvar[k])`` is the feeder at step ``k``. The EV
charging part (consumption positive, already included in ``p_mw``) is kept apart so that
studies can replace it.

SimBench grids give these profiles directly (:func:`grids.simbench.simbench_profiles`);
:meth:`FeederProfiles.from_model_base` builds synthetic ones (the base injection times a
multiplier per step) for tests and for feeders without profiles.

Examples
--------
>>> import numpy as np, pandas as pd
>>> from grids.feeder_model import FeederModel
>>> from grids.profiles_year import FeederProfiles
>>> model = FeederModel.from_name("case33bw")
>>> time = pd.date_range("2016-01-01", periods=96, freq="15min")
>>> daily = 0.7 + 0.3 * np.sin(np.linspace(0, 2 * np.pi, 96))
>>> profiles = FeederProfiles.from_model_base(model, time, daily)
>>> profiles.p_mw.shape, profiles.step_s
((96, 33), 900.0)
>>> profiles.window("2016-01-01 06:00", 3 * 3600).n_steps
12
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from grids.errors import ScenarioError, check_problems


def _as_timestamp(value: Any, label: str) -> pd.Timestamp:
    if isinstance(value, pd.Timestamp):
        return value
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError):
        stamp = None
    if stamp is None or stamp is pd.NaT:
        raise ScenarioError(f"{label}: {value!r} is not a date/time (expected ISO 8601)")
    return stamp


@dataclass(frozen=True)
class FeederProfiles:
    """Net injection per bus and time step of a feeder's own elements.

    Attributes
    ----------
    time : pandas.DatetimeIndex (n_steps,)
        Start of each step (uniform spacing ``step_s`` in absolute time, so a time zone with
        daylight saving must be part of the index); the value holds until the next step.
    step_s : float
        Step length [s].
    bus : numpy.ndarray of int (n_bus,)
        pandapower bus indices: the column order (equal to the model's ``bus``).
    p_mw, q_mvar : numpy.ndarray (n_steps, n_bus)
        TOTAL net injection per bus [MW, Mvar], injection positive (loads, storage charging and
        EV charging negative; PV positive).
    ev_p_mw : numpy.ndarray (n_steps, n_bus) or None
        Charging demand of the scenario's EV loads [MW], consumption positive, already part of
        ``p_mw``; ``None`` where the feeder has no EV loads.
    source : str
        Where the profiles come from (e.g. ``simbench:1-LV-rural1--2-sw``).
    """

    time: pd.DatetimeIndex
    step_s: float
    bus: np.ndarray
    p_mw: np.ndarray
    q_mvar: np.ndarray
    ev_p_mw: np.ndarray | None = None
    source: str = field(default="")

    def __post_init__(self) -> None:
        problems: list[str] = []
        if not isinstance(self.time, pd.DatetimeIndex):
            problems.append(f"time: expected a pandas DatetimeIndex, got {type(self.time)}")
        n_steps, n_bus = len(self.time), len(self.bus)
        if n_steps == 0:
            problems.append("time: no time steps")
        if not (math.isfinite(self.step_s) and self.step_s > 0):
            problems.append(f"step_s: {self.step_s} (expected a finite number > 0)")
        elif isinstance(self.time, pd.DatetimeIndex) and n_steps > 1:
            delta_s = np.diff(self.time.asi8) / 1e9
            bad = np.flatnonzero(np.abs(delta_s - self.step_s) > 1e-6)
            if len(bad):
                k = int(bad[0])
                problems.append(
                    f"time: steps must be uniform at step_s = {self.step_s:g} s; "
                    f"{self.time[k]} -> {self.time[k + 1]} is {delta_s[k]:g} s"
                )
        arrays = {"p_mw": self.p_mw, "q_mvar": self.q_mvar}
        if self.ev_p_mw is not None:
            arrays["ev_p_mw"] = self.ev_p_mw
        for name, values in arrays.items():
            if not isinstance(values, np.ndarray) or values.shape != (n_steps, n_bus):
                shape = getattr(values, "shape", None)
                problems.append(
                    f"{name}: shape {shape} (expected (n_steps, n_bus) = ({n_steps}, {n_bus}))"
                )
            elif not np.isfinite(values).all():
                step, col = np.argwhere(~np.isfinite(values))[0]
                problems.append(
                    f"{name}: not finite at step {int(step)} ({self.time[int(step)]}), "
                    f"bus {int(self.bus[int(col)])}"
                )
        check_problems(problems, ScenarioError, "invalid feeder profiles")

    # ---- sizes -----------------------------------------------------------------------------
    @property
    def n_steps(self) -> int:
        """Number of time steps."""
        return len(self.time)

    @property
    def n_bus(self) -> int:
        """Number of buses (columns)."""
        return len(self.bus)

    @property
    def duration_s(self) -> float:
        """Covered duration ``n_steps * step_s`` [s]."""
        return self.n_steps * self.step_s

    # ---- selection -------------------------------------------------------------------------
    def window(self, start: Any = None, duration_s: float | None = None) -> FeederProfiles:
        """The steps in ``[start, start + duration_s)``.

        Parameters
        ----------
        start : str, datetime or None
            First step (ISO 8601 text or a timestamp; without a UTC offset it is a wall-clock
            time in the profiles' time zone); ``None``: the first step of the profiles.
        duration_s : float or None
            Length of the window [s], a positive multiple of nothing in particular (the steps
            whose start lies inside the window are kept); ``None``: up to the end.

        Returns
        -------
        FeederProfiles
            A new object (arrays are views where possible).

        Raises
        ------
        ScenarioError
            A start outside the profiles, a duration that is not a positive number or a
            window that runs past the end of the profiles.
        """
        first, end = self.time[0], self.time[-1] + pd.Timedelta(seconds=self.step_s)
        t0 = first if start is None else _as_timestamp(start, "start")
        if t0.tzinfo is None and first.tzinfo is not None:  # a wall-clock time of the profiles
            try:
                t0 = t0.tz_localize(first.tzinfo)
            except Exception as error:  # pytz/zoneinfo: a skipped or a repeated hour
                raise ScenarioError(
                    f"start: {t0} is not one time in {first.tzinfo} ({error}); give a UTC offset"
                ) from None
        elif t0.tzinfo is not None and first.tzinfo is None:
            raise ScenarioError(f"start: {t0} has a time zone but the profiles ({first}) have none")
        problems = []
        if not first <= t0 < end:
            problems.append(f"start: {t0} is outside the profiles ({first} to {end})")
        if duration_s is None:
            t1 = end
        elif not (
            isinstance(duration_s, int | float) and math.isfinite(duration_s) and duration_s > 0
        ):
            problems.append(f"duration_s: {duration_s!r} (expected a finite number > 0)")
            t1 = end
        else:
            t1 = t0 + pd.Timedelta(seconds=float(duration_s))
            if t1 > end:
                problems.append(
                    f"duration_s: {duration_s:g} s from {t0} runs past the end of the profiles "
                    f"({end}); at most {(end - t0).total_seconds():g} s"
                )
        check_problems(problems, ScenarioError, "invalid profile window")
        keep = np.flatnonzero((self.time >= t0) & (self.time < t1))
        if len(keep) == 0:
            raise ScenarioError(
                f"profile window {t0} + {duration_s} s holds no step (steps of {self.step_s:g} s)"
            )
        rows = slice(int(keep[0]), int(keep[-1]) + 1)
        return FeederProfiles(
            time=self.time[rows],
            step_s=self.step_s,
            bus=self.bus,
            p_mw=self.p_mw[rows],
            q_mvar=self.q_mvar[rows],
            ev_p_mw=None if self.ev_p_mw is None else self.ev_p_mw[rows],
            source=self.source,
        )

    def without_ev(self) -> FeederProfiles:
        """The profiles without the EV loads' charging (for a fleet that stands in for them).

        The injection becomes ``p_mw + ev_p_mw`` (the demand, consumption positive, comes out;
        SimBench's EV loads have no reactive profile, so ``q_mvar`` is unchanged).

        Returns
        -------
        FeederProfiles
            A copy with ``ev_p_mw`` None; this object itself when it has no EV loads.
        """
        if self.ev_p_mw is None:
            return self
        return FeederProfiles(
            time=self.time,
            step_s=self.step_s,
            bus=self.bus,
            p_mw=self.p_mw + self.ev_p_mw,
            q_mvar=self.q_mvar,
            ev_p_mw=None,
            source=self.source,
        )

    # ---- construction ----------------------------------------------------------------------
    @classmethod
    def from_model_base(
        cls,
        model,
        time: pd.DatetimeIndex,
        mult,
        *,
        q_mult=None,
        source: str = "synthetic",
    ) -> FeederProfiles:
        """Synthetic profiles: the model's base injection times a multiplier per step.

        ``p_mw[k] = mult[k] * p_base`` (and ``q_mvar[k] = q_mult[k] * q_base``), the load
        shape of an OpenDSS ``LoadShape`` applied to every element of the net at once.

        Parameters
        ----------
        model : FeederModel
            The feeder (its ``bus`` and ``base_injection()``).
        time : pandas.DatetimeIndex (n_steps,)
            Uniformly spaced step starts (at least two, or one with ``freq`` set).
        mult : array_like (n_steps,) or (n_steps, n_bus)
            Multiplier on the base active injection [-], per step or per step and bus.
        q_mult : array_like or None, keyword-only
            Multiplier on the base reactive injection [-]; default ``mult``.
        source : str, keyword-only
            Label.

        Returns
        -------
        FeederProfiles
            Without EV loads (``ev_p_mw`` is None).
        """
        time = pd.DatetimeIndex(time)
        if len(time) > 1:
            step_s = float((time[1] - time[0]).total_seconds())
        elif time.freq is not None:
            step_s = float(pd.Timedelta(time.freq).total_seconds())
        else:
            raise ScenarioError("time: one step without a frequency: the step length is unknown")
        p0, q0 = model.base_injection()
        m_p = np.asarray(mult, dtype=float)
        m_q = m_p if q_mult is None else np.asarray(q_mult, dtype=float)
        shapes_ok = all(m.shape in {(len(time),), (len(time), len(p0))} for m in (m_p, m_q))
        if not shapes_ok:
            raise ScenarioError(
                f"mult: shapes {m_p.shape} and {m_q.shape} (expected ({len(time)},) or "
                f"({len(time)}, {len(p0)}))"
            )
        if m_p.ndim == 1:
            m_p = m_p[:, None]
        if m_q.ndim == 1:
            m_q = m_q[:, None]
        return cls(
            time=time,
            step_s=step_s,
            bus=np.asarray(model.bus, dtype=np.int64),
            p_mw=m_p * p0[None, :],
            q_mvar=m_q * q0[None, :],
            ev_p_mw=None,
            source=source,
        )
