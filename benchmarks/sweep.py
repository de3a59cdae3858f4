"""Benchmark of the sweep runner: parallel efficiency and per-run overhead.

A 200-run frequency-event sweep (the contingency study on the bulk swing model: 500 MW lost on
10 GW, 60 s at 20 ms steps; a 20 x 10 grid over inertia ``h_s`` and governor droop ``r_pu``)
runs with 1 worker and with 2 worker processes into fresh directories.

* parallel efficiency = T(1 worker) / (2 · T(2 workers)), both wall times of ``run_sweep``
  including the worker pool start (target >= 0.8 on 2 cores);
* overhead per run = (T(1 worker) − Σ study time) / n_runs: everything outside the study call
  (dispatch, deep copies, results journal and atomic Parquet writes, progress) (target < 50 ms);
* the up-front validation of every run's scenario is reported separately
  (``validation_per_run_ms``);
* baseline in the same run: the same study calls in a bare ``multiprocessing`` pool of 2
  (no sweep runner at all) against a bare loop give ``baseline_parallel_efficiency``, what the
  machine allows at that moment; ``efficiency_vs_baseline`` is the runner's share of it.

Usage: ``python benchmarks/sweep.py [--json] [--quick]`` (``--quick``: 40 runs, 20 s events).
"""

from __future__ import annotations

import argparse
import json
import os
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print JSON results")
    parser.add_argument("--quick", action="store_true", help="40 runs of 20 s events")
    args = parser.parse_args(argv)
    # as `v2g-cosim sweep` does: one BLAS thread per worker process
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(name, "1")

    import pandas as pd

    from studies.sweep import load_sweep, run_sweep

    n_h, duration_s = (4, 20.0) if args.quick else (20, 60.0)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "base.toml").write_text(BASE.format(duration_s=duration_s))
        (root / "sweep.toml").write_text(SWEEP.format(n_h=n_h))
        t0 = time.perf_counter()
        spec = load_sweep(root / "sweep.toml")
        validation_s = time.perf_counter() - t0
        n = len(spec.runs)
        one = run_sweep(spec, root / "w1", workers=1, progress=False)
        two = run_sweep(spec, root / "w2", workers=2, progress=False)
        study_s = float(pd.read_parquet(root / "w1" / "results.parquet")["wall_s"].sum())
        frame2 = pd.read_parquet(root / "w2" / "results.parquet")
        assert one.n_done == two.n_done == n and (frame2.status == "ok").all()
        t_bare_serial, t_bare_pool, baseline = _baseline_efficiency([r.scenario for r in spec.runs])

    efficiency = one.wall_s / (2.0 * two.wall_s)
    # other processes on the machine during the run: an efficiency below the target on
    # a busy machine says more about the machine than about the sweep runner
    load_1min = os.getloadavg()[0]
    overhead_ms = (one.wall_s - study_s) / n * 1000.0
    result = {
        "n_runs": n,
        "wall_1_worker_s": one.wall_s,
        "wall_2_workers_s": two.wall_s,
        "study_time_per_run_ms": study_s / n * 1000.0,
        "parallel_efficiency": efficiency,
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
        print(f"{n} runs: 1 worker {one.wall_s:.2f} s, 2 workers {two.wall_s:.2f} s")
        print(f"study time per run      {result['study_time_per_run_ms']:.1f} ms")
        print(
            f"parallel efficiency     {efficiency:.3f}   (target >= 0.8; speed-up "
            f"{one.wall_s / two.wall_s:.2f}x)"
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
