"""The chip trap geometries and particles of the paper (Sec. 5, after Gutierrez Latorre et al.)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from .. import _validate as v
from .._types import ScalarLike
from ..fields import Loops
from ._sphere import Sphere

__all__ = ["anti_helmholtz_trap", "concentric_trap", "anti_helmholtz_sphere", "concentric_sphere"]


def anti_helmholtz_trap(current: ScalarLike = 0.030, radius: ScalarLike = 1e-6, separation: ScalarLike = 1e-6,
                        current_top: ScalarLike | None = None) -> Loops:
    """Two coaxial loops at ``z = -separation/2`` and ``+separation/2`` with opposite currents.

    Paper Sec. 5.1: 2 um diameter loops 1 um apart, 30 mA; the field vanishes at the centre
    and grows linearly, ``B^2 ~ G^2 (z^2 + r^2/4)``.

    **Arguments:** `current` (A; the lower loop carries ``+current`` about ``+z``, the upper
    ``-current``, or ``-current_top`` when that is given), `radius` (m, > 0), `separation`
    (m, > 0). Traceable (jit/vmap).

    **Returns:** a `Loops` of shape ``(2,)``.

    ```python
    >>> trap = anti_helmholtz_trap()
    >>> trap.center[:, 2]
    Array([-5.e-07,  5.e-07], dtype=float64)
    ```
    """
    v.check_finite("current", current)
    v.check_positive("radius", radius)
    v.check_positive("separation", separation)
    current = jnp.asarray(current, dtype=float)
    top = current if current_top is None else jnp.asarray(current_top, dtype=float)
    v.check_finite("current_top", top)
    half = 0.5 * jnp.asarray(separation, dtype=float)
    zero = jnp.zeros_like(half)
    center = jnp.stack([jnp.stack([zero, zero, -half]), jnp.stack([zero, zero, half])])
    return Loops(radius=jnp.stack([radius, radius]).astype(float), current=jnp.stack([current, -top]),
                 center=center, normal=jnp.array([0.0, 0.0, 1.0]))


def concentric_trap(current: ScalarLike = 0.038, inner_radius: ScalarLike = 6e-6, outer_radius: ScalarLike = 9e-6,
                    current_outer: ScalarLike | None = None) -> Loops:
    """Two concentric loops in the plane ``z = 0`` with opposite currents.

    Paper Sec. 5.2: diameters 12 um and 18 um, 38 mA.

    **Arguments:** `current` (A; inner loop ``+current`` about ``+z``, outer ``-current``, or
    ``-current_outer`` when that is given), `inner_radius` < `outer_radius` (m, > 0).
    Traceable (jit/vmap).

    **Returns:** a `Loops` of shape ``(2,)``.
    """
    v.check_finite("current", current)
    v.check_positive("inner_radius", inner_radius)
    v.check_positive("outer_radius", outer_radius)
    if v.is_concrete(inner_radius, outer_radius) and not np.all(np.asarray(inner_radius) < np.asarray(outer_radius)):
        raise ValueError(f"inner_radius must be < outer_radius, got {inner_radius} and {outer_radius}")
    current = jnp.asarray(current, dtype=float)
    outer = current if current_outer is None else jnp.asarray(current_outer, dtype=float)
    v.check_finite("current_outer", outer)
    radius = jnp.stack([jnp.asarray(inner_radius, dtype=float), jnp.asarray(outer_radius, dtype=float)])
    return Loops(radius=radius, current=jnp.stack([current, -outer]), center=jnp.zeros(3),
                 normal=jnp.array([0.0, 0.0, 1.0]))


def anti_helmholtz_sphere(k: ScalarLike = 1.0) -> Sphere:
    """The paper's particle for the anti-Helmholtz trap: radius 0.5 um, mass 4.487e-15 kg."""
    return Sphere(radius=0.5e-6, mass=4.487e-15, k=k)


def concentric_sphere(k: ScalarLike = 1.0) -> Sphere:
    """The paper's particle for the concentric trap: radius 5 um, mass 4.487e-12 kg."""
    return Sphere(radius=5e-6, mass=4.487e-12, k=k)
