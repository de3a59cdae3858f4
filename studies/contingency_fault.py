"""The fault-sag part of the contingency study: ``fault`` events checked and seen by the fleet.

A ``fault`` event (:class:`cosim.scenario.EventConfig`, ``kind = "fault"``) is a balanced
three-phase fault on the feeder; :class:`FaultSag` gives every fleet bus its retained voltage
from :class:`grids.fault.FaultModel` (superposition on the pre-fault power flow with the
fleet's injection) for the fault's duration, and keeps what the fleet did during it (units in
momentary cessation, trips, the buses below each ride-through threshold). The time loop that
uses it is :mod:`studies.contingency_simulation`; ``docs/contingency.md`` states the model.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np

from cosim.scenario import EventKind
from grids.errors import FeederError
from grids.fault import FaultMethod, FaultModel
from studies.study_inputs import feeder_net


def fault_model(feeder: Any, event: Any):
    """The fault calculation (:class:`grids.fault.FaultModel`, superposition on the pre-fault
    power flow) of the scenario's feeder for one ``fault`` event.

    Parameters
    ----------
    feeder : cosim.scenario.FeederConfig
        The ``[feeder]`` section.
    event : cosim.scenario.EventConfig
        A ``fault`` event (its ``s_sc_mva``/``rx`` fill in a feeder without short-circuit
        data).

    Returns
    -------
    grids.fault.FaultModel

    Raises
    ------
    FeederError
        The feeder lacks the source data (naming ``ext_grid.s_sc_max_mva``/``rx_max``) or
        has elements the fault calculation does not model.
    """
    return FaultModel(
        feeder_net(feeder),
        method=FaultMethod.SUPERPOSITION,
        s_sc_mva=event.s_sc_mva,
        rx=event.rx,
    )


def fault_problems(
    shared: Any, *, scaled_sag: bool, section: str, raw_events: Any = None
) -> list[str]:
    """Problems of the ``fault`` events of a scenario for the contingency study.

    A fault needs a bus of the feeder and the source's short-circuit data; one fault at a
    time; it replaces the scaled sag ``sag_vm_pu`` (both at once would be two models of one
    sag).

    Parameters
    ----------
    shared : cosim.scenario.Scenario
        The validated shared sections.
    scaled_sag : bool, keyword-only
        Whether the study section also gives ``sag_vm_pu``.
    section : str, keyword-only
        The study section's name (for messages).
    raw_events : list, keyword-only
        The ``[[events]]`` tables as written, so that messages name each fault by its
        position in the file (the loaded events are sorted by time).

    Returns
    -------
    list of str
        Every problem with its key path.
    """
    problems: list[str] = []
    faults = [e for e in shared.events if e.kind is EventKind.FAULT]
    # file positions of the fault tables, in the (stable) time order of the loaded events
    written = [
        (item.get("t_s"), i)
        for i, item in enumerate(raw_events if isinstance(raw_events, list) else [])
        if isinstance(item, dict) and item.get("kind") == EventKind.FAULT.value
    ]
    positions = [i for _, i in sorted(written, key=lambda ti: ti[0])]
    if len(positions) != len(faults):
        positions = list(range(len(faults)))  # (a caller without the raw tables)
    indexed = list(zip(positions, faults, strict=True))
    if indexed and scaled_sag:
        problems.append(
            f"{section}.sag_vm_pu: a scaled sag and a 'fault' event were both given "
            "(the fault event computes the sag per bus: drop sag_vm_pu)"
        )
    windows = sorted((e.t_s, e.t_s + e.duration_s, i) for i, e in indexed)
    for (_, end, i), (start, _, j) in itertools.pairwise(windows):
        if start < end:
            problems.append(
                f"events[{j}].t_s: the fault starts before the fault of events[{i}] is cleared "
                f"(at {end:g} s); one fault at a time"
            )
    for i, event in indexed:
        try:
            model = fault_model(shared.feeder, event)
        except FeederError as exc:
            problems.extend(f"events[{i}]: {p}" for p in (exc.problems or [exc.summary]))
            continue
        if int(event.bus) not in set(model.bus.tolist()):
            problems.append(
                f"events[{i}].bus: {event.bus} is not a bus of the feeder "
                f"{shared.feeder.name!r} (buses {int(model.bus.min())}..{int(model.bus.max())})"
            )
        elif model.dead_bus[int((model.bus == int(event.bus)).argmax())]:
            problems.append(f"events[{i}].bus: {event.bus} is not supplied (no fault current)")
    return problems


def cols_of(result: Any, rows: list[dict]) -> np.ndarray:
    """Columns of a :class:`grids.fault.FaultResult` for the buses of ``rows``."""
    lookup = {int(b): k for k, b in enumerate(result.bus)}
    return np.array([lookup[int(row["bus"])] for row in rows], dtype=np.intp)


class FaultSag:
    """One ``fault`` event seen by the fleet: its window, its retained voltages per fleet bus
    (from :class:`grids.fault.FaultModel` on the pre-fault state at its start), and what the
    fleet did during it (momentary cessation and trips, per bus)."""

    def __init__(self, event: Any, model: Any) -> None:
        self.event = event
        self.model = model
        self.t_start_s = float(event.t_s)
        self.t_end_s = float(event.t_s) + float(event.duration_s)
        self.result = None
        self.vm_fleet_pu: np.ndarray | None = None
        self.fleet_buses: np.ndarray | None = None
        self.p_fault_kw: np.ndarray | None = None
        self.ceased_mw = 0.0
        self.n_ceased_max = 0
        self.n_plugged_per_bus = np.zeros(0, dtype=np.int64)

    def active(self, t_s: float) -> bool:
        """Whether a step starting at ``t_s`` lies in the fault (zero-order hold: every step
        starting in ``[t_start, t_start + duration)`` sees the sag)."""
        eps = 1e-9
        return self.t_start_s <= t_s + eps < self.t_end_s

    def apply(
        self,
        v_pre,
        p_mw,
        q_mvar,
        *,
        fleet_buses,
        p_fleet_kw,
        n_plugged_per_bus,
        s_plugged_kva,
    ) -> None:
        """Compute the retained voltages from the pre-fault state (complex ``v_pre`` [pu] and
        the total injections [MW, Mvar] of the power flow that gave it), and the bound of the
        neglected inverter current: every plugged-in charger at its rated current
        (``s_plugged_kva`` per fleet bus over ``√3 U_n``)."""
        model = self.model
        lookup = {int(b): k for k, b in enumerate(model.bus)}
        cols = np.array([lookup[int(b)] for b in fleet_buses], dtype=np.intp)
        i_a = np.zeros(len(model.bus))
        i_a[cols] = np.asarray(s_plugged_kva, dtype=float) / (math.sqrt(3.0) * model.vn_kv[cols])
        self.result = model.solve(
            [int(self.event.bus)],
            z_fault_ohm=self.event.z_fault_ohm,
            z_fault_pu=self.event.z_fault_pu,
            v_prefault_pu=v_pre,
            p_mw=p_mw,
            q_mvar=q_mvar,
            i_inverter_a=i_a,
        )
        self.fleet_buses = np.asarray(fleet_buses)
        self.vm_fleet_pu = self.result.vm_at(self.fleet_buses)[0]
        self.p_fault_kw = np.asarray(p_fleet_kw, dtype=float).copy()
        self.n_plugged_per_bus = np.asarray(n_plugged_per_bus, dtype=np.int64)

    @property
    def vm_min_pu(self) -> float:
        """Lowest retained voltage at a fleet bus [pu] (NaN before the fault)."""
        return math.nan if self.vm_fleet_pu is None else float(np.nanmin(self.vm_fleet_pu))

    def record(self, *, ceased: np.ndarray, tripped: np.ndarray, replicas: float) -> None:
        """Count the fleet's output lost to momentary cessation at this step of the fault."""
        ref = self.p_fault_kw if self.p_fault_kw is not None else np.zeros(len(ceased))
        mw = replicas * float(np.sum(ref[ceased])) / 1000.0  # injection lost (signed)
        if abs(mw) > abs(self.ceased_mw):  # the largest at any step of the fault
            self.ceased_mw = mw
        self.n_ceased_max = max(self.n_ceased_max, int(ceased.sum()))

    def summary(self, trip: Any, *, replicas: float) -> dict[str, Any]:
        """The fault, its retained voltages and which fleet buses fell below which
        ride-through thresholds of ``trip`` (:class:`vehicle_models.settings.TripSettings`).

        Parameters
        ----------
        trip : TripSettings
            The case's trip and momentary-cessation settings (nominal values; a ``spread``
            stagger spreads them per unit around these).
        replicas : float
            Feeder replicas (the vehicle counts and MW are multiplied by it).

        Returns
        -------
        dict
            ``bus``, ``t_s``, ``duration_s``, ``z_fault_ohm`` ([R, X]), ``ikss_ka``,
            ``vm_min_pu``, ``inverter_lift_bound_pu`` (largest voltage error at a fleet bus
            from neglecting the chargers' fault current at their rated current),
            ``thresholds`` (name -> [pu, clearing time s or None]),
            ``fleet_ceased_mw`` and ``n_vehicles_ceased`` (largest during the fault),
            ``buses`` (one row per fleet bus: ``bus``, ``vm_pu``, ``n_vehicles_plugged``
            (times the replicas), ``below``: the thresholds it fell below).
        """
        thresholds: dict[str, tuple[float, float | None]] = {
            "uv1_v_pu": (float(trip.uv1_v_pu), float(trip.uv1_t_s)),
            "uv2_v_pu": (float(trip.uv2_v_pu), float(trip.uv2_t_s)),
        }
        if trip.mc_low_v_pu > 0:
            thresholds["mc_low_v_pu"] = (float(trip.mc_low_v_pu), None)
        out: dict[str, Any] = {
            "bus": int(self.event.bus),
            "t_s": self.t_start_s,
            "duration_s": self.t_end_s - self.t_start_s,
            "thresholds": {k: list(v) for k, v in thresholds.items()},
        }
        if self.result is None:  # the run ended before the fault
            return out
        z = complex(self.result.z_fault_ohm[0])
        rows = []
        counts = self.n_plugged_per_bus
        for k, bus in enumerate(self.fleet_buses):
            vm = float(self.vm_fleet_pu[k])
            rows.append(
                {
                    "bus": int(bus),
                    "vm_pu": vm,
                    "n_vehicles_plugged": round(int(counts[k]) * replicas),
                    "below": [name for name, (v, _) in thresholds.items() if vm < v],
                }
            )
        out.update(
            {
                "z_fault_ohm": [z.real, z.imag],
                "ikss_ka": float(self.result.ikss_ka[0]),
                "vm_min_pu": self.vm_min_pu,
                # the largest error of neglecting the chargers' fault current (all plugged-in
                # chargers at rated current), over the fleet buses
                "inverter_lift_bound_pu": float(
                    np.nanmax(self.result.vm_lift_bound_pu[0][cols_of(self.result, rows)])
                ),
                "fleet_ceased_mw": self.ceased_mw,
                "n_vehicles_ceased": round(self.n_ceased_max * replicas),
                "buses": rows,
            }
        )
        return out


__all__ = ["FaultSag", "cols_of", "fault_model", "fault_problems"]
