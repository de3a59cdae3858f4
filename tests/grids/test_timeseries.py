"""The one time-series reader (grids.timeseries): formats accepted and every problem named.

References: the file contents written here (times and values are read back exactly), for
every format the co-simulation's earlier profile reader accepted (seconds, ISO timestamps,
mosaik-csv), which this reader keeps accepting.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from grids.errors import InputDataError
from grids.timeseries import read_time_series


def _write(tmp_path, text, name="p.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("header", "times", "expected_s"),
    [
        ("t_s", "0,900,1800", [0, 900, 1800]),
        ("time_min", "0,7.5,60.25", [0, 450, 3615]),
        ("t_h", "0,1,2.5", [0, 3600, 9000]),
        ("time_h", "0,1,2.5", [0, 3600, 9000]),
    ],
)
def test_numeric_time_columns(tmp_path, header, times, expected_s):
    rows = "".join(f"{t},{k}\n" for t, k in zip(times.split(","), (0.8, 1.0, 1.2), strict=True))
    series = read_time_series(_write(tmp_path, f"{header},load_pu\n{rows}"))
    assert series.time_column == header and series.start is None
    np.testing.assert_array_equal(series.t_s, expected_s)
    np.testing.assert_array_equal(series.column("load_pu"), [0.8, 1.0, 1.2])


def test_timestamps_naive_are_utc_and_start_shifts_zero(tmp_path):
    path = _write(
        tmp_path,
        "time,load_pu,pv_pu\n2024-06-01 00:00,0.5,0\n2024-06-01T00:15:00+00:00,0.6,0.1\n",
    )
    series = read_time_series(path)
    np.testing.assert_array_equal(series.t_s, [0.0, 900.0])
    assert series.start == pd.Timestamp("2024-06-01", tz="UTC")
    shifted = read_time_series(path, start="2024-05-31T23:00:00Z")
    np.testing.assert_array_equal(shifted.t_s, [3600.0, 4500.0])
    assert shifted.steps(time_resolution_s=900.0).tolist() == [4, 5]
    assert series.columns == ["load_pu", "pv_pu"]


def test_first_column_is_the_time_without_a_named_one(tmp_path):
    series = read_time_series(_write(tmp_path, "date,p_mw\n2024-01-01,1\n2024-01-02,2\n"))
    assert series.time_column == "date"
    np.testing.assert_array_equal(series.t_s, [0.0, 86400.0])


def test_mosaik_csv_bom_and_unit_comments(tmp_path):
    path = tmp_path / "m.csv"
    path.write_bytes(
        "\ufeffLoad\ntime,load_pu # pu\n2024-01-01 00:00:00,1.0\n2024-01-01 00:01:00,2.0\n".encode()
    )
    series = read_time_series(path, required=("load_pu",))
    np.testing.assert_array_equal(series.column("load_pu"), [1.0, 2.0])
    bad = tmp_path / "mb.csv"
    bad.write_text("Load\ntime,load_pu\n2024-01-01 00:00,1\n2024-01-01 00:01,nan\n")
    with pytest.raises(InputDataError, match=r"mb.csv: row 4: load_pu is nan"):
        read_time_series(bad)


def test_parquet_is_read_like_csv(tmp_path):
    path = tmp_path / "p.parquet"
    pd.DataFrame({"t_s": [0, 60, 120], "load_pu": [1.0, 1.1, 0.9]}).to_parquet(path)
    series = read_time_series(path)
    np.testing.assert_array_equal(series.t_s, [0, 60, 120])
    np.testing.assert_array_equal(series.column("load_pu"), [1.0, 1.1, 0.9])
    pd.DataFrame({"t_s": [0, 0], "load_pu": [1.0, np.nan]}).to_parquet(path)
    with pytest.raises(InputDataError) as info:
        read_time_series(path)
    assert "p.parquet: row 3: times are not strictly increasing" in str(info.value)
    assert "p.parquet: row 3: load_pu is nan (not a finite number)" in str(info.value)


def test_every_problem_is_listed_with_file_row_and_column(tmp_path):
    path = _write(
        tmp_path,
        "t_s,load_pu,ambient_c\n0,1,20\n60,nan,20\n60,1,warm\n30,-0.5,\nx,1,inf\n",
    )
    with pytest.raises(InputDataError) as info:
        read_time_series(path, ranges={"load_pu": (0.0, None)})
    problems = info.value.problems
    for expected in (
        "p.csv: row 3: load_pu is nan (not a finite number)",
        "p.csv: row 4: times are not strictly increasing (t_s 60 after 60)",
        "p.csv: row 4: ambient_c is warm (not a finite number)",
        "p.csv: row 5: times are not strictly increasing (t_s 30 after 60)",
        "p.csv: row 5: load_pu is -0.5 (expected >= 0)",
        "p.csv: row 5: ambient_c is empty (not a finite number)",
        "p.csv: row 6: t_s 'x' is not a number",
        "p.csv: row 6: ambient_c is inf (not a finite number)",
    ):
        assert expected in problems
    assert len(problems) == 8


def test_empty_cells_allowed_as_no_value(tmp_path):
    series = read_time_series(_write(tmp_path, "t_s,p_setpoint_mw\n0,1\n60,\n"), allow_empty=True)
    assert np.isnan(series.column("p_setpoint_mw")[1])
    with pytest.raises(InputDataError, match="row 3: p_setpoint_mw is abc"):
        read_time_series(_write(tmp_path, "t_s,p_setpoint_mw\n0,1\n60,abc\n"), allow_empty=True)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("t_s,load_pu\n", "p.csv: no data rows"),
        ("t_s,pv_pu\n0,1\n", "p.csv: missing column(s) load_pu (found: t_s, pv_pu)"),
        ("t_s\n0\n", "expected a time column and at least one value column"),
        ("", "p.csv: the file is empty"),
        ("time,load_pu\nyesterday,1.0\n", "p.csv: row 2: time 'yesterday' is not a timestamp"),
        ("t_s,load_pu,load_pu\n0,1,1\n", "column(s) load_pu appear more than once"),
    ],
)
def test_structural_problems(tmp_path, text, message):
    with pytest.raises(InputDataError) as info:
        read_time_series(_write(tmp_path, text), required=("load_pu",))
    assert message in str(info.value)


def test_resources_and_encoding_are_bounded(tmp_path):
    with pytest.raises(InputDataError, match="larger than the limit of 0 MiB"):
        read_time_series(_write(tmp_path, "t_s,a\n0,1\n" * 100), max_bytes=100)
    latin = tmp_path / "latin.csv"
    latin.write_bytes("t_s,temp_°c\n0,1\n".encode("latin-1"))
    with pytest.raises(InputDataError, match=r"latin.csv: line 1: not UTF-8 text \(byte 0xb0"):
        read_time_series(latin)
    with pytest.raises(InputDataError, match="not a regular file"):
        read_time_series("/dev/zero")
    with pytest.raises(InputDataError, match="not a regular file"):
        read_time_series(tmp_path)
    with pytest.raises(InputDataError, match=r"nowhere\.csv: file does not exist"):
        read_time_series(tmp_path / "nowhere.csv")
    with pytest.raises(InputDataError, match="not a readable Parquet file"):
        read_time_series(_write(tmp_path, "not parquet", name="x.parquet"))
    with pytest.raises(InputDataError, match="start 'soon' is not an ISO timestamp"):
        read_time_series(_write(tmp_path, "time,a\n2024-01-01,1\n"), start="soon")


@pytest.mark.parametrize(
    ("text", "steps", "column", "values"),
    [
        ("t_s,load_pu\n0,1.0\n900,0.8\n", [0, 15], "load_pu", [1.0, 0.8]),
        (
            "time,load_pu,ambient_c\n2024-01-01T00:00:00Z,1.0,20\n2024-01-01T01:00:00Z,0.5,21\n",
            [0, 60],
            "ambient_c",
            [20.0, 21.0],
        ),
        (
            "Load\ntime,load_pu\n2024-01-01 00:00:00,1.0\n2024-01-01 00:15:00,2.0\n",
            [0, 15],
            "load_pu",
            [1.0, 2.0],
        ),
    ],
)
def test_formats_of_the_earlier_cosim_reader_give_their_steps(
    tmp_path, text, steps, column, values
):
    """The formats the co-simulation's own profile reader accepted (seconds, ISO timestamps,
    mosaik-csv), with the steps and values written in the file (1-min resolution)."""
    series = read_time_series(_write(tmp_path, text))
    assert series.steps(time_resolution_s=60.0).tolist() == steps
    assert series.column(column).tolist() == values
