"""The feeder model: one object per feeder, one ``solve`` for AC and LinDistFlow.

:class:`FeederModel` is built once from an embedded feeder name or a pandapower net and
answers "what are the voltages and flows for these bus injections?" for one scenario (a time
step) or a batch (scenarios x buses), with either solver:

* ``SolveMethod.AC``: the fast AC Newton-Raphson of :class:`grids.powerflow.ACPowerFlow`
  (same solution as pandapower ``runpp`` to 1e-6 pu, warm-started from the previous call);
  nets with elements the fast path does not model (voltage-dependent loads, three-winding
  transformers, ...) are solved with ``runpp`` itself;
* ``SolveMethod.LINDISTFLOW``: the linear radial model of :class:`grids.lindistflow.LinDistFlow`
  (lossless: the slack supplies exactly the net load).

Everything that used to sit in each caller lives here: line outages (:meth:`FeederModel.
with_outages` or ``lines_out=`` on :meth:`FeederModel.solve`), buses cut off from every
external grid (``dead_bus``: NaN voltages, excluded from minima and maxima), the lossless-slack
rule of LinDistFlow, line loadings that are NaN where a line has no rating (``line_rated``),
and the substation transformer loading ``|S_slack| / rating``. The result is one typed, frozen
:class:`FeederResult`. Callers never choose a solver class.

Examples
--------
>>> import numpy as np
>>> from grids.feeder_model import FeederModel, SolveMethod
>>> model = FeederModel.from_name("case33bw", substation_rating_mva=5.0)
>>> p_mw, q_mvar = model.base_injection()
>>> result = model.solve(p_mw, q_mvar)
>>> round(float(result.vm_min_pu[0]), 4)
0.9131
>>> batch = model.solve(np.vstack([p_mw, 0.5 * p_mw]), np.vstack([q_mvar, 0.5 * q_mvar]))
>>> batch.vm_pu.shape
(2, 33)
>>> linear = model.solve(p_mw, q_mvar, method=SolveMethod.LINDISTFLOW)
>>> bool(np.nanmax(np.abs(linear.vm_pu - result.vm_pu)) < 0.01)
True
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from grids.errors import ConvergenceError, FeederError, ScenarioError, check_problems
from grids.feeders import validate_feeder
from grids.lindistflow import LinDistFlow, VoltageForm
from grids.powerflow import (
    ACPowerFlow,
    PowerFlowMethod,
    check_injections,
    net_injection,
    prepare_net,
    run_reference,
    unsupported_elements,
)

# pandapower (~2 s to import) is imported only where its power flow or topology search runs:
# the CLI imports this module on its start-up path.

#: The solver of :meth:`FeederModel.solve` (the same enum as ``grids.powerflow.PowerFlowMethod``).
SolveMethod = PowerFlowMethod

#: A line whose ``max_i_ka * df * parallel`` is not finite, not positive or at least this
#: value has no rating [kA]: pandapower's placeholder for "unlimited" is 99999 kA (e.g. in
#: ``case33bw``), far above any conductor (a few kA at most).
NO_RATING_KA = 1.0e4

#: Most cached outage variants of one model (each holds its own solvers).
_MAX_OUTAGE_MODELS = 16


@dataclass(frozen=True)
class FeederResult:
    """Voltages and flows of one or many power-flow scenarios on a feeder.

    Every array has the scenario axis first (also for a single 1-D scenario). Columns follow
    :attr:`bus`, :attr:`line`, :attr:`trafo` (all buses, lines and two-winding transformers of
    the net, in pandapower index order, including those out of service).

    Attributes
    ----------
    method : SolveMethod
        The solver used.
    bus, line, trafo : numpy.ndarray of int
        pandapower indices: the column order of the bus, line and transformer arrays.
    vm_pu : numpy.ndarray (S, n_bus)
        Voltage magnitude [pu]; NaN at dead buses and in scenarios that did not converge.
    va_degree : numpy.ndarray (S, n_bus)
        Voltage angle [degree]; 0 at energized buses for LinDistFlow (no angles in that model).
    p_slack_mw, q_slack_mvar : numpy.ndarray (S,)
        Power supplied by the external grids [MW, Mvar] (generator convention). LinDistFlow is
        lossless: minus the sum of the injections at energized buses.
    p_loss_mw, q_loss_mvar : numpy.ndarray (S,)
        Series losses of lines and transformers [MW, Mvar]; 0 for LinDistFlow.
    line_loading_percent : numpy.ndarray (S, n_line)
        Current over rating [%]; NaN for lines without a rating (see :attr:`line_rated`), out
        of service or dead.
    line_rated : numpy.ndarray (n_line,) of bool
        Whether the line has a usable rating (``max_i_ka`` finite, > 0 and below
        :data:`NO_RATING_KA`).
    trafo_loading_percent : numpy.ndarray (S, n_trafo)
        Loading of the net's own transformers [%]; NaN out of service or dead.
    substation_loading_pu : numpy.ndarray (S,)
        ``|S_slack| / substation_rating_mva`` [pu]; NaN without a substation rating.
    converged : numpy.ndarray (S,) of bool
    iterations : numpy.ndarray (S,) of int
        Newton updates used (0 for LinDistFlow; -1 when solved by ``runpp``).
    dead_bus : numpy.ndarray (n_bus,) of bool
        Buses connected to no external grid (cut off by outages, open switches or out of
        service).
    worst_bus : numpy.ndarray (S,) of int
        Failed scenarios: bus with the largest power mismatch; -1 where converged.
    max_mismatch_mva : numpy.ndarray (S,)
        Failed scenarios: largest bus power mismatch [MVA]; NaN where converged.
    """

    method: SolveMethod
    bus: np.ndarray
    line: np.ndarray
    trafo: np.ndarray
    vm_pu: np.ndarray
    va_degree: np.ndarray
    p_slack_mw: np.ndarray
    q_slack_mvar: np.ndarray
    p_loss_mw: np.ndarray
    q_loss_mvar: np.ndarray
    line_loading_percent: np.ndarray
    line_rated: np.ndarray
    trafo_loading_percent: np.ndarray
    substation_loading_pu: np.ndarray
    converged: np.ndarray
    iterations: np.ndarray
    dead_bus: np.ndarray
    worst_bus: np.ndarray
    max_mismatch_mva: np.ndarray

    @property
    def n_scenarios(self) -> int:
        """Number of scenarios (rows)."""
        return int(self.vm_pu.shape[0])

    @property
    def n_dead_buses(self) -> int:
        """Number of buses connected to no external grid."""
        return int(np.count_nonzero(self.dead_bus))

    @property
    def vm_min_pu(self) -> np.ndarray:
        """Lowest voltage over the energized buses per scenario [pu], shape ``(S,)``."""
        return _reduce_energized(self.vm_pu, self.dead_bus, np.min)

    @property
    def vm_max_pu(self) -> np.ndarray:
        """Highest voltage over the energized buses per scenario [pu], shape ``(S,)``."""
        return _reduce_energized(self.vm_pu, self.dead_bus, np.max)

    @property
    def s_slack_mva(self) -> np.ndarray:
        """Apparent power supplied by the external grids ``|S_slack|`` [MVA], shape ``(S,)``."""
        return np.hypot(self.p_slack_mw, self.q_slack_mvar)

    @property
    def max_line_loading_percent(self) -> np.ndarray:
        """Highest loading over the rated lines per scenario [%]; NaN when no line is rated."""
        return _nanmax_rows(self.line_loading_percent)

    @property
    def max_trafo_loading_percent(self) -> np.ndarray:
        """Highest loading over the net's transformers per scenario [%]; NaN without any."""
        return _nanmax_rows(self.trafo_loading_percent)

    def vm_energized_pu(self, *, dead_value: float = 0.0) -> np.ndarray:
        """Voltages with ``dead_value`` at dead buses (an inverter there sees a dead bus).

        Parameters
        ----------
        dead_value : float, keyword-only
            Voltage reported at dead buses [pu].

        Returns
        -------
        numpy.ndarray (S, n_bus)
            Voltage magnitude [pu].
        """
        if not self.dead_bus.any():
            return self.vm_pu
        return np.where(self.dead_bus[None, :], dead_value, self.vm_pu)

    def raise_if_failed(self, *, label: str = "AC power flow", time_s: float | None = None):
        """Raise :class:`ConvergenceError` naming the first failed scenario and its worst bus.

        Parameters
        ----------
        label : str, keyword-only
            Start of the message (e.g. the feeder name).
        time_s : float, keyword-only
            Simulated time [s] of a one-scenario time step, named in the message.

        Raises
        ------
        ConvergenceError
            With ``index`` (scenario) and ``worst_bus`` set.
        """
        failed = np.flatnonzero(~self.converged)
        if len(failed) == 0:
            return
        first = int(failed[0])
        bus = int(self.worst_bus[first])
        mismatch = float(self.max_mismatch_mva[first])
        where = f"at t = {time_s:g} s" if time_s is not None else f"for scenario {first}"
        others = (
            f" ({len(failed)} of {self.n_scenarios} scenarios failed)"
            if self.n_scenarios > 1
            else ""
        )
        raise ConvergenceError(
            f"{label} did not converge {where}: largest mismatch {mismatch:.3g} MVA at bus "
            f"{bus}{others}",
            index=first,
            worst_bus=bus,
            max_mismatch=mismatch,
        )


def _reduce_energized(vm: np.ndarray, dead: np.ndarray, func) -> np.ndarray:
    if vm.shape[1] == 0:
        return np.full(vm.shape[0], np.nan)
    live = vm if not dead.any() else vm[:, ~dead]
    if live.shape[1] == 0:
        return np.full(vm.shape[0], np.nan)
    return func(live, axis=1)  # NaN rows (not converged) stay NaN


def _nanmax_rows(values: np.ndarray) -> np.ndarray:
    out = np.full(values.shape[0], np.nan)
    if values.shape[1]:
        finite = np.isfinite(values)
        rows = finite.any(axis=1)
        out[rows] = np.max(np.where(finite, values, -np.inf)[rows], axis=1)
    return out


def _positions(target: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Positions of ``index`` values inside ``target`` (both pandapower indices)."""
    lookup = {int(v): k for k, v in enumerate(target)}
    return np.array([lookup[int(v)] for v in index], dtype=np.intp)


def line_rated(net) -> np.ndarray:
    """Which lines of a net have a usable thermal rating.

    A line is rated when ``max_i_ka * df * parallel`` is a finite number above 0 and below
    :data:`NO_RATING_KA` (pandapower's 99999 kA placeholder for "unlimited", as in
    ``case33bw``, is no rating). The loading of an unrated line is not a limit: the feeder
    model reports it as NaN and studies say it is not checked.

    Parameters
    ----------
    net : pandapowerNet
        The feeder.

    Returns
    -------
    numpy.ndarray (n_line,) of bool
        One entry per row of ``net.line`` (pandapower index order), out-of-service lines
        included.

    Examples
    --------
    >>> from grids.feeders import load_feeder
    >>> from grids.feeder_model import line_rated
    >>> rated = line_rated(load_feeder("case33bw"))
    >>> len(rated), int(rated.sum())  # MATPOWER data: 99999 kA placeholders only
    (37, 0)
    """
    line = net.line
    if not len(line):
        return np.zeros(0, dtype=bool)
    rating_ka = (
        pd.to_numeric(line.max_i_ka, errors="coerce")
        * pd.to_numeric(line.df, errors="coerce")
        * pd.to_numeric(line.parallel, errors="coerce")
    ).to_numpy(dtype=float)
    return np.isfinite(rating_ka) & (rating_ka > 0) & (rating_ka < NO_RATING_KA)


class FeederModel:
    """A feeder, built once, solved for any injections with AC or LinDistFlow.

    Build with :meth:`from_name` or :meth:`from_net`; the model owns its copy of the net.

    Parameters
    ----------
    net : pandapowerNet
        The feeder (the model keeps it; :meth:`from_net` copies the caller's net first).
    substation_rating_mva : float or None, keyword-only
        Rating of the substation transformer that feeds the external grid connection [MVA];
        gives :attr:`FeederResult.substation_loading_pu`. ``None``: NaN loading.
    tolerance_mva : float, keyword-only
        AC convergence tolerance on every bus power mismatch [MVA].
    lines_out : iterable of int, keyword-only
        pandapower line indices taken out of service (on top of the net's own state).
    name : str, keyword-only
        Label used in messages (default: the net's name).

    Attributes
    ----------
    bus, line, trafo : numpy.ndarray of int
        pandapower indices: the column order of every result array.
    dead_bus : numpy.ndarray of bool
        Buses connected to no external grid.
    lines_out : tuple of int
        Lines taken out of service by this model.

    Examples
    --------
    >>> from grids.feeder_model import FeederModel
    >>> model = FeederModel.from_name("cigre_mv").with_outages([9])
    >>> result = model.solve(*model.base_injection())
    >>> bool(result.converged[0]), model.lines_out
    (True, (9,))
    """

    def __init__(
        self,
        net,
        *,
        substation_rating_mva: float | None = None,
        tolerance_mva: float = 1e-9,
        lines_out: Iterable[int] = (),
        name: str | None = None,
    ) -> None:
        problems = []
        if substation_rating_mva is not None and not (
            isinstance(substation_rating_mva, int | float)
            and math.isfinite(substation_rating_mva)
            and substation_rating_mva > 0
        ):
            problems.append(
                f"substation_rating_mva: {substation_rating_mva!r} (expected a finite number > 0)"
            )
        if not (math.isfinite(tolerance_mva) and tolerance_mva > 0):
            problems.append(f"tolerance_mva: {tolerance_mva} (expected a finite number > 0)")
        check_problems(problems, ScenarioError, "invalid feeder model arguments")
        self.name = str(name or net.name or "feeder")
        self.substation_rating_mva = (
            None if substation_rating_mva is None else float(substation_rating_mva)
        )
        self.tolerance_mva = float(tolerance_mva)
        self._base_net = net
        self.lines_out = tuple(sorted({int(x) for x in lines_out}))
        if self.lines_out:
            missing = [x for x in self.lines_out if x not in net.line.index]
            check_problems(
                [f"line {x} does not exist in the feeder" for x in missing],
                FeederError,
                f"{self.name}: invalid line outage",
            )
            net = copy.deepcopy(net)
            net.line.loc[list(self.lines_out), "in_service"] = False
        self.net = net
        self.bus = net.bus.index.to_numpy(dtype=np.int64)
        self.line = net.line.index.to_numpy(dtype=np.int64)
        self.trafo = net.trafo.index.to_numpy(dtype=np.int64)
        self.dead_bus = self._find_dead_buses(net)
        self.line_rated = line_rated(net)
        self._unrated_cols = np.flatnonzero(~self.line_rated)
        self._any_line_rated = bool(self.line_rated.any())
        self._unsupported = unsupported_elements(net)
        self._ac: ACPowerFlow | None = None
        self._ldf: LinDistFlow | None = None
        self._base_injection: tuple[np.ndarray, np.ndarray] | None = None
        self._outage_models: dict[tuple[int, ...], FeederModel] = {}
        self._nothing_to_solve: bool | None = None

    # ---- construction ------------------------------------------------------------------------
    @classmethod
    def from_name(
        cls,
        name: str | Path,
        *,
        load_scale: float = 1.0,
        ext_grid_vm_pu: float | None = None,
        substation_rating_mva: float | None = None,
        tolerance_mva: float = 1e-9,
    ) -> FeederModel:
        """Build from an embedded feeder name or a pandapower JSON path.

        Parameters
        ----------
        name : str or path
            Embedded feeder (``case33bw``, ``cigre_mv``, ``mv_oberrhein``) or JSON file.
        load_scale : float, keyword-only
            Factor on every load's P and Q [-].
        ext_grid_vm_pu : float or None, keyword-only
            Slack voltage set-point [pu]; default as in the feeder.
        substation_rating_mva : float or None, keyword-only
            Substation transformer rating [MVA] (see :class:`FeederModel`).
        tolerance_mva : float, keyword-only
            AC convergence tolerance [MVA].

        Returns
        -------
        FeederModel

        Raises
        ------
        ScenarioError
            Invalid arguments (all listed).
        FeederError
            Unknown feeder, unreadable or invalid net; an OpenDSS ``.dss`` file (three-phase:
            see :func:`grids.feeder3ph.open_feeder_model`).
        """
        if str(name).strip().lower().endswith(".dss"):
            raise FeederError(
                f"feeder {name}: an OpenDSS model is three-phase; open it with "
                "grids.feeder3ph.open_feeder_model (or ThreePhaseFeederModel.from_dss)"
            )
        net = prepare_net(name, load_scale=load_scale, ext_grid_vm_pu=ext_grid_vm_pu)
        return cls(
            net,
            substation_rating_mva=substation_rating_mva,
            tolerance_mva=tolerance_mva,
            name=str(net.name or name),
        )

    @classmethod
    def from_net(
        cls,
        net,
        *,
        substation_rating_mva: float | None = None,
        tolerance_mva: float = 1e-9,
        validate: bool = True,
    ) -> FeederModel:
        """Build from a pandapower net (copied: later changes to ``net`` do not reach the model).

        Parameters
        ----------
        net : pandapowerNet
            The feeder.
        substation_rating_mva : float or None, keyword-only
            Substation transformer rating [MVA].
        tolerance_mva : float, keyword-only
            AC convergence tolerance [MVA].
        validate : bool, keyword-only
            Check the net's element values (:func:`grids.feeders.validate_feeder`).

        Returns
        -------
        FeederModel
        """
        if validate:
            validate_feeder(net, label=str(net.name or "feeder"))
        return cls(
            copy.deepcopy(net),
            substation_rating_mva=substation_rating_mva,
            tolerance_mva=tolerance_mva,
        )

    def with_outages(self, lines: Iterable[int]) -> FeederModel:
        """The same feeder with ``lines`` out of service (relative to the model's base net).

        Parameters
        ----------
        lines : iterable of int
            pandapower line indices; an empty list gives the model without outages.

        Returns
        -------
        FeederModel
            Cached per outage set, so that warm starts survive a repeated outage state.

        Raises
        ------
        FeederError
            A line that does not exist.
        """
        key = tuple(sorted({int(x) for x in lines}))
        if key == self.lines_out:
            return self
        cached = self._outage_models.get(key)
        if cached is None:
            if len(self._outage_models) >= _MAX_OUTAGE_MODELS:
                self._outage_models.clear()
            cached = FeederModel(
                self._base_net,
                substation_rating_mva=self.substation_rating_mva,
                tolerance_mva=self.tolerance_mva,
                lines_out=key,
                name=self.name,
            )
            cached._outage_models = self._outage_models  # one cache for the whole family
            self._outage_models[self.lines_out] = self
            self._outage_models[key] = cached
        return cached

    def with_substation_rating(self, rating_mva: float | None) -> FeederModel:
        """Set the substation transformer rating (in place).

        Parameters
        ----------
        rating_mva : float or None
            Rating [MVA]; ``None`` for no rating (NaN substation loading).

        Returns
        -------
        FeederModel
            This model.
        """
        check_problems(
            []
            if rating_mva is None or (math.isfinite(rating_mva) and rating_mva > 0)
            else [f"substation_rating_mva: {rating_mva!r} (expected a finite number > 0)"],
            ScenarioError,
            "invalid feeder model arguments",
        )
        self.substation_rating_mva = None if rating_mva is None else float(rating_mva)
        return self

    @staticmethod
    def _find_dead_buses(net) -> np.ndarray:
        from pandapower.topology import unsupplied_buses

        dead = ~net.bus.in_service.to_numpy(bool)
        unsupplied = set(int(b) for b in unsupplied_buses(net))
        if unsupplied:
            dead |= net.bus.index.isin(list(unsupplied))
        return dead

    def prepare(self, method: SolveMethod = SolveMethod.AC) -> FeederModel:
        """Build the solver of ``method`` now (otherwise on the first :meth:`solve`).

        Useful to fail early: LinDistFlow refuses a meshed feeder with :class:`FeederError`.

        Parameters
        ----------
        method : SolveMethod
            The solver to build.

        Returns
        -------
        FeederModel
            This model.
        """
        method = SolveMethod(method)
        if method is SolveMethod.AC:
            self._ac_solver()
        else:
            self._ldf_solver()
        return self

    def _ac_solver(self) -> ACPowerFlow | None:
        if self._ac is None and not self._unsupported:
            self._ac = ACPowerFlow(self.net, tolerance_mva=self.tolerance_mva)
        return self._ac

    def _ldf_solver(self) -> LinDistFlow:
        if self._ldf is None:
            net = self.net
            if self.dead_bus.any():
                # buses cut off from every slack have no voltage: leave them out of the tree
                net = copy.deepcopy(net)
                net.bus.loc[self.bus[self.dead_bus], "in_service"] = False
            self._ldf = LinDistFlow(net)
            self._ldf_line_cols = _positions(self.line, self._ldf.line)
            self._ldf_lines_in_order = np.array_equal(
                self._ldf_line_cols, np.arange(len(self.line))
            )
            self._ldf_trafo_cols = _positions(self.trafo, self._ldf.trafo)
        return self._ldf

    # ---- injections --------------------------------------------------------------------------
    def base_injection(self) -> tuple[np.ndarray, np.ndarray]:
        """Net injection per bus of the net's own elements, as ``runpp`` sees them.

        Returns
        -------
        p_mw, q_mvar : numpy.ndarray (n_bus,)
            Loads and storages count negative (times ``scaling``), static generators and
            generators (active power only) positive, wards' constant-power part negative
            [MW, Mvar]. Copies: the caller may change them.
        """
        if self._base_injection is None:
            self._base_injection = net_injection(self.net, self.bus)
        p, q = self._base_injection
        return p.copy(), q.copy()

    # ---- solve -------------------------------------------------------------------------------
    def solve(
        self,
        p_mw,
        q_mvar,
        *,
        method: SolveMethod = SolveMethod.AC,
        lines_out: Sequence[int] | None = None,
        warm_start: bool = True,
        form: VoltageForm = VoltageForm.LINEAR,
    ) -> FeederResult:
        """Solve the power flow for one scenario or a batch of scenarios.

        Parameters
        ----------
        p_mw, q_mvar : array_like (n_bus,) or (n_scenarios, n_bus)
            TOTAL net injection per bus in :attr:`bus` order [MW, Mvar], injection positive
            (start from :meth:`base_injection` to keep the net's own loads). Injections at
            dead buses have no effect.
        method : SolveMethod, keyword-only
            ``AC`` (Newton-Raphson, same solution as ``runpp``) or ``LINDISTFLOW`` (linear,
            radial feeders only, lossless).
        lines_out : sequence of int, keyword-only
            Solve with these lines out of service (instead of the model's own
            :attr:`lines_out`); the outage model is cached (see :meth:`with_outages`).
        warm_start : bool, keyword-only
            AC: start from the previous call's solution (per scenario if the batch size is the
            same, else its last converged scenario); otherwise from the base solution.
        form : VoltageForm, keyword-only
            LinDistFlow voltage equation (``LINEAR`` or ``SQUARED``).

        Returns
        -------
        FeederResult
            Always 2-D ``(n_scenarios, ...)``. A scenario that does not converge is flagged
            in ``converged`` (NaN results), never raised: call
            :meth:`FeederResult.raise_if_failed`.

        Raises
        ------
        ScenarioError
            Injections of the wrong shape or not finite.
        FeederError
            LinDistFlow on a meshed feeder; a feeder the AC path cannot build.

        Examples
        --------
        >>> from grids.feeder_model import FeederModel
        >>> model = FeederModel.from_name("case33bw")
        >>> p_mw, q_mvar = model.base_injection()
        >>> out = model.solve(p_mw, q_mvar, lines_out=[0])  # the feeder head cut: all dead
        >>> out.n_dead_buses
        32
        """
        if lines_out is not None and tuple(sorted({int(x) for x in lines_out})) != self.lines_out:
            return self.with_outages(lines_out).solve(
                p_mw, q_mvar, method=method, warm_start=warm_start, form=form
            )
        method = SolveMethod(method)
        if method is SolveMethod.AC and not self._unsupported and not self._only_slack_buses_live():
            # the hot path of time series: ACPowerFlow checks the injections itself
            return self._solve_ac(p_mw, q_mvar, warm_start)
        p, q = check_injections(p_mw, q_mvar, bus=self.bus, label=self.name)
        if method is SolveMethod.LINDISTFLOW:
            return self._solve_lindistflow(p, q, VoltageForm(form))
        if self._only_slack_buses_live():
            # e.g. the feeder head cut: nothing left to solve (pandapower builds no model)
            return self._solve_lindistflow(p, q, VoltageForm.LINEAR, method=SolveMethod.AC)
        if self._unsupported:
            return self._solve_runpp(p, q)
        return self._solve_ac(p, q, warm_start)

    def _only_slack_buses_live(self) -> bool:
        if self._nothing_to_solve is None:
            ext = self.net.ext_grid
            slack = set(ext.bus[ext.in_service.astype(bool)].astype(int))
            self._nothing_to_solve = all(int(b) in slack for b in self.bus[~self.dead_bus])
        return self._nothing_to_solve

    def _substation_loading(self, p_slack: np.ndarray, q_slack: np.ndarray) -> np.ndarray:
        if self.substation_rating_mva is None:
            return np.full(p_slack.shape, np.nan)
        return np.hypot(p_slack, q_slack) / self.substation_rating_mva

    def _rated_lines(self, loading: np.ndarray) -> np.ndarray:
        if len(self._unrated_cols):
            loading[:, self._unrated_cols] = np.nan
        return loading

    def _solve_ac(self, p_mw, q_mvar, warm_start: bool) -> FeederResult:
        ac = self._ac_solver()
        res = ac.solve(p_mw, q_mvar, warm_start=warm_start)
        n_scen = res.vm_pu.shape[0]
        line = res.line_loading_percent
        if not self._any_line_rated:
            line = np.full((n_scen, len(self.line)), np.nan)  # e.g. case33bw: nothing to map
        else:
            if len(ac.line) != len(self.line):
                line = np.full((n_scen, len(self.line)), np.nan)
                line[:, self._ac_cols("line", ac.line)] = res.line_loading_percent
            line = self._rated_lines(line)
        trafo = res.trafo_loading_percent
        if len(ac.trafo) != len(self.trafo):
            trafo = np.full((n_scen, len(self.trafo)), np.nan)
            trafo[:, self._ac_cols("trafo", ac.trafo)] = res.trafo_loading_percent
        return FeederResult(
            method=SolveMethod.AC,
            bus=self.bus,
            line=self.line,
            trafo=self.trafo,
            vm_pu=res.vm_pu,
            va_degree=res.va_degree,
            p_slack_mw=res.p_slack_mw,
            q_slack_mvar=res.q_slack_mvar,
            p_loss_mw=res.p_loss_mw,
            q_loss_mvar=res.q_loss_mvar,
            line_loading_percent=line,
            line_rated=self.line_rated,
            trafo_loading_percent=trafo,
            substation_loading_pu=self._substation_loading(res.p_slack_mw, res.q_slack_mvar),
            converged=res.converged,
            iterations=res.iterations,
            dead_bus=self.dead_bus,
            worst_bus=res.worst_bus,
            max_mismatch_mva=res.max_mismatch_mva,
        )

    def _ac_cols(self, kind: str, index: np.ndarray) -> np.ndarray:
        attr = f"_ac_{kind}_cols"
        cols = getattr(self, attr, None)
        if cols is None:
            cols = _positions(getattr(self, kind), index)
            setattr(self, attr, cols)
        return cols

    def _solve_lindistflow(
        self,
        p: np.ndarray,
        q: np.ndarray,
        form: VoltageForm,
        *,
        method: SolveMethod = SolveMethod.LINDISTFLOW,
    ) -> FeederResult:
        ldf = self._ldf_solver()
        n_scen = p.shape[0]
        dead = self.dead_bus
        vm = ldf.vm_pu(p, q, form=form)
        if dead.any():
            vm[:, dead] = np.nan
            va = np.where(np.isfinite(vm), 0.0, np.nan)
        else:
            va = np.zeros_like(vm)  # finite injections give finite voltages
        # (the screen of a hosting-capacity study calls this in a tight loop: no copy when the
        # linear model's columns are already the model's, nothing computed that ends as NaN)
        if not self._any_line_rated or not len(self._ldf_line_cols):
            line = np.full((n_scen, len(self.line)), np.nan)  # e.g. case33bw: no rated line
        elif self._ldf_lines_in_order:
            line = ldf.line_loading_percent(p, q)
        else:
            line = np.full((n_scen, len(self.line)), np.nan)
            line[:, self._ldf_line_cols] = ldf.line_loading_percent(p, q)
        trafo = np.full((n_scen, len(self.trafo)), np.nan)
        if len(self._ldf_trafo_cols):
            trafo[:, self._ldf_trafo_cols] = ldf.trafo_loading_percent(p, q)
        # lossless: the slack supplies the net load of the energized buses
        live = ~dead
        p_slack = -p[:, live].sum(axis=1)
        q_slack = -q[:, live].sum(axis=1)
        zeros = np.zeros(n_scen)
        return FeederResult(
            method=method,
            bus=self.bus,
            line=self.line,
            trafo=self.trafo,
            vm_pu=vm,
            va_degree=va,
            p_slack_mw=p_slack,
            q_slack_mvar=q_slack,
            p_loss_mw=zeros,
            q_loss_mvar=zeros.copy(),
            line_loading_percent=self._rated_lines(line),
            line_rated=self.line_rated,
            trafo_loading_percent=trafo,
            substation_loading_pu=self._substation_loading(p_slack, q_slack),
            converged=np.ones(n_scen, dtype=bool),
            iterations=np.zeros(n_scen, dtype=int),
            dead_bus=self.dead_bus,
            worst_bus=np.full(n_scen, -1),
            max_mismatch_mva=np.full(n_scen, np.nan),
        )

    def _solve_runpp(self, p: np.ndarray, q: np.ndarray) -> FeederResult:
        """Nets the fast path does not model: ``runpp`` per scenario. The net's own elements
        stay (voltage-dependent loads keep their model); the difference between the requested
        and the base injection is added as one static generator per bus."""
        n_scen, n_bus = p.shape
        p0, q0 = self.base_injection()
        out = {
            k: np.full((n_scen, n), np.nan)
            for k, n in (("vm", n_bus), ("va", n_bus), ("line", len(self.line)))
        }
        out["trafo"] = np.full((n_scen, len(self.trafo)), np.nan)
        scalars = {k: np.full(n_scen, np.nan) for k in ("ps", "qs", "pl", "ql")}
        converged = np.zeros(n_scen, dtype=bool)
        for k in range(n_scen):
            net = copy.deepcopy(self.net)
            dp, dq = p[k] - p0, q[k] - q0
            changed = np.flatnonzero((dp != 0) | (dq != 0))
            if len(changed):
                import pandapower as pp

                for i in changed:
                    pp.create_sgen(net, int(self.bus[i]), p_mw=dp[i], q_mvar=dq[i])
            try:
                run_reference(net)
            except ConvergenceError:
                continue
            converged[k] = True
            out["vm"][k] = net.res_bus.vm_pu.reindex(self.bus).to_numpy(float)
            out["va"][k] = net.res_bus.va_degree.reindex(self.bus).to_numpy(float)
            out["line"][k] = net.res_line.loading_percent.reindex(self.line).to_numpy(float)
            if len(self.trafo):
                out["trafo"][k] = net.res_trafo.loading_percent.reindex(self.trafo).to_numpy(float)
            scalars["ps"][k] = float(net.res_ext_grid.p_mw.sum())
            scalars["qs"][k] = float(net.res_ext_grid.q_mvar.sum())
            scalars["pl"][k] = float(net.res_line.pl_mw.sum() + net.res_trafo.pl_mw.sum())
            scalars["ql"][k] = float(net.res_line.ql_mvar.sum() + net.res_trafo.ql_mvar.sum())
        return FeederResult(
            method=SolveMethod.AC,
            bus=self.bus,
            line=self.line,
            trafo=self.trafo,
            vm_pu=out["vm"],
            va_degree=out["va"],
            p_slack_mw=scalars["ps"],
            q_slack_mvar=scalars["qs"],
            p_loss_mw=scalars["pl"],
            q_loss_mvar=scalars["ql"],
            line_loading_percent=self._rated_lines(out["line"]),
            line_rated=self.line_rated,
            trafo_loading_percent=out["trafo"],
            substation_loading_pu=self._substation_loading(scalars["ps"], scalars["qs"]),
            converged=converged,
            iterations=np.full(n_scen, -1),
            dead_bus=self.dead_bus,
            worst_bus=np.where(converged, -1, int(self.bus[0])),
            max_mismatch_mva=np.full(n_scen, np.nan),
        )


def summarize_powerflow(
    feeder: str | Path,
    *,
    method: SolveMethod = SolveMethod.AC,
    load_scale: float = 1.0,
    ext_grid_vm_pu: float | None = None,
) -> dict:
    """Run one power flow on the net's own injections; the ``v2g-cosim powerflow`` summary.

    Parameters
    ----------
    feeder : str or path
        Embedded feeder name or pandapower JSON file.
    method : SolveMethod, keyword-only
        ``AC`` (a non-converged case raises :class:`ConvergenceError` naming the worst bus) or
        ``LINDISTFLOW`` (radial feeders only; lossless, so ``p_loss_mw`` is NaN).
    load_scale : float, keyword-only
        Factor on every load's P and Q [-].
    ext_grid_vm_pu : float or None, keyword-only
        Slack voltage set-point [pu]; default as in the feeder.

    Returns
    -------
    dict
        ``feeder``, ``method``, ``converged``, ``bus``, ``vm_pu`` (in ``bus`` order; NaN at
        dead buses), ``p_loss_mw`` [MW], ``min_vm_pu``, ``min_vm_bus``, ``max_vm_pu`` [pu]
        (energized buses), ``max_line_loading_percent`` [%] (NaN when no line has a rating),
        ``line`` with ``line_loading_percent`` [%] (NaN: unrated or out of service) and
        ``trafo`` with ``trafo_loading_percent`` [%], in the net's index order.

    Examples
    --------
    >>> from grids.feeder_model import summarize_powerflow
    >>> summary = summarize_powerflow("case33bw")
    >>> summary["min_vm_bus"], round(summary["min_vm_pu"], 4)
    (17, 0.9131)
    """
    method = SolveMethod(method)
    model = FeederModel.from_name(feeder, load_scale=load_scale, ext_grid_vm_pu=ext_grid_vm_pu)
    label = model.name
    result = model.solve(*model.base_injection(), method=method, warm_start=False)
    result.raise_if_failed(label=f"{label}: AC power flow")
    vm = result.vm_pu[0]
    live = np.flatnonzero(~result.dead_bus)
    k_min = int(live[np.argmin(vm[live])])
    p_loss = math.nan if method is SolveMethod.LINDISTFLOW else float(result.p_loss_mw[0])
    return {
        "feeder": label,
        "method": method.value,
        "converged": True,
        "bus": [int(b) for b in result.bus],
        "vm_pu": vm,
        "p_loss_mw": p_loss,
        "min_vm_pu": float(vm[k_min]),
        "min_vm_bus": int(result.bus[k_min]),
        "max_vm_pu": float(result.vm_max_pu[0]),
        "max_line_loading_percent": float(result.max_line_loading_percent[0]),
        "line": [int(i) for i in result.line],
        "line_loading_percent": result.line_loading_percent[0],
        "trafo": [int(i) for i in result.trafo],
        "trafo_loading_percent": result.trafo_loading_percent[0],
    }
