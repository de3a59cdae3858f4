"""Compiled kernels of the batched chord iteration (:mod:`grids.powerflow3ph_batch`).

The residual at the iterates and at the reference voltages, the full and the incremental
(single-precision) steps, and the convergence rule with the compaction of the scenarios
still iterating. The branch model they share is :func:`grids.powerflow3ph_kernels.
branch_voltage_current`.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from grids.powerflow3ph_kernels import branch_voltage_current


@njit(cache=True)
def chord_full_step_kernel(v_a, rows, r, new, c_vec, inv_base, r_prev, dv):  # pragma: no cover
    """The full chord step ``V = c + K r`` of the scenarios ``rows``, in place.

    Parameters
    ----------
    v_a : numpy.ndarray (S, nA) complex
        Iterates [V], updated in place.
    rows : numpy.ndarray of int
        Scenarios to update.
    r : numpy.ndarray (len(rows), nA) complex
        Their residual currents ``I_A(V) + G V`` [A], kept in ``r_prev``.
    new : numpy.ndarray (len(rows), nA) complex
        ``K r`` [V].
    c_vec, inv_base : numpy.ndarray (nA,)
        The constant part of the map [V] and ``1 / V_base`` [1/V].
    r_prev : numpy.ndarray (S, nA) complex
        Residual of the step's start, written for the next (incremental) step [A].
    dv : numpy.ndarray (len(rows),)
        Filled with the largest change [pu].
    """
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
            r_prev[k, a] = r[j, a]
        dv[j] = math.sqrt(worst)


@njit(cache=True)
def chord_settle_kernel(
    todo,
    n,
    step,
    full,
    last,
    last_rate,
    taken,
    rounding,
    tol,
    error_share,
    estimate_rate,
    increment_rel_error,
    iterations,
    max_dv,
    converged,
):  # pragma: no cover
    """Convergence of one chord step (:func:`grids.powerflow3ph_batch.chord_iterate`): the
    scenarios that are done are marked, the others compacted to the front, in place.

    For each of the first ``n`` scenarios, with ``rate = step / last``: a full step resets
    the summed rounding, an increment adds ``increment_rel_error * step``. The scenario is
    close when its step is below ``tol`` and it contracts (``rate <= 1/2``, or
    ``rate / (1 - rate) * step < tol``), or, from the third step after a full one, when
    ``theta / (1 - theta) * step <= error_share * tol`` with ``theta = rate *
    max(1, rate / last_rate) <= estimate_rate``; it is done when close and its rounding is
    at most ``error_share * tol``. A close scenario that is not done takes a full step next.

    Parameters
    ----------
    todo : numpy.ndarray of int
        Scenario of each position; the kept ones are moved to the front.
    n : int
        Positions in use.
    step : numpy.ndarray
        This step's largest change per position [pu].
    full : numpy.ndarray of bool
        In: whether this step was full; out: whether the next one is.
    last, last_rate, taken, rounding : numpy.ndarray
        Per position: the previous step [pu], the previous rate, steps since the last full
        one (included), the summed rounding of the increments [pu]; updated.
    tol, error_share, estimate_rate, increment_rel_error : float
        Tolerance [pu] and the rule's constants.
    iterations, max_dv, converged : numpy.ndarray (S,)
        Per scenario: steps taken, last step [pu], done; updated.

    Returns
    -------
    int
        Positions still in use.
    """
    inf = np.inf
    m = 0
    for j in range(n):
        k = todo[j]
        s = step[j]
        was_full = full[j]
        iterations[k] += 1
        max_dv[k] = s
        acc = 0.0 if was_full else rounding[j] + increment_rel_error * s
        prev = last[j]
        if s == 0.0:
            rate = 0.0
        elif prev > 0.0:
            rate = s / prev
        else:
            rate = inf
        bound = rate / (1.0 - rate) * s if rate < 1.0 else inf
        settled = s == 0.0 or rate <= 0.5 or bound < tol
        small = s < tol and settled
        count = 1 if was_full else taken[j] + 1
        before = last_rate[j]
        growth = 1.0
        if before > 0.0:
            growth = rate / before
        elif rate > 0.0:
            growth = inf
        theta = rate * max(1.0, growth)
        if count >= 3 and theta <= estimate_rate and theta / (1.0 - theta) * s <= error_share * tol:
            small = True
        if small and acc <= error_share * tol:
            converged[k] = True
            continue
        todo[m] = k
        full[m] = small
        rounding[m] = acc
        last[m] = s
        taken[m] = count
        last_rate[m] = rate
        m += 1
    return m


@njit(cache=True)
def chord_increment_input_kernel(r, rows, r_prev, out32):  # pragma: no cover
    """``out32[j] = r[j] - r_prev[rows[j]]`` in single precision, interleaved (Re, Im);
    ``r_prev[rows[j]] = r[j]``.

    Parameters
    ----------
    r : numpy.ndarray (len(rows), nA) complex
        Residual currents at the iterates [A].
    rows : numpy.ndarray of int
        Their scenarios.
    r_prev : numpy.ndarray (S, nA) complex
        Residual at the previous iterates [A], replaced by ``r``.
    out32 : numpy.ndarray (len(rows), 2 nA) float32
        Filled with the change [A].
    """
    for j in range(rows.size):
        k = rows[j]
        for a in range(r.shape[1]):
            d = r[j, a] - r_prev[k, a]
            out32[j, 2 * a] = d.real
            out32[j, 2 * a + 1] = d.imag
            r_prev[k, a] = r[j, a]


@njit(cache=True)
def chord_increment_kernel(v_a, rows, delta32, inv_base, dv):  # pragma: no cover
    """``V += K (r - r_prev)`` of the scenarios ``rows`` from its single-precision value.

    Parameters
    ----------
    v_a : numpy.ndarray (S, nA) complex
        Iterates [V], updated in place.
    rows : numpy.ndarray of int
        Scenarios to update.
    delta32 : numpy.ndarray (len(rows), 2 nA) float32
        The increment, interleaved (Re, Im) [V].
    inv_base : numpy.ndarray (nA,)
        ``1 / V_base`` [1/V].
    dv : numpy.ndarray (len(rows),)
        Filled with the largest change [pu].
    """
    for j in range(rows.size):
        k = rows[j]
        worst = 0.0
        for a in range(v_a.shape[1]):
            dr = np.float64(delta32[j, 2 * a])
            di = np.float64(delta32[j, 2 * a + 1])
            v_a[k, a] += complex(dr, di)
            m = (dr * dr + di * di) * inv_base[a] * inv_base[a]
            if m > worst:
                worst = m
        dv[j] = math.sqrt(worst)


@njit(cache=True)
def chord_residual_kernel(
    v_a, rows, f, t, jb, s, v_base, model, vmin, vmax, vlow, p_exp, q_exp, out
):  # pragma: no cover
    """``out[j] = I_A(V) + G V`` at the active nodes for the scenarios ``rows``.

    ``I_A`` are the currents the branches inject (minus the current each draws from its
    first node, plus at its second), ``G`` the branches' real 2x2 current derivatives
    ``jb[b] = [dIr/dVr, dIr/dVi, dIi/dVr, dIi/dVi]`` (the chord iteration of
    :mod:`grids.powerflow3ph_batch`).

    Parameters
    ----------
    v_a : numpy.ndarray (S, nA) complex
        Active-node voltages [V].
    rows : numpy.ndarray of int
        Scenarios to evaluate.
    f, t : numpy.ndarray (nb,) of int
        Branch end nodes in the active set (``nA`` for ground).
    jb : numpy.ndarray (nb, 4)
        Branch current derivatives [S].
    s : numpy.ndarray (S, nb) complex
        Consumed power per branch [VA].
    v_base, model, vmin, vmax, vlow, p_exp, q_exp : numpy.ndarray (nb,)
        Branch parameters (see :class:`grids.powerflow3ph.Branches`).
    out : numpy.ndarray (len(rows), nA) complex
        Filled with the residual currents [A].
    """
    n_a = v_a.shape[1]
    for j in range(rows.size):
        k = rows[j]
        for a in range(n_a):
            out[j, a] = 0j
        for b in range(f.size):
            v_br, cur = branch_voltage_current(
                v_a, k, b, f, t, s, v_base, model, vmin, vmax, vlow, p_exp, q_exp
            )
            lin = complex(
                jb[b, 0] * v_br.real + jb[b, 1] * v_br.imag,
                jb[b, 2] * v_br.real + jb[b, 3] * v_br.imag,
            )
            r = lin - cur
            out[j, f[b]] += r
            if t[b] < n_a:
                out[j, t[b]] -= r


@njit(cache=True)
def reference_residual_kernel(rows, s, f, t, unit, gv, out):  # pragma: no cover
    """:func:`chord_residual_kernel` at the reference voltages of a chord map, where each
    branch current is linear in its power: ``I_b = unit[b, 0] Re S_b + unit[b, 1] Im S_b``.

    Parameters
    ----------
    rows : numpy.ndarray of int
        Scenarios to evaluate.
    s : numpy.ndarray (S, nb) complex
        Consumed power per branch [VA].
    f, t : numpy.ndarray (nb,) of int
        Branch end nodes in the active set (``nA`` for ground).
    unit : numpy.ndarray (nb, 2) complex
        Branch currents at the reference for 1 VA and 1j VA [A].
    gv : numpy.ndarray (nA,) complex
        ``G V_ref`` [A].
    out : numpy.ndarray (len(rows), nA) complex
        Filled with the residual currents [A].
    """
    n_a = gv.size
    for j in range(rows.size):
        k = rows[j]
        for a in range(n_a):
            out[j, a] = gv[a]
        for b in range(f.size):
            sb = s[k, b]
            c = unit[b, 0] * sb.real + unit[b, 1] * sb.imag
            out[j, f[b]] -= c
            if t[b] < n_a:
                out[j, t[b]] += c
