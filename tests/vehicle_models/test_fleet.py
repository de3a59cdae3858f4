"""Fleet: availability, departure targets, set-points, headroom, tables, invariants."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from grids.errors import InputDataError, ScenarioError
from vehicle_models.battery import TheveninParameters
from vehicle_models.fleet import ChargingPolicy, Fleet, FleetPreset
from vehicle_models.presets import PRESETS
from vehicle_models.settings import InverterSettings

NO_CONTROLS = InverterSettings.defaults(functions=frozenset())
FULL = InverterSettings.defaults(functions=["volt_var", "freq_watt"])


def _table(tmp_path, rows, name="fleet.csv"):
    path = tmp_path / name
    frame = pd.DataFrame(rows)
    if name.endswith(".parquet"):
        frame.to_parquet(path)
    else:
        frame.to_csv(path, index=False)
    return path


def _one_vehicle(tmp_path, **kw):
    row = dict(
        bus=3,
        arrival_s=0.0,
        departure_s=8 * 3600.0,
        e_capacity_kwh=60.0,
        soc_arrival_frac=0.2,
        p_charge_max_kw=7.0,
        soc_target_frac=0.8,
        eta_charge=0.9,
        eta_discharge=0.9,
    )
    row.update(kw)
    return _table(tmp_path, [row])


def _run(fleet, n_steps, dt_s, *, t0_s=0.0, vm=1.0, f_hz=60.0, sp=None):
    results = []
    for k in range(n_steps):
        results.append(
            fleet.step(
                t_s=t0_s + k * dt_s,
                dt_s=dt_s,
                vm_pu=np.full(fleet.buses.size, vm),
                f_hz=f_hz,
                p_setpoint_mw=sp,
            )
        )
    return results


# ----------------------------------------------------------------------------- sampling
def test_sampling_is_reproducible_and_seed_dependent():
    kw = dict(buses=[1, 5, 9], preset=FleetPreset.WORK, settings=NO_CONTROLS)
    a, b, c = (Fleet.sample(500, seed=s, **kw) for s in (7, 7, 8))
    pd.testing.assert_frame_equal(a.vehicle_table(), b.vehicle_table())
    assert not np.array_equal(a.arrival_s, c.arrival_s)
    assert set(a.buses) == {1, 5, 9}


@pytest.mark.parametrize("preset", list(FleetPreset))
def test_preset_samples_follow_their_distributions(preset):
    """Sample statistics vs the preset's parameters (the reference): mean arrival hour within
    0.1 h (std/sqrt(n) ~ 0.02 h), battery shares within 0.02, daily energy within 5 %."""
    p = PRESETS[preset]
    f = Fleet.sample(20_000, buses=[0], preset=preset, seed=1, settings=NO_CONTROLS)
    hours = f.arrival_s / 3600.0
    # circular mean: arrivals are wrapped around midnight
    ang = np.angle(np.exp(2j * np.pi * hours / 24).mean()) * 24 / (2 * np.pi) % 24
    assert ang == pytest.approx(p.arrival_mean_h, abs=0.1)
    caps, counts = np.unique(f.battery.e_capacity_kwh, return_counts=True)
    np.testing.assert_allclose(caps, p.capacity_choices_kwh)
    w = np.asarray(p.capacity_weights) / sum(p.capacity_weights)
    np.testing.assert_allclose(counts / counts.sum(), w, atol=0.02)
    expected = p.distance_mean_km * p.consumption_kwh_per_km
    cap_room = (p.soc_target_frac - p.soc_min_frac) * f.battery.e_capacity_kwh
    assert f.e_trip_kwh.mean() == pytest.approx(
        expected, rel=0.05 if preset.value != "depot" else 0.06
    )
    assert np.all(f.e_trip_kwh <= cap_room + 1e-9)
    assert np.all((f.dwell_s > 0) & (f.dwell_s < 86400))


def test_bad_sampling_arguments_are_named():
    with pytest.raises(ScenarioError, match=r"fleet.p_charge_max_kw: -1.0 must be positive"):
        Fleet.sample(10, buses=[0], p_charge_max_kw=-1.0, settings=NO_CONTROLS)
    with pytest.raises(ScenarioError, match=r"fleet.colour: unknown parameter"):
        Fleet.sample(10, buses=[0], colour="red", settings=NO_CONTROLS)
    with pytest.raises(ScenarioError, match=r"fleet.preset: 'garage' is not one of"):
        Fleet.sample(10, buses=[0], preset="garage", settings=NO_CONTROLS)
    with pytest.raises(ScenarioError, match=r"fleet.buses: bus indices must be integers"):
        Fleet.sample(10, buses=[0.5], settings=NO_CONTROLS)


# ----------------------------------------------------------------------------- departure
def test_latest_policy_reaches_the_target_exactly_at_departure(tmp_path):
    """As-late-as-possible charging ends exactly on the target (closed form: it needs
    (0.8-0.2)*60/0.9 = 40 kWh from the grid = 5.714 h at 7 kW, so it idles 2.286 h first)."""
    f = Fleet.from_table(_one_vehicle(tmp_path), settings=NO_CONTROLS, policy=ChargingPolicy.LATEST)
    res = _run(f, 8 * 60 + 1, 60.0)
    p = np.array([r.p_mw[0] for r in res[:480]]) * 1000
    assert np.all(p[:137] == 0) and np.all(p[138:480] == pytest.approx(-7.0))
    assert f.totals_kwh["charged"] == pytest.approx(40.0, rel=1e-12)
    assert f.e_shortfall_kwh[0] == pytest.approx(0.0, abs=1e-9)
    assert f.soc_frac[0] == pytest.approx(0.8, abs=1e-12)
    assert res[-1].n_plugged[0] == 0 and res[-1].p_mw[0] == 0


def test_immediate_policy_charges_first_then_idles(tmp_path):
    f = Fleet.from_table(
        _one_vehicle(tmp_path), settings=NO_CONTROLS, policy=ChargingPolicy.IMMEDIATE
    )
    res = _run(f, 400, 60.0)
    p = np.array([r.p_mw[0] for r in res]) * 1000
    assert np.all(p[:342] == pytest.approx(-7.0)) and np.all(p[344:] == 0)
    assert f.soc_frac[0] == pytest.approx(0.8, abs=1e-12)


def test_shortfall_recorded_when_the_charger_is_too_small(tmp_path):
    """Target unreachable: shortfall = (0.8 - 0.2) * 60 - 0.9 * 3 kW * 8 h = 14.4 kWh."""
    f = Fleet.from_table(_one_vehicle(tmp_path, p_charge_max_kw=3.0), settings=NO_CONTROLS)
    res = _run(f, 8 * 60 + 2, 60.0)
    assert sum(r.e_shortfall_kwh for r in res) == pytest.approx(14.4, rel=1e-9)
    assert f.e_shortfall_kwh[0] == pytest.approx(14.4, rel=1e-9)


def test_periodic_sessions_take_the_trip_energy_at_arrival():
    f = Fleet.sample(300, buses=[0, 1], seed=2, settings=NO_CONTROLS, policy="immediate")
    res = _run(f, 3 * 96, 900.0)
    driven = sum(r.e_driven_kwh for r in res)
    assert driven > 0
    # home cars are plugged in at midnight and arrive once a day (around 18:00): three
    # arrivals in three days for (nearly) every vehicle; nothing is stranded
    assert f.e_stranded_kwh.sum() == 0
    assert driven == pytest.approx(3 * f.e_trip_kwh.sum(), rel=0.03)


# ----------------------------------------------------------------------------- set-points
def test_setpoint_is_met_pro_rata_and_infeasible_part_reported():
    f = Fleet.sample(400, buses=[0, 1, 2], seed=4, settings=NO_CONTROLS)
    t0 = 2 * 3600.0  # night: most home vehicles plugged in
    head = f.headroom(t_s=t0, dt_s=60.0)
    sp = np.array([0.5 * head.p_max_mw.iloc[0], 2 * head.p_max_mw.iloc[1] + 1.0, np.nan])
    r = f.step(t_s=t0, dt_s=60.0, vm_pu=np.ones(3), f_hz=60.0, p_setpoint_mw=sp)
    np.testing.assert_allclose(r.p_mw[:2], [sp[0], head.p_max_mw.iloc[1]], rtol=1e-9)
    np.testing.assert_allclose(
        r.p_setpoint_unmet_mw, [0, sp[1] - head.p_max_mw.iloc[1], 0], atol=1e-9
    )
    np.testing.assert_allclose(r.p_mw[2], head.p_baseline_mw.iloc[2], rtol=1e-9)
    # pro rata: every plugged vehicle of bus 0 sits at the same fraction of its range
    v = f.vehicle_table()
    assert r.n_limited.sum() == 0 and len(v) == 400


def test_headroom_is_the_sum_of_vehicle_bounds(tmp_path):
    """Two vehicles on one bus: p_max = 2 x 7 kW, p_min = -(7 kW + room-limited 2nd car)."""
    rows = [
        dict(
            bus=0,
            arrival_s=0.0,
            departure_s=36000.0,
            e_capacity_kwh=60.0,
            soc_arrival_frac=0.5,
            soc_target_frac=0.5,
            p_charge_max_kw=7.0,
            eta_charge=1.0,
            eta_discharge=1.0,
        ),
        dict(
            bus=0,
            arrival_s=0.0,
            departure_s=36000.0,
            e_capacity_kwh=60.0,
            soc_arrival_frac=0.99,
            soc_target_frac=0.5,
            p_charge_max_kw=7.0,
            eta_charge=1.0,
            eta_discharge=1.0,
        ),
    ]
    f = Fleet.from_table(_table(tmp_path, rows), settings=NO_CONTROLS)
    h = f.headroom(t_s=0.0, dt_s=3600.0)
    assert h.loc[0, "p_max_mw"] == pytest.approx(0.014)
    assert h.loc[0, "p_min_mw"] == pytest.approx(-(0.007 + 0.0006))
    assert h.loc[0, "q_up_mvar"] == pytest.approx(0.014)
    assert h.loc[0, "n_plugged"] == 2


# ----------------------------------------------------------------------------- tables
def test_csv_and_parquet_tables_give_the_same_fleet(tmp_path):
    rows = [
        dict(
            bus=b,
            arrival_s=3600.0 * b,
            departure_s=3600.0 * (b + 5),
            e_capacity_kwh=50.0,
            soc_arrival_frac=0.3,
            p_charge_max_kw=11.0,
            vehicle_id=f"ev{k}",
        )
        for k, b in enumerate((4, 2, 4, 7))
    ]
    a = Fleet.from_table(_table(tmp_path, rows), settings=NO_CONTROLS)
    b = Fleet.from_table(_table(tmp_path, rows, "fleet.parquet"), settings=NO_CONTROLS)
    pd.testing.assert_frame_equal(a.vehicle_table(), b.vehicle_table())
    assert list(a.buses) == [2, 4, 7] and list(a.vehicle_id) == ["ev1", "ev0", "ev2", "ev3"]


def test_bad_table_reports_file_row_and_column(tmp_path):
    rows = [
        dict(
            bus=0,
            arrival_s=100.0,
            departure_s=50.0,
            e_capacity_kwh=60.0,
            soc_arrival_frac=0.3,
            p_charge_max_kw=7.0,
        ),
        dict(
            bus=1,
            arrival_s=0.0,
            departure_s=50.0,
            e_capacity_kwh="big",
            soc_arrival_frac=None,
            p_charge_max_kw=7.0,
        ),
    ]
    with pytest.raises(InputDataError) as err:
        Fleet.from_table(_table(tmp_path, rows), settings=NO_CONTROLS)
    msg = str(err.value)
    assert "fleet.csv: row 2: e_capacity_kwh ('big') is not a number" in msg
    assert "fleet.csv: row 2: soc_arrival_frac (nan) is missing" in msg
    rows[1].update(e_capacity_kwh=60.0, soc_arrival_frac=1.5)
    with pytest.raises(InputDataError) as err:
        Fleet.from_table(_table(tmp_path, rows), settings=NO_CONTROLS)
    msg = str(err.value)
    assert "fleet.csv: row 1: departure_s (50) is not after arrival_s" in msg
    assert "fleet.csv: row 2: soc_arrival_frac (1.5) is outside the allowed [0, 1]" in msg
    path = tmp_path / "short.csv"
    pd.DataFrame({"bus": [1], "arrival_s": [0], "colour": ["red"]}).to_csv(path, index=False)
    with pytest.raises(InputDataError) as err:
        Fleet.from_table(path, settings=NO_CONTROLS)
    msg = str(err.value)
    assert (
        "short.csv: missing column(s): departure_s, e_capacity_kwh, soc_arrival_frac, "
        "p_charge_max_kw"
    ) in msg
    assert "short.csv: unknown column(s): colour" in msg
    with pytest.raises(InputDataError, match="fleet table not found"):
        Fleet.from_table(tmp_path / "nope.csv")


# ----------------------------------------------------------------------------- invariants
def _assert_invariants(fleet, e_start_kwh):
    b = fleet.battery
    tot = fleet.totals_kwh
    flows = tot["charged"] - tot["discharged"] - tot["loss"] - tot["driven"]
    assert flows == pytest.approx(b.e_kwh.sum() - e_start_kwh, abs=1e-9 * max(1, abs(flows)))
    s = np.hypot(fleet.p_kw, fleet.q_kvar)
    assert np.all(s <= b.s_max_kva * (1 + 1e-9))
    assert np.all(fleet.p_kw[fleet.tripped] == 0) and np.all(fleet.q_kvar[fleet.tripped] == 0)
    assert np.all(fleet.p_kw[~fleet.plugged] == 0)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**31 - 1),
    preset=st.sampled_from(list(FleetPreset)),
    policy=st.sampled_from(list(ChargingPolicy)),
    dt_s=st.sampled_from([0.1, 1.0, 60.0, 900.0]),
    fast=st.booleans(),
)
def test_fleet_invariants_under_random_grid_conditions(seed, preset, policy, dt_s, fast):
    """Random voltages (incl. trips), frequencies and set-points: the energy balance closes,
    SoC stays in [min(floor, SoC at plug-in), soc_max], |S| <= rating, tripped and unplugged
    units inject nothing."""
    rng = np.random.default_rng(seed)
    f = Fleet.sample(
        300, buses=np.arange(5), preset=preset, seed=seed, settings=FULL, policy=policy, fast=fast
    )
    f.step(t_s=0.0, dt_s=dt_s, vm_pu=np.ones(5), f_hz=60.0)
    e0 = f.battery.e_kwh.sum() - (
        f.totals_kwh["charged"]
        - f.totals_kwh["discharged"]
        - f.totals_kwh["loss"]
        - f.totals_kwh["driven"]
    )
    t = dt_s
    n_tripped = 0
    b = f.battery
    floor = b.e_floor_kwh / b.e_capacity_kwh
    for _ in range(60):
        vm = rng.choice([1.0, 1.06, 0.93, 1.15, 0.4]) + rng.normal(0, 0.01, 5)
        fz = rng.choice([60.0, 59.7, 60.4, 57.0]) + rng.normal(0, 0.01)
        sp = rng.uniform(-1, 1, 5) if rng.random() < 0.3 else None
        t += dt_s * rng.integers(1, 200)  # jump ahead: many arrivals/departures
        soc_prev, plugged_prev = b.soc_frac, f.plugged.copy()
        r = f.step(t_s=t, dt_s=dt_s, vm_pu=vm, f_hz=fz, p_setpoint_mw=sp)
        assert np.all(r.n_tripped <= f.n_vehicles_per_bus)
        assert np.all(r.n_plugged <= f.n_vehicles_per_bus)
        # vehicles without an arrival event this step: never discharged below the floor
        # (reserve, soc_min) unless they were already below it, never charged above soc_max
        stay = plugged_prev | ~f.plugged
        soc = b.soc_frac
        assert np.all(soc[stay] >= np.minimum(floor, soc_prev)[stay] - 1e-12)
        assert np.all(soc <= np.maximum(b.soc_max_frac, soc_prev) + 1e-12)
        assert np.all((soc >= 0) & (soc <= 1))
        _assert_invariants(f, e0)
        n_tripped += r.n_tripped.sum()
    if dt_s >= 60.0:
        assert n_tripped > 0  # the 0.4 pu / 57 Hz excursions did exercise the trip path


def test_fast_and_numpy_paths_agree():
    kw = dict(buses=np.arange(6), preset="home", seed=3, settings=FULL)
    a, b = Fleet.sample(1500, **kw), Fleet.sample(1500, fast=False, **kw)
    assert a.fast and not b.fast
    rng = np.random.default_rng(0)
    for k in range(300):
        vm = rng.uniform(0.95, 1.08, 6)
        fz = 60 + rng.normal(0, 0.1)
        sp = np.where(rng.random(6) < 0.5, rng.uniform(-0.2, 0.2, 6), np.nan) if k % 3 else None
        ra = a.step(t_s=k * 600.0, dt_s=600.0, vm_pu=vm, f_hz=fz, p_setpoint_mw=sp)
        rb = b.step(t_s=k * 600.0, dt_s=600.0, vm_pu=vm, f_hz=fz, p_setpoint_mw=sp)
        for name in (
            "p_mw",
            "q_mvar",
            "n_plugged",
            "n_tripped",
            "soc_mean_frac",
            "p_setpoint_unmet_mw",
            "n_limited",
            "e_charged_kwh",
            "e_loss_kwh",
            "e_driven_kwh",
            "e_shortfall_kwh",
        ):
            np.testing.assert_allclose(
                getattr(ra, name),
                getattr(rb, name),
                rtol=1e-9,
                atol=1e-9,
                err_msg=f"{name} at step {k}",
            )
    pd.testing.assert_frame_equal(a.vehicle_table(), b.vehicle_table(), rtol=1e-9)


def test_fast_path_follows_replaced_arrays_and_copies_do_not_share_state():
    """The fast path reuses its kernel structures between steps; they must not go stale.

    Reference: the numpy path (no cached structures), same inputs, rtol 1e-9. A session
    array replaced mid-run is used from the next step on; a deep copy (as the co-simulation
    loop makes) steps on its own arrays and leaves the original untouched.
    """
    kw = dict(buses=np.arange(4), preset="home", seed=7, settings=FULL, policy="uniform")
    a, b = Fleet.sample(400, **kw), Fleet.sample(400, fast=False, **kw)

    def step_both(k, fleets):
        vm = np.full(4, 1.0 + 0.01 * np.sin(k))
        return [f.step(t_s=k * 900.0, dt_s=900.0, vm_pu=vm, f_hz=60.0) for f in fleets]

    for k in range(40):
        step_both(k, (a, b))
    for f in (a, b):
        f.e_target_kwh = 0.5 * f.e_target_kwh  # a new array object
    for k in range(40, 120):
        ra, rb = step_both(k, (a, b))
        np.testing.assert_allclose(ra.p_mw, rb.p_mw, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(ra.e_shortfall_kwh, rb.e_shortfall_kwh, rtol=1e-9, atol=1e-9)

    before = a.vehicle_table()
    twin = copy.deepcopy(a)
    for k in range(120, 140):
        step_both(k, (twin,))
    pd.testing.assert_frame_equal(a.vehicle_table(), before)
    (r_twin,) = step_both(140, (copy.deepcopy(a),))
    (r_a,) = step_both(140, (a,))
    np.testing.assert_array_equal(r_a.p_mw, r_twin.p_mw)


def test_equivalent_circuit_fleet_closes_its_energy_balance():
    f = Fleet.sample(
        200, buses=[0, 1], seed=5, settings=FULL, thevenin=TheveninParameters(), policy="uniform"
    )
    assert not f.fast
    e0 = f.battery.e_kwh.sum()
    res = _run(f, 1, 60.0)
    e0 = (
        f.battery.e_kwh.sum()
        + f.battery.e_polarisation_kwh.sum()
        - (res[0].e_charged_kwh - res[0].e_discharged_kwh - res[0].e_loss_kwh - res[0].e_driven_kwh)
    )
    _run(f, 200, 300.0, t0_s=60.0, sp=np.array([0.05, np.nan]))
    tot = f.totals_kwh
    flows = tot["charged"] - tot["discharged"] - tot["loss"] - tot["driven"]
    stored = f.battery.e_kwh.sum() + f.battery.e_polarisation_kwh.sum()
    assert flows == pytest.approx(stored - e0, abs=1e-6)


def test_per_bus_outputs_match_vehicle_sums():
    f = Fleet.sample(2000, buses=[10, 3, 7], seed=9, settings=FULL)
    r = _run(f, 3, 60.0, t0_s=6 * 3600.0, vm=1.07)[-1]
    v = f.vehicle_table()
    g = v.groupby("bus")
    np.testing.assert_allclose(r.p_mw, g.p_kw.sum().to_numpy() / 1000, rtol=1e-12)
    np.testing.assert_allclose(r.q_mvar, g.q_kvar.sum().to_numpy() / 1000, rtol=1e-12)
    np.testing.assert_array_equal(r.n_plugged, g.plugged.sum().to_numpy())
    np.testing.assert_allclose(r.soc_mean_frac, g.soc_frac.mean().to_numpy(), rtol=1e-12)
    assert list(r.bus) == [3, 7, 10] and np.all(r.q_mvar < 0)  # volt-var absorbs at 1.07 pu


def test_step_input_errors():
    f = Fleet.sample(10, buses=[0, 1], settings=NO_CONTROLS)
    with pytest.raises(ScenarioError) as err:
        f.step(t_s=0.0, dt_s=0.0, vm_pu=np.ones(3), f_hz=float("nan"))
    msg = str(err.value)
    assert "dt_s 0.0 must be positive" in msg and "vm_pu has shape (3,), expected (2,)" in msg
    assert "f_hz nan is not finite" in msg


def test_hundred_thousand_vehicles_step_without_python_loops():
    f = Fleet.sample(100_000, buses=np.arange(100), seed=0, settings=FULL)
    r = _run(f, 2, 1.0, vm=1.03, f_hz=60.2)[-1]
    assert r.n_plugged.sum() > 50_000 and f.vehicle_table().shape[0] == 100_000


def test_degradation_is_tracked_and_costed():
    """Two days of a home fleet. The calendar fade must lie between alpha(SoC_min) t^0.75 and
    alpha(SoC_max) t^0.75 (alpha rises with SoC and the equivalent-time stepping is monotone in
    the stress); vehicles that cycled have cycle fade; cost = price C fade / 0.2."""
    from vehicle_models.degradation import calendar_alpha_per_day

    f = Fleet.sample(200, buses=[0], seed=1, settings=NO_CONTROLS, policy="uniform")
    f.step(t_s=0.0, dt_s=900.0, vm_pu=np.ones(1), f_hz=60.0)
    soc_lo = soc_hi = f.soc_frac.copy()
    for k in range(1, 2 * 96):
        f.step(t_s=k * 900.0, dt_s=900.0, vm_pu=np.ones(1), f_hz=60.0)
        soc_lo = np.minimum(soc_lo, f.soc_frac)
        soc_hi = np.maximum(soc_hi, f.soc_frac)
    v = f.vehicle_table()
    fade = v.fade_calendar_frac.to_numpy()
    assert np.all(fade >= calendar_alpha_per_day(soc_lo, 25.0) * 2.0**0.75 * (1 - 1e-9))
    assert np.all(fade <= calendar_alpha_per_day(soc_hi, 25.0) * 2.0**0.75 * (1 + 1e-9))
    assert np.any(soc_hi - soc_lo > 0.05)  # the SoC did vary
    assert np.all(v.fade_cycle_frac[v.throughput_kwh > 0] > 0)
    cost = f.degradation_cost(battery_price_per_kwh=150.0)
    np.testing.assert_allclose(
        cost, 150.0 * v.e_capacity_kwh * (v.fade_calendar_frac + v.fade_cycle_frac) / 0.2
    )
    with pytest.raises(ScenarioError, match="must not be negative"):
        f.degradation_cost(battery_price_per_kwh=-1.0)


def test_table_sessions_can_repeat_daily(tmp_path):
    """period_s=86400: the 08:00-16:00 session repeats. The vehicle is away at t = 0, so it
    starts with its target energy; at each of the two arrivals the trip energy (target -
    arrival) x capacity = 36 kWh leaves the battery, and the target is met at each departure."""
    path = _one_vehicle(tmp_path, arrival_s=8 * 3600.0, departure_s=16 * 3600.0)
    f = Fleet.from_table(path, settings=NO_CONTROLS, period_s=86400.0)
    res = _run(f, 2 * 96, 900.0)
    assert sum(r.e_driven_kwh for r in res) == pytest.approx(72.0, rel=1e-12)
    assert f.e_shortfall_kwh[0] == pytest.approx(0.0, abs=1e-9)
    assert f.soc_frac[0] == pytest.approx(0.8, abs=1e-12)
    plugged = [r.n_plugged[0] for r in res]
    assert plugged[32] == 1 and plugged[64] == 0 and plugged[96 + 32] == 1
    with pytest.raises(InputDataError, match="is a period"):
        Fleet.from_table(_one_vehicle(tmp_path, departure_s=90000.0), period_s=86400.0)
