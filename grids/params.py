"""The one validation kit: parameters declared once with default, unit, range and doc.

Every loader (scenario sections, sweep specs, thermal parameters, inverter settings, hosting
capacity, contingency, black start) declares its keys as :class:`Param` objects and reads a
table with :func:`read_params`. Problems are collected with their key paths and raised at once
(through :func:`grids.errors.check_problems`), so the user sees every mistake in one message.
The same declarations render the parameter tables in the docs (:func:`params_markdown`).

The idea follows ANDES's ``NumParam`` (a model parameter declared once, driving validation and
documentation) and power-grid-model's typed validation errors listing every problem.

Examples
--------
>>> from grids.params import Param, read_params
>>> spec = (Param("h_s", 5.0, unit="s", lo=0.0, lo_open=True, doc="inertia constant"),)
>>> problems: list[str] = []
>>> read_params({"h_s": -1}, spec, path="frequency", problems=problems)
{'h_s': 5.0}
>>> problems
['frequency.h_s: -1 is out of range: expected a number > 0 [s]']
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any


class _Required:
    """Sentinel type of :data:`REQUIRED` (a parameter without a default)."""

    def __repr__(self) -> str:
        return "REQUIRED"


#: Default of a parameter the user must give.
REQUIRED: Any = _Required()


def is_number(value: Any) -> bool:
    """True for an ``int`` or ``float`` that is not a ``bool`` (TOML numbers).

    Parameters
    ----------
    value : Any
        Value read from a file or argument.

    Returns
    -------
    bool
        Whether ``value`` is a real number (finite or not).
    """
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return True
    # numpy scalars
    return (
        hasattr(value, "dtype")
        and getattr(value.dtype, "kind", "") in "iuf"
        and not (getattr(value, "ndim", 0))
    )


def is_finite_number(value: Any) -> bool:
    """True for a finite real number (:func:`is_number` and neither NaN nor infinite).

    Parameters
    ----------
    value : Any
        Value read from a file or argument.

    Returns
    -------
    bool
        Whether ``value`` is a finite ``int``/``float`` (or numpy scalar), not a ``bool``.
    """
    return is_number(value) and math.isfinite(value)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


@dataclass(frozen=True)
class Param:
    """One declared parameter.

    Parameters
    ----------
    name : str
        Key in its table.
    default : Any
        Value when the key is absent; :data:`REQUIRED` if the user must give it; ``None`` for
        an optional parameter without a default.
    unit : str
        Unit, shown in messages and docs (``"s"``, ``"pu"``, ``"MW"``; empty if none).
    doc : str
        One-line description for the docs.
    kind : type
        ``float``, ``int``, ``bool``, ``str`` or an :class:`enum.Enum` subclass (values are
        given by their ``value``).
    lo, hi : float, optional
        Allowed range; ``lo_open``/``hi_open`` make the ends exclusive.
    allow_inf : bool
        Accept ``inf`` (for example an infinite governor droop).
    choices : sequence of str, optional
        Allowed strings for ``kind=str``.
    """

    name: str
    default: Any = REQUIRED
    unit: str = ""
    doc: str = ""
    kind: type = float
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False
    allow_inf: bool = False
    choices: tuple[str, ...] | None = None

    @property
    def required(self) -> bool:
        """Whether the user must give the parameter."""
        return self.default is REQUIRED

    def range_text(self) -> str:
        """The allowed values in words.

        Returns
        -------
        str
            E.g. ``"a number in [0, 1] [pu]"`` or ``"one of 'a', 'b'"``.
        """
        unit = f" [{self.unit}]" if self.unit else ""
        if isinstance(self.kind, type) and issubclass(self.kind, Enum):
            return "one of " + ", ".join(repr(m.value) for m in self.kind)
        if self.kind is bool:
            return "true or false"
        if self.kind is str:
            if self.choices:
                return "one of " + ", ".join(repr(c) for c in self.choices)
            return "a string"
        noun = "an integer" if self.kind is int else "a number"
        lo, hi = self.lo, self.hi
        if lo is not None and hi is not None:
            left = "(" if self.lo_open else "["
            right = ")" if self.hi_open else "]"
            return f"{noun} in {left}{_fmt(lo)}, {_fmt(hi)}{right}{unit}"
        if lo is not None:
            return f"{noun} {'>' if self.lo_open else '>='} {_fmt(lo)}{unit}"
        if hi is not None:
            return f"{noun} {'<' if self.hi_open else '<='} {_fmt(hi)}{unit}"
        return f"{noun}{unit}"

    def check(self, value: Any, *, key: str, problems: list[str]) -> Any:
        """Validate one value; append a problem and return ``None`` if it is not acceptable.

        Parameters
        ----------
        value : Any
            The value as read (TOML types).
        key : str
            Full key path used in the message (``"fleet.control.volt_var.v1_pu"``).
        problems : list of str
            Problems found so far; appended to.

        Returns
        -------
        Any
            The value converted to ``kind`` (``float`` for numbers, the enum member for enums),
            or ``None`` if it was rejected.
        """
        kind = self.kind
        if isinstance(kind, type) and issubclass(kind, Enum):
            if isinstance(value, kind):
                return value
            for member in kind:
                if value == member.value:
                    return member
            problems.append(f"{key}: {value!r} is not {self.range_text()}")
            return None
        if kind is bool:
            if isinstance(value, bool):
                return value
            problems.append(f"{key}: {value!r} is not true or false")
            return None
        if kind is str:
            if not isinstance(value, str):
                problems.append(f"{key}: {value!r} is not a string: expected {self.range_text()}")
                return None
            if self.choices is not None and value not in self.choices:
                problems.append(f"{key}: {value!r} is not {self.range_text()}")
                return None
            return value
        if kind is int:
            # TOML integers only: 3.0 is a float and is refused like 3.5
            if not is_number(value) or isinstance(value, float):
                problems.append(f"{key}: {value!r} is not an integer: expected {self.range_text()}")
                return None
            value = int(value)
        else:
            if not is_number(value):
                problems.append(f"{key}: {value!r} is not a number: expected {self.range_text()}")
                return None
            value = float(value)
            if math.isnan(value) or (math.isinf(value) and not self.allow_inf):
                expected = self.range_text()
                problems.append(f"{key}: {value!r} is not a finite number: expected {expected}")
                return None
        lo, hi = self.lo, self.hi
        below = lo is not None and (value <= lo if self.lo_open else value < lo)
        above = hi is not None and (value >= hi if self.hi_open else value > hi)
        if below or above:
            problems.append(f"{key}: {_fmt(value)} is out of range: expected {self.range_text()}")
            return None
        return value


def _key(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def read_params(
    table: Any,
    params: Sequence[Param],
    *,
    path: str,
    problems: list[str],
    allow_unknown: bool = False,
) -> dict[str, Any]:
    """Read every declared parameter from ``table``; record every problem with its key path.

    Parameters
    ----------
    table : Mapping
        The parsed table (a TOML section). Anything else is one problem.
    params : sequence of Param
        The declarations.
    path : str
        Key path of the table (``"fleet"``, ``"contingency.event"``; empty for the top level).
    problems : list of str
        Problems found so far; appended to (missing required keys, wrong types, values out of
        range, unknown keys unless ``allow_unknown``).
    allow_unknown : bool
        Accept keys that are not declared (the caller reads them itself).

    Returns
    -------
    dict
        ``name -> value`` for every declared parameter: the converted value, the default if
        absent, or the default if rejected (the caller raises on ``problems`` before use).
    """
    out: dict[str, Any] = {}
    if not isinstance(table, Mapping):
        problems.append(f"{path or 'file'}: expected a table, got {table!r}")
        return {p.name: (None if p.required else p.default) for p in params}
    for param in params:
        key = _key(path, param.name)
        if param.name not in table:
            if param.required:
                problems.append(f"{key}: missing (required; {param.range_text()})")
                out[param.name] = None
            else:
                out[param.name] = param.default
            continue
        value = table[param.name]
        if value is None and param.default is None:
            out[param.name] = None
            continue
        checked = param.check(value, key=key, problems=problems)
        out[param.name] = param.default if checked is None else checked
    if not allow_unknown:
        problems.extend(unknown_keys(table, (p.name for p in params), path=path))
    return out


def unknown_keys(table: Mapping, allowed: Iterable[str], *, path: str) -> list[str]:
    """One problem per key of ``table`` not in ``allowed`` (the message lists the allowed keys).

    Parameters
    ----------
    table : Mapping
        The parsed table.
    allowed : iterable of str
        Accepted keys.
    path : str
        Key path of the table.

    Returns
    -------
    list of str
        Problems, empty when every key is known.
    """
    allowed = sorted(set(allowed))
    return [
        f"{_key(path, str(name))}: unknown key (allowed: {', '.join(allowed)})"
        for name in table
        if name not in allowed
    ]


def params_markdown(params: Sequence[Param], *, path: str = "") -> str:
    """Render declarations as a Markdown table (key, default, allowed values, meaning).

    Parameters
    ----------
    params : sequence of Param
        The declarations.
    path : str
        Key path prefix shown in the key column.

    Returns
    -------
    str
        The table, one row per parameter.
    """
    rows = ["| key | default | allowed | meaning |", "|---|---|---|---|"]
    for p in params:
        if p.required:
            default = "required"
        elif isinstance(p.default, Enum):
            default = f"`{p.default.value}`"
        else:
            default = f"`{p.default}`"
        rows.append(f"| `{_key(path, p.name)}` | {default} | {p.range_text()} | {p.doc} |")
    return "\n".join(rows)
