"""Unbalanced three-phase power flow kernels: OpenDSS load models and a Z-bus fixed point.

The network is linear (admittance ``Y`` over all nodes, voltage sources as Norton currents
``I_s``); the nonlinearity sits only in the loads and injections, each a *branch* between two
nodes (a wye phase: node to ground or neutral; a delta phase: node to node). With ``Z = Y^-1``
and the no-load voltages ``V0 = Z I_s``, the node voltages satisfy

    V = V0 + Z_{N,A} I_A(V_A),        V_A = V0_A + Z_{A,A} I_A(V_A)

where ``A`` are the nodes that carry a branch and ``I_A`` the currents the branches inject.
The reduced equation is solved by the fixed point OpenDSS itself uses in its "normal"
solution mode, with the branches' nominal admittance ``Y_l`` moved to the left side:

    (1 + Z_AA Y_l) V_A^{k+1} = V0_A + Z_AA (I_A(V_A^k) + Y_l V_A^k),

iterated until ``max |dV| < tol`` [pu] per scenario (each scenario stops on its own). A single
scenario (or a few) runs this loop compiled, warm-started from the previous call; larger
batches use the chord Newton form of the same equation (:mod:`grids.powerflow3ph_batch`:
the branches' true current derivatives in place of their nominal admittance, one reference
per load level, dense matrix products over the batch).

Branch currents follow OpenDSS's load models (``Load.pas``): model 1 constant PQ, 2 constant
impedance, 3 constant P and quadratic Q, 4 exponential ("CVR": ``P ~ (V/V_base)^CVRwatts``,
``Q ~ (V/V_base)^CVRvars``), 5 constant current magnitude; all but model 2 become the
constant impedance that matches them at ``vmaxpu`` above it, and below ``vminpu``
interpolate the current linearly down to the nominal admittance at ``vlowpu`` (constant
impedance below ``vlowpu``).

References
----------
R. C. Dugan, "OpenDSS Reference Guide", EPRI (solution method, load models); W. H. Kersting,
"Distribution System Modeling and Analysis", 4th ed., CRC Press, 2017, ch. 10.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from grids.errors import FeederError
from grids.opendss import MODEL_ZIPV, Connection, DssLoads
from grids.powerflow3ph_batch import (
    LEVEL_STEP,
    ChordMap,
    WorkArrays,
    branch_jacobian,
    chord_iterate,
    chord_map,
    level_groups,
    level_step,
)
from grids.powerflow3ph_kernels import (
    MODEL_CVR,
    MODEL_I,
    MODEL_MOTOR,
    MODEL_PQ,
    MODEL_PQ_PURE,
    MODEL_Z,
    branch_power_kernel,
    currents_kernel,
    fixed_point_kernel,
    injected_currents_kernel,
)
from grids.voltages3ph import (
    SMALL_BATCH,
    NodeVoltages,
    PassiveSolve,
    factor_lu,
    matmul_rows,
)


@dataclass(frozen=True)
class Branches:
    """Load-like elements, one row per phase branch.

    Attributes
    ----------
    node_from, node_to : numpy.ndarray of int
        Node indices; ``node_to`` is -1 for ground.
    s_va : numpy.ndarray of complex
        Nominal consumed power of the branch [VA] (consumption positive).
    v_base_v : numpy.ndarray
        Base voltage of the branch [V] (across it).
    model : numpy.ndarray of int
        ``MODEL_PQ``, ``MODEL_Z``, ``MODEL_I`` or ``MODEL_PQ_PURE``.
    vminpu, vmaxpu, vlowpu : numpy.ndarray
        OpenDSS voltage limits of the branch's element [pu of ``v_base_v``].
    owner : numpy.ndarray of int
        Element (load) index of the branch, for per-element multipliers; -1 when unscaled.
    p_exp, q_exp : numpy.ndarray
        Voltage exponents of P and Q in the normal range (0 for constant PQ; model 3: 0, 2;
        model 4: CVRwatts, CVRvars).
    """

    node_from: np.ndarray
    node_to: np.ndarray
    s_va: np.ndarray
    v_base_v: np.ndarray
    model: np.ndarray
    vminpu: np.ndarray
    vmaxpu: np.ndarray
    vlowpu: np.ndarray
    owner: np.ndarray
    p_exp: np.ndarray
    q_exp: np.ndarray

    def __len__(self) -> int:
        return int(self.node_from.size)


def _param_arrays(branches: Branches) -> tuple[np.ndarray, ...]:
    """The per-branch parameters in the order of the compiled kernels."""
    return (
        np.asarray(branches.v_base_v, dtype=float),
        np.asarray(branches.model, dtype=np.int64),
        np.asarray(branches.vminpu, dtype=float),
        np.asarray(branches.vmaxpu, dtype=float),
        np.asarray(branches.vlowpu, dtype=float),
        np.asarray(branches.p_exp, dtype=float),
        np.asarray(branches.q_exp, dtype=float),
    )


def branch_currents(
    v_branch: np.ndarray,
    s_va: np.ndarray,
    *,
    v_base_v: np.ndarray,
    model: np.ndarray,
    vminpu: np.ndarray,
    vmaxpu: np.ndarray,
    vlowpu: np.ndarray,
    p_exp: np.ndarray | float = 0.0,
    q_exp: np.ndarray | float = 0.0,
) -> np.ndarray:
    """Current drawn by each branch (from its first node to its second) [A].

    Parameters
    ----------
    v_branch : numpy.ndarray (S, nb) complex
        Voltage across the branch [V].
    s_va : numpy.ndarray (S, nb) complex
        Nominal consumed power at ``v_base_v`` [VA].
    v_base_v, vminpu, vmaxpu, vlowpu : numpy.ndarray (nb,)
        Base voltage [V] and OpenDSS limits [pu].
    model : numpy.ndarray (nb,) of int
        1 constant PQ, 2 constant Z, 3 motor, 4 CVR, 5 constant |I|, 0 constant PQ at every
        voltage.
    p_exp, q_exp : numpy.ndarray (nb,) or float, keyword-only
        Exponents of models 3 and 4 (ignored otherwise).

    Returns
    -------
    numpy.ndarray (S, nb) complex
        ``I = conj((P r^p_exp + j Q r^q_exp) / V)`` with ``r = |V| / V_base`` (models 1, 3,
        4; exponents 0 for model 1), ``Y_eq V`` with ``Y_eq = conj(S) / V_base^2`` (model 2),
        ``conj(S / (V_base V / |V|))`` (model 5); all but model 2 use ``Y_eq / vmaxpu^2``
        (model 5: ``Y_eq / vmaxpu``) above ``vmaxpu`` and the OpenDSS linear current
        interpolation between ``vlowpu`` and ``vminpu``.
    """
    v_br = np.ascontiguousarray(v_branch, dtype=complex)
    s_b = np.ascontiguousarray(np.broadcast_to(s_va, v_br.shape), dtype=complex)
    nb = v_br.shape[1]

    def vec(x, dtype=float):
        return np.ascontiguousarray(np.broadcast_to(np.asarray(x, dtype=dtype), (nb,)))

    out = np.empty_like(v_br)
    currents_kernel(
        v_br,
        s_b,
        vec(v_base_v),
        vec(model, np.int64),
        vec(vminpu),
        vec(vmaxpu),
        vec(vlowpu),
        vec(p_exp),
        vec(q_exp),
        out,
    )
    return out


def _model_parts(model: int, p_w: float, q_var: float, zipv) -> list[tuple[int, complex]]:
    """A load's branch models and powers per phase: its own model, or for a ZIP load
    (OpenDSS model 8) a constant-impedance, a constant-current and a constant-power part.

    OpenDSS's ``DoZIPVModel`` (``Load.pas``) draws, per phase, ``Z`` with the real and
    imaginary parts of ``Yeq`` scaled by ``ZIPV[1]`` and ``ZIPV[4]``, ``I`` (and ``P``) with the
    constant-current (constant-power) model's current for ``(kW ZIPV[2], kvar ZIPV[5])``
    (``ZIPV[3]``, ``ZIPV[6]``), each with its own ``vminpu``/``vmaxpu`` regions, and ``Yeq``
    below ``vlowpu``: the sum of three branches of models 2, 5 and 1 with those powers, as
    the fractions of kW and of kvar each sum to 1 (:func:`grids.opendss.read_dss` checks).
    Parts of zero power are left out.

    Parameters
    ----------
    model : int
        OpenDSS load model.
    p_w, q_var : float
        Nominal power per phase [W, var].
    zipv : sequence of float (7,)
        ``ZIPV`` (used for model 8 only).

    Returns
    -------
    list of (int, complex)
        ``(model, S [VA])`` per branch of each phase.
    """
    if model != MODEL_ZIPV:
        return [(model, complex(p_w, q_var))]
    parts = ((MODEL_Z, 0), (MODEL_I, 1), (MODEL_PQ, 2))
    out = [(kind, complex(p_w * zipv[k], q_var * zipv[3 + k])) for kind, k in parts]
    return [(kind, s) for kind, s in out if s != 0] or [(MODEL_Z, 0j)]


def load_branches(
    loads: DssLoads, node_of: dict[tuple[str, int], int], *, sign: float = 1.0
) -> Branches:
    """Split loads (or constant-power injections) into phase branches.

    A wye phase is a branch from its node to the load's neutral node (ground when none), a
    delta phase a branch between two nodes (OpenDSS's rule: phase ``k`` from conductor ``k``
    to conductor ``k + 1``, wrapping; a single-phase delta load is one branch). Each branch
    draws ``(kW + j kvar) / phases`` at ``V_base`` = the load's kV across a single-phase load
    or a delta branch, ``kV / sqrt(3)`` for a 2- or 3-phase wye load (OpenDSS ``Load.pas``).

    Parameters
    ----------
    loads : grids.opendss.DssLoads
        The elements.
    node_of : dict of (str, int) to int
        (bus, node number) -> node index.
    sign : float, keyword-only
        +1 for loads (consumption positive), -1 for injections.

    Returns
    -------
    Branches
        ``owner`` is the element index.
    """
    cols: tuple[list, ...] = tuple([] for _ in range(11))
    for e in range(len(loads)):
        bus, nodes, phases = loads.bus[e], loads.nodes[e], int(loads.phases[e])
        idx = [-1 if k == 0 else node_of[(bus, k)] for k in nodes]
        if loads.conn[e] == Connection.DELTA:
            pairs = (
                [(idx[0], idx[1])]
                if phases == 1
                else [(idx[k], idx[(k + 1) % len(idx)]) for k in range(phases)]
            )
            v_base = loads.kv[e] * 1000.0
        else:
            neutral = idx[phases] if len(idx) > phases else -1
            pairs = [(idx[k], neutral) for k in range(phases)]
            v_base = loads.kv[e] * 1000.0 / (math.sqrt(3.0) if phases in (2, 3) else 1.0)
        p_w = sign * loads.p_kw[e] * 1000.0 / max(phases, 1)
        q_var = sign * loads.q_kvar[e] * 1000.0 / max(phases, 1)
        for model, s in _model_parts(int(loads.model[e]), p_w, q_var, loads.zipv[e]):
            p_exp, q_exp = {
                MODEL_MOTOR: (0.0, 2.0),
                MODEL_CVR: (loads.cvr_watts[e], loads.cvr_vars[e]),
            }.get(model, (0.0, 0.0))
            for a, b in pairs:
                for col, val in zip(
                    cols,
                    (
                        a,
                        b,
                        s,
                        v_base,
                        model,
                        loads.vminpu[e],
                        loads.vmaxpu[e],
                        loads.vlowpu[e],
                        e,
                        p_exp,
                        q_exp,
                    ),
                    strict=True,
                ):
                    col.append(val)
    return Branches(
        node_from=np.array(cols[0], dtype=np.int64),
        node_to=np.array(cols[1], dtype=np.int64),
        s_va=np.array(cols[2], dtype=complex),
        v_base_v=np.array(cols[3], dtype=float),
        model=np.array(cols[4], dtype=np.int64),
        vminpu=np.array(cols[5], dtype=float),
        vmaxpu=np.array(cols[6], dtype=float),
        vlowpu=np.array(cols[7], dtype=float),
        owner=np.array(cols[8], dtype=np.int64),
        p_exp=np.array(cols[9], dtype=float),
        q_exp=np.array(cols[10], dtype=float),
    )


def concat_branches(a: Branches, b: Branches) -> Branches:
    """Branches of ``a`` then of ``b``.

    Parameters
    ----------
    a, b : Branches

    Returns
    -------
    Branches
    """
    return Branches(
        *(np.concatenate([getattr(a, f), getattr(b, f)]) for f in a.__dataclass_fields__)
    )


@dataclass(frozen=True)
class SolveOutcome:
    """Raw output of :meth:`ZBusSolver.solve`.

    Attributes
    ----------
    voltages : NodeVoltages
        Node voltages (formed on demand).
    converged : numpy.ndarray (S,) of bool
    iterations : numpy.ndarray (S,) of int
    max_dv_pu : numpy.ndarray (S,)
        Largest voltage update at the last iteration [pu].
    branch_s_va : callable
        Returns the power drawn by each branch at the solved voltages, ``(S, nb)`` complex
        [VA] (consumption positive), formed when called.
    """

    voltages: NodeVoltages
    converged: np.ndarray
    iterations: np.ndarray
    max_dv_pu: np.ndarray
    branch_s_va: Callable[[], np.ndarray]


def known(array: np.ndarray) -> Callable[[], np.ndarray]:
    """A :attr:`SolveOutcome.branch_s_va` for powers already formed.

    Parameters
    ----------
    array : numpy.ndarray

    Returns
    -------
    callable
        Returns ``array``.
    """
    return lambda: array


def _injected_currents(v_a, f, t, s_va, params) -> np.ndarray:
    """Currents the branches inject into the active nodes at the voltages ``v_a`` [A]."""
    out = np.empty(v_a.shape, dtype=complex)
    injected_currents_kernel(
        np.ascontiguousarray(v_a), f, t, np.ascontiguousarray(s_va), *params, out
    )
    return out


def _branch_powers(v_a, f, t, s_va, params) -> np.ndarray:
    """``V_b conj(I_b)`` of every branch at the active-node voltages ``v_a`` [VA]."""
    out = np.empty(s_va.shape, dtype=complex)
    branch_power_kernel(v_a, f, t, s_va, *params, out)
    return out


class ZBusSolver:
    """Z-bus fixed point for a network with load branches (see the module docstring).

    Parameters
    ----------
    y : scipy.sparse matrix (n, n) complex
        Network plus voltage-source admittance [S] (non-singular).
    i_source_a : numpy.ndarray (n,) complex
        Norton current of the voltage sources [A].
    v_base_v : numpy.ndarray (n,)
        Per-node base voltage [V] (for the tolerance in pu).
    """

    def __init__(self, y, i_source_a: np.ndarray, v_base_v: np.ndarray) -> None:
        self.n = int(y.shape[0])
        try:
            self._lu = factor_lu(y)
        except RuntimeError as exc:  # "Factor is exactly singular"
            raise FeederError(
                "the network admittance matrix is singular: a part of the network floats "
                "(no path to ground or to a source, e.g. an ungrounded winding or an island); "
                f"{exc}"
            ) from exc
        self.v0_v = self._lu.solve(np.asarray(i_source_a, dtype=complex))
        self._y = sp.csr_matrix(y, dtype=complex)
        self._i_source_a = np.asarray(i_source_a, dtype=complex)
        self.v_base_v = np.asarray(v_base_v, dtype=float)
        self._cols: dict[int, int] = {}
        self._z_cols = np.zeros((self.n, 0), dtype=complex)
        self._warm: tuple[np.ndarray, np.ndarray] | None = None
        self._warm_full: tuple[np.ndarray, np.ndarray] | None = None
        self._precond: dict[tuple, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._structures: dict[bytes, dict] = {}
        self._last_structure: tuple[Branches, dict] | None = None
        self._work = WorkArrays()

    @property
    def warm_state(self):
        """Last solution kept for the warm start: (active nodes, their voltages, all nodes)."""
        return self._warm, self._warm_full

    @warm_state.setter
    def warm_state(self, value) -> None:
        self._warm, self._warm_full = value

    def _impedances(self, struct: dict) -> None:
        """``Z_NA^T`` and ``Z_AA`` of the branch structure, formed once (the transpose
        contiguous for the row-major products)."""
        if "z_an" in struct:
            return
        active = struct["active"]
        z_na = self.z_columns(active)
        z_aa = np.ascontiguousarray(z_na[active])
        struct["z_aa"] = z_aa
        struct["z_an"] = np.ascontiguousarray(z_na.T)

    def _preconditioner(self, struct: dict, y_b: np.ndarray):
        """``K^T`` with ``K = (1 + Z_AA Y_l)^-1 Z_AA`` and ``c = (1 + Z_AA Y_l)^-1 V0_A``."""
        self._impedances(struct)
        active = struct["active"]
        n_a = active.size
        z_aa = struct["z_aa"]
        # Z_AA Y_l with Y_l = sum_b y_b (e_f - e_t)(e_f - e_t)^T, branch by branch: O(nA nb)
        # and no BLAS call (a multi-threaded BLAS on a busy machine takes tens of ms for
        # these small products): d_b = y_b (Z[:, f_b] - Z[:, t_b]) adds to column f_b and
        # subtracts from t_b (ground, index nA, drops out)
        f, t = struct["f"], struct["t"]
        z_ext = np.concatenate([z_aa, np.zeros((n_a, 1), dtype=complex)], axis=1)
        d = (z_ext[:, f] - z_ext[:, t]) * y_b
        m = np.eye(n_a + 1, dtype=complex)[:n_a]
        np.add.at(m.T, f, d.T)
        np.subtract.at(m.T, t, d.T)
        m = np.ascontiguousarray(m[:, :n_a])
        rhs = np.concatenate([z_aa, self.v0_v[active][:, None]], axis=1)
        sol = np.linalg.solve(m, rhs)  # one factorization for K and c
        k_mat, c_vec = sol[:, :n_a], np.ascontiguousarray(sol[:, n_a])
        return np.ascontiguousarray(k_mat.T), c_vec

    def _plain_map(self, struct: dict, s_va: np.ndarray):
        """The fixed-point map at the batch's mean load: the branches' nominal admittance
        as the first call's pattern times the load level snapped to steps of 25 % (so that
        successive calls at similar load reuse one factorization). Returns ``y_b``, ``K^T``
        and ``c`` (:meth:`_preconditioner`)."""
        s_mean = s_va[0] if s_va.shape[0] == 1 else s_va.mean(axis=0)
        self._reference_load(struct, s_mean)
        level = float(np.abs(s_mean).sum()) / struct["s_ref"] if struct["s_ref"] > 0 else 1.0
        step = level_step(level)
        y_b = struct["y_ref"] * (LEVEL_STEP**step if step is not None else 0.0)
        key = (struct["key"], step)
        if key not in self._precond:
            if len(self._precond) >= 64:
                self._precond.pop(next(iter(self._precond)))
            self._precond[key] = self._preconditioner(struct, y_b)
        return (y_b, *self._precond[key])

    @staticmethod
    def _reference_load(struct: dict, s_mean: np.ndarray) -> None:
        """The first call's load fixes the structure's admittance pattern ``y_ref`` and its
        level 1 ``s_ref`` [VA] (constant-power extras have no admittance)."""
        if struct["y_ref"] is None:
            y_ref = np.conj(s_mean) / struct["v_base"] ** 2
            y_ref[struct["pure"]] = 0.0
            struct["y_ref"] = y_ref
            struct["s_ref"] = float(np.abs(s_mean).sum())

    def _iterate_small(self, struct, s_va, v_a, *, tol_pu, max_iter, out) -> None:
        """The plain fixed point, one compiled loop per scenario (no per-iteration Python
        overhead); ``out`` = (iterations, max_dv, converged) filled."""
        y_b, k_t, c_vec = self._plain_map(struct, s_va)
        fixed_point_kernel(
            v_a,
            struct["f"],
            struct["t"],
            y_b,
            s_va,
            *struct["params"],
            k_t,
            c_vec,
            struct["inv_base"],
            tol_pu,
            max_iter,
            *out,
        )

    def _start(self, active: np.ndarray, n_scen: int, warm_start: bool) -> np.ndarray:
        """Start voltages of the active nodes: the previous solution (the same active nodes,
        or formed for new ones from its currents) when warm, else no-load."""
        if (
            warm_start
            and self._warm is not None
            and (self._warm[0] is active or np.array_equal(self._warm[0], active))
        ):
            last = self._warm[1]
            return last.copy() if last.shape[0] == n_scen else np.repeat(last[-1:], n_scen, 0)
        if warm_start and self._warm_full is not None:
            # other active nodes (e.g. new injection points): start from the last solution
            currents_last, z_last = self._warm_full
            v_last = self.v0_v[active] + matmul_rows(currents_last(), z_last[:, active])[0]
            return np.repeat(v_last[None, :], n_scen, axis=0)
        return np.repeat(self.v0_v[active][None, :], n_scen, axis=0)

    def _chord(self, struct: dict, step: int, s_va: np.ndarray, rows: np.ndarray) -> ChordMap:
        """The chord iteration of a load level (cached per branch structure): the
        reference (the mean load of the scenarios ``rows``) solved by the plain fixed point,
        the branch derivatives there."""
        cache = struct.setdefault("chord", {})
        if step in cache:
            return cache[step]
        s_ref = s_va[rows].mean(axis=0)
        self._impedances(struct)
        active, f, t = struct["active"], struct["f"], struct["t"]
        s_one = np.ascontiguousarray(s_ref[None, :])
        v_ref = self.v0_v[active][None, :].copy()
        flags = (np.zeros(1, np.int64), np.full(1, np.inf), np.zeros(1, dtype=bool))
        self._iterate_small(struct, s_one, v_ref, tol_pu=1e-12, max_iter=500, out=flags)
        if not np.isfinite(v_ref).all():
            v_ref = self.v0_v[active][None, :].copy()
        v_ext = np.append(v_ref[0], 0j)  # index n_a: ground
        jb = branch_jacobian(v_ext[f] - v_ext[t], s_ref, struct["params"])
        if len(cache) >= 32:
            cache.pop(next(iter(cache)))
        cache[step] = chord_map(
            struct["z_aa"], self.v0_v[active], v_ref[0], jb, f, t, struct["params"]
        )
        return cache[step]

    def z_columns(self, nodes: np.ndarray) -> np.ndarray:
        """Columns of ``Z = Y^-1`` for some nodes (cached).

        Parameters
        ----------
        nodes : numpy.ndarray of int
            Node indices.

        Returns
        -------
        numpy.ndarray (n, len(nodes)) complex
            Driving-point and transfer impedances [Ohm].
        """
        new = [int(k) for k in np.unique(nodes) if int(k) not in self._cols]
        if new:
            rhs = np.zeros((self.n, len(new)), dtype=complex)
            rhs[new, np.arange(len(new))] = 1.0
            cols = self._lu.solve(rhs)
            start = self._z_cols.shape[1]
            self._z_cols = np.hstack([self._z_cols, cols])
            for j, k in enumerate(new):
                self._cols[k] = start + j
        return self._z_cols[:, [self._cols[int(k)] for k in nodes]]

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
            Consumed power of every branch in every scenario [VA]. Kept, not copied, by the
            outcome (its currents and branch powers are formed from it when read): not to be
            modified afterwards.
        tol_pu : float, keyword-only
            Convergence [pu]: the largest voltage update below this (up to
            :data:`SMALL_BATCH` scenarios), or the estimated distance to the solution
            (:func:`grids.powerflow3ph_batch.chord_iterate`).
        max_iter : int, keyword-only
        warm_start : bool, keyword-only
            Start from the previous solution (same active nodes) instead of no-load (up to
            :data:`SMALL_BATCH` scenarios; a larger batch starts each scenario from its load
            level's reference solution).

        Returns
        -------
        SolveOutcome
        """
        s_va = np.ascontiguousarray(np.atleast_2d(np.asarray(s_va, dtype=complex)))
        n_scen = s_va.shape[0]
        struct = self._structure(branches)
        active, f, t, n_a = struct["active"], struct["f"], struct["t"], struct["active"].size
        if n_a == 0:
            ones = np.ones(n_scen, dtype=bool)
            empty = np.zeros((n_scen, 0), dtype=complex)
            voltages = NodeVoltages(self.v0_v, np.zeros((0, self.n), dtype=complex), known(empty))
            return SolveOutcome(
                voltages, ones, np.zeros(n_scen, int), np.zeros(n_scen), known(empty)
            )
        inv_base = struct["inv_base"]
        converged = np.zeros(n_scen, dtype=bool)
        iterations = np.zeros(n_scen, dtype=np.int64)
        max_dv = np.full(n_scen, np.inf)
        if n_scen <= SMALL_BATCH:
            v_a = self._start(active, n_scen, warm_start)
            self._iterate_small(
                struct,
                s_va,
                v_a,
                tol_pu=tol_pu,
                max_iter=max_iter,
                out=(iterations, max_dv, converged),
            )
        else:
            # chord Newton per load level (grids.powerflow3ph_batch), each group from its
            # reference solution
            if struct["y_ref"] is None:
                self._reference_load(struct, s_va.mean(axis=0))
            steps, order = level_groups(s_va, struct["s_ref"])
            v_a = np.empty((n_scen, n_a), dtype=complex)
            for rows in np.split(order, np.flatnonzero(np.diff(steps[order])) + 1):
                chord = self._chord(struct, int(steps[rows[0]]), s_va, rows)
                chord_iterate(
                    v_a,
                    rows,
                    s_va,
                    chord,
                    f,
                    t,
                    struct["params"],
                    inv_base,
                    tol_pu=tol_pu,
                    max_iter=max_iter,
                    iterations=iterations,
                    max_dv=max_dv,
                    converged=converged,
                    work=self._work,
                )
        self._impedances(struct)
        z_an, params = struct["z_an"], struct["params"]
        if "passive" not in struct:
            struct["passive"] = PassiveSolve.build(self._y, self._i_source_a, active)
        # every node from the converged voltages: the magnitudes from the passive nodes'
        # equations, the complex voltages through the injected currents (formed when asked;
        # s_va and v_a are this call's own arrays)
        currents = functools.partial(_injected_currents, v_a, f, t, s_va, params)
        voltages = NodeVoltages(self.v0_v, z_an, currents, v_a, struct["passive"])
        # the next single solve starts from the last scenario (batches start from their
        # level's reference)
        self._warm = (active, v_a.copy() if n_scen <= SMALL_BATCH else v_a[-1:].copy())
        # the last scenario's currents, formed only if the next call needs them
        last = functools.partial(_injected_currents, v_a[-1:], f, t, s_va[-1:], params)
        self._warm_full = (last, z_an)
        # the power drawn is taken at the converged voltages (within the tolerance of the
        # network solution with the currents above)
        converged &= np.isfinite(v_a).all(axis=1)
        # the branch powers at the converged voltages when asked for (s_va and v_a are this
        # call's own arrays)
        powers = functools.partial(_branch_powers, v_a, f, t, s_va, params)
        return SolveOutcome(voltages, converged, iterations, max_dv, powers)

    def _structure(self, branches: Branches) -> dict:
        """Active nodes and branch indices (cached per branch topology; the same Branches
        object, as the feeder model passes its cached ones, is found without hashing)."""
        last = self._last_structure
        if last is not None and last[0] is branches:
            return last[1]
        arrays = _param_arrays(branches)
        key = b"".join(a.tobytes() for a in (branches.node_from, branches.node_to, *arrays))
        hit = self._structures.get(key)
        if hit is not None:
            self._last_structure = (branches, hit)
            return hit
        active = np.unique(np.concatenate([branches.node_from, branches.node_to]))
        active = active[active >= 0]
        n_a = active.size
        pos = np.full(self.n + 1, n_a, dtype=np.int64)  # ground -> index n_a (zero voltage)
        pos[active] = np.arange(n_a)
        params = tuple(np.ascontiguousarray(a) for a in arrays)
        out = {
            "key": key,
            "active": active,
            "f": np.ascontiguousarray(pos[branches.node_from]),
            "t": np.ascontiguousarray(pos[branches.node_to]),  # -1 -> pos[-1] == n_a
            "v_base": params[0],
            "pure": branches.model == MODEL_PQ_PURE,
            "inv_base": 1.0 / self.v_base_v[active],
            "params": params,
            "y_ref": None,
            "s_ref": 0.0,
        }
        if len(self._structures) >= 8:
            self._structures.pop(next(iter(self._structures)))
        self._structures[key] = out
        self._last_structure = (branches, out)
        return out
