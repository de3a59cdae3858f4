"""``violations`` of a run (issue 12 §4): named limits computed from the results file."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cosim.results import ResultsWriter
from cosim.violations import run_violations
from grids.limits import Limit


def _write(path, rows):
    writer = ResultsWriter(path, {"seed": 0}, fmt="hdf5", flush_every=7)
    for t_s, signal, value in rows:
        writer.append(float(t_s), signal, float(value))
    writer.close()


def test_violations_from_a_hand_made_results_file(tmp_path):
    """Values chosen so every answer is known by construction: bus 3 at 0.94 pu for two
    900-s samples (range A low, not range B: 0.94 > 0.917), bus 5 at 1.06 pu once (above
    range A's 1.05 and range B's 1.058), the transformer at 1.2 pu and 130 °C once (loading
    and the 120 °C cyclic hot-spot limit, not the 140 °C emergency one)."""
    vm = {0: [1.0, 1.0, 1.0, 1.0], 3: [0.96, 0.94, 0.94, 0.97], 5: [1.0, 1.0, 1.06, 1.0]}
    rows = []
    for k in range(4):
        t = 900.0 * k
        rows += [(t, f"F.grid.bus_vm_pu[{bus}]", v[k]) for bus, v in vm.items()]
        rows += [(t, "F.grid.transformer_load_pu", [0.8, 1.2, 0.9, 0.7][k])]
        rows += [(t, "F.grid.hot_spot_c", [60.0, 130.0, 90.0, 70.0][k])]
        rows += [(t, "F.grid.max_line_loading_percent", 0.0)]
    path = tmp_path / "r.h5"
    _write(path, rows)
    found, not_checked = run_violations(path, feeder="case33bw", feeder_step_s=900.0)
    by_limit = {v.limit: v for v in found}
    a_low = by_limit[Limit.ANSI_C84_1_RANGE_A_LOW.value]
    assert (a_low.element, a_low.worst_value, a_low.limit_value) == ("bus 3", 0.94, 0.95)
    assert (a_low.first_time_s, a_low.duration_s, a_low.n_elements) == (900.0, 1800.0, 1)
    assert Limit.ANSI_C84_1_RANGE_B_LOW.value not in by_limit
    for limit in (Limit.ANSI_C84_1_RANGE_A_HIGH, Limit.ANSI_C84_1_RANGE_B_HIGH):
        v = by_limit[limit.value]
        assert (v.element, v.worst_value, v.first_time_s, v.duration_s) == (
            "bus 5",
            1.06,
            1800.0,
            900.0,
        )
    tr = by_limit[Limit.TRANSFORMER_LOADING.value]
    assert (tr.worst_value, tr.limit_value, tr.first_time_s) == (1.2, 1.0, 900.0)
    hs = by_limit[Limit.IEC_60076_7_HOT_SPOT_CYCLIC.value]
    assert (hs.worst_value, hs.limit_value) == (130.0, 120.0)
    assert Limit.IEC_60076_7_HOT_SPOT_EMERGENCY.value not in by_limit
    # case33bw's lines carry a 99999 kA placeholder: said as not checked, not "0 % loading"
    assert not_checked == ["lines: no rating given, loading_percent not checked"]
    assert Limit.LINE_LOADING.value not in by_limit


def test_a_clean_run_has_no_violations(tmp_path):
    rows = [(900.0 * k, f"F.grid.bus_vm_pu[{b}]", 1.0) for k in range(3) for b in range(4)]
    path = tmp_path / "r.h5"
    _write(path, rows)
    assert run_violations(path) == ([], [])


def test_shortened_demo_reports_its_range_a_violation(tmp_path):
    """The demo's first two hours (300 vehicles charging at night) put case33bw below 0.95 pu:
    range A (low) is reported,
    naming the bus with the lowest recorded voltage, and the worst value equals the minimum
    over every recorded bus voltage."""
    from cosim.commands.demo import demo_scenario_path
    from cosim.results import read_results, wide
    from cosim.scenario import load_scenario
    from cosim.world import run_scenario

    scenario = load_scenario(
        demo_scenario_path(),
        overrides={
            "simulation.duration_s": 7200.0,
            "simulation.window_s": [1.0, 4.0],
            "events.0.t_s": 3600.0,
        },
    )
    result = run_scenario(scenario, tmp_path, progress=False)
    by_limit = {v.limit: v for v in result.violations}
    a_low = by_limit[Limit.ANSI_C84_1_RANGE_A_LOW.value]
    vm = wide(read_results(result.results_path)[0], "bus_vm_pu")
    worst_column = vm.min().idxmin()
    assert a_low.worst_value == pytest.approx(float(np.nanmin(vm.to_numpy())), abs=1e-12)
    assert a_low.element == "bus " + worst_column.rsplit("[", 1)[1].rstrip("]")
    assert a_low.worst_value < 0.95 and a_low.to_dict()["limit"] == "ANSI C84.1 range A (low)"
    assert "lines: no rating given, loading_percent not checked" in result.limits_not_checked

    summary = result.summary()
    assert json.loads(json.dumps(summary))["violations"][0]["limit"].startswith("ANSI C84.1")
    assert result.violation_lines()[0].startswith("ANSI C84.1 range A (low): bus ")


def test_a_recorded_nan_loading_is_not_filled_from_before_the_outage(tmp_path):
    """Line 1 at 120 % for the first 900-s sample, then out of service (the feeder records NaN,
    never 0 %): the loading violation lasts one sample (900 s), not the whole run; line 2 is
    never above 100 %. Known by construction."""
    rows = []
    for k, line1 in enumerate([120.0, float("nan"), float("nan")]):
        t = 900.0 * k
        rows += [(t, "F.grid.line_loading_percent[1]", line1)]
        rows += [(t, "F.grid.line_loading_percent[2]", 50.0)]
    path = tmp_path / "r.h5"
    _write(path, rows)
    found, not_checked = run_violations(path, feeder_step_s=900.0)
    (line,) = [v for v in found if v.limit == Limit.LINE_LOADING.value]
    assert (line.element, line.worst_value, line.duration_s) == ("line 1", 120.0, 900.0)
    assert not_checked == []


def test_signal_mask_matches_names_not_rows():
    """``signal_mask`` selects the same rows as a per-row string match (categorical or not)."""
    import pandas as pd

    from cosim.results import signal_mask

    names = ["F-0.feeder.vm_min_pu", "Fr-0.freq.f_hz", "F-0.feeder.bus_vm_pu[3]", "Fr-0.freq.f_hz"]
    frame = pd.DataFrame({"t_s": [0.0, 0.0, 1.0, 1.0], "signal": names, "value": [1, 2, 3, 4]})
    for signal in (frame["signal"], frame["signal"].astype("category")):
        framed = frame.assign(signal=signal)
        mask = signal_mask(framed, lambda name: name.endswith(".f_hz"))
        expected = framed["signal"].astype(str).str.endswith(".f_hz").to_numpy()
        assert mask.tolist() == expected.tolist() == [False, True, False, True]
        assert not signal_mask(framed, lambda name: "nothing" in name).any()
