"""Many-feeder report: which feeders tripped how much, and each feeder's effect on the nadir."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from studies.contingency_simulation import CaseResult


def feeders_frame(study: dict[str, Any]) -> pd.DataFrame:
    """The per-feeder table of :func:`studies.multi_feeder.run_multi_feeder_study`, one row
    per feeder (``feeder``, ``grid``, ``n_vehicles``, ``fleet_tripped_mw``,
    ``n_vehicles_tripped``, ``fleet_p_max_mw`` and, with attribution,
    ``f_nadir_without_hz``, ``nadir_effect_hz``)."""
    return pd.DataFrame(study["feeders"])


def write_multi_feeder_report(
    scenario, result: CaseResult, study: dict[str, Any], history_mw: np.ndarray, out_dir
) -> Path:
    """Write ``report.html`` (system metrics, per-feeder table, frequency and per-feeder
    injection plots) and ``feeders.csv`` into ``out_dir``.

    Parameters
    ----------
    scenario : studies.multi_feeder.MultiFeederScenario
    result : CaseResult
        The run of every feeder with its response.
    study : dict
        What :func:`studies.multi_feeder.run_multi_feeder_study` returns.
    history_mw : numpy.ndarray
        ``(n_steps + 1, n_feeders)`` injection change of each feeder seen by the bulk grid
        [MW].
    out_dir : path

    Returns
    -------
    pathlib.Path
        The report file.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from studies.report import Report

    cont = scenario.contingency
    params = cont.params
    metrics = result.metrics
    table = feeders_frame(study)
    report = Report(f"Many feeders on one frequency: case {study['case']}")
    report.violations(metrics.get("violations", []))
    report.heading("Event and system")
    report.key_values(
        {
            "event": ", ".join(f"{e.kind} {e.p_mw:g} MW at t = {e.t_s:g} s" for e in cont.events),
            "f0_hz": params.f0_hz,
            "s_base_mw": params.s_base_mw,
            "h_s": params.h_s,
            "feeders": len(scenario.feeders),
            "vehicles": int(table["n_vehicles"].sum()),
            "feeder_replicas (each feeder stands for)": cont.settings.feeder_replicas,
            "f_nadir_hz": metrics["f_nadir_hz"],
            "t_nadir_s": metrics["t_nadir_s"],
            "delta_f_steady_hz": metrics["delta_f_steady_hz"],
            "ufls_shed_mw": metrics["ufls_shed_mw"],
            "fleet_tripped_mw (all feeders)": metrics["fleet_tripped_mw"],
            "n_vehicles_tripped (all feeders)": metrics["n_vehicles_tripped"],
        },
        "Event, bulk grid and the whole system's response",
    )
    report.paragraph(
        "The swing model's input is the event plus the sum over feeders of each fleet's "
        "injection change since its dispatch before the event. "
        "f_nadir_without_hz is the nadir of a re-run in which the bulk grid sees that feeder "
        "hold its pre-event dispatch (neither its droop nor its trips reach the frequency) "
        "and every other feeder keeps its behaviour; nadir_effect_hz = f_nadir_hz − "
        "f_nadir_without_hz is positive when the feeder's response lifted the nadir and "
        "negative when its trip deepened it."
    )
    report.heading("Feeders")
    report.table(table, "Per feeder: vehicles, trips (MW at the event, vehicles), response")

    fig, ax = plt.subplots(figsize=(8, 4))
    ax.plot(result.t_s, result.f_hz, color="black")
    for stage in params.ufls:
        ax.axhline(stage.threshold_hz, color="red", ls="--", lw=0.8)
    ax.set_xlabel("time after the event [s]")
    ax.set_ylabel("frequency [Hz]")
    ax.grid(alpha=0.3)
    series = pd.DataFrame({"t_s": result.t_s, "f_hz": result.f_hz})
    report.figure(fig, "many_feeders_frequency", "System frequency", data=series)

    fig, ax = plt.subplots(figsize=(8, 4))
    labels = list(table["feeder"])
    for i, label in enumerate(labels):
        ax.plot(result.t_s, history_mw[:, i], lw=0.9, label=label)
    ax.plot(result.t_s, result.p_fleet_mw, color="black", lw=1.5, label="all feeders")
    ax.set_xlabel("time after the event [s]")
    ax.set_ylabel("injection change seen by the bulk grid [MW]")
    if len(labels) <= 12:
        ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    power = pd.DataFrame(history_mw, columns=labels)
    power.insert(0, "t_s", result.t_s)
    report.figure(fig, "many_feeders_power", "Injection change per feeder", data=power)
    path = report.write(out_dir)
    table.to_csv(Path(out_dir) / "feeders.csv", index=False)
    return path


__all__ = ["feeders_frame", "write_multi_feeder_report"]
