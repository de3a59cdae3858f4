"""Node voltages of a solved three-phase batch, formed on demand.

The solvers of :mod:`grids.powerflow3ph` iterate only on the nodes that carry a load or an
injection; every node's voltage is ``V = V0 + Y^-1 P I_A`` with the currents ``I_A`` injected
there. :class:`NodeVoltages` keeps the solved active voltages and forms the rest when asked:
a few nodes through their impedance columns ``Z_NA`` (:meth:`NodeVoltages.at_v`, the
currents formed on first use), all magnitudes from the passive nodes' own equations
``Y_PP V_P = I_s,P - Y_PA V_A`` by sparse triangular solves with the LU factors of ``Y_PP``
(:class:`PassiveSolve`): no branch currents, and factors smaller than ``Y``'s (IEEE 123:
1,424 entries against 2,298).

References
----------
T. A. Davis, "Direct Methods for Sparse Linear Systems", SIAM, 2006, ch. 3 (triangular
solves) and 6 (LU); X. S. Li, "An overview of SuperLU", ACM TOMS 31 (2005) 302-325.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from grids.powerflow3ph_kernels import passive_magnitudes_kernel, small_matmul

#: Batches up to this many scenarios iterate in one compiled loop per scenario; larger ones
#: iterate all scenarios together with one dense matrix product per iteration.
SMALL_BATCH = 8
#: Column ordering and diagonal pivot threshold of every three-phase sparse LU (SuperLU):
#: minimum degree on ``A^T + A``, the diagonal kept as pivot down to 1e-3 of its column's
#: largest entry (KLU's default threshold, the solver of OpenDSS). An admittance matrix has a
#: symmetric structure and a natural diagonal pivot: the factors of IEEE 123 hold 2,298
#: entries against 3,733 with COLAMD and partial pivoting, the European LV feeder's 25,953
#: against 48,805, and the magnitudes of every node form 1.9x and 2.5x faster. The
#: rounding of ``Y^-1`` moves by ~2e-10 pu between the two orderings (stiff sources put
#: 1e7 S in ``Y``); both solver paths use this one.
LU_PERMC_SPEC = "MMD_AT_PLUS_A"
LU_DIAG_PIVOT_THRESH = 1e-3


def factor_lu(matrix):
    """Sparse LU of a complex network matrix (:data:`LU_PERMC_SPEC`).

    Parameters
    ----------
    matrix : scipy.sparse matrix (n, n)

    Returns
    -------
    scipy.sparse.linalg.SuperLU

    Raises
    ------
    RuntimeError
        SuperLU's "Factor is exactly singular".
    """
    return spla.splu(
        sp.csc_matrix(matrix, dtype=complex),
        permc_spec=LU_PERMC_SPEC,
        diag_pivot_thresh=LU_DIAG_PIVOT_THRESH,
    )


def matmul_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b``, by a compiled loop for a few rows of ``a``, by BLAS otherwise.

    Parameters
    ----------
    a : numpy.ndarray (m, k)
    b : numpy.ndarray (k, n)

    Returns
    -------
    numpy.ndarray (m, n)
        The product (complex if either operand is).
    """
    if a.shape[0] > SMALL_BATCH:
        return a @ b
    dtype = np.result_type(a.dtype, b.dtype)
    out = np.empty((a.shape[0], b.shape[1]), dtype=dtype)
    small_matmul(np.ascontiguousarray(a, dtype=dtype), np.ascontiguousarray(b, dtype=dtype), out)
    return out


@dataclass(frozen=True)
class TriangularFactors:
    """The sparse LU factors of ``Y`` as arrays for the compiled triangular solves.

    ``Pr Y Pc = L U`` (SuperLU, ``scipy.sparse.linalg.splu``); ``L`` keeps its strictly lower
    part (unit diagonal), ``U`` its strictly upper part and the inverse of its diagonal.

    Attributes
    ----------
    l_csc, u_csc : tuple of numpy.ndarray
        ``(indptr, indices, data)`` of the strictly lower ``L`` and strictly upper ``U``.
    u_inv_diag : numpy.ndarray (n,) complex
        ``1 / diag(U)``.
    perm_r, perm_c : numpy.ndarray (n,) of int
        Row and column permutations.
    """

    l_csc: tuple[np.ndarray, np.ndarray, np.ndarray]
    u_csc: tuple[np.ndarray, np.ndarray, np.ndarray]
    u_inv_diag: np.ndarray
    perm_r: np.ndarray
    perm_c: np.ndarray

    @classmethod
    def from_splu(cls, lu) -> TriangularFactors:
        """Arrays of a SuperLU factorization.

        Parameters
        ----------
        lu : scipy.sparse.linalg.SuperLU

        Returns
        -------
        TriangularFactors
        """

        def part(matrix, keep) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            coo = sp.coo_matrix(matrix)
            mask = keep(coo.row, coo.col)
            csc = sp.csc_matrix(
                (coo.data[mask], (coo.row[mask], coo.col[mask])), shape=matrix.shape
            )
            csc.sort_indices()
            return (
                csc.indptr.astype(np.int64),
                csc.indices.astype(np.int64),
                csc.data.astype(complex),
            )

        return cls(
            part(lu.L, lambda r, c: r > c),
            part(lu.U, lambda r, c: r < c),
            1.0 / lu.U.diagonal().astype(complex),
            np.asarray(lu.perm_r, dtype=np.int64),
            np.asarray(lu.perm_c, dtype=np.int64),
        )


@dataclass(frozen=True)
class PassiveSolve:
    """Voltages of the passive nodes (no load branch) from those of the active nodes.

    No branch current enters a passive node, so ``Y_PP V_P = I_s,P - Y_PA V_A``: one sparse
    solve with the factors of ``Y_PP`` (smaller than ``Y``'s) per scenario, from the solved
    ``V_A`` alone (no branch currents needed).

    Attributes
    ----------
    active, passive : numpy.ndarray of int
        The node sets.
    factors : TriangularFactors or None
        LU of ``Y_PP`` (None without passive nodes).
    y_pa : scipy.sparse.csr_matrix (nP, nA) complex
        ``Y_PA`` [S].
    v0_p_v : numpy.ndarray (nP,) complex
        ``Y_PP^-1 I_s,P`` [V] (the passive voltages with the active nodes grounded).
    """

    active: np.ndarray
    passive: np.ndarray
    factors: TriangularFactors | None
    y_pa: sp.csr_matrix
    v0_p_v: np.ndarray

    @classmethod
    def build(cls, y, i_source_a: np.ndarray, active: np.ndarray) -> PassiveSolve | None:
        """Factor ``Y_PP`` for the active set.

        Parameters
        ----------
        y : scipy.sparse matrix (n, n) complex
            Network plus source admittance [S].
        i_source_a : numpy.ndarray (n,) complex
            Source currents [A].
        active : numpy.ndarray of int
            Active nodes.

        Returns
        -------
        PassiveSolve or None
            None when ``Y_PP`` is singular (a passive part referenced to ground only through
            active nodes' voltages cannot be: the magnitudes then go through the impedance
            columns, :meth:`NodeVoltages.magnitude_pu`).
        """
        y = sp.csr_matrix(y, dtype=complex)
        passive = np.setdiff1d(np.arange(y.shape[0]), active)
        rows = y[passive]
        if passive.size == 0:
            lu_factors = None
            v0_p = np.zeros(0, dtype=complex)
        else:
            try:
                lu = factor_lu(rows[:, passive])
            except RuntimeError:  # "Factor is exactly singular"
                return None
            lu_factors = TriangularFactors.from_splu(lu)
            v0_p = lu.solve(np.asarray(i_source_a, dtype=complex)[passive])
        return cls(np.asarray(active), passive, lu_factors, sp.csr_matrix(rows[:, active]), v0_p)

    def magnitude_pu(self, v_active_v: np.ndarray, v_base_v: np.ndarray) -> np.ndarray:
        """Every node's voltage magnitude.

        Parameters
        ----------
        v_active_v : numpy.ndarray (S, nA) complex
            Solved active-node voltages [V].
        v_base_v : numpy.ndarray (n,)
            Base voltages [V].

        Returns
        -------
        numpy.ndarray (S, n)
            ``|V| / V_base`` [pu].
        """
        inv_base = 1.0 / np.asarray(v_base_v, dtype=float)
        v_active_v = np.ascontiguousarray(v_active_v, dtype=complex)
        out = np.empty((v_active_v.shape[0], inv_base.size))
        if self.factors is None:
            out[:] = np.abs(v_active_v) * inv_base[self.active]
            return out
        block = 128
        f, y_pa = self.factors, self.y_pa
        passive_magnitudes_kernel(
            v_active_v,
            self.active,
            inv_base[self.active],
            y_pa.data,
            y_pa.indices,
            y_pa.indptr,
            f.perm_r,
            *f.l_csc,
            *f.u_csc,
            f.u_inv_diag,
            f.perm_c,
            self.v0_p_v,
            inv_base[self.passive],
            self.passive,
            np.empty((self.passive.size, block)),
            np.empty((self.passive.size, block)),
            np.empty((self.active.size, block)),
            np.empty((self.active.size, block)),
            out,
        )
        return out


@dataclass(frozen=True)
class NodeVoltages:
    """All node voltages of a batch, kept as ``V = V0 + I_A Z_NA^T`` until asked for.

    The solve only needs the nodes that carry a branch; the other nodes' voltages are one
    product away. :meth:`full_v` forms them all, :meth:`at_v` only some columns; the
    injected currents ``I_A`` are formed on first use. :meth:`magnitude_pu` forms every
    magnitude from the active voltages alone when given them (:class:`PassiveSolve`).

    Attributes
    ----------
    v0_v : numpy.ndarray (n,) complex
        No-load voltages [V].
    z_an : numpy.ndarray (nA, n) complex
        Rows of ``Z = Y^-1`` at the active nodes (``Z_NA`` transposed, contiguous) [Ohm].
    currents : callable
        Returns the currents injected at the active nodes, ``(S, nA)`` complex [A].
    v_active_v : numpy.ndarray (S, nA) complex or None
        The solved active-node voltages [V].
    passive : PassiveSolve or None
        Solve for the passive nodes from ``v_active_v``.
    """

    v0_v: np.ndarray
    z_an: np.ndarray
    currents: Callable[[], np.ndarray]
    v_active_v: np.ndarray | None = None
    passive: PassiveSolve | None = None

    @cached_property
    def i_active_a(self) -> np.ndarray:
        """Currents injected at the active nodes (formed on first use).

        Returns
        -------
        numpy.ndarray (S, nA) complex
            [A].
        """
        return self.currents()

    def full_v(self) -> np.ndarray:
        """Every node voltage.

        Returns
        -------
        numpy.ndarray (S, n) complex
            [V].
        """
        return self.v0_v[None, :] + matmul_rows(self.i_active_a, self.z_an)

    def magnitude_pu(self, v_base_v: np.ndarray, *, chunk: int = 256) -> np.ndarray:
        """Every node's voltage magnitude, formed a block of scenarios at a time.

        Parameters
        ----------
        v_base_v : numpy.ndarray (n,)
            Base voltage per node [V].
        chunk : int, keyword-only
            Scenarios per block (the complex voltages of one block only are held).

        Returns
        -------
        numpy.ndarray (S, n)
            ``|V| / V_base`` [pu].
        """
        if self.passive is not None and self.v_active_v is not None:
            return self.passive.magnitude_pu(self.v_active_v, v_base_v)
        n_scen, n = self.i_active_a.shape[0], self.v0_v.size
        out = np.empty((n_scen, n))
        z_t = self.z_an
        inv_base = 1.0 / np.asarray(v_base_v, dtype=float)
        block = np.empty((min(chunk, max(n_scen, 1)), n), dtype=complex)
        for start in range(0, n_scen, chunk):
            stop = min(start + chunk, n_scen)
            part = block[: stop - start]
            if stop - start <= SMALL_BATCH:
                small_matmul(self.i_active_a[start:stop], z_t, part)
            else:
                np.matmul(self.i_active_a[start:stop], z_t, out=part)
            part += self.v0_v
            np.abs(part, out=out[start:stop])
            out[start:stop] *= inv_base
        return out

    def at_v(self, nodes: np.ndarray) -> np.ndarray:
        """Voltages of some nodes.

        Parameters
        ----------
        nodes : numpy.ndarray of int
            Node indices.

        Returns
        -------
        numpy.ndarray (S, len(nodes)) complex
            [V].
        """
        nodes = np.asarray(nodes, dtype=np.int64)
        return self.v0_v[None, nodes] + matmul_rows(self.i_active_a, self.z_an[:, nodes])
