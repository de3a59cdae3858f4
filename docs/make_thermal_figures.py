"""Generate the figures of docs/thermal.md: ``python docs/make_thermal_figures.py``.

* ``figures/thermal_iec_example.png``: the IEC 60076-7 annex example (ONAF, load steps),
  our top-oil and hot-spot trajectories with the annex reference points.
* ``figures/thermal_one_day.png``: a one-day profile stepped with 1 s, 60 s and 900 s and the
  ``transformer-thermal-model`` package on the same profile.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from grids.thermal import (
    CoolingMode,
    ThermalParameters,
    TransformerThermalModel,
)

FIGURES = Path(__file__).parent / "figures"

IEC_BREAKS_MIN = [0, 190, 365, 500, 705, 730, 745]
IEC_LOAD_PU = [1.0, 0.6, 1.5, 0.3, 2.1, 0.0]
IEC_REFERENCE = [
    (190, 61.9, 83.8),
    (365, 44.4, 54.0),
    (500, 89.2, 127.0),
    (705, 35.0, 37.54),
    (730, 67.9, 138.6),
    (745, 60.3, 75.3),
]


def iec_example() -> Path:
    params = ThermalParameters.for_cooling(
        CoolingMode.ONAF, r=1000.0, delta_theta_or_k=38.3, g_r_k=14.5, h=1.4
    )
    model = TransformerThermalModel(params, theta_o_initial_c=38.3, delta_theta_h_initial_k=0.0)
    t, top, hot = [0.0], [model.top_oil_c[0]], [model.hot_spot_c[0]]
    for i, load in enumerate(IEC_LOAD_PU):
        for _ in range(IEC_BREAKS_MIN[i + 1] - IEC_BREAKS_MIN[i]):
            model.step(load_pu=load, ambient_c=25.6, dt_s=60.0)
            t.append(model.t_s / 60.0)
            top.append(model.top_oil_c[0])
            hot.append(model.hot_spot_c[0])
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(t, hot, label="hot spot (ours)", color="tab:red")
    ax.plot(t, top, label="top oil (ours)", color="tab:blue")
    ref_t = [r[0] for r in IEC_REFERENCE]
    ax.plot(ref_t, [r[2] for r in IEC_REFERENCE], "o", color="tab:red", mfc="none",
            label="hot spot (IEC annex)")  # fmt: skip
    ax.plot(ref_t, [r[1] for r in IEC_REFERENCE], "s", color="tab:blue", mfc="none",
            label="top oil (IEC annex)")  # fmt: skip
    ax2 = ax.twinx()
    ax2.step(IEC_BREAKS_MIN, [*IEC_LOAD_PU, IEC_LOAD_PU[-1]], where="post", color="0.5", lw=0.8)
    ax2.set_ylabel("load factor K [pu]", color="0.4")
    ax.set_xlabel("time [min]")
    ax.set_ylabel("temperature [degC]")
    ax.set_title("IEC 60076-7 annex example (ONAF), exact stepping vs annex table")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    path = FIGURES / "thermal_iec_example.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def one_day() -> Path:
    import pandas as pd
    from transformer_thermal_model.cooler import CoolerType
    from transformer_thermal_model.model import Model
    from transformer_thermal_model.schemas import InputProfile, UserTransformerSpecifications
    from transformer_thermal_model.schemas.thermal_model.initial_state import InitialLoad
    from transformer_thermal_model.transformer import PowerTransformer

    params = ThermalParameters.for_cooling(CoolingMode.ONAF)
    t_min = np.arange(0.0, 24 * 60 + 7.5, 15.0)
    hour = t_min / 60.0
    load = (
        0.6
        + 0.5 * np.exp(-(((hour - 18.5) / 2.5) ** 2))
        + 0.15 * np.sin(2 * np.pi * (hour - 9.0) / 24)
    )
    ambient = 15.0 + 8.0 * np.sin(2 * np.pi * (hour - 9.0) / 24)
    fig, (ax, ax_err) = plt.subplots(2, 1, figsize=(7, 5.5), sharex=True,
                                     gridspec_kw={"height_ratios": [3, 1]})  # fmt: skip
    curves = {}
    for dt_s, style in ((1.0, "-"), (60.0, "--"), (900.0, ":")):
        model = TransformerThermalModel(params, load_pu0=load[0], ambient_c0=ambient[0])
        marks = [model.hot_spot_c[0]]
        for i in range(len(t_min) - 1):
            for _ in range(round(900.0 / dt_s)):
                model.step(load_pu=load[i], ambient_c=ambient[i], dt_s=dt_s)
            marks.append(model.hot_spot_c[0])
        curves[dt_s] = np.array(marks)
        ax.plot(hour, marks, style, label=f"hot spot, ours, dt = {dt_s:g} s")
    nominal_a = 1000.0
    specs = UserTransformerSpecifications(
        load_loss=params.r * 1000.0, no_load_loss=1000.0, nom_load_sec_side=nominal_a,
        amb_temp_surcharge=0.0, top_oil_temp_rise=params.delta_theta_or_k,
        winding_oil_gradient=params.g_r_k, hot_spot_fac=params.h,
        time_const_oil=params.tau_o_min, time_const_windings=params.tau_w_min,
        oil_const_k11=params.k11, winding_const_k21=int(params.k21),
        winding_const_k22=int(params.k22), oil_exp_x=params.x, winding_exp_y=params.y,
        end_temp_reduction=0.0,
    )  # fmt: skip
    profile = InputProfile.create(
        datetime_index=pd.Timestamp("2024-06-01") + pd.to_timedelta(t_min, unit="min"),
        load_profile=np.r_[load[0], load[:-1]] * nominal_a,
        ambient_temperature_profile=np.r_[ambient[0], ambient[:-1]],
    )
    reference = Model(
        temperature_profile=profile,
        transformer=PowerTransformer(user_specs=specs, cooling_type=CoolerType.ONAF),
        initial_condition=InitialLoad(initial_load=load[0] * nominal_a),
    ).run()
    hot_ref = reference.hot_spot_temp_profile.to_numpy()
    ax.plot(hour, hot_ref, "k.", ms=3, label="transformer-thermal-model 0.6")
    ax.set_ylabel("hot-spot temperature [degC]")
    ax.set_title("One-day profile, ONAF IEC defaults: step sizes and package cross-check")
    ax.legend(fontsize=8)
    for dt_s in curves:
        ax_err.plot(hour, np.abs(curves[dt_s] - hot_ref) + 1e-16, label=f"dt = {dt_s:g} s")
    ax_err.set_yscale("log")
    ax_err.set_ylabel("|ours - package| [K]")
    ax_err.set_xlabel("time [h]")
    ax_err.legend(fontsize=7, ncol=3)
    fig.tight_layout()
    path = FIGURES / "thermal_one_day.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


if __name__ == "__main__":
    FIGURES.mkdir(exist_ok=True)
    for written in (iec_example(), one_day()):
        print(f"wrote {written}")
