"""The four superconductor response models against analytic references.

- model 4 (Meissner BEM): image dipole above a large plate (energy and force), the infinite
  image series between two parallel plates, a superconducting sphere in a uniform field
  (exact moment -2 pi R^3 H0), convergence under mesh refinement in the paper's cavity,
  gradients against finite differences (pose and geometry);
- model 1 (image): paper eq. 3 for the height;
- model 2 (two loops): the closed form on the axis;
- model 3 (paper's N-loop): its energy over a plate scales with the element radius, as the
  issue's probe reported (U / U_image = 0.13, 0.068, 0.048 for loop radii 0.2, 0.1, 0.07 h).
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import invdesign  # noqa: F401
from invdesign.constants import G0, MU0
from invdesign.cavity import (
    PAPER_DISK,
    PAPER_SPHERE,
    CoaxialCavity,
    DiskMagnet,
    HeightDatum,
    ImageModel,
    MeissnerModel,
    NLoopModel,
    SphereMagnet,
    TwoLoopModel,
    axis_height,
    axisymmetric_mesh,
    calibrate_response,
    cavity_layout,
    cavity_mesh,
    image_height,
    mechanical_frequencies,
    near_pairs,
    parallel_plates_mesh,
    plate_mesh,
    sphere_mesh,
)

SPHERE = SphereMagnet(**PAPER_SPHERE, remanence=1.47)


def image_energy(mu, h, theta):
    return MU0 * mu**2 * (1.0 + math.cos(theta) ** 2) / (64.0 * math.pi * h**3)


def dipole_b(m, r):
    d = np.linalg.norm(r)
    u = r / d
    return MU0 / (4 * np.pi) * (3 * np.dot(m, u) * u - m) / d**3


def image_series_energy(m, z0, gap, kmax=4000):
    """Dipole between superconducting planes z = 0 and z = gap: -1/2 m . B_images(x0).

    Images: translations by 2 k gap (same moment) and reflections -z0 + 2 k gap with
    (mx, my, -mz); the sum converges absolutely (1/k^3).
    """
    x0 = np.array([0.0, 0.0, z0])
    mref = m * np.array([1.0, 1.0, -1.0])
    b = np.zeros(3)
    for k in range(-kmax, kmax + 1):
        if k:
            b += dipole_b(m, x0 - np.array([0, 0, z0 + 2 * k * gap]))
        b += dipole_b(mref, x0 - np.array([0, 0, -z0 + 2 * k * gap]))
    return -0.5 * float(m @ b)


# ----------------------------------------------------------------------------- model 4


@pytest.fixture(scope="module")
def plate_model():
    # radius 20 mm = 20 h for h = 1 mm; elements 0.2 mm near the magnet, growing outside 2 mm
    return MeissnerModel(plate_mesh(radius=20e-3, spacing=0.2e-3, free=2e-3, growth=0.15))


@pytest.mark.parametrize("theta", [0.0, math.pi / 2, 0.7])
def test_meissner_plate_matches_image(plate_model, theta):
    h = 1e-3
    d = jnp.array([math.sin(theta), 0.0, math.cos(theta)])
    x = jnp.array([0.3e-3, -0.2e-3, h])  # off the mesh axis
    u = float(plate_model.magnetic_energy(SPHERE, x, d))
    f = -np.asarray(jax.grad(lambda p: plate_model.magnetic_energy(SPHERE, p, d))(x))
    u_ref = image_energy(float(SPHERE.moment), h, theta)
    f_ref = 3.0 * u_ref / h  # repulsive, F = -dU/dh
    assert u == pytest.approx(u_ref, rel=1e-3)  # issue asks 1 %, measured ~1e-4
    assert f[2] == pytest.approx(f_ref, rel=1e-3)
    assert abs(f[0]) < 1e-3 * f_ref and abs(f[1]) < 1e-3 * f_ref


def test_meissner_two_plates_match_image_series():
    gap, z0 = 2e-3, 0.7e-3
    model = MeissnerModel(parallel_plates_mesh(radius=40e-3, gap=gap, spacing=0.2e-3, free=2e-3, growth=0.15))
    for theta in (0.0, math.pi / 2, 1.0):
        d = np.array([math.sin(theta), 0.0, math.cos(theta)])
        u = float(model.magnetic_energy(SPHERE, jnp.array([0.4e-3, 0.3e-3, z0]), jnp.asarray(d)))
        ref = image_series_energy(d * float(SPHERE.moment), z0, gap)
        assert u == pytest.approx(ref, rel=5e-3), theta  # issue asks 1 %, measured <= 1.4e-3
    # the coupling matters: one plate alone is far off
    single = image_energy(float(SPHERE.moment), z0, 0.0)
    assert abs(single / image_series_energy(np.array([0, 0, 1.0]) * float(SPHERE.moment), z0, gap) - 1) > 0.05


def test_meissner_sphere_in_uniform_field():
    """Superconducting sphere in H0: sigma = -3/2 H0 cos(theta), moment -2 pi R^3 H0."""
    radius, h0 = 1e-3, 1e3
    mesh = sphere_mesh(radius, 0.1e-3)
    model = MeissnerModel(mesh)
    sigma = np.asarray(model.solve(-mesh.normal[:, 2] * h0))
    moment = float(np.sum(sigma * np.asarray(mesh.area) * np.asarray(mesh.centre[:, 2])))
    assert moment == pytest.approx(-2.0 * math.pi * radius**3 * h0, rel=3e-3)
    cos = np.asarray(mesh.centre[:, 2]) / radius
    assert np.max(np.abs(sigma + 1.5 * h0 * cos)) < 3e-3 * 1.5 * h0


@pytest.fixture(scope="module")
def cavity5():
    cav = CoaxialCavity(radius=5e-3)
    return cav, MeissnerModel(cavity_mesh(cav), cav)


def test_meissner_mesh_refinement_in_the_cavity_below_one_percent(cavity5):
    """Default resolution (0.4 mm) against 0.3 mm in the paper's 5 mm cavity."""
    cav, coarse = cavity5
    fine = MeissnerModel(cavity_mesh(cav, 0.3e-3), cav)
    ez, ex = jnp.array([0.0, 0.0, 1.0]), jnp.array([1.0, 0.0, 0.0])
    poses = [((0.0, 0.0, 7e-3), ez), ((0.0, 3.5e-3, 2e-3), ex), ((0.0, 2.6e-3, 5.8e-3), ex), ((0.0, 3e-3, 1e-3), ez)]
    for p, d in poses:
        a = float(coarse.magnetic_energy(SPHERE, jnp.array(p), d))
        b = float(fine.magnetic_energy(SPHERE, jnp.array(p), d))
        assert abs(a / b - 1.0) < 0.01, (p, a, b)
    # (the levitation heights on the axis agree far better, 1.2e-4 of the height above the
    # stub when last measured; not repeated here: two more compilations for 15 s)


def test_meissner_force_matches_finite_difference(cavity5):
    _, model = cavity5
    d = jnp.array([1.0, 0.0, 0.0])
    x = jnp.array([0.2e-3, 3.4e-3, 2.1e-3])
    g = np.asarray(jax.grad(lambda p: model.magnetic_energy(SPHERE, p, d))(x))
    eps = 1e-7
    for k in range(3):
        e = jnp.zeros(3).at[k].set(eps)
        fd = (float(model.magnetic_energy(SPHERE, x + e, d)) - float(model.magnetic_energy(SPHERE, x - e, d))) / (2 * eps)
        assert g[k] == pytest.approx(fd, rel=1e-5, abs=1e-9 * np.abs(g).max())


def test_meissner_energy_differentiable_in_cavity_radius():
    """d U / d R through meshing, assembly and LU at a fixed layout, against central differences."""
    spacing = 1.5e-3
    cav0 = CoaxialCavity(radius=5e-3)
    layout = cavity_layout(cav0, spacing)
    pairs = near_pairs(cavity_mesh(cav0, spacing))
    x, d = jnp.array([0.0, 3.2e-3, 1.8e-3]), jnp.array([1.0, 0.0, 0.0])

    def u(radius):
        cav = CoaxialCavity(radius=radius)
        model = MeissnerModel(cavity_mesh(cav, spacing, layout=layout), pairs=pairs)
        return model.magnetic_energy(SPHERE, x, d)

    value_and_grad = jax.jit(jax.value_and_grad(u))  # one compilation serves both
    g = float(value_and_grad(5e-3)[1])
    h = 1e-7
    fd = (float(value_and_grad(5e-3 + h)[0]) - float(value_and_grad(5e-3 - h)[0])) / (2 * h)
    assert g == pytest.approx(fd, rel=1e-4)
    assert g < 0  # a wider cavity pushes less


def test_response_tensor_reproduces_energies(cavity5):
    _, model = cavity5
    x = jnp.array([0.0, 3.5e-3, 2.0e-3])
    w = np.asarray(model.response_tensor(SPHERE, x))
    rng = np.random.default_rng(0)
    for _ in range(3):
        d = rng.normal(size=3)
        d /= np.linalg.norm(d)
        assert float(model.magnetic_energy(SPHERE, x, jnp.asarray(d))) == pytest.approx(float(d @ w @ d), rel=1e-9)


# ----------------------------------------------------------------------------- models 1-3


@pytest.mark.parametrize("br", [1.22, 1.47, 0.2])
def test_image_height_is_paper_eq3(br):
    for magnet in (SphereMagnet(**PAPER_SPHERE, remanence=br), DiskMagnet(**PAPER_DISK, remanence=br)):
        v = float(magnet.volume)
        rho = float(magnet.mass) / v
        z_eq3 = (3 * v / (32 * math.pi * MU0 * rho * G0)) ** 0.25 * math.sqrt(br)
        assert float(image_height(magnet)) == pytest.approx(z_eq3, rel=1e-12)
        z = axis_height(ImageModel(0.0), magnet, jnp.array([0.0, 0.0, 1.0]), 0.6e-3, 20e-3)
        assert z == pytest.approx(z_eq3, rel=1e-9)


def test_image_model_frequencies():
    """Vertical dipole above a plane: k_z = 4 m g / h (U ~ h^-3 at the equilibrium), no lateral force."""
    z = float(image_height(SPHERE))
    f = mechanical_frequencies(ImageModel(0.0), SPHERE, jnp.array([0.0, 1e-3, z]), jnp.array([0.0, 0.0, 1.0]))
    k_z = 4.0 * float(SPHERE.mass) * G0 / z
    assert f["f_z"] == pytest.approx(math.sqrt(k_z / float(SPHERE.mass)) / (2 * math.pi), rel=1e-9)
    assert abs(f["f_r"]) < 1e-6 and abs(f["f_phi"]) < 1e-6


def test_two_loop_axis_closed_form():
    """Vertical dipole at height z over a loop of radius R1: U = mu0 mu^2 R1^3 / (8 pi z^3 (R1^2 + z^2)^(3/2))."""
    model = TwoLoopModel(loop_radius=2e-3, loop_height=5e-3)
    mu = float(SPHERE.moment)
    for z in (1e-3, 3e-3, 6e-3):
        u = float(model.magnetic_energy(SPHERE, jnp.array([0.0, 0.0, 5e-3 + z]), jnp.array([0.0, 0.0, 1.0])))
        r1 = 2e-3
        ref = MU0 * mu**2 * r1**3 / (8 * math.pi * z**3 * (r1**2 + z**2) ** 1.5)
        assert u == pytest.approx(ref, rel=1e-10)


def test_nloop_energy_scales_with_element_radius():
    """Model 3 over a plate: U / U_image grows with the loop radius (the issue's probe numbers)."""
    h = 1e-3
    probe = {0.2: 0.13, 0.1: 0.068, 0.07: 0.048}
    ratios = {}
    for rho_over_h, expected in probe.items():
        spacing = rho_over_h * h * math.sqrt(math.pi)  # equal-area element radius = spacing / sqrt(pi)
        mesh = axisymmetric_mesh([[[0.0, 0.0], [25e-3, 0.0]]], spacing=spacing)
        u = float(NLoopModel(mesh).magnetic_energy(SPHERE, jnp.array([0.0, 0.0, h]), jnp.array([0.0, 0.0, 1.0])))
        ratios[rho_over_h] = u / image_energy(float(SPHERE.moment), h, 0.0)
        # the probe's element layout is not known and model 3 depends on it (the elements
        # under the magnet dominate): agreement to 25 %
        assert ratios[rho_over_h] == pytest.approx(expected, rel=0.25)
    # roughly proportional to rho: not a convergent discretisation
    assert ratios[0.2] / ratios[0.1] == pytest.approx(2.0, rel=0.15)
    assert ratios[0.1] / ratios[0.07] == pytest.approx(0.1 / 0.07, rel=0.15)


# ----------------------------------------------------------------------------- calibration


def test_calibration_recovers_a_known_response_factor():
    """Heights generated with response 0.3 (two image models, two magnets) are fitted back from 1.

    (The image model keeps this test to seconds: the fit is the same code for every model,
    and a two-loop model costs 40 s of compilation here.)"""
    ex = jnp.array([1.0, 0.0, 0.0])
    data = []
    for br in (1.22, 1.47):
        disk = DiskMagnet(**PAPER_DISK, remanence=br)
        for plate in (5e-3, 6e-3):
            model, lo = ImageModel(plate), plate + 0.6e-3
            z = axis_height(model, disk, ex, lo, 15e-3, response=0.3)
            data.append(HeightDatum(label=f"plate {plate} {br}", model=model, magnet=disk, direction=ex,
                                    height=z - plate, z_lo=lo, z_hi=15e-3, reference=plate, source="synthetic"))
    ds = calibrate_response(data, initial=1.0, steps=150, learning_rate=0.05)
    assert float(ds.response) == pytest.approx(0.3, rel=2e-3)
    assert float(np.max(np.abs(ds.relative_residual))) < 1e-3
    assert ds.loss.values[-1] < 1e-3 * ds.loss.values[0]
