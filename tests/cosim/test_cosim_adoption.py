"""``[fleet] adoption`` in a co-simulation run: the adopted EVs are the run's fleet.

References: the feeder's own load table (pandapower ``net.load``; the OpenDSS loads of the
three-phase engine, whose phases come from each load's nodes) for where EVs may sit, the
binomial distribution (scipy) for the drawn V2G share, IEC 61851-1 for the charger ratings.
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binom

from cosim.adoption_fleet import SINGLE_PHASE_MAX_KW, adoption_fleet_table, resolve_adoption
from cosim.cli import main
from cosim.results import read_results
from cosim.scenario import load_scenario
from cosim.world import run_scenario
from grids.errors import ScenarioError
from grids.feeder3ph import DSS_DIR, ThreePhaseFeederModel
from grids.feeders import load_feeder
from vehicle_models.adoption import CHARGER_RATINGS_KW, AdoptionSource

IEEE13 = DSS_DIR / "ieee13" / "Master.dss"


def _data(feeder: dict, duration_s: float = 3600.0, **adoption) -> dict:
    return {
        "simulation": {"duration_s": duration_s, "step_s": 900.0, "seed": 3},
        "feeder": feeder,
        "fleet": {
            "policy": "immediate",
            "adoption": {"share": 1.0, "seed": 4, "source": "behaviour", **adoption},
        },
    }


def _fleet_keys(frame: pd.DataFrame) -> set[str]:
    """Keys of the fleet's recorded per-bus (per-connection) powers ``fleet.bus_p_mw[key]``."""
    keys = set()
    for signal in frame.signal.cat.categories:
        match = re.fullmatch(r"FleetSim-\d+\.fleet\.bus_p_mw\[(.+)\]", signal)
        if match:
            keys.add(match.group(1))
    return keys


def test_a_run_with_adoption_puts_the_evs_at_the_loads_and_charges_them(tmp_path):
    """case33bw, behaviour, share 0.5 over two days (no inverter function): round(0.5 n_load)
    EVs, every one at a bus with a load of pandapower's own load table, one per customer; the
    run's fleet is the table's (its recorded buses); unmanaged charging from arrival draws from
    the grid exactly the closed form sum(E_cap (soc_target - soc_arrival) / eta_charge) of the
    table's sessions (every dwell is long enough), loses the difference to the battery energy,
    and never imports more than the sum of the charger ratings."""
    data = _data({"name": "case33bw"}, 2 * 86400.0, share=0.5, v2g_share=0.5)
    data["fleet"]["control"] = {"functions": []}
    scenario = load_scenario(data)
    result = run_scenario(scenario, tmp_path, progress=False)
    table = pd.read_csv(tmp_path / "fleet_adoption.csv")
    net = load_feeder("case33bw")
    load_buses = net.load.bus.to_numpy(int)
    assert len(table) == round(0.5 * len(load_buses))
    assert set(table.bus) <= set(load_buses.tolist())
    assert table.vehicle_id.is_unique
    assert set(table.p_charge_max_kw) <= set(CHARGER_RATINGS_KW)
    frame, _ = read_results(result.results_path)
    assert _fleet_keys(frame) == {str(b) for b in table.bus}
    metrics = result.metrics
    e_battery_kwh = table.e_capacity_kwh * (table.soc_target_frac - table.soc_arrival_frac)
    dwell_h = (table.departure_s - table.arrival_s) / 3600.0
    assert (dwell_h * table.p_charge_max_kw * table.eta_charge > e_battery_kwh).all()
    e_grid_kwh = (e_battery_kwh / table.eta_charge).sum()
    assert metrics["fleet_e_charged_kwh"] == pytest.approx(e_grid_kwh, rel=1e-9)
    assert metrics["fleet_e_loss_kwh"] == pytest.approx(e_grid_kwh - e_battery_kwh.sum(), rel=1e-9)
    assert metrics["fleet_e_discharged_kwh"] == 0.0
    assert metrics["max_fleet_import_mw"] <= table.p_charge_max_kw.sum() / 1000.0 + 1e-12
    # the scenario as given keeps its adoption; the run's fleet got the table
    assert result.scenario.fleet.adoption is not None


def test_the_v2g_share_is_drawn_within_binomial_bounds_and_others_are_charge_only():
    """Over 20 seeds at share 1 (every load of case33bw), the number of V2G chargers is
    Binomial(n, v2g_share): inside its 1e-6 / 1 - 1e-6 quantiles; V2G chargers may discharge
    at their rating, the others not at all."""
    v2g_share = 0.3
    n_v2g, n = 0, 0
    for seed in range(20):
        scenario = load_scenario(_data({"name": "case33bw"}, seed=seed, v2g_share=v2g_share))
        table = adoption_fleet_table(scenario.feeder, scenario.fleet)
        v2g = table.p_discharge_max_kw > 0
        assert np.array_equal(table.p_discharge_max_kw[v2g], table.p_charge_max_kw[v2g])
        assert (table.p_discharge_max_kw[~v2g] == 0).all()
        n_v2g += int(v2g.sum())
        n += len(table)
    lo, hi = binom.ppf([1e-6, 1 - 1e-6], n, v2g_share)
    assert lo <= n_v2g <= hi


def test_the_same_seed_gives_the_same_fleet_and_another_seed_another():
    """Seeded: the same adoption gives an identical table, another seed other customers."""
    one = load_scenario(_data({"name": "case33bw"}, share=0.4, seed=7))
    other = load_scenario(_data({"name": "case33bw"}, share=0.4, seed=8))
    first = adoption_fleet_table(one.feeder, one.fleet)
    pd.testing.assert_frame_equal(first, adoption_fleet_table(one.feeder, one.fleet))
    second = adoption_fleet_table(other.feeder, other.fleet)
    assert len(first) == len(second)
    assert list(first.vehicle_id) != list(second.vehicle_id)


def test_on_ieee13_single_phase_chargers_sit_on_their_loads_phase(tmp_path):
    """ieee13 (three-phase engine), share 1: each EV ``ev<k>`` belongs to the k-th load with
    demand; a charger up to 7.4 kW is on one of its load's phases (the load's only phase for a
    single-phase load), an 11/22 kW charger is ``abc`` and only at a three-phase bus; the run
    records exactly the table's bus.phase connections."""
    model = ThreePhaseFeederModel.from_name(str(IEEE13))
    customers = [i for i in range(len(model.load_names)) if model.load_p_kw[i] > 0]
    scenario = load_scenario(_data({"path": str(IEEE13)}, v2g_share=0.5))
    result = run_scenario(scenario, tmp_path, progress=False)
    table = pd.read_csv(tmp_path / "fleet_adoption.csv", dtype={"bus": str})
    assert len(table) == len(customers)
    n_single = 0
    for row in table.itertuples():
        load = customers[int(row.vehicle_id.removeprefix("ev"))]
        assert row.bus == model.load_bus[load]
        load_phases = {"abc"[model.node_phase[n] - 1] for n in model.load_nodes[load] if n >= 0}
        nodes = zip(model.node_bus, model.node_phase, strict=True)
        bus_phases = {"abc"[p - 1] for b, p in nodes if b == row.bus}
        if row.phase == "abc":
            assert row.p_charge_max_kw in (11.0, 22.0) and bus_phases == set("abc")
        else:
            n_single += 1
            assert row.p_charge_max_kw <= SINGLE_PHASE_MAX_KW
            assert row.phase in load_phases
    assert n_single > 0
    frame, _ = read_results(result.results_path)
    assert _fleet_keys(frame) == {f"{r.bus}.{r.phase}" for r in table.itertuples()}


def test_n_vehicles_buses_or_phase_keys_with_adoption_are_refused():
    """The adopted EVs are the fleet: ``n_vehicles``, ``buses`` or (three-phase) a charger
    connection beside it is an error naming the key."""
    data = _data({"name": "case33bw"})
    data["fleet"]["n_vehicles"] = 10
    with pytest.raises(ScenarioError, match=r"fleet\.n_vehicles: not with fleet\.adoption"):
        load_scenario(data)
    data["fleet"].pop("n_vehicles")
    data["fleet"]["buses"] = [3, 4]
    with pytest.raises(ScenarioError, match=r"fleet\.buses: not with fleet\.adoption"):
        load_scenario(data)
    data["fleet"].pop("buses")
    data["feeder"] = {"path": str(IEEE13)}
    data["fleet"]["charger_connection"] = "line_to_line"
    with pytest.raises(ScenarioError, match=r"fleet\.charger_connection: not with fleet\.ado"):
        load_scenario(data)


def test_each_of_several_feeders_gets_its_own_adopted_fleet(tmp_path):
    """``[[feeders]]``: each entry's adoption is written as ``fleet_adoption_<label>.csv`` and
    its fleet entity records exactly that table's buses (different seeds: other customers)."""

    def fleet(seed: int) -> dict:
        adoption = {"share": 0.5, "seed": seed, "source": "behaviour"}
        return {"policy": "immediate", "adoption": adoption}

    data = {
        "simulation": {"duration_s": 1800.0, "step_s": 900.0, "seed": 3},
        "feeders": [
            {"name": "case33bw", "label": "north", "fleet": fleet(1)},
            {"name": "case33bw", "label": "south", "fleet": fleet(2)},
        ],
    }
    result = run_scenario(load_scenario(data), tmp_path, progress=False)
    frame, meta = read_results(result.results_path)
    buses = {}
    for label in ("north", "south"):
        table = pd.read_csv(tmp_path / f"fleet_adoption_{label}.csv")
        buses[label] = {str(b) for b in table.bus}
        prefix = re.escape(meta["feeders"][label]["fleet"])
        recorded = {
            m.group(1)
            for s in frame.signal.cat.categories
            if (m := re.fullmatch(rf"{prefix}\.bus_p_mw\[(.+)\]", s))
        }
        assert recorded == buses[label]
    assert buses["north"] != buses["south"]


def test_a_run_refuses_the_simbench_source_naming_the_key(tmp_path):
    """``source = "simbench"`` on a feeder that is not a SimBench grid: the run names the key."""
    scenario = load_scenario(_data({"name": "case33bw"}))
    adoption = dataclasses.replace(scenario.fleet.adoption, source=AdoptionSource.SIMBENCH)
    fleet = dataclasses.replace(scenario.fleet, adoption=adoption)
    entry = dataclasses.replace(scenario.feeders[0], fleet=fleet)
    scenario = dataclasses.replace(scenario, fleet=fleet, feeders=(entry,))
    with pytest.raises(ScenarioError, match=r"fleet\.adoption\.source: 'simbench'"):
        resolve_adoption(scenario, tmp_path)


def test_a_share_with_no_ev_is_refused(tmp_path):
    """A share that rounds to no EV gives a run without a fleet: refused, naming the share."""
    scenario = load_scenario(_data({"name": "case33bw"}, share=0.01))
    with pytest.raises(ScenarioError, match=r"fleet\.adoption: share 0\.01 puts no EV"):
        resolve_adoption(scenario, tmp_path)


def test_run_command_with_adoption(tmp_path, capsys):
    """``v2g-cosim run`` on a TOML scenario with an adoption writes the fleet table next to
    the results and a fleet in the summary."""
    path = tmp_path / "adoption.toml"
    path.write_text(
        "[simulation]\nduration_s = 1800.0\nstep_s = 900.0\n"
        '[feeder]\nname = "case33bw"\n'
        '[fleet]\npolicy = "immediate"\n'
        'adoption = {share = 0.25, seed = 2, source = "behaviour", v2g_share = 0.2}\n'
    )
    assert main(["run", str(path), "--out", str(tmp_path / "out")]) == 0
    capsys.readouterr()
    table = pd.read_csv(tmp_path / "out" / "fleet_adoption.csv")
    assert len(table) == round(0.25 * len(load_feeder("case33bw").load))
