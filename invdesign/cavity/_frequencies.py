"""Small-oscillation frequencies of a levitated magnet's centre of mass.

The stiffness is the Hessian of `total_energy` with respect to the position (automatic
differentiation); the frequencies are signed, ``sign(k) sqrt(|k| / m) / (2 pi)``
(`signed_frequency`): a negative value marks an unstable direction.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from .._mechanics import signed_frequency
from .._types import Point3Like, Scalar, ScalarLike
from ._energy import _args, _relaxed_hess, _total_hess, check_pose_args
from ._magnets import Magnet
from ._model import CavityModel, check_position

__all__ = ["frequency_summary", "mechanical_frequencies"]

StiffnessLike = Float[ArrayLike, "3 3"]
"""A 3x3 stiffness matrix (Hessian of the energy in position, N/m)."""

Eigenfrequencies = Float[Array, "3"]
"""Three signed frequencies (Hz), ascending."""


def frequency_summary(hessian: StiffnessLike, mass: ScalarLike,
                      position: Point3Like) -> dict[str, Scalar | Eigenfrequencies]:
    """Signed frequencies (Hz) of a 3x3 stiffness `hessian` (N/m) for a `mass` (kg) at `position`.

    Pure JAX (works under `jit`, `grad`, `vmap`). **Returns:** dict with ``eigenfrequencies``
    (3,), ascending, from the eigenvalues of the symmetrised Hessian, and ``f_r``, ``f_phi``,
    ``f_z``, the frequencies along the cylindrical directions of the cavity at `position`
    (``e_r`` = x for a position on the axis).
    """
    h = jnp.asarray(hessian, dtype=float)
    h = 0.5 * (h + h.T)
    p = jnp.asarray(position, dtype=float)
    r = jnp.sqrt(p[0] ** 2 + p[1] ** 2)
    on_axis = r <= 0
    r_safe = jnp.where(on_axis, 1.0, r)
    e_r = jnp.where(on_axis, jnp.array([1.0, 0.0, 0.0]), jnp.stack([p[0] / r_safe, p[1] / r_safe, jnp.zeros(())]))
    e_phi = jnp.stack([-e_r[1], e_r[0], jnp.zeros(())])
    e_z = jnp.array([0.0, 0.0, 1.0])

    def along(e):
        return signed_frequency(e @ h @ e, mass)

    return dict(eigenfrequencies=signed_frequency(jnp.linalg.eigvalsh(h), mass), f_r=along(e_r),
                f_phi=along(e_phi), f_z=along(e_z))


def mechanical_frequencies(model: CavityModel, magnet: Magnet, position: Point3Like, direction: Point3Like, *,
                           tilt: ScalarLike = math.pi / 2, response: ScalarLike = 1.0,
                           relax_orientation: bool = False) -> dict[str, np.ndarray | float]:
    """Small-oscillation frequencies (Hz) of the magnet's centre of mass at an equilibrium.

    The Hessian of the total energy with respect to the position is taken by automatic
    differentiation. With `relax_orientation` the moment follows the lowest-energy direction
    at every position (the energy is the smallest eigenvalue of the response tensor; dipole
    magnets only); otherwise the moment direction is fixed in the cavity frame.

    **Returns:** dict with ``hessian`` (3x3, N/m), ``eigenfrequencies`` and ``modes``
    (ascending; negative frequency = unstable direction), and ``f_r``, ``f_phi``, ``f_z``,
    the frequencies along the cylindrical directions of the cavity at `position`.
    """
    check_pose_args(magnet, direction, tilt, response)
    check_position(model, magnet, position)
    p = jnp.asarray(position, dtype=float)
    d, t, r = _args(direction, tilt, response)
    if relax_orientation:
        h = np.asarray(_relaxed_hess(model, magnet, p, t, r))
    else:
        h = np.asarray(_total_hess(model, magnet, p, d, t, r))
    h = 0.5 * (h + h.T)
    summary = {k: np.asarray(v) for k, v in frequency_summary(h, magnet.mass, p).items()}
    modes = np.linalg.eigh(h)[1]
    return dict(hessian=h, modes=modes, eigenfrequencies=summary["eigenfrequencies"],
                **{k: float(summary[k]) for k in ("f_r", "f_phi", "f_z")})
