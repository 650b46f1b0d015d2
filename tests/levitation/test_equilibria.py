"""Equilibria (Newton + implicit differentiation) of the paper's traps vs mpmath references."""

import math

import jax
import jax.numpy as jnp
import mpmath as mp
import numpy as np
import pytest

import invdesign  # noqa: F401
from invdesign.fields import Loops
from invdesign.levitation import (
    EquilibriumError,
    Sphere,
    anti_helmholtz_sphere,
    anti_helmholtz_trap,
    axial_equilibrium,
    concentric_sphere,
    concentric_trap,
    equilibrium,
    find_equilibria,
    trap_modes,
)
from invdesign.reference.levitation import G0, MU0, axis_derivatives, b_axis, sphere_volume


@pytest.fixture(autouse=True, scope="module")
def _mp_40_digits():
    """40 digits for this module's own mpmath arithmetic (b'^2 / 2 - b b'' cancels)."""
    with mp.workdps(40):
        yield


AH_AXIS = [(1e-6, 0.03, -0.5e-6), (1e-6, -0.03, 0.5e-6)]


def cc_axis(current=0.038, inner=6e-6, outer=9e-6):
    return [(inner, current, 0.0), (outer, -current, 0.0)]


def axial_root(axis, radius, mass, k, z_guess_um):
    """Root of dU/dz = m g + (k V / mu0) b b' on the axis (mpmath), in metres."""
    coef = k * sphere_volume(radius) / MU0

    def dudz(z_um):
        b, b1, _ = axis_derivatives(z_um * mp.mpf("1e-6"), axis)
        return (mass * G0 + coef * b * b1) / (mass * G0)

    return float(mp.findroot(dudz, z_guess_um)) * 1e-6


def axial_stiffness(axis, z, radius, k):
    """(k_radial, k_axial) in N/m on the axis: kV/(2mu0) (b'^2/2 - b b''), kV/mu0 (b'^2 + b b'')."""
    b, b1, b2 = axis_derivatives(z, axis)
    coef = k * sphere_volume(radius) / MU0
    return float(coef * (b1**2 / 2 - b * b2) / 2), float(coef * (b1**2 + b * b2))


@pytest.mark.parametrize("k", [1.0, 1.5])
def test_anti_helmholtz_equilibrium_is_the_sagged_centre(k):
    ah, sphere = anti_helmholtz_trap(), anti_helmholtz_sphere(k)
    x = np.asarray(equilibrium(ah, sphere, jnp.array([0.05e-6, -0.03e-6, 0.1e-6])))
    G = float(mp.diff(lambda t: b_axis(t, AH_AXIS), 0))
    sag = -4.487e-15 * G0 * MU0 / (k * sphere_volume(0.5e-6) * G**2)  # U = m g z + k_z z^2 / 2
    assert x[2] == pytest.approx(sag, rel=1e-6)
    assert abs(x[0]) < 1e-20 and abs(x[1]) < 1e-20
    assert abs(sag) < 1.1e-10  # ~0.1 nm: "the centre" of the paper


@pytest.mark.parametrize("k, z_guess", [(1.0, 3.7), (1.5, 4.0)])
def test_concentric_equilibrium_matches_mpmath(k, z_guess):
    cc, sphere = concentric_trap(), concentric_sphere(k)
    z_ref = axial_root(cc_axis(), 5e-6, 4.487e-12, k, z_guess)
    x, info = equilibrium(cc, sphere, jnp.array([0.5e-6, 0.2e-6, 3e-6]), return_info=True)
    assert bool(info.converged) and float(info.clearance) > 0
    assert float(x[2]) == pytest.approx(z_ref, rel=1e-10)
    assert abs(float(x[0])) < 1e-18 and abs(float(x[1])) < 1e-18
    z_ax, found = axial_equilibrium(cc, sphere, 0.0, 12e-6)
    assert bool(found) and float(z_ax) == pytest.approx(z_ref, rel=1e-10)
    kr, kz = axial_stiffness(cc_axis(), z_ref, 5e-6, k)
    tm = trap_modes(x, cc, sphere)
    np.testing.assert_allclose(tm.eigenvalues, [kr, kr, kz], rtol=1e-7)
    f_ref = [math.sqrt(v / 4.487e-12) / (2 * math.pi) for v in (kr, kr, kz)]
    np.testing.assert_allclose(tm.frequencies, f_ref, rtol=1e-7)
    assert bool(tm.stable)
    # the paper: "on the axis ... close to z = 3 um"; the point-particle model puts it at
    # 3.71 um (k = 1) and 4.04 um (k = 3/2)
    assert 3.5e-6 < z_ref < 4.2e-6


# one compiled gradient program serves both traps (same pytree shapes)
_grad_z_eq = jax.jit(jax.grad(lambda L, s, x0: equilibrium(L, s, x0)[2], argnums=(0, 1)))


def test_equilibrium_implicit_gradients_vs_central_differences():
    sphere = concentric_sphere()
    x0 = jnp.array([0.0, 0.0, 3.5e-6])

    def z_eq(current, inner):
        return float(equilibrium(concentric_trap(current=current, inner_radius=inner), sphere, x0)[2])

    gl, _ = _grad_z_eq(concentric_trap(), sphere, x0)
    d_i = float(gl.current[0] - gl.current[1])  # inner loop carries +I, outer -I
    d_a = float(gl.radius[0])
    h_i, h_a = 1e-5 * 0.038, 1e-5 * 6e-6
    fd_i = (z_eq(0.038 + h_i, 6e-6) - z_eq(0.038 - h_i, 6e-6)) / (2 * h_i)
    fd_a = (z_eq(0.038, 6e-6 + h_a) - z_eq(0.038, 6e-6 - h_a)) / (2 * h_a)
    assert d_i == pytest.approx(fd_i, rel=1e-6)
    assert d_a == pytest.approx(fd_a, rel=1e-6)
    # independent reference: derivative of the mpmath root, by central differences
    ref = (axial_root(cc_axis(0.038 + h_i), 5e-6, 4.487e-12, 1.0, 3.7)
           - axial_root(cc_axis(0.038 - h_i), 5e-6, 4.487e-12, 1.0, 3.7)) / (2 * h_i)
    assert d_i == pytest.approx(ref, rel=1e-6)


def test_equilibrium_gradient_wrt_pytrees_anti_helmholtz():
    """z_eq = -m g mu0 / (k V G^2) with G ~ I: dz/dI = -2 z/I, dz/dm = z/m, dz/dk = -z/k."""
    ah, sphere = anti_helmholtz_trap(), anti_helmholtz_sphere()
    x0 = jnp.array([0.0, 0.0, 0.1e-6])
    z = float(equilibrium(ah, sphere, x0)[2])
    gl, gs = _grad_z_eq(ah, sphere, x0)
    # the two currents are +I and -I: dz/dI = dz/dI_0 - dz/dI_1
    assert float(gl.current[0] - gl.current[1]) == pytest.approx(-2 * z / 0.03, rel=1e-6)
    assert float(gs.mass) == pytest.approx(z / 4.487e-15, rel=1e-6)
    assert float(gs.k) == pytest.approx(-z / 1.0, rel=1e-6)


def test_axial_equilibrium_vmap_and_gradient():
    sphere = concentric_sphere()
    currents = jnp.array([0.032, 0.038, 0.045])
    solve = jax.jit(jax.vmap(lambda c: axial_equilibrium(concentric_trap(current=c), sphere, 0.0, 12e-6)))
    z, found = solve(currents)
    assert bool(jnp.all(found))
    for c, zi in zip(np.asarray(currents), np.asarray(z)):
        assert float(zi) == pytest.approx(axial_root(cc_axis(float(c)), 5e-6, 4.487e-12, 1.0, 3.7), rel=1e-9)
    gl = jax.jit(jax.grad(lambda L: axial_equilibrium(L, sphere, 0.0, 12e-6)[0]))(concentric_trap())
    h = 1e-5 * 0.038
    fd = (solve(currents + h)[0] - solve(currents - h)[0]) / (2 * h)
    assert float(gl.current[0] - gl.current[1]) == pytest.approx(float(fd[1]), rel=1e-6)


def test_axial_equilibrium_reports_not_found_for_a_too_heavy_sphere():
    cc = concentric_trap()
    # the largest upward magnetic force on the axis is ~2.98 m g (mpmath scan); 4 m g is too much
    coef = sphere_volume(5e-6) / MU0
    zs = np.linspace(0.05e-6, 12e-6, 240)
    f_max = max(float(-coef * b * b1) for b, b1, _ in (axis_derivatives(z, cc_axis()) for z in zs))
    assert 2.9 < f_max / (4.487e-12 * G0) < 3.1
    heavy = Sphere(radius=5e-6, mass=4 * 4.487e-12)
    z, found = axial_equilibrium(cc, heavy, 0.0, 12e-6)
    assert not bool(found)
    light = Sphere(radius=5e-6, mass=2.5 * 4.487e-12)
    assert bool(axial_equilibrium(cc, light, 0.0, 12e-6)[1])


def test_find_equilibria_classifies_concentric_trap():
    cc, sphere = concentric_trap(), concentric_sphere()
    starts = np.array([[0.0, 0.0, z] for z in np.linspace(0.1e-6, 8e-6, 9)])
    ds = find_equilibria(cc, sphere, starts)
    z_stable = axial_root(cc_axis(), 5e-6, 4.487e-12, 1.0, 3.7)
    z_unstable = axial_root(cc_axis(), 5e-6, 4.487e-12, 1.0, 0.35)
    pos = ds.position.values
    on_axis = np.hypot(pos[:, 0], pos[:, 1]) < 1e-15
    zs = np.sort(pos[on_axis, 2])
    np.testing.assert_allclose(zs, [z_unstable, z_stable], rtol=1e-9)
    st = ds.isel(equilibrium=np.flatnonzero(on_axis & (pos[:, 2] > 1e-6)))
    un = ds.isel(equilibrium=np.flatnonzero(on_axis & (pos[:, 2] < 1e-6)))
    assert list(st.classification.values) == ["stable"] and list(un.classification.values) == ["unstable"]
    kr, kz = axial_stiffness(cc_axis(), z_unstable, 5e-6, 1.0)
    assert kz < 0 < kr
    assert float(un.frequencies.values[0, 0]) == pytest.approx(-math.sqrt(-kz / 4.487e-12) / (2 * math.pi), rel=1e-7)
    assert bool(un.laplacian_positive.values[0])  # eq. 11 holds at an unstable equilibrium
    assert ds.attrs["n_converged"] <= ds.attrs["n_starts_total"] == 9
    for name, var in ds.data_vars.items():
        assert "units" in var.attrs and "long_name" in var.attrs, name
    # energies are sorted
    assert np.all(np.diff(ds.energy.values) >= 0)


def test_equilibrium_bad_input():
    ah, sphere = anti_helmholtz_trap(), anti_helmholtz_sphere()
    with pytest.raises(ValueError, match="x0 = .*overlaps a wire"):
        equilibrium(ah, sphere, jnp.array([0.8e-6, 0.0, 0.5e-6]))
    with pytest.raises(ValueError, match="x0 must be finite"):
        equilibrium(ah, sphere, jnp.array([0.0, 0.0, float("nan")]))
    with pytest.raises(ValueError, match="starts = .*overlaps a wire"):
        find_equilibria(ah, sphere, np.array([[0.0, 0.0, 0.0], [1.2e-6, 0.0, -0.5e-6]]))
    with pytest.raises(ValueError, match="method"):
        equilibrium(ah, sphere, jnp.zeros(3), method="bfgs")
    with pytest.raises(EquilibriumError, match="did not converge"):
        equilibrium(concentric_trap(), concentric_sphere(), jnp.array([0.0, 0.0, 11e-6]), max_iter=2)
    with pytest.raises(ValueError, match="z_min must be < z_max"):
        axial_equilibrium(ah, sphere, 1e-6, -1e-6)
    tilted = Loops(radius=1e-6, current=0.03, center=(0.0, 0.0, 0.0), normal=(0.0, 1.0, 1.0))
    with pytest.raises(ValueError, match="coaxial"):
        axial_equilibrium(tilted, sphere, -1e-6, 1e-6)
