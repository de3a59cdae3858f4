"""``v2g-cosim inverter-curve``: JSON output, category handling, settings files and errors.

Reference values are the IEEE 1547-2018 default curves computed by hand (Table 8 Category B
volt-var: +0.44 pu at 0.92 pu, linear to 0 at 0.98 pu; Table 24 droop: 5 % with 36 mHz
deadband), exact to 1e-9.
"""

from __future__ import annotations

import json
import math

import pytest

from cosim.cli import main


def _json(capsys, argv):
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_volt_var_json_at_points(capsys):
    argv = "inverter-curve --function volt_var --category B --json --at 0.92 0.95 1.0 1.08"
    data = _json(capsys, argv.split())
    assert data["function"] == "volt_var" and data["category"] == "B"
    x = [p["x"] for p in data["points"]]
    q = [p["q_pu"] for p in data["points"]]
    p = [p["p_pu"] for p in data["points"]]
    assert x == [0.92, 0.95, 1.0, 1.08]
    assert q == pytest.approx([0.44, 0.22, 0.0, -0.44], abs=1e-9)
    # reactive priority (the default): P = sqrt(1 - Q^2) at full available power
    assert p == pytest.approx(
        [math.sqrt(1 - 0.44**2), math.sqrt(1 - 0.22**2), 1.0, math.sqrt(1 - 0.44**2)]
    )


def test_freq_watt_sweep_and_categories(capsys):
    data = _json(capsys, ["inverter-curve", "--function", "freq_watt", "--category", "I", "--json"])
    assert data["category"] == "I"
    pts = {round(p["x"], 3): p["p_pu"] for p in data["points"]}
    assert min(pts) == 58.5 and max(pts) == 61.5 and len(pts) == 61
    assert pts[60.0] == pytest.approx(0.5)
    assert pts[59.0] == pytest.approx(0.5 + (59.964 - 59.0) / 3.0)
    assert pts[61.0] == pytest.approx(0.5 - (61.0 - 60.036) / 3.0)
    # default category for freq_watt is III
    data = _json(capsys, ["inverter-curve", "--function", "freq_watt", "--json", "--at", "60"])
    assert data["category"] == "III"


def test_p_avail_and_priority_from_settings_file(capsys, tmp_path):
    path = tmp_path / "scenario.toml"
    path.write_text('[fleet.control]\npriority = "active"\n[fleet.control.volt_var]\nq1_pu = 0.6\n')
    argv = "inverter-curve --function volt_var --p-avail-pu 0.9 --json --at 0.9 --settings"
    data = _json(capsys, [*argv.split(), str(path)])
    (point,) = data["points"]
    # active priority: P kept at 0.9, Q reduced from 0.6 to sqrt(1 - 0.81)
    assert point["p_pu"] == pytest.approx(0.9)
    assert point["q_pu"] == pytest.approx(math.sqrt(1 - 0.81))


def test_settings_file_with_top_level_keys(capsys, tmp_path):
    path = tmp_path / "control.toml"
    path.write_text("[volt_watt]\nv1_pu = 1.05\nv2_pu = 1.07\n")
    argv = "inverter-curve --function volt_watt --json --at 1.06 --settings"
    data = _json(capsys, [*argv.split(), str(path)])
    assert data["points"][0]["p_pu"] == pytest.approx(0.5)


def test_table_output_and_plot(capsys, tmp_path):
    png = tmp_path / "pf.png"
    assert main(["inverter-curve", "--function", "pf", "--plot", str(png)]) == 0
    out = capsys.readouterr().out
    assert "vm_pu" in out and "p_pu" in out and png.stat().st_size > 1000


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--function", "freq_watt", "--category", "A"], "freq_watt uses the abnormal-performance"),
        (["--function", "volt_var", "--category", "II"], "volt_var uses the normal-performance"),
        (["--function", "volt_var", "--at", "0.2"], "--at: 0.2 is outside the allowed range 0.5"),
        (["--function", "freq_watt", "--at", "70"], "--at: 70.0 is outside the allowed range 55"),
        (["--function", "pf", "--p-avail-pu", "1.5"], "--p-avail-pu: 1.5 is outside the allowed"),
    ],
)  # fmt: skip
def test_bad_arguments(capsys, argv, message):
    assert main(["inverter-curve", *argv]) == 2
    assert message in capsys.readouterr().err


def test_bad_settings_files(capsys, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[fleet.control.volt_var]\nv1_pu = 1.2\n[fleet.control.droop]\nk = 0.5\n")
    assert main(["inverter-curve", "--function", "volt_var", "--settings", str(bad)]) == 2
    err = capsys.readouterr().err
    # the key path, the value and the allowed range, whatever the wording around them
    for key, allowed in (
        ("fleet.control.volt_var.v1_pu: 1.2", "0.96"),
        ("fleet.control.droop.k_of: 0.5", "0.05"),
    ):
        line = next(x for x in err.splitlines() if key in x)
        assert allowed in line
    broken = tmp_path / "broken.toml"
    broken.write_text("[fleet.control\n")
    assert main(["inverter-curve", "--function", "volt_var", "--settings", str(broken)]) == 2
    assert "not valid TOML" in capsys.readouterr().err
    missing = tmp_path / "missing.toml"
    assert main(["inverter-curve", "--function", "volt_var", "--settings", str(missing)]) == 2
    assert "settings file not found" in capsys.readouterr().err
    clash = tmp_path / "clash.toml"
    clash.write_text('[fleet.control]\nvoltage_category = "A"\n')
    argv = ["inverter-curve", "--function", "volt_var", "--category", "B", "--settings", str(clash)]
    assert main(argv) == 2
    assert "contradicts --category B" in capsys.readouterr().err


def test_category_taken_from_settings_file_when_not_given(capsys, tmp_path):
    path = tmp_path / "scenario.toml"
    path.write_text('[fleet.control]\nvoltage_category = "A"\nabnormal_category = "I"\n')
    argv = "inverter-curve --function volt_var --json --at 0.9 --settings"
    data = _json(capsys, [*argv.split(), str(path)])
    assert data["category"] == "A"
    assert data["points"][0]["q_pu"] == pytest.approx(0.25)  # Table 8 Category A Q1
    argv = "inverter-curve --function freq_watt --json --at 60 --settings"
    data = _json(capsys, [*argv.split(), str(path)])
    assert data["category"] == "I"


def test_warns_about_ride_through_conflicts(capsys, tmp_path):
    path = tmp_path / "fast_trip.toml"
    path.write_text("[fleet.control.trip]\nuv1_t_s = 2.0\n")
    argv = "inverter-curve --function volt_var --json --at 1.0 --settings"
    assert main([*argv.split(), str(path)]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["points"][0]["q_pu"] == 0.0
    assert "warning: fleet.control.trip.uv1_t_s: 2 s" in captured.err
