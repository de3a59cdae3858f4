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
* :class:`RegulatorTapController` is the quasi-static (time-driven) rule: a regulator out of
  band for ``delay`` seconds moves one step, then one more every ``tapdelay`` seconds while it
  stays out of band; back in band, its timer resets. Taps move between solves; ``Y`` changes
  by the regulator transformer's ``Yprim`` difference
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
from grids.opendss import DssRegulator
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
    """

    names: tuple[str, ...]
    v_control_v: np.ndarray
    pending_pu: np.ndarray


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


def _step_pu(reg: DssRegulator) -> float:
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
    names, v_c, pending = [], [], []
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
        step = _step_pu(reg)
        change = 0.0
        if abs(reg.vreg_v - v_actual) > reg.band_v / 2.0:
            boost = (reg.vreg_v - v_actual) * reg.pt_ratio / reg.winding_v_base_v
            change = round(boost / step) * step
            tap = taps[reg.name]
            if (change > 0 and tap >= reg.max_tap_pu - 1e-9) or (
                change < 0 and tap <= reg.min_tap_pu + 1e-9
            ):
                change = 0.0
        names.append(reg.name)
        v_c.append(v_actual)
        pending.append(change)
    return RegulatorState(tuple(names), np.array(v_c), np.array(pending))


def _clip_tap(reg: DssRegulator, tap: float) -> float:
    step = _step_pu(reg)
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
            step = _step_pu(reg)
            n_steps = max(1, math.trunc(0.7 * abs(change) / step + 1e-9))
            n_steps = min(n_steps, max(reg.max_tap_change, 1))
            moves[name] = _clip_tap(reg, taps[name] + math.copysign(n_steps * step, change))
        model.set_regulator_taps(moves)
        result = model.solve(**solve_kwargs)
    return ControlledSolve(result, model.regulator_taps, max_control_iter, False)


class RegulatorTapController:
    """Quasi-static (time-driven) tap control between the solves of a time series.

    Parameters
    ----------
    model : ThreePhaseFeederModel
        The feeder whose taps this controller moves.

    Examples
    --------
    >>> controller = RegulatorTapController(model)           # doctest: +SKIP
    >>> for mult in load_shape:                               # doctest: +SKIP
    ...     result = model.solve(load_mult=mult)
    ...     controller.update(result, dt_s=900.0)
    """

    def __init__(self, model: ThreePhaseFeederModel) -> None:
        self.model = model
        self._regs = {r.name: r for r in model.circuit.regulators}
        self._out_s = dict.fromkeys(self._regs, 0.0)
        self._moved = dict.fromkeys(self._regs, 0)

    def update(self, result: ThreePhaseResult, *, dt_s: float, scenario: int = 0) -> dict:
        """Advance the regulator timers by one step and move the taps that are due.

        Parameters
        ----------
        result : ThreePhaseResult
            The solve of the step that just ended (present taps).
        dt_s : float, keyword-only
            Step length [s].
        scenario : int, keyword-only
            Row of the result.

        Returns
        -------
        dict of str to float
            The taps moved in this update (name -> new tap [pu]); empty when none.
        """
        if not (math.isfinite(dt_s) and dt_s > 0):
            raise ScenarioError(f"dt_s: {dt_s!r}, expected a positive number of seconds")
        state = regulator_state(self.model, result, scenario=scenario)
        taps = self.model.regulator_taps
        moves = {}
        for name, change in zip(state.names, state.pending_pu, strict=True):
            reg = self._regs[name]
            if change == 0.0:
                self._out_s[name] = 0.0
                self._moved[name] = 0
                continue
            self._out_s[name] += dt_s
            elapsed = self._out_s[name]
            if elapsed < reg.delay_s:
                continue
            due = 1 + int((elapsed - reg.delay_s) // max(reg.tap_delay_s, 1e-9))
            step = _step_pu(reg)
            wanted = round(abs(change) / step)
            n_steps = min(due - self._moved[name], wanted, max(reg.max_tap_change, 1) * due)
            if n_steps <= 0:
                continue
            self._moved[name] += n_steps
            moves[name] = _clip_tap(reg, taps[name] + math.copysign(n_steps * step, change))
        if moves:
            self.model.set_regulator_taps(moves)
        return moves
