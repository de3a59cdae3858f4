"""Symmetrical components and VUF (``grids.sequence``) against closed forms.

References: Fortescue (1918); a balanced positive-sequence set has V1 = Va, V0 = V2 = 0; a
set made of known sequence parts V0, V1, V2 (Va = V0 + V1 + V2, Vb = V0 + a^2 V1 + a V2,
Vc = V0 + a V1 + a^2 V2) returns exactly those parts (1e-12).
"""

from __future__ import annotations

import numpy as np
import pytest

from grids.sequence import A_OPERATOR, sequence_components, voltage_unbalance_factor_percent


def _from_sequence(v0, v1, v2):
    a = A_OPERATOR
    return np.stack([v0 + v1 + v2, v0 + a**2 * v1 + a * v2, v0 + a * v1 + a**2 * v2], axis=-1)


def test_balanced_set_is_pure_positive_sequence():
    v = 230.0 * np.exp(1j * np.radians([10.0, -110.0, 130.0]))
    seq = sequence_components(v)
    assert abs(seq[1] - v[0]) < 1e-12 * 230
    assert abs(seq[0]) < 1e-12 * 230 and abs(seq[2]) < 1e-12 * 230
    assert voltage_unbalance_factor_percent(v) == pytest.approx(0.0, abs=1e-12)


def test_known_sequence_parts_are_recovered_vectorized():
    rng = np.random.default_rng(3)
    shape = (4, 5)
    v0, v1, v2 = (rng.normal(size=shape) + 1j * rng.normal(size=shape) for _ in range(3))
    seq = sequence_components(_from_sequence(v0, v1, v2))
    np.testing.assert_allclose(seq, np.stack([v0, v1, v2], axis=-1), atol=1e-12)
    vuf = voltage_unbalance_factor_percent(_from_sequence(v0, v1, v2))
    np.testing.assert_allclose(vuf, 100.0 * np.abs(v2) / np.abs(v1), rtol=1e-12)


def test_one_phase_dip_closed_form():
    # Va = 1 - d, Vb, Vc nominal: V1 = 1 - d/3, V2 = -d/3 -> VUF = 100 d / (3 - d)
    d = 0.06
    v = np.array([1.0 - d, A_OPERATOR**2, A_OPERATOR])
    assert voltage_unbalance_factor_percent(v) == pytest.approx(100 * d / (3 - d), rel=1e-12)


def test_wrong_shape_is_an_error():
    with pytest.raises(ValueError, match="3 phases"):
        sequence_components(np.ones((2, 4)))
