"""Co-simulation: thin mosaik simulators, scenario files, results collection and the CLI."""

__version__ = "0.1.0"
