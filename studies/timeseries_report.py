"""Reports of the time-series and adoption hosting-capacity studies: tables, figures, HTML."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from studies.report import Report
from studies.timeseries_figures import (
    labelled_hc_map,
    violation_probability_figure,
    year_heatmap,
)


def _max_loading(line: np.ndarray, trafo: np.ndarray) -> np.ndarray:
    both = np.hstack([line, trafo])
    finite = np.isfinite(both)
    out = np.where(finite, both, -np.inf).max(axis=1, initial=-np.inf)
    return np.where(finite.any(axis=1), out, np.nan)


def write_time_series_outputs(model, result, out_dir) -> Path:
    """Write ``time_series_hosting_capacity.csv``, the figures and ``report.html``.

    Parameters
    ----------
    model : FeederModel
        The feeder (its net for the map).
    result : TimeSeriesHostingCapacity
        The study's result.
    out_dir : str or path
        Output folder (created).

    Returns
    -------
    pathlib.Path
        Path of ``report.html``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    table = pd.DataFrame(result.rows)
    table.to_csv(out / "time_series_hosting_capacity.csv", index=False)
    rep = Report(f"Time-series hosting capacity of {result.feeder} ({result.mode.value})")
    c = result.criteria
    rep.key_values(
        {
            "feeder": result.feeder,
            "mode": result.mode.value,
            "window": f"{result.time[0]} .. {result.time[-1]} ({len(result.time)} steps)",
            "percentile of steps that must hold [%]": result.percentile,
            "voltage band [pu]": f"{c.v_min_pu} .. {c.v_max_pu}",
            "line / trafo loading limit [%]": (
                f"{c.max_line_loading_percent} / {c.max_trafo_loading_percent}"
            ),
            "tolerance [MW]": result.tolerance_mw,
            "snapshot (DISCO-style) step": result.snapshot_time,
            "AC bisection cases": result.n_ac_cases,
            "run time [s]": round(result.timings_s.get("total_s", float("nan")), 2),
        },
        "Study",
    )
    rep.paragraph(
        "Method: AC power flow of every step, a LinDistFlow screen of the per-step hosting "
        "capacity around it, exact AC bisection at the steps near the answer and an AC check "
        "of the others; the answer is the largest added size that holds at the chosen share of "
        "steps (equal to a brute-force bisection at every step within the tolerance)."
    )
    rep.figure(
        year_heatmap(
            result.time,
            result.vm_min_pu,
            result.vm_max_pu,
            _max_loading(
                result.max_line_loading_percent[:, None], result.max_trafo_loading_percent[:, None]
            ),
            title=f"{result.feeder}: worst voltage and loading without added {result.mode.value}",
        ),
        "ts_heatmap",
        "Worst bus voltage and worst line/transformer loading per step (day x time of day)",
    )
    rep.heading("Hosting capacity per bus")
    rep.figure(
        labelled_hc_map(model.net, table, title=f"{result.feeder}: {result.mode.value} HC"),
        "ts_hc_map",
        "Feeder coloured by time-series hosting capacity (red x: limited by a base-case violation)",
        data=table,
    )
    rep.table(table, "Per-bus time-series hosting capacity")
    if "snapshot_hosting_capacity_mw" in table:
        rep.heading("Snapshot against time series")
        rep.paragraph(
            "A planner's snapshot answer (one worst snapshot, one bus at a time, as in NREL "
            "DISCO) against the time-series answer; the last row adds the per-bus snapshot "
            "answers up and compares them with the size all buses take at once over the window."
        )
        rep.table(result.comparison_table(), "Snapshot per bus vs time series")
    return rep.write(out)


def write_adoption_outputs(model, result, out_dir) -> Path:
    """Write ``adoption_hosting_capacity.csv``, the figures and ``report.html``.

    Parameters
    ----------
    model : FeederModel
        The feeder.
    result : AdoptionResult
        The study's result.
    out_dir : str or path
        Output folder (created).

    Returns
    -------
    pathlib.Path
        Path of ``report.html``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    table = pd.DataFrame(result.rows)
    table.to_csv(out / "adoption_hosting_capacity.csv", index=False)
    prob = pd.DataFrame(
        {"share": result.shares}
        | {c.value: result.violation_probability(c) for c in result.violated}
    )
    prob.to_csv(out / "adoption_violation_probability.csv", index=False)
    rep = Report(f"EV adoption hosting capacity of {result.feeder}")
    rep.key_values(
        {
            "feeder": result.feeder,
            "charging source": result.source.value,
            "customers": result.n_customers,
            "window": f"{result.time[0]} .. {result.time[-1]} ({len(result.time)} steps)",
            "seeds": f"{int(result.seeds[0])} .. {int(result.seeds[-1])}",
            "run time [s]": round(result.timings_s.get("total_s", float("nan")), 2),
        },
        "Study",
    )
    rep.paragraph(
        "share_p50 is the median over the seeds of the largest EV share up to which no step "
        "violates a limit; share_p95 is the share that 95 % of the placements take. EVs are "
        "balanced injections at their customer's bus (single-phase chargers on three-phase "
        "feeders need the three-phase engine)."
    )
    rep.table(table, "Adoption hosting capacity per control")
    rep.figure(
        violation_probability_figure(
            result.shares,
            {c.value: result.violation_probability(c) for c in result.violated},
            title=f"{result.feeder}: violation probability against EV share",
        ),
        "adoption_violation_probability",
        "Share of the random placements that violate a limit, per EV share",
        data=prob,
    )
    if result.base is not None:
        base = result.base
        vm = np.where(model.dead_bus[None, :], np.nan, base.vm_pu)
        with np.errstate(all="ignore"):
            vm_min, vm_max = np.nanmin(vm, axis=1), np.nanmax(vm, axis=1)
        rep.figure(
            year_heatmap(
                result.time,
                vm_min,
                vm_max,
                _max_loading(base.line_loading_percent, base.trafo_loading_percent),
                title=f"{result.feeder}: worst voltage and loading without adopted EVs",
            ),
            "adoption_base_heatmap",
            "Worst bus voltage and worst loading per step before adoption",
        )
    return rep.write(out)
