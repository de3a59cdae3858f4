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
study's validation and every metric name is checked against the study's list of metrics;
every problem (sweep file, metrics and runs) is reported at once, and a sweep refused there
has not touched ``--out``.

Execution (:func:`run_sweep`) uses local processes (``concurrent.futures``, all cores by
default) or an existing Dask cluster (``scheduler="tcp://host:port"``). Results go to
``DIR/results.parquet`` (one row per run: ``run_id``, ``status``, ``error``, ``wall_s``, the
parameters by key path, the metrics by name), rewritten atomically (temp file +
``os.replace``); each completed run is also appended at once to the journal
``DIR/results.journal.jsonl`` so that a kill at any point loses no completed run, and a
failed or interrupted run never deletes or truncates the rows already on disk. Running the
same sweep again resumes it.

Runs that share a feeder share its preparation: each worker process keeps expensive shared
objects (the hosting-capacity study's prepared feeder, per feeder/load scale/slack voltage) in
a small LRU cache (:func:`shared_object`), and with local processes the first run executes in
the parent before the workers are forked, so that its imports, compiled kernels and cache are
inherited instead of being built by every worker at once. Results are identical to fresh
per-run studies (tested).

The package is three modules: :mod:`studies.sweep_spec` (file, axes, expansion, validation),
:mod:`studies.sweep_store` (results on disk) and :mod:`studies.sweep_run` (runners and
execution). This module keeps the names the CLI, the reports and the tests import.
"""

from __future__ import annotations

from studies.sweep_run import (
    STUDY_RUNNERS,
    SweepSummary,
    clear_shared_cache,
    execute_run,
    run_sweep,
    shared_object,
)
from studies.sweep_spec import (
    STUDY_VALIDATORS,
    Axis,
    Combine,
    StudyKind,
    SweepRun,
    SweepSpec,
    expand_axes,
    latin_hypercube,
    load_sweep,
    metric_problems,
    parse_sweep,
    run_id_for,
    study_metric_names,
)
from studies.sweep_store import (
    FIXED_COLUMNS,
    JOURNAL_FILE,
    RESULTS_FILE,
    SPEC_FILE,
    STATUS_FAILED,
    STATUS_OK,
    ResultsStore,
    read_results,
    read_spec,
)

__all__ = [
    "FIXED_COLUMNS",
    "JOURNAL_FILE",
    "RESULTS_FILE",
    "SPEC_FILE",
    "STATUS_FAILED",
    "STATUS_OK",
    "STUDY_RUNNERS",
    "STUDY_VALIDATORS",
    "Axis",
    "Combine",
    "ResultsStore",
    "StudyKind",
    "SweepRun",
    "SweepSpec",
    "SweepSummary",
    "clear_shared_cache",
    "execute_run",
    "expand_axes",
    "latin_hypercube",
    "load_sweep",
    "metric_problems",
    "parse_sweep",
    "read_results",
    "read_spec",
    "run_id_for",
    "run_sweep",
    "shared_object",
    "study_metric_names",
]
