"""Large three-phase feeders: the dense Z-bus and the sparse solver against OpenDSS, one run.

For one OpenDSS model (a path to its master file, e.g. the IEEE 8500-node feeder or EPRI
ckt24 from dss-extensions/electricdss-tst), each of three workers runs in its own process so
that its peak memory is its own:

* **opendss** -- OpenDSS (opendssdirect.py) compiles the file and solves it once in snapshot
  mode, controls off (the file's taps and capacitor states, as the engine reads them),
  convergence ``--tol``; its node voltages are the reference;
* **dense** / **sparse** -- :class:`grids.feeder3ph.ThreePhaseFeederModel` built with
  ``solver=Solver3ph.DENSE`` / ``SPARSE`` (reading the file through OpenDSS, building the
  model and its solver, the warm-up solves), then a cold single solve, a warm single solve and
  a cold batch of ``--batch`` scenarios at load multipliers 0.7..1.3 (mean 1: the load level
  the model was built and warmed up at; the dense path's batch iteration still builds its
  batch map on the first such call), the same batch again (the iterations alone) and, with
  ``--new-level``, one at 0.5..1.2 (mean 0.85: another level, so the dense path builds
  another preconditioner and the sparse one another LU; minutes on the dense path with
  thousands of load nodes).

Printed per worker: wall times, peak resident memory (``resource.getrusage``, ``ru_maxrss``)
and the memory after the imports (the baseline every worker pays); for the engine the largest
complex voltage difference to OpenDSS ``max_dv_pu`` and the relative loss difference (losses
summed over OpenDSS's power-delivery elements), and between the two solvers
``max_dv_dense_vs_sparse_pu``. Ratios: dense over sparse (build and solves)
and OpenDSS compile + solve over the sparse build + cold solve. BLAS runs with one thread.

Usage: ``python benchmarks/powerflow3ph_large.py MASTER.dss [--json] [--quick]
[--solvers dense sparse] [--batch 64] [--tol 1e-10] [--new-level]``. ``--quick``: a batch of
8 and the sparse path only (the dense build takes minutes on feeders of thousands of load
nodes).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import numpy as np  # noqa: E402

BATCH = 64
QUICK_BATCH = 8


def _rss_mb() -> float:
    """Peak resident memory of this process so far [MB] (``ru_maxrss`` is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _losses_kw(dss) -> float:
    """Losses summed over the power-delivery elements (``Circuit.Losses`` leaves out shunt
    reactors and faults; the engine counts every power-delivery element)."""
    from grids.opendss import NETWORK_CLASSES

    losses_w = 0.0
    for full in dss.Circuit.AllElementNames():
        dss.Circuit.SetActiveElement(full)
        if full.split(".")[0].lower() in NETWORK_CLASSES and dss.CktElement.Enabled():
            losses_w += dss.CktElement.Losses()[0]
    return losses_w / 1000.0


def worker_opendss(master: Path, out: Path, tol: float) -> dict:
    """Compile and solve in OpenDSS; save the node voltages by node name."""
    import opendssdirect as dss

    base_mb = _rss_mb()
    cwd = os.getcwd()
    t0 = time.perf_counter()
    try:
        dss.Text.Command("clear")
        dss.Text.Command(f'compile "{master}"')
    finally:
        os.chdir(cwd)
    t_compile = time.perf_counter() - t0
    dss.Text.Command("set controlmode=off")
    dss.Text.Command("set mode=snapshot")
    dss.Solution.Convergence(tol)
    dss.Solution.MaxIterations(1000)
    t0 = time.perf_counter()
    dss.Solution.Solve()
    t_solve = time.perf_counter() - t0
    flat = np.asarray(dss.Circuit.YNodeVArray())
    names = np.array([s.upper() for s in dss.Circuit.YNodeOrder()])
    np.savez(out, v=flat[0::2] + 1j * flat[1::2], names=names)
    return {
        "compile_s": t_compile,
        "solve_s": t_solve,
        "converged": bool(dss.Solution.Converged()),
        "iterations": int(dss.Solution.Iterations()),
        "losses_kw": _losses_kw(dss),
        "peak_rss_mb": _rss_mb(),
        "base_rss_mb": base_mb,
    }


def worker_engine(
    master: Path, out: Path, solver: str, tol: float, batch: int, new_level: bool
) -> dict:
    """Build the model with the given solver, time the solves; save the voltages."""
    from grids.feeder3ph import ThreePhaseFeederModel
    from grids.opendss import read_dss
    from grids.powerflow3ph_sparse import Solver3ph

    base_mb = _rss_mb()
    t0 = time.perf_counter()
    circuit = read_dss(master)
    t_read = time.perf_counter() - t0
    t0 = time.perf_counter()
    model = ThreePhaseFeederModel(circuit, solver=Solver3ph(solver))
    t_model = time.perf_counter() - t0
    t0 = time.perf_counter()
    cold = model.solve(warm_start=False, tol_pu=tol)
    t_cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    model.solve(tol_pu=tol)
    t_warm = time.perf_counter() - t0
    t0 = time.perf_counter()
    many = model.solve(load_mult=np.linspace(0.7, 1.3, batch), warm_start=False, tol_pu=tol)
    t_batch = time.perf_counter() - t0
    t0 = time.perf_counter()
    model.solve(load_mult=np.linspace(0.7, 1.3, batch), warm_start=False, tol_pu=tol)
    t_again = time.perf_counter() - t0
    t_new, new_ok = float("nan"), True
    if new_level:
        t0 = time.perf_counter()
        other = model.solve(load_mult=np.linspace(0.5, 1.2, batch), warm_start=False, tol_pu=tol)
        t_new = time.perf_counter() - t0
        new_ok = bool(other.converged.all())
    labels = np.array(
        [f"{b.upper()}.{p}" for b, p in zip(model.node_bus, model.node_phase, strict=True)]
    )
    np.savez(out, v=cold.v_v[0], names=labels, v_base=model.kv_base_ln * 1000.0)
    ends = np.concatenate(model.load_nodes) if model.n_load else np.zeros(0, dtype=int)
    return {
        "solver": model.solver.value,
        "n_node": model.n_node,
        "n_load": model.n_load,
        "n_load_nodes": int(np.unique(ends[ends >= 0]).size),
        "read_s": t_read,
        "build_s": t_model,
        "solve_cold_s": t_cold,
        "solve_warm_s": t_warm,
        "batch": batch,
        "batch_s": t_batch,
        "batch_again_s": t_again,
        "batch_iterations_max": int(many.iterations.max()),
        "batch_new_level_s": t_new,
        "batch_new_level_converged": new_ok,
        "iterations_cold": int(cold.iterations[0]),
        "converged": bool(cold.converged[0] and many.converged.all()),
        "losses_kw": float(cold.losses_kw[0]),
        "peak_rss_mb": _rss_mb(),
        "base_rss_mb": base_mb,
    }


def _run_worker(kind: str, master: Path, folder: Path, args) -> tuple[dict, Path]:
    out = folder / f"{kind}.npz"
    cmd = [
        sys.executable,
        __file__,
        str(master),
        "--worker",
        kind,
        "--out",
        str(out),
        "--tol",
        repr(args.tol),
        "--batch",
        str(args.batch),
        *(["--new-level"] if args.new_level else []),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"worker {kind} failed:\n{done.stderr.strip()}")
    return json.loads(done.stdout.strip().splitlines()[-1]), out


def _max_dv_pu(engine_npz: Path, reference_npz: Path) -> float:
    """Largest complex voltage difference to the reference [pu of the line-to-neutral base]."""
    eng, ref = np.load(engine_npz), np.load(reference_npz)
    pos = {name: k for k, name in enumerate(ref["names"])}
    v_ref = ref["v"][[pos[name] for name in eng["names"]]]
    return float(np.max(np.abs(eng["v"] - v_ref) / eng["v_base"]))


def bench(master: Path, args) -> dict:
    """All workers on one file, compared."""
    result: dict = {"master": str(master)}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        ref, ref_npz = _run_worker("opendss", master, folder, args)
        result["opendss"] = ref
        saved = {}
        for solver in args.solvers:
            res, npz = _run_worker(solver, master, folder, args)
            saved[solver] = npz
            res["max_dv_pu"] = _max_dv_pu(npz, ref_npz)
            res["losses_rel_diff"] = abs(res["losses_kw"] - ref["losses_kw"]) / abs(
                ref["losses_kw"]
            )
            result[solver] = res
        if len(saved) == 2:
            result["max_dv_dense_vs_sparse_pu"] = _max_dv_pu(saved["dense"], saved["sparse"])
    if "dense" in result and "sparse" in result:
        d, s = result["dense"], result["sparse"]
        result["ratio_build_dense_vs_sparse"] = d["build_s"] / s["build_s"]
        result["ratio_batch_dense_vs_sparse"] = d["batch_s"] / s["batch_s"]
        result["ratio_batch_again_dense_vs_sparse"] = d["batch_again_s"] / s["batch_again_s"]
        if args.new_level:
            result["ratio_batch_new_level_dense_vs_sparse"] = (
                d["batch_new_level_s"] / s["batch_new_level_s"]
            )
        result["ratio_peak_rss_dense_vs_sparse"] = d["peak_rss_mb"] / s["peak_rss_mb"]
    if "sparse" in result:
        s, o = result["sparse"], result["opendss"]
        result["ratio_sparse_read_build_solve_vs_opendss_compile_solve"] = (
            s["read_s"] + s["build_s"] + s["solve_cold_s"]
        ) / (o["compile_s"] + o["solve_s"])
    return result


def _print(r: dict) -> None:
    o = r["opendss"]
    print(r["master"])
    print(
        f"  OpenDSS: compile {o['compile_s']:.2f} s, solve {o['solve_s']:.3f} s "
        f"({o['iterations']} iterations), peak {o['peak_rss_mb']:.0f} MB"
    )
    for solver in ("dense", "sparse"):
        if solver not in r:
            continue
        e = r[solver]
        print(
            f"  {solver}: {e['n_node']} nodes, {e['n_load_nodes']} load nodes; read "
            f"{e['read_s']:.2f} s, build {e['build_s']:.2f} s, solve cold "
            f"{e['solve_cold_s']:.3f} s ({e['iterations_cold']} it.), warm "
            f"{e['solve_warm_s']:.3f} s, batch of {e['batch']} {e['batch_s']:.3f} s (again "
            f"{e['batch_again_s']:.3f} s; at a new load level {e['batch_new_level_s']:.2f} s); "
            "peak "
            f"{e['peak_rss_mb']:.0f} MB (after imports {e['base_rss_mb']:.0f} MB); max |dV| "
            f"{e['max_dv_pu']:.1e} pu, losses {e['losses_rel_diff']:.1e} rel."
        )
    if "max_dv_dense_vs_sparse_pu" in r:
        print(f"  max |dV| dense vs sparse: {r['max_dv_dense_vs_sparse_pu']:.1e} pu")
    for key in (
        "ratio_build_dense_vs_sparse",
        "ratio_batch_dense_vs_sparse",
        "ratio_batch_again_dense_vs_sparse",
        "ratio_batch_new_level_dense_vs_sparse",
        "ratio_peak_rss_dense_vs_sparse",
        "ratio_sparse_read_build_solve_vs_opendss_compile_solve",
    ):
        if key in r:
            print(f"  {key}: {r[key]:.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("master", type=Path, help="OpenDSS master file")
    parser.add_argument("--json", action="store_true", help="print JSON on stdout")
    parser.add_argument("--quick", action="store_true", help="sparse only, small batch")
    parser.add_argument("--solvers", nargs="+", choices=("dense", "sparse"), default=None)
    parser.add_argument("--batch", type=int, default=None, help="scenarios of the batch solve")
    parser.add_argument("--tol", type=float, default=1e-10, help="convergence [pu]")
    parser.add_argument(
        "--new-level", action="store_true", help="also a batch at another load level"
    )
    parser.add_argument("--worker", choices=("opendss", "dense", "sparse"), help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.batch = args.batch or (QUICK_BATCH if args.quick else BATCH)
    args.solvers = args.solvers or (["sparse"] if args.quick else ["dense", "sparse"])
    master = args.master.expanduser().resolve()
    if args.worker == "opendss":
        print(json.dumps(worker_opendss(master, args.out, args.tol)))
        return 0
    if args.worker:
        res = worker_engine(master, args.out, args.worker, args.tol, args.batch, args.new_level)
        print(json.dumps(res))
        return 0
    result = bench(master, args)
    if args.json:
        json.dump(result, sys.stdout, indent=2)
        print()
    else:
        _print(result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
