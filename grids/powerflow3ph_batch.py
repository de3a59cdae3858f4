"""Batched three-phase solves: a chord Newton iteration on the reduced Z-bus equation.

The reduced equation of :mod:`grids.powerflow3ph`, ``V_A = V0_A + Z_AA I_A(V_A)``, is solved
for many scenarios at once. The plain fixed point moves the branches' *nominal admittance*
to the left side; that is exact for constant-impedance loads but only half the story for
constant-power loads, whose current ``conj(S / V)`` is not even complex-linear in ``V``
(its derivative holds ``conj(dV)``). A chord Newton iteration uses the true derivative
instead: with the branch currents linearised at a reference solution as real 2x2 blocks
``J_b = d(Re I_b, Im I_b) / d(Re V_b, Im V_b)`` and ``G = sum_b inc_b J_b inc_b^T`` over the
active nodes (real, ``2 nA x 2 nA``),

    (1 + Z_AA G) V^{k+1} = V0_A + Z_AA (I_A(V^k) + G V^k)
    V^{k+1} = c + K (I_A(V^k) + G V^k),   K = (1 + Z_AA G)^-1 Z_AA,  c = (1 + Z_AA G)^-1 V0_A

in real arithmetic on the interleaved (Re, Im) parts (one real matrix product per iteration,
the same work as the complex one). Each scenario starts from the reference solution of its
load level (scenarios grouped by total load in steps of 25 %, one reference and one ``K``
per group, cached), so the first iteration is a Newton step and the rest converge at the
rate of the load deviation within the group (about 1e-3 per iteration on IEEE 123 over a
year of load shapes, against 1e-1 for the nominal-admittance fixed point). Constant-power
injections at every voltage (``MODEL_PQ_PURE``: the extra injections of a study) keep a
zero block, as in the plain fixed point. After the first (full) step each step adds
``K (r(V_k) - r(V_{k-1}))``, the same iterate, with that product in single precision: the
increments shrink fast, so their rounding stays far below the tolerance
(:func:`chord_iterate`). A scenario stops when its update is below the tolerance, or earlier
when the linear-convergence estimate of the distance left, ``rate / (1 - rate)`` times the
update with the rate measured between two chord steps, is below half of it (the stopping rule
of simplified Newton iterations, Hairer & Wanner 1996): the chord converges at a rate of
1e-3..1e-2, so an update below the tolerance leaves the iterate hundreds of times closer than
asked. Over a year of load shapes on the four embedded feeders the largest error measured
against a 1e-13 solve is 1.1e-11 pu at the default tolerance of 1e-10 pu.

References
----------
C. T. Kelley, "Iterative Methods for Linear and Nonlinear Equations", SIAM, 1995, sec. 5.4
(chord method); R. C. Dugan, "OpenDSS Reference Guide", EPRI (the fixed point it improves);
N. J. Higham, "Accuracy and Stability of Numerical Algorithms", 2nd ed., SIAM, 2002, ch. 3
(rounding of inner products); E. Hairer, G. Wanner, "Solving Ordinary Differential Equations
II", 2nd ed., Springer, 1996, sec. IV.8 (stopping a simplified Newton iteration on
``theta / (1 - theta) |dZ|``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from grids.powerflow3ph_chord_kernels import (
    chord_full_step_kernel,
    chord_increment_input_kernel,
    chord_increment_kernel,
    chord_residual_kernel,
    chord_settle_kernel,
    reference_residual_kernel,
)
from grids.powerflow3ph_kernels import MODEL_PQ_PURE, currents_kernel

#: Load levels of one group differ by at most this factor (total |S| of the scenario).
LEVEL_STEP = 1.25
#: Relative rounding assumed for a single-precision increment ``K dr`` (its largest entry):
#: 4 float32 epsilons, several times the measured 0.5-1 (IEEE 13, 34, 123, European LV);
#: the statistical size of a few hundred rounded terms is ``sqrt(n) eps`` of their sum.
INCREMENT_REL_ERROR = 4 * float(np.finfo(np.float32).eps)
#: Share of the tolerance given to each of the two parts of a batched scenario's error: the
#: summed single-precision rounding of its increments, and the linear-convergence estimate
#: ``rate / (1 - rate) * step`` of the distance left to the solution.
ERROR_SHARE = 0.5
#: The error estimate may end a scenario only while it contracts at least this fast (the
#: chord converges at 1e-3..1e-2 per step on a year of load shapes; a slower scenario, e.g.
#: near its loadability limit, waits for its update to fall below the tolerance).
ESTIMATE_RATE = 0.1


@dataclass(frozen=True)
class ChordMap:
    """The chord iteration of one load level.

    Attributes
    ----------
    v_ref_v : numpy.ndarray (nA,) complex
        Reference solution at the active nodes [V] (every scenario's start).
    jb : numpy.ndarray (nb, 4)
        Branch current derivatives at the reference, ``[dIr/dVr, dIr/dVi, dIi/dVr,
        dIi/dVi]`` [S].
    k_t : numpy.ndarray (2 nA, 2 nA)
        ``K`` transposed, interleaved (Re, Im) rows and columns [Ohm].
    k_t32 : numpy.ndarray (2 nA, 2 nA) float32
        The same in single precision (for the increments).
    c_v : numpy.ndarray (nA,) complex
        ``c`` [V].
    unit_a : numpy.ndarray (nb, 2) complex
        Each branch's current at the reference voltage for 1 VA and for 1j VA [A]: every
        load model's current is linear in ``(Re S, Im S)`` at a fixed voltage.
    gv_ref_a : numpy.ndarray (nA,) complex
        ``G V_ref`` [A].
    """

    v_ref_v: np.ndarray
    jb: np.ndarray
    k_t: np.ndarray
    c_v: np.ndarray
    k_t32: np.ndarray
    unit_a: np.ndarray
    gv_ref_a: np.ndarray


class WorkArrays:
    """Work arrays kept between calls, grown when too small: a batch's iteration then writes
    to pages it has touched before (fresh pages of a few MB per call cost as much as the
    arithmetic of the small feeders)."""

    def __init__(self) -> None:
        self._arrays: dict[tuple[str, np.dtype], np.ndarray] = {}

    def get(self, name: str, shape: tuple[int, ...], dtype=complex) -> np.ndarray:
        """A C-ordered array of ``shape`` (contents undefined).

        Parameters
        ----------
        name : str
            Which array (one per name and dtype).
        shape : tuple of int
        dtype : numpy dtype

        Returns
        -------
        numpy.ndarray
        """
        key = (name, np.dtype(dtype))
        size = math.prod(shape)
        buf = self._arrays.get(key)
        if buf is None or buf.size < size:
            buf = np.empty(size, dtype=dtype)
            self._arrays[key] = buf
        return buf[:size].reshape(shape)


def branch_jacobian(v_br_v: np.ndarray, s_va: np.ndarray, params: tuple) -> np.ndarray:
    """Real derivative of each branch current with respect to its voltage.

    Central differences of the compiled branch model (OpenDSS load models with their
    vminpu/vmaxpu regions; :func:`grids.powerflow3ph.branch_currents`) with a step of
    ``1e-7 |V|``; constant-power injections (``MODEL_PQ_PURE``) get zero.

    Parameters
    ----------
    v_br_v : numpy.ndarray (nb,) complex
        Branch voltages at the reference [V].
    s_va : numpy.ndarray (nb,) complex
        Branch powers at the reference [VA].
    params : tuple of numpy.ndarray
        ``(v_base_v, model, vminpu, vmaxpu, vlowpu, p_exp, q_exp)`` per branch.

    Returns
    -------
    numpy.ndarray (nb, 4)
        ``[dIr/dVr, dIr/dVi, dIi/dVr, dIi/dVi]`` [S].
    """
    v_br = np.ascontiguousarray(v_br_v, dtype=complex)
    s_b = np.ascontiguousarray(s_va, dtype=complex)
    h_v = 1e-7 * np.maximum(np.abs(v_br), 1.0)
    out = np.zeros((v_br.size, 4))
    plus = np.empty((1, v_br.size), dtype=complex)
    minus = np.empty_like(plus)
    for col, step in ((0, h_v), (1, 1j * h_v)):
        currents_kernel((v_br + step)[None], s_b[None], *params, plus)
        currents_kernel((v_br - step)[None], s_b[None], *params, minus)
        d = (plus[0] - minus[0]) / (2.0 * h_v)
        out[:, col] = d.real
        out[:, 2 + col] = d.imag
    out[np.asarray(params[1]) == MODEL_PQ_PURE] = 0.0
    return out


def real_form(z: np.ndarray) -> np.ndarray:
    """The real matrix acting on interleaved (Re, Im) vectors as the complex ``z`` does.

    Parameters
    ----------
    z : numpy.ndarray (m, n) complex

    Returns
    -------
    numpy.ndarray (2 m, 2 n)
        Blocks ``[[Re z, -Im z], [Im z, Re z]]`` per entry.
    """
    m, n = z.shape
    out = np.empty((2 * m, 2 * n))
    out[0::2, 0::2] = z.real
    out[0::2, 1::2] = -z.imag
    out[1::2, 0::2] = z.imag
    out[1::2, 1::2] = z.real
    return out


def chord_map(
    z_aa: np.ndarray,
    v0_a: np.ndarray,
    v_ref_v: np.ndarray,
    jb: np.ndarray,
    f: np.ndarray,
    t: np.ndarray,
    params: tuple,
) -> ChordMap:
    """``K`` and ``c`` of the chord iteration (module docstring), and the parts of the
    residual at the reference voltages.

    Parameters
    ----------
    z_aa : numpy.ndarray (nA, nA) complex
        ``Z`` at the active nodes [Ohm].
    v0_a : numpy.ndarray (nA,) complex
        No-load voltages there [V].
    v_ref_v : numpy.ndarray (nA,) complex
        Reference solution [V].
    jb : numpy.ndarray (nb, 4)
        Branch current derivatives (:func:`branch_jacobian`) [S].
    f, t : numpy.ndarray (nb,) of int
        Branch end nodes in the active set (``nA`` for ground).
    params : tuple of numpy.ndarray
        Branch parameters (:func:`branch_jacobian`).

    Returns
    -------
    ChordMap
    """
    n_a = z_aa.shape[0]
    v_ext = np.append(np.asarray(v_ref_v, dtype=complex), 0j)  # index nA: ground
    v_br = v_ext[f] - v_ext[t]
    unit = np.empty((2, f.size), dtype=complex)
    s_unit = np.stack([np.ones(f.size, dtype=complex), np.full(f.size, 1j)])
    currents_kernel(np.stack([v_br, v_br]), s_unit, *params, unit)
    lin = (jb[:, 0] * v_br.real + jb[:, 1] * v_br.imag) + 1j * (
        jb[:, 2] * v_br.real + jb[:, 3] * v_br.imag
    )
    gv = np.zeros(n_a + 1, dtype=complex)
    np.add.at(gv, f, lin)
    np.subtract.at(gv, t, lin)
    g = np.zeros((2 * n_a + 2, 2 * n_a + 2))
    blocks = jb.reshape(-1, 2, 2)
    for p_nodes, q_nodes, sign in ((f, f, 1.0), (f, t, -1.0), (t, f, -1.0), (t, t, 1.0)):
        for r in range(2):
            for c in range(2):
                np.add.at(g, (2 * p_nodes + r, 2 * q_nodes + c), sign * blocks[:, r, c])
    g = g[: 2 * n_a, : 2 * n_a]
    z_r = real_form(z_aa)
    m = np.eye(2 * n_a) + z_r @ g
    v0_r = np.ascontiguousarray(v0_a, dtype=complex).view(np.float64)
    sol = np.linalg.solve(m, np.concatenate([z_r, v0_r[:, None]], axis=1))
    c_v = np.ascontiguousarray(sol[:, 2 * n_a]).view(np.complex128).copy()
    k_t = np.ascontiguousarray(sol[:, : 2 * n_a].T)
    return ChordMap(
        np.array(v_ref_v, dtype=complex),
        jb,
        k_t,
        c_v,
        k_t.astype(np.float32),
        np.ascontiguousarray(unit.T),
        gv[:n_a],
    )


def level_step(level: float) -> int | None:
    """The load level snapped to steps of :data:`LEVEL_STEP` (None for no load).

    Parameters
    ----------
    level : float
        Load relative to the reference load.

    Returns
    -------
    int or None
        ``round(log(level) / log(LEVEL_STEP))``.
    """
    return int(np.round(np.log(level) / np.log(LEVEL_STEP))) if level > 0 else None


def level_groups(s_va: np.ndarray, s_ref: float) -> tuple[np.ndarray, np.ndarray]:
    """Scenarios grouped by load level, total ``|S|`` in steps of :data:`LEVEL_STEP`.

    Parameters
    ----------
    s_va : numpy.ndarray (S, nb) complex
        Branch powers [VA].
    s_ref : float
        Reference total [VA] (level 1).

    Returns
    -------
    steps : numpy.ndarray (S,) of int
        Group of each scenario (``round(log(level) / log(LEVEL_STEP))``).
    order : numpy.ndarray (S,) of int
        Scenarios sorted by group (stable).
    """
    total = np.abs(s_va).sum(axis=1)
    with np.errstate(divide="ignore"):
        level = np.log(np.maximum(total, 1e-300) / max(s_ref, 1e-300)) / np.log(LEVEL_STEP)
    steps = np.round(np.clip(level, -200, 200)).astype(np.int64)
    return steps, np.argsort(steps, kind="stable")


def chord_iterate(
    v_a: np.ndarray,
    rows: np.ndarray,
    s_va: np.ndarray,
    chord: ChordMap,
    f: np.ndarray,
    t: np.ndarray,
    params: tuple,
    inv_base: np.ndarray,
    *,
    tol_pu: float,
    max_iter: int,
    iterations: np.ndarray,
    max_dv: np.ndarray,
    converged: np.ndarray,
    work: WorkArrays | None = None,
) -> None:
    """Iterate the scenarios ``rows`` of ``v_a`` from the chord's reference solution, in
    place, to the tolerance.

    The first step is the full map ``V1 = c + K r(V0)`` in double precision; later steps
    add ``K (r(V_k) - r(V_{k-1}))`` (the same iterate in exact arithmetic), whose product
    is formed in single precision: the increments shrink at the chord's rate, so their
    rounding (taken as :data:`INCREMENT_REL_ERROR` of each increment and summed per
    scenario) stays below the tolerance. A scenario converges when that summed rounding is
    below :data:`ERROR_SHARE` of ``tol_pu`` and either its last change is below ``tol_pu``
    or, from the third step after a full one, the error estimate of linear convergence,
    ``rate / (1 - rate)`` times its step (``rate`` = this step over the previous one,
    extrapolated once more when it rose, at most :data:`ESTIMATE_RATE`), is below
    :data:`ERROR_SHARE` of ``tol_pu`` (Kelley 1995, sec. 4.2; Hairer & Wanner 1996,
    sec. IV.8); otherwise, if it was close but its rounding too large, it takes one more full
    double-precision step (which starts afresh from the exact map). A scenario that contracts
    slowly (its step shrank by less than half) must also have the error estimate below
    ``tol_pu`` when its change is.

    Parameters
    ----------
    v_a : numpy.ndarray (S, nA) complex
        Voltages [V]: the rows ``rows`` are set to the reference, then to the iterates.
    rows : numpy.ndarray of int
        Scenarios of this group.
    s_va : numpy.ndarray (S, nb) complex
        Branch powers [VA].
    chord : ChordMap
        The group's iteration.
    f, t, params, inv_base : numpy.ndarray
        Branch end nodes, branch parameters, ``1 / V_base`` of the active nodes [1/V].
    tol_pu, max_iter : float, int, keyword-only
        Tolerance on the error of the result [pu] (above) and iteration limit.
    iterations, max_dv, converged : numpy.ndarray (S,)
        Updated for ``rows``.
    work : WorkArrays, optional, keyword-only
        Work arrays kept by the caller between calls (among them each scenario's residual
        at its previous iterate).
    """
    n_a = v_a.shape[1]
    todo = np.array(rows, dtype=np.int64)  # compacted in place
    work = WorkArrays() if work is None else work
    # sized for every scenario of v_a: the groups of one batch then share the arrays
    cap = v_a.shape[0]
    r_prev = work.get("r_prev", (cap, n_a))  # indexed by scenario
    r_buf = work.get("r", (cap, n_a))
    new_buf = work.get("new", (cap, n_a))
    in32 = work.get("in", (cap, 2 * n_a), np.float32)
    out32 = work.get("out", (cap, 2 * n_a), np.float32)
    full = np.ones(todo.size, dtype=bool)  # the next step is a full one
    rounding = np.zeros(todo.size)  # summed rounding of the increments [pu]
    last = np.full(todo.size, np.inf)  # the previous step [pu]
    taken = np.zeros(todo.size, dtype=np.int64)  # steps since the last full one (included)
    last_rate = np.ones(todo.size)  # the previous step over the one before [-]
    dv = np.empty(todo.size)
    v_a[todo] = chord.v_ref_v
    n = todo.size
    for it in range(max_iter):
        rows_n = todo[:n]
        r = r_buf[:n]
        if it == 0:  # at the reference voltages the residual is linear in the powers
            reference_residual_kernel(rows_n, s_va, f, t, chord.unit_a, chord.gv_ref_a, r)
        else:
            chord_residual_kernel(v_a, rows_n, f, t, chord.jb, s_va, *params, r)
        step = dv[:n]
        n_full = int(np.count_nonzero(full[:n]))
        for is_full, count in ((True, n_full), (False, n - n_full)):
            if count == 0:
                continue
            every = count == n
            pos = slice(None) if every else np.flatnonzero(full[:n] == is_full)
            r_part = r if every else np.ascontiguousarray(r[pos])
            part_rows = rows_n if every else rows_n[pos]
            part_dv = step if every else np.empty(count)
            if is_full:
                new = new_buf[:count]
                np.matmul(r_part.view(np.float64), chord.k_t, out=new.view(np.float64))
                chord_full_step_kernel(
                    v_a, part_rows, r_part, new, chord.c_v, inv_base, r_prev, part_dv
                )
            else:
                chord_increment_input_kernel(r_part, part_rows, r_prev, in32[:count])
                np.matmul(in32[:count], chord.k_t32, out=out32[:count])
                chord_increment_kernel(v_a, part_rows, out32[:count], inv_base, part_dv)
            if not every:
                step[pos] = part_dv
        # convergence (the rule above), the remaining scenarios compacted to the front
        n = chord_settle_kernel(
            todo,
            n,
            step,
            full,
            last,
            last_rate,
            taken,
            rounding,
            tol_pu,
            ERROR_SHARE,
            ESTIMATE_RATE,
            INCREMENT_REL_ERROR,
            iterations,
            max_dv,
            converged,
        )
        if n == 0:
            break
