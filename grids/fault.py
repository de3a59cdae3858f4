"""Balanced three-phase fault: retained voltage at every bus and the fault current.

For a bolted or impedance fault at bus ``f`` the network is linear once every bus injection
is replaced by an element of the admittance matrix, so the voltages during the fault follow
from the pre-fault state by superposition (Grainger & Stevenson 1994, ch. 10):

    V_k = V_k,pre − Z_kf · V_f,pre / (Z_ff + Z_fault),       I_f = V_f,pre / (Z_ff + Z_fault)

with ``Z = Y⁻¹`` the bus impedance matrix of the network including the source impedance of the
external grid. Two ways of building ``Y`` and ``V_pre`` are offered (:class:`FaultMethod`):

``SUPERPOSITION``
    The pre-fault state is a power flow (the caller's, with its fleet injection, or the net's
    own loads); lines keep their capacitance, transformers their magnetising branch and tap;
    every bus's net injection ``S_k`` becomes the constant admittance that draws it at the
    pre-fault voltage, ``y_k = −conj(S_k) / |V_k,pre|²`` (loads and generation alike, the
    rule of pandapower's superposition method "type C"). This is the sag a vehicle sees.
``IEC_60909``
    The equivalent voltage source of IEC 60909-0:2016: ``c·U_n/√3`` at the fault, every bus at
    ``c`` before the fault, loads and line capacitances neglected, transformer magnetising
    branches and taps neglected, transformer impedances corrected by
    ``K_T = 0.95 c_max / (1 + 0.6 x_T)`` (§6.3.3). Its fault current is the standard's
    initial symmetrical short-circuit current ``I_k''`` (``ikss``).

The external grid (pandapower ``ext_grid``) is a source behind ``Z_Q = c·U_n²/S''_kQ`` with
``R_Q/X_Q = rx_max`` (IEC 60909-0 §6.2, from ``s_sc_max_mva`` and ``rx_max``; both may be
given explicitly when the net lacks them).

Inverter fault current. The V2G inverters' contribution is not modelled as an extra source:
in ``SUPERPOSITION`` their pre-fault injection is part of the bus admittance like any other
injection, in ``IEC_60909`` it is neglected, as IEC 60909-0 allows for sources whose current
is small beside the grid's: a charger is current-limited at 1.0-1.2 times its rating (a 7 kW
home charger about 0.3 A at 12.66 kV), and under momentary cessation it injects nothing at
all. Neglecting it gives the deeper (conservative) sag; ``FaultModel.solve(...,
i_inverter_a=...)`` bounds the error for given inverter currents
(:attr:`FaultResult.vm_lift_bound_pu`).

References
----------
IEC 60909-0:2016, *Short-circuit currents in three-phase a.c. systems - Part 0: Calculation
of currents*, §§ 4, 6.2, 6.3.3. J. J. Grainger, W. D. Stevenson, *Power System Analysis*,
McGraw-Hill, 1994, ch. 10 (the bus impedance matrix and symmetrical faults). Validated in
``tests/grids/test_fault.py`` against ``pandapower.shortcircuit.calc_sc`` and an AC power flow.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

import numpy as np

from grids.errors import FeederError, ScenarioError, check_problems
from grids.feeder_model import FeederModel

#: IEC 60909-0 Table 1: ``c_max`` for medium and high voltage (and low voltage with a 10 %
#: tolerance), the default voltage factor.
C_MAX = 1.1

#: Elements whose fault behaviour this module does not model (listed by name, never dropped):
#: synchronous generators (their subtransient reactance), motors, controlled elements.
_UNSUPPORTED = ("gen", "xward", "motor", "dcline", "vsc", "ssc", "svc", "tcsc")
#: ... and with the IEC 60909 method also three-winding transformers (their K_T differs).
_UNSUPPORTED_IEC = ("trafo3w",)


class FaultMethod(Enum):
    """How the network and its pre-fault state are built (see the module docstring)."""

    SUPERPOSITION = "superposition"
    IEC_60909 = "iec_60909"


@dataclass(frozen=True)
class FaultResult:
    """Voltages during a balanced fault and the fault current, one row per fault bus.

    Attributes
    ----------
    method : FaultMethod
        How the network was built.
    bus : numpy.ndarray (n_bus,) of int
        pandapower bus indices: the column order of :attr:`v_pu`.
    fault_bus : numpy.ndarray (n_fault,) of int
        The faulted bus of each row.
    v_pu : numpy.ndarray (n_fault, n_bus) of complex
        Retained phase voltage at every bus during the fault [pu of the bus's nominal
        voltage]; NaN at buses connected to no external grid.
    v_prefault_pu : numpy.ndarray (n_bus,) of complex
        The pre-fault voltage the superposition starts from [pu].
    i_fault_ka : numpy.ndarray (n_fault,) of complex
        Fault current [kA] (the initial symmetrical short-circuit current ``I_k''`` with
        ``IEC_60909``).
    z_thevenin_ohm : numpy.ndarray (n_fault,) of complex
        Driving-point impedance ``Z_ff`` of the network at the fault bus [ohm].
    z_fault_ohm : numpy.ndarray (n_fault,) of complex
        Fault impedance used [ohm].
    vm_lift_bound_pu : numpy.ndarray (n_fault, n_bus) or None
        With ``i_inverter_a`` given to :meth:`FaultModel.solve`: the largest change of every
        bus's retained voltage the neglected inverter fault currents could cause,
        ``Σ_j |Z'_kj| I_j`` [pu] (``Z'`` the impedance matrix of the faulted network).
    """

    method: FaultMethod
    bus: np.ndarray
    fault_bus: np.ndarray
    v_pu: np.ndarray
    v_prefault_pu: np.ndarray
    i_fault_ka: np.ndarray
    z_thevenin_ohm: np.ndarray
    z_fault_ohm: np.ndarray
    vm_lift_bound_pu: np.ndarray | None = None

    @property
    def vm_pu(self) -> np.ndarray:
        """Retained voltage magnitude [pu], shape ``(n_fault, n_bus)``."""
        return np.abs(self.v_pu)

    @property
    def ikss_ka(self) -> np.ndarray:
        """Magnitude of the fault current [kA], shape ``(n_fault,)``."""
        return np.abs(self.i_fault_ka)

    def vm_at(self, buses: Sequence[int] | np.ndarray) -> np.ndarray:
        """Retained voltage magnitude at some buses [pu], shape ``(n_fault, len(buses))``.

        Parameters
        ----------
        buses : sequence of int
            pandapower bus indices (each must be in :attr:`bus`).

        Returns
        -------
        numpy.ndarray
            ``|V|`` during each fault at those buses [pu].
        """
        cols = _columns(self.bus, buses, what="bus")
        return self.vm_pu[:, cols]


def _columns(index: np.ndarray, wanted, *, what: str) -> np.ndarray:
    lookup = {int(b): k for k, b in enumerate(index)}
    wanted = np.atleast_1d(np.asarray(wanted))
    missing = [int(b) for b in wanted if int(b) not in lookup]
    check_problems(
        [f"{what} {b} is not a bus of the feeder" for b in missing],
        FeederError,
        f"invalid {what}",
    )
    return np.array([lookup[int(b)] for b in wanted], dtype=np.intp)


def source_impedance_pu(
    s_sc_mva: np.ndarray, rx: np.ndarray, *, sn_mva: float, c: float = C_MAX
) -> np.ndarray:
    """Impedance of an external grid (network feeder) from its short-circuit power.

    Parameters
    ----------
    s_sc_mva : array_like
        Initial symmetrical short-circuit power ``S''_kQ`` at the connection point [MVA].
    rx : array_like
        Ratio ``R_Q / X_Q`` [-].
    sn_mva : float, keyword-only
        System base power [MVA].
    c : float, keyword-only
        Voltage factor ``c`` [-].

    Returns
    -------
    numpy.ndarray of complex
        ``Z_Q`` [pu on ``sn_mva`` and the bus's nominal voltage].

    Notes
    -----
    IEC 60909-0:2016 eq. (1)-(3): ``|Z_Q| = c U_nQ² / S''_kQ``, ``X_Q = |Z_Q| / √(1 + (R/X)²)``,
    ``R_Q = (R/X)·X_Q``; in per unit ``|Z_Q| = c · sn_mva / S''_kQ``.
    """
    s = np.asarray(s_sc_mva, dtype=float)
    rx = np.asarray(rx, dtype=float)
    z = c * sn_mva / s
    x = z / np.sqrt(1.0 + rx**2)
    return rx * x + 1j * x


def transformer_correction_factor(
    vk_percent: np.ndarray, vkr_percent: np.ndarray, *, c_max: float = C_MAX
) -> np.ndarray:
    """IEC 60909-0 impedance correction factor of network transformers ``K_T``.

    Parameters
    ----------
    vk_percent, vkr_percent : array_like
        Short-circuit voltage and its resistive part [% of rated voltage].
    c_max : float, keyword-only
        Voltage factor of the low-voltage side [-].

    Returns
    -------
    numpy.ndarray
        ``K_T = 0.95 c_max / (1 + 0.6 x_T)`` with ``x_T = √(vk² − vkr²)/100`` [-].

    Notes
    -----
    IEC 60909-0:2016 §6.3.3 eq. (12a), for the maximum short-circuit current.
    """
    vk = np.asarray(vk_percent, dtype=float) / 100.0
    vkr = np.asarray(vkr_percent, dtype=float) / 100.0
    x_t = np.sqrt(np.maximum(vk**2 - vkr**2, 0.0))
    return 0.95 * c_max / (1.0 + 0.6 * x_t)


class FaultModel:
    """Bus admittance of a feeder with its source impedance, for balanced fault calculations.

    Parameters
    ----------
    net : pandapowerNet
        The feeder (not modified; the model works on copies).
    method : FaultMethod, keyword-only
        ``SUPERPOSITION`` (pre-fault power flow, loads as admittances) or ``IEC_60909``
        (equivalent voltage source, loads neglected).
    voltage_factor_c : float, keyword-only
        IEC 60909 voltage factor ``c`` [-] in [0.9, 1.1]: in the source impedance ``Z_Q``
        (both methods), in ``K_T`` and as the equivalent source ``c U_n/√3`` (``IEC_60909``).
    s_sc_mva : float, keyword-only
        Short-circuit power of every external grid [MVA] when the net does not give
        ``ext_grid.s_sc_max_mva`` (or to override it).
    rx : float, keyword-only
        ``R/X`` of every external grid when the net does not give ``ext_grid.rx_max``.

    Raises
    ------
    FeederError
        The net lacks ``s_sc_max_mva`` or ``rx_max`` (and no override is given), has no
        external grid, or has elements whose fault behaviour is not modelled (listed).
    ScenarioError
        Arguments out of range.

    Examples
    --------
    >>> from grids.feeders import load_feeder
    >>> from grids.fault import FaultMethod, FaultModel
    >>> model = FaultModel(load_feeder("cigre_mv"), method=FaultMethod.IEC_60909)
    >>> round(float(model.solve([1]).ikss_ka[0]), 3)  # 20 kV bus behind a 25 MVA trafo
    6.482
    """

    def __init__(
        self,
        net,
        *,
        method: FaultMethod = FaultMethod.SUPERPOSITION,
        voltage_factor_c: float = C_MAX,
        s_sc_mva: float | None = None,
        rx: float | None = None,
    ) -> None:
        method = FaultMethod(method)
        problems = []
        if not (isinstance(voltage_factor_c, int | float) and 0.9 <= voltage_factor_c <= 1.1):
            problems.append(
                f"voltage_factor_c: {voltage_factor_c!r} (expected 0.9 to 1.1, IEC 60909 Table 1)"
            )
        if s_sc_mva is not None and not (math.isfinite(s_sc_mva) and s_sc_mva > 0):
            problems.append(f"s_sc_mva: {s_sc_mva!r} (expected a finite number > 0 MVA)")
        if rx is not None and not (math.isfinite(rx) and 0 <= rx <= 10):
            problems.append(f"rx: {rx!r} (expected R/X from 0 to 10)")
        check_problems(problems, ScenarioError, "invalid fault calculation arguments")
        self.name = str(net.name or "feeder")
        self.method = method
        self.c = float(voltage_factor_c)
        self.net = net
        self.sn_mva = float(net.sn_mva)
        self.bus = net.bus.index.to_numpy(dtype=np.int64)
        self._feeder_model: FeederModel | None = None
        self._check_elements(net)
        self._z_source_pu, self._source_bus = self._sources(net, s_sc_mva, rx)
        work = self._network_copy(net) if method is FaultMethod.IEC_60909 else copy.deepcopy(net)
        self._build(net, work)

    # ---- construction ------------------------------------------------------------------------
    def _check_elements(self, net) -> None:
        tables = _UNSUPPORTED + (_UNSUPPORTED_IEC if self.method is FaultMethod.IEC_60909 else ())
        found = [
            f"{table} ({int(net[table].in_service.astype(bool).sum())} in service)"
            for table in tables
            if table in net and len(net[table]) and net[table].in_service.astype(bool).any()
        ]
        if self.method is FaultMethod.SUPERPOSITION and len(net.load):
            # the pre-fault admittance is the injection at the pre-fault voltage: a
            # voltage-dependent (ZIP) load draws another power than its nominal one there
            zip_columns = [
                c
                for c in net.load.columns
                if c.startswith(("const_z", "const_i"))
                and ((net.load[c].fillna(0) != 0) & net.load.in_service.astype(bool)).any()
            ]
            found += [f"load.{c} (voltage-dependent loads)" for c in zip_columns]
        if found:
            raise FeederError(
                f"{self.name}: the fault calculation does not model these elements: "
                f"{', '.join(found)} (supported: lines, transformers, impedances, loads, "
                "static generators, storage, shunts, wards, switches, external grids)"
            )

    def _sources(self, net, s_sc_mva, rx) -> tuple[np.ndarray, np.ndarray]:
        ext = net.ext_grid[net.ext_grid.in_service.astype(bool)]
        if not len(ext):
            raise FeederError(f"{self.name}: no external grid in service (no fault source)")
        problems = []
        values = {}
        for field, override in (("s_sc_max_mva", s_sc_mva), ("rx_max", rx)):
            if override is not None:
                values[field] = np.full(len(ext), float(override))
                continue
            col = ext.get(field, None)
            data = (
                np.full(len(ext), np.nan)
                if col is None
                else np.asarray(col.to_numpy(), dtype=float)
            )
            bad = ~np.isfinite(data) | (data <= 0 if field == "s_sc_max_mva" else data < 0)
            if bad.any():
                names = ", ".join(str(i) for i in ext.index[bad])
                problems.append(
                    f"ext_grid.{field}: missing or invalid for external grid(s) {names} "
                    f"(needed for the source impedance; set it in the net or give "
                    f"{'s_sc_mva' if field == 's_sc_max_mva' else 'rx'} explicitly)"
                )
            values[field] = data
        check_problems(problems, FeederError, f"{self.name}: no short-circuit data")
        z = source_impedance_pu(
            values["s_sc_max_mva"], values["rx_max"], sn_mva=self.sn_mva, c=self.c
        )
        return z, ext.bus.to_numpy(dtype=np.int64)

    def _network_copy(self, net):
        """The IEC 60909 network: no loads, line capacitance, magnetising branch, taps;
        transformer impedances times ``K_T``."""
        work = copy.deepcopy(net)
        for table in ("load", "sgen", "storage", "shunt", "ward"):
            if table in work and len(work[table]):
                work[table]["in_service"] = False
        if len(work.line):
            work.line["c_nf_per_km"] = 0.0
            work.line["g_us_per_km"] = 0.0
        if len(work.trafo):
            kt = transformer_correction_factor(
                work.trafo.vk_percent.to_numpy(float),
                work.trafo.vkr_percent.to_numpy(float),
                c_max=self.c,
            )
            work.trafo["vk_percent"] = work.trafo.vk_percent * kt
            work.trafo["vkr_percent"] = work.trafo.vkr_percent * kt
            work.trafo["pfe_kw"] = 0.0
            work.trafo["i0_percent"] = 0.0
            if "tap_pos" in work.trafo:
                work.trafo["tap_pos"] = work.trafo["tap_neutral"]
            work.trafo["shift_degree"] = 0.0
        work.ext_grid["vm_pu"] = 1.0
        work.ext_grid["va_degree"] = 0.0
        return work

    def _build(self, net, work) -> None:
        import pandapower as pp

        options = {"calculate_voltage_angles": True, "numba": False, "max_iteration": 50}
        try:
            pp.runpp(work, **options)
        except pp.LoadflowNotConverged:
            # the admittance matrix does not depend on the injections: retry unloaded
            for table in ("load", "sgen", "storage"):
                if len(work[table]):
                    work[table]["scaling"] = 0.0
            try:
                pp.runpp(work, **options)
            except pp.LoadflowNotConverged:
                raise FeederError(
                    f"{self.name}: pandapower could not build the network (unloaded power "
                    "flow did not converge)"
                ) from None
        ppci = work._ppc["internal"]
        if abs(float(ppci["baseMVA"]) - self.sn_mva) > 1e-12 * self.sn_mva:
            raise FeederError(f"{self.name}: unexpected base power {ppci['baseMVA']}")
        n_int = ppci["bus"].shape[0]
        lookup = np.asarray(work._pd2ppc_lookups["bus"])
        internal = np.full(len(self.bus), -1, dtype=np.int64)
        inside = self.bus < len(lookup)
        internal[inside] = lookup[self.bus[inside]]
        internal[(internal < 0) | (internal >= n_int)] = -1
        internal[~net.bus.in_service.to_numpy(bool)] = -1
        self._internal = internal
        self._n_int = n_int
        self._ybus = np.asarray(ppci["Ybus"].toarray(), dtype=complex)
        # buses without a path to an external grid are left out of the solve (NaN results)
        from pandapower.topology import unsupplied_buses

        dead = internal < 0
        unsupplied = {int(b) for b in unsupplied_buses(net)}
        if unsupplied:
            dead |= np.isin(self.bus, list(unsupplied))
        self.dead_bus = dead
        # every internal bus stays in the solve: pandapower's model also holds auxiliary buses
        # (the open end of a line behind an open switch) that belong to no net bus
        self.vn_kv = net.bus.vn_kv.to_numpy(dtype=float)
        source_int = internal[_columns(self.bus, self._source_bus, what="external grid bus")]
        self._source_int = source_int
        y_source = np.zeros(n_int, dtype=complex)
        np.add.at(y_source, source_int, 1.0 / self._z_source_pu)
        self._y_source = y_source
        # IEC 60909: the equivalent source c U_n / sqrt(3) everywhere before the fault
        self._v_flat = np.full(len(self.bus), self.c + 0j)

    # ---- solve -------------------------------------------------------------------------------
    def prefault_state(self, p_mw=None, q_mvar=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Pre-fault voltages and injections from an AC power flow of the feeder.

        Parameters
        ----------
        p_mw, q_mvar : array_like (n_bus,), optional
            TOTAL net injection per bus in :attr:`bus` order [MW, Mvar] (injection
            positive); default the net's own elements.

        Returns
        -------
        v_pu : numpy.ndarray (n_bus,) of complex
            Pre-fault voltage [pu].
        p_mw, q_mvar : numpy.ndarray (n_bus,)
            The injections solved [MW, Mvar].

        Raises
        ------
        ConvergenceError
            The pre-fault power flow did not converge.
        """
        if self._feeder_model is None:  # built once, warm-started from then on
            self._feeder_model = FeederModel.from_net(self.net, validate=False)
        model = self._feeder_model
        p0, q0 = model.base_injection()
        p = p0 if p_mw is None else np.asarray(p_mw, dtype=float)
        q = q0 if q_mvar is None else np.asarray(q_mvar, dtype=float)
        result = model.solve(p, q)
        result.raise_if_failed(label=f"{self.name}: pre-fault power flow")
        v = result.vm_pu[0] * np.exp(1j * np.deg2rad(result.va_degree[0]))
        return v, p, q

    def _impedance_pu(self, fault_cols, z_fault_ohm, z_fault_pu) -> tuple[np.ndarray, np.ndarray]:
        n_fault = len(fault_cols)
        z_base = self.vn_kv[fault_cols] ** 2 / self.sn_mva
        problems = []
        if z_fault_ohm is not None and z_fault_pu is not None:
            problems.append("give the fault impedance in ohm or in pu, not both")
        raw = z_fault_pu if z_fault_pu is not None else z_fault_ohm
        raw = 0.0 if raw is None else raw
        try:
            z = np.broadcast_to(np.asarray(raw, dtype=complex), (n_fault,)).copy()
        except ValueError:
            problems.append(
                f"fault impedance: shape {np.shape(raw)} does not match {n_fault} fault bus(es)"
            )
            z = np.zeros(n_fault, dtype=complex)
        if not np.all(np.isfinite(z)):
            problems.append("fault impedance: not finite")
        elif np.any(z.real < 0) or np.any(z.imag < 0):
            problems.append(
                "fault impedance: resistance and reactance must be >= 0 (a passive arc or "
                "earth path)"
            )
        check_problems(problems, ScenarioError, "invalid fault impedance")
        if z_fault_pu is not None:
            return z, z * z_base
        return z / z_base, z

    def solve(
        self,
        fault_bus: Sequence[int] | np.ndarray | int,
        *,
        z_fault_ohm: complex | np.ndarray | None = None,
        z_fault_pu: complex | np.ndarray | None = None,
        v_prefault_pu: np.ndarray | None = None,
        p_mw: np.ndarray | None = None,
        q_mvar: np.ndarray | None = None,
        i_inverter_a: np.ndarray | None = None,
    ) -> FaultResult:
        """Retained voltages at every bus for a fault at each of ``fault_bus``.

        Parameters
        ----------
        fault_bus : int or sequence of int
            pandapower index of the faulted bus (one row of the result per bus).
        z_fault_ohm : complex or array_like (n_fault,), keyword-only
            Fault impedance ``R + jX`` [ohm] (default 0: a bolted fault).
        z_fault_pu : complex or array_like (n_fault,), keyword-only
            Or the fault impedance in pu of the fault bus's base ``U_n² / sn_mva``.
        v_prefault_pu : array_like (n_bus,) of complex, keyword-only
            ``SUPERPOSITION``: the pre-fault voltage per bus [pu] (e.g. from the caller's own
            power flow, :meth:`prefault_state`); default: an AC power flow of ``p_mw``,
            ``q_mvar``. Ignored with ``IEC_60909`` (flat ``c``).
        p_mw, q_mvar : array_like (n_bus,), keyword-only
            ``SUPERPOSITION``: the TOTAL net injection per bus of that pre-fault state
            [MW, Mvar] (default the net's own elements); it becomes the bus admittance
            ``y_k = −conj(S_k)/|V_k|²``.
        i_inverter_a : array_like (n_bus,), keyword-only
            Largest fault current of the inverters at each bus [A] (their current limit times
            the units connected; 0 elsewhere): gives
            :attr:`FaultResult.vm_lift_bound_pu`, the error bound of neglecting it.

        Returns
        -------
        FaultResult

        Raises
        ------
        FeederError
            A fault bus that is not in the feeder or is not supplied.
        ScenarioError
            A fault impedance or pre-fault state that is not valid.

        Notes
        -----
        ``Z[:, f]`` comes from one LU factorisation of ``Y`` solved for all fault columns at
        once; ``V = V_pre − Z[:, f] V_f,pre / (Z_ff + Z_fault)`` (Grainger & Stevenson ch. 10).
        """
        fault_bus = np.atleast_1d(np.asarray(fault_bus)).astype(np.int64)
        cols = _columns(self.bus, fault_bus, what="fault bus")
        dead = [int(b) for b, c in zip(fault_bus, cols, strict=True) if self.dead_bus[c]]
        check_problems(
            [f"fault bus {b} is not supplied by any external grid" for b in dead],
            FeederError,
            f"{self.name}: invalid fault bus",
        )
        zf_pu, zf_ohm = self._impedance_pu(cols, z_fault_ohm, z_fault_pu)
        n_int = self._n_int
        y = self._ybus + np.diag(self._y_source)
        if self.method is FaultMethod.SUPERPOSITION:
            v_pre, p, q = self._prefault(v_prefault_pu, p_mw, q_mvar)
            live = ~self.dead_bus
            s_int = np.zeros(n_int, dtype=complex)
            np.add.at(s_int, self._internal[live], (p[live] + 1j * q[live]) / self.sn_mva)
            v_int = np.ones(n_int, dtype=complex)
            v_int[self._internal[live]] = v_pre[live]
            y = y + np.diag(-np.conj(s_int) / np.abs(v_int) ** 2)
        else:
            v_pre = self._v_flat.copy()
            v_int = np.full(n_int, self.c + 0j)
        pos = np.arange(n_int)  # every internal bus is in the solve (see _build)
        f_int = self._internal[cols]
        inj_int, i_inj_pu = self._inverter_currents(i_inverter_a)
        rhs = np.zeros((n_int, len(cols) + len(inj_int)), dtype=complex)
        rhs[pos[f_int], np.arange(len(cols))] = 1.0
        rhs[pos[inj_int], len(cols) + np.arange(len(inj_int))] = 1.0
        try:
            z_all = np.linalg.solve(y, rhs)  # Z[:, f] and Z[:, j] of the inverter buses
        except np.linalg.LinAlgError:
            raise FeederError(
                f"{self.name}: singular admittance matrix (a part of the feeder with no "
                "path to the source impedance?)"
            ) from None
        z_cols, z_inj = z_all[:, : len(cols)], z_all[:, len(cols) :]
        z_ff = z_cols[pos[f_int], np.arange(len(cols))]
        i_f = v_int[f_int] / (z_ff + zf_pu)  # (n_fault,) pu
        v_live = v_int[None, :] - (z_cols * i_f[None, :]).T
        v_out = np.full((len(cols), len(self.bus)), np.nan + 0j)
        energized = ~self.dead_bus
        v_out[:, energized] = v_live[:, pos[self._internal[energized]]]
        lift = None
        if i_inverter_a is not None:
            # Z' = Z - Z[:, f] Z[f, :] / (Z_ff + Z_fault): the network with the fault in it
            lift = np.full((len(cols), len(self.bus)), np.nan)
            for k in range(len(cols)):
                z_f_row = z_inj[pos[f_int[k]], :]  # Z[f, j]
                z_prime = z_inj - np.outer(z_cols[:, k], z_f_row) / (z_ff[k] + zf_pu[k])
                bound = np.abs(z_prime) @ i_inj_pu
                lift[k, energized] = bound[pos[self._internal[energized]]]
        z_base = self.vn_kv[cols] ** 2 / self.sn_mva
        i_base_ka = self.sn_mva / (math.sqrt(3.0) * self.vn_kv[cols])
        return FaultResult(
            method=self.method,
            bus=self.bus,
            fault_bus=fault_bus,
            v_pu=v_out,
            v_prefault_pu=v_pre,
            i_fault_ka=i_f * i_base_ka,
            z_thevenin_ohm=z_ff * z_base,
            z_fault_ohm=zf_ohm,
            vm_lift_bound_pu=lift,
        )

    def _inverter_currents(self, i_inverter_a) -> tuple[np.ndarray, np.ndarray]:
        """Internal buses with inverter current and that current [pu of each bus's base]."""
        if i_inverter_a is None:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        i_a = np.asarray(i_inverter_a, dtype=float)
        if i_a.shape != (len(self.bus),) or not np.all(np.isfinite(i_a)) or np.any(i_a < 0):
            raise ScenarioError(
                f"i_inverter_a: expected {len(self.bus)} finite currents >= 0 A (one per bus), "
                f"got shape {i_a.shape}"
            )
        i_base_a = self.sn_mva * 1e3 / (math.sqrt(3.0) * self.vn_kv)
        keep = (i_a > 0) & ~self.dead_bus
        current = np.zeros(self._n_int)
        np.add.at(current, self._internal[keep], i_a[keep] / i_base_a[keep])
        inj = np.flatnonzero(current)
        return inj, current[inj]

    def _prefault(self, v_prefault_pu, p_mw, q_mvar):
        n = len(self.bus)
        if v_prefault_pu is None:
            return self.prefault_state(p_mw, q_mvar)
        problems = []
        v = np.asarray(v_prefault_pu, dtype=complex)
        if v.shape != (n,):
            problems.append(f"v_prefault_pu: shape {v.shape}, expected ({n},)")
        arrays = []
        for name, value in (("p_mw", p_mw), ("q_mvar", q_mvar)):
            if value is None:
                problems.append(f"{name}: required with v_prefault_pu (the pre-fault injection)")
                arrays.append(np.zeros(n))
                continue
            a = np.asarray(value, dtype=float)
            if a.shape != (n,) or not np.all(np.isfinite(a)):
                problems.append(f"{name}: expected {n} finite values, got shape {a.shape}")
            arrays.append(a)
        if not problems:
            live = ~self.dead_bus
            vm = np.abs(v[live])
            if not np.all(np.isfinite(vm)) or np.any(vm < 0.5) or np.any(vm > 1.5):
                problems.append(
                    "v_prefault_pu: every supplied bus needs a plausible pre-fault voltage "
                    "(0.5 to 1.5 pu)"
                )
        check_problems(problems, ScenarioError, "invalid pre-fault state")
        return v, arrays[0], arrays[1]


__all__ = [
    "C_MAX",
    "FaultMethod",
    "FaultModel",
    "FaultResult",
    "source_impedance_pu",
    "transformer_correction_factor",
]
