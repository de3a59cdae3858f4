"""The demo scenario (shortened) and its report: every figure and the key-number table."""

from __future__ import annotations

from cosim.commands.demo import demo_scenario_path
from cosim.scenario import load_scenario
from cosim.world import run_scenario
from studies.demo_report import demo_report


def test_shortened_demo_writes_the_report_with_every_figure(tmp_path):
    scenario = load_scenario(
        demo_scenario_path(),
        overrides={
            "simulation.duration_s": 7200.0,
            "simulation.window_s": [1.0, 4.0],
            "fleet.n_vehicles": 30,
            "events.0.t_s": 3600.0,
        },
    )
    result = run_scenario(scenario, tmp_path, progress=False)
    path = demo_report(result.results_path, tmp_path, metrics=result.metrics, wall_time_s=1.0)
    html = path.read_text()
    for name in ("demo_voltage_envelope", "demo_transformer", "demo_fleet", "demo_frequency"):
        assert (tmp_path / f"{name}.png").stat().st_size > 1000
        assert f"{name}.png" in html
    assert "frequency nadir [Hz]" in html and "peak hot-spot temperature" in html
    assert "case33bw has no transformer" in html
    # 500 MW lost on 10 GW at 60 Hz with H = 5 s: nadir about 59.815 Hz
    assert 59.80 < result.metrics["f_nadir_hz"] < 59.83
    assert result.metrics["min_vm_pu"] < 0.97
