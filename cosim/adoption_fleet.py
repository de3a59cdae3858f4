"""``[fleet] adoption`` in a co-simulation run: the adopted EVs as a fleet table.

A run with ``[fleet] adoption = {share, seed, source = "behaviour", v2g_share}`` gets as its
fleet the EVs of :func:`vehicle_models.adoption.place_evs` at the feeder's customers (one per
in-service load with demand, in load order; a SimBench grid's own EV charging points are not
customers), written as a fleet table (:mod:`vehicle_models.fleet_table`) next to the results
(``fleet_adoption.csv``, ``fleet_adoption_<label>.csv`` per ``[[feeders]]`` entry), so the
run uses the existing fleet-table path and ``[fleet.control]`` applies to every EV.

Each EV (row):

* ``bus``: its customer's bus (pandapower index; the bus name on a three-phase feeder);
* ``p_charge_max_kw``, ``s_max_kva``: its charger rating, 3.7, 11 or 22 kW as drawn by the
  adoption model; ``p_discharge_max_kw``: the rating for a V2G charger, 0 for the others
  (charge-only);
* ``arrival_s``, ``departure_s``, ``e_capacity_kwh``, ``soc_arrival_frac``: its daily
  plug-in session drawn by the behavioural model of ``fleet.preset``
  (:func:`vehicle_models.presets.sample_sessions` with the generator seeded
  ``[seed, 1]`` over all customers, the same sessions as
  :func:`vehicle_models.adoption.session_demand_kw`), one session per EV (arrival within
  the first day of the run); ``soc_target_frac`` the preset's;
* on a three-phase feeder ``phase``: a charger up to 7.4 kW (one phase, at most 32 A) sits on
  its load's phase (a load on several phases: one of them, seeded ``[seed, 2]``); an 11 or
  22 kW charger is three-phase (``abc``). A customer whose bus lacks a phase has a
  single-phase service: its charger is single-phase on the load's phase and rated at most
  7.4 kW (1 x 32 A at 230 V), the rating written in the table.

With ``source = "simbench"`` (a ``simbench:<code>`` feeder whose scenario has EV charging
points, codes ending ``--1-``/``--2-``) the EVs take their charging from SimBench's EV charging
profiles instead of the behavioural model: each EV gets one of the grid's non-zero per-bus EV
profiles (``ev_p_mw`` of :func:`grids.simbench.simbench_profiles`, chosen by the placement's
seeded ``shape_u`` as in the adoption study, :func:`vehicle_models.adoption.shape_demand_kw`),
scaled to its charger (``P * shape / max(shape)`` over the whole year), and that profile over
the run's window (``simulation.start`` + ``duration_s``) becomes plug-in sessions
(:func:`profile_sessions`): every contiguous run of non-zero charging steps is one session,
``arrival_s`` its first step, ``departure_s`` the end of its last step, the energy drawn from
the grid the profile's energy over the run. **One row per session**: an EV that charges on
several days has several rows (vehicle-days), ``vehicle_id`` ``ev<k>_s<j>``. The battery of a
row holds the preset's capacity (larger if the session needs more), arrives at
``soc_target - E eta_charge / E_cap`` so that unmanaged charging (``policy = "immediate"``)
draws exactly the session's energy ``E`` from the grid, within the session (its energy is at
most the rating times its length). A SimBench grid without EV profiles, or with none charging
in the window, is refused naming ``fleet.adoption.source``. The grid's own EV charging points
keep their profiles in the feeder's loads (the adopted EVs come on top).

References
----------
.. [1] IEC 61851-1:2017 (mode 3 AC charging: 1 x 16 A = 3.7 kW, 1 x 32 A = 7.4 kW,
   3 x 16 A = 11 kW, 3 x 32 A = 22 kW at 230/400 V).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from grids.errors import ScenarioError

#: Largest single-phase charger [kW] (1 x 32 A at 230 V, IEC 61851-1).
SINGLE_PHASE_MAX_KW = 7.4

__all__ = [
    "SINGLE_PHASE_MAX_KW",
    "AdoptedCustomers",
    "adoption_customers",
    "adoption_fleet_table",
    "profile_sessions",
    "resolve_adoption",
]


@dataclasses.dataclass(frozen=True)
class AdoptedCustomers:
    """The feeder's customers (one per in-service load with demand, in load order).

    Attributes
    ----------
    bus : numpy.ndarray of int (n_customer,)
        Bus of each customer (pandapower index; position in ``bus_names`` on a three-phase
        feeder).
    phases : tuple of tuple of int or None
        Phases (1, 2, 3 = a, b, c) of each customer's load on a three-phase feeder.
    bus_names : tuple of str or None
        Bus names of a three-phase feeder.
    bus_phases : dict of int to tuple of int or None
        Phases present at each bus of a three-phase feeder.
    """

    bus: np.ndarray
    phases: tuple[tuple[int, ...], ...] | None = None
    bus_names: tuple[str, ...] | None = None
    bus_phases: dict[int, tuple[int, ...]] | None = None


def adoption_customers(feeder: Any) -> AdoptedCustomers:
    """The customers of a scenario's feeder (its loads with demand).

    Parameters
    ----------
    feeder : cosim.scenario.FeederConfig
        The feeder (``three_phase`` selects the OpenDSS engine's loads).

    Returns
    -------
    AdoptedCustomers

    Raises
    ------
    ScenarioError
        The feeder has no load with demand.
    """
    if feeder.three_phase:
        from cosim.phase_layout import phase_layout
        from grids.feeder3ph import ThreePhaseFeederModel

        layout = phase_layout(str(feeder.name))
        model = ThreePhaseFeederModel.from_name(str(feeder.name))
        keep = np.flatnonzero(np.asarray(model.load_p_kw, dtype=float) > 0)
        node_phase = np.asarray(model.node_phase)
        bus = np.array([layout.bus_number(model.load_bus[i]) for i in keep], dtype=np.int64)
        phases = tuple(
            tuple(sorted({int(node_phase[n]) for n in model.load_nodes[i] if n >= 0})) for i in keep
        )
        customers = AdoptedCustomers(
            bus=bus, phases=phases, bus_names=layout.bus_names, bus_phases=layout.bus_phases
        )
    else:
        from grids.feeders import load_feeder
        from grids.simbench import ev_load_mask

        net = load_feeder(str(feeder.name))
        load = net.load
        p_kw = load.p_mw.to_numpy(float) * load.scaling.to_numpy(float) * 1000.0
        keep = load.in_service.to_numpy(bool) & (p_kw > 0) & ~ev_load_mask(net)
        customers = AdoptedCustomers(bus=load.bus.to_numpy(np.int64)[keep])
    if not customers.bus.size:
        raise ScenarioError(
            f"fleet.adoption: feeder {feeder.name!r} has no customer (in-service load with "
            "demand) to put EVs at"
        )
    return customers


def profile_sessions(demand_kw, *, step_s: float) -> dict[str, np.ndarray]:
    """Plug-in sessions of charging profiles: the contiguous runs of non-zero steps.

    A session starts at the first step of a run of steps with ``p > 0`` and ends at the end of
    its last step; its energy is the profile's energy over the run,
    ``E = sum_k p_k dt / 3600``.

    Parameters
    ----------
    demand_kw : array_like (n_steps, n_ev)
        Charging power of each EV per step, consumption positive [kW] (step averages).
    step_s : float, keyword-only
        Step length [s].

    Returns
    -------
    dict of numpy.ndarray (n_session,)
        ``ev`` (column of the EV), ``arrival_s``, ``departure_s`` [s from the first step],
        ``e_kwh`` [kWh]; ordered by EV, then time.
    """
    demand = np.asarray(demand_kw, dtype=float)
    on = demand > 0
    pad = np.zeros((1, demand.shape[1]), dtype=np.int8)
    edge = np.diff(np.vstack([pad, on.astype(np.int8), pad]), axis=0).T  # (n_ev, n_steps + 1)
    ev, first = np.nonzero(edge == 1)
    _, stop = np.nonzero(edge == -1)  # same EVs in the same order (each run starts and stops)
    e_kwh = np.array(
        [demand[a:b, k].sum() for k, a, b in zip(ev, first, stop, strict=True)], dtype=float
    )
    return {
        "ev": ev,
        "arrival_s": first * float(step_s),
        "departure_s": stop * float(step_s),
        "e_kwh": e_kwh * float(step_s) / 3600.0,
    }


def _simbench_demand_kw(feeder: Any, simulation: Any, placed: Any, rating_kw: np.ndarray):
    """Each adopted EV's SimBench charging profile over the run's window [kW] and its step."""
    from grids.feeder_model import FeederModel
    from grids.simbench import is_simbench_name, simbench_profiles
    from vehicle_models.adoption import shape_demand_kw

    refusal = "fleet.adoption.source: 'simbench' takes the EV charging profiles of a SimBench grid"
    if not is_simbench_name(str(feeder.name or "")):
        raise ScenarioError(
            f'{refusal}, but feeder.name is {feeder.name!r}; use feeder.name = "simbench:<code>" '
            'or source = "behaviour"'
        )
    model = FeederModel.from_name(str(feeder.name))
    profiles = simbench_profiles(model.net, model)
    ev_year = profiles.ev_p_mw
    if ev_year is None or not (np.abs(ev_year).max(axis=0) > 0).any():
        raise ScenarioError(
            f"{refusal}, and {feeder.name} has none (EV charging points are in the future "
            'scenarios, codes ending --1- or --2-); use source = "behaviour"'
        )
    # the window's steps scaled as the study scales the year (P * shape / max over the year):
    # the year's peak as one extra row sets the normalisation, then is dropped
    window = profiles.window(simulation.start, float(simulation.duration_s))
    rows = profiles.time.get_indexer(window.time)
    shapes = np.vstack([ev_year[rows], np.abs(ev_year).max(axis=0)])
    demand_kw = shape_demand_kw(shapes, shape_u=placed.shape_u, charger_kw=rating_kw)[:-1]
    return demand_kw, float(profiles.step_s)


def adoption_fleet_table(feeder: Any, fleet: Any, simulation: Any = None):
    """The fleet table of a ``[fleet] adoption`` on its feeder (see the module notes).

    Parameters
    ----------
    feeder : cosim.scenario.FeederConfig
        The feeder whose loads are the customers.
    fleet : cosim.scenario.FleetConfig
        The fleet, with ``adoption`` set (``preset`` gives the sessions, or with the
        ``simbench`` source the battery parameters).
    simulation : cosim.scenario.SimulationConfig or None
        The run's window (``start``, ``duration_s``); needed by the ``simbench`` source.

    Returns
    -------
    pandas.DataFrame
        One row per EV (``behaviour``) or per plug-in session (``simbench``), columns of
        :mod:`vehicle_models.fleet_table`.

    Raises
    ------
    ScenarioError
        ``source = "simbench"`` on a feeder without SimBench EV profiles, or a feeder without
        customers.
    """
    import pandas as pd

    from vehicle_models.adoption import AdoptionSource, place_evs
    from vehicle_models.presets import preset_parameters, sample_sessions

    adoption = fleet.adoption
    source = AdoptionSource(getattr(adoption.source, "value", adoption.source))
    customers = adoption_customers(feeder)
    placed = place_evs(
        customers.bus, share=adoption.share, seed=adoption.seed, v2g_share=adoption.v2g_share
    )
    params = preset_parameters(fleet.preset)
    pick = placed.customer
    rating_kw = placed.charger_kw.astype(float)
    columns: dict[str, Any] = {
        "vehicle_id": np.array([f"ev{int(c)}" for c in pick], dtype=object),
        "bus": placed.bus,
    }
    if customers.phases is not None:
        phase_rng = np.random.default_rng([placed.seed, 2])
        draw_u = phase_rng.random(customers.bus.size)[pick]  # per customer: share-independent
        letters = []
        for k, c in enumerate(pick):
            load_phases = customers.phases[int(c)]
            bus_phases = customers.bus_phases[int(customers.bus[c])]
            if rating_kw[k] > SINGLE_PHASE_MAX_KW and len(bus_phases) == 3:
                letters.append("abc")
                continue
            # single phase: the load's (one of them, seeded), on a single-phase service capped
            # at 1 x 32 A
            options = load_phases or bus_phases
            phase = options[min(int(draw_u[k] * len(options)), len(options) - 1)]
            letters.append("abc"[phase - 1])
            rating_kw[k] = min(rating_kw[k], SINGLE_PHASE_MAX_KW)
        columns["bus"] = np.array([customers.bus_names[int(b)] for b in placed.bus], dtype=object)
        columns["phase"] = np.array(letters, dtype=object)
    if source is AdoptionSource.BEHAVIOUR:
        # the same sessions as vehicle_models.adoption.session_demand_kw (all customers drawn)
        sessions = sample_sessions(
            customers.bus.size, params, np.random.default_rng([placed.seed, 1])
        )
        row = np.arange(pick.size)
        session = {
            "arrival_s": sessions["arrival_s"][pick],
            "departure_s": sessions["arrival_s"][pick] + sessions["dwell_s"][pick],
            "e_capacity_kwh": sessions["e_capacity_kwh"][pick],
            "soc_arrival_frac": sessions["soc_arrival_frac"][pick],
        }
    else:
        if simulation is None:
            raise ScenarioError(
                "fleet.adoption.source: 'simbench' needs the run's window (simulation.start "
                "and duration_s)"
            )
        demand_kw, step_s = _simbench_demand_kw(feeder, simulation, placed, rating_kw)
        found = profile_sessions(demand_kw, step_s=step_s)
        if not found["ev"].size:
            raise ScenarioError(
                f"fleet.adoption.source: 'simbench': the {pick.size} adopted EVs' SimBench "
                f"profiles do not charge between simulation.start ({simulation.start}) and "
                f"{simulation.duration_s:g} s later; choose another window or seed"
            )
        row = found["ev"]
        number = np.zeros(row.size, dtype=np.int64)
        for k in range(pick.size):
            here = row == k
            number[here] = np.arange(int(here.sum()))
        columns["vehicle_id"] = np.array(
            [f"{columns['vehicle_id'][k]}_s{j}" for k, j in zip(row, number, strict=True)],
            dtype=object,
        )
        # battery: a capacity of the preset per customer (seeded, share-independent), larger
        # when a session needs more than soc_min..soc_target of it
        weights = np.asarray(params.capacity_weights, dtype=float)
        capacity_rng = np.random.default_rng([placed.seed, 3])
        capacity_kwh = capacity_rng.choice(
            np.asarray(params.capacity_choices_kwh, dtype=float),
            size=customers.bus.size,
            p=weights / weights.sum(),
        )[pick][row]
        stored_kwh = found["e_kwh"] * params.eta_charge
        usable_frac = params.soc_target_frac - params.soc_min_frac
        capacity_kwh = np.maximum(capacity_kwh, stored_kwh / usable_frac)
        session = {
            "arrival_s": found["arrival_s"],
            "departure_s": found["departure_s"],
            "e_capacity_kwh": capacity_kwh,
            "soc_arrival_frac": params.soc_target_frac - stored_kwh / capacity_kwh,
        }
        for key in ("bus", "phase"):
            if key in columns:
                columns[key] = np.asarray(columns[key])[row]
    n_row = row.size
    columns.update(
        **session,
        soc_target_frac=np.full(n_row, params.soc_target_frac),
        p_charge_max_kw=rating_kw[row],
        p_discharge_max_kw=np.where(placed.v2g, rating_kw, 0.0)[row],
        s_max_kva=rating_kw[row],
        eta_charge=np.full(n_row, params.eta_charge),
        eta_discharge=np.full(n_row, params.eta_discharge),
        soc_min_frac=np.full(n_row, params.soc_min_frac),
        soc_max_frac=np.full(n_row, params.soc_max_frac),
        soc_reserve_frac=np.full(n_row, params.soc_reserve_frac),
    )
    return pd.DataFrame(columns)


def resolve_adoption(scenario: Any, out_dir: str | Path) -> Any:
    """The scenario with every ``[fleet] adoption`` turned into a fleet table in ``out_dir``.

    Parameters
    ----------
    scenario : cosim.scenario.Scenario
        A validated scenario.
    out_dir : str or pathlib.Path
        Directory of the run's results (created); the tables are written there.

    Returns
    -------
    cosim.scenario.Scenario
        The same scenario when no fleet has an adoption (or its table is already written);
        otherwise a copy whose fleets have ``table`` set (``adoption`` kept).

    Raises
    ------
    ScenarioError
        An adoption that cannot be run (see :func:`adoption_fleet_table`), or no EV at all.
    """
    entries = scenario.feeders
    pending = [e for e in entries if e.fleet is not None and e.fleet.adoption and not e.fleet.table]
    if not pending:
        return scenario
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    many = len(entries) > 1
    resolved = {}
    new_entries = []
    for entry in entries:
        if entry in pending:
            frame = adoption_fleet_table(entry.feeder, entry.fleet, scenario.simulation)
            where = f"feeders[{entry.label}].fleet.adoption" if many else "fleet.adoption"
            if frame.empty:
                raise ScenarioError(
                    f"{where}: share {entry.fleet.adoption.share:g} puts no EV at the "
                    "feeder's customers (round(share n_customer) = 0); raise the share"
                )
            path = out / (f"fleet_adoption_{entry.label}.csv" if many else "fleet_adoption.csv")
            frame.to_csv(path, index=False)
            fleet = dataclasses.replace(entry.fleet, table=str(path))
            resolved[id(entry.fleet)] = fleet
            entry = dataclasses.replace(entry, fleet=fleet)
        new_entries.append(entry)
    # ``fleet`` is the first feeder's (the one of a one-feeder scenario)
    fleet = resolved.get(id(scenario.fleet), scenario.fleet)
    return dataclasses.replace(scenario, feeders=tuple(new_entries), fleet=fleet)
