"""Regenerate the fault-sag figures and numbers of docs/contingency.md.

* ``fault_ikss_validation.png``: I_k'' of :mod:`grids.fault` (IEC 60909 method) against
  ``pandapower.shortcircuit.calc_sc`` at every bus of case33bw, cigre_mv and mv_oberrhein;
* ``fault_sag_validation.png``: retained voltages (superposition on the pre-fault power flow)
  against an AC power flow of the faulted net (fault as a shunt admittance), case33bw;
* ``contingency_fault_sag_trip.png`` of the fault-sag contingency
  (``studies/scenarios/contingency_fault.toml``), and its comparison table.

Usage: ``python docs/make_fault_figures.py``
"""

from __future__ import annotations

import copy
import json
import shutil
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FIGURES = ROOT / "docs" / "figures"
REPORTS = ROOT / "build" / "docs-reports"


def ikss_figure(plt) -> None:
    import pandapower.shortcircuit as sc

    from grids.fault import FaultMethod, FaultModel
    from grids.feeders import load_feeder

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.8))
    for name in ("case33bw", "cigre_mv", "mv_oberrhein"):
        net = load_feeder(name)
        if "s_sc_max_mva" not in net.ext_grid or net.ext_grid.s_sc_max_mva.isna().any():
            net.ext_grid["s_sc_max_mva"] = 500.0
            net.ext_grid["rx_max"] = 0.1
        net.sgen["in_service"] = False
        model = FaultModel(net, method=FaultMethod.IEC_60909)
        buses = model.bus[~model.dead_bus]
        ours = model.solve(buses).ikss_ka
        ref = copy.deepcopy(net)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sc.calc_sc(ref, case="max")
        theirs = ref.res_bus_sc.ikss_ka.reindex(buses).to_numpy(float)
        rel = np.abs(ours / theirs - 1.0)
        print(f"{name}: {len(buses)} buses, largest relative difference {rel.max():.2e}")
        axes[0].plot(theirs, ours, "o", ms=3, label=name)
        axes[1].semilogy(np.arange(len(buses)), np.maximum(rel, 1e-17), ".", label=name)
    lim = axes[0].get_xlim()
    axes[0].plot(lim, lim, "k-", lw=0.6)
    axes[0].set_xlabel("pandapower calc_sc I_k'' [kA]")
    axes[0].set_ylabel("grids.fault I_k'' [kA]")
    axes[0].legend()
    axes[1].axhline(1e-3, color="red", ls="--", lw=0.8, label="tolerance 0.1 %")
    axes[1].set_xlabel("bus (position)")
    axes[1].set_ylabel("relative difference")
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(FIGURES / "fault_ikss_validation.png", dpi=110)


def sag_figure(plt) -> None:
    from grids.fault import FaultModel
    from grids.feeders import load_feeder

    sys_path = ROOT / "tests" / "grids"
    import sys

    sys.path.insert(0, str(sys_path))
    from test_fault import _ac_reference

    net = load_feeder("case33bw")
    model = FaultModel(net, s_sc_mva=200.0, rx=0.2)
    fig, ax = plt.subplots(figsize=(8, 3.5))
    for bus, z in ((17, 2 + 3j), (5, 0.5 + 0.5j), (2, 1 + 1j)):
        ours = model.solve([bus], z_fault_ohm=z)
        ref = _ac_reference(net, model, bus, z, None, None, s_sc_mva=200.0, rx=0.2)
        diff = np.nanmax(np.abs(ours.v_pu[0] - ref))
        print(f"case33bw fault at bus {bus}, {z} ohm: largest |V - V_ac| {diff:.2e} pu")
        ax.plot(model.bus, np.abs(ref), "o", mfc="none", label=f"AC power flow, fault at {bus}")
        ax.plot(model.bus, ours.vm_pu[0], "-", label=f"superposition, fault at {bus}")
    ax.set_xlabel("bus")
    ax.set_ylabel("retained voltage [pu]")
    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(FIGURES / "fault_sag_validation.png", dpi=110)


def contingency() -> None:
    from studies.contingency import run_contingency_study

    out = REPORTS / "contingency_fault"
    result = run_contingency_study(
        ROOT / "studies" / "scenarios" / "contingency_fault.toml",
        cases="droop,trip,staggered",
        out_dir=out,
    )
    # the figure docs/contingency.md shows: the simultaneous-trip case
    shutil.copy(out / "contingency_fault_sag_trip.png", FIGURES / "contingency_fault_sag_trip.png")
    keys = ("f_nadir_hz", "ufls_shed_mw", "fleet_ceased_mw", "fleet_tripped_mw",
            "n_vehicles_tripped", "fault_vm_min_pu")  # fmt: skip
    for case in result["cases"]:
        print(json.dumps({"name": case["name"], **{k: case[k] for k in keys}}, default=float))


def main() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    FIGURES.mkdir(parents=True, exist_ok=True)
    ikss_figure(plt)
    sag_figure(plt)
    contingency()


if __name__ == "__main__":
    main()
