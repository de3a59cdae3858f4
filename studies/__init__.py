"""Study drivers (hosting capacity, contingencies, black start, resilience, sweeps) and reports."""
