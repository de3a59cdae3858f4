"""Islanded power flow: grid-forming units share the load by P-f and Q-V droop, no slack bus.

When a feeder section is cut off from the bulk grid, no bus holds a fixed voltage phasor and
the frequency is no longer the bulk grid's. One or several grid-forming (GFM) units (V2G
fleets behind grid-forming inverters) hold the island's voltage and share its load through
their droops:

.. math::

    f = f_0 - m_{p,g}\\, f_0\\, \\frac{P_g - P_{0,g}}{S_g}, \\qquad
    |V_{b(g)}| = V_{0,g} - n_{q,g}\\, \\frac{Q_g - Q_{0,g}}{S_g}

for every unit ``g`` at bus ``b(g)`` with rating ``S_g`` [MVA], P-f droop ``m_p`` (0.05 = 5 %:
the frequency falls by 5 % of ``f0`` when the unit's output rises by its rating) and Q-V droop
``n_q`` [pu voltage per pu reactive power]. With the bus admittance matrix ``Y`` of the island
(pandapower's own internal model: lines, transformers with their taps, shunts, bus-bus
switches) and the constant-power injections ``S_spec`` of the loads and generators at every
bus, the unknowns are every bus voltage magnitude and angle (the angle of the first unit's bus
is the reference), the island frequency ``f`` and every unit's ``P_g`` and ``Q_g``; the
equations are the bus power balances

.. math::

    V_i \\, \\overline{(Y V)_i} = S_{spec,i} + \\sum_{g: b(g) = i} (P_g + j Q_g)

and the two droop laws per unit: ``2 n + 2 n_g`` equations for ``2 n + 2 n_g`` unknowns,
solved by Newton-Raphson on the full set (the power-flow Jacobian in polar form bordered by the
droop rows and the unit columns), batched over scenarios like :class:`grids.powerflow.
ACPowerFlow`. Energy balance holds by construction: ``sum P_g + sum P_spec = P_loss``.

Model limits: the branch reactances are taken at ``f0`` (the island frequency moves by at most
a few per cent, and ``X`` is proportional to it); loads are constant power (a net with
voltage-dependent loads is refused, as by the fast AC path); a unit has no current or power
limit here (the caller checks the result against its ratings). An in-service synchronous
generator (``net.gen``) must be given as a grid-forming unit instead: it is refused.

References
----------
F. Mumtaz, M. H. Syed, M. Al Hosani, H. H. Zeineldin, "A novel approach to solve power flow
for islanded microgrids using modified Newton Raphson with droop control of DG", IEEE Trans.
Sustain. Energy 7(2), 493-503, 2016. M. M. A. Abdelaziz, H. E. Farag, E. F. El-Saadany,
Y. A.-R. I. Mohamed, "A novel and generalized three-phase power flow algorithm for islanded
microgrids using a Newton trust region method", IEEE Trans. Power Syst. 28(1), 190-201, 2013.

Examples
--------
>>> from grids.feeders import load_feeder
>>> from grids.island import GridFormingUnit, IslandPowerFlow
>>> net = load_feeder("case33bw")
>>> units = [GridFormingUnit(bus=0, s_rated_mva=5.0), GridFormingUnit(bus=17, s_rated_mva=2.0)]
>>> island = IslandPowerFlow(net, units, f0_hz=50.0)
>>> result = island.solve(*island.base_injection())
>>> bool(result.converged[0]), round(float(result.f_hz[0]), 3)
(True, 48.625)
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from grids.errors import FeederError, ScenarioError, check_problems
from grids.params import Param, read_params
from grids.powerflow import check_injections, net_injection, unsupported_elements

#: Keys of one grid-forming unit (the validation kit reads them).
GFM_UNIT_PARAMS: tuple[Param, ...] = (
    Param("bus", kind=int, lo=0, doc="pandapower bus of the unit"),
    Param("s_rated_mva", unit="MVA", lo=0.0, lo_open=True, hi=1e4, doc="unit rating"),
    Param("mp_pu", 0.05, unit="pu", lo=0.0, lo_open=True, hi=1.0, doc="P-f droop"),
    Param("nq_pu", 0.05, unit="pu", lo=0.0, hi=1.0, doc="Q-V droop"),
    Param("p0_mw", 0.0, unit="MW", lo=-1e4, hi=1e4, doc="active power at f0"),
    Param("q0_mvar", 0.0, unit="Mvar", lo=-1e4, hi=1e4, doc="reactive power at v0"),
    Param("v0_pu", 1.0, unit="pu", lo=0.8, hi=1.2, doc="voltage at q0"),
)


@dataclass(frozen=True)
class GridFormingUnit:
    """One grid-forming unit (a GFM fleet at one bus) with P-f and Q-V droop.

    Parameters
    ----------
    bus : int
        pandapower bus index of the unit.
    s_rated_mva : float
        Rating [MVA]: the droops are on this base, so units share in proportion to
        ``s_rated_mva / mp_pu``.
    mp_pu : float
        P-f droop [pu frequency / pu power] (> 0; 0.05 = 5 %).
    nq_pu : float
        Q-V droop [pu voltage / pu reactive power] (0: the unit holds ``v0_pu`` exactly).
    p0_mw, q0_mvar : float
        Output at nominal frequency and at ``v0_pu`` [MW, Mvar] (generator convention).
    v0_pu : float
        Voltage set-point at ``q0_mvar`` [pu].

    Raises
    ------
    ScenarioError
        A value out of range (every problem listed).
    """

    bus: int
    s_rated_mva: float
    mp_pu: float = 0.05
    nq_pu: float = 0.05
    p0_mw: float = 0.0
    q0_mvar: float = 0.0
    v0_pu: float = 1.0

    def __post_init__(self) -> None:
        problems: list[str] = []
        read_params(vars(self), GFM_UNIT_PARAMS, path="grid_forming_unit", problems=problems)
        check_problems(problems, ScenarioError, f"invalid grid-forming unit at bus {self.bus}")


def droop_from_damping_pu(d_pu: float) -> float:
    """P-f droop of a grid-forming unit from its VSM damping: ``m_p = 1 / D`` (at most 1).

    A virtual synchronous machine with damping ``D`` [pu power / pu frequency] settles like a
    droop ``m_p = 1/D`` (D'Arco and Suul, IEEE Trans. Smart Grid 5(1), 2014; see
    :mod:`vehicle_models.vsm`). ``D = 0`` (no damping) and ``D < 1`` give the steepest droop
    the unit model accepts, 1 pu: with equal droops the units share by rating either way.

    Parameters
    ----------
    d_pu : float
        VSM damping [pu power / pu frequency] (>= 0).

    Returns
    -------
    float
        ``mp_pu`` [pu frequency / pu power], in (0, 1].
    """
    if not (isinstance(d_pu, int | float) and d_pu >= 0 and math.isfinite(d_pu)):
        raise ScenarioError(f"d_pu: {d_pu!r} (expected a finite damping >= 0)")
    return min(1.0, 1.0 / d_pu) if d_pu > 0 else 1.0


@dataclass(frozen=True)
class IslandResult:
    """Islanded power flow of one or many scenarios (scenario axis first).

    Attributes
    ----------
    bus : numpy.ndarray of int
        pandapower bus indices (column order).
    units : tuple of GridFormingUnit
        The grid-forming units (column order of ``p_gfm_mw``, ``q_gfm_mvar``).
    vm_pu, va_degree : numpy.ndarray (S, n_bus)
        Voltage magnitude [pu] and angle [degree] (the first unit's bus at ``va_ref_degree``);
        NaN at dead buses and for scenarios that did not converge.
    f_hz : numpy.ndarray (S,)
        Steady-state island frequency of the droops [Hz].
    p_gfm_mw, q_gfm_mvar : numpy.ndarray (S, n_units)
        Output of every unit [MW, Mvar] (generator convention).
    p_loss_mw, q_loss_mvar : numpy.ndarray (S,)
        Losses of the island (series and shunt) [MW, Mvar]: ``sum P_g + sum P_spec``.
    converged : numpy.ndarray (S,) of bool
    iterations : numpy.ndarray (S,) of int
        Newton updates.
    dead_bus : numpy.ndarray (n_bus,) of bool
        Buses not connected to the units (no voltage).
    """

    bus: np.ndarray
    units: tuple[GridFormingUnit, ...]
    vm_pu: np.ndarray
    va_degree: np.ndarray
    f_hz: np.ndarray
    p_gfm_mw: np.ndarray
    q_gfm_mvar: np.ndarray
    p_loss_mw: np.ndarray
    q_loss_mvar: np.ndarray
    converged: np.ndarray
    iterations: np.ndarray
    dead_bus: np.ndarray

    @property
    def vm_min_pu(self) -> np.ndarray:
        """Lowest voltage over the island's buses per scenario [pu], shape ``(S,)``."""
        return np.min(self.vm_pu[:, ~self.dead_bus], axis=1)

    @property
    def vm_max_pu(self) -> np.ndarray:
        """Highest voltage over the island's buses per scenario [pu], shape ``(S,)``."""
        return np.max(self.vm_pu[:, ~self.dead_bus], axis=1)

    @property
    def bus_vm_min(self) -> np.ndarray:
        """pandapower bus of the lowest voltage per scenario, shape ``(S,)`` (-1: failed)."""
        return self._arg(np.argmin)

    @property
    def bus_vm_max(self) -> np.ndarray:
        """pandapower bus of the highest voltage per scenario, shape ``(S,)`` (-1: failed)."""
        return self._arg(np.argmax)

    def _arg(self, func) -> np.ndarray:
        live = np.flatnonzero(~self.dead_bus)
        vm = np.where(np.isfinite(self.vm_pu[:, live]), self.vm_pu[:, live], 1.0)
        out = self.bus[live][func(vm, axis=1)]
        return np.where(self.converged, out, -1)


class IslandPowerFlow:
    """Balanced islanded power flow of a pandapower net held by grid-forming droop units.

    Parameters
    ----------
    net : pandapowerNet
        The island (or a feeder whose external grids are disconnected: they are ignored).
        Buses not connected to the first unit's bus are dead.
    units : sequence of GridFormingUnit
        At least one; all in the same connected island.
    f0_hz : float, keyword-only
        Nominal frequency [Hz] of the droops.
    va_ref_degree : float, keyword-only
        Angle of the first unit's bus [degree] (the island's angle reference).
    tolerance_mva : float, keyword-only
        Convergence when every bus power mismatch is below this [MVA] (and every droop
        residual below ``tolerance_mva / S_base`` in pu).
    max_iteration : int, keyword-only
        Newton updates per scenario.

    Raises
    ------
    ScenarioError
        Invalid arguments (every problem listed).
    FeederError
        The net has elements the model does not represent, or a unit outside the island.

    Notes
    -----
    See the module docstring for the equations and references.
    """

    #: most scenarios per stacked Newton batch ...
    chunk_size: int = 512
    #: ... and the memory budget of one batch of dense Jacobians [bytes]
    newton_memory_bytes: int = 64 * 2**20

    def __init__(
        self,
        net,
        units: Sequence[GridFormingUnit],
        *,
        f0_hz: float,
        va_ref_degree: float = 0.0,
        tolerance_mva: float = 1e-9,
        max_iteration: int = 30,
    ) -> None:
        units = tuple(units)
        problems = []
        if not units:
            problems.append("units: at least one grid-forming unit is needed in an island")
        if not all(isinstance(u, GridFormingUnit) for u in units):
            problems.append("units: expected GridFormingUnit objects")
        if not (isinstance(f0_hz, int | float) and 40.0 <= f0_hz <= 70.0):
            problems.append(f"f0_hz: {f0_hz!r} (expected a nominal frequency 40-70 Hz)")
        if not (isinstance(tolerance_mva, int | float) and 0 < tolerance_mva < 1):
            problems.append(f"tolerance_mva: {tolerance_mva!r} (expected 0 < tol < 1 MVA)")
        if not (isinstance(va_ref_degree, int | float) and math.isfinite(va_ref_degree)):
            problems.append(f"va_ref_degree: {va_ref_degree!r} (expected a finite number)")
        if int(max_iteration) < 1:
            problems.append(f"max_iteration: {max_iteration} (expected >= 1)")
        check_problems(problems, ScenarioError, "invalid islanded power-flow arguments")
        self.name = str(net.name or "feeder")
        self.units = units
        self.f0_hz = float(f0_hz)
        self.va_ref_degree = float(va_ref_degree)
        self.tolerance_mva = float(tolerance_mva)
        self.max_iteration = int(max_iteration)
        self._check_net(net)
        self._net = net
        self._build(net)
        self._last: np.ndarray | None = None  # last converged unknowns (warm start)

    # ---- model -----------------------------------------------------------------------------
    def _check_net(self, net) -> None:
        problems = list(unsupported_elements(net))
        if len(net.gen) and net.gen["in_service"].astype(bool).any():
            problems.append(
                "gen: in-service generators are not modelled in an island (give them as "
                "grid-forming units)"
            )
        buses = set(int(b) for b in net.bus.index)
        for u in self.units:
            if u.bus not in buses:
                problems.append(f"grid-forming unit: bus {u.bus} is not a bus of the net")
        at_bus: dict[int, int] = {}
        for u in self.units:
            if u.nq_pu == 0:
                at_bus[u.bus] = at_bus.get(u.bus, 0) + 1
        for bus, count in at_bus.items():
            if count > 1:
                problems.append(
                    f"grid-forming units: {count} units at bus {bus} with nq_pu = 0 (their "
                    "reactive power split is undetermined; give them a Q-V droop)"
                )
        check_problems(problems, FeederError, f"{self.name}: cannot build the islanded power flow")

    def _build(self, net) -> None:
        import pandapower as pp

        work = copy.deepcopy(net)
        work.ext_grid.drop(work.ext_grid.index, inplace=True)
        # unloaded (the admittance matrix does not depend on the injections; wards keep their
        # shunt admittance in it)
        for table in ("load", "sgen", "storage"):
            if len(work[table]):
                work[table]["scaling"] = 0.0
        ref_bus = self.units[0].bus
        # a slack at the reference unit only to have pandapower build its internal model
        pp.create_ext_grid(work, bus=ref_bus, vm_pu=1.0)
        try:
            pp.runpp(work, calculate_voltage_angles=True, numba=False)
        except pp.LoadflowNotConverged:
            raise FeederError(
                f"{self.name}: pandapower could not solve the unloaded island"
            ) from None
        ppci = work._ppc["internal"]
        self.base_mva = float(ppci["baseMVA"])
        self._ybus = np.asarray(ppci["Ybus"].toarray(), dtype=complex)
        n_int = self._ybus.shape[0]
        # the unloaded solution: the start of a cold solve (transformer phase shifts included)
        v_unloaded = np.asarray(ppci["V"], dtype=complex)
        self.bus = net.bus.index.to_numpy(dtype=np.int64)
        lookup = np.asarray(work._pd2ppc_lookups["bus"])
        internal = np.full(len(self.bus), -1, dtype=int)
        inside = self.bus < len(lookup)
        internal[inside] = lookup[self.bus[inside]]
        internal[(internal < 0) | (internal >= n_int)] = -1
        internal[~net.bus.in_service.to_numpy(bool)] = -1
        self._internal = internal
        self.dead_bus = internal < 0
        self._aggregate = np.zeros((len(self.bus), n_int))
        live = np.flatnonzero(~self.dead_bus)
        self._aggregate[live, internal[live]] = 1.0
        position = {int(b): i for i, b in enumerate(self.bus)}
        unit_int = np.array([internal[position[u.bus]] for u in self.units], dtype=int)
        outside = [u.bus for u, k in zip(self.units, unit_int, strict=True) if k < 0]
        check_problems(
            [f"grid-forming unit at bus {b} is not connected to bus {ref_bus}" for b in outside],
            FeederError,
            f"{self.name}: the grid-forming units are not in one island (solve each separately)",
        )
        self._unit_int = unit_int
        self._ref = int(unit_int[0])
        self._n = n_int
        self._non_ref = np.array([i for i in range(n_int) if i != self._ref], dtype=int)
        base = self.base_mva
        s_g = np.array([u.s_rated_mva for u in self.units]) / base
        self._kp = np.array([u.mp_pu for u in self.units]) / s_g  # pu freq per pu power
        self._kq = np.array([u.nq_pu for u in self.units]) / s_g
        self._p0 = np.array([u.p0_mw for u in self.units]) / base
        self._q0 = np.array([u.q0_mvar for u in self.units]) / base
        self._v0 = np.array([u.v0_pu for u in self.units])
        n_g = len(self.units)
        self._unit_map = np.zeros((n_int, n_g))  # bus x unit incidence
        self._unit_map[unit_int, np.arange(n_g)] = 1.0
        self._va_start = np.angle(v_unloaded) - np.angle(v_unloaded[self._ref])
        self._vm_start = np.abs(v_unloaded) / np.abs(v_unloaded[self._ref])

    def base_injection(self) -> tuple[np.ndarray, np.ndarray]:
        """Net injection per bus of the net's own loads and generators (no external grid).

        Returns
        -------
        p_mw, q_mvar : numpy.ndarray (n_bus,)
            Injection positive [MW, Mvar] (see :func:`grids.powerflow.net_injection`).
        """
        return net_injection(self._net, self.bus)

    # ---- solve -----------------------------------------------------------------------------
    def solve(self, p_mw, q_mvar, *, warm_start: bool = True) -> IslandResult:
        """Solve the island for bus injections (one scenario or a batch).

        Parameters
        ----------
        p_mw, q_mvar : array_like (n_bus,) or (S, n_bus)
            Net injection per bus (loads negative) besides the grid-forming units [MW, Mvar],
            in :attr:`bus` order; ignored at dead buses.
        warm_start : bool, keyword-only
            Start from the previous call's last solution (same number of buses).

        Returns
        -------
        IslandResult
        """
        p, q = check_injections(p_mw, q_mvar, bus=self.bus, label=f"{self.name} island")
        s_spec = ((p + 1j * q) / self.base_mva) @ self._aggregate
        n_scen = s_spec.shape[0]
        x0 = self._initial(s_spec, warm_start)
        m = 2 * self._n + 2 * len(self.units)
        chunk = max(1, min(self.chunk_size, self.newton_memory_bytes // (16 * m * m)))
        out = [self._newton(s_spec[a:b], x0[a:b]) for a, b in _chunks(n_scen, chunk)]
        x = np.concatenate([o[0] for o in out])
        converged = np.concatenate([o[1] for o in out])
        iterations = np.concatenate([o[2] for o in out])
        if converged.any():
            self._last = x[np.flatnonzero(converged)[-1]].copy()
        return self._result(x, s_spec, converged, iterations)

    def _initial(self, s_spec: np.ndarray, warm_start: bool) -> np.ndarray:
        """Start: the last solution, else the unloaded island at the first unit's set-point
        with the units sharing the demand by droop."""
        n, n_g = self._n, len(self.units)
        n_scen = s_spec.shape[0]
        if warm_start and self._last is not None:
            return np.tile(self._last, (n_scen, 1))
        x = np.zeros((n_scen, 2 * n + 2 * n_g))
        x[:, : n - 1] = self._va_start[self._non_ref]
        x[:, n - 1 : 2 * n - 1] = self._v0[0] * self._vm_start
        share = (1.0 / self._kp) / np.sum(1.0 / self._kp)
        demand = -s_spec.sum(axis=1)
        p_g = self._p0 + share * (demand.real - self._p0.sum())[:, None]
        x[:, 2 * n - 1] = 1.0 - self._kp[0] * (p_g[:, 0] - self._p0[0])
        x[:, 2 * n : 2 * n + n_g] = p_g
        x[:, 2 * n + n_g :] = self._q0 + share * (demand.imag - self._q0.sum())[:, None]
        return x

    def _unpack(self, x: np.ndarray):
        n, n_g = self._n, len(self.units)
        va = np.zeros((x.shape[0], n))
        va[:, self._non_ref] = x[:, : n - 1]
        va += math.radians(self.va_ref_degree)
        vm = x[:, n - 1 : 2 * n - 1]
        omega = x[:, 2 * n - 1]
        return va, vm, omega, x[:, 2 * n : 2 * n + n_g], x[:, 2 * n + n_g :]

    def _residual(self, x: np.ndarray, s_spec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Residuals ``[P, Q balance (n each), P-f droop, Q-V droop (n_g each)]`` and ``V``."""
        va, vm, omega, p_g, q_g = self._unpack(x)
        v = vm * np.exp(1j * va)
        s_calc = v * np.conj(v @ self._ybus.T)
        mis = s_calc - s_spec - (p_g + 1j * q_g) @ self._unit_map.T
        droop_f = omega[:, None] - 1.0 + self._kp * (p_g - self._p0)
        droop_v = vm[:, self._unit_int] - self._v0 + self._kq * (q_g - self._q0)
        return np.concatenate([mis.real, mis.imag, droop_f, droop_v], axis=1), v

    def _jacobian(self, v: np.ndarray) -> np.ndarray:
        """Stacked Jacobians (S, m, m) of :meth:`_residual` with respect to the unknowns."""
        n, n_g = self._n, len(self.units)
        n_scen = v.shape[0]
        ybus = self._ybus
        current = v @ ybus.T
        v_norm = v / np.abs(v)
        ds_dva = -1j * v[:, :, None] * np.conj(ybus[None, :, :] * v[:, None, :])
        ds_dvm = v[:, :, None] * np.conj(ybus[None, :, :] * v_norm[:, None, :])
        diag = np.arange(n)
        ds_dva[:, diag, diag] += 1j * v * np.conj(current)
        ds_dvm[:, diag, diag] += np.conj(current) * v_norm
        m = 2 * n + 2 * n_g
        jac = np.zeros((n_scen, m, m))
        nr = self._non_ref
        cols_vm = slice(n - 1, 2 * n - 1)
        cols_p = slice(2 * n, 2 * n + n_g)
        cols_q = slice(2 * n + n_g, m)
        jac[:, :n, : n - 1] = ds_dva[:, :, nr].real
        jac[:, :n, cols_vm] = ds_dvm.real
        jac[:, n : 2 * n, : n - 1] = ds_dva[:, :, nr].imag
        jac[:, n : 2 * n, cols_vm] = ds_dvm.imag
        jac[:, :n, cols_p] = -self._unit_map
        jac[:, n : 2 * n, cols_q] = -self._unit_map
        rows_f = np.arange(2 * n, 2 * n + n_g)
        rows_v = np.arange(2 * n + n_g, m)
        jac[:, rows_f, 2 * n - 1] = 1.0
        jac[:, rows_f, 2 * n + np.arange(n_g)] = self._kp
        jac[:, rows_v, n - 1 + self._unit_int] = 1.0
        jac[:, rows_v, 2 * n + n_g + np.arange(n_g)] = self._kq
        return jac

    def _newton(self, s_spec: np.ndarray, x: np.ndarray):
        n_scen = x.shape[0]
        x = x.copy()
        tol_pu = self.tolerance_mva / self.base_mva
        converged = np.zeros(n_scen, dtype=bool)
        iterations = np.zeros(n_scen, dtype=int)
        active = np.arange(n_scen)
        for _ in range(self.max_iteration + 1):
            res, v = self._residual(x[active], s_spec[active])
            with np.errstate(invalid="ignore"):
                ok = np.max(np.abs(res), axis=1) < tol_pu
            converged[active[ok]] = True
            finite = np.all(np.isfinite(res), axis=1)
            keep = ~ok & finite
            active, res, v = active[keep], res[keep], v[keep]
            if not len(active) or iterations[active].max() >= self.max_iteration:
                break
            try:
                dx = np.linalg.solve(self._jacobian(v), -res[:, :, None])[:, :, 0]
            except np.linalg.LinAlgError:
                dx = _solve_each(self._jacobian(v), -res)
            x[active] += dx
            iterations[active] += 1
        return x, converged, iterations

    def _result(self, x, s_spec, converged, iterations) -> IslandResult:
        base = self.base_mva
        va, vm, omega, p_g, q_g = self._unpack(x)
        v = vm * np.exp(1j * va)
        s_loss = np.sum(v * np.conj(v @ self._ybus.T), axis=1) * base
        bad = ~converged
        live = np.flatnonzero(~self.dead_bus)
        n_scen = x.shape[0]
        vm_bus = np.full((n_scen, len(self.bus)), np.nan)
        va_bus = np.full((n_scen, len(self.bus)), np.nan)
        vm_bus[:, live] = vm[:, self._internal[live]]
        va_bus[:, live] = np.degrees(va[:, self._internal[live]])
        vm_bus[bad] = np.nan
        va_bus[bad] = np.nan

        def nan_bad(a):
            a = np.array(a, dtype=float)
            a[bad] = np.nan
            return a

        return IslandResult(
            bus=self.bus,
            units=self.units,
            vm_pu=vm_bus,
            va_degree=va_bus,
            f_hz=nan_bad(omega * self.f0_hz),
            p_gfm_mw=nan_bad(p_g * base),
            q_gfm_mvar=nan_bad(q_g * base),
            p_loss_mw=nan_bad(s_loss.real),
            q_loss_mvar=nan_bad(s_loss.imag),
            converged=converged,
            iterations=iterations,
            dead_bus=self.dead_bus.copy(),
        )


def _solve_each(jac: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Solve a stack one by one; a singular system gives NaN (that scenario fails)."""
    out = np.full(rhs.shape, np.nan)
    for k in range(len(rhs)):
        with contextlib.suppress(np.linalg.LinAlgError):
            out[k] = np.linalg.solve(jac[k], rhs[k])
    return out


def _chunks(n: int, size: int):
    return [(a, min(a + size, n)) for a in range(0, max(n, 1), size)] if n else []
