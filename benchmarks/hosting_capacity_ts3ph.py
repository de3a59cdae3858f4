"""Benchmark: three-phase time-series hosting capacity (active-set bisection) vs brute force.

On the IEEE European LV feeder with its own 1-minute load shapes, the phase-a import hosting
capacity of a few houses over a window (``--quick``: 2 hours of the evening, else the whole
day, 1,440 steps) is computed twice in the same run:

* the study (:func:`studies.hosting_capacity_ts3ph.three_phase_time_series_hosting_capacity`:
  bisection on an active set of steps, verified on every step), without its snapshot part
  (it is computed, and timed, by the study anyway: it starts the bracket);
* the baseline: a plain bisection of the added size at every step alone (1 kW, from
  [0, 0.5 MW], the same three-phase engine, all steps of a bus in one batched solve per
  iteration, the study's own limit checker), then the minimum over the steps -- what the study
  replaces.

Building the feeder and reading its shapes is common to both and not timed. Prints the times,
the ratio and the largest difference of the answers [kW]; ``--json`` prints ``ts3ph_hc_s``,
``bruteforce_s``, ``ratio_vs_bruteforce``, ``max_difference_kw``, ``ac_cases``,
``bruteforce_ac_cases``.

Usage: ``python benchmarks/hosting_capacity_ts3ph.py [--quick] [--json]``
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402

FEEDER = "european_lv"
BUSES = ["34", "615", "906"]
CHUNK = 1024


def bruteforce(model, shapes, buses, criteria, *, tolerance_mw=1e-3, cap_mw=0.5):
    """Minimum over the steps of a plain per-step bisection, per bus [MW], and the AC cases."""
    from studies.hosting_capacity_3ph import LimitChecker

    mult = shapes.p_mult
    n = mult.shape[0]
    checkers = []
    for start in range(0, n, CHUNK):
        steps = np.arange(start, min(start + CHUNK, n))
        base = model.solve(load_mult=mult[steps])
        checkers.append((steps, LimitChecker(model, base, criteria, written=str)))
    out, cases = [], 0
    for bus in buses:
        node = model.node_index(bus, 1)
        lo, hi = np.zeros(n), np.full(n, cap_mw)
        while (hi - lo).max() > tolerance_mw:
            mid = 0.5 * (lo + hi)
            ok = np.zeros(n, dtype=bool)
            for steps, checker in checkers:
                p = np.zeros((steps.size, model.n_node))
                p[:, node] = -mid[steps]
                res = model.solve(load_mult=mult[steps], p_wye_mw=p)
                cases += steps.size
                ok[steps] = checker.check(
                    np.asarray(res.vm_pu),
                    np.asarray(res.vuf_percent, dtype=float),
                    np.asarray(res.line_loading_percent, dtype=float),
                    res.converged,
                    base_row=np.arange(steps.size),
                ).feasible
            lo, hi = np.where(ok, mid, lo), np.where(ok, hi, mid)
        out.append(lo.min())
    return np.array(out), cases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 hours instead of the day")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    from grids.feeder3ph import ThreePhaseFeederModel
    from grids.opendss_loadshapes import read_load_shapes
    from studies.hosting_capacity_3ph import ThreePhaseCriteria
    from studies.hosting_capacity_ts3ph import three_phase_time_series_hosting_capacity

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = ThreePhaseFeederModel.from_name(FEEDER)
    shapes = read_load_shapes(model)
    if args.quick:
        shapes = shapes.window("2000-01-01T18:00", 2 * 3600.0)
    criteria = ThreePhaseCriteria(v_min_pu=0.9, v_max_pu=1.1)  # EN 50160
    # warm up (JIT, first solves) on ten minutes, not timed
    three_phase_time_series_hosting_capacity(
        model, shapes.window(None, 600.0), buses=BUSES[:1], criteria=criteria
    )
    t0 = time.perf_counter()
    result = three_phase_time_series_hosting_capacity(
        model, shapes, buses=BUSES, phase="a", mode="import", criteria=criteria
    )
    t_study = time.perf_counter() - t0
    t0 = time.perf_counter()
    reference, brute_cases = bruteforce(model, shapes, BUSES, criteria)
    t_brute = time.perf_counter() - t0
    answer = np.array([r["hosting_capacity_mw"] for r in result.rows])
    figures = {
        "feeder": FEEDER,
        "steps": shapes.n_steps,
        "buses": len(BUSES),
        "ts3ph_hc_s": round(t_study, 3),
        "bruteforce_s": round(t_brute, 3),
        "ratio_vs_bruteforce": round(t_brute / t_study, 2),
        "max_difference_kw": round(float(np.abs(answer - reference).max()) * 1000.0, 3),
        "ac_cases": result.n_ac_cases,
        "bruteforce_ac_cases": brute_cases,
    }
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    print(
        f"{FEEDER}: {figures['steps']} steps x {figures['buses']} buses, phase a, import, 1 kW\n"
        f"  time-series study (active-set bisection, verified): {t_study:.2f} s, "
        f"{result.n_ac_cases} AC cases\n"
        f"  brute-force bisection at every step:                {t_brute:.2f} s, "
        f"{brute_cases} AC cases\n"
        f"  ratio {figures['ratio_vs_bruteforce']}x, largest difference "
        f"{figures['max_difference_kw']} kW"
    )


if __name__ == "__main__":
    main()
