"""Batched hosting-capacity engine: planner limits, violation checks and simultaneous bisection.

Every hosting-capacity question in :mod:`studies.hosting_capacity` is reduced to the same form:
``S`` independent *cases*, each with its own base injection ``(p_base_mw, q_base_mvar)`` (shape
``(S, n_bus)``) and an added-injection *direction* ``direction_mw`` (shape ``(S, n_bus)``, MW of
added active power per unit of the scalar size ``size_mw``). The hosting capacity of a case is
the largest ``size_mw`` whose power flow violates no limit. All cases are bisected together: each
bisection iteration is ONE batched power-flow call over all cases (LinDistFlow for the screen, the
fast AC path for confirmation), so the cost is ``log2(bracket / tolerance)`` batched solves.

Every power flow goes through the one feeder model :class:`grids.feeder_model.FeederModel`
(``solve`` with ``SolveMethod.AC`` or ``SolveMethod.LINDISTFLOW``); :class:`AcSolver` and
:class:`LinDistFlowSolver` only count the solves, put the base case last in an AC batch and
calibrate the screen. The physics lives in :mod:`grids` (feeder model, thermal model) and
:mod:`vehicle_models.controls` (the inverter curves); this module only drives them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import numpy as np

from grids.errors import ScenarioError, check_problems
from grids.feeder_model import FeederModel, SolveMethod
from grids.params import Param
from grids.thermal import DEFAULT_COOLING, CoolingMode, ThermalParameters, steady_state


class Binding(Enum):
    """The limit that stops a case from taking more injection."""

    OVERVOLTAGE = "overvoltage"
    UNDERVOLTAGE = "undervoltage"
    VOLTAGE_CHANGE = "voltage_change"
    LINE_LOADING = "line_loading"
    TRANSFORMER_LOADING = "transformer_loading"
    HOT_SPOT = "hot_spot"
    VOLTAGE_UNBALANCE = "voltage_unbalance"  # VUF |V2|/|V1| of a three-phase bus
    BASE_CASE = "base_case"  # a limit violated before any injection that the injection worsens
    NOT_CONVERGED = "not_converged"  # AC power flow (or the control fixed point) failed
    NONE = "none"  # no limit reached up to the search cap (HC >= cap)


# Kinds that can be violated by a flow (order = index in the per-kind arrays below).
_KINDS = (
    Binding.OVERVOLTAGE,
    Binding.UNDERVOLTAGE,
    Binding.VOLTAGE_CHANGE,
    Binding.LINE_LOADING,
    Binding.TRANSFORMER_LOADING,
    Binding.HOT_SPOT,
)
_ELEMENT = {
    Binding.OVERVOLTAGE: "bus",
    Binding.UNDERVOLTAGE: "bus",
    Binding.VOLTAGE_CHANGE: "bus",
    Binding.LINE_LOADING: "line",
    Binding.TRANSFORMER_LOADING: "trafo",
    Binding.HOT_SPOT: "trafo",
}


#: The cooling mode of the hot-spot check, declared with the validation kit.
_COOLING = Param(
    "cooling", DEFAULT_COOLING, kind=CoolingMode, doc="transformer cooling mode (IEC 60076-2)"
)

#: Planner limits of a hosting-capacity study, declared once (default, unit, range, doc): the
#: fields of :class:`HostingCapacityCriteria`, the ``criteria`` table of a scenario dictionary
#: and the criteria table of ``docs/hosting_capacity.md``. ``None`` means "not checked".
HC_CRITERIA_PARAMS: tuple[Param, ...] = (
    Param(
        "v_min_pu", 0.95, unit="pu", lo=0.5, hi=1.5,
        doc="lowest allowed bus voltage (default ANSI C84.1 range A)",
    ),
    Param(
        "v_max_pu", 1.05, unit="pu", lo=0.5, hi=1.5,
        doc="highest allowed bus voltage (default ANSI C84.1 range A)",
    ),
    Param(
        "dv_max_pu", None, unit="pu", lo=0.0, lo_open=True, hi=0.5,
        doc="largest voltage change caused by the injection at any bus (checked only when given)",
    ),
    Param(
        "max_line_loading_percent", 100.0, unit="%", lo=0.0, lo_open=True,
        doc="line loading limit, % of the line's thermal rating (unrated lines not checked)",
    ),
    Param(
        "max_trafo_loading_percent", 100.0, unit="%", lo=0.0, lo_open=True,
        doc="transformer loading limit, % of rated apparent power",
    ),
    Param(
        "max_hot_spot_c", None, unit="°C", lo=40.0, hi=250.0,
        doc="winding hot-spot limit at the steady state of the loading, IEC 60076-7 "
        "(checked only when given)",
    ),
    Param(
        "ambient_c", 30.0, unit="°C", lo=-50.0, hi=60.0,
        doc="ambient temperature of the hot-spot check",
    ),
    _COOLING,
)  # fmt: skip
_CRITERIA = {p.name: p for p in HC_CRITERIA_PARAMS}


def check_value(param: Param, value: Any, *, key: str, problems: list[str]) -> Any:
    """:meth:`grids.params.Param.check` of a function argument, saying the allowed values.

    Numpy scalars are checked as the Python numbers they hold; a rejected value of the wrong
    type (``'high'``, NaN) gets the allowed range appended, so every message names the key,
    the value and what is allowed.

    Parameters
    ----------
    param : grids.params.Param
        The declaration.
    value : Any
        The value given.
    key : str
        Key path of the message.
    problems : list of str
        Appended to when the value is rejected.

    Returns
    -------
    Any
        The checked value (converted to the declared kind), or ``None`` if rejected.
    """
    if isinstance(value, np.integer | np.floating | np.bool_):
        value = value.item()
    n_before = len(problems)
    checked = param.check(value, key=key, problems=problems)
    expected = param.range_text()
    if len(problems) > n_before and expected not in problems[-1]:
        problems[-1] += f": expected {expected}"
    return checked


def criteria_problems(
    values: Mapping[str, Any], *, key: Callable[[str], str]
) -> tuple[dict[str, Any], list[str]]:
    """Check planner limits against :data:`HC_CRITERIA_PARAMS`; every problem at once.

    Parameters
    ----------
    values : Mapping
        Criteria given (a subset of the declared names; the others take their defaults).
        ``None`` is accepted where the declaration has no default (not checked).
    key : callable
        Key path of a name in the messages (``"criteria.v_max_pu"``).

    Returns
    -------
    (dict, list of str)
        The given criteria, typed (floats, :class:`grids.thermal.CoolingMode`), and one
        message per problem: a value out of its declared range, or ``v_min_pu`` not below
        ``v_max_pu``.
    """
    problems: list[str] = []
    typed: dict[str, Any] = {}
    for name, value in values.items():
        param = _CRITERIA[name]
        if value is None and param.default is None:
            typed[name] = None
            continue
        checked = check_value(param, value, key=key(name), problems=problems)
        if checked is not None:
            typed[name] = checked
    v_min = typed.get("v_min_pu", _CRITERIA["v_min_pu"].default)
    v_max = typed.get("v_max_pu", _CRITERIA["v_max_pu"].default)
    both_valid = all(name in typed or name not in values for name in ("v_min_pu", "v_max_pu"))
    if both_valid and v_min >= v_max:
        problems.append(f"{key('v_min_pu')}: {v_min:g} must be below v_max_pu ({v_max:g})")
    return typed, problems


@dataclass(frozen=True)
class HostingCapacityCriteria:
    """Planner limits for a hosting-capacity study (declared in :data:`HC_CRITERIA_PARAMS`).

    Parameters
    ----------
    v_min_pu, v_max_pu : float
        Voltage band [pu] (default 0.95 to 1.05, ANSI C84.1 range A).
    dv_max_pu : float or None
        Largest allowed voltage change [pu] at any bus between the base case and the case with
        the added injection (e.g. 0.03); only checked when given.
    max_line_loading_percent : float
        Line loading limit [% of the line's thermal rating] (default 100).
    max_trafo_loading_percent : float
        Transformer loading limit [% of rated apparent power] (default 100).
    max_hot_spot_c : float or None
        Transformer winding hot-spot limit [degC] at the steady state of the transformer's
        loading (IEC 60076-7 model of :mod:`grids.thermal`); only checked when given.
    ambient_c : float
        Ambient temperature [degC] for the hot-spot check (default 30, a warm day).
    cooling : grids.thermal.CoolingMode or str
        Transformer cooling mode for the hot-spot check (IEC 60076-2 code, e.g. ``ONAN``,
        ``ONAF``; default :data:`grids.thermal.DEFAULT_COOLING`).
    """

    v_min_pu: float = _CRITERIA["v_min_pu"].default
    v_max_pu: float = _CRITERIA["v_max_pu"].default
    dv_max_pu: float | None = _CRITERIA["dv_max_pu"].default
    max_line_loading_percent: float = _CRITERIA["max_line_loading_percent"].default
    max_trafo_loading_percent: float = _CRITERIA["max_trafo_loading_percent"].default
    max_hot_spot_c: float | None = _CRITERIA["max_hot_spot_c"].default
    ambient_c: float = _CRITERIA["ambient_c"].default
    cooling: CoolingMode | str = _CRITERIA["cooling"].default

    def problems(self, path: str = "criteria") -> list[str]:
        """Every problem with these limits (checked against :data:`HC_CRITERIA_PARAMS`).

        Parameters
        ----------
        path : str
            Key path put in front of each field name in the messages.

        Returns
        -------
        list of str
            One message per problem (empty when the limits are valid).
        """
        values = {p.name: getattr(self, p.name) for p in HC_CRITERIA_PARAMS}
        return criteria_problems(values, key=lambda name: f"{path}.{name}")[1]

    def validate(self) -> None:
        """Check the limits.

        Raises
        ------
        ScenarioError
            Listing every problem (see :meth:`problems`).
        """
        check_problems(self.problems(), ScenarioError, "invalid hosting-capacity criteria")


@dataclass
class Flows:
    """Power-flow results of a batch, as the limit checks need them (all 2-D, scenario first)."""

    vm_pu: np.ndarray  # (S, n_bus)
    line_loading_percent: np.ndarray  # (S, n_line), NaN: no rating or out of service
    trafo_loading_percent: np.ndarray  # (S, n_trafo)
    converged: np.ndarray  # (S,) bool
    dead_bus: np.ndarray | None = None  # (n_bus,) bool: no voltage there, not checked

    def take(self, rows: np.ndarray) -> Flows:
        """The flows of the cases ``rows``."""
        return Flows(
            self.vm_pu[rows],
            self.line_loading_percent[rows],
            self.trafo_loading_percent[rows],
            self.converged[rows],
            self.dead_bus,
        )


#: AC convergence tolerance of the study [MVA]: pandapower ``runpp``'s default, so that the
#: brute-force reference (:mod:`studies.hosting_capacity_bruteforce`) solves to the same.
AC_TOLERANCE_MVA = 1e-8


def feeder_model(feeder) -> FeederModel:
    """The feeder model a solver adapter works on.

    Parameters
    ----------
    feeder : FeederModel or pandapowerNet
        A model (returned as is) or a prepared net (wrapped, not copied: the net is used as
        is, with the study's AC tolerance :data:`AC_TOLERANCE_MVA`).

    Returns
    -------
    FeederModel
    """
    if isinstance(feeder, FeederModel):
        return feeder
    return FeederModel(feeder, tolerance_mva=AC_TOLERANCE_MVA)


class _ModelSolver:
    """Common part of the adapters: the model, its column order and solve counters."""

    name = ""

    def __init__(self, feeder) -> None:
        self.model = feeder_model(feeder)
        self.bus = self.model.bus
        self.line = self.model.line  # every line of the net (NaN loading where not rated)
        self.trafo = self.model.trafo
        self.dead_bus = self.model.dead_bus if self.model.dead_bus.any() else None
        self.n_solves = 0
        self.n_cases = 0

    def base_injection(self) -> tuple[np.ndarray, np.ndarray]:
        """Net injection per bus of the net's own elements [MW, Mvar] (copies)."""
        return self.model.base_injection()


class AcSolver(_ModelSolver):
    """Batched AC power flow of a :class:`grids.feeder_model.FeederModel` as :class:`Flows`.

    Parameters
    ----------
    feeder : FeederModel or pandapowerNet
        The feeder (see :func:`feeder_model`).
    """

    name = "ac"

    def __init__(self, feeder) -> None:
        super().__init__(feeder)
        self.model.prepare(SolveMethod.AC)
        self._base = self.base_injection()

    def solve(self, p_mw: np.ndarray, q_mvar: np.ndarray) -> Flows:
        """Solve a batch of cases.

        Parameters
        ----------
        p_mw, q_mvar : numpy.ndarray (S, n_bus)
            Total injection per bus [MW, Mvar].

        Returns
        -------
        Flows
            Voltages, loadings and convergence flags of the ``S`` cases.
        """
        self.n_solves += 1
        self.n_cases += p_mw.shape[0]
        # The batch ends with the base case: the AC solver may re-centre its chord Jacobian on
        # the last converged scenario of a call, and the base point suits every next batch
        # (cases spread over many buses) better than whichever case happened to be last.
        # Cold start: cases move between calls (bisection moves every case).
        n = p_mw.shape[0]
        p0, q0 = self._base
        res = self.model.solve(
            np.vstack([p_mw, p0[None, :]]), np.vstack([q_mvar, q0[None, :]]), warm_start=False
        )
        return Flows(
            res.vm_pu[:n],
            res.line_loading_percent[:n],
            res.trafo_loading_percent[:n],
            res.converged[:n],
            self.dead_bus,
        )


class LinDistFlowSolver(_ModelSolver):
    """LinDistFlow of a :class:`grids.feeder_model.FeederModel` as :class:`Flows`, optionally
    calibrated on the AC base case (:meth:`calibrate`).

    Parameters
    ----------
    feeder : FeederModel or pandapowerNet
        The feeder (see :func:`feeder_model`); must be radial.
    """

    name = "lindistflow"

    def __init__(self, feeder) -> None:
        super().__init__(feeder)
        self.model.prepare(SolveMethod.LINDISTFLOW)
        self.vm_offset_pu: np.ndarray | float = 0.0
        self.line_factor: np.ndarray | float = 1.0
        self.trafo_factor: np.ndarray | float = 1.0

    def calibrate(self, ac_base: Flows) -> None:
        """Anchor the screen on the AC base case: voltages shifted by the base-case error,
        loadings scaled by the base-case ratio AC/LinDistFlow (losses and reactive losses that
        LinDistFlow ignores), per bus / line / transformer.

        Parameters
        ----------
        ac_base : Flows
            The AC solution of the base case (one row).
        """
        p0, q0 = self.base_injection()
        self.vm_offset_pu, self.line_factor, self.trafo_factor = 0.0, 1.0, 1.0
        own = self.solve(p0[None, :], q0[None, :])
        self.vm_offset_pu = ac_base.vm_pu[0] - own.vm_pu[0]

        def ratio(ac, ldf):
            ok = (ldf > 1.0) & np.isfinite(ac)  # only where the base flow is meaningful
            return np.where(ok, ac / np.where(ok, ldf, 1.0), 1.0)

        with np.errstate(invalid="ignore"):  # NaN: unrated or out-of-service lines
            self.line_factor = ratio(ac_base.line_loading_percent[0], own.line_loading_percent[0])
            self.trafo_factor = ratio(
                ac_base.trafo_loading_percent[0], own.trafo_loading_percent[0]
            )

    def solve(self, p_mw: np.ndarray, q_mvar: np.ndarray) -> Flows:
        """Solve a batch of cases with the (calibrated) linear model.

        Parameters
        ----------
        p_mw, q_mvar : numpy.ndarray (S, n_bus)
            Total injection per bus [MW, Mvar].

        Returns
        -------
        Flows
            Voltages and loadings of the ``S`` cases (always converged).
        """
        self.n_solves += 1
        self.n_cases += p_mw.shape[0]
        res = self.model.solve(p_mw, q_mvar, method=SolveMethod.LINDISTFLOW)
        return Flows(
            res.vm_pu + self.vm_offset_pu,
            res.line_loading_percent * self.line_factor,
            res.trafo_loading_percent * self.trafo_factor,
            res.converged,
            self.dead_bus,
        )


class HotSpot:
    """Steady-state winding hot-spot temperature of the transformers at a given loading.

    Uses :func:`grids.thermal.steady_state` (IEC 60076-7 with d/dt = 0): hot spot = top
    oil + hot-spot gradient at constant load and ambient.
    """

    def __init__(self, criteria: HostingCapacityCriteria) -> None:
        self.params = ThermalParameters.for_cooling(CoolingMode(criteria.cooling))
        self.ambient_c = criteria.ambient_c

    def hot_spot_c(self, trafo_loading_percent: np.ndarray) -> np.ndarray:
        """Steady-state hot spot of each transformer.

        Parameters
        ----------
        trafo_loading_percent : numpy.ndarray
            Loading [%]; NaN (out of service) counts as unloaded.

        Returns
        -------
        numpy.ndarray
            Hot-spot temperature [degC], same shape.
        """
        load_pu = np.nan_to_num(np.asarray(trafo_loading_percent, dtype=float), nan=0.0) / 100.0
        top_oil_c, gradient_k = steady_state(self.params, load_pu=load_pu, ambient_c=self.ambient_c)
        return np.asarray(top_oil_c + gradient_k, dtype=float)


@dataclass
class Limits:
    """Limits plus the base-case state they are judged against (per case)."""

    criteria: HostingCapacityCriteria
    hot_spot: HotSpot | None = None
    # Tolerance for "made worse than in the base case" (pu for voltage, % for loading, K).
    eps_vm_pu: float = 1e-7
    eps_loading_percent: float = 1e-5


@dataclass
class BaseState:
    """Base-case (size 0) flows of every case and which limits they already violate."""

    flows: Flows
    hot_spot_c: np.ndarray | None
    over: np.ndarray = field(init=False)
    under: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.over = np.zeros_like(self.flows.vm_pu, dtype=bool)
        self.under = np.zeros_like(self.flows.vm_pu, dtype=bool)


@dataclass
class Check:
    """Result of checking a batch against the limits."""

    feasible: np.ndarray  # (S,) bool
    binding: np.ndarray  # (S,) object array of Binding (NONE where feasible)
    element: np.ndarray  # (S,) object array: "bus"/"line"/"trafo"/"" (position in solver arrays)
    position: np.ndarray  # (S,) int position in the solver's bus/line/trafo arrays, -1 if none
    base_case: np.ndarray  # (S,) bool: the binding element was already violated in the base case
    severity: np.ndarray  # (S,) worst normalized exceedance (> 0 violated, inf if not converged)
    all_severity: np.ndarray  # (S, n_elements) normalized exceedance of every limit
    flat: np.ndarray  # (S,) column of the worst limit in ``all_severity``


def base_state(flows: Flows, limits: Limits) -> BaseState:
    """Record the base-case flows (one per case) and their pre-existing violations.

    Parameters
    ----------
    flows : Flows
        Base-case flows, one row per case.
    limits : Limits
        The study's limits.

    Returns
    -------
    BaseState
    """
    hot = limits.hot_spot.hot_spot_c(flows.trafo_loading_percent) if limits.hot_spot else None
    state = BaseState(flows, hot)
    c = limits.criteria
    state.over = flows.vm_pu > c.v_max_pu
    state.under = flows.vm_pu < c.v_min_pu
    return state


def check(flows: Flows, base: BaseState, limits: Limits) -> Check:
    """Check a batch of flows (same cases as ``base``) against the limits.

    A limit already violated in the base case counts only where the injection makes that
    element worse than in the base case (so an export is not blamed for a pre-existing
    undervoltage it relieves); such a violation is flagged ``base_case``. NaN line or
    transformer loadings (no rating, out of service) never bind; dead buses are not checked.

    Parameters
    ----------
    flows : Flows
        Flows of the batch, one row per case.
    base : BaseState
        Base state of the same cases.
    limits : Limits
        The study's limits.

    Returns
    -------
    Check
        Feasibility, binding limit and element, and normalized margins of every limit.
    """
    c = limits.criteria
    vm, vm0 = flows.vm_pu, base.flows.vm_pu
    n_case = vm.shape[0]
    ev, el = limits.eps_vm_pu, limits.eps_loading_percent
    severities = []  # per kind: (S, n_elem) normalized exceedance, <= 0 where fine
    pre = []  # per kind: (S, n_elem) element already violated in the base case

    over = (vm - c.v_max_pu) / c.v_max_pu
    over = np.where(base.over & ~(vm > vm0 + ev), -1.0, over)
    severities.append(over)
    pre.append(base.over)
    under = (c.v_min_pu - vm) / c.v_min_pu
    under = np.where(base.under & ~(vm < vm0 - ev), -1.0, under)
    severities.append(under)
    pre.append(base.under)
    if c.dv_max_pu is not None:
        severities.append((np.abs(vm - vm0) - c.dv_max_pu) / c.dv_max_pu)
    else:
        severities.append(np.full((n_case, 0), -1.0))
    pre.append(np.zeros_like(severities[-1], dtype=bool))
    if flows.dead_bus is not None:
        # a bus cut off from every external grid has no voltage (NaN): nothing to check there
        for sev in severities:
            if sev.shape[1]:
                sev[:, flows.dead_bus] = -1.0
    for loading, loading0, limit in (
        (flows.line_loading_percent, base.flows.line_loading_percent, c.max_line_loading_percent),
        (
            flows.trafo_loading_percent,
            base.flows.trafo_loading_percent,
            c.max_trafo_loading_percent,
        ),
    ):
        loading = np.nan_to_num(loading, nan=0.0)
        loading0 = np.nan_to_num(loading0, nan=0.0)
        was = loading0 > limit
        sev = (loading - limit) / limit
        severities.append(np.where(was & ~(loading > loading0 + el), -1.0, sev))
        pre.append(was)
    if limits.hot_spot is not None and c.max_hot_spot_c is not None:
        hot = limits.hot_spot.hot_spot_c(flows.trafo_loading_percent)
        was = base.hot_spot_c > c.max_hot_spot_c
        sev = (hot - c.max_hot_spot_c) / c.max_hot_spot_c
        severities.append(np.where(was & ~(hot > base.hot_spot_c + 1e-6), -1.0, sev))
        pre.append(was)
    else:
        severities.append(np.full((n_case, 0), -1.0))
        pre.append(np.zeros((n_case, 0), dtype=bool))

    worst = np.full((n_case, len(_KINDS)), -np.inf)
    worst_pos = np.full((n_case, len(_KINDS)), -1, dtype=int)
    for k, sev in enumerate(severities):
        if sev.shape[1]:
            sev = np.nan_to_num(sev, nan=np.inf)  # NaN voltage = garbage = violated
            worst_pos[:, k] = np.argmax(sev, axis=1)
            worst[:, k] = sev[np.arange(n_case), worst_pos[:, k]]
    kind_idx = np.argmax(worst, axis=1)
    violated = worst[np.arange(n_case), kind_idx] > 0
    failed = ~flows.converged
    feasible = ~violated & ~failed
    binding = np.full(n_case, Binding.NONE, dtype=object)
    element = np.full(n_case, "", dtype=object)
    position = np.full(n_case, -1, dtype=int)
    base_case = np.zeros(n_case, dtype=bool)
    for s in np.flatnonzero(violated & ~failed):
        kind = _KINDS[kind_idx[s]]
        pos = worst_pos[s, kind_idx[s]]
        binding[s] = kind
        element[s] = _ELEMENT[kind]
        position[s] = pos
        base_case[s] = bool(pre[kind_idx[s]][s, pos]) if pre[kind_idx[s]].shape[1] else False
    binding[failed] = Binding.NOT_CONVERGED
    severity = worst[np.arange(n_case), kind_idx]
    severity[failed] = np.inf
    offsets = np.cumsum([0] + [sev.shape[1] for sev in severities])
    all_severity = np.nan_to_num(np.concatenate(severities, axis=1), nan=np.inf)
    all_severity[failed] = np.inf
    flat = offsets[kind_idx] + np.maximum(worst_pos[np.arange(n_case), kind_idx], 0)
    return Check(feasible, binding, element, position, base_case, severity, all_severity, flat)


class Injection:
    """How a case's added injection of size ``size_mw`` becomes per-bus (p, q).

    ``direction_mw`` (S, n_bus) is the added active power per MW of size (export +, import -).
    Reactive power follows a fixed power factor (``q_per_p``: Q = q_per_p * |P|, negative =
    absorbing) unless a ``control`` callable is given: ``control(vm_pu, p_avail_pu) ->
    (p_pu, q_pu)`` per unit of the unit's rating, evaluated at the voltage of the bus where each
    unit sits. A controlled injection is solved as a fixed point of the controls and the power
    flow (damped iteration, see :func:`solve_injection`).
    """

    def __init__(
        self,
        direction_mw: np.ndarray,
        *,
        q_per_p: float = 0.0,
        control=None,
    ) -> None:
        self.direction_mw = np.asarray(direction_mw, dtype=float)
        self.q_per_p = float(q_per_p)
        self.control = control

    def take(self, rows: np.ndarray) -> Injection:
        """The injection of the cases ``rows``."""
        return Injection(self.direction_mw[rows], q_per_p=self.q_per_p, control=self.control)

    def fixed(self, size_mw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Added injection at a fixed power factor.

        Parameters
        ----------
        size_mw : numpy.ndarray (S,)
            Size of each case [MW].

        Returns
        -------
        p_mw, q_mvar : numpy.ndarray (S, n_bus)
            Added injection per bus [MW, Mvar].
        """
        p = self.direction_mw * size_mw[:, None]
        return p, self.q_per_p * np.abs(p)


@dataclass
class ControlLoop:
    """Settings of the damped fixed-point iteration between inverter controls and power flow."""

    damping: float = 0.5
    max_iterations: int = 60
    tolerance_pu: float = 1e-5


def solve_injection(
    solver,
    p_base_mw: np.ndarray,
    q_base_mvar: np.ndarray,
    injection: Injection,
    size_mw: np.ndarray,
    *,
    loop: ControlLoop | None = None,
) -> tuple[Flows, np.ndarray]:
    """Solve the batch at ``size_mw`` (S,); return flows and the control-convergence flags (S,).

    Parameters
    ----------
    solver : AcSolver or LinDistFlowSolver
        The batched solver (any object with ``solve(p_mw, q_mvar) -> Flows``,
        ``n_solves``).
    p_base_mw, q_base_mvar : numpy.ndarray (S, n_bus)
        Base injection of each case [MW, Mvar].
    injection : Injection
        The added injection per MW of size.
    size_mw : numpy.ndarray (S,)
        Size of each case's added injection [MW].
    loop : ControlLoop or None, keyword-only
        Settings of the control fixed point (default :class:`ControlLoop`).

    Returns
    -------
    flows : Flows
    settled : numpy.ndarray (S,) of bool
        Whether the control fixed point settled (always ``True`` without a control).

    Notes
    -----
    With a control, the units' output ``u_k = (p_pu, q_pu)`` is updated as
    ``u_{k+1} = u_k + damping * (f(V(u_k)) - u_k)`` where ``f`` is the steady-state control
    curve and ``V(u)`` the power flow; iteration stops when ``max |f(V(u_k)) - u_k| <
    tolerance_pu`` for every case. Cases that do not settle within ``max_iterations`` are
    reported (``False``) and treated as infeasible by the caller.
    """
    p_add, q_add = injection.fixed(size_mw)
    if injection.control is None:
        flows = solver.solve(p_base_mw + p_add, q_base_mvar + q_add)
        return flows, np.ones(len(size_mw), dtype=bool)
    loop = loop or ControlLoop()
    rating_mva = np.abs(p_add)  # each unit's apparent-power rating = its nominal active power
    sign = np.sign(injection.direction_mw)
    units = rating_mva > 0
    p_pu = np.where(units, 1.0, 0.0)
    q_pu = np.zeros_like(p_pu)
    settled = np.zeros(len(size_mw), dtype=bool)
    flows = None
    for _ in range(loop.max_iterations):
        flows = solver.solve(p_base_mw + sign * rating_mva * p_pu, q_base_mvar + rating_mva * q_pu)
        # A case whose power flow failed keeps its last output (it is infeasible anyway).
        vm = np.where(flows.converged[:, None], flows.vm_pu, 1.0)
        p_new, q_new = injection.control(np.nan_to_num(vm, nan=1.0), sign)
        p_new = np.where(units & flows.converged[:, None], p_new, p_pu)
        q_new = np.where(units & flows.converged[:, None], q_new, q_pu)
        change = np.max(np.abs(p_new - p_pu) + np.abs(q_new - q_pu), axis=1, initial=0.0)
        settled = change < loop.tolerance_pu
        if settled.all():
            break
        p_pu = p_pu + loop.damping * (p_new - p_pu)
        q_pu = q_pu + loop.damping * (q_new - q_pu)
    return flows, settled


@dataclass
class Cases:
    """A batch of hosting-capacity cases (see the module docstring)."""

    p_base_mw: np.ndarray  # (S, n_bus)
    q_base_mvar: np.ndarray  # (S, n_bus)
    injection: Injection

    def take(self, rows: np.ndarray) -> Cases:
        """The cases ``rows``."""
        return Cases(self.p_base_mw[rows], self.q_base_mvar[rows], self.injection.take(rows))

    def __len__(self) -> int:
        return self.p_base_mw.shape[0]


@dataclass
class BisectionResult:
    """Per-case outcome of :func:`bisect` (arrays of shape (S,))."""

    hosting_capacity_mw: np.ndarray  # largest size verified feasible
    upper_mw: np.ndarray  # smallest size verified infeasible (inf if none up to the cap)
    binding: np.ndarray  # Binding at upper_mw
    element: np.ndarray
    position: np.ndarray
    base_case: np.ndarray
    control_settled: np.ndarray  # control fixed point settled at the final feasible size
    raw_binding: np.ndarray  # the violated limit at upper_mw, even when it pre-existed
    n_solves: int = 0


def evaluate(solver, cases: Cases, base: BaseState, limits: Limits, size_mw, loop=None):
    """Check every case at its own ``size_mw``.

    Parameters
    ----------
    solver : AcSolver or LinDistFlowSolver
        The batched solver (any object with ``solve(p_mw, q_mvar) -> Flows``,
        ``n_solves``).
    cases : Cases
        The batch.
    base : BaseState
        Base state of the same cases.
    limits : Limits
        The study's limits.
    size_mw : numpy.ndarray (S,)
        Size of each case's added injection [MW].
    loop : ControlLoop or None
        Settings of the control fixed point.

    Returns
    -------
    check : Check
        An unsettled control counts as infeasible (``not_converged``).
    settled : numpy.ndarray (S,) of bool
    """
    flows, settled = solve_injection(
        solver, cases.p_base_mw, cases.q_base_mvar, cases.injection, size_mw, loop=loop
    )
    result = check(flows, base, limits)
    unsettled = ~settled
    result.feasible = result.feasible & settled
    result.binding[unsettled & (result.binding == Binding.NONE)] = Binding.NOT_CONVERGED
    result.severity[unsettled] = np.inf
    result.all_severity[unsettled] = np.inf
    return result, settled


def bisect(
    solver,
    cases: Cases,
    base: BaseState,
    limits: Limits,
    *,
    lower_mw: np.ndarray,
    upper_mw: np.ndarray,
    tolerance_mw: float,
    cap_mw: float,
    loop: ControlLoop | None = None,
) -> BisectionResult:
    """Bracket and bisect all cases simultaneously to ``tolerance_mw``.

    First the bracket ``[lower_mw, upper_mw]`` is verified in one batched call: a lower bound
    that is not feasible drops to 0 (feasible by construction: nothing changes), an upper bound
    that is feasible becomes the lower bound and the upper bound doubles until it fails or
    reaches ``cap_mw`` (then the case has no binding limit up to the cap).

    Then every iteration is ONE batched solve over all cases still wider than the tolerance.
    Plain bisection halves the bracket; to need fewer AC solves, a case whose limit margins at
    both ends are known is instead tested at the pair ``x -+ tolerance/2`` around the
    false-position estimate ``x`` of its margin's zero crossing (safeguarded: a step that does
    not halve the bracket twice in a row is followed by a plain bisection step). Either way the
    result is a verified bracket ``upper - lower <= tolerance`` with ``lower`` feasible.

    Parameters
    ----------
    solver : AcSolver or LinDistFlowSolver
        The batched solver (any object with ``solve(p_mw, q_mvar) -> Flows``,
        ``n_solves``).
    cases : Cases
        The batch.
    base : BaseState
        Base state of the same cases.
    limits : Limits
        The study's limits.
    lower_mw, upper_mw : numpy.ndarray (S,)
        Initial bracket of each case [MW] (verified, widened when it does not hold).
    tolerance_mw : float, keyword-only
        Width of the final bracket [MW].
    cap_mw : float, keyword-only
        Largest size searched [MW].
    loop : ControlLoop or None, keyword-only
        Settings of the control fixed point.

    Returns
    -------
    BisectionResult
    """
    n = len(cases)
    lo = np.clip(np.asarray(lower_mw, dtype=float), 0.0, cap_mw)
    hi = np.clip(np.asarray(upper_mw, dtype=float), 0.0, cap_mw)
    hi = np.maximum(hi, np.minimum(lo + tolerance_mw, cap_mw))
    zero = base_check(base, limits)
    n_limit = zero.all_severity.shape[1]
    g_lo = np.full((n, n_limit), np.nan)  # margins of every limit at the lower end
    g_hi = np.full(n, np.nan)  # margin of the worst limit at the upper end
    f_hi = np.zeros(n, dtype=int)  # which limit that is
    hi_binding = np.full(n, Binding.NONE, dtype=object)
    hi_element = np.full(n, "", dtype=object)
    hi_position = np.full(n, -1, dtype=int)
    hi_base = np.zeros(n, dtype=bool)
    settled_lo = np.ones(n, dtype=bool)
    solves0 = solver.n_solves

    def run(rows: np.ndarray, sizes: np.ndarray):
        return evaluate(solver, cases.take(rows), _take_base(base, rows), limits, sizes, loop)

    def mark_hi(rows, res, sub):
        hi_binding[rows] = res.binding[sub]
        hi_element[rows] = res.element[sub]
        hi_position[rows] = res.position[sub]
        hi_base[rows] = res.base_case[sub]
        g_hi[rows] = res.severity[sub]
        f_hi[rows] = res.flat[sub]

    # Margins at size 0 (the base case) for the false-position estimate.
    at_zero = lo <= 0
    g_lo[at_zero] = zero.all_severity[at_zero]

    # 1. verify the bracket (one batched call: the positive lower bounds and every upper bound)
    need_lo = np.flatnonzero(lo > 0)
    rows = np.concatenate([need_lo, np.arange(n)])
    res, settled = run(rows, np.concatenate([lo[need_lo], hi]))
    k = len(need_lo)
    lo_ok = res.feasible[:k]
    g_lo[need_lo[lo_ok]] = res.all_severity[:k][lo_ok]
    settled_lo[need_lo[lo_ok]] = settled[:k][lo_ok]
    hi_fail = ~res.feasible[k:]
    mark_hi(np.flatnonzero(hi_fail), res, k + np.flatnonzero(hi_fail))
    grow = np.flatnonzero(~hi_fail)
    lo[grow], g_lo[grow], settled_lo[grow] = hi[grow], res.all_severity[k + grow], settled[k + grow]
    bad_lo = need_lo[~lo_ok]
    hi[bad_lo] = lo[bad_lo]
    mark_hi(bad_lo, res, np.flatnonzero(~lo_ok))
    lo[bad_lo] = 0.0
    g_lo[bad_lo] = zero.all_severity[bad_lo]
    while grow.size:
        at_cap = grow[lo[grow] >= cap_mw]
        hi[at_cap] = np.inf
        grow = grow[lo[grow] < cap_mw]
        if not grow.size:
            break
        hi[grow] = np.minimum(cap_mw, np.maximum(2 * lo[grow], lo[grow] + tolerance_mw))
        res, settled = run(grow, hi[grow])
        fail = ~res.feasible
        mark_hi(grow[fail], res, np.flatnonzero(fail))
        ok = grow[~fail]
        lo[ok], g_lo[ok], settled_lo[ok] = hi[ok], res.all_severity[~fail], settled[~fail]
        grow = ok

    # 2. narrow every bracket to the tolerance, all cases in one batched solve per iteration
    slow = np.zeros(n, dtype=int)  # consecutive steps that did not halve the bracket
    secant = np.full(n, np.nan)  # local secant estimate from the last pair that missed
    active = np.flatnonzero(np.isfinite(hi) & (hi - lo > tolerance_mw))
    while active.size:
        width = hi[active] - lo[active]
        # Interpolate the margin of the limit violated at the upper end.
        gl = g_lo[active, f_hi[active]]
        gh = g_hi[active]
        usable = (
            (slow[active] < 2)
            & np.isfinite(gl)
            & np.isfinite(gh)
            & (gl <= 0)
            & (gh > 0)
            & (width > 2 * tolerance_mw)
        )
        frac = np.where(usable, -gl / np.where(usable, gh - gl, 1.0), 0.5)
        x = lo[active] + frac * width
        # A pair that missed gives the margin's local slope: its secant step is far better
        # than the false position over the whole bracket (near-quadratic convergence).
        sec = secant[active]
        use_sec = (
            np.isfinite(sec) & (sec > lo[active]) & (sec < hi[active]) & (width > 2 * tolerance_mw)
        )
        x = np.where(use_sec, sec, x)
        usable = usable | use_sec
        secant[active] = np.nan
        half = 0.5 * tolerance_mw
        x = np.clip(x, lo[active] + half, hi[active] - half)
        pair_rows = active[usable]
        single_rows = active[~usable]
        rows = np.concatenate([single_rows, pair_rows, pair_rows])
        sizes = np.concatenate(
            [
                0.5 * (lo[single_rows] + hi[single_rows]),
                x[usable] - half * 0.999,
                x[usable] + half * 0.999,
            ]
        )
        res, settled = run(rows, sizes)
        old_width = hi - lo
        # Process upper trial points last so a feasible lower point of a pair is kept, then
        # an infeasible upper point (or the single midpoint) tightens the other end.
        order = np.argsort(sizes, kind="stable")
        for j in order:
            case = rows[j]
            size = sizes[j]
            if res.feasible[j]:
                if size > lo[case]:
                    lo[case], settled_lo[case] = size, settled[j]
                    g_lo[case] = res.all_severity[j]
            elif size < hi[case]:
                hi[case] = size
                mark_hi(np.array([case]), res, np.array([j]))
        n_single, n_pair = single_rows.size, pair_rows.size
        if n_pair:
            ja = n_single + np.arange(n_pair)
            jb = ja + n_pair
            e = f_hi[pair_rows]
            ga = res.all_severity[ja, e]
            gb = res.all_severity[jb, e]
            xa, xb = sizes[ja], sizes[jb]
            ok = np.isfinite(ga) & np.isfinite(gb) & (gb > ga)
            step = np.where(ok, gb * (xb - xa) / np.where(ok, gb - ga, 1.0), np.nan)
            secant[pair_rows] = xb - step
        # Two steps in a row that did not halve the bracket are followed by a bisection step.
        halved = (hi[active] - lo[active]) <= 0.5 * old_width[active]
        slow[active] = np.where(halved, 0, slow[active] + 1)
        slow[active[slow[active] > 2]] = 0
        active = active[hi[active] - lo[active] > tolerance_mw]

    binding = hi_binding.copy()
    binding[hi_base & (binding != Binding.NOT_CONVERGED)] = Binding.BASE_CASE
    binding[~np.isfinite(hi)] = Binding.NONE
    return BisectionResult(
        lo,
        hi,
        binding,
        hi_element,
        hi_position,
        hi_base,
        settled_lo,
        hi_binding,
        solver.n_solves - solves0,
    )


def base_check(base: BaseState, limits: Limits) -> Check:
    """Check the base flows themselves (margins at size 0).

    Parameters
    ----------
    base : BaseState
        Base state of the cases.
    limits : Limits
        The study's limits.

    Returns
    -------
    Check
    """
    return check(base.flows, base, limits)


def _take_base(base: BaseState, rows: np.ndarray) -> BaseState:
    out = BaseState(
        base.flows.take(rows), None if base.hot_spot_c is None else base.hot_spot_c[rows]
    )
    out.over = base.over[rows]
    out.under = base.under[rows]
    return out


def base_of(solver, cases: Cases, limits: Limits) -> BaseState:
    """Solve every case at size 0 and record its base state (one solve when all share a base).

    Parameters
    ----------
    solver : AcSolver or LinDistFlowSolver
        The batched solver (any object with ``solve(p_mw, q_mvar) -> Flows``,
        ``n_solves``).
    cases : Cases
        The batch.
    limits : Limits
        The study's limits.

    Returns
    -------
    BaseState
    """
    p, q = cases.p_base_mw, cases.q_base_mvar
    if (
        len(cases) > 1
        and np.array_equal(p, np.broadcast_to(p[0], p.shape))
        and np.array_equal(q, np.broadcast_to(q[0], q.shape))
    ):
        one = solver.solve(p[:1], q[:1])
        rows = np.zeros(len(cases), dtype=int)
        return base_state(one.take(rows), limits)
    return base_state(solver.solve(p, q), limits)
