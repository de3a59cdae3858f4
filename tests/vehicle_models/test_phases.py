"""Single-phase chargers: connections, allocation policies, phase voltages, per-phase fleets."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from grids.errors import InputDataError, ScenarioError
from vehicle_models.fleet import Fleet
from vehicle_models.phases import (
    PHASES,
    ChargerConnection,
    FeederPhases,
    Phase,
    PhaseAllocation,
    allocate_phases,
    line_to_line_base_pu,
    phase_codes,
    phase_injections,
    phase_totals,
    phase_voltage_pu,
)
from vehicle_models.settings import InverterSettings

FULL = InverterSettings.defaults(functions=["volt_var", "freq_watt"])
A = np.exp(2j * np.pi / 3)  # Fortescue operator
#: buses 0, 1: three-phase; 2: phase b only (single-phase lateral); 3: phases a and c
BUS_PHASES = {0: (1, 2, 3), 1: (1, 2, 3), 2: (2,), 3: (1, 3)}
NAMES = ("sourcebus", "671", "652", "684")


# ----------------------------------------------------------------------------- connections
def test_connection_names_and_conductors():
    assert [p.value for p in PHASES] == ["a", "b", "c", "ab", "bc", "ca", "abc"]
    assert Phase.CA.conductors == (3, 1) and Phase.ABC.conductors == (1, 2, 3)
    assert Phase.AB.is_line_to_line and not Phase.A.is_line_to_line
    codes = phase_codes(["a", " B ", "ca", Phase.ABC, 4])
    np.testing.assert_array_equal(codes, [0, 1, 5, 6, 4])


def test_invalid_connections_are_listed_together():
    with pytest.raises(ScenarioError) as info:
        phase_codes(["a", "d", "abc", "n", 9])
    problems = info.value.problems
    assert len(problems) == 3
    assert "'d'" in problems[0] and "'n'" in problems[1] and "code 9" in problems[2]


# ----------------------------------------------------------------------------- allocation
def test_round_robin_balances_each_bus_and_the_feeder():
    bus = np.repeat([0, 1, 2, 3], [100, 7, 5, 9])
    code = allocate_phases(bus, bus_phases=BUS_PHASES, policy=PhaseAllocation.ROUND_ROBIN)
    for b, present in BUS_PHASES.items():
        counts = np.bincount(code[bus == b], minlength=7)
        on = [Phase(x).code for x in "abc" if "abc".index(x) + 1 in present]
        assert counts[on].max() - counts[on].min() <= 1  # balanced within one
        assert counts.sum() == counts[on].sum()  # only the bus's own phases
    three = np.isin(bus, [0, 1])
    totals = np.bincount(code[three], minlength=3)[:3]
    assert totals.max() - totals.min() <= 1
    assert np.all(code[bus == 2] == Phase.B.code)  # the lateral's own phase


def test_random_allocation_is_seeded_and_respects_bus_phases():
    bus = np.tile([0, 1, 2, 3], 500)
    a = allocate_phases(bus, bus_phases=BUS_PHASES, policy="random", seed=5)
    b = allocate_phases(bus, bus_phases=BUS_PHASES, policy="random", seed=5)
    c = allocate_phases(bus, bus_phases=BUS_PHASES, policy="random", seed=6)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    fp = FeederPhases(bus_phases=BUS_PHASES)
    assert fp.problems(bus, a) == []
    assert set(a[bus == 3]) == {Phase.A.code, Phase.C.code}
    # 1000 vehicles on the three-phase buses: each phase within 5 sigma of a third
    share = np.bincount(a[bus <= 1], minlength=3)[:3] / 1000
    assert np.all(np.abs(share - 1 / 3) < 5 * np.sqrt(2 / 9 / 1000))


def test_single_phase_worst_case_and_line_to_line_pairs():
    bus = np.tile([0, 1, 2, 3], 10)
    worst = allocate_phases(bus, bus_phases=BUS_PHASES, policy="single_phase")
    assert set(worst[bus != 2]) == {Phase.A.code} and set(worst[bus == 2]) == {Phase.B.code}
    pairs = allocate_phases(
        bus[bus != 2],
        bus_phases=BUS_PHASES,
        policy="round_robin",
        connection=ChargerConnection.LINE_TO_LINE,
    )
    assert set(pairs[bus[bus != 2] == 3]) == {Phase.CA.code}  # the one pair of bus 684
    assert set(pairs) == {Phase.AB.code, Phase.BC.code, Phase.CA.code}


def test_buses_without_a_fitting_connection_are_listed_together():
    bus = np.array([0, 2, 3, 2])
    with pytest.raises(ScenarioError) as info:
        allocate_phases(bus, bus_phases=BUS_PHASES, connection="three_phase", bus_names=NAMES)
    text = str(info.value)
    assert len(info.value.problems) == 2
    assert "bus 652 (phase(s) b)" in text and "bus 684 (phase(s) ac)" in text


# ----------------------------------------------------------------------------- voltages
def test_phase_voltages_closed_forms():
    balanced = 1.02 * np.array([1.0, A**2, A])  # a, b, c (positive sequence)
    v = np.tile(balanced, (7, 1))
    # every connection sees the same magnitude on a balanced bus: |1 - a^2| = sqrt(3)
    np.testing.assert_allclose(phase_voltage_pu(np.arange(7), v), 1.02, rtol=1e-14)
    # unbalanced: magnitudes 1.0, 0.95, 1.05 at 0, -120, 120 degrees; line-to-line by hand
    va, vb, vc = 1.0, 0.95 * A**2, 1.05 * A
    v = np.tile([va, vb, vc], (7, 1))
    expected = [
        1.0,
        0.95,
        1.05,
        abs(va - vb) / np.sqrt(3),
        abs(vb - vc) / np.sqrt(3),
        abs(vc - va) / np.sqrt(3),
        1.0,
    ]
    np.testing.assert_allclose(phase_voltage_pu(np.arange(7), v), expected, rtol=1e-14)
    # |Va - Vb|^2 = |Va|^2 + |Vb|^2 - 2 |Va||Vb| cos(120°) (law of cosines)
    assert expected[3] == pytest.approx(np.sqrt((1 + 0.95**2 + 0.95) / 3), rel=1e-14)
    # batched over leading axes; a bus without phase c is fine for a phase-a charger
    vv = np.array([[[1.0, 0.9 * A**2, np.nan]], [[0.97, A**2, np.nan]]])
    np.testing.assert_allclose(phase_voltage_pu([0], vv)[:, 0], [1.0, 0.97])


def test_split_phase_legs_have_a_line_to_line_base_of_two():
    """Two legs of a centre-tapped secondary, 180° apart: the 240 V pair is 2 x 120 V, so
    ``|V1 - V2| / 2`` is its pu value; three-phase pairs keep ``sqrt(3)``."""
    legs = np.array([[1.01, -0.99 * np.exp(0.02j), np.nan]])  # ~180° apart, a few degrees off
    three = np.array([[1.0, A**2 * np.exp(-0.05j), np.nan]])  # ~120° apart
    base = line_to_line_base_pu(
        np.array([legs[0, 0], three[0, 0]]), np.array([legs[0, 1], three[0, 1]])
    )
    np.testing.assert_allclose(base, [2.0, np.sqrt(3)])
    vm = phase_voltage_pu([Phase.AB.code], legs, ll_base_pu=base[:1])
    assert vm[0] == pytest.approx(abs(legs[0, 0] - legs[0, 1]) / 2, rel=1e-14)
    assert vm[0] == pytest.approx(1.0, abs=1e-3)


def test_injection_split_conserves_power():
    code = np.arange(7)
    p = np.linspace(-7.4, 11.0, 7) / 1000
    q = np.linspace(1.0, -2.0, 7) / 1000
    pw, qw, pd_, qd = phase_injections(code, p, q)
    np.testing.assert_allclose(pw.sum(-1) + pd_.sum(-1), p, rtol=1e-15)
    np.testing.assert_allclose(qw.sum(-1) + qd.sum(-1), q, rtol=1e-15)
    assert pw[0, 0] == p[0] and pd_[5, 2] == p[5] and pd_[:3].sum() == 0
    np.testing.assert_allclose(pw[6], p[6] / 3)


# ----------------------------------------------------------------------------- fleets
def _phased_fleet(n=600, allocation="round_robin", seed=4, **kw):
    fp = FeederPhases(
        bus_phases=BUS_PHASES, bus_names=NAMES, allocation=PhaseAllocation(allocation)
    )
    return Fleet.sample(n, buses=[0, 1, 2, 3], seed=seed, settings=FULL, phases=fp, **kw)


def test_phased_fleet_groups_per_bus_and_phase_and_sums_to_the_total():
    """The per-(bus, phase) aggregates equal the vehicle sums; their per-phase totals add up
    to the fleet total; without phases the same vehicles give the same per-vehicle powers."""
    f = _phased_fleet(policy="immediate")
    plain = Fleet.sample(
        600, buses=[0, 1, 2, 3], seed=4, settings=FULL, policy="immediate"
    )  # same draws: the phase allocation has its own random stream
    np.testing.assert_array_equal(f.buses, [0, 0, 0, 1, 1, 1, 2, 3, 3])
    np.testing.assert_array_equal(f.phases, [0, 1, 2, 0, 1, 2, 1, 0, 2])
    t = 19 * 3600.0
    for k in range(4):
        r = f.step(t_s=t + k * 900, dt_s=900.0, vm_pu=np.ones(f.buses.size), f_hz=60.0)
        rp = plain.step(t_s=t + k * 900, dt_s=900.0, vm_pu=np.ones(4), f_hz=60.0)
    np.testing.assert_array_equal(r.phase, f.phases)
    table = f.vehicle_table()
    groups = table.groupby(["bus", "phase"], sort=False)
    np.testing.assert_allclose(r.p_mw, groups.p_kw.sum().to_numpy() / 1000, rtol=1e-12)
    np.testing.assert_array_equal(r.n_plugged, groups.plugged.sum().to_numpy())
    totals = phase_totals(r.phase, r.p_mw)
    assert totals.sum() == pytest.approx(r.p_mw.sum(), rel=1e-12)
    assert r.p_mw.sum() < 0  # charging in the evening
    # the same vehicles without phases: the same powers per vehicle and in total
    by_id = table.set_index("vehicle_id").p_kw
    plain_by_id = plain.vehicle_table().set_index("vehicle_id").p_kw
    np.testing.assert_allclose(by_id.sort_index(), plain_by_id.sort_index(), atol=1e-12)
    assert rp.p_mw.sum() == pytest.approx(r.p_mw.sum(), rel=1e-12)
    # energy balance: flows in and out of the batteries equal the change of stored energy
    tot = f.totals_kwh
    flows = tot["charged"] - tot["discharged"] - tot["loss"] - tot["driven"]
    e0 = plain.battery.e_kwh.sum() - (
        plain.totals_kwh["charged"]
        - plain.totals_kwh["discharged"]
        - plain.totals_kwh["loss"]
        - plain.totals_kwh["driven"]
    )
    assert f.battery.e_kwh.sum() - flows == pytest.approx(e0, abs=1e-6)


@pytest.mark.parametrize("fast", [True, False])
def test_volt_var_acts_on_the_vehicles_own_phase(fast):
    """Phase a of bus 0 at 1.08 pu, everything else at 1.0 pu: only the vehicles on that
    connection absorb reactive power (IEEE 1547-2018 volt-var, deadband around 1.0 pu)."""
    f = _phased_fleet(policy="latest", fast=fast)
    vm = np.ones(f.buses.size)
    high = (f.buses == 0) & (f.phases == Phase.A.code)
    vm[high] = 1.08
    r = None
    for k in range(3):
        r = f.step(t_s=20 * 3600.0 + 60 * k, dt_s=60.0, vm_pu=vm, f_hz=60.0)
    assert r.n_plugged[high][0] > 0
    assert r.q_mvar[high][0] < 0
    np.testing.assert_allclose(r.q_mvar[~high], 0.0, atol=1e-12)
    q_vehicle = f.q_kvar
    on_high = (f.bus_of_vehicle == 0) & (f.phase_of_vehicle == Phase.A.code) & f.plugged
    assert np.all(q_vehicle[on_high] < 0) and np.all(q_vehicle[~on_high] == 0)


@pytest.mark.parametrize("fast", [True, False])
def test_volt_watt_acts_on_the_vehicles_own_phase(fast):
    """Export as much as feasible on every connection; phase b of bus 1 at 1.08 pu (half-way up
    the IEEE 1547-2018 volt-watt curve 1.06 -> 1.10 pu): only the vehicles on that connection
    export less than with 1.0 pu everywhere."""
    vw = InverterSettings.defaults(functions=["volt_watt"])
    powers = {}
    for case in ("flat", "high"):
        fp = FeederPhases(bus_phases=BUS_PHASES, bus_names=NAMES)
        f = Fleet.sample(600, buses=[0, 1, 2, 3], seed=8, settings=vw, phases=fp, fast=fast)
        vm = np.ones(f.buses.size)
        high = (f.buses == 1) & (f.phases == Phase.B.code)
        if case == "high":
            vm[high] = 1.08
        setpoint = np.full(f.buses.size, 10.0)  # export as much as feasible
        r = None
        for k in range(40):  # long enough for the volt-watt response time (10 s OLRT)
            r = f.step(t_s=20 * 3600.0 + k, dt_s=1.0, vm_pu=vm, f_hz=60.0, p_setpoint_mw=setpoint)
        powers[case] = (r.p_mw, high)
    (flat, _), (limited, high) = powers["flat"], powers["high"]
    assert flat[high][0] > 0
    assert limited[high][0] < 0.75 * flat[high][0]
    np.testing.assert_allclose(limited[~high], flat[~high], rtol=1e-12)


def _write(tmp_path, rows):
    path = tmp_path / "fleet.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def _row(bus, phase=None):
    row = dict(
        bus=bus,
        arrival_s=0.0,
        departure_s=3600.0,
        e_capacity_kwh=50.0,
        soc_arrival_frac=0.5,
        p_charge_max_kw=7.4,
    )
    if phase is not None:
        row["phase"] = phase
    return row


def test_table_phase_column_and_bus_names(tmp_path):
    fp = FeederPhases(bus_phases=BUS_PHASES, bus_names=NAMES)
    path = _write(tmp_path, [_row(671, "B"), _row(652, "b"), _row("684", "ca"), _row(671, "a")])
    f = Fleet.from_table(path, phases=fp, settings=FULL)
    np.testing.assert_array_equal(f.buses, [1, 1, 2, 3])
    assert [PHASES[c].value for c in f.phases] == ["a", "b", "b", "ca"]
    # without a phase column the allocation policy places the vehicles
    path = _write(tmp_path, [_row(671), _row(671), _row(671), _row(652)])
    f = Fleet.from_table(path, phases=fp, settings=FULL)
    assert sorted(f.phase_of_vehicle.tolist()) == [0, 1, 1, 2]


def test_table_phase_errors_are_listed_together(tmp_path):
    fp = FeederPhases(bus_phases=BUS_PHASES, bus_names=NAMES)
    bad = _write(tmp_path, [_row(671, "d"), _row(999, "a"), _row(652, "abc"), _row(671, "")])
    with pytest.raises(InputDataError) as info:
        Fleet.from_table(bad, phases=fp)
    text = str(info.value)
    assert "row 1: phase ('d')" in text and "row 4: phase" in text
    assert (
        "row 2: bus ('999') is not a bus of the feeder" in text
        and "row 4: phase (nan) is missing" in text
    )
    # phases the bus does not have: one error naming every (bus, phase)
    misfit = _write(tmp_path, [_row(652, "a"), _row(652, "abc"), _row(684, "b"), _row(671, "c")])
    with pytest.raises(InputDataError) as info:
        Fleet.from_table(misfit, phases=fp)
    problems = info.value.problems
    assert len(problems) == 3
    assert any("bus 652 phase 'a', but the bus has phase(s) b" in p for p in problems)
    assert any("bus 684 phase 'b', but the bus has phase(s) ac" in p for p in problems)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**31 - 1),
    allocation=st.sampled_from(list(PhaseAllocation)),
    fast=st.booleans(),
)
def test_phased_fleet_invariants_under_random_phase_voltages(seed, allocation, fast):
    """Random voltages per connection (incl. trips) and set-points: every vehicle stays on a
    phase its bus has, the per-connection sums equal the vehicle sums and, per phase, add up to
    the fleet total, the wye/delta split conserves it, and the energy balance closes."""
    rng = np.random.default_rng(seed)
    fp = FeederPhases(bus_phases=BUS_PHASES, allocation=allocation)
    f = Fleet.sample(400, buses=[0, 1, 2, 3], seed=seed, settings=FULL, phases=fp, fast=fast)
    assert fp.problems(f.bus_of_vehicle, f.phase_of_vehicle) == []
    n = f.buses.size
    f.step(t_s=0.0, dt_s=60.0, vm_pu=np.ones(n), f_hz=60.0)
    tot = f.totals_kwh
    e0 = f.battery.e_kwh.sum() - (tot["charged"] - tot["discharged"] - tot["loss"] - tot["driven"])
    t = 60.0
    for _ in range(25):
        vm = rng.choice([1.0, 1.07, 0.93, 1.15]) + rng.normal(0, 0.02, n)
        sp = rng.uniform(-0.2, 0.2, n) if rng.random() < 0.3 else None
        t += 60.0 * rng.integers(1, 120)
        r = f.step(t_s=t, dt_s=60.0, vm_pu=vm, f_hz=60.0, p_setpoint_mw=sp)
        key = f.bus_of_vehicle * len(PHASES) + f.phase_of_vehicle
        group = np.searchsorted(f.buses * len(PHASES) + f.phases, key)
        p_sum = np.bincount(group, weights=f.p_kw, minlength=n) / 1000
        np.testing.assert_allclose(r.p_mw, p_sum, rtol=1e-9, atol=1e-12)
        total = f.p_kw.sum() / 1000
        assert phase_totals(r.phase, r.p_mw).sum() == pytest.approx(total, rel=1e-9, abs=1e-12)
        pw, _, pdl, _ = phase_injections(r.phase, r.p_mw, r.q_mvar)
        assert pw.sum() + pdl.sum() == pytest.approx(total, rel=1e-9, abs=1e-12)
    tot = f.totals_kwh
    flows = tot["charged"] - tot["discharged"] - tot["loss"] - tot["driven"]
    assert f.battery.e_kwh.sum() - flows == pytest.approx(e0, abs=1e-6)
