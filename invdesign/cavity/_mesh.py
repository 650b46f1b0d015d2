"""Surface meshes of superconducting bodies: circular elements with centre, radius, normal.

A mesh is a pytree (`Mesh`) of element arrays. Axisymmetric surfaces are described by their
meridian profile, polylines in the ``(r, z)`` half plane, and cut into rings of roughly equal
elements: each straight segment of a profile is divided into bands whose widths follow an
element-size function, and each band is divided into ``n_phi`` equal azimuthal pieces. The
integer counts (bands per segment, pieces per band) form a static `MeshLayout`; for a fixed
layout every element coordinate is a smooth function of the profile vertices, so the mesh
can be differentiated with respect to geometry parameters (cavity radius, stub radius and
height) as long as the element count stays fixed.

Conventions: the unit normal of each element points into the vacuum. Along a profile
polyline the vacuum lies to the left of the direction of travel in the ``(r, z)`` plane
(normal ``(-dz, dr) / L``).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Callable, Sequence

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Int

from .. import _validate as v
from .._types import BatchScalar, BatchScalarLike, ScalarLike
from ._geometry import CoaxialCavity, ProfileLike

__all__ = [
    "GradedSize",
    "Mesh",
    "MeshLayout",
    "UniformSize",
    "axisymmetric_mesh",
    "cavity_layout",
    "cavity_mesh",
    "cavity_size",
    "mesh_layout",
    "parallel_plates_mesh",
    "plate_mesh",
    "sphere_mesh",
]

ElementScalar = Float[Array, " n"]
"""One value per element of a mesh of ``n`` elements (radii, areas, charge densities)."""

ElementScalarLike = Float[ArrayLike, " n"]
"""One value per element as input."""

ElementVec3 = Float[Array, "n 3"]
"""One Cartesian 3-vector per element (centres, normals, tangents, fields at the centres)."""

ElementVec3Like = Float[ArrayLike, "n 3"]
"""One 3-vector per element as input."""

Curvatures = Float[Array, "n 2"]
"""Principal curvatures (1/m) per element, along `tangent` and along `bitangent`."""

CurvaturesLike = Float[ArrayLike, "*#n 2"]
"""Principal curvatures as input, broadcast to ``(n, 2)`` (one pair for all elements works)."""

Patches = Float[Array, "n 6"]
"""Exact element patches, rows ``(r_a, z_a, r_b, z_b, phi_a, phi_b)``."""

PatchesLike = Float[ArrayLike, "n 6"]
"""Exact element patches as input."""

ElementLabels = Int[np.ndarray, " n"]
"""An integer label per element."""

SurfaceRanges = tuple[tuple[str, int, int], ...]
"""Named contiguous element ranges ``((name, start, stop), ...)``."""

SizeFunction = Callable[[BatchScalar, BatchScalar], BatchScalar]
"""An element-size function ``h(r, z)`` (m) on the meridian half plane (`GradedSize`, `UniformSize`)."""

_SAMPLES = 257  # samples per segment for the cumulative element-density integral
_SMOOTH_TURN = math.radians(30.0)  # vertices turning less than this carry curvature


class Mesh(eqx.Module):
    """Circular surface elements of a superconductor.

    **Arguments:**

    - `centre`: element centres ``(N, 3)`` in metres.
    - `normal`: unit normals ``(N, 3)`` pointing into the vacuum (normalised here).
    - `radius`: element radii ``(N,)`` in metres (for generated meshes the radius of the
      circle with the element's area).
    - `area`: element areas ``(N,)`` in m^2; default ``pi radius^2``.
    - `tangent`: a unit tangent ``(N, 3)`` per element; default any vector normal to `normal`.
    - `curvatures`: principal curvatures ``(N, 2)`` in 1/m along `tangent` and along
      `bitangent`, positive where the surface is convex seen from the vacuum (it bends away
      from the vacuum side); default 0 (flat elements). Used by the boundary-element
      quadrature, which places its points on the curved element.
    - `surfaces`: names of contiguous element ranges, ``((name, start, stop), ...)``.
    - `patch`: optional exact shape of each element as a patch of a surface of revolution,
      ``(N, 6)`` rows ``(r_a, z_a, r_b, z_b, phi_a, phi_b)``: the band from ``(r_a, z_a)`` to
      ``(r_b, z_b)`` in the meridian plane between azimuths ``phi_a`` and ``phi_b``. Set by
      `axisymmetric_mesh`; the boundary-element model integrates over it exactly.

    A user-supplied mesh needs only `centre`, `normal` and `radius`:

    ```python
    >>> m = Mesh(centre=[[0.0, 0.0, 0.0]], normal=[[0.0, 0.0, 2.0]], radius=[1e-3])
    >>> m.size, [float(c) for c in m.normal[0]]
    (1, [0.0, 0.0, 1.0])
    ```
    """

    centre: ElementVec3
    normal: ElementVec3
    radius: ElementScalar
    area: ElementScalar
    tangent: ElementVec3
    curvatures: Curvatures
    patch: Patches | None
    surfaces: SurfaceRanges = eqx.field(static=True, default=())

    def __init__(self, centre: ElementVec3Like, normal: ElementVec3Like, radius: ElementScalarLike,
                 area: ElementScalarLike | None = None, tangent: ElementVec3Like | None = None,
                 curvatures: CurvaturesLike | None = None, surfaces: Sequence[tuple[str, int, int]] = (),
                 patch: PatchesLike | None = None):
        centre = jnp.asarray(centre, dtype=float)
        normal = jnp.asarray(normal, dtype=float)
        radius = jnp.asarray(radius, dtype=float)
        if centre.ndim != 2 or centre.shape[-1] != 3:
            raise ValueError(f"centre must have shape (N, 3), got {centre.shape}")
        n = centre.shape[0]
        if n == 0:
            raise ValueError("the mesh is empty: centre has no elements (need at least one)")
        if normal.shape != (n, 3):
            raise ValueError(f"normal must have shape {(n, 3)} like centre, got {normal.shape}")
        if radius.shape != (n,):
            raise ValueError(f"radius must have shape {(n,)}, got {radius.shape}")
        v.check_finite("centre", centre)
        v.check_nonzero_vectors("normal", normal)
        v.check_positive("radius", radius)
        normal = normal / jnp.linalg.norm(normal, axis=-1, keepdims=True)
        area = jnp.pi * radius**2 if area is None else jnp.asarray(area, dtype=float)
        if area.shape != (n,):
            raise ValueError(f"area must have shape {(n,)}, got {area.shape}")
        v.check_positive("area", area)
        if tangent is None:
            tangent = _any_tangent(normal)
        else:
            tangent = jnp.asarray(tangent, dtype=float)
            if tangent.shape != (n, 3):
                raise ValueError(f"tangent must have shape {(n, 3)}, got {tangent.shape}")
            v.check_nonzero_vectors("tangent", tangent)
            tangent = tangent - jnp.sum(tangent * normal, -1, keepdims=True) * normal
            tangent = tangent / jnp.linalg.norm(tangent, axis=-1, keepdims=True)
        curvatures = (
            jnp.zeros((n, 2)) if curvatures is None else jnp.broadcast_to(jnp.asarray(curvatures, dtype=float), (n, 2))
        )
        v.check_finite("curvatures", curvatures)
        surfaces = tuple((str(name), int(a), int(b)) for name, a, b in surfaces)
        for name, a, b in surfaces:
            if not 0 <= a <= b <= n:
                raise ValueError(f"surfaces: range {name!r} [{a}, {b}) is outside 0..{n}")
        self.centre, self.normal, self.radius = centre, normal, radius
        self.area, self.tangent, self.curvatures = area, tangent, curvatures
        self.surfaces = surfaces
        if patch is not None:
            patch = jnp.asarray(patch, dtype=float)
            if patch.shape != (n, 6):
                raise ValueError(f"patch must have shape {(n, 6)}, got {patch.shape}")
        self.patch = patch

    @property
    def size(self) -> int:
        """Number of elements."""
        return self.centre.shape[0]

    @property
    def mean_curvature(self) -> ElementScalar:
        """Mean curvature ``(kappa_1 + kappa_2) / 2`` (1/m), convex seen from the vacuum > 0."""
        return 0.5 * (self.curvatures[:, 0] + self.curvatures[:, 1])

    @property
    def bitangent(self) -> ElementVec3:
        """Second unit tangent ``normal x tangent``."""
        return jnp.cross(self.normal, self.tangent)

    def surface(self, name: str) -> slice:
        """Element range of the named surface."""
        for n, a, b in self.surfaces:
            if n == name:
                return slice(a, b)
        raise KeyError(f"no surface named {name!r}; surfaces are {[s[0] for s in self.surfaces]}")

    def surface_index(self) -> ElementLabels:
        """Integer label per element (index into `surfaces`, -1 where unnamed)."""
        lab = np.full(self.size, -1, dtype=int)
        for k, (_, a, b) in enumerate(self.surfaces):
            lab[a:b] = k
        return lab


def _any_tangent(normal):
    ref = jnp.where(jnp.abs(normal[:, :1]) < 0.9, jnp.array([1.0, 0.0, 0.0]), jnp.array([0.0, 1.0, 0.0]))
    t = ref - jnp.sum(ref * normal, -1, keepdims=True) * normal
    return t / jnp.linalg.norm(t, axis=-1, keepdims=True)


@dataclasses.dataclass(frozen=True)
class MeshLayout:
    """Static integer structure of an axisymmetric mesh.

    `rings[p][s]` is the tuple of azimuthal counts ``n_phi`` of the bands of segment ``s`` of
    profile ``p``. Pass a layout to `axisymmetric_mesh` (or `cavity_mesh`) to keep the element
    count fixed while differentiating with respect to the geometry.
    """

    rings: tuple[tuple[tuple[int, ...], ...], ...]

    @property
    def size(self) -> int:
        return int(sum(sum(seg) for prof in self.rings for seg in prof))


class GradedSize(eqx.Module):
    """Element size that grows linearly away from a region of interest.

    ``h = spacing + growth * max(0, d - free)`` where ``d`` is the distance of the point
    ``(r, z)`` from `focus` along the chosen `metric`: ``"z"`` (height above ``focus[1]``),
    ``"r"`` (radius beyond ``focus[0]``) or ``"rz"`` (Euclidean distance in the half plane).
    Optional `edges` ``((r, z), ...)`` are refined: ``h <= edge_size + edge_growth * d_edge``
    (the surface charge is singular at a convex edge).
    """

    spacing: float
    free: ScalarLike
    growth: float = 0.3
    focus: tuple[float, float] = (0.0, 0.0)
    metric: str = eqx.field(static=True, default="rz")
    edges: tuple[tuple[ScalarLike, ScalarLike], ...] = ()
    edge_size: float = 0.0
    edge_growth: float = 0.5

    def __call__(self, r: BatchScalarLike, z: BatchScalarLike) -> BatchScalar:
        if self.metric == "z":
            d = z - self.focus[1]
        elif self.metric == "r":
            d = r - self.focus[0]
        else:
            d = _soft_hypot(r - self.focus[0], z - self.focus[1])
        h = self.spacing + self.growth * jnp.maximum(0.0, d - self.free)
        for re, ze in self.edges:
            h = jnp.minimum(h, self.edge_size + self.edge_growth * _soft_hypot(r - re, z - ze))
        return h


def _soft_hypot(a, b):
    """hypot with a finite derivative at the origin (offset of 1 nm, negligible in h)."""
    return jnp.sqrt(a * a + b * b + 1e-18)


_CAP = 1.0 - 1.0 / math.sqrt(math.pi)
"""A cap (band touching the axis) is 1/sqrt(pi) of a band wide, so its area ~ h^2 like the others."""


def _segment_nodes(p0, d, length, size, plan):
    """Band boundaries along all straight segments at once: the points ``(r, z)`` of `plan`'s nodes.

    `p0`, `d` ``(S, 2)`` are the segments' start points and vectors ``p1 - p0``, `length` their
    lengths. Along each segment the nodes split the integral of the element density ``1 / h``
    (trapezoidal over `_SAMPLES` samples) into equal parts (caps on the axis count `_CAP` of a
    band); the node fractions are interpolated from each segment's cumulative integral.
    """
    t = jnp.linspace(0.0, 1.0, _SAMPLES)
    pts = p0[:, None, :] + t[None, :, None] * d[:, None, :]
    n_seg = p0.shape[0]
    dens = (1.0 / size(pts[..., 0].reshape(-1), pts[..., 1].reshape(-1))).reshape(n_seg, _SAMPLES)
    steps = jnp.cumsum(0.5 * (dens[:, 1:] + dens[:, :-1]) * jnp.diff(t), axis=1)
    cum = jnp.concatenate([jnp.zeros((n_seg, 1)), steps], axis=1) * length[:, None]
    # jnp.interp(target, cum[s], t) for every node (its segment s), as one batched gather
    seg = plan.node_seg
    xp = cum[seg]
    target = plan.node_frac * xp[:, -1]
    i = jnp.clip(jnp.sum(xp <= target[:, None], axis=1), 1, _SAMPLES - 1)
    rows = np.arange(seg.size)
    x_lo, x_hi = xp[rows, i - 1], xp[rows, i]
    f_lo, f_hi = t[i - 1], t[i]
    dx = x_hi - x_lo
    dx0 = jnp.abs(dx) <= np.spacing(np.finfo(np.float64).eps)
    tk = jnp.where(dx0, f_lo, f_lo + ((target - x_lo) / jnp.where(dx0, 1.0, dx)) * (f_hi - f_lo))
    tk = jnp.where(target < xp[:, 0], t[0], tk)
    tk = jnp.where(target > xp[:, -1], t[-1], tk)
    tk = jnp.where(plan.node_first, 0.0, jnp.where(plan.node_last, 1.0, tk))
    return p0[seg] + tk[:, None] * d[seg]


@dataclasses.dataclass(frozen=True)
class _Plan:
    """Static index arrays of a `MeshLayout`: which segment, node and azimuth each element has.

    Segments are numbered through all profiles in order, vertices likewise (``vert0`` and
    ``vert1`` index the concatenated profile vertices), nodes (band boundaries) segment by
    segment, and elements in the mesh's order (profile, segment, band, azimuth).
    """

    vert0: np.ndarray  # (S,) first vertex of each segment
    vert1: np.ndarray  # (S,) its second vertex
    turn_prev: np.ndarray  # (V,) segment before each interior vertex
    turn_next: np.ndarray  # (V,) segment after it
    seg_in: np.ndarray  # (S,) interior vertex at the start of each segment, V where none
    seg_out: np.ndarray  # (S,) interior vertex at its end, V where none
    node_seg: np.ndarray  # (M,) segment of each node
    node_frac: np.ndarray  # (M,) the node's fraction of the segment's integrated density
    node_first: np.ndarray  # (M,) the node is the segment's start
    node_last: np.ndarray  # (M,) the node is the segment's end
    elem_seg: np.ndarray  # (N,) segment of each element
    elem_node: np.ndarray  # (N,) the node at the start of its band (the band ends at the next)
    nphi: np.ndarray  # (N,) elements in the element's ring
    phi_a: np.ndarray  # (N,) azimuthal extent of the element
    phi_b: np.ndarray
    cphi: np.ndarray  # (N,) cosine and sine of its mid azimuth
    sphi: np.ndarray
    cap: np.ndarray  # (N,) the element is a disc or cone cap on the axis
    surfaces: tuple[tuple[int, int], ...]  # element range of each profile


def _plan(layout: MeshLayout) -> _Plan:
    """The `_Plan` of a layout (cached; its counts as nested tuples of ints are the key)."""
    return _plan_of(tuple(tuple(tuple(int(n) for n in seg) for seg in prof) for prof in layout.rings))


@functools.lru_cache(maxsize=64)
def _plan_of(rings: tuple[tuple[tuple[int, ...], ...], ...]) -> _Plan:
    vert0, vert1, turn_prev, turn_next, seg_in, seg_out = [], [], [], [], [], []
    node_seg, node_frac, node_first, node_last = [], [], [], []
    elem_seg, elem_node, nphi, j = [], [], [], []
    surfaces = []
    n_vert = sum(len(segs) - 1 for segs in rings)  # interior vertices of all profiles
    vertex = segment = node = element = interior = 0
    for segs in rings:
        first_element = element
        for s, phis in enumerate(segs):
            vert0.append(vertex + s)
            vert1.append(vertex + s + 1)
            seg_in.append(interior + s - 1 if s >= 1 else n_vert)
            seg_out.append(interior + s if s < len(segs) - 1 else n_vert)
            if s >= 1:
                turn_prev.append(segment - 1)
                turn_next.append(segment)
            n = len(phis)
            cap_start, cap_end = phis[0] == 1 and n > 1, phis[-1] == 1 and n > 1
            k = np.arange(n + 1, dtype=float)
            if cap_start:
                k[1:] -= _CAP
            node_frac.append(k / (n - _CAP * (int(cap_start) + int(cap_end))))
            node_seg.append(np.full(n + 1, segment))
            node_first.append(np.arange(n + 1) == 0)
            node_last.append(np.arange(n + 1) == n)
            band = np.repeat(np.arange(n), phis)
            elem_seg.append(np.full(band.size, segment))
            elem_node.append(node + band)
            nphi.append(np.repeat(np.asarray(phis), phis))
            j.append(np.concatenate([np.arange(p) for p in phis]))
            segment += 1
            node += n + 1
            element += band.size
        vertex += len(segs) + 1
        interior += len(segs) - 1
        surfaces.append((first_element, element))
    nphi = np.concatenate(nphi).astype(float)
    j = np.concatenate(j).astype(float)
    ints = lambda a: np.asarray(a, dtype=np.int32)  # noqa: E731
    return _Plan(
        vert0=ints(vert0), vert1=ints(vert1), turn_prev=ints(turn_prev), turn_next=ints(turn_next),
        seg_in=ints(seg_in), seg_out=ints(seg_out),
        node_seg=ints(np.concatenate(node_seg)), node_frac=np.concatenate(node_frac),
        node_first=np.concatenate(node_first), node_last=np.concatenate(node_last),
        elem_seg=ints(np.concatenate(elem_seg)), elem_node=ints(np.concatenate(elem_node)),
        nphi=nphi, phi_a=2.0 * np.pi * j / nphi, phi_b=2.0 * np.pi * (j + 1.0) / nphi,
        cphi=np.cos(2.0 * np.pi * (j + 0.5) / nphi), sphi=np.sin(2.0 * np.pi * (j + 0.5) / nphi), cap=nphi == 1,
        surfaces=tuple(surfaces),
    )


def _layout(profiles, size) -> MeshLayout:
    """Static band and ring counts for concrete profiles (numpy; `size` called once per segment)."""
    rings = []
    t = np.linspace(0.0, 1.0, _SAMPLES)
    for prof in profiles:
        prof = np.asarray(prof, dtype=float)
        segs = []
        for a, b in zip(prof[:-1], prof[1:]):
            cs, ce = bool(a[0] == 0.0), bool(b[0] == 0.0)
            pts = a[None, :] + t[:, None] * (b - a)[None, :]
            dens = 1.0 / np.asarray(size(jnp.asarray(pts[:, 0]), jnp.asarray(pts[:, 1])), dtype=float)
            cum = np.concatenate([[0.0], np.cumsum(0.5 * (dens[1:] + dens[:-1]) * np.diff(t))]) * np.hypot(*(b - a))
            short = _CAP * (int(cs) + int(ce))
            n = max(1, int(round(cum[-1] + short)))
            if n > 1:
                k = np.arange(n + 1, dtype=float)
                if cs:
                    k[1:] -= _CAP
                tk = np.interp(k / (n - short) * cum[-1], cum, t)
                tk[0], tk[-1] = 0.0, 1.0
            else:
                tk = np.array([0.0, 1.0])
            nodes = a[None, :] + tk[:, None] * (b - a)[None, :]
            ra, za, rb, zb = nodes[:-1, 0], nodes[:-1, 1], nodes[1:, 0], nodes[1:, 1]
            width = np.maximum(np.hypot(rb - ra, zb - za), 1e-300)
            rm = 0.5 * (ra + rb)
            h = np.asarray(size(jnp.asarray(rm), jnp.asarray(0.5 * (za + zb))), dtype=float)
            # pieces about as long (azimuthally) as the band is wide; where a short segment
            # makes the band much narrower than the local size, use the local size instead
            ref = np.where(width > 0.25 * h, width, h)
            # an even count keeps every ring symmetric under x -> -x and y -> -y (elements at
            # azimuths 2 pi (j + 1/2) / n), so the y-z plane is a mirror plane of the mesh
            phis = 2 * np.maximum(2, np.round(np.pi * rm / ref)).astype(int)
            axis = np.minimum(ra, rb) <= 1e-12 * np.maximum(1.0, ra + rb)
            phis[axis] = 1  # a band touching the axis: one disc (or cone-cap) element
            segs.append(tuple(int(k) for k in phis))
        rings.append(tuple(segs))
    return MeshLayout(tuple(rings))


class UniformSize(eqx.Module):
    """A constant element size ``h(r, z) = spacing``."""

    spacing: float

    def __call__(self, r: BatchScalarLike, z: BatchScalarLike) -> BatchScalar:
        return jnp.full(jnp.shape(jnp.asarray(r) + jnp.asarray(z)), self.spacing)


def axisymmetric_mesh(
    profiles: Sequence[ProfileLike],
    spacing: float | None = None,
    *,
    size: SizeFunction | None = None,
    names: Sequence[str] | None = None,
    layout: MeshLayout | None = None,
) -> Mesh:
    """Mesh surfaces of revolution about the z axis into rings of circular elements.

    **Arguments:**

    - `profiles`: a sequence of polylines, each ``(K + 1, 2)`` vertices ``(r, z)`` with
      ``r >= 0``; each polyline is one named surface. The vacuum lies to the left of the
      direction of travel.
    - `spacing`: target element size (metres) for a uniform mesh.
    - `size`: alternatively a function ``h(r, z)`` of the local element size (e.g.
      `GradedSize`).
    - `names`: a name per profile (default ``surface0, surface1, ...``).
    - `layout`: a fixed `MeshLayout` (from ``mesh_layout`` of a previous call); required when
      the profile vertices are traced (differentiation with respect to geometry).

    **Returns:** a `Mesh`; element radii are those of circles with the elements' areas.

    ```python
    >>> m = axisymmetric_mesh([[[0.0, 0.0], [1e-2, 0.0]]], spacing=1e-3)  # a 1 cm disc
    >>> round(float(m.area.sum()) / (jnp.pi * 1e-4), 12)
    1.0
    ```
    """
    if (spacing is None) == (size is None):
        raise ValueError("give exactly one of spacing (uniform) or size (a function h(r, z))")
    if spacing is not None:
        v.check_positive("spacing", spacing)
        size = UniformSize(float(spacing))
    if len(profiles) == 0:
        raise ValueError("profiles is empty: the mesh would have no elements")
    profs = []
    for i, prof in enumerate(profiles):
        p = jnp.asarray(prof, dtype=float)
        if p.ndim != 2 or p.shape[1] != 2 or p.shape[0] < 2:
            raise ValueError(f"profiles[{i}] must be a polyline of shape (K + 1, 2) with K >= 1, got {p.shape}")
        v.check_finite(f"profiles[{i}]", p)
        if v.is_concrete(p):
            pn = np.asarray(p)
            if np.any(pn[:, 0] < 0):
                raise ValueError(f"profiles[{i}] has negative radii r (allowed: r >= 0)")
            if np.any(np.hypot(*np.diff(pn, axis=0).T) == 0):
                raise ValueError(f"profiles[{i}] has a zero-length segment")
        profs.append(p)
    names = [f"surface{i}" for i in range(len(profs))] if names is None else list(names)
    if len(names) != len(profs):
        raise ValueError(f"names has {len(names)} entries for {len(profs)} profiles")
    if layout is None:
        if not v.is_concrete(profs):
            raise ValueError("layout is required when the profile vertices are traced (jit/grad)")
        layout = _layout(profs, size)
    if len(layout.rings) != len(profs):
        raise ValueError("layout does not match profiles (different number of profiles)")
    for prof, segs, name in zip(profs, layout.rings, names):
        if len(segs) != prof.shape[0] - 1:
            raise ValueError(f"layout does not match profile {name!r} (segment count)")
    if isinstance(size, eqx.Module):
        return _build_jit(profs, size, layout, tuple(names))
    return _build(profs, size, layout, tuple(names))


def _build(profs, size, layout, names):
    # every element of every segment in one pass: per-segment quantities are gathered to the
    # elements with the static indices of `_plan` (a short jaxpr, whatever the segment count)
    plan = _plan(layout)
    verts = jnp.concatenate(profs)
    p0 = verts[plan.vert0]
    d = verts[plan.vert1] - p0
    seg_len = jnp.linalg.norm(d, axis=1)
    dr_s, dz_s = d[:, 0] / seg_len, d[:, 1] / seg_len
    # meridional curvature from the turning at smooth vertices (convex from vacuum > 0)
    if plan.turn_prev.size:
        ang = jnp.arctan2(d[:, 1], d[:, 0])
        turn = (ang[plan.turn_next] - ang[plan.turn_prev] + jnp.pi) % (2.0 * jnp.pi) - jnp.pi
        smooth_turn = jnp.concatenate([jnp.where(jnp.abs(turn) < _SMOOTH_TURN, turn, 0.0), jnp.zeros(1)])
        t_in, t_out = smooth_turn[plan.seg_in], smooth_turn[plan.seg_out]
    else:
        t_in = t_out = jnp.zeros(p0.shape[0])
    k_mer = -(0.5 * t_in + 0.5 * t_out) / seg_len
    nodes = _segment_nodes(p0, d, seg_len, size, plan)
    seg, ia = plan.elem_seg, plan.elem_node
    ra_e, za_e = nodes[ia, 0], nodes[ia, 1]
    rb_e, zb_e = nodes[ia + 1, 0], nodes[ia + 1, 1]
    dr, dz = dr_s[seg], dz_s[seg]
    nphi = plan.nphi
    cphi, sphi = plan.cphi, plan.sphi
    blen = jnp.hypot(rb_e - ra_e, zb_e - za_e)
    frac = (ra_e + 2.0 * rb_e) / (3.0 * (ra_e + rb_e))
    rc = ra_e + (rb_e - ra_e) * frac
    zc = za_e + (zb_e - za_e) * frac
    # planar centroid of an annular sector lies inside the arc by sinc(pi / n_phi);
    # applied in proportion to how flat the band is (none on a cylinder)
    rc = rc * (1.0 + (np.sinc(1.0 / nphi) - 1.0) * dr * dr)
    area = jnp.pi * (ra_e + rb_e) * blen / nphi
    # a band touching the axis is one cap element: centre on the axis, axial normal,
    # azimuthal curvature of the cap from its mid radius
    cap = plan.cap[:, None]
    rc = jnp.where(plan.cap, 0.0, rc)
    zero = jnp.zeros_like(rc)
    normal = jnp.where(cap, jnp.stack([zero, zero, jnp.sign(dr)], -1), jnp.stack([-dz * cphi, -dz * sphi, dr], -1))
    tangent = jnp.where(cap, np.array([1.0, 0.0, 0.0]), jnp.stack([dr * cphi, dr * sphi, dz], -1))
    centre = jnp.stack([rc * cphi, rc * sphi, zc], axis=-1)
    r_ref = jnp.where(plan.cap, 0.5 * (ra_e + rb_e), rc)
    k_az = -dz / jnp.where(r_ref > 0, r_ref, 1.0)
    curv = jnp.stack([k_mer[seg], k_az], axis=-1)
    patch = jnp.stack([ra_e, za_e, rb_e, zb_e, jnp.asarray(plan.phi_a), jnp.asarray(plan.phi_b)], axis=-1)
    return Mesh(
        centre=centre,
        normal=normal,
        radius=jnp.sqrt(area / jnp.pi),
        area=area,
        tangent=tangent,
        curvatures=curv,
        patch=patch,
        surfaces=tuple((name, a, b) for name, (a, b) in zip(names, plan.surfaces)),
    )


_build_jit = eqx.filter_jit(_build)


def mesh_layout(profiles: Sequence[ProfileLike], spacing: float | None = None, *,
                size: SizeFunction | None = None) -> MeshLayout:
    """The static `MeshLayout` that `axisymmetric_mesh` would choose for these arguments."""
    if (spacing is None) == (size is None):
        raise ValueError("give exactly one of spacing or size")
    if spacing is not None:
        v.check_positive("spacing", spacing)
        size = UniformSize(float(spacing))
    return _layout([jnp.asarray(p, dtype=float) for p in profiles], size)


def cavity_size(cavity: CoaxialCavity, spacing: float, *, graded: bool = True, growth: float = 0.3) -> GradedSize:
    """The element-size function of `cavity_mesh`.

    `spacing` up to one cavity radius above the stub top (growing by `growth` per metre of
    height above, if `graded`), refined towards the convex stub rim down to ``spacing / 4``
    (``h <= spacing / 4 + d_rim / 2``).
    """
    return GradedSize(
        spacing=spacing,
        free=cavity.stub_height + cavity.radius,
        growth=growth if graded else 0.0,
        focus=(0.0, 0.0),
        metric="z",
        edges=((cavity.stub_radius, cavity.stub_height),),
        edge_size=0.25 * spacing,
        edge_growth=0.5,
    )


def cavity_mesh(
    cavity: CoaxialCavity,
    spacing: float = 0.4e-3,
    *,
    graded: bool = True,
    growth: float = 0.3,
    rim: bool = True,
    layout: MeshLayout | None = None,
) -> Mesh:
    """Mesh the four surfaces of a `CoaxialCavity`.

    **Arguments:**

    - `cavity`: the geometry.
    - `spacing`: element size near the stub (metres). The default 0.4 mm gives about 5000
      elements for the paper's 7 mm cavity.
    - `graded`: if True (default) elements grow by `growth` per metre of height above
      ``stub_height + radius`` (the field of a magnet near the stub decays as 1/d^3 there);
      if False the element size is uniform up to the open end.
    - `rim`: refine towards the stub rim (default True; see `cavity_size`). The paper's
      N-loop model uses equal elements everywhere: ``graded=False, rim=False``.
    - `layout`: fixed element counts for differentiating with respect to the geometry.

    ```python
    >>> m = cavity_mesh(CoaxialCavity(radius=5e-3), spacing=1e-3)
    >>> [s[0] for s in m.surfaces]
    ['stub_top', 'stub_wall', 'floor', 'outer_wall']
    ```
    """
    v.check_positive("spacing", spacing)
    profs, names = cavity.profiles()
    return axisymmetric_mesh(profs, size=_cavity_size_fn(cavity, spacing, graded, growth, rim), names=names, layout=layout)


def _cavity_size_fn(cavity, spacing, graded, growth, rim):
    size = cavity_size(cavity, spacing, graded=graded, growth=growth)
    if not rim:
        size = eqx.tree_at(lambda s: s.edges, size, ())
    return size


def cavity_layout(
    cavity: CoaxialCavity, spacing: float = 0.4e-3, *, graded: bool = True, growth: float = 0.3, rim: bool = True
) -> MeshLayout:
    """The static element counts of `cavity_mesh` for a concrete cavity."""
    v.check_positive("spacing", spacing)
    profs, _ = cavity.profiles()
    return _layout(profs, _cavity_size_fn(cavity, spacing, graded, growth, rim))


def plate_mesh(radius: float, spacing: float, *, z: float = 0.0, facing: str = "up", free: float | None = None, growth: float = 0.2) -> Mesh:
    """A flat superconducting disc of `radius` at height `z`, its vacuum side `facing` up or down.

    Elements have size `spacing` out to radius `free` (default ``10 * spacing``) and grow by
    `growth` per unit radius beyond, for plates much larger than the region of interest.
    """
    v.check_positive("radius", radius)
    v.check_positive("spacing", spacing)
    if facing not in ("up", "down"):
        raise ValueError(f"facing must be 'up' or 'down', got {facing!r}")
    free = 10.0 * spacing if free is None else free
    prof = [[0.0, z], [radius, z]] if facing == "up" else [[radius, z], [0.0, z]]
    size = GradedSize(spacing=spacing, free=free, growth=growth, focus=(0.0, z), metric="r")
    return axisymmetric_mesh([prof], size=size, names=["plate"])


def parallel_plates_mesh(radius: float, gap: float, spacing: float, *, free: float | None = None, growth: float = 0.2) -> Mesh:
    """Two coaxial flat discs at ``z = 0`` (facing up) and ``z = gap`` (facing down)."""
    v.check_positive("gap", gap)
    v.check_positive("radius", radius)
    v.check_positive("spacing", spacing)
    free = 10.0 * spacing if free is None else free
    size = GradedSize(spacing=spacing, free=free, growth=growth, focus=(0.0, 0.0), metric="r")
    profs = [[[0.0, 0.0], [radius, 0.0]], [[radius, gap], [0.0, gap]]]
    return axisymmetric_mesh(profs, size=size, names=["lower", "upper"])


def sphere_mesh(radius: float, spacing: float, n_segments: int | None = None, *, outside: bool = True) -> Mesh:
    """A sphere about the origin, vacuum outside (default) or inside, from a polygonal meridian.

    The meridian has `n_segments` straight pieces (default: about one per element).
    """
    v.check_positive("radius", radius)
    v.check_positive("spacing", spacing)
    if n_segments is None:
        n_segments = max(8, int(math.ceil(math.pi * radius / spacing)))
    th = np.linspace(0.0, np.pi, n_segments + 1)
    pts = np.stack([radius * np.sin(th), radius * np.cos(th)], axis=-1)  # top to bottom: vacuum outside
    if not outside:
        pts = pts[::-1]
    m = axisymmetric_mesh([pts], spacing=spacing, names=["sphere"])
    # curved circular elements on the true sphere (not the polygonal surface of revolution)
    c = m.centre / jnp.linalg.norm(m.centre, axis=-1, keepdims=True)
    sign = 1.0 if outside else -1.0
    return Mesh(
        centre=radius * c,
        normal=sign * c,
        radius=m.radius,
        area=m.area,
        tangent=m.tangent,
        curvatures=jnp.full((m.size, 2), sign / radius),
        surfaces=m.surfaces,
    )
