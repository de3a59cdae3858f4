"""Generate the figure and numbers of ``docs/unbalanced_example.md`` (European LV feeder).

Usage: ``python docs/unbalanced_example_figures.py`` (writes
``docs/figures/unbalanced_phase_voltages.png`` and prints the tables quoted in the guide).
Distances from the source are OpenDSS's own (``AllBusDistances`` from the feeder's energy
meter at the transformer), read once with opendssdirect.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import opendssdirect as dss

from grids.feeder3ph import ThreePhaseFeederModel
from grids.linear3ph import linearise_feeder
from studies.hosting_capacity_3ph import ThreePhaseCriteria, three_phase_hosting_capacity

FIGURES = Path(__file__).parent / "figures"
CHARGER_MW = 0.0074  # 32 A single-phase, 230 V
EV_EVERY = 3  # a charger at every third house
CRITERIA = ThreePhaseCriteria(v_min_pu=0.90, v_max_pu=1.10)  # EN 50160, VUF 2 %


def bus_distance_km(model) -> dict[str, float]:
    dss.Text.Command("clear")
    dss.Text.Command(f'compile "{model.circuit.path}"')
    names = [b.lower() for b in dss.Circuit.AllBusNames()]
    return dict(zip(names, dss.Circuit.AllBusDistances(), strict=True))


def main() -> None:
    FIGURES.mkdir(exist_ok=True)
    model = ThreePhaseFeederModel.from_name("european_lv")
    dist = bus_distance_km(model)
    base = model.solve()
    # a 7.4 kW charger at every third house, on the house's own phase, then all on phase a
    own = np.zeros(model.n_node)
    on_a = np.zeros(model.n_node)
    with_ev = list(zip(model.load_bus, model.load_nodes, strict=True))[::EV_EVERY]
    for bus, nodes in with_ev:
        own[nodes[0]] -= CHARGER_MW
        on_a[model.node_index(bus, 1)] -= CHARGER_MW
    cases = model.solve(p_wye_mw=np.stack([own, on_a]))
    assert cases.converged.all()
    print(f"European LV, {len(with_ev)} of 55 houses with a 7.4 kW charger:")
    print("case                     min vm [pu] (node)          max VUF [%]")
    for label, res, k in (("base", base, 0), ("own phase", cases, 0), ("all on a", cases, 1)):
        j = int(np.argmin(res.vm_pu[k]))
        print(
            f"  {label:22s} {res.vm_pu[k, j]:.4f} ({model.node_bus[j]}.{model.node_phase[j]})"
            f"   {np.nanmax(res.vuf_percent[k]):.2f}"
        )
    # linear model error on the 'all on a' case
    linear = linearise_feeder(model, base)
    err = np.abs(np.abs(linear.solve(p_wye_mw=on_a)[0]) - cases.vm_pu[1]).max()
    change = np.abs(cases.vm_pu[1] - base.vm_pu[0]).max()
    print(f"linear model, all on a: max error {err:.2e} pu for a max change {change:.2e} pu")

    houses = sorted(set(model.load_bus), key=lambda b: dist[b])
    linear_error_figure(model, base, linear, houses, dist)
    hc = {}
    for phase in ("a", "b", "c", "abc"):
        result = three_phase_hosting_capacity(
            model, buses=houses, phase=phase, mode="import", criteria=CRITERIA
        )
        hc[phase] = result
        values = np.array([r["hosting_capacity_mw"] for r in result.rows]) * 1000
        screen = np.array([r["screen_mw"] for r in result.rows]) * 1000
        counts = Counter(r["binding"] for r in result.rows)
        print(
            f"phase {phase:3s}: HC min {values.min():.1f} kW, median {np.median(values):.1f} kW, "
            f"max {values.max():.1f} kW; screen median |error| "
            f"{np.median(np.abs(screen - values)):.1f} kW; binding {dict(counts)}; "
            f"{result.ac_solves} AC scenarios"
        )

    fig, (ax_v, ax_hc) = plt.subplots(2, 1, figsize=(8, 8), sharex=True)
    colors = {1: "tab:red", 2: "tab:green", 3: "tab:blue"}
    x = np.array([dist[b] * 1000 for b in model.node_bus])
    for phase, color in colors.items():
        sel = (model.node_phase == phase) & (model.node_bus != model.source_bus)
        sel &= x < 1e5  # the MV side has no distance from the LV meter
        letter = "abc"[phase - 1]
        ax_v.scatter(x[sel], base.vm_pu[0, sel], s=3, color=color, alpha=0.3)
        ax_v.scatter(x[sel], cases.vm_pu[1, sel], s=4, color=color, label=f"phase {letter}")
    ax_v.axhline(CRITERIA.v_min_pu, color="k", lw=0.8, ls="--")
    ax_v.set_ylabel("phase-to-neutral voltage [pu]")
    ax_v.set_title(
        "European LV: base case (faint), 7.4 kW chargers at every third house, all on phase a"
    )
    ax_v.legend(loc="lower left")
    hx = np.array([dist[b] * 1000 for b in houses])
    for phase, marker in (("a", "o"), ("b", "s"), ("c", "^"), ("abc", "x")):
        values = [r["hosting_capacity_mw"] * 1000 for r in hc[phase].rows]
        ax_hc.scatter(hx, values, marker=marker, s=18, label=f"phase {phase}")
    ax_hc.set_xlabel("distance from the transformer along the feeder [m]")
    ax_hc.set_ylabel("EV hosting capacity at the house [kW]")
    ax_hc.legend()
    fig.tight_layout()
    fig.savefig(FIGURES / "unbalanced_phase_voltages.png", dpi=120)
    print(f"wrote {FIGURES / 'unbalanced_phase_voltages.png'}")


def linear_error_figure(model, base, linear, houses, dist) -> None:
    """One 7.4 kW charger at a time at every house (phase a): linear model against AC."""
    p = np.zeros((len(houses), model.n_node))
    for row, bus in enumerate(houses):
        p[row, model.node_index(bus, 1)] = -CHARGER_MW
    ac = model.solve(p_wye_mw=p)
    lin = np.abs(linear.solve(p_wye_mw=p))
    change = np.abs(ac.vm_pu - base.vm_pu[0]).max(axis=1)
    error = np.abs(lin - ac.vm_pu).max(axis=1)
    print(
        f"linear model, one 7.4 kW charger (phase a) at each of {len(houses)} houses: max "
        f"|error| {error.max():.2e} pu, largest change {change.max():.2e} pu, error/change "
        f"<= {np.max(error / change):.3f}"
    )
    x = [dist[b] * 1000 for b in houses]
    fig, ax = plt.subplots(figsize=(8, 3.5))
    ax.semilogy(x, change, "o", ms=4, label="AC voltage change (largest node)")
    ax.semilogy(x, error, "x", ms=5, label="linear model error (largest node)")
    ax.set_xlabel("distance of the charging house from the transformer [m]")
    ax.set_ylabel("[pu]")
    ax.set_title("First-order linear model against three-phase AC, one 7.4 kW charger")
    ax.legend()
    fig.tight_layout()
    fig.savefig(FIGURES / "unbalanced_linear_error.png", dpi=120)


if __name__ == "__main__":
    main()
