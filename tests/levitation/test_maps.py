"""Stability maps (paper Figs. 2-3) against on-axis analytic values."""

import numpy as np
import pytest

import invdesign  # noqa: F401
from invdesign.levitation import (
    anti_helmholtz_sphere,
    anti_helmholtz_trap,
    classify_stability,
    stability_map,
)
from invdesign.reference.levitation import G0, MU0, axis_derivatives, sphere_volume

AH_AXIS = [(1e-6, 0.03, -0.5e-6), (1e-6, -0.03, 0.5e-6)]


@pytest.fixture(scope="module")
def ah_map():
    x = np.arange(-12, 13, 2) * 0.1e-6  # contains x = 0 and the wire crossings x = +-1 um
    z = np.arange(-10, 11) * 0.1e-6  # contains the loop planes z = +-0.5 um
    return stability_map(anti_helmholtz_trap(), anti_helmholtz_sphere(), x, z, mask_radius=0.05e-6)


def test_axis_column_matches_analytic_on_axis_field(ah_map):
    col = ah_map.sel(x=0.0)
    coef = sphere_volume(0.5e-6) / (2 * MU0)
    weight = 4.487e-15 * G0
    for z in col.z.values:
        b, b1, b2 = (float(t) for t in axis_derivatives(z, AH_AXIS))
        h_r, h_z = b1**2 / 2 - b * b2, 2 * (b1**2 + b * b2)
        p = col.sel(z=z)
        scale = 3 * b1**2 + abs(b * b2) + 1.0
        assert float(p.lap_b2) == pytest.approx(3 * b1**2, rel=1e-9, abs=1e-12 * scale)
        assert float(p.lap_b2_xz) == pytest.approx(2.5 * b1**2 + b * b2, rel=1e-9, abs=1e-12 * scale)
        assert float(p.min_stiffness) == pytest.approx(coef * min(h_r, h_z), rel=1e-9, abs=1e-12 * coef * scale)
        f_z = -2 * coef * b * b1
        assert float(p.force_z) == pytest.approx(f_z, rel=1e-9, abs=1e-30)
        assert float(p.force_x) == pytest.approx(0.0, abs=1e-12 * abs(f_z) + 1e-30)
        holds = f_z >= weight
        expected = {"laplacian": b1**2 > 0, "planar": 2.5 * b1**2 + b * b2 > 0, "hessian": min(h_r, h_z) > 0}
        for crit, stable in expected.items():
            cls = float(classify_stability(ah_map, crit).sel(x=0.0, z=z))
            assert cls == (0.0 if not stable else (2.0 if holds else 1.0)), (crit, z)
    # the paper's anti-Helmholtz statement: unstable (blue) on the axis at the loop planes
    assert float(classify_stability(ah_map, "planar").sel(x=0.0, z=0.5e-6)) == 0.0
    assert float(classify_stability(ah_map, "hessian").sel(x=0.0, z=-0.5e-6)) == 0.0


def test_masked_points_are_nan_and_attrs(ah_map):
    wire = ah_map.sel(x=1.0e-6, z=0.5e-6)
    for name in ah_map.data_vars:
        assert np.isnan(float(wire[name])), name
        assert ah_map[name].attrs["units"] and ah_map[name].attrs["long_name"], name
    assert ah_map.attrs["n_masked"] == 4  # the four wire crossings
    assert ah_map.attrs["weight_N"] == pytest.approx(4.487e-15 * G0, rel=1e-15)
    assert ah_map.stability_class.attrs["criterion"] == "laplacian"
    # default mask: where the sphere (R = 0.5 um) would overlap a wire
    dflt = stability_map(anti_helmholtz_trap(), anti_helmholtz_sphere(), ah_map.x.values, ah_map.z.values)
    d = np.hypot(np.abs(ah_map.x.values)[None, :] - 1e-6, np.abs(ah_map.z.values)[:, None] - 0.5e-6)
    np.testing.assert_array_equal(np.isnan(dflt.lap_b2.values), d < 0.5e-6)


def test_stability_map_bad_input():
    with pytest.raises(ValueError, match="criterion"):
        stability_map(anti_helmholtz_trap(), anti_helmholtz_sphere(), [0.0], [0.0], criterion="eq11")
    with pytest.raises(ValueError, match="x must be finite"):
        stability_map(anti_helmholtz_trap(), anti_helmholtz_sphere(), [np.nan], [0.0])
