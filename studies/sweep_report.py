"""Analysis of a sweep's results: sensitivity plots, heat map, Pareto front, best settings.

Reads ``DIR/results.parquet`` and ``DIR/sweep.json`` written by :func:`studies.sweep.run_sweep`
and writes ``report.html`` with PNG figures and the CSV data behind them (via
:class:`studies.report.Report`).
"""

from __future__ import annotations

import json
import math
import operator
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from grids.errors import ScenarioError, check_problems
from studies.report import Report
from studies.sweep import STATUS_OK, read_results, read_spec

# matplotlib is imported where a figure is drawn (reading a sweep's table does not need it).

_OPERATORS = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
    "==": operator.eq,
}
_CONSTRAINT = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*(>=|<=|==|>|<)\s*(\S+)\s*$")


@dataclass(frozen=True)
class Constraint:
    """``metric OP value`` (OP one of >=, <=, >, <, ==)."""

    metric: str
    op: str
    value: float

    def mask(self, frame: pd.DataFrame) -> pd.Series:
        values = pd.to_numeric(frame[self.metric], errors="coerce")
        return _OPERATORS[self.op](values, self.value) & values.notna()

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {self.value:g}"


@dataclass(frozen=True)
class Objective:
    """A metric and its direction (``maximize`` True or False)."""

    metric: str
    maximize: bool

    def __str__(self) -> str:
        return f"{'max' if self.maximize else 'min'} {self.metric}"


def parse_constraint(text: str) -> Constraint:
    """Parse ``"f_nadir_hz >= 59.7"``; ScenarioError if malformed."""
    match = _CONSTRAINT.match(str(text))
    if not match:
        raise ScenarioError(
            f"constraint {text!r}: expected 'metric OP value' with OP one of >=, <=, >, <, =="
        )
    try:
        value = float(match.group(3))
    except ValueError:
        raise ScenarioError(f"constraint {text!r}: {match.group(3)!r} is not a number") from None
    return Constraint(match.group(1), match.group(2), value)


def parse_objective(text: str) -> Objective:
    """Parse ``"metric:max"`` or ``"metric:min"`` (default ``min`` without a suffix)."""
    name, _, sense = str(text).partition(":")
    sense = sense.strip().lower() or "min"
    if sense not in ("min", "max") or not name.strip():
        raise ScenarioError(f"objective {text!r}: expected 'metric:min' or 'metric:max'")
    return Objective(name.strip(), sense == "max")


def pareto_mask(values: np.ndarray, maximize: Sequence[bool]) -> np.ndarray:
    """Non-dominated points of ``values`` (n, k) for the given directions.

    A point is dominated if another is at least as good in every objective and strictly
    better in one. NaN rows are never on the front.
    """
    v = np.asarray(values, dtype=float).copy()
    for j, is_max in enumerate(maximize):
        if is_max:
            v[:, j] = -v[:, j]  # minimize everything
    finite = np.all(np.isfinite(v), axis=1)
    mask = np.zeros(len(v), dtype=bool)
    for i in np.flatnonzero(finite):
        others = v[finite]
        dominated = np.any(np.all(others <= v[i], axis=1) & np.any(others < v[i], axis=1))
        mask[i] = not dominated
    return mask


def best_runs(
    frame: pd.DataFrame,
    objective: Objective,
    constraints: Sequence[Constraint] = (),
    *,
    n: int = 5,
) -> pd.DataFrame:
    """The ``n`` best successful runs under all constraints, best first."""
    ok = frame[frame["status"] == STATUS_OK]
    mask = pd.Series(True, index=ok.index)
    for c in constraints:
        mask &= c.mask(ok)
    feasible = ok[mask].copy()
    feasible[objective.metric] = pd.to_numeric(feasible[objective.metric], errors="coerce")
    feasible = feasible.dropna(subset=[objective.metric])
    return feasible.sort_values(objective.metric, ascending=not objective.maximize).head(n)


def _check_names(names: Sequence[str], frame: pd.DataFrame, what: str, problems: list[str]):
    for name in names:
        if name not in frame.columns:
            problems.append(f"{what}: {name!r} is not a column of the results")


def _numeric(frame: pd.DataFrame, column: str) -> pd.Series:
    return pd.to_numeric(frame[column], errors="coerce")


def _sensitivity_figure(frame: pd.DataFrame, metric: str, axes: Sequence[str]):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = max(len(axes), 1)
    fig, ax_list = plt.subplots(1, n, figsize=(4.0 * n, 3.4), squeeze=False, layout="constrained")
    y = _numeric(frame, metric)
    for ax, key in zip(ax_list[0], axes, strict=False):
        x = _numeric(frame, key)
        if x.notna().any():
            ax.scatter(x, y, s=12, alpha=0.6)
            if x.nunique() <= 20:
                means = y.groupby(x).mean()
                ax.plot(means.index, means.values, color="C1", lw=1.5, label="mean")
                ax.legend(fontsize=8)
        else:  # categorical parameter
            labels = frame[key].astype(str)
            means = y.groupby(labels).mean()
            ax.bar(range(len(means)), means.values)
            ax.set_xticks(range(len(means)), means.index, rotation=30, fontsize=8)
        ax.set_xlabel(key)
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
    fig.suptitle(f"Sensitivity of {metric}")
    return fig


def _binned(series: pd.Series, max_levels: int = 12) -> pd.Series:
    """Continuous (e.g. LHS) axes binned into 8 intervals, labelled by their midpoints."""
    numeric = pd.to_numeric(series, errors="coerce")
    if numeric.notna().all() and numeric.nunique() > max_levels:
        bins = pd.cut(numeric, bins=8)
        return pd.Series([interval.mid for interval in bins], index=series.index, dtype=float)
    return series


def _heatmap_figure(table: pd.DataFrame, metric: str, x_key: str, y_key: str):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 5), layout="constrained")
    image = ax.imshow(table.to_numpy(dtype=float), origin="lower", aspect="auto", cmap="viridis")
    ax.set_xticks(range(len(table.columns)), [_label(c) for c in table.columns], rotation=30)
    ax.set_yticks(range(len(table.index)), [_label(i) for i in table.index])
    ax.set_xlabel(x_key)
    ax.set_ylabel(y_key)
    fig.colorbar(image, ax=ax, label=metric)
    ax.set_title(f"{metric} (mean over other axes)")
    return fig


def _label(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _pareto_figure(frame: pd.DataFrame, objectives: Sequence[Objective], mask: np.ndarray):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    a, b = objectives
    x, y = _numeric(frame, a.metric), _numeric(frame, b.metric)
    fig, ax = plt.subplots(figsize=(6, 4.5), layout="constrained")
    ax.scatter(x, y, s=14, color="0.6", label="runs")
    front = frame[mask].assign(_x=x[mask], _y=y[mask]).sort_values("_x")
    ax.plot(front["_x"], front["_y"], "o-", color="C3", label="Pareto front")
    ax.set_xlabel(f"{a.metric} ({'max' if a.maximize else 'min'})")
    ax.set_ylabel(f"{b.metric} ({'max' if b.maximize else 'min'})")
    ax.grid(alpha=0.3)
    ax.legend()
    return fig


def write_sweep_report(
    sweep_dir: str | Path,
    *,
    out_dir: str | Path | None = None,
    pareto: Sequence[str] | None = None,
    objective: str | None = None,
    constraints: Sequence[str] | None = None,
    heatmap: Sequence[str] | None = None,
    heatmap_metric: str | None = None,
) -> dict[str, Any]:
    """Write the sweep report; return a JSON-ready summary.

    Parameters
    ----------
    sweep_dir : path
        Directory with ``results.parquet`` and ``sweep.json``.
    out_dir : path, optional
        Where ``report.html`` goes (default: ``sweep_dir``).
    pareto : two ``"metric:min|max"`` strings, optional
        Metrics of the Pareto front (default: ``[report] pareto`` of the sweep file, else the
        first two metrics, minimized).
    objective : ``"metric:min|max"``, optional
        What "best" means (default ``[report] objective``, else the first metric, minimized).
    constraints : list of ``"metric OP value"``, optional
        Conditions the best settings must meet (default ``[report] constraints``).
    heatmap : two axis key paths, optional
        Axes of the heat map (default: ``[report] heatmap``, else the first two axes).
    heatmap_metric : str, optional
        Metric of the heat map (default: the objective's metric).
    """
    sweep_dir = Path(sweep_dir)
    spec = read_spec(sweep_dir)
    frame = read_results(sweep_dir)
    defaults = spec.get("report") or {}
    axes: list[str] = list(spec.get("axes") or [])
    metrics: list[str] = list(spec.get("metrics") or [])
    problems: list[str] = []

    objective_text = objective or defaults.get("objective") or (f"{metrics[0]}:min")
    default_pareto = [f"{m}:min" for m in metrics[:2]] if len(metrics) >= 2 else []
    pareto_texts = list(pareto or defaults.get("pareto") or default_pareto)
    constraint_texts = list(constraints or defaults.get("constraints") or [])
    heat_axes = list(heatmap or defaults.get("heatmap") or (axes[:2] if len(axes) >= 2 else []))
    parsed_constraints: list[Constraint] = []
    for text in constraint_texts:
        try:
            parsed_constraints.append(parse_constraint(text))
        except ScenarioError as error:
            problems.append(str(error))
    try:
        obj = parse_objective(objective_text)
        _check_names([obj.metric], frame, "objective", problems)
    except ScenarioError as error:
        problems.append(str(error))
        obj = None
    pareto_objs: list[Objective] = []
    if len(pareto_texts) not in (0, 2):
        problems.append(f"pareto: needs exactly two metrics, got {pareto_texts}")
    else:
        for text in pareto_texts:
            try:
                pareto_objs.append(parse_objective(text))
            except ScenarioError as error:
                problems.append(str(error))
        _check_names([p.metric for p in pareto_objs], frame, "pareto", problems)
    _check_names([c.metric for c in parsed_constraints], frame, "constraint", problems)
    if heat_axes and len(heat_axes) != 2:
        problems.append(f"heatmap: needs exactly two axes, got {heat_axes}")
    _check_names(heat_axes, frame, "heatmap", problems)
    heat_metric = heatmap_metric or (
        obj.metric if obj and obj.metric in metrics else (metrics[0] if metrics else None)
    )
    if heatmap_metric:
        _check_names([heatmap_metric], frame, "heatmap metric", problems)
    check_problems(problems, ScenarioError, f"{sweep_dir}: cannot write the sweep report")
    assert obj is not None

    ok = frame[frame["status"] == STATUS_OK].reset_index(drop=True)
    failed = frame[frame["status"] != STATUS_OK]
    report = Report(f"Sweep report: {spec.get('study')} over {', '.join(axes)}")
    if "violations" in ok:
        report.limit_lines(_violation_summary(ok) or ["No limit is broken in any run."])
    report.heading("Summary")
    report.key_values(
        {
            "study": spec.get("study"),
            "sweep file": spec.get("source"),
            "runs in the sweep": spec.get("n_runs"),
            "runs recorded": len(frame),
            "runs ok": len(ok),
            "runs failed": len(failed),
            "total run time [s]": float(pd.to_numeric(frame["wall_s"]).sum()),
        }
    )
    if len(failed):
        report.table(
            failed[["run_id", *[a for a in axes if a in failed], "error"]].head(50),
            "Failed runs (first 50)",
        )

    report.heading("Sensitivity")
    report.paragraph("Each metric against each swept parameter (points: runs; line: mean).")
    for metric in metrics:
        if metric in ok and _numeric(ok, metric).notna().any():
            fig = _sensitivity_figure(ok, metric, axes)
            safe = re.sub(r"\W+", "_", metric)
            report.figure(
                fig, f"sensitivity_{safe}", f"{metric} vs the parameters", data=ok[[*axes, metric]]
            )

    heat_table = None
    if len(heat_axes) == 2 and heat_metric and len(ok):
        x_key, y_key = heat_axes
        tmp = ok.assign(_x=_binned(ok[x_key]), _y=_binned(ok[y_key]), _m=_numeric(ok, heat_metric))
        heat_table = tmp.pivot_table(index="_y", columns="_x", values="_m", aggfunc="mean")
        report.heading("Heat map")
        fig = _heatmap_figure(heat_table, heat_metric, x_key, y_key)
        data = heat_table.reset_index().rename(columns={"_y": y_key})
        report.figure(fig, "heatmap", f"{heat_metric} over {x_key} and {y_key}", data=data)

    front_ids: list[str] = []
    if len(pareto_objs) == 2 and len(ok):
        values = np.column_stack([_numeric(ok, p.metric).to_numpy() for p in pareto_objs])
        mask = pareto_mask(values, [p.maximize for p in pareto_objs])
        front = ok[mask]
        front_ids = front["run_id"].tolist()
        report.heading("Pareto front")
        report.paragraph(
            f"Runs not dominated in ({pareto_objs[0]}, {pareto_objs[1]}): no other run is at "
            "least as good in both and better in one."
        )
        cols = ["run_id", *axes, *[p.metric for p in pareto_objs]]
        fig = _pareto_figure(ok, pareto_objs, mask)
        report.figure(fig, "pareto", "Pareto front", data=ok[cols].assign(on_front=mask))
        report.table(front[cols], "Pareto-optimal runs")

    best = best_runs(frame, obj, parsed_constraints)
    report.heading("Best settings")
    conditions = ", ".join(str(c) for c in parsed_constraints) or "no constraints"
    report.paragraph(f"Objective: {obj}; subject to: {conditions}.")
    best_doc: dict[str, Any] | None = None
    if len(best):
        report.table(best[["run_id", *axes, *metrics]], "Best runs, best first")
        top = best.iloc[0]
        best_doc = {
            "run_id": top["run_id"],
            "params": {a: _plain(top[a]) for a in axes},
            "metrics": {m: _plain(top[m]) for m in metrics},
        }
    else:
        report.paragraph("No successful run meets all the constraints.")
    path = report.write(out_dir or sweep_dir)
    return {
        "report": str(path),
        "n_runs": len(frame),
        "n_ok": len(ok),
        "n_failed": len(failed),
        "objective": str(obj),
        "constraints": [str(c) for c in parsed_constraints],
        "best": best_doc,
        "pareto_run_ids": front_ids,
    }


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _violation_summary(ok: pd.DataFrame) -> list[str]:
    """Per named limit, how many runs broke it (from a ``violations`` metric column, which
    the results store keeps as JSON text)."""
    counts: dict[str, int] = {}
    for value in ok["violations"]:
        try:
            items = json.loads(value) if isinstance(value, str) else value
        except json.JSONDecodeError:
            continue
        for limit in {item.get("limit") for item in items or [] if isinstance(item, dict)}:
            counts[limit] = counts.get(limit, 0) + 1
    if not counts:
        return []
    return [
        f"{limit}: broken in {n} of {len(ok)} runs"
        for limit, n in sorted(counts.items(), key=lambda kv: -kv[1])
    ]
