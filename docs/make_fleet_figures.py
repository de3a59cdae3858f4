"""Generate the figures of docs/fleet.md into docs/figures/ (python docs/make_fleet_figures.py).

* ``fleet_availability.png``: plugged-in share, schedule and feasible power range (headroom)
  over two days for 1,000 vehicles of each preset (LATEST charging, no grid support).
* ``fleet_thevenin.png``: terminal voltage and RC polarisation of a 60 kWh pack for a 30 kW
  discharge pulse followed by rest (2-RC equivalent circuit).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from vehicle_models.battery import BatteryBank, TheveninParameters
from vehicle_models.fleet import Fleet, FleetPreset
from vehicle_models.settings import InverterSettings

OUT = Path(__file__).resolve().parent / "figures"


def availability_figure() -> Path:
    dt_s = 900.0
    n_steps = 2 * 96
    fig, axes = plt.subplots(2, 3, figsize=(13, 6), sharex=True)
    for col, preset in enumerate(FleetPreset):
        fleet = Fleet.sample(
            1000,
            buses=[0],
            preset=preset,
            seed=1,
            settings=InverterSettings.defaults(functions=frozenset()),
        )
        t_h, plugged, p_min, p_max, p = [], [], [], [], []
        for k in range(n_steps):
            t_s = k * dt_s
            head = fleet.headroom(t_s=t_s, dt_s=dt_s)
            res = fleet.step(t_s=t_s, dt_s=dt_s, vm_pu=np.ones(1), f_hz=60.0)
            t_h.append(t_s / 3600.0)
            plugged.append(res.n_plugged[0] / fleet.n_vehicles)
            p_min.append(head.p_min_mw.iloc[0])
            p_max.append(head.p_max_mw.iloc[0])
            p.append(res.p_mw[0])
        ax = axes[0, col]
        ax.plot(t_h, plugged, color="tab:blue")
        ax.set_title(f"{preset.value.upper()}: 1,000 vehicles")
        ax.set_ylabel("plugged-in share [-]")
        ax.set_ylim(0, 1.05)
        ax = axes[1, col]
        ax.fill_between(
            t_h,
            p_min,
            p_max,
            color="tab:green",
            alpha=0.3,
            label="feasible range (sum of vehicle bounds)",
        )
        ax.plot(t_h, p, color="k", lw=1, label="schedule (as late as possible)")
        ax.set_xlabel("time [h]")
        ax.set_ylabel("power [MW] (+ = V2G export)")
        ax.set_xticks(range(0, 49, 6))
        if col == 0:
            ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    path = OUT / "fleet_availability.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def thevenin_figure() -> Path:
    bank = BatteryBank.create(
        e_capacity_kwh=[60.0],
        soc_frac=0.8,
        p_charge_max_kw=50.0,
        eta_charge=1.0,
        eta_discharge=1.0,
        thevenin=TheveninParameters(),
    )
    dt_s = 1.0
    t, v_term, v1, v2 = [], [], [], []
    for k in range(3600):
        p_kw = 30.0 if 300 <= k < 1500 else 0.0
        res = bank.step(np.array([p_kw]), dt_s)
        # terminal voltage at the end of the step with the step's current
        ocv = bank.ocv_v()[0]
        current_a = res.p_ac_kw[0] * 1000.0 / max(ocv, 1.0)
        t.append((k + 1) * dt_s / 60.0)
        v_term.append(bank.terminal_voltage_v(np.array([current_a]))[0])
        v1.append(bank.v_rc_v[0, 0])
        v2.append(bank.v_rc_v[1, 0])
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(8, 5.5), sharex=True)
    ax1.plot(t, v_term)
    ax1.set_ylabel("terminal voltage [V]")
    ax1.set_title("60 kWh NMC pack (96s), 30 kW discharge 5-25 min, then rest")
    ax2.plot(t, v1, label="v1 (tau 10 s)")
    ax2.plot(t, v2, label="v2 (tau 400 s)")
    ax2.set_ylabel("RC voltage [V]")
    ax2.set_xlabel("time [min]")
    ax2.legend()
    fig.tight_layout()
    path = OUT / "fleet_thevenin.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for path in (availability_figure(), thevenin_figure()):
        print(path)


if __name__ == "__main__":
    main()
