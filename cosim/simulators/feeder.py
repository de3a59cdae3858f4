"""FeederSim: the distribution feeder (power flow, substation transformer) in mosaik."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from cosim.profiles import read_profile
from cosim.simulators.base import (
    LazyOutputs,
    SimulatorBase,
    latest_input,
    sum_inputs,
)
from grids.errors import ScenarioError, SimulationError

# ---------------------------------------------------------------------------------------------
# FeederSim

FEEDER_GRID_ATTRS = [
    # inputs
    "load_pu",  # multiplier of the feeder's loads [-] (e.g. from a ProfileSim)
    "ambient_c",  # ambient temperature of the transformer [°C]
    "bus_p_mw",  # extra injection per bus {bus: MW} (e.g. from the FleetSim), summed
    "bus_q_mvar",  # extra injection per bus {bus: Mvar}, summed
    "lines_out",  # JSON list of line indices out of service (from the EventSim)
    # outputs
    "bus_vm_pu",
    "vm_min_pu",
    "vm_max_pu",
    "n_deenergized_buses",
    "load_pu_used",  # load multiplier applied this step [-] (input, own profile or 1)
    "ambient_c_used",  # transformer ambient temperature used this step [°C]
    "p_load_mw",
    "p_extra_mw",
    "p_loss_mw",
    "q_loss_mvar",
    "p_slack_mw",
    "q_slack_mvar",
    "p_grid_import_mw",
    "max_line_loading_percent",
    "line_loading_percent",
    "max_trafo_loading_percent",
    "transformer_load_pu",
    "top_oil_c",
    "hot_spot_c",
    "ageing_h",
    "n_iterations",
    "bus_vm_loop_pu",  # same-time loop: voltages sent back while not converged {bus: pu}
    "loop_passes",  # same-time loop: re-solves at this time so far [-]
    "loop_residual_pu",  # same-time loop: max |vm - vm the fleet used| [pu]
]
FEEDER_META = {
    "type": "time-based",
    "models": {
        "Grid": {
            "public": True,
            "params": [
                "feeder",
                "method",
                "load_scale",
                "ext_grid_vm_pu",
                "transformer",
                "load_profile",
                "load_column",
                "ambient_column",
                "start",
            ],
            "attrs": FEEDER_GRID_ATTRS,
        },
        "Bus": {"public": False, "params": [], "attrs": ["p_mw", "q_mvar", "vm_pu", "va_degree"]},
    },
}


class FeederSim(SimulatorBase):
    """A pandapower feeder solved each step (AC fast path or LinDistFlow) with the substation
    transformer's IEC 60076-7 thermal state stepped on the same clock.

    Model ``Grid`` (one entity, children ``Bus`` entities ``bus_<index>``). Params:
    ``feeder`` (embedded name or pandapower JSON path), ``method`` (``"ac"`` or
    ``"lindistflow"``), ``load_scale`` [-], ``ext_grid_vm_pu`` [pu], ``transformer`` (dict:
    ``rating_mva``, ``cooling``, ``ambient_c`` and optional IEC 60076-7 overrides),
    ``load_profile`` (optional CSV/Parquet file read as by :class:`ProfileSim`), with
    ``load_column`` (default ``"load_pu"``), ``ambient_column`` (optional) and ``start`` (ISO
    timestamp of simulated time 0): the feeder then looks up its own load multiplier (and
    ambient temperature) each step, zero-order hold as a ``ProfileSim`` would give it. This is
    the same data without a third simulator on the hot path of the mosaik scheduler (a profile
    simulator costs about as much scheduling per step as the power flow's adapter). Values
    received on the ``load_pu``/``ambient_c`` inputs take precedence over the file.

    The transformer thermal model is loaded with the apparent power drawn from the external
    grid, ``|S_slack| / rating_mva``: feeders such as ``case33bw`` have no transformer, so the
    substation transformer is modelled thermally with a nominal rating.

    Grid inputs: ``load_pu`` [-], ``ambient_c`` [°C], ``bus_p_mw``/``bus_q_mvar``
    ({bus: MW/Mvar}, summed), ``lines_out`` (JSON list). Bus inputs: ``p_mw``, ``q_mvar``.
    Grid outputs: ``bus_vm_pu`` ({bus: pu}; 0 for buses cut off by a line outage),
    ``vm_min_pu``, ``vm_max_pu`` [pu] (energized buses), ``n_deenergized_buses``, ``p_load_mw``,
    ``p_extra_mw`` (sum of extra injections received), ``p_loss_mw``, ``q_loss_mvar``,
    ``p_slack_mw``, ``q_slack_mvar``, ``p_grid_import_mw`` [MW], ``max_line_loading_percent``,
    ``line_loading_percent`` ({line: %}), ``max_trafo_loading_percent`` (the feeder's own
    transformers, 0 without), ``transformer_load_pu`` [-], ``top_oil_c``,
    ``hot_spot_c`` [°C], ``ageing_h`` [h], ``n_iterations`` [-], ``load_pu_used`` [-] and
    ``ambient_c_used`` [°C] (the values applied this step). Bus outputs: ``vm_pu``,
    ``va_degree``.
    """

    LOOP_TRIGGERS = ("bus_p_mw", "bus_q_mvar")

    def __init__(self) -> None:
        super().__init__(FEEDER_META)
        self.net = None
        self.solver = None
        self.method = "ac"
        self.lines_out: list[int] = []
        self.thermal = None
        self.transformer: dict = {}
        self._out: dict[str, Any] = {}
        self._bus_out: dict[str, dict] = {}
        self._profile_steps: np.ndarray | None = None
        self._profile_load: np.ndarray | None = None
        self._profile_ambient: np.ndarray | None = None
        self._vm_sent: np.ndarray | None = None  # same-time loop: last voltages sent

    def create(
        self,
        num,
        model,
        feeder="case33bw",
        method="ac",
        load_scale=1.0,
        ext_grid_vm_pu=None,
        transformer=None,
        load_profile=None,
        load_column="load_pu",
        ambient_column=None,
        start=None,
    ):
        if num != 1 or self.net is not None or model != "Grid":
            raise ScenarioError("FeederSim: create exactly one Grid entity")
        if load_profile is not None:
            self._read_profile(load_profile, load_column, ambient_column, start)
        from grids.powerflow import prepare_net

        self.method = str(getattr(method, "value", method))  # PowerFlowMethod or its word
        if self.method not in ("ac", "lindistflow"):
            raise ScenarioError(f"feeder.method: {method!r} is not 'ac' or 'lindistflow'")
        self.net = prepare_net(
            feeder,
            load_scale=float(load_scale),
            ext_grid_vm_pu=ext_grid_vm_pu,
            require_radial=self.method == "lindistflow",
        )
        self.transformer = {"rating_mva": 5.0, "cooling": "ONAN", "ambient_c": 20.0}
        self.transformer.update(transformer or {})
        self._build_solver()
        children = [{"eid": f"bus_{int(b)}", "type": "Bus", "rel": []} for b in self.solver.bus]
        self.entities["grid"] = {}
        return [{"eid": "grid", "type": model, "rel": [], "children": children}]

    def _read_profile(self, path, load_column: str, ambient_column: str | None, start) -> None:
        steps, frame = read_profile(path, start=start, time_resolution=self.time_resolution)
        missing = [c for c in (load_column, ambient_column) if c and c not in frame.columns]
        if missing:
            raise ScenarioError(
                f"feeder: column {missing[0]!r} is not in {Path(path).name} "
                f"(columns: {', '.join(map(str, frame.columns))})"
            )
        self._profile_steps = steps
        self._profile_cursor = 0
        self._profile_load = frame[load_column].to_numpy(dtype=float)
        self._profile_ambient = (
            frame[ambient_column].to_numpy(dtype=float) if ambient_column else None
        )

    def _profile_row(self, time: int) -> int:
        """Row of the profile in force at ``time`` (zero-order hold, first row before it)."""
        steps = self._profile_steps
        row = self._profile_cursor  # time only moves forward: usually this row or the next
        n_rows = len(steps)
        for candidate in (row, row + 1):
            if (
                candidate < n_rows
                and steps[candidate] <= time
                and (candidate + 1 == n_rows or time < steps[candidate + 1])
            ):
                self._profile_cursor = candidate
                return candidate
        row = max(0, int(np.searchsorted(steps, time, side="right")) - 1)
        self._profile_cursor = row
        return row

    def _build_solver(self) -> None:
        if self.method == "ac":
            from grids.powerflow import ACPowerFlow

            self.solver = ACPowerFlow(self.net)
        else:
            from grids.lindistflow import LinDistFlow

            self.solver = LinDistFlow(self.net)
        self.base_p_mw, self.base_q_mvar = self.solver.base_injection()
        self._base_p_sum_mw = float(self.base_p_mw.sum())
        self.bus_pos = {int(b): i for i, b in enumerate(self.solver.bus)}
        self._key_pos = {str(b): i for b, i in self.bus_pos.items()}
        self._idx_cache: dict[tuple, np.ndarray] = {}

    def _apply_outages(self, lines: list[int]) -> None:
        missing = [ln for ln in lines if ln not in self.net.line.index]
        if missing:
            raise SimulationError(f"line_outage: line {missing[0]} does not exist in the feeder")
        self.net.line.loc[lines, "in_service"] = False
        self.lines_out = list(lines)
        try:
            self._build_solver()
        except Exception as error:
            raise SimulationError(
                f"line_outage of lines {lines}: the feeder cannot be solved any more ({error})"
            ) from None

    def _thermal_model(self, load_pu: float, ambient_c: float):
        from grids.thermal import CoolingMode, Paper, ThermalParameters, TransformerThermalModel

        overrides = {
            k: v
            for k, v in self.transformer.items()
            if k not in ("rating_mva", "cooling", "ambient_c")
        }
        if "paper" in overrides:
            overrides["paper"] = Paper(overrides["paper"])
        cooling = CoolingMode(self.transformer["cooling"])
        params = ThermalParameters.for_cooling(cooling, **overrides)
        return TransformerThermalModel(params, n=1, load_pu0=load_pu, ambient_c0=ambient_c)

    def step(self, time, inputs, max_advance):
        data = inputs.get("grid", {})
        repeat = self._loop_repeat(time)
        if repeat:
            # a pass of the same-time loop: the same time step again with the fleet's new
            # injections; the thermal state goes back to the start of the step
            self.thermal = copy.deepcopy(self._loop_thermal)
            load_pu, ambient_c = self._loop_load
        else:
            load_pu, ambient_c = self._load_and_ambient(time, data)
            if self.same_time_loop:
                self._loop_thermal = copy.deepcopy(self.thermal)
                self._loop_load = (load_pu, ambient_c)
        n_bus = len(self.solver.bus)
        extra_p = np.zeros(n_bus)
        extra_q = np.zeros(n_bus)
        self._add_vectors(extra_p, data.get("bus_p_mw"))
        self._add_vectors(extra_q, data.get("bus_q_mvar"))
        for eid, bus_inputs in inputs.items():
            if eid.startswith("bus_"):
                i = self._pos(int(eid[4:]))
                extra_p[i] += sum_inputs(bus_inputs.get("p_mw"))
                extra_q[i] += sum_inputs(bus_inputs.get("q_mvar"))
        p_mw = self.base_p_mw * load_pu + extra_p
        q_mvar = self.base_q_mvar * load_pu + extra_q
        out = self._solve(p_mw, q_mvar, time)
        out["load_pu_used"] = load_pu
        out["ambient_c_used"] = ambient_c
        out["p_load_mw"] = -self._base_p_sum_mw * load_pu
        out["p_extra_mw"] = float(extra_p.sum())
        s_mva = math.hypot(out["p_slack_mw"], out["q_slack_mvar"])
        out["transformer_load_pu"] = s_mva / float(self.transformer["rating_mva"])
        if self.thermal is None:
            self.thermal = self._thermal_model(out["transformer_load_pu"], ambient_c)
        out["top_oil_c"] = float(self.thermal.top_oil_c[0])
        out["hot_spot_c"] = float(self.thermal.hot_spot_c[0])
        out["ageing_h"] = float(self.thermal.ageing_h[0])
        if self.same_time_loop:
            self._loop_outputs(out)
        self._lazy = LazyOutputs(out, self._vectors, self._child)
        next_time, dt_s = self.advance(time)
        self.thermal.step(load_pu=out["transformer_load_pu"], ambient_c=ambient_c, dt_s=dt_s)
        return next_time

    def _load_and_ambient(self, time: int, data: dict) -> tuple[float, float]:
        """Apply outage inputs; the load multiplier and ambient temperature of this step."""
        lines_json = latest_input(data.get("lines_out"))
        if lines_json is not None:
            lines = json.loads(lines_json)
            if sorted(lines) != sorted(self.lines_out):
                self._apply_outages(lines)
        load_default = 1.0
        ambient_default = self.transformer["ambient_c"]
        if self._profile_steps is not None:
            row = self._profile_row(time)
            load_default = self._profile_load[row]
            if self._profile_ambient is not None:
                ambient_default = self._profile_ambient[row]
        load_pu = float(latest_input(data.get("load_pu"), load_default))
        ambient_c = float(latest_input(data.get("ambient_c"), ambient_default))
        return load_pu, ambient_c

    def _loop_outputs(self, out: dict) -> None:
        """Same-time loop: send the voltages back (``bus_vm_loop_pu``) unless they equal, within
        ``loop_tolerance_pu``, the ones the fleet used, or the pass limit is reached. Without
        that output mosaik does not trigger the fleet again and the time step ends."""
        bus, vm = self._vectors["bus_vm_pu"]
        sent = self._vm_sent
        residual = float(np.max(np.abs(vm - sent))) if sent is not None else float("inf")
        out["loop_passes"] = self._loop_pass
        out["loop_residual_pu"] = residual
        self._vectors.pop("bus_vm_loop_pu", None)
        if residual > self.loop_tolerance_pu and self._loop_pass < self.loop_max_iterations:
            self._vectors["bus_vm_loop_pu"] = (bus, vm)
            self._vm_sent = vm.copy()

    def _add_vectors(self, target: np.ndarray, sources: dict | None) -> None:
        """Add ``{source: {bus: value}}`` vector inputs into ``target`` (bus array order)."""
        if not sources:
            return
        for vector in sources.values():
            # a source sends the same buses every step: their positions are looked up once
            keys = tuple(vector)
            idx = self._idx_cache.get(keys)
            if idx is None:
                try:
                    idx = np.array([self._key_pos[k] for k in keys], dtype=np.intp)
                except KeyError:
                    bad = next(k for k in keys if k not in self._key_pos)
                    raise SimulationError(
                        f"FeederSim: bus {bad} is not a bus of the feeder"
                    ) from None
                if len(self._idx_cache) > 32:
                    self._idx_cache.clear()
                self._idx_cache[keys] = idx
            # distinct keys are distinct buses: a plain fancy-index add is exact
            target[idx] += np.fromiter(vector.values(), float, len(idx))

    def _pos(self, bus: int) -> int:
        try:
            return self.bus_pos[int(bus)]
        except KeyError:
            raise SimulationError(f"FeederSim: bus {bus} is not a bus of the feeder") from None

    def _solve(self, p_mw: np.ndarray, q_mvar: np.ndarray, time: int) -> dict:
        bus = self.solver.bus
        if self.method == "ac":
            res = self.solver.solve(p_mw, q_mvar)
            if not bool(res.converged[0]):
                from grids.errors import ConvergenceError

                raise ConvergenceError(
                    f"AC power flow did not converge at t = {time * self.time_resolution:g} s "
                    f"(worst bus {int(res.worst_bus[0])})",
                    index=int(time),
                    worst_bus=int(res.worst_bus[0]),
                )
            vm = res.vm_pu[0]
            va = res.va_degree[0]
            line_loading = res.line_loading_percent[0]
            trafo_loading = res.trafo_loading_percent[0]
            out = {
                "p_loss_mw": float(res.p_loss_mw[0]),
                "q_loss_mvar": float(res.q_loss_mvar[0]),
                "p_slack_mw": float(res.p_slack_mw[0]),
                "q_slack_mvar": float(res.q_slack_mvar[0]),
                "n_iterations": int(res.iterations[0]),
            }
        else:
            vm = self.solver.vm_pu(p_mw, q_mvar)[0]
            va = np.zeros_like(vm)
            line_loading = self.solver.line_loading_percent(p_mw, q_mvar)[0]
            trafo_loading = self.solver.trafo_loading_percent(p_mw, q_mvar)[0]
            # LinDistFlow is lossless: the slack supplies the net load
            out = {
                "p_loss_mw": 0.0,
                "q_loss_mvar": 0.0,
                "p_slack_mw": float(-p_mw.sum()),
                "q_slack_mvar": float(-q_mvar.sum()),
                "n_iterations": 0,
            }
        line_idx = getattr(self.solver, "line", None)
        if line_idx is None:
            line_idx = np.arange(len(line_loading))
        # buses cut off by an outage have no voltage: they report 0 pu (so that inverters
        # there see a dead bus) and are left out of the min/max over energized buses
        vm_min = float(vm.min())
        if not math.isnan(vm_min):  # the usual case: every bus energized, no masking
            vm_max = float(vm.max())
            out["n_deenergized_buses"] = 0
        else:
            energized = np.isfinite(vm)
            out["n_deenergized_buses"] = int(np.count_nonzero(~energized))
            vm_min = float(vm[energized].min())
            vm_max = float(vm[energized].max())
            vm = np.where(energized, vm, 0.0)
            va = np.where(energized, va, 0.0)
            line_loading = np.nan_to_num(line_loading, nan=0.0)
        self._vectors = {"bus_vm_pu": (bus, vm), "line_loading_percent": (line_idx, line_loading)}
        out["vm_min_pu"] = vm_min
        out["vm_max_pu"] = vm_max
        out["max_line_loading_percent"] = float(line_loading.max()) if len(line_loading) else 0.0
        trafo_loading = np.asarray(trafo_loading, dtype=float)
        trafo_max = float(trafo_loading.max()) if trafo_loading.size else 0.0
        if math.isnan(trafo_max):  # transformers cut off by an outage carry nothing
            trafo_max = float(np.nan_to_num(trafo_loading, nan=0.0).max())
        out["max_trafo_loading_percent"] = trafo_max
        out["p_grid_import_mw"] = out["p_slack_mw"]
        self._bus_arrays = (vm, va)
        return out

    def _child(self, eid: str) -> dict:
        i = self._pos(int(eid[4:]))
        vm, va = self._bus_arrays
        return {"vm_pu": float(vm[i]), "va_degree": float(va[i])}

    def get_data(self, outputs):
        return {eid: self._lazy.get(eid, attrs, "grid") for eid, attrs in outputs.items()}
