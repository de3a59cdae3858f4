"""Sweep specification limits: axis generators and the run count are bounded up front, with
the bound in the message (issue 12 §2), and the generators' keys are read with grids.params."""

from __future__ import annotations

import pytest

from grids.errors import ScenarioError
from studies.sweep import load_sweep
from studies.sweep_spec import MAX_AXIS_VALUES, MAX_RUNS

BASE = """
[simulation]
duration_s = 2.0
step_s = 0.05

[frequency]
f0_hz = 60.0
s_base_mw = 10000.0

[[events]]
t_s = 0.5
kind = "generation_loss"
p_mw = 500.0
"""


def sweep(tmp_path, axes: str):
    (tmp_path / "base.toml").write_text(BASE)
    path = tmp_path / "s.toml"
    path.write_text('study = "contingency"\nbase = "base.toml"\nmetrics = ["f_nadir_hz"]\n' + axes)
    return path


def test_a_huge_axis_is_refused_with_the_limit(tmp_path):
    axis = '[[axis]]\nkey = "frequency.h_s"\n'
    path = sweep(tmp_path, axis + "linspace = { start = 1.0, stop = 9.0, num = 1000000000 }\n")
    with pytest.raises(ScenarioError) as info:
        load_sweep(path)
    expected = f"expected an integer in [1, {MAX_AXIS_VALUES}]"
    assert f"axis[0].linspace.num: 1000000000 is out of range: {expected}" in str(info.value)


def test_a_grid_with_too_many_runs_is_refused_before_expansion(tmp_path):
    axes = "".join(
        f'[[axis]]\nkey = "frequency.{k}"\nlinspace = {{ start = 1.0, stop = 2.0, num = 2000 }}\n'
        for k in ("h_s", "d_pu")
    )
    with pytest.raises(ScenarioError, match=f"more than the limit of {MAX_RUNS:,}"):
        load_sweep(sweep(tmp_path, axes))


def test_non_finite_generator_bounds_are_refused(tmp_path):
    path = sweep(
        tmp_path, '[[axis]]\nkey = "frequency.h_s"\nlhs = { low = 1.0, high = inf, count = 4 }\n'
    )
    with pytest.raises(ScenarioError, match=r"axis\[0\]\.lhs\.high: inf is not a finite number"):
        load_sweep(path)


def test_sweep_report_counts_the_runs_that_broke_each_limit(tmp_path):
    """A contingency sweep asking for ``violations``: the no-governor runs leave the
    frequency model's validity band (Δf_ss = −3 Hz at D = 1 on a 500 MW loss), the governed
    ones do not; the report says how many runs broke the limit, at the top."""
    from studies.sweep import run_sweep
    from studies.sweep_report import write_sweep_report

    (tmp_path / "base.toml").write_text(BASE.replace("duration_s = 2.0", "duration_s = 40.0"))
    path = tmp_path / "s.toml"
    path.write_text(
        'study = "contingency"\nbase = "base.toml"\n'
        'metrics = ["f_nadir_hz", "violations"]\n'
        '[[axis]]\nkey = "frequency.r_pu"\nvalues = [0.05, inf]\n'
    )
    out = tmp_path / "out"
    run_sweep(load_sweep(path), out, workers=1, progress=False)
    write_sweep_report(out, pareto=[], objective="f_nadir_hz:max")
    html = (out / "report.html").read_text()
    assert html.index("<h2>Limits</h2>") < html.index("Summary")
    assert "frequency model validity range: broken in 1 of 2 runs" in html
