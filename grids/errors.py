"""The project-wide exception hierarchy.

It lives in :mod:`grids`, the lowest layer, so that every package (physics, co-simulation,
studies) can raise and catch the same types. The CLI prints any :class:`V2GCosimError` as one
clear message and exits with status 2.
"""

from __future__ import annotations

from collections.abc import Iterable


class V2GCosimError(Exception):
    """Base of every error v2g-cosim raises on purpose.

    Parameters
    ----------
    message : str
        One-line summary.
    problems : iterable of str, optional
        Every individual problem found (validation reports them all at once). They are
        listed under the summary in ``str(error)``.
    """

    def __init__(self, message: str, *, problems: Iterable[str] | None = None) -> None:
        self.summary = message
        self.problems: list[str] = list(problems) if problems is not None else []
        super().__init__(self._format())

    def _format(self) -> str:
        if not self.problems:
            return self.summary
        lines = [self.summary] + [f"  - {p}" for p in self.problems]
        return "\n".join(lines)


class FeederError(V2GCosimError):
    """A feeder could not be loaded or failed validation (topology, ratings, file format)."""


class ScenarioError(V2GCosimError):
    """A scenario, sweep or settings file (or argument) is invalid; problems name key paths."""


class InputDataError(V2GCosimError):
    """A data file (CSV/Parquet profile, curve, fleet table) is malformed; names file and row."""


class ConvergenceError(V2GCosimError):
    """A numerical solve did not converge.

    Attributes
    ----------
    index : int or None
        Scenario or time-step index that failed.
    worst_bus : int or None
        pandapower bus index with the largest power mismatch.
    max_mismatch : float or None
        Largest power mismatch [pu on the solver's base] at the last iteration.
    """

    def __init__(
        self,
        message: str,
        *,
        index: int | None = None,
        worst_bus: int | None = None,
        max_mismatch: float | None = None,
        problems: Iterable[str] | None = None,
    ) -> None:
        self.index = index
        self.worst_bus = worst_bus
        self.max_mismatch = max_mismatch
        super().__init__(message, problems=problems)


class SimulationError(V2GCosimError):
    """A co-simulation failed while running (a simulator raised, results could not be written)."""


def check_problems(problems: list[str], error_type: type[V2GCosimError], summary: str) -> None:
    """Raise ``error_type(summary, problems=problems)`` if ``problems`` is not empty.

    Validation code collects every problem in a list, then calls this once, so the user sees
    all of them at the same time.

    Parameters
    ----------
    problems : list of str
        Every problem found, each naming its key path, value and what was expected.
    error_type : type of V2GCosimError
        The error to raise (``ScenarioError``, ``InputDataError``, ...).
    summary : str
        One-line summary; the count of problems is appended.

    Raises
    ------
    V2GCosimError
        Of type ``error_type`` when ``problems`` is not empty.
    """
    if problems:
        n = len(problems)
        raise error_type(f"{summary} ({n} problem{'s' if n != 1 else ''})", problems=problems)
