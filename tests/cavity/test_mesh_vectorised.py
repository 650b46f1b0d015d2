"""The vectorised mesh builder against the per-segment builder it replaced.

`_build_ref` (with `_segment_nodes_ref` and `_turning`) is the earlier implementation of
`invdesign.cavity._mesh._build`, copied verbatim: it looped over profiles and segments in
Python. The one-pass builder must give the same elements in the same order (values to a few
ulp). Its derivatives are checked against finite differences in `test_mesh.py`.
"""

import equinox as eqx
import jax.numpy as jnp
import numpy as np
import pytest

import invdesign  # noqa: F401  (x64)
from invdesign.cavity import CoaxialCavity, axisymmetric_mesh, cavity_layout, cavity_mesh, mesh_layout
from invdesign.cavity._mesh import _CAP, _SAMPLES, _SMOOTH_TURN, Mesh, UniformSize, _cavity_size_fn

MM = 1e-3
FIELDS = ("centre", "normal", "radius", "area", "tangent", "curvatures", "patch")


# --------------------------------------------------------------------------- the earlier builder (reference)


def _segment_nodes_ref(p0, p1, size, n_bands, cap_start=False, cap_end=False):
    """Band boundaries along one straight segment: n_bands + 1 points (r, z).

    With ``n_bands=None`` returns the number of bands the size function asks for.
    """
    t = jnp.linspace(0.0, 1.0, _SAMPLES)
    pts = p0[None, :] + t[:, None] * (p1 - p0)[None, :]
    length = jnp.linalg.norm(p1 - p0)
    dens = 1.0 / size(pts[:, 0], pts[:, 1])
    cum = jnp.concatenate([jnp.zeros(1), jnp.cumsum(0.5 * (dens[1:] + dens[:-1]) * jnp.diff(t))]) * length
    short = _CAP * (int(cap_start) + int(cap_end))
    if n_bands is None:
        return cum[-1] + short
    k = np.arange(n_bands + 1, dtype=float)
    if cap_start:
        k[1:] -= _CAP
    target = jnp.asarray(k / (n_bands - short)) * cum[-1]
    tk = jnp.interp(target, cum, t)
    tk = tk.at[0].set(0.0).at[-1].set(1.0)
    return p0[None, :] + tk[:, None] * (p1 - p0)[None, :]


def _turning(prof):
    """Signed turning angle at each interior vertex (counter-clockwise positive)."""
    d = jnp.diff(prof, axis=0)
    ang = jnp.arctan2(d[:, 1], d[:, 0])
    turn = jnp.diff(ang)
    return (turn + jnp.pi) % (2.0 * jnp.pi) - jnp.pi


def _build_ref(profs, size, layout, names):
    parts = {k: [] for k in ("centre", "normal", "tangent", "area", "curv", "patch")}
    surfaces = []
    start = 0
    for prof, segs, name in zip(profs, layout.rings, names):
        turn = _turning(prof) if prof.shape[0] > 2 else jnp.zeros(0)
        smooth_turn = jnp.where(jnp.abs(turn) < _SMOOTH_TURN, turn, 0.0)
        seg_len = jnp.linalg.norm(jnp.diff(prof, axis=0), axis=1)
        for s, phis in enumerate(segs):
            p0, p1 = prof[s], prof[s + 1]
            nodes = _segment_nodes_ref(p0, p1, size, len(phis), phis[0] == 1 and len(phis) > 1, phis[-1] == 1 and len(phis) > 1)
            ra, za = nodes[:-1, 0], nodes[:-1, 1]
            rb, zb = nodes[1:, 0], nodes[1:, 1]
            d = p1 - p0
            L = jnp.linalg.norm(d)
            dr, dz = d[0] / L, d[1] / L
            # meridional curvature from the turning at smooth vertices (convex from vacuum > 0)
            t_in = smooth_turn[s - 1] if s >= 1 else 0.0
            t_out = smooth_turn[s] if s < len(segs) - 1 else 0.0
            k_mer = -(0.5 * t_in + 0.5 * t_out) / seg_len[s]
            band = np.repeat(np.arange(len(phis)), phis)
            nphi = np.repeat(np.asarray(phis), phis).astype(float)
            j = np.concatenate([np.arange(n) for n in phis]).astype(float)
            phi = 2.0 * np.pi * (j + 0.5) / nphi
            cphi, sphi = jnp.asarray(np.cos(phi)), jnp.asarray(np.sin(phi))
            ra_e, rb_e, za_e, zb_e = ra[band], rb[band], za[band], zb[band]
            blen = jnp.hypot(rb_e - ra_e, zb_e - za_e)
            frac = (ra_e + 2.0 * rb_e) / (3.0 * (ra_e + rb_e))
            rc = ra_e + (rb_e - ra_e) * frac
            zc = za_e + (zb_e - za_e) * frac
            # planar centroid of an annular sector lies inside the arc by sinc(pi / n_phi);
            # applied in proportion to how flat the band is (none on a cylinder)
            sinc = jnp.asarray(np.sinc(1.0 / nphi))
            rc = rc * (1.0 + (sinc - 1.0) * dr * dr)
            area = jnp.pi * (ra_e + rb_e) * blen / jnp.asarray(nphi)
            # a band touching the axis is one cap element: centre on the axis, axial normal,
            # azimuthal curvature of the cap from its mid radius
            cap = jnp.asarray(nphi == 1)
            rc = jnp.where(cap, 0.0, rc)
            ones = jnp.ones_like(rc)
            normal = jnp.stack([-dz * cphi, -dz * sphi, dr * ones], axis=-1)
            normal = jnp.where(cap[:, None], jnp.stack([0.0 * ones, 0.0 * ones, jnp.sign(dr) * ones], -1), normal)
            tangent = jnp.stack([dr * cphi, dr * sphi, dz * ones], axis=-1)
            tangent = jnp.where(cap[:, None], jnp.stack([ones, 0.0 * ones, 0.0 * ones], -1), tangent)
            centre = jnp.stack([rc * cphi, rc * sphi, zc], axis=-1)
            r_ref = jnp.where(cap, 0.5 * (ra_e + rb_e), rc)
            k_az = -dz / jnp.where(r_ref > 0, r_ref, 1.0)
            curv = jnp.stack([jnp.broadcast_to(k_mer, k_az.shape), k_az], axis=-1)
            parts["centre"].append(centre)
            parts["normal"].append(normal)
            parts["tangent"].append(tangent)
            parts["area"].append(area)
            parts["curv"].append(curv)
            phi_a = jnp.asarray(2.0 * np.pi * j / nphi)
            phi_b = jnp.asarray(2.0 * np.pi * (j + 1.0) / nphi)
            parts["patch"].append(jnp.stack([ra_e, za_e, rb_e, zb_e, phi_a, phi_b], axis=-1))
        n_prof = sum(sum(p) for p in segs)
        surfaces.append((name, start, start + n_prof))
        start += n_prof
    area = jnp.concatenate(parts["area"])
    return Mesh(
        centre=jnp.concatenate(parts["centre"]),
        normal=jnp.concatenate(parts["normal"]),
        radius=jnp.sqrt(area / jnp.pi),
        area=area,
        tangent=jnp.concatenate(parts["tangent"]),
        curvatures=jnp.concatenate(parts["curv"]),
        patch=jnp.concatenate(parts["patch"]),
        surfaces=tuple(surfaces),
    )


# --------------------------------------------------------------------------- comparisons


_build_ref_jit = eqx.filter_jit(_build_ref)


def _assert_same(new, ref, rtol=1e-14):
    """Same surfaces and elements. Compiled, the two builders round differently at the ulp level
    (XLA fuses them differently); narrow bands amplify that to a few 1e-15 in the areas."""
    assert new.surfaces == ref.surfaces
    for f in FIELDS:
        a, b = np.asarray(getattr(new, f)), np.asarray(getattr(ref, f))
        assert a.shape == b.shape, f
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * np.abs(b).max(), err_msg=f)


def _assert_identical(new, ref):
    assert new.surfaces == ref.surfaces
    for f in FIELDS:
        np.testing.assert_array_equal(np.asarray(getattr(new, f)), np.asarray(getattr(ref, f)), err_msg=f)


def _cavity_args(cav, spacing, graded=True, rim=True):
    profs, names = cav.profiles()
    size = _cavity_size_fn(cav, spacing, graded, 0.3, rim)
    return profs, size, cavity_layout(cav, spacing, graded=graded, rim=rim), names


# the default mesh of the paper's cavity, a tilted-design corner (stub radius 1.5 mm, height
# 7 mm, 1 mm elements) and equal elements without grading or rim refinement
CASES = [
    (dict(radius=7 * MM), dict(spacing=0.4 * MM)),
    (dict(radius=7 * MM, stub_radius=1.5 * MM, stub_height=7 * MM), dict(spacing=1.0 * MM)),
    (dict(radius=6 * MM, stub_radius=2.5 * MM, stub_height=4 * MM), dict(spacing=1.0 * MM, graded=False, rim=False)),
]


@pytest.mark.parametrize("geom, meshing", CASES)
def test_cavity_meshes_match_the_per_segment_builder(geom, meshing):
    cav = CoaxialCavity(**geom)
    _assert_same(cavity_mesh(cav, **meshing), _build_ref_jit(*_cavity_args(cav, **meshing)))


def _polylines():
    """Profiles with several segments: turning (smooth and sharp) vertices, caps at both ends."""
    th = np.linspace(0.0, np.pi, 7)
    sphere = np.stack([1 * MM * np.sin(th), 1 * MM * np.cos(th)], -1)  # axis to axis
    cup = np.array([[0.0, 0.0], [2.0, 0.0], [2.4, 0.1], [2.6, 0.5], [2.6, 3.0], [1.0, 3.5]]) * MM
    return [jnp.asarray(p) for p in (sphere, cup, cup[::-1].copy(), np.array([[0.0, 1.0], [3.0, 1.0]]) * MM)]


def test_polyline_meshes_match_the_per_segment_builder():
    profs = _polylines()
    names = tuple(f"p{i}" for i in range(len(profs)))
    spacing = 0.4 * MM
    layout = mesh_layout(profs, spacing)
    ref = _build_ref_jit(profs, UniformSize(spacing), layout, names)
    _assert_same(axisymmetric_mesh(profs, spacing, names=names), ref)
    assert ref.surfaces[-1][2] == layout.size
