"""Energy, force, Hessian, Laplacian of |B|^2 and trap modes against independent references."""

import math

import jax
import jax.numpy as jnp
import mpmath as mp
import numpy as np
import pytest

import invdesign  # noqa: F401
from invdesign.fields import Loops
from invdesign.levitation import (
    Sphere,
    anti_helmholtz_sphere,
    anti_helmholtz_trap,
    axis_stiffness,
    b_squared,
    concentric_trap,
    energy,
    energy_hessian,
    force,
    hessian_b2,
    laplacian_b2,
    trap_modes,
)
from invdesign.reference.levitation import (
    G0,
    MU0,
    axis_derivatives,
    axis_hessian_b2,
    b_axis,
    biot_savart,
    fd_hessian,
    sphere_volume,
)


@pytest.fixture(autouse=True, scope="module")
def _mp_40_digits():
    """40 digits for this module's own mpmath arithmetic (b'^2 / 2 - b b'' cancels)."""
    with mp.workdps(40):
        yield


AH_AXIS = [(1e-6, 0.03, -0.5e-6), (1e-6, -0.03, 0.5e-6)]  # (radius, current, z_centre)
ONE_AXIS = [(1.0, 1.0, 0.0)]


@pytest.fixture(scope="module")
def ah():
    return anti_helmholtz_trap()


# ----------------------------------------------------------------------------- Sphere


def test_sphere_volume_and_validation():
    s = Sphere(radius=2e-6, mass=1e-12, k=1.5)
    assert float(s.volume) == pytest.approx(4 / 3 * math.pi * 8e-18, rel=1e-15)
    with pytest.raises(ValueError, match="radius"):
        Sphere(radius=-1e-6, mass=1e-12)
    with pytest.raises(ValueError, match="mass"):
        Sphere(radius=1e-6, mass=0.0)
    with pytest.raises(ValueError, match="k must be finite"):
        Sphere(radius=1e-6, mass=1e-12, k=float("nan"))
    with pytest.raises(ValueError, match="k must be > 0"):
        Sphere(radius=1e-6, mass=1e-12, k=-1.0)


# ----------------------------------------------------------------------------- energy


def test_energy_on_axis_matches_analytic_field(ah):
    sphere = Sphere(radius=0.3e-6, mass=2e-15, k=1.5)
    zs = np.array([-0.3e-6, 0.1e-6, 2.0e-6])
    pts = np.stack([np.zeros(3), np.zeros(3), zs], axis=-1)
    got = np.asarray(energy(pts, ah, sphere))
    vol = sphere_volume(0.3e-6)
    ref = [2e-15 * G0 * z + 1.5 * vol * float(b_axis(z, AH_AXIS)) ** 2 / (2 * MU0) for z in zs]
    np.testing.assert_allclose(got, ref, rtol=1e-12)
    # g = 0 switches gravity off
    np.testing.assert_allclose(np.asarray(energy(pts, ah, sphere, g=0.0)),
                               [1.5 * vol * float(b_axis(z, AH_AXIS)) ** 2 / (2 * MU0) for z in zs], rtol=1e-12)


def test_force_and_hessian_match_central_differences(ah):
    sphere = anti_helmholtz_sphere(1.5)
    x = np.array([0.31e-6, -0.17e-6, 0.23e-6])
    u = lambda p: float(energy(p, ah, sphere))  # noqa: E731
    length = 0.5e-6  # field length scale (distance to the wires): steps are scaled to it
    h = 1e-5 * length
    fd_grad = np.array([(u(x + h * e) - u(x - h * e)) / (2 * h) for e in np.eye(3)])
    np.testing.assert_allclose(np.asarray(force(x, ah, sphere)), -fd_grad, rtol=1e-8, atol=1e-8 * np.abs(fd_grad).max())
    fd_h = fd_hessian(u, x, 1e-3 * length)
    got = np.asarray(energy_hessian(x, ah, sphere))
    np.testing.assert_allclose(got, fd_h, atol=1e-6 * np.abs(fd_h).max())
    np.testing.assert_allclose(got, got.T, atol=1e-12 * np.abs(got).max())


@pytest.mark.parametrize("trap", ["anti-helmholtz", "concentric"])
def test_axis_stiffness_equals_the_full_hessian_on_the_axis(ah, trap):
    """The closed-form axis stiffness (second-order off-axis expansion of B_z(z)) against the
    elliptic-integral Hessian at the same points, and against the mpmath axis derivatives."""
    loops, zs = (ah, [-0.2e-6, 0.15e-6, 0.9e-6]) if trap == "anti-helmholtz" else \
        (concentric_trap(), [2e-6, 3.3e-6, 7e-6])
    sphere = Sphere(radius=0.3e-6, mass=2e-15, k=1.5)
    stiff = jax.jit(axis_stiffness)
    for z in zs:
        k_z, k_r = (float(k) for k in stiff(z, loops, sphere))
        h = np.asarray(energy_hessian(np.array([0.0, 0.0, z]), loops, sphere))
        scale = np.abs(h).max()
        assert k_z == pytest.approx(h[2, 2], rel=1e-9, abs=1e-12 * scale)
        assert k_r == pytest.approx(h[0, 0], rel=1e-9, abs=1e-12 * scale)
        assert k_r == pytest.approx(h[1, 1], rel=1e-9, abs=1e-12 * scale)
        if trap == "anti-helmholtz":
            h_r, _, h_z = axis_hessian_b2(z, AH_AXIS)
            coef = 1.5 * sphere_volume(0.3e-6) / (2 * MU0)
            assert k_z == pytest.approx(coef * h_z, rel=1e-9)
            assert k_r == pytest.approx(coef * h_r, rel=1e-9)


def test_energy_is_differentiable_wrt_loops_and_sphere(ah):
    sphere = anti_helmholtz_sphere()
    x = jnp.array([0.2e-6, 0.1e-6, -0.3e-6])
    gl, gs = jax.grad(lambda L, s: energy(x, L, s), argnums=(0, 1))(ah, sphere)
    # U_mag is quadratic in the currents: dU/dI_i summed with I_i equals 2 U_mag
    u_mag = float(energy(x, ah, sphere, g=0.0))
    assert float(jnp.sum(gl.current * ah.current)) == pytest.approx(2 * u_mag, rel=1e-10)
    # dU/dk = V B^2 / (2 mu0) = U_mag / k ; dU/dm = g z
    assert float(gs.k) == pytest.approx(u_mag, rel=1e-12)
    assert float(gs.mass) == pytest.approx(G0 * float(x[2]), rel=1e-12)
    # vmap over points agrees with the batched call
    pts = jnp.array([[0.0, 0.0, 0.1e-6], [0.2e-6, 0.0, -0.2e-6]])
    np.testing.assert_allclose(jax.vmap(lambda p: energy(p, ah, sphere))(pts), energy(pts, ah, sphere), rtol=1e-14)


# ----------------------------------------------------------------------------- Laplacian


@pytest.mark.parametrize("z", [-1.3, -0.5, 0.0, 0.2, 0.9])
def test_single_loop_axis_hessian_and_laplacian(z):
    """On the axis: lap |B|^2 = 3 b'^2, H = diag(b'^2/2 - b b'', same, 2 (b'^2 + b b''))."""
    loop = Loops(radius=1.0, current=1.0)
    x = jnp.array([0.0, 0.0, z])
    b, b1, _ = axis_derivatives(z, ONE_AXIS)
    scale = float(b**2)  # T^2 / m^2 with a = 1 m
    lap = float(laplacian_b2(x, loop))
    assert lap == pytest.approx(3 * float(b1) ** 2, rel=1e-10, abs=1e-13 * scale)
    np.testing.assert_allclose(np.diag(np.asarray(hessian_b2(x, loop))), axis_hessian_b2(z, ONE_AXIS),
                               rtol=1e-10, atol=1e-13 * scale)


def test_fig1_laplacians_off_axis_against_biot_savart():
    """3-D and in-plane Laplacian of |B|^2 off the axis vs finite differences of a numpy
    Biot-Savart sum; the 3-D one is 2 sum (dB_j/dx_i)^2 > 0, the in-plane one changes sign."""
    loop = Loops(radius=1.0, current=1.0)
    b2_ref = lambda p: float(np.sum(biot_savart(p, 1.0, 1.0) ** 2))  # noqa: E731
    points = np.array([[0.3, 0.0, 0.1], [0.5, 0.0, 0.4], [1.6, 0.0, 0.3], [0.7, 0.0, -1.2]])
    planar_sign = []
    for p in points:
        ref = fd_hessian(b2_ref, p, 2e-3)
        got = np.asarray(hessian_b2(p, loop))
        tol = 2e-5 * np.abs(ref).max()
        np.testing.assert_allclose(got, ref, atol=tol)
        assert float(laplacian_b2(p, loop)) == pytest.approx(np.trace(ref), abs=tol)
        # identity for a harmonic field: lap |B|^2 = 2 |grad B|_F^2 (numpy Jacobian)
        h = 1e-5
        jac = np.stack([(biot_savart(p + h * e, 1.0, 1.0) - biot_savart(p - h * e, 1.0, 1.0)) / (2 * h)
                        for e in np.eye(3)])
        assert float(laplacian_b2(p, loop)) == pytest.approx(2 * np.sum(jac**2), rel=1e-6)
        planar_sign.append(np.sign(ref[0, 0] + ref[2, 2]))
    # Fig. 1 (in-plane reading): negative inside the loop near its plane, positive outside
    assert planar_sign == [-1.0, 1.0, 1.0, 1.0]


def test_anti_helmholtz_centre_laplacian_and_modes(ah):
    """Near the centre B^2 = G^2 (z^2 + r^2/4): lap = 3 G^2, stiffness k V G^2/mu0 (1/4, 1/4, 1)."""
    G = float(mp.diff(lambda t: b_axis(t, AH_AXIS), 0))
    assert float(laplacian_b2(jnp.zeros(3), ah)) == pytest.approx(3 * G**2, rel=1e-10)
    for k in (1.0, 1.5):
        sphere = anti_helmholtz_sphere(k)
        kz = k * sphere_volume(0.5e-6) * G**2 / MU0
        tm = trap_modes(jnp.zeros(3), ah, sphere)
        np.testing.assert_allclose(tm.eigenvalues, [kz / 4, kz / 4, kz], rtol=1e-10)
        fz = math.sqrt(kz / 4.487e-15) / (2 * math.pi)
        np.testing.assert_allclose(tm.frequencies, [fz / 2, fz / 2, fz], rtol=1e-10)
        assert abs(float(tm.modes[2, 2])) == pytest.approx(1.0, rel=1e-12)  # axial mode along z
        assert bool(tm.stable) and bool(tm.laplacian_positive)
        assert float(tm.lap_b2) == pytest.approx(3 * G**2, rel=1e-10)
        np.testing.assert_allclose(tm.force, [0, 0, -4.487e-15 * G0], rtol=1e-12, atol=1e-30)
    # k = 1: f_z = 49.646 kHz for the paper's trap
    assert fz / math.sqrt(1.5) == pytest.approx(49646, rel=1e-4)


def test_trap_modes_signed_frequency_marks_unstable_direction():
    """Concentric trap at the field-zero-free lower axis point: axial curvature negative."""
    cc = concentric_trap()
    sphere = Sphere(radius=5e-6, mass=4.487e-12)
    z = 0.3e-6
    tm = trap_modes(jnp.array([0.0, 0.0, z]), cc, sphere)
    cc_axis = [(6e-6, 0.038, 0.0), (9e-6, -0.038, 0.0)]
    hr, _, hz = axis_hessian_b2(z, cc_axis)
    coef = sphere_volume(5e-6) / (2 * MU0)
    assert hz < 0 < hr
    np.testing.assert_allclose(tm.eigenvalues, sorted([coef * hz, coef * hr, coef * hr]), rtol=1e-9)
    f_ref = -math.sqrt(-coef * hz / 4.487e-12) / (2 * math.pi)
    assert float(tm.frequencies[0]) == pytest.approx(f_ref, rel=1e-9)
    assert not bool(tm.stable) and bool(tm.laplacian_positive)


def test_trap_modes_grad_through_degenerate_pair(ah):
    """f ~ m^(-1/2): df/dm = -f/(2m), finite although the two radial eigenvalues coincide."""
    sphere = anti_helmholtz_sphere()
    f = trap_modes(jnp.zeros(3), ah, sphere).frequencies
    df = jax.grad(lambda s: trap_modes(jnp.zeros(3), ah, s).frequencies.sum())(sphere)
    assert float(df.mass) == pytest.approx(-float(f.sum()) / (2 * 4.487e-15), rel=1e-10)


# ----------------------------------------------------------------------------- bad input


def test_bad_positions_raise(ah):
    sphere = anti_helmholtz_sphere()
    wire = jnp.array([1e-6, 0.0, 0.5e-6])
    with pytest.raises(ValueError, match="x = .* on a wire"):
        laplacian_b2(wire, ah)
    with pytest.raises(ValueError, match="x = .*overlaps a wire"):
        energy(jnp.array([0.7e-6, 0.0, 0.5e-6]), ah, sphere)  # 0.3 um from the wire < R = 0.5 um
    with pytest.raises(ValueError, match="x = .*overlaps a wire"):
        force(wire, ah, sphere)
    with pytest.raises(ValueError, match="x = .*overlaps a wire"):
        trap_modes(jnp.array([1e-6, 0.0, 0.1e-6]), ah, sphere)
    with pytest.raises(ValueError, match="x must be finite"):
        energy(jnp.array([0.0, float("nan"), 0.0]), ah, sphere)
    with pytest.raises(ValueError, match=r"x must have shape \(\.\.\., 3\)"):
        b_squared(jnp.zeros(2), ah)
    with pytest.raises(TypeError, match="sphere must be"):
        energy(jnp.zeros(3), ah, 1.0)
    # exactly touching (distance = R) is allowed
    assert np.isfinite(float(energy(jnp.array([0.5e-6, 0.0, 0.5e-6]), ah, sphere)))
    with pytest.raises(ValueError, match="radius"):
        anti_helmholtz_trap(radius=-1e-6)
    with pytest.raises(ValueError, match="inner_radius must be < outer_radius"):
        concentric_trap(inner_radius=9e-6, outer_radius=6e-6)
