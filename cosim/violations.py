"""The limits a co-simulation run broke, computed from its results file in one place.

:func:`run_violations` is what the ``run`` and ``demo`` commands (and
:func:`cosim.world.run_scenario`) report under ``violations``: ANSI C84.1 ranges A and B over
every bus and every feeder step (from the recorded per-bus voltages; per phase connection on a
three-phase feeder, with the voltage unbalance factor of its three-phase buses, EN 50160's
2 %), line and substation
transformer loading, the IEC 60076-7 hot-spot limits and loss of life when the transformer is
modelled, IEEE 1547 trips of the fleet, and the frequency model's validity range. A limit that
cannot be checked (a feeder without line ratings) is said as such instead of being reported as
"0 % loading".
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from cosim.results import results_frame, signal_mask
from grids.errors import FeederError
from grids.feeder_model import line_rated
from grids.feeders import load_feeder
from grids.frequency import frequency_validity_violation
from grids.limits import (
    HOT_SPOT_CYCLIC_C,
    HOT_SPOT_EMERGENCY_C,
    Limit,
    Violation,
    missing_rating,
    unbalance_violation,
    upper_limit_violation,
    voltage_violations,
)

#: Stands for a recorded NaN inside :func:`_per_element` (no signal takes this value).
_RECORDED_NAN = -1.0e308


def _per_element(frame: pd.DataFrame, attr: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``(t_s, values[t, element], element keys)`` of a per-element signal ``<id>.<attr>[k]``,
    forward-filled over the times any element was recorded (the collector stores a value in
    the high-rate windows only when it changed)."""
    mask = signal_mask(frame, lambda name: f".{attr}[" in name)
    if not mask.any():
        return np.empty(0), np.empty((0, 0)), []
    sel = frame[mask]
    keys = sel["signal"].astype(str).str.extract(r"\[(.*)\]$", expand=False)
    # a recorded NaN (a line without rating, out of service or dead) is a value, not a gap:
    # it is kept through the pivot and the forward fill under a stand-in
    recorded = sel["value"].to_numpy(dtype=float)
    recorded = np.where(np.isnan(recorded), _RECORDED_NAN, recorded)
    table = (
        pd.DataFrame({"t_s": sel["t_s"].to_numpy(), "key": keys.to_numpy(), "v": recorded})
        .pivot_table(index="t_s", columns="key", values="v", aggfunc="last")
        .sort_index()
        .ffill()
        .replace(_RECORDED_NAN, np.nan)
    )
    order = sorted(table.columns, key=lambda k: (len(k), k))  # numeric keys in numeric order
    table = table[order]
    return table.index.to_numpy(), table.to_numpy(dtype=float), list(order)


def _scalar(frame: pd.DataFrame, suffix: str) -> tuple[np.ndarray, np.ndarray]:
    mask = signal_mask(frame, lambda name: name.endswith(suffix))
    return frame["t_s"].to_numpy()[mask], frame["value"].to_numpy()[mask]


def _step_s(t_s: np.ndarray, default: float | None) -> float | None:
    if default is not None:
        return float(default)
    return float(np.median(np.diff(t_s))) if t_s.size > 1 else None


def run_violations(
    results_path: str | Path | pd.DataFrame,
    *,
    feeder: str | None = None,
    feeder_step_s: float | None = None,
    duration_s: float | None = None,
    f0_hz: float | None = None,
    standard: str = "ansi",
) -> tuple[list[Violation], list[str]]:
    """Every named limit a run broke, from its results file.

    Parameters
    ----------
    results_path : path or pandas.DataFrame
        The run's results file, or the frame already read from it
        (:func:`cosim.results.read_results`).
    feeder : str, optional, keyword-only
        The feeder (embedded name or JSON path): whether its lines carry ratings.
    feeder_step_s : float, optional, keyword-only
        The time each feeder sample stands for [s] (``feeder.step_s`` or ``simulation.step_s``;
        default: the median spacing of the recorded voltages).
    duration_s : float, optional, keyword-only
        The run's duration [s]: loss of life compares the transformer's ageing with it, and
        the last sample counts no time past it.
    f0_hz : float, optional, keyword-only
        The system's nominal frequency [Hz] (for the frequency model's validity range).
    standard : {"ansi", "en50160"}, keyword-only
        Service-voltage ranges: ANSI C84.1 ranges A and B, or EN 50160.

    Returns
    -------
    violations : list of Violation
        At most one per limit and side, the worst element named (``Violation.to_dict()`` for
        JSON); empty when nothing was broken.
    not_checked : list of str
        One sentence per limit that could not be checked (:func:`grids.limits.missing_rating`).
    """
    frame = results_frame(results_path)
    out: list[Violation] = []
    not_checked: list[str] = []

    t_s, vm_pu, buses = _per_element(frame, "bus_vm_pu")
    if vm_pu.size:
        # a de-energised bus (0 pu after an outage) is not a service-voltage violation
        vm = np.where(vm_pu > 0.0, vm_pu, np.nan)
        out += voltage_violations(
            vm,
            bus_names=[f"bus {b}" for b in buses],
            t_s=t_s,
            step_s=_step_s(t_s, feeder_step_s),
            end_s=duration_s,
            standard=standard,
        )

    # three-phase feeders: the voltage unbalance factor of every three-phase bus (2 %)
    t_vuf, vuf_percent, bus3 = _per_element(frame, "bus_vuf_percent")
    if vuf_percent.size:
        found = unbalance_violation(
            vuf_percent,
            bus_names=[f"bus {b}" for b in bus3],
            t_s=t_vuf,
            step_s=_step_s(t_vuf, feeder_step_s),
            end_s=duration_s,
        )
        out += [found] if found is not None else []

    t_line, line_pct, lines = _per_element(frame, "line_loading_percent")
    if not lines:
        t_line, line_max = _scalar(frame, ".max_line_loading_percent")
        line_pct, lines = line_max[:, None], ["the most loaded line"]
    if feeder is not None and _lines_unrated(feeder):
        not_checked.append(missing_rating("lines", "loading_percent"))
    elif line_pct.size:
        found = upper_limit_violation(
            line_pct,
            100.0,
            limit=Limit.LINE_LOADING,
            quantity="loading_percent",
            names=[f"line {k}" if k.isdigit() else k for k in lines],
            t_s=t_line,
            step_s=_step_s(t_line, feeder_step_s),
            end_s=duration_s,
        )
        out += [found] if found is not None else []

    t_tr, load_pu = _scalar(frame, ".transformer_load_pu")
    if load_pu.size:
        found = upper_limit_violation(
            load_pu[:, None],
            1.0,
            limit=Limit.TRANSFORMER_LOADING,
            quantity="load_pu",
            names=["substation transformer"],
            t_s=t_tr,
            step_s=_step_s(t_tr, feeder_step_s),
            end_s=duration_s,
        )
        out += [found] if found is not None else []
    t_hs, hot_spot_c = _scalar(frame, ".hot_spot_c")
    for limit_c, limit in (
        (HOT_SPOT_CYCLIC_C, Limit.IEC_60076_7_HOT_SPOT_CYCLIC),
        (HOT_SPOT_EMERGENCY_C, Limit.IEC_60076_7_HOT_SPOT_EMERGENCY),
    ):
        if hot_spot_c.size:
            found = upper_limit_violation(
                hot_spot_c[:, None],
                limit_c,
                limit=limit,
                quantity="hot_spot_c",
                names=["substation transformer"],
                t_s=t_hs,
                step_s=_step_s(t_hs, feeder_step_s),
                end_s=duration_s,
            )
            out += [found] if found is not None else []
    _t, ageing_h = _scalar(frame, ".ageing_h")
    if ageing_h.size and duration_s:
        elapsed_h = float(duration_s) / 3600.0
        if ageing_h[-1] > elapsed_h:  # aged faster than at the reference hot spot (98 °C)
            out.append(
                Violation(
                    limit=Limit.IEC_60076_7_LOSS_OF_LIFE.value,
                    element="substation transformer",
                    quantity="ageing_h",
                    worst_value=float(ageing_h[-1]),
                    limit_value=elapsed_h,
                )
            )

    t_trip, n_tripped = _scalar(frame, "fleet.n_tripped")
    if n_tripped.size and np.nanmax(n_tripped) > 0:
        out.append(
            Violation(
                limit=Limit.IEEE_1547_TRIP.value,
                element="fleet",
                quantity="n_tripped",
                worst_value=float(np.nanmax(n_tripped)),
                limit_value=0.0,
                first_time_s=float(t_trip[int(np.argmax(n_tripped > 0))]),
            )
        )

    t_f, f_hz = _scalar(frame, ".f_hz")
    if f_hz.size and f0_hz is not None:
        found = frequency_validity_violation(f_hz, t_f, float(f0_hz))
        out += [found] if found is not None else []
    return out, not_checked


def _lines_unrated(feeder: str) -> bool:
    """No line carries a rating (the feeder model's rule, :func:`grids.feeder_model.
    line_rated`: ``case33bw`` carries 99999 kA placeholders)."""
    try:
        net = load_feeder(feeder)
    except FeederError:
        return False
    rated = line_rated(net)
    return bool(len(rated) and not rated.any())
