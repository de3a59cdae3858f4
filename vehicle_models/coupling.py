"""The one coupled step of a frequency-responsive fleet and a swing model.

Every time loop that couples a fleet (or any frequency responder) to the swing model of
:mod:`grids.frequency` steps through :func:`coupled_step`, so the order of operations exists
once. In each step ``[t_k, t_k+1)`` of length ``dt``:

1. **events at the step start**: the caller passes the event input ``ΔP_event(t_k)`` (the sum
   of every event with ``t_s <= t_k``, :func:`event_imbalance_mw`), held over the step;
2. **the measurement**: a grid-following responder is given the swing model's frequency at
   the start of the step, ``f(t_k)``; a grid-forming one (a VSM, which reacts to the grid
   voltage's angle without a measurement) the frequency a copy of the swing model predicts
   for ``t_k+1`` with ``ΔP_event(t_k)`` and the responder's previous injection change
   (:func:`frequency_seen_hz`, a predictor step);
3. **the fleet**: the responder is stepped once over ``[t_k, t_k+1)`` with that frequency
   and reports its injection change ``ΔP_fleet`` [MW] as seen by the swing model (the change
   since its reference, :class:`InjectionChange`);
4. **the swing model** advances over ``[t_k, t_k+1)`` with the constant input
   ``ΔP_event(t_k) + ΔP_fleet`` (exact zero-order hold), giving ``f(t_k+1)``.

The mosaik co-simulation uses the same pieces across two simulators (the fleet steps with
the frequency it received, the frequency simulator forms the input with
:class:`InjectionChange` and :func:`swing_input_mw` and advances the swing model); its
``time_shifted`` frequency connection hands the fleet ``f(t_k-1)`` instead of ``f(t_k)``, one
step of measurement delay more than the direct loop (``docs/contingency.md``); a direct loop
reproduces that order with ``coupled_step(..., f_measured_hz=f(t_k-1))``.

References
----------
.. [1] P. Kundur, "Power System Stability and Control", McGraw-Hill, 1994, ch. 11.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import NamedTuple, Protocol

from grids.errors import SimulationError
from grids.frequency import SwingModel


class FrequencyResponder(Protocol):
    """What :func:`coupled_step` steps: a fleet (or a user's controller) seen from the grid.

    Attributes
    ----------
    grid_forming : bool
        True if the responder sees the predicted end-of-step frequency (a VSM).
    last_delta_mw : float
        Its injection change over the last step, as seen by the swing model [MW]
        (positive: more generation).
    """

    grid_forming: bool
    last_delta_mw: float

    def step(self, *, t_s: float, dt_s: float, f_hz: float) -> None:
        """Advance over ``[t_s, t_s + dt_s)`` seeing one frequency.

        Parameters
        ----------
        t_s : float
            Start of the step [s].
        dt_s : float
            Step length [s].
        f_hz : float
            Frequency the responder measures over the step [Hz].
        """


class CoupledStepResult(NamedTuple):
    """What one :func:`coupled_step` did.

    Attributes
    ----------
    f_seen_hz : float
        Frequency given to the responder [Hz].
    p_fleet_delta_mw : float
        The responder's injection change over the step [MW] (0 without a responder).
    p_imbalance_mw : float
        The swing model's constant input over the step, ``p_event_mw + p_fleet_delta_mw`` [MW].
    f_hz : float
        Frequency at the end of the step [Hz].
    """

    f_seen_hz: float
    p_fleet_delta_mw: float
    p_imbalance_mw: float
    f_hz: float


class InjectionChange:
    """A fleet's injection as the swing model sees it: the change since a reference, scaled.

    The swing equation takes injection *changes*: the fleet's scheduled power is balanced by
    the bulk system's dispatch on the slow time scale. The reference is the first power
    given after construction or :meth:`rebase`.

    Parameters
    ----------
    replicas : float
        Number of identical feeders the simulated fleet stands for [-] (the change is
        multiplied by it).

    Examples
    --------
    >>> change = InjectionChange(replicas=10.0)
    >>> change(1.5), change(1.7) == 10.0 * (1.7 - 1.5)
    (0.0, True)
    """

    def __init__(self, *, replicas: float = 1.0) -> None:
        self.replicas = float(replicas)
        self.p_ref_mw: float | None = None

    def __call__(self, p_mw: float) -> float:
        """The change of ``p_mw`` [MW] since the reference, times ``replicas`` [MW]."""
        p_mw = float(p_mw)
        if self.p_ref_mw is None:
            self.p_ref_mw = p_mw
        return self.replicas * (p_mw - self.p_ref_mw)

    def rebase(self) -> None:
        """Take the next power given as the new reference (a window start, a switch)."""
        self.p_ref_mw = None


def event_imbalance_mw(
    t_event_s: Sequence[float], p_event_mw: Sequence[float], t_s: float, *, eps_s: float = 0.0
) -> float:
    """Event input at ``t_s``: the sum of every event with ``t_event_s <= t_s + eps_s``.

    Parameters
    ----------
    t_event_s : sequence of float
        Event instants [s].
    p_event_mw : sequence of float
        Each event's injection change [MW] (a generation loss of 500 MW is -500).
    t_s : float
        Start of the step [s].
    eps_s : float
        Tolerance for an event exactly at a step boundary [s].

    Returns
    -------
    float
        The event input held over the step starting at ``t_s`` [MW].
    """
    t_lim_s = t_s + eps_s
    return float(sum(p for t, p in zip(t_event_s, p_event_mw, strict=True) if t <= t_lim_s))


def swing_input_mw(p_event_mw: float, p_fleet_delta_mw: float) -> float:
    """The swing model's input over a step: events plus the fleet's change [MW].

    Parameters
    ----------
    p_event_mw : float
        Event input held over the step [MW].
    p_fleet_delta_mw : float
        The fleet's injection change over the step [MW].

    Returns
    -------
    float
        ``p_event_mw + p_fleet_delta_mw`` [MW].
    """
    return float(p_event_mw) + float(p_fleet_delta_mw)


def frequency_seen_hz(
    swing: SwingModel,
    *,
    dt_s: float,
    grid_forming: bool,
    p_event_mw: float = 0.0,
    p_fleet_prev_mw: float = 0.0,
) -> float:
    """The frequency a responder is given for the step starting now.

    Parameters
    ----------
    swing : SwingModel
        The swing model at the start of the step (not advanced here).
    dt_s : float
        Step [s].
    grid_forming : bool
        False: the frequency now, ``f(t_k)``. True: the frequency a copy of ``swing`` reaches
        at ``t_k+1`` with the input ``p_event_mw + p_fleet_prev_mw`` (predictor step).
    p_event_mw : float
        Event input over the step [MW].
    p_fleet_prev_mw : float
        The responder's injection change over the previous step [MW].

    Returns
    -------
    float
        Frequency [Hz].
    """
    if not grid_forming:
        return swing.f_hz
    probe = copy.deepcopy(swing)
    probe.step(dt_s=dt_s, p_imbalance_mw=swing_input_mw(p_event_mw, p_fleet_prev_mw))
    return probe.f_hz


def coupled_step(
    swing: SwingModel,
    responder: FrequencyResponder | None,
    *,
    t_s: float,
    dt_s: float,
    p_event_mw: float,
    f_measured_hz: float | None = None,
) -> CoupledStepResult:
    """Advance a responder and the swing model together over ``[t_s, t_s + dt_s)``.

    Order of operations: the frequency the responder sees (:func:`frequency_seen_hz`), the
    responder's step, then the swing model's step with ``p_event_mw`` plus the responder's
    injection change (module docstring).

    Parameters
    ----------
    swing : SwingModel
        Swing model at ``t_s``; advanced to ``t_s + dt_s`` in place.
    responder : FrequencyResponder or None
        The fleet (stepped in place), or None for the grid alone.
    t_s : float
        Start of the step [s].
    dt_s : float
        Step [s].
    p_event_mw : float
        Event input held over the step [MW] (:func:`event_imbalance_mw`).
    f_measured_hz : float, optional
        A frequency measured elsewhere [Hz], given to the responder instead of
        :func:`frequency_seen_hz` (e.g. ``f(t_k-1)``: the mosaik path's time-shifted
        connection, one step of measurement delay).

    Returns
    -------
    CoupledStepResult

    Raises
    ------
    SimulationError
        The responder returned a non-finite injection.

    Examples
    --------
    >>> from grids.frequency import SwingModel, SwingParameters
    >>> swing = SwingModel(SwingParameters())
    >>> out = coupled_step(swing, None, t_s=0.0, dt_s=0.02, p_event_mw=-500.0)
    >>> out.f_hz < out.f_seen_hz == 60.0
    True
    """
    p_fleet_mw = 0.0
    if f_measured_hz is not None:
        f_seen = float(f_measured_hz)
    elif responder is None:
        f_seen = swing.f_hz
    else:
        f_seen = frequency_seen_hz(
            swing,
            dt_s=dt_s,
            grid_forming=bool(responder.grid_forming),
            p_event_mw=p_event_mw,
            p_fleet_prev_mw=responder.last_delta_mw,
        )
    if responder is not None:
        responder.step(t_s=t_s, dt_s=dt_s, f_hz=f_seen)
        p_fleet_mw = float(responder.last_delta_mw)
        if not math.isfinite(p_fleet_mw):
            raise SimulationError(
                f"the fleet returned a non-finite injection at t = {t_s:.3f} s (after the "
                "start of the run)"
            )
    u_mw = p_event_mw + p_fleet_mw  # swing_input_mw, inlined: this is the hot path
    swing.step(dt_s=dt_s, p_imbalance_mw=u_mw)
    return CoupledStepResult(f_seen, p_fleet_mw, u_mw, swing.f_hz)


__all__ = [
    "CoupledStepResult",
    "FrequencyResponder",
    "InjectionChange",
    "coupled_step",
    "event_imbalance_mw",
    "frequency_seen_hz",
    "swing_input_mw",
]
