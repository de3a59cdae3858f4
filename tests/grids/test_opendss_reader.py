"""The OpenDSS reader (``grids.opendss``): what it extracts, what it refuses, what it lists.

References: OpenDSS (opendssdirect) itself: the system admittance matrix it builds with the
loads disabled (``YMatrix.getYsparse``) must equal our sum of element ``Yprim`` plus the
sources' (1e-9 relative), and its snapshot solution of a small low-voltage feeder with every
supported element kind (PV system, storage, wye and delta loads of models 1, 2, 5, a
single-phase lateral on phase b, a line with an open terminal, a Dyn transformer) must equal
ours (1e-7 pu); so must a feeder with a 3-winding Yyd substation transformer and a
centre-tapped 120/240 V service transformer feeding a 240 V charger. Unsupported elements
are listed by name and warned about; bad files raise FeederError naming the file and
OpenDSS's reason. The reader uses a private OpenDSS engine: the global one is left alone.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import opendssdirect as dss
import pytest
import scipy.sparse as sp
from opendss_reference import compile_reference, node_voltages_pu, winding1_currents

from grids.errors import FeederError
from grids.feeder3ph import ThreePhaseFeederModel
from grids.opendss import UnsupportedElementWarning, read_dss

LV_FEEDER = """Clear
Set DefaultBaseFrequency=50
New Circuit.lvtest basekv=11 pu=1.02 phases=3 bus1=src MVAsc3=200 MVAsc1=150
New Transformer.TX phases=3 windings=2 buses=[src lv] conns=[delta wye] kvs=[11 0.416]
~ kvas=[400 400] xhl=4 %r=1
New Linecode.cable nphases=3 r1=0.2 x1=0.08 r0=0.6 x0=0.3 units=km normamps=250
New Line.L1 bus1=lv bus2=n1 linecode=cable length=0.2 units=km
New Line.L2 bus1=n1 bus2=n2 linecode=cable length=0.15 units=km
New Line.L3 bus1=n2.2 bus2=n3.2 phases=1 r1=0.5 x1=0.1 r0=0.5 x0=0.1 length=0.1 units=km
New Line.Spur bus1=n2 bus2=n4 linecode=cable length=0.1 units=km
Open Line.Spur 2
New Load.A bus1=n1.1 phases=1 kv=0.24 kw=12 kvar=3 model=1
New Load.B bus1=n2.1.2.3 phases=3 kv=0.416 kw=30 pf=0.95 model=2 conn=delta
New Load.C bus1=n3.2 phases=1 kv=0.24 kw=8 kvar=2 model=5
New Load.E bus1=n2.1.2 phases=1 kv=0.416 kw=6 kvar=2 conn=delta
New PVSystem.PV1 bus1=n2.3 phases=1 kv=0.24 kVA=10 Pmpp=9 irradiance=0.8 pf=1
New Storage.ST1 bus1=n1.3 phases=1 kv=0.24 kWrated=5 kva=6 kWhrated=20 %stored=50
~ state=discharging %discharge=60
Set Voltagebases=[11 0.416]
Calcvoltagebases
Solve
"""

UNSUPPORTED = """
New Load.Z bus1=n1.2 phases=1 kv=0.24 kw=5 kvar=1 model=6
New Generator.G3 bus1=n1 phases=3 kv=0.416 kw=10 kvar=0 model=3
New Load.RN bus1=n2.2 phases=1 kv=0.24 kw=2 kvar=0.5 rneut=0.5 xneut=0.1
"""


@pytest.fixture
def lv_file(tmp_path):
    path = tmp_path / "lv.dss"
    path.write_text(LV_FEEDER)
    return path


def test_every_supported_element_kind_matches_opendss(lv_file):
    model = ThreePhaseFeederModel.from_dss(lv_file)
    assert model.unsupported == ()
    assert model.circuit.injections.name == ("pv1", "st1")
    np.testing.assert_allclose(model.circuit.injections.p_kw, [7.2, 3.0])
    result = model.solve()
    compile_reference(lv_file)
    dss.Solution.Convergence(1e-12)
    dss.Solution.Solve()
    v_ref = node_voltages_pu(model)
    assert np.abs(result.v_pu[0] - v_ref).max() < 1e-7
    assert result.losses_kw[0] == pytest.approx(dss.Circuit.Losses()[0] / 1000.0, rel=1e-6)
    # the open terminal leaves bus n4 dead (OpenDSS's own open-conductor admittance)
    n4 = [model.node_index("n4", p) for p in (1, 2, 3)]
    assert result.vm_pu[0, n4].max() < 1e-3
    # power balance with PV and storage injecting
    s_in = result.p_source_kw[0] + result.p_injection_kw[0]
    assert s_in == pytest.approx(result.losses_kw[0] + result.load_p_kw[0].sum(), rel=1e-7)
    assert result.p_injection_kw[0] == pytest.approx(10.2, rel=1e-6)
    # line currents against OpenDSS at the first terminal
    dss.Circuit.SetActiveElement("Line.L1")
    i_ref = np.abs(
        np.asarray(dss.CktElement.Currents()[0:6:2])
        + 1j * np.asarray(dss.CktElement.Currents()[1:6:2])
    )
    cols = [result.line_conductor.index(f"l1.{p}") for p in "abc"]
    np.testing.assert_allclose(result.line_current_a[0, cols], i_ref, rtol=1e-6)
    np.testing.assert_allclose(result.line_loading_percent[0, cols], 100 * i_ref / 250, rtol=1e-6)


def test_admittance_equals_the_opendss_system_matrix_without_loads(lv_file):
    circuit = read_dss(lv_file)
    compile_reference(lv_file)
    dss.Text.Command("batchedit load..* enabled=no")
    dss.Text.Command("batchedit pvsystem..* enabled=no")
    dss.Text.Command("batchedit storage..* enabled=no")
    dss.Text.Command("set controlmode=off")
    dss.Solution.Solve()
    names = [s.upper() for s in dss.Circuit.YNodeOrder()]
    perm = [names.index(n) for n in circuit.node_name]
    y_ref = sp.csc_matrix(dss.YMatrix.getYsparse()).toarray()[np.ix_(perm, perm)]
    y = (circuit.y_network + circuit.y_source).toarray()
    assert np.abs(y - y_ref).max() <= 1e-9 * np.abs(y_ref).max()


def test_unsupported_elements_are_listed_and_warned(tmp_path):
    path = tmp_path / "lv_unsupported.dss"
    path.write_text(LV_FEEDER.replace("Set Voltagebases", UNSUPPORTED + "Set Voltagebases"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = ThreePhaseFeederModel.from_dss(path)
    assert model.unsupported == (
        "Load.z (model 6, read as model 1)",
        "Generator.g3 (model 3, read as constant kW, kvar)",
        "Load.rn (neutral impedance Rneut/Xneut ignored)",
    )
    messages = [str(w.message) for w in caught if w.category is UnsupportedElementWarning]
    assert len(messages) == 1 and "Generator.g3" in messages[0] and "Load.z" in messages[0]


ZIP_LOADS = """
New Load.ZA bus1=n1.2 phases=1 kv=0.24 kw=9 kvar=3 model=8 zipv=[0.3 0.3 0.4 0.2 0.5 0.3 0.0]
New Load.ZB bus1=n2.1.2.3 phases=3 kv=0.416 kw=25 kvar=8 model=8 conn=delta
~ zipv=[0.5 0.2 0.3 0.1 0.1 0.8 0.0] vminpu=0.97
New Load.ZC bus1=n3.2 phases=1 kv=0.24 kw=6 kvar=2 model=8 zipv=[0 0 1 1 0 0 0.2]
~ vminpu=0.85 vmaxpu=0.9
"""


@pytest.mark.parametrize("load_mult", [1.0, 2.5])
def test_zip_loads_match_opendss(tmp_path, load_mult):
    """OpenDSS load model 8 (``ZIPV``) on wye and delta loads: voltages (1e-7 pu) and the
    power each load draws (1e-6 relative) against OpenDSS's own solution, at nominal load
    (ZA in band at 0.97 pu, ZB's delta phases at 0.966-0.994 pu around its vminpu 0.97, ZC
    at 0.93 pu above its vmaxpu 0.9) and at 2.5x (ZA 0.905, ZB 0.89-0.95 and ZC 0.82 pu:
    all below their vminpu)."""
    path = tmp_path / "zip.dss"
    path.write_text(LV_FEEDER.replace("Set Voltagebases", ZIP_LOADS + "Set Voltagebases"))
    model = ThreePhaseFeederModel.from_dss(path)
    assert model.unsupported == ()
    result = model.solve(load_mult=load_mult, warm_start=False)
    compile_reference(path)
    dss.Solution.LoadMult(load_mult)
    dss.Solution.Convergence(1e-12)
    dss.Solution.Solve()
    assert dss.Solution.Converged()
    assert np.abs(result.v_pu[0] - node_voltages_pu(model)).max() < 1e-7
    for name in ("za", "zb", "zc"):
        dss.Circuit.SetActiveElement(f"Load.{name}")
        powers = np.asarray(dss.CktElement.Powers())
        k = model.load_names.index(name)
        assert result.load_p_kw[0, k] == pytest.approx(powers[0::2].sum(), rel=1e-6)
        assert result.load_q_kvar[0, k] == pytest.approx(powers[1::2].sum(), rel=1e-6)


def test_zip_loads_without_coefficients_or_with_bad_fractions_are_refused(tmp_path):
    """Fractions that do not sum to 1 (each load named, all listed); a model 8 load without
    ZIPV: OpenDSS's own refusal when the file solves, the reader's when it does not."""
    path = tmp_path / "zip_bad.dss"
    bad = "".join(
        f"New Load.sum{k} bus1=n1.{k} phases=1 kv=0.24 kw=5 kvar=1 model=8 zipv=[{z}]\n"
        for k, z in ((2, "0.5 0.5 0.5 0.2 0.2 0.6 0"), (3, "0.2 0.2 0.6 0.1 0.1 0.1 0"))
    )
    path.write_text(LV_FEEDER.replace("Set Voltagebases", bad + "Set Voltagebases"))
    with pytest.raises(FeederError, match="invalid ZIP loads") as info:
        read_dss(path)
    text = str(info.value)
    assert "Load.sum2: ZIPV fractions sum to 1.5 (kW) and 1 (kvar)" in text
    assert "Load.sum3: ZIPV fractions sum to 1 (kW) and 0.3 (kvar)" in text
    unset = "New Load.nozip bus1=n1.2 phases=1 kv=0.24 kw=5 kvar=1 model=8\n"
    path.write_text(LV_FEEDER.replace("Set Voltagebases", unset + "Set Voltagebases"))
    with pytest.raises(FeederError, match="ZIPV is not set"):
        read_dss(path)
    path.write_text(
        LV_FEEDER.replace("Set Voltagebases", unset + "Set Voltagebases").replace("Solve", "")
    )
    with pytest.raises(FeederError, match=r"Load\.nozip: ZIPV not set"):
        read_dss(path)


def test_zip_drop_out_above_vlowpu_is_listed(tmp_path):
    path = tmp_path / "zip_cutoff.dss"
    line = "New Load.zd bus1=n1.2 phases=1 kv=0.24 kw=5 kvar=1 model=8 zipv=[0 0 1 0 0 1 0.8]\n"
    path.write_text(LV_FEEDER.replace("Set Voltagebases", line + "Set Voltagebases"))
    with pytest.warns(UnsupportedElementWarning, match=r"Load\.zd"):
        circuit = read_dss(path)
    assert circuit.unsupported == (
        "Load.zd (ZIPV drop-out below 0.84 pu not modelled: the load keeps its ZIP current there)",
    )


def test_missing_file_names_the_file(tmp_path):
    with pytest.raises(FeederError, match=r"nothere\.dss: not found"):
        read_dss(tmp_path / "nothere.dss")


def test_compile_error_names_file_and_reason(tmp_path):
    path = tmp_path / "broken.dss"
    path.write_text("New Circuit.x basekv=12.47\nRedirect missing_linecodes.dss\n")
    with pytest.raises(FeederError, match=r"broken\.dss") as info:
        read_dss(path)
    assert "missing_linecodes.dss" in str(info.value)


def test_file_without_circuit_is_refused(tmp_path):
    path = tmp_path / "empty.dss"
    path.write_text("Clear\n! nothing here\n")
    with pytest.raises(FeederError, match=r"empty\.dss"):
        read_dss(path)


SPLIT_PHASE = """Clear
Set DefaultBaseFrequency=60
New Circuit.na basekv=12.47 pu=1.03 phases=3 bus1=src MVAsc3=300 MVAsc1=250
New Transformer.SUB phases=3 windings=3 buses=[src mv tert] conns=[wye wye delta]
~ kvs=[12.47 4.16 0.48] kvas=[3000 3000 1000] xhl=6 xht=8 xlt=4 %rs=[0.5 0.5 0.5]
New Line.M1 bus1=mv bus2=m2 phases=3 r1=0.3 x1=0.6 r0=0.6 x0=1.8 length=1 units=km
New Line.M2 bus1=m2.2 bus2=m3.2 phases=1 r1=0.4 x1=0.5 r0=0.4 x0=0.5 length=0.5 units=km
New Transformer.CT phases=1 windings=3 buses=[m3.2.0 sec.1.0 sec.0.2] conns=[wye wye wye]
~ kvs=[2.4 0.12 0.12] kvas=[50 50 50] %rs=[0.6 1.2 1.2] xhl=2.04 xht=2.04 xlt=1.36
New Line.TPX bus1=sec.1.2 bus2=house.1.2 phases=2 r1=0.4 x1=0.1 r0=0.4 x0=0.1 length=0.03 units=km
New Load.EV bus1=house.1.2 phases=1 kv=0.24 kw=7.2 pf=1 model=1
New Load.A bus1=house.1 phases=1 kv=0.12 kw=1.5 kvar=0.5
New Load.B bus1=house.2 phases=1 kv=0.12 kw=0.8 kvar=0.2
New Load.T bus1=tert phases=3 kv=0.48 kw=150 kvar=60 conn=delta model=5
New Load.M bus1=m2 phases=3 kv=4.16 kw=900 kvar=300 model=1
Set Voltagebases=[12.47 4.16 0.48 0.208]
Calcvoltagebases
Solve
"""


def test_three_winding_and_centre_tapped_split_phase_match_opendss(tmp_path):
    """A 3-winding Yyd substation transformer and a centre-tapped single-phase service
    transformer (120/240 V split phase) with a 240 V charger across the two hot legs."""
    path = tmp_path / "split.dss"
    path.write_text(SPLIT_PHASE)
    model = ThreePhaseFeederModel.from_dss(path)
    assert model.unsupported == ()
    result = model.solve()
    compile_reference(path)
    dss.Solution.Convergence(1e-12)
    dss.Solution.Solve()
    v_ref = node_voltages_pu(model)
    assert np.abs(result.v_pu[0] - v_ref).max() < 1e-7
    assert result.losses_kw[0] == pytest.approx(dss.Circuit.Losses()[0] / 1000.0, rel=1e-6)
    # winding 1 of both transformers (three-phase HV side; the service transformer's one
    # phase) carries OpenDSS's terminal current
    current, rating = winding1_currents(model, result.trafo_conductor)
    assert len(result.trafo_conductor) == 4
    np.testing.assert_allclose(result.trafo_current_a[0], current, rtol=1e-6)
    np.testing.assert_allclose(result.trafo_loading_percent[0], 100 * current / rating, rtol=1e-6)
    # the two hot legs are in antiphase: 240 V across the charger
    v1 = result.v_v[0, model.node_index("house", 1)]
    v2 = result.v_v[0, model.node_index("house", 2)]
    assert abs(v1 - v2) == pytest.approx(240.0, rel=0.08)
    assert abs(np.angle(v1 / v2, deg=True)) == pytest.approx(180.0, abs=2.0)


def test_reader_leaves_the_global_engine_and_working_directory_alone(lv_file):
    compile_reference(lv_file)
    name = dss.Circuit.Name()
    cwd = os.getcwd()
    ThreePhaseFeederModel.from_name("ieee13")
    assert dss.Circuit.Name() == name
    assert os.getcwd() == cwd


GEOMETRY = """Clear
Set DefaultBaseFrequency=60
New Circuit.geo basekv=12.47 pu=1.02 phases=3 bus1=src MVAsc3=200 MVAsc1=180
New WireData.ACSR556 diam=0.927 gmrac=0.3732 rac=0.1859 runits=mi radunits=in gmrunits=in
New WireData.ACSR4/0 diam=0.563 gmrac=0.09768 rac=0.592 runits=mi radunits=in gmrunits=in
New LineGeometry.OH4 nconds=4 nphases=3 reduce=yes
~ cond=1 wire=ACSR556 x=-4 h=28 units=ft
~ cond=2 wire=ACSR556 x=-1.5 h=28 units=ft
~ cond=3 wire=ACSR556 x=3 h=28 units=ft
~ cond=4 wire=ACSR4/0 x=0 h=24 units=ft
New Line.G1 bus1=src bus2=b1 geometry=OH4 length=1.2 units=mi
New Line.G2 bus1=b1.3.1 bus2=b2.3.1 phases=2 rmatrix=[0.6 | 0.2 0.6] xmatrix=[1.2 | 0.5 1.2]
~ length=0.4 units=mi
New Load.W bus1=b1 phases=3 kv=12.47 kw=900 kvar=300 model=1
New Load.D bus1=b2.3.1 phases=1 kv=12.47 kw=250 kvar=80 conn=delta model=5
Set Voltagebases=[12.47]
Calcvoltagebases
Solve
"""


def test_line_geometry_wire_data_and_matrix_lines_match_opendss(tmp_path):
    """Lines from WireData + LineGeometry (Kron-reduced neutral) and from impedance matrices
    on phases c-a, with a delta load across them, against OpenDSS (1e-7 pu)."""
    path = tmp_path / "geometry.dss"
    path.write_text(GEOMETRY)
    model = ThreePhaseFeederModel.from_dss(path)
    assert model.unsupported == ()
    result = model.solve()
    compile_reference(path)
    dss.Solution.Convergence(1e-12)
    dss.Solution.Solve()
    assert np.abs(result.v_pu[0] - node_voltages_pu(model)).max() < 1e-7
    assert result.losses_kw[0] == pytest.approx(dss.Circuit.Losses()[0] / 1000.0, rel=1e-6)


def test_regcontrol_options_the_tap_control_ignores_are_listed(tmp_path):
    master = ThreePhaseFeederModel.from_name("ieee13").circuit.path
    path = tmp_path / "ieee13_reversible.dss"
    path.write_text(
        f'Redirect "{master}"\nRegControl.reg1.reversible=yes\nRegControl.reg2.vlimit=125\n'
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnsupportedElementWarning)
        model = ThreePhaseFeederModel.from_dss(path)
    assert model.unsupported == (
        "RegControl.reg1 (reverse mode not modelled by the tap control)",
        "RegControl.reg2 (vlimit not modelled by the tap control)",
    )
