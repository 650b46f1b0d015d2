"""The faces of the cavity package's layout: the abstract model interface and the one total energy.

References: Python's abstract-class rule (an `equinox.Module` with abstract methods cannot
be instantiated); the image-dipole energy above an infinite superconducting plane written
out here, ``U = mu0 mu^2 (1 + cos^2 theta) / (64 pi h^3)`` with ``mu = Br (4/3 pi a^3) /
mu0``, plus gravity ``m g (up . x)`` with ``up = (0, cos tilt, sin tilt)``; the signed
frequency ``sign(k) sqrt(|k| / m) / (2 pi)``.
"""

import math

import jax.numpy as jnp
import numpy as np
import pytest

import invdesign
from invdesign.cavity import CavityModel, ImageModel, SphereMagnet, mechanical_frequencies, total_energy
from invdesign.constants import G0, MU0

A, MASS, BR = 0.5e-3, 3.67e-6, 1.47


def _image_energy(x, d, plane):
    """mu0 mu^2 (1 + cos^2 theta) / (64 pi h^3) for a moment along d at height x_z - plane."""
    mu = BR * (4.0 / 3.0 * math.pi * A**3) / MU0
    cos_theta = d[2] / math.sqrt(sum(c * c for c in d))
    h = x[2] - plane
    return MU0 * mu**2 * (1.0 + cos_theta**2) / (64.0 * math.pi * h**3)


def test_cavity_model_is_abstract():
    with pytest.raises(TypeError, match="abstract"):
        CavityModel()


def test_a_model_without_magnetic_energy_cannot_be_built():
    class OnlyDistance(CavityModel):
        def surface_distance(self, points):
            return jnp.asarray(points)[..., 2]

    with pytest.raises(TypeError, match="magnetic_energy"):
        OnlyDistance()


def test_a_complete_model_inherits_the_batched_energies_and_the_response_tensor():
    class Quadratic(CavityModel):
        """U = m^T W m / |mu|^2 for a fixed W: response_tensor must give W back."""

        w: jnp.ndarray

        def magnetic_energy(self, magnet, position, direction, normalize=True):
            d = jnp.asarray(direction, dtype=float)
            d = d / jnp.linalg.norm(d) if normalize else d
            return d @ self.w @ d

        def surface_distance(self, points):
            return jnp.asarray(points, dtype=float)[..., 2]

    w = np.array([[1.0, 0.2, -0.3], [0.2, 2.0, 0.5], [-0.3, 0.5, 3.0]]) * 1e-9
    model = Quadratic(jnp.asarray(w))
    magnet = SphereMagnet(radius=A, mass=MASS, remanence=BR)
    np.testing.assert_allclose(np.asarray(model.response_tensor(magnet, jnp.array([0.0, 0.0, 1e-3]))), w, rtol=1e-12, atol=1e-24)
    d = np.array([0.3, -0.4, 0.5])
    pts = jnp.array([[0.0, 0.0, 1e-3], [0.0, 1e-3, 2e-3]])
    want = d @ w @ d / (d @ d)
    np.testing.assert_allclose(np.asarray(model.magnetic_energies(magnet, pts, jnp.asarray(d))), [want, want], rtol=1e-13)


@pytest.mark.parametrize("tilt, response", [(math.pi / 2, 1.0), (math.radians(10.0), 0.37)])
def test_total_energy_is_response_times_the_image_energy_plus_gravity(tilt, response):
    plane = 0.4e-3
    x = (0.3e-3, -1.1e-3, 2.2e-3)
    d = (0.3, -0.5, 0.8)
    magnet = SphereMagnet(radius=A, mass=MASS, remanence=BR)
    up = (0.0, math.cos(tilt), math.sin(tilt))
    gravity = MASS * G0 * sum(u * c for u, c in zip(up, x))
    want = response * _image_energy(x, d, plane) + gravity
    got = total_energy(ImageModel(plane), magnet, jnp.array(x), jnp.array(d), tilt=tilt, response=response)
    assert float(got) == pytest.approx(want, rel=1e-13)
    assert abs(gravity) > 0.05 * abs(want)  # both terms matter in the comparison


def test_image_response_tensor_is_diag_1_1_2():
    h = 1.3e-3
    magnet = SphereMagnet(radius=A, mass=MASS, remanence=BR)
    w = np.asarray(ImageModel(0.0).response_tensor(magnet, jnp.array([0.0, 0.0, h])))
    horizontal = _image_energy((0.0, 0.0, h), (1.0, 0.0, 0.0), 0.0)
    np.testing.assert_allclose(w, np.diag([1.0, 1.0, 2.0]) * horizontal, rtol=1e-13, atol=1e-12 * horizontal)


def test_one_signed_frequency_for_both_wings_and_the_cavity_frequencies():
    assert invdesign.cavity.signed_frequency is invdesign.levitation.signed_frequency
    magnet = SphereMagnet(radius=A, mass=MASS, remanence=BR)
    out = mechanical_frequencies(ImageModel(0.0), magnet, jnp.array([0.0, 0.0, 1.5e-3]), jnp.array([0.0, 0.0, 1.0]))
    # image energy c / z^3 along z: k_zz = 12 c / z^5; lateral stiffness 0 (a plane is flat)
    c = _image_energy((0.0, 0.0, 1.0), (0.0, 0.0, 1.0), 0.0)
    f_z = math.sqrt(12.0 * c / 1.5e-3**5 / MASS) / (2.0 * math.pi)
    assert out["f_z"] == pytest.approx(f_z, rel=1e-12)
    assert out["eigenfrequencies"][-1] == pytest.approx(f_z, rel=1e-12)
    assert abs(out["f_r"]) < 1e-6 * f_z
