"""Permanent magnets levitated in superconducting cavities: sphere (dipole) and disk (solenoid).

Orientation follows the paper (Fig. 1b): the moment starts along +z and is rotated by
``beta`` about the y axis, then by ``gamma`` about the x axis,

    d(beta, gamma) = R_x(gamma) R_y(beta) z = (sin b, -sin g cos b, cos g cos b),

so ``beta = 90 deg, gamma = 0`` points along +x (azimuthal about the cavity axis for a magnet
in the y-z plane) and ``beta = 0`` sweeps the moment in the y-z plane with ``gamma``.

Gravity follows a tilt of the cavity: `up_vector(tilt)` is the laboratory "up" in the
cavity frame for a cavity whose axis is raised `tilt` above the horizontal about the x axis
(``tilt = 90 deg``: upright; the paper's Fig. 8 cavity lies on its side raised by 10 deg).
"""

from __future__ import annotations

import math

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .. import _validate as v
from .._types import BatchScalar, BatchScalarLike, Point3Like, Scalar, ScalarLike, Vec3, Vec3Like
from ..constants import G0, MU0
from ..fields import dipole_field, loop_field
from ._quadrature import _disc_rule

__all__ = [
    "GRADES",
    "PAPER_DISK",
    "PAPER_SPHERE",
    "DiskMagnet",
    "SphereMagnet",
    "gravity_energy",
    "moment_direction",
    "up_vector",
]

VolumePoints = Float[Array, "q 3"]
"""Points of a ``q``-point volume rule over a magnet."""

VolumeWeights = Float[Array, " q"]
"""Weights of a volume rule (summing to 1)."""

GRADES = {"N35": 1.22, "N42": 1.35, "N50": 1.44, "N52": 1.47}
"""Remanence Br (T) of the paper's magnet grades (Table 1)."""


def moment_direction(beta: BatchScalarLike, gamma: BatchScalarLike) -> Vec3:
    """Unit moment direction for the paper's angles (radians): ``R_x(gamma) R_y(beta) z``.

    ```python
    >>> [round(float(c), 12) + 0.0 for c in moment_direction(jnp.pi / 2, 0.0)]
    [1.0, 0.0, 0.0]
    ```
    """
    b = jnp.asarray(beta, dtype=float)
    g = jnp.asarray(gamma, dtype=float)
    return jnp.stack([jnp.sin(b), -jnp.sin(g) * jnp.cos(b), jnp.cos(g) * jnp.cos(b)], axis=-1)


def up_vector(tilt: BatchScalarLike) -> Vec3:
    """Laboratory up direction in the cavity frame; `tilt` (radians) = axis elevation.

    ``(0, cos tilt, sin tilt)``: upright for ``tilt = pi/2``; lying on its side with the +y
    wall up for ``tilt = 0``.
    """
    t = jnp.asarray(tilt, dtype=float)
    return jnp.stack([jnp.zeros_like(t), jnp.cos(t), jnp.sin(t)], axis=-1)


def _unit(direction):
    d = jnp.asarray(direction, dtype=float)
    return d / jnp.linalg.norm(d, axis=-1, keepdims=True)


class SphereMagnet(eqx.Module):
    """A uniformly magnetised sphere: outside it, exactly a point dipole of moment Br V / mu0.

    **Arguments:**

    - `radius`: sphere radius (m), > 0.
    - `mass`: mass (kg), > 0.
    - `remanence`: Br (T), > 0 (a grade name from `GRADES` also works).

    ```python
    >>> s = SphereMagnet(radius=0.5e-3, mass=3.67e-6, remanence="N52")
    >>> round(float(s.moment) * 1e4, 4)  # A m^2 x 1e4
    6.125
    ```
    """

    radius: Scalar
    mass: Scalar
    remanence: Scalar

    def __init__(self, radius: ScalarLike = 0.5e-3, mass: ScalarLike = 3.67e-6, remanence: ScalarLike | str = 1.47):
        if isinstance(remanence, str):
            remanence = _grade(remanence)
        v.check_positive("radius", radius)
        v.check_positive("mass", mass)
        v.check_positive("remanence", remanence)
        self.radius = jnp.asarray(radius, dtype=float)
        self.mass = jnp.asarray(mass, dtype=float)
        self.remanence = jnp.asarray(remanence, dtype=float)

    @property
    def volume(self) -> Scalar:
        return 4.0 / 3.0 * jnp.pi * self.radius**3

    @property
    def moment(self) -> Scalar:
        """|mu| = Br V / mu0 (A m^2)."""
        return self.remanence * self.volume / MU0

    @property
    def extent(self) -> Scalar:
        """Radius of the smallest sphere about the centre that holds the magnet (m)."""
        return self.radius

    def field(self, points: Vec3Like, position: Point3Like, direction: Point3Like) -> Vec3:
        """B (T) at `points` ``(..., 3)`` outside the sphere (the dipole field)."""
        return dipole_field(points, self.moment * _unit(direction), position)

    def quadrature(self, position: Point3Like, direction: Point3Like) -> tuple[VolumePoints, VolumeWeights]:
        """Points and weights (summing to 1) for volume averages over the magnet.

        A single point at the centre: the average of a field that is harmonic inside the
        sphere equals its value at the centre (mean-value property), so the interaction
        ``-int M . B dV = -mu . B(centre)`` is exact for fields with sources outside.
        """
        return jnp.asarray(position, dtype=float)[None, :], jnp.ones(1)


class DiskMagnet(eqx.Module):
    """An axially magnetised cylinder (disk), modelled as a solenoid current sheet.

    The surface current ``K = M = Br / mu0`` on the side is represented by `n_loops` loops at
    Gauss-Legendre heights, each carrying ``M t w_k / 2`` (``w_k`` the weights on [-1, 1]).

    **Arguments:**

    - `radius`, `thickness`: dimensions (m), > 0.
    - `mass`: kg, > 0.
    - `remanence`: Br (T) or a grade name.
    - `n_loops`: number of Gauss-Legendre loops, an integer >= 1 (static, default 12).

    ```python
    >>> d = DiskMagnet(radius=0.5e-3, thickness=0.5e-3, mass=2.75e-6, remanence="N52")
    >>> round(float(d.volume) * 1e9, 6)  # mm^3
    0.392699
    ```
    """

    radius: Scalar
    thickness: Scalar
    mass: Scalar
    remanence: Scalar
    n_loops: int = eqx.field(static=True, default=12)

    def __init__(self, radius: ScalarLike = 0.5e-3, thickness: ScalarLike = 0.5e-3, mass: ScalarLike = 2.75e-6,
                 remanence: ScalarLike | str = 1.47, n_loops: int = 12):
        if isinstance(remanence, str):
            remanence = _grade(remanence)
        for name, val in (("radius", radius), ("thickness", thickness), ("mass", mass), ("remanence", remanence)):
            v.check_positive(name, val)
        n_loops = v.check_int("n_loops", n_loops, 1)
        self.radius = jnp.asarray(radius, dtype=float)
        self.thickness = jnp.asarray(thickness, dtype=float)
        self.mass = jnp.asarray(mass, dtype=float)
        self.remanence = jnp.asarray(remanence, dtype=float)
        self.n_loops = int(n_loops)

    @property
    def volume(self) -> Scalar:
        return jnp.pi * self.radius**2 * self.thickness

    @property
    def moment(self) -> Scalar:
        return self.remanence * self.volume / MU0

    @property
    def extent(self) -> Scalar:
        return jnp.hypot(self.radius, 0.5 * self.thickness)

    def _loops(self, position, direction):
        x, w = np.polynomial.legendre.leggauss(self.n_loops)
        d = _unit(direction)
        pos = jnp.asarray(position, dtype=float)
        centres = pos[None, :] + (0.5 * self.thickness * jnp.asarray(x))[:, None] * d[None, :]
        currents = (self.remanence / MU0) * self.thickness * 0.5 * jnp.asarray(w)
        return centres, currents, d

    def field(self, points: Vec3Like, position: Point3Like, direction: Point3Like) -> Vec3:
        """B (T) at `points` ``(..., 3)`` outside the magnet (sum of the solenoid's loops)."""
        centres, currents, d = self._loops(position, direction)
        pts = jnp.asarray(points, dtype=float)
        return loop_field(pts, self.radius, currents, centres, d)

    def quadrature(self, position: Point3Like, direction: Point3Like) -> tuple[VolumePoints, VolumeWeights]:
        """Volume-average points and weights: Gauss-Legendre (3) along the axis x 7-point disc rule."""
        xa, wa = np.polynomial.legendre.leggauss(3)
        rd, td, wd = _disc_rule()
        d = _unit(direction)
        t1 = jnp.cross(d, jnp.where(jnp.abs(d[0]) < 0.9, jnp.array([1.0, 0.0, 0.0]), jnp.array([0.0, 1.0, 0.0])))
        t1 = t1 / jnp.linalg.norm(t1)
        t2 = jnp.cross(d, t1)
        pos = jnp.asarray(position, dtype=float)
        pts, wts = [], []
        for xk, wk in zip(xa, wa):
            for r, t, w in zip(rd, td, wd):
                pts.append(
                    pos + 0.5 * self.thickness * xk * d + self.radius * r * (math.cos(t) * t1 + math.sin(t) * t2)
                )
                wts.append(0.5 * wk * w)
        return jnp.stack(pts), jnp.asarray(wts)


def _grade(name: str) -> float:
    try:
        return GRADES[name]
    except KeyError:
        raise ValueError(f"remanence: unknown grade {name!r}; known grades {sorted(GRADES)} or a value in tesla") from None


PAPER_SPHERE = dict(radius=0.5e-3, mass=3.67e-6)
"""The paper's spherical magnet (Table 1): radius 0.5 mm, 3.67 mg."""

PAPER_DISK = dict(radius=0.5e-3, thickness=0.5e-3, mass=2.75e-6)
"""The paper's disk magnet (Table 1): radius 0.5 mm, thickness 0.5 mm, 2.75 mg."""


Magnet = SphereMagnet | DiskMagnet
"""A levitated magnet: `SphereMagnet` (point dipole) or `DiskMagnet` (solenoid)."""


def gravity_energy(magnet: Magnet, position: Vec3Like, tilt: ScalarLike) -> BatchScalar:
    """m g (up . x), with x measured from the cavity origin."""
    return magnet.mass * G0 * jnp.sum(up_vector(tilt) * jnp.asarray(position, dtype=float), axis=-1)
