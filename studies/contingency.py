"""Frequency-event contingency study: how does a V2G fleet change a generation-loss event?

A generation loss (or load step) hits the bulk-grid swing model (:mod:`grids.frequency`)
while a V2G fleet (:mod:`vehicle_models.fleet`, with the inverter controls of
:mod:`vehicle_models.settings`) sits behind a distribution feeder. The same event is run side
by side under five fleet behaviours (:class:`FleetResponse`):

``none``
    the fleet holds its pre-event dispatch (no frequency function, no trip in the event);
``droop``
    grid-following frequency-watt droop with a frequency-measurement low-pass (IEEE 1547
    ``freq_watt``, PLL delay ``f_meas_tau_s``);
``vsm``
    grid-forming virtual synchronous machine: emulated inertia ``h_s`` and damping ``d_pu``;
``trip``
    every unit trips at one common under-frequency threshold (a second, sudden loss);
``staggered``
    the same threshold but the fleet ramps its injection down (or spreads thresholds).

The study is three modules: :mod:`studies.contingency_scenario` (reading and validating the
scenario), :mod:`studies.contingency_simulation` (the time loop, its order of operations and
the metrics) and :mod:`studies.contingency_report` (the HTML report). This module runs them
and keeps the names the CLI, the sweep runner and the tests import.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from studies.contingency_report import (
    frequency_performance,
    results_frame,
    timeseries_frame,
    write_contingency_report,
)
from studies.contingency_scenario import (
    ALL_CASES,
    CONTINGENCY_PARAMS,
    STUDY_SECTION,
    ContingencyScenario,
    ContingencySettings,
    FleetResponse,
    FrequencyEvent,
    load_contingency_scenario,
    parse_cases,
)
from studies.contingency_simulation import (
    CASE_METRIC_KEYS,
    METRIC_KEYS,
    CaseResult,
    case_violations,
    control_for_case,
    simulate_case,
)
from studies.study_inputs import build_fleet, split_scenario

__all__ = [
    "ALL_CASES",
    "CASE_METRIC_KEYS",
    "CONTINGENCY_PARAMS",
    "METRIC_KEYS",
    "STUDY_SECTION",
    "CaseResult",
    "ContingencyScenario",
    "ContingencySettings",
    "FleetResponse",
    "FrequencyEvent",
    "build_fleet",
    "case_violations",
    "control_for_case",
    "frequency_performance",
    "load_contingency_scenario",
    "parse_cases",
    "results_frame",
    "run_contingency_study",
    "simulate_case",
    "split_scenario",
    "timeseries_frame",
    "write_contingency_report",
]


def run_contingency_study(
    scenario: Mapping[str, Any] | str | Path | ContingencyScenario,
    *,
    cases: Sequence[FleetResponse | str] | str | None = None,
    out_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Run the contingency and return the JSON metrics.

    Parameters
    ----------
    scenario : dict, path or ContingencyScenario
        A scenario dict or TOML file with ``[simulation]``, ``[frequency]``, ``[[events]]``
        and optionally ``[feeder]``, ``[fleet]`` and ``[contingency]``.
    cases : sequence or comma-separated str, optional
        Cases to compare (e.g. ``"none,droop,vsm,trip,staggered"``). Without it the single
        case ``[contingency].case`` runs (default ``droop`` with a fleet, ``none`` without).
    out_dir : path, optional
        Write ``report.html``, the figures and the data behind them there.

    Returns
    -------
    dict
        Without ``cases``: the metrics of the one case (:data:`CASE_METRIC_KEYS`:
        ``f_nadir_hz`` [Hz], ``delta_f_nadir_hz`` [Hz], ``t_nadir_s`` [s after the event],
        ``rocof_initial_hz_per_s``, ``rocof_500ms_hz_per_s`` [Hz/s], ``delta_f_steady_hz``
        [Hz], ``t_settle_s`` [s], ``ufls_shed_mw``, ``fleet_tripped_mw`` [MW],
        ``n_vehicles_tripped`` and ``violations``). With ``cases``:
        ``{"cases": [{"name": ..., <metrics>}, ...], "violations": [...]}`` in the order
        given (each violation's element names its case).

    Raises
    ------
    ScenarioError
        The scenario is invalid (every problem listed).

    Examples
    --------
    >>> result = run_contingency_study({
    ...     "simulation": {"duration_s": 20.0, "step_s": 0.02},
    ...     "frequency": {"f0_hz": 60.0, "s_base_mw": 10000.0, "h_s": 5.0},
    ...     "events": [{"t_s": 1.0, "kind": "generation_loss", "p_mw": 500.0}]})
    >>> round(result["rocof_initial_hz_per_s"], 6)  # -ΔP f0 / (2 H S_base)
    -0.3
    """
    if not isinstance(scenario, ContingencyScenario):
        scenario = load_contingency_scenario(scenario)
    if cases is None:
        chosen: tuple[FleetResponse, ...] = (scenario.default_case,)
    elif isinstance(cases, FleetResponse):
        chosen = (cases,)
    else:
        chosen = parse_cases(cases)
    results = [simulate_case(scenario, case) for case in chosen]
    if out_dir is not None:
        write_contingency_report(scenario, results, out_dir)
    if cases is None:
        return results[0].metrics
    violations = [
        {**v, "element": f"case {r.name}: {v['element']}"}
        for r in results
        for v in r.metrics.get("violations", [])
    ]
    return {"cases": [r.metrics for r in results], "violations": violations}
