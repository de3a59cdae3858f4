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

batched over scenarios as dense matrix products, iterated until ``max |dV| < tol`` [pu] per
scenario (each scenario stops on its own).

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

import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from numba import njit

from grids.errors import FeederError

#: Model numbers of :func:`branch_currents` (OpenDSS load models).
MODEL_PQ = 1
MODEL_Z = 2
MODEL_MOTOR = 3
MODEL_CVR = 4
MODEL_I = 5
#: A branch that is constant power at every voltage (extra injections, no vminpu rule).
MODEL_PQ_PURE = 0


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


@njit(cache=True, inline="always")
def _branch_current(v, s, v_base, model, vmin, vmax, vlow, p_exp, q_exp):  # pragma: no cover
    """Current drawn by one branch (see :func:`branch_currents`)."""
    vm2 = v.real * v.real + v.imag * v.imag
    s_c = s.conjugate()
    if model == MODEL_PQ_PURE:
        # conj(S / V) = conj(S) V / |V|^2
        return s_c * v / vm2 if vm2 > 0.0 else 0j
    base2 = v_base * v_base
    y_eq = s_c / base2
    if model == MODEL_Z or vm2 <= vlow * vlow * base2 or vm2 == 0.0:
        return y_eq * v
    if vm2 <= vmin * vmin * base2:
        # between vlowpu and vminpu: the current interpolated linearly in |V|
        vm = math.sqrt(vm2)
        v_low = vlow * v_base
        i_low = y_eq * v_low
        i_95 = y_eq * v_base if model == MODEL_I else y_eq * v_base / vmin
        return (i_low + (i_95 - i_low) / (vmin * v_base - v_low) * (vm - v_low)) / vm * v
    if vm2 > vmax * vmax * base2:
        # above vmaxpu: the impedance matching the nominal model at vmaxpu
        if model == MODEL_I:
            return y_eq / vmax * v
        return y_eq / (vmax * vmax) * v
    if model == MODEL_I:
        return s_c * v * (1.0 / (math.sqrt(vm2) * v_base))
    if model in (MODEL_MOTOR, MODEL_CVR):
        ratio = math.sqrt(vm2) / v_base
        s_v = complex(s.real * ratio**p_exp, -s.imag * ratio**q_exp)
        return s_v * v / vm2
    return s_c * v / vm2


@njit(cache=True)
def _currents_kernel(
    v_br, s, v_base, model, vmin, vmax, vlow, p_exp, q_exp, out
):  # pragma: no cover
    for k in range(v_br.shape[0]):
        for b in range(v_br.shape[1]):
            out[k, b] = _branch_current(
                v_br[k, b],
                s[k, b],
                v_base[b],
                model[b],
                vmin[b],
                vmax[b],
                vlow[b],
                p_exp[b],
                q_exp[b],
            )


@njit(cache=True)
def _update_kernel(v_a, rows, new, c_vec, inv_base, dv):  # pragma: no cover
    """``v_a[rows[j]] = new[j] + c``; ``dv[j]`` the largest change [pu]."""
    for j in range(rows.size):
        k = rows[j]
        worst = 0.0
        for a in range(v_a.shape[1]):
            x = new[j, a] + c_vec[a]
            d = x - v_a[k, a]
            m = (d.real * d.real + d.imag * d.imag) * inv_base[a] * inv_base[a]
            if m > worst:
                worst = m
            v_a[k, a] = x
        dv[j] = math.sqrt(worst)


@njit(cache=True)
def _anderson_kernel(
    v_a, rows, new, c_vec, inv_base, g_prev, d_prev, first, dv
):  # pragma: no cover
    """Anderson-accelerated update (memory 1) of the scenarios ``rows``, in place.

    With ``g = G(x)`` (the fixed-point map: ``new + c``) and ``d = g - x``:
    ``x_new = g - gamma (g - g_prev)``, ``gamma = Re<d - d_prev, d> / |d - d_prev|^2``
    (Walker & Ni, SIAM J. Numer. Anal. 49 (2011) 1715-1735); the plain update ``g`` when the
    residual grew or on the first iteration. ``dv`` is the residual ``max |d|`` [pu].
    """
    n_a = v_a.shape[1]
    for j in range(rows.size):
        k = rows[j]
        worst = 0.0
        num = 0.0
        den = 0.0
        norm_d = 0.0
        norm_prev = 0.0
        for a in range(n_a):
            g = new[j, a] + c_vec[a]
            d = (g - v_a[k, a]) * inv_base[a]
            m = d.real * d.real + d.imag * d.imag
            if m > worst:
                worst = m
            dd = d - d_prev[k, a]
            num += dd.real * d.real + dd.imag * d.imag
            den += dd.real * dd.real + dd.imag * dd.imag
            norm_d += m
            norm_prev += (
                d_prev[k, a].real * d_prev[k, a].real + d_prev[k, a].imag * d_prev[k, a].imag
            )
        gamma = 0.0
        if not first and den > 0.0 and norm_d < norm_prev:
            gamma = num / den
        for a in range(n_a):
            g = new[j, a] + c_vec[a]
            d = (g - v_a[k, a]) * inv_base[a]
            v_a[k, a] = g - gamma * (g - g_prev[k, a])
            g_prev[k, a] = g
            d_prev[k, a] = d
        dv[j] = math.sqrt(worst)


@njit(cache=True)
def csr_quadratic(data, indices, indptr, v, out):  # pragma: no cover
    """``out[k] = sum_i v[k, i] conj((M v[k])_i)`` for a CSR matrix ``M`` (complex power).

    Parameters
    ----------
    data, indices, indptr : numpy.ndarray
        CSR arrays of ``M`` (n, n) [S].
    v : numpy.ndarray (S, n) complex
        Node voltages [V].
    out : numpy.ndarray (S,) complex
        Filled with the power absorbed by ``M`` [VA].
    """
    for k in range(v.shape[0]):
        acc = 0j
        for row in range(indptr.size - 1):
            cur = 0j
            for p in range(indptr[row], indptr[row + 1]):
                cur += data[p] * v[k, indices[p]]
            acc += v[k, row] * cur.conjugate()
        out[k] = acc


@njit(cache=True)
def csr_rows_abs(data, indices, indptr, v, out):  # pragma: no cover
    """``out[k, r] = |(M v[k])_r|`` for a CSR matrix ``M`` (currents from voltages).

    Parameters
    ----------
    data, indices, indptr : numpy.ndarray
        CSR arrays of ``M`` (R, n) [S].
    v : numpy.ndarray (S, n) complex
        Node voltages [V].
    out : numpy.ndarray (S, R)
        Filled with the current magnitudes [A].
    """
    for k in range(v.shape[0]):
        for row in range(indptr.size - 1):
            cur = 0j
            for p in range(indptr[row], indptr[row + 1]):
                cur += data[p] * v[k, indices[p]]
            out[k, row] = abs(cur)


#: Anderson acceleration (memory 1) of the batched fixed point.
ANDERSON = True
#: Batches up to this many scenarios iterate in one compiled loop per scenario; larger ones
#: iterate all scenarios together with one dense matrix product per iteration.
SMALL_BATCH = 8


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


@njit(cache=True)
def _fixed_point_kernel(
    v_a,
    f,
    t,
    y_b,
    s,
    v_base,
    model,
    vmin,
    vmax,
    vlow,
    p_exp,
    q_exp,
    k_t,
    c_vec,
    inv_base,
    tol,
    max_iter,
    iterations,
    max_dv,
    converged,
):  # pragma: no cover
    """The fixed point of :meth:`ZBusSolver.solve`, one scenario at a time, in place."""
    n_a = v_a.shape[1]
    r = np.empty(n_a, dtype=np.complex128)
    for k in range(v_a.shape[0]):
        for it in range(max_iter):
            for a in range(n_a):
                r[a] = 0j
            for b in range(f.size):
                vt = v_a[k, t[b]] if t[b] < n_a else 0j
                v_br = v_a[k, f[b]] - vt
                cur = _branch_current(
                    v_br,
                    s[k, b],
                    v_base[b],
                    model[b],
                    vmin[b],
                    vmax[b],
                    vlow[b],
                    p_exp[b],
                    q_exp[b],
                )
                x = y_b[b] * v_br - cur
                r[f[b]] += x
                if t[b] < n_a:
                    r[t[b]] -= x
            worst = 0.0
            for a in range(n_a):
                acc = c_vec[a]
                for j in range(n_a):
                    acc += r[j] * k_t[j, a]
                d = acc - v_a[k, a]
                m = (d.real * d.real + d.imag * d.imag) * inv_base[a] * inv_base[a]
                if m > worst:
                    worst = m
                v_a[k, a] = acc
            iterations[k] = it + 1
            max_dv[k] = math.sqrt(worst)
            if max_dv[k] < tol:
                converged[k] = True
                break


@njit(cache=True)
def _final_kernel(
    v_a, f, t, s, v_base, model, vmin, vmax, vlow, p_exp, q_exp, i_a, cur
):  # pragma: no cover
    """Branch currents ``cur`` and injected node currents ``i_a`` at the voltages ``v_a``."""
    n_a = v_a.shape[1]
    for k in range(v_a.shape[0]):
        for a in range(n_a):
            i_a[k, a] = 0j
        for b in range(f.size):
            vt = v_a[k, t[b]] if t[b] < n_a else 0j
            c = _branch_current(
                v_a[k, f[b]] - vt,
                s[k, b],
                v_base[b],
                model[b],
                vmin[b],
                vmax[b],
                vlow[b],
                p_exp[b],
                q_exp[b],
            )
            cur[k, b] = c
            i_a[k, f[b]] -= c
            if t[b] < n_a:
                i_a[k, t[b]] += c


@njit(cache=True)
def _residual_kernel(
    v_a, rows, f, t, y_b, s, v_base, model, vmin, vmax, vlow, p_exp, q_exp, out
):  # pragma: no cover
    """``out[j] = I_A(V) + Y_l V`` at the active nodes for the scenarios ``rows``.

    ``I_A`` are the currents the branches inject (minus the current each draws from its
    first node, plus at its second), ``Y_l`` the branches' fixed admittances ``y_b``.
    """
    n_a = v_a.shape[1]
    for j in range(rows.size):
        k = rows[j]
        for a in range(n_a):
            out[j, a] = 0j
        for b in range(f.size):
            vt = v_a[k, t[b]] if t[b] < n_a else 0j
            v_br = v_a[k, f[b]] - vt
            cur = _branch_current(
                v_br, s[k, b], v_base[b], model[b], vmin[b], vmax[b], vlow[b], p_exp[b], q_exp[b]
            )
            r = y_b[b] * v_br - cur
            out[j, f[b]] += r
            if t[b] < n_a:
                out[j, t[b]] -= r


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
    _currents_kernel(
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


@dataclass
class SolveOutcome:
    """Raw output of :meth:`ZBusSolver.solve`.

    Attributes
    ----------
    v_v : numpy.ndarray (S, n) complex
        Node voltages [V].
    converged : numpy.ndarray (S,) of bool
    iterations : numpy.ndarray (S,) of int
    max_dv_pu : numpy.ndarray (S,)
        Largest voltage update at the last iteration [pu].
    branch_s_va : numpy.ndarray (S, nb) complex
        Power drawn by each branch at the solved voltages [VA] (consumption positive).
    """

    v_v: np.ndarray
    converged: np.ndarray
    iterations: np.ndarray
    max_dv_pu: np.ndarray
    branch_s_va: np.ndarray


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
            self._lu = spla.splu(sp.csc_matrix(y, dtype=complex))
        except RuntimeError as exc:  # "Factor is exactly singular"
            raise FeederError(
                "the network admittance matrix is singular: a part of the network floats "
                "(no path to ground or to a source, e.g. an ungrounded winding or an island); "
                f"{exc}"
            ) from exc
        self.v0_v = self._lu.solve(np.asarray(i_source_a, dtype=complex))
        self.v_base_v = np.asarray(v_base_v, dtype=float)
        self._cols: dict[int, int] = {}
        self._z_cols = np.zeros((self.n, 0), dtype=complex)
        self._warm: tuple[np.ndarray, np.ndarray] | None = None
        self._warm_full: np.ndarray | None = None
        self._precond: dict[tuple, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._structures: dict[bytes, dict] = {}

    @property
    def warm_state(self):
        """Last solution kept for the warm start: (active nodes, their voltages, all nodes)."""
        return self._warm, self._warm_full

    @warm_state.setter
    def warm_state(self, value) -> None:
        self._warm, self._warm_full = value

    def _preconditioner(self, active, f, t, y_b):
        """``Z_NA``, ``K = (1 + Z_AA Y_l)^-1 Z_AA`` and ``c = (1 + Z_AA Y_l)^-1 V0_A``."""
        n_a, nb = active.size, f.size
        inc = np.zeros((n_a + 1, nb))
        inc[f, np.arange(nb)] += 1.0
        inc[t, np.arange(nb)] -= 1.0
        inc = inc[:n_a]
        z_na = self.z_columns(active)
        z_aa = z_na[active]
        y_l = (inc * y_b) @ inc.T
        m = np.eye(n_a) + z_aa @ y_l
        k_mat = np.linalg.solve(m, z_aa)
        c_vec = np.linalg.solve(m, self.v0_v[active])
        return z_na, np.ascontiguousarray(k_mat.T), c_vec

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
            Consumed power of every branch in every scenario [VA].
        tol_pu : float, keyword-only
            Convergence: largest voltage update below this [pu].
        max_iter : int, keyword-only
        warm_start : bool, keyword-only
            Start from the previous solution (same active nodes) instead of no-load.

        Returns
        -------
        SolveOutcome
        """
        s_va = np.ascontiguousarray(np.atleast_2d(np.asarray(s_va, dtype=complex)))
        n_scen = s_va.shape[0]
        struct = self._structure(branches)
        active, f, t, n_a = struct["active"], struct["f"], struct["t"], struct["active"].size
        if n_a == 0:
            v = np.broadcast_to(self.v0_v, (n_scen, self.n)).copy()
            ones = np.ones(n_scen, dtype=bool)
            empty = np.zeros((n_scen, 0), dtype=complex)
            return SolveOutcome(v, ones, np.zeros(n_scen, int), np.zeros(n_scen), empty)
        # the preconditioner: the branches' nominal admittance at the batch's mean load, as
        # the first call's pattern times the load level snapped to steps of 25 % (so that
        # successive calls at similar load reuse one factorization)
        s_mean = s_va.mean(axis=0)
        if struct["y_ref"] is None:
            y_ref = np.conj(s_mean) / struct["v_base"] ** 2
            y_ref[struct["pure"]] = 0.0
            struct["y_ref"] = y_ref
            struct["s_ref"] = float(np.abs(s_mean).sum())
        level = float(np.abs(s_mean).sum()) / struct["s_ref"] if struct["s_ref"] > 0 else 1.0
        step = int(np.round(np.log(level) / np.log(1.25))) if level > 0 else -1000
        y_b = struct["y_ref"] * (1.25**step if step > -1000 else 0.0)
        key = (struct["key"], step)
        if key not in self._precond:
            if len(self._precond) >= 8:
                self._precond.pop(next(iter(self._precond)))
            self._precond[key] = self._preconditioner(active, f, t, y_b)
        z_na, k_t, c_vec = self._precond[key]
        inv_base = struct["inv_base"]
        params = struct["params"]
        if warm_start and self._warm is not None and np.array_equal(self._warm[0], active):
            last = self._warm[1]
            v_a = last.copy() if last.shape[0] == n_scen else np.repeat(last[-1:], n_scen, 0)
        elif warm_start and self._warm_full is not None:
            # other active nodes (e.g. new injection points): start from the last solution
            v_a = np.repeat(self._warm_full[active][None, :], n_scen, axis=0)
        else:
            v_a = np.repeat(self.v0_v[active][None, :], n_scen, axis=0)
        converged = np.zeros(n_scen, dtype=bool)
        iterations = np.zeros(n_scen, dtype=np.int64)
        max_dv = np.full(n_scen, np.inf)
        if n_scen <= SMALL_BATCH:
            # one compiled loop per scenario: no per-iteration Python overhead
            _fixed_point_kernel(
                v_a,
                f,
                t,
                y_b,
                s_va,
                *params,
                k_t,
                c_vec,
                inv_base,
                tol_pu,
                max_iter,
                iterations,
                max_dv,
                converged,
            )
        else:
            todo = np.arange(n_scen)
            i_buf = np.empty((n_scen, n_a), dtype=complex)
            dv = np.empty(n_scen)
            g_prev = np.zeros((n_scen, n_a), dtype=complex)
            d_prev = np.zeros((n_scen, n_a), dtype=complex)
            for it in range(max_iter):
                i_a = i_buf[: todo.size]
                _residual_kernel(v_a, todo, f, t, y_b, s_va, *params, i_a)
                # (1 + Z Y_l) V_new = V0 + Z (I(V) + Y_l V)  ->  V_new = c + K (I(V) + Y_l V)
                new = i_a @ k_t
                if ANDERSON:
                    _anderson_kernel(
                        v_a, todo, new, c_vec, inv_base, g_prev, d_prev, it == 0, dv[: todo.size]
                    )
                else:
                    _update_kernel(v_a, todo, new, c_vec, inv_base, dv[: todo.size])
                iterations[todo] += 1
                max_dv[todo] = dv[: todo.size]
                done = dv[: todo.size] < tol_pu
                converged[todo[done]] = True
                todo = todo[~done]
                if todo.size == 0:
                    break
        # injected currents at the converged voltages, then every node
        i_a = np.empty((n_scen, n_a), dtype=complex)
        cur = np.empty((n_scen, f.size), dtype=complex)
        _final_kernel(v_a, f, t, s_va, *params, i_a, cur)
        v = self.v0_v[None, :] + i_a @ z_na.T
        self._warm = (active, v_a.copy())
        self._warm_full = v[-1].copy()
        bad = ~np.isfinite(v).all(axis=1)
        converged &= ~bad
        # power at the final node voltages: with the currents above, the network equations
        # hold exactly, so source + injections = loads + losses to rounding
        v_act = v[:, active]
        v_f = v_act[:, f]
        v_t = np.where(t < n_a, v_act[:, np.minimum(t, n_a - 1)], 0.0)
        s_br = (v_f - v_t) * np.conj(cur)
        return SolveOutcome(v, converged, iterations, max_dv, s_br)

    def _structure(self, branches: Branches) -> dict:
        """Active nodes and branch indices (cached per branch topology)."""
        arrays = _param_arrays(branches)
        key = b"".join(a.tobytes() for a in (branches.node_from, branches.node_to, *arrays))
        hit = self._structures.get(key)
        if hit is not None:
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
        return out
