"""``v2g-cosim sweep``: run a parameter sweep (local processes or a Dask cluster), resumable."""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import re
import sys
from pathlib import Path

from cosim.clitools import (
    add_json_flag,
    check_input_file,
    check_output_dir,
    check_referenced_files,
    check_text_file,
    emit_json,
)

NAME = "sweep"
HELP = "run an inverter-setting / scenario parameter sweep into DIR/results.parquet (resumable)"
OWN_PROGRESS = True  # a progress bar over the runs


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
    add_scheduler_arguments(parser)
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


def add_scheduler_arguments(parser: argparse.ArgumentParser) -> None:
    """``--scheduler`` and its ``--tls-*`` files (shared by every command that runs on Dask)."""
    parser.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="run on an existing Dask distributed cluster: tcp://HOST:PORT or tls://HOST:PORT "
        "(Dask exchanges pickled data: trusted clusters only; see docs/sweeps.md)",
    )
    parser.add_argument(
        "--tls-ca", type=Path, default=None, metavar="FILE", help="CA certificate (tls:// only)"
    )
    parser.add_argument(
        "--tls-cert",
        type=Path,
        default=None,
        metavar="FILE",
        help="this client's certificate, PEM (tls:// only)",
    )
    parser.add_argument(
        "--tls-key",
        type=Path,
        default=None,
        metavar="FILE",
        help="this client's private key, PEM (tls:// only; omit if inside --tls-cert)",
    )


SCHEDULER_FORMS = "tcp://HOST:PORT or tls://HOST:PORT (e.g. tcp://127.0.0.1:8786)"
_ADDRESS = re.compile(
    r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+):(?P<port>[0-9]{1,5})$"
)
_TLS_KEYS = {
    "tls_ca": "distributed.comm.tls.ca-file",
    "tls_cert": "distributed.comm.tls.client.cert",
    "tls_key": "distributed.comm.tls.client.key",
}


def parse_scheduler(address: str) -> tuple[str, str, int]:
    """``tcp://host:port`` / ``tls://host:port`` -> (scheme, host, port).

    Raises
    ------
    ScenarioError
        Any other form (no scheme, http://, no port, a port outside 1..65535), listing the
        accepted forms.
    """
    from grids.errors import ScenarioError

    match = _ADDRESS.match(address.strip())
    if match is None:
        raise ScenarioError(
            f"--scheduler {address!r}: not a Dask scheduler address; expected {SCHEDULER_FORMS}"
        )
    scheme = match["scheme"].lower()
    if scheme not in ("tcp", "tls"):
        raise ScenarioError(
            f"--scheduler {address!r}: the {scheme}:// scheme is not a Dask scheduler protocol; "
            f"expected {SCHEDULER_FORMS}"
        )
    port = int(match["port"])
    if not 1 <= port <= 65535:
        raise ScenarioError(
            f"--scheduler {address!r}: port {port} is outside 1..65535; expected {SCHEDULER_FORMS}"
        )
    return scheme, match["host"].strip("[]"), port


def is_loopback(host: str) -> bool:
    """True for localhost and loopback IP addresses (127.0.0.0/8, ::1)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _tls_config(args: argparse.Namespace, scheme: str | None) -> dict:
    """Dask config keys for the TLS files given (checked to be readable files)."""
    from grids.errors import ScenarioError

    given = {name: getattr(args, name) for name in _TLS_KEYS if getattr(args, name) is not None}
    if not given:
        if scheme == "tls":
            import dask

            if not dask.config.get("distributed.comm.tls.ca-file", None):
                raise ScenarioError(
                    "a tls:// scheduler needs certificates: --tls-ca and --tls-cert (and "
                    "--tls-key), or distributed.comm.tls in the Dask configuration"
                )
        return {}
    if scheme != "tls":
        raise ScenarioError(
            "--tls-ca/--tls-cert/--tls-key need a tls:// scheduler address (--scheduler "
            "tls://HOST:PORT)"
        )
    if "tls_ca" not in given or "tls_cert" not in given:
        raise ScenarioError("a tls:// scheduler needs at least --tls-ca and --tls-cert")
    config = {}
    for name, path in given.items():
        option = "--" + name.replace("_", "-")
        check_input_file(path, what=option, max_bytes=1024 * 1024)
        config[_TLS_KEYS[name]] = str(Path(path).resolve())
    return config


def check_scheduler_arguments(args: argparse.Namespace) -> dict:
    """Check ``--workers``/``--scheduler``/``--tls-*`` together; warn for a remote scheduler.

    Returns
    -------
    dict
        The Dask configuration keys of the TLS files (empty without TLS).

    Raises
    ------
    ScenarioError
        A worker count below 1, both ``--workers`` and ``--scheduler``, a malformed address,
        TLS files without a tls:// scheduler (or missing for one).
    """
    from grids.errors import ScenarioError

    if args.workers is not None and args.workers < 1:
        raise ScenarioError(f"--workers: {args.workers} must be >= 1")
    if args.workers is not None and args.scheduler:
        raise ScenarioError("--workers and --scheduler cannot be combined")
    scheme = None
    if args.scheduler is not None:
        scheme, host, _ = parse_scheduler(args.scheduler)
        if not is_loopback(host):
            print(
                f"warning: {args.scheduler} is not on this machine. Dask exchanges pickled data "
                "(deserializing it can run code): use a cluster you trust, and tls:// with "
                "--tls-ca/--tls-cert/--tls-key across a network (docs/sweeps.md)",
                file=sys.stderr,
            )
    return _tls_config(args, scheme)


def sweep_violations(out_dir: Path) -> dict:
    """Per named limit, how many finished runs broke it (for the sweep's JSON).

    Returns
    -------
    dict
        ``violations``: ``[{"limit": name, "n_runs": count}, ...]`` over the runs recorded in
        ``out_dir`` (each run's own list is in the results store); ``limits_not_checked``: a
        sentence when the sweep's metrics do not record violations (said, not an empty list
        that reads as "nothing broken").
    """
    import json

    from grids.errors import ScenarioError
    from studies.sweep_store import STATUS_OK, read_results

    try:
        frame = read_results(out_dir)
    except ScenarioError:  # nothing recorded (no run finished): nothing broken, nothing to say
        return {"violations": [], "limits_not_checked": []}
    if "violations" not in frame.columns:
        return {
            "violations": [],
            "limits_not_checked": [
                "violations not recorded: the sweep's metrics do not include 'violations'"
            ],
        }
    counts: dict[str, int] = {}
    for value in frame.loc[frame["status"] == STATUS_OK, "violations"]:
        try:
            items = json.loads(value) if isinstance(value, str) else value
        except json.JSONDecodeError:
            continue
        if not isinstance(items, list):
            continue
        for limit in {item.get("limit") for item in items if isinstance(item, dict)}:
            counts[limit] = counts.get(limit, 0) + 1
    return {
        "violations": [{"limit": k, "n_runs": n} for k, n in sorted(counts.items())],
        "limits_not_checked": [],
    }


def run(args: argparse.Namespace) -> int:
    import os

    # Parallelism comes from processes: one BLAS thread each. Many-threaded BLAS on the tiny
    # matrices of a study (e.g. the swing model's 5x5 matrix exponential) is up to 100x slower
    # when the cores are already busy. Effective for libraries not loaded yet (scipy's BLAS).
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(name, "1")

    from cosim.clitools import register_study_sections
    from studies.sweep import load_sweep, run_sweep

    register_study_sections()  # before any scenario of the sweep is validated

    tls = check_scheduler_arguments(args)
    text = check_text_file(args.sweep_file, what="sweep file")
    check_referenced_files(text, base_dir=Path(args.sweep_file).parent, what=args.sweep_file)
    if not args.validate_only:
        check_output_dir(args.out)
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
    with contextlib.ExitStack() as stack:
        if tls:
            import dask

            stack.enter_context(dask.config.set(tls))
        summary = run_sweep(
            spec,
            args.out,
            workers=args.workers,
            scheduler=args.scheduler.strip() if args.scheduler else None,
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
    doc.update(sweep_violations(args.out))
    if args.json:
        emit_json(doc)
    else:
        print(
            f"{summary.n_done} run(s) done ({summary.n_failed} failed), {summary.n_skipped} "
            f"already in {summary.results_path}, {summary.wall_s:.1f} s"
        )
    return 0
