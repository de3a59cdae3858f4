"""Fast AC power flow against an independent solver: power-grid-model (Alliander/LF Energy).

power-grid-model has its own network model and Newton-Raphson implementation (C++); the
pandapower net ``case33bw`` is converted here by an explicit converter (nodes, lines,
constant-power loads, one source with a negligible internal impedance). Requirement: bus
voltages agree to 1e-4 pu (issue 3); we also check angles and losses.
"""

from __future__ import annotations

import numpy as np
import pytest
from power_grid_model import (
    CalculationMethod,
    ComponentType,
    DatasetType,
    LoadGenType,
    PowerGridModel,
    initialize_array,
)

from grids.powerflow import ACPowerFlow, prepare_net

VM_TOL_PU = 1e-4


def _to_power_grid_model(net):
    """Explicit converter for a pandapower net made of buses, lines, loads and one ext grid."""
    assert len(net.trafo) == 0 and len(net.sgen) == 0 and len(net.ext_grid) == 1
    nodes = initialize_array(DatasetType.input, ComponentType.node, len(net.bus))
    nodes["id"] = net.bus.index.to_numpy()
    nodes["u_rated"] = net.bus.vn_kv.to_numpy() * 1e3
    lines_df = net.line[net.line.in_service]
    lines = initialize_array(DatasetType.input, ComponentType.line, len(lines_df))
    first_line_id = int(nodes["id"].max()) + 1
    lines["id"] = first_line_id + np.arange(len(lines_df))
    lines["from_node"] = lines_df.from_bus.to_numpy()
    lines["to_node"] = lines_df.to_bus.to_numpy()
    lines["from_status"] = 1
    lines["to_status"] = 1
    length_km = lines_df.length_km.to_numpy()
    parallel = lines_df.parallel.to_numpy()
    lines["r1"] = lines_df.r_ohm_per_km.to_numpy() * length_km / parallel
    lines["x1"] = lines_df.x_ohm_per_km.to_numpy() * length_km / parallel
    lines["c1"] = lines_df.c_nf_per_km.to_numpy() * 1e-9 * length_km * parallel
    lines["tan1"] = 0.0
    lines["i_n"] = lines_df.max_i_ka.to_numpy() * 1e3
    loads = initialize_array(DatasetType.input, ComponentType.sym_load, len(net.load))
    first_load_id = first_line_id + len(lines_df)
    loads["id"] = first_load_id + np.arange(len(net.load))
    loads["node"] = net.load.bus.to_numpy()
    loads["status"] = net.load.in_service.to_numpy().astype(int)
    loads["type"] = LoadGenType.const_power
    loads["p_specified"] = net.load.p_mw.to_numpy() * net.load.scaling.to_numpy() * 1e6
    loads["q_specified"] = net.load.q_mvar.to_numpy() * net.load.scaling.to_numpy() * 1e6
    source = initialize_array(DatasetType.input, ComponentType.source, 1)
    source["id"] = first_load_id + len(net.load)
    source["node"] = int(net.ext_grid.bus.iloc[0])
    source["status"] = 1
    source["u_ref"] = float(net.ext_grid.vm_pu.iloc[0])
    source["u_ref_angle"] = np.radians(float(net.ext_grid.va_degree.iloc[0]))
    source["sk"] = 1e20  # an ideal slack, as pandapower's ext_grid in a power flow
    source["rx_ratio"] = 0.1
    data = {
        ComponentType.node: nodes,
        ComponentType.line: lines,
        ComponentType.sym_load: loads,
        ComponentType.source: source,
    }
    return data, loads["id"]


def test_case33bw_matches_power_grid_model_batch():
    net = prepare_net("case33bw")
    data, load_ids = _to_power_grid_model(net)
    model = PowerGridModel(data)

    rng = np.random.default_rng(33)
    n_load = len(net.load)
    factors = np.vstack(
        [np.full(n_load, 0.5), np.full(n_load, 1.0), np.full(n_load, 1.6)]
        + [rng.uniform(0.2, 1.8, n_load) for _ in range(3)]
    )
    update = initialize_array(DatasetType.update, ComponentType.sym_load, factors.shape)
    update["id"] = load_ids
    update["status"] = 1
    update["p_specified"] = data[ComponentType.sym_load]["p_specified"] * factors
    update["q_specified"] = data[ComponentType.sym_load]["q_specified"] * factors
    output = model.calculate_power_flow(
        symmetric=True,
        error_tolerance=1e-12,
        max_iterations=50,
        calculation_method=CalculationMethod.newton_raphson,
        update_data={ComponentType.sym_load: update},
    )
    node_out = output[ComponentType.node]
    line_out = output[ComponentType.line]

    ac = ACPowerFlow(net)
    position = {int(b): k for k, b in enumerate(ac.bus)}
    cols = np.array([position[int(b)] for b in net.load.bus])
    p = np.zeros((len(factors), len(ac.bus)))
    q = np.zeros_like(p)
    np.add.at(p.T, cols, -(update["p_specified"] / 1e6).T)
    np.add.at(q.T, cols, -(update["q_specified"] / 1e6).T)
    result = ac.solve(p, q, warm_start=False)
    assert result.converged.all()

    node_cols = np.array([position[int(b)] for b in data[ComponentType.node]["id"]])
    max_dv = np.max(np.abs(result.vm_pu[:, node_cols] - node_out["u_pu"]))
    max_da = np.max(np.abs(result.va_degree[:, node_cols] - np.degrees(node_out["u_angle"])))
    assert max_dv < VM_TOL_PU
    assert max_da < 1e-3
    pgm_loss_mw = (line_out["p_from"] + line_out["p_to"]).sum(axis=1) / 1e6
    np.testing.assert_allclose(result.p_loss_mw, pgm_loss_mw, rtol=1e-4)
    # the heaviest scenario really stresses the feeder (and the comparison)
    assert np.min(result.vm_pu[2]) < 0.88


def test_converter_reproduces_the_published_case33bw_base_case():
    """Baran & Wu (1989): 202.7 kW losses, minimum voltage 0.913 pu at bus 18 (index 17)."""
    net = prepare_net("case33bw")
    data, _ = _to_power_grid_model(net)
    output = PowerGridModel(data).calculate_power_flow(error_tolerance=1e-12)
    u_pu = output[ComponentType.node]["u_pu"]
    assert u_pu.min() == pytest.approx(0.9131, abs=5e-4)
    assert int(np.argmin(u_pu)) == 17
    line_out = output[ComponentType.line]
    assert (line_out["p_from"] + line_out["p_to"]).sum() / 1e3 == pytest.approx(202.7, abs=0.5)
