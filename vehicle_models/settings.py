"""IEEE 1547-2018 inverter settings: category defaults, allowed ranges and validation.

Every grid-support function of a V2G charger (volt-var, volt-watt, constant power factor,
watt-var, frequency-droop, trip/ride-through, enter service) is parameterised by one frozen
dataclass here. :class:`InverterSettings` bundles them with the performance categories and is
what a scenario's ``[fleet.control]`` table turns into (:meth:`InverterSettings.from_dict`).

Voltages are per unit of nominal, frequencies in Hz, active power per unit of the unit's
active-power rating, reactive power per unit of its apparent-power rating (the standard's
bases), times in seconds.

Nominal frequency: every frequency setting follows the system's nominal frequency
``f_nominal_hz`` (:class:`GridCode`): at 60 Hz the IEEE 1547-2018 defaults and ranges below;
at 50 Hz a preset in the style of EN 50549-1:2019 (frequency droop LFSM-O/LFSM-U above
50.2 Hz / below 49.8 Hz with 5 % droop, settable 2-12 %; frequency trip outside 47.5-51.5 Hz;
reconnection window 49.5-50.2 Hz), documented in ``docs/controls.md``. Voltage functions are
per unit and keep the IEEE 1547-2018 defaults at both frequencies.

Defaults and ranges (clause / table of IEEE Std 1547-2018):

- volt-var: Table 8 (clause 5.3.3), Category A and B defaults, one column of allowed ranges;
- watt-var: Table 9 (clause 5.3.4); constant power factor: clause 5.3.2 (Table 7 capability);
- volt-watt: Table 10 (clause 5.4.2);
- voltage trip: Tables 11, 12, 13 (clause 6.4.1) for abnormal Categories I, II, III;
- voltage ride-through and momentary cessation: Tables 14, 15, 16 (clause 6.4.2);
- frequency trip: Table 18 (clause 6.5.1), frequency ride-through Table 19 (clause 6.5.2);
- frequency droop: Tables 24 (defaults) and 25 (ranges) (clause 6.5.2.7);
- enter service: Table 4 (clause 4.10.2) and clause 4.10.3 (delay, ramp).

The stagger and VSM sections are this project's own (not in the standard); their ranges are
engineering limits documented in ``docs/controls.md``.

References
----------
.. [1] IEEE Std 1547-2018, "IEEE Standard for Interconnection and Interoperability of
   Distributed Energy Resources with Associated Electric Power Systems Interfaces".
.. [2] EPRI, "IEEE 1547-2018 OpenDER Model", report 3002030962 (2023); the ``opender``
   package (``common_file_format.py``) uses the same defaults.
.. [3] EN 50549-1:2019, "Requirements for generating plants to be connected in parallel with
   distribution networks - Part 1: Connection to a LV distribution network", clauses 4.4.2
   (operating frequency range), 4.6.1 / 4.6.2 (power response to over- / under-frequency),
   4.9.3 (interface protection) and 4.10 (connection and reconnection).
.. [4] Commission Regulation (EU) 2016/631 (RfG), Article 13 and Table 2: minimum time
   periods of operation for a 50 Hz (Continental Europe) system.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, ClassVar

from grids.errors import ScenarioError, check_problems
from grids.params import Param

F_NOM_HZ = 60.0
"""Default nominal frequency [Hz] (IEEE 1547-2018 states its frequency settings for 60 Hz)."""


class GridCode(Enum):
    """Which standard's frequency settings a fleet follows (chosen by the nominal frequency).

    ``IEEE_1547_2018`` for 60 Hz systems; ``EN_50549_1`` (a preset in the style of
    EN 50549-1:2019, see ``docs/controls.md``) for 50 Hz systems.
    """

    IEEE_1547_2018 = "ieee_1547_2018"
    EN_50549_1 = "en_50549_1"

    @classmethod
    def for_frequency(cls, f_nominal_hz: float, *, path: str = "f_nominal_hz") -> GridCode:
        """The grid code of a system with nominal frequency ``f_nominal_hz``.

        Parameters
        ----------
        f_nominal_hz : float
            System nominal frequency [Hz]: 50 or 60.
        path : str
            Key path named in the error message.

        Returns
        -------
        GridCode
            ``IEEE_1547_2018`` at 60 Hz, ``EN_50549_1`` at 50 Hz.

        Raises
        ------
        ScenarioError
            For any other frequency (no preset exists for it).
        """
        if isinstance(f_nominal_hz, int | float) and not isinstance(f_nominal_hz, bool):
            if f_nominal_hz == 60.0:
                return cls.IEEE_1547_2018
            if f_nominal_hz == 50.0:
                return cls.EN_50549_1
        raise ScenarioError(
            f"{path}: {f_nominal_hz!r} Hz has no inverter-settings preset; the nominal "
            "frequency must be 50 (EN 50549-1 style) or 60 (IEEE 1547-2018)"
        )


class VoltageCategory(Enum):
    """Normal (voltage-regulation) performance category, IEEE 1547-2018 clause 5."""

    A = "A"
    B = "B"


class AbnormalCategory(Enum):
    """Abnormal (ride-through) performance category, IEEE 1547-2018 clause 6."""

    I = "I"  # noqa: E741 - the standard's name
    II = "II"
    III = "III"


class ControlFunction(Enum):
    """Grid-support functions an inverter can have enabled."""

    VOLT_VAR = "volt_var"
    VOLT_WATT = "volt_watt"
    FREQ_WATT = "freq_watt"
    CONSTANT_PF = "pf"
    WATT_VAR = "watt_var"


REACTIVE_FUNCTIONS = frozenset(
    {ControlFunction.VOLT_VAR, ControlFunction.CONSTANT_PF, ControlFunction.WATT_VAR}
)
"""At most one reactive-power mode may be active at a time (IEEE 1547-2018 clause 5.3.1)."""


class GridMode(Enum):
    """Grid-following (current source, PLL) or grid-forming (virtual synchronous machine)."""

    GRID_FOLLOWING = "grid_following"
    GRID_FORMING = "grid_forming"


class Priority(Enum):
    """Which of P and Q is kept when the apparent-power rating binds."""

    REACTIVE = "reactive"
    ACTIVE = "active"


class StaggerMode(Enum):
    """How a fleet disconnects when a trip condition is met (see :mod:`vehicle_models.stagger`)."""

    SIMULTANEOUS = "simultaneous"
    RAMP = "ramp"
    TIERED = "tiered"
    RANDOM = "random"


class Excitation(Enum):
    """Sign of the reactive power of the constant power factor mode."""

    ABSORB = "absorb"
    INJECT = "inject"


# --------------------------------------------------------------------------------------------
# range checking helpers
# --------------------------------------------------------------------------------------------


def _fmt(x: float) -> str:
    return f"{x:g}"


def _unit(name: str) -> str:
    """Unit of a settings field, from its name's suffix (shown in messages)."""
    if name.endswith("_pu") or name in ("k_of", "k_uf"):
        return "pu"
    if name.endswith("_hz"):
        return "Hz"
    if name.endswith("_s"):
        return "s"
    return ""


def _kind(default: Any) -> type:
    """Type a field is read as (``Param.kind``): its enum, ``bool``, ``int`` or ``float``."""
    if isinstance(default, Enum):
        return type(default)
    if isinstance(default, bool):
        return bool
    if isinstance(default, int):
        return int
    return float


def _check_range(
    problems: list[str], key: str, value: float, lo: float, hi: float, *, unit: str = ""
) -> None:
    """Append a problem if ``value`` is outside ``[lo, hi]`` (through :class:`grids.params.Param`).

    Dependent bounds such as ``v2 - 0.02`` are rounded to 12 decimals so that floating-point
    residue does not refuse a value the standard allows.
    """
    name = key.rsplit(".", 1)[-1]
    param = Param(name, unit=unit, lo=round(lo, 12), hi=round(hi, 12))
    param.check(value, key=key, problems=problems)


_ABSOLUTE_FREQUENCY_FIELDS = frozenset(
    {"of2_f_hz", "of1_f_hz", "uf1_f_hz", "uf2_f_hz", "f_low_hz", "f_high_hz"}
)
"""Settings that are frequencies (not deviations from nominal) [Hz]."""


def _other_system_problem(
    key: str, value: float, lo: float, hi: float, f_nominal_hz: float
) -> str | None:
    """A clear message for a frequency setting that belongs to the other nominal frequency.

    50 Hz and 60 Hz settings are told apart by which side of 55 Hz they lie on (no setting of
    either standard comes near it).
    """
    other = 60.0 if f_nominal_hz == 50.0 else 50.0
    if (other > f_nominal_hz and value > 55.0) or (other < f_nominal_hz and value < 55.0):
        return (
            f"{key}: {_fmt(value)} Hz is a setting for a {_fmt(other)} Hz system, but the "
            f"system's nominal frequency is {_fmt(f_nominal_hz)} Hz "
            f"(expected a number in [{_fmt(lo)}, {_fmt(hi)}] [Hz])"
        )
    return None


class _Section:
    """Mixin: ``ranges`` gives each numeric field's allowed ``(lo, hi)``; ``problems`` checks."""

    def ranges(
        self, vcat: VoltageCategory, acat: AbnormalCategory, f_nominal_hz: float = F_NOM_HZ
    ) -> dict[str, tuple[float, float]]:  # pragma: no cover - overridden
        """Allowed ``(lo, hi)`` of every numeric field.

        Parameters
        ----------
        vcat : VoltageCategory
            Normal performance category.
        acat : AbnormalCategory
            Abnormal performance category.
        f_nominal_hz : float
            System nominal frequency [Hz].

        Returns
        -------
        dict
            ``field name -> (lo, hi)`` in the field's unit.
        """
        raise NotImplementedError

    def problems(
        self,
        path: str,
        *,
        voltage_category: VoltageCategory = VoltageCategory.B,
        abnormal_category: AbnormalCategory = AbnormalCategory.III,
        f_nominal_hz: float = F_NOM_HZ,
    ) -> list[str]:
        """Every out-of-range value of the section.

        Parameters
        ----------
        path : str
            Key path of the section (``"fleet.control.droop"``).
        voltage_category, abnormal_category : VoltageCategory, AbnormalCategory
            Categories that select the allowed ranges.
        f_nominal_hz : float
            System nominal frequency [Hz] (selects the frequency ranges, :class:`GridCode`).

        Returns
        -------
        list of str
            ``"<path>.<field>: <value> ... (allowed range ..)"`` per problem.
        """
        problems: list[str] = []
        ranges = self.ranges(voltage_category, abnormal_category, f_nominal_hz)
        for name, (lo, hi) in ranges.items():
            key = f"{path}.{name}"
            value = float(getattr(self, name))
            if name in _ABSOLUTE_FREQUENCY_FIELDS and math.isfinite(value):
                message = _other_system_problem(key, value, lo, hi, f_nominal_hz)
                if message is not None:
                    problems.append(message)
                    continue
            _check_range(problems, key, value, lo, hi, unit=_unit(name))
        return problems


# --------------------------------------------------------------------------------------------
# the sections
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VoltVarSettings(_Section):
    """Volt-var Q(V) curve, IEEE 1547-2018 clause 5.3.3, Table 8.

    ``v1_pu .. v4_pu`` are stated for ``v_ref_pu = 1``; the applied curve is shifted by
    ``v_ref_pu - 1`` (Table 8 states Category B points relative to VRef; same convention as
    EPRI OpenDER). ``q*_pu`` are per unit of apparent-power rating, positive = injection
    (capacitive). ``olrt_s`` is the open-loop response time (90 % of a step).
    ``v_ref_auto`` enables the autonomously adjusting reference voltage (clause 5.3.3): VRef
    follows a first-order low-pass of the measured voltage with time constant
    ``v_ref_tau_s`` (300-5000 s), limited to 0.95-1.05 pu.
    """

    v_ref_pu: float = 1.0
    v1_pu: float = 0.92
    v2_pu: float = 0.98
    v3_pu: float = 1.02
    v4_pu: float = 1.08
    q1_pu: float = 0.44
    q2_pu: float = 0.0
    q3_pu: float = 0.0
    q4_pu: float = -0.44
    olrt_s: float = 5.0
    v_ref_auto: bool = False
    v_ref_tau_s: float = 300.0

    @classmethod
    def defaults(cls, category: VoltageCategory = VoltageCategory.B) -> VoltVarSettings:
        """Table 8 defaults: Category A (0.9/1.0/1.0/1.1 pu, +-25 %, 10 s) or B.

        Parameters
        ----------
        category : VoltageCategory
            Normal performance category.

        Returns
        -------
        VoltVarSettings
        """
        if category is VoltageCategory.A:
            return cls(1.0, 0.90, 1.0, 1.0, 1.10, 0.25, 0.0, 0.0, -0.25, 10.0)
        return cls()

    def ranges(self, vcat, acat, f_nominal_hz=F_NOM_HZ):
        """Allowed ``(lo, hi)`` of every numeric field.

        Parameters
        ----------
        vcat : VoltageCategory
            Normal performance category.
        acat : AbnormalCategory
            Abnormal performance category.
        f_nominal_hz : float
            System nominal frequency [Hz].

        Returns
        -------
        dict
            ``field name -> (lo, hi)`` in the field's unit.
        """
        # Table 8 ranges (relative to VRef): V2 in [VRef-0.03, VRef], V3 in [VRef, VRef+0.03],
        # V1 in [VRef-0.18, V2-0.02], V4 in [V3+0.02, VRef+0.18]; Q within 100 % of the
        # reactive capability (here bounded by the apparent-power rating); Tr 1..90 s.
        return {
            "v_ref_pu": (0.95, 1.05),
            "v2_pu": (0.97, 1.0),
            "v3_pu": (1.0, 1.03),
            "v1_pu": (0.82, self.v2_pu - 0.02),
            "v4_pu": (self.v3_pu + 0.02, 1.18),
            "q1_pu": (0.0, 1.0),
            "q2_pu": (-1.0, 1.0),
            "q3_pu": (-1.0, 1.0),
            "q4_pu": (-1.0, 0.0),
            "olrt_s": (1.0, 90.0),
            "v_ref_tau_s": (300.0, 5000.0),
        }


@dataclass(frozen=True)
class VoltWattSettings(_Section):
    """Volt-watt P(V) limit, IEEE 1547-2018 clause 5.4.2, Table 10 (same for A and B).

    Full active power up to ``v1_pu``, falling linearly to ``p2_pu`` at ``v2_pu``. For a unit
    that can absorb active power (a V2G charger) the default P'2 is 0; negative ``p2_pu``
    (down to P'rated = -1) forces charging at high voltage.
    """

    v1_pu: float = 1.06
    v2_pu: float = 1.10
    p2_pu: float = 0.0
    olrt_s: float = 10.0

    @classmethod
    def defaults(cls, category: VoltageCategory = VoltageCategory.B) -> VoltWattSettings:
        """Table 10 defaults (identical for Category A and B).

        Parameters
        ----------
        category : VoltageCategory
            Normal performance category.

        Returns
        -------
        VoltWattSettings
        """
        return cls()

    def ranges(self, vcat, acat, f_nominal_hz=F_NOM_HZ):
        """Allowed ``(lo, hi)`` of every numeric field.

        Parameters
        ----------
        vcat : VoltageCategory
            Normal performance category.
        acat : AbnormalCategory
            Abnormal performance category.
        f_nominal_hz : float
            System nominal frequency [Hz].

        Returns
        -------
        dict
            ``field name -> (lo, hi)`` in the field's unit.
        """
        return {
            "v1_pu": (1.05, 1.09),
            "v2_pu": (self.v1_pu + 0.01, 1.10),
            "p2_pu": (-1.0, 1.0),
            "olrt_s": (0.5, 60.0),
        }


@dataclass(frozen=True)
class FreqWattSettings(_Section):
    """Frequency droop (frequency-watt), IEEE 1547-2018 clause 6.5.2.7, Tables 24 and 25.

    TOML section name ``droop``; ``db_hz`` and ``k`` set both directions at once.
    ``k_of``/``k_uf`` are per-unit frequency change per per-unit power change (0.05 = 5 %
    droop). ``f_meas_tau_s`` is the time constant of the first-order low-pass filter that
    models the frequency measurement (PLL) of a grid-following unit (not in the standard;
    a few cycles is typical).
    """

    db_of_hz: float = 0.036
    db_uf_hz: float = 0.036
    k_of: float = 0.05
    k_uf: float = 0.05
    olrt_s: float = 5.0
    f_meas_tau_s: float = 0.02

    aliases: ClassVar[dict[str, tuple[str, ...]]] = {
        "db_hz": ("db_of_hz", "db_uf_hz"),
        "k": ("k_of", "k_uf"),
    }

    @classmethod
    def defaults(
        cls,
        category: AbnormalCategory = AbnormalCategory.III,
        *,
        f_nominal_hz: float = F_NOM_HZ,
    ) -> FreqWattSettings:
        """Default droop for the abnormal category and the system's nominal frequency.

        Parameters
        ----------
        category : AbnormalCategory
            Abnormal performance category (the defaults are the same for every category).
        f_nominal_hz : float
            System nominal frequency [Hz].

        Returns
        -------
        FreqWattSettings
            60 Hz: IEEE 1547-2018 Table 24, 0.036 Hz deadband, 5 % droop, 5 s response.
            50 Hz: EN 50549-1 style LFSM-O / LFSM-U, thresholds 50.2 / 49.8 Hz (0.2 Hz
            deadband), 5 % droop, 2 s response (clauses 4.6.1, 4.6.2).
        """
        if GridCode.for_frequency(f_nominal_hz) is GridCode.EN_50549_1:
            return cls(db_of_hz=0.2, db_uf_hz=0.2, k_of=0.05, k_uf=0.05, olrt_s=2.0)
        return cls()

    def ranges(self, vcat, acat, f_nominal_hz=F_NOM_HZ):
        """Allowed ``(lo, hi)`` of every numeric field.

        Parameters
        ----------
        vcat : VoltageCategory
            Normal performance category.
        acat : AbnormalCategory
            Abnormal performance category.
        f_nominal_hz : float
            System nominal frequency [Hz].

        Returns
        -------
        dict
            ``field name -> (lo, hi)`` in the field's unit.
        """
        t_lo = 0.2 if acat is AbnormalCategory.III else 1.0
        if GridCode.for_frequency(f_nominal_hz) is GridCode.EN_50549_1:
            # EN 50549-1 4.6.1: LFSM-O threshold 50.2..52 Hz, droop 2..12 %; 4.6.2: LFSM-U
            # threshold 49.8..49.0 Hz (this preset's range), droop 2..12 %.
            return {
                "db_of_hz": (0.2, 2.0),
                "db_uf_hz": (0.2, 1.0),
                "k_of": (0.02, 0.12),
                "k_uf": (0.02, 0.12),
                "olrt_s": (t_lo, 10.0),
                "f_meas_tau_s": (0.0, 1.0),
            }
        # Table 25: db 0.017..1.0 Hz; k 0.03..0.05 (Cat I, II) or 0.02..0.05 (Cat III);
        # open-loop response time 1..10 s (Cat I, II) or 0.2..10 s (Cat III).
        k_lo = 0.02 if acat is AbnormalCategory.III else 0.03
        return {
            "db_of_hz": (0.017, 1.0),
            "db_uf_hz": (0.017, 1.0),
            "k_of": (k_lo, 0.05),
            "k_uf": (k_lo, 0.05),
            "olrt_s": (t_lo, 10.0),
            "f_meas_tau_s": (0.0, 1.0),
        }


@dataclass(frozen=True)
class ConstantPFSettings(_Section):
    """Constant power factor mode, IEEE 1547-2018 clause 5.3.2 (default mode: unity PF).

    Allowed: 0.90 injecting for both categories; absorbing down to 0.97 (Category A) or 0.90
    (Category B), following the minimum reactive capability of Table 7.
    """

    pf: float = 1.0
    excitation: Excitation = Excitation.ABSORB
    olrt_s: float = 5.0

    @classmethod
    def defaults(cls, category: VoltageCategory = VoltageCategory.B) -> ConstantPFSettings:
        """Unity power factor (the standard's default mode, clause 5.3.2).

        Parameters
        ----------
        category : VoltageCategory
            Normal performance category (the default is the same for A and B).

        Returns
        -------
        ConstantPFSettings
        """
        return cls()

    def ranges(self, vcat, acat, f_nominal_hz=F_NOM_HZ):
        """Allowed ``(lo, hi)`` of every numeric field.

        Parameters
        ----------
        vcat : VoltageCategory
            Normal performance category.
        acat : AbnormalCategory
            Abnormal performance category.
        f_nominal_hz : float
            System nominal frequency [Hz].

        Returns
        -------
        dict
            ``field name -> (lo, hi)`` in the field's unit.
        """
        lo = 0.97 if (vcat is VoltageCategory.A and self.excitation is Excitation.ABSORB) else 0.90
        return {"pf": (lo, 1.0), "olrt_s": (0.0, 10.0)}


@dataclass(frozen=True)
class WattVarSettings(_Section):
    """Watt-var Q(P) curve, IEEE 1547-2018 clause 5.3.4, Table 9.

    Generating side points ``p1..p3`` with ``q1..q3``; charging side ``p1_load..p3_load``
    (negative, P'), as in EPRI OpenDER. Q3 default: -0.25 (Category A) or -0.44 (B).
    """

    p1_pu: float = 0.2
    p2_pu: float = 0.5
    p3_pu: float = 1.0
    q1_pu: float = 0.0
    q2_pu: float = 0.0
    q3_pu: float = -0.44
    p1_load_pu: float = -0.2
    p2_load_pu: float = -0.5
    p3_load_pu: float = -1.0
    q1_load_pu: float = 0.0
    q2_load_pu: float = 0.0
    q3_load_pu: float = 0.44
    olrt_s: float = 5.0

    @classmethod
    def defaults(cls, category: VoltageCategory = VoltageCategory.B) -> WattVarSettings:
        """Table 9 defaults (Q3 = -0.25 for Category A, -0.44 for B).

        Parameters
        ----------
        category : VoltageCategory
            Normal performance category.

        Returns
        -------
        WattVarSettings
        """
        if category is VoltageCategory.A:
            return cls(q3_pu=-0.25)
        return cls()

    def ranges(self, vcat, acat, f_nominal_hz=F_NOM_HZ):
        """Allowed ``(lo, hi)`` of every numeric field.

        Parameters
        ----------
        vcat : VoltageCategory
            Normal performance category.
        acat : AbnormalCategory
            Abnormal performance category.
        f_nominal_hz : float
            System nominal frequency [Hz].

        Returns
        -------
        dict
            ``field name -> (lo, hi)`` in the field's unit.
        """
        return {
            "p2_pu": (0.4, 0.8),
            "p1_pu": (0.0, self.p2_pu - 0.1),
            "p3_pu": (self.p2_pu + 0.1, 1.0),
            "q1_pu": (-1.0, 1.0),
            "q2_pu": (-1.0, 1.0),
            "q3_pu": (-1.0, 1.0),
            "p2_load_pu": (-0.8, -0.4),
            "p1_load_pu": (self.p2_load_pu + 0.1, 0.0),
            "p3_load_pu": (-1.0, self.p2_load_pu - 0.1),
            "q1_load_pu": (-1.0, 1.0),
            "q2_load_pu": (-1.0, 1.0),
            "q3_load_pu": (-1.0, 1.0),
            "olrt_s": (0.0, 10.0),
        }


# Voltage trip defaults and ranges, Tables 11 (Cat I), 12 (Cat II), 13 (Cat III):
# name -> (default, lo, hi) per category.
_V_TRIP = {
    AbnormalCategory.I: {
        "ov2_v_pu": (1.20, 1.20, 1.20),
        "ov2_t_s": (0.16, 0.16, 0.16),
        "ov1_v_pu": (1.10, 1.10, 1.20),
        "ov1_t_s": (2.0, 1.0, 13.0),
        "uv1_v_pu": (0.70, 0.0, 0.88),
        "uv1_t_s": (2.0, 2.0, 21.0),
        "uv2_v_pu": (0.45, 0.0, 0.50),
        "uv2_t_s": (0.16, 0.16, 2.0),
    },
    AbnormalCategory.II: {
        "ov2_v_pu": (1.20, 1.20, 1.20),
        "ov2_t_s": (0.16, 0.16, 0.16),
        "ov1_v_pu": (1.10, 1.10, 1.20),
        "ov1_t_s": (2.0, 1.0, 13.0),
        "uv1_v_pu": (0.70, 0.0, 0.88),
        "uv1_t_s": (10.0, 2.0, 21.0),
        "uv2_v_pu": (0.45, 0.0, 0.50),
        "uv2_t_s": (0.16, 0.16, 2.0),
    },
    AbnormalCategory.III: {
        "ov2_v_pu": (1.20, 1.20, 1.20),
        "ov2_t_s": (0.16, 0.16, 0.16),
        "ov1_v_pu": (1.10, 1.10, 1.20),
        "ov1_t_s": (13.0, 1.0, 13.0),
        "uv1_v_pu": (0.88, 0.0, 0.88),
        "uv1_t_s": (21.0, 2.0, 50.0),
        "uv2_v_pu": (0.50, 0.0, 0.50),
        "uv2_t_s": (2.0, 0.16, 21.0),
    },
}
# Frequency trip, Table 18 (same defaults and ranges for all categories).
_F_TRIP = {
    "of2_f_hz": (62.0, 61.8, 66.0),
    "of2_t_s": (0.16, 0.16, 1000.0),
    "of1_f_hz": (61.2, 61.0, 66.0),
    "of1_t_s": (300.0, 180.0, 1000.0),
    "uf1_f_hz": (58.5, 50.0, 59.0),
    "uf1_t_s": (300.0, 180.0, 1000.0),
    "uf2_f_hz": (56.5, 50.0, 57.0),
    "uf2_t_s": (0.16, 0.16, 1000.0),
}
# Frequency trip of the 50 Hz preset (EN 50549-1 style interface protection, clause 4.9.3):
# the unit stays connected inside 47.5-51.5 Hz (the operating range of clause 4.4.2) and
# trips 0.1 s after leaving it; the second stages sit at the ends of the adjustable range.
_F_TRIP_50HZ = {
    "of2_f_hz": (52.0, 50.2, 52.0),
    "of2_t_s": (0.1, 0.1, 100.0),
    "of1_f_hz": (51.5, 50.2, 52.0),
    "of1_t_s": (0.1, 0.1, 100.0),
    "uf1_f_hz": (47.5, 47.0, 49.8),
    "uf1_t_s": (0.1, 0.1, 100.0),
    "uf2_f_hz": (47.0, 47.0, 49.8),
    "uf2_t_s": (0.1, 0.1, 100.0),
}


def _frequency_trip_table(f_nominal_hz: float) -> dict[str, tuple[float, float, float]]:
    """``name -> (default, lo, hi)`` of the frequency trip settings at ``f_nominal_hz``."""
    if GridCode.for_frequency(f_nominal_hz) is GridCode.EN_50549_1:
        return _F_TRIP_50HZ
    return _F_TRIP


# Momentary cessation thresholds (Tables 14-16): Cat III ceases below 0.50 pu and above
# 1.10 pu; every category ceases to energize above 1.20 pu. Cat II may cease in its
# permissive-operation region below 0.50 pu. 0.0 disables low-voltage cessation (Cat I).
_MC = {
    AbnormalCategory.I: {"mc_low_v_pu": (0.0, 0.0, 0.5), "mc_high_v_pu": (1.20, 1.10, 1.20)},
    AbnormalCategory.II: {"mc_low_v_pu": (0.50, 0.0, 0.5), "mc_high_v_pu": (1.20, 1.10, 1.20)},
    AbnormalCategory.III: {"mc_low_v_pu": (0.50, 0.0, 0.5), "mc_high_v_pu": (1.10, 1.10, 1.20)},
}


@dataclass(frozen=True)
class TripSettings(_Section):
    """Voltage and frequency trip settings with clearing times, plus momentary cessation.

    Voltage: Tables 11-13 (clause 6.4.1); frequency: Table 18 (clause 6.5.1). A unit trips
    when its condition (``v > ov*``, ``v < uv*``, ``f > of*``, ``f < uf*``) has lasted the
    clearing time ``*_t_s``. Momentary cessation (Tables 14-16): zero current while
    ``v < mc_low_v_pu`` or ``v > mc_high_v_pu``, resumes when back (``mc_low_v_pu = 0``
    disables the low side). Defaults differ by abnormal category (Category III below).
    """

    ov2_v_pu: float = 1.20
    ov2_t_s: float = 0.16
    ov1_v_pu: float = 1.10
    ov1_t_s: float = 13.0
    uv1_v_pu: float = 0.88
    uv1_t_s: float = 21.0
    uv2_v_pu: float = 0.50
    uv2_t_s: float = 2.0
    of2_f_hz: float = 62.0
    of2_t_s: float = 0.16
    of1_f_hz: float = 61.2
    of1_t_s: float = 300.0
    uf1_f_hz: float = 58.5
    uf1_t_s: float = 300.0
    uf2_f_hz: float = 56.5
    uf2_t_s: float = 0.16
    mc_low_v_pu: float = 0.50
    mc_high_v_pu: float = 1.10

    @classmethod
    def defaults(
        cls, category: AbnormalCategory = AbnormalCategory.III, *, f_nominal_hz: float = F_NOM_HZ
    ) -> TripSettings:
        """Default trip settings.

        Parameters
        ----------
        category : AbnormalCategory
            Selects the voltage trip defaults of Table 11/12/13.
        f_nominal_hz : float
            System nominal frequency [Hz]: frequency trip of Table 18 at 60 Hz, the
            EN 50549-1 style preset (47.5 / 51.5 Hz, 0.1 s) at 50 Hz.

        Returns
        -------
        TripSettings
        """
        values = {k: v[0] for k, v in _V_TRIP[category].items()}
        values.update({k: v[0] for k, v in _frequency_trip_table(f_nominal_hz).items()})
        values.update({k: v[0] for k, v in _MC[category].items()})
        return cls(**values)

    @staticmethod
    def standard_ranges(
        category: AbnormalCategory, *, f_nominal_hz: float = F_NOM_HZ
    ) -> dict[str, tuple[float, float]]:
        """The allowed ``(lo, hi)`` of every field.

        Parameters
        ----------
        category : AbnormalCategory
            Abnormal performance category (Tables 11-13).
        f_nominal_hz : float
            System nominal frequency [Hz] (Table 18 at 60 Hz, the 50 Hz preset at 50 Hz).

        Returns
        -------
        dict
            ``name -> (lo, hi)`` in the field's unit.
        """
        table = {**_V_TRIP[category], **_frequency_trip_table(f_nominal_hz), **_MC[category]}
        return {k: (v[1], v[2]) for k, v in table.items()}

    def ranges(self, vcat, acat, f_nominal_hz=F_NOM_HZ):
        """Allowed ``(lo, hi)`` of every numeric field.

        Parameters
        ----------
        vcat : VoltageCategory
            Normal performance category.
        acat : AbnormalCategory
            Abnormal performance category.
        f_nominal_hz : float
            System nominal frequency [Hz].

        Returns
        -------
        dict
            ``field name -> (lo, hi)`` in the field's unit.
        """
        return self.standard_ranges(acat, f_nominal_hz=f_nominal_hz)

    def problems(
        self,
        path,
        *,
        voltage_category=VoltageCategory.B,
        abnormal_category=None,
        f_nominal_hz=F_NOM_HZ,
    ):
        """Out-of-range values plus the orderings of the two stages of each element.

        Parameters
        ----------
        path : str
            Key path of the section.
        voltage_category : VoltageCategory
            Normal performance category.
        abnormal_category : AbnormalCategory, optional
            Abnormal performance category (default III).
        f_nominal_hz : float
            System nominal frequency [Hz].

        Returns
        -------
        list of str
            One message per problem (key path, value, allowed range or the other key).
        """
        acat = abnormal_category or AbnormalCategory.III
        problems = super().problems(
            path, voltage_category=voltage_category, abnormal_category=acat,
            f_nominal_hz=f_nominal_hz,
        )  # fmt: skip
        # Ordering: the fast (2) stage must be further from nominal and not slower.
        pairs = [("ov1_v_pu", "ov2_v_pu"), ("uv2_v_pu", "uv1_v_pu"), ("of1_f_hz", "of2_f_hz")]
        pairs.append(("uf2_f_hz", "uf1_f_hz"))
        for low, high in pairs:
            if getattr(self, low) > getattr(self, high):
                problems.append(
                    f"{path}.{low}: {_fmt(getattr(self, low))} must not exceed "
                    f"{path}.{high} = {_fmt(getattr(self, high))}"
                )
        if self.mc_low_v_pu > 0.0 and self.mc_low_v_pu > self.uv1_v_pu:
            problems.append(
                f"{path}.mc_low_v_pu: {_fmt(self.mc_low_v_pu)} must not exceed "
                f"{path}.uv1_v_pu = {_fmt(self.uv1_v_pu)}"
            )
        return problems


@dataclass(frozen=True)
class EnterServiceSettings(_Section):
    """Enter service after a trip, IEEE 1547-2018 clause 4.10 (Table 4).

    The unit may re-enter when voltage is within ``[v_low_pu, v_high_pu]`` and frequency
    within ``[f_low_hz, f_high_hz]`` continuously for ``delay_s``; it then ramps its active
    power limit linearly from 0 to 1 over ``ramp_s`` (soft start).
    """

    v_low_pu: float = 0.917
    v_high_pu: float = 1.05
    f_low_hz: float = 59.5
    f_high_hz: float = 60.1
    delay_s: float = 300.0
    ramp_s: float = 300.0

    @classmethod
    def defaults(cls, *, f_nominal_hz: float = F_NOM_HZ) -> EnterServiceSettings:
        """Default enter-service window.

        Parameters
        ----------
        f_nominal_hz : float
            System nominal frequency [Hz].

        Returns
        -------
        EnterServiceSettings
            60 Hz: IEEE 1547-2018 Table 4 (59.5-60.1 Hz, 300 s delay, 300 s ramp).
            50 Hz: EN 50549-1 style reconnection (clause 4.10): 49.5-50.2 Hz observed for
            60 s, then at most 10 % of the rating per minute (600 s ramp); the voltage window
            stays the IEEE 1547-2018 one.
        """
        if GridCode.for_frequency(f_nominal_hz) is GridCode.EN_50549_1:
            return cls(f_low_hz=49.5, f_high_hz=50.2, delay_s=60.0, ramp_s=600.0)
        return cls()

    def ranges(self, vcat, acat, f_nominal_hz=F_NOM_HZ):
        """Allowed ``(lo, hi)`` of every numeric field.

        Parameters
        ----------
        vcat : VoltageCategory
            Normal performance category.
        acat : AbnormalCategory
            Abnormal performance category.
        f_nominal_hz : float
            System nominal frequency [Hz].

        Returns
        -------
        dict
            ``field name -> (lo, hi)`` in the field's unit.
        """
        if GridCode.for_frequency(f_nominal_hz) is GridCode.EN_50549_1:
            f_low, f_high = (47.5, 50.0), (50.0, 51.5)
        else:
            f_low, f_high = (59.0, 59.9), (60.1, 61.0)
        return {
            "v_low_pu": (0.88, 0.95),
            "v_high_pu": (1.05, 1.06),
            "f_low_hz": f_low,
            "f_high_hz": f_high,
            "delay_s": (0.0, 600.0),
            "ramp_s": (1.0, 1000.0),
        }


@dataclass(frozen=True)
class StaggerSettings(_Section):
    """Staggered disconnection of a fleet (project option; see :mod:`vehicle_models.stagger`).

    - ``simultaneous``: every unit uses the configured trip settings (the standard's model);
    - ``ramp``: a unit whose trip timer expires ramps its output to zero over ``ramp_s``
      instead of dropping it (not compliant with the clearing times; a study option);
    - ``tiered``: ``n_tiers`` deterministic tiers spread thresholds by up to ``v_spread_pu``
      / ``f_spread_hz`` and clearing times by up to ``t_spread_frac`` (relative) towards the
      ride-through side, clipped to the standard's adjustable range;
    - ``random``: the same intervals, sampled uniformly per unit with the bank's seed.
    """

    mode: StaggerMode = StaggerMode.SIMULTANEOUS
    ramp_s: float = 5.0
    n_tiers: int = 4
    v_spread_pu: float = 0.05
    f_spread_hz: float = 0.5
    t_spread_frac: float = 1.0

    @classmethod
    def defaults(cls) -> StaggerSettings:
        """Simultaneous disconnection (the standard's model; the spreads apply to other modes).

        Returns
        -------
        StaggerSettings
        """
        return cls()

    def ranges(self, vcat, acat, f_nominal_hz=F_NOM_HZ):
        """Allowed ``(lo, hi)`` of every numeric field.

        Parameters
        ----------
        vcat : VoltageCategory
            Normal performance category.
        acat : AbnormalCategory
            Abnormal performance category.
        f_nominal_hz : float
            System nominal frequency [Hz].

        Returns
        -------
        dict
            ``field name -> (lo, hi)`` in the field's unit.
        """
        return {
            "ramp_s": (0.1, 600.0),
            "n_tiers": (1, 1000),
            "v_spread_pu": (0.0, 0.5),
            "f_spread_hz": (0.0, 5.0),
            "t_spread_frac": (0.0, 10.0),
        }


@dataclass(frozen=True)
class VsmSettings(_Section):
    """Grid-forming virtual synchronous machine (project option; see :mod:`vehicle_models.vsm`).

    ``h_s`` emulated inertia constant [s] and ``d_pu`` damping [pu power / pu frequency], both
    on the fleet's own rating; ``x_pu`` the coupling reactance [pu] between the virtual EMF
    and the grid. ``d_pu = 1/m_p`` of an equivalent droop (20 = 5 % droop).
    """

    h_s: float = 2.0
    d_pu: float = 20.0
    x_pu: float = 0.15

    @classmethod
    def defaults(cls) -> VsmSettings:
        """H = 2 s, D = 20 (5 % droop equivalent), x = 0.15 pu.

        Returns
        -------
        VsmSettings
        """
        return cls()

    def ranges(self, vcat, acat, f_nominal_hz=F_NOM_HZ):
        """Allowed ``(lo, hi)`` of every numeric field.

        Parameters
        ----------
        vcat : VoltageCategory
            Normal performance category.
        acat : AbnormalCategory
            Abnormal performance category.
        f_nominal_hz : float
            System nominal frequency [Hz].

        Returns
        -------
        dict
            ``field name -> (lo, hi)`` in the field's unit.
        """
        return {"h_s": (0.05, 20.0), "d_pu": (0.0, 200.0), "x_pu": (0.01, 1.0)}


_SECTIONS: dict[str, str] = {
    # TOML sub-table name -> InverterSettings attribute
    "volt_var": "volt_var",
    "volt_watt": "volt_watt",
    "droop": "freq_watt",
    "pf": "pf",
    "watt_var": "watt_var",
    "trip": "trip",
    "enter_service": "enter_service",
    "stagger": "stagger",
    "vsm": "vsm",
}


@dataclass(frozen=True)
class InverterSettings:
    """All settings of one inverter type (a fleet shares one).

    Build with :meth:`defaults` or :meth:`from_dict` (which validates); direct construction
    is not validated until :meth:`problems`/:meth:`validate` (``InverterBank`` validates).

    Parameters
    ----------
    voltage_category, abnormal_category : VoltageCategory, AbnormalCategory
        Performance categories (IEEE 1547-2018 clauses 5 and 6).
    mode : GridMode
        Grid-following or grid-forming.
    priority : Priority
        Which of P and Q is kept at the apparent-power limit.
    functions : frozenset of ControlFunction
        Enabled grid-support functions.
    volt_var, volt_watt, freq_watt, pf, watt_var, trip, enter_service, stagger, vsm
        The sections (see their classes).
    f_nominal_hz : float
        System nominal frequency [Hz], 50 or 60. Every frequency setting (droop deadbands,
        trip thresholds, enter-service window, VSM base speed) is read against it, and the
        defaults and ranges follow its :class:`GridCode`.

    Examples
    --------
    >>> s = InverterSettings.defaults(f_nominal_hz=50.0)
    >>> s.grid_code.value, s.freq_watt.db_of_hz, s.trip.uf1_f_hz
    ('en_50549_1', 0.2, 47.5)
    """

    voltage_category: VoltageCategory = VoltageCategory.B
    abnormal_category: AbnormalCategory = AbnormalCategory.III
    mode: GridMode = GridMode.GRID_FOLLOWING
    priority: Priority = Priority.REACTIVE
    functions: frozenset[ControlFunction] = frozenset(
        {ControlFunction.VOLT_VAR, ControlFunction.FREQ_WATT}
    )
    volt_var: VoltVarSettings = field(default_factory=VoltVarSettings)
    volt_watt: VoltWattSettings = field(default_factory=VoltWattSettings)
    freq_watt: FreqWattSettings = field(default_factory=FreqWattSettings)
    pf: ConstantPFSettings = field(default_factory=ConstantPFSettings)
    watt_var: WattVarSettings = field(default_factory=WattVarSettings)
    trip: TripSettings = field(default_factory=TripSettings)
    enter_service: EnterServiceSettings = field(default_factory=EnterServiceSettings)
    stagger: StaggerSettings = field(default_factory=StaggerSettings)
    vsm: VsmSettings = field(default_factory=VsmSettings)
    f_nominal_hz: float = F_NOM_HZ

    @property
    def grid_code(self) -> GridCode:
        """The standard whose frequency defaults and ranges apply (from ``f_nominal_hz``)."""
        return GridCode.for_frequency(self.f_nominal_hz)

    # ---------------------------------------------------------------- construction
    @classmethod
    def defaults(
        cls,
        *,
        voltage_category: VoltageCategory | str = "B",
        abnormal_category: AbnormalCategory | str = "III",
        functions: frozenset[ControlFunction] | None = None,
        mode: GridMode | str = GridMode.GRID_FOLLOWING,
        priority: Priority | str = Priority.REACTIVE,
        f_nominal_hz: float = F_NOM_HZ,
    ) -> InverterSettings:
        """The standard's defaults for the given categories and nominal frequency.

        Parameters
        ----------
        voltage_category : VoltageCategory or str
            Normal performance category, ``"A"`` or ``"B"``.
        abnormal_category : AbnormalCategory or str
            Abnormal performance category, ``"I"``, ``"II"`` or ``"III"``.
        functions : iterable of ControlFunction, optional
            Enabled functions; default volt-var and frequency droop (both required of
            Category B / III units; reactive priority is the default for volt-var, clause 5.3).
        mode : GridMode or str
            Grid-following or grid-forming.
        priority : Priority or str
            P or Q priority at the apparent-power limit.
        f_nominal_hz : float
            System nominal frequency [Hz]: 60 gives the IEEE 1547-2018 frequency defaults,
            50 the EN 50549-1 style preset (:class:`GridCode`); anything else is a
            :class:`~grids.errors.ScenarioError`.

        Returns
        -------
        InverterSettings
        """
        GridCode.for_frequency(f_nominal_hz)
        f_nominal_hz = float(f_nominal_hz)
        vcat = VoltageCategory(voltage_category)
        acat = AbnormalCategory(abnormal_category)
        kwargs: dict[str, Any] = {}
        if functions is not None:
            kwargs["functions"] = frozenset(ControlFunction(f) for f in functions)
        return cls(
            voltage_category=vcat,
            abnormal_category=acat,
            mode=GridMode(mode),
            priority=Priority(priority),
            volt_var=VoltVarSettings.defaults(vcat),
            volt_watt=VoltWattSettings.defaults(vcat),
            freq_watt=FreqWattSettings.defaults(acat, f_nominal_hz=f_nominal_hz),
            pf=ConstantPFSettings.defaults(vcat),
            watt_var=WattVarSettings.defaults(vcat),
            trip=TripSettings.defaults(acat, f_nominal_hz=f_nominal_hz),
            enter_service=EnterServiceSettings.defaults(f_nominal_hz=f_nominal_hz),
            stagger=StaggerSettings.defaults(),
            vsm=VsmSettings.defaults(),
            f_nominal_hz=f_nominal_hz,
            **kwargs,
        )

    @classmethod
    def from_dict(
        cls, data: dict, *, path: str = "fleet.control", f_nominal_hz: float = F_NOM_HZ
    ) -> InverterSettings:
        """Build validated settings from a scenario's ``[fleet.control]`` table.

        Parameters
        ----------
        data : dict
            The ``[fleet.control]`` table (TOML types).
        path : str
            Key path used in messages.
        f_nominal_hz : float
            System nominal frequency [Hz] (the scenario's ``frequency.f0_hz`` /
            ``fleet.f_nominal_hz``): missing keys take the defaults of the chosen categories
            at this frequency, and frequency settings are checked against its ranges.

        Returns
        -------
        InverterSettings

        Raises
        ------
        ScenarioError
            Listing EVERY problem (unknown keys, wrong types, out-of-range values with the
            allowed range, frequency settings of the other nominal frequency), each named by
            its full key path.
        """
        GridCode.for_frequency(f_nominal_hz, path=f"{path} (nominal frequency)")
        f_nominal_hz = float(f_nominal_hz)
        problems: list[str] = []
        if not isinstance(data, dict):
            raise ScenarioError(f"{path}: expected a table, got {type(data).__name__}")
        top_keys = {"mode", "voltage_category", "abnormal_category", "priority", "functions"}
        for key in data:
            if key not in top_keys and key not in _SECTIONS:
                allowed = ", ".join(sorted(top_keys | set(_SECTIONS)))
                problems.append(f"{path}.{key}: unknown key (allowed: {allowed})")

        def enum_value(key: str, enum: type[Enum], default: Enum) -> Any:
            if key not in data:
                return default
            raw = data[key]
            try:
                return enum(raw.upper() if enum in (VoltageCategory, AbnormalCategory) else raw)
            except (ValueError, AttributeError):
                allowed = ", ".join(repr(m.value) for m in enum)
                problems.append(f"{path}.{key}: {raw!r} is not one of {allowed}")
                return default

        vcat = enum_value("voltage_category", VoltageCategory, VoltageCategory.B)
        acat = enum_value("abnormal_category", AbnormalCategory, AbnormalCategory.III)
        mode = enum_value("mode", GridMode, GridMode.GRID_FOLLOWING)
        priority = enum_value("priority", Priority, Priority.REACTIVE)
        base = cls.defaults(
            voltage_category=vcat, abnormal_category=acat, f_nominal_hz=f_nominal_hz
        )

        functions = base.functions
        if "functions" in data:
            raw_functions = data["functions"]
            if isinstance(raw_functions, str) or not isinstance(raw_functions, list | tuple):
                problems.append(
                    f"{path}.functions: expected a list such as ['volt_var', 'freq_watt'], "
                    f"got {raw_functions!r}"
                )
            else:
                parsed = set()
                for item in raw_functions:
                    try:
                        parsed.add(ControlFunction(item))
                    except ValueError:
                        allowed = ", ".join(repr(m.value) for m in ControlFunction)
                        problems.append(f"{path}.functions: {item!r} is not one of {allowed}")
                functions = frozenset(parsed)

        sections: dict[str, Any] = {}
        for toml_name, attr in _SECTIONS.items():
            default_section = getattr(base, attr)
            raw = data.get(toml_name, {})
            if not isinstance(raw, dict):
                problems.append(f"{path}.{toml_name}: expected a table, got {raw!r}")
                raw = {}
            sections[attr] = _parse_section(default_section, raw, f"{path}.{toml_name}", problems)

        settings = cls(
            voltage_category=vcat,
            abnormal_category=acat,
            mode=mode,
            priority=priority,
            functions=functions,
            f_nominal_hz=f_nominal_hz,
            **sections,
        )
        problems.extend(settings.problems(path))
        check_problems(problems, ScenarioError, f"invalid inverter settings in {path}")
        return settings

    # ---------------------------------------------------------------- validation / export
    def problems(self, path: str = "fleet.control") -> list[str]:
        """Every out-of-range setting.

        Parameters
        ----------
        path : str
            Key path of the table.

        Returns
        -------
        list of str
            One message per problem: full key path, value, allowed range.
        """
        problems: list[str] = []
        try:
            GridCode.for_frequency(self.f_nominal_hz, path=f"{path} (nominal frequency)")
        except ScenarioError as error:
            return [str(error)]
        reactive = sorted(f.value for f in self.functions & REACTIVE_FUNCTIONS)
        if len(reactive) > 1:
            problems.append(
                f"{path}.functions: at most one reactive-power mode may be enabled "
                f"(IEEE 1547-2018 clause 5.3.1), got {reactive}"
            )
        for toml_name, attr in _SECTIONS.items():
            problems.extend(
                getattr(self, attr).problems(
                    f"{path}.{toml_name}",
                    voltage_category=self.voltage_category,
                    abnormal_category=self.abnormal_category,
                    f_nominal_hz=self.f_nominal_hz,
                )
            )
        return problems

    def validate(self, path: str = "fleet.control") -> InverterSettings:
        """Check every setting.

        Parameters
        ----------
        path : str
            Key path used in messages.

        Returns
        -------
        InverterSettings
            ``self`` when valid.

        Raises
        ------
        ScenarioError
            Listing every problem.
        """
        check_problems(self.problems(path), ScenarioError, f"invalid inverter settings in {path}")
        return self

    def to_dict(self) -> dict:
        """The ``[fleet.control]`` table (TOML-ready: enums as strings, sorted function list).

        The nominal frequency is the system's, not part of the table:
        ``InverterSettings.from_dict(s.to_dict(), f_nominal_hz=s.f_nominal_hz) == s``.

        Returns
        -------
        dict
            Nested tables by TOML section name.
        """
        out: dict[str, Any] = {
            "mode": self.mode.value,
            "voltage_category": self.voltage_category.value,
            "abnormal_category": self.abnormal_category.value,
            "priority": self.priority.value,
            "functions": sorted(f.value for f in self.functions),
        }
        for toml_name, attr in _SECTIONS.items():
            section = getattr(self, attr)
            table = {}
            for f in dataclasses.fields(section):
                value = getattr(section, f.name)
                table[f.name] = value.value if isinstance(value, Enum) else value
            out[toml_name] = table
        return out

    def with_functions(
        self,
        functions: frozenset[ControlFunction] | set[ControlFunction],
        *,
        mode: GridMode | None = None,
    ) -> InverterSettings:
        """These settings with other enabled functions (and optionally another grid mode).

        A study deriving its cases from a scenario's parsed settings uses this instead of
        re-reading the ``[fleet.control]`` table.

        Parameters
        ----------
        functions : set of ControlFunction
            The functions enabled in the copy.
        mode : GridMode, optional
            Grid mode of the copy (default: unchanged).

        Returns
        -------
        InverterSettings
            A copy; every other setting is unchanged.
        """
        changes: dict[str, Any] = {"functions": frozenset(ControlFunction(f) for f in functions)}
        if mode is not None:
            changes["mode"] = GridMode(mode)
        return dataclasses.replace(self, **changes)

    def with_tables(self, tables: dict, *, path: str = "fleet.control") -> InverterSettings:
        """These settings with some keys of some sections given as TOML tables.

        Each table is read over the section's current values, as
        :meth:`from_dict` reads ``[fleet.control.<section>]`` over the defaults (same key
        checks, same ranges), e.g. a study's own ``[contingency.trip]`` keys.

        Parameters
        ----------
        tables : dict
            Section name (``"trip"``, ``"stagger"``, ...) -> table of keys to change.
        path : str
            Key path of the tables, used in messages (``"contingency"``).

        Returns
        -------
        InverterSettings
            A validated copy.

        Raises
        ------
        ScenarioError
            Listing every problem (unknown section or key, wrong type, out of range).
        """
        problems: list[str] = []
        changes: dict[str, Any] = {}
        for toml_name, raw in tables.items():
            attr = _SECTIONS.get(toml_name)
            if attr is None:
                allowed = ", ".join(sorted(_SECTIONS))
                problems.append(f"{path}.{toml_name}: unknown section (allowed: {allowed})")
            elif not isinstance(raw, dict):
                problems.append(f"{path}.{toml_name}: expected a table, got {raw!r}")
            else:
                section = getattr(self, attr)
                changes[attr] = _parse_section(section, raw, f"{path}.{toml_name}", problems)
        check_problems(problems, ScenarioError, f"invalid inverter settings in {path}")
        return dataclasses.replace(self, **changes).validate(path)

    def has(self, function: ControlFunction) -> bool:
        """Whether ``function`` is enabled.

        Parameters
        ----------
        function : ControlFunction
            The function asked about.

        Returns
        -------
        bool
        """
        return function in self.functions


def _parse_section(default: Any, raw: dict, path: str, problems: list[str]) -> Any:
    """Override ``default`` (a section dataclass) with ``raw``; report unknown/bad keys."""
    names = {f.name: f for f in dataclasses.fields(default)}
    aliases: dict[str, tuple[str, ...]] = getattr(type(default), "aliases", {})
    values: dict[str, Any] = {}
    for key, value in raw.items():
        targets = aliases.get(key, (key,))
        if key in aliases:
            clash = [t for t in targets if t in raw]
            if clash:
                problems.append(f"{path}.{key}: give either {key} or {', '.join(clash)}, not both")
                continue
        if targets[0] not in names:
            allowed = ", ".join(sorted(set(names) | set(aliases)))
            problems.append(f"{path}.{key}: unknown key (allowed: {allowed})")
            continue
        param = Param(targets[0], getattr(default, targets[0]),
                      kind=_kind(getattr(default, targets[0])))  # fmt: skip
        n_before = len(problems)
        parsed: Any = param.check(value, key=f"{path}.{key}", problems=problems)
        if len(problems) > n_before:
            continue
        for target in targets:
            values[target] = parsed
    return dataclasses.replace(default, **values)


__all__ = [
    "F_NOM_HZ",
    "REACTIVE_FUNCTIONS",
    "AbnormalCategory",
    "ConstantPFSettings",
    "ControlFunction",
    "EnterServiceSettings",
    "Excitation",
    "FreqWattSettings",
    "GridCode",
    "GridMode",
    "InverterSettings",
    "Priority",
    "StaggerMode",
    "StaggerSettings",
    "TripSettings",
    "VoltVarSettings",
    "VoltWattSettings",
    "VoltageCategory",
    "VsmSettings",
    "WattVarSettings",
]
