"""Bad inputs and faults at the command line: one message, exit 2, never a traceback.

Every case runs ``cosim.cli.main`` in-process (``capsys``) from a temporary working directory and
checks the contract of the CLI's error boundary (issue 12):

* exit status 2;
* stderr holds ONE ``error:`` message (the message may list several problems on indented lines)
  that names the problem (a substring given per case);
* no ``Traceback`` anywhere;
* for the data-loss classes: results already on disk are byte-for-byte intact.

A few cases run as subprocesses because only a real process shows them: a closed pipe on
stdout, a full device on stdout, the asyncio shutdown noise after a failed run.

Files a case needs are written by the case itself (binary files, hostile JSON, sparse files that
are large on paper but take no disk space).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cosim.cli import main

SCENARIOS = Path(__file__).resolve().parents[2] / "studies" / "scenarios"
BINARY = bytes(range(256)) * 4  # not UTF-8 (0x80 is a continuation byte at offset 128)
LATIN1_TOML = "# caf\xe9 au lait\n[simulation]\nduration_s = 900\n".encode("latin-1")


@pytest.fixture
def cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _files(root: Path) -> None:
    """The files the cases refer to, all in the temporary working directory."""
    (root / "binary.toml").write_bytes(BINARY)
    (root / "latin1.toml").write_bytes(LATIN1_TOML)
    (root / "binary.csv").write_bytes(BINARY)
    (root / "binary.json").write_bytes(BINARY)
    (root / "notnet.json").write_text(json.dumps({"not": "a net"}))
    (root / "list.json").write_text("[1, 2, 3]")
    (root / "broken.json").write_text('{"_class": "pandapowerNet", ')
    (root / "adir.json").mkdir()
    (root / "adir").mkdir(exist_ok=True)
    (root / "afile").write_text("not a directory\n")
    (root / "existing.png").mkdir()
    # large on paper, no disk space: the size check must refuse it before reading
    with open(root / "huge.csv", "wb") as handle:
        handle.truncate(300 * 2**20)
    with open(root / "huge.json", "wb") as handle:
        handle.truncate(100 * 2**20)
    (root / "profile_missing_column.csv").write_text("time_min,load_pu\n0,1\n60,1\n")
    (root / "bad_transformer.toml").write_text("colour = 1\n")
    (root / "thermal.csv").write_text("time_min,load_pu,ambient_c\n0,1,20\n60,1.2,20\n")
    scenario = (SCENARIOS / "feeder_only.toml").read_text()
    shutil.copy(SCENARIOS / "demo_load.csv", root / "demo_load.csv")
    (root / "feeder_only.toml").write_text(scenario)
    (root / "zero_profile.toml").write_text(
        scenario.replace('load_profile = "demo_load.csv"', 'load_profile = "/dev/zero"')
    )
    (root / "nan_profile.csv").write_text(
        "time,load_pu,ambient_c\n2024-07-01T12:00:00+02:00,nan,20\n2024-07-01T12:15:00+02:00,1,20\n"
    )
    sweep = (SCENARIOS / "sweep_inertia_droop.toml").read_text()
    shutil.copy(SCENARIOS / "contingency_bulk_only.toml", root / "contingency_bulk_only.toml")
    (root / "sweep.toml").write_text(sweep)
    (root / "sweep_misspelt.toml").write_text(sweep.replace('"t_nadir_s"', '"t_nadir_sec"'))


C = str(SCENARIOS / "contingency_reference.toml")
B = str(SCENARIOS / "black_start_hospital.toml")
D = str(SCENARIOS / "demo.toml")

# (id, argv, words the one message must contain)
CASES = [
    # -- undecodable input: binary or non-UTF-8 text
    ("run-binary-toml", ["run", "binary.toml"], "not UTF-8"),
    ("run-latin1-toml", ["run", "latin1.toml"], "not UTF-8"),
    ("sweep-binary-toml", ["sweep", "binary.toml", "--out", "s"], "not UTF-8"),
    (
        "inverter-curve-binary-settings",
        ["inverter-curve", "--function", "volt_var", "--settings", "binary.toml"],
        "not UTF-8",
    ),
    ("thermal-binary-profile", ["thermal", "--profile", "binary.csv"], "not UTF-8"),
    (
        "thermal-binary-transformer",
        ["thermal", "--profile", "thermal.csv", "--transformer", "binary.toml"],
        "not UTF-8",
    ),
    ("resilience-binary-curve", ["resilience", "--curve", "binary.csv"], "not UTF-8"),
    ("contingency-binary-scenario", ["contingency", "--scenario", "binary.toml"], "not UTF-8"),
    ("black-start-binary-scenario", ["black-start", "--scenario", "binary.toml"], "not UTF-8"),
    ("powerflow-binary-feeder", ["powerflow", "--feeder", "binary.json"], "not UTF-8"),
    ("hosting-binary-feeder", ["hosting-capacity", "--feeder", "binary.json"], "not UTF-8"),
    # -- a JSON file that is not a pandapower net
    ("powerflow-json-not-a-net", ["powerflow", "--feeder", "notnet.json"], "not a pandapower net"),
    (
        "hosting-json-not-a-net",
        ["hosting-capacity", "--feeder", "notnet.json"],
        "not a pandapower net",
    ),
    ("powerflow-json-list", ["powerflow", "--feeder", "list.json"], "not a pandapower net"),
    ("powerflow-json-truncated", ["powerflow", "--feeder", "broken.json"], "not valid JSON"),
    ("powerflow-feeder-directory", ["powerflow", "--feeder", "adir.json"], "is a directory"),
    ("powerflow-feeder-empty-name", ["powerflow", "--feeder", ""], "feeder ''"),
    ("powerflow-feeder-unknown", ["powerflow", "--feeder", "case99"], "neither an embedded"),
    ("powerflow-feeder-pickle", ["powerflow", "--feeder", "net.p"], "pickle"),
    # -- output problems, checked before any work
    ("run-out-is-file", ["run", "feeder_only.toml", "--out", "afile"], "not a directory"),
    ("demo-out-is-file", ["demo", "--out", "afile"], "not a directory"),
    ("hosting-out-is-file", ["hosting-capacity", "--out", "afile"], "not a directory"),
    ("contingency-out-is-file", ["contingency", "--scenario", C, "--out", "afile"], "directory"),
    ("black-start-out-is-file", ["black-start", "--scenario", B, "--out", "afile"], "directory"),
    ("sweep-out-is-file", ["sweep", "sweep.toml", "--out", "afile"], "not a directory"),
    ("sweep-report-out-is-file", ["sweep-report", "adir", "--out", "afile"], "not a directory"),
    (
        "resilience-out-is-file",
        ["resilience", "--curve", "profile_missing_column.csv", "--out", "afile"],
        "not a directory",
    ),
    ("run-out-dev-full", ["run", "feeder_only.toml", "--out", "/dev/full"], "device"),
    ("demo-out-dev-full", ["demo", "--out", "/dev/full"], "device"),
    ("hosting-out-dev-full", ["hosting-capacity", "--out", "/dev/full"], "device"),
    ("contingency-out-dev-full", ["contingency", "--scenario", C, "--out", "/dev/full"], "device"),
    ("run-out-below-a-file", ["run", "feeder_only.toml", "--out", "afile/sub"], "afile"),
    ("demo-out-below-a-file", ["demo", "--out", "afile/sub/deeper"], "not a directory"),
    (
        "plot-dev-full",
        ["inverter-curve", "--function", "volt_var", "--plot", "/dev/full"],
        "device",
    ),
    (
        "plot-unsupported-extension",
        ["inverter-curve", "--function", "volt_var", "--plot", "curve.xyz"],
        "unsupported file type",
    ),
    (
        "plot-no-extension",
        ["inverter-curve", "--function", "volt_var", "--plot", "curve"],
        "no extension",
    ),
    (
        "plot-is-directory",
        ["inverter-curve", "--function", "volt_var", "--plot", "existing.png"],
        "is a directory",
    ),
    (
        "plot-below-a-file",
        ["inverter-curve", "--function", "volt_var", "--plot", "afile/c.png"],
        "not a directory",
    ),
    # -- resources bounded up front, the limit stated
    ("samples-huge", ["hosting-capacity", "--samples", "1000000000"], "limit of 100000"),
    ("samples-zero", ["hosting-capacity", "--samples", "0"], "positive"),
    ("thermal-profile-dev-zero", ["thermal", "--profile", "/dev/zero"], "regular file"),
    ("resilience-curve-dev-zero", ["resilience", "--curve", "/dev/zero"], "device"),
    ("scenario-profile-dev-zero", ["run", "zero_profile.toml", "--out", "o"], "/dev/zero"),
    ("thermal-profile-huge", ["thermal", "--profile", "huge.csv"], "limit of 256 MiB"),
    ("feeder-json-huge", ["powerflow", "--feeder", "huge.json"], "limit of 64 MiB"),
    (
        "fleet-too-large",
        ["run", D, "--out", "o", "--set", "fleet.n_vehicles=5000000"],
        "limit of 2000000 vehicles",
    ),
    ("demo-fleet-too-large", ["demo", "--vehicles", "5000000", "--out", "o"], "GB"),
    # -- Dask scheduler addresses and TLS
    (
        "scheduler-not-a-url",
        ["sweep", "sweep.toml", "--out", "s", "--scheduler", "not a url"],
        "tcp://",
    ),
    (
        "scheduler-http",
        ["sweep", "sweep.toml", "--out", "s", "--scheduler", "http://127.0.0.1:8786"],
        "http:// scheme",
    ),
    (
        "scheduler-no-port",
        ["sweep", "sweep.toml", "--out", "s", "--scheduler", "tcp://127.0.0.1"],
        "tls://HOST:PORT",
    ),
    (
        "scheduler-port-out-of-range",
        ["sweep", "sweep.toml", "--out", "s", "--scheduler", "tcp://127.0.0.1:99999"],
        "1..65535",
    ),
    (
        "tls-options-with-tcp",
        [
            "sweep",
            "sweep.toml",
            "--out",
            "s",
            "--scheduler",
            "tcp://10.0.0.1:8786",
            "--tls-ca",
            "afile",
            "--tls-cert",
            "afile",
        ],
        "need a tls:// scheduler",
    ),
    (
        "tls-without-certificates",
        ["sweep", "sweep.toml", "--out", "s", "--scheduler", "tls://10.0.0.1:8786"],
        "--tls-ca",
    ),
    (
        "tls-missing-ca-file",
        [
            "sweep",
            "sweep.toml",
            "--out",
            "s",
            "--scheduler",
            "tls://10.0.0.1:8786",
            "--tls-ca",
            "nosuch.pem",
            "--tls-cert",
            "afile",
        ],
        "nosuch.pem",
    ),
    ("sweep-workers-zero", ["sweep", "sweep.toml", "--out", "s", "--workers", "0"], "--workers"),
    # -- other bad arguments and files
    ("run-missing-scenario", ["run", "nosuch.toml"], "no such file"),
    ("run-scenario-is-directory", ["run", "adir"], "is a directory"),
    ("run-set-without-equals", ["run", "feeder_only.toml", "--set", "frequency.h_s"], "KEY=VALUE"),
    ("inverter-at-nan", ["inverter-curve", "--function", "volt_var", "--at", "nan"], "--at"),
    (
        "inverter-p-avail-out-of-range",
        ["inverter-curve", "--function", "volt_var", "--p-avail-pu", "5"],
        "--p-avail-pu",
    ),
    (
        "inverter-category-mismatch",
        ["inverter-curve", "--function", "volt_var", "--category", "I"],
        "abnormal-performance",
    ),
    ("hosting-bus-unknown", ["hosting-capacity", "--bus", "9999"], "9999"),
    ("powerflow-load-scale-nan", ["powerflow", "--load-scale", "nan"], "load_scale"),
    ("powerflow-slack-voltage", ["powerflow", "--ext-grid-vm-pu", "5"], "ext_grid_vm_pu"),
    ("thermal-missing-column", ["thermal", "--profile", "profile_missing_column.csv"], "ambient_c"),
    (
        "thermal-unknown-transformer-key",
        ["thermal", "--profile", "thermal.csv", "--transformer", "bad_transformer.toml"],
        "colour",
    ),
    ("sweep-report-not-a-sweep", ["sweep-report", "adir"], "sweep"),
    (
        "contingency-unknown-case",
        ["contingency", "--scenario", C, "--compare", "bogus"],
        "bogus",
    ),
    # -- cases whose fixes live in the scenario and study layers
    (
        "fleet-buses-out-of-range",
        ["run", D, "--out", "o", "--set", "fleet.buses=[99]"],
        "fleet.buses",
    ),
    (
        "profile-with-nan",
        ["run", "feeder_only.toml", "--out", "o", "--set", 'feeder.load_profile="nan_profile.csv"'],
        "nan",
    ),
    (
        "event-size-1e308",
        ["run", D, "--out", "o", "--set", "events.0.p_mw=1e308"],
        "events[0].p_mw",
    ),
    ("sweep-misspelt-metric", ["sweep", "sweep_misspelt.toml", "--out", "s"], "t_nadir_sec"),
    (
        "nominal-frequency-mismatch",
        ["run", D, "--out", "o", "--set", "frequency.f0_hz=50", "fleet.f_nominal_hz=60"],
        "fleet.f_nominal_hz",
    ),
]


@pytest.mark.parametrize(("argv", "words"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_message(cwd, capsys, argv, words):
    _files(cwd)
    status = main(argv)
    captured = capsys.readouterr()
    err = captured.err
    assert status == 2, (status, err)
    assert "Traceback" not in err + captured.out
    assert err.count("error:") == 1, err
    error_text = err[err.index("error:") :]
    assert words in error_text, err
    # one message: the continuation lines are the message's own indented list of problems
    following = [line for line in error_text.splitlines()[1:] if line.strip()]
    assert all(line.startswith("  ") for line in following), err


def test_at_least_sixty_cases():
    assert len(CASES) >= 60
    assert len({c[0] for c in CASES}) == len(CASES)


# ---------------------------------------------------------------------------------------------
# hostile feeder JSON: a payload that would create a marker file if any code of it ran


def _payload(marker: Path, *, module: str, nested: str = "") -> str:
    """A pandapower-style JSON whose object, if instantiated, runs a shell command."""
    evil = {
        "_module": module,
        "_class": "system",
        "_object": f"touch {marker}",
    }
    if not nested:
        return json.dumps(
            {"_module": "pandapower.auxiliary", "_class": "pandapowerNet", "_object": {"bus": evil}}
        )
    inner = json.dumps({"bus": evil})
    return json.dumps(
        {"_module": "pandapower.auxiliary", "_class": "pandapowerNet", "_object": nested + inner}
    )


@pytest.mark.parametrize(
    ("module", "nested"),
    [
        ("os", ""),
        ("os", " "),  # the nested net string with leading whitespace
        ("os", "\n\t "),
        ("numpyfoo", ""),  # a bare prefix of an allowed package
        ("pandasx.evil", ""),
        ("builtins_evil", " "),
        ("subprocess", "   "),
    ],
)
def test_hostile_feeder_json_never_runs(cwd, capsys, module, nested):
    marker = cwd / "marker"
    path = cwd / "evil.json"
    path.write_text(_payload(marker, module=module, nested=nested))
    status = main(["powerflow", "--feeder", str(path)])
    err = capsys.readouterr().err
    assert status == 2
    assert "untrusted modules" in err and module in err
    assert "Traceback" not in err
    assert not marker.exists()


def test_hostile_non_string_module_refused(cwd, capsys):
    path = cwd / "evil.json"
    path.write_text(
        json.dumps(
            {
                "_module": "pandapower.auxiliary",
                "_class": "pandapowerNet",
                "_object": {"bus": {"_module": ["os"], "_class": "system"}},
            }
        )
    )
    assert main(["powerflow", "--feeder", str(path)]) == 2
    assert "untrusted modules" in capsys.readouterr().err


def test_allow_list_matches_dotted_boundaries():
    from grids.feeders import _is_safe_module

    assert _is_safe_module("numpy") and _is_safe_module("numpy.ma")
    assert _is_safe_module("pandapower.auxiliary")
    assert not _is_safe_module("numpyfoo") and not _is_safe_module("pandapowerx.y")
    assert not _is_safe_module("os") and not _is_safe_module("")


def test_deeply_nested_json_is_one_message(cwd, capsys):
    path = cwd / "deep.json"
    path.write_text("[" * 200_000 + "]" * 200_000)
    assert main(["powerflow", "--feeder", str(path)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.startswith("error:")


# ---------------------------------------------------------------------------------------------
# data loss: an earlier result stays intact when a later command is refused


def test_refused_run_keeps_earlier_results(cwd, capsys):
    _files(cwd)
    assert main(["run", "feeder_only.toml", "--out", "out", "--no-progress"]) == 0
    results = sorted((cwd / "out").iterdir())
    before = {p.name: p.read_bytes() for p in results}
    assert before
    for argv in (
        ["run", "feeder_only.toml", "--out", "out", "--set", "feeder.load_scale=-1"],
        ["run", "binary.toml", "--out", "out"],
        ["run", "zero_profile.toml", "--out", "out"],
        ["run", D, "--out", "out", "--set", "fleet.buses=[99]"],
    ):
        assert main(argv) == 2
    capsys.readouterr()
    after = {p.name: p.read_bytes() for p in sorted((cwd / "out").iterdir())}
    assert after == before


def test_refused_plot_does_not_touch_an_existing_file(cwd, capsys):
    target = cwd / "curve.png"
    target.write_bytes(b"earlier plot")
    assert (
        main(["inverter-curve", "--function", "volt_var", "--at", "7", "--plot", "curve.png"]) == 2
    )
    assert target.read_bytes() == b"earlier plot"


# ---------------------------------------------------------------------------------------------
# the boundary itself: OS errors, memory, decoding, unexpected exceptions


def _raising(error):
    def run(args):
        raise error

    return run


@pytest.mark.parametrize(
    ("error", "words"),
    [
        (OSError(28, "No space left on device", "out/results.h5"), "disk full"),
        (OSError(28, "No space left on device"), "disk full"),
        (PermissionError(13, "Permission denied", "/root/x"), "permission denied"),
        (FileExistsError(17, "File exists", "out"), "already exists"),
        (NotADirectoryError(20, "Not a directory", "a/b"), "not a directory"),
        (IsADirectoryError(21, "Is a directory", "out"), "is a directory"),
        (OSError(30, "Read-only file system", "/ro/x"), "read-only"),
        (MemoryError(), "out of memory"),
        (UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"), "not UTF-8"),
    ],
)
def test_boundary_turns_errors_into_one_line(monkeypatch, capsys, error, words):
    from cosim.commands import feeders

    monkeypatch.setattr(feeders, "run", _raising(error))
    assert main(["feeders"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error:") and words in err
    assert "Traceback" not in err


def test_hdf5_write_error_is_disk_full_message(cwd, capsys, monkeypatch):
    """An injected ENOSPC while the results are written: one message, exit 2."""
    from cosim.commands import run as run_command

    def failing_run_scenario(*args, **kwargs):
        raise OSError(28, "No space left on device", "out/results.h5")

    _files(cwd)
    monkeypatch.setattr("cosim.world.run_scenario", failing_run_scenario)
    assert run_command.NAME == "run"
    assert main(["run", "feeder_only.toml", "--out", "out", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "disk full" in err and "out/results.h5" in err and "Traceback" not in err


def test_unexpected_exception_is_one_line_with_debug_hint(monkeypatch, capsys):
    from cosim.commands import feeders

    monkeypatch.setattr(feeders, "run", _raising(ZeroDivisionError("boom")))
    assert main(["feeders"]) == 1
    err = capsys.readouterr().err
    assert "--debug" in err and "Traceback" not in err and err.count("\n") == 1


def test_debug_keeps_the_traceback(monkeypatch):
    from cosim.commands import feeders

    monkeypatch.setattr(feeders, "run", _raising(MemoryError()))
    with pytest.raises(MemoryError):
        main(["--debug", "feeders"])


def test_ctrl_c_is_one_line_and_130(monkeypatch, capsys):
    from cosim.commands import feeders

    monkeypatch.setattr(feeders, "run", _raising(KeyboardInterrupt()))
    assert main(["feeders"]) == 130
    err = capsys.readouterr().err
    assert "interrupted" in err and "Traceback" not in err


def test_error_after_progress_bar_starts_on_its_own_line(monkeypatch, capsys):
    from tqdm import tqdm

    from cosim.commands import feeders

    def run(args):
        bar = tqdm(total=10, file=sys.stderr, leave=True)
        bar.update(3)
        raise OSError(28, "No space left on device", "out/results.h5")

    monkeypatch.setattr(feeders, "run", run)
    assert main(["feeders"]) == 2
    err = capsys.readouterr().err
    line = [x for x in err.splitlines() if "error:" in x]
    assert line and line[0].lstrip("\r").startswith("error:")


# ---------------------------------------------------------------------------------------------
# real processes: closed pipe, full device, the asyncio noise after a failed run


def _cli(*argv, **kwargs):
    return subprocess.run(
        [sys.executable, "-m", "cosim.cli", *argv], capture_output=True, text=True, **kwargs
    )


def test_json_into_closed_pipe_is_quiet():
    """``v2g-cosim ... --json | head``: the reader is gone before the JSON is written."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # every write now fails with EPIPE
    try:
        writer = subprocess.run(
            [
                sys.executable,
                "-m",
                "cosim.cli",
                "inverter-curve",
                "--function",
                "volt_var",
                "--json",
            ],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
        )
    finally:
        os.close(write_end)
    assert writer.returncode == 141, writer.stderr
    assert writer.stderr == ""


def test_json_onto_full_device_says_disk_full():
    with open("/dev/full", "w") as full:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "cosim.cli",
                "inverter-curve",
                "--function",
                "volt_var",
                "--json",
            ],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
        )
    assert proc.returncode == 2
    assert "disk full" in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1


def test_failed_run_has_no_asyncio_noise(tmp_path):
    shutil.copy(SCENARIOS / "demo_load.csv", tmp_path / "demo_load.csv")
    text = (SCENARIOS / "feeder_only.toml").read_text().replace("lindistflow", "ac")
    (tmp_path / "ac.toml").write_text(text + "\n")
    proc = _cli(
        "run",
        "ac.toml",
        "--out",
        "o",
        "--set",
        "feeder.load_scale=9.5",
        "--no-progress",
        cwd=tmp_path,
    )
    assert proc.returncode == 2, proc.stderr
    assert "did not converge" in proc.stderr
    assert "Task was destroyed" not in proc.stderr and "Traceback" not in proc.stderr


def test_run_failing_mid_way_keeps_earlier_results(cwd, capsys):
    """A power flow that does not converge into a folder holding good results: kept as they were."""
    _files(cwd)
    text = (cwd / "feeder_only.toml").read_text().replace('"lindistflow"', '"ac"')
    (cwd / "ac.toml").write_text(text)
    assert main(["run", "ac.toml", "--out", "out", "--no-progress"]) == 0
    good = (cwd / "out" / "results.parquet").read_bytes()
    status = main(
        ["run", "ac.toml", "--out", "out", "--set", "feeder.load_scale=9.5", "--no-progress"]
    )
    err = capsys.readouterr().err
    assert status == 2 and "did not converge" in err and "Traceback" not in err
    assert (cwd / "out" / "results.parquet").read_bytes() == good


def test_ctrl_c_with_a_remote_simulator_is_one_line_and_keeps_results(tmp_path):
    """Ctrl-C in a terminal reaches the whole process group: the CLI and its remote simulator."""
    import signal
    import time

    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cosim.cli",
            "run",
            str(SCENARIOS / "demo.toml"),
            "--out",
            "r",
            "--remote",
            "fleet",
            "--no-progress",
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        # a terminal's Ctrl-C: SIGINT handled (test runners may start us with it ignored)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    out = tmp_path / "r"
    for _ in range(1200):  # until the first results are on disk (or the run ended)
        if proc.poll() is not None or (out.exists() and any(out.iterdir())):
            break
        time.sleep(0.05)
    sent = proc.poll() is None
    if sent:
        os.killpg(proc.pid, signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert "Traceback" not in stderr and "Task was destroyed" not in stderr
    if sent:
        assert proc.returncode == 130, stderr
        assert stderr.strip().splitlines()[-1] == "interrupted: results written so far are kept"
    assert any(out.iterdir())  # what was written is kept


# ---------------------------------------------------------------------------------------------
# violations: every study command's JSON names the limits it broke (or could not check)


@pytest.mark.parametrize(
    "argv",
    [
        ["powerflow", "--method", "lindistflow", "--json"],
        ["thermal", "--profile", "thermal.csv", "--json"],
        ["resilience", "--curve", "curve.csv", "--json"],
        ["hosting-capacity", "--bus", "17", "--method", "screen", "--json"],
        ["contingency", "--scenario", str(SCENARIOS / "contingency_bulk_only.toml"), "--json"],
        ["run", "feeder_only.toml", "--out", "out", "--no-progress", "--json"],
    ],
    ids=lambda argv: argv[0],
)
def test_every_study_json_has_violations(cwd, capsys, argv):
    _files(cwd)
    (cwd / "curve.csv").write_text("t_h,performance\n0,100\n1,40\n2,100\n")
    assert main(argv) == 0
    doc = json.loads(capsys.readouterr().out)
    assert isinstance(doc["violations"], list)
    for item in doc["violations"]:
        assert {"limit", "element", "quantity", "worst_value", "limit_value"} <= set(item)


def test_run_prints_broken_limits_before_the_metrics(cwd, capsys):
    """feeder_only: case33bw from noon, whose far end is below ANSI C84.1 range A (0.95 pu)."""
    _files(cwd)
    assert main(["run", "feeder_only.toml", "--out", "out", "--no-progress", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc) == {"results", "wall_time_s", "metrics", "violations", "limits_not_checked"}
    assert main(["run", "feeder_only.toml", "--out", "out2", "--no-progress"]) == 0
    text = capsys.readouterr().out
    lines = [v["limit"] for v in doc["violations"]] + doc["limits_not_checked"]
    assert lines  # the case breaks range A or says what it could not check
    head = text.split("metric")[0]
    for item in lines:
        assert item in head


def test_run_validates_study_sections_with_the_study_that_owns_them(cwd, capsys):
    """`run` imports the study modules before validating: [contingency] is checked by its
    study's own validator (an unknown key is named), not merely accepted."""
    _files(cwd)
    scenario = (cwd / "feeder_only.toml").read_text() + "\n[contingency]\nbogus = 1\n"
    (cwd / "with_study.toml").write_text(scenario)
    assert main(["run", "with_study.toml", "--out", "out", "--no-progress"]) == 2
    assert "contingency.bogus: unknown key" in capsys.readouterr().err
    from cosim.scenario import study_sections

    assert {"contingency", "black_start"} <= set(study_sections())


def test_violation_lines_from_objects_and_json_dicts(capsys):
    """A study's JSON form of a violation prints the same line as the object; nothing to say
    prints nothing (no empty heading)."""
    from cosim.clitools import print_violations, violation_lines
    from grids.limits import Limit, Violation

    violation = Violation(
        limit=Limit.LINE_LOADING.value,
        element="line 4",
        quantity="loading_percent",
        worst_value=123.0,
        limit_value=100.0,
    )
    note = "every line of x: no rating given, line loading not checked"
    assert violation_lines([violation.to_dict()], [note]) == [violation.describe(), note]
    assert violation_lines([violation]) == ["line loading: line 4 at 123 % (limit 100 %)"]
    print_violations([], [])
    assert capsys.readouterr().out == ""


def test_sweep_and_sweep_report_json_count_runs_per_broken_limit(cwd, capsys):
    """A sweep whose metrics include violations: per named limit, the runs that broke it (the
    sweep's own per-run lists in its results table are the reference)."""
    from studies.sweep_store import read_results

    _files(cwd)
    scenario = (cwd / "feeder_only.toml").read_text().replace("21600", "3600")
    (cwd / "base.toml").write_text(scenario)
    (cwd / "s.toml").write_text(
        'study = "run"\nbase = "base.toml"\nmetrics = ["min_vm_pu", "violations"]\n'
        '[[axis]]\nkey = "feeder.load_scale"\nvalues = [0.2, 1.0]\n'
    )
    assert (
        main(["sweep", "s.toml", "--out", "sw", "--workers", "1", "--no-progress", "--json"]) == 0
    )
    doc = json.loads(capsys.readouterr().out)
    frame = read_results(cwd / "sw")
    expected: dict[str, int] = {}
    for text in frame["violations"]:
        for limit in {item["limit"] for item in json.loads(text)}:
            expected[limit] = expected.get(limit, 0) + 1
    assert expected  # the full-load run is below ANSI C84.1 range A
    assert {v["limit"]: v["n_runs"] for v in doc["violations"]} == expected
    assert main(["sweep-report", "sw", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert "violations" in report
