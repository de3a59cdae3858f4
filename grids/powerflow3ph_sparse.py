"""Sparse three-phase power flow for large feeders: OpenDSS's "normal" fixed point over all nodes.

Same equations and load models as the Z-bus solver (:mod:`grids.powerflow3ph`), without ever
forming an impedance matrix. The network admittance ``Y`` plus the load branches' nominal
admittance ``Y_l`` is factored once (sparse LU) per load level, then every iteration is one
pair of sparse triangular solves for all nodes and all scenarios of the batch at once:

    (Y + Y_l) V^{k+1} = I_s + I_B(V^k) + Y_l V^k,

(solved for the deviation from the no-load voltages ``V0 = Y^-1 I_s`` as
``V^{k+1} = V0 + (Y + Y_l)^-1 (I_B(V^k) + Y_l (V^k - V0))``),

with ``I_s`` the Norton currents of the voltage sources and ``I_B`` the currents the load
branches inject (OpenDSS load models 1-5 and the vminpu/vmaxpu rule, from
:func:`grids.powerflow3ph_kernels.branch_current`). It is the iteration OpenDSS runs in its
"normal" solution mode (Dugan, OpenDSS Reference Guide; ``Solution.pas``,
``DoNormalSolution``: the system matrix holds the loads' nominal admittance, their injection
currents are the compensation for the rest), and mathematically the same
iterates as the Z-bus path, which is this iteration reduced to the nodes that carry a branch.
Each scenario stops on its own when ``max |V^{k+1} - V^k| / V_base`` over the branch nodes is
below the tolerance; Anderson mixing (memory 1) accelerates it as in the dense path. At the
end the node voltages are recomputed from ``Y V = I_s + I_B(V^k)`` as ``V = V0 + Y^-1 I_B``
(``V0 = Y^-1 I_s``, the no-load voltages), so that the network equations, and the power
balance, hold to rounding; keeping the stiff sources' large currents out of the repeated
solves keeps their rounding out of the result. A scenario counts as converged only if that
recomputation moves its branch nodes by little (the Z-bus residual, see
``RESIDUAL_FACTOR``): a small update alone can come from an iteration matrix far from the
scenario's load. ``Y_l`` follows the batch's mean load; a scenario that fails with it is
solved again from no load with the matrix of its own load level, so that an outlier does not
spoil the rest of its batch (its iterations count both passes).

Build cost: one sparse LU of ``Y`` (and of ``Y + Y_l`` per load level), linear-ish in the
nodes; memory ``O(nnz(LU) + S n)``. The dense Z-bus path forms ``n x nA`` impedance columns and
an ``nA x nA`` preconditioner (cubic in the load nodes ``nA``): it is faster per solve on small
feeders, this one builds in seconds on feeders with thousands of load nodes.
:func:`select_solver` picks between them (:class:`Solver3ph`).

References
----------
R. C. Dugan, "OpenDSS Reference Guide", EPRI (solution method, load models); H. F. Walker,
P. Ni, "Anderson acceleration for fixed-point iterations", SIAM J. Numer. Anal. 49 (2011)
1715-1735.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from grids.errors import FeederError
from grids.powerflow3ph import Branches, SolveOutcome, ZBusSolver, known
from grids.powerflow3ph_batch import LEVEL_STEP, level_step
from grids.powerflow3ph_kernels import MODEL_PQ_PURE
from grids.powerflow3ph_sparse_kernels import anderson_kernel, currents_at_kernel, rhs_kernel
from grids.voltages3ph import factor_lu

#: Scenarios iterated together (bounds the working memory to a few ``(BLOCK, n)`` arrays).
BLOCK = 256
#: A scenario counts as converged when its update is below ``tol_pu`` and its Z-bus residual
#: ``max |V0 + Y^-1 I_B(V) - V| / V_base`` below ``max(RESIDUAL_FACTOR tol_pu,
#: RESIDUAL_FLOOR_PU)`` (measured: below ``1.5 tol_pu`` down to 1e-10 pu on the embedded
#: feeders; its rounding floor is ~1e-10 pu where stiff sources put 1e7 S in ``Y``).
RESIDUAL_FACTOR = 100.0
RESIDUAL_FLOOR_PU = 1e-6
#: Automatic choice (:func:`select_solver`), from ``benchmarks/powerflow3ph_large.py`` on the
#: EPRI and IEEE test feeders: the sparse solver above this many nodes carrying a branch (the
#: dense build, cubic in them, takes ~2 s at 800 and ~12 s at 1400) ...
SPARSE_ACTIVE_NODES = 800
#: ... or when ``nA^2 > ITERATION_COST_RATIO * n``: per scenario, the dense path's iterations
#: go as ``nA^2``, the sparse ones as ``n`` (batches of 64 once built: dense 3x faster on EPRI
#: K1, ``nA^2 / n = 69``; sparse 1.7x faster on EPRI ckt5, 553; 2.4x on M1, 698) ...
ITERATION_COST_RATIO = 250
#: ... or when the dense path's impedance columns ``Z_NA`` (n x nA complex) exceed this [byte].
DENSE_MEMORY_BUDGET_BYTES = 64 * 2**20


class Solver3ph(enum.Enum):
    """Which three-phase solver a feeder model uses.

    ``AUTO`` chooses by size (:func:`select_solver`); ``DENSE`` is the Z-bus fixed point
    (:class:`grids.powerflow3ph.ZBusSolver`), ``SPARSE`` the sparse one (:class:`SparseSolver`).
    """

    AUTO = "auto"
    DENSE = "dense"
    SPARSE = "sparse"


def select_solver(n_node: int, n_active: int, choice: Solver3ph = Solver3ph.AUTO) -> Solver3ph:
    """The solver for a feeder of ``n_node`` nodes, ``n_active`` of them carrying a branch.

    Parameters
    ----------
    n_node : int
        Nodes of the network.
    n_active : int
        Nodes a load, PV system, storage or generator is connected to.
    choice : Solver3ph
        ``DENSE`` or ``SPARSE`` are returned as they are; ``AUTO`` is resolved.

    Returns
    -------
    Solver3ph
        ``SPARSE`` when ``n_active > SPARSE_ACTIVE_NODES``, ``n_active^2 >
        ITERATION_COST_RATIO n_node`` or the dense impedance columns ``16 n_node n_active``
        bytes exceed ``DENSE_MEMORY_BUDGET_BYTES``; ``DENSE`` otherwise (the crossover
        measured with ``benchmarks/powerflow3ph_large.py``, see docs/unbalanced.md).

    Raises
    ------
    FeederError
        ``choice`` is not a :class:`Solver3ph`.
    """
    if not isinstance(choice, Solver3ph):
        try:
            choice = Solver3ph(str(choice).lower())
        except ValueError:
            raise FeederError(
                f"solver: {choice!r}, expected one of {', '.join(s.value for s in Solver3ph)}"
            ) from None
    if choice is not Solver3ph.AUTO:
        return choice
    dense_bytes = 16 * n_node * n_active
    if (
        n_active > SPARSE_ACTIVE_NODES
        or n_active**2 > ITERATION_COST_RATIO * n_node
        or dense_bytes > DENSE_MEMORY_BUDGET_BYTES
    ):
        return Solver3ph.SPARSE
    return Solver3ph.DENSE


def make_solver(kind: Solver3ph, y, i_source_a: np.ndarray, v_base_v: np.ndarray):
    """A solver of the resolved ``kind`` for the network ``y``.

    Parameters
    ----------
    kind : Solver3ph
        ``DENSE`` or ``SPARSE``.
    y : scipy.sparse matrix (n, n) complex
        Network plus voltage-source admittance [S].
    i_source_a : numpy.ndarray (n,) complex
        Norton current of the voltage sources [A].
    v_base_v : numpy.ndarray (n,)
        Per-node base voltage [V].

    Returns
    -------
    ZBusSolver or SparseSolver
    """
    if kind is Solver3ph.SPARSE:
        return SparseSolver(y, i_source_a, v_base_v)
    if kind is Solver3ph.DENSE:
        return ZBusSolver(y, i_source_a, v_base_v)
    raise FeederError(f"solver: {kind!r} is not resolved; expected DENSE or SPARSE")


@dataclass(frozen=True)
class FullVoltages:
    """Every node voltage of a batch, held as one array.

    Attributes
    ----------
    v_v : numpy.ndarray (S, n) complex
        Node-to-ground voltages [V].
    """

    v_v: np.ndarray

    def full_v(self) -> np.ndarray:
        """Every node voltage.

        Returns
        -------
        numpy.ndarray (S, n) complex
            [V].
        """
        return self.v_v

    def at_v(self, nodes: np.ndarray) -> np.ndarray:
        """Voltages of some nodes.

        Parameters
        ----------
        nodes : numpy.ndarray of int
            Node indices.

        Returns
        -------
        numpy.ndarray (S, len(nodes)) complex
            [V].
        """
        return self.v_v[:, np.asarray(nodes, dtype=np.int64)]

    def magnitude_pu(self, v_base_v: np.ndarray) -> np.ndarray:
        """Every node's voltage magnitude.

        Parameters
        ----------
        v_base_v : numpy.ndarray (n,)
            Base voltage per node [V].

        Returns
        -------
        numpy.ndarray (S, n)
            ``|V| / V_base`` [pu].
        """
        return np.abs(self.v_v) / np.asarray(v_base_v, dtype=float)


def _factor(matrix):
    """Sparse LU of a complex matrix (:func:`grids.voltages3ph.factor_lu`, the Z-bus path's
    too); None when it is singular."""
    try:
        return factor_lu(matrix)
    except RuntimeError:  # "Factor is exactly singular"
        return None


def _solve_rows(lu, rhs: np.ndarray) -> np.ndarray:
    """``(lu^-1 rhs^T)^T``: one solve per row of ``rhs`` (S, n), the result (S, n) C-ordered."""
    return np.ascontiguousarray(lu.solve(np.asfortranarray(rhs.T)).T)


class SparseSolver:
    """Sparse fixed point for a network with load branches (see the module docstring).

    Same contract as :class:`grids.powerflow3ph.ZBusSolver`.

    Parameters
    ----------
    y : scipy.sparse matrix (n, n) complex
        Network plus voltage-source admittance [S] (non-singular).
    i_source_a : numpy.ndarray (n,) complex
        Norton current of the voltage sources [A].
    v_base_v : numpy.ndarray (n,)
        Per-node base voltage [V] (for the tolerance in pu).

    Raises
    ------
    FeederError
        ``y`` is singular (a floating part of the network).
    """

    def __init__(self, y, i_source_a: np.ndarray, v_base_v: np.ndarray) -> None:
        self.n = int(y.shape[0])
        self._y = sp.csc_matrix(y, dtype=complex)
        self._lu = _factor(self._y)
        if self._lu is None:
            raise FeederError(
                "the network admittance matrix is singular: a part of the network floats "
                "(no path to ground or to a source, e.g. an ungrounded winding or an island)"
            )
        self.i_source_a = np.ascontiguousarray(i_source_a, dtype=complex)
        self.v0_v = self._lu.solve(self.i_source_a)
        self.v_base_v = np.asarray(v_base_v, dtype=float)
        self._warm: np.ndarray | None = None
        self._factors: dict[tuple, tuple] = {}
        self._structures: dict[bytes, dict] = {}
        self._last_structure: tuple[Branches, dict] | None = None

    @property
    def warm_state(self):
        """Last solution kept for the warm start: node voltages (S, n) [V], or None."""
        return self._warm

    @warm_state.setter
    def warm_state(self, value) -> None:
        self._warm = value if isinstance(value, np.ndarray) else None

    def _structure(self, branches: Branches) -> dict:
        """Branch arrays and active nodes, cached per branch topology and parameters."""
        last = self._last_structure
        if last is not None and last[0] is branches:
            return last[1]
        params = (
            np.ascontiguousarray(branches.v_base_v, dtype=float),
            np.ascontiguousarray(branches.model, dtype=np.int64),
            np.ascontiguousarray(branches.vminpu, dtype=float),
            np.ascontiguousarray(branches.vmaxpu, dtype=float),
            np.ascontiguousarray(branches.vlowpu, dtype=float),
            np.ascontiguousarray(branches.p_exp, dtype=float),
            np.ascontiguousarray(branches.q_exp, dtype=float),
        )
        f = np.ascontiguousarray(branches.node_from, dtype=np.int64)
        t = np.ascontiguousarray(branches.node_to, dtype=np.int64)
        key = b"".join(a.tobytes() for a in (f, t, *params))
        hit = self._structures.get(key)
        if hit is None:
            active = np.unique(np.concatenate([f, t]))
            active = active[active >= 0]
            hit = {
                "key": key,
                "f": f,
                "t": t,
                "params": params,
                "active": active,
                "inv_base": 1.0 / self.v_base_v[active],
                "pure": branches.model == MODEL_PQ_PURE,
                "y_ref": None,
                "s_ref": 0.0,
            }
            if len(self._structures) >= 8:
                self._structures.pop(next(iter(self._structures)))
            self._structures[key] = hit
        self._last_structure = (branches, hit)
        return hit

    def _iteration_matrix(self, struct: dict, s_mean: np.ndarray):
        """``(y_b, LU of Y + Y_l, level step)``: ``y_b`` the branches' nominal admittance at
        the load ``s_mean`` (a batch's mean), as the first call's pattern times the load level
        snapped to steps of 25 % (the rule of the Z-bus path, so that successive calls at
        similar load reuse one factorization). Constant-power extras (``MODEL_PQ_PURE``) have
        no nominal admittance and do not count in the level."""
        if struct["y_ref"] is None:
            y_ref = np.conj(s_mean) / struct["params"][0] ** 2
            y_ref[struct["pure"]] = 0.0
            struct["y_ref"] = y_ref
            struct["s_ref"] = float(np.abs(s_mean[~struct["pure"]]).sum())
        # the level of the branches that have a nominal admittance (not of constant-power
        # extras, which would scale the loads' admittance with their own power)
        s_now = float(np.abs(s_mean[~struct["pure"]]).sum())
        level = s_now / struct["s_ref"] if struct["s_ref"] > 0 else 1.0
        step = level_step(level)
        key = (struct["key"], step)
        hit = self._factors.get(key)
        if hit is not None:
            return (*hit, step)
        y_b = struct["y_ref"] * (LEVEL_STEP**step) if step is not None else np.zeros_like(s_mean)
        lu = None
        if step is not None and np.any(y_b != 0):
            f, t = struct["f"], struct["t"]
            g = t >= 0
            rows = np.concatenate([f, t[g], f[g], t[g]])
            cols = np.concatenate([f, t[g], t[g], f[g]])
            vals = np.concatenate([y_b, y_b[g], -y_b[g], -y_b[g]])
            y_l = sp.coo_matrix((vals, (rows, cols)), shape=(self.n, self.n))
            lu = _factor(self._y + y_l.tocsc())
        if lu is None:  # no load, or Y + Y_l singular: the plain Z-bus iteration
            y_b, lu = np.zeros_like(s_mean), self._lu
        if len(self._factors) >= 16:
            self._factors.pop(next(iter(self._factors)))
        self._factors[key] = (np.ascontiguousarray(y_b), lu)
        return (*self._factors[key], step)

    def _final(self, struct: dict, v: np.ndarray, s_va: np.ndarray):
        """Branch currents at the iterates ``v`` (S, n) [V], then every node from
        ``Y V = I_s + I_B`` as ``V = V0 + Y^-1 I_B`` (the large source currents kept out of the
        solve: its rounding error scales with the right-hand side). Returns ``(V, currents,
        residual)``, the residual ``max |V - v| / V_base`` at the branch nodes [pu] (the Z-bus
        form's: zero at a solution whatever the iteration matrix)."""
        f, t, params, active = struct["f"], struct["t"], struct["params"], struct["active"]
        i_node = np.empty(v.shape, dtype=complex)
        cur = np.empty((v.shape[0], f.size), dtype=complex)
        currents_at_kernel(v, f, t, s_va, *params, i_node, cur)
        v_final = _solve_rows(self._lu, i_node)
        v_final += self.v0_v
        diff = np.abs(v_final[:, active] - v[:, active]) * struct["inv_base"]
        with np.errstate(invalid="ignore"):
            residual = diff.max(axis=1) if diff.size else np.zeros(v.shape[0])
        return v_final, cur, np.where(np.isfinite(residual), residual, np.inf)

    def _iterate(self, struct, v, s_va, rows, y_b, lu, tol_pu, max_iter, out) -> None:
        """Iterate the scenarios ``rows`` of ``v`` (S, n) [V] in place, blocks of ``BLOCK``,
        with the iteration matrix ``(y_b, lu)``; ``out`` = (converged, iterations, max_dv)."""
        f, t, params, active = struct["f"], struct["t"], struct["params"], struct["active"]
        inv_base, n = struct["inv_base"], self.n
        converged, iterations, max_dv = out
        for start in range(0, rows.size, BLOCK):
            sel = rows[start : start + BLOCK]
            contiguous = sel[-1] - sel[0] == sel.size - 1
            # rows of ``v`` updated in place (a view when the block is contiguous)
            v_blk = v[sel[0] : sel[-1] + 1] if contiguous else v[sel]
            s_blk = s_va[sel[0] : sel[-1] + 1] if contiguous else s_va[sel]
            todo = np.arange(sel.size)
            g_prev = np.zeros((sel.size, n), dtype=complex)
            d_prev = np.zeros((sel.size, active.size), dtype=complex)
            rhs = np.empty((sel.size, n), dtype=complex)
            dv = np.empty(sel.size)
            for it in range(max_iter):
                m = todo.size
                rhs_kernel(v_blk, self.v0_v, todo, f, t, y_b, s_blk, *params, rhs[:m])
                g = _solve_rows(lu, rhs[:m])
                g += self.v0_v
                anderson_kernel(v_blk, todo, g, active, inv_base, g_prev, d_prev, it == 0, dv[:m])
                done_rows = sel[todo]
                iterations[done_rows] += 1
                max_dv[done_rows] = dv[:m]
                done = dv[:m] < tol_pu
                converged[done_rows[done]] = True
                # a scenario whose voltages overflow stops here (flagged, not raised)
                todo = todo[~done & np.isfinite(dv[:m])]
                if todo.size == 0:
                    break
            if not contiguous:
                v[sel] = v_blk

    def solve(
        self,
        branches: Branches,
        s_va: np.ndarray,
        *,
        tol_pu: float = 1e-10,
        max_iter: int = 500,
        warm_start: bool = True,
    ) -> SolveOutcome:
        """Solve all scenarios.

        Parameters
        ----------
        branches : Branches
            Load-like elements (their ``s_va`` is ignored: see ``s_va``).
        s_va : numpy.ndarray (S, nb) complex
            Consumed power of every branch in every scenario [VA].
        tol_pu : float, keyword-only
            Convergence: largest voltage update at a branch node below this [pu].
        max_iter : int, keyword-only
        warm_start : bool, keyword-only
            Start from the previous solution instead of no-load.

        Returns
        -------
        SolveOutcome
            ``voltages`` a :class:`FullVoltages`; a scenario that does not converge (or
            diverges to non-finite voltages) is flagged in ``converged``, never raised.
        """
        s_va = np.ascontiguousarray(np.atleast_2d(np.asarray(s_va, dtype=complex)))
        n_scen, n = s_va.shape[0], self.n
        struct = self._structure(branches)
        if struct["active"].size == 0:
            v = np.repeat(self.v0_v[None, :], n_scen, axis=0)
            return SolveOutcome(
                FullVoltages(v),
                np.ones(n_scen, dtype=bool),
                np.zeros(n_scen, dtype=np.int64),
                np.zeros(n_scen),
                known(np.zeros((n_scen, 0), dtype=complex)),
            )
        s_mean = s_va[0] if n_scen == 1 else s_va.mean(axis=0)
        y_b, lu, step = self._iteration_matrix(struct, s_mean)
        last = self._warm
        if warm_start and last is not None and last.shape[1] == n:
            v = last.copy() if last.shape[0] == n_scen else np.repeat(last[-1:], n_scen, 0)
        else:
            v = np.repeat(self.v0_v[None, :], n_scen, axis=0)
        out = (
            np.zeros(n_scen, dtype=bool),
            np.zeros(n_scen, dtype=np.int64),
            np.full(n_scen, np.inf),
        )
        converged, iterations, max_dv = out
        self._iterate(struct, v, s_va, np.arange(n_scen), y_b, lu, tol_pu, max_iter, out)
        v_final, cur, residual = self._final(struct, v, s_va)
        limit = max(RESIDUAL_FACTOR * tol_pu, RESIDUAL_FLOOR_PU)
        # a scenario far from the batch's mean load may not converge with the batch's
        # iteration matrix (or stop on a small update that is not a solution): again from no
        # load, with the matrix of its own load level
        retry: dict[int | None, list[int]] = {}
        failed = ~(converged & (residual <= limit)) & np.isfinite(max_dv)
        for k in np.flatnonzero(failed) if n_scen > 1 else ():
            own = self._iteration_matrix(struct, s_va[k])
            if own[2] != step:
                retry.setdefault(own[2], []).append(int(k))
        for ks in retry.values():
            rows = np.array(ks, dtype=np.int64)
            y_k, lu_k, _ = self._iteration_matrix(struct, s_va[rows[0]])
            v[rows] = self.v0_v
            converged[rows] = False
            self._iterate(struct, v, s_va, rows, y_k, lu_k, tol_pu, max_iter, out)
            v_final[rows], cur[rows], residual[rows] = self._final(struct, v[rows], s_va[rows])
        converged &= (residual <= limit) & np.isfinite(v_final).all(axis=1)
        max_dv[~np.isfinite(max_dv)] = np.inf
        self._warm = v_final.copy()
        f, t = struct["f"], struct["t"]
        v_t = np.where(t >= 0, v_final[:, np.maximum(t, 0)], 0.0)
        s_br = (v_final[:, f] - v_t) * np.conj(cur)
        return SolveOutcome(FullVoltages(v_final), converged, iterations, max_dv, known(s_br))
