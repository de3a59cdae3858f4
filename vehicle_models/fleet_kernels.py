"""Fused numba kernels of the fleet step (simple battery model, no equivalent circuit).

One pass over the vehicles before the inverter step (:func:`kernel_before`: availability,
arrival and departure events, feasible power range, charging-policy request, per-bus sums
of the bounds), one for buses with a set-point (:func:`kernel_setpoint`) and one after it
(:func:`kernel_after`: battery update, losses, per-bus sums). They implement exactly the
equations of the numpy path of :class:`vehicle_models.fleet.Fleet`
(:meth:`~vehicle_models.battery.BatteryBank.power_bounds_kw`,
:meth:`~vehicle_models.battery.BatteryBank.step` and the charging policies); a test checks the
two paths agree. Arrays are per vehicle, sorted by bus; ``bus_start`` holds the first vehicle
of each bus and the total count (length ``n_bus + 1``). Units: kW, kWh, s, pu of each
vehicle's apparent-power rating.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit

POLICY_LATEST = 0
"""Code of :attr:`~vehicle_models.fleet.ChargingPolicy.LATEST` in the kernels."""
POLICY_IMMEDIATE = 1
"""Code of :attr:`~vehicle_models.fleet.ChargingPolicy.IMMEDIATE` in the kernels."""
POLICY_UNIFORM = 2
"""Code of :attr:`~vehicle_models.fleet.ChargingPolicy.UNIFORM` in the kernels."""

_NJIT = {"cache": True, "nogil": True, "error_model": "numpy"}  # no zero-division checks


class StepInfo(NamedTuple):
    """Scalars of one fleet step.

    Parameters
    ----------
    t_s, dt_s : float
        Start and length of the step [s].
    period_s : float
        Session period [s] (0: one session per vehicle).
    started : bool
        A step was taken before (arrival and departure events apply).
    policy : int
        Charging policy code (``POLICY_*``).
    track_before, track_after : bool
        Add the battery throughput of arrivals / of the step to the degradation tracker.
    """

    t_s: float
    dt_s: float
    period_s: float
    started: bool
    policy: int
    track_before: bool
    track_after: bool


class VehicleParams(NamedTuple):
    """Per-vehicle constants, bus-sorted, shape (n,) (``bus_start``: (n_bus + 1,)).

    Parameters
    ----------
    bus_start : numpy.ndarray of int
        First vehicle of each bus, then the vehicle count.
    arrival_s, dwell_s : numpy.ndarray
        Plug-in time and duration [s].
    e_trip_kwh, e_target_kwh : numpy.ndarray
        Trip energy and departure target [kWh].
    e_floor_kwh, e_ceiling_kwh, e_capacity_kwh : numpy.ndarray
        Energy bounds and capacity [kWh].
    p_ch_kw, p_dis_kw : numpy.ndarray
        Charger ratings [kW].
    eta_c, eta_d, inv_eta_c, inv_eta_d : numpy.ndarray
        Efficiencies and their reciprocals [-].
    inv_s : numpy.ndarray
        ``1 / s_kva`` [1/kVA].
    inv_cap : numpy.ndarray
        ``1 / e_capacity_kwh`` [1/kWh].
    s_kva : numpy.ndarray
        Apparent-power rating [kVA].
    """

    bus_start: np.ndarray
    arrival_s: np.ndarray
    dwell_s: np.ndarray
    e_trip_kwh: np.ndarray
    e_target_kwh: np.ndarray
    e_floor_kwh: np.ndarray
    e_ceiling_kwh: np.ndarray
    e_capacity_kwh: np.ndarray
    p_ch_kw: np.ndarray
    p_dis_kw: np.ndarray
    eta_c: np.ndarray
    eta_d: np.ndarray
    inv_eta_c: np.ndarray
    inv_eta_d: np.ndarray
    inv_s: np.ndarray
    inv_cap: np.ndarray
    s_kva: np.ndarray


class VehicleState(NamedTuple):
    """Per-vehicle state the kernels update in place, shape (n,).

    Parameters
    ----------
    e_kwh : numpy.ndarray
        Stored energy [kWh].
    plugged : numpy.ndarray of bool
        Plugged in.
    e_shortfall_kwh, e_stranded_kwh : numpy.ndarray
        Cumulative departure shortfall and trip energy the battery could not supply [kWh].
    pending_kwh : numpy.ndarray
        Battery throughput not yet applied to the degradation model [kWh].
    p_kw, q_kvar : numpy.ndarray
        Grid-side output of the last step [kW], [kvar].
    limited : numpy.ndarray of bool
        Output limited by the SoC bounds in the last step.
    """

    e_kwh: np.ndarray
    plugged: np.ndarray
    e_shortfall_kwh: np.ndarray
    e_stranded_kwh: np.ndarray
    pending_kwh: np.ndarray
    p_kw: np.ndarray
    q_kvar: np.ndarray
    limited: np.ndarray


class StepScratch(NamedTuple):
    """Work arrays the kernels write: per vehicle (n,) and per bus (n_bus,).

    Parameters
    ----------
    vm_pu : numpy.ndarray
        Voltage per vehicle [pu].
    p_min_pu, p_max_pu, p_req_pu : numpy.ndarray
        Feasible range and request per vehicle [pu of ``s_kva``].
    lo_bus_kw, hi_bus_kw : numpy.ndarray
        Per-bus sums of the feasible range [kW].
    p_bus_kw, q_bus_kvar : numpy.ndarray
        Per-bus output [kW], [kvar].
    n_plug_bus, n_trip_bus, n_lim_bus : numpy.ndarray of int
        Per-bus counts of plugged, tripped and SoC-limited vehicles.
    soc_bus : numpy.ndarray
        Per-bus sum of the SoC [-].
    """

    vm_pu: np.ndarray
    p_min_pu: np.ndarray
    p_max_pu: np.ndarray
    p_req_pu: np.ndarray
    lo_bus_kw: np.ndarray
    hi_bus_kw: np.ndarray
    p_bus_kw: np.ndarray
    q_bus_kvar: np.ndarray
    n_plug_bus: np.ndarray
    n_trip_bus: np.ndarray
    n_lim_bus: np.ndarray
    soc_bus: np.ndarray


@njit(**_NJIT)
def ac_from_chem(pc, eta_d, inv_eta_c):  # pragma: no cover - compiled
    """AC power of a chemical (battery-side) power.

    Parameters
    ----------
    pc : float
        Battery-side power [kW] (discharge > 0).
    eta_d : float
        Discharge efficiency [-].
    inv_eta_c : float
        ``1 / eta_charge`` [-].

    Returns
    -------
    float
        Grid-side power [kW].
    """
    return pc * eta_d if pc >= 0.0 else pc * inv_eta_c


@njit(**_NJIT)
def kernel_before(step, veh, st, scr, vm_bus):  # pragma: no cover - compiled
    """Availability, events, feasible range and policy request of every vehicle (in place).

    At ``t_s`` (periodic sessions when ``period_s > 0``) marks ``plugged``, applies arrival
    (trip energy taken, ``e_stranded_kwh``) and departure events (``e_shortfall_kwh``),
    copies the bus voltage ``vm_bus`` to ``vm_out`` per vehicle, writes the feasible range
    ``p_min_pu``/``p_max_pu`` and the request ``p_req_pu`` of the charging ``policy`` (a
    ``POLICY_*`` code) and the per-bus sums of the bounds ``lo_bus_kw``/``hi_bus_kw`` [kW].
    Returns the energy driven and the departure shortfall of this step ``(driven, short)``
    [kWh].

    Parameters
    ----------
    step : StepInfo
        Scalars of the step.
    veh : VehicleParams
        Per-vehicle constants.
    st : VehicleState
        Per-vehicle state (updated in place).
    scr : StepScratch
        Work arrays (written).
    vm_bus : numpy.ndarray (n_bus,)
        Voltage per bus [pu].
    """
    t_s = step.t_s
    dt_s = step.dt_s
    period_s = step.period_s
    started = step.started
    policy = step.policy
    bus_start = veh.bus_start
    arrival_s = veh.arrival_s
    dwell_s = veh.dwell_s
    e_kwh = st.e_kwh
    e_trip_kwh = veh.e_trip_kwh
    e_target_kwh = veh.e_target_kwh
    e_floor_kwh = veh.e_floor_kwh
    e_ceiling_kwh = veh.e_ceiling_kwh
    e_capacity_kwh = veh.e_capacity_kwh
    p_ch_kw = veh.p_ch_kw
    p_dis_kw = veh.p_dis_kw
    eta_c = veh.eta_c
    eta_d = veh.eta_d
    inv_eta_c = veh.inv_eta_c
    inv_s = veh.inv_s
    plugged = st.plugged
    e_shortfall_kwh = st.e_shortfall_kwh
    e_stranded_kwh = st.e_stranded_kwh
    vm_out = scr.vm_pu
    p_min_pu = scr.p_min_pu
    p_max_pu = scr.p_max_pu
    p_req_pu = scr.p_req_pu
    lo_bus_kw = scr.lo_bus_kw
    hi_bus_kw = scr.hi_bus_kw
    track = step.track_before
    pending_kwh = st.pending_kwh
    inv_dt_h = 3600.0 / dt_s
    inv_period = 1.0 / period_s if period_s > 0.0 else 0.0
    driven = 0.0
    short = 0.0
    for b in range(bus_start.size - 1):
        lo_sum = 0.0
        hi_sum = 0.0
        vm = vm_bus[b]
        for i in range(bus_start[b], bus_start[b + 1]):
            vm_out[i] = vm
            if period_s > 0.0:
                x = t_s - arrival_s[i]
                phase = x - period_s * math.floor(x * inv_period)  # numba's % is ~30x slower
                now = phase < dwell_s[i]
            else:
                phase = t_s - arrival_s[i]
                now = phase >= 0.0 and phase < dwell_s[i]
            e = e_kwh[i]
            was = plugged[i]
            if period_s > 0.0:
                if not started:
                    if not now:
                        e = min(e + e_trip_kwh[i], e_capacity_kwh[i])
                elif now and not was:
                    d = min(e, e_trip_kwh[i])
                    driven += d
                    e_stranded_kwh[i] += e_trip_kwh[i] - d
                    e -= d
                    e_kwh[i] = e
                    if track:
                        pending_kwh[i] += d  # driving cycles the battery too
            if started and was and not now:
                gap = e_target_kwh[i] - e
                if gap > 0.0:
                    e_shortfall_kwh[i] += gap
                    short += gap
            if not started:
                e_kwh[i] = e
            plugged[i] = now
            if not now:
                p_min_pu[i] = 0.0
                p_max_pu[i] = 0.0
                p_req_pu[i] = 0.0
                continue
            remaining = dwell_s[i] - phase
            still = max(remaining - dt_s, 0.0)
            e_end_min = e_target_kwh[i] - eta_c[i] * p_ch_kw[i] * still * (1.0 / 3600.0)
            e_hi = max(e_ceiling_kwh[i], e)
            e_lo = min(max(min(e_floor_kwh[i], e), e_end_min), e_hi)
            ic = inv_eta_c[i]
            p_max = min(ac_from_chem((e - e_lo) * inv_dt_h, eta_d[i], ic), p_dis_kw[i])
            p_min = max(-(e_hi - e) * inv_dt_h * ic, -p_ch_kw[i])
            p_min = min(p_min, 0.0)
            p_max = max(p_max, -p_ch_kw[i])
            p_max = max(p_max, p_min)
            if policy == POLICY_LATEST:
                p = min(p_max, 0.0)
            elif policy == POLICY_IMMEDIATE:
                p = -max(e_target_kwh[i] - e, 0.0) * ic * inv_dt_h
            else:
                p = -max(e_target_kwh[i] - e, 0.0) * ic * 3600.0 / max(remaining, dt_s)
            p = min(max(p, p_min), p_max)
            lo_sum += p_min
            hi_sum += p_max
            si = inv_s[i]
            p_min_pu[i] = p_min * si
            p_max_pu[i] = p_max * si
            p_req_pu[i] = p * si
        lo_bus_kw[b] = lo_sum
        hi_bus_kw[b] = hi_sum
    return driven, short


@njit(**_NJIT)
def kernel_setpoint(has_sp, lam, bus_start, p_min_pu, p_max_pu, p_req_pu):  # pragma: no cover
    """Requests of vehicles on buses with a set-point: ``p_min + lam_bus (p_max - p_min)``.

    Parameters
    ----------
    has_sp : numpy.ndarray of bool (n_bus,)
        Bus has a set-point.
    lam : numpy.ndarray (n_bus,)
        Share of each vehicle's feasible range [-].
    bus_start : numpy.ndarray of int (n_bus + 1,)
        First vehicle of each bus, then the vehicle count.
    p_min_pu, p_max_pu : numpy.ndarray (n,)
        Feasible range [pu].
    p_req_pu : numpy.ndarray (n,)
        Requests [pu], overwritten on buses with a set-point.
    """
    for b in range(bus_start.size - 1):
        if has_sp[b]:
            for i in range(bus_start[b], bus_start[b + 1]):
                p_req_pu[i] = p_min_pu[i] + lam[b] * (p_max_pu[i] - p_min_pu[i])


@njit(**_NJIT)
def kernel_after(step, veh, st, scr, p_pu, q_pu, tripped):  # pragma: no cover - compiled
    """Apply the inverter output to the batteries and sum per bus (in place).

    ``p_pu``/``q_pu`` are the inverter outputs [pu of ``s_kva``]; writes ``e_kwh``, ``p_kw``,
    ``q_kvar``, ``limited`` and the per-bus sums ``p_bus`` [kW], ``q_bus`` [kvar],
    ``n_plug_bus``, ``n_trip_bus``, ``soc_bus`` (sum of SoC) and ``n_lim_bus``; adds the
    battery throughput to ``pending_kwh`` when ``track``. Returns the grid-side energy drawn,
    delivered and lost over the step ``(e_in, e_out, e_loss)`` [kWh].

    Parameters
    ----------
    step : StepInfo
        Scalars of the step.
    veh : VehicleParams
        Per-vehicle constants.
    st : VehicleState
        Per-vehicle state (updated in place).
    scr : StepScratch
        Work arrays (written).
    p_pu, q_pu : numpy.ndarray (n,)
        Inverter output [pu of ``s_kva``].
    tripped : numpy.ndarray of bool (n,)
        Disconnected by protection.
    """
    dt_s = step.dt_s
    bus_start = veh.bus_start
    plugged = st.plugged
    s_kva = veh.s_kva
    e_kwh = st.e_kwh
    e_floor_kwh = veh.e_floor_kwh
    e_ceiling_kwh = veh.e_ceiling_kwh
    inv_cap = veh.inv_cap
    p_ch_kw = veh.p_ch_kw
    p_dis_kw = veh.p_dis_kw
    eta_c = veh.eta_c
    eta_d = veh.eta_d
    inv_eta_c = veh.inv_eta_c
    inv_eta_d = veh.inv_eta_d
    p_kw = st.p_kw
    q_kvar = st.q_kvar
    p_min_pu = scr.p_min_pu
    p_max_pu = scr.p_max_pu
    limited = st.limited
    p_bus = scr.p_bus_kw
    q_bus = scr.q_bus_kvar
    n_plug_bus = scr.n_plug_bus
    n_trip_bus = scr.n_trip_bus
    soc_bus = scr.soc_bus
    n_lim_bus = scr.n_lim_bus
    track = step.track_after
    pending_kwh = st.pending_kwh
    dt_h = dt_s * (1.0 / 3600.0)
    inv_dt_h = 3600.0 / dt_s
    e_in = 0.0
    e_out = 0.0
    e_loss = 0.0
    for b in range(bus_start.size - 1):
        p_sum = 0.0
        q_sum = 0.0
        soc_sum = 0.0
        n_plug = 0
        n_trip = 0
        n_lim = 0
        for i in range(bus_start[b], bus_start[b + 1]):
            e = e_kwh[i]
            s = s_kva[i]
            req = p_pu[i] * s
            lo = min(e_floor_kwh[i], e)
            hi = max(e_ceiling_kwh[i], e)
            x = p_pu[i]
            if plugged[i] and x >= p_min_pu[i] and x <= max(p_max_pu[i], 0.0):
                # inside the schedule's range (a subset of the SoC-feasible range that
                # contains 0): feasible, no need to recompute the SoC bounds
                n_plug += 1
                p_min = req
                p_max = req
            elif plugged[i]:
                n_plug += 1
                p_max = min((e - lo) * inv_dt_h * eta_d[i], p_dis_kw[i])
                p_min = max(-(hi - e) * inv_dt_h * inv_eta_c[i], -p_ch_kw[i])
                p_min = min(p_min, 0.0)
                p_max = max(p_max, p_min)
            else:
                p_min = 0.0
                p_max = 0.0
            p = min(max(req, p_min), p_max)
            lim = abs(req - p) > 1e-9 * max(s, 1.0)
            limited[i] = lim
            if lim:
                n_lim += 1
            # branch-free split (the sign of p varies between vehicles)
            pos = max(p, 0.0)
            neg = min(p, 0.0)
            p_dc = pos * inv_eta_d[i] + neg * eta_c[i]
            e_out += pos * dt_h
            e_in -= neg * dt_h
            e_loss += (p_dc - p) * dt_h
            e_new = min(max(e - p_dc * dt_h, lo), hi)
            e_kwh[i] = e_new
            p_kw[i] = p
            q = q_pu[i] * s
            q_kvar[i] = q
            p_sum += p
            q_sum += q
            if tripped[i]:
                n_trip += 1
            ic = inv_cap[i]
            soc = e_new * ic
            soc_sum += soc
            if track:
                pending_kwh[i] += abs(e - e_new)
        p_bus[b] = p_sum
        q_bus[b] = q_sum
        soc_bus[b] = soc_sum
        n_plug_bus[b] = n_plug
        n_trip_bus[b] = n_trip
        n_lim_bus[b] = n_lim
    return e_in, e_out, e_loss


# Entry points called from Python. numba types a NamedTuple argument in Python on every call
# (about 0.1 us per field; ~10 us per fleet step with these structures), an exact tuple in C.
# So Python passes ``tuple(structure)`` and the named structures are rebuilt here, in
# compiled code, where they cost nothing.


@njit(**_NJIT)
def kernel_before_fields(step, veh, st, scr, vm_bus):  # pragma: no cover - compiled
    """:func:`kernel_before` with the fields of the structures as plain tuples.

    Parameters
    ----------
    step, veh, st, scr : tuple
        The fields, in order, of a :class:`StepInfo`, :class:`VehicleParams`,
        :class:`VehicleState` and :class:`StepScratch`.
    vm_bus : numpy.ndarray (n_bus,)
        Voltage per bus [pu].

    Returns
    -------
    tuple of float
        ``(driven, short)`` [kWh], as :func:`kernel_before`.
    """
    return kernel_before(
        StepInfo(*step), VehicleParams(*veh), VehicleState(*st), StepScratch(*scr), vm_bus
    )


@njit(**_NJIT)
def kernel_after_fields(step, veh, st, scr, p_pu, q_pu, tripped):  # pragma: no cover
    """:func:`kernel_after` with the fields of the structures as plain tuples.

    Parameters
    ----------
    step, veh, st, scr : tuple
        The fields, in order, of a :class:`StepInfo`, :class:`VehicleParams`,
        :class:`VehicleState` and :class:`StepScratch`.
    p_pu, q_pu : numpy.ndarray (n,)
        Inverter output [pu of ``s_kva``].
    tripped : numpy.ndarray of bool (n,)
        Tripped units.

    Returns
    -------
    tuple of float
        ``(e_in, e_out, e_loss)`` [kWh], as :func:`kernel_after`.
    """
    return kernel_after(
        StepInfo(*step),
        VehicleParams(*veh),
        VehicleState(*st),
        StepScratch(*scr),
        p_pu,
        q_pu,
        tripped,
    )


__all__ = [
    "POLICY_IMMEDIATE",
    "POLICY_LATEST",
    "POLICY_UNIFORM",
    "StepInfo",
    "StepScratch",
    "VehicleParams",
    "VehicleState",
    "ac_from_chem",
    "kernel_after",
    "kernel_after_fields",
    "kernel_before",
    "kernel_before_fields",
    "kernel_setpoint",
]
