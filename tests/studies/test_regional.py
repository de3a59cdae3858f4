"""Regional runs (``studies.regional``): feeder lists, resumable store, results table, report.

References: each feeder's rows equal the snapshot study run directly on that feeder
(:func:`studies.hosting_capacity.run_hosting_capacity_study`, same options: identical numbers,
the regional runner only distributes and stores).
"""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest

from grids.errors import ScenarioError
from grids.feeders import load_feeder
from studies import regional
from studies.hosting_capacity import run_hosting_capacity_study
from studies.regional import (
    RegionalOptions,
    RegionalStudy,
    resolve_feeders,
    run_feeder,
    run_regional,
)

SCREEN = RegionalOptions(method="screen")


@pytest.fixture
def bad_json(tmp_path):
    path = tmp_path / "nets" / "broken.json"
    path.parent.mkdir()
    path.write_text('{"not": "a net"}', encoding="utf-8")
    return path


def test_resolve_feeders_expands_patterns_and_folders(bad_json):
    (bad_json.parent / "feeder.dss").write_text("clear\n", encoding="utf-8")
    (bad_json.parent / "notes.txt").write_text("not a feeder\n", encoding="utf-8")
    feeders = resolve_feeders(
        ["simbench:1-LV-rural*--1-sw", "case33bw", "case33bw"], feeders_dir=bad_json.parent
    )
    assert feeders == [
        "simbench:1-LV-rural1--1-sw",
        "simbench:1-LV-rural2--1-sw",
        "simbench:1-LV-rural3--1-sw",
        "case33bw",
        str(bad_json),
        str(bad_json.parent / "feeder.dss"),
    ]


def test_resolve_feeders_lists_every_problem(tmp_path):
    with pytest.raises(ScenarioError) as error:
        resolve_feeders(
            ["simbench:9-XX-*", "simbench:1-LV-rural1--1-sx", "nowhere", "missing.json"],
            feeders_dir=tmp_path,
        )
    text = str(error.value)
    assert "matches no SimBench grid code" in text
    assert "closest: 1-LV-rural1--1-sw" in text
    assert "'nowhere': not an embedded feeder" in text
    assert "missing.json: no such file" in text
    assert "holds no .json or .dss feeder file" in text
    with pytest.raises(ScenarioError, match="no feeders"):
        resolve_feeders([])


def test_options_are_checked_together():
    with pytest.raises(ScenarioError) as error:
        RegionalOptions(mode="both", percentile=120.0, study_case="noon")
    text = str(error.value)
    assert "mode: 'both'" in text and "percentile: 120.0" in text and "study_case: 'noon'" in text
    with pytest.raises(ScenarioError, match="only for the time-series study"):
        RegionalOptions(duration_s=86_400.0)
    ts = RegionalOptions(study=RegionalStudy.TIME_SERIES_HOSTING_CAPACITY, duration_s=3600.0)
    assert RegionalOptions(**ts.to_json()) == ts


def test_a_feeder_row_equals_the_study_run_directly():
    row = run_feeder("cigre_mv", SCREEN.to_json())
    assert row["status"] == "ok" and row["error"] is None
    rows = pd.DataFrame(json.loads(row["rows"]))
    direct = run_hosting_capacity_study("cigre_mv", method="screen").table
    np.testing.assert_array_equal(rows["bus"], direct["bus"])
    np.testing.assert_array_equal(rows["hosting_capacity_mw"], direct["hosting_capacity_mw"])
    assert rows["binding"].tolist() == direct["binding"].tolist()
    assert rows["element"].tolist() == direct["where"].tolist()
    assert row["hc_min_mw"] == pytest.approx(direct["hosting_capacity_mw"].min(), abs=0)


def test_a_failed_feeder_is_recorded_not_raised(bad_json):
    row = run_feeder(str(bad_json), SCREEN.to_json())
    assert row["status"] == "failed"
    assert row["error"].startswith("FeederError:") and "not a pandapower net" in row["error"]
    dss = run_feeder(str(bad_json.with_suffix(".dss")), SCREEN.to_json())
    assert dss["status"] == "failed" and dss["error"].startswith("FeederError:")
    ts = RegionalOptions(study=RegionalStudy.TIME_SERIES_HOSTING_CAPACITY).to_json()
    assert run_feeder("case33bw", ts)["status"] == "failed"


def test_run_resumes_keeps_failures_and_tabulates(tmp_path, bad_json):
    out = tmp_path / "run"
    first = run_regional(["case33bw", str(bad_json)], SCREEN, out, workers=1, progress=False)
    assert (first.n_done, first.n_failed, first.n_skipped) == (2, 1, 0)
    table = pd.read_parquet(out / "results.parquet")
    assert table.columns[:5].tolist() == list(regional.RESULT_COLUMNS)
    assert set(table.feeder) == {"case33bw"} and len(table) == 32
    assert pd.read_csv(out / "results.csv").shape == table.shape
    feeders = pd.read_csv(out / "feeders.csv")
    assert feeders.status.tolist() == ["ok", "failed"]
    report = (out / "report.html").read_text(encoding="utf-8")
    assert "hc_distribution.png" in report and "Failed feeders" in report
    assert (out / "hc_distribution.png").stat().st_size > 0
    assert "| case33bw | ok | 32 |" in (out / "report.md").read_text(encoding="utf-8")

    # more feeders later: only the new one runs; the failure stays recorded
    second = run_regional(
        ["case33bw", str(bad_json), "cigre_mv"], SCREEN, out, workers=1, progress=False
    )
    assert (second.n_done, second.n_skipped, second.n_failed) == (1, 2, 1)
    table = pd.read_parquet(out / "results.parquet")
    assert list(dict.fromkeys(table.feeder)) == ["case33bw", "cigre_mv"]
    # fixing the broken file and retrying runs it again
    import pandapower as pp

    pp.to_json(load_feeder("cigre_mv"), str(bad_json))
    third = run_regional(
        ["case33bw", str(bad_json), "cigre_mv"],
        SCREEN,
        out,
        workers=1,
        progress=False,
        retry_failed=True,
    )
    assert (third.n_done, third.n_skipped, third.n_failed) == (1, 2, 0)
    table = pd.read_parquet(out / "results.parquet")
    assert list(dict.fromkeys(table.feeder)) == ["case33bw", str(bad_json), "cigre_mv"]

    with pytest.raises(ScenarioError, match=r"other options \(method"):
        run_regional(["case33bw"], RegionalOptions(method="ac"), out, workers=1, progress=False)


def test_an_interrupted_run_keeps_the_finished_feeders(tmp_path, monkeypatch):
    out = tmp_path / "run"
    original = regional.STUDY_RUNNERS[RegionalStudy.HOSTING_CAPACITY]

    def interrupt_on_cigre(feeder, options):
        if feeder == "cigre_mv":
            raise KeyboardInterrupt
        return original(feeder, options)

    monkeypatch.setitem(regional.STUDY_RUNNERS, RegionalStudy.HOSTING_CAPACITY, interrupt_on_cigre)
    with pytest.raises(KeyboardInterrupt):
        run_regional(["case33bw", "cigre_mv"], SCREEN, out, workers=1, progress=False)
    monkeypatch.setitem(regional.STUDY_RUNNERS, RegionalStudy.HOSTING_CAPACITY, original)
    resumed = run_regional(["case33bw", "cigre_mv"], SCREEN, out, workers=1, progress=False)
    assert (resumed.n_skipped, resumed.n_done, resumed.n_failed) == (1, 1, 0)


def test_two_local_workers_give_the_same_table(tmp_path):
    feeders = ["case33bw", "cigre_mv"]
    serial = run_regional(feeders, SCREEN, tmp_path / "a", workers=1, progress=False)
    parallel = run_regional(feeders, SCREEN, tmp_path / "b", workers=2, progress=False)
    pd.testing.assert_frame_equal(
        pd.read_parquet(serial.results_path), pd.read_parquet(parallel.results_path)
    )


def test_time_series_rows_equal_the_time_series_study():
    from studies.hosting_capacity_timeseries import (
        feeder_with_profiles,
        time_series_hosting_capacity,
    )

    feeder = "simbench:1-LV-rural1--2-sw"
    options = RegionalOptions(
        study=RegionalStudy.TIME_SERIES_HOSTING_CAPACITY,
        mode="import",
        start="2016-01-11",
        duration_s=6 * 3600.0,
    )
    row = run_feeder(feeder, options.to_json())
    assert row["status"] == "ok", row["error"]
    rows = pd.DataFrame(json.loads(row["rows"]))
    model, window = feeder_with_profiles(feeder, start="2016-01-11", duration_s=6 * 3600.0)
    direct = pd.DataFrame(time_series_hosting_capacity(model, window, mode="import"))
    np.testing.assert_array_equal(rows["bus"], direct["bus"])
    np.testing.assert_allclose(rows["hosting_capacity_mw"], direct["hosting_capacity_mw"])
    assert rows["first_violation_time"].tolist() == direct["first_violation_time"].tolist()
    assert (rows["snapshot_hosting_capacity_mw"] >= rows["hosting_capacity_mw"] - 1e-3).all()


def test_an_opendss_feeder_is_studied_on_the_three_phase_engine():
    """A .dss feeder's rows equal the three-phase study run directly (a balanced three-phase
    unit per bus), and a table mixing its bus names with a balanced feeder's bus indices is
    one string column that Parquet can hold."""
    from grids.feeder3ph import DSS_DIR, ThreePhaseFeederModel
    from studies.hosting_capacity_3ph import three_phase_hosting_capacity

    path = str(DSS_DIR / "ieee13" / "Master.dss")
    row = run_feeder(path, SCREEN.to_json())
    assert row["status"] == "ok", row["error"]
    rows = pd.DataFrame(json.loads(row["rows"]))
    direct = three_phase_hosting_capacity(
        ThreePhaseFeederModel.from_name(path), phase="abc", mode="export", method="screen"
    ).rows
    assert rows["bus"].tolist() == [r["bus"] for r in direct]
    np.testing.assert_array_equal(
        rows["hosting_capacity_mw"], [r["hosting_capacity_mw"] for r in direct]
    )
    assert set(rows["phase"]) == {"abc"}
    balanced = run_feeder("case33bw", SCREEN.to_json())
    store = pd.DataFrame([row, balanced])
    table = regional.results_table(store, [path, "case33bw"])
    assert len(table) == len(rows) + len(json.loads(balanced["rows"]))
    assert table["bus"].map(type).eq(str).all()
    table.to_parquet(io.BytesIO())
