"""Stoner-Wohlfarth reference: astroid, single-particle branches, 2D isotropic ensemble."""

import math

import numpy as np
import pytest

from invdesign.micromag._stoner_wohlfarth import (
    sw_branch,
    sw_ensemble_2d,
    sw_ensemble_2d_angles,
    sw_ensemble_2d_figures,
    sw_switching_field,
)

# Published figures of the 2D (in-plane) isotropic Stoner-Wohlfarth ensemble:
# Mr / Ms = 2 / pi exactly, Hc / H_A = 0.508 (quoted to three digits).
HC_PUBLISHED = 0.508


def _reduced(psi):
    """Easy-axis angle folded to [0, pi/2] (uniaxial and mirror symmetric)."""
    return np.abs(np.mod(np.asarray(psi) + np.pi / 2, np.pi) - np.pi / 2)


# ---------------------------------------------------------------- astroid


def test_astroid_special_values():
    assert sw_switching_field(0.0) == 1.0
    assert math.isclose(float(sw_switching_field(math.pi / 4)), 0.5, rel_tol=1e-14)
    assert math.isclose(float(sw_switching_field(math.pi / 2)), 1.0, rel_tol=1e-9)
    assert math.isclose(float(sw_switching_field(math.pi)), 1.0, rel_tol=1e-9)
    assert sw_switching_field(np.zeros((2, 3))).shape == (2, 3)


def test_astroid_matches_parametric_critical_curve():
    # e' = e'' = 0 gives the astroid h_par = -cos^3(t), h_perp = sin^3(t) (easy-axis frame)
    t = np.linspace(0.01, math.pi / 2 - 0.01, 200)
    hpar, hperp = np.cos(t) ** 3, np.sin(t) ** 3
    psi = np.arctan2(hperp, hpar)  # angle between field and easy axis
    np.testing.assert_allclose(sw_switching_field(psi), np.hypot(hpar, hperp), rtol=1e-13)
    np.testing.assert_allclose(sw_switching_field(-psi), sw_switching_field(psi + np.pi), rtol=1e-12)


# ---------------------------------------------------------------- single particle


def _energy(phi, h, psi):
    return 0.5 * np.sin(phi - psi) ** 2 - h * np.cos(phi)


def _grid_descent(e, i):
    """Walk downhill on a periodic grid from index i to the first discrete local minimum."""
    n = e.size
    if e[(i + 1) % n] < e[i]:
        d = 1
    elif e[(i - 1) % n] < e[i]:
        d = -1
    else:
        return i
    seq = e[(i + d * np.arange(n)) % n]
    j = int(np.argmax(np.diff(seq) >= 0))
    return (i + d * j) % n


@pytest.mark.parametrize("psi", [0.3, 1.0, -0.7, 2.2, math.pi / 4, 1.4835, math.pi / 2 - 0.05])
def test_branch_matches_brute_force_grid_descent(psi):
    nphi = 2**16
    phi = np.arange(nphi) * (2 * math.pi / nphi)
    h = np.linspace(1.5, -1.5, 151) + 0.00123
    m = sw_branch(h, psi)
    hsw = float(sw_switching_field(psi))
    i = 0  # saturated along +field
    for k, hk in enumerate(h):
        i = _grid_descent(_energy(phi, hk, psi), i)
        if abs(hk + hsw) < 0.01:
            continue  # the discrete minimum vanishes within ~grid^2 of the true switching field
        assert abs(m[k] - math.cos(phi[i])) < 2 * (2 * math.pi / nphi), (k, hk)


def test_unswitched_branch_matches_parametric_solution():
    # On the branch, e'(phi) = 0 gives h(phi) = -sin(2 (phi - psi)) / (2 sin phi), monotone for
    # phi in (0, psi + theta_sw) with tan(theta_sw) = tan(psi)^(1/3): m = cos(phi) there.
    for psi in (0.2, 0.7, math.pi / 4, 1.2, 1.5):
        theta_sw = math.atan(math.tan(psi) ** (1 / 3))
        phi = np.linspace(0.02, psi + theta_sw - 1e-3, 60)
        h = -np.sin(2 * (phi - psi)) / (2 * np.sin(phi))
        m = sw_branch(h, psi)
        np.testing.assert_allclose(m, np.cos(phi), rtol=0, atol=1e-12)
        # each field on its own (state from saturation) gives the same
        np.testing.assert_allclose(sw_branch(h[[10]], psi)[0], math.cos(phi[10]), atol=1e-12)
        # the end of the branch is the switching field
        assert math.isclose(h[-1], -float(sw_switching_field(psi)), abs_tol=1e-4)


def test_switching_happens_at_the_astroid_within_one_step():
    rng = np.random.default_rng(0)
    psi = rng.uniform(-2 * math.pi, 2 * math.pi, 200)
    psi = psi[(_reduced(psi) > 0.02) & (_reduced(psi) < 1.35)]
    h = np.arange(1.2, -1.2, -0.01) + 0.00123
    m = sw_branch(h, psi)
    hsw = sw_switching_field(psi)
    neg = h < 0
    # switched state at field h < 0 = unswitched state at -h rotated by pi (e(phi + pi; h)
    # = e(phi; -h)), and the unswitched state at a positive field is reached from saturation
    m_pos = np.stack([sw_branch([-x], psi)[0] for x in h[neg]])
    switched = np.abs(m[neg] + m_pos) < 1e-9
    expected = h[neg][:, None] < -hsw[None, :]
    np.testing.assert_array_equal(switched, expected)
    # and the jump is a real jump (unswitched and switched states differ)
    assert np.all(np.abs(m[neg] + m_pos)[~expected] > 1e-3)


def test_parallel_and_perpendicular_particles():
    h = np.linspace(1.5, -1.5, 31) + 0.001
    np.testing.assert_array_equal(sw_branch(h, 0.0), np.where(h >= -1, 1.0, -1.0))
    np.testing.assert_allclose(sw_branch(h, math.pi / 2), np.clip(h, -1, 1), atol=1e-12)
    np.testing.assert_array_equal(sw_branch(h, math.pi), sw_branch(h, 0.0))


def test_remanence_per_particle_is_abs_cos_psi():
    psi = np.linspace(-4, 4, 101)
    m = sw_branch([1.5, 0.0], psi)
    np.testing.assert_allclose(m[1], np.abs(np.cos(psi)), atol=1e-12)


def test_symmetries_give_the_same_projection_curve():
    h = np.linspace(2.0, -2.0, 201)
    psi = np.array([0.1, 0.5, 0.9, 1.3, 1.55])
    m = sw_branch(h, psi)
    for other in (-psi, psi + np.pi, np.pi - psi, psi - 3 * np.pi):
        np.testing.assert_allclose(sw_branch(h, other), m, atol=1e-12)


def test_starting_below_saturation_and_step_independence():
    psi = np.array([0.3, 1.1, -2.0])
    h = np.linspace(2.0, -2.0, 401)
    m = sw_branch(h, psi)
    np.testing.assert_allclose(sw_branch(h[150:], psi), m[150:], atol=1e-12)  # from h = 0.5
    np.testing.assert_allclose(sw_branch(h[::25], psi), m[::25], atol=1e-12)  # coarse steps
    assert sw_branch(h, psi.reshape(3, 1)).shape == (401, 3, 1)
    assert sw_branch(h, 0.3).shape == (401,)


def test_branch_monotonicity():
    # m never increases while the field decreases, except at the switching jump of particles
    # with easy axes far from the field (>~ 77 deg), whose projection jumps *up*
    h = np.linspace(1.5, -1.5, 301)
    psi = np.linspace(0, 1.3, 27)
    m = sw_branch(h, np.concatenate([psi, np.pi - psi]))
    assert np.all(np.diff(m, axis=0) <= 1e-12)
    m = sw_branch(h, 1.4835)  # 85 deg, checked against the brute force below
    up = np.flatnonzero(np.diff(m) > 1e-12)
    assert up.size == 1 and h[up[0] + 1] < -float(sw_switching_field(1.4835)) <= h[up[0]]


# ---------------------------------------------------------------- ensembles


def test_ensemble_figures_match_published_values():
    fig = sw_ensemble_2d_figures()
    # Mr = 2/pi is exact; the quadrature reproduces it to rounding
    assert math.isclose(fig["Mr"], 2 / math.pi, rel_tol=1e-12)
    # the published Hc is quoted to three digits (+-5e-4); allow 2e-3
    assert abs(fig["Hc"] - HC_PUBLISHED) < 2e-3
    # converged with respect to the quadrature
    coarse = sw_ensemble_2d_figures(n_angles=24)
    assert abs(coarse["Hc"] - fig["Hc"]) < 1e-9
    assert abs(float(sw_ensemble_2d(-fig["Hc"]))) < 1e-10


def test_ensemble_matches_brute_force_average_of_branches():
    # an independent route: continuation of many particles (midpoint rule over all psi)
    n = 4000
    psi = (np.arange(n) + 0.5) * (2 * math.pi / n)
    h = np.array([2.0, 1.0, 0.5, 0.0, -0.3, -0.5, -0.505, -0.5075, -0.51, -0.6, -0.8, -1.0, -1.2])
    brute = sw_ensemble_2d_angles(h, psi)
    np.testing.assert_allclose(sw_ensemble_2d(h), brute, atol=2e-3)
    # the zero of the brute-force curve (linear interpolation) agrees with Hc
    i = int(np.argmax(brute <= 0))
    h0 = h[i - 1] + (0 - brute[i - 1]) * (h[i] - h[i - 1]) / (brute[i] - brute[i - 1])
    assert abs(-h0 - sw_ensemble_2d_figures()["Hc"]) < 1e-3


def test_ensemble_quadrature_converges():
    h = np.concatenate([np.linspace(1.3, -1.3, 27), [1.0, -1.0, -0.5, -0.4999, -0.5001, 0.999]])
    ref = sw_ensemble_2d(h, n_angles=256)
    np.testing.assert_allclose(sw_ensemble_2d(h), ref, atol=1e-8)
    np.testing.assert_allclose(sw_ensemble_2d(h[:27], n_angles=24), ref[:27], atol=1e-6)
    assert sw_ensemble_2d(np.zeros((2, 2))).shape == (2, 2)
    np.testing.assert_allclose(sw_ensemble_2d(0.0), 2 / math.pi, rtol=1e-12)
    np.testing.assert_allclose(sw_ensemble_2d([-3.0, 3.0])[0], -sw_ensemble_2d([-3.0, 3.0])[1], rtol=1e-12)


def test_ensemble_angles_weights():
    h = np.linspace(1.2, -1.2, 25)
    psi = np.array([0.2, 1.0, 2.5])
    m = sw_branch(h, psi)
    np.testing.assert_allclose(sw_ensemble_2d_angles(h, psi), m.mean(axis=1), atol=1e-15)
    np.testing.assert_allclose(sw_ensemble_2d_angles(h, psi, weights=[0, 2, 0]), m[:, 1], atol=1e-15)
    np.testing.assert_allclose(
        sw_ensemble_2d_angles(h, psi, weights=[1, 2, 3]), m @ np.array([1, 2, 3]) / 6, atol=1e-15
    )
    np.testing.assert_allclose(sw_ensemble_2d_angles(h, psi.reshape(3, 1)), m.mean(axis=1), atol=1e-15)


def test_errors():
    with pytest.raises(ValueError, match="h"):
        sw_branch([0.0, 1.0], 0.3)
    with pytest.raises(ValueError, match="h"):
        sw_branch([1.0, np.nan], 0.3)
    with pytest.raises(ValueError, match="h"):
        sw_branch(np.ones((2, 2)), 0.3)
    with pytest.raises(ValueError, match="psi"):
        sw_branch([1.0, 0.0], np.inf)
    with pytest.raises(ValueError, match="psi"):
        sw_switching_field(np.nan)
    with pytest.raises(ValueError, match="weights"):
        sw_ensemble_2d_angles([1.0, 0.0], [0.1, 0.2], weights=[1.0])
    with pytest.raises(ValueError, match="weights"):
        sw_ensemble_2d_angles([1.0, 0.0], [0.1, 0.2], weights=[1.0, -1.0])
    with pytest.raises(ValueError, match="psi"):
        sw_ensemble_2d_angles([1.0, 0.0], [])
    with pytest.raises(ValueError, match="n_angles"):
        sw_ensemble_2d([0.0], n_angles=1)
    with pytest.raises(ValueError, match="h"):
        sw_ensemble_2d([np.inf])
    with pytest.raises(ValueError, match="n_angles"):
        sw_ensemble_2d_figures(n_angles=2.5)
