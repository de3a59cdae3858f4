"""Trip timers, ride-through, momentary cessation, enter service and staggered disconnection.

Reference: the trip tables of IEEE Std 1547-2018, typed here independently of the settings
module: Tables 11 (Category I), 12 (II), 13 (III) for voltage and Table 18 for frequency
(default thresholds and clearing times). Each threshold is checked just beyond it (trips at
the clearing time, to one time step) and just inside it (does not trip).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from vehicle_models.inverter import InverterBank
from vehicle_models.ride_through import (
    must_ride_through_frequency_s,
    must_ride_through_s,
    trip_time_s,
)
from vehicle_models.settings import (
    AbnormalCategory,
    InverterSettings,
    StaggerMode,
    StaggerSettings,
    TripSettings,
)
from vehicle_models.stagger import staggered_trip_settings

# (element, threshold, clearing time [s]) from IEEE 1547-2018 Tables 11, 12, 13.
VOLTAGE_TABLES = {
    "I": [("OV2", 1.20, 0.16), ("OV1", 1.10, 2.0), ("UV1", 0.70, 2.0), ("UV2", 0.45, 0.16)],
    "II": [("OV2", 1.20, 0.16), ("OV1", 1.10, 2.0), ("UV1", 0.70, 10.0), ("UV2", 0.45, 0.16)],
    "III": [("OV2", 1.20, 0.16), ("OV1", 1.10, 13.0), ("UV1", 0.88, 21.0), ("UV2", 0.50, 2.0)],
}
# Table 18 (all categories).
FREQUENCY_TABLE = [
    ("OF2", 62.0, 0.16),
    ("OF1", 61.2, 300.0),
    ("UF1", 58.5, 300.0),
    ("UF2", 56.5, 0.16),
]


def _run_constant(settings, *, vm, f, t_end_s, dt_s, n=None, connected=True):
    """Hold vm (array) and f for t_end_s; return the first trip time per unit (inf if none).

    The output of the step that starts at t describes the end of the interval, t + dt.
    """
    vm = np.atleast_1d(np.asarray(vm, dtype=float))
    n = vm.size if n is None else n
    bank = InverterBank(settings, n=n)
    first_trip = np.full(n, np.inf)
    ones = np.ones(n)
    for k in range(round(t_end_s / dt_s)):
        out = bank.step(
            dt_s=dt_s,
            vm_pu=vm,
            f_hz=f,
            p_request_pu=0.5 * ones,
            p_max_pu=ones,
            p_min_pu=-ones,
            connected=np.broadcast_to(connected, (n,)),
        )
        new = out.tripped & np.isinf(first_trip)
        first_trip[new] = (k + 1) * dt_s
        assert np.all(out.p_pu[out.tripped] == 0.0)
    return first_trip


@pytest.mark.parametrize("acat", ["I", "II", "III"])
def test_voltage_trip_times_match_tables(acat):
    """One bank: for each element one unit just beyond the threshold, one just inside."""
    s = InverterSettings.defaults(abnormal_category=acat, functions=["volt_var"])
    # without momentary cessation so the voltage elements are observed on their own
    s = dataclasses.replace(s, trip=dataclasses.replace(s.trip, mc_low_v_pu=0.0))
    rows = VOLTAGE_TABLES[acat]
    vm, expected = [], []
    for name, threshold, t_clear in rows:
        beyond = threshold + 0.005 if name.startswith("OV") else threshold - 0.005
        inside = threshold - 0.005 if name.startswith("OV") else threshold + 0.005
        # the slower stage also picks up beyond the faster one's threshold: expected = min
        vm += [beyond, inside]
        expected += [t_clear, None]
    dt = 0.01
    t_end = 25.0 if acat == "III" else 12.0
    trips = _run_constant(s, vm=vm, f=60.0, t_end_s=t_end, dt_s=dt)
    for i, (v, t_exp) in enumerate(zip(vm, expected, strict=True)):
        closed_form = trip_time_s(v, 60.0, s)
        if t_exp is not None:
            # the faster element is the one at the tested threshold (the slower one, if it
            # also picks up, clears later)
            assert closed_form == pytest.approx(t_exp)
            assert trips[i] == pytest.approx(t_exp, abs=dt + 1e-9), (acat, v)
        else:
            assert trips[i] == pytest.approx(closed_form, abs=dt + 1e-9) or (
                np.isinf(closed_form) and np.isinf(trips[i])
            )
            # just inside the tested threshold this element does not act
            if np.isfinite(closed_form):
                assert closed_form > rows[i // 2][2]


def test_frequency_trip_times_match_table_18():
    s = InverterSettings.defaults(functions=["freq_watt"])
    s = dataclasses.replace(s, freq_watt=dataclasses.replace(s.freq_watt, f_meas_tau_s=0.0))
    dt = 0.01
    for name, threshold, t_clear in FREQUENCY_TABLE:
        beyond = threshold + 0.01 if name.startswith("OF") else threshold - 0.01
        inside = threshold - 0.01 if name.startswith("OF") else threshold + 0.01
        if t_clear < 1.0:
            t_beyond = _run_constant(s, vm=[1.0], f=beyond, t_end_s=1.0, dt_s=dt)[0]
            assert t_beyond == pytest.approx(t_clear, abs=dt + 1e-9), name
            # just inside the fast stage: the slow stage acts (after 300 s), not this one
            assert _run_constant(s, vm=[1.0], f=inside, t_end_s=1.0, dt_s=dt)[0] == np.inf
        else:
            coarse = 0.5
            t_beyond = _run_constant(s, vm=[1.0], f=beyond, t_end_s=310.0, dt_s=coarse)[0]
            assert t_beyond == pytest.approx(t_clear, abs=coarse + 1e-9), name
            t_inside = _run_constant(s, vm=[1.0], f=inside, t_end_s=310.0, dt_s=coarse)[0]
            assert t_inside == np.inf, name


def test_timer_resets_when_condition_clears():
    """Cat I UV2 (0.45 pu, 0.16 s): repeated 0.10 s dips separated by 0.05 s never trip."""
    s = InverterSettings.defaults(abnormal_category="I", functions=[])
    bank = InverterBank(s, n=1)
    one = np.ones(1)
    tripped = False
    for k in range(300):
        vm = 0.40 if (k % 15) < 10 else 1.0
        out = bank.step(
            dt_s=0.01,
            vm_pu=vm * one,
            f_hz=60.0,
            p_request_pu=one,
            p_max_pu=one,
            p_min_pu=-one,
            connected=np.ones(1, bool),
        )
        tripped |= bool(out.tripped[0])
    assert not tripped
    # while 0.16 s of continuous dip does trip (at 0.16 s)
    assert _run_constant(s, vm=[0.40], f=60.0, t_end_s=0.5, dt_s=0.01)[0] == pytest.approx(0.16)


@pytest.mark.parametrize("acat", ["I", "II", "III"])
def test_default_trip_settings_respect_must_ride_through(acat):
    """Tables 14-16 / 19: a unit with default settings never trips before the ride-through
    time of the voltage (or frequency) band."""
    s = InverterSettings.defaults(abnormal_category=acat)
    cat = AbnormalCategory(acat)
    for v in np.round(np.arange(0.0, 1.30, 0.005), 3):
        t_rt = float(must_ride_through_s(v, cat))
        assert trip_time_s(float(v), 60.0, s) >= t_rt - 1e-12, (acat, v)
    for f in np.round(np.arange(55.0, 65.0, 0.01), 2):
        t_rt = float(must_ride_through_frequency_s(f, cat))
        assert trip_time_s(1.0, float(f), s) >= t_rt - 1e-12, (acat, f)


def test_momentary_cessation_category_iii():
    """Cat III below 0.50 pu: cease (zero current) without tripping, resume when back."""
    s = InverterSettings.defaults(abnormal_category="III", functions=["volt_var"])
    bank = InverterBank(s, n=1)
    one = np.ones(1)
    outputs = []
    for k in range(200):
        vm = 0.45 if 50 <= k < 100 else 1.0  # 0.5 s dip (UV2 clears at 2 s)
        out = bank.step(
            dt_s=0.01,
            vm_pu=vm * one,
            f_hz=60.0,
            p_request_pu=0.7 * one,
            p_max_pu=one,
            p_min_pu=-one,
            connected=np.ones(1, bool),
        )
        outputs.append((out.p_pu[0], out.ceased[0], out.tripped[0]))
    p, ceased, tripped = map(np.array, zip(*outputs, strict=True))
    assert not tripped.any()
    assert ceased[50:100].all() and not ceased[:50].any() and not ceased[100:].any()
    assert np.all(p[50:100] == 0.0) and np.all(p[100:] == pytest.approx(0.7))
    # Category I has no momentary cessation: a dip below its UV2 (0.45 pu) trips in 0.16 s
    s1 = InverterSettings.defaults(abnormal_category="I")
    assert _run_constant(s1, vm=[0.44], f=60.0, t_end_s=0.3, dt_s=0.01)[0] == pytest.approx(0.16)


def test_enter_service_delay_window_and_ramp():
    """Clause 4.10: re-enter after 300 s inside 0.917-1.05 pu / 59.5-60.1 Hz, then ramp P
    linearly over 300 s; a tripped unit outputs nothing until then."""
    s = InverterSettings.defaults(functions=[])
    bank = InverterBank(s, n=2)
    one = np.ones(2)
    dt = 1.0
    log = []
    for k in range(1000):
        t = k * dt
        if t < 1.0:
            vm = np.array([1.3, 1.3])  # OV2: trips in 0.16 s (within the first 1 s step)
        elif t < 200.0:
            vm = np.array([1.0, 0.91])  # unit 1 stays below the window's 0.917 pu
        else:
            vm = np.array([1.0, 1.0])
        out = bank.step(
            dt_s=dt,
            vm_pu=vm,
            f_hz=60.0,
            p_request_pu=one,
            p_max_pu=one,
            p_min_pu=-one,
            connected=np.ones(2, bool),
        )
        log.append((t + dt, out.p_pu.copy(), out.tripped.copy()))
    times = np.array([x[0] for x in log])
    p = np.array([x[1] for x in log])
    tripped = np.array([x[2] for x in log])
    assert tripped[0].all()
    # unit 0: inside the window from t = 1 s -> re-enters at 1 + 300 s
    reentry0 = times[np.argmax(~tripped[:, 0] & (times > 1.0))]
    assert reentry0 == pytest.approx(301.0)
    # unit 1: window only from t = 200 s -> 500 s
    reentry1 = times[np.argmax(~tripped[:, 1] & (times > 1.0))]
    assert reentry1 == pytest.approx(500.0)
    assert np.all(p[tripped] == 0.0)
    # soft start: P limit ramps 0 -> 1 over 300 s after re-entry
    i = np.searchsorted(times, reentry0 + 150.0)
    assert p[i, 0] == pytest.approx(150.0 / 300.0, abs=dt / 300.0 + 1e-9)
    assert p[np.searchsorted(times, reentry0 + 301.0), 0] == pytest.approx(1.0)


def test_unplugged_units_do_not_trip_and_inject_nothing():
    s = InverterSettings.defaults()
    t = _run_constant(s, vm=[0.3, 0.3], f=60.0, t_end_s=3.0, dt_s=0.1, connected=[False, True])
    assert np.isinf(t[0]) and t[1] == pytest.approx(2.0)


# ------------------------------------------------------------------ stagger
@pytest.mark.parametrize("mode", [StaggerMode.TIERED, StaggerMode.RANDOM])
@pytest.mark.parametrize("acat", list(AbnormalCategory))
def test_staggered_settings_stay_in_standard_ranges(mode, acat):
    s = InverterSettings.defaults(abnormal_category=acat.value)
    st = StaggerSettings(mode=mode, n_tiers=5, v_spread_pu=0.5, f_spread_hz=5.0, t_spread_frac=10)
    per_unit = staggered_trip_settings(s.trip, st, acat, n=400, seed=7)
    ranges = TripSettings.standard_ranges(acat)
    for key, values in per_unit.items():
        lo, hi = ranges[key]
        assert np.all(values >= lo - 1e-12) and np.all(values <= hi + 1e-12), key
        central = getattr(s.trip, key)
        # spread only towards ride-through: later trips, wider thresholds
        if key.startswith(("uv", "uf")) and not key.endswith("_t_s"):
            assert np.all(values <= central + 1e-12)
        else:
            assert np.all(values >= central - 1e-12)
    again = staggered_trip_settings(s.trip, st, acat, n=400, seed=7)
    assert all(np.array_equal(again[k], per_unit[k]) for k in per_unit)


def _fleet_power_during_underfrequency(stagger: StaggerSettings, n=40):
    s = InverterSettings.defaults(functions=["freq_watt"])
    fw = dataclasses.replace(s.freq_watt, f_meas_tau_s=0.0)  # no PLL delay: exact timing
    s = dataclasses.replace(s, stagger=stagger, freq_watt=fw)
    bank = InverterBank(s, n=n, seed=3)
    ones = np.ones(n)
    total = []
    for k in range(400):
        f = 60.0 if k < 10 else 56.4  # below UF2 (56.5 Hz, 0.16 s)
        out = bank.step(
            dt_s=0.01,
            vm_pu=ones,
            f_hz=f,
            p_request_pu=0.5 * ones,
            p_max_pu=0.5 * ones,
            p_min_pu=-ones,
            connected=np.ones(n, bool),
        )
        total.append(out.p_pu.sum())
    return np.array(total), bank


def test_stagger_modes_spread_the_loss():
    simultaneous, bank_s = _fleet_power_during_underfrequency(StaggerSettings())
    steps = -np.diff(simultaneous)
    assert steps.max() == pytest.approx(20.0)  # the whole fleet (40 x 0.5) in one step
    assert bank_s.tripped.all()

    tiered, bank_t = _fleet_power_during_underfrequency(
        StaggerSettings(mode=StaggerMode.TIERED, n_tiers=4, f_spread_hz=0.3, t_spread_frac=1.0)
    )
    assert -np.diff(tiered).max() <= 10.0 + 1e-9  # at most one tier (10 units) per step
    assert 0 < bank_t.tripped.sum() <= 40

    ramp, bank_r = _fleet_power_during_underfrequency(
        StaggerSettings(mode=StaggerMode.RAMP, ramp_s=2.0)
    )
    drops = -np.diff(ramp)
    assert drops.max() == pytest.approx(20.0 * 0.01 / 2.0, rel=1e-6)  # linear over 2 s
    assert ramp[-1] == 0.0 and bank_r.tripped.all()
    # the trip timer expires in the 16th step of the event (steps 10..25); the ramp-down
    # starts with the next step, so the first drop is between outputs 25 and 26
    first_drop = np.argmax(drops > 1e-9)
    assert first_drop == 10 + 16 - 1


def test_random_stagger_is_seeded():
    s = InverterSettings.defaults()
    st = StaggerSettings(mode=StaggerMode.RANDOM)
    a = staggered_trip_settings(s.trip, st, AbnormalCategory.III, n=10, seed=1)
    b = staggered_trip_settings(s.trip, st, AbnormalCategory.III, n=10, seed=2)
    assert not np.array_equal(a["uf1_f_hz"], b["uf1_f_hz"])


def test_ride_through_conflicts():
    """Defaults are coordinated with Tables 14-16/19; an in-range but too-fast UV1 is not."""
    from vehicle_models.ride_through import ride_through_conflicts

    for acat in ("I", "II", "III"):
        assert ride_through_conflicts(InverterSettings.defaults(abnormal_category=acat)) == []
    fast = InverterSettings.from_dict({"trip": {"uv1_t_s": 2.0}})  # in range for Cat III
    (message,) = ride_through_conflicts(fast)
    assert message == (
        "fleet.control.trip.uv1_t_s: 2 s (with uv1_v_pu = 0.88) trips between 0.5 and "
        "0.879 pu, where Category III must ride through for up to 20 s"
    )
    # lowering the threshold below the mandatory band removes the conflict
    low = InverterSettings.from_dict({"trip": {"uv1_t_s": 2.0, "uv1_v_pu": 0.5}})
    assert ride_through_conflicts(low) == []
