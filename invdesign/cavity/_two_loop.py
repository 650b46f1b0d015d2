"""Model 2: the stub top as one superconducting loop (paper section II.2).

The loop of radius ``R1`` carries ``I = -B_z R1 / mu0`` (``B_z`` the magnet's field at the
loop centre), and ``U = -mu . B_loop / 2``.
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp

from .._types import BatchScalar, Point3Like, Scalar, Vec3Like
from ..constants import MU0
from ..fields import loop_field
from ._magnets import Magnet, _unit
from ._model import CavityModel, _check_energy_call

__all__ = ["TwoLoopModel"]


class TwoLoopModel(CavityModel):
    """The stub as a single loop of radius `loop_radius` at height `loop_height` (paper II.2)."""

    loop_radius: Scalar = eqx.field(converter=lambda x: jnp.asarray(x, dtype=float), default=2e-3)
    loop_height: Scalar = eqx.field(converter=lambda x: jnp.asarray(x, dtype=float), default=5e-3)

    def magnetic_energy(self, magnet: Magnet, position: Point3Like, direction: Point3Like,
                        normalize: bool = True) -> Scalar:
        _check_energy_call(self, magnet, position, direction, normalize)
        d = jnp.asarray(direction, dtype=float)
        scale = jnp.linalg.norm(d) if not normalize else 1.0
        d_u = _unit(d) if normalize else d / jnp.where(scale > 0, scale, 1.0)
        centre = jnp.stack([jnp.zeros(()), jnp.zeros(()), self.loop_height])
        bz = magnet.field(centre, position, d_u)[2] * scale
        current = -bz * self.loop_radius / MU0
        b = loop_field(position, self.loop_radius, current, centre, jnp.array([0.0, 0.0, 1.0]))
        return -0.5 * magnet.moment * jnp.dot(d_u * scale, b)

    def surface_distance(self, points: Vec3Like) -> BatchScalar:
        return jnp.asarray(points, dtype=float)[..., 2] - self.loop_height
