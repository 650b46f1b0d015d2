"""Demagnetization curves against the independent Stoner-Wohlfarth reference."""

import math

import numpy as np
import pytest

from invdesign.micromag import Grid, Material, System
from invdesign.micromag._grains import GrainStructure, voronoi_grains
from invdesign.micromag._hysteresis import ND2FE14B, anisotropy_field_strength, demagnetization_curve, grain_system
from invdesign.micromag._stoner_wohlfarth import (
    sw_ensemble_2d_angles,
    sw_ensemble_2d_figures,
    sw_switching_field,
)


def test_single_grain_along_the_field_switches_at_the_anisotropy_field():
    # an 8 nm Nd2Fe14B cube (4^3 cells, exchange + demag): uniform magnetization has an
    # isotropic demag energy, so it reverses by coherent rotation at H_A (Stoner-Wohlfarth).
    # A field exactly along the axis exerts no torque; tilt it by 1e-4 rad, for which the
    # astroid gives h_sw = 0.9968, between the paper's field steps -0.99 and -1.00 H_A.
    g = Grid((4, 4, 4), (2e-9, 2e-9, 2e-9))
    mat = Material.uniform(g, Ms=ND2FE14B["Ms"], A=ND2FE14B["A"], K1=ND2FE14B["K1"], easy_axis=(0, 1, 0))
    system = System(g, mat)
    psi = 1e-4
    h_sw = float(sw_switching_field(psi))
    assert 0.99 < h_sw < 1.0
    curve = demagnetization_curve(system, field_axis=(math.sin(psi), math.cos(psi), 0.0), tol=1e-8)
    H_A = anisotropy_field_strength(ND2FE14B["K1"], ND2FE14B["Ms"])
    assert curve.attrs["H_A"] == pytest.approx(H_A)
    h = curve["H"].values / H_A
    M = curve["M"].values
    assert np.all(curve["converged"].values == 1)
    assert np.all(M[h > -0.985] > 0.99)  # still along +y at -0.99 H_A (flower state: M < 1)
    assert np.all(M[h < -0.995] < -0.99)  # reversed from -1.00 H_A on
    assert curve.attrs["Hc"] / H_A == pytest.approx(-h_sw, abs=0.01)


def _checkerboard(n_side, cells_per_grain):
    """Square grains with easy-axis angles evenly spread over [-pi/2, pi/2) (midpoint rule)."""
    k = n_side * n_side
    angles = -np.pi / 2 + (np.arange(k) + 0.5) * np.pi / k
    rng = np.random.default_rng(3)
    angles = rng.permutation(angles)
    gid = (np.arange(n_side * cells_per_grain) // cells_per_grain)
    grain_id = gid[:, None] * n_side + gid[None, :]
    psi = angles[grain_id]
    axis = np.stack([np.sin(psi), np.cos(psi), np.zeros_like(psi)], -1)
    return GrainStructure(
        grain_id=grain_id, angles=angles, easy_axis=axis, seeds=np.zeros((k, 2)),
        n_grains=k, max_misorientation=np.pi,
    )


def test_decoupled_grains_follow_the_stoner_wohlfarth_ensemble():
    # no exchange across boundaries and no magnetostatic interaction: each grain is an
    # independent Stoner-Wohlfarth particle, so the curve is the area-weighted SW average
    grains = voronoi_grains((24, 24), (2e-9, 2e-9), 12, math.pi, seed=5)
    system = grain_system(grains, intergrain_exchange=0.0, demag=False)
    curve = demagnetization_curve(system, step=0.02, tol=1e-7)
    H_A = curve.attrs["H_A"]
    h = curve["H"].values / H_A
    ids, area = np.unique(grains.grain_id, return_counts=True)
    ref = sw_ensemble_2d_angles(h, grains.angles[ids], weights=area)
    assert np.max(np.abs(curve["M"].values - ref)) < 1e-4


def test_weakly_coupled_isotropic_grains_approach_the_sw_figures():
    sw = sw_ensemble_2d_figures()
    assert sw["Mr"] == pytest.approx(2 / np.pi, abs=1e-9)
    assert sw["Hc"] == pytest.approx(0.508, abs=1e-3)
    grains = _checkerboard(8, 4)  # 64 grains of 8 x 8 nm
    # decoupled: the midpoint rule over 64 angles reproduces the ensemble figures
    curve = demagnetization_curve(grain_system(grains, intergrain_exchange=0.0, demag=False), tol=1e-7)
    H_A = curve.attrs["H_A"]
    assert curve.attrs["Mr"] == pytest.approx(sw["Mr"], abs=2e-3)
    assert -curve.attrs["Hc"] / H_A == pytest.approx(sw["Hc"], abs=1.5e-2)
    # weakly exchange-coupled (2% across boundaries) with magnetostatics: still close
    weak = demagnetization_curve(grain_system(grains, intergrain_exchange=0.02, demag=True), tol=1e-6)
    assert weak.attrs["Mr"] == pytest.approx(sw["Mr"], abs=0.04)
    assert -weak.attrs["Hc"] / H_A == pytest.approx(sw["Hc"], abs=0.06)


def test_demagnetization_curve_bad_input():
    grains = voronoi_grains((8, 8), (2e-9, 2e-9), 4, 0.3, seed=1)
    system = grain_system(grains, demag=False)
    with pytest.raises(ValueError, match="field_axis"):
        demagnetization_curve(system, field_axis=(0, 0, 0))
    with pytest.raises(ValueError, match="step"):
        demagnetization_curve(system, step=0.0)
    with pytest.raises(ValueError, match="h_max"):
        demagnetization_curve(system, h_max=-1.0)
    with pytest.raises(ValueError, match="intergrain_exchange"):
        grain_system(grains, intergrain_exchange=-1.0)
    with pytest.raises(ValueError, match="cell"):
        grain_system(grains, cell=(2e-9, 0.0, 1e-9))
