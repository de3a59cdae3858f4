"""``[fleet] adoption`` with ``source = "simbench"`` in a run: SimBench's EV charging profiles
become the adopted EVs' plug-in sessions.

References: the grid's own SimBench profiles (``simbench.get_absolute_values`` through
:func:`grids.simbench.simbench_profiles`) recomputed here step by step for the sessions'
bounds and energies, and the run's recorded fleet powers integrated per bus (rectangle rule
over the zero-order-hold steps) for the energy drawn.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from cosim.adoption_fleet import adoption_customers, adoption_fleet_table, resolve_adoption
from cosim.results import read_results
from cosim.scenario import load_scenario
from cosim.world import run_scenario
from grids.errors import ScenarioError
from grids.feeder_model import FeederModel
from grids.simbench import simbench_profiles
from vehicle_models.adoption import place_evs

CODE = "simbench:1-LV-rural1--2-sw"  # 2034 scenario: home charging points
START = "2016-03-01T00:00"
DURATION_S = 2 * 86400.0
STEP_S = 900.0


def _data(name: str = CODE, seed: int = 4, share: float = 0.5) -> dict:
    return {
        "simulation": {"duration_s": DURATION_S, "step_s": STEP_S, "seed": 3, "start": START},
        "feeder": {"name": name},
        "fleet": {
            "policy": "immediate",
            "control": {"functions": []},
            "adoption": {"share": share, "seed": seed, "source": "simbench"},
        },
    }


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One run (the SimBench grid is loaded once per module)."""
    out = tmp_path_factory.mktemp("adopt_sb")
    scenario = load_scenario(_data())
    result = run_scenario(scenario, out, progress=False)
    table = pd.read_csv(out / "fleet_adoption.csv")
    return scenario, result, table


@pytest.fixture(scope="module")
def demand(run):
    """Each adopted EV's profile over the window, recomputed from the grid's profiles [kW]:
    the placement's ``shape_u`` picks one of the non-zero per-bus EV profiles, normalised by
    its peak over the year and scaled to the charger."""
    scenario, _, _ = run
    model = FeederModel.from_name(CODE)
    year = simbench_profiles(model.net, model)
    window = year.window(START, DURATION_S)
    first = int(year.time.get_loc(window.time[0]))
    assert window.ev_p_mw is not None and window.time.size == round(DURATION_S / STEP_S)
    customers = adoption_customers(scenario.feeder)
    placed = place_evs(customers.bus, share=0.5, seed=4)
    peak = np.abs(year.ev_p_mw).max(axis=0)
    cols = np.flatnonzero(peak > 0)
    pick = cols[np.minimum((placed.shape_u * len(cols)).astype(int), len(cols) - 1)]
    rows = slice(first, first + window.time.size)
    window_kw = year.ev_p_mw[rows][:, pick] / peak[pick] * placed.charger_kw
    return {f"ev{int(c)}": window_kw[:, k] for k, c in enumerate(placed.customer)}


def test_sessions_are_the_profiles_non_zero_intervals_with_their_energy(run, demand):
    """Every row is one contiguous run of non-zero profile steps of its EV (zero just before
    arrival and at departure), its grid energy E_cap (soc_target - soc_arrival) / eta_charge
    equals the profile's energy in the interval (1e-9 relative), and each EV's sessions cover
    all of its profile's energy in the window."""
    _, _, table = run
    assert len(table) > 0
    assert table.vehicle_id.is_unique
    e_grid_kwh = table.e_capacity_kwh * (table.soc_target_frac - table.soc_arrival_frac)
    e_grid_kwh = e_grid_kwh / table.eta_charge
    covered = dict.fromkeys(demand, 0.0)
    for row, e_kwh in zip(table.itertuples(), e_grid_kwh, strict=True):
        ev = row.vehicle_id.rsplit("_s", 1)[0]
        p_kw = demand[ev]
        a, b = round(row.arrival_s / STEP_S), round(row.departure_s / STEP_S)
        assert b > a
        assert (p_kw[a:b] > 0).all()
        assert a == 0 or p_kw[a - 1] == 0
        assert b == p_kw.size or p_kw[b] == 0
        assert e_kwh == pytest.approx(p_kw[a:b].sum() * STEP_S / 3600.0, rel=1e-9)
        assert e_kwh <= row.p_charge_max_kw * (row.departure_s - row.arrival_s) / 3600.0
        covered[ev] += e_kwh
    for ev, p_kw in demand.items():
        assert covered[ev] == pytest.approx(p_kw.sum() * STEP_S / 3600.0, rel=1e-9, abs=1e-12)


def test_each_bus_draws_its_sessions_energy_in_the_run(run):
    """Unmanaged (``immediate``) charging, no inverter function: the energy the run's fleet
    draws at each bus (recorded powers integrated over the steps) equals the sum of its
    sessions' energies (1e-6 relative), and the run's total equals the table's."""
    _, result, table = run
    frame, _ = read_results(result.results_path)
    e_grid_kwh = table.e_capacity_kwh * (table.soc_target_frac - table.soc_arrival_frac)
    table = table.assign(e_kwh=e_grid_kwh / table.eta_charge)
    per_bus = table.groupby("bus").e_kwh.sum()
    drawn = {}
    for signal in frame.signal.cat.categories:
        match = re.fullmatch(r"FleetSim-\d+\.fleet\.bus_p_mw\[(.+)\]", signal)
        if match:
            values = frame.loc[frame.signal == signal].sort_values("t_s")
            t_s = values.t_s.to_numpy(float)
            assert np.allclose(np.diff(t_s), STEP_S)
            drawn[int(match.group(1))] = -values.value.to_numpy(float).sum() * STEP_S / 3600.0 * 1e3
    assert set(drawn) == set(per_bus.index)
    for bus, e_kwh in per_bus.items():
        assert drawn[bus] == pytest.approx(e_kwh, rel=1e-6)
    assert result.metrics["fleet_e_charged_kwh"] == pytest.approx(per_bus.sum(), rel=1e-6)


def test_the_same_seed_gives_the_same_table_and_another_seed_another(run):
    _, _, table = run
    scenario = load_scenario(_data())
    again = adoption_fleet_table(scenario.feeder, scenario.fleet, scenario.simulation)
    pd.testing.assert_frame_equal(again.reset_index(drop=True), table, check_dtype=False)
    other = load_scenario(_data(seed=5))
    different = adoption_fleet_table(other.feeder, other.fleet, other.simulation)
    assert not different.equals(again)


def test_a_simbench_grid_without_ev_profiles_is_refused_naming_the_key(tmp_path):
    """The 2016 scenario (``--0-``) has no EV charging point."""
    scenario = load_scenario(_data("simbench:1-LV-rural1--0-sw"))
    with pytest.raises(ScenarioError, match=r"fleet\.adoption\.source: 'simbench'.*has none"):
        resolve_adoption(scenario, tmp_path)


def test_adopted_fleet_replaces_the_grids_own_ev_charging_points():
    """With ``replace_ev_loads`` (set by the world for ``source = "simbench"``) the feeder
    solves its year without the SimBench EV loads' demand: the recorded voltages equal the
    feeder model solved with ``FeederProfiles.without_ev()`` at a step where the EV loads
    charge (1e-9 pu), and differ from the profiles with them."""
    import numpy as np

    from cosim.simulators import FeederSim
    from grids.feeder_model import FeederModel
    from grids.simbench import simbench_profiles

    model = FeederModel.from_name(CODE)
    profiles = simbench_profiles(model.net, model).window("2016-03-01T00:00:00+01:00")
    row = int(np.argmax(profiles.ev_p_mw.sum(axis=1)[:96]))  # the first day's EV peak
    assert profiles.ev_p_mw[row].sum() > 0
    without = profiles.without_ev()
    assert without.ev_p_mw is None
    np.testing.assert_allclose(without.p_mw - profiles.p_mw, profiles.ev_p_mw, atol=0)
    vm = {}
    for replace in (True, False):
        sim = FeederSim()
        sim.init("Feeder-0", time_resolution=900.0, step_size=1)
        sim.create(
            1, "Grid", feeder=CODE, start="2016-03-01T00:00:00+01:00", replace_ev_loads=replace
        )
        sim.step(row, {}, row + 1)
        vm[replace] = sim.get_data({"grid": ["vm_min_pu", "bus_vm_pu"]})["grid"]
    ref = model.solve(without.p_mw[row], without.q_mvar[row])
    got = np.array([vm[True]["bus_vm_pu"][str(int(b))] for b in model.bus])
    assert np.nanmax(np.abs(got - ref.vm_pu[0])) < 1e-9
    assert vm[True]["vm_min_pu"] > vm[False]["vm_min_pu"] + 1e-6
