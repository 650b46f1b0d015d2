"""`NLoopModel` (JAX, vectorised) against the paper's own algorithm, a plain Python loop.

The reference is `invdesign.reference.paper_loop`: appendix A / Fig. 10 of the cavity
paper implemented literally (numpy + scipy only, no shared code): per element a rotation into
the element frame, the dipole's normal field at the element centre, ``i = -B_n rho / mu0``,
the classical elliptic-integral loop field (paper eqs. 6-8, on-axis formula near ``r = 0``)
at the magnet, a rotation back and ``U_i = -1/2 mu . B_i``. Both must agree to round-off on
the paper's 7 mm cavity, including on the cavity axis (``r = 0`` for the stub-top loop) and
on both sides of the baseline's near-axis switch.
"""

import math

import jax.numpy as jnp
import numpy as np
import pytest

from invdesign.constants import G0, MU0
from invdesign.fields import loop_field
from invdesign.cavity import (
    PAPER_SPHERE,
    CoaxialCavity,
    NLoopModel,
    SphereMagnet,
    cavity_mesh,
    moment_direction,
    total_energy,
)
from invdesign.reference import paper_loop

SPHERE = SphereMagnet(**PAPER_SPHERE, remanence=1.47)
RTOL = 1e-9

# (position (m), beta, gamma): the cavity axis above the stub, the gap, off the y-z plane,
# near the open end, and just off the axis on both sides of the baseline's near-axis switch
# (r / a = 5e-6 and 5e-5 for the 2 mm stub-top loop)
CASES = [
    ((0.0, 0.0, 7e-3), 0.0, 0.0),
    ((0.0, 0.0, 7e-3), math.pi / 2, 0.0),
    ((0.0, 0.0, 5.6e-3), 0.7, -0.4),
    ((0.0, 4.5e-3, 2e-3), math.pi / 2, 0.0),
    ((0.3e-3, -4e-3, 1.1e-3), 0.3, 1.1),
    ((0.0, 6e-3, 20e-3), 0.0, math.pi / 2),
    ((1e-8, 0.0, 6e-3), 0.0, 0.3),
    ((1e-7, 0.0, 6e-3), 0.0, 0.3),
]


@pytest.fixture(scope="module")
def cavity_model():
    cav = CoaxialCavity(radius=7e-3)
    mesh = cavity_mesh(cav, 1.5e-3, graded=False, rim=False)
    arrays = tuple(np.asarray(a) for a in (mesh.centre, mesh.normal, mesh.radius))
    return NLoopModel(mesh, cav), arrays


def test_mesh_has_a_stub_top_loop_on_the_axis(cavity_model):
    model, (centre, normal, _) = cavity_model
    top = model.mesh.surface("stub_top")
    on_axis = np.hypot(centre[top, 0], centre[top, 1]) == 0.0
    assert on_axis.sum() == 1
    np.testing.assert_array_equal(normal[top][on_axis][0], [0.0, 0.0, 1.0])
    assert model.mesh.size > 1000


@pytest.mark.parametrize("position,beta,gamma", CASES)
def test_nloop_energy_matches_paper_python_loop(cavity_model, position, beta, gamma):
    model, (centre, normal, radius) = cavity_model
    d = np.asarray(moment_direction(beta, gamma))
    u_ours = float(model.magnetic_energy(SPHERE, jnp.asarray(position), jnp.asarray(d)))
    u_paper = paper_loop.paper_loop_energy(centre, normal, radius, np.asarray(position), float(SPHERE.moment) * d)
    assert u_paper > 0.0
    assert abs(u_ours - u_paper) <= RTOL * abs(u_paper)


def test_total_energy_with_gravity_matches(cavity_model):
    model, (centre, normal, radius) = cavity_model
    pos = np.array([0.0, -4.5e-3, 2.5e-3])
    d = np.asarray(moment_direction(math.pi / 2, 0.0))
    u_ours = float(total_energy(model, SPHERE, jnp.asarray(pos), jnp.asarray(d)))
    u_paper = paper_loop.paper_loop_energy(centre, normal, radius, pos, float(SPHERE.moment) * d, mass=float(SPHERE.mass), g=G0)
    assert abs(u_ours - u_paper) <= RTOL * abs(u_paper)
    # gravity is a sizeable part of the total here, so the comparison covers the m g z term
    assert float(SPHERE.mass) * G0 * pos[2] > 0.1 * u_paper


def test_baseline_constants_and_moment_match_invdesign():
    assert paper_loop.MU0 == MU0 and paper_loop.G0 == G0
    assert paper_loop.sphere_moment(1.47, PAPER_SPHERE["radius"]) == pytest.approx(float(SPHERE.moment), rel=1e-15)


@pytest.mark.parametrize("normal", [(0.0, 0.0, 1.0), (0.0, 0.0, -1.0), (0.6, 0.8, 0.0), (0.2, -0.3, 0.9)])
def test_baseline_rotation_takes_the_normal_to_z(normal):
    rot = paper_loop.rotation_to_local(normal)
    n = np.asarray(normal) / np.linalg.norm(normal)
    np.testing.assert_allclose(rot @ n, [0.0, 0.0, 1.0], atol=1e-15)
    np.testing.assert_allclose(rot @ rot.T, np.eye(3), atol=1e-15)
    assert np.linalg.det(rot) == pytest.approx(1.0, abs=1e-15)


def test_baseline_loop_field_against_invdesign_and_on_axis_limit():
    a, current = 1e-3, 1.3
    rng = np.random.default_rng(3)
    pts = np.concatenate(
        [
            rng.uniform(-4e-3, 4e-3, size=(20, 3)),
            [[0.0, 0.0, 0.7e-3], [3e-9, 0.0, 0.7e-3], [3e-8, 4e-8, -0.7e-3], [0.0, 0.0, 0.0]],
        ]
    )
    ref = np.asarray(loop_field(jnp.asarray(pts), a, current))
    got = np.array([paper_loop.loop_field_local(p, a, current) for p in pts])
    scale = np.linalg.norm(ref, axis=-1)
    np.testing.assert_array_less(np.linalg.norm(got - ref, axis=-1), 1e-11 * scale)
    # centre of the loop: mu0 I / (2 a)
    assert got[-1][2] == pytest.approx(MU0 * current / (2.0 * a), rel=1e-15)
