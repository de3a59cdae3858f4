"""Symmetrical components (Fortescue) and the voltage unbalance factor.

    [V0, V1, V2]^T = 1/3 [[1, 1, 1], [1, a, a^2], [1, a^2, a]] [Va, Vb, Vc]^T,  a = e^{j 120 deg}

VUF = 100 |V2| / |V1| [%] (IEC 61000-2-12 / EN 50160 "negative-sequence unbalance"; the limit
of EN 50160 is 2 % for 95 % of the 10-minute means of a week).

Reference: C. L. Fortescue, "Method of symmetrical co-ordinates applied to the solution of
polyphase networks", AIEE Trans. 37 (1918) 1027-1140.
"""

from __future__ import annotations

import numpy as np

#: The Fortescue operator a = e^{j 2 pi / 3}.
A_OPERATOR = np.exp(2j * np.pi / 3.0)
#: Matrix from phase (a, b, c) to sequence (0, 1, 2) components.
PHASE_TO_SEQUENCE = (
    np.array(
        [
            [1.0, 1.0, 1.0],
            [1.0, A_OPERATOR, A_OPERATOR**2],
            [1.0, A_OPERATOR**2, A_OPERATOR],
        ]
    )
    / 3.0
)


def sequence_components(v_abc: np.ndarray) -> np.ndarray:
    """Zero, positive and negative sequence components of phase phasors.

    Parameters
    ----------
    v_abc : numpy.ndarray (..., 3) complex
        Phase phasors a, b, c on the last axis (any unit).

    Returns
    -------
    numpy.ndarray (..., 3) complex
        ``[V0, V1, V2]`` on the last axis (same unit), ``V = T v_abc`` with the Fortescue
        matrix ``T`` of :data:`PHASE_TO_SEQUENCE`.
    """
    v = np.asarray(v_abc, dtype=complex)
    if v.shape[-1] != 3:
        raise ValueError(f"v_abc: last axis must hold the 3 phases, got shape {v.shape}")
    va, vb, vc = v[..., 0], v[..., 1], v[..., 2]
    a, a2 = A_OPERATOR, A_OPERATOR**2
    # the rows of PHASE_TO_SEQUENCE written out (faster than a matmul over a 3-long axis)
    return np.stack([va + vb + vc, va + a * vb + a2 * vc, va + a2 * vb + a * vc], axis=-1) / 3.0


def voltage_unbalance_factor_percent(v_abc: np.ndarray) -> np.ndarray:
    """Voltage unbalance factor ``VUF = 100 |V2| / |V1|`` [%].

    Parameters
    ----------
    v_abc : numpy.ndarray (..., 3) complex
        Phase-to-neutral phasors a, b, c on the last axis.

    Returns
    -------
    numpy.ndarray (...)
        VUF [%]; NaN where ``|V1| = 0``.
    """
    seq = sequence_components(v_abc)
    v1 = np.abs(seq[..., 1])
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(v1 > 0.0, 100.0 * np.abs(seq[..., 2]) / np.where(v1 > 0, v1, 1.0), np.nan)
