"""Compiled kernels of the three-phase solver (:class:`grids.powerflow3ph.ZBusSolver`).

The OpenDSS load models of one branch (:func:`branch_current`, documented with the
vectorized wrapper :func:`grids.powerflow3ph.branch_currents`), the residual and update
passes of the fixed point, and the sparse products that derive flows from voltages. One pass
over the branches or rows each; the physics lives in :func:`branch_current` only.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

#: Model numbers of the load branches (OpenDSS load models).
MODEL_PQ = 1
MODEL_Z = 2
MODEL_MOTOR = 3
MODEL_CVR = 4
MODEL_I = 5
#: A branch that is constant power at every voltage (extra injections, no vminpu rule).
MODEL_PQ_PURE = 0


@njit(cache=True, inline="always")
def branch_current(v, s, v_base, model, vmin, vmax, vlow, p_exp, q_exp):  # pragma: no cover
    """Current drawn by one branch (see :func:`grids.powerflow3ph.branch_currents`).

    Parameters
    ----------
    v : complex
        Voltage across the branch [V].
    s : complex
        Nominal consumed power [VA].
    v_base, model, vmin, vmax, vlow, p_exp, q_exp : float or int
        Base voltage [V], OpenDSS load model, limits [pu], exponents of models 3 and 4.

    Returns
    -------
    complex
        Current from the first node to the second [A].
    """
    vm2 = v.real * v.real + v.imag * v.imag
    s_c = s.conjugate()
    if model == MODEL_PQ:
        # the common case first: constant PQ within [vminpu, vmaxpu]
        base2 = v_base * v_base
        if vmin * vmin * base2 < vm2 <= vmax * vmax * base2:
            inv = 1.0 / vm2  # real arithmetic: a complex division costs several times more
            return complex(
                (s.real * v.real + s.imag * v.imag) * inv, (s.real * v.imag - s.imag * v.real) * inv
            )
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


@njit(cache=True, inline="always")
def branch_voltage_current(
    v_a, k, b, f, t, s, v_base, model, vmin, vmax, vlow, p_exp, q_exp
):  # pragma: no cover
    """Voltage across branch ``b`` in scenario ``k`` and the current it draws.

    Parameters
    ----------
    v_a : numpy.ndarray (S, nA) complex
        Active-node voltages [V].
    k, b : int
        Scenario and branch.
    f, t : numpy.ndarray (nb,) of int
        Branch end nodes: columns of ``v_a``; ground is any index outside them (``nA`` in
        the dense solver's active set, -1 in the sparse solver's full node set).
    s : numpy.ndarray (S, nb) complex
        Consumed power per branch [VA].
    v_base, model, vmin, vmax, vlow, p_exp, q_exp : numpy.ndarray (nb,)
        Branch parameters (see :class:`grids.powerflow3ph.Branches`).

    Returns
    -------
    tuple of complex
        ``V_b`` [V] and :func:`branch_current` [A].
    """
    tb = t[b]
    vt = v_a[k, tb] if tb >= 0 and tb < v_a.shape[1] else 0j
    v_br = v_a[k, f[b]] - vt
    cur = branch_current(
        v_br, s[k, b], v_base[b], model[b], vmin[b], vmax[b], vlow[b], p_exp[b], q_exp[b]
    )
    return v_br, cur


@njit(cache=True)
def currents_kernel(
    v_br, s, v_base, model, vmin, vmax, vlow, p_exp, q_exp, out
):  # pragma: no cover
    """``out[k, b]`` = current of branch ``b`` in scenario ``k`` at ``v_br`` [A].

    Parameters
    ----------
    v_br, s : numpy.ndarray (S, nb) complex
        Branch voltages [V] and nominal powers [VA].
    v_base, model, vmin, vmax, vlow, p_exp, q_exp : numpy.ndarray (nb,)
        Branch parameters (see :class:`grids.powerflow3ph.Branches`).
    out : numpy.ndarray (S, nb) complex
        Filled with the currents [A].
    """
    for k in range(v_br.shape[0]):
        for b in range(v_br.shape[1]):
            out[k, b] = branch_current(
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


@njit(cache=True)
def fixed_point_kernel(
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
    """The fixed point of :meth:`grids.powerflow3ph.ZBusSolver.solve`, one scenario at a time.

    Parameters
    ----------
    v_a : numpy.ndarray (S, nA) complex
        Start voltages [V], replaced by the solution.
    f, t : numpy.ndarray (nb,) of int
        Branch end nodes in the active set (``nA`` for ground).
    y_b : numpy.ndarray (nb,) complex
        Branch admittances of the preconditioner [S].
    s : numpy.ndarray (S, nb) complex
        Consumed power per branch [VA].
    v_base, model, vmin, vmax, vlow, p_exp, q_exp : numpy.ndarray (nb,)
        Branch parameters (see :class:`grids.powerflow3ph.Branches`).
    k_t, c_vec, inv_base : numpy.ndarray
        The map ``V = c + r K`` (``K`` transposed, ``(nA, nA)``), ``(nA,)`` [V] and
        ``1 / V_base`` [1/V].
    tol, max_iter : float, int
        Tolerance on the update [pu] and iteration limit.
    iterations, max_dv, converged : numpy.ndarray (S,)
        Filled per scenario.
    """
    n_a = v_a.shape[1]
    r = np.empty(n_a, dtype=np.complex128)
    new = np.empty(n_a, dtype=np.complex128)
    for k in range(v_a.shape[0]):
        for it in range(max_iter):
            for a in range(n_a):
                r[a] = 0j
            for b in range(f.size):
                v_br, cur = branch_voltage_current(
                    v_a, k, b, f, t, s, v_base, model, vmin, vmax, vlow, p_exp, q_exp
                )
                x = y_b[b] * v_br - cur
                r[f[b]] += x
                if t[b] < n_a:
                    r[t[b]] -= x
            # new = c + r K^T, row by row of K^T (contiguous)
            for a in range(n_a):
                new[a] = c_vec[a]
            for j in range(n_a):
                rj = r[j]
                for a in range(n_a):
                    new[a] += rj * k_t[j, a]
            worst = 0.0
            for a in range(n_a):
                acc = new[a]
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
def injected_currents_kernel(
    v_a, f, t, s, v_base, model, vmin, vmax, vlow, p_exp, q_exp, i_a
):  # pragma: no cover
    """Injected node currents ``i_a`` at the voltages ``v_a``.

    Parameters
    ----------
    v_a : numpy.ndarray (S, nA) complex
        Active-node voltages [V].
    f, t : numpy.ndarray (nb,) of int
        Branch end nodes in the active set (``nA`` for ground).
    s : numpy.ndarray (S, nb) complex
        Consumed power per branch [VA].
    v_base, model, vmin, vmax, vlow, p_exp, q_exp : numpy.ndarray (nb,)
        Branch parameters (see :class:`grids.powerflow3ph.Branches`).
    i_a : numpy.ndarray (S, nA) complex
        Filled with the currents injected into the active nodes [A].
    """
    n_a = v_a.shape[1]
    for k in range(v_a.shape[0]):
        for a in range(n_a):
            i_a[k, a] = 0j
        for b in range(f.size):
            _, c = branch_voltage_current(
                v_a, k, b, f, t, s, v_base, model, vmin, vmax, vlow, p_exp, q_exp
            )
            i_a[k, f[b]] -= c
            if t[b] < n_a:
                i_a[k, t[b]] += c


@njit(cache=True)
def branch_power_kernel(
    v_a, f, t, s, v_base, model, vmin, vmax, vlow, p_exp, q_exp, s_br
):  # pragma: no cover
    """The power each branch draws at the voltages ``v_a``, ``V_b conj(I_b)``.

    Parameters
    ----------
    v_a, f, t, s, v_base, model, vmin, vmax, vlow, p_exp, q_exp
        As in :func:`injected_currents_kernel`.
    s_br : numpy.ndarray (S, nb) complex
        Filled with the power each branch draws [VA].
    """
    for k in range(v_a.shape[0]):
        for b in range(f.size):
            v_br, c = branch_voltage_current(
                v_a, k, b, f, t, s, v_base, model, vmin, vmax, vlow, p_exp, q_exp
            )
            s_br[k, b] = v_br * c.conjugate()


@njit(cache=True)
def small_matmul(a, b, out):  # pragma: no cover
    """``out = a @ b`` without BLAS, for a few rows.

    A multi-threaded BLAS on a busy machine can take milliseconds for a one-row product;
    this loop takes microseconds.

    Parameters
    ----------
    a : numpy.ndarray (m, k)
    b : numpy.ndarray (k, n)
    out : numpy.ndarray (m, n)
        Filled with the product.
    """
    for i in range(a.shape[0]):
        for j in range(b.shape[1]):
            out[i, j] = 0.0
        for p in range(a.shape[1]):
            x = a[i, p]
            for j in range(b.shape[1]):
                out[i, j] += x * b[p, j]


@njit(cache=True)
def passive_magnitudes_kernel(
    v_a,
    active,
    inv_base_a,
    ypa_data,
    ypa_indices,
    ypa_indptr,
    perm_r,
    l_indptr,
    l_indices,
    l_data,
    u_indptr,
    u_indices,
    u_data,
    u_inv_diag,
    perm_c,
    v0,
    inv_base,
    out_cols,
    xr,
    xi,
    ar,
    ai,
    out,
):  # pragma: no cover
    """Every node's magnitude from the active voltages: ``out[s, active[a]] =
    |v_a[s, a]| inv_base_a[a]`` and, with ``Y_PP V_P = I_s,P - Y_PA V_A``,
    ``out[s, out_cols[k]] = |V0_k + (Y_PP^-1 (-Y_PA v_a[s]))_k| inv_base_k``.

    With ``Pr Y_PP Pc = L U`` (SuperLU; ``L`` unit lower, ``U`` upper): the right-hand side
    of passive equation ``p`` goes to row ``perm_r[p]``, a forward pass with ``L``, a
    backward pass with ``U``, unknown ``k`` reads row ``perm_c[k]``. Blocks of
    ``xr.shape[1]`` scenarios at a time, real and imaginary parts apart so that the inner
    loops over scenarios vectorize.

    Parameters
    ----------
    v_a : numpy.ndarray (S, nA) complex
        Active-node voltages [V].
    active : numpy.ndarray (nA,) of int
        Their columns of ``out``.
    inv_base_a : numpy.ndarray (nA,)
        Their ``1 / V_base`` [1/V].
    ypa_data, ypa_indices, ypa_indptr : numpy.ndarray
        CSR arrays of ``Y_PA`` [S].
    perm_r : numpy.ndarray (nP,) of int
        Row permutation.
    l_indptr, l_indices, l_data : numpy.ndarray
        CSC arrays of the strictly lower part of ``L``.
    u_indptr, u_indices, u_data : numpy.ndarray
        CSC arrays of the strictly upper part of ``U``.
    u_inv_diag : numpy.ndarray (nP,) complex
        ``1 / diag(U)``.
    perm_c : numpy.ndarray (nP,) of int
        Column permutation.
    v0, inv_base : numpy.ndarray (nP,)
        ``Y_PP^-1 I_s,P`` [V] and ``1 / V_base`` [1/V] of the passive nodes.
    out_cols : numpy.ndarray (nP,) of int
        Columns of ``out`` of the passive nodes.
    xr, xi : numpy.ndarray (nP, B)
        Work arrays.
    ar, ai : numpy.ndarray (nA, B)
        Work arrays.
    out : numpy.ndarray (S, n)
        Filled with the magnitudes [pu].
    """
    n_scen = v_a.shape[0]
    n_a = v_a.shape[1]
    n = v0.size
    block = xr.shape[1]
    tr = np.empty(block)
    ti = np.empty(block)
    for s0 in range(0, n_scen, block):
        nb = min(block, n_scen - s0)
        for s in range(nb):
            for a in range(n_a):
                c = v_a[s0 + s, a]
                ar[a, s] = c.real
                ai[a, s] = c.imag
                out[s0 + s, active[a]] = (
                    math.sqrt(c.real * c.real + c.imag * c.imag) * (inv_base_a[a])
                )
        for p in range(n):
            r = perm_r[p]
            for s in range(nb):
                xr[r, s] = 0.0
                xi[r, s] = 0.0
            for q in range(ypa_indptr[p], ypa_indptr[p + 1]):
                a = ypa_indices[q]
                yr = ypa_data[q].real
                yi = ypa_data[q].imag
                for s in range(nb):
                    xr[r, s] -= yr * ar[a, s] - yi * ai[a, s]
                    xi[r, s] -= yr * ai[a, s] + yi * ar[a, s]
        for j in range(n):
            if l_indptr[j] == l_indptr[j + 1]:
                continue
            for s in range(nb):  # the pivot row apart: the updates below then vectorize
                tr[s] = xr[j, s]
                ti[s] = xi[j, s]
            for p in range(l_indptr[j], l_indptr[j + 1]):
                i = l_indices[p]
                lr = l_data[p].real
                li = l_data[p].imag
                for s in range(nb):
                    xr[i, s] -= lr * tr[s] - li * ti[s]
                    xi[i, s] -= lr * ti[s] + li * tr[s]
        for j in range(n - 1, -1, -1):
            dr = u_inv_diag[j].real
            di = u_inv_diag[j].imag
            for s in range(nb):
                pr = xr[j, s]
                pi = xi[j, s]
                tr[s] = dr * pr - di * pi
                ti[s] = dr * pi + di * pr
                xr[j, s] = tr[s]
                xi[j, s] = ti[s]
            for p in range(u_indptr[j], u_indptr[j + 1]):
                i = u_indices[p]
                ur = u_data[p].real
                ui = u_data[p].imag
                for s in range(nb):
                    xr[i, s] -= ur * tr[s] - ui * ti[s]
                    xi[i, s] -= ur * ti[s] + ui * tr[s]
        for k in range(n):
            r = perm_c[k]
            v0r = v0[k].real
            v0i = v0[k].imag
            scale = inv_base[k]
            col = out_cols[k]
            for s in range(nb):
                vr = v0r + xr[r, s]
                vi = v0i + xi[r, s]
                out[s0 + s, col] = math.sqrt(vr * vr + vi * vi) * scale
