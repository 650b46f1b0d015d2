"""Hybrid search: the genetic stage finds the global basin that a gradient search from the
initial design misses, the gradient stage polishes it (checked against scipy)."""

import json

import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize

import invdesign  # noqa: F401
from invdesign.optimize import (
    Constraint,
    DesignProblem,
    DesignSpace,
    Objective,
    Parameter,
    final,
    gradient_search,
    hybrid_search,
)


def f_np(x, y):
    # two wells along x (global one at x < 0), a parabola in y
    return (x * x - 1.0) ** 2 + 0.3 * x + 0.5 * (y - 0.2) ** 2


def _problem():
    space = DesignSpace([Parameter("x", -2.0, 2.0, "m", initial=1.0), Parameter("y", -1.0, 1.0, "m", initial=0.5)])

    def evaluate(p):
        x, y = p["x"], p["y"]
        return {"f": (x * x - 1.0) ** 2 + 0.3 * x + 0.5 * (y - 0.2) ** 2, "g": y - 0.1}

    return DesignProblem("wells", space, evaluate, [Objective("f")], [Constraint("g", units="m")])


@pytest.fixture(scope="module")
def problem():
    return _problem()


def test_hybrid_leaves_the_local_basin_and_polishes_to_the_constrained_minimum(problem):
    local = gradient_search(problem, progress=False)
    hyb = hybrid_search(problem, pop_size=20, n_gen=8, seed=1, progress=False)
    # reference: scipy SLSQP from inside the global basin, constraint y <= 0.1 active
    ref = scipy.optimize.minimize(lambda v: f_np(*v), x0=[-1.0, 0.0], method="SLSQP",
                                  constraints=[{"type": "ineq", "fun": lambda v: 0.1 - v[1]}], tol=1e-14)
    end = final(hyb)
    assert float(final(local)["x"][0]) > 0  # the plain gradient search stays in the right well
    assert float(end["x"][0]) == pytest.approx(ref.x[0], abs=1e-6)
    assert float(end["y"][0]) == pytest.approx(0.1, abs=1e-7)
    # (the constraint holds to the driver's tol = 1e-8, so f may lie below by |df/dy| * 1e-8)
    assert float(end["f"][0]) == pytest.approx(ref.fun, abs=1e-8)
    assert float(end["f"][0]) < float(final(local)["f"][0]) - 0.5
    # the polish starts where the genetic stage ended and improves on it
    stage = json.loads(hyb.attrs["genetic_stage"])
    assert float(hyb["x"][0]) == pytest.approx(stage["parameters"]["x"], rel=1e-12)
    assert float(end["f"][0]) <= stage["objectives"]["f"] + 1e-12
    assert stage["n_evals"] >= 20 and stage["algorithm"] == "ga"
    assert hyb.attrs["algorithm"] == "hybrid-ga+gradient-lbfgs"
    settings = json.loads(hyb.attrs["settings"])
    assert settings["genetic"]["pop_size"] == 20 and settings["gradient"]["method"] == "lbfgs"
    assert hyb.attrs["converged"] == 1


def test_hybrid_bad_arguments(problem):
    with pytest.raises(ValueError, match="gradient_kwargs.*x0"):
        hybrid_search(problem, gradient_kwargs={"x0": {"x": 0.0}}, progress=False)
    with pytest.raises(ValueError, match="genetic_kwargs.*pop_size"):
        hybrid_search(problem, genetic_kwargs={"pop_size": 4}, progress=False)
    with pytest.raises(ValueError, match="weights"):
        hybrid_search(problem, weights={"nope": 1.0}, progress=False)
    with pytest.raises(TypeError, match="problem"):
        hybrid_search("wells")
