import functools
import json
import math

import jax.numpy as jnp
import numpy as np
import pytest

import invdesign  # noqa: F401
from invdesign.optimize import (
    Constraint,
    DesignProblem,
    DesignSpace,
    NonFiniteOutputError,
    Objective,
    Parameter,
    gradient_search,
)

METHODS = ["lbfgs", "adam"]
# Adam with a constant step converges linearly and noisily; L-BFGS to machine-level accuracy.
ATOL = {"lbfgs": 1e-6, "adam": 1e-4}


@functools.lru_cache  # one problem object per scale: the compiled search kernels are reused
def _kkt_problem(scale=1.0):
    """min (x-2)^2 + (y-1)^2  s.t.  x + y <= 2,  x, y in [-3, 3].

    KKT by hand: grad f = lam * (1, 1) with x + y = 2 -> 2(x-2) = 2(y-1) = -lam ->
    x - 2 = y - 1, x + y = 2 -> x = 1.5, y = 0.5, lam = 1 (for the unscaled g).
    """
    space = DesignSpace([Parameter("x", -3.0, 3.0, "m"), Parameter("y", -3.0, 3.0, "m")])

    def evaluate(p):
        return {
            "f": (p["x"] - 2.0) ** 2 + (p["y"] - 1.0) ** 2,
            "g": p["x"] + p["y"] - 2.0,
            "distance": jnp.hypot(p["x"], p["y"]),  # extra diagnostic output
        }

    return DesignProblem(
        "kkt", space, evaluate, [Objective("f", units="m^2")], [Constraint("g", units="m", scale=scale)]
    )


@pytest.mark.parametrize("method", METHODS)
def test_constrained_quadratic_kkt_point(method):
    ds = gradient_search(_kkt_problem(), method=method, progress=False)
    x, y = float(ds.x[-1]), float(ds.y[-1])
    assert x == pytest.approx(1.5, abs=ATOL[method])
    assert y == pytest.approx(0.5, abs=ATOL[method])
    assert abs(float(ds.g[-1])) < ATOL[method]  # constraint active
    assert float(ds.f[-1]) == pytest.approx(0.5, abs=4 * ATOL[method])
    # The PHR multiplier estimate converges to the hand-computed lambda = 1.
    lam_next = max(0.0, float(ds.multiplier[-1, 0]) + float(ds.penalty[-1]) * float(ds.g[-1]))
    assert lam_next == pytest.approx(1.0, abs=1e-3)
    assert ds.attrs["converged"] == 1
    assert float(ds.distance[-1]) == pytest.approx(math.hypot(1.5, 0.5), abs=4 * ATOL[method])


def test_constraint_scale_changes_multiplier_not_solution():
    ds = gradient_search(_kkt_problem(scale=10.0), method="lbfgs", progress=False)
    assert float(ds.x[-1]) == pytest.approx(1.5, abs=1e-6)
    # Multiplier of g / 10 is 10 times the multiplier of g.
    lam_next = max(0.0, float(ds.multiplier[-1, 0]) + float(ds.penalty[-1]) * float(ds.g[-1]) / 10.0)
    assert lam_next == pytest.approx(10.0, abs=1e-2)


@pytest.mark.parametrize("method", METHODS)
def test_bound_active(method):
    """min (x-2)^2 + (y+0.5)^2 with x in [0, 1]: the bound x = 1 is active, y = -0.5.

    Through the sigmoid reparametrisation the bound is reached as u -> inf, with a gradient
    in u that vanishes like (1 - x)^2: Adam needs a few thousand steps for 1e-4.
    """
    space = DesignSpace([Parameter("x", 0.0, 1.0, "m"), Parameter("y", -1.0, 1.0, "m")])
    problem = DesignProblem.from_functions(
        "bound", space, {"f": lambda p: (p["x"] - 2.0) ** 2 + (p["y"] + 0.5) ** 2}
    )
    ds = gradient_search(problem, method=method, max_iter=5000, progress=False)
    assert float(ds.x[-1]) == pytest.approx(1.0, abs=1e-4)
    assert float(ds.x[-1]) <= 1.0
    assert float(ds.y[-1]) == pytest.approx(-0.5, abs=1e-4)
    assert "constraint" not in ds.dims and ds.outer.max() == 0


def test_first_gradient_norm_matches_hand_value():
    """At the centre x = 0 of [-3, 3]: df/dx = -4, dx/du = 6 * sigmoid'(0) = 1.5 -> |grad| = 6."""
    space = DesignSpace([Parameter("x", -3.0, 3.0, "m")])
    problem = DesignProblem.from_functions("line", space, {"f": lambda p: (p["x"] - 2.0) ** 2})
    ds = gradient_search(problem, method="lbfgs", progress=False)
    assert float(ds.grad_norm[0]) == pytest.approx(6.0, rel=1e-12)
    assert float(ds.lagrangian[0]) == pytest.approx(4.0, rel=1e-14)
    assert float(ds.x[-1]) == pytest.approx(2.0, abs=1e-7)


@pytest.mark.parametrize("method", METHODS)
def test_max_sense(method):
    """maximise 1 - (x - 0.3)^2: optimum x = 0.3, reported value 1 (not negated)."""
    space = DesignSpace([Parameter("x", -1.0, 1.0, "m")])
    problem = DesignProblem.from_functions(
        "peak", space, {"h": (lambda p: 1.0 - (p["x"] - 0.3) ** 2, Objective("h", sense="max", units="m"))}
    )
    ds = gradient_search(problem, method=method, progress=False)
    assert float(ds.x[-1]) == pytest.approx(0.3, abs=1e-4)
    assert float(ds.h[-1]) == pytest.approx(1.0, abs=1e-7)
    np.testing.assert_allclose(ds.h.values, 1.0 - (ds.x.values - 0.3) ** 2, rtol=1e-14)
    np.testing.assert_allclose(ds.scalarized_objective.values, -ds.h.values, rtol=1e-14)
    assert json.loads(ds.attrs["senses"]) == {"h": "max"}


def test_weighted_objectives():
    """w1 (x-1)^2 + w2 (x+1)^2 with w = (1, 3) is minimal at x = (1 - 3) / 4 = -0.5."""
    space = DesignSpace([Parameter("x", -2.0, 2.0, "m")])
    problem = DesignProblem.from_functions(
        "two", space, {"f1": lambda p: (p["x"] - 1.0) ** 2, "f2": lambda p: (p["x"] + 1.0) ** 2}
    )
    ds = gradient_search(problem, weights={"f1": 1.0, "f2": 3.0}, progress=False)
    assert float(ds.x[-1]) == pytest.approx(-0.5, abs=1e-7)
    ds = gradient_search(problem, weights=[1.0, 1.0], progress=False)
    assert float(ds.x[-1]) == pytest.approx(0.0, abs=1e-7)


def test_log_parameter():
    """min (log10 I - 1.5)^2 for I in [1, 1000] A (log scale): I = 10**1.5 A."""
    space = DesignSpace([Parameter("current", 1.0, 1000.0, "A", log=True)])
    problem = DesignProblem.from_functions("log", space, {"f": lambda p: (jnp.log10(p["current"]) - 1.5) ** 2})
    ds = gradient_search(problem, progress=False)
    assert float(ds.current[-1]) == pytest.approx(10**1.5, rel=1e-6)


def test_history_layout():
    ds = gradient_search(_kkt_problem(), method="lbfgs", progress=False)
    n = ds.sizes["iteration"]
    np.testing.assert_array_equal(ds.iteration.values, np.arange(n))
    assert np.all(np.diff(ds.outer.values) >= 0) and ds.outer.values[-1] >= 1
    assert ds.multiplier.dims == ("iteration", "constraint") and list(ds.constraint.values) == ["g"]
    # Recorded outputs match an independent recomputation at the recorded parameters.
    np.testing.assert_allclose(ds.f.values, (ds.x.values - 2) ** 2 + (ds.y.values - 1) ** 2, rtol=1e-13)
    np.testing.assert_allclose(ds.max_violation.values, np.maximum(0.0, ds.x.values + ds.y.values - 2.0), atol=1e-15)
    # The penalty only grows, the multiplier stays >= 0.
    assert np.all(np.diff(ds.penalty.values) >= 0) and np.all(ds.multiplier.values >= 0)
    for name in ("x", "y", "f", "g", "distance"):
        assert {"units", "long_name"} <= set(ds[name].attrs)
    assert ds.x.attrs["units"] == "m" and ds.f.attrs["units"] == "m^2" and ds.g.attrs["role"] == "constraint"


def test_x0_and_not_converged_message():
    ds = gradient_search(_kkt_problem(), method="adam", x0={"x": -2.0}, max_iter=5, outer_iters=2, progress=False)
    assert float(ds.x[0]) == pytest.approx(-2.0, abs=1e-9) and float(ds.y[0]) == pytest.approx(0.0, abs=1e-12)
    assert ds.sizes["iteration"] == 10
    assert ds.attrs["converged"] == 0 and "not converged" in ds.attrs["message"]


def test_bad_arguments():
    problem = _kkt_problem()
    with pytest.raises(ValueError, match="method must be 'adam' or 'lbfgs'"):
        gradient_search(problem, method="sgd", progress=False)
    with pytest.raises(ValueError, match=r"x0\['x'\] must lie in \[-3\.0, 3\.0\] m"):
        gradient_search(problem, x0={"x": 5.0}, progress=False)
    with pytest.raises(ValueError, match=r"x0: unknown parameter names \['z'\]"):
        gradient_search(problem, x0={"z": 0.0}, progress=False)
    with pytest.raises(ValueError, match=r"weights: unknown objective names \['h'\]"):
        gradient_search(problem, weights={"h": 1.0}, progress=False)
    with pytest.raises(ValueError, match="tol must be finite and > 0"):
        gradient_search(problem, tol=-1.0, progress=False)


def test_nan_output_raises_naming_output():
    space = DesignSpace([Parameter("x", -1.0, 1.0, "m")])
    problem = DesignProblem.from_functions("nan", space, {"f": lambda p: jnp.log(p["x"])})
    with pytest.raises(NonFiniteOutputError, match=r"output 'f' is not finite.*'x': -0\.(5|49999)"):
        gradient_search(problem, x0={"x": -0.5}, progress=False)


def test_missing_objective_in_output():
    space = DesignSpace([Parameter("x", -1.0, 1.0, "m")])
    problem = DesignProblem("miss", space, lambda p: {"f1": p["x"] ** 2}, ["f1", "f2"])
    with pytest.raises(ValueError, match=r"evaluate output is missing objective 'f2'"):
        gradient_search(problem, progress=False)


def test_elementwise_only_problem_rejected():
    space = DesignSpace([Parameter("x", -1.0, 1.0, "m")])
    problem = DesignProblem("ew", space, None, ["f"], elementwise=lambda p: {"f": p["x"] ** 2})
    with pytest.raises(ValueError, match="no JAX evaluate"):
        gradient_search(problem, progress=False)
