"""ThreePhaseFeederSim: an unbalanced three-phase feeder (OpenDSS model) in mosaik."""

from __future__ import annotations

import copy

import numpy as np

from cosim.attributes import THREE_PHASE_RECORDED
from cosim.simulators.base import LazyOutputs
from cosim.simulators.feeder import FEEDER_GRID_ATTRS, FeederSim
from grids.errors import ConvergenceError, ScenarioError, SimulationError
from grids.feeder3ph import ThreePhaseFeederModel
from grids.regulation3ph import RegulatorTapController, regulator_step_pu
from grids.thermal import DEFAULT_COOLING
from vehicle_models.phases import (
    LINE_TO_LINE_CODES,
    PHASES,
    SQRT3,
    connection_labels,
    line_to_line_base_pu,
    parse_connection_label,
    phase_injections,
    phase_voltage_pu,
)

THREE_PHASE_GRID_ATTRS = FEEDER_GRID_ATTRS + THREE_PHASE_RECORDED
THREE_PHASE_FEEDER_META = {
    "type": "time-based",
    "models": {
        "Grid": {
            "public": True,
            "params": [
                "feeder",
                "load_scale",
                "transformer",
                "load_profile",
                "load_column",
                "ambient_column",
                "start",
                "regulator_control",
            ],
            "attrs": THREE_PHASE_GRID_ATTRS,
        },
    },
}


class ThreePhaseFeederSim(FeederSim):
    """The three-phase feeder model (:class:`grids.feeder3ph.ThreePhaseFeederModel`) solved
    each step, with the substation transformer's IEC 60076-7 thermal state on the same clock.

    A thin adapter like :class:`~cosim.simulators.feeder.FeederSim` (same load profile,
    thermal model, same-time loop and outputs), for feeders read from OpenDSS: the injections
    it receives are per connection, keyed ``"<bus>.<phase>"``
    (:func:`vehicle_models.phases.connection_labels`: ``"671.a"`` line-to-neutral,
    ``"671.ab"`` line-to-line, ``"671.abc"`` balanced three-phase), and are passed to
    :meth:`~grids.feeder3ph.ThreePhaseFeederModel.solve` as per-node wye and per-pair delta
    injections (:func:`vehicle_models.phases.phase_injections`). Its voltages are per
    connection too: ``bus_vm_pu`` holds, for every bus, ``"<bus>.a"``... (line-to-neutral pu),
    ``"<bus>.ab"``... (line-to-line pu of the line-to-line base) and ``"<bus>.abc"`` (mean of
    the three) for every connection the bus offers (:func:`vehicle_models.phases.
    phase_voltage_pu`), so a fleet reads the voltage of each vehicle's own phase.

    Model ``Grid`` (one entity, no children). Params: ``feeder`` (embedded three-phase name or
    ``.dss`` path), ``load_scale`` [-], ``transformer``, ``load_profile``, ``load_column``,
    ``ambient_column``, ``start`` (as for ``FeederSim``). Outputs: those of ``FeederSim``
    (``vm_min_pu``/``vm_max_pu`` over all phase nodes; ``p_load_mw`` the loads' nominal power
    times the multiplier; ``max_trafo_loading_percent`` the largest winding-1 phase current of
    any transformer of the file over its normal rating (NaN without a rated transformer);
    ``line_loading_percent`` per line
    conductor ``"<line>.<phase>"``; ``n_deenergized_buses`` 0) plus ``vm_min_a_pu`` ...
    ``vm_max_c_pu`` (per phase [pu]), ``vuf_max_percent`` (largest voltage unbalance factor
    ``100 |V2| / |V1|`` over the three-phase buses [%]) and ``bus_vuf_percent`` ({bus: %} per
    three-phase bus).
    """

    def __init__(self) -> None:
        super().__init__()
        self.meta = {
            **self.meta,
            "models": copy.deepcopy(THREE_PHASE_FEEDER_META["models"]),
        }

    def create(
        self,
        num,
        model,
        feeder="ieee13",
        load_scale=1.0,
        transformer=None,
        load_profile=None,
        load_column="load_pu",
        ambient_column=None,
        start=None,
        regulator_control="time",
    ):
        if num != 1 or self.model is not None or model != "Grid":
            raise ScenarioError("ThreePhaseFeederSim: create exactly one Grid entity")
        if load_profile is not None:
            self._read_profile(load_profile, load_column, ambient_column, start)
        self.transformer = {
            "rating_mva": 5.0,
            "cooling": DEFAULT_COOLING.value,
            "ambient_c": 20.0,
            **(transformer or {}),
        }
        self.model = m = ThreePhaseFeederModel.from_name(feeder)
        if regulator_control not in ("time", "fixed"):
            raise ScenarioError(
                f"regulator_control: {regulator_control!r} (expected 'time' or 'fixed')"
            )
        # OpenDSS RegControls acting in time (delay, tap delay, band), as its time-driven
        # control mode; "fixed": the taps stay as in the file
        self.regulators = (
            RegulatorTapController(m)
            if regulator_control == "time" and m.circuit.regulators
            else None
        )
        self.n_tap_changes = 0
        self._tap_step_pu = {r.name: regulator_step_pu(r) for r in m.circuit.regulators}
        self.load_scale = float(load_scale)
        self._p_load_nominal_mw = float(np.sum(m.load_p_kw)) / 1000.0
        buses = [str(b) for b in m.buses]
        node_of = {
            (str(b), int(p)): i
            for i, (b, p) in enumerate(zip(m.node_bus, m.node_phase, strict=True))
        }
        # nodes of phases a, b, c per bus (-1: the bus lacks the phase)
        self._bus_nodes = np.array(
            [[node_of.get((b, p), -1) for p in (1, 2, 3)] for b in buses], dtype=np.intp
        )
        pair_of = {
            (str(b), frozenset((int(f), int(t)))): k for k, (b, f, t) in enumerate(m.delta_pairs)
        }
        self._node_of, self._pair_of = node_of, pair_of
        self._bus_row = {b.lower(): i for i, b in enumerate(buses)}
        self._buses = buses
        # every connection each bus offers: the keys of bus_vm_pu
        rows, codes = [], []
        for i, present in enumerate(self._bus_nodes >= 0):
            for code, phase in enumerate(PHASES):
                if all(present[c - 1] for c in phase.conductors):
                    rows.append(i)
                    codes.append(code)
        self._conn_row = np.asarray(rows, dtype=np.intp)
        self._conn_code = np.asarray(codes, dtype=np.int64)
        self._conn_keys = np.asarray(
            connection_labels(self._conn_row, self._conn_code, bus_names=buses)
        )
        self._phase_nodes = [np.flatnonzero(m.node_phase == p) for p in (1, 2, 3)]
        self._line_keys = np.asarray(m.line_conductor)
        self._bus3_keys = np.asarray([str(b) for b in m.bus3])
        self._inj_cache: dict[tuple, tuple] = {}
        self._ll_base_pu: np.ndarray | None = None
        self.entities["grid"] = {}
        return [{"eid": "grid", "type": model, "rel": []}]

    # --------------------------------------------------------------------------- injections
    def _injection_map(self, keys: tuple) -> tuple:
        """Connection codes and the node / pair index of each (-1: not used) for the keys of
        one source (looked up once per set of keys)."""
        found = self._inj_cache.get(keys)
        if found is not None:
            return found

        codes = np.empty(len(keys), dtype=np.int64)
        wye = np.full((len(keys), 3), -1, dtype=np.intp)
        delta = np.full((len(keys), 3), -1, dtype=np.intp)
        problems = []
        for i, key in enumerate(keys):
            try:
                bus_name, phase = parse_connection_label(key)
            except ScenarioError as error:
                problems.append(str(error))
                continue
            codes[i] = phase.code
            row = self._bus_row.get(bus_name.lower())
            bus = self._buses[row] if row is not None else bus_name
            if phase.is_line_to_line:
                column = ("ab", "bc", "ca").index(phase.value)
                k = self._pair_of.get((bus, frozenset(phase.conductors)), -1)
                delta[i, column] = k
                ok = k >= 0
            else:
                nodes = [self._node_of.get((bus, c), -1) for c in phase.conductors]
                for c, node in zip(phase.conductors, nodes, strict=True):
                    wye[i, c - 1] = node
                ok = min(nodes) >= 0
            if not ok:
                problems.append(
                    f"{key}: the feeder has no bus {bus_name} with phase(s) {phase.value}"
                )
        if problems:
            raise SimulationError(
                f"ThreePhaseFeederSim: injections on connections the feeder {self.model.name} "
                f"lacks: {'; '.join(problems[:10])}"
            )
        found = (codes, wye, delta)
        if len(self._inj_cache) > 32:
            self._inj_cache.clear()
        self._inj_cache[keys] = found
        return found

    def _injections(self, data: dict) -> tuple[np.ndarray, ...]:
        """Per-node wye and per-pair delta injections [MW, Mvar] from ``bus_p_mw`` and
        ``bus_q_mvar`` (each source keyed per connection; sources are summed)."""

        m = self.model
        p_wye, q_wye = np.zeros(m.n_node), np.zeros(m.n_node)
        p_delta, q_delta = np.zeros(len(m.delta_pairs)), np.zeros(len(m.delta_pairs))
        p_sources, q_sources = data.get("bus_p_mw") or {}, data.get("bus_q_mvar") or {}
        for source in set(p_sources) | set(q_sources):
            p_vec, q_vec = p_sources.get(source) or {}, q_sources.get(source) or {}
            keys = tuple(dict.fromkeys([*p_vec, *q_vec]))
            if not keys:
                continue
            codes, wye, delta = self._injection_map(keys)
            p = np.array([float(p_vec.get(k, 0.0)) for k in keys])
            q = np.array([float(q_vec.get(k, 0.0)) for k in keys])
            pw, qw, pd, qd = phase_injections(codes, p, q)
            for j in range(3):
                used = wye[:, j] >= 0
                np.add.at(p_wye, wye[used, j], pw[used, j])
                np.add.at(q_wye, wye[used, j], qw[used, j])
                used = delta[:, j] >= 0
                np.add.at(p_delta, delta[used, j], pd[used, j])
                np.add.at(q_delta, delta[used, j], qd[used, j])
        return p_wye, q_wye, p_delta, q_delta

    # --------------------------------------------------------------------------- step
    def step(self, time, inputs, max_advance):
        data = inputs.get("grid", {})
        if self._loop_repeat(time):
            # a pass of the same-time loop: the same step again with the fleet's new
            # injections; the thermal state goes back to the start of the step
            self.thermal = copy.deepcopy(self._loop_thermal)
            load_pu, ambient_c = self._loop_load
        else:
            load_pu, ambient_c = self._load_and_ambient(time, data)
            if self.same_time_loop:
                self._loop_thermal = copy.deepcopy(self.thermal)
                self._loop_load = (load_pu, ambient_c)
        p_wye, q_wye, p_delta, q_delta = self._injections(data)
        injections = {
            "load_mult": load_pu * self.load_scale,
            "p_wye_mw": p_wye,
            "q_wye_mvar": q_wye,
            "p_delta_mw": p_delta,
            "q_delta_mvar": q_delta,
        }
        if self.regulators is None:
            res = self.model.solve(**injections)
        else:
            taps_before = dict(self.model.regulator_taps)
            res = self.regulators.step(time_s=time * self.time_resolution, **injections)
            self.n_tap_changes += sum(
                round(abs(tap - taps_before[name]) / self._tap_step_pu[name])
                for name, tap in self.model.regulator_taps.items()
            )
        out = self._outputs(res, time)
        out["n_tap_changes"] = self.n_tap_changes
        out["load_pu_used"] = load_pu
        out["ambient_c_used"] = ambient_c
        out["p_load_mw"] = -self._p_load_nominal_mw * load_pu * self.load_scale
        out["p_extra_mw"] = float(p_wye.sum() + p_delta.sum())
        if self.thermal is None:
            self.thermal = self._thermal_model(out["transformer_load_pu"], ambient_c)
        out["top_oil_c"] = float(self.thermal.top_oil_c[0])
        out["hot_spot_c"] = float(self.thermal.hot_spot_c[0])
        out["ageing_h"] = float(self.thermal.ageing_h[0])
        if self.same_time_loop:
            self._loop_outputs(out)
        self._lazy = LazyOutputs(out, self._vectors, None)
        next_time, dt_s = self.advance(time)
        self.thermal.step(load_pu=out["transformer_load_pu"], ambient_c=ambient_c, dt_s=dt_s)
        return next_time

    def _apply_outages(self, lines: list[int]) -> None:
        raise SimulationError("line_outage: not available on a three-phase feeder")

    def _outputs(self, res, time: int) -> dict:

        if not res.converged[0]:
            try:
                res.raise_if_failed(label=f"three-phase power flow of {self.model.name}")
            except ConvergenceError as error:
                raise ConvergenceError(
                    f"{error.summary} at t = {time * self.time_resolution:g} s",
                    index=error.index,
                ) from None
        v = res.v_pu[0]
        nodes = self._bus_nodes
        v_bus = np.where(nodes >= 0, v[np.maximum(nodes, 0)], np.nan)
        v_conn = v_bus[self._conn_row]
        if self._ll_base_pu is None:
            # line-to-line base per connection: sqrt(3) on three-phase buses, 2 across the
            # legs of a split-phase secondary (from the angle between the phases, once)
            pair = np.isin(self._conn_code, LINE_TO_LINE_CODES)
            base = np.full(self._conn_code.size, SQRT3)
            frm = np.array([p.conductors[0] for p in PHASES])[self._conn_code[pair]] - 1
            to = np.array([p.conductors[-1] for p in PHASES])[self._conn_code[pair]] - 1
            rows = np.flatnonzero(pair)
            base[pair] = line_to_line_base_pu(v_conn[rows, frm], v_conn[rows, to])
            self._ll_base_pu = base
        vm_conn = phase_voltage_pu(self._conn_code, v_conn, ll_base_pu=self._ll_base_pu)
        self._vectors = {
            "bus_vm_pu": (self._conn_keys, vm_conn),
            "line_loading_percent": (self._line_keys, res.line_loading_percent[0]),
            "bus_vuf_percent": (self._bus3_keys, res.vuf_percent[0]),
        }
        vm = res.vm_pu[0]
        s_source_mva = float(np.hypot(res.p_source_kw[0], res.q_source_kvar[0])) / 1000.0
        p_source = float(res.p_source_kw[0]) / 1000.0
        loading = res.line_loading_percent[0]
        trafo = res.trafo_loading_percent[0]
        out = {
            "p_loss_mw": float(res.losses_kw[0]) / 1000.0,
            "q_loss_mvar": float(res.losses_kvar[0]) / 1000.0,
            "p_slack_mw": p_source,
            "q_slack_mvar": float(res.q_source_kvar[0]) / 1000.0,
            "n_iterations": int(res.iterations[0]),
            "n_deenergized_buses": 0,
            "vm_min_pu": float(res.vm_min_pu[0]),
            "vm_max_pu": float(res.vm_max_pu[0]),
            "max_line_loading_percent": (
                float(np.nanmax(loading)) if np.isfinite(loading).any() else float("nan")
            ),
            "max_trafo_loading_percent": (
                float(np.nanmax(trafo)) if np.isfinite(trafo).any() else float("nan")
            ),
            "p_grid_import_mw": p_source,
            "transformer_load_pu": s_source_mva / float(self.transformer["rating_mva"]),
            "vuf_max_percent": float(res.vuf_max_percent[0]),
        }
        for letter, idx in zip("abc", self._phase_nodes, strict=True):
            out[f"vm_min_{letter}_pu"] = float(vm[idx].min()) if idx.size else float("nan")
            out[f"vm_max_{letter}_pu"] = float(vm[idx].max()) if idx.size else float("nan")
        return out


__all__ = ["THREE_PHASE_FEEDER_META", "THREE_PHASE_GRID_ATTRS", "ThreePhaseFeederSim"]
