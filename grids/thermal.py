"""Transformer thermal model of IEC 60076-7:2018 (differential-equation method) and ageing.

State per transformer: top-oil temperature ``theta_o`` and the two hot-spot-to-top-oil terms
``delta_theta_h1``, ``delta_theta_h2`` (clause 8.2.2 of IEC 60076-7:2018 and its Annex with
the difference equations)::

    k11 tau_o  d theta_o/dt        = [(1 + R K^2) / (1 + R)]^x delta_theta_or - (theta_o - theta_a)
    k22 tau_w  d delta_theta_h1/dt = k21 H g_r K^y - delta_theta_h1
    (tau_o/k22) d delta_theta_h2/dt = (k21 - 1) H g_r K^y - delta_theta_h2
    theta_h = theta_o + delta_theta_h1 - delta_theta_h2

The right-hand sides are linear in the state; the non-linear exponents ``x`` and ``y`` act on
the load factor ``K`` only. With ``K`` and ``theta_a`` held constant over a step (the
co-simulation's zero-order hold), each equation therefore has the exact solution
``s(t + dt) = s_inf + (s(t) - s_inf) exp(-dt / tau)``, which this module uses: the update is
exact and unconditionally stable for any step (1 s ... hours), and stepping a piecewise-constant
profile with 1 s or 15 min steps gives the same temperatures at the common instants. (The
standard's own explicit difference equations need ``Dt`` well below the smallest time
constant; ``tests/grids/test_thermal.py`` shows they converge to this solution as ``Dt -> 0``.)

Relative ageing rate (IEC 60076-7:2018, 6.3, eqs. (2) and (3)), referred to 98 degC for
normal Kraft paper and 110 degC for thermally upgraded paper::

    V_normal   = 2 ** ((theta_h - 98) / 6)
    V_upgraded = exp(15000 / (110 + 273) - 15000 / (theta_h + 273))

The equivalent ageing ``L = integral V dt`` is integrated over each step along the exact
hot-spot trajectory (Gauss-Legendre, sub-intervals no longer than a quarter of the shortest
time constant), so it is step-size independent as well.

Why not the ``transformer-thermal-model`` package (Alliander, installed): it implements the
same equations (with the same exact exponential update) but runs a whole, known profile in one
call. It has no state object to advance step by step inside a co-simulation (its initial state
can only be a top-oil temperature or a load, not the two hot-spot terms, so a run cannot be
resumed exactly), it models one transformer per ``Model`` (no vectorization over ``n``
transformers), it only offers ONAN/ONAF power transformers and ONAN distribution transformers
and requires integer ``k21``/``k22`` (so the OF default ``k21 = 1.3`` cannot be expressed), and
it has no thermally upgraded paper in the stepping model. We therefore implement the equations
here and cross-check against the package on a one-day profile (``tests/grids/test_thermal.py``,
``docs/thermal.md``).

References
----------
.. [1] IEC 60076-7:2018, Power transformers - Part 7: Loading guide for mineral-oil-immersed
   power transformers. Clause 8.2.2 (differential equations), Annex with the difference
   equations and the worked example (ONAF, load steps), eqs. (2)-(3) for ageing.
.. [2] Alliander, transformer-thermal-model 0.6 (MPL-2.0),
   https://github.com/alliander-opensource/transformer-thermal-model
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from enum import Enum

import numpy as np
from numba import njit

from grids.errors import ScenarioError, SimulationError, check_problems
from grids.limits import (
    HOT_SPOT_CYCLIC_C,
    HOT_SPOT_EMERGENCY_C,
    Limit,
    Violation,
    upper_limit_violation,
)
from grids.params import Param, read_params, unknown_keys


class CoolingMode(Enum):
    """Cooling mode (IEC 60076-2 codes). ``ONAN`` etc. are medium/large power transformers;
    ``ONAN_DISTRIBUTION`` is the IEC row for (small) ONAN distribution transformers."""

    ONAN = "ONAN"
    ONAF = "ONAF"
    OF = "OF"
    OD = "OD"
    ONAN_DISTRIBUTION = "ONAN_distribution"


class Paper(Enum):
    """Winding insulation paper."""

    NORMAL = "normal"
    UPGRADED = "upgraded"


# Exponents, model constants and time constants: IEC 60076-7:2018 table of recommended
# thermal characteristics for the exponential/differential equations (Table 5 per our brief;
# Table 4 in the 2005 edition). Values: x, y, k11, k21, k22, tau_o [min], tau_w [min].
_IEC_CONSTANTS: dict[CoolingMode, tuple[float, ...]] = {
    CoolingMode.ONAN_DISTRIBUTION: (0.8, 1.6, 1.0, 1.0, 2.0, 180.0, 4.0),
    CoolingMode.ONAN: (0.8, 1.3, 0.5, 2.0, 2.0, 210.0, 10.0),
    CoolingMode.ONAF: (0.8, 1.3, 0.5, 2.0, 2.0, 150.0, 7.0),
    CoolingMode.OF: (1.0, 1.3, 1.0, 1.3, 1.0, 90.0, 7.0),
    CoolingMode.OD: (1.0, 2.0, 1.0, 1.0, 1.0, 90.0, 7.0),
}
# Typical rated values (replace with the transformer's heat-run data): R, delta_theta_or [K],
# H, g_r [K]. Distribution ONAN (R 5, 55 K, H g_r 23 K) and ONAF (R 6, 52 K, H g_r 26 K) as
# used with IEC 60076-7 by Daminov et al. (see docs/thermal.md); hot-spot factor H = 1.1 for
# distribution and 1.3 for medium/large power transformers (IEC 60076-7). OF/OD rises are the
# typical values of the IEC loading tables (IEC 60354 lineage) and are flagged as such.
_TYPICAL_RATED: dict[CoolingMode, tuple[float, float, float, float]] = {
    CoolingMode.ONAN_DISTRIBUTION: (5.0, 55.0, 1.1, 23.0 / 1.1),
    CoolingMode.ONAN: (6.0, 52.0, 1.3, 26.0 / 1.3),
    CoolingMode.ONAF: (6.0, 52.0, 1.3, 26.0 / 1.3),
    CoolingMode.OF: (6.0, 56.0, 1.3, 22.0 / 1.3),
    CoolingMode.OD: (6.0, 49.0, 1.3, 29.0 / 1.3),
}

#: The cooling mode used when none is given: ONAN, the usual cooling of a distribution
#: substation transformer (the scenario's ``[feeder.transformer]``, FeederSim, the
#: hosting-capacity hot-spot check and the thermal command share it).
DEFAULT_COOLING = CoolingMode.ONAN

#: The IEC 60076-7 parameters: unit, range and meaning, declared once. Numeric defaults
#: depend on the cooling mode (IEC table of thermal characteristics), hence ``None`` here.
THERMAL_PARAMS: tuple[Param, ...] = (
    Param("cooling", DEFAULT_COOLING, kind=CoolingMode, doc="cooling mode (IEC 60076-2 code)"),
    Param("r", None, lo=0.0, hi=1.0e6, doc="load losses at rated current / no-load losses"),
    Param(
        "delta_theta_or_k",
        None,
        unit="K",
        lo=0.0,
        hi=150.0,
        lo_open=True,
        doc="top-oil temperature rise at rated losses",
    ),
    Param("g_r_k", None, unit="K", lo=0.0, hi=150.0, doc="winding-to-oil gradient, rated"),
    Param("h", None, lo=0.0, hi=5.0, lo_open=True, doc="hot-spot factor"),
    Param("x", None, lo=0.0, hi=5.0, lo_open=True, doc="oil exponent"),
    Param("y", None, lo=0.0, hi=5.0, lo_open=True, doc="winding exponent"),
    Param("k11", None, lo=0.0, hi=10.0, lo_open=True, doc="thermal model constant"),
    Param("k21", None, lo=1.0, hi=10.0, doc="thermal model constant"),
    Param("k22", None, lo=0.0, hi=10.0, lo_open=True, doc="thermal model constant"),
    Param(
        "tau_o_min",
        None,
        unit="min",
        lo=0.0,
        hi=10000.0,
        lo_open=True,
        doc="average oil time constant",
    ),
    Param(
        "tau_w_min", None, unit="min", lo=0.0, hi=1000.0, lo_open=True, doc="winding time constant"
    ),
    Param("paper", Paper.NORMAL, kind=Paper, doc="insulation paper (ageing rate)"),
)
_NUMERIC_PARAMS = tuple(p for p in THERMAL_PARAMS if p.kind is float)


@dataclass(frozen=True)
class ThermalParameters:
    """Thermal parameters of a transformer, named after the IEC 60076-7 symbols.

    Parameters
    ----------
    cooling : CoolingMode
    r : float
        Ratio of load losses at rated current to no-load losses [-].
    delta_theta_or_k : float
        Top-oil temperature rise at rated losses [K].
    g_r_k : float
        Average-winding-to-average-oil gradient at rated current [K].
    h : float
        Hot-spot factor [-]; ``H g_r`` is the rated hot-spot-to-top-oil gradient.
    x, y : float
        Oil and winding exponents [-].
    k11, k21, k22 : float
        Thermal model constants [-].
    tau_o_min, tau_w_min : float
        Average oil and winding time constants [min].
    paper : Paper
        Insulation paper for the ageing rate.
    """

    # the IEC row of DEFAULT_COOLING (ONAN); ``defaults_for`` gives any other mode
    cooling: CoolingMode = DEFAULT_COOLING
    r: float = 6.0
    delta_theta_or_k: float = 52.0
    g_r_k: float = 20.0
    h: float = 1.3
    x: float = 0.8
    y: float = 1.3
    k11: float = 0.5
    k21: float = 2.0
    k22: float = 2.0
    tau_o_min: float = 210.0
    tau_w_min: float = 10.0
    paper: Paper = Paper.NORMAL

    @classmethod
    def for_cooling(
        cls, cooling: CoolingMode | str, *, path: str = "transformer", **overrides
    ) -> ThermalParameters:
        """IEC default parameters for a cooling mode, with keyword overrides.

        Parameters
        ----------
        cooling : CoolingMode or str
            Cooling mode.
        path : str, keyword-only
            Prefix of the problem messages (e.g. ``"feeder.transformer"``).
        **overrides
            Parameter values replacing the defaults (keys of :data:`THERMAL_PARAMS`).

        Returns
        -------
        ThermalParameters

        Raises
        ------
        ScenarioError
            Unknown cooling mode or override name, or invalid values (all listed at once).
        """
        return cls.from_dict({"cooling": cooling, **overrides}, path=path)

    @classmethod
    def from_dict(
        cls, data: dict, *, path: str = "transformer", extra_keys: tuple[str, ...] = ()
    ) -> ThermalParameters:
        """Build from a mapping of IEC-symbol keys (as in a TOML file).

        Unspecified keys take the IEC defaults of ``cooling`` (default :data:`DEFAULT_COOLING`,
        ONAN). Every problem is reported at once. ``extra_keys`` are keys the caller handles
        itself (listed as allowed, ignored here).

        Parameters
        ----------
        data : Mapping
            Keys of :data:`THERMAL_PARAMS`.
        path : str, keyword-only
            Key path of the table in messages.
        extra_keys : tuple of str, keyword-only
            Keys handled by the caller.

        Returns
        -------
        ThermalParameters

        Raises
        ------
        ScenarioError
            Unknown keys, wrong types, values out of range.
        """
        problems: list[str] = []
        if not isinstance(data, Mapping):
            check_problems(
                [f"{path}: expected a table, got {data!r}"],
                ScenarioError,
                f"{path}: invalid transformer thermal parameters",
            )
        table = {k: v for k, v in data.items() if k not in extra_keys}
        read = read_params(table, THERMAL_PARAMS, path=path, problems=problems, allow_unknown=True)
        allowed = [p.name for p in THERMAL_PARAMS] + list(extra_keys)
        problems.extend(unknown_keys(table, allowed, path=path))
        values = cls.defaults_for(read["cooling"]).to_dict_typed()
        values.update({k: v for k, v in read.items() if v is not None})
        params = cls(**values)
        problems += [p for p in params.problems(path) if p not in problems]
        check_problems(problems, ScenarioError, f"{path}: invalid transformer thermal parameters")
        return params

    @classmethod
    def defaults_for(cls, cooling: CoolingMode = DEFAULT_COOLING) -> ThermalParameters:
        """The IEC 60076-7 constants and typical rated values of a cooling mode.

        Parameters
        ----------
        cooling : CoolingMode
            Cooling mode.

        Returns
        -------
        ThermalParameters
            Normal paper; replace the rated values with the transformer's heat-run data.
        """
        cooling = CoolingMode(cooling)
        x, y, k11, k21, k22, tau_o, tau_w = _IEC_CONSTANTS[cooling]
        r, dtor, h, g_r = _TYPICAL_RATED[cooling]
        return cls(
            cooling=cooling, r=r, delta_theta_or_k=dtor, g_r_k=g_r, h=h, x=x, y=y, k11=k11,
            k21=k21, k22=k22, tau_o_min=tau_o, tau_w_min=tau_w, paper=Paper.NORMAL,
        )  # fmt: skip

    def to_dict_typed(self) -> dict:
        """Field name to value.

        Returns
        -------
        dict
            Enums kept as enum members (the keyword arguments of the constructor).
        """
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def problems(self, path: str = "transformer") -> list[str]:
        """Every invalid value, with its key path, as declared in :data:`THERMAL_PARAMS`.

        Parameters
        ----------
        path : str
            Key path of the table in messages.

        Returns
        -------
        list of str
            Empty when every value is valid.
        """
        problems: list[str] = []
        for param in THERMAL_PARAMS:
            param.check(getattr(self, param.name), key=f"{path}.{param.name}", problems=problems)
        return problems

    def to_dict(self) -> dict:
        """Plain dictionary, e.g. for reports or TOML.

        Returns
        -------
        dict
            Field name to value; enums as their string values.
        """
        out = asdict(self)
        out["cooling"] = self.cooling.value
        out["paper"] = self.paper.value
        return out

    @property
    def delta_theta_hr_k(self) -> float:
        """Rated hot-spot-to-top-oil gradient ``H g_r`` [K]."""
        return self.h * self.g_r_k


def relative_ageing_rate(hot_spot_c, *, paper: Paper = Paper.NORMAL) -> np.ndarray:
    """Relative ageing rate of the winding insulation [-].

    Parameters
    ----------
    hot_spot_c : array_like
        Hot-spot temperature [degC].
    paper : Paper, keyword-only
        ``NORMAL`` (non-thermally upgraded Kraft paper) or ``UPGRADED``.

    Returns
    -------
    numpy.ndarray
        ``V``; 1 at 98 degC (normal) or 110 degC (upgraded).

    Notes
    -----
    ``V = 2^((theta_h - 98)/6)`` (normal) and
    ``V = exp(15000/(110 + 273) - 15000/(theta_h + 273))`` (upgraded).

    References
    ----------
    IEC 60076-7:2018, 6.3, equations (2) and (3).
    """
    theta = np.asarray(hot_spot_c, dtype=float)
    if Paper(paper) is Paper.NORMAL:
        return np.exp2((theta - 98.0) / 6.0)
    return np.exp(15000.0 / (110.0 + 273.0) - 15000.0 / (theta + 273.0))


def steady_state(params: ThermalParameters, *, load_pu, ambient_c):
    """Steady-state top-oil temperature [degC] and hot-spot gradient [K] for constant inputs.

    ``theta_o = theta_a + delta_theta_or ((1 + R K^2)/(1 + R))^x``,
    ``delta_theta_h = H g_r K^y`` (IEC 60076-7:2018, 8.2.2 with d/dt = 0).

    Parameters
    ----------
    params : ThermalParameters
        The transformer.
    load_pu : array_like, keyword-only
        Load factor ``K`` [pu of rated current].
    ambient_c : array_like, keyword-only
        Ambient temperature [degC].

    Returns
    -------
    top_oil_c : numpy.ndarray
        Top-oil temperature [degC].
    gradient_k : numpy.ndarray
        Hot-spot-to-top-oil gradient [K]; the hot spot is their sum.

    References
    ----------
    IEC 60076-7:2018, clause 8.2.2.
    """
    k = np.asarray(load_pu, dtype=float)
    top_oil_rise = (
        params.delta_theta_or_k * ((1.0 + params.r * k**2) / (1.0 + params.r)) ** params.x
    )
    return np.asarray(ambient_c, dtype=float) + top_oil_rise, params.delta_theta_hr_k * k**params.y


# 3-point Gauss-Legendre nodes/weights on [0, 1] for the ageing integral.
_GL_NODES = np.array([0.5 - math.sqrt(0.15), 0.5, 0.5 + math.sqrt(0.15)])
_GL_WEIGHTS = np.array([5.0, 8.0, 5.0]) / 18.0


@njit(cache=True)
def _step_kernel(
    state, ageing_h, load, ambient, r, dtor, x, dthr, y, k21, tau_s, upgraded, dt_s, n_sub
):  # pragma: no cover - compiled
    """Advance the three first-order states of ``n`` transformers by ``dt_s`` (in place).

    For constant inputs every state relaxes exactly: ``s(t) = s_inf + (s0 - s_inf) e^(-t/tau)``
    with ``s_inf = [theta_o_inf, k21 dtheta_h_inf, (k21 - 1) dtheta_h_inf]``,
    ``theta_o_inf = theta_a + dtheta_or ((1 + R K^2)/(1 + R))^x``,
    ``dtheta_h_inf = H g_r K^y`` (IEC 60076-7:2018, 8.2.2, equations (5)-(7)); the hot spot is
    ``s_0 + s_1 - s_2``. The ageing ``integral V dt`` along that trajectory uses ``n_sub``
    sub-intervals of 3-point Gauss-Legendre quadrature; ``V`` is equation (2) (normal paper)
    or (3) (thermally upgraded paper).
    """
    h = dt_s / n_sub
    for k in range(state.shape[1]):
        load_k = load[k]
        top_inf = ambient[k] + dtor[k] * ((1.0 + r[k] * load_k * load_k) / (1.0 + r[k])) ** x[k]
        gradient = dthr[k] * load_k ** y[k]
        inf0, inf1, inf2 = top_inf, k21[k] * gradient, (k21[k] - 1.0) * gradient
        d0, d1, d2 = state[0, k] - inf0, state[1, k] - inf1, state[2, k] - inf2
        hot_inf = inf0 + inf1 - inf2
        rate0, rate1, rate2 = 1.0 / tau_s[0, k], 1.0 / tau_s[1, k], 1.0 / tau_s[2, k]
        integral = 0.0
        for j in range(n_sub):
            for g in range(3):
                t = (j + _GL_NODES[g]) * h
                hot = (
                    hot_inf
                    + d0 * math.exp(-t * rate0)
                    + d1 * math.exp(-t * rate1)
                    - d2 * math.exp(-t * rate2)
                )
                if upgraded[k]:
                    v = math.exp(15000.0 / (110.0 + 273.0) - 15000.0 / (hot + 273.0))
                else:
                    v = 2.0 ** ((hot - 98.0) / 6.0)
                integral += _GL_WEIGHTS[g] * v
        ageing_h[k] += integral * h / 3600.0
        state[0, k] = inf0 + d0 * math.exp(-dt_s * rate0)
        state[1, k] = inf1 + d1 * math.exp(-dt_s * rate1)
        state[2, k] = inf2 + d2 * math.exp(-dt_s * rate2)


class TransformerThermalModel:
    """IEC 60076-7 thermal state of ``n`` transformers, stepped with the co-simulation clock.

    Parameters
    ----------
    params : ThermalParameters or sequence of ThermalParameters
        One set for all transformers, or one per transformer (length ``n``).
    n : int, keyword-only
        Number of transformers.
    load_pu0, ambient_c0 : float or array_like, keyword-only
        Load factor ``K`` [pu of rated current] and ambient temperature [degC] whose steady
        state is the initial condition (defaults 1.0 pu, 20 degC).
    theta_o_initial_c : float or array_like, optional, keyword-only
        Initial top-oil temperature [degC] (default: steady state of ``load_pu0``).
    delta_theta_h_initial_k : float or array_like, optional, keyword-only
        Initial hot-spot-to-top-oil gradient [K] (default: steady state of ``load_pu0``); it
        is split into ``delta_theta_h1 = k21 * d`` and ``delta_theta_h2 = (k21 - 1) * d``
        like a steady state.

    Attributes
    ----------
    top_oil_c, hot_spot_c : numpy.ndarray
        ``(n,)`` temperatures [degC] at :attr:`t_s`.
    ageing_h : numpy.ndarray
        ``(n,)`` equivalent ageing since the start [h] (``integral V dt``).
    t_s : float
        Time since the start [s].
    """

    def __init__(
        self,
        params: ThermalParameters | list[ThermalParameters] | tuple[ThermalParameters, ...],
        *,
        n: int = 1,
        load_pu0=1.0,
        ambient_c0=20.0,
        theta_o_initial_c=None,
        delta_theta_h_initial_k=None,
    ) -> None:
        if isinstance(params, ThermalParameters):
            param_list = [params] * n
        else:
            param_list = list(params)
            if len(param_list) != n:
                raise ScenarioError(
                    f"transformer: {len(param_list)} parameter sets given for n = {n} transformers"
                )
        problems = []
        for k, p in enumerate(param_list):
            problems += p.problems(f"transformer[{k}]" if n > 1 else "transformer")
        check_problems(problems, ScenarioError, "invalid transformer thermal parameters")
        self.params = tuple(param_list)
        self.n = n

        def column(name: str) -> np.ndarray:
            return np.array([getattr(p, name) for p in param_list], dtype=float)

        self._r, self._dtor = column("r"), column("delta_theta_or_k")
        self._x, self._y = column("x"), column("y")
        self._dthr = column("h") * column("g_r_k")
        self._k21 = column("k21")
        k11, k22 = column("k11"), column("k22")
        tau_o, tau_w = column("tau_o_min") * 60.0, column("tau_w_min") * 60.0
        self._tau_s = np.stack([k11 * tau_o, k22 * tau_w, tau_o / k22])  # (3, n) [s]
        self._tau_min_s = float(self._tau_s.min())
        self._paper = [p.paper for p in param_list]
        self._upgraded = np.array([p.paper is Paper.UPGRADED for p in param_list])

        load0 = self._check_inputs(load_pu0, ambient_c0, what="initial")[0]
        ambient0 = np.broadcast_to(np.asarray(ambient_c0, dtype=float), (n,))
        top_oil_inf, hot_inf = self._targets(load0, ambient0)
        if theta_o_initial_c is None:
            theta_o = top_oil_inf
        else:
            theta_o = np.broadcast_to(np.asarray(theta_o_initial_c, dtype=float), (n,)).copy()
        if delta_theta_h_initial_k is None:
            h1, h2 = hot_inf
        else:
            d = np.broadcast_to(np.asarray(delta_theta_h_initial_k, dtype=float), (n,))
            h1, h2 = self._k21 * d, (self._k21 - 1.0) * d
        bad = ~(np.isfinite(theta_o) & np.isfinite(h1) & np.isfinite(h2))
        if bad.any():
            raise ScenarioError(
                f"transformer {int(np.flatnonzero(bad)[0])}: initial temperatures must be finite"
            )
        self._state = np.stack([theta_o, h1, h2]).astype(float)  # (3, n)
        self.ageing_h = np.zeros(n)
        self.t_s = 0.0

    # ------------------------------------------------------------------------------ helpers
    def _check_inputs(self, load_pu, ambient_c, *, what: str) -> tuple[np.ndarray, np.ndarray]:
        if (
            self.n == 1
            and isinstance(load_pu, float | int)
            and isinstance(ambient_c, float | int)
            and math.isfinite(load_pu + ambient_c)
            and load_pu >= 0
        ):  # one transformer stepped with plain numbers (the co-simulation's feeder)
            return np.array([float(load_pu)]), np.array([float(ambient_c)])
        load = np.asarray(load_pu, dtype=float)
        ambient = np.asarray(ambient_c, dtype=float)
        if load.shape != (self.n,):
            load = np.broadcast_to(load, (self.n,))
        if ambient.shape != (self.n,):
            ambient = np.broadcast_to(ambient, (self.n,))
        # the usual case in two reductions: a NaN or an infinity makes the sum non-finite
        if math.isfinite(load.sum() + ambient.sum()) and load.min() >= 0:
            return load, ambient
        problems = []
        for k in np.flatnonzero(~np.isfinite(load) | (load < 0)):
            problems.append(f"transformer {k}: {what} load_pu = {load[k]} (expected finite >= 0)")
        for k in np.flatnonzero(~np.isfinite(ambient)):
            problems.append(f"transformer {k}: {what} ambient_c = {ambient[k]} (expected finite)")
        check_problems(problems, SimulationError, "invalid thermal-model input")
        return load, ambient

    def _targets(self, load, ambient):
        """Steady-state values (theta_o_inf, (h1_inf, h2_inf)) for constant inputs."""
        top_oil = ambient + self._dtor * ((1.0 + self._r * load**2) / (1.0 + self._r)) ** self._x
        gradient = self._dthr * load**self._y
        return top_oil, (self._k21 * gradient, (self._k21 - 1.0) * gradient)

    # ------------------------------------------------------------------------------ public
    @property
    def top_oil_c(self) -> np.ndarray:
        """Top-oil temperature per transformer [degC]."""
        return self._state[0].copy()

    @property
    def delta_theta_h_k(self) -> np.ndarray:
        """Hot-spot-to-top-oil gradient ``delta_theta_h1 - delta_theta_h2`` [K]."""
        return self._state[1] - self._state[2]

    @property
    def hot_spot_c(self) -> np.ndarray:
        """Winding hot-spot temperature per transformer [degC]."""
        return self._state[0] + self._state[1] - self._state[2]

    def ageing_rate(self) -> np.ndarray:
        """Relative ageing rate at the current hot spot.

        Returns
        -------
        numpy.ndarray (n,)
            ``V`` per transformer [-] (IEC 60076-7 eq. (2) or (3)).
        """
        return self._ageing_rate(self.hot_spot_c)

    def _ageing_rate(self, hot_spot_c: np.ndarray) -> np.ndarray:
        return np.where(
            self._upgraded,
            relative_ageing_rate(hot_spot_c, paper=Paper.UPGRADED),
            relative_ageing_rate(hot_spot_c, paper=Paper.NORMAL),
        )

    def step(self, *, load_pu, ambient_c, dt_s: float) -> None:
        """Advance by ``dt_s`` with the load factor and ambient temperature held constant.

        Parameters
        ----------
        load_pu : float or array_like
            Load factor ``K`` = load current / rated current [pu], scalar or ``(n,)``.
        ambient_c : float or array_like
            Ambient temperature [degC], scalar or ``(n,)``.
        dt_s : float
            Step [s], any value >= 0 (exact exponential update; 0 is a no-op).

        Raises
        ------
        SimulationError
            Negative or non-finite inputs or step.
        """
        if not (isinstance(dt_s, int | float | np.number) and math.isfinite(dt_s) and dt_s >= 0):
            raise SimulationError(f"thermal model: dt_s = {dt_s!r} (expected a finite step >= 0)")
        load, ambient = self._check_inputs(load_pu, ambient_c, what="step")
        if dt_s == 0:
            return
        # Ageing: integrate V along the exact trajectory; sub-intervals <= tau_min / 4 keep the
        # 3-point Gauss rule accurate to far below 0.1 % for any step.
        n_sub = max(1, math.ceil(dt_s / (self._tau_min_s / 4.0)))
        _step_kernel(
            self._state,
            self.ageing_h,
            load,
            ambient,
            self._r,
            self._dtor,
            self._x,
            self._dthr,
            self._y,
            self._k21,
            self._tau_s,
            self._upgraded,
            float(dt_s),
            n_sub,
        )
        self.t_s += float(dt_s)


#: Where in its row a thermal result's temperature is: at the row's start time ``time_min[i]``,
#: before row ``i``'s load acts (= the end of row ``i - 1``; row 0 is the initial state).
TEMPERATURE_AT = "row start"


@dataclass(frozen=True)
class ThermalProfileResult:
    """Result of :func:`simulate_profile` (arrays over the profile's rows).

    Temperatures are at the START of each row (:data:`TEMPERATURE_AT`): ``top_oil_c[i]`` and
    ``hot_spot_c[i]`` hold at ``time_min[i]``, before the load of row ``i`` acts, i.e. at the
    end of row ``i - 1``; row 0 is the initial state. ``ageing_rate[i]`` is the rate at that
    instant.

    Attributes
    ----------
    time_min : numpy.ndarray
        Row times [min].
    top_oil_c, hot_spot_c : numpy.ndarray
        Temperatures at the row start times [degC].
    ageing_rate : numpy.ndarray
        Relative ageing rate at the row start times [-].
    ageing_h : float
        Equivalent ageing from ``time_min[0]`` to ``time_min[-1]`` [h].
    """

    time_min: np.ndarray
    top_oil_c: np.ndarray
    hot_spot_c: np.ndarray
    ageing_rate: np.ndarray
    ageing_h: float

    #: where a row's temperature is (class constant, for tables and reports)
    temperature_at = TEMPERATURE_AT

    @property
    def max_hot_spot_c(self) -> float:
        """Highest hot-spot temperature over the rows [degC]."""
        return float(np.max(self.hot_spot_c))

    @property
    def ageing_days(self) -> float:
        """Equivalent ageing over the profile [days at the reference hot spot]."""
        return self.ageing_h / 24.0


def simulate_profile(
    params: ThermalParameters,
    *,
    time_min,
    load_pu,
    ambient_c,
    theta_o_initial_c: float | None = None,
    delta_theta_h_initial_k: float | None = None,
) -> ThermalProfileResult:
    """Run one transformer through a piecewise-constant load/ambient profile.

    Parameters
    ----------
    params : ThermalParameters
    time_min : array_like
        Strictly increasing times [min] (may be fractional and uneven).
    load_pu, ambient_c : array_like
        Row ``i`` holds from ``time_min[i]`` until ``time_min[i+1]`` [pu], [degC]; the last
        row only sets nothing after the end.
    theta_o_initial_c, delta_theta_h_initial_k : float, optional, keyword-only
        Initial state; default the steady state of the first row.

    Returns
    -------
    ThermalProfileResult
        Temperatures at each ``time_min[i]`` (row 0 = initial state) and the equivalent
        ageing from ``time_min[0]`` to ``time_min[-1]``.
    """
    t = np.asarray(time_min, dtype=float)
    k = np.asarray(load_pu, dtype=float)
    a = np.asarray(ambient_c, dtype=float)
    model = TransformerThermalModel(
        params,
        n=1,
        load_pu0=k[0],
        ambient_c0=a[0],
        theta_o_initial_c=theta_o_initial_c,
        delta_theta_h_initial_k=delta_theta_h_initial_k,
    )
    top_oil = np.empty(t.size)
    hot_spot = np.empty(t.size)
    rate = np.empty(t.size)
    for i in range(t.size):
        if i > 0:
            model.step(load_pu=k[i - 1], ambient_c=a[i - 1], dt_s=(t[i] - t[i - 1]) * 60.0)
        top_oil[i] = model.top_oil_c[0]
        hot_spot[i] = model.hot_spot_c[0]
        rate[i] = model.ageing_rate()[0]
    return ThermalProfileResult(t, top_oil, hot_spot, rate, float(model.ageing_h[0]))


def hot_spot_violations(
    hot_spot_c,
    t_s=None,
    step_s: float | None = None,
    *,
    names: Sequence[str] | None = None,
) -> list[Violation]:
    """Hot-spot temperatures above the IEC 60076-7 Table 4 limits.

    Parameters
    ----------
    hot_spot_c : array_like (n_t,) or (n_t, n_transformers)
        Winding hot-spot temperature [degC].
    t_s : array_like (n_t,), optional
        Sample times [s].
    step_s : float, optional
        Time each sample stands for [s] (for the duration).
    names : sequence of str, optional
        Transformer names (default ``"transformer"``, ``"transformer 1"``, ...).

    Returns
    -------
    list of Violation
        At most one per limit: 120 degC (normal cyclic loading) and 140 degC (long-time
        emergency loading), the worst transformer named.

    References
    ----------
    IEC 60076-7:2018, clause 7.3, Table 4 (maximum temperature limits for loading beyond
    nameplate rating, medium and large power transformers).

    Examples
    --------
    >>> from grids.thermal import hot_spot_violations
    >>> [v.limit_value for v in hot_spot_violations([100.0, 125.0, 150.0], [0, 60, 120], 60)]
    [120.0, 140.0]
    """
    values = np.asarray(hot_spot_c, dtype=float)
    values = values[:, None] if values.ndim == 1 else values
    labels = _names(names, values.shape[1])
    t = None if t_s is None else np.asarray(t_s, dtype=float)
    out = []
    for limit_c, limit in (
        (HOT_SPOT_CYCLIC_C, Limit.IEC_60076_7_HOT_SPOT_CYCLIC),
        (HOT_SPOT_EMERGENCY_C, Limit.IEC_60076_7_HOT_SPOT_EMERGENCY),
    ):
        found = upper_limit_violation(
            values, limit_c, limit=limit, quantity="hot_spot_c", names=labels, t_s=t, step_s=step_s
        )
        if found is not None:
            out.append(found)
    return out


def loss_of_life_violation(
    ageing_h, elapsed_h: float, *, names: Sequence[str] | None = None
) -> Violation | None:
    """Insulation ageing faster than normal: equivalent ageing above the elapsed time.

    Parameters
    ----------
    ageing_h : float or array_like (n_transformers,)
        Equivalent ageing ``L = integral V dt`` over the run [h] (e.g.
        :attr:`TransformerThermalModel.ageing_h`).
    elapsed_h : float
        Duration of the run [h]; at the reference hot spot (98 degC normal paper, 110 degC
        thermally upgraded) ``L`` equals it.
    names : sequence of str, optional
        Transformer names.

    Returns
    -------
    Violation or None
        ``Limit.IEC_60076_7_LOSS_OF_LIFE`` with ``worst_value`` the largest ``L`` and
        ``limit_value`` the elapsed time (quantity ``ageing_h``); ``None`` when every
        transformer aged at most at the normal rate.

    References
    ----------
    IEC 60076-7:2018, 6.3, equations (2)-(4): relative ageing rate and loss of life.
    """
    values = np.atleast_1d(np.asarray(ageing_h, dtype=float))
    if not (math.isfinite(elapsed_h) and elapsed_h > 0):
        return None
    found = upper_limit_violation(
        values,
        float(elapsed_h),
        limit=Limit.IEC_60076_7_LOSS_OF_LIFE,
        quantity="ageing_h",
        names=_names(names, values.size),
    )
    return found


def _names(names: Sequence[str] | None, n: int) -> list[str]:
    if names is not None:
        return [str(x) for x in names]
    return ["transformer"] if n == 1 else [f"transformer {k}" for k in range(n)]
