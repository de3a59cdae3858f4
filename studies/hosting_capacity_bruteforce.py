"""Brute-force reference hosting capacity: one ``pandapower.runpp`` per trial, plain bisection.

This is the independent reference of the two-tier method (tests and benchmark): a static
generator of the trial size is added at the bus of a copy of the net, pandapower's own
Newton-Raphson solves it, and the same planner limits (:func:`studies.hosting_capacity_engine.
check`) are applied to pandapower's result tables. Nothing of the fast AC path is used.
"""

from __future__ import annotations

import copy

import numpy as np

from grids.feeder_model import line_rated
from studies.hosting_capacity_engine import (
    Binding,
    Flows,
    HostingCapacityCriteria,
    HotSpot,
    Limits,
    base_state,
    check,
)

# pandapower (~2 s to import) is imported where its reference power flows run.


def _runpp_flows(net, bus_order, line_order, trafo_order) -> Flows:
    import pandapower as pp

    try:
        pp.runpp(net, calculate_voltage_angles=True)  # pandapower defaults (tolerance 1e-8 MVA)
    except pp.LoadflowNotConverged:
        return Flows(
            np.full((1, len(bus_order)), np.nan),
            np.full((1, len(line_order)), np.nan),
            np.full((1, len(trafo_order)), np.nan),
            np.zeros(1, dtype=bool),
        )
    vm = net.res_bus.vm_pu.reindex(bus_order).to_numpy(float)
    line = net.res_line.loading_percent.reindex(line_order).to_numpy(float)
    trafo = (
        net.res_trafo.loading_percent.reindex(trafo_order).to_numpy(float)
        if len(trafo_order)
        else np.zeros(0)
    )
    return Flows(vm[None, :], line[None, :], trafo[None, :], np.ones(1, dtype=bool))


def bruteforce_hosting_capacity(
    net,
    bus: int,
    *,
    export: bool = True,
    criteria: HostingCapacityCriteria | None = None,
    q_per_p: float = 0.0,
    tolerance_mw: float = 0.001,
    cap_mw: float = 20.0,
) -> tuple[float, Binding, int]:
    """Hosting capacity of one bus by plain bisection with ``runpp`` on ``[0, cap_mw]``.

    Parameters
    ----------
    net : pandapowerNet
        The prepared feeder (copied, not changed).
    bus : int
        pandapower index of the bus.
    export : bool, keyword-only
        Injection (``True``) or consumption (``False``).
    criteria : HostingCapacityCriteria or None, keyword-only
        Planner limits (default :class:`HostingCapacityCriteria`); lines without a rating
        (:func:`grids.feeder_model.line_rated`) are not checked.
    q_per_p : float, keyword-only
        Reactive power per unit of active power of the trial unit [-].
    tolerance_mw : float, keyword-only
        Bisection tolerance [MW].
    cap_mw : float, keyword-only
        Largest size searched [MW].

    Returns
    -------
    hosting_capacity_mw : float
        The largest size verified feasible [MW], within ``tolerance_mw`` of the smallest
        size verified infeasible.
    binding : Binding
        The limit violated at the smallest infeasible size (``NONE`` up to the cap).
    n_runpp : int
        Number of ``runpp`` calls.
    """
    import pandapower as pp

    criteria = criteria or HostingCapacityCriteria()
    work = copy.deepcopy(net)
    bus_order = work.bus.index[work.bus.in_service.astype(bool)].to_numpy()
    # lines without a rating are not checked (as in the study: their loading is no limit)
    rated = work.line.in_service.to_numpy(bool) & line_rated(work)
    line_order = work.line.index[rated].to_numpy()
    trafo_order = work.trafo.index[work.trafo.in_service.astype(bool)].to_numpy()
    hot = HotSpot(criteria) if criteria.max_hot_spot_c is not None and len(trafo_order) else None
    limits = Limits(criteria, hot)
    base = base_state(_runpp_flows(work, bus_order, line_order, trafo_order), limits)
    sgen = pp.create_sgen(work, bus, p_mw=0.0, q_mvar=0.0, name="hosting capacity trial")
    n_runpp = 1

    def feasible(size_mw: float):
        nonlocal n_runpp
        p = size_mw if export else -size_mw
        work.sgen.loc[sgen, "p_mw"] = p
        work.sgen.loc[sgen, "q_mvar"] = q_per_p * abs(p)
        n_runpp += 1
        result = check(_runpp_flows(work, bus_order, line_order, trafo_order), base, limits)
        binding = Binding.BASE_CASE if result.base_case[0] else result.binding[0]
        return bool(result.feasible[0]), binding

    ok, binding = feasible(cap_mw)
    if ok:
        return cap_mw, Binding.NONE, n_runpp
    lo, hi = 0.0, cap_mw
    while hi - lo > tolerance_mw:
        mid = 0.5 * (lo + hi)
        ok, b = feasible(mid)
        if ok:
            lo = mid
        else:
            hi, binding = mid, b
    return lo, binding, n_runpp
