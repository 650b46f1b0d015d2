"""Magnetic field and vector potential of circular current loops (filaments), SI units.

Formulation
-----------
For a loop of radius ``a`` carrying current ``I`` (right-handed about its unit normal ``n``)
and an observation point with axial coordinate ``z`` and squared distance ``s = r^2`` from
the axis, the textbook expressions in ``K(k^2), E(k^2)`` with ``k^2 = 4ar/((a+r)^2+z^2)``
cancel catastrophically near the axis and far away. We use instead the descending Landen
transformation of the modulus, ``m1 = (4 a r / S^2)^2`` with ``S = alpha + beta`` the sum of
the distances to the two points where the loop crosses the meridian plane. Then

    A_phi = r Phi,      Phi = (8 mu0 I a^2 / pi) D(m1) / S^3,

with ``D = (K - E) / m``, and ``B = curl A`` gives (``Q = alpha beta``)

    B_r / r = c z H / (S^3 Q),       H = E S^2 / (2 Q) - D,
    B_z     = 2 c / (S^3 Q) [E S^2 / 8 - s T H / S^2],   T = (S^2 - 4 a^2) / 2,

``c = 8 mu0 I a^2 / pi``. Every quantity is a smooth function of ``s`` and ``z`` (so
gradients and Hessians with respect to the observation point are exact on the axis), ``H``
and the terms of ``B_z`` are sums of positive quantities apart from the genuine sign change
of ``B_z``, and ``Q = sqrt(w^2 + 4 a^2 z^2)`` with ``w = s + z^2 - a^2`` is free of
cancellation; near the wire ``w`` is formed as ``(r - a)(r + a) + z^2``. The Cartesian field
is ``B = (B_r / r) rho + B_z n`` with ``rho`` the position relative to the axis, so no division
by ``r`` occurs anywhere.

A point exactly on the wire gives an infinite field (all components ``inf``).

Checks: with concrete arguments `_prepare` raises ValueError/TypeError naming the argument;
under `jit` the per-loop checks (radius finite and > 0, current and center finite, normal
finite and nonzero) run as `equinox.error_if` run-time errors with the same message (see the package
docstring). They cost no measurable time on the CPU (a reduction and a branch per call).
"""

from __future__ import annotations

import math

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from .. import _validate as v
from .._types import BatchScalar, Vec3, Vec3Like
from ..constants import MU0
from ..special import ellipked

__all__ = ["loop_field", "loop_vector_potential", "Loops"]

LoopParamLike = Float[ArrayLike, "*#loops"]
"""A per-loop scalar input (radius, current), broadcast over the loop batch ``L``."""

LoopVec3Like = Float[ArrayLike, "*#loops 3"]
"""A per-loop 3-vector input (centre, normal), broadcast over the loop batch ``L``."""

LoopParam = Float[Array, "*loops"]
LoopVec3 = Float[Array, "*loops 3"]


def _local(s, z, a, current):
    """Return (Phi, B_r / r, B_z) in the loop's frame: smooth functions of s = r^2 and z."""
    a2 = a * a
    z2 = z * z
    p = a2 + s + z2
    # near the wire (4 a^2 s close to p^2) form w = r^2 - a^2 + z^2 as (r - a)(r + a) + z^2
    wire = 4.0 * a2 * s > 0.5 * p * p
    r = jnp.sqrt(jnp.where(wire, s, a2))
    w = jnp.where(wire, (r - a) * (r + a) + z2, (s - a2) + z2)
    q = jnp.sqrt(w * w + 4.0 * a2 * z2)  # alpha * beta
    on_wire = q == 0.0
    q_safe = jnp.where(on_wire, 1.0, q)
    pos = w >= 0.0
    t = jnp.where(pos, w + q, 4.0 * a2 * z2 / jnp.where(pos, 1.0, q_safe - w))  # (S^2 - 4a^2)/2
    s2 = 2.0 * (p + q)  # S^2 = (alpha + beta)^2
    mc1 = 4.0 * q / s2
    m1 = 16.0 * a2 * s / (s2 * s2)
    _, e, d = ellipked(m1, mc1)
    s3 = s2 * jnp.sqrt(s2)
    c = (8.0 * MU0 / math.pi) * current * a2
    h = e * s2 / (2.0 * q_safe) - d
    phi = c * d / s3
    f = c * z * h / (s3 * q_safe)
    g = (2.0 * c / (s3 * q_safe)) * (0.125 * e * s2 - s * t * h / s2)
    phi = jnp.where(on_wire, jnp.inf, phi)
    return phi, f, g, on_wire


def _frame(points, center, normal, n_loop_dims):
    pts = jnp.asarray(points, dtype=float)
    pts = pts.reshape(pts.shape[:-1] + (1,) * n_loop_dims + (3,))
    n = normal / jnp.linalg.norm(normal, axis=-1, keepdims=True)
    dvec = pts - center
    z = jnp.sum(dvec * n, axis=-1)
    rho = dvec - z[..., None] * n
    s = jnp.sum(rho * rho, axis=-1)
    return dvec, n, z, rho, s


def _prepare(points, radius, current, center, normal):
    points = v.as_float("points", points)
    radius = v.as_float("radius", radius)
    current = v.as_float("current", current)
    center = v.as_float("center", center)
    normal = v.as_float("normal", normal)
    v.check_vectors("points", points)
    v.check_positive("radius", radius)
    v.check_finite("current", current)
    v.check_vectors("center", center)
    v.check_nonzero_vectors("normal", normal)
    loop_shape = v.broadcast_shapes(
        radius=radius.shape, current=current.shape,
        center=center.shape[:-1], normal=normal.shape[:-1],
    )
    # under jit the eager checks above are skipped: keep the cheap loop checks as run-time
    # errors (a radius <= 0 would otherwise give a finite, wrong field)
    radius = v.traced_error_if(radius, ~((radius > 0.0) & (radius < jnp.inf)),
                               "loop radius must be finite and > 0 (allowed range: (0, inf))")
    current = v.traced_error_if(current, ~jnp.isfinite(current), "loop current must be finite")
    center = v.traced_error_if(center, ~jnp.isfinite(center), "loop center must be finite")
    normal = v.traced_error_if(
        normal, ~(jnp.all(jnp.isfinite(normal), axis=-1) & jnp.any(normal != 0.0, axis=-1)),
        "loop normal must be finite nonzero vectors (a direction)")
    return radius, current, center, normal, loop_shape


def _sum_loops(x, loop_shape, sum_loops):
    if not sum_loops or len(loop_shape) == 0:
        return x
    axes = tuple(range(x.ndim - 1 - len(loop_shape), x.ndim - 1))
    return jnp.sum(x, axis=axes)


def loop_field(points: Vec3Like, radius: LoopParamLike, current: LoopParamLike,
               center: LoopVec3Like = (0.0, 0.0, 0.0), normal: LoopVec3Like = (0.0, 0.0, 1.0),
               *, sum_loops: bool = True) -> Vec3:
    """Magnetic flux density B (tesla) of circular current loops.

    **Arguments:**

    - `points`: observation points, shape ``(..., 3)``, metres.
    - `radius`: loop radii ``> 0`` in metres, shape ``L`` (any loop batch shape, or scalar).
    - `current`: currents in amperes, shape broadcastable with ``L``; positive current
      circulates right-handed about `normal`.
    - `center`: loop centres, shape ``L + (3,)`` or ``(3,)``.
    - `normal`: loop normals (any nonzero length), shape ``L + (3,)`` or ``(3,)``.
    - `sum_loops`: if True (default) sum the loops' fields, giving shape ``(..., 3)``;
      otherwise return every loop's field, shape ``(...,) + L + (3,)``.

    **Returns:** B in tesla. Differentiable (``grad``, ``hessian``, ``jvp``) with respect to
    the points and to every loop parameter, including on the axis. A point exactly on a
    wire gives ``inf`` components.

    ```python
    >>> import jax.numpy as jnp
    >>> B = loop_field(jnp.array([0.0, 0.0, 0.0]), radius=1e-3, current=1.0)
    >>> float(B[2])  # mu0 I / (2 a), CODATA mu0
    0.000628318531...
    ```
    """
    radius, current, center, normal, loop_shape = _prepare(points, radius, current, center, normal)
    _, n, z, rho, s = _frame(points, center, normal, len(loop_shape))
    _, f, g, on_wire = _local(s, z, radius, current)
    b = jnp.where(on_wire[..., None], jnp.inf, f[..., None] * rho + g[..., None] * n)
    return _sum_loops(b, loop_shape, sum_loops)


def loop_vector_potential(points: Vec3Like, radius: LoopParamLike, current: LoopParamLike,
                          center: LoopVec3Like = (0.0, 0.0, 0.0),
                          normal: LoopVec3Like = (0.0, 0.0, 1.0), *, sum_loops: bool = True) -> Vec3:
    """Vector potential A (T m, Coulomb gauge) of circular current loops.

    Same arguments and broadcasting as `loop_field`; ``curl A = B``.
    ``A = Phi(s, z) (n x (x - center))`` with ``Phi = A_phi / r`` smooth on the axis.
    """
    radius, current, center, normal, loop_shape = _prepare(points, radius, current, center, normal)
    dvec, n, z, _, s = _frame(points, center, normal, len(loop_shape))
    phi, _, _, on_wire = _local(s, z, radius, current)
    a = jnp.where(on_wire[..., None], jnp.inf, phi[..., None] * jnp.cross(*jnp.broadcast_arrays(n, dvec)))
    return _sum_loops(a, loop_shape, sum_loops)


class Loops(eqx.Module):
    """A set of circular current loops as a pytree (differentiable with respect to all fields).

    **Arguments:** `radius` (m), `current` (A), `center` (m, ``(..., 3)``), `normal`
    (``(..., 3)``), broadcast together like in `loop_field`.

    ```python
    >>> trap = Loops(radius=[1e-6, 1e-6], current=[0.03, -0.03],
    ...              center=[[0, 0, -0.5e-6], [0, 0, 0.5e-6]], normal=[0, 0, 1])
    >>> B = trap.field(jnp.zeros(3))  # anti-Helmholtz: zero at the centre
    ```
    """

    radius: LoopParam
    current: LoopParam
    center: LoopVec3
    normal: LoopVec3

    def __init__(self, radius: LoopParamLike, current: LoopParamLike,
                 center: LoopVec3Like = (0.0, 0.0, 0.0), normal: LoopVec3Like = (0.0, 0.0, 1.0)):
        radius, current, center, normal, shape = _prepare(
            jnp.zeros(3), radius, current, center, normal)
        self.radius = jnp.broadcast_to(radius, shape)
        self.current = jnp.broadcast_to(current, shape)
        self.center = jnp.broadcast_to(center, shape + (3,))
        self.normal = jnp.broadcast_to(normal, shape + (3,))

    def field(self, points: Vec3Like) -> Vec3:
        """Total B (T) of all loops at `points` ``(..., 3)``."""
        return loop_field(points, self.radius, self.current, self.center, self.normal)

    def vector_potential(self, points: Vec3Like) -> Vec3:
        """Total A (T m) of all loops at `points` ``(..., 3)``."""
        return loop_vector_potential(points, self.radius, self.current, self.center, self.normal)

    def distance_to_wire(self, points: Vec3Like) -> BatchScalar:
        """Distance (m) from each point to the nearest wire, shape ``points.shape[:-1]``."""
        pts = v.as_float("points", points)
        v.check_vectors("points", pts)
        _, _, z, _, s = _frame(pts, self.center, self.normal, self.radius.ndim)
        pos = s > 0.0  # sqrt has no derivative at the axis: keep gradients finite there
        r = jnp.where(pos, jnp.sqrt(jnp.where(pos, s, 1.0)), 0.0)
        d2 = (r - self.radius) ** 2 + z * z
        d2 = d2.reshape(d2.shape[: pts.ndim - 1] + (-1,))
        return jnp.sqrt(jnp.min(d2, axis=-1))
