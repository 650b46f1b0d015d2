"""The shared Newton solver: minima against scipy, saddles, trust radius, line search,
implicit derivatives against central differences."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize

import invdesign  # noqa: F401  (x64)
from invdesign._newton import implicit_stationary_point, newton_minimize


def rosen(x, a=1.0, b=10.0):
    return (a - x[0]) ** 2 + b * (x[1] - x[0] ** 2) ** 2


def saddle(x):
    # saddle at the origin, minima at (0, +-sqrt(2))
    return x[0] ** 2 - x[1] ** 2 + 0.25 * x[1] ** 4


def test_minimum_matches_scipy():
    x0 = np.array([-1.2, 1.0])
    ref = scipy.optimize.minimize(rosen, x0, method="BFGS", jac=jax.grad(rosen), options=dict(gtol=1e-12)).x
    x, info = jax.jit(lambda x0: newton_minimize(jax.grad(rosen), x0, value_fn=rosen, line_search=True,
                                                 gtol=1e-12, max_iter=100))(jnp.asarray(x0))
    assert bool(info.converged) and bool(info.positive_definite) and not bool(info.stalled)
    np.testing.assert_allclose(np.asarray(x), ref, rtol=0, atol=1e-9)
    np.testing.assert_allclose(np.asarray(x), [1.0, 1.0], atol=1e-10)


def test_plain_newton_finds_the_saddle_saddle_free_the_minimum():
    x0 = jnp.array([0.1, 0.3])
    xs, info_s = newton_minimize(jax.grad(saddle), x0, saddle_free=False, xtol=1e-13, max_iter=50)
    xm, info_m = newton_minimize(jax.grad(saddle), x0, saddle_free=True, xtol=1e-13, max_iter=50, trust_radius=0.5)
    np.testing.assert_allclose(np.asarray(xs), [0.0, 0.0], atol=1e-12)
    assert bool(info_s.converged) and not bool(info_s.positive_definite)
    np.testing.assert_allclose(np.asarray(xm), [0.0, np.sqrt(2.0)], atol=1e-12)
    assert bool(info_m.converged) and bool(info_m.positive_definite)


@pytest.mark.parametrize("radius", [0.05, lambda x: 0.1 * jnp.linalg.norm(x)])
def test_steps_never_exceed_the_trust_radius(radius):
    x0 = jnp.array([3.0, -2.0])
    x1, _ = newton_minimize(jax.grad(rosen), x0, max_iter=1)
    assert float(jnp.linalg.norm(x1 - x0)) > 0.5  # the undamped step is long
    x1, info = newton_minimize(jax.grad(rosen), x0, max_iter=1, trust_radius=radius)
    r = radius(x0) if callable(radius) else radius
    np.testing.assert_allclose(float(jnp.linalg.norm(x1 - x0)), float(r), rtol=1e-12)
    assert int(info.iterations) == 1


def test_line_search_keeps_iterates_feasible():
    # the minimum (1, 1) lies outside the feasible set x0 <= 0.5: the iterate stops inside
    path = []

    def feasible(x):
        jax.debug.callback(lambda v: path.append(np.asarray(v)), x)
        return x[0] <= 0.5

    x, info = newton_minimize(jax.grad(rosen), jnp.array([-1.2, 1.0]), value_fn=rosen, line_search=True,
                              feasible=feasible, gtol=1e-12, max_iter=60)
    assert float(x[0]) <= 0.5
    assert bool(info.stalled) and not bool(info.converged)
    # and it got close to the boundary in the valley
    assert float(x[0]) > 0.4


def test_implicit_derivative_matches_central_differences():
    def energy(p):
        a, b = p[0], p[1]
        return lambda x: rosen(x, a, b) + 0.1 * x[0] ** 4 + 0.05 * x[1] ** 4

    options = dict(line_search=True, gtol=1e-13, max_iter=100)

    def xstar(p):
        f = energy(p)
        x, _ = implicit_stationary_point(jax.grad(f), jnp.array([0.5, 0.5]), value_fn=f, **options)
        return x

    p = jnp.array([1.3, 2.0])
    for q in (p, p.at[0].add(1e-5), p.at[0].add(-1e-5)):  # the difference quotient's solves end converged
        f = energy(q)
        _, info = newton_minimize(jax.grad(f), jnp.array([0.5, 0.5]), value_fn=f, **options)
        assert bool(info.converged) and not bool(info.stalled), q
    jac = np.asarray(jax.jacrev(xstar)(p))
    jac_fwd = np.asarray(jax.jacfwd(xstar)(p))
    h = 1e-5
    fd = np.stack([(np.asarray(xstar(p.at[k].add(h))) - np.asarray(xstar(p.at[k].add(-h)))) / (2 * h)
                   for k in range(2)], axis=1)
    assert np.all(np.abs(jac) > 1e-4)  # both parameters move the minimum
    np.testing.assert_allclose(jac, fd, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(jac_fwd, jac, rtol=1e-12, atol=1e-14)
    # batched: each lane its own problem
    batch = jnp.stack([p, p * 1.1])
    xs = jax.vmap(xstar)(batch)
    np.testing.assert_allclose(np.asarray(xs[1]), np.asarray(xstar(p * 1.1)), rtol=1e-12)


def test_bad_options():
    with pytest.raises(ValueError, match="value_fn"):
        newton_minimize(jax.grad(rosen), jnp.zeros(2), line_search=True)
    with pytest.raises(ValueError, match="max_iter"):
        newton_minimize(jax.grad(rosen), jnp.zeros(2), max_iter=0)
    with pytest.raises(ValueError, match="trust_radius"):
        newton_minimize(jax.grad(rosen), jnp.zeros(2), trust_radius=None)
