"""Benchmark of the sweep runner: parallel efficiency and per-run overhead.

A 200-run frequency-event sweep (the contingency study on the bulk swing model: 500 MW lost on
10 GW, 60 s at 20 ms steps; a 20 x 10 grid over inertia ``h_s`` and governor droop ``r_pu``)
runs with 1 worker and with 2 worker processes into fresh directories, ``--repeat`` times
(1-worker and 2-worker runs interleaved, default 3).

* parallel efficiency = T(1 worker) / (2 · T(2 workers)) on the same 200 runs; T is the whole
  wall time of ``run_sweep`` (pool start, the warm-up run in the parent, dispatch, results
  journal and Parquet writes all included; only the up-front validation is not, it is the same
  for both). ``parallel_efficiency`` uses the fastest T1 and the fastest T2 of the repeats
  (the ``timeit`` convention: other processes only ever add time);
  ``parallel_efficiency_median`` is the median of the per-repeat ratios (target >= 0.8 on
  2 cores);
* overhead per run = (T(1 worker) − Σ study time) / n_runs: everything outside the study call
  (dispatch, deep copies, results journal and atomic Parquet writes, progress) (target < 50 ms);
* the up-front validation of every run's scenario is reported separately
  (``validation_per_run_ms``);
* interference: ``other_cpu_frac`` is the CPU time used by *other* processes on the machine
  during the 2-worker runs (``/proc/stat`` busy time minus this benchmark's own processes),
  as a fraction of the 2 cores; above ~0.1 the 2 workers did not have 2 free cores;
* baseline in the same run: the same study calls in a bare ``multiprocessing`` pool of 2
  (no sweep runner at all) against a bare loop give ``baseline_parallel_efficiency``, what the
  machine allows at that moment; ``efficiency_vs_baseline`` is the runner's share of it.

Usage: ``python benchmarks/sweep.py [--json] [--quick] [--repeat K]`` (``--quick``: 40 runs,
20 s events, one repeat).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

# `python benchmarks/sweep.py` puts benchmarks/ first on the path, where benchmarks/cosim.py
# would shadow the cosim package: import the project from the installed packages instead.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

BASE = """
[simulation]
duration_s = {duration_s}
step_s = 0.02

[frequency]
f0_hz = 60.0
s_base_mw = 10000.0
h_s = 5.0
d_pu = 1.0
r_pu = 0.05
t_gov_s = 0.5

[[events]]
t_s = 1.0
kind = "generation_loss"
p_mw = 500.0
"""

SWEEP = """
study = "contingency"
base = "base.toml"
metrics = ["f_nadir_hz", "t_nadir_s", "rocof_initial_hz_per_s", "delta_f_steady_hz"]

[[axis]]
key = "frequency.h_s"
linspace = {{ start = 2.0, stop = 8.0, num = {n_h} }}

[[axis]]
key = "frequency.r_pu"
linspace = {{ start = 0.03, stop = 0.08, num = 10 }}
"""


def _bare_call(scenario: dict) -> float:
    from studies.contingency import run_contingency_study

    return float(run_contingency_study(scenario)["f_nadir_hz"])


def _baseline_efficiency(scenarios: list[dict]) -> tuple[float, float, float]:
    """(T serial, T pool of 2, efficiency) of the bare study calls, without the sweep runner."""
    import multiprocessing as mp

    t0 = time.perf_counter()
    serial = [_bare_call(s) for s in scenarios]
    t_serial = time.perf_counter() - t0
    ctx = mp.get_context("fork")
    t0 = time.perf_counter()
    with ctx.Pool(2) as pool:
        parallel = pool.map(_bare_call, scenarios, chunksize=1)
    t_pool = time.perf_counter() - t0
    assert serial == parallel
    return t_serial, t_pool, t_serial / (2.0 * t_pool)


def _busy_cpu_s() -> float | None:
    """CPU seconds the whole machine has been busy (all cores, /proc/stat), or None."""
    try:
        with open("/proc/stat", encoding="ascii") as handle:
            fields = handle.readline().split()[1:]
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _own_cpu_s() -> float:
    """CPU seconds of this process and its reaped children (the sweep's workers)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _timed_sweep(spec, out: Path, workers: int) -> tuple[float, float | None]:
    """(wall time of run_sweep [s], CPU seconds used meanwhile by other processes or None)."""
    from studies.sweep import run_sweep

    busy0, own0 = _busy_cpu_s(), _own_cpu_s()
    summary = run_sweep(spec, out, workers=workers, progress=False)
    busy1, own1 = _busy_cpu_s(), _own_cpu_s()
    assert summary.n_done == len(spec.runs) and summary.n_failed == 0
    other = None if busy0 is None or busy1 is None else max(busy1 - busy0 - (own1 - own0), 0.0)
    return summary.wall_s, other


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print JSON results")
    parser.add_argument("--quick", action="store_true", help="40 runs of 20 s events, 1 repeat")
    parser.add_argument("--repeat", type=int, default=None, help="repeats (default 3; quick 1)")
    args = parser.parse_args(argv)
    repeat = args.repeat or (1 if args.quick else 3)
    # as `v2g-cosim sweep` does: one BLAS thread per worker process
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(name, "1")

    import pandas as pd

    from studies.sweep import load_sweep

    n_h, duration_s = (4, 20.0) if args.quick else (20, 60.0)
    t1_s: list[float] = []
    t2_s: list[float] = []
    other_s: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "base.toml").write_text(BASE.format(duration_s=duration_s))
        (root / "sweep.toml").write_text(SWEEP.format(n_h=n_h))
        t0 = time.perf_counter()
        spec = load_sweep(root / "sweep.toml")
        validation_s = time.perf_counter() - t0
        n = len(spec.runs)
        study_s = []
        for k in range(repeat):
            wall, _ = _timed_sweep(spec, root / f"w1_{k}", 1)
            t1_s.append(wall)
            study_s.append(
                float(pd.read_parquet(root / f"w1_{k}" / "results.parquet").wall_s.sum())
            )
            wall, other = _timed_sweep(spec, root / f"w2_{k}", 2)
            t2_s.append(wall)
            if other is not None:
                other_s.append(other / (2.0 * wall))
        frame1 = pd.read_parquet(root / "w1_0" / "results.parquet").set_index("run_id")
        frame2 = pd.read_parquet(root / "w2_0" / "results.parquet").set_index("run_id")
        study_2_s = [
            float(pd.read_parquet(root / f"w2_{k}" / "results.parquet").wall_s.sum())
            for k in range(repeat)
        ]
        metrics = list(spec.metrics)
        assert frame1.loc[frame2.index, metrics].equals(frame2[metrics])  # same results
        t_bare_serial, t_bare_pool, baseline = _baseline_efficiency([r.scenario for r in spec.runs])

    best = min(range(repeat), key=lambda k: t1_s[k])
    efficiency = min(t1_s) / (2.0 * min(t2_s))
    per_repeat = [a / (2.0 * b) for a, b in zip(t1_s, t2_s, strict=True)]
    # other processes on the machine during the run: an efficiency below the target on
    # a busy machine says more about the machine than about the sweep runner
    load_1min = os.getloadavg()[0]
    overhead_ms = (t1_s[best] - study_s[best]) / n * 1000.0
    result = {
        "n_runs": n,
        "repeats": repeat,
        "wall_1_worker_s": t1_s,
        "wall_2_workers_s": t2_s,
        "study_time_per_run_ms": study_s[best] / n * 1000.0,
        # the same study calls inside the 2 workers (slower: the cores are shared with the
        # parent; faster: a forked worker's smaller heap) - explains efficiencies near 1
        "study_time_per_run_2_workers_ms": min(study_2_s) / n * 1000.0,
        "parallel_efficiency": efficiency,
        "parallel_efficiency_median": float(statistics.median(per_repeat)),
        "parallel_efficiency_per_repeat": per_repeat,
        "other_cpu_frac": other_s,
        "baseline_parallel_efficiency": baseline,
        "efficiency_vs_baseline": efficiency / baseline,
        "bare_serial_s": t_bare_serial,
        "bare_pool_2_s": t_bare_pool,
        "overhead_per_run_ms": overhead_ms,
        "validation_per_run_ms": validation_s / n * 1000.0,
        "load_average_1min": load_1min,
        "cpu_count": os.cpu_count(),
    }
    if args.json:
        json.dump(result, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(
            f"{n} runs x {repeat}: 1 worker {min(t1_s):.2f} s, 2 workers {min(t2_s):.2f} s (best)"
        )
        print(
            f"study time per run      {result['study_time_per_run_ms']:.1f} ms (1 worker), "
            f"{result['study_time_per_run_2_workers_ms']:.1f} ms (in the 2 workers)"
        )
        print(
            f"parallel efficiency     {efficiency:.3f}   (best T1 / 2 best T2; median "
            f"{result['parallel_efficiency_median']:.3f}; target >= 0.8)"
        )
        print(
            "other processes' CPU    "
            + ", ".join(f"{x:.2f}" for x in other_s)
            + "   (fraction of the 2 cores during each 2-worker run)"
        )
        print(
            f"baseline efficiency     {baseline:.3f}   (bare study calls in a pool of 2: "
            "what the machine allows now)"
        )
        print(f"overhead per run        {overhead_ms:.2f} ms (target < 50 ms)")
        print(f"validation per run      {result['validation_per_run_ms']:.1f} ms (up front)")
        print(f"load average (1 min)    {load_1min:.1f} on {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
