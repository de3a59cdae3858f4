"""AC power flow: pandapower ``runpp`` as the reference.

(The fast batched path is added by the foundation work; this module is its one home.)
"""

from __future__ import annotations

import math
from enum import Enum
from pathlib import Path

import numpy as np

from grids.errors import ConvergenceError, ScenarioError, check_problems
from grids.feeders import load_feeder


class PowerFlowMethod(Enum):
    """Power-flow method: full AC Newton-Raphson or the linear LinDistFlow approximation."""

    AC = "ac"
    LINDISTFLOW = "lindistflow"


def prepare_net(
    feeder: str | Path,
    *,
    load_scale: float = 1.0,
    ext_grid_vm_pu: float | None = None,
    require_radial: bool = False,
):
    """Load a feeder and apply a load scale and a slack voltage; validate the arguments."""
    problems = []
    if not (math.isfinite(load_scale) and load_scale >= 0):
        problems.append(f"load_scale: {load_scale} (expected a finite number >= 0)")
    if ext_grid_vm_pu is not None and not (
        math.isfinite(ext_grid_vm_pu) and 0.8 <= ext_grid_vm_pu <= 1.2
    ):
        problems.append(f"ext_grid_vm_pu: {ext_grid_vm_pu} (expected 0.8 to 1.2 pu)")
    check_problems(problems, ScenarioError, "invalid power-flow arguments")
    net = load_feeder(feeder, require_radial=require_radial)
    net.load["scaling"] = net.load["scaling"] * load_scale
    if ext_grid_vm_pu is not None:
        net.ext_grid["vm_pu"] = ext_grid_vm_pu
    return net


def run_reference(net) -> None:
    """Run pandapower's ``runpp`` (the reference); raise :class:`ConvergenceError` on failure."""
    import pandapower as pp

    try:
        pp.runpp(net, calculate_voltage_angles=True, tolerance_mva=1e-9, max_iteration=50)
    except pp.LoadflowNotConverged:
        raise ConvergenceError(
            f"{net.name or 'feeder'}: pandapower runpp did not converge"
        ) from None


def summarize_powerflow(
    feeder: str | Path,
    *,
    method: PowerFlowMethod = PowerFlowMethod.AC,
    load_scale: float = 1.0,
    ext_grid_vm_pu: float | None = None,
) -> dict:
    """Run one power flow and return the CLI summary dictionary (see ``v2g-cosim powerflow``)."""
    if method is not PowerFlowMethod.AC:
        raise ScenarioError(f"method: {method.value!r} is not available yet")
    net = prepare_net(feeder, load_scale=load_scale, ext_grid_vm_pu=ext_grid_vm_pu)
    run_reference(net)
    vm = net.res_bus.vm_pu
    p_loss = float(net.res_line.pl_mw.sum() + (net.res_trafo.pl_mw.sum() if len(net.trafo) else 0))
    return {
        "feeder": str(net.name or feeder),
        "method": method.value,
        "converged": True,
        "bus": [int(b) for b in vm.index],
        "vm_pu": vm.to_numpy(),
        "p_loss_mw": p_loss,
        "min_vm_pu": float(vm.min()),
        "min_vm_bus": int(vm.idxmin()),
        "max_vm_pu": float(vm.max()),
        "max_line_loading_percent": float(np.nanmax(net.res_line.loading_percent.to_numpy())),
    }
