"""``v2g-cosim powerflow``: JSON keys, both methods, and bad input.

Reference for the AC numbers: pandapower ``runpp`` on the same feeder (1e-6 pu); for the
LinDistFlow numbers: ``grids.lindistflow.LinDistFlow`` called directly.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from cosim.cli import main
from grids.feeder_model import SolveMethod, summarize_powerflow
from grids.lindistflow import LinDistFlow
from grids.powerflow import prepare_net, run_reference

KEYS = {
    "feeder",
    "method",
    "converged",
    "bus",
    "vm_pu",
    "p_loss_mw",
    "min_vm_pu",
    "min_vm_bus",
    "max_vm_pu",
    "max_line_loading_percent",
    "violations",
    "limits_not_checked",
}


def _run_json(capsys, *argv) -> dict:
    assert main(["powerflow", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_powerflow_json_ac_matches_runpp(capsys):
    out = _run_json(
        capsys, "--feeder", "cigre_mv", "--load-scale", "1.2", "--ext-grid-vm-pu", "1.0"
    )
    assert set(out) >= KEYS
    assert out["method"] == "ac" and out["converged"] is True and out["feeder"] == "cigre_mv"
    net = prepare_net("cigre_mv", load_scale=1.2, ext_grid_vm_pu=1.0)
    run_reference(net)
    assert out["bus"] == [int(b) for b in net.bus.index]
    np.testing.assert_allclose(out["vm_pu"], net.res_bus.vm_pu.to_numpy(), atol=1e-6)
    loss = net.res_line.pl_mw.sum() + net.res_trafo.pl_mw.sum()
    assert out["p_loss_mw"] == pytest.approx(loss, abs=1e-6)
    assert out["min_vm_bus"] == int(net.res_bus.vm_pu.idxmin())
    assert out["max_line_loading_percent"] == pytest.approx(
        net.res_line.loading_percent.max(), abs=1e-5
    )


def test_powerflow_json_lindistflow(capsys):
    out = _run_json(capsys, "--feeder", "case33bw", "--method", "lindistflow")
    assert set(out) >= KEYS
    assert out["method"] == "lindistflow"
    assert out["p_loss_mw"] is None  # LinDistFlow is lossless: reported as null
    model = LinDistFlow(prepare_net("case33bw"))
    vm = model.vm_pu(*model.base_injection())[0]
    np.testing.assert_allclose(out["vm_pu"], vm, atol=1e-12)
    assert out["min_vm_pu"] == pytest.approx(vm.min())
    # DESIGN.md: the linear form is within about 0.01 pu of AC on case33bw at nominal load
    ac = summarize_powerflow("case33bw", method=SolveMethod.AC)
    assert np.max(np.abs(np.array(out["vm_pu"]) - ac["vm_pu"])) < 0.01


def test_powerflow_table_output(capsys):
    assert main(["powerflow", "--feeder", "case33bw"]) == 0
    text = capsys.readouterr().out
    assert "min vm [pu] (bus)" in text and "0.91" in text


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--load-scale", "-1"], "load_scale: -1.0 (expected a finite number >= 0)"),
        (["--ext-grid-vm-pu", "2"], "ext_grid_vm_pu: 2.0 (expected 0.8 to 1.2 pu)"),
        (["--feeder", "no/such/feeder.json"], "neither an embedded feeder"),
        (["--load-scale", "10"], "did not converge for scenario 0: largest mismatch"),
    ],
)
def test_powerflow_bad_input_exits_2_with_message(capsys, argv, message):
    assert main(["powerflow", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_powerflow_lindistflow_refuses_meshed_feeder(capsys, tmp_path):
    import pandapower as pp

    net = prepare_net("case33bw")
    net.line["in_service"] = True  # close the five tie lines
    path = tmp_path / "meshed.json"
    pp.to_json(net, str(path))
    assert main(["powerflow", "--feeder", str(path), "--method", "lindistflow"]) == 2
    assert "not radial" in capsys.readouterr().err


def test_powerflow_falls_back_to_runpp_for_elements_the_fast_path_lacks(capsys, tmp_path):
    """A voltage-dependent load: the summary comes from runpp (same numbers as runpp)."""
    import pandapower as pp

    net = prepare_net("case33bw")
    net.load.loc[3, "const_z_p_percent"] = 100.0
    path = tmp_path / "zip.json"
    pp.to_json(net, str(path))
    out = _run_json(capsys, "--feeder", str(path))
    run_reference(net)
    np.testing.assert_allclose(out["vm_pu"], net.res_bus.vm_pu.to_numpy(), atol=1e-9)
    assert out["p_loss_mw"] == pytest.approx(net.res_line.pl_mw.sum(), abs=1e-9)


def test_powerflow_unrated_lines_are_not_checked_and_voltages_name_ansi_ranges(capsys):
    """case33bw has no line ratings (99999 kA placeholders): loading is "not checked", never 0 %.

    Reference for the voltage violations: pandapower ``runpp`` bus voltages against the
    ANSI C84.1 service ranges A (0.95 pu) and B (0.917 pu), counted here independently.
    """
    out = _run_json(capsys, "--feeder", "case33bw")
    assert out["max_line_loading_percent"] is None
    assert out["limits_not_checked"] == [
        "every line of case33bw: no rating given, line loading not checked"
    ]
    net = prepare_net("case33bw")
    run_reference(net)
    vm = net.res_bus.vm_pu
    by_limit = {v["limit"]: v for v in out["violations"]}
    assert set(by_limit) == {"ANSI C84.1 range A (low)", "ANSI C84.1 range B (low)"}
    range_a = by_limit["ANSI C84.1 range A (low)"]
    assert range_a["element"] == f"bus {int(vm.idxmin())}"
    assert range_a["worst_value"] == pytest.approx(vm.min(), abs=1e-6)
    assert range_a["limit_value"] == 0.95
    assert range_a["n_elements"] == int((vm < 0.95).sum())
    assert by_limit["ANSI C84.1 range B (low)"]["n_elements"] == int((vm < 0.917).sum())
    assert main(["powerflow", "--feeder", "case33bw"]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"ANSI C84.1 range A (low): bus {int(vm.idxmin())} ")
    loading_row = next(line for line in text.splitlines() if "max line loading" in line)
    assert loading_row.split("]", 1)[1].strip() == "n/a (no line ratings)"


def test_powerflow_overloaded_rated_line_is_a_line_loading_violation(capsys):
    """cigre_mv at 1.3x load: loading above 100 % is named; reference pandapower ``runpp``."""
    out = _run_json(capsys, "--feeder", "cigre_mv", "--load-scale", "1.3")
    net = prepare_net("cigre_mv", load_scale=1.3)
    run_reference(net)
    loading = net.res_line.loading_percent
    assert loading.max() > 100.0  # the case is an overload (else the test proves nothing)
    found = [v for v in out["violations"] if v["limit"] == "line loading"]
    assert len(found) == 1
    assert found[0]["worst_value"] == pytest.approx(loading.max(), abs=1e-4)
    assert found[0]["limit_value"] == 100.0
    assert out["limits_not_checked"] == []


def test_powerflow_en50160_standard(capsys):
    """EN 50160 (0.90-1.10 pu): case33bw's 0.913 pu lowest voltage breaks nothing."""
    out = _run_json(capsys, "--feeder", "case33bw", "--voltage-standard", "en50160")
    assert out["violations"] == []


def test_powerflow_violations_with_per_element_loadings():
    """Per-line and per-transformer loadings (when the summary carries them): the worst
    element over 100 % is named, an unrated line (NaN) is said as not checked, never 0 %."""
    from cosim.commands.powerflow import powerflow_violations

    summary = {
        "feeder": "f",
        "bus": [0, 1],
        "vm_pu": np.array([1.0, 0.94]),
        "max_line_loading_percent": 120.0,
        "line": [0, 1, 2],
        "line_loading_percent": np.array([50.0, 120.0, np.nan]),
        "trafo": [0],
        "trafo_loading_percent": np.array([130.0]),
    }
    violations, not_checked = powerflow_violations(summary)
    found = {v.limit: (v.element, v.worst_value, v.limit_value) for v in violations}
    assert found == {
        "ANSI C84.1 range A (low)": ("bus 1", 0.94, 0.95),
        "line loading": ("line 1", 120.0, 100.0),
        "transformer loading": ("trafo 0", 130.0, 100.0),
    }
    assert not_checked == [
        "1 line(s) of f: no rating given, line loading not checked (or out of service)"
    ]
