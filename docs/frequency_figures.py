"""Generate the figures of docs/frequency.md (run: python docs/frequency_figures.py).

A 500 MW loss on a 10 GW, 60 Hz system: the base case, a reheat turbine, AGC, and UFLS on a
low-inertia system, each stepped at 20 ms by grids.frequency.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from grids.frequency import SwingParameters, UflsStage, simulate

CASES = {
    "H 5 s, R 0.05, T_gov 0.5 s": SwingParameters(),
    "+ reheat (F_HP 0.3, T_RH 7 s)": SwingParameters(f_hp=0.3, t_rh_s=7.0),
    "+ reheat + AGC (K_I 0.5)": SwingParameters(f_hp=0.3, t_rh_s=7.0, agc_ki_per_s=0.5),
    "H 2 s, reheat, UFLS 59.6 Hz / 0.2 s / 3 %": SwingParameters(
        h_s=2.0, f_hp=0.3, t_rh_s=7.0, ufls=(UflsStage(59.6, 0.2, 0.03),)
    ),
}


def main() -> None:
    out = Path(__file__).parent / "figures"
    out.mkdir(exist_ok=True)
    dt_s, t_end_s, loss_mw = 0.02, 60.0, 500.0
    p = np.full(round(t_end_s / dt_s), -loss_mw)
    fig, ax = plt.subplots(figsize=(8, 4), layout="constrained")
    for label, params in CASES.items():
        run = simulate(params, dt_s=dt_s, p_imbalance_mw=p)
        ax.plot(run["t_s"], run["f_hz"], label=label)
    ax.axhline(59.6, color="0.5", ls=":", lw=1)
    ax.set_xlabel("time after the loss [s]")
    ax.set_ylabel("frequency [Hz]")
    ax.set_title("500 MW lost on 10 GW at t = 0 (20 ms steps)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.savefig(out / "frequency_response.png", dpi=110)


if __name__ == "__main__":
    main()
