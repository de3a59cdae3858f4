"""EV placement at customers and the charging of unmanaged, managed and V2G chargers.

References: closed-form counts (``round(share n)``), binomial tolerances on the drawn shares,
and energy balances (what the managed charger draws plus what it still owes equals the
unmanaged demand) that hold exactly.
"""

from __future__ import annotations

import numpy as np
import pytest

from grids.errors import ScenarioError
from vehicle_models.adoption import (
    CHARGER_RATINGS_KW,
    managed_charging_kw,
    peak_window_mask,
    place_evs,
    session_demand_kw,
    shape_demand_kw,
)

BUSES = np.repeat(np.arange(40), 50)  # 2000 customers on 40 buses


def test_count_and_nesting_over_shares():
    small = place_evs(BUSES, share=0.2, seed=7)
    large = place_evs(BUSES, share=0.6, seed=7, v2g_share=0.0)
    assert small.n_ev == round(0.2 * len(BUSES)) and large.n_ev == round(0.6 * len(BUSES))
    assert set(small.customer) <= set(large.customer)
    # a customer's charger does not depend on the share
    where = {c: k for k, c in enumerate(large.customer)}
    k = [where[c] for c in small.customer]
    np.testing.assert_array_equal(small.charger_kw, large.charger_kw[k])
    np.testing.assert_array_equal(small.bus, BUSES[small.customer])
    taken = large.take(0.2)
    np.testing.assert_array_equal(taken.customer, small.customer)
    np.testing.assert_array_equal(taken.release_delay_h, small.release_delay_h)


def test_seeds_reproduce_and_differ():
    a = place_evs(BUSES, share=0.3, seed=1)
    b = place_evs(BUSES, share=0.3, seed=1)
    c = place_evs(BUSES, share=0.3, seed=2)
    np.testing.assert_array_equal(a.customer, b.customer)
    assert not np.array_equal(a.customer, c.customer)


def test_charger_and_v2g_shares_follow_the_weights():
    p = place_evs(BUSES, share=1.0, seed=3, v2g_share=0.25, charger_shares=(0.2, 0.5, 0.3))
    n = p.n_ev
    assert set(np.unique(p.charger_kw)) <= set(CHARGER_RATINGS_KW)
    for rating, w in zip(CHARGER_RATINGS_KW, (0.2, 0.5, 0.3), strict=True):
        share = np.mean(p.charger_kw == rating)
        assert abs(share - w) < 4 * np.sqrt(w * (1 - w) / n)  # 4 sigma binomial
    assert abs(p.v2g.mean() - 0.25) < 4 * np.sqrt(0.25 * 0.75 / n)


@pytest.mark.parametrize(
    ("kwargs", "text"),
    [
        ({"share": 1.5}, "share"),
        ({"share": 0.5, "seed": -1}, "seed"),
        ({"share": 0.5, "v2g_share": 2.0}, "v2g_share"),
        ({"share": 0.5, "charger_shares": (1.0, 1.0)}, "charger_shares"),
        ({"share": 0.5, "charger_shares": (0.0, 0.0, 0.0)}, "charger_shares"),
    ],
)
def test_bad_arguments_are_named(kwargs, text):
    with pytest.raises(ScenarioError, match=text):
        place_evs(BUSES, **kwargs)


def _day(step_s: float, days: int = 1) -> np.ndarray:
    return np.arange(0.0, days * 86400.0, step_s)


def test_session_demand_energy_is_exact_for_any_step():
    p = place_evs(BUSES[:400], share=0.5, seed=5)
    kwargs = {"charger_kw": p.charger_kw, "seed": 5, "n_customer": 400, "customer": p.customer}
    coarse, plugged = session_demand_kw(_day(900.0), 900.0, **kwargs)
    fine, _ = session_demand_kw(_day(60.0), 60.0, **kwargs)
    e_coarse = coarse.sum(axis=0) * 900.0 / 3600.0
    e_fine = fine.sum(axis=0) * 60.0 / 3600.0
    np.testing.assert_allclose(e_coarse, e_fine, rtol=1e-12, atol=1e-9)
    assert (coarse <= p.charger_kw[None, :] + 1e-9).all() and (coarse >= 0).all()
    assert e_coarse.max() > 0
    # a full step of charging is only possible while plugged in at its start
    full = coarse >= p.charger_kw[None, :] - 1e-9
    assert plugged[full].all()


def test_peak_window_wraps_midnight():
    hour = np.array([21.0, 22.0, 23.5, 0.5, 1.99, 2.0, 12.0])
    mask = peak_window_mask(hour, start_h=22.0, end_h=2.0)[:, 0]
    np.testing.assert_array_equal(mask, [False, True, True, True, True, False, False])
    delayed = peak_window_mask(hour, start_h=22.0, end_h=2.0, delay_h=np.array([0.0, 1.0]))
    assert delayed[5, 1] and not delayed[5, 0]


def test_managed_charging_conserves_energy_and_respects_the_block():
    p = place_evs(BUSES[:300], share=1.0, seed=2, v2g_share=0.5)
    step_s = 900.0
    t = _day(step_s, days=3)
    hour = t / 3600.0 % 24.0
    demand, plugged = session_demand_kw(
        t % 86400.0, step_s, charger_kw=p.charger_kw, seed=2, n_customer=300, customer=p.customer
    )
    blocked = peak_window_mask(hour, start_h=17, end_h=21, delay_h=p.release_delay_h)
    window = peak_window_mask(hour, start_h=17, end_h=21)[:, 0]
    for export in (None, p.v2g):
        out, backlog = managed_charging_kw(
            demand, plugged, step_s=step_s, blocked=blocked, charger_kw=p.charger_kw,
            export=export, export_energy_kwh=8.0, export_window=window,
        )  # fmt: skip
        dt_h = step_s / 3600.0
        np.testing.assert_allclose(
            out.sum(axis=0) * dt_h + backlog, demand.sum(axis=0) * dt_h, rtol=1e-12, atol=1e-9
        )
        assert (np.abs(out) <= p.charger_kw[None, :] + 1e-9).all()
        assert (out[blocked] <= 1e-12).all()  # nothing drawn while blocked
        exported = -np.minimum(out, 0.0)
        if export is None:
            assert exported.max() == 0.0
        else:
            assert exported[:, ~p.v2g].max() == 0.0 and exported[~window].max() == 0.0
            per_day = exported.reshape(3, -1, p.n_ev).sum(axis=1) * dt_h
            assert per_day.max() <= 8.0 + 1e-9 and per_day.max() > 0


def test_shape_demand_scales_each_profile_to_its_charger():
    shapes = np.array([[0.0, 1.0, 0.0], [2.0, 3.0, 0.0], [4.0, 0.0, 0.0]])
    out = shape_demand_kw(shapes, shape_u=np.array([0.1, 0.9]), charger_kw=np.array([11.0, 3.7]))
    np.testing.assert_allclose(out[:, 0], [0.0, 5.5, 11.0])
    np.testing.assert_allclose(out[:, 1], [3.7 / 3, 3.7, 0.0])
    with pytest.raises(ScenarioError, match="no EV charging profile"):
        shape_demand_kw(np.zeros((3, 2)), shape_u=np.array([0.5]), charger_kw=np.array([11.0]))
