"""Every parameter a study declares (grids.params) is documented in its guide, so the one
declaration and the docs cannot drift apart silently."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from studies.black_start import PICKUP_PARAMS, black_start_params
from studies.contingency_scenario import CONTINGENCY_PARAMS
from studies.hosting_capacity_engine import HC_CRITERIA_PARAMS
from studies.hosting_capacity_stochastic import STOCHASTIC_PARAMS
from studies.hosting_capacity_types import HC_SCENARIO_PARAMS
from studies.sweep_spec import LHS_PARAMS, RANGE_PARAMS

DOCS = Path(__file__).resolve().parents[2] / "docs"


@pytest.mark.parametrize(
    ("guide", "params"),
    [
        ("contingency.md", CONTINGENCY_PARAMS),
        ("black_start.md", (*black_start_params(), *PICKUP_PARAMS)),
        ("hosting_capacity.md", (*HC_CRITERIA_PARAMS, *HC_SCENARIO_PARAMS, *STOCHASTIC_PARAMS)),
        ("sweeps.md", (*RANGE_PARAMS, *LHS_PARAMS)),
    ],
)
def test_every_declared_parameter_is_in_its_guide(guide, params):
    text = (DOCS / guide).read_text(encoding="utf-8")
    words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", text))
    assert [p.name for p in params if p.name not in words] == []
