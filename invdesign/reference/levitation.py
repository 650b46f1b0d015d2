"""Independent references for the loop-field and levitation tests.

- `b_axis`, `axis_derivatives`, `axis_hessian_b2`: the on-axis field of coaxial loops and its
  derivatives in mpmath (at least `DPS` digits; more when the caller works with more).
- `biot_savart`: a numpy trapezoid-rule Biot-Savart quadrature of a loop's field.
- `fd_hessian`: a Richardson-extrapolated central-difference Hessian of a scalar function.
- `dijkstra_minimax`: escape levels on a grid by Dijkstra (checks the barrier search).

Independent of the code it checks: nothing from `invdesign`'s physics is imported here (the
constants are written out again). Needs mpmath (the ``test`` extra:
``pip install -e ".[test]"``). It does not change mpmath's global precision.
"""

from __future__ import annotations

import heapq
import math

import numpy as np

from ._mpmath import at_least_dps, require_mpmath

mp = require_mpmath(__name__)

MU0 = 1.25663706212e-6
G0 = 9.80665
DPS = 40
"""Minimum working precision (decimal digits) of the mpmath references."""


def b_axis(z, loops):
    """On-axis field b(z) (T) of coaxial loops [(radius, current, z_centre), ...] (mpmath)."""
    with at_least_dps(mp, DPS):
        z = mp.mpf(z)
        total = mp.mpf(0)
        for a, current, zc in loops:
            a, current, zc = mp.mpf(a), mp.mpf(current), mp.mpf(zc)
            total += mp.mpf(MU0) * current * a**2 / (2 * (a**2 + (z - zc) ** 2) ** mp.mpf(1.5))
        return total


def axis_derivatives(z, loops):
    """(b, b', b'') on the axis at height z (mpmath differentiation of the exact formula)."""
    f = lambda t: b_axis(t, loops)  # noqa: E731
    with at_least_dps(mp, DPS):
        return f(z), mp.diff(f, z, 1), mp.diff(f, z, 2)


def axis_hessian_b2(z, loops):
    """Hessian diagonal of |B|^2 on the axis: (b'^2/2 - b b'', same, 2 (b'^2 + b b''))."""
    with at_least_dps(mp, DPS):
        b, b1, b2 = axis_derivatives(z, loops)
        h_r = b1**2 / 2 - b * b2
        h_z = 2 * (b1**2 + b * b2)
        return float(h_r), float(h_r), float(h_z)


def biot_savart(points, radius, current, zc=0.0, n=4000):
    """B (T) of a loop in a plane z = zc, centred on the z axis: periodic trapezoid rule."""
    phi = np.arange(n) * (2 * np.pi / n)
    src = np.stack([radius * np.cos(phi), radius * np.sin(phi), np.full(n, zc)], axis=-1)
    dl = np.stack([-np.sin(phi), np.cos(phi), np.zeros(n)], axis=-1) * radius * (2 * np.pi / n)
    d = np.asarray(points, float)[..., None, :] - src
    r3 = np.linalg.norm(d, axis=-1, keepdims=True) ** 3
    return MU0 * current / (4 * np.pi) * np.sum(np.cross(dl, d) / r3, axis=-2)


def fd_hessian(f, x, h):
    """Central-difference Hessian of a scalar function of a 3-vector, Richardson-extrapolated
    (error O(h^4))."""
    return (4 * _fd_hessian(f, x, h) - _fd_hessian(f, x, 2 * h)) / 3


def _fd_hessian(f, x, h):
    x = np.asarray(x, float)
    hess = np.zeros((3, 3))
    e = np.eye(3) * h
    for i in range(3):
        for j in range(3):
            hess[i, j] = (f(x + e[i] + e[j]) - f(x + e[i] - e[j]) - f(x - e[i] + e[j]) + f(x - e[i] - e[j])) / (4 * h * h)
    return hess


def dijkstra_minimax(u, exits):
    """Escape level of every cell (min over 4-connected paths to an exit of max u), by Dijkstra."""
    u = np.where(np.isnan(u), np.inf, np.asarray(u, float))
    level = np.full(u.shape, np.inf)
    heap = []
    for idx in zip(*np.nonzero(exits)):
        level[idx] = u[idx]
        heapq.heappush(heap, (u[idx], idx))
    while heap:
        lev, (i, j) = heapq.heappop(heap)
        if lev > level[i, j]:
            continue
        for di, dj in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            a, b = i + di, j + dj
            if 0 <= a < u.shape[0] and 0 <= b < u.shape[1]:
                cand = max(lev, u[a, b])
                if cand < level[a, b]:
                    level[a, b] = cand
                    heapq.heappush(heap, (cand, (a, b)))
    return level


def sphere_volume(radius):
    """Volume (m^3) of a sphere of `radius` (m)."""
    return 4.0 * math.pi / 3.0 * radius**3
