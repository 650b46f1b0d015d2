"""The solver-checked refinement of switching designs on an analytic surrogate and an
analytic "solver" that disagrees with it: the refinement must end at the smallest field the
solver switches, found by its own runs, and report NaN when the solver switches nothing."""

import json

import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr

from invdesign_problems.switching import field_of, refine_design, scan_start

T_TARGET = 1.5e-10


def _field_angle(b):
    b = jnp.asarray(b)
    return 1e3 * jnp.hypot(b[..., 0], b[..., 1]), jnp.rad2deg(jnp.arctan2(b[..., 1], -b[..., 0]))


def surrogate_min(f, a):
    """The analytic surrogate's lowest <m_x>: deeper with the field and with +y tilt."""
    return -0.80 - 0.008 * (f - 22.0) - 0.002 * (a + 22.0)


class FakeModel:
    """SwitchingModel's interface: <m_x>(t) falls linearly from 1 to `surrogate_min`."""

    grid = (16, 4)
    sha256 = "analytic"

    @staticmethod
    def times(t_end):
        return 1e-11 * np.arange(1, round(t_end / 1e-11) + 1)

    def m_avg(self, b, t_end):
        n = len(self.times(t_end))
        lo = surrogate_min(*_field_angle(b))
        mx = 1.0 + (lo - 1.0) * jnp.linspace(0.0, 1.0, n)
        return jnp.stack([mx, jnp.zeros(n), jnp.zeros(n)], -1)


def make_solver(bias):
    calls = []

    def solver(b, t_end, grid):
        assert grid == (16, 4)
        f, a = (float(v) for v in _field_angle(b))
        calls.append((f, a))
        n = len(FakeModel.times(t_end))
        lo = float(surrogate_min(f, a)) + bias(f, a)
        mx = np.concatenate([np.linspace(1.0, lo, n - 1), [0.5 * (1.0 + lo)]])  # lowest one step before the end
        return np.stack([mx, np.zeros(n), np.zeros(n)], -1)

    return solver, calls


def threshold_result(field_mT, angle_deg):
    opts = dict(kind="threshold", t_target=T_TARGET, threshold=-0.9)
    return xr.Dataset({"field_mT": ("iteration", [30.0, field_mT]), "angle_deg": ("iteration", [0.0, angle_deg])},
                      attrs={"problem_options": json.dumps(opts)})


def test_scan_start_is_the_smallest_feasible_grid_field():
    x0 = scan_start(FakeModel(), t_target=T_TARGET)
    # surrogate: -0.9 needs 0.008 (f - 22) + 0.002 (a + 22) >= 0.1, at +22 deg f >= 23.5 mT; the
    # grid of about 2 mT over 22-41 mT has 11 fields, 1.9 mT apart: 23.9 mT
    assert x0["angle_deg"] == 22.0 and x0["field_mT"] == pytest.approx(23.9)


def test_refinement_walks_to_the_smallest_field_the_solver_switches():
    # the solver is 0.04 less switched everywhere: it needs 0.008 (f - 22) + 0.088 >= 0.14 at
    # +22 deg, f >= 28.5 mT: on the 1 mT grid 29 mT
    solver, calls = make_solver(lambda f, a: 0.04)
    ds = threshold_result(23.5, 22.0)  # the surrogate's own optimum, not checked yet
    out = refine_design(ds, 10, model=FakeModel(), solver=solver)
    assert calls[0] == pytest.approx((23.5, 22.0))  # the first run checks the design itself
    assert float(out["field_mT_refined"]) == 29.0 and float(out["angle_deg_refined"]) == 22.0
    assert float(out["mx_min_refined"]) == pytest.approx(float(surrogate_min(29.0, 22.0)) + 0.04)
    assert out.attrs["refine_stop"] == "converged" and out.sizes["refine"] == len(calls) <= 10
    # every run is stored with the solver's own minimum and the surrogate's prediction
    f, a = out["refine_field_mT"].values, out["refine_angle_deg"].values
    np.testing.assert_allclose(out["refine_mx_verified"], surrogate_min(f, a) + 0.04, atol=1e-12)
    np.testing.assert_allclose(out["refine_mx_predicted"], surrogate_min(f, a), atol=1e-6)
    # the corrected map interpolates the solver at the runs on the grid
    grid_runs = [(fi, ai) for fi, ai in zip(f, a) if fi == round(fi) and ai % 2 == 0]
    for fi, ai in grid_runs:
        v = out["mx_grid_corrected"].sel(grid_field_mT=fi, grid_angle_deg=ai)
        assert float(v) == pytest.approx(float(surrogate_min(fi, ai)) + 0.04, abs=1e-5)
    # the answer is the smallest field among the runs the solver switched
    switched = out["refine_mx_verified"].values <= -0.9
    assert f[switched].min() == 29.0


def test_refinement_reuses_the_check_and_reports_nan_when_nothing_switches():
    solver, calls = make_solver(lambda f, a: 0.5)  # the solver never switches
    ds = threshold_result(23.5, 22.0)
    # as verify_designs leaves it: the design's check is the first run, not repeated
    curve = solver(np.asarray(field_of(23.5, 22.0)), T_TARGET, (16, 4))
    ds = ds.assign_coords(time=FakeModel.times(T_TARGET), component=["x", "y", "z"])
    ds["verified_index"] = ("verified", [0])
    ds["m_verified"] = (("verified", "time", "component"), curve[None])
    ds["m_predicted"] = (("verified", "time", "component"), np.asarray(FakeModel().m_avg(field_of(23.5, 22.0), T_TARGET))[None])
    calls.clear()
    out = refine_design(ds, 3, model=FakeModel(), solver=solver)
    assert len(calls) == 3 and out.sizes["refine"] == 4 and out.attrs["refine_runs"] == 3
    assert out.attrs["refine_stop"] == "budget"
    assert np.isnan(float(out["field_mT_refined"])) and np.isnan(float(out["mx_min_refined"]))
    assert refine_design(ds, 0, model=FakeModel(), solver=solver) is ds


def test_refinement_bad_input():
    solver, _ = make_solver(lambda f, a: 0.0)
    ds = threshold_result(23.5, 22.0)
    with pytest.raises(ValueError, match="n must be an integer >= 0"):
        refine_design(ds, -1, model=FakeModel(), solver=solver)
    with pytest.raises(ValueError, match="step and length"):
        refine_design(ds, 1, model=FakeModel(), solver=solver, step=(0.0, 1.0))
    pareto = ds.assign_attrs(problem_options=json.dumps(dict(kind="pareto", t_end=1e-9, threshold=-0.9)))
    with pytest.raises(ValueError, match="ds: refine_design needs a result of the threshold problem"):
        refine_design(pareto, 1, model=FakeModel(), solver=solver)
