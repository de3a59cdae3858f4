"""Three-phase power-flow benchmark: the project's engine against OpenDSS on the same files.

One run, per feeder (``ieee123`` and ``european_lv`` by default), one seeded year of 15-min
load shapes (35,040 steps; ``--quick``: 2,000), the same shapes in both tools:

* **batch** -- OpenDSS's own yearly quasi-static run (``set mode=yearly number=N
  stepsize=15m``, a ``LoadShape`` on every load, controls off so that both keep the file's
  regulator taps) against :meth:`grids.feeder3ph.ThreePhaseFeederModel.solve` with
  ``load_mult`` ``(N, n_load)``, in chunks of ``--chunk`` steps;
* **sequential volt-var** -- single-phase PV inverters (a ``PVSystem`` with a yearly
  irradiance shape) under the IEEE 1547-2018 Category B volt-var curve: OpenDSS with an
  ``InvControl`` ``mode=VOLTVAR`` (tight tolerances) against warm-started solves step by step
  with the same curve solved to its fixed point (``q = Q(|v|)`` to 1e-4 of the rating: a
  linear-model predictor of each step's voltages, then AC solves with Newton corrections from
  the linear model's ``d|v|/dq`` between the units); on the first
  ``--seq-steps`` steps for both tools (default 2,000, ``--quick`` 200: the engine's single
  solve costs ~12 ms, so a full year would take over half an hour per feeder).

Voltages: OpenDSS monitors on every load (and PV) record the voltage magnitudes of the first
``min(steps, 2000)`` steps of a separate yearly run (the timed batch run has no monitors; the
volt-var run is timed with its eight PV monitors recording, their reading excluded);
``max_dv_pu`` is the largest difference to the engine over those nodes and steps. The
engine forms every step's node voltage magnitudes and keeps those first steps and each
node's range over the year (not a year of every node: OpenDSS's timed run keeps nothing).
One-off costs (compiling the files, building the model, compiling the engine's kernels on a
model of its own) are excluded and printed apart; each load level's chord map is built inside
the timed run.
BLAS runs with one thread (``OPENBLAS_NUM_THREADS=1`` unless already set).

Usage: ``python benchmarks/powerflow3ph.py [--quick] [--json] [--feeders ieee123 ...]``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import numpy as np  # noqa: E402

STEPS_PER_YEAR = 35_040
QUICK_STEPS = 2_000
DV_STEPS = 2_000
SEQ_STEPS = 2_000
QUICK_SEQ_STEPS = 200
FEEDERS = ("ieee123", "european_lv")
#: IEEE 1547-2018 Category B volt-var default curve: (V [pu], Q [pu of the var rating]),
#: extended flat beyond V1 and V4 (as an OpenDSS XYCurve needs).
VV_V_PU = np.array([0.5, 0.92, 0.98, 1.02, 1.08, 1.5])
VV_Q_PU = np.array([1.0, 1.0, 0.0, 0.0, -1.0, -1.0])
Q_MAX_FRAC = 0.44  # var rating / kVA (Category B)
#: Convergence of the volt-var loop [pu of the var rating]: the InvControl's
#: VarChangeTolerance below, the same on both sides.
VV_TOLERANCE = 1e-4


def year_shapes(n_steps: int, n_shapes: int, *, seed: int = 0) -> np.ndarray:
    """Seeded 15-min load multipliers ``(n_steps, n_shapes)`` in about 0.2..1.0.

    Morning and evening peaks, a winter-high seasonal swing, each shape its own shift and a
    little noise.
    """
    rng = np.random.default_rng(seed)
    t_h = np.arange(n_steps)[:, None] * 0.25
    h = (t_h - rng.uniform(-1.0, 1.0, n_shapes)[None, :]) % 24.0
    day = 0.35 + 0.3 * np.exp(-(((h - 8.0) / 2.0) ** 2)) + 0.55 * np.exp(-(((h - 19.0) / 2.5) ** 2))
    season = 1.0 + 0.15 * np.cos(2 * np.pi * t_h / (24.0 * 365.0))
    noise = rng.normal(0.0, 0.03, (n_steps, n_shapes))
    return np.clip(day * season / 1.2 + noise, 0.15, 1.1)


def pv_shape(n_steps: int) -> np.ndarray:
    """Clear-sky-like irradiance multiplier ``(n_steps,)``: a half sine from 6 h to 18 h."""
    h = (np.arange(n_steps) * 0.25) % 24.0
    return np.clip(np.sin(np.pi * (h - 6.0) / 12.0), 0.0, None)


def _write_shape(folder: Path, name: str, values: np.ndarray) -> str:
    path = folder / f"{name}.csv"
    np.savetxt(path, values, fmt="%.6f")
    return f"New LoadShape.{name} npts={values.size} interval=0.25 mult=(file={path.as_posix()})"


def _compile(dss, master: Path) -> None:
    dss.Text.Command("clear")
    dss.Text.Command(f'compile "{master}"')
    # both tools keep the taps and capacitor states of the file's own solve
    dss.Text.Command("batchedit regcontrol..* enabled=no")
    dss.Text.Command("batchedit capcontrol..* enabled=no")


def _pv_sites(model, n_sites: int) -> list[tuple[str, int]]:
    """Every k-th single-phase (bus, phase) of the loads, spread along the load list."""
    sites = []
    for bus, nodes in zip(model.load_bus, model.load_nodes, strict=True):
        node = int(nodes[0])
        if node >= 0 and 1 <= int(model.node_phase[node]) <= 3:
            sites.append((str(bus), int(model.node_phase[node])))
    step = max(1, len(sites) // n_sites)
    return sites[::step][:n_sites]


def _setup_opendss(dss, model, master, shapes, folder, *, pv=None):
    """Compile, give every load a yearly shape (and add the PV with its InvControl)."""
    _compile(dss, master)
    for k in range(shapes.shape[1]):
        dss.Text.Command(_write_shape(folder, f"bench{k}", shapes[:, k]))
    names = list(model.load_names)
    for i, name in enumerate(names):
        dss.Text.Command(f"edit load.{name} yearly=bench{i % shapes.shape[1]}")
    if pv is not None:
        sites, kva, shape = pv
        dss.Text.Command(_write_shape(folder, "benchpv", shape))
        xs = " ".join(f"{x:g}" for x in VV_V_PU)
        ys = " ".join(f"{y:g}" for y in VV_Q_PU)
        dss.Text.Command(f"New XYcurve.benchvv npts={VV_V_PU.size} Xarray=[{xs}] Yarray=[{ys}]")
        pv_names = []
        for j, (bus, phase) in enumerate(sites):
            kv = model.kv_base_ln[model.node_index(bus, phase)]
            name = f"benchpv{j}"
            dss.Text.Command(
                f"New PVSystem.{name} phases=1 bus1={bus}.{phase} kV={kv:.6g} kVA={kva:.6g} "
                f"Pmpp={kva / 1.2:.6g} irradiance=1 yearly=benchpv %cutin=0 %cutout=0 "
                f"kvarMax={Q_MAX_FRAC * kva:.6g} kvarMaxAbs={Q_MAX_FRAC * kva:.6g} "
                "wattpriority=no"
            )
            pv_names.append(f"PVSystem.{name}")
        dss.Text.Command(
            f"New InvControl.benchic DERList=[{' '.join(pv_names)}] mode=VOLTVAR "
            "vvc_curve1=benchvv RefReactivePower=VARMAX voltage_curvex_ref=rated "
            "VarChangeTolerance=0.0001 VoltageChangeTolerance=0.00001"
        )
        dss.Text.Command("set maxcontroliter=1000")
    dss.Solution.Convergence(1e-10)
    dss.Solution.MaxIterations(500)


def _yearly(dss, n_steps: int, *, control: str) -> float:
    dss.Text.Command(f"set controlmode={control}")
    dss.Text.Command(f"set mode=yearly number={n_steps} stepsize=15m")
    dss.Text.Command("set hour=0 sec=0")
    t0 = time.perf_counter()
    dss.Solution.Solve()
    return time.perf_counter() - t0


def _monitored_vm(dss, model, elements, n_steps, *, control: str):
    """|V| [pu] at the first terminal of the elements, all steps of a yearly run.

    Returns the voltages ``(n_steps, n_nodes)``, their model nodes and the time of the
    yearly solve alone [s] (monitors recording, not read).
    """
    for j, element in enumerate(elements):
        dss.Text.Command(f"New Monitor.benchm{j} element={element} terminal=1 mode=0")
    solve_s = _yearly(dss, n_steps, control=control)
    columns, nodes = [], []
    for j, element in enumerate(elements):
        dss.Monitors.Name(f"benchm{j}")
        dss.Circuit.SetActiveElement(element)
        node_names = dss.CktElement.NodeOrder()
        bus = dss.CktElement.BusNames()[0].split(".")[0].lower()
        for c, phase in enumerate(node_names[: dss.CktElement.NumPhases()]):
            if phase == 0:
                continue
            node = model.node_index(bus, int(phase))
            columns.append(
                np.asarray(dss.Monitors.Channel(2 * c + 1)) / (model.kv_base_ln[node] * 1000.0)
            )
            nodes.append(node)
    return np.stack(columns, axis=1), nodes, solve_s


def _engine_batch(
    model, mult: np.ndarray, chunk: int, *, keep: int
) -> tuple[float, np.ndarray, np.ndarray]:
    """Batched solves of every step; each step's node voltage magnitudes are formed.

    Kept: the first ``keep`` steps (for the comparison with OpenDSS's monitors) and each
    node's lowest and highest magnitude over all steps (what a yearly study reads), not a
    year of every node (European LV: 760 MB), as OpenDSS's timed run keeps nothing either.
    """
    t0 = time.perf_counter()
    vm = np.empty((min(keep, mult.shape[0]), model.n_node))
    vm_range = np.array([np.full(model.n_node, np.inf), np.full(model.n_node, -np.inf)])
    for start in range(0, mult.shape[0], chunk):
        res = model.solve(load_mult=mult[start : start + chunk])
        if not res.converged.all():
            raise SystemExit(f"{model.name}: batch solve did not converge at some step")
        part = res.vm_pu
        np.minimum(vm_range[0], part.min(axis=0), out=vm_range[0])
        np.maximum(vm_range[1], part.max(axis=0), out=vm_range[1])
        if start < vm.shape[0]:
            vm[start : start + chunk] = part[: vm.shape[0] - start]
    return time.perf_counter() - t0, vm, vm_range


def _curve_slope(vm_pu: np.ndarray) -> np.ndarray:
    """dQ/dV of the piecewise-linear volt-var curve [pu/pu] at ``vm_pu``."""
    dv = 1e-6
    return (np.interp(vm_pu + dv, VV_V_PU, VV_Q_PU) - np.interp(vm_pu - dv, VV_V_PU, VV_Q_PU)) / (
        2 * dv
    )


def _magnitude_rows(linear, rows: np.ndarray, cols_dv: np.ndarray) -> np.ndarray:
    """d|v|/dx at the ``rows`` nodes from complex sensitivity columns dv/dx."""
    v_hat = linear.v_point_pu[rows]
    return np.real((np.conj(v_hat) / np.abs(v_hat))[:, None] * cols_dv[rows])


def _engine_volt_var(model, mult, pv_nodes, p_pv_mw, q_max_mvar):
    """Warm-started sequential solve with the volt-var curve solved to its fixed point.

    The linear model (:func:`grids.linear3ph.linearise_feeder`, built once at the first
    step) gives ``d|v|/dq`` and ``d|v|/dp`` between the units and ``d|v|/d(load
    multiplier)`` of every load at the units. Each step first predicts the units' voltages
    from the previous step's solution and the change of loads and PV output, and solves the
    curve on that prediction (a small Newton iteration, no power flow); then AC solves verify
    and correct by Newton steps ``q -= (1 - q_max Q'(|v|) d|v|/dq)^-1 g`` until
    ``g(q) = q - q_max Q(|v(q)|)`` is below 1e-4 of the var rating.
    """
    from grids.linear3ph import linearise_feeder

    n_steps = mult.shape[0]
    n_units = len(pv_nodes)
    vm = np.empty((n_steps, model.n_node))
    p = np.zeros(model.n_node)
    q = np.zeros(model.n_node)
    q_units = np.zeros(n_units)
    iterations = 0
    t0 = time.perf_counter()
    first = model.solve(load_mult=mult[:1])
    linear = linearise_feeder(model, first)
    dvm_dq = _magnitude_rows(
        linear, pv_nodes, linear.wye_sensitivity_pu_per_mw(pv_nodes, reactive=True)
    )
    dvm_dp = _magnitude_rows(linear, pv_nodes, linear.wye_sensitivity_pu_per_mw(pv_nodes))
    # each load as wye injections of its kW/kvar split over its phase nodes
    dvm_dmult = np.zeros((n_units, model.n_load))
    for j, nodes in enumerate(model.load_nodes):
        nodes = np.asarray([n for n in nodes if n >= 0 and 1 <= model.node_phase[n] <= 3])
        if nodes.size == 0:
            continue
        share_p = -model.load_p_kw[j] / 1000.0 / nodes.size
        share_q = -model.load_q_kvar[j] / 1000.0 / nodes.size
        cols = linear.wye_sensitivity_pu_per_mw(nodes) * share_p + (
            linear.wye_sensitivity_pu_per_mw(nodes, reactive=True) * share_q
        )
        dvm_dmult[:, j] = _magnitude_rows(linear, pv_nodes, cols).sum(axis=1)
    eye = np.eye(n_units)
    v_prev = first.vm_pu[0, pv_nodes]
    mult_prev, p_prev = mult[0], np.zeros(n_units)
    for k in range(n_steps):
        p[pv_nodes] = p_pv_mw[k]
        # predictor on the linear model: voltages after the load / PV change, curve solved
        v_fixed = v_prev + dvm_dmult @ (mult[k] - mult_prev) + dvm_dp @ (p_pv_mw[k] - p_prev)
        q_pred = q_units.copy()
        for _ in range(20):
            v_pred = v_fixed + dvm_dq @ (q_pred - q_units)
            g = q_pred - q_max_mvar * np.interp(v_pred, VV_V_PU, VV_Q_PU)
            if np.max(np.abs(g)) < 0.1 * VV_TOLERANCE * q_max_mvar:
                break
            jac = eye - (q_max_mvar * _curve_slope(v_pred))[:, None] * dvm_dq
            q_pred = q_pred - np.linalg.solve(jac, g)
        q_units = q_pred
        for _ in range(50):
            q[pv_nodes] = q_units
            res = model.solve(load_mult=mult[k : k + 1], p_wye_mw=p, q_wye_mvar=q)
            iterations += 1
            v_units = res.vm_pu[0, pv_nodes]
            g = q_units - q_max_mvar * np.interp(v_units, VV_V_PU, VV_Q_PU)
            if np.max(np.abs(g)) < VV_TOLERANCE * q_max_mvar:
                break
            jac = eye - (q_max_mvar * _curve_slope(v_units))[:, None] * dvm_dq
            q_units = q_units - np.linalg.solve(jac, g)
        vm[k] = res.vm_pu[0]
        v_prev, mult_prev, p_prev = v_units, mult[k], p_pv_mw[k]
    return time.perf_counter() - t0, vm, iterations


def bench_feeder(name: str, n_steps: int, *, seq_steps: int, chunk: int, seed: int) -> dict:
    """Both comparisons on one feeder; a dict of times, ratios and voltage differences."""
    import opendssdirect as dss

    from grids.feeder3ph import ThreePhaseFeederModel
    from grids.voltages3ph import SMALL_BATCH

    t0 = time.perf_counter()
    model = ThreePhaseFeederModel.from_name(name)
    master = Path(model.circuit.path)
    shapes = year_shapes(n_steps, 4, seed=seed)
    mult = shapes[:, np.arange(model.n_load) % shapes.shape[1]]
    # one-off: compile the engine's kernels (batched and single-scenario paths, the
    # magnitudes of every node) on a model of its own, so that the timed run still builds
    # its own chord maps; then this model's impedance columns (one-off per feeder)
    spare = ThreePhaseFeederModel.from_name(name)
    _ = spare.solve(load_mult=mult[: SMALL_BATCH + 1], warm_start=False).vm_pu
    _ = spare.solve(load_mult=mult[:1], warm_start=False).vm_pu
    model.solve(load_mult=mult[:2], warm_start=False)
    model.solve(load_mult=mult[:1], warm_start=False)
    setup_s = time.perf_counter() - t0
    out: dict = {"n_steps": n_steps, "n_node": model.n_node, "n_load": model.n_load}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        # --- batch: OpenDSS yearly (timed without monitors) vs the batched engine
        _setup_opendss(dss, model, master, shapes, folder)
        opendss_s = _yearly(dss, n_steps, control="off")
        n_dv = min(n_steps, DV_STEPS)
        engine_s, vm, _ = _engine_batch(model, mult, chunk, keep=n_dv)
        _setup_opendss(dss, model, master, shapes[:n_dv], folder)
        ref, nodes, _ = _monitored_vm(
            dss, model, [f"Load.{n}" for n in model.load_names], n_dv, control="off"
        )
        out.update(
            opendss_yearly_s=opendss_s,
            engine_batch_s=engine_s,
            ratio_batch_vs_opendss=opendss_s / engine_s,
            max_dv_pu=float(np.max(np.abs(vm[:n_dv, nodes] - ref))),
            dv_steps=n_dv,
            dv_nodes=len(nodes),
        )
        # --- sequential with volt-var: OpenDSS InvControl vs warm-started engine loop
        sites = _pv_sites(model, 8)
        # PV of about 30 % of the total load in all, at least 4 kVA a unit (a house roof)
        kva = max(4.0, 1.2 * 0.3 * float(np.sum(model.load_p_kw)) / max(len(sites), 1))
        irradiance = pv_shape(seq_steps)
        _setup_opendss(dss, model, master, shapes[:seq_steps], folder, pv=(sites, kva, irradiance))
        pv_elements = [f"PVSystem.benchpv{j}" for j in range(len(sites))]
        ref_vv, vv_nodes, opendss_vv_s = _monitored_vm(
            dss, model, pv_elements, seq_steps, control="static"
        )
        pv_nodes = np.array([model.node_index(b, ph) for b, ph in sites])
        p_pv = (kva / 1.2 / 1000.0) * irradiance[:, None] * np.ones(len(sites))[None, :]
        engine_vv_s, vm_vv, iterations = _engine_volt_var(
            model, mult[:seq_steps], pv_nodes, p_pv, Q_MAX_FRAC * kva / 1000.0
        )
        out.update(
            seq_steps=seq_steps,
            pv_units=len(sites),
            pv_kva=kva,
            opendss_invcontrol_s=opendss_vv_s,
            engine_sequential_volt_var_s=engine_vv_s,
            engine_volt_var_solves=iterations,
            ratio_sequential_volt_var_vs_opendss=opendss_vv_s / engine_vv_s,
            max_dv_volt_var_pu=float(np.max(np.abs(vm_vv[:, vv_nodes] - ref_vv))),
            max_vm_volt_var_pu=float(vm_vv[:, vv_nodes].max()),
            setup_s=setup_s,
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_STEPS} steps")
    parser.add_argument("--json", action="store_true", help="print JSON on stdout")
    parser.add_argument("--feeders", nargs="+", default=list(FEEDERS))
    parser.add_argument("--steps", type=int, default=None, help="steps of the batch part")
    parser.add_argument(
        "--seq-steps", type=int, default=None, help="steps of the sequential volt-var part"
    )
    parser.add_argument("--chunk", type=int, default=2_000, help="steps per batched solve")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    n_steps = args.steps or (QUICK_STEPS if args.quick else STEPS_PER_YEAR)
    seq_steps = min(args.seq_steps or (QUICK_SEQ_STEPS if args.quick else SEQ_STEPS), n_steps)
    results = {
        name: bench_feeder(name, n_steps, seq_steps=seq_steps, chunk=args.chunk, seed=args.seed)
        for name in args.feeders
    }
    if args.json:
        json.dump({"feeders": results}, sys.stdout, indent=2)
        print()
        return 0
    for name, r in results.items():
        print(f"{name}: {r['n_node']} nodes, {r['n_load']} loads")
        print(
            f"  batch, {r['n_steps']} steps: OpenDSS yearly {r['opendss_yearly_s']:.2f} s, "
            f"engine {r['engine_batch_s']:.2f} s -> ratio {r['ratio_batch_vs_opendss']:.2f}x; "
            f"max |dV| {r['max_dv_pu']:.2e} pu ({r['dv_steps']} steps, {r['dv_nodes']} nodes)"
        )
        print(
            f"  sequential volt-var, {r['seq_steps']} steps, {r['pv_units']} PV: OpenDSS "
            f"InvControl {r['opendss_invcontrol_s']:.2f} s, engine "
            f"{r['engine_sequential_volt_var_s']:.2f} s ({r['engine_volt_var_solves']} solves) "
            f"-> ratio {r['ratio_sequential_volt_var_vs_opendss']:.2f}x; max |dV| "
            f"{r['max_dv_volt_var_pu']:.2e} pu"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
