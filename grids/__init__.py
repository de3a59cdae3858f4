"""Grid physics: feeders, AC power flow, LinDistFlow, transformer thermal model, frequency.

Pure numpy/scipy/pandapower code. Never imports :mod:`cosim` or :mod:`studies` and never
imports mosaik (enforced by import-linter contracts in ``pyproject.toml``).
"""
