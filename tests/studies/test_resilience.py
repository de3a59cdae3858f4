"""Resilience-trapezoid metrics (studies.resilience) and the ``resilience`` CLI.

Reference: Panteli et al., "Metrics and quantification of operational and infrastructure
resilience in power systems", IEEE Trans. Power Systems 32(6), 2017. The expected values are
hand-computed on analytic piecewise-linear curves (areas of triangles and rectangles), for which
the metrics must be exact (rtol 1e-12).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from cosim.cli import main
from grids.errors import InputDataError
from studies.resilience import read_curve, resilience_metrics

# P0 = 100 MW; falls linearly 1 h -> 3 h to 40 MW; degraded until 7 h; back to 100 MW at 10 h.
CORNERS_T = [0.0, 1.0, 3.0, 7.0, 10.0, 12.0]
CORNERS_P = [100.0, 100.0, 40.0, 40.0, 100.0, 100.0]


def trapezoid_curve(dt_h=None):
    if dt_h is None:
        return np.array(CORNERS_T), np.array(CORNERS_P)
    # a regular grid plus the corners: the same piecewise-linear curve, sampled more densely
    t = np.union1d(np.arange(0.0, 12.0 + dt_h / 2, dt_h), CORNERS_T)
    return t, np.interp(t, CORNERS_T, CORNERS_P)


@pytest.mark.parametrize("dt_h", [None, 0.25, 0.1, 0.3])
def test_trapezoid_metrics_are_exact_on_a_piecewise_linear_curve(dt_h):
    t, p = trapezoid_curve(dt_h)
    m = resilience_metrics(t, p)
    exact = dict(
        phi_per_h=-30.0,  # -60 MW over 2 h
        lambda_=60.0,
        e_h=4.0,
        pi_per_h=20.0,  # 60 MW over 3 h
        area=0.5 * 60 * 2 + 60 * 4 + 0.5 * 60 * 3,  # 390 MWh
        t_recovery_h=9.0,  # from 1 h to 10 h
        m_d=390.0,  # acceptable = pre-event level: same as the area
        t_disruption_h=1.0,
        t_degraded_h=3.0,
        t_recovery_start_h=7.0,
        t_restored_h=10.0,
    )
    for key, value in exact.items():
        assert getattr(m, key) == pytest.approx(value, rel=1e-12, abs=1e-12), key
    assert m.disrupted and m.recovered and m.restored


@pytest.mark.parametrize("dt_h", [None, 0.25, 0.3])
def test_acceptable_level_sets_recovery_time_and_deprived_service(dt_h):
    """Acceptable 70 MW: crossed down at 2 h and up at 8.5 h (between samples when dt=0.3 or
    with corner samples only)."""
    t, p = trapezoid_curve(dt_h)
    m = resilience_metrics(t, p, acceptable=70.0)
    assert m.t_recovery_h == pytest.approx(8.5 - 1.0, rel=1e-12)
    # 30 MW shortfall: triangle 2..3 h, rectangle 3..7 h, triangle 7..8.5 h
    assert m.m_d == pytest.approx(0.5 * 30 * 1 + 30 * 4 + 0.5 * 30 * 1.5, rel=1e-12)
    assert m.area == pytest.approx(390.0, rel=1e-12)  # the area stays relative to P0
    assert m.acceptable_level == 70.0


def test_curve_that_never_recovers_is_flagged():
    t = np.array([0.0, 1.0, 3.0, 7.0, 9.0])
    p = np.array([100.0, 100.0, 40.0, 40.0, 80.0])
    m = resilience_metrics(t, p)
    assert not m.recovered and not m.restored
    assert m.t_recovery_h is None and m.pi_per_h is None and m.t_restored_h is None
    # lower bounds integrated to the end of the curve: 60 + 240 + (60 + 20)/2 * 2
    assert m.area == pytest.approx(60 + 240 + 80, rel=1e-12)
    assert m.to_dict()["t_recovery_h"] is None
    # with a lower acceptable level the same curve does recover
    m70 = resilience_metrics(t, p, acceptable=70.0)
    assert m70.recovered and m70.t_recovery_h == pytest.approx(7.0 + 1.5 - 1.0, rel=1e-12)


def test_curve_ending_at_the_minimum_has_a_censored_degraded_duration():
    m = resilience_metrics([0.0, 1.0, 2.0, 5.0], [10.0, 10.0, 4.0, 4.0])
    assert m.e_h == pytest.approx(3.0) and m.t_recovery_start_h == 5.0
    assert not m.recovered


def test_undisrupted_curve_has_zero_metrics():
    m = resilience_metrics([0.0, 1.0, 2.0], [5.0, 5.0, 6.0])
    assert not m.disrupted and m.area == 0.0 and m.lambda_ == 0.0 and m.t_recovery_h == 0.0


def test_only_the_first_event_is_analysed_and_overshoot_counts_as_restored():
    t = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]
    p = [50.0, 50.0, 30.0, 30.0, 55.0, 50.0, 10.0, 50.0]
    m = resilience_metrics(t, p)
    assert m.degraded_level == 30.0  # the later, deeper dip is a second event
    assert m.t_restored_h == pytest.approx(3.0 + 20.0 / 25.0)
    assert m.pi_per_h == pytest.approx(20.0 / 0.8)


def test_bad_arrays_are_rejected_with_rows():
    with pytest.raises(InputDataError, match="empty"):
        resilience_metrics([], [])
    with pytest.raises(InputDataError, match=r"row 3: t_h = 1 is not after the previous 2"):
        resilience_metrics([0.0, 2.0, 1.0], [1.0, 1.0, 1.0])
    with pytest.raises(InputDataError, match=r"row 2: performance is nan"):
        resilience_metrics([0.0, 1.0, 2.0], [1.0, float("nan"), 1.0])
    with pytest.raises(InputDataError, match="3 times but 2 performance values"):
        resilience_metrics([0.0, 1.0, 2.0], [1.0, 1.0])


def _write(tmp_path, text, name="curve.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("t_h,performance\n0,1\n2,1\n1,1\n", "bad.csv: row 3: t_h = 1 is not after the previous 2"),
        ("t_h,performance\n0,1\n1,NaN\n", "bad.csv: row 2: performance is NaN"),
        ("t_h,performance\n0,1\n1,\n", "bad.csv: row 2: performance is empty"),
        ("t_h,performance\n0,1\nx,1\n", "bad.csv: row 2: t_h 'x' is not a number"),
        ("", "bad.csv: the file is empty"),
        ("t_h,performance\n", "bad.csv: the curve is empty"),
        ("time,performance\n0,1\n1,1\n", "bad.csv: missing column(s) t_h (found: time, perfor"),
        ("t_h,performance\n0,1\n", "bad.csv: only 1 sample"),
    ],
)
def test_bad_csv_files_name_file_and_row(tmp_path, text, message):
    path = _write(tmp_path, text, "bad.csv")
    with pytest.raises(InputDataError) as info:
        read_curve(path)
    assert message in str(info.value)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(InputDataError, match="no such curve file"):
        read_curve(tmp_path / "nope.csv")


def test_cli_json_has_the_issue_keys(tmp_path, capsys):
    t, p = trapezoid_curve(0.5)
    lines = ["t_h,performance"] + [f"{a},{b}" for a, b in zip(t, p, strict=True)]
    path = _write(tmp_path, "\n".join(lines) + "\n")
    assert main(["resilience", "--curve", str(path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    expected = {
        "phi_per_h": -30.0,
        "lambda": 60.0,
        "e_h": 4.0,
        "pi_per_h": 20.0,
        "area": 390.0,
        "t_recovery_h": 9.0,
        "m_d": 390.0,
    }
    for key, value in expected.items():
        assert data[key] == pytest.approx(value, rel=1e-12), key
    assert data["recovered"] is True


def test_cli_table_report_and_never_recovered_note(tmp_path, capsys):
    path = _write(tmp_path, "t_h,performance\n0,10\n1,10\n2,4\n3,6\n")
    out_dir = tmp_path / "rep"
    assert main(["resilience", "--curve", str(path), "--unit", "MW", "--out", str(out_dir)]) == 0
    text = capsys.readouterr().out
    assert "degradation speed Φ [MW/h]" in text and "never recovered" in text
    assert "never recovers" in text
    assert (out_dir / "report.html").is_file() and (out_dir / "resilience.png").is_file()
    assert (out_dir / "resilience.csv").is_file()


def test_cli_bad_curve_exits_2_with_message(tmp_path, capsys):
    path = _write(tmp_path, "t_h,performance\n0,1\n1,nan\n")
    assert main(["resilience", "--curve", str(path)]) == 2
    assert "curve.csv: row 2: performance is NaN" in capsys.readouterr().err


def test_tolerance_makes_noisy_measured_curves_usable():
    """Measurement noise (±0.01 MW) around the levels: corners found with tolerance = 0.05."""
    t, p = trapezoid_curve(0.25)
    noise = 0.01 * np.sin(np.arange(t.size) * 1.7)
    noisy = p + noise
    strict = resilience_metrics(t, noisy)
    assert strict.t_disruption_h < 1.0  # a noise wiggle is taken for the disruption
    m = resilience_metrics(t, noisy, tolerance=0.05)
    assert m.t_disruption_h == pytest.approx(1.0)
    assert m.t_degraded_h == pytest.approx(3.0) and m.t_recovery_start_h == pytest.approx(7.0)
    assert m.lambda_ == pytest.approx(60.0, abs=0.02)
    assert m.area == pytest.approx(390.0, rel=1e-3)
