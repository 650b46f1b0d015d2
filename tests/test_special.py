"""K(m), E(m), D(m) against mpmath (50 digits), identities and derivative rules."""

import math

import jax
import jax.numpy as jnp
import mpmath as mp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import invdesign  # noqa: F401
from invdesign.special import ellipd, ellipe, ellipk, ellipked

mp.mp.dps = 50


def _grid():
    return np.unique(np.concatenate([
        [0.0, 5e-324, -5e-324, 1e-300, -1e-300, 1e-17, -1e-17, 1e-9, -1e-9, 0.25, -0.25,
         0.2499999999999, 0.5, 1 - 1e-12, -10.0],
        np.logspace(-16, -0.0001, 40), -np.logspace(-16, 1, 40),
        1 - np.logspace(-12, -0.01, 40), np.linspace(-10, 1 - 1e-12, 61),
    ]))


M = _grid()


def _rel(got, ref):
    ref = mp.mpf(ref)
    return float(abs((mp.mpf(float(got)) - ref) / ref))


def _mp_d(m):
    m = mp.mpf(m)
    if abs(m) < mp.mpf("1e-20"):  # (K - E) / m = pi/4 (1 + 3m/8 + ...)
        return mp.pi / 4 * (1 + 3 * m / 8)
    return (mp.ellipk(m) - mp.ellipe(m)) / m


def test_values_against_mpmath():
    k, e, d = (np.asarray(a) for a in ellipked(M))
    worst_k = max(_rel(k[i], mp.ellipk(mp.mpf(m))) for i, m in enumerate(M))
    worst_e = max(_rel(e[i], mp.ellipe(mp.mpf(m))) for i, m in enumerate(M))
    worst_d = max(_rel(d[i], _mp_d(m)) for i, m in enumerate(M))
    assert worst_k <= 2e-15
    assert worst_e <= 2e-15
    assert worst_d <= 4e-15


def _mp_deriv(f, m, n):
    return mp.diff(f, mp.mpf(m), n)


@pytest.mark.parametrize("order", [1, 2])
def test_derivatives_against_mpmath(order):
    fk, fe = ellipk, ellipe
    for _ in range(order):
        fk, fe = jax.grad(fk), jax.grad(fe)
    dk = np.asarray(jax.vmap(fk)(M))
    de = np.asarray(jax.vmap(fe)(M))
    worst = 0.0
    for i, m in enumerate(M):
        worst = max(worst, _rel(dk[i], _mp_deriv(mp.ellipk, m, order)),
                    _rel(de[i], _mp_deriv(mp.ellipe, m, order)))
    assert worst <= 1e-13


def test_limits_at_zero_and_one():
    assert float(jax.grad(ellipk)(0.0)) == pytest.approx(math.pi / 8, rel=1e-15)
    assert float(jax.grad(ellipe)(0.0)) == pytest.approx(-math.pi / 8, rel=1e-15)
    assert float(ellipd(0.0)) == pytest.approx(math.pi / 4, rel=1e-15)
    assert float(jax.grad(ellipd)(0.0)) == pytest.approx(3 * math.pi / 32, rel=1e-15)
    # second derivatives at 0 from the series: K'' = 9 pi / 64, E'' = -3 pi / 64
    assert float(jax.grad(jax.grad(ellipk))(0.0)) == pytest.approx(9 * math.pi / 64, rel=1e-14)
    assert float(jax.grad(jax.grad(ellipe))(0.0)) == pytest.approx(-3 * math.pi / 64, rel=1e-14)
    assert np.isinf(float(ellipk(1.0)))
    assert float(ellipe(1.0)) == 1.0
    assert np.isnan(float(ellipk(1.5))) and np.isnan(float(ellipe(1.5)))
    # logarithmic singularity: K(m) - log(16 / (1 - m)) / 2 -> 0 as m -> 1
    mc = 1e-300
    k = float(ellipked(1 - mc, mc)[0])
    assert k == pytest.approx(0.5 * math.log(16 / mc), rel=1e-15)


def test_complementary_argument_is_used():
    mc = np.array([1e-30, 1e-20, 1e-14])
    k = np.asarray(ellipked(1.0 - mc, mc)[0])
    ref = [mp.ellipk(1 - mp.mpf(float(c))) for c in mc]
    for got, r in zip(k, ref):
        assert _rel(got, r) <= 2e-15


def test_third_derivative_and_transforms_compose():
    # third derivative against mpmath at a few points, and hessian/vmap/jit composition
    f3 = jax.jit(jax.vmap(jax.grad(jax.grad(jax.grad(ellipk)))))
    pts = np.array([-3.0, -0.1, 0.0, 0.1, 0.7])
    got = np.asarray(f3(pts))
    for g, m in zip(got, pts):
        assert _rel(g, mp.diff(mp.ellipk, mp.mpf(m), 3)) < 1e-11
    h = jax.hessian(lambda v: ellipk(v[0]) * ellipe(v[1]))(jnp.array([0.3, -2.0]))
    assert np.all(np.isfinite(np.asarray(h)))


@settings(max_examples=60, deadline=None)
@given(st.floats(min_value=1e-6, max_value=1 - 1e-6))
def test_legendre_relation(m):
    # E K' + E' K - K K' = pi / 2 with K' = K(1 - m), E' = E(1 - m): an identity that the
    # implementation does not use.
    k, e, _ = ellipked(m)
    kp, ep, _ = ellipked(1 - m)
    lhs = float(e * kp + ep * k - k * kp)
    assert lhs == pytest.approx(math.pi / 2, rel=3e-14)


@settings(max_examples=40, deadline=None)
@given(st.floats(min_value=-10.0, max_value=0.99))
def test_paper_eq15_rules_hold(m):
    # the paper's derivative rules (eq. 15) evaluated from the values
    k, e, _ = (float(x) for x in ellipked(m))
    if abs(m) > 1e-3:
        assert float(jax.grad(ellipk)(m)) == pytest.approx(e / (2 * m * (1 - m)) - k / (2 * m), rel=1e-9)
        assert float(jax.grad(ellipe)(m)) == pytest.approx((e - k) / (2 * m), rel=1e-9)
