"""Grid-forming control: a virtual synchronous machine (VSM) for N inverters, and its droop twin.

The VSM emulates the swing equation of a synchronous machine on the unit's own rating:

.. math::

    2 H \\frac{d\\Delta\\omega}{dt} = p_{ref} - p_e - D\\,\\Delta\\omega, \\qquad
    \\frac{d\\delta}{dt} = \\omega_b (\\Delta\\omega - \\Delta\\omega_g), \\qquad
    p_e = \\delta / x

with ``Delta omega`` the virtual rotor speed deviation [pu], ``Delta omega_g`` the grid's
[pu], ``delta`` the angle of the virtual EMF against the grid voltage [rad], ``omega_b =
2 pi f_N`` and ``x`` the coupling reactance [pu] (small-angle power transfer with E = V = 1 pu).
``H`` = ``h_s`` [s], ``D`` = ``d_pu`` [pu power / pu speed], damping against the nominal
speed as in D'Arco & Suul.

A droop controller with a first-order low-pass filter on the measured power,
``Delta omega = m_p (p_ref - p_f)``, ``tau dp_f/dt = p_e - p_f``, obeys exactly the same
equations with ``2H = tau / m_p`` and ``D = 1/m_p`` ([1]) for a constant set-point (a set-point
step moves the droop's speed at once but the VSM's only through its inertia):
:class:`DroopLowPassFilter` implements that form so the equivalence can be checked.

Both are linear time-invariant two-state systems and are stepped with their exact
zero-order-hold discretization (:func:`grids.discretize.zoh`, cached per ``dt``), stable for
any step.
Active-power limits (SoC/energy and current limits, passed as ``p_max_pu``/``p_min_pu``)
saturate ``p_e``; the angle is then reset to the saturated power (anti-windup).

References
----------
.. [1] S. D'Arco and J. A. Suul, "Equivalence of virtual synchronous machines and
   frequency-droops for converter-based microgrids", IEEE Trans. Smart Grid 5(1), 394-395,
   2014.
.. [2] H.-P. Beck and R. Hesse, "Virtual synchronous machine", 9th Int. Conf. EPQU, 2007.
"""

from __future__ import annotations

import math

import numpy as np

from grids.discretize import zoh
from vehicle_models.settings import F_NOM_HZ, VsmSettings


class _LinearTwoState:
    """Vectorized exact stepping of a 2-state, 2-input LTI system (shared by VSM and droop)."""

    def __init__(self, n: int, f_nominal_hz: float) -> None:
        self.n = int(n)
        self.f_nominal_hz = float(f_nominal_hz)
        self.omega_b = 2.0 * math.pi * self.f_nominal_hz
        self._cache: dict[float, tuple[np.ndarray, np.ndarray]] = {}

    def _matrices(self) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover - overridden
        raise NotImplementedError

    def _discrete(self, dt_s: float) -> tuple[np.ndarray, np.ndarray]:
        key = float(dt_s)
        if key not in self._cache:
            self._cache[key] = zoh(*self._matrices(), key)
        return self._cache[key]

    def _advance(self, x0, x1, u0, u1, dt_s):
        ad, bd = self._discrete(dt_s)
        y0 = ad[0, 0] * x0 + ad[0, 1] * x1 + bd[0, 0] * u0 + bd[0, 1] * u1
        y1 = ad[1, 0] * x0 + ad[1, 1] * x1 + bd[1, 0] * u0 + bd[1, 1] * u1
        return y0, y1


class VirtualSynchronousMachine(_LinearTwoState):
    """N grid-forming units as virtual synchronous machines (see module docstring).

    Parameters
    ----------
    settings : VsmSettings
        ``h_s`` [s], ``d_pu``, ``x_pu``.
    n : int
        Number of units.
    f_nominal_hz : float
        System nominal frequency [Hz]: the base of the per-unit speeds and of
        ``omega_b = 2 pi f_N``.

    Attributes
    ----------
    delta_rad : numpy.ndarray (n,)
        Virtual EMF angle against the grid [rad].
    domega_pu : numpy.ndarray (n,)
        Virtual rotor speed deviation [pu].
    p_pu : numpy.ndarray (n,)
        Electrical output [pu] after limits.
    """

    def __init__(self, settings: VsmSettings, *, n: int, f_nominal_hz: float = F_NOM_HZ) -> None:
        super().__init__(n, f_nominal_hz)
        self.settings = settings
        self.delta_rad = np.zeros(self.n)
        self.domega_pu = np.zeros(self.n)
        self.p_pu = np.zeros(self.n)
        self.initialized = False

    def _matrices(self):
        h, d, x, wb = self.settings.h_s, self.settings.d_pu, self.settings.x_pu, self.omega_b
        a = np.array([[0.0, wb], [-1.0 / (2.0 * h * x), -d / (2.0 * h)]])
        b = np.array([[0.0, -wb], [1.0 / (2.0 * h), 0.0]])  # inputs: p_ref, domega_grid
        return a, b

    @property
    def f_hz(self) -> np.ndarray:
        """Virtual rotor frequency [Hz]."""
        return self.f_nominal_hz * (1.0 + self.domega_pu)

    def initialize(self, *, p_ref_pu, f_hz) -> None:
        """Set the steady state for ``p_ref_pu`` at a constant grid frequency ``f_hz``.

        Parameters
        ----------
        p_ref_pu : array_like
            Active-power set-point [pu], broadcast to (n,).
        f_hz : float or array_like
            Grid frequency [Hz].

        Notes
        -----
        Steady state: ``domega = domega_g``, ``p_e = p_ref - D domega_g``.
        """
        dw_g = (np.asarray(f_hz, dtype=float) - self.f_nominal_hz) / self.f_nominal_hz
        dw_g = np.broadcast_to(dw_g, (self.n,))
        self.domega_pu = np.array(dw_g, dtype=float)
        self.p_pu = np.asarray(p_ref_pu, dtype=float) - self.settings.d_pu * self.domega_pu
        self.p_pu = np.broadcast_to(self.p_pu, (self.n,)).copy()
        self.delta_rad = self.p_pu * self.settings.x_pu
        self.initialized = True

    def step(self, *, dt_s: float, f_hz, p_ref_pu, p_max_pu=None, p_min_pu=None) -> np.ndarray:
        """Advance by ``dt_s`` with the grid frequency and the set-point held.

        Parameters
        ----------
        dt_s : float
            Step [s].
        f_hz : float or array_like
            Grid frequency [Hz].
        p_ref_pu : array_like
            Active-power set-point [pu].
        p_max_pu, p_min_pu : array_like, optional
            Active-power limits [pu] (SoC / current); the angle is reset to the limit
            (anti-windup).

        Returns
        -------
        numpy.ndarray
            Electrical output ``p_pu`` (n,) [pu], clipped to ``[p_min_pu, p_max_pu]``.
        """
        if not self.initialized:
            self.initialize(p_ref_pu=p_ref_pu, f_hz=f_hz)
        dw_g = (np.asarray(f_hz, dtype=float) - self.f_nominal_hz) / self.f_nominal_hz
        self.delta_rad, self.domega_pu = self._advance(
            self.delta_rad, self.domega_pu, np.asarray(p_ref_pu, dtype=float), dw_g, dt_s
        )
        x = self.settings.x_pu
        p = self.delta_rad / x
        if p_max_pu is not None or p_min_pu is not None:
            p_clipped = np.clip(
                p,
                -np.inf if p_min_pu is None else p_min_pu,
                np.inf if p_max_pu is None else p_max_pu,
            )
            # Anti-windup: a saturated unit behaves like a current source at its limit.
            self.delta_rad = p_clipped * x
            p = p_clipped
        self.p_pu = p
        return p


class DroopLowPassFilter(_LinearTwoState):
    """N grid-forming droop units with a low-pass filter on the measured power.

    ``Delta omega = m_p (p_ref - p_f)``, ``tau dp_f/dt = p_e - p_f``, ``p_e = delta / x``,
    ``d delta/dt = omega_b (Delta omega - Delta omega_g)``. Equivalent to a
    :class:`VirtualSynchronousMachine` with ``h_s = tau/(2 m_p)`` and ``d_pu = 1/m_p``.
    """

    def __init__(
        self, *, m_p: float, tau_s: float, x_pu: float, n: int, f_nominal_hz: float = F_NOM_HZ
    ) -> None:
        super().__init__(n, f_nominal_hz)
        self.m_p, self.tau_s, self.x_pu = m_p, tau_s, x_pu
        self.delta_rad = np.zeros(self.n)
        self.p_filtered_pu = np.zeros(self.n)

    def equivalent_vsm_settings(self) -> VsmSettings:
        """The virtual synchronous machine this droop is equivalent to.

        Returns
        -------
        VsmSettings
            ``h_s = tau/(2 m_p)``, ``d_pu = 1/m_p``, the same ``x_pu`` (D'Arco & Suul 2014).
        """
        return VsmSettings(h_s=self.tau_s / (2.0 * self.m_p), d_pu=1.0 / self.m_p, x_pu=self.x_pu)

    def _matrices(self):
        wb, mp, tau, x = self.omega_b, self.m_p, self.tau_s, self.x_pu
        a = np.array([[0.0, -wb * mp], [1.0 / (tau * x), -1.0 / tau]])
        b = np.array([[wb * mp, -wb], [0.0, 0.0]])
        return a, b

    def domega_pu(self, p_ref_pu) -> np.ndarray:
        """Speed deviation set by the droop.

        Parameters
        ----------
        p_ref_pu : array_like
            Active-power set-point [pu].

        Returns
        -------
        numpy.ndarray
            ``m_p (p_ref - p_filtered)`` [pu of the nominal speed].
        """
        return self.m_p * (np.asarray(p_ref_pu, dtype=float) - self.p_filtered_pu)

    def step(self, *, dt_s: float, f_hz, p_ref_pu) -> np.ndarray:
        """Advance by ``dt_s`` with the grid frequency and the set-point held.

        Parameters
        ----------
        dt_s : float
            Step [s].
        f_hz : float or array_like
            Grid frequency [Hz].
        p_ref_pu : array_like
            Active-power set-point [pu].

        Returns
        -------
        numpy.ndarray
            Electrical output ``p_e`` [pu] (no limits).
        """
        dw_g = (np.asarray(f_hz, dtype=float) - self.f_nominal_hz) / self.f_nominal_hz
        self.delta_rad, self.p_filtered_pu = self._advance(
            self.delta_rad, self.p_filtered_pu, np.asarray(p_ref_pu, dtype=float), dw_g, dt_s
        )
        return self.delta_rad / self.x_pu


__all__ = ["DroopLowPassFilter", "VirtualSynchronousMachine"]
