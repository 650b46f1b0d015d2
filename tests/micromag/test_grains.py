"""Voronoi grain structures: geometry, statistics, reproducibility, boundary faces."""

import math

import numpy as np
import pytest
from scipy import stats

from invdesign.micromag._grains import (
    GrainStructure,
    grain_boundary_faces,
    sample_grain_parameters,
    voronoi_grains,
)

CELL = (2e-9, 3e-9)  # deliberately anisotropic cells


def _centres(shape, cell):
    nx, ny = shape
    x = (np.arange(nx) + 0.5) * cell[0]
    y = (np.arange(ny) + 0.5) * cell[1]
    return np.stack(np.meshgrid(x, y, indexing="ij"), axis=-1)


def test_reproducible_with_seed_and_generator():
    a = voronoi_grains((30, 20), CELL, 12, 1.0, seed=7)
    b = voronoi_grains((30, 20), CELL, 12, 1.0, seed=7)
    c = voronoi_grains((30, 20), CELL, 12, 1.0, seed=np.random.default_rng(7))
    for x in (b, c):
        np.testing.assert_array_equal(a.grain_id, x.grain_id)
        np.testing.assert_array_equal(a.angles, x.angles)
        np.testing.assert_array_equal(a.seeds, x.seeds)
        np.testing.assert_array_equal(a.easy_axis, x.easy_axis)
    d = voronoi_grains((30, 20), CELL, 12, 1.0, seed=8)
    assert not np.array_equal(a.seeds, d.seeds)
    assert not np.array_equal(a.angles, d.angles)
    assert not np.array_equal(a.grain_id, d.grain_id)


def test_generator_is_advanced():
    rng = np.random.default_rng(3)
    a = voronoi_grains((10, 10), CELL, 5, 1.0, seed=rng)
    b = voronoi_grains((10, 10), CELL, 5, 1.0, seed=rng)
    assert not np.array_equal(a.seeds, b.seeds)


def test_result_types_and_shapes():
    g = voronoi_grains((25, 17), CELL, 9, -0.7, seed=0)
    assert isinstance(g, GrainStructure)
    assert g.grain_id.shape == (25, 17) and np.issubdtype(g.grain_id.dtype, np.integer)
    assert g.angles.shape == (9,) and g.seeds.shape == (9, 2)
    assert g.easy_axis.shape == (25, 17, 3) and g.easy_axis.dtype == np.float64
    assert g.n_grains == 9 and g.max_misorientation == -0.7 and g.shape == (25, 17)
    assert np.all(g.seeds >= 0) and np.all(g.seeds <= [25 * CELL[0], 17 * CELL[1]])
    with pytest.raises(ValueError):  # read-only arrays
        g.grain_id[0, 0] = 1
    with pytest.raises(AttributeError):  # frozen
        g.n_grains = 3


def test_every_cell_belongs_to_its_nearest_seed():
    shape = (23, 19)
    for seed in range(5):
        g = voronoi_grains(shape, CELL, 15, 1.0, seed=seed)
        c = _centres(shape, CELL)
        d = np.linalg.norm(c[:, :, None, :] - g.seeds[None, None, :, :], axis=-1)  # brute force
        own = np.take_along_axis(d, g.grain_id[..., None], axis=-1)[..., 0]
        np.testing.assert_allclose(own, d.min(axis=-1), rtol=1e-14, atol=0)
        # generic seeds: the brute-force argmin is the same grain
        np.testing.assert_array_equal(g.grain_id, d.argmin(axis=-1))


def test_easy_axes_match_grain_angles_unit_and_in_plane():
    g = voronoi_grains((40, 30), CELL, 20, math.pi, seed=11)
    psi = g.angles[g.grain_id]
    np.testing.assert_array_equal(g.easy_axis[..., 0], np.sin(psi))
    np.testing.assert_array_equal(g.easy_axis[..., 1], np.cos(psi))
    np.testing.assert_array_equal(g.easy_axis[..., 2], 0.0)
    np.testing.assert_allclose(np.linalg.norm(g.easy_axis, axis=-1), 1.0, rtol=0, atol=1e-15)


def test_zero_misorientation_gives_exact_plus_y():
    g = voronoi_grains((20, 20), CELL, 10, 0.0, seed=2)
    assert np.all(g.angles == 0.0)
    assert np.all(g.easy_axis == np.array([0.0, 1.0, 0.0]))


@pytest.mark.parametrize("theta", [0.3, -1.2, math.pi])
def test_angles_uniform_in_symmetric_interval(theta):
    g = voronoi_grains((100, 100), (1e-9, 1e-9), 4000, theta, seed=5)
    t = abs(theta)
    assert np.all(np.abs(g.angles) <= t)
    p = stats.kstest(g.angles, "uniform", args=(-t, 2 * t)).pvalue
    assert p > 1e-3
    # and the cells of occupied grains carry exactly those angles
    assert np.all(np.abs(np.arcsin(np.clip(g.easy_axis[..., 0], -1, 1))) <= t + 1e-12)


def test_large_grains_all_occupied_and_mean_area():
    shape, cell = (120, 80), (2e-9, 2e-9)
    total = shape[0] * shape[1] * cell[0] * cell[1]
    for seed in range(4):
        g = voronoi_grains(shape, cell, 24, 1.0, seed=seed)
        ids = np.unique(g.grain_id)
        assert ids.size == g.n_grains == g.n_occupied
        np.testing.assert_array_equal(ids, np.arange(24))
        areas = np.bincount(g.grain_id.ravel()) * cell[0] * cell[1]
        assert math.isclose(areas.mean(), total / 24, rel_tol=1e-12)
        assert areas.min() > 0


def test_grain_size_statistics():
    # The grain containing a fixed point is size-biased: for 2D Poisson-Voronoi cells its
    # mean area is E[A^2] / E[A] = (1 + CV^2) total / n with CV^2 = 0.280, i.e. 1.28 total / n.
    shape, n = (60, 60), 30
    areas = []
    for seed in range(200):
        g = voronoi_grains(shape, (1e-9, 1e-9), n, 0.5, seed=seed)
        areas.append(np.count_nonzero(g.grain_id == g.grain_id[30, 30]))
    ratio = np.mean(areas) / (shape[0] * shape[1] / n)
    assert 1.15 < ratio < 1.42, ratio  # ~3 sigma for 200 structures (measured: 1.28)


def test_empty_grains_contiguous_ids():
    # more grains than a tiny grid can resolve: some regions contain no cell centre
    g = voronoi_grains((8, 8), (1e-9, 1e-9), 60, 1.0, seed=4)
    k = g.n_occupied
    assert k < 60
    np.testing.assert_array_equal(np.unique(g.grain_id), np.arange(k))
    # the empty grains' seeds are the trailing ones and are never the nearest seed
    c = _centres((8, 8), (1e-9, 1e-9))
    d = np.linalg.norm(c[:, :, None, :] - g.seeds[None, None, :, :], axis=-1)
    assert d.argmin(axis=-1).max() < k
    np.testing.assert_array_equal(g.grain_id, d.argmin(axis=-1))
    assert g.angles.shape == (60,) and g.seeds.shape == (60, 2)


def test_one_grain_and_one_grain_per_cell():
    g = voronoi_grains((5, 4), CELL, 1, 1.0, seed=0)
    assert np.all(g.grain_id == 0)
    g = voronoi_grains((3, 3), CELL, 9, 1.0, seed=0)
    assert g.n_grains == 9


def _brute_faces(ids):
    nx, ny = ids.shape
    bx = np.zeros((nx - 1, ny), bool)
    by = np.zeros((nx, ny - 1), bool)
    for i in range(nx):
        for j in range(ny):
            if i + 1 < nx:
                bx[i, j] = ids[i, j] != ids[i + 1, j]
            if j + 1 < ny:
                by[i, j] = ids[i, j] != ids[i, j + 1]
    return bx, by


def test_boundary_faces_match_brute_force():
    g = voronoi_grains((17, 13), CELL, 10, 1.0, seed=9)
    bx, by = grain_boundary_faces(g.grain_id)
    rx, ry = _brute_faces(g.grain_id)
    assert bx.shape == (16, 13) and by.shape == (17, 12)
    assert bx.dtype == bool and by.dtype == bool
    np.testing.assert_array_equal(bx, rx)
    np.testing.assert_array_equal(by, ry)
    assert bx.any() and by.any()
    # single grain: no boundaries; 1 x n grids: empty x-faces
    bx, by = grain_boundary_faces(np.zeros((4, 5), int))
    assert not bx.any() and not by.any()
    bx, by = grain_boundary_faces(np.array([[0, 1, 1]]))
    assert bx.shape == (0, 3) and by.tolist() == [[True, False]]


def test_sample_grain_parameters():
    ng, theta = sample_grain_parameters(20000, seed=1)
    assert ng.dtype == np.int64 and ng.shape == theta.shape == (20000,)
    assert ng.min() == 16 and ng.max() == 256  # both ends included
    assert np.all(np.abs(theta) <= math.pi)
    assert stats.kstest(theta, "uniform", args=(-math.pi, 2 * math.pi)).pvalue > 1e-3
    counts = np.bincount(ng - 16, minlength=241)
    assert stats.chisquare(counts).pvalue > 1e-3
    a = sample_grain_parameters(5, seed=3, n_grains_range=(2, 4), theta_range=(0.0, 0.1))
    b = sample_grain_parameters(5, seed=3, n_grains_range=(2, 4), theta_range=(0.0, 0.1))
    np.testing.assert_array_equal(a.n_grains, b.n_grains)
    np.testing.assert_array_equal(a.max_misorientation, b.max_misorientation)
    assert np.all((a.n_grains >= 2) & (a.n_grains <= 4))
    assert np.all((a.max_misorientation >= 0) & (a.max_misorientation <= 0.1))
    assert sample_grain_parameters(0, seed=0).n_grains.shape == (0,)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(shape=(0, 5)), "shape"),
        (dict(shape=(4.0, 5)), "shape"),
        (dict(shape=(4, 5, 6)), "shape"),
        (dict(shape=5), "shape"),
        (dict(cell=(1e-9, 0.0)), "cell"),
        (dict(cell=(1e-9, np.inf)), "cell"),
        (dict(cell=(1e-9,)), "cell"),
        (dict(n_grains=0), "n_grains"),
        (dict(n_grains=21), "n_grains"),
        (dict(n_grains=2.0), "n_grains"),
        (dict(n_grains=True), "n_grains"),
        (dict(max_misorientation=3.2), "max_misorientation"),
        (dict(max_misorientation=np.nan), "max_misorientation"),
        (dict(max_misorientation=[0.1, 0.2]), "max_misorientation"),
        (dict(max_misorientation="a"), "max_misorientation"),
    ],
)
def test_voronoi_grains_errors(kwargs, match):
    args = dict(shape=(4, 5), cell=(1e-9, 1e-9), n_grains=3, max_misorientation=0.5)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        voronoi_grains(args["shape"], args["cell"], args["n_grains"], args["max_misorientation"], seed=0)


def test_other_errors():
    with pytest.raises(ValueError, match="n"):
        sample_grain_parameters(-1, seed=0)
    with pytest.raises(ValueError, match="n_grains_range"):
        sample_grain_parameters(3, seed=0, n_grains_range=(0, 5))
    with pytest.raises(ValueError, match="n_grains_range"):
        sample_grain_parameters(3, seed=0, n_grains_range=(9, 5))
    with pytest.raises(ValueError, match="theta_range"):
        sample_grain_parameters(3, seed=0, theta_range=(-4.0, 0.0))
    with pytest.raises(ValueError, match="theta_range"):
        sample_grain_parameters(3, seed=0, theta_range=(1.0, 0.0))
    with pytest.raises(ValueError, match="grain_id"):
        grain_boundary_faces(np.zeros((3, 3, 1), int))
    with pytest.raises(ValueError, match="grain_id"):
        grain_boundary_faces(np.zeros((3, 3)))
