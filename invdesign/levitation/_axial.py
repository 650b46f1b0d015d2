"""Stable equilibrium on the axis of an axisymmetric (coaxial-loop) trap."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from .. import _validate as v
from .._types import Scalar, ScalarBool, ScalarLike
from ..constants import G0, MU0
from ..fields import Loops
from ._energy import check_g, check_types
from ._sphere import Sphere

__all__ = ["axial_equilibrium", "axis_field", "axis_stiffness", "check_coaxial"]


def check_coaxial(loops: Loops, name: str = "loops") -> None:
    """ValueError unless all loops have their centre on the z axis and their normal along z."""
    if not v.is_concrete(loops):
        return
    n = np.asarray(loops.normal, dtype=float).reshape(-1, 3)
    c = np.asarray(loops.center, dtype=float).reshape(-1, 3)
    a = np.asarray(loops.radius, dtype=float).reshape(-1)
    tilted = np.hypot(n[:, 0], n[:, 1]) > 1e-12 * np.linalg.norm(n, axis=1)
    shifted = np.hypot(c[:, 0], c[:, 1]) > 1e-12 * np.broadcast_to(a, c.shape[:1])
    if np.any(tilted | shifted):
        raise ValueError(f"{name} must be coaxial with the z axis (centres at x = y = 0, normals "
                         "along z) for an axisymmetric analysis")


def _axis_point(z):
    z = jnp.asarray(z, dtype=float)
    return jnp.stack([jnp.zeros_like(z), jnp.zeros_like(z), z], axis=-1)


def _safeguarded_newton(f, lo, hi, f_lo, f_hi, n_iter):
    """Root of f in [lo, hi] with f(lo) < 0 <= f(hi): Newton steps, bisection when they leave
    the bracket (or the slope is not positive). Fixed number of iterations."""
    width = hi - lo
    denom = f_hi - f_lo
    z0 = jnp.where(denom > 0, lo - f_lo * width / jnp.where(denom > 0, denom, 1.0), 0.5 * (lo + hi))

    def body(_, state):
        lo, hi, z = state
        fz, dfz = jax.jvp(f, (z,), (jnp.ones_like(z),))
        neg = fz < 0
        lo = jnp.where(neg, z, lo)
        hi = jnp.where(neg, hi, z)
        zn = z - fz / jnp.where(dfz > 0, dfz, 1.0)
        ok = (dfz > 0) & (zn >= lo) & (zn <= hi) & jnp.isfinite(zn)
        z = jnp.where(fz == 0, z, jnp.where(ok, zn, 0.5 * (lo + hi)))
        return lo, hi, z

    _, _, z = jax.lax.fori_loop(0, n_iter, body, (lo, hi, z0))
    return z


def axis_field(z, loops: Loops):
    """Axial field ``B_z`` (T) on the z axis of coaxial loops, in closed form.

    ``B_z(z) = sum_i mu0 I_i a_i^2 / (2 (a_i^2 + (z - z_i)^2)^{3/2}) n_i`` with ``n_i = +-1``
    the orientation of loop ``i``'s normal; valid for loops coaxial with z (`check_coaxial`).
    """
    z = jnp.asarray(z, dtype=float)
    a = loops.radius.reshape(-1)
    cur = loops.current.reshape(-1)
    zc = loops.center.reshape(-1, 3)[:, 2]
    nrm = loops.normal.reshape(-1, 3)
    orient = nrm[:, 2] / jnp.linalg.norm(nrm, axis=-1)
    d2 = a * a + (z[..., None] - zc) ** 2
    return jnp.sum(0.5 * MU0 * cur * orient * a * a / (d2 * jnp.sqrt(d2)), axis=-1)


def axis_stiffness(z: ScalarLike, loops: Loops, sphere: Sphere) -> tuple[Scalar, Scalar]:
    """Axial and radial stiffness ``(d^2U/dz^2, d^2U/dx^2)`` (N/m) at height `z` on the axis of
    coaxial loops, from the closed-form axis field alone (no elliptic integrals).

    Off the axis of an axisymmetric, current-free field ``B_z = b - r^2 b''/4`` and
    ``B_r = -r b'/2`` to second order in ``r`` (``b = B_z(0, z)``, primes: d/dz), so
    ``|B|^2 = b^2 + r^2 (b'^2/4 - b b''/2) + O(r^4)`` and, with ``U = m g z + k V |B|^2/(2 mu0)``,

        k_z = k V (b'^2 + b b'') / mu0,    k_r = k V (b'^2/2 - b b'') / (2 mu0).

    The mixed terms vanish on the axis by symmetry, so these are the Hessian's eigenvalues
    there: the same numbers as `energy_hessian` at ``(0, 0, z)``, at a fraction of the cost
    (and of the compile time of derivatives through them).
    """
    z = jnp.asarray(z, dtype=float)
    b_of_z = functools.partial(axis_field, loops=loops)
    b = b_of_z(z)
    b1 = jax.grad(b_of_z)(z)
    b2 = jax.grad(jax.grad(b_of_z))(z)
    kv = sphere.k * sphere.volume / MU0
    return kv * (b1 * b1 + b * b2), 0.5 * kv * (0.5 * b1 * b1 - b * b2)


@functools.partial(jax.jit, static_argnames=("n_grid", "n_newton"))
def _axial(loops, sphere, z_min, z_max, g, n_grid, n_newton):
    z_min = jnp.asarray(z_min, dtype=float)
    z_max = jnp.asarray(z_max, dtype=float)
    coef = sphere.k * sphere.volume / (2.0 * MU0)

    def u_axis(z):
        # on the axis of coaxial loops B = (0, 0, B_z(z)): closed form, no elliptic integrals
        return sphere.mass * g * z + coef * axis_field(z, loops) ** 2

    dudz = jax.grad(u_axis)

    def solve(_f, _z_init):  # _f is dudz; the closure is used directly
        zs = jnp.linspace(z_min, z_max, n_grid)
        us, fs = jax.vmap(jax.value_and_grad(u_axis))(zs)
        clear = loops.distance_to_wire(_axis_point(zs)) >= sphere.radius
        valid = clear & jnp.isfinite(us) & jnp.isfinite(fs)
        cross = valid[:-1] & valid[1:] & (fs[:-1] < 0) & (fs[1:] >= 0)
        key = jnp.where(cross, jnp.minimum(us[:-1], us[1:]), jnp.inf)
        i = jnp.argmin(key)
        found = jnp.any(cross)
        z = _safeguarded_newton(dudz, zs[i], zs[i + 1], fs[i], fs[i + 1], n_newton)
        z_fallback = zs[jnp.argmin(jnp.where(valid, us, jnp.inf))]
        return jnp.where(found, z, z_fallback), found.astype(float)

    def tangent_solve(lin, y):
        return y / jax.jacfwd(lin)(y)

    z, found = jax.lax.custom_root(dudz, 0.5 * (z_min + z_max), solve, tangent_solve, has_aux=True)
    return z, jax.lax.stop_gradient(found) > 0.5


def axial_equilibrium(loops: Loops, sphere: Sphere, z_min: ScalarLike, z_max: ScalarLike,
                      n_grid: int = 64, *, g: ScalarLike = G0,
                      n_newton: int = 20) -> tuple[Scalar, ScalarBool]:
    """Lowest-energy axially stable equilibrium on the axis of a coaxial-loop trap.

    On the axis (``x = y = 0``) of loops coaxial with ``z`` the field is ``B_z(z)`` in closed
    form (`axis_field`), and ``dU/dz`` is sampled on
    `n_grid` points in ``[z_min, z_max]``; every sign change from ``-`` to ``+`` brackets an
    axially stable equilibrium (grid points where the sphere would overlap a wire are
    skipped). The bracket with the lowest energy is refined by a safeguarded Newton
    iteration (Newton, bisection fallback) with a fixed number of steps. Everything has
    fixed shapes, so the function is `jit`- and `vmap`-able (e.g. over a population of
    designs); the root is wrapped in `jax.lax.custom_root`, so ``dz/d(parameters)`` is the
    implicit derivative ``-(d^2U/dz dp) / (d^2U/dz^2)``.

    Only axial stability is checked here: check the radial stiffness with `trap_modes`.

    **Arguments:**

    - `loops`: coaxial loops (centres on the z axis, normals along z).
    - `sphere`: the particle.
    - `z_min`, `z_max`: search interval on the axis (m).
    - `n_grid`: number of grid points (static).
    - `g`: gravitational acceleration (m/s^2).
    - `n_newton`: refinement iterations (static).

    **Returns:** ``(z, found)``: the equilibrium height (m) and a bool. When no stable
    crossing exists, ``found`` is False and ``z`` is the lowest-energy grid point (its
    derivatives are then meaningless).

    ```python
    >>> from invdesign.levitation import concentric_trap, concentric_sphere
    >>> z, found = axial_equilibrium(concentric_trap(), concentric_sphere(), 0.0, 12e-6)
    ```
    """
    check_types(loops, sphere)
    check_coaxial(loops)
    check_g(g)
    if v.is_concrete(z_min, z_max):
        v.check_finite("z_min", z_min)
        v.check_finite("z_max", z_max)
        if not float(np.max(z_min)) < float(np.min(z_max)):
            raise ValueError(f"z_min must be < z_max, got z_min = {z_min}, z_max = {z_max}")
    if not isinstance(n_grid, (int, np.integer)) or n_grid < 3:
        raise ValueError(f"n_grid must be an integer >= 3, got {n_grid!r}")
    if not isinstance(n_newton, (int, np.integer)) or n_newton < 1:
        raise ValueError(f"n_newton must be an integer >= 1, got {n_newton!r}")
    return _axial(loops, sphere, z_min, z_max, g, int(n_grid), int(n_newton))
