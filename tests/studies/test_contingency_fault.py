"""Contingency with a fault event: every vehicle's ride-through, momentary cessation and trip
follow its own bus's retained voltage from the fault calculation (grids/fault.py)."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from cosim.cli import main
from grids.errors import ScenarioError
from grids.fault import FaultModel
from grids.feeders import load_feeder
from studies.contingency import load_contingency_scenario, run_contingency_study, simulate_case

FAULT = {
    "t_s": 0.5,
    "kind": "fault",
    "bus": 2,
    "r_fault_ohm": 1.0,
    "x_fault_ohm": 1.0,
    "duration_s": 0.25,
    "s_sc_mva": 100.0,
    "rx": 0.1,
}

BASE = {
    "simulation": {"duration_s": 3.0, "step_s": 0.02, "seed": 3},
    "frequency": {"f0_hz": 60.0, "s_base_mw": 2000.0, "h_s": 4.0, "d_pu": 1.0, "r_pu": 0.05,
                  "t_gov_s": 0.5, "ufls": [{"threshold_hz": 59.5, "delay_s": 0.2,
                                            "fraction": 0.05}]},
    "events": [{"t_s": 0.5, "kind": "generation_loss", "p_mw": 220.0}, FAULT],
    "feeder": {"name": "case33bw"},
    "fleet": {"n_vehicles": 80, "preset": "home",
              "control": {"trip": {"mc_low_v_pu": 0.0}}},
    "contingency": {"feeder_replicas": 150.0, "dispatch_frac": 0.5, "time_of_day_h": 21.0,
                    "trip": {"uv2_v_pu": 0.5, "uv2_t_s": 0.16},
                    "stagger": {"mode": "ramp", "ramp_s": 1.0}},
}  # fmt: skip


def _scenario(**changes):
    data = copy.deepcopy(BASE)
    for path, value in changes.items():
        section, _, key = path.partition("__")
        if key:
            data[section][key] = value
        else:
            data[section] = value
    return data


def _buses_below(metrics, name):
    (fault,) = metrics["faults"]
    return [row for row in fault["buses"] if name in row["below"]]


def test_each_bus_trips_on_its_own_retained_voltage():
    """The common threshold 0.5 pu / 0.16 s trips exactly the vehicles on buses whose
    retained voltage is below 0.5 pu (the main feeder behind the fault); the lateral from
    bus 1 (about 0.56 pu) rides through. The retained voltages are those of an independent
    fault solve on the pre-fault state (loads and fleet dispatch), within 1e-3 pu."""
    scenario = load_contingency_scenario(_scenario())
    metrics = simulate_case(scenario, "trip").metrics
    (fault,) = metrics["faults"]
    vm = {row["bus"]: row["vm_pu"] for row in fault["buses"]}
    below = _buses_below(metrics, "uv2_v_pu")
    assert {row["bus"] for row in below} == {b for b, v in vm.items() if v < 0.5}
    riding = [b for b, v in vm.items() if v >= 0.5]
    assert riding and below  # both groups exist: a per-bus, not a uniform, sag
    assert metrics["n_vehicles_tripped"] == sum(row["n_vehicles_plugged"] for row in below)
    assert metrics["fleet_tripped_mw"] > 0
    # the sag, solved again on the feeder without the fleet (its dispatch shifts the
    # pre-fault voltages by a little): the same buses, nearly the same voltages
    model = FaultModel(load_feeder("case33bw"), s_sc_mva=100.0, rx=0.1)
    again = model.solve([2], z_fault_ohm=1 + 1j)
    fleet_buses = np.array(sorted(vm))
    np.testing.assert_allclose(again.vm_at(fleet_buses)[0], [vm[b] for b in fleet_buses], atol=2e-2)
    assert metrics["fault_vm_min_pu"] == pytest.approx(min(vm.values()))


def test_short_fault_is_ridden_through():
    """Cleared after 0.1 s, before the 0.16 s clearing time: nobody trips."""
    short = dict(FAULT, duration_s=0.1)
    scenario = load_contingency_scenario(_scenario(events=[BASE["events"][0], short]))
    metrics = simulate_case(scenario, "trip").metrics
    assert _buses_below(metrics, "uv2_v_pu")
    assert metrics["n_vehicles_tripped"] == 0
    assert metrics["fleet_tripped_mw"] == 0.0


def test_momentary_cessation_stops_and_resumes_per_bus():
    """With momentary cessation at 0.5 pu (IEEE 1547 Category III) the vehicles on buses
    below it inject nothing during the fault and resume after clearing, without tripping: the
    injection the swing model sees drops by the reported ceased MW during the fault and comes
    back after it (case none: no frequency response on top)."""
    data = _scenario()
    data["fleet"]["control"]["trip"] = {"mc_low_v_pu": 0.5}
    scenario = load_contingency_scenario(data)
    result = simulate_case(scenario, "none")
    metrics = result.metrics
    below = _buses_below(metrics, "mc_low_v_pu")
    assert below and len(below) < len(metrics["faults"][0]["buses"])
    assert metrics["n_vehicles_tripped"] == 0
    ceased = metrics["fleet_ceased_mw"]
    assert ceased > 0
    t = result.t_s  # after the event (at the fault's start)
    during = (t >= 0.0) & (t < 0.25 - 1e-9)
    before = t < -1e-9
    p_before = float(result.p_fleet_mw[before][-1])
    drop = p_before - result.p_fleet_mw[during]
    # the injection change of the ceased units is the whole drop (to 1e-6 MW)
    assert np.max(np.abs(drop - ceased)) < 1e-6 * max(1.0, ceased)
    # recovered after clearing: back to the pre-fault injection within 2 % of the ceased power
    after = t > 1.0
    assert np.max(np.abs(result.p_fleet_mw[after] - p_before)) < 0.02 * ceased


def test_staggered_against_simultaneous_with_fault_sags():
    """Same vehicles and MW tripped by the fault sag; simultaneous disconnection on top of the
    generation loss gives the deeper nadir, the staggered ramp not deeper than it."""
    out = run_contingency_study(_scenario(), cases="trip,staggered")
    trip, staggered = out["cases"]
    assert trip["fleet_tripped_mw"] == pytest.approx(staggered["fleet_tripped_mw"])
    assert trip["n_vehicles_tripped"] == staggered["n_vehicles_tripped"] > 0
    assert staggered["f_nadir_hz"] >= trip["f_nadir_hz"]
    for case in (trip, staggered):
        assert case["faults"][0]["vm_min_pu"] < 0.5
    # the violation record names the trip (MW, vehicles)
    names = [v["limit"] for v in out["violations"]]
    assert any("1547" in n for n in names)


@pytest.mark.parametrize(
    "change,message",
    [
        ({"contingency__sag_vm_pu": 0.45}, "sag_vm_pu: a scaled sag and a 'fault'"),
        ({"events": [BASE["events"][0], dict(FAULT, bus=99)]}, "events[1].bus: 99 is not"),
        ({"events": [BASE["events"][0], {k: v for k, v in FAULT.items() if k != "s_sc_mva"}]},
         "ext_grid.s_sc_max_mva"),
        ({"events": [BASE["events"][0], dict(FAULT, r_fault_pu=0.1)]}, "not both"),
        ({"events": [BASE["events"][0], {k: v for k, v in FAULT.items() if k != "duration_s"}]},
         "events[1].duration_s: missing"),
        ({"events": [dict(BASE["events"][0], bus=3), FAULT]},
         "events[0].bus: only a 'fault' event"),
        ({"events": [BASE["events"][0], FAULT, dict(FAULT, t_s=0.6)]},
         "one fault at a time"),
        ({"events": [BASE["events"][0], dict(FAULT, duration_s=-1.0)]},
         "events[1].duration_s"),
    ],
)  # fmt: skip
def test_bad_fault_events_are_reported(change, message):
    with pytest.raises(ScenarioError) as err:
        load_contingency_scenario(_scenario(**change))
    assert message in str(err.value)


def test_cli_fault_case(tmp_path, capsys):
    """``--fault BUS --fault-impedance-ohm R,X --fault-duration-s S`` adds the fault; the text
    output lists the buses below each threshold and the MW ceased / tripped."""
    import tomli_w

    data = _scenario(events=[BASE["events"][0]])
    path = tmp_path / "s.toml"
    path.write_bytes(tomli_w.dumps(data).encode())
    argv = ["contingency", "--scenario", str(path), "--compare", "trip", "--fault", "2",
            "--fault-impedance-ohm", "1,1", "--fault-duration-s", "0.25",
            "--fault-s-sc-mva", "100", "--fault-rx", "0.1"]  # fmt: skip
    assert main([*argv, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    (case,) = out["cases"]
    assert case["faults"][0]["bus"] == 2 and case["faults"][0]["t_s"] == 0.5
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "below uv2_v_pu = 0.5 pu" in text and "tripped (whole run)" in text
    assert main([*argv[:5], "--fault", "2"]) == 2
    assert "--fault-duration-s: missing" in capsys.readouterr().err
    assert main([*argv[:5], "--fault-duration-s", "0.2"]) == 2
    assert "only with --fault BUS" in capsys.readouterr().err
    # problems of the command line's fault name its options (not an events[] index)
    assert main(argv[:-4]) == 2  # no --fault-s-sc-mva / --fault-rx for case33bw
    err = capsys.readouterr().err
    assert "give --fault-s-sc-mva" in err and "give --fault-rx" in err
    bad_bus = [a if a != "2" else "99" for a in argv]
    assert main(bad_bus) == 2
    assert "--fault: 99 is not a bus of the feeder" in capsys.readouterr().err


def test_fault_problems_name_the_event_as_written():
    """Events are sorted by time when loaded; messages keep the file's position."""
    events = [dict(FAULT, t_s=1.0, bus=99), {"t_s": 0.5, "kind": "generation_loss", "p_mw": 220.0}]
    with pytest.raises(ScenarioError, match=r"events\[0\]\.bus: 99 is not a bus"):
        load_contingency_scenario(_scenario(events=events))
