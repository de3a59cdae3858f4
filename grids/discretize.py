"""Exact zero-order-hold discretization of linear time-invariant systems (one shared helper).

Every linear model stepped with the co-simulation clock (the swing equation, the virtual
synchronous machine, first-order lags) uses the same rule: with the input held constant over
a step ``dt``, ``x(t + dt) = A_d x(t) + B_d u`` exactly, stable for any ``dt``.

References
----------
.. [1] C. F. Van Loan, "Computing integrals involving the matrix exponential", IEEE Trans.
   Automatic Control 23(3), 395-404, 1978.
.. [2] G. F. Franklin, J. D. Powell, M. L. Workman, "Digital Control of Dynamic Systems",
   3rd ed., Addison-Wesley, 1998, sec. 4.3.3.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import expm


def zoh(a, b, dt_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Zero-order-hold discretization ``(A_d, B_d)`` of ``dx/dt = A x + B u``.

    Parameters
    ----------
    a : array_like, shape (n, n)
        State matrix [1/s].
    b : array_like, shape (n, m) or (n,)
        Input matrix [state unit / (input unit s)]; a 1-d ``b`` is one input.
    dt_s : float
        Step [s] (>= 0).

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        ``A_d = exp(A dt)`` of shape (n, n) and ``B_d = int_0^dt exp(A s) ds B`` of the shape
        of ``b``.

    Notes
    -----
    ``expm([[A, B], [0, 0]] dt) = [[A_d, B_d], [0, I]]`` (Van Loan 1978), computed with
    :func:`scipy.linalg.expm` (scaling and squaring, Pade approximation). A singular ``A``
    (integrators) needs no special case.

    References
    ----------
    .. [1] C. F. Van Loan, IEEE Trans. Automatic Control 23(3), 395-404, 1978.

    Examples
    --------
    A first-order lag ``tau dy/dt = u - y``: ``A_d = exp(-dt/tau)``, ``B_d = 1 - exp(-dt/tau)``.

    >>> ad, bd = zoh([[-0.5]], [[0.5]], 2.0)
    >>> round(float(ad[0, 0]), 6), round(float(bd[0, 0]), 6)
    (0.367879, 0.632121)
    """
    a = np.atleast_2d(np.asarray(a, dtype=float))
    b_in = np.asarray(b, dtype=float)
    b2 = b_in.reshape(-1, 1) if b_in.ndim == 1 else b_in
    n, m = b2.shape
    if a.shape != (n, n):
        raise ValueError(f"zoh: a has shape {a.shape}, b has {b_in.shape}: need (n, n), (n, m)")
    if not dt_s >= 0.0:
        raise ValueError(f"zoh: dt_s = {dt_s!r} must be >= 0")
    big = np.zeros((n + m, n + m))
    big[:n, :n] = a * dt_s
    big[:n, n:] = b2 * dt_s
    e = expm(big)
    ad = e[:n, :n].copy()
    bd = e[:n, n:].copy()
    return ad, (bd.ravel() if b_in.ndim == 1 else bd)


__all__ = ["zoh"]
