"""Sweep execution: the study runners, one run in a worker, local processes or Dask.

Runs that share a feeder share its preparation: each worker process keeps expensive shared
objects (the hosting-capacity study's prepared feeder, per feeder/load scale/slack voltage) in
a small LRU cache (:func:`shared_object`), and with local processes the first run executes in
the parent before the workers are forked, so that its imports, compiled kernels and cache are
inherited instead of being built by every worker at once.
"""

from __future__ import annotations

import contextlib
import copy
import ctypes
import itertools
import json
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cosim.scenario import validate_scenario
from grids.errors import ScenarioError, SimulationError
from grids.params import is_finite_number
from studies.sweep_spec import (
    StudyKind,
    SweepSpec,
    canonical_hash,
    progress_bar,
)
from studies.sweep_store import STATUS_FAILED, STATUS_OK, ResultsStore, check_same_sweep

# Study dispatch: each runner imports its own study where it runs. One sweep runs one kind of
# study, and importing all four study stacks (numba-compiled kernels, the co-simulation) costs
# ~1.1 s in every process that reads or runs a sweep; dask is imported only for a scheduler.


def _run_contingency(scenario: dict, workdir: Path) -> dict:
    # lazy: study dispatch (module note)
    from studies.contingency import run_contingency_study

    return run_contingency_study(scenario)


# Objects that many runs share (a loaded, scaled feeder) are built once per worker process and
# kept here, least recently used first out, keyed by a hash of what they are built from.
_SHARED_CACHE: OrderedDict[str, Any] = OrderedDict()


SHARED_CACHE_SIZE = 8


_SHARED_CACHE_STATS = {"hits": 0, "misses": 0}


_SHARED_CACHE_LOCK = threading.Lock()


def shared_object(parts: Mapping[str, Any], build: Callable[[], Any]) -> Any:
    """The object built by ``build()`` for ``parts``, built at most once per process (LRU).

    Callers must treat the returned object as read-only (copy it before use): it is shared by
    every later run of this worker with the same ``parts``.
    """
    key = canonical_hash(dict(parts))
    with _SHARED_CACHE_LOCK:  # Dask workers may run several runs in threads
        if key in _SHARED_CACHE:
            _SHARED_CACHE.move_to_end(key)
            _SHARED_CACHE_STATS["hits"] += 1
            return _SHARED_CACHE[key]
    value = build()  # outside the lock: two threads may both build it once, harmlessly
    with _SHARED_CACHE_LOCK:
        _SHARED_CACHE_STATS["misses"] += 1
        _SHARED_CACHE[key] = value
        while len(_SHARED_CACHE) > SHARED_CACHE_SIZE:
            _SHARED_CACHE.popitem(last=False)
    return value


def clear_shared_cache() -> None:
    """Forget every shared object of this process (tests; fresh per-run behaviour)."""
    with _SHARED_CACHE_LOCK:
        _SHARED_CACHE.clear()
        _SHARED_CACHE_STATS.update(hits=0, misses=0)


_HC_FEEDER_KEYS = ("feeder", "load_scale", "ext_grid_vm_pu")


def _hc_feeder_parts(scenario: Mapping[str, Any]) -> dict[str, Any] | None:
    """What the prepared feeder of a hosting-capacity run depends on, or None (not cacheable)."""
    feeder = scenario.get("feeder", "case33bw")
    load_scale = scenario.get("load_scale", 1.0)
    ext_grid_vm_pu = scenario.get("ext_grid_vm_pu")
    if not isinstance(feeder, str) or not is_finite_number(load_scale):
        return None
    if ext_grid_vm_pu is not None and not is_finite_number(ext_grid_vm_pu):
        return None
    return {
        "study": StudyKind.HOSTING_CAPACITY.value,
        "feeder": feeder,
        "load_scale": load_scale,
        "ext_grid_vm_pu": ext_grid_vm_pu,
    }


def _hc_prepared_net(parts: Mapping[str, Any]):
    """The shared prepared net of ``parts`` (built once per process; never modified)."""

    def build():
        # lazy: study dispatch (module note)
        from grids.powerflow import prepare_net

        net = prepare_net(
            parts["feeder"],
            load_scale=parts["load_scale"],
            ext_grid_vm_pu=parts["ext_grid_vm_pu"],
        )
        # the study names its feeder after the net when handed a net: keep the name the
        # scenario used (embedded feeders are already named so; files get their path)
        net.name = str(parts["feeder"])
        return net

    return shared_object(parts, build)


def _run_hosting_capacity(scenario: dict, workdir: Path) -> dict:
    """The hosting-capacity study on the worker's shared copy of the prepared feeder.

    Loading and scaling the feeder (``prepare_net``) is most of a small study's time, and the
    runs of a sweep mostly share it: it is prepared once per worker per (feeder, load scale,
    slack voltage) and each run gets a deep copy, handed to the study as an already prepared
    net (the study's documented input). Results are identical to the per-run path (tested).
    Anything unusual (a non-numeric load scale, a feeder that fails to load) takes the
    per-run path, so that the study reports it exactly as without the cache.
    """
    # lazy: study dispatch (module note)
    from studies.hosting_capacity import hosting_capacity_metrics

    parts = _hc_feeder_parts(scenario)
    net = None
    if parts is not None:
        try:
            net = copy.deepcopy(_hc_prepared_net(parts))
        except Exception:
            net = None
    if net is None:
        return hosting_capacity_metrics(scenario)
    shared = {k: v for k, v in scenario.items() if k not in _HC_FEEDER_KEYS}
    return hosting_capacity_metrics({**shared, "feeder": net})


def _run_black_start(scenario: dict, workdir: Path) -> dict:
    # lazy: study dispatch (module note)
    from studies.black_start import run_black_start_study

    return run_black_start_study(scenario)


def _run_cosim(scenario: dict, workdir: Path) -> dict:
    # lazy: study dispatch (module note)
    from cosim.world import run_scenario

    # the co-simulation writes its results file into the run's own directory
    result = run_scenario(validate_scenario(scenario), workdir, progress=False)
    doc = dict(result.metrics)
    # the run's broken limits, as every study reports them (a sweep may ask for them)
    violations = getattr(result, "violations", None) or []
    doc.setdefault("violations", [v if isinstance(v, Mapping) else v.to_dict() for v in violations])
    return doc


STUDY_RUNNERS: dict[StudyKind, Callable[[dict, Path], dict]] = {
    StudyKind.RUN: _run_cosim,
    StudyKind.CONTINGENCY: _run_contingency,
    StudyKind.HOSTING_CAPACITY: _run_hosting_capacity,
    StudyKind.BLACK_START: _run_black_start,
}
"""Study -> ``runner(scenario dict, work directory) -> JSON metrics dict``.

The work directory ``DIR/runs/<run_id>`` is not created for the runner; a study that writes
files creates it."""


# --------------------------------------------------------------------------------------------
# One run (executed in a worker)
# --------------------------------------------------------------------------------------------
def _lookup_metric(doc: Mapping[str, Any], name: str) -> Any:
    node: Any = doc
    for part in name.split("."):
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            available = ", ".join(sorted(map(str, doc))) if isinstance(doc, Mapping) else "-"
            raise SimulationError(
                f"metric {name!r} is not in the study output (available: {available})"
            )
    return node


def _metric_value(value: Any) -> Any:
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | float | np.integer | np.floating):
        return float(value)
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str)


def execute_run(
    study: str, run_id: str, params: dict, scenario: dict, metrics: Sequence[str], workdir: str
) -> dict[str, Any]:
    """Run one sweep run and return its results row (never raises for a failed run).

    Only ``Exception`` is caught: a KeyboardInterrupt (Ctrl-C, kill) propagates so that a
    run cut off is not recorded at all.
    """
    row: dict[str, Any] = {"run_id": run_id, "status": STATUS_OK, "error": None, "wall_s": 0.0}
    row.update(params)
    for name in metrics:
        row[name] = None
    run_dir = Path(workdir) / run_id  # created by the study if it writes anything
    start = time.perf_counter()
    try:
        doc = STUDY_RUNNERS[StudyKind(study)](copy.deepcopy(scenario), run_dir)
        for name in metrics:
            row[name] = _metric_value(_lookup_metric(doc, name))
    except Exception as error:  # a failed run never stops the sweep
        row["status"] = STATUS_FAILED
        row["error"] = f"{type(error).__name__}: {error}"
        for name in metrics:
            row[name] = None
    row["wall_s"] = time.perf_counter() - start
    return row


# --------------------------------------------------------------------------------------------
# Execution
# --------------------------------------------------------------------------------------------
@dataclass
class SweepSummary:
    """What a call of :func:`run_sweep` did."""

    n_runs: int
    n_skipped: int
    n_done: int
    n_failed: int
    wall_s: float
    results_path: Path


def _init_worker() -> None:
    """Worker start: leave Ctrl-C to the parent, and die with it.

    The parent stops the workers on Ctrl-C (a cut-off run is not recorded). If the parent is
    killed outright, Linux's parent-death signal ends the worker too, instead of leaving an
    orphan blocked on its task queue.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            pr_set_pdeathsig = 1
            libc.prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)


def _local_executor(workers: int):
    if sys.platform.startswith("linux"):
        # fork: workers start at once with every module the parent imported while validating
        # the runs (a fresh interpreter would pay seconds of numpy/pandas/scipy imports each)
        ctx = mp.get_context("fork")
    else:  # pragma: no cover - macOS / Windows
        ctx = mp.get_context("spawn")
    return ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker)


def run_sweep(
    spec: SweepSpec,
    out_dir: str | Path,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    retry_failed: bool = False,
    progress: bool = True,
) -> SweepSummary:
    """Run the missing runs of ``spec`` and store their rows in ``out_dir/results.parquet``.

    Parameters
    ----------
    spec : SweepSpec
        From :func:`load_sweep`.
    out_dir : path
        Results directory; an existing one is resumed (same sweep only).
    workers : int, optional
        Local worker processes (default: all cores); 1 runs in this process.
    scheduler : str, optional
        Address of a Dask distributed scheduler (``tcp://host:port``); the runs go there.
    retry_failed : bool
        Run again the runs recorded as failed.
    progress : bool
        Show a tqdm progress bar (done / failed / ETA) on stderr.

    Raises
    ------
    KeyboardInterrupt
        After Ctrl-C, once the completed runs are saved (cut-off runs are not recorded).
    ScenarioError
        If ``out_dir`` holds the results of a different sweep.
    """
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise ScenarioError(f"--out {out}: exists and is not a directory") from None
    except OSError as error:
        raise ScenarioError(f"--out {out}: cannot be created ({error.strerror})") from None
    check_same_sweep(spec, out)
    store = ResultsStore(out, columns=[*spec.param_keys, *spec.metrics])
    store.load()
    order = [r.run_id for r in spec.runs]
    todo = [
        r
        for r in spec.runs
        if r.run_id not in store.rows
        or (retry_failed and store.rows[r.run_id].get("status") == STATUS_FAILED)
    ]
    n_skipped = len(spec.runs) - len(todo)
    workdir = str(out / "runs")
    start = time.perf_counter()
    counts = {"done": 0, "failed": 0}
    bar = progress_bar(len(todo), progress)

    def record(row: dict[str, Any]) -> None:
        store.add(row)
        counts["done"] += 1
        if row["status"] != STATUS_OK:
            counts["failed"] += 1
        bar.set_postfix(done=counts["done"], failed=counts["failed"], refresh=False)
        bar.update(1)

    args = [
        (spec.study.value, r.run_id, r.params, r.scenario, list(spec.metrics), workdir)
        for r in todo
    ]
    try:
        if not todo:
            pass
        elif scheduler:
            _run_on_dask(args, scheduler, record)
        elif (workers or os.cpu_count() or 1) <= 1 or len(todo) == 1:
            for a in args:
                record(execute_run(*a))
        else:
            n_workers = workers or os.cpu_count() or 1
            if _warm_up_in_parent(spec.study, len(args), n_workers):
                # the first run in this process: imports, JIT compilation and the shared
                # feeder cache are then inherited by every forked worker instead of being
                # paid by each of them at the same time (a real run: its row is recorded)
                record(execute_run(*args[0]))
                args = args[1:]
            _run_on_processes(args, n_workers, record)
    finally:
        bar.close()
        store.write(order)
    return SweepSummary(
        n_runs=len(spec.runs),
        n_skipped=n_skipped,
        n_done=counts["done"],
        n_failed=counts["failed"],
        wall_s=time.perf_counter() - start,
        results_path=store.results_path,
    )


def run_tasks(
    func: Callable,
    args: Sequence[tuple],
    record: Callable[[Any], None],
    *,
    workers: int | None = None,
    scheduler: str | None = None,
) -> None:
    """Run ``func(*a)`` for every ``a`` of ``args`` the way a sweep runs its runs.

    In this process (one worker), on local forked processes (the sweep's pool: Ctrl-C and a
    dead parent stop the workers, a bounded number of tasks in flight) or on a Dask scheduler;
    ``record(result)`` is called in this process as each task finishes (completion order), so
    a caller that stores each result is resumable. Used by the regional runner.

    Parameters
    ----------
    func : callable
        A module-level function (pickled to the workers) that never raises for a failed task
        (it returns the failure as its result).
    args : sequence of tuple
        Positional arguments of each call.
    record : callable
        Called with each result, in this process.
    workers : int or None, keyword-only
        Local worker processes (default: all cores; 1 runs in this process).
    scheduler : str or None, keyword-only
        Dask scheduler address (``tcp://host:port``, ``tls://host:port``).

    Raises
    ------
    SimulationError
        A worker process died, or the scheduler cannot be reached.
    """
    args = list(args)
    if not args:
        return
    if scheduler:
        _run_on_dask(args, scheduler, record, func)
    elif (workers or os.cpu_count() or 1) <= 1 or len(args) == 1:
        for a in args:
            record(func(*a))
    else:
        _run_on_processes(args, workers or os.cpu_count() or 1, record, func)


WARM_UP_MIN_RUNS_PER_WORKER = 8
"""Below this many runs per worker, only studies with a known per-process start-up warm up."""

_STARTUP_HEAVY_STUDIES = frozenset({StudyKind.HOSTING_CAPACITY})


def _warm_up_in_parent(study: StudyKind, n_runs: int, workers: int) -> bool:
    """Whether the first run should execute in the parent before the workers are forked.

    Worth it when the workers inherit the warm-up (fork) and either the study has a known
    per-process start-up (the hosting-capacity study's first AC power flow compiles
    pandapower's numba kernels, ~4-10 s, against ~0.1 s per later run) or the sweep is long
    enough that one run done serially costs at most 1/8 of a run per worker. Never for
    ``run`` sweeps (mosaik co-simulations).
    """
    if n_runs < 2 or not sys.platform.startswith("linux"):  # spawned workers inherit nothing
        return False
    if study is StudyKind.RUN:
        # a co-simulation run starts mosaik (event loop, simulator connections): keep that
        # out of the process the workers are forked from
        return False
    return study in _STARTUP_HEAVY_STUDIES or n_runs >= WARM_UP_MIN_RUNS_PER_WORKER * workers


def _run_on_processes(
    args: list[tuple], workers: int, record: Callable, func: Callable = execute_run
) -> None:
    executor = _local_executor(min(workers, len(args)))
    pending: set = set()
    queue = iter(args)
    try:
        # keep a bounded number of runs in flight so that scenarios are not all pickled at once
        for a in itertools.islice(queue, 4 * workers):
            pending.add(executor.submit(func, *a))
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                try:
                    row = future.result()
                except BrokenProcessPool:
                    raise SimulationError(
                        "a sweep worker process died (out of memory or killed); the completed "
                        "runs are saved, run the same command again to resume"
                    ) from None
                record(row)
                nxt = next(queue, None)
                if nxt is not None:
                    pending.add(executor.submit(func, *nxt))
    except BaseException:
        for future in pending:
            future.cancel()
        for process in list(getattr(executor, "_processes", {}).values()):
            process.terminate()  # cut-off runs are simply not recorded
        executor.shutdown(wait=False, cancel_futures=True)
        raise
    executor.shutdown(wait=True)


def _run_on_dask(
    args: list[tuple], scheduler: str, record: Callable, func: Callable = execute_run
) -> None:
    # lazy: dask, ~1 s, only for a scheduler
    from distributed import Client, as_completed

    try:
        client = Client(scheduler, timeout="20s")
    except (OSError, TimeoutError) as error:
        raise SimulationError(
            f"cannot connect to the Dask scheduler {scheduler}: {error}"
        ) from None
    futures = []
    try:
        futures = [client.submit(func, *a, pure=False) for a in args]
        for future in as_completed(futures):
            if future.status == "error":
                error = future.exception()
                raise SimulationError(f"a Dask worker failed outside the study: {error}")
            record(future.result())
    except BaseException:
        client.cancel(futures)
        raise
    finally:
        client.close()
