"""Adoption hosting capacity against an independent re-computation of each placement.

The reference rebuilds every (seed, share) placement on its own (``place_evs`` at that share,
the per-bus sum with ``np.add.at``, one AC power flow per step and its own voltage-band check)
and must flag exactly the violating placements the study flags.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from grids.errors import ScenarioError
from grids.feeder_model import FeederModel
from grids.profiles_year import FeederProfiles
from studies.adoption import AdoptionControl, customer_buses, run_adoption_study
from studies.hosting_capacity_engine import HostingCapacityCriteria
from vehicle_models.adoption import place_evs, session_demand_kw

CRITERIA = HostingCapacityCriteria(v_min_pu=0.935, v_max_pu=1.05)


def _profiles(model, *, steps=48, ev=False):
    time = pd.date_range("2026-01-05", periods=steps, freq="30min")
    hour = (time.hour + time.minute / 60).to_numpy()
    shape = 0.4 + 0.25 * np.exp(-(((hour - 19) / 2.5) ** 2))
    p0, q0 = model.base_injection()
    p, q = p0[None, :] * shape[:, None], q0[None, :] * shape[:, None]
    ev_p = None
    if ev:  # an evening EV shape at three buses, already part of the net injection
        ev_p = np.zeros_like(p)
        ev_p[:, [5, 12, 20]] = 0.02 * np.exp(-(((hour - 20) / 2) ** 2))[:, None]
        p = p - ev_p
    return FeederProfiles(time=time, step_s=1800.0, bus=model.bus, p_mw=p, q_mvar=q, ev_p_mw=ev_p)


@pytest.fixture(scope="module")
def case33():
    return FeederModel.from_name("case33bw")


def test_violations_equal_an_independent_recomputation(case33):
    profiles = _profiles(case33)
    result = run_adoption_study(
        case33, profiles, source="behaviour", controls=["unmanaged"], n_seeds=2,
        share_step=0.25, criteria=CRITERIA,
    )  # fmt: skip
    customers = customer_buses(case33)
    col = {int(b): k for k, b in enumerate(case33.bus)}
    tod = (profiles.time.hour * 3600 + profiles.time.minute * 60).to_numpy(float)
    base = case33.solve(profiles.p_mw, profiles.q_mvar, warm_start=False).vm_pu
    expected = np.zeros((2, len(result.shares)), dtype=bool)
    for i, seed in enumerate(result.seeds):
        for k, share in enumerate(result.shares):
            evs = place_evs(customers, share=float(share), seed=int(seed), v2g_share=0.5)
            demand, _ = session_demand_kw(
                tod, 1800.0, charger_kw=evs.charger_kw, seed=int(seed),
                n_customer=len(customers), customer=evs.customer,
            )  # fmt: skip
            p = profiles.p_mw.copy()
            for e, bus in enumerate(evs.bus):
                p[:, col[int(bus)]] -= demand[:, e] / 1000.0
            vm = case33.solve(p, profiles.q_mvar, warm_start=False).vm_pu
            worse_low = (vm < CRITERIA.v_min_pu) & ~((base < CRITERIA.v_min_pu) & (vm >= base))
            expected[i, k] = worse_low.any() or (vm > CRITERIA.v_max_pu).any()
    np.testing.assert_array_equal(result.violated[AdoptionControl.UNMANAGED], expected)
    assert expected.any() and not expected.all()  # the grid spans the hosting share
    row = result.rows[0]
    per_seed = [result.shares[np.argmax(e) - 1] if e.any() else 1.0 for e in expected]
    assert row["share_p50"] == pytest.approx(np.percentile(per_seed, 50, method="lower"))
    assert row["most_common_binding"] == "undervoltage"


def test_controls_relieve_undervoltage(case33):
    """Volt-var injects reactive power below 0.98 pu and managed charging leaves the peak:
    neither may violate at a share where unmanaged charging does not."""
    profiles = _profiles(case33)
    result = run_adoption_study(
        case33, profiles, source="behaviour", n_seeds=2, share_step=0.25, criteria=CRITERIA
    )
    un = result.violated[AdoptionControl.UNMANAGED]
    assert not (result.violated[AdoptionControl.VOLT_VAR] & ~un).any()
    prob = {c: result.violation_probability(c) for c in AdoptionControl}
    assert prob[AdoptionControl.VOLT_VAR].sum() <= prob[AdoptionControl.UNMANAGED].sum()
    doc = result.to_json()
    assert {r["control"] for r in doc["results"]} == {c.value for c in AdoptionControl}


def test_simbench_source_replaces_the_scenarios_own_evs(case33):
    profiles = _profiles(case33, ev=True)
    result = run_adoption_study(
        case33, profiles, source="simbench", controls=["unmanaged"], n_seeds=1, share_step=0.5,
        criteria=CRITERIA,
    )  # fmt: skip
    # at share 0 the own EVs are gone: the base is the profiles plus their EV charging
    assert not result.violated[AdoptionControl.UNMANAGED][0, 0]
    with pytest.raises(ScenarioError, match="simbench"):
        run_adoption_study(case33, _profiles(case33), source="simbench")


@pytest.mark.parametrize(
    ("kwargs", "text"),
    [
        ({"n_seeds": 0}, "n_seeds"),
        ({"share_step": 0.0}, "share_step"),
        ({"controls": ["sometimes"]}, "controls"),
        ({"source": "rumour"}, "source"),
        ({"peak_end_h": 25.0}, "peak_end_h"),
    ],
)
def test_bad_arguments_are_named(case33, kwargs, text):
    kwargs.setdefault("source", "behaviour")
    with pytest.raises(ScenarioError, match=text):
        run_adoption_study(case33, _profiles(case33, steps=4), **kwargs)


def test_scenario_adoption_table_is_validated_and_round_trips():
    from cosim.scenario import AdoptionConfig, FleetConfig, validate_scenario
    from cosim.specs import from_params, to_params
    from vehicle_models.adoption import AdoptionSource

    data = {
        "simulation": {"duration_s": 3600, "step_s": 60},
        "feeder": {"name": "case33bw"},
        "fleet": {"adoption": {"share": 0.3, "seed": 1, "source": "behaviour"}},
    }
    scenario = validate_scenario(data)
    assert scenario.fleet.adoption == AdoptionConfig(0.3, 1, AdoptionSource.BEHAVIOUR, 0.0)
    assert from_params(FleetConfig, to_params(scenario.fleet)) == scenario.fleet


@pytest.mark.parametrize(
    ("adoption", "texts"),
    [
        (
            {"share": 1.5, "source": "rumour", "colour": "red"},
            ["fleet.adoption.share", "fleet.adoption.source", "fleet.adoption.colour"],
        ),
        ({"share": 0.3, "source": "simbench"}, ["fleet.adoption.source", "feeder.name"]),
        ("lots", ["fleet.adoption: expected a table"]),
    ],
)
def test_scenario_adoption_problems_are_listed(adoption, texts):
    from cosim.scenario import validate_scenario

    data = {
        "simulation": {"duration_s": 3600, "step_s": 60},
        "feeder": {"name": "case33bw"},
        "fleet": {"adoption": adoption},
    }
    with pytest.raises(ScenarioError) as info:
        validate_scenario(data)
    message = str(info.value)
    for text in texts:
        assert text in message
