"""Quadrature rules on the unit disc and on the surface elements of a `Mesh`.

The boundary-element models integrate over every element with `element_rule`: a
Gauss-Legendre product rule on the exact patch of a surface of revolution, or a disc rule on
the curved circular element (the degree-5 seven-point rule `_disc_rule` for low orders, a
polar Gauss rule otherwise). The orders of the far, near and target (Galerkin test) rules
are module constants. `DiskMagnet` uses the same seven-point rule for volume averages.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ._mesh import Mesh

__all__ = ["FAR_ORDER", "NEAR_ORDER", "TARGET_ORDER", "element_rule"]

ElementPoints = Float[Array, "n q 3"]
"""Points (or unit normals) of a ``q``-point rule on each of the ``n`` elements."""

ElementWeights = Float[Array, "n q"]
"""Area weights (m^2) of a ``q``-point rule on each element (summing to the element area)."""

FAR_ORDER = 3
"""Gauss points per direction of the element rule for well-separated pairs (9 per element)."""

NEAR_ORDER = 8
"""Gauss points per direction for near pairs (64 per element)."""

TARGET_ORDER = 2
"""Gauss points per direction of the test (target) rule of the Galerkin average (4 per element)."""


def _gauss01(n):
    x, w = np.polynomial.legendre.leggauss(n)
    return 0.5 * (x + 1.0), 0.5 * w


def _disc_rule():
    """Degree-5 seven-point rule on the unit disc: radii, angles and weights summing to 1."""
    r = [0.0] + [math.sqrt(2.0 / 3.0)] * 6
    t = [0.0] + [k * math.pi / 3.0 for k in range(6)]
    w = [0.25] + [0.125] * 6
    return r, t, w


def _disc_points(mesh: Mesh, a, b, w):
    """Points on curved circular elements for unit-disc nodes (a, b) and weights w (sum 1)."""
    rho = mesh.radius[:, None]
    a, b, w = jnp.asarray(a), jnp.asarray(b), jnp.asarray(w)
    off = rho[..., None] * (a[None, :, None] * mesh.tangent[:, None, :] + b[None, :, None] * mesh.bitangent[:, None, :])
    # the surface falls below its tangent plane by kappa u^2 / 2 (convex seen from the vacuum)
    sag = 0.5 * rho**2 * (mesh.curvatures[:, :1] * a[None, :] ** 2 + mesh.curvatures[:, 1:] * b[None, :] ** 2)
    pts = mesh.centre[:, None, :] + off - sag[..., None] * mesh.normal[:, None, :]
    # normal at the point of the curved element: n + kappa u t (to first order), normalised
    tilt = rho[..., None] * (
        (mesh.curvatures[:, :1] * a[None, :])[..., None] * mesh.tangent[:, None, :]
        + (mesh.curvatures[:, 1:] * b[None, :])[..., None] * mesh.bitangent[:, None, :]
    )
    nrm = mesh.normal[:, None, :] + tilt
    nrm = nrm / jnp.linalg.norm(nrm, axis=-1, keepdims=True)
    return pts, mesh.area[:, None] * w[None, :], nrm


def _disc_nodes(order):
    if order == 1:
        return np.zeros(1), np.zeros(1), np.ones(1)
    if order == 2:  # degree 3: four points at r = 1/sqrt(2)
        t = np.pi / 4 + np.arange(4) * np.pi / 2
        return np.sqrt(0.5) * np.cos(t), np.sqrt(0.5) * np.sin(t), np.full(4, 0.25)
    if order == 3:
        r, t, w = _disc_rule()
        a, b, w = np.asarray(r) * np.cos(t), np.asarray(r) * np.sin(t), np.asarray(w)
        q = order * order
        pad = q - a.size
        return np.pad(a, (0, pad)), np.pad(b, (0, pad)), np.pad(w, (0, pad))
    nr, nt = order // 2, 2 * order
    x, wx = _gauss01(nr)
    r = np.sqrt(x)  # equal-area radial mapping: uniform weight in x = r^2
    t = 2.0 * np.pi * (np.arange(nt) + 0.5) / nt
    a = (r[:, None] * np.cos(t)[None, :]).ravel()
    b = (r[:, None] * np.sin(t)[None, :]).ravel()
    w = (wx[:, None] * np.full(nt, 1.0 / nt)[None, :]).ravel()
    return a, b, w


def element_rule(mesh: Mesh, order: int = FAR_ORDER) -> tuple[ElementPoints, ElementWeights, ElementPoints]:
    """Quadrature points ``(N, Q, 3)``, area weights ``(N, Q)`` and unit normals ``(N, Q, 3)``.

    ``Q = order^2`` points on every element.

    Elements with an exact `patch` (surfaces of revolution) use a Gauss-Legendre product rule
    on the patch; cap elements (a band touching the axis) and user-supplied circular elements
    use a disc rule on the curved element (the degree-5 seven-point rule for ``order <= 3``,
    a polar Gauss rule otherwise).
    """
    pts_d, w_d, n_d = _disc_points(mesh, *_disc_nodes(order))
    if mesh.patch is None:
        return pts_d, w_d, n_d
    u, wu = _gauss01(order)
    ra, za, rb, zb, pa, pb = (mesh.patch[:, k] for k in range(6))
    uu = jnp.asarray(np.repeat(u, order))
    vv = jnp.asarray(np.tile(u, order))
    ww = jnp.asarray(np.outer(wu, wu).ravel())
    r = ra[:, None] + (rb - ra)[:, None] * uu[None, :]
    z = za[:, None] + (zb - za)[:, None] * uu[None, :]
    phi = pa[:, None] + (pb - pa)[:, None] * vv[None, :]
    pts_p = jnp.stack([r * jnp.cos(phi), r * jnp.sin(phi), z], axis=-1)
    length = jnp.hypot(rb - ra, zb - za)
    w_p = ww[None, :] * r * (length * (pb - pa))[:, None]
    dr = ((rb - ra) / length)[:, None]
    dz = ((zb - za) / length)[:, None]
    n_p = jnp.stack([-dz * jnp.cos(phi), -dz * jnp.sin(phi), dr * jnp.ones_like(phi)], axis=-1)
    cap = (pb - pa) > 1.5 * jnp.pi  # a full ring touching the axis: use the disc rule
    return (
        jnp.where(cap[:, None, None], pts_d, pts_p),
        jnp.where(cap[:, None], w_d, w_p),
        jnp.where(cap[:, None, None], n_d, n_p),
    )
