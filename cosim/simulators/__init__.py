"""mosaik simulators (Simulator API v3): thin adapters around the physics packages.

Every simulator here is public API for your own mosaik scenarios::

    sim_config = {
        "Feeder": {"python": "cosim.simulators:FeederSim"},
        "Feeder3ph": {"python": "cosim.simulators:ThreePhaseFeederSim"},  # OpenDSS feeders
        "Fleet": {"python": "cosim.simulators:FleetSim"},
        "Frequency": {"python": "cosim.simulators:FrequencySim"},
        "Profile": {"python": "cosim.simulators:ProfileSim"},
        "Events": {"python": "cosim.simulators:EventSim"},
        "Collector": {"python": "cosim.simulators:Collector"},
    }

and each can run in its own process (``python -m cosim.simulators FleetSim HOST:PORT``, used by
mosaik's ``cmd`` starter; see :func:`main`). One module per simulator: ``base`` (the clock and
the common base), ``feeder``, ``feeder3ph`` (three-phase feeders), ``fleet``, ``frequency``,
``events``, ``profile``, ``collector``, ``feeder_group`` (several feeder + fleet pairs in one
simulator), ``remote`` (the separate-process entry point).

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

from cosim.profiles import read_profile
from cosim.simulators.base import (
    FAR_FUTURE,
    LazyOutputs,
    SimulatorBase,
    StepClock,
    bus_vector,
    clock_from_params,
    latest_input,
    sum_inputs,
)
from cosim.simulators.collector import (
    COLLECTOR_META,
    LIVE_COLLECTORS,
    PROGRESS_HOOKS,
    Collector,
)
from cosim.simulators.events import EVENT_META, EventSim
from cosim.simulators.feeder import FEEDER_GRID_ATTRS, FEEDER_META, FeederSim
from cosim.simulators.feeder3ph import THREE_PHASE_FEEDER_META, ThreePhaseFeederSim
from cosim.simulators.feeder_group import FEEDER_GROUP_META, FeederGroupSim
from cosim.simulators.fleet import FLEET_ATTRS, FLEET_INPUTS, FLEET_META, FLEET_OUTPUTS, FleetSim
from cosim.simulators.frequency import FREQUENCY_META, FrequencySim
from cosim.simulators.profile import ProfileSim
from cosim.simulators.remote import SIMULATORS, main

#: Old private names, kept for code written against the single module.
_Base = SimulatorBase
_vector = bus_vector

__all__ = [
    "COLLECTOR_META",
    "EVENT_META",
    "FAR_FUTURE",
    "FEEDER_GRID_ATTRS",
    "FEEDER_GROUP_META",
    "FEEDER_META",
    "FLEET_ATTRS",
    "FLEET_INPUTS",
    "FLEET_META",
    "FLEET_OUTPUTS",
    "FREQUENCY_META",
    "LIVE_COLLECTORS",
    "PROGRESS_HOOKS",
    "SIMULATORS",
    "THREE_PHASE_FEEDER_META",
    "Collector",
    "EventSim",
    "FeederGroupSim",
    "FeederSim",
    "FleetSim",
    "FrequencySim",
    "LazyOutputs",
    "ProfileSim",
    "SimulatorBase",
    "StepClock",
    "ThreePhaseFeederSim",
    "bus_vector",
    "clock_from_params",
    "latest_input",
    "main",
    "read_profile",
    "sum_inputs",
]
