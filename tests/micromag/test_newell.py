"""Demagnetization tensor (invdesign.micromag._newell) against independent references.

- mpmath: Newell's f/g formulas written out again here and evaluated at 50 digits, so the
  cancellation that ruins them in float64 far away does not matter; checked from the self
  cell out to 1000+ cells for cubes, the thin-film cell 3.90625 x 3.90625 x 3 nm, the thick
  2D-grain cell 2 x 2 x 36000 nm and a few generic aspect ratios. "Relative" error is
  |N_est - N_ref| / max |N_ref entry| at that displacement (the 3x3 tensor's scale).
- Aharoni (1998): demagnetizing factors of a rectangular prism (mpmath), for the self terms
  and for the average over all cells of uniformly magnetized boxes (the sum over sources of
  the cell-pair tensor), computed through the FFT layout the solver uses.
- The point-dipole kernel far away, trace and symmetry identities.
"""

import math

import numpy as np
import pytest

import invdesign  # noqa: F401
from invdesign.micromag._newell import demag_tensor, newell_nxx, newell_nxy, pair_tensor
from invdesign.reference.newell import aharoni_dz, mp_pair_tensor

CUBE = (1.0, 1.0, 1.0)
FILM = (3.90625, 3.90625, 3.0)
THICK = (2.0, 2.0, 36000.0)


# ----------------------------------------------------------------------------------------
# helpers around the mpmath reference (invdesign.reference.newell)
# ----------------------------------------------------------------------------------------

def _worst_relative_error(cells_disp, cell, method="auto"):
    """Max over displacements (in cells) of |est - ref| / max|ref|; also where it happened."""
    d = np.asarray(cell, dtype=float)
    disp = np.asarray(cells_disp, dtype=float) * d
    est = pair_tensor(disp[:, 0], disp[:, 1], disp[:, 2], *cell, method=method)
    worst, where = 0.0, None
    for k, x in enumerate(disp):
        ref = mp_pair_tensor(x, cell)
        err = np.max(np.abs(est[:, k] - ref)) / np.max(np.abs(ref))
        if err > worst:
            worst, where = err, tuple(cells_disp[k])
    return worst, where


def _radii(kmax, n):
    return sorted({0, 1, 2, 3, 4, 5, 6, 8, 11, 16, 23} | {int(round(v)) for v in np.geomspace(30, kmax, n)})


# ----------------------------------------------------------------------------------------
# Aharoni (1998) prism demagnetizing factors (mpmath, invdesign.reference.newell)
# ----------------------------------------------------------------------------------------

def aharoni(lx, ly, lz):
    """(D_x, D_y, D_z) of the prism."""
    return np.array([aharoni_dz(ly, lz, lx), aharoni_dz(lz, lx, ly), aharoni_dz(lx, ly, lz)])


def test_aharoni_reference_itself():
    assert aharoni(1, 1, 1) == pytest.approx([1 / 3] * 3, abs=1e-15)
    d = aharoni(3.0, 5.0, 0.7)
    assert d.sum() == pytest.approx(1.0, abs=1e-14)
    # Long square rod: D_z -> 0, D_x = D_y -> 1/2; thin plate: D_z -> 1.
    assert aharoni(1, 1, 1e4)[0] == pytest.approx(0.5, abs=1e-4)
    assert aharoni(1e4, 1e4, 1)[2] == pytest.approx(1.0, abs=1e-3)


# ----------------------------------------------------------------------------------------
# Accuracy against mpmath, 0 .. 1000+ cells
# ----------------------------------------------------------------------------------------

def test_mpmath_cube_out_to_1500_cells():
    disp = []
    for k in _radii(1500, 18):
        disp += [(k, 0, 0), (k, k, 0), (k, k, k), (k, (3 * k) // 7, (6 * k) // 11), (0, (2 * k) // 9, k)]
    worst, where = _worst_relative_error(disp, CUBE)
    # The requirement is 1e-6; measured ~5e-13 (near-field Newell), ~2e-15 further out.
    assert worst < 1e-9, (worst, where)


def test_mpmath_thin_film_cell_out_to_1500_cells():
    disp = []
    for k in _radii(1500, 18):
        disp += [(k, 0, 0), (0, k, 0), (k, k, 0), (k, (3 * k) // 7, 0), (k, 1, 1)]
    disp += [(0, 0, 1), (0, 0, 3), (2, 1, 5), (0, 0, 40), (7, 3, 200)]
    worst, where = _worst_relative_error(disp, FILM)
    assert worst < 1e-9, (worst, where)


def test_mpmath_thick_cell_in_plane():
    disp = [(i, j, 0) for i in range(0, 7) for j in range(0, i + 1)]
    for k in _radii(1000, 14):
        disp += [(k, 0, 0), (k, k, 0), (k, (3 * k) // 7, 0), (k, 1, 0)]
    disp += [(160, 160, 0), (160, 37, 0), (159, 0, 0)]
    worst, where = _worst_relative_error(disp, THICK)
    assert worst < 1e-9, (worst, where)


@pytest.mark.parametrize("shape,cell", [((160, 160, 1), THICK), ((256, 256, 1), FILM), ((24, 20, 16), CUBE)])
def test_mpmath_grid_entries(shape, cell):
    """Entries of demag_tensor itself (wrap-around layout, negative displacements included)."""
    n = demag_tensor(shape, cell)
    size = [2 * s if s > 1 else 1 for s in shape]
    rng = np.random.default_rng(1)
    picks = [tuple(rng.integers(0, L) for L in size) for _ in range(25)]
    picks += [(0, 0, 0), (1, 0, 0), (size[0] - 1, 1, 0), (shape[0] - 1, shape[1] - 1, 0),
              (shape[0] + 1, size[1] - 3, 0)]
    worst = 0.0
    for idx in picks:
        k = [i if i < s else i - L for i, s, L in zip(idx, shape, size)]
        if any(i == s and L > 1 for i, s, L in zip(idx, shape, size)):
            continue  # the zero padding plane
        ref = mp_pair_tensor([kk * d for kk, d in zip(k, cell)], cell)
        got = n[(slice(None),) + tuple(int(i) for i in idx)]
        worst = max(worst, np.max(np.abs(got - ref)) / np.max(np.abs(ref)))
    assert worst < 1e-9


@pytest.mark.parametrize("cell", [(1.0, 2.0, 5.0), (1.0, 1.0, 10.0), (10.0, 10.0, 1.0), (0.3, 1.0, 0.05),
                                  (2.0, 2.0, 36000.0)])
def test_mpmath_generic_aspect_ratios(cell):
    disp = [(0, 0, 0), (1, 0, 0), (0, 0, 1), (1, 1, 1), (1, 2, 1), (2, 0, 1), (3, 1, 2), (0, 5, 3)]
    for k in (8, 13, 30, 90, 300, 1000):
        disp += [(k, 0, 0), (0, k, 0), (0, 0, k), (k, k // 3, k // 2), (1, 0, k)]
    worst, where = _worst_relative_error(disp, cell)
    assert worst < 1e-7, (worst, where)


def test_plain_float64_newell_fails_far_away():
    """Why the far field is needed: the float64 Newell stencil cancels (~(r/d)^6 for cubes)."""
    near = [(1, 0, 0), (2, 1, 0), (3, 2, 1), (5, 0, 0)]
    far = [(100, 100, 0), (300, 0, 0), (1000, 1000, 1000)]
    worst_near, _ = _worst_relative_error(near, CUBE, method="analytic")
    assert worst_near < 1e-10
    for d in far:
        bad, _ = _worst_relative_error([d], CUBE, method="analytic")
        good, _ = _worst_relative_error([d], CUBE)
        assert bad > 1e-6, d
        assert good < 1e-12, d
    # The thick cell too: its long axis makes the stencil's terms huge.
    bad, _ = _worst_relative_error([(300, 0, 0)], THICK, method="analytic")
    assert bad > 1e-6


# ----------------------------------------------------------------------------------------
# Analytic identities
# ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("cell", [CUBE, FILM, THICK, (1.0, 2.0, 5.0), (7.0, 0.2, 3.0)])
def test_self_term_is_the_prism_factor(cell):
    n = pair_tensor(0.0, 0.0, 0.0, *cell)
    assert n[:3].sum() == pytest.approx(1.0, abs=1e-14)
    np.testing.assert_allclose(n[:3], aharoni(*cell), rtol=0, atol=1e-13)
    assert np.all(n[3:] == 0.0)


def test_cube_self_term():
    assert newell_nxx(0.0, 0.0, 0.0, 2.5, 2.5, 2.5) == pytest.approx(1 / 3, abs=1e-15)
    n = pair_tensor(0.0, 0.0, 0.0, *CUBE)
    np.testing.assert_allclose(n, [1 / 3, 1 / 3, 1 / 3, 0, 0, 0], atol=1e-15)


@pytest.mark.parametrize("cell", [CUBE, FILM, THICK, (1.0, 2.0, 5.0)])
def test_trace_vanishes_off_the_self_cell(cell):
    rng = np.random.default_rng(3)
    k = np.concatenate([rng.integers(-6, 7, (200, 3)), rng.integers(-600, 601, (200, 3))])
    k = k[np.any(k != 0, axis=1)]
    x = k * np.asarray(cell)
    n = pair_tensor(x[:, 0], x[:, 1], x[:, 2], *cell)
    scale = np.max(np.abs(n), axis=0)
    assert np.max(np.abs(n[:3].sum(axis=0)) / scale) < 1e-9


@pytest.mark.parametrize("cell", [CUBE, FILM, THICK])
def test_symmetries(cell):
    rng = np.random.default_rng(5)
    k = np.concatenate([rng.integers(0, 8, (60, 3)), rng.integers(0, 400, (60, 3))]).astype(float)
    x = k * np.asarray(cell)
    n = pair_tensor(x[:, 0], x[:, 1], x[:, 2], *cell)
    for sx, sy, sz in [(-1, 1, 1), (1, -1, 1), (1, 1, -1), (-1, -1, -1)]:
        m = pair_tensor(sx * x[:, 0], sy * x[:, 1], sz * x[:, 2], *cell)
        np.testing.assert_array_equal(m[:3], n[:3])  # diagonal: even in every coordinate
        np.testing.assert_array_equal(m[3], sx * sy * n[3] + 0.0)
        np.testing.assert_array_equal(m[4], sx * sz * n[4] + 0.0)
        np.testing.assert_array_equal(m[5], sy * sz * n[5] + 0.0)
    # Off-diagonals vanish where one of their coordinates does.
    n0 = pair_tensor(0.0 * x[:, 0], x[:, 1], x[:, 2], *cell)
    assert np.all(n0[3] == 0) and np.all(n0[4] == 0)
    # Far-field sign: N_xy = -(V/4pi) 3xy/r^5 < 0 for x, y > 0 (away from the near field).
    far = np.all(k >= 20, axis=1) & (k[:, 2] >= 0)
    assert np.all(n[3, far] < 0)


def test_permutation_identities():
    rng = np.random.default_rng(7)
    d = (1.3, 0.7, 2.9)
    k = np.concatenate([rng.integers(-5, 6, (50, 3)), rng.integers(-300, 301, (50, 3))]).astype(float)
    x, y, z = (k * d).T
    n = pair_tensor(x, y, z, *d)
    dx, dy, dz = d
    np.testing.assert_allclose(newell_nxx(x, y, z, *d), n[0], rtol=0, atol=0)
    np.testing.assert_allclose(newell_nxx(y, x, z, dy, dx, dz), n[1], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(newell_nxx(z, y, x, dz, dy, dx), n[2], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(newell_nxy(x, y, z, *d), n[3], rtol=0, atol=0)
    np.testing.assert_allclose(newell_nxy(x, z, y, dx, dz, dy), n[4], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(newell_nxy(y, z, x, dy, dz, dx), n[5], rtol=1e-12, atol=1e-15)


def test_dimensionless_under_rescaling():
    """Cells in metres and in nanometres give the same tensor."""
    k = np.array([[0, 0, 0], [1, 0, 0], [3, 2, 0], [40, 7, 0], [700, 300, 0]], dtype=float)
    for cell in (FILM, THICK):
        x = k * np.asarray(cell)
        a = pair_tensor(x[:, 0], x[:, 1], x[:, 2], *cell)
        cm = tuple(c * 1e-9 for c in cell)
        b = pair_tensor(x[:, 0] * 1e-9, x[:, 1] * 1e-9, x[:, 2] * 1e-9, *cm)
        assert np.all(np.abs(b - a) <= 1e-12 * np.max(np.abs(a), axis=0))


def test_far_field_is_the_point_dipole():
    rng = np.random.default_rng(11)
    for cell in (CUBE, FILM, (1.0, 2.0, 5.0)):
        v = np.prod(cell)
        for r_cells in (1e3, 1e4, 1e5):
            u = rng.normal(size=(20, 3))
            u /= np.linalg.norm(u, axis=1, keepdims=True)
            x = u * r_cells * max(cell)
            n = pair_tensor(x[:, 0], x[:, 1], x[:, 2], *cell)
            r2 = np.sum(x * x, axis=1)
            r5 = r2**2.5
            dip = -(v / (4 * math.pi)) * np.stack([
                (3 * x[:, 0] ** 2 - r2) / r5, (3 * x[:, 1] ** 2 - r2) / r5, (3 * x[:, 2] ** 2 - r2) / r5,
                3 * x[:, 0] * x[:, 1] / r5, 3 * x[:, 0] * x[:, 2] / r5, 3 * x[:, 1] * x[:, 2] / r5])
            rel = np.max(np.abs(n - dip), axis=0) / np.max(np.abs(dip), axis=0)
            # The leading correction is ~ (d / r)^2 (cell size over distance).
            assert np.max(rel) < 2.0 / r_cells**2
            if r_cells == 1e5:
                assert np.max(rel) < 1e-9


# ----------------------------------------------------------------------------------------
# The grid tensor: layout, body averages, cache, validation (build times:
# studies/benchmarks/bench_newell.py)
# ----------------------------------------------------------------------------------------

def _body_average(shape, cell):
    """Average demagnetizing tensor diagonal of the box of shape cells, via the FFT layout."""
    n = demag_tensor(shape, cell)
    m = np.zeros(n.shape[1:])
    m[: shape[0], : shape[1], : shape[2]] = 1.0
    mk = np.fft.rfftn(m)
    means = []
    for c in range(6):
        h = np.fft.irfftn(np.fft.rfftn(n[c]) * mk, s=m.shape, axes=(0, 1, 2))
        means.append(h[: shape[0], : shape[1], : shape[2]].mean())
    # Off-diagonal components average to zero over a box.
    assert np.max(np.abs(means[3:])) < 1e-12
    return np.array(means[:3])


def test_cube_of_cubes_averages_to_one_third():
    for n in (1, 2, 5, 8):
        np.testing.assert_allclose(_body_average((n, n, n), CUBE), [1 / 3] * 3, atol=1e-13)


@pytest.mark.parametrize("shape,cell", [
    ((64, 64, 1), FILM),            # thin film: N_zz close to 1
    ((5, 3, 7), (1.0, 2.0, 0.5)),   # generic box
    ((40, 1, 3), (1.0, 3.0, 2.0)),
])
def test_box_average_is_aharoni(shape, cell):
    got = _body_average(shape, cell)
    want = aharoni(*(n * d for n, d in zip(shape, cell)))
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    if shape == (64, 64, 1):
        assert 0.95 < got[2] < 1.0


def test_column_of_thick_cells_is_two_dimensional():
    """32 x 32 cells of 2 x 2 x 36000 nm: in-plane factors -> 1/2 (2D limit)."""
    shape = (32, 32, 1)
    got = _body_average(shape, THICK)
    want = aharoni(64.0, 64.0, 36000.0)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    assert got[0] == pytest.approx(0.5, abs=2e-3) and got[1] == pytest.approx(0.5, abs=2e-3)
    assert got[2] < 3e-3


def test_layout_matches_pair_tensor():
    shape, cell = (5, 4, 3), (1.0, 2.0, 0.5)
    n = demag_tensor(shape, cell)
    assert n.shape == (6, 10, 8, 6) and n.dtype == np.float64
    for axis, size in enumerate(shape):
        idx = [slice(None)] * 4
        idx[axis + 1] = size
        assert np.all(n[tuple(idx)] == 0.0)
    rng = np.random.default_rng(0)
    for _ in range(60):
        i = [int(rng.integers(0, 2 * s)) for s in shape]
        if any(ii == s for ii, s in zip(i, shape)):
            continue
        k = [ii if ii < s else ii - 2 * s for ii, s in zip(i, shape)]
        want = pair_tensor(*(kk * d for kk, d in zip(k, cell)), *cell)
        np.testing.assert_allclose(n[:, i[0], i[1], i[2]], want, rtol=1e-14, atol=1e-18)
    # Singleton axes are not padded.
    assert demag_tensor((8, 8, 1), FILM).shape == (6, 16, 16, 1)
    assert demag_tensor((1, 1, 1), CUBE).shape == (6, 1, 1, 1)


def test_cache_and_read_only():
    a = demag_tensor((6, 5, 1), FILM)
    b = demag_tensor([6, 5, 1], list(FILM))
    assert a is b
    assert not a.flags.writeable
    with pytest.raises(ValueError):
        a[0, 0, 0, 0] = 1.0


@pytest.mark.parametrize("shape,cell,word", [
    ((0, 4, 4), CUBE, "shape"),
    ((4, 4), CUBE, "shape"),
    ((4.0, 4, 4), CUBE, "shape"),
    ((-1, 4, 4), CUBE, "shape"),
    ("abc", CUBE, "shape"),
    ((4, 4, 4), (1.0, 0.0, 1.0), "cell"),
    ((4, 4, 4), (1.0, -2.0, 1.0), "cell"),
    ((4, 4, 4), (1.0, float("nan"), 1.0), "cell"),
    ((4, 4, 4), (1.0, float("inf"), 1.0), "cell"),
    ((4, 4, 4), (1.0, 1.0), "cell"),
])
def test_demag_tensor_validation(shape, cell, word):
    with pytest.raises(ValueError, match=word):
        demag_tensor(shape, cell)


def test_pointwise_validation():
    with pytest.raises(ValueError, match="dz"):
        newell_nxx(1.0, 0.0, 0.0, 1.0, 1.0, 0.0)
    with pytest.raises(ValueError, match="x"):
        newell_nxy(float("nan"), 0.0, 0.0, 1.0, 1.0, 1.0)
    with pytest.raises(ValueError, match="method"):
        pair_tensor(1.0, 0.0, 0.0, 1.0, 1.0, 1.0, method="exact")
    assert np.shape(newell_nxx(np.zeros((2, 3)), 1.0, 0.0, 1.0, 1.0, 1.0)) == (2, 3)
    assert isinstance(newell_nxy(1.0, 1.0, 0.0, 1.0, 1.0, 1.0), float)
