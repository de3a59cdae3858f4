"""A failed run never loses results (issue 12 §1): an earlier complete results file is left as
it was, a failure mid-run keeps every step before it (in the partial file), and a write error
(a full disk) ends in one SimulationError that says so, with a partial file readable up to
the last flush or removed, never a crash of the interpreter."""

from __future__ import annotations

import errno
import subprocess
import sys
import warnings

import numpy as np
import pytest

from cosim import simulators
from cosim.results import ResultsWriter, partial_path, read_results
from cosim.scenario import load_scenario
from cosim.world import run_scenario
from grids.errors import ConvergenceError, SimulationError

STEP_S = 900.0
DAY = {
    "simulation": {"duration_s": 6 * 3600.0, "step_s": STEP_S, "seed": 1},
    "feeder": {"name": "case33bw"},
    "output": {"flush_every": 40},
}


def _feeder_times(path) -> np.ndarray:
    frame, _meta = read_results(path)
    names = frame["signal"].astype(str)
    return np.unique(frame["t_s"].to_numpy()[names.str.endswith(".vm_min_pu").to_numpy()])


@pytest.fixture
def earlier_run(tmp_path):
    """A complete run in ``tmp_path``: its results file and its bytes."""
    result = run_scenario(load_scenario(DAY), tmp_path, progress=False)
    return result.results_path, result.results_path.read_bytes()


@pytest.mark.parametrize("fmt", ["hdf5", "parquet"])
def test_a_run_failing_mid_run_keeps_the_earlier_file_and_every_step_before(
    tmp_path, monkeypatch, fmt
):
    """A power flow that stops converging at 3 h: the earlier complete results file is byte
    for byte what it was, and the partial file holds every feeder step before 3 h."""
    data = {**DAY, "output": {"flush_every": 40, "format": fmt}}
    first = run_scenario(load_scenario(data), tmp_path, progress=False)
    before = first.results_path.read_bytes()
    fail_at_s = 3 * 3600.0
    solve = simulators.FeederSim._solve

    def failing_solve(self, p_mw, q_mvar, time):
        if time * self.time_resolution >= fail_at_s:
            raise ConvergenceError("the AC power flow did not converge (injected)")
        return solve(self, p_mw, q_mvar, time)

    monkeypatch.setattr(simulators.FeederSim, "_solve", failing_solve)
    with pytest.raises(ConvergenceError, match="injected"):
        run_scenario(load_scenario(data), tmp_path, progress=False)
    assert first.results_path.read_bytes() == before
    partial = partial_path(first.results_path)
    expected = np.arange(0.0, fail_at_s, STEP_S)
    np.testing.assert_array_equal(_feeder_times(partial), expected)


def test_a_failed_run_into_an_empty_folder_leaves_its_partial_file_readable(tmp_path, monkeypatch):
    solve = simulators.FeederSim._solve

    def failing_solve(self, p_mw, q_mvar, time):
        if time * self.time_resolution >= 2 * 3600.0:
            raise ConvergenceError("no convergence (injected)")
        return solve(self, p_mw, q_mvar, time)

    monkeypatch.setattr(simulators.FeederSim, "_solve", failing_solve)
    with pytest.raises(ConvergenceError):
        run_scenario(load_scenario(DAY), tmp_path, progress=False)
    results = tmp_path / "results.h5"
    assert not results.exists()
    with pytest.warns(UserWarning, match="the run did not finish"):
        frame, _ = read_results(results)
    assert _feeder_times(partial_path(results)).tolist() == [k * STEP_S for k in range(8)]
    assert len(frame) > 0


def test_a_full_disk_during_a_run_is_one_message_and_keeps_the_earlier_file(
    tmp_path, monkeypatch, earlier_run
):
    """ENOSPC injected into the HDF5 writes after the first flush: SimulationError naming the
    full disk; the earlier file intact; the partial file reads back exactly the flushed rows
    (or is gone)."""
    path, before = earlier_run
    from cosim import results

    write = results._GuardedFile.write
    calls = {"n": 0}

    def full_after_a_while(self, data):
        calls["n"] += 1
        if calls["n"] > 12:
            self.error = self.error or OSError(errno.ENOSPC, "No space left on device")
            return len(memoryview(data).cast("B"))
        return write(self, data)

    monkeypatch.setattr(results._GuardedFile, "write", full_after_a_while)
    with pytest.raises(SimulationError, match="the disk is full"):
        run_scenario(load_scenario(DAY), tmp_path, progress=False)
    assert path.read_bytes() == before
    partial = partial_path(path)
    if partial.exists():
        frame, _ = read_results(partial)
        assert len(frame) > 0


def test_writer_reports_enospc_and_keeps_the_flushed_rows(tmp_path, monkeypatch):
    """The writer alone: a flush that fails with ENOSPC raises SimulationError ('disk is
    full'); the rows of the earlier flushes are readable, later appends do nothing."""
    path = tmp_path / "r.h5"
    writer = ResultsWriter(path, {"seed": 1}, fmt="hdf5", flush_every=10)
    for k in range(20):
        writer.append(float(k), "a.x", float(k))
    assert writer.rows_written == 20

    def enospc(self, t, sid, v):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ResultsWriter, "_write_hdf5", enospc)
    with pytest.raises(SimulationError, match="the disk is full") as info:
        for k in range(20, 30):
            writer.append(float(k), "a.x", float(k))
    assert str(partial_path(path)) in str(info.value)
    writer.close()  # closed already: no second error, nothing committed
    assert not path.exists()
    frame, _ = read_results(partial_path(path))
    assert frame["value"].tolist() == [float(k) for k in range(20)]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_FSIZE is POSIX/Linux")
@pytest.mark.parametrize("fmt", ["hdf5", "parquet"])
def test_a_real_write_error_ends_cleanly_not_in_a_segfault(tmp_path, fmt):
    """A real failing write (the process's file-size limit, EFBIG, as a stand-in for a full
    disk, which a test cannot create): HDF5 used to crash the interpreter (exit 139). Now the
    process ends with the SimulationError, and the partial file reads back its flushed rows."""
    target = tmp_path / ("r.h5" if fmt == "hdf5" else "r.parquet")
    code = (
        "import resource, signal, sys\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (3_000_000, 3_000_000))\n"
        "from cosim.results import ResultsWriter\n"
        "from grids.errors import SimulationError\n"
        f"w = ResultsWriter({str(target)!r}, {{'seed': 1}}, fmt={fmt!r}, flush_every=1000)\n"
        "try:\n"
        "    for k in range(1_000_000):\n"
        "        w.append(float(k), f's{k % 7}.x', float(k))\n"
        "    w.close()\n"
        "except SimulationError as error:\n"
        "    print(error)\n"
        "    sys.exit(2)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 2, done.stderr[-2000:]
    assert "cannot write results" in done.stdout
    assert "Traceback" not in done.stderr
    partial = partial_path(target)
    if partial.exists() or fmt == "parquet":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # parquet: "the run did not finish" (its parts)
            frame, _ = read_results(target) if fmt == "parquet" else read_results(partial)
        values = frame["value"].to_numpy()
        # whole flushes only, in order
        assert len(values) % 1000 == 0 and len(values) > 0
        np.testing.assert_array_equal(values, np.arange(len(values), dtype=float))
