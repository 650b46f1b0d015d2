import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import invdesign  # noqa: F401  (enables float64)
from invdesign.optimize import DesignSpace, Parameter


def _space():
    return DesignSpace(
        [
            Parameter("x", -1.0, 1.0, "m", long_name="offset"),
            Parameter("current", 1.0, 100.0, "A", log=True),
            Parameter("gap", 0.0, 2e-3, "m", initial=5e-4),
        ]
    )


# -- validation ---------------------------------------------------------------------------


def test_lower_above_upper_names_argument():
    with pytest.raises(ValueError, match=r"'r'.*lower must be < upper.*lower=2\.0"):
        Parameter("r", 2.0, 1.0, "m")


def test_equal_bounds_rejected():
    with pytest.raises(ValueError, match="lower must be < upper"):
        Parameter("r", 1.0, 1.0, "m")


@pytest.mark.parametrize(
    "lower, upper, arg", [(math.nan, 1.0, "lower"), (0.0, math.inf, "upper"), (-math.inf, 0.0, "lower")]
)
def test_non_finite_bound_names_argument(lower, upper, arg):
    with pytest.raises(ValueError, match=rf"{arg} must be finite"):
        Parameter("r", lower, upper, "m")


def test_log_needs_positive_lower():
    with pytest.raises(ValueError, match=r"log=True needs lower > 0.*lower=0\.0"):
        Parameter("r", 0.0, 1.0, "m", log=True)


def test_initial_outside_bounds():
    with pytest.raises(ValueError, match=r"initial must lie in \[lower, upper\] = \[0\.0, 1\.0\], got 2\.0"):
        Parameter("r", 0.0, 1.0, "m", initial=2.0)


def test_duplicate_names():
    with pytest.raises(ValueError, match=r"duplicate parameter names \['a'\]"):
        DesignSpace([Parameter("a", 0, 1, ""), Parameter("a", 0, 2, ""), Parameter("b", 0, 1, "")])


def test_bad_name_and_empty_space():
    with pytest.raises(ValueError, match="identifier"):
        Parameter("not a name", 0, 1, "")
    with pytest.raises(ValueError, match="at least one"):
        DesignSpace([])


def test_unknown_and_missing_names():
    space = _space()
    with pytest.raises(ValueError, match=r"params: unknown parameter names \['y'\]"):
        space.to_vector({"x": 0.0, "current": 1.0, "gap": 0.0, "y": 1.0})
    with pytest.raises(ValueError, match=r"missing parameters \['gap'\]"):
        space.to_unit({"x": 0.0, "current": 1.0})
    with pytest.raises(ValueError, match=r"x0\['gap'\] must lie in \[0\.0, 0\.002\] m"):
        space.check_bounds({"gap": 1.0}, "x0")
    with pytest.raises(KeyError, match="unknown parameter 'nope'"):
        space["nope"]


# -- maps against hand-computed values -----------------------------------------------------


def test_unit_map_hand_values():
    space = _space()
    z = space.to_unit({"x": 0.25, "current": 10.0, "gap": 1e-3})
    # x: (0.25 + 1) / 2; current: log10(10) / log10(100) = 1/2; gap: 1e-3 / 2e-3.
    np.testing.assert_allclose(np.asarray(z), [0.625, 0.5, 0.5], rtol=0, atol=1e-15)
    back = space.from_unit(jnp.array([0.625, 0.5, 0.5]))
    assert float(back["x"]) == pytest.approx(0.25, abs=1e-15)
    assert float(back["current"]) == pytest.approx(10.0, rel=1e-14)
    assert float(back["gap"]) == pytest.approx(1e-3, rel=1e-14)


def test_unconstrained_map_hand_values():
    space = _space()
    u = space.to_unconstrained({"x": 0.25, "current": 10.0, "gap": 1e-3})
    np.testing.assert_allclose(np.asarray(u), [math.log(0.625 / 0.375), 0.0, 0.0], atol=1e-14)
    # u = 2 -> sigmoid(2) of the searched range.
    s = 1.0 / (1.0 + math.exp(-2.0))
    x = space.from_unconstrained(jnp.array([2.0, 2.0, 2.0]))
    assert float(x["x"]) == pytest.approx(-1.0 + 2.0 * s, rel=1e-14)
    assert float(x["current"]) == pytest.approx(100.0**s, rel=1e-13)
    assert float(x["gap"]) == pytest.approx(2e-3 * s, rel=1e-14)


def test_extreme_u_stays_inside_bounds_and_finite():
    space = _space()
    for value in (-1e3, -50.0, 50.0, 1e3):
        x = space.from_unconstrained(jnp.full(3, value))
        for p in space:
            v = float(x[p.name])
            assert math.isfinite(v) and p.lower <= v <= p.upper


def test_on_bound_values_map_to_finite_u():
    space = _space()
    u = space.to_unconstrained({"x": -1.0, "current": 100.0, "gap": 0.0})
    assert np.all(np.isfinite(np.asarray(u)))
    assert np.all(np.abs(np.asarray(u)) > 20)  # logit(1e-12) ~ 27.6


def test_round_trip_batched():
    space = _space()
    params = space.sample(3, 50)
    assert all(v.shape == (50,) for v in params.values())
    back = space.from_unconstrained(space.to_unconstrained(params))
    for name in space.names:
        np.testing.assert_allclose(np.asarray(back[name]), np.asarray(params[name]), rtol=1e-11, atol=1e-15)
    back = space.from_unit(space.to_unit(params))
    for name in space.names:
        np.testing.assert_allclose(np.asarray(back[name]), np.asarray(params[name]), rtol=1e-13, atol=1e-18)


def test_jacobian_of_reparametrisation_matches_analytic():
    space = _space()
    u = jnp.array([0.3, -0.7, 1.1])
    jac = jax.jacfwd(lambda v: space.to_vector(space.from_unconstrained(v)))(u)
    s = 1.0 / (1.0 + np.exp(-np.asarray(u)))
    x = np.asarray(space.to_vector(space.from_unconstrained(u)))
    expected = np.diag(
        [
            2.0 * s[0] * (1 - s[0]),  # (hi - lo) s (1 - s)
            x[1] * math.log(100.0) * s[1] * (1 - s[1]),  # d exp(.)/du in log space
            2e-3 * s[2] * (1 - s[2]),
        ]
    )
    np.testing.assert_allclose(np.asarray(jac), expected, rtol=1e-12, atol=1e-18)


def test_maps_trace_under_jit_and_vmap():
    space = _space()
    u = jnp.array([[0.1, 0.2, 0.3], [-1.0, 0.0, 1.0]])
    eager = space.from_unconstrained(u)
    jitted = jax.jit(jax.vmap(space.from_unconstrained))(u)
    for name in space.names:
        np.testing.assert_allclose(np.asarray(jitted[name]), np.asarray(eager[name]), rtol=1e-15)


def test_sample_reproducible_bounded_and_log_uniform():
    space = _space()
    a, b = space.sample(7, 20000), space.sample(jax.random.PRNGKey(7), 20000)
    c = space.sample(8, 20000)
    for name in space.names:
        np.testing.assert_array_equal(np.asarray(a[name]), np.asarray(b[name]))
        assert not np.array_equal(np.asarray(a[name]), np.asarray(c[name]))
        p = space[name]
        assert np.all((np.asarray(a[name]) >= p.lower) & (np.asarray(a[name]) <= p.upper))
    # Log-uniform: half the mass below the geometric mean 10 A, a fifth below 10**0.4 A.
    cur = np.asarray(a["current"])
    assert np.mean(cur < 10.0) == pytest.approx(0.5, abs=0.015)
    assert np.mean(cur < 10.0**0.4) == pytest.approx(0.2, abs=0.015)


def test_center_and_initial():
    space = _space()
    c, i = space.center(), space.initial()
    assert float(c["x"]) == 0.0
    assert float(c["current"]) == pytest.approx(10.0, rel=1e-15)  # geometric mean
    assert float(c["gap"]) == pytest.approx(1e-3)
    assert float(i["gap"]) == 5e-4 and float(i["current"]) == pytest.approx(10.0)
