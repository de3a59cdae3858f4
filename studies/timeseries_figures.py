"""Figures of the time-series and adoption hosting-capacity studies (matplotlib, lazy import).

* :func:`year_heatmap` -- the worst voltage and the worst loading of every step, day of year
  against time of day;
* :func:`labelled_hc_map` -- hosting capacity per bus on the feeder map, each bus labelled
  (the feeder's geodata if every bus has some, else a networkx layout:
  :func:`studies.hosting_capacity_report.bus_positions`);
* :func:`violation_probability_figure` -- violation probability against the EV share, one
  curve per control.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from studies.hosting_capacity_report import bus_positions, feeder_map


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _day_by_time(time: pd.DatetimeIndex, values: np.ndarray) -> tuple[np.ndarray, list]:
    """``values`` per step as a (day, time of day) grid (NaN where a day has no such step)."""
    day = pd.DatetimeIndex(time).normalize()
    days = day.unique()
    minutes = (time.hour * 60 + time.minute).to_numpy()
    slots = np.unique(minutes)
    grid = np.full((len(days), len(slots)), np.nan)
    rows = days.get_indexer(day)
    cols = np.searchsorted(slots, minutes)
    grid[rows, cols] = values
    return grid, list(days)


def year_heatmap(
    time: pd.DatetimeIndex,
    vm_min_pu: np.ndarray,
    vm_max_pu: np.ndarray,
    loading_percent: np.ndarray,
    *,
    title: str = "",
):
    """Worst voltage and worst loading per step: day of year (x) against time of day (y).

    The worst voltage of a step is the bus voltage farthest from 1 pu (the lowest or the
    highest), drawn on a diverging scale centred at 1 pu; the worst loading is the highest
    line or transformer loading [%].

    Parameters
    ----------
    time : pandas.DatetimeIndex (n_steps,)
        The steps.
    vm_min_pu, vm_max_pu : numpy.ndarray (n_steps,)
        Lowest and highest bus voltage per step [pu].
    loading_percent : numpy.ndarray (n_steps,)
        Highest line or transformer loading per step [%] (NaN: nothing rated).
    title : str, keyword-only
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = _pyplot()
    worst = np.where(np.abs(vm_min_pu - 1.0) >= np.abs(vm_max_pu - 1.0), vm_min_pu, vm_max_pu)
    v_grid, days = _day_by_time(time, worst)
    l_grid, _ = _day_by_time(time, loading_percent)
    fig, axes = plt.subplots(2, 1, figsize=(9.0, 6.5), sharex=True)
    span = max(0.02, float(np.nanmax(np.abs(worst - 1.0))))
    extent = (0, len(days), 24.0, 0.0)
    im = axes[0].imshow(
        v_grid.T,
        aspect="auto",
        cmap="RdBu_r",
        vmin=1 - span,
        vmax=1 + span,
        extent=extent,
        interpolation="nearest",
    )
    fig.colorbar(im, ax=axes[0], label="worst voltage [pu]")
    if np.isfinite(l_grid).any():
        im = axes[1].imshow(
            l_grid.T, aspect="auto", cmap="magma", extent=extent, interpolation="nearest"
        )
        fig.colorbar(im, ax=axes[1], label="worst loading [%]")
    else:
        axes[1].text(0.5, 0.5, "no rated line or transformer", ha="center", va="center")
    for ax in axes:
        ax.set_ylabel("time of day [h]")
        ax.set_yticks([0, 6, 12, 18, 24])
    step = max(1, len(days) // 12)
    ticks = np.arange(0, len(days), step)
    axes[1].set_xticks(ticks + 0.5)
    axes[1].set_xticklabels([days[k].strftime("%d %b") for k in ticks], rotation=45, fontsize=8)
    axes[1].set_xlabel(f"day ({days[0].date()} to {days[-1].date()})")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def labelled_hc_map(net, table: pd.DataFrame, *, title: str = ""):
    """Hosting capacity per bus on the feeder map, every bus labelled with its index.

    Parameters
    ----------
    net : pandapowerNet
        The feeder.
    table : pandas.DataFrame
        ``bus``, ``hosting_capacity_mw``, ``binding`` per bus.
    title : str, keyword-only
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig = feeder_map(net, table, title=title)
    ax = fig.axes[0]
    pos = bus_positions(net)
    n = len(pos)
    size = 8 if n <= 60 else 6 if n <= 200 else 4
    at: dict[tuple[float, float], list[int]] = {}
    for bus, xy in pos.items():  # buses drawn at the same point share one label ("0, 8")
        at.setdefault((round(xy[0], 9), round(xy[1], 9)), []).append(int(bus))
    for (x, y), buses in at.items():
        text = ", ".join(str(b) for b in sorted(buses))
        ax.annotate(text, (x, y), xytext=(3, 3), textcoords="offset points", fontsize=size)
    return fig


def violation_probability_figure(shares, probability: dict[str, np.ndarray], *, title: str = ""):
    """Violation probability against the EV share, one curve per control.

    Parameters
    ----------
    shares : array_like (n_share,)
        EV share of the customers [-].
    probability : dict
        Control name -> share of the seeds that violate a limit at each share [-].
    title : str, keyword-only
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4.0))
    x = 100.0 * np.asarray(shares, dtype=float)
    for k, (name, prob) in enumerate(probability.items()):
        ax.plot(x, prob, marker="o", ms=3, label=name, color=f"C{k}")
    ax.set_xlabel("EV share of the customers [%]")
    ax.set_ylabel("probability of a violation [-]")
    ax.set_ylim(-0.02, 1.05)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=10)
    return fig
