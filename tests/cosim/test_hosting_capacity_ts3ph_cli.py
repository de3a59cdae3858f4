"""``v2g-cosim hosting-capacity --time-series`` on a three-phase (OpenDSS) feeder.

The CLI is a thin adapter: its JSON rows equal the study's
(:func:`studies.hosting_capacity_ts3ph.three_phase_time_series_hosting_capacity`, validated in
tests/studies/test_hosting_capacity_ts3ph.py) on the same window, and options that do not
apply are refused before any work, naming the option.
"""

from __future__ import annotations

import json

from cosim.cli import main
from grids.feeder3ph import ThreePhaseFeederModel
from grids.opendss_loadshapes import read_load_shapes
from studies.hosting_capacity_3ph import ThreePhaseCriteria
from studies.hosting_capacity_ts3ph import three_phase_time_series_hosting_capacity


def test_json_rows_equal_the_study_and_report_is_written(capsys, tmp_path):
    argv = [
        "hosting-capacity", "--time-series", "--feeder", "european_lv", "--phase", "b",
        "--mode", "import", "--start", "2000-01-01T18:50", "--duration", "10min",
        "--bus", "906", "--v-min-pu", "0.9", "--v-max-pu", "1.1", "--percentile", "90",
        "--out", str(tmp_path), "--json",
    ]  # fmt: skip
    assert main(argv) == 0
    doc = json.loads(capsys.readouterr().out)
    model = ThreePhaseFeederModel.from_name("european_lv")
    shapes = read_load_shapes(model).window("2000-01-01T18:50", 600)
    study = three_phase_time_series_hosting_capacity(
        model,
        shapes,
        buses=["906"],
        phase="b",
        mode="import",
        percentile=90.0,
        criteria=ThreePhaseCriteria(v_min_pu=0.9, v_max_pu=1.1),
    )
    assert doc["results"] == study.rows
    assert doc["n_steps"] == 10 and doc["phase"] == "b" and doc["percentile"] == 90.0
    (row,) = doc["results"]
    assert {"bus", "hosting_capacity_mw", "binding", "element", "first_violation_time"} <= set(row)
    for name in ("report.html", "time_series_hosting_capacity.csv", "ts3ph_hc_per_bus.png",
                 "ts3ph_voltage_heatmap.png"):  # fmt: skip
        assert (tmp_path / name).is_file()


def test_options_that_do_not_apply_exit_2(capsys):
    base = ["hosting-capacity", "--time-series", "--feeder", "european_lv"]
    for extra, text in (
        (["--method", "ac"], "--method: not available for the three-phase time-series study"),
        (["--load-scale", "2"], "--load-scale: not available"),
        (["--samples", "5"], "--samples: not available"),
        (["--duration", "3 weeks"], "is not a duration"),
    ):
        assert main([*base, *extra]) == 2
        assert text in capsys.readouterr().err
