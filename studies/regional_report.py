"""The summary report of a regional run: per-feeder table, distribution figure, failures.

Written by :func:`studies.regional.run_regional` into its results directory as
``report.html`` (the project's report writer, :class:`studies.report.Report`) and
``report.md`` (the same tables as Markdown, for a pull request or a wiki), with the figure
``hc_distribution.png`` (hosting capacity of every bus, one box per feeder) and its data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from studies.report import Report
from studies.sweep_store import STATUS_OK

# matplotlib is imported where the figure is drawn.


def feeder_summary(table: pd.DataFrame, feeders: pd.DataFrame) -> pd.DataFrame:
    """One row per feeder: status, buses, hosting capacity statistics, binding limits.

    Parameters
    ----------
    table : pandas.DataFrame
        The per-feeder x bus results (``feeder``, ``bus``, ``hosting_capacity_mw``,
        ``binding``, ``element``).
    feeders : pandas.DataFrame
        The feeder store's table (``run_id``, ``status``, ``error``, ``wall_s``).

    Returns
    -------
    pandas.DataFrame
        ``feeder``, ``status``, ``n_bus``, ``hc_min_mw``, ``hc_p10_mw``, ``hc_median_mw``,
        ``hc_max_mw`` [MW], ``binding`` (most frequent binding limit, with its share),
        ``wall_s`` [s], in the run's feeder order.
    """
    rows = []
    grouped = {name: group for name, group in table.groupby("feeder", sort=False)}
    for item in feeders.itertuples(index=False):
        group = grouped.get(item.run_id)
        row: dict[str, Any] = {"feeder": item.run_id, "status": item.status}
        if group is not None and len(group):
            hc = group["hosting_capacity_mw"].to_numpy(dtype=float)
            counts = group["binding"].value_counts()
            row.update(
                n_bus=len(group),
                hc_min_mw=float(np.min(hc)),
                hc_p10_mw=float(np.percentile(hc, 10)),
                hc_median_mw=float(np.median(hc)),
                hc_max_mw=float(np.max(hc)),
                binding=f"{counts.index[0]} ({100 * counts.iloc[0] / len(group):.0f} %)",
            )
        else:
            row.update(
                n_bus=0,
                hc_min_mw=np.nan,
                hc_p10_mw=np.nan,
                hc_median_mw=np.nan,
                hc_max_mw=np.nan,
                binding="",
            )
        row["wall_s"] = float(item.wall_s)
        rows.append(row)
    return pd.DataFrame(rows)


def distribution_figure(table: pd.DataFrame, *, title: str = ""):
    """Hosting capacity of every bus, one box (and the points) per feeder.

    Parameters
    ----------
    table : pandas.DataFrame
        The per-feeder x bus results.
    title : str, keyword-only
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(table["feeder"]))
    values = [
        table.loc[table["feeder"] == name, "hosting_capacity_mw"].to_numpy(float) * 1e3
        for name in names
    ]
    fig, ax = plt.subplots(figsize=(8, 1.2 + 0.35 * max(len(names), 1)))
    if names:
        ax.boxplot(values, vert=False, widths=0.6, showfliers=False)
        for k, v in enumerate(values, start=1):
            jitter = np.linspace(-0.15, 0.15, len(v)) if len(v) > 1 else np.zeros(len(v))
            ax.plot(v, k + jitter, ".", color="tab:blue", alpha=0.5, markersize=4)
        ax.set_yticks(range(1, len(names) + 1), [n.removeprefix("simbench:") for n in names])
        ax.invert_yaxis()  # the first feeder on top, as in the table
        positive = np.concatenate(values)
        positive = positive[positive > 0]
        if len(positive) and positive.max() > 30 * positive.min():
            ax.set_xscale("log")  # feeders of very different sizes
    ax.set_xlabel("hosting capacity per bus [kW]")
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(title or "Hosting capacity per feeder")
    fig.tight_layout()
    return fig


def _markdown_table(frame: pd.DataFrame) -> str:
    def cell(value: Any) -> str:
        if isinstance(value, float):
            return "" if np.isnan(value) else f"{value:.4g}"
        return str(value).replace("|", "\\|")

    lines = [
        "| " + " | ".join(frame.columns) + " |",
        "|" + "---|" * len(frame.columns),
    ]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(False)]
    return "\n".join(lines)


def write_regional_report(
    out_dir: str | Path, table: pd.DataFrame, feeders: pd.DataFrame, options
) -> Path:
    """Write ``report.html``, ``report.md`` and the distribution figure into ``out_dir``.

    Parameters
    ----------
    out_dir : path
        The regional run's directory.
    table : pandas.DataFrame
        The per-feeder x bus results.
    feeders : pandas.DataFrame
        The feeder store's table (``run_id``, ``status``, ``error``, ``wall_s``).
    options : RegionalOptions
        The run's options (named in the report).

    Returns
    -------
    pathlib.Path
        The HTML report.
    """
    out = Path(out_dir)
    summary = feeder_summary(table, feeders)
    failed = feeders[feeders["status"] != STATUS_OK][["run_id", "error"]].rename(
        columns={"run_id": "feeder"}
    )
    opts = options.to_json()
    described = ", ".join(f"{k} = {v}" for k, v in opts.items() if v is not None)
    n_ok = int((feeders["status"] == STATUS_OK).sum())
    headline = (
        f"{n_ok} of {len(feeders)} feeders studied ({len(failed)} failed), "
        f"{len(table)} buses; study: {described}."
    )
    bindings = (
        table["binding"].value_counts().rename_axis("binding").reset_index(name="n_bus")
        if len(table)
        else pd.DataFrame(columns=["binding", "n_bus"])
    )
    report = Report("Regional hosting capacity")
    report.paragraph(headline)
    report.heading("Hosting capacity per feeder")
    report.table(summary, "Per feeder: hosting capacity over its buses [MW]")
    report.figure(
        distribution_figure(table, title=f"Hosting capacity per bus ({opts['mode']})"),
        "hc_distribution",
        "Hosting capacity of every bus, one box per feeder (box: quartiles; whiskers: 1.5 IQR)",
        data=table[["feeder", "bus", "hosting_capacity_mw"]],
    )
    report.heading("What binds")
    report.table(bindings, "Binding limit: number of buses over all feeders")
    if len(failed):
        report.heading("Failed feeders")
        report.table(failed, "Recorded with their error; run again with --retry-failed")
    path = report.write(out)
    markdown = [
        "# Regional hosting capacity",
        "",
        headline,
        "",
        "## Hosting capacity per feeder [MW]",
        "",
        _markdown_table(summary),
        "",
        "![Hosting capacity per bus, one box per feeder](hc_distribution.png)",
        "",
        "## What binds",
        "",
        _markdown_table(bindings),
    ]
    if len(failed):
        markdown += ["", "## Failed feeders", "", _markdown_table(failed)]
    (out / "report.md").write_text("\n".join(markdown) + "\n", encoding="utf-8")
    return path
