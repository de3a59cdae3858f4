"""Power-flow benchmark: plain ``runpp`` vs pandapower time series vs fast AC vs LinDistFlow.

One run, per feeder (``case33bw`` and the >100-bus ``mv_oberrhein``), one seeded 1,000-step
load profile (smooth daily shape, each load with its own time shift and amplitude). Timed:

* ``runpp``: plain ``pandapower.runpp`` per step (loads' ``scaling`` set each step);
* ``timeseries``: ``pandapower.timeseries.run_timeseries`` with a ``ConstControl`` over a
  ``DFData`` source (the same scalings);
* ``fast AC (batch)``: :class:`grids.powerflow.ACPowerFlow`, all 1,000 steps in one call
  (the main figure) and ``fast AC (sequential)``: one warm-started call per step;
* ``feeder model``: the same two through :class:`grids.feeder_model.FeederModel` (the API
  every caller uses; the difference to ``fast AC`` is the model's own overhead);
* ``LinDistFlow``: :class:`grids.lindistflow.LinDistFlow`, all steps in one matrix product.

One-off set-up (loading the feeder, pandapower's first-call JIT compilation, building the
fast solvers) is excluded from the per-profile times and printed separately. ``--quick`` runs
``runpp`` and the time series on 25 evenly spaced steps (and the warm-started fast AC on the
first 200) and extrapolates their per-step time to 1,000 steps (the output says so); the
batched fast AC and LinDistFlow always solve all 1,000 steps.
Voltage differences are measured against ``runpp`` on the steps it solved. BLAS runs with one
thread for all methods (``OPENBLAS_NUM_THREADS=1`` unless already set).

Usage: ``python benchmarks/powerflow.py [--quick] [--json]``.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import sys
import time
import warnings

# One BLAS thread for every method (set before numpy loads): on a small shared machine
# OpenBLAS' thread pool makes a 360x360 inverse ~20x slower instead of faster.
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import numpy as np  # noqa: E402

N_STEPS = 1000
FEEDERS = ("case33bw", "mv_oberrhein")
RUNPP_OPTIONS = {"calculate_voltage_angles": True, "tolerance_mva": 1e-9, "max_iteration": 50}


def load_profile_factors(n_loads: int, *, n_steps: int = N_STEPS, seed: int = 0) -> np.ndarray:
    """Smooth daily load factors ``(n_steps, n_loads)``: morning and evening peaks.

    Each load gets its own time shift (+-1 h) and amplitude (0.8..1.2), seeded.
    """
    rng = np.random.default_rng(seed)
    t_h = np.linspace(0.0, 24.0, n_steps, endpoint=False)[:, None]
    shift_h = rng.uniform(-1.0, 1.0, n_loads)[None, :]
    amplitude = rng.uniform(0.8, 1.2, n_loads)[None, :]
    h = t_h - shift_h
    shape = (
        0.45 + 0.35 * np.exp(-(((h - 8.0) / 2.0) ** 2)) + 0.65 * np.exp(-(((h - 19.0) / 2.5) ** 2))
    )
    return shape * amplitude


def _median_time(func, repeat: int = 3) -> tuple[float, object]:
    times = []
    out = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = func()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), out


def bench_feeder(name: str, *, quick: bool, log) -> dict:
    import pandapower as pp
    import pandas as pd
    from pandapower.control import ConstControl
    from pandapower.timeseries import DFData, OutputWriter, run_timeseries

    from grids.feeder_model import FeederModel
    from grids.lindistflow import LinDistFlow
    from grids.powerflow import ACPowerFlow, prepare_net

    net = prepare_net(name)
    base_scaling = net.load.scaling.to_numpy(float).copy()
    factors = load_profile_factors(len(net.load), seed=7)
    scaling = base_scaling * factors  # (steps, loads)
    n_ref = 25 if quick else N_STEPS
    ref_steps = np.unique(np.linspace(0, N_STEPS - 1, n_ref).round().astype(int))

    log(f"{name}: runpp")
    # --- plain runpp per step -------------------------------------------------------------
    work = copy.deepcopy(net)
    pp.runpp(work, **RUNPP_OPTIONS)  # warm-up (numba JIT), excluded
    vm_runpp = np.empty((len(ref_steps), len(net.bus)))
    t0 = time.perf_counter()
    for k, step in enumerate(ref_steps):
        work.load["scaling"] = scaling[step]
        pp.runpp(work, **RUNPP_OPTIONS)
        vm_runpp[k] = work.res_bus.vm_pu.to_numpy()
    runpp_per_step_s = (time.perf_counter() - t0) / len(ref_steps)
    runpp_s = runpp_per_step_s * N_STEPS

    log(f"{name}: timeseries")
    # --- pandapower time series (ConstControl over DFData) --------------------------------
    ts_net = copy.deepcopy(net)
    frame = pd.DataFrame(scaling, columns=[f"load_{i}" for i in net.load.index])
    ConstControl(
        ts_net,
        element="load",
        variable="scaling",
        element_index=net.load.index,
        data_source=DFData(frame),
        profile_name=list(frame.columns),
    )
    run_timeseries(ts_net, time_steps=ref_steps[:1], verbose=False, **RUNPP_OPTIONS)  # warm-up
    writer = OutputWriter(ts_net, time_steps=ref_steps, log_variables=[("res_bus", "vm_pu")])
    t0 = time.perf_counter()
    run_timeseries(ts_net, time_steps=ref_steps, verbose=False, **RUNPP_OPTIONS)
    ts_per_step_s = (time.perf_counter() - t0) / len(ref_steps)
    vm_ts = writer.output["res_bus.vm_pu"].to_numpy()
    timeseries_s = ts_per_step_s * N_STEPS

    log(f"{name}: fast AC")
    # --- fast AC --------------------------------------------------------------------------
    t0 = time.perf_counter()
    ac = ACPowerFlow(net)
    ac_build_s = time.perf_counter() - t0
    p_bus, q_bus = _bus_injections(ac, net, scaling)
    fast_s, result = _median_time(lambda: ac.solve(p_bus, q_bus, warm_start=False))
    assert result.converged.all(), "fast AC did not converge on the benchmark profile"

    n_seq = 200 if quick else N_STEPS

    def sequential():
        ac.solve(p_bus[0], q_bus[0], warm_start=False)
        return [ac.solve(p_bus[t], q_bus[t]).iterations[0] for t in range(n_seq)]

    seq_s, seq_iterations = _median_time(sequential, repeat=1)
    seq_s *= N_STEPS / n_seq

    log(f"{name}: feeder model")
    # --- the same through grids.feeder_model.FeederModel (what the callers use) -------------
    model = FeederModel.from_net(net)
    model.solve(p_bus[:2], q_bus[:2], warm_start=False)  # builds the AC solver, excluded
    model_s, model_result = _median_time(lambda: model.solve(p_bus, q_bus, warm_start=False))

    def model_sequential():
        model.solve(p_bus[0], q_bus[0], warm_start=False)
        return [model.solve(p_bus[t], q_bus[t]).iterations[0] for t in range(n_seq)]

    model_seq_s, _ = _median_time(model_sequential, repeat=1)
    model_seq_s *= N_STEPS / n_seq

    log(f"{name}: LinDistFlow")
    # --- LinDistFlow ----------------------------------------------------------------------
    t0 = time.perf_counter()
    ldf = LinDistFlow(net)
    ldf_build_s = time.perf_counter() - t0
    ldf_s, vm_ldf = _median_time(lambda: ldf.vm_pu(p_bus, q_bus), repeat=5)

    cols = np.array([list(ldf.bus).index(b) for b in ac.bus])
    figures = {
        "n_bus": len(net.bus),
        "n_steps": N_STEPS,
        "runpp_steps_timed": len(ref_steps),
        "sequential_steps_timed": n_seq,
        "runpp_s": runpp_s,
        "runpp_per_step_ms": runpp_per_step_s * 1e3,
        "timeseries_s": timeseries_s,
        "fast_ac_batch_s": fast_s,
        "fast_ac_sequential_s": seq_s,
        "fast_ac_build_s": ac_build_s,
        "fast_ac_mean_iterations_batch": float(result.iterations.mean()),
        "fast_ac_mean_iterations_sequential": float(np.mean(seq_iterations)),
        "feeder_model_batch_s": model_s,
        "feeder_model_sequential_s": model_seq_s,
        "ratio_feeder_model_vs_runpp": runpp_s / model_s,
        "ratio_feeder_model_sequential_vs_runpp": runpp_s / model_seq_s,
        "max_dv_feeder_model_pu": float(
            np.nanmax(np.abs(model_result.vm_pu[ref_steps] - vm_runpp))
        ),
        "lindistflow_s": ldf_s,
        "lindistflow_build_s": ldf_build_s,
        "ratio_fast_ac_vs_runpp": runpp_s / fast_s,
        "ratio_fast_ac_sequential_vs_runpp": runpp_s / seq_s,
        "ratio_fast_ac_with_build_vs_runpp": runpp_s / (fast_s + ac_build_s),
        "ratio_timeseries_vs_runpp": runpp_s / timeseries_s,
        "ratio_lindistflow_vs_runpp": runpp_s / ldf_s,
        "ratio_lindistflow_with_build_vs_runpp": runpp_s / (ldf_s + ldf_build_s),
        "max_dv_fast_ac_pu": float(np.nanmax(np.abs(result.vm_pu[ref_steps] - vm_runpp))),
        "max_dv_timeseries_pu": float(np.nanmax(np.abs(vm_ts - vm_runpp))),
        "max_dv_lindistflow_pu": float(np.nanmax(np.abs(vm_ldf[ref_steps][:, cols] - vm_runpp))),
    }
    log(f"{name}: done ({len(ref_steps)} runpp steps timed)")
    return figures


def _bus_injections(ac, net, scaling: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-bus injections for every step: the net's base injection with the loads rescaled."""
    p0, q0 = ac.base_injection()
    position = {int(b): i for i, b in enumerate(ac.bus)}
    rows = np.array([position[int(b)] for b in net.load.bus])
    incidence = np.zeros((len(net.load), len(ac.bus)))
    incidence[np.arange(len(net.load)), rows] = 1.0
    base = net.load.scaling.to_numpy(float)
    in_service = net.load.in_service.to_numpy(bool)
    load_p = net.load.p_mw.to_numpy(float) * in_service
    load_q = net.load.q_mvar.to_numpy(float) * in_service
    # remove the base loads, add the profile loads
    p = p0 + ((base - scaling) * load_p) @ incidence
    q = q0 + ((base - scaling) * load_q) @ incidence
    return p, q


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="time runpp/time series on 25 steps and warm-started steps on 200, extrapolated",
    )
    parser.add_argument("--json", action="store_true", help="print JSON on stdout")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    logging.getLogger("pandapower").setLevel(logging.ERROR)

    def log(message: str) -> None:
        print(message, file=sys.stderr)

    t0 = time.perf_counter()
    results = {name: bench_feeder(name, quick=args.quick, log=log) for name in FEEDERS}
    total_s = time.perf_counter() - t0
    if args.json:
        keys = (
            "ratio_fast_ac_vs_runpp",
            "ratio_lindistflow_vs_runpp",
            "max_dv_fast_ac_pu",
            "max_dv_lindistflow_pu",
        )
        out = {
            "feeders": {name: {k: fig[k] for k in keys} for name, fig in results.items()},
            "details": results,
            "quick": args.quick,
            "total_s": total_s,
        }
        json.dump(out, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    for name, fig in results.items():
        extrapolated = fig["runpp_steps_timed"] < N_STEPS
        note = (
            f" (QUICK: runpp and time series timed on {fig['runpp_steps_timed']} evenly spaced "
            f"steps, warm-started fast AC on the first {fig['sequential_steps_timed']}; "
            f"per-step times extrapolated to {N_STEPS})"
            if extrapolated
            else ""
        )
        print(f"\n{name}: {fig['n_bus']} buses, {N_STEPS}-step load profile{note}")
        rows = [
            ("plain runpp per step", fig["runpp_s"], 1.0, "reference"),
            (
                "pandapower run_timeseries",
                fig["timeseries_s"],
                fig["ratio_timeseries_vs_runpp"],
                f"{fig['max_dv_timeseries_pu']:.1e}",
            ),
            (
                "fast AC, one batched call",
                fig["fast_ac_batch_s"],
                fig["ratio_fast_ac_vs_runpp"],
                f"{fig['max_dv_fast_ac_pu']:.1e}",
            ),
            (
                "fast AC, warm-started steps",
                fig["fast_ac_sequential_s"],
                fig["ratio_fast_ac_sequential_vs_runpp"],
                "(same solution)",
            ),
            (
                "feeder model, one batched call",
                fig["feeder_model_batch_s"],
                fig["ratio_feeder_model_vs_runpp"],
                f"{fig['max_dv_feeder_model_pu']:.1e}",
            ),
            (
                "feeder model, warm-started steps",
                fig["feeder_model_sequential_s"],
                fig["ratio_feeder_model_sequential_vs_runpp"],
                "(same solution)",
            ),
            (
                "LinDistFlow, one matrix product",
                fig["lindistflow_s"],
                fig["ratio_lindistflow_vs_runpp"],
                f"{fig['max_dv_lindistflow_pu']:.1e}",
            ),
        ]
        print(f"  {'method':34s} {'time [s]':>10s} {'speed-up':>10s}  max |dv| vs runpp [pu]")
        for label, seconds, ratio, dv in rows:
            print(f"  {label:34s} {seconds:10.4f} {ratio:9.1f}x  {dv}")
        print(
            f"  one-off builds (excluded above): fast AC {fig['fast_ac_build_s']:.3f} s, "
            f"LinDistFlow {fig['lindistflow_build_s']:.3f} s; with build: fast AC "
            f"{fig['ratio_fast_ac_with_build_vs_runpp']:.1f}x, LinDistFlow "
            f"{fig['ratio_lindistflow_with_build_vs_runpp']:.1f}x"
        )
        print(
            f"  mean iterations: batch {fig['fast_ac_mean_iterations_batch']:.2f}, "
            f"warm-started {fig['fast_ac_mean_iterations_sequential']:.2f}"
        )
    print(f"\ntotal benchmark time {total_s:.1f} s; targets: fast AC >= 30x, LinDistFlow >= 1000x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
