"""Vehicle batteries and bidirectional chargers, vectorized over N vehicles.

One :class:`BatteryBank` holds the state of N traction batteries and their chargers as numpy
arrays (one element per vehicle). Powers are AC-side (grid-side) powers with the project sign
convention: injection into the grid is positive (V2G discharge > 0, charging < 0).

Energy chain of one vehicle (all powers positive in the discharge direction)::

    grid (AC) p_ac  <--charger (eta_charge / eta_discharge)-->  p_dc  <--battery-->  p_chem

* ``p_ac`` [kW] grid-side power, limited by the charger ratings (kW and kVA).
* ``p_dc`` [kW] battery terminal power; charger loss ``p_dc - p_ac >= 0``.
* ``p_chem`` [kW] rate of change of the stored (chemical) energy ``-dE/dt``; the battery's
  internal loss is ``p_chem - p_dc`` (zero without the equivalent circuit).

The stored energy ``e_kwh`` is the state; ``soc_frac = e_kwh / e_capacity_kwh`` (energy-based
state of charge). Every step reports the grid-side energy in/out and the losses so that the
invariant ``e_in - e_out - e_loss = delta(e_kwh + e_polarisation_kwh)`` holds to rounding.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from grids.errors import ScenarioError, check_problems

S_PER_H = 3600.0

# Representative NMC cell open-circuit voltage against SoC (a Sanyo UR18650E-like NMC cell,
# 2.5 V .. 4.2 V window, as characterised in Schmalstieg et al. 2014, Fig. 2; points read to
# about +-20 mV, which is fine for a terminal-voltage and loss model).
NMC_OCV_SOC_FRAC = (0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
NMC_OCV_V = (3.00, 3.35, 3.45, 3.55, 3.62, 3.68, 3.74, 3.82, 3.90, 3.98, 4.07, 4.18)


@dataclass(frozen=True)
class TheveninParameters:
    """Second-order Thevenin equivalent circuit of one cell (R0 + two RC branches).

    The pack has ``n_series`` cells in series; the number of parallel strings follows from
    each vehicle's usable capacity: ``n_parallel = e_capacity_kwh * 1000 / (n_series *
    cell_energy_wh)`` (fractional values allowed: it is a scaling). Pack values are
    ``R_pack = R_cell * n_series / n_parallel``, ``tau`` unchanged, ``OCV_pack = n_series *
    OCV_cell``.

    Parameters
    ----------
    n_series : int
        Cells in series [-].
    cell_energy_wh : float
        Nominal energy of one cell [Wh] (2.05 Ah x 3.6 V for the Schmalstieg cell).
    r0_ohm, r1_ohm, r2_ohm : float
        Series resistance and the two RC-branch resistances of one cell [ohm].
    tau1_s, tau2_s : float
        RC time constants ``R_k C_k`` [s] (fast charge-transfer and slow diffusion branch).
    ocv_soc_frac, ocv_v : tuple of float
        Cell open-circuit voltage curve [-], [V]; linear interpolation, increasing SoC.

    References
    ----------
    .. [1] X. Hu, S. Li, H. Peng, "A comparative study of equivalent circuit models for
       Li-ion batteries", J. Power Sources 198 (2012) 359-367.
    .. [2] J. Schmalstieg et al., "A holistic aging model for Li(NiMnCo)O2 based 18650
       lithium-ion batteries", J. Power Sources 257 (2014) 325-334.
    """

    n_series: int = 96
    cell_energy_wh: float = 2.05 * 3.6
    r0_ohm: float = 0.040
    r1_ohm: float = 0.015
    tau1_s: float = 10.0
    r2_ohm: float = 0.020
    tau2_s: float = 400.0
    ocv_soc_frac: tuple[float, ...] = NMC_OCV_SOC_FRAC
    ocv_v: tuple[float, ...] = NMC_OCV_V

    def problems(self, path: str = "fleet.battery.thevenin") -> list[str]:
        """Every invalid parameter as ``"path.name: value ..."``.

        Parameters
        ----------
        path : str
            Key path used in messages.

        Returns
        -------
        list of str
            One message per problem; empty when valid.
        """
        out: list[str] = []
        if self.n_series < 1:
            out.append(f"{path}.n_series: {self.n_series} is below the allowed 1")
        for name in ("cell_energy_wh", "tau1_s", "tau2_s"):
            value = getattr(self, name)
            if not np.isfinite(value) or value <= 0:
                out.append(f"{path}.{name}: {value} must be a positive number")
        for name in ("r0_ohm", "r1_ohm", "r2_ohm"):
            value = getattr(self, name)
            if not np.isfinite(value) or value < 0:
                out.append(f"{path}.{name}: {value} must be a non-negative number")
        soc = np.asarray(self.ocv_soc_frac, dtype=float)
        ocv = np.asarray(self.ocv_v, dtype=float)
        if soc.shape != ocv.shape or soc.size < 2:
            out.append(f"{path}.ocv_soc_frac/ocv_v: need two tables of equal length >= 2")
        elif np.any(np.diff(soc) <= 0) or soc[0] > 0 or soc[-1] < 1:
            out.append(f"{path}.ocv_soc_frac: must increase strictly and cover 0..1")
        elif np.any(ocv <= 0):
            out.append(f"{path}.ocv_v: voltages must be positive")
        return out


@dataclass
class BatteryStepResult:
    """Per-vehicle outcome of one :meth:`BatteryBank.step` (arrays of shape (N,)).

    Attributes
    ----------
    p_ac_kw : applied grid-side power [kW] (after limiting; + = discharge into the grid)
    limited : True where the requested power was outside the feasible range and was limited
    p_limited_kw : requested minus applied power [kW] (0 where not limited)
    e_in_kwh, e_out_kwh : grid-side energy drawn from / delivered to the grid [kWh]
    e_loss_kwh : charger plus battery-internal (ohmic) losses [kWh]
    """

    p_ac_kw: np.ndarray
    limited: np.ndarray
    p_limited_kw: np.ndarray
    e_in_kwh: np.ndarray
    e_out_kwh: np.ndarray
    e_loss_kwh: np.ndarray


def _broadcast(n: int, value, name: str) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim == 0:
        return np.full(n, float(arr))
    if arr.shape != (n,):
        raise ScenarioError(f"battery.{name}: shape {arr.shape} does not match ({n},)")
    return arr.copy()


@dataclass
class BatteryBank:
    """State of N vehicle batteries and chargers.

    Parameters
    ----------
    e_capacity_kwh : array_like (N,)
        Usable energy capacity [kWh] (``soc_frac = 1``).
    e_kwh : array_like (N,)
        Initial stored energy [kWh].
    p_charge_max_kw, p_discharge_max_kw : array_like (N,)
        Charger active-power limits [kW] (positive numbers; discharge 0 = no V2G).
    s_max_kva : array_like (N,)
        Charger apparent-power rating [kVA]; the inverter controls work in per unit of it.
    eta_charge, eta_discharge : array_like (N,)
        Charger efficiencies (grid->battery and battery->grid) [-], in (0, 1].
    soc_min_frac, soc_max_frac : array_like (N,)
        User limits on the state of charge [-] (inside the hard bounds 0..1).
    soc_reserve_frac : array_like (N,)
        V2H/backup reserve [-]: V2G discharge never takes the battery below it.
    thevenin : TheveninParameters, optional
        Enables the 2-RC equivalent circuit (terminal voltage, I^2 R losses).

    Notes
    -----
    Simple model (no equivalent circuit), for a step of length ``dt`` [h] at constant power::

        p_dc = p_ac / eta_discharge  (p_ac >= 0),   p_dc = p_ac * eta_charge  (p_ac < 0)
        e(t + dt) = e(t) - p_dc * dt,   loss = (p_dc - p_ac) * dt >= 0

    With the equivalent circuit the battery current ``I`` [A] (discharge > 0) is constant over
    the step and the RC voltages follow the exact solution
    ``v_k(t) = R_k I + (v_k0 - R_k I) exp(-t / tau_k)``. The step-average terminal power is
    ``p_dc = I (OCV' - R_eff I)`` with ``OCV' = OCV - sum_k v_k0 g_k``,
    ``R_eff = R0 + sum_k R_k (1 - g_k)`` and ``g_k = tau_k / dt (1 - exp(-dt / tau_k))``;
    it is solved for ``I`` in closed form. Stored energy changes by ``-OCV(soc) I dt``
    (OCV at the start of the step), the resistors dissipate ``R0 I^2 dt + sum_k int v_k^2 /
    R_k dt`` (integrated exactly) and the capacitors hold ``W = sum_k C_k v_k^2 / 2``
    (``e_polarisation_kwh``), so that ``e_in - e_out - e_loss = delta(e_kwh + W)`` exactly.
    """

    e_capacity_kwh: np.ndarray
    e_kwh: np.ndarray
    p_charge_max_kw: np.ndarray
    p_discharge_max_kw: np.ndarray
    s_max_kva: np.ndarray
    eta_charge: np.ndarray
    eta_discharge: np.ndarray
    soc_min_frac: np.ndarray
    soc_max_frac: np.ndarray
    soc_reserve_frac: np.ndarray
    thevenin: TheveninParameters | None = None
    v_rc_v: np.ndarray = field(init=False)

    @classmethod
    def create(
        cls,
        *,
        e_capacity_kwh,
        e_kwh=None,
        soc_frac=None,
        p_charge_max_kw,
        p_discharge_max_kw=None,
        s_max_kva=None,
        eta_charge=0.95,
        eta_discharge=0.95,
        soc_min_frac=0.0,
        soc_max_frac=1.0,
        soc_reserve_frac=0.0,
        thevenin: TheveninParameters | None = None,
        path: str = "fleet.battery",
    ) -> BatteryBank:
        """Build a bank from scalars or (N,) arrays, validating every parameter.

        Parameters
        ----------
        e_capacity_kwh : array_like (N,)
            Usable capacity [kWh].
        e_kwh, soc_frac : array_like (N,), optional
            Initial stored energy [kWh] or state of charge [-] (default: ``soc_max_frac``).
        p_charge_max_kw : array_like (N,)
            Charger rating while charging [kW].
        p_discharge_max_kw : array_like (N,), optional
            Rating while discharging [kW] (default: ``p_charge_max_kw``).
        s_max_kva : array_like (N,), optional
            Apparent-power rating [kVA] (default: the larger kW rating).
        eta_charge, eta_discharge : array_like (N,)
            One-way efficiencies [-].
        soc_min_frac, soc_max_frac, soc_reserve_frac : array_like (N,)
            SoC bounds and the reserve kept for driving [-].
        thevenin : TheveninParameters, optional
            2-RC equivalent circuit (None: ideal energy reservoir).
        path : str
            Key path used in messages.

        Returns
        -------
        BatteryBank

        Raises
        ------
        ScenarioError
            Listing every problem.
        """
        cap = np.atleast_1d(np.asarray(e_capacity_kwh, dtype=np.float64))
        n = cap.size
        bc = lambda v, name: _broadcast(n, v, name)  # noqa: E731
        p_ch = bc(p_charge_max_kw, "p_charge_max_kw")
        p_dis = p_ch.copy() if p_discharge_max_kw is None else bc(p_discharge_max_kw, "x")
        s_max = np.maximum(p_ch, p_dis) if s_max_kva is None else bc(s_max_kva, "s_max_kva")
        soc_max = bc(soc_max_frac, "soc_max_frac")
        if e_kwh is not None:
            e = bc(e_kwh, "e_kwh")
        else:
            e = cap * (soc_max if soc_frac is None else bc(soc_frac, "soc_frac"))
        bank = cls(
            e_capacity_kwh=cap.copy(),
            e_kwh=e,
            p_charge_max_kw=p_ch,
            p_discharge_max_kw=p_dis,
            s_max_kva=s_max,
            eta_charge=bc(eta_charge, "eta_charge"),
            eta_discharge=bc(eta_discharge, "eta_discharge"),
            soc_min_frac=bc(soc_min_frac, "soc_min_frac"),
            soc_max_frac=soc_max,
            soc_reserve_frac=bc(soc_reserve_frac, "soc_reserve_frac"),
            thevenin=thevenin,
        )
        check_problems(bank.problems(path), ScenarioError, "invalid battery parameters")
        return bank

    def __post_init__(self) -> None:
        self.v_rc_v = np.zeros((2, self.e_kwh.size))
        if self.thevenin is not None:
            self._init_circuit()

    # ----------------------------------------------------------------- validation
    def problems(self, path: str = "fleet.battery") -> list[str]:
        """Every invalid parameter, naming the first offending vehicle index per check.

        Parameters
        ----------
        path : str
            Key path used in messages.

        Returns
        -------
        list of str
            One message per problem; empty when valid.
        """
        out: list[str] = []

        def check(mask: np.ndarray, name: str, values: np.ndarray, what: str) -> None:
            bad = np.flatnonzero(mask)
            if bad.size:
                i = bad[0]
                out.append(
                    f"{path}.{name}: {values[i]:g} {what} (vehicle {i}; {bad.size} vehicles)"
                )

        nan = lambda a: ~np.isfinite(a)  # noqa: E731
        check(
            nan(self.e_capacity_kwh) | (self.e_capacity_kwh <= 0),
            "e_capacity_kwh",
            self.e_capacity_kwh,
            "must be a positive number",
        )
        for name in ("p_charge_max_kw", "p_discharge_max_kw"):
            v = getattr(self, name)
            check(nan(v) | (v < 0), name, v, "must be a non-negative number")
        check(
            nan(self.s_max_kva) | (self.s_max_kva <= 0),
            "s_max_kva",
            self.s_max_kva,
            "must be a positive number",
        )
        check(
            self.p_charge_max_kw > self.s_max_kva * (1 + 1e-12),
            "p_charge_max_kw",
            self.p_charge_max_kw,
            "exceeds the charger rating s_max_kva",
        )
        check(
            self.p_discharge_max_kw > self.s_max_kva * (1 + 1e-12),
            "p_discharge_max_kw",
            self.p_discharge_max_kw,
            "exceeds the charger rating s_max_kva",
        )
        for name in ("eta_charge", "eta_discharge"):
            v = getattr(self, name)
            check(nan(v) | (v <= 0) | (v > 1), name, v, "is outside the allowed (0, 1]")
        for name in ("soc_min_frac", "soc_max_frac", "soc_reserve_frac"):
            v = getattr(self, name)
            check(nan(v) | (v < 0) | (v > 1), name, v, "is outside the allowed [0, 1]")
        check(
            self.soc_min_frac > self.soc_max_frac,
            "soc_min_frac",
            self.soc_min_frac,
            "is above soc_max_frac",
        )
        check(
            self.soc_reserve_frac > self.soc_max_frac,
            "soc_reserve_frac",
            self.soc_reserve_frac,
            "is above soc_max_frac",
        )
        check(
            nan(self.e_kwh) | (self.e_kwh < 0) | (self.e_kwh > self.e_capacity_kwh * (1 + 1e-12)),
            "e_kwh",
            self.e_kwh,
            "is outside 0..e_capacity_kwh",
        )
        if self.thevenin is not None:
            out.extend(self.thevenin.problems(f"{path}.thevenin"))
        return out

    # ----------------------------------------------------------------- properties
    @property
    def n(self) -> int:
        """Number of vehicles."""
        return self.e_kwh.size

    @property
    def soc_frac(self) -> np.ndarray:
        """State of charge [-] (energy based), shape (N,)."""
        return self.e_kwh / self.e_capacity_kwh

    @property
    def e_floor_kwh(self) -> np.ndarray:
        """Lowest energy discharge may reach [kWh]: max(soc_min, reserve) * capacity."""
        return self.e_capacity_kwh * np.maximum(self.soc_min_frac, self.soc_reserve_frac)

    @property
    def e_ceiling_kwh(self) -> np.ndarray:
        """Highest energy charging may reach [kWh]: soc_max * capacity."""
        return self.e_capacity_kwh * self.soc_max_frac

    @property
    def e_polarisation_kwh(self) -> np.ndarray:
        """Energy held in the RC-branch capacitors [kWh] (0 without the circuit)."""
        if self.thevenin is None:
            return np.zeros(self.n)
        w_j = 0.5 * (self._c1_f * self.v_rc_v[0] ** 2 + self._c2_f * self.v_rc_v[1] ** 2)
        return w_j / (S_PER_H * 1000.0)

    # ----------------------------------------------------------------- circuit
    def _init_circuit(self) -> None:
        th = self.thevenin
        n_par = self.e_capacity_kwh * 1000.0 / (th.n_series * th.cell_energy_wh)
        scale = th.n_series / n_par
        self._r0 = th.r0_ohm * scale
        self._r1 = th.r1_ohm * scale
        self._r2 = th.r2_ohm * scale
        self._c1_f = th.tau1_s / np.where(self._r1 > 0, self._r1, np.inf)
        self._c2_f = th.tau2_s / np.where(self._r2 > 0, self._r2, np.inf)
        self._ocv_soc = np.asarray(th.ocv_soc_frac, dtype=float)
        self._ocv_v = np.asarray(th.ocv_v, dtype=float) * th.n_series

    def ocv_v(self) -> np.ndarray:
        """Pack open-circuit voltage at the present SoC (needs the circuit).

        Returns
        -------
        numpy.ndarray
            Open-circuit voltage [V] per vehicle.
        """
        if self.thevenin is None:
            raise ScenarioError("battery.ocv_v: no equivalent circuit configured (thevenin)")
        return np.interp(np.clip(self.soc_frac, 0, 1), self._ocv_soc, self._ocv_v)

    def _circuit_terms(self, dt_s: float):
        """OCV [V], OCV' [V], R_eff [ohm] and the decay factors for one step."""
        ocv = self.ocv_v()
        th = self.thevenin
        g1 = th.tau1_s / dt_s * -np.expm1(-dt_s / th.tau1_s)
        g2 = th.tau2_s / dt_s * -np.expm1(-dt_s / th.tau2_s)
        ocv_eff = ocv - self.v_rc_v[0] * g1 - self.v_rc_v[1] * g2
        r_eff = self._r0 + self._r1 * (1 - g1) + self._r2 * (1 - g2)
        return ocv, ocv_eff, r_eff

    def terminal_voltage_v(self, current_a) -> np.ndarray:
        """Instantaneous pack terminal voltage for a current.

        Parameters
        ----------
        current_a : array_like (N,)
            Pack current [A] (discharge > 0).

        Returns
        -------
        numpy.ndarray
            ``V = OCV(soc) - R0 I - v1 - v2`` [V] with the present RC voltages.
        """
        return self.ocv_v() - self._r0 * current_a - self.v_rc_v[0] - self.v_rc_v[1]

    # ----------------------------------------------------------------- power mapping
    def _ac_from_dc(self, p_dc_kw: np.ndarray) -> np.ndarray:
        return np.where(p_dc_kw >= 0, p_dc_kw * self.eta_discharge, p_dc_kw / self.eta_charge)

    def _dc_from_ac(self, p_ac_kw: np.ndarray) -> np.ndarray:
        return np.where(p_ac_kw >= 0, p_ac_kw / self.eta_discharge, p_ac_kw * self.eta_charge)

    def power_bounds_kw(
        self, dt_s: float, *, e_end_min_kwh=None, active=None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Feasible grid-side power range ``(p_min_kw, p_max_kw)`` for a step of ``dt_s``.

        Parameters
        ----------
        dt_s : float
            Step length [s].
        e_end_min_kwh : array_like (N,), optional
            Lowest stored energy allowed at the end of the step [kWh] (e.g. what is needed to
            reach the departure target). Above the stored energy it forces charging.
        active : bool array (N,), optional
            Vehicles that can exchange power (plugged in); others get ``(0, 0)``.

        Returns
        -------
        p_min_kw, p_max_kw : ndarray (N,)
            ``p_min <= p_max`` always; ``p_max < 0`` means charging is mandatory.

        Notes
        -----
        Without the equivalent circuit: ``p_max = min(P_dis, (E - E_lo) eta_d / dt)`` when
        ``E >= E_lo`` else ``-(E_lo - E) / (eta_c dt)``; ``p_min = -min(P_ch, (E_hi - E) /
        (eta_c dt))``, with ``E_lo = max(floor, e_end_min)`` and ``E_hi`` the SoC ceiling.
        Forced charging is capped at ``P_ch`` (then the target cannot be met; the fleet
        records the shortfall at departure).
        """
        dt_h = dt_s / S_PER_H
        e = self.e_kwh
        # the floor only stops discharge (a vehicle below it is not forced to charge); the
        # end-of-step minimum (departure need) can force charging
        e_lo = np.minimum(self.e_floor_kwh, e)
        if e_end_min_kwh is not None:
            e_lo = np.maximum(e_lo, e_end_min_kwh)
        e_hi = np.maximum(self.e_ceiling_kwh, e)
        e_lo = np.minimum(e_lo, e_hi)
        # bounds on the chemical power (= -dE/dt) [kW]
        pc_hi = (e - e_lo) / dt_h
        pc_lo = -(e_hi - e) / dt_h
        if self.thevenin is None:
            p_dc_hi, p_dc_lo = pc_hi, pc_lo
        else:
            ocv, ocv_eff, r_eff = self._circuit_terms(dt_s)
            i_peak = np.where(r_eff > 0, ocv_eff / (2 * np.where(r_eff > 0, r_eff, 1)), np.inf)
            i_hi = np.minimum(pc_hi * 1000.0 / ocv, i_peak)
            i_lo = pc_lo * 1000.0 / ocv
            p_dc_hi = i_hi * (ocv_eff - r_eff * i_hi) / 1000.0
            p_dc_lo = i_lo * (ocv_eff - r_eff * i_lo) / 1000.0
        p_max = np.minimum(self._ac_from_dc(p_dc_hi), self.p_discharge_max_kw)
        p_min = np.maximum(self._ac_from_dc(p_dc_lo), -self.p_charge_max_kw)
        p_min = np.minimum(p_min, 0.0)
        p_max = np.maximum(p_max, -self.p_charge_max_kw)
        p_max = np.maximum(p_max, p_min)
        if active is not None:
            p_min = np.where(active, p_min, 0.0)
            p_max = np.where(active, p_max, 0.0)
        return p_min, p_max

    # ----------------------------------------------------------------- step
    def step(self, p_ac_kw, dt_s: float, *, e_end_min_kwh=None, active=None) -> BatteryStepResult:
        """Apply grid-side powers for ``dt_s`` seconds; infeasible requests are limited.

        Parameters
        ----------
        p_ac_kw : array_like (N,)
            Requested grid-side power [kW] (+ = discharge into the grid).
        dt_s : float
            Step length [s] (> 0).
        e_end_min_kwh, active : see :meth:`power_bounds_kw`.

        Returns
        -------
        BatteryStepResult
            Applied power, which vehicles were limited and by how much, and energies.
        """
        if not dt_s > 0:
            raise ScenarioError(f"battery.step: dt_s {dt_s} must be positive")
        p_req = np.broadcast_to(np.asarray(p_ac_kw, dtype=np.float64), (self.n,))
        p_min, p_max = self.power_bounds_kw(dt_s, e_end_min_kwh=e_end_min_kwh, active=active)
        p = np.clip(p_req, p_min, p_max)
        p_lim = p_req - p
        limited = np.abs(p_lim) > 1e-9 * np.maximum(self.s_max_kva, 1.0)
        dt_h = dt_s / S_PER_H
        p_dc = self._dc_from_ac(p)
        if self.thevenin is None:
            p_chem = p_dc
            loss_kw = p_dc - p
        else:
            ocv, ocv_eff, r_eff = self._circuit_terms(dt_s)
            disc = np.maximum(ocv_eff**2 - 4 * r_eff * p_dc * 1000.0, 0.0)
            current_a = 2 * p_dc * 1000.0 / (ocv_eff + np.sqrt(disc))
            p_chem = ocv * current_a / 1000.0
            dissipated_j = self._r0 * current_a**2 * dt_s
            th = self.thevenin
            for k, (r_k, tau) in enumerate(((self._r1, th.tau1_s), (self._r2, th.tau2_s))):
                a = r_k * current_a
                b = self.v_rc_v[k] - a
                decay = np.exp(-dt_s / tau)
                # exact integral of v_k(t)^2 / R_k over the step
                int_v2 = (
                    a * a * dt_s
                    + 2 * a * b * tau * (1 - decay)
                    + b * b * tau / 2 * (1 - decay * decay)
                )
                dissipated_j = dissipated_j + np.where(
                    r_k > 0, int_v2 / np.where(r_k > 0, r_k, 1), 0
                )
                self.v_rc_v[k] = a + b * decay
            loss_kw = (p_dc - p) + dissipated_j / dt_s / 1000.0
        e_old = self.e_kwh
        # only rounding can push past a user bound here: clip to it, but never move a vehicle
        # that is already outside its limits (e.g. arrived below the reserve) back inside
        lo = np.minimum(self.e_floor_kwh, e_old)
        hi = np.maximum(self.e_ceiling_kwh, e_old)
        self.e_kwh = np.clip(e_old - p_chem * dt_h, lo, hi)
        e_in = np.maximum(-p, 0.0) * dt_h
        e_out = np.maximum(p, 0.0) * dt_h
        e_loss = loss_kw * dt_h
        return BatteryStepResult(
            p_ac_kw=p,
            limited=limited,
            p_limited_kw=np.where(limited, p_lim, 0.0),
            e_in_kwh=e_in,
            e_out_kwh=e_out,
            e_loss_kwh=e_loss,
        )
