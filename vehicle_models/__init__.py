"""V2G fleet physics: batteries, chargers, fleets and IEEE 1547 / grid-forming inverter controls.

Pure, vectorized numpy code (one array element per vehicle). Never imports mosaik,
:mod:`cosim` or :mod:`studies`.
"""
