"""Report of the three-phase time-series hosting capacity: table, figures, HTML.

* :func:`phase_voltage_heatmap` -- the lowest phase voltage of every bus over the window
  (bus against time), without the added unit;
* :func:`hc_per_bus_figure` -- the time-series answer per bus (and the snapshot one) as bars,
  and on the feeder map (``BusCoords``) when the file has coordinates.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from studies.report import Report


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def phase_voltage_heatmap(result, *, title: str = ""):
    """Lowest phase voltage of every bus per step of the base time series.

    Parameters
    ----------
    result : ThreePhaseTimeSeriesHostingCapacity
        The study's result (``vm_min_bus_pu``, ``bus_names``, ``time``, ``criteria``).
    title : str, keyword-only
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = _pyplot()
    vm = np.asarray(result.vm_min_bus_pu, dtype=float)
    fig, ax = plt.subplots(figsize=(8.0, 4.5))
    hours = (result.time - result.time[0]).total_seconds().to_numpy() / 3600.0
    step_h = hours[1] - hours[0] if hours.size > 1 else 1.0
    span = max(0.02, float(np.nanmax(np.abs(vm - 1.0))))
    im = ax.imshow(
        vm.T,
        aspect="auto",
        cmap="RdBu_r",
        vmin=1 - span,
        vmax=1 + span,
        extent=(0.0, hours[-1] + step_h, vm.shape[1], 0),
        interpolation="nearest",
    )
    fig.colorbar(im, ax=ax, label="lowest phase voltage [pu]")
    ax.set_xlabel(f"hours from {result.time[0]}")
    ax.set_ylabel(f"bus (file order, {vm.shape[1]} buses)")
    c = result.criteria
    ax.set_title(
        title or f"{result.feeder}: lowest phase voltage per bus (band {c.v_min_pu}..{c.v_max_pu})",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


def hc_per_bus_figure(model, result, *, title: str = ""):
    """Time-series and snapshot hosting capacity per bus (bars), and on the feeder map.

    Parameters
    ----------
    model : grids.feeder3ph.ThreePhaseFeederModel
        The feeder (``bus_xy`` for the map, when the file has coordinates).
    result : ThreePhaseTimeSeriesHostingCapacity
    title : str, keyword-only
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = _pyplot()
    rows = result.rows
    xy = model.bus_xy or {}
    with_map = bool(xy) and all(str(r["bus"]).lower() in xy for r in rows)
    fig, axes = plt.subplots(1, 2 if with_map else 1, figsize=(11.0 if with_map else 6.5, 4.5))
    axes = np.atleast_1d(axes)
    ax = axes[0]
    x = np.arange(len(rows))
    ts_kw = np.array([1000.0 * r["hosting_capacity_mw"] for r in rows])
    ax.bar(x - 0.2, ts_kw, width=0.4, label="time series")
    if rows and "snapshot_hosting_capacity_mw" in rows[0]:
        snap_kw = np.array([1000.0 * r["snapshot_hosting_capacity_mw"] for r in rows])
        ax.bar(x + 0.2, snap_kw, width=0.4, label="snapshot (base load)")
    ax.set_xticks(x)
    ax.set_xticklabels([str(r["bus"]) for r in rows], rotation=90, fontsize=7)
    ax.set_xlabel("bus")
    ax.set_ylabel(f"hosting capacity, phase {result.phase.value} [kW]")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis="y")
    if with_map:
        ax = axes[1]
        pts = np.array(list(xy.values()), dtype=float)
        ax.scatter(pts[:, 0], pts[:, 1], s=2, color="0.8")
        cxy = np.array([xy[str(r["bus"]).lower()] for r in rows], dtype=float)
        sc = ax.scatter(cxy[:, 0], cxy[:, 1], c=ts_kw, s=25, cmap="viridis")
        fig.colorbar(sc, ax=ax, label="time-series hosting capacity [kW]")
        if len(rows) <= 40:
            for r, (bx, by) in zip(rows, cxy, strict=True):
                ax.annotate(str(r["bus"]), (bx, by), xytext=(3, 3), textcoords="offset points",
                            fontsize=7)  # fmt: skip
        ax.set_aspect("equal", adjustable="datalim")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(
        title
        or f"{result.feeder}: {result.mode.value} hosting capacity per bus, "
        f"percentile {result.percentile:g}",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


def write_three_phase_time_series_outputs(model, result, out_dir) -> Path:
    """Write ``time_series_hosting_capacity.csv``, the figures and ``report.html``.

    Parameters
    ----------
    model : grids.feeder3ph.ThreePhaseFeederModel
        The feeder.
    result : ThreePhaseTimeSeriesHostingCapacity
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
    c = result.criteria
    rep = Report(
        f"Time-series hosting capacity of {result.feeder} ({result.mode.value}, phase "
        f"{result.phase.value})"
    )
    rep.key_values(
        {
            "feeder": result.feeder,
            "mode": result.mode.value,
            "phase": result.phase.value,
            "window": f"{result.time[0]} .. {result.time[-1]} ({len(result.time)} steps)",
            "percentile of steps that must hold [%]": result.percentile,
            "phase voltage band [pu]": f"{c.v_min_pu} .. {c.v_max_pu}",
            "voltage unbalance limit [%]": c.vuf_max_percent,
            "phase conductor loading limit [%]": c.max_line_loading_percent,
            "transformer loading limit [%]": c.max_trafo_loading_percent,
            "tolerance [MW]": result.tolerance_mw,
            "AC cases solved": result.n_ac_cases,
            "run time [s]": round(result.timings_s.get("total_s", float("nan")), 2),
        },
        "Study",
    )
    rep.paragraph(
        "Method: the loads follow their OpenDSS load shapes; a size holds when no per-phase "
        "limit (phase voltage, voltage unbalance, phase conductor or transformer loading) is "
        "broken at the "
        "chosen share of the steps; the largest such size is bisected on the three-phase AC "
        "model, every step of every bus in one batched solve per trial (equal to a brute-force "
        "bisection step by step within the tolerance)."
    )
    if result.base_case_violations:
        rep.paragraph(
            "Limits broken at the base load before any injection: "
            + "; ".join(result.base_case_violations)
        )
    rep.figure(
        phase_voltage_heatmap(result),
        "ts3ph_voltage_heatmap",
        "Lowest phase voltage of every bus over the window, without the added unit",
    )
    rep.heading("Hosting capacity per bus")
    rep.figure(
        hc_per_bus_figure(model, result),
        "ts3ph_hc_per_bus",
        "Time-series and snapshot hosting capacity per bus",
        data=table,
    )
    rep.table(table, "Per-bus time-series hosting capacity")
    if "snapshot_hosting_capacity_mw" in table:
        rep.heading("Snapshot against time series")
        rep.paragraph(
            "The snapshot answer at the feeder's base load (every load at its kW in the file), "
            "one bus at a time, against the answer that holds over the load shapes."
        )
        rep.table(result.comparison_table(), "Snapshot per bus vs time series")
    return rep.write(out)
