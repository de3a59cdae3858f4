"""The report of ``v2g-cosim demo``: a day on a feeder with a V2G fleet and a frequency event.

:func:`demo_report` reads a run's results file (see :mod:`cosim.results`) and writes
``report.html`` with: the feeder voltage envelope over the day, the substation transformer's
hot-spot and top-oil temperatures, fleet power and state of charge, the frequency (and the
fleet's response) around the event, and a table of key numbers. Every figure is also written
as a PNG (``demo_*.png``) with its data as CSV.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cosim.results import read_results, signal_mask
from grids.limits import Violation, voltage_violations
from grids.powerflow import prepare_net
from studies.report import Report, as_violation
from studies.study_inputs import line_rating_notes

# matplotlib is imported where the figures are drawn.


def _signals(frame: pd.DataFrame, suffix: str) -> pd.DataFrame:
    """Wide table (rows t_s, one column per signal) of the signals ending with ``suffix``,
    forward-filled (the results are a zero-order hold)."""
    sel = frame[signal_mask(frame, lambda name: name.endswith(suffix))]
    if sel.empty:
        return pd.DataFrame()
    table = sel.pivot_table(index="t_s", columns="signal", values="value", observed=True)
    return table.sort_index().ffill()


def _per_bus(frame: pd.DataFrame, attr: str) -> pd.DataFrame:
    sel = frame[signal_mask(frame, lambda name: f".{attr}[" in name)]
    if sel.empty:
        return pd.DataFrame()
    table = sel.pivot_table(index="t_s", columns="signal", values="value", observed=True)
    table.columns = [int(str(c).rsplit("[", 1)[1].rstrip("]")) for c in table.columns]
    return table.sort_index().ffill()


def _one(frame: pd.DataFrame, suffix: str) -> pd.Series:
    table = _signals(frame, suffix)
    if table.empty:
        return pd.Series(dtype=float)
    return table.iloc[:, 0]


def _on_grid(series: pd.Series | pd.DataFrame, step_s: float):
    """Sample a zero-order-hold series on the quasi-static grid ``0, step_s, ...``."""
    if len(series) == 0:
        return series
    index = np.asarray(series.index, dtype=float)
    grid = np.arange(0.0, index.max() + 0.5 * step_s, step_s)
    return series.reindex(grid, method="ffill", tolerance=None)


def _voltage_violations(frame: pd.DataFrame, scen: Mapping, step_s: float) -> list[Violation]:
    """Service-voltage ranges on the recorded bus voltages (quasi-static grid)."""
    vm = _on_grid(_per_bus(frame, "bus_vm_pu"), step_s)
    if vm.empty:
        return []
    f0_hz = float(scen.get("frequency", {}).get("f0_hz", 60.0) or 60.0)
    return voltage_violations(
        vm.to_numpy(dtype=float),
        bus_names=[f"bus {b}" for b in vm.columns],
        t_s=vm.index.to_numpy(dtype=float),
        step_s=step_s,
        standard="en50160" if abs(f0_hz - 50.0) < 1e-9 else "ansi",
    )


def _rating_notes(feeder: Mapping, metrics: Mapping) -> list[str]:
    """Say that line loading is unchecked when the feeder's lines have no real rating."""
    if "max_line_loading_percent" not in metrics:
        return []
    try:
        return line_rating_notes(prepare_net(str(feeder.get("name", "case33bw"))))
    except Exception:  # a feeder that cannot be reloaded here: the run already validated it
        return []


def demo_report(
    results_path: str | Path,
    out_dir: str | Path,
    *,
    metrics: dict[str, float],
    title: str = "v2g-cosim demo",
    wall_time_s: float | None = None,
    violations: Sequence[Violation | Mapping[str, Any]] | None = None,
    limits_not_checked: Sequence[str] | None = None,
) -> Path:
    """Write the demo report for a results file; return the path of ``report.html``.

    Parameters
    ----------
    results_path : path
        The run's results file (:mod:`cosim.results`).
    out_dir : path
        Where ``report.html``, the figures (PNG) and their data (CSV) go.
    metrics : dict
        The run's key numbers (``RunResult.metrics``).
    title : str
        Title of the report.
    wall_time_s : float, optional
        Wall time of the co-simulation [s], shown in the table.
    violations : sequence of Violation or dict, optional
        The run's broken limits (``Violation`` or its ``to_dict()`` form), shown at the top.
        Without it, the service-voltage ranges (ANSI C84.1 A/B at 60 Hz, EN 50160 at 50 Hz)
        are checked on the bus voltages of the results file.
    limits_not_checked : sequence of str, optional
        Limits the run could not check (``RunResult.limits_not_checked``: a missing rating is
        said as such); without it, unrated lines of the feeder are found here.

    Returns
    -------
    pathlib.Path
        The path of ``report.html``.

    Examples
    --------
    >>> demo_report("out/results.h5", "out", metrics=result.metrics)  # doctest: +SKIP
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frame, meta = read_results(results_path)
    scen = meta["scenario"]
    sim = scen["simulation"]
    step_s = float(sim["step_s"])
    feeder = scen.get("feeder", {})
    fleet = scen.get("fleet", {})
    events = scen.get("events", [])
    rating = feeder.get("transformer", {}).get("rating_mva", 5.0)

    rep = Report(title)
    if violations is None:
        violations = _voltage_violations(frame, scen, step_s)
    rating_notes = (
        list(limits_not_checked)
        if limits_not_checked is not None
        else _rating_notes(feeder, metrics)
    )
    rep.violations([as_violation(v) for v in violations], notes=rating_notes)
    rep.paragraph(
        f"Feeder {feeder.get('name', 'case33bw')} ({feeder.get('method', 'ac')} power flow) "
        f"over {float(sim['duration_s']) / 3600:.0f} h at {step_s / 60:g}-min steps, with "
        f"{fleet.get('n_vehicles', 0)} vehicles ({fleet.get('preset', 'home')} preset, "
        f"controls {', '.join(fleet.get('control', {}).get('functions', []) or ['default'])}) "
        "coupled through mosaik to a swing-equation model of the bulk grid. "
        + (
            f"A {events[0]['kind'].replace('_', ' ')} of {events[0].get('p_mw', 0):g} MW at "
            f"t = {float(events[0]['t_s']) / 3600:.2f} h is simulated at "
            f"{float(sim.get('fast_step_s') or step_s) * 1000:g}-ms steps in a window around it."
            if events
            else ""
        )
    )
    if fleet.get("setpoint_profile"):
        rep.paragraph(
            f"An aggregator dispatches the fleet from {Path(fleet['setpoint_profile']).name} "
            f"(total MW, empty = follow the charging policy); its set-points arrive "
            f"{fleet.get('latency_s', 0):g} s late and are applied at the fleet's next step."
        )
    rep.paragraph(
        "case33bw has no transformer: the substation transformer is modelled thermally "
        f"(IEC 60076-7, {feeder.get('transformer', {}).get('cooling', 'ONAN')} default "
        f"parameters) with a nominal rating of {rating:g} MVA, loaded with the apparent power "
        "the feeder draws from the external grid."
    )

    rep.heading("Key numbers")
    keys = {
        "min_vm_pu": "lowest bus voltage [pu]",
        "max_vm_pu": "highest bus voltage [pu]",
        "max_line_loading_percent": "peak line loading [%]",
        "max_transformer_load_pu": "peak transformer loading [pu of rating]",
        "max_hot_spot_c": "peak hot-spot temperature [°C]",
        "max_top_oil_c": "peak top-oil temperature [°C]",
        "ageing_h": "transformer equivalent ageing [h]",
        "e_loss_feeder_kwh": "feeder losses [kWh]",
        "fleet_e_charged_kwh": "fleet energy charged [kWh]",
        "fleet_e_discharged_kwh": "fleet energy discharged (V2G) [kWh]",
        "max_fleet_import_mw": "peak fleet charging [MW]",
        "max_fleet_export_mw": "peak fleet export [MW]",
        "soc_final_frac": "mean SoC at the end [-]",
        "max_n_tripped": "most vehicles tripped at once [-]",
        "f_nadir_hz": "frequency nadir [Hz]",
        "max_abs_rocof_hz_per_s": "largest |RoCoF| [Hz/s]",
        "max_abs_rocof_500ms_hz_per_s": "largest 500 ms RoCoF [Hz/s]",
        "f_final_hz": "frequency at the end [Hz]",
        "ufls_shed_mw": "load shed by UFLS [MW]",
    }
    unrated = any("line" in note for note in rating_notes)
    table = pd.DataFrame(
        [
            (
                label,
                "no line ratings: not checked"
                if unrated and key.startswith("max_line")
                else metrics[key],
            )
            for key, label in keys.items()
            if key in metrics
        ],
        columns=["quantity", "value"],
    )
    if wall_time_s is not None:
        table.loc[len(table)] = ["wall time of the co-simulation [s]", wall_time_s]
    rep.table(table, "Key numbers of the run")

    hours = 3600.0
    vm = _on_grid(_per_bus(frame, "bus_vm_pu"), step_s)
    if not vm.empty:
        rep.heading("Feeder voltage envelope")
        t_h = vm.index.to_numpy() / hours
        fig, ax = plt.subplots(figsize=(8, 3.6))
        ax.fill_between(t_h, vm.min(axis=1), vm.max(axis=1), alpha=0.3, label="min-max of buses")
        ax.plot(t_h, vm.mean(axis=1), label="mean of buses")
        ax.plot(t_h, vm.min(axis=1), lw=0.8, color="C3", label="lowest bus")
        ax.axhline(0.95, ls="--", color="k", lw=0.8, label="0.95 pu (ANSI C84.1 range A)")
        ax.set_xlabel("time of day [h]")
        ax.set_ylabel("voltage [pu]")
        ax.set_xlim(0, float(sim["duration_s"]) / hours)
        ax.legend(loc="lower left", fontsize=8)
        ax.grid(alpha=0.3)
        data = pd.DataFrame(
            {
                "t_h": t_h,
                "vm_min_pu": vm.min(axis=1).to_numpy(),
                "vm_mean_pu": vm.mean(axis=1).to_numpy(),
                "vm_max_pu": vm.max(axis=1).to_numpy(),
            }
        )
        rep.figure(fig, "demo_voltage_envelope", "Bus voltages over the day", data=data)

    hot = _on_grid(_one(frame, ".hot_spot_c"), step_s)
    if not hot.empty:
        rep.heading("Transformer temperature")
        top = _on_grid(_one(frame, ".top_oil_c"), step_s)
        load = _on_grid(_one(frame, ".transformer_load_pu"), step_s)
        t_h = hot.index.to_numpy() / hours
        fig, ax = plt.subplots(figsize=(8, 3.6))
        ax.plot(t_h, hot.to_numpy(), label="hot spot")
        ax.plot(t_h, top.to_numpy(), label="top oil")
        ax.axhline(98.0, ls="--", color="k", lw=0.8, label="98 °C (relative ageing rate 1)")
        ax.set_xlabel("time of day [h]")
        ax.set_ylabel("temperature [°C]")
        ax2 = ax.twinx()
        ax2.plot(t_h, load.to_numpy(), color="C2", lw=0.8, ls=":", label="loading")
        ax2.set_ylabel("loading [pu]")
        ax.legend(loc="upper left", fontsize=8)
        ax.grid(alpha=0.3)
        data = pd.DataFrame(
            {
                "t_h": t_h,
                "hot_spot_c": hot.to_numpy(),
                "top_oil_c": top.to_numpy(),
                "load_pu": load.to_numpy(),
            }
        )
        rep.figure(fig, "demo_transformer", "Substation transformer (IEC 60076-7)", data=data)

    p = _on_grid(_one(frame, "fleet.p_mw"), step_s)
    if not p.empty:
        rep.heading("Fleet power and state of charge")
        q = _on_grid(_one(frame, "fleet.q_mvar"), step_s)
        soc = _on_grid(_one(frame, "fleet.soc_mean_frac"), step_s)
        plugged = _on_grid(_one(frame, "fleet.n_plugged"), step_s)
        t_h = p.index.to_numpy() / hours
        fig, (ax, axs) = plt.subplots(2, 1, figsize=(8, 5.2), sharex=True)
        ax.step(t_h, p.to_numpy(), where="post", label="P (injection > 0)")
        ax.step(t_h, q.to_numpy(), where="post", label="Q (volt-var)")
        ax.set_ylabel("fleet power [MW, Mvar]")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
        axs.plot(t_h, soc.to_numpy(), label="mean SoC")
        axs.set_ylabel("SoC [-]")
        axs.set_xlabel("time of day [h]")
        axp = axs.twinx()
        axp.plot(t_h, plugged.to_numpy(), color="C1", lw=0.8, ls=":")
        axp.set_ylabel("vehicles plugged in")
        axs.grid(alpha=0.3)
        data = pd.DataFrame(
            {
                "t_h": t_h,
                "p_mw": p.to_numpy(),
                "q_mvar": q.to_numpy(),
                "soc_mean_frac": soc.to_numpy(),
                "n_plugged": plugged.to_numpy(),
            }
        )
        rep.figure(fig, "demo_fleet", "Fleet power and mean state of charge", data=data)

    f = _one(frame, ".f_hz")
    if not f.empty and events:
        rep.heading("Frequency around the event")
        t_event = float(events[0]["t_s"])
        before, after = sim.get("window_s", [5, 55])
        dt = float(sim.get("fast_step_s") or step_s)
        grid = np.arange(max(0.0, t_event - before), t_event + after + 0.5 * dt, dt)
        grid = grid[grid <= f.index.max()]
        if len(grid) < 3:  # single-rate runs: show everything
            grid = f.index.to_numpy()
        window = f.reindex(grid, method="ffill")
        pf = _one(frame, "fleet.p_mw")
        fig, ax = plt.subplots(figsize=(8, 3.6))
        ax.plot(window.index - t_event, window.to_numpy(), label="frequency")
        ax.set_xlabel("time after the event [s]")
        ax.set_ylabel("frequency [Hz]")
        ax.grid(alpha=0.3)
        data = pd.DataFrame({"t_after_event_s": window.index - t_event, "f_hz": window.values})
        if not pf.empty:
            ax2 = ax.twinx()
            pw = pf.reindex(grid, method="ffill")
            ax2.plot(window.index - t_event, pw.to_numpy(), color="C1", lw=0.9)
            ax2.set_ylabel("fleet injection [MW]", color="C1")
            data["fleet_p_mw"] = pw.to_numpy()
        rep.figure(
            fig, "demo_frequency", "Frequency and fleet response around the event", data=data
        )

    rep.paragraph(
        f"Results file: {Path(results_path).name} (long form: t_s, signal, value; metadata "
        "with the scenario, the seed and the package versions)."
    )
    return rep.write(out_dir)
