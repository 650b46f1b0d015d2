"""Geometry of the superconducting stub cavity and signed distances to meshed surfaces.

`CoaxialCavity` is the paper's coaxial quarter-wave stub cavity (axis z, floor at z = 0);
its `clearance` is the exact signed distance of a point to the nearest metal surface.
`_mesh_distance` serves models without such a geometry: the signed plane distance to the
nearby elements of a `Mesh`. The model-level checks built on these (`clearance`,
`check_position`) live with the model interface in `_model.py`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from .. import _validate as v
from .._types import BatchScalar, Scalar, ScalarLike, Vec3Like

if TYPE_CHECKING:
    from ._mesh import Mesh

__all__ = ["CoaxialCavity"]

Profile = Float[Array, "vertices 2"]
"""A meridian polyline: vertices ``(r, z)`` (m) in the half plane ``r >= 0``."""

ProfileLike = Float[ArrayLike, "vertices 2"]
"""A meridian polyline as input (nested lists or an array of vertices ``(r, z)``)."""


class CoaxialCavity(eqx.Module):
    """A coaxial quarter-wave stub cavity (axis z, floor at z = 0, open at z = height).

    Surfaces: stub top (disc ``r <= stub_radius`` at ``z = stub_height``), stub wall
    (``r = stub_radius``, ``0 <= z <= stub_height``), floor (annulus ``stub_radius <= r <=
    radius`` at ``z = 0``) and outer wall (``r = radius``, ``0 <= z <= height``). Lengths in
    metres; the defaults are the paper's (R = 7 mm, H = 55 mm, r_stub = 2 mm, h_stub = 5 mm).

    ```python
    >>> cav = CoaxialCavity(radius=5e-3)
    >>> cav.contains([0.0, 3e-3, 2e-3]), cav.contains([0.0, 1e-3, 2e-3])  # gap, inside stub
    (True, False)
    ```
    """

    radius: Scalar
    height: Scalar
    stub_radius: Scalar
    stub_height: Scalar

    def __init__(self, radius: ScalarLike = 7e-3, height: ScalarLike = 55e-3, stub_radius: ScalarLike = 2e-3,
                 stub_height: ScalarLike = 5e-3):
        for name, val in (("radius", radius), ("height", height), ("stub_radius", stub_radius), ("stub_height", stub_height)):
            v.check_positive(name, val)
        if v.is_concrete(radius, stub_radius, height, stub_height):
            if float(stub_radius) >= float(radius):
                raise ValueError(
                    f"stub_radius must be smaller than the cavity radius: stub_radius = {float(stub_radius):g} m "
                    f">= radius = {float(radius):g} m"
                )
            if float(stub_height) >= float(height):
                raise ValueError(
                    f"stub_height must be below the cavity height: stub_height = {float(stub_height):g} m "
                    f">= height = {float(height):g} m"
                )
        self.radius = jnp.asarray(radius, dtype=float)
        self.height = jnp.asarray(height, dtype=float)
        self.stub_radius = jnp.asarray(stub_radius, dtype=float)
        self.stub_height = jnp.asarray(stub_height, dtype=float)

    def profiles(self) -> tuple[list[Profile], tuple[str, ...]]:
        """Meridian polylines and names of the four surfaces."""
        R, H, rs, hs = self.radius, self.height, self.stub_radius, self.stub_height
        z0 = jnp.zeros(())
        prof = [
            jnp.stack([jnp.stack([z0, hs]), jnp.stack([rs, hs])]),
            jnp.stack([jnp.stack([rs, hs]), jnp.stack([rs, z0])]),
            jnp.stack([jnp.stack([rs, z0]), jnp.stack([R, z0])]),
            jnp.stack([jnp.stack([R, z0]), jnp.stack([R, H])]),
        ]
        return prof, ("stub_top", "stub_wall", "floor", "outer_wall")

    def clearance(self, position: Vec3Like) -> BatchScalar:
        """Signed distance (m) from a point to the nearest metal surface; negative inside metal.

        The region above the open top (``z > height``) counts as inside the cavity.
        """
        p = jnp.asarray(position, dtype=float)
        r = jnp.hypot(p[..., 0], p[..., 1])
        z = p[..., 2]
        R, rs, hs = self.radius, self.stub_radius, self.stub_height
        # distance to the stub (a solid cylinder r <= rs, z <= hs, unbounded below)
        dr = r - rs
        dzs = z - hs
        outside_stub = jnp.where(
            (dr > 0) & (dzs > 0), jnp.hypot(dr, dzs), jnp.where(dr > 0, dr, jnp.where(dzs > 0, dzs, jnp.maximum(dr, dzs)))
        )
        d_floor = z
        d_wall = R - r
        return jnp.minimum(jnp.minimum(outside_stub, d_floor), d_wall)

    def contains(self, position: Vec3Like, margin: ScalarLike = 0.0) -> bool:
        """True if a sphere of radius `margin` at `position` lies in the vacuum."""
        return bool(np.all(np.asarray(self.clearance(position)) >= margin))


def _mesh_distance(mesh: Mesh, points):
    """Signed plane distance to the nearby elements (negative behind the surface)."""
    p = jnp.asarray(points, dtype=float)
    e = p[..., None, :] - mesh.centre
    dist = jnp.linalg.norm(e, axis=-1)
    plane = jnp.sum(e * mesh.normal, axis=-1)
    dmin = jnp.min(dist, axis=-1, keepdims=True)
    near = dist <= dmin + 2.0 * mesh.radius
    return jnp.min(jnp.where(near, plane, jnp.inf), axis=-1)
