"""All-node voltages of a solved batch from its active nodes (grids/voltages3ph.py).

Reference: the passive nodes' own equations, ``Y_PP V_P = I_s,P - Y_PA V_A`` (no branch
current enters a passive node), against the dense solve of the full network equation
``Y V = I_s + I_A`` on a small random network; and the fallback when ``Y_PP`` is singular.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from grids.voltages3ph import NodeVoltages, PassiveSolve


def _network(n: int, seed: int = 2):
    """A connected network: a random tree of series admittances, a source at node 0."""
    rng = np.random.default_rng(seed)
    y = np.zeros((n, n), dtype=complex)
    for k in range(1, n):
        j = int(rng.integers(0, k))
        y_s = complex(rng.uniform(1, 5), -rng.uniform(2, 10))
        y[[k, j], [k, j]] += y_s
        y[k, j] -= y_s
        y[j, k] -= y_s
    y_src = 1e3 - 3e3j
    y[0, 0] += y_src
    i_source = np.zeros(n, dtype=complex)
    i_source[0] = y_src * 2400.0
    return y, i_source


def test_passive_magnitudes_equal_the_full_network_solution():
    """Five scenarios of random currents at four active nodes of a 9-node network: every
    magnitude, active from V_A and passive from Y_PP, equals |Y^-1 (I_s + I_A)| to 1e-12."""
    n = 9
    y, i_source = _network(n)
    active = np.array([2, 4, 5, 8])
    rng = np.random.default_rng(4)
    i_a = (rng.normal(size=(5, active.size)) + 1j * rng.normal(size=(5, active.size))) * 20.0
    rhs = np.repeat(i_source[None, :], 5, axis=0)
    rhs[:, active] += i_a
    v_full = np.linalg.solve(y, rhs.T).T
    v_base = np.full(n, 2400.0)
    passive = PassiveSolve.build(sp.csr_matrix(y), i_source, active)
    vm = passive.magnitude_pu(v_full[:, active], v_base)
    np.testing.assert_allclose(vm, np.abs(v_full) / v_base, rtol=1e-12)


def test_singular_passive_block_falls_back_to_the_impedance_columns():
    """A passive node whose own admittance is zero (``Y_PP`` singular, ``Y`` not): no
    PassiveSolve, and the magnitudes come from ``V0 + Z_NA I_A`` instead."""
    y = np.array([[2.0, 1.0], [1.0, 0.0]], dtype=complex)
    i_source = np.array([1.0, 0.5], dtype=complex)
    assert PassiveSolve.build(sp.csr_matrix(y), i_source, np.array([0])) is None
    z = np.linalg.inv(y)
    v0 = z @ i_source
    i_a = np.array([[0.3 + 0.1j], [-0.2j]])
    voltages = NodeVoltages(v0, np.ascontiguousarray(z[:, [0]].T), lambda: i_a, None, None)
    expected = np.abs(v0[None, :] + i_a @ z[:, [0]].T)
    np.testing.assert_allclose(voltages.magnitude_pu(np.ones(2)), expected, rtol=1e-12)
