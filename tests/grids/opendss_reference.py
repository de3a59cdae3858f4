"""OpenDSS as the reference of the three-phase tests: compile, solve, read in model order.

The reference is OpenDSS itself (DSS C-API through opendssdirect.py, its global engine) on the
same ``.dss`` files the engine reads; the engine's own reader uses a private OpenDSS instance,
so the two never share state. Shared by the test modules of this folder (imported as a
sibling module: pytest puts this folder on ``sys.path`` for them).
"""

from __future__ import annotations

import os

import numpy as np
import opendssdirect as dss

from grids.feeder3ph import ThreePhaseFeederModel
from grids.opendss import NETWORK_CLASSES


def compile_reference(path) -> None:
    """Compile ``path`` in OpenDSS's global engine, keeping the working directory (OpenDSS's
    ``compile`` moves the process to the file's folder) and with its editor off."""
    cwd = os.getcwd()
    allow_editor = dss.Basic.AllowEditor()
    try:
        dss.Basic.AllowEditor(False)
        dss.Text.Command("clear")
        dss.Text.Command(f'compile "{path}"')
    finally:
        dss.Basic.AllowEditor(allow_editor)
        os.chdir(cwd)


def node_voltages_pu(model: ThreePhaseFeederModel) -> np.ndarray:
    """OpenDSS's present node voltages in the model's node order [pu of the node's base]."""
    names = [s.upper() for s in dss.Circuit.YNodeOrder()]
    flat = np.asarray(dss.Circuit.YNodeVArray())
    v = flat[0::2] + 1j * flat[1::2]
    labels = [f"{b.upper()}.{p}" for b, p in zip(model.node_bus, model.node_phase, strict=True)]
    return v[[names.index(lab) for lab in labels]] / (model.kv_base_ln * 1000.0)


def winding1_currents(model: ThreePhaseFeederModel, conductors) -> tuple[np.ndarray, np.ndarray]:
    """OpenDSS's present current and normal rating of each ``element.phase`` in ``conductors``
    (a transformer's winding 1 or a line's first terminal, in the engine's labels) [A]."""
    current, rating = [], []
    for label in conductors:
        name, _, letter = str(label).rpartition(".")
        kind = "Line" if label in model.line_conductor else "Transformer"
        dss.Circuit.SetActiveElement(f"{kind}.{name}")
        idx = model.circuit_node_to_model(_terminal1_nodes(kind, name, model))
        mags = np.asarray(dss.CktElement.CurrentsMagAng()).reshape(-1, 2)[:, 0]
        phases = [model.node_phase[k] if k >= 0 else 0 for k in idx]
        current.append(mags[phases.index("abc".index(letter) + 1)])
        rating.append(dss.CktElement.NormalAmps())
    return np.array(current), np.array(rating)


def _terminal1_nodes(kind: str, name: str, model: ThreePhaseFeederModel) -> np.ndarray:
    table = model.circuit.lines if kind == "Line" else model.circuit.transformers
    return table.node_index[table.name.index(name)]


def element_losses_kw() -> float:
    """Losses summed over OpenDSS's enabled power-delivery elements [kW].

    ``Circuit.Losses`` leaves out shunt elements (a fault or a reactor to ground); the
    engine's losses are every power-delivery element's (source + injections - loads).
    """
    losses_w = 0.0
    for full in dss.Circuit.AllElementNames():
        dss.Circuit.SetActiveElement(full)
        if full.split(".")[0].lower() in NETWORK_CLASSES and dss.CktElement.Enabled():
            losses_w += dss.CktElement.Losses()[0]
    return losses_w / 1000.0


def snapshot_reference(
    path, model: ThreePhaseFeederModel, *, load_mult: float = 1.0
) -> tuple[np.ndarray, float]:
    """OpenDSS's snapshot solution of ``path``: controls off (the file's taps held),
    convergence 1e-12, the load multiplier given; ``(v_pu in model order, losses kW)``."""
    compile_reference(path)
    dss.Text.Command("set controlmode=off")
    dss.Text.Command("set mode=snapshot")
    dss.Solution.Convergence(1e-12)
    dss.Solution.MaxIterations(500)
    dss.Solution.LoadMult(load_mult)
    dss.Solution.Solve()
    assert dss.Solution.Converged()
    return node_voltages_pu(model), element_losses_kw()
