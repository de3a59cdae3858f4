"""AC power flow: pandapower ``runpp`` as the reference, and a fast batched path.

:class:`ACPowerFlow` builds the bus admittance matrix of a pandapower net once (from
pandapower's own internal model, so transformer taps and phase shifts, line charging, shunts,
open line switches and fused bus-bus switches are modelled exactly as ``runpp`` models them)
and then solves many injection scenarios in one call:

1. a *chord* Newton stage for the whole batch at once: the Jacobian at the base solution is
   inverted once (a dense inverse: for distribution feeders of up to a few hundred buses one
   dense product with all scenarios as right-hand sides, or one compiled loop for a single
   scenario, is faster than sparse triangular solves), and every iteration is one scipy
   sparse product ``Ybus V`` and one dense product with that inverse;
2. a full Newton-Raphson stage (fresh Jacobian every iteration) for the few scenarios the chord
   stage did not bring under the tolerance: a stack of dense Jacobians solved with one
   batched ``numpy.linalg.solve``.

Both stages stop on the same mismatch criterion, so the result is the Newton-Raphson solution
to ``tolerance_mva`` whichever stage finished it. See ``docs/powerflow.md``.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np
from scipy import sparse

from grids.errors import ConvergenceError, FeederError, ScenarioError, check_problems
from grids.feeders import load_feeder
from grids.powerflow_kernels import chord_solve, single_results

# pandapower (~2 s to import) is imported only where its power flow runs: the CLI imports this
# module on its start-up path, and the chord and LinDistFlow solvers do not need it.


class PowerFlowMethod(Enum):
    """Power-flow method: full AC Newton-Raphson or the linear LinDistFlow approximation."""

    AC = "ac"
    LINDISTFLOW = "lindistflow"


def prepare_net(
    feeder: str | Path,
    *,
    load_scale: float = 1.0,
    ext_grid_vm_pu: float | None = None,
    require_radial: bool = False,
):
    """Load a feeder and apply a load scale and a slack voltage; validate the arguments.

    Parameters
    ----------
    feeder : str or path
        Embedded feeder name or pandapower JSON file.
    load_scale : float, keyword-only
        Factor on every load's ``scaling`` [-], finite and >= 0.
    ext_grid_vm_pu : float or None, keyword-only
        Slack voltage set-point [pu] in [0.8, 1.2]; default as in the feeder.
    require_radial : bool, keyword-only
        Refuse a meshed feeder (:class:`FeederError`).

    Returns
    -------
    pandapowerNet
        A fresh net (the caller may change it).

    Raises
    ------
    ScenarioError
        Invalid arguments (all listed).
    FeederError
        Unknown or invalid feeder.
    """
    problems = []
    if not (math.isfinite(load_scale) and load_scale >= 0):
        problems.append(f"load_scale: {load_scale} (expected a finite number >= 0)")
    if ext_grid_vm_pu is not None and not (
        math.isfinite(ext_grid_vm_pu) and 0.8 <= ext_grid_vm_pu <= 1.2
    ):
        problems.append(f"ext_grid_vm_pu: {ext_grid_vm_pu} (expected 0.8 to 1.2 pu)")
    check_problems(problems, ScenarioError, "invalid power-flow arguments")
    net = load_feeder(feeder, require_radial=require_radial)
    net.load["scaling"] = net.load["scaling"] * load_scale
    if ext_grid_vm_pu is not None:
        net.ext_grid["vm_pu"] = ext_grid_vm_pu
    return net


_RUNPP_OPTIONS = {"calculate_voltage_angles": True, "tolerance_mva": 1e-9, "max_iteration": 50}
# ACPowerFlow needs only pandapower's internal model (Ybus, Yf, Yt, bus types) from one runpp:
# without numba that call takes milliseconds, with it pandapower compiles its kernels first
# (about 3-5 s in every new process; they are not cached). The model is the same either way.
_BUILD_OPTIONS = {**_RUNPP_OPTIONS, "numba": False}


def run_reference(net) -> None:
    """Run pandapower's ``runpp`` (the reference) with the project's options, in place.

    Parameters
    ----------
    net : pandapowerNet
        The net; its ``res_*`` tables hold the result afterwards.

    Raises
    ------
    ConvergenceError
        ``runpp`` did not converge.
    """
    import pandapower as pp

    try:
        pp.runpp(net, **_RUNPP_OPTIONS)
    except pp.LoadflowNotConverged:
        raise ConvergenceError(
            f"{net.name or 'feeder'}: pandapower runpp did not converge"
        ) from None


# --------------------------------------------------------------------------------------------
# Fast batched AC power flow
# --------------------------------------------------------------------------------------------

# Elements whose steady-state model the fast path does not reproduce (runpp would treat them
# with extra internal buses, controllers or voltage-dependent terms).
_UNSUPPORTED_TABLES = (
    "trafo3w",
    "xward",
    "dcline",
    "svc",
    "ssc",
    "tcsc",
    "vsc",
    "motor",
    "asymmetric_load",
    "asymmetric_sgen",
)
_ZIP_COLUMNS = ("const_z_p_percent", "const_z_q_percent", "const_i_p_percent", "const_i_q_percent")

# pandapower/pypower column indices in the internal bus and branch tables
_BUS_VM, _BUS_VA, _BUS_BASE_KV = 7, 8, 9
_BR_F_BUS, _BR_T_BUS = 0, 1


@dataclass
class ACResult:
    """Results of a batch of AC power flows; every array has the scenario axis first.

    Arrays over buses follow :attr:`ACPowerFlow.bus` (pandapower ``net.bus.index`` order);
    over lines/transformers :attr:`ACPowerFlow.line` / :attr:`ACPowerFlow.trafo`. A batch
    call always returns 2-D arrays ``(n_scenarios, ...)``, also for a single 1-D scenario.
    Scenarios that did not converge hold NaN in every result array except ``converged``,
    ``iterations``, ``worst_bus`` and ``max_mismatch_mva``.

    Attributes
    ----------
    vm_pu : ndarray (S, n_bus)
        Voltage magnitude [pu]; NaN for buses not connected to any slack.
    va_degree : ndarray (S, n_bus)
        Voltage angle [degree] (transformer phase shifts included, as ``runpp`` with
        ``calculate_voltage_angles=True``).
    converged : ndarray (S,) of bool
    iterations : ndarray (S,) of int
        Newton updates (chord and full) used.
    p_loss_mw, q_loss_mvar : ndarray (S,)
        Series losses of all lines and transformers [MW, Mvar]; same definition as
        pandapower's ``res_line.pl_mw.sum() + res_trafo.pl_mw.sum()``.
    p_slack_mw, q_slack_mvar : ndarray (S,)
        Total power supplied by the external grids [MW, Mvar] (generator convention).
    line_loading_percent : ndarray (S, n_line)
        ``max(i_from_ka, i_to_ka) / (max_i_ka * df * parallel) * 100``.
    trafo_loading_percent : ndarray (S, n_trafo)
        ``max(i_hv_ka * vn_hv_kv, i_lv_ka * vn_lv_kv) * sqrt(3) / (sn_mva * df * parallel) * 100``.
    worst_bus : ndarray (S,) of int
        Failed scenarios: pandapower bus with the largest power mismatch at the best iterate;
        -1 where converged.
    max_mismatch_mva : ndarray (S,)
        Failed scenarios: largest bus power mismatch at the best iterate [MW or Mvar]; NaN
        where converged (below ``tolerance_mva``).
    """

    vm_pu: np.ndarray
    va_degree: np.ndarray
    converged: np.ndarray
    iterations: np.ndarray
    p_loss_mw: np.ndarray
    q_loss_mvar: np.ndarray
    p_slack_mw: np.ndarray
    q_slack_mvar: np.ndarray
    line_loading_percent: np.ndarray
    trafo_loading_percent: np.ndarray
    worst_bus: np.ndarray
    max_mismatch_mva: np.ndarray

    def failed(self) -> np.ndarray:
        """Indices of the scenarios that did not converge.

        Returns
        -------
        numpy.ndarray of int
        """
        return np.flatnonzero(~self.converged)

    def raise_if_failed(self, *, label: str = "AC power flow") -> None:
        """Raise :class:`ConvergenceError` naming the first failed scenario and its worst bus.

        Parameters
        ----------
        label : str, keyword-only
            Start of the message.

        Raises
        ------
        ConvergenceError
            With ``index``, ``worst_bus`` and ``max_mismatch`` set.
        """
        failed = self.failed()
        if len(failed) == 0:
            return
        first = int(failed[0])
        bus = int(self.worst_bus[first])
        mismatch = float(self.max_mismatch_mva[first])
        others = f" ({len(failed)} of {len(self.converged)} scenarios failed)"
        raise ConvergenceError(
            f"{label} did not converge for scenario {first}: largest mismatch "
            f"{mismatch:.3g} MVA at bus {bus}{others}",
            index=first,
            worst_bus=bus,
            max_mismatch=mismatch,
        )


def _check_supported(net) -> None:
    check_problems(
        unsupported_elements(net),
        FeederError,
        f"{net.name or 'feeder'}: cannot build ACPowerFlow",
    )


def unsupported_elements(net) -> list[str]:
    """Elements of ``net`` that the fast path does not model.

    Parameters
    ----------
    net : pandapowerNet
        The feeder.

    Returns
    -------
    list of str
        One line per unsupported element table or load model; empty if :class:`ACPowerFlow`
        can be built (then it gives the same solution as ``runpp``).
    """
    problems = []
    for table in _UNSUPPORTED_TABLES:
        if table in net and len(net[table]) and net[table]["in_service"].any():
            problems.append(f"{table}: in-service elements are not supported by the fast path")
    if len(net.load):
        for column in _ZIP_COLUMNS:
            if column in net.load and (net.load[column].fillna(0) != 0).any():
                problems.append(
                    f"load.{column}: voltage-dependent loads are not supported by the fast path"
                )
    return problems


def net_injection(net, bus: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Net injection per bus of a net's own elements, as ``runpp`` sees them.

    Parameters
    ----------
    net : pandapowerNet
        The feeder.
    bus : numpy.ndarray of int
        pandapower bus indices: the order of the result (every element's bus must be in it).

    Returns
    -------
    p_mw, q_mvar : numpy.ndarray (n_bus,)
        Loads and storages (consumption, times ``scaling``) count negative, static generators
        and generators (active power only) positive, wards' constant-power part negative
        [MW, Mvar]; in-service elements only.
    """
    position = {int(b): i for i, b in enumerate(bus)}
    p = np.zeros(len(bus))
    q = np.zeros(len(bus))
    parts = [
        _element_injection(net, "load", -1.0),
        _element_injection(net, "sgen", 1.0),
        _element_injection(net, "storage", -1.0),
        _element_injection(net, "gen", 1.0, q_col=None),
        _element_injection(net, "ward", -1.0, p_col="ps_mw", q_col="qs_mvar"),
    ]
    for part in parts:
        if part is None:
            continue
        buses, p_el, q_el = part
        rows = np.array([position[int(b)] for b in buses], dtype=int)
        np.add.at(p, rows, p_el)
        np.add.at(q, rows, q_el)
    return p, q


def _element_injection(net, table: str, sign: float, *, p_col="p_mw", q_col="q_mvar"):
    """(bus, p, q) of the in-service elements of one table, injection-positive."""
    df = net.get(table, None)
    if df is None or len(df) == 0:
        return None
    df = df[df["in_service"].astype(bool)]
    scaling = df["scaling"].to_numpy(float) if "scaling" in df else np.ones(len(df))
    p = sign * df[p_col].to_numpy(float) * scaling
    q = sign * df[q_col].to_numpy(float) * scaling if q_col else np.zeros(len(df))
    return df["bus"].to_numpy(int), p, q


class _SparseRows:
    """A sparse matrix ``M`` (scipy CSR) applied to a batch of vectors: ``dot(v) = v @ M.T``.

    Keeps the raw CSR arrays for the compiled one-scenario kernels and a dense copy for the
    batched Jacobians.
    """

    def __init__(self, matrix) -> None:
        csr = sparse.csr_matrix(matrix, dtype=complex)
        csr.sum_duplicates()
        csr.indices = csr.indices.astype(np.int64)
        csr.indptr = csr.indptr.astype(np.int64)
        self.shape = csr.shape
        self._csr = csr
        self.csr = (csr.data, csr.indices, csr.indptr)  # for the one-scenario kernels
        self._dense = np.asarray(csr.toarray(), dtype=complex)

    def dot(self, v: np.ndarray) -> np.ndarray:
        """``(S, n_col)`` -> ``(S, n_row)``."""
        return (self._csr @ v.T).T

    def toarray(self) -> np.ndarray:
        """The dense matrix (n_row, n_col)."""
        return self._dense


def _solve_stacked(jacobians: np.ndarray, rhs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Solve ``J_k dx_k = f_k`` for a stack; singular systems give zeros and ``ok=False``."""
    dx = np.zeros(rhs.shape)
    ok = np.isfinite(jacobians).all(axis=(1, 2))
    try:
        dx[ok] = np.linalg.solve(jacobians[ok], rhs[ok, :, None])[:, :, 0]
    except np.linalg.LinAlgError:  # at least one singular (voltage collapse): one by one
        for k in np.flatnonzero(ok):
            try:
                dx[k] = np.linalg.solve(jacobians[k], rhs[k])
            except np.linalg.LinAlgError:
                ok[k] = False
    return dx, ok


def check_injections(
    p_mw: Any, q_mvar: Any, *, bus: np.ndarray, label: str
) -> tuple[np.ndarray, np.ndarray]:
    """Per-bus injections as ``(n_scenarios, n_bus)`` arrays, or every problem at once.

    Parameters
    ----------
    p_mw, q_mvar : array_like
        Injections per bus [MW, Mvar] in ``bus`` order: one scenario ``(n_bus,)`` or a batch
        ``(n_scenarios, n_bus)``.
    bus : numpy.ndarray
        pandapower bus indices of the columns.
    label : str
        The feeder's name, for the message.

    Returns
    -------
    p_mw, q_mvar : numpy.ndarray
        Shape ``(n_scenarios, n_bus)``; the caller's arrays where they already are.

    Raises
    ------
    ScenarioError
        Naming a wrong shape or the scenario and bus of a NaN or infinite value.
    """
    p = np.asarray(p_mw, dtype=float)
    q = np.asarray(q_mvar, dtype=float)
    n_bus = len(bus)
    if p.shape == q.shape == (n_bus,) and math.isfinite(p.sum() + q.sum()):
        return p[None, :], q[None, :]  # one valid scenario (the time-series hot path)
    batch = p.ndim == 2 and p.shape == q.shape and p.shape[1] == n_bus
    if batch and math.isfinite(p.sum() + q.sum()):
        return p, q  # a valid batch (the hosting-capacity hot path)
    problems = []
    for name, arr in (("p_mw", p), ("q_mvar", q)):
        if arr.ndim not in (1, 2) or arr.shape[-1] != n_bus:
            problems.append(
                f"{name}: shape {arr.shape} (expected ({n_bus},) or (n_scenarios, {n_bus}))"
            )
        elif not np.all(np.isfinite(arr)):
            where = np.argwhere(~np.isfinite(np.atleast_2d(arr)))[0]
            problems.append(f"{name}: scenario {where[0]}, bus {bus[where[1]]} is NaN or infinite")
    if not problems and np.atleast_2d(p).shape != np.atleast_2d(q).shape:
        problems.append(f"p_mw shape {p.shape} and q_mvar shape {q.shape} differ")
    check_problems(problems, ScenarioError, f"{label}: invalid power-flow injections")
    return np.atleast_2d(p), np.atleast_2d(q)


class ACPowerFlow:
    """Fast AC power flow for many injection scenarios on one feeder.

    Parameters
    ----------
    net : pandapowerNet
        The feeder. Its admittance matrix, slack and PV buses are taken from pandapower's
        internal model built by one ``runpp`` call on a copy of the net.
    tolerance_mva : float, keyword-only
        Convergence when every bus power mismatch is below this [MVA].
    max_iteration : int, keyword-only
        Maximum number of full Newton-Raphson iterations per scenario (after the chord stage).

    Notes
    -----
    Unknowns are the voltage angles of PV and PQ buses and the magnitudes of PQ buses; the
    mismatch is ``F = S_calc(V) - S_spec`` with ``S_calc = V * conj(Ybus V)`` (polar form).
    Generators (PV buses) keep their voltage set-point without reactive limits, as ``runpp``
    does by default. Constant-power loads only.

    References
    ----------
    L. Thurner et al., "pandapower - an open-source Python tool for convenient modeling,
    analysis, and optimization of electric power systems", IEEE Trans. Power Syst. 33(6),
    2018. W. F. Tinney, C. E. Hart, "Power flow solution by Newton's method", IEEE Trans. PAS
    86(11), 1967.
    """

    #: chord iterations before the remaining scenarios go to full Newton-Raphson
    max_chord_iteration: int = 25
    #: re-invert the chord Jacobian at the latest solution when a call needed more iterations
    #: than this on average (time series drift away from the base operating point)
    chord_refresh_iterations: float = 4.0
    #: scenarios per chunk (bounds memory for very large batches)
    chunk_size: int = 4096
    #: large batches are split into at most this many groups of similar total load ...
    max_groups: int = 8
    #: ... of at least this many scenarios, each with its own chord Jacobian
    group_min_scenarios: int = 128
    #: memory budget of one batch of stacked Newton-Raphson Jacobians [bytes]
    newton_memory_bytes: int = 64 * 2**20
    #: one-scenario calls (time series): compiled chord kernel; re-invert the chord Jacobian
    #: at the solution when a call needed more updates than this (a chord update costs about
    #: 1/50 of an inversion, so the refresh is rarer than for batches)
    single_refresh_iterations: int = 10

    def __init__(self, net, *, tolerance_mva: float = 1e-9, max_iteration: int = 30) -> None:
        import pandapower as pp

        problems = []
        if not (math.isfinite(tolerance_mva) and tolerance_mva > 0):
            problems.append(f"tolerance_mva: {tolerance_mva} (expected a finite number > 0)")
        if int(max_iteration) < 1:
            problems.append(f"max_iteration: {max_iteration} (expected >= 1)")
        check_problems(problems, ScenarioError, "invalid ACPowerFlow arguments")
        _check_supported(net)
        self.name = str(net.name or "feeder")
        self.tolerance_mva = float(tolerance_mva)
        self.max_iteration = int(max_iteration)
        self._net = net
        work = copy.deepcopy(net)
        try:
            pp.runpp(work, **_BUILD_OPTIONS)
        except pp.LoadflowNotConverged:
            # The admittance matrix does not depend on the injections: retry unloaded.
            for table in ("load", "sgen", "storage"):
                if len(work[table]):
                    work[table]["scaling"] = 0.0
            try:
                pp.runpp(work, **_BUILD_OPTIONS)
            except pp.LoadflowNotConverged:
                raise FeederError(
                    f"{self.name}: pandapower could not solve even the unloaded feeder"
                ) from None
        self._build(net, work)

    # ---- model -----------------------------------------------------------------------------
    def _build(self, net, work) -> None:
        ppci = work._ppc["internal"]
        self.base_mva = float(ppci["baseMVA"])
        # Sparse products for the batch (O(nnz) per scenario); the dense Ybus only for the
        # batched Jacobians (a stack of dense m x m systems solves faster than one sparse
        # factorisation per scenario for feeders of a few hundred buses).
        self._ybus_rows = _SparseRows(ppci["Ybus"])
        self._yf_rows = _SparseRows(ppci["Yf"])
        self._yt_rows = _SparseRows(ppci["Yt"])
        self._ybus = self._ybus_rows.toarray()
        n_int = ppci["bus"].shape[0]
        self._n_int = n_int
        self._ref = np.asarray(ppci["ref"], dtype=int)
        self._pv = np.asarray(ppci["pv"], dtype=int)
        self._pq = np.asarray(ppci["pq"], dtype=int)
        self._pvpq = np.r_[self._pv, self._pq]
        self._v0 = np.asarray(ppci["V"], dtype=complex).copy()
        self._base_kv = ppci["bus"][:, _BUS_BASE_KV].real.astype(float)
        branch = ppci["branch"]
        self._f_bus = branch[:, _BR_F_BUS].real.astype(int)
        self._t_bus = branch[:, _BR_T_BUS].real.astype(int)

        # pandapower bus -> internal bus (fused bus-bus switches share one internal bus;
        # out-of-service or unsupplied buses have none)
        self.bus = net.bus.index.to_numpy()
        lookup = np.asarray(work._pd2ppc_lookups["bus"])
        internal = np.full(len(self.bus), -1, dtype=int)
        inside = self.bus < len(lookup)
        internal[inside] = lookup[self.bus[inside]]
        internal[(internal < 0) | (internal >= n_int)] = -1
        internal[~net.bus.in_service.to_numpy(bool)] = -1
        self._bus_internal = internal
        connected = np.flatnonzero(internal >= 0)
        self._connected = connected
        # aggregation matrix (n_bus, n_int): S_int = S_bus @ C
        self._aggregate = np.zeros((len(self.bus), n_int))
        self._aggregate[connected, internal[connected]] = 1.0

        # in-service branches: ppci branch k corresponds to the k-th in-service ppc branch
        branch_is = np.asarray(ppci["branch_is"], dtype=bool)
        position = np.cumsum(branch_is) - 1
        ranges = work._pd2ppc_lookups["branch"]
        self.line = np.array([], dtype=int)
        self._line_rows = np.array([], dtype=int)
        self._line_i_max_ka = np.array([])
        if "line" in ranges:
            f, t = ranges["line"]
            mask = branch_is[f:t]
            self.line = net.line.index.to_numpy()[mask]
            self._line_rows = position[f:t][mask]
            lines = net.line.loc[self.line]
            self._line_i_max_ka = (
                lines.max_i_ka.to_numpy(float)
                * lines.df.to_numpy(float)
                * lines.parallel.to_numpy(float)
            )
        self.trafo = np.array([], dtype=int)
        self._trafo_rows = np.array([], dtype=int)
        self._trafo_vn_kv = None
        self._trafo_rating_mva = np.array([])
        if "trafo" in ranges:
            f, t = ranges["trafo"]
            mask = branch_is[f:t]
            self.trafo = net.trafo.index.to_numpy()[mask]
            self._trafo_rows = position[f:t][mask]
            trafos = net.trafo.loc[self.trafo]
            self._trafo_vn_kv = np.c_[
                trafos.vn_hv_kv.to_numpy(float), trafos.vn_lv_kv.to_numpy(float)
            ]
            self._trafo_rating_mva = (
                trafos.sn_mva.to_numpy(float)
                * trafos.df.to_numpy(float)
                * trafos.parallel.to_numpy(float)
            )
            if work._options.get("trafo_loading", "current") == "power":
                self._trafo_vn_kv = None  # loading from apparent power instead of current
        # the one-scenario kernel takes an array either way (unused for loading by power)
        self._trafo_vn_kernel = (
            self._trafo_vn_kv
            if self._trafo_vn_kv is not None
            else np.zeros((len(self._trafo_rows), 2))
        )

        self._last_v: np.ndarray | None = None  # (S, n_int) previous solution, for warm starts
        # chord stage: inverse of the Jacobian at the base solution (only the convergence
        # rate depends on it, never the solution, which is fixed by the exact mismatch)
        self._set_chord_point(self._v0)

    def _set_chord_point(self, v: np.ndarray) -> None:
        """Invert the Jacobian at ``v`` (n_int,) for the chord stage (kept if singular)."""
        previous = getattr(self, "_chord_inverse_t", None)
        inverse_t = self._chord_inverse_at(v, fallback=previous)
        if inverse_t is None:
            raise FeederError(f"{self.name}: singular power-flow Jacobian at the base solution")
        self._chord_inverse_t = inverse_t

    def _chord_inverse_at(self, v: np.ndarray, *, fallback):
        """Transposed inverse Jacobian at ``v`` (n_int,), or ``fallback`` if singular."""
        try:
            return np.ascontiguousarray(np.linalg.inv(self._jacobian(v[None, :])[0]).T)
        except np.linalg.LinAlgError:
            return fallback

    def _jacobian(self, v: np.ndarray) -> np.ndarray:
        """Newton-Raphson Jacobians in polar form for a batch of voltages ``v`` (S, n_int).

        Returns ``(S, m, m)`` with ``m = n_pv + 2 n_pq``: derivatives of ``[P(pvpq), Q(pq)]``
        with respect to ``[va(pvpq), vm(pq)]``.
        """
        ybus = self._ybus
        current = self._ybus_rows.dot(v)
        v_norm = v / np.abs(v)
        # dS/dva = j diag(V) conj(diag(I) - Y diag(V));
        # dS/dvm = diag(V) conj(Y diag(V/|V|)) + conj(diag(I)) diag(V/|V|)
        ds_dva = -1j * v[:, :, None] * np.conj(ybus[None, :, :] * v[:, None, :])
        ds_dvm = v[:, :, None] * np.conj(ybus[None, :, :] * v_norm[:, None, :])
        diag = np.arange(v.shape[1])
        ds_dva[:, diag, diag] += 1j * v * np.conj(current)
        ds_dvm[:, diag, diag] += np.conj(current) * v_norm
        pvpq, pq = self._pvpq, self._pq
        top = np.concatenate(
            [ds_dva[:, pvpq][:, :, pvpq].real, ds_dvm[:, pvpq][:, :, pq].real], axis=2
        )
        bottom = np.concatenate(
            [ds_dva[:, pq][:, :, pvpq].imag, ds_dvm[:, pq][:, :, pq].imag], axis=2
        )
        return np.concatenate([top, bottom], axis=1)

    # ---- injections -------------------------------------------------------------------------
    def base_injection(self) -> tuple[np.ndarray, np.ndarray]:
        """Net injection per bus from the net's own elements, as ``runpp`` sees them.

        Returns
        -------
        p_mw, q_mvar : ndarray (n_bus,)
            Loads and storages (consumption, times ``scaling``) count negative, static
            generators and generators (active power only) positive, wards' constant-power
            part negative [MW, Mvar].
        """
        return net_injection(self._net, self.bus)

    # ---- solve ------------------------------------------------------------------------------
    def solve(self, p_mw, q_mvar, *, warm_start: bool = True) -> ACResult:
        """Solve the AC power flow for one or many injection scenarios.

        Parameters
        ----------
        p_mw, q_mvar : array_like (n_bus,) or (n_scenarios, n_bus)
            TOTAL net injection per bus [MW, Mvar], injection positive (start from
            :meth:`base_injection` to keep the net's own loads). Injections at slack buses
            are balanced by the external grid; at PV buses the reactive power is free.
        warm_start : bool, keyword-only
            Start from the previous call's solution (per scenario if the batch size is the
            same, else its last converged scenario, e.g. the previous time step); otherwise
            from the base solution of the net.

        Returns
        -------
        ACResult
            Always 2-D ``(n_scenarios, ...)``. Never raises for non-convergence of single
            scenarios: check ``converged`` or call :meth:`ACResult.raise_if_failed`.
        """
        p, q = check_injections(p_mw, q_mvar, bus=self.bus, label=self.name)
        n_scen = p.shape[0]
        # two real products: a complex @ real product would cast the matrix on every call
        s_spec = (p @ self._aggregate + 1j * (q @ self._aggregate)) / self.base_mva  # (S, n_int)
        if n_scen == 1:
            last = self._last_v
            start = last[-1] if warm_start and last is not None else self._v0
            single = self._solve_single(s_spec[0], start)
            if single is not None:
                return single
        v_init, per_scenario_start = self._initial_voltage(n_scen, warm_start)
        v = np.empty_like(s_spec)
        converged = np.zeros(n_scen, dtype=bool)
        iterations = np.zeros(n_scen, dtype=int)
        for group in self._groups(s_spec):
            inverse_t = self._chord_inverse_t
            if len(group) >= self.group_min_scenarios:
                # anchor: the middle scenario of the group, solved first; its Jacobian drives
                # the chord stage of the group and (without per-scenario warm starts) its
                # solution is the group's initial guess
                anchor = group[len(group) // 2 : len(group) // 2 + 1]
                v_a, ok_a, _ = self._solve_chunk(s_spec[anchor], v_init[anchor], inverse_t)
                if ok_a[0]:
                    inverse_t = self._chord_inverse_at(v_a[0], fallback=inverse_t)
                    if not per_scenario_start:
                        v_init[group] = v_a[0]
            for start in range(0, len(group), self.chunk_size):
                idx = group[start : start + self.chunk_size]
                v[idx], converged[idx], iterations[idx] = self._solve_chunk(
                    s_spec[idx], v_init[idx], inverse_t
                )
        mismatch = np.zeros((n_scen, self._n_int))
        if not converged.all():  # worst-mismatch buses of the failed scenarios
            failed = ~converged
            mismatch[failed] = self._mismatch_per_bus(v[failed], s_spec[failed])
        self._remember(v, converged)
        if converged.any() and iterations[converged].mean() > self.chord_refresh_iterations:
            self._set_chord_point(v[np.flatnonzero(converged)[-1]])
        return self._results(v, s_spec, converged, iterations, mismatch)

    def _solve_single(self, s_spec: np.ndarray, v_init: np.ndarray) -> ACResult | None:
        """One scenario with the compiled chord kernel; ``None`` if it did not converge there
        (the caller then runs the batched path: chord stage, then full Newton-Raphson)."""
        v = v_init.copy()
        converged, iterations, _ = chord_solve(
            *self._ybus_rows.csr,
            s_spec,
            v,
            self._chord_inverse_t,
            self._pvpq,
            self._pq,
            self.tolerance_mva / self.base_mva,
            self.max_chord_iteration,
        )
        if not converged:
            return None
        v = v[None, :]
        ok = np.ones(1, dtype=bool)
        self._last_v = v  # a fresh array: the warm start of the next call
        if iterations > self.single_refresh_iterations:
            self._set_chord_point(v[0])
        vm, va, s_loss, s_slack, line_loading, trafo_loading = single_results(
            self._ybus_rows.csr,
            self._yf_rows.csr,
            self._yt_rows.csr,
            v[0],
            s_spec,
            self.base_mva,
            self._ref,
            self._f_bus,
            self._t_bus,
            self._base_kv,
            self._bus_internal,
            self._line_rows,
            self._line_i_max_ka,
            self._trafo_rows,
            self._trafo_vn_kernel,
            self._trafo_vn_kv is not None,
            self._trafo_rating_mva,
        )
        return ACResult(
            vm_pu=vm[None],
            va_degree=va[None],
            converged=ok,
            iterations=np.array([iterations]),
            p_loss_mw=np.array([s_loss.real]),
            q_loss_mvar=np.array([s_loss.imag]),
            p_slack_mw=np.array([s_slack.real]),
            q_slack_mvar=np.array([s_slack.imag]),
            line_loading_percent=line_loading[None],
            trafo_loading_percent=trafo_loading[None],
            worst_bus=np.array([-1]),
            max_mismatch_mva=np.array([np.nan]),
        )

    def _initial_voltage(self, n_scen: int, warm_start: bool) -> tuple[np.ndarray, bool]:
        """Initial voltages (S, n_int) and whether they are per-scenario warm starts."""
        last = self._last_v
        if warm_start and last is not None:
            if last.shape[0] == n_scen:
                return last.copy(), True
            return np.repeat(last[-1:], n_scen, axis=0), False
        return np.repeat(self._v0[None, :], n_scen, axis=0), False

    def _groups(self, s_spec: np.ndarray) -> list[np.ndarray]:
        """Split a large batch into groups of similar total injection, each with its own chord
        Jacobian (the chord stage contracts faster the closer its Jacobian's point is)."""
        n_scen = s_spec.shape[0]
        n_groups = min(self.max_groups, n_scen // self.group_min_scenarios)
        if n_groups <= 1:
            return [np.arange(n_scen)]
        order = np.argsort(s_spec.real.sum(axis=1), kind="stable")
        return np.array_split(order, n_groups)

    def _remember(self, v: np.ndarray, converged: np.ndarray) -> None:
        if not converged.any():
            return
        remembered = v.copy()
        # failed scenarios restart from the latest good solution next time
        good = remembered[np.flatnonzero(converged)[-1]]
        remembered[~converged] = good
        self._last_v = remembered

    def _mismatch(self, v: np.ndarray, s_spec: np.ndarray) -> np.ndarray:
        """Mismatch vector ``F`` (S, m) [pu]: P of PV and PQ buses, then Q of PQ buses."""
        mis = v * np.conj(self._ybus_rows.dot(v)) - s_spec
        return np.concatenate([mis.real[:, self._pvpq], mis.imag[:, self._pq]], axis=1)

    def _mismatch_per_bus(self, v: np.ndarray, s_spec: np.ndarray) -> np.ndarray:
        """Largest of |dP| (PV, PQ buses) and |dQ| (PQ buses) per internal bus (S, n_int) [pu]."""
        mis = v * np.conj(self._ybus_rows.dot(v)) - s_spec
        per_bus = np.zeros(mis.shape)
        per_bus[:, self._pvpq] = np.abs(mis.real[:, self._pvpq])
        per_bus[:, self._pq] = np.maximum(per_bus[:, self._pq], np.abs(mis.imag[:, self._pq]))
        return np.where(np.isfinite(per_bus), per_bus, np.inf)

    def _step(self, va: np.ndarray, vm: np.ndarray, dx: np.ndarray):
        """Apply ``x <- x - dx`` in place to angles/magnitudes; return the complex voltages."""
        n_pvpq = len(self._pvpq)
        va[:, self._pvpq] -= dx[:, :n_pvpq]
        vm[:, self._pq] -= dx[:, n_pvpq:]
        return vm * np.exp(1j * va)

    def _solve_chunk(self, s_spec: np.ndarray, v: np.ndarray, inverse_t: np.ndarray):
        tol_pu = self.tolerance_mva / self.base_mva
        n_scen = s_spec.shape[0]
        va, vm = np.angle(v), np.abs(v)
        iterations = np.zeros(n_scen, dtype=int)
        f = self._mismatch(v, s_spec)
        norm = np.max(np.abs(f), axis=1) if f.shape[1] else np.zeros(n_scen)
        converged = norm < tol_pu
        # Stage 1: chord iterations for the whole batch with one inverted Jacobian. The
        # max-norm may grow on the first steps of a large change before it contracts, so a
        # scenario leaves for full Newton-Raphson only when it stalls (no halving over two
        # iterations) or diverges; it then restarts from the best iterate it reached.
        initial_norm = norm.copy()
        best_norm, best_v = norm.copy(), v.copy()
        previous = np.full(n_scen, np.inf)
        diverged = np.zeros(n_scen, dtype=bool)
        active = np.flatnonzero(~converged)
        for _ in range(self.max_chord_iteration):
            if len(active) == 0:
                break
            dx = f[active] @ inverse_t
            va_a, vm_a = va[active], vm[active]
            v_a = self._step(va_a, vm_a, dx)
            f_a = self._mismatch(v_a, s_spec[active])
            norm_a = np.max(np.abs(f_a), axis=1)
            va[active], vm[active], v[active], f[active] = va_a, vm_a, v_a, f_a
            iterations[active] += 1
            finite = np.isfinite(norm_a)
            improved = finite & (norm_a < best_norm[active])
            best_norm[active[improved]] = norm_a[improved]
            best_v[active[improved]] = v_a[improved]
            converged[active] = finite & (norm_a < tol_pu)
            stalled = norm_a > 0.5 * previous[active]
            diverged[active] = ~finite | (norm_a > 1e3 * np.maximum(initial_norm[active], 1.0))
            previous[active] = norm[active]
            norm[active] = norm_a
            active = active[~converged[active] & ~stalled & ~diverged[active]]
        left = ~converged
        v[left] = best_v[left]
        # Stage 2: full Newton-Raphson, batched, for the scenarios the chord stage left.
        remaining = np.flatnonzero(~converged)
        m = f.shape[1]
        n = v.shape[1]
        per_scenario_bytes = 4 * 16 * n * n + 3 * 8 * m * m  # complex dS/dV blocks + J
        batch = max(1, int(self.newton_memory_bytes // per_scenario_bytes))
        for start in range(0, len(remaining), batch):
            idx = remaining[start : start + batch]
            v[idx], converged[idx], its = self._newton(s_spec[idx], v[idx].copy(), tol_pu)
            iterations[idx] += its
        return v, converged, iterations

    def _newton(self, s_spec: np.ndarray, v: np.ndarray, tol_pu: float):
        """Batched full Newton-Raphson; failed scenarios return their best iterate."""
        n_scen = v.shape[0]
        va, vm = np.angle(v), np.abs(v)
        f = self._mismatch(v, s_spec)
        norm = np.max(np.abs(f), axis=1)
        best_norm, best_v = norm.copy(), v.copy()
        converged = norm < tol_pu
        iterations = np.zeros(n_scen, dtype=int)
        active = np.flatnonzero(~converged)
        for _ in range(self.max_iteration):
            if len(active) == 0:
                break
            dx, ok = _solve_stacked(self._jacobian(v[active]), f[active])
            va_a, vm_a = va[active], vm[active]
            v_a = self._step(va_a, vm_a, dx)
            f_a = self._mismatch(v_a, s_spec[active])
            norm_a = np.max(np.abs(f_a), axis=1)
            finite = ok & np.isfinite(norm_a)
            idx = active[finite]
            va[idx], vm[idx], v[idx], f[idx] = va_a[finite], vm_a[finite], v_a[finite], f_a[finite]
            iterations[idx] += 1
            improved = finite & (norm_a < best_norm[active])
            best_norm[active[improved]] = norm_a[improved]
            best_v[active[improved]] = v_a[improved]
            converged[idx] = norm_a[finite] < tol_pu
            # a singular Jacobian or an overflow (voltage collapse) ends only that scenario
            active = active[finite & ~converged[active]]
        failed = ~converged
        v[failed] = best_v[failed]
        return v, converged, iterations

    # ---- results ----------------------------------------------------------------------------
    def _results(self, v, s_spec, converged, iterations, mismatch_pu) -> ACResult:
        base = self.base_mva
        n_scen = v.shape[0]
        vc = np.where(converged[:, None], v, np.nan + 0j)
        cols = self._bus_internal
        vm_bus = np.full((n_scen, len(self.bus)), np.nan)
        va_bus = np.full((n_scen, len(self.bus)), np.nan)
        vm_bus[:, self._connected] = np.abs(vc[:, cols[self._connected]])
        va_bus[:, self._connected] = np.degrees(np.angle(vc[:, cols[self._connected]]))

        s_calc = vc * np.conj(self._ybus_rows.dot(vc)) * base
        s_slack = (s_calc - s_spec * base)[:, self._ref].sum(axis=1)
        s_from = vc[:, self._f_bus] * np.conj(self._yf_rows.dot(vc)) * base
        s_to = vc[:, self._t_bus] * np.conj(self._yt_rows.dot(vc)) * base
        s_loss = (s_from + s_to).sum(axis=1)

        i_from_ka = np.abs(s_from) / (np.abs(vc[:, self._f_bus]) * self._base_kv[self._f_bus])
        i_to_ka = np.abs(s_to) / (np.abs(vc[:, self._t_bus]) * self._base_kv[self._t_bus])
        i_from_ka /= math.sqrt(3)
        i_to_ka /= math.sqrt(3)
        rows = self._line_rows
        line_loading = (
            np.maximum(i_from_ka[:, rows], i_to_ka[:, rows]) / self._line_i_max_ka * 100.0
        )
        rows = self._trafo_rows
        if len(rows) and self._trafo_vn_kv is not None:
            hv = i_from_ka[:, rows] * self._trafo_vn_kv[:, 0]
            lv = i_to_ka[:, rows] * self._trafo_vn_kv[:, 1]
            trafo_loading = np.maximum(hv, lv) * math.sqrt(3) / self._trafo_rating_mva * 100.0
        elif len(rows):
            s_max = np.maximum(np.abs(s_from[:, rows]), np.abs(s_to[:, rows]))
            trafo_loading = s_max / self._trafo_rating_mva * 100.0
        else:
            trafo_loading = np.zeros((n_scen, 0))

        # worst bus: largest mismatch among the pandapower buses (aux buses excluded)
        per_pp_bus = np.full((n_scen, len(self.bus)), -1.0)
        per_pp_bus[:, self._connected] = mismatch_pu[:, cols[self._connected]]
        worst = np.where(converged, -1, self.bus[np.argmax(per_pp_bus, axis=1)])
        return ACResult(
            vm_pu=vm_bus,
            va_degree=va_bus,
            converged=converged.copy(),
            iterations=iterations.copy(),
            p_loss_mw=s_loss.real,
            q_loss_mvar=s_loss.imag,
            p_slack_mw=s_slack.real,
            q_slack_mvar=s_slack.imag,
            line_loading_percent=line_loading,
            trafo_loading_percent=trafo_loading,
            worst_bus=worst,
            max_mismatch_mva=np.where(converged, np.nan, np.max(mismatch_pu, axis=1) * base),
        )
