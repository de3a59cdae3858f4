"""Time-series benchmark on SimBench grids: year-long power flow, V2G volt-var fleet, regional run.

One run, three figures, each against a baseline measured in the same run:

(a) ``ratio_vs_pandapower_timeseries`` -- a year (35,136 quarter hours) of the SimBench LV grid
    ``1-LV-rural1--2-sw`` with its own profiles: :func:`grids.timeseries_pf.solve_time_series`
    against pandapower ``run_timeseries`` with SimBench's ``ConstControl`` profiles on the same
    net. pandapower runs a window (192 steps, ``--quick`` 48) after a 4-step warm-up (its
    first call compiles numba kernels); its per-step time is extrapolated to the year (the
    output says so). The ratio is pandapower's per-step time over ours (target >= 20). Our
    voltages are compared with pandapower's on the window.
(b) ``mv_year_inverters_s`` -- a year of the SimBench MV grid ``1-MV-urban--1-sw`` with its
    profiles plus a V2G fleet of 1,200 vehicles (11 kVA chargers at the MV load buses, seeded)
    whose inverters follow the IEEE 1547 Category B volt-var curve with reactive priority
    (:func:`vehicle_models.controls.volt_var_q_pu`, :func:`limit_apparent_power`, vectorised
    over the vehicles), solved as a fixed point per chunk (target < 600 s on 2 cores). The
    fleet charges at night and exports at the evening peak. The baseline is the same year
    without the fleet. ``--quick`` runs four weeks and extrapolates to the year (said so).
(c) ``regional_parallel_efficiency`` -- the snapshot hosting-capacity study on the six
    SimBench LV grids of scenario 1 (``--quick``: four) through :func:`studies.regional.
    run_regional` with 1 and with 2 local workers: ``T1 / (2 T2)`` (target >= 0.8). The
    SimBench net cache is cleared before each run (every run reads its grids). The machine's
    own allowance is measured too: the same per-feeder calls in a bare 2-process pool.

BLAS runs with one thread (``OPENBLAS_NUM_THREADS=1`` unless already set).

Usage: ``python benchmarks/timeseries.py [--quick] [--json]``.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

# `python benchmarks/timeseries.py` puts benchmarks/ first on the path, where
# benchmarks/cosim.py would shadow the cosim package: import the project's packages instead.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import numpy as np  # noqa: E402

LV_CODE = "simbench:1-LV-rural1--2-sw"
MV_CODE = "simbench:1-MV-urban--1-sw"
N_VEHICLES = 1200
CHARGER_KVA = 11.0
REGIONAL_PATTERN = "simbench:1-LV-*--1-sw"


def bench_lv_year(*, quick: bool, log) -> dict:
    """(a) our year against pandapower run_timeseries (window, per step)."""
    import simbench as sb
    from pandapower.timeseries import OutputWriter, run_timeseries

    from grids.feeder_model import FeederModel
    from grids.simbench import simbench_profiles
    from grids.timeseries_pf import solve_time_series

    t0 = time.perf_counter()
    model = FeederModel.from_name(LV_CODE)
    profiles = simbench_profiles(model.net, model)
    model.prepare()
    setup_s = time.perf_counter() - t0
    log(f"(a) {LV_CODE}: {len(model.bus)} buses, set-up {setup_s:.1f} s")

    t0 = time.perf_counter()
    ours = solve_time_series(model, profiles)
    ours_s = time.perf_counter() - t0
    ours.raise_if_failed(label=LV_CODE)

    n_window = 48 if quick else 192
    first = 17_000  # a June week: PV, storage and EV charging all active
    steps = range(first, first + n_window)
    net = copy.deepcopy(model.net)
    sb.apply_const_controllers(
        net, sb.get_absolute_values(net, profiles_instead_of_study_cases=True)
    )
    options = {"calculate_voltage_angles": True, "tolerance_mva": 1e-9, "verbose": False}
    t0 = time.perf_counter()
    run_timeseries(net, time_steps=range(first, first + 4), **options)  # numba compile
    warm_up_s = time.perf_counter() - t0
    writer = OutputWriter(
        net, time_steps=steps, output_path=None, log_variables=[("res_bus", "vm_pu")]
    )
    t0 = time.perf_counter()
    run_timeseries(net, time_steps=steps, **options)
    pp_s = time.perf_counter() - t0
    reference = writer.output["res_bus.vm_pu"].loc[list(steps), list(model.bus)].to_numpy()
    error_pu = float(np.max(np.abs(ours.vm_pu[first : first + n_window] - reference)))
    per_step_ours_ms = ours_s / profiles.n_steps * 1e3
    per_step_pp_ms = pp_s / n_window * 1e3
    return {
        "lv_feeder": LV_CODE,
        "lv_steps": profiles.n_steps,
        "lv_year_s": ours_s,
        "lv_per_step_ms": per_step_ours_ms,
        "pandapower_window_steps": n_window,
        "pandapower_window_s": pp_s,
        "pandapower_warm_up_s": warm_up_s,
        "pandapower_per_step_ms": per_step_pp_ms,
        "pandapower_year_extrapolated_s": per_step_pp_ms * profiles.n_steps / 1e3,
        "ratio_vs_pandapower_timeseries": per_step_pp_ms / per_step_ours_ms,
        "max_vm_difference_pu": error_pu,
    }


def _fleet(model, profiles, *, seed: int = 0):
    """Vehicles at the MV load buses (weighted by the load's rating) and their P schedule."""
    net = model.net
    rng = np.random.default_rng(seed)
    loads = net.load[net.load.in_service]
    weight = loads.p_mw.to_numpy(float) / loads.p_mw.sum()
    position = {int(b): k for k, b in enumerate(model.bus)}
    load_bus = np.array([position[int(b)] for b in loads.bus])
    vehicle_bus = load_bus[rng.choice(len(loads), size=N_VEHICLES, p=weight)]
    # hours of the day (local time) of each step; per vehicle a shift of +-1 h
    hour = (profiles.time.hour + profiles.time.minute / 60.0).to_numpy(float)
    shift_h = rng.uniform(-1.0, 1.0, N_VEHICLES)
    return vehicle_bus, hour, shift_h


def _schedule_pu(hour: np.ndarray, shift_h: np.ndarray) -> np.ndarray:
    """(n_steps, n_vehicles) active power [pu of the charger]: export 0.6 pu at the evening
    peak (17-20 h), charge 0.6 pu at night (0-4 h), idle otherwise (injection positive)."""
    h = (hour[:, None] - shift_h[None, :]) % 24.0
    return np.where((h >= 17.0) & (h < 20.0), 0.6, 0.0) - np.where(h < 4.0, 0.6, 0.0)


def bench_mv_inverters(*, quick: bool, log) -> dict:
    """(b) a year of an MV grid with 1,200 volt-var V2G inverters (fixed point per chunk)."""
    from grids.feeder_model import FeederModel
    from grids.simbench import simbench_profiles
    from grids.timeseries_pf import solve_time_series
    from vehicle_models.controls import limit_apparent_power, volt_var_q_pu
    from vehicle_models.settings import Priority, VoltVarSettings

    t0 = time.perf_counter()
    model = FeederModel.from_name(MV_CODE)
    profiles = simbench_profiles(model.net, model)
    model.prepare()
    setup_s = time.perf_counter() - t0
    if quick:
        profiles = profiles.window("2016-06-01", 28 * 86_400)
    vehicle_bus, hour, shift_h = _fleet(model, profiles)
    settings = VoltVarSettings.defaults()
    s_mva = CHARGER_KVA / 1e3
    n_bus = len(model.bus)
    log(
        f"(b) {MV_CODE}: {n_bus} buses, {N_VEHICLES} V2G inverters, {profiles.n_steps} steps, "
        f"set-up {setup_s:.1f} s"
    )

    def volt_var_fleet(rows: slice, vm_pu: np.ndarray):
        p_pu = _schedule_pu(hour[rows], shift_h)  # (n_chunk, n_vehicles)
        q_pu = volt_var_q_pu(vm_pu[:, vehicle_bus], settings)
        p_pu, q_pu = limit_apparent_power(p_pu, q_pu, priority=Priority.REACTIVE)
        p = np.zeros((vm_pu.shape[0], n_bus))
        q = np.zeros((vm_pu.shape[0], n_bus))
        for k in range(vm_pu.shape[0]):  # per step: sum the vehicles of each bus
            p[k] = np.bincount(vehicle_bus, weights=p_pu[k], minlength=n_bus)
            q[k] = np.bincount(vehicle_bus, weights=q_pu[k], minlength=n_bus)
        return p * s_mva, q * s_mva

    t0 = time.perf_counter()
    base = solve_time_series(model, profiles)
    base_s = time.perf_counter() - t0
    done = []
    t0 = time.perf_counter()
    with_fleet = solve_time_series(
        model,
        profiles,
        response=volt_var_fleet,
        response_tolerance_pu=1e-6,
        progress=lambda k, n: done.append(k),
    )
    fleet_s = time.perf_counter() - t0
    with_fleet.raise_if_failed(label=MV_CODE)
    # the fixed point holds: the inverters' Q equals the curve at the final voltages
    _, q_check = volt_var_fleet(slice(0, profiles.n_steps), with_fleet.vm_pu)
    q_residual_mvar = float(np.max(np.abs(q_check - with_fleet.response_q_mvar)))
    scale = 35_136 / profiles.n_steps
    return {
        "mv_feeder": MV_CODE,
        "mv_buses": n_bus,
        "mv_inverters": N_VEHICLES,
        "mv_steps": profiles.n_steps,
        "mv_year_extrapolated": quick,
        "mv_no_fleet_s": base_s * scale,
        "mv_year_inverters_s": fleet_s * scale,
        "mv_measured_s": fleet_s,
        "mv_fixed_point_iterations_mean": float(np.mean(with_fleet.response_iterations)),
        "mv_fixed_point_converged_share": float(np.mean(with_fleet.response_converged)),
        "mv_fixed_point_q_residual_mvar": q_residual_mvar,
        "mv_fleet_q_min_mvar": float(with_fleet.response_q_mvar.sum(axis=1).min()),
        "mv_vm_max_change_pu": float(np.nanmax(np.abs(with_fleet.vm_pu - base.vm_pu))),
    }


def _bare_feeder(feeder: str, options: dict) -> float:
    from grids.simbench import clear_simbench_cache
    from studies.regional import run_feeder

    clear_simbench_cache()
    t0 = time.perf_counter()
    run_feeder(feeder, options)
    return time.perf_counter() - t0


def bench_regional(*, quick: bool, log) -> dict:
    """(c) a regional run with 1 and 2 local workers."""
    import multiprocessing as mp

    from grids.simbench import clear_simbench_cache, simbench_codes
    from studies.regional import RegionalOptions, run_regional

    feeders = ["simbench:" + c for c in simbench_codes(pattern=REGIONAL_PATTERN)]
    if quick:
        feeders = feeders[:4]
    options = RegionalOptions()
    log(f"(c) regional: {len(feeders)} feeders, snapshot hosting capacity, 1 then 2 workers")
    # warm-up (imports, compiled kernels) on a feeder outside the measured set
    run_regional(["case33bw"], options, tempfile.mkdtemp(), workers=1, progress=False, report=False)
    walls = {}
    for workers in (1, 2):
        clear_simbench_cache()
        out = tempfile.mkdtemp(prefix=f"regional{workers}_")
        t0 = time.perf_counter()
        summary = run_regional(feeders, options, out, workers=workers, progress=False, report=False)
        walls[workers] = time.perf_counter() - t0
        if summary.n_failed:
            raise SystemExit(f"regional benchmark: {summary.n_failed} feeders failed in {out}")
    doc = options.to_json()
    clear_simbench_cache()
    t0 = time.perf_counter()
    with mp.get_context("fork").Pool(2) as pool:
        pool.starmap(_bare_feeder, [(f, doc) for f in feeders])
    bare_pool_s = time.perf_counter() - t0
    return {
        "regional_feeders": len(feeders),
        "regional_1_worker_s": walls[1],
        "regional_2_workers_s": walls[2],
        "regional_parallel_efficiency": walls[1] / (2.0 * walls[2]),
        "regional_bare_pool_2_s": bare_pool_s,
        "regional_baseline_efficiency": walls[1] / (2.0 * bare_pool_s),
        # the runner against what the machine allowed in the same minute (1: no runner cost)
        "regional_efficiency_vs_baseline": bare_pool_s / walls[2],
        "load_average_1min": os.getloadavg()[0],
        "cpu_count": os.cpu_count(),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter windows (extrapolated)")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    logging.getLogger("pandapower").setLevel(logging.ERROR)
    log = (lambda text: print(text, file=sys.stderr)) if args.json else print
    result = {"quick": args.quick}
    result.update(bench_lv_year(quick=args.quick, log=log))
    result.update(bench_mv_inverters(quick=args.quick, log=log))
    result.update(bench_regional(quick=args.quick, log=log))
    if args.json:
        json.dump(result, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    window = f"{result['pandapower_window_steps']}-step window, extrapolated"
    print(
        f"(a) LV year: ours {result['lv_year_s']:.2f} s ({result['lv_per_step_ms']:.3f} ms/step), "
        f"pandapower run_timeseries {result['pandapower_per_step_ms']:.1f} ms/step ({window} "
        f"to {result['pandapower_year_extrapolated_s']:.0f} s); max |dV| "
        f"{result['max_vm_difference_pu']:.1e} pu"
    )
    print(
        f"    ratio_vs_pandapower_timeseries = {result['ratio_vs_pandapower_timeseries']:.0f} "
        "(target >= 20)"
    )
    extrapolated = " (4 weeks, extrapolated to the year)" if result["mv_year_extrapolated"] else ""
    print(
        f"(b) MV year with {result['mv_inverters']} volt-var inverters: "
        f"mv_year_inverters_s = {result['mv_year_inverters_s']:.1f}{extrapolated} (target < 600; "
        f"without the fleet {result['mv_no_fleet_s']:.1f} s); fixed point "
        f"{result['mv_fixed_point_iterations_mean']:.1f} power flows per chunk, Q residual "
        f"{result['mv_fixed_point_q_residual_mvar']:.1e} Mvar"
    )
    print(
        f"(c) regional, {result['regional_feeders']} feeders: 1 worker "
        f"{result['regional_1_worker_s']:.1f} s, 2 workers {result['regional_2_workers_s']:.1f} s:"
        f" regional_parallel_efficiency = {result['regional_parallel_efficiency']:.2f} (target "
        f">= 0.8; bare pool of 2 allows {result['regional_baseline_efficiency']:.2f}; load "
        f"{result['load_average_1min']:.1f} on {result['cpu_count']} cores)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
