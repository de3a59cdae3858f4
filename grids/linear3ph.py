"""Linear power flow for unbalanced multiphase feeders: the fixed-point linearisation.

With every node that is not a source node collected in ``L`` and the source voltages
:math:`v_0` fixed, the nodal equations :math:`Y_{LL} v + Y_{L0} v_0 = i` and constant-power
injections :math:`s` (wye, line-to-neutral) give the Z-bus fixed point

.. math::

    v = w + Z \\, \\overline{\\mathrm{diag}(v)^{-1} s},
    \\qquad Z = Y_{LL}^{-1}, \\quad w = -Z Y_{L0} v_0 .

Freezing the voltage in the injected current at a point :math:`\\hat v` makes the map
linear in the injections (Bernstein & Dall'Anese 2017, eq. (9)):

.. math::

    v \\approx w + Z \\, \\mathrm{diag}(\\overline{\\hat v})^{-1} \\, \\overline{s}
             + Z H^T \\mathrm{diag}(\\overline{H \\hat v})^{-1} \\, \\overline{s_\\Delta}

for wye injections :math:`s` and line-to-line (delta) injections :math:`s_\\Delta` between the
node pairs of :math:`H` (a row per pair: +1 at the first node, -1 at the second). The model
here linearises around an operating point (a solved base case, with its loads), and takes
*extra* injections :math:`\\Delta s` on top of it:

.. math::

    v(\\Delta s) \\approx \\hat v + M_Y \\overline{\\Delta s_Y} + M_\\Delta \\overline{\\Delta
    s_\\Delta}, \\qquad M_Y = Z \\,\\mathrm{diag}(\\overline{\\hat v})^{-1},\\;
    M_\\Delta = Z H^T \\mathrm{diag}(\\overline{H \\hat v})^{-1},

which is exact at :math:`\\Delta s = 0`; the loads of the base case keep the current they
draw at :math:`\\hat v`, so the error is first order in the voltage change times the base
load (:attr:`LinearForm.FIXED_POINT`). :attr:`LinearForm.FIRST_ORDER` (the default when the
operating point's net injections :math:`\\hat s` are known) adds their constant-power response
and is the first-order Taylor expansion of the fixed point, with a second-order error:

.. math::

    Y_{LL}\\, \\Delta v + \\mathrm{diag}\\!\\left(\\overline{\\hat s} / \\overline{\\hat v}^2
    \\right) \\overline{\\Delta v} = \\mathrm{diag}(\\overline{\\hat v})^{-1}
    \\overline{\\Delta s_Y} + H^T \\mathrm{diag}(\\overline{H \\hat v})^{-1}
    \\overline{\\Delta s_\\Delta},

a sparse real-linear system in :math:`(\\mathrm{Re}\\,\\Delta v, \\mathrm{Im}\\,\\Delta v)`,
factorised once (the fixed-point form is the same without the second term). Magnitudes and
unbalance are evaluated from the complex voltages, so the voltage unbalance factor comes out
of the same model. Everything is vectorized over scenarios: ``(n_scen, n_node)`` injections
give ``(n_scen, n_node)`` voltages in one matrix product.

Units: admittances in siemens, voltages in volts (``v_base_v`` per node turns them into pu),
injections in MW / Mvar (injection positive: a charging EV is negative P).

References
----------
.. [1] A. Bernstein and E. Dall'Anese, "Linear power-flow models in multiphase distribution
   networks," IEEE PES ISGT Europe 2017, doi:10.1109/ISGTEurope.2017.8260205.
.. [2] A. Bernstein, C. Wang, E. Dall'Anese, J.-Y. Le Boudec, C. Zhao, "Load flow in
   multiphase distribution networks: existence, uniqueness, non-singularity and linear
   models," IEEE Trans. Power Systems 33(6), 5832-5843, 2018.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import splu

from grids.errors import FeederError, ScenarioError

_VA_PER_MVA = 1e6


class LinearForm(Enum):
    """Which linearisation of the multiphase power flow."""

    #: loads hold the current they draw at the operating point (Bernstein & Dall'Anese 2017)
    FIXED_POINT = "fixed_point"
    #: the operating point's injections respond as constant power (first-order Taylor form)
    FIRST_ORDER = "first_order"


def net_injection_va(
    y_ll_s, *, v_point_v: np.ndarray, i_source_a: np.ndarray | None = None
) -> np.ndarray:
    """Net complex power injected at each node at a solved operating point.

    Parameters
    ----------
    y_ll_s : array or scipy sparse matrix
        :math:`Y_{LL}` ``(n_node, n_node)`` [S] (network and source impedances).
    v_point_v : numpy.ndarray
        Complex node voltages [V], ``(n_node,)``.
    i_source_a : numpy.ndarray, optional
        Complex Norton current of the sources per node [A], ``(n_node,)``
        (:math:`-Y_{L0} v_0` when the source nodes are eliminated instead).

    Returns
    -------
    numpy.ndarray
        :math:`\\hat s = \\hat v \\, \\overline{(Y_{LL} \\hat v - i_s)}` [VA] per node,
        injection positive (the loads' draw, as wye equivalents).
    """
    v = np.asarray(v_point_v, dtype=complex)
    current_a = np.asarray(y_ll_s @ v).ravel()
    if i_source_a is not None:
        current_a = current_a - np.asarray(i_source_a, dtype=complex).ravel()
    return v * np.conj(current_a)


@dataclass(frozen=True)
class LinearThreePhaseModel:
    """Linearisation of a multiphase feeder around an operating point.

    Attributes
    ----------
    v_point_v : numpy.ndarray
        Complex phase-to-neutral voltage of every non-source node at the linearisation
        point [V], shape ``(n_node,)``.
    v_base_v : numpy.ndarray
        Base (phase-to-neutral) voltage per node [V], for per-unit magnitudes.
    delta_pairs : numpy.ndarray
        ``(n_pair, 2)`` node indices of the line-to-line injections (may be empty).
    form : LinearForm
        The linearisation.
    """

    v_point_v: np.ndarray
    v_base_v: np.ndarray
    delta_pairs: np.ndarray
    form: LinearForm
    factor: object = field(repr=False, compare=False)

    @classmethod
    def from_admittance(
        cls,
        y_ll_s,
        *,
        v_point_v: np.ndarray,
        v_base_v: np.ndarray | float,
        delta_pairs: np.ndarray | None = None,
        s_point_va: np.ndarray | None = None,
    ) -> LinearThreePhaseModel:
        """Linearise from the nodal admittance matrix of the non-source nodes.

        Parameters
        ----------
        y_ll_s : array or scipy sparse matrix
            :math:`Y_{LL}` [S], ``(n_node, n_node)`` complex: lines, transformers, shunt
            capacitors, without the loads.
        v_point_v : numpy.ndarray
            Complex node voltages at the operating point [V], ``(n_node,)`` (a solved base
            case, or :math:`w` for the no-load linearisation of [1]_).
        v_base_v : numpy.ndarray or float
            Base phase-to-neutral voltage per node [V].
        delta_pairs : numpy.ndarray, optional
            ``(n_pair, 2)`` node indices for line-to-line injections.
        s_point_va : numpy.ndarray, optional
            Net complex injection per node at the operating point [VA]
            (:func:`net_injection_va`); given, the form is :attr:`LinearForm.FIRST_ORDER`,
            otherwise :attr:`LinearForm.FIXED_POINT`.

        Returns
        -------
        LinearThreePhaseModel

        Raises
        ------
        FeederError
            Shapes that do not match, a singular system (a part of the feeder not connected
            to the source), or a node with zero voltage at the operating point.
        """
        y = sp.csc_matrix(y_ll_s, dtype=complex)
        v = np.asarray(v_point_v, dtype=complex).ravel()
        n = v.size
        problems = []
        if y.shape != (n, n):
            problems.append(f"y_ll_s: shape {y.shape}, expected ({n}, {n}) for {n} nodes")
        base = np.broadcast_to(np.asarray(v_base_v, dtype=float), (n,)).copy()
        if not (np.isfinite(base).all() and (base > 0).all()):
            problems.append("v_base_v: expected finite base voltages > 0 [V]")
        if not np.isfinite(v).all() or (np.abs(v) == 0).any():
            problems.append("v_point_v: every node needs a finite, non-zero voltage [V]")
        pairs = np.zeros((0, 2), dtype=int) if delta_pairs is None else np.asarray(delta_pairs)
        if pairs.size and (
            pairs.ndim != 2 or pairs.shape[1] != 2 or pairs.min() < 0 or pairs.max() >= n
        ):
            problems.append(f"delta_pairs: expected (n_pair, 2) node indices in [0, {n})")
        if s_point_va is not None and np.shape(s_point_va) != (n,):
            problems.append(f"s_point_va: shape {np.shape(s_point_va)}, expected ({n},)")
        if problems:
            raise FeederError("cannot linearise the feeder: " + "; ".join(problems))
        if s_point_va is None:
            form, system = LinearForm.FIXED_POINT, y
        else:
            form = LinearForm.FIRST_ORDER
            d = np.conj(np.asarray(s_point_va, dtype=complex)) / np.conj(v) ** 2
            g, b = y.real, y.imag
            dr, di = sp.diags(d.real), sp.diags(d.imag)
            system = sp.bmat([[g + dr, -b + di], [b + di, g - dr]], format="csc")
        try:
            factor = splu(sp.csc_matrix(system))
        except RuntimeError:
            factor = None
        if (
            factor is None
            or not np.isfinite(factor.U.diagonal()).all()
            or (np.abs(factor.U.diagonal()).min() == 0.0)
        ):
            raise FeederError(
                "cannot linearise the feeder: the admittance matrix is singular (a part of "
                "the feeder is not connected to the source)"
            )
        return cls(
            v_point_v=v,
            v_base_v=base,
            delta_pairs=pairs.reshape(-1, 2).astype(int),
            form=form,
            factor=factor,
        )

    @property
    def n_node(self) -> int:
        """Number of (non-source) nodes."""
        return int(self.v_point_v.size)

    @property
    def v_point_pu(self) -> np.ndarray:
        """Complex voltages at the operating point [pu of each node's base], ``(n_node,)``."""
        return self.v_point_v / self.v_base_v

    def voltage_change_pu(self, current_a: np.ndarray) -> np.ndarray:
        """Voltage change for a complex right-hand side (extra current at the point).

        Parameters
        ----------
        current_a : numpy.ndarray
            ``(n_node, k)`` complex: :math:`\\mathrm{diag}(\\overline{\\hat v})^{-1}
            \\overline{\\Delta s}` [A] per column.

        Returns
        -------
        numpy.ndarray
            ``(n_node, k)`` complex voltage change [pu].
        """
        rhs = np.asarray(current_a, dtype=complex).reshape(self.n_node, -1)
        if self.form is LinearForm.FIXED_POINT:
            dv = self.factor.solve(rhs)
        else:
            xy = self.factor.solve(np.vstack([rhs.real, rhs.imag]))
            dv = xy[: self.n_node] + 1j * xy[self.n_node :]
        return dv / self.v_base_v[:, None]

    def wye_sensitivity_pu_per_mw(
        self, nodes: np.ndarray | None = None, *, reactive: bool = False
    ) -> np.ndarray:
        """Complex voltage change per MW (or Mvar) injected line-to-neutral at a node.

        Parameters
        ----------
        nodes : numpy.ndarray, optional
            Node indices of the injections (default all).
        reactive : bool, keyword-only
            Per Mvar of reactive injection instead of per MW.

        Returns
        -------
        numpy.ndarray
            ``(n_node, len(nodes))`` complex [pu/MW or pu/Mvar]; column ``k`` is the voltage
            change for 1 MW (1 Mvar) at ``nodes[k]``
            (:math:`\\overline{\\Delta s} = \\Delta p - j \\Delta q`).
        """
        cols = np.arange(self.n_node) if nodes is None else np.asarray(nodes, dtype=int)
        rhs = np.zeros((self.n_node, cols.size), dtype=complex)
        unit = -1j if reactive else 1.0
        rhs[cols, np.arange(cols.size)] = unit * _VA_PER_MVA / np.conj(self.v_point_v[cols])
        return self.voltage_change_pu(rhs)

    def solve(
        self,
        *,
        p_wye_mw: np.ndarray | None = None,
        q_wye_mvar: np.ndarray | None = None,
        p_delta_mw: np.ndarray | None = None,
        q_delta_mvar: np.ndarray | None = None,
    ) -> np.ndarray:
        """Node voltages for extra injections on top of the operating point.

        Parameters
        ----------
        p_wye_mw, q_wye_mvar : numpy.ndarray, optional
            Extra line-to-neutral injections [MW, Mvar], ``(n_node,)`` or
            ``(n_scen, n_node)``; injection positive.
        p_delta_mw, q_delta_mvar : numpy.ndarray, optional
            Extra line-to-line injections on :attr:`delta_pairs` [MW, Mvar], ``(n_pair,)`` or
            ``(n_scen, n_pair)``.

        Returns
        -------
        numpy.ndarray
            Complex voltages [pu], ``(n_scen, n_node)``: :math:`\\hat v + \\Delta v`.

        Raises
        ------
        ScenarioError
            An injection array of the wrong width or with non-finite values.
        """
        n_pair = self.delta_pairs.shape[0]
        wye = _conj_injection(p_wye_mw, q_wye_mvar, self.n_node, "wye")
        delta = _conj_injection(p_delta_mw, q_delta_mvar, n_pair, "delta")
        n_scen = max(
            wye.shape[0] if wye is not None else 1, delta.shape[0] if delta is not None else 1
        )
        rhs = np.zeros((self.n_node, n_scen), dtype=complex)
        if wye is not None:
            rhs += (wye / np.conj(self.v_point_v)[None, :]).T * _VA_PER_MVA
        if delta is not None and n_pair:
            i, j = self.delta_pairs[:, 0], self.delta_pairs[:, 1]
            i_pair = (delta / np.conj(self.v_point_v[i] - self.v_point_v[j])[None, :]).T
            i_pair = np.broadcast_to(i_pair, (n_pair, n_scen)) * _VA_PER_MVA
            np.add.at(rhs, i, i_pair)
            np.add.at(rhs, j, -i_pair)
        return self.v_point_pu[None, :] + self.voltage_change_pu(rhs).T


def _conj_injection(p, q, width: int, kind: str) -> np.ndarray | None:
    """conj(Δs) = p - j q as (n_scen, width) complex, or None when neither is given."""
    if p is None and q is None:
        return None
    arrays = []
    for name, value in ((f"p_{kind}_mw", p), (f"q_{kind}_mvar", q)):
        if value is None:
            arrays.append(None)
            continue
        a = np.asarray(value, dtype=float)
        a = a[None, :] if a.ndim == 1 else a
        if a.ndim != 2 or a.shape[1] != width:
            raise ScenarioError(
                f"{name}: shape {np.shape(value)}, expected ({width},) or (n_scen, {width})"
            )
        if not np.isfinite(a).all():
            raise ScenarioError(f"{name}: expected finite injections [MW / Mvar]")
        arrays.append(a)
    p2, q2 = arrays
    if p2 is None:
        p2 = np.zeros_like(q2)
    if q2 is None:
        q2 = np.zeros_like(p2)
    p2, q2 = np.broadcast_arrays(p2, q2)
    return p2 - 1j * q2


def linearise_feeder(model, result, *, scenario: int = 0) -> LinearThreePhaseModel:
    """First-order linear model of a three-phase feeder around one of its solutions.

    Parameters
    ----------
    model : grids.feeder3ph.ThreePhaseFeederModel
        The feeder (its node table and delta pairs).
    result : grids.result3ph.ThreePhaseResult
        A solution of ``model``: the operating point, with its loads, and (``network``) the
        network and source admittances, the sources' Norton currents and the node bases
        at the regulator taps of that solve.
    scenario : int, keyword-only
        Which scenario of ``result`` is the operating point.

    Returns
    -------
    LinearThreePhaseModel
        In the model's node order, :attr:`LinearForm.FIRST_ORDER`, with the model's
        ``delta_pairs``.

    Raises
    ------
    FeederError
        The operating point did not converge, or the system is singular.
    """
    if not bool(np.asarray(result.converged)[scenario]):
        raise FeederError(
            f"{model.name}: cannot linearise around scenario {scenario}: it did not converge"
        )
    net = result.network  # the solved model's admittances (present regulator taps)
    n = int(np.asarray(net.v_base_v).size)
    y = sp.csr_matrix(tuple(net.y_network), shape=(n, n)) + sp.csr_matrix(
        tuple(net.y_source), shape=(n, n)
    )
    y = y.tocsc()
    i_source = np.asarray(net.i_source_a, dtype=complex)
    v_base = np.asarray(net.v_base_v, dtype=float)
    v_point = np.asarray(result.v_pu, dtype=complex)[scenario] * v_base
    pairs = np.array(
        [[model.node_index(b, f), model.node_index(b, t)] for b, f, t in model.delta_pairs],
        dtype=int,
    ).reshape(-1, 2)
    return LinearThreePhaseModel.from_admittance(
        y,
        v_point_v=v_point,
        v_base_v=v_base,
        delta_pairs=pairs,
        s_point_va=net_injection_va(y, v_point_v=v_point, i_source_a=i_source),
    )
