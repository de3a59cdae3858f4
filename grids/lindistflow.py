"""LinDistFlow: linearised power flow for radial feeders with path-sum sensitivity matrices.

For a radial feeder rooted at its slack bus, the voltage drop to bus ``i`` is the sum over the
branches ``b`` on the path from the root to ``i`` of ``r_b P_b + x_b Q_b``, and the flow
``P_b`` of a branch is minus the sum of the injections downstream of it (losses neglected).
Exchanging the sums gives the path-sum ("common path") sensitivity matrices

.. math::

    R_{ij} = \\sum_{b \\in \\mathcal{P}(i) \\cap \\mathcal{P}(j)} r_b, \\qquad
    X_{ij} = \\sum_{b \\in \\mathcal{P}(i) \\cap \\mathcal{P}(j)} x_b,

where :math:`\\mathcal{P}(i)` is the set of branches between the root and bus ``i``, and with
injections ``p``, ``q`` [pu, positive into the grid]

* linear form: :math:`v = v_0 + R p + X q`
* squared-voltage form: :math:`v^2 = v_0^2 + 2 (R p + X q)`, :math:`v = \\sqrt{\\cdot}`

Both are evaluated for a whole batch of injection scenarios ``(n_scenarios, n_bus)`` in one
matrix product. See ``docs/lindistflow.md`` for the derivation, the assumptions and the
measured error against the AC power flow on the embedded feeders.

Topology: lines and two-winding transformers are branches; closed bus-bus switches are
zero-impedance branches; open switches (bus-bus, line, transformer) remove the branch. A net
may have several radial components (e.g. ``mv_oberrhein``: two substations), each rooted at
its own external grid. Transformer off-nominal ratios (rated voltages and ratio tap changers)
scale the voltages of everything downstream.

Shunt elements that the AC power flow sees through its admittance matrix (line charging,
transformer no-load losses, ``net.shunt``) are included as constant-power injections at
1 pu voltage, so :meth:`LinDistFlow.vm_pu` takes the same injections as
:class:`grids.powerflow.ACPowerFlow`.

References
----------
.. [1] M. E. Baran and F. F. Wu, "Network reconfiguration in distribution systems for loss
   reduction and load balancing," IEEE Trans. Power Delivery 4(2), 1401-1407, 1989.
.. [2] M. Farivar, C. R. Clarke, S. H. Low, K. M. Chandy, "Inverter VAR control for
   distribution systems with renewables," IEEE SmartGridComm 2011 (LinDistFlow form).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

import networkx as nx
import numpy as np

from grids.errors import FeederError, check_problems
from grids.feeders import validate_feeder


class _BatchSolver(Protocol):
    """What :meth:`LinDistFlow.error_vs_ac` needs of an AC solver (``ACPowerFlow`` has it);
    a protocol, so that this module does not import the AC power flow."""

    bus: np.ndarray

    def solve(self, p_mw, q_mvar): ...


class VoltageForm(Enum):
    """Which LinDistFlow voltage equation to evaluate."""

    LINEAR = "linear"
    SQUARED = "squared"


class _BranchKind(Enum):
    LINE = "line"
    TRAFO = "trafo"
    SWITCH = "switch"


@dataclass(frozen=True)
class _Branch:
    kind: _BranchKind
    index: int  # pandapower index of the line / trafo / switch
    bus_a: int  # from_bus (line), hv_bus (trafo), bus (switch)
    bus_b: int  # to_bus (line), lv_bus (trafo), element (switch)
    r_pu: float
    x_pu: float
    ratio: float  # v_b = v_a / ratio at no load (1 for lines and switches)


def _as_2d(values, n_bus: int, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.ndim == 1:
        array = array[np.newaxis, :]
    if array.ndim != 2 or array.shape[1] != n_bus:
        raise ValueError(
            f"{name}: expected shape (n_bus,) or (n_scenarios, n_bus) with n_bus = {n_bus}, "
            f"got {np.shape(values)}"
        )
    return array


def _as_float(value) -> float:
    """float(value), NaN for None / pandas NA / non-numbers."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _trafo_ratio(net, trafo_row) -> float:
    """No-load voltage ratio v_hv/v_lv in bus per-unit (rated voltages and ratio taps).

    Only ratio tap changers count (``tap_changer_type`` "Ratio" or unset, not a phase
    shifter); the tap raises the winding voltage of ``tap_side``.
    """
    vn_hv_bus = float(net.bus.at[int(trafo_row.hv_bus), "vn_kv"])
    vn_lv_bus = float(net.bus.at[int(trafo_row.lv_bus), "vn_kv"])
    ratio = (float(trafo_row.vn_hv_kv) / vn_hv_bus) / (float(trafo_row.vn_lv_kv) / vn_lv_bus)
    tap_pos = _as_float(getattr(trafo_row, "tap_pos", None))
    tap_step = _as_float(getattr(trafo_row, "tap_step_percent", None))
    tap_side = str(getattr(trafo_row, "tap_side", None))
    # unset (None / NaN / NA) counts as a ratio changer, as in pandapower's older nets
    changer = str(getattr(trafo_row, "tap_changer_type", None))
    is_ratio_changer = changer in ("Ratio", "None", "nan", "<NA>")
    if bool(getattr(trafo_row, "tap_phase_shifter", False) is True):
        is_ratio_changer = False
    if is_ratio_changer and tap_side in ("hv", "lv") and np.isfinite(tap_pos * tap_step):
        neutral = _as_float(getattr(trafo_row, "tap_neutral", 0.0))
        neutral = neutral if np.isfinite(neutral) else 0.0
        factor = 1.0 + (tap_pos - neutral) * tap_step / 100.0
        ratio = ratio * factor if tap_side == "hv" else ratio / factor
    return ratio


class LinDistFlow:
    """LinDistFlow model of a radial pandapower net (batched, vectorized).

    Parameters
    ----------
    net : pandapowerNet
        A radial feeder (every in-service component a tree with exactly one in-service
        external grid). Open switches are respected.

    Attributes
    ----------
    bus : numpy.ndarray
        pandapower indices of all buses (``net.bus.index``, as ``ACPowerFlow.bus``); the column
        order of every bus array. Out-of-service buses get NaN voltages.
    line, trafo : numpy.ndarray
        pandapower indices of the in-service lines and transformers (column order of the
        line / transformer results). Lines opened by a switch stay listed with zero flow.
    r_pu, x_pu : numpy.ndarray
        ``(n_bus, n_bus)`` path-sum resistance / reactance [pu on ``net.sn_mva`` and the bus
        nominal voltages]; zero between buses of different components and on slack rows.
    v0_pu : numpy.ndarray
        ``(n_bus,)`` no-load voltage [pu]: the slack set-point times the transformer ratios.
    sn_mva : float
        Power base [MVA].

    Raises
    ------
    FeederError
        The net is not radial, or a component has no or several external grids.

    Notes
    -----
    With transformer ratios ``g_i`` (product of ``1/ratio`` along the path; 1 without
    transformers or taps), the linear form uses
    ``R_ij = g_i * sum_b r_b / g_child(b)`` and the squared form
    ``v_i^2 = v0_i^2 + 2 * (R2 p + X2 q)_i`` with ``R2_ij = g_i^2 * sum_b r_b / g_child(b)^2``;
    both reduce to the plain path sums when all ratios are 1.
    """

    def __init__(self, net) -> None:
        validate_feeder(net, require_radial=True, label=str(net.name or "feeder"))
        self.net = net
        self.sn_mva = float(net.sn_mva)
        # Same bus order as ACPowerFlow: every pandapower bus; out-of-service ones get NaN.
        self.bus = net.bus.index.to_numpy(dtype=np.int64)
        self._in_service_bus = set(int(b) for b in net.bus.index[net.bus.in_service.astype(bool)])
        self.line = self._in_service_branches(net.line, ("from_bus", "to_bus"))
        self.trafo = self._in_service_branches(net.trafo, ("hv_bus", "lv_bus"))
        self._position = {int(b): k for k, b in enumerate(self.bus)}
        branches = self._collect_branches()
        self._build_tree(branches)
        self._shunt_p_pu, self._shunt_q_pu = self._shunt_injection_pu()
        self._precompute_ratings()

    # ----------------------------------------------------------------------------- topology
    def _in_service_branches(self, table, bus_columns) -> np.ndarray:
        if len(table) == 0:
            return np.zeros(0, dtype=np.int64)
        keep = table.in_service.to_numpy(bool).copy()
        for column in bus_columns:
            keep &= table[column].isin(self._in_service_bus).to_numpy(bool)
        return table.index[keep].to_numpy(dtype=np.int64)

    def _open_switch_sets(self):
        net = self.net
        sw = net.switch
        if len(sw) == 0:
            return set(), {}, None
        open_sw = sw[~sw.closed.astype(bool)]
        open_trafo = set(open_sw.element[open_sw.et == "t"].astype(int))
        open_line_ends: dict[int, set[int]] = {}
        for bus, element in zip(
            open_sw.bus[open_sw.et == "l"], open_sw.element[open_sw.et == "l"], strict=True
        ):
            open_line_ends.setdefault(int(element), set()).add(int(bus))
        closed_bb = sw[(sw.et == "b") & sw.closed.astype(bool)]
        return open_trafo, open_line_ends, closed_bb

    def _collect_branches(self) -> list[_Branch]:
        net = self.net
        open_trafo, open_line_ends, closed_bb = self._open_switch_sets()
        self._open_line_ends = open_line_ends
        in_service = self._in_service_bus
        branches: list[_Branch] = []
        for idx in self.line:
            row = net.line.loc[idx]
            a, b = int(row.from_bus), int(row.to_bus)
            if idx in open_line_ends or a not in in_service or b not in in_service:
                continue
            z_base = float(net.bus.at[a, "vn_kv"]) ** 2 / self.sn_mva
            parallel = float(row.parallel)
            r = float(row.r_ohm_per_km) * float(row.length_km) / parallel / z_base
            x = float(row.x_ohm_per_km) * float(row.length_km) / parallel / z_base
            branches.append(_Branch(_BranchKind.LINE, int(idx), a, b, r, x, 1.0))
        for idx in self.trafo:
            row = net.trafo.loc[idx]
            a, b = int(row.hv_bus), int(row.lv_bus)
            if idx in open_trafo or a not in in_service or b not in in_service:
                continue
            vn_lv_bus = float(net.bus.at[b, "vn_kv"])
            # pandapower refers the short-circuit impedance to the LV side: z = vk * vn_lv^2/sn.
            scale = (float(row.vn_lv_kv) / vn_lv_bus) ** 2 * self.sn_mva / float(row.sn_mva)
            scale /= float(row.parallel)
            z = float(row.vk_percent) / 100.0
            r_rated = float(row.vkr_percent) / 100.0
            x_rated = math.sqrt(max(z * z - r_rated * r_rated, 0.0))
            ratio = _trafo_ratio(net, row)
            branches.append(
                _Branch(_BranchKind.TRAFO, int(idx), a, b, r_rated * scale, x_rated * scale, ratio)
            )
        if closed_bb is not None and len(closed_bb):
            for idx, row in closed_bb.iterrows():
                a, b = int(row.bus), int(row.element)
                if a in in_service and b in in_service:
                    branches.append(_Branch(_BranchKind.SWITCH, int(idx), a, b, 0.0, 0.0, 1.0))
        return branches

    def _build_tree(self, branches: list[_Branch]) -> None:
        net = self.net
        graph = nx.MultiGraph()
        graph.add_nodes_from(sorted(self._in_service_bus))
        for k, branch in enumerate(branches):
            graph.add_edge(branch.bus_a, branch.bus_b, key=k)
        ext = net.ext_grid[
            net.ext_grid.in_service.astype(bool) & net.ext_grid.bus.isin(self._in_service_bus)
        ]
        slack_vm = {}
        for bus, vm in zip(ext.bus.astype(int), ext.vm_pu.astype(float), strict=True):
            slack_vm.setdefault(int(bus), float(vm))
        problems = []
        roots: list[int] = []
        for component in nx.connected_components(graph):
            slacks = sorted(b for b in component if b in slack_vm)
            if len(slacks) != 1:
                shown = ", ".join(str(b) for b in sorted(component)[:10])
                problems.append(
                    f"radial component with buses [{shown}{', ...' if len(component) > 10 else ''}]"
                    f" has {len(slacks)} external grids (buses {slacks}); LinDistFlow needs "
                    "exactly one slack per component"
                )
                continue
            if graph.subgraph(component).number_of_edges() != len(component) - 1:
                problems.append(f"component rooted at bus {slacks[0]} is not a tree")
            roots.append(slacks[0])
        check_problems(problems, FeederError, f"{net.name or 'feeder'}: LinDistFlow impossible")

        n_bus, n_branch = len(self.bus), len(branches)
        path = np.zeros((n_bus, n_branch))  # path[i, b] = 1 if branch b is on root->i
        gain = np.ones(n_bus)  # g_i: product of 1/ratio along the path
        v0 = np.full(n_bus, np.nan)  # out-of-service buses stay NaN
        parent_of_branch = np.zeros(n_branch, dtype=np.int64)  # bus position upstream
        child_of_branch = np.zeros(n_branch, dtype=np.int64)
        for root in roots:
            r_pos = self._position[root]
            v0[r_pos] = slack_vm[root]
            for parent, child, key in _bfs(graph, root):
                p_pos, c_pos = self._position[parent], self._position[child]
                branch = branches[key]
                path[c_pos] = path[p_pos]
                path[c_pos, key] = 1.0
                ratio = branch.ratio if branch.bus_a == parent else 1.0 / branch.ratio
                gain[c_pos] = gain[p_pos] / ratio
                parent_of_branch[key] = p_pos
                child_of_branch[key] = c_pos
        for root in roots:
            for node in nx.node_connected_component(graph, root):
                pos = self._position[node]
                v0[pos] = slack_vm[root] * gain[pos]
        r_branch = np.array([b.r_pu for b in branches])
        x_branch = np.array([b.x_pu for b in branches])
        g_child = gain[child_of_branch] if n_branch else np.zeros(0)
        self.r_pu = gain[:, None] * ((path * (r_branch / g_child)) @ path.T)
        self.x_pu = gain[:, None] * ((path * (x_branch / g_child)) @ path.T)
        self._r2_pu = (gain**2)[:, None] * ((path * (r_branch / g_child**2)) @ path.T)
        self._x2_pu = (gain**2)[:, None] * ((path * (x_branch / g_child**2)) @ path.T)
        # Stacked [R X]^T so that a batch is ONE product: [p q] (S, 2n) @ (2n, n).
        self._rx_t = np.vstack([self.r_pu.T, self.x_pu.T])
        self._rx2_t = np.vstack([self._r2_pu.T, self._x2_pu.T])
        self.v0_pu = v0
        self._path = path
        self._branches = branches
        self._branch_parent = parent_of_branch
        self._branch_child = child_of_branch
        # Sign to turn "parent -> child" flows into pandapower's from->to / hv->lv direction.
        self._branch_sign = np.array(
            [
                1.0 if self.bus[parent_of_branch[k]] == b.bus_a else -1.0
                for k, b in enumerate(branches)
            ]
        )
        line_pos = {int(i): k for k, i in enumerate(self.line)}
        trafo_pos = {int(i): k for k, i in enumerate(self.trafo)}
        self._line_cols = np.array(
            [line_pos[b.index] for b in branches if b.kind is _BranchKind.LINE], dtype=np.int64
        )
        self._line_branches = np.array(
            [k for k, b in enumerate(branches) if b.kind is _BranchKind.LINE], dtype=np.int64
        )
        self._trafo_cols = np.array(
            [trafo_pos[b.index] for b in branches if b.kind is _BranchKind.TRAFO], dtype=np.int64
        )
        self._trafo_branches = np.array(
            [k for k, b in enumerate(branches) if b.kind is _BranchKind.TRAFO], dtype=np.int64
        )

    def _precompute_ratings(self) -> None:
        """Line/transformer ratings in column order (no pandas work in the batch methods)."""
        net = self.net
        lines = net.line.loc[self.line[self._line_cols]]
        self._line_vn_kv = net.bus.vn_kv.loc[lines.from_bus].to_numpy(float)
        self._line_i_max_ka = (lines.max_i_ka * lines.df * lines.parallel).to_numpy(float)
        trafos = net.trafo.loc[self.trafo[self._trafo_cols]] if len(self.trafo) else net.trafo
        self._trafo_lv_pos = np.array(
            [self._position[int(b)] for b in trafos.lv_bus], dtype=np.int64
        )
        self._trafo_lv_ratio = net.bus.vn_kv.loc[trafos.lv_bus].to_numpy(
            float
        ) / trafos.vn_lv_kv.to_numpy(float)
        self._trafo_rating_mva = (trafos.sn_mva * trafos.df * trafos.parallel).to_numpy(float)

    def _shunt_injection_pu(self) -> tuple[np.ndarray, np.ndarray]:
        """Line charging, transformer no-load losses and shunts as injections at 1 pu [pu]."""
        net = self.net
        p = np.zeros(len(self.bus))
        q = np.zeros(len(self.bus))
        omega = 2.0 * math.pi * float(net.f_hz)
        for idx in self.line:
            row = net.line.loc[idx]
            ends = [int(row.from_bus), int(row.to_bus)]
            connected = [b for b in ends if b not in self._open_line_ends.get(int(idx), set())]
            if not connected or any(b not in self._position for b in ends):
                continue
            vn2 = float(net.bus.at[ends[0], "vn_kv"]) ** 2
            length = float(row.length_km) * float(row.parallel)
            q_total = omega * float(row.c_nf_per_km) * 1e-9 * length * vn2  # MVAr
            g_us = float(row.get("g_us_per_km", 0.0) or 0.0)
            p_total = g_us * 1e-6 * length * vn2  # MW absorbed
            for b in connected:
                p[self._position[b]] -= p_total / len(connected)
                q[self._position[b]] += q_total / len(connected)
        for idx in self.trafo:
            row = net.trafo.loc[idx]
            p_fe = float(row.pfe_kw) / 1000.0 * float(row.parallel)
            s_0 = float(row.i0_percent) / 100.0 * float(row.sn_mva) * float(row.parallel)
            q_0 = math.sqrt(max(s_0 * s_0 - p_fe * p_fe, 0.0))
            # pandapower's default "t" model puts half of the magnetising branch on each side.
            for b in (int(row.hv_bus), int(row.lv_bus)):
                if b in self._position:
                    p[self._position[b]] -= p_fe / 2.0
                    q[self._position[b]] -= q_0 / 2.0
        if len(net.shunt):
            for _, row in net.shunt[net.shunt.in_service.astype(bool)].iterrows():
                b = int(row.bus)
                if b in self._in_service_bus:
                    step = float(row.get("step", 1) or 1)
                    p[self._position[b]] -= float(row.p_mw) * step
                    q[self._position[b]] -= float(row.q_mvar) * step
        return p / self.sn_mva, q / self.sn_mva

    # ---------------------------------------------------------------------------- injections
    def base_injection(self) -> tuple[np.ndarray, np.ndarray]:
        """Net injection per bus from loads, sgens, gens and storages, as ``runpp`` sees them.

        Returns
        -------
        p_mw, q_mvar : numpy.ndarray
            ``(n_bus,)`` [MW], [MVAr], positive into the grid; element ``p_mw``/``q_mvar``
            times ``scaling``, in-service elements only. Gens inject their ``p_mw`` and no
            reactive power (LinDistFlow has no PV buses). Storages follow the load sign, wards
            contribute their constant-power part (as in ``ACPowerFlow.base_injection``).
        """
        net = self.net
        p = np.zeros(len(self.bus))
        q = np.zeros(len(self.bus))
        for table, sign, p_col, q_col in (
            ("load", -1.0, "p_mw", "q_mvar"),
            ("sgen", 1.0, "p_mw", "q_mvar"),
            ("storage", -1.0, "p_mw", "q_mvar"),
            ("gen", 1.0, "p_mw", None),
            ("ward", -1.0, "ps_mw", "qs_mvar"),
        ):
            frame = net.get(table, None)
            if frame is None or len(frame) == 0:
                continue
            frame = frame[frame.in_service.astype(bool)]
            scaling = frame.scaling.to_numpy(float) if "scaling" in frame else 1.0
            pos = np.array([self._position.get(int(b), -1) for b in frame.bus], dtype=np.int64)
            keep = pos >= 0
            np.add.at(p, pos[keep], (sign * frame[p_col].to_numpy(float) * scaling)[keep])
            if q_col is not None:
                np.add.at(q, pos[keep], (sign * frame[q_col].to_numpy(float) * scaling)[keep])
        return p, q

    def _injection_pu(self, p_mw, q_mvar) -> tuple[np.ndarray, np.ndarray]:
        n_bus = len(self.bus)
        p = _as_2d(p_mw, n_bus, "p_mw") / self.sn_mva + self._shunt_p_pu
        q = _as_2d(q_mvar, n_bus, "q_mvar") / self.sn_mva + self._shunt_q_pu
        return p, q

    # ------------------------------------------------------------------------------ voltages
    def vm_pu(self, p_mw, q_mvar, *, form: VoltageForm = VoltageForm.LINEAR) -> np.ndarray:
        """Bus voltage magnitudes for a batch of injections.

        Parameters
        ----------
        p_mw, q_mvar : array_like
            Total net injection per bus [MW], [MVAr] (positive into the grid), shape
            ``(n_bus,)`` or ``(n_scenarios, n_bus)`` in :attr:`bus` order.
        form : VoltageForm, keyword-only
            ``LINEAR`` (default) or ``SQUARED``.

        Returns
        -------
        numpy.ndarray
            ``(n_scenarios, n_bus)`` voltage magnitudes [pu] (always 2-D).

        Notes
        -----
        Linear: ``v = v0 + R p + X q``; squared: ``v = sqrt(v0^2 + 2 (R p + X q))`` (a
        negative radicand, i.e. voltage collapse far outside the model's range, gives NaN).
        Each form is one matrix product over the whole batch.
        """
        p, q = self._injection_pu(p_mw, q_mvar)
        form = VoltageForm(form)
        if form is VoltageForm.LINEAR:
            return self.v0_pu + np.hstack([p, q]) @ self._rx_t
        radicand = self.v0_pu**2 + 2.0 * (np.hstack([p, q]) @ self._rx2_t)
        with np.errstate(invalid="ignore"):
            return np.sqrt(np.where(radicand >= 0.0, radicand, np.nan))

    # ------------------------------------------------------------------------------ branches
    def _flows_pu(self, p, q) -> tuple[np.ndarray, np.ndarray]:
        # Flow parent -> child = minus the injections downstream of the branch (lossless).
        return -(p @ self._path), -(q @ self._path)

    def branch_flows(self, p_mw, q_mvar) -> tuple[np.ndarray, np.ndarray]:
        """Lossless branch flows: line columns first (:attr:`line` order), then transformers.

        Parameters
        ----------
        p_mw, q_mvar : array_like
            Injections as for :meth:`vm_pu` [MW, Mvar].

        Returns
        -------
        p_mw, q_mvar : numpy.ndarray
            ``(n_scenarios, n_line + n_trafo)`` [MW], [MVAr]; positive from ``from_bus`` to
            ``to_bus`` (lines) and from ``hv_bus`` to ``lv_bus`` (transformers), like
            pandapower's ``p_from_mw`` / ``p_hv_mw``. Lines opened by a switch carry zero.
        """
        p, q = self._injection_pu(p_mw, q_mvar)
        fp, fq = self._flows_pu(p, q)
        n_s = p.shape[0]
        out_p = np.zeros((n_s, len(self.line) + len(self.trafo)))
        out_q = np.zeros_like(out_p)
        for cols, branches, offset in (
            (self._line_cols, self._line_branches, 0),
            (self._trafo_cols, self._trafo_branches, len(self.line)),
        ):
            if len(cols):
                sign = self._branch_sign[branches]
                out_p[:, offset + cols] = fp[:, branches] * sign * self.sn_mva
                out_q[:, offset + cols] = fq[:, branches] * sign * self.sn_mva
        return out_p, out_q

    def line_loading_percent(self, p_mw, q_mvar) -> np.ndarray:
        """Approximate line loading [%] from the lossless flows and the LinDistFlow voltages.

        ``I = |S| / (sqrt(3) vn_kv vm)`` with ``vm`` the lower of the two end voltages (linear
        form), divided by ``max_i_ka * df * parallel``.

        Parameters
        ----------
        p_mw, q_mvar : array_like
            Injections as for :meth:`vm_pu` [MW, Mvar].

        Returns
        -------
        numpy.ndarray
            ``(n_scenarios, n_line)`` loading [%].
        """
        p, q = self._injection_pu(p_mw, q_mvar)
        vm = self.v0_pu + np.hstack([p, q]) @ self._rx_t
        fp, fq = self._flows_pu(p, q)
        out = np.zeros((p.shape[0], len(self.line)))
        if len(self._line_cols) == 0:
            return out
        k = self._line_branches
        s_mva = np.hypot(fp[:, k], fq[:, k]) * self.sn_mva
        vm_end = np.minimum(vm[:, self._branch_parent[k]], vm[:, self._branch_child[k]])
        vn_kv, i_max_ka = self._line_vn_kv, self._line_i_max_ka
        out[:, self._line_cols] = s_mva / (math.sqrt(3.0) * vn_kv * vm_end) / i_max_ka * 100.0
        return out

    def trafo_loading_percent(self, p_mw, q_mvar) -> np.ndarray:
        """Approximate transformer loading [%]: ``|S| / (sn_mva * df * parallel * vm_lv)``.

        ``vm_lv`` is the LV-side voltage in pu of the transformer's rated LV voltage.

        Parameters
        ----------
        p_mw, q_mvar : array_like
            Injections as for :meth:`vm_pu` [MW, Mvar].

        Returns
        -------
        numpy.ndarray
            ``(n_scenarios, n_trafo)`` loading [%].
        """
        p, q = self._injection_pu(p_mw, q_mvar)
        vm = self.v0_pu + np.hstack([p, q]) @ self._rx_t
        fp, fq = self._flows_pu(p, q)
        out = np.zeros((p.shape[0], len(self.trafo)))
        if len(self._trafo_cols) == 0:
            return out
        k = self._trafo_branches
        s_mva = np.hypot(fp[:, k], fq[:, k]) * self.sn_mva
        vm_rated = vm[:, self._trafo_lv_pos] * self._trafo_lv_ratio
        rating = self._trafo_rating_mva
        out[:, self._trafo_cols] = s_mva / (rating * vm_rated) * 100.0
        return out

    # ---------------------------------------------------------------------------- vs. AC
    def error_vs_ac(
        self, p_mw, q_mvar, ac: _BatchSolver, *, form: VoltageForm = VoltageForm.LINEAR
    ) -> np.ndarray:
        """Per-bus voltage error of LinDistFlow against the AC power flow [pu].

        Parameters
        ----------
        p_mw, q_mvar : array_like
            Injections as for :meth:`vm_pu`.
        ac : grids.powerflow.ACPowerFlow
            AC solver built on the same net.
        form : VoltageForm, keyword-only

        Returns
        -------
        numpy.ndarray
            ``(n_scenarios, n_bus)`` ``vm_lindistflow - vm_ac`` [pu] in :attr:`bus` order.
            Scenarios where the AC solve did not converge are NaN.
        """
        p = _as_2d(p_mw, len(self.bus), "p_mw")
        q = _as_2d(q_mvar, len(self.bus), "q_mvar")
        ac_bus = np.asarray(ac.bus)
        ac_pos = {int(b): k for k, b in enumerate(ac_bus)}
        missing = [int(b) for b in self.bus if int(b) not in ac_pos]
        if missing:
            raise FeederError(
                f"error_vs_ac: the AC solver has no bus {missing[:5]} (built on another net?)"
            )
        cols = np.array([ac_pos[int(b)] for b in self.bus], dtype=np.int64)
        p_ac = np.zeros((p.shape[0], len(ac_bus)))
        q_ac = np.zeros_like(p_ac)
        p_ac[:, cols] = p
        q_ac[:, cols] = q
        result = ac.solve(p_ac, q_ac)
        vm_ac = np.asarray(result.vm_pu, dtype=float).reshape(p.shape[0], -1)[:, cols]
        vm_ac = np.where(np.asarray(result.converged, bool)[:, None], vm_ac, np.nan)
        return self.vm_pu(p, q, form=form) - vm_ac


def _bfs(graph: nx.MultiGraph, root: int):
    """Yield (parent, child, edge_key) in breadth-first order from ``root``."""
    seen = {root}
    frontier = [root]
    while frontier:
        nxt = []
        for node in frontier:
            for _, child, key in graph.edges(node, keys=True):
                if child in seen:
                    continue
                seen.add(child)
                nxt.append(child)
                yield node, child, key
        frontier = nxt
