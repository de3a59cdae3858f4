"""Grid physics: the feeder model, AC power flow, LinDistFlow, transformer thermal, frequency.

Entry points: :class:`grids.feeder_model.FeederModel` (one feeder, one ``solve`` for AC and
LinDistFlow), :mod:`grids.frequency` (swing model), :mod:`grids.thermal` (IEC 60076-7),
:func:`grids.timeseries.read_time_series` (the one time-series reader), :mod:`grids.params`
(the validation kit), :mod:`grids.limits` (named limits and violations) and
:mod:`grids.fault` (balanced fault: retained voltages and IEC 60909 short-circuit currents).

Pure numpy/scipy/pandapower code. Never imports :mod:`cosim` or :mod:`studies` and never
imports mosaik (enforced by import-linter contracts in ``pyproject.toml``).
"""
