"""Small-oscillation frequencies of a levitated magnet's centre of mass.

The stiffness is the Hessian of `total_energy` with respect to the position (automatic
differentiation); the frequencies are signed, ``sign(k) sqrt(|k| / m) / (2 pi)``
(`signed_frequency`): a negative value marks an unstable direction.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np

from .._mechanics import signed_frequency
from ._energy import _args, _relaxed_hess, _total_hess
from ._model import check_position

__all__ = ["mechanical_frequencies"]


def mechanical_frequencies(model, magnet, position, direction, *, tilt=math.pi / 2, response=1.0, relax_orientation=False):
    """Small-oscillation frequencies (Hz) of the magnet's centre of mass at an equilibrium.

    The Hessian of the total energy with respect to the position is taken by automatic
    differentiation. With `relax_orientation` the moment follows the lowest-energy direction
    at every position (the energy is the smallest eigenvalue of the response tensor; dipole
    magnets only); otherwise the moment direction is fixed in the cavity frame.

    **Returns:** dict with ``hessian`` (3x3, N/m), ``eigenfrequencies`` and ``modes``
    (ascending; negative frequency = unstable direction), and ``f_r``, ``f_phi``, ``f_z``,
    the frequencies along the cylindrical directions of the cavity at `position`.
    """
    p = jnp.asarray(position, dtype=float)
    check_position(model, magnet, p)
    d, t, r = _args(direction, tilt, response)
    if relax_orientation:
        h = np.asarray(_relaxed_hess(model, magnet, p, t, r))
    else:
        h = np.asarray(_total_hess(model, magnet, p, d, t, r))
    h = 0.5 * (h + h.T)
    m = float(magnet.mass)
    w, vecs = np.linalg.eigh(h)
    f = np.asarray(signed_frequency(w, m))
    r = math.hypot(float(p[0]), float(p[1]))
    e_r = np.array([float(p[0]) / r, float(p[1]) / r, 0.0]) if r > 0 else np.array([1.0, 0.0, 0.0])
    e_phi = np.array([-e_r[1], e_r[0], 0.0])
    e_z = np.array([0.0, 0.0, 1.0])

    def along(e):
        return float(signed_frequency(float(e @ h @ e), m))

    return dict(hessian=h, eigenfrequencies=f, modes=vecs, f_r=along(e_r), f_phi=along(e_phi), f_z=along(e_z))
