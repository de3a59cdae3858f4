"""Resilience metrics refuse implausible curves instead of returning all-zero metrics
(issue 12 §3): the bounds are MAX_ABS_PERFORMANCE (1e12) and MAX_ABS_TIME_H (1e7 h)."""

from __future__ import annotations

import numpy as np
import pytest

from grids.errors import InputDataError
from studies.resilience import MAX_ABS_PERFORMANCE, read_curve, resilience_metrics


@pytest.mark.parametrize(
    "perf",
    [
        [1e308, -1e308, 1e308],
        [-1e308, 1e308, -1e308],
        [100.0, 2 * MAX_ABS_PERFORMANCE, 100.0],
        [1.0, np.inf, 1.0],
    ],
)
def test_implausible_performance_is_an_input_error(perf):
    with pytest.raises(InputDataError, match="row 2"):
        resilience_metrics([0.0, 1.0, 2.0], perf)


def test_implausible_time_and_overflowing_slopes_are_refused():
    with pytest.raises(InputDataError, match=r"t_h = 1e\+20 is implausible"):
        resilience_metrics([0.0, 1.0, 1e20], [1.0, 0.5, 1.0])
    with pytest.raises(InputDataError, match="overflow"):
        resilience_metrics([0.0, 1e-300, 2e-300, 1.0], [1e12, 1e12, -1e12, 1e12])
    with pytest.raises(InputDataError, match="acceptable level"):
        resilience_metrics([0.0, 1.0, 2.0], [1.0, 0.5, 1.0], acceptable=1e300)


def test_a_csv_of_huge_values_is_refused_with_its_row(tmp_path):
    path = tmp_path / "curve.csv"
    path.write_text("t_h,performance\n0,1e308\n1,-1e308\n2,1e308\n")
    with pytest.raises(InputDataError, match=r"curve\.csv: row 1: performance = 1e\+308"):
        read_curve(path)


def test_the_bound_leaves_large_real_curves_alone():
    """A 1 TW-scale curve in W (1e12 is the limit itself) still gives exact trapezoid metrics:
    drop of 4e11 over 1 h, flat 2 h, recovery over 1 h."""
    m = resilience_metrics([0.0, 1.0, 2.0, 4.0, 5.0], [1e12, 1e12, 6e11, 6e11, 1e12])
    assert m.lambda_ == 4e11 and m.phi_per_h == -4e11 and m.e_h == 2.0
    assert m.pi_per_h == 4e11 and m.area == pytest.approx(4e11 * (0.5 + 2.0 + 0.5))
