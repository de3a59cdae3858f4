"""Three-phase feeders in a scenario: which feeders they are, their buses' phases, the checks.

A ``[feeder]`` with ``path = "Master.dss"`` (an OpenDSS model) or ``name`` of an embedded
three-phase feeder (``ieee13``, ``ieee34``, ``ieee123``, ``european_lv``) runs the
co-simulation on the three-phase engine (:class:`grids.feeder3ph.ThreePhaseFeederModel`). Its
fleet's vehicles each sit on a bus and a phase (:mod:`vehicle_models.phases`). This module
reads, once per feeder, what the scenario needs to know about it (:class:`PhaseLayout`: bus
names as written in the file, the phases of each bus, the buses with loads) and holds the
checks that only apply to three-phase feeders (:func:`three_phase_problems`), so that the
scenario model stays one module with one small hook.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def three_phase_names() -> tuple[str, ...]:
    """Names of the embedded three-phase feeders (:data:`grids.feeder3ph.EMBEDDED_FEEDERS`)."""
    from grids.feeder3ph import EMBEDDED_FEEDERS

    return tuple(EMBEDDED_FEEDERS)


def is_three_phase_feeder(name_or_path: str | Path | None) -> bool:
    """Whether a feeder name or path is a three-phase (OpenDSS) feeder.

    Parameters
    ----------
    name_or_path : str or pathlib.Path or None
        ``feeder.name`` or ``feeder.path`` of a scenario.

    Returns
    -------
    bool
        True for a path ending in ``.dss`` or an embedded three-phase feeder name.
    """
    if name_or_path is None:
        return False
    key = str(name_or_path).strip().lower()
    return key.endswith(".dss") or key in three_phase_names()


@dataclass(frozen=True)
class PhaseLayout:
    """What a scenario needs to know about a three-phase feeder's buses.

    Attributes
    ----------
    bus_names : tuple of str
        Every bus, as written in the feeder's file (OpenDSS lower-cases them); a bus number in
        the fleet is a position here.
    bus_phases : dict of int to tuple of int
        Phases present at each bus (1 = a, 2 = b, 3 = c).
    load_buses : tuple of str
        Buses with a load (the default places of sampled vehicles), in file order.
    positions : dict of str to int
        Lower-cased bus name -> position in ``bus_names``.
    """

    bus_names: tuple[str, ...]
    bus_phases: dict[int, tuple[int, ...]]
    load_buses: tuple[str, ...]
    positions: dict[str, int] = field(default_factory=dict, repr=False)

    def bus_number(self, name: Any) -> int | None:
        """Position of a bus name (case-insensitive; an integer is read as a name).

        Parameters
        ----------
        name : str or int
            Bus name as written in the feeder's file.

        Returns
        -------
        int or None
            Its position in :attr:`bus_names`, None if the feeder has no such bus.
        """
        return self.positions.get(str(name).strip().lower())

    def feeder_phases(self, fleet: Any):
        """The :class:`vehicle_models.phases.FeederPhases` of this feeder for a fleet spec.

        Parameters
        ----------
        fleet : cosim.scenario.FleetConfig
            Its ``phase_allocation`` and ``charger_connection``.

        Returns
        -------
        vehicle_models.phases.FeederPhases
        """
        from vehicle_models.phases import FeederPhases

        return FeederPhases(
            bus_phases=self.bus_phases,
            bus_names=self.bus_names,
            allocation=fleet.phase_allocation,
            connection=fleet.charger_connection,
        )


@functools.lru_cache(maxsize=8)
def phase_layout(name_or_path: str) -> PhaseLayout:
    """Read a three-phase feeder once and return its :class:`PhaseLayout`.

    Parameters
    ----------
    name_or_path : str
        Embedded three-phase feeder name or ``.dss`` path.

    Returns
    -------
    PhaseLayout

    Raises
    ------
    FeederError
        The feeder cannot be read (opendssdirect missing, a bad file).
    """
    from grids.feeder3ph import ThreePhaseFeederModel

    model = ThreePhaseFeederModel.from_name(name_or_path)
    names = tuple(str(b) for b in model.buses)
    position = {b: i for i, b in enumerate(names)}
    phases: dict[int, set[int]] = {i: set() for i in range(len(names))}
    for bus, phase in zip(model.node_bus.tolist(), model.node_phase.tolist(), strict=True):
        if 1 <= int(phase) <= 3:
            phases[position[str(bus)]].add(int(phase))
    loads = list(dict.fromkeys(str(b) for b in model.load_bus))
    return PhaseLayout(
        positions={b.lower(): i for i, b in enumerate(names)},
        bus_names=names,
        bus_phases={i: tuple(sorted(p)) for i, p in phases.items()},
        load_buses=tuple(b for b in names if b in set(loads)),
    )


def three_phase_problems(
    feeder: Any, fleet: Any, *, raw_feeder: dict, raw_fleet: dict | None, events: tuple
) -> list[str]:
    """Checks of a scenario that only apply to three-phase feeders, or refuse phases elsewhere.

    Parameters
    ----------
    feeder : cosim.scenario.FeederConfig or None
        The feeder spec (``three_phase`` says which engine).
    fleet : cosim.scenario.FleetConfig or None
        The fleet spec.
    raw_feeder, raw_fleet : dict, keyword-only
        The sections as written (which keys were given).
    events : tuple of cosim.scenario.EventConfig, keyword-only
        The scenario's events.

    Returns
    -------
    list of str
        Every problem, naming the key, the value and what was expected.
    """
    from grids.errors import FeederError, InputDataError, ScenarioError
    from grids.powerflow import PowerFlowMethod
    from vehicle_models.phases import connection_options

    problems: list[str] = []
    raw_fleet = raw_fleet or {}
    three_phase = feeder is not None and feeder.three_phase
    if not three_phase:
        if "regulator_control" in raw_feeder:
            problems.append(
                "feeder.regulator_control: applies to a three-phase feeder (its OpenDSS "
                "RegControls); a balanced feeder has none"
            )
        for key in ("phase_allocation", "charger_connection"):
            if key in raw_fleet:
                problems.append(
                    f"fleet.{key}: applies to a three-phase feeder (feeder.path to a .dss "
                    f"file, or feeder.name one of {', '.join(three_phase_names())})"
                )
        if fleet is not None and fleet.buses and any(isinstance(b, str) for b in fleet.buses):
            problems.append(
                f"fleet.buses: {list(fleet.buses)!r}: bus names apply to a three-phase "
                "feeder; a balanced feeder's buses are integer indices"
            )
        return problems
    if feeder.method is not PowerFlowMethod.AC:
        problems.append(
            f"feeder.method: {feeder.method.value!r} is not available on a three-phase feeder "
            "(only 'ac', the unbalanced power flow)"
        )
    if "ext_grid_vm_pu" in raw_feeder:
        problems.append(
            "feeder.ext_grid_vm_pu: a three-phase feeder takes its source voltage from its "
            "file (Vsource pu)"
        )
    if any(e.kind.value == "line_outage" for e in events):
        problems.append("events: 'line_outage' is not available on a three-phase feeder")
    try:
        layout = phase_layout(str(feeder.name))
    except (FeederError, ScenarioError) as error:
        problems.append(f"feeder: {error}")
        return problems
    if fleet is None:
        return problems
    candidates: list[int] = []
    if fleet.buses is not None:
        unknown = [b for b in fleet.buses if layout.bus_number(b) is None]
        if unknown:
            shown = ", ".join(map(str, unknown[:10])) + (", ..." if len(unknown) > 10 else "")
            problems.append(
                f"fleet.buses: {shown} {'is not a bus' if len(unknown) == 1 else 'are not buses'}"
                f" of the feeder {Path(str(feeder.name)).name} (buses: "
                f"{', '.join(layout.bus_names[:8])}{', ...' if len(layout.bus_names) > 8 else ''})"
            )
        candidates = [n for n in (layout.bus_number(b) for b in fleet.buses) if n is not None]
    elif not fleet.table:
        candidates = [layout.bus_number(b) for b in layout.load_buses]
        if not candidates and (fleet.n_vehicles > 0):
            problems.append("fleet.buses: the feeder has no loads; give the buses to use")
    if fleet.table:
        from vehicle_models.fleet_table import fleet_table_arguments

        try:
            arguments = fleet_table_arguments(fleet.table, bus_names=layout.bus_names)
        except (InputDataError, ScenarioError) as error:
            problems.extend(f"fleet.table: {p}" for p in (error.problems or [str(error)]))
            return problems
        if "phase" in arguments:
            phases = layout.feeder_phases(fleet)
            misfits = phases.problems(arguments["bus"], arguments["phase"])
            problems.extend(f"fleet.table: {p}" for p in misfits)
            return problems
        candidates = sorted(set(arguments["bus"].astype(int).tolist()))
    if fleet.n_vehicles > 0 or fleet.table:
        for number in candidates:
            if not connection_options(layout.bus_phases[number], fleet.charger_connection):
                have = "".join("abc"[p - 1] for p in layout.bus_phases[number]) or "none"
                problems.append(
                    f"fleet.charger_connection: {fleet.charger_connection.value!r} does not "
                    f"fit bus {layout.bus_names[number]} (phase(s) {have})"
                )
    return problems


__all__ = [
    "PhaseLayout",
    "is_three_phase_feeder",
    "phase_layout",
    "three_phase_names",
    "three_phase_problems",
]
