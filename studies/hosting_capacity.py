"""Per-bus hosting capacity of V2G export or EV-charging import, two-tier and control-aware.

The study answers, for every chosen bus, "how many MW can be added here before a planner's
limit is violated, and which limit binds where". Two tiers (see ``docs/hosting_capacity.md``):

1. **Screen** -- the LinDistFlow model evaluates all candidate buses together; all buses are
   bisected simultaneously on the linear model (each iteration is one matrix product over all
   buses).
2. **AC confirmation** -- the screen value ``s`` gives the bracket ``[s (1 - margin) - tol,
   s (1 + margin) + tol]``; one batched call of the fast AC power flow verifies it for every bus
   (a bracket that does not hold is widened: lower bound to 0, upper bound doubled), then all
   buses are bisected simultaneously on the AC model to ``tolerance_mw`` (default 1 kW).

``hosting_capacity_mw`` is the AC value whenever AC ran (``screen_mw`` keeps the screen value).
Control-aware HC (volt-var Category A/B, volt-watt) solves every trial point as a fixed point of
the inverter curves and the power flow. Stochastic HC lives in
:mod:`studies.hosting_capacity_stochastic`, figures and the report in
:mod:`studies.hosting_capacity_report`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from grids.errors import ConvergenceError, ScenarioError, check_problems
from grids.feeder_model import FeederModel
from grids.limits import (
    Limit,
    Violation,
    upper_limit_violation,
    voltage_violations,
)
from grids.params import is_number, read_params, unknown_keys
from studies.hosting_capacity_engine import (
    AC_TOLERANCE_MVA,
    HC_CRITERIA_PARAMS,
    AcSolver,
    Binding,
    BisectionResult,
    Cases,
    ControlLoop,
    HostingCapacityCriteria,
    HotSpot,
    Injection,
    Limits,
    LinDistFlowSolver,
    base_of,
    bisect,
    criteria_problems,
)
from studies.hosting_capacity_report import write_outputs
from studies.hosting_capacity_stochastic import run_stochastic
from studies.hosting_capacity_types import (
    DEFAULT_SCREEN_MARGIN,
    DEFAULT_TOLERANCE_MW,
    HC_OTHER_KEYS,
    HC_SCENARIO_PARAMS,
    Control,
    Method,
    Mode,
    check_arguments,
    check_pf,
    q_per_p_from_pf,
)
from studies.study_inputs import line_rating_notes
from vehicle_models.controls import steady_state_response
from vehicle_models.settings import InverterSettings

__all__ = [
    "Binding",
    "Control",
    "ControlLoop",
    "HostingCapacityCriteria",
    "HostingCapacityResult",
    "HostingCapacityStudy",
    "Method",
    "Mode",
    "hosting_capacity_metrics",
    "run_hosting_capacity_study",
]


_check_arguments = check_arguments  # old private name


def _plain(value: Any) -> Any:
    """A JSON value: an enum member as its value."""
    return value.value if isinstance(value, Enum) else value


def inverter_settings(
    control_settings: InverterSettings | Mapping | None, *, path: str = "control_settings"
) -> InverterSettings | None:
    """The inverter settings of the added units, parsed once at the input boundary.

    Parameters
    ----------
    control_settings : InverterSettings, Mapping or None
        Already parsed settings (e.g. a scenario's ``fleet.inverter_settings()``, returned as
        is), a ``[fleet.control]`` table (parsed with
        :meth:`vehicle_models.settings.InverterSettings.from_dict`), or ``None`` / an empty
        table for the IEEE 1547-2018 defaults of the control's category.
    path : str
        Key path of the table in messages.

    Returns
    -------
    InverterSettings or None

    Raises
    ------
    ScenarioError
        Every problem of the table, or a value that is neither settings nor a table.
    """
    if control_settings is None or isinstance(control_settings, InverterSettings):
        return control_settings
    if not isinstance(control_settings, Mapping):
        raise ScenarioError(
            f"{path}: expected a [fleet.control] table or InverterSettings, "
            f"got {type(control_settings).__name__}"
        )
    if not control_settings:
        return None
    return InverterSettings.from_dict(dict(control_settings), path=path)


def _control_function(control: Control, settings: InverterSettings | None, sign: float):
    """Steady-state P/Q response of the inverter curves, vectorized over cases and buses.

    Returns ``f(vm_pu, sign) -> (p_pu, q_pu)``: ``p_pu`` the fraction of each unit's rated
    active power it delivers (volt-watt curtails export; volt-var with reactive priority may
    curtail it too), ``q_pu`` its reactive power per unit of rating (+ injected). Uses
    :func:`vehicle_models.controls.steady_state_response` with ``settings`` (already parsed,
    see :func:`inverter_settings`) or, without them, the IEEE 1547-2018 defaults of the
    control's category.
    """
    if settings is not None:
        inv = settings
    else:
        category = "A" if control is Control.VOLT_VAR_A else "B"
        inv = InverterSettings.defaults(voltage_category=category)
    function = "volt_watt" if control is Control.VOLT_WATT else "volt_var"

    def respond(vm_pu: np.ndarray, _sign: np.ndarray):
        p_pu, q_pu = steady_state_response(function, vm_pu, inv, p_avail_pu=sign)
        return np.abs(np.asarray(p_pu, dtype=float)), np.asarray(q_pu, dtype=float)

    return respond


@dataclass
class HostingCapacityResult:
    """Result of :func:`run_hosting_capacity_study`.

    ``table`` has one row per bus: ``bus``, ``hosting_capacity_mw`` (AC when AC ran),
    ``screen_mw`` (LinDistFlow, NaN when not run), ``difference_mw`` (AC - screen),
    ``binding``, ``where`` (``"bus 17"``, ``"line 3"``, ``"trafo 0"``), ``base_case_criterion``
    (the pre-existing violation when ``binding == "base_case"``), ``within_screen_bracket``,
    ``control_converged``.
    """

    feeder: str
    mode: Mode
    method: Method
    control: Control
    criteria: HostingCapacityCriteria
    table: pd.DataFrame
    tolerance_mw: float
    screen_margin: float
    base_case_violations: list[str] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)
    missing_ratings: list[str] = field(default_factory=list)
    timings_s: dict[str, float] = field(default_factory=dict)
    n_ac_solves: int = 0
    distribution: object | None = None  # StochasticResult when samples were drawn

    def to_json(self) -> dict:
        """The CLI's JSON document (see ``v2g-cosim hosting-capacity --json``).

        Returns
        -------
        dict
            ``feeder``, ``method``, ``mode``, ``control``, ``tolerance_mw`` [MW],
            ``criteria``, ``base_case_violations``, ``violations`` (named limits),
            ``missing_ratings`` (lines whose loading is not checked), ``results`` (one item
            per bus) and, with samples, ``distribution``.
        """
        results = []
        for row in self.table.itertuples(index=False):
            item = {
                "bus": int(row.bus),
                "hosting_capacity_mw": float(row.hosting_capacity_mw),
                "screen_mw": None if np.isnan(row.screen_mw) else float(row.screen_mw),
                "difference_mw": None if np.isnan(row.difference_mw) else float(row.difference_mw),
                "binding": row.binding,
                "where": row.where,
            }
            if row.binding == Binding.BASE_CASE.value:
                item["base_case_criterion"] = row.base_case_criterion
            if self.control is not Control.NONE:
                item["control_converged"] = bool(row.control_converged)
            results.append(item)
        doc = {
            "feeder": self.feeder,
            "method": self.method.value,
            "mode": self.mode.value,
            "control": self.control.value,
            "tolerance_mw": self.tolerance_mw,
            # every declared limit (HC_CRITERIA_PARAMS), so the document says what was checked
            "criteria": {
                p.name: _plain(getattr(self.criteria, p.name)) for p in HC_CRITERIA_PARAMS
            },
            "base_case_violations": self.base_case_violations,
            "violations": [v.to_dict() for v in self.violations],
            "missing_ratings": self.missing_ratings,
            "results": results,
        }
        if self.distribution is not None:
            doc["distribution"] = self.distribution.summary()
        return doc


class HostingCapacityStudy:
    """A feeder prepared for hosting-capacity questions (one feeder model, built once, reused).

    Every power flow, the LinDistFlow screen and the AC confirmation alike, is solved by the
    one :class:`grids.feeder_model.FeederModel` of the feeder.

    Parameters
    ----------
    feeder : str, path, FeederModel or pandapowerNet
        Embedded feeder name or pandapower JSON path (built with
        :meth:`grids.feeder_model.FeederModel.from_name`), a feeder model, or an already
        prepared net (used as is); for the last two ``load_scale`` and ``ext_grid_vm_pu`` are
        not applied. The AC tolerance of a given model is its own (the study's default is
        :data:`studies.hosting_capacity_engine.AC_TOLERANCE_MVA`).
    load_scale : float
        Scale of every load [-] (as in ``v2g-cosim powerflow``).
    ext_grid_vm_pu : float or None
        Slack voltage set-point [pu].
    criteria : HostingCapacityCriteria
        Planner limits.
    need_screen : bool
        Build the LinDistFlow screen (requires a radial feeder).
    need_ac : bool
        Build the fast AC path.
    calibrate_screen : bool
        With both solvers, anchor the LinDistFlow screen on the AC base case (voltages shifted
        by the base-case error, loadings scaled by the base-case AC/LinDistFlow ratio) so the
        screen brackets the AC value more tightly (see ``docs/hosting_capacity.md``).
    """

    def __init__(
        self,
        feeder,
        *,
        load_scale: float = 1.0,
        ext_grid_vm_pu: float | None = None,
        criteria: HostingCapacityCriteria | None = None,
        need_screen: bool = True,
        need_ac: bool = True,
        calibrate_screen: bool = True,
    ) -> None:
        self.criteria = criteria or HostingCapacityCriteria()
        self.criteria.validate()
        if isinstance(feeder, FeederModel):
            self.model = feeder
            self.feeder = feeder.name
        elif isinstance(feeder, str | Path):
            self.model = FeederModel.from_name(
                feeder,
                load_scale=load_scale,
                ext_grid_vm_pu=ext_grid_vm_pu,
                tolerance_mva=AC_TOLERANCE_MVA,
            )
            self.feeder = str(feeder)
        else:  # an already prepared pandapower net (used as is, not copied)
            self.model = FeederModel(feeder, tolerance_mva=AC_TOLERANCE_MVA)
            self.feeder = str(feeder.name or "feeder")
        self.net = net = self.model.net
        # Both tiers solve through the one feeder model (same bus, line, transformer order).
        self.ac = AcSolver(self.model) if need_ac else None
        self.screen = LinDistFlowSolver(self.model) if need_screen else None
        self.bus, self.line, self.trafo = self.model.bus, self.model.line, self.model.trafo
        if self.ac is not None and self.screen is not None and calibrate_screen:
            p0, q0 = self.ac.base_injection()
            ac_base = self.ac.solve(p0[None, :], q0[None, :])
            if not ac_base.converged.all():
                raise ConvergenceError(
                    f"{self.feeder}: the base case AC power flow did not converge"
                )
            self.screen.calibrate(ac_base)
        self.screen_calibrated = bool(calibrate_screen and self.ac and self.screen)
        self._bus_col = {int(b): i for i, b in enumerate(self.bus)}
        self.slack_bus = set(int(b) for b in net.ext_grid.bus[net.ext_grid.in_service.astype(bool)])
        self.slack_bus |= (
            set(int(b) for b in net.gen.bus[net.gen.in_service.astype(bool)])
            if len(net.gen)
            else set()
        )
        hot = None
        if self.criteria.max_hot_spot_c is not None and len(self.trafo):
            hot = HotSpot(self.criteria)
        self.limits = Limits(self.criteria, hot)
        load_p = np.abs(net.load.p_mw * net.load.scaling)[net.load.in_service.astype(bool)].sum()
        self.default_cap_mw = float(max(5.0 * load_p, 5.0))

    # ----------------------------------------------------------------- buses and inputs
    def candidate_buses(self) -> np.ndarray:
        """Every bus that can host an injection.

        Returns
        -------
        numpy.ndarray of int
            pandapower indices of the energized buses (in service and connected to an external
            grid) except slack and PV buses.
        """
        live = ~self.model.dead_bus  # in service and connected to an external grid
        return np.array(
            [int(b) for b, ok in zip(self.bus, live, strict=True) if ok and b not in self.slack_bus]
        )

    def resolve_buses(self, buses) -> np.ndarray:
        """Validate requested buses.

        Parameters
        ----------
        buses : None, "all", int or iterable of int
            pandapower bus indices; ``None`` or ``"all"``: every candidate bus.

        Returns
        -------
        numpy.ndarray of int
            Sorted, unique bus indices.

        Raises
        ------
        ScenarioError
            Unknown, slack or dead buses (every problem listed), or no bus at all.
        """
        if buses is None or (isinstance(buses, str) and buses == "all"):
            return self.candidate_buses()
        if isinstance(buses, int | np.integer):
            buses = [buses]
        problems = []
        out = []
        known = set(int(b) for b in self.bus)
        for b in buses:
            if isinstance(b, str) and b == "all":
                return self.candidate_buses()
            try:
                value = int(b)
            except (TypeError, ValueError):
                problems.append(f"bus: {b!r} is not a bus index")
                continue
            if value not in known:
                problems.append(
                    f"bus: {value} is not a bus of {self.feeder} "
                    f"(valid indices {min(known)}..{max(known)}, see `v2g-cosim feeders`)"
                )
            elif value in self.slack_bus:
                problems.append(f"bus: {value} is the slack (external grid) bus of {self.feeder}")
            elif self.model.dead_bus[self._bus_col[value]]:
                problems.append(
                    f"bus: {value} of {self.feeder} is out of service or connected to no "
                    "external grid"
                )
            else:
                out.append(value)
        check_problems(problems, ScenarioError, "invalid hosting-capacity buses")
        if not out:
            raise ScenarioError("bus: no bus given")
        return np.array(sorted(set(out)))

    def _cases(self, solver, buses, mode: Mode, q_per_p: float, control) -> Cases:
        p0, q0 = solver.base_injection()
        col = {int(b): i for i, b in enumerate(solver.bus)}
        n = len(buses)
        direction = np.zeros((n, len(solver.bus)))
        direction[np.arange(n), [col[int(b)] for b in buses]] = 1.0 if mode is Mode.EXPORT else -1.0
        return Cases(
            np.tile(p0, (n, 1)),
            np.tile(q0, (n, 1)),
            Injection(direction, q_per_p=q_per_p, control=control),
        )

    def where(self, solver, element: str, position: int) -> str:
        """Name of a binding element, e.g. ``"line 3"``.

        Parameters
        ----------
        solver : AcSolver or LinDistFlowSolver
            The solver whose column order ``position`` refers to.
        element : str
            ``"bus"``, ``"line"``, ``"trafo"`` or ``""`` (nothing binds).
        position : int
            Column in the solver's bus, line or transformer arrays; -1 for none.

        Returns
        -------
        str
            ``"<element> <pandapower index>"``, or ``""``.
        """
        if position < 0 or not element:
            return ""
        index = {"bus": solver.bus, "line": self.line, "trafo": self.trafo}[element][position]
        return f"{element} {int(index)}"

    def _base_flows(self):
        """The base case (no added injection): AC if available, else the screen (solved once
        per study object; it depends only on the feeder and its operating point)."""
        cached = getattr(self, "_base_flows_cache", None)
        if cached is not None:
            return cached
        solver = self.ac or self.screen
        p0, q0 = solver.base_injection()
        flows = solver.solve(p0[None, :], q0[None, :])
        if not flows.converged.all():
            raise ConvergenceError(f"{self.feeder}: the base case power flow did not converge")
        self._base_flows_cache = (solver, flows)
        return solver, flows

    def base_case_violations(self) -> list[str]:
        """Planner limits (the study's criteria) violated before any injection, as sentences.

        Returns
        -------
        list of str
            One sentence per bus, line or transformer outside the criteria.
        """
        solver, flows = self._base_flows()
        c = self.criteria
        out = []
        vm = flows.vm_pu[0]
        for i in np.flatnonzero(vm > c.v_max_pu):
            out.append(f"overvoltage at bus {int(solver.bus[i])}: {vm[i]:.4f} pu > {c.v_max_pu}")
        for i in np.flatnonzero(vm < c.v_min_pu):
            out.append(f"undervoltage at bus {int(solver.bus[i])}: {vm[i]:.4f} pu < {c.v_min_pu}")
        for name, load, index, limit in (
            ("line", flows.line_loading_percent[0], self.line, c.max_line_loading_percent),
            ("trafo", flows.trafo_loading_percent[0], self.trafo, c.max_trafo_loading_percent),
        ):
            for i in np.flatnonzero(np.nan_to_num(load) > limit):
                out.append(f"{name} {int(index[i])} loading {load[i]:.1f} % > {limit}")
        return out

    def missing_ratings(self) -> list[str]:
        """Lines without a real thermal rating (missing, zero or a placeholder such as
        case33bw's 99999 kA): their loading is not a limit and is said to be unchecked.

        Returns
        -------
        list of str
            The missing-rating sentence (empty when every line is rated).
        """
        return line_rating_notes(self.net)

    def base_case_limit_violations(self) -> list[Violation]:
        """Named limits broken before any injection.

        Returns
        -------
        list of Violation
            ANSI C84.1 ranges A and B at the buses, and line and transformer loading above the
            study's criteria (``max_line_loading_percent``, ``max_trafo_loading_percent``).
        """
        solver, flows = self._base_flows()
        c = self.criteria
        out = voltage_violations(
            flows.vm_pu[0], bus_names=[f"bus {int(b)}" for b in solver.bus], standard="ansi"
        )
        # NaN where a line has no rating (see missing_ratings) or is out of service
        line_load = flows.line_loading_percent
        for limit, load, index, name, value in (
            (Limit.LINE_LOADING, line_load, self.line, "line",
             c.max_line_loading_percent),
            (Limit.TRANSFORMER_LOADING, flows.trafo_loading_percent, self.trafo, "trafo",
             c.max_trafo_loading_percent),
        ):  # fmt: skip
            load = np.asarray(load, dtype=float)
            if load.size == 0 or value is None:
                continue
            found = upper_limit_violation(
                load[:1],
                float(value),
                limit=limit,
                quantity="loading_percent",
                names=[f"{name} {int(i)}" for i in index],
            )
            if found is not None:
                out.append(found)
        return out

    # ----------------------------------------------------------------- the study
    @staticmethod
    def _check_search(pf, tolerance_mw, screen_margin, cap_mw, problems: list[str]):
        """The declared ranges of the search arguments, ``|pf| >= 0.1`` and ``cap > tol``;
        returns the checked power factor (``None`` if rejected)."""
        pf = check_pf(pf, key="pf", problems=problems)
        checked = check_arguments(
            {"tolerance_mw": tolerance_mw, "screen_margin": screen_margin, "cap_mw": cap_mw},
            problems,
        )
        cap, tol = checked["cap_mw"], checked["tolerance_mw"]
        if cap is not None and tol is not None and cap <= tol:
            problems.append(f"cap_mw: {cap:g} must be above tolerance_mw ({tol:g})")
        return pf

    def run(
        self,
        buses=None,
        *,
        mode: Mode = Mode.EXPORT,
        method: Method = Method.SCREEN_AC,
        pf: float = 1.0,
        control: Control = Control.NONE,
        control_settings: InverterSettings | Mapping | None = None,
        loop: ControlLoop | None = None,
        tolerance_mw: float = DEFAULT_TOLERANCE_MW,
        screen_margin: float = DEFAULT_SCREEN_MARGIN,
        cap_mw: float | None = None,
    ) -> HostingCapacityResult:
        """Per-bus hosting capacity (see the module docstring for the two tiers).

        Parameters
        ----------
        buses : None, "all", int or list of int
            pandapower bus indices (default: every candidate bus).
        mode : Mode, keyword-only
            ``export`` (V2G/DER injection) or ``import`` (EV charging).
        method : Method, keyword-only
            ``screen``, ``ac`` or ``screen+ac``.
        pf : float, keyword-only
            Fixed power factor of the added injection (``> 0`` absorbs reactive power) [-].
        control : Control, keyword-only
            Inverter control of the added units (fixed point with the power flow).
        control_settings : InverterSettings, Mapping or None, keyword-only
            Settings of the control: parsed settings (a scenario's
            ``fleet.inverter_settings()``), a ``[fleet.control]`` table (parsed here, once)
            or ``None`` for the IEEE 1547-2018 defaults of the category.
        loop : ControlLoop or None, keyword-only
            Settings of the control fixed-point iteration.
        tolerance_mw : float, keyword-only
            Bisection tolerance [MW].
        screen_margin : float, keyword-only
            Relative half-width of the AC bracket around the screen value [-].
        cap_mw : float or None, keyword-only
            Largest size searched [MW] (default 5 x total feeder load, at least 5 MW).

        Returns
        -------
        HostingCapacityResult

        Raises
        ------
        ScenarioError
            Invalid arguments (every problem listed).
        ConvergenceError
            The AC base case does not solve.
        """
        problems: list[str] = []
        kinds = check_arguments({"mode": mode, "method": method, "control": control}, problems)
        mode, method, control = kinds["mode"], kinds["method"], kinds["control"]
        checked_pf = self._check_search(pf, tolerance_mw, screen_margin, cap_mw, problems)
        if control is Control.VOLT_WATT and mode is Mode.IMPORT:
            problems.append("control: volt_watt curtails export only; use it with mode export")
        if control not in (None, Control.NONE) and checked_pf is not None and abs(pf) < 1:
            problems.append(
                "pf: a fixed power factor cannot be combined with a volt-var/watt control"
            )
        if method not in (None, Method.AC) and self.screen is None:
            problems.append(f"method: {method.value!r} needs the LinDistFlow screen")
        if method not in (None, Method.SCREEN) and self.ac is None:
            problems.append(f"method: {method.value!r} needs the AC power flow")
        settings = None
        try:
            settings = inverter_settings(control_settings)
        except ScenarioError as error:
            problems.extend(error.problems or [str(error)])
        check_problems(problems, ScenarioError, "invalid hosting-capacity study")
        bus_list = self.resolve_buses(buses)
        cap = float(cap_mw or self.default_cap_mw)
        q_per_p = q_per_p_from_pf(pf)
        respond = (
            _control_function(control, settings, 1.0 if mode is Mode.EXPORT else -1.0)
            if control is not Control.NONE
            else None
        )
        timings: dict[str, float] = {}
        n = len(bus_list)
        screen: BisectionResult | None = None
        if method is not Method.AC:
            t0 = time.perf_counter()
            cases = self._cases(self.screen, bus_list, mode, q_per_p, respond)
            base = base_of(self.screen, cases, self.limits)
            screen = bisect(
                self.screen,
                cases,
                base,
                self.limits,
                lower_mw=np.zeros(n),
                upper_mw=np.full(n, cap),
                tolerance_mw=tolerance_mw,
                cap_mw=cap,
                loop=loop,
            )
            timings["screen_s"] = time.perf_counter() - t0
        final, solver = screen, self.screen
        ac_solves0 = self.ac.n_solves if self.ac else 0
        if method is not Method.SCREEN:
            t0 = time.perf_counter()
            cases = self._cases(self.ac, bus_list, mode, q_per_p, respond)
            base = base_of(self.ac, cases, self.limits)
            if not base.flows.converged.all():
                raise ConvergenceError(
                    f"{self.feeder}: the base case AC power flow did not converge"
                )
            if screen is None:
                lower, upper = np.zeros(n), np.full(n, cap)
            else:
                s = screen.hosting_capacity_mw
                lower = s * (1 - screen_margin) - tolerance_mw
                upper = np.where(np.isfinite(screen.upper_mw), s * (1 + screen_margin), cap)
                upper = upper + tolerance_mw
            final = bisect(
                self.ac,
                cases,
                base,
                self.limits,
                lower_mw=lower,
                upper_mw=upper,
                tolerance_mw=tolerance_mw,
                cap_mw=cap,
                loop=loop,
            )
            solver = self.ac
            timings["ac_s"] = time.perf_counter() - t0
        table = self._table(
            bus_list, final, solver, screen, mode, method, screen_margin, tolerance_mw
        )
        return HostingCapacityResult(
            feeder=self.feeder,
            mode=mode,
            method=method,
            control=control,
            criteria=self.criteria,
            table=table,
            tolerance_mw=tolerance_mw,
            screen_margin=screen_margin,
            base_case_violations=self.base_case_violations(),
            violations=self.base_case_limit_violations(),
            missing_ratings=self.missing_ratings(),
            timings_s=timings,
            n_ac_solves=(self.ac.n_solves - ac_solves0) if self.ac else 0,
        )

    def load_injection(self, solver) -> tuple[np.ndarray, np.ndarray]:
        """Injection of the net's loads alone per bus (negative), as scaled in the net.

        Parameters
        ----------
        solver : AcSolver or LinDistFlowSolver
            Gives the bus order.

        Returns
        -------
        p_mw, q_mvar : numpy.ndarray (n_bus,)
            Load injection per bus [MW, Mvar].
        """
        net = self.net
        loads = net.load[net.load.in_service.astype(bool)]
        p = (-loads.p_mw * loads.scaling).groupby(loads.bus).sum()
        q = (-loads.q_mvar * loads.scaling).groupby(loads.bus).sum()
        bus = pd.Index(solver.bus)
        return (
            p.reindex(bus, fill_value=0.0).to_numpy(float),
            q.reindex(bus, fill_value=0.0).to_numpy(float),
        )

    def time_series(
        self,
        load_scale_profile,
        buses=None,
        *,
        mode: Mode = Mode.EXPORT,
        pf: float = 1.0,
        tolerance_mw: float = DEFAULT_TOLERANCE_MW,
        screen_margin: float = DEFAULT_SCREEN_MARGIN,
        cap_mw: float | None = None,
    ) -> pd.DataFrame:
        """Time-series hosting capacity: the largest injection violating no limit at any step.

        Parameters
        ----------
        load_scale_profile : array_like (n_steps,)
            Multiplier [-] of every load at each step (e.g. a day of 15-min load in pu of the
            feeder's nominal load); the net's other injections stay as they are.
        buses, mode, pf, tolerance_mw, screen_margin, cap_mw
            As in :meth:`run`. Every (step, bus) pair is one case: screened together with
            LinDistFlow, then AC-bisected together.

        Returns
        -------
        pandas.DataFrame
            One row per bus: ``hosting_capacity_mw`` (minimum over steps, AC), ``binding``,
            ``where``, ``binding_step`` (index of the step that sets the minimum) and
            ``binding_load_scale``.
        """
        profile = np.asarray(load_scale_profile, dtype=float).ravel()
        problems: list[str] = []
        mode = check_arguments({"mode": mode}, problems)["mode"]
        self._check_search(pf, tolerance_mw, screen_margin, cap_mw, problems)
        if profile.size == 0:
            problems.append("load_scale_profile: empty")
        elif not np.all(np.isfinite(profile)) or np.any(profile < 0):
            bad = int(np.flatnonzero(~np.isfinite(profile) | (profile < 0))[0])
            problems.append(
                f"load_scale_profile: step {bad}: {profile[bad]} is not a finite number >= 0"
            )
        if self.ac is None or self.screen is None:
            problems.append("time-series hosting capacity needs both LinDistFlow and AC")
        check_problems(problems, ScenarioError, "invalid time-series hosting-capacity study")
        bus_list = self.resolve_buses(buses)
        cap = float(cap_mw or self.default_cap_mw)
        q_per_p = q_per_p_from_pf(pf)
        n_step, n = profile.size, len(bus_list)
        results = []
        for solver in (self.screen, self.ac):
            one = self._cases(solver, bus_list, mode, q_per_p, None)
            p_load, q_load = self.load_injection(solver)
            shift = (profile - 1.0)[:, None, None]
            p_base = (one.p_base_mw[None] + shift * p_load).reshape(n_step * n, -1)
            q_base = (one.q_base_mvar[None] + shift * q_load).reshape(n_step * n, -1)
            direction = np.tile(one.injection.direction_mw, (n_step, 1))
            cases = Cases(p_base, q_base, Injection(direction, q_per_p=q_per_p))
            base = base_of(solver, cases, self.limits)
            if solver is self.ac and not base.flows.converged.all():
                bad = int(np.flatnonzero(~base.flows.converged)[0]) // n
                raise ConvergenceError(
                    f"{self.feeder}: base-case AC power flow failed at step {bad}", index=bad
                )
            if solver is self.screen:
                lower, upper = np.zeros(n_step * n), np.full(n_step * n, cap)
            else:
                s = results[0].hosting_capacity_mw
                lower = s * (1 - screen_margin) - tolerance_mw
                upper = np.where(np.isfinite(results[0].upper_mw), s * (1 + screen_margin), cap)
                upper = upper + tolerance_mw
            results.append(
                bisect(
                    solver,
                    cases,
                    base,
                    self.limits,
                    lower_mw=lower,
                    upper_mw=upper,
                    tolerance_mw=tolerance_mw,
                    cap_mw=cap,
                )
            )
        ac = results[1]
        hc = ac.hosting_capacity_mw.reshape(n_step, n)
        step = np.argmin(hc, axis=0)
        rows = []
        for j, b in enumerate(bus_list):
            k = step[j] * n + j
            binding = ac.binding[k]
            rows.append(
                {
                    "bus": int(b),
                    "mode": mode.value,
                    "hosting_capacity_mw": float(hc[step[j], j]),
                    "screen_mw": float(results[0].hosting_capacity_mw[k]),
                    "binding": binding.value,
                    "where": ""
                    if binding is Binding.NONE
                    else self.where(self.ac, ac.element[k], ac.position[k]),
                    "binding_step": int(step[j]),
                    "binding_load_scale": float(profile[step[j]]),
                }
            )
        return pd.DataFrame(rows)

    def control_gain(
        self, buses=None, *, mode: Mode = Mode.EXPORT, pf_absorbing: float = 0.95, **kwargs
    ) -> pd.DataFrame:
        """Hosting capacity per bus for unity PF, a fixed absorbing PF, volt-var A/B and
        volt-watt (IEEE 1547-2018 defaults), with the gain over unity PF [MW and %].

        Parameters
        ----------
        buses : None, "all", int or list of int
            As in :meth:`run`.
        mode : Mode, keyword-only
            ``export`` or ``import`` (volt-watt is left out for import).
        pf_absorbing : float, keyword-only
            The fixed absorbing power factor compared [-].
        **kwargs
            Further keyword arguments of :meth:`run` (tolerance, margin, cap, method).

        Returns
        -------
        pandas.DataFrame
            One row per bus and setting: ``hosting_capacity_mw``, ``gain_mw`` [MW],
            ``gain_percent`` [%], ``binding``, ``where``, ``control_converged``.
        """
        problems: list[str] = []
        mode = check_arguments({"mode": mode}, problems)["mode"]
        check_problems(problems, ScenarioError, "invalid hosting-capacity study")
        settings = [
            ("unity_pf", Control.NONE, 1.0),
            (f"pf_{pf_absorbing}", Control.NONE, pf_absorbing),
        ]
        settings += [
            (c.value, c, 1.0)
            for c in (Control.VOLT_VAR_A, Control.VOLT_VAR_B, Control.VOLT_WATT)
            if not (c is Control.VOLT_WATT and mode is Mode.IMPORT)
        ]
        frames = []
        for label, control, pf in settings:
            table = self.run(buses, mode=mode, control=control, pf=pf, **kwargs).table
            frames.append(table.assign(setting=label))
        out = pd.concat(frames, ignore_index=True)
        unity = out[out.setting == "unity_pf"].set_index("bus").hosting_capacity_mw
        out["gain_mw"] = out.hosting_capacity_mw - out.bus.map(unity)
        out["gain_percent"] = 100.0 * out.gain_mw / out.bus.map(unity).replace(0.0, np.nan)
        return out[
            ["bus", "setting", "hosting_capacity_mw", "gain_mw", "gain_percent", "binding",
             "where", "control_converged"]
        ]  # fmt: skip

    def _table(self, bus_list, final, solver, screen, mode, method, margin, tol) -> pd.DataFrame:
        rows = []
        for i, b in enumerate(bus_list):
            binding = final.binding[i]
            where = self.where(solver, final.element[i], final.position[i])
            base_criterion = ""
            if binding is Binding.BASE_CASE:
                # The pre-existing violation the injection worsens (the kind found at the bound).
                base_criterion = final.raw_binding[i].value
            if binding is Binding.NONE:
                where = ""
            s = screen.hosting_capacity_mw[i] if screen is not None else np.nan
            hc = final.hosting_capacity_mw[i]
            within = (
                bool(s * (1 - margin) - tol <= hc <= s * (1 + margin) + tol)
                if screen is not None and final is not screen
                else True
            )
            rows.append(
                {
                    "bus": int(b),
                    "mode": mode.value,
                    "method": method.value,
                    "hosting_capacity_mw": float(hc),
                    "screen_mw": float(s),
                    "difference_mw": float(hc - s) if screen is not None else np.nan,
                    "binding": binding.value,
                    "where": where,
                    "base_case_criterion": base_criterion,
                    "within_screen_bracket": within,
                    "control_converged": bool(final.control_settled[i]),
                }
            )
        return pd.DataFrame(rows)


def run_hosting_capacity_study(
    feeder="case33bw",
    *,
    buses=None,
    mode: Mode | str = Mode.EXPORT,
    method: Method | str = Method.SCREEN_AC,
    criteria: HostingCapacityCriteria | None = None,
    load_scale: float = 1.0,
    ext_grid_vm_pu: float | None = None,
    pf: float = 1.0,
    control: Control | str = Control.NONE,
    control_settings: InverterSettings | Mapping | None = None,
    tolerance_mw: float = DEFAULT_TOLERANCE_MW,
    screen_margin: float = DEFAULT_SCREEN_MARGIN,
    cap_mw: float | None = None,
    samples: int | None = None,
    seed: int = 0,
    out_dir: str | Path | None = None,
) -> HostingCapacityResult:
    """Run a hosting-capacity study end to end (the function behind the CLI).

    Parameters
    ----------
    feeder : str or path
        Embedded feeder name or pandapower JSON path.
    buses : None, "all", int or list of int
        pandapower bus indices (default: every non-slack bus).
    mode : Mode
        ``export`` (V2G/DER injection) or ``import`` (EV charging).
    method : Method
        ``screen``, ``ac`` or ``screen+ac`` (default).
    criteria : HostingCapacityCriteria
        Planner limits (voltage band, optional voltage change, loading, hot spot).
    load_scale, ext_grid_vm_pu : float
        Operating point of the feeder.
    pf : float
        Fixed power factor of the added injection (``> 0`` absorbs reactive power).
    control : Control
        Inverter control of the added units (fixed point with the power flow).
    control_settings : InverterSettings, Mapping or None
        Inverter settings of the control: parsed settings (pass a scenario's
        ``fleet.inverter_settings()``) or a ``[fleet.control]`` table, parsed here once.
    tolerance_mw : float
        Bisection tolerance [MW] (default 0.001 = 1 kW).
    screen_margin : float
        Relative half-width of the AC bracket around the screen value (default 0.25).
    cap_mw : float or None
        Largest size searched [MW] (default 5 x total feeder load, at least 5 MW).
    samples, seed : int
        With ``samples``, also run the stochastic study (Monte Carlo over plug-in locations
        and sizes, see :mod:`studies.hosting_capacity_stochastic`); AC-confirmed near the
        percentiles unless ``method`` is ``screen``.
    out_dir : path or None
        Write ``hosting_capacity.csv`` (+ Parquet), figures and ``report.html`` there.

    Returns
    -------
    HostingCapacityResult
        Per-bus table (``hosting_capacity_mw`` [MW], ``binding``, ``where``), the base case's
        ``violations`` and ``missing_ratings``; ``to_json()`` gives the CLI document.

    Raises
    ------
    ScenarioError
        Invalid arguments (checked against :data:`HC_SCENARIO_PARAMS`, every problem listed).
    FeederError, ConvergenceError
        The feeder cannot be loaded, or its base case does not solve.

    Examples
    --------
    >>> from studies.hosting_capacity import run_hosting_capacity_study
    >>> result = run_hosting_capacity_study("case33bw", buses=[17], method="ac")
    >>> row = result.table.iloc[0]
    >>> int(row.bus), row.binding, round(float(row.hosting_capacity_mw), 2) > 0
    (17, 'overvoltage', True)
    """
    # every argument at once, before the feeder is built (study.run checks the combinations)
    problems: list[str] = []
    checked = check_arguments(
        {
            "mode": mode,
            "method": method,
            "control": control,
            "load_scale": load_scale,
            "ext_grid_vm_pu": ext_grid_vm_pu,
            "samples": samples,
            "seed": seed,
        },
        problems,
    )
    method = checked["method"]
    HostingCapacityStudy._check_search(pf, tolerance_mw, screen_margin, cap_mw, problems)
    try:
        control_settings = inverter_settings(control_settings)
    except ScenarioError as error:
        problems.extend(error.problems or [str(error)])
    check_problems(problems, ScenarioError, "invalid hosting-capacity study")
    study = HostingCapacityStudy(
        feeder,
        load_scale=load_scale,
        ext_grid_vm_pu=ext_grid_vm_pu,
        criteria=criteria,
        need_screen=method is not Method.AC or samples is not None,
        need_ac=method is not Method.SCREEN,
    )
    result = study.run(
        buses,
        mode=mode,
        method=method,
        pf=pf,
        control=control,
        control_settings=control_settings,
        tolerance_mw=tolerance_mw,
        screen_margin=screen_margin,
        cap_mw=cap_mw,
    )
    if samples is not None:
        result.distribution = run_stochastic(
            study,
            n_samples=int(samples),
            seed=seed,
            mode=result.mode,
            pf=pf,
            tolerance_mw=tolerance_mw,
            screen_margin=screen_margin,
            confirm="none" if method is Method.SCREEN else "near",
        )
    if out_dir is not None:
        write_outputs(study, result, out_dir)
    return result


#: Top-level keys of :func:`hosting_capacity_metrics` (what a sweep may ask for).
METRIC_KEYS = (
    "feeder",
    "method",
    "mode",
    "control",
    "tolerance_mw",
    "criteria",
    "base_case_violations",
    "results",
    "distribution",
    "violations",
    "hc_min_mw",
    "hc_median_mw",
    "hc_mean_mw",
    "hc_max_mw",
    "binding_counts",
)


def read_hosting_capacity_scenario(scenario: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Validate a hosting-capacity scenario dictionary; every problem at once.

    Parameters
    ----------
    scenario : dict
        Keys of :data:`HC_SCENARIO_PARAMS` plus ``feeder``, ``buses``, ``control_settings``
        and ``criteria`` (or the :class:`HostingCapacityCriteria` fields at the top level).

    Returns
    -------
    (dict, dict)
        Keyword arguments of :func:`run_hosting_capacity_study` given in the scenario (typed:
        enums as members, ``control_settings`` parsed once into
        :class:`vehicle_models.settings.InverterSettings`), and the criteria fields (typed,
        checked against :data:`studies.hosting_capacity_engine.HC_CRITERIA_PARAMS`).

    Raises
    ------
    ScenarioError
        Unknown keys, wrong types, values out of range, invalid criteria.
    """
    if not isinstance(scenario, Mapping):
        raise ScenarioError(f"scenario: expected a dictionary, got {type(scenario).__name__}")
    problems: list[str] = []
    values = read_params(
        scenario, HC_SCENARIO_PARAMS, path="scenario", problems=problems, allow_unknown=True
    )
    fields = [p.name for p in HC_CRITERIA_PARAMS]
    allowed = [p.name for p in HC_SCENARIO_PARAMS] + list(HC_OTHER_KEYS) + fields
    problems += unknown_keys(scenario, allowed, path="scenario")
    pf = values["pf"]
    if "pf" in scenario and is_number(pf) and abs(pf) < 0.1:
        problems.append(f"scenario.pf: {pf:g} must satisfy 0.1 <= |pf| <= 1")
    crit_raw = scenario.get("criteria") or {}
    if not isinstance(crit_raw, Mapping):
        problems.append(f"scenario.criteria: {crit_raw!r} is not a table")
        crit_raw = {}
    problems += unknown_keys(crit_raw, fields, path="scenario.criteria")
    # A criterion may also be given at the top level (it then wins over the table's).
    given = {k: v for k, v in crit_raw.items() if k in fields}
    top = {k for k in scenario if k in fields}
    given.update({k: scenario[k] for k in top})
    crit, found = criteria_problems(
        given, key=lambda name: f"scenario.{name}" if name in top else f"scenario.criteria.{name}"
    )
    problems += found
    settings = None
    if "control_settings" in scenario:
        try:
            settings = inverter_settings(
                scenario["control_settings"], path="scenario.control_settings"
            )
        except ScenarioError as error:
            problems.append(str(error))
    check_problems(problems, ScenarioError, "invalid hosting-capacity scenario")
    kwargs = {p.name: values[p.name] for p in HC_SCENARIO_PARAMS if p.name in scenario}
    if "buses" in scenario:
        kwargs["buses"] = scenario["buses"]
    if "control_settings" in scenario:
        kwargs["control_settings"] = settings
    return kwargs, crit


def hosting_capacity_metrics(scenario: dict) -> dict:
    """Run a study from a scenario dictionary and return its JSON metrics (for sweeps).

    Parameters
    ----------
    scenario : dict
        Keys (all optional): ``feeder``, ``buses``, ``mode``, ``method``, ``load_scale``,
        ``ext_grid_vm_pu``, ``pf``, ``control``, ``control_settings`` (a ``[fleet.control]``
        dict), ``tolerance_mw``, ``samples``, ``seed``, ``criteria`` (a dict of
        :class:`HostingCapacityCriteria` fields) or the criteria fields at top level.

    Returns
    -------
    dict
        The CLI JSON document plus summary metrics ``hc_min_mw``, ``hc_median_mw``,
        ``hc_mean_mw``, ``hc_max_mw`` [MW] and ``binding_counts``.

    Raises
    ------
    ScenarioError
        Invalid scenario (every problem listed).
    """
    kwargs, crit = read_hosting_capacity_scenario(scenario)
    result = run_hosting_capacity_study(
        scenario.get("feeder", "case33bw"), criteria=HostingCapacityCriteria(**crit), **kwargs
    )
    doc = result.to_json()
    hc = result.table.hosting_capacity_mw.to_numpy()
    doc.update(
        {
            "hc_min_mw": float(np.min(hc)),
            "hc_median_mw": float(np.median(hc)),
            "hc_mean_mw": float(np.mean(hc)),
            "hc_max_mw": float(np.max(hc)),
            "binding_counts": result.table.binding.value_counts().to_dict(),
        }
    )
    return doc
