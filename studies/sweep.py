"""Parameter sweeps over any study: sweep files, expansion, execution, resumable results.

A sweep file (TOML) names a study, a base scenario and the axes to vary::

    study = "contingency"            # run | contingency | hosting_capacity | black_start
    base = "base.toml"               # relative to the sweep file
    combine = "grid"                 # grid (cartesian product) | zip (element-wise)
    metrics = ["f_nadir_hz", "rocof_initial_hz_per_s"]
    seed = 0                         # seed of the Latin-hypercube sampling

    [[axis]]
    key = "frequency.h_s"            # dotted key path into the scenario
    values = [3.0, 4.0, 5.0]         # or linspace / logspace / lhs (see below)

    [[axis]]
    key = "frequency.r_pu"
    linspace = { start = 0.03, stop = 0.07, num = 5 }

Axis value generators: ``values = [...]``; ``linspace = {start, stop, num}``;
``logspace = {start, stop, num}`` (geometric spacing between the *values* start and stop);
``lhs = {low, high, count}`` (optionally ``scale = "log"``). All ``lhs`` axes are sampled
*jointly* as one seeded Latin hypercube of ``count`` points (the same count on every lhs axis),
which then acts as one zipped block in the grid/zip combination with the other axes.

Every run is the base scenario with its parameters applied as dotted-key overrides
(:func:`cosim.scenario.apply_overrides`); its id is a stable hash of the canonical JSON of its
parameters. Before anything runs, every run's scenario is built and validated with the owning
study's validation, and every problem (sweep file and runs) is reported at once.

Execution (:func:`run_sweep`) uses local processes (``concurrent.futures``, all cores by
default) or an existing Dask cluster (``scheduler="tcp://host:port"``). Results go to
``DIR/results.parquet`` (one row per run: ``run_id``, ``status``, ``error``, ``wall_s``, the
parameters by key path, the metrics by name), rewritten atomically (temp file +
``os.replace``); each completed run is also appended at once to the journal
``DIR/results.journal.jsonl`` so that a kill at any point loses no completed run. Running the
same sweep again resumes it.

Runs that share a feeder share its preparation: each worker process keeps expensive shared
objects (the hosting-capacity study's prepared feeder, per feeder/load scale/slack voltage) in
a small LRU cache (:func:`shared_object`), and with local processes the first run executes in
the parent before the workers are forked, so that its imports, compiled kernels and cache are
inherited instead of being built by every worker at once. Results are identical to fresh
per-run studies (tested).
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import itertools
import json
import math
import os
import threading
import time
import tomllib
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np

from grids.errors import ScenarioError, SimulationError, V2GCosimError, check_problems

RESULTS_FILE = "results.parquet"
JOURNAL_FILE = "results.journal.jsonl"
SPEC_FILE = "sweep.json"
FIXED_COLUMNS = ("run_id", "status", "error", "wall_s")
STATUS_OK = "ok"
STATUS_FAILED = "failed"
_MAX_LISTED_PROBLEMS = 60


class StudyKind(Enum):
    """Studies a sweep can drive."""

    RUN = "run"
    CONTINGENCY = "contingency"
    HOSTING_CAPACITY = "hosting_capacity"
    BLACK_START = "black_start"


class Combine(Enum):
    """How the axes are combined into runs."""

    GRID = "grid"
    ZIP = "zip"


# --------------------------------------------------------------------------------------------
# Study registry: each study owner's public "scenario dict -> JSON metrics dict" function,
# imported lazily (workers import only the study they run).
# --------------------------------------------------------------------------------------------
def _run_contingency(scenario: dict, workdir: Path) -> dict:
    from studies.contingency import run_contingency_study

    return run_contingency_study(scenario)


def _validate_contingency(scenario: dict) -> None:
    from studies.contingency import load_contingency_scenario

    load_contingency_scenario(scenario)


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
    key = _hash(dict(parts))
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
    if not isinstance(feeder, str) or not _is_number(load_scale):
        return None
    if ext_grid_vm_pu is not None and not _is_number(ext_grid_vm_pu):
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


def _validate_hosting_capacity(scenario: dict) -> None:
    """Check keys, enum values and criteria up front, from the study's own signature/types.

    (The study itself validates when it starts; this catches typos before a long sweep.)
    """
    import inspect

    from studies.hosting_capacity import (
        Control,
        HostingCapacityCriteria,
        Method,
        Mode,
        run_hosting_capacity_study,
    )

    if not isinstance(scenario, dict):
        raise ScenarioError("scenario: expected a table")
    fields = set(HostingCapacityCriteria.__dataclass_fields__)
    parameters = set(inspect.signature(run_hosting_capacity_study).parameters) - {"out_dir"}
    problems = [
        f"{key}: unknown key" for key in sorted(set(scenario) - parameters - fields - {"criteria"})
    ]
    for key, enum in (("mode", Mode), ("method", Method), ("control", Control)):
        if key in scenario:
            try:
                enum(scenario[key])
            except ValueError:
                allowed = ", ".join(e.value for e in enum)
                problems.append(f"{key}: {scenario[key]!r} is not one of {allowed}")
    criteria = dict(scenario.get("criteria") or {})
    criteria.update({k: v for k, v in scenario.items() if k in fields})
    unknown = sorted(set(criteria) - fields)
    problems += [f"criteria.{k}: unknown key" for k in unknown]
    if not unknown:
        try:
            problems += HostingCapacityCriteria(**criteria).problems()
        except (TypeError, ValueError) as error:
            problems.append(f"criteria: {error}")
    check_problems(problems, ScenarioError, "invalid hosting-capacity scenario")


def _run_black_start(scenario: dict, workdir: Path) -> dict:
    from studies.black_start import run_black_start_study

    return run_black_start_study(scenario)


def _validate_black_start(scenario: dict) -> None:
    from studies.black_start import load_black_start_scenario

    load_black_start_scenario(scenario)


def _run_cosim(scenario: dict, workdir: Path) -> dict:
    from cosim.scenario import validate_scenario
    from cosim.world import run_scenario

    # the co-simulation writes its results file into the run's own directory
    result = run_scenario(validate_scenario(scenario), workdir, progress=False)
    return result.metrics


def _validate_cosim(scenario: dict) -> None:
    from cosim.scenario import validate_scenario

    validate_scenario(scenario)


STUDY_RUNNERS: dict[StudyKind, Callable[[dict, Path], dict]] = {
    StudyKind.RUN: _run_cosim,
    StudyKind.CONTINGENCY: _run_contingency,
    StudyKind.HOSTING_CAPACITY: _run_hosting_capacity,
    StudyKind.BLACK_START: _run_black_start,
}
"""Study -> ``runner(scenario dict, work directory) -> JSON metrics dict``.

The work directory ``DIR/runs/<run_id>`` is not created for the runner; a study that writes
files creates it."""

STUDY_VALIDATORS: dict[StudyKind, Callable[[dict], None]] = {
    StudyKind.RUN: _validate_cosim,
    StudyKind.CONTINGENCY: _validate_contingency,
    StudyKind.HOSTING_CAPACITY: _validate_hosting_capacity,
    StudyKind.BLACK_START: _validate_black_start,
}
"""Study -> ``validate(scenario dict)`` raising ScenarioError with every problem."""


# --------------------------------------------------------------------------------------------
# Sweep specification
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Axis:
    """One swept key path and its values (LHS axes carry their bounds instead)."""

    key: str
    values: tuple[Any, ...] = ()
    lhs_low: float | None = None
    lhs_high: float | None = None
    lhs_count: int | None = None
    lhs_log: bool = False

    @property
    def is_lhs(self) -> bool:
        return self.lhs_count is not None


@dataclass(frozen=True)
class SweepRun:
    """One run: its id, its parameters (key path -> value) and its full scenario."""

    run_id: str
    params: dict[str, Any]
    scenario: dict[str, Any]


@dataclass
class SweepSpec:
    """A validated, expanded sweep."""

    study: StudyKind
    base_path: Path | None
    base: dict[str, Any]
    combine: Combine
    metrics: tuple[str, ...]
    axes: tuple[Axis, ...]
    seed: int
    runs: list[SweepRun] = field(default_factory=list)
    report: dict[str, Any] = field(default_factory=dict)
    source: str = "<sweep>"

    @property
    def param_keys(self) -> list[str]:
        return [a.key for a in self.axes]

    def fingerprint(self) -> str:
        """Hash of what makes results comparable: study, base scenario, metrics."""
        return _hash(
            {"study": self.study.value, "base": _canonical(self.base), "metrics": self.metrics}
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "study": self.study.value,
            "base": str(self.base_path) if self.base_path else None,
            "combine": self.combine.value,
            "metrics": list(self.metrics),
            "axes": [a.key for a in self.axes],
            "seed": self.seed,
            "n_runs": len(self.runs),
            "fingerprint": self.fingerprint(),
            "report": self.report,
            "source": self.source,
        }


def _canonical(value: Any) -> Any:
    """JSON-stable form: numbers as floats (3 == 3.0), numpy scalars unwrapped, keys sorted."""
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | float | np.integer | np.floating):
        return float(value)
    return value


def _hash(value: Any) -> str:
    text = json.dumps(_canonical(value), sort_keys=True, separators=(",", ":"), allow_nan=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def run_id_for(params: Mapping[str, Any]) -> str:
    """Stable id of a run: the first 16 hex digits of SHA-256 of its canonical parameters."""
    return _hash(dict(params))[:16]


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _range_args(spec: Any, where: str, problems: list[str]) -> tuple[float, float, int] | None:
    if isinstance(spec, list | tuple) and len(spec) == 3:
        spec = {"start": spec[0], "stop": spec[1], "num": spec[2]}
    if not isinstance(spec, Mapping):
        problems.append(f"{where}: {spec!r} must be a table {{start, stop, num}}")
        return None
    bad = False
    for key in sorted(set(spec) - {"start", "stop", "num"}):
        problems.append(f"{where}.{key}: unknown key (allowed: start, stop, num)")
        bad = True
    for key in ("start", "stop"):
        if key not in spec:
            problems.append(f"{where}.{key}: missing")
            bad = True
        elif not _is_number(spec[key]):
            problems.append(f"{where}.{key}: {spec[key]!r} is not a finite number")
            bad = True
    num = spec.get("num")
    if num is None:
        problems.append(f"{where}.num: missing")
        bad = True
    elif not isinstance(num, int) or isinstance(num, bool) or num < 1:
        problems.append(f"{where}.num: {num!r} must be an integer >= 1")
        bad = True
    if bad:
        return None
    return float(spec["start"]), float(spec["stop"]), int(num)


def _parse_axis(item: Any, i: int, problems: list[str]) -> Axis | None:
    where = f"axis[{i}]"
    if not isinstance(item, Mapping):
        problems.append(f"{where}: {item!r} is not a table")
        return None
    allowed = {"key", "values", "linspace", "logspace", "lhs"}
    for key in sorted(set(item) - allowed):
        problems.append(f"{where}.{key}: unknown key (allowed: {', '.join(sorted(allowed))})")
    key = item.get("key")
    if not isinstance(key, str) or not key or any(not part for part in key.split(".")):
        problems.append(f"{where}.key: {key!r} must be a dotted key path like 'frequency.h_s'")
        key = None
    given = [g for g in ("values", "linspace", "logspace", "lhs") if g in item]
    if len(given) != 1:
        problems.append(
            f"{where}: give exactly one of values, linspace, logspace, lhs "
            f"(got {', '.join(given) or 'none'})"
        )
        return None
    kind = given[0]
    spec = item[kind]
    if kind == "values":
        if not isinstance(spec, list) or not spec:
            problems.append(f"{where}.values: {spec!r} must be a non-empty list")
            return None
        return Axis(key, tuple(spec)) if key else None
    if kind in ("linspace", "logspace"):
        args = _range_args(spec, f"{where}.{kind}", problems)
        if args is None:
            return None
        start, stop, num = args
        if kind == "logspace":
            if start <= 0 or stop <= 0:
                problems.append(
                    f"{where}.logspace: start and stop must be > 0 (values, not exponents)"
                )
                return None
            values = np.geomspace(start, stop, num)
        else:
            values = np.linspace(start, stop, num)
        return Axis(key, tuple(float(v) for v in values)) if key else None
    # lhs
    if not isinstance(spec, Mapping):
        problems.append(f"{where}.lhs: {spec!r} must be a table {{low, high, count}}")
        return None
    for k in sorted(set(spec) - {"low", "high", "count", "scale"}):
        problems.append(f"{where}.lhs.{k}: unknown key (allowed: low, high, count, scale)")
    low, high, count = spec.get("low"), spec.get("high"), spec.get("count")
    ok = True
    for name, value in (("low", low), ("high", high)):
        if not _is_number(value):
            problems.append(f"{where}.lhs.{name}: {value!r} is not a finite number")
            ok = False
    if ok and not low < high:
        problems.append(f"{where}.lhs: low {low} must be below high {high}")
        ok = False
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        problems.append(f"{where}.lhs.count: {count!r} must be an integer >= 1")
        ok = False
    scale = spec.get("scale", "linear")
    if scale not in ("linear", "log"):
        problems.append(f"{where}.lhs.scale: {scale!r} is not one of linear, log")
        ok = False
    elif ok and scale == "log" and low <= 0:
        problems.append(f"{where}.lhs.low: {low} must be > 0 with scale = 'log'")
        ok = False
    if not ok or key is None:
        return None
    return Axis(
        key, lhs_low=float(low), lhs_high=float(high), lhs_count=count, lhs_log=scale == "log"
    )


def latin_hypercube(n_samples: int, n_dims: int, *, seed: int) -> np.ndarray:
    """Seeded Latin-hypercube sample in [0, 1)^d, shape (n_samples, n_dims).

    Each dimension has exactly one point in each of the ``n_samples`` equal strata
    (McKay, Beckman & Conover, Technometrics 21(2), 1979), jittered uniformly inside it.
    """
    rng = np.random.default_rng(seed)
    u = np.empty((n_samples, n_dims))
    for d in range(n_dims):
        u[:, d] = (rng.permutation(n_samples) + rng.random(n_samples)) / n_samples
    return u


def expand_axes(axes: Sequence[Axis], *, combine: Combine, seed: int = 0) -> list[dict[str, Any]]:
    """Parameter dicts (key path -> value), one per run, in a deterministic order.

    LHS axes form one jointly sampled block; the blocks (each plain axis is a block of its own)
    are combined as a cartesian product (``GRID``, first axis slowest) or element-wise
    (``ZIP``, all blocks the same length).
    """
    blocks: list[list[dict[str, Any]]] = []
    lhs_axes = [a for a in axes if a.is_lhs]
    lhs_block: list[dict[str, Any]] | None = None
    if lhs_axes:
        n = lhs_axes[0].lhs_count or 0
        u = latin_hypercube(n, len(lhs_axes), seed=seed)
        lhs_block = []
        for row in u:
            point = {}
            for a, x in zip(lhs_axes, row, strict=True):
                if a.lhs_log:
                    lo, hi = math.log(a.lhs_low), math.log(a.lhs_high)
                    point[a.key] = float(math.exp(lo + x * (hi - lo)))
                else:
                    point[a.key] = float(a.lhs_low + x * (a.lhs_high - a.lhs_low))
            lhs_block.append(point)
    for a in axes:
        if a.is_lhs:
            if lhs_block is not None and a is lhs_axes[0]:
                blocks.append(lhs_block)  # at the position of the first lhs axis
            continue
        blocks.append([{a.key: v} for v in a.values])
    if not blocks:
        return [{}]
    if combine is Combine.ZIP:
        lengths = {len(b) for b in blocks}
        if len(lengths) != 1:
            raise ScenarioError(
                f"combine = 'zip' needs axes of equal length (got {sorted(lengths)})"
            )
        combos = zip(*blocks, strict=True)
    else:
        combos = itertools.product(*blocks)
    out = []
    for combo in combos:
        params: dict[str, Any] = {}
        for part in combo:
            params.update(part)
        out.append(params)
    return out


_PATH_SUFFIXES = (".csv", ".parquet", ".json", ".toml", ".h5", ".hdf5", ".feather", ".p")


def _absolutize_paths(value: Any, base_dir: Path) -> Any:
    """Make relative data-file references absolute, so runs do not depend on the cwd."""
    if isinstance(value, dict):
        return {k: _absolutize_paths(v, base_dir) for k, v in value.items()}
    if isinstance(value, list):
        return [_absolutize_paths(v, base_dir) for v in value]
    if isinstance(value, str) and value.lower().endswith(_PATH_SUFFIXES):
        path = Path(value)
        if not path.is_absolute() and (base_dir / path).exists():
            return str((base_dir / path).resolve())
    return value


def _summary_of_params(params: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in params.items())


def parse_sweep(
    data: Mapping[str, Any],
    *,
    base_dir: str | Path,
    source: str = "<sweep>",
    progress: bool = False,
) -> SweepSpec:
    """Validate a parsed sweep table, expand its runs and validate every run's scenario.

    Raises
    ------
    ScenarioError
        Listing every problem: of the sweep file (key paths ``study``, ``axis[1].values`` ...)
        and of every run's scenario (prefixed with the run's parameters).
    """
    from cosim.scenario import apply_overrides, read_toml

    base_dir = Path(base_dir)
    problems: list[str] = []
    allowed = {"study", "base", "combine", "metrics", "axis", "seed", "report"}
    for key in sorted(set(data) - allowed):
        problems.append(f"{key}: unknown key (allowed: {', '.join(sorted(allowed))})")
    study = None
    try:
        study = StudyKind(data.get("study"))
    except ValueError:
        choices = ", ".join(k.value for k in StudyKind)
        problems.append(f"study: {data.get('study')!r} is not one of {choices}")
    combine = Combine.GRID
    try:
        combine = Combine(data.get("combine", "grid"))
    except ValueError:
        problems.append(f"combine: {data.get('combine')!r} is not one of grid, zip")
    metrics = data.get("metrics")
    if (
        not isinstance(metrics, list)
        or not metrics
        or not all(isinstance(m, str) and m for m in metrics)
    ):
        problems.append(f"metrics: {metrics!r} must be a non-empty list of metric names")
        metrics = []
    elif len(set(metrics)) != len(metrics):
        problems.append("metrics: names must be unique")
    seed = data.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        problems.append(f"seed: {seed!r} must be an integer >= 0")
        seed = 0
    report = data.get("report", {})
    if not isinstance(report, Mapping):
        problems.append(f"report: {report!r} must be a table")
        report = {}
    base_path: Path | None = None
    base: dict[str, Any] = {}
    raw_base = data.get("base")
    if not isinstance(raw_base, str) or not raw_base:
        problems.append(f"base: {raw_base!r} must be the path of a scenario file")
    else:
        base_path = (base_dir / raw_base).resolve()
        if not base_path.is_file():
            problems.append(f"base: {raw_base!r} does not exist (looked in {base_dir})")
        else:
            try:
                base = _absolutize_paths(read_toml(base_path), base_path.parent)
            except ScenarioError as error:
                problems.append(f"base: {error}")
    axes_raw = data.get("axis", [])
    axes: list[Axis] = []
    if not isinstance(axes_raw, list):
        problems.append("axis: must be an array of tables [[axis]]")
        axes_raw = []
    for i, item in enumerate(axes_raw):
        axis = _parse_axis(item, i, problems)
        if axis is not None:
            axes.append(axis)
    keys = [a.key for a in axes]
    for key in sorted({k for k in keys if keys.count(k) > 1}):
        problems.append(f"axis: key {key!r} appears more than once")
    lhs_counts = {a.lhs_count for a in axes if a.is_lhs}
    if len(lhs_counts) > 1:
        problems.append(f"axis: all lhs axes must have the same count (got {sorted(lhs_counts)})")
    if problems:
        check_problems(problems, ScenarioError, f"{source}: invalid sweep file")
    if not axes:
        problems.append("axis: at least one [[axis]] table is needed")
    try:
        param_sets = expand_axes(axes, combine=combine, seed=seed) if axes else []
    except ScenarioError as error:
        problems.append(str(error))
        param_sets = []
    check_problems(problems, ScenarioError, f"{source}: invalid sweep file")
    assert study is not None
    validate = STUDY_VALIDATORS[study]
    runs: list[SweepRun] = []
    run_problems: dict[str, list[str]] = {}
    seen: dict[str, dict[str, Any]] = {}
    # validating thousands of scenarios takes a while: show it (CLI only)
    bar = _progress(len(param_sets), progress and len(param_sets) >= 200, desc="validate")
    for params in param_sets:
        bar.update(1)
        rid = run_id_for(params)
        label = f"run {rid} ({_summary_of_params(params)})"
        if rid in seen:
            problems.append(
                f"axis: {label} appears twice (the same parameters as "
                f"{_summary_of_params(seen[rid])}); remove the duplicate value"
            )
            continue
        seen[rid] = params
        try:
            scenario = apply_overrides(base, params)
            validate(scenario)
        except V2GCosimError as error:
            for p in error.problems or [error.summary]:
                run_problems.setdefault(p, []).append(label)
            continue
        except Exception as error:  # a validator tripped over a value of the wrong type
            run_problems.setdefault(f"{type(error).__name__}: {error}", []).append(label)
            continue
        runs.append(SweepRun(rid, params, scenario))
    bar.close()
    for problem, labels in run_problems.items():
        extra = f" and {len(labels) - 1} more run(s)" if len(labels) > 1 else ""
        problems.append(f"{labels[0]}{extra}: {problem}")
    if len(problems) > _MAX_LISTED_PROBLEMS:
        n_more = len(problems) - _MAX_LISTED_PROBLEMS
        problems = [*problems[:_MAX_LISTED_PROBLEMS], f"... and {n_more} more problems"]
    check_problems(problems, ScenarioError, f"{source}: invalid sweep")
    return SweepSpec(
        study=study,
        base_path=base_path,
        base=base,
        combine=combine,
        metrics=tuple(metrics),
        axes=tuple(axes),
        seed=seed,
        runs=runs,
        report=dict(report),
        source=source,
    )


def load_sweep(path: str | Path, *, progress: bool = False) -> SweepSpec:
    """Read, validate and expand a sweep file (see the module docstring).

    ``progress`` shows a progress bar while the runs' scenarios are validated (large sweeps).
    """
    p = Path(path)
    if not p.is_file():
        raise ScenarioError(f"{p}: sweep file does not exist")
    try:
        with p.open("rb") as handle:
            data = tomllib.load(handle)
    except tomllib.TOMLDecodeError as error:
        raise ScenarioError(f"{p}: not valid TOML: {error}") from None
    return parse_sweep(data, base_dir=p.resolve().parent, source=str(p), progress=progress)


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
# Results store
# --------------------------------------------------------------------------------------------
class ResultsStore:
    """Rows by run id, persisted as ``results.parquet`` (atomic) plus an append-only journal.

    The journal gets every completed row at once (one JSON line, flushed), so a kill loses no
    completed run; the Parquet file is rewritten atomically (temp file + ``os.replace``) after
    a completed run once ``min_interval_s`` (default 5 s) has passed since the last write and
    at least 50 times the last write's duration (which keeps the parent's share of the CPU,
    which the workers need, below ~2 %), and at the end.
    :meth:`load` merges both (the journal wins), so nothing is duplicated.
    """

    def __init__(
        self, out_dir: str | Path, *, columns: Sequence[str] = (), min_interval_s: float = 5.0
    ) -> None:
        self.out_dir = Path(out_dir)
        self.columns = list(dict.fromkeys([*FIXED_COLUMNS, *columns]))
        self.rows: dict[str, dict[str, Any]] = {}
        self._last_write_end = 0.0
        self._last_write_s = 0.0
        self._dirty = False
        self.min_interval_s = min_interval_s

    @property
    def results_path(self) -> Path:
        return self.out_dir / RESULTS_FILE

    @property
    def journal_path(self) -> Path:
        return self.out_dir / JOURNAL_FILE

    def load(self) -> None:
        import pandas as pd

        if self.results_path.is_file():
            try:
                frame = pd.read_parquet(self.results_path)
            except Exception as error:
                raise SimulationError(f"{self.results_path}: cannot be read ({error})") from None
            for record in frame.to_dict("records"):
                self.rows[str(record["run_id"])] = {
                    k: (None if _is_nan(v) else v) for k, v in record.items()
                }
            for column in frame.columns:
                if column not in self.columns:
                    self.columns.append(column)
        if self.journal_path.is_file():
            with self.journal_path.open(encoding="utf-8") as handle:
                for line in handle:
                    try:
                        record = json.loads(line)
                    except json.JSONDecodeError:
                        continue  # a line cut by a kill mid-write: that run was not completed
                    self.rows[str(record["run_id"])] = record
                    self._dirty = True

    def add(self, row: Mapping[str, Any]) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        with self.journal_path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(dict(row), default=str) + "\n")
            handle.flush()
        self.rows[str(row["run_id"])] = dict(row)
        self._dirty = True
        since_s = time.perf_counter() - self._last_write_end
        if since_s >= max(50.0 * self._last_write_s, self.min_interval_s):
            self.write()

    def frame(self, order: Sequence[str] | None = None):
        import pandas as pd

        ids = list(self.rows)
        if order is not None:
            rank = {rid: i for i, rid in enumerate(order)}
            ids.sort(key=lambda rid: rank.get(rid, len(rank)))
        records = [self.rows[rid] for rid in ids]
        frame = pd.DataFrame.from_records(records, columns=self.columns) if records else None
        if frame is None:
            frame = pd.DataFrame({c: pd.Series(dtype=object) for c in self.columns})
        for column in frame.columns:
            if column in ("run_id", "status", "error"):
                frame[column] = frame[column].astype(object)
            elif column == "wall_s":
                frame[column] = pd.to_numeric(frame[column], errors="coerce")
            else:
                frame[column] = _tidy_column(frame[column])
        return frame

    def write(self, order: Sequence[str] | None = None) -> None:
        if not self._dirty and self.results_path.is_file():
            return
        start = time.perf_counter()
        self.out_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.results_path.with_name(f".{RESULTS_FILE}.{os.getpid()}.tmp")
        self.frame(order).to_parquet(tmp, index=False)
        os.replace(tmp, self.results_path)
        # every journal row is now in the Parquet file
        with self.journal_path.open("w", encoding="utf-8"):
            pass
        self._dirty = False
        self._last_write_end = time.perf_counter()
        self._last_write_s = self._last_write_end - start


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _tidy_column(series):
    """Numbers stay numbers; mixed or nested values become strings (Parquet needs one type)."""
    import pandas as pd

    values = [v for v in series if v is not None and not _is_nan(v)]
    if all(isinstance(v, bool | np.bool_) for v in values) and values:
        return series.astype(object)
    complete = len(values) == len(series)
    if complete and values and all(isinstance(v, int | np.integer) for v in values):
        return series.astype("int64")  # e.g. a swept vehicle count stays an integer
    if all(isinstance(v, int | float | np.integer | np.floating) for v in values):
        return pd.to_numeric(series, errors="coerce").astype(float)
    if all(isinstance(v, str) for v in values):
        return series.astype(object)
    return series.map(lambda v: None if v is None else json.dumps(v, default=str)).astype(object)


def read_results(out_dir: str | Path):
    """The results table of a sweep directory (Parquet merged with the journal)."""
    store = ResultsStore(out_dir)
    if not store.results_path.is_file() and not store.journal_path.is_file():
        raise ScenarioError(f"{out_dir}: no {RESULTS_FILE} (not a sweep output directory)")
    store.load()
    return store.frame()


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
    import signal
    import sys

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            pr_set_pdeathsig = 1
            libc.prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)


def _local_executor(workers: int):
    import multiprocessing as mp
    import sys
    from concurrent.futures import ProcessPoolExecutor

    if sys.platform.startswith("linux"):
        # fork: workers start at once with every module the parent imported while validating
        # the runs (a fresh interpreter would pay seconds of numpy/pandas/scipy imports each)
        ctx = mp.get_context("fork")
    else:  # pragma: no cover - macOS / Windows
        ctx = mp.get_context("spawn")
    return ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker)


def _progress(total: int, enabled: bool, *, desc: str = "sweep"):
    from tqdm import tqdm

    tqdm.monitor_interval = 0  # no monitor thread: workers are forked from this process
    return tqdm(total=total, desc=desc, unit="run", disable=not enabled, dynamic_ncols=True)


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
    _check_same_sweep(spec, out)
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
    bar = _progress(len(todo), progress)

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
    import sys

    if n_runs < 2 or not sys.platform.startswith("linux"):  # spawned workers inherit nothing
        return False
    if study is StudyKind.RUN:
        # a co-simulation run starts mosaik (event loop, simulator connections): keep that
        # out of the process the workers are forked from
        return False
    return study in _STARTUP_HEAVY_STUDIES or n_runs >= WARM_UP_MIN_RUNS_PER_WORKER * workers


def _run_on_processes(args: list[tuple], workers: int, record: Callable) -> None:
    from concurrent.futures import FIRST_COMPLETED, wait
    from concurrent.futures.process import BrokenProcessPool

    executor = _local_executor(min(workers, len(args)))
    pending: set = set()
    queue = iter(args)
    try:
        # keep a bounded number of runs in flight so that scenarios are not all pickled at once
        for a in itertools.islice(queue, 4 * workers):
            pending.add(executor.submit(execute_run, *a))
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
                    pending.add(executor.submit(execute_run, *nxt))
    except BaseException:
        for future in pending:
            future.cancel()
        for process in list(getattr(executor, "_processes", {}).values()):
            process.terminate()  # cut-off runs are simply not recorded
        executor.shutdown(wait=False, cancel_futures=True)
        raise
    executor.shutdown(wait=True)


def _run_on_dask(args: list[tuple], scheduler: str, record: Callable) -> None:
    from distributed import Client, as_completed

    try:
        client = Client(scheduler, timeout="20s")
    except (OSError, TimeoutError) as error:
        raise SimulationError(
            f"cannot connect to the Dask scheduler {scheduler}: {error}"
        ) from None
    futures = []
    try:
        futures = [client.submit(execute_run, *a, pure=False) for a in args]
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


def _check_same_sweep(spec: SweepSpec, out: Path) -> None:
    path = out / SPEC_FILE
    current = spec.to_json()
    if path.is_file():
        try:
            previous = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            previous = {}
        if previous.get("fingerprint") not in (None, current["fingerprint"]):
            raise ScenarioError(
                f"{out}: holds the results of a different sweep (study, base scenario or "
                "metrics changed); use another --out directory"
            )
    tmp = path.with_name(f".{SPEC_FILE}.tmp")
    tmp.write_text(json.dumps(current, indent=2, default=str), encoding="utf-8")
    os.replace(tmp, path)


def read_spec(out_dir: str | Path) -> dict[str, Any]:
    """The ``sweep.json`` description written next to the results."""
    path = Path(out_dir) / SPEC_FILE
    if not path.is_file():
        raise ScenarioError(f"{out_dir}: no {SPEC_FILE} (not a sweep output directory)")
    return json.loads(path.read_text(encoding="utf-8"))


def iter_axis_values(frame, keys: Iterable[str]) -> dict[str, list]:
    """Distinct values of each parameter column, sorted (for reports)."""
    return {k: sorted(frame[k].dropna().unique().tolist()) for k in keys if k in frame}
