"""Small-oscillation analysis of the sphere at a point: stiffness, frequencies, mode shapes."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp

from .._mechanics import signed_frequency
from .._types import BatchBool, BatchScalar, Mat3, ScalarLike, Vec3, Vec3Like
from ..constants import G0, MU0
from ..fields import Loops
from ._energy import _energy, _grad_point, _hess_b2_point, check_position, check_types
from ._sphere import Sphere

__all__ = ["TrapModes", "trap_modes"]


class TrapModes(eqx.Module):
    """Result of `trap_modes` (all JAX arrays; batched under `vmap`).

    - `position`: the point analysed, ``(3,)`` m.
    - `energy`: ``U`` there, J.
    - `force`: total force ``-grad U`` there, ``(3,)`` N (zero at an equilibrium).
    - `hessian`: stiffness matrix ``d^2 U / dx_i dx_j``, ``(3, 3)`` N/m.
    - `eigenvalues`: its eigenvalues in ascending order, ``(3,)`` N/m.
    - `frequencies`: signed trap frequencies ``sign(l) sqrt(|l| / m) / (2 pi)`` in Hz, in
      the order of `eigenvalues`. A **negative** value marks an unstable direction: there
      ``2 pi |f|`` is the exponential growth rate (1/s) of a displacement along the mode.
    - `modes`: unit eigenvectors as columns, ``(3, 3)`` (no gradient: a degenerate pair, as
      the two radial modes of an axisymmetric trap, has no unique basis).
    - `lap_b2`: ``lap |B|^2`` in T^2/m^2 (paper eq. 11).
    - `laplacian_positive`: ``lap_b2 > 0``, the paper's (necessary) condition.
    - `stable`: all eigenvalues ``> 0``, the sufficient condition for a stable minimum.
    """

    position: Vec3
    energy: BatchScalar
    force: Vec3
    hessian: Mat3
    eigenvalues: Vec3
    frequencies: Vec3
    modes: Mat3
    lap_b2: BatchScalar
    laplacian_positive: BatchBool
    stable: BatchBool


def _trap_modes(x, loops, sphere, g):
    x = jnp.asarray(x, dtype=float)
    hess_b2 = _hess_b2_point(x, loops)
    hess_b2 = 0.5 * (hess_b2 + hess_b2.T)
    hess = (sphere.k * sphere.volume / (2.0 * MU0)) * hess_b2  # gravity is linear in x
    lam, vecs = jnp.linalg.eigh(hess)
    lap = jnp.trace(hess_b2)
    return TrapModes(
        position=x,
        energy=_energy(x, loops, sphere, g),
        force=-_grad_point(x, loops, sphere, g),
        hessian=hess,
        eigenvalues=lam,
        frequencies=signed_frequency(lam, sphere.mass),
        modes=jax.lax.stop_gradient(vecs),
        lap_b2=lap,
        laplacian_positive=lap > 0.0,
        stable=jnp.all(lam > 0.0),
    )


_trap_modes_jit = jax.jit(_trap_modes)


def trap_modes(x: Vec3Like, loops: Loops, sphere: Sphere, g: ScalarLike = G0) -> TrapModes:
    """Stiffness, trap frequencies and mode directions of the sphere at `x`.

    Meant for an equilibrium (see `equilibrium`), but valid anywhere: the residual force is
    reported so a non-equilibrium point is recognisable.

    **Arguments:**

    - `x`: sphere centre ``(3,)`` in metres.
    - `loops`: the current loops.
    - `sphere`: the particle.
    - `g`: gravitational acceleration (m/s^2); it does not enter the stiffness.

    **Returns:** a `TrapModes`. Both stability statements are reported: the paper's
    Laplacian condition ``lap |B|^2 > 0`` (`laplacian_positive`, necessary; it holds almost
    everywhere in a current-free region) and positivity of the whole Hessian (`stable`,
    sufficient). Frequencies are signed: negative marks an unstable direction.
    Differentiable w.r.t. `x`, loops and sphere (eigenvalues and frequencies; not `modes`).

    ```python
    >>> from invdesign.levitation import anti_helmholtz_trap, anti_helmholtz_sphere
    >>> tm = trap_modes(jnp.zeros(3), anti_helmholtz_trap(), anti_helmholtz_sphere())
    >>> tm.frequencies.round(1)  # Hz: two radial modes at half the axial frequency
    Array([24823. , 24823. , 49645.9], dtype=float64)
    ```
    """
    check_types(loops, sphere)
    check_position("x", x, loops, sphere)
    if jnp.shape(x) != (3,):
        raise ValueError(f"x must have shape (3,), got {jnp.shape(x)} (use jax.vmap for batches)")
    return _trap_modes_jit(jnp.asarray(x, dtype=float), loops, sphere, g)
