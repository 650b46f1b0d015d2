"""Energy of a perfectly diamagnetic sphere in the field of current loops, and its derivatives.

With gravity along ``-z`` the energy of the point-particle sphere at ``x`` is

    U(x) = m g z + k V |B(x)|^2 / (2 mu0),

so the force is ``-grad U`` and the stiffness matrix is the Hessian of ``U``. Gravity is
linear in ``x``: the Hessian of ``U`` is ``k V / (2 mu0)`` times the Hessian of ``|B|^2``.

A note on the paper's stability condition (eq. 11, ``lap |B|^2 > 0``): in a current-free
region every Cartesian component of ``B`` is harmonic, hence
``lap |B|^2 = 2 sum_ij (d_i B_j)^2 >= 0`` identically. The Laplacian condition is necessary
for a minimum of ``U`` but never fails (except where the field gradient vanishes), so a
stable equilibrium needs the full Hessian to be positive definite (see `trap_modes`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .. import _validate as v
from .._types import BatchScalar, Mat3, ScalarLike, Vec3, Vec3Like
from ..constants import G0, MU0
from ..fields import Loops
from ._sphere import Sphere

__all__ = [
    "b_squared",
    "hessian_b2",
    "laplacian_b2",
    "energy",
    "force",
    "energy_hessian",
    "check_position",
]


# ----------------------------------------------------------------------------- validation


def check_types(loops, sphere=None) -> None:
    """TypeError unless `loops` is a `Loops` (and `sphere` a `Sphere`)."""
    if not isinstance(loops, Loops):
        raise TypeError(f"loops must be an invdesign.fields.Loops, got {type(loops).__name__}")
    if sphere is not None and not isinstance(sphere, Sphere):
        raise TypeError(f"sphere must be an invdesign.levitation.Sphere, got {type(sphere).__name__}")


def check_g(g) -> None:
    """Raise TypeError/ValueError naming `g` unless it is a finite real scalar (0 = no gravity)."""
    v.check_finite("g", v.as_float("g", g))


def check_position(name: str, x, loops: Loops, sphere: Sphere | None = None) -> None:
    """Raise ValueError if `x` is not finite ``(..., 3)`` or the sphere there overlaps a wire.

    With a `sphere` a position is allowed when the distance from the sphere centre to every
    wire is at least the sphere radius; without one, only points exactly on a wire are
    rejected. The check runs only on concrete values (skipped inside `jit`/`grad` traces).
    """
    v.check_vectors(name, x)
    if not v.is_concrete(x, loops, sphere):
        return
    d = np.asarray(loops.distance_to_wire(jnp.asarray(x, dtype=float)))
    reach = 0.0 if sphere is None else float(np.max(np.asarray(sphere.radius)))
    bad = d <= 0.0 if sphere is None else d < reach
    if np.any(bad):
        i = np.unravel_index(np.argmax(bad), d.shape) if d.ndim else ()
        xi = np.asarray(x, dtype=float)[i]
        what = (f"the sphere (radius {reach:.4g} m) overlaps a wire: the distance from its "
                f"centre to the nearest wire is {float(d[i]):.4g} m < {reach:.4g} m")
        if sphere is None:
            what = "the point lies on a wire, where the field is infinite"
        raise ValueError(f"{name} = {xi.tolist()} is not allowed: {what} "
                         f"(allowed: distance to every wire >= {'the sphere radius' if sphere is not None else '> 0'})")


# ----------------------------------------------------------------------------- pure kernels


def _b2(x, loops):
    b = loops.field(x)
    return jnp.sum(b * b, axis=-1)


def _energy(x, loops, sphere, g):
    mag = sphere.k * sphere.volume / (2.0 * MU0)
    return sphere.mass * g * x[..., 2] + mag * _b2(x, loops)


def _grad_point(x, loops, sphere, g):
    return jax.grad(_energy)(x, loops, sphere, g)


def _hess_b2_point(x, loops):
    return jax.hessian(_b2)(x, loops)


def _vec(fn, signature):
    """Vectorise a point function of ``x`` over leading axes of ``x`` (other args closed over)."""

    def wrapped(x, *args):
        return jnp.vectorize(lambda p: fn(p, *args), signature=signature)(x)

    return wrapped


_energy_grad = _vec(_grad_point, "(3)->(3)")
_b2_hess = _vec(_hess_b2_point, "(3)->(3,3)")


def _as_points(x):
    return jnp.asarray(x, dtype=float)


# jitted entry points for the public functions (inlined when called under an outer trace)
_b2_jit = jax.jit(_b2)
_b2_hess_jit = jax.jit(_b2_hess)
_energy_jit = jax.jit(_energy)
_energy_grad_jit = jax.jit(_energy_grad)


# ----------------------------------------------------------------------------- public API


def b_squared(x: Vec3Like, loops: Loops) -> BatchScalar:
    """``|B|^2`` in T^2 of the loops at points `x` ``(..., 3)`` (m).

    ```python
    >>> from invdesign.levitation import anti_helmholtz_trap
    >>> float(b_squared(jnp.zeros(3), anti_helmholtz_trap()))  # field zero at the centre
    0.0
    ```
    """
    check_types(loops)
    check_position("x", x, loops)
    return _b2_jit(_as_points(x), loops)


def hessian_b2(x: Vec3Like, loops: Loops) -> Mat3:
    """Hessian of ``|B|^2`` (T^2/m^2) at points `x` ``(..., 3)``, shape ``(..., 3, 3)``."""
    check_types(loops)
    check_position("x", x, loops)
    return _b2_hess_jit(_as_points(x), loops)


def laplacian_b2(x: Vec3Like, loops: Loops) -> BatchScalar:
    """Laplacian of ``|B|^2`` (T^2/m^2), the left side of the paper's eq. 11.

    **Arguments:**

    - `x`: points ``(..., 3)`` in metres (not on a wire).
    - `loops`: the current loops (`invdesign.fields.Loops`).

    **Returns:** ``lap |B|^2`` with shape ``x.shape[:-1]``: the trace of the Hessian of
    ``|B|^2``. In a current-free region it equals ``2 sum_ij (dB_j/dx_i)^2 >= 0``; on the
    axis of coaxial loops with axial field ``b(z)`` it is ``3 b'(z)^2``.

    ```python
    >>> from invdesign.levitation import anti_helmholtz_trap
    >>> lap = laplacian_b2(jnp.zeros(3), anti_helmholtz_trap())  # 3 G^2 at the centre
    ```
    """
    return jnp.trace(hessian_b2(x, loops), axis1=-2, axis2=-1)


def energy(x: Vec3Like, loops: Loops, sphere: Sphere, g: ScalarLike = G0) -> BatchScalar:
    """Energy ``U = m g z + k V |B|^2 / (2 mu0)`` (J) of the sphere centred at `x`.

    **Arguments:**

    - `x`: sphere centre(s) ``(..., 3)`` in metres; gravity points along ``-z``.
    - `loops`: the current loops.
    - `sphere`: the particle (`Sphere`: radius, mass, response factor k).
    - `g`: gravitational acceleration in m/s^2 (default `G0`; 0 switches gravity off).

    **Returns:** U in joules, shape ``x.shape[:-1]``. Raises ValueError (naming `x`) for
    non-finite positions or a sphere overlapping a wire when called with concrete values.
    Pure JAX: differentiable w.r.t. `x`, the `Loops` pytree and the `Sphere`.

    ```python
    >>> from invdesign.levitation import anti_helmholtz_trap, anti_helmholtz_sphere
    >>> U = energy(jnp.zeros(3), anti_helmholtz_trap(), anti_helmholtz_sphere())
    ```
    """
    check_types(loops, sphere)
    check_position("x", x, loops, sphere)
    check_g(g)
    return _energy_jit(_as_points(x), loops, sphere, g)


def force(x: Vec3Like, loops: Loops, sphere: Sphere, g: ScalarLike = G0) -> Vec3:
    """Total force ``-grad U`` (N) on the sphere at `x` ``(..., 3)`` (gravity included).

    The magnetic part alone is ``force(x, loops, sphere, g=0.0)``. Same arguments and
    checks as `energy`; returns shape ``x.shape``.
    """
    check_types(loops, sphere)
    check_position("x", x, loops, sphere)
    check_g(g)
    return -_energy_grad_jit(_as_points(x), loops, sphere, g)


def energy_hessian(x: Vec3Like, loops: Loops, sphere: Sphere, g: ScalarLike = G0) -> Mat3:
    """Hessian of the energy (stiffness matrix, N/m) at `x` ``(..., 3)``: shape ``(..., 3, 3)``.

    Equal to ``k V / (2 mu0)`` times the Hessian of ``|B|^2`` (gravity is linear). Same
    arguments and checks as `energy`.
    """
    check_types(loops, sphere)
    check_position("x", x, loops, sphere)
    check_g(g)
    coef = sphere.k * sphere.volume / (2.0 * MU0)
    return coef * _b2_hess_jit(_as_points(x), loops)
