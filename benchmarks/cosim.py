"""Co-simulation benchmark: mosaik overhead, speed against pandapower's time series, and a
100,000-vehicle frequency event.

1. **One year** (8,760 hourly steps) of ``case33bw`` with a seeded hourly load profile and a
   1,000-vehicle fleet (volt-var), run
   (a) as a plain Python loop over the physics (fleet -> fast AC power flow -> transformer
       thermal, the fleet seeing the previous hour's voltages: the coupling rules of the
       co-simulation), and
   (b) through mosaik (:func:`cosim.world.build_world` + ``BuiltWorld.run``, as
       :func:`cosim.world.run_scenario` runs it: in-process simulators, the feeder reading the
       load profile file itself, mosaik ``lazy_stepping=False``; no results file so that both
       do the same work).
   ``mosaik_overhead_frac = (t_b - t_a) / t_b`` (target <= 0.20), wall time.
   ``mosaik_overhead_frac_cpu`` is the same fraction from the process CPU time
   (``time.process_time``), less sensitive to other jobs on a shared machine; the
   ``*_all_s`` keys list every repetition's wall time.
2. pandapower's ``run_timeseries`` (``ConstControl`` over ``DFData``) on the same load profile
   **without** a fleet. ``ratio_vs_pandapower_timeseries = t_pandapower / t_b`` (target >= 10).
3. The **mosaik floor**: two no-op in-process simulators on the same coupling (the same
   per-bus dicts each way, the voltages time-shifted), hourly, with ``build_world``'s world
   options: what mosaik alone costs per step. ``mosaik_floor_ms_per_step``, and
   ``max_ratio_with_overhead_at_most_20pct = t_pandapower / (5 t_floor)``: since
   ``t_b - t_a >= t_floor``, an overhead fraction <= 0.20 needs ``t_b >= 5 t_floor``, so no
   run can have both that fraction and a ratio above this bound.
4. A **100,000-vehicle, 60-s frequency event** at 20-ms steps through mosaik: the fleet
   (frequency droop, spread over 32 buses, voltages 1.0 pu: 100,000 chargers do not fit on one
   distribution feeder, so no feeder is solved), the swing model and a 500 MW generation loss
   at 5 s; results are recorded. ``frequency_event_100k_s`` is its wall time (target < 30 s).

5. **Many feeders on one frequency**: 20 ``case33bw`` feeders (``[[feeders]]``), each with its
   own 1,000-vehicle fleet (frequency droop, seeds ``0..19``), one swing model, a 500 MW loss
   at 5 s, 60 s at 20-ms steps through mosaik (the feeder + fleet pairs in one in-process
   ``FeederGroupSim``; the feeders solve their AC power flow every second, quasi-static, the
   fleets and the frequency step every 20 ms); results recorded. ``many_feeders_event_s`` is
   its wall time end to end, set-up included (target < 120 s on 2 cores),
   ``many_feeders_event_cpu_s`` its process CPU time. Without ``--quick`` the same run with one
   FeederSim and one FleetSim per feeder (``feeder_groups = 0``) is timed too
   (``many_feeders_ungrouped_s``, ``..._cpu_s``, ``many_feeders_grouping_speedup`` from the CPU
   times). Baselines in the same run: the direct loop of
   :mod:`studies.multi_feeder` on the same feeders and fleets (``droop`` case, the feeders'
   AC power flow every second; fleets dispatched at half their headroom, so not the same
   numbers): ``many_feeders_direct_s`` with the fleets stepped as one vectorised fleet,
   ``many_feeders_direct_loop_s`` with one fleet per feeder;
   ``many_feeders_vectorised_speedup = loop / vectorised`` and
   ``many_feeders_mosaik_over_direct = mosaik / vectorised``.

One-off set-up (imports, pandapower/numba JIT compilation, loading the feeder, building the
fleet and the solvers, building the mosaik world) is excluded: a warm-up run precedes the timed
ones, and (a), (b) and pandapower are timed over their time loops only. The frequency event is
timed end to end (set-up included, with a results file). The machine may be shared: every
measurement is repeated ``--repeat`` times ((a), (b), pandapower and the floor in the same
round) and the fastest is kept.
``--quick`` times 30 days (720 hourly steps) instead of a year and 10,000 vehicles for the
event, and says so; the many-feeder event is the same in both (one repetition with
``--quick``).

Usage: ``python benchmarks/cosim.py [--quick] [--json]``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
import warnings
from pathlib import Path

import mosaik_api_v3
import numpy as np

# This script is named like the package it benchmarks: keep its folder off the import path so
# that ``import cosim`` finds the package, not this file.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

N_HOURS = 8760
N_VEHICLES = 1000
N_EVENT_VEHICLES = 100_000
N_FEEDERS = 20
N_FEEDER_VEHICLES = 1000


def hourly_load_pu(n_hours: int, *, seed: int = 0) -> np.ndarray:
    """Hourly load multiplier: daily shape x seasonal factor x 3 % noise (seeded)."""
    rng = np.random.default_rng(seed)
    h = np.arange(n_hours)
    hod = h % 24
    daily = (
        0.45
        + 0.35 * np.exp(-(((hod - 8.0) / 2.0) ** 2))
        + 0.55 * np.exp(-(((hod - 19.0) / 2.5) ** 2))
    )
    seasonal = 1.0 + 0.15 * np.cos(2 * np.pi * h / 8760.0)
    return np.round(daily * seasonal * (1.0 + 0.03 * rng.standard_normal(n_hours)), 6)


def year_scenario(profile_csv: Path, n_hours: int, n_vehicles: int) -> dict:
    return {
        "simulation": {"duration_s": n_hours * 3600.0, "step_s": 3600.0, "seed": 0},
        "feeder": {"name": "case33bw", "method": "ac", "load_profile": str(profile_csv)},
        "fleet": {
            "n_vehicles": n_vehicles,
            "preset": "home",
            "policy": "uniform",
            "control": {"functions": ["volt_var"]},
        },
    }


def plain_loop(load_pu: np.ndarray, n_vehicles: int) -> tuple[float, dict]:
    """The year as a plain loop over the physics; returns (wall time [s], summary)."""
    from grids.feeders import load_feeder
    from grids.powerflow import ACPowerFlow, prepare_net
    from grids.thermal import CoolingMode, ThermalParameters, TransformerThermalModel
    from vehicle_models.fleet import ChargingPolicy, Fleet, FleetPreset
    from vehicle_models.settings import InverterSettings

    buses = np.array(sorted(int(b) for b in load_feeder("case33bw").load.bus.unique()))
    settings = InverterSettings.from_dict({"functions": ["volt_var"]})
    pf = ACPowerFlow(prepare_net("case33bw"))
    base_p, base_q = pf.base_injection()
    pos = np.array([int(np.flatnonzero(pf.bus == b)[0]) for b in buses])
    fleet = Fleet.sample(
        n_vehicles,
        buses=buses,
        preset=FleetPreset.HOME,
        policy=ChargingPolicy.UNIFORM,
        seed=0,
        settings=settings,
    )
    fleet_pos = np.array([int(np.flatnonzero(pf.bus == b)[0]) for b in fleet.buses])
    thermal = None
    vm_seen = np.ones(len(fleet.buses))
    min_vm = np.inf
    max_hot = -np.inf
    del pos
    t0 = time.perf_counter()  # set-up (feeder, solver, fleet sampling) excluded, as in (b)
    c0 = time.process_time()
    for k, scale in enumerate(load_pu):
        r = fleet.step(t_s=k * 3600.0, dt_s=3600.0, vm_pu=vm_seen, f_hz=60.0)
        p = base_p * scale
        q = base_q * scale
        np.add.at(p, fleet_pos, r.p_mw)
        np.add.at(q, fleet_pos, r.q_mvar)
        ac = pf.solve(p, q)
        vm = ac.vm_pu[0]
        load = float(np.hypot(ac.p_slack_mw[0], ac.q_slack_mvar[0])) / 5.0
        if thermal is None:
            thermal = TransformerThermalModel(
                ThermalParameters.for_cooling(CoolingMode.ONAN), n=1, load_pu0=load, ambient_c0=20
            )
        max_hot = max(max_hot, float(thermal.hot_spot_c[0]))
        thermal.step(load_pu=np.array([load]), ambient_c=np.array([20.0]), dt_s=3600.0)
        vm_seen = vm[fleet_pos]
        min_vm = min(min_vm, float(vm.min()))
    wall = time.perf_counter() - t0
    cpu = time.process_time() - c0
    return wall, {"min_vm_pu": min_vm, "max_hot_spot_c": max_hot, "cpu_s": cpu}


def mosaik_run(scenario_dict: dict, base_dir: Path) -> tuple[float, dict]:
    """Build the world (set-up, not timed), then time ``world.run`` over all steps."""
    from cosim.scenario import load_scenario
    from cosim.world import build_world

    scenario = load_scenario(scenario_dict, base_dir=base_dir)
    with tempfile.TemporaryDirectory() as out:
        built = build_world(scenario, out, record=False)
        t0 = time.perf_counter()
        c0 = time.process_time()
        built.run()  # mosaik World.run with cosim.world.RUN_OPTIONS, as run_scenario does
        return time.perf_counter() - t0, {"cpu_s": time.process_time() - c0}


def pandapower_timeseries(load_pu: np.ndarray) -> float:
    """pandapower ``run_timeseries`` over the same hourly load multipliers (no fleet)."""
    import pandapower.control as control
    import pandapower.timeseries as ts
    import pandas as pd

    from grids.powerflow import prepare_net

    net = prepare_net("case33bw")
    p0 = net.load.p_mw.to_numpy()
    q0 = net.load.q_mvar.to_numpy()
    n = len(load_pu)
    df_p = pd.DataFrame(np.outer(load_pu, p0), columns=[f"p{i}" for i in range(len(p0))])
    df_q = pd.DataFrame(np.outer(load_pu, q0), columns=[f"q{i}" for i in range(len(q0))])
    ds = ts.DFData(pd.concat([df_p, df_q], axis=1))
    control.ConstControl(
        net,
        "load",
        "p_mw",
        element_index=net.load.index,
        data_source=ds,
        profile_name=list(df_p.columns),
    )
    control.ConstControl(
        net,
        "load",
        "q_mvar",
        element_index=net.load.index,
        data_source=ds,
        profile_name=list(df_q.columns),
    )
    ts.OutputWriter(net, output_path=None, output_file_type=".json")
    t0 = time.perf_counter()
    ts.run_timeseries(net, time_steps=range(n), verbose=False)
    return time.perf_counter() - t0


class _NoOpSim(mosaik_api_v3.Simulator):
    """A mosaik simulator that does nothing but exchange per-bus dicts (the mosaik floor)."""

    def __init__(self) -> None:
        attrs = ["bus_p_mw", "bus_q_mvar", "bus_vm_pu"]
        super().__init__(
            {"type": "time-based", "models": {"M": {"public": True, "params": [], "attrs": attrs}}}
        )
        self.keys = [str(b) for b in range(1, 33)]  # the 32 load buses of case33bw

    def init(self, sid, time_resolution=1.0, **sim_params):
        return self.meta

    def create(self, num, model, **model_params):
        return [{"eid": "e", "type": model}]

    def step(self, time, inputs, max_advance):
        return time + 3600

    def get_data(self, outputs):
        values = dict.fromkeys(self.keys, 1.0)
        return {eid: dict.fromkeys(attrs, values) for eid, attrs in outputs.items()}


def mosaik_floor(n_hours: int) -> float:
    """Wall time of mosaik alone on the same coupling: two no-op in-process simulators
    exchanging the same per-bus dicts as FleetSim -> FeederSim (``bus_p_mw``, ``bus_q_mvar``)
    and FeederSim -> FleetSim (``bus_vm_pu``, time-shifted), hourly, with the options of
    :func:`cosim.world.build_world` (no output cache, no greeting). No physics at all: the least
    any mosaik coupling of two simulators costs per step."""
    import mosaik

    world = mosaik.World(
        {"A": {"python": f"{__name__}:_NoOpSim"}, "B": {"python": f"{__name__}:_NoOpSim"}},
        cache=False,
        skip_greetings=True,
        configure_logging=False,
    )
    fleet = world.start("A").M()
    feeder = world.start("B").M()
    world.connect(fleet, feeder, "bus_p_mw", "bus_q_mvar")
    world.connect(feeder, fleet, "bus_vm_pu", time_shifted=True, initial_data={"bus_vm_pu": {}})
    t0 = time.perf_counter()
    world.run(until=n_hours * 3600, lazy_stepping=False, print_progress=False)
    return time.perf_counter() - t0


def frequency_event(n_vehicles: int) -> tuple[float, dict]:
    """60 s at 20-ms steps, a 500 MW loss at 5 s, n vehicles with frequency droop."""
    data = {
        "simulation": {"duration_s": 60.0, "step_s": 0.02, "seed": 0},
        "fleet": {
            "n_vehicles": n_vehicles,
            "buses": list(range(1, 33)),
            "preset": "home",
            "policy": "uniform",
            "control": {"functions": ["freq_watt"]},
        },
        "frequency": {"f0_hz": 60.0, "s_base_mw": 10000.0, "h_s": 5.0},
        "events": [{"t_s": 5.0, "kind": "generation_loss", "p_mw": 500.0}],
    }
    from cosim.scenario import load_scenario
    from cosim.world import run_scenario

    scenario = load_scenario(data)
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        result = run_scenario(scenario, out, progress=False)
        wall = time.perf_counter() - t0
    return wall, {
        "f_nadir_hz": result.metrics["f_nadir_hz"],
        "max_fleet_export_mw": result.metrics["max_fleet_export_mw"],
    }


def many_feeders_data(n_feeders: int, n_vehicles: int, *, duration_s: float = 60.0) -> dict:
    """``n_feeders`` case33bw feeders with ``n_vehicles`` each (droop), a 500 MW loss at 5 s on
    10 GW, 20-ms steps; the feeders' power flow every second."""
    fleet = {
        "n_vehicles": n_vehicles,
        "preset": "home",
        "policy": "uniform",
        "control": {"functions": ["freq_watt"]},
    }
    return {
        "simulation": {"duration_s": duration_s, "step_s": 0.02, "seed": 0},
        "frequency": {"f0_hz": 60.0, "s_base_mw": 10000.0, "h_s": 5.0},
        "events": [{"t_s": min(5.0, duration_s / 2), "kind": "generation_loss", "p_mw": 500.0}],
        "feeders": [
            {"label": f"f{i}", "name": "case33bw", "step_s": 1.0, "fleet": fleet}
            for i in range(n_feeders)
        ],
        "contingency": {"feeder_step_s": 1.0, "time_of_day_h": 0.0},
    }


def many_feeders_event(
    n_feeders: int, n_vehicles: int, *, duration_s: float = 60.0, feeder_groups: int | None = None
):
    """Through mosaik, end to end with a results file: (wall [s], CPU [s], summary)."""
    from cosim.scenario import load_scenario
    from cosim.world import run_scenario

    data = many_feeders_data(n_feeders, n_vehicles, duration_s=duration_s)
    data.pop("contingency")
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        c0 = time.process_time()
        result = run_scenario(load_scenario(data), out, progress=False, feeder_groups=feeder_groups)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        metrics = result.metrics
    return wall, cpu, {"f_nadir_hz": metrics["f_nadir_hz"]}


def many_feeders_direct(n_feeders: int, n_vehicles: int, *, vectorised: bool) -> tuple[float, dict]:
    """The direct loop of studies.multi_feeder (droop case), end to end: (wall [s], summary)."""
    from studies.multi_feeder import load_multi_feeder_scenario, simulate_many_feeders

    t0 = time.perf_counter()
    scenario = load_multi_feeder_scenario(many_feeders_data(n_feeders, n_vehicles))
    result, _, _ = simulate_many_feeders(scenario, "droop", vectorised=vectorised)
    return time.perf_counter() - t0, {"f_nadir_hz": result.metrics["f_nadir_hz"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="30 days, 10,000-vehicle event")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument(
        "--repeat", type=int, default=3, help="repetitions; the fastest of each is kept (3)"
    )
    args = parser.parse_args(argv)
    repeat = max(1, args.repeat)
    logging.disable(logging.WARNING)
    warnings.simplefilter("ignore")

    n_hours = 720 if args.quick else N_HOURS
    n_event = 10_000 if args.quick else N_EVENT_VEHICLES
    load_pu = hourly_load_pu(n_hours)
    wall: dict[str, list[float]] = {"plain": [], "mosaik": [], "pandapower": [], "floor": []}
    cpu: dict[str, list[float]] = {"plain": [], "mosaik": []}
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "load.csv"
        csv.write_text(
            "t_s,load_pu\n" + "".join(f"{k * 3600},{v}\n" for k, v in enumerate(load_pu))
        )
        scen = year_scenario(csv, n_hours, N_VEHICLES)
        # warm-up: imports, numba/pandapower JIT, feeder loading (not timed)
        plain_loop(load_pu[:24], N_VEHICLES)
        mosaik_run(year_scenario(csv, 24, N_VEHICLES), Path(tmp))
        pandapower_timeseries(load_pu[:24])
        mosaik_floor(24)
        # rounds of (a), (b), pandapower and the mosaik floor, so that a busy (shared) machine
        # slows all of them alike; the fastest of each is kept
        for _ in range(repeat):
            t, plain_summary = plain_loop(load_pu, N_VEHICLES)
            wall["plain"].append(t)
            cpu["plain"].append(plain_summary["cpu_s"])
            t, mosaik_summary = mosaik_run(scen, Path(tmp))
            wall["mosaik"].append(t)
            cpu["mosaik"].append(mosaik_summary["cpu_s"])
            wall["pandapower"].append(pandapower_timeseries(load_pu))
            wall["floor"].append(mosaik_floor(n_hours))
    t_plain, t_mosaik = min(wall["plain"]), min(wall["mosaik"])
    t_pp, t_floor = min(wall["pandapower"]), min(wall["floor"])
    cpu_plain, cpu_mosaik = min(cpu["plain"]), min(cpu["mosaik"])
    frequency_event(1000)  # warm-up
    event_runs = [frequency_event(n_event) for _ in range(repeat)]
    t_event, event_summary = min(event_runs, key=lambda run: run[0])

    # many feeders: warm-up on a short run (imports, JIT), then the full event
    many_feeders_event(2, 100, duration_s=1.0)
    many_feeders_direct(2, 100, vectorised=True)
    many_repeat = 1 if args.quick else repeat
    many_runs = [many_feeders_event(N_FEEDERS, N_FEEDER_VEHICLES) for _ in range(many_repeat)]
    t_many, cpu_many, many_summary = min(many_runs, key=lambda run: run[0])
    direct_runs = [
        many_feeders_direct(N_FEEDERS, N_FEEDER_VEHICLES, vectorised=True)
        for _ in range(many_repeat)
    ]
    t_direct, direct_summary = min(direct_runs, key=lambda run: run[0])
    t_direct_loop = min(
        many_feeders_direct(N_FEEDERS, N_FEEDER_VEHICLES, vectorised=False)[0]
        for _ in range(many_repeat)
    )
    ungrouped = None
    if not args.quick:
        ungrouped = many_feeders_event(N_FEEDERS, N_FEEDER_VEHICLES, feeder_groups=0)

    # Overhead <= 20 % needs t_b >= (t_b - t_a) / 0.2 >= t_floor / 0.2: with mosaik's floor the
    # ratio against pandapower can then be at most t_pp / (5 t_floor).
    ratio_bound = t_pp / (t_floor / 0.20)
    result = {
        "quick": bool(args.quick),
        "repeat": repeat,
        "n_hours": n_hours,
        "n_vehicles": N_VEHICLES,
        "plain_loop_s": t_plain,
        "mosaik_s": t_mosaik,
        "pandapower_timeseries_s": t_pp,
        "mosaik_overhead_frac": (t_mosaik - t_plain) / t_mosaik,
        # the same fraction from the process CPU time (less sensitive to other jobs on a
        # shared machine; informative, the wall-time key above is the target's measure)
        "plain_loop_cpu_s": cpu_plain,
        "mosaik_cpu_s": cpu_mosaik,
        "mosaik_overhead_frac_cpu": (cpu_mosaik - cpu_plain) / cpu_mosaik,
        "mosaik_overhead_ms_per_step": (t_mosaik - t_plain) / n_hours * 1e3,
        "mosaik_floor_s": t_floor,
        "mosaik_floor_ms_per_step": t_floor / n_hours * 1e3,
        "max_ratio_with_overhead_at_most_20pct": ratio_bound,
        "plain_loop_all_s": wall["plain"],
        "mosaik_all_s": wall["mosaik"],
        "pandapower_all_s": wall["pandapower"],
        "ratio_vs_pandapower_timeseries": t_pp / t_mosaik,
        "frequency_event_vehicles": n_event,
        "frequency_event_100k_s": t_event,
        "frequency_event_f_nadir_hz": event_summary["f_nadir_hz"],
        "plain_loop_min_vm_pu": plain_summary["min_vm_pu"],
        "many_feeders": N_FEEDERS,
        "many_feeders_vehicles_each": N_FEEDER_VEHICLES,
        "many_feeders_event_s": t_many,
        "many_feeders_event_cpu_s": cpu_many,
        "many_feeders_event_all_s": [run[0] for run in many_runs],
        "many_feeders_f_nadir_hz": many_summary["f_nadir_hz"],
        "many_feeders_direct_s": t_direct,
        "many_feeders_direct_loop_s": t_direct_loop,
        "many_feeders_direct_f_nadir_hz": direct_summary["f_nadir_hz"],
        "many_feeders_vectorised_speedup": t_direct_loop / t_direct,
        "many_feeders_mosaik_over_direct": t_many / t_direct,
    }
    if ungrouped is not None:
        result["many_feeders_ungrouped_s"] = ungrouped[0]
        result["many_feeders_ungrouped_cpu_s"] = ungrouped[1]
        result["many_feeders_grouping_speedup"] = ungrouped[1] / cpu_many
    if args.json:
        json.dump(result, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    label = "30 days (--quick)" if args.quick else "one year"
    ms = 1e3 / n_hours
    print(f"{label}: {n_hours} hourly steps, case33bw + {N_VEHICLES} vehicles")
    print(f"  (a) plain loop over the physics   {t_plain:8.2f} s  ({t_plain * ms:.3f} ms/step)")
    print(f"  (b) through mosaik                {t_mosaik:8.2f} s  ({t_mosaik * ms:.3f} ms/step)")
    overhead = result["mosaik_overhead_frac"]
    print(f"  mosaik overhead fraction          {overhead:8.3f}  (target <= 0.20)")
    print(f"    (from process CPU time          {result['mosaik_overhead_frac_cpu']:8.3f})")
    print(f"  pandapower run_timeseries, no fleet {t_pp:6.2f} s  ({t_pp * ms:.3f} ms/step)")
    print(
        f"  ratio pandapower / mosaik run     {result['ratio_vs_pandapower_timeseries']:8.2f}x"
        " (target >= 10x)"
    )
    print(
        f"  mosaik floor (2 no-op simulators, same coupling) {t_floor * ms:.3f} ms/step: "
        f"overhead <= 20 % would need >= {5 * t_floor * ms:.3f} ms/step, i.e. a ratio <= "
        f"{ratio_bound:.1f}x against pandapower"
    )
    print(
        f"frequency event: {n_event} vehicles, 60 s at 20 ms: {t_event:.2f} s (target < 30 s); "
        f"nadir {event_summary['f_nadir_hz']:.4f} Hz"
    )
    print(
        f"many feeders: {N_FEEDERS} feeders x {N_FEEDER_VEHICLES} vehicles, 60 s at 20 ms "
        f"through mosaik: {t_many:.2f} s (CPU {cpu_many:.2f} s; target < 120 s); nadir "
        f"{many_summary['f_nadir_hz']:.4f} Hz"
    )
    print(
        f"  direct loop (studies.multi_feeder): vectorised {t_direct:.2f} s, one fleet per "
        f"feeder {t_direct_loop:.2f} s ({result['many_feeders_vectorised_speedup']:.2f}x); "
        f"mosaik / direct {result['many_feeders_mosaik_over_direct']:.2f}x"
    )
    if ungrouped is not None:
        print(
            f"  one FeederSim and one FleetSim per feeder: {ungrouped[0]:.2f} s (CPU "
            f"{ungrouped[1]:.2f} s); feeder groups {result['many_feeders_grouping_speedup']:.2f}x"
            " less CPU"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
