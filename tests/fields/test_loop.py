"""Loop field and vector potential against mpmath, Biot-Savart quadrature, magpylib and
finite differences."""

import math

import jax
import jax.numpy as jnp
import magpylib
import mpmath as mp
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

import invdesign  # noqa: F401
from invdesign.constants import MU0
from invdesign.fields import Loops, dipole_field, loop_field, loop_vector_potential

mp.mp.dps = 60
MU0_MP = mp.mpf("1.25663706212e-6")


def mp_field(r, z, a=1, current=1):
    """Textbook elliptic-integral field (cylindrical B_r, B_z) at 60 digits."""
    r, z, a, current = (mp.mpf(float(t)) for t in (r, z, a, current))
    al2 = (a - r) ** 2 + z**2
    be2 = (a + r) ** 2 + z**2
    be = mp.sqrt(be2)
    k2 = 1 - al2 / be2
    kk, ee = mp.ellipk(k2), mp.ellipe(k2)
    bz = MU0_MP * current / (2 * mp.pi * al2 * be) * ((a * a - r * r - z * z) * ee + al2 * kk)
    br = 0 if r == 0 else MU0_MP * current * z / (2 * mp.pi * al2 * be * r) * ((a * a + r * r + z * z) * ee - al2 * kk)
    return br, bz


def mp_aphi(r, z, a=1, current=1):
    """Paper eq. (4), first form, at 60 digits."""
    r, z, a, current = (mp.mpf(float(t)) for t in (r, z, a, current))
    if r == 0:
        return mp.mpf(0)
    k2 = 4 * a * r / ((r + a) ** 2 + z**2)
    return MU0_MP / (4 * mp.pi) * 4 * a * current / mp.sqrt((r + a) ** 2 + z**2) * (
        (2 - k2) / k2 * mp.ellipk(k2) - 2 / k2 * mp.ellipe(k2))


def _points():
    pts = []
    for r in [0.0, 1e-10, 1e-5, 0.3, 0.999, 1.0011, 1.5, 3.0, 1e2, 1e4]:
        for z in [0.0, 1e-10, 1e-3, 0.5, 1.0, -0.7, 2.0, 1e2, 1e4]:
            if math.hypot(r - 1, z) > 1e-3:
                pts.append((r, z))
    for d in [1.0001e-3, 3e-3, 1e-2]:
        for ang in np.linspace(0, 2 * np.pi, 12, endpoint=False):
            pts.append((1 + d * math.cos(ang), d * math.sin(ang)))
    return pts


def test_field_against_mpmath_everywhere():
    pts = _points()
    xyz = jnp.array([[r, 0.0, z] for r, z in pts])
    b = np.asarray(loop_field(xyz, 1.0, 1.0))
    worst = 0.0
    for (r, z), bi in zip(pts, b):
        br, bz = mp_field(r, z)
        err = mp.sqrt((bi[0] - br) ** 2 + bi[1] ** 2 + (bi[2] - bz) ** 2) / mp.sqrt(br**2 + bz**2)
        worst = max(worst, float(err))
    assert worst <= 1e-13


def test_field_scales_with_radius_and_current():
    # B(a, I, x) = (I / a) B(1, 1, x / a): check a 10 um loop at 30 mA against mpmath
    a, current = 1e-5, 0.03
    for r, z in [(0.0, 3e-6), (4e-6, -2e-6), (2e-5, 1e-5)]:
        b = np.asarray(loop_field(jnp.array([r, 0.0, z]), a, current))
        br, bz = mp_field(r, z, a, current)
        assert np.allclose([b[0], b[2]], [float(br), float(bz)], rtol=1e-14, atol=0)


def test_field_against_biot_savart_quadrature():
    # independent of elliptic integrals: integrate dB = mu0 I / (4 pi) dl x R / |R|^3
    mp.mp.dps = 30
    try:
        for p in [(0.4, 0.3, 0.2), (1.3, -0.4, 0.5), (0.0, 0.0, 2.0)]:
            x, y, z = (mp.mpf(t) for t in p)

            def comp(i):
                def integrand(phi):
                    c, s = mp.cos(phi), mp.sin(phi)
                    rx, ry, rz = x - c, y - s, z
                    dl = (-s, c, 0)
                    cross = (dl[1] * rz - dl[2] * ry, dl[2] * rx - dl[0] * rz, dl[0] * ry - dl[1] * rx)
                    return cross[i] / (rx**2 + ry**2 + rz**2) ** 1.5
                return MU0_MP / (4 * mp.pi) * mp.quad(integrand, [0, mp.pi / 2, mp.pi, 3 * mp.pi / 2, 2 * mp.pi])

            ref = np.array([float(comp(i)) for i in range(3)])
            got = np.asarray(loop_field(jnp.array(p), 1.0, 1.0))
            assert np.linalg.norm(got - ref) / np.linalg.norm(ref) < 1e-14
    finally:
        mp.mp.dps = 60


def test_vector_potential_against_mpmath_and_curl():
    for r, z in [(0.5, 0.2), (1e-10, 0.3), (2.0, -1.0), (1e3, 5e2)]:
        a = np.asarray(loop_vector_potential(jnp.array([r, 0.0, z]), 1.0, 1.0))
        ref = mp_aphi(r, z)
        assert abs(a[0]) < 1e-30 and a[2] == 0.0
        assert abs(a[1] - float(ref)) <= 1e-13 * abs(float(ref))
    # curl A = B at generic points, with a tilted, shifted loop
    center, normal = jnp.array([0.1, -0.2, 0.05]), jnp.array([0.3, 0.4, 1.0])
    for p in [jnp.array([0.3, 0.1, 0.4]), jnp.array([-1.2, 0.5, 0.3])]:
        jac = jax.jacfwd(lambda q: loop_vector_potential(q, 0.8, 2.0, center, normal))(p)
        curl = jnp.array([jac[2, 1] - jac[1, 2], jac[0, 2] - jac[2, 0], jac[1, 0] - jac[0, 1]])
        b = loop_field(p, 0.8, 2.0, center, normal)
        assert np.allclose(curl, b, rtol=1e-12, atol=1e-14 * float(jnp.linalg.norm(b)))


def mp_b2(x, y, z):
    r = mp.sqrt(x * x + y * y)
    br, bz = mp_field(r, z)
    return br**2 + bz**2


def _mp_b2_derivs(p):
    mp.mp.dps = 50
    q = tuple(mp.mpf(c) for c in p)

    def f(*c):
        r = mp.sqrt(c[0] ** 2 + c[1] ** 2)
        al2 = (1 - r) ** 2 + c[2] ** 2
        be2 = (1 + r) ** 2 + c[2] ** 2
        k2 = 1 - al2 / be2
        kk, ee = mp.ellipk(k2), mp.ellipe(k2)
        bz = MU0_MP / (2 * mp.pi * al2 * mp.sqrt(be2)) * ((1 - r * r - c[2] ** 2) * ee + al2 * kk)
        br = 0 if r == 0 else MU0_MP * c[2] / (2 * mp.pi * al2 * mp.sqrt(be2) * r) * ((1 + r * r + c[2] ** 2) * ee - al2 * kk)
        return br**2 + bz**2

    g = np.array([float(mp.diff(f, q, tuple(int(i == k) for k in range(3)))) for i in range(3)])
    h = np.array([[float(mp.diff(f, q, tuple(int(i == k) + int(j == k) for k in range(3))))
                   for j in range(3)] for i in range(3)])
    mp.mp.dps = 60
    return g, h


@pytest.mark.parametrize("p", [(0.0, 0.0, 0.3), (1e-9, 0.0, 0.3), (0.0, 1e-9, -0.7), (0.0, 0.0, 0.0)])
def test_b2_gradient_and_hessian_exact_on_axis(p):
    b2 = lambda q: jnp.sum(loop_field(q, 1.0, 1.0) ** 2)  # noqa: E731
    g = np.asarray(jax.grad(b2)(jnp.array(p)))
    h = np.asarray(jax.hessian(b2)(jnp.array(p)))
    g_ref, h_ref = _mp_b2_derivs(p)
    assert np.all(np.isfinite(h))
    assert np.max(np.abs(h - h_ref)) <= 1e-9 * np.max(np.abs(h_ref))
    assert np.max(np.abs(g - g_ref)) <= 1e-9 * max(np.max(np.abs(g_ref)), 1e-9 * np.max(np.abs(h_ref)))


def _central(f, x, h):
    return (f(x + h) - f(x - h)) / (2 * h)


def test_derivatives_wrt_loop_parameters():
    p = jnp.array([0.3, -0.2, 0.45])
    a0, i0 = 0.9, 1.5
    c0 = jnp.array([0.05, 0.02, -0.1])
    n0 = jnp.array([0.2, -0.1, 1.0])

    def bz(a, i, c, n):
        return loop_field(p, a, i, c, n)[2] + 0.3 * loop_field(p, a, i, c, n)[0]

    ga, gi, gc, gn = jax.grad(bz, argnums=(0, 1, 2, 3))(a0, i0, c0, n0)
    assert float(ga) == pytest.approx(_central(lambda a: float(bz(a, i0, c0, n0)), a0, 1e-6), rel=1e-7)
    assert float(gi) == pytest.approx(float(bz(a0, i0, c0, n0)) / i0, rel=1e-13)  # linear in I
    for k in range(3):
        e = jnp.zeros(3).at[k].set(1.0)
        fd_c = _central(lambda t: float(bz(a0, i0, c0 + t * e, n0)), 0.0, 1e-6)
        fd_n = _central(lambda t: float(bz(a0, i0, c0, n0 + t * e)), 0.0, 1e-6)
        assert float(gc[k]) == pytest.approx(fd_c, rel=1e-6, abs=1e-12 * abs(fd_c) + 1e-16)
        assert float(gn[k]) == pytest.approx(fd_n, rel=1e-6, abs=1e-16)
    # translation invariance: d/dc = -d/dp
    gp = jax.grad(lambda q: loop_field(q, a0, i0, c0, n0)[2] + 0.3 * loop_field(q, a0, i0, c0, n0)[0])(p)
    assert np.allclose(gc, -gp, rtol=1e-12, atol=1e-20)


def test_against_magpylib_random_configurations():
    rng = np.random.default_rng(1)
    for _ in range(5):
        n_loops = 7
        radius = rng.uniform(0.2, 2.0, n_loops)
        current = rng.uniform(-3, 3, n_loops)
        center = rng.uniform(-1, 1, (n_loops, 3))
        rot = Rotation.random(n_loops, random_state=rng)
        normal = rot.apply([0.0, 0.0, 1.0])
        pts = rng.uniform(-3, 3, (200, 3))
        ours = np.asarray(loop_field(pts, radius, current, center, normal))
        coll = magpylib.Collection(*[
            magpylib.current.Circle(current=float(i), diameter=2 * float(a), position=c, orientation=R)
            for a, i, c, R in zip(radius, current, center, rot)
        ])
        ref = np.asarray(magpylib.getB(coll, pts)) * (MU0 / magpylib.mu_0)
        err = np.linalg.norm(ours - ref, axis=-1) / np.linalg.norm(ref, axis=-1)
        assert np.max(err) < 1e-10


def test_maxwell_equations_div_and_curl_vanish():
    f = lambda q: loop_field(q, 1.0, 1.0, jnp.array([0.1, 0.0, 0.2]), jnp.array([1.0, 1.0, 1.0]))  # noqa: E731
    for p in [jnp.array([0.2, 0.3, -0.4]), jnp.array([2.0, -1.0, 0.5]), jnp.array([1e-3, 0.0, 0.0])]:
        j = jax.jacfwd(f)(p)
        scale = float(jnp.max(jnp.abs(j)))
        assert abs(float(jnp.trace(j))) < 1e-13 * scale
        assert np.max(np.abs(np.asarray(j - j.T))) < 1e-13 * scale


def test_far_field_approaches_dipole():
    a, current = 1.0, 2.0
    moment = jnp.array([0.0, 0.0, current * math.pi * a**2])
    for rho in [1e2, 1e3]:
        p = rho * jnp.array([0.6, 0.0, 0.8])
        b = loop_field(p, a, current)
        bd = dipole_field(p, moment)
        # the first correction to the dipole field is O((a / rho)^2)
        rel = float(jnp.linalg.norm(b - bd) / jnp.linalg.norm(bd))
        assert rel < 3 * (a / rho) ** 2
        assert rel > 0.01 * (a / rho) ** 2


def test_dipole_against_magpylib():
    rng = np.random.default_rng(3)
    m = rng.normal(size=(20, 3))
    pos = rng.normal(size=(20, 3))
    pts = rng.normal(size=(20, 3)) * 3
    ours = np.asarray(dipole_field(pts, m, pos))
    ref = magpylib.func.dipole_field("B", pts, moments=m, positions=pos) * (MU0 / magpylib.mu_0)
    assert np.allclose(ours, ref, rtol=1e-12, atol=0)


def test_broadcasting_and_summing():
    pts = jnp.ones((4, 5, 3)) * jnp.array([0.1, 0.2, 0.3])
    radius = jnp.array([1.0, 2.0])
    current = jnp.array([1.0, -1.0])
    per = loop_field(pts, radius, current, sum_loops=False)
    tot = loop_field(pts, radius, current)
    assert per.shape == (4, 5, 2, 3) and tot.shape == (4, 5, 3)
    assert np.allclose(per.sum(axis=-2), tot, rtol=1e-15)
    single = loop_field(pts[0, 0], 2.0, -1.0)
    assert np.allclose(single, per[0, 0, 1], rtol=1e-15)
    loops = Loops(radius, current)
    assert np.allclose(loops.field(pts), tot, rtol=1e-15)
    # jit and vmap give the same values
    assert np.allclose(jax.jit(lambda lp, p: lp.field(p))(loops, pts), tot, rtol=1e-15)


def test_on_wire_is_inf_not_nan():
    b = np.asarray(loop_field(jnp.array([1.0, 0.0, 0.0]), 1.0, 1.0))
    assert np.all(np.isinf(b))
    assert np.all(np.isinf(np.asarray(loop_vector_potential(jnp.array([0.0, 1.0, 0.0]), 1.0, 1.0))))
    near = np.asarray(loop_field(jnp.array([1.0 + 1e-9, 0.0, 0.0]), 1.0, 1.0))
    assert np.all(np.isfinite(near))


@pytest.mark.parametrize("kwargs,match", [
    (dict(radius=-1.0), "radius"),
    (dict(radius=0.0), "radius"),
    (dict(current=float("nan")), "current"),
    (dict(normal=(0.0, 0.0, 0.0)), "normal"),
    (dict(center=(0.0, 0.0)), "center"),
    (dict(radius=jnp.ones(3), current=jnp.ones(2)), "do not broadcast"),
])
def test_bad_input_names_the_argument(kwargs, match):
    args = dict(points=jnp.zeros(3), radius=1.0, current=1.0)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        loop_field(**args)


def test_bad_points():
    with pytest.raises(ValueError, match="points"):
        loop_field(jnp.array([0.0, float("nan"), 0.0]), 1.0, 1.0)
    with pytest.raises(ValueError, match="points"):
        loop_field(jnp.zeros((4, 2)), 1.0, 1.0)
