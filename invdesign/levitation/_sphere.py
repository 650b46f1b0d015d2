"""The levitated particle: a small sphere with a perfectly diamagnetic response."""

from __future__ import annotations

import math

import equinox as eqx
import jax.numpy as jnp

from .. import _validate as v
from .._types import BatchScalar, BatchScalarLike

__all__ = ["Sphere"]


class Sphere(eqx.Module):
    """A small sphere treated as a point particle with induced moment ``-k V B / mu0``.

    Its magnetic energy in a field ``B`` is ``k V |B|^2 / (2 mu0)`` with ``V = 4/3 pi R^3``:

    - ``k = 1``: the perfect diamagnet ``chi = -1`` of the paper (eq. 9);
    - ``k = 3/2``: a superconducting sphere in the Meissner state (a perfect diamagnet with
      the demagnetising factor ``1/3`` of a sphere, moment ``-2 pi R^3 B / mu0``).

    **Arguments:**

    - `radius`: sphere radius ``R > 0`` in metres.
    - `mass`: mass ``> 0`` in kilograms.
    - `k`: response factor ``> 0`` (dimensionless), default 1.

    All fields are JAX arrays (scalars, or equal-shaped batches to `vmap` over), so
    derivatives with respect to the sphere's parameters are available.

    ```python
    >>> s = Sphere(radius=0.5e-6, mass=4.487e-15)
    >>> float(s.volume)
    5.235987755982...e-19
    ```
    """

    radius: BatchScalar
    mass: BatchScalar
    k: BatchScalar

    def __init__(self, radius: BatchScalarLike, mass: BatchScalarLike, k: BatchScalarLike = 1.0):
        v.check_positive("radius", radius)
        v.check_positive("mass", mass)
        v.check_positive("k", k)
        self.radius = jnp.asarray(radius, dtype=float)
        self.mass = jnp.asarray(mass, dtype=float)
        self.k = jnp.asarray(k, dtype=float)

    @property
    def volume(self) -> BatchScalar:
        """Volume ``4/3 pi R^3`` in m^3."""
        return (4.0 * math.pi / 3.0) * self.radius**3
