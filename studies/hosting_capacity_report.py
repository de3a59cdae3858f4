"""Outputs of a hosting-capacity study: tidy tables, feeder map, violation curve, report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from grids.feeders import topology_graph
from studies.report import Report

# matplotlib and networkx are imported where a figure or a layout is drawn: the study imports
# this module, and a run without figures (JSON only) does not pay for them.


def bus_positions(net) -> dict[int, tuple[float, float]]:
    """Plot coordinates per bus: the feeder's own (``net.bus.geo`` GeoJSON points or
    ``net.bus_geodata``) where every in-service bus has one, else a networkx layout.

    Parameters
    ----------
    net : pandapowerNet
        The feeder.

    Returns
    -------
    dict
        ``{bus index: (x, y)}``.
    """
    positions: dict[int, tuple[float, float]] = {}
    if "geo" in net.bus.columns:
        for bus, geo in net.bus.geo.items():
            try:
                point = json.loads(geo) if isinstance(geo, str) else None
            except (TypeError, ValueError):
                point = None
            if point and point.get("type") == "Point":
                x, y = point["coordinates"][:2]
                positions[int(bus)] = (float(x), float(y))
    elif "bus_geodata" in net and len(net.bus_geodata):
        for bus, row in net.bus_geodata.iterrows():
            positions[int(bus)] = (float(row.x), float(row.y))
    in_service = net.bus.index[net.bus.in_service.astype(bool)]
    if all(int(b) in positions for b in in_service):
        return positions
    import networkx as nx

    graph = topology_graph(net)
    layout = nx.kamada_kawai_layout(graph) if len(graph) <= 400 else nx.spring_layout(graph)
    return {int(b): (float(p[0]), float(p[1])) for b, p in layout.items()}


def feeder_map(net, table: pd.DataFrame, *, title: str = ""):
    """Feeder graph with each bus coloured by its hosting capacity [MW].

    Parameters
    ----------
    net : pandapowerNet
        The feeder.
    table : pandas.DataFrame
        The study table (``bus``, ``hosting_capacity_mw``).
    title : str, keyword-only
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pos = bus_positions(net)
    graph = topology_graph(net)
    fig, ax = plt.subplots(figsize=(7.5, 5.5))
    for u, v in graph.edges():
        if int(u) in pos and int(v) in pos:
            (x0, y0), (x1, y1) = pos[int(u)], pos[int(v)]
            ax.plot([x0, x1], [y0, y1], color="0.7", lw=1.0, zorder=1)
    others = [b for b in pos if b not in set(table.bus)]
    if others:
        ax.scatter(*np.array([pos[b] for b in others]).T, s=12, c="0.4", zorder=2, label="slack")
    xy = np.array([pos[int(b)] for b in table.bus])
    hc = table.hosting_capacity_mw.to_numpy()
    sc = ax.scatter(xy[:, 0], xy[:, 1], c=hc, cmap="viridis", s=30, zorder=3, edgecolors="k")
    base = table.binding.to_numpy() == "base_case"
    if base.any():
        ax.scatter(xy[base, 0], xy[base, 1], marker="x", c="r", s=40, zorder=4, label="base case")
    fig.colorbar(sc, ax=ax, label="hosting capacity [MW]")
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    if others or base.any():
        ax.legend(loc="best", fontsize=8)
    return fig


def violation_curve(stochastic, *, title: str = ""):
    """Probability of a violation vs penetration (MW, with vehicles on a second axis).

    Parameters
    ----------
    stochastic : StochasticResult
        The Monte Carlo result.
    title : str, keyword-only
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curve = stochastic.curve
    fig, ax = plt.subplots(figsize=(6.5, 4.0))
    ax.plot(curve.penetration_mw, curve.violation_probability, color="C3")
    for q, style in ((5, ":"), (50, "--"), (95, ":")):
        ax.axvline(stochastic.percentile_mw(q), color="0.5", ls=style, lw=1)
        ax.text(stochastic.percentile_mw(q), 1.02, f"P{q}", ha="center", fontsize=8)
    ax.set_xlabel("penetration [MW]")
    ax.set_ylabel("probability of a violation [-]")
    ax.set_ylim(0, 1.08)
    ax.grid(alpha=0.3)
    kw = stochastic.mean_vehicle_kw
    sec = ax.secondary_xaxis("top", functions=(lambda x: x * 1000 / kw, lambda n: n * kw / 1000))
    sec.set_xlabel(f"vehicles (mean charger {kw:.1f} kW)")
    ax.set_title(title, fontsize=10, pad=28)
    return fig


def write_outputs(study, result, out_dir) -> Path:
    """Write ``hosting_capacity.csv``/``.parquet``, figures and ``report.html`` into ``out_dir``.

    Parameters
    ----------
    study : HostingCapacityStudy
        The prepared feeder.
    result : HostingCapacityResult
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
    table = result.table
    table.to_csv(out / "hosting_capacity.csv", index=False)
    table.to_parquet(out / "hosting_capacity.parquet", index=False)
    rep = Report(f"Hosting capacity of {result.feeder} ({result.mode.value})")
    rep.heading("Study")
    c = result.criteria
    rep.key_values(
        {
            "feeder": result.feeder,
            "mode": result.mode.value,
            "method": result.method.value,
            "control": result.control.value,
            "voltage band [pu]": f"{c.v_min_pu} .. {c.v_max_pu}",
            "voltage change limit [pu]": c.dv_max_pu if c.dv_max_pu is not None else "not checked",
            "line / trafo loading limit [%]": (
                f"{c.max_line_loading_percent} / {c.max_trafo_loading_percent}"
            ),
            "tolerance [MW]": result.tolerance_mw,
            "screen": "LinDistFlow anchored on the AC base case"
            if getattr(study, "screen_calibrated", False)
            else "LinDistFlow",
            "screen bracket": f"screen x (1 +- {result.screen_margin}) +- tolerance",
            "buses where the screen bracket held": (
                f"{int(table.within_screen_bracket.sum())} of {len(table)}"
            ),
            "AC batched solves": result.n_ac_solves,
        },
        "Criteria and method",
    )
    rep.violations(
        [
            {**v.to_dict(), "element": f"base case, {v.element}"}
            for v in getattr(result, "violations", [])
        ],
        notes=getattr(result, "missing_ratings", []),
    )
    if result.base_case_violations:
        rep.paragraph(
            "Limits violated before any injection: " + "; ".join(result.base_case_violations)
        )
    rep.heading("Per-bus hosting capacity")
    hc = table.hosting_capacity_mw
    rep.paragraph(
        f"{len(table)} buses: minimum {hc.min():.3f} MW, median {hc.median():.3f} MW, "
        f"maximum {hc.max():.3f} MW. Binding limits: "
        + ", ".join(f"{k} ({v})" for k, v in table.binding.value_counts().items())
        + "."
    )
    rep.figure(
        feeder_map(study.net, table, title=f"{result.feeder}: {result.mode.value} HC"),
        "hc_map",
        "Feeder coloured by hosting capacity (red x: limited by a base-case violation)",
        data=table,
    )
    rep.table(table, "Per-bus results (AC-confirmed where the method includes AC)")
    if result.distribution is not None:
        st = result.distribution
        rep.heading("Stochastic hosting capacity")
        rep.key_values(st.summary(), "Monte Carlo summary")
        st.table.to_csv(out / "hosting_capacity_scenarios.csv", index=False)
        st.table.to_parquet(out / "hosting_capacity_scenarios.parquet", index=False)
        rep.figure(
            violation_curve(st, title=f"{result.feeder}: violation probability"),
            "hc_violation_probability",
            "Probability of violating a limit vs penetration",
            data=st.curve,
        )
    return rep.write(out)
