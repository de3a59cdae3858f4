"""Hosting capacity of three-phase (unbalanced) feeders, per bus and per phase.

For every chosen bus the study answers "how many MW of EV charging (or V2G export) can be
added here, on this phase, before a limit is violated": a single-phase charger on phase a, b
or c (line-to-neutral), or a balanced three-phase one (``abc``: a third on each phase). The
limits are checked per phase: phase-to-neutral voltages against the band (ANSI C84.1 range A
by default), the voltage unbalance factor VUF = |V2|/|V1| of every three-phase bus (EN 50160,
2 % by default), the loading of every rated phase conductor and that of every transformer
(winding 1's phase conductors against the file's normal rating).

Two tiers, as for balanced feeders (:mod:`studies.hosting_capacity`):

1. **Screen** -- the multiphase linear power flow (:mod:`grids.linear3ph`, first-order form
   around the base case) gives the voltage change per MW at every node for every candidate;
   all candidates are bisected together on it (phase voltages, VUF, phase conductor and
   transformer winding currents, all from the linear voltages).
2. **AC confirmation** -- the screen value ``s`` gives the bracket ``[s (1 - margin) - tol,
   s (1 + margin) + tol]``; one batched three-phase AC solve verifies it for every candidate
   (a bracket that does not hold is widened: lower bound to 0, upper bound doubled up to the
   cap), then all candidates are bisected together on the AC model to ``tolerance_mw``. The
   reported ``hosting_capacity_mw`` is the largest size the AC model verified, so results stay
   exact whatever the screen's error.

A limit already broken in the base case is not held against the injection unless the injection
makes it worse at that element (``binding`` is then ``base_case``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import numpy as np
import scipy.sparse as sp

from grids.dss_names import bus_spellings
from grids.errors import ConvergenceError, ScenarioError, check_problems
from grids.limits import PHASE_LETTERS
from grids.linear3ph import LinearThreePhaseModel, linearise_feeder
from grids.sequence import voltage_unbalance_factor_percent
from studies.hosting_capacity_3ph_limits import (
    HC3PH_CRITERIA_PARAMS,
    LimitChecker,
    ThreePhaseCriteria,
    TrialState,
)
from studies.hosting_capacity_engine import Binding
from studies.hosting_capacity_types import (
    DEFAULT_SCREEN_MARGIN,
    DEFAULT_TOLERANCE_MW,
    Method,
    Mode,
    check_arguments,
    check_pf,
    parse_enum,
    q_per_p_from_pf,
)

__all__ = [
    "HC3PH_CRITERIA_PARAMS",
    "Candidates",
    "ChargerPhase",
    "LimitChecker",
    "ThreePhaseCriteria",
    "ThreePhaseHostingResult",
    "TrialState",
    "bisect_sizes",
    "select_candidates",
    "three_phase_hosting_capacity",
]


class ChargerPhase(Enum):
    """Where the added unit connects: one phase line-to-neutral, or all three balanced."""

    A = "a"
    B = "b"
    C = "c"
    ABC = "abc"

    @property
    def phases(self) -> tuple[int, ...]:
        """Phase numbers (1, 2, 3 = a, b, c) the unit uses."""
        if self is ChargerPhase.ABC:
            return (1, 2, 3)
        return ({"a": 1, "b": 2, "c": 3}[self.value],)


@dataclass(frozen=True)
class ThreePhaseHostingResult:
    """The rows of a three-phase hosting-capacity study.

    Attributes
    ----------
    feeder : str
    phase : ChargerPhase
    mode : Mode
    method : Method
    rows : list of dict
        One per bus: ``bus``, ``phase``, ``hosting_capacity_mw``, ``screen_mw`` (None without
        a screen), ``binding`` (a :class:`~studies.hosting_capacity_engine.Binding` value),
        ``where`` (element of the binding limit, e.g. ``"bus 675 phase b"``).
    base_case_violations : list of str
        Limits broken before any injection.
    ac_solves : int
        Scenarios solved by the AC engine.
    """

    feeder: str
    phase: ChargerPhase
    mode: Mode
    method: Method
    rows: list[dict] = field(default_factory=list)
    base_case_violations: list[str] = field(default_factory=list)
    ac_solves: int = 0

    def to_json(self) -> dict[str, Any]:
        """Plain dictionary for JSON (``results`` holds the rows)."""
        return {
            "feeder": self.feeder,
            "phase": self.phase.value,
            "mode": self.mode.value,
            "method": self.method.value,
            "results": self.rows,
            "base_case_violations": self.base_case_violations,
            "ac_solves": self.ac_solves,
        }


@dataclass(frozen=True)
class Candidates:
    """Where the added unit may connect: one row per candidate bus.

    Attributes
    ----------
    bus : tuple of str
        Bus names (lower case, as OpenDSS stores them).
    nodes : numpy.ndarray of int (n_cand, n_phase)
        Model node indices the unit uses at each bus.
    weight : numpy.ndarray (n_phase,)
        Share of the size on each node (1 for one phase, 1/3 each for ``abc``).
    """

    bus: tuple[str, ...]
    nodes: np.ndarray
    weight: np.ndarray


def select_candidates(model, buses, phase: ChargerPhase) -> Candidates:
    """The candidate buses of a study and the nodes the unit uses there.

    Parameters
    ----------
    model : grids.feeder3ph.ThreePhaseFeederModel
    buses : sequence of str or None
        Bus names (case-insensitive); None: every bus with the phase(s) but the source bus.
    phase : ChargerPhase

    Returns
    -------
    Candidates

    Raises
    ------
    ScenarioError
        Unknown buses, buses without the phase(s), the source bus (all listed).
    """
    node_bus = np.asarray(model.node_bus)
    node_phase = np.asarray(model.node_phase)
    present: dict[str, set[int]] = {}
    for b, p in zip(node_bus, node_phase, strict=True):
        present.setdefault(str(b), set()).add(int(p))
    if buses is None:
        chosen = [
            b
            for b in model.buses
            if b != model.source_bus and set(phase.phases) <= present.get(b, set())
        ]
        if not chosen:
            raise ScenarioError(
                f"{model.name}: no bus has phase(s) {phase.value} (besides the source bus)"
            )
    else:
        chosen = [str(b).lower() for b in buses]
        problems = []
        for b in chosen:
            if b not in present:
                problems.append(f"bus {b!r}: not a bus of {model.name}")
            elif not set(phase.phases) <= present[b]:
                have = "".join(PHASE_LETTERS[p] for p in sorted(present[b]) if p in PHASE_LETTERS)
                problems.append(
                    f"bus {b!r}: has phase(s) {have or 'none'}, not {phase.value} "
                    "(choose --phase among the bus's phases)"
                )
            elif b == model.source_bus:
                problems.append(f"bus {b!r}: the source bus has no hosting capacity to find")
        check_problems(problems, ScenarioError, "invalid buses for the three-phase study")
    nodes = np.array([[model.node_index(b, p) for p in phase.phases] for b in chosen], dtype=int)
    weight = np.full(len(phase.phases), 1.0 / len(phase.phases))
    return Candidates(bus=tuple(chosen), nodes=nodes, weight=weight)


class _AcTrials:
    """Batched AC solves of candidate sizes, on top of the base loads."""

    def __init__(self, model, cands: Candidates, *, load_mult, sign, q_per_p, checker):
        self.model, self.cands, self.load_mult = model, cands, load_mult
        self.sign, self.q_per_p, self.checker = sign, q_per_p, checker
        self.n_node = len(model.node_bus)
        self.n_solves = 0

    def run(self, rows: np.ndarray, size_mw: np.ndarray) -> TrialState:
        p = np.zeros((rows.size, self.n_node))
        share = self.sign * size_mw[:, None] * self.cands.weight[None, :]
        np.put_along_axis(p, self.cands.nodes[rows], share, axis=1)
        q = p * self.q_per_p
        res = self.model.solve(load_mult=self.load_mult, p_wye_mw=p, q_wye_mvar=q)
        self.n_solves += rows.size
        return self.checker.check_result(res)


class _LinearTrials:
    """The screen: the linear model's voltages, unbalance and conductor currents.

    Conductor currents are the ``Yprim`` rows of the lines at their first terminal and of the
    transformers at winding 1 applied to the linear voltages (``result.network.line_matrix``
    and ``trafo_matrix``), so they are linear in the size too.
    """

    def __init__(
        self, linear: LinearThreePhaseModel, model, base, cands, *, sign, q_per_p, checker
    ):
        self.vuf = voltage_unbalance_factor_percent
        flat = cands.nodes.ravel()
        sens = linear.wye_sensitivity_pu_per_mw(flat) + q_per_p * (
            linear.wye_sensitivity_pu_per_mw(flat, reactive=True)
        )
        n_cand, n_ph = cands.nodes.shape
        sens = sens.reshape(linear.n_node, n_cand, n_ph) @ cands.weight
        self.sens = sign * sens.T  # (n_cand, n_node) pu per MW of size
        self.v0 = linear.v_point_pu
        self.abc = np.array(
            [[model.node_index(b, p) for p in (1, 2, 3)] for b in model.bus3], dtype=int
        ).reshape(-1, 3)
        self.checker = checker
        net = base.network
        v_base = np.asarray(net.v_base_v, dtype=float)
        # (current at the linear point [A], its change per MW (n_cand, n_cond), 100 / rating)
        self.currents = []
        for matrix, amps in ((net.line_matrix, net.line_norm_amps),
                             (net.trafo_matrix, net.trafo_norm_amps)):  # fmt: skip
            rows = sp.csr_matrix(tuple(matrix), shape=(np.asarray(amps).size, linear.n_node))
            with np.errstate(divide="ignore", invalid="ignore"):
                inv_amps = 100.0 / np.asarray(amps, dtype=float)
            self.currents.append(
                (
                    rows @ (self.v0 * v_base),
                    np.asarray((rows @ (self.sens.T * v_base[:, None])).T),
                    inv_amps,
                )
            )

    def run(self, rows: np.ndarray, size_mw: np.ndarray) -> TrialState:
        v = self.v0[None, :] + size_mw[:, None] * self.sens[rows]
        vuf = self.vuf(v[:, self.abc]) if self.abc.size else np.zeros((rows.size, 0))
        line, trafo = (
            np.abs(i0[None, :] + size_mw[:, None] * di[rows]) * inv[None, :]
            for i0, di, inv in self.currents
        )
        return self.checker.check(np.abs(v), vuf, line, trafo, np.ones(rows.size, dtype=bool))


def bisect_sizes(trials, n: int, lo, hi, *, tolerance_mw: float, cap_mw: float):
    """Verify the bracket [lo, hi] for all candidates, widen where it fails, then bisect.

    Parameters
    ----------
    trials : object
        ``trials.run(rows, size_mw) -> TrialState``: whether candidates ``rows`` hold at
        ``size_mw`` (one batched evaluation per call).
    n : int
        Number of candidates.
    lo, hi : numpy.ndarray (n,)
        First bracket [MW] (a lower end that fails drops to 0, an upper end that holds
        doubles up to ``cap_mw``).
    tolerance_mw, cap_mw : float, keyword-only
        Final bracket width and largest size [MW].

    Returns
    -------
    (numpy.ndarray, numpy.ndarray, numpy.ndarray)
        The largest feasible size [MW], and the binding limit and where at the smallest
        infeasible one (``Binding.NONE`` when feasible up to ``cap_mw``).
    """
    lo = np.clip(np.asarray(lo, dtype=float), 0.0, cap_mw)
    hi = np.clip(np.maximum(np.asarray(hi, dtype=float), lo + tolerance_mw), 0.0, cap_mw)
    binding = np.full(n, Binding.NONE, dtype=object)
    where = np.full(n, "", dtype=object)
    rows = np.arange(n)
    # lower ends that are not feasible drop to 0 (the base case, feasible by construction)
    test = rows[lo > 0]
    if test.size:
        st = trials.run(test, lo[test])
        failed = test[~st.feasible]
        hi[failed] = lo[failed]
        binding[failed], where[failed] = st.binding[~st.feasible], st.where[~st.feasible]
        lo[failed] = 0.0
    # upper ends that hold become lower ends; the upper end doubles up to the cap
    open_ = np.ones(n, dtype=bool)
    open_[binding != Binding.NONE] = False
    while open_.any():
        test = rows[open_]
        st = trials.run(test, hi[test])
        failed = ~st.feasible
        binding[test[failed]], where[test[failed]] = st.binding[failed], st.where[failed]
        open_[test[failed]] = False
        held = test[~failed]
        lo[held] = hi[held]
        at_cap = held[hi[held] >= cap_mw]
        open_[at_cap] = False
        grow = held[hi[held] < cap_mw]
        hi[grow] = np.minimum(2.0 * np.maximum(hi[grow], tolerance_mw), cap_mw)
    active = (binding != Binding.NONE) & (hi - lo > tolerance_mw)
    while active.any():
        test = rows[active]
        mid = 0.5 * (lo[test] + hi[test])
        st = trials.run(test, mid)
        ok = st.feasible
        lo[test[ok]] = mid[ok]
        bad = test[~ok]
        hi[bad] = mid[~ok]
        binding[bad], where[bad] = st.binding[~ok], st.where[~ok]
        active = (binding != Binding.NONE) & (hi - lo > tolerance_mw)
    return lo, binding, where


def three_phase_hosting_capacity(
    model,
    *,
    buses=None,
    phase: ChargerPhase | str = ChargerPhase.A,
    mode: Mode | str = Mode.IMPORT,
    method: Method | str = Method.SCREEN_AC,
    criteria: ThreePhaseCriteria | None = None,
    load_mult: float = 1.0,
    pf: float = 1.0,
    tolerance_mw: float = DEFAULT_TOLERANCE_MW,
    screen_margin: float = DEFAULT_SCREEN_MARGIN,
    cap_mw: float = 10.0,
) -> ThreePhaseHostingResult:
    """Per-bus, per-phase hosting capacity of a three-phase feeder.

    Parameters
    ----------
    model : grids.feeder3ph.ThreePhaseFeederModel
        The feeder.
    buses : sequence of str, optional
        Bus names as written in the feeder file (default: every bus with the phase(s), but
        the source bus).
    phase : ChargerPhase or str, keyword-only
        ``"a"``, ``"b"``, ``"c"`` (a single-phase unit line-to-neutral on that phase) or
        ``"abc"`` (a balanced three-phase unit, a third on each phase).
    mode : Mode or str, keyword-only
        ``"import"`` (EV charging, injection < 0) or ``"export"`` (V2G discharge).
    method : Method or str, keyword-only
        ``"screen"`` (linear only), ``"ac"`` (AC bisection from [0, cap]) or ``"screen+ac"``.
    criteria : ThreePhaseCriteria, keyword-only
        Per-phase limits (default: ANSI C84.1 range A, VUF 2 %, conductor loading 100 %).
    load_mult : float, keyword-only
        Multiplier of every load of the feeder [-].
    pf : float, keyword-only
        Fixed power factor of the added unit (> 0 absorbs reactive power).
    tolerance_mw : float, keyword-only
        Width of the final AC bracket [MW].
    screen_margin : float, keyword-only
        Relative half-width of the AC bracket around the screen value [-].
    cap_mw : float, keyword-only
        Largest size searched [MW] (a bus still feasible there has binding ``none``).

    Returns
    -------
    ThreePhaseHostingResult

    Raises
    ------
    ScenarioError
        Every invalid argument at once (phase, mode, method, criteria, buses without the
        phase, tolerances).
    ConvergenceError
        The base case does not converge.
    """
    phase = parse_enum(ChargerPhase, phase, "phase")
    mode = parse_enum(Mode, mode, "mode")
    method = parse_enum(Method, method, "method")
    criteria = ThreePhaseCriteria() if criteria is None else criteria
    criteria.validate()
    problems: list[str] = []
    # the declarations of the balanced study (one validation kit): ranges, units, messages
    check_arguments(
        {"tolerance_mw": tolerance_mw, "screen_margin": screen_margin, "cap_mw": cap_mw},
        problems,
    )
    check_pf(pf, key="pf", problems=problems)
    load_mult_ok = isinstance(load_mult, (int, float)) and not isinstance(load_mult, bool)
    if not (load_mult_ok and 0.0 <= load_mult <= 1000.0):
        problems.append(f"load_mult: {load_mult!r} is out of range: expected a number in [0, 1000]")
    check_problems(problems, ScenarioError, "invalid three-phase hosting-capacity study")
    cands = select_candidates(model, buses, phase)
    base = model.solve(load_mult=load_mult)
    if not bool(np.asarray(base.converged)[0]):
        raise ConvergenceError(f"{model.name}: the base case does not converge")
    # OpenDSS lower-cases bus names: rows and messages name them as written in the files
    spelling = bus_spellings(model.circuit.path)

    def written(bus) -> str:
        return spelling.get(str(bus).lower(), str(bus))

    checker = LimitChecker(model, base, criteria, written=written)
    sign = -1.0 if mode is Mode.IMPORT else 1.0
    q_per_p = q_per_p_from_pf(pf) if abs(pf) < 1.0 else 0.0
    n = len(cands.bus)
    ac = _AcTrials(model, cands, load_mult=load_mult, sign=sign, q_per_p=q_per_p, checker=checker)
    screen_mw = None
    if method in (Method.SCREEN, Method.SCREEN_AC):
        linear = linearise_feeder(model, base)
        trials = _LinearTrials(
            linear, model, base, cands, sign=sign, q_per_p=q_per_p, checker=checker
        )
        screen_mw, s_binding, s_where = bisect_sizes(
            trials, n, np.zeros(n), np.full(n, 0.1), tolerance_mw=tolerance_mw * 0.1,
            cap_mw=cap_mw,
        )  # fmt: skip
    if method is Method.SCREEN:
        hc, binding, where = screen_mw, s_binding, s_where
    elif method is Method.AC:
        hc, binding, where = bisect_sizes(
            ac, n, np.zeros(n), np.full(n, cap_mw), tolerance_mw=tolerance_mw, cap_mw=cap_mw
        )
    else:
        hc, binding, where = bisect_sizes(
            ac, n,
            screen_mw * (1 - screen_margin) - tolerance_mw,
            screen_mw * (1 + screen_margin) + tolerance_mw,
            tolerance_mw=tolerance_mw, cap_mw=cap_mw,
        )  # fmt: skip
    rows = [
        {
            "bus": written(cands.bus[k]),
            "phase": phase.value,
            "hosting_capacity_mw": round(float(hc[k]), 9),
            "screen_mw": None if screen_mw is None else round(float(screen_mw[k]), 9),
            "binding": binding[k].value,
            "where": str(where[k]),
        }
        for k in range(n)
    ]
    return ThreePhaseHostingResult(
        feeder=model.name,
        phase=phase,
        mode=mode,
        method=method,
        rows=rows,
        base_case_violations=checker.base_violations(base, criteria),
        ac_solves=ac.n_solves,
    )
