"""Simulators in separate processes (mosaik ``cmd`` start on 127.0.0.1) give the same results
as in-process ones."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from cosim.results import read_results
from cosim.scenario import RemoteSim, load_scenario
from cosim.world import build_world, run_scenario, sim_config

SCENARIOS = Path(str(resources.files("studies.scenarios")))


def test_sim_config_starts_one_simulator_as_a_process():
    config = sim_config(RemoteSim.FLEET)
    assert config["FleetSim"] == {"cmd": "%(python)s -m cosim.simulators FleetSim %(addr)s"}
    assert config["FeederSim"] == {"python": "cosim.simulators:FeederSim"}


def test_remote_fleet_equals_in_process(tmp_path):
    scenario = load_scenario(SCENARIOS / "remote.toml")
    assert scenario.simulation.remote is RemoteSim.FLEET
    remote = run_scenario(scenario, tmp_path / "remote", progress=False)
    local = run_scenario(scenario, tmp_path / "local", progress=False, remote=RemoteSim.NONE)
    a, _ = read_results(remote.results_path)
    b, _ = read_results(local.results_path)
    pd.testing.assert_frame_equal(a, b)
    # NaN (no line rating, no transformer in case33bw) compares equal here
    np.testing.assert_equal(remote.metrics, local.metrics)
    assert remote.metrics["max_fleet_import_mw"] > 0  # the fleet did something


def test_the_world_listens_on_localhost_only(tmp_path):
    built = build_world(load_scenario(SCENARIOS / "frequency_only.toml"), tmp_path, record=False)
    try:
        assert built.world.config["addr"][0] == "127.0.0.1"
    finally:
        built.world.shutdown()


def test_a_remote_simulator_process_ends_quietly_on_ctrl_c():
    """Ctrl-C reaches every process of the terminal's group: the simulator process must not
    print a KeyboardInterrupt traceback (the parent reports the interruption)."""
    import signal
    import socket
    import subprocess
    import sys
    import time

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        process = subprocess.Popen(
            [sys.executable, "-m", "cosim.simulators", "FleetSim", f"127.0.0.1:{port}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        server.settimeout(60)
        connection, _ = server.accept()  # the simulator is up and waiting for mosaik
        time.sleep(0.2)
        process.send_signal(signal.SIGINT)
        time.sleep(0.2)
        connection.close()  # the parent goes away, as after its own Ctrl-C
        _out, err = process.communicate(timeout=60)
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
