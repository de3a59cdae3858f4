"""The clock and the common base of the time-based simulators (see :mod:`cosim.simulators`)."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

import mosaik_api_v3
import numpy as np

from grids.errors import ScenarioError

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


def clock_from_params(
    step_size: int = 1, fast_step_size: int | None = None, windows: Iterable = ()
) -> StepClock:
    return StepClock(step_size, fast_step_size, windows)


def sum_inputs(values: dict | None, default: float = 0.0) -> float:
    if not values:
        return default
    return float(sum(float(v) for v in values.values()))


def latest_input(values: dict | None, default: Any = None) -> Any:
    if not values:
        return default
    return list(values.values())[-1]


_KEY_CACHE: dict[tuple, list[str]] = {}


def bus_vector(keys: np.ndarray, values: np.ndarray) -> dict[str, float]:
    """``{str(bus): value}``: the bus keys' strings are cached (the same few arrays every step)."""
    keys = np.asarray(keys)
    token = (keys.dtype.str, keys.shape, keys.tobytes())
    names = _KEY_CACHE.get(token)
    if names is None:
        if len(_KEY_CACHE) > 64:
            _KEY_CACHE.clear()
        names = _KEY_CACHE[token] = [str(k) for k in keys.tolist()]
    return dict(zip(names, np.asarray(values).tolist(), strict=True))


class LazyOutputs:
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
                        self._cache[a] = bus_vector(*self.vectors[a])
                    out[a] = self._cache[a]
            return out
        child = self.children(eid) if self.children is not None else {}
        return {a: child[a] for a in attrs if a in child}


class SimulatorBase(mosaik_api_v3.Simulator):
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
        self.clock = clock_from_params(step_size, fast_step_size, windows)
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
