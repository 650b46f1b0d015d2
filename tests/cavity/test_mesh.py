"""Surface meshes of the coaxial stub cavity (paper Fig. 1a, Table 1) and of simple bodies.

References: exact areas of discs, annuli, cylinders and frusta; hand-computed distances;
analytic derivatives of the areas with respect to the geometry; central finite differences.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import constants

import invdesign  # noqa: F401  (x64)
from invdesign.cavity import (
    PAPER_SPHERE,
    CoaxialCavity,
    ImageModel,
    Mesh,
    MeshLayout,
    NLoopModel,
    SphereMagnet,
    axisymmetric_mesh,
    cavity_layout,
    cavity_mesh,
    cavity_size,
    check_position,
    parallel_plates_mesh,
    plate_mesh,
    sphere_mesh,
    total_energy,
)

MU0 = constants.mu_0
G = constants.g
MM = 1e-3
R, H, RS, HS = 7 * MM, 55 * MM, 2 * MM, 5 * MM  # the paper's cavity (Table 1, 7 mm radius)
SPACING = 1 * MM
NAMES = ["stub_top", "stub_wall", "floor", "outer_wall"]


def exact_areas(R, H, rs, hs):
    return {
        "stub_top": math.pi * rs**2,
        "stub_wall": 2 * math.pi * rs * hs,
        "floor": math.pi * (R**2 - rs**2),
        "outer_wall": 2 * math.pi * R * H,
    }


@pytest.fixture(scope="module")
def cavity():
    return CoaxialCavity(radius=R, height=H, stub_radius=RS, stub_height=HS)


@pytest.fixture(scope="module")
def graded(cavity):
    return cavity_mesh(cavity, SPACING)  # graded, refined towards the stub rim


@pytest.fixture(scope="module")
def uniform(cavity):
    return cavity_mesh(cavity, SPACING, graded=False, rim=False)  # the paper's equal elements


def _meshes(graded, uniform):
    return {"graded": graded, "uniform": uniform}


# --------------------------------------------------------------------------- cavity geometry


@pytest.mark.parametrize("kind", ["graded", "uniform"])
def test_cavity_surface_areas_are_exact(kind, graded, uniform):
    m = _meshes(graded, uniform)[kind]
    assert [s[0] for s in m.surfaces] == NAMES
    assert m.surfaces[0][1] == 0 and m.surfaces[-1][2] == m.size
    for name, ref in exact_areas(R, H, RS, HS).items():
        a = np.asarray(m.area[m.surface(name)])
        assert a.size > 0 and np.all(a > 0)
        assert a.sum() == pytest.approx(ref, rel=1e-12), name
    # radii are those of circles of the elements' areas
    np.testing.assert_allclose(np.asarray(m.radius), np.sqrt(np.asarray(m.area) / np.pi), rtol=1e-14)


@pytest.mark.parametrize("kind", ["graded", "uniform"])
def test_cavity_normals_point_into_vacuum_and_centres_lie_on_surfaces(kind, graded, uniform):
    m = _meshes(graded, uniform)[kind]
    c, n = np.asarray(m.centre), np.asarray(m.normal)
    np.testing.assert_allclose(np.linalg.norm(n, axis=-1), 1.0, atol=1e-14)
    r = np.hypot(c[:, 0], c[:, 1])
    rhat = np.zeros_like(c)
    off_axis = r > 0
    rhat[off_axis, :2] = c[off_axis, :2] / r[off_axis, None]
    ez = np.array([0.0, 0.0, 1.0])
    eps = 1e-12

    s = m.surface("stub_top")
    np.testing.assert_allclose(n[s], np.broadcast_to(ez, n[s].shape), atol=1e-15)
    np.testing.assert_allclose(c[s, 2], HS, rtol=1e-15)
    assert np.all(r[s] <= RS)
    assert r[s][0] == 0.0  # the axis cap sits on the axis

    s = m.surface("stub_wall")
    np.testing.assert_allclose(n[s], rhat[s], atol=1e-14)  # +r
    np.testing.assert_allclose(r[s], RS, rtol=1e-14)
    assert np.all((c[s, 2] >= -eps) & (c[s, 2] <= HS + eps))

    s = m.surface("floor")
    np.testing.assert_allclose(n[s], np.broadcast_to(ez, n[s].shape), atol=1e-15)
    np.testing.assert_allclose(c[s, 2], 0.0, atol=1e-18)
    assert np.all((r[s] >= RS) & (r[s] <= R))

    s = m.surface("outer_wall")
    np.testing.assert_allclose(n[s], -rhat[s], atol=1e-14)  # -r
    np.testing.assert_allclose(r[s], R, rtol=1e-14)
    assert np.all((c[s, 2] >= -eps) & (c[s, 2] <= H + eps))

    # each surface is covered all the way round: azimuthal mean of the normals vanishes
    # for the side walls (sum of unit radial vectors of every ring is zero)
    for name in ("stub_wall", "outer_wall"):
        sl = m.surface(name)
        assert np.linalg.norm((np.asarray(m.area[sl])[:, None] * n[sl]).sum(0)) < 1e-12 * float(m.area[sl].sum())


def test_uniform_mesh_has_equal_elements(uniform, cavity):
    m = uniform
    a = np.asarray(m.area)
    cap = m.surface("stub_top").start  # the single disc element on the axis
    rest = np.delete(a, cap)
    # elements are about spacing x spacing; the 2 mm stub top gets only two bands at 1 mm
    # spacing (rounding to an even ring count), so its outer ring is up to 1.9 spacing^2
    assert np.all((rest > 0.6 * SPACING**2) & (rest < 2.0 * SPACING**2))
    rad = np.sqrt(rest / np.pi)
    assert rad.max() / rad.min() < 1.45
    # the axis cap is a disc of about the same area as the other elements
    assert 0.6 * SPACING**2 < float(m.area[cap]) < 1.7 * SPACING**2
    # the count follows the area: N ~ A / h^2, quadrupling when h halves
    total = sum(exact_areas(R, H, RS, HS).values())
    assert m.size == pytest.approx(total / SPACING**2, rel=0.05)
    fine = cavity_layout(cavity, SPACING / 2, graded=False, rim=False)
    coarse = cavity_layout(cavity, SPACING, graded=False, rim=False)
    assert coarse.size == m.size
    assert fine.size / coarse.size == pytest.approx(4.0, rel=0.05)


def test_graded_mesh_follows_its_size_function(graded, cavity):
    m = graded
    c = np.asarray(m.centre)
    r = np.hypot(c[:, 0], c[:, 1])
    h = np.asarray(cavity_size(cavity, SPACING)(jnp.asarray(r), jnp.asarray(c[:, 2])))
    # h = min(spacing + 0.3 (z - hs - R)_+, spacing/4 + |x - rim| / 2), by hand at a few points
    hand = lambda rr, zz: min(SPACING + 0.3 * max(0.0, zz - HS - R), SPACING / 4 + 0.5 * math.hypot(rr - RS, zz - HS))  # noqa: E731
    for k in (0, m.size // 3, m.size - 1):
        assert h[k] == pytest.approx(hand(r[k], c[k, 2]), rel=1e-12)
    side = np.sqrt(np.asarray(m.area))
    not_cap = np.arange(m.size) != m.surface("stub_top").start
    ratio = side[not_cap] / h[not_cap]
    assert ratio.min() > 0.8 and ratio.max() < 1.4
    # refined at the rim (smallest elements there), coarse at the open end
    k_min = int(np.argmin(side))
    assert math.hypot(r[k_min] - RS, c[k_min, 2] - HS) < SPACING
    assert side.min() < 0.5 * SPACING
    top = m.surface("outer_wall")
    assert side[top][-1] > 5 * SPACING
    # far fewer elements than the uniform mesh of the same spacing
    assert m.size < 0.5 * cavity_layout(cavity, SPACING, graded=False, rim=False).size


# --------------------------------------------------------------------------- differentiability


def test_geometry_derivatives_at_fixed_layout(graded, cavity):
    layout = cavity_layout(cavity, SPACING)
    assert layout.size == graded.size
    p0 = jnp.array([3.5e-3, 1.0e-3, 4.0e-3])

    def quantities(g):
        cav = CoaxialCavity(radius=g[0], height=H, stub_radius=g[1], stub_height=g[2])
        m = cavity_mesh(cav, SPACING, layout=layout)
        areas = jnp.stack([m.area[m.surface(name)].sum() for name in NAMES])
        d2 = jnp.sum((m.centre - p0) ** 2, axis=-1) / (2e-3) ** 2
        smooth = jnp.stack([jnp.sum(jnp.exp(-d2)), jnp.sum(m.area * jnp.exp(-d2)) / MM**2])
        return jnp.concatenate([areas, smooth])

    # a geometry near (not at) the paper's: at exactly r_s = 2 mm, spacing = 1 mm the kink of the
    # rim refinement (h = spacing where |x - rim| = 1.5 mm) falls on a sample of the element-
    # density integral and d/dr_s jumps there (one-sided AD vs central FD differ by 2e-4)
    r, rs, hs = R + 0.03 * MM, RS + 0.03 * MM, HS + 0.03 * MM
    g0 = jnp.array([r, rs, hs])
    # one compilation for values and Jacobian; the central differences reuse it
    both = jax.jit(lambda g: (quantities(g), jax.jacfwd(quantities)(g)))
    jac = np.asarray(both(g0)[1])
    # analytic derivatives of the surface areas w.r.t. (R, r_s, h_s)
    ref = np.array(
        [
            [0.0, 2 * math.pi * rs, 0.0],  # pi r_s^2
            [0.0, 2 * math.pi * hs, 2 * math.pi * rs],  # 2 pi r_s h_s
            [2 * math.pi * r, -2 * math.pi * rs, 0.0],  # pi (R^2 - r_s^2)
            [2 * math.pi * H, 0.0, 0.0],  # 2 pi R H
        ]
    )
    np.testing.assert_allclose(jac[:4], ref, rtol=1e-10, atol=1e-12 * np.abs(ref).max())
    assert jac[:4, 0].sum() == pytest.approx(2 * math.pi * (r + H), rel=1e-12)  # d(total)/dR
    # smooth functions of the element centres: central differences (all three parameters)
    eps = 1e-8
    for k in range(3):
        e = np.zeros(3)
        e[k] = eps
        fd = (np.asarray(both(g0 + e)[0]) - np.asarray(both(g0 - e)[0]))[4:] / (2 * eps)
        np.testing.assert_allclose(jac[4:, k], fd, rtol=1e-6, atol=1e-9 * np.abs(jac[4:]).max())
    assert np.all(np.abs(jac[4:]) > 1.0)  # every parameter moves the elements


# --------------------------------------------------------------------------- user meshes and simple bodies


def test_mesh_from_user_arrays():
    centre = [[0.0, 0.0, 0.0], [1e-3, 0.0, 0.0], [0.0, 2e-3, 1e-3]]
    normal = [[0.0, 0.0, 2.0], [3.0, 4.0, 0.0], [0.0, -1e-3, 0.0]]
    radius = [1e-4, 2e-4, 3e-4]
    m = Mesh(centre, normal, radius, surfaces=(("a", 0, 2), ("b", 2, 3)))
    assert m.size == 3
    np.testing.assert_allclose(np.asarray(m.normal), [[0, 0, 1], [0.6, 0.8, 0], [0, -1, 0]], atol=1e-16)
    np.testing.assert_allclose(np.asarray(m.area), np.pi * np.array(radius) ** 2, rtol=1e-15)
    np.testing.assert_allclose(np.asarray(m.curvatures), 0.0)
    # default tangents are unit and normal to the normals
    t = np.asarray(m.tangent)
    np.testing.assert_allclose(np.linalg.norm(t, axis=-1), 1.0, rtol=1e-15)
    np.testing.assert_allclose(np.sum(t * np.asarray(m.normal), -1), 0.0, atol=1e-15)
    assert m.surface("a") == slice(0, 2) and m.surface("b") == slice(2, 3)
    np.testing.assert_array_equal(np.asarray(m.radius[m.surface("b")]), [3e-4])
    np.testing.assert_array_equal(m.surface_index(), [0, 0, 1])
    with pytest.raises(KeyError, match="nope"):
        m.surface("nope")
    m2 = Mesh(centre, normal, radius, area=[1e-8, 2e-8, 3e-8])
    np.testing.assert_array_equal(np.asarray(m2.area), [1e-8, 2e-8, 3e-8])
    np.testing.assert_array_equal(m2.surface_index(), [-1, -1, -1])


def test_plate_meshes():
    a = 5 * MM
    up = plate_mesh(a, SPACING, z=1 * MM)
    down = plate_mesh(a, SPACING, z=1 * MM, facing="down")
    for m, nz in ((up, 1.0), (down, -1.0)):
        assert float(m.area.sum()) == pytest.approx(math.pi * a**2, rel=1e-12)
        np.testing.assert_allclose(np.asarray(m.normal), np.broadcast_to([0.0, 0.0, nz], (m.size, 3)), atol=1e-15)
        np.testing.assert_allclose(np.asarray(m.centre[:, 2]), 1 * MM, rtol=1e-15)
        assert float(jnp.hypot(m.centre[:, 0], m.centre[:, 1]).max()) < a
    gap = 2 * MM
    pp = parallel_plates_mesh(a, gap, SPACING)
    assert [s[0] for s in pp.surfaces] == ["lower", "upper"]
    lo, hi = pp.surface("lower"), pp.surface("upper")
    for sl, z, nz in ((lo, 0.0, 1.0), (hi, gap, -1.0)):  # facing each other
        assert float(pp.area[sl].sum()) == pytest.approx(math.pi * a**2, rel=1e-12)
        np.testing.assert_allclose(np.asarray(pp.normal[sl, 2]), nz, atol=1e-15)
        np.testing.assert_allclose(np.asarray(pp.centre[sl, 2]), z, atol=1e-18)


@pytest.mark.parametrize("outside", [True, False])
def test_sphere_mesh(outside):
    a, n_seg = 1 * MM, 4
    m = sphere_mesh(a, 1 * MM, n_seg, outside=outside)
    # areas are those of the inscribed polygonal surface of revolution: each chord of angle
    # d = pi / n_seg sweeps 4 pi a^2 sin(th_m) sin(d / 2) cos(d / 2) against the zone's
    # 4 pi a^2 sin(th_m) sin(d / 2), so the total is 4 pi a^2 cos(d / 2)
    assert float(m.area.sum()) == pytest.approx(4 * math.pi * a**2 * math.cos(math.pi / (2 * n_seg)), rel=1e-12)
    c = np.asarray(m.centre)
    np.testing.assert_allclose(np.linalg.norm(c, axis=-1), a, rtol=1e-14)
    sign = 1.0 if outside else -1.0
    np.testing.assert_allclose(np.asarray(m.normal), sign * c / a, atol=1e-14)
    np.testing.assert_allclose(np.asarray(m.mean_curvature), sign / a, rtol=1e-14)
    # symmetric about the equator: centroid at the origin
    np.testing.assert_allclose((np.asarray(m.area)[:, None] * c).sum(0), 0.0, atol=1e-12 * a**3)


# --------------------------------------------------------------------------- clearance


@pytest.mark.parametrize(
    "point, expected",
    [
        ((3.5 * MM, 0.0, 3 * MM), 1.5 * MM),  # in the gap: 1.5 mm to the stub wall
        ((0.0, 4.5 * MM, 2 * MM), 2.0 * MM),  # in the gap: 2 mm to the floor (and 2.5 to the walls)
        ((1 * MM, 0.0, 6 * MM), 1 * MM),  # above the stub top
        ((3 * MM, 0.0, 6 * MM), math.sqrt(2) * MM),  # above and beyond the rim: to the rim edge
        ((0.0, 6.5 * MM, 30 * MM), 0.5 * MM),  # next to the outer wall
        ((0.5 * MM, 0.0, 4.5 * MM), -0.5 * MM),  # inside the stub, 0.5 mm below its top
        ((0.0, -1 * MM, 3 * MM), -1 * MM),  # inside the stub, 1 mm inside its wall
        ((4 * MM, 0.0, -1 * MM), -1 * MM),  # below the floor
        ((0.0, 8 * MM, 10 * MM), -1 * MM),  # beyond the outer wall
        ((6 * MM, 6 * MM, 10 * MM), R - 6 * math.sqrt(2) * MM),  # beyond the wall, off the axes
    ],
)
def test_clearance_hand_values(cavity, point, expected):
    assert float(cavity.clearance(jnp.asarray(point))) == pytest.approx(expected, rel=1e-12, abs=1e-18)
    assert cavity.contains(point) == (expected >= 0)


def test_clearance_broadcasts(cavity):
    pts = jnp.array([[3.5 * MM, 0.0, 3 * MM], [4 * MM, 0.0, -1 * MM]])
    np.testing.assert_allclose(np.asarray(cavity.clearance(pts)), [1.5 * MM, -1 * MM], rtol=1e-12)
    assert cavity.contains([0.0, 4.5 * MM, 2 * MM], margin=0.5 * MM)
    assert not cavity.contains([0.0, 4.5 * MM, 2 * MM], margin=2.1 * MM)


# --------------------------------------------------------------------------- bad input


def test_mesh_rejects_bad_arrays():
    c1, n1, r1 = [[0.0, 0.0, 0.0]], [[0.0, 0.0, 1.0]], [1e-3]
    with pytest.raises(ValueError, match="centre"):
        Mesh(np.zeros((0, 3)), np.zeros((0, 3)), np.zeros(0))  # empty
    with pytest.raises(ValueError, match="centre"):
        Mesh([[0.0, 0.0]], n1, r1)
    with pytest.raises(ValueError, match="centre"):
        Mesh([[0.0, np.nan, 0.0]], n1, r1)
    with pytest.raises(ValueError, match="normal"):
        Mesh(c1, [[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]], r1)  # mismatched
    with pytest.raises(ValueError, match="normal"):
        Mesh(c1, [[0.0, 0.0, 0.0]], r1)  # no direction
    with pytest.raises(ValueError, match="radius"):
        Mesh(c1, n1, [1e-3, 1e-3])  # mismatched
    for bad in (0.0, -1e-3):
        with pytest.raises(ValueError, match="radius"):
            Mesh(c1, n1, [bad])
    with pytest.raises(ValueError, match="area"):
        Mesh(c1, n1, r1, area=[1.0, 2.0])
    with pytest.raises(ValueError, match="area"):
        Mesh(c1, n1, r1, area=[-1.0])
    with pytest.raises(ValueError, match="surfaces"):
        Mesh(c1, n1, r1, surfaces=(("a", 0, 2),))


@pytest.mark.parametrize("name", ["radius", "height", "stub_radius", "stub_height"])
@pytest.mark.parametrize("bad", [0.0, -1e-3, float("nan")])
def test_cavity_rejects_non_positive(name, bad):
    kwargs = dict(radius=R, height=H, stub_radius=RS, stub_height=HS)
    kwargs[name] = bad
    with pytest.raises(ValueError, match=name):
        CoaxialCavity(**kwargs)


def test_cavity_rejects_inconsistent_geometry():
    with pytest.raises(ValueError, match="stub_radius"):
        CoaxialCavity(radius=2 * MM, stub_radius=2 * MM)  # stub as wide as the cavity
    with pytest.raises(ValueError, match="stub_radius"):
        CoaxialCavity(radius=2 * MM, stub_radius=3 * MM)  # stub wider than the cavity
    with pytest.raises(ValueError, match="stub_height"):
        CoaxialCavity(height=5 * MM, stub_height=5 * MM)
    with pytest.raises(ValueError, match="stub_height"):
        CoaxialCavity(height=4 * MM, stub_height=5 * MM)


def test_mesh_builders_reject_bad_input(cavity):
    for bad in (0.0, -1e-3):
        with pytest.raises(ValueError, match="spacing"):
            cavity_mesh(cavity, bad)
        with pytest.raises(ValueError, match="spacing"):
            cavity_layout(cavity, bad)
        with pytest.raises(ValueError, match="spacing"):
            axisymmetric_mesh([[[0.0, 0.0], [1e-3, 0.0]]], spacing=bad)
        with pytest.raises(ValueError, match="radius"):
            plate_mesh(bad, 1e-3)
        with pytest.raises(ValueError, match="spacing"):
            plate_mesh(1e-3, bad)
        with pytest.raises(ValueError, match="gap"):
            parallel_plates_mesh(1e-3, bad, 1e-3)
        with pytest.raises(ValueError, match="radius"):
            sphere_mesh(bad, 1e-3)
        with pytest.raises(ValueError, match="spacing"):
            sphere_mesh(1e-3, bad)
    with pytest.raises(ValueError, match="facing"):
        plate_mesh(1e-3, 1e-3, facing="left")
    with pytest.raises(ValueError, match="spacing"):
        axisymmetric_mesh([[[0.0, 0.0], [1e-3, 0.0]]])  # neither spacing nor size
    with pytest.raises(ValueError, match=r"profiles\[1\].*negative"):
        axisymmetric_mesh([[[0.0, 0.0], [1e-3, 0.0]], [[-1e-3, 1e-3], [1e-3, 1e-3]]], spacing=1e-3)
    with pytest.raises(ValueError, match=r"profiles\[0\]"):
        axisymmetric_mesh([[[0.0, 0.0, 0.0], [1e-3, 0.0, 0.0]]], spacing=1e-3)  # (r, z) pairs
    with pytest.raises(ValueError, match=r"profiles\[0\]"):
        axisymmetric_mesh([[[0.0, 0.0]]], spacing=1e-3)  # a single vertex
    with pytest.raises(ValueError, match=r"profiles\[0\]"):
        axisymmetric_mesh([[[0.0, 0.0], [0.0, 0.0]]], spacing=1e-3)  # zero-length segment
    with pytest.raises(ValueError, match=r"profiles\[0\]"):
        axisymmetric_mesh([[[0.0, np.inf], [1e-3, 0.0]]], spacing=1e-3)
    with pytest.raises(ValueError, match="profiles"):
        axisymmetric_mesh([], spacing=1e-3)
    with pytest.raises(ValueError, match="names"):
        axisymmetric_mesh([[[0.0, 0.0], [1e-3, 0.0]]], spacing=1e-3, names=["a", "b"])
    with pytest.raises(ValueError, match="layout"):
        cavity_mesh(cavity, SPACING, layout=MeshLayout(((1,),) * 3))  # three profiles for four surfaces
    with pytest.raises(ValueError, match="layout"):
        cavity_mesh(cavity, SPACING, layout=MeshLayout(((1, 1),) * 4))  # two segments per profile


# --------------------------------------------------------------------------- magnet placement


@pytest.fixture(scope="module")
def sphere():
    return SphereMagnet(remanence="N52", **PAPER_SPHERE)


BAD_POSITIONS = {
    "inside the stub": (1 * MM, 0.0, 4 * MM),
    "below the floor": (4.5 * MM, 0.0, -1 * MM),
    "beyond the outer wall": (0.0, 8 * MM, 10 * MM),
    "0.3 mm from the floor": (4.5 * MM, 0.0, 0.3 * MM),  # the magnet radius is 0.5 mm
    "0.3 mm from the stub top": (0.0, 0.0, HS + 0.3 * MM),
    "0.3 mm from the outer wall": (0.0, R - 0.3 * MM, 20 * MM),
}
GAP = (4.5 * MM, 0.0, 2 * MM)


@pytest.mark.parametrize("where", list(BAD_POSITIONS))
@pytest.mark.parametrize("with_geometry", [True, False])
def test_check_position_n_loop(graded, cavity, sphere, where, with_geometry):
    model = NLoopModel(graded, cavity if with_geometry else None)
    pos = jnp.asarray(BAD_POSITIONS[where])
    with pytest.raises(ValueError, match="position"):
        check_position(model, sphere, pos)
    with pytest.raises(ValueError, match="position"):
        total_energy(model, sphere, pos, jnp.array([1.0, 0.0, 0.0]))


def test_check_position_accepts_the_gap(graded, cavity, sphere):
    model = NLoopModel(graded, cavity)
    assert check_position(model, sphere, jnp.asarray(GAP)) is None
    assert check_position(NLoopModel(graded), sphere, jnp.asarray(GAP)) is None
    assert float(model.surface_distance(jnp.asarray(GAP))) == pytest.approx(2 * MM, rel=1e-12)
    d = jnp.array([1.0, 0.0, 0.0])
    u = float(total_energy(model, sphere, jnp.asarray(GAP), d))
    u_mag = float(model.magnetic_energy(sphere, jnp.asarray(GAP), d))
    assert u_mag > 0  # the superconductor repels the magnet
    assert u == pytest.approx(u_mag + 3.67e-6 * G * 2 * MM, rel=1e-12)
    with pytest.raises(ValueError, match="position"):
        check_position(model, sphere, jnp.array([1e-3, 2e-3]))  # not a 3-vector


@pytest.mark.parametrize("z, ok", [(-1 * MM, False), (0.3 * MM, False), (0.5 * MM, True), (2 * MM, True)])
def test_check_position_image_plane(sphere, z, ok):
    model = ImageModel(0.0)
    pos = jnp.array([0.0, 0.0, z])
    up = jnp.array([0.0, 0.0, 1.0])
    if not ok:
        with pytest.raises(ValueError, match="position"):
            check_position(model, sphere, pos)
        with pytest.raises(ValueError, match="position"):
            total_energy(model, sphere, pos, up)
        return
    assert check_position(model, sphere, pos) is None
    mu = 1.47 * 4 / 3 * math.pi * 0.5e-3**3 / MU0
    # image dipole: U = mu0 mu^2 (1 + cos^2 theta) / (64 pi h^3) (paper eq. 1), plus m g h
    ref = MU0 * mu**2 * 2 / (64 * math.pi * z**3) + 3.67e-6 * G * z
    assert float(total_energy(model, sphere, pos, up)) == pytest.approx(ref, rel=1e-10)


@pytest.mark.parametrize("kind", ["graded", "uniform"])
def test_near_pairs_equal_a_brute_force_search(kind, graded, uniform):
    # every pair closer than factor (rho_i + rho_j), both orders, no self pairs, against all
    # N^2 distances (the graded mesh mixes 0.2 mm elements with a top cap ~30x larger)
    from invdesign.cavity import near_pairs
    from invdesign.cavity._bem import MID_FACTOR, NEAR_FACTOR

    mesh = graded if kind == "graded" else uniform
    c, rho = np.asarray(mesh.centre), np.asarray(mesh.radius)
    d = np.linalg.norm(c[:, None, :] - c[None, :, :], axis=-1)
    lists = near_pairs(mesh)
    for (i, j), factor in zip((lists[:2], lists[2:]), (NEAR_FACTOR, MID_FACTOR)):
        want = (d < factor * (rho[:, None] + rho[None, :])) & ~np.eye(len(rho), dtype=bool)
        got = np.zeros_like(want)
        got[i, j] = True
        assert len(i) == int(want.sum())  # no duplicates
        np.testing.assert_array_equal(got, want)
    if kind == "graded":
        assert rho.max() > 10 * np.median(rho)
