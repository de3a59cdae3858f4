"""CLI framework, error hierarchy and feeder loading/validation."""

from __future__ import annotations

import json
from pathlib import Path

import pandapower as pp
import pytest

from cosim.cli import main
from grids.errors import ConvergenceError, FeederError, ScenarioError, V2GCosimError
from grids.feeders import feeder_names, is_radial, load_feeder, validate_feeder


def test_error_hierarchy_lists_every_problem():
    error = ScenarioError("bad scenario", problems=["a.b: 1 is above 0", "c: missing"])
    assert isinstance(error, V2GCosimError)
    assert "a.b: 1 is above 0" in str(error) and "c: missing" in str(error)
    conv = ConvergenceError("no", index=3, worst_bus=17)
    assert conv.index == 3 and conv.worst_bus == 17


@pytest.mark.parametrize("name", ["case33bw", "cigre_mv", "mv_oberrhein"])
def test_embedded_feeders_load_and_are_radial(name):
    net = load_feeder(name, require_radial=True)
    assert len(net.bus) > 10
    assert is_radial(net)


def test_a_feeder_with_more_than_100_buses_is_embedded():
    assert any(len(load_feeder(n).bus) > 100 for n in feeder_names())


def test_unknown_feeder_names_the_choices():
    with pytest.raises(FeederError, match="case33bw"):
        load_feeder("no_such_feeder")


def test_validation_reports_every_problem_at_once():
    net = load_feeder("case33bw")
    net.ext_grid.drop(net.ext_grid.index, inplace=True)
    net.line.loc[3, "max_i_ka"] = -1.0
    net.line.loc[4, "r_ohm_per_km"] = float("nan")
    with pytest.raises(FeederError) as info:
        validate_feeder(net)
    text = str(info.value)
    assert "no in-service external grid" in text
    assert "line 3: max_i_ka = -1.0" in text
    assert "line 4: r_ohm_per_km = nan" in text
    assert len(info.value.problems) == 3


def test_isolated_bus_and_mesh_are_reported():
    net = load_feeder("case33bw")
    net.line.loc[net.line.index[~net.line.in_service], "in_service"] = True  # close tie lines
    island = pp.create_bus(net, vn_kv=12.66)
    with pytest.raises(FeederError) as info:
        validate_feeder(net, require_radial=True)
    text = str(info.value)
    assert f"isolated): {island}" in text
    assert "not radial" in text


def test_feeder_json_roundtrip_and_pickle_refused(tmp_path):
    net = load_feeder("cigre_mv")
    path = tmp_path / "net.json"
    pp.to_json(net, str(path))
    again = load_feeder(path)
    assert len(again.bus) == len(net.bus)
    with pytest.raises(FeederError, match="pickle"):
        load_feeder(tmp_path / "net.p")


def test_feeder_json_with_foreign_module_refused(tmp_path):
    evil = tmp_path / "evil.json"
    evil.write_text(json.dumps({"_module": "os", "_class": "system", "_object": "{}"}))
    with pytest.raises(FeederError, match="untrusted modules: os"):
        load_feeder(evil)


def test_cli_feeders_json(capsys):
    assert main(["feeders", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    names = {f["name"]: f for f in out["feeders"]}
    assert names["case33bw"]["n_bus"] == 33 and names["case33bw"]["n_line"] == 32
    assert names["mv_oberrhein"]["n_bus"] == 179


def test_cli_prints_error_without_traceback(capsys, tmp_path):
    code = main(["powerflow", "--feeder", str(tmp_path / "missing.json")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error:") and "Traceback" not in err


# ---------------------------------------------------------------------------------------------
# multi-value options: several values after one flag or the flag repeated, the same result

MULTI_VALUE = [
    ("bus", "hosting-capacity --bus 6 29", "hosting-capacity --bus 6 --bus 29", [6, 29]),
    (
        "at",
        "inverter-curve --function volt_var --at 0.9 1.0",
        "inverter-curve --function volt_var --at 0.9 --at 1.0",
        [0.9, 1.0],
    ),
    ("set", "run s.toml --set a=1 b=2", "run s.toml --set a=1 --set b=2", ["a=1", "b=2"]),
    (
        "compare",
        "contingency --scenario s.toml --compare droop vsm",
        "contingency --scenario s.toml --compare droop --compare vsm",
        ["droop", "vsm"],
    ),
    (
        "constraint",
        "sweep-report d --constraint a>1 b<2",
        "sweep-report d --constraint a>1 --constraint b<2",
        ["a>1", "b<2"],
    ),
    (
        "pareto",
        "sweep-report d --pareto a:max b:min",
        "sweep-report d --pareto a:max --pareto b:min",
        ["a:max", "b:min"],
    ),
    (
        "heatmap",
        "sweep-report d --heatmap x y",
        "sweep-report d --heatmap x --heatmap y",
        ["x", "y"],
    ),
]


@pytest.mark.parametrize(
    ("dest", "one_flag", "repeated", "expected"), MULTI_VALUE, ids=[m[0] for m in MULTI_VALUE]
)
def test_multi_value_option_takes_both_forms(dest, one_flag, repeated, expected):
    from cosim.cli import build_parser

    parser = build_parser()
    a = getattr(parser.parse_args(one_flag.split()), dest)
    b = getattr(parser.parse_args(repeated.split()), dest)
    assert a == b == expected


def test_every_multi_value_option_extends():
    """No option keeps only its last occurrence, none refuses several values after one flag."""
    import argparse

    from cosim.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    checked = 0
    for name, command in sub.choices.items():
        for action in command._actions:
            many = action.nargs in ("+", "*") or isinstance(action, argparse._AppendAction)
            if many and action.option_strings:
                assert isinstance(action, argparse._ExtendAction), (name, action.option_strings)
                checked += 1
    assert checked >= 7


def test_comma_forms_are_the_same_values():
    from cosim.commands.sweep_report import _pair

    assert _pair(["a:max,b:min"]) == _pair(["a:max", "b:min"]) == ["a:max", "b:min"]
    assert _pair(None) is None


# ---------------------------------------------------------------------------------------------
# embedded feeders listed without building them


@pytest.mark.parametrize("name", feeder_names())
def test_stored_feeder_counts_match_the_built_net(name):
    from grids.feeders import feeder_info

    assert feeder_info(name) == feeder_info(name, build=True)


def test_feeders_command_does_not_build_nets(capsys, monkeypatch):
    from grids import feeders

    def refuse(*args, **kwargs):
        raise AssertionError("feeders must not build a net")

    monkeypatch.setattr(feeders, "load_feeder", refuse)
    assert main(["feeders", "--json"]) == 0
    names = [f["name"] for f in json.loads(capsys.readouterr().out)["feeders"]]
    assert names == feeder_names()


# ---------------------------------------------------------------------------------------------
# Dask scheduler addresses, the trust warning and TLS


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("tcp://127.0.0.1:8786", ("tcp", "127.0.0.1", 8786)),
        ("tls://scheduler.example.org:8786", ("tls", "scheduler.example.org", 8786)),
        ("tcp://[::1]:8786", ("tcp", "::1", 8786)),
        (" tcp://localhost:1 ", ("tcp", "localhost", 1)),
    ],
)
def test_scheduler_addresses_accepted(address, expected):
    from cosim.commands.sweep import parse_scheduler

    assert parse_scheduler(address) == expected


@pytest.mark.parametrize(
    "address", ["not a url", "http://127.0.0.1:8786", "127.0.0.1:8786", "tcp://host", "tcp://:80"]
)
def test_scheduler_addresses_refused_with_the_accepted_forms(address):
    from cosim.commands.sweep import parse_scheduler

    with pytest.raises(ScenarioError, match="tcp://HOST:PORT or tls://HOST:PORT"):
        parse_scheduler(address)


def test_loopback_detection():
    from cosim.commands.sweep import is_loopback

    assert is_loopback("localhost") and is_loopback("127.0.0.2") and is_loopback("::1")
    assert not is_loopback("10.0.0.5") and not is_loopback("scheduler.example.org")


def test_remote_scheduler_warns_about_pickled_data(capsys, tmp_path):
    status = main(
        [
            "sweep",
            str(tmp_path / "nosuch.toml"),
            "--out",
            str(tmp_path / "s"),
            "--scheduler",
            "tcp://10.0.0.5:8786",
        ]
    )
    err = capsys.readouterr().err
    assert status == 2
    assert "warning:" in err and "pickled" in err and "trust" in err


def test_tls_files_reach_the_dask_configuration(capsys, tmp_path, monkeypatch):
    import dask

    import studies.sweep
    from cosim.commands.sweep import _TLS_KEYS

    seen = {}

    class Summary:
        n_runs = n_skipped = n_done = n_failed = 0
        wall_s = 0.0
        results_path = tmp_path / "s" / "results.parquet"

    def fake_run_sweep(spec, out, **kwargs):
        seen.update({key: dask.config.get(key, None) for key in _TLS_KEYS.values()})
        seen["scheduler"] = kwargs["scheduler"]
        return Summary()

    monkeypatch.setattr(studies.sweep, "run_sweep", fake_run_sweep)
    for name in ("ca.pem", "cert.pem", "key.pem"):
        (tmp_path / name).write_text("-----BEGIN CERTIFICATE-----\n")
    sweep_file = Path(__file__).resolve().parents[2] / "studies/scenarios/sweep_inertia_droop.toml"
    status = main(
        [
            "sweep",
            str(sweep_file),
            "--out",
            str(tmp_path / "s"),
            "--no-progress",
            "--scheduler",
            "tls://127.0.0.1:8786",
            "--tls-ca",
            str(tmp_path / "ca.pem"),
            "--tls-cert",
            str(tmp_path / "cert.pem"),
            "--tls-key",
            str(tmp_path / "key.pem"),
        ]
    )
    assert status == 0, capsys.readouterr().err
    assert seen["scheduler"] == "tls://127.0.0.1:8786"
    assert seen["distributed.comm.tls.ca-file"] == str((tmp_path / "ca.pem").resolve())
    assert seen["distributed.comm.tls.client.cert"] == str((tmp_path / "cert.pem").resolve())
    assert seen["distributed.comm.tls.client.key"] == str((tmp_path / "key.pem").resolve())
    # only for that command
    assert (
        dask.config.get("distributed.comm.tls.client.cert", None)
        != seen["distributed.comm.tls.client.cert"]
    )


# ---------------------------------------------------------------------------------------------
# elapsed time for long commands (stderr only)


def test_heartbeat_reports_elapsed_time_on_its_stream_only(capsys):
    import io

    from cosim.clitools import Heartbeat

    stream = io.StringIO()
    with Heartbeat("study", after_s=0.0, stream=stream):
        print("result on stdout")
    assert "study: done in" in stream.getvalue()
    assert capsys.readouterr().out == "result on stdout\n"


def test_heartbeat_status_line_on_a_terminal_is_cleared():
    import io
    import threading

    from cosim.clitools import Heartbeat

    wrote = threading.Event()

    class Terminal(io.StringIO):
        def isatty(self):
            return True

        def write(self, text):
            wrote.set()
            return super().write(text)

    stream = Terminal()
    with Heartbeat("study", after_s=0.0, stream=stream):
        assert wrote.wait(timeout=30)
    text = stream.getvalue()
    assert "\rstudy: 0 s elapsed" in text and "\r\033[K" in text and "done in" in text


def test_heartbeat_status_line_ends_before_the_command_prints(monkeypatch):
    import io
    import sys
    import threading

    from cosim.clitools import Heartbeat

    wrote = threading.Event()

    class Terminal(io.StringIO):
        def isatty(self):
            return True

        def write(self, text):
            wrote.set()
            return super().write(text)

    terminal = Terminal()
    monkeypatch.setattr(sys, "stdout", terminal)
    with Heartbeat("study", after_s=0.0, stream=terminal):
        assert wrote.wait(timeout=30)
        print("result")
    text = terminal.getvalue()
    # the status line is cleared before the result, and nothing follows the result on its line
    assert "\r\033[Kresult\n" in text
    assert sys.stdout is terminal


def test_shipped_case33bw_equals_pandapowers_case():
    """The embedded case33bw file (current net format, no conversion at load) is pandapower's
    own ``case33bw()``: same tables, values and dtypes (reference: pandapower.networks)."""
    import pandapower.networks as pn
    from pandapower.toolbox import nets_equal

    from grids.feeders import CASE33BW_JSON

    assert CASE33BW_JSON.is_file()
    reference = pn.case33bw()
    shipped = pp.from_json(str(CASE33BW_JSON))
    assert nets_equal(shipped, reference, check_only_results=False)
    net = load_feeder("case33bw")
    pp.runpp(net)
    pp.runpp(reference)
    assert net.res_bus.vm_pu.to_numpy() == pytest.approx(reference.res_bus.vm_pu.to_numpy())


def test_feeder_load_defers_plotting_and_state_estimation_until_used():
    """A fresh process: loading a feeder leaves pandapower's plotting, state estimation and
    matplotlib's pyplot unexecuted; each works as usual on first use."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from grids.feeders import load_feeder\n"
        "load_feeder('case33bw')\n"
        "assert 'scipy.stats' not in sys.modules\n"
        "assert 'simple_plot' not in vars(sys.modules['pandapower.plotting'])\n"
        "import pandapower as pp, pandapower.plotting as plot, pandapower.estimation as est\n"
        "assert callable(plot.simple_plot) and pp.plotting is plot and callable(est.estimate)\n"
        "import matplotlib\n"
        "matplotlib.use('Agg')\n"
        "import matplotlib.pyplot as plt\n"
        "from matplotlib import pyplot\n"
        "assert pyplot is plt and matplotlib.pyplot is plt\n"
        "assert plt.gcf() is plt.figure(1)\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
