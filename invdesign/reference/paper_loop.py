"""The paper's N-loop algorithm as a plain Python loop (appendix A, Fig. 10): the baseline.

An independent, deliberately literal re-implementation of the N-loop model of the cavity
paper (sections II.2-II.3, appendix A), used to check the cavity package's `NLoopModel` and
as the speed baseline of ``studies/benchmarks/bench_cavity.py``. For one magnet position it walks over the
mesh elements one at a time, as the flowchart of Fig. 10 does:

1. rotate into the element frame (the element normal becomes the local z axis, the
   element centre the origin);
2. the magnet's point-dipole field at the element centre, and its normal component ``B_n``;
3. the induced loop current ``i = -B_n rho / mu0`` (``rho`` the element radius);
4. the loop's field at the magnet from the classical closed-form off-axis formulas with
   complete elliptic integrals (paper eqs. 6-8), or the on-axis formula near ``r = 0``;
5. rotate that field back into the cavity frame, ``U_i = -1/2 mu . B_i``;

and sums ``U = sum_i U_i + m g z`` (paper eq. 10). Only `numpy`, `scipy` and `math`: no JAX
and nothing from `invdesign`'s physics (the constants are written out again), so the two
implementations share no code. Needs no mpmath.

Eq. 8 of the paper prints ``2 pi r`` in the denominator of ``B_z``; the textbook formula
(and the dimensions) have ``2 pi`` alone, which is what is used here:

    B_r = mu0 i z / (2 pi r sqrt((a + r)^2 + z^2)) [(a^2 + r^2 + z^2) / ((a - r)^2 + z^2) E - K]
    B_z = mu0 i   / (2 pi   sqrt((a + r)^2 + z^2)) [(a^2 - r^2 - z^2) / ((a - r)^2 + z^2) E + K]

with ``K = K(m), E = E(m)`` of parameter ``m = k^2 = 4 a r / ((a + r)^2 + z^2)`` (scipy's
convention). The bracket of ``B_r`` cancels like ``r^2`` towards the axis, so for
``r < AXIS_TOLERANCE * a`` the near-axis expansion is used instead: the on-axis
``B_z = mu0 i a^2 / (2 (a^2 + z^2)^(3/2))`` and ``B_r = 3 mu0 i a^2 z r / (4 (a^2 + z^2)^(5/2))``
(the first term of ``B_r``; both are exact to a relative ``O((r / a)^2)``).

```python
>>> import numpy as np
>>> u = paper_loop_energy(np.array([[0.0, 0.0, 0.0]]), np.array([[0.0, 0.0, 1.0]]), np.array([1e-3]),
...                       np.array([0.0, 0.0, 1e-3]), np.array([0.0, 0.0, 1e-4]))
>>> u > 0.0  # a vertical moment above a screening loop is repelled
True
```
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import ellipe, ellipk

__all__ = [
    "MU0",
    "G0",
    "AXIS_TOLERANCE",
    "sphere_moment",
    "rotation_to_local",
    "dipole_field",
    "loop_field_local",
    "paper_loop_energy",
    "paper_loop_energies",
]

MU0 = 1.25663706212e-6
"""Vacuum permeability (T m / A), CODATA 2018."""

G0 = 9.80665
"""Standard gravity (m / s^2)."""

AXIS_TOLERANCE = 1e-5
"""Below ``r = AXIS_TOLERANCE * a`` the loop field uses the near-axis expansion."""


def sphere_moment(remanence: float, radius: float) -> float:
    """Dipole moment ``|mu| = Br V / mu0`` (A m^2) of a uniformly magnetised sphere."""
    return remanence * (4.0 / 3.0 * math.pi * radius**3) / MU0


def rotation_to_local(normal) -> np.ndarray:
    """Rotation matrix ``R`` (3x3) taking the unit `normal` to the local z axis: ``R n = z``.

    Rodrigues' rotation about the axis ``n x z`` by the angle between ``n`` and ``z``; a
    half turn about x when ``n = -z``. Cavity-frame vectors ``v`` become ``R v`` in the
    element frame, element-frame vectors ``w`` become ``R^T w`` in the cavity frame.
    """
    n = np.asarray(normal, dtype=float)
    n = n / np.linalg.norm(n)
    c = n[2]  # cos of the angle between n and z
    if c > 1.0 - 1e-15:
        return np.eye(3)
    if c < -1.0 + 1e-15:
        return np.diag([1.0, -1.0, -1.0])
    axis = np.array([n[1], -n[0], 0.0])  # n x z
    s = np.linalg.norm(axis)
    axis = axis / s
    cross = np.array([[0.0, -axis[2], axis[1]], [axis[2], 0.0, -axis[0]], [-axis[1], axis[0], 0.0]])
    return np.eye(3) + s * cross + (1.0 - c) * (cross @ cross)


def dipole_field(point, moment, position) -> np.ndarray:
    """B (T) at `point` of a point dipole `moment` (A m^2) at `position`."""
    d = np.asarray(point, dtype=float) - np.asarray(position, dtype=float)
    r = math.sqrt(d @ d)
    u = d / r
    return MU0 / (4.0 * math.pi) * (3.0 * (moment @ u) * u - moment) / r**3


def loop_field_local(point, radius: float, current: float) -> np.ndarray:
    """B (T) at `point` (loop frame: centre at the origin, axis z) of a loop (paper eqs. 6-8)."""
    x, y, z = (float(c) for c in point)
    a = radius
    r = math.hypot(x, y)
    if r < AXIS_TOLERANCE * a:
        q = a * a + z * z
        bz = MU0 * current * a * a / (2.0 * q**1.5)
        br_over_r = 3.0 * MU0 * current * a * a * z / (4.0 * q**2.5)
        return np.array([br_over_r * x, br_over_r * y, bz])
    plus = (a + r) ** 2 + z * z
    minus = (a - r) ** 2 + z * z
    m = 4.0 * a * r / plus  # k^2
    k_m = ellipk(m)
    e_m = ellipe(m)
    pref = MU0 * current / (2.0 * math.pi * math.sqrt(plus))
    br = pref * z / r * ((a * a + r * r + z * z) / minus * e_m - k_m)
    bz = pref * ((a * a - r * r - z * z) / minus * e_m + k_m)
    return np.array([br * x / r, br * y / r, bz])


def paper_loop_energy(centres, normals, radii, position, moment, mass: float = 0.0, g: float = G0) -> float:
    """Total energy (J) of a dipole at `position` in the N-loop model: ``sum_i U_i + m g z``.

    **Arguments:**

    - `centres`, `normals`, `radii`: the mesh elements, ``(N, 3)``, ``(N, 3)``, ``(N,)``,
      metres; normals point into the vacuum.
    - `position`: magnet centre ``(3,)`` in the cavity frame (m).
    - `moment`: magnetic moment vector ``(3,)`` (A m^2), e.g. ``sphere_moment(Br, a) * d``.
    - `mass`: magnet mass (kg); 0 (default) gives the magnetic energy alone.
    - `g`: gravitational acceleration along ``-z`` (m / s^2).

    **Returns:** the energy as a Python float.
    """
    centres = np.asarray(centres, dtype=float)
    normals = np.asarray(normals, dtype=float)
    radii = np.asarray(radii, dtype=float)
    p = np.asarray(position, dtype=float)
    mu = np.asarray(moment, dtype=float)
    total = 0.0
    for c, n, rho in zip(centres, normals, radii):
        rot = rotation_to_local(n)  # cavity frame -> element frame
        # the magnet's field at the element centre, in the element frame
        b_m = rot @ dipole_field(c, mu, p)
        current = -b_m[2] * rho / MU0
        # the loop's field at the magnet, in the element frame, rotated back to the cavity frame
        b_loop = rot.T @ loop_field_local(rot @ (p - c), float(rho), current)
        total += -0.5 * float(mu @ b_loop)
    return total + mass * g * float(p[2])


def paper_loop_energies(centres, normals, radii, positions, moment, mass: float = 0.0, g: float = G0) -> np.ndarray:
    """`paper_loop_energy` at every row of `positions` ``(P, 3)``: one Python loop per position."""
    return np.array([paper_loop_energy(centres, normals, radii, p, moment, mass, g) for p in np.asarray(positions, dtype=float)])
