"""Benchmark: time-series hosting capacity (screen + AC at the band of steps) vs brute force.

On the SimBench grid ``1-LV-rural1--2-sw`` with its own profiles, the import hosting capacity
of every bus over a window (``--quick``: 2 days, else 28 days from 4 January 2016) is computed
twice in the same run:

* the study (:func:`studies.hosting_capacity_timeseries.time_series_hosting_capacity`,
  without the snapshot columns);
* the baseline: a plain bisection of the added size at every step (1 kW, the same batched fast
  AC power flow, all steps of a bus in one call per bisection iteration, the study's own limit
  check), then the minimum over the steps -- what the study replaces.

Loading the grid and its profiles is common to both and not timed. Prints the times, the ratio
and the largest difference of the answers [kW]; ``--json`` prints ``ts_hc_s``,
``bruteforce_s``, ``ratio_vs_bruteforce``, ``max_difference_kw``.

Usage: ``python benchmarks/hosting_capacity_timeseries.py [--quick] [--json]``
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

FEEDER = "simbench:1-LV-rural1--2-sw"


def bruteforce(model, profiles, buses, criteria, *, tolerance_mw=1e-3, cap_mw=5.0) -> np.ndarray:
    """Minimum over the steps of a plain per-step bisection, per bus [MW]."""
    from grids.timeseries_pf import solve_time_series
    from studies.hosting_capacity_engine import Flows, Limits, base_state, check

    limits = Limits(criteria)
    res = solve_time_series(model, profiles)
    base = Flows(res.vm_pu, res.line_loading_percent, res.trafo_loading_percent, res.converged)
    state = base_state(base, limits)
    col = {int(b): k for k, b in enumerate(model.bus)}
    n = len(profiles.time)
    out = []
    for bus in buses:
        lo, hi = np.zeros(n), np.full(n, cap_mw)
        while (hi - lo).max() > tolerance_mw:
            mid = 0.5 * (lo + hi)
            p = profiles.p_mw.copy()
            p[:, col[int(bus)]] -= mid
            res = model.solve(p, profiles.q_mvar, warm_start=False)
            flows = Flows(
                res.vm_pu, res.line_loading_percent, res.trafo_loading_percent, res.converged
            )
            ok = check(flows, state, limits).feasible
            lo, hi = np.where(ok, mid, lo), np.where(ok, hi, mid)
        out.append(lo.min())
    return np.array(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 days instead of 28")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    from studies.hosting_capacity_engine import HostingCapacityCriteria
    from studies.hosting_capacity_timeseries import (
        feeder_with_profiles,
        time_series_hosting_capacity,
    )

    days = 2 if args.quick else 28
    model, profiles = feeder_with_profiles(FEEDER, start="2016-01-04", duration_s=days * 86400.0)
    criteria = HostingCapacityCriteria()
    # warm up (JIT, first solves) on one day, not timed
    time_series_hosting_capacity(model, profiles.window(None, 86400.0), buses=[5], snapshot=False)
    t0 = time.perf_counter()
    rows = time_series_hosting_capacity(model, profiles, mode="import", snapshot=False)
    t_study = time.perf_counter() - t0
    buses = [r["bus"] for r in rows]
    t0 = time.perf_counter()
    reference = bruteforce(model, profiles, buses, criteria)
    t_brute = time.perf_counter() - t0
    answer = np.array([r["hosting_capacity_mw"] for r in rows])
    figures = {
        "feeder": FEEDER,
        "steps": len(profiles.time),
        "buses": len(buses),
        "ts_hc_s": round(t_study, 3),
        "bruteforce_s": round(t_brute, 3),
        "ratio_vs_bruteforce": round(t_brute / t_study, 2),
        "max_difference_kw": round(float(np.abs(answer - reference).max()) * 1000.0, 3),
    }
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    print(
        f"{FEEDER}: {figures['steps']} steps x {figures['buses']} buses, import, 1 kW\n"
        f"  time-series study (screen + AC band + check): {t_study:.2f} s\n"
        f"  brute-force bisection at every step:          {t_brute:.2f} s\n"
        f"  ratio {figures['ratio_vs_bruteforce']}x, largest difference "
        f"{figures['max_difference_kw']} kW"
    )


if __name__ == "__main__":
    main()
