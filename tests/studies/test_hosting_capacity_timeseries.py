"""Time-series hosting capacity against brute-force bisection at every step.

The reference (:func:`_bruteforce`) bisects the added size at every step of the window on its
own (plain bisection, 0.1 kW), checks the limits itself (voltage band of every live bus, line
loading) and takes the order statistic; the study (linear screen + AC bisection at the band of
steps + verification) must match it within 1 kW. One answer is also checked against
pandapower ``runpp`` (:func:`studies.hosting_capacity_bruteforce.bruteforce_hosting_capacity`)
at its binding step.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pandas as pd
import pytest

from grids.errors import ScenarioError
from grids.feeder_model import FeederModel
from grids.profiles_year import FeederProfiles
from studies.hosting_capacity_bruteforce import bruteforce_hosting_capacity
from studies.hosting_capacity_engine import HostingCapacityCriteria
from studies.hosting_capacity_timeseries import (
    HostingMode,
    run_time_series_hosting_capacity,
    time_series_hosting_capacity,
)

CRITERIA = HostingCapacityCriteria(v_min_pu=0.90, v_max_pu=1.05)


def _profiles(model: FeederModel, *, steps: int = 48, seed: int = 3) -> FeederProfiles:
    """A day at 30 min: an evening-peak shape with a per-bus jitter (buses peak differently)."""
    time = pd.date_range("2026-01-05", periods=steps, freq="30min", tz="UTC")
    hour = (time.hour + time.minute / 60).to_numpy()
    shape = (
        0.45 + 0.3 * np.exp(-(((hour - 19) / 2.5) ** 2)) + 0.1 * np.exp(-(((hour - 8) / 2) ** 2))
    )
    jitter = 1 + 0.12 * np.random.default_rng(seed).standard_normal((steps, len(model.bus)))
    return FeederProfiles.from_model_base(model, time, shape[:, None] * jitter)


@pytest.fixture(scope="module")
def case33() -> FeederModel:
    return FeederModel.from_name("case33bw")


def _violated(model, res, base, criteria) -> np.ndarray:
    """Own limit check (voltage band at live buses, rated line loading), base-case rule."""
    live = ~model.dead_bus
    vm, vm0 = res.vm_pu[:, live], base.vm_pu[:, live]
    over = (vm > criteria.v_max_pu) & ~((vm0 > criteria.v_max_pu) & (vm <= vm0 + 1e-7))
    under = (vm < criteria.v_min_pu) & ~((vm0 < criteria.v_min_pu) & (vm >= vm0 - 1e-7))
    loading = np.nan_to_num(res.line_loading_percent, nan=0.0)
    line = (loading > criteria.max_line_loading_percent).any(axis=1)
    trafo0 = np.nan_to_num(base.trafo_loading_percent, nan=0.0)
    trafo = np.nan_to_num(res.trafo_loading_percent, nan=0.0)
    limit = criteria.max_trafo_loading_percent
    trafo_bad = (trafo > limit) & ~((trafo0 > limit) & (trafo <= trafo0 + 1e-5))
    return over.any(axis=1) | under.any(axis=1) | line | trafo_bad.any(axis=1) | ~res.converged


def _bruteforce(model, profiles, bus, *, export, criteria, percentile=100.0, cap_mw=20.0):
    """Per-step HC by plain bisection (0.1 kW) at every step, then the order statistic."""
    col = int(np.flatnonzero(model.bus == bus)[0])
    n = len(profiles.time)
    base = model.solve(profiles.p_mw, profiles.q_mvar, warm_start=False)
    lo, hi = np.zeros(n), np.full(n, cap_mw)
    sign = 1.0 if export else -1.0
    while (hi - lo).max() > 1e-4:
        mid = 0.5 * (lo + hi)
        p = profiles.p_mw.copy()
        p[:, col] += sign * mid
        bad = _violated(model, model.solve(p, profiles.q_mvar, warm_start=False), base, criteria)
        hi = np.where(bad, mid, hi)
        lo = np.where(bad, lo, mid)
    need = math.ceil(percentile / 100 * n - 1e-9)
    return float(np.sort(lo)[n - need]), lo


@pytest.mark.parametrize(
    ("mode", "percentile"), [("import", 100.0), ("export", 100.0), ("import", 90.0)]
)
def test_equals_bruteforce_bisection_at_every_step(case33, mode, percentile):
    profiles = _profiles(case33)
    buses = [6, 17, 24, 32]
    result = run_time_series_hosting_capacity(
        case33, profiles, mode=mode, percentile=percentile, buses=buses, criteria=CRITERIA
    )
    for row in result.rows:
        ref, per_step = _bruteforce(
            case33, profiles, row["bus"], export=mode == "export", criteria=CRITERIA,
            percentile=percentile,
        )  # fmt: skip
        assert row["hosting_capacity_mw"] == pytest.approx(ref, abs=1e-3), row
        assert row["binding"] in {"overvoltage", "undervoltage"}
        # the first violation: the earliest step that cannot take a size just above the answer
        first = int(np.flatnonzero(per_step < row["hosting_capacity_mw"] + 1e-3)[0])
        assert row["first_violation_time"] == profiles.time[first].isoformat()
        # the snapshot (one step) cannot be below the answer that holds at every step
        if percentile == 100.0:
            assert row["snapshot_hosting_capacity_mw"] >= row["hosting_capacity_mw"] - 1e-3
            assert row["overstatement_mw"] == pytest.approx(
                row["snapshot_hosting_capacity_mw"] - row["hosting_capacity_mw"]
            )


def test_binding_step_equals_runpp_reference(case33):
    """At its binding step, the answer equals pandapower runpp bisection (independent solver)."""
    profiles = _profiles(case33)
    (row,) = time_series_hosting_capacity(
        case33, profiles, mode=HostingMode.IMPORT, buses=[17], criteria=CRITERIA
    )
    step = int(np.flatnonzero(profiles.time == pd.Timestamp(row["binding_time"]))[0])
    net = copy.deepcopy(case33.net)
    col = {int(b): k for k, b in enumerate(case33.bus)}
    net.load["scaling"] = 1.0
    for idx, bus in zip(net.load.index, net.load.bus, strict=True):
        net.load.loc[idx, "p_mw"] = -profiles.p_mw[step, col[int(bus)]]
        net.load.loc[idx, "q_mvar"] = -profiles.q_mvar[step, col[int(bus)]]
    ref, binding, _ = bruteforce_hosting_capacity(
        net, 17, export=False, criteria=CRITERIA, tolerance_mw=1e-4, cap_mw=10.0
    )
    assert row["hosting_capacity_mw"] == pytest.approx(ref, abs=1e-3)
    assert row["binding"] == binding.value


def test_line_loading_binds_and_matches_bruteforce():
    """A rated feeder: the line limit binds at some buses, and the answer is still exact."""
    model0 = FeederModel.from_name("case33bw")
    net = copy.deepcopy(model0.net)
    net.line["max_i_ka"] = 0.25  # about 5.5 MVA at 12.66 kV: binds before the voltage band
    model = FeederModel.from_net(net)
    profiles = _profiles(model, steps=24)
    criteria = HostingCapacityCriteria(v_min_pu=0.80, v_max_pu=1.10)
    result = run_time_series_hosting_capacity(
        model, profiles, mode="export", buses=[1, 2, 18], criteria=criteria, simultaneous=True
    )
    bindings = set()
    for row in result.rows:
        ref, _ = _bruteforce(model, profiles, row["bus"], export=True, criteria=criteria)
        assert row["hosting_capacity_mw"] == pytest.approx(ref, abs=1e-3), row
        bindings.add(row["binding"])
    assert "line_loading" in bindings
    assert result.rows[0]["element"].startswith("line ")
    spread = result.simultaneous
    assert spread["bus"] == "all"
    assert spread["sum_time_series_mw"] == pytest.approx(
        sum(r["hosting_capacity_mw"] for r in result.rows)
    )
    table = result.comparison_table()
    assert list(table.bus)[-1] == "all (simultaneous)"


def test_base_time_series_and_json(case33):
    profiles = _profiles(case33, steps=12)
    result = run_time_series_hosting_capacity(
        case33, profiles, mode="export", buses=[17], criteria=CRITERIA, snapshot=False
    )
    ref = case33.solve(profiles.p_mw, profiles.q_mvar, warm_start=False)
    np.testing.assert_allclose(result.vm_min_pu, ref.vm_pu.min(axis=1), atol=1e-9)
    doc = result.to_json()
    assert doc["n_steps"] == 12 and doc["mode"] == "export"
    assert {"bus", "hosting_capacity_mw", "binding", "element", "first_violation_time"} <= set(
        doc["results"][0]
    )


@pytest.mark.parametrize(
    ("kwargs", "text"),
    [
        ({"percentile": 0.0}, "percentile"),
        ({"percentile": 101.0}, "percentile"),
        ({"mode": "sideways"}, "mode"),
        ({"tolerance_mw": -1.0}, "tolerance_mw"),
        ({"buses": [999]}, "999"),
        ({"pf": 0.01}, "pf"),
    ],
)
def test_bad_arguments_are_named(case33, kwargs, text):
    profiles = _profiles(case33, steps=4)
    with pytest.raises(ScenarioError, match=text):
        run_time_series_hosting_capacity(case33, profiles, **kwargs)


def test_bad_profiles_are_named(case33):
    other = FeederModel.from_name("cigre_mv")
    profiles = FeederProfiles.from_model_base(
        other, pd.date_range("2026-01-05", periods=4, freq="h"), np.ones(4)
    )
    with pytest.raises(ScenarioError, match=r"profiles\.bus"):
        run_time_series_hosting_capacity(case33, profiles)


def test_parse_duration():
    from studies.hosting_capacity_timeseries import parse_duration_s

    assert parse_duration_s("7d") == 7 * 86400.0
    assert parse_duration_s("12h") == 43200.0
    assert parse_duration_s("90min") == 5400.0
    assert parse_duration_s(None) is None
    for bad in ("7 weeks", "-3d", "0d", "d"):
        with pytest.raises(ScenarioError, match="--duration"):
            parse_duration_s(bad)


def test_equals_bruteforce_on_simbench_profiles():
    """Real profiles (a winter day of 1-LV-rural1--2-sw, transformer-limited): brute force at
    every step, import and export."""
    from studies.hosting_capacity_timeseries import feeder_with_profiles

    model, profiles = feeder_with_profiles(
        "simbench:1-LV-rural1--2-sw", start="2016-01-07", duration_s=86400.0
    )
    for mode in ("import", "export"):
        rows = time_series_hosting_capacity(
            model, profiles, mode=mode, buses=[5, 13], snapshot=False
        )
        bindings = set()
        for row in rows:
            ref, _ = _bruteforce(
                model, profiles, row["bus"], export=mode == "export",
                criteria=HostingCapacityCriteria(), cap_mw=2.0,
            )  # fmt: skip
            assert row["hosting_capacity_mw"] == pytest.approx(ref, abs=1e-3), (mode, row)
            bindings.add(row["binding"])
        assert bindings <= {"transformer_loading", "overvoltage", "undervoltage"}


def test_cli_time_series_on_simbench(capsys):
    """The issue's command on a SimBench grid: JSON rows with the contract's keys."""
    import json

    from cosim.cli import main

    feeder = ["--feeder", "simbench:1-LV-rural1--2-sw", "--duration", "1d"]
    assert main(["hosting-capacity", "--time-series", "--mode", "import", *feeder, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["n_steps"] == 96 and doc["study"] == "time_series"
    row = doc["results"][0]
    assert {"bus", "hosting_capacity_mw", "binding", "element", "first_violation_time"} <= set(row)
    assert row["snapshot_hosting_capacity_mw"] >= row["hosting_capacity_mw"] - 1e-3


def test_reports_write_their_figures(case33, tmp_path):
    from studies.adoption import run_adoption_study
    from studies.timeseries_report import write_adoption_outputs, write_time_series_outputs

    profiles = _profiles(case33, steps=12)
    result = run_time_series_hosting_capacity(
        case33, profiles, buses=[6, 17], criteria=CRITERIA, simultaneous=True
    )
    write_time_series_outputs(case33, result, tmp_path / "ts")
    for name in ("report.html", "ts_heatmap.png", "ts_hc_map.png"):
        assert (tmp_path / "ts" / name).is_file()
    assert "Snapshot against time series" in (tmp_path / "ts" / "report.html").read_text()
    adoption = run_adoption_study(
        case33, profiles, source="behaviour", controls=["unmanaged"], n_seeds=2,
        share_step=0.5, criteria=CRITERIA,
    )  # fmt: skip
    write_adoption_outputs(case33, adoption, tmp_path / "ad")
    for name in ("report.html", "adoption_violation_probability.png", "adoption_base_heatmap.png"):
        assert (tmp_path / "ad" / name).is_file()


def test_cli_time_series_needs_profiles(capsys):
    from cosim.cli import main

    assert main(["hosting-capacity", "--time-series", "--feeder", "case33bw"]) == 2
    assert "simbench" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("mode", "percentile", "noise", "verify_factor"),
    [
        ("import", 100.0, 1.8, 2.0),
        ("export", 90.0, 1.8, 2.0),
        ("import", 100.0, 3.0, math.inf),
        ("export", 90.0, 3.0, math.inf),
    ],
)
def test_answer_does_not_depend_on_the_screen(
    case33, monkeypatch, mode, percentile, noise, verify_factor
):
    """A screen wrong by a random factor per step (it misranks the steps) still gives the
    brute-force answer: the band, the AC check of the other steps and the re-bisection correct
    it, for errors up to ``verify_factor`` (every step with ``inf``)."""
    import studies.hosting_capacity_timeseries as ts

    true_screen = ts._screen
    rng = np.random.default_rng(11)

    def wrong_screen(*args):
        good = true_screen(*args)
        return good * np.exp(rng.uniform(-np.log(noise), np.log(noise), good.shape))

    monkeypatch.setattr(ts, "_screen", wrong_screen)
    profiles = _profiles(case33)
    rows = ts.time_series_hosting_capacity(
        case33, profiles, mode=mode, percentile=percentile, buses=[17, 32], criteria=CRITERIA,
        snapshot=False, verify_factor=verify_factor,
    )  # fmt: skip
    for row in rows:
        ref, _ = _bruteforce(
            case33, profiles, row["bus"], export=mode == "export", criteria=CRITERIA,
            percentile=percentile,
        )  # fmt: skip
        assert row["hosting_capacity_mw"] == pytest.approx(ref, abs=1e-3), row


def test_meshed_feeder_uses_ac_sensitivities_and_stays_exact():
    """case33bw with its tie line 17-32 closed is meshed (no LinDistFlow): the AC-sensitivity
    screen chooses the steps, and the answer still equals brute force."""
    from grids.errors import FeederError
    from studies.timeseries_screen import LinearScreen

    net = copy.deepcopy(FeederModel.from_name("case33bw").net)
    net.line.loc[35, "in_service"] = True  # tie 17-32
    model = FeederModel.from_net(net)
    with pytest.raises(FeederError):
        LinearScreen(model, CRITERIA)
    profiles = _profiles(model, steps=24)
    result = run_time_series_hosting_capacity(
        model, profiles, mode="import", buses=[17, 29], criteria=CRITERIA, snapshot=False
    )
    for row in result.rows:
        ref, _ = _bruteforce(model, profiles, row["bus"], export=False, criteria=CRITERIA)
        assert row["hosting_capacity_mw"] == pytest.approx(ref, abs=1e-3), row
        assert row["screen_mw"] == pytest.approx(ref, rel=0.3)  # a real screen, not a guess


def test_cli_refuses_snapshot_only_options_with_time_series(capsys):
    from cosim.cli import main

    args = ["hosting-capacity", "--time-series", "--feeder", "simbench:1-LV-rural1--2-sw"]
    assert main([*args, "--control", "volt_var_a"]) == 2
    assert "--control" in capsys.readouterr().err
    assert main([*args, "--phase", "b"]) == 2
    assert "--phase" in capsys.readouterr().err
