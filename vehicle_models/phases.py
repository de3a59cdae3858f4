"""Phases of chargers on three-phase feeders: connections, allocation policies, phase voltages.

A residential charger is single-phase: line-to-neutral (230 V in Europe, 120/240 V behind a
split-phase service in North America) on one phase ``a``, ``b`` or ``c``, or line-to-line
(208 V, 400 V) on a phase pair ``ab``, ``bc`` or ``ca``; a depot charger may be a balanced
three-phase unit (``abc``). Each vehicle of a :class:`~vehicle_models.fleet.Fleet` sits on a
bus and one of these :class:`Phase` connections, given in the fleet table (column ``phase``) or
drawn by a seeded :class:`PhaseAllocation` policy that respects the phases present at each bus
(a single-phase lateral bus only gets its own phase).

Phases are numbered as in OpenDSS node numbers: 1 = a, 2 = b, 3 = c. Per-phase quantities of a
bus are arrays ``(..., 3)`` in the order a, b, c (NaN where the bus lacks the phase); phase pairs
in the order ab, bc, ca.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum

import numpy as np

from grids.errors import ScenarioError, check_problems

SQRT3 = float(np.sqrt(3.0))
_ALLOCATION_STREAM = 0x9A5E


class Phase(Enum):
    """Connection of a charger: one phase to neutral, a phase pair, or all three phases.

    ``A``, ``B``, ``C``: line-to-neutral on that phase. ``AB``, ``BC``, ``CA``: line-to-line
    between the two phases. ``ABC``: a balanced three-phase charger (a third of its power on
    each phase).
    """

    A = "a"
    B = "b"
    C = "c"
    AB = "ab"
    BC = "bc"
    CA = "ca"
    ABC = "abc"

    @property
    def code(self) -> int:
        """Integer code of the connection (index in :data:`PHASES`) [-]."""
        return PHASES.index(self)

    @property
    def conductors(self) -> tuple[int, ...]:
        """The phases it connects to, numbered 1 = a, 2 = b, 3 = c."""
        return tuple("abc".index(letter) + 1 for letter in self.value)

    @property
    def is_line_to_line(self) -> bool:
        """A phase-pair (line-to-line) connection."""
        return len(self.value) == 2


#: Every connection, in code order (``Phase.code`` is the index here).
PHASES: tuple[Phase, ...] = tuple(Phase)
#: Codes of the line-to-neutral, line-to-line and three-phase connections.
LINE_TO_NEUTRAL_CODES = (0, 1, 2)
LINE_TO_LINE_CODES = (3, 4, 5)
THREE_PHASE_CODE = 6


class ChargerConnection(Enum):
    """What kind of connection an allocation policy gives each charger (``[fleet]
    charger_connection``): ``line_to_neutral`` (one phase), ``line_to_line`` (a phase pair) or
    ``three_phase`` (balanced, all three phases)."""

    LINE_TO_NEUTRAL = "line_to_neutral"
    LINE_TO_LINE = "line_to_line"
    THREE_PHASE = "three_phase"


class PhaseAllocation(Enum):
    """Seeded policy that puts each vehicle on a phase of its bus (``[fleet] phase_allocation``).

    ``RANDOM``: uniformly among the connections the bus offers. ``ROUND_ROBIN``: the vehicles
    take the bus's connections in turn (one counter running through the buses in order, one
    per set of available connections), so every phase carries the same number of vehicles
    within one on each bus and over the feeder. ``SINGLE_PHASE``:
    the worst case for unbalance - every vehicle on phase ``a`` (or the pair ``ab``) where the
    bus has it, else on the bus's first connection.
    """

    RANDOM = "random"
    ROUND_ROBIN = "round_robin"
    SINGLE_PHASE = "single_phase"


@dataclass(frozen=True)
class FeederPhases:
    """The phases present at the buses of a three-phase feeder, and how chargers go on them.

    Parameters
    ----------
    bus_phases : mapping of int to tuple of int
        Phases present at each bus (bus number = position in ``bus_names``; 1 = a, 2 = b,
        3 = c).
    bus_names : tuple of str
        Bus names as written in the feeder's file (a fleet table's ``bus`` column names them).
    allocation : PhaseAllocation
        Policy for vehicles without a ``phase`` in their table.
    connection : ChargerConnection
        Kind of connection the policy gives.
    """

    bus_phases: Mapping[int, tuple[int, ...]]
    bus_names: tuple[str, ...] = field(default=())
    allocation: PhaseAllocation = PhaseAllocation.ROUND_ROBIN
    connection: ChargerConnection = ChargerConnection.LINE_TO_NEUTRAL

    def allocate(self, bus, *, seed: int = 0) -> np.ndarray:
        """Connections of vehicles on the given buses by the allocation policy.

        Parameters
        ----------
        bus : array_like of int (n,)
            Bus number of each vehicle.
        seed : int, keyword-only
            Seed of a random allocation.

        Returns
        -------
        numpy.ndarray of int64 (n,)
            :attr:`Phase.code` per vehicle (see :func:`allocate_phases`).
        """
        return allocate_phases(
            bus,
            bus_phases=self.bus_phases,
            policy=self.allocation,
            connection=self.connection,
            seed=seed,
            bus_names=self.bus_names or None,
        )

    def problems(self, bus, phase) -> list[str]:
        """Vehicles on a phase their bus lacks (:func:`phase_problems`).

        Parameters
        ----------
        bus : array_like of int (n,)
            Bus number of each vehicle.
        phase : array_like of int (n,)
            :attr:`Phase.code` of each vehicle's connection.

        Returns
        -------
        list of str
            One line per misfit (bus, connection); empty when all fit.
        """
        return phase_problems(
            bus, phase, bus_phases=self.bus_phases, bus_names=self.bus_names or None
        )


def connection_labels(bus, phase, *, bus_names: Sequence[str]) -> list[str]:
    """Labels ``"<bus name>.<connection>"`` (e.g. ``"671.a"``, ``"684.ca"``, ``"675.abc"``): the
    keys of per-connection values between a fleet and a three-phase feeder.

    Parameters
    ----------
    bus : array_like of int (n,)
        Bus numbers (positions in ``bus_names``).
    phase : array_like of int (n,)
        :attr:`Phase.code` of each connection.
    bus_names : sequence of str, keyword-only
        Bus names as written in the feeder's file (OpenDSS bus names hold no dot).

    Returns
    -------
    list of str
        One label per connection (:func:`parse_connection_label` reads it back).
    """
    return [
        f"{bus_names[b]}.{PHASES[c].value}"
        for b, c in zip(np.asarray(bus).tolist(), np.asarray(phase).tolist(), strict=True)
    ]


def parse_connection_label(label: str) -> tuple[str, Phase]:
    """The bus name and connection of a label of :func:`connection_labels`.

    Parameters
    ----------
    label : str
        ``"<bus name>.<connection>"``.

    Returns
    -------
    bus_name : str
    phase : Phase

    Raises
    ------
    ScenarioError
        The label has no ``.`` or an unknown connection.
    """
    bus_name, dot, connection = str(label).rpartition(".")
    try:
        if not dot or not bus_name:
            raise ValueError
        return bus_name, Phase(connection.lower())
    except ValueError:
        raise ScenarioError(
            f"connection {label!r}: expected '<bus>.<phase>' with a phase of "
            f"{', '.join(p.value for p in PHASES)}"
        ) from None


def phase_codes(values, *, label: str = "phase") -> np.ndarray:
    """Parse connection names (``"a"``, ``"ab"``, ``"abc"``, ...; any case) or :class:`Phase`
    members into integer codes.

    Parameters
    ----------
    values : array_like of str, Phase or int
        One connection per vehicle; integers are taken as codes (0..6).
    label : str, keyword-only
        Name of the input in error messages.

    Returns
    -------
    numpy.ndarray of int64 (n,)
        ``Phase.code`` of each entry.

    Raises
    ------
    ScenarioError
        Listing every invalid value with its position.
    """
    items = list(np.atleast_1d(np.asarray(values, dtype=object)))
    by_name = {p.value: p.code for p in PHASES}
    codes = np.empty(len(items), dtype=np.int64)
    problems: list[str] = []
    for i, item in enumerate(items):
        if isinstance(item, Phase):
            codes[i] = item.code
        elif isinstance(item, int | np.integer) and not isinstance(item, bool):
            if 0 <= int(item) < len(PHASES):
                codes[i] = int(item)
            else:
                problems.append(f"{label}[{i}]: code {item} is not 0..{len(PHASES) - 1}")
        elif isinstance(item, str) and item.strip().lower() in by_name:
            codes[i] = by_name[item.strip().lower()]
        else:
            problems.append(
                f"{label}[{i}]: {item!r} is not a connection ({', '.join(p.value for p in PHASES)})"
            )
    check_problems(problems, ScenarioError, f"invalid {label}")
    return codes


def connection_options(present: Sequence[int], connection: ChargerConnection) -> tuple[int, ...]:
    """Codes of the connections of one kind that a bus with the given phases offers.

    Parameters
    ----------
    present : sequence of int
        Phases present at the bus (1 = a, 2 = b, 3 = c).
    connection : ChargerConnection
        Kind of charger connection.

    Returns
    -------
    tuple of int
        :attr:`Phase.code` of each connection whose phases are all present (empty if none).
    """
    have = set(int(p) for p in present)
    if connection is ChargerConnection.LINE_TO_NEUTRAL:
        candidates = LINE_TO_NEUTRAL_CODES
    elif connection is ChargerConnection.LINE_TO_LINE:
        candidates = LINE_TO_LINE_CODES
    else:
        candidates = (THREE_PHASE_CODE,)
    return tuple(c for c in candidates if set(PHASES[c].conductors) <= have)


def phase_problems(
    bus, phase, *, bus_phases: Mapping[int, Sequence[int]], bus_names: Sequence[str] | None = None
) -> list[str]:
    """Vehicles whose connection uses a phase their bus does not have.

    Parameters
    ----------
    bus : array_like of int (n,)
        Bus of each vehicle (a key of ``bus_phases``).
    phase : array_like of int (n,)
        :attr:`Phase.code` of each vehicle's connection.
    bus_phases : mapping of int to sequence of int, keyword-only
        Phases present at each bus (1 = a, 2 = b, 3 = c).
    bus_names : sequence of str, optional, keyword-only
        Bus names for messages (indexed by bus); default the bus number.

    Returns
    -------
    list of str
        One line per (bus, connection) that does not fit, with the vehicle count and the
        phases the bus has; empty when every vehicle fits.
    """
    bus = np.asarray(bus, dtype=np.int64)
    phase = np.asarray(phase, dtype=np.int64)
    problems: list[str] = []
    pairs, counts = np.unique(np.stack([bus, phase], axis=1), axis=0, return_counts=True)
    for (b, c), n in zip(pairs.tolist(), counts.tolist(), strict=True):
        present = tuple(bus_phases.get(b, ()))
        if not set(PHASES[c].conductors) <= set(present):
            name = bus_names[b] if bus_names is not None else str(b)
            have = "".join("abc"[p - 1] for p in sorted(present)) or "none"
            problems.append(
                f"phase: {n} vehicle{'s' if n != 1 else ''} on bus {name} phase "
                f"{PHASES[c].value!r}, but the bus has phase(s) {have}"
            )
    return problems


def allocate_phases(
    bus,
    *,
    bus_phases: Mapping[int, Sequence[int]],
    policy: PhaseAllocation | str = PhaseAllocation.ROUND_ROBIN,
    connection: ChargerConnection | str = ChargerConnection.LINE_TO_NEUTRAL,
    seed: int = 0,
    bus_names: Sequence[str] | None = None,
) -> np.ndarray:
    """Put every vehicle on a connection its bus offers, by a seeded policy.

    Parameters
    ----------
    bus : array_like of int (n,)
        Bus of each vehicle (a key of ``bus_phases``).
    bus_phases : mapping of int to sequence of int, keyword-only
        Phases present at each bus (1 = a, 2 = b, 3 = c).
    policy : PhaseAllocation, keyword-only
        ``RANDOM``, ``ROUND_ROBIN`` or ``SINGLE_PHASE`` (see :class:`PhaseAllocation`).
    connection : ChargerConnection, keyword-only
        Line-to-neutral, line-to-line or three-phase chargers.
    seed : int, keyword-only
        Seed of the ``RANDOM`` draw (same seed, same allocation).
    bus_names : sequence of str, optional, keyword-only
        Bus names for messages (indexed by bus).

    Returns
    -------
    numpy.ndarray of int64 (n,)
        :attr:`Phase.code` of each vehicle's connection.

    Raises
    ------
    ScenarioError
        Listing every bus that offers no connection of the kind asked for.
    """
    policy = PhaseAllocation(policy.value if isinstance(policy, Enum) else policy)
    connection = ChargerConnection(connection.value if isinstance(connection, Enum) else connection)
    bus = np.asarray(bus, dtype=np.int64)
    unique_bus, inverse = np.unique(bus, return_inverse=True)
    options = [connection_options(bus_phases.get(int(b), ()), connection) for b in unique_bus]
    problems = []
    for b, opts in zip(unique_bus.tolist(), options, strict=True):
        if not opts:
            name = bus_names[b] if bus_names is not None else str(b)
            have = "".join("abc"[p - 1] for p in sorted(bus_phases.get(b, ()))) or "none"
            problems.append(
                f"phase_allocation: bus {name} (phase(s) {have}) has no "
                f"{connection.value.replace('_', '-')} connection"
            )
    check_problems(problems, ScenarioError, "invalid phase allocation")
    out = np.empty(bus.size, dtype=np.int64)
    # a stream of its own: the fleet's other draws with the same seed stay independent of it
    rng = np.random.default_rng([int(seed), _ALLOCATION_STREAM])
    # vehicles of buses with the same set of connections are handled together (in order)
    option_sets = sorted(set(options))
    set_of_bus = np.array([option_sets.index(o) for o in options], dtype=np.int64)
    set_of_vehicle = set_of_bus[inverse]
    for k, opts in enumerate(option_sets):
        idx = np.flatnonzero(set_of_vehicle == k)
        choices = np.asarray(opts, dtype=np.int64)
        if policy is PhaseAllocation.RANDOM:
            out[idx] = choices[rng.integers(0, choices.size, size=idx.size)]
        elif policy is PhaseAllocation.ROUND_ROBIN:
            # one counter through the buses in order: balanced within one vehicle on every
            # bus and over the feeder
            by_bus = idx[np.argsort(bus[idx], kind="stable")]
            out[by_bus] = choices[np.arange(idx.size) % choices.size]
        else:
            worst = (Phase.A.code, Phase.AB.code, THREE_PHASE_CODE)
            preferred = [c for c in worst if c in opts]
            out[idx] = preferred[0] if preferred else choices[0]
    return out


#: Column (0 = a, 1 = b, 2 = c) of the first and second phase of each connection code.
_FROM = np.array([0, 1, 2, 0, 1, 2, 0])
_TO = np.array([0, 1, 2, 1, 2, 0, 0])


def _take_phase(v: np.ndarray, column: np.ndarray) -> np.ndarray:
    index = np.broadcast_to(column[..., None], (*v.shape[:-1], 1))
    return np.take_along_axis(v, index, axis=-1)[..., 0]


def phase_voltage_pu(phase, v_abc_pu, *, ll_base_pu=SQRT3) -> np.ndarray:
    """Voltage magnitude a charger sees on its own connection [pu].

    Parameters
    ----------
    phase : array_like of int (n,)
        :attr:`Phase.code` of each connection.
    v_abc_pu : array_like of complex (..., n, 3)
        Phase-to-neutral voltage phasors of the connection's bus, phases a, b, c, in pu of the
        bus's line-to-neutral base (NaN where the bus has no such phase).
    ll_base_pu : float or array_like (n,), keyword-only
        Line-to-line base of each connection in pu of the line-to-neutral base: ``sqrt(3)``
        for phases 120° apart (default), 2 for the two legs of a split-phase (centre-tapped)
        secondary, 180° apart (:func:`line_to_line_base_pu`). Used by ``ab``/``bc``/``ca``.

    Returns
    -------
    numpy.ndarray (..., n)
        Line-to-neutral ``|V_p|`` [pu] for ``a``/``b``/``c``; line-to-line
        ``|V_p - V_q| / ll_base_pu`` for ``ab``/``bc``/``ca``, i.e. in pu of the line-to-line
        base (``sqrt(3)`` times the line-to-neutral base on a three-phase bus, twice it across
        a split-phase service); for ``abc`` the mean of the three
        phase-to-neutral magnitudes (a multiphase unit responding to the average of its
        phase voltages, one of the two choices of IEEE 1547-2018 that EPRI's OpenDER offers
        as ``NP_V_MEAS_UNBALANCE = "AVG"``; the other is the positive-sequence voltage).

    Notes
    -----
    With balanced phasors ``V_b = a^2 V_a``, ``V_c = a V_a`` (``a = e^{j 120°}``) every
    connection sees the same magnitude, since ``|1 - a^2| = sqrt(3)``.
    """
    code = np.asarray(phase, dtype=np.int64)
    v = np.asarray(v_abc_pu, dtype=complex)
    # the two phases of each connection (a line-to-neutral one uses its phase twice)
    v_from = _take_phase(v, _FROM[code])
    v_to = _take_phase(v, _TO[code])
    ln = np.abs(v_from)
    ll = np.abs(v_from - v_to) / np.asarray(ll_base_pu, dtype=float)
    three = np.mean(np.abs(v), axis=-1)
    return np.where(code <= 2, ln, np.where(code <= 5, ll, three))


def line_to_line_base_pu(v_from_pu, v_to_pu) -> np.ndarray:
    """Line-to-line base of phase pairs in pu of the line-to-neutral base, from their phasors.

    Parameters
    ----------
    v_from_pu, v_to_pu : array_like of complex (n,)
        Phase-to-neutral phasors of the two phases of each pair (any operating point near
        nominal, e.g. a solved power flow) [pu].

    Returns
    -------
    numpy.ndarray (n,)
        ``|1 - e^{j theta}|`` with ``theta`` the angle between the phases rounded to 120° or
        180°: ``sqrt(3)`` for two phases of a three-phase system, 2 for the two legs of a
        split-phase (centre-tapped) secondary [pu].

    Notes
    -----
    Load flow moves the angle between two phases by a few degrees; it stays far closer to its
    nominal 120° or 180° than to the other, so the rounding is unambiguous.
    """
    separation_deg = np.abs(np.degrees(np.angle(np.asarray(v_from_pu) / np.asarray(v_to_pu))))
    return np.where(separation_deg > 150.0, 2.0, SQRT3)


def phase_injections(phase, p_mw, q_mvar) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Split per-connection injections into line-to-neutral and line-to-line parts.

    Parameters
    ----------
    phase : array_like of int (n,)
        :attr:`Phase.code` of each connection.
    p_mw, q_mvar : array_like (..., n)
        Injection of each connection [MW], [Mvar] (injection positive).

    Returns
    -------
    p_wye_mw, q_wye_mvar : numpy.ndarray (..., n, 3)
        Line-to-neutral injection on phases a, b, c [MW], [Mvar]: the whole injection on its
        phase for ``a``/``b``/``c``, a third on each phase for ``abc``.
    p_delta_mw, q_delta_mvar : numpy.ndarray (..., n, 3)
        Line-to-line injection on the pairs ab, bc, ca [MW], [Mvar].

    Notes
    -----
    The split conserves power: ``p_wye.sum(-1) + p_delta.sum(-1) == p`` for every connection.
    """
    code = np.asarray(phase, dtype=np.int64)
    # share of each connection's power on the wye columns a, b, c and the delta columns ab, bc, ca
    share = np.zeros((len(PHASES), 6))
    share[0, 0] = share[1, 1] = share[2, 2] = 1.0
    share[3, 3] = share[4, 4] = share[5, 5] = 1.0
    share[6, :3] = 1.0 / 3.0
    s = share[code]
    p = np.asarray(p_mw, dtype=float)[..., None] * s
    q = np.asarray(q_mvar, dtype=float)[..., None] * s
    return p[..., :3], q[..., :3], p[..., 3:], q[..., 3:]


def phase_totals(phase, values) -> np.ndarray:
    """Sum of a per-connection quantity over the connections of each kind.

    Parameters
    ----------
    phase : array_like of int (n,)
        :attr:`Phase.code` of each connection.
    values : array_like (n,)
        Quantity per connection (e.g. ``p_mw`` [MW] or a vehicle count).

    Returns
    -------
    numpy.ndarray (7,)
        Totals per :class:`Phase`, in :data:`PHASES` order (``np.bincount``); they add up to
        ``values.sum()``.
    """
    return np.bincount(
        np.asarray(phase, dtype=np.int64),
        weights=np.asarray(values, dtype=float),
        minlength=len(PHASES),
    )


__all__ = [
    "LINE_TO_LINE_CODES",
    "LINE_TO_NEUTRAL_CODES",
    "PHASES",
    "THREE_PHASE_CODE",
    "ChargerConnection",
    "FeederPhases",
    "Phase",
    "PhaseAllocation",
    "allocate_phases",
    "connection_labels",
    "connection_options",
    "line_to_line_base_pu",
    "parse_connection_label",
    "phase_codes",
    "phase_injections",
    "phase_problems",
    "phase_totals",
    "phase_voltage_pu",
]
