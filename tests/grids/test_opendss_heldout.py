"""The OpenDSS reader and three-phase engine on model features first met in held-out feeders.

Each case is a small hand-written model reproducing what a public OpenDSS test feeder does
(the IEEE 4-bus Yy-delta case's ``Show`` reports and single-line-to-ground ``Fault``, the
Kersting four-wire delta case's generator user model), solved by the project's engine and by
OpenDSS itself (opendssdirect, snapshot, controls off, convergence 1e-12) on the same file.
Tolerances: per-phase voltage 1e-7 pu and angle 1e-5 deg (issue 14 asks 1e-4 pu, 0.01 deg),
losses (summed over OpenDSS's power-delivery elements) 1e-6 relative; errors are one line
through the CLI's error boundary.
"""

from __future__ import annotations

import json
import os

import numpy as np
import opendssdirect as dss
import pytest

from cosim.cli import main
from grids.errors import FeederError
from grids.feeder3ph import ThreePhaseFeederModel
from grids.opendss import NETWORK_CLASSES, read_dss

#: IEEE 4-bus style feeder: 12.47 kV source, Yg-Yg step-down bank of three single-phase
#: transformers, an unbalanced wye load, a constant-impedance delta load.
FOUR_BUS = """Clear
Set DefaultBaseFrequency=60
New Circuit.fourbus basekv=12.47 bus1=b1 pu=1.0 Isc3=100000 Isc1=110000
New Line.l12 bus1=b1 bus2=b2 r1=0.3 x1=0.6 r0=0.9 x0=1.8 length=2 units=km
New Transformer.ta phases=1 windings=2 buses=[b2.1.0 b3.1.0] kvs=[7.2 2.4] kvas=[2000 2000]
~ xhl=6 %r=0.5
New Transformer.tb phases=1 windings=2 buses=[b2.2.0 b3.2.0] kvs=[7.2 2.4] kvas=[2000 2000]
~ xhl=6 %r=0.5
New Transformer.tc phases=1 windings=2 buses=[b2.3.0 b3.3.0] kvs=[7.2 2.4] kvas=[2000 2000]
~ xhl=6 %r=0.5
New Line.l34 bus1=b3 bus2=b4 r1=0.2 x1=0.4 r0=0.6 x0=1.2 length=0.5 units=km
New Load.a bus1=b4.1 phases=1 kv=2.4 kw=900 kvar=300 model=1
New Load.b bus1=b4.2 phases=1 kv=2.4 kw=1200 kvar=500 model=1
New Load.c bus1=b4.3 phases=1 kv=2.4 kw=700 kvar=200 model=1
New Load.d bus1=b4 phases=3 kv=4.16 kw=600 kvar=250 model=2 conn=delta
Set Voltagebases=[12.47 4.16]
Calcvoltagebases
Solve
"""


#: A generator with a user model (a DLL OpenDSS cannot load here): OpenDSS's compile error.
USER_MODEL = FOUR_BUS.replace(
    "Set Voltagebases",
    "New Generator.m bus1=b4 kv=4.16 kw=100 model=6\n~ usermodel=NoSuchMachineModel\n"
    "Set Voltagebases",
)


def _reference(path, model: ThreePhaseFeederModel):
    """OpenDSS's snapshot solution of ``path`` (global engine): v_pu in model order, kW lost."""
    cwd = os.getcwd()
    allow_editor = dss.Basic.AllowEditor()
    try:
        dss.Basic.AllowEditor(False)
        dss.Text.Command("clear")
        dss.Text.Command(f'compile "{path}"')
    finally:
        dss.Basic.AllowEditor(allow_editor)
        os.chdir(cwd)
    dss.Text.Command("set controlmode=off")
    dss.Text.Command("set mode=snapshot")
    dss.Solution.Convergence(1e-12)
    dss.Solution.MaxIterations(500)
    dss.Solution.Solve()
    assert dss.Solution.Converged()
    names = [s.upper() for s in dss.Circuit.YNodeOrder()]
    flat = np.asarray(dss.Circuit.YNodeVArray())
    v = flat[0::2] + 1j * flat[1::2]
    labels = [f"{b.upper()}.{p}" for b, p in zip(model.node_bus, model.node_phase, strict=True)]
    v_pu = v[[names.index(lab) for lab in labels]] / (model.kv_base_ln * 1000.0)
    # OpenDSS's Circuit.Losses leaves out shunt elements (a fault or a reactor to ground);
    # the engine's losses are every power-delivery element's (source + injections - loads)
    losses_w = 0.0
    for full in dss.Circuit.AllElementNames():
        dss.Circuit.SetActiveElement(full)
        if full.split(".")[0].lower() in NETWORK_CLASSES and dss.CktElement.Enabled():
            losses_w += dss.CktElement.Losses()[0]
    return v_pu, losses_w / 1000.0


def _assert_matches_opendss(path) -> ThreePhaseFeederModel:
    model = ThreePhaseFeederModel.from_dss(path)
    result = model.solve(warm_start=False)
    assert result.converged.all()
    v_ref, losses_ref_kw = _reference(path, model)
    dvm = np.abs(result.vm_pu[0] - np.abs(v_ref))
    dva = np.abs((result.va_degree[0] - np.degrees(np.angle(v_ref)) + 180.0) % 360.0 - 180.0)
    dva[np.abs(v_ref) < 1e-3] = 0.0  # the angle of a dead (faulted) node is noise
    assert dvm.max() < 1e-7, f"max |dV| {dvm.max():.2e} pu"
    assert dva.max() < 1e-5, f"max |dangle| {dva.max():.2e} deg"
    assert result.losses_kw[0] == pytest.approx(losses_ref_kw, rel=1e-6)
    return model


def test_show_and_export_commands_in_the_model_do_not_stop_the_reader(tmp_path):
    """The IEEE 4-bus master files end with ``Show`` reports, which made OpenDSS try to open
    a text editor (error 704); the reader turns the editor off and restores the switch."""
    path = tmp_path / "fourbus_show.dss"
    path.write_text(FOUR_BUS + "Show Voltage LN Nodes\nShow Powers kva Elements\n")
    before = dss.Basic.AllowEditor()
    model = _assert_matches_opendss(path)
    assert dss.Basic.AllowEditor() == before
    assert model.unsupported == ()


def test_fault_element_is_part_of_the_network(tmp_path):
    """A ``Fault`` (here a bolted-ish line-to-ground fault at the transformer's primary, as
    the IEEE 4-bus Yy-delta master adds) is an admittance in a snapshot solve: it enters Y
    through its own ``Yprim`` like a line, and the engine then matches OpenDSS."""
    path = tmp_path / "fourbus_fault.dss"
    path.write_text(FOUR_BUS + "New Fault.slg phases=1 bus1=b2.1 bus2=b2.0 r=0.5\nSolve\n")
    model = _assert_matches_opendss(path)
    assert model.unsupported == ()
    # the fault pulls phase a of b2 far down: the fault is really in the solution
    result = model.solve(warm_start=False)
    assert result.vm_pu[0, model.node_index("b2", 1)] < 0.5
    # a disabled fault is left out, like any disabled element
    path.write_text(path.read_text() + "Fault.slg.enabled=no\nSolve\n")
    model = _assert_matches_opendss(path)
    assert model.solve(warm_start=False).vm_pu[0, model.node_index("b2", 1)] > 0.9


def test_opendss_multi_line_error_is_one_line(tmp_path):
    """OpenDSS's messages span lines (the Kersting four-wire delta case needs a generator
    user model DLL: error 570 with the file and line on a second line); the reader's
    FeederError, and so the CLI's message, is one line naming file, line and reason."""
    path = tmp_path / "usermodel.dss"
    path.write_text(USER_MODEL)
    with pytest.raises(FeederError) as info:
        read_dss(path)
    message = str(info.value)
    assert "\n" not in message
    line_no = path.read_text().splitlines().index("~ usermodel=NoSuchMachineModel") + 1
    assert "usermodel.dss" in message and f"line: {line_no}" in message
    assert "NoSuchMachineModel" in message


def test_cli_reports_an_opendss_error_in_one_line(tmp_path, capsys):
    path = tmp_path / "usermodel.dss"
    path.write_text(USER_MODEL)
    assert main(["powerflow", "--feeder", str(path), "--json"]) == 2
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), captured.err
    assert "NoSuchMachineModel" in lines[0]


def test_cli_lists_unsupported_elements_by_name_in_one_line(tmp_path, capsys):
    """Elements the engine does not model (a current source, a ZIP load) are named in one
    ``warning:`` line (no Python warning text) and in the JSON's ``unsupported_elements``."""
    path = tmp_path / "unsupported.dss"
    path.write_text(
        FOUR_BUS.replace(
            "Set Voltagebases",
            "New Isource.i1 bus1=b4.1 amps=5 phases=1\n"
            "New Load.z bus1=b4.2 phases=1 kv=2.4 kw=5 model=8 zipv=[0.3 0.3 0.4 0.3 0.3 0.4 0.5]\n"
            "Set Voltagebases",
        )
    )
    assert main(["powerflow", "--feeder", str(path), "--json"]) == 0
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert doc["unsupported_elements"] == ["Isource.i1", "Load.z (model 8, read as model 1)"]
    lines = [line for line in captured.err.splitlines() if "not modelled" in line]
    assert len(lines) == 1 and lines[0].startswith("warning: fourbus:"), captured.err
    assert "Isource.i1" in lines[0] and "Load.z" in lines[0]
    assert "UnsupportedElementWarning" not in captured.err
    # a feeder with nothing unsupported says nothing and lists nothing
    path.write_text(FOUR_BUS)
    assert main(["powerflow", "--feeder", str(path), "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["unsupported_elements"] == []
    assert "not modelled" not in captured.err
