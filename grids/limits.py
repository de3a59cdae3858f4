"""Named operating limits and the ``violations`` every run and study reports.

A :class:`Violation` says which named limit was broken, where (the worst element), how badly
(worst value against the limit value), when first and for how long. Runs and studies put the
list in their JSON under ``violations`` and at the top of their reports; an element whose
rating is missing is reported through :func:`missing_rating` rather than as "0 % loading".

References
----------
ANSI C84.1-2020, *American National Standard for Electric Power Systems and Equipment —
Voltage Ratings (60 Hz)*, Table 1: service voltage range A 0.95–1.05 pu, range B
0.917–1.058 pu (the 120 V base: 110–126 V and 110–127 V at the service).
IEC 60076-7:2018, clause 6.3, Table 4: hot-spot 120 °C (normal cyclic loading) and 140 °C
(long-time emergency) for normal paper; relative ageing rate.
EN 50160:2010 clause 4.2.2: 230 V ±10 % (0.90–1.10 pu) for 95 % of 10-min means; clause
4.2.5: negative-sequence voltage up to 2 % of the positive-sequence one (95 % of 10-min means).
ANSI C84.1-2020 Annex D: voltage unbalance of the supply system below 3 % at no load.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from enum import Enum

import numpy as np

from grids.errors import FeederError, ScenarioError


class Limit(Enum):
    """Named limits (the ``limit`` field of a violation)."""

    ANSI_C84_1_RANGE_A_LOW = "ANSI C84.1 range A (low)"
    ANSI_C84_1_RANGE_A_HIGH = "ANSI C84.1 range A (high)"
    ANSI_C84_1_RANGE_B_LOW = "ANSI C84.1 range B (low)"
    ANSI_C84_1_RANGE_B_HIGH = "ANSI C84.1 range B (high)"
    EN_50160_LOW = "EN 50160 (low)"
    EN_50160_HIGH = "EN 50160 (high)"
    LINE_LOADING = "line loading"
    TRANSFORMER_LOADING = "transformer loading"
    IEC_60076_7_HOT_SPOT_CYCLIC = "IEC 60076-7 hot-spot, normal cyclic loading"
    IEC_60076_7_HOT_SPOT_EMERGENCY = "IEC 60076-7 hot-spot, long-time emergency loading"
    IEC_60076_7_LOSS_OF_LIFE = "IEC 60076-7 loss of life"
    IEEE_1547_TRIP = "IEEE 1547 trip"
    FREQUENCY_MODEL_RANGE = "frequency model validity range"
    #: an under-frequency load-shedding stage operated (a protection action, reported as a
    #: broken limit: load was lost to hold the frequency)
    UFLS = "under-frequency load shedding"
    #: voltage unbalance factor VUF = |V2| / |V1| of a three-phase bus (EN 50160 clause 4.2.5)
    VOLTAGE_UNBALANCE = "voltage unbalance factor"


#: Voltage bands [pu] per limit family: (low limit, low name, high limit, high name).
ANSI_C84_1_RANGE_A_PU = (0.95, 1.05)
ANSI_C84_1_RANGE_B_PU = (0.917, 1.058)
EN_50160_PU = (0.90, 1.10)
#: IEC 60076-7 Table 4 hot-spot limits for normal paper [°C].
HOT_SPOT_CYCLIC_C = 120.0
HOT_SPOT_EMERGENCY_C = 140.0
#: Default limit of the voltage unbalance factor |V2|/|V1| [%] (EN 50160 clause 4.2.5).
VUF_LIMIT_PERCENT = 2.0
#: Phase letter per phase number (1, 2, 3 = a, b, c) in element names.
PHASE_LETTERS = {1: "a", 2: "b", 3: "c"}


#: How a quantity's unit suffix is written in reports.
_UNIT_TEXT = {"c": "°C", "percent": "%", "hz": "Hz", "pu": "pu", "mw": "MW", "h": "h"}


@dataclass(frozen=True)
class Violation:
    """One broken limit.

    Attributes
    ----------
    limit : str
        The named limit (a :class:`Limit` value).
    element : str
        Where the limit is broken worst (``"bus 17"``, ``"line 4"``, ``"transformer"``).
    quantity : str
        The quantity with its unit suffix (``"vm_pu"``, ``"loading_percent"``,
        ``"hot_spot_c"``).
    worst_value : float
        The worst value over time and elements.
    limit_value : float
        The limit it is compared with.
    first_time_s : float or None
        Time of the first sample outside the limit [s from the start]; ``None`` for a
        snapshot.
    duration_s : float or None
        Total time any element is outside the limit [s] (samples × step); ``None`` for a
        snapshot.
    n_elements : int
        How many elements break the limit at some time.
    """

    limit: str
    element: str
    quantity: str
    worst_value: float
    limit_value: float
    first_time_s: float | None = None
    duration_s: float | None = None
    n_elements: int = 1

    def to_dict(self) -> dict:
        """Plain dictionary for JSON.

        Returns
        -------
        dict
            The fields by name (``limit``, ``element``, ``quantity``, ``worst_value``,
            ``limit_value``, ``first_time_s``, ``duration_s``, ``n_elements``).
        """
        return asdict(self)

    def describe(self) -> str:
        """One line for reports.

        Returns
        -------
        str
            E.g. ``"ANSI C84.1 range A (low): bus 17 at 0.924 pu (limit 0.95 pu), ..."``.
        """
        suffix = self.quantity.rsplit("_", 1)[-1]
        unit = _UNIT_TEXT.get(suffix, suffix)
        text = (
            f"{self.limit}: {self.element} at {self.worst_value:.4g} {unit} "
            f"(limit {self.limit_value:.4g} {unit})"
        )
        if self.n_elements > 1:
            text += f", {self.n_elements} elements"
        if self.duration_s is not None and self.first_time_s is not None:
            text += (
                f", first at t = {self.first_time_s:g} s, "
                f"for {self.duration_s / 3600.0:.3g} h in all"
            )
        return text


def missing_rating(element: str, quantity: str) -> str:
    """The sentence reports print when a limit cannot be checked for lack of a rating.

    Parameters
    ----------
    element : str
        The element or group of elements (``"lines"``, ``"transformer"``).
    quantity : str
        The quantity that could not be checked (``"loading_percent"``).

    Returns
    -------
    str
        ``"<element>: no rating given, <quantity> not checked"``.
    """
    return f"{element}: no rating given, {quantity} not checked"


def _sample_spans_s(t_s: np.ndarray, step_s: float, end_s: float | None) -> np.ndarray:
    """The time each sample stands for [s]: until the next sample (at most ``step_s``).

    Samples need not be evenly spaced (a run's high-rate event windows); the last one stands
    for ``step_s`` or up to ``end_s``, whichever is shorter, so a sample taken at the very end
    of a run adds no time.
    """
    spans = np.full(t_s.shape, float(step_s))
    if t_s.size > 1:
        spans[:-1] = np.minimum(np.diff(t_s), float(step_s))
    if end_s is not None and t_s.size:
        spans[-1] = min(float(step_s), max(float(end_s) - float(t_s[-1]), 0.0))
    return spans


def _exceedance(
    values: np.ndarray,
    limit_value: float,
    *,
    below: bool,
    limit: str,
    quantity: str,
    names: Sequence[str],
    t_s: np.ndarray | None,
    step_s: float | None,
    end_s: float | None = None,
) -> Violation | None:
    bad = values < limit_value if below else values > limit_value
    bad &= np.isfinite(values)
    if not bad.any():
        return None
    masked = np.where(bad, values, np.inf if below else -np.inf)
    flat = int(np.argmin(masked) if below else np.argmax(masked))
    t_index, element_index = np.unravel_index(flat, values.shape)
    any_bad = bad.any(axis=1)
    first = duration = None
    if t_s is not None:
        first = float(t_s[int(np.argmax(any_bad))])
        if step_s is not None:
            spans_s = _sample_spans_s(np.asarray(t_s, dtype=float), step_s, end_s)
            duration = float(spans_s[any_bad].sum())
    return Violation(
        limit=limit,
        element=str(names[element_index]),
        quantity=quantity,
        worst_value=float(values[t_index, element_index]),
        limit_value=float(limit_value),
        first_time_s=first,
        duration_s=duration,
        n_elements=int(bad.any(axis=0).sum()),
    )


def _as_2d(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    return values[None, :] if values.ndim == 1 else values


def voltage_violations(
    vm_pu: np.ndarray,
    *,
    bus_names: Sequence[str],
    t_s: np.ndarray | None = None,
    step_s: float | None = None,
    end_s: float | None = None,
    standard: str = "ansi",
) -> list[Violation]:
    """Violations of the service-voltage ranges.

    Parameters
    ----------
    vm_pu : numpy.ndarray
        Bus voltage magnitudes [pu], shape ``(n_t, n_bus)`` or ``(n_bus,)`` for a snapshot.
    bus_names : sequence of str
        Element name per column (``"bus 17"``).
    t_s : numpy.ndarray, optional
        Sample times [s], one per row.
    step_s : float, optional
        Longest time a sample stands for [s] (for the duration; a sample stands until the
        next one).
    end_s : float, optional
        End of the run [s]: the last sample stands no later than this.
    standard : {"ansi", "en50160"}
        ANSI C84.1 ranges A and B (North America) or EN 50160 ±10 % (Europe).

    Returns
    -------
    list of Violation
        At most one per limit and side (the worst bus is named, ``n_elements`` counts all).
    """
    values = _as_2d(vm_pu)
    if standard == "ansi":
        bands = [
            (ANSI_C84_1_RANGE_A_PU, Limit.ANSI_C84_1_RANGE_A_LOW, Limit.ANSI_C84_1_RANGE_A_HIGH),
            (ANSI_C84_1_RANGE_B_PU, Limit.ANSI_C84_1_RANGE_B_LOW, Limit.ANSI_C84_1_RANGE_B_HIGH),
        ]
    elif standard == "en50160":
        bands = [(EN_50160_PU, Limit.EN_50160_LOW, Limit.EN_50160_HIGH)]
    else:
        raise ValueError(f"standard must be 'ansi' or 'en50160', got {standard!r}")
    out: list[Violation] = []
    for (low, high), low_name, high_name in bands:
        for limit_value, below, name in ((low, True, low_name), (high, False, high_name)):
            found = _exceedance(
                values,
                limit_value,
                below=below,
                limit=name.value,
                quantity="vm_pu",
                names=bus_names,
                t_s=t_s,
                step_s=step_s,
                end_s=end_s,
            )
            if found is not None:
                out.append(found)
    return out


def phase_element_names(
    element_names: Sequence[str], phases: Sequence[int] | np.ndarray, *, kind: str = "bus"
) -> list[str]:
    """Names of per-phase elements for reports: ``"bus 632 phase a"``.

    Parameters
    ----------
    element_names : sequence of str
        Bus (or line) name per node (or conductor), as written in the feeder file.
    phases : sequence of int
        Phase per node (or conductor): 1, 2, 3 for a, b, c.
    kind : str, keyword-only
        The element kind that starts each name (``"bus"``, ``"line"``).

    Returns
    -------
    list of str
        ``"<kind> <name> phase <letter>"`` per entry.

    Raises
    ------
    FeederError
        The two sequences differ in length, or a phase is not 1, 2 or 3.
    """
    phases = [int(p) for p in np.asarray(phases).ravel()]
    if len(phases) != len(element_names):
        raise FeederError(
            f"phases: {len(phases)} entries for {len(element_names)} element names "
            "(expected one phase per name)"
        )
    bad = sorted({p for p in phases if p not in PHASE_LETTERS})
    if bad:
        raise FeederError(f"phases: {bad} are not phases (expected 1, 2 or 3 for a, b, c)")
    return [
        f"{kind} {name} phase {PHASE_LETTERS[p]}"
        for name, p in zip(element_names, phases, strict=True)
    ]


def phase_voltage_violations(
    vm_pu: np.ndarray,
    *,
    node_bus: Sequence[str],
    node_phase: Sequence[int] | np.ndarray,
    t_s: np.ndarray | None = None,
    step_s: float | None = None,
    end_s: float | None = None,
    standard: str = "ansi",
) -> list[Violation]:
    """Violations of the service-voltage ranges by phase-to-neutral voltages.

    Each node (a bus and one of its phases) is checked on its own against ANSI C84.1
    ranges A and B or EN 50160 ±10 %, as :func:`voltage_violations` does for balanced buses;
    the violation names the bus and the phase (``"bus 675 phase b"``).

    Parameters
    ----------
    vm_pu : numpy.ndarray
        Phase-to-neutral voltage magnitudes [pu of the bus base], shape ``(n_t, n_node)`` or
        ``(n_node,)`` for a snapshot.
    node_bus : sequence of str
        Bus name per node.
    node_phase : sequence of int
        Phase per node (1, 2, 3 = a, b, c).
    t_s, step_s, end_s : optional
        Sample times [s], the longest time a sample stands for [s], the end of the run [s]
        (as for :func:`voltage_violations`).
    standard : {"ansi", "en50160"}
        The voltage ranges (as for :func:`voltage_violations`).

    Returns
    -------
    list of Violation
        At most one per limit and side; ``n_elements`` counts nodes (bus-phases).

    References
    ----------
    ANSI C84.1-2020 Table 1; EN 50160:2010 clause 4.2.2 (see the module docstring).
    """
    names = phase_element_names(node_bus, node_phase, kind="bus")
    return voltage_violations(
        vm_pu, bus_names=names, t_s=t_s, step_s=step_s, end_s=end_s, standard=standard
    )


def check_vuf_limit_percent(limit_percent: float) -> float:
    """The voltage-unbalance limit, checked: a finite number in (0, 100] [%].

    Parameters
    ----------
    limit_percent : float
        Limit of |V2|/|V1| [%].

    Returns
    -------
    float

    Raises
    ------
    ScenarioError
        Not a number, not finite, or outside (0, 100] (a limit of 0 % forbids any
        unbalance at all, one over 100 % means the negative sequence may dominate).
    """
    if (
        isinstance(limit_percent, bool)
        or not isinstance(limit_percent, (int, float, np.floating, np.integer))
        or not np.isfinite(limit_percent)
        or not 0.0 < float(limit_percent) <= 100.0
    ):
        raise ScenarioError(
            f"vuf limit: {limit_percent!r} is not a valid voltage unbalance limit "
            "(expected a number in (0, 100] [%], e.g. 2 per EN 50160)"
        )
    return float(limit_percent)


def unbalance_violation(
    vuf_percent: np.ndarray,
    *,
    bus_names: Sequence[str],
    limit_percent: float = VUF_LIMIT_PERCENT,
    t_s: np.ndarray | None = None,
    step_s: float | None = None,
    end_s: float | None = None,
) -> Violation | None:
    """A violation if the voltage unbalance factor of any three-phase bus exceeds the limit.

    Parameters
    ----------
    vuf_percent : numpy.ndarray
        VUF = 100 |V2| / |V1| [%] per three-phase bus, shape ``(n_t, n_bus3)`` or
        ``(n_bus3,)``; NaN (a dead bus) is ignored.
    bus_names : sequence of str
        Name per column (``"bus 671"``).
    limit_percent : float, keyword-only
        Limit [%] (default :data:`VUF_LIMIT_PERCENT`, 2 %).
    t_s, step_s, end_s : optional
        As for :func:`voltage_violations`.

    Returns
    -------
    Violation or None
        ``limit`` is :attr:`Limit.VOLTAGE_UNBALANCE`, ``quantity`` ``"vuf_percent"``.

    Notes
    -----
    With the Fortescue operator :math:`a = e^{j 2 pi/3}`, :math:`V_1 = (V_a + a V_b + a^2
    V_c)/3` and :math:`V_2 = (V_a + a^2 V_b + a V_c)/3`; VUF = :math:`100 |V_2| / |V_1|`.

    References
    ----------
    EN 50160:2010 clause 4.2.5 (2 %); IEC 61000-4-30 clause 5.7 (the definition).
    """
    return upper_limit_violation(
        vuf_percent,
        check_vuf_limit_percent(limit_percent),
        limit=Limit.VOLTAGE_UNBALANCE,
        quantity="vuf_percent",
        names=bus_names,
        t_s=t_s,
        step_s=step_s,
        end_s=end_s,
    )


def phase_loading_violation(
    loading_percent: np.ndarray,
    *,
    line_names: Sequence[str],
    line_phase: Sequence[int] | np.ndarray,
    limit_percent: float = 100.0,
    limit: Limit = Limit.LINE_LOADING,
    t_s: np.ndarray | None = None,
    step_s: float | None = None,
    end_s: float | None = None,
) -> Violation | None:
    """A violation if any phase conductor carries more than ``limit_percent`` of its rating.

    Parameters
    ----------
    loading_percent : numpy.ndarray
        Conductor current over its rating [%], shape ``(n_t, n_conductor)`` or
        ``(n_conductor,)``; NaN (no rating) is ignored.
    line_names : sequence of str
        Line name per conductor.
    line_phase : sequence of int
        Phase per conductor (1, 2, 3 = a, b, c).
    limit_percent : float, keyword-only
        Loading limit [% of the rating], default 100.
    limit : Limit, keyword-only
        :attr:`Limit.LINE_LOADING` (the elements are lines, ``"line 650632 phase b"``) or
        :attr:`Limit.TRANSFORMER_LOADING` (winding-1 conductors of transformers,
        ``"transformer xfm1 phase a"``).
    t_s, step_s, end_s : optional
        As for :func:`voltage_violations`.

    Returns
    -------
    Violation or None
        With ``limit`` and the element of the largest loading.

    Raises
    ------
    ScenarioError
        ``limit_percent`` is not a finite number > 0.
    """
    if isinstance(limit_percent, bool) or not (
        isinstance(limit_percent, (int, float, np.floating, np.integer))
        and np.isfinite(limit_percent)
        and limit_percent > 0
    ):
        raise ScenarioError(
            f"loading limit: {limit_percent!r} is not valid (expected a number > 0 [%])"
        )
    kinds = {Limit.LINE_LOADING: "line", Limit.TRANSFORMER_LOADING: "transformer"}
    if limit not in kinds:
        raise ScenarioError(f"loading limit kind: {limit!r} is not one of {list(kinds)}")
    return upper_limit_violation(
        loading_percent,
        float(limit_percent),
        limit=limit,
        quantity="loading_percent",
        names=phase_element_names(line_names, line_phase, kind=kinds[limit]),
        t_s=t_s,
        step_s=step_s,
        end_s=end_s,
    )


def upper_limit_violation(
    values: np.ndarray,
    limit_value: float,
    *,
    limit: Limit,
    quantity: str,
    names: Sequence[str],
    t_s: np.ndarray | None = None,
    step_s: float | None = None,
    end_s: float | None = None,
) -> Violation | None:
    """A violation if any value exceeds ``limit_value`` (loading, hot-spot temperature).

    Parameters
    ----------
    values : numpy.ndarray
        Shape ``(n_t, n_elements)`` or ``(n_elements,)``; NaN (no rating) is ignored.
    limit_value : float
        Upper limit in the unit of ``quantity``.
    limit : Limit
        The named limit.
    quantity : str
        Quantity with unit suffix (``"loading_percent"``).
    names : sequence of str
        Element name per column.
    t_s, step_s, end_s : optional
        Sample times [s], the longest time a sample stands for [s] and the end of the run
        [s] (as for :func:`voltage_violations`).

    Returns
    -------
    Violation or None
    """
    return _exceedance(
        _as_2d(values),
        limit_value,
        below=False,
        limit=limit.value,
        quantity=quantity,
        names=names,
        t_s=t_s,
        step_s=step_s,
        end_s=end_s,
    )
