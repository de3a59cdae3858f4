"""Names the hosting-capacity modules share: the study's modes, methods and controls, the
power-factor conversion and the argument checks.

It sits below :mod:`studies.hosting_capacity` and :mod:`studies.hosting_capacity_stochastic`
so that neither imports the other (no import circle).
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from grids.errors import ScenarioError, check_problems
from grids.params import Param, is_finite_number
from studies.hosting_capacity_engine import Binding, check_value
from vehicle_models.controls import constant_pf_q_pu
from vehicle_models.settings import ConstantPFSettings, Excitation

__all__ = [
    "DEFAULT_SCREEN_MARGIN",
    "DEFAULT_TOLERANCE_MW",
    "Binding",
    "Control",
    "Method",
    "Mode",
    "check_arguments",
    "check_pf",
    "is_finite_number",
    "parse_enum",
    "q_per_p_from_pf",
]


class Mode(Enum):
    """What is added at a bus: V2G/DER export (injection > 0) or EV charging import (< 0)."""

    EXPORT = "export"
    IMPORT = "import"


class Method(Enum):
    """Screen only (LinDistFlow), AC only (bisection from 0), or screen then AC confirmation."""

    SCREEN = "screen"
    AC = "ac"
    SCREEN_AC = "screen+ac"


class Control(Enum):
    """Inverter control of the added units (IEEE 1547-2018 settings of :mod:`vehicle_models`)."""

    NONE = "none"
    VOLT_VAR_A = "volt_var_a"
    VOLT_VAR_B = "volt_var_b"
    VOLT_WATT = "volt_watt"


DEFAULT_TOLERANCE_MW = 0.001


def parse_enum(cls: type[Enum], value: Any, name: str) -> Any:
    """``cls(value)`` with a clear :class:`ScenarioError` naming the allowed values.

    Parameters
    ----------
    cls : type of Enum
        The enum.
    value : Any
        A member or its value.
    name : str
        Key or option name for the message.

    Returns
    -------
    Enum member
    """
    problems: list[str] = []
    member = Param(name, kind=cls).check(value, key=name, problems=problems)
    check_problems(problems, ScenarioError, f"invalid {name}")
    return member


DEFAULT_SCREEN_MARGIN = 0.25


def q_per_p_from_pf(pf: float) -> float:
    """Reactive per active power [Mvar/MW] of a fixed power factor (the constant-PF mode).

    ``pf > 0`` absorbs reactive power (inductive, lowers the voltage), ``pf < 0`` injects it;
    ``|pf| = 1`` is unity. Evaluated with :func:`vehicle_models.controls.constant_pf_q_pu`.

    Parameters
    ----------
    pf : float
        Power factor [-], ``0 < |pf| <= 1``.

    Returns
    -------
    float
        ``Q / |P|`` [Mvar/MW], negative when absorbing.
    """
    excitation = Excitation.ABSORB if pf > 0 else Excitation.INJECT
    settings = ConstantPFSettings(pf=min(1.0, abs(pf)), excitation=excitation)
    return float(constant_pf_q_pu(1.0, settings))


#: Most Monte Carlo scenarios a study accepts (about a minute per 1000 on a 33-bus feeder).
MAX_SAMPLES = 100_000

#: Keys of a hosting-capacity scenario dictionary (sweeps, :func:`hosting_capacity_metrics`)
#: read with the validation kit; ``feeder`` (a name, a path or a prepared net), ``buses``,
#: ``control_settings`` and ``criteria`` (or its fields at the top level) are read beside them.
HC_SCENARIO_PARAMS: tuple[Param, ...] = (
    Param("mode", Mode.EXPORT, kind=Mode, doc="what is added: V2G export or EV charging"),
    Param("method", Method.SCREEN_AC, kind=Method, doc="screen, AC or screen then AC"),
    Param("control", Control.NONE, kind=Control, doc="inverter control of the added units"),
    Param("load_scale", 1.0, unit="-", lo=0.0, hi=1000.0, doc="scaling of the feeder's loads"),
    Param("ext_grid_vm_pu", None, unit="pu", lo=0.5, hi=1.5, doc="slack voltage"),
    Param(
        "pf",
        1.0,
        unit="-",
        lo=-1.0,
        hi=1.0,
        doc="power factor (> 0 absorbs reactive power; magnitude at least 0.1)",
    ),
    Param(
        "tolerance_mw",
        DEFAULT_TOLERANCE_MW,
        unit="MW",
        lo=0.0,
        lo_open=True,
        hi=1e3,
        doc="bisection tolerance",
    ),
    Param(
        "screen_margin",
        DEFAULT_SCREEN_MARGIN,
        unit="-",
        lo=0.0,
        hi=1.0,
        lo_open=True,
        hi_open=True,
        doc="relative half-width of the AC bracket",
    ),
    Param("cap_mw", None, unit="MW", lo=0.0, lo_open=True, hi=1e6, doc="largest size searched"),
    Param("samples", None, kind=int, lo=1, hi=MAX_SAMPLES, doc="Monte Carlo scenarios"),
    Param("seed", 0, kind=int, lo=0, doc="seed of the Monte Carlo sampling"),
)
#: Scenario keys read beside :data:`HC_SCENARIO_PARAMS`.
HC_OTHER_KEYS = ("feeder", "buses", "control_settings", "criteria")

_PARAMS_BY_NAME = {p.name: p for p in HC_SCENARIO_PARAMS}


def check_arguments(values: dict[str, Any], problems: list[str]) -> dict[str, Any]:
    """Check function arguments against their declarations in :data:`HC_SCENARIO_PARAMS`.

    Parameters
    ----------
    values : dict
        Argument name (a declared key) -> value given. ``None`` is accepted where the
        declaration has no default.
    problems : list of str
        Appended to, one message per rejected value (key, value and allowed range).

    Returns
    -------
    dict
        The accepted values converted to their declared kind (``None`` for a rejected one).
    """
    checked: dict[str, Any] = {}
    for name, value in values.items():
        param = _PARAMS_BY_NAME[name]
        if value is None and param.default is None:
            checked[name] = None
            continue
        checked[name] = check_value(param, value, key=name, problems=problems)
    return checked


def check_pf(pf: Any, *, key: str, problems: list[str]) -> float | None:
    """Check a power factor: its declared range ``[-1, 1]`` and the floor ``|pf| >= 0.1``.

    Parameters
    ----------
    pf : Any
        The power factor given [-].
    key : str
        Key path of the messages.
    problems : list of str
        Appended to when ``pf`` is rejected.

    Returns
    -------
    float or None
        The power factor, or ``None`` if rejected.
    """
    n_before = len(problems)
    value = check_value(_PARAMS_BY_NAME["pf"], pf, key=key, problems=problems)
    if len(problems) > n_before:
        return None
    if abs(value) < 0.1:
        problems.append(f"{key}: {value:g} must satisfy 0.1 <= |pf| <= 1")
        return None
    return value
