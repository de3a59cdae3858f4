"""OpenDSS models read with OpenDSS itself (opendssdirect.py), for the three-phase engine.

:func:`read_dss` compiles an OpenDSS model (``Redirect``/``Compile`` of multi-file models
resolve relative to the master file's folder) and extracts, as plain numpy data, everything
the project's own three-phase solver (:mod:`grids.powerflow3ph`) needs:

* the network admittance matrix ``Y`` [S] over the circuit's nodes (``YNodeOrder``), summed
  from the primitive admittance matrices (``Yprim``) of the power-delivery elements (Line,
  Transformer incl. regulator transformers at their present tap, Capacitor, Reactor, AutoTrans,
  Fault, a fixed admittance in a snapshot solve; switches and open conductors as OpenDSS builds
  them); loads, PV systems, storage and
  generators are NOT in it;
* each voltage source as its Norton equivalent: the source-impedance admittance ``Y_s`` and the
  current ``I_s = Y_s E`` (EMF ``E`` from ``basekV``, ``pu``, ``angle``); each current source
  (``Isource``) adds its fixed current to ``I_s``;
* per-node base voltages (``Bus.kVBase``, line-to-neutral), bus coordinates;
* the loads (bus nodes, wye/delta, phases, kW, kvar, kV, model, vminpu/vmaxpu/vlowpu,
  ZIPV), the PV systems, storage and generators as constant-power injections, the lines and
  transformers (terminal nodes, ``Yprim``, normal rating) and the regulators (RegControl
  settings and their transformer's taps).

OpenDSS is the field's reference parser: element matrices come from it, the solve does not.
Element classes the engine does not model are listed by name in ``DssCircuit.unsupported``
and in a :class:`UnsupportedElementWarning`, never dropped silently.

References
----------
R. C. Dugan, D. Montenegro, "Reference Guide: The Open Distribution System Simulator
(OpenDSS)", EPRI, 2022 (load models, ``vminpu``/``vlowpu``, voltage source).
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from grids.errors import FeederError, check_problems
from grids.opendss_regulators import (
    DssRegulator,
    complex_matrix,
    read_regulators,
    terminal_nodes,
)

#: Circuit-element classes whose ``Yprim`` goes into the network admittance matrix.
NETWORK_CLASSES = ("line", "transformer", "capacitor", "reactor", "autotrans", "fault")
#: Power-conversion classes read as constant-power injections.
INJECTION_CLASSES = ("pvsystem", "storage", "generator")
#: Classes that do not change the steady state of a snapshot solve (meters, protection that
#: is closed, control of capacitors held at their present state).
PASSIVE_CLASSES = (
    "energymeter",
    "monitor",
    "fuse",
    "relay",
    "recloser",
    "capcontrol",
    "swtcontrol",
    "sensor",
)
#: Load models the engine implements: 1 constant PQ, 2 constant Z, 3 constant P quadratic Q,
#: 4 exponential (CVR), 5 constant |I|.
SUPPORTED_LOAD_MODELS = (1, 2, 3, 4, 5, 8)
#: OpenDSS load model 8: ZIP, with ``ZIPV`` = (Z, I, P fractions of kW; of kvar; cut-off).
MODEL_ZIPV = 8
#: The ZIPV low-voltage drop-out ``0.5 (1 + tanh(500 (V - cutoff)))`` is 1 in double precision
#: from this far above the cut-off [pu] (``Load.pas``: it is skipped for ``500 dV >= 20``).
ZIPV_DROPOUT_REACH_PU = 0.04


class Connection(IntEnum):
    """How a load or injection is connected: phase-to-neutral (wye) or phase-to-phase."""

    WYE = 0
    DELTA = 1


class UnsupportedElementWarning(UserWarning):
    """An OpenDSS model holds elements the three-phase engine does not model."""


@dataclass(frozen=True)
class DssLoads:
    """Loads (or constant-power injections) of an OpenDSS circuit, one row per element.

    Attributes
    ----------
    name : tuple of str
        Element names (without the class prefix).
    bus : tuple of str
        Bus name (lower case, as OpenDSS stores it).
    conn : numpy.ndarray of int
        :class:`Connection` per element.
    phases : numpy.ndarray of int
    nodes : tuple of tuple of int
        Node number per conductor (OpenDSS ``NodeOrder``; 0 is ground).
    p_kw, q_kvar : numpy.ndarray
        Nominal power per element [kW, kvar]; consumption positive for loads, injection
        positive for PV systems, storage and generators.
    kv : numpy.ndarray
        Rated voltage [kV] (line-to-line for 2- and 3-phase wye, across the element otherwise).
    model : numpy.ndarray of int
        OpenDSS load model (1 for injections).
    vminpu, vmaxpu, vlowpu : numpy.ndarray
        Voltage limits of the constant-power/current range [pu of the element's base].
    cvr_watts, cvr_vars : numpy.ndarray
        Exponents of load model 4 (``CVRwatts``, ``CVRvars``).
    zipv : numpy.ndarray (n, 7)
        ``ZIPV`` of model 8 loads (zero rows otherwise): the constant-impedance, -current
        and -power fractions of kW, the same of kvar, and the drop-out voltage [pu].
    """

    name: tuple[str, ...]
    bus: tuple[str, ...]
    conn: np.ndarray
    phases: np.ndarray
    nodes: tuple[tuple[int, ...], ...]
    p_kw: np.ndarray
    q_kvar: np.ndarray
    kv: np.ndarray
    model: np.ndarray
    vminpu: np.ndarray
    vmaxpu: np.ndarray
    vlowpu: np.ndarray
    cvr_watts: np.ndarray
    cvr_vars: np.ndarray
    zipv: np.ndarray

    def __len__(self) -> int:
        return len(self.name)


@dataclass(frozen=True)
class DssLines:
    """Rated two-terminal elements of an OpenDSS circuit, one row per element: the lines
    (including switches), and in the same form the transformers (terminal 1 is winding 1).

    Attributes
    ----------
    name : tuple of str
    bus1, bus2 : tuple of str
    node_index : tuple of numpy.ndarray of int
        Per line, the circuit node index of each terminal conductor (terminal 1 then terminal
        2; -1 for ground).
    yprim : tuple of numpy.ndarray of complex
        Per line, the primitive admittance matrix [S].
    phases : numpy.ndarray of int
    norm_amps : numpy.ndarray
        Normal rating [A] (``NormalAmps``: a transformer's is winding 1's current at its
        ``normhkva``, by default 110 % of its kVA); NaN when none.
    """

    name: tuple[str, ...]
    bus1: tuple[str, ...]
    bus2: tuple[str, ...]
    node_index: tuple[np.ndarray, ...]
    yprim: tuple[np.ndarray, ...]
    phases: np.ndarray
    norm_amps: np.ndarray


@dataclass(frozen=True)
class DssCircuit:
    """Everything the three-phase engine needs from one compiled OpenDSS model.

    Attributes
    ----------
    path : pathlib.Path
        The master file.
    name : str
        Circuit name.
    node_name : tuple of str
        ``BUS.NODE`` per circuit node (OpenDSS ``YNodeOrder``, upper case).
    node_bus : numpy.ndarray of str
        Bus name per node (lower case).
    node_phase : numpy.ndarray of int
        Node number per node (1, 2, 3 = a, b, c; 4+ neutral or other conductors).
    kv_base_ln : numpy.ndarray
        Line-to-neutral base voltage per node [kV].
    buses : tuple of str
        Bus names in circuit order.
    y_network : scipy.sparse.csc_matrix (n_node, n_node) complex
        Admittance of the power-delivery elements [S].
    y_source : scipy.sparse.csc_matrix (n_node, n_node) complex
        Admittance of the voltage sources' impedances to ground [S].
    i_source_a : numpy.ndarray (n_node,) complex
        Norton current of the voltage sources [A].
    source_bus : str
        Bus of the first voltage source.
    loads : DssLoads
    injections : DssLoads
        PV systems, storage and generators (injection positive).
    lines : DssLines
    transformers : DssLines
        Transformers (regulators included), rated at winding 1.
    regulators : tuple of DssRegulator
    bus_xy : dict of str to (float, float) or None
    unsupported : tuple of str
        ``Class.name`` of every enabled element the engine does not model.
    base_frequency_hz : float
    """

    path: Path
    name: str
    node_name: tuple[str, ...]
    node_bus: np.ndarray
    node_phase: np.ndarray
    kv_base_ln: np.ndarray
    buses: tuple[str, ...]
    y_network: sp.csc_matrix
    y_source: sp.csc_matrix
    i_source_a: np.ndarray
    source_bus: str
    loads: DssLoads
    injections: DssLoads
    lines: DssLines
    transformers: DssLines
    regulators: tuple[DssRegulator, ...]
    bus_xy: dict[str, tuple[float, float]] | None
    unsupported: tuple[str, ...]
    base_frequency_hz: float

    @property
    def n_node(self) -> int:
        """Number of circuit nodes."""
        return len(self.node_name)


_CONTEXT: list = []


def _opendss():
    """A private OpenDSS engine (a DSS C-API context of its own, created once).

    Reading never touches the engine a caller may be using through ``opendssdirect``
    directly (a benchmark running OpenDSS side by side, a test building a reference).
    """
    if _CONTEXT:
        return _CONTEXT[0]
    try:
        # lazy: opendssdirect is an optional extra, loaded only when an OpenDSS file is read
        import opendssdirect
    except ImportError as exc:  # pragma: no cover - the test extras install it
        raise FeederError(
            'reading OpenDSS models needs opendssdirect.py: pip install "v2g-cosim[opendss]"'
        ) from exc
    _CONTEXT.append(opendssdirect.NewContext())
    return _CONTEXT[0]


def compile_dss(path: str | Path):
    """Compile an OpenDSS model in its own folder in the reader's private OpenDSS engine.

    Parameters
    ----------
    path : str or pathlib.Path
        Master file (``.dss``).

    Returns
    -------
    opendssdirect.OpenDSSDirect
        The reader's engine (an ``opendssdirect`` context) with the circuit active.

    Raises
    ------
    FeederError
        File missing, or OpenDSS reports an error (its message, file and line).
    """
    dss = _opendss()
    master = Path(path).expanduser().resolve()
    if not master.is_file():
        raise FeederError(f"OpenDSS file {master}: not found")
    cwd = os.getcwd()
    # ``Show`` commands in a model open a text editor on the report unless this (process-wide)
    # switch is off; restored afterwards for other users of opendssdirect in the process
    allow_editor = dss.Basic.AllowEditor()
    try:
        dss.Basic.AllowEditor(False)
        dss.Text.Command("clear")
        dss.Text.Command(f'compile "{master}"')
    except Exception as exc:  # DSSException carries OpenDSS's message with file and line
        # OpenDSS messages span several lines: one line for the CLI's error boundary
        raise FeederError(f"OpenDSS file {master}: {' '.join(str(exc).split())}") from exc
    finally:
        dss.Basic.AllowEditor(allow_editor)
        os.chdir(cwd)
    try:
        n_nodes = dss.Circuit.NumNodes()
    except Exception:  # DSSException: there is no active circuit
        n_nodes = 0
    if n_nodes == 0:
        raise FeederError(f"OpenDSS file {master}: defines no circuit (no 'New Circuit')")
    return dss


def _scatter(rows: list, cols: list, vals: list, idx: np.ndarray, yprim: np.ndarray) -> None:
    keep = idx >= 0
    sub = yprim[np.ix_(keep, keep)]
    i = idx[keep]
    rows.append(np.repeat(i, i.size))
    cols.append(np.tile(i, i.size))
    vals.append(sub.ravel())


def _sparse(rows: list, cols: list, vals: list, n: int) -> sp.csc_matrix:
    if not vals:
        return sp.csc_matrix((n, n), dtype=complex)
    return sp.coo_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)
    ).tocsc()


def _source_emf(dss) -> np.ndarray:
    """EMF per conductor of the active Vsource [V] (terminal 1; terminal 2 at 0 V).

    Phase ``k`` is at ``angle - k 360/n`` (``Sequence=pos``, the default), ``angle + k 360/n``
    (``neg``) or ``angle`` (``zero``), as ``GetVterminalForSource`` in OpenDSS's VSource.
    """
    n = dss.Vsources.Phases()
    kv = dss.Vsources.BasekV()
    pu = dss.Vsources.PU()
    angle = math.radians(dss.Vsources.AngleDeg())
    vmag = kv * 1000.0 * pu if n == 1 else kv * 1000.0 * pu / (2.0 * math.sin(math.pi / n))
    sequence = str(dss.Properties.Value("sequence")).strip().lower()
    rotation = {"n": 1.0, "z": 0.0}.get(sequence[:1], -1.0)
    emf = vmag * np.exp(1j * (angle + rotation * 2.0 * math.pi * np.arange(n) / n))
    n_cond = dss.CktElement.NumConductors()
    out = np.zeros(2 * n_cond, dtype=complex)
    out[:n] = emf
    return out


def _isource_current(dss) -> np.ndarray:
    """Current the active Isource injects per conductor [A] (into terminal 1, out of 2).

    Phase 1 at ``amps`` and ``angle``, each next phase turned by -120 degrees (``Sequence=pos``),
    +120 (``neg``) or not (``zero``), as ``GetInjCurrents`` in OpenDSS's Isource.
    """
    n = dss.CktElement.NumPhases()
    n_cond = dss.CktElement.NumConductors()
    sequence = str(dss.Properties.Value("sequence")).strip().lower()
    step = {"n": 1.0, "z": 0.0}.get(sequence[:1], -1.0) * 2.0 * math.pi / 3.0
    i_a = dss.Isource.Amps() * np.exp(
        1j * (math.radians(dss.Isource.AngleDeg()) + step * np.arange(n))
    )
    out = np.zeros(2 * n_cond, dtype=complex)
    out[:n] = i_a
    out[n_cond : n_cond + n] = -i_a
    return out


def _bus_of(dss) -> str:
    return dss.CktElement.BusNames()[0].split(".")[0].lower()


def _read_pc(dss, kind: str) -> dict:
    """Row of the load/injection table for the active element."""
    row = {
        "name": dss.CktElement.Name().split(".", 1)[1],
        "bus": _bus_of(dss),
        "nodes": tuple(int(n) for n in dss.CktElement.NodeOrder()),
        "phases": dss.CktElement.NumPhases(),
    }
    if kind == "load":
        row.update(
            conn=Connection.DELTA if dss.Loads.IsDelta() else Connection.WYE,
            p_kw=dss.Loads.kW(),
            q_kvar=dss.Loads.kvar(),
            kv=dss.Loads.kV(),
            model=dss.Loads.Model(),
            vminpu=dss.Loads.Vminpu(),
            vmaxpu=dss.Loads.Vmaxpu(),
            vlowpu=float(dss.Properties.Value("vlowpu")),
            cvr_watts=dss.Loads.CVRwatts(),
            cvr_vars=dss.Loads.CVRvars(),
            zipv=tuple(float(x) for x in dss.Loads.ZipV()) or (0.0,) * 7,
        )
        return row
    conn = str(dss.Properties.Value("conn")).strip().lower()
    row["conn"] = Connection.DELTA if conn.startswith(("d", "l")) else Connection.WYE
    row["kv"] = float(dss.Properties.Value("kv"))
    row["model"] = 1
    row["vminpu"] = float(dss.Properties.Value("vminpu"))
    row["vmaxpu"] = float(dss.Properties.Value("vmaxpu"))
    row["vlowpu"] = 0.0
    row["cvr_watts"] = row["cvr_vars"] = 0.0
    row["zipv"] = (0.0,) * 7
    if kind == "pvsystem":
        # OpenDSS's present output: Pmpp x irradiance x the P-T curve's factor at the panel
        # temperature x the inverter efficiency curve, within kVA, %Pmpp and cut-in/out
        row["p_kw"] = dss.PVsystems.kW()
        row["q_kvar"] = dss.PVsystems.kvar()
    elif kind == "storage":
        state = dss.Storages.State()  # 1 charging... OpenDSS: -1 charging, 1 discharging, 0 idle
        kw = float(dss.Properties.Value("kW"))
        row["p_kw"] = 0.0 if state == 0 else kw
        row["q_kvar"] = float(dss.Properties.Value("kvar"))
    else:
        row["p_kw"] = dss.Generators.kW()
        row["q_kvar"] = dss.Generators.kvar()
    return row


def _zipv_problem(row: dict) -> str:
    """Why a model-8 load's ``ZIPV`` cannot be used ("" when it can).

    OpenDSS aborts the solution of a model 8 load without its 7 coefficients; below
    ``vlowpu`` it draws the load's full constant-impedance current, which equals the sum of
    its Z, I and P parts only when each set of three fractions sums to 1.
    """
    zipv = row["zipv"]
    if len(zipv) != 7 or not any(zipv[:6]):
        return "ZIPV not set (model 8 needs its 7 coefficients; OpenDSS aborts without them)"
    sums = (sum(zipv[0:3]), sum(zipv[3:6]))
    if any(abs(x - 1.0) > 1e-6 for x in sums):
        return f"ZIPV fractions sum to {sums[0]:g} (kW) and {sums[1]:g} (kvar); expected 1 each"
    return ""


def _table(rows: list[dict]) -> DssLoads:
    def arr(key, dtype=float):
        return np.array([r[key] for r in rows], dtype=dtype)

    return DssLoads(
        name=tuple(r["name"] for r in rows),
        bus=tuple(r["bus"] for r in rows),
        conn=arr("conn", np.int64),
        phases=arr("phases", np.int64),
        nodes=tuple(r["nodes"] for r in rows),
        p_kw=arr("p_kw"),
        q_kvar=arr("q_kvar"),
        kv=arr("kv"),
        model=arr("model", np.int64),
        vminpu=arr("vminpu"),
        vmaxpu=arr("vmaxpu"),
        vlowpu=arr("vlowpu"),
        cvr_watts=arr("cvr_watts"),
        cvr_vars=arr("cvr_vars"),
        zipv=arr("zipv").reshape(len(rows), 7),
    )


def _bus_coordinates(dss, buses: tuple[str, ...]) -> dict[str, tuple[float, float]] | None:
    xy = {}
    for bus in buses:
        dss.Circuit.SetActiveBus(bus)
        if dss.Bus.Coorddefined():
            xy[bus] = (float(dss.Bus.X()), float(dss.Bus.Y()))
    return xy or None


def read_dss(path: str | Path, *, warn: bool = True) -> DssCircuit:
    """Compile an OpenDSS model and extract the data of the three-phase engine.

    Parameters
    ----------
    path : str or pathlib.Path
        Master file of the model (``Redirect``/``Compile`` inside it are relative to its
        folder).
    warn : bool, keyword-only
        Emit an :class:`UnsupportedElementWarning` listing the elements not modelled.

    Returns
    -------
    DssCircuit
        Network admittance, sources, loads, injections, lines, regulators, coordinates.

    Raises
    ------
    FeederError
        opendssdirect missing, file missing, an OpenDSS compile error, no circuit, buses
        without a base voltage.
    """
    dss = compile_dss(path)
    try:
        return _extract(dss, Path(path).expanduser().resolve(), warn=warn)
    finally:
        # the data are copied out: free the engine's circuit, which holds files open (a
        # RegControl's debugtrace, monitors) that another compile of the model must recreate
        dss.Text.Command("clear")


def _extract(dss, master: Path, *, warn: bool) -> DssCircuit:
    node_name = tuple(str(n).upper() for n in dss.Circuit.YNodeOrder())
    node_index = {n: i for i, n in enumerate(node_name)}
    n = len(node_name)
    node_bus = np.array([s.rsplit(".", 1)[0].lower() for s in node_name])
    node_phase = np.array([int(s.rsplit(".", 1)[1]) for s in node_name], dtype=np.int64)
    buses = tuple(str(b).lower() for b in dss.Circuit.AllBusNames())

    kv_bus = {}
    for bus in buses:
        dss.Circuit.SetActiveBus(bus)
        kv_bus[bus] = float(dss.Bus.kVBase())
    if any(v <= 0 for v in kv_bus.values()):
        dss.Text.Command("calcvoltagebases")
        for bus in buses:
            dss.Circuit.SetActiveBus(bus)
            kv_bus[bus] = float(dss.Bus.kVBase())
    missing = sorted(b for b, v in kv_bus.items() if not v > 0)
    if missing:
        raise FeederError(
            f"OpenDSS file {master}: buses without a base voltage (add 'Set VoltageBases=[...]'"
            f" and 'CalcVoltageBases'): {', '.join(missing[:10])}"
        )
    kv_base_ln = np.array([kv_bus[b] for b in node_bus])

    net = ([], [], [])
    src = ([], [], [])
    i_source = np.zeros(n, dtype=complex)
    loads, injections, unsupported = [], [], []
    bad_zipv: list[str] = []
    rated = {
        cls: {k: [] for k in ("name", "bus1", "bus2", "idx", "y", "ph", "amps")}
        for cls in ("line", "transformer")
    }
    source_bus = ""
    for full in dss.Circuit.AllElementNames():
        dss.Circuit.SetActiveElement(full)
        if not dss.CktElement.Enabled():
            continue
        cls, name = full.split(".", 1)
        cls_l = cls.lower()
        if cls_l in NETWORK_CLASSES:
            idx = terminal_nodes(dss, node_index)
            yprim = complex_matrix(dss.CktElement.YPrim())
            _scatter(*net, idx, yprim)
            if cls_l in rated:
                rows = rated[cls_l]
                bus_names = dss.CktElement.BusNames()
                rows["name"].append(name)
                rows["bus1"].append(bus_names[0].split(".")[0].lower())
                rows["bus2"].append(bus_names[1].split(".")[0].lower())
                rows["idx"].append(idx)
                rows["y"].append(yprim)
                rows["ph"].append(dss.CktElement.NumPhases())
                amps = dss.CktElement.NormalAmps()
                rows["amps"].append(amps if amps > 0 else np.nan)
        elif cls_l == "vsource":
            dss.Vsources.Name(name)
            idx = terminal_nodes(dss, node_index)
            yprim = complex_matrix(dss.CktElement.YPrim())
            emf = _source_emf(dss)
            _scatter(*src, idx, yprim)
            keep = idx >= 0
            np.add.at(i_source, idx[keep], (yprim @ emf)[keep])
            source_bus = source_bus or _bus_of(dss)
        elif cls_l == "isource":
            dss.Isource.Name(name)
            idx = terminal_nodes(dss, node_index)
            keep = idx >= 0
            np.add.at(i_source, idx[keep], _isource_current(dss)[keep])
        elif cls_l == "load":
            dss.Loads.Name(name)
            row = _read_pc(dss, "load")
            if row["model"] not in SUPPORTED_LOAD_MODELS:
                unsupported.append(f"Load.{name} (model {row['model']}, read as model 1)")
                row["model"] = 1
            elif row["model"] == MODEL_ZIPV:
                zip_problem = _zipv_problem(row)
                if zip_problem:
                    bad_zipv.append(f"Load.{name}: {zip_problem}")
                elif row["zipv"][6] + ZIPV_DROPOUT_REACH_PU > row["vlowpu"]:
                    unsupported.append(
                        f"Load.{name} (ZIPV drop-out below "
                        f"{row['zipv'][6] + ZIPV_DROPOUT_REACH_PU:g} pu not modelled: the load "
                        "keeps its ZIP current there)"
                    )
            if row["conn"] == Connection.WYE and dss.Loads.Rneut() >= 0:
                unsupported.append(f"Load.{name} (neutral impedance Rneut/Xneut ignored)")
            loads.append(row)
        elif cls_l in INJECTION_CLASSES:
            {"pvsystem": dss.PVsystems, "storage": dss.Storages, "generator": dss.Generators}[
                cls_l
            ].Name(name)
            row = _read_pc(dss, cls_l)
            if cls_l == "generator" and dss.Generators.Model() != 1:
                unsupported.append(
                    f"Generator.{name} (model {dss.Generators.Model()}, read as constant kW, kvar)"
                )
            injections.append(row)
        elif cls_l == "regcontrol" or cls_l in PASSIVE_CLASSES:
            continue
        else:
            unsupported.append(f"{cls}.{name}")
    if not source_bus:
        raise FeederError(f"OpenDSS file {master}: no voltage source (Vsource)")
    check_problems(bad_zipv, FeederError, f"OpenDSS file {master}: invalid ZIP loads (model 8)")
    y_network, y_source = _sparse(*net, n), _sparse(*src, n)
    touch = (abs(y_network) + abs(y_source)).tocsr()
    touch.eliminate_zeros()
    tied = np.diff(touch.indptr) > 0
    if not tied.all():
        loose = [node_name[k] for k in np.flatnonzero(~tied)]
        raise FeederError(
            f"OpenDSS file {master}: {len(loose)} node(s) touched by no line, transformer, "
            "capacitor, reactor or source, only by loads or generators (e.g. the floating "
            "neutral of an ungrounded wye load, which the engine does not model; ground it "
            f"or connect it to the network): {', '.join(loose[:10])}"
        )

    file_load_mult = float(dss.Solution.LoadMult())
    if abs(file_load_mult - 1.0) > 1e-12:
        # a solution setting, not a load property: the engine's loads are at their kW, kvar
        # and ``solve(load_mult=...)`` is the multiplier OpenDSS's LoadMult would be
        unsupported.append(
            f"Set LoadMult={file_load_mult:g} (loads read at LoadMult=1; pass the multiplier"
            " as load_mult / --load-scale)"
        )
    regulators = read_regulators(dss, node_index)
    for name in dss.RegControls.AllNames():
        dss.RegControls.Name(name)
        options = [
            label
            for label, used in (
                ("reverse mode", dss.RegControls.IsReversible()),
                ("vlimit", dss.RegControls.VoltageLimit() > 0),
                ("remote bus", bool(str(dss.RegControls.MonitoredBus()).strip())),
            )
            if used
        ]
        if options:
            unsupported.append(
                f"RegControl.{name} ({', '.join(options)} not modelled by the tap control)"
            )
    lines, transformers = (
        DssLines(
            name=tuple(rows["name"]),
            bus1=tuple(rows["bus1"]),
            bus2=tuple(rows["bus2"]),
            node_index=tuple(rows["idx"]),
            yprim=tuple(rows["y"]),
            phases=np.array(rows["ph"], dtype=np.int64),
            norm_amps=np.array(rows["amps"], dtype=float),
        )
        for rows in rated.values()
    )
    circuit = DssCircuit(
        path=master,
        name=dss.Circuit.Name(),
        node_name=node_name,
        node_bus=node_bus,
        node_phase=node_phase,
        kv_base_ln=kv_base_ln,
        buses=buses,
        y_network=y_network,
        y_source=y_source,
        i_source_a=i_source,
        source_bus=source_bus,
        loads=_table(loads),
        injections=_table(injections),
        lines=lines,
        transformers=transformers,
        regulators=regulators,
        bus_xy=_bus_coordinates(dss, buses),
        unsupported=tuple(unsupported),
        base_frequency_hz=float(dss.Solution.Frequency()),
    )
    if warn and circuit.unsupported:
        warnings.warn(
            f"OpenDSS file {master}: elements not modelled by the three-phase engine: "
            + ", ".join(circuit.unsupported),
            UnsupportedElementWarning,
            stacklevel=3,
        )
    return circuit
