"""Collector: records every input into one results file (:mod:`cosim.results`)."""

from __future__ import annotations

import json
import weakref
from collections.abc import Callable

from cosim.results import ResultsWriter
from cosim.simulators.base import (
    SimulatorBase,
)
from grids.errors import ScenarioError

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


class Collector(SimulatorBase):
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
