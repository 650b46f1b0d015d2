"""Model 4 (the default): the ideal Meissner state by a boundary-element method, and its factory.

``B_n = 0`` on the surface, solved self-consistently as a boundary-element system (the
machinery is in `_bem.py`, the element rules in `_quadrature.py`). The superconductor's response in
the vacuum is the field ``H = -grad phi`` of a single layer of magnetic surface charge
``sigma`` (A/m) on the surface; the normal field on the vacuum side is
``sigma / 2 + K' sigma`` (``K'`` the adjoint double-layer operator), so

    (1/2 I + K') sigma = -H_magnet . n

is a second-kind integral equation (the exterior Neumann problem), well conditioned and
convergent under mesh refinement. Piecewise-constant ``sigma`` on the circular elements,
collocation at element centres, a degree-5 seven-point disc rule for every source
element, and the curvature term ``H_mean rho / 4`` for an element's own contribution.
The matrix depends on the geometry only: it is assembled and LU-factored once per mesh
and reused for every magnet pose (`MeissnerModel` holds the factors). The energy of a
magnet with magnetisation ``M`` is ``U = -1/2 int M . B_ind dV`` (a single point for a
sphere, by the mean-value property; a volume rule for a disk). Differentiable with
respect to the magnet pose and, through assembly and factorisation, the mesh.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl
from jaxtyping import Array, ArrayLike, Float, Int

from .. import _validate as v
from .._types import Mat3, Point3Like, Scalar, Vec3, Vec3Like
from ..constants import MU0
from ._bem import _FOUR_PI, BemMatrix, PairListsLike, _factor_jit, _inverse_jit, _kernel_rows, _source_terms, near_pairs
from ._geometry import CoaxialCavity
from ._magnets import Magnet, SphereMagnet, _unit
from ._mesh import ElementScalar, ElementVec3, Mesh, MeshLayout, cavity_mesh
from ._model import Energies, PositionsLike, _check_energy_call, _MeshModel
from ._quadrature import element_rule

__all__ = ["MEISSNER_SPACING", "MeissnerModel", "meissner_model"]

NormalDataLike = Float[ArrayLike, "n *k"]
"""Normal-field data (A/m) per element, optionally with ``K`` right-hand sides."""

Charges = Float[Array, "n *k"]
"""Surface-charge densities (A/m) per element, optionally for ``K`` right-hand sides."""

Pivots = Int[Array, " n"]
"""Row pivots of an LU factorisation."""

MEISSNER_SPACING = 0.4e-3
"""Default element size (m) of the Meissner model's cavity mesh (refined at the stub rim)."""


class MeissnerModel(_MeshModel):
    """Ideal Meissner response by a magnetic surface-charge boundary-element method.

    Construction assembles and LU-factors the ``N x N`` system once; every pose reuses it.

    **Arguments:**

    - `mesh`: the superconductor's surface (`Mesh`), normals into the vacuum.
    - `geometry`: optional `CoaxialCavity` for exact wall-distance checks.
    - `pairs`: element pairs of the refined integration tiers; default `near_pairs(mesh)`.
      Required (computed once from a concrete mesh of the same layout) when differentiating
      with respect to the geometry.
    - `solver`: `"lu"` (default) keeps the LU factors and solves by substitution;
      `"inverse"` keeps the explicit inverse (`bem_inverse`) and solves by matrix products:
      the same charges to rounding (the system is well conditioned), and the form to use
      when many designs are evaluated under `vmap` (populations of a genetic search),
      where batched factorisations deadlocked jaxlib 0.10.2's CPU runtime.

    ```python
    >>> from invdesign.cavity import SphereMagnet, plate_mesh
    >>> model = MeissnerModel(plate_mesh(radius=20e-3, spacing=0.1e-3))
    >>> m = SphereMagnet(remanence=1.47)
    >>> U = model.magnetic_energy(m, jnp.array([0.0, 0.0, 1e-3]), jnp.array([0.0, 0.0, 1.0]))
    >>> U_image = MU0 * m.moment**2 / (32 * jnp.pi * 1e-9)
    >>> abs(float(U / U_image) - 1.0) < 0.01
    True
    ```
    """

    mesh: Mesh
    lu: BemMatrix
    piv: Pivots | None
    geometry: CoaxialCavity | None = None

    def __init__(self, mesh: Mesh, geometry: CoaxialCavity | None = None, *, pairs: PairListsLike | None = None,
                 batch_size: int = 128, solver: str = "lu"):
        if not isinstance(mesh, Mesh):
            raise TypeError(f"mesh must be a Mesh, got {type(mesh).__name__}")
        if pairs is None and not v.is_concrete(mesh):
            raise ValueError(
                "pairs is required when the mesh is traced (jit/grad with respect to geometry): "
                "pass pairs=near_pairs(concrete_mesh) computed once for the mesh layout"
            )
        self.mesh = mesh
        self.geometry = geometry
        if pairs is None:
            pairs = near_pairs(mesh)
        pairs = tuple(jnp.asarray(a) for a in pairs)
        if solver == "lu":
            self.lu, self.piv = _factor_jit(mesh, pairs, batch_size)
        elif solver == "inverse":
            self.lu, self.piv = _inverse_jit(mesh, pairs, batch_size), None
        else:
            raise ValueError(f'solver must be "lu" or "inverse", got {solver!r}')

    # -- charges and fields
    def _rhs(self, magnet, position, direction):
        """``-H_magnet . n``: element averages (Galerkin) or centre values (collocation)."""
        if self.mesh.patch is None:
            b = magnet.field(self.mesh.centre, position, direction)
            return -jnp.sum(b * self.mesh.normal, axis=-1) / MU0
        pts, w, nrm = element_rule(self.mesh)
        b = magnet.field(pts, position, direction)
        return -jnp.sum(w * jnp.sum(b * nrm, axis=-1), axis=-1) / (MU0 * self.mesh.area)

    def solve(self, rhs: NormalDataLike) -> Charges:
        """Charge densities for normal-field data ``rhs`` (N,) or (N, K)."""
        if self.piv is None:  # `lu` holds the explicit inverse (solver="inverse")
            return self.lu @ rhs
        return jsl.lu_solve((self.lu, self.piv), rhs)

    def charges(self, magnet: Magnet, position: Point3Like, direction: Point3Like) -> ElementScalar:
        """Induced magnetic surface-charge density sigma (A/m) on every element."""
        return self.solve(self._rhs(magnet, position, direction))

    def induced_field(self, points: Vec3Like, sigma: ElementScalar, *, batch_size: int = 64) -> Vec3:
        """Induced H (A/m) at points ``(..., 3)`` in the vacuum from charges `sigma`."""
        pts, wts = _source_terms(self.mesh)
        x = jnp.asarray(points, dtype=float)
        flat = x.reshape(-1, 3)
        h = jax.lax.map(lambda p: jnp.sum(_kernel_rows(p, pts, wts) * sigma[:, None], axis=0), flat, batch_size=batch_size)
        return h.reshape(x.shape)

    def surface_field(self, sigma: ElementScalar, magnet: Magnet | None = None, position: Point3Like | None = None,
                      direction: Point3Like | None = None) -> ElementVec3:
        """Total H (A/m) on the vacuum side at element centres: the magnet's plus the charges'.

        The induced part is the principal value plus the jump ``sigma n / 2``.
        """
        pts, wts = _source_terms(self.mesh)
        idx = jnp.arange(self.mesh.size)

        def at(i):
            k = _kernel_rows(self.mesh.centre[i], pts, wts)
            k = jnp.where((idx == i)[:, None], 0.0, k)
            return jnp.sum(k * sigma[:, None], axis=0)

        h = jax.lax.map(at, idx, batch_size=128) + 0.5 * sigma[:, None] * self.mesh.normal
        if magnet is not None:
            h = h + magnet.field(self.mesh.centre, position, direction) / MU0
        return h

    def surface_current(self, magnet: Magnet, position: Point3Like,
                        direction: Point3Like) -> tuple[ElementVec3, ElementScalar]:
        """Screening sheet current ``K = n x H`` (A/m) at element centres, with sigma."""
        sigma = self.charges(magnet, position, direction)
        h = self.surface_field(sigma, magnet, position, direction)
        return jnp.cross(self.mesh.normal, h), sigma

    # -- energies
    def _terms(self, magnet, position, direction):
        """Normal-field data and coupling of one pose.

        Returns ``(b_c, b_q, k)``: ``-H_magnet . n`` as the right-hand side (N,) and at the
        quadrature points of every element (N, Q), and ``k`` (N, Q), the moment-direction
        component of the field at the magnet (volume-averaged) per unit charge density at each
        quadrature point, times ``|mu|`` and the quadrature weight.
        """
        pts, wts, nrm = element_rule(self.mesh)
        wts = wts / _FOUR_PI
        d = _unit(jnp.asarray(direction, dtype=float))
        if isinstance(magnet, SphereMagnet):
            return self._dipole_terms(pts, wts, nrm, jnp.asarray(position, dtype=float), magnet.moment * d)
        b_q = magnet.field(pts, position, d)
        b_q = -jnp.sum(b_q * nrm, axis=-1) / MU0
        if self.mesh.patch is None:
            b_c = self._rhs(magnet, position, d)
        else:
            b_c = jnp.sum(wts * b_q, axis=-1) * _FOUR_PI / self.mesh.area
        q, qw = magnet.quadrature(position, d)
        e = q[:, None, None, :] - pts  # (Q, N, 7, 3)
        r2 = jnp.sum(e * e, axis=-1)
        k = jnp.sum(qw[:, None, None] * (e @ d) / (r2 * jnp.sqrt(r2)), axis=0) * wts * magnet.moment
        return b_c, b_q, k

    def _dipole_terms(self, pts, wts, nrm, x, m):
        """`_terms` of a point dipole ``m`` at ``x``, written with scalar arrays (one fused pass)."""
        rx, ry, rz = pts[..., 0] - x[0], pts[..., 1] - x[1], pts[..., 2] - x[2]
        r2 = rx * rx + ry * ry + rz * rz
        inv_r2 = 1.0 / r2
        inv_r3 = inv_r2 * jnp.sqrt(inv_r2) / _FOUR_PI
        mr = m[0] * rx + m[1] * ry + m[2] * rz
        nr = nrm[..., 0] * rx + nrm[..., 1] * ry + nrm[..., 2] * rz
        mn = nrm[..., 0] * m[0] + nrm[..., 1] * m[1] + nrm[..., 2] * m[2]
        b_q = -(3.0 * mr * nr * inv_r2 - mn) * inv_r3  # -H . n
        # k = w |mu| d . (x - p) / (4 pi |x - p|^3), with wts already divided by 4 pi
        k = -wts * mr * inv_r3 * _FOUR_PI
        if self.mesh.patch is None:
            c = self.mesh.centre - x
            cn = jnp.sum(c * self.mesh.normal, axis=-1)
            rc2 = jnp.sum(c * c, axis=-1)
            b_c = -(3.0 * (c @ m) * cn / rc2 - self.mesh.normal @ m) / (_FOUR_PI * rc2 * jnp.sqrt(rc2))
        else:
            b_c = jnp.sum(wts * b_q, axis=-1) * _FOUR_PI / self.mesh.area
        return b_c, b_q, k

    def _energy_from_terms(self, sigma, b_c, b_q, k):
        # sigma = 2 b + tau with tau the smooth coupled part: the direct part 2 b is integrated
        # pointwise with the element rule, tau as piecewise constant (see module docstring)
        direct = 2.0 * jnp.sum((b_q - b_c[:, None]) * k)
        return -0.5 * MU0 * (jnp.dot(sigma, jnp.sum(k, axis=-1)) + direct)

    def magnetic_energy(self, magnet: Magnet, position: Point3Like, direction: Point3Like,
                        normalize: bool = True) -> Scalar:
        _check_energy_call(self, magnet, position, direction, normalize)
        dvec = jnp.asarray(direction, dtype=float)
        s = 1.0 if normalize else jnp.linalg.norm(dvec)
        du = _unit(dvec) if normalize else dvec / jnp.where(s > 0, s, 1.0)
        b_c, b_q, k = self._terms(magnet, position, du)
        sigma = self.solve(b_c)
        return s * s * self._energy_from_terms(sigma, b_c, b_q, k)

    def response_tensor(self, magnet: Magnet, position: Point3Like) -> Mat3:
        """``W`` (3x3, J) with ``U_mag = d^T W d``: three solves (dipole magnets)."""
        eye = jnp.eye(3)
        b_c, b_q, k = jax.vmap(lambda e: self._terms(magnet, position, e))(eye)
        sig = self.solve(b_c.T).T  # (3, N)
        kk = jnp.sum(k, axis=-1)  # (3, N)
        w = kk @ sig.T + 2.0 * jnp.einsum("anq,bnq->ab", k, b_q - b_c[:, :, None])
        w = -0.5 * MU0 * w
        return 0.5 * (w + w.T)

    def magnetic_energies(self, magnet: Magnet, positions: PositionsLike, direction: Vec3Like, *,
                          batch_size: int = 2048, chunk: int = 64) -> Energies:
        """Energies at ``P`` positions (one direction or one per position).

        The element data of `chunk` positions at a time are reduced to the right-hand sides
        and couplings ``(P, N)``; the charges of `batch_size` positions come from one
        triangular solve with that many right-hand sides (matrix-matrix speed).
        """
        _check_energy_call(self, magnet, positions, direction, name="positions")
        pos = jnp.asarray(positions, dtype=float)
        d = jnp.broadcast_to(_unit(jnp.asarray(direction, dtype=float)), pos.shape)
        n_pos = pos.shape[0]
        chunk = max(1, min(chunk, n_pos))
        batch_size = max(chunk, min(batch_size, -(-n_pos // chunk) * chunk))
        batch_size = -(-batch_size // chunk) * chunk
        nb = -(-n_pos // batch_size)
        pad = nb * batch_size - n_pos
        pos_p = jnp.concatenate([pos, jnp.broadcast_to(pos[-1:], (pad, 3))]) if pad else pos
        d_p = jnp.concatenate([d, jnp.broadcast_to(d[-1:], (pad, 3))]) if pad else d

        def reduce_one(p, dd):
            b_c, b_q, k = self._terms(magnet, p, dd)
            direct = 2.0 * jnp.sum((b_q - b_c[:, None]) * k)
            return b_c, jnp.sum(k, axis=-1), direct

        def batch(args):
            pc, dc = args
            b_c, kk, direct = jax.lax.map(lambda a: reduce_one(a[0], a[1]), (pc, dc), batch_size=chunk)
            sig = self.solve(b_c.T)  # (N, B)
            return -0.5 * MU0 * (jnp.sum(kk * sig.T, axis=-1) + direct)

        out = jax.lax.map(batch, (pos_p.reshape(nb, batch_size, 3), d_p.reshape(nb, batch_size, 3)))
        return out.reshape(-1)[:n_pos]


def meissner_model(cavity: CoaxialCavity, spacing: float = MEISSNER_SPACING, *,
                   layout: MeshLayout | None = None) -> MeissnerModel:
    """The self-consistent Meissner model (model 4) on the default graded, rim-refined mesh.

    `layout` (from `cavity_layout(other, spacing)`) fixes the element counts, so that nearby
    geometries share array shapes and compiled functions.
    """
    return MeissnerModel(cavity_mesh(cavity, spacing, layout=layout), cavity)
