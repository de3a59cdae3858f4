"""Voltage-regulator tap control (OpenDSS RegControl) around the three-phase engine.

Each regulator watches one phase of its transformer winding through a potential transformer
and, with line-drop compensation, the winding current through a current transformer
(OpenDSS ``RegControl.pas``, ``Sample``):

    V_c = V_w / PT + (R + j X) I_w / CT            (on the 120 V base; I_w into the terminal)

and asks for a tap change when ``|V_reg - |V_c|| > band / 2``:

    boost = (V_reg - |V_c|) PT / V_base,w           (pu of the winding),
    pending = round(boost / step) step.

Two drivers:

* :func:`solve_with_regulator_control` is OpenDSS's static control mode (a snapshot): solve,
  sample, let the regulators with the shortest delay act (70 % of the pending change, at least
  one step, at most ``maxtapchange`` steps), re-solve, until every regulator is in band;
* :class:`RegulatorTapController` is OpenDSS's time-driven mode for quasi-static runs: a
  regulator out of band is armed for ``delay`` seconds, then moves one tap at the first step
  that reaches that time and re-arms for ``tapdelay``; taps moved at a step act at that step
  (re-solved). ``Y`` changes by the regulator transformer's ``Yprim`` difference
  (:meth:`grids.feeder3ph.ThreePhaseFeederModel.set_regulator_taps`).

Reverse-power modes, voltage limits (``vlimit``), remote (``bus=``) regulation and the
Beckwith ``LDC_Z`` mode are not modelled.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from grids.errors import ScenarioError
from grids.feeder3ph import ThreePhaseFeederModel
from grids.opendss_regulators import DssRegulator
from grids.result3ph import ThreePhaseResult


@dataclass(frozen=True)
class RegulatorState:
    """What each regulator sees in one solved scenario.

    Attributes
    ----------
    names : tuple of str
        RegControl names (columns).
    v_control_v : numpy.ndarray (n_reg,)
        ``|V_c|`` on the 120 V base [V].
    pending_pu : numpy.ndarray (n_reg,)
        Tap change asked for [pu] (0 in band or at the tap limit in that direction).
    out_of_band : numpy.ndarray (n_reg,) of bool
        ``|V_reg - |V_c|| > band / 2``.
    asked_pu : numpy.ndarray (n_reg,)
        The change asked for out of band, also at a tap limit [pu].
    """

    names: tuple[str, ...]
    v_control_v: np.ndarray
    pending_pu: np.ndarray
    out_of_band: np.ndarray
    asked_pu: np.ndarray


@dataclass(frozen=True)
class ControlledSolve:
    """Result of :func:`solve_with_regulator_control`.

    Attributes
    ----------
    result : ThreePhaseResult
        The last solve (taps as in :attr:`taps`).
    taps : dict of str to float
        Final tap per regulator [pu].
    control_iterations : int
        Solves done.
    settled : bool
        Every regulator in band (or at its limit) at the end.
    """

    result: ThreePhaseResult
    taps: dict[str, float]
    control_iterations: int
    settled: bool


def regulator_step_pu(reg: DssRegulator) -> float:
    """One tap step of a regulator.

    Parameters
    ----------
    reg : DssRegulator
        The regulator (its tap range and number of taps, as in OpenDSS).

    Returns
    -------
    float
        ``(max_tap - min_tap) / num_taps`` [pu].
    """
    return (reg.max_tap_pu - reg.min_tap_pu) / max(reg.num_taps, 1)


def regulator_state(
    model: ThreePhaseFeederModel, result: ThreePhaseResult, *, scenario: int = 0
) -> RegulatorState:
    """Control voltage and pending tap change of every regulator in one scenario.

    Parameters
    ----------
    model : ThreePhaseFeederModel
        The feeder (its present taps).
    result : ThreePhaseResult
        A solve of that feeder at those taps.
    scenario : int, keyword-only
        Row of the result.

    Returns
    -------
    RegulatorState
        ``V_c = V_w / PT + (R + jX) I_w / CT`` [V on 120 V base] and the pending change
        ``round((V_reg - |V_c|) PT / V_base,w / step) step`` [pu] outside the band.
    """
    taps = model.regulator_taps
    v = result.v_v[scenario]
    names, v_c, pending, out, asked = [], [], [], [], []
    for reg in model.circuit.regulators:
        idx = model.circuit_node_to_model(reg.node_index)
        v_term = np.where(idx >= 0, v[np.maximum(idx, 0)], 0.0)
        k = (reg.winding - 1) * reg.n_conds
        ph = reg.pt_phase - 1
        if reg.winding_delta:
            v_w = v_term[k + ph] - v_term[k + (ph + 1) % reg.n_phases]
        else:
            neutral = v_term[k + reg.n_phases] if reg.n_conds > reg.n_phases else 0.0
            v_w = v_term[k + ph] - neutral
        control = v_w / reg.pt_ratio
        if reg.r_v or reg.x_v:
            position = int(np.argmin(np.abs(reg.positions_pu - taps[reg.name])))
            current = (reg.yprims[position] @ v_term)[k + ph]  # into the terminal
            control = control + complex(reg.r_v, reg.x_v) * current / reg.ct_primary_a
        v_actual = abs(control)
        step = regulator_step_pu(reg)
        change = 0.0
        outside = abs(reg.vreg_v - v_actual) > reg.band_v / 2.0
        if outside:
            boost = (reg.vreg_v - v_actual) * reg.pt_ratio / reg.winding_v_base_v
            change = round(boost / step) * step
        asked.append(change)
        if not _can_move(reg, taps[reg.name], change):
            change = 0.0
        names.append(reg.name)
        v_c.append(v_actual)
        pending.append(change)
        out.append(outside)
    return RegulatorState(
        tuple(names), np.array(v_c), np.array(pending), np.array(out, dtype=bool), np.array(asked)
    )


def _can_move(reg: DssRegulator, tap: float, change: float) -> bool:
    """Whether a change of that sign is possible from ``tap`` (OpenDSS's limit check)."""
    if change > 0:
        return tap < reg.max_tap_pu - 1e-9
    if change < 0:
        return tap > reg.min_tap_pu + 1e-9
    return False


def _clip_tap(reg: DssRegulator, tap: float) -> float:
    step = regulator_step_pu(reg)
    k = round((min(max(tap, reg.min_tap_pu), reg.max_tap_pu) - reg.min_tap_pu) / step)
    return round(float(reg.positions_pu[int(k)]), 10)


def solve_with_regulator_control(
    model: ThreePhaseFeederModel, *, max_control_iter: int = 30, **solve_kwargs
) -> ControlledSolve:
    """Snapshot solve with the regulators acting as in OpenDSS's static control mode.

    Parameters
    ----------
    model : ThreePhaseFeederModel
        The feeder; its taps are moved in place.
    max_control_iter : int, keyword-only
        Most solves (OpenDSS ``MaxControlIter``).
    **solve_kwargs
        Passed to :meth:`ThreePhaseFeederModel.solve` (one scenario).

    Returns
    -------
    ControlledSolve
        Last result, final taps, solves done, whether every regulator settled.

    Raises
    ------
    ScenarioError
        The injections describe more than one scenario.
    """
    regs = {r.name: r for r in model.circuit.regulators}
    result = model.solve(**solve_kwargs)
    if result.n_scenarios != 1:
        raise ScenarioError(
            f"feeder {model.name}: regulator control solves one scenario at a time, "
            f"got {result.n_scenarios}"
        )
    for iteration in range(1, max_control_iter + 1):
        state = regulator_state(model, result)
        acting = [n for n, p in zip(state.names, state.pending_pu, strict=True) if p != 0.0]
        if not acting:
            return ControlledSolve(result, model.regulator_taps, iteration, True)
        if iteration == max_control_iter:
            break
        # the control queue fires the regulators with the shortest delay first
        first = min(regs[n].delay_s for n in acting)
        moves = {}
        taps = model.regulator_taps
        for name, change in zip(state.names, state.pending_pu, strict=True):
            reg = regs[name]
            if change == 0.0 or reg.delay_s > first:
                continue
            step = regulator_step_pu(reg)
            n_steps = max(1, math.trunc(0.7 * abs(change) / step + 1e-9))
            n_steps = min(n_steps, max(reg.max_tap_change, 1))
            moves[name] = _clip_tap(reg, taps[name] + math.copysign(n_steps * step, change))
        model.set_regulator_taps(moves)
        result = model.solve(**solve_kwargs)
    return ControlledSolve(result, model.regulator_taps, max_control_iter, False)


class RegulatorTapController:
    """Quasi-static tap control over a time series, as OpenDSS's time-driven control mode.

    The controller keeps OpenDSS's control queue: a regulator sampled out of band (and not
    already armed) queues a tap action ``delay`` seconds later; an action that comes due moves
    the tap one step toward the regulator's latest pending change and, if more change is
    pending, queues the next one ``tapdelay`` seconds later; a regulator back in band cancels
    the action it queued when it armed. Every step is solved, the regulators sampled, the
    actions due at the step's time executed and the step solved again until none is due
    (OpenDSS's control iterations), so taps moved at a step act at that step.

    Parameters
    ----------
    model : ThreePhaseFeederModel
        The feeder whose taps this controller moves.
    max_control_iter : int, keyword-only
        Most solves per step (OpenDSS ``MaxControlIter``).

    Examples
    --------
    >>> controller = RegulatorTapController(model)            # doctest: +SKIP
    >>> for k, mult in enumerate(load_shape):                   # doctest: +SKIP
    ...     result = controller.step(time_s=900.0 * k, load_mult=mult)
    """

    def __init__(self, model: ThreePhaseFeederModel, *, max_control_iter: int = 10) -> None:
        self.model = model
        self.max_control_iter = int(max_control_iter)
        self._regs = {r.name: r for r in model.circuit.regulators}
        self._armed = dict.fromkeys(self._regs, False)
        self._pending = dict.fromkeys(self._regs, 0.0)
        self._handle: dict[str, int | None] = dict.fromkeys(self._regs)
        self._queue: list[tuple[float, int, str]] = []  # (time [s], handle, regulator)
        self._serial = 0
        self._last_time_s = -math.inf

    def _push(self, time_s: float, name: str) -> int:
        self._serial += 1
        self._queue.append((time_s, self._serial, name))
        self._queue.sort()
        return self._serial

    def _sample(self, result: ThreePhaseResult, time_s: float) -> None:
        state = regulator_state(self.model, result)
        taps = self.model.regulator_taps
        for k, name in enumerate(state.names):
            reg = self._regs[name]
            if state.out_of_band[k]:
                change = float(state.asked_pu[k])
                self._pending[name] = change
                if change != 0.0 and not self._armed[name] and _can_move(reg, taps[name], change):
                    self._handle[name] = self._push(time_s + reg.delay_s, name)
                    self._armed[name] = True
            else:
                self._pending[name] = 0.0
                if self._armed[name]:
                    handle = self._handle[name]
                    self._queue = [q for q in self._queue if q[1] != handle]
                    self._armed[name] = False
                    self._handle[name] = None

    def _act(self, time_s: float) -> dict[str, float]:
        moves: dict[str, float] = {}
        while self._queue and self._queue[0][0] <= time_s + 1e-9:
            _, _, name = self._queue.pop(0)
            change = self._pending[name]
            if change == 0.0:
                self._armed[name] = False
                continue
            reg = self._regs[name]
            step = regulator_step_pu(reg)
            tap = moves.get(name, self.model.regulator_taps[name])
            moves[name] = _clip_tap(reg, tap + math.copysign(step, change))
            remaining = change - math.copysign(step, change)
            self._pending[name] = 0.0 if abs(remaining) < 0.9 * step else remaining
            if self._pending[name] != 0.0:
                self._push(time_s + reg.tap_delay_s, name)
            else:
                self._armed[name] = False
        if moves:
            self.model.set_regulator_taps(moves)
        return moves

    def step(self, *, time_s: float, **solve_kwargs) -> ThreePhaseResult:
        """Solve one time step with the regulators acting.

        Parameters
        ----------
        time_s : float, keyword-only
            Time of the step [s]; must not decrease from one call to the next.
        **solve_kwargs
            Passed to :meth:`ThreePhaseFeederModel.solve` (one scenario).

        Returns
        -------
        ThreePhaseResult
            The step's solution with the taps in force at its end.

        Raises
        ------
        ScenarioError
            Time not finite or going backwards; more than one scenario.
        """
        if not (math.isfinite(time_s) and time_s >= self._last_time_s):
            raise ScenarioError(
                f"time_s: {time_s!r}, expected a finite time not before the previous step "
                f"({self._last_time_s})"
            )
        self._last_time_s = time_s
        result = self.model.solve(**solve_kwargs)
        if result.n_scenarios != 1:
            raise ScenarioError(
                f"feeder {self.model.name}: regulator control solves one scenario at a time, "
                f"got {result.n_scenarios}"
            )
        for _ in range(self.max_control_iter - 1):
            self._sample(result, time_s)
            if not self._act(time_s):
                break
            result = self.model.solve(**solve_kwargs)
        return result
