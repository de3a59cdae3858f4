"""Sweep specification: the sweep file, its axes, the expansion into runs and the up-front
validation of every run (see :mod:`studies.sweep` for the file format).

Everything that can be checked before a run is checked here, all problems at once: the sweep
file's keys, the axes, every run's scenario (with the owning study's validation) and the
metric names (against the study's list of metrics, :func:`study_metric_names`). A sweep
refused here has touched nothing on disk.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from cosim.scenario import apply_overrides, read_toml, validate_scenario
from grids.errors import ScenarioError, V2GCosimError, check_problems
from grids.params import REQUIRED, Param, read_params

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
# Study validators and metric lists: each study's own, imported where it is used. One sweep
# runs one kind of study; importing all four study stacks (numba-compiled kernels, pandapower
# feeders, the co-simulation) would cost ~1 s in every process that reads or runs a sweep.
# --------------------------------------------------------------------------------------------
def _validate_contingency(scenario: dict) -> None:
    # lazy: study dispatch
    from studies.contingency import load_contingency_scenario

    load_contingency_scenario(scenario)


def _validate_hosting_capacity(scenario: dict) -> None:
    """The study's own scenario validation (declared parameters, criteria), before any run."""
    # lazy: study dispatch
    from studies.hosting_capacity import read_hosting_capacity_scenario

    read_hosting_capacity_scenario(scenario)


def _validate_black_start(scenario: dict) -> None:
    # lazy: study dispatch
    from studies.black_start import load_black_start_scenario

    load_black_start_scenario(scenario)


def _validate_cosim(scenario: dict) -> None:
    validate_scenario(scenario)


STUDY_VALIDATORS: dict[StudyKind, Callable[[dict], None]] = {
    StudyKind.RUN: _validate_cosim,
    StudyKind.CONTINGENCY: _validate_contingency,
    StudyKind.HOSTING_CAPACITY: _validate_hosting_capacity,
    StudyKind.BLACK_START: _validate_black_start,
}
"""Study -> ``validate(scenario dict)`` raising ScenarioError with every problem."""


def study_metric_names(study: StudyKind) -> tuple[str, ...]:
    """The metrics a study reports (the top-level keys of its JSON document).

    Parameters
    ----------
    study : StudyKind
        The study of the sweep.

    Returns
    -------
    tuple of str
        Valid first parts of a sweep's metric names (a metric may go deeper with dots,
        ``steps.0.accepted``).
    """
    if study is StudyKind.CONTINGENCY:
        # lazy: study dispatch
        from studies.contingency_simulation import CASE_METRIC_KEYS

        return CASE_METRIC_KEYS
    if study is StudyKind.HOSTING_CAPACITY:
        # lazy: study dispatch
        from studies.hosting_capacity import METRIC_KEYS as HC_METRIC_KEYS

        return HC_METRIC_KEYS
    if study is StudyKind.BLACK_START:
        # lazy: study dispatch
        from studies.black_start import METRIC_KEYS as BLACK_START_METRIC_KEYS

        return BLACK_START_METRIC_KEYS
    # lazy: study dispatch
    from cosim.world import RUN_METRIC_KEYS

    return RUN_METRIC_KEYS


def metric_problems(study: StudyKind, metrics: Sequence[str]) -> list[str]:
    """One problem per metric name the study does not report (with the valid names).

    Parameters
    ----------
    study : StudyKind
        The study.
    metrics : sequence of str
        The sweep's ``metrics``.

    Returns
    -------
    list of str
        Empty when every name is known.
    """
    valid = study_metric_names(study)
    bad = [m for m in metrics if m.split(".", 1)[0] not in valid]
    return [
        f"metrics: {name!r} is not a metric of the {study.value} study (valid: {', '.join(valid)})"
        for name in bad
    ]


def progress_bar(total: int, enabled: bool, *, desc: str = "sweep"):
    """A tqdm bar on stderr (disabled: a no-op object with the same methods)."""
    tqdm.monitor_interval = 0  # no monitor thread: workers are forked from this process
    return tqdm(total=total, desc=desc, unit="run", disable=not enabled, dynamic_ncols=True)


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
        return canonical_hash(
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


def canonical_hash(value: Any) -> str:
    """SHA-256 hex digest of the canonical JSON of ``value`` (numbers as floats, keys sorted)."""
    text = json.dumps(_canonical(value), sort_keys=True, separators=(",", ":"), allow_nan=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def run_id_for(params: Mapping[str, Any]) -> str:
    """Stable id of a run: the first 16 hex digits of SHA-256 of its canonical parameters."""
    return canonical_hash(dict(params))[:16]


#: Most values one axis generator (``linspace``, ``logspace``, ``lhs``) may produce.
MAX_AXIS_VALUES = 100_000

#: Most runs one sweep may expand to (validating and storing them must fit in memory).
MAX_RUNS = 1_000_000


def _run_count(axes: Sequence[Axis], combine: Combine) -> int:
    """How many runs the axes expand to (before duplicates are removed)."""
    lhs = [a.lhs_count for a in axes if a.is_lhs]
    lengths = [len(a.values) for a in axes if not a.is_lhs] + ([lhs[0]] if lhs else [])
    if not lengths:
        return 0
    if combine is Combine.ZIP:
        return max(lengths)
    return math.prod(lengths)


#: ``linspace``/``logspace = {start, stop, num}`` (declared once; read with the kit).
RANGE_PARAMS: tuple[Param, ...] = (
    Param("start", REQUIRED, doc="first value"),
    Param("stop", REQUIRED, doc="last value"),
    Param("num", REQUIRED, kind=int, lo=1, hi=MAX_AXIS_VALUES, doc="number of values"),
)
#: ``lhs = {low, high, count, scale}``.
LHS_PARAMS: tuple[Param, ...] = (
    Param("low", REQUIRED, doc="lower bound of the sampled interval"),
    Param("high", REQUIRED, doc="upper bound"),
    Param("count", REQUIRED, kind=int, lo=1, hi=MAX_AXIS_VALUES, doc="number of samples"),
    Param("scale", "linear", kind=str, choices=("linear", "log"), doc="sampling scale"),
)


def _range_args(spec: Any, where: str, problems: list[str]) -> tuple[float, float, int] | None:
    if isinstance(spec, list | tuple) and len(spec) == 3:
        spec = {"start": spec[0], "stop": spec[1], "num": spec[2]}
    if not isinstance(spec, Mapping):
        problems.append(f"{where}: {spec!r} must be a table {{start, stop, num}}")
        return None
    n_before = len(problems)
    values = read_params(spec, RANGE_PARAMS, path=where, problems=problems)
    if len(problems) > n_before:
        return None
    return float(values["start"]), float(values["stop"]), int(values["num"])


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
    n_before = len(problems)
    values = read_params(spec, LHS_PARAMS, path=f"{where}.lhs", problems=problems)
    ok = len(problems) == n_before
    low, high, count, scale = (values[k] for k in ("low", "high", "count", "scale"))
    if ok and not low < high:
        problems.append(
            f"{where}.lhs: {low:g} must be below high {high:g}".replace(": ", ": low ", 1)
        )
        ok = False
    elif ok and scale == "log" and low <= 0:
        problems.append(f"{where}.lhs.low: {low:g} must be > 0 with scale = 'log'")
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
    n_runs = _run_count(axes, combine)
    if n_runs > MAX_RUNS:
        problems.append(
            f"axis: the axes give {n_runs:.3g} runs, more than the limit of {MAX_RUNS:,} "
            "(use fewer values, combine = 'zip' or an lhs block)"
        )
        axes = []
    try:
        param_sets = expand_axes(axes, combine=combine, seed=seed) if axes else []
    except ScenarioError as error:
        problems.append(str(error))
        param_sets = []
    if study is not None and metrics:
        # before any run: a misspelt metric would otherwise fail every run
        problems.extend(metric_problems(study, metrics))
    check_problems(problems, ScenarioError, f"{source}: invalid sweep file")
    assert study is not None
    validate = STUDY_VALIDATORS[study]
    runs: list[SweepRun] = []
    run_problems: dict[str, list[str]] = {}
    seen: dict[str, dict[str, Any]] = {}
    # validating thousands of scenarios takes a while: show it (CLI only)
    bar = progress_bar(len(param_sets), progress and len(param_sets) >= 200, desc="validate")
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
    """Read, validate and expand a sweep file (see :mod:`studies.sweep`).

    Parameters
    ----------
    path : str or path
        The sweep file (TOML).
    progress : bool
        Show a progress bar while the runs' scenarios are validated (large sweeps).

    Returns
    -------
    SweepSpec
        The study, the metrics and every run (id, parameters, scenario).

    Raises
    ------
    ScenarioError
        Every problem at once: the file, the axes, the metric names (checked against the
        study's metrics), every run's scenario.

    Examples
    --------
    >>> from studies.sweep import load_sweep, run_sweep
    >>> spec = load_sweep("studies/scenarios/sweep_inertia_droop.toml")  # doctest: +SKIP
    >>> run_sweep(spec, "sweep_out", workers=2).n_done  # doctest: +SKIP
    35
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


_hash = canonical_hash  # old private names
