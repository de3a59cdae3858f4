"""Generate the figures of ``docs/controls.md`` (IEEE 1547-2018 inverter controls).

Run from the repository root: ``python docs/make_control_figures.py``. Writes
``docs/figures/control_*.png``. Every curve is computed by the library functions (the same
ones the tests check against EPRI OpenDER), nothing is drawn by hand.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from vehicle_models.controls import (
    constant_pf_q_pu,
    freq_watt_p_pu,
    volt_var_q_pu,
    volt_watt_p_max_pu,
    watt_var_q_pu,
)
from vehicle_models.inverter import InverterBank
from vehicle_models.ride_through import must_ride_through_s
from vehicle_models.settings import (
    AbnormalCategory,
    ConstantPFSettings,
    Excitation,
    InverterSettings,
    StaggerMode,
    StaggerSettings,
    TripSettings,
)
from vehicle_models.vsm import DroopLowPassFilter, VirtualSynchronousMachine

OUT = Path(__file__).resolve().parent / "figures"


def _save(fig, name: str) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(OUT / name, dpi=110)
    plt.close(fig)
    print(f"wrote {OUT / name}")


def volt_var() -> None:
    v = np.linspace(0.85, 1.15, 301)
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for cat in ("A", "B"):
        s = InverterSettings.defaults(voltage_category=cat).volt_var
        ax.plot(v, volt_var_q_pu(v, s), label=f"Category {cat} default")
    s = InverterSettings.defaults().volt_var
    ax.plot(
        v,
        volt_var_q_pu(v, dataclasses.replace(s, v_ref_pu=1.03)),
        "--",
        label="Category B, V_ref = 1.03 pu",
    )
    ax.set_xlabel("voltage [pu]")
    ax.set_ylabel("Q [pu of S rating] (+ injected)")
    ax.set_title("Volt-var (IEEE 1547-2018 Table 8)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, "control_volt_var.png")


def volt_watt() -> None:
    v = np.linspace(1.0, 1.14, 281)
    s = InverterSettings.defaults().volt_watt
    fig, ax = plt.subplots(figsize=(6, 3.4))
    ax.plot(v, volt_watt_p_max_pu(v, s), label="P limit, P'2 = 0 (V2G default)")
    ax.plot(v, volt_watt_p_max_pu(v, dataclasses.replace(s, p2_pu=-0.5)), "--", label="P'2 = -0.5")
    ax.plot(v, volt_watt_p_max_pu(v, dataclasses.replace(s, p2_pu=0.2)), ":", label="P2 = 0.2")
    ax.set_xlabel("voltage [pu]")
    ax.set_ylabel("active power limit [pu]")
    ax.set_title("Volt-watt (IEEE 1547-2018 Table 10)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, "control_volt_watt.png")


def freq_watt() -> None:
    f = np.linspace(58.5, 61.5, 601)
    s = InverterSettings.defaults().freq_watt
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for p_pre in (-0.5, 0.0, 0.5):
        p = freq_watt_p_pu(f, p_pre_pu=p_pre, settings=s, p_max_pu=1.0, p_min_pu=-1.0)
        ax.plot(f, p, label=f"p_pre = {p_pre:+.1f} pu")
    s2 = dataclasses.replace(s, k_of=0.02, k_uf=0.02)
    p = freq_watt_p_pu(f, p_pre_pu=0.0, settings=s2, p_max_pu=1.0, p_min_pu=-1.0)
    ax.plot(f, p, "--", label="p_pre = 0, k = 2 % (Cat III min)")
    ax.set_xlabel("frequency [Hz]")
    ax.set_ylabel("P [pu] (+ discharge)")
    ax.set_title("Frequency droop, db 36 mHz, k 5 % (Tables 24/25)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, "control_freq_watt.png")


def pf_and_watt_var() -> None:
    p = np.linspace(-1, 1, 401)
    fig, ax = plt.subplots(figsize=(6, 3.4))
    for pf, exc in ((0.9, Excitation.ABSORB), (0.95, Excitation.INJECT)):
        ax.plot(
            p,
            constant_pf_q_pu(p, ConstantPFSettings(pf=pf, excitation=exc)),
            label=f"PF {pf} {exc.value}",
        )
    ax.plot(
        p,
        watt_var_q_pu(p, InverterSettings.defaults().watt_var),
        "--",
        label="watt-var (Table 9, Cat B)",
    )
    ax.set_xlabel("P [pu] (+ discharge, - charge)")
    ax.set_ylabel("Q [pu] (+ injected)")
    ax.set_title("Constant power factor and watt-var")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, "control_pf_watt_var.png")


def lag() -> None:
    """Volt-var step response of the bank: 90 % at the OLRT."""
    fig, ax = plt.subplots(figsize=(6, 3.2))
    for cat in ("A", "B"):
        s = InverterSettings.defaults(voltage_category=cat, functions=["volt_var"])
        bank = InverterBank(s, n=1)
        one = np.ones(1)
        dt = 0.05
        t, q = [], []
        for k in range(round(30 / dt)):
            vm = 1.0 if k * dt < 2.0 else 0.9
            out = bank.step(
                dt_s=dt,
                vm_pu=vm * one,
                f_hz=60.0,
                p_request_pu=0 * one,
                p_max_pu=one,
                p_min_pu=-one,
                connected=one > 0,
            )
            t.append((k + 1) * dt)
            q.append(out.q_pu[0])
        final = volt_var_q_pu(0.9, s.volt_var)
        ax.plot(t, np.array(q) / final, label=f"Category {cat} (OLRT {s.volt_var.olrt_s:g} s)")
        ax.axvline(2.0 + s.volt_var.olrt_s, ls=":", color="grey")
    ax.axhline(0.9, ls="--", color="grey", lw=0.8)
    ax.set_xlabel("time [s] (voltage step 1.0 -> 0.9 pu at 2 s)")
    ax.set_ylabel("Q / Q_final")
    ax.set_title("Open-loop response time as a first-order lag")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, "control_response_time.png")


def ride_through() -> None:
    v = np.linspace(0.0, 1.3, 1301)
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.6), sharey=True)
    for ax, cat in zip(axes, AbnormalCategory, strict=True):
        t_rt = must_ride_through_s(v, cat)
        t_plot = np.where(np.isinf(t_rt), 1e3, np.maximum(t_rt, 1e-2))
        ax.semilogx(t_plot, v, label="must ride through (Tables 14-16)")
        trip = TripSettings.defaults(cat)
        for name, color in (("ov2", "C3"), ("ov1", "C1"), ("uv1", "C2"), ("uv2", "C4")):
            thr = getattr(trip, f"{name}_v_pu")
            t_clear = getattr(trip, f"{name}_t_s")
            ax.plot(
                [t_clear, 1e3],
                [thr, thr],
                color=color,
                lw=2,
                label=f"{name.upper()} trip {thr:g} pu / {t_clear:g} s",
            )
            ax.plot(
                [t_clear, t_clear],
                [thr, 1.3 if name.startswith("ov") else 0.0],
                color=color,
                lw=1,
                ls=":",
            )
        if trip.mc_low_v_pu > 0:
            ax.axhspan(0.0, trip.mc_low_v_pu, color="grey", alpha=0.15, label="momentary cessation")
        ax.axhspan(trip.mc_high_v_pu, 1.3, color="grey", alpha=0.15)
        ax.set_title(f"Category {cat.value}")
        ax.set_xlabel("time [s]")
        ax.set_xlim(1e-2, 1e3)
        ax.grid(True, alpha=0.3, which="both")
    axes[0].set_ylabel("voltage [pu]")
    axes[-1].legend(fontsize=6, loc="lower right")
    _save(fig, "control_ride_through.png")


def stagger() -> None:
    n = 200
    fig, ax = plt.subplots(figsize=(6, 3.4))
    for mode, kwargs in (
        (StaggerMode.SIMULTANEOUS, {}),
        (StaggerMode.RAMP, {"ramp_s": 2.0}),
        (StaggerMode.TIERED, {"n_tiers": 4, "f_spread_hz": 0.3, "t_spread_frac": 3.0}),
        (StaggerMode.RANDOM, {"f_spread_hz": 0.3, "t_spread_frac": 3.0}),
    ):
        s = InverterSettings.defaults(functions=[])
        s = dataclasses.replace(s, stagger=StaggerSettings(mode=mode, **kwargs))
        bank = InverterBank(s, n=n, seed=1)
        one = np.ones(n)
        t, total = [], []
        for k in range(300):
            f = 60.0 if k < 20 else 56.3
            out = bank.step(
                dt_s=0.01,
                vm_pu=one,
                f_hz=f,
                p_request_pu=0.5 * one,
                p_max_pu=one,
                p_min_pu=-one,
                connected=one > 0,
            )
            t.append((k + 1) * 0.01)
            total.append(out.p_pu.sum() / n)
        ax.plot(t, total, label=mode.value)
    ax.set_xlabel("time [s] (frequency 60 -> 56.3 Hz at 0.2 s; UF2 56.5 Hz / 0.16 s)")
    ax.set_ylabel("fleet P [pu of fleet rating]")
    ax.set_title("Staggered disconnection")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, "control_stagger.png")


def vsm() -> None:
    m_p, tau = 0.05, 0.2
    droop = DroopLowPassFilter(m_p=m_p, tau_s=tau, x_pu=0.15, n=1)
    machine = VirtualSynchronousMachine(droop.equivalent_vsm_settings(), n=1)
    p_ref = np.array([0.2])
    machine.initialize(p_ref_pu=p_ref, f_hz=60.0)
    droop.delta_rad = machine.delta_rad.copy()
    droop.p_filtered_pu = p_ref - machine.domega_pu / m_p
    dt = 0.002
    t = np.arange(0, 4, dt)
    f = np.where(t < 0.5, 60.0, np.maximum(60.0 - 0.5 * (t - 0.5), 59.7))
    p_v, p_d = [], []
    for fk in f:
        p_v.append(machine.step(dt_s=dt, f_hz=fk, p_ref_pu=p_ref)[0])
        p_d.append(droop.step(dt_s=dt, f_hz=fk, p_ref_pu=p_ref)[0])
    fig, ax = plt.subplots(figsize=(6, 3.4))
    ax.plot(t, p_v, label=f"VSM, H = {machine.settings.h_s:g} s, D = {machine.settings.d_pu:g}")
    ax.plot(t, p_d, "--", label=f"droop {m_p:g} + LPF tau = {tau:g} s")
    ax2 = ax.twinx()
    ax2.plot(t, f, color="grey", lw=0.8)
    ax2.set_ylabel("grid frequency [Hz]", color="grey")
    ax.set_xlabel("time [s]")
    ax.set_ylabel("P [pu]")
    ax.set_title("Grid-forming: VSM = droop with low-pass filter")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="center right")
    _save(fig, "control_vsm.png")


def main() -> None:
    volt_var()
    volt_watt()
    freq_watt()
    pf_and_watt_var()
    lag()
    ride_through()
    stagger()
    vsm()


if __name__ == "__main__":
    main()
