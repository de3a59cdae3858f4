"""Contingency report: the comparison table, time-series plots and the resilience section."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from grids.frequency import rocof_initial_hz_per_s, steady_state_deviation_hz
from studies.contingency_scenario import ContingencyScenario
from studies.contingency_simulation import CaseResult


def results_frame(results: Sequence[CaseResult]) -> pd.DataFrame:
    """The comparison table, one row per case."""
    return pd.DataFrame([r.metrics for r in results])


def timeseries_frame(results: Sequence[CaseResult]) -> pd.DataFrame:
    """Long table of the time series: one row per case and time step."""
    frames = [
        pd.DataFrame(
            {
                "case": r.name,
                "t_s": r.t_s,
                "f_hz": r.f_hz,
                "p_fleet_mw": r.p_fleet_mw,
                "p_mech_mw": r.p_mech_mw,
                "ufls_shed_mw": r.ufls_shed_mw,
                "soc_mean_frac": r.soc_mean_frac,
            }
        )
        for r in results
    ]
    return pd.concat(frames, ignore_index=True)


def frequency_performance(
    result: CaseResult, scenario: ContingencyScenario
) -> tuple[np.ndarray, np.ndarray, float]:
    """Performance curve for the resilience metrics: frequency [Hz] from the event on.

    Returns ``(t_h, f_hz, acceptable_hz)``; the acceptable level is the normal operating band
    ``f0 − resilience_band_hz`` (0.5 Hz below nominal by default, NERC's 59.5 Hz at 60 Hz).
    """
    keep = result.t_s >= -1e-9
    acceptable = scenario.params.f0_hz - 0.5
    return result.t_s[keep] / 3600.0, result.f_hz[keep], acceptable


def write_contingency_report(
    scenario: ContingencyScenario, results: Sequence[CaseResult], out_dir: str | Path
) -> Path:
    """Write ``report.html`` with the comparison table, overlay plots and resilience section."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from studies.report import Report

    params = scenario.params
    total_mw = -sum(e.p_imbalance_mw for e in scenario.events)
    report = Report("Frequency-event contingency: fleet behaviours compared")
    report.violations(
        [
            {**v, "element": f"case {r.name}: {v['element']}"}
            for r in results
            for v in r.metrics.get("violations", [])
        ]
    )
    report.heading("Event and system")
    report.key_values(
        {
            "scenario": scenario.source,
            "event": ", ".join(
                f"{e.kind} {e.p_mw:g} MW at t = {e.t_s:g} s" for e in scenario.events
            ),
            "f0_hz": params.f0_hz,
            "s_base_mw": params.s_base_mw,
            "h_s": params.h_s,
            "d_pu": params.d_pu,
            "r_pu": params.r_pu,
            "t_gov_s": params.t_gov_s,
            "ufls_stages": len(params.ufls),
            "step_s": scenario.step_s,
            "fleet_vehicles_simulated": scenario.fleet.n_vehicles if scenario.fleet else 0,
            "feeder_replicas": scenario.settings.feeder_replicas,
            "closed_form_rocof_hz_per_s (no fleet)": rocof_initial_hz_per_s(params, total_mw),
            "closed_form_delta_f_steady_hz (no fleet)": steady_state_deviation_hz(params, total_mw),
        },
        "Event and bulk-grid parameters",
    )
    report.paragraph(
        "Each case runs the same event on the aggregate swing model; the fleet's injection "
        "change (times the number of feeder replicas) is the swing model's input each step. "
        "Grid-following responses act over a step on the frequency at its start; the "
        "grid-forming (VSM) response is computed on the predicted end-of-step frequency."
    )
    report.heading("Comparison")
    table = results_frame(results).drop(columns=["violations", "faults"], errors="ignore")
    report.table(table, "Metrics per case (t_nadir_s after the event)")

    fig, ax = plt.subplots(figsize=(8, 4))
    for r in results:
        ax.plot(r.t_s, r.f_hz, label=r.name)
    for stage in params.ufls:
        ax.axhline(stage.threshold_hz, color="red", ls="--", lw=0.8)
    ax.set_xlabel("time after the event [s]")
    ax.set_ylabel("frequency [Hz]")
    ax.legend()
    ax.grid(alpha=0.3)
    series = timeseries_frame(results)
    report.figure(fig, "contingency_frequency", "Frequency after the event, per case", data=series)

    fig, ax = plt.subplots(figsize=(8, 3.5))
    for r in results:
        ax.plot(r.t_s, r.p_fleet_mw, label=r.name)
    ax.set_xlabel("time after the event [s]")
    ax.set_ylabel("fleet injection change [MW]")
    ax.legend()
    ax.grid(alpha=0.3)
    report.figure(fig, "contingency_fleet_power", "Fleet injection change seen by the bulk grid")

    fig, ax = plt.subplots(figsize=(8, 3.5))
    for r in results:
        ax.plot(r.t_s, r.p_mech_mw, label=r.name)
    ax.set_xlabel("time after the event [s]")
    ax.set_ylabel("governor response [MW]")
    ax.legend()
    ax.grid(alpha=0.3)
    report.figure(fig, "contingency_governor", "Mechanical power change of the governors")

    _fault_section(report, results, plt)
    _resilience_section(report, scenario, results)
    path = report.write(out_dir)
    table.to_csv(Path(out_dir) / "metrics.csv", index=False)
    return path


def fault_bus_frame(result: CaseResult) -> pd.DataFrame:
    """One row per fault and fleet bus of a case: retained voltage, vehicles plugged in and
    the ride-through thresholds it fell below (empty without a ``fault`` event)."""
    rows = [
        {
            "fault_bus": fault["bus"],
            "bus": row["bus"],
            "vm_pu": row["vm_pu"],
            "n_vehicles_plugged": row["n_vehicles_plugged"],
            "below": ", ".join(row["below"]) or "-",
        }
        for fault in result.metrics.get("faults", [])
        for row in fault.get("buses", [])
    ]
    return pd.DataFrame(rows)


def _fault_section(report, results: Sequence[CaseResult], plt) -> None:
    """Sags from the fault calculation: retained voltage per fleet bus against the
    ride-through thresholds, and the fleet power ceased and tripped per case."""
    with_faults = [r for r in results if r.metrics.get("faults")]
    if not with_faults:
        return
    report.heading("Fault sags (fault calculation, grids/fault.py)")
    report.paragraph(
        "During each fault every fleet bus sees its retained voltage from the fault "
        "calculation (superposition on the pre-fault power flow, loads as admittances); each "
        "vehicle's momentary cessation and trip timers follow its own bus voltage. After "
        "clearing the voltages come from the post-fault power flow."
    )
    report.table(
        pd.DataFrame(
            [
                {
                    "case": r.name,
                    "fault_vm_min_pu": r.metrics.get("fault_vm_min_pu"),
                    "fleet_ceased_mw": r.metrics.get("fleet_ceased_mw"),
                    "fleet_tripped_mw": r.metrics.get("fleet_tripped_mw"),
                    "n_vehicles_tripped": r.metrics.get("n_vehicles_tripped"),
                    "f_nadir_hz": r.metrics.get("f_nadir_hz"),
                }
                for r in with_faults
            ]
        ),
        "Fleet power ceased (largest during the fault) and tripped, per case",
    )
    for r in with_faults:
        frame = fault_bus_frame(r)
        if frame.empty:
            continue
        fig, ax = plt.subplots(figsize=(8, 3.5))
        for fault_bus, part in frame.groupby("fault_bus"):
            ax.plot(part["bus"], part["vm_pu"], "o-", label=f"fault at bus {fault_bus}")
        for fault in r.metrics["faults"]:
            for name, (v_pu, _t) in fault["thresholds"].items():
                ax.axhline(v_pu, ls="--", lw=0.8, color="red")
                ax.text(frame["bus"].min(), v_pu, f" {name}", va="bottom", fontsize=7)
        ax.set_xlabel("fleet bus")
        ax.set_ylabel("retained voltage [pu]")
        ax.legend()
        ax.grid(alpha=0.3)
        report.figure(
            fig,
            f"contingency_fault_sag_{r.name}",
            f"Case {r.name}: retained voltage per fleet bus and its ride-through thresholds",
            data=frame,
        )
        report.table(frame, f"Case {r.name}: thresholds crossed per fleet bus")


def _resilience_section(report, scenario: ContingencyScenario, results) -> None:
    """Resilience-trapezoid metrics (:mod:`studies.resilience`) of the frequency.

    Performance curve: the system frequency [Hz] from the event on, in hours; acceptable level
    ``f0 − 0.5 Hz`` (the normal operating band). The table covers every case; the trapezoid
    figure shows the case with the deepest nadir.
    """
    from studies.resilience import add_resilience_section, resilience_metrics

    rows = []
    for r in results:
        t_h, perf, acceptable = frequency_performance(r, scenario)
        m = resilience_metrics(t_h, perf, acceptable=acceptable, name=f"case {r.name}")
        d = m.to_dict()
        rows.append({"case": r.name, **{k: d[k] for k in list(d)[:7]}})
    worst = min(results, key=lambda r: r.metrics["f_nadir_hz"])
    t_h, perf, acceptable = frequency_performance(worst, scenario)
    add_resilience_section(
        report,
        t_h,
        perf,
        acceptable=acceptable,
        unit="Hz",
        name="contingency_resilience",
        heading=f"Resilience (frequency as performance; trapezoid of case '{worst.name}')",
    )
    report.table(
        pd.DataFrame(rows),
        f"Resilience-trapezoid metrics of the frequency per case (Hz, h; acceptable "
        f"{acceptable:g} Hz)",
    )
