"""``v2g-cosim sweep``: run a parameter sweep (local processes or a Dask cluster), resumable."""

from __future__ import annotations

import argparse

from cosim.clitools import add_json_flag, emit_json

NAME = "sweep"
HELP = "run an inverter-setting / scenario parameter sweep into DIR/results.parquet (resumable)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sweep_file", metavar="SWEEP.toml", help="sweep file (see docs/sweeps.md)")
    parser.add_argument("--out", required=True, metavar="DIR", help="results directory")
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="local worker processes (default: all cores; 1 runs in this process)",
    )
    parser.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="run on an existing Dask distributed cluster, e.g. tcp://127.0.0.1:8786",
    )
    parser.add_argument(
        "--retry-failed", action="store_true", help="run again the runs recorded as failed"
    )
    parser.add_argument(
        "--validate-only",
        action="store_true",
        help="expand and validate every run's scenario, then stop",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    add_json_flag(parser)


def run(args: argparse.Namespace) -> int:
    import os

    # Parallelism comes from processes: one BLAS thread each. Many-threaded BLAS on the tiny
    # matrices of a study (e.g. the swing model's 5x5 matrix exponential) is up to 100x slower
    # when the cores are already busy. Effective for libraries not loaded yet (scipy's BLAS).
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(name, "1")

    from grids.errors import ScenarioError
    from studies.sweep import load_sweep, run_sweep

    if args.workers is not None and args.workers < 1:
        raise ScenarioError(f"--workers: {args.workers} must be >= 1")
    if args.workers is not None and args.scheduler:
        raise ScenarioError("--workers and --scheduler cannot be combined")
    spec = load_sweep(args.sweep_file, progress=not args.no_progress)
    if args.validate_only:
        doc = {"n_runs": len(spec.runs), "study": spec.study.value, "valid": True}
        if args.json:
            emit_json(doc)
        else:
            print(
                f"{args.sweep_file}: {len(spec.runs)} runs of study {spec.study.value}, all valid"
            )
        return 0
    summary = run_sweep(
        spec,
        args.out,
        workers=args.workers,
        scheduler=args.scheduler,
        retry_failed=args.retry_failed,
        progress=not args.no_progress,
    )
    doc = {
        "n_runs": summary.n_runs,
        "n_skipped": summary.n_skipped,
        "n_done": summary.n_done,
        "n_failed": summary.n_failed,
        "wall_s": summary.wall_s,
        "results": str(summary.results_path),
    }
    if args.json:
        emit_json(doc)
    else:
        print(
            f"{summary.n_done} run(s) done ({summary.n_failed} failed), {summary.n_skipped} "
            f"already in {summary.results_path}, {summary.wall_s:.1f} s"
        )
    return 0
