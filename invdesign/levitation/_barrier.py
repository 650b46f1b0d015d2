"""Depth of an axisymmetric trap: the lowest energy barrier on any escape path (minimax flood)."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Bool, Float

from .. import _validate as v
from .._types import Scalar, ScalarLike
from ..constants import G0
from ..fields import Loops
from ._axial import _axis_point, check_coaxial
from ._energy import _energy, check_types
from ._sphere import Sphere

__all__ = ["minimax_escape_levels", "escape_barrier"]

LevelsLike = Float[ArrayLike, "n0 n1"]
ExitsLike = Bool[ArrayLike, "n0 n1"]
Levels = Float[Array, "n0 n1"]


def _neighbour_min(levels):
    pad = jnp.pad(levels, 1, constant_values=jnp.inf)
    return jnp.minimum(jnp.minimum(pad[:-2, 1:-1], pad[2:, 1:-1]),
                       jnp.minimum(pad[1:-1, :-2], pad[1:-1, 2:]))


def minimax_escape_levels(u: LevelsLike, exits: ExitsLike, max_iter: int | None = None) -> Levels:
    """Escape level of every cell of a 2-D grid: min over paths to an exit of max `u` on the path.

    Paths move between 4-connected neighbours; the level includes both ends
    (``level >= u`` everywhere, ``level = u`` on exits). Computed by flooding: start from
    ``u`` on exits and ``inf`` elsewhere and relax ``L = max(u, min(L, min_neighbours L))``
    in a `jax.lax.while_loop` until nothing changes. NaN or ``inf`` in `u` is a wall.

    **Arguments:**

    - `u`: values ``(n0, n1)`` (e.g. energies on a grid).
    - `exits`: bool mask ``(n0, n1)`` of exit cells.
    - `max_iter`: iteration cap (default ``n0 * n1``, always enough).

    **Returns:** levels ``(n0, n1)``; ``inf`` where no exit is reachable. `vmap`-able.

    ```python
    >>> u = jnp.array([[0.0, 2.0, 1.0]])
    >>> minimax_escape_levels(u, jnp.array([[False, False, True]]))
    Array([[2., 2., 1.]], dtype=float64)
    ```
    """
    u = jnp.asarray(u, dtype=float)
    u = jnp.where(jnp.isnan(u), jnp.inf, u)
    exits = jnp.asarray(exits, dtype=bool)
    cap = u.size if max_iter is None else int(max_iter)

    def body(state):
        levels, _, i = state
        new = jnp.maximum(u, jnp.minimum(levels, _neighbour_min(levels)))
        return new, jnp.any(new != levels), i + 1

    def cond(state):
        _, changed, i = state
        return changed & (i < cap)

    init = (jnp.where(exits, u, jnp.inf), jnp.asarray(True), jnp.asarray(0))
    levels, _, _ = jax.lax.while_loop(cond, body, init)
    return levels


def _grid(r_max, z_min, z_max, n_r, n_z):
    rs = jnp.linspace(0.0, r_max, n_r)
    zs = jnp.linspace(z_min, z_max, n_z)
    rr, zz = jnp.meshgrid(rs, zs)  # (n_z, n_r)
    pts = jnp.stack([rr, jnp.zeros_like(rr), zz], axis=-1)
    return rs, zs, pts


def _exit_mask(n_z, n_r):
    exits = np.zeros((n_z, n_r), dtype=bool)
    exits[:, -1] = True
    exits[0, :] = True
    exits[-1, :] = True
    return jnp.asarray(exits)


@functools.partial(jax.jit, static_argnames=("n_r", "n_z"))
def _barrier(loops, sphere, z_eq, r_max, z_min, z_max, g, n_r, n_z):
    _, zs, pts = _grid(r_max, z_min, z_max, n_r, n_z)
    overlap = loops.distance_to_wire(pts) < sphere.radius
    # evaluate walls on the axis instead (finite there), so no inf/NaN reaches the gradient
    safe = jnp.where(overlap[..., None], pts * jnp.array([0.0, 0.0, 1.0]), pts)
    u = _energy(safe, loops, sphere, g)
    blocked = overlap | ~jnp.isfinite(u)
    u = jnp.where(blocked, jnp.inf, u)
    levels = jax.lax.stop_gradient(minimax_escape_levels(jax.lax.stop_gradient(u), _exit_mask(n_z, n_r)))
    iz = jnp.argmin(jnp.abs(zs - z_eq))
    level = levels[iz, 0]
    # the bottleneck cell: its energy is the level; taking it from u keeps the gradient
    flat = u.reshape(-1)
    idx = jnp.argmin(jnp.where(jnp.isfinite(flat), jnp.abs(flat - level), jnp.inf))
    u_eq = _energy(_axis_point(z_eq), loops, sphere, g)
    return jnp.where(jnp.isfinite(level), flat[idx] - u_eq, jnp.inf)


def escape_barrier(loops: Loops, sphere: Sphere, z_eq: ScalarLike, r_max: ScalarLike,
                   z_min: ScalarLike, z_max: ScalarLike, n: int | tuple[int, int] = 64, *,
                   g: ScalarLike = G0) -> Scalar:
    """Trap depth (J): the lowest energy barrier between an axial equilibrium and the outside.

    For coaxial loops the energy depends on ``(r, z)`` only. On an ``(r, z)`` grid over
    ``[0, r_max] x [z_min, z_max]`` the escape level of every cell is the minimum over
    grid paths to the box boundary (``r = r_max``, ``z = z_min``, ``z = z_max``; ``r = 0``
    is the symmetry axis, not an exit) of the maximum energy along the path
    (`minimax_escape_levels`). Cells where the sphere would overlap a wire are walls.
    The depth is the level of the axis cell nearest `z_eq` minus ``U(0, 0, z_eq)``.

    `jit`/`vmap`-able (grid sizes are static). Differentiable almost everywhere: the result
    is the energy of the bottleneck grid cell minus the equilibrium energy, and the gradient
    flows through both (the choice of the cell is held fixed).

    **Arguments:**

    - `loops`: coaxial loops; `sphere`: the particle.
    - `z_eq`: equilibrium height on the axis (m), e.g. from `axial_equilibrium`.
    - `r_max`, `z_min`, `z_max`: the box (m).
    - `n`: grid points per direction, an int or ``(n_r, n_z)`` (static).
    - `g`: gravitational acceleration (m/s^2).

    **Returns:** the barrier in joules (``inf`` if no exit is reachable).

    ```python
    >>> from invdesign.levitation import anti_helmholtz_trap, anti_helmholtz_sphere
    >>> depth = escape_barrier(anti_helmholtz_trap(), anti_helmholtz_sphere(), 0.0,
    ...                        r_max=2e-6, z_min=-2e-6, z_max=2e-6)
    ```
    """
    check_types(loops, sphere)
    check_coaxial(loops)
    n_r, n_z = (n, n) if isinstance(n, (int, np.integer)) else tuple(n)
    for name, val in (("n_r", n_r), ("n_z", n_z)):
        if not isinstance(val, (int, np.integer)) or val < 3:
            raise ValueError(f"n must be an integer >= 3 or a pair of them, got {name} = {val!r}")
    if v.is_concrete(z_eq, r_max, z_min, z_max):
        v.check_finite("z_eq", z_eq)
        v.check_positive("r_max", r_max)
        v.check_finite("z_min", z_min)
        v.check_finite("z_max", z_max)
        if not float(np.max(z_min)) < float(np.min(z_max)):
            raise ValueError(f"z_min must be < z_max, got z_min = {z_min}, z_max = {z_max}")
        if np.any(np.asarray(z_eq) < np.asarray(z_min)) or np.any(np.asarray(z_eq) > np.asarray(z_max)):
            raise ValueError(f"z_eq must lie in [z_min, z_max] = [{z_min}, {z_max}], got {z_eq}")
    return _barrier(loops, sphere, z_eq, r_max, z_min, z_max, g, int(n_r), int(n_z))
