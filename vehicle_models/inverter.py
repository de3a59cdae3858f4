"""``InverterBank``: N V2G inverters with IEEE 1547-2018 functions, vectorized.

One step (``dt_s``) for every unit, in this order:

1. frequency measurement: first-order low-pass (PLL) of the grid frequency
   (grid-following units, time constant ``droop.f_meas_tau_s``);
2. trip / momentary cessation / enter service / stagger ramp
   (:class:`~vehicle_models.ride_through.RideThroughState`);
3. active power: the request clipped to ``[p_min_pu, p_max_pu]`` (SoC/energy feasible set);
   then either frequency droop (grid-following, relative to the pre-disturbance power, with
   the droop's open-loop response time as a first-order lag on the droop's contribution) or
   the virtual synchronous machine (grid-forming); then the volt-watt limit (lagged);
4. reactive power: volt-var (lagged, OLRT), watt-var (lagged) or constant power factor;
5. enter-service soft-start limit on |P|; apparent-power limit ``|S| <= 1`` with the
   configured priority; zero output for tripped, ceased or unplugged units.

All arrays are per unit of each unit's apparent-power rating; injection positive.
Steps 3-5 are one fused numba pass over the units (branch-free curves, no temporaries); the
trip logic (numpy on (8, N) timers) is skipped while every voltage and frequency is inside the
tightest thresholds, and the droop while the frequency is inside its deadband and every
unit's droop contribution has decayed. 100,000 units take about 1 ms per step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from numba import njit

from vehicle_models.primitives import (
    V_REF_LIMITS_PU,
    lag_factor,
    olrt_time_constant_s,
    volt_var_points,
)
from vehicle_models.ride_through import RideThroughState, is_scalar
from vehicle_models.settings import (
    ControlFunction,
    Excitation,
    GridMode,
    InverterSettings,
    Priority,
)
from vehicle_models.vsm import VirtualSynchronousMachine


class KernelInputs(NamedTuple):
    """Per-unit inputs of one step of the fused kernel (arrays of shape (n,) unless noted).

    Parameters
    ----------
    vm_pu : numpy.ndarray
        Voltage at the point of connection [pu].
    f_meas_hz : numpy.ndarray
        Measured frequency [Hz], shape (1,) for one system frequency or (n,).
    f_stride : int
        0 when ``f_meas_hz`` has one element, 1 when it has one per unit.
    p_request_pu, p_max_pu, p_min_pu : numpy.ndarray
        Scheduled active power and its feasible bounds [pu].
    connected, tripped, ceased : numpy.ndarray of bool
        Plugged in; disconnected by a trip; in momentary cessation.
    p_limit_pu : numpy.ndarray
        Enter-service soft-start limit on |P| [pu].
    output_scale : numpy.ndarray
        Factor on P and Q of units ramping down (``ramp`` stagger mode) [-].
    p_gfm_pu : numpy.ndarray
        Grid-forming (VSM) active power [pu]; empty for grid-following units.
    """

    vm_pu: np.ndarray
    f_meas_hz: np.ndarray
    f_stride: int
    p_request_pu: np.ndarray
    p_max_pu: np.ndarray
    p_min_pu: np.ndarray
    connected: np.ndarray
    tripped: np.ndarray
    ceased: np.ndarray
    p_limit_pu: np.ndarray
    output_scale: np.ndarray
    p_gfm_pu: np.ndarray


class KernelState(NamedTuple):
    """Per-unit state the kernel reads and updates in place (arrays of shape (n,)).

    Parameters
    ----------
    q_lag_pu : numpy.ndarray
        Lagged volt-var / watt-var reactive power [pu].
    p_vw_limit_pu : numpy.ndarray
        Lagged volt-watt limit [pu].
    dp_droop_pu : numpy.ndarray
        Lagged frequency-droop contribution [pu].
    p_pre_pu : numpy.ndarray
        Pre-disturbance active power latched at the start of a frequency event [pu].
    event_prev : numpy.ndarray of bool
        Frequency outside the deadband at the previous step.
    p_prev_pu : numpy.ndarray
        Active power output of the previous step [pu].
    ceased_prev : numpy.ndarray of bool
        Momentary cessation at the previous step.
    v_ref_pu : numpy.ndarray
        Volt-var reference voltage [pu].
    """

    q_lag_pu: np.ndarray
    p_vw_limit_pu: np.ndarray
    dp_droop_pu: np.ndarray
    p_pre_pu: np.ndarray
    event_prev: np.ndarray
    p_prev_pu: np.ndarray
    ceased_prev: np.ndarray
    v_ref_pu: np.ndarray


class KernelParams(NamedTuple):
    """Settings and step factors of the fused kernel, one value for every unit.

    Parameters
    ----------
    first : bool
        First step (lags start at their targets).
    gfm, freq_watt, volt_watt, volt_var, watt_var, const_pf, q_priority, vref_auto : bool
        Enabled functions and modes.
    ramping, disconnecting : bool
        Some unit is in its soft start / ramping down.
    a_vv, a_vw, a_fw, a_wv, a_vref : float
        Lag factors ``1 - exp(-dt/tau)`` of volt-var, volt-watt, droop, watt-var and the
        volt-var reference voltage [-].
    vw_v1_pu, vw_inv_width_per_pu, vw_p2_pu : float
        Volt-watt start voltage [pu], ``1/(V2 - V1)`` [1/pu] and end power [pu].
    f_of_hz, f_uf_hz : float
        Droop thresholds ``f_N + db_OF`` and ``f_N - db_UF`` [Hz].
    slope_of_pu_per_hz, slope_uf_pu_per_hz : float
        ``1/(f_N k)`` of the two droop directions [pu/Hz].
    pf_tan : float
        Signed ``tan(arccos PF)`` of the constant power factor mode [-].
    vv_base_pu, wv_base_pu : float
        First Q value of the volt-var / watt-var curves [pu].
    vv_shift_pu, vref_min_pu, vref_max_pu : float
        Volt-var curve shift ``VRef - 1`` and the reference-voltage limits [pu].
    vv_table, wv_table : numpy.ndarray, shape (3, m)
        Volt-var / watt-var curves as clamped ramps (see ``_pwl_table``).
    """

    first: bool
    gfm: bool
    freq_watt: bool
    volt_watt: bool
    volt_var: bool
    watt_var: bool
    const_pf: bool
    q_priority: bool
    vref_auto: bool
    ramping: bool
    disconnecting: bool
    a_vv: float
    a_vw: float
    a_fw: float
    a_wv: float
    a_vref: float
    vw_v1_pu: float
    vw_inv_width_per_pu: float
    vw_p2_pu: float
    f_of_hz: float
    f_uf_hz: float
    slope_of_pu_per_hz: float
    slope_uf_pu_per_hz: float
    pf_tan: float
    vv_base_pu: float
    wv_base_pu: float
    vv_shift_pu: float
    vref_min_pu: float
    vref_max_pu: float
    vv_table: np.ndarray
    wv_table: np.ndarray


# Largest |P| allowed next to Q is sqrt(1 - Q^2) shrunk by this factor so that rounding can
# never push P^2 + Q^2 above 1.
_S_SHRINK = 1.0 - 1e-12
# A lagged droop contribution below this [pu] is dropped once the frequency is back inside
# the deadband (the lag would take forever to reach exactly zero).
_DROOP_IDLE_PU = 1e-9


def _pwl_table(xp, fp) -> np.ndarray:
    """Coefficients of a piecewise-linear curve as a sum of clamped ramps, shape (3, m).

    ``y(x) = fp[0] + sum_j dq_j clamp((x - x0_j) inv_w_j, 0, 1)`` equals ``np.interp(x, xp,
    fp)`` and has no data-dependent branches (fast for many units with scattered voltages).
    Rows: ``x0``, ``inv_w`` (a zero-width segment becomes a 1e-12 pu wide one), ``dq``.
    """
    xp = np.asarray(xp, dtype=float)
    fp = np.asarray(fp, dtype=float)
    width = np.diff(xp)
    inv_w = 1.0 / np.maximum(width, 1e-12)
    return np.vstack([xp[:-1], inv_w, np.diff(fp)])


@njit(cache=True, inline="always", fastmath=True)
def _pwl(x, base, table):
    y = base
    for j in range(table.shape[1]):
        y += table[2, j] * min(max((x - table[0, j]) * table[1, j], 0.0), 1.0)
    return y


# fastmath lets LLVM use vector min/max; inputs are checked finite in RideThroughState.update
@njit(cache=True, fastmath=True)
def _step_kernel(inp, st, par, p_out, q_out):
    """Active/reactive power of every unit for one step (see ``InverterBank.step``).

    ``inp`` is a :class:`KernelInputs`, ``st`` a :class:`KernelState` (updated in place),
    ``par`` a :class:`KernelParams`; writes ``p_out`` and ``q_out`` and returns the largest
    |droop contribution| [pu].
    """
    # Hoist every array, flag and parameter out of the loop (lets LLVM unswitch and vectorize).
    vm = inp.vm_pu
    f_meas = inp.f_meas_hz
    f_stride = inp.f_stride
    p_req = inp.p_request_pu
    p_max = inp.p_max_pu
    p_min = inp.p_min_pu
    connected = inp.connected
    tripped = inp.tripped
    ceased = inp.ceased
    p_limit = inp.p_limit_pu
    out_scale = inp.output_scale
    p_gfm = inp.p_gfm_pu
    q_lag = st.q_lag_pu
    vw_lim = st.p_vw_limit_pu
    dp = st.dp_droop_pu
    p_pre = st.p_pre_pu
    event_prev = st.event_prev
    p_prev = st.p_prev_pu
    ceased_prev = st.ceased_prev
    v_ref = st.v_ref_pu
    vv_table = par.vv_table
    wv_table = par.wv_table
    first = par.first
    gfm = par.gfm
    freq_watt = par.freq_watt
    volt_watt = par.volt_watt
    volt_var = par.volt_var
    watt_var = par.watt_var
    const_pf = par.const_pf
    q_priority = par.q_priority
    ramping = par.ramping
    disconnecting = par.disconnecting
    vref_auto = par.vref_auto
    vv_shift = par.vv_shift_pu
    a_vref = par.a_vref
    vref_min = par.vref_min_pu
    vref_max = par.vref_max_pu
    a_vv = par.a_vv
    a_vw = par.a_vw
    a_fw = par.a_fw
    a_wv = par.a_wv
    f_of = par.f_of_hz
    f_uf = par.f_uf_hz
    slope_of = par.slope_of_pu_per_hz
    slope_uf = par.slope_uf_pu_per_hz
    vw_v1 = par.vw_v1_pu
    vw_inv_w = par.vw_inv_width_per_pu
    vw_p2 = par.vw_p2_pu
    pf_tan = par.pf_tan
    vv_base = par.vv_base_pu
    wv_base = par.wv_base_pu
    dp_max = 0.0
    for i in range(vm.shape[0]):
        lo = p_min[i]
        hi = p_max[i]
        p = min(max(p_req[i], lo), hi)
        v = vm[i]
        if gfm:
            p = p_gfm[i]
        elif freq_watt:
            # IEEE 1547-2018 6.5.2.7: droop relative to the pre-disturbance power, limited
            # by the headroom; its open-loop response time lags the droop's contribution.
            f = f_meas[i * f_stride]
            over = (f - f_of) * slope_of
            under = (f_uf - f) * slope_uf
            target = 0.0
            if over > 0.0 or under > 0.0:
                if not event_prev[i]:
                    # Pre-disturbance power: the output of the previous step, as OpenDER 2.2
                    # (EPRI 3002030962 Eq. 3.7.1-12, opender/active_power_support_funcs/
                    # frequency_droop.py: p_pf_pre_pu = p_out_w_prev / NP_P_MAX). If that
                    # output was zeroed by momentary cessation it is not the unit's
                    # pre-disturbance power (after the sag the unit restores its output,
                    # clause 6.4.2), so the dispatch clipped to the feasible range is latched
                    # instead. Deliberate difference: OpenDER latches the ceased 0 here.
                    p_pre[i] = p if (first or ceased_prev[i]) else p_prev[i]
                event_prev[i] = True
                p_fw = max(p_pre[i] - over, lo) if over > 0.0 else min(p_pre[i] + under, hi)
                target = p_fw - p
            else:
                event_prev[i] = False
            if first:
                dp[i] = target
            else:
                dp[i] += a_fw * (target - dp[i])
            dp_max = max(dp_max, abs(dp[i]))
            p = min(max(p + dp[i], lo), hi)
        if volt_watt:
            ramp = min(max((v - vw_v1) * vw_inv_w, 0.0), 1.0)
            lim = 1.0 + (vw_p2 - 1.0) * ramp
            if first:
                vw_lim[i] = lim
            else:
                vw_lim[i] += a_vw * (lim - vw_lim[i])
            p = min(p, vw_lim[i])
        if ramping:
            p = min(max(p, -p_limit[i]), p_limit[i])
        q = 0.0
        if volt_var:
            shift = vv_shift
            if vref_auto:
                # clause 5.3.3: VRef follows a low-pass of the voltage, within its limits
                if first:
                    v_ref[i] = v
                else:
                    v_ref[i] += a_vref * (v - v_ref[i])
                shift = min(max(v_ref[i], vref_min), vref_max) - 1.0
            target = _pwl(v - shift, vv_base, vv_table)
            if first:
                q_lag[i] = target
            else:
                q_lag[i] += a_vv * (target - q_lag[i])
            q = q_lag[i]
        elif watt_var:
            target = _pwl(p, wv_base, wv_table)
            if first:
                q_lag[i] = target
            else:
                q_lag[i] += a_wv * (target - q_lag[i])
            q = q_lag[i]
        elif const_pf:
            q = pf_tan * abs(p)
        # apparent-power limit |S| <= 1
        if const_pf:
            s2 = p * p + q * q
            if s2 > 1.0:
                scale = _S_SHRINK / np.sqrt(s2)
                p *= scale
                q *= scale
        elif q_priority:
            q = min(max(q, -1.0), 1.0)
            lim = np.sqrt(max(1.0 - q * q, 0.0)) * _S_SHRINK
            p = min(max(p, -lim), lim)
        else:
            p = min(max(p, -1.0), 1.0)
            lim = np.sqrt(max(1.0 - p * p, 0.0)) * _S_SHRINK
            q = min(max(q, -lim), lim)
        if disconnecting:
            p *= out_scale[i]
            q *= out_scale[i]
        # branch-free zeroing of unplugged, tripped and ceased units
        on = connected[i] & ~tripped[i] & ~ceased[i]
        p_out[i] = p * on
        q_out[i] = q * on
        ceased_prev[i] = ceased[i]
    return dp_max


# numba types a NamedTuple argument in Python on every call (about 0.1 us per field, ~5 us
# per step for these 51 fields), an exact tuple in C: Python passes ``tuple(structure)`` and
# the named structures are rebuilt here, in compiled code, where they cost nothing.
@njit(cache=True)
def _step_kernel_fields(inp, st, par, p_out, q_out):
    """:func:`_step_kernel` with the fields of the structures as plain tuples."""
    return _step_kernel(KernelInputs(*inp), KernelState(*st), KernelParams(*par), p_out, q_out)


def _per_unit(values, n: int, name: str, dtype) -> np.ndarray:
    """``values`` as an (n,) array (scalars broadcast); a wrong shape is a clear error."""
    array = np.asarray(values, dtype=dtype)
    if array.shape == (n,):
        return array
    if array.ndim == 0:
        return np.broadcast_to(array, (n,))
    raise ValueError(f"InverterBank.step: {name} has shape {array.shape}, expected ({n},)")


@dataclass
class InverterOutput:
    """Result of one :meth:`InverterBank.step` (arrays of shape (N,), pu of S rating).

    ``p_pu`` active power (injection > 0, charging < 0), ``q_pu`` reactive power
    (injection/capacitive > 0), ``tripped`` disconnected by a trip, ``ceased`` in
    momentary cessation. ``sqrt(p^2 + q^2) <= 1``; tripped and ceased units output 0.
    """

    p_pu: np.ndarray
    q_pu: np.ndarray
    tripped: np.ndarray
    ceased: np.ndarray


class InverterBank:
    """N inverters sharing one :class:`InverterSettings`, stepped together.

    Parameters
    ----------
    settings : InverterSettings
        Validated on construction (``ScenarioError`` listing every problem).
    n : int
        Number of units.
    seed : int
        Seed for the ``random`` stagger mode.

    Attributes
    ----------
    tripped, ceased : numpy.ndarray of bool (n,)
    f_meas_hz : float or numpy.ndarray
        Measured (filtered) frequency [Hz].
    q_lag_pu : numpy.ndarray (n,)
        Lagged reactive-power command (volt-var / watt-var).
    v_ref_pu : numpy.ndarray (n,)
        Volt-var reference voltage state (low-pass of the voltage when ``v_ref_auto``).
    p_vw_limit_pu : numpy.ndarray (n,)
        Lagged volt-watt active power limit.
    dp_droop_pu : numpy.ndarray (n,)
        Lagged frequency-droop contribution to P.
    p_pre_pu : numpy.ndarray (n,)
        Pre-disturbance active power latched when the frequency left the deadband: the
        previous step's output, or the clipped dispatch if that output was zeroed by
        momentary cessation.
    p_pu, q_pu : numpy.ndarray (n,)
        Last output.
    ride_through : RideThroughState
        Timers, enter-service and stagger state.
    vsm : VirtualSynchronousMachine or None
        Grid-forming state.
    """

    def __init__(self, settings: InverterSettings, *, n: int, seed: int = 0) -> None:
        settings.validate()
        self.settings = settings
        self.n = int(n)
        self.seed = seed
        fs = settings.functions
        self._volt_var = ControlFunction.VOLT_VAR in fs
        self._volt_watt = ControlFunction.VOLT_WATT in fs
        self._freq_watt = ControlFunction.FREQ_WATT in fs
        self._pf = ControlFunction.CONSTANT_PF in fs
        self._watt_var = ControlFunction.WATT_VAR in fs
        self._gfm = settings.mode is GridMode.GRID_FORMING
        self._q_priority = settings.priority is Priority.REACTIVE
        vv = settings.volt_var
        self._vv_v, self._vv_q = volt_var_points(vv, v_ref_pu=1.0)
        self.v_ref_pu = np.full(self.n, vv.v_ref_pu)
        self.ride_through = RideThroughState(settings, n=self.n, seed=seed)
        self.f_nominal_hz = float(settings.f_nominal_hz)
        self.vsm = (
            VirtualSynchronousMachine(settings.vsm, n=self.n, f_nominal_hz=self.f_nominal_hz)
            if self._gfm
            else None
        )
        self.f_meas_hz: float | np.ndarray | None = None
        self.q_lag_pu = np.zeros(self.n)
        self.p_vw_limit_pu = np.ones(self.n)
        self.dp_droop_pu = np.zeros(self.n)
        self.p_pre_pu = np.zeros(self.n)
        self.p_pu = np.zeros(self.n)
        self.q_pu = np.zeros(self.n)
        self._event_prev = np.zeros(self.n, dtype=np.bool_)
        # momentary cessation at the previous step (its output 0 is no pre-disturbance power)
        self._ceased_prev = np.zeros(self.n, dtype=np.bool_)
        self._droop_idle = False
        self._empty = np.zeros(0)
        self._f_scalar = np.zeros(1)  # the measured frequency when it is one number
        ws = settings.watt_var
        self._wv_p = np.array(
            [ws.p3_load_pu, ws.p2_load_pu, ws.p1_load_pu, ws.p1_pu, ws.p2_pu, ws.p3_pu]
        )
        self._wv_q = np.array(
            [ws.q3_load_pu, ws.q2_load_pu, ws.q1_load_pu, ws.q1_pu, ws.q2_pu, ws.q3_pu]
        )
        fw, vw, pf = settings.freq_watt, settings.volt_watt, settings.pf
        f_nom = self.f_nominal_hz
        tan_phi = math.sqrt(max(1.0 - pf.pf**2, 0.0)) / pf.pf
        # step-dependent fields (first, ramping, lag factors, ...) are set in step()
        self._params = KernelParams(
            first=True,
            gfm=self._gfm,
            freq_watt=self._freq_watt,
            volt_watt=self._volt_watt,
            volt_var=self._volt_var,
            watt_var=self._watt_var,
            const_pf=self._pf,
            q_priority=self._q_priority,
            vref_auto=bool(vv.v_ref_auto),
            ramping=False,
            disconnecting=False,
            a_vv=1.0,
            a_vw=1.0,
            a_fw=1.0,
            a_wv=1.0,
            a_vref=1.0,
            vw_v1_pu=float(vw.v1_pu),
            vw_inv_width_per_pu=1.0 / (vw.v2_pu - vw.v1_pu),
            vw_p2_pu=float(vw.p2_pu),
            f_of_hz=f_nom + fw.db_of_hz,
            f_uf_hz=f_nom - fw.db_uf_hz,
            slope_of_pu_per_hz=1.0 / (f_nom * fw.k_of),
            slope_uf_pu_per_hz=1.0 / (f_nom * fw.k_uf),
            pf_tan=tan_phi if pf.excitation is Excitation.INJECT else -tan_phi,
            vv_base_pu=float(self._vv_q[0]),
            wv_base_pu=float(self._wv_q[0]),
            vv_shift_pu=vv.v_ref_pu - 1.0,
            vref_min_pu=V_REF_LIMITS_PU[0],
            vref_max_pu=V_REF_LIMITS_PU[1],
            vv_table=_pwl_table(self._vv_v, self._vv_q),
            wv_table=_pwl_table(self._wv_p, self._wv_q),
        )
        self._initialized = False
        self._factor_cache: dict[float, dict[str, float]] = {}
        self._params_cache: dict[float, KernelParams] = {}
        # the kernel parameters of the last step and what they depend on (reused while equal)
        self._step_key: tuple | None = None
        self._step_params: tuple = ()
        self._f_meas_dt_s = math.nan  # step length of the cached PLL lag factor [s]
        self._f_meas_factor = 1.0
        # droop deadband [Hz] (the idle test runs on every step)
        self._f_deadband_hz = (f_nom - fw.db_uf_hz, f_nom + fw.db_of_hz)

    # ------------------------------------------------------------------ convenience
    @property
    def tripped(self) -> np.ndarray:
        """Units disconnected by a trip (not yet re-entered)."""
        return self.ride_through.tripped

    @property
    def ceased(self) -> np.ndarray:
        """Units in momentary cessation at the last step."""
        return self.ride_through.ceased

    def state(self) -> dict[str, np.ndarray]:
        """Per-unit state for reports.

        Returns
        -------
        dict of numpy.ndarray
            Copies, each of shape (n,): ``p_pu``, ``q_pu`` (last output), ``tripped``,
            ``ceased``, ``disconnecting``, ``trip_count``, ``enter_service_timer_s``,
            ``soft_start_limit_pu``, ``q_lag_pu``, ``dp_droop_pu``, ``p_pre_pu``,
            ``volt_watt_limit_pu``, ``v_ref_pu``.
        """
        rt = self.ride_through
        return {
            "p_pu": self.p_pu.copy(),
            "q_pu": self.q_pu.copy(),
            "tripped": rt.tripped.copy(),
            "ceased": rt.ceased.copy(),
            "disconnecting": rt.disconnecting.copy(),
            "trip_count": rt.trip_count.copy(),
            "enter_service_timer_s": rt.es_timer_s.copy(),
            "soft_start_limit_pu": rt.p_limit_pu.copy(),
            "q_lag_pu": self.q_lag_pu.copy(),
            "dp_droop_pu": self.dp_droop_pu.copy(),
            "p_pre_pu": self.p_pre_pu.copy(),
            "volt_watt_limit_pu": self.p_vw_limit_pu.copy(),
            "v_ref_pu": self.v_ref_pu.copy(),
        }

    def _factors(self, dt_s: float) -> dict[str, float]:
        f = self._factor_cache.get(dt_s)
        if f is None:
            s = self.settings
            f = {
                "f_meas": lag_factor(dt_s, s.freq_watt.f_meas_tau_s),
                "vv": lag_factor(dt_s, olrt_time_constant_s(s.volt_var.olrt_s)),
                "vw": lag_factor(dt_s, olrt_time_constant_s(s.volt_watt.olrt_s)),
                "fw": lag_factor(dt_s, olrt_time_constant_s(s.freq_watt.olrt_s)),
                "wv": lag_factor(dt_s, olrt_time_constant_s(s.watt_var.olrt_s)),
                "vref": lag_factor(dt_s, s.volt_var.v_ref_tau_s),
            }
            self._factor_cache[dt_s] = f
        return f

    # ------------------------------------------------------------------ the step
    def step(
        self,
        *,
        dt_s: float,
        vm_pu,
        f_hz,
        p_request_pu,
        p_max_pu,
        p_min_pu,
        connected,
    ) -> InverterOutput:
        """Advance every unit by ``dt_s`` seconds (inputs held over the step).

        Parameters
        ----------
        dt_s : float
            Step [s] (> 0).
        vm_pu : array_like (n,)
            Voltage at each unit's point of connection [pu].
        f_hz : float or array_like (n,)
            Grid frequency [Hz].
        p_request_pu : array_like (n,)
            Scheduled active power [pu] (charging < 0).
        p_max_pu, p_min_pu : array_like (n,)
            Feasible active-power bounds from SoC/energy constraints [pu].
        connected : array_like of bool (n,)
            Plugged in.

        Returns
        -------
        InverterOutput
        """
        n = self.n
        vm_b = _per_unit(vm_pu, n, "vm_pu", float)
        p_req = _per_unit(p_request_pu, n, "p_request_pu", float)
        p_max = _per_unit(p_max_pu, n, "p_max_pu", float)
        p_min = _per_unit(p_min_pu, n, "p_min_pu", float)
        conn = _per_unit(connected, n, "connected", np.bool_)
        f_in = f_hz if is_scalar(f_hz) else _per_unit(f_hz, n, "f_hz", float)
        first = not self._initialized

        # 1. frequency measurement (PLL low-pass) of grid-following units
        if first or self._gfm:
            self.f_meas_hz = f_in
        else:
            if dt_s != self._f_meas_dt_s:
                self._f_meas_factor = self._factors(float(dt_s))["f_meas"]
                self._f_meas_dt_s = dt_s
            self.f_meas_hz = self.f_meas_hz + self._f_meas_factor * (f_in - self.f_meas_hz)
        f_meas = self.f_meas_hz

        # 2. protection
        rt = self.ride_through
        rt.update(dt_s=dt_s, vm_pu=vm_b, f_hz=f_meas, connected=conn)

        # 3-5. active and reactive power, limits and masks: one fused pass (numba)
        if self._gfm:
            p_sched = np.clip(p_req, p_min, p_max)
            p_gfm = self.vsm.step(
                dt_s=dt_s, f_hz=f_in, p_ref_pu=p_sched, p_max_pu=p_max, p_min_pu=p_min
            )
        else:
            p_gfm = self._empty
        if is_scalar(f_meas):  # one system frequency
            f_arr = self._f_scalar
            f_arr[0] = f_meas
        else:
            f_arr = np.atleast_1d(np.asarray(f_meas, dtype=float))
        f_stride = 0 if f_arr.size == 1 else 1
        # Frequency droop idles (skipped: no per-unit work) while the measured frequency is
        # a scalar inside the deadband and every unit's lagged droop contribution has decayed.
        f_db_lo, f_db_hi = self._f_deadband_hz
        in_deadband = f_stride == 0 and (f_db_lo <= f_arr[0] <= f_db_hi)
        droop_on = self._freq_watt and not (in_deadband and self._droop_idle)
        params = self._params_for_step(
            (float(dt_s), first, droop_on, rt.any_ramping, rt.any_disconnecting)
        )
        # Positional construction: these hold arrays that change from step to step (the
        # caller's inputs, the previous output, momentary cessation); keyword arguments
        # would cost more than the kernel at a few thousand units.
        inputs = KernelInputs(
            vm_b,
            f_arr,
            f_stride,
            p_req,
            p_max,
            p_min,
            conn,
            rt.tripped,
            rt.ceased,
            rt.p_limit_pu,
            rt.output_scale,
            p_gfm,
        )
        state = KernelState(
            self.q_lag_pu,
            self.p_vw_limit_pu,
            self.dp_droop_pu,
            self.p_pre_pu,
            self._event_prev,
            self.p_pu,
            self._ceased_prev,
            self.v_ref_pu,
        )
        p = np.empty(n)
        q = np.empty(n)
        dp_max = _step_kernel_fields(tuple(inputs), tuple(state), params, p, q)
        if droop_on:
            self._droop_idle = in_deadband and dp_max < _DROOP_IDLE_PU
            if self._droop_idle:
                self.dp_droop_pu[:] = 0.0
                self._event_prev[:] = False
        self.p_pu = p
        self.q_pu = q
        self._initialized = True
        return InverterOutput(p_pu=p, q_pu=q, tripped=rt.tripped.copy(), ceased=rt.ceased.copy())

    def _params_for_step(self, key: tuple[float, bool, bool, bool, bool]) -> tuple:
        """The fields of the kernel parameters of one step, reused while ``key`` is unchanged.

        ``key`` is ``(dt_s, first, freq_watt, ramping, disconnecting)``: the step length
        (lag factors) and the per-step flags. Comparing one tuple with the last step's is
        cheaper than replacing fields of the 31-field :class:`KernelParams` on every step.
        """
        if key == self._step_key:
            return self._step_params
        dt_s, first, droop_on, ramping, disconnecting = key
        params = self._params_for(dt_s, self._factors(dt_s))._replace(
            first=first, freq_watt=droop_on, ramping=ramping, disconnecting=disconnecting
        )
        self._step_key = key
        self._step_params = tuple(params)
        return self._step_params

    def _params_for(self, dt_s: float, fac: dict[str, float]) -> KernelParams:
        """The kernel parameters with the lag factors of step ``dt_s`` (cached per step)."""
        params = self._params_cache.get(dt_s)
        if params is None:
            params = self._params._replace(
                a_vv=fac["vv"], a_vw=fac["vw"], a_fw=fac["fw"], a_wv=fac["wv"], a_vref=fac["vref"]
            )
            self._params_cache[dt_s] = params
        return params


__all__ = ["InverterBank", "InverterOutput", "KernelInputs", "KernelParams", "KernelState"]
