"""Voltage regulators (RegControl) of OpenDSS models, for the three-phase engine.

:func:`read_regulators` reads each RegControl's settings and, from OpenDSS itself, the
primitive admittance of the regulator transformer at every tap position, so that the engine
can move taps by the ``Yprim`` difference (:mod:`grids.regulation3ph`). Also the two small
helpers the reader shares: :func:`complex_matrix` and :func:`terminal_nodes`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class DssRegulator:
    """One RegControl and the winding it taps.

    Attributes
    ----------
    name, transformer : str
    winding : int
        Controlled winding (1-based).
    tap_pu : float
        Present tap of that winding [pu].
    min_tap_pu, max_tap_pu : float
    num_taps : int
        Number of tap steps between min and max.
    vreg_v, band_v : float
        Set point and bandwidth on the 120 V base [V].
    pt_ratio, ct_primary_a, r_v, x_v : float
        Potential transformer ratio, CT primary rating [A], line-drop compensator [V].
    delay_s, tap_delay_s : float
        Time delay of the first tap change and between further changes [s].
    max_tap_change : int
        Most tap steps per control action (OpenDSS ``maxtapchange``).
    pt_phase : int
        Monitored phase (1-based conductor of the winding).
    n_phases, n_conds : int
        Phases and conductors per terminal of the transformer.
    winding_delta : bool
        The monitored winding is delta connected.
    winding_v_base_v : float
        Base voltage of the monitored winding [V] (OpenDSS ``BaseVoltage``).
    node_index : numpy.ndarray of int
        Circuit node of every conductor of the transformer (-1 for ground).
    positions_pu : numpy.ndarray (n_pos,)
        Every tap position of the controlled winding [pu].
    yprims : numpy.ndarray (n_pos, m, m) complex
        The transformer's primitive admittance at each position [S] (from OpenDSS).
    """

    name: str
    transformer: str
    winding: int
    tap_pu: float
    min_tap_pu: float
    max_tap_pu: float
    num_taps: int
    vreg_v: float
    band_v: float
    pt_ratio: float
    ct_primary_a: float
    r_v: float
    x_v: float
    delay_s: float
    tap_delay_s: float
    max_tap_change: int
    pt_phase: int
    n_phases: int
    n_conds: int
    winding_delta: bool
    winding_v_base_v: float
    node_index: np.ndarray
    positions_pu: np.ndarray
    yprims: np.ndarray


def complex_matrix(flat: list[float] | np.ndarray) -> np.ndarray:
    """A square complex matrix from OpenDSS's interleaved (re, im) list.

    Parameters
    ----------
    flat : sequence of float
        ``[re_11, im_11, re_12, im_12, ...]`` as ``CktElement.YPrim()`` returns it.

    Returns
    -------
    numpy.ndarray (n, n) complex
    """
    values = np.asarray(flat, dtype=float)
    z = values[0::2] + 1j * values[1::2]
    n = math.isqrt(z.size)
    return z.reshape(n, n)


def terminal_nodes(dss, node_index: dict[str, int]) -> np.ndarray:
    """Circuit node index of every conductor of OpenDSS's active element.

    Parameters
    ----------
    dss : opendssdirect context
        Engine with the element active.
    node_index : dict of str to int
        ``"BUS.NODE"`` (upper case) -> circuit node index.

    Returns
    -------
    numpy.ndarray of int
        One entry per conductor, terminal by terminal; -1 for ground (node 0).
    """
    if dss.CktElement.Name().lower().startswith("autotrans."):
        # an autotransformer's first terminal holds the series winding's both ends (bus1's
        # and bus2's nodes) under bus1's name: OpenDSS's own node references (1-based in
        # YNodeOrder, 0 = ground) say which node each conductor is on
        names = dss.Circuit.YNodeOrder()
        return np.array(
            [-1 if r == 0 else node_index[names[r - 1].upper()] for r in dss.CktElement.NodeRef()],
            dtype=np.int64,
        )
    buses = dss.CktElement.BusNames()
    order = dss.CktElement.NodeOrder()
    n_cond = dss.CktElement.NumConductors()
    out = np.empty(len(order), dtype=np.int64)
    for k, node in enumerate(order):
        bus = buses[k // n_cond].split(".")[0].upper()
        out[k] = -1 if node == 0 else node_index[f"{bus}.{node}"]
    return out


def _int_or(text: str, default: int) -> int:
    try:
        return int(float(str(text).strip()))
    except ValueError:  # "max", "min" (phase selection modes): the first phase
        return default


def _transformer_yprims(dss, name: str, winding: int, positions: np.ndarray) -> np.ndarray:
    """Primitive admittance of a transformer at each tap of one winding (then restored)."""
    dss.Transformers.Name(name)
    dss.Transformers.Wdg(winding)
    present = dss.Transformers.Tap()
    out = []
    for tap in [*positions, present]:
        dss.Transformers.Name(name)
        dss.Transformers.Wdg(winding)
        dss.Transformers.Tap(float(tap))
        dss.YMatrix.BuildYMatrixD(2, False)  # recomputes the element's Yprim
        dss.Circuit.SetActiveElement(f"Transformer.{name}")
        out.append(complex_matrix(dss.CktElement.YPrim()))
    return np.array(out[:-1])


def read_regulators(dss, node_index: dict[str, int]) -> tuple[DssRegulator, ...]:
    """Every RegControl of the compiled circuit, with its transformer's ``Yprim`` per tap.

    Parameters
    ----------
    dss : opendssdirect context
        Engine with the circuit compiled (taps are restored after reading).
    node_index : dict of str to int
        ``"BUS.NODE"`` (upper case) -> circuit node index.

    Returns
    -------
    tuple of DssRegulator
    """
    rows = []
    for name in dss.RegControls.AllNames():
        dss.RegControls.Name(name)
        rows.append(
            {
                "name": name,
                "transformer": dss.RegControls.Transformer(),
                "winding": dss.RegControls.Winding(),
                "vreg_v": dss.RegControls.ForwardVreg(),
                "band_v": dss.RegControls.ForwardBand(),
                "pt_ratio": dss.RegControls.PTRatio(),
                "ct_primary_a": dss.RegControls.CTPrimary(),
                "r_v": dss.RegControls.ForwardR(),
                "x_v": dss.RegControls.ForwardX(),
                "delay_s": dss.RegControls.Delay(),
                "tap_delay_s": dss.RegControls.TapDelay(),
                "max_tap_change": dss.RegControls.MaxTapChange(),
                "pt_phase": _int_or(dss.Properties.Value("PTphase"), 1),
            }
        )
    out = []
    for row in rows:
        dss.Transformers.Name(row["transformer"])
        dss.Transformers.Wdg(row["winding"])
        lo, hi, n = dss.Transformers.MinTap(), dss.Transformers.MaxTap(), dss.Transformers.NumTaps()
        tap = dss.Transformers.Tap()
        kv = dss.Transformers.kV()
        delta = bool(dss.Transformers.IsDelta())
        positions = np.linspace(lo, hi, n + 1)
        dss.Circuit.SetActiveElement(f"Transformer.{row['transformer']}")
        idx = terminal_nodes(dss, node_index)
        n_ph, n_cond = dss.CktElement.NumPhases(), dss.CktElement.NumConductors()
        # OpenDSS's winding base: line-to-neutral for a 2- or 3-phase wye winding
        v_base = kv * 1000.0 / (math.sqrt(3.0) if not delta and n_ph in (2, 3) else 1.0)
        yprims = _transformer_yprims(dss, row["transformer"], row["winding"], positions)
        out.append(
            DssRegulator(
                **row,
                tap_pu=tap,
                min_tap_pu=lo,
                max_tap_pu=hi,
                num_taps=n,
                n_phases=n_ph,
                n_conds=n_cond,
                winding_delta=delta,
                winding_v_base_v=v_base,
                node_index=idx,
                positions_pu=positions,
                yprims=yprims,
            )
        )
    return tuple(out)
