"""The feeder's breaker to the bulk grid: islanded solves and the reconnection sync check.

A thin adapter for :class:`cosim.simulators.feeder.FeederSim`. While the breaker at the
feeder's connection (its external grid bus, the point of common coupling) is open, the feeder
is solved with :class:`grids.island.IslandPowerFlow` (the grid-forming fleet's buses hold the
voltage by droop, no slack) instead of the slack-based feeder model; its frequency stays the
swing model's (``FrequencySim``, received as ``f_hz``). A reconnection request is granted only
inside the synchronisation window (:mod:`grids.synchronisation`, IEEE 1547-2018 Table 5 for the
fleet's aggregate rating), else it is held until the window is met.

Switching instants: the outputs of the step at which the breaker operates describe the state
just before it operates (the connected solution at an opening, whose import is the supply lost;
the island solution at a closing), and the new topology is solved from the next step on.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from grids.errors import ScenarioError, check_problems
from grids.island import GridFormingUnit, IslandPowerFlow
from grids.synchronisation import SyncWindow, phase_drift_degree, sync_check, wrap_degree


@dataclass(frozen=True)
class IslandConfig:
    """What the feeder needs to run islanded (built by ``cosim.world`` from the scenario).

    Parameters
    ----------
    units : tuple of GridFormingUnit
        The grid-forming fleet's units (one per fleet bus).
    f0_hz : float
        Nominal frequency [Hz].
    window : SyncWindow
        Synchronisation window for reconnection.
    """

    units: tuple[GridFormingUnit, ...]
    f0_hz: float
    window: SyncWindow

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> IslandConfig:
        """Build from plain values (the form that crosses to a remote simulator).

        Parameters
        ----------
        data : mapping
            ``gfm_buses`` (list of int), ``s_rated_mva`` (aggregate [MVA], shared equally by
            the buses), ``mp_pu``, ``nq_pu``, ``v0_pu``, ``f0_hz`` and optional ``sync``
            (overrides of the Table 5 window).

        Returns
        -------
        IslandConfig

        Raises
        ------
        ScenarioError
            Every problem at once.
        """
        problems: list[str] = []
        buses = data.get("gfm_buses")
        if not isinstance(buses, Sequence) or not buses:
            problems.append(f"island: no grid-forming fleet bus ({buses!r})")
        s_mva = data.get("s_rated_mva")
        if not isinstance(s_mva, int | float) or not s_mva > 0:
            problems.append(f"island: s_rated_mva {s_mva!r} (expected > 0 MVA)")
        f0_hz = data.get("f0_hz")
        if not isinstance(f0_hz, int | float) or not 40.0 <= f0_hz <= 70.0:
            problems.append(f"island: f0_hz {f0_hz!r} (expected a nominal frequency 40-70 Hz)")
        check_problems(problems, ScenarioError, "invalid island configuration")
        share = float(s_mva) / len(buses)
        units = tuple(
            GridFormingUnit(
                bus=int(b),
                s_rated_mva=share,
                mp_pu=float(data.get("mp_pu", 0.05)),
                nq_pu=float(data.get("nq_pu", 0.05)),
                v0_pu=float(data.get("v0_pu") or 1.0),
            )
            for b in buses
        )
        window = SyncWindow.from_dict(data.get("sync"), s_aggregate_kva=float(s_mva) * 1000.0)
        return cls(units=units, f0_hz=float(f0_hz), window=window)


class IslandBreaker:
    """Breaker state, the island's power flow per outage set and the reconnection check.

    Parameters
    ----------
    net : pandapowerNet
        The feeder (its external grid bus is the point of common coupling).
    config : IslandConfig
    v_grid_pu : float
        Voltage of the bulk grid at the point of common coupling [pu].
    """

    def __init__(self, net, config: IslandConfig, *, v_grid_pu: float) -> None:
        self.net = net
        self.config = config
        self.v_grid_pu = float(v_grid_pu)
        self.pcc_bus = int(net.ext_grid.bus.iloc[0])
        self.islanded = False
        self.blocked = False
        self._solvers: dict[tuple[int, ...], IslandPowerFlow] = {}
        self._theta_ref_degree = 0.0  # angle of the reference unit's bus against the grid
        self.last_check = None

    def solver(self, lines_out: Sequence[int]) -> IslandPowerFlow:
        """The islanded power flow of the feeder with ``lines_out`` out of service."""
        key = tuple(sorted(int(x) for x in lines_out))
        if key not in self._solvers:
            net = self.net
            if key:
                net = copy.deepcopy(net)
                net.line.loc[list(key), "in_service"] = False
            self._solvers[key] = IslandPowerFlow(net, self.config.units, f0_hz=self.config.f0_hz)
        return self._solvers[key]

    def open(self, va_connected_degree: np.ndarray, bus: np.ndarray) -> None:
        """Open the breaker; the island keeps the angle its reference unit had."""
        ref = int(np.flatnonzero(np.asarray(bus) == self.config.units[0].bus)[0])
        self._theta_ref_degree = float(va_connected_degree[ref])
        self.islanded = True
        self.blocked = False

    def island_step(
        self, p_mw: np.ndarray, q_mvar: np.ndarray, *, lines_out, request_island: bool, f_hz: float
    ) -> dict[str, Any]:
        """Solve the island; check a reconnection request; return the island's outputs.

        Parameters
        ----------
        p_mw, q_mvar : numpy.ndarray (n_bus,)
            Bus injections besides the grid-forming units [MW, Mvar].
        lines_out : sequence of int
            Lines out of service.
        request_island : bool
            False: reconnection is requested.
        f_hz : float
            The island's frequency (swing model) [Hz].

        Returns
        -------
        dict
            ``result`` (:class:`grids.island.IslandResult`), ``va_degree`` (angles against
            the grid [degree]), ``check`` (:class:`grids.synchronisation.SyncCheck`) and
            ``close`` (the breaker closes now).
        """
        res = self.solver(lines_out).solve(p_mw, q_mvar)
        theta = self._theta_ref_degree
        va = wrap_degree(res.va_degree[0] + theta)
        pcc = int(np.flatnonzero(res.bus == self.pcc_bus)[0])
        check = sync_check(
            f_island_hz=f_hz,
            f_grid_hz=self.config.f0_hz,
            v_island_pu=res.vm_pu[0, pcc],
            v_grid_pu=self.v_grid_pu,
            theta_island_degree=va[pcc],
            theta_grid_degree=0.0,
            window=self.config.window,
        )
        self.last_check = check
        close = (not request_island) and bool(check.ok)
        self.blocked = (not request_island) and not close
        if close:
            self.islanded = False
        return {"result": res, "va_degree": va, "check": check, "close": close}

    def advance(self, f_hz: float, dt_s: float) -> None:
        """Drift of the island's angle against the grid over a step at frequency ``f_hz``."""
        self._theta_ref_degree = float(
            wrap_degree(self._theta_ref_degree + phase_drift_degree(f_hz - self.config.f0_hz, dt_s))
        )
