"""Batched demagnetization curves against the one-at-a-time path and the Stoner-Wohlfarth reference."""

import math

import numpy as np
import pytest

from invdesign.micromag import demagnetization_curve, demagnetization_curves, grain_system, voronoi_grains
from invdesign.micromag._stoner_wohlfarth import sw_ensemble_2d_angles

# small structures: 16 x 16 cells of 2 nm, coarse field steps (the batching is what is checked)
GRID = (16, 16)
STEP = 0.05


@pytest.fixture(scope="module")
def systems():
    params = [(3, 0.4, 1), (6, math.pi, 2), (12, 2.0, 3)]
    return [grain_system(voronoi_grains(GRID, (2e-9, 2e-9), n, th, seed=s)) for n, th, s in params]


@pytest.fixture(scope="module")
def batched64(systems):
    return demagnetization_curves(systems, step=STEP, tol=1e-6, stop_below=-0.5)


def _scale(H_A):
    return np.array([1, 1, H_A, H_A, H_A, H_A])


def test_batched_anchors_equal_the_one_at_a_time_curves(systems, batched64):
    ds = batched64
    assert ds.sizes["sample"] == 3
    assert np.all(ds["converged"].values == 1) and np.all(ds["recomputed"].values == 0)
    sc = _scale(ds.attrs["H_A"])
    for k, system in enumerate(systems):
        ref = demagnetization_curve(system, step=STEP, tol=1e-6, stop_below=-0.5)
        n = ref.sizes["field"]
        # the structure stopped at the same field, with the same curve
        assert np.all(np.isfinite(ds["M"].values[k, :n])) and np.all(np.isnan(ds["M"].values[k, n:]))
        assert np.max(np.abs(ds["M"].values[k, :n] - ref["M"].values)) < 1e-5
        want = np.array([ref.attrs[a] for a in ("M1", "Mr", "Hk90", "Hk80", "Hk70", "Hc")])
        assert np.max(np.abs((ds["anchors"].values[k] - want) / sc)) < 1e-5


def test_float32_anchors_within_1e_3_of_float64(systems, batched64):
    ds32 = demagnetization_curves(systems, step=STEP, tol=1e-5, stop_below=-0.5, dtype="float32")
    assert ds32.attrs["dtype"] == "float32"
    sc = _scale(batched64.attrs["H_A"])
    assert np.all(ds32["complete"].values == 1)
    assert np.max(np.abs((ds32["anchors"].values - batched64["anchors"].values) / sc)) < 1e-3


def test_non_converged_structures_are_recomputed_one_at_a_time(systems):
    # an iteration cap of 3 cannot converge: every curve falls back to demagnetization_curve
    ds = demagnetization_curves(systems[:1], step=0.25, tol=1e-6, max_iter=3)
    assert ds["recomputed"].values.tolist() == [1]
    ref = demagnetization_curve(systems[0], step=0.25, tol=1e-6, max_iter=3)
    assert np.allclose(ds["M"].values[0], ref["M"].values, atol=0, rtol=0, equal_nan=True)


def test_decoupled_batch_follows_the_stoner_wohlfarth_ensemble():
    # no exchange across boundaries, no magnetostatics: every grain is an SW particle
    gs = [voronoi_grains(GRID, (2e-9, 2e-9), n, math.pi, seed=s) for n, s in ((5, 7), (9, 8))]
    systems = [grain_system(g, intergrain_exchange=0.0, demag=False) for g in gs]
    ds = demagnetization_curves(systems, step=0.02, tol=1e-7)
    h = ds["H"].values / ds.attrs["H_A"]
    for k, g in enumerate(gs):
        ids, area = np.unique(g.grain_id, return_counts=True)
        ref = sw_ensemble_2d_angles(h, g.angles[ids], weights=area)
        assert np.max(np.abs(ds["M"].values[k] - ref)) < 1e-4


def test_bad_input(systems):
    with pytest.raises(ValueError, match="systems"):
        demagnetization_curves([])
    with pytest.raises(TypeError, match=r"systems\[1\]"):
        demagnetization_curves([systems[0], "x"])
    other = grain_system(voronoi_grains((8, 8), (2e-9, 2e-9), 3, 0.3, seed=1))
    with pytest.raises(ValueError, match=r"systems\[1\].*grid"):
        demagnetization_curves([systems[0], other])
    with pytest.raises(ValueError, match="dtype"):
        demagnetization_curves(systems, dtype="float16")
    with pytest.raises(ValueError, match="step"):
        demagnetization_curves(systems, step=0)


@pytest.mark.parametrize("lanes", [1, 2])
def test_fewer_lanes_than_structures_give_the_same_curves(systems, batched64, lanes):
    # lanes that finish a curve take the next structure: the answers do not depend on it
    ds = demagnetization_curves(systems, step=STEP, tol=1e-6, stop_below=-0.5, lanes=lanes)
    assert ds.attrs["lanes"] == lanes
    np.testing.assert_allclose(ds["M"].values, batched64["M"].values, rtol=0, atol=1e-9)
    assert ds["iterations"].values.tolist() == batched64["iterations"].values.tolist()
