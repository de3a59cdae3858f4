"""mosaik simulators (Simulator API v3): thin adapters around the physics packages.

Every simulator here is public API for your own mosaik scenarios::

    sim_config = {
        "Feeder": {"python": "cosim.simulators:FeederSim"},
        "Fleet": {"python": "cosim.simulators:FleetSim"},
        "Frequency": {"python": "cosim.simulators:FrequencySim"},
        "Profile": {"python": "cosim.simulators:ProfileSim"},
        "Events": {"python": "cosim.simulators:EventSim"},
        "Collector": {"python": "cosim.simulators:Collector"},
    }

and each can run in its own process (``python -m cosim.simulators FleetSim HOST:PORT``, used by
mosaik's ``cmd`` starter; see :func:`main`).

Conventions
-----------
* Time: one integer mosaik step is ``time_resolution`` seconds (the world's setting). The
  time-based simulators take a *clock* at ``init``: ``step_size`` (the quasi-static step, in
  integer steps), optional ``fast_step_size`` and ``windows`` (``[[start, end], ...]`` in integer
  steps) in which they step at the fast rate (multi-rate runs).
* Same-time loop (``FeederSim`` and ``FleetSim`` only): ``init(..., same_time_loop=True,
  loop_tolerance_pu=1e-6, loop_max_iterations=50)`` makes the simulator hybrid with trigger
  inputs (fleet: ``bus_vm_pu``; feeder: ``bus_p_mw``, ``bus_q_mvar``). Put both in one
  ``world.group()`` and connect the feeder's ``bus_vm_loop_pu`` to the fleet's ``bus_vm_pu``
  with ``weak=True``: a repeated step at the same time restarts that step from its initial
  state, and the feeder stops sending voltages once they reproduce themselves within the
  tolerance (see ``docs/architecture.md``).
* Outputs at time ``t`` describe the interval ``[t, t + dt)``: states (voltages, frequency,
  temperatures, stored energy) are the values at ``t``; powers are held over the interval.
  Each simulator then advances its physics to ``t + dt``.
* Per-bus data travel either as *vector attributes* (``bus_p_mw``, ``bus_vm_pu``...: a dict
  mapping the pandapower bus index, as a string, to the value; JSON-safe for remote processes)
  on the ``Grid``/``Fleet`` entity, or as scalar attributes on per-bus child entities
  (``Bus``/``FleetBus``) for scenarios that connect single buses. Inputs from several sources
  are summed (powers) or the latest value is used (measurements).
* Sign: injection into the grid is positive (V2G discharge > 0, charging < 0).

No physics lives here: the simulators own objects of :mod:`grids` and :mod:`vehicle_models`
and translate attributes.
"""

from __future__ import annotations

import copy
import json
import math
import sys
import weakref
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import mosaik_api_v3
import numpy as np

from grids.errors import InputDataError, ScenarioError, SimulationError

#: Next step of a time-based simulator with nothing left to do (beyond any run's end).
FAR_FUTURE = 2**62

# ---------------------------------------------------------------------------------------------
# clock shared by the time-based simulators


class StepClock:
    """Next-step rule of a multi-rate simulator (all times in integer mosaik steps).

    Outside the windows the simulator steps on the grid ``k * step_size``; in a window it steps
    at ``start, start + fast_step_size, ..., end`` (it always lands on the window start and
    end), then continues on the quasi-static grid.
    """

    def __init__(
        self,
        step_size: int,
        fast_step_size: int | None = None,
        windows: Iterable[Iterable[int]] = (),
    ) -> None:
        if int(step_size) < 1:
            raise ScenarioError(f"step_size: {step_size} must be an integer >= 1")
        self.step_size = int(step_size)
        self.fast_step_size = None if fast_step_size is None else int(fast_step_size)
        self.windows = sorted((int(a), int(b)) for a, b in windows) if fast_step_size else []

    def in_window(self, t: int) -> bool:
        return any(a <= t < b for a, b in self.windows)

    def window_start(self, t: int) -> bool:
        return any(a == t for a, _ in self.windows)

    def next_time(self, t: int) -> int:
        if self.in_window(t):
            return t + self.fast_step_size
        nxt = (t // self.step_size + 1) * self.step_size
        for a, _b in self.windows:
            if t < a < nxt:
                return a
        return nxt


def _clock_from_params(
    step_size: int = 1, fast_step_size: int | None = None, windows: Iterable = ()
) -> StepClock:
    return StepClock(step_size, fast_step_size, windows)


def _sum(values: dict | None, default: float = 0.0) -> float:
    if not values:
        return default
    return float(sum(float(v) for v in values.values()))


def _latest(values: dict | None, default: Any = None) -> Any:
    if not values:
        return default
    return list(values.values())[-1]


_KEY_CACHE: dict[tuple, list[str]] = {}


def _vector(keys: np.ndarray, values: np.ndarray) -> dict[str, float]:
    """``{str(bus): value}``: the bus keys' strings are cached (the same few arrays every step)."""
    keys = np.asarray(keys)
    token = (keys.dtype.str, keys.shape, keys.tobytes())
    names = _KEY_CACHE.get(token)
    if names is None:
        if len(_KEY_CACHE) > 64:
            _KEY_CACHE.clear()
        names = _KEY_CACHE[token] = [str(k) for k in keys.tolist()]
    return dict(zip(names, np.asarray(values).tolist(), strict=True))


class _LazyOutputs:
    """Outputs of one step: scalars, plus per-bus vectors and child-entity values that are
    only turned into dicts when mosaik asks for them (most runs never ask for all)."""

    def __init__(self, scalars: dict, vectors: dict, children) -> None:
        self.scalars = scalars
        self.vectors = vectors  # attr -> (keys, values)
        self.children = children  # callable eid -> dict, or None
        self._cache: dict = {}

    def get(self, eid: str, attrs, own_eid: str) -> dict:
        if eid == own_eid:
            out = {}
            for a in attrs:
                if a in self.scalars:
                    value = self.scalars[a]
                    if callable(value):  # a reduction computed only when asked for
                        value = self.scalars[a] = value()
                    out[a] = value
                elif a in self.vectors:
                    if a not in self._cache:
                        self._cache[a] = _vector(*self.vectors[a])
                    out[a] = self._cache[a]
            return out
        child = self.children(eid) if self.children is not None else {}
        return {a: child[a] for a in attrs if a in child}


class _Base(mosaik_api_v3.Simulator):
    """Common init: sid, time resolution and the multi-rate clock."""

    def __init__(self, meta: dict) -> None:
        super().__init__(meta)
        self.sid = ""
        self.time_resolution = 1.0
        self.clock = StepClock(1)
        self.entities: dict[str, dict] = {}

    #: Trigger inputs of the main model in same-time-loop mode (empty: no loop mode).
    LOOP_TRIGGERS: tuple[str, ...] = ()

    def init(
        self,
        sid,
        time_resolution: float = 1.0,
        step_size: int = 1,
        fast_step_size: int | None = None,
        windows: Iterable = (),
        same_time_loop: bool = False,
        loop_tolerance_pu: float = 1e-6,
        loop_max_iterations: int = 50,
        **sim_params,
    ):
        if sim_params:
            raise ScenarioError(
                f"{type(self).__name__}: unknown simulator parameters {sorted(sim_params)}"
            )
        self.sid = sid
        self.time_resolution = float(time_resolution)
        self.clock = _clock_from_params(step_size, fast_step_size, windows)
        self.same_time_loop = bool(same_time_loop)
        self.loop_tolerance_pu = float(loop_tolerance_pu)
        self.loop_max_iterations = int(loop_max_iterations)
        if self.same_time_loop:
            if not self.LOOP_TRIGGERS:
                raise ScenarioError(f"{type(self).__name__}: no same-time loop mode")
            if not (self.loop_tolerance_pu > 0 and self.loop_max_iterations >= 1):
                raise ScenarioError(
                    "same-time loop: loop_tolerance_pu must be > 0 and loop_max_iterations >= 1"
                )
            # mosaik re-steps a simulator at the same time only through *trigger* inputs, which
            # time-based simulators cannot have: in loop mode the simulator is hybrid (its own
            # clock plus steps triggered by the loop's inputs; mosaik async_scenario
            # parse_attrs / scheduler trigger_successors)
            meta = copy.deepcopy(self.meta)
            meta["type"] = "hybrid"
            main = next(iter(meta["models"]))
            meta["models"][main]["trigger"] = list(self.LOOP_TRIGGERS)
            self.meta = meta
        self._loop_time: int | None = None  # time of the last step (a repeat is a loop pass)
        self._loop_pass = 0
        return self.meta

    def _loop_repeat(self, time: int) -> bool:
        """In loop mode: True if this step repeats the last one's time (a loop iteration)."""
        if not self.same_time_loop:
            return False
        repeat = time == self._loop_time
        self._loop_pass = self._loop_pass + 1 if repeat else 0
        self._loop_time = time
        return repeat

    def dt_s(self, t: int) -> float:
        return self.advance(t)[1]

    def advance(self, t: int) -> tuple[int, float]:
        """The next step time after ``t`` [mosaik steps] and the step length [s]."""
        next_time = self.clock.next_time(t)
        return next_time, (next_time - t) * self.time_resolution


# ---------------------------------------------------------------------------------------------
# FrequencySim

FREQUENCY_META = {
    "type": "time-based",
    "models": {
        "Grid": {
            "public": True,
            "params": ["params", "island_params"],
            "attrs": [
                # inputs
                "p_fleet_mw",  # fleet injection [MW] (only deviations from schedule count)
                "p_event_mw",  # injection change from events [MW] (gen. loss of 500 MW: -500)
                "island",  # True while islanded
                "p_grid_import_mw",  # feeder import from the bulk grid [MW] (lost on islanding)
                # outputs
                "f_hz",
                "delta_f_hz",
                "rocof_hz_per_s",
                "p_mech_mw",
                "ufls_shed_mw",
                "ufls_stages_tripped",
                "p_imbalance_mw",
            ],
        }
    },
}


class FrequencySim(_Base):
    """Bulk-grid (or island) frequency: :class:`grids.frequency.SwingModel` on the mosaik clock.

    Model ``Grid`` (one entity). Params: ``params`` (dict of ``[frequency]`` keys, see
    :class:`grids.frequency.SwingParameters`), ``island_params`` (dict ``s_base_mw``, ``h_s``,
    ``d_pu`` of the grid-forming fleet for island mode, optional).

    Inputs: ``p_fleet_mw`` [MW] (summed), ``p_event_mw`` [MW] (summed), ``island`` [bool],
    ``p_grid_import_mw`` [MW]. Outputs: ``f_hz`` [Hz], ``delta_f_hz`` [Hz],
    ``rocof_hz_per_s`` [Hz/s], ``p_mech_mw`` [MW], ``ufls_shed_mw`` [MW],
    ``ufls_stages_tripped`` [-], ``p_imbalance_mw`` [MW].

    The swing equation sees injection *changes*. The fleet's scheduled power is balanced by
    the bulk system's dispatch on the slow time scale, so the fleet term is its deviation from a
    reference: the fleet power at the first step (single-rate runs), or at the last
    quasi-static step / window start (multi-rate runs).
    """

    def __init__(self) -> None:
        super().__init__(FREQUENCY_META)
        self.model = None
        self.params = None
        self.island_params: dict = {}
        self.islanded = False
        self.p_fleet_ref_mw: float | None = None
        self.p_import_at_island_mw = 0.0
        self.last_imbalance_mw = 0.0

    def create(self, num, model, params=None, island_params=None):
        if num != 1 or self.model is not None:
            raise ScenarioError("FrequencySim: create exactly one Grid entity")
        from grids.frequency import SwingModel, SwingParameters

        self.params = SwingParameters.from_dict(params or {}, path="frequency")
        self.island_params = dict(island_params or {})
        self.model = SwingModel(self.params)
        self.entities["grid"] = {}
        return [{"eid": "grid", "type": model}]

    def _switch(self, island: bool, p_import_mw: float) -> None:
        from grids.frequency import SwingModel, SwingParameters

        if island:
            if not self.island_params:
                raise SimulationError(
                    "island event: [frequency.island] (s_base_mw, h_s, d_pu of the grid-forming "
                    "fleet) is needed to model the island's frequency"
                )
            params = SwingParameters.island(f0_hz=self.params.f0_hz, **self.island_params)
            self.p_import_at_island_mw = p_import_mw
        else:
            params = self.params
        # A switch starts the new system at its nominal frequency (synchronised reconnection,
        # black-started island): the swing model of each system starts from equilibrium.
        self.model = SwingModel(params)
        self.islanded = island

    def step(self, time, inputs, max_advance):
        data = inputs.get("grid", {})
        p_fleet = _sum(data.get("p_fleet_mw"))
        p_event = _sum(data.get("p_event_mw"))
        island = bool(_latest(data.get("island"), False))
        p_import = _sum(data.get("p_grid_import_mw"))
        if island != self.islanded:
            self._switch(island, p_import)
            self.p_fleet_ref_mw = p_fleet
        if self.p_fleet_ref_mw is None or (
            self.clock.windows and (not self.clock.in_window(time) or self.clock.window_start(time))
        ):
            self.p_fleet_ref_mw = p_fleet
        imbalance = p_fleet - self.p_fleet_ref_mw + p_event
        if self.islanded:
            # the supply the feeder imported from the bulk grid is gone: a loss of generation
            imbalance -= self.p_import_at_island_mw
        # outputs describe the state at `time`; then advance over [time, time + dt)
        m = self.model
        self._out = {
            "f_hz": m.f_hz,
            "delta_f_hz": m.delta_f_hz,
            "rocof_hz_per_s": m.rocof_hz_per_s,
            "p_mech_mw": m.p_mech_mw,
            "ufls_shed_mw": m.ufls_shed_mw,
            "ufls_stages_tripped": m.ufls_stages_tripped,
            "p_imbalance_mw": imbalance,
        }
        self.model.step(dt_s=self.dt_s(time), p_imbalance_mw=imbalance)
        return self.clock.next_time(time)

    def get_data(self, outputs):
        return {
            eid: {a: float(self._out[a]) for a in attrs if a in self._out}
            for eid, attrs in outputs.items()
        }


# ---------------------------------------------------------------------------------------------
# EventSim

EVENT_META = {
    "type": "time-based",
    "models": {
        "Events": {
            "public": True,
            "params": ["events"],
            "attrs": ["p_event_mw", "lines_out", "island", "n_events"],
        }
    },
}


class EventSim(_Base):
    """Scheduled events: generation loss, load step, line outage, islanding, reconnection.

    Model ``Events`` (one entity). Param ``events``: list of dicts ``{"t_s", "kind", "p_mw",
    "line"}`` (the ``[[events]]`` of a scenario). Outputs (persistent between events):
    ``p_event_mw`` [MW] cumulative injection change (generation loss / load step of ``p_mw``
    count as ``-p_mw``), ``lines_out`` (JSON list of pandapower line indices out of service),
    ``island`` [bool], ``n_events`` [-] events so far. Steps on its clock (give it the clock of
    the simulators it feeds); an event is applied at the first step at or after its time.
    """

    def __init__(self) -> None:
        super().__init__(EVENT_META)
        self.events: list[tuple[int, dict]] = []
        self.state = {"p_event_mw": 0.0, "lines_out": "[]", "island": False, "n_events": 0}
        self._lines: list[int] = []
        self._applied: set[int] = set()

    def create(self, num, model, events=()):
        if num != 1 or self.entities:
            raise ScenarioError("EventSim: create exactly one Events entity")
        for event in events:
            t = round(float(event["t_s"]) / self.time_resolution)
            self.events.append((t, dict(event)))
        self.events.sort(key=lambda te: te[0])
        self.entities["events"] = {}
        return [{"eid": "events", "type": model}]

    def step(self, time, inputs, max_advance):
        for i, (t, event) in enumerate(self.events):
            if t > time or i in self._applied:
                continue
            self._applied.add(i)
            kind = event["kind"]
            if kind in ("generation_loss", "load_step"):
                self.state["p_event_mw"] -= float(event["p_mw"])
            elif kind == "line_outage":
                self._lines.append(int(event["line"]))
                self.state["lines_out"] = json.dumps(self._lines)
            elif kind == "island":
                self.state["island"] = True
            elif kind == "reconnect":
                self.state["island"] = False
            self.state["n_events"] += 1
        return self.clock.next_time(time)

    def get_data(self, outputs):
        return {eid: {a: self.state[a] for a in attrs} for eid, attrs in outputs.items()}


# ---------------------------------------------------------------------------------------------
# ProfileSim


def read_profile(
    path: str | Path,
    *,
    start: str | None = None,
    time_resolution: float = 1.0,
    allow_empty: bool = False,
) -> tuple[np.ndarray, Any]:
    """Read a CSV/Parquet time series into ``(steps, frame)``.

    The first column (or a column named ``time``/``timestamp``/``t_s``) holds timezone-aware
    ISO timestamps (naive ones are taken as UTC) or, for ``t_s``, seconds since the start. A
    ``mosaik-csv`` file (first line: the model name) is accepted. ``start`` is the scenario's
    start (default: the first timestamp). ``steps`` are integer mosaik steps of each row. With
    ``allow_empty``, empty cells are NaN ("no value", e.g. no set-point); otherwise every value
    must be a finite number.

    Raises
    ------
    InputDataError
        Naming the file and row of the first bad value (unparseable time, non-numeric or NaN
        value, times not increasing).
    """
    import pandas as pd

    p = Path(path)
    name = p.name
    if not p.exists():
        raise InputDataError(f"{name}: profile file does not exist")
    try:
        if p.suffix.lower() == ".parquet":
            frame = pd.read_parquet(p)
            header_rows = 0
        else:
            with p.open(encoding="utf-8") as handle:
                first = handle.readline().strip()
            header_rows = 1 if first and "," not in first else 0  # mosaik-csv model-name line
            frame = pd.read_csv(p, skiprows=header_rows)
    except (ValueError, OSError, pd.errors.ParserError) as error:
        raise InputDataError(f"{name}: not a readable profile: {error}") from None
    frame.columns = [str(c).split("#")[0].strip() for c in frame.columns]
    if frame.shape[1] < 2 or len(frame) == 0:
        raise InputDataError(f"{name}: expected a time column and at least one value column")
    tcol = next((c for c in ("t_s", "time", "timestamp") if c in frame.columns), frame.columns[0])
    row0 = 2 + header_rows  # file line of the first data row (1-based, after the header)
    if tcol == "t_s":
        seconds = pd.to_numeric(frame[tcol], errors="coerce").to_numpy(dtype=float)
        bad = np.flatnonzero(~np.isfinite(seconds))
        if bad.size:
            raise InputDataError(f"{name}: row {bad[0] + row0}: t_s is not a number")
    else:
        stamps = pd.to_datetime(frame[tcol], errors="coerce", utc=True, format="mixed")
        bad = np.flatnonzero(stamps.isna().to_numpy())
        if bad.size:
            raise InputDataError(
                f"{name}: row {bad[0] + row0}: {tcol} {frame[tcol].iloc[bad[0]]!r} is not a "
                "timestamp"
            )
        t0 = stamps.iloc[0] if start is None else pd.Timestamp(start)
        if t0.tzinfo is None:
            t0 = t0.tz_localize("UTC")
        seconds = (stamps - t0).dt.total_seconds().to_numpy()
    if np.any(np.diff(seconds) <= 0):
        i = int(np.flatnonzero(np.diff(seconds) <= 0)[0]) + 1
        raise InputDataError(f"{name}: row {i + row0}: times are not strictly increasing")
    values = frame.drop(columns=[tcol])
    for col in values.columns:
        numeric = pd.to_numeric(values[col], errors="coerce")
        finite = np.isfinite(numeric.to_numpy(dtype=float))
        if allow_empty:
            finite |= values[col].isna().to_numpy()  # empty cells only, not bad text
        bad = np.flatnonzero(~finite)
        if bad.size:
            raise InputDataError(
                f"{name}: row {bad[0] + row0}: {col} is {values[col].iloc[bad[0]]} "
                "(not a finite number)"
            )
        values[col] = numeric.astype(float)
    steps = np.round(seconds / time_resolution).astype(np.int64)
    return steps, values.reset_index(drop=True)


class ProfileSim(_Base):
    """Load / PV / price time series from CSV or Parquet (interoperable with ``mosaik-csv``).

    ``init`` params: ``datafile`` (path), ``start`` (ISO timestamp of simulated time 0,
    optional), ``allow_empty`` (empty cells are NaN, e.g. "no set-point"; default False).
    Model ``Profile`` (one entity) whose attributes are the file's value columns,
    e.g. ``load_pu``; the value of the last row at or before ``t`` is output (zero-order hold;
    before the first row, the first row's value). The simulator steps at each row's time.
    """

    def __init__(self) -> None:
        super().__init__({"type": "time-based", "models": {}})
        self.steps = np.empty(0, dtype=np.int64)
        self.values = None
        self.row = 0

    def init(self, sid, time_resolution=1.0, datafile=None, start=None, allow_empty=False, **clock):
        super().init(sid, time_resolution, **clock)
        if datafile is None:
            raise ScenarioError("ProfileSim: the 'datafile' parameter is required")
        self.steps, self.values = read_profile(
            datafile, start=start, time_resolution=time_resolution, allow_empty=allow_empty
        )
        self.meta["models"]["Profile"] = {
            "public": True,
            "params": [],
            "attrs": list(self.values.columns),
        }
        # plain arrays: a pandas row lookup per step would dominate the cost of this simulator
        self.columns = {c: self.values[c].to_numpy(dtype=float) for c in self.values.columns}
        return self.meta

    def create(self, num, model):
        if num != 1 or self.entities:
            raise ScenarioError("ProfileSim: create exactly one Profile entity")
        self.entities["profile"] = {}
        return [{"eid": "profile", "type": model}]

    def step(self, time, inputs, max_advance):
        nxt = int(np.searchsorted(self.steps, time, side="right"))
        self.row = max(0, nxt - 1)
        return int(self.steps[nxt]) if nxt < len(self.steps) else FAR_FUTURE

    def get_data(self, outputs):
        row = self.row
        cols = self.columns
        return {eid: {a: float(cols[a][row]) for a in attrs} for eid, attrs in outputs.items()}


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


class FeederSim(_Base):
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

        self.method = str(method)
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
                extra_p[i] += _sum(bus_inputs.get("p_mw"))
                extra_q[i] += _sum(bus_inputs.get("q_mvar"))
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
        self._lazy = _LazyOutputs(out, self._vectors, self._child)
        next_time, dt_s = self.advance(time)
        self.thermal.step(load_pu=out["transformer_load_pu"], ambient_c=ambient_c, dt_s=dt_s)
        return next_time

    def _load_and_ambient(self, time: int, data: dict) -> tuple[float, float]:
        """Apply outage inputs; the load multiplier and ambient temperature of this step."""
        lines_json = _latest(data.get("lines_out"))
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
        load_pu = float(_latest(data.get("load_pu"), load_default))
        ambient_c = float(_latest(data.get("ambient_c"), ambient_default))
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


# ---------------------------------------------------------------------------------------------
# FleetSim

FLEET_INPUTS = [
    "f_hz",  # frequency seen by the fleet [Hz]
    "bus_vm_pu",  # voltage per bus {bus: pu}
    "p_setpoint_mw",  # total active-power set-point [MW] (NaN: follow the charging policy)
    "bus_p_setpoint_mw",  # set-point per bus {bus: MW}
]
#: outputs, also what a run records for the fleet (``cosim.world.RECORDED``)
FLEET_OUTPUTS = [
    "p_mw",
    "q_mvar",
    "bus_p_mw",
    "bus_q_mvar",
    "n_plugged",
    "n_tripped",
    "soc_mean_frac",
    "e_kwh",
    "e_charged_kwh",
    "e_discharged_kwh",
    "e_loss_kwh",
    "e_driven_kwh",
    "e_shortfall_kwh",
    "f_seen_hz",
    "p_setpoint_seen_mw",
    "p_setpoint_unmet_mw",
]
FLEET_ATTRS = FLEET_INPUTS + FLEET_OUTPUTS
FLEET_META = {
    "type": "time-based",
    "models": {
        "Fleet": {
            "public": True,
            "params": [
                "n_vehicles",
                "buses",
                "preset",
                "policy",
                "seed",
                "control",
                "table",
                "f_nominal_hz",
                "packet_loss",
            ],
            "attrs": FLEET_ATTRS,
        },
        "FleetBus": {
            "public": False,
            "params": [],
            "attrs": ["vm_pu", "p_mw", "q_mvar", "n_plugged", "n_tripped", "soc_mean_frac"],
        },
    },
}


class FleetSim(_Base):
    """The whole vectorized V2G fleet (:class:`vehicle_models.fleet.Fleet`) as one simulator.

    Model ``Fleet`` (one entity; children ``FleetBus`` entities ``bus_<index>``, one per bus
    with vehicles). Params: ``n_vehicles``, ``buses`` (list of bus indices; default all load
    buses is chosen by the scenario builder), ``preset`` (``home``/``work``/``depot``),
    ``policy`` (baseline charging: ``immediate``/``latest``/``uniform``),
    ``seed``, ``control`` (the ``[fleet.control]`` dict), ``table`` (CSV/Parquet vehicle table
    instead of sampling), ``f_nominal_hz`` (frequency assumed until one is received),
    ``packet_loss`` (probability that a step's new measurements are lost on the channel to the
    fleet; the fleet then holds the last received values; seeded).

    Inputs: ``f_hz`` [Hz], ``bus_vm_pu`` ({bus: pu}) or FleetBus ``vm_pu`` [pu].
    Outputs: totals ``p_mw``, ``q_mvar`` [MW, Mvar], ``bus_p_mw``/``bus_q_mvar`` ({bus: ...}),
    ``n_plugged``, ``n_tripped`` [-], ``soc_mean_frac`` [-], ``e_kwh`` stored energy at the end
    of the step [kWh], cumulative ``e_charged_kwh``, ``e_discharged_kwh``, ``e_loss_kwh``
    [kWh], ``f_seen_hz`` [Hz], ``p_setpoint_seen_mw`` [MW] (set-point in force, NaN if none),
    ``p_setpoint_unmet_mw`` [MW] (set-point minus what was feasible); FleetBus: ``p_mw``,
    ``q_mvar``, ``n_plugged``, ``n_tripped``, ``soc_mean_frac``.
    """

    LOOP_TRIGGERS = ("bus_vm_pu",)

    def __init__(self) -> None:
        super().__init__(FLEET_META)
        self.fleet = None
        self._out: dict[str, Any] = {}
        self._bus_out: dict[str, dict] = {}
        self.f_hz = 60.0
        self.vm_pu = None
        self.packet_loss = 0.0
        self.rng = None
        self.cumulative = {
            "e_charged_kwh": 0.0,
            "e_discharged_kwh": 0.0,
            "e_loss_kwh": 0.0,
            "e_driven_kwh": 0.0,
            "e_shortfall_kwh": 0.0,
        }

    def create(
        self,
        num,
        model,
        n_vehicles=0,
        buses=None,
        preset="home",
        policy="latest",
        seed=0,
        control=None,
        table=None,
        f_nominal_hz=60.0,
        packet_loss=0.0,
    ):
        if num != 1 or self.fleet is not None or model != "Fleet":
            raise ScenarioError("FleetSim: create exactly one Fleet entity")
        from vehicle_models.fleet import ChargingPolicy, Fleet, FleetPreset
        from vehicle_models.settings import InverterSettings

        settings = InverterSettings.from_dict(control or {}, path="fleet.control")
        if table is not None:
            self.fleet = Fleet.from_table(table, settings=settings)
        else:
            if not buses:
                raise ScenarioError("fleet.buses: the buses to place vehicles on are required")
            self.fleet = Fleet.sample(
                int(n_vehicles),
                buses=np.asarray(buses, dtype=int),
                preset=FleetPreset(preset),
                policy=ChargingPolicy(policy),
                seed=int(seed),
                settings=settings,
            )
        self.f_hz = float(f_nominal_hz)
        self.packet_loss = float(packet_loss)
        self.rng = np.random.default_rng([int(seed), 0x5EED])
        self.buses = np.asarray(self.fleet.buses, dtype=int)
        self.vm_pu = np.ones(len(self.buses))
        self._bus_keys = [str(b) for b in self.buses.tolist()]
        self._vm_maps: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
        self._bus_index = {f"bus_{b}": i for i, b in enumerate(self.buses.tolist())}
        counts = np.asarray(self.fleet.n_vehicles_per_bus, dtype=float)
        self._vehicle_share = counts / counts.sum()
        self._vehicles_per_bus = counts
        self._n_total = float(counts.sum())
        self.setpoint_mw = np.full(len(self.buses), np.nan)
        self.e_kwh = float(np.sum(self.fleet.energy_kwh))
        children = [{"eid": f"bus_{int(b)}", "type": "FleetBus", "rel": []} for b in self.buses]
        self.entities["fleet"] = {}
        return [{"eid": "fleet", "type": model, "rel": [], "children": children}]

    @property
    def setpoint_mw(self) -> np.ndarray:
        """Active-power set-point per bus [MW] (NaN: follow the charging policy)."""
        return self._setpoint_mw

    @setpoint_mw.setter
    def setpoint_mw(self, value: np.ndarray) -> None:
        self._setpoint_mw = value
        self._has_setpoint = not np.isnan(value).all()  # checked once, not every step

    def _measurements(self, inputs) -> None:
        data = inputs.get("fleet", {})
        f = _latest(data.get("f_hz"))
        if f is not None:
            self.f_hz = float(f)
        vectors = data.get("bus_vm_pu")
        if vectors:
            vm = _latest(vectors)
            if vm:
                # the feeder sends the same buses every step: map them once
                keys = tuple(vm)
                mapping = self._vm_maps.get(keys)
                if mapping is None:
                    pos = {k: i for i, k in enumerate(keys)}
                    dst = [i for i, k in enumerate(self._bus_keys) if k in pos]
                    src = [pos[self._bus_keys[i]] for i in dst]
                    if len(self._vm_maps) > 32:
                        self._vm_maps.clear()
                    mapping = (np.array(src, dtype=np.intp), np.array(dst, dtype=np.intp))
                    self._vm_maps[keys] = mapping
                src, dst = mapping
                values = np.fromiter(vm.values(), float, len(keys))
                new = self.vm_pu.copy()
                new[dst] = values[src]
                self.vm_pu = new
        for eid, bus_inputs in inputs.items():
            if eid != "fleet" and bus_inputs.get("vm_pu"):
                self.vm_pu[self._bus_index[eid]] = float(_latest(bus_inputs["vm_pu"]))

    def _setpoints(self, inputs) -> None:
        data = inputs.get("fleet", {})
        total = _latest(data.get("p_setpoint_mw"))
        vectors = data.get("bus_p_setpoint_mw")
        if total is None and not vectors:
            return
        if self.packet_loss > 0 and self.rng.random() < self.packet_loss:
            return  # this step's set-point is lost: keep the last one received
        setpoint = np.full(len(self.buses), np.nan)
        if total is not None and np.isfinite(float(total)):
            setpoint = float(total) * self._vehicle_share
        if vectors:
            for key, value in _latest(vectors).items():
                i = self._bus_index.get(f"bus_{key}")
                if i is not None:
                    setpoint[i] = float(value)
        self.setpoint_mw = setpoint

    def step(self, time, inputs, max_advance):
        if self._loop_repeat(time):
            # a pass of the same-time loop: back to the state at the start of this step (with
            # the frequency and set-point received then), only the voltages are new
            self.fleet, self.cumulative, self.rng, self.f_hz, self.setpoint_mw = copy.deepcopy(
                self._loop_state
            )
            self._measurements(inputs)
        else:
            self._measurements(inputs)
            self._setpoints(inputs)
            if self.same_time_loop:
                self._loop_state = copy.deepcopy(
                    (self.fleet, self.cumulative, self.rng, self.f_hz, self.setpoint_mw)
                )
        t_s = time * self.time_resolution
        setpoint = self.setpoint_mw if self._has_setpoint else None
        next_time, dt_s = self.advance(time)
        res = self.fleet.step(
            t_s=t_s,
            dt_s=dt_s,
            vm_pu=self.vm_pu,
            f_hz=self.f_hz,
            p_setpoint_mw=setpoint,
        )
        for key in self.cumulative:
            self.cumulative[key] += float(getattr(res, key))
        p = np.asarray(res.p_mw, dtype=float)
        q = np.asarray(res.q_mvar, dtype=float)
        buses = np.asarray(res.bus, dtype=int)
        n_plugged = np.asarray(res.n_plugged)
        n_tripped = np.asarray(res.n_tripped)
        soc = np.asarray(res.soc_mean_frac, dtype=float)
        setpoint_seen = float(np.nansum(setpoint)) if setpoint is not None else float("nan")
        unmet = res.p_setpoint_unmet_mw
        # reductions of this step's result arrays are evaluated only if an output is requested
        # (the arrays are not touched again); the fleet's state is summed now, before it moves
        scalars = {
            "p_mw": lambda: float(p.sum()),
            "q_mvar": lambda: float(q.sum()),
            "n_plugged": lambda: int(n_plugged.sum()),
            "n_tripped": lambda: int(n_tripped.sum()),
            # mean over all vehicles = per-bus means weighted by the vehicles per bus
            "soc_mean_frac": lambda: float(
                np.dot(np.where(self._vehicles_per_bus > 0, soc, 0.0), self._vehicles_per_bus)
                / self._n_total
            ),
            "e_kwh": float(self.fleet.energy_kwh.sum()),
            "f_seen_hz": self.f_hz,
            "p_setpoint_seen_mw": setpoint_seen,
            "p_setpoint_unmet_mw": lambda: float(np.sum(unmet)),
            **self.cumulative,
        }
        if buses is self.fleet.buses or np.array_equal(buses, self.buses):
            index = self._bus_index  # the usual case: built once in create
        else:
            index = {f"bus_{b}": i for i, b in enumerate(buses.tolist())}

        def child(eid: str) -> dict:
            i = index.get(eid)
            if i is None:
                return {}
            return {
                "p_mw": float(p[i]),
                "q_mvar": float(q[i]),
                "n_plugged": int(n_plugged[i]),
                "n_tripped": int(n_tripped[i]),
                "soc_mean_frac": float(soc[i]) if np.isfinite(soc[i]) else 0.0,
            }

        vectors = {"bus_p_mw": (buses, p), "bus_q_mvar": (buses, q)}
        self._lazy = _LazyOutputs(scalars, vectors, child)
        return next_time

    def get_data(self, outputs):
        return {eid: self._lazy.get(eid, attrs, "fleet") for eid, attrs in outputs.items()}


# ---------------------------------------------------------------------------------------------
# Collector

COLLECTOR_META = {
    "type": "time-based",
    "models": {
        "Monitor": {
            "public": True,
            "any_inputs": True,
            "params": ["path", "fmt", "flush_every", "metadata", "run_id", "commit_on_finalize"],
            "attrs": [],
        }
    },
}

#: Progress hooks by run id: ``hook(t_s)`` is called after every collector step.
PROGRESS_HOOKS: dict[str, Callable[[float], None]] = {}
#: Live collectors (so an interrupted run can close their files).
LIVE_COLLECTORS: weakref.WeakSet = weakref.WeakSet()


class Collector(_Base):
    """Records every input it receives into one results file (see :mod:`cosim.results`).

    Model ``Monitor`` (one entity, ``any_inputs``). Params: ``path`` (results file), ``fmt``
    (``"hdf5"`` or ``"parquet"``), ``flush_every`` (rows per write; a crash loses at most
    that many rows), ``metadata`` (JSON-serializable dict: scenario, versions, seed),
    ``run_id`` (optional key of a progress hook in :data:`PROGRESS_HOOKS`),
    ``commit_on_finalize`` (default ``True``: mosaik's ``finalize`` moves the file into place;
    :func:`cosim.world.run_scenario` passes ``False`` and commits only a run that reached its
    end, because mosaik also finalizes after a Ctrl-C or a failed remote simulator).

    Time-based on the world's finest clock (``step_size``/``fast_step_size``/``windows`` as
    for the other simulators). Inputs are measurements: outside the high-rate windows every
    value is stored at every step; inside them a value is stored only when it changed, so
    slow simulators are not repeated at the fast rate (read the results as a zero-order hold:
    :func:`cosim.results.wide` forward-fills). Scalars are stored as ``"<full id>.<attr>"``,
    per-bus dicts as ``"<full id>.<attr>[<bus>]"``, JSON lists as their length. The file is
    closed in ``finalize`` (or by :meth:`close`).
    """

    def __init__(self) -> None:
        super().__init__(COLLECTOR_META)
        self.writer = None
        self.run_id = None
        self.commit_on_finalize = True
        #: the time the collector would step next (the run reached its end when >= until)
        self.t_next: int = 0
        self._last: dict[str, float] = {}

    def create(
        self,
        num,
        model,
        path,
        fmt="hdf5",
        flush_every=10_000,
        metadata=None,
        run_id=None,
        commit_on_finalize=True,
    ):
        if num != 1 or self.writer is not None:
            raise ScenarioError("Collector: create exactly one Monitor entity")
        from cosim.results import ResultsWriter

        self.writer = ResultsWriter(path, metadata or {}, fmt=fmt, flush_every=flush_every)
        self.run_id = run_id
        self.commit_on_finalize = bool(commit_on_finalize)
        LIVE_COLLECTORS.add(self)
        return [{"eid": "monitor", "type": model}]

    def step(self, time, inputs, max_advance):
        t_s = time * self.time_resolution
        every = not self.clock.in_window(time)
        last = self._last
        names: list[str] = []
        values: list[float] = []

        def put(name: str, value: float) -> None:
            if every or last.get(name) != value:
                names.append(name)
                values.append(value)
                last[name] = value

        for attrs in inputs.values():
            for attr, sources in attrs.items():
                for src, value in sources.items():
                    if isinstance(value, dict):
                        for key, v in value.items():
                            put(f"{src}.{attr}[{key}]", float(v))
                    elif isinstance(value, str):
                        try:
                            parsed = json.loads(value)
                        except ValueError:
                            continue
                        number = len(parsed) if isinstance(parsed, list) else parsed
                        put(f"{src}.{attr}", float(number))
                    elif value is not None:
                        put(f"{src}.{attr}", float(value))
        self.writer.append_many(t_s, names, values)
        hook = PROGRESS_HOOKS.get(self.run_id) if self.run_id else None
        if hook is not None:
            hook(t_s)
        self.t_next = self.clock.next_time(time)
        return self.t_next

    def get_data(self, outputs):
        return {}

    def close(self, *, commit: bool = False) -> None:
        """Close the results file; ``commit`` moves it into place (see ResultsWriter.close)."""
        if self.writer is not None:
            self.writer.close(commit=commit)

    def finalize(self):
        self.close(commit=self.commit_on_finalize)


# ---------------------------------------------------------------------------------------------
# separate processes

SIMULATORS = {
    "FeederSim": FeederSim,
    "FleetSim": FleetSim,
    "FrequencySim": FrequencySim,
    "ProfileSim": ProfileSim,
    "EventSim": EventSim,
    "Collector": Collector,
}


def main(argv: list[str] | None = None) -> int:
    """Run one simulator as a separate process: ``python -m cosim.simulators NAME HOST:PORT``.

    Used by mosaik's ``cmd`` starter (``"%(python)s -m cosim.simulators FleetSim %(addr)s"``);
    the address is the one mosaik listens on (127.0.0.1 by default).
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in SIMULATORS:
        print(f"usage: python -m cosim.simulators {{{','.join(SIMULATORS)}}} HOST:PORT")
        return 2
    name = args.pop(0)
    sys.argv = [f"cosim.simulators:{name}", *args]
    simulator = SIMULATORS[name]()
    return (
        mosaik_api_v3.start_simulation(simulator, f"v2g-cosim {name}", configure_logging=False) or 0
    )


if __name__ == "__main__":  # pragma: no cover - exercised through the remote test
    sys.exit(main())
