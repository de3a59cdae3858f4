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

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

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
    vm = np.abs(v_branch)
    vm_safe = np.where(vm > 0.0, vm, 1.0)
    y_eq = np.conj(s_va) / v_base_v**2
    v_low = vlowpu * v_base_v
    v_95 = vminpu * v_base_v
    v_105 = vmaxpu * v_base_v
    v_safe = np.where(vm > 0.0, v_branch, 1.0)
    pq = np.conj(s_va / v_safe)
    ratio = vm_safe / v_base_v
    s_exp = s_va.real * ratio**p_exp + 1j * s_va.imag * ratio**q_exp
    is_exp = (model == MODEL_MOTOR) | (model == MODEL_CVR)
    nominal_pq = np.where(is_exp, np.conj(s_exp / v_safe), pq)
    const_i = np.conj(s_va / (v_branch / vm_safe * v_base_v))
    is_i = model == MODEL_I
    nominal = np.where(is_i, const_i, nominal_pq)
    # above vmaxpu: the impedance matching the nominal model at vmaxpu
    vmax_safe = np.where(vmaxpu > 0.0, vmaxpu, 1.0)
    y_high = np.where(is_i, y_eq / vmax_safe, y_eq / vmax_safe**2)
    # between vlowpu and vminpu: the current interpolated linearly in |V|
    i_low = y_eq * v_low
    i_95 = np.where(is_i, y_eq * v_base_v, y_eq * v_base_v / np.where(vminpu > 0, vminpu, 1.0))
    span = np.where(v_95 - v_low > 0.0, v_95 - v_low, 1.0)
    y_mid = (i_low + (i_95 - i_low) / span * (vm - v_low)) / vm_safe
    current = np.where(
        vm <= v_low,
        y_eq * v_branch,
        np.where(vm <= v_95, y_mid * v_branch, np.where(vm > v_105, y_high * v_branch, nominal)),
    )
    current = np.where(model == MODEL_Z, y_eq * v_branch, current)
    return np.where(model == MODEL_PQ_PURE, pq, current)


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
        Last voltage update [pu].
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
        self._lu = spla.splu(sp.csc_matrix(y, dtype=complex))
        self.v0_v = self._lu.solve(np.asarray(i_source_a, dtype=complex))
        self.v_base_v = np.asarray(v_base_v, dtype=float)
        self._cols: dict[int, int] = {}
        self._z_cols = np.zeros((self.n, 0), dtype=complex)
        self._warm: tuple[np.ndarray, np.ndarray] | None = None

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
        s_va = np.atleast_2d(np.asarray(s_va, dtype=complex))
        n_scen = s_va.shape[0]
        active = np.unique(np.concatenate([branches.node_from, branches.node_to]))
        active = active[active >= 0]
        n_a = active.size
        if n_a == 0:
            v = np.broadcast_to(self.v0_v, (n_scen, self.n)).copy()
            ones = np.ones(n_scen, dtype=bool)
            empty = np.zeros((n_scen, 0), dtype=complex)
            return SolveOutcome(v, ones, np.zeros(n_scen, int), np.zeros(n_scen), empty)
        pos = np.full(self.n + 1, n_a, dtype=np.int64)  # ground -> the extra zero column
        pos[active] = np.arange(n_a)
        f = pos[branches.node_from]
        t = pos[branches.node_to]  # node_to == -1 -> pos[-1] == n_a (ground)
        nb = len(branches)
        inc = np.zeros((n_a + 1, nb))
        inc[f, np.arange(nb)] += 1.0
        inc[t, np.arange(nb)] -= 1.0
        inc = inc[:n_a]
        z_na = self.z_columns(active)
        z_aa = z_na[active]
        # nominal admittance of the branches (scenario mean) as the preconditioner
        y_b = np.conj(s_va.mean(axis=0)) / branches.v_base_v**2
        y_b = np.where(branches.model == MODEL_PQ_PURE, 0.0, y_b)
        y_l = (inc * y_b) @ inc.T
        m = np.eye(n_a) + z_aa @ y_l
        k_mat = np.linalg.solve(m, z_aa)
        c_vec = np.linalg.solve(m, self.v0_v[active])
        base_a = self.v_base_v[active]
        kw = {
            "v_base_v": branches.v_base_v,
            "model": branches.model,
            "vminpu": branches.vminpu,
            "vmaxpu": branches.vmaxpu,
            "vlowpu": branches.vlowpu,
            "p_exp": branches.p_exp,
            "q_exp": branches.q_exp,
        }
        if warm_start and self._warm is not None and np.array_equal(self._warm[0], active):
            last = self._warm[1]
            v_a = last.copy() if last.shape[0] == n_scen else np.repeat(last[-1:], n_scen, 0)
        else:
            v_a = np.repeat(self.v0_v[active][None, :], n_scen, axis=0)
        converged = np.zeros(n_scen, dtype=bool)
        iterations = np.zeros(n_scen, dtype=np.int64)
        max_dv = np.full(n_scen, np.inf)
        todo = np.arange(n_scen)
        zero_col = np.zeros((n_scen, 1), dtype=complex)
        for _ in range(max_iter):
            va = v_a[todo]
            v_aug = np.concatenate([va, zero_col[: todo.size]], axis=1)
            v_br = v_aug[:, f] - v_aug[:, t]
            cur = branch_currents(v_br, s_va[todo], **kw)
            r = -cur @ inc.T + va @ y_l.T
            new = c_vec + r @ k_mat.T
            dv = np.max(np.abs(new - va) / base_a, axis=1)
            v_a[todo] = new
            iterations[todo] += 1
            max_dv[todo] = dv
            done = dv < tol_pu
            converged[todo[done]] = True
            todo = todo[~done]
            if todo.size == 0:
                break
        # final currents at the converged voltages, then every node
        v_aug = np.concatenate([v_a, zero_col], axis=1)
        cur = branch_currents(v_aug[:, f] - v_aug[:, t], s_va, **kw)
        i_a = -cur @ inc.T
        v = self.v0_v[None, :] + i_a @ z_na.T
        self._warm = (active, v_a.copy())
        bad = ~np.isfinite(v).all(axis=1)
        converged &= ~bad
        # power at the final node voltages: with the currents above, the network equations
        # hold exactly, so source + injections = loads + losses to rounding
        v_aug = np.concatenate([v[:, active], zero_col], axis=1)
        s_br = (v_aug[:, f] - v_aug[:, t]) * np.conj(cur)
        return SolveOutcome(v, converged, iterations, max_dv, s_br)
