"""Co-simulation on a three-phase (OpenDSS) feeder with single-phase chargers.

The reference is the three-phase feeder model itself (:class:`grids.feeder3ph.
ThreePhaseFeederModel`, validated against OpenDSS in tests/grids): the injections the fleet
sent, placed on the nodes and phase pairs by this test's own mapping, solved directly, give the
voltages the co-simulation recorded (1e-6 pu).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cosim.cli import main
from cosim.results import read_results
from cosim.scenario import load_scenario
from cosim.world import run_scenario
from grids.errors import ScenarioError
from grids.feeder3ph import DSS_DIR, ThreePhaseFeederModel
from grids.limits import Limit
from grids.sequence import voltage_unbalance_factor_percent

IEEE13 = DSS_DIR / "ieee13" / "Master.dss"
PAIRS = {"ab": (1, 2), "bc": (2, 3), "ca": (3, 1)}


def _scenario(**fleet) -> dict:
    return {
        "simulation": {"duration_s": 3600.0, "step_s": 900.0, "seed": 3},
        # taps held as in the file: the reference below solves with the file's taps
        "feeder": {"path": str(IEEE13), "regulator_control": "fixed"},
        "fleet": {"n_vehicles": 120, "policy": "immediate", **fleet},
    }


def _signals(frame: pd.DataFrame, pattern: str) -> dict[str, pd.Series]:
    """Recorded per-connection values ``{key: series over t_s}`` of signals ``...name[key]``."""
    out = {}
    for signal in frame.signal.cat.categories:
        match = re.fullmatch(rf".*\.{pattern}\[(.+)\]", signal)
        if match:
            rows = frame[frame.signal == signal]
            out[match.group(1)] = pd.Series(rows.value.to_numpy(), index=rows.t_s.to_numpy())
    return out


def _direct_solve(model: ThreePhaseFeederModel, p: dict, q: dict, t_s: float):
    """The injections of one step, keyed ``bus.phase``, placed on nodes (line-to-neutral, a
    third per phase for ``abc``) and phase pairs (line-to-line) by hand, solved directly."""
    n_pair = len(model.delta_pairs)
    p_wye, q_wye = np.zeros(model.n_node), np.zeros(model.n_node)
    p_delta, q_delta = np.zeros(n_pair), np.zeros(n_pair)
    pair_index = {(b, frozenset((f, t))): k for k, (b, f, t) in enumerate(model.delta_pairs)}
    for key in p:
        bus, phase = key.rsplit(".", 1)
        pk, qk = p[key][t_s], q[key][t_s]
        if phase in PAIRS:
            k = pair_index[(bus, frozenset(PAIRS[phase]))]
            p_delta[k] += pk
            q_delta[k] += qk
        else:
            letters = "abc" if phase == "abc" else phase
            for letter in letters:
                node = model.node_index(bus, "abc".index(letter) + 1)
                p_wye[node] += pk / len(letters)
                q_wye[node] += qk / len(letters)
    return model.solve(p_wye_mw=p_wye, q_wye_mvar=q_wye, p_delta_mw=p_delta, q_delta_mvar=q_delta)


@pytest.mark.parametrize("connection", ["line_to_neutral", "line_to_line"])
def test_cosimulation_equals_the_direct_three_phase_solve(tmp_path, connection):
    """Vehicles balanced over the phases (round robin), volt-var on: at every feeder step the
    recorded phase voltages equal a direct solve with the fleet's recorded injections (1e-6
    pu), line-to-line connections read the line-to-line voltage, the per-connection powers add
    up to the fleet total, and the recorded VUF is that of the solved phasors."""
    data = _scenario(phase_allocation="round_robin", charger_connection=connection)
    if connection == "line_to_line":  # the buses with two phases or more
        data["fleet"]["buses"] = ["671", "675", "684", "645", "634", "692"]
    data["fleet"]["control"] = {"functions": ["volt_var"]}
    result = run_scenario(load_scenario(data), tmp_path, progress=False)
    frame = result.frame()
    p = _signals(frame, "bus_p_mw")
    q = _signals(frame, "bus_q_mvar")
    vm = _signals(frame, "bus_vm_pu")
    assert p and all(re.fullmatch(r".+\.(ab|bc|ca|a|b|c)", k) for k in p)
    assert all(k.rsplit(".", 1)[1] in PAIRS for k in p) == (connection == "line_to_line")
    total = frame[frame.signal.str.endswith("fleet.p_mw")].set_index("t_s").value
    np.testing.assert_allclose(sum(s for s in p.values()), total, rtol=1e-12)
    assert any((s != 0).any() for s in q.values())  # volt-var acted
    model = ThreePhaseFeederModel.from_dss(IEEE13)
    times = next(iter(vm.values())).index
    assert len(times) == 4
    worst = 0.0
    for t_s in times:
        res = _direct_solve(model, p, q, t_s)
        v = res.v_pu[0]
        for key, series in vm.items():
            bus, phase = key.rsplit(".", 1)
            if phase in PAIRS:
                a, b = (v[model.node_index(bus, k)] for k in PAIRS[phase])
                expected = abs(a - b) / np.sqrt(3)
            elif phase == "abc":
                expected = np.mean([abs(v[model.node_index(bus, k)]) for k in (1, 2, 3)])
            else:
                expected = abs(v[model.node_index(bus, "abc".index(phase) + 1)])
            worst = max(worst, abs(series[t_s] - expected))
        vuf = frame[frame.signal.str.endswith(".vuf_max_percent")].set_index("t_s").value
        v_abc = np.array([[v[model.node_index(b, k)] for k in (1, 2, 3)] for b in model.bus3])
        assert vuf[t_s] == pytest.approx(voltage_unbalance_factor_percent(v_abc).max(), abs=1e-9)
        trafo = frame[frame.signal.str.endswith(".max_trafo_loading_percent")].set_index("t_s")
        assert trafo.value[t_s] == pytest.approx(np.nanmax(res.trafo_loading_percent[0]), 1e-5)
    assert worst < 1e-6


def test_single_phase_worst_case_unbalances_more_than_round_robin(tmp_path):
    """The same fleet all on phase a (single-phase laterals on their own phase) gives a
    larger voltage unbalance and a lower phase-a minimum than spread round robin; the run
    reports the unbalance as a broken limit."""
    metrics, unbalance = {}, {}
    for policy in ("single_phase", "round_robin"):
        scenario = load_scenario(_scenario(phase_allocation=policy, n_vehicles=300))
        result = run_scenario(scenario, tmp_path / policy, progress=False)
        metrics[policy] = result.metrics
        unbalance[policy] = [
            v for v in result.violations if v.limit == Limit.VOLTAGE_UNBALANCE.value
        ]
    worst, spread = metrics["single_phase"], metrics["round_robin"]
    assert worst["max_vuf_percent"] > spread["max_vuf_percent"] + 0.2
    assert worst["min_vm_a_pu"] < spread["min_vm_a_pu"]
    # the run's violations name the bus of the largest VUF (EN 50160: 2 %)
    (found,) = unbalance["single_phase"]
    assert found.worst_value == pytest.approx(worst["max_vuf_percent"], rel=1e-12)
    assert found.limit_value == 2.0 and found.element.startswith("bus ")


def test_run_command_on_a_dss_scenario_end_to_end(tmp_path, capsys):
    """``v2g-cosim run`` on a scenario with ``feeder.path`` to a .dss file and a fleet table
    with a phase column: per-phase metrics and the VUF in the JSON summary."""
    table = tmp_path / "fleet.csv"
    rows = [
        ("671", "a"),
        ("671", "bc"),
        ("652", "a"),
        ("611", "c"),
        ("675", "abc"),
        ("684", "ca"),
    ]
    pd.DataFrame(
        {
            "bus": [b for b, _ in rows],
            "phase": [ph for _, ph in rows],
            "arrival_s": 0.0,
            "departure_s": 7200.0,
            "e_capacity_kwh": 60.0,
            "soc_arrival_frac": 0.3,
            "p_charge_max_kw": 11.0,
        }
    ).to_csv(table, index=False)
    path = tmp_path / "dss.toml"
    path.write_text(
        "[simulation]\nduration_s = 3600.0\nstep_s = 900.0\n"
        f'[feeder]\npath = "{IEEE13.as_posix()}"\n'
        '[fleet]\ntable = "fleet.csv"\npolicy = "immediate"\n'
        "[fleet.control]\nfunctions = []\n"
    )
    assert main(["run", str(path), "--out", str(tmp_path / "out"), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    metrics = summary["metrics"]
    for key in ("min_vm_a_pu", "max_vm_c_pu", "max_vuf_percent", "min_vm_pu"):
        assert np.isfinite(metrics[key])
    assert metrics["min_vm_pu"] == min(metrics[f"min_vm_{x}_pu"] for x in "abc")
    # no inverter function limits the chargers: 1 h at 11 kW each
    assert metrics["fleet_e_charged_kwh"] == pytest.approx(6 * 11.0, rel=1e-9)
    frame, _ = read_results(Path(summary["results"]))
    keys = set(_signals(frame, "bus_p_mw"))
    assert keys == {"671.a", "671.bc", "652.a", "611.c", "675.abc", "684.ca"}


def test_three_phase_scenario_errors_are_listed_together(tmp_path):
    table = tmp_path / "fleet.csv"
    pd.DataFrame(
        {
            "bus": ["652", "611", "684", "nowhere"],
            "phase": ["b", "c", "b", "a"],
            "arrival_s": 0.0,
            "departure_s": 3600.0,
            "e_capacity_kwh": 60.0,
            "soc_arrival_frac": 0.3,
            "p_charge_max_kw": 7.4,
        }
    ).to_csv(table, index=False)
    bad = {
        "simulation": {"duration_s": 3600.0, "step_s": 900.0},
        "feeder": {"name": "ieee13", "method": "lindistflow", "ext_grid_vm_pu": 1.02},
        "fleet": {"table": str(table)},
    }
    with pytest.raises(ScenarioError) as info:
        load_scenario(bad)
    text = str(info.value)
    assert "feeder.method: 'lindistflow' is not available on a three-phase feeder" in text
    assert "feeder.ext_grid_vm_pu" in text
    assert "row 4: bus ('nowhere') is not a bus of the feeder" in text
    # the names are right: every phase a bus lacks, in one error
    pd.read_csv(table).iloc[:3].to_csv(table, index=False)
    bad["feeder"] = {"name": "ieee13"}
    with pytest.raises(ScenarioError) as info:
        load_scenario(bad)
    problems = info.value.problems
    assert len(problems) == 2
    assert "bus 652 phase 'b', but the bus has phase(s) a" in problems[0]
    assert "bus 684 phase 'b', but the bus has phase(s) ac" in problems[1]
    # sampled three-phase chargers do not fit single-phase laterals; unknown bus names
    sampled = {
        "simulation": {"duration_s": 3600.0, "step_s": 900.0},
        "feeder": {"name": "ieee13"},
        "fleet": {
            "n_vehicles": 10,
            "buses": ["671", "652", "611", "999"],
            "charger_connection": "three_phase",
        },
    }
    with pytest.raises(ScenarioError) as info:
        load_scenario(sampled)
    text = str(info.value)
    assert "fleet.buses: 999 is not a bus of the feeder Master.dss" not in text
    assert "fleet.buses: 999 is not a bus of the feeder ieee13" in text
    assert "'three_phase' does not fit bus 652 (phase(s) a)" in text
    assert "'three_phase' does not fit bus 611 (phase(s) c)" in text
    # phases on a balanced feeder are refused
    balanced = {
        "simulation": {"duration_s": 3600.0, "step_s": 900.0},
        "feeder": {"name": "case33bw"},
        "fleet": {"n_vehicles": 10, "phase_allocation": "random"},
    }
    with pytest.raises(ScenarioError, match=r"fleet\.phase_allocation: applies to a three-phase"):
        load_scenario(balanced)


def test_fleet_in_its_own_process_gets_the_same_phases(tmp_path):
    """The fleet's three-phase parameters (bus names, phases per bus, allocation, connection)
    cross the process boundary as plain values: a fleet in its own process gives the same
    per-connection injections and voltages as in-process."""
    data = _scenario(phase_allocation="random", n_vehicles=60)
    data["simulation"]["duration_s"] = 1800.0
    frames = {}
    for remote in ("none", "fleet"):
        data["simulation"]["remote"] = remote
        result = run_scenario(load_scenario(data), tmp_path / remote, progress=False)
        frames[remote] = result.frame()
    local, remote = (_signals(frames[k], "bus_p_mw") for k in ("none", "fleet"))
    assert set(local) == set(remote) and len(local) > 3
    for key in local:
        np.testing.assert_array_equal(local[key].to_numpy(), remote[key].to_numpy())
    vm_local, vm_remote = (_signals(frames[k], "bus_vm_pu") for k in ("none", "fleet"))
    for key in vm_local:
        np.testing.assert_array_equal(vm_local[key].to_numpy(), vm_remote[key].to_numpy())


def test_phase_specs_cross_the_process_boundary_and_phases_need_a_three_phase_feeder(tmp_path):
    from cosim.scenario import FleetConfig
    from cosim.specs import from_params, to_params
    from vehicle_models.phases import ChargerConnection, PhaseAllocation

    data = _scenario(
        phase_allocation="single_phase", charger_connection="line_to_line", buses=["671", "675"]
    )
    scenario = load_scenario(data)
    assert scenario.feeder.three_phase
    fleet = scenario.fleet
    assert fleet.phase_allocation is PhaseAllocation.SINGLE_PHASE
    assert fleet.charger_connection is ChargerConnection.LINE_TO_LINE
    assert from_params(FleetConfig, json.loads(json.dumps(to_params(fleet)))) == fleet
    table = tmp_path / "fleet.csv"
    pd.DataFrame(
        {
            "bus": [3],
            "phase": ["a"],
            "arrival_s": 0.0,
            "departure_s": 3600.0,
            "e_capacity_kwh": 60.0,
            "soc_arrival_frac": 0.3,
            "p_charge_max_kw": 7.4,
        }
    ).to_csv(table, index=False)
    balanced = {
        "simulation": {"duration_s": 3600.0, "step_s": 900.0},
        "feeder": {"name": "case33bw"},
        "fleet": {"table": str(table)},
    }
    with pytest.raises(ScenarioError, match=r"fleet\.table: the column 'phase' applies to a"):
        load_scenario(balanced)


def test_fleet_simulator_reads_the_voltage_of_each_vehicles_own_connection():
    """FleetSim on a three-phase feeder: every connection of the fleet takes the value of its
    own key from the feeder's ``bus_vm_pu`` (and only that), and its outputs are keyed per
    connection."""
    from cosim.simulators import FleetSim
    from vehicle_models.phases import PHASES

    sim = FleetSim()
    sim.init("Fleet-0", time_resolution=900.0, step_size=1)
    sim.create(
        1,
        "Fleet",
        n_vehicles=90,
        buses=["671", "684", "652"],
        seed=2,
        policy="immediate",
        bus_names=["671", "684", "652"],
        bus_phases=[[1, 2, 3], [1, 3], [1]],
        phase_allocation="round_robin",
        charger_connection="line_to_neutral",
    )
    keys = ["671.a", "671.b", "671.c", "684.a", "684.c", "652.a"]
    # the feeder sends every connection of every bus (more keys than the fleet uses)
    sent = {k: 0.9 + 0.01 * i for i, k in enumerate(keys)}
    sent.update({"671.ab": 2.0, "671.abc": 2.0, "684.ca": 2.0, "675.a": 2.0})
    sim.step(0, {"fleet": {"bus_vm_pu": {"Feeder-0.grid": sent}}}, 10)
    np.testing.assert_allclose(sim.vm_pu, [sent[k] for k in keys])
    out = sim.get_data({"fleet": ["bus_p_mw", "p_mw"]})["fleet"]
    assert list(out["bus_p_mw"]) == keys
    assert sum(out["bus_p_mw"].values()) == pytest.approx(out["p_mw"], rel=1e-12)
    assert [PHASES[c].value for c in sim.fleet.phases] == ["a", "b", "c", "a", "c", "a"]


SPLIT_PHASE_DSS = """Clear
New Circuit.splitphase basekv=12.47 pu=1.0 phases=3 bus1=sourcebus MVAsc3=200 MVAsc1=210
New Linecode.lc nphases=3 r1=0.3 x1=0.6 r0=0.6 x0=1.2 units=km
New Line.feeder bus1=sourcebus bus2=pri phases=3 linecode=lc length=1 units=km
New Transformer.ct phases=1 windings=3 XHL=2.04 XHT=2.04 XLT=1.36 %noloadloss=0.2
~ buses=[pri.1 sec.1.0 sec.0.2] conns=[wye wye wye] kvs=[7.2 0.12 0.12] kvas=[50 50 50]
~ %Rs=[0.6 1.2 1.2]
New Load.house bus1=sec.1.2 phases=1 kv=0.24 kW=5 kvar=1 model=1
New Load.p3 bus1=pri phases=3 kv=12.47 kW=300 kvar=100 model=1
Set voltagebases=[12.47 0.208]
Calcvoltagebases
"""


def test_split_phase_service_line_to_line_voltage_is_on_its_own_base(tmp_path):
    """A 240 V charger across the two legs of a centre-tapped secondary (180° apart) sees
    ``|V1 - V2|`` in pu of twice the 120 V leg base (about 1 pu, not 2/sqrt(3) = 1.155), a
    charger across two phases of the three-phase primary the usual sqrt(3) base; its power
    goes on the phase pair and lowers both legs."""
    from cosim.simulators import ThreePhaseFeederSim

    path = tmp_path / "Master.dss"
    path.write_text(SPLIT_PHASE_DSS)
    model = ThreePhaseFeederModel.from_dss(path)
    v = model.solve().v_pu[0]
    leg1, leg2 = (v[model.node_index("sec", k)] for k in (1, 2))
    assert abs(abs(np.angle(leg1 / leg2, deg=True)) - 180.0) < 5.0  # the two legs
    sim = ThreePhaseFeederSim()
    sim.init("Feeder-0", time_resolution=900.0, step_size=1)
    sim.create(1, "Grid", feeder=str(path))
    sim.step(0, {}, 10)
    vm = sim.get_data({"grid": ["bus_vm_pu"]})["grid"]["bus_vm_pu"]
    assert vm["sec.ab"] == pytest.approx(abs(leg1 - leg2) / 2.0, rel=1e-9)
    assert 0.95 < vm["sec.ab"] < 1.05 and abs(vm["sec.ab"] - vm["sec.a"]) < 0.01
    pri = [v[model.node_index("pri", k)] for k in (1, 2)]
    assert vm["pri.ab"] == pytest.approx(abs(pri[0] - pri[1]) / np.sqrt(3), rel=1e-9)
    charger = {"Fleet-0.fleet": {"sec.ab": -0.0096}}  # 40 A at 240 V
    sim.step(1, {"grid": {"bus_p_mw": charger}}, 10)
    loaded = sim.get_data({"grid": ["bus_vm_pu", "p_extra_mw"]})["grid"]
    assert loaded["p_extra_mw"] == pytest.approx(-0.0096)
    for key in ("sec.a", "sec.b", "sec.ab"):
        assert loaded["bus_vm_pu"][key] < vm[key] - 1e-3


def test_regulators_act_in_time_as_the_tap_controller_driven_directly(tmp_path):
    """``regulator_control = "time"`` (the default): a load step from 0.8 to 1.3 moves the
    IEEE 13 regulators through OpenDSS's delay / tap-delay rules. The recorded voltages equal
    :class:`grids.regulation3ph.RegulatorTapController` driven directly with the same load
    multipliers (1e-9 pu), taps move (n_tap_changes > 0), and with ``"fixed"`` they do not."""
    from grids.regulation3ph import RegulatorTapController

    profile = tmp_path / "load.csv"
    profile.write_text("t_s,load_pu\n0,0.8\n1800,1.3\n")
    mults = {0.0: 0.8, 900.0: 0.8, 1800.0: 1.3, 2700.0: 1.3, 3600.0: 1.3, 4500.0: 1.3}
    runs = {}
    for control in ("time", "fixed"):
        data = {
            "simulation": {"duration_s": 5400.0, "step_s": 900.0, "seed": 1},
            "feeder": {
                "path": str(IEEE13),
                "load_profile": str(profile),
                "regulator_control": control,
            },
        }
        result = run_scenario(load_scenario(data), tmp_path / control, progress=False)
        runs[control] = result.frame()
    taps = runs["time"]
    changes = taps[taps.signal.str.endswith(".n_tap_changes")].value.to_numpy()
    assert changes[-1] > 0
    fixed = runs["fixed"]
    assert fixed[fixed.signal.str.endswith(".n_tap_changes")].value.max() == 0

    model = ThreePhaseFeederModel.from_name(str(IEEE13))
    controller = RegulatorTapController(model)
    recorded = _signals(taps, "bus_vm_pu")
    assert len([k for k in recorded if k.rsplit(".", 1)[1] in ("a", "b", "c")]) >= 30
    worst = 0.0
    for t_s, mult in mults.items():
        res = controller.step(time_s=t_s, load_mult=mult)
        for key, series in recorded.items():
            bus, phase = key.rsplit(".", 1)
            if phase not in ("a", "b", "c"):
                continue
            node = model.node_index(bus, "abc".index(phase) + 1)
            worst = max(worst, abs(series[t_s] - res.vm_pu[0, node]))
    assert worst < 1e-9
