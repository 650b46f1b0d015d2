"""Response of a superconductor to a permanent magnet: four models of increasing fidelity.

All models give the magnetic energy ``U_mag`` of a magnet (position, moment direction) in
front of a superconducting surface; `total_energy` adds gravity ``m g (up . x)``.

1. `ImageModel`: an infinite superconducting plane, the mirror image of a dipole
   (paper eqs. 1-3): ``U = mu0 mu^2 (1 + cos^2 theta) / (64 pi h^3)``.
2. `TwoLoopModel`: the stub top as one loop of radius ``R1`` carrying
   ``I = -B_z R1 / mu0`` (``B_z`` the magnet's field at the loop centre), ``U = -mu . B_loop / 2``
   (paper section II.2).
3. `NLoopModel`: the paper's N-loop model. Every surface element of radius ``rho`` carries a
   loop current ``i = -B_n rho / mu0`` from the magnet's normal field at its centre; the
   loops' fields at the magnet give ``U = -1/2 sum mu . B_loop``. The elements do not see
   each other and the energy is not a converged discretisation of anything: for a plane it
   scales with the element radius (``U / U_image`` is about ``0.65 rho / h``), so results
   belong to one mesh resolution.
4. `MeissnerModel` (the default): the ideal Meissner state, ``B_n = 0`` on the surface,
   solved self-consistently as a boundary-element system. The superconductor's response in
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

import functools
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl
import numpy as np

from .. import _validate as v
from ..constants import G0, MU0
from ..fields import loop_field
from ._cavity_mesh import CoaxialCavity, Mesh
from ._magnets import SphereMagnet, _disc_rule, gravity_energy

__all__ = [
    "CavityModel",
    "ImageModel",
    "TwoLoopModel",
    "NLoopModel",
    "MeissnerModel",
    "total_energy",
    "clearance",
    "check_position",
]

_FOUR_PI = 4.0 * math.pi


def _unit(direction):
    d = jnp.asarray(direction, dtype=float)
    return d / jnp.linalg.norm(d, axis=-1, keepdims=True)


class CavityModel(eqx.Module):
    """Interface: a superconducting response model.

    Subclasses implement `magnetic_energy(magnet, position, direction)`; batched landscapes
    use `magnetic_energies`, which subclasses may specialise.
    """

    def magnetic_energy(self, magnet, position, direction):
        raise NotImplementedError

    def magnetic_energies(self, magnet, positions, direction, *, batch_size: int = 256):
        """`magnetic_energy` at many positions ``(P, 3)`` with one direction (or ``(P, 3)``)."""
        pos = jnp.asarray(positions, dtype=float)
        d = jnp.broadcast_to(jnp.asarray(direction, dtype=float), pos.shape)
        return jax.lax.map(lambda a: self.magnetic_energy(magnet, a[0], a[1]), (pos, d), batch_size=batch_size)

    def response_tensor(self, magnet, position):
        """Symmetric 3x3 ``W`` with ``U_mag = d^T W d`` for a unit direction ``d`` (dipole response).

        By polarisation of the quadratic form ``U(m)`` of an unnormalised moment vector.
        """
        eye = jnp.eye(3)
        u = lambda m: self.magnetic_energy(magnet, position, m, normalize=False)  # noqa: E731
        diag = jnp.stack([u(eye[a]) for a in range(3)])
        w = jnp.diag(diag)
        for a, b in ((0, 1), (0, 2), (1, 2)):
            off = 0.5 * (u(eye[a] + eye[b]) - diag[a] - diag[b])
            w = w.at[a, b].set(off).at[b, a].set(off)
        return w

    def surface_distance(self, points):
        """Signed distance (m) from points to the superconductor; negative behind its surface."""
        raise NotImplementedError


# --------------------------------------------------------------------------- model 1


class ImageModel(CavityModel):
    """Dipole above an infinite superconducting plane ``z = plane_height`` (paper eqs. 1-3).

    ```python
    >>> from invdesign.levitation.cavity import SphereMagnet
    >>> m = SphereMagnet(remanence=1.47)
    >>> U = ImageModel(0.0).magnetic_energy(m, jnp.array([0.0, 0.0, 1e-3]), jnp.array([0.0, 0.0, 1.0]))
    >>> round(float(U / (MU0 * m.moment**2 / (32 * jnp.pi * 1e-9))), 12)
    1.0
    ```
    """

    plane_height: jax.Array = eqx.field(converter=lambda x: jnp.asarray(x, dtype=float), default=0.0)

    def magnetic_energy(self, magnet, position, direction, normalize=True):
        m = jnp.asarray(direction, dtype=float)
        m = magnet.moment * (_unit(m) if normalize else m)
        h = jnp.asarray(position, dtype=float)[..., 2] - self.plane_height
        # mu^2 (1 + cos^2) = |m|^2 + m_z^2
        return MU0 * (jnp.sum(m * m, -1) + m[..., 2] ** 2) / (64.0 * jnp.pi * h**3)

    def surface_distance(self, points):
        return jnp.asarray(points, dtype=float)[..., 2] - self.plane_height


def image_height(magnet, orientation: str = "vertical"):
    """Levitation height above an infinite plane (paper eq. 3 for a vertical moment)."""
    c = 2.0 if orientation == "vertical" else 1.0
    return (3.0 * c * MU0 * magnet.moment**2 / (64.0 * jnp.pi * magnet.mass * G0)) ** 0.25


# --------------------------------------------------------------------------- model 2


class TwoLoopModel(CavityModel):
    """The stub as a single loop of radius `loop_radius` at height `loop_height` (paper II.2)."""

    loop_radius: jax.Array = eqx.field(converter=lambda x: jnp.asarray(x, dtype=float), default=2e-3)
    loop_height: jax.Array = eqx.field(converter=lambda x: jnp.asarray(x, dtype=float), default=5e-3)

    def magnetic_energy(self, magnet, position, direction, normalize=True):
        d = jnp.asarray(direction, dtype=float)
        scale = jnp.linalg.norm(d) if not normalize else 1.0
        d_u = _unit(d) if normalize else d / jnp.where(scale > 0, scale, 1.0)
        centre = jnp.stack([jnp.zeros(()), jnp.zeros(()), self.loop_height])
        bz = magnet.field(centre, position, d_u)[2] * scale
        current = -bz * self.loop_radius / MU0
        b = loop_field(position, self.loop_radius, current, centre, jnp.array([0.0, 0.0, 1.0]))
        return -0.5 * magnet.moment * jnp.dot(d_u * scale, b)

    def surface_distance(self, points):
        return jnp.asarray(points, dtype=float)[..., 2] - self.loop_height


# --------------------------------------------------------------------------- shared geometry checks


def _mesh_distance(mesh: Mesh, points):
    """Signed plane distance to the nearby elements (negative behind the surface)."""
    p = jnp.asarray(points, dtype=float)
    e = p[..., None, :] - mesh.centre
    dist = jnp.linalg.norm(e, axis=-1)
    plane = jnp.sum(e * mesh.normal, axis=-1)
    dmin = jnp.min(dist, axis=-1, keepdims=True)
    near = dist <= dmin + 2.0 * mesh.radius
    return jnp.min(jnp.where(near, plane, jnp.inf), axis=-1)


class _MeshModel(CavityModel):
    def surface_distance(self, points):
        if self.geometry is not None:
            return self.geometry.clearance(points)
        return _mesh_distance(self.mesh, points)


# --------------------------------------------------------------------------- model 3


class NLoopModel(_MeshModel):
    """The paper's N-loop model on a mesh of circular elements (section II.3, appendix A).

    **Arguments:**

    - `mesh`: the surface elements (their radii are the loop radii).
    - `geometry`: optional `CoaxialCavity`, used for exact wall-distance checks.
    """

    mesh: Mesh
    geometry: CoaxialCavity | None = None

    def loop_currents(self, magnet, position, direction):
        """Loop current (A) of every element, ``i = -B_n rho / mu0``."""
        b = magnet.field(self.mesh.centre, position, direction)
        bn = jnp.sum(b * self.mesh.normal, axis=-1)
        return -bn * self.mesh.radius / MU0

    def magnetic_energy(self, magnet, position, direction, normalize=True):
        d = jnp.asarray(direction, dtype=float)
        scale = jnp.linalg.norm(d) if not normalize else 1.0
        d_u = _unit(d) if normalize else d / jnp.where(scale > 0, scale, 1.0)
        i = self.loop_currents(magnet, position, d_u) * scale
        b = loop_field(position, self.mesh.radius, i, self.mesh.centre, self.mesh.normal)
        return -0.5 * magnet.moment * jnp.dot(d_u * scale, b)

    def magnetic_energies(self, magnet, positions, direction, *, batch_size: int = 32):
        return super().magnetic_energies(magnet, positions, direction, batch_size=batch_size)


# --------------------------------------------------------------------------- model 4


FAR_ORDER = 3
"""Gauss points per direction of the element rule for well-separated pairs (9 per element)."""

NEAR_ORDER = 8
"""Gauss points per direction for near pairs (64 per element)."""

NEAR_FACTOR = 2.0
"""Pairs closer than ``NEAR_FACTOR * (rho_i + rho_j)`` use the near rule."""


def _gauss01(n):
    x, w = np.polynomial.legendre.leggauss(n)
    return 0.5 * (x + 1.0), 0.5 * w


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


def element_rule(mesh: Mesh, order: int = FAR_ORDER):
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


def _source_terms(mesh: Mesh, order: int = FAR_ORDER):
    pts, w, _ = element_rule(mesh, order)
    return pts, w / _FOUR_PI


def _kernel_rows(x, pts, wts):
    """Field (A/m per unit charge density) at points x (..., 3) of every source element: (..., N, 3)."""
    e = x[..., None, None, :] - pts  # (..., N, Q, 3)
    r2 = jnp.sum(e * e, axis=-1)
    r2 = jnp.where(r2 > 0, r2, 1.0)  # a point on itself (masked by callers): keep gradients finite
    inv3 = wts / (r2 * jnp.sqrt(r2))
    return jnp.sum(e * inv3[..., None], axis=-2)


MID_FACTOR = 5.0
"""Pairs closer than ``MID_FACTOR * (rho_i + rho_j)`` average over the target element."""


def _pairs_within(c, rho, factor):
    from scipy.spatial import cKDTree

    tree = cKDTree(c)
    cand = tree.query_pairs(r=2.0 * factor * float(rho.max()), output_type="ndarray")
    if cand.size == 0:
        return np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.int32)
    i, j = cand[:, 0], cand[:, 1]
    close = np.linalg.norm(c[i] - c[j], axis=1) < factor * (rho[i] + rho[j])
    i, j = i[close], j[close]
    return np.concatenate([i, j]).astype(np.int32), np.concatenate([j, i]).astype(np.int32)


def near_pairs(mesh: Mesh):
    """Element pairs for the refined integration tiers of `assemble` (needs a concrete mesh).

    Returns ``(near_i, near_j, mid_i, mid_j)``: pairs closer than ``NEAR_FACTOR (rho_i +
    rho_j)`` and closer than ``MID_FACTOR (rho_i + rho_j)``, ``i != j``.
    """
    c = np.asarray(mesh.centre)
    rho = np.asarray(mesh.radius)
    return _pairs_within(c, rho, NEAR_FACTOR) + _pairs_within(c, rho, MID_FACTOR)


TARGET_ORDER = 2
"""Gauss points per direction of the test (target) rule of the Galerkin average (4 per element)."""


def _pair_values(i, j, tp, tw, tn, sp, sw):
    e = tp[i][:, None, :] - sp[j][None, :, :]  # (T, S, 3)
    r2 = jnp.sum(e * e, axis=-1)
    en = jnp.sum(e * tn[i][:, None, :], axis=-1)
    return jnp.sum(tw[i][:, None] * sw[j][None, :] * en / (r2 * jnp.sqrt(r2)))


def assemble(mesh: Mesh, pairs=None, *, batch_size: int = 128):
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


class MeissnerModel(_MeshModel):
    """Ideal Meissner response by a magnetic surface-charge boundary-element method.

    Construction assembles and LU-factors the ``N x N`` system once; every pose reuses it.

    **Arguments:**

    - `mesh`: the superconductor's surface (`Mesh`), normals into the vacuum.
    - `geometry`: optional `CoaxialCavity` for exact wall-distance checks.
    - `pairs`: element pairs of the refined integration tiers; default `near_pairs(mesh)`.
      Required (computed once from a concrete mesh of the same layout) when differentiating
      with respect to the geometry.

    ```python
    >>> from invdesign.levitation.cavity import SphereMagnet, plate_mesh
    >>> model = MeissnerModel(plate_mesh(radius=20e-3, spacing=0.1e-3))
    >>> m = SphereMagnet(remanence=1.47)
    >>> U = model.magnetic_energy(m, jnp.array([0.0, 0.0, 1e-3]), jnp.array([0.0, 0.0, 1.0]))
    >>> U_image = MU0 * m.moment**2 / (32 * jnp.pi * 1e-9)
    >>> abs(float(U / U_image) - 1.0) < 0.01
    True
    ```
    """

    mesh: Mesh
    lu: jax.Array
    piv: jax.Array
    geometry: CoaxialCavity | None = None

    def __init__(self, mesh: Mesh, geometry: CoaxialCavity | None = None, *, pairs=None, batch_size: int = 128):
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
        self.lu, self.piv = _factor_jit(mesh, tuple(jnp.asarray(a) for a in pairs), batch_size)

    # -- charges and fields
    def _rhs(self, magnet, position, direction):
        """``-H_magnet . n``: element averages (Galerkin) or centre values (collocation)."""
        if self.mesh.patch is None:
            b = magnet.field(self.mesh.centre, position, direction)
            return -jnp.sum(b * self.mesh.normal, axis=-1) / MU0
        pts, w, nrm = element_rule(self.mesh)
        b = magnet.field(pts, position, direction)
        return -jnp.sum(w * jnp.sum(b * nrm, axis=-1), axis=-1) / (MU0 * self.mesh.area)

    def solve(self, rhs):
        """Charge densities for normal-field data ``rhs`` (N,) or (N, K)."""
        return jsl.lu_solve((self.lu, self.piv), rhs)

    def charges(self, magnet, position, direction):
        """Induced magnetic surface-charge density sigma (A/m) on every element."""
        return self.solve(self._rhs(magnet, position, direction))

    def induced_field(self, points, sigma, *, batch_size: int = 64):
        """Induced H (A/m) at points ``(..., 3)`` in the vacuum from charges `sigma`."""
        pts, wts = _source_terms(self.mesh)
        x = jnp.asarray(points, dtype=float)
        flat = x.reshape(-1, 3)
        h = jax.lax.map(lambda p: jnp.sum(_kernel_rows(p, pts, wts) * sigma[:, None], axis=0), flat, batch_size=batch_size)
        return h.reshape(x.shape)

    def surface_field(self, sigma, magnet=None, position=None, direction=None):
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

    def surface_current(self, magnet, position, direction):
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

    def magnetic_energy(self, magnet, position, direction, normalize=True):
        dvec = jnp.asarray(direction, dtype=float)
        s = 1.0 if normalize else jnp.linalg.norm(dvec)
        du = _unit(dvec) if normalize else dvec / jnp.where(s > 0, s, 1.0)
        b_c, b_q, k = self._terms(magnet, position, du)
        sigma = self.solve(b_c)
        return s * s * self._energy_from_terms(sigma, b_c, b_q, k)

    def response_tensor(self, magnet, position):
        """``W`` (3x3, J) with ``U_mag = d^T W d``: three solves (dipole magnets)."""
        eye = jnp.eye(3)
        b_c, b_q, k = jax.vmap(lambda e: self._terms(magnet, position, e))(eye)
        sig = self.solve(b_c.T).T  # (3, N)
        kk = jnp.sum(k, axis=-1)  # (3, N)
        w = kk @ sig.T + 2.0 * jnp.einsum("anq,bnq->ab", k, b_q - b_c[:, :, None])
        w = -0.5 * MU0 * w
        return 0.5 * (w + w.T)

    def magnetic_energies(self, magnet, positions, direction, *, batch_size: int = 2048, chunk: int = 64):
        """Energies at ``P`` positions (one direction or one per position).

        The element data of `chunk` positions at a time are reduced to the right-hand sides
        and couplings ``(P, N)``; the charges of `batch_size` positions come from one
        triangular solve with that many right-hand sides (matrix-matrix speed).
        """
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


# --------------------------------------------------------------------------- energies and checks


def total_energy(model: CavityModel, magnet, position, direction, *, tilt=jnp.pi / 2, response=1.0):
    """Total energy ``response * U_mag + m g (up . x)`` (J).

    **Arguments:**

    - `model`: one of the four response models.
    - `magnet`: `SphereMagnet` or `DiskMagnet`.
    - `position`: magnet centre (m) in the cavity frame.
    - `direction`: moment direction (normalised here), e.g. `moment_direction(beta, gamma)`.
    - `tilt`: elevation of the cavity axis above the horizontal (radians; pi/2 upright).
    - `response`: effective response factor multiplying the superconductor's response
      (1 = ideal; see `calibrate_response`).

    Raises ValueError (when called with concrete values) if the magnet does not fit at
    `position` (inside a wall, below the floor, touching a surface).
    """
    check_position(model, magnet, position)
    return response * model.magnetic_energy(magnet, position, direction) + gravity_energy(magnet, position, tilt)


def clearance(model: CavityModel, magnet, positions):
    """Gap (m) between the magnet's bounding sphere and the superconductor (negative: overlap)."""
    return model.surface_distance(positions) - magnet.extent


def check_position(model: CavityModel, magnet, position, name: str = "position") -> None:
    """Raise ValueError naming `name` if the magnet at `position` overlaps the superconductor."""
    if not v.is_concrete(position, model, magnet):
        return
    v.check_vectors(name, position)
    p = np.asarray(position, dtype=float)
    dist = np.asarray(model.surface_distance(jnp.asarray(p)))
    ext = float(magnet.extent)
    if np.any(dist < 0):
        where = "below the floor or inside a wall" if isinstance(model, _MeshModel) else "behind the superconducting surface"
        raise ValueError(
            f"{name} = {p.tolist()} m lies {where} (distance {float(np.min(dist)):.3g} m to the vacuum side)"
        )
    if np.any(dist < ext):
        raise ValueError(
            f"{name} = {p.tolist()} m puts the magnet into a wall: its centre is {float(np.min(dist)):.3g} m from the "
            f"superconductor but the magnet reaches {ext:.3g} m (allowed: distance >= {ext:.3g} m)"
        )
