"""Per-phase limits of the three-phase hosting-capacity studies, checked against the base case.

The limits (:data:`HC3PH_CRITERIA_PARAMS`, :class:`ThreePhaseCriteria`): phase-to-neutral
voltages, the voltage unbalance factor of three-phase buses, phase conductor loading and
transformer winding loading. :class:`LimitChecker` finds each trial's worst violation, with
the base-case rule of :mod:`studies.hosting_capacity_3ph`: a limit already broken before any
injection is held against the injection only where the injection makes it worse.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from grids.errors import ScenarioError, check_problems
from grids.limits import PHASE_LETTERS, VUF_LIMIT_PERCENT
from grids.params import Param
from studies.hosting_capacity_engine import HC_CRITERIA_PARAMS, Binding, check_value

__all__ = [
    "BASE_SLACK_LOADING_PERCENT",
    "BASE_SLACK_PU",
    "BASE_SLACK_VUF_PERCENT",
    "HC3PH_CRITERIA_PARAMS",
    "LimitChecker",
    "ThreePhaseCriteria",
    "TrialState",
]


#: How much an element that already breaks its limit in the base case may worsen before the
#: injection is held responsible: the engines' agreement with OpenDSS (1e-4 pu), and the same
#: order for the unbalance factor [%] and the conductor loading [%].
BASE_SLACK_PU = 1e-4
BASE_SLACK_VUF_PERCENT = 0.01
BASE_SLACK_LOADING_PERCENT = 0.1

#: Limits of a three-phase hosting-capacity study, declared once (default, unit, range, doc).
_BALANCED = {p.name: p for p in HC_CRITERIA_PARAMS}
HC3PH_CRITERIA_PARAMS: tuple[Param, ...] = (
    # the same declarations as the balanced study, checked per phase-to-neutral voltage
    _BALANCED["v_min_pu"],
    _BALANCED["v_max_pu"],
    Param(
        "vuf_max_percent", VUF_LIMIT_PERCENT, unit="%", lo=0.0, lo_open=True, hi=100.0,
        doc="voltage unbalance factor |V2|/|V1| of three-phase buses (EN 50160: 2 %)",
    ),
    _BALANCED["max_line_loading_percent"],
    _BALANCED["max_trafo_loading_percent"],
)  # fmt: skip


@dataclass(frozen=True)
class ThreePhaseCriteria:
    """Per-phase limits of the study (declared in :data:`HC3PH_CRITERIA_PARAMS`).

    Parameters
    ----------
    v_min_pu, v_max_pu : float
        Band of the phase-to-neutral voltages [pu of the bus base].
    vuf_max_percent : float
        Largest voltage unbalance factor of a three-phase bus [%].
    max_line_loading_percent : float
        Largest phase conductor current [% of its normal rating].
    max_trafo_loading_percent : float
        Largest winding-1 phase current of a transformer [% of its normal rating: OpenDSS's
        ``NormalAmps``, by default the current at 110 % of the kVA].
    """

    v_min_pu: float = _BALANCED["v_min_pu"].default
    v_max_pu: float = _BALANCED["v_max_pu"].default
    vuf_max_percent: float = VUF_LIMIT_PERCENT
    max_line_loading_percent: float = _BALANCED["max_line_loading_percent"].default
    max_trafo_loading_percent: float = _BALANCED["max_trafo_loading_percent"].default

    def validate(self) -> None:
        """Check every limit against its declaration.

        Raises
        ------
        ScenarioError
            Listing every problem (key, value and the allowed range).
        """
        problems: list[str] = []
        for param in HC3PH_CRITERIA_PARAMS:
            check_value(param, getattr(self, param.name), key=param.name, problems=problems)
        if not problems and self.v_min_pu >= self.v_max_pu:
            problems.append(
                f"v_min_pu: {self.v_min_pu:g} must be below v_max_pu ({self.v_max_pu:g})"
            )
        check_problems(problems, ScenarioError, "invalid three-phase hosting-capacity criteria")


@dataclass
class TrialState:
    """Outcome of trial solves, one entry per scenario.

    Attributes
    ----------
    feasible : numpy.ndarray of bool
    binding : numpy.ndarray of Binding
        The worst violated limit (``Binding.NONE`` when feasible).
    where : numpy.ndarray of str
        Its element (``"bus 675 phase b"``, ``"line 650632 phase a"``).
    """

    feasible: np.ndarray
    binding: np.ndarray
    where: np.ndarray


class LimitChecker:
    """Per-phase limit checks against the base case (a base violation may not get worse).

    Parameters
    ----------
    model : grids.feeder3ph.ThreePhaseFeederModel
    base : grids.result3ph.ThreePhaseResult
        The base case without the added unit: one scenario, or several (e.g. every step of a
        time series), each with its own thresholds; :meth:`check` says which base each trial
        scenario is measured against.
    criteria : ThreePhaseCriteria
    written : callable
        Bus name as written in the feeder file, from the lower-case name.
    """

    def __init__(self, model, base, criteria: ThreePhaseCriteria, *, written) -> None:
        self.model = model
        phase = np.asarray(model.node_phase)
        self.vnodes = np.flatnonzero((phase >= 1) & (phase <= 3))
        self.vnodes = self.vnodes[np.asarray(model.node_bus)[self.vnodes] != model.source_bus]
        vm0 = np.asarray(base.vm_pu)[:, self.vnodes]
        self.v_hi = np.maximum(criteria.v_max_pu, vm0 + BASE_SLACK_PU)
        self.v_lo = np.minimum(criteria.v_min_pu, vm0 - BASE_SLACK_PU)
        self.v_hi_base = vm0 > criteria.v_max_pu
        self.v_lo_base = vm0 < criteria.v_min_pu
        self.node_names = [
            f"bus {written(b)} phase {PHASE_LETTERS[int(p)]}"
            for b, p in zip(
                np.asarray(model.node_bus)[self.vnodes], phase[self.vnodes], strict=True
            )
        ]
        vuf0 = np.nan_to_num(np.asarray(base.vuf_percent, dtype=float), nan=0.0)
        self.vuf_hi = np.maximum(criteria.vuf_max_percent, vuf0 + BASE_SLACK_VUF_PERCENT)
        self.vuf_base = vuf0 > criteria.vuf_max_percent
        self.bus3_names = [f"bus {written(b)}" for b in model.bus3]
        loading0 = np.asarray(base.line_loading_percent, dtype=float)
        self.load_hi = np.maximum(
            criteria.max_line_loading_percent, loading0 + BASE_SLACK_LOADING_PERCENT
        )
        self.load_base = loading0 > criteria.max_line_loading_percent
        self.conductor_names = [_conductor_name(c) for c in base.line_conductor]
        trafo0 = np.asarray(base.trafo_loading_percent, dtype=float)
        self.trafo_hi = np.maximum(
            criteria.max_trafo_loading_percent, trafo0 + BASE_SLACK_LOADING_PERCENT
        )
        self.trafo_base = trafo0 > criteria.max_trafo_loading_percent
        self.winding_names = [_conductor_name(c, "transformer") for c in base.trafo_conductor]

    def base_violations(self, base, criteria: ThreePhaseCriteria) -> list[str]:
        """One line per limit the base case (its first scenario) already breaks.

        Parameters
        ----------
        base : grids.result3ph.ThreePhaseResult
        criteria : ThreePhaseCriteria

        Returns
        -------
        list of str
            The limit, its worst element and value, and how many elements break it.
        """
        vm0 = np.asarray(base.vm_pu)[0, self.vnodes]
        vuf0 = np.asarray(base.vuf_percent, dtype=float)[0]
        loading0 = np.asarray(base.line_loading_percent, dtype=float)[0]
        trafo0 = np.asarray(base.trafo_loading_percent, dtype=float)[0]
        out = []
        for bad, values, worst, text, names, unit in (
            (self.v_hi_base[0], vm0, np.argmax, f"above v_max_pu {criteria.v_max_pu:g}",
             self.node_names, "pu"),
            (self.v_lo_base[0], vm0, np.argmin, f"below v_min_pu {criteria.v_min_pu:g}",
             self.node_names, "pu"),
            (self.vuf_base[0], vuf0, np.argmax,
             f"voltage unbalance above {criteria.vuf_max_percent:g} %", self.bus3_names, "%"),
            (self.load_base[0], loading0, np.argmax,
             f"loading above {criteria.max_line_loading_percent:g} %", self.conductor_names,
             "%"),
            (self.trafo_base[0], trafo0, np.argmax,
             f"transformer loading above {criteria.max_trafo_loading_percent:g} %",
             self.winding_names, "%"),
        ):  # fmt: skip
            if bad.any():
                idx = np.flatnonzero(bad)
                k = idx[worst(values[idx])]
                out.append(f"{text}: {names[k]} at {values[k]:.4g} {unit}, {idx.size} element(s)")
        return out

    def check(
        self, vm_pu, vuf_percent, loading_percent, trafo_percent, converged, *, base_row=None
    ) -> TrialState:
        """Worst violation per scenario (scenarios on rows).

        Parameters
        ----------
        vm_pu : numpy.ndarray (n, n_node)
            Phase-to-neutral voltages [pu].
        vuf_percent : numpy.ndarray (n, n_bus3)
            Voltage unbalance factors [%].
        loading_percent : numpy.ndarray (n, n_conductor)
            Phase conductor loadings [%].
        trafo_percent : numpy.ndarray (n, n_trafo_conductor)
            Transformer winding-1 loadings [%].
        converged : numpy.ndarray of bool (n,)
        base_row : numpy.ndarray of int (n,), optional, keyword-only
            The base scenario each row is measured against (default: the first).

        Returns
        -------
        TrialState
        """
        n = vm_pu.shape[0]
        r = np.zeros(n, dtype=np.int64) if base_row is None else np.asarray(base_row)
        binding = np.full(n, Binding.NONE, dtype=object)
        where = np.full(n, "", dtype=object)
        vm = vm_pu[:, self.vnodes]
        tests = [
            (vm - self.v_hi[r], Binding.OVERVOLTAGE, self.v_hi_base, self.node_names),
            (self.v_lo[r] - vm, Binding.UNDERVOLTAGE, self.v_lo_base, self.node_names),
            (vuf_percent - self.vuf_hi[r], Binding.VOLTAGE_UNBALANCE, self.vuf_base,
             self.bus3_names),
            (loading_percent - self.load_hi[r], Binding.LINE_LOADING, self.load_base,
             self.conductor_names),
            (trafo_percent - self.trafo_hi[r], Binding.TRANSFORMER_LOADING, self.trafo_base,
             self.winding_names),
        ]  # fmt: skip
        worst = np.full(n, 0.0)
        for excess, kind, base_bad, names in tests:
            if excess.shape[1] == 0:
                continue
            # relative excess so that volts, percent unbalance and loading compare
            scale = {
                Binding.VOLTAGE_UNBALANCE: 1.0,
                Binding.LINE_LOADING: 100.0,
                Binding.TRANSFORMER_LOADING: 100.0,
            }.get(kind, 0.01)
            rel = np.nan_to_num(excess / scale, nan=-np.inf)
            j = np.argmax(rel, axis=1)
            rr = rel[np.arange(n), j]
            hit = (rr > 0) & (rr > worst)
            worst = np.where(hit, rr, worst)
            for k in np.flatnonzero(hit):
                binding[k] = Binding.BASE_CASE if base_bad[r[k], j[k]] else kind
                where[k] = names[j[k]]
        bad = ~np.asarray(converged, dtype=bool)
        binding[bad] = Binding.NOT_CONVERGED
        where[bad] = ""
        return TrialState(feasible=binding == Binding.NONE, binding=binding, where=where)

    def check_result(self, res, *, base_row=None) -> TrialState:
        """:meth:`check` of a solved batch (:class:`grids.result3ph.ThreePhaseResult`)."""
        return self.check(
            np.asarray(res.vm_pu),
            np.asarray(res.vuf_percent, dtype=float),
            np.asarray(res.line_loading_percent, dtype=float),
            np.asarray(res.trafo_loading_percent, dtype=float),
            res.converged,
            base_row=base_row,
        )


def _conductor_name(label: str, kind: str = "line") -> str:
    """``"650632.b"`` (the engine's ``element.phase``) -> ``"line 650632 phase b"``."""
    element, _, letter = str(label).rpartition(".")
    return f"{kind} {element} phase {letter}" if element else f"{kind} {label}"
