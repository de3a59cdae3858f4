"""ProfileSim: load / PV / price time series from CSV or Parquet (``mosaik-csv`` compatible)."""

from __future__ import annotations

import numpy as np

from cosim.profiles import read_profile
from cosim.simulators.base import (
    FAR_FUTURE,
    SimulatorBase,
)
from grids.errors import ScenarioError

# ---------------------------------------------------------------------------------------------
# ProfileSim


class ProfileSim(SimulatorBase):
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
