"""One simulator in its own process: ``python -m cosim.simulators NAME HOST:PORT``."""

from __future__ import annotations

import sys

import mosaik_api_v3
from mosaik_api_v3.connection import EndOfRequests

from cosim.simulators.collector import Collector
from cosim.simulators.events import EventSim
from cosim.simulators.feeder import FeederSim
from cosim.simulators.feeder3ph import ThreePhaseFeederSim
from cosim.simulators.feeder_group import FeederGroupSim
from cosim.simulators.fleet import FleetSim
from cosim.simulators.frequency import FrequencySim
from cosim.simulators.profile import ProfileSim

SIMULATORS = {
    "FeederSim": FeederSim,
    "ThreePhaseFeederSim": ThreePhaseFeederSim,
    "FeederGroupSim": FeederGroupSim,
    "FleetSim": FleetSim,
    "FrequencySim": FrequencySim,
    "ProfileSim": ProfileSim,
    "EventSim": EventSim,
    "Collector": Collector,
}


def main(argv: list[str] | None = None) -> int:
    """Run one simulator as a separate process: ``python -m cosim.simulators NAME HOST:PORT``.

    Used by mosaik's ``cmd`` starter (``"%(python)s -m cosim.simulators FleetSim %(addr)s"``);
    the address is the one mosaik listens on (127.0.0.1 by default). A Ctrl-C ends it quietly
    (exit 130, no traceback), and so does a connection the parent closed without a stop
    request: the parent process reports the interruption or its failure.

    Parameters
    ----------
    argv : list of str, optional
        ``[NAME, HOST:PORT]`` (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        The process exit status.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in SIMULATORS:
        print(f"usage: python -m cosim.simulators {{{','.join(SIMULATORS)}}} HOST:PORT")
        return 2
    name = args.pop(0)
    sys.argv = [f"cosim.simulators:{name}", *args]
    simulator = SIMULATORS[name]()
    try:
        return (
            mosaik_api_v3.start_simulation(simulator, f"v2g-cosim {name}", configure_logging=False)
            or 0
        )
    except KeyboardInterrupt:  # the parent process reports the interruption
        return 130
    except (EndOfRequests, ConnectionError):
        # the parent closed the connection without a stop request (it was interrupted or
        # failed, and reports that itself): nothing is left to do here
        return 0
