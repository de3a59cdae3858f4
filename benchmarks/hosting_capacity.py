"""Benchmark: two-tier hosting capacity vs brute-force ``runpp`` bisection, and stochastic HC.

For ``case33bw`` and ``mv_oberrhein`` (179 buses) the export hosting capacity of EVERY
non-slack bus is computed with the two-tier method (LinDistFlow screen + batched AC
bracket/bisection, including building both solvers; loading the feeder is common to both
sides and not timed). The baseline is a plain bisection with one ``pandapower.runpp`` per
trial (``studies.hosting_capacity_bruteforce``), same limits, same 1 kW tolerance. It runs on
a sample of buses spread over the feeder (``--bruteforce-buses``; all buses when the sample
is at least the bus count) and its per-bus time is extrapolated to all buses -- the printout
says so. The largest HC difference is taken over the sampled buses. Then 1,000 stochastic
scenarios on ``case33bw`` are timed.

Usage: ``python benchmarks/hosting_capacity.py [--quick] [--json]``
"""

from __future__ import annotations

import os

# One BLAS thread for both sides: on a small shared machine multi-threaded BLAS makes the
# timings of large batched matrix products erratic (thread start-up and contention).
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

FEEDERS = ("case33bw", "mv_oberrhein")


def _warm_up(name: str) -> None:
    """One runpp and one study on the feeder first, so numba/JIT compilation and imports are
    not charged to either side."""
    import pandapower as pp

    from grids.feeders import load_feeder
    from studies.hosting_capacity import HostingCapacityStudy

    pp.runpp(load_feeder(name))
    HostingCapacityStudy(name).run([int(load_feeder(name).bus.index[-1])])


def bench_feeder(name: str, n_sample: int) -> dict:
    from grids.powerflow import prepare_net
    from studies.hosting_capacity import HostingCapacityStudy, Mode
    from studies.hosting_capacity_bruteforce import bruteforce_hosting_capacity

    _warm_up(name)
    net = prepare_net(name)  # loading the feeder is common to both methods: not timed
    t0 = time.perf_counter()
    study = HostingCapacityStudy(net)  # builds its feeder model (AC and LinDistFlow): timed
    result = study.run(mode=Mode.EXPORT)
    t_two_tier = time.perf_counter() - t0
    table = result.table.set_index("bus")
    buses = table.index.to_numpy()
    pick = np.unique(np.linspace(0, len(buses) - 1, min(n_sample, len(buses))).round().astype(int))
    sample = buses[pick]
    diffs = []
    n_runpp = 0
    t0 = time.perf_counter()
    for bus in sample:
        hc, _, n = bruteforce_hosting_capacity(
            net, int(bus), export=True, cap_mw=study.default_cap_mw
        )
        n_runpp += n
        diffs.append(abs(hc - table.hosting_capacity_mw.loc[bus]))
    t_sample = time.perf_counter() - t0
    t_brute = t_sample / len(sample) * len(buses)
    return {
        "n_bus": len(buses),
        "two_tier_s": t_two_tier,
        "ac_batched_solves": result.n_ac_solves,
        "bruteforce_buses": len(sample),
        "bruteforce_extrapolated": len(sample) < len(buses),
        "bruteforce_s": t_brute,
        "runpp_per_bus": n_runpp / len(sample),
        "ratio_vs_bruteforce": t_brute / t_two_tier,
        "max_hc_diff_mw": float(max(diffs)),
        "screen_within_bracket_fraction": float(result.table.within_screen_bracket.mean()),
    }


def bench_stochastic(n: int) -> float:
    from studies.hosting_capacity import HostingCapacityStudy
    from studies.hosting_capacity_stochastic import run_stochastic

    study = HostingCapacityStudy("case33bw")
    run_stochastic(study, n_samples=10, seed=0)  # warm-up
    t0 = time.perf_counter()
    run_stochastic(study, n_samples=n, seed=0)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print JSON on stdout")
    parser.add_argument("--quick", action="store_true", help="fewer brute-force buses")
    parser.add_argument(
        "--bruteforce-buses",
        type=int,
        default=None,
        help="buses per feeder for the runpp baseline (default 12, 4 with --quick)",
    )
    args = parser.parse_args(argv)
    n_sample = args.bruteforce_buses or (4 if args.quick else 12)
    feeders = {name: bench_feeder(name, n_sample) for name in FEEDERS}
    stochastic_s = bench_stochastic(1000)
    if args.json:
        doc = {
            "feeders": {
                k: {
                    "ratio_vs_bruteforce": v["ratio_vs_bruteforce"],
                    "max_hc_diff_mw": v["max_hc_diff_mw"],
                    **{x: y for x, y in v.items() if x not in ("ratio_vs_bruteforce",)},
                }
                for k, v in feeders.items()
            },
            "stochastic_1000_s": stochastic_s,
            "tolerance_mw": 0.001,
        }
        json.dump(doc, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    for name, v in feeders.items():
        how = (
            f"runpp on {v['bruteforce_buses']} of {v['n_bus']} buses, per-bus time extrapolated"
            if v["bruteforce_extrapolated"]
            else "runpp on every bus"
        )
        print(
            f"{name}: {v['n_bus']} buses, two-tier {v['two_tier_s']:.2f} s "
            f"({v['ac_batched_solves']} batched AC solves), brute force {v['bruteforce_s']:.1f} s "
            f"({how}, {v['runpp_per_bus']:.1f} runpp per bus) -> ratio "
            f"{v['ratio_vs_bruteforce']:.1f}x (target >= 50x); max |HC diff| "
            f"{v['max_hc_diff_mw'] * 1000:.3f} kW (tolerance 1 kW); screen bracket held on "
            f"{v['screen_within_bracket_fraction'] * 100:.0f} % of buses"
        )
    print(f"stochastic: 1,000 scenarios on case33bw in {stochastic_s:.2f} s (target < 10 s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
