"""The result of a three-phase power flow: phase voltages, VUF, line currents, losses.

:class:`ThreePhaseResult` holds the solved node voltages and computes everything derived from
them (magnitudes, angles, VUF, line currents, losses, source power) on first access, so that
a batch of thousands of scenarios on a feeder of thousands of nodes pays only for what the
caller reads.

Equations: losses ``S_loss = sum_i V_i conj((Y_net V)_i)`` over the power-delivery elements;
source power ``S_src = sum_i V_i conj(I_s,i - (Y_s V)_i)`` (Norton equivalent of the voltage
sources); line current at the first terminal ``I = Y_prim,1 V_terminals``; VUF from
:func:`grids.sequence.voltage_unbalance_factor_percent`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Protocol

import numpy as np
import scipy.sparse as sp

from grids.errors import ConvergenceError
from grids.powerflow3ph_kernels import csr_quadratic, csr_rows_abs
from grids.sequence import voltage_unbalance_factor_percent

#: Phase letters of node numbers 1, 2, 3.
PHASE_LETTER = {1: "a", 2: "b", 3: "c"}

CsrArrays = tuple[np.ndarray, np.ndarray, np.ndarray]


@dataclass(frozen=True)
class BranchPowers:
    """Power drawn by every load-like branch of a solve, summed per load on demand.

    Attributes
    ----------
    s_branch_va : callable
        Returns the consumed power per branch at the solved voltages, ``(S, nb)`` complex
        [VA]: the loads' branches first, then injections and extras (formed when first
        needed).
    load_owner : scipy.sparse matrix (n_load_branch, n_load)
        Which load each of the first ``n_load_branch`` branches belongs to.
    owner_starts : numpy.ndarray of int or None
        First branch of each load when every load's branches are consecutive (a faster sum).
    """

    s_branch_va: Callable[[], np.ndarray]
    load_owner: sp.spmatrix
    owner_starts: np.ndarray | None

    @cached_property
    def s_branch_kva(self) -> np.ndarray:
        """Consumed power per branch.

        Returns
        -------
        numpy.ndarray (S, nb) complex
            [kVA].
        """
        return self.s_branch_va() / 1000.0

    def per_load_kva(self) -> np.ndarray:
        """Power drawn per load.

        Returns
        -------
        numpy.ndarray (S, n_load) complex
            Sum of each load's branches [kVA].
        """
        n_lb = self.load_owner.shape[0]
        if self.owner_starts is not None:
            return np.add.reduceat(self.s_branch_kva[:, :n_lb], self.owner_starts, axis=1)
        return np.asarray(self.load_owner.T @ self.s_branch_kva[:, :n_lb].T).T

    def injection_kva(self) -> np.ndarray:
        """Total power injected by the branches after the loads'.

        Returns
        -------
        numpy.ndarray (S,) complex
            Injection positive [kVA].
        """
        return -self.s_branch_kva[:, self.load_owner.shape[0] :].sum(axis=1)


class NodeVoltagesLike(Protocol):
    """Solved node voltages as either solver keeps them (:class:`grids.voltages3ph.
    NodeVoltages`, :class:`grids.powerflow3ph_sparse.FullVoltages`)."""

    def full_v(self) -> np.ndarray:
        """Every node voltage.

        Returns
        -------
        numpy.ndarray (S, n) complex
            [V].
        """

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

    def magnitude_pu(self, v_base_v: np.ndarray) -> np.ndarray:
        """Every node's voltage magnitude.

        Parameters
        ----------
        v_base_v : numpy.ndarray (n,)
            Base voltage per node [V].

        Returns
        -------
        numpy.ndarray (S, n)
            ``|V| / V_base`` [pu].
        """


def csr_arrays(matrix) -> CsrArrays:
    """CSR ``(data, indices, indptr)`` of a sparse matrix, for the compiled kernels.

    Parameters
    ----------
    matrix : scipy.sparse matrix
        Any sparse format (complex).

    Returns
    -------
    tuple of numpy.ndarray
        ``data`` (complex), ``indices`` and ``indptr`` (int64), indices sorted per row.
    """
    csr = sp.csr_matrix(matrix)
    csr.sort_indices()
    return csr.data.astype(complex), csr.indices.astype(np.int64), csr.indptr.astype(np.int64)


@dataclass(frozen=True)
class NetworkData:
    """What a result needs from its feeder to derive flows from voltages.

    Attributes
    ----------
    v_base_v : numpy.ndarray (n_node,)
        Line-to-neutral base voltage per node [V].
    y_network, y_source : CsrArrays
        Admittance of the power-delivery elements and of the sources' impedances [S].
    i_source_a : numpy.ndarray (n_node,) complex
        Norton current of the voltage sources [A].
    line_matrix : CsrArrays
        Rows of the lines' ``Yprim`` at their first terminal, one row per conductor [S].
    line_norm_amps : numpy.ndarray (n_conductor,)
        Normal rating per conductor [A]; NaN where none.
    trafo_matrix : CsrArrays
        Rows of the transformers' ``Yprim`` at winding 1, one row per phase conductor [S]
        (regulators at their present tap).
    trafo_norm_amps : numpy.ndarray (n_trafo_conductor,)
        Normal rating of winding 1 [A] (OpenDSS ``NormalAmps``: the current at the
        transformer's ``normhkva``, by default 110 % of its kVA); NaN where none.
    bus3_nodes : numpy.ndarray (n_bus3, 3) of int
        Nodes a, b, c of every three-phase bus.
    """

    v_base_v: np.ndarray
    y_network: CsrArrays
    y_source: CsrArrays
    i_source_a: np.ndarray
    line_matrix: CsrArrays
    line_norm_amps: np.ndarray
    bus3_nodes: np.ndarray
    trafo_matrix: CsrArrays
    trafo_norm_amps: np.ndarray


@dataclass(frozen=True)
class ThreePhaseResult:
    """Phase voltages, currents and losses of one or many scenarios (scenario axis first).

    The node voltages themselves (``v_pu``) and everything derived from them (``vm_pu``,
    ``va_degree``, ``vuf_percent``, line currents, losses, source power) are computed on first
    access and cached; :meth:`vm_at_pu` reads some nodes without forming all of them.

    Attributes
    ----------
    node_bus : numpy.ndarray of str
        Bus per node (column order of the node arrays).
    node_phase : numpy.ndarray of int
        Phase per node (1, 2, 3 = a, b, c; 4+ other conductors).
    converged : numpy.ndarray (S,) of bool
    iterations : numpy.ndarray (S,) of int
    max_dv_pu : numpy.ndarray (S,)
        Largest voltage update of the last iteration [pu].
    bus3 : tuple of str
        Buses with phases a, b and c (columns of ``vuf_percent``).
    line_conductor : tuple of str
        ``line.phase`` per line conductor (columns of the line arrays).
    trafo_conductor : tuple of str
        ``transformer.phase`` per winding-1 phase conductor (columns of the transformer
        arrays).
    voltages : NodeVoltagesLike
        The solved node voltages, formed on demand.
    branch_powers : BranchPowers
        Power drawn per branch (read through :attr:`load_p_kw`, :attr:`load_q_kvar`,
        :attr:`p_injection_kw`, :attr:`q_injection_kvar`).
    network : NetworkData
        Feeder matrices used to derive the flows.
    """

    node_bus: np.ndarray
    node_phase: np.ndarray
    converged: np.ndarray
    iterations: np.ndarray
    max_dv_pu: np.ndarray
    bus3: tuple[str, ...]
    line_conductor: tuple[str, ...]
    trafo_conductor: tuple[str, ...]
    voltages: NodeVoltagesLike = field(repr=False, compare=False)
    network: NetworkData = field(repr=False, compare=False)
    branch_powers: BranchPowers = field(repr=False, compare=False)

    @property
    def n_scenarios(self) -> int:
        """Number of scenarios (rows)."""
        return int(self.converged.shape[0])

    @cached_property
    def v_v(self) -> np.ndarray:
        """Node voltages.

        Returns
        -------
        numpy.ndarray (S, n_node) complex
            Node-to-ground voltage [V].
        """
        return np.ascontiguousarray(self.voltages.full_v())

    @cached_property
    def v_pu(self) -> np.ndarray:
        """Phase-to-neutral (node-to-ground) voltages on the bus base.

        Returns
        -------
        numpy.ndarray (S, n_node) complex
            [pu of the bus's line-to-neutral base].
        """
        return self.v_v / self.network.v_base_v

    def vm_at_pu(self, nodes) -> np.ndarray:
        """Voltage magnitudes of some nodes, without forming every node's voltage.

        Parameters
        ----------
        nodes : sequence of int
            Node indices (:meth:`grids.feeder3ph.ThreePhaseFeederModel.node_indices`).

        Returns
        -------
        numpy.ndarray (S, len(nodes))
            ``|V|`` [pu].
        """
        nodes = np.asarray(nodes, dtype=np.int64)
        if "vm_pu" in self.__dict__:
            return self.vm_pu[:, nodes]
        return np.abs(self.voltages.at_v(nodes)) / self.network.v_base_v[nodes]

    @cached_property
    def vm_pu(self) -> np.ndarray:
        """Voltage magnitudes.

        Returns
        -------
        numpy.ndarray (S, n_node)
            ``|V|`` [pu] (formed block by block when the complex voltages were not read).
        """
        if "v_pu" in self.__dict__:
            return np.abs(self.v_pu)
        return self.voltages.magnitude_pu(self.network.v_base_v)

    @cached_property
    def va_degree(self) -> np.ndarray:
        """Voltage angles.

        Returns
        -------
        numpy.ndarray (S, n_node)
            Angle of ``V`` [degree].
        """
        return np.degrees(np.angle(self.v_pu))

    @cached_property
    def _s_load_kva(self) -> np.ndarray:
        return self.branch_powers.per_load_kva()

    @cached_property
    def _s_injection_kva(self) -> np.ndarray:
        return self.branch_powers.injection_kva()

    @property
    def load_p_kw(self) -> np.ndarray:
        """Power drawn by each load at the solved voltages [kW], ``(S, n_load)`` (its model
        and the vminpu/vmaxpu rule applied)."""
        return self._s_load_kva.real

    @property
    def load_q_kvar(self) -> np.ndarray:
        """Reactive power drawn by each load at the solved voltages [kvar], ``(S, n_load)``."""
        return self._s_load_kva.imag

    @property
    def p_injection_kw(self) -> np.ndarray:
        """Total power injected by PV systems, storage, generators and the extra injections
        at the solved voltages [kW], ``(S,)`` (injection positive)."""
        return self._s_injection_kva.real

    @property
    def q_injection_kvar(self) -> np.ndarray:
        """Total reactive power injected by those elements [kvar], ``(S,)``."""
        return self._s_injection_kva.imag

    @cached_property
    def _s_loss_kva(self):
        out = np.empty(self.n_scenarios, dtype=complex)
        csr_quadratic(*self.network.y_network, self.v_v, out)
        return out / 1000.0

    @cached_property
    def _s_source_kva(self):
        shunt = np.empty(self.n_scenarios, dtype=complex)
        csr_quadratic(*self.network.y_source, self.v_v, shunt)
        nodes = np.flatnonzero(self.network.i_source_a)
        emf = self.v_v[:, nodes] @ np.conj(self.network.i_source_a[nodes])
        return (emf - shunt) / 1000.0

    @property
    def losses_kw(self) -> np.ndarray:
        """Losses of lines, transformers, capacitors and reactors [kW], ``(S,)``."""
        return self._s_loss_kva.real

    @property
    def losses_kvar(self) -> np.ndarray:
        """Reactive losses (capacitors count negative) [kvar], ``(S,)``."""
        return self._s_loss_kva.imag

    @property
    def p_source_kw(self) -> np.ndarray:
        """Active power delivered by the voltage sources at their terminals [kW], ``(S,)``."""
        return self._s_source_kva.real

    @property
    def q_source_kvar(self) -> np.ndarray:
        """Reactive power delivered by the voltage sources [kvar], ``(S,)``."""
        return self._s_source_kva.imag

    @cached_property
    def vuf_percent(self) -> np.ndarray:
        """Voltage unbalance factor per three-phase bus (columns: :attr:`bus3`).

        Returns
        -------
        numpy.ndarray (S, n_bus3)
            ``100 |V2| / |V1|`` [%].
        """
        nodes = self.network.bus3_nodes
        if "v_v" in self.__dict__:
            v_abc = self.v_v[:, nodes]
        else:
            v_abc = self.voltages.at_v(nodes.ravel()).reshape(self.n_scenarios, *nodes.shape)
        return voltage_unbalance_factor_percent(v_abc)

    def _currents_a(self, matrix: CsrArrays) -> np.ndarray:
        """``|M V|`` per scenario for current rows ``M`` over the nodes [A]."""
        out = np.empty((self.n_scenarios, matrix[2].size - 1))
        csr_rows_abs(*matrix, self.v_v, out)
        return out

    @cached_property
    def line_current_a(self) -> np.ndarray:
        """Line currents (columns: :attr:`line_conductor`).

        Returns
        -------
        numpy.ndarray (S, n_conductor)
            Current magnitude at the line's first terminal [A].
        """
        return self._currents_a(self.network.line_matrix)

    @cached_property
    def line_loading_percent(self) -> np.ndarray:
        """Line loadings (columns: :attr:`line_conductor`).

        Returns
        -------
        numpy.ndarray (S, n_conductor)
            Current over the line's normal rating [%]; NaN where the line has none.
        """
        with np.errstate(invalid="ignore", divide="ignore"):
            return 100.0 * self.line_current_a / self.network.line_norm_amps

    @cached_property
    def trafo_current_a(self) -> np.ndarray:
        """Transformer winding-1 currents (columns: :attr:`trafo_conductor`).

        Returns
        -------
        numpy.ndarray (S, n_trafo_conductor)
            Current magnitude in each phase conductor of winding 1 [A].
        """
        return self._currents_a(self.network.trafo_matrix)

    @cached_property
    def trafo_loading_percent(self) -> np.ndarray:
        """Transformer loadings (columns: :attr:`trafo_conductor`).

        Returns
        -------
        numpy.ndarray (S, n_trafo_conductor)
            Winding-1 current over its normal rating (``NetworkData.trafo_norm_amps``) [%];
            NaN where none.
        """
        with np.errstate(invalid="ignore", divide="ignore"):
            return 100.0 * self.trafo_current_a / self.network.trafo_norm_amps

    @property
    def vm_min_pu(self) -> np.ndarray:
        """Lowest phase voltage over the phase nodes (a, b, c) per scenario [pu], ``(S,)``."""
        return np.min(self.vm_pu[:, self.node_phase <= 3], axis=1)

    @property
    def vm_max_pu(self) -> np.ndarray:
        """Highest phase voltage over the phase nodes (a, b, c) per scenario [pu], ``(S,)``."""
        return np.max(self.vm_pu[:, self.node_phase <= 3], axis=1)

    @property
    def worst_node(self) -> np.ndarray:
        """Node index of the lowest phase voltage per scenario, ``(S,)``."""
        phase_nodes = np.flatnonzero(self.node_phase <= 3)
        return phase_nodes[np.argmin(self.vm_pu[:, phase_nodes], axis=1)]

    @property
    def vuf_max_percent(self) -> np.ndarray:
        """Largest VUF over the three-phase buses per scenario [%], ``(S,)``."""
        if self.vuf_percent.shape[1] == 0:
            return np.zeros(self.n_scenarios)
        return np.nanmax(self.vuf_percent, axis=1)

    def worst_node_label(self, scenario: int = 0) -> str:
        """``bus.phase`` of the lowest phase voltage in one scenario.

        Parameters
        ----------
        scenario : int
            Row of the result.

        Returns
        -------
        str
            E.g. ``"675.c"``.
        """
        k = int(self.worst_node[scenario])
        phase = int(self.node_phase[k])
        return f"{self.node_bus[k]}.{PHASE_LETTER.get(phase, str(phase))}"

    def phase_voltages(self, scenario: int = 0) -> list[dict]:
        """Phase voltages of one scenario as records (phase nodes a, b, c only).

        Parameters
        ----------
        scenario : int
            Row of the result.

        Returns
        -------
        list of dict
            ``{"bus", "phase" ("a"|"b"|"c"), "vm_pu", "va_degree"}`` in node order.
        """
        vm, va = self.vm_pu[scenario], self.va_degree[scenario]
        return [
            {
                "bus": str(bus),
                "phase": PHASE_LETTER[int(phase)],
                "vm_pu": float(vm[k]),
                "va_degree": float(va[k]),
            }
            for k, (bus, phase) in enumerate(zip(self.node_bus, self.node_phase, strict=True))
            if int(phase) in PHASE_LETTER
        ]

    def raise_if_failed(self, *, label: str = "three-phase power flow") -> None:
        """Raise :class:`ConvergenceError` naming the first scenario that did not converge.

        Parameters
        ----------
        label : str, keyword-only
            Start of the message (e.g. the feeder name).
        """
        bad = np.flatnonzero(~self.converged)
        if bad.size:
            i = int(bad[0])
            raise ConvergenceError(
                f"{label}: {bad.size} of {self.n_scenarios} scenarios did not converge "
                f"(first: scenario {i}, {int(self.iterations[i])} iterations, last update "
                f"{self.max_dv_pu[i]:.3g} pu)",
                index=i,
            )
