"""FeederSim: the distribution feeder (power flow, substation transformer) in mosaik."""

from __future__ import annotations

import copy
import json
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
from grids.errors import FeederError, ScenarioError, SimulationError
from grids.fault import FaultModel
from grids.feeder_model import FeederModel, SolveMethod
from grids.simbench import is_simbench_name, simbench_profiles
from grids.thermal import (
    DEFAULT_COOLING,
    CoolingMode,
    Paper,
    ThermalParameters,
    TransformerThermalModel,
)

# ---------------------------------------------------------------------------------------------
# FeederSim

FEEDER_GRID_ATTRS = [
    # inputs
    "load_pu",  # multiplier of the feeder's loads [-] (e.g. from a ProfileSim)
    "ambient_c",  # ambient temperature of the transformer [°C]
    "bus_p_mw",  # extra injection per bus {bus: MW} (e.g. from the FleetSim), summed
    "bus_q_mvar",  # extra injection per bus {bus: Mvar}, summed
    "lines_out",  # JSON list of line indices out of service (from the EventSim)
    "island",  # island request: True opens the breaker to the bulk grid, False recloses it
    "f_hz",  # island frequency from the FrequencySim [Hz] (reconnection sync check)
    "fault_event",  # JSON object of the fault in force, "" for none (from the EventSim)
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
    "fault_vm_min_pu",  # lowest retained voltage during a fault [pu] (NaN without a fault)
    "bus_vm_loop_pu",  # same-time loop: voltages sent back while not converged {bus: pu}
    "loop_passes",  # same-time loop: re-solves at this time so far [-]
    "loop_residual_pu",  # same-time loop: max |vm - vm the fleet used| [pu]
    # island (only with the ``island`` param)
    "breaker_open",  # state of the breaker to the bulk grid (open: True)
    "reconnect_blocked",  # a reconnection request held outside the synchronisation window
    "p_gfm_mw",  # output of the grid-forming units while islanded [MW]
    "island_f_pf_hz",  # steady-state frequency of the droops (islanded power flow) [Hz]
    "sync_delta_f_hz",  # island minus grid across the open breaker [Hz]
    "sync_delta_v_pu",  # [pu]
    "sync_delta_theta_degree",  # [degree]
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
                "island",
                "replace_ev_loads",
            ],
            "attrs": FEEDER_GRID_ATTRS,
        },
        "Bus": {"public": False, "params": [], "attrs": ["p_mw", "q_mvar", "vm_pu", "va_degree"]},
    },
}


class FeederSim(SimulatorBase):
    """The feeder model (:class:`grids.feeder_model.FeederModel`) solved each step, with the
    substation transformer's IEC 60076-7 thermal state stepped on the same clock.

    A thin adapter: the solver (AC or LinDistFlow), line outages, the lossless-slack rule,
    buses cut off from the grid and the substation loading ``|S_slack| / rating`` are the
    feeder model's (:class:`grids.feeder_model.FeederResult`); the adapter turns mosaik inputs
    into bus injections and the result into outputs.

    Model ``Grid`` (one entity, children ``Bus`` entities ``bus_<index>``). Params:
    ``feeder`` (embedded name or pandapower JSON path), ``method`` (``"ac"`` or
    ``"lindistflow"``, a :class:`grids.feeder_model.SolveMethod`), ``load_scale`` [-],
    ``ext_grid_vm_pu`` [pu], ``transformer`` (dict: ``rating_mva``, ``cooling`` (default
    :data:`grids.thermal.DEFAULT_COOLING`), ``ambient_c`` and optional IEC 60076-7 overrides),
    ``load_profile`` (optional CSV/Parquet file read as by :class:`ProfileSim`), with
    ``load_column`` (default ``"load_pu"``), ``ambient_column`` (optional) and ``start`` (ISO
    timestamp of simulated time 0): the feeder then looks up its own load multiplier (and
    ambient temperature) each step, zero-order hold as a ``ProfileSim`` would give it. This is
    the same data without a third simulator on the hot path of the mosaik scheduler (a profile
    simulator costs about as much scheduling per step as the power flow's adapter). Values
    received on the ``load_pu``/``ambient_c`` inputs take precedence over the file.
    A SimBench feeder (``simbench:<code>``) without a ``load_profile`` follows its own year-long
    profiles (:func:`grids.simbench.simbench_profiles`: loads, PV, storage and EV charging per
    bus, 15-min zero-order hold from ``start``, default the profiles' first step); the
    ``load_pu`` input still scales them.

    The transformer thermal model is loaded with the feeder model's substation loading
    ``|S_slack| / rating_mva`` (``transformer_load_pu``): feeders such as ``case33bw`` have no
    transformer, so the substation transformer is modelled thermally with a nominal rating.

    Grid inputs: ``load_pu`` [-], ``ambient_c`` [°C], ``bus_p_mw``/``bus_q_mvar``
    ({bus: MW/Mvar}, summed), ``lines_out`` (JSON list), ``fault_event`` (JSON object of the fault
    in force, ``""`` for none). Bus inputs: ``p_mw``, ``q_mvar``.

    During a fault the power flow of the step is the pre-fault state and the voltages sent
    (``bus_vm_pu``, ``vm_min_pu``, ``vm_max_pu``, the buses' ``vm_pu``/``va_degree``) are the
    retained voltages of :class:`grids.fault.FaultModel` (superposition on that state, loads
    as admittances); ``fault_vm_min_pu`` is their minimum. Flows and losses stay those of the
    pre-fault power flow. After clearing, the next power flow gives the voltages again.
    Grid outputs: ``bus_vm_pu`` ({bus: pu}; 0 for buses cut off by a line outage),
    ``vm_min_pu``, ``vm_max_pu`` [pu] (energized buses), ``n_deenergized_buses``, ``p_load_mw``,
    ``p_extra_mw`` (sum of extra injections received), ``p_loss_mw``, ``q_loss_mvar``,
    ``p_slack_mw``, ``q_slack_mvar``, ``p_grid_import_mw`` [MW], ``max_line_loading_percent``,
    ``line_loading_percent`` ({line: %}; NaN for a line without a rating, out of service or
    dead, never 0 %; ``max_line_loading_percent`` NaN when no line is rated),
    ``max_trafo_loading_percent`` (the feeder's own transformers, NaN without),
    ``transformer_load_pu`` [-], ``top_oil_c``,
    ``hot_spot_c`` [°C], ``ageing_h`` [h], ``n_iterations`` [-], ``load_pu_used`` [-] and
    ``ambient_c_used`` [°C] (the values applied this step). Bus outputs: ``vm_pu``,
    ``va_degree``.

    Island (param ``island``: the grid-forming fleet's buses, rating and droops, see
    :class:`cosim.simulators.island.IslandConfig`): input ``island`` (the request) opens the
    breaker at the external grid bus; while open, the feeder is solved by the islanded power
    flow (:class:`grids.island.IslandPowerFlow`: no slack, import 0, line loadings NaN) and a
    reconnection request waits for the synchronisation window (:mod:`grids.synchronisation`,
    with the island frequency ``f_hz`` from the FrequencySim). Outputs ``breaker_open`` (the
    breaker), ``reconnect_blocked``, ``p_gfm_mw``, ``island_f_pf_hz``, ``sync_delta_f_hz``,
    ``sync_delta_v_pu``, ``sync_delta_theta_degree`` (:mod:`cosim.simulators.island`).
    """

    LOOP_TRIGGERS = ("bus_p_mw", "bus_q_mvar")

    def __init__(self) -> None:
        super().__init__(FEEDER_META)
        self.net = None
        self.model: FeederModel | None = None
        self.method = SolveMethod.AC
        self.lines_out: list[int] = []
        self.thermal = None
        self.transformer: dict = {}
        self._out: dict[str, Any] = {}
        self._bus_out: dict[str, dict] = {}
        self._profile_steps: np.ndarray | None = None
        self._feeder_profiles = None  # FeederProfiles of a SimBench feeder
        self._profile_load: np.ndarray | None = None
        self._profile_ambient: np.ndarray | None = None
        self._vm_sent: np.ndarray | None = None  # same-time loop: last voltages sent
        self.breaker = None  # cosim.simulators.island.IslandBreaker with the ``island`` param
        self._fault: dict | None = None
        self._fault_models: dict[tuple, Any] = {}

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
        island=None,
        replace_ev_loads=False,
    ):
        if num != 1 or self.net is not None or model != "Grid":
            raise ScenarioError("FeederSim: create exactly one Grid entity")
        if load_profile is not None:
            self._read_profile(load_profile, load_column, ambient_column, start)
        try:
            self.method = SolveMethod(getattr(method, "value", method))
        except ValueError:
            raise ScenarioError(
                f"feeder.method: {method!r} is not one of "
                f"{', '.join(repr(m.value) for m in SolveMethod)}"
            ) from None
        self.transformer = {
            "rating_mva": 5.0,
            "cooling": DEFAULT_COOLING.value,
            "ambient_c": 20.0,
            **(transformer or {}),
        }
        # the one feeder model: solver choice, outages, slack rule, dead buses and the
        # substation loading |S_slack| / rating live there (grids.feeder_model)
        self.model = FeederModel.from_name(
            feeder,
            load_scale=float(load_scale),
            ext_grid_vm_pu=ext_grid_vm_pu,
            substation_rating_mva=float(self.transformer["rating_mva"]),
        ).prepare(self.method)
        self.net = self.model.net
        self.base_p_mw, self.base_q_mvar = self.model.base_injection()
        if load_profile is None and is_simbench_name(feeder):
            profiles = simbench_profiles(self.model.net, self.model).window(start)
            if replace_ev_loads and profiles.ev_p_mw is not None:
                # an adopted fleet stands in for the grid's own EV charging points: their
                # demand (consumption positive, reactive part zero in SimBench) comes out
                profiles = profiles.without_ev()
            self._feeder_profiles = profiles
        self.bus = np.asarray(self.model.bus)
        self.bus_pos = {int(b): i for i, b in enumerate(self.bus)}
        self._key_pos = {str(b): i for b, i in self.bus_pos.items()}
        self._idx_cache: dict[tuple, np.ndarray] = {}
        children = [{"eid": f"bus_{int(b)}", "type": "Bus", "rel": []} for b in self.bus]
        if island is not None:
            # lazy: the island model (and its islanded power flow) only for island events
            from cosim.simulators.island import IslandBreaker, IslandConfig

            v_grid = float(self.net.ext_grid.vm_pu.iloc[0])
            if not isinstance(island, IslandConfig) and island.get("v0_pu") is None:
                island = {**island, "v0_pu": v_grid}  # the units form the grid's voltage
            config = island if isinstance(island, IslandConfig) else IslandConfig.from_dict(island)
            self.breaker = IslandBreaker(self.net, config, v_grid_pu=v_grid)
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

    def _base_at(self, time: int) -> tuple[np.ndarray, np.ndarray]:
        """The feeder's own injections at ``time``: a SimBench feeder's profile row (held
        for its 15 minutes), else the net's base injection."""
        profiles = self._feeder_profiles
        if profiles is None:
            return self.base_p_mw, self.base_q_mvar
        row = int(time * self.time_resolution // profiles.step_s)
        if row >= profiles.n_steps:
            end = profiles.time[-1] + np.timedelta64(int(profiles.step_s), "s")
            raise SimulationError(
                f"{self.model.name}: simulated time {time * self.time_resolution:g} s runs past "
                f"the end of its profiles ({end}); shorten simulation.duration_s or start earlier"
            )
        return profiles.p_mw[row], profiles.q_mvar[row]

    def _apply_outages(self, lines: list[int]) -> None:
        try:
            self.model.with_outages(lines).prepare(self.method)
        except FeederError as error:
            raise SimulationError(
                f"line_outage of lines {list(lines)}: the feeder cannot be solved ({error})"
            ) from None
        self.lines_out = list(lines)

    def _thermal_model(self, load_pu: float, ambient_c: float):
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
        n_bus = len(self.bus)
        extra_p = np.zeros(n_bus)
        extra_q = np.zeros(n_bus)
        self._add_vectors(extra_p, data.get("bus_p_mw"))
        self._add_vectors(extra_q, data.get("bus_q_mvar"))
        for eid, bus_inputs in inputs.items():
            if eid.startswith("bus_"):
                i = self._pos(int(eid[4:]))
                extra_p[i] += sum_inputs(bus_inputs.get("p_mw"))
                extra_q[i] += sum_inputs(bus_inputs.get("q_mvar"))
        base_p, base_q = self._base_at(time)
        p_mw = base_p * load_pu + extra_p
        q_mvar = base_q * load_pu + extra_q
        if self.breaker is None:
            out = self._solve(p_mw, q_mvar, time)
        else:
            out = self._solve_with_breaker(p_mw, q_mvar, time, data)
        out["fault_vm_min_pu"] = float("nan")
        if self._fault is not None:
            if self.breaker is not None and self.breaker.islanded:
                raise SimulationError(
                    f"fault at bus {self._fault.get('bus')} at t = "
                    f"{time * self.time_resolution:g} s while the feeder is islanded: the fault "
                    "calculation needs the external grid's source (not modelled in an island)"
                )
            self._apply_fault(out, p_mw, q_mvar)
        out["load_pu_used"] = load_pu
        out["ambient_c_used"] = ambient_c
        out["p_load_mw"] = -float(base_p.sum()) * load_pu
        out["p_extra_mw"] = float(extra_p.sum())
        if self.thermal is None:
            self.thermal = self._thermal_model(out["transformer_load_pu"], ambient_c)
        out["top_oil_c"] = float(self.thermal.top_oil_c[0])
        out["hot_spot_c"] = float(self.thermal.hot_spot_c[0])
        out["ageing_h"] = float(self.thermal.ageing_h[0])
        if self.same_time_loop:
            self._loop_outputs(out)
        self._lazy = LazyOutputs(out, self._vectors, self._child)
        next_time, dt_s = self.advance(time)
        if self.breaker is not None and self.breaker.islanded and not repeat:
            self.breaker.advance(self._f_island_hz, dt_s)  # once per step, not per loop pass
        self.thermal.step(load_pu=out["transformer_load_pu"], ambient_c=ambient_c, dt_s=dt_s)
        return next_time

    def _load_and_ambient(self, time: int, data: dict) -> tuple[float, float]:
        """Apply outage inputs; the load multiplier and ambient temperature of this step."""
        fault_json = latest_input(data.get("fault_event"))
        if fault_json is not None:
            self._fault = json.loads(fault_json) if fault_json else None
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
        res = self.model.solve(p_mw, q_mvar, method=self.method, lines_out=self.lines_out)
        if not res.converged[0]:
            res.raise_if_failed(label="AC power flow", time_s=time * self.time_resolution)
        # buses cut off by an outage report 0 pu (an inverter there sees a dead bus); the
        # minimum and maximum are over the energized buses (FeederResult)
        n_dead = res.n_dead_buses
        vm = res.vm_energized_pu()[0] if n_dead else res.vm_pu[0]
        va = np.where(res.dead_bus, 0.0, res.va_degree[0]) if n_dead else res.va_degree[0]
        # NaN: an unrated, out-of-service or dead line (not a 0 % loading)
        line_loading = res.line_loading_percent[0]
        self._vectors = {
            "bus_vm_pu": (res.bus, vm),
            "line_loading_percent": (res.line, line_loading),
        }
        self._bus_arrays = (vm, va)
        p_slack = float(res.p_slack_mw[0])
        # the reductions are the feeder model's (FeederResult); they are evaluated only when
        # an output asks for them (LazyOutputs), off the hot path of runs that do not record
        return {
            "p_loss_mw": float(res.p_loss_mw[0]),
            "q_loss_mvar": float(res.q_loss_mvar[0]),
            "p_slack_mw": p_slack,
            "q_slack_mvar": float(res.q_slack_mvar[0]),
            "n_iterations": int(res.iterations[0]),
            "n_deenergized_buses": n_dead,
            "vm_min_pu": lambda: float(res.vm_min_pu[0]),
            "vm_max_pu": lambda: float(res.vm_max_pu[0]),
            # NaN when no line is rated (e.g. case33bw) / the feeder has no transformer
            "max_line_loading_percent": lambda: float(res.max_line_loading_percent[0]),
            "max_trafo_loading_percent": lambda: float(res.max_trafo_loading_percent[0]),
            "p_grid_import_mw": p_slack,
            "transformer_load_pu": float(res.substation_loading_pu[0]),
        }

    def _solve_with_breaker(self, p_mw, q_mvar, time: int, data: dict) -> dict:
        """Connected or islanded solve; the breaker opens/closes as requested (sync check)."""
        breaker = self.breaker
        request = bool(latest_input(data.get("island"), False))
        self._f_island_hz = float(latest_input(data.get("f_hz"), breaker.config.f0_hz))
        nan = float("nan")
        if not breaker.islanded:
            # connected, or the instant before the breaker opens (the import lost)
            out = self._solve(p_mw, q_mvar, time)
            if request:
                breaker.open(self._bus_arrays[1], self.bus)
            out.update(
                breaker_open=breaker.islanded,
                reconnect_blocked=False,
                p_gfm_mw=0.0,
                island_f_pf_hz=nan,
                sync_delta_f_hz=nan,
                sync_delta_v_pu=nan,
                sync_delta_theta_degree=nan,
            )
            return out
        step = breaker.island_step(
            p_mw,
            q_mvar,
            lines_out=self.lines_out,
            request_island=request,
            f_hz=self._f_island_hz,
        )
        res, check = step["result"], step["check"]
        if not res.converged[0]:
            raise SimulationError(
                f"islanded power flow did not converge at t = {time * self.time_resolution:g} s "
                f"(grid-forming units at buses {[u.bus for u in breaker.config.units]})"
            )
        vm = np.where(res.dead_bus, 0.0, res.vm_pu[0])
        va = np.where(res.dead_bus, 0.0, step["va_degree"])
        self._vectors = {
            "bus_vm_pu": (res.bus, vm),
            "line_loading_percent": (self.model.line, np.full(len(self.model.line), nan)),
        }
        self._bus_arrays = (vm, va)
        return {
            "p_loss_mw": float(res.p_loss_mw[0]),
            "q_loss_mvar": float(res.q_loss_mvar[0]),
            "p_slack_mw": 0.0,
            "q_slack_mvar": 0.0,
            "n_iterations": int(res.iterations[0]),
            "n_deenergized_buses": int(res.dead_bus.sum()),
            "vm_min_pu": float(res.vm_min_pu[0]),
            "vm_max_pu": float(res.vm_max_pu[0]),
            "max_line_loading_percent": nan,  # the islanded power flow gives no loadings
            "max_trafo_loading_percent": nan,
            "p_grid_import_mw": 0.0,
            "transformer_load_pu": 0.0,
            "breaker_open": breaker.islanded,  # False from the step the breaker closes
            "reconnect_blocked": breaker.blocked,
            "p_gfm_mw": float(res.p_gfm_mw[0].sum()),
            "island_f_pf_hz": float(res.f_hz[0]),
            "sync_delta_f_hz": float(check.delta_f_hz),
            "sync_delta_v_pu": float(check.delta_v_pu),
            "sync_delta_theta_degree": float(check.delta_theta_degree),
        }

    def _fault_model(self, fault: dict):
        """The fault calculation of the feeder in its present outage state (cached)."""
        key = (tuple(self.lines_out), fault.get("s_sc_mva"), fault.get("rx"))
        model = self._fault_models.get(key)
        if model is None:
            try:
                model = FaultModel(
                    self.model.with_outages(self.lines_out).net,
                    s_sc_mva=fault.get("s_sc_mva"),
                    rx=fault.get("rx"),
                )
            except FeederError as error:
                raise SimulationError(f"fault at bus {fault.get('bus')}: {error}") from None
            self._fault_models[key] = model
        return model

    def _apply_fault(self, out: dict, p_mw: np.ndarray, q_mvar: np.ndarray) -> None:
        """Replace the voltages of this step by the retained voltages of the fault in force
        (the power flow just solved is its pre-fault state)."""
        fault = self._fault
        model = self._fault_model(fault)
        vm, va = self._bus_arrays
        v_pre = vm * np.exp(1j * np.deg2rad(va))
        z_ohm = z_pu = None
        if "r_fault_pu" in fault or "x_fault_pu" in fault:
            z_pu = complex(fault.get("r_fault_pu", 0.0), fault.get("x_fault_pu", 0.0))
        else:
            z_ohm = complex(fault.get("r_fault_ohm", 0.0), fault.get("x_fault_ohm", 0.0))
        live = ~model.dead_bus
        p = np.where(live, p_mw, 0.0)
        q = np.where(live, q_mvar, 0.0)
        res = model.solve(
            [int(fault["bus"])],
            z_fault_ohm=z_ohm,
            z_fault_pu=z_pu,
            v_prefault_pu=np.where(live, v_pre, 1.0),
            p_mw=p,
            q_mvar=q,
        )
        vm_f = np.where(live, np.nan_to_num(res.vm_pu[0], nan=0.0), 0.0)
        va_f = np.where(live, np.nan_to_num(np.degrees(np.angle(res.v_pu[0]))), 0.0)
        self._vectors["bus_vm_pu"] = (self.bus, vm_f)
        self._bus_arrays = (vm_f, va_f)
        v_live = vm_f[live]
        out["vm_min_pu"] = float(v_live.min())
        out["vm_max_pu"] = float(v_live.max())
        out["fault_vm_min_pu"] = float(v_live.min())

    def _child(self, eid: str) -> dict:
        i = self._pos(int(eid[4:]))
        vm, va = self._bus_arrays
        return {"vm_pu": float(vm[i]), "va_degree": float(va[i])}

    def get_data(self, outputs):
        return {eid: self._lazy.get(eid, attrs, "grid") for eid, attrs in outputs.items()}
