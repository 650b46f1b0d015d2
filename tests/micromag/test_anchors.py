"""Anchor points of demagnetization curves against curves with known anchors."""

import math

import numpy as np
import pytest

from invdesign.micromag._anchors import ANCHOR_NAMES, AnchorPoints, anchor_points

H_A = 7.3e6  # A/m (Nd2Fe14B-like)


def _piecewise(knots_h, knots_m, h):
    """Piecewise-linear curve through the knots (given with decreasing h)."""
    return np.interp(h, knots_h[::-1], knots_m[::-1])


def _crossing(h0, m0, h1, m1, level):
    return h0 + (level - m0) * (h1 - h0) / (m1 - m0)


def test_piecewise_linear_curve_exact():
    kh = np.array([1.0, 0.0, -0.2, -0.6, -1.0]) * H_A
    km = np.array([1.0, 0.9, 0.75, -0.5, -0.9])
    h = np.linspace(1.0, -1.0, 201) * H_A  # every knot is a sample
    a = anchor_points(h, _piecewise(kh, km, h), h_anisotropy=H_A)
    assert isinstance(a, AnchorPoints) and a.complete is True
    assert a.M1 == 1.0 and math.isclose(a.Mr, 0.9, rel_tol=1e-14)
    assert math.isclose(a.Hk90, _crossing(kh[1], km[1], kh[2], km[2], 0.81), rel_tol=1e-12)
    assert math.isclose(a.Hk80, _crossing(kh[2], km[2], kh[3], km[3], 0.72), rel_tol=1e-12)
    assert math.isclose(a.Hk70, _crossing(kh[2], km[2], kh[3], km[3], 0.63), rel_tol=1e-12)
    assert math.isclose(a.Hc, _crossing(kh[2], km[2], kh[3], km[3], 0.0), rel_tol=1e-12)
    assert math.isclose(a.Hk90, -0.12 * H_A, rel_tol=1e-12) and math.isclose(a.Hc, -0.44 * H_A, rel_tol=1e-12)
    assert a.Hk90 > a.Hk80 > a.Hk70 > a.Hc  # signed values on the field axis


def test_linear_between_irregular_samples():
    # m = a - b h (one straight segment): any sampling gives the exact anchors
    rng = np.random.default_rng(0)
    h = np.sort(rng.uniform(-1.0, 1.0, 37))[::-1] * H_A
    h = np.concatenate([[1.2 * H_A], h, [-1.1 * H_A]])
    a0, b0 = 0.7, 0.9 / H_A
    a = anchor_points(h, a0 + b0 * h, h_anisotropy=H_A)
    assert math.isclose(a.M1, a0 + b0 * H_A, rel_tol=1e-13)
    assert math.isclose(a.Mr, a0, rel_tol=1e-13)
    for p, hk in zip((0.9, 0.8, 0.7), (a.Hk90, a.Hk80, a.Hk70)):
        assert math.isclose(hk, (p - 1) * a0 / b0, rel_tol=1e-10)
    assert math.isclose(a.Hc, -a0 / b0, rel_tol=1e-12)


def test_tanh_curve_with_closed_form_inverse():
    # m(h) = tanh((h / H_A + c) / w): Mr = tanh(c / w), M(h) = L <=> h = H_A (w artanh(L) - c)
    c, w = 0.6, 0.25
    h = np.linspace(1.0, -1.5, 5001) * H_A
    m = np.tanh((h / H_A + c) / w)
    a = anchor_points(h, m, h_anisotropy=H_A)
    mr = math.tanh(c / w)
    assert math.isclose(a.Mr, mr, rel_tol=1e-14)  # h = 0 is a sample
    assert math.isclose(a.M1, math.tanh((1 + c) / w), rel_tol=1e-14)
    # linear interpolation error ~ dh^2 |m''| / 8 ~ 1e-6 in m -> well below 1e-5 in h / H_A
    for p, hk in zip((0.9, 0.8, 0.7), (a.Hk90, a.Hk80, a.Hk70)):
        assert math.isclose(hk / H_A, w * math.atanh(p * mr) - c, abs_tol=1e-5)
    assert math.isclose(a.Hc / H_A, -c, abs_tol=1e-9)
    # magnitudes as usually quoted
    assert math.isclose(-a.Hc / H_A, c, abs_tol=1e-9)
    assert a.complete


def test_noise_before_knee_first_crossing_is_taken():
    kh = np.array([1.0, 0.0, -0.04, -0.05, -0.06, -0.3, -0.5, -0.51, -0.52, -1.0]) * H_A
    km = np.array([1.0, 0.9, 0.9, 0.8 * 0.9, 0.9, 0.6, 0.1, -0.05, 0.1, -1.0])
    a = anchor_points(kh, km, h_anisotropy=H_A)
    assert math.isclose(a.Hk90, _crossing(kh[2], km[2], kh[3], km[3], 0.81), rel_tol=1e-12)  # in the dip
    assert math.isclose(a.Hk80, kh[3], rel_tol=1e-12)  # the dip touches 0.8 Mr exactly
    assert math.isclose(a.Hk70, _crossing(kh[4], km[4], kh[5], km[5], 0.63), rel_tol=1e-12)
    assert math.isclose(a.Hc, _crossing(kh[6], km[6], kh[7], km[7], 0.0), rel_tol=1e-12)  # first zero


def test_level_met_exactly_at_a_sample():
    h = np.array([1.0, 0.5, 0.0, -0.1, -0.2, -0.3, -0.4]) * H_A
    m = np.array([1.0, 1.0, 1.0, 0.9, 0.8, 0.7, 0.0])
    a = anchor_points(h, m, h_anisotropy=H_A)
    np.testing.assert_allclose(a.as_array() / [1, 1, H_A, H_A, H_A, H_A], [1, 1, -0.1, -0.2, -0.3, -0.4], rtol=1e-12)


def test_early_stopped_curve_gives_nan_and_incomplete():
    kh = np.array([1.0, 0.0, -0.2, -0.6, -1.0]) * H_A
    km = np.array([1.0, 0.9, 0.75, -0.5, -0.9])
    h = np.linspace(1.0, -0.205, 242) * H_A  # stops between Hk90 (-0.12) and Hk80 (-0.2096)
    a = anchor_points(h, _piecewise(kh, km, h), h_anisotropy=H_A)
    assert math.isclose(a.Hk90, -0.12 * H_A, rel_tol=1e-12)
    assert math.isnan(a.Hk80) and math.isnan(a.Hk70) and math.isnan(a.Hc)
    assert a.complete is False
    # stopping exactly at zero field: only M1 and Mr
    h = np.linspace(1.0, 0.0, 11) * H_A
    a = anchor_points(h, _piecewise(kh, km, h), h_anisotropy=H_A)
    assert math.isclose(a.Mr, 0.9, rel_tol=1e-14) and np.all(np.isnan(a.as_array()[2:])) and not a.complete


def test_never_switching_curve():
    h = np.linspace(1.0, -1.0, 21) * H_A
    m = 0.95 + 0.05 * h / H_A  # hard magnet: stays near saturation to -H_A
    a = anchor_points(h, m, h_anisotropy=H_A)
    assert math.isclose(a.Mr, 0.95)
    assert np.all(np.isnan([a.Hk90, a.Hk80, a.Hk70, a.Hc])) and not a.complete


def test_non_positive_remanence_has_no_knees():
    h = np.linspace(1.0, -1.0, 21) * H_A
    a = anchor_points(h, h / H_A, h_anisotropy=H_A)  # Mr = 0, crosses zero at h = 0
    assert a.Mr == 0.0 and a.Hc == 0.0
    assert np.all(np.isnan([a.Hk90, a.Hk80, a.Hk70]))
    a = anchor_points(h, h / H_A - 0.5, h_anisotropy=H_A)  # already negative at remanence
    assert math.isclose(a.Hc, 0.5 * H_A, rel_tol=1e-12)  # the first zero, at positive field
    a = anchor_points(h, np.full(21, -0.2), h_anisotropy=H_A)  # starts below zero: not located
    assert math.isnan(a.Hc)


def test_units_of_m_and_field_start_above_h_a():
    kh = np.array([1.5, 1.0, 0.0, -0.2, -0.6, -1.0]) * H_A
    km = np.array([1.0, 0.97, 0.9, 0.75, -0.5, -0.9])
    h = np.linspace(1.5, -1.0, 251) * H_A
    m = _piecewise(kh, km, h)
    a = anchor_points(h, m, h_anisotropy=H_A)
    assert math.isclose(a.M1, 0.97, rel_tol=1e-12)
    ms = 1.28e6  # M in A/m instead of M/Ms: magnetizations scale, fields do not change
    b = anchor_points(h, ms * m, h_anisotropy=H_A)
    np.testing.assert_allclose(b.as_array()[:2], ms * a.as_array()[:2], rtol=1e-13)
    np.testing.assert_allclose(b.as_array()[2:], a.as_array()[2:], rtol=1e-12)


def test_rounding_at_h_anisotropy_tolerated():
    h = np.linspace(1.0, -1.0, 21) * H_A
    h[0] = H_A * (1 - 1e-12)
    m = np.tanh(h / H_A + 0.5)
    a = anchor_points(h, m, h_anisotropy=H_A)
    assert a.M1 == m[0]


def test_result_fields():
    h = np.linspace(1.0, -1.0, 21) * H_A
    a = anchor_points(h, np.tanh(2 * h / H_A + 0.5), h_anisotropy=H_A)
    assert tuple(a._fields[:6]) == ANCHOR_NAMES == ("M1", "Mr", "Hk90", "Hk80", "Hk70", "Hc")
    np.testing.assert_array_equal(a.as_array(), [getattr(a, k) for k in ANCHOR_NAMES])
    assert all(isinstance(getattr(a, k), float) for k in ANCHOR_NAMES)
    assert a._asdict()["complete"] is True


def test_stoner_wohlfarth_ensemble_curve():
    from invdesign.micromag._stoner_wohlfarth import sw_ensemble_2d, sw_ensemble_2d_figures

    h = np.linspace(1.0, -1.0, 401) * H_A  # the paper's protocol with 0.005 H_A steps
    a = anchor_points(h, sw_ensemble_2d(h / H_A), h_anisotropy=H_A)
    fig = sw_ensemble_2d_figures()
    assert math.isclose(a.Mr, fig["Mr"], rel_tol=1e-12)
    # The ensemble curve is not smooth at Hc: switching sets in at h = -1/2 and the switched
    # fraction grows like sqrt(-h - 1/2), so linear interpolation over 0.005 H_A steps is off
    # by ~2e-4 H_A there.
    assert math.isclose(-a.Hc / H_A, fig["Hc"], abs_tol=5e-4)
    assert a.complete and a.Hk90 > a.Hk80 > a.Hk70 > a.Hc


@pytest.mark.parametrize(
    "h,m,h_a,match",
    [
        (np.array([1.0, 0.0, -1.0]), np.array([1.0, 0.5]), 1.0, "m must have the same length"),
        (np.array([1.0, np.nan, -1.0]), np.array([1.0, 0.5, 0.0]), 1.0, "h must be finite"),
        (np.array([1.0, 0.0, -1.0]), np.array([1.0, np.inf, 0.0]), 1.0, "m must be finite"),
        (np.array([1.0, 0.0, 0.0, -1.0]), np.array([1.0, 0.5, 0.5, 0.0]), 1.0, "h must be strictly decreasing"),
        (np.array([-1.0, 0.0, 1.0]), np.array([1.0, 0.5, 0.0]), 1.0, "h must be strictly decreasing"),
        (np.array([1.0, 0.5, 0.1]), np.array([1.0, 0.9, 0.8]), 1.0, "h must reach zero"),
        (np.array([0.9, 0.0, -1.0]), np.array([1.0, 0.5, 0.0]), 1.0, "h must start at or above h_anisotropy"),
        (np.array([1.0, 0.0, -1.0]), np.array([1.0, 0.5, 0.0]), 0.0, "h_anisotropy"),
        (np.array([1.0, 0.0, -1.0]), np.array([1.0, 0.5, 0.0]), np.nan, "h_anisotropy"),
        (np.array([1.0, 0.0, -1.0]), np.array([1.0, 0.5, 0.0]), "x", "h_anisotropy"),
        (np.ones((3, 2)), np.ones((3, 2)), 1.0, "h must be a 1-D"),
        (np.array([0.0]), np.array([1.0]), 1.0, "h must be a 1-D array with at least 2"),
        (np.array([1.0, 0.0, -1.0]), np.ones((3, 1)), 1.0, "m must be a 1-D"),
    ],
)
def test_errors(h, m, h_a, match):
    with pytest.raises(ValueError, match=match):
        anchor_points(h, m, h_anisotropy=h_a)
