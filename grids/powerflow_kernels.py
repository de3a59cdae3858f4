"""Compiled kernels of :class:`grids.powerflow.ACPowerFlow` for one scenario at a time.

A time series solves one power flow per step, warm-started from the previous step. For a
distribution feeder of a few dozen buses the batched numpy path of
:meth:`grids.powerflow.ACPowerFlow.solve` then spends nearly all of its time in the overhead of
small numpy calls; these numba kernels do the same chord-Newton iterations (same mismatch, same
update, same stopping rule) and the same branch-flow products in one compiled pass each.

The solution is fixed by the exact mismatch ``S_calc(V) - S_spec`` and the tolerance, not by
the kernel: ``tests/grids/test_powerflow.py`` checks that the kernels and the batched path
agree, and both against pandapower ``runpp``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True)
def _csr_dot(data, indices, indptr, v, out):  # pragma: no cover - compiled
    """``out = M @ v`` for a CSR matrix ``M`` (complex)."""
    for row in range(indptr.shape[0] - 1):
        acc = 0j
        for k in range(indptr[row], indptr[row + 1]):
            acc += data[k] * v[indices[k]]
        out[row] = acc


@njit(cache=True)
def chord_solve(
    y_data, y_indices, y_indptr, s_spec, v, inverse_t, pvpq, pq, tol_pu, max_iteration
):  # pragma: no cover - compiled
    """Chord-Newton iterations for one scenario, in place on ``v``.

    Parameters
    ----------
    y_data, y_indices, y_indptr : ndarray
        Bus admittance matrix ``Ybus`` in CSR form [pu].
    s_spec : ndarray (n,) complex
        Specified complex power injection per internal bus [pu].
    v : ndarray (n,) complex
        Initial voltages [pu]; overwritten with the last iterate.
    inverse_t : ndarray (m, m)
        Transposed inverse of the polar Jacobian at the chord point (``m = n_pvpq + n_pq``).
    pvpq, pq : ndarray of int
        PV then PQ buses; PQ buses.
    tol_pu : float
        Convergence when ``max |F| < tol_pu`` (P of PV and PQ buses, Q of PQ buses).
    max_iteration : int
        Most chord updates.

    Returns
    -------
    converged : bool
    iterations : int
        Chord updates applied.
    norm : float
        ``max |F|`` of the last iterate [pu].

    Notes
    -----
    ``x <- x - J0^-1 F(x)`` with ``x = [va(pvpq), vm(pq)]`` and ``F = [dP(pvpq), dQ(pq)]``,
    ``dS = V conj(Ybus V) - S_spec``; the Jacobian ``J0`` stays fixed (chord method). The
    iteration stops, not converged, when the mismatch does not halve over two updates (the
    rule of the batched path, which then finishes with full Newton-Raphson) or is not finite.
    """
    n = v.shape[0]
    n_pvpq = pvpq.shape[0]
    n_pq = pq.shape[0]
    m = n_pvpq + n_pq
    va = np.empty(n)
    vm = np.empty(n)
    for b in range(n):
        va[b] = math.atan2(v[b].imag, v[b].real)
        vm[b] = abs(v[b])
    current = np.empty(n, dtype=np.complex128)
    f = np.empty(m)
    dx = np.empty(m)
    norm_previous = np.inf
    norm_before = np.inf
    for iteration in range(max_iteration + 1):
        _csr_dot(y_data, y_indices, y_indptr, v, current)
        norm = 0.0
        for i in range(n_pvpq):
            b = pvpq[i]
            f[i] = (v[b] * current[b].conjugate() - s_spec[b]).real
            norm = max(norm, abs(f[i]))
        for i in range(n_pq):
            b = pq[i]
            f[n_pvpq + i] = (v[b] * current[b].conjugate() - s_spec[b]).imag
            norm = max(norm, abs(f[n_pvpq + i]))
        if not math.isfinite(norm):
            return False, iteration, norm
        if norm < tol_pu:
            return True, iteration, norm
        if iteration >= 2 and norm > 0.5 * norm_before:  # stalled: no halving over two
            return False, iteration, norm
        if iteration == max_iteration:
            break
        norm_before = norm_previous
        norm_previous = norm
        for j in range(m):
            dx[j] = 0.0
        for i in range(m):
            fi = f[i]
            for j in range(m):
                dx[j] += fi * inverse_t[i, j]
        for i in range(n_pvpq):
            va[pvpq[i]] -= dx[i]
        for i in range(n_pq):
            vm[pq[i]] -= dx[n_pvpq + i]
        for b in range(n):
            v[b] = vm[b] * complex(math.cos(va[b]), math.sin(va[b]))
    return False, max_iteration, norm


@njit(cache=True)
def single_results(
    y_csr,
    yf_csr,
    yt_csr,
    v,
    s_spec,
    base_mva,
    ref,
    f_bus,
    t_bus,
    base_kv,
    bus_internal,
    line_rows,
    line_i_max_ka,
    trafo_rows,
    trafo_vn_kv,
    trafo_by_current,
    trafo_rating_mva,
):  # pragma: no cover - compiled
    """The results of :meth:`ACPowerFlow._results` for one converged scenario, in one pass.

    Bus power ``S = V conj(Ybus V)``, branch end powers ``S_f = V_f conj(Yf V)`` and
    ``S_t = V_t conj(Yt V)`` [pu x ``base_mva``], end currents ``|S| / (sqrt(3) |V| V_base)``
    [kA]; line loading ``max(I_f, I_t) / I_max``, transformer loading
    ``max(I_hv V_hv, I_lv V_lv) sqrt(3) / S_n`` (or ``max(|S_hv|, |S_lv|) / S_n`` when
    ``trafo_by_current`` is false) [%]. Same definitions as the batched numpy path.

    Parameters
    ----------
    y_csr, yf_csr, yt_csr : tuple of ndarray
        ``(data, indices, indptr)`` of ``Ybus``, ``Yf``, ``Yt`` [pu].
    v : ndarray (n,) complex
        Converged internal bus voltages [pu].
    s_spec : ndarray (n,) complex
        Specified injection per internal bus [pu].
    base_mva : float
        Power base [MVA].
    ref : ndarray of int
        Slack (reference) internal buses.
    f_bus, t_bus : ndarray of int
        From/to internal bus of every branch.
    base_kv : ndarray (n,)
        Base voltage of every internal bus [kV].
    bus_internal : ndarray of int
        Internal bus of every pandapower bus (-1: none).
    line_rows, trafo_rows : ndarray of int
        Branch rows of the in-service lines and transformers.
    line_i_max_ka : ndarray
        Line rating ``max_i_ka * df * parallel`` [kA].
    trafo_vn_kv : ndarray (n_trafo, 2)
        Rated HV and LV voltages [kV].
    trafo_by_current : bool
        Loading from currents (pandapower's default) or from apparent power.
    trafo_rating_mva : ndarray
        ``sn_mva * df * parallel`` [MVA].

    Returns
    -------
    vm_bus, va_bus_degree : ndarray (n_pp_bus,)
        NaN for buses without an internal bus.
    s_loss, s_slack : complex
        Series losses of all branches; power supplied by the slack buses [MVA].
    line_loading, trafo_loading : ndarray [%]
    """
    y_data, y_indices, y_indptr = y_csr
    n = v.shape[0]
    n_br = f_bus.shape[0]
    current = np.empty(n, dtype=np.complex128)
    _csr_dot(y_data, y_indices, y_indptr, v, current)
    s_slack = 0j
    for k in range(ref.shape[0]):
        b = ref[k]
        s_slack += (v[b] * current[b].conjugate() - s_spec[b]) * base_mva
    i_from = np.empty(n_br, dtype=np.complex128)
    i_to = np.empty(n_br, dtype=np.complex128)
    _csr_dot(yf_csr[0], yf_csr[1], yf_csr[2], v, i_from)
    _csr_dot(yt_csr[0], yt_csr[1], yt_csr[2], v, i_to)
    s_loss = 0j
    s_from = np.empty(n_br, dtype=np.complex128)
    s_to = np.empty(n_br, dtype=np.complex128)
    ka_from = np.empty(n_br)
    ka_to = np.empty(n_br)
    root3 = math.sqrt(3.0)
    for k in range(n_br):
        vf = v[f_bus[k]]
        vt = v[t_bus[k]]
        s_from[k] = vf * i_from[k].conjugate() * base_mva
        s_to[k] = vt * i_to[k].conjugate() * base_mva
        s_loss += s_from[k] + s_to[k]
        ka_from[k] = abs(s_from[k]) / (abs(vf) * base_kv[f_bus[k]] * root3)
        ka_to[k] = abs(s_to[k]) / (abs(vt) * base_kv[t_bus[k]] * root3)
    n_bus = bus_internal.shape[0]
    vm_bus = np.full(n_bus, np.nan)
    va_bus = np.full(n_bus, np.nan)
    for i in range(n_bus):
        b = bus_internal[i]
        if b >= 0:
            vm_bus[i] = abs(v[b])
            va_bus[i] = math.degrees(math.atan2(v[b].imag, v[b].real))
    line_loading = np.empty(line_rows.shape[0])
    for i in range(line_rows.shape[0]):
        r = line_rows[i]
        line_loading[i] = max(ka_from[r], ka_to[r]) / line_i_max_ka[i] * 100.0
    trafo_loading = np.empty(trafo_rows.shape[0])
    for i in range(trafo_rows.shape[0]):
        r = trafo_rows[i]
        if trafo_by_current:
            hv = ka_from[r] * trafo_vn_kv[i, 0]
            lv = ka_to[r] * trafo_vn_kv[i, 1]
            trafo_loading[i] = max(hv, lv) * root3 / trafo_rating_mva[i] * 100.0
        else:
            s_max = max(abs(s_from[r]), abs(s_to[r]))
            trafo_loading[i] = s_max / trafo_rating_mva[i] * 100.0
    return vm_bus, va_bus, s_loss, s_slack, line_loading, trafo_loading
