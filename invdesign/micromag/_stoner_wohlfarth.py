"""Stoner-Wohlfarth reference curves (numpy/scipy only, independent of the JAX solver).

A single-domain particle with uniaxial anisotropy, field and magnetization in one plane.
With the field along angle 0, the easy axis at angle ``psi`` and the magnetization at angle
``phi``, the reduced energy (energy density divided by ``2 K1``) is

    e(phi) = (1/2) sin^2(phi - psi) - h cos(phi),     h = H / H_A,  H_A = 2 K1 / (mu0 Ms),

and the projection of the magnetization on the field axis is ``m = cos(phi)``. All fields in
this module are **reduced** (``h = H / H_A``); multiply by ``H_A`` for A/m.

Stationary points (``e'(phi) = 0``) are all found at once: ``e'`` is a trigonometric
polynomial of degree 2, and ``phi = beta + 2 arctan(t)`` turns ``(1 + t^2)^2 e'(phi)`` into a
real quartic in ``t`` (companion-matrix eigenvalues, batched over particles) whose real roots
are the stationary angles (polished by Newton on the angle). A state is relaxed from a
start angle by following the energy downhill to the first local minimum, which is the
overdamped (quasi-static) response. The descending branch of `sw_branch` is this relaxation
applied step by step from the previous angle (continuation); when the followed minimum has
disappeared the relaxation lands in the remaining minimum (irreversible switching).

For the 2D isotropic ensemble the state of every particle on the descending branch depends
only on the present field: a particle with reduced easy-axis angle ``psi`` in ``[0, pi/2]``
is switched iff ``h < -h_sw(psi)`` (astroid). The average is therefore a plain integral over
``psi`` at each field, split at the switching angles (where the integrand has a square-root
endpoint singularity, removed by the substitution ``psi = a (1 - s^2)``) and evaluated by
Gauss-Legendre quadrature; the coercive field is the zero of that integral (Brent's method).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import brentq

__all__ = [
    "sw_switching_field",
    "sw_branch",
    "sw_ensemble_2d",
    "sw_ensemble_2d_angles",
    "sw_ensemble_2d_figures",
]

_TWO_PI = 2.0 * math.pi
# A quartic root t counts as real (a stationary angle) when |Im t| < tol (1 + |t|). Near the
# switching field a minimum and a maximum merge into a double root (roots then carry errors
# ~ sqrt(machine eps)); the tolerance only shifts the switching field by ~tolerance^2.
_REAL_ROOT_TOL = 1e-6
# Minima just "behind" the start angle by less than this (rounding) still count.
_BEHIND_TOL = 1e-9


def _energy(phi, h, psi):
    return 0.5 * np.sin(phi - psi) ** 2 - h * np.cos(phi)


def _de(phi, h, psi):
    return 0.5 * np.sin(2.0 * (phi - psi)) + h * np.sin(phi)


def _d2e(phi, h, psi):
    return np.cos(2.0 * (phi - psi)) + h * np.cos(phi)


def _stationary_angles(h, psi):
    """All stationary angles, shape ``(n, 4)``; NaN where a quartic root is not real."""
    # phi = beta + 2 arctan(t) turns (1 + t^2)^2 e'(phi) into a real quartic in t whose
    # leading coefficient is e'(beta + pi); beta is the one of 8 equally spaced angles
    # with the largest |e'(beta + pi)| (a degree-2 trigonometric polynomial cannot be
    # small at all 8), which keeps every root at finite, moderate t.
    cand = np.arange(8) * (_TWO_PI / 8)
    lead = _de(cand[None, :] + math.pi, h[:, None], psi[:, None])
    beta = cand[np.argmax(np.abs(lead), axis=1)]
    # e'(beta + x) = A1 cos x + B1 sin x + A2 cos 2x + B2 sin 2x
    a1, b1 = h * np.sin(beta), h * np.cos(beta)
    a2, b2 = 0.5 * np.sin(2.0 * (beta - psi)), 0.5 * np.cos(2.0 * (beta - psi))
    c4 = a2 - a1
    coef = np.stack([2.0 * b1 - 4.0 * b2, -6.0 * a2, 2.0 * b1 + 4.0 * b2, a1 + a2], axis=1) / c4[:, None]
    comp = np.zeros((h.shape[0], 4, 4))
    comp[:, 0, :] = -coef
    comp[:, 1, 0] = comp[:, 2, 1] = comp[:, 3, 2] = 1.0
    t = np.linalg.eigvals(comp)
    real = np.abs(t.imag) < _REAL_ROOT_TOL * (1.0 + np.abs(t))
    phi = np.where(real, beta[:, None] + 2.0 * np.arctan(t.real), np.nan)
    hh, pp = h[:, None], psi[:, None]
    for _ in range(3):  # Newton polish on the real angle, accepted only where it helps
        g, c = _de(phi, hh, pp), _d2e(phi, hh, pp)
        with np.errstate(divide="ignore", invalid="ignore"):
            trial = phi - g / c
        better = np.isfinite(trial) & (np.abs(_de(trial, hh, pp)) < np.abs(g))
        phi = np.where(better, trial, phi)
    return phi


def _relax(phi0, h, psi):
    """Follow the energy downhill from ``phi0`` at field ``h`` to the first local minimum.

    Broadcasts its arguments; returns the minimum's angle (wrapped to ``(-pi, pi]``).
    """
    phi0, h, psi = np.broadcast_arrays(*(np.asarray(a, dtype=float) for a in (phi0, h, psi)))
    shape = phi0.shape
    phi0, h, psi = phi0.ravel(), h.ravel(), psi.ravel()
    if phi0.size == 0:
        return np.empty(shape)
    stat = _stationary_angles(h, psi)
    hh, pp = h[:, None], psi[:, None]
    curv = _d2e(stat, hh, pp)
    is_min = np.isfinite(stat) & (curv >= -1e-9)
    g0 = _de(phi0, h, psi)
    direction = np.where(g0 > 0.0, -1.0, 1.0)  # downhill; at a stationary start: +phi
    ahead = np.mod(direction[:, None] * (stat - phi0[:, None]) + _BEHIND_TOL, _TWO_PI) - _BEHIND_TOL
    ahead = np.where(is_min, ahead, np.inf)
    pick = np.argmin(ahead, axis=1)
    found = np.isfinite(ahead[np.arange(ahead.shape[0]), pick])
    if not np.all(found):  # cannot happen for a periodic e(phi); global minimum as fallback
        energy = np.where(np.isfinite(stat), _energy(stat, hh, pp), np.inf)
        pick = np.where(found, pick, np.argmin(energy, axis=1))
    phi = stat[np.arange(stat.shape[0]), pick]
    return np.angle(np.exp(1j * phi)).reshape(shape)


def _check_psi(psi):
    psi = np.asarray(psi, dtype=float)
    if not np.all(np.isfinite(psi)):
        raise ValueError("psi must be finite (easy-axis angles in radians)")
    return psi


def _check_h(h, name="h", decreasing=False):
    h = np.asarray(h, dtype=float)
    if not np.all(np.isfinite(h)):
        raise ValueError(f"{name} must be finite (reduced fields H / H_A)")
    if decreasing:
        if h.ndim != 1 or h.size == 0:
            raise ValueError(f"{name} must be a non-empty 1-D array, got shape {h.shape}")
        if np.any(np.diff(h) > 0.0):
            raise ValueError(f"{name} must be non-increasing (a descending field sweep)")
    return h


def sw_switching_field(psi):
    """Stoner-Wohlfarth switching field (astroid) in units of ``H_A``.

    ``h_sw(psi) = (|cos psi|^(2/3) + |sin psi|^(2/3))^(-3/2)``: ``1`` for a field along the
    easy axis, ``1/2`` at 45 degrees.

    **Arguments:**

    - `psi`: angle(s) between field and easy axis, radians (any shape).

    **Returns:** array of the same shape, reduced switching field ``H_sw / H_A`` (> 0).

    ```python
    >>> print(f"{float(sw_switching_field(0.0)):.4f} {float(sw_switching_field(math.pi / 4)):.4f}")
    1.0000 0.5000
    ```
    """
    psi = _check_psi(psi)
    c, s = np.abs(np.cos(psi)), np.abs(np.sin(psi))
    return (np.cbrt(c) ** 2 + np.cbrt(s) ** 2) ** -1.5


def sw_branch(h, psi):
    """Descending-branch projection ``m = cos(phi)`` of particles saturated along +field.

    The state at ``h[0]`` is relaxed from ``phi = 0`` (saturated along the field); each
    later field relaxes from the previous angle to the nearest local minimum downhill
    (continuation). When the followed minimum disappears (``h < -h_sw(psi)``) the particle
    jumps to the remaining minimum. The result is exact for any step size: on the
    unswitched branch the minimum moves monotonically and no maximum can come between
    consecutive states. Field and easy axis lie in one plane; ``m`` depends on ``psi``
    only through ``psi mod pi`` and ``|psi|``. ``m`` decreases with ``h`` except at the
    switching jump of particles with easy axes more than ~77 degrees from the field, whose
    projection jumps *up* (the anisotropy energy released outweighs the Zeeman cost).

    **Arguments:**

    - `h`: reduced fields ``H / H_A`` along angle 0, 1-D, non-increasing. Starting below
      ``h_sw`` is allowed: the start state is still the one reached from saturation.
    - `psi`: easy-axis angle(s) in radians (scalar or any shape), vectorised.

    **Returns:** ``m`` of shape ``(len(h),) + np.shape(psi)``.

    ```python
    >>> m = sw_branch(np.array([2.0, 0.0, -0.99, -1.01]), 0.0)
    >>> print(np.round(m, 4))
    [ 1.  1.  1. -1.]
    >>> print(f"{float(sw_branch([0.0], math.pi / 3)[0]):.4f}")
    0.5000
    ```
    """
    h = _check_h(h, decreasing=True)
    psi = _check_psi(psi)
    flat = psi.ravel()
    phi = _relax(np.zeros_like(flat), h[0], flat)
    out = np.empty((h.size, flat.size))
    out[0] = np.cos(phi)
    for k in range(1, h.size):
        phi = _relax(phi, h[k], flat)
        out[k] = np.cos(phi)
    return out.reshape(h.shape + psi.shape)


def sw_ensemble_2d_angles(h, psi, weights=None):
    """Average descending branch of particles with the given easy-axis angles.

    For comparison with a micromagnetic sample of a finite number of uncoupled grains
    (pass the grain areas as `weights` to weight by volume).

    **Arguments:**

    - `h`: reduced fields ``H / H_A``, 1-D, non-increasing.
    - `psi`: easy-axis angles in radians (any shape; all entries are averaged).
    - `weights`: optional non-negative weights of the same shape as `psi` (default equal).

    **Returns:** ``(len(h),)`` array, the (weighted) mean of `sw_branch` over `psi`.

    ```python
    >>> m = sw_ensemble_2d_angles([0.0, -0.7], [0.0, math.pi / 4])
    >>> print(np.round(m, 4))
    [0.8536 0.0508]
    ```
    """
    psi = _check_psi(psi).ravel()
    if psi.size == 0:
        raise ValueError("psi must contain at least one angle")
    if weights is None:
        weights = np.ones_like(psi)
    else:
        weights = np.asarray(weights, dtype=float)
        if weights.size != psi.size:
            raise ValueError(f"weights must have one entry per angle in psi ({psi.size}), got {weights.size}")
        weights = weights.ravel()
        if not np.all(np.isfinite(weights)) or np.any(weights < 0) or weights.sum() <= 0:
            raise ValueError("weights must be finite, non-negative and not all zero")
    m = sw_branch(h, psi)
    return m @ (weights / weights.sum())


def _switch_angle(h_abs):
    """Angle ``a`` in ``[0, pi/4]`` with ``h_sw(a) = h_abs`` for ``h_abs`` in ``[1/2, 1]``.

    With ``t = tan(a)^(1/3)`` and ``u = t^2``, ``h_sw(a) = h`` becomes the quadratic
    ``(h^-2 - 1) u^2 - (h^-2 + 2) u + (h^-2 - 1) = 0``; its root in ``[0, 1]`` is taken.
    """
    p = h_abs**-2 - 1.0
    q = h_abs**-2 + 2.0
    u = 2.0 * p / (q + np.sqrt(np.maximum(q * q - 4.0 * p * p, 0.0)))
    return np.arctan(u**1.5)


def _ensemble_nodes(h, n):
    """Quadrature nodes and weights over ``psi`` in ``[0, pi/2]`` for each field ``h``.

    Returns ``(psi, w)`` of shape ``h.shape + (3 n,)``; ``sum(w) = 1`` (mean over psi).
    """
    s, ws = np.polynomial.legendre.leggauss(n)
    s, ws = 0.5 * (s + 1.0), 0.5 * ws  # on [0, 1]
    half = 0.5 * math.pi
    a = np.where(h >= -0.5, 0.25 * math.pi, np.where(h <= -1.0, 0.0, _switch_angle(np.clip(-h, 0.5, 1.0))))
    a = a[..., None]
    b = half - a  # the astroid is symmetric about pi/4
    # [0, a]: unswitched, sqrt singularity at a; [a, b]: switched; [b, pi/2]: unswitched,
    # sqrt singularity at b. Without switching a = b = pi/4 (the integrand is nearly
    # singular there for h just above -1/2). The pitchfork of the perpendicular particle
    # (psi = pi/2, h = +-1) is singular at pi/2. Every piece is mapped by the smoothstep
    # g(s) = s^2 (3 - 2 s), whose quadratic contact at both ends removes the square roots.
    g, dg = s * s * (3.0 - 2.0 * s), 6.0 * s * (1.0 - s) * ws
    lo = np.concatenate([np.zeros_like(a), a, b], axis=-1)[..., :, None]
    hi = np.concatenate([a, b, np.full_like(b, half)], axis=-1)[..., :, None]
    psi = (lo + (hi - lo) * g).reshape(h.shape + (-1,))
    w = ((hi - lo) * dg).reshape(h.shape + (-1,)) / half
    return psi, w


def _ensemble_mean(h, n):
    h = np.asarray(h, dtype=float)
    psi, w = _ensemble_nodes(h, n)
    m = np.cos(_relax(0.0, h[..., None], psi))
    return np.sum(m * w, axis=-1)


def sw_ensemble_2d(h, n_angles=64):
    """Descending branch of the 2D isotropic Stoner-Wohlfarth ensemble.

    Easy axes uniformly distributed over all in-plane directions, field in the same plane,
    every particle saturated along +field before the sweep. On the descending branch the
    state of each particle depends only on the present field, so every entry of `h` is
    evaluated independently (any order, any shape); the average over ``psi`` is a
    Gauss-Legendre quadrature split at the switching angles (see the module docstring),
    accurate to ~1e-9 with the default `n_angles` (see the tests).

    **Arguments:**

    - `h`: reduced fields ``H / H_A`` (any shape).
    - `n_angles`: Gauss-Legendre nodes per sub-interval (three sub-intervals per field).

    **Returns:** ``M / Ms`` averaged over the ensemble, same shape as `h`.

    ```python
    >>> print(np.round(sw_ensemble_2d([1.0, 0.0, -0.5]), 4))
    [0.9342 0.6366 0.1904]
    ```
    """
    h = _check_h(h)
    if int(n_angles) != n_angles or n_angles < 2:
        raise ValueError(f"n_angles must be an integer >= 2, got {n_angles!r}")
    return _ensemble_mean(h, int(n_angles))


def sw_ensemble_2d_figures(n_angles=64, xtol=1e-13):
    """Remanence and coercive field of the 2D isotropic Stoner-Wohlfarth ensemble.

    Both are computed, not tabulated: ``Mr`` is the ensemble average at ``h = 0``
    (analytically ``2 / pi``), ``Hc`` the zero of `sw_ensemble_2d` on the descending branch,
    found by Brent's method between ``h = -1`` (all switched) and ``h = -1/2`` (none
    switched). Published values: ``Mr / Ms = 2 / pi = 0.6366``, ``Hc / H_A = 0.508``.

    **Arguments:**

    - `n_angles`: Gauss-Legendre nodes per sub-interval of the ``psi`` quadrature.
    - `xtol`: absolute tolerance of the root finder on ``h``.

    **Returns:** dict with ``"Mr"`` (``Mr / Ms``) and ``"Hc"`` (``Hc / H_A``, the magnitude:
    the branch crosses zero at ``h = -Hc``).

    ```python
    >>> fig = sw_ensemble_2d_figures()
    >>> print(f"Mr = {fig['Mr']:.4f}, Hc = {fig['Hc']:.4f}")
    Mr = 0.6366, Hc = 0.5078
    ```
    """
    if int(n_angles) != n_angles or n_angles < 2:
        raise ValueError(f"n_angles must be an integer >= 2, got {n_angles!r}")
    n = int(n_angles)
    mr = float(_ensemble_mean(np.array(0.0), n))

    def f(x):
        return float(_ensemble_mean(np.array(x), n))

    hc = -brentq(f, -1.0, -0.5, xtol=xtol, rtol=4 * np.finfo(float).eps)
    return {"Mr": mr, "Hc": hc}
