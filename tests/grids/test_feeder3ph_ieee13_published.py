"""IEEE 13 node feeder: the engine against the published IEEE result table.

Reference: IEEE PES Distribution System Analysis Subcommittee, "Radial distribution test
feeders" (W. H. Kersting, IEEE PES Winter Meeting 2001) and the "IEEE 13 Node Test Feeder"
data and results: voltage profile table, magnitude in pu to 4 decimals, angle in degrees to
2 decimals, regulator taps 10, 8, 11 (1.0625, 1.0500, 1.06875 pu). No other revision of the
result table was found (searched public pages, documentation and code for the table's rows);
this is the table of the 2001 feeder data.

The model is ``grids/dss/ieee13_published`` (embedded name ``ieee13_published``), written
from the published data to model the feeder as the published solution does: infinite bus at
650 (1.0000 pu, 0 deg), ideal step regulators at the published taps, the distributed load on
632-671 by its exact lumped equivalent (2/3 at 1/4 of the line, 1/3 at 671), the published
line impedances and capacitances, loads per Kersting (constant PQ; constant Z and constant
current magnitude from rated voltage, current angle following the voltage; delta loads on
line-to-line voltages), capacitors as constant susceptance, an ideal closed switch.

Checks:

1. The engine equals OpenDSS (opendssdirect, same file, convergence 1e-12): complex phase
   voltage within 1e-6 pu at every node of the table (measured 4e-10 pu).
2. Every published voltage DROP between adjacent nodes of the table (|V| and angle of the
   downstream node minus the upstream one) within the rounding of a difference of two
   printed values, 1e-4 pu and 0.01 deg, on the 12 line, regulator and transformer segments
   and every phase: the model reproduces each segment of the published solution to the
   table's resolution. The closed switch 671-692 is checked apart: the model's step across
   it is zero (the copy's switch has 1e-6 ohm: measured 9e-8 pu, 1e-6 deg), the table's is
   one printed digit, i.e. exactly the rounding of a difference (``SWITCH`` below).
3. Every published voltage against the table. Tolerance: the table's rounding, 5e-5 pu and
   0.005 deg, at every node and phase where the model meets it (20 of 35). At the 15 others a
   named tolerance (``EXCEPTIONS``), each for one of these measured reasons:

   - ``MARGINAL`` (633 a, 652 a angle; 645 b magnitude; measured 0.0052-0.0057 deg,
     0.56e-4 pu): beyond the rounding by at most 0.0007 deg or 0.06e-4 pu, each on segments
     whose published drop the model meets (check 2); not traced to a model difference. The
     tolerance is the scale of the published data's own precision: its impedance and
     susceptance matrices are printed to 4 decimals, and varying every entry uniformly
     within its last printed digit (200 draws) moves the solution by up to 2.3e-5 pu and
     0.0011 deg. (The matrices of 601-606 recomputed from the conductor data with Kersting's
     modified Carson equations reproduce every printed digit; using them unrounded moves the
     solution by at most 0.07e-4 pu and 0.0005 deg and brings only 652 a within rounding.)
     Tolerance: rounding + 2.5e-5 pu, 0.0012 deg.
   - ``PHASE_C`` (632, 633, 634, 646, 671, 680, 684, 611 phase c; measured 0.63-1.05e-4 pu):
     an offset common to phase c. It is the sum of two residuals, each within the table's
     rounding: RG60 c (ours 1.068748, printed 1.0687: +0.48e-4) and the phase-c drop
     RG60-632 (+0.57e-4 against the printed difference). The print 1.0687 indicates that the
     published RG60 c was below the ideal 1.06875: 1.06875 evaluated in IEEE-754 double or
     single precision (1 + 11 x 0.00625, |V| from its components at 120 deg) is stored just
     above 1.06875 and prints 1.0688 (only a round-half-down printer would print 1.0687). An
     RG60 c output lower by 0.28e-4 to 0.96e-4 pu (within what the print allows) brings
     every node but 692 and 675 within rounding + ``MARGINAL``; no physical model
     alternative tried gives a phase-c-only shift (list below). Tolerance: rounding + 6e-5
     pu on the magnitude, rounding + 0.0012 deg on the angle (``MARGINAL``).
   - ``SWITCH`` (692 and 675, phases a and c; measured 0.0135 deg on a, 1.79e-4 pu on c):
     the table is not consistent with an ideal closed switch. It prints 671 and 692 one digit
     apart (0.9778 vs 0.9777 on c, -5.30 vs -5.31 deg on a), which two equal voltages can
     only do sitting exactly on a rounding boundary; the model's switch step is zero, so 692
     and 675 carry the 671 residual plus that printed step. No passive switch impedance fits
     the step: a reactance large enough for the phase-a angle (>= 1.6 mOhm) raises 692 b by
     >= 0.5e-4 pu (the table prints 671 b = 692 b), a resistance drops 692 a magnitude
     (-0.97e-4 pu per mOhm), and 5-40 ft of configuration 601, 602 or 606 fail the same way.
     Tolerance: the ``PHASE_C`` or rounding tolerance plus the printed step (1e-4 pu on c,
     0.01 deg on a); at 675 c the angle adds the 692-675 step (+0.0045 deg, within the
     rounding of a difference, check 2).

Model alternatives tried on the same copy and rejected because they fit worse or do not
change the residual: the EPRI 1/3-point lumping (1.4e-3 pu, 0.076 deg), the whole load at
mid-line (2.3e-4 pu), the load truly distributed over 200 sections (671 c +0.2e-4 worse), a
2400 V source and base (8.5e-4 pu at 634), no line capacitance (<= 0.18e-4 pu change), the
EPRI regulator impedance (1.6e-4 pu, 0.010 deg, every phase shifted low), single-phase wye
loads and the 611 capacitor rated at 4.16/sqrt(3) kV instead of 2.4 kV (phase a 0.1e-4 to
0.33e-4 pu higher, no node brought within rounding), XFM-1 resistance +9 % or reactance
+5 % (< 0.05e-4 pu at 632 c), a switch impedance (above), a published solution stopped
before convergence (a forward/backward ladder sweep on the same model from a flat start: no
iterate of either sweep fits better; at source mismatch < 2e-4 pu the worst entry is
1.9e-4 pu, 15 entries beyond the rounding, from the source side; 3.3e-4 pu, 26 from the
end side).
"""

from __future__ import annotations

import numpy as np
import opendssdirect as dss
import pytest
from opendss_reference import compile_reference

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
#: Segments between adjacent nodes of the table (upstream, downstream), but the switch.
SEGMENTS = (
    ("650", "rg60"),
    ("rg60", "632"),
    ("632", "633"),
    ("633", "634"),
    ("632", "645"),
    ("645", "646"),
    ("632", "671"),
    ("671", "680"),
    ("671", "684"),
    ("684", "611"),
    ("684", "652"),
    ("692", "675"),
)
#: Table rounding: half of the last printed digit.
ROUND_VM_PU = 5e-5
ROUND_VA_DEGREE = 0.005
#: The data sheet's own rounding (matrices to 4 decimals), propagated: measured 2.3e-5 pu,
#: 0.0011 deg (module docstring, ``MARGINAL``).
MARGINAL_VM_PU = 2.5e-5
MARGINAL_VA_DEGREE = 0.0012
#: The phase-c offset (module docstring, ``PHASE_C``).
PHASE_C_VM_PU = 6e-5
#: The table's printed step across the closed switch 671-692 (``SWITCH``).
SWITCH_VM_PU = 1e-4
SWITCH_VA_DEGREE = 0.01
#: Printed decimals are not exact in binary: slack on differences of two printed values.
DECIMAL_SLACK = 1e-9

_MARGINAL = (ROUND_VM_PU + MARGINAL_VM_PU, ROUND_VA_DEGREE + MARGINAL_VA_DEGREE)
_PHASE_C = (ROUND_VM_PU + PHASE_C_VM_PU, ROUND_VA_DEGREE + MARGINAL_VA_DEGREE)
_SWITCH_A = (ROUND_VM_PU, ROUND_VA_DEGREE + SWITCH_VA_DEGREE)
_SWITCH_C = (_PHASE_C[0] + SWITCH_VM_PU, _PHASE_C[1])
#: (bus, phase) -> (tolerance magnitude [pu], tolerance angle [deg]) where the table's
#: rounding is not met; every other node and phase is asserted at the rounding.
EXCEPTIONS = {
    ("633", 1): _MARGINAL,
    ("652", 1): _MARGINAL,
    ("645", 2): _MARGINAL,
    **{(bus, 3): _PHASE_C for bus in ("632", "633", "634", "646", "671", "680", "684", "611")},
    ("692", 1): _SWITCH_A,
    ("675", 1): _SWITCH_A,
    ("692", 3): _SWITCH_C,
    ("675", 3): (_SWITCH_C[0], _SWITCH_C[1] + ROUND_VA_DEGREE),
}


@pytest.fixture(scope="module")
def solved():
    model = ThreePhaseFeederModel.from_name("ieee13_published")
    result = model.solve()
    assert result.converged.all()
    return model, result


def _angle_diff_degree(a, b):
    return (np.asarray(a) - np.asarray(b) + 180.0) % 360.0 - 180.0


def _voltage(model, result, bus, phase):
    k = model.node_index(bus, phase)
    return float(result.vm_pu[0, k]), float(result.va_degree[0, k])


def test_exceptions_name_published_nodes_only():
    """Each named tolerance is looser than the rounding and belongs to a node of the table."""
    for (bus, phase), (tol_vm, tol_va) in EXCEPTIONS.items():
        assert PUBLISHED[bus][phase - 1] is not None, (bus, phase)
        assert tol_vm >= ROUND_VM_PU and tol_va >= ROUND_VA_DEGREE
        assert tol_vm > ROUND_VM_PU or tol_va > ROUND_VA_DEGREE
    n_nodes = sum(e is not None for rows in PUBLISHED.values() for e in rows)
    assert (n_nodes, len(EXCEPTIONS)) == (35, 15)


@pytest.mark.parametrize("bus", sorted(PUBLISHED))
def test_voltage_profile_matches_the_published_table(solved, bus):
    model, result = solved
    for phase, expected in enumerate(PUBLISHED[bus], start=1):
        if expected is None:
            continue
        vm, va = _voltage(model, result, bus, phase)
        tol_vm, tol_va = EXCEPTIONS.get((bus, phase), (ROUND_VM_PU, ROUND_VA_DEGREE))
        dv = abs(vm - expected[0])
        da = abs(_angle_diff_degree(va, expected[1]))
        assert dv <= tol_vm, (bus, phase, dv, tol_vm)
        assert da <= tol_va, (bus, phase, da, tol_va)


@pytest.mark.parametrize(("upstream", "downstream"), SEGMENTS)
def test_every_published_voltage_drop_within_the_rounding_of_a_difference(
    solved, upstream, downstream
):
    """Each segment's |V| and angle step equals the table's within 1e-4 pu and 0.01 deg."""
    model, result = solved
    checked = 0
    for phase in (1, 2, 3):
        up, down = PUBLISHED[upstream][phase - 1], PUBLISHED[downstream][phase - 1]
        if up is None or down is None:
            continue
        vm_up, va_up = _voltage(model, result, upstream, phase)
        vm_down, va_down = _voltage(model, result, downstream, phase)
        d_vm = abs((vm_down - vm_up) - (down[0] - up[0]))
        d_va = abs(_angle_diff_degree(va_down - va_up, down[1] - up[1]))
        assert d_vm <= 2 * ROUND_VM_PU + DECIMAL_SLACK, (upstream, downstream, phase, d_vm)
        assert d_va <= 2 * ROUND_VA_DEGREE + DECIMAL_SLACK, (upstream, downstream, phase, d_va)
        checked += 1
    assert checked >= 1


def test_closed_switch_is_ideal_so_the_printed_step_is_not_reproduced(solved):
    """671 and 692 are one node electrically; the table prints them one digit apart."""
    model, result = solved
    for phase in (1, 2, 3):
        vm_671, va_671 = _voltage(model, result, "671", phase)
        vm_692, va_692 = _voltage(model, result, "692", phase)
        assert abs(vm_692 - vm_671) <= 1e-6 and abs(va_692 - va_671) <= 1e-5
    printed_step = [
        (
            PUBLISHED["692"][p][0] - PUBLISHED["671"][p][0],
            PUBLISHED["692"][p][1] - PUBLISHED["671"][p][1],
        )
        for p in range(3)
    ]
    assert printed_step[0] == pytest.approx((0.0, -SWITCH_VA_DEGREE), abs=DECIMAL_SLACK)
    assert printed_step[1] == pytest.approx((0.0, 0.0), abs=DECIMAL_SLACK)
    assert printed_step[2] == pytest.approx((-SWITCH_VM_PU, 0.0), abs=DECIMAL_SLACK)


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
    compile_reference(model.circuit.path)
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
