"""Landscapes and their minima: the shared Newton refinement against scipy's BFGS on the
same energy, batched against single refinements, wells sorted and clear of the walls."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize

import invdesign  # noqa: F401
from invdesign.cavity import (
    PAPER_SPHERE,
    CoaxialCavity,
    SphereMagnet,
    clearance,
    find_wells,
    grid_minima,
    landscape,
    moment_direction,
    nloop_model,
    refine_minima,
    refine_minimum,
    total_energy,
)

TILT = math.radians(20.0)
MAGNET = SphereMagnet(**PAPER_SPHERE, remanence=1.47)
AZIMUTHAL = moment_direction(math.pi / 2, 0.0)


@pytest.fixture(scope="module")
def model():
    # a short cavity and coarse elements: the N-loop model of about 500 elements
    return nloop_model(CoaxialCavity(radius=7e-3, height=20e-3, stub_radius=2e-3, stub_height=5e-3), spacing=1.5e-3)


@pytest.fixture(scope="module")
def grid(model):
    y = np.linspace(-6e-3, 6e-3, 25)
    z = np.linspace(0.6e-3, 14e-3, 28)
    return landscape(model, MAGNET, y, z, AZIMUTHAL, tilt=TILT)


def test_refined_minimum_matches_scipy(model, grid):
    mins = grid_minima(grid)
    assert len(mins) >= 1
    e0, y0, z0 = mins[0]
    w = refine_minimum(model, MAGNET, y0, z0, AZIMUTHAL, tilt=TILT)
    assert w.converged
    assert w.energy <= e0  # Newton went downhill from the grid point
    # an independent optimiser on the same energy (scaled to mm and nJ)
    def energy(q):
        return total_energy(model, MAGNET, jnp.array([0.0, q[0], q[1]]), AZIMUTHAL, tilt=TILT)

    f, g = jax.jit(energy), jax.jit(jax.grad(energy))
    res = scipy.optimize.minimize(lambda u: float(f(u * 1e-3)) * 1e9, np.array([y0, z0]) * 1e3,
                                  jac=lambda u: np.asarray(g(u * 1e-3)) * 1e-3 * 1e9, method="BFGS",
                                  options=dict(gtol=1e-9))
    np.testing.assert_allclose([w.y, w.z], res.x * 1e-3, atol=2e-8)
    assert w.energy == pytest.approx(res.fun * 1e-9, rel=1e-9)
    assert float(jnp.linalg.norm(g(jnp.array([w.y, w.z])))) < 1e-10
    assert float(clearance(model, MAGNET, jnp.array([0.0, w.y, w.z]))) > 0


def test_batched_refinement_equals_single_refinements_and_wells(model, grid):
    mins = grid_minima(grid)[:2]
    starts = [(y, z) for _, y, z in mins]
    batch = refine_minima(model, MAGNET, starts, AZIMUTHAL, tilt=TILT, responses=[1.0, 0.6][: len(starts)])
    for k, (y0, z0) in enumerate(starts):
        one = refine_minimum(model, MAGNET, y0, z0, AZIMUTHAL, tilt=TILT, response=[1.0, 0.6][k])
        np.testing.assert_allclose([batch["y"][k], batch["z"][k]], [one.y, one.z], rtol=0, atol=1e-12)
        assert bool(batch["converged"][k]) == one.converged
    wells = find_wells(model, MAGNET, AZIMUTHAL, grid.y.values, grid.z.values, tilt=TILT)
    assert len(wells) >= 1
    assert [w.energy for w in wells] == sorted(w.energy for w in wells)
    w0 = refine_minimum(model, MAGNET, mins[0][1], mins[0][2], AZIMUTHAL, tilt=TILT)
    assert wells[0].energy <= w0.energy + 1e-18
    with pytest.raises(ValueError, match="max_iter"):
        refine_minima(model, MAGNET, starts, AZIMUTHAL, max_iter=0)
