"""The demo (shortened) through ``v2g-cosim demo --json``: its report, figures and violations."""

from __future__ import annotations

import json

import numpy as np

import cosim.scenario
from cosim.cli import main
from cosim.results import read_results

#: the demo shortened to the two evening hours around its 18:00 event (the evening peak: the
#: lowest voltages of the day), with 30 vehicles and a short high-rate window
SHORT = {
    "simulation.start": "2024-07-01T17:00:00+02:00",
    "simulation.duration_s": 7200.0,
    "simulation.window_s": [1.0, 4.0],
    "events.0.t_s": 3600.0,
}


def test_shortened_demo_writes_the_report_with_every_figure_and_violation(
    tmp_path, monkeypatch, capsys
):
    """Figures, key numbers, and the ANSI C84.1 range A (low) violation first in JSON and report.

    References: the frequency nadir of a 500 MW loss on 10 GW at 60 Hz with H = 5 s (about
    59.815 Hz, docs/frequency.md); the violation is checked against the bus voltages recorded
    in the results file and the ANSI C84.1 range A limit 0.95 pu.
    """
    load = cosim.scenario.load_scenario

    def shortened(path, overrides=None):
        return load(path, overrides={**(overrides or {}), **SHORT})

    monkeypatch.setattr(cosim.scenario, "load_scenario", shortened)
    argv = ["demo", "--out", str(tmp_path), "--vehicles", "30", "--no-progress", "--json"]
    assert main(argv) == 0
    doc = json.loads(capsys.readouterr().out)
    html = (tmp_path / "report.html").read_text()
    for name in ("demo_voltage_envelope", "demo_transformer", "demo_fleet", "demo_frequency"):
        assert (tmp_path / f"{name}.png").stat().st_size > 1000
        assert f"{name}.png" in html
    assert "frequency nadir [Hz]" in html and "peak hot-spot temperature" in html
    assert "case33bw has no transformer" in html
    metrics = doc["metrics"]
    assert 59.80 < metrics["f_nadir_hz"] < 59.83
    assert metrics["min_vm_pu"] < 0.97
    # the violation: named, worst value = lowest recorded bus voltage, below 0.95 pu
    frame = read_results(doc["results"])[0]
    signal = frame["signal"].astype(str)
    vm = frame.loc[signal.str.contains(".bus_vm_pu[", regex=False), "value"].to_numpy(float)
    by_limit = {v["limit"]: v for v in doc["violations"]}
    range_a = by_limit["ANSI C84.1 range A (low)"]
    assert range_a["limit_value"] == 0.95
    assert range_a["worst_value"] == np.nanmin(vm) < 0.95
    # a violation lasts no longer than the run (the sample at its end adds no time)
    assert 0 < range_a["duration_s"] <= SHORT["simulation.duration_s"]
    assert "limits_not_checked" in doc
    # the report shows it at the top: before the first figure and the key-number table
    first = html.index("ANSI C84.1 range A (low)")
    assert first < html.index("demo_voltage_envelope.png")
    assert first < html.index("frequency nadir [Hz]")
