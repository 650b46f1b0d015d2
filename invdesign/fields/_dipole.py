"""Field of a point magnetic dipole."""

from __future__ import annotations

import math

import jax.numpy as jnp

from .. import _validate as v
from .._types import Vec3, Vec3Like
from ..constants import MU0

__all__ = ["dipole_field"]


def dipole_field(points: Vec3Like, moment: Vec3Like, position: Vec3Like = (0.0, 0.0, 0.0)) -> Vec3:
    """Magnetic flux density B (T) of point dipoles.

    ``B = mu0 / (4 pi) [3 (m . u) u - m] / |x - x0|^3`` with ``u`` the unit vector from the
    dipole to the point.

    **Arguments:**

    - `points`: observation points ``(..., 3)`` in metres.
    - `moment`: dipole moment(s) in A m^2, ``(3,)`` or broadcastable with `points`.
    - `position`: dipole position(s) in metres, broadcastable with `points`.

    **Returns:** B of shape ``(..., 3)``; ``inf`` at the dipole itself.

    ```python
    >>> B = dipole_field(jnp.array([0.0, 0.0, 1.0]), moment=jnp.array([0.0, 0.0, 1.0]))
    >>> float(B[2])  # mu0 / (2 pi) on the axis at 1 m (CODATA mu0)
    2.00000000108...e-07
    ```
    """
    points = v.as_float("points", points)
    moment = v.as_float("moment", moment)
    position = v.as_float("position", position)
    v.check_vectors("points", points)
    v.check_vectors("moment", moment)
    v.check_vectors("position", position)
    d = points - position
    m = moment
    r2 = jnp.sum(d * d, axis=-1, keepdims=True)
    at = r2 == 0.0
    r2s = jnp.where(at, 1.0, r2)
    r = jnp.sqrt(r2s)
    mdotd = jnp.sum(m * d, axis=-1, keepdims=True)
    b = (MU0 / (4.0 * math.pi)) * (3.0 * mdotd * d / r2s - m) / (r2s * r)
    return jnp.where(at, jnp.inf, b)
