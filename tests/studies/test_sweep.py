"""Parameter sweeps (studies.sweep, studies.sweep_report, ``sweep`` / ``sweep-report`` CLI).

The sweeps drive the real contingency study on a frequency-only scenario (bulk swing model, no
fleet), whose metrics have closed forms (Kundur 1994, sec. 11.1): initial RoCoF
``-ΔP f0 / (2 H S)`` and steady state ``-ΔP/(D + 1/R) · f0/S``; the tests check them exactly in
the results table, so a mix-up of parameters and rows cannot pass.
"""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np
import pandas as pd
import pytest

import studies.sweep_run as sweep_module
from cosim.cli import main
from grids.errors import ScenarioError
from studies.sweep import (
    Axis,
    Combine,
    ResultsStore,
    expand_axes,
    latin_hypercube,
    load_sweep,
    read_results,
    run_id_for,
    run_sweep,
)
from studies.sweep_report import pareto_mask

BASE = """
[simulation]
duration_s = 2.0
step_s = 0.05

[frequency]
f0_hz = 60.0
s_base_mw = 10000.0
h_s = 5.0
d_pu = 1.0
r_pu = 0.05
t_gov_s = 0.5

[[events]]
t_s = 0.5
kind = "generation_loss"
p_mw = 500.0
"""

METRICS = '["f_nadir_hz", "rocof_initial_hz_per_s", "delta_f_steady_hz"]'


def write_sweep(
    tmp_path, axes: str, *, extra: str = "", name: str = "sweep.toml", metrics: str = METRICS
):
    (tmp_path / "base.toml").write_text(BASE)
    path = tmp_path / name
    path.write_text(
        f'study = "contingency"\nbase = "base.toml"\nmetrics = {metrics}\n{extra}\n{axes}'
    )
    return path


GRID_AXES = """
[[axis]]
key = "frequency.h_s"
values = [3.0, 4.0, 5.0]

[[axis]]
key = "frequency.r_pu"
linspace = { start = 0.04, stop = 0.06, num = 2 }
"""


def expected_rocof(h_s):
    return -500.0 * 60.0 / (2 * h_s * 10_000.0)


def expected_steady(r_pu):
    return -(500.0 / 10_000.0) / (1.0 + 1.0 / r_pu) * 60.0


def check_closed_forms(frame):
    ok = frame[frame.status == "ok"]
    assert np.allclose(
        ok["rocof_initial_hz_per_s"], expected_rocof(ok["frequency.h_s"]), rtol=1e-12
    )
    assert np.allclose(ok["delta_f_steady_hz"], expected_steady(ok["frequency.r_pu"]), rtol=1e-9)


# ------------------------------------------------------------------------------- expansion
def test_grid_expansion_is_the_cartesian_product_first_axis_slowest():
    axes = [Axis("a", (1, 2)), Axis("b", ("x", "y", "z"))]
    runs = expand_axes(axes, combine=Combine.GRID)
    assert runs == [{"a": a, "b": b} for a in (1, 2) for b in ("x", "y", "z")]


def test_zip_expansion_pairs_values_and_rejects_unequal_lengths():
    axes = [Axis("a", (1, 2, 3)), Axis("b", (4, 5, 6))]
    assert expand_axes(axes, combine=Combine.ZIP) == [
        {"a": 1, "b": 4},
        {"a": 2, "b": 5},
        {"a": 3, "b": 6},
    ]
    with pytest.raises(ScenarioError, match=r"equal length \(got \[2, 3\]\)"):
        expand_axes([Axis("a", (1, 2)), Axis("b", (1, 2, 3))], combine=Combine.ZIP)


def test_linspace_and_logspace_axes(tmp_path):
    path = write_sweep(
        tmp_path,
        """
[[axis]]
key = "frequency.h_s"
linspace = { start = 2.0, stop = 6.0, num = 5 }
[[axis]]
key = "frequency.t_gov_s"
logspace = { start = 0.1, stop = 10.0, num = 3 }
""",
    )
    spec = load_sweep(path)
    assert [a.values for a in spec.axes] == [(2.0, 3.0, 4.0, 5.0, 6.0), (0.1, 1.0, 10.0)]
    assert len(spec.runs) == 15


def test_latin_hypercube_is_seeded_stratified_and_within_bounds():
    u = latin_hypercube(20, 3, seed=7)
    assert np.array_equal(u, latin_hypercube(20, 3, seed=7))
    assert not np.array_equal(u, latin_hypercube(20, 3, seed=8))
    for d in range(3):  # exactly one point per stratum in every dimension
        assert sorted(np.floor(u[:, d] * 20).astype(int)) == list(range(20))
    axes = [
        Axis("h", lhs_low=2.0, lhs_high=8.0, lhs_count=10),
        Axis("k", lhs_low=0.01, lhs_high=1.0, lhs_count=10, lhs_log=True),
        Axis("mode", ("a", "b")),
    ]
    runs = expand_axes(axes, combine=Combine.GRID, seed=3)
    assert len(runs) == 20  # a 10-point hypercube times 2 modes
    h = np.array([r["h"] for r in runs[::2]])
    k = np.array([r["k"] for r in runs[::2]])
    assert np.all((h >= 2) & (h < 8)) and np.all((k >= 0.01) & (k < 1.0))
    assert sorted(np.floor((h - 2) / 6 * 10).astype(int)) == list(range(10))
    assert sorted(np.floor(np.log(k / 0.01) / np.log(100) * 10).astype(int)) == list(range(10))


def test_run_ids_are_stable_hashes_of_the_parameters():
    rid = run_id_for({"frequency.h_s": 4.0, "fleet.control.droop.k": 0.05})
    # the documented definition: SHA-256 of the sorted, compact JSON with numbers as floats;
    # ids must never change between versions, or resumes would rerun everything
    canonical = b'{"fleet.control.droop.k":0.05,"frequency.h_s":4.0}'
    assert rid == hashlib.sha256(canonical).hexdigest()[:16] == "78f361c11e39a0c8"
    assert run_id_for({"fleet.control.droop.k": 0.05, "frequency.h_s": 4}) == rid
    assert run_id_for({"frequency.h_s": 4.5, "fleet.control.droop.k": 0.05}) != rid
    assert len(rid) == 16


# ------------------------------------------------------------------------------ validation
def test_sweep_file_problems_are_all_listed(tmp_path):
    (tmp_path / "base.toml").write_text(BASE)
    path = tmp_path / "bad.toml"
    path.write_text(
        """
study = "nope"
base = "missing.toml"
combine = "diagonal"
metrics = "f_nadir_hz"
colour = 1
[[axis]]
key = "frequency.h_s"
values = []
[[axis]]
values = [1]
linspace = { start = 1, stop = 2, num = 0 }
[[axis]]
key = "x"
lhs = { low = 2, high = 1, count = 5 }
"""
    )
    with pytest.raises(ScenarioError) as info:
        load_sweep(path)
    text = str(info.value)
    for fragment in (
        "colour: unknown key",
        "study: 'nope' is not one of run, contingency, hosting_capacity, black_start",
        "base: 'missing.toml' does not exist",
        "combine: 'diagonal' is not one of grid, zip",
        "metrics: 'f_nadir_hz' must be a non-empty list of metric names",
        "axis[0].values: [] must be a non-empty list",
        "axis[1].key: None must be a dotted key path",
        "axis[1]: give exactly one of values, linspace, logspace, lhs (got values, linspace)",
        "axis[2].lhs: low 2 must be below high 1",
    ):
        assert fragment in text, fragment


def test_every_run_scenario_is_validated_up_front(tmp_path):
    path = write_sweep(
        tmp_path,
        """
[[axis]]
key = "frequency.h_s"
values = [-1.0, 4.0, 0.0]
[[axis]]
key = "frequency.r_pu"
values = [0.05, -0.05]
""",
    )
    with pytest.raises(ScenarioError) as info:
        load_sweep(path)
    text = str(info.value)
    assert "frequency.h_s=-1.0, frequency.r_pu=0.05" in text
    assert "frequency.h_s: -1" in text and "frequency.r_pu: -0.05" in text
    assert "frequency.h_s: 0" in text
    assert not (tmp_path / "out").exists()


def test_cli_rejects_a_bad_sweep_with_exit_2(tmp_path, capsys):
    path = write_sweep(tmp_path, '[[axis]]\nkey = "frequency.h_s"\nvalues = [0.0]\n')
    assert main(["sweep", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "(frequency.h_s=0.0)" in err and "frequency.h_s: 0" in err


# ------------------------------------------------------------------------------- execution
def test_sweep_runs_every_run_with_the_right_parameters(tmp_path, capsys):
    path = write_sweep(tmp_path, GRID_AXES)
    out = tmp_path / "out"
    assert main(["sweep", str(path), "--out", str(out), "--workers", "1", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["n_runs"] == 6 and doc["n_done"] == 6 and doc["n_failed"] == 0
    frame = pd.read_parquet(out / "results.parquet")
    assert list(frame.columns) == [
        "run_id",
        "status",
        "error",
        "wall_s",
        "frequency.h_s",
        "frequency.r_pu",
        "f_nadir_hz",
        "rocof_initial_hz_per_s",
        "delta_f_steady_hz",
    ]
    assert (frame.status == "ok").all() and frame.run_id.is_unique
    assert (frame.wall_s > 0).all()
    check_closed_forms(frame)
    ids = [
        run_id_for({"frequency.h_s": h, "frequency.r_pu": r})
        for h in (3, 4, 5)
        for r in (0.04, 0.06)
    ]
    assert frame.run_id.tolist() == ids
    # rerunning the complete sweep runs nothing
    assert main(["sweep", str(path), "--out", str(out), "--workers", "1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n_skipped"] == 6


def _failing_on(value, exc=RuntimeError):
    original = sweep_module.STUDY_RUNNERS[sweep_module.StudyKind.CONTINGENCY]

    def runner(scenario, workdir):
        if scenario["frequency"]["h_s"] == value:
            raise exc("solver blew up (injected by the test)")
        return original(scenario, workdir)

    return runner


def test_a_failing_run_is_recorded_and_the_others_complete(tmp_path, monkeypatch):
    path = write_sweep(tmp_path, GRID_AXES)
    out = tmp_path / "out"
    runners = dict(sweep_module.STUDY_RUNNERS)
    runners[sweep_module.StudyKind.CONTINGENCY] = _failing_on(4.0)
    monkeypatch.setattr(sweep_module, "STUDY_RUNNERS", runners)
    summary = run_sweep(load_sweep(path), out, workers=1, progress=False)
    assert summary.n_done == 6 and summary.n_failed == 2
    frame = read_results(out)
    failed = frame[frame.status == "failed"]
    assert set(failed["frequency.h_s"]) == {4.0}
    assert failed.error.str.contains("RuntimeError: solver blew up").all()
    assert failed.f_nadir_hz.isna().all()
    check_closed_forms(frame)
    # a plain rerun leaves the failed rows alone; --retry-failed runs them again
    monkeypatch.setattr(sweep_module, "STUDY_RUNNERS", dict(sweep_module.STUDY_RUNNERS))
    monkeypatch.undo()
    again = run_sweep(load_sweep(path), out, workers=1, progress=False)
    assert again.n_done == 0 and again.n_skipped == 6
    retry = run_sweep(load_sweep(path), out, workers=1, progress=False, retry_failed=True)
    assert retry.n_done == 2 and retry.n_failed == 0
    frame = read_results(out)
    assert (frame.status == "ok").all() and len(frame) == 6
    check_closed_forms(frame)


def test_a_misspelt_metric_is_refused_before_any_run_and_out_stays_reusable(tmp_path):
    """Issue 12 §3: the metric names are checked against the study's list before any run;
    nothing is written to --out, and the corrected sweep then runs into the same --out."""
    (tmp_path / "base.toml").write_text(BASE)
    path = tmp_path / "s.toml"
    body = (
        '\nstudy = "contingency"\nbase = "base.toml"\n'
        '[[axis]]\nkey = "frequency.h_s"\nvalues = [4.0]\n'
    )
    path.write_text('metrics = ["f_nadir_hz", "no_such_metric"]' + body)
    out = tmp_path / "out"
    with pytest.raises(ScenarioError) as info:
        run_sweep(load_sweep(path), out, workers=1, progress=False)
    text = str(info.value)
    assert "metrics: 'no_such_metric' is not a metric of the contingency study" in text
    assert "f_nadir_hz" in text and "rocof_500ms_hz_per_s" in text  # the valid names
    assert "'f_nadir_hz' is not" not in text
    assert not out.exists()
    path.write_text('metrics = ["f_nadir_hz", "t_settle_s"]' + body)
    summary = run_sweep(load_sweep(path), out, workers=1, progress=False)
    assert summary.n_done == 1 and summary.n_failed == 0


def test_a_metric_missing_from_one_run_output_fails_that_run_with_the_available_names(
    tmp_path, monkeypatch
):
    """A name in the study's list that a run does not produce (e.g. a co-simulation without a
    frequency model) still fails only that run, naming what the run did produce."""
    (tmp_path / "base.toml").write_text(BASE)
    path = tmp_path / "s.toml"
    path.write_text(
        'study = "contingency"\nbase = "base.toml"\nmetrics = ["t_settle_s"]\n'
        '[[axis]]\nkey = "frequency.h_s"\nvalues = [4.0]\n'
    )
    original = sweep_module.STUDY_RUNNERS[sweep_module.StudyKind.CONTINGENCY]

    def without_settling(scenario, workdir):
        doc = original(scenario, workdir)
        doc.pop("t_settle_s")
        return doc

    runners = dict(sweep_module.STUDY_RUNNERS)
    runners[sweep_module.StudyKind.CONTINGENCY] = without_settling
    monkeypatch.setattr(sweep_module, "STUDY_RUNNERS", runners)
    run_sweep(load_sweep(path), tmp_path / "out", workers=1, progress=False)
    frame = read_results(tmp_path / "out")
    assert frame.status.tolist() == ["failed"]
    assert "metric 't_settle_s' is not in the study output" in frame.error[0]
    assert "f_nadir_hz" in frame.error[0]


def test_results_on_disk_survive_a_failed_and_an_interrupted_rerun(tmp_path, monkeypatch):
    """Issue 12 §1: a later run that fails or is cut off never truncates earlier rows, and a
    store used without load() merges what is on disk before it writes."""
    path = write_sweep(tmp_path, GRID_AXES)
    out = tmp_path / "out"
    run_sweep(load_sweep(path), out, workers=1, progress=False)
    before = read_results(out)
    assert len(before) == 6 and (before.status == "ok").all()

    def boom(scenario, workdir):
        raise KeyboardInterrupt

    runners = dict(sweep_module.STUDY_RUNNERS)
    runners[sweep_module.StudyKind.CONTINGENCY] = boom
    monkeypatch.setattr(sweep_module, "STUDY_RUNNERS", runners)
    # every run done: nothing to do, the file is untouched
    run_sweep(load_sweep(path), out, workers=1, progress=False, retry_failed=True)
    pd.testing.assert_frame_equal(read_results(out), before)
    # a fresh store that was never loaded adds a row: the six earlier rows stay
    store = ResultsStore(out, columns=list(before.columns))
    store.add({"run_id": "extra", "status": "failed", "error": "x", "wall_s": 0.0})
    store.write()
    after = read_results(out)
    assert len(after) == 7 and set(before.run_id) <= set(after.run_id)


def test_resume_after_an_interrupt_keeps_completed_rows_and_runs_the_rest(
    tmp_path, monkeypatch, capsys
):
    """Ctrl-C during the 4th run: 3 rows kept, the cut-off run is not recorded at all."""
    path = write_sweep(tmp_path, GRID_AXES)
    out = tmp_path / "out"
    original = sweep_module.STUDY_RUNNERS[sweep_module.StudyKind.CONTINGENCY]
    calls = {"n": 0}

    def interrupted(scenario, workdir):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return original(scenario, workdir)

    runners = dict(sweep_module.STUDY_RUNNERS)
    runners[sweep_module.StudyKind.CONTINGENCY] = interrupted
    monkeypatch.setattr(sweep_module, "STUDY_RUNNERS", runners)
    assert main(["sweep", str(path), "--out", str(out), "--workers", "1"]) == 130
    assert "interrupted" in capsys.readouterr().err
    first = pd.read_parquet(out / "results.parquet")
    assert len(first) == 3 and (first.status == "ok").all()
    monkeypatch.undo()
    assert main(["sweep", str(path), "--out", str(out), "--workers", "1", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["n_skipped"] == 3 and doc["n_done"] == 3
    final = pd.read_parquet(out / "results.parquet")
    assert len(final) == 6 and final.run_id.is_unique and (final.status == "ok").all()
    kept = final.set_index("run_id").loc[first.run_id]
    assert np.array_equal(kept.wall_s.to_numpy(), first.wall_s.to_numpy())  # untouched
    check_closed_forms(final)


def test_journal_keeps_rows_completed_after_the_last_parquet_write(tmp_path):
    """A kill between a run's completion and the next Parquet write loses nothing."""
    store = ResultsStore(tmp_path, columns=["x", "m"])
    store.add({"run_id": "a", "status": "ok", "error": None, "wall_s": 0.1, "x": 1.0, "m": 2.0})
    store._last_write_s = math.inf  # no further Parquet writes: as if killed right after
    store.add({"run_id": "b", "status": "ok", "error": None, "wall_s": 0.1, "x": 2.0, "m": 3.0})
    assert pd.read_parquet(tmp_path / "results.parquet").run_id.tolist() == ["a"]
    with (tmp_path / "results.journal.jsonl").open("a") as handle:
        handle.write('{"run_id": "c", "sta')  # a line cut mid-write: not a completed run
    frame = read_results(tmp_path)
    assert sorted(frame.run_id) == ["a", "b"] and frame.run_id.is_unique


def test_same_results_with_1_and_2_workers(tmp_path):
    path = write_sweep(tmp_path, GRID_AXES)
    spec = load_sweep(path)
    one = run_sweep(spec, tmp_path / "w1", workers=1, progress=False)
    two = run_sweep(spec, tmp_path / "w2", workers=2, progress=False)
    assert one.n_done == two.n_done == 6
    a, b = read_results(tmp_path / "w1"), read_results(tmp_path / "w2")
    cols = ["run_id", "status", "frequency.h_s", "frequency.r_pu", "f_nadir_hz",
            "rocof_initial_hz_per_s", "delta_f_steady_hz"]  # fmt: skip
    pd.testing.assert_frame_equal(a[cols], b[cols])


def test_dask_local_cluster_through_the_scheduler_option(tmp_path, capsys):
    from distributed import LocalCluster

    path = write_sweep(tmp_path, GRID_AXES)
    run_sweep(load_sweep(path), tmp_path / "local", workers=1, progress=False)
    with LocalCluster(
        n_workers=1,
        threads_per_worker=2,
        processes=False,
        host="127.0.0.1",
        protocol="tcp",
        dashboard_address=None,
    ) as cluster:
        address = cluster.scheduler_address
        assert address.startswith("tcp://127.0.0.1:")
        code = main(["sweep", str(path), "--out", str(tmp_path / "dask"), "--scheduler", address,
                     "--json"])  # fmt: skip
    assert code == 0
    assert json.loads(capsys.readouterr().out)["n_done"] == 6
    local, dask = read_results(tmp_path / "local"), read_results(tmp_path / "dask")
    cols = ["run_id", "f_nadir_hz", "rocof_initial_hz_per_s", "delta_f_steady_hz"]
    pd.testing.assert_frame_equal(local[cols], dask[cols])


def test_an_output_directory_of_another_sweep_is_refused(tmp_path):
    path = write_sweep(tmp_path, GRID_AXES)
    run_sweep(load_sweep(path), tmp_path / "out", workers=1, progress=False)
    other = tmp_path / "other.toml"
    other.write_text(path.read_text().replace(METRICS, '["f_nadir_hz"]'))
    with pytest.raises(ScenarioError, match="holds the results of a different sweep"):
        run_sweep(load_sweep(other), tmp_path / "out", workers=1, progress=False)


# -------------------------------------------------------------------------------- analysis
def test_pareto_mask_on_a_known_set():
    values = np.array([[1.0, 5.0], [2.0, 2.0], [3.0, 1.0], [3.0, 3.0], [np.nan, 0.0], [1.0, 6.0]])
    assert pareto_mask(values, [False, False]).tolist() == [True, True, True, False, False, False]
    # maximize the first, minimize the second
    assert pareto_mask(values, [True, False]).tolist() == [False, False, True, False, False, False]


def test_sweep_report_writes_sensitivity_heatmap_pareto_and_best(tmp_path, capsys):
    path = write_sweep(tmp_path, GRID_AXES)
    out = tmp_path / "out"
    run_sweep(load_sweep(path), out, workers=1, progress=False)
    code = main(
        [
            "sweep-report", str(out), "--pareto", "f_nadir_hz:max,frequency.h_s:min",
            "--objective", "frequency.h_s:min", "--constraint", "f_nadir_hz>=59.8",
            "--constraint", "delta_f_steady_hz > -0.13", "--json",
        ]
    )  # fmt: skip
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    for name in ("report.html", "heatmap.png", "pareto.png", "sensitivity_f_nadir_hz.png"):
        assert (out / name).is_file(), name
    frame = read_results(out)
    feasible = frame[(frame.f_nadir_hz >= 59.8) & (frame.delta_f_steady_hz > -0.13)]
    best_h = feasible["frequency.h_s"].min()
    assert doc["best"]["params"]["frequency.h_s"] == best_h
    assert doc["best"]["metrics"]["f_nadir_hz"] >= 59.8
    # the Pareto front of (max nadir, min inertia) holds the best nadir of each inertia
    front = frame[frame.run_id.isin(doc["pareto_run_ids"])]
    assert front.f_nadir_hz.max() == frame.f_nadir_hz.max()
    html = (out / "report.html").read_text()
    assert "Pareto front" in html and "Best settings" in html and "Heat map" in html


def test_sweep_report_lists_bad_options(tmp_path, capsys):
    path = write_sweep(tmp_path, GRID_AXES)
    out = tmp_path / "out"
    run_sweep(load_sweep(path), out, workers=1, progress=False)
    code = main(["sweep-report", str(out), "--objective", "nope:max", "--constraint", "f >> 1"])
    assert code == 2
    err = capsys.readouterr().err
    assert "objective: 'nope' is not a column of the results" in err
    assert "constraint 'f >> 1': expected 'metric OP value'" in err


@pytest.mark.parametrize(
    ("name", "n_runs"),
    [
        ("sweep_inertia_droop.toml", 35),
        ("sweep_fleet_droop_lhs.toml", 48),
        ("sweep_black_start.toml", 12),
    ],
)
def test_example_sweep_files_are_valid(name, n_runs):
    from pathlib import Path

    import studies.scenarios

    path = Path(studies.scenarios.__file__).parent / name
    spec = load_sweep(path)
    assert len(spec.runs) == n_runs and len({r.run_id for r in spec.runs}) == n_runs


def test_sigkill_of_the_sweep_process_loses_no_completed_run(tmp_path):
    """A real ``kill -9`` of the CLI mid-sweep; the resume keeps every completed row."""
    import signal
    import subprocess
    import sys
    import time

    (tmp_path / "base.toml").write_text(BASE.replace("duration_s = 2.0", "duration_s = 20.0"))
    path = tmp_path / "sweep.toml"
    path.write_text(
        'study = "contingency"\nbase = "base.toml"\nmetrics = ["f_nadir_hz"]\n'
        '[[axis]]\nkey = "frequency.h_s"\nlinspace = { start = 2.0, stop = 8.0, num = 80 }\n'
    )
    out = tmp_path / "out"
    command = [sys.executable, "-m", "cosim.cli", "sweep", str(path), "--out", str(out),
               "--workers", "1", "--no-progress"]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    before = None
    try:
        for _ in range(6000):  # poll (at most ~10 min on a very busy machine), never sleep blind
            if process.poll() is not None:
                break
            if (out / "results.journal.jsonl").is_file() or (out / "results.parquet").is_file():
                rows = read_results(out)
                if len(rows) >= 2:
                    process.send_signal(signal.SIGKILL)
                    process.wait()
                    before = read_results(out)
                    break
            time.sleep(0.1)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert before is not None and 2 <= len(before) < 80, "the sweep was not killed mid-way"
    summary = run_sweep(load_sweep(path), out, workers=1, progress=False)
    assert summary.n_skipped == len(before) and summary.n_done == 80 - len(before)
    final = read_results(out)
    assert len(final) == 80 and final.run_id.is_unique and (final.status == "ok").all()
    kept = final.set_index("run_id").loc[before.run_id]
    assert np.array_equal(kept.wall_s.to_numpy(), before.wall_s.to_numpy())


def test_hosting_capacity_sweeps_are_validated_up_front(tmp_path):
    """Typos and out-of-range criteria are caught before any (long) hosting-capacity run."""
    (tmp_path / "base.toml").write_text('feeder = "case33bw"\nmode = "export"\nbuses = [5]\n')
    path = tmp_path / "sweep.toml"
    path.write_text(
        'study = "hosting_capacity"\nbase = "base.toml"\nmetrics = ["hc_min_mw"]\n'
        '[[axis]]\nkey = "load_scal"\nvalues = [0.5]\n'
        '[[axis]]\nkey = "mode"\nvalues = ["export", "sideways"]\n'
        '[[axis]]\nkey = "v_max_pu"\nvalues = [1.05, 0.5]\n'
    )
    with pytest.raises(ScenarioError) as info:
        load_sweep(path)
    text = str(info.value)
    assert "and 3 more run(s): scenario.load_scal: unknown key" in text
    assert "scenario.mode: 'sideways' is not one of 'export', 'import'" in text
    assert "criteria.v_min_pu: 0.95 must be below v_max_pu (0.5)" in text


def test_run_study_sweep_through_mosaik(tmp_path):
    """``study = "run"``: the co-simulation's own metrics, one results file per run.

    Reference: the same swing model stepped directly (grids.frequency.simulate): the nadir of a
    500 MW loss does not depend on when the event happens on the 20 ms grid.
    """
    from grids.frequency import SwingParameters, simulate

    base = BASE.replace("duration_s = 2.0", "duration_s = 3.0")
    base = base.replace("step_s = 0.05", "step_s = 0.02")
    (tmp_path / "base.toml").write_text(base)
    path = tmp_path / "sweep.toml"
    path.write_text(
        'study = "run"\nbase = "base.toml"\nmetrics = ["f_nadir_hz", "violations"]\n'
        '[[axis]]\nkey = "frequency.h_s"\nvalues = [3.0, 5.0]\n'
    )
    run_sweep(load_sweep(path), tmp_path / "out", workers=1, progress=False)
    frame = read_results(tmp_path / "out")
    assert (frame.status == "ok").all(), frame.error.tolist()
    for _, row in frame.iterrows():
        params = SwingParameters(h_s=row["frequency.h_s"])
        ref = simulate(params, dt_s=0.02, p_imbalance_mw=np.full(125, -500.0))["f_hz"].min()
        assert row.f_nadir_hz == pytest.approx(ref, abs=1e-6)
        assert any((tmp_path / "out" / "runs" / row.run_id).iterdir())  # its results file
        assert json.loads(row.violations) == []  # a 0.18 Hz dip breaks no named limit


def test_sweep_report_bins_latin_hypercube_axes_for_the_heat_map(tmp_path, capsys):
    path = write_sweep(
        tmp_path,
        """
[[axis]]
key = "frequency.h_s"
lhs = { low = 2.0, high = 8.0, count = 16 }
[[axis]]
key = "frequency.r_pu"
lhs = { low = 0.03, high = 0.08, count = 16 }
""",
        extra="seed = 5",
        metrics='["f_nadir_hz"]',
    )
    out = tmp_path / "out"
    run_sweep(load_sweep(path), out, workers=1, progress=False)
    assert main(["sweep-report", str(out), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["n_ok"] == 16
    heat = pd.read_csv(out / "heatmap.csv")
    rows = heat["frequency.r_pu"].to_numpy()
    assert len(rows) == 8 and np.all(np.diff(rows) > 0)  # 8 bins, numerically ordered
    assert rows.min() > 0.03 and rows.max() < 0.08
    # default objective: the first metric minimized
    frame = read_results(out)
    assert doc["best"]["metrics"]["f_nadir_hz"] == frame.f_nadir_hz.min()


def test_duplicate_and_wrongly_typed_values_are_reported(tmp_path):
    path = write_sweep(
        tmp_path,
        '[[axis]]\nkey = "frequency.h_s"\nvalues = [3, 3.0, "fast"]\n',
    )
    with pytest.raises(ScenarioError) as info:
        load_sweep(path)
    text = str(info.value)
    assert "frequency.h_s=3.0) appears twice (the same parameters as frequency.h_s=3)" in text
    assert "run " in text and "frequency.h_s='fast'" in text


def _metrics_of(frame: pd.DataFrame, run_id: str, names: list[str]) -> list:
    row = frame.set_index("run_id").loc[run_id]
    return [row[name] for name in names]


def test_hosting_capacity_runs_sharing_a_feeder_match_fresh_per_run_studies(tmp_path):
    """Runs of one worker share the prepared feeder (once per load scale), with the same results.

    Reference: the study's own scenario entry point, ``hosting_capacity_metrics``, called per
    run on a fresh feeder (no shared objects). Tolerance: none (exactly equal values).
    """
    from studies.hosting_capacity import hosting_capacity_metrics

    (tmp_path / "base.toml").write_text('feeder = "case33bw"\nbuses = [5, 17]\n')
    path = tmp_path / "sweep.toml"
    path.write_text(
        'study = "hosting_capacity"\nbase = "base.toml"\n'
        'metrics = ["hc_min_mw", "hc_max_mw", "results.1.hosting_capacity_mw", "feeder"]\n'
        '[[axis]]\nkey = "load_scale"\nvalues = [0.5, 1]\n'
        '[[axis]]\nkey = "v_max_pu"\nvalues = [1.04, 1.05]\n'
    )
    spec = load_sweep(path)
    sweep_module.clear_shared_cache()
    run_sweep(spec, tmp_path / "out", workers=1, progress=False)
    # one prepared feeder per load scale, reused by the other criteria value
    assert sweep_module._SHARED_CACHE_STATS == {"hits": 2, "misses": 2}
    frame = read_results(tmp_path / "out")
    assert (frame.status == "ok").all(), frame.error.tolist()
    names = list(spec.metrics)
    for run in spec.runs:
        sweep_module.clear_shared_cache()
        doc = hosting_capacity_metrics(json.loads(json.dumps(run.scenario)))
        fresh = [doc["hc_min_mw"], doc["hc_max_mw"], doc["results"][1]["hosting_capacity_mw"]]
        assert _metrics_of(frame, run.run_id, names) == [*fresh, "case33bw"]
    # the criteria matter (the cache did not freeze the first run's): 1.04 pu binds lower
    by = frame.set_index(["load_scale", "v_max_pu"]).hc_max_mw
    assert by[(0.5, 1.04)] < by[(0.5, 1.05)]
    # 2 forked workers (first run warmed up in the parent, cache inherited): the same table
    run_sweep(spec, tmp_path / "out2", workers=2, progress=False)
    frame2 = read_results(tmp_path / "out2").set_index("run_id").loc[frame.run_id]
    assert frame2[names].equals(frame.set_index("run_id")[names])


def test_hosting_capacity_cache_falls_back_for_unusual_feeder_arguments(tmp_path):
    """A load scale the feeder cannot take is reported exactly as by the study itself."""
    from studies.hosting_capacity import hosting_capacity_metrics

    scenario = {"feeder": "case33bw", "load_scale": -1.0, "buses": [5]}
    runner = sweep_module.STUDY_RUNNERS[sweep_module.StudyKind.HOSTING_CAPACITY]
    with pytest.raises(ScenarioError) as cached:
        runner(dict(scenario), tmp_path)
    with pytest.raises(ScenarioError) as fresh:
        hosting_capacity_metrics(dict(scenario))
    assert str(cached.value) == str(fresh.value)
    assert "scenario.load_scale: -1 is out of range" in str(cached.value)


CONTINGENCY_FLEET_BASE = """
[simulation]
duration_s = 3.0
step_s = 0.05
seed = 3

[frequency]
s_base_mw = 2000.0
h_s = 4.0

[[events]]
t_s = 1.0
kind = "generation_loss"
p_mw = 220.0

[feeder]
name = "case33bw"

[fleet]
n_vehicles = 20
preset = "home"

[fleet.control]
functions = ["volt_var", "freq_watt"]

[contingency]
feeder_replicas = 75.0
dispatch_frac = 0.5
feeder_step_s = 1.0
time_of_day_h = 21.0
"""


def test_contingency_runs_in_shared_workers_match_fresh_per_run_studies(tmp_path):
    """Feeder contingency runs in 2 long-lived workers (3 runs: one worker runs two, on the
    feeder it already loaded) equal fresh per-run studies exactly.

    Reference: ``run_contingency_study`` called per run in this process. Tolerance: none.
    """
    import studies.contingency as contingency
    from studies.study_inputs import clear_feeder_cache

    (tmp_path / "base.toml").write_text(CONTINGENCY_FLEET_BASE)
    path = tmp_path / "sweep.toml"
    path.write_text(
        'study = "contingency"\nbase = "base.toml"\n'
        'metrics = ["f_nadir_hz", "fleet_energy_kwh", "n_vehicles_tripped"]\n'
        '[[axis]]\nkey = "fleet.control.droop.k"\nvalues = [0.02, 0.035, 0.05]\n'
    )
    spec = load_sweep(path)
    run_sweep(spec, tmp_path / "out", workers=2, progress=False)
    frame = read_results(tmp_path / "out")
    assert (frame.status == "ok").all(), frame.error.tolist()
    names = list(spec.metrics)
    for run in spec.runs:
        clear_feeder_cache()
        doc = contingency.run_contingency_study(json.loads(json.dumps(run.scenario)))
        assert _metrics_of(frame, run.run_id, names) == [float(doc[n]) for n in names]
    # each run got its own droop gain (a shared object did not freeze the first run's)
    assert frame.f_nadir_hz.nunique() == 3


def test_first_run_warms_up_in_the_parent_only_where_it_pays():
    """Hosting capacity always (per-process JIT start-up); others from 8 runs per worker,
    co-simulation runs never."""
    kind = sweep_module.StudyKind
    assert sweep_module._warm_up_in_parent(kind.HOSTING_CAPACITY, 3, 2)
    assert not sweep_module._warm_up_in_parent(kind.CONTINGENCY, 15, 2)
    assert sweep_module._warm_up_in_parent(kind.CONTINGENCY, 16, 2)
    assert not sweep_module._warm_up_in_parent(kind.HOSTING_CAPACITY, 1, 2)
    assert not sweep_module._warm_up_in_parent(kind.RUN, 100, 2)  # never a mosaik world
