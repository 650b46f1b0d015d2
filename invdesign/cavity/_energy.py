"""The total energy of a magnet in a cavity, and the compiled derivatives the analyses share.

``U = response * U_mag + m g (up . x)``: the superconductor's response (scaled by an
effective factor, 1 = ideal) plus gravity, with ``up = up_vector(tilt)``. `total_energy` is
the one place this sum is written (through `_with_gravity`, which the orientation-relaxed
energy shares); the landscape, frequency and calibration modules use the jit-compiled
values, gradients and Hessians below, compiled once per model structure and mesh size and
shared by all calls.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp

from .._types import Point3Like, Scalar, ScalarLike
from ._magnets import Magnet, gravity_energy
from .. import _validate as v
from ._model import CavityModel, check_direction, check_magnet, check_position

__all__ = ["total_energy"]


def _with_gravity(u_mag, magnet, position, tilt, response):
    """``response * u_mag + m g (up . x)`` (J) for a magnetic energy `u_mag` at `position`."""
    return response * u_mag + gravity_energy(magnet, position, tilt)


def total_energy(model: CavityModel, magnet: Magnet, position: Point3Like, direction: Point3Like, *,
                 tilt: ScalarLike = jnp.pi / 2, response: ScalarLike = 1.0) -> Scalar:
    """Total energy ``response * U_mag + m g (up . x)`` (J).

    **Arguments:**

    - `model`: one of the four response models.
    - `magnet`: `SphereMagnet` or `DiskMagnet`.
    - `position`: magnet centre (m) in the cavity frame.
    - `direction`: moment direction (normalised here), e.g. `moment_direction(beta, gamma)`.
    - `tilt`: elevation of the cavity axis above the horizontal (radians; pi/2 upright).
    - `response`: effective response factor multiplying the superconductor's response
      (1 = ideal; see `calibrate_response`).

    Raises ValueError (when called with concrete values) naming the argument: `position` if
    the magnet does not fit there (inside a wall or the stub, below the floor, touching a
    surface), `direction` unless a finite nonzero 3-vector, `tilt` unless finite, `response`
    unless finite and > 0; TypeError naming `magnet` for anything but a magnet. Inside
    `jit`/`grad` these checks are skipped (the package's solvers evaluate trial points and
    reject them by `clearance`).
    """
    check_pose_args(magnet, direction, tilt, response)
    check_position(model, magnet, position)
    return _with_gravity(model.magnetic_energy(magnet, position, direction), magnet, position, tilt, response)


def _total(model, magnet, x, d, tilt, response):
    return total_energy(model, magnet, x, d, tilt=tilt, response=response)


def _magnetic(model, magnet, x, d):
    return model.magnetic_energy(magnet, x, d)


# compiled once per model structure and mesh size, shared by all calls
_total_grad = eqx.filter_jit(jax.grad(_total, argnums=2))
_total_hess = eqx.filter_jit(jax.hessian(_total, argnums=2))


@eqx.filter_jit
def _total_grad_batch(model, magnet, xs, d, tilt, response):
    g = jax.grad(_total, argnums=2)
    return jax.lax.map(lambda x: g(model, magnet, x, d, tilt, response), xs, batch_size=8)


_magnetic_grad = eqx.filter_jit(jax.grad(_magnetic, argnums=2))
_magnetic_hess = eqx.filter_jit(jax.hessian(_magnetic, argnums=2))


@eqx.filter_jit
def _energies(model, magnet, pts, d):
    return model.magnetic_energies(magnet, pts, d)


def _relaxed_total(model, magnet, x, tilt, response):
    w = model.response_tensor(magnet, x)
    return _with_gravity(jnp.linalg.eigvalsh(w)[0], magnet, x, tilt, response)


_relaxed_hess = eqx.filter_jit(jax.hessian(_relaxed_total, argnums=2))


def check_pose_args(magnet, direction, tilt, response, response_name: str = "response") -> None:
    """Eager checks shared by the energy, landscape and frequency functions.

    TypeError naming `magnet` unless a magnet; ValueError naming `direction` unless finite
    nonzero 3-vectors, `tilt` unless finite, `response` (or `response_name`) unless finite
    and > 0. Traced values pass unchecked.
    """
    check_magnet(magnet)
    check_direction(direction)
    v.check_finite("tilt", v.as_float("tilt", tilt))
    v.check_positive(response_name, v.as_float(response_name, response))


def _args(direction, tilt, response):
    return jnp.asarray(direction, dtype=float), jnp.asarray(tilt, dtype=float), jnp.asarray(response, dtype=float)
