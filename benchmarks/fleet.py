"""Benchmark: stepping a 100,000-vehicle V2G fleet vs a per-vehicle loop of OpenDER objects.

Scenario (both sides): home fleet at night (most vehicles plugged in), IEEE 1547 Category B /
III defaults with volt-var and frequency droop enabled and ride-through/trip always evaluated,
``dt = 0.1 s``; per-bus voltages swing 0.96-1.06 pu, the frequency dips to 59.6 Hz (droop
active) and one bus sags to 0.85 pu for 1 s (ride-through timers run).

* ``Fleet.step`` on ``--vehicles`` vehicles (default 100,000) for ``--steps`` steps (default
  10,000): availability, SoC/departure bounds, charging schedule, ``InverterBank`` controls,
  battery update, per-bus sums.
* Baseline, in the same run: a straightforward per-vehicle Python loop over 100 vehicles, each
  an ``opender.DER_BESS`` (EPRI OpenDER 2.2, same functions and categories) plus the same
  scalar battery update per vehicle.

Throughput is vehicle-steps per second of process CPU time (the machine may be shared: CPU
time is what one core delivers; wall-clock figures are printed too). Usage::

    python benchmarks/fleet.py [--json] [--quick] [--vehicles N] [--steps N]

JSON keys: ``vehicle_steps_per_s``, ``ratio_vs_per_vehicle_loop`` (+ details).
"""

from __future__ import annotations

import argparse
import json
import logging
import time

import numpy as np

from vehicle_models.fleet import Fleet, FleetPreset
from vehicle_models.settings import InverterSettings

DT_S = 0.1
T0_S = 2 * 3600.0  # 02:00, most home vehicles plugged in
N_BUS = 100


def grid_conditions(k: int, n_bus: int) -> tuple[np.ndarray, float]:
    """Per-bus voltage [pu] and frequency [Hz] at step k (deterministic)."""
    phase = np.linspace(0, 2 * np.pi, n_bus, endpoint=False)
    vm = 1.01 + 0.05 * np.sin(phase + 2e-3 * k)
    if 3000 <= k < 3010:
        vm[0] = 0.85  # 1 s sag on one bus: ride-through, no trip (Category III)
    f_hz = 59.6 if 2000 <= k < 6000 else 60.0
    return vm, f_hz


def run_fleet(n_vehicles: int, n_steps: int, settings: InverterSettings) -> dict:
    fleet = Fleet.sample(
        n_vehicles, buses=np.arange(N_BUS), preset=FleetPreset.HOME, seed=0, settings=settings
    )
    fleet.step(t_s=T0_S, dt_s=DT_S, vm_pu=np.ones(N_BUS), f_hz=60.0)  # compile, initialise
    conditions = [grid_conditions(k, N_BUS) for k in range(n_steps)]
    # share of CPU time inside the InverterBank vs the fleet/battery kernels
    inverter_cpu = [0.0]
    original = fleet._inverter_step

    def timed_inverter(*args, **kwargs):
        c = time.process_time()
        out = original(*args, **kwargs)
        inverter_cpu[0] += time.process_time() - c
        return out

    fleet._inverter_step = timed_inverter
    wall0, cpu0 = time.perf_counter(), time.process_time()
    p_mw = np.empty(n_steps)
    for k, (vm, f_hz) in enumerate(conditions):
        r = fleet.step(t_s=T0_S + (k + 1) * DT_S, dt_s=DT_S, vm_pu=vm, f_hz=f_hz)
        p_mw[k] = r.p_mw.sum()
    cpu = time.process_time() - cpu0
    wall = time.perf_counter() - wall0
    vs = n_vehicles * n_steps
    return {
        "n_vehicles": n_vehicles,
        "n_steps": n_steps,
        "cpu_s": cpu,
        "wall_s": wall,
        "vehicle_steps_per_s": vs / cpu,
        "vehicle_steps_per_s_wall": vs / wall,
        "inverter_bank_cpu_share": inverter_cpu[0] / cpu,
        "n_plugged": int(r.n_plugged.sum()),
        "p_fleet_mw_first_last": [float(p_mw[0]), float(p_mw[-1])],
    }


def run_per_vehicle_loop(n_vehicles: int, n_steps: int) -> dict:
    """Straightforward loop: one OpenDER DER_BESS object and scalar battery state per vehicle."""
    from opender import DER, DER_BESS

    sample = Fleet.sample(
        n_vehicles,
        buses=np.arange(N_BUS),
        preset=FleetPreset.HOME,
        seed=0,
        settings=InverterSettings.defaults(functions=frozenset()),
    )
    b = sample.battery
    logging.disable(logging.CRITICAL)
    try:
        DER.t_s = DT_S
        ders = []
        for i in range(n_vehicles):
            s_va = b.s_max_kva[i] * 1e3
            der = DER_BESS(
                NP_VA_MAX=s_va,
                NP_P_MAX=b.p_discharge_max_kw[i] * 1e3,
                NP_Q_MAX_INJ=s_va,
                NP_Q_MAX_ABS=s_va,
                NP_AC_V_NOM=240,
                NP_P_MAX_CHARGE=b.p_charge_max_kw[i] * 1e3,
                NP_APPARENT_POWER_CHARGE_MAX=s_va,
                NP_NORMAL_OP_CAT="CAT_B",
                NP_ABNORMAL_OP_CAT="CAT_III",
            )
            der.der_file.QV_MODE_ENABLE = True
            der.der_file.PF_MODE_ENABLE = True
            ders.append(der)
        e_kwh = [float(x) for x in b.e_kwh]
        lo = [float(x) for x in b.e_floor_kwh]
        hi = [float(x) for x in b.e_ceiling_kwh]
        eta_c = [float(x) for x in b.eta_charge]
        eta_d = [float(x) for x in b.eta_discharge]
        bus = [int(x) for x in sample.bus_of_vehicle]
        p_ch = [float(x) for x in b.p_charge_max_kw]
        dt_h = DT_S / 3600.0
        conditions = [grid_conditions(k, N_BUS) for k in range(n_steps)]
        wall0, cpu0 = time.perf_counter(), time.process_time()
        for vm, f_hz in conditions:
            for i, der in enumerate(ders):
                # the same feasibility and battery update as the fleet, one vehicle at a time
                p_dem_kw = -0.5 * p_ch[i] if e_kwh[i] < hi[i] else 0.0
                der.update_der_input(v_pu=float(vm[bus[i]]), f=f_hz, p_dem_kw=p_dem_kw)
                p_w, _q_var = der.run()
                p_kw = p_w / 1e3
                p_dc = p_kw / eta_d[i] if p_kw >= 0 else p_kw * eta_c[i]
                e_kwh[i] = min(max(e_kwh[i] - p_dc * dt_h, min(lo[i], e_kwh[i])), hi[i])
        cpu = time.process_time() - cpu0
        wall = time.perf_counter() - wall0
    finally:
        logging.disable(logging.NOTSET)
    vs = n_vehicles * n_steps
    return {
        "n_vehicles": n_vehicles,
        "n_steps": n_steps,
        "cpu_s": cpu,
        "wall_s": wall,
        "vehicle_steps_per_s": vs / cpu,
        "vehicle_steps_per_s_wall": vs / wall,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--quick", action="store_true", help="1,000 steps, short baseline")
    parser.add_argument("--vehicles", type=int, default=100_000)
    parser.add_argument("--steps", type=int, default=None)
    args = parser.parse_args(argv)
    n_steps = args.steps or (1_000 if args.quick else 10_000)
    settings = InverterSettings.defaults(
        voltage_category="B", abnormal_category="III", functions=["volt_var", "freq_watt"]
    )
    fast = run_fleet(args.vehicles, n_steps, settings)
    loop = run_per_vehicle_loop(100, 50 if args.quick else 300)
    ratio = fast["vehicle_steps_per_s"] / loop["vehicle_steps_per_s"]
    result = {
        "vehicle_steps_per_s": fast["vehicle_steps_per_s"],
        "ratio_vs_per_vehicle_loop": ratio,
        "basis": "process CPU time, one thread",
        "fleet": fast,
        "per_vehicle_loop_opender": loop,
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(
            f"fleet: {fast['n_vehicles']:,} vehicles x {fast['n_steps']:,} steps "
            f"in {fast['cpu_s']:.2f} s CPU ({fast['wall_s']:.2f} s wall)"
        )
        print(
            f"  vehicle-steps/s: {fast['vehicle_steps_per_s']:.3e} CPU "
            f"({fast['vehicle_steps_per_s_wall']:.3e} wall); "
            f"InverterBank share of CPU: {fast['inverter_bank_cpu_share']:.0%}"
        )
        print(
            f"per-vehicle loop (opender DER_BESS, {loop['n_vehicles']} vehicles x "
            f"{loop['n_steps']} steps): {loop['vehicle_steps_per_s']:.3e} vehicle-steps/s CPU"
        )
        print(f"ratio vs per-vehicle loop: {ratio:,.0f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
