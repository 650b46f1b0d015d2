"""Boundary-element machinery of the Meissner model: pair lists, kernels, assembly, LU.

The system ``(1/2 I + K') sigma = -H_magnet . n`` (see `MeissnerModel`) is assembled from
the field of unit surface-charge density on every source element (`_kernel_rows`, with the
source points and weights of `_source_terms`), integrated in three tiers by distance: the
far rule for well-separated pairs, and refined rules for the pairs listed by `near_pairs`
(closer than ``MID_FACTOR`` and ``NEAR_FACTOR`` times the sum of the element radii).
`assemble` and the LU factorisation are jit-compiled; the matrix depends on the mesh only.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Int

from ._mesh import Mesh
from ._quadrature import FAR_ORDER, NEAR_ORDER, TARGET_ORDER, element_rule

__all__ = ["MID_FACTOR", "NEAR_FACTOR", "assemble", "near_pairs"]

PairLists = tuple[Int[np.ndarray, " near"], Int[np.ndarray, " near"], Int[np.ndarray, " mid"], Int[np.ndarray, " mid"]]
"""``(near_i, near_j, mid_i, mid_j)``: element index pairs of the refined tiers (`near_pairs`)."""

PairListsLike = tuple[Int[ArrayLike, " near"], Int[ArrayLike, " near"], Int[ArrayLike, " mid"], Int[ArrayLike, " mid"]]
"""Pair lists as input (NumPy or JAX integer arrays)."""

BemMatrix = Float[Array, "n n"]
"""The boundary-element matrix ``1/2 I + K'`` of a mesh of ``n`` elements."""

_FOUR_PI = 4.0 * math.pi

NEAR_FACTOR = 2.0
"""Pairs closer than ``NEAR_FACTOR * (rho_i + rho_j)`` use the near rule."""

MID_FACTOR = 5.0
"""Pairs closer than ``MID_FACTOR * (rho_i + rho_j)`` average over the target element."""


def _source_terms(mesh: Mesh, order: int = FAR_ORDER):
    pts, w, _ = element_rule(mesh, order)
    return pts, w / _FOUR_PI


def _kernel_rows(x, pts, wts):
    """Field (A/m per unit charge density) at points x (..., 3) of every source element: (..., N, 3).

    Component by component, with no (..., N, Q, 3) intermediate (on 5 701 elements the
    assembly's rows ran 2.4x faster than with one)."""
    e = [x[..., None, None, k] - pts[..., k] for k in range(3)]  # (..., N, Q) each
    r2 = e[0] * e[0] + e[1] * e[1] + e[2] * e[2]
    r2 = jnp.where(r2 > 0, r2, 1.0)  # a point on itself (masked by callers): keep gradients finite
    inv3 = wts / (r2 * jnp.sqrt(r2))
    return jnp.stack([jnp.sum(ek * inv3, axis=-1) for ek in e], axis=-1)


def _pairs_within(c, rho, factors):
    """For each factor, the pairs ``(i, j)``, both orders, with ``|c_i - c_j| < factor (rho_i + rho_j)``.

    Each pair is found once, from its larger element: ``j`` within ``2 factor rho_i`` of
    ``i`` (the largest factor) and no larger than ``i`` (ties broken by index). A mesh with a
    few large elements (a coarse top cap beside 0.3 mm elements) then does not make every
    pair a candidate. Returns ``(i_1, j_1, i_2, j_2, ...)``.
    """
    from scipy.spatial import cKDTree

    n = len(rho)
    if n < 2:
        return tuple(np.zeros(0, dtype=np.int32) for _ in range(2 * len(factors)))
    near = cKDTree(c).query_ball_point(c, r=2.0 * max(factors) * rho, return_sorted=False)
    counts = np.fromiter((len(js) for js in near), dtype=np.int64, count=n)
    i = np.repeat(np.arange(n), counts)
    j = np.fromiter((j for js in near for j in js), dtype=np.int64, count=int(counts.sum()))
    larger = (rho[j] < rho[i]) | ((rho[j] == rho[i]) & (j > i))
    i, j = i[larger], j[larger]
    dist, size = np.linalg.norm(c[i] - c[j], axis=1), rho[i] + rho[j]
    out = []
    for factor in factors:
        close = dist < factor * size
        out += [np.concatenate([i[close], j[close]]).astype(np.int32),
                np.concatenate([j[close], i[close]]).astype(np.int32)]
    return tuple(out)


def near_pairs(mesh: Mesh) -> PairLists:
    """Element pairs for the refined integration tiers of `assemble` (needs a concrete mesh).

    Returns ``(near_i, near_j, mid_i, mid_j)``: pairs closer than ``NEAR_FACTOR (rho_i +
    rho_j)`` and closer than ``MID_FACTOR (rho_i + rho_j)``, ``i != j``.
    """
    c = np.asarray(mesh.centre)
    rho = np.asarray(mesh.radius)
    return _pairs_within(c, rho, (NEAR_FACTOR, MID_FACTOR))


def _pair_values(i, j, tp, tw, tn, sp, sw):
    a, b, nrm = tp[i], sp[j], tn[i]  # (T, 3), (S, 3), (T, 3)
    e = [a[:, None, k] - b[None, :, k] for k in range(3)]  # (T, S) each: no (T, S, 3) array
    r2 = e[0] * e[0] + e[1] * e[1] + e[2] * e[2]
    en = e[0] * nrm[:, None, 0] + e[1] * nrm[:, None, 1] + e[2] * nrm[:, None, 2]
    return jnp.sum(tw[i][:, None] * sw[j][None, :] * en / (r2 * jnp.sqrt(r2)))


def assemble(mesh: Mesh, pairs: PairListsLike | None = None, *, batch_size: int = 128) -> BemMatrix:
    """The boundary-element matrix ``1/2 I + K'`` (N, N) of a mesh (jit-compiled; see `_assemble`)."""
    if pairs is None:
        pairs = near_pairs(mesh)
    return _assemble_jit(mesh, tuple(jnp.asarray(a) for a in pairs), batch_size)


def _assemble(mesh: Mesh, pairs, batch_size: int = 128):
    """The boundary-element matrix ``1/2 I + K'`` (N, N) of a mesh.

    Meshes with exact patches (`axisymmetric_mesh`) are discretised by Galerkin's method;
    meshes of circular elements only (which may overlap their neighbours) by collocation at
    the element centres (the target rules below reduce to the centre).

    Entry ``(i, j)`` is the average over element ``i`` of the normal field due to unit charge
    density on element ``j``, integrated in three tiers by distance: well-separated pairs
    with the centre of ``i`` and the 3x3 rule on ``j`` (the average differs from the centre
    value by ``O((rho / d)^2) < 1 %`` there), pairs closer than ``MID_FACTOR (rho_i +
    rho_j)`` with a 2x2 test rule on ``i``, and pairs closer than ``NEAR_FACTOR (rho_i +
    rho_j)`` with 4x4 x 8x8 rules. `pairs` as returned by `near_pairs` (default: computed
    from the mesh, which must then be concrete).
    """
    if pairs is None:
        pairs = near_pairs(mesh)
    pts, wts = _source_terms(mesh)
    n = mesh.size
    idx = jnp.arange(n)
    galerkin = mesh.patch is not None
    # self term: principal value on a curved element at its centre, H rho / 4 (collocation),
    # or its mean over the element, H rho 2 / (3 pi) (Galerkin)
    self_terms = 0.5 + mesh.mean_curvature * mesh.radius * (2.0 / (3.0 * jnp.pi) if galerkin else 0.25)

    def row(i):
        kn = _kernel_rows(mesh.centre[i], pts, wts) @ mesh.normal[i]
        return jnp.where(idx == i, self_terms[i], kn)

    mat = jax.lax.map(row, idx, batch_size=batch_size)
    near_i, near_j, mid_i, mid_j = (jnp.asarray(a) for a in pairs)
    if mid_i.size and galerkin:
        tp, tw, tn = element_rule(mesh, TARGET_ORDER)
        tw = tw / mesh.area[:, None]
        vals = jax.lax.map(lambda ij: _pair_values(ij[0], ij[1], tp, tw, tn, pts, wts), (mid_i, mid_j), batch_size=8192)
        mat = mat.at[mid_i, mid_j].set(vals)
    if near_i.size:
        sp, sw = _source_terms(mesh, NEAR_ORDER)
        if galerkin:
            tp, tw, tn = element_rule(mesh, NEAR_ORDER // 2)
            tw = tw / mesh.area[:, None]
        else:
            tp, tw, tn = mesh.centre[:, None, :], jnp.ones((n, 1)), mesh.normal[:, None, :]
        vals = jax.lax.map(lambda ij: _pair_values(ij[0], ij[1], tp, tw, tn, sp, sw), (near_i, near_j), batch_size=2048)
        mat = mat.at[near_i, near_j].set(vals)
    return mat


_assemble_jit = jax.jit(_assemble, static_argnums=2)


@functools.partial(jax.jit, static_argnums=2)
def _factor_jit(mesh, pairs, batch_size):
    return jsl.lu_factor(_assemble(mesh, pairs, batch_size))


@jax.custom_jvp
def bem_inverse(mat: BemMatrix) -> BemMatrix:
    """The inverse of a BEM matrix; under `vmap` the matrices are inverted one at a time.

    With jaxlib 0.10.2 on CPU, batched LU and triangular solves (what `vmap` makes of a
    factorisation) fan out to XLA's intra-op thread pool from inside it, and a population
    of cavity designs evaluated with `vmap` deadlocked there (both pool threads waiting in
    `TriMatrixEquationSolverKernel`). Inverting each matrix on its own
    (`jax.custom_batching.sequential_vmap`) keeps every factorisation unbatched, and every
    solve becomes a (batched) matrix product. Differentiable to any order: the tangent is
    ``-A^-1 dA A^-1``, matrix products only.
    """
    return _inverse_one(mat)


@jax.custom_batching.sequential_vmap
def _inverse_one(mat):
    return jnp.linalg.inv(mat)


@bem_inverse.defjvp
def _bem_inverse_jvp(primals, tangents):
    (mat,), (dmat,) = primals, tangents
    inv = bem_inverse(mat)
    return inv, -inv @ dmat @ inv


@functools.partial(jax.jit, static_argnums=2)
def _inverse_jit(mesh, pairs, batch_size):
    return bem_inverse(_assemble(mesh, pairs, batch_size))
