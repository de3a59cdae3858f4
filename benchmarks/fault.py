"""Fault-calculation benchmark: a fault at every bus, vectorised vs one solve per bus vs
pandapower's short-circuit module.

One run on ``mv_oberrhein`` (179 buses; ``case33bw`` with ``--quick``), with the external
grids at 500 MVA, R/X 0.1 and the static generators out of service. Timed, after one
warm-up call each (building the models is printed separately):

* ``vectorised``: :meth:`grids.fault.FaultModel.solve` for all supplied buses in one call
  (one LU factorisation, all fault columns at once) — the main figure;
* ``per bus``: the same model, one ``solve`` call per fault bus (the baseline the ratio is
  against);
* ``calc_sc``: ``pandapower.shortcircuit.calc_sc(case="max")`` for all buses (IEC 60909,
  the reference of the tests; it also returns ``I_k''`` only), timed for scale.

Both ``grids.fault`` paths use the IEC 60909 method so that the three give the same
``I_k''``; the largest relative difference is printed. BLAS runs with one thread.

Usage: ``python benchmarks/fault.py [--quick] [--json]``.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import time
import warnings

for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import numpy as np  # noqa: E402


def _timed(func, repeat: int) -> float:
    """Best of ``repeat`` wall times of ``func()`` [s]."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        func()
        best = min(best, time.perf_counter() - t0)
    return best


def run(quick: bool) -> dict:
    import pandapower.shortcircuit as sc

    from grids.fault import FaultMethod, FaultModel
    from grids.feeders import load_feeder

    name = "case33bw" if quick else "mv_oberrhein"
    net = load_feeder(name)
    net.ext_grid["s_sc_max_mva"] = 500.0
    net.ext_grid["rx_max"] = 0.1
    if len(net.sgen):
        net.sgen["in_service"] = False
    t0 = time.perf_counter()
    model = FaultModel(net, method=FaultMethod.IEC_60909)
    build_s = time.perf_counter() - t0
    buses = model.bus[~model.dead_bus]
    repeat = 3

    vectorised = model.solve(buses)  # warm-up
    t_vec = _timed(lambda: model.solve(buses), repeat)
    t_loop = _timed(lambda: [model.solve([b]) for b in buses], 1 if not quick else repeat)

    def reference():
        ref = copy.deepcopy(net)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sc.calc_sc(ref, case="max")
        return ref.res_bus_sc.ikss_ka.reindex(buses).to_numpy(float)

    ikss_ref = reference()  # warm-up
    t_ref = _timed(reference, 1)
    rel = float(np.max(np.abs(vectorised.ikss_ka / ikss_ref - 1.0)))
    return {
        "feeder": name,
        "n_fault_buses": len(buses),
        "build_s": build_s,
        "vectorised_s": t_vec,
        "per_bus_s": t_loop,
        "calc_sc_s": t_ref,
        "speedup_vs_per_bus": t_loop / t_vec,
        "speedup_vs_calc_sc": t_ref / t_vec,
        "max_rel_diff_ikss": rel,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="case33bw instead of mv_oberrhein")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args()
    result = run(args.quick)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    n = result["n_fault_buses"]
    print(f"fault at each of {n} buses of {result['feeder']} (IEC 60909, I_k'')")
    print(f"  model build (once)          {result['build_s'] * 1e3:9.1f} ms")
    print(f"  vectorised, one call        {result['vectorised_s'] * 1e3:9.2f} ms")
    print(
        f"  one call per bus (baseline) {result['per_bus_s'] * 1e3:9.2f} ms   "
        f"ratio {result['speedup_vs_per_bus']:.1f}x"
    )
    print(
        f"  pandapower calc_sc          {result['calc_sc_s'] * 1e3:9.2f} ms   "
        f"ratio {result['speedup_vs_calc_sc']:.1f}x"
    )
    print(f"  largest relative I_k'' difference to calc_sc: {result['max_rel_diff_ikss']:.1e}")


if __name__ == "__main__":
    main()
