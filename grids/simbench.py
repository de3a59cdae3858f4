"""SimBench benchmark grids and their year-long 15-minute profiles.

SimBench (Meinecke et al., "SimBench -- A Benchmark Dataset of Electric Power Systems to
Compare Innovative Solutions Based on Power Flow Analysis", Energies 13(12), 3290, 2020;
the ``simbench`` package, BSD licence) ships German benchmark grids from extra-high to low
voltage with one year (2016, 366 days x 96 quarter hours = 35,136 steps) of load, PV, wind and
storage profiles. A grid is named by a code ``<version>-<levels>-<type>-<subnets>-<scenario>-
<switches>``, e.g. ``1-LV-rural1--2-sw``: version 1, the low-voltage grid ``rural1``, scenario 2,
with switches. Scenario 0 is today's grid; scenarios 1 and 2 are future grids with more PV,
storage, heat pumps and EV chargers.

The project names a SimBench grid ``simbench:<code>`` wherever it takes a feeder name
(``--feeder``, ``feeder.name``, :func:`grids.feeders.load_feeder`).

How SimBench marks EV charging
------------------------------
EV chargers are ordinary ``load`` elements whose ``profile`` names a charging-station profile:
``HLS_<variant>_<kW>`` (German *Heimladestation*, a home charging point, e.g. ``HLS_A_11.0``)
and ``APLS_<variant>_<kW>`` or ``APLS_<MW>`` (*Arbeitsplatzladestation*, a workplace charging
point or charging park). They appear in the grids of scenarios 1 and 2 (``--1-``, ``--2-``),
not in every grid (e.g. ``1-LV-urban6--1-sw`` has none; ``1-MV-comm--2-sw`` has five MV charging
parks ``APLS_<MW>``). MV grids connect their LV grids as aggregated loads (profiles
``lv_rural3``, ``lv_urban6``, ...) whose EV share is not separable: only their own charging
parks count as EV loads. Heat pumps are loads with profiles ``Air_*`` and ``Soil_*``.

The profiles are the absolute values of :func:`simbench.get_absolute_values` (``profiles_
instead_of_study_cases=True``): per element and step, the element's rated ``p_mw``/``q_mvar``
times its relative profile. Like ``runpp`` the element's ``scaling`` multiplies them.
"""

from __future__ import annotations

import copy
import difflib
import fnmatch
import re
from enum import Enum
from typing import Any

import numpy as np
from scipy import sparse

from grids.errors import FeederError
from grids.profiles_year import FeederProfiles

#: Prefix of a SimBench grid wherever a feeder name is taken.
SIMBENCH_PREFIX = "simbench:"

#: Year of SimBench's profiles and the step of its time stamps.
SIMBENCH_YEAR = 2016
SIMBENCH_STEP_S = 900.0
#: SimBench's time stamps are German wall-clock times (with the daylight-saving changes).
SIMBENCH_TIME_ZONE = "Europe/Berlin"

#: Load profiles of EV charging points: home (HLS_) and workplace (APLS_) charging stations.
EV_PROFILE_PATTERN = re.compile(r"^(HLS|APLS)_")

#: ``<version>-<levels>-<type>-<subnets>-<scenario>-<switches>``
_CODE_PATTERN = re.compile(
    r"^(?P<version>\d+)-(?P<levels>[A-Za-z_]+)-(?P<type>[\w.]+)-(?P<subnets>[\w.]*)-"
    r"(?P<scenario>\d)-(?P<switches>sw|no_sw)$"
)

_INSTALL_HINT = 'install the extra: pip install "v2g-cosim[simbench]"'

#: built SimBench nets by code (copied out by :func:`load_simbench_net`)
_NETS: dict[str, Any] = {}


def _import_simbench():
    try:
        # lazy: simbench is an optional extra and takes ~3 s to import (it loads pandapower)
        import simbench
    except ImportError as error:
        raise FeederError(
            f"SimBench grids need the simbench package ({_INSTALL_HINT}): {error}"
        ) from None
    return simbench


def is_simbench_name(name: Any) -> bool:
    """Whether a feeder name refers to a SimBench grid (``simbench:<code>``).

    Parameters
    ----------
    name : Any
        A feeder name or path.

    Returns
    -------
    bool
    """
    return isinstance(name, str) and name.startswith(SIMBENCH_PREFIX)


def simbench_code(name: str) -> str:
    """The SimBench code of a feeder name (``simbench:1-LV-rural1--2-sw`` -> the code).

    Parameters
    ----------
    name : str
        ``simbench:<code>`` or a bare code.

    Returns
    -------
    str
    """
    return name[len(SIMBENCH_PREFIX) :] if is_simbench_name(name) else name


def code_parts(code: str) -> dict[str, str] | None:
    """Split a SimBench code into its fields.

    Parameters
    ----------
    code : str
        e.g. ``1-LV-rural1--2-sw``.

    Returns
    -------
    dict or None
        ``version``, ``levels`` (``LV``, ``MV``, ``HVMV``, ``complete_data``...), ``type``,
        ``subnets``, ``scenario`` (``0``, ``1``, ``2``) and ``switches`` (``sw``/``no_sw``);
        ``None`` if the text is not shaped like a code.
    """
    match = _CODE_PATTERN.match(code)
    return None if match is None else match.groupdict()


def simbench_codes(
    *,
    voltage_level: str | None = None,
    scenario: int | None = None,
    pattern: str | None = None,
) -> list[str]:
    """The SimBench grid codes the installed ``simbench`` package provides (no grid is built).

    Parameters
    ----------
    voltage_level : str or None, keyword-only
        Keep codes of this level field only (``LV``, ``MV``, ``HV``, ``EHV``, ``HVMV``,
        ``MVLV``, ...; case-insensitive).
    scenario : int or None, keyword-only
        Keep codes of this scenario (0, 1 or 2).
    pattern : str or None, keyword-only
        Shell-style pattern on the code (``1-LV-*--1-sw``).

    Returns
    -------
    list of str
        Codes without the ``simbench:`` prefix, in the package's order.

    Raises
    ------
    FeederError
        ``simbench`` is not installed; an unknown voltage level or scenario.
    """
    sb = _import_simbench()
    codes = list(sb.collect_all_simbench_codes())
    parts = {c: code_parts(c) or {} for c in codes}
    if voltage_level is not None:
        levels = sorted({p.get("levels", "") for p in parts.values()} - {""})
        wanted = str(voltage_level).upper()
        if wanted not in {lvl.upper() for lvl in levels}:
            raise FeederError(
                f"voltage_level: {voltage_level!r} is not a SimBench level ({', '.join(levels)})"
            )
        codes = [c for c in codes if parts[c].get("levels", "").upper() == wanted]
    if scenario is not None:
        if scenario not in (0, 1, 2):
            raise FeederError(f"scenario: {scenario!r} (expected 0, 1 or 2)")
        codes = [c for c in codes if parts[c].get("scenario") == str(scenario)]
    if pattern is not None:
        codes = [c for c in codes if fnmatch.fnmatchcase(c, simbench_code(pattern))]
    return codes


def check_simbench_code(code: str) -> str:
    """Check that ``code`` (with or without ``simbench:``) names a SimBench grid.

    Parameters
    ----------
    code : str
        The code.

    Returns
    -------
    str
        The bare code.

    Raises
    ------
    FeederError
        An unknown code, naming the closest codes.
    """
    bare = simbench_code(code).strip()
    codes = simbench_codes()
    if bare in codes:
        return bare
    close = difflib.get_close_matches(bare, codes, n=5, cutoff=0.6)
    hint = (
        f"closest: {', '.join(close)}" if close else "list them with `v2g-cosim feeders --simbench`"
    )
    raise FeederError(f"feeder 'simbench:{bare}': not a SimBench grid code ({hint})")


def load_simbench_net(code: str):
    """Build the pandapower net of a SimBench grid, with its profiles in ``net.profiles``.

    Parameters
    ----------
    code : str
        A SimBench code, with or without ``simbench:``.

    Returns
    -------
    pandapowerNet
        A fresh copy (the caller may change it), named ``simbench:<code>``. Built once per
        process (a few seconds), copied afterwards.

    Raises
    ------
    FeederError
        ``simbench`` missing, or an unknown code (with the closest codes).
    """
    bare = check_simbench_code(code)
    built = _NETS.get(bare)
    if built is None:
        sb = _import_simbench()
        built = sb.get_simbench_net(bare)
        built.name = SIMBENCH_PREFIX + bare
        _NETS[bare] = built
    return copy.deepcopy(built)


def clear_simbench_cache() -> None:
    """Forget the SimBench nets built in this process (the next load reads the data again)."""
    _NETS.clear()


def ev_load_mask(net) -> np.ndarray:
    """Which loads of a SimBench net are EV charging points (``HLS_*``/``APLS_*`` profiles).

    Parameters
    ----------
    net : pandapowerNet
        A SimBench net.

    Returns
    -------
    numpy.ndarray (n_load,) of bool
        In ``net.load`` row order.
    """
    if "profile" not in net.load or not len(net.load):
        return np.zeros(len(net.load), dtype=bool)
    profile = net.load["profile"].astype(str)
    return profile.str.match(EV_PROFILE_PATTERN).to_numpy(dtype=bool)


def _profile_time(net, n_steps: int):
    import pandas as pd

    table = net.profiles.get("load") if hasattr(net, "profiles") else None
    if table is not None and "time" in table and len(table) == n_steps:
        time = pd.DatetimeIndex(pd.to_datetime(table["time"], format="%d.%m.%Y %H:%M"))
        # German wall-clock time: the hour skipped in March is missing, October's repeats
        return time.tz_localize(SIMBENCH_TIME_ZONE, ambiguous="infer")
    return pd.date_range(
        f"{SIMBENCH_YEAR}-01-01", periods=n_steps, freq="15min", tz=SIMBENCH_TIME_ZONE
    )


def simbench_profiles(net, model) -> FeederProfiles:
    """The year-long net injection per bus of a SimBench net, in the model's bus order.

    For every in-service load, static generator, generator and storage with a profile the
    absolute profile value replaces its static value in the model's base injection:

    ``p_bus(t) = p_base + sum_e sign_e * scaling_e * (p_e(t) - p_e)``

    with ``sign = -1`` for loads and storages (consumption, storage charging) and ``+1`` for
    generation; elements without a profile keep their static values (as in pandapower's
    ``run_timeseries`` with SimBench's ``ConstControl``s). Reactive power follows the load
    profiles; static generators and storages keep their static ``q_mvar``.

    Parameters
    ----------
    net : pandapowerNet
        A SimBench net with ``net.profiles`` (e.g. ``model.net``).
    model : FeederModel
        The feeder model of that net (its ``bus`` order and ``base_injection()``).

    Returns
    -------
    FeederProfiles
        35,136 steps of 15 min from 2016-01-01 00:00 in :data:`SIMBENCH_TIME_ZONE` (SimBench's
        wall-clock stamps skip an hour in March and repeat one in October: the index is
        time-zone aware, so the steps are uniform), ``ev_p_mw`` from the loads of
        :func:`ev_load_mask` (None if there are none).

    Raises
    ------
    FeederError
        The net has no SimBench profiles, or an element sits at a bus the model lacks.

    References
    ----------
    SimBench documentation, "Time series": https://simbench.de/en/download/datasets/
    """
    if not getattr(net, "profiles", None):
        raise FeederError(
            f"{net.name or 'feeder'}: no SimBench profiles (net.profiles is empty); load the "
            "grid with load_simbench_net or the feeder name simbench:<code>"
        )
    sb = _import_simbench()
    absolute = sb.get_absolute_values(net, profiles_instead_of_study_cases=True)
    bus = np.asarray(model.bus, dtype=np.int64)
    position = {int(b): i for i, b in enumerate(bus)}
    p0, q0 = model.base_injection()
    n_steps = max(len(frame) for frame in absolute.values())
    p = np.broadcast_to(p0, (n_steps, len(bus))).copy()
    q = np.broadcast_to(q0, (n_steps, len(bus))).copy()
    ev = None
    ev_rows = ev_load_mask(net)
    for element, sign in (("load", -1.0), ("sgen", 1.0), ("gen", 1.0), ("storage", -1.0)):
        table = net.get(element)
        if table is None or not len(table):
            continue
        for column, target in (("p_mw", p), ("q_mvar", q)):
            frame = absolute.get((element, column))
            if frame is None or frame.shape[1] == 0:
                continue
            rows = table.index.get_indexer(frame.columns)
            if (rows < 0).any():
                raise FeederError(f"{net.name}: profiles name {element} rows the net lacks")
            in_service = table["in_service"].to_numpy(bool)[rows]
            values = frame.to_numpy(dtype=float)
            if not np.isfinite(values).all():
                raise FeederError(f"{net.name}: {element}.{column} profiles hold NaN values")
            scaling = table["scaling"].to_numpy(float)[rows] if "scaling" in table else 1.0
            static = table[column].to_numpy(float)[rows]
            weight = np.where(in_service, sign * scaling, 0.0)
            missing = [b for b in table["bus"].to_numpy()[rows] if int(b) not in position]
            if missing:
                raise FeederError(f"{net.name}: {element} at buses {missing} not in the model")
            cols = np.array([position[int(b)] for b in table["bus"].to_numpy()[rows]])
            incidence = sparse.csr_matrix(
                (weight, (np.arange(len(rows)), cols)), shape=(len(rows), len(bus))
            )
            target += incidence.T.dot((values - static[None, :]).T).T
            if element == "load" and column == "p_mw" and ev_rows[rows].any():
                ev_weight = np.where(in_service & ev_rows[rows], scaling, 0.0)
                ev_incidence = sparse.csr_matrix(
                    (ev_weight, (np.arange(len(rows)), cols)), shape=(len(rows), len(bus))
                )
                ev = ev_incidence.T.dot(values.T).T
    return FeederProfiles(
        time=_profile_time(net, n_steps),
        step_s=SIMBENCH_STEP_S,
        bus=bus,
        p_mw=p,
        q_mvar=q,
        ev_p_mw=None if ev is None else np.ascontiguousarray(ev),
        source=str(net.name or "simbench"),
    )


class StudyCase(Enum):
    """SimBench's study cases: snapshot operating points given as factors on rated values.

    ``hL`` high load, ``n1`` high load (n-1 planning), ``hW``/``hPV`` high wind/PV with high
    load, ``lW``/``lPV`` high wind/PV with low load (the export worst cases); each also sets
    the slack voltage (0.965 pu at high load, 1.055 pu at low load, SimBench's
    ``net.loadcases`` table).
    """

    HIGH_LOAD = "hL"
    N_MINUS_1 = "n1"
    HIGH_WIND = "hW"
    HIGH_PV = "hPV"
    LOW_LOAD_WIND = "lW"
    LOW_LOAD_PV = "lPV"


def apply_study_case(net, case: StudyCase | str):
    """Set a SimBench net's loads, generation and slack voltage to one of its study cases.

    The values are SimBench's (:func:`simbench.get_absolute_values` with
    ``profiles_instead_of_study_cases=False``): rated power times the study case's factor per
    element type. Storages are not part of SimBench's study cases and are set to 0 MW.

    Parameters
    ----------
    net : pandapowerNet
        A SimBench net (changed in place).
    case : StudyCase or str
        The study case (``hL``, ``n1``, ``hW``, ``hPV``, ``lW``, ``lPV``).

    Returns
    -------
    pandapowerNet
        ``net``.

    Raises
    ------
    FeederError
        An unknown study case, or a net without SimBench study cases.
    """
    try:
        case = StudyCase(case)
    except ValueError:
        names = ", ".join(c.value for c in StudyCase)
        raise FeederError(f"study case {case!r}: expected one of {names}") from None
    if "loadcases" not in net or not len(net.loadcases):
        raise FeederError(f"{net.name or 'feeder'}: no SimBench study cases (net.loadcases)")
    sb = _import_simbench()
    values = sb.get_absolute_values(net, profiles_instead_of_study_cases=False)
    for (element, column), frame in values.items():
        if frame.shape[1] and case.value in frame.index:
            net[element].loc[frame.columns, column] = frame.loc[case.value].to_numpy(dtype=float)
    if "storage" in net and len(net.storage):
        net.storage["p_mw"] = 0.0
        net.storage["q_mvar"] = 0.0
    return net
