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

import numpy as np
import opendssdirect as dss
import pytest
from opendss_reference import snapshot_reference

from cosim.cli import main
from grids.errors import FeederError
from grids.feeder3ph import ThreePhaseFeederModel
from grids.opendss import UnsupportedElementWarning, read_dss

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


def _assert_matches_opendss(path) -> ThreePhaseFeederModel:
    model = ThreePhaseFeederModel.from_dss(path)
    result = model.solve(warm_start=False)
    assert result.converged.all()
    v_ref, losses_ref_kw = snapshot_reference(path, model)
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
    """Elements the engine does not model (a load's neutral impedance, load model 7) are named
    in one ``warning:`` line (no Python warning text) and in the JSON's
    ``unsupported_elements``."""
    path = tmp_path / "unsupported.dss"
    path.write_text(
        FOUR_BUS.replace(
            "Set Voltagebases",
            "New Load.rn bus1=b4.1 phases=1 kv=2.4 kw=20 kvar=5 rneut=0.5 xneut=0.1\n"
            "New Load.z bus1=b4.2 phases=1 kv=2.4 kw=5 model=7\n"
            "Set Voltagebases",
        )
    )
    assert main(["powerflow", "--feeder", str(path), "--json"]) == 0
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert doc["unsupported_elements"] == [
        "Load.rn (neutral impedance Rneut/Xneut ignored)",
        "Load.z (model 7, read as model 1)",
    ]
    lines = [line for line in captured.err.splitlines() if "not modelled" in line]
    assert len(lines) == 1 and lines[0].startswith("warning: fourbus:"), captured.err
    assert "Load.rn" in lines[0] and "Load.z" in lines[0]
    assert "UnsupportedElementWarning" not in captured.err
    # a feeder with nothing unsupported says nothing and lists nothing
    path.write_text(FOUR_BUS)
    assert main(["powerflow", "--feeder", str(path), "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["unsupported_elements"] == []
    assert "not modelled" not in captured.err


@pytest.mark.parametrize("sequence", ["neg", "zero"])
def test_vsource_phase_sequence_matches_opendss(tmp_path, sequence):
    """``Sequence=neg`` turns the source's phases the other way (a at 0, b at +120, c at
    -120 degrees), ``zero`` puts them in phase; the EMF was always positive sequence."""
    path = tmp_path / f"fourbus_{sequence}.dss"
    path.write_text(FOUR_BUS.replace("Isc1=110000", f"Isc1=110000 sequence={sequence}"))
    model = _assert_matches_opendss(path)
    va = model.solve(warm_start=False).va_degree[0]
    b1 = [model.node_index("b1", p) for p in (1, 2, 3)]
    expected = [0.0, 120.0, -120.0] if sequence == "neg" else [0.0, 0.0, 0.0]
    np.testing.assert_allclose(va[b1], expected, atol=0.1)


def test_file_load_multiplier_is_listed_and_matches_opendss_when_passed(tmp_path):
    """``Set LoadMult=0.7`` in a file is a solution setting: the reader lists it (never
    dropped silently) and the engine at ``load_mult=0.7`` equals OpenDSS solving the file."""
    path = tmp_path / "fourbus_loadmult.dss"
    path.write_text(FOUR_BUS.replace("Solve", "Set LoadMult=0.7\nSolve"))
    with pytest.warns(UnsupportedElementWarning, match="LoadMult=0.7"):
        model = ThreePhaseFeederModel.from_dss(path)
    assert model.unsupported == (
        "Set LoadMult=0.7 (loads read at LoadMult=1; pass the multiplier as load_mult / "
        "--load-scale)",
    )
    result = model.solve(load_mult=0.7, warm_start=False)
    v_ref, losses_ref_kw = snapshot_reference(path, model, load_mult=0.7)
    assert np.abs(result.v_pu[0] - v_ref).max() < 1e-7
    assert result.losses_kw[0] == pytest.approx(losses_ref_kw, rel=1e-6)


PV_CASES = {
    # efficiency curve and P-T curve at 50 degC: 0.9 x 450 kW x 0.9 x 0.95 = 347 kW, not 405
    "curves": "New XYCurve.eff npts=4 xarray=[.1 .2 .4 1.0] yarray=[.86 .9 .93 .97]\n"
    "New XYCurve.pt npts=4 xarray=[0 25 75 100] yarray=[1.2 1.0 0.8 0.6]\n"
    "New PVSystem.pv bus1=b4 phases=3 kv=4.16 kVA=500 Pmpp=450 irradiance=0.9 pf=1\n"
    "~ effcurve=eff P-TCurve=pt temperature=50",
    # output above the inverter's kVA, and a %Pmpp limit, at a power factor
    "kva_limit": "New PVSystem.pv bus1=b4 phases=3 kv=4.16 kVA=300 Pmpp=450 irradiance=1 pf=0.95",
    "pct_pmpp": "New PVSystem.pv bus1=b4.2 phases=1 kv=2.4 kVA=100 Pmpp=90 irradiance=1 %Pmpp=60",
}


@pytest.mark.parametrize("case", list(PV_CASES))
def test_pv_system_output_is_opendss_present_output(tmp_path, case):
    """A PV system injects OpenDSS's present output (``PVSystems.kW``), with its efficiency
    and power-temperature curves, kVA and %Pmpp limits, not ``Pmpp x irradiance``."""
    path = tmp_path / f"fourbus_pv_{case}.dss"
    path.write_text(FOUR_BUS.replace("Set Voltagebases", PV_CASES[case] + "\nSet Voltagebases"))
    model = _assert_matches_opendss(path)
    assert model.unsupported == ()


def test_node_touched_only_by_a_load_is_named(tmp_path):
    """An ungrounded wye load (``bus1=b4.1.2.3.4``, node 4 tied to nothing else) leaves a
    node outside the network admittance; OpenDSS solves it through the load's own Yprim,
    the engine does not model it: a FeederError naming the node, not a singular matrix."""
    path = tmp_path / "floating_neutral.dss"
    path.write_text(
        FOUR_BUS.replace(
            "Set Voltagebases",
            "New Load.u bus1=b4.1.2.3.4 phases=3 kv=4.16 kw=200 kvar=50\nSet Voltagebases",
        )
    )
    with pytest.raises(FeederError, match=r"1 node\(s\) touched by no line.*: B4\.4$"):
        read_dss(path)
    # the same load with its neutral grounded through a reactor is solved as OpenDSS does
    path.write_text(
        path.read_text().replace(
            "Set Voltagebases", "New Reactor.ng bus1=b4.4 phases=1 r=5 x=1\nSet Voltagebases"
        )
    )
    _assert_matches_opendss(path)


ISOURCES = (
    "New Isource.i1 bus1=b4.1 amps=50 angle=-30 phases=1\n"
    "New Isource.i3 bus1=b4 amps=40 angle=10 phases=3 sequence=neg\n"
    "New Isource.ll bus1=b3.1 bus2=b3.2 amps=30 phases=1\n"
)


def test_current_sources_inject_their_current(tmp_path):
    """An ``Isource`` injects a fixed current (phase 1 at ``amps``, ``angle``, the others
    turned by -120 or +120 degrees for ``Sequence=neg``) into bus1 and out of bus2; it was
    listed as unsupported and left out. Three sources (one-phase to ground, three-phase
    negative sequence, phase to phase) against OpenDSS."""
    path = tmp_path / "fourbus_isource.dss"
    path.write_text(FOUR_BUS.replace("Set Voltagebases", ISOURCES + "Set Voltagebases"))
    model = _assert_matches_opendss(path)
    assert model.unsupported == ()
    result = model.solve(warm_start=False)
    s_src = result.p_source_kw[0] + result.p_injection_kw[0]
    assert s_src == pytest.approx(result.losses_kw[0] + result.load_p_kw[0].sum(), rel=1e-9)


def test_reader_frees_files_the_model_opens(tmp_path):
    """EPRI ckt24's substation regulator has ``debugtrace=yes``: OpenDSS opens a trace file
    next to the model. The reader's engine kept it open, so OpenDSS compiling the same model
    afterwards (the reference, a benchmark) failed with error 303; the reader now clears its
    circuit once the data are read."""
    path = tmp_path / "fourbus_trace.dss"
    path.write_text(
        FOUR_BUS.replace(
            "Set Voltagebases",
            "New RegControl.r1 transformer=ta winding=2 vreg=120 band=2 ptratio=20 "
            "debugtrace=yes\nSet Voltagebases",
        )
    )
    _assert_matches_opendss(path)  # reads, then compiles the same file in OpenDSS
    assert (tmp_path / "REG_r1.csv").is_file()


def test_autotransformer_matches_opendss(tmp_path):
    """An ``AutoTrans`` (series-common, 4.16 to 3.8 kV) puts its series winding's two ends,
    bus1's and bus2's nodes, on its first terminal under bus1's name; read by bus name they
    all landed on bus1 (0.95 pu off OpenDSS). Node references fix it."""
    path = tmp_path / "fourbus_autotrans.dss"
    path.write_text(
        FOUR_BUS.replace(
            "Set Voltagebases=[12.47 4.16]",
            "New AutoTrans.at phases=3 windings=2 buses=[b4 b8] conns=[series wye] "
            "kvs=[4.16 3.8]\n~ kvas=[1000 1000] XHX=3 %r=0.5\n"
            "New Load.at bus1=b8 phases=3 kv=3.8 kw=200 kvar=50\n"
            "Set Voltagebases=[12.47 4.16 3.8]",
        )
    )
    model = _assert_matches_opendss(path)
    assert model.unsupported == ()
