"""Cold-load pickup (CLPU): the inrush of a load block re-energised after an outage.

After an outage, thermostatic loads (heating, cooling, refrigeration) have lost their
diversity and all switch on together, and motors draw starting current: the block draws a
multiple ``K`` of its normal (diversified) demand, decaying back to it. The usual
exponential model is

.. math::

    P(t) = P_{div} \\left[1 + (K - 1)\\, e^{-(t - t_d)/\\tau}\\right], \\qquad t \\ge t_d

and ``P = 0`` before the pickup instant ``t_d``.

References
----------
.. [1] J. Aubin, R. Bergeron, R. Morin, "Distribution transformer overloading capability
   under cold-load pickup conditions", IEEE Trans. Power Delivery 5(4), 1883-1891, 1990.
.. [2] IEEE PES Task Force on Cold Load Pickup, "Cold load pickup issues", IEEE Trans. Power
   Apparatus and Systems PAS-98(5), 1979 (exponential decay of the undiversified demand).
"""

from __future__ import annotations

import numpy as np


def cold_load_pickup_factor(t_s, *, t_pickup_s: float, k_inrush: float, tau_s: float) -> np.ndarray:
    """Demand of a picked-up block as a multiple of its diversified demand [-].

    Parameters
    ----------
    t_s : array_like
        Times [s].
    t_pickup_s : float
        Pickup (energisation) instant ``t_d`` [s].
    k_inrush : float
        Ratio ``K`` of the demand right after pickup to the diversified demand [-] (>= 1).
    tau_s : float
        Decay time constant ``τ`` [s] (> 0).

    Returns
    -------
    numpy.ndarray
        ``0`` before ``t_d``, ``1 + (K − 1)·exp(−(t − t_d)/τ)`` from ``t_d`` on.

    Notes
    -----
    ``P(t) = P_div · factor(t)``; the energy above the diversified demand is
    ``P_div (K − 1) τ`` (the integral of the decaying term).
    """
    t = np.asarray(t_s, dtype=float)
    elapsed = t - t_pickup_s
    on = elapsed >= 0.0
    decay = np.exp(-np.where(on, elapsed, 0.0) / tau_s)
    return np.where(on, 1.0 + (k_inrush - 1.0) * decay, 0.0)
