"""Names of the simulators' attributes that the scenario, the world and the simulators share.

Kept apart from the simulators (which need mosaik) and from the world builder so that the
scenario validation can check ``[output] record`` without importing either: the data flow
goes one way, scenario -> world -> simulators, with no import circle.
"""

from __future__ import annotations

#: Inputs of the fleet's ``Fleet`` model.
FLEET_INPUTS = [
    "f_hz",  # frequency seen by the fleet [Hz]
    "bus_vm_pu",  # voltage per bus {bus: pu}
    "p_setpoint_mw",  # total active-power set-point [MW] (NaN: follow the charging policy)
    "bus_p_setpoint_mw",  # set-point per bus {bus: MW}
]
#: Outputs of the fleet, also what a run records for the fleet (``cosim.world.RECORDED``)
FLEET_OUTPUTS = [
    "p_mw",
    "q_mvar",
    "bus_p_mw",
    "bus_q_mvar",
    "n_plugged",
    "n_tripped",
    "soc_mean_frac",
    "e_kwh",
    "e_charged_kwh",
    "e_discharged_kwh",
    "e_loss_kwh",
    "e_driven_kwh",
    "e_shortfall_kwh",
    "f_seen_hz",
    "p_setpoint_seen_mw",
    "p_setpoint_unmet_mw",
]

#: Outputs of a three-phase feeder beside the feeder's ones (``ThreePhaseFeederSim``), recorded
#: with them: the worst phase voltages per phase [pu], the largest voltage unbalance factor
#: over the three-phase buses [%] and the factor per three-phase bus ({bus: %}).
THREE_PHASE_RECORDED = [
    "vm_min_a_pu",
    "vm_min_b_pu",
    "vm_min_c_pu",
    "vm_max_a_pu",
    "vm_max_b_pu",
    "vm_max_c_pu",
    "vuf_max_percent",
    "bus_vuf_percent",
    "n_tap_changes",  # cumulative regulator tap operations (regulator_control = "time")
]

#: Outputs each simulator records (inputs excluded); vector outputs are per bus.
RECORDED = {
    "feeder": [
        "bus_vm_pu",
        "vm_min_pu",
        "vm_max_pu",
        "n_deenergized_buses",
        "load_pu_used",
        "ambient_c_used",
        "p_load_mw",
        "p_extra_mw",
        "p_loss_mw",
        "q_loss_mvar",
        "p_slack_mw",
        "q_slack_mvar",
        "max_line_loading_percent",
        "max_trafo_loading_percent",
        "transformer_load_pu",
        "top_oil_c",
        "hot_spot_c",
        "ageing_h",
        "loop_passes",
        "loop_residual_pu",
    ],
    "fleet": list(FLEET_OUTPUTS),
    "frequency": [
        "f_hz",
        "delta_f_hz",
        "rocof_hz_per_s",
        "p_mech_mw",
        "ufls_shed_mw",
        "ufls_stages_tripped",
        "p_imbalance_mw",
    ],
    "events": ["p_event_mw", "island", "n_events"],
}
