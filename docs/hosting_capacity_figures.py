"""Generate the figures and numbers of ``docs/hosting_capacity.md`` (worked example).

Usage: ``python docs/hosting_capacity_figures.py`` (writes ``docs/figures/hc_*.png`` and prints
the tables quoted in the guide).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from studies.hosting_capacity import HostingCapacityStudy, Mode
from studies.hosting_capacity_bruteforce import bruteforce_hosting_capacity
from studies.hosting_capacity_report import feeder_map, violation_curve
from studies.hosting_capacity_stochastic import run_stochastic

FIGURES = Path(__file__).parent / "figures"


def main() -> None:
    FIGURES.mkdir(exist_ok=True)
    study = HostingCapacityStudy("case33bw")
    export = study.run(mode=Mode.EXPORT)
    t = export.table
    print("case33bw export, selected buses:")
    print(
        t[t.bus.isin([3, 6, 12, 17, 21, 24, 32])][
            ["bus", "screen_mw", "hosting_capacity_mw", "difference_mw", "binding", "where"]
        ].to_string(index=False)
    )
    print("brute-force runpp bisection:")
    for bus in (6, 17, 32):
        hc, binding, n = bruteforce_hosting_capacity(study.net, bus, cap_mw=study.default_cap_mw)
        row = t.set_index("bus").loc[bus]
        print(
            f"  bus {bus}: runpp {hc:.4f} MW ({binding.value}, {n} runpp), two-tier "
            f"{row.hosting_capacity_mw:.4f} MW, diff {(row.hosting_capacity_mw - hc) * 1000:.3f} kW"
        )
    fig = feeder_map(study.net, t, title="case33bw: export hosting capacity (AC) [MW]")
    fig.savefig(FIGURES / "hc_case33bw_map.png", dpi=110, bbox_inches="tight")
    plt.close(fig)

    imp = study.run(mode=Mode.IMPORT)
    print("case33bw import binding:", imp.table.binding.value_counts().to_dict())
    print("   criteria:", imp.table.base_case_criterion.value_counts().to_dict())

    ober = HostingCapacityStudy("mv_oberrhein")
    ober_export = ober.run(mode=Mode.EXPORT)
    ober_import = ober.run(mode=Mode.IMPORT)
    for name, res in (("export", ober_export), ("import", ober_import)):
        tab = res.table
        print(
            f"mv_oberrhein {name}: HC min/median/max {tab.hosting_capacity_mw.min():.2f}/"
            f"{tab.hosting_capacity_mw.median():.2f}/{tab.hosting_capacity_mw.max():.2f} MW, "
            f"binding {tab.binding.value_counts().to_dict()}, bracket held "
            f"{tab.within_screen_bracket.mean() * 100:.0f} %, AC/screen "
            f"{(tab.hosting_capacity_mw / tab.screen_mw).min():.3f}.."
            f"{(tab.hosting_capacity_mw / tab.screen_mw).max():.3f}"
        )
    fig = feeder_map(ober.net, ober_export.table, title="mv_oberrhein: export HC (AC) [MW]")
    fig.savefig(FIGURES / "hc_oberrhein_map.png", dpi=110, bbox_inches="tight")
    plt.close(fig)

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, (name, res) in zip(
        axes,
        (
            ("case33bw export", export),
            ("mv_oberrhein import", ober_import),
        ),
        strict=True,
    ):
        tab = res.table
        m = res.screen_margin
        ax.plot(tab.screen_mw, tab.hosting_capacity_mw, "o", ms=4, label="buses")
        top = max(tab.screen_mw.max(), tab.hosting_capacity_mw.max()) * 1.05
        ax.plot([0, top], [0, top], "k-", lw=0.8, label="AC = screen")
        ax.fill_between([0, top], [0, top * (1 - m)], [0, top * (1 + m)], color="C0", alpha=0.12)
        ax.set_xlabel("LinDistFlow screen [MW]")
        ax.set_ylabel("AC hosting capacity [MW]")
        ax.set_title(f"{name} (band: screen x (1 +- {m}))", fontsize=10)
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(FIGURES / "hc_screen_vs_ac.png", dpi=110, bbox_inches="tight")
    plt.close(fig)

    gain = study.control_gain([6, 17, 32], mode=Mode.EXPORT)
    print("control gain, case33bw export:")
    print(gain.to_string(index=False))
    pivot = gain.pivot(index="bus", columns="setting", values="hosting_capacity_mw")
    order = ["unity_pf", "pf_0.95", "volt_var_a", "volt_var_b", "volt_watt"]
    fig, ax = plt.subplots(figsize=(7, 3.8))
    pivot[order].plot.bar(ax=ax, rot=0)
    ax.set_ylabel("hosting capacity [MW]")
    ax.set_title("case33bw export HC by inverter setting (IEEE 1547-2018 defaults)", fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    fig.savefig(FIGURES / "hc_control_gain.png", dpi=110, bbox_inches="tight")
    plt.close(fig)

    stochastic = run_stochastic(study, n_samples=1000, seed=0)
    print("stochastic (1000, seed 0):", stochastic.summary(), stochastic.timings_s)
    fig = violation_curve(stochastic, title="case33bw: 1,000 plug-in scenarios, export")
    fig.savefig(FIGURES / "hc_violation_probability.png", dpi=110, bbox_inches="tight")
    plt.close(fig)


if __name__ == "__main__":
    main()
