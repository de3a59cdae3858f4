"""The three-phase feeder model: unbalanced power flow on OpenDSS feeders.

:class:`ThreePhaseFeederModel` is built once from an OpenDSS model (:meth:`~ThreePhaseFeederModel.
from_dss`, or :meth:`~ThreePhaseFeederModel.from_name` for the embedded IEEE 13, 34, 123 node
and European LV test feeders) and answers "what are the phase voltages, currents and losses for
these loads and extra injections?" for one scenario or a batch, with the project's own solver
(:class:`grids.powerflow3ph.ZBusSolver`, warm-started). OpenDSS (opendssdirect.py) is used only
to compile the files and extract element matrices (:func:`grids.opendss.read_dss`).

Nodes are ordered by bus (file order) then phase. Voltages are phase-to-neutral (node to
ground) in pu of the bus's line-to-neutral base.

Examples
--------
>>> from grids.feeder3ph import ThreePhaseFeederModel
>>> model = ThreePhaseFeederModel.from_name("ieee13")
>>> result = model.solve()
>>> bool(result.converged[0])
True
>>> round(float(result.vm_pu[0, model.node_index("675", 1)]), 3)
0.976
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from grids.errors import FeederError, ScenarioError, check_problems
from grids.feeder_model import FeederModel
from grids.opendss import DssCircuit, read_dss
from grids.powerflow3ph import SMALL_BATCH, Branches, concat_branches, load_branches
from grids.powerflow3ph_kernels import MODEL_PQ_PURE
from grids.powerflow3ph_sparse import Solver3ph, make_solver, select_solver
from grids.result3ph import (
    PHASE_LETTER,
    BranchPowers,
    NetworkData,
    ThreePhaseResult,
    csr_arrays,
)

#: Folder of the embedded OpenDSS feeders.
DSS_DIR = Path(__file__).resolve().parent / "dss"
#: Embedded feeders: name -> master file under :data:`DSS_DIR`.
EMBEDDED_FEEDERS = {
    "ieee13": "ieee13/Master.dss",
    "ieee13_published": "ieee13_published/Master.dss",
    "ieee34": "ieee34/Master.dss",
    "ieee123": "ieee123/Master.dss",
    "european_lv": "european_lv/Master.dss",
}


class ThreePhaseFeederModel:
    """An unbalanced three-phase feeder read from OpenDSS, solved by the project's engine.

    Build it with :meth:`from_dss` or :meth:`from_name`. See the module docstring.

    Attributes
    ----------
    name : str
    circuit : DssCircuit
        The extracted OpenDSS data (node order of OpenDSS).
    node_bus, node_phase : numpy.ndarray
        Bus and phase (1, 2, 3 = a, b, c) per node, grouped by bus.
    buses : tuple of str
    source_bus : str
    bus_xy : dict or None
        Bus coordinates from ``BusCoords``.
    load_names : tuple of str
    load_bus : tuple of str
    load_nodes : tuple of numpy.ndarray
        Node indices of each load's conductors (-1 for ground).
    load_p_kw, load_q_kvar : numpy.ndarray
        Nominal load powers [kW, kvar] (consumption positive).
    delta_pairs : tuple of (str, int, int)
        ``(bus, phase_from, phase_to)`` of every phase pair on buses with two phases or more:
        the columns of ``p_delta_mw``/``q_delta_mvar`` in :meth:`solve`.
    unsupported : tuple of str
        Elements of the file the engine does not model.
    solver : Solver3ph
        The solver in use, ``DENSE`` or ``SPARSE`` (``solver=Solver3ph.AUTO``, the default of
        the constructor, chooses by size: :func:`grids.powerflow3ph_sparse.select_solver`).
    """

    def __init__(
        self, circuit: DssCircuit, *, name: str | None = None, solver: Solver3ph = Solver3ph.AUTO
    ) -> None:
        self.circuit = circuit
        self.name = name or circuit.name
        bus_pos = {b: i for i, b in enumerate(circuit.buses)}
        order = np.lexsort((circuit.node_phase, [bus_pos[b] for b in circuit.node_bus]))
        inv = np.empty_like(order)
        inv[order] = np.arange(order.size)
        self._order = order
        self.node_bus = circuit.node_bus[order]
        self.node_phase = circuit.node_phase[order]
        self.kv_base_ln = circuit.kv_base_ln[order]
        self.buses = circuit.buses
        self.source_bus = circuit.source_bus
        self.bus_xy = circuit.bus_xy
        self.unsupported = circuit.unsupported
        self._node_of = {
            (b, int(p)): i
            for i, (b, p) in enumerate(zip(self.node_bus, self.node_phase, strict=True))
        }
        y_net = circuit.y_network[order][:, order].tocsc()
        y_src = circuit.y_source[order][:, order].tocsc()
        self._y_net = y_net
        self._y_src = y_src
        self._i_src = circuit.i_source_a[order]
        self._inv = inv
        self._taps = {r.name: round(float(r.tap_pu), 10) for r in circuit.regulators}
        loads = circuit.loads
        self.load_names = loads.name
        self.load_bus = loads.bus
        self.load_p_kw = loads.p_kw
        self.load_q_kvar = loads.q_kvar
        self.load_nodes = tuple(
            np.array([-1 if k == 0 else self._node_of[(b, k)] for k in nodes], dtype=np.int64)
            for b, nodes in zip(loads.bus, loads.nodes, strict=True)
        )
        self._loads = load_branches(loads, self._node_of)
        inj = load_branches(circuit.injections, self._node_of, sign=-1.0)
        self._fixed = replace(inj, owner=np.full(len(inj), -1, dtype=np.int64))
        self._base_branches = concat_branches(self._loads, self._fixed)
        ends = np.concatenate([self._base_branches.node_from, self._base_branches.node_to])
        self.solver = select_solver(self.n_node, np.unique(ends[ends >= 0]).size, solver)
        self._solver = make_solver(self.solver, y_net + y_src, self._i_src, self.kv_base_ln * 1e3)
        # branch -> load summation (one-hot, sparse: dense it is branches x loads): the power
        # each load draws
        n_lb = len(self._loads)
        self._load_owner = sp.csr_matrix(
            (np.ones(n_lb), (np.arange(n_lb), self._loads.owner)), shape=(n_lb, self.n_load)
        )
        # the branches of each load are consecutive: the sum is a segment sum
        owner = self._loads.owner
        starts = np.flatnonzero(np.r_[True, np.diff(owner) != 0]) if owner.size else owner
        segments = self.n_load and np.array_equal(owner[starts], np.arange(self.n_load))
        self._owner_starts = starts if segments else None
        self._extra_cache: dict[bytes, Branches] = {}
        self.delta_pairs = self._make_delta_pairs()
        line_matrix, self.line_conductor, line_amps = self._rated_rows(circuit.lines)
        trafo_matrix, self.trafo_conductor, trafo_amps = self._rated_rows(circuit.transformers)
        self.bus3 = tuple(b for b in self.buses if all((b, p) in self._node_of for p in (1, 2, 3)))
        bus3_nodes = np.array(
            [[self._node_of[(b, p)] for p in (1, 2, 3)] for b in self.bus3], dtype=np.int64
        ).reshape(-1, 3)
        self._network = NetworkData(
            v_base_v=self.kv_base_ln * 1000.0,
            y_network=csr_arrays(y_net),
            y_source=csr_arrays(y_src),
            i_source_a=self._i_src,
            line_matrix=csr_arrays(line_matrix),
            line_norm_amps=line_amps,
            trafo_matrix=csr_arrays(trafo_matrix),
            trafo_norm_amps=trafo_amps,
            bus3_nodes=bus3_nodes,
        )
        self._warm_up()

    def _warm_up(self) -> None:
        """Solve the base load once, single and batched, so that the one-time work (loading
        the compiled kernels, the impedance columns of the load nodes, the preconditioner) is
        done when the model is built, not in its first solve. Leaves the base-load solution as
        the warm start."""
        # loads around the base, so that the batch takes single-precision increments too
        batch = self.solve(load_mult=np.linspace(0.9, 1.1, SMALL_BATCH + 1))
        _ = batch.losses_kw, batch.p_source_kw, batch.line_current_a, batch.vm_pu
        self.solve()

    def circuit_node_to_model(self, node_index: np.ndarray) -> np.ndarray:
        """Map circuit node indices (OpenDSS ``YNodeOrder``) to this model's node order.

        Parameters
        ----------
        node_index : numpy.ndarray of int
            Circuit node indices; -1 (ground) stays -1.

        Returns
        -------
        numpy.ndarray of int
            Model node indices.
        """
        idx = np.asarray(node_index, dtype=np.int64)
        return np.where(idx >= 0, self._inv[np.maximum(idx, 0)], -1)

    # -------------------------------------------------------------------------- regulators
    @property
    def regulator_taps(self) -> dict[str, float]:
        """Present tap of every regulator (RegControl name -> tap of its winding [pu])."""
        return dict(self._taps)

    def set_regulator_taps(self, taps: dict[str, float]) -> None:
        """Move regulator taps; the admittance changes by the regulators' ``Yprim`` difference.

        Parameters
        ----------
        taps : dict of str to float
            RegControl name -> tap of its controlled winding [pu]; each must be one of the
            transformer's tap positions (``min + k (max - min) / num_taps``).

        Raises
        ------
        ScenarioError
            Unknown regulator or a tap that is not a position (all listed).
        """
        regs = {r.name: r for r in self.circuit.regulators}
        problems, moves = [], []
        for name, tap in taps.items():
            reg = regs.get(str(name).lower())
            if reg is None:
                problems.append(f"regulator {name!r}: unknown; expected one of {sorted(regs)}")
                continue
            pos = reg.positions_pu
            k_new = int(np.argmin(np.abs(pos - float(tap))))
            if not abs(pos[k_new] - float(tap)) < 1e-6:
                step = (reg.max_tap_pu - reg.min_tap_pu) / max(reg.num_taps, 1)
                problems.append(
                    f"regulator {name!r}: tap {tap} pu is not a position; expected "
                    f"{reg.min_tap_pu} to {reg.max_tap_pu} pu in steps of {step:.6g} pu"
                )
                continue
            k_old = int(np.argmin(np.abs(pos - self._taps[reg.name])))
            if k_new != k_old:
                moves.append((reg, k_old, k_new))
        check_problems(problems, ScenarioError, f"feeder {self.name}: invalid regulator taps")
        if not moves:
            return
        n = self.n_node
        delta = sp.csc_matrix((n, n), dtype=complex)
        for reg, k_old, k_new in moves:
            idx = self.circuit_node_to_model(reg.node_index)
            keep = idx >= 0
            d = (reg.yprims[k_new] - reg.yprims[k_old])[np.ix_(keep, keep)]
            i = idx[keep]
            delta = (
                delta
                + sp.coo_matrix(
                    (d.ravel(), (np.repeat(i, i.size), np.tile(i, i.size))), shape=(n, n)
                ).tocsc()
            )
            self._taps[reg.name] = round(float(reg.positions_pu[k_new]), 10)
        self._y_net = (self._y_net + delta).tocsc()
        warm = self._solver.warm_state
        self._solver = make_solver(
            self.solver, self._y_net + self._y_src, self._i_src, self.kv_base_ln * 1000.0
        )
        self._solver.warm_state = warm
        # the regulators' transformers carry the current of their new tap
        trafo_matrix = self._rated_rows(
            self.circuit.transformers,
            {
                reg.transformer.lower(): reg.yprims[int(np.argmin(np.abs(reg.positions_pu - tap)))]
                for reg in self.circuit.regulators
                if (tap := self._taps[reg.name]) != round(float(reg.tap_pu), 10)
            },
        )[0]
        self._network = replace(
            self._network,
            y_network=csr_arrays(self._y_net),
            trafo_matrix=csr_arrays(trafo_matrix),
        )

    # ----------------------------------------------------------------------------- builders
    @classmethod
    def from_dss(
        cls, path: str | Path, *, name: str | None = None, solver: Solver3ph = Solver3ph.AUTO
    ) -> ThreePhaseFeederModel:
        """Read an OpenDSS model (see :func:`grids.opendss.read_dss`).

        Parameters
        ----------
        path : str or pathlib.Path
            Master ``.dss`` file.
        name : str, optional, keyword-only
            Feeder name (default: the circuit's name).
        solver : Solver3ph, keyword-only
            ``AUTO`` (by size), ``DENSE`` or ``SPARSE``.

        Returns
        -------
        ThreePhaseFeederModel
        """
        return cls(read_dss(path), name=name, solver=solver)

    @classmethod
    def from_name(cls, name: str, *, solver: Solver3ph = Solver3ph.AUTO) -> ThreePhaseFeederModel:
        """An embedded feeder (``"ieee13"``, ``"ieee34"``, ``"ieee123"``, ``"european_lv"``).

        Parameters
        ----------
        name : str
            Embedded name, or a path to a ``.dss`` file.
        solver : Solver3ph, keyword-only
            ``AUTO`` (by size), ``DENSE`` or ``SPARSE``.

        Returns
        -------
        ThreePhaseFeederModel
        """
        key = str(name).strip().lower()
        if key in EMBEDDED_FEEDERS:
            return cls.from_dss(DSS_DIR / EMBEDDED_FEEDERS[key], name=key, solver=solver)
        if key.endswith(".dss"):
            return cls.from_dss(name, solver=solver)
        raise FeederError(
            f"three-phase feeder {name!r}: unknown; expected one of "
            f"{', '.join(sorted(EMBEDDED_FEEDERS))} or a path to an OpenDSS .dss file"
        )

    def _make_delta_pairs(self) -> tuple[tuple[str, int, int], ...]:
        pairs = []
        for b in self.buses:
            phases = [p for p in (1, 2, 3) if (b, p) in self._node_of]
            if len(phases) == 3:
                pairs += [(b, 1, 2), (b, 2, 3), (b, 3, 1)]
            elif len(phases) == 2:
                pairs.append((b, phases[0], phases[1]))
        return tuple(pairs)

    def _rated_rows(self, table, yprims: dict[str, np.ndarray] | None = None):
        """Current rows of rated elements (lines, transformers): each phase conductor's
        ``Yprim`` row at terminal 1 over the model's nodes, its label and its rating.

        Parameters
        ----------
        table : grids.opendss.DssLines
            The elements.
        yprims : dict of str to numpy.ndarray, optional
            ``Yprim`` to use instead of the file's for some elements (a regulator at
            another tap).

        Returns
        -------
        tuple
            ``(matrix (n_conductor, n_node) complex, labels "element.phase", amps [A])``.
        """
        rows, cols, vals, labels, amps = [], [], [], [], []
        r = 0
        for k, name in enumerate(table.name):
            idx = self.circuit_node_to_model(table.node_index[k])
            y = (yprims or {}).get(name.lower(), table.yprim[k])
            keep = idx >= 0
            # terminal 1's first conductors are the phases (a line's or winding 1's)
            for c in range(int(table.phases[k])):
                rows.append(np.full(keep.sum(), r))
                cols.append(idx[keep])
                vals.append(y[c, keep])
                node = idx[c]
                phase = int(self.node_phase[node]) if node >= 0 else 0
                labels.append(f"{name}.{PHASE_LETTER.get(phase, str(phase))}")
                amps.append(table.norm_amps[k])
                r += 1
        n = self.node_bus.size
        if r == 0:
            return sp.csr_matrix((0, n), dtype=complex), (), np.zeros(0)
        mat = sp.coo_matrix(
            (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(r, n)
        ).tocsr()
        return mat, tuple(labels), np.array(amps, dtype=float)

    # ---------------------------------------------------------------------------- queries
    @property
    def n_node(self) -> int:
        """Number of nodes."""
        return int(self.node_bus.size)

    @property
    def n_load(self) -> int:
        """Number of loads."""
        return len(self.load_names)

    def node_index(self, bus: str, phase: int) -> int:
        """Index of the node of ``bus`` and ``phase`` (1, 2, 3 = a, b, c).

        Parameters
        ----------
        bus : str
            Bus name (case-insensitive).
        phase : int
            Node number.

        Returns
        -------
        int
        """
        key = (str(bus).lower(), int(phase))
        if key not in self._node_of:
            raise FeederError(f"feeder {self.name}: bus {bus!r} has no phase {phase}")
        return self._node_of[key]

    def node_indices(self, buses, phases) -> np.ndarray:
        """Vectorized :meth:`node_index`.

        Parameters
        ----------
        buses : sequence of str
            Bus names (case-insensitive).
        phases : sequence of int
            Node numbers (1, 2, 3 = a, b, c), one per bus.

        Returns
        -------
        numpy.ndarray of int
            Node indices.

        Raises
        ------
        FeederError
            Every (bus, phase) that does not exist, listed.
        """
        out, missing = [], []
        for bus, phase in zip(buses, phases, strict=True):
            key = (str(bus).lower(), int(phase))
            if key in self._node_of:
                out.append(self._node_of[key])
            else:
                missing.append(f"bus {bus!r} has no phase {phase}")
        check_problems(missing, FeederError, f"feeder {self.name}: unknown nodes")
        return np.array(out, dtype=np.int64)

    # ------------------------------------------------------------------------------ solve
    def _extra_branches(self, s_wye: np.ndarray | None, s_delta: np.ndarray | None):
        """The feeder's branches followed by one per nonzero extra injection (cached per
        pattern of injection points), and the extra branches' (S, nb) consumed power."""
        parts = []
        if s_wye is not None:
            nodes = np.flatnonzero(np.any(s_wye != 0, axis=0))
            parts.append((nodes, np.full(nodes.size, -1), s_wye[:, nodes]))
        if s_delta is not None:
            cols = np.flatnonzero(np.any(s_delta != 0, axis=0))
            a = np.array(
                [self._node_of[(self.delta_pairs[c][0], self.delta_pairs[c][1])] for c in cols],
                dtype=np.int64,
            )
            b = np.array(
                [self._node_of[(self.delta_pairs[c][0], self.delta_pairs[c][2])] for c in cols],
                dtype=np.int64,
            )
            parts.append((a, b, s_delta[:, cols]))
        if not parts:
            return None, None
        f = np.concatenate([p[0] for p in parts]).astype(np.int64)
        t = np.concatenate([p[1] for p in parts]).astype(np.int64)
        s = np.concatenate([p[2] for p in parts], axis=1)
        key = f.tobytes() + t.tobytes()
        br = self._extra_cache.get(key)
        if br is None:
            nb = f.size
            extra = Branches(
                node_from=f,
                node_to=t,
                s_va=np.zeros(nb, dtype=complex),
                v_base_v=self.kv_base_ln[f] * 1000.0,
                model=np.full(nb, MODEL_PQ_PURE),
                vminpu=np.zeros(nb),
                vmaxpu=np.full(nb, np.inf),
                vlowpu=np.zeros(nb),
                owner=np.full(nb, -1),
                p_exp=np.zeros(nb),
                q_exp=np.zeros(nb),
            )
            # cached with the feeder's own branches in front (what solve passes on)
            br = concat_branches(self._base_branches, extra)
            if len(self._extra_cache) >= 16:
                self._extra_cache.pop(next(iter(self._extra_cache)))
            self._extra_cache[key] = br
        return br, -s  # consumption positive [VA]

    def _check(self, name: str, value, width: int, n_scen: int | None) -> np.ndarray | None:
        if value is None:
            return None
        arr = np.asarray(value, dtype=float)
        if arr.ndim == 1:
            arr = arr[None, :]
        problems = []
        if arr.ndim != 2 or arr.shape[1] != width:
            problems.append(f"{name}: shape {np.shape(value)}, expected ({width},) or (S, {width})")
        elif not np.isfinite(arr).all():
            problems.append(f"{name}: holds NaN or infinite values")
        elif n_scen is not None and arr.shape[0] not in (1, n_scen):
            problems.append(f"{name}: {arr.shape[0]} scenarios, expected {n_scen}")
        check_problems(problems, ScenarioError, f"feeder {self.name}: invalid injections")
        return arr

    def _load_multiplier(self, name: str, value, problems: list[str]) -> np.ndarray:
        """A load multiplier as ``(S, n_load)``; problems appended (then a placeholder)."""
        placeholder = np.ones((1, self.n_load))
        try:
            mult = np.asarray(value, dtype=float)
        except (TypeError, ValueError):
            problems.append(f"{name}: {value!r}, expected a number or an array of multipliers >= 0")
            return placeholder
        if not np.isfinite(mult).all():
            problems.append(f"{name}: holds NaN or infinite values")
            return placeholder
        if (mult < 0).any():
            problems.append(f"{name}: {float(mult.min())} is negative, expected >= 0")
        if mult.ndim > 2 or (mult.ndim == 2 and mult.shape[1] != self.n_load):
            problems.append(f"{name}: shape {mult.shape}, expected (), (S,) or (S, {self.n_load})")
            return placeholder
        if mult.ndim == 0:
            return np.full((1, self.n_load), float(mult))
        if mult.ndim == 1:
            return np.repeat(mult[:, None], self.n_load, axis=1)
        return mult

    def solve(
        self,
        *,
        load_mult=1.0,
        load_mult_q=None,
        p_wye_mw=None,
        q_wye_mvar=None,
        p_delta_mw=None,
        q_delta_mvar=None,
        warm_start: bool = True,
        tol_pu: float = 1e-10,
        max_iter: int = 500,
    ) -> ThreePhaseResult:
        """Solve the unbalanced power flow for one or many scenarios.

        Parameters
        ----------
        load_mult : float or numpy.ndarray (S,) or (S, n_load), keyword-only
            Multiplier on every load's kW and kvar (like an OpenDSS load shape). A 1-D
            array is one multiplier per scenario; per-load multipliers of a single scenario
            are shape ``(1, n_load)``.
        load_mult_q : float or numpy.ndarray, optional, keyword-only
            A separate multiplier on every load's kvar, shaped like ``load_mult`` (an OpenDSS
            load shape's ``QMult``); default: ``load_mult`` scales both.
        p_wye_mw, q_wye_mvar : numpy.ndarray (n_node,) or (S, n_node), optional, keyword-only
            Extra constant-power injections phase-to-neutral per node [MW, Mvar] (injection
            positive: a charging vehicle is negative P).
        p_delta_mw, q_delta_mvar : numpy.ndarray (n_pair,) or (S, n_pair), optional
            Extra constant-power injections phase-to-phase on :attr:`delta_pairs` [MW, Mvar].
        warm_start : bool, keyword-only
            Start from the previous call's solution (a few scenarios; larger batches start
            from a reference solution of each load level).
        tol_pu : float, keyword-only
            Convergence tolerance [pu]: the last voltage update below it (a few scenarios),
            or the estimated distance to the solution (larger batches,
            :func:`grids.powerflow3ph_batch.chord_iterate`).
        max_iter : int, keyword-only
            Iteration limit (scenarios not converged by then are flagged, never raised).

        Returns
        -------
        ThreePhaseResult
        """
        problems: list[str] = []
        mult = self._load_multiplier("load_mult", load_mult, problems)
        mult_q = (
            None
            if load_mult_q is None
            else self._load_multiplier("load_mult_q", load_mult_q, problems)
        )
        if not (np.isfinite(tol_pu) and 0 < tol_pu < 0.01):
            problems.append(f"tol_pu: {tol_pu!r}, expected a tolerance in (0, 0.01) pu")
        if not (isinstance(max_iter, int | np.integer) and max_iter >= 1):
            problems.append(f"max_iter: {max_iter!r}, expected an integer >= 1")
        check_problems(problems, ScenarioError, f"feeder {self.name}: invalid load multiplier")
        n_node, n_pair = self.n_node, len(self.delta_pairs)
        arrays = [
            self._check("p_wye_mw", p_wye_mw, n_node, None),
            self._check("q_wye_mvar", q_wye_mvar, n_node, None),
            self._check("p_delta_mw", p_delta_mw, n_pair, None),
            self._check("q_delta_mvar", q_delta_mvar, n_pair, None),
        ]
        multipliers = [m for m in (mult, mult_q) if m is not None]
        n_scen = max(
            [m.shape[0] for m in multipliers] + [a.shape[0] for a in arrays if a is not None]
        )
        for name, a in zip(
            ("p_wye_mw", "q_wye_mvar", "p_delta_mw", "q_delta_mvar"), arrays, strict=True
        ):
            if a is not None and a.shape[0] not in (1, n_scen):
                raise ScenarioError(
                    f"feeder {self.name}: {name} has {a.shape[0]} scenarios, expected {n_scen}"
                )
        for name, m in (("load_mult", mult), ("load_mult_q", mult_q)):
            if m is not None and m.shape[0] not in (1, n_scen):
                raise ScenarioError(
                    f"feeder {self.name}: {name} has {m.shape[0]} scenarios, expected {n_scen}"
                )
        mult = np.broadcast_to(mult, (n_scen, self.n_load))

        def cplx(p, q, width):
            if p is None and q is None:
                return None
            out = np.zeros((n_scen, width), dtype=complex)
            if p is not None:
                out += p * 1e6
            if q is not None:
                out += 1j * q * 1e6
            return out

        branches = self._base_branches
        owner = self._loads.owner
        if mult_q is None:
            s_loads = self._loads.s_va[None, :] * mult[:, owner]
        else:
            mult_q = np.broadcast_to(mult_q, (n_scen, self.n_load))
            s_loads = self._loads.s_va.real[None, :] * mult[:, owner] + 1j * (
                self._loads.s_va.imag[None, :] * mult_q[:, owner]
            )
        s_va = np.concatenate(
            [
                s_loads,
                np.broadcast_to(self._fixed.s_va, (n_scen, len(self._fixed))),
            ],
            axis=1,
        )
        with_extra, s_extra = self._extra_branches(
            cplx(arrays[0], arrays[1], n_node), cplx(arrays[2], arrays[3], n_pair)
        )
        if with_extra is not None:
            branches = with_extra
            s_va = np.concatenate([s_va, s_extra], axis=1)
        out = self._solver.solve(
            branches, s_va, tol_pu=tol_pu, max_iter=max_iter, warm_start=warm_start
        )
        return self._result(out, branches)

    def _result(self, out, branches: Branches) -> ThreePhaseResult:
        # the loads' branches come first (see solve), then injections and extras
        powers = BranchPowers(out.branch_s_va, self._load_owner, self._owner_starts)
        return ThreePhaseResult(
            node_bus=self.node_bus,
            node_phase=self.node_phase,
            voltages=out.voltages,
            converged=out.converged,
            iterations=out.iterations,
            max_dv_pu=out.max_dv_pu,
            bus3=self.bus3,
            line_conductor=self.line_conductor,
            trafo_conductor=self.trafo_conductor,
            network=self._network,
            branch_powers=powers,
        )


def open_feeder_model(name_or_path: str | Path, **kwargs):
    """The feeder model for a name or file: three-phase for OpenDSS, balanced otherwise.

    Parameters
    ----------
    name_or_path : str or pathlib.Path
        A path ending in ``.dss`` or an embedded three-phase name (``"ieee13"``, ``"ieee34"``,
        ``"ieee123"``, ``"european_lv"``) gives a :class:`ThreePhaseFeederModel`; anything
        else goes to :meth:`grids.feeder_model.FeederModel.from_name`.
    **kwargs
        Passed to ``FeederModel.from_name`` (balanced feeders only).

    Returns
    -------
    ThreePhaseFeederModel or grids.feeder_model.FeederModel
    """
    key = str(name_or_path).strip()
    if is_three_phase_source(key):
        if kwargs:
            raise FeederError(
                f"feeder {key}: options {', '.join(sorted(kwargs))} apply to balanced feeders only"
            )
        return ThreePhaseFeederModel.from_name(key)
    return FeederModel.from_name(key, **kwargs)


def is_three_phase_source(name_or_path: str | Path) -> bool:
    """Whether a feeder name or path is read by the three-phase engine.

    Parameters
    ----------
    name_or_path : str or pathlib.Path
        Feeder name or file.

    Returns
    -------
    bool
        True for a path ending in ``.dss`` or an embedded three-phase name.
    """
    key = str(name_or_path).strip().lower()
    return key.endswith(".dss") or key in EMBEDDED_FEEDERS
