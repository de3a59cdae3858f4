"""Linear screen of the time-series hosting capacity: the largest added size per step and
direction from LinDistFlow sensitivities around the AC solution of every step.

For a step ``t`` with AC voltages ``v_t`` and loadings ``L_t``, and an added injection of size
``x`` [MW] along the direction ``d`` (MW per MW of size at each bus, reactive power ``q_per_p
|d|``), LinDistFlow is linear in the injection:

* voltages: ``v_t(x) = v_t + x s`` with ``s = V(d) - V(0)`` the LinDistFlow voltage change of
  the direction (path-sum matrices ``R``, ``X``); the size that first reaches ``v_max`` (where
  ``s > 0``) or ``v_min`` (where ``s < 0``) is ``(v_max - v_t) / s`` or ``(v_t - v_min) / -s``;
* line and transformer loadings: the lossless branch flows are ``P_t + x a``, ``Q_t + x c``
  (``a``, ``c`` the flow change of the direction); with the AC/LinDistFlow loading ratio of the
  step ``k_t`` (losses, voltage), ``L_t(x) = k_t |P_t + x a + j (Q_t + x c)| / S_rated``, and
  the size that reaches the limit is the larger root of the quadratic ``|...|^2 = M^2``.

A limit already violated at the step counts only where the injection makes it worse (as in
:func:`studies.hosting_capacity_engine.check`): its size is 0 then. The screen only chooses the
steps at which :mod:`studies.hosting_capacity_timeseries` runs the exact AC bisection; its
error never reaches the answer.

Reference: M. E. Baran and F. F. Wu, IEEE Trans. Power Delivery 4(2), 1989 (LinDistFlow).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from grids.feeder_model import FeederModel
from grids.lindistflow import LinDistFlow
from studies.hosting_capacity_engine import HostingCapacityCriteria

__all__ = ["LinearScreen", "ac_sensitivity_screen"]

#: steps screened per chunk (bounds the (steps, directions, buses) work arrays)
_CHUNK_ELEMENTS = 4_000_000


@dataclass(frozen=True)
class _Branches:
    """Rated branches of the screen: columns in the model's line / trafo order."""

    ldf_cols: np.ndarray  # column in LinDistFlow.branch_flows output
    model_cols: np.ndarray  # column in the model's line (or trafo) arrays
    rating_mva: np.ndarray


def _line_rating_mva(net, index: np.ndarray) -> np.ndarray:
    lines = net.line.loc[index]
    vn_kv = net.bus.vn_kv.loc[lines.from_bus].to_numpy(float)
    i_ka = (lines.max_i_ka * lines.df * lines.parallel).to_numpy(float)
    return math.sqrt(3.0) * vn_kv * i_ka


def _trafo_rating_mva(net, index: np.ndarray) -> np.ndarray:
    trafos = net.trafo.loc[index]
    return (trafos.sn_mva * trafos.df * trafos.parallel).to_numpy(float)


class LinearScreen:
    """LinDistFlow sensitivities of a radial feeder for the time-series screen.

    Parameters
    ----------
    model : FeederModel
        The feeder (radial; raises :class:`grids.errors.FeederError` otherwise).
    criteria : HostingCapacityCriteria
        Planner limits.
    """

    def __init__(self, model: FeederModel, criteria: HostingCapacityCriteria) -> None:
        self.model = model
        self.criteria = criteria
        self.ldf = LinDistFlow(model.net)
        net = model.net
        line_col = {int(i): k for k, i in enumerate(model.line)}
        trafo_col = {int(i): k for k, i in enumerate(model.trafo)}
        rated_line = {int(i) for i, ok in zip(model.line, model.line_rated, strict=True) if ok}
        keep = [k for k, i in enumerate(self.ldf.line) if int(i) in rated_line]
        idx = self.ldf.line[keep]
        self.lines = _Branches(
            np.array(keep, dtype=np.int64),
            np.array([line_col[int(i)] for i in idx], dtype=np.int64),
            _line_rating_mva(net, idx),
        )
        idx = self.ldf.trafo
        self.trafos = _Branches(
            len(self.ldf.line) + np.arange(len(idx), dtype=np.int64),
            np.array([trafo_col[int(i)] for i in idx], dtype=np.int64),
            _trafo_rating_mva(net, idx),
        )

    def screen(
        self,
        p_mw: np.ndarray,
        q_mvar: np.ndarray,
        vm_pu: np.ndarray,
        line_loading_percent: np.ndarray,
        trafo_loading_percent: np.ndarray,
        direction_mw: np.ndarray,
        *,
        q_per_p: float,
        dead_bus: np.ndarray,
    ) -> np.ndarray:
        """Screened size per step and direction.

        Parameters
        ----------
        p_mw, q_mvar : numpy.ndarray (n_steps, n_bus)
            Base injection of each step [MW, Mvar].
        vm_pu : numpy.ndarray (n_steps, n_bus)
            AC voltages of the base injection [pu].
        line_loading_percent, trafo_loading_percent : numpy.ndarray (n_steps, n_line/n_trafo)
            AC loadings of the base injection [%] (NaN: unrated).
        direction_mw : numpy.ndarray (n_dir, n_bus)
            Added active power per MW of size [MW/MW].
        q_per_p : float, keyword-only
            Reactive power of the added units per MW of active power [Mvar/MW].
        dead_bus : numpy.ndarray of bool (n_bus,), keyword-only
            Buses without voltage (not checked).

        Returns
        -------
        numpy.ndarray (n_steps, n_dir)
            Largest size [MW] the linear model allows (``inf``: no limit reached).
        """
        c = self.criteria
        ldf = self.ldf
        n_dir, n_bus = direction_mw.shape
        dq = q_per_p * np.abs(direction_mw)
        zero = np.zeros((1, n_bus))
        s_v = ldf.vm_pu(direction_mw, dq) - ldf.vm_pu(zero, zero)  # (n_dir, n_bus)
        s_v[:, dead_bus] = 0.0
        fp0, fq0 = ldf.branch_flows(zero, zero)
        fpd, fqd = ldf.branch_flows(direction_mw, dq)
        a_flow, c_flow = fpd - fp0, fqd - fq0  # (n_dir, n_branch)
        fp, fq = ldf.branch_flows(p_mw, q_mvar)  # (n_steps, n_branch)
        n_steps = p_mw.shape[0]
        out = np.full((n_steps, n_dir), np.inf)
        chunk = max(1, _CHUNK_ELEMENTS // max(1, n_dir * n_bus))
        for start in range(0, n_steps, chunk):
            rows = slice(start, min(n_steps, start + chunk))
            out[rows] = self._voltage_sizes(vm_pu[rows], s_v, dead_bus)
            for branches, loading, limit in (
                (self.lines, line_loading_percent, c.max_line_loading_percent),
                (self.trafos, trafo_loading_percent, c.max_trafo_loading_percent),
            ):
                if not len(branches.ldf_cols):
                    continue
                cols = branches.ldf_cols
                sizes = _loading_sizes(
                    fp[rows][:, cols],
                    fq[rows][:, cols],
                    loading[rows][:, branches.model_cols],
                    a_flow[:, cols],
                    c_flow[:, cols],
                    branches.rating_mva,
                    limit,
                )
                out[rows] = np.minimum(out[rows], sizes)
        if c.dv_max_pu is not None:
            with np.errstate(divide="ignore"):
                dv = np.min(c.dv_max_pu / np.abs(s_v), axis=1, initial=np.inf)
            out = np.minimum(out, dv[None, :])
        return out

    def _voltage_sizes(self, vm: np.ndarray, s_v: np.ndarray, dead_bus: np.ndarray) -> np.ndarray:
        c = self.criteria
        vm = np.where(dead_bus[None, :], 1.0, np.nan_to_num(vm, nan=1.0))[:, None, :]
        s = s_v[None, :, :]
        tiny = 1e-12
        with np.errstate(divide="ignore", invalid="ignore"):
            up = np.where(s > tiny, np.maximum(c.v_max_pu - vm, 0.0) / s, np.inf)
            down = np.where(s < -tiny, np.maximum(vm - c.v_min_pu, 0.0) / -s, np.inf)
        return np.minimum(up.min(axis=2), down.min(axis=2))


def _loading_sizes(fp, fq, loading_ac, a_flow, c_flow, rating_mva, limit_percent):
    """Size at which each branch reaches its limit, per (step, direction): min over branches.

    ``fp``, ``fq``, ``loading_ac``: (T, B); ``a_flow``, ``c_flow``: (D, B); returns (T, D).
    """
    s_ldf = np.hypot(fp, fq)
    loading_ldf = s_ldf / rating_mva * 100.0
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(
            (loading_ldf > 1e-3) & np.isfinite(loading_ac), loading_ac / loading_ldf, 1.0
        )
    m = limit_percent / 100.0 * rating_mva / ratio  # (T, B) flow magnitude at the limit
    P, Q = fp[:, None, :], fq[:, None, :]
    a, cq = a_flow[None, :, :], c_flow[None, :, :]
    qa = a * a + cq * cq
    qb = P * a + Q * cq  # half the linear coefficient
    qc = P * P + Q * Q - (m * m)[:, None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        disc = qb * qb - qa * qc
        root = (-qb + np.sqrt(np.maximum(disc, 0.0))) / qa
        # already above the limit: 0 if the injection makes it worse, else where the flow
        # magnitude comes back above the base one (the second crossing of the base magnitude)
        over = qc > 0
        back = np.where(qb < 0, -2.0 * qb / qa, 0.0)
        size = np.where(over, back, root)
        size = np.where(qa > 1e-18, np.maximum(size, 0.0), np.inf)
    return size.min(axis=2)


#: Cases per AC call of the sensitivity screen.
_AC_CHUNK_CASES = 8192


def ac_sensitivity_screen(
    solver,
    p_mw: np.ndarray,
    q_mvar: np.ndarray,
    base_flows,
    direction_mw: np.ndarray,
    criteria: HostingCapacityCriteria,
    *,
    q_per_p: float,
    delta_mw: float,
    dead_bus: np.ndarray,
) -> np.ndarray:
    """Screened size per step and direction from AC sensitivities (any feeder, meshed too).

    At every step ``t`` and direction ``d`` the AC power flow is solved once more with a small
    added size ``delta``: ``s = (v_t(delta) - v_t) / delta`` (the column of the AC Jacobian's
    inverse that the direction excites) and likewise for every loading. The size that reaches
    a limit is then extrapolated linearly, ``(v_max - v_t) / s``, ``(L_max - L_t) / (dL/dx)``;
    a limit already violated counts only where the addition makes it worse (size 0).

    Parameters
    ----------
    solver : AcSolver
        The batched AC solver (``solve(p, q) -> Flows``).
    p_mw, q_mvar : numpy.ndarray (n_steps, n_bus)
        Base injection of every step [MW, Mvar].
    base_flows : Flows
        AC flows of every step without the addition.
    direction_mw : numpy.ndarray (n_dir, n_bus)
        Added active power per MW of size.
    criteria : HostingCapacityCriteria
        Planner limits.
    q_per_p : float, keyword-only
        Reactive power per MW of the added units [Mvar/MW].
    delta_mw : float, keyword-only
        Size of the perturbation [MW].
    dead_bus : numpy.ndarray of bool, keyword-only
        Buses without voltage.

    Returns
    -------
    numpy.ndarray (n_steps, n_dir)
        Screened size [MW] (``inf``: no limit reached in the linear extrapolation).
    """
    c = criteria
    n_steps, n_dir = p_mw.shape[0], direction_mw.shape[0]
    step_of = np.repeat(np.arange(n_steps), n_dir)
    dir_of = np.tile(np.arange(n_dir), n_steps)
    out = np.full(n_steps * n_dir, np.inf)
    dp = direction_mw * delta_mw
    dq = q_per_p * np.abs(dp)
    for start in range(0, len(step_of), _AC_CHUNK_CASES):
        rows = slice(start, start + _AC_CHUNK_CASES)
        t, d = step_of[rows], dir_of[rows]
        flows = solver.solve(p_mw[t] + dp[d], q_mvar[t] + dq[d])
        ok = flows.converged
        vm0 = np.where(dead_bus[None, :], 1.0, np.nan_to_num(base_flows.vm_pu[t], nan=1.0))
        vm1 = np.where(dead_bus[None, :], 1.0, np.nan_to_num(flows.vm_pu, nan=1.0))
        s = (vm1 - vm0) / delta_mw
        # changes below the solver's resolution are noise, not sensitivities
        tiny_v, tiny_l = 1e-8 / delta_mw, 1e-6 / delta_mw
        with np.errstate(divide="ignore", invalid="ignore"):
            up = np.where(s > tiny_v, np.maximum(c.v_max_pu - vm0, 0.0) / s, np.inf)
            down = np.where(s < -tiny_v, np.maximum(vm0 - c.v_min_pu, 0.0) / -s, np.inf)
            size = np.minimum(up.min(axis=1), down.min(axis=1))
            for loading1, loading0, limit in (
                (flows.line_loading_percent, base_flows.line_loading_percent[t],
                 c.max_line_loading_percent),
                (flows.trafo_loading_percent, base_flows.trafo_loading_percent[t],
                 c.max_trafo_loading_percent),
            ):  # fmt: skip
                if not loading1.shape[1]:
                    continue
                l0 = np.nan_to_num(loading0, nan=0.0)
                slope = (np.nan_to_num(loading1, nan=0.0) - l0) / delta_mw
                reach = np.where(slope > tiny_l, np.maximum(limit - l0, 0.0) / slope, np.inf)
                size = np.minimum(size, reach.min(axis=1))
        out[rows] = np.where(ok, size, 0.0)  # a failed perturbation: bisect from 0
    return out.reshape(n_steps, n_dir)
