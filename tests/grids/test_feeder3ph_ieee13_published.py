"""IEEE 13 node feeder: the engine against the published IEEE result table.

Reference: IEEE PES Distribution System Analysis Subcommittee, "Radial distribution test
feeders" (W. H. Kersting, IEEE PES Winter Meeting 2001) and the "IEEE 13 Node Test Feeder"
data and results: voltage profile table, magnitude in pu to 4 decimals, angle in degrees to
2 decimals, regulator taps 10, 8, 11 (1.0625, 1.0500, 1.06875 pu).

The model is ``grids/dss/ieee13_published`` (embedded name ``ieee13_published``), written
from the published data to model the feeder as the published solution does: infinite bus at
650 (1.0000 pu, 0 deg), ideal step regulators at the published taps, the distributed load on
632-671 by its exact lumped equivalent (2/3 at 1/4 of the line, 1/3 at 671), the published
line capacitances and 606/607 cables, loads at rated voltage without OpenDSS's
vminpu/vmaxpu switching, an ideal closed switch. Two checks:

1. The engine equals OpenDSS (opendssdirect, same file, convergence 1e-12): complex phase
   voltage within 1e-6 pu at every node of the table (measured 4e-10 pu).
2. The solution against the published table. Tolerance: the table's rounding (5e-5 pu,
   0.005 deg) plus a residual of 1.5e-4 pu and 0.010 deg, i.e. |dV| <= 2e-4 pu and
   |dangle| <= 0.015 deg. Measured (docs/unbalanced.md lists every node): max |dV| 1.8e-4 pu
   (692 and 675 phase c), max |dangle| 0.014 deg (692 and 675 phase a); phases a and b
   magnitudes within 0.6e-4 pu everywhere, all nodes upstream of 671 within 1.1e-4 pu and
   0.006 deg. Why the rounding alone is not met: the residual is a phase-c offset of
   +0.5e-4 to +1.8e-4 pu that starts at the regulator (11 steps of 0.625 % give exactly
   1.06875 pu, the table prints 1.0687, so the published solution held RG60 c slightly below
   the ideal ratio; as a diagnostic, RG60 c at 1.06865 pu brings the worst magnitude to
   0.8e-4 pu) and a phase-a angle offset at 692/675 (unchanged by that). The table itself is not
   consistent with an ideal closed switch to its rounding: 671 and 692 are printed 0.9778 vs
   0.9777 (c) and -5.30 vs -5.31 deg (a), so at best both sit on a rounding boundary.
   Model alternatives tried and rejected because they fit worse: the EPRI 1/3-point lumping
   (1.4e-3 pu, 0.076 deg), the load at the midpoint (2.3e-4 pu), a 2400 V source base
   (8.5e-4 pu at 634), no line capacitance, the EPRI regulator impedance (1.6e-4 pu,
   0.010 deg, but all phases shifted low).
"""

from __future__ import annotations

import os

import numpy as np
import opendssdirect as dss
import pytest

from grids.feeder3ph import ThreePhaseFeederModel

#: (magnitude [pu], angle [deg]) per phase a, b, c; None where the node has no such phase.
PUBLISHED = {
    "650": [(1.0000, 0.00), (1.0000, -120.00), (1.0000, 120.00)],
    "rg60": [(1.0625, 0.00), (1.0500, -120.00), (1.0687, 120.00)],
    "632": [(1.0210, -2.49), (1.0420, -121.72), (1.0174, 117.83)],
    "633": [(1.0180, -2.56), (1.0401, -121.77), (1.0148, 117.82)],
    "634": [(0.9940, -3.23), (1.0218, -122.22), (0.9960, 117.34)],
    "645": [None, (1.0329, -121.90), (1.0155, 117.86)],
    "646": [None, (1.0311, -121.98), (1.0134, 117.90)],
    "671": [(0.9900, -5.30), (1.0529, -122.34), (0.9778, 116.02)],
    "680": [(0.9900, -5.30), (1.0529, -122.34), (0.9778, 116.02)],
    "684": [(0.9881, -5.32), None, (0.9758, 115.92)],
    "611": [None, None, (0.9738, 115.78)],
    "652": [(0.9825, -5.25), None, None],
    "692": [(0.9900, -5.31), (1.0529, -122.34), (0.9777, 116.02)],
    "675": [(0.9835, -5.56), (1.0553, -122.52), (0.9758, 116.03)],
}
#: Table rounding (half of the last printed digit) plus the residual explained above.
TOL_VM_PU = 5e-5 + 1.5e-4
TOL_VA_DEGREE = 0.005 + 0.010
#: Phases a and b magnitudes and every node upstream of 671 fit tighter: asserted too.
TOL_VM_AB_PU = 5e-5 + 0.5e-4
UPSTREAM = {"650", "rg60", "632", "633", "634", "645", "646"}
TOL_VM_UPSTREAM_PU = 5e-5 + 0.7e-4
TOL_VA_UPSTREAM_DEGREE = 0.005 + 0.002


@pytest.fixture(scope="module")
def solved():
    model = ThreePhaseFeederModel.from_name("ieee13_published")
    result = model.solve()
    assert result.converged.all()
    return model, result


def _angle_diff_degree(a, b):
    return (np.asarray(a) - np.asarray(b) + 180.0) % 360.0 - 180.0


@pytest.mark.parametrize("bus", sorted(PUBLISHED))
def test_voltage_profile_matches_the_published_table(solved, bus):
    model, result = solved
    for phase, expected in enumerate(PUBLISHED[bus], start=1):
        if expected is None:
            continue
        k = model.node_index(bus, phase)
        dv = abs(result.vm_pu[0, k] - expected[0])
        da = abs(_angle_diff_degree(result.va_degree[0, k], expected[1]))
        assert dv <= TOL_VM_PU, (bus, phase, dv)
        assert da <= TOL_VA_DEGREE, (bus, phase, da)
        if phase in (1, 2):
            assert dv <= TOL_VM_AB_PU, (bus, phase, dv)
        if bus in UPSTREAM:
            assert dv <= TOL_VM_UPSTREAM_PU, (bus, phase, dv)
            assert da <= TOL_VA_UPSTREAM_DEGREE, (bus, phase, da)


def test_regulator_output_is_the_published_tap_ratio(solved):
    """Ideal regulators: RG60 = tap x 650 on every phase (10, 8, 11 steps of 0.625 %)."""
    model, result = solved
    for phase, steps in zip((1, 2, 3), (10, 8, 11), strict=True):
        v_in = result.vm_pu[0, model.node_index("650", phase)]
        v_out = result.vm_pu[0, model.node_index("rg60", phase)]
        assert v_out / v_in == pytest.approx(1.0 + 0.00625 * steps, abs=2e-6)


def test_engine_equals_opendss_on_the_published_copy(solved):
    """Reference: OpenDSS (opendssdirect) on the same file, convergence 1e-12."""
    model, result = solved
    cwd = os.getcwd()
    try:
        dss.Text.Command("clear")
        dss.Text.Command(f'compile "{model.circuit.path}"')
    finally:
        os.chdir(cwd)
    dss.Solution.Convergence(1e-12)
    dss.Solution.MaxIterations(500)
    dss.Solution.Solve()
    assert dss.Solution.Converged()
    checked, worst = 0, 0.0
    for bus in PUBLISHED:
        dss.Circuit.SetActiveBus(bus)
        nodes = dss.Bus.Nodes()
        v = np.asarray(dss.Bus.PuVoltage()).reshape(-1, 2)
        for node, (re, im) in zip(nodes, v, strict=True):
            k = model.node_index(bus, node)
            ref = complex(re, im)
            ours = result.vm_pu[0, k] * np.exp(1j * np.radians(result.va_degree[0, k]))
            assert abs(ours - ref) <= 1e-6, (bus, node, abs(ours - ref))
            worst = max(worst, abs(ours - ref))
            checked += 1
    print(f"max |V_engine - V_opendss| = {worst:.2e} pu")
    assert checked == sum(e is not None for rows in PUBLISHED.values() for e in rows)
