"""Model 1: the mirror image of a dipole in an infinite superconducting plane (paper eqs. 1-3).

``U = mu0 mu^2 (1 + cos^2 theta) / (64 pi h^3)`` at height ``h`` above the plane, with
``theta`` the angle of the moment from the plane's normal.
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp

from .._types import BatchScalar, Scalar, Vec3Like
from ..constants import G0, MU0
from ._magnets import Magnet, _unit
from ._model import CavityModel, _check_energy_call

__all__ = ["ImageModel", "image_height"]


class ImageModel(CavityModel):
    """Dipole above an infinite superconducting plane ``z = plane_height`` (paper eqs. 1-3).

    ```python
    >>> from invdesign.cavity import SphereMagnet
    >>> m = SphereMagnet(remanence=1.47)
    >>> U = ImageModel(0.0).magnetic_energy(m, jnp.array([0.0, 0.0, 1e-3]), jnp.array([0.0, 0.0, 1.0]))
    >>> round(float(U / (MU0 * m.moment**2 / (32 * jnp.pi * 1e-9))), 12)
    1.0
    ```
    """

    plane_height: Scalar = eqx.field(converter=lambda x: jnp.asarray(x, dtype=float), default=0.0)

    def magnetic_energy(self, magnet: Magnet, position: Vec3Like, direction: Vec3Like,
                        normalize: bool = True) -> BatchScalar:
        _check_energy_call(self, magnet, position, direction, normalize)
        m = jnp.asarray(direction, dtype=float)
        m = magnet.moment * (_unit(m) if normalize else m)
        h = jnp.asarray(position, dtype=float)[..., 2] - self.plane_height
        # mu^2 (1 + cos^2) = |m|^2 + m_z^2
        return MU0 * (jnp.sum(m * m, -1) + m[..., 2] ** 2) / (64.0 * jnp.pi * h**3)

    def surface_distance(self, points: Vec3Like) -> BatchScalar:
        return jnp.asarray(points, dtype=float)[..., 2] - self.plane_height


def image_height(magnet: Magnet, orientation: str = "vertical") -> Scalar:
    """Levitation height above an infinite plane (paper eq. 3 for a vertical moment)."""
    c = 2.0 if orientation == "vertical" else 1.0
    return (3.0 * c * MU0 * magnet.moment**2 / (64.0 * jnp.pi * magnet.mass * G0)) ** 0.25
