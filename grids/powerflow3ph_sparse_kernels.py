"""Compiled kernels of the sparse three-phase solver (:class:`grids.powerflow3ph_sparse.
SparseSolver`).

One pass over the branches per scenario: the right-hand side of the fixed point, the
Anderson-mixed update, the branch and node currents at the solution. The load physics is
:func:`grids.powerflow3ph_kernels.branch_current` (the OpenDSS load models), imported, never
restated here. Node indices are the network's own (all nodes); -1 is ground.
"""

from __future__ import annotations

import math

from numba import njit

from grids.powerflow3ph_kernels import branch_current, branch_voltage_current


@njit(cache=True)
def rhs_kernel(
    v, v0, rows, f, t, y_b, s, v_base, model, vmin, vmax, vlow, p_exp, q_exp, out
):  # pragma: no cover
    """``out[j] = I_B(V) + Y_l (V - V0)`` for the scenarios ``rows`` (all nodes).

    ``I_B`` are the currents the branches inject (minus the current each draws from its
    first node, plus at its second), ``Y_l`` the branches' fixed admittances ``y_b``.

    Parameters
    ----------
    v : numpy.ndarray (S, n) complex
        Node voltages [V].
    v0 : numpy.ndarray (n,) complex
        No-load node voltages [V].
    rows : numpy.ndarray of int
        Scenarios to evaluate.
    f, t : numpy.ndarray (nb,) of int
        Branch end nodes (``t`` -1 for ground).
    y_b : numpy.ndarray (nb,) complex
        Branch admittances of the iteration matrix [S].
    s : numpy.ndarray (S, nb) complex
        Consumed power per branch [VA].
    v_base, model, vmin, vmax, vlow, p_exp, q_exp : numpy.ndarray (nb,)
        Branch parameters (see :class:`grids.powerflow3ph.Branches`).
    out : numpy.ndarray (len(rows), n) complex
        Filled with the right-hand side without the sources [A].
    """
    n = v.shape[1]
    for j in range(rows.size):
        k = rows[j]
        for a in range(n):
            out[j, a] = 0j
        for b in range(f.size):
            # written out rather than through branch_voltage_current (which the final pass
            # uses): compiled that way this hot loop was measured 25 % slower
            vt = v[k, t[b]] if t[b] >= 0 else 0j
            v_br = v[k, f[b]] - vt
            u_br = v_br - v0[f[b]] + (v0[t[b]] if t[b] >= 0 else 0j)
            cur = branch_current(
                v_br, s[k, b], v_base[b], model[b], vmin[b], vmax[b], vlow[b], p_exp[b], q_exp[b]
            )
            x = y_b[b] * u_br - cur
            out[j, f[b]] += x
            if t[b] >= 0:
                out[j, t[b]] -= x


@njit(cache=True)
def anderson_kernel(v, rows, g, active, inv_base, g_prev, d_prev, first, dv):  # pragma: no cover
    """Anderson-accelerated update (memory 1) of the scenarios ``rows``, in place.

    With ``g = G(V)`` (the fixed-point map) and the residual ``d = (g - V) / V_base`` at the
    active nodes (those that carry a branch: the map depends on them only),
    ``V_new = g - gamma (g - g_prev)`` with ``gamma = Re<d - d_prev, d> / |d - d_prev|^2``
    (Walker & Ni, SIAM J. Numer. Anal. 49 (2011) 1715-1735); the plain update ``g`` on the
    first iteration or when the residual grew. ``dv`` is ``max |d|`` [pu].

    Parameters
    ----------
    v : numpy.ndarray (S, n) complex
        Iterates [V], updated in place.
    rows : numpy.ndarray of int
        Scenarios to update.
    g : numpy.ndarray (len(rows), n) complex
        The map's value for those scenarios [V].
    active : numpy.ndarray (nA,) of int
        Active nodes.
    inv_base : numpy.ndarray (nA,)
        ``1 / V_base`` of the active nodes [1/V].
    g_prev : numpy.ndarray (S, n) complex
        Previous map value [V], updated in place.
    d_prev : numpy.ndarray (S, nA) complex
        Previous residual [pu], updated in place.
    first : bool
        First iteration (no history yet).
    dv : numpy.ndarray (len(rows),)
        Filled with the residual [pu].
    """
    n = v.shape[1]
    for j in range(rows.size):
        k = rows[j]
        worst = 0.0
        num = 0.0
        den = 0.0
        norm_d = 0.0
        norm_prev = 0.0
        for a in range(active.size):
            node = active[a]
            d = (g[j, node] - v[k, node]) * inv_base[a]
            m = d.real * d.real + d.imag * d.imag
            if m > worst:
                worst = m
            dd = d - d_prev[k, a]
            num += dd.real * d.real + dd.imag * d.imag
            den += dd.real * dd.real + dd.imag * dd.imag
            norm_d += m
            p = d_prev[k, a]
            norm_prev += p.real * p.real + p.imag * p.imag
            d_prev[k, a] = d
        gamma = 0.0
        if not first and den > 0.0 and norm_d < norm_prev:
            gamma = num / den
        for a in range(n):
            x = g[j, a]
            v[k, a] = x - gamma * (x - g_prev[k, a])
            g_prev[k, a] = x
        dv[j] = math.sqrt(worst)


@njit(cache=True)
def currents_at_kernel(
    v, f, t, s, v_base, model, vmin, vmax, vlow, p_exp, q_exp, i_node, cur
):  # pragma: no cover
    """Branch currents and the node currents ``I_B(V)`` they inject, at the voltages ``v``.

    Parameters
    ----------
    v : numpy.ndarray (S, n) complex
        Node voltages [V].
    f, t : numpy.ndarray (nb,) of int
        Branch end nodes (``t`` -1 for ground).
    s : numpy.ndarray (S, nb) complex
        Consumed power per branch [VA].
    v_base, model, vmin, vmax, vlow, p_exp, q_exp : numpy.ndarray (nb,)
        Branch parameters (see :class:`grids.powerflow3ph.Branches`).
    i_node : numpy.ndarray (S, n) complex
        Filled with the currents the branches inject [A].
    cur : numpy.ndarray (S, nb) complex
        Filled with the branch currents (first node to second) [A].
    """
    n = v.shape[1]
    for k in range(v.shape[0]):
        for a in range(n):
            i_node[k, a] = 0j
        for b in range(f.size):
            _, c = branch_voltage_current(
                v, k, b, f, t, s, v_base, model, vmin, vmax, vlow, p_exp, q_exp
            )
            cur[k, b] = c
            i_node[k, f[b]] -= c
            if t[b] >= 0:
                i_node[k, t[b]] += c
